//! Drift of a batch against the training baseline: the population
//! stability index (PSI) and the Jensen–Shannon distance per input and for
//! the score, with a three-level verdict.
//!
//! Thresholds (the usual reading of PSI, which credit-risk teams have used
//! for decades): below 0.1 nothing to see, 0.1–0.25 watch, above 0.25 the
//! input has drifted. The Jensen–Shannon distance (base 2, 0–1) sits
//! beside it as a second opinion that is bounded and symmetric and does
//! not hinge on a p-value (which, at a million rows, flags everything).
//! Below `min_rows` rows no verdict is given: the figures are too noisy,
//! and the report says so instead.

use serde::{Deserialize, Serialize};

use super::baseline::{Baseline, CategoricalBaseline, InputBaseline, NumericBaseline};
use crate::models::Batch;

/// A floor on bin shares, so an empty bin gives a large but finite PSI.
const EPS: f64 = 1e-4;

/// `[monitoring.drift]`: where the levels start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DriftConfig {
    /// PSI from which an input is worth watching; defaults to `0.1`.
    pub psi_watch: f64,
    /// PSI from which an input has drifted; defaults to `0.25`.
    pub psi_drift: f64,
    /// Fewest rows for a verdict; defaults to `500`.
    pub min_rows: usize,
}

impl Default for DriftConfig {
    fn default() -> Self {
        DriftConfig {
            psi_watch: 0.1,
            psi_drift: 0.25,
            min_rows: 500,
        }
    }
}

/// The verdict on one input.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftLevel {
    /// Too few rows to say.
    TooFewRows,
    /// PSI below the watch threshold.
    None,
    /// PSI between the thresholds.
    Watch,
    /// PSI above the drift threshold.
    Drift,
}

impl DriftLevel {
    /// The level's name.
    pub fn name(self) -> &'static str {
        match self {
            DriftLevel::TooFewRows => "too_few_rows",
            DriftLevel::None => "none",
            DriftLevel::Watch => "watch",
            DriftLevel::Drift => "drift",
        }
    }
}

/// One input's (or the score's) drift.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputDrift {
    /// The input (`churn_probability` for the score).
    pub name: String,
    /// Rows compared.
    pub rows: usize,
    /// Population stability index.
    pub psi: f64,
    /// Jensen–Shannon distance (base 2), 0–1.
    pub js: f64,
    /// The verdict.
    pub level: DriftLevel,
    /// The baseline's shares per bin (or level, then other, then missing).
    pub expected: Vec<f64>,
    /// The batch's shares, aligned with `expected`.
    pub actual: Vec<f64>,
    /// A label per bin, for charts.
    pub bins: Vec<String>,
    /// The input moves with the calendar by construction (a company's
    /// tenure and renewal dates shift as it ages and grows), so its drift is
    /// shown but not counted by the triggers ([`CALENDAR_INPUTS`]).
    #[serde(default)]
    pub calendar: bool,
}

/// Inputs whose distribution moves with the calendar by construction: days
/// since signup and days to the next renewal (and its flag) shift whenever
/// the customer base ages or grows, with no change in how customers behave.
/// A model trained on earlier snapshots always sees them move, so drift on
/// them alone is no reason to retrain: the report shows it, the triggers do
/// not count it.
pub const CALENDAR_INPUTS: &[&str] = &["tenure_days", "days_to_renewal", "renewal_within_90d"];

/// A batch's drift, per input and for the score.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftReport {
    /// Rows compared.
    pub rows: usize,
    /// Per input, worst first.
    pub inputs: Vec<InputDrift>,
    /// The calibrated score.
    pub score: InputDrift,
}

impl DriftReport {
    /// Inputs at a level.
    pub fn count(&self, level: DriftLevel) -> usize {
        self.inputs.iter().filter(|d| d.level == level).count()
    }
}

fn psi_js(expected: &[f64], actual: &[f64]) -> (f64, f64) {
    let mut psi = 0.0;
    let mut js = 0.0;
    for (e, a) in expected.iter().zip(actual) {
        let (e0, a0) = (*e, *a);
        let (e, a) = (e.max(EPS), a.max(EPS));
        psi += (a - e) * (a / e).ln();
        let m = (e0 + a0) / 2.0;
        if e0 > 0.0 {
            js += 0.5 * e0 * (e0 / m).log2();
        }
        if a0 > 0.0 {
            js += 0.5 * a0 * (a0 / m).log2();
        }
    }
    (psi, js.max(0.0).sqrt())
}

fn level(psi: f64, rows: usize, config: &DriftConfig) -> DriftLevel {
    if rows < config.min_rows {
        DriftLevel::TooFewRows
    } else if psi >= config.psi_drift {
        DriftLevel::Drift
    } else if psi >= config.psi_watch {
        DriftLevel::Watch
    } else {
        DriftLevel::None
    }
}

/// Drift of numeric values against their baseline: the bins, then missing.
pub fn drift_of_values(
    name: &str,
    baseline: &NumericBaseline,
    values: &[f64],
    config: &DriftConfig,
) -> InputDrift {
    let present: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let n = values.len().max(1) as f64;
    let counts = baseline.counts(&present);
    let keep = 1.0 - baseline.missing;
    let mut expected: Vec<f64> = baseline.shares.iter().map(|s| s * keep).collect();
    expected.push(baseline.missing);
    let mut actual: Vec<f64> = counts.iter().map(|c| *c as f64 / n).collect();
    actual.push((values.len() - present.len()) as f64 / n);
    let (psi, js) = psi_js(&expected, &actual);
    let mut bins: Vec<String> = Vec::with_capacity(expected.len());
    let fmt = |v: f64| crate::models::format_number(v);
    for k in 0..baseline.shares.len() {
        bins.push(
            match (
                k.checked_sub(1).map(|i| baseline.edges[i]),
                baseline.edges.get(k),
            ) {
                (None, Some(hi)) => format!("≤ {}", fmt(*hi)),
                (Some(lo), Some(hi)) => format!("{}–{}", fmt(lo), fmt(*hi)),
                (Some(lo), None) => format!("> {}", fmt(lo)),
                (None, None) => "all".into(),
            },
        );
    }
    bins.push("missing".into());
    InputDrift {
        name: name.to_string(),
        rows: values.len(),
        psi,
        js,
        level: level(psi, values.len(), config),
        expected,
        actual,
        bins,
        calendar: false,
    }
}

fn drift_of_levels(
    name: &str,
    baseline: &CategoricalBaseline,
    values: &[Option<String>],
    config: &DriftConfig,
) -> InputDrift {
    let n = values.len().max(1) as f64;
    let mut actual = vec![0.0; baseline.levels.len() + 2];
    for v in values {
        let k = match v {
            None => baseline.levels.len() + 1,
            Some(s) => baseline
                .levels
                .iter()
                .position(|(l, _)| l == s)
                .unwrap_or(baseline.levels.len()),
        };
        actual[k] += 1.0 / n;
    }
    let mut expected: Vec<f64> = baseline.levels.iter().map(|l| l.1).collect();
    expected.push(baseline.other);
    expected.push(baseline.missing);
    let (psi, js) = psi_js(&expected, &actual);
    let mut bins: Vec<String> = baseline.levels.iter().map(|l| l.0.clone()).collect();
    bins.push("other".into());
    bins.push("missing".into());
    InputDrift {
        name: name.to_string(),
        rows: values.len(),
        psi,
        js,
        level: level(psi, values.len(), config),
        expected,
        actual,
        bins,
        calendar: false,
    }
}

/// Drift of a batch (model inputs) and its calibrated scores.
pub fn drift(
    baseline: &Baseline,
    batch: &Batch,
    scores: &[f64],
    config: &DriftConfig,
) -> DriftReport {
    let mut inputs = Vec::with_capacity(baseline.inputs.len());
    for b in &baseline.inputs {
        match b {
            InputBaseline::Numeric { name, baseline } => {
                if let Some(j) = batch.numeric_names.iter().position(|n| n == name) {
                    let values = batch.numeric.column(j).to_vec();
                    inputs.push(drift_of_values(name, baseline, &values, config));
                }
            }
            InputBaseline::Categorical { name, baseline } => {
                if let Some(j) = batch.categorical_names.iter().position(|n| n == name) {
                    inputs.push(drift_of_levels(
                        name,
                        baseline,
                        &batch.categorical[j],
                        config,
                    ));
                }
            }
        }
    }
    for i in &mut inputs {
        i.calendar = CALENDAR_INPUTS.contains(&i.name.as_str());
    }
    inputs.sort_by(|a, b| b.psi.total_cmp(&a.psi).then_with(|| a.name.cmp(&b.name)));
    DriftReport {
        rows: batch.len(),
        score: drift_of_values("churn_probability", &baseline.score, scores, config),
        inputs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_distribution_does_not_drift_and_a_shift_does() {
        let config = DriftConfig::default();
        let train: Vec<f64> = (0..10_000).map(|i| f64::from(i % 1000)).collect();
        let b = NumericBaseline::of(&train);
        let same: Vec<f64> = (0..5_000).map(|i| f64::from((i * 7) % 1000)).collect();
        let d = drift_of_values("x", &b, &same, &config);
        assert!(d.psi < 0.01 && d.level == DriftLevel::None, "{d:?}");
        let shifted: Vec<f64> = same.iter().map(|v| v + 300.0).collect();
        let d = drift_of_values("x", &b, &shifted, &config);
        assert_eq!(d.level, DriftLevel::Drift, "{d:?}");
        assert!(d.js > 0.2 && d.js <= 1.0);
        let few = drift_of_values("x", &b, &shifted[..100], &config);
        assert_eq!(few.level, DriftLevel::TooFewRows);
        // Missing values appearing is drift too.
        let mut holes = same.clone();
        holes.iter_mut().step_by(3).for_each(|v| *v = f64::NAN);
        assert_ne!(
            drift_of_values("x", &b, &holes, &config).level,
            DriftLevel::None
        );
    }

    #[test]
    fn psi_matches_a_hand_computation() {
        // Two bins, 50/50 against 70/30: PSI = 0.2 ln(1.4) + (−0.2) ln(0.6).
        let (psi, js) = psi_js(&[0.5, 0.5], &[0.7, 0.3]);
        let want = 0.2 * 1.4f64.ln() - 0.2 * 0.6f64.ln();
        assert!((psi - want).abs() < 1e-12);
        assert!(js > 0.0 && js < 1.0);
        assert_eq!(psi_js(&[0.5, 0.5], &[0.5, 0.5]), (0.0, 0.0));
    }
}
