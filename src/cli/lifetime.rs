//! `retention`: how long customers stay, by signup cohort, observed and
//! projected with the shifted-beta-geometric model. Parses its flags, loads
//! the event tables, and calls one core function.

use std::path::PathBuf;

use anyhow::{Context, Result};
use chrono::NaiveDate;

use crate::data;
use crate::value::cohorts::{cohort_retention, latest_day, CohortRetention};

/// Flags of `churnguard retention`.
#[derive(Debug, clap::Args)]
pub struct RetentionArgs {
    /// Data directory with the event tables (customers and churn_events are read).
    #[arg(long)]
    pub data: PathBuf,
    /// Count survivors as of this day (default: the latest churn or signup date in the data).
    #[arg(long)]
    pub as_of: Option<NaiveDate>,
    /// Months to project each cohort's survival curve to.
    #[arg(long, default_value_t = 24)]
    pub periods: u32,
    /// One line per signup month and plan (default: all plans together).
    #[arg(long)]
    pub by_plan: bool,
    /// Also write every cohort (each plan and all plans) as JSON here.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

fn epoch_days(d: NaiveDate) -> i32 {
    (d - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or(d)).num_days() as i32
}

/// `churnguard retention`.
pub fn retention(args: &RetentionArgs) -> Result<()> {
    let tables = data::load_tables(&args.data, data::LoadOptions::default())
        .with_context(|| format!("reading the event tables in {}", args.data.display()))?;
    let as_of = match args.as_of {
        Some(d) => epoch_days(d),
        None => latest_day(&tables.customers, &tables.churn_events),
    };
    let cohorts = cohort_retention(&tables.customers, &tables.churn_events, as_of, args.periods)?;
    let shown: Vec<&CohortRetention> = cohorts
        .iter()
        .filter(|c| (c.plan == "all") != args.by_plan)
        .collect();
    let day = NaiveDate::from_num_days_from_ce_opt(as_of + 719_163)
        .map_or_else(|| "?".into(), |d| d.to_string());
    println!(
        "Cohort retention as of {day} (sBG projection, Fader & Hardie 2007; months of 30.4 days):"
    );
    println!(
        "  {:<8} {:<11} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7} {:>7}",
        "cohort", "plan", "customers", "observed", "S(obs)", "S(12)", "S(24)", "alpha", "beta"
    );
    for c in shown {
        let observed = c.survivors.len().saturating_sub(1);
        let s_obs = c.survivors.last().copied().unwrap_or(0) as f64 / c.customers.max(1) as f64;
        let at = |t: usize| {
            c.projected
                .get(t)
                .map_or_else(|| "–".to_string(), |s| format!("{s:.3}"))
        };
        let mut note = c.note.clone();
        let (a, b) = match c.alpha_beta {
            None => ("–".to_string(), "–".to_string()),
            // The fit ran to its boundary: every customer churns alike,
            // at the constant monthly rate α / (α + β).
            Some((a, b)) if a + b > 1e6 => {
                note = Some(format!(
                    "no heterogeneity: a constant {:.1}% a month",
                    100.0 * a / (a + b)
                ));
                ("∞".to_string(), "∞".to_string())
            }
            Some((a, b)) => (format!("{a:.3}"), format!("{b:.3}")),
        };
        println!(
            "  {:<8} {:<11} {:>9} {:>9} {:>9.3} {:>9} {:>9} {:>7} {:>7}{}",
            c.cohort,
            c.plan,
            c.customers,
            observed,
            s_obs,
            at(12),
            at(24),
            a,
            b,
            note.map_or_else(String::new, |n| format!("  ({n})"))
        );
    }
    if let Some(out) = &args.out {
        data::write_text(out, &serde_json::to_string_pretty(&cohorts)?)?;
        println!("wrote {}", out.display());
    }
    Ok(())
}
