//! Training: split, fit each family, calibrate, evaluate on held-out rows,
//! choose the decision threshold by cost and the champion by a fixed rule,
//! and the HTML report ([`report`]). No file writes: the caller saves what
//! [`train`] returns. libtorch is not linked here: the neural family is fit
//! through a [`NeuralTrainer`] the caller provides.
#![warn(missing_docs)]

pub mod report;

use std::time::Instant;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use churnguard_core::error::{ErrorKind, HasKind};
use churnguard_core::eval::calibration::Calibrator;
use churnguard_core::eval::{self, Metrics, ThresholdChoice};
use churnguard_core::models::neural::{Epoch, NeuralModel, NeuralParams};
use churnguard_core::models::{
    Batch, ChurnModel, Family, FittedModel, LogisticModel, LogisticParams, ModelError,
    Preprocessor, TreeModel, TreeParams,
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
            TrainError::BadConfig { .. } | TrainError::Split(_) | TrainError::NothingTrained(_) => {
                ErrorKind::BadInput
            }
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

/// Settings of a training run: `churnguard.train.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Seed of splits and learners; defaults to `42`.
    pub seed: u64,
    /// Families to train; defaults to all in this build.
    pub families: Vec<Family>,
    /// Share of rows (flat) or of snapshots (event data) held out for test; defaults to `0.2`.
    pub test_fraction: f64,
    /// Share of the remaining rows used for validation; defaults to `0.2`.
    pub validation_fraction: f64,
    /// Calibration method; defaults to `platt`.
    pub calibration: CalibrationMethod,
    /// k-fold cross-validation of each family on train + validation rows; `0` is off (default).
    pub cv_folds: usize,
    /// Logistic regression settings.
    pub logistic: LogisticParams,
    /// Decision tree settings.
    pub tree: TreeParams,
    /// Neural network settings.
    pub neural: NeuralParams,
    /// Cost model of the decision threshold.
    pub cost: CostConfig,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            seed: 42,
            families: vec![Family::Logistic, Family::Tree, Family::Neural],
            test_fraction: 0.2,
            validation_fraction: 0.2,
            calibration: CalibrationMethod::Platt,
            cv_folds: 0,
            logistic: LogisticParams::default(),
            tree: TreeParams::default(),
            neural: NeuralParams::default(),
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
        if self.cv_folds == 1 || self.cv_folds > 20 {
            return bad(
                "cv_folds",
                format!("must be 0 (off) or 2..=20, got {}", self.cv_folds),
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
        self.logistic.check()?;
        self.tree.check()?;
        self.neural.check()?;
        Ok(())
    }
}

/// Labelled rows to train on.
#[derive(Debug, Clone)]
pub struct TrainInput {
    /// Raw feature rows.
    pub batch: Batch,
    /// 0/1 labels.
    pub labels: Vec<u8>,
    /// Snapshot day per row, for a time-based split (event data); `None` for a stratified split.
    pub snapshots: Option<Vec<i32>>,
    /// Label horizon in days (event data): train rows' horizons end before the first test snapshot.
    pub horizon_days: u32,
    /// Per row, 1 when the churn was involuntary, 0 when voluntary, `None`
    /// when the row did not churn or the type is unknown. With it, every
    /// model also learns P(involuntary | churn).
    pub churn_types: Option<Vec<Option<u8>>>,
}

/// One family's outcome.
#[derive(Debug, Clone)]
pub struct FamilyResult {
    /// The fitted, calibrated model.
    pub model: FittedModel,
    /// Hyperparameters as used.
    pub hyperparameters: serde_json::Value,
    /// Metrics on validation rows.
    pub validation: Metrics,
    /// Metrics on test rows.
    pub test: Metrics,
    /// The threshold chosen on validation rows.
    pub threshold: ThresholdChoice,
    /// Profit on test rows at that threshold.
    pub test_profit: f64,
    /// Seconds to fit (preprocessing, model and calibration).
    pub fit_seconds: f64,
    /// Milliseconds to score 1,000 rows.
    pub predict_ms_per_1k: f64,
    /// Test labels and calibrated probabilities, for charts.
    pub test_labels: Vec<u8>,
    /// Calibrated test probabilities.
    pub test_probabilities: Vec<f64>,
    /// Cross-validated ROC-AUC (mean, standard deviation) when asked for.
    pub cv_roc_auc: Option<(f64, f64)>,
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
    /// How the data was split, in words.
    pub split: String,
    /// Rows per part.
    pub rows: (usize, usize, usize),
    /// Share of churners in the training rows.
    pub class_balance: f64,
    /// Input row indices of the test rows, in the order of each result's
    /// test labels and probabilities.
    pub test_rows: Vec<usize>,
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

struct Split {
    train: Vec<usize>,
    validation: Vec<usize>,
    test: Vec<usize>,
    description: String,
}

fn stratified(
    idx: &[usize],
    labels: &[u8],
    fraction: f64,
    rng: &mut ChaCha8Rng,
) -> (Vec<usize>, Vec<usize>) {
    let mut keep = Vec::new();
    let mut take = Vec::new();
    for class in [0u8, 1] {
        let mut rows: Vec<usize> = idx
            .iter()
            .copied()
            .filter(|&i| labels[i] == class)
            .collect();
        rows.shuffle(rng);
        let k = ((rows.len() as f64) * fraction).round() as usize;
        take.extend_from_slice(&rows[..k]);
        keep.extend_from_slice(&rows[k..]);
    }
    keep.sort_unstable();
    take.sort_unstable();
    (keep, take)
}

fn split(input: &TrainInput, config: &TrainConfig) -> Result<Split> {
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let n = input.labels.len();
    let all: Vec<usize> = (0..n).collect();
    let (pool, test, description) = match &input.snapshots {
        None => {
            let (pool, test) = stratified(&all, &input.labels, config.test_fraction, &mut rng);
            let d = format!(
                "stratified random (seed {}): {:.0}% test, {:.0}% of the rest validation",
                config.seed,
                100.0 * config.test_fraction,
                100.0 * config.validation_fraction
            );
            (pool, test, d)
        }
        Some(days) => {
            let mut distinct: Vec<i32> = days.clone();
            distinct.sort_unstable();
            distinct.dedup();
            if distinct.len() < 2 {
                return Err(TrainError::Split(
                    "a time-based split needs at least two snapshot dates; build features with more snapshots".into(),
                ));
            }
            let n_test = ((distinct.len() as f64 * config.test_fraction).ceil() as usize)
                .clamp(1, distinct.len() - 1);
            let first_test = distinct[distinct.len() - n_test];
            let horizon = input.horizon_days as i32;
            let test: Vec<usize> = all
                .iter()
                .copied()
                .filter(|&i| days[i] >= first_test)
                .collect();
            let pool: Vec<usize> = all
                .iter()
                .copied()
                .filter(|&i| days[i] + horizon <= first_test)
                .collect();
            if pool.is_empty() {
                return Err(TrainError::Split(format!(
                    "no training snapshot ends its {horizon}-day horizon before the first test snapshot; add earlier snapshots"
                )));
            }
            let d = format!(
                "time-based: train on snapshots whose {horizon}-day horizon ends by {}, test on the last {n_test} snapshot(s) from {}",
                churnguard_core::data::schema::date_from_days(first_test),
                churnguard_core::data::schema::date_from_days(first_test)
            );
            (pool, test, d)
        }
    };
    let (train, validation) =
        stratified(&pool, &input.labels, config.validation_fraction, &mut rng);
    for (name, part) in [
        ("train", &train),
        ("validation", &validation),
        ("test", &test),
    ] {
        let pos = part.iter().filter(|&&i| input.labels[i] == 1).count();
        if pos == 0 || pos == part.len() {
            return Err(TrainError::Split(format!(
                "the {name} part ({} rows) holds a single class; use more data",
                part.len()
            )));
        }
    }
    Ok(Split {
        train,
        validation,
        test,
        description,
    })
}

fn pick(labels: &[u8], idx: &[usize]) -> Vec<u8> {
    idx.iter().map(|&i| labels[i]).collect()
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

/// Fits the neural family wherever libtorch is: the application runs the
/// `churnguard-neural` executable; tests may fit in-process. This crate
/// never links libtorch.
pub trait NeuralTrainer {
    /// Fits an MLP on preprocessed rows, reporting each epoch to `on_epoch`.
    fn fit(
        &self,
        x: &ndarray::Array2<f64>,
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
    /// Sees every neural epoch (for a progress bar).
    pub on_epoch: &'a mut dyn FnMut(Epoch),
}

fn fit_family(
    family: Family,
    batch: &Batch,
    y: &[u8],
    config: &TrainConfig,
    learners: &mut Learners<'_>,
) -> Result<(Preprocessor, ChurnModel, serde_json::Value)> {
    let pre = Preprocessor::fit(batch)?;
    let (x, _) = pre.transform(batch)?;
    let (model, params) = match family {
        Family::Logistic => (
            ChurnModel::Logistic(LogisticModel::fit(&x, y, &config.logistic)?),
            serde_json::to_value(&config.logistic),
        ),
        Family::Tree => (
            ChurnModel::Tree(TreeModel::fit(&x, y, &config.tree)?),
            serde_json::to_value(&config.tree),
        ),
        Family::Neural => {
            config.neural.check()?;
            let trainer = learners.neural.ok_or_else(|| {
                ModelError::NotEnabled(
                    "neural training needs the churnguard-neural executable beside churnguard (built with libtorch: scripts/setup, then cargo build -p churnguard-neural --features torch); train logistic, tree or gbdt".into(),
                )
            })?;
            (
                ChurnModel::Neural(trainer.fit(
                    &x,
                    y,
                    &config.neural,
                    config.seed,
                    &mut *learners.on_epoch,
                )?),
                serde_json::to_value(&config.neural),
            )
        }
    };
    Ok((pre, model, params.expect("params serialise")))
}

/// P(involuntary | churn) on the training churners whose type is known; `None`
/// without types or without both types among them.
fn fit_churn_type(
    pre: &Preprocessor,
    train_batch: &Batch,
    input: &TrainInput,
    train_rows: &[usize],
    config: &TrainConfig,
) -> Result<Option<LogisticModel>> {
    let Some(types) = &input.churn_types else {
        return Ok(None);
    };
    let (local, y): (Vec<usize>, Vec<u8>) = train_rows
        .iter()
        .enumerate()
        .filter_map(|(k, &i)| types.get(i).copied().flatten().map(|t| (k, t)))
        .unzip();
    let involuntary = y.iter().filter(|t| **t == 1).count();
    if involuntary < 5 || y.len() - involuntary < 5 {
        return Ok(None);
    }
    let (x, _) = pre.transform(&train_batch.select(&local))?;
    Ok(Some(LogisticModel::fit(&x, &y, &config.logistic)?))
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

/// Trains every configured family the build can (without a neural
/// trainer, the neural family is skipped with the reason) and evaluates it
/// honestly.
pub fn train(input: &TrainInput, config: &TrainConfig) -> Result<TrainReport> {
    let mut quiet = |_: Epoch| {};
    train_with(
        input,
        config,
        Learners {
            neural: None,
            on_epoch: &mut quiet,
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
    let parts = split(input, config)?;
    let values = values_at_risk(&input.batch, &config.cost);
    let train_batch = input.batch.select(&parts.train);
    let val_batch = input.batch.select(&parts.validation);
    let test_batch = input.batch.select(&parts.test);
    let test_rows = parts.test.clone();
    let (y_train, y_val, y_test) = (
        pick(&input.labels, &parts.train),
        pick(&input.labels, &parts.validation),
        pick(&input.labels, &parts.test),
    );
    let val_values: Vec<f64> = parts.validation.iter().map(|&i| values[i]).collect();
    let test_values: Vec<f64> = parts.test.iter().map(|&i| values[i]).collect();

    let mut results = Vec::new();
    let mut skipped = Vec::new();
    for &family in &config.families {
        let t0 = Instant::now();
        let (pre, model, hyperparameters) =
            match fit_family(family, &train_batch, &y_train, config, &mut learners) {
                Ok(v) => v,
                Err(TrainError::Model(ModelError::NotEnabled(why))) => {
                    skipped.push((family, why));
                    continue;
                }
                Err(e) => return Err(e),
            };
        let churn_type = fit_churn_type(&pre, &train_batch, input, &parts.train, config)?;
        let mut fitted = FittedModel {
            preprocessor: pre,
            model,
            calibrator: Calibrator::Identity,
            churn_type,
        };
        let raw_val = fitted.predict_raw(&val_batch)?;
        fitted.calibrator = calibrate(config.calibration, &y_val, &raw_val);
        let fit_seconds = t0.elapsed().as_secs_f64();
        let p_val: Vec<f64> = raw_val
            .iter()
            .map(|p| fitted.calibrator.apply(*p))
            .collect();
        let t1 = Instant::now();
        let p_test = fitted.predict(&test_batch)?;
        let predict_ms_per_1k =
            t1.elapsed().as_secs_f64() * 1000.0 * 1000.0 / test_batch.len().max(1) as f64;
        let validation = metrics(family, &y_val, &p_val)?;
        let test = metrics(family, &y_test, &p_test)?;
        let threshold = eval::choose_threshold(
            &y_val,
            &p_val,
            &val_values,
            config.cost.intervention_cost,
            config.cost.save_rate,
        )
        .map_err(|e| TrainError::Eval {
            family,
            message: e.to_string(),
        })?;
        let test_profit = y_test
            .iter()
            .zip(&p_test)
            .zip(&test_values)
            .filter(|((_, p), _)| **p >= threshold.threshold)
            .map(|((y, _), v)| {
                f64::from(*y) * v * config.cost.save_rate - config.cost.intervention_cost
            })
            .sum();
        let cv_roc_auc = if config.cv_folds >= 2 {
            Some(cross_validate(
                family,
                input,
                &parts,
                config,
                &mut learners,
            )?)
        } else {
            None
        };
        results.push(FamilyResult {
            model: fitted,
            hyperparameters,
            validation,
            test,
            threshold,
            test_profit,
            fit_seconds,
            predict_ms_per_1k,
            test_labels: y_test.clone(),
            test_probabilities: p_test,
            cv_roc_auc,
        });
    }
    if results.is_empty() {
        let why: Vec<String> = skipped.iter().map(|(f, w)| format!("{f}: {w}")).collect();
        return Err(TrainError::NothingTrained(why.join("; ")));
    }
    let champion = champion_index(&results);
    let positives = y_train.iter().filter(|v| **v == 1).count();
    Ok(TrainReport {
        results,
        skipped,
        champion,
        split: parts.description,
        rows: (parts.train.len(), parts.validation.len(), parts.test.len()),
        class_balance: positives as f64 / y_train.len() as f64,
        test_rows,
    })
}

fn cross_validate(
    family: Family,
    input: &TrainInput,
    parts: &Split,
    config: &TrainConfig,
    learners: &mut Learners<'_>,
) -> Result<(f64, f64)> {
    let mut pool: Vec<usize> = parts
        .train
        .iter()
        .chain(&parts.validation)
        .copied()
        .collect();
    pool.sort_unstable();
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed ^ 0x5eed);
    let k = config.cv_folds;
    // Stratified folds: deal each class's shuffled rows round-robin.
    let mut fold_of = vec![0usize; input.labels.len()];
    for class in [0u8, 1] {
        let mut rows: Vec<usize> = pool
            .iter()
            .copied()
            .filter(|&i| input.labels[i] == class)
            .collect();
        rows.shuffle(&mut rng);
        for (j, i) in rows.into_iter().enumerate() {
            fold_of[i] = j % k;
        }
    }
    let mut aucs = Vec::with_capacity(k);
    for fold in 0..k {
        let train_idx: Vec<usize> = pool
            .iter()
            .copied()
            .filter(|&i| fold_of[i] != fold)
            .collect();
        let test_idx: Vec<usize> = pool
            .iter()
            .copied()
            .filter(|&i| fold_of[i] == fold)
            .collect();
        let (pre, model, _) = fit_family(
            family,
            &input.batch.select(&train_idx),
            &pick(&input.labels, &train_idx),
            config,
            learners,
        )?;
        let (x, _) = pre.transform(&input.batch.select(&test_idx))?;
        let p = model.raw_probabilities(&x);
        if let Some(auc) = eval::roc_auc(&pick(&input.labels, &test_idx), &p) {
            aucs.push(auc);
        }
    }
    let n = aucs.len().max(1) as f64;
    let mean = aucs.iter().sum::<f64>() / n;
    let sd = (aucs.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / n).sqrt();
    Ok((mean, sd))
}
