//! The server's shared state: config, registry, store, the serving model
//! behind an `ArcSwap` (each request takes an immutable snapshot), keys,
//! metrics, and the baseline of the latest scoring run (previous health per
//! customer and CLV cut-offs) that online scores are compared with.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::{ArcSwap, ArcSwapOption};

use super::auth::{KeyRing, RateLimiter};
use super::error::ApiError;
use super::metrics::Metrics;
use crate::config::ServeConfig;
use churnguard_app::config::AppConfig;
use churnguard_app::registry::{Manifest, Registry};
use churnguard_core::interventions::ClvThresholds;
use churnguard_core::models::FittedModel;
use churnguard_core::scoring::Previous;
use churnguard_store::Store;

/// Where a field of a score record goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// The customer id.
    Id,
    /// A numeric model input (index into the numeric inputs).
    Numeric(usize),
    /// A categorical model input.
    Categorical(usize),
    /// Context only: not a model input.
    Context(ContextField),
}

/// Context fields a record may carry besides model inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContextField {
    /// `name`.
    Name,
    /// `account_manager_id`.
    AccountManager,
    /// `acquisition_rep_id`.
    AcquisitionRep,
    /// `segment`.
    Segment,
    /// `mrr`.
    Mrr,
    /// `cac`.
    Cac,
}

/// Context field names.
pub const CONTEXT_FIELDS: &[(&str, ContextField)] = &[
    ("name", ContextField::Name),
    ("account_manager_id", ContextField::AccountManager),
    ("acquisition_rep_id", ContextField::AcquisitionRep),
    ("segment", ContextField::Segment),
    ("mrr", ContextField::Mrr),
    ("cac", ContextField::Cac),
];

/// Where each field of a score record goes, by name (a fast hash: every
/// field of every record is looked up).
pub type FieldIndex = rustc_hash::FxHashMap<String, Slot>;

/// The fields a record for this model has.
#[derive(Debug, Clone)]
pub struct RecordSchema {
    /// The id field's name.
    pub id: String,
    /// Numeric inputs, in model order.
    pub numeric: std::sync::Arc<[String]>,
    /// Categorical inputs, in model order.
    pub categorical: std::sync::Arc<[String]>,
    /// Field name to slot.
    pub index: FieldIndex,
    /// The numeric input that doubles as MRR (`mrr` or `MonthlyCharges`).
    pub mrr_input: Option<usize>,
    /// The categorical input that doubles as the segment (`plan`).
    pub segment_input: Option<usize>,
}

impl RecordSchema {
    /// The record schema of a model's inputs.
    pub fn of(manifest: &Manifest) -> RecordSchema {
        let c = &manifest.input.columns;
        let mut index = FieldIndex::default();
        index.insert(manifest.input.id.clone(), Slot::Id);
        for (j, n) in c.numeric.iter().enumerate() {
            index.insert(n.clone(), Slot::Numeric(j));
        }
        for (j, n) in c.categorical.iter().enumerate() {
            index.insert(n.clone(), Slot::Categorical(j));
        }
        // A flat schema's `[roles]` name its context fields; an input of
        // the same name stays an input (MRR may be both).
        let roles = &manifest.input.roles;
        for (column, f) in [
            (&roles.name, ContextField::Name),
            (&roles.owner, ContextField::AccountManager),
            (&roles.segment, ContextField::Segment),
            (&roles.mrr, ContextField::Mrr),
            (&roles.cac, ContextField::Cac),
        ] {
            if let Some(column) = column {
                index.entry(column.clone()).or_insert(Slot::Context(f));
            }
        }
        for (name, f) in CONTEXT_FIELDS {
            index.entry(name.to_string()).or_insert(Slot::Context(*f));
        }
        let mrr_names: Vec<&str> = roles
            .mrr
            .as_deref()
            .into_iter()
            .chain(["mrr", "MonthlyCharges"])
            .collect();
        let segment_names: Vec<&str> = roles
            .segment
            .as_deref()
            .into_iter()
            .chain(["plan"])
            .collect();
        RecordSchema {
            id: manifest.input.id.clone(),
            numeric: c.numeric.as_slice().into(),
            categorical: c.categorical.as_slice().into(),
            mrr_input: mrr_names
                .iter()
                .find_map(|m| c.numeric.iter().position(|n| n == m)),
            segment_input: segment_names
                .iter()
                .find_map(|m| c.categorical.iter().position(|n| n == m)),
            index,
        }
    }

    /// The set of input names (numeric and categorical), for schema checks.
    pub fn inputs(&self) -> (Vec<String>, Vec<String>) {
        let mut n = self.numeric.to_vec();
        let mut c = self.categorical.to_vec();
        n.sort();
        c.sort();
        (n, c)
    }
}

/// A model ready to serve.
#[derive(Debug)]
pub struct LoadedModel {
    /// Its manifest.
    pub manifest: Manifest,
    /// The model.
    pub model: FittedModel,
    /// Horizon of its probabilities, in days.
    pub horizon_days: u32,
    /// The records it takes.
    pub schema: RecordSchema,
    /// Its id as the `Model-Version` response header, built once.
    pub version_header: axum::http::HeaderValue,
    /// Its training baseline, for online drift (`None` for versions saved
    /// without one).
    pub baseline: Option<churnguard_core::monitor::Baseline>,
}

/// The response header naming the model version that produced an answer.
pub const MODEL_VERSION_HEADER: &str = "model-version";

/// What online scores are compared with: the latest scoring run.
#[derive(Debug, Default)]
pub struct Baseline {
    /// The run, if any.
    pub run_id: Option<String>,
    /// Health and band per customer at that run.
    pub previous: HashMap<String, Previous>,
    /// Its CLV cut-offs.
    pub clv_thresholds: Option<ClvThresholds>,
    /// The model that scored it.
    pub model_id: Option<String>,
    /// Its drift against that model's training baseline.
    pub drift: Option<churnguard_core::monitor::DriftReport>,
}

/// Everything handlers share.
pub struct AppState {
    /// The domain and store sections of the configuration.
    pub config: AppConfig,
    /// The `[serve]` section.
    pub serve: ServeConfig,
    /// The model registry.
    pub registry: Registry,
    /// The store.
    pub store: Store,
    /// The serving model.
    pub active: ArcSwapOption<LoadedModel>,
    /// The shadow challenger, scored beside the champion but never answered
    /// with; loaded through the same path as the champion.
    pub shadow: ArcSwapOption<LoadedModel>,
    /// Pairs of champion and shadow scores waiting for the store.
    pub shadow_recorder: crate::shadow::ShadowRecorder,
    /// This replica's recent online rows, for online drift.
    pub online: crate::online_drift::OnlineWindow,
    /// API keys.
    pub keys: KeyRing,
    /// Per-key rate limits.
    pub limiter: RateLimiter,
    /// Metrics.
    pub metrics: Metrics,
    /// The latest run's baseline.
    pub baseline: ArcSwap<Baseline>,
    /// One reload at a time.
    pub reload_lock: Arc<tokio::sync::Mutex<()>>,
    /// One scoring run at a time; the run's task owns the guard.
    pub run_lock: Arc<tokio::sync::Mutex<()>>,
    /// Bounds concurrent large batches on the blocking pool; the blocking
    /// task owns its permit.
    pub heavy: Arc<tokio::sync::Semaphore>,
    /// Champion ids that failed to load, not retried by the watcher.
    pub rejected: std::sync::Mutex<Option<String>>,
    /// A shadow id that failed to load, not retried by the watcher.
    pub shadow_rejected: std::sync::Mutex<Option<String>>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("registry", &self.registry.root())
            .field("store", &self.store.url())
            .field("keys", &self.keys)
            .finish()
    }
}

/// Locks `m`, taking the data of a poisoned lock as it is: every shared
/// value behind one stays valid after a panic (queues, counters, ids).
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The serving model, or 503.
pub fn model(state: &AppState) -> Result<Arc<LoadedModel>, ApiError> {
    state.active.load_full().ok_or(ApiError::NoModel)
}

/// Loads `id` (or `champion`) and checks it can serve in place of
/// `current`: it parses, its family matches its manifest, its preprocessing
/// takes the inputs its manifest names, and (unless `allow_schema_change`)
/// it takes the same inputs as the model serving now.
pub fn load_model(
    registry: &Registry,
    id: &str,
    current: Option<&LoadedModel>,
    allow_schema_change: bool,
    default_horizon: u32,
) -> Result<LoadedModel, ApiError> {
    let (manifest, model) = registry.load(id).map_err(|e| match e {
        churnguard_app::registry::RegistryError::NotFound { id, .. } => {
            ApiError::NotFound { what: "model", id }
        }
        other => ApiError::ModelRejected(other.to_string()),
    })?;
    let schema = RecordSchema::of(&manifest);
    let p = &model.preprocessor;
    let pre_numeric: Vec<&str> = p.numeric.iter().map(|c| c.name.as_str()).collect();
    let pre_categorical: Vec<&str> = p.categorical.iter().map(|c| c.name.as_str()).collect();
    if pre_numeric
        != schema
            .numeric
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
        || pre_categorical
            != schema
                .categorical
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
    {
        return Err(ApiError::ModelRejected(format!(
            "model {} takes inputs {pre_numeric:?} {pre_categorical:?} but its manifest names {:?} {:?}",
            manifest.id, schema.numeric, schema.categorical
        )));
    }
    if let Some(cur) = current {
        if !allow_schema_change && cur.schema.inputs() != schema.inputs() {
            return Err(ApiError::ModelRejected(format!(
                "model {} takes different inputs than {} (serving): numeric {:?} categorical {:?}; reload with allow_schema_change=true once clients send them",
                manifest.id, cur.manifest.id, schema.numeric, schema.categorical
            )));
        }
    }
    // A smoke test: one row of medians must score to a probability.
    let probe = churnguard_core::models::Batch {
        ids: vec!["probe".into()],
        numeric_names: schema.numeric.clone(),
        numeric: ndarray::Array2::from_shape_fn((1, schema.numeric.len()), |(_, j)| {
            p.numeric[j].median
        }),
        categorical_names: schema.categorical.clone(),
        categorical: vec![vec![None]; schema.categorical.len()],
    };
    match model.predict(&probe) {
        Ok(v) if v.len() == 1 && v[0].is_finite() => {}
        Ok(_) => {
            return Err(ApiError::ModelRejected(format!(
                "model {} scores a probe row to a non-finite probability",
                manifest.id
            )))
        }
        Err(e) => {
            return Err(ApiError::ModelRejected(format!(
                "model {} cannot score: {e}",
                manifest.id
            )))
        }
    }
    let version_header = axum::http::HeaderValue::from_str(&manifest.id).map_err(|_| {
        ApiError::ModelRejected(format!(
            "model id {:?} cannot be sent in a header (visible ASCII only)",
            manifest.id
        ))
    })?;
    let baseline = match registry.baseline(&manifest.id) {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(model = %manifest.id, error = %e, "the training baseline cannot be read; no online drift for this model");
            None
        }
    };
    Ok(LoadedModel {
        baseline,
        horizon_days: manifest.horizon_days.unwrap_or(default_horizon),
        manifest,
        model,
        schema,
        version_header,
    })
}

/// Reloads the champion (or `id`) through the one load path: load, check,
/// swap. The old model keeps serving when anything fails.
pub async fn reload(
    state: &Arc<AppState>,
    id: &str,
    allow_schema_change: bool,
) -> Result<Arc<LoadedModel>, ApiError> {
    let guard = state.reload_lock.clone().lock_owned().await;
    let current = state.active.load_full();
    let s = state.clone();
    let id = id.to_string();
    let loaded = tokio::task::spawn_blocking(move || {
        let _guard = guard;
        load_model(
            &s.registry,
            &id,
            current.as_deref(),
            allow_schema_change,
            s.config.value.default_horizon_days,
        )
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    match loaded {
        Ok(m) => {
            let m = Arc::new(m);
            state.active.store(Some(m.clone()));
            state.metrics.reload(true);
            tracing::info!(model = %m.manifest.id, family = %m.manifest.family, "model loaded");
            Ok(m)
        }
        Err(e) => {
            state.metrics.reload(false);
            Err(e)
        }
    }
}

/// Loads the shadow challenger `id` through the one load path (checked
/// against the serving champion: it must take the same inputs, in the same
/// order, so every request's batch serves both), or clears it with `None`.
pub async fn reload_shadow(
    state: &Arc<AppState>,
    id: Option<&str>,
) -> Result<Option<Arc<LoadedModel>>, ApiError> {
    let Some(id) = id else {
        state.shadow.store(None);
        return Ok(None);
    };
    let guard = state.reload_lock.clone().lock_owned().await;
    let champion = state.active.load_full().ok_or_else(|| {
        ApiError::ModelRejected(format!(
            "shadow {id} needs a serving champion to be compared with"
        ))
    })?;
    let s = state.clone();
    let id = id.to_string();
    let loaded = tokio::task::spawn_blocking(move || {
        let _guard = guard;
        let m = load_model(
            &s.registry,
            &id,
            Some(&champion),
            false,
            s.config.value.default_horizon_days,
        )?;
        if m.schema.numeric != champion.schema.numeric
            || m.schema.categorical != champion.schema.categorical
        {
            return Err(ApiError::ModelRejected(format!(
                "shadow {} takes its inputs in another order than the champion {}",
                m.manifest.id, champion.manifest.id
            )));
        }
        Ok(m)
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))??;
    let m = Arc::new(loaded);
    state.shadow.store(Some(m.clone()));
    tracing::info!(model = %m.manifest.id, family = %m.manifest.family, "shadow challenger loaded");
    Ok(Some(m))
}

/// Reloads the baseline from the latest scoring run.
pub async fn refresh_baseline(state: &AppState) -> Result<(), ApiError> {
    let Some(run) = state.store.latest_run().await? else {
        state.baseline.store(Arc::new(Baseline::default()));
        return Ok(());
    };
    let previous = state.store.previous_scores(&run.snapshot_date).await?;
    let clv_thresholds = run.summary.clv_thresholds;
    state.baseline.store(Arc::new(Baseline {
        run_id: Some(run.run_id),
        previous,
        clv_thresholds,
        model_id: Some(run.model_id),
        drift: run.summary.drift,
    }));
    Ok(())
}
