//! Training: honest evaluation, hyperparameter search, calibration, the
//! champion rule, the final refit, and the HTML report ([`report`]).
//!
//! Two protocols, chosen by the data (see [`split`] for how rows divide):
//!
//! - **Flat tables** (one row per customer): a hash-stratified test set is
//!   held out; each family is cross-validated (stratified k-fold) on the
//!   training rows, its calibrator is fitted on the out-of-fold
//!   predictions, and its final model is refitted on all training rows (all
//!   rows with `final_refit = "all"`) and measured once on the test rows.
//! - **Event data** (a feature table of many snapshots): a rolling-origin
//!   backtest. At each of the last `backtest_origins` snapshots, each family
//!   trains on the snapshots whose label horizon has ended by then (a
//!   validation share grouped by customer calibrates it and stops the
//!   boosted family) and is tested on the origin's rows. The earlier
//!   origins are the validation figures; the last origin is the test. The
//!   final model is the last origin's (refitted on every labelled row with
//!   `final_refit = "all"`), calibrated on the earlier origins' out-of-time
//!   predictions.
//!
//! Either way the champion is the family with the best validation ROC-AUC;
//! test rows choose nothing. With `tune`, each family's settings come from a
//! time-budgeted random search ([`search`]) on training rows only. No file
//! writes: the caller saves what [`train_with`] returns. libtorch is not
//! linked here: the neural family is fit through a [`NeuralTrainer`] the
//! caller provides.
#![warn(missing_docs)]

mod fit;
pub mod report;
pub mod search;
pub mod split;
pub mod uplift;

pub use fit::{fit, fit_churn_type, Learners, NeuralTrainer, Settings, NO_NEURAL_TRAINER};
pub use search::{Trial, TuneConfig};

use std::time::Instant;

use serde::{Deserialize, Serialize};

use churnguard_core::error::{ErrorKind, HasKind};
use churnguard_core::eval::calibration::Calibrator;
use churnguard_core::eval::{self, Metrics, ThresholdChoice};
use churnguard_core::models::neural::{Epoch, NeuralParams};
use churnguard_core::models::{
    Batch, ChurnModel, Family, FittedModel, GbdtParams, LogisticParams, ModelError, TreeParams,
};

/// Result alias of the training layer.
pub type Result<T, E = TrainError> = std::result::Result<T, E>;

/// What can go wrong while training.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A model failed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A setting out of range.
    #[error("invalid training setting `{key}`: {message}")]
    BadConfig {
        /// The TOML key.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// The data cannot be split as asked.
    #[error("cannot split the data: {0}")]
    Split(String),
    /// Every requested family failed or is unavailable.
    #[error("no model could be trained: {0}")]
    NothingTrained(String),
    /// The experiment's outcomes cannot train an uplift model as given.
    #[error("uplift data: {0}")]
    Uplift(String),
    /// Evaluation failed.
    #[error("evaluating {family}: {message}")]
    Eval {
        /// The family.
        family: Family,
        /// What failed.
        message: String,
    },
}

impl HasKind for TrainError {
    fn kind(&self) -> ErrorKind {
        match self {
            TrainError::Model(e) => e.kind(),
            TrainError::BadConfig { .. }
            | TrainError::Split(_)
            | TrainError::NothingTrained(_)
            | TrainError::Uplift(_) => ErrorKind::BadInput,
            TrainError::Eval { .. } => ErrorKind::Internal,
        }
    }
}

/// Probability calibration method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CalibrationMethod {
    /// Platt scaling (a logistic fit on the model's log-odds).
    Platt,
    /// Isotonic regression.
    Isotonic,
    /// No calibration.
    None,
}

/// The cost model behind the decision threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CostConfig {
    /// Cost of one intervention; defaults to `50`.
    pub intervention_cost: f64,
    /// Share of churners an intervention saves; defaults to `0.3`.
    pub save_rate: f64,
    /// Numeric input holding monthly revenue, to value a customer; defaults to
    /// the first of `mrr`, `MonthlyCharges` found, else a flat `default_value`.
    pub value_column: Option<String>,
    /// Months of revenue a saved customer is worth; defaults to `12`.
    pub value_months: f64,
    /// Value of a saved customer when no revenue column exists; defaults to `1000`.
    pub default_value: f64,
}

impl Default for CostConfig {
    fn default() -> Self {
        CostConfig {
            intervention_cost: 50.0,
            save_rate: 0.3,
            value_column: None,
            value_months: 12.0,
            default_value: 1000.0,
        }
    }
}

/// What the final model is refitted on once it has been chosen and measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinalRefit {
    /// Every row but the test rows (the default): the held-out figures are
    /// exactly the saved model's.
    Training,
    /// Every labelled row, test rows included: more data for the saved
    /// model; its reported figures are those measured before the refit.
    All,
}

/// Settings of a training run: `churnguard.train.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Seed of splits and learners; defaults to `42`.
    pub seed: u64,
    /// Families to train; defaults to all four (the neural family is skipped
    /// with the reason where there is no neural trainer).
    pub families: Vec<Family>,
    /// Flat tables: share of rows held out for test; defaults to `0.2`.
    pub test_fraction: f64,
    /// Event data: share of a training window's customers that calibrate
    /// its model and stop the boosted family; defaults to `0.2`.
    pub validation_fraction: f64,
    /// Flat tables: folds of the cross-validation on the training rows;
    /// defaults to `5`.
    pub cv_folds: usize,
    /// Event data: snapshots used as backtest origins (the last is the
    /// test, the others validate); defaults to `3`.
    pub backtest_origins: usize,
    /// Calibration method; defaults to `platt`.
    pub calibration: CalibrationMethod,
    /// What the final model is refitted on; defaults to `training`.
    pub final_refit: FinalRefit,
    /// Logistic regression settings.
    pub logistic: LogisticParams,
    /// Decision tree settings.
    pub tree: TreeParams,
    /// Gradient-boosted trees' settings.
    pub gbdt: GbdtParams,
    /// Neural network settings.
    pub neural: NeuralParams,
    /// The hyperparameter search (`train --tune`).
    pub tune: TuneConfig,
    /// Cost model of the decision threshold.
    pub cost: CostConfig,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            seed: 42,
            families: vec![Family::Logistic, Family::Tree, Family::Gbdt, Family::Neural],
            test_fraction: 0.2,
            validation_fraction: 0.2,
            cv_folds: 5,
            backtest_origins: 3,
            calibration: CalibrationMethod::Platt,
            final_refit: FinalRefit::Training,
            logistic: LogisticParams::default(),
            tree: TreeParams::default(),
            gbdt: GbdtParams::default(),
            neural: NeuralParams::default(),
            tune: TuneConfig::default(),
            cost: CostConfig::default(),
        }
    }
}

impl TrainConfig {
    /// Parses a TOML config; errors name the key.
    pub fn from_toml(text: &str) -> Result<TrainConfig> {
        let config: TrainConfig = toml::from_str(text).map_err(|e| TrainError::BadConfig {
            key: e
                .span()
                .map_or_else(String::new, |s| text.get(s).unwrap_or("").to_string()),
            message: e.message().to_string(),
        })?;
        config.check()?;
        Ok(config)
    }

    /// Checks ranges.
    pub fn check(&self) -> Result<()> {
        let bad = |key: &str, message: String| {
            Err(TrainError::BadConfig {
                key: key.into(),
                message,
            })
        };
        if !(0.05..=0.5).contains(&self.test_fraction) {
            return bad(
                "test_fraction",
                format!("must be 0.05..=0.5, got {}", self.test_fraction),
            );
        }
        if !(0.05..=0.5).contains(&self.validation_fraction) {
            return bad(
                "validation_fraction",
                format!("must be 0.05..=0.5, got {}", self.validation_fraction),
            );
        }
        if !(2..=20).contains(&self.cv_folds) {
            return bad("cv_folds", format!("must be 2..=20, got {}", self.cv_folds));
        }
        if !(1..=12).contains(&self.backtest_origins) {
            return bad(
                "backtest_origins",
                format!("must be 1..=12, got {}", self.backtest_origins),
            );
        }
        if self.families.is_empty() {
            return bad("families", "must name at least one family".into());
        }
        if !(self.cost.intervention_cost >= 0.0 && (0.0..=1.0).contains(&self.cost.save_rate)) {
            return bad(
                "cost",
                "intervention_cost must be >= 0 and save_rate within 0..=1".into(),
            );
        }
        self.tune.check()?;
        for settings in self.settings() {
            settings.check()?;
        }
        Ok(())
    }

    /// The configured settings of every family, in `families` order.
    pub fn settings(&self) -> Vec<Settings> {
        self.families.iter().map(|f| self.settings_of(*f)).collect()
    }

    /// The configured settings of one family.
    pub fn settings_of(&self, family: Family) -> Settings {
        match family {
            Family::Logistic => Settings::Logistic(self.logistic.clone()),
            Family::Tree => Settings::Tree(self.tree.clone()),
            Family::Gbdt => Settings::Gbdt(self.gbdt.clone()),
            Family::Neural => Settings::Neural(self.neural.clone()),
        }
    }
}

/// Labelled rows to train on.
#[derive(Debug, Clone)]
pub struct TrainInput {
    /// Raw feature rows; `batch.ids` is the customer id of each row (the
    /// same customer at several snapshots in event data).
    pub batch: Batch,
    /// 0/1 labels.
    pub labels: Vec<u8>,
    /// Snapshot day per row (event data: the backtest protocol); `None` for
    /// a flat table.
    pub snapshots: Option<Vec<i32>>,
    /// Label horizon in days (event data).
    pub horizon_days: u32,
    /// Per row, 1 when the churn was involuntary, 0 when voluntary, `None`
    /// when the row did not churn or the type is unknown. With it, every
    /// model also learns P(involuntary | churn).
    pub churn_types: Option<Vec<Option<u8>>>,
}

/// A stage of a training run, for progress output.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// A stage started or finished, in words.
    Stage(String),
    /// An epoch of the neural family.
    Epoch(Epoch),
}

/// One backtest origin's (or, for flat tables, one fold's) figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OriginResult {
    /// The origin snapshot (`YYYY-MM-DD`), or `fold N` for a flat table.
    pub origin: String,
    /// Whether the origin is a validation origin (or a fold) rather than the test.
    pub validation: bool,
    /// Rows trained on.
    pub train_rows: usize,
    /// Rows tested on.
    pub test_rows: usize,
    /// The metrics there, calibrated as the run's final model is.
    pub metrics: Metrics,
}

/// The churn-type part's figures: how well P(involuntary | churn) separates
/// the test churners' types.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChurnTypeMetrics {
    /// Test churners whose type is known.
    pub churners: usize,
    /// Of them, involuntary.
    pub involuntary: usize,
    /// ROC-AUC of involuntary against voluntary.
    pub roc_auc: Option<f64>,
    /// Log loss of P(involuntary | churn).
    pub log_loss: f64,
}

/// One family's outcome.
#[derive(Debug, Clone)]
pub struct FamilyResult {
    /// The final, calibrated model (with its churn-type part).
    pub model: FittedModel,
    /// The settings chosen (configured or found by the search), which the
    /// folds or origins were fitted with.
    pub settings: Settings,
    /// Hyperparameters the saved model was fitted with, as JSON: the
    /// chosen settings, except that the boosted family on a flat table gets
    /// a fixed number of rounds learnt from its folds (no early stopping).
    pub hyperparameters: serde_json::Value,
    /// Metrics on the validation predictions (out-of-fold, or the earlier
    /// origins' out-of-time predictions), calibrated like the final model.
    pub validation: Metrics,
    /// Mean and standard deviation of the validation ROC-AUC over folds or
    /// validation origins.
    pub validation_auc: (f64, f64),
    /// Per fold or origin.
    pub origins: Vec<OriginResult>,
    /// Metrics on the test rows (flat) or the last origin (event data),
    /// measured before any refit on all rows.
    pub test: Metrics,
    /// The threshold chosen on validation predictions.
    pub threshold: ThresholdChoice,
    /// Profit on test rows at that threshold.
    pub test_profit: f64,
    /// Seconds of the final model's one fit (preprocessing and model).
    pub fit_seconds: f64,
    /// Seconds of every fit of the protocol (folds or origins, search, refit).
    pub total_seconds: f64,
    /// Milliseconds to score 1,000 rows.
    pub predict_ms_per_1k: f64,
    /// Test labels, for charts.
    pub test_labels: Vec<u8>,
    /// Calibrated test probabilities.
    pub test_probabilities: Vec<f64>,
    /// Calibrated validation probabilities, aligned with the report's
    /// `validation_rows` (the champion/challenger comparison uses them).
    pub validation_probabilities: Vec<f64>,
    /// The churn-type part's test figures, when it has one.
    pub churn_type: Option<ChurnTypeMetrics>,
    /// The search's trials, best first, when the run was tuned.
    pub trials: Vec<Trial>,
    /// How the boosted family's contributions spread over test rows.
    pub shap_summary: Option<ShapSummary>,
}

/// The spread of per-customer contributions over test rows, per input: the
/// report draws it as a bar of mean |contribution| and a strip of points.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShapSummary {
    /// Rows summarised.
    pub rows: usize,
    /// Inputs, by mean |contribution|, largest first (at most 12).
    pub inputs: Vec<String>,
    /// Mean |contribution| per input, in log-odds.
    pub mean_abs: Vec<f64>,
    /// Per input, (contribution, the row's value as a quantile 0–1 among
    /// the rows, `None` when missing or categorical).
    pub points: Vec<Vec<(f64, Option<f64>)>>,
}

/// Rows of the test set the SHAP summary covers.
const SHAP_SUMMARY_ROWS: usize = 400;

fn shap_summary(
    model: &FittedModel,
    input: &TrainInput,
    test_rows: &[usize],
) -> Result<ShapSummary> {
    let rows: Vec<usize> = test_rows.iter().copied().take(SHAP_SUMMARY_ROWS).collect();
    let batch = input.batch.select(&rows);
    let explanation = model.explain(&batch)?;
    let c = &explanation.contributions;
    let n_num = model.preprocessor.numeric.len();
    let mut order: Vec<(usize, f64)> = (0..c.ncols())
        .map(|j| {
            (
                j,
                c.column(j).iter().map(|v| v.abs()).sum::<f64>() / c.nrows().max(1) as f64,
            )
        })
        .collect();
    order.sort_by(|a, b| b.1.total_cmp(&a.1));
    order.truncate(12);
    let quantiles = |j: usize| -> Vec<Option<f64>> {
        if j >= n_num {
            return vec![None; batch.len()];
        }
        let col = batch.numeric.column(j);
        let mut present: Vec<f64> = col.iter().copied().filter(|v| v.is_finite()).collect();
        present.sort_by(f64::total_cmp);
        col.iter()
            .map(|v| {
                v.is_finite().then(|| {
                    let below = present.partition_point(|p| p < v);
                    below as f64 / present.len().max(1) as f64
                })
            })
            .collect()
    };
    Ok(ShapSummary {
        rows: rows.len(),
        inputs: order.iter().map(|(j, _)| model.input_name(*j)).collect(),
        mean_abs: order.iter().map(|(_, v)| *v).collect(),
        points: order
            .iter()
            .map(|(j, _)| c.column(*j).iter().copied().zip(quantiles(*j)).collect())
            .collect(),
    })
}

/// Which protocol a run followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// Flat table: held-out test, cross-validation on the training rows.
    CrossValidation,
    /// Event data: rolling-origin backtest.
    Backtest,
}

/// The outcome of a training run.
#[derive(Debug, Clone)]
pub struct TrainReport {
    /// Results per trained family, in config order.
    pub results: Vec<FamilyResult>,
    /// Families that could not be trained, with why.
    pub skipped: Vec<(Family, String)>,
    /// Index into `results` of the champion.
    pub champion: usize,
    /// The protocol followed.
    pub protocol: Protocol,
    /// How the data was split, in words.
    pub split: String,
    /// Rows per part: (training, validation, test).
    pub rows: (usize, usize, usize),
    /// Share of churners in the training rows.
    pub class_balance: f64,
    /// Input row indices of the test rows, in the order of each result's
    /// test labels and probabilities.
    pub test_rows: Vec<usize>,
    /// Input row indices of the validation predictions.
    pub validation_rows: Vec<usize>,
    /// What the final models were refitted on.
    pub final_refit: FinalRefit,
}

/// The champion rule: the highest validation ROC-AUC, then the lower
/// validation log loss. Test rows never choose.
pub fn champion_index(results: &[FamilyResult]) -> usize {
    let mut best = 0;
    for (i, r) in results.iter().enumerate().skip(1) {
        let (a, b) = (
            r.validation.roc_auc.unwrap_or(0.0),
            results[best].validation.roc_auc.unwrap_or(0.0),
        );
        if a > b + 1e-12
            || ((a - b).abs() <= 1e-12 && r.validation.log_loss < results[best].validation.log_loss)
        {
            best = i;
        }
    }
    best
}

fn pick<T: Copy>(values: &[T], rows: &[usize]) -> Vec<T> {
    rows.iter().map(|&i| values[i]).collect()
}

/// Values at risk per row: revenue × months, or the flat default.
pub fn values_at_risk(batch: &Batch, cost: &CostConfig) -> Vec<f64> {
    let column = cost.value_column.clone().or_else(|| {
        ["mrr", "MonthlyCharges"]
            .iter()
            .find(|c| batch.numeric_names.iter().any(|n| n == *c))
            .map(|c| c.to_string())
    });
    match column.and_then(|c| batch.numeric_names.iter().position(|n| *n == c)) {
        Some(j) => batch
            .numeric
            .column(j)
            .iter()
            .map(|v| {
                if v.is_finite() {
                    v.max(0.0) * cost.value_months
                } else {
                    cost.default_value
                }
            })
            .collect(),
        None => vec![cost.default_value; batch.len()],
    }
}

fn calibrate(method: CalibrationMethod, y: &[u8], p: &[f64]) -> Calibrator {
    match method {
        CalibrationMethod::Platt => Calibrator::fit_platt(y, p).unwrap_or(Calibrator::Identity),
        CalibrationMethod::Isotonic => {
            Calibrator::fit_isotonic(y, p).unwrap_or(Calibrator::Identity)
        }
        CalibrationMethod::None => Calibrator::Identity,
    }
}

fn metrics(family: Family, y: &[u8], p: &[f64]) -> Result<Metrics> {
    eval::evaluate(y, p).map_err(|e| TrainError::Eval {
        family,
        message: e.to_string(),
    })
}

pub(crate) fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len().max(1) as f64;
    let mean = v.iter().sum::<f64>() / n;
    let sd = (v.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / n).sqrt();
    (mean, sd)
}

/// The split of one run: which rows the final model may learn from, which
/// rows validate, which test.
enum Plan {
    CrossValidation {
        train: Vec<usize>,
        test: Vec<usize>,
        folds: Vec<usize>,
    },
    Backtest {
        origins: Vec<split::Origin>,
    },
}

/// One fold or origin of a protocol: its name, whether its predictions
/// validate (the last origin of a backtest tests instead), how many rows the
/// model learnt from, the rows it predicted, and their raw predictions.
#[derive(Clone)]
struct Part {
    name: String,
    validates: bool,
    train_rows: usize,
    rows: Vec<usize>,
    raw: Vec<f64>,
}

/// A family's predictions through the protocol, before the final model.
struct Protocolled {
    /// Raw (uncalibrated) validation predictions, aligned with the run's
    /// validation rows, and per fold/origin.
    validation_raw: Vec<f64>,
    per_part: Vec<Part>,
    /// The final model (identity calibrator) and its raw test predictions.
    model: FittedModel,
    test_raw: Vec<f64>,
    /// Seconds of the final model's fit.
    fit_seconds: f64,
    /// The settings the final model was fitted with: the chosen ones, or
    /// for the boosted family after cross-validation, a fixed number of
    /// rounds learnt from the folds (see [`rounds_from_folds`]).
    final_settings: Settings,
}

/// Trains every configured family the build can (without a neural
/// trainer, the neural family is skipped with the reason) and evaluates it
/// honestly.
pub fn train(input: &TrainInput, config: &TrainConfig) -> Result<TrainReport> {
    let mut quiet = |_: Progress| {};
    train_with(
        input,
        config,
        Learners {
            neural: None,
            progress: &mut quiet,
        },
    )
}

/// [`train`] with a neural trainer and a progress callback.
pub fn train_with(
    input: &TrainInput,
    config: &TrainConfig,
    mut learners: Learners<'_>,
) -> Result<TrainReport> {
    config.check()?;
    if input.labels.len() != input.batch.len() {
        return Err(TrainError::Split("labels and rows differ in number".into()));
    }
    let ids = &input.batch.ids;
    let (plan, description) = match &input.snapshots {
        None => {
            let (train, test) =
                split::hash_stratified(ids, &input.labels, config.test_fraction, config.seed);
            let folds =
                split::grouped_folds(ids, &input.labels, &train, config.cv_folds, config.seed);
            let d = format!(
                "flat table: {:.0}% of rows held out for test (stratified, by the stable hash of each id with seed {}); {}-fold stratified cross-validation on the rest; final model refitted on {}",
                100.0 * config.test_fraction,
                config.seed,
                config.cv_folds,
                match config.final_refit {
                    FinalRefit::Training => "the training rows",
                    FinalRefit::All => "every row (test figures measured before)",
                }
            );
            (Plan::CrossValidation { train, test, folds }, d)
        }
        Some(days) => {
            let origins = split::rolling_origins(
                days,
                &input.labels,
                input.horizon_days,
                config.backtest_origins,
            )?;
            let names: Vec<String> = origins
                .iter()
                .map(|o| churnguard_core::data::schema::date_from_days(o.day).to_string())
                .collect();
            let d = format!(
                "rolling-origin backtest over snapshots {}: at each origin, train on snapshots whose {}-day horizon has ended by then (validation split by customer), test on the origin's rows; earlier origins validate, the last ({}) is the test",
                names.join(", "),
                input.horizon_days,
                names.last().cloned().unwrap_or_default()
            );
            (Plan::Backtest { origins }, d)
        }
    };
    for (name, rows) in plan_parts(&plan) {
        let pos = rows.iter().filter(|&&i| input.labels[i] == 1).count();
        if pos == 0 || pos == rows.len() {
            return Err(TrainError::Split(format!(
                "the {name} part ({} rows) holds a single class; use more data",
                rows.len()
            )));
        }
    }
    let values = values_at_risk(&input.batch, &config.cost);
    let (train_rows, validation_rows, test_rows) = plan_rows(&plan);

    let mut results = Vec::new();
    let mut skipped = Vec::new();
    for settings in config.settings() {
        let family = settings.family();
        if family == Family::Neural && learners.neural.is_none() {
            skipped.push((family, NO_NEURAL_TRAINER.to_string()));
            continue;
        }
        (learners.progress)(Progress::Stage(format!("{family}: started")));
        let t0 = Instant::now();
        let (settings, trials) = if config.tune.enabled {
            let tune_rows = match &plan {
                Plan::CrossValidation { train, .. } => train.clone(),
                Plan::Backtest { origins } => origins[0].window.clone(),
            };
            let budget = config.tune.budget_secs / config.families.len() as f64;
            search::search(&settings, input, &tune_rows, config, budget, &mut learners)?
        } else {
            (settings, Vec::new())
        };
        let outcome = match run_protocol(&settings, input, &plan, config, &mut learners) {
            Ok(o) => o,
            Err(TrainError::Model(ModelError::NotEnabled(why))) => {
                skipped.push((family, why));
                continue;
            }
            Err(e) => return Err(e),
        };
        let result = finish_family(
            settings,
            trials,
            outcome,
            input,
            config,
            &plan,
            &values,
            t0,
            &mut learners,
        )?;
        (learners.progress)(Progress::Stage(format!(
            "{family}: validation ROC-AUC {:.4}, test {:.4} ({:.1} s)",
            result.validation_auc.0,
            result.test.roc_auc.unwrap_or(0.0),
            result.total_seconds
        )));
        results.push(result);
    }
    if results.is_empty() {
        let why: Vec<String> = skipped.iter().map(|(f, w)| format!("{f}: {w}")).collect();
        return Err(TrainError::NothingTrained(why.join("; ")));
    }
    let champion = champion_index(&results);
    let y_train = pick(&input.labels, &train_rows);
    let positives = y_train.iter().filter(|v| **v == 1).count();
    Ok(TrainReport {
        results,
        skipped,
        champion,
        protocol: match plan {
            Plan::CrossValidation { .. } => Protocol::CrossValidation,
            Plan::Backtest { .. } => Protocol::Backtest,
        },
        split: description,
        rows: (train_rows.len(), validation_rows.len(), test_rows.len()),
        class_balance: positives as f64 / y_train.len().max(1) as f64,
        test_rows,
        validation_rows,
        final_refit: config.final_refit,
    })
}

/// The parts that must hold both classes.
fn plan_parts(plan: &Plan) -> Vec<(String, Vec<usize>)> {
    match plan {
        Plan::CrossValidation { train, test, .. } => {
            vec![
                ("training".into(), train.clone()),
                ("test".into(), test.clone()),
            ]
        }
        Plan::Backtest { origins } => origins
            .iter()
            .map(|o| {
                (
                    format!(
                        "origin {}",
                        churnguard_core::data::schema::date_from_days(o.day)
                    ),
                    o.test.clone(),
                )
            })
            .collect(),
    }
}

/// (rows the final model learns from, validation rows, test rows).
fn plan_rows(plan: &Plan) -> (Vec<usize>, Vec<usize>, Vec<usize>) {
    match plan {
        Plan::CrossValidation { train, test, .. } => (train.clone(), train.clone(), test.clone()),
        Plan::Backtest { origins } => {
            let last = origins.last().expect("at least one origin");
            let validation: Vec<usize> = if origins.len() > 1 {
                origins[..origins.len() - 1]
                    .iter()
                    .flat_map(|o| o.test.iter().copied())
                    .collect()
            } else {
                Vec::new()
            };
            (last.window.clone(), validation, last.test.clone())
        }
    }
}

/// Runs one family through the protocol: out-of-fold or out-of-time raw
/// predictions, and the final model's raw test predictions.
fn run_protocol(
    settings: &Settings,
    input: &TrainInput,
    plan: &Plan,
    config: &TrainConfig,
    learners: &mut Learners<'_>,
) -> Result<Protocolled> {
    let family = settings.family();
    let ids = &input.batch.ids;
    match plan {
        Plan::CrossValidation { train, test, folds } => {
            let mut validation_raw = vec![0.0; train.len()];
            let mut per_part = Vec::new();
            let mut fold_rounds = Vec::new();
            for k in 0..config.cv_folds {
                (learners.progress)(Progress::Stage(format!(
                    "{family}: fold {}/{}",
                    k + 1,
                    config.cv_folds
                )));
                let (fit_rows, held): (Vec<_>, Vec<_>) = train
                    .iter()
                    .copied()
                    .enumerate()
                    .partition(|(pos, _)| folds[*pos] != k);
                let fit_rows: Vec<usize> = fit_rows.into_iter().map(|(_, i)| i).collect();
                let (fit_rows, stop) = early_stop_split(settings, ids, input, &fit_rows, config);
                let model = fit(settings, input, &fit_rows, &stop, config.seed, learners)?;
                if let ChurnModel::Gbdt(m) = &model.model {
                    fold_rounds.push(FoldRounds {
                        kept: m.trees.len(),
                        fit_rows: fit_rows.len(),
                    });
                }
                let held_rows: Vec<usize> = held.iter().map(|(_, i)| *i).collect();
                let raw = model.predict_raw(&input.batch.select(&held_rows))?;
                for ((pos, _), p) in held.iter().zip(&raw) {
                    validation_raw[*pos] = *p;
                }
                per_part.push(Part {
                    name: format!("fold {}", k + 1),
                    validates: true,
                    train_rows: fit_rows.len(),
                    rows: held_rows,
                    raw,
                });
            }
            let final_rows = train.clone();
            (learners.progress)(Progress::Stage(format!("{family}: final fit")));
            let t = Instant::now();
            let (model, final_settings) =
                match rounds_from_folds(settings, &fold_rounds, final_rows.len()) {
                    // Every training row is fitted; the folds said when to stop.
                    Some(fixed) => {
                        let model = fit(&fixed, input, &final_rows, &[], config.seed, learners)?;
                        (model, fixed)
                    }
                    None => {
                        let (fit_rows, stop) =
                            early_stop_split(settings, ids, input, &final_rows, config);
                        let model = fit(settings, input, &fit_rows, &stop, config.seed, learners)?;
                        (model, settings.clone())
                    }
                };
            let fit_seconds = t.elapsed().as_secs_f64();
            let test_raw = model.predict_raw(&input.batch.select(test))?;
            Ok(Protocolled {
                validation_raw,
                per_part,
                model,
                test_raw,
                fit_seconds,
                final_settings,
            })
        }
        Plan::Backtest { origins } => {
            let mut per_part = Vec::new();
            let mut last_model = None;
            let mut fit_seconds = 0.0;
            for (j, o) in origins.iter().enumerate() {
                let name = churnguard_core::data::schema::date_from_days(o.day).to_string();
                (learners.progress)(Progress::Stage(format!(
                    "{family}: origin {name} ({}/{})",
                    j + 1,
                    origins.len()
                )));
                let (fit_rows, stop) = early_stop_split(settings, ids, input, &o.window, config);
                let t = Instant::now();
                let model = fit(settings, input, &fit_rows, &stop, config.seed, learners)?;
                fit_seconds = t.elapsed().as_secs_f64();
                let raw = model.predict_raw(&input.batch.select(&o.test))?;
                let is_last = j + 1 == origins.len();
                per_part.push(Part {
                    name,
                    validates: !is_last,
                    train_rows: o.window.len(),
                    rows: o.test.clone(),
                    raw,
                });
                if is_last {
                    last_model = Some(model);
                }
            }
            let model = last_model.expect("at least one origin");
            let test_raw = per_part.last().expect("at least one origin").raw.clone();
            let validation_raw: Vec<f64> = per_part
                .iter()
                .filter(|p| p.validates)
                .flat_map(|p| p.raw.iter().copied())
                .collect();
            Ok(Protocolled {
                validation_raw,
                per_part,
                model,
                test_raw,
                fit_seconds,
                final_settings: settings.clone(),
            })
        }
    }
}

/// How many trees one cross-validation fold kept after early stopping, and
/// on how many rows it was fitted.
#[derive(Debug, Clone, Copy)]
struct FoldRounds {
    kept: usize,
    fit_rows: usize,
}

/// The boosted family's final settings after cross-validation: a fixed
/// number of rounds, so the final model learns from every training row
/// instead of setting a tenth aside to stop on (as XGBoost's `cv` then
/// refit does). The folds' kept rounds are averaged and scaled by the square
/// root of how many more rows the final fit has: with the learning rate
/// held, more rows support more rounds before the validation loss turns,
/// and the square root sat between no scaling and full scaling, which
/// measured the same within noise (5 splits of Telco and the credit-card
/// churners; `ARCHITECTURE.md`). Never past `n_trees`. `None` for the other
/// families, without early stopping, or without folds.
fn rounds_from_folds(
    settings: &Settings,
    folds: &[FoldRounds],
    final_rows: usize,
) -> Option<Settings> {
    let Settings::Gbdt(p) = settings else {
        return None;
    };
    if p.early_stopping_rounds == 0 || folds.is_empty() {
        return None;
    }
    let n = folds.len() as f64;
    let kept = folds.iter().map(|f| f.kept as f64).sum::<f64>() / n;
    let fold_rows = folds.iter().map(|f| f.fit_rows as f64).sum::<f64>() / n;
    let scale = (final_rows as f64 / fold_rows.max(1.0)).max(1.0).sqrt();
    let rounds = ((kept * scale).round() as usize).clamp(1, p.n_trees);
    Some(Settings::Gbdt(GbdtParams {
        n_trees: rounds,
        early_stopping_rounds: 0,
        ..p.clone()
    }))
}

/// Rows that stop the boosted family's rounds, taken out of `rows` by
/// customer; the other families learn from all of `rows`.
pub(crate) fn early_stop_split(
    settings: &Settings,
    ids: &[String],
    input: &TrainInput,
    rows: &[usize],
    config: &TrainConfig,
) -> (Vec<usize>, Vec<usize>) {
    match settings {
        // A tenth of the customers: enough rounds of evidence to stop on,
        // little taken from the fit.
        Settings::Gbdt(p) if p.early_stopping_rounds > 0 => {
            split::grouped_holdout(ids, &input.labels, rows, 0.1, config.seed ^ 0xe5)
        }
        _ => (rows.to_vec(), Vec::new()),
    }
}

#[allow(clippy::too_many_arguments)]
fn finish_family(
    settings: Settings,
    trials: Vec<Trial>,
    outcome: Protocolled,
    input: &TrainInput,
    config: &TrainConfig,
    plan: &Plan,
    values: &[f64],
    t0: Instant,
    learners: &mut Learners<'_>,
) -> Result<FamilyResult> {
    let family = settings.family();
    let (final_rows, validation_rows, test_rows) = plan_rows(plan);
    let y_val = pick(&input.labels, &validation_rows);
    let y_test = pick(&input.labels, &test_rows);
    let Protocolled {
        validation_raw,
        per_part,
        mut model,
        test_raw,
        fit_seconds,
        final_settings,
    } = outcome;
    // The calibrator learns from predictions the model did not train on:
    // out-of-fold (flat) or the earlier origins' out-of-time predictions.
    // A backtest with a single origin has none, and stays uncalibrated.
    model.calibrator = if validation_raw.is_empty() {
        Calibrator::Identity
    } else {
        calibrate(config.calibration, &y_val, &validation_raw)
    };
    let cal =
        |raw: &[f64]| -> Vec<f64> { raw.iter().map(|p| model.calibrator.apply(*p)).collect() };
    let p_val = cal(&validation_raw);
    let p_test = cal(&test_raw);
    let test = metrics(family, &y_test, &p_test)?;
    let (validation, val_for_threshold, y_for_threshold, values_for_threshold) =
        if validation_rows.is_empty() {
            // One origin only: no validation predictions; the test figures
            // stand in, and the report says so.
            (
                test.clone(),
                p_test.clone(),
                y_test.clone(),
                pick(values, &test_rows),
            )
        } else {
            (
                metrics(family, &y_val, &p_val)?,
                p_val.clone(),
                y_val.clone(),
                pick(values, &validation_rows),
            )
        };
    let origins: Vec<OriginResult> = per_part
        .iter()
        .map(|part| {
            let y = pick(&input.labels, &part.rows);
            Ok(OriginResult {
                origin: part.name.clone(),
                validation: part.validates,
                train_rows: part.train_rows,
                test_rows: part.rows.len(),
                metrics: metrics(family, &y, &cal(&part.raw))?,
            })
        })
        .collect::<Result<_>>()?;
    let aucs: Vec<f64> = origins
        .iter()
        .filter(|o| o.validation)
        .filter_map(|o| o.metrics.roc_auc)
        .collect();
    let validation_auc = if aucs.is_empty() {
        (validation.roc_auc.unwrap_or(0.0), 0.0)
    } else {
        mean_sd(&aucs)
    };
    let threshold = eval::choose_threshold(
        &y_for_threshold,
        &val_for_threshold,
        &values_for_threshold,
        config.cost.intervention_cost,
        config.cost.save_rate,
    )
    .map_err(|e| TrainError::Eval {
        family,
        message: e.to_string(),
    })?;
    let test_values = pick(values, &test_rows);
    let test_profit = y_test
        .iter()
        .zip(&p_test)
        .zip(&test_values)
        .filter(|((_, p), _)| **p >= threshold.threshold)
        .map(|((y, _), v)| {
            f64::from(*y) * v * config.cost.save_rate - config.cost.intervention_cost
        })
        .sum();
    // The churn-type part, on the final model's training rows, measured on
    // the test churners.
    model.churn_type = fit_churn_type(&model.preprocessor, input, &final_rows, &config.logistic)?;
    let churn_type = match (&model.churn_type, &input.churn_types) {
        (Some(m), Some(types)) => {
            let (rows, y): (Vec<usize>, Vec<u8>) = test_rows
                .iter()
                .filter_map(|&i| types[i].map(|t| (i, t)))
                .unzip();
            if rows.is_empty() {
                None
            } else {
                let (x, _) = model.preprocessor.transform(&input.batch.select(&rows))?;
                let p = m.probabilities(&x);
                Some(ChurnTypeMetrics {
                    churners: y.len(),
                    involuntary: y.iter().filter(|t| **t == 1).count(),
                    roc_auc: eval::roc_auc(&y, &p),
                    log_loss: eval::log_loss(&y, &p).unwrap_or(f64::NAN),
                })
            }
        }
        _ => None,
    };
    let t1 = Instant::now();
    let test_batch = input.batch.select(&test_rows);
    let _ = model.predict(&test_batch)?;
    let predict_ms_per_1k =
        t1.elapsed().as_secs_f64() * 1000.0 * 1000.0 / test_batch.len().max(1) as f64;
    // Refit on every labelled row when asked: the figures above stay the
    // ones measured before.
    if config.final_refit == FinalRefit::All {
        (learners.progress)(Progress::Stage(format!("{family}: refit on all rows")));
        let mut all: Vec<usize> = final_rows.iter().chain(&test_rows).copied().collect();
        all.sort_unstable();
        all.dedup();
        let (fit_rows, stop) =
            early_stop_split(&final_settings, &input.batch.ids, input, &all, config);
        let mut refit = fit(
            &final_settings,
            input,
            &fit_rows,
            &stop,
            config.seed,
            learners,
        )?;
        refit.calibrator = model.calibrator.clone();
        refit.churn_type = fit_churn_type(&refit.preprocessor, input, &all, &config.logistic)?;
        model = refit;
    }
    let shap_summary = if family == Family::Gbdt {
        Some(shap_summary(&model, input, &test_rows)?)
    } else {
        None
    };
    Ok(FamilyResult {
        shap_summary,
        // What the saved model was fitted with: for the boosted family on a
        // flat table, the folds' number of rounds without early stopping.
        hyperparameters: final_settings.to_json(),
        settings,
        model,
        validation,
        validation_auc,
        origins,
        test,
        threshold,
        test_profit,
        fit_seconds,
        total_seconds: t0.elapsed().as_secs_f64(),
        predict_ms_per_1k,
        test_labels: y_test,
        test_probabilities: p_test,
        validation_probabilities: p_val,
        churn_type,
        trials,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gbdt(n_trees: usize, early_stopping_rounds: usize) -> Settings {
        Settings::Gbdt(GbdtParams {
            n_trees,
            early_stopping_rounds,
            ..GbdtParams::default()
        })
    }

    fn rounds(s: Option<Settings>) -> Option<(usize, usize)> {
        match s {
            Some(Settings::Gbdt(p)) => Some((p.n_trees, p.early_stopping_rounds)),
            _ => None,
        }
    }

    #[test]
    fn the_final_boosted_fit_takes_the_folds_mean_rounds_scaled_by_the_square_root_of_its_rows() {
        let folds = [
            FoldRounds {
                kept: 90,
                fit_rows: 900,
            },
            FoldRounds {
                kept: 110,
                fit_rows: 900,
            },
        ];
        // Mean 100 rounds on 900 rows; 3,600 rows is 4× as many: 100 × √4.
        assert_eq!(
            rounds(rounds_from_folds(&gbdt(500, 50), &folds, 3600)),
            Some((200, 0))
        );
        // Never past the configured most.
        assert_eq!(
            rounds(rounds_from_folds(&gbdt(150, 50), &folds, 3600)),
            Some((150, 0))
        );
        // Fewer final rows than a fold's never shrinks the count.
        assert_eq!(
            rounds(rounds_from_folds(&gbdt(500, 50), &folds, 100)),
            Some((100, 0))
        );
    }

    #[test]
    fn without_early_stopping_or_folds_the_chosen_settings_stand() {
        let folds = [FoldRounds {
            kept: 90,
            fit_rows: 900,
        }];
        assert!(rounds_from_folds(&gbdt(500, 0), &folds, 1000).is_none());
        assert!(rounds_from_folds(&gbdt(500, 50), &[], 1000).is_none());
        let logistic = Settings::Logistic(LogisticParams::default());
        assert!(rounds_from_folds(&logistic, &folds, 1000).is_none());
    }
}
