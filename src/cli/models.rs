//! `train`, `evaluate`, `predict` and `models`: the data scientist's commands.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use polars::prelude::*;

use crate::data::{self, flat};
use crate::eval;
use crate::models::{labels_from_frame, Batch, ChurnModel, Family};
use crate::registry::{Manifest, Registry};
use crate::train::{self, TrainConfig, TrainInput, TrainReport};

/// Flags of `churnguard train`.
#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// Training data: a feature table from `churnguard features`, or a flat table with --schema.
    #[arg(long)]
    pub data: PathBuf,
    /// TOML schema of a flat table's columns (id, target, numeric, categorical, ignore).
    #[arg(long)]
    pub schema: Option<PathBuf>,
    /// Training config (TOML); see churnguard.train.example.toml. Defaults apply without it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Families to train, comma-separated (default: all in this build).
    #[arg(long, value_delimiter = ',')]
    pub families: Vec<Family>,
    /// Seed of the split and learners (overrides the config).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Folds of the cross-validation on a flat table's training rows
    /// (overrides the config; default 5).
    #[arg(long)]
    pub cv: Option<usize>,
    /// Backtest origins of event data (overrides the config; default 3).
    #[arg(long)]
    pub origins: Option<usize>,
    /// Search each family's hyperparameters on training rows first.
    #[arg(long)]
    pub tune: bool,
    /// Time for the search, shared by the families: `90s`, `2m` (default 60s).
    #[arg(long, value_parser = parse_duration_secs)]
    pub budget: Option<f64>,
    /// What the saved models are refitted on: `training` (default) or `all`
    /// (test rows too; the reported figures are those measured before).
    #[arg(long, value_enum)]
    pub final_refit: Option<FinalRefitArg>,
    /// Model registry directory.
    #[arg(long, default_value = "models")]
    pub registry: PathBuf,
    /// Do not move the champion alias to this run's best model.
    #[arg(long, conflicts_with = "force_promote")]
    pub no_promote: bool,
    /// Promote this run's best model even if it does not beat the current
    /// champion on the validation rows (audit-logged).
    #[arg(long)]
    pub force_promote: bool,
    /// Store URL for the audit log of promotions: sqlite://PATH or
    /// postgres://… (default: churnguard.toml's, or CHURNGUARD_DATABASE_URL).
    #[arg(long)]
    pub store: Option<String>,
    /// The event-table directory the feature table was built from: the
    /// report then draws cohort retention by signup month, observed against
    /// the shifted-beta-geometric projection.
    #[arg(long)]
    pub events: Option<PathBuf>,
    /// Generated data directory holding `truth_hazard`: also report the oracle's
    /// ROC-AUC on the same test rows (feature tables of generated data only).
    #[arg(long)]
    pub truth: Option<PathBuf>,
}

/// What the saved models are refitted on.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum FinalRefitArg {
    /// The training rows (test rows stay unseen).
    Training,
    /// Every labelled row.
    All,
}

/// `90`, `90s`, `2m`, `1h` as seconds.
fn parse_duration_secs(s: &str) -> std::result::Result<f64, String> {
    let s = s.trim();
    let (number, unit) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let v: f64 = number
        .parse()
        .map_err(|_| format!("{s:?}: expected a duration such as 60s, 2m or 1h"))?;
    let scale = match unit {
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return Err(format!("{s:?}: the unit must be s, m or h")),
    };
    if v > 0.0 && v.is_finite() {
        Ok(v * scale)
    } else {
        Err(format!("{s:?}: must be positive"))
    }
}

/// Flags of `churnguard evaluate`.
#[derive(Debug, clap::Args)]
pub struct EvaluateArgs {
    /// Model id, or `champion`.
    #[arg(long, default_value = "champion")]
    pub model: String,
    /// Labelled data in the model's input format.
    #[arg(long)]
    pub data: PathBuf,
    /// TOML schema of a flat table (defaults to the schema the model was trained with).
    #[arg(long)]
    pub schema: Option<PathBuf>,
    /// Model registry directory.
    #[arg(long, default_value = "models")]
    pub registry: PathBuf,
}

/// Flags of `churnguard predict`.
#[derive(Debug, clap::Args)]
pub struct PredictArgs {
    /// Model id, or `champion`.
    #[arg(long, default_value = "champion")]
    pub model: String,
    /// Rows to score (CSV or Parquet); the label is not needed.
    #[arg(long)]
    pub data: PathBuf,
    /// Output file (.csv or .parquet): the id column and `churn_probability`, in input order.
    #[arg(long)]
    pub out: PathBuf,
    /// TOML schema of a flat table (defaults to the schema the model was trained with).
    #[arg(long)]
    pub schema: Option<PathBuf>,
    /// Model registry directory.
    #[arg(long, default_value = "models")]
    pub registry: PathBuf,
}

/// `churnguard models …`.
#[derive(Debug, clap::Subcommand)]
pub enum ModelsCommand {
    /// List every version, marking the champion.
    List(RegistryArg),
    /// Show one version's manifest (id or `champion`).
    Show {
        /// Model id, or `champion`.
        id: String,
        /// Registry.
        #[command(flatten)]
        registry: RegistryArg,
    },
    /// Make a version the champion.
    Promote {
        /// Model id.
        id: String,
        /// Registry.
        #[command(flatten)]
        registry: RegistryArg,
    },
    /// Restore the previous champion.
    Rollback(RegistryArg),
    /// Set the shadow challenger: the server scores every (sampled) request
    /// with it beside the champion, answers with the champion, and records
    /// both for `churnguard monitor`. Without an id, show the current one.
    Shadow {
        /// Model id to shadow the champion.
        #[arg(conflicts_with = "clear")]
        id: Option<String>,
        /// Remove the shadow challenger.
        #[arg(long)]
        clear: bool,
        /// Registry.
        #[command(flatten)]
        registry: RegistryArg,
    },
    /// Promote the shadow challenger to champion (audit-logged with the
    /// comparison it was promoted on; `models rollback` undoes it).
    PromoteShadow(RegistryArg),
}

/// The registry flag shared by `models` subcommands.
#[derive(Debug, clap::Args)]
pub struct RegistryArg {
    /// Model registry directory.
    #[arg(long, default_value = "models")]
    pub registry: PathBuf,
    /// Config file and store (promotions and rollbacks go to its audit log).
    #[command(flatten)]
    pub store: super::actions::StoreArgs,
}

/// Runs a registry change that is audit-logged, with the configured store.
fn audited<T, Fut>(
    store_args: &super::actions::StoreArgs,
    change: impl FnOnce(crate::store::Store) -> Fut,
) -> Result<T>
where
    Fut: std::future::Future<Output = crate::service::Result<T>>,
{
    let config = super::actions::load_config(store_args)?;
    super::actions::runtime()?.block_on(async {
        let store = super::actions::open_store(&config).await?;
        let r = change(store.clone()).await;
        store.close().await;
        anyhow::Ok(r?)
    })
}

fn batch_of(table: &flat::FlatTable) -> Result<Batch> {
    let s = &table.schema;
    Ok(Batch::from_frame(
        &table.frame,
        &s.id,
        &s.columns.numeric,
        &s.columns.categorical,
    )?)
}

/// Progress of a training run on stderr: on a terminal, a one-line bar
/// redrawn per neural epoch; into a file or a pipe, one line per stage and
/// none per epoch, so logs stay readable.
struct ProgressOut {
    terminal: bool,
    bar_open: bool,
}

impl ProgressOut {
    fn new() -> ProgressOut {
        ProgressOut {
            terminal: std::io::IsTerminal::is_terminal(&std::io::stderr()),
            bar_open: false,
        }
    }

    fn show(&mut self, p: train::Progress) {
        use std::io::Write;
        match p {
            train::Progress::Stage(s) => {
                if self.bar_open {
                    eprintln!();
                    self.bar_open = false;
                }
                eprintln!("train: {s}");
            }
            train::Progress::Epoch(e) if self.terminal => {
                let done = (20 * e.epoch / e.max_epochs.max(1)).min(20);
                let auc = e
                    .validation_auc
                    .map_or_else(|| "-".into(), |a| format!("{a:.4}"));
                eprint!(
                    "\rneural [{}{}] epoch {:>3}/{} loss {:.4} val AUC {auc} ({})",
                    "#".repeat(done),
                    " ".repeat(20 - done),
                    e.epoch,
                    e.max_epochs,
                    e.loss,
                    e.device
                );
                let _ = std::io::stderr().flush();
                self.bar_open = true;
            }
            train::Progress::Epoch(_) => {}
        }
    }
}

/// Runs `churnguard train`.
pub fn train(args: &TrainArgs) -> Result<()> {
    let mut config = match &args.config {
        Some(path) => TrainConfig::from_toml(&data::read_text(path)?)
            .with_context(|| format!("{}", path.display()))?,
        None => TrainConfig::default(),
    };
    if !args.families.is_empty() {
        config.families = args.families.clone();
    }
    if let Some(seed) = args.seed {
        config.seed = seed;
    }
    if let Some(cv) = args.cv {
        config.cv_folds = cv;
    }
    if let Some(n) = args.origins {
        config.backtest_origins = n;
    }
    if args.tune {
        config.tune.enabled = true;
    }
    if let Some(b) = args.budget {
        config.tune.budget_secs = b;
    }
    if let Some(r) = args.final_refit {
        config.final_refit = match r {
            FinalRefitArg::Training => train::FinalRefit::Training,
            FinalRefitArg::All => train::FinalRefit::All,
        };
    }
    config.check()?;
    let req = crate::service::TrainRunRequest {
        data: args.data.clone(),
        schema: args.schema.clone(),
        config,
        registry: args.registry.clone(),
        promotion: if args.no_promote {
            crate::service::Promotion::Never
        } else if args.force_promote {
            crate::service::Promotion::Force
        } else {
            crate::service::Promotion::IfBetter
        },
        events: args.events.clone(),
    };
    let neural = crate::neural::NeuralProcess::find();
    let mut out = ProgressOut::new();
    let mut progress = |p: train::Progress| out.show(p);
    let summary = crate::service::train_run(
        &req,
        train::Learners {
            neural: neural.as_ref().map(|n| n as &dyn train::NeuralTrainer),
            progress: &mut progress,
        },
    )?;
    if summary.data.unlabelled > 0 {
        println!(
            "dropped {} rows whose label is not observed yet",
            summary.data.unlabelled
        );
    }
    let report = &summary.report;
    print_leaderboard(report);
    if let Some(dir) = &args.truth {
        print_oracle(dir, &summary.data.input, report)?;
    }
    let config = super::actions::load_config(&super::actions::StoreArgs {
        config: None,
        store: args.store.clone(),
    })?;
    super::actions::runtime()?.block_on(async {
        let store = super::actions::open_store(&config).await?;
        let r = crate::service::record_training(&store, &summary, "cli").await;
        store.close().await;
        anyhow::Ok(r?)
    })?;
    let registry = Registry::open(&args.registry)?;
    println!();
    println!("split: {}", report.split);
    println!(
        "rows: train {}, validation {}, test {}; churners in train: {:.2}%",
        report.rows.0,
        report.rows.1,
        report.rows.2,
        100.0 * report.class_balance
    );
    for (family, why) in &report.skipped {
        println!("skipped {family}: {why}");
    }
    for (r, id) in report.results.iter().zip(&summary.ids) {
        println!(
            "saved {id} ({}) to {}",
            r.model.family(),
            registry.version_dir(id).display()
        );
    }
    let c = &summary.comparison;
    println!(
        "this run's champion: {} (validation ROC-AUC {}); current champion {} on the same {} rows: {}; {}",
        summary.champion_id,
        opt(c.challenger_auc),
        c.current.as_deref().unwrap_or("(none)"),
        c.rows,
        opt(c.current_auc),
        c.reason
    );
    println!("training report: {}", summary.report_path.display());
    let champ = &report.results[report.champion];
    if let ChurnModel::Tree(tree) = &champ.model.model {
        print_rules(tree, &champ.model.preprocessor, 5);
    }
    Ok(())
}

/// The oracle's ROC-AUC on the test rows, from the generator's true hazards.
fn print_oracle(dir: &Path, input: &TrainInput, report: &TrainReport) -> Result<()> {
    let snapshots = input
        .snapshots
        .as_ref()
        .context("--truth needs a feature table (rows with snapshot dates), not a flat table")?;
    let truth = data::load_truth(dir)?;
    let mut by_snapshot: std::collections::BTreeMap<i32, Vec<usize>> = Default::default();
    for (k, &row) in report.test_rows.iter().enumerate() {
        by_snapshot.entry(snapshots[row]).or_default().push(k);
    }
    let mut oracle = vec![0.0; report.test_rows.len()];
    let mut at_snapshot = vec![0.0; report.test_rows.len()];
    for (day, ks) in by_snapshot {
        let ids: Vec<i64> = ks
            .iter()
            .map(|&k| input.batch.ids[report.test_rows[k]].parse::<i64>())
            .collect::<Result<_, _>>()
            .context("customer ids must be integers to match the ground truth")?;
        let probs = data::synthetic::oracle_probability(
            &truth.hazard,
            &ids,
            data::schema::date_from_days(day),
            input.horizon_days,
        )?;
        let now = data::synthetic::snapshot_oracle_probability(
            &truth.hazard,
            &ids,
            data::schema::date_from_days(day),
            input.horizon_days,
        )?;
        for ((k, p), q) in ks.into_iter().zip(probs).zip(now) {
            oracle[k] = p;
            at_snapshot[k] = q;
        }
    }
    let y = &report.results[report.champion].test_labels;
    let oracle_auc = eval::roc_auc(y, &oracle);
    let champ_auc = report.results[report.champion].test.roc_auc;
    let snapshot_auc = eval::roc_auc(y, &at_snapshot);
    println!(
        "oracle at the snapshot state (true hidden state, no future) ROC-AUC: {}; champion gap {}",
        opt(snapshot_auc),
        match (snapshot_auc, champ_auc) {
            (Some(o), Some(c)) => format!("{:.4}", o - c),
            _ => "-".into(),
        }
    );
    println!(
        "oracle (true hazards) ROC-AUC on the same test rows: {}; champion {} (gap {})",
        opt(oracle_auc),
        opt(champ_auc),
        match (oracle_auc, champ_auc) {
            (Some(o), Some(c)) => format!("{:.4}", o - c),
            _ => "-".into(),
        }
    );
    Ok(())
}

fn opt(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.4}"))
}

fn print_leaderboard(report: &TrainReport) {
    println!(
        "{:<10} {:>10} {:>15} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>10} {:>12}",
        "model",
        "val AUC",
        "folds/origins",
        "ROC-AUC",
        "PR-AUC",
        "logloss",
        "Brier",
        "ECE",
        "fit (s)",
        "ms/1k rows",
        "profit(test)"
    );
    let mut order: Vec<usize> = (0..report.results.len()).collect();
    order.sort_by(|a, b| {
        let (x, y) = (
            &report.results[*a].validation,
            &report.results[*b].validation,
        );
        y.roc_auc
            .unwrap_or(0.0)
            .total_cmp(&x.roc_auc.unwrap_or(0.0))
    });
    for i in order {
        let r = &report.results[i];
        let m = &r.test;
        let mark = if i == report.champion { "*" } else { "" };
        println!(
            "{:<10} {:>10} {:>15} {:>8} {:>8} {:>8.4} {:>8.4} {:>8.4} {:>9.2} {:>10.2} {:>12.0}",
            format!("{}{mark}", r.model.family()),
            opt(r.validation.roc_auc),
            format!("{:.4}±{:.4}", r.validation_auc.0, r.validation_auc.1),
            opt(m.roc_auc),
            opt(m.pr_auc),
            m.log_loss,
            m.brier,
            m.ece,
            r.fit_seconds,
            r.predict_ms_per_1k,
            r.test_profit
        );
        if let Some(t) = &r.churn_type {
            println!(
                "{:<10} churn type: ROC-AUC {} on {} test churners ({} involuntary)",
                "",
                opt(t.roc_auc),
                t.churners,
                t.involuntary
            );
        }
    }
    println!("(val AUC chooses the champion, *; the other figures are on held-out test rows)");
}

fn print_rules(tree: &crate::models::TreeModel, pre: &crate::models::Preprocessor, k: usize) {
    println!("riskiest churn paths:");
    for rule in tree.rules(pre).into_iter().take(k) {
        println!("  {rule}");
    }
}

fn scoring_schema(manifest: &Manifest, schema: Option<&Path>) -> Result<flat::FlatSchema> {
    let schema = match schema {
        Some(p) => {
            let s = flat::FlatSchema::load(p)?;
            let (a, b) = (&s.columns, &manifest.input.columns);
            if a.numeric != b.numeric || a.categorical != b.categorical {
                anyhow::bail!(crate::models::ModelError::SchemaMismatch(format!(
                    "{} names inputs numeric {:?} categorical {:?}, but model {} was trained on numeric {:?} categorical {:?}",
                    p.display(),
                    a.numeric,
                    a.categorical,
                    manifest.id,
                    b.numeric,
                    b.categorical
                )));
            }
            s
        }
        None => manifest.input.clone(),
    };
    Ok(schema)
}

fn load_scoring_table(
    manifest: &Manifest,
    data: &Path,
    schema: Option<&Path>,
) -> Result<flat::FlatTable> {
    let schema = scoring_schema(manifest, schema)?;
    Ok(flat::load_inputs(data, &schema)?)
}

/// Runs `churnguard evaluate`.
pub fn evaluate(args: &EvaluateArgs) -> Result<()> {
    let registry = Registry::open(&args.registry)?;
    let (manifest, model) = registry.load(&args.model)?;
    let table = load_scoring_table(&manifest, &args.data, args.schema.as_deref())?;
    if table.frame.column("churned").is_err() {
        anyhow::bail!(data::DataError::MissingColumn {
            path: args.data.clone(),
            column: manifest.input.target.column.clone(),
        });
    }
    let labels = labels_from_frame(&table.frame, "churned")?;
    let keep: Vec<usize> = labels
        .iter()
        .enumerate()
        .filter(|(_, l)| l.is_some())
        .map(|(i, _)| i)
        .collect();
    let y: Vec<u8> = keep
        .iter()
        .map(|&i| labels[i].unwrap_or_default())
        .collect();
    let batch = batch_of(&table)?.select(&keep);
    let p = model.predict(&batch)?;
    let m = eval::evaluate(&y, &p)?;
    println!(
        "model {} ({}) on {} ({} labelled rows)",
        manifest.id,
        manifest.family,
        args.data.display(),
        y.len()
    );
    println!("  ROC-AUC  {}", opt(m.roc_auc));
    println!("  PR-AUC   {}", opt(m.pr_auc));
    println!("  log loss {:.4}", m.log_loss);
    println!("  Brier    {:.4}", m.brier);
    println!("  ECE      {:.4}", m.ece);
    println!(
        "  lift@10% {:.2} (captures {:.1}% of churners)",
        m.lift_10,
        100.0 * m.capture_10
    );
    let c = eval::confusion(&y, &p, manifest.threshold)?;
    println!(
        "  at threshold {:.3}: tp {} fp {} tn {} fn {} (precision {:.3}, recall {:.3})",
        manifest.threshold,
        c.tp,
        c.fp,
        c.tn,
        c.fn_,
        c.precision(),
        c.recall()
    );
    Ok(())
}

/// Runs `churnguard predict`.
pub fn predict(args: &PredictArgs) -> Result<()> {
    // In-process time: what the run costs without the process start-up
    // (the dynamic loader and libtorch's static initialisers).
    let started = std::time::Instant::now();
    let registry = Registry::open(&args.registry)?;
    let (manifest, model) = registry.load(&args.model)?;
    let schema = scoring_schema(&manifest, args.schema.as_deref())?;
    let raw = data::read_raw(&args.data)?;
    let snapshots = raw.column("snapshot_date").ok().cloned();
    let table = flat::inputs_from_frame(raw, &args.data, &schema)?;
    let s = &table.schema;
    // Column by column: no per-row copies of the inputs (logistic models
    // never build the one-hot matrix either).
    let computing = std::time::Instant::now();
    let p = model.predict_frame(
        &table.frame,
        &s.id,
        &s.columns.numeric,
        &s.columns.categorical,
    )?;
    // The model's own time, from the loaded frame to the probabilities
    // (what a scoring engine's compute is compared on).
    let compute = computing.elapsed();
    let id_name = manifest.input.id.clone();
    // The ids as text, as the model reads them.
    let ids = table
        .frame
        .column(&s.id)?
        .cast(&DataType::String)?
        .with_name(id_name.as_str().into());
    let mut columns = vec![ids];
    // A feature table holds a customer once per snapshot: keep the snapshot
    // so that predictions join back to their rows.
    if let Some(snap) = snapshots.filter(|s| s.len() == p.len()) {
        columns.push(snap);
    }
    columns.push(Column::new("churn_probability".into(), p));
    let mut out = DataFrame::new(columns[0].len(), columns)?;
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        data::create_dir(dir)?;
    }
    data::write_frame(&mut out, &args.out)?;
    println!(
        "scored {} rows with {} ({}) into {} in {:.3?} (compute {:.3?})",
        out.height(),
        manifest.id,
        manifest.family,
        args.out.display(),
        started.elapsed(),
        compute
    );
    Ok(())
}

/// Runs `churnguard models …`.
pub fn models(cmd: &ModelsCommand) -> Result<()> {
    match cmd {
        ModelsCommand::List(r) => {
            let registry = Registry::open(&r.registry)?;
            let champion = registry.champion()?;
            let list = registry.list()?;
            if list.is_empty() {
                println!("no models in {}", r.registry.display());
            }
            println!(
                "{:<2}{:<36} {:<9} {:<12} {:>8} {:>8} {:>8}",
                "", "id", "family", "dataset", "ROC-AUC", "PR-AUC", "Brier"
            );
            for m in list {
                let mark = if champion.as_deref() == Some(m.id.as_str()) {
                    "*"
                } else {
                    ""
                };
                println!(
                    "{:<2}{:<36} {:<9} {:<12} {:>8} {:>8} {:>8.4}",
                    mark,
                    m.id,
                    m.family.name(),
                    m.dataset,
                    opt(m.test.roc_auc),
                    opt(m.test.pr_auc),
                    m.test.brier
                );
            }
        }
        ModelsCommand::Show { id, registry } => {
            let registry = Registry::open(&registry.registry)?;
            let (manifest, model) = registry.load(id)?;
            println!("{}", serde_json::to_string_pretty(&manifest)?);
            println!("importance:");
            for (name, v) in model.importance().into_iter().take(10) {
                println!("  {name:<28} {v:.3}");
            }
            match &model.model {
                ChurnModel::Logistic(m) => {
                    println!("odds ratios (per standard deviation, or for the level):");
                    let names = model.preprocessor.encoded_names();
                    let mut pairs: Vec<(String, f64)> =
                        names.into_iter().zip(m.odds_ratios()).collect();
                    pairs.sort_by(|a, b| b.1.ln().abs().total_cmp(&a.1.ln().abs()));
                    for (n, r) in pairs.into_iter().take(12) {
                        println!("  {n:<36} {r:.3}");
                    }
                }
                ChurnModel::Tree(t) => print_rules(t, &model.preprocessor, 12),
                ChurnModel::Neural(_) | ChurnModel::Gbdt(_) => {}
            }
        }
        ModelsCommand::Promote { id, registry: r } => {
            let registry = Registry::open(&r.registry)?;
            audited(&r.store, |store| {
                let (registry, id) = (registry.clone(), id.clone());
                async move { crate::service::promote(&store, &registry, &id, "cli").await }
            })?;
            println!("champion: {}", registry.resolve("champion")?);
        }
        ModelsCommand::Shadow {
            id,
            clear,
            registry: r,
        } => {
            let registry = Registry::open(&r.registry)?;
            if id.is_none() && !clear {
                match registry.shadow()? {
                    Some(s) => println!("shadow: {s}"),
                    None => println!("no shadow challenger"),
                }
                return Ok(());
            }
            let set = audited(&r.store, |store| {
                let (registry, id) = (registry.clone(), id.clone());
                async move { crate::service::set_shadow(&store, &registry, id.as_deref(), "cli").await }
            })?;
            match set {
                Some(id) => println!(
                    "shadow: {id} (a running server picks it up at its next registry check; `churnguard monitor` compares it)"
                ),
                None => println!("shadow challenger removed"),
            }
        }
        ModelsCommand::PromoteShadow(r) => {
            let registry = Registry::open(&r.registry)?;
            let (promoted, previous, report) = audited(&r.store, |store| {
                let registry = registry.clone();
                async move {
                    let shadow = registry.shadow()?;
                    // The comparison the promotion is made on goes into the
                    // audit entry.
                    let report = match &shadow {
                        Some(id) => {
                            let samples = store
                                .shadow_samples(id, crate::service::SHADOW_PAIRS_READ)
                                .await?;
                            Some(crate::service::compare_shadow(id, true, &samples, None))
                        }
                        None => None,
                    };
                    let evidence = serde_json::to_value(&report).unwrap_or_default();
                    let (promoted, previous) =
                        crate::service::promote_shadow(&store, &registry, &evidence, "cli").await?;
                    Ok((promoted, previous, report))
                }
            })?;
            if let Some(a) = report.as_ref().and_then(|r| r.agreement.as_ref()) {
                println!(
                    "compared on {} pairs: rank correlation {}, top-decile agreement {:.1}%, mean shift {:+.4} [{:+.4}, {:+.4}]",
                    a.pairs,
                    a.rank_correlation.map_or("–".into(), |v| format!("{v:.3}")),
                    100.0 * a.top_decile_agreement,
                    a.mean_shift,
                    a.mean_shift_interval.0,
                    a.mean_shift_interval.1
                );
            } else {
                println!("promoted without a comparison: too few recorded pairs");
            }
            println!(
                "champion: {promoted} (was {}); `churnguard models rollback` undoes it",
                previous.as_deref().unwrap_or("none")
            );
        }
        ModelsCommand::Rollback(r) => {
            let registry = Registry::open(&r.registry)?;
            let id = audited(&r.store, |store| {
                let registry = registry.clone();
                async move { crate::service::rollback(&store, &registry, "cli").await }
            })?;
            println!("champion rolled back to {id}");
        }
    }
    Ok(())
}
