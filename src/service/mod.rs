//! Service functions: the operations the CLI and the server share. Each
//! loads what it needs (data, registry, store), calls the pure domain, and
//! saves the result. A handler or a subcommand calls exactly one of these.
//!
//! - [`score_run`]: batch scoring of every active customer at a snapshot,
//!   with health, interventions and KPI scorecards, saved as a run;
//! - [`ingest_outcomes`]: later churn events against the interventions on
//!   record: treated against control;
//! - [`simulate_outcomes`]: generated churn events with a known effect per
//!   playbook, to check that the analysis recovers it.

mod outcomes;
mod score_run;

use std::path::PathBuf;

pub use outcomes::{
    ingest_outcomes, simulate_outcomes, OutcomesRequest, SimulateRequest, SimulationSummary,
};
pub use score_run::{score_run, ScoreRunRequest, ScoreRunSummary};

use crate::data::DataError;
use crate::features::FeatureError;
use crate::kpi::KpiError;
use crate::models::ModelError;
use crate::registry::RegistryError;
use crate::scoring::ScoringError;
use crate::store::StoreError;
use crate::value::ValueError;

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
    /// A request that cannot be carried out as asked.
    #[error("{0}")]
    BadRequest(String),
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
    /// A file the request names does not exist.
    #[error("{path}: {message}")]
    BadPath {
        /// The path.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

impl ServiceError {
    /// Whether the caller's input is at fault (exit code 2, HTTP 4xx).
    pub fn is_bad_input(&self) -> bool {
        match self {
            ServiceError::Data(e) => e.is_bad_input(),
            ServiceError::Features(e) => !matches!(e, FeatureError::Polars(_)),
            ServiceError::Registry(e) => !matches!(e, RegistryError::Io { .. }),
            ServiceError::Model(_)
            | ServiceError::Scoring(_)
            | ServiceError::Kpi(_)
            | ServiceError::Value(_)
            | ServiceError::BadRequest(_)
            | ServiceError::BadPath { .. } => true,
            ServiceError::Outputs { .. } => false,
            ServiceError::Store(e) => matches!(
                e,
                StoreError::BadUrl { .. }
                    | StoreError::NotFound { .. }
                    | StoreError::BadTransition { .. }
            ),
        }
    }
}
