//! Training the MLP with tch (libtorch): ReLU hidden layers with dropout,
//! Adam, mini-batches, early stopping on a validation share of the training
//! rows, on the CPU or CUDA. The fitted net is exported as plain weights
//! ([`NeuralModel`]) that churnguard-core scores without libtorch.

use ndarray::Array2;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use tch::nn::{self, Module, OptimizerConfig};
use tch::{Device, Kind, Tensor};

use churnguard_core::models::neural::{DenseLayer, Epoch, NeuralModel, NeuralParams};
use churnguard_core::models::{Family, ModelError, Result};

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
            let w: Vec<f32> = Vec::try_from(&l.ws.to(Device::Cpu).flatten(0, -1)).map_err(fail)?;
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

/// Fits an MLP on preprocessed rows: 15% of them (seeded) are held out for
/// early stopping, the best epoch's weights are kept. `on_epoch` sees each
/// epoch's loss and validation AUC.
pub fn fit(
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
            let p: Vec<f32> =
                Vec::try_from(&logits.sigmoid().to(Device::Cpu).flatten(0, -1)).unwrap_or_default();
            (loss, p)
        });
        let val_p: Vec<f64> = val_p.into_iter().map(f64::from).collect();
        on_epoch(Epoch {
            epoch,
            max_epochs: params.max_epochs,
            loss: total / n_tr as f64,
            validation_auc: churnguard_core::eval::roc_auc(&y_val, &val_p),
            device: dev_name.to_string(),
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
    Ok(NeuralModel {
        layers,
        background: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    /// The ndarray forward pass that serving uses equals tch's own forward
    /// pass on the exported weights within 1e-6 (both in f64), on nets of
    /// several shapes and on inputs far outside the training range.
    #[test]
    fn ndarray_forward_matches_tch_within_1e_6() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for (hidden, scale) in [(vec![8, 4], 2.0), (vec![16], 5.0), (vec![32, 16, 8], 50.0)] {
            let x = Array2::from_shape_fn((400, 5), |_| rng.gen_range(-2.0..2.0));
            let y: Vec<u8> = x
                .rows()
                .into_iter()
                .map(|r| u8::from(r[0] + 0.5 * r[1] > 0.0))
                .collect();
            let params = NeuralParams {
                hidden,
                max_epochs: 5,
                device: "cpu".into(),
                ..NeuralParams::default()
            };
            let model = fit(&x, &y, &params, 1, &mut |_| {}).unwrap();
            let probe = Array2::from_shape_fn((300, 5), |_| rng.gen_range(-scale..scale));
            let flat: Vec<f64> = probe.iter().copied().collect();
            let mut h = Tensor::from_slice(&flat).view([300, 5]);
            for (k, l) in model.layers.iter().enumerate() {
                let w = Tensor::from_slice(&l.weights).view([l.bias.len() as i64, l.inputs as i64]);
                let b = Tensor::from_slice(&l.bias);
                h = h.matmul(&w.tr()) + b;
                if k + 1 < model.layers.len() {
                    h = h.relu();
                }
            }
            let tch_p: Vec<f64> = Vec::try_from(&h.sigmoid().flatten(0, -1)).unwrap();
            let nd_p = model.probabilities(&probe);
            for (a, b) in tch_p.iter().zip(&nd_p) {
                assert!((a - b).abs() < 1e-6, "{a} vs {b}");
            }
        }
    }
}
