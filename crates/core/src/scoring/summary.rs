//! The figures of one scoring run, as stored with the run and shown by
//! `churnguard runs`, the API and the web app.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::interventions::ClvThresholds;
use crate::value::RevenueChurn;

/// What a scoring run found, in numbers. Every field has a default so that
/// summaries stored by earlier releases (a subset of these keys) still read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunSummary {
    /// Customers per band (`green`, `yellow`, `red`).
    pub bands: BTreeMap<String, usize>,
    /// Policy choices per action (`new`, `updated`, `control`, `cooldown`, `capacity`).
    pub actions: BTreeMap<String, usize>,
    /// Open interventions closed because the customer recovered.
    pub closed_recovered: usize,
    /// Open interventions expired.
    pub expired: usize,
    /// Mean health index (0–100).
    pub mean_health: f64,
    /// Mean calibrated churn probability.
    pub mean_churn_probability: f64,
    /// Sum of CLV.
    pub total_clv: f64,
    /// Sum of probability × CLV.
    pub total_expected_loss: f64,
    /// The run's CLV cut-offs (low and high segments).
    pub clv_thresholds: Option<ClvThresholds>,
    /// The model's label horizon in days.
    pub horizon_days: u32,
    /// Logo and revenue churn over the 90 days before the snapshot (event data only).
    pub revenue_churn_90d: Option<RevenueChurn>,
    /// Where CLV/CAC falls below the configured minimum (event data only).
    pub clv_cac_below_minimum: Option<BelowMinimum>,
    /// The run's inputs and scores against the model's training baseline
    /// (absent for models saved before baselines were kept).
    pub drift: Option<crate::monitor::DriftReport>,
    /// The data had no id column: each customer's id is its row number.
    pub ids_are_row_numbers: bool,
    /// A transaction log's run: the BG/NBD and Gamma-Gamma fits it scored
    /// with (churn risk is `1 − P(alive)`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purchases: Option<super::purchases::PurchaseFit>,
    /// Retention by signup month (all plans), observed and projected by the
    /// shifted-beta-geometric model (event data only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cohorts: Vec<crate::value::cohorts::CohortRetention>,
}

/// Where CLV/CAC falls below the configured minimum.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BelowMinimum {
    /// Acquisition channels below the minimum.
    pub channels: Vec<String>,
    /// Number of acquisition reps below it.
    pub reps: usize,
    /// Number of customers below it.
    pub customers: usize,
}
