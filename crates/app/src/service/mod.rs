//! Service functions: the operations the CLI and the server share. Each
//! loads what it needs (data, registry, store), calls the pure domain, and
//! saves the result. A handler or a subcommand calls exactly one of these.
//!
//! - [`score_run`]: batch scoring of every active customer at a snapshot,
//!   with health, interventions and KPI scorecards, saved as a run;
//! - [`ingest_outcomes`]: later churn events against the interventions on
//!   record: treated against control;
//! - [`simulate_outcomes`]: generated churn events with a known effect per
//!   playbook, to check that the analysis recovers it;
//! - [`train_uplift`]: the uplift model, from the experiment on record.

mod interventions;
mod models;
mod monitor;
mod outcomes;
mod score_run;
mod train_run;
mod uplift;

use std::path::PathBuf;

pub use interventions::{
    mark_done, record_outcome, set_override, OverrideRequest, MAX_NOTE_BYTES, MAX_OVERRIDE_DAYS,
    MAX_REASON_BYTES,
};
pub use models::{promote, promote_shadow, record_training, rollback, set_shadow};
pub use monitor::{
    compare_shadow, monitor, MonitorReport, MonitorRequest, RealisedRun, ShadowReport,
    SHADOW_PAIRS_READ,
};
pub use outcomes::{
    ingest_outcomes, simulate_outcomes, OutcomesRequest, SimulateRequest, SimulationSummary,
};
pub use score_run::{
    compute, load, new_run_id, persist, score_run, write_outputs, ComputedRun, LoadedRun,
    ScoreRunRequest, ScoreRunSummary, StageTimes,
};
pub use train_run::{
    read_training_data, train_run, Promotion, TrainRunRequest, TrainRunSummary, TrainingData,
};
pub use uplift::{
    load_uplift, predict_uplift, train_uplift, uplift_dir, UpliftManifest, UpliftTrainRequest,
};

use crate::registry::RegistryError;
use churnguard_core::data::DataError;
use churnguard_core::error::{ErrorKind, HasKind};
use churnguard_core::features::FeatureError;
use churnguard_core::kpi::KpiError;
use churnguard_core::models::ModelError;
use churnguard_core::scoring::ScoringError;
use churnguard_core::value::ValueError;
use churnguard_store::StoreError;

/// Result alias of the service layer.
pub type Result<T, E = ServiceError> = std::result::Result<T, E>;

/// What can go wrong in a service call; wraps the layer that failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Reading or writing data.
    #[error(transparent)]
    Data(#[from] DataError),
    /// Building features.
    #[error(transparent)]
    Features(#[from] FeatureError),
    /// The model registry.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// Applying a model.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// Scoring.
    #[error(transparent)]
    Scoring(#[from] ScoringError),
    /// The store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// KPI scorecards.
    #[error(transparent)]
    Kpi(#[from] KpiError),
    /// Value figures.
    #[error(transparent)]
    Value(#[from] ValueError),
    /// Training.
    #[error(transparent)]
    Train(#[from] churnguard_train::TrainError),
    /// A request that cannot be carried out as asked.
    #[error("{0}")]
    BadRequest(String),
    /// One field of a request is refused.
    #[error("{message}")]
    BadField {
        /// The field, as the caller named it.
        field: &'static str,
        /// A machine-readable code (`too_long`).
        code: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The run was saved, but its output files could not be written.
    #[error("run {run_id} is saved in the store, but writing its files to {dir} failed (none were left behind): {message}")]
    Outputs {
        /// The run.
        run_id: String,
        /// The output folder.
        dir: PathBuf,
        /// What failed.
        message: String,
    },
    /// Our own failure (a task that panicked): a bug, logged, not blamed on
    /// the caller.
    #[error("internal error: {0}")]
    Internal(String),
    /// A file the request names does not exist.
    #[error("{path}: {message}")]
    BadPath {
        /// The path.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

impl HasKind for ServiceError {
    fn kind(&self) -> ErrorKind {
        match self {
            ServiceError::Data(e) => e.kind(),
            ServiceError::Features(e) => e.kind(),
            ServiceError::Registry(e) => e.kind(),
            ServiceError::Model(e) => e.kind(),
            ServiceError::Scoring(e) => e.kind(),
            ServiceError::Store(e) => e.kind(),
            ServiceError::Kpi(e) => e.kind(),
            ServiceError::Value(e) => e.kind(),
            ServiceError::Train(e) => e.kind(),
            ServiceError::BadRequest(_) | ServiceError::BadField { .. } => ErrorKind::BadInput,
            ServiceError::BadPath { .. } => ErrorKind::NotFound,
            ServiceError::Outputs { .. } | ServiceError::Internal(_) => ErrorKind::Internal,
        }
    }
}
