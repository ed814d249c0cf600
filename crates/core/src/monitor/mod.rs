//! Watching a model after deployment: the training baseline of every input
//! and of the score, drift of a scoring run (or an online window) against
//! it, the performance a model really achieved once outcomes are in, and
//! the retrain triggers that read both.
//!
//! Pure: [`Baseline::of`] summarises training rows, [`drift`] compares
//! rows with a baseline, [`realised`] scores predictions against outcomes,
//! [`TriggerPolicy::evaluate`] turns the figures into a verdict,
//! [`agreement`] and [`realised_pair`] compare a shadow challenger with the
//! champion on the same customers. The
//! application stores and schedules them.

mod baseline;
mod drift;
mod realised;
mod shadow;
mod triggers;

pub use baseline::{Baseline, CategoricalBaseline, InputBaseline, NumericBaseline, BINS};
pub use drift::{drift, drift_of_values, DriftConfig, DriftLevel, DriftReport, InputDrift};
pub use realised::{realised, CalibrationBin, Realised};
pub use shadow::{agreement, realised_pair, ShadowAgreement, ShadowRealised, MIN_SHADOW_PAIRS};
pub use triggers::{Finding, TriggerPolicy, Verdict};
