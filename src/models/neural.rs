//! The neural family: a multilayer perceptron trained with tch (libtorch):
//! ReLU hidden layers with dropout, Adam, mini-batches, early stopping on a
//! validation share of the training rows, on the CPU or CUDA.
//!
//! A tch network is `Send` but not `Sync`, so a fitted model exports its
//! weights into [`NeuralModel`] and serving uses an ndarray forward pass: any
//! build, with or without libtorch, can score a saved neural model, and a test
//! shows the two forward passes agree. Training needs the `torch` feature.

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
#[derive(Debug, Clone, Copy, PartialEq)]
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
    pub device: &'static str,
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
    /// Fits an MLP on preprocessed rows; `on_epoch` sees each epoch's loss and
    /// validation AUC. Needs the `torch` feature.
    #[cfg(not(feature = "torch"))]
    pub fn fit(
        _x: &Array2<f64>,
        _y: &[u8],
        params: &NeuralParams,
        _seed: u64,
        _on_epoch: &mut dyn FnMut(Epoch),
    ) -> Result<NeuralModel> {
        params.check()?;
        Err(ModelError::NotEnabled(
            "the neural model is not enabled in this build (built without the `torch` feature); train logistic or tree".into(),
        ))
    }

    /// Fits an MLP on preprocessed rows; `on_epoch` sees each epoch's loss and
    /// validation AUC. Needs the `torch` feature.
    #[cfg(feature = "torch")]
    pub fn fit(
        x: &Array2<f64>,
        y: &[u8],
        params: &NeuralParams,
        seed: u64,
        on_epoch: &mut dyn FnMut(Epoch),
    ) -> Result<NeuralModel> {
        params.check()?;
        torch::fit(x, y, params, seed, on_epoch)
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

#[cfg(feature = "torch")]
mod torch {
    //! Training with tch.

    use ndarray::Array2;
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    use tch::nn::{self, Module, OptimizerConfig};
    use tch::{Device, Kind, Tensor};

    use super::{DenseLayer, Epoch, NeuralModel, NeuralParams};
    use crate::models::{Family, ModelError, Result};

    fn fail(message: impl std::fmt::Display) -> ModelError {
        ModelError::Fit {
            family: Family::Neural,
            message: message.to_string(),
        }
    }

    fn device(name: &str) -> Result<(Device, &'static str)> {
        match name {
            "cpu" => Ok((Device::Cpu, "cpu")),
            "cuda" if tch::Cuda::is_available() => Ok((Device::Cuda(0), "cuda")),
            "cuda" => Err(ModelError::BadParam {
                name: "neural.device".into(),
                message: "cuda was asked for but libtorch sees no CUDA device".into(),
            }),
            _ if tch::Cuda::is_available() => Ok((Device::Cuda(0), "cuda")),
            _ => Ok((Device::Cpu, "cpu")),
        }
    }

    fn rows(x: &Array2<f64>, idx: &[usize], dev: Device) -> Tensor {
        let d = x.ncols();
        let mut v = Vec::with_capacity(idx.len() * d);
        for &i in idx {
            v.extend(x.row(i).iter().map(|a| *a as f32));
        }
        Tensor::from_slice(&v)
            .view([idx.len() as i64, d as i64])
            .to(dev)
    }

    fn labels(y: &[u8], idx: &[usize], dev: Device) -> Tensor {
        let v: Vec<f32> = idx.iter().map(|&i| f32::from(y[i])).collect();
        Tensor::from_slice(&v).view([idx.len() as i64, 1]).to(dev)
    }

    struct Net {
        hidden: Vec<nn::Linear>,
        out: nn::Linear,
        dropout: f64,
    }

    impl Net {
        fn forward(&self, x: &Tensor, train: bool) -> Tensor {
            let mut h = x.shallow_clone();
            for l in &self.hidden {
                h = l.forward(&h).relu().dropout(self.dropout, train);
            }
            self.out.forward(&h)
        }

        fn export(&self) -> Result<Vec<DenseLayer>> {
            let mut out = Vec::new();
            for l in self.hidden.iter().chain(std::iter::once(&self.out)) {
                let size = l.ws.size();
                let w: Vec<f32> =
                    Vec::try_from(&l.ws.to(Device::Cpu).flatten(0, -1)).map_err(fail)?;
                let b: Vec<f32> = match &l.bs {
                    Some(bs) => Vec::try_from(&bs.to(Device::Cpu)).map_err(fail)?,
                    None => vec![0.0; size[0] as usize],
                };
                out.push(DenseLayer {
                    weights: w.into_iter().map(f64::from).collect(),
                    bias: b.into_iter().map(f64::from).collect(),
                    inputs: size[1] as usize,
                });
            }
            Ok(out)
        }
    }

    /// libtorch's inter-op pool: one thread (nothing here runs ops
    /// concurrently). It can be sized only once per process and only before
    /// it is first used, so this runs once and a refusal is ignored.
    fn single_interop_thread() {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            let _ = std::panic::catch_unwind(|| tch::set_num_interop_threads(1));
        });
    }

    /// Sets libtorch's intra-op threads for the duration of a fit and puts
    /// the previous count back afterwards.
    struct IntraOpThreads(Option<i32>);

    impl IntraOpThreads {
        fn set(threads: usize) -> IntraOpThreads {
            if threads == 0 {
                return IntraOpThreads(None);
            }
            let before = tch::get_num_threads();
            tch::set_num_threads(threads as i32);
            IntraOpThreads(Some(before))
        }
    }

    impl Drop for IntraOpThreads {
        fn drop(&mut self) {
            if let Some(before) = self.0 {
                tch::set_num_threads(before);
            }
        }
    }

    pub(super) fn fit(
        x: &Array2<f64>,
        y: &[u8],
        params: &NeuralParams,
        seed: u64,
        on_epoch: &mut dyn FnMut(Epoch),
    ) -> Result<NeuralModel> {
        let (dev, dev_name) = device(&params.device)?;
        single_interop_thread();
        let _threads = IntraOpThreads::set(if dev == Device::Cpu {
            params.threads
        } else {
            0
        });
        tch::manual_seed(seed as i64);
        let (n, d) = x.dim();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut idx: Vec<usize> = (0..n).collect();
        idx.shuffle(&mut rng);
        let n_val = ((n as f64) * 0.15).round().max(1.0) as usize;
        let (val_idx, train_idx) = idx.split_at(n_val.min(n.saturating_sub(1)));
        if train_idx.is_empty() {
            return Err(ModelError::EmptyTraining);
        }
        let (x_tr, y_tr) = (rows(x, train_idx, dev), labels(y, train_idx, dev));
        let x_val = rows(x, val_idx, dev);
        let y_val: Vec<u8> = val_idx.iter().map(|&i| y[i]).collect();
        let y_val_t = labels(y, val_idx, dev);

        let vs = nn::VarStore::new(dev);
        let root = vs.root();
        let mut hidden = Vec::new();
        let mut width = d as i64;
        for (k, h) in params.hidden.iter().enumerate() {
            hidden.push(nn::linear(
                &root / format!("hidden{k}"),
                width,
                *h as i64,
                Default::default(),
            ));
            width = *h as i64;
        }
        let net = Net {
            hidden,
            out: nn::linear(&root / "out", width, 1, Default::default()),
            dropout: params.dropout,
        };
        let mut opt = nn::Adam::default()
            .build(&vs, params.learning_rate)
            .map_err(fail)?;
        let n_tr = train_idx.len() as i64;
        let batch = params.batch_size as i64;
        let mut best: Option<(f64, Vec<DenseLayer>)> = None;
        let mut since_best = 0;
        for epoch in 1..=params.max_epochs {
            // One shuffled copy per epoch; the batches are views of it.
            let perm = Tensor::randperm(n_tr, (Kind::Int64, dev));
            let (x_ep, y_ep) = (x_tr.index_select(0, &perm), y_tr.index_select(0, &perm));
            let mut total = 0.0;
            let mut start = 0;
            while start < n_tr {
                let len = batch.min(n_tr - start);
                let logits = net.forward(&x_ep.narrow(0, start, len), true);
                let loss = logits.binary_cross_entropy_with_logits::<Tensor>(
                    &y_ep.narrow(0, start, len),
                    None,
                    None,
                    tch::Reduction::Mean,
                );
                opt.backward_step(&loss);
                total += loss.double_value(&[]) * len as f64;
                start += len;
            }
            let (val_loss, val_p) = tch::no_grad(|| {
                let logits = net.forward(&x_val, false);
                let loss = logits
                    .binary_cross_entropy_with_logits::<Tensor>(
                        &y_val_t,
                        None,
                        None,
                        tch::Reduction::Mean,
                    )
                    .double_value(&[]);
                let p: Vec<f32> = Vec::try_from(&logits.sigmoid().to(Device::Cpu).flatten(0, -1))
                    .unwrap_or_default();
                (loss, p)
            });
            let val_p: Vec<f64> = val_p.into_iter().map(f64::from).collect();
            on_epoch(Epoch {
                epoch,
                max_epochs: params.max_epochs,
                loss: total / n_tr as f64,
                validation_auc: crate::eval::roc_auc(&y_val, &val_p),
                device: dev_name,
            });
            if !val_loss.is_finite() {
                return Err(fail(format!(
                    "validation loss became {val_loss} at epoch {epoch}"
                )));
            }
            if best.as_ref().is_none_or(|(b, _)| val_loss < *b - 1e-6) {
                best = Some((val_loss, net.export()?));
                since_best = 0;
            } else {
                since_best += 1;
                if since_best >= params.patience {
                    break;
                }
            }
        }
        let (_, layers) = best.ok_or_else(|| fail("no epoch ran"))?;
        Ok(NeuralModel { layers })
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn ndarray_forward_matches_tch() {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
            let x = Array2::from_shape_fn((400, 5), |_| rand::Rng::gen_range(&mut rng, -2.0..2.0));
            let y: Vec<u8> = x
                .rows()
                .into_iter()
                .map(|r| u8::from(r[0] + 0.5 * r[1] > 0.0))
                .collect();
            let params = NeuralParams {
                hidden: vec![8, 4],
                max_epochs: 5,
                device: "cpu".into(),
                ..NeuralParams::default()
            };
            let model = fit(&x, &y, &params, 1, &mut |_| {}).unwrap();
            // Rebuild the same net in tch from the exported weights.
            let vs = nn::VarStore::new(Device::Cpu);
            let mut h = rows(&x, &(0..x.nrows()).collect::<Vec<_>>(), Device::Cpu);
            let _ = &vs;
            for (k, l) in model.layers.iter().enumerate() {
                let w: Vec<f32> = l.weights.iter().map(|v| *v as f32).collect();
                let b: Vec<f32> = l.bias.iter().map(|v| *v as f32).collect();
                let w = Tensor::from_slice(&w).view([l.bias.len() as i64, l.inputs as i64]);
                let b = Tensor::from_slice(&b);
                h = h.matmul(&w.tr()) + b;
                if k + 1 < model.layers.len() {
                    h = h.relu();
                }
            }
            let tch_p: Vec<f32> = Vec::try_from(&h.sigmoid().flatten(0, -1)).unwrap();
            let nd_p = model.probabilities(&x);
            for (a, b) in tch_p.iter().zip(&nd_p) {
                assert!((f64::from(*a) - b).abs() < 1e-5, "{a} vs {b}");
            }
        }
    }
}
