//! The uplift model as a product: trained from the experiment the store
//! records (every treated and control decision) and the churn observed
//! after it, saved in the registry's `uplift/` folder, and loaded by a
//! scoring run under `targeting = "uplift"`.
//!
//! The units are the decisions on record: the customer's features are
//! rebuilt at the decision's day from the event tables (point in time, as
//! the run saw them), and the outcome is churn within the policy's outcome
//! window. The customers no playbook touched on those days join the control
//! models (see `churnguard_train::uplift` for why that is sound and what it
//! assumes); only the randomised arms judge the model.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use churnguard_core::data::{self, columns, schema, LoadOptions};
use churnguard_core::features::{self, FeatureParams};
use churnguard_core::interventions::{Arm, Intervention, UpliftModel};
use churnguard_core::models::Batch;
use churnguard_store::Store;
use churnguard_train::uplift::{fit_uplift, PlaybookUplift, UpliftArm, UpliftConfig, UpliftInput};

use super::{Result, ServiceError};
use crate::config::AppConfig;
use crate::registry::{RegistryError, UpliftFiles, UpliftStore};

/// The registry's folder of uplift models, beside the churn models.
pub fn uplift_dir(registry: &Path) -> PathBuf {
    UpliftStore::of(registry).root().to_path_buf()
}

/// What an uplift model was trained on and how it did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpliftManifest {
    /// Version id.
    pub id: String,
    /// Seconds since 1970.
    pub created_at: i64,
    /// The event tables the outcomes came from.
    pub data: String,
    /// Outcome window, days.
    pub window_days: u32,
    /// Decision days the units come from.
    pub decision_days: usize,
    /// Untreated customers the control models also learnt from.
    pub untreated: usize,
    /// Decisions whose window is not over in the data (left out).
    pub unsettled: usize,
    /// Per playbook: arms, held-out Qini, or why it has no model.
    pub playbooks: Vec<PlaybookUplift>,
}

/// `churnguard uplift train`.
#[derive(Debug, Clone)]
pub struct UpliftTrainRequest {
    /// Event tables with the churn observed after the decisions.
    pub data: PathBuf,
    /// The model registry (the uplift model goes to its `uplift/`).
    pub registry: PathBuf,
}

/// Trains an uplift model from the store's decisions and saves it as the
/// uplift champion.
pub async fn train_uplift(
    req: &UpliftTrainRequest,
    config: &AppConfig,
    store: &Store,
) -> Result<UpliftManifest> {
    let records = store.all_interventions().await?;
    if records.is_empty() {
        return Err(ServiceError::BadRequest(
            "no interventions on record: run `churnguard score` with a store first, and train the uplift model once their outcome windows are over".into(),
        ));
    }
    let req = req.clone();
    let window = config.interventions.outcome_window_days;
    tokio::task::spawn_blocking(move || train_blocking(&req, window, &records))
        .await
        .map_err(|e| ServiceError::Internal(format!("training the uplift model: {e}")))?
}

fn train_blocking(
    req: &UpliftTrainRequest,
    window: u32,
    records: &[Intervention],
) -> Result<UpliftManifest> {
    let tables = data::load_tables(&req.data, LoadOptions::default())?;
    let days: BTreeSet<i32> = records
        .iter()
        .map(|r| r.created_at.div_euclid(86_400) as i32)
        .collect();
    let snapshots: Vec<NaiveDate> = days.iter().map(|&d| schema::date_from_days(d)).collect();
    let frame = features::build_features(
        &tables,
        &FeatureParams {
            snapshots,
            horizon_days: window,
        },
    )?;
    let (numeric, categorical) = features::model_inputs();
    let numeric: Vec<String> = numeric.iter().map(|s| s.to_string()).collect();
    let categorical: Vec<String> = categorical.iter().map(|s| s.to_string()).collect();
    let batch = Batch::from_frame(&frame, "customer_id", &numeric, &categorical)?;
    let snapshot_of = columns::days(&frame, "snapshot_date")
        .map_err(|m| ServiceError::BadRequest(format!("features: {m}")))?;
    let label = columns::i64s(&frame, "churned")
        .map_err(|m| ServiceError::BadRequest(format!("features: {m}")))?;
    let row_of: HashMap<(&str, i32), usize> = batch
        .ids
        .iter()
        .zip(&snapshot_of)
        .enumerate()
        .filter_map(|(i, (id, d))| Some(((id.as_str(), (*d)?), i)))
        .collect();
    let (mut rows, mut playbooks, mut arms, mut churned) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut decided: std::collections::HashSet<(&str, i32)> = Default::default();
    let mut unsettled = 0;
    for r in records {
        let day = r.created_at.div_euclid(86_400) as i32;
        decided.insert((r.customer_id.as_str(), day));
        let Some(&i) = row_of.get(&(r.customer_id.as_str(), day)) else {
            continue;
        };
        let Some(y) = label[i] else {
            unsettled += 1;
            continue;
        };
        rows.push(i);
        playbooks.push(Some(r.playbook.clone()));
        arms.push(match r.arm {
            Arm::Treated => UpliftArm::Treated,
            Arm::Control => UpliftArm::Control,
        });
        churned.push(u8::from(y == 1));
    }
    let mut untreated = 0;
    for (i, (id, d)) in batch.ids.iter().zip(&snapshot_of).enumerate() {
        let (Some(d), Some(y)) = (*d, label[i]) else {
            continue;
        };
        if decided.contains(&(id.as_str(), d)) {
            continue;
        }
        rows.push(i);
        playbooks.push(None);
        arms.push(UpliftArm::Untreated);
        churned.push(u8::from(y == 1));
        untreated += 1;
    }
    if playbooks.iter().all(Option::is_none) {
        return Err(ServiceError::BadRequest(format!(
            "no decision on record has a settled outcome in {}: its churn data must reach {window} days past the decisions ({unsettled} not settled yet)",
            req.data.display()
        )));
    }
    let fit = fit_uplift(
        &UpliftInput {
            batch: batch.select(&rows),
            playbooks,
            arms,
            churned,
        },
        &UpliftConfig::default(),
    )?;
    if fit.model.playbooks.is_empty() {
        let why: Vec<String> = fit
            .playbooks
            .iter()
            .map(|p| format!("{}: {}", p.playbook, p.skipped.as_deref().unwrap_or("?")))
            .collect();
        return Err(ServiceError::BadRequest(format!(
            "no playbook has enough settled outcomes for an uplift model that shows skill on held-out outcomes yet ({})",
            why.join("; ")
        )));
    }
    let created_at = chrono::Utc::now().timestamp();
    let manifest = UpliftManifest {
        id: format!("uplift-{}", chrono::Utc::now().format("%Y%m%dT%H%M%S%3fZ")),
        created_at,
        data: req.data.display().to_string(),
        window_days: window,
        decision_days: days.len(),
        untreated,
        unsettled,
        playbooks: fit.playbooks,
    };
    UpliftStore::of(&req.registry).save(
        &manifest.id,
        &serde_json::to_vec_pretty(&manifest).expect("manifest serialises"),
        &serde_json::to_vec(&fit.model).expect("model serialises"),
    )?;
    Ok(manifest)
}

/// The uplift champion of a registry, with its manifest; a clear error when
/// there is none.
pub fn load_uplift(registry: &Path) -> Result<(UpliftManifest, UpliftModel)> {
    let store = UpliftStore::of(registry);
    let Some(UpliftFiles {
        id,
        manifest,
        model,
    }) = store.champion()?
    else {
        return Err(ServiceError::BadRequest(format!(
            "targeting = \"uplift\" needs an uplift model, and {} has none: run `churnguard uplift train` once the experiment has settled outcomes, or set interventions.targeting = \"risk_value\"",
            registry.display()
        )));
    };
    let corrupt = |name: &str, e: serde_json::Error| {
        ServiceError::Registry(RegistryError::Corrupt {
            path: store.root().join(&id).join(name),
            message: e.to_string(),
        })
    };
    let manifest: UpliftManifest =
        serde_json::from_slice(&manifest).map_err(|e| corrupt("manifest.json", e))?;
    let model: UpliftModel =
        serde_json::from_slice(&model).map_err(|e| corrupt("model.json", e))?;
    model.validate()?;
    Ok((manifest, model))
}

/// Predicted uplift per (customer, playbook) for a run's rows: what the
/// planner ranks by under uplift targeting.
pub fn predict_uplift(
    model: &UpliftModel,
    batch: &Batch,
) -> Result<HashMap<(String, String), f64>> {
    let mut out = HashMap::new();
    for name in model.playbooks.keys() {
        if let Some(u) = model.predict(name, batch)? {
            for (id, v) in batch.ids.iter().zip(u) {
                out.insert((id.clone(), name.clone()), v);
            }
        }
    }
    Ok(out)
}
