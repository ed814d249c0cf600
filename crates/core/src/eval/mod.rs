//! Honest evaluation metrics for binary churn models, with scikit-learn's
//! definitions.
//!
//! Every function takes labels `y` (0 = stayed, 1 = churned) and scores `p`
//! (churn probabilities) as parallel slices and is a pure function of them.
//! The expected values in the unit tests were produced by scikit-learn 1.9.1.
//!
//! Inputs are checked before anything is computed ([`check_scores`],
//! [`check_probabilities`]): both slices non-empty and of equal length, every
//! label 0 or 1, every score finite, and for the metrics that read scores as
//! probabilities (log loss, Brier, reliability, ECE, [`evaluate`]) every score
//! in `[0, 1]`. Nothing here panics; bad input gives:
//!
//! - `Err(EvalError)` from functions returning `Result`;
//! - `None` from [`roc_auc`] and [`average_precision`] (also `None` when the
//!   metric is undefined because a class is missing);
//! - an empty `Vec` from the curves ([`roc_curve`], [`pr_curve`],
//!   [`reliability`], [`lift_curve`]), which exist for charts.
//!
//! Ranking metrics sort in O(n log n) and treat tied scores as sklearn does:
//! one point per distinct score, and a tied positive/negative pair counts 1/2
//! towards ROC-AUC.

use serde::{Deserialize, Deserializer, Serialize};

pub mod calibration;
#[cfg(test)]
mod tests;

pub use calibration::Calibrator;

/// Probabilities are clipped to `[LOG_LOSS_EPS, 1 - LOG_LOSS_EPS]` in
/// [`log_loss`]. This is sklearn's historical `eps=1e-15`; sklearn >= 1.5
/// clips at the dtype's machine epsilon (2.2e-16) instead, which changes the
/// result only for a confidently wrong prediction of exactly 0 or 1.
pub const LOG_LOSS_EPS: f64 = 1e-15;

/// Largest number of bins ([`reliability`]) or points ([`lift_curve`])
/// accepted, so that a bad argument cannot exhaust memory.
pub const MAX_BINS: usize = 100_000;

/// Number of reliability bins behind [`Metrics::ece`].
const METRICS_ECE_BINS: usize = 10;

/// Share of customers behind [`Metrics::lift_10`] and [`Metrics::capture_10`].
const METRICS_LIFT_FRACTION: f64 = 0.1;

/// Why a metric cannot be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvalError {
    /// There are no rows.
    #[error("no rows to evaluate")]
    Empty,
    /// Two inputs that must be parallel differ in length.
    #[error("{labels} labels but {values} {what}")]
    LengthMismatch {
        /// What the second input is (`"probabilities"`, `"values at risk"`).
        what: &'static str,
        /// Number of labels.
        labels: usize,
        /// Number of values in the second input.
        values: usize,
    },
    /// A label other than 0 or 1.
    #[error("label at index {index} is {value}, expected 0 or 1")]
    BadLabel {
        /// Position in the slice (0-based).
        index: usize,
        /// The label found.
        value: u8,
    },
    /// A NaN or infinite value.
    #[error("{what} at index {index} is not finite")]
    NotFinite {
        /// Which input (`"probability"`, `"value at risk"`).
        what: &'static str,
        /// Position in the slice (0-based).
        index: usize,
    },
    /// A probability outside `[0, 1]`.
    #[error("probability at index {index} is {value}, outside [0, 1]")]
    OutOfRange {
        /// Position in the slice (0-based).
        index: usize,
        /// The value found.
        value: f64,
    },
    /// Only one class is present where both are needed (fitting a calibrator).
    #[error("only one class is present in the labels")]
    SingleClass,
    /// An argument outside its domain.
    #[error("invalid {name}: {reason}")]
    BadParameter {
        /// The argument's name.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

impl crate::error::HasKind for EvalError {
    fn kind(&self) -> crate::error::ErrorKind {
        use crate::error::ErrorKind;
        match self {
            // Labels the caller supplied.
            EvalError::Empty
            | EvalError::BadLabel { .. }
            | EvalError::SingleClass
            | EvalError::BadParameter { .. } => ErrorKind::BadInput,
            // Probabilities come from our models: a non-finite or
            // out-of-range one, or a length mismatch, is our bug.
            EvalError::LengthMismatch { .. }
            | EvalError::NotFinite { .. }
            | EvalError::OutOfRange { .. } => ErrorKind::Internal,
        }
    }
}

/// Checks labels and scores: non-empty, equal lengths, labels 0 or 1, scores
/// finite (any real number: ranking metrics accept uncalibrated scores).
pub fn check_scores(y: &[u8], p: &[f64]) -> Result<(), EvalError> {
    if y.len() != p.len() {
        return Err(EvalError::LengthMismatch {
            what: "probabilities",
            labels: y.len(),
            values: p.len(),
        });
    }
    if y.is_empty() {
        return Err(EvalError::Empty);
    }
    if let Some((index, &value)) = y.iter().enumerate().find(|(_, v)| **v > 1) {
        return Err(EvalError::BadLabel { index, value });
    }
    if let Some(index) = p.iter().position(|v| !v.is_finite()) {
        return Err(EvalError::NotFinite {
            what: "probability",
            index,
        });
    }
    Ok(())
}

/// [`check_scores`], and every score a probability in `[0, 1]`.
pub fn check_probabilities(y: &[u8], p: &[f64]) -> Result<(), EvalError> {
    check_scores(y, p)?;
    if let Some((index, &value)) = p
        .iter()
        .enumerate()
        .find(|(_, v)| !(0.0..=1.0).contains(*v))
    {
        return Err(EvalError::OutOfRange { index, value });
    }
    Ok(())
}

/// Maps -0.0 to 0.0 so that sorting with `total_cmp` treats them as ties.
fn canonical(x: f64) -> f64 {
    if x == 0.0 {
        0.0
    } else {
        x
    }
}

/// Row indices by score, highest first; tied scores keep their original
/// order (stable), so every ranking here is deterministic.
fn rank_descending(p: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..p.len()).collect();
    order.sort_by(|&i, &j| canonical(p[j]).total_cmp(&canonical(p[i])));
    order
}

/// Cumulative counts down to one distinct score (sklearn's
/// `confusion_matrix_at_thresholds`).
#[derive(Debug, Clone, Copy)]
struct Step {
    /// The distinct score.
    threshold: f64,
    /// Positives with a score >= `threshold`.
    tp: u64,
    /// Negatives with a score >= `threshold`.
    fp: u64,
}

/// One [`Step`] per distinct score, from the highest score to the lowest.
/// Inputs must have passed [`check_scores`].
fn steps(y: &[u8], p: &[f64]) -> Vec<Step> {
    let order = rank_descending(p);
    let mut out: Vec<Step> = Vec::new();
    let (mut tp, mut fp) = (0u64, 0u64);
    for (k, &i) in order.iter().enumerate() {
        if y[i] == 1 {
            tp += 1;
        } else {
            fp += 1;
        }
        let last_of_group = order.get(k + 1).is_none_or(|&j| p[j] != p[i]);
        if last_of_group {
            out.push(Step {
                threshold: canonical(p[i]),
                tp,
                fp,
            });
        }
    }
    out
}

/// Total positives and negatives, from the last step.
fn totals(steps: &[Step]) -> (u64, u64) {
    steps.last().map_or((0, 0), |s| (s.tp, s.fp))
}

/// Area under the ROC curve, as sklearn `roc_auc_score`.
///
/// Equals the probability that a random churner scores above a random
/// non-churner, with ties counting 1/2 (the Mann-Whitney statistic). Computed
/// exactly in integers over distinct scores, O(n log n).
///
/// `None` when the input fails [`check_scores`] or only one class is present.
pub fn roc_auc(y: &[u8], p: &[f64]) -> Option<f64> {
    check_scores(y, p).ok()?;
    let steps = steps(y, p);
    let (pos, neg) = totals(&steps);
    if pos == 0 || neg == 0 {
        return None;
    }
    // Twice the number of (negative, positive) pairs ranked correctly, ties
    // counting one (that is, 1/2 after halving).
    let mut twice: u128 = 0;
    let (mut tp_prev, mut fp_prev) = (0u64, 0u64);
    for s in &steps {
        let (dtp, dfp) = (s.tp - tp_prev, s.fp - fp_prev);
        twice += u128::from(dfp) * (2 * u128::from(tp_prev) + u128::from(dtp));
        (tp_prev, fp_prev) = (s.tp, s.fp);
    }
    Some(twice as f64 / (2 * u128::from(pos) * u128::from(neg)) as f64)
}

/// Deserialises a threshold written by serde_json, which writes +∞ as `null`.
fn threshold_or_infinity<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::INFINITY))
}

/// One point of the ROC curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RocPoint {
    /// False positive rate: share of non-churners with a score >= `threshold`.
    pub fpr: f64,
    /// True positive rate (recall): share of churners with a score >= `threshold`.
    pub tpr: f64,
    /// Score threshold; `+∞` for the starting point (0, 0), as sklearn >= 1.3
    /// (serialised as JSON `null`, read back as `+∞`).
    #[serde(deserialize_with = "threshold_or_infinity")]
    pub threshold: f64,
}

/// ROC curve as sklearn `roc_curve(y, p, drop_intermediate=False)`: the point
/// (0, 0) with threshold `+∞`, then one point per distinct score, by
/// decreasing threshold, ending at (1, 1).
///
/// Empty when the input fails [`check_scores`] or only one class is present
/// (where sklearn returns NaN rates).
pub fn roc_curve(y: &[u8], p: &[f64]) -> Vec<RocPoint> {
    if check_scores(y, p).is_err() {
        return Vec::new();
    }
    let steps = steps(y, p);
    let (pos, neg) = totals(&steps);
    if pos == 0 || neg == 0 {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(steps.len() + 1);
    out.push(RocPoint {
        fpr: 0.0,
        tpr: 0.0,
        threshold: f64::INFINITY,
    });
    out.extend(steps.iter().map(|s| RocPoint {
        fpr: s.fp as f64 / neg as f64,
        tpr: s.tp as f64 / pos as f64,
        threshold: s.threshold,
    }));
    out
}

/// Average precision (PR-AUC) as sklearn `average_precision_score`: the
/// step-wise sum `Σ (R_k − R_{k−1}) · P_k` over distinct scores from the
/// highest down, with `R_0 = 0` (no interpolation, unlike the trapezoid).
///
/// `None` when the input fails [`check_scores`] or there is no churner (where
/// sklearn warns and returns 0). With churners only it is 1, as in sklearn.
pub fn average_precision(y: &[u8], p: &[f64]) -> Option<f64> {
    check_scores(y, p).ok()?;
    let steps = steps(y, p);
    let (pos, _) = totals(&steps);
    if pos == 0 {
        return None;
    }
    let mut ap = 0.0;
    let mut recall_prev = 0.0;
    for s in &steps {
        let recall = s.tp as f64 / pos as f64;
        let precision = s.tp as f64 / (s.tp + s.fp) as f64;
        ap += (recall - recall_prev) * precision;
        recall_prev = recall;
    }
    Some(ap.max(0.0))
}

/// One point of the precision-recall curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrPoint {
    /// Share of churners with a score >= `threshold`.
    pub recall: f64,
    /// Share of churners among rows with a score >= `threshold`.
    pub precision: f64,
    /// Score threshold; `+∞` for the final point (recall 0, precision 1),
    /// which sklearn returns without a threshold (serialised as JSON `null`,
    /// read back as `+∞`).
    #[serde(deserialize_with = "threshold_or_infinity")]
    pub threshold: f64,
}

/// Precision-recall curve as sklearn `precision_recall_curve` (no dropped
/// points): one point per distinct score, by increasing threshold (so by
/// decreasing recall), then the point (recall 0, precision 1).
///
/// Empty when the input fails [`check_scores`] or there is no churner.
pub fn pr_curve(y: &[u8], p: &[f64]) -> Vec<PrPoint> {
    if check_scores(y, p).is_err() {
        return Vec::new();
    }
    let steps = steps(y, p);
    let (pos, _) = totals(&steps);
    if pos == 0 {
        return Vec::new();
    }
    let mut out: Vec<PrPoint> = steps
        .iter()
        .rev()
        .map(|s| PrPoint {
            recall: s.tp as f64 / pos as f64,
            precision: s.tp as f64 / (s.tp + s.fp) as f64,
            threshold: s.threshold,
        })
        .collect();
    out.push(PrPoint {
        recall: 0.0,
        precision: 1.0,
        threshold: f64::INFINITY,
    });
    out
}

/// Mean negative log-likelihood, as sklearn `log_loss`, with probabilities
/// clipped to `[LOG_LOSS_EPS, 1 - LOG_LOSS_EPS]` (see [`LOG_LOSS_EPS`] for how
/// this differs from sklearn >= 1.5). Unlike sklearn, a single class is
/// allowed.
pub fn log_loss(y: &[u8], p: &[f64]) -> Result<f64, EvalError> {
    check_probabilities(y, p)?;
    let (lo, hi) = (LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS);
    let total: f64 = y
        .iter()
        .zip(p)
        .map(|(&label, &prob)| {
            if label == 1 {
                -prob.clamp(lo, hi).ln()
            } else {
                -(1.0 - prob).clamp(lo, hi).ln()
            }
        })
        .sum();
    Ok(total / y.len() as f64)
}

/// Brier score, as sklearn `brier_score_loss`: the mean of `(y − p)²`.
pub fn brier(y: &[u8], p: &[f64]) -> Result<f64, EvalError> {
    check_probabilities(y, p)?;
    let total: f64 = y
        .iter()
        .zip(p)
        .map(|(&label, &prob)| (f64::from(label) - prob).powi(2))
        .sum();
    Ok(total / y.len() as f64)
}

/// One bin of a reliability diagram.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReliabilityBin {
    /// Lower edge, included.
    pub lower: f64,
    /// Upper edge, excluded except for the last bin (which includes 1).
    pub upper: f64,
    /// Rows whose probability falls in the bin.
    pub count: usize,
    /// Mean predicted probability of those rows; 0 when the bin is empty.
    pub mean_predicted: f64,
    /// Share of churners among those rows; 0 when the bin is empty.
    pub observed_rate: f64,
}

/// Bin of `p` among `n` uniform bins `[k/n, (k+1)/n)`, the last closed. The
/// edges are exactly those reported in [`ReliabilityBin`].
fn bin_of(p: f64, n: usize) -> usize {
    let edge = |k: usize| k as f64 / n as f64;
    // `as usize` saturates; the loops correct any rounding in `p * n`.
    let mut k = ((p * n as f64).floor() as usize).min(n - 1);
    while k > 0 && p < edge(k) {
        k -= 1;
    }
    while k + 1 < n && p >= edge(k + 1) {
        k += 1;
    }
    k
}

fn check_bins(n_bins: usize, name: &'static str) -> Result<(), EvalError> {
    if n_bins == 0 || n_bins > MAX_BINS {
        return Err(EvalError::BadParameter {
            name,
            reason: format!("{n_bins} is not between 1 and {MAX_BINS}"),
        });
    }
    Ok(())
}

fn reliability_bins(y: &[u8], p: &[f64], n_bins: usize) -> Result<Vec<ReliabilityBin>, EvalError> {
    check_probabilities(y, p)?;
    check_bins(n_bins, "number of bins")?;
    let mut sums = vec![(0usize, 0.0f64, 0usize); n_bins];
    for (&label, &prob) in y.iter().zip(p) {
        let b = &mut sums[bin_of(prob, n_bins)];
        b.0 += 1;
        b.1 += prob;
        b.2 += usize::from(label);
    }
    Ok(sums
        .into_iter()
        .enumerate()
        .map(|(k, (count, sum_p, positives))| {
            let (mean_predicted, observed_rate) = if count == 0 {
                (0.0, 0.0)
            } else {
                (sum_p / count as f64, positives as f64 / count as f64)
            };
            ReliabilityBin {
                lower: k as f64 / n_bins as f64,
                upper: (k + 1) as f64 / n_bins as f64,
                count,
                mean_predicted,
                observed_rate,
            }
        })
        .collect())
}

/// Reliability diagram over `n_bins` uniform bins on `[0, 1]`: bin `k` holds
/// probabilities in `[k/n_bins, (k+1)/n_bins)`, the last bin also holds 1.
/// All `n_bins` bins are returned, empty ones with count 0 (and both means 0),
/// so filter on `count > 0` to plot.
///
/// Non-empty bins agree with sklearn `calibration_curve(strategy="uniform")`
/// except for a probability on an inner edge (to within an ulp), which
/// sklearn puts in the bin below.
///
/// Empty when the input fails [`check_probabilities`] or `n_bins` is 0 or
/// above [`MAX_BINS`].
pub fn reliability(y: &[u8], p: &[f64], n_bins: usize) -> Vec<ReliabilityBin> {
    reliability_bins(y, p, n_bins).unwrap_or_default()
}

/// Expected calibration error over the bins of [`reliability`]:
/// `Σ (count / n) · |observed_rate − mean_predicted|`.
pub fn expected_calibration_error(y: &[u8], p: &[f64], n_bins: usize) -> Result<f64, EvalError> {
    let bins = reliability_bins(y, p, n_bins)?;
    let n = y.len() as f64;
    Ok(bins
        .iter()
        .map(|b| b.count as f64 / n * (b.observed_rate - b.mean_predicted).abs())
        .sum())
}

/// Lift and capture when targeting the riskiest share of customers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lift {
    /// Share of customers targeted, as asked.
    pub fraction: f64,
    /// Customers targeted: `ceil(fraction · n)`, at least 1.
    pub targeted: usize,
    /// Churn rate among the targeted over the overall churn rate; 0 when
    /// there is no churner.
    pub lift: f64,
    /// Share of all churners who are targeted; 0 when there is no churner.
    pub capture_rate: f64,
}

/// Lift of the top `k` rows, given the running count of churners by rank.
fn lift_of(fraction: f64, k: usize, churners_by_rank: &[usize]) -> Lift {
    let n = churners_by_rank.len();
    let total = churners_by_rank[n - 1];
    let top = churners_by_rank[k - 1];
    let (lift, capture_rate) = if total == 0 {
        (0.0, 0.0)
    } else {
        (
            (top as f64 * n as f64) / (k as f64 * total as f64),
            top as f64 / total as f64,
        )
    };
    Lift {
        fraction,
        targeted: k,
        lift,
        capture_rate,
    }
}

/// Running count of churners along [`rank_descending`].
fn churners_by_rank(y: &[u8], p: &[f64]) -> Vec<usize> {
    rank_descending(p)
        .into_iter()
        .scan(0usize, |acc, i| {
            *acc += usize::from(y[i]);
            Some(*acc)
        })
        .collect()
}

/// Lift and capture rate when targeting the `ceil(fraction · n)` customers
/// with the highest scores (at least one). Tied scores are broken by original
/// index (earlier rows first), so the result is deterministic. `fraction`
/// must be in `(0, 1]`; `fraction · n` within a relative 1e-12 of an integer
/// counts as that integer (0.1 of 30 rows is 3 rows, not 4).
pub fn lift_at(y: &[u8], p: &[f64], fraction: f64) -> Result<Lift, EvalError> {
    check_scores(y, p)?;
    if !(fraction > 0.0 && fraction <= 1.0) {
        return Err(EvalError::BadParameter {
            name: "fraction",
            reason: format!("{fraction} is not in (0, 1]"),
        });
    }
    let n = y.len();
    let x = fraction * n as f64;
    let k = ((x - x * 1e-12).ceil() as usize).clamp(1, n);
    Ok(lift_of(fraction, k, &churners_by_rank(y, p)))
}

/// Lift at fractions `1/n_points, 2/n_points, …, 1`, for charts: point `i`
/// targets `ceil(i · n / n_points)` customers (at least one), ranked as in
/// [`lift_at`]. The last point always has lift 1 and capture 1 (when there
/// are churners).
///
/// Empty when the input fails [`check_scores`] or `n_points` is 0 or above
/// [`MAX_BINS`].
pub fn lift_curve(y: &[u8], p: &[f64], n_points: usize) -> Vec<Lift> {
    if check_scores(y, p).is_err() || check_bins(n_points, "number of points").is_err() {
        return Vec::new();
    }
    let running = churners_by_rank(y, p);
    let n = y.len();
    (1..=n_points)
        .map(|i| {
            let k = (i * n).div_ceil(n_points).clamp(1, n);
            lift_of(i as f64 / n_points as f64, k, &running)
        })
        .collect()
}

/// Confusion matrix at one threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confusion {
    /// Churners predicted to churn.
    pub tp: usize,
    /// Non-churners predicted to churn.
    pub fp: usize,
    /// Non-churners predicted to stay.
    pub tn: usize,
    /// Churners predicted to stay (`fn` is a keyword; serialised as `fn`).
    #[serde(rename = "fn")]
    pub fn_: usize,
}

/// `num / den`, or 0 when `den` is 0.
fn ratio(num: usize, den: usize) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

impl Confusion {
    /// `tp / (tp + fp)`; 0 when nothing is predicted to churn (sklearn's
    /// `zero_division=0`).
    pub fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }

    /// `tp / (tp + fn)`; 0 when there is no churner.
    pub fn recall(&self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }

    /// Harmonic mean of precision and recall, `2tp / (2tp + fp + fn)`; 0 when
    /// there is neither a churner nor a predicted churner.
    pub fn f1(&self) -> f64 {
        ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn_)
    }

    /// `(tp + tn) / n`; 0 when the matrix is empty.
    pub fn accuracy(&self) -> f64 {
        ratio(self.tp + self.tn, self.tp + self.fp + self.tn + self.fn_)
    }
}

/// Confusion matrix when predicting churn for scores `>= threshold`.
/// `threshold` may be infinite but not NaN.
pub fn confusion(y: &[u8], p: &[f64], threshold: f64) -> Result<Confusion, EvalError> {
    check_scores(y, p)?;
    if threshold.is_nan() {
        return Err(EvalError::BadParameter {
            name: "threshold",
            reason: "NaN".into(),
        });
    }
    let mut c = Confusion {
        tp: 0,
        fp: 0,
        tn: 0,
        fn_: 0,
    };
    for (&label, &prob) in y.iter().zip(p) {
        match (label == 1, prob >= threshold) {
            (true, true) => c.tp += 1,
            (false, true) => c.fp += 1,
            (false, false) => c.tn += 1,
            (true, false) => c.fn_ += 1,
        }
    }
    Ok(c)
}

/// The headline metrics of a model on labelled rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Number of rows.
    pub n: usize,
    /// Number of churners.
    pub positives: usize,
    /// [`roc_auc`]; `None` (JSON `null`) when one class is missing.
    pub roc_auc: Option<f64>,
    /// [`average_precision`]; `None` (JSON `null`) when there is no churner.
    pub pr_auc: Option<f64>,
    /// [`log_loss`].
    pub log_loss: f64,
    /// [`brier`].
    pub brier: f64,
    /// [`expected_calibration_error`] with 10 bins.
    pub ece: f64,
    /// [`lift_at`] 10% (0 when there is no churner).
    pub lift_10: f64,
    /// Capture rate at 10% (0 when there is no churner).
    pub capture_10: f64,
}

/// Computes [`Metrics`]. Fails when the input fails [`check_probabilities`];
/// a single class is not an error (the AUCs are then `None`).
pub fn evaluate(y: &[u8], p: &[f64]) -> Result<Metrics, EvalError> {
    check_probabilities(y, p)?;
    let lift = lift_at(y, p, METRICS_LIFT_FRACTION)?;
    Ok(Metrics {
        n: y.len(),
        positives: y.iter().filter(|v| **v == 1).count(),
        roc_auc: roc_auc(y, p),
        pr_auc: average_precision(y, p),
        log_loss: log_loss(y, p)?,
        brier: brier(y, p)?,
        ece: expected_calibration_error(y, p, METRICS_ECE_BINS)?,
        lift_10: lift.lift,
        capture_10: lift.capture_rate,
    })
}

/// The decision threshold that maximises retention profit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThresholdChoice {
    /// Target customers with a score >= this (one of the observed scores).
    pub threshold: f64,
    /// Total profit of targeting at `threshold`, realised on the given labels.
    pub expected_profit: f64,
    /// Customers with a score >= `threshold`.
    pub customers_targeted: usize,
    /// Profit of targeting every customer.
    pub profit_if_all: f64,
    /// Profit of targeting nobody (always 0, for comparison).
    pub profit_if_none: f64,
}

/// Chooses the threshold by cost on labelled (validation) rows.
///
/// Targeting customer `i` earns `y_i · value_at_risk_i · save_rate −
/// intervention_cost`: a churner's value is saved with probability
/// `save_rate`, and every contact costs `intervention_cost`. Among the
/// distinct scores, the threshold maximising the total profit over customers
/// with a score >= threshold is chosen; on equal profit the higher threshold
/// (fewer contacts) wins. At least the top-scored customers are always
/// targeted: when `expected_profit < profit_if_none`, no campaign beats
/// every threshold, and the caller should say so.
///
/// Fails on bad labels or scores ([`check_scores`]), values at risk of the
/// wrong length or not finite, a cost that is negative or not finite, or a
/// save rate outside `[0, 1]`.
pub fn choose_threshold(
    y: &[u8],
    p: &[f64],
    value_at_risk: &[f64],
    intervention_cost: f64,
    save_rate: f64,
) -> Result<ThresholdChoice, EvalError> {
    check_scores(y, p)?;
    if value_at_risk.len() != y.len() {
        return Err(EvalError::LengthMismatch {
            what: "values at risk",
            labels: y.len(),
            values: value_at_risk.len(),
        });
    }
    if let Some(index) = value_at_risk.iter().position(|v| !v.is_finite()) {
        return Err(EvalError::NotFinite {
            what: "value at risk",
            index,
        });
    }
    if !(intervention_cost.is_finite() && intervention_cost >= 0.0) {
        return Err(EvalError::BadParameter {
            name: "intervention cost",
            reason: format!("{intervention_cost} is not a finite amount >= 0"),
        });
    }
    if !(0.0..=1.0).contains(&save_rate) {
        return Err(EvalError::BadParameter {
            name: "save rate",
            reason: format!("{save_rate} is not in [0, 1]"),
        });
    }
    let profit = |i: usize| f64::from(y[i]) * value_at_risk[i] * save_rate - intervention_cost;
    let order = rank_descending(p);
    let mut best: Option<(f64, f64, usize)> = None;
    let mut running = 0.0;
    for (k, &i) in order.iter().enumerate() {
        running += profit(i);
        let last_of_group = order.get(k + 1).is_none_or(|&j| p[j] != p[i]);
        if last_of_group && best.is_none_or(|(_, b, _)| running > b) {
            best = Some((canonical(p[i]), running, k + 1));
        }
    }
    // `order` is non-empty after `check_scores`, so `best` is set.
    let (threshold, expected_profit, customers_targeted) = best.unwrap_or((f64::INFINITY, 0.0, 0));
    Ok(ThresholdChoice {
        threshold,
        expected_profit,
        customers_targeted,
        profit_if_all: running,
        profit_if_none: 0.0,
    })
}
