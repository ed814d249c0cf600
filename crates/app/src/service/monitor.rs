//! `churnguard monitor`: is the model still fit for the world it scores?
//! The latest run's drift against the model's training baseline, the
//! performance the model really achieved on the latest run whose horizon
//! has passed (when later churn events are given), the configured
//! triggers' verdict, and the shadow challenger against the champion on the
//! customers the server scored with both.

use std::path::PathBuf;

use chrono::NaiveDate;
use serde::Serialize;

use churnguard_core::data::schema::days_from_date;
use churnguard_core::monitor::{
    agreement, realised, realised_pair, DriftReport, Finding, Realised, ShadowAgreement,
    ShadowRealised, Verdict,
};
use churnguard_store::{RunRecord, ShadowSample, Store};

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
    /// The shadow challenger against the champion, when the server has
    /// recorded pairs for one.
    pub shadow: Option<ShadowReport>,
}

/// Most recorded pairs a comparison reads (the newest).
pub const SHADOW_PAIRS_READ: usize = 500_000;

/// The shadow challenger against the champion on the customers the server
/// scored with both.
#[derive(Debug, Clone, Serialize)]
pub struct ShadowReport {
    /// The shadow challenger.
    pub shadow_model: String,
    /// Whether it is the registry's shadow now (`false`: an earlier one,
    /// for example just promoted).
    pub current: bool,
    /// The champions it was compared with, with their pair counts.
    pub champions: Vec<(String, usize)>,
    /// Pairs read (the newest, at most [`SHADOW_PAIRS_READ`]).
    pub pairs: usize,
    /// Distinct customers among them.
    pub customers: usize,
    /// First and last scoring time (Unix seconds).
    pub span: Option<(i64, i64)>,
    /// Agreement and score shift (`None` below the minimum sample).
    pub agreement: Option<ShadowAgreement>,
    /// Realised performance of both on the customers whose horizon has
    /// passed in the churn events (each customer's first pair), when
    /// events were given.
    pub realised: Option<ShadowRealised>,
}

/// Compares the shadow challenger's recorded scores with the champion's;
/// with churn days (`churned_on`, the day the events cover to, and the
/// shadow's horizon in days) also their realised performance.
pub fn compare_shadow(
    shadow_model: &str,
    current: bool,
    samples: &[ShadowSample],
    outcomes: Option<(&std::collections::HashMap<String, i32>, i32, u32)>,
) -> ShadowReport {
    let mut champions: Vec<(String, usize)> = Vec::new();
    for s in samples {
        match champions.iter_mut().find(|(id, _)| *id == s.champion_model) {
            Some((_, n)) => *n += 1,
            None => champions.push((s.champion_model.clone(), 1)),
        }
    }
    let champion_p: Vec<f64> = samples.iter().map(|s| s.champion_probability).collect();
    let shadow_p: Vec<f64> = samples.iter().map(|s| s.shadow_probability).collect();
    // Each customer's first pair: the realised comparison counts a customer
    // once, scored at the start of the horizon it is judged on.
    let mut first: std::collections::HashMap<&str, &ShadowSample> =
        std::collections::HashMap::new();
    for s in samples {
        first
            .entry(s.customer_id.as_str())
            .and_modify(|f| {
                if s.scored_at < f.scored_at {
                    *f = s;
                }
            })
            .or_insert(s);
    }
    let realised = outcomes.and_then(|(churned_on, until, horizon)| {
        let mut settled: Vec<&&ShadowSample> = first
            .values()
            .filter(|s| s.scored_at.div_euclid(86_400) as i32 + horizon.max(1) as i32 <= until)
            .collect();
        settled.sort_by(|a, b| a.customer_id.cmp(&b.customer_id));
        let y: Vec<u8> = settled
            .iter()
            .map(|s| {
                let start = s.scored_at.div_euclid(86_400) as i32;
                let end = start + horizon.max(1) as i32;
                u8::from(
                    churned_on
                        .get(&s.customer_id)
                        .is_some_and(|&d| d > start && d <= end),
                )
            })
            .collect();
        let c: Vec<f64> = settled.iter().map(|s| s.champion_probability).collect();
        let p: Vec<f64> = settled.iter().map(|s| s.shadow_probability).collect();
        realised_pair(&y, &c, &p)
    });
    ShadowReport {
        shadow_model: shadow_model.to_string(),
        current,
        champions,
        pairs: samples.len(),
        customers: first.len(),
        span: samples
            .iter()
            .map(|s| s.scored_at)
            .min()
            .zip(samples.iter().map(|s| s.scored_at).max()),
        agreement: agreement(&champion_p, &shadow_p),
        realised,
    }
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
    let mut settled_churn: Option<(std::collections::HashMap<String, i32>, i32)> = None;
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
        settled_churn = Some((churned_on, until));
    }
    let shadow = shadow_of(req, config, store, settled_churn.as_ref()).await?;
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
        shadow,
    })
}

/// The registry's shadow challenger (or, with none set, the last one
/// recorded) against the champion.
async fn shadow_of(
    req: &MonitorRequest,
    config: &AppConfig,
    store: &Store,
    churn: Option<&(std::collections::HashMap<String, i32>, i32)>,
) -> Result<Option<ShadowReport>> {
    let registry = Registry::open(&req.registry)?;
    let current = registry.shadow()?;
    let Some(model) = (match &current {
        Some(id) => Some(id.clone()),
        None => store.latest_shadow_model().await?,
    }) else {
        return Ok(None);
    };
    let samples = store.shadow_samples(&model, SHADOW_PAIRS_READ).await?;
    if samples.is_empty() {
        return Ok(None);
    }
    let horizon = registry
        .manifest(&model)
        .ok()
        .and_then(|m| m.horizon_days)
        .unwrap_or(config.value.default_horizon_days);
    Ok(Some(compare_shadow(
        &model,
        current.as_deref() == Some(model.as_str()),
        &samples,
        churn.map(|(c, until)| (c, *until, horizon)),
    )))
}
