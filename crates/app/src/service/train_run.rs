//! `train_run`: read the training data, train every family, save each as a
//! registry version with its report, and decide the champion by
//! champion/challenger: the run's best model is promoted only if it beats
//! the current champion on this run's validation rows (unless forced or
//! told not to). The decision is returned so the caller can audit-log it.

use std::path::{Path, PathBuf};

use churnguard_core::data::{self, flat};
use churnguard_core::eval;
use churnguard_core::features;
use churnguard_core::models::{labels_from_frame, Batch};
use churnguard_train::report::{self, ChampionComparison};
use churnguard_train::{Learners, TrainConfig, TrainInput, TrainReport};

use super::{Result, ServiceError};
use crate::registry::{self, Manifest, Registry, RowCounts};

/// Whether a run may move the champion alias.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Promotion {
    /// Promote only a model that beats the current champion on this run's
    /// validation rows (the default).
    IfBetter,
    /// Promote the run's champion whatever the comparison says
    /// (`--force-promote`; audit-logged).
    Force,
    /// Never move the alias (`--no-promote`).
    Never,
}

/// What to train on and where the versions go.
#[derive(Debug, Clone)]
pub struct TrainRunRequest {
    /// A feature table from `churnguard features`, or a flat table with `schema`.
    pub data: PathBuf,
    /// TOML schema of a flat table.
    pub schema: Option<PathBuf>,
    /// The training settings (file, then flags).
    pub config: TrainConfig,
    /// The model registry.
    pub registry: PathBuf,
    /// Whether the champion may move.
    pub promotion: Promotion,
    /// The event tables the feature table was built from: the report then
    /// draws cohort retention, observed against the sBG projection.
    pub events: Option<PathBuf>,
}

/// Labelled rows read for training, and what the manifests say of them.
#[derive(Debug, Clone)]
pub struct TrainingData {
    /// The rows.
    pub input: TrainInput,
    /// The data set's name.
    pub dataset: String,
    /// FNV-1a 64 of the file's bytes.
    pub fingerprint: String,
    /// The input schema the models will expect.
    pub schema: flat::FlatSchema,
    /// Rows dropped because their label is not observed yet.
    pub unlabelled: usize,
}

/// What a training run did.
#[derive(Debug, Clone)]
pub struct TrainRunSummary {
    /// The training results.
    pub report: TrainReport,
    /// Saved version ids, in the order of `report.results`.
    pub ids: Vec<String>,
    /// The id of this run's champion.
    pub champion_id: String,
    /// The comparison with the current champion, and whether it was promoted.
    pub comparison: ChampionComparison,
    /// The training data read.
    pub data: TrainingData,
    /// Where the champion's report is.
    pub report_path: PathBuf,
}

/// Reads a feature table (event data) or a flat table with its schema.
pub fn read_training_data(path: &Path, schema: Option<&Path>) -> Result<TrainingData> {
    let bytes = data::read_bytes(path)?;
    let (table, snapshots, horizon, churn_types, unlabelled) = match schema {
        Some(schema_path) => {
            let schema = flat::FlatSchema::load(schema_path)?;
            (flat::load_flat(path, &schema)?, None, 0, None, 0)
        }
        None => {
            let (numeric, categorical) = features::model_inputs();
            let ft = flat::load_feature_table(path, &numeric, &categorical)?;
            (
                ft.table,
                Some(ft.snapshots),
                ft.horizon_days,
                ft.churn_types,
                ft.unlabelled,
            )
        }
    };
    let s = &table.schema;
    let batch = Batch::from_frame(
        &table.frame,
        &s.id,
        &s.columns.numeric,
        &s.columns.categorical,
    )?;
    let labels = labels_from_frame(&table.frame, "churned")?
        .into_iter()
        .enumerate()
        .map(|(i, l)| {
            l.ok_or_else(|| {
                ServiceError::BadRequest(format!(
                    "{}: row {} has no label after the unlabelled rows were dropped",
                    path.display(),
                    i + 1
                ))
            })
        })
        .collect::<Result<Vec<u8>>>()?;
    Ok(TrainingData {
        input: TrainInput {
            batch,
            labels,
            snapshots,
            horizon_days: horizon,
            churn_types,
        },
        dataset: s.name.clone(),
        fingerprint: registry::fingerprint(&bytes),
        schema: s.clone(),
        unlabelled,
    })
}

/// The current champion's ROC-AUC on this run's validation rows, when it
/// reads the same inputs; `Err` says why it cannot be compared.
fn current_on_validation(
    registry: &Registry,
    data: &TrainingData,
    report: &TrainReport,
) -> std::result::Result<(String, Option<f64>), String> {
    let Some(id) = registry.champion().map_err(|e| e.to_string())? else {
        return Err("there is no champion yet".into());
    };
    let (manifest, model) = registry.load(&id).map_err(|e| e.to_string())?;
    let (a, b) = (&manifest.input.columns, &data.schema.columns);
    if a.numeric != b.numeric || a.categorical != b.categorical {
        return Err(format!(
            "the current champion {id} reads other inputs, so the two cannot be compared"
        ));
    }
    if report.validation_rows.is_empty() {
        return Err("this run has no validation rows (one backtest origin)".into());
    }
    let batch = data.input.batch.select(&report.validation_rows);
    let y: Vec<u8> = report
        .validation_rows
        .iter()
        .map(|&i| data.input.labels[i])
        .collect();
    let p = model.predict(&batch).map_err(|e| e.to_string())?;
    Ok((id, eval::roc_auc(&y, &p)))
}

/// The model's lifetime curve, fitted on every training row (event data
/// only: the ladder needs a customer's rows at several snapshots). The
/// probabilities are the model's own on rows it mostly trained on; the
/// ladder's later windows regress *other* labels on them, which in-sample
/// fit inflates far less than the first window's.
fn lifetime_curve(
    input: &TrainInput,
    model: &churnguard_core::models::FittedModel,
) -> Result<Option<churnguard_core::value::lifetime::LifetimeCurve>> {
    use churnguard_core::value::lifetime::{LadderRows, LifetimeCurve};
    let Some(snapshots) = &input.snapshots else {
        return Ok(None);
    };
    let batch = &input.batch;
    let probabilities = model.predict(batch)?;
    let mrr: Option<Vec<f64>> = batch
        .numeric_names
        .iter()
        .position(|n| n == "mrr")
        .map(|j| batch.numeric.column(j).to_vec());
    let segments = batch
        .categorical_names
        .iter()
        .position(|n| n == "plan")
        .map(|j| &batch.categorical[j]);
    Ok(Some(LifetimeCurve::fit(LadderRows {
        ids: &batch.ids,
        snapshots,
        labels: &input.labels,
        probabilities: &probabilities,
        mrr: mrr.as_deref(),
        segments: segments.map(Vec::as_slice),
        horizon_days: input.horizon_days,
    })))
}

/// Cohort retention of the customers in `dir`'s event tables (every plan
/// together), as of the last day the training labels have seen: the latest
/// snapshot plus the horizon, or the tables' end when earlier (a flat table:
/// the tables' end). Returns the day as `YYYY-MM-DD` and the cohorts.
fn training_cohorts(
    dir: &Path,
    input: &TrainInput,
) -> Result<(
    String,
    Vec<churnguard_core::value::cohorts::CohortRetention>,
)> {
    use churnguard_core::value::cohorts;
    let tables = data::load_tables(dir, data::LoadOptions::default())?;
    let end = cohorts::latest_day(&tables.customers, &tables.churn_events);
    let labels_seen = input
        .snapshots
        .as_ref()
        .and_then(|days| days.iter().max())
        .map(|&s| s + input.horizon_days as i32);
    let as_of = labels_seen.map_or(end, |day| day.min(end));
    let found = cohorts::cohort_retention(
        &tables.customers,
        &tables.churn_events,
        as_of,
        super::score_run::COHORT_PERIODS,
    )
    .map_err(|e| ServiceError::BadRequest(format!("{}: {e}", dir.display())))?;
    let day = data::schema::date_from_days(as_of).to_string();
    Ok((day, found.into_iter().filter(|c| c.plan == "all").collect()))
}

/// Trains, saves every family as a version, and decides the champion.
pub fn train_run(req: &TrainRunRequest, learners: Learners<'_>) -> Result<TrainRunSummary> {
    let data = read_training_data(&req.data, req.schema.as_deref())?;
    // Before training: a wrong events folder fails in a second, not after.
    let cohorts = match &req.events {
        Some(dir) => Some(training_cohorts(dir, &data.input)?),
        None => None,
    };
    let report = churnguard_train::train_with(&data.input, &req.config, learners)?;
    let registry = Registry::open(&req.registry)?;
    let stamp = chrono::Utc::now();
    let ids: Vec<String> = report
        .results
        .iter()
        .map(|r| {
            format!(
                "{}-{}-{}",
                stamp.format("%Y%m%d-%H%M%S%3f"),
                r.model.family(),
                &data.fingerprint[..6]
            )
        })
        .collect();
    let champion = &report.results[report.champion];
    let y_val: Vec<u8> = report
        .validation_rows
        .iter()
        .map(|&i| data.input.labels[i])
        .collect();
    let challenger_auc = eval::roc_auc(&y_val, &champion.validation_probabilities);
    let comparison = match current_on_validation(&registry, &data, &report) {
        Ok((current, current_auc)) => {
            let better = match (challenger_auc, current_auc) {
                (Some(new), Some(old)) => new > old,
                (Some(_), None) => true,
                _ => false,
            };
            let (promoted, reason) = match req.promotion {
                Promotion::Never => (false, "not promoted: --no-promote".to_string()),
                Promotion::Force => (
                    true,
                    format!(
                        "promoted by --force-promote ({} than the current champion)",
                        if better { "better" } else { "not better" }
                    ),
                ),
                Promotion::IfBetter if better => {
                    (true, "promoted: better than the current champion".to_string())
                }
                Promotion::IfBetter => (
                    false,
                    "not promoted: not better than the current champion (use --force-promote to override)"
                        .to_string(),
                ),
            };
            ChampionComparison {
                current: Some(current),
                current_auc,
                challenger_auc,
                rows: report.validation_rows.len(),
                promoted,
                reason,
            }
        }
        Err(why) => {
            let promoted = req.promotion != Promotion::Never;
            ChampionComparison {
                current: None,
                current_auc: None,
                challenger_auc,
                rows: report.validation_rows.len(),
                promoted,
                reason: if promoted {
                    format!("promoted without a comparison: {why}")
                } else {
                    "not promoted: --no-promote".to_string()
                },
            }
        }
    };
    let html = report::render(
        &report,
        &data.dataset,
        &ids,
        Some(&comparison),
        cohorts
            .as_ref()
            .map(|(day, c)| (day.as_str(), c.as_slice())),
    );
    // The rows drift is measured against. Event data: the latest snapshot,
    // the population closest to the one the model will score (training
    // rows pooled over two years would be younger than any current book,
    // and every run would "drift" in tenure). A flat table: every row but
    // the test rows.
    let fit_batch = match &data.input.snapshots {
        Some(days) if !days.is_empty() => {
            let latest = *days.iter().max().expect("not empty");
            let rows: Vec<usize> = (0..days.len()).filter(|&i| days[i] == latest).collect();
            data.input.batch.select(&rows)
        }
        _ => {
            let mut is_test = vec![false; data.input.batch.len()];
            for &i in &report.test_rows {
                is_test[i] = true;
            }
            let rows: Vec<usize> = (0..is_test.len()).filter(|&i| !is_test[i]).collect();
            data.input.batch.select(&rows)
        }
    };
    for (i, (r, id)) in report.results.iter().zip(&ids).enumerate() {
        let manifest = Manifest {
            schema_version: registry::SCHEMA_VERSION,
            id: id.clone(),
            family: r.model.family(),
            churnguard_version: env!("CARGO_PKG_VERSION").into(),
            created_at: stamp.to_rfc3339(),
            dataset: data.dataset.clone(),
            data_fingerprint: data.fingerprint.clone(),
            hyperparameters: r.hyperparameters.clone(),
            split: report.split.clone(),
            rows: RowCounts {
                train: report.rows.0,
                validation: report.rows.1,
                test: report.rows.2,
            },
            class_balance: report.class_balance,
            validation: r.validation.clone(),
            test: r.test.clone(),
            threshold: r.threshold.threshold,
            input: data.schema.clone(),
            fit_seconds: r.fit_seconds,
            predict_ms_per_1k: r.predict_ms_per_1k,
            horizon_days: (data.input.horizon_days > 0).then_some(data.input.horizon_days),
            protocol: Some(report.protocol),
            validation_auc: Some(r.validation_auc),
            origins: r.origins.clone(),
            final_refit: Some(report.final_refit),
            churn_type: r.churn_type.clone(),
            trials: r.trials.clone(),
            comparison: (i == report.champion).then(|| comparison.clone()),
            lifetime: lifetime_curve(&data.input, &r.model)?,
        };
        // The baseline drift is measured against: every input and the
        // calibrated score on those rows.
        let baseline =
            churnguard_core::monitor::Baseline::of(&fit_batch, &r.model.predict(&fit_batch)?);
        let baseline_json = serde_json::to_vec(&baseline).expect("baseline serialises");
        registry.save(
            &manifest,
            &r.model,
            &[
                ("report.html", html.as_bytes()),
                (registry::BASELINE, &baseline_json),
            ],
        )?;
    }
    let champion_id = ids[report.champion].clone();
    if comparison.promoted {
        registry.promote(&champion_id)?;
    }
    Ok(TrainRunSummary {
        report_path: registry.version_dir(&champion_id).join("report.html"),
        champion_id,
        comparison,
        ids,
        data,
        report,
    })
}
