//! Cohort retention, observed and projected: customers grouped by signup
//! month and plan, their survivors counted at each monthly anniversary, and
//! the shifted-beta-geometric model ([`super::sbg`]) fitted to each cohort to
//! project the curve beyond what has been observed.
//!
//! A cohort's period `t` is observed only when every member has been a
//! customer for `t` whole periods by the as-of date (measured from the end of
//! the signup month), so the last counts are not biased down by members
//! who have not yet had the chance to reach them. A customer has survived
//! period `t` when they have no churn date, or one after
//! `signup + t · 30.4375` days.

use std::collections::BTreeMap;

use polars::prelude::DataFrame;
use serde::{Deserialize, Serialize};

use super::sbg;
use crate::data::columns;

/// Days in an average month: one period.
pub const PERIOD_DAYS: f64 = 30.4375;

/// Cohorts smaller than this are listed but not fitted: too few customers
/// for two parameters.
pub const MIN_CUSTOMERS: usize = 20;

/// What can go wrong building cohorts.
#[derive(Debug, thiserror::Error)]
pub enum CohortError {
    /// A table lacks a column or holds the wrong type.
    #[error("table {table}: {message}")]
    BadTable {
        /// `customers` or `churn_events`.
        table: &'static str,
        /// What is wrong, naming the column.
        message: String,
    },
}

impl crate::error::HasKind for CohortError {
    fn kind(&self) -> crate::error::ErrorKind {
        crate::error::ErrorKind::BadInput
    }
}

/// One cohort's retention, observed and projected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CohortRetention {
    /// Signup month, `YYYY-MM`.
    pub cohort: String,
    /// Plan at signup (`all` for every plan together).
    pub plan: String,
    /// Customers who signed up.
    pub customers: usize,
    /// Survivors at each observed anniversary, `n_0 = customers` first.
    pub survivors: Vec<u64>,
    /// The sBG fit: `(α, β)`; `None` when the cohort is too small or too
    /// young (then `note` says why).
    pub alpha_beta: Option<(f64, f64)>,
    /// Projected survival `S(t)` for `t = 0..=periods` (observed values
    /// where observed periods end: the projection continues from the model).
    pub projected: Vec<f64>,
    /// Why there is no fit, if there is none.
    pub note: Option<String>,
}

/// A cohort being counted: its signup month's last day (as days since
/// 1970-01-01) and each member's signup and churn day.
type Cohort = (i32, Vec<(i32, Option<i32>)>);

/// Survivor counts of each (signup month, plan) cohort, and of each signup
/// month over all plans, with an sBG projection to `periods` months.
pub fn cohort_retention(
    customers: &DataFrame,
    churn_events: &DataFrame,
    as_of_day: i32,
    periods: u32,
) -> Result<Vec<CohortRetention>, CohortError> {
    let bad = |table| move |message| CohortError::BadTable { table, message };
    let ids = columns::i64s(customers, "customer_id").map_err(bad("customers"))?;
    let signups = columns::days(customers, "signup_date").map_err(bad("customers"))?;
    let plans = columns::strs(customers, "plan").map_err(bad("customers"))?;
    let churned_ids = columns::i64s(churn_events, "customer_id").map_err(bad("churn_events"))?;
    let churn_days = columns::days(churn_events, "churn_date").map_err(bad("churn_events"))?;
    let churn: std::collections::HashMap<i64, i32> = churned_ids
        .into_iter()
        .zip(churn_days)
        .filter_map(|(id, day)| Some((id?, day?)))
        .collect();
    // (month, plan) → the month's last day and its members.
    let mut groups: BTreeMap<(String, String), Cohort> = BTreeMap::new();
    for ((id, signup), plan) in ids.into_iter().zip(signups).zip(plans) {
        let (Some(id), Some(signup)) = (id, signup) else {
            continue;
        };
        if signup > as_of_day {
            continue;
        }
        let date =
            chrono::NaiveDate::from_num_days_from_ce_opt(signup + 719_163).unwrap_or_default();
        let month = date.format("%Y-%m").to_string();
        let month_end = month_last_day(date);
        let member = (signup, churn.get(&id).copied());
        for plan in [plan.unwrap_or_else(|| "unknown".into()), "all".into()] {
            let entry = groups
                .entry((month.clone(), plan))
                .or_insert((month_end, Vec::new()));
            entry.1.push(member);
        }
    }
    Ok(groups
        .into_iter()
        .map(|((cohort, plan), (month_end, members))| {
            let observed = ((as_of_day - month_end).max(0) as f64 / PERIOD_DAYS).floor() as u32;
            let survivors: Vec<u64> = (0..=observed)
                .map(|t| {
                    let cut = t as f64 * PERIOD_DAYS;
                    members
                        .iter()
                        .filter(|(signup, churn)| churn.is_none_or(|c| f64::from(c - signup) > cut))
                        .count() as u64
                })
                .collect();
            project(cohort, plan, members.len(), survivors, periods)
        })
        .collect())
}

/// The day the tables end (days since 1970-01-01): the latest signup or
/// churn date in them, the default as-of day of cohort counts.
pub fn latest_day(customers: &DataFrame, churn_events: &DataFrame) -> i32 {
    let latest = |df: &DataFrame, col: &str| {
        columns::days(df, col)
            .map(|v| v.into_iter().flatten().max().unwrap_or(i32::MIN))
            .unwrap_or(i32::MIN)
    };
    latest(customers, "signup_date").max(latest(churn_events, "churn_date"))
}

fn month_last_day(date: chrono::NaiveDate) -> i32 {
    use chrono::Datelike;
    let (y, m) = if date.month() == 12 {
        (date.year() + 1, 1)
    } else {
        (date.year(), date.month() + 1)
    };
    let next = chrono::NaiveDate::from_ymd_opt(y, m, 1).unwrap_or(date);
    (next - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or(date)).num_days() as i32 - 1
}

fn project(
    cohort: String,
    plan: String,
    customers: usize,
    survivors: Vec<u64>,
    periods: u32,
) -> CohortRetention {
    let mut out = CohortRetention {
        cohort,
        plan,
        customers,
        survivors,
        alpha_beta: None,
        projected: Vec::new(),
        note: None,
    };
    if customers < MIN_CUSTOMERS {
        out.note = Some(format!(
            "{customers} customers: too few to fit (at least {MIN_CUSTOMERS})"
        ));
        return out;
    }
    if out.survivors.len() < 3 {
        out.note = Some(format!(
            "{} period(s) observed: too young to fit (at least 2)",
            out.survivors.len().saturating_sub(1)
        ));
        return out;
    }
    match sbg::fit(&out.survivors) {
        Ok(fit) => {
            out.alpha_beta = Some((fit.params.alpha, fit.params.beta));
            out.projected = fit.params.survival_curve(periods);
        }
        Err(e) => out.note = Some(e.to_string()),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars::prelude::*;

    fn day(s: &str) -> i32 {
        let d = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        (d - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()).num_days() as i32
    }

    #[test]
    fn survivors_are_counted_only_where_every_member_is_observed() {
        // 40 customers in January 2024 on one plan; churn after 10, 40 and
        // 100 days for a third each, the rest stay.
        let n = 40;
        let ids: Vec<i64> = (0..n).collect();
        let signup = day("2024-01-10");
        let customers = df!(
            "customer_id" => ids.clone(),
            "signup_date" => vec![signup; n as usize],
            "plan" => vec!["growth"; n as usize],
        )
        .unwrap()
        .lazy()
        .with_column(col("signup_date").cast(DataType::Date))
        .collect()
        .unwrap();
        let churned: Vec<i64> = (0..30).collect();
        let churn_days: Vec<i32> = churned
            .iter()
            .map(|i| signup + [10, 40, 100][(*i % 3) as usize])
            .collect();
        let events = df!("customer_id" => churned, "churn_date" => churn_days)
            .unwrap()
            .lazy()
            .with_column(col("churn_date").cast(DataType::Date))
            .collect()
            .unwrap();
        let out = cohort_retention(&customers, &events, day("2024-06-15"), 12).unwrap();
        let growth = out.iter().find(|c| c.plan == "growth").unwrap();
        assert_eq!(growth.cohort, "2024-01");
        // Observed from 2024-01-31 to 2024-06-15: 4 whole periods.
        assert_eq!(growth.survivors, vec![40, 30, 20, 20, 10]);
        assert!(growth.alpha_beta.is_some(), "{growth:?}");
        assert_eq!(growth.projected.len(), 13);
        assert!(growth.projected.windows(2).all(|w| w[1] <= w[0]));
        let all = out.iter().find(|c| c.plan == "all").unwrap();
        assert_eq!(all.survivors, growth.survivors);
        // Too young a cohort is listed, not fitted.
        let young = cohort_retention(&customers, &events, day("2024-03-01"), 12).unwrap();
        assert!(young[0].alpha_beta.is_none() && young[0].note.is_some());
    }
}
