//! What customers are worth: customer lifetime value from the model's
//! retention probability, CLV/CAC by customer, channel and acquisition rep,
//! and revenue churn beside logo churn.
//!
//! ## The CLV formula
//!
//! A model gives `p`, the probability of churning within `H` days. The
//! monthly retention it implies is `r = (1 − p)^(30.4375 / H)`. With gross
//! margin `m`, monthly recurring revenue `MRR`, a monthly discount rate
//! `d = (1 + annual_discount_rate)^(1/12) − 1` and a horizon of `T` months,
//!
//! ```text
//! CLV = m · MRR · Σ_{t=1..T} (r / (1 + d))^t  =  m · MRR · q (1 − q^T) / (1 − q),   q = r / (1 + d)
//! ```
//!
//! the discounted margin of the months the customer is expected to stay.
//! That is the fallback. A model trained on event data carries a
//! [`lifetime::LifetimeCurve`] in its manifest: survival after the horizon
//! learned from how risk regressed to the mean on its training snapshots,
//! and revenue expansion per plan; scoring values customers with it.
//! Pure: numbers and frames in, numbers out.

pub mod btyd;
pub mod cohorts;
pub mod cox;
pub mod lifetime;
pub mod sbg;

use std::collections::{BTreeMap, HashMap};

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::columns;

/// Result alias of the value layer.
pub type Result<T, E = ValueError> = std::result::Result<T, E>;

/// What can go wrong computing value figures.
#[derive(Debug, thiserror::Error)]
pub enum ValueError {
    /// A setting out of range.
    #[error("invalid setting `{key}`: {message}")]
    BadConfig {
        /// The TOML key.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A table lacks what the computation needs.
    #[error("table `{table}`: {message}")]
    BadTable {
        /// The table.
        table: String,
        /// What is wrong.
        message: String,
    },
}

impl crate::error::HasKind for ValueError {
    fn kind(&self) -> crate::error::ErrorKind {
        // Both name what the caller supplied: a config key or a table.
        crate::error::ErrorKind::BadInput
    }
}

/// `[value]`: how customers are valued.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ValueConfig {
    /// Gross margin on revenue, 0–1; defaults to `0.8`.
    pub gross_margin: f64,
    /// Yearly discount rate; defaults to `0.10`.
    pub annual_discount_rate: f64,
    /// Months of future revenue counted; defaults to `60`.
    pub months: u32,
    /// The horizon of a model's probability when its manifest does not say
    /// (flat tables); defaults to `90` days.
    pub default_horizon_days: u32,
    /// CLV/CAC ratios below this are flagged; defaults to `3`.
    pub min_clv_cac: f64,
}

impl Default for ValueConfig {
    fn default() -> Self {
        ValueConfig {
            gross_margin: 0.8,
            annual_discount_rate: 0.10,
            months: 60,
            default_horizon_days: 90,
            min_clv_cac: 3.0,
        }
    }
}

impl ValueConfig {
    /// Checks the settings; the error names the key.
    pub fn check(&self) -> Result<()> {
        let bad = |key: &str, message: String| {
            Err(ValueError::BadConfig {
                key: format!("value.{key}"),
                message,
            })
        };
        if !(0.0..=1.0).contains(&self.gross_margin) {
            return bad(
                "gross_margin",
                format!("must be within 0..=1, got {}", self.gross_margin),
            );
        }
        if !(self.annual_discount_rate.is_finite() && self.annual_discount_rate > -1.0) {
            return bad(
                "annual_discount_rate",
                format!("must be > -1, got {}", self.annual_discount_rate),
            );
        }
        if self.months == 0 || self.months > 600 {
            return bad("months", format!("must be 1..=600, got {}", self.months));
        }
        if self.default_horizon_days == 0 {
            return bad("default_horizon_days", "must be at least 1".into());
        }
        if !(self.min_clv_cac.is_finite() && self.min_clv_cac >= 0.0) {
            return bad("min_clv_cac", "must be >= 0".into());
        }
        Ok(())
    }
}

/// Monthly retention implied by a churn probability over `horizon_days`.
pub fn monthly_retention(churn_probability: f64, horizon_days: u32) -> f64 {
    let p = churn_probability.clamp(0.0, 1.0);
    (1.0 - p).powf(30.4375 / f64::from(horizon_days.max(1)))
}

/// Customer lifetime value (see the module docs for the formula). A missing
/// or negative MRR is worth 0.
pub fn clv(mrr: f64, churn_probability: f64, horizon_days: u32, config: &ValueConfig) -> f64 {
    if !(mrr.is_finite() && mrr > 0.0) {
        return 0.0;
    }
    let r = monthly_retention(churn_probability, horizon_days);
    let d = (1.0 + config.annual_discount_rate).powf(1.0 / 12.0) - 1.0;
    let q = r / (1.0 + d);
    let t = f64::from(config.months);
    let sum = if (1.0 - q).abs() < 1e-12 {
        t
    } else {
        q * (1.0 - q.powf(t)) / (1.0 - q)
    };
    config.gross_margin * mrr * sum
}

/// CLV over CAC; `None` without a positive CAC.
pub fn clv_cac(clv: f64, cac: Option<f64>) -> Option<f64> {
    cac.filter(|c| c.is_finite() && *c > 0.0).map(|c| clv / c)
}

/// CLV/CAC of a group of customers (a channel, a rep).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupValue {
    /// The group's key.
    pub group: String,
    /// Customers counted.
    pub customers: usize,
    /// Mean CLV.
    pub mean_clv: f64,
    /// Mean CAC.
    pub mean_cac: f64,
    /// Total CLV over total CAC (`None` when no CAC was spent).
    pub clv_cac: Option<f64>,
    /// Whether the ratio is below the configured minimum.
    pub below_minimum: bool,
}

/// CLV/CAC per group: `(group, clv, cac)` per customer in, one row per
/// group out, sorted by group.
pub fn group_clv_cac<'a>(
    rows: impl IntoIterator<Item = (&'a str, f64, Option<f64>)>,
    config: &ValueConfig,
) -> Vec<GroupValue> {
    let mut acc: BTreeMap<&str, (usize, f64, f64)> = BTreeMap::new();
    for (group, clv, cac) in rows {
        let e = acc.entry(group).or_default();
        e.0 += 1;
        e.1 += clv;
        e.2 += cac.filter(|c| c.is_finite() && *c > 0.0).unwrap_or(0.0);
    }
    acc.into_iter()
        .map(|(group, (n, clv, cac))| {
            let ratio = (cac > 0.0).then(|| clv / cac);
            GroupValue {
                group: group.to_string(),
                customers: n,
                mean_clv: clv / n as f64,
                mean_cac: cac / n as f64,
                clv_cac: ratio,
                below_minimum: ratio.is_some_and(|r| r < config.min_clv_cac),
            }
        })
        .collect()
}

/// Logo and revenue churn over a window `(start, end]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RevenueChurn {
    /// First day of the window (exclusive), days since 1970-01-01.
    pub start: i32,
    /// Last day (inclusive).
    pub end: i32,
    /// Customers active at the start.
    pub customers_at_start: usize,
    /// Of those, churned in the window.
    pub churned_customers: usize,
    /// churned / at start.
    pub logo_churn_rate: f64,
    /// MRR in force at the start.
    pub mrr_at_start: f64,
    /// MRR of the customers who churned (as at the start).
    pub lost_mrr: f64,
    /// MRR lost by survivors who pay less at the end than at the start.
    pub contracted_mrr: f64,
    /// MRR gained by survivors who pay more.
    pub expanded_mrr: f64,
    /// (lost + contracted) / MRR at start.
    pub gross_revenue_churn_rate: f64,
    /// (MRR at start − lost − contracted + expanded) / MRR at start.
    pub net_revenue_retention: f64,
}

fn col<T>(
    read: columns::Reader<T>,
    df: &DataFrame,
    table: &str,
    name: &str,
) -> Result<Vec<Option<T>>> {
    read(df, name).map_err(|message| ValueError::BadTable {
        table: table.into(),
        message,
    })
}

/// Logo and revenue churn over `(start, end]` from the customers,
/// subscriptions and churn events tables.
pub fn revenue_churn(
    customers: &DataFrame,
    subscriptions: &DataFrame,
    churn_events: &DataFrame,
    start: i32,
    end: i32,
) -> Result<RevenueChurn> {
    let ids = col(columns::i64s, customers, "customers", "customer_id")?;
    let signup = col(columns::days, customers, "customers", "signup_date")?;
    let churn_id = col(columns::i64s, churn_events, "churn_events", "customer_id")?;
    let churn_day = col(columns::days, churn_events, "churn_events", "churn_date")?;
    let churned_on: HashMap<i64, i32> = churn_id
        .into_iter()
        .zip(churn_day)
        .filter_map(|(i, d)| Some((i?, d?)))
        .collect();
    // MRR in force at a day: the latest change on or before it.
    let s_id = col(columns::i64s, subscriptions, "subscriptions", "customer_id")?;
    let s_day = col(
        columns::days,
        subscriptions,
        "subscriptions",
        "effective_date",
    )?;
    let s_mrr = col(columns::f64s, subscriptions, "subscriptions", "mrr")?;
    let mut changes: HashMap<i64, Vec<(i32, f64)>> = HashMap::new();
    for ((i, d), m) in s_id.into_iter().zip(s_day).zip(s_mrr) {
        if let (Some(i), Some(d), Some(m)) = (i, d, m) {
            changes.entry(i).or_default().push((d, m));
        }
    }
    for v in changes.values_mut() {
        v.sort_by_key(|c| c.0);
    }
    let mrr_at = |id: i64, day: i32| -> f64 {
        changes
            .get(&id)
            .and_then(|v| v.iter().rev().find(|c| c.0 <= day))
            .map_or(0.0, |c| c.1)
    };
    let mut r = RevenueChurn {
        start,
        end,
        customers_at_start: 0,
        churned_customers: 0,
        logo_churn_rate: 0.0,
        mrr_at_start: 0.0,
        lost_mrr: 0.0,
        contracted_mrr: 0.0,
        expanded_mrr: 0.0,
        gross_revenue_churn_rate: 0.0,
        net_revenue_retention: 0.0,
    };
    for (id, signup) in ids.into_iter().zip(signup) {
        let (Some(id), Some(signup)) = (id, signup) else {
            continue;
        };
        let churn = churned_on.get(&id).copied();
        if signup > start || churn.is_some_and(|c| c <= start) {
            continue;
        }
        let m0 = mrr_at(id, start);
        r.customers_at_start += 1;
        r.mrr_at_start += m0;
        if churn.is_some_and(|c| c <= end) {
            r.churned_customers += 1;
            r.lost_mrr += m0;
        } else {
            let delta = mrr_at(id, end) - m0;
            if delta < 0.0 {
                r.contracted_mrr -= delta;
            } else {
                r.expanded_mrr += delta;
            }
        }
    }
    if r.customers_at_start > 0 {
        r.logo_churn_rate = r.churned_customers as f64 / r.customers_at_start as f64;
    }
    if r.mrr_at_start > 0.0 {
        r.gross_revenue_churn_rate = (r.lost_mrr + r.contracted_mrr) / r.mrr_at_start;
        r.net_revenue_retention =
            (r.mrr_at_start - r.lost_mrr - r.contracted_mrr + r.expanded_mrr) / r.mrr_at_start;
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clv_matches_the_series_it_sums() {
        let c = ValueConfig::default();
        let (mrr, p, h) = (100.0, 0.2, 90);
        let r = monthly_retention(p, h);
        let d = 1.1f64.powf(1.0 / 12.0) - 1.0;
        let direct: f64 = (1..=60).map(|t| 0.8 * mrr * (r / (1.0 + d)).powi(t)).sum();
        assert!((clv(mrr, p, h, &c) - direct).abs() < 1e-9);
        // Three months at 20% per quarter is about 7.2% a month.
        assert!((1.0 - r - 0.0717).abs() < 1e-3, "{r}");
    }

    #[test]
    fn clv_falls_with_risk_and_is_zero_without_revenue() {
        let c = ValueConfig::default();
        assert!(clv(100.0, 0.1, 90, &c) > clv(100.0, 0.5, 90, &c));
        assert_eq!(clv(100.0, 1.0, 90, &c), 0.0);
        assert_eq!(clv(f64::NAN, 0.1, 90, &c), 0.0);
        assert_eq!(clv(-5.0, 0.1, 90, &c), 0.0);
        // A customer who never leaves, undiscounted: margin x MRR x months.
        let flat = ValueConfig {
            annual_discount_rate: 0.0,
            ..Default::default()
        };
        assert!((clv(100.0, 0.0, 90, &flat) - 0.8 * 100.0 * 60.0).abs() < 1e-6);
    }

    #[test]
    fn groups_flag_low_ratios() {
        let c = ValueConfig::default();
        let rows = [
            ("paid", 1000.0, Some(500.0)),
            ("paid", 500.0, Some(500.0)),
            ("organic", 3000.0, Some(100.0)),
            ("organic", 100.0, None),
        ];
        let g = group_clv_cac(rows.iter().map(|(a, b, c)| (*a, *b, *c)), &c);
        assert_eq!(g[0].group, "organic");
        assert_eq!(g[0].clv_cac, Some(31.0));
        assert!(!g[0].below_minimum);
        assert_eq!(g[1].clv_cac, Some(1.5));
        assert!(g[1].below_minimum);
        assert_eq!(clv_cac(300.0, Some(0.0)), None);
    }

    #[test]
    fn revenue_churn_differs_from_logo_churn() {
        let customers = df!(
            "customer_id" => [1i64, 2, 3, 4],
            "signup_date" => [0i32, 0, 0, 50],
        )
        .unwrap();
        let subs = df!(
            "customer_id" => [1i64, 2, 3, 3, 2, 4],
            "effective_date" => [0i32, 0, 0, 20, 30, 50],
            "mrr" => [100.0, 300.0, 50.0, 80.0, 200.0, 999.0],
        )
        .unwrap();
        let churn = df!("customer_id" => [1i64], "churn_date" => [25i32]).unwrap();
        let r = revenue_churn(&customers, &subs, &churn, 10, 40).unwrap();
        assert_eq!(r.customers_at_start, 3);
        assert_eq!(r.churned_customers, 1);
        assert!((r.logo_churn_rate - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(r.mrr_at_start, 450.0);
        assert_eq!(r.lost_mrr, 100.0);
        assert_eq!(r.contracted_mrr, 100.0);
        assert_eq!(r.expanded_mrr, 30.0);
        assert!((r.gross_revenue_churn_rate - 200.0 / 450.0).abs() < 1e-12);
        assert!((r.net_revenue_retention - 280.0 / 450.0).abs() < 1e-12);
    }

    #[test]
    fn bad_settings_name_their_key() {
        let c = ValueConfig {
            gross_margin: 1.5,
            ..Default::default()
        };
        match c.check() {
            Err(ValueError::BadConfig { key, .. }) => assert_eq!(key, "value.gross_margin"),
            other => panic!("{other:?}"),
        }
    }
}
