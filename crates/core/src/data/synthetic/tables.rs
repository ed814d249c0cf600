//! Column builders of the generated tables: each simulated customer's rows
//! are pushed in customer order, then turned into typed frames.

use polars::prelude::*;

use super::customer::Sim;
use crate::data::schema::{CHANNELS, CONTRACTS, PLANS, REGIONS};
use crate::data::{DataError, Result};

pub(super) fn date_col(name: &str, days: Vec<i32>) -> Result<Column> {
    Series::new(name.into(), days)
        .cast(&DataType::Date)
        .map(Series::into_column)
        .map_err(DataError::polars("casting dates"))
}

pub(super) fn opt_date_col(name: &str, days: Vec<Option<i32>>) -> Result<Column> {
    Series::new(name.into(), days)
        .cast(&DataType::Date)
        .map(Series::into_column)
        .map_err(DataError::polars("casting dates"))
}

macro_rules! frame {
    ($table:literal, $len:expr, [$($col:expr),+ $(,)?]) => {
        DataFrame::new($len, vec![$($col),+]).map_err(DataError::polars(concat!("building ", $table)))
    };
}

#[derive(Default)]
pub(super) struct CustomerCols {
    pub(super) id: Vec<i64>,
    pub(super) name: Vec<String>,
    pub(super) signup: Vec<i32>,
    pub(super) plan: Vec<&'static str>,
    pub(super) contract: Vec<&'static str>,
    pub(super) region: Vec<&'static str>,
    pub(super) channel: Vec<&'static str>,
    pub(super) cac: Vec<f64>,
    pub(super) am: Vec<i64>,
    pub(super) rep: Vec<i64>,
}

impl CustomerCols {
    pub(super) fn push(&mut self, id: i64, s: &Sim) {
        self.id.push(id);
        self.name.push(format!("{} {id}", s.name));
        self.signup.push(s.signup);
        self.plan.push(PLANS[s.plan0]);
        self.contract.push(CONTRACTS[s.contract]);
        self.region.push(REGIONS[s.region]);
        self.channel.push(CHANNELS[s.channel]);
        self.cac.push(s.cac);
        self.am.push(s.am);
        self.rep.push(s.rep);
    }
    pub(super) fn frame(self) -> Result<DataFrame> {
        frame!(
            "customers",
            self.id.len(),
            [
                Column::new("customer_id".into(), self.id),
                Column::new("name".into(), self.name),
                date_col("signup_date", self.signup)?,
                Column::new("plan".into(), self.plan),
                Column::new("contract".into(), self.contract),
                Column::new("region".into(), self.region),
                Column::new("acquisition_channel".into(), self.channel),
                Column::new("cac".into(), self.cac),
                Column::new("account_manager_id".into(), self.am),
                Column::new("acquisition_rep_id".into(), self.rep),
            ]
        )
    }
}

#[derive(Default)]
pub(super) struct TruthCustomerCols {
    pub(super) id: Vec<i64>,
    pub(super) traits: [Vec<f64>; 4],
    pub(super) never_active: Vec<bool>,
    pub(super) manual_payer: Vec<bool>,
}

impl TruthCustomerCols {
    pub(super) fn push(&mut self, id: i64, s: &Sim) {
        self.id.push(id);
        for (v, t) in self.traits.iter_mut().zip(s.traits) {
            v.push(t);
        }
        self.never_active.push(s.never_active);
        self.manual_payer.push(s.manual_payer);
    }
    pub(super) fn frame(self) -> Result<DataFrame> {
        let [e, sat, p, f] = self.traits;
        let effects: Vec<Column> = super::effects::EFFECT_PLAYBOOKS
            .iter()
            .map(|playbook| {
                let values: Vec<f64> = (0..self.id.len())
                    .map(|i| {
                        let traits = super::effects::Traits {
                            engagement: e[i],
                            satisfaction: sat[i],
                            price_sensitivity: p[i],
                            payment_failure_rate: f[i],
                        };
                        super::effects::true_effect(playbook, &traits)
                            .expect("a playbook of EFFECT_PLAYBOOKS")
                    })
                    .collect();
                Column::new(super::effects::effect_column(playbook).into(), values)
            })
            .collect();
        let n = self.id.len();
        let mut cols = vec![
            Column::new("customer_id".into(), self.id),
            Column::new("engagement_propensity".into(), e),
            Column::new("satisfaction_base".into(), sat),
            Column::new("price_sensitivity".into(), p),
            Column::new("payment_failure_rate".into(), f),
            Column::new("never_active".into(), self.never_active),
            Column::new("manual_payer".into(), self.manual_payer),
        ];
        cols.extend(effects);
        DataFrame::new(n, cols).map_err(DataError::polars("truth_customers"))
    }
}

#[derive(Default)]
pub(super) struct LeadCols {
    pub(super) id: Vec<i64>,
    pub(super) rep: Vec<i64>,
    pub(super) created: Vec<i32>,
    pub(super) converted: Vec<bool>,
    pub(super) customer: Vec<Option<i64>>,
}

impl LeadCols {
    pub(super) fn frame(self) -> Result<DataFrame> {
        frame!(
            "leads",
            self.id.len(),
            [
                Column::new("lead_id".into(), self.id),
                Column::new("acquisition_rep_id".into(), self.rep),
                date_col("created_date", self.created)?,
                Column::new("converted".into(), self.converted),
                Column::new("customer_id".into(), self.customer),
            ]
        )
    }
}

#[derive(Default)]
pub(super) struct SubCols {
    pub(super) customer: Vec<i64>,
    pub(super) date: Vec<i32>,
    pub(super) plan: Vec<&'static str>,
    pub(super) seats: Vec<i64>,
    pub(super) mrr: Vec<f64>,
    pub(super) kind: Vec<&'static str>,
}

impl SubCols {
    pub(super) fn frame(self) -> Result<DataFrame> {
        frame!(
            "subscriptions",
            self.customer.len(),
            [
                Column::new("customer_id".into(), self.customer),
                date_col("effective_date", self.date)?,
                Column::new("plan".into(), self.plan),
                Column::new("seats".into(), self.seats),
                Column::new("mrr".into(), self.mrr),
                Column::new("change_type".into(), self.kind),
            ]
        )
    }
}

#[derive(Default)]
pub(super) struct InvoiceCols {
    pub(super) id: Vec<i64>,
    pub(super) customer: Vec<i64>,
    pub(super) date: Vec<i32>,
    pub(super) due: Vec<i32>,
    pub(super) amount: Vec<f64>,
}

impl InvoiceCols {
    pub(super) fn frame(self) -> Result<DataFrame> {
        frame!(
            "invoices",
            self.id.len(),
            [
                Column::new("invoice_id".into(), self.id),
                Column::new("customer_id".into(), self.customer),
                date_col("invoice_date", self.date)?,
                date_col("due_date", self.due)?,
                Column::new("amount".into(), self.amount),
            ]
        )
    }
}

#[derive(Default)]
pub(super) struct PaymentCols {
    pub(super) id: Vec<i64>,
    pub(super) invoice: Vec<i64>,
    pub(super) customer: Vec<i64>,
    pub(super) date: Vec<i32>,
    pub(super) attempt: Vec<i64>,
    pub(super) amount: Vec<f64>,
    pub(super) status: Vec<&'static str>,
    pub(super) late: Vec<i64>,
}

impl PaymentCols {
    pub(super) fn frame(self) -> Result<DataFrame> {
        frame!(
            "payments",
            self.id.len(),
            [
                Column::new("payment_id".into(), self.id),
                Column::new("invoice_id".into(), self.invoice),
                Column::new("customer_id".into(), self.customer),
                date_col("attempt_date", self.date)?,
                Column::new("attempt".into(), self.attempt),
                Column::new("amount".into(), self.amount),
                Column::new("status".into(), self.status),
                Column::new("days_late".into(), self.late),
            ]
        )
    }
}

#[derive(Default)]
pub(super) struct UsageCols {
    pub(super) customer: Vec<i64>,
    pub(super) week: Vec<i32>,
    pub(super) sessions: Vec<i64>,
    pub(super) users: Vec<i64>,
    pub(super) minutes: Vec<f64>,
    pub(super) adopted: Vec<i64>,
}

impl UsageCols {
    pub(super) fn frame(self) -> Result<DataFrame> {
        frame!(
            "usage",
            self.customer.len(),
            [
                Column::new("customer_id".into(), self.customer),
                date_col("week_start", self.week)?,
                Column::new("sessions".into(), self.sessions),
                Column::new("active_users".into(), self.users),
                Column::new("minutes".into(), self.minutes),
                Column::new("features_adopted".into(), self.adopted),
            ]
        )
    }
}

#[derive(Default)]
pub(super) struct TicketCols {
    pub(super) id: Vec<i64>,
    pub(super) customer: Vec<i64>,
    pub(super) opened: Vec<i32>,
    pub(super) severity: Vec<i64>,
    pub(super) category: Vec<&'static str>,
    pub(super) resolved: Vec<Option<i32>>,
    pub(super) hours: Vec<Option<f64>>,
}

impl TicketCols {
    pub(super) fn frame(self) -> Result<DataFrame> {
        frame!(
            "tickets",
            self.id.len(),
            [
                Column::new("ticket_id".into(), self.id),
                Column::new("customer_id".into(), self.customer),
                date_col("opened_date", self.opened)?,
                Column::new("severity".into(), self.severity),
                Column::new("category".into(), self.category),
                opt_date_col("resolved_date", self.resolved)?,
                Column::new("resolution_hours".into(), self.hours),
            ]
        )
    }
}

#[derive(Default)]
pub(super) struct SurveyCols {
    pub(super) id: Vec<i64>,
    pub(super) customer: Vec<i64>,
    pub(super) date: Vec<i32>,
    pub(super) kind: Vec<&'static str>,
    pub(super) score: Vec<Option<i64>>,
}

impl SurveyCols {
    pub(super) fn frame(self) -> Result<DataFrame> {
        frame!(
            "surveys",
            self.id.len(),
            [
                Column::new("survey_id".into(), self.id),
                Column::new("customer_id".into(), self.customer),
                date_col("survey_date", self.date)?,
                Column::new("kind".into(), self.kind),
                Column::new("score".into(), self.score),
            ]
        )
    }
}

#[derive(Default)]
pub(super) struct ChurnCols {
    pub(super) customer: Vec<i64>,
    pub(super) date: Vec<i32>,
    pub(super) kind: Vec<&'static str>,
    pub(super) reason: Vec<&'static str>,
}

impl ChurnCols {
    pub(super) fn frame(self) -> Result<DataFrame> {
        frame!(
            "churn_events",
            self.customer.len(),
            [
                Column::new("customer_id".into(), self.customer),
                date_col("churn_date", self.date)?,
                Column::new("churn_type".into(), self.kind),
                Column::new("reason".into(), self.reason),
            ]
        )
    }
}

#[derive(Default)]
pub(super) struct HazardCols {
    pub(super) customer: Vec<i64>,
    pub(super) month: Vec<i32>,
    pub(super) vol: Vec<f64>,
    pub(super) inv: Vec<f64>,
    pub(super) alive: Vec<bool>,
}

impl HazardCols {
    pub(super) fn frame(self) -> Result<DataFrame> {
        frame!(
            "truth_hazard",
            self.customer.len(),
            [
                Column::new("customer_id".into(), self.customer),
                date_col("month_start", self.month)?,
                Column::new("voluntary_hazard".into(), self.vol),
                Column::new("involuntary_hazard".into(), self.inv),
                Column::new("alive".into(), self.alive),
            ]
        )
    }
}
