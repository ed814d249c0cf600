//! Per-employee metric values from the tables and a scoring run. Every
//! window ends at the snapshot: nothing after it is used.

use std::collections::{BTreeMap, HashMap};

use chrono::Months;

use super::{EmployeeFacts, KpiError, Metric, Result, Role};
use crate::data::schema::{date_from_days, days_from_date};
use crate::data::{columns, Tables};

/// What the scorecards need of one scored customer.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredRow {
    /// Customer id.
    pub customer_id: i64,
    /// Health index.
    pub health: f64,
    /// Change since the previous run.
    pub health_change: Option<f64>,
    /// Predicted CLV.
    pub clv: f64,
    /// Latest NPS answer.
    pub last_nps: Option<f64>,
    /// MRR in force.
    pub mrr: Option<f64>,
    /// MRR change over 90 days.
    pub mrr_change_90d: Option<f64>,
}

impl ScoredRow {
    /// The rows of a scoring run: scores, plus `last_nps` and
    /// `mrr_change_90d` from the feature frame they were scored from
    /// (rows line up). Customers whose id is not an integer are skipped.
    pub fn from_scores(
        frame: &polars::prelude::DataFrame,
        scored: &[crate::scoring::ScoredCustomer],
    ) -> Vec<ScoredRow> {
        let nps = columns::f64s(frame, "last_nps").unwrap_or_default();
        let mrr_change = columns::f64s(frame, "mrr_change_90d").unwrap_or_default();
        scored
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                Some(ScoredRow {
                    customer_id: c.customer_id.parse().ok()?,
                    health: c.health.score,
                    health_change: c.trend.change,
                    clv: c.clv,
                    last_nps: nps.get(i).copied().flatten(),
                    mrr: c.context.mrr,
                    mrr_change_90d: mrr_change.get(i).copied().flatten(),
                })
            })
            .collect()
    }
}

/// Inputs of [`facts`].
#[derive(Debug, Clone)]
pub struct FactsInput<'a> {
    /// The event tables.
    pub tables: &'a Tables,
    /// The scoring run's customers.
    pub rows: &'a [ScoredRow],
    /// The run's snapshot, days since 1970-01-01.
    pub snapshot: i32,
    /// Intervention save rate per owner (account manager id), if measured.
    pub save_rates: &'a HashMap<String, f64>,
    /// Features adopted within 60 days that count as activated.
    pub activation_features: u32,
    /// Per customer, the churn probability the model predicted at the start
    /// of the period (90 days before the snapshot), when a run then exists:
    /// the baseline of the risk-adjusted metrics.
    pub expected_churn: Option<&'a HashMap<i64, f64>>,
}

fn col<T>(
    read: columns::Reader<T>,
    df: &polars::prelude::DataFrame,
    table: &str,
    name: &str,
) -> Result<Vec<Option<T>>> {
    read(df, name).map_err(|message| KpiError::BadTable {
        table: table.into(),
        message,
    })
}

struct Customer {
    id: i64,
    signup: i32,
    term_months: u32,
    cac: Option<f64>,
    manager: Option<i64>,
    rep: Option<i64>,
    churned: Option<i32>,
}

#[derive(Default)]
struct Acc {
    n: usize,
    sum: f64,
}

impl Acc {
    fn add(&mut self, v: f64) {
        self.n += 1;
        self.sum += v;
    }
    fn add_bool(&mut self, b: bool) {
        self.add(if b { 1.0 } else { 0.0 });
    }
    fn mean(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum / self.n as f64)
    }
}

/// Per-employee metric values, in employee-table order.
pub fn facts(input: &FactsInput<'_>) -> Result<Vec<EmployeeFacts>> {
    let t = input.tables;
    let s = input.snapshot;
    let add_months = |day: i32, m: u32| days_from_date(date_from_days(day) + Months::new(m));

    // Customers with what the windows need.
    let churned_on: HashMap<i64, i32> = col(
        columns::i64s,
        &t.churn_events,
        "churn_events",
        "customer_id",
    )?
    .into_iter()
    .zip(col(
        columns::days,
        &t.churn_events,
        "churn_events",
        "churn_date",
    )?)
    .filter_map(|(i, d)| Some((i?, d?)))
    .filter(|(_, d)| *d < s)
    .collect();
    let ids = col(columns::i64s, &t.customers, "customers", "customer_id")?;
    let signup = col(columns::days, &t.customers, "customers", "signup_date")?;
    let contract = col(columns::strs, &t.customers, "customers", "contract")?;
    let cac = col(columns::f64s, &t.customers, "customers", "cac")?;
    let manager = col(
        columns::i64s,
        &t.customers,
        "customers",
        "account_manager_id",
    )?;
    let rep = col(
        columns::i64s,
        &t.customers,
        "customers",
        "acquisition_rep_id",
    )?;
    let mut customers = Vec::with_capacity(ids.len());
    for k in 0..ids.len() {
        let (Some(id), Some(signup)) = (ids[k], signup[k]) else {
            continue;
        };
        if signup >= s {
            continue;
        }
        customers.push(Customer {
            id,
            signup,
            term_months: match contract[k].as_deref() {
                Some("annual") => 12,
                Some("two_year") => 24,
                _ => 1,
            },
            cac: cac[k],
            manager: manager[k],
            rep: rep[k],
            churned: churned_on.get(&id).copied(),
        });
    }

    // Adoption within the first 60 days, from weekly usage complete by the snapshot.
    let new_from = s - 180;
    let new_to = s - 60;
    let is_new = |c: &Customer| c.signup >= new_from && c.signup <= new_to;
    let new_ids: HashMap<i64, i32> = customers
        .iter()
        .filter(|c| is_new(c))
        .map(|c| (c.id, c.signup))
        .collect();
    let mut adopted: HashMap<i64, i64> = HashMap::new();
    {
        let u_id = col(columns::i64s, &t.usage, "usage", "customer_id")?;
        let u_week = col(columns::days, &t.usage, "usage", "week_start")?;
        let u_adopt = col(columns::i64s, &t.usage, "usage", "features_adopted")?;
        for k in 0..u_id.len() {
            let (Some(id), Some(week), Some(a)) = (u_id[k], u_week[k], u_adopt[k]) else {
                continue;
            };
            if let Some(&signup) = new_ids.get(&id) {
                if week + 7 <= signup + 60 && week + 7 <= s {
                    let e = adopted.entry(id).or_default();
                    *e = (*e).max(a);
                }
            }
        }
    }

    // Per-employee accumulators.
    #[derive(Default)]
    struct Book {
        customers: usize,
        health: Acc,
        change: Acc,
        promoters: usize,
        detractors: usize,
        respondents: usize,
        mrr: f64,
        upsell: f64,
        activation: Acc,
        renewal: Acc,
        retention: Acc,
        cac: Acc,
        clv: Acc,
        leads: Acc,
        risk: Acc,
    }
    let mut books: HashMap<(Role, i64), Book> = HashMap::new();
    let by_customer: HashMap<i64, &super::ScoredRow> =
        input.rows.iter().map(|r| (r.customer_id, r)).collect();
    for c in &customers {
        let active_at = |day: i32| c.signup <= day && c.churned.is_none_or(|d| d > day);
        let row = by_customer.get(&c.id);
        for (role, emp) in [
            (Role::AccountManager, c.manager),
            (Role::Acquisition, c.rep),
        ] {
            let Some(emp) = emp else { continue };
            let b = books.entry((role, emp)).or_default();
            if role == Role::AccountManager {
                if let Some(r) = row {
                    b.customers += 1;
                    b.health.add(r.health);
                    if let Some(ch) = r.health_change.filter(|v| v.is_finite()) {
                        b.change.add(ch);
                    }
                    if let Some(nps) = r.last_nps.filter(|v| v.is_finite()) {
                        b.respondents += 1;
                        b.promoters += usize::from(nps >= 9.0);
                        b.detractors += usize::from(nps <= 6.0);
                    }
                    let mrr = r.mrr.filter(|v| v.is_finite()).unwrap_or(0.0);
                    b.mrr += mrr;
                    b.upsell += r
                        .mrr_change_90d
                        .filter(|v| v.is_finite())
                        .unwrap_or(0.0)
                        .max(0.0);
                }
            } else if c.signup > s - 365 {
                b.customers += 1;
                if let Some(cac) = c.cac.filter(|v| v.is_finite()) {
                    b.cac.add(cac);
                }
                b.clv.add(row.map_or(0.0, |r| r.clv));
            }
            if is_new(c) {
                b.activation.add_bool(
                    adopted.get(&c.id).copied().unwrap_or(0)
                        >= i64::from(input.activation_features),
                );
            }
            // Contract terms ending 30..210 days ago, reached by an active customer.
            if c.term_months > 1 {
                let mut k = 1;
                loop {
                    let end = add_months(c.signup, c.term_months * k);
                    if end > s - 30 {
                        break;
                    }
                    if end > s - 210 && active_at(end - 60) {
                        b.renewal.add_bool(active_at(end + 30));
                    }
                    k += 1;
                }
            }
            if active_at(s - 90) {
                b.retention.add_bool(active_at(s - 1));
                if role == Role::AccountManager {
                    if let Some(&p) = input.expected_churn.and_then(|m| m.get(&c.id)) {
                        b.risk.add(p);
                    }
                }
            }
        }
    }
    {
        let l_rep = col(columns::i64s, &t.leads, "leads", "acquisition_rep_id")?;
        let l_day = col(columns::days, &t.leads, "leads", "created_date")?;
        let l_conv = col(columns::bools, &t.leads, "leads", "converted")?;
        for k in 0..l_rep.len() {
            let (Some(rep), Some(day)) = (l_rep[k], l_day[k]) else {
                continue;
            };
            if day > s - 365 && day < s {
                books
                    .entry((Role::Acquisition, rep))
                    .or_default()
                    .leads
                    .add_bool(l_conv[k] == Some(true));
            }
        }
    }

    let e = &t.employees;
    let e_id = col(columns::i64s, e, "employees", "employee_id")?;
    let e_name = col(columns::strs, e, "employees", "name")?;
    let e_role = col(columns::strs, e, "employees", "role")?;
    let e_team = col(columns::strs, e, "employees", "team")?;
    let e_region = col(columns::strs, e, "employees", "region")?;
    let empty = Book::default();
    let mut out = Vec::with_capacity(e_id.len());
    for k in 0..e_id.len() {
        let Some(id) = e_id[k] else { continue };
        let Some(role) = e_role[k].as_deref().and_then(|r| r.parse::<Role>().ok()) else {
            continue;
        };
        let b = books.get(&(role, id)).unwrap_or(&empty);
        let mut metrics: BTreeMap<Metric, Option<f64>> = BTreeMap::new();
        metrics.insert(Metric::Activation, b.activation.mean());
        metrics.insert(Metric::Renewal, b.renewal.mean());
        metrics.insert(Metric::Retention, b.retention.mean());
        match role {
            Role::AccountManager => {
                metrics.insert(Metric::HealthLevel, b.health.mean());
                metrics.insert(Metric::HealthChange, b.change.mean());
                metrics.insert(
                    Metric::Satisfaction,
                    (b.respondents > 0).then(|| {
                        100.0 * (b.promoters as f64 - b.detractors as f64) / b.respondents as f64
                    }),
                );
                metrics.insert(Metric::Expansion, (b.mrr > 0.0).then(|| b.upsell / b.mrr));
                metrics.insert(
                    Metric::SaveRate,
                    input.save_rates.get(&id.to_string()).copied(),
                );
            }
            Role::Acquisition => {
                metrics.insert(Metric::Cac, b.cac.mean());
                metrics.insert(Metric::Conversion, b.leads.mean());
                metrics.insert(Metric::Clv, b.clv.mean());
            }
        }
        out.push(EmployeeFacts {
            employee_id: id.to_string(),
            name: e_name[k].clone().unwrap_or_default(),
            role,
            region: e_region[k].clone().unwrap_or_default(),
            team: e_team[k].clone().unwrap_or_default(),
            customers: b.customers,
            metrics,
            outcome: b.retention.mean(),
            book_risk: b.risk.mean(),
            book_risk_customers: b.risk.n,
        });
    }
    Ok(out)
}

/// One scored customer of a flat table, as the account-manager scorecards
/// read it.
#[derive(Debug, Clone, PartialEq)]
pub struct FlatRow {
    /// The owner (the schema's `roles.owner`).
    pub owner: String,
    /// Health index.
    pub health: f64,
    /// Change since the previous run.
    pub health_change: Option<f64>,
    /// Whether the export marks the customer churned, when it has a label.
    pub churned: Option<bool>,
}

/// Account-manager facts from a flat table (no event tables): per owner,
/// the book's health level and change, and, when the export has its label,
/// retention (the share not marked churned). The metrics that need event
/// history (satisfaction, expansion, activation, renewal, save rate) are
/// unknown: empty on the scorecard, scored at the peer mean (50) as a
/// missing metric is on event data.
/// No book risk: the risk-adjusted scores need the risk predicted at the
/// start of the period, which a single export does not give.
pub fn flat_facts(rows: &[FlatRow], names: &HashMap<String, String>) -> Vec<EmployeeFacts> {
    #[derive(Default)]
    struct Book {
        customers: usize,
        health: Acc,
        change: Acc,
        retention: Acc,
    }
    let mut books: BTreeMap<&str, Book> = BTreeMap::new();
    for r in rows {
        let b = books.entry(r.owner.as_str()).or_default();
        b.customers += 1;
        b.health.add(r.health);
        if let Some(c) = r.health_change {
            b.change.add(c);
        }
        if let Some(churned) = r.churned {
            b.retention.add_bool(!churned);
        }
    }
    books
        .into_iter()
        .map(|(owner, b)| {
            let mut metrics: BTreeMap<Metric, Option<f64>> = BTreeMap::new();
            metrics.insert(Metric::HealthLevel, b.health.mean());
            metrics.insert(Metric::HealthChange, b.change.mean());
            metrics.insert(Metric::Retention, b.retention.mean());
            for m in [
                Metric::Satisfaction,
                Metric::Expansion,
                Metric::Activation,
                Metric::Renewal,
                Metric::SaveRate,
            ] {
                metrics.insert(m, None);
            }
            EmployeeFacts {
                employee_id: owner.to_string(),
                name: names
                    .get(owner)
                    .cloned()
                    .unwrap_or_else(|| owner.to_string()),
                role: Role::AccountManager,
                region: String::new(),
                team: String::new(),
                customers: b.customers,
                metrics,
                outcome: b.retention.mean(),
                book_risk: None,
                book_risk_customers: 0,
            }
        })
        .collect()
}
