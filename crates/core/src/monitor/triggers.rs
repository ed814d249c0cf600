//! Retrain triggers: a policy in the config, read against a run's drift
//! and the realised performance of past runs, giving a verdict a scheduler
//! can act on (`churnguard monitor` exits 0, 4 or 5).

use serde::{Deserialize, Serialize};

use super::drift::{DriftLevel, DriftReport};
use super::realised::Realised;

/// `[monitoring.triggers]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TriggerPolicy {
    /// Action when the score itself has drifted; defaults to `true`.
    pub score_drift: bool,
    /// Action when at least this many inputs have drifted; defaults to `3`.
    pub inputs_drifted: usize,
    /// Warning when at least one input is at `watch` or `drift`; defaults to `true`.
    pub warn_on_watch: bool,
    /// Action when the realised ROC-AUC is below the training test ROC-AUC by
    /// more than this; defaults to `0.05`.
    pub auc_drop: f64,
    /// Action when the realised calibration error (by decile) exceeds this;
    /// defaults to `0.05`.
    pub calibration_error: f64,
}

impl Default for TriggerPolicy {
    fn default() -> Self {
        TriggerPolicy {
            score_drift: true,
            inputs_drifted: 3,
            warn_on_watch: true,
            auc_drop: 0.05,
            calibration_error: 0.05,
        }
    }
}

/// The monitor's verdict, worst last.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Nothing to do.
    Healthy,
    /// Look at it.
    Warning,
    /// Retrain (or investigate) now.
    Action,
}

impl Verdict {
    /// The verdict's name.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Healthy => "healthy",
            Verdict::Warning => "warning",
            Verdict::Action => "action",
        }
    }
}

/// One reason behind a verdict.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// How serious.
    pub verdict: Verdict,
    /// What fired, in words.
    pub message: String,
}

impl TriggerPolicy {
    /// Reads a run's drift and the latest realised performance (with the
    /// test ROC-AUC the model was trained with).
    pub fn evaluate(
        &self,
        drift: Option<&DriftReport>,
        realised: Option<(&Realised, Option<f64>)>,
    ) -> (Verdict, Vec<Finding>) {
        let mut findings = Vec::new();
        if let Some(d) = drift {
            if d.score.level == DriftLevel::TooFewRows {
                findings.push(Finding {
                    verdict: Verdict::Healthy,
                    message: format!("drift: {} rows are too few for a verdict", d.score.rows),
                });
            }
            if self.score_drift && d.score.level == DriftLevel::Drift {
                findings.push(Finding {
                    verdict: Verdict::Action,
                    message: format!(
                        "the score has drifted (PSI {:.3}, JS {:.3})",
                        d.score.psi, d.score.js
                    ),
                });
            }
            let drifted: Vec<&str> = d
                .inputs
                .iter()
                .filter(|i| i.level == DriftLevel::Drift && !i.calendar)
                .map(|i| i.name.as_str())
                .collect();
            if !drifted.is_empty() && drifted.len() >= self.inputs_drifted.max(1) {
                findings.push(Finding {
                    verdict: Verdict::Action,
                    message: format!(
                        "{} inputs have drifted: {}",
                        drifted.len(),
                        drifted.join(", ")
                    ),
                });
            } else if self.warn_on_watch {
                let watched: Vec<&str> = d
                    .inputs
                    .iter()
                    .filter(|i| {
                        matches!(i.level, DriftLevel::Watch | DriftLevel::Drift) && !i.calendar
                    })
                    .map(|i| i.name.as_str())
                    .collect();
                if !watched.is_empty() {
                    findings.push(Finding {
                        verdict: Verdict::Warning,
                        message: format!("inputs to watch: {}", watched.join(", ")),
                    });
                }
            }
        }
        if let Some((r, trained_auc)) = realised {
            if let (Some(auc), Some(trained)) = (r.roc_auc, trained_auc) {
                if trained - auc > self.auc_drop {
                    findings.push(Finding {
                        verdict: Verdict::Action,
                        message: format!(
                            "realised ROC-AUC {auc:.3} is {:.3} below the {trained:.3} measured at training (on {} customers)",
                            trained - auc,
                            r.customers
                        ),
                    });
                }
            }
            if r.calibration_error > self.calibration_error {
                findings.push(Finding {
                    verdict: Verdict::Action,
                    message: format!(
                        "realised calibration error {:.3} is above {:.3} (on {} customers)",
                        r.calibration_error, self.calibration_error, r.customers
                    ),
                });
            }
        }
        let verdict = findings
            .iter()
            .map(|f| f.verdict)
            .max()
            .unwrap_or(Verdict::Healthy);
        (verdict, findings)
    }
}
