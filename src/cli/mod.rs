//! The command-line shell: parse flags, call one library function per
//! subcommand, print what happened. `anyhow` lives here and in `main.rs` only.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use chrono::NaiveDate;
use clap::{Parser, Subcommand, ValueEnum};

mod actions;
mod lifetime;
mod models;

pub use actions::load_config;

use crate::data::{self, flat, synthetic, DataError, Format, LoadOptions};
use crate::error::{ErrorKind, HasKind};
use crate::features::{self, FeatureError, FeatureParams};

/// churnguard: churn prediction and customer health, from raw customer data to action.
#[derive(Debug, Parser)]
#[command(name = "churnguard", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate a synthetic subscription company (every event table plus its ground truth).
    Generate(GenerateArgs),
    /// Build point-in-time features and churn labels from event tables.
    Features(FeaturesArgs),
    /// Validate input data and print a summary: an event-table directory, or a flat table with --schema.
    Inspect(InspectArgs),
    /// Train models (logistic, tree, neural) on a feature table or a flat table; save them to the registry.
    Train(models::TrainArgs),
    /// Metrics of a saved model on new labelled data.
    Evaluate(models::EvaluateArgs),
    /// Churn probability for every row of a file, in input order.
    Predict(models::PredictArgs),
    /// The model registry: list, show, promote, rollback.
    #[command(subcommand)]
    Models(models::ModelsCommand),
    /// Score every active customer at a snapshot: probability, reasons, CLV, health, interventions, KPI.
    Score(actions::ScoreArgs),
    /// Ingest later churn events: save rate of treated customers against the control group.
    Outcomes(actions::OutcomesArgs),
    /// Is the model still fit? Drift of the latest run, realised performance, the triggers' verdict (exit 0 healthy, 4 warning, 5 action).
    Monitor(actions::MonitorArgs),
    /// The uplift model: train it from the experiment on record, or show it.
    #[command(subcommand)]
    Uplift(actions::UpliftCommand),
    /// Generated data only: churn events of a world where each playbook has a known true effect.
    SimulateOutcomes(actions::SimulateArgs),
    /// Employee KPI scorecards of a scoring run (account managers, acquisition reps).
    Kpi(actions::KpiArgs),
    /// List the scoring runs in the store.
    Runs(actions::StoreArgs),
    /// The audit log: verify its hash chain, or show entries.
    #[command(subcommand)]
    Audit(actions::AuditCommand),
    /// Check or show the configuration (churnguard.toml).
    #[command(subcommand)]
    Config(actions::ConfigCommand),
    /// Serve the HTTP API: scoring, risk lists, interventions, KPI, models, metrics.
    Serve(actions::ServeArgs),
    /// Deliver interventions to the configured webhooks ([serve.delivery]): one pass (for a
    /// scheduler), --drain until none is pending, --list the outbox, or --retry a dead one.
    Deliver(actions::DeliverArgs),
    /// API keys: hash one for the config, or make a new one.
    #[command(subcommand)]
    Keys(actions::KeysCommand),
    /// Cohort retention by signup month (and plan): observed survivors and the
    /// shifted-beta-geometric projection.
    Retention(lifetime::RetentionArgs),
    /// Run the main job on the embedded default data: generate, features, train, score, act, KPI.
    Demo(DemoArgs),
    /// Split an event-table directory by customer into N hive-style parts (part=K/) that
    /// `features` then processes one at a time, in memory bounded by a part.
    Partition(PartitionArgs),
}

/// Flags of `churnguard partition`.
#[derive(Debug, clap::Args)]
pub struct PartitionArgs {
    /// Directory holding the event tables.
    #[arg(long)]
    pub data: PathBuf,
    /// Number of parts (a customer's part: stable hash of its id mod N).
    #[arg(long)]
    pub partitions: u32,
    /// Output directory: part=0/ .. part=N-1/ and partitions.json.
    #[arg(long)]
    pub out: PathBuf,
    /// Reject dates after this day as future dates (default: today).
    #[arg(long)]
    pub as_of: Option<NaiveDate>,
}

/// Flags of `churnguard generate`.
#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    /// Number of customers.
    #[arg(long, default_value_t = 5000)]
    pub customers: usize,
    /// Months simulated.
    #[arg(long, default_value_t = 24)]
    pub months: u32,
    /// Random seed; the same seed gives the same company.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// First day of the simulated period (YYYY-MM-DD).
    #[arg(long, default_value = "2023-01-01")]
    pub start: NaiveDate,
    /// The drift scenario: from this day a billing-provider change triples first-attempt card failures (data/README.md).
    #[arg(long)]
    pub billing_change_from: Option<NaiveDate>,
    /// Output directory (created if absent).
    #[arg(long)]
    pub out: PathBuf,
    /// File format of the tables.
    #[arg(long, value_enum, default_value_t = FormatArg::Parquet)]
    pub format: FormatArg,
}

/// Table file format.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    /// Apache Parquet.
    Parquet,
    /// CSV with a header.
    Csv,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Format {
        match f {
            FormatArg::Parquet => Format::Parquet,
            FormatArg::Csv => Format::Csv,
        }
    }
}

/// Flags of `churnguard features`.
#[derive(Debug, clap::Args)]
pub struct FeaturesArgs {
    /// Directory holding the event tables (`<table>.parquet` or `<table>.csv`).
    #[arg(long)]
    pub data: PathBuf,
    /// Snapshot date (YYYY-MM-DD), repeatable; `latest` means the day after the data ends.
    /// Default: every --every-months months whose horizon is fully observed.
    #[arg(long = "snapshot")]
    pub snapshots: Vec<String>,
    /// Months between default snapshots.
    #[arg(long, default_value_t = 3)]
    pub every_months: u32,
    /// Label horizon in days: churned in (snapshot, snapshot + horizon].
    #[arg(long, default_value_t = 90)]
    pub horizon: u32,
    /// Output file: `.parquet` or `.csv`. A `<out>.schema.json` is written beside it.
    #[arg(long)]
    pub out: PathBuf,
    /// Reject dates after this day as future dates (default: today).
    #[arg(long)]
    pub as_of: Option<NaiveDate>,
}

/// Flags of `churnguard inspect`.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// An event-table directory, or a flat CSV/Parquet file (with --schema).
    #[arg(long)]
    pub data: PathBuf,
    /// TOML schema naming the roles of a flat table's columns.
    #[arg(long)]
    pub schema: Option<PathBuf>,
    /// Reject dates after this day as future dates (default: today).
    #[arg(long)]
    pub as_of: Option<NaiveDate>,
}

/// Flags of `churnguard demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Working directory for the generated data and outputs.
    #[arg(long, default_value = "target/demo")]
    pub out: PathBuf,
    /// Number of customers.
    #[arg(long, default_value_t = 5000)]
    pub customers: usize,
    /// Random seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// churnguard.toml for scoring, health, interventions and KPI (default: the shipped presets).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// Runs a parsed command line and returns the process exit code: 0 on
/// success, 2 for bad input, a missing thing or a conflict, 6 when a
/// resource (the database) is unavailable, 3 for a broken audit chain, 4 and
/// 5 for `monitor`'s warning and action verdicts, 1 for our own failures
/// (see `ErrorKind::exit_code`).
pub fn run(cli: Cli) -> ExitCode {
    match dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            if let Some(alert) = err.downcast_ref::<actions::MonitorAlert>() {
                // Not a failure: the report is printed; the code is the verdict.
                return ExitCode::from(match alert.0 {
                    crate::monitor::Verdict::Warning => 4,
                    _ => 5,
                });
            }
            eprintln!("error: {err:#}");
            ExitCode::from(exit_code(&err))
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// The exit code of a failed command: 3 when the audit chain is broken, else
/// the [`ErrorKind`]'s code (`ErrorKind::exit_code`, the one table shared
/// with the server's HTTP statuses). The first cause in the chain that
/// knows its kind decides; an error nobody classified is internal (1).
fn exit_code(err: &anyhow::Error) -> u8 {
    if err
        .chain()
        .any(|c| c.downcast_ref::<actions::AuditBroken>().is_some())
    {
        return 3;
    }
    error_kind(err).exit_code()
}

/// The kind of the first cause in the chain that knows its kind.
pub(crate) fn error_kind(err: &anyhow::Error) -> ErrorKind {
    fn of<E: HasKind + std::error::Error + 'static>(
        cause: &(dyn std::error::Error + 'static),
    ) -> Option<ErrorKind> {
        cause.downcast_ref::<E>().map(HasKind::kind)
    }
    for cause in err.chain() {
        let kind = of::<crate::service::ServiceError>(cause)
            .or_else(|| of::<crate::train::TrainError>(cause))
            .or_else(|| of::<crate::registry::RegistryError>(cause))
            .or_else(|| of::<crate::store::StoreError>(cause))
            .or_else(|| of::<crate::serve::ServeError>(cause))
            .or_else(|| of::<crate::serve::delivery::DeliveryError>(cause))
            .or_else(|| of::<churnguard_app::ConfigError>(cause))
            .or_else(|| of::<DataError>(cause))
            .or_else(|| of::<FeatureError>(cause))
            .or_else(|| of::<crate::models::ModelError>(cause))
            .or_else(|| of::<crate::eval::EvalError>(cause))
            .or_else(|| of::<UsageError>(cause));
        if let Some(kind) = kind {
            return kind;
        }
    }
    ErrorKind::Internal
}

/// A flag value that clap could not check by itself.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct UsageError(pub(crate) String);

impl HasKind for UsageError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::BadInput
    }
}

fn dispatch(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Generate(args) => generate(&args),
        Command::Features(args) => build_features(&args),
        Command::Inspect(args) => inspect(&args),
        Command::Train(args) => models::train(&args),
        Command::Evaluate(args) => models::evaluate(&args),
        Command::Predict(args) => models::predict(&args),
        Command::Models(cmd) => models::models(&cmd),
        Command::Score(args) => actions::score(&args),
        Command::Outcomes(args) => actions::outcomes(&args),
        Command::Uplift(cmd) => actions::uplift(&cmd),
        Command::Monitor(args) => actions::monitor(&args),
        Command::SimulateOutcomes(args) => actions::simulate(&args),
        Command::Kpi(args) => actions::kpi(&args),
        Command::Retention(args) => lifetime::retention(&args),
        Command::Runs(args) => actions::runs(&args),
        Command::Audit(cmd) => actions::audit(&cmd),
        Command::Config(cmd) => actions::config(&cmd),
        Command::Serve(args) => actions::serve(&args),
        Command::Deliver(args) => actions::deliver(&args),
        Command::Keys(cmd) => actions::keys(&cmd),
        Command::Demo(args) => demo(&args),
        Command::Partition(args) => partition(&args),
    }
}

fn generate(args: &GenerateArgs) -> Result<()> {
    let params = synthetic::GeneratorParams {
        n_customers: args.customers,
        months: args.months,
        seed: args.seed,
        start: args.start,
        billing_change: args.billing_change_from,
    };
    let t0 = Instant::now();
    let mut company = synthetic::generate(&params)?;
    let t_gen = t0.elapsed();
    data::write_company(&mut company, &args.out, args.format.into())?;
    let t = &company.tables;
    println!(
        "generated {} customers over {} months (seed {}) into {} in {:.2?} ({:.2?} simulating)",
        args.customers,
        args.months,
        args.seed,
        args.out.display(),
        t0.elapsed(),
        t_gen
    );
    for (name, df) in t.iter() {
        println!("  {name:<14} {:>10} rows", df.height());
    }
    Ok(())
}

fn parse_snapshots(args: &FeaturesArgs, tables: &data::Tables) -> Result<Vec<NaiveDate>> {
    if args.snapshots.is_empty() {
        return Ok(features::default_snapshots(
            tables,
            args.horizon,
            args.every_months,
        )?);
    }
    args.snapshots
        .iter()
        .map(|s| {
            if s == "latest" {
                Ok(features::latest_snapshot(tables)?)
            } else {
                NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| {
                    UsageError(format!("--snapshot {s:?}: expected YYYY-MM-DD or `latest`")).into()
                })
            }
        })
        .collect()
}

fn load_options(as_of: Option<NaiveDate>) -> LoadOptions {
    as_of.map_or_else(LoadOptions::default, |as_of| LoadOptions { as_of })
}

fn partition(args: &PartitionArgs) -> Result<()> {
    let t0 = Instant::now();
    let m = data::partition::write_partitioned(
        &args.data,
        &args.out,
        args.partitions,
        load_options(args.as_of),
    )?;
    let sizes: Vec<String> = m.customers.iter().map(usize::to_string).collect();
    println!(
        "partition: {} customers into {} parts under {} (customers per part: {}) in {:.2?}; data {} .. {}",
        m.customers.iter().sum::<usize>(),
        m.partitions,
        args.out.display(),
        sizes.join(", "),
        t0.elapsed(),
        m.first_signup,
        m.data_end
    );
    Ok(())
}

/// `features` on a partitioned folder: one part at a time, each part's rows
/// streamed into the output file, so memory holds one part.
fn build_partitioned_features(
    args: &FeaturesArgs,
    m: &data::partition::PartitionManifest,
) -> Result<()> {
    let t0 = Instant::now();
    let snapshots: Vec<NaiveDate> = if args.snapshots.is_empty() {
        features::snapshots_between(m.first_signup, m.data_end, args.horizon, args.every_months)?
    } else {
        args.snapshots
            .iter()
            .map(|s| {
                if s == "latest" {
                    Ok(m.data_end + chrono::Duration::days(1))
                } else {
                    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| {
                        UsageError(format!("--snapshot {s:?}: expected YYYY-MM-DD or `latest`"))
                            .into()
                    })
                }
            })
            .collect::<Result<_>>()?
    };
    if data::Format::from_path(&args.out) != Some(data::Format::Parquet) {
        return Err(UsageError(format!(
            "--out {}: a partitioned run writes Parquet (.parquet)",
            args.out.display()
        ))
        .into());
    }
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        data::create_dir(dir)?;
    }
    let params = FeatureParams {
        snapshots: snapshots.clone(),
        horizon_days: args.horizon,
    };
    let mut sink = data::ParquetSink::new(&args.out);
    let (mut labelled, mut churned) = (0usize, 0i64);
    for k in 0..m.partitions {
        let dir = data::partition::part_dir(&args.data, k);
        let tables = data::load_tables(&dir, load_options(args.as_of))?;
        // The company's data end, not the part's: a label is observed when its
        // horizon is, company-wide.
        let table = features::build_features_until(&tables, &params, m.data_end)?;
        let c = table.column("churned")?.i32()?;
        labelled += c.len() - c.null_count();
        churned += c.iter().flatten().map(i64::from).sum::<i64>();
        sink.write(&table)?;
    }
    let rows = sink.finish()?;
    data::write_text(
        &PathBuf::from(format!("{}.schema.json", args.out.display())),
        &features::schema_json(args.horizon),
    )?;
    println!(
        "features: {rows} rows at {} snapshot(s) ({} .. {}) from {} parts into {} in {:.2?}",
        snapshots.len(),
        snapshots.first().expect("at least one"),
        snapshots.last().expect("at least one"),
        m.partitions,
        args.out.display(),
        t0.elapsed()
    );
    if labelled > 0 {
        println!(
            "  labelled rows: {labelled}, churned: {churned} ({:.2}%)",
            100.0 * churned as f64 / labelled as f64
        );
    }
    Ok(())
}

fn build_features(args: &FeaturesArgs) -> Result<()> {
    if let Some(m) = data::partition::read_manifest(&args.data)? {
        return build_partitioned_features(args, &m);
    }
    let t0 = Instant::now();
    let tables = data::load_tables(&args.data, load_options(args.as_of))?;
    let snapshots = parse_snapshots(args, &tables)?;
    let params = FeatureParams {
        snapshots: snapshots.clone(),
        horizon_days: args.horizon,
    };
    let mut table = features::build_features(&tables, &params)?;
    write_features(&mut table, &args.out, args.horizon)?;
    println!(
        "features: {} rows x {} columns at {} snapshot(s) ({} .. {}) into {} in {:.2?}",
        table.height(),
        table.width(),
        snapshots.len(),
        snapshots.first().expect("at least one"),
        snapshots.last().expect("at least one"),
        args.out.display(),
        t0.elapsed()
    );
    print_label_summary(&table)?;
    Ok(())
}

fn write_features(table: &mut polars::prelude::DataFrame, out: &Path, horizon: u32) -> Result<()> {
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        data::create_dir(dir)?;
    }
    data::write_frame(table, out)?;
    let schema_path = PathBuf::from(format!("{}.schema.json", out.display()));
    data::write_text(&schema_path, &features::schema_json(horizon))?;
    Ok(())
}

fn print_label_summary(table: &polars::prelude::DataFrame) -> Result<()> {
    let churned = table.column("churned")?.i32()?;
    let observed = churned.len() - churned.null_count();
    let positives: i64 = churned.iter().flatten().map(i64::from).sum();
    let types = table.column("churn_type")?.str()?;
    let involuntary = types.iter().filter(|t| *t == Some("involuntary")).count();
    if observed > 0 {
        println!(
            "  labelled rows: {observed}, churned: {positives} ({:.2}%), involuntary share of churn: {:.1}%",
            100.0 * positives as f64 / observed as f64,
            100.0 * involuntary as f64 / positives.max(1) as f64
        );
    } else {
        println!("  no labelled rows (horizon extends past the data): ready for scoring");
    }
    Ok(())
}

fn inspect(args: &InspectArgs) -> Result<()> {
    if let Some(schema_path) = &args.schema {
        let schema = flat::FlatSchema::load(schema_path)?;
        let table = flat::load_flat(&args.data, &schema)?;
        print!("{}", table.summary);
        return Ok(());
    }
    if args.data.is_file() {
        return Err(UsageError(format!(
            "{} is a single file: give --schema to read it as a flat table, or --data DIR for event tables",
            args.data.display()
        ))
        .into());
    }
    let tables = data::load_tables(&args.data, load_options(args.as_of))?;
    println!(
        "{}: all {} tables valid",
        args.data.display(),
        data::TABLES.len()
    );
    for (name, df) in tables.iter() {
        println!("  {name:<14} {:>10} rows", df.height());
    }
    let customers = tables.customers.height();
    let churned = tables.churn_events.height();
    let involuntary = tables
        .churn_events
        .column("churn_type")?
        .str()?
        .iter()
        .filter(|t| *t == Some("involuntary"))
        .count();
    println!(
        "  churned customers: {churned} of {customers} ({:.1}%), involuntary: {involuntary} ({:.1}% of churn)",
        100.0 * churned as f64 / customers.max(1) as f64,
        100.0 * involuntary as f64 / churned.max(1) as f64
    );
    if let Some(end) = tables.data_end() {
        println!("  data ends: {end}");
    }
    Ok(())
}

fn demo(args: &DemoArgs) -> Result<()> {
    let data_dir = args.out.join("data");
    println!("== 1. generate a company ==");
    generate(&GenerateArgs {
        customers: args.customers,
        months: 24,
        seed: args.seed,
        start: NaiveDate::from_ymd_opt(2023, 1, 1).context("start date")?,
        billing_change_from: None,
        out: data_dir.clone(),
        format: FormatArg::Parquet,
    })?;
    println!("\n== 2. point-in-time features ==");
    let features_path = args.out.join("features.parquet");
    build_features(&FeaturesArgs {
        data: data_dir.clone(),
        snapshots: Vec::new(),
        every_months: 3,
        horizon: 90,
        out: features_path.clone(),
        as_of: None,
    })?;
    // A fresh store for this demo: the training run's promotion, then the
    // scoring runs, outcomes and scorecards go into it.
    let db = args.out.join("churnguard.db");
    for suffix in ["", "-wal", "-shm"] {
        let p = PathBuf::from(format!("{}{suffix}", db.display()));
        if p.exists() {
            fs_err::remove_file(&p)?;
        }
    }
    let store = actions::StoreArgs {
        config: args.config.clone(),
        store: Some(format!("sqlite://{}", db.display())),
    };
    println!("\n== 3. train and compare models ==");
    let models_dir = args.out.join("models");
    models::train(&models::TrainArgs {
        data: features_path.clone(),
        schema: None,
        config: None,
        families: Vec::new(),
        seed: Some(args.seed),
        cv: None,
        origins: None,
        tune: false,
        budget: None,
        final_refit: None,
        registry: models_dir.clone(),
        no_promote: false,
        force_promote: false,
        store: store.store.clone(),
        events: Some(data_dir.clone()),
        truth: Some(data_dir.clone()),
    })?;

    // The action loop: monthly runs ending today, outcomes of the runs old
    // enough to have them, scorecards.
    let tables = data::load_tables(&data_dir, LoadOptions::default())?;
    let latest = features::latest_snapshot(&tables)?;
    let data_end = tables.data_end().context("generated data has dates")?;
    let runs_dir = args.out.join("runs");
    let snapshots = [
        latest - chrono::Duration::days(121),
        latest - chrono::Duration::days(91),
        latest,
    ];
    for (k, snapshot) in snapshots.iter().enumerate() {
        println!(
            "\n== 4.{} score, health, interventions, KPI at {snapshot} ==",
            k + 1
        );
        actions::score(&actions::ScoreArgs {
            model: "champion".into(),
            data: data_dir.clone(),
            out: runs_dir.join(snapshot.to_string()),
            snapshot: snapshot.to_string(),
            schema: None,
            registry: models_dir.clone(),
            run_id: Some(format!("demo-{snapshot}")),
            as_of: None,
            transactions: None,
            store: store.clone(),
        })?;
    }
    println!("\n== 5. outcomes: treated against the hold-out control group ==");
    println!(
        "(generated data: the generator lets each playbook prevent a known share of the churns it can reach)"
    );
    let effects: Vec<String> = [
        ("payment_recovery", 0.5),
        ("executive_escalation", 0.35),
        ("csm_call", 0.3),
        ("success_plan_checkin", 0.2),
        ("nurture_email", 0.05),
    ]
    .iter()
    .map(|(p, e)| format!("{p}={e}"))
    .collect();
    println!("true effects: {}", effects.join(", "));
    let treated_world = args.out.join("outcomes");
    actions::simulate(&actions::SimulateArgs {
        data: data_dir.clone(),
        effects,
        seed: args.seed,
        out: treated_world.clone(),
        store: store.clone(),
    })?;
    actions::outcomes(&actions::OutcomesArgs {
        events: treated_world.join("churn_events.parquet"),
        observed_until: Some(data_end),
        store: store.clone(),
    })?;
    println!("\n== 6. employee KPI scorecards (latest run) ==");
    actions::kpi(&actions::KpiArgs {
        run: "latest".into(),
        role: None,
        stage: None,
        top: 5,
        out: Some(args.out.join("scorecards.json")),
        store: store.clone(),
    })?;
    let latest_dir = runs_dir.join(latest.to_string());
    let champion = crate::registry::Registry::open(&models_dir)?.resolve("champion")?;
    println!();
    println!("demo done:");
    println!(
        "  risk list (today):        {}",
        latest_dir.join("risk_list.csv").display()
    );
    println!(
        "  scores (Parquet):         {}",
        latest_dir.join("scores.parquet").display()
    );
    println!(
        "  interventions (today):    {}",
        latest_dir.join("interventions.csv").display()
    );
    println!(
        "  KPI scorecards:           {}",
        latest_dir.join("kpi_account_manager.csv").display()
    );
    println!(
        "                            {}",
        latest_dir.join("kpi_acquisition.csv").display()
    );
    println!(
        "  training report:          {}",
        models_dir.join(&champion).join("report.html").display()
    );
    println!("  model registry:           {}", models_dir.display());
    println!(
        "  store (runs, history, interventions, audit log): {}",
        db.display()
    );
    println!("  event tables and ground truth: {}", data_dir.display());
    Ok(())
}
