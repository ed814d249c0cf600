//! The neural family: a multilayer perceptron. Serving uses the exported
//! weights and an ndarray forward pass, so any build can score a saved neural
//! model; training needs libtorch (tch) and is not in this build yet.

use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};

use super::{ModelError, Result};

/// Hyperparameters of the MLP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NeuralParams {
    /// Hidden layer widths; defaults to `[64, 32]`.
    pub hidden: Vec<usize>,
    /// Dropout after each hidden layer; defaults to `0.1`.
    pub dropout: f64,
    /// Adam learning rate; defaults to `0.001`.
    pub learning_rate: f64,
    /// Mini-batch size; defaults to `256`.
    pub batch_size: usize,
    /// Epoch limit; defaults to `100`.
    pub max_epochs: usize,
    /// Epochs without validation improvement before stopping; defaults to `8`.
    pub patience: usize,
    /// `cpu`, `cuda` or `auto`; defaults to `auto`.
    pub device: String,
}

impl Default for NeuralParams {
    fn default() -> Self {
        NeuralParams {
            hidden: vec![64, 32],
            dropout: 0.1,
            learning_rate: 1e-3,
            batch_size: 256,
            max_epochs: 100,
            patience: 8,
            device: "auto".into(),
        }
    }
}

/// One dense layer: `out = weights · in + bias`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DenseLayer {
    /// Weights, `outputs × inputs`, row-major.
    pub weights: Vec<f64>,
    /// Biases, one per output.
    pub bias: Vec<f64>,
    /// Number of inputs.
    pub inputs: usize,
}

/// A fitted MLP: ReLU between layers, a sigmoid on the single output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NeuralModel {
    /// Layers, input first.
    pub layers: Vec<DenseLayer>,
}

impl NeuralModel {
    /// Training needs libtorch, which this build does not have yet.
    pub fn fit(_x: &Array2<f64>, _y: &[u8], _params: &NeuralParams) -> Result<NeuralModel> {
        Err(ModelError::NotEnabled(
            "the neural model is not enabled in this build (libtorch training is not wired in yet); train logistic or tree".into(),
        ))
    }

    fn forward(&self, x: &Array2<f64>) -> Array2<f64> {
        let mut h = x.clone();
        for (k, layer) in self.layers.iter().enumerate() {
            let outputs = layer.bias.len();
            let w = Array2::from_shape_vec((outputs, layer.inputs), layer.weights.clone())
                .unwrap_or_else(|_| Array2::zeros((outputs, h.ncols())));
            let b = Array1::from(layer.bias.clone());
            h = h.dot(&w.t()) + &b;
            if k + 1 < self.layers.len() {
                h.mapv_inplace(|v| v.max(0.0));
            }
        }
        h
    }

    /// Churn probabilities of preprocessed rows.
    pub fn probabilities(&self, x: &Array2<f64>) -> Vec<f64> {
        self.forward(x)
            .column(0)
            .iter()
            .map(|z| 1.0 / (1.0 + (-z).exp()))
            .collect()
    }

    /// Gradient × input attributions of the output logit.
    pub fn contributions(&self, x: &Array2<f64>) -> Array2<f64> {
        // Occlusion against the mean row (zero, as inputs are standardised).
        let base = self.forward(x);
        let mut out = Array2::zeros(x.dim());
        for j in 0..x.ncols() {
            let mut xj = x.clone();
            xj.column_mut(j).fill(0.0);
            let f = self.forward(&xj);
            for i in 0..x.nrows() {
                out[[i, j]] = base[[i, 0]] - f[[i, 0]];
            }
        }
        out
    }

    /// Mean absolute first-layer weight per input.
    pub fn importance(&self, width: usize) -> Vec<f64> {
        let mut out = vec![0.0; width];
        if let Some(first) = self.layers.first() {
            for (k, w) in first.weights.iter().enumerate() {
                let j = k % first.inputs.max(1);
                if j < width {
                    out[j] += w.abs();
                }
            }
        }
        out
    }
}
