//! Outcomes: later churn events against the interventions on record, and
//! the simulation of a known treatment effect on generated data.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use chrono::NaiveDate;
use serde::Serialize;

use super::{Result, ServiceError};
use crate::config::AppConfig;
use churnguard_core::data::schema::days_from_date;
use churnguard_core::data::{self, columns, synthetic, LoadOptions};
use churnguard_core::interventions::{self, Arm, OutcomeReport};
use churnguard_store::Store;

/// Where the later churn events are.
#[derive(Debug, Clone)]
pub struct OutcomesRequest {
    /// An event-table directory, or a `churn_events` CSV/Parquet file.
    pub events: PathBuf,
    /// The last day the churn data covers. Defaults to an event-table
    /// directory's data end; required for a lone churn_events file.
    pub observed_until: Option<NaiveDate>,
    /// Who asked, for the audit log.
    pub actor: String,
}

pub(super) fn load_churn(
    path: &std::path::Path,
) -> Result<(polars::prelude::DataFrame, Option<NaiveDate>)> {
    let opts = LoadOptions::default();
    if path.is_dir() {
        match data::table_path(path, "churn_events") {
            Some(file) if data::table_path(path, "customers").is_none() => {
                Ok((data::load_table(&file, "churn_events", opts)?, None))
            }
            _ => {
                let tables = data::load_tables(path, opts)?;
                let end = tables.data_end();
                Ok((tables.churn_events, end))
            }
        }
    } else if path.is_file() {
        Ok((data::load_table(path, "churn_events", opts)?, None))
    } else {
        Err(ServiceError::BadPath {
            path: path.to_path_buf(),
            message: "no such file or directory".into(),
        })
    }
}

pub(super) fn churn_days(events: &polars::prelude::DataFrame) -> Result<HashMap<String, i32>> {
    let ids = columns::strs(events, "customer_id").map_err(ServiceError::BadRequest)?;
    let days = columns::days(events, "churn_date").map_err(ServiceError::BadRequest)?;
    Ok(ids
        .into_iter()
        .zip(days)
        .filter_map(|(i, d)| Some((i?, d?)))
        .collect())
}

/// Reads churn events that happened after interventions were created,
/// stores each settled record's outcome, and returns the save rate of
/// treated against control.
pub async fn ingest_outcomes(
    req: &OutcomesRequest,
    config: &AppConfig,
    store: &Store,
) -> Result<OutcomeReport> {
    let (events, data_end) = load_churn(&req.events)?;
    let churned = churn_days(&events)?;
    // A lone churn_events file does not say how far it reaches: its last
    // churn may be weeks before its end, and guessing would count customers
    // as retained whose window the data does not cover.
    let until = req
        .observed_until
        .map(days_from_date)
        .or(data_end.map(days_from_date))
        .ok_or_else(|| {
            ServiceError::BadRequest(format!(
                "{} is churn events alone: give --observed-until DATE, the last day the churn data covers",
                req.events.display()
            ))
        })?;
    let records = store.all_interventions().await?;
    let report = interventions::outcomes(
        &records,
        &churned,
        until,
        config.interventions.outcome_window_days,
    );
    let settled: Vec<(i64, bool)> = report
        .record_outcomes
        .iter()
        .filter_map(|(id, o)| o.map(|c| (*id, c)))
        .collect();
    store.save_observed(&settled, &req.actor).await?;
    Ok(report)
}

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SimulateRequest {
    /// The generated data directory (its `churn_events` are the untreated world).
    pub data: PathBuf,
    /// True relative effect per playbook (share of churns prevented).
    pub effects: BTreeMap<String, f64>,
    /// Seed of the coins.
    pub seed: u64,
    /// Where to write the treated world's `churn_events.parquet`.
    pub out: PathBuf,
}

/// What the simulation did.
#[derive(Debug, Clone, Serialize)]
pub struct SimulationSummary {
    /// The file written.
    pub file: PathBuf,
    /// Churn events before.
    pub churn_events: usize,
    /// Churns prevented by treatment.
    pub prevented: usize,
    /// Treated records considered.
    pub treated: usize,
    /// The last day the source data covers (give it to `outcomes --observed-until`).
    pub observed_until: NaiveDate,
}

/// Writes the churn events of a world where each playbook prevents its
/// stated share of the churns it could reach, for checking that
/// [`ingest_outcomes`] recovers the effect.
pub async fn simulate_outcomes(
    req: &SimulateRequest,
    config: &AppConfig,
    store: &Store,
) -> Result<SimulationSummary> {
    for (playbook, e) in &req.effects {
        if config.interventions.playbook(playbook).is_none() {
            return Err(ServiceError::BadRequest(format!(
                "effect for unknown playbook {playbook:?}"
            )));
        }
        if !(0.0..=1.0).contains(e) {
            return Err(ServiceError::BadRequest(format!(
                "effect of {playbook} must be within 0..=1, got {e}"
            )));
        }
    }
    let (events, data_end) = load_churn(&req.data)?;
    let Some(observed_until) = data_end else {
        return Err(ServiceError::BadRequest(format!(
            "{} must be an event-table directory (generated data), not churn events alone",
            req.data.display()
        )));
    };
    let records = store.all_interventions().await?;
    let treated: Vec<(String, i64, f64)> = records
        .iter()
        .filter(|r| r.arm == Arm::Treated)
        .map(|r| {
            (
                r.customer_id.clone(),
                r.created_at,
                req.effects.get(&r.playbook).copied().unwrap_or(0.0),
            )
        })
        .collect();
    let (mut thinned, prevented) = synthetic::apply_treatment_effects(
        &events,
        &treated,
        config.interventions.outcome_window_days,
        req.seed,
    )?;
    data::create_dir(&req.out)?;
    let file = req.out.join("churn_events.parquet");
    data::write_frame(&mut thinned, &file)?;
    Ok(SimulationSummary {
        file,
        churn_events: events.height(),
        prevented,
        treated: treated.len(),
        observed_until,
    })
}
