//! The neural family: a multilayer perceptron (ReLU hidden layers, a
//! sigmoid output) as saved weights, scored with an ndarray forward pass.
//!
//! Training needs libtorch and happens in another process: the
//! `churnguard-neural` executable (crate `churnguard-neural`, the only crate
//! that links tch) reads a [`job`] on its standard input and answers with
//! the fitted weights. Everything else (predict, score, serve, the Python
//! package) scores a saved MLP from [`NeuralModel`]'s weights here, so none of
//! them loads libtorch (whose static initialisation alone cost 0.44 s per
//! command) or needs its 4.7 GB install. A test in `churnguard-neural` shows
//! this forward pass equals tch's within 1e-6.

use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};

use super::{ModelError, Result};

/// Hyperparameters of the MLP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NeuralParams {
    /// Hidden layer widths; defaults to `[128, 64]`.
    pub hidden: Vec<usize>,
    /// Dropout after each hidden layer; defaults to `0.2`.
    pub dropout: f64,
    /// Adam learning rate; defaults to `0.003`.
    pub learning_rate: f64,
    /// Mini-batch size; defaults to `256`.
    pub batch_size: usize,
    /// Epoch limit; defaults to `100`.
    pub max_epochs: usize,
    /// Epochs without validation improvement before stopping; defaults to `15`.
    pub patience: usize,
    /// `cpu`, `cuda` or `auto`; defaults to `auto`.
    pub device: String,
    /// libtorch's intra-op threads while training on the CPU; defaults to
    /// `1`: the matrices of an MLP this size (a 256-row batch times 128
    /// units) are too small to share, and OpenMP threads that spin while
    /// waiting cost far more than they save (5 epochs took 18 s with 2
    /// threads and 1 s with 1 on a loaded 2-core machine). `0` keeps
    /// libtorch's default (one per core).
    pub threads: usize,
}

impl Default for NeuralParams {
    fn default() -> Self {
        NeuralParams {
            hidden: vec![128, 64],
            dropout: 0.2,
            learning_rate: 3e-3,
            batch_size: 256,
            max_epochs: 100,
            patience: 15,
            device: "auto".into(),
            threads: 1,
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

/// One epoch of neural training, for progress display.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Epoch {
    /// 1-based epoch.
    pub epoch: usize,
    /// Epoch limit.
    pub max_epochs: usize,
    /// Mean training loss of the epoch.
    pub loss: f64,
    /// Validation ROC-AUC after the epoch.
    pub validation_auc: Option<f64>,
    /// The device trained on (`cpu`, `cuda`).
    pub device: String,
}

impl NeuralParams {
    /// Checks the settings.
    pub fn check(&self) -> Result<()> {
        let bad = |name: &str, message: String| {
            Err(ModelError::BadParam {
                name: format!("neural.{name}"),
                message,
            })
        };
        if self.hidden.is_empty() || self.hidden.iter().any(|h| *h == 0 || *h > 4096) {
            return bad(
                "hidden",
                format!("must list 1..=4096 units per layer, got {:?}", self.hidden),
            );
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return bad(
                "dropout",
                format!("must be within 0..1, got {}", self.dropout),
            );
        }
        if !(self.learning_rate > 0.0 && self.learning_rate < 1.0) {
            return bad(
                "learning_rate",
                format!("must be within 0..1, got {}", self.learning_rate),
            );
        }
        if self.batch_size == 0 || self.max_epochs == 0 {
            return bad(
                "batch_size",
                "batch_size and max_epochs must be at least 1".into(),
            );
        }
        if self.threads > 1024 {
            return bad("threads", format!("must be 0..=1024, got {}", self.threads));
        }
        if !["cpu", "cuda", "auto"].contains(&self.device.as_str()) {
            return bad(
                "device",
                format!("must be cpu, cuda or auto, got {:?}", self.device),
            );
        }
        Ok(())
    }
}

impl NeuralModel {
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

pub mod job {
    //! The wire format between `churnguard train` and the `churnguard-neural`
    //! trainer process: on the trainer's standard input one JSON
    //! [`JobHeader`] line, then the preprocessed rows as little-endian `f64`
    //! (row-major, `rows × cols`) and the labels as one byte each; on its
    //! standard output one JSON [`TrainerMessage`] per line: an `epoch` per
    //! epoch, then a `model` or an `error`. Pipes rather than files: nothing
    //! is left behind when either side is killed.

    use std::io::{BufRead, Write};

    use ndarray::Array2;
    use serde::{Deserialize, Serialize};

    use super::{Epoch, NeuralModel, NeuralParams};
    use crate::models::{Family, ModelError, Result};

    /// The version of this format; a trainer refuses any other.
    pub const FORMAT: u32 = 1;

    /// What to train.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct JobHeader {
        /// [`FORMAT`].
        pub format: u32,
        /// Number of rows.
        pub rows: usize,
        /// Number of preprocessed columns.
        pub cols: usize,
        /// Seed of the shuffles and of libtorch.
        pub seed: u64,
        /// The MLP's settings.
        pub params: NeuralParams,
    }

    /// One line of the trainer's answer.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum TrainerMessage {
        /// An epoch finished.
        Epoch(Epoch),
        /// Training finished: the fitted weights.
        Model(NeuralModel),
        /// Training failed.
        Error {
            /// The setting at fault (`neural.device`), when a setting is.
            bad_param: Option<String>,
            /// What failed.
            message: String,
        },
    }

    impl TrainerMessage {
        /// The message of a failed fit.
        pub fn from_error(e: &ModelError) -> TrainerMessage {
            match e {
                ModelError::BadParam { name, message } => TrainerMessage::Error {
                    bad_param: Some(name.clone()),
                    message: message.clone(),
                },
                other => TrainerMessage::Error {
                    bad_param: None,
                    message: other.to_string(),
                },
            }
        }

        /// The error a failed fit's message stands for.
        pub fn into_error(bad_param: Option<String>, message: String) -> ModelError {
            match bad_param {
                Some(name) => ModelError::BadParam { name, message },
                None => ModelError::Fit {
                    family: Family::Neural,
                    message,
                },
            }
        }
    }

    fn broken(message: impl std::fmt::Display) -> ModelError {
        ModelError::Fit {
            family: Family::Neural,
            message: format!("training job: {message}"),
        }
    }

    /// Writes a job: the header line, the rows, the labels.
    pub fn write_job(
        out: &mut dyn Write,
        x: &Array2<f64>,
        y: &[u8],
        params: &NeuralParams,
        seed: u64,
    ) -> std::io::Result<()> {
        let header = JobHeader {
            format: FORMAT,
            rows: x.nrows(),
            cols: x.ncols(),
            seed,
            params: params.clone(),
        };
        let line = serde_json::to_string(&header).map_err(std::io::Error::other)?;
        out.write_all(line.as_bytes())?;
        out.write_all(b"\n")?;
        let mut buf = Vec::with_capacity(x.ncols() * 8);
        for row in x.rows() {
            buf.clear();
            for v in row {
                buf.extend_from_slice(&v.to_le_bytes());
            }
            out.write_all(&buf)?;
        }
        out.write_all(y)?;
        out.flush()
    }

    /// Reads a job written by [`write_job`].
    pub fn read_job(input: &mut dyn BufRead) -> Result<(JobHeader, Array2<f64>, Vec<u8>)> {
        let mut line = String::new();
        input.read_line(&mut line).map_err(broken)?;
        let header: JobHeader = serde_json::from_str(line.trim_end()).map_err(broken)?;
        if header.format != FORMAT {
            return Err(broken(format!(
                "format {} (this trainer reads format {FORMAT}); rebuild both executables together",
                header.format
            )));
        }
        let cells = header
            .rows
            .checked_mul(header.cols)
            .filter(|c| *c <= isize::MAX as usize / 8)
            .ok_or_else(|| broken("rows × cols overflows"))?;
        let mut bytes = vec![0u8; cells * 8];
        input.read_exact(&mut bytes).map_err(broken)?;
        let values: Vec<f64> = bytes
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8-byte chunks")))
            .collect();
        let x = Array2::from_shape_vec((header.rows, header.cols), values).map_err(broken)?;
        let mut y = vec![0u8; header.rows];
        input.read_exact(&mut y).map_err(broken)?;
        if y.iter().any(|v| *v > 1) {
            return Err(broken("labels must be 0 or 1"));
        }
        Ok((header, x, y))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn a_job_reads_back_as_written() {
            let x = Array2::from_shape_fn((3, 2), |(i, j)| i as f64 - 0.5 * j as f64);
            let y = vec![0, 1, 1];
            let mut buf = Vec::new();
            write_job(&mut buf, &x, &y, &NeuralParams::default(), 7).unwrap();
            let (h, x2, y2) = read_job(&mut buf.as_slice()).unwrap();
            assert_eq!((h.rows, h.cols, h.seed), (3, 2, 7));
            assert_eq!(x2, x);
            assert_eq!(y2, y);
            let truncated = &buf[..buf.len() - 2];
            assert!(read_job(&mut &truncated[..]).is_err());
        }
    }
}
