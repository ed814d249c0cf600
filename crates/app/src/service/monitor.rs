//! `churnguard monitor`: is the model still fit for the world it scores?
//! The latest run's drift against the model's training baseline, the
//! performance the model really achieved on the latest run whose horizon
//! has passed (when later churn events are given), and the configured
//! triggers' verdict.

use std::path::PathBuf;

use chrono::NaiveDate;
use serde::Serialize;

use churnguard_core::data::schema::days_from_date;
use churnguard_core::monitor::{realised, DriftReport, Finding, Realised, Verdict};
use churnguard_store::{RunRecord, Store};

use super::outcomes::{churn_days, load_churn};
use super::{Result, ServiceError};
use crate::config::AppConfig;
use crate::registry::Registry;

/// What to monitor.
#[derive(Debug, Clone)]
pub struct MonitorRequest {
    /// The model registry (for each run's model and its test ROC-AUC).
    pub registry: PathBuf,
    /// Later churn events (an event-table directory or a churn_events
    /// file), for realised performance; `None` skips it.
    pub events: Option<PathBuf>,
    /// The last day the events cover (default: an event-table directory's
    /// data end).
    pub observed_until: Option<NaiveDate>,
}

/// Realised performance of one past run.
#[derive(Debug, Clone, Serialize)]
pub struct RealisedRun {
    /// The run.
    pub run_id: String,
    /// Its snapshot.
    pub snapshot_date: String,
    /// Its model.
    pub model_id: String,
    /// The model's test ROC-AUC at training, when the registry still has it.
    pub trained_roc_auc: Option<f64>,
    /// What it achieved.
    pub realised: Realised,
}

/// The monitor's report.
#[derive(Debug, Clone, Serialize)]
pub struct MonitorReport {
    /// The latest run.
    pub run: RunRecord,
    /// Its drift (`None` for a model saved without a baseline).
    pub drift: Option<DriftReport>,
    /// The latest run with a settled horizon, when events were given.
    pub realised: Option<RealisedRun>,
    /// Runs whose horizon has passed, oldest first, with their realised
    /// ROC-AUC: the track record per model version.
    pub history: Vec<(String, String, Option<f64>)>,
    /// The verdict.
    pub verdict: Verdict,
    /// Why.
    pub findings: Vec<Finding>,
}

/// Reads the store's runs (and later churn events) and applies the triggers.
pub async fn monitor(
    req: &MonitorRequest,
    config: &AppConfig,
    store: &Store,
) -> Result<MonitorReport> {
    let runs = store.runs().await?;
    let Some(latest) = runs.iter().max_by(|a, b| {
        (a.snapshot_date.as_str(), a.created_at).cmp(&(b.snapshot_date.as_str(), b.created_at))
    }) else {
        return Err(ServiceError::BadRequest(
            "no scoring run in the store yet: run `churnguard score` first".into(),
        ));
    };
    let drift = latest.summary.drift.clone();
    let mut realised_run = None;
    let mut history = Vec::new();
    if let Some(events) = &req.events {
        let path = events.clone();
        let (frame, data_end) = tokio::task::spawn_blocking(move || load_churn(&path))
            .await
            .map_err(|e| ServiceError::Internal(format!("reading churn events: {e}")))??;
        let observed_until = req.observed_until.or(data_end).ok_or_else(|| {
            ServiceError::BadRequest(format!(
                "{}: a lone churn_events file needs --observed-until (the last day it covers)",
                events.display()
            ))
        })?;
        let churned_on = churn_days(&frame)?;
        let until = days_from_date(observed_until);
        let registry = Registry::open(&req.registry)?;
        // Runs whose horizon has passed in the events, oldest first, with
        // their snapshot day.
        let mut settled: Vec<(i32, &RunRecord)> = runs
            .iter()
            .filter_map(|r| {
                let start =
                    days_from_date(NaiveDate::parse_from_str(&r.snapshot_date, "%Y-%m-%d").ok()?);
                (start + r.summary.horizon_days.max(1) as i32 <= until).then_some((start, r))
            })
            .collect();
        settled.sort_by_key(|(start, r)| (*start, r.created_at));
        for (start, run) in settled {
            let end = start + run.summary.horizon_days.max(1) as i32;
            let scores = store.run_probabilities(&run.run_id).await?;
            let (y, p): (Vec<u8>, Vec<f64>) = scores
                .iter()
                .map(|(id, p)| {
                    let churned = churned_on.get(id).is_some_and(|&d| d > start && d <= end);
                    (u8::from(churned), *p)
                })
                .unzip();
            let Some(r) = realised(&y, &p) else { continue };
            history.push((run.run_id.clone(), run.model_id.clone(), r.roc_auc));
            let trained_roc_auc = registry
                .manifest(&run.model_id)
                .ok()
                .and_then(|m| m.test.roc_auc);
            realised_run = Some(RealisedRun {
                run_id: run.run_id.clone(),
                snapshot_date: run.snapshot_date.clone(),
                model_id: run.model_id.clone(),
                trained_roc_auc,
                realised: r,
            });
        }
    }
    let (verdict, findings) = config.monitoring.triggers.evaluate(
        drift.as_ref(),
        realised_run
            .as_ref()
            .map(|r| (&r.realised, r.trained_roc_auc)),
    );
    Ok(MonitorReport {
        run: latest.clone(),
        drift,
        realised: realised_run,
        history,
        verdict,
        findings,
    })
}
