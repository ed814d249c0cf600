//! The seeded generator of a synthetic subscription company: the embedded
//! default data for demos, tests and benchmarks.
//!
//! Churn follows a documented latent model (see `data/README.md`, section
//! "The latent model"). Every customer carries hidden traits; every month
//! their engagement, satisfaction and support pain evolve, and a voluntary and
//! an involuntary churn hazard follow from them. The hazards are written to
//! `truth_hazard`, so [`oracle_probability`] can give the true probability of
//! churn in any window: the bar no model can beat.
//!
//! Generation is deterministic for a seed: each customer draws from its own
//! ChaCha stream, so the work parallelises without changing the result.

mod customer;
pub use customer::BILLING_CHANGE_FACTOR;
mod effects;
mod names;
mod oracle;
mod tables;
mod treatment;

use chrono::{Months, NaiveDate};
use polars::prelude::*;
use rand::prelude::*;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use rayon::prelude::*;

use super::schema::{date_from_days, days_from_date, PLANS, REGIONS, TICKET_CATEGORIES};
use super::{DataError, Result, Tables};
use customer::{simulate_customer, Sim};
pub use effects::{
    apply_true_effects, effect_column, effect_of, true_effect, true_effects, Played, Traits,
    Treatment, EFFECT_PLAYBOOKS,
};
use names::person_name;
pub use oracle::{oracle_probability, snapshot_oracle_probability};
use tables::*;
pub use treatment::apply_treatment_effects;

/// Names of the ground-truth tables written beside the event tables.
pub const TRUTH_TABLES: &[&str] = &["truth_hazard", "truth_customers", "truth_employees"];

/// Settings of the generator.
#[derive(Debug, Clone)]
pub struct GeneratorParams {
    /// Number of customers; defaults to `5000`.
    pub n_customers: usize,
    /// Months simulated; defaults to `24`.
    pub months: u32,
    /// Random seed; defaults to `42`.
    pub seed: u64,
    /// First day of the simulated period; defaults to 2023-01-01.
    pub start: NaiveDate,
    /// The drift scenario: from the first month starting on or after this
    /// day, a billing-provider change makes first-attempt card failures
    /// [`BILLING_CHANGE_FACTOR`] times as likely (data/README.md); `None`
    /// (the default) for none.
    pub billing_change: Option<NaiveDate>,
}

impl Default for GeneratorParams {
    fn default() -> Self {
        GeneratorParams {
            n_customers: 5000,
            months: 24,
            seed: 42,
            start: NaiveDate::from_ymd_opt(2023, 1, 1).expect("valid date"),
            billing_change: None,
        }
    }
}

impl GeneratorParams {
    /// The first day after the simulated period.
    pub fn end(&self) -> NaiveDate {
        self.start + Months::new(self.months)
    }

    fn check(&self) -> Result<()> {
        let bad = |field, message: String| Err(DataError::BadParam { field, message });
        if self.n_customers == 0 || self.n_customers > 50_000_000 {
            return bad(
                "customers",
                format!("must be 1..=50000000, got {}", self.n_customers),
            );
        }
        if self.months < 2 || self.months > 240 {
            return bad("months", format!("must be 2..=240, got {}", self.months));
        }
        let today = chrono::Local::now().date_naive();
        if self.end() > today {
            return bad(
                "months",
                format!(
                    "the period {} + {} months ends after today ({today}); choose an earlier --start",
                    self.start, self.months
                ),
            );
        }
        Ok(())
    }
}

/// A generated company: its event tables and the ground truth behind them.
#[derive(Debug, Clone)]
pub struct Company {
    /// The observable event tables.
    pub tables: Tables,
    /// The hidden truth: hazards and latent traits.
    pub truth: Truth,
}

/// The generator's hidden truth.
#[derive(Debug, Clone)]
pub struct Truth {
    /// Per customer and calendar month from signup to the end of the period:
    /// `customer_id`, `month_start`, `voluntary_hazard`, `involuntary_hazard`
    /// (probabilities for the month) and `alive` (false for months after the
    /// churn, whose hazards are those had the customer stayed).
    pub hazard: DataFrame,
    /// Per customer: latent traits.
    pub customers: DataFrame,
    /// Per employee: `employee_id`, `role`, `skill` (account managers'
    /// skill, acquisition reps' lead quality), standard normal.
    pub employees: DataFrame,
}

/// The logistic function.
fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// An employee: an account manager or an acquisition rep.
struct Employee {
    id: i64,
    name: String,
    role: &'static str,
    team: String,
    region: usize,
    skill: f64,
}

/// Generates a whole company. Deterministic for `params`.
pub fn generate(params: &GeneratorParams) -> Result<Company> {
    params.check()?;
    let n = params.n_customers;
    let months = params.months as usize;
    let month_start: Vec<i32> = (0..=params.months)
        .map(|m| days_from_date(params.start + Months::new(m)))
        .collect();
    let end = month_start[months];

    let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
    let normal = Normal::new(0.0, 1.0).expect("valid normal");
    let n_am = n.div_ceil(400).max(REGIONS.len());
    let n_rep = n.div_ceil(1500).max(2);
    let mut employees = Vec::with_capacity(n_am + n_rep);
    for i in 0..(n_am + n_rep) {
        let am = i < n_am;
        let region = i % REGIONS.len();
        employees.push(Employee {
            id: 1 + i as i64,
            name: person_name(&mut rng),
            role: if am { "account_manager" } else { "acquisition" },
            team: format!(
                "{}-{}",
                if am { "success" } else { "sales" },
                REGIONS[region]
            ),
            region,
            skill: normal.sample(&mut rng),
        });
    }
    let by_region = |am: bool, region: usize| -> Vec<usize> {
        employees
            .iter()
            .enumerate()
            .filter(|(_, e)| (e.role == "account_manager") == am && e.region == region)
            .map(|(i, _)| i)
            .collect()
    };
    let am_by_region: Vec<Vec<usize>> = (0..REGIONS.len()).map(|r| by_region(true, r)).collect();
    let rep_by_region: Vec<Vec<usize>> = (0..REGIONS.len())
        .map(|r| {
            let v = by_region(false, r);
            if v.is_empty() {
                (n_am..n_am + n_rep).collect()
            } else {
                v
            }
        })
        .collect();

    let billing_change = params.billing_change.map(days_from_date);
    let sims: Vec<Sim> = (0..n)
        .into_par_iter()
        .map(|i| {
            let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
            rng.set_stream(1 + i as u64);
            simulate_customer(
                &mut rng,
                &month_start,
                &employees,
                &am_by_region,
                &rep_by_region,
                billing_change,
            )
        })
        .collect();

    // Assemble the tables; global ids are assigned in customer order.
    let mut c = CustomerCols::default();
    let mut leads = LeadCols::default();
    let mut subs = SubCols::default();
    let mut inv = InvoiceCols::default();
    let mut pay = PaymentCols::default();
    let mut usage = UsageCols::default();
    let mut tick = TicketCols::default();
    let mut surv = SurveyCols::default();
    let mut churn = ChurnCols::default();
    let mut haz = HazardCols::default();
    let mut tc = TruthCustomerCols::default();
    let mut rep_customers = vec![0usize; employees.len()];
    for (i, s) in sims.iter().enumerate() {
        let id = 1 + i as i64;
        c.push(id, s);
        tc.push(id, s);
        rep_customers[(s.rep - 1) as usize] += 1;
        leads.id.push(leads.id.len() as i64 + 1);
        leads.rep.push(s.rep);
        leads
            .created
            .push(s.signup - 7 - (id.wrapping_mul(7919) % 53) as i32);
        leads.converted.push(true);
        leads.customer.push(Some(id));
        for &(d, plan, seats, mrr, kind) in &s.subs {
            subs.customer.push(id);
            subs.date.push(d);
            subs.plan.push(PLANS[plan]);
            subs.seats.push(seats);
            subs.mrr.push(mrr);
            subs.kind.push(kind);
        }
        let first_invoice = inv.id.len() as i64 + 1;
        for &(d, due, amount) in &s.invoices {
            inv.id.push(inv.id.len() as i64 + 1);
            inv.customer.push(id);
            inv.date.push(d);
            inv.due.push(due);
            inv.amount.push(amount);
        }
        for &(k, d, attempt, amount, ok, late) in &s.payments {
            pay.id.push(pay.id.len() as i64 + 1);
            pay.invoice.push(first_invoice + k as i64);
            pay.customer.push(id);
            pay.date.push(d);
            pay.attempt.push(attempt);
            pay.amount.push(amount);
            pay.status.push(if ok { "succeeded" } else { "failed" });
            pay.late.push(late);
        }
        for &(w, sessions, users, minutes, adopted) in &s.usage {
            usage.customer.push(id);
            usage.week.push(w);
            usage.sessions.push(sessions);
            usage.users.push(users);
            usage.minutes.push(minutes);
            usage.adopted.push(adopted);
        }
        for &(d, sev, cat, resolved, hours) in &s.tickets {
            tick.id.push(tick.id.len() as i64 + 1);
            tick.customer.push(id);
            tick.opened.push(d);
            tick.severity.push(sev);
            tick.category.push(TICKET_CATEGORIES[cat]);
            tick.resolved.push(resolved);
            tick.hours.push(hours);
        }
        for &(d, kind, score) in &s.surveys {
            surv.id.push(surv.id.len() as i64 + 1);
            surv.customer.push(id);
            surv.date.push(d);
            surv.kind.push(kind);
            surv.score.push(score);
        }
        if let Some((d, kind, reason)) = s.churn {
            churn.customer.push(id);
            churn.date.push(d);
            churn.kind.push(kind);
            churn.reason.push(reason);
        }
        for &(m, v, inv_h, alive) in &s.hazard {
            haz.alive.push(alive);
            haz.customer.push(id);
            haz.month.push(m);
            haz.vol.push(v);
            haz.inv.push(inv_h);
        }
    }
    // Leads that did not convert, at each rep's latent conversion rate.
    for (e_idx, e) in employees
        .iter()
        .enumerate()
        .filter(|(_, e)| e.role == "acquisition")
    {
        let conv = sigmoid(-1.3 + 0.6 * e.skill);
        let lost = (rep_customers[e_idx] as f64 * (1.0 - conv) / conv).round() as usize;
        for _ in 0..lost {
            leads.id.push(leads.id.len() as i64 + 1);
            leads.rep.push(e.id);
            leads.created.push(rng.gen_range(month_start[0]..end));
            leads.converted.push(false);
            leads.customer.push(None);
        }
    }

    let emp = DataFrame::new(
        employees.len(),
        vec![
            Column::new(
                "employee_id".into(),
                employees.iter().map(|e| e.id).collect::<Vec<_>>(),
            ),
            Column::new(
                "name".into(),
                employees
                    .iter()
                    .map(|e| e.name.as_str())
                    .collect::<Vec<_>>(),
            ),
            Column::new(
                "role".into(),
                employees.iter().map(|e| e.role).collect::<Vec<_>>(),
            ),
            Column::new(
                "team".into(),
                employees
                    .iter()
                    .map(|e| e.team.as_str())
                    .collect::<Vec<_>>(),
            ),
            Column::new(
                "region".into(),
                employees
                    .iter()
                    .map(|e| REGIONS[e.region])
                    .collect::<Vec<_>>(),
            ),
        ],
    )
    .map_err(DataError::polars("building employees"))?;
    let truth_emp = DataFrame::new(
        employees.len(),
        vec![
            Column::new(
                "employee_id".into(),
                employees.iter().map(|e| e.id).collect::<Vec<_>>(),
            ),
            Column::new(
                "role".into(),
                employees.iter().map(|e| e.role).collect::<Vec<_>>(),
            ),
            Column::new(
                "skill".into(),
                employees.iter().map(|e| e.skill).collect::<Vec<_>>(),
            ),
        ],
    )
    .map_err(DataError::polars("building truth_employees"))?;

    Ok(Company {
        tables: Tables {
            customers: c.frame()?,
            employees: emp,
            leads: leads.frame()?,
            subscriptions: subs.frame()?,
            invoices: inv.frame()?,
            payments: pay.frame()?,
            usage: usage.frame()?,
            tickets: tick.frame()?,
            surveys: surv.frame()?,
            churn_events: churn.frame()?,
        },
        truth: Truth {
            hazard: haz.frame()?,
            customers: tc.frame()?,
            employees: truth_emp,
        },
    })
}

fn pick(rng: &mut impl Rng, weights: &[f64]) -> usize {
    let total: f64 = weights.iter().sum();
    let mut u = rng.gen::<f64>() * total;
    for (i, w) in weights.iter().enumerate() {
        if u < *w {
            return i;
        }
        u -= w;
    }
    weights.len() - 1
}

fn add_months(day: i32, k: u32) -> i32 {
    days_from_date(date_from_days(day) + Months::new(k))
}

/// Types a ground-truth table read back from disk.
pub(crate) fn typed_truth(name: &str, df: DataFrame, path: &std::path::Path) -> Result<DataFrame> {
    use crate::data::schema::ColumnKind::*;
    let cols: &[(&str, crate::data::ColumnKind)] = match name {
        "truth_hazard" => &[
            ("customer_id", Id),
            ("month_start", Date),
            ("voluntary_hazard", Amount),
            ("involuntary_hazard", Amount),
        ],
        "truth_employees" => &[("employee_id", Id), ("role", Text), ("skill", Amount)],
        _ => return Ok(df),
    };
    let mut out = Vec::new();
    for (c, kind) in cols {
        let column = df.column(c).map_err(|_| DataError::MissingColumn {
            path: path.to_path_buf(),
            column: c.to_string(),
        })?;
        let kind = if *c == "skill" {
            crate::data::ColumnKind::Text
        } else {
            *kind
        };
        let s = if *c == "skill" {
            column
                .as_materialized_series()
                .cast(&DataType::Float64)
                .map_err(DataError::polars("truth_employees.skill"))?
        } else {
            crate::data::parse_columns(column, kind, path)?
        };
        out.push(s.into_column());
    }
    DataFrame::new(df.height(), out).map_err(DataError::polars("typing truth"))
}
