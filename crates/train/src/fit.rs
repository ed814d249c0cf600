//! Fitting one family with one set of settings on chosen rows: the unit
//! every protocol (cross-validation, backtest, search, final refit) repeats.

use ndarray::Array2;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use churnguard_core::eval::calibration::Calibrator;
use churnguard_core::models::gbdt::Validation;
use churnguard_core::models::neural::{Epoch, NeuralModel, NeuralParams};
use churnguard_core::models::{
    ChurnModel, Family, FittedModel, GbdtModel, GbdtParams, LogisticModel, LogisticParams,
    ModelError, Preprocessor, TreeModel, TreeParams,
};

use crate::{Result, TrainInput};

/// Background rows kept with a neural model for its per-customer
/// contributions.
const NEURAL_BACKGROUND_ROWS: usize = 8;

/// One family's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "family", rename_all = "snake_case")]
pub enum Settings {
    /// Logistic regression.
    Logistic(LogisticParams),
    /// Decision tree.
    Tree(TreeParams),
    /// Gradient-boosted trees.
    Gbdt(GbdtParams),
    /// MLP.
    Neural(NeuralParams),
}

impl Settings {
    /// The family these settings are for.
    pub fn family(&self) -> Family {
        match self {
            Settings::Logistic(_) => Family::Logistic,
            Settings::Tree(_) => Family::Tree,
            Settings::Gbdt(_) => Family::Gbdt,
            Settings::Neural(_) => Family::Neural,
        }
    }

    /// The settings as JSON, for manifests and reports.
    pub fn to_json(&self) -> serde_json::Value {
        let inner = match self {
            Settings::Logistic(p) => serde_json::to_value(p),
            Settings::Tree(p) => serde_json::to_value(p),
            Settings::Gbdt(p) => serde_json::to_value(p),
            Settings::Neural(p) => serde_json::to_value(p),
        };
        inner.unwrap_or(serde_json::Value::Null)
    }

    /// Checks the settings' ranges.
    pub fn check(&self) -> std::result::Result<(), ModelError> {
        match self {
            Settings::Logistic(p) => p.check(),
            Settings::Tree(p) => p.check(),
            Settings::Gbdt(p) => p.check().map_err(|e| match e {
                churnguard_core::models::gbdt::GbdtError::BadParam { name, message } => {
                    ModelError::BadParam { name, message }
                }
                other => ModelError::BadParam {
                    name: "gbdt".into(),
                    message: other.to_string(),
                },
            }),
            Settings::Neural(p) => p.check(),
        }
    }
}

/// Fits the neural family wherever libtorch is: the application runs the
/// `churnguard-neural` executable; tests may fit in-process. This crate
/// never links libtorch.
pub trait NeuralTrainer {
    /// Fits an MLP on preprocessed rows, reporting each epoch to `on_epoch`.
    fn fit(
        &self,
        x: &Array2<f64>,
        y: &[u8],
        params: &NeuralParams,
        seed: u64,
        on_epoch: &mut dyn FnMut(Epoch),
    ) -> std::result::Result<NeuralModel, ModelError>;
}

/// What a training run may call on besides the data: the neural trainer
/// (absent when this installation has none) and a progress callback.
pub struct Learners<'a> {
    /// Fits the neural family; `None` skips it with the reason.
    pub neural: Option<&'a dyn NeuralTrainer>,
    /// Sees every neural epoch and every stage of the run.
    pub progress: &'a mut dyn FnMut(crate::Progress),
}

/// The reason the neural family is skipped when no trainer is available.
pub const NO_NEURAL_TRAINER: &str = "neural training needs the churnguard-neural executable beside churnguard (built with libtorch: scripts/setup, then cargo build -p churnguard-neural --features torch); train logistic, tree or gbdt";

/// Fits `settings` on `rows` of `input`: preprocessing learned from those
/// rows only, the model, an identity calibrator and no churn-type part (the
/// protocols add both). `early_stop` rows (disjoint from `rows`) let the
/// boosted family stop adding trees when they stop helping; the other
/// families ignore them.
pub fn fit(
    settings: &Settings,
    input: &TrainInput,
    rows: &[usize],
    early_stop: &[usize],
    seed: u64,
    learners: &mut Learners<'_>,
) -> Result<FittedModel> {
    settings.check()?;
    let batch = input.batch.select(rows);
    let y: Vec<u8> = rows.iter().map(|&i| input.labels[i]).collect();
    let preprocessor = Preprocessor::fit(&batch)?;
    let model = match settings {
        Settings::Logistic(p) => {
            let (x, _) = preprocessor.transform(&batch)?;
            ChurnModel::Logistic(LogisticModel::fit(&x, &y, p)?)
        }
        Settings::Tree(p) => {
            let (x, _) = preprocessor.transform(&batch)?;
            ChurnModel::Tree(TreeModel::fit(&x, &y, p)?)
        }
        Settings::Gbdt(p) => {
            let (x, _) = preprocessor.transform_codes(&batch)?;
            let mask = preprocessor.categorical_mask();
            let params = GbdtParams { seed, ..p.clone() };
            let validation = if early_stop.is_empty() {
                None
            } else {
                let vb = input.batch.select(early_stop);
                let (vx, _) = preprocessor.transform_codes(&vb)?;
                let vy: Vec<u8> = early_stop.iter().map(|&i| input.labels[i]).collect();
                Some((vx, vy))
            };
            let model = GbdtModel::fit(
                x.view(),
                &y,
                &mask,
                &params,
                validation.as_ref().map(|(vx, vy)| Validation {
                    x: vx.view(),
                    y: vy,
                }),
            )
            .map_err(|e| match e {
                churnguard_core::models::gbdt::GbdtError::SingleClass => ModelError::SingleClass,
                churnguard_core::models::gbdt::GbdtError::BadParam { name, message } => {
                    ModelError::BadParam { name, message }
                }
                other => ModelError::Fit {
                    family: Family::Gbdt,
                    message: other.to_string(),
                },
            })?;
            ChurnModel::Gbdt(model)
        }
        Settings::Neural(p) => {
            let trainer = learners
                .neural
                .ok_or_else(|| ModelError::NotEnabled(NO_NEURAL_TRAINER.into()))?;
            let (x, _) = preprocessor.transform(&batch)?;
            let progress = &mut *learners.progress;
            let mut model = trainer.fit(&x, &y, p, seed, &mut |e| {
                progress(crate::Progress::Epoch(e));
            })?;
            let mut order: Vec<usize> = (0..x.nrows()).collect();
            order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed ^ 0xbac6));
            model.background = order
                .into_iter()
                .take(NEURAL_BACKGROUND_ROWS)
                .map(|i| x.row(i).to_vec())
                .collect();
            ChurnModel::Neural(model)
        }
    };
    Ok(FittedModel {
        preprocessor,
        model,
        calibrator: Calibrator::Identity,
        churn_type: None,
    })
}

/// P(involuntary | churn) on the churners among `rows` whose type is known;
/// `None` without types or with fewer than five of either type.
pub fn fit_churn_type(
    pre: &Preprocessor,
    input: &TrainInput,
    rows: &[usize],
    params: &LogisticParams,
) -> Result<Option<LogisticModel>> {
    let Some(types) = &input.churn_types else {
        return Ok(None);
    };
    let (churners, y): (Vec<usize>, Vec<u8>) = rows
        .iter()
        .filter_map(|&i| types.get(i).copied().flatten().map(|t| (i, t)))
        .unzip();
    let involuntary = y.iter().filter(|t| **t == 1).count();
    if involuntary < 5 || y.len() - involuntary < 5 {
        return Ok(None);
    }
    let (x, _) = pre.transform(&input.batch.select(&churners))?;
    Ok(Some(LogisticModel::fit(&x, &y, params)?))
}
