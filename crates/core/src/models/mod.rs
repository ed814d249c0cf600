//! Churn models: one closed set of families behind [`ChurnModel`], each with
//! its preprocessing and probability calibration saved alongside.
//!
//! A [`FittedModel`] is the unit that is trained, saved, loaded and served:
//! raw feature rows in ([`Batch`]), calibrated churn probabilities and
//! reasons out. Its serde form is churnguard's own artifact format, not
//! linfa's internals.

pub mod columnar;
pub mod explain;
pub mod gbdt;
pub mod logistic;
pub mod neural;
mod prepared;
pub mod preprocess;
pub mod tree;

use ndarray::Array2;
use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::eval::calibration::Calibrator;
pub use explain::Explanation;
pub use gbdt::{GbdtModel, GbdtParams};
pub use logistic::{LogisticModel, LogisticParams};
pub use preprocess::Preprocessor;
pub use tree::{TreeModel, TreeParams};

/// Result alias of the model layer.
pub type Result<T, E = ModelError> = std::result::Result<T, E>;

/// What can go wrong while fitting or applying a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// No training rows.
    #[error("no training rows")]
    EmptyTraining,
    /// Training labels hold a single class.
    #[error("training labels hold a single class")]
    SingleClass,
    /// A column the model needs is missing or has the wrong type.
    #[error("column `{column}`: {message}")]
    BadColumn {
        /// The column.
        column: String,
        /// What is wrong.
        message: String,
    },
    /// The data's inputs differ from the model's.
    #[error("feature schema mismatch: {0}")]
    SchemaMismatch(String),
    /// A hyperparameter out of range.
    #[error("invalid hyperparameter `{name}`: {message}")]
    BadParam {
        /// The setting, as written in the training config.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// The family is not compiled into this build.
    #[error("{0}")]
    NotEnabled(String),
    /// The underlying learner failed.
    #[error("fitting {family} failed: {message}")]
    Fit {
        /// The family.
        family: Family,
        /// The learner's message.
        message: String,
    },
}

impl crate::error::HasKind for ModelError {
    fn kind(&self) -> crate::error::ErrorKind {
        use crate::error::ErrorKind;
        match self {
            ModelError::EmptyTraining
            | ModelError::SingleClass
            | ModelError::BadColumn { .. }
            | ModelError::SchemaMismatch(_)
            | ModelError::BadParam { .. }
            | ModelError::NotEnabled(_) => ErrorKind::BadInput,
            // A learner that fails on valid data is ours to fix.
            ModelError::Fit { .. } => ErrorKind::Internal,
        }
    }
}

/// The model families.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// L2-regularised logistic regression (own Newton solver, or linfa-logistic).
    Logistic,
    /// A single decision tree (own CART) with leaf probabilities.
    Tree,
    /// A multilayer perceptron (trained with tch, scored from its weights).
    Neural,
    /// Gradient-boosted trees (own histogram boosting), on raw values and
    /// level codes, with missing values routed natively.
    Gbdt,
}

impl Family {
    /// Every family, in leaderboard order.
    pub const ALL: [Family; 4] = [Family::Logistic, Family::Tree, Family::Gbdt, Family::Neural];

    /// The family's name as used in configs and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Family::Logistic => "logistic",
            Family::Tree => "tree",
            Family::Neural => "neural",
            Family::Gbdt => "gbdt",
        }
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Family {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Family, String> {
        Family::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| {
                format!("unknown model family {s:?} (expected logistic, tree, gbdt or neural)")
            })
    }
}

/// Raw feature rows: what a model takes in. Missing numeric values are NaN,
/// missing categorical values `None`.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Row ids, as text.
    pub ids: Vec<String>,
    /// Names of the numeric inputs (shared: an online request's batch takes
    /// them from the model's schema without copying them).
    pub numeric_names: std::sync::Arc<[String]>,
    /// Numeric inputs, `rows × numeric_names`.
    pub numeric: Array2<f64>,
    /// Names of the categorical inputs (shared, as `numeric_names`).
    pub categorical_names: std::sync::Arc<[String]>,
    /// Categorical inputs, one vector per input.
    pub categorical: Vec<Vec<Option<String>>>,
}

impl Batch {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The rows at `idx`, in that order.
    pub fn select(&self, idx: &[usize]) -> Batch {
        Batch {
            ids: idx.iter().map(|&i| self.ids[i].clone()).collect(),
            numeric_names: self.numeric_names.clone(),
            numeric: self.numeric.select(ndarray::Axis(0), idx),
            categorical_names: self.categorical_names.clone(),
            categorical: self
                .categorical
                .iter()
                .map(|c| idx.iter().map(|&i| c[i].clone()).collect())
                .collect(),
        }
    }

    /// Reads the named inputs out of a frame. Numeric columns of any numeric
    /// type are read as `f64`; categorical columns as text.
    pub fn from_frame(
        df: &DataFrame,
        id: &str,
        numeric: &[String],
        categorical: &[String],
    ) -> Result<Batch> {
        Ok(columnar::FrameInputs::read(df, id, numeric, categorical)?.into_batch())
    }
}

/// Reads 0/1 labels out of a frame; rows whose label is empty are reported
/// by index so the caller can drop them.
pub fn labels_from_frame(df: &DataFrame, label: &str) -> Result<Vec<Option<u8>>> {
    let bad = |message: String| ModelError::BadColumn {
        column: label.to_string(),
        message,
    };
    let c = df
        .column(label)
        .map_err(|_| bad("missing from the data".into()))?;
    let c = c.cast(&DataType::Int64).map_err(|e| bad(e.to_string()))?;
    c.i64()
        .map_err(|e| bad(e.to_string()))?
        .iter()
        .enumerate()
        .map(|(i, v)| match v {
            None => Ok(None),
            Some(0) => Ok(Some(0)),
            Some(1) => Ok(Some(1)),
            Some(other) => Err(bad(format!(
                "row {}: label must be 0 or 1, found {other}",
                i + 1
            ))),
        })
        .collect()
}

/// The family-specific part of a fitted model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "family", rename_all = "snake_case")]
pub enum ChurnModel {
    /// Logistic regression coefficients.
    Logistic(LogisticModel),
    /// Decision tree nodes with leaf probabilities.
    Tree(TreeModel),
    /// MLP weights (exported from tch).
    Neural(neural::NeuralModel),
    /// Boosted trees.
    Gbdt(GbdtModel),
}

/// The matrix a family reads: the one-hot, standardised columns of
/// [`Preprocessor::transform`], or the raw values and level codes of
/// [`Preprocessor::transform_codes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Design {
    /// Standardised numeric inputs (median-imputed) and one indicator per level.
    OneHot,
    /// Raw numeric inputs (`NaN` when missing) and one level code per categorical input.
    Codes,
}

impl ChurnModel {
    /// The family.
    pub fn family(&self) -> Family {
        match self {
            ChurnModel::Logistic(_) => Family::Logistic,
            ChurnModel::Tree(_) => Family::Tree,
            ChurnModel::Neural(_) => Family::Neural,
            ChurnModel::Gbdt(_) => Family::Gbdt,
        }
    }

    /// Which matrix the family reads.
    pub fn design(&self) -> Design {
        match self {
            ChurnModel::Logistic(_) | ChurnModel::Tree(_) | ChurnModel::Neural(_) => Design::OneHot,
            ChurnModel::Gbdt(_) => Design::Codes,
        }
    }

    /// Uncalibrated churn probabilities of design rows.
    pub fn raw_probabilities(&self, x: &Array2<f64>) -> Result<Vec<f64>> {
        Ok(match self {
            ChurnModel::Logistic(m) => m.probabilities(x),
            ChurnModel::Tree(m) => m.probabilities(x),
            ChurnModel::Neural(m) => m.probabilities(x),
            ChurnModel::Gbdt(m) => m.predict_proba(x.view()).map_err(gbdt_error)?,
        })
    }

    /// Global importance per design column (non-negative, sums to 1 when
    /// any is positive).
    pub fn importance(&self, width: usize) -> Vec<f64> {
        let raw = match self {
            ChurnModel::Logistic(m) => m.importance(),
            ChurnModel::Tree(m) => m.importance(width),
            ChurnModel::Neural(m) => m.importance(width),
            ChurnModel::Gbdt(m) => m.feature_importance_gain(),
        };
        normalise(raw)
    }
}

/// A boosted model's error as the model layer's.
pub(crate) fn gbdt_error(e: gbdt::GbdtError) -> ModelError {
    match e {
        gbdt::GbdtError::EmptyTraining(_) => ModelError::EmptyTraining,
        gbdt::GbdtError::SingleClass => ModelError::SingleClass,
        gbdt::GbdtError::BadParam { name, message } => ModelError::BadParam { name, message },
        gbdt::GbdtError::ShapeMismatch(m) | gbdt::GbdtError::InvalidModel(m) => {
            ModelError::SchemaMismatch(m)
        }
        e @ (gbdt::GbdtError::BadLabel { .. } | gbdt::GbdtError::Parse(_)) => ModelError::Fit {
            family: Family::Gbdt,
            message: e.to_string(),
        },
    }
}

fn normalise(v: Vec<f64>) -> Vec<f64> {
    let total: f64 = v.iter().sum();
    if total > 0.0 {
        v.into_iter().map(|x| x / total).collect()
    } else {
        v
    }
}

/// A reason a customer is at risk: an input and its value.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    /// The input's name.
    pub feature: String,
    /// Its value for this customer, as text (`"month-to-month"`, `"3"`, `"missing"`).
    pub value: String,
    /// How much it pushes risk up, in the model's units (> 0).
    pub weight: f64,
}

/// A trained model with everything needed to apply it to raw rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FittedModel {
    /// Preprocessing fitted on the training rows.
    pub preprocessor: Preprocessor,
    /// The family's parameters.
    pub model: ChurnModel,
    /// Probability calibration fitted on validation rows.
    pub calibrator: Calibrator,
    /// P(involuntary | churn): a logistic model on the same transformed
    /// inputs, fitted on the training churners whose type is known. Absent
    /// when the training data had no churn types (flat tables).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub churn_type: Option<LogisticModel>,
}

/// Everything a scoring run needs from a model for a batch, from one pass
/// of preprocessing.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchScores {
    /// Calibrated churn probabilities.
    pub probabilities: Vec<f64>,
    /// P(involuntary | churn) per row, when the model has a churn-type part.
    pub p_involuntary: Option<Vec<f64>>,
    /// The top reasons per row.
    pub reasons: Vec<Vec<Reason>>,
    /// Per row, the categorical inputs whose value fell into the unknown bucket.
    pub unknown: Vec<Vec<String>>,
}

impl FittedModel {
    /// Checks that the parts fit together, so that a loaded artifact can
    /// never panic or loop when applied: coefficient and weight shapes
    /// match the preprocessing's width, tree children come after their
    /// parents and inside the tree, parameters are finite. Loading calls it.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(ModelError::SchemaMismatch(m));
        let width = self.preprocessor.width();
        for c in &self.preprocessor.numeric {
            if !(c.median.is_finite() && c.mean.is_finite() && c.std.is_finite() && c.std > 0.0) {
                return bad(format!(
                    "input {}: scaling parameters must be finite, std > 0",
                    c.name
                ));
            }
        }
        for c in &self.preprocessor.categorical {
            if c.levels.windows(2).any(|w| w[0] >= w[1]) {
                return bad(format!(
                    "input {}: levels must be sorted and distinct",
                    c.name
                ));
            }
        }
        let finite = |v: &[f64]| v.iter().all(|x| x.is_finite());
        match &self.model {
            ChurnModel::Logistic(m) => {
                if m.coefficients.len() != width
                    || !finite(&m.coefficients)
                    || !m.intercept.is_finite()
                {
                    return bad(format!(
                        "logistic model has {} coefficients for {width} inputs (or non-finite ones)",
                        m.coefficients.len()
                    ));
                }
            }
            ChurnModel::Tree(t) => {
                if t.nodes.is_empty() {
                    return bad("tree has no nodes".into());
                }
                for (i, node) in t.nodes.iter().enumerate() {
                    if !node.probability.is_finite() {
                        return bad(format!("tree node {i}: probability is not finite"));
                    }
                    if let Some(s) = &node.split {
                        if s.feature >= width
                            || s.left <= i
                            || s.right <= i
                            || s.left >= t.nodes.len()
                            || s.right >= t.nodes.len()
                            || s.threshold.is_nan()
                        {
                            return bad(format!("tree node {i}: split out of range"));
                        }
                    }
                }
            }
            ChurnModel::Neural(n) => {
                let mut inputs = width;
                if n.layers.is_empty() {
                    return bad("neural model has no layers".into());
                }
                for (k, l) in n.layers.iter().enumerate() {
                    let outputs = l.bias.len();
                    if l.inputs != inputs
                        || outputs == 0
                        || l.weights.len() != outputs.saturating_mul(inputs)
                        || !finite(&l.weights)
                        || !finite(&l.bias)
                    {
                        return bad(format!(
                            "neural layer {k}: shape does not fit ({inputs} inputs expected)"
                        ));
                    }
                    inputs = outputs;
                }
                if inputs != 1 {
                    return bad("neural model must end in one output".into());
                }
                if n.background.iter().any(|r| r.len() != width || !finite(r)) {
                    return bad("neural model's background rows do not fit the inputs".into());
                }
            }
            ChurnModel::Gbdt(g) => {
                g.validate().map_err(gbdt_error)?;
                if g.categorical != self.preprocessor.categorical_mask() {
                    return bad(format!(
                        "boosted model reads {} columns ({} categorical), the preprocessing gives {} inputs",
                        g.categorical.len(),
                        g.categorical.iter().filter(|c| **c).count(),
                        self.preprocessor.n_inputs()
                    ));
                }
            }
        }
        if let ChurnModel::Logistic(m) = &self.model {
            if !m.column_means.is_empty()
                && (m.column_means.len() != width || !finite(&m.column_means))
            {
                return bad("logistic model's column means do not fit the inputs".into());
            }
        }
        if let Some(t) = &self.churn_type {
            if t.coefficients.len() != width {
                return bad("churn-type model does not fit the inputs".into());
            }
        }
        Ok(())
    }

    /// The family.
    pub fn family(&self) -> Family {
        self.model.family()
    }

    /// The family's design matrix of a batch, and per row whether a
    /// categorical value was unseen in training.
    pub fn design_matrix(&self, batch: &Batch) -> Result<(Array2<f64>, Vec<bool>)> {
        match self.model.design() {
            Design::OneHot => self.preprocessor.transform(batch),
            Design::Codes => self.preprocessor.transform_codes(batch),
        }
    }

    /// For each column of the design matrix, the raw input it belongs to
    /// (numeric inputs, then categorical ones).
    pub fn design_sources(&self) -> Vec<usize> {
        match self.model.design() {
            Design::OneHot => self.preprocessor.encoded_source(),
            Design::Codes => (0..self.preprocessor.n_inputs()).collect(),
        }
    }

    /// The raw inputs' names: numeric, then categorical.
    pub fn input_names(&self) -> Vec<String> {
        let p = &self.preprocessor;
        p.numeric
            .iter()
            .map(|c| c.name.clone())
            .chain(p.categorical.iter().map(|c| c.name.clone()))
            .collect()
    }

    /// Calibrated churn probabilities, in row order.
    pub fn predict(&self, batch: &Batch) -> Result<Vec<f64>> {
        if let Some(raw) = self.linear_raw(batch)? {
            return Ok(raw.into_iter().map(|p| self.calibrator.apply(p)).collect());
        }
        self.predict_dense(batch)
    }

    /// [`FittedModel::predict`] through the family's design matrix: the
    /// reference the faster paths are tested against.
    pub fn predict_dense(&self, batch: &Batch) -> Result<Vec<f64>> {
        let (x, _) = self.design_matrix(batch)?;
        Ok(self
            .model
            .raw_probabilities(&x)?
            .into_iter()
            .map(|p| self.calibrator.apply(p))
            .collect())
    }

    /// Uncalibrated probabilities (for fitting the calibrator).
    pub fn predict_raw(&self, batch: &Batch) -> Result<Vec<f64>> {
        if let Some(raw) = self.linear_raw(batch)? {
            return Ok(raw);
        }
        let (x, _) = self.design_matrix(batch)?;
        self.model.raw_probabilities(&x)
    }

    /// Global importance per raw input (numeric, then categorical), sorted
    /// by importance, descending.
    pub fn importance(&self) -> Vec<(String, f64)> {
        let sources = self.design_sources();
        let per_column = self.model.importance(sources.len());
        let names = self.input_names();
        let mut per_input = vec![0.0; names.len()];
        for (src, v) in sources.into_iter().zip(per_column) {
            per_input[src] += v;
        }
        let mut out: Vec<(String, f64)> = names.into_iter().zip(per_input).collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        out
    }

    /// The top `k` reasons per row: inputs pushing risk up, with their values.
    pub fn reasons(&self, batch: &Batch, k: usize) -> Result<Vec<Vec<Reason>>> {
        Ok(self.score_batch(batch, k)?.reasons)
    }

    /// Probabilities, churn type, reasons and unknown categories of a batch.
    pub fn score_batch(&self, batch: &Batch, k: usize) -> Result<BatchScores> {
        if let Some(scores) = self.linear_score_batch(batch, k)? {
            return Ok(scores);
        }
        self.score_batch_dense(batch, k)
    }

    /// [`FittedModel::score_batch`] through the design matrix and
    /// [`FittedModel::explain`], for every family: the reference the faster
    /// paths are tested against.
    pub fn score_batch_dense(&self, batch: &Batch, k: usize) -> Result<BatchScores> {
        let explanation = self.explain(batch)?;
        let probabilities = explanation
            .logits
            .iter()
            .map(|z| self.calibrator.apply(explain::sigmoid(*z)))
            .collect();
        let p_involuntary = match &self.churn_type {
            Some(m) => Some(m.probabilities(&self.preprocessor.transform(batch)?.0)),
            None => None,
        };
        let reasons = self.reasons_from(batch, &explanation.contributions, k);
        let unknown_any = explanation.unknown;
        let unknown = unknown_any
            .iter()
            .enumerate()
            .map(|(i, any)| {
                if *any {
                    self.preprocessor.unknown_inputs(batch, i)
                } else {
                    Vec::new()
                }
            })
            .collect();
        Ok(BatchScores {
            probabilities,
            p_involuntary,
            reasons,
            unknown,
        })
    }

    /// The top `k` inputs pushing each row's risk up, from per-input
    /// contributions (rows × inputs).
    pub fn reasons_from(
        &self,
        batch: &Batch,
        per_input: &Array2<f64>,
        k: usize,
    ) -> Vec<Vec<Reason>> {
        let p = &self.preprocessor;
        let n_inputs = p.n_inputs();
        let mut out = Vec::with_capacity(batch.len());
        for i in 0..batch.len() {
            let row = per_input.row(i);
            let mut order: Vec<usize> = (0..n_inputs).filter(|&j| row[j] > 1e-12).collect();
            order.sort_by(|a, b| row[*b].total_cmp(&row[*a]));
            out.push(
                order
                    .into_iter()
                    .take(k)
                    .map(|j| Reason {
                        feature: self.input_name(j),
                        value: self.input_value(batch, i, j),
                        weight: row[j],
                    })
                    .collect(),
            );
        }
        out
    }

    /// The name of raw input `j` (numeric, then categorical).
    pub fn input_name(&self, j: usize) -> String {
        let p = &self.preprocessor;
        if j < p.numeric.len() {
            p.numeric[j].name.clone()
        } else {
            p.categorical[j - p.numeric.len()].name.clone()
        }
    }

    /// Row `i`'s value of raw input `j`, as people read it (`missing` when
    /// absent: a missing value is shown, and blamed, as missing).
    pub fn input_value(&self, batch: &Batch, i: usize, j: usize) -> String {
        let n_num = self.preprocessor.numeric.len();
        if j < n_num {
            let v = batch.numeric[[i, j]];
            if v.is_finite() {
                format_number(v)
            } else {
                "missing".into()
            }
        } else {
            batch.categorical[j - n_num][i]
                .clone()
                .unwrap_or_else(|| "missing".into())
        }
    }
}

/// A number as people write it: integers without decimals, others with up
/// to three significant decimals.
pub fn format_number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}
