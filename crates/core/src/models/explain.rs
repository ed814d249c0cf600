//! Per-customer contributions that add up to the model's score: for every
//! family, `base + Σ contributions = raw log-odds` (before calibration), so
//! a reason's weight is a share of the score itself, not a heuristic.
//!
//! - logistic: exact. An input's contribution is the sum over its design
//!   columns of `coefficient × (value − training mean)` (a level's
//!   indicator against its training frequency); the base is the score of
//!   the mean row.
//! - tree and gbdt: exact path-dependent TreeSHAP (Lundberg et al. 2018),
//!   the tree in log-odds (a leaf's value is the log-odds of its
//!   probability) and each node weighted by its training cover.
//! - neural: permutation-sampled Shapley values against a background of
//!   training rows ([`NeuralModel::shapley`](super::neural::NeuralModel::shapley)):
//!   their sum is exact, each value within a measured bound.
//!
//! Contributions are per raw input: a categorical input's levels are
//! summed, so "contract" is one reason, not one per level. A missing value
//! is attributed to its input and shown as `missing`, never as the median
//! a family may have filled in for it.

use ndarray::Array2;

use super::{Batch, ChurnModel, FittedModel, Result};

/// Seed of the neural family's sampled orders: fixed, so a customer's
/// reasons do not change from one run to the next.
const NEURAL_SHAPLEY_SEED: u64 = 0x5eed_5a91;

/// Log-odds clamp: probabilities of exactly 0 or 1 would be infinite.
const MAX_LOGIT: f64 = 30.0;

/// The logistic function.
pub fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// The log-odds of a probability, clamped to ±30.
pub fn logit(p: f64) -> f64 {
    (p / (1.0 - p)).ln().clamp(-MAX_LOGIT, MAX_LOGIT)
}

/// How the contributions were computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Exact: logistic terms, or TreeSHAP.
    Exact,
    /// Permutation-sampled Shapley values (the neural family).
    Sampled,
}

/// A batch's scores taken apart.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    /// The model's expected log-odds (the mean row's score, or the
    /// training cover-weighted mean, or the background's mean score).
    pub base: f64,
    /// Rows × raw inputs (numeric, then categorical), in log-odds: how much
    /// each input moves the row's score from the base (positive raises risk).
    pub contributions: Array2<f64>,
    /// Each row's raw log-odds: `base + Σ contributions` (for sampled
    /// contributions, to rounding).
    pub logits: Vec<f64>,
    /// Per row, whether a categorical value was unseen in training.
    pub unknown: Vec<bool>,
    /// How the contributions were computed.
    pub method: Method,
}

impl FittedModel {
    /// Every row's contributions per raw input, adding up to its raw
    /// log-odds (see the module docs for each family's method).
    pub fn explain(&self, batch: &Batch) -> Result<Explanation> {
        let (x, unknown) = self.design_matrix(batch)?;
        let sources = self.design_sources();
        let n_inputs = self.preprocessor.n_inputs();
        let (base, per_column, logits, method) = match &self.model {
            ChurnModel::Logistic(m) => {
                let means: Vec<f64> = if m.column_means.is_empty() {
                    vec![0.0; x.ncols()]
                } else {
                    m.column_means.clone()
                };
                let base = m.intercept
                    + m.coefficients
                        .iter()
                        .zip(&means)
                        .map(|(c, mu)| c * mu)
                        .sum::<f64>();
                let mut c = x.clone();
                for (j, mut col) in c.columns_mut().into_iter().enumerate() {
                    let (w, mu) = (m.coefficients[j], means[j]);
                    col.mapv_inplace(|v| w * (v - mu));
                }
                let logits = m.logits(&x);
                (base, c, logits, Method::Exact)
            }
            ChurnModel::Tree(t) => {
                let tree = t.as_shap_tree();
                let c = super::gbdt::tree_contributions(std::slice::from_ref(&tree), x.view());
                let base = tree.expected_value();
                let logits = t.probabilities(&x).into_iter().map(logit).collect();
                (base, c, logits, Method::Exact)
            }
            ChurnModel::Gbdt(g) => {
                let c = g.contributions(x.view()).map_err(super::gbdt_error)?;
                let logits = g.predict_raw(x.view()).map_err(super::gbdt_error)?;
                (g.base_value(), c, logits, Method::Exact)
            }
            ChurnModel::Neural(n) => {
                let (base, per_input) = n.shapley(&x, &sources, n_inputs, NEURAL_SHAPLEY_SEED);
                let logits = n.logits(&x);
                return Ok(Explanation {
                    base,
                    contributions: per_input,
                    logits,
                    unknown,
                    method: Method::Sampled,
                });
            }
        };
        let mut per_input = Array2::zeros((x.nrows(), n_inputs));
        for (col, src) in sources.iter().enumerate() {
            let mut target = per_input.column_mut(*src);
            target += &per_column.column(col);
        }
        Ok(Explanation {
            base,
            contributions: per_input,
            logits,
            unknown,
            method,
        })
    }
}
