//! The boosting loop: gradients of the logistic loss, per-tree sampling,
//! score updates and early stopping.

use ndarray::ArrayView2;
use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::binning::BinnedData;
use super::grow::TreeGrower;
use super::histogram::GradHess;
use super::params::GbdtParams;
use super::predict::add_tree_outputs;
use super::tree::Tree;
use super::{GbdtError, Result};

/// Rows per task in the element-wise passes over all rows.
const ROW_CHUNK: usize = 8 * 1024;

/// Smallest hessian given to a row: keeps leaf values finite when the model
/// is already certain about every row of a leaf.
const MIN_ROW_HESSIAN: f32 = 1e-16;

/// Held-out rows watched for early stopping.
#[derive(Debug, Clone, Copy)]
pub struct Validation<'a> {
    /// Inputs, one row per customer, columns as in training.
    pub x: ArrayView2<'a, f64>,
    /// Labels, `1` for churn and `0` otherwise.
    pub y: &'a [u8],
}

/// A fitted boosted-trees classifier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GbdtModel {
    /// The settings it was fitted with.
    pub params: GbdtParams,
    /// Which input columns hold categorical level codes; its length is the
    /// number of inputs.
    pub categorical: Vec<bool>,
    /// Starting log-odds: the (weighted) training base rate's.
    pub base_score: f64,
    /// The trees kept (after early stopping).
    pub trees: Vec<Tree>,
    /// Validation log-loss of the kept model, when a validation set was
    /// given.
    pub validation_logloss: Option<f64>,
    /// The trees prepared for QuickScorer on the first prediction (never
    /// serialized; a clone starts without). Edit `trees` only before
    /// predicting: a scorer prepared for another number of trees is not
    /// used, but one for edited trees of the same number would be.
    #[serde(skip)]
    pub(crate) scorer: super::quickscorer::ScorerCache,
}

fn sigmoid(margin: f64) -> f64 {
    1.0 / (1.0 + (-margin).exp())
}

impl GbdtModel {
    /// Fits trees to rows `x` with labels `y` (`1` = churn). Columns flagged
    /// in `categorical` hold integer level codes; missing values are `NaN`.
    /// With `validation`, boosting stops once its log-loss has not improved
    /// for [`GbdtParams::early_stopping_rounds`] rounds and the best round's
    /// trees are kept.
    pub fn fit(
        x: ArrayView2<'_, f64>,
        y: &[u8],
        categorical: &[bool],
        params: &GbdtParams,
        validation: Option<Validation<'_>>,
    ) -> Result<GbdtModel> {
        params.check()?;
        let (n_rows, n_features) = x.dim();
        if n_rows == 0 || n_features == 0 {
            return Err(GbdtError::EmptyTraining(format!(
                "{n_rows} rows and {n_features} columns"
            )));
        }
        if y.len() != n_rows {
            return Err(GbdtError::ShapeMismatch(format!(
                "{n_rows} rows but {} labels",
                y.len()
            )));
        }
        if categorical.len() != n_features {
            return Err(GbdtError::ShapeMismatch(format!(
                "{n_features} columns but a categorical mask of {}",
                categorical.len()
            )));
        }
        check_labels(y)?;
        if let Some(v) = &validation {
            if v.x.ncols() != n_features || v.x.nrows() != v.y.len() {
                return Err(GbdtError::ShapeMismatch(format!(
                    "validation has {} rows, {} columns and {} labels; training has {n_features} columns",
                    v.x.nrows(),
                    v.x.ncols(),
                    v.y.len()
                )));
            }
            check_labels(v.y)?;
        }

        let positives = y.iter().filter(|&&label| label == 1).count();
        let negatives = n_rows - positives;
        if positives == 0 || negatives == 0 {
            return Err(GbdtError::SingleClass);
        }
        let positive_weight = if params.balanced {
            negatives as f64 / positives as f64
        } else {
            1.0
        };
        let base_score = (positive_weight * positives as f64 / negatives as f64).ln();

        let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
        let data = BinnedData::build(
            x,
            categorical,
            params.max_bins,
            params.cat_max_levels,
            params.bin_sample_rows,
            &mut rng,
        );
        let mut model = GbdtModel {
            params: params.clone(),
            categorical: categorical.to_vec(),
            base_score,
            trees: Vec::new(),
            validation_logloss: None,
            scorer: Default::default(),
        };
        let mut scores = vec![base_score; n_rows];
        let mut gradients = vec![GradHess::default(); n_rows];
        let mut watch = validation.map(|v| EarlyStopping::new(v, base_score));
        let mut grower = TreeGrower::new(&data, params);

        for round in 0..params.n_trees {
            // One random stream per round, drawn on this thread only.
            let mut round_rng = ChaCha8Rng::seed_from_u64(params.seed);
            round_rng.set_stream(round as u64 + 1);
            let features = draw_features(n_features, params.feature_fraction, &mut round_rng);
            let bag = draw_bag(n_rows, params.bagging_fraction, &mut round_rng);

            logistic_gradients(&scores, y, positive_weight, &mut gradients);
            let grown = grower.grow(&gradients, bag.as_deref(), &features);
            let sampled = bag.is_some() || features.len() < n_features;
            if grown.tree.nodes.len() == 1 && !sampled {
                // Nothing left to split on the full data: every later tree
                // would be the same single leaf.
                break;
            }

            // Rows in the bag: add their leaf's value by leaf range.
            let rows = grower.rows();
            for (range, value) in &grown.leaves {
                for &row in &rows[range.clone()] {
                    scores[row as usize] += value;
                }
            }
            // Out-of-bag rows: route them through the tree by their bins.
            if let Some(bag) = &bag {
                let mut in_bag = vec![false; n_rows];
                bag.iter().for_each(|&r| in_bag[r as usize] = true);
                scores
                    .par_chunks_mut(ROW_CHUNK)
                    .enumerate()
                    .for_each(|(chunk, scores)| {
                        let first = chunk * ROW_CHUNK;
                        for (i, score) in scores.iter_mut().enumerate() {
                            if !in_bag[first + i] {
                                *score += grown.value_of_row(&data, first + i);
                            }
                        }
                    });
            }
            model.trees.push(grown.tree);

            if let Some(watch) = &mut watch {
                let tree = model.trees.last().expect("just pushed");
                if watch.update(tree, round, params.early_stopping_rounds) {
                    break;
                }
            }
        }

        if let Some(watch) = watch {
            model.trees.truncate(watch.best_round + 1);
            model.validation_logloss = Some(watch.best_loss);
        }
        Ok(model)
    }

    /// Number of trees in the model (after early stopping).
    pub fn n_trees(&self) -> usize {
        self.trees.len()
    }

    /// Number of input columns.
    pub fn n_features(&self) -> usize {
        self.categorical.len()
    }

    /// Total split gain per input column over all trees: how much each
    /// column reduced the training loss.
    pub fn feature_importance_gain(&self) -> Vec<f64> {
        let mut gain = vec![0.0; self.n_features()];
        for node in self.trees.iter().flat_map(|t| &t.nodes) {
            if !node.is_leaf() {
                gain[node.feature as usize] += node.gain;
            }
        }
        gain
    }

    /// Checks a model read from outside (columns known, children in range
    /// and after their parent, finite values, bounded depth) so that
    /// predicting and explaining with it cannot panic.
    pub fn validate(&self) -> Result<()> {
        let invalid = |message: String| Err(GbdtError::InvalidModel(message));
        if self.categorical.is_empty() {
            return invalid("the model has no input columns".into());
        }
        if !self.base_score.is_finite() {
            return invalid("base score is not finite".into());
        }
        if let Err(e) = self.params.check() {
            return invalid(e.to_string());
        }
        for (index, tree) in self.trees.iter().enumerate() {
            if let Err(message) = tree.validate(&self.categorical) {
                return invalid(format!("tree {index}: {message}"));
            }
        }
        Ok(())
    }

    /// Serializes the model as JSON.
    pub fn to_json(&self) -> Result<String> {
        Ok(serde_json::to_string(self)?)
    }

    /// Reads a model from JSON and [validates](Self::validate) it.
    pub fn from_json(text: &str) -> Result<GbdtModel> {
        let model: GbdtModel = serde_json::from_str(text)?;
        model.validate()?;
        Ok(model)
    }
}

fn check_labels(y: &[u8]) -> Result<()> {
    match y.iter().position(|&label| label > 1) {
        Some(row) => Err(GbdtError::BadLabel { row, value: y[row] }),
        None => Ok(()),
    }
}

/// Gradient and hessian of the log-loss in the margin: `w(p - y)` and
/// `w p (1 - p)`, positives weighted by `positive_weight`.
fn logistic_gradients(scores: &[f64], y: &[u8], positive_weight: f64, out: &mut [GradHess]) {
    out.par_chunks_mut(ROW_CHUNK)
        .zip(scores.par_chunks(ROW_CHUNK).zip(y.par_chunks(ROW_CHUNK)))
        .for_each(|(out, (scores, y))| {
            for ((gh, &score), &label) in out.iter_mut().zip(scores).zip(y) {
                let p = sigmoid(score);
                let (target, weight) = if label == 1 {
                    (1.0, positive_weight)
                } else {
                    (0.0, 1.0)
                };
                gh.grad = (weight * (p - target)) as f32;
                gh.hess = ((weight * p * (1.0 - p)) as f32).max(MIN_ROW_HESSIAN);
            }
        });
}

/// The columns a round may split on, sorted.
fn draw_features(n_features: usize, fraction: f64, rng: &mut ChaCha8Rng) -> Vec<usize> {
    if fraction >= 1.0 {
        return (0..n_features).collect();
    }
    let k = ((n_features as f64 * fraction).round() as usize).clamp(1, n_features);
    let mut features = sample(rng, n_features, k).into_vec();
    features.sort_unstable();
    features
}

/// The rows a round grows its tree on (each kept with probability
/// `fraction`), sorted; `None` for all rows.
fn draw_bag(n_rows: usize, fraction: f64, rng: &mut ChaCha8Rng) -> Option<Vec<u32>> {
    if fraction >= 1.0 {
        return None;
    }
    let bag: Vec<u32> = (0..n_rows as u32)
        .filter(|_| rng.gen::<f64>() < fraction)
        .collect();
    // A tiny data set could draw an empty bag; grow on all rows instead.
    (!bag.is_empty()).then_some(bag)
}

/// Validation scores kept up to date tree by tree, and the best round so
/// far.
struct EarlyStopping<'a> {
    validation: Validation<'a>,
    scores: Vec<f64>,
    best_loss: f64,
    best_round: usize,
}

impl<'a> EarlyStopping<'a> {
    fn new(validation: Validation<'a>, base_score: f64) -> EarlyStopping<'a> {
        EarlyStopping {
            validation,
            scores: vec![base_score; validation.y.len()],
            best_loss: f64::INFINITY,
            best_round: 0,
        }
    }

    /// Adds `tree` to the validation scores; returns whether to stop.
    fn update(&mut self, tree: &Tree, round: usize, patience: usize) -> bool {
        add_tree_outputs(tree, self.validation.x, &mut self.scores);
        let loss = mean_logloss(&self.scores, self.validation.y);
        if loss < self.best_loss {
            self.best_loss = loss;
            self.best_round = round;
        }
        patience > 0 && round - self.best_round >= patience
    }
}

/// Mean log-loss, summed chunk by chunk and the chunks in order so the
/// result does not depend on the thread count.
fn mean_logloss(scores: &[f64], y: &[u8]) -> f64 {
    if y.is_empty() {
        return 0.0;
    }
    let per_chunk: Vec<f64> = scores
        .par_chunks(ROW_CHUNK)
        .zip(y.par_chunks(ROW_CHUNK))
        .map(|(scores, y)| {
            scores
                .iter()
                .zip(y)
                .map(|(&margin, &label)| {
                    // log(1 + e^m) - y m, written to stay finite for large |m|.
                    let softplus = margin.max(0.0) + (-margin.abs()).exp().ln_1p();
                    softplus - f64::from(label) * margin
                })
                .sum::<f64>()
        })
        .collect();
    per_chunk.iter().sum::<f64>() / y.len() as f64
}
