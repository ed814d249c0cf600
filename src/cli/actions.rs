//! `score`, `outcomes`, `simulate-outcomes`, `kpi`, `runs`, `audit` and
//! `config`: the customer-success side of the command line. Each parses its
//! flags, loads the config, and calls one service or store function.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::NaiveDate;

use super::UsageError;
use crate::config::Config;
use crate::data;
use crate::interventions::{OutcomeReport, SaveRate};
use crate::service::{self, OutcomesRequest, ScoreRunRequest, SimulateRequest};
use crate::store::Store;

/// Flags every command that reads the config or the store shares.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreArgs {
    /// Config file (TOML). Defaults to ./churnguard.toml when present, else the built-in presets.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Store URL: sqlite://PATH or postgres://… (overrides the config and CHURNGUARD_DATABASE_URL).
    #[arg(long)]
    pub store: Option<String>,
}

/// Flags of `churnguard score`.
#[derive(Debug, clap::Args)]
pub struct ScoreArgs {
    /// Model id, or `champion`.
    #[arg(long, default_value = "champion")]
    pub model: String,
    /// An event-table directory (features are built at the snapshot), a feature
    /// table from `churnguard features`, or a flat table with --schema.
    #[arg(long)]
    pub data: PathBuf,
    /// Output directory: scores (Parquet and CSV), risk list, interventions, scorecards, summary.
    #[arg(long)]
    pub out: PathBuf,
    /// Snapshot date (YYYY-MM-DD) or `latest` (the day after the data ends).
    #[arg(long, default_value = "latest")]
    pub snapshot: String,
    /// TOML schema of a flat table (defaults to the model's).
    #[arg(long)]
    pub schema: Option<PathBuf>,
    /// Model registry directory.
    #[arg(long, default_value = "models")]
    pub registry: PathBuf,
    /// Id of this run (default: run-<snapshot>-<time>).
    #[arg(long)]
    pub run_id: Option<String>,
    /// Reject event dates after this day (default: today).
    #[arg(long)]
    pub as_of: Option<NaiveDate>,
    /// --data is a transaction log of customers without contracts
    /// (`customer_id`, `date` and this amount column, `amount` by default):
    /// scored with BG/NBD and Gamma-Gamma fitted on it, no model needed.
    #[arg(long, value_name = "AMOUNT_COLUMN", num_args = 0..=1, default_missing_value = "amount")]
    pub transactions: Option<String>,
    /// Config and store.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Flags of `churnguard outcomes`.
#[derive(Debug, clap::Args)]
pub struct OutcomesArgs {
    /// Later churn events: an event-table directory or a churn_events CSV/Parquet file.
    #[arg(long)]
    pub events: PathBuf,
    /// Last day the churn data covers (default: an event-table directory's data end; required for a lone churn_events file).
    #[arg(long)]
    pub observed_until: Option<NaiveDate>,
    /// Config and store.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Flags of `churnguard monitor`.
#[derive(Debug, clap::Args)]
pub struct MonitorArgs {
    /// Model registry (each run's model and its test ROC-AUC).
    #[arg(long, default_value = "models")]
    pub registry: PathBuf,
    /// Later churn events (an event-table directory or a churn_events file): realised performance of the runs whose horizon has passed.
    #[arg(long)]
    pub events: Option<PathBuf>,
    /// Last day the churn events cover (default: an event-table directory's data end).
    #[arg(long)]
    pub observed_until: Option<NaiveDate>,
    /// Also write the report as JSON here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Config and store.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// A monitor verdict other than healthy: the process exits 4 (warning) or
/// 5 (action), so a scheduler can act on it.
#[derive(Debug, thiserror::Error)]
#[error("the monitor's verdict is {}", .0.name())]
pub struct MonitorAlert(pub crate::monitor::Verdict);

/// Runs `churnguard monitor`.
pub fn monitor(args: &MonitorArgs) -> Result<()> {
    let config = load_config(&args.store)?;
    let req = service::MonitorRequest {
        registry: args.registry.clone(),
        events: args.events.clone(),
        observed_until: args.observed_until,
    };
    let report = runtime()?.block_on(async {
        let store = open_store(&config).await?;
        let r = service::monitor(&req, &config.app, &store).await;
        store.close().await;
        anyhow::Ok(r?)
    })?;
    let run = &report.run;
    println!(
        "latest run {} (snapshot {}, model {}, {} customers)",
        run.run_id, run.snapshot_date, run.model_id, run.customers
    );
    match &report.drift {
        None => println!("drift: the model has no training baseline (saved before baselines were kept); retrain to monitor drift"),
        Some(d) => {
            println!(
                "drift against the training baseline ({} rows): score PSI {:.3}, JS {:.3}: {}",
                d.rows,
                d.score.psi,
                d.score.js,
                d.score.level.name()
            );
            for i in d.inputs.iter().take(10) {
                println!(
                    "  {:<28} PSI {:>6.3}  JS {:>5.3}  {}{}",
                    i.name,
                    i.psi,
                    i.js,
                    i.level.name(),
                    if i.calendar {
                        "  (moves with the calendar: not counted)"
                    } else {
                        ""
                    }
                );
            }
        }
    }
    match &report.realised {
        None if args.events.is_some() => {
            println!("realised: no run's horizon has passed in these churn events yet")
        }
        None => println!("realised: pass --events with later churn events to measure it"),
        Some(r) => {
            let m = &r.realised;
            println!(
                "realised on run {} ({}, model {}): {} customers, {} churned; ROC-AUC {} (at training {}), PR-AUC {}, Brier {:.4}, calibration error {:.4}, top-decile lift {:.2}",
                r.run_id,
                r.snapshot_date,
                r.model_id,
                m.customers,
                m.churned,
                m.roc_auc.map_or("–".into(), |v| format!("{v:.4}")),
                r.trained_roc_auc.map_or("–".into(), |v| format!("{v:.4}")),
                m.pr_auc.map_or("–".into(), |v| format!("{v:.4}")),
                m.brier,
                m.calibration_error,
                m.lift_top_decile
            );
        }
    }
    if let Some(sh) = &report.shadow {
        print_shadow(sh, args.events.is_some());
    }
    for f in &report.findings {
        println!("  [{}] {}", f.verdict.name(), f.message);
    }
    println!("verdict: {}", report.verdict.name());
    if let Some(out) = &args.out {
        data::write_text(out, &serde_json::to_string_pretty(&report)?)?;
        println!("wrote {}", out.display());
    }
    match report.verdict {
        crate::monitor::Verdict::Healthy => Ok(()),
        v => Err(MonitorAlert(v).into()),
    }
}

fn print_shadow(sh: &service::ShadowReport, events: bool) {
    let champions: Vec<String> = sh
        .champions
        .iter()
        .map(|(id, n)| format!("{id} ({n})"))
        .collect();
    println!(
        "shadow challenger {}{}: {} pairs, {} customers, against {}",
        sh.shadow_model,
        if sh.current {
            ""
        } else {
            " (no longer the shadow)"
        },
        sh.pairs,
        sh.customers,
        champions.join(", ")
    );
    match &sh.agreement {
        None => println!(
            "  agreement: fewer than {} pairs, no comparison yet",
            crate::monitor::MIN_SHADOW_PAIRS
        ),
        Some(a) => println!(
            "  rank correlation {}, top-decile agreement {:.1}%, mean shift (shadow − champion) {:+.4} [95% {:+.4}, {:+.4}], mean |shift| {:.4}",
            a.rank_correlation.map_or("–".into(), |v| format!("{v:.3}")),
            100.0 * a.top_decile_agreement,
            a.mean_shift,
            a.mean_shift_interval.0,
            a.mean_shift_interval.1,
            a.mean_absolute_shift
        ),
    }
    let auc = |v: Option<f64>| v.map_or("–".into(), |v| format!("{v:.4}"));
    match &sh.realised {
        None if events => println!(
            "  realised: no shadow-scored customer's horizon has passed in these events yet"
        ),
        None => println!("  realised: pass --events with later churn events to measure it"),
        Some(r) => {
            println!(
                "  realised on {} customers ({} churned): ROC-AUC champion {} shadow {}, difference {}{}; Brier champion {:.4} shadow {:.4}",
                r.champion.customers,
                r.champion.churned,
                auc(r.champion.roc_auc),
                auc(r.shadow.roc_auc),
                r.roc_auc_difference.map_or("–".into(), |v| format!("{v:+.4}")),
                r.roc_auc_difference_interval
                    .map_or(String::new(), |(lo, hi)| format!(" [95% {lo:+.4}, {hi:+.4}]")),
                r.champion.brier,
                r.shadow.brier
            );
            if r.roc_auc_difference_interval
                .is_some_and(|(lo, _)| lo > 0.0)
            {
                println!("  the shadow ranks better beyond the interval: `churnguard models promote-shadow` promotes it");
            }
        }
    }
}

/// `churnguard uplift`: the uplift model behind `targeting = "uplift"`.
#[derive(Debug, clap::Subcommand)]
pub enum UpliftCommand {
    /// Fit it from the interventions on record (treated and control) and the churn observed after them; saved as the uplift champion.
    Train {
        /// Event tables whose churn events cover the outcome windows of the interventions.
        #[arg(long)]
        data: PathBuf,
        /// Model registry (the uplift model goes to its `uplift/` folder).
        #[arg(long, default_value = "models")]
        registry: PathBuf,
        /// Config and store.
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Show the uplift champion: arms and held-out Qini per playbook.
    Show {
        /// Model registry.
        #[arg(long, default_value = "models")]
        registry: PathBuf,
    },
}

/// Prints an uplift manifest.
fn print_uplift(m: &service::UpliftManifest) {
    println!(
        "uplift model {} from {} ({} decision days, {} untreated customers, {}-day window, {} decisions not settled):",
        m.id, m.data, m.decision_days, m.untreated, m.window_days, m.unsettled
    );
    for p in &m.playbooks {
        match (&p.held_out, &p.skipped) {
            (Some(q), skipped) => {
                println!(
                    "  {:<22} treated {:>6}, control {:>5}; held out {} treated, {} control: Qini coefficient {:+.4} (90% interval {:+.4} to {:+.4}), AUUC {:.4} (random {:.4})",
                    p.playbook, p.treated, p.control, q.treated, q.control, q.qini_coefficient,
                    q.qini_interval[0], q.qini_interval[1], q.auuc, q.auuc_random
                );
                if let Some(why) = skipped {
                    println!("  {:<22} no model: {why}", "");
                }
            }
            (None, why) => println!(
                "  {:<22} treated {:>6}, control {:>5}: no model ({})",
                p.playbook,
                p.treated,
                p.control,
                why.as_deref().unwrap_or("no held-out outcomes")
            ),
        }
    }
}

/// Runs `churnguard uplift`.
pub fn uplift(cmd: &UpliftCommand) -> Result<()> {
    match cmd {
        UpliftCommand::Train {
            data,
            registry,
            store,
        } => {
            let config = load_config(store)?;
            let req = service::UpliftTrainRequest {
                data: data.clone(),
                registry: registry.clone(),
            };
            let manifest = runtime()?.block_on(async {
                let store = open_store(&config).await?;
                let r = service::train_uplift(&req, &config.app, &store).await;
                store.close().await;
                anyhow::Ok(r?)
            })?;
            print_uplift(&manifest);
            println!(
                "saved as the uplift champion in {}",
                service::uplift_dir(registry).display()
            );
        }
        UpliftCommand::Show { registry } => {
            let (manifest, _) = service::load_uplift(registry)?;
            print_uplift(&manifest);
        }
    }
    Ok(())
}

/// Flags of `churnguard simulate-outcomes`.
#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// Generated data directory (its churn events are the untreated world).
    #[arg(long)]
    pub data: PathBuf,
    /// True effect per playbook: share of reachable churns it prevents, e.g.
    /// `csm_call=0.3,nurture_email=0.05`.
    #[arg(long, value_delimiter = ',', required = true)]
    pub effects: Vec<String>,
    /// Seed of the coins.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Directory for the treated world's churn_events.parquet.
    #[arg(long)]
    pub out: PathBuf,
    /// Config and store.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Flags of `churnguard kpi`.
#[derive(Debug, clap::Args)]
pub struct KpiArgs {
    /// Scoring run id, or `latest`.
    #[arg(long, default_value = "latest")]
    pub run: String,
    /// Role: account_manager or acquisition (default: both).
    #[arg(long)]
    pub role: Option<crate::kpi::Role>,
    /// Stage: balanced, growth or mature (default: the config's).
    #[arg(long)]
    pub stage: Option<crate::kpi::Stage>,
    /// Rows to print per role.
    #[arg(long, default_value_t = 15)]
    pub top: usize,
    /// Also write the scorecards as JSON here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Config and store.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// `churnguard audit …`.
#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Check the audit log's hash chain (keyed entries with CHURNGUARD_AUDIT_KEY); exit 3 when it
    /// is broken.
    Verify {
        /// A head exported earlier by `audit head`: the chain must still hold it (a cut tail or a
        /// rewrite is found).
        #[arg(long, value_name = "FILE")]
        head: Option<PathBuf>,
        /// Config and store.
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Export the newest entry's sequence and hash (JSON), to keep outside the database and check
    /// later with `audit verify --head`.
    Head {
        /// Write it here (atomically) instead of printing it.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Config and store.
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Print the newest audit entries.
    Show {
        /// Entries to print.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Config and store.
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// `churnguard config …`.
#[derive(Debug, clap::Subcommand)]
pub enum ConfigCommand {
    /// Check a config file; print the first bad key.
    Check(StoreArgs),
    /// Print the effective config as TOML.
    Show(StoreArgs),
}

/// Loads the layered config: defaults < file < environment < flags.
pub fn load_config(args: &StoreArgs) -> Result<Config> {
    let default_file = Path::new("churnguard.toml");
    let path = args
        .config
        .clone()
        .or_else(|| default_file.is_file().then(|| default_file.to_path_buf()));
    let mut config = match &path {
        Some(p) => Config::from_toml(&data::read_text(p)?, &p.display().to_string())?,
        None => Config::default(),
    };
    if let Ok(url) = std::env::var("CHURNGUARD_DATABASE_URL") {
        if !url.trim().is_empty() {
            config.app.store.url = url;
        }
    }
    if let Some(url) = &args.store {
        config.app.store.url = url.clone();
    }
    Ok(config)
}

pub(super) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Connects to the configured store, keying its audit entries with
/// `CHURNGUARD_AUDIT_KEY` when set.
pub(super) async fn open_store(config: &Config) -> Result<Store> {
    let store = Store::connect(&config.app.store.url).await?;
    Ok(match Store::audit_key_from_env() {
        Some(key) => store.with_audit_key(&key),
        None => store,
    })
}

/// Runs `churnguard score`.
pub fn score(args: &ScoreArgs) -> Result<()> {
    let config = load_config(&args.store)?;
    let req = ScoreRunRequest {
        registry: args.registry.clone(),
        model: args.model.clone(),
        data: args.data.clone(),
        schema: args.schema.clone(),
        snapshot: Some(args.snapshot.clone()),
        out: Some(args.out.clone()),
        run_id: args.run_id.clone(),
        actor: "cli".into(),
        as_of: args.as_of,
        transaction_amount: args.transactions.clone(),
    };
    let t0 = std::time::Instant::now();
    let summary = runtime()?.block_on(async {
        let store = open_store(&config).await?;
        let s = service::score_run(&req, &config.app, &store).await;
        store.close().await;
        anyhow::Ok(s?)
    })?;
    let run = &summary.run;
    println!(
        "scored {} customers at {} with {} ({}) in {:.2?}: run {} saved to {}",
        run.customers,
        run.snapshot_date,
        run.model_id,
        run.model_family,
        t0.elapsed(),
        run.run_id,
        crate::store::redact(&config.app.store.url)
    );
    let t = summary.stages;
    println!(
        "  time: load {:.2} s, compute {:.2} s, store {:.2} s, files {:.2} s",
        t.load, t.compute, t.store, t.files
    );
    let figures = &run.summary;
    if figures.ids_are_row_numbers {
        println!("  ids: the table has no id column; each customer's id is its row number (1 = first data row)");
    }
    if let Some(fit) = &figures.purchases {
        let p = &fit.bg_nbd;
        println!(
            "  transaction log: BG/NBD r {:.3}, alpha {:.3}, a {:.3}, b {:.3} fitted on {} customers' purchases to {}; churn risk = 1 - P(alive); CLV = {} months of expected purchases × {}",
            p.r,
            p.alpha,
            p.a,
            p.b,
            fit.customers,
            fit.calibration_end,
            config.app.value.months,
            if fit.gamma_gamma.is_some() { "Gamma-Gamma spend" } else { "the mean spend (Gamma-Gamma could not be fitted)" }
        );
    }
    let bands: Vec<String> = ["green", "yellow", "red"]
        .iter()
        .map(|b| format!("{b} {}", figures.bands.get(*b).copied().unwrap_or(0)))
        .collect();
    println!("  health bands: {}", bands.join(", "));
    let actions: Vec<String> = figures
        .actions
        .iter()
        .map(|(a, n)| format!("{a} {n}"))
        .collect();
    println!(
        "  interventions: {}; closed on recovery {}, expired {}",
        if actions.is_empty() {
            "none".to_string()
        } else {
            actions.join(", ")
        },
        figures.closed_recovered,
        figures.expired
    );
    if let Some(rc) = &figures.revenue_churn_90d {
        println!(
            "  last 90 days: logo churn {:.1}%, gross revenue churn {:.1}%, net revenue retention {:.1}%",
            100.0 * rc.logo_churn_rate,
            100.0 * rc.gross_revenue_churn_rate,
            100.0 * rc.net_revenue_retention
        );
    }
    if let Some(low) = &figures.clv_cac_below_minimum {
        println!(
            "  CLV/CAC below {}: {} customers, {} reps, channels {:?}",
            config.app.value.min_clv_cac, low.customers, low.reps, low.channels
        );
    }
    println!("  top of the risk list (expected loss = probability x CLV):");
    for r in summary.top.iter().take(5) {
        println!(
            "    {:>8} {:<28} {:>6} health {:>5.1} p {:.3} CLV {:>9.0} loss {:>8.0}  {}",
            r.customer_id,
            r.name.as_deref().unwrap_or("-"),
            r.band,
            r.health,
            r.churn_probability,
            r.clv,
            r.expected_loss,
            r.intervention.as_deref().unwrap_or("")
        );
    }
    for f in &summary.files {
        println!("  wrote {}", f.display());
    }
    Ok(())
}

fn print_save_rate(label: &str, s: &SaveRate) {
    let rel = match (s.relative, s.relative_ci) {
        (Some(r), Some((a, b))) => format!(
            "{:.1}% of would-be churners saved (95% CI {:.1}% to {:.1}%)",
            100.0 * r,
            100.0 * a,
            100.0 * b
        ),
        _ => "relative save rate: no control churners yet".into(),
    };
    println!(
        "  {label:<22} treated {:>5} (churned {:>4}, {:.1}%)  control {:>4} (churned {:>3}, {:.1}%)  save rate {:+.1} pts (95% CI {:+.1} to {:+.1}); {rel}",
        s.treated.customers,
        s.treated.churned,
        100.0 * s.treated.churn_rate(),
        s.control.customers,
        s.control.churned,
        100.0 * s.control.churn_rate(),
        100.0 * s.absolute,
        100.0 * s.absolute_ci.0,
        100.0 * s.absolute_ci.1,
    );
}

/// Prints an outcome report.
pub fn print_outcomes(report: &OutcomeReport) {
    match &report.overall {
        Some(s) => {
            println!(
                "warning-customer conversion rate (treated customers retained): {:.1}% against {:.1}% in control",
                100.0 * s.treated_retention,
                100.0 * s.control_retention
            );
            print_save_rate("all playbooks", s);
        }
        None => println!("no settled outcomes in both arms yet"),
    }
    for p in &report.playbooks {
        match &p.save_rate {
            Some(s) => print_save_rate(&p.playbook, s),
            None => println!(
                "  {:<22} not enough settled outcomes in both arms",
                p.playbook
            ),
        }
    }
    if !report.owners.is_empty() {
        println!(
            "per owner (treated against the control customers the policy would have given them):"
        );
        for o in &report.owners {
            match &o.save_rate {
                Some(s) => print_save_rate(&o.owner, s),
                None => println!("  {:<22} not enough settled outcomes in both arms", o.owner),
            }
        }
    }
    println!("  pending (window not over): {} customers", report.pending);
}

/// Prints how many customers each playbook's experiment needs.
pub fn print_power(power: &[crate::interventions::PlaybookPower]) {
    println!("customers each experiment needs to detect the playbook's assumed effect (80% power, 5% level):");
    for p in power {
        let needed = p
            .plan
            .selected
            .map_or_else(|| "–".to_string(), |n| n.to_string());
        println!(
            "  {:<22} effect {:>3.0}%, control churn {:>5.1}%{}: {needed} customers, {} settled",
            p.playbook,
            100.0 * p.plan.relative_effect,
            100.0 * p.plan.control_rate,
            if p.measured_control_rate {
                ""
            } else {
                " (assumed)"
            },
            p.settled
        );
    }
}

/// Runs `churnguard outcomes`.
pub fn outcomes(args: &OutcomesArgs) -> Result<()> {
    let config = load_config(&args.store)?;
    let req = OutcomesRequest {
        events: args.events.clone(),
        observed_until: args.observed_until,
        actor: "cli".into(),
    };
    let report = runtime()?.block_on(async {
        let store = open_store(&config).await?;
        let r = service::ingest_outcomes(&req, &config.app, &store).await;
        store.close().await;
        anyhow::Ok(r?)
    })?;
    println!(
        "outcomes within {} days of each intervention, from {}:",
        config.app.interventions.outcome_window_days,
        args.events.display()
    );
    print_outcomes(&report);
    print_power(&crate::interventions::playbook_power(
        &report,
        &config.app.interventions,
    ));
    Ok(())
}

/// Parses `name=0.3` pairs.
fn parse_effects(pairs: &[String]) -> Result<BTreeMap<String, f64>> {
    pairs
        .iter()
        .map(|p| {
            let (k, v) = p
                .split_once('=')
                .ok_or_else(|| UsageError(format!("--effects {p:?}: expected PLAYBOOK=EFFECT")))?;
            let v: f64 = v
                .trim()
                .parse()
                .map_err(|_| UsageError(format!("--effects {p:?}: {v:?} is not a number")))?;
            Ok((k.trim().to_string(), v))
        })
        .collect()
}

/// Runs `churnguard simulate-outcomes`.
pub fn simulate(args: &SimulateArgs) -> Result<()> {
    let config = load_config(&args.store)?;
    let req = SimulateRequest {
        data: args.data.clone(),
        effects: parse_effects(&args.effects)?,
        seed: args.seed,
        out: args.out.clone(),
    };
    let s = runtime()?.block_on(async {
        let store = open_store(&config).await?;
        let r = service::simulate_outcomes(&req, &config.app, &store).await;
        store.close().await;
        anyhow::Ok(r?)
    })?;
    println!(
        "simulated treatment over {} treated records: {} of {} churn events prevented; wrote {}",
        s.treated,
        s.prevented,
        s.churn_events,
        s.file.display()
    );
    println!(
        "measure it with: churnguard outcomes --events {} --observed-until {}",
        s.file.display(),
        s.observed_until
    );
    Ok(())
}

/// Runs `churnguard kpi`.
pub fn kpi(args: &KpiArgs) -> Result<()> {
    let config = load_config(&args.store)?;
    let stage = args.stage.unwrap_or(config.app.kpi.stage);
    let roles = match args.role {
        Some(r) => vec![r],
        None => vec![
            crate::kpi::Role::AccountManager,
            crate::kpi::Role::Acquisition,
        ],
    };
    let (run, sets) = runtime()?.block_on(async {
        let store = open_store(&config).await?;
        let run = store.run(&args.run).await?;
        let mut sets = Vec::new();
        for role in &roles {
            sets.push((
                *role,
                store
                    .scorecards(&run.run_id, role.name(), stage.name())
                    .await?,
            ));
        }
        store.close().await;
        anyhow::Ok((run, sets))
    })?;
    println!(
        "KPI scorecards of run {} (snapshot {}), stage {}:",
        run.run_id,
        run.snapshot_date,
        stage.name()
    );
    for (role, cards) in &sets {
        if cards.is_empty() {
            println!("  {}: none (the run scored no event data)", role.name());
            continue;
        }
        println!("  {} ({} people; * = top 10%):", role.name(), cards.len());
        for c in cards.iter().take(args.top) {
            let metrics: Vec<String> = c["metrics"]
                .as_array()
                .map(|ms| {
                    ms.iter()
                        .filter(|m| m["weight"].as_f64().unwrap_or(0.0) > 0.0)
                        .map(|m| {
                            format!(
                                "{} {:.1}",
                                m["metric"].as_str().unwrap_or("?"),
                                m["contribution"].as_f64().unwrap_or(0.0)
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            let adjusted = c["adjusted_composite"]
                .as_f64()
                .map_or_else(|| "   –".to_string(), |a| format!("{a:>5.1}"));
            println!(
                "   {:>3}{} {:<22} {:>5.1}  risk-adjusted {adjusted}  {:>5} customers{}  [{}]",
                c["rank"],
                if c["top"].as_bool() == Some(true) {
                    "*"
                } else {
                    " "
                },
                c["name"].as_str().unwrap_or("?"),
                c["composite"].as_f64().unwrap_or(0.0),
                c["customers"],
                if c["too_few"].as_bool() == Some(true) {
                    " (too few)"
                } else {
                    ""
                },
                metrics.join(", ")
            );
        }
    }
    if let Some(out) = &args.out {
        let doc = serde_json::json!({
            "run_id": run.run_id,
            "stage": stage.name(),
            "scorecards": sets.iter().map(|(r, c)| serde_json::json!({"role": r.name(), "cards": c})).collect::<Vec<_>>(),
        });
        data::write_text(out, &serde_json::to_string_pretty(&doc)?)?;
        println!("wrote {}", out.display());
    }
    Ok(())
}

/// Runs `churnguard runs`.
pub fn runs(args: &StoreArgs) -> Result<()> {
    let config = load_config(args)?;
    let runs = runtime()?.block_on(async {
        let store = open_store(&config).await?;
        let r = store.runs().await;
        store.close().await;
        anyhow::Ok(r?)
    })?;
    if runs.is_empty() {
        println!(
            "no scoring runs in {}",
            crate::store::redact(&config.app.store.url)
        );
    }
    for r in runs {
        println!(
            "{}  snapshot {}  {} customers  model {} ({})",
            r.run_id, r.snapshot_date, r.customers, r.model_id, r.model_family
        );
    }
    Ok(())
}

/// The audit chain is broken: exit code 3.
#[derive(Debug, thiserror::Error)]
#[error("the audit log's hash chain is broken ({0} problem(s))")]
pub struct AuditBroken(pub usize);

/// Runs `churnguard audit …`.
pub fn audit(cmd: &AuditCommand) -> Result<()> {
    match cmd {
        AuditCommand::Verify { head, store } => {
            let config = load_config(store)?;
            let exported: Option<crate::store::AuditHead> = match head {
                Some(path) => Some(serde_json::from_str(&data::read_text(path)?).map_err(|e| {
                    super::UsageError(format!(
                        "{}: not an audit head from `churnguard audit head`: {e}",
                        path.display()
                    ))
                })?),
                None => None,
            };
            let (result, head) = runtime()?.block_on(async {
                let store = open_store(&config).await?;
                let result = store.verify_audit(exported.as_ref()).await;
                let head = store.audit_head().await;
                store.close().await;
                anyhow::Ok((result?, head?.map(|h| (h.seq, h.hash))))
            })?;
            match result {
                Ok(n) => {
                    println!("audit log intact: {n} entries, hash chain verified");
                    if let Some((seq, hash)) = head {
                        println!("head: entry {seq}, hash {hash} (record it elsewhere to detect truncation)");
                    }
                    Ok(())
                }
                Err(problems) => {
                    for p in &problems {
                        println!("entry {}: {}", p.seq, p.message);
                    }
                    Err(AuditBroken(problems.len()).into())
                }
            }
        }
        AuditCommand::Head { out, store } => {
            let config = load_config(store)?;
            let head = runtime()?.block_on(async {
                let store = open_store(&config).await?;
                let head = store.audit_head().await;
                store.close().await;
                anyhow::Ok(head?)
            })?;
            let Some(head) = head else {
                return Err(
                    super::UsageError("the audit log is empty: no head to export".into()).into(),
                );
            };
            let text = serde_json::to_string_pretty(&head)? + "\n";
            match out {
                Some(path) => {
                    data::write_text(path, &text)?;
                    println!(
                        "audit head: entry {} written to {}",
                        head.seq,
                        path.display()
                    );
                }
                None => print!("{text}"),
            }
            Ok(())
        }
        AuditCommand::Show { limit, store } => {
            let config = load_config(store)?;
            let log = runtime()?.block_on(async {
                let store = open_store(&config).await?;
                let l = store.audit_log().await;
                store.close().await;
                anyhow::Ok(l?)
            })?;
            for e in log.iter().rev().take(*limit).rev() {
                let at = chrono::DateTime::from_timestamp(e.at, 0)
                    .map(|d| d.to_rfc3339())
                    .unwrap_or_default();
                println!(
                    "{:>6} {} {:<10} {:<22} {:<24} {}",
                    e.seq, at, e.actor, e.action, e.subject, e.details
                );
            }
            Ok(())
        }
    }
}

/// Runs `churnguard config …`.
pub fn config(cmd: &ConfigCommand) -> Result<()> {
    match cmd {
        ConfigCommand::Check(args) => {
            load_config(args)?;
            println!("config ok");
            Ok(())
        }
        ConfigCommand::Show(args) => {
            let c = load_config(args)?;
            print!("{}", c.to_toml());
            Ok(())
        }
    }
}

/// Flags of `churnguard serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (overrides serve.listen; default 127.0.0.1:8080).
    #[arg(long)]
    pub listen: Option<String>,
    /// Model registry directory (overrides serve.registry).
    #[arg(long)]
    pub registry: Option<PathBuf>,
    /// Event-table directory that POST /v1/scoring-runs scores (overrides serve.data).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Serve without API keys: everyone is admin. Allowed only on a loopback address.
    #[arg(long)]
    pub no_auth: bool,
    /// Seconds between checks of the registry's champion pointer (0 = never).
    #[arg(long, default_value_t = 2.0)]
    pub watch_secs: f64,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Config and store.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Log formats.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LogFormat {
    /// One readable line per event.
    Text,
    /// One JSON object per event.
    Json,
}

/// Runs `churnguard serve`.
pub fn serve(args: &ServeArgs) -> Result<()> {
    let mut config = load_config(&args.store)?;
    if let Some(r) = &args.registry {
        config.serve.registry = r.display().to_string();
    }
    if let Some(d) = &args.data {
        config.serve.data = Some(d.display().to_string());
    }
    let filter = tracing_subscriber::EnvFilter::try_from_env("CHURNGUARD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(crate::serve::DEFAULT_LOG_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match args.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    let options = crate::serve::routes_options(args.listen.clone(), args.no_auth, args.watch_secs);
    runtime()?.block_on(crate::serve::run(config.app, config.serve, options))?;
    Ok(())
}

/// Flags of `churnguard deliver`.
#[derive(Debug, clap::Args)]
pub struct DeliverArgs {
    /// Repeat passes until no delivery is pending (each delivered or dead).
    #[arg(long)]
    pub drain: bool,
    /// List the outbox instead of delivering: pending, delivered, dead or all.
    #[arg(long, value_name = "STATUS")]
    pub list: Option<String>,
    /// Put a dead delivery of this intervention back in the queue (with --webhook).
    #[arg(long, value_name = "INTERVENTION_ID", requires = "webhook")]
    pub retry: Option<i64>,
    /// The webhook of --retry.
    #[arg(long)]
    pub webhook: Option<String>,
    /// Config and store.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Runs `churnguard deliver`.
pub fn deliver(args: &DeliverArgs) -> Result<()> {
    use crate::store::DeliveryStatus;
    let config = load_config(&args.store)?;
    runtime()?.block_on(async {
        let store = open_store(&config).await?;
        let result = async {
            if let Some(list) = &args.list {
                let status = match list.as_str() {
                    "all" => None,
                    "pending" => Some(DeliveryStatus::Pending),
                    "delivered" => Some(DeliveryStatus::Delivered),
                    "dead" => Some(DeliveryStatus::Dead),
                    other => {
                        return Err(super::UsageError(format!(
                            "--list {other:?}: expected pending, delivered, dead or all"
                        ))
                        .into())
                    }
                };
                let rows = store.deliveries(status, 10_000).await?;
                if rows.is_empty() {
                    println!("no deliveries{}", status.map_or(String::new(), |s| format!(" {}", s.name())));
                }
                for d in rows {
                    println!(
                        "intervention {}  {}  {}  attempts {}{}",
                        d.intervention_id,
                        d.webhook,
                        d.status.name(),
                        d.attempts,
                        d.last_error.map_or(String::new(), |e| format!("  last error: {e}"))
                    );
                }
                return Ok(());
            }
            if let Some(id) = args.retry {
                let webhook = args.webhook.as_deref().unwrap_or_default();
                store
                    .retry_delivery(id, webhook, "cli", crate::store::now())
                    .await?;
                println!("intervention {id} to {webhook}: queued again");
                return Ok(());
            }
            let deliverer =
                std::sync::Arc::new(crate::serve::delivery::Deliverer::new(&config.serve.delivery)?);
            if deliverer.is_empty() {
                return Err(super::UsageError(
                    "no webhooks: add [[serve.delivery.webhooks]] (name, url, secret_env) to the config".into(),
                )
                .into());
            }
            let mut total = crate::serve::delivery::PassReport::default();
            loop {
                let r = deliverer.run_once(&store).await?;
                total.queued += r.queued;
                total.attempted += r.attempted;
                total.delivered += r.delivered;
                total.retrying += r.retrying;
                total.dead += r.dead;
                if !args.drain
                    || store
                        .deliveries(Some(DeliveryStatus::Pending), 1)
                        .await?
                        .is_empty()
                {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
            println!(
                "delivery: {} queued, {} attempts, {} delivered, {} to retry, {} dead",
                total.queued, total.attempted, total.delivered, total.retrying, total.dead
            );
            Ok(())
        }
        .await;
        store.close().await;
        result
    })
}

/// `churnguard keys …`.
#[derive(Debug, clap::Subcommand)]
pub enum KeysCommand {
    /// Print the SHA-256 of a key, for [[serve.keys]] in churnguard.toml.
    Hash {
        /// The key.
        key: String,
    },
    /// Make a new random key and print it with its config entry.
    New {
        /// reader, scorer or admin.
        #[arg(long)]
        role: String,
        /// Who holds it.
        #[arg(long)]
        name: String,
    },
}

/// Runs `churnguard keys …`.
pub fn keys(cmd: &KeysCommand) -> Result<()> {
    match cmd {
        KeysCommand::Hash { key } => {
            println!("{}", crate::serve::auth::hash_key(key));
        }
        KeysCommand::New { role, name } => {
            if !crate::serve::config::ROLES.contains(&role.as_str()) {
                return Err(UsageError(format!(
                    "--role {role:?}: expected reader, scorer or admin"
                ))
                .into());
            }
            use rand::RngCore;
            let mut bytes = [0u8; 24];
            rand::rngs::OsRng.fill_bytes(&mut bytes);
            let key = format!("cg_{}", hex::encode(bytes));
            println!("key (give it to {name}; it is shown once): {key}");
            println!();
            println!("[[serve.keys]]");
            println!("name = {name:?}");
            println!("role = {role:?}");
            println!("sha256 = \"{}\"", crate::serve::auth::hash_key(&key));
        }
    }
    Ok(())
}
