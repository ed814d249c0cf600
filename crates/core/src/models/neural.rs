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
    /// A few training rows (in the one-hot design), the background that
    /// per-customer contributions are measured against. Empty in models
    /// saved before it was kept, which then explain against the all-zero
    /// row (the standardised mean of every numeric input, no level set).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub background: Vec<Vec<f64>>,
}

/// Permutations of the inputs per customer in [`NeuralModel::shapley`]:
/// two antithetic pairs (a random order and its reverse). Their error
/// against exact Shapley values is measured by a test (see
/// `SHAPLEY_ERROR_BOUND`).
pub const SHAPLEY_PERMUTATIONS: usize = 4;

/// The error the sampled Shapley values stay within: the largest single
/// input's error, as a share of the row's total absolute attribution
/// `Σ |φ|`, measured against exact enumeration (all 2⁸ subsets of 8
/// inputs) on 200 rows of random networks by a test (worst seen: 0.165).
/// Their sum is exact: it always equals `f(x) − base`.
pub const SHAPLEY_ERROR_BOUND: f64 = 0.2;

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

    /// The output log-odds of design rows.
    pub fn logits(&self, x: &Array2<f64>) -> Vec<f64> {
        self.forward(x).column(0).to_vec()
    }

    /// Shapley values of the output log-odds per raw input, by permutation
    /// sampling against the background rows: for each of
    /// [`SHAPLEY_PERMUTATIONS`] orders of the inputs (antithetic pairs) and
    /// each background row, the inputs are switched from the background's
    /// values to the customer's one at a time, and each input is credited
    /// with the change it makes. `sources` maps design columns to inputs
    /// (a categorical input's levels move together). The credits add up to
    /// exactly `f(x) − base` (the sum telescopes); each input's estimate is
    /// within [`SHAPLEY_ERROR_BOUND`] of its exact value (tested). Orders
    /// come from a stream seeded by `seed` and the row's index, so a row is
    /// explained the same way in any batch. Returns the base (the mean
    /// log-odds of the background) and rows × inputs.
    pub fn shapley(
        &self,
        x: &Array2<f64>,
        sources: &[usize],
        n_inputs: usize,
        seed: u64,
    ) -> (f64, Array2<f64>) {
        use rand::seq::SliceRandom;
        use rand::SeedableRng;
        use rayon::prelude::*;

        let width = x.ncols();
        let background: Vec<Vec<f64>> = if self.background.is_empty() {
            vec![vec![0.0; width]]
        } else {
            self.background.clone()
        };
        let b = background.len();
        let bg = Array2::from_shape_fn((b, width), |(i, j)| background[i][j]);
        let base = self.logits(&bg).iter().sum::<f64>() / b as f64;
        let mut columns_of: Vec<Vec<usize>> = vec![Vec::new(); n_inputs];
        for (col, src) in sources.iter().enumerate() {
            if *src < n_inputs {
                columns_of[*src].push(col);
            }
        }
        let rows: Vec<Vec<f64>> = (0..x.nrows())
            .into_par_iter()
            .map(|i| {
                let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
                rng.set_stream(i as u64);
                let mut orders = Vec::with_capacity(SHAPLEY_PERMUTATIONS);
                while orders.len() < SHAPLEY_PERMUTATIONS {
                    let mut order: Vec<usize> = (0..n_inputs).collect();
                    order.shuffle(&mut rng);
                    let reverse: Vec<usize> = order.iter().rev().copied().collect();
                    orders.push(order);
                    orders.push(reverse);
                }
                // Every variant of the row in one matrix: per order and
                // background row, the background, then one more input
                // switched to the customer's values per step.
                let steps = n_inputs + 1;
                let mut variants = Array2::<f64>::zeros((orders.len() * b * steps, width));
                let mut r = 0;
                for order in &orders {
                    for z in &background {
                        let mut current = z.clone();
                        variants
                            .row_mut(r)
                            .assign(&ndarray::ArrayView1::from(&current));
                        r += 1;
                        for &input in order {
                            for &col in &columns_of[input] {
                                current[col] = x[[i, col]];
                            }
                            variants
                                .row_mut(r)
                                .assign(&ndarray::ArrayView1::from(&current));
                            r += 1;
                        }
                    }
                }
                let out = self.logits(&variants);
                let mut phi = vec![0.0; n_inputs];
                let mut r = 0;
                for order in &orders {
                    for _ in 0..b {
                        for &input in order {
                            phi[input] += out[r + 1] - out[r];
                            r += 1;
                        }
                        r += 1;
                    }
                }
                let scale = (orders.len() * b) as f64;
                phi.iter_mut().for_each(|v| *v /= scale);
                phi
            })
            .collect();
        let mut out = Array2::zeros((x.nrows(), n_inputs));
        for (i, phi) in rows.into_iter().enumerate() {
            out.row_mut(i).assign(&ndarray::Array1::from(phi));
        }
        (base, out)
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

#[cfg(test)]
mod shapley_tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// A random MLP with `inputs` inputs and a hidden layer of 16 units.
    fn random_mlp(inputs: usize, rng: &mut rand_chacha::ChaCha8Rng) -> NeuralModel {
        let mut layer = |n_in: usize, n_out: usize| DenseLayer {
            weights: (0..n_in * n_out)
                .map(|_| rng.gen_range(-1.0..1.0))
                .collect(),
            bias: (0..n_out).map(|_| rng.gen_range(-0.5..0.5)).collect(),
            inputs: n_in,
        };
        let layers = vec![layer(inputs, 16), layer(16, 1)];
        let background = (0..8)
            .map(|_| (0..inputs).map(|_| rng.gen_range(-1.0..1.0)).collect())
            .collect();
        NeuralModel { layers, background }
    }

    /// Exact Shapley values of the same game the sampler estimates:
    /// v(S) = mean over background rows z of f(x on S, z elsewhere).
    fn exact(model: &NeuralModel, x: &[f64]) -> Vec<f64> {
        let n = x.len();
        let v = |mask: usize| -> f64 {
            let rows: Vec<f64> = model
                .background
                .iter()
                .flat_map(|z| (0..n).map(move |j| if mask >> j & 1 == 1 { x[j] } else { z[j] }))
                .collect();
            let m = Array2::from_shape_vec((model.background.len(), n), rows).unwrap();
            model.logits(&m).iter().sum::<f64>() / model.background.len() as f64
        };
        let values: Vec<f64> = (0..1usize << n).map(v).collect();
        let fact = |k: usize| (1..=k).map(|i| i as f64).product::<f64>();
        (0..n)
            .map(|i| {
                let mut phi = 0.0;
                for mask in 0..1usize << n {
                    if mask >> i & 1 == 1 {
                        continue;
                    }
                    let s = mask.count_ones() as usize;
                    let w = fact(s) * fact(n - s - 1) / fact(n);
                    phi += w * (values[mask | 1 << i] - values[mask]);
                }
                phi
            })
            .collect()
    }

    #[test]
    fn sampled_shapley_adds_up_exactly_and_stays_within_its_bound() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let inputs = 8;
        let mut worst: f64 = 0.0;
        for _ in 0..5 {
            let model = random_mlp(inputs, &mut rng);
            let x = Array2::from_shape_fn((40, inputs), |_| rng.gen_range(-2.0..2.0));
            let sources: Vec<usize> = (0..inputs).collect();
            let (base, phi) = model.shapley(&x, &sources, inputs, 3);
            let logits = model.logits(&x);
            for (i, logit) in logits.iter().enumerate() {
                let total = logit - base;
                assert!(
                    (phi.row(i).sum() - total).abs() < 1e-9,
                    "the sum telescopes"
                );
                let truth = exact(&model, &x.row(i).to_vec());
                let err = phi
                    .row(i)
                    .iter()
                    .zip(&truth)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f64::max);
                let scale = truth.iter().map(|v| v.abs()).sum::<f64>().max(1e-9);
                worst = worst.max(err / scale);
            }
        }
        // `worst` is the largest error of a row's sampled Shapley values
        // as a share of its total |attribution|.
        assert!(
            worst <= SHAPLEY_ERROR_BOUND,
            "worst {worst:.3} over the bound {SHAPLEY_ERROR_BOUND}"
        );
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
