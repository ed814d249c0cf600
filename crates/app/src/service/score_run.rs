//! `score_run`: batch scoring of every active customer at a snapshot, in
//! four steps a caller may also run one by one:
//!
//! 1. [`load`]: I/O only. The model, the data (features built at the
//!    snapshot), and what the store knows: previous scores, open
//!    interventions, observed outcomes.
//! 2. [`compute`]: pure and synchronous, typed in and out. Scores, the
//!    intervention plan, KPI scorecards, the [`RunSummary`].
//! 3. [`persist`]: one transaction. The run, scores, interventions,
//!    scorecards and audit entries are in the store together or not at all.
//! 4. [`write_outputs`]: the files, staged and published together
//!    ([`score_run`] stages them while [`persist`] writes, and publishes
//!    them once the transaction committed).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use churnguard_core::data::schema::{date_from_days, days_from_date};
use churnguard_core::data::{self, columns, flat, LoadOptions, Tables};
use churnguard_core::features::{self, FeatureParams};
use churnguard_core::health::Band;
use churnguard_core::interventions::{
    self, Arm, Choice, ClvThresholds, Intervention, MeasuredEffect, Plan, PlanContext,
};
use churnguard_core::kpi::{self, Role, Stage};
use churnguard_core::models::{Batch, FittedModel};
use churnguard_core::scoring::{
    self, purchases, BelowMinimum, CustomerContext, Previous, RunSummary, ScoredCustomer, Settings,
};
use churnguard_core::value::{self, btyd::Transaction};
use churnguard_store::{failpoint, CustomerScoreRecord, Override, RunRecord, Store};
use polars::prelude::*;
use rayon::prelude::*;
use serde::Serialize;

use super::{Result, ServiceError};
use crate::config::AppConfig;
use crate::registry::{Manifest, Registry};

/// What to score, with what, and where the results go.
#[derive(Debug, Clone)]
pub struct ScoreRunRequest {
    /// Model registry directory.
    pub registry: PathBuf,
    /// Model id or `champion`.
    pub model: String,
    /// An event-table directory, a feature table from `churnguard features`,
    /// or a flat table (with `schema`).
    pub data: PathBuf,
    /// TOML schema of a flat table (defaults to the model's).
    pub schema: Option<PathBuf>,
    /// Snapshot: `YYYY-MM-DD`, or `latest` (the default: the day after the data ends).
    pub snapshot: Option<String>,
    /// Directory for the output files; none writes only to the store.
    pub out: Option<PathBuf>,
    /// The run's id; defaults to `run-<snapshot>-<time>`.
    pub run_id: Option<String>,
    /// Who asked (`cli`, or an API key's name), for the audit log.
    pub actor: String,
    /// Reject event dates after this day (defaults to today).
    pub as_of: Option<NaiveDate>,
    /// `data` is a transaction log (`customer_id`, `date` and this amount
    /// column), scored with BG/NBD and Gamma-Gamma fitted on it instead of a
    /// model from the registry (customers without contracts).
    pub transaction_amount: Option<String>,
}

/// What a scoring run did.
#[derive(Debug, Clone, Serialize)]
pub struct ScoreRunSummary {
    /// The run as stored (with its [`RunSummary`] figures).
    pub run: RunRecord,
    /// Files written.
    pub files: Vec<PathBuf>,
    /// The ten largest expected losses.
    pub top: Vec<CustomerScoreRecord>,
    /// Scorecards saved (employees × role × stage), 0 without event data.
    pub scorecards: usize,
    /// Where the run's time went.
    pub stages: StageTimes,
}

/// Wall-clock seconds of each stage of a run, for the CLI to show where
/// the time goes (a 1M-customer run is judged by its whole time).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct StageTimes {
    /// Reading the model, the data and the store's history.
    pub load: f64,
    /// Probabilities, reasons, CLV, health, the plan, scorecards.
    pub compute: f64,
    /// The store's one transaction (the files are written meanwhile).
    pub store: f64,
    /// The output files beyond the store's time: waiting for their staging
    /// to end, then `interventions.csv`, `summary.json` and the renames.
    pub files: f64,
}

/// Everything a run reads before it computes: the model, the rows to score
/// and what the store knows about earlier runs. The product of [`load`].
pub struct LoadedRun {
    scorer: Scorer,
    prepared: Prepared,
    previous: HashMap<String, Previous>,
    existing: Vec<Intervention>,
    owner_save_rates: HashMap<String, f64>,
    /// Churn probabilities predicted 90 days before the snapshot (empty
    /// without a run that old): the risk-adjusted KPIs' baseline.
    expected_churn: HashMap<i64, f64>,
    /// Under uplift targeting, the predicted uplift per (customer, playbook).
    uplift: HashMap<(String, String), f64>,
    /// The model's training baseline, when its version has one.
    baseline: Option<churnguard_core::monitor::Baseline>,
    /// Per playbook, the effect measured from settled outcomes so far.
    measured: HashMap<String, MeasuredEffect>,
    /// Staff overrides in force, by customer id.
    overrides: HashMap<String, Override>,
    source: String,
}

/// What scores a run's customers.
enum Scorer {
    /// A model version from the registry, on feature rows.
    Model {
        manifest: Box<Manifest>,
        model: Box<FittedModel>,
    },
    /// BG/NBD and Gamma-Gamma fitted on a transaction log at the snapshot.
    Purchases(Vec<Transaction>),
}

impl LoadedRun {
    /// The snapshot being scored.
    pub fn snapshot(&self) -> NaiveDate {
        self.prepared.snapshot
    }

    /// Customers to score.
    pub fn customers(&self) -> usize {
        match &self.scorer {
            Scorer::Model { .. } => self.prepared.batch.len(),
            Scorer::Purchases(log) => {
                let mut ids: Vec<i64> = log.iter().map(|t| t.customer_id).collect();
                ids.sort_unstable();
                ids.dedup();
                ids.len()
            }
        }
    }
}

/// What a run computed, ready to persist and write: typed, no JSON. The
/// product of [`compute`].
#[derive(Debug, Clone)]
pub struct ComputedRun {
    /// The run record with its summary figures.
    pub run: RunRecord,
    /// One record per customer, largest expected loss first.
    pub records: Vec<CustomerScoreRecord>,
    /// The intervention plan (created ones get their ids when persisted).
    pub plan: Plan,
    /// KPI scorecards for every role and stage (event data only).
    pub scorecards: Vec<kpi::Scorecards>,
    /// CLV/CAC by acquisition channel (event data only).
    pub by_channel: Vec<value::GroupValue>,
    /// CLV/CAC by acquisition rep (event data only).
    pub by_rep: Vec<value::GroupValue>,
    /// The configured KPI stage (which scorecards the CSV files show).
    stage: Stage,
}

/// Rows to score and what is known about them.
struct Prepared {
    batch: Batch,
    contexts: Vec<CustomerContext>,
    snapshot: NaiveDate,
    /// Extra per-row columns for the output files (channel, rep, MRR change, NPS).
    frame: DataFrame,
    tables: Option<Tables>,
    /// The flat table had no id column: ids are row numbers.
    row_ids: bool,
    /// The input schema the rows were read with (the model's, or `--schema`).
    input: flat::FlatSchema,
    /// A flat table's labels in row order (`Some(true)`: churned), when the
    /// export has its target column.
    labels: Option<Vec<Option<bool>>>,
}

fn parse_snapshot(s: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| {
        ServiceError::BadRequest(format!("snapshot {s:?}: expected YYYY-MM-DD or `latest`"))
    })
}

fn prepare(req: &ScoreRunRequest, manifest: &Manifest) -> Result<Prepared> {
    let input = match &req.schema {
        Some(p) => flat::FlatSchema::load(p)?,
        None => manifest.input.clone(),
    };
    let batch_of = |frame: &DataFrame| -> Result<Batch> {
        Ok(Batch::from_frame(
            frame,
            &input.id,
            &input.columns.numeric,
            &input.columns.categorical,
        )?)
    };
    if req.data.is_dir() {
        let opts = req
            .as_of
            .map_or_else(LoadOptions::default, |as_of| LoadOptions { as_of });
        let tables = data::load_tables(&req.data, opts)?;
        let snapshot = match req.snapshot.as_deref() {
            None | Some("latest") => features::latest_snapshot(&tables)?,
            Some(s) => parse_snapshot(s)?,
        };
        let frame = features::build_features(
            &tables,
            &FeatureParams {
                snapshots: vec![snapshot],
                horizon_days: manifest.horizon_days.unwrap_or(90),
            },
        )?;
        if frame.height() == 0 {
            return Err(ServiceError::BadRequest(format!(
                "no active customers at {snapshot} in {}",
                req.data.display()
            )));
        }
        let names: HashMap<String, String> = columns::strs(&tables.customers, "customer_id")
            .unwrap_or_default()
            .into_iter()
            .zip(columns::strs(&tables.customers, "name").unwrap_or_default())
            .filter_map(|(i, n)| Some((i?, n?)))
            .collect();
        let contexts = CustomerContext::from_frame(&frame, &names);
        let batch = batch_of(&frame)?;
        return Ok(Prepared {
            batch,
            contexts,
            snapshot,
            frame,
            tables: Some(tables),
            row_ids: false,
            input,
            labels: None,
        });
    }
    if !req.data.is_file() {
        return Err(ServiceError::BadPath {
            path: req.data.clone(),
            message: "no such file or directory".into(),
        });
    }
    let mut raw = data::read_raw(&req.data)?;
    let mut snapshot = None;
    if raw.column("snapshot_date").is_ok() {
        let days: Vec<Option<i32>> = match columns::days(&raw, "snapshot_date") {
            Ok(d) => d,
            Err(_) => {
                let parsed = raw
                    .column("snapshot_date")
                    .and_then(|c| c.cast(&DataType::Date))
                    .map_err(|e| ServiceError::BadPath {
                        path: req.data.clone(),
                        message: format!("column `snapshot_date`: {e}"),
                    })?;
                let df = DataFrame::new(raw.height(), vec![parsed])
                    .map_err(|e| ServiceError::BadRequest(e.to_string()))?;
                columns::days(&df, "snapshot_date").map_err(ServiceError::BadRequest)?
            }
        };
        let want = match req.snapshot.as_deref() {
            None | Some("latest") => days.iter().flatten().copied().max(),
            Some(s) => Some(days_from_date(parse_snapshot(s)?)),
        };
        let Some(want) = want else {
            return Err(ServiceError::BadPath {
                path: req.data.clone(),
                message: "column `snapshot_date` holds no dates".into(),
            });
        };
        let mask: BooleanChunked = days.iter().map(|d| *d == Some(want)).collect();
        raw = raw
            .filter(&mask)
            .map_err(|e| ServiceError::BadRequest(e.to_string()))?;
        if raw.height() == 0 {
            return Err(ServiceError::BadRequest(format!(
                "{} has no rows at snapshot {}",
                req.data.display(),
                date_from_days(want)
            )));
        }
        snapshot = Some(date_from_days(want));
    }
    let snapshot = match (snapshot, req.snapshot.as_deref()) {
        (Some(s), _) => s,
        (None, Some(s)) if s != "latest" => parse_snapshot(s)?,
        _ => chrono::Utc::now().date_naive(),
    };
    let table = flat::inputs_from_frame(raw.clone(), &req.data, &input)?;
    let contexts = CustomerContext::from_flat(&raw, &input.roles, snapshot)
        .map_err(|e| ServiceError::BadRequest(format!("{}: {e}", req.data.display())))?;
    let batch = batch_of(&table.frame)?;
    Ok(Prepared {
        batch,
        contexts,
        snapshot,
        frame: raw,
        tables: None,
        row_ids: input.row_ids,
        labels: columns::i64s(&table.frame, "churned")
            .ok()
            .map(|v| v.into_iter().map(|x| x.map(|x| x == 1)).collect()),
        input,
    })
}

fn record_of(
    run_id: &str,
    snapshot: &str,
    c: ScoredCustomer,
    choice: Option<&Choice>,
) -> CustomerScoreRecord {
    CustomerScoreRecord {
        run_id: run_id.to_string(),
        customer_id: c.customer_id,
        snapshot_date: snapshot.to_string(),
        name: c.context.name,
        owner: c.context.account_manager,
        segment: c.context.segment,
        churn_probability: c.churn_probability,
        p_involuntary: c.p_involuntary,
        churn_type: c.churn_type.map(|t| t.name().to_string()),
        clv: c.clv,
        clv_cac: c.clv_cac,
        expected_loss: c.expected_loss,
        health: c.health.score,
        band: c.health.band.name().to_string(),
        computed_band: None,
        owner_name: None,
        health_change: c.trend.change,
        trend: c.trend.direction.name().to_string(),
        profile: c.health.profile,
        components: c.health.components,
        reasons: c.reasons,
        intervention: choice.map(decision_text),
    }
}

/// A decision in words, with what the expected-value gate saw for new,
/// control and gated ones: `csm_call (gated: 0.04 × 900 × 0.25 − 60 = −51)`.
fn decision_text(choice: &Choice) -> String {
    match (choice.action, choice.expected_value, choice.effect) {
        ("new" | "control" | "gated" | "capacity", Some(value), Some(effect)) => format!(
            "{} ({}: expected value {value:.0} with effect {effect:.3})",
            choice.playbook, choice.action
        ),
        _ => format!("{} ({})", choice.playbook, choice.action),
    }
}

fn scores_frame(
    records: &[CustomerScoreRecord],
    choices: &HashMap<&str, &Choice>,
) -> Result<DataFrame> {
    let n = records.len();
    let s = |f: &dyn Fn(&CustomerScoreRecord) -> Option<String>| -> Vec<Option<String>> {
        records.iter().map(f).collect()
    };
    let x = |f: &dyn Fn(&CustomerScoreRecord) -> Option<f64>| -> Vec<Option<f64>> {
        records.iter().map(f).collect()
    };
    let mut cols = vec![
        Column::new("customer_id".into(), s(&|r| Some(r.customer_id.clone()))),
        Column::new("name".into(), s(&|r| r.name.clone())),
        Column::new("owner".into(), s(&|r| r.owner.clone())),
        Column::new("owner_name".into(), s(&|r| r.owner_name.clone())),
        Column::new("segment".into(), s(&|r| r.segment.clone())),
        Column::new(
            "churn_probability".into(),
            x(&|r| Some(r.churn_probability)),
        ),
        Column::new("churn_type".into(), s(&|r| r.churn_type.clone())),
        Column::new("p_involuntary".into(), x(&|r| r.p_involuntary)),
        Column::new("clv".into(), x(&|r| Some(r.clv))),
        Column::new("clv_cac".into(), x(&|r| r.clv_cac)),
        Column::new("expected_loss".into(), x(&|r| Some(r.expected_loss))),
        Column::new("health".into(), x(&|r| Some(r.health))),
        Column::new("band".into(), s(&|r| Some(r.band.clone()))),
        Column::new("health_change".into(), x(&|r| r.health_change)),
        Column::new("trend".into(), s(&|r| Some(r.trend.clone()))),
        Column::new("profile".into(), s(&|r| Some(r.profile.clone()))),
    ];
    for component in churnguard_core::health::Component::ALL {
        cols.push(Column::new(
            format!("health_{}", component.name()).as_str().into(),
            x(&|r| {
                r.components
                    .iter()
                    .find(|c| c.component == component)
                    .map(|c| c.contribution)
            }),
        ));
    }
    // Each component's own score (0–100), empty where the customer has no
    // data for it (reweighted away): which components the index rests on.
    for component in churnguard_core::health::Component::ALL {
        cols.push(Column::new(
            format!("component_{}", component.name()).as_str().into(),
            x(&|r| {
                r.components
                    .iter()
                    .find(|c| c.component == component)
                    .and_then(|c| c.score)
            }),
        ));
    }
    cols.push(Column::new(
        "reasons".into(),
        s(&|r| {
            Some(
                r.reasons
                    .iter()
                    .map(scoring::reason_text)
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        }),
    ));
    cols.push(Column::new(
        "intervention".into(),
        s(&|r| {
            choices
                .get(r.customer_id.as_str())
                .map(|c| c.playbook.clone())
        }),
    ));
    cols.push(Column::new(
        "intervention_action".into(),
        s(&|r| {
            choices
                .get(r.customer_id.as_str())
                .map(|c| c.action.to_string())
        }),
    ));
    cols.push(Column::new(
        "intervention_expected_value".into(),
        x(&|r| {
            choices
                .get(r.customer_id.as_str())
                .and_then(|c| c.expected_value)
        }),
    ));
    cols.push(Column::new(
        "intervention_effect".into(),
        x(&|r| choices.get(r.customer_id.as_str()).and_then(|c| c.effect)),
    ));
    cols.push(Column::new(
        "intervention_owner".into(),
        s(&|r| {
            choices
                .get(r.customer_id.as_str())
                .and_then(|c| c.owner.clone())
        }),
    ));
    DataFrame::new(n, cols).map_err(|e| ServiceError::BadRequest(e.to_string()))
}

/// The risk list: the columns customer-success staff work from, in the
/// order of `scores` (by expected loss, largest first), with a rank and the
/// top reason in words; `scores.csv` keeps everything else.
fn risk_list_frame(scores: &DataFrame, records: &[CustomerScoreRecord]) -> Result<DataFrame> {
    const COLUMNS: [&str; 14] = [
        "customer_id",
        "name",
        "owner",
        "owner_name",
        "segment",
        "band",
        "health",
        "trend",
        "health_change",
        "churn_probability",
        "churn_type",
        "clv",
        "expected_loss",
        "intervention",
    ];
    let bad = |e: PolarsError| ServiceError::BadRequest(e.to_string());
    let mut risk = scores.select(COLUMNS).map_err(bad)?;
    let rank: Vec<u32> = (1..=records.len() as u32).collect();
    risk.insert_column(0, Column::new("rank".into(), rank))
        .map_err(bad)?;
    let top: Vec<Option<String>> = records
        .iter()
        .map(|r| r.reasons.first().map(scoring::reason_text))
        .collect();
    risk.insert_column(14, Column::new("top_reason".into(), top))
        .map_err(bad)?;
    Ok(risk)
}

fn interventions_frame(created: &[Intervention]) -> Result<DataFrame> {
    let iso = |t: i64| {
        chrono::DateTime::from_timestamp(t, 0)
            .map(|d| d.format("%Y-%m-%dT%H:%MZ").to_string())
            .unwrap_or_default()
    };
    DataFrame::new(
        created.len(),
        vec![
            Column::new(
                "intervention_id".into(),
                created.iter().map(|i| i.id).collect::<Vec<_>>(),
            ),
            Column::new(
                "customer_id".into(),
                created
                    .iter()
                    .map(|i| i.customer_id.clone())
                    .collect::<Vec<_>>(),
            ),
            Column::new(
                "playbook".into(),
                created
                    .iter()
                    .map(|i| i.playbook.clone())
                    .collect::<Vec<_>>(),
            ),
            Column::new(
                "rule".into(),
                created.iter().map(|i| i.rule.clone()).collect::<Vec<_>>(),
            ),
            Column::new(
                "arm".into(),
                created.iter().map(|i| i.arm.name()).collect::<Vec<_>>(),
            ),
            Column::new(
                "status".into(),
                created.iter().map(|i| i.status.name()).collect::<Vec<_>>(),
            ),
            Column::new(
                "channel".into(),
                created
                    .iter()
                    .map(|i| i.channel.clone())
                    .collect::<Vec<_>>(),
            ),
            Column::new(
                "owner".into(),
                created.iter().map(|i| i.owner.clone()).collect::<Vec<_>>(),
            ),
            Column::new(
                "priority".into(),
                created.iter().map(|i| i.priority).collect::<Vec<_>>(),
            ),
            Column::new(
                "due".into(),
                created.iter().map(|i| iso(i.due_at)).collect::<Vec<_>>(),
            ),
            Column::new(
                "expected_value".into(),
                created.iter().map(|i| i.expected_value).collect::<Vec<_>>(),
            ),
        ],
    )
    .map_err(|e| ServiceError::BadRequest(e.to_string()))
}

fn group_frame(groups: &[value::GroupValue], key: &str) -> Result<DataFrame> {
    DataFrame::new(
        groups.len(),
        vec![
            Column::new(
                key.into(),
                groups.iter().map(|g| g.group.clone()).collect::<Vec<_>>(),
            ),
            Column::new(
                "customers".into(),
                groups
                    .iter()
                    .map(|g| g.customers as u64)
                    .collect::<Vec<_>>(),
            ),
            Column::new(
                "mean_clv".into(),
                groups.iter().map(|g| g.mean_clv).collect::<Vec<_>>(),
            ),
            Column::new(
                "mean_cac".into(),
                groups.iter().map(|g| g.mean_cac).collect::<Vec<_>>(),
            ),
            Column::new(
                "clv_cac".into(),
                groups.iter().map(|g| g.clv_cac).collect::<Vec<_>>(),
            ),
            Column::new(
                "below_minimum".into(),
                groups.iter().map(|g| g.below_minimum).collect::<Vec<_>>(),
            ),
        ],
    )
    .map_err(|e| ServiceError::BadRequest(e.to_string()))
}

/// Per owner, the save rate of their treated customers against their control
/// customers, from outcomes already observed.
fn owner_save_rates(observed: Vec<(Intervention, Option<bool>)>) -> HashMap<String, f64> {
    let mut by_owner: HashMap<String, [(usize, usize); 2]> = HashMap::new();
    for (i, churned) in observed {
        let Some(churned) = churned else { continue };
        let arm = match i.arm {
            Arm::Treated => 0,
            Arm::Control => 1,
        };
        let e = by_owner.entry(i.owner).or_default();
        e[arm].0 += 1;
        e[arm].1 += usize::from(churned);
    }
    by_owner
        .into_iter()
        .filter_map(|(owner, [t, c])| {
            (t.0 > 0 && c.0 > 0).then(|| (owner, c.1 as f64 / c.0 as f64 - t.1 as f64 / t.0 as f64))
        })
        .collect()
}

/// A run happens at its snapshot (midnight UTC): SLAs, cooldowns and
/// outcome windows count from it, so back-filled runs replay the timeline.
fn run_clock(snapshot: NaiveDate) -> i64 {
    snapshot
        .and_hms_opt(0, 0, 0)
        .map_or_else(churnguard_store::now, |t| t.and_utc().timestamp())
}

fn longest_cooldown(config: &AppConfig) -> f64 {
    config
        .interventions
        .playbooks
        .iter()
        .map(|p| p.cooldown_days)
        .fold(1.0, f64::max)
}

/// What the store knows that a run at a snapshot plans with.
struct History {
    previous: HashMap<String, Previous>,
    existing: Vec<Intervention>,
    observed: Vec<(Intervention, Option<bool>)>,
    measured: HashMap<String, MeasuredEffect>,
    overrides: HashMap<String, Override>,
}

/// The previous scores, the interventions the policy must see, the observed
/// outcomes and the effects measured from them, for a run at `snapshot`.
async fn history(store: &Store, snapshot: NaiveDate, config: &AppConfig) -> Result<History> {
    let day = snapshot.format("%Y-%m-%d").to_string();
    let previous = store.previous_scores(&day).await?;
    let existing = store
        .interventions_for_planning(run_clock(snapshot), longest_cooldown(config) + 1.0)
        .await?;
    let observed = store.outcome_records().await?;
    let measured = {
        let known: HashMap<i64, Option<bool>> = observed.iter().map(|(i, o)| (i.id, *o)).collect();
        let records: Vec<Intervention> = observed.iter().map(|(i, _)| i.clone()).collect();
        interventions::measured_effects(&interventions::summarise(&records, &known))
    };
    // Overrides lapse by the wall clock, not the snapshot's: staff set
    // them in real time ("until the renewal on the 15th").
    let overrides = store.active_overrides(churnguard_store::now()).await?;
    Ok(History {
        previous,
        existing,
        observed,
        measured,
        overrides,
    })
}

/// Reads what a run needs: the model, the data (features built at the
/// snapshot for event tables), and from the store the previous scores, the
/// interventions the policy must see and the observed outcomes. The file
/// and feature work runs on the blocking pool.
pub async fn load(req: &ScoreRunRequest, config: &AppConfig, store: &Store) -> Result<LoadedRun> {
    if let Some(amount) = &req.transaction_amount {
        return load_purchases(req, amount, config, store).await;
    }
    let owned = req.clone();
    let (manifest, model, baseline, prepared) = tokio::task::spawn_blocking(move || {
        let registry = Registry::open(&owned.registry)?;
        let (manifest, model) = registry.load(&owned.model)?;
        let baseline = registry.baseline(&manifest.id)?;
        let prepared = prepare(&owned, &manifest)?;
        Ok::<_, ServiceError>((manifest, model, baseline, prepared))
    })
    .await
    .map_err(|e| ServiceError::Internal(format!("loading the run's data: {e}")))??;
    // Uplift targeting ranks by the uplift champion's predictions; without
    // one the run is refused up front rather than silently ranked by risk.
    let uplift = if config.interventions.targeting == interventions::Targeting::Uplift {
        let (_, model) = super::uplift::load_uplift(&req.registry)?;
        super::uplift::predict_uplift(&model, &prepared.batch)?
    } else {
        HashMap::new()
    };
    let History {
        previous,
        existing,
        observed,
        measured,
        overrides,
    } = history(store, prepared.snapshot, config).await?;
    // The KPIs' period starts 90 days before the snapshot: the book risk
    // then comes from the latest run at or before that day, if any.
    let period_start = (prepared.snapshot - chrono::Days::new(90))
        .format("%Y-%m-%d")
        .to_string();
    let expected_churn: HashMap<i64, f64> =
        match store.churn_probabilities_at(&period_start).await? {
            Some((_, by_id)) => by_id
                .into_iter()
                .filter_map(|(id, p)| Some((id.parse().ok()?, p)))
                .collect(),
            None => HashMap::new(),
        };
    let owner_save_rates = if prepared.tables.is_some() {
        owner_save_rates(observed)
    } else {
        HashMap::new()
    };
    Ok(LoadedRun {
        scorer: Scorer::Model {
            manifest: Box::new(manifest),
            model: Box::new(model),
        },
        prepared,
        previous,
        existing,
        owner_save_rates,
        measured,
        expected_churn,
        uplift,
        baseline,
        overrides,
        source: req.data.display().to_string(),
    })
}

/// [`load`] for a transaction log: no registry, no features. Uplift
/// targeting needs a model's inputs, so it is refused up front.
async fn load_purchases(
    req: &ScoreRunRequest,
    amount: &str,
    config: &AppConfig,
    store: &Store,
) -> Result<LoadedRun> {
    if config.interventions.targeting == interventions::Targeting::Uplift {
        return Err(ServiceError::BadRequest(
            "uplift targeting needs a model's inputs; a transaction log is targeted by risk × value (set interventions.targeting = \"value\")".into(),
        ));
    }
    let (path, amount) = (req.data.clone(), amount.to_string());
    let snapshot_flag = req.snapshot.clone();
    let as_of = req.as_of.unwrap_or_else(|| chrono::Utc::now().date_naive());
    let (log, snapshot) = tokio::task::spawn_blocking(move || -> Result<_> {
        if !path.is_file() {
            return Err(ServiceError::BadPath {
                path,
                message: "no such transaction log".into(),
            });
        }
        let raw = data::read_raw(&path)?;
        let log = value::btyd::transactions_from_frame(&raw, &amount).map_err(|e| {
            ServiceError::BadPath {
                path: path.clone(),
                message: e.to_string(),
            }
        })?;
        if let Some(t) = log.iter().find(|t| t.date > as_of) {
            return Err(ServiceError::BadPath {
                path,
                message: format!(
                    "customer {} has a purchase on {}, after {as_of} (pass --as-of to allow it)",
                    t.customer_id, t.date
                ),
            });
        }
        let last = log
            .iter()
            .map(|t| t.date)
            .max()
            .ok_or_else(|| ServiceError::BadPath {
                path: path.clone(),
                message: "the log holds no transactions".into(),
            })?;
        let snapshot = match snapshot_flag.as_deref() {
            None | Some("latest") => last + chrono::Days::new(1),
            Some(s) => parse_snapshot(s)?,
        };
        Ok((log, snapshot))
    })
    .await
    .map_err(|e| ServiceError::Internal(format!("loading the transaction log: {e}")))??;
    let History {
        previous,
        existing,
        measured,
        overrides,
        ..
    } = history(store, snapshot, config).await?;
    Ok(LoadedRun {
        scorer: Scorer::Purchases(log),
        prepared: Prepared {
            batch: Batch {
                ids: Vec::new(),
                numeric_names: Default::default(),
                numeric: ndarray::Array2::zeros((0, 0)),
                categorical_names: Default::default(),
                categorical: Vec::new(),
            },
            contexts: Vec::new(),
            snapshot,
            frame: DataFrame::empty(),
            tables: None,
            row_ids: false,
            input: flat::feature_table_schema(&[], &[], &[]),
            labels: None,
        },
        previous,
        existing,
        owner_save_rates: HashMap::new(),
        expected_churn: HashMap::new(),
        uplift: HashMap::new(),
        baseline: None,
        measured,
        overrides,
        source: req.data.display().to_string(),
    })
}

/// Months each cohort's retention is projected to (stored with the run).
pub(crate) const COHORT_PERIODS: u32 = 24;

/// Scores every customer, plans interventions, builds the scorecards and
/// the summary. Pure: no I/O, the same inputs give the same run.
pub fn compute(
    loaded: &LoadedRun,
    config: &AppConfig,
    run_id: &str,
    created_at: i64,
) -> Result<ComputedRun> {
    let prepared = &loaded.prepared;
    let snapshot = prepared.snapshot.format("%Y-%m-%d").to_string();
    let settings = Settings {
        scoring: &config.scoring,
        health: &config.health,
        value: &config.value,
        policy: &config.interventions,
        clv_thresholds: None,
        lifetime: None,
        input: Some(&prepared.input),
    };
    let (scored, horizon, model_id, model_family, purchases) = match &loaded.scorer {
        Scorer::Model { manifest, model } => {
            let horizon = manifest
                .horizon_days
                .unwrap_or(config.value.default_horizon_days);
            let scored = scoring::score_customers(
                model,
                horizon,
                &prepared.batch,
                &prepared.contexts,
                &loaded.previous,
                Settings {
                    lifetime: manifest.lifetime.as_ref(),
                    ..settings
                },
            )?;
            let family = manifest.family.name().to_string();
            (scored, horizon, manifest.id.clone(), family, None)
        }
        Scorer::Purchases(log) => {
            let (fit, scored) =
                purchases::score_purchases(log, prepared.snapshot, &loaded.previous, settings)
                    .map_err(|e| ServiceError::BadRequest(format!("{}: {e}", loaded.source)))?;
            // P(alive) is "already gone", not a horizon's probability; the
            // summary's horizon says over what CLV and actions count.
            let horizon = config.value.default_horizon_days;
            (
                scored,
                horizon,
                fit.version(),
                "bg/nbd".to_string(),
                Some(fit),
            )
        }
    };
    let now = run_clock(prepared.snapshot);
    // Overrides in force: the band staff set is the band the policy and
    // staff see (the computed one is kept beside it); a suppressed customer
    // gets no new intervention.
    let shown_band = |c: &ScoredCustomer| -> Option<Band> {
        let band = loaded.overrides.get(&c.customer_id)?.band.as_deref()?;
        band.parse().ok()
    };
    let inputs: Vec<_> = scored
        .iter()
        .map(|c| {
            let mut input = c.policy_input();
            if let Some(o) = loaded.overrides.get(&c.customer_id) {
                input.band = shown_band(c).unwrap_or(input.band);
                input.suppressed = o.suppress;
            }
            input
        })
        .collect();
    let plan = interventions::plan(
        &config.interventions,
        &inputs,
        &loaded.existing,
        run_id,
        now,
        &PlanContext {
            measured: loaded.measured.clone(),
            uplift: loaded.uplift.clone(),
        },
    );
    let choices: HashMap<&str, &Choice> = plan
        .choices
        .iter()
        .map(|c| (c.customer_id.as_str(), c))
        .collect();
    let drift = loaded
        .baseline
        .as_ref()
        .filter(|_| matches!(loaded.scorer, Scorer::Model { .. }))
        .map(|b| {
            let scores: Vec<f64> = scored.iter().map(|c| c.churn_probability).collect();
            churnguard_core::monitor::drift(b, &prepared.batch, &scores, &config.monitoring.drift)
        });
    let mut summary = RunSummary {
        closed_recovered: plan.recovered.len(),
        expired: plan.expired.len(),
        horizon_days: horizon,
        drift,
        ids_are_row_numbers: prepared.row_ids,
        purchases,
        ..RunSummary::default()
    };
    for c in &plan.choices {
        *summary.actions.entry(c.action.to_string()).or_default() += 1;
    }
    let clvs: Vec<f64> = scored.iter().map(|c| c.clv).collect();
    let n = scored.len().max(1) as f64;
    summary.clv_thresholds = ClvThresholds::of(&clvs, &config.interventions);
    summary.mean_health = scored.iter().map(|c| c.health.score).sum::<f64>() / n;
    summary.mean_churn_probability = scored.iter().map(|c| c.churn_probability).sum::<f64>() / n;
    summary.total_clv = clvs.iter().sum();
    summary.total_expected_loss = scored.iter().map(|c| c.expected_loss).sum();

    let mut by_channel = Vec::new();
    let mut by_rep = Vec::new();
    let mut scorecards = Vec::new();
    if let Some(tables) = &prepared.tables {
        let s = days_from_date(prepared.snapshot);
        // Cohorts as of the day before the snapshot: what the data has seen.
        summary.cohorts = value::cohorts::cohort_retention(
            &tables.customers,
            &tables.churn_events,
            s - 1,
            COHORT_PERIODS,
        )
        .map_err(|e| ServiceError::BadRequest(e.to_string()))?
        .into_iter()
        .filter(|c| c.plan == "all")
        .collect();
        summary.revenue_churn_90d = Some(value::revenue_churn(
            &tables.customers,
            &tables.subscriptions,
            &tables.churn_events,
            s - 91,
            s - 1,
        )?);
        let channel = columns::strs(&prepared.frame, "acquisition_channel").unwrap_or_default();
        let rows: Vec<(&str, f64, Option<f64>)> = scored
            .iter()
            .enumerate()
            .map(|(i, c)| {
                (
                    channel
                        .get(i)
                        .and_then(|v| v.as_deref())
                        .unwrap_or("unknown"),
                    c.clv,
                    c.context.cac,
                )
            })
            .collect();
        by_channel = value::group_clv_cac(rows.iter().copied(), &config.value);
        let rows: Vec<(&str, f64, Option<f64>)> = scored
            .iter()
            .map(|c| {
                (
                    c.context.acquisition_rep.as_deref().unwrap_or("unknown"),
                    c.clv,
                    c.context.cac,
                )
            })
            .collect();
        by_rep = value::group_clv_cac(rows.iter().copied(), &config.value);
        summary.clv_cac_below_minimum = Some(BelowMinimum {
            channels: by_channel
                .iter()
                .filter(|g| g.below_minimum)
                .map(|g| g.group.clone())
                .collect(),
            reps: by_rep.iter().filter(|g| g.below_minimum).count(),
            customers: scored
                .iter()
                .filter(|c| c.clv_cac.is_some_and(|r| r < config.value.min_clv_cac))
                .count(),
        });

        // KPI scorecards at this run, for every role and stage.
        let rows = kpi::ScoredRow::from_scores(&prepared.frame, &scored);
        let facts = kpi::facts(&kpi::FactsInput {
            tables,
            rows: &rows,
            snapshot: s,
            save_rates: &loaded.owner_save_rates,
            activation_features: config.kpi.activation_features,
            expected_churn: (!loaded.expected_churn.is_empty()).then_some(&loaded.expected_churn),
        })?;
        for role in [Role::AccountManager, Role::Acquisition] {
            for stage in [Stage::Balanced, Stage::Growth, Stage::Mature] {
                scorecards.push(kpi::scorecards(&facts, role, stage, &config.kpi));
            }
        }
    } else if prepared.input.roles.owner.is_some() {
        // A flat table whose schema names the owner: account-manager
        // scorecards from what one export tells (health, its change, and
        // retention where the export has its label).
        let rows: Vec<kpi::FlatRow> = scored
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                Some(kpi::FlatRow {
                    owner: c.context.account_manager.clone()?,
                    health: c.health.score,
                    health_change: c.trend.change,
                    churned: prepared.labels.as_ref().and_then(|l| l[i]),
                })
            })
            .collect();
        let facts = kpi::flat_facts(&rows, &HashMap::new());
        for stage in [Stage::Balanced, Stage::Growth, Stage::Mature] {
            scorecards.push(kpi::scorecards(
                &facts,
                Role::AccountManager,
                stage,
                &config.kpi,
            ));
        }
    }

    // Owners' names from the employees table (event data), kept with each
    // score so every reader shows people, not ids.
    let owner_names: HashMap<String, String> = prepared
        .tables
        .as_ref()
        .map(|t| {
            let ids = columns::strs(&t.employees, "employee_id").unwrap_or_default();
            let names = columns::strs(&t.employees, "name").unwrap_or_default();
            ids.into_iter()
                .zip(names)
                .filter_map(|(i, n)| Some((i?, n?)))
                .collect()
        })
        .unwrap_or_default();
    // The records, largest expected loss first. The order is sorted as
    // indices and each scored customer is then moved (not cloned) into its
    // record: sorting the records themselves (about 300 bytes each) and
    // cloning their strings took 4.3 s of a 1M-customer run.
    let mut order: Vec<usize> = (0..scored.len()).collect();
    order.par_sort_by(|&a, &b| {
        let (a, b) = (&scored[a], &scored[b]);
        b.expected_loss
            .total_cmp(&a.expected_loss)
            .then_with(|| a.customer_id.cmp(&b.customer_id))
    });
    let shown: Vec<Option<Band>> = scored.iter().map(shown_band).collect();
    let customers = scored.len();
    let mut slots: Vec<Option<ScoredCustomer>> = scored.into_iter().map(Some).collect();
    let records: Vec<CustomerScoreRecord> = order
        .iter()
        .map(|&i| {
            let c = slots[i].take().expect("each index once");
            let choice = choices.get(c.customer_id.as_str()).copied();
            let mut record = record_of(run_id, &snapshot, c, choice);
            record.owner_name = record
                .owner
                .as_ref()
                .and_then(|o| owner_names.get(o))
                .cloned();
            if let Some(band) = shown[i] {
                record.computed_band =
                    Some(std::mem::replace(&mut record.band, band.name().to_string()));
            }
            record
        })
        .collect();
    drop(slots);
    for r in &records {
        *summary.bands.entry(r.band.clone()).or_default() += 1;
    }

    let run = RunRecord {
        run_id: run_id.to_string(),
        created_at,
        snapshot_date: snapshot,
        model_id,
        model_family,
        source: loaded.source.clone(),
        customers,
        summary,
    };
    Ok(ComputedRun {
        run,
        records,
        plan,
        scorecards,
        by_channel,
        by_rep,
        stage: config.kpi.stage,
    })
}

/// Saves the whole run in one transaction: the run, every customer's
/// score, the intervention plan, the scorecards and their audit entries.
/// Returns the ids of the created interventions, in plan order.
pub async fn persist(computed: &ComputedRun, store: &Store, actor: &str) -> Result<Vec<i64>> {
    Ok(store
        .save_run(
            &computed.run,
            &computed.records,
            &computed.plan,
            &computed.scorecards,
            actor,
        )
        .await?)
}

/// Writes the run's files into `out`: every file is first written whole
/// into a hidden staging folder inside `out`, and only when all are there
/// are they renamed into place (renames within one filesystem, a few
/// microseconds for the set; `summary.json` goes last and marks a complete
/// set). A failure while writing (a full disk, a kill) leaves none of the
/// run's files in `out`; the staging folder a killed run leaves behind is
/// removed by the next run. [`score_run`] runs the two halves apart
/// ([`stage_outputs`] while the store writes, [`publish_outputs`] after it
/// committed); this is both in a row.
pub fn write_outputs(
    computed: &ComputedRun,
    created_ids: &[i64],
    out: &Path,
) -> Result<Vec<PathBuf>> {
    let staged = stage_outputs(computed, out)?;
    publish_outputs(computed, staged, created_ids)
}

/// A run's files written into their staging folder, not yet published.
/// Dropping it unpublished removes the folder (the store's transaction
/// failed, or publishing did).
#[derive(Debug)]
pub struct StagedOutputs {
    out: PathBuf,
    staging: PathBuf,
    names: Vec<String>,
}

impl Drop for StagedOutputs {
    fn drop(&mut self) {
        data::remove_dir_all(&self.staging);
    }
}

/// The first half of [`write_outputs`]: every file that does not need the
/// store's answer (all but `interventions.csv`, which carries the ids the
/// store gives, and `summary.json`, which marks a complete set), written
/// into the staging folder. It reads only the computed run, so it can run
/// on another core while [`persist`] writes: a 1M-customer run's files
/// (750 MB) take as long as its transaction.
pub fn stage_outputs(computed: &ComputedRun, out: &Path) -> Result<StagedOutputs> {
    let run_id = &computed.run.run_id;
    let failed = |e: ServiceError| ServiceError::Outputs {
        run_id: run_id.clone(),
        dir: out.to_path_buf(),
        message: e.to_string(),
    };
    data::create_dir(out).map_err(|e| failed(e.into()))?;
    for stale in data::hidden_entries(out, ".staging-").map_err(|e| failed(e.into()))? {
        data::remove_dir_all(&stale);
    }
    let mut staged = StagedOutputs {
        out: out.to_path_buf(),
        staging: out.join(format!(".staging-{run_id}")),
        names: Vec::new(),
    };
    let choices = computed.choices();
    staged.names = computed
        .outputs(&choices)
        .write_bulk(&staged.staging)
        .map_err(failed)?;
    Ok(staged)
}

/// The second half of [`write_outputs`], once the store has committed:
/// `interventions.csv` with the store's ids and `summary.json`, then every
/// file renamed into `out`.
pub fn publish_outputs(
    computed: &ComputedRun,
    mut staged: StagedOutputs,
    created_ids: &[i64],
) -> Result<Vec<PathBuf>> {
    let mut created = computed.plan.created.clone();
    for (i, id) in created.iter_mut().zip(created_ids) {
        i.id = *id;
    }
    let published = write_final(&staged.staging, &created, &computed.run).and_then(|names| {
        staged.names.extend(names);
        failpoint("score_run.files_staged");
        Ok(data::publish(&staged.staging, &staged.out, &staged.names)?)
    });
    published.map_err(|e| ServiceError::Outputs {
        run_id: computed.run.run_id.clone(),
        dir: staged.out.clone(),
        message: e.to_string(),
    })
}

impl ComputedRun {
    /// Each customer's intervention decision, by customer id.
    fn choices(&self) -> HashMap<&str, &Choice> {
        self.plan
            .choices
            .iter()
            .map(|c| (c.customer_id.as_str(), c))
            .collect()
    }

    fn outputs<'a>(&'a self, choices: &'a HashMap<&'a str, &'a Choice>) -> Outputs<'a> {
        Outputs {
            records: &self.records,
            choices,
            by_channel: &self.by_channel,
            by_rep: &self.by_rep,
            cards: &self.scorecards,
            stage: self.stage,
        }
    }
}

/// A new run's id: `run-<snapshot>-<UTC time to the millisecond>`.
pub fn new_run_id(snapshot: NaiveDate) -> String {
    format!(
        "run-{}-{}",
        snapshot.format("%Y-%m-%d"),
        chrono::Utc::now().format("%Y%m%dT%H%M%S%3f")
    )
}

/// Scores every active customer at a snapshot: [`load`] → [`compute`] (on
/// the blocking pool) → [`persist`] → [`write_outputs`].
pub async fn score_run(
    req: &ScoreRunRequest,
    config: &AppConfig,
    store: &Store,
) -> Result<ScoreRunSummary> {
    let mut stages = StageTimes::default();
    let mut clock = std::time::Instant::now();
    let mut lap = || {
        let now = std::time::Instant::now();
        let secs = (now - clock).as_secs_f64();
        clock = now;
        secs
    };
    let loaded = load(req, config, store).await?;
    stages.load = lap();
    failpoint("score_run.after_load");
    let run_id = req
        .run_id
        .clone()
        .unwrap_or_else(|| new_run_id(loaded.snapshot()));
    let created_at = churnguard_store::now();
    let owned_config = config.clone();
    let (loaded, computed) = tokio::task::spawn_blocking(move || {
        let computed = compute(&loaded, &owned_config, &run_id, created_at);
        (loaded, computed)
    })
    .await
    .map_err(|e| ServiceError::Internal(format!("computing the run: {e}")))?;
    drop(loaded);
    let computed = computed?;
    stages.compute = lap();
    failpoint("score_run.after_compute");
    // The files are staged on the blocking pool while the store's
    // transaction runs (each mostly on a core of its own), and published
    // only once it committed: a failed transaction leaves no files.
    let computed = std::sync::Arc::new(computed);
    let staging = req.out.clone().map(|out| {
        let computed = computed.clone();
        tokio::task::spawn_blocking(move || stage_outputs(&computed, &out))
    });
    let persisted = persist(&computed, store, &req.actor).await;
    stages.store = lap();
    let staged = match staging {
        Some(task) => Some(
            task.await
                .map_err(|e| ServiceError::Internal(format!("writing the run's files: {e}")))?,
        ),
        None => None,
    };
    // A failed transaction wins over a failed file: it is the one that
    // says the run did not happen.
    let ids = persisted?;
    failpoint("score_run.after_persist");
    let files = match staged {
        Some(staged) => {
            let staged = staged?;
            let computed = computed.clone();
            tokio::task::spawn_blocking(move || publish_outputs(&computed, staged, &ids))
                .await
                .map_err(|e| ServiceError::Internal(format!("writing the run's files: {e}")))??
        }
        None => Vec::new(),
    };
    stages.files = lap();
    Ok(ScoreRunSummary {
        top: computed.records.iter().take(10).cloned().collect(),
        scorecards: computed.scorecards.iter().map(|c| c.cards.len()).sum(),
        run: computed.run.clone(),
        files,
        stages,
    })
}

/// What a run writes to its output folder before the store commits.
struct Outputs<'a> {
    records: &'a [CustomerScoreRecord],
    choices: &'a HashMap<&'a str, &'a Choice>,
    by_channel: &'a [value::GroupValue],
    by_rep: &'a [value::GroupValue],
    cards: &'a [kpi::Scorecards],
    stage: Stage,
}

impl Outputs<'_> {
    /// Writes every file that does not need the store's ids into `dir`;
    /// returns their names.
    fn write_bulk(&self, dir: &std::path::Path) -> Result<Vec<String>> {
        data::create_dir(dir)?;
        let mut names: Vec<String> = Vec::new();
        let mut frame = scores_frame(self.records, self.choices)?;
        for name in ["scores.parquet", "scores.csv"] {
            data::write_frame(&mut frame, &dir.join(name))?;
            names.push(name.into());
        }
        data::write_frame(
            &mut risk_list_frame(&frame, self.records)?,
            &dir.join("risk_list.csv"),
        )?;
        names.push("risk_list.csv".into());
        if !self.by_channel.is_empty() {
            for (groups, key, name) in [
                (
                    self.by_channel,
                    "acquisition_channel",
                    "clv_cac_by_channel.csv",
                ),
                (self.by_rep, "acquisition_rep_id", "clv_cac_by_rep.csv"),
            ] {
                data::write_frame(&mut group_frame(groups, key)?, &dir.join(name))?;
                names.push(name.into());
            }
        }
        if !self.cards.is_empty() {
            data::write_text(
                &dir.join("scorecards.json"),
                &serde_json::to_string_pretty(self.cards).expect("scorecards serialise"),
            )?;
            names.push("scorecards.json".into());
            for role in [Role::AccountManager, Role::Acquisition] {
                if let Some(cards) = self
                    .cards
                    .iter()
                    .find(|c| c.role == role && c.stage == self.stage)
                {
                    let name = format!("kpi_{}.csv", role.name());
                    data::write_frame(&mut kpi_frame(cards)?, &dir.join(&name))?;
                    names.push(name);
                }
            }
        }
        Ok(names)
    }
}

/// The files that follow the store's commit: `interventions.csv` (with the
/// ids it gave) and `summary.json`, last, which marks a complete set.
fn write_final(dir: &Path, created: &[Intervention], run: &RunRecord) -> Result<Vec<String>> {
    data::write_frame(
        &mut interventions_frame(created)?,
        &dir.join("interventions.csv"),
    )?;
    data::write_text(
        &dir.join("summary.json"),
        &serde_json::to_string_pretty(run).expect("run serialises"),
    )?;
    Ok(vec!["interventions.csv".into(), "summary.json".into()])
}

/// One row per employee: composite, rank, top flag, then each metric's
/// value, normalised score and contribution.
pub(crate) fn kpi_frame(cards: &kpi::Scorecards) -> Result<DataFrame> {
    let c = &cards.cards;
    let mut cols = vec![
        Column::new(
            "rank".into(),
            c.iter().map(|x| x.rank as u64).collect::<Vec<_>>(),
        ),
        Column::new(
            "employee_id".into(),
            c.iter().map(|x| x.employee_id.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            "name".into(),
            c.iter().map(|x| x.name.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            "peer_group".into(),
            c.iter().map(|x| x.peer_group.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            "customers".into(),
            c.iter().map(|x| x.customers as u64).collect::<Vec<_>>(),
        ),
        Column::new(
            "composite".into(),
            c.iter().map(|x| x.composite).collect::<Vec<_>>(),
        ),
        Column::new("top".into(), c.iter().map(|x| x.top).collect::<Vec<_>>()),
    ];
    if let Some(first) = c.first() {
        for (k, m) in first.metrics.iter().enumerate() {
            let name = m.metric.name();
            cols.push(Column::new(
                name.into(),
                c.iter().map(|x| x.metrics[k].value).collect::<Vec<_>>(),
            ));
            cols.push(Column::new(
                format!("{name}_score").as_str().into(),
                c.iter()
                    .map(|x| x.metrics[k].normalised)
                    .collect::<Vec<_>>(),
            ));
            cols.push(Column::new(
                format!("{name}_contribution").as_str().into(),
                c.iter()
                    .map(|x| x.metrics[k].contribution)
                    .collect::<Vec<_>>(),
            ));
        }
    }
    DataFrame::new(c.len(), cols).map_err(|e| ServiceError::BadRequest(e.to_string()))
}
