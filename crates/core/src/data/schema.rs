//! The event-table data model: which tables exist, their columns, types and
//! the checks each column gets. `data/README.md` documents the same model for
//! people; a test keeps the two in step.

use chrono::NaiveDate;

/// The type and checks of one column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// A 64-bit integer id.
    Id,
    /// A calendar date, `YYYY-MM-DD` in CSV.
    Date,
    /// A whole number that must not be negative.
    Count,
    /// A non-negative amount or duration.
    Amount,
    /// A whole number within an inclusive range.
    Score(i64, i64),
    /// A free text value.
    Text,
    /// One of a fixed set of values.
    Category(&'static [&'static str]),
    /// `true`/`false` (CSV also accepts `1`/`0`).
    Bool,
}

impl ColumnKind {
    /// The type in words, for error messages.
    pub fn describe(self) -> String {
        match self {
            ColumnKind::Id => "an integer id".into(),
            ColumnKind::Date => "a date (YYYY-MM-DD)".into(),
            ColumnKind::Count => "a non-negative integer".into(),
            ColumnKind::Amount => "a non-negative number".into(),
            ColumnKind::Score(lo, hi) => format!("an integer from {lo} to {hi}"),
            ColumnKind::Text => "text".into(),
            ColumnKind::Category(values) => format!("one of {}", values.join(", ")),
            ColumnKind::Bool => "true or false".into(),
        }
    }
}

/// One column of a table.
#[derive(Debug, Clone, Copy)]
pub struct ColumnSpec {
    /// The column's name.
    pub name: &'static str,
    /// Its type and checks.
    pub kind: ColumnKind,
    /// Whether empty cells are allowed.
    pub nullable: bool,
    /// What the column means.
    pub doc: &'static str,
}

/// One table of the data model.
#[derive(Debug, Clone, Copy)]
pub struct TableSpec {
    /// The file stem: `customers` for `customers.parquet`.
    pub name: &'static str,
    /// The column that must be unique, if any.
    pub key: Option<&'static str>,
    /// Whether the table may have no rows (a company with no tickets yet).
    pub may_be_empty: bool,
    /// Pairs `(later, earlier)` of date columns: `later` must not precede `earlier`.
    pub date_order: &'static [(&'static str, &'static str)],
    /// Required columns; others are kept but ignored.
    pub columns: &'static [ColumnSpec],
    /// What one row is.
    pub doc: &'static str,
}

const fn col(name: &'static str, kind: ColumnKind, doc: &'static str) -> ColumnSpec {
    ColumnSpec {
        name,
        kind,
        nullable: false,
        doc,
    }
}

const fn opt(name: &'static str, kind: ColumnKind, doc: &'static str) -> ColumnSpec {
    ColumnSpec {
        name,
        kind,
        nullable: true,
        doc,
    }
}

/// Plans, cheapest first.
pub const PLANS: &[&str] = &["starter", "growth", "enterprise"];
/// Contract terms.
pub const CONTRACTS: &[&str] = &["monthly", "annual", "two_year"];
/// Sales regions.
pub const REGIONS: &[&str] = &["na", "emea", "apac", "latam"];
/// Acquisition channels.
pub const CHANNELS: &[&str] = &["organic", "paid_search", "partner", "outbound", "referral"];
/// Employee roles.
pub const ROLES: &[&str] = &["account_manager", "acquisition"];
/// Subscription change types.
pub const CHANGE_TYPES: &[&str] = &["new", "upgrade", "downgrade"];
/// Payment attempt outcomes.
pub const PAYMENT_STATUS: &[&str] = &["succeeded", "failed"];
/// Survey kinds.
pub const SURVEY_KINDS: &[&str] = &["nps", "csat"];
/// Churn types.
pub const CHURN_TYPES: &[&str] = &["voluntary", "involuntary"];
/// Ticket categories.
pub const TICKET_CATEGORIES: &[&str] = &["bug", "how_to", "billing", "outage", "feature_request"];

use ColumnKind::*;

/// The event tables, in load order.
pub const TABLES: &[TableSpec] = &[
    TableSpec {
        name: "customers",
        key: Some("customer_id"),
        may_be_empty: false,
        date_order: &[],
        doc: "one row per customer account",
        columns: &[
            col("customer_id", Id, "customer id"),
            col("name", Text, "company name"),
            col("signup_date", Date, "first day of the first subscription"),
            col("plan", Category(PLANS), "plan at signup (current plan: see subscriptions)"),
            col("contract", Category(CONTRACTS), "contract term"),
            col("region", Category(REGIONS), "sales region"),
            col("acquisition_channel", Category(CHANNELS), "how the customer was acquired"),
            col("cac", Amount, "customer acquisition cost, in currency units"),
            col("account_manager_id", Id, "employee who manages the account"),
            col("acquisition_rep_id", Id, "employee who closed the deal"),
        ],
    },
    TableSpec {
        name: "employees",
        key: Some("employee_id"),
        may_be_empty: false,
        date_order: &[],
        doc: "one row per employee",
        columns: &[
            col("employee_id", Id, "employee id"),
            col("name", Text, "full name"),
            col("role", Category(ROLES), "account_manager or acquisition"),
            col("team", Text, "team name"),
            col("region", Category(REGIONS), "region the employee covers"),
        ],
    },
    TableSpec {
        name: "leads",
        key: Some("lead_id"),
        may_be_empty: true,
        date_order: &[],
        doc: "one row per sales lead; converted leads name their customer",
        columns: &[
            col("lead_id", Id, "lead id"),
            col("acquisition_rep_id", Id, "employee who worked the lead"),
            col("created_date", Date, "day the lead entered the funnel"),
            col("converted", Bool, "whether the lead became a customer"),
            opt("customer_id", Id, "the customer it became, if converted"),
        ],
    },
    TableSpec {
        name: "subscriptions",
        key: None,
        may_be_empty: false,
        date_order: &[],
        doc: "one row per subscription change (new, upgrade, downgrade); the latest row before a date is the subscription in force",
        columns: &[
            col("customer_id", Id, "customer id"),
            col("effective_date", Date, "day the change takes effect"),
            col("plan", Category(PLANS), "plan after the change"),
            col("seats", Count, "licensed seats after the change"),
            col("mrr", Amount, "monthly recurring revenue after the change"),
            col("change_type", Category(CHANGE_TYPES), "new, upgrade or downgrade"),
        ],
    },
    TableSpec {
        name: "invoices",
        key: Some("invoice_id"),
        may_be_empty: true,
        date_order: &[("due_date", "invoice_date")],
        doc: "one row per monthly invoice",
        columns: &[
            col("invoice_id", Id, "invoice id"),
            col("customer_id", Id, "customer id"),
            col("invoice_date", Date, "day the invoice was issued"),
            col("due_date", Date, "day payment is due"),
            col("amount", Amount, "amount invoiced"),
        ],
    },
    TableSpec {
        name: "payments",
        key: Some("payment_id"),
        may_be_empty: true,
        date_order: &[],
        doc: "one row per payment attempt; failed attempts are retried (dunning)",
        columns: &[
            col("payment_id", Id, "payment attempt id"),
            col("invoice_id", Id, "invoice paid"),
            col("customer_id", Id, "customer id"),
            col("attempt_date", Date, "day of the attempt"),
            col("attempt", Count, "1 for the first attempt, 2 and 3 for retries"),
            col("amount", Amount, "amount charged"),
            col("status", Category(PAYMENT_STATUS), "succeeded or failed"),
            col("days_late", Count, "days after the due date (0 when on time)"),
        ],
    },
    TableSpec {
        name: "usage",
        key: None,
        may_be_empty: true,
        date_order: &[],
        doc: "one row per customer and week of product use; known only once the week is over",
        columns: &[
            col("customer_id", Id, "customer id"),
            col("week_start", Date, "Monday the week starts; the row is complete 7 days later"),
            col("sessions", Count, "sessions in the week"),
            col("active_users", Count, "distinct users active in the week"),
            col("minutes", Amount, "minutes of use in the week"),
            col("features_adopted", Score(0, 12), "distinct features used so far (of 12)"),
        ],
    },
    TableSpec {
        name: "tickets",
        key: Some("ticket_id"),
        may_be_empty: true,
        date_order: &[("resolved_date", "opened_date")],
        doc: "one row per support ticket",
        columns: &[
            col("ticket_id", Id, "ticket id"),
            col("customer_id", Id, "customer id"),
            col("opened_date", Date, "day the ticket was opened"),
            col("severity", Score(1, 4), "1 (low) to 4 (critical)"),
            col("category", Category(TICKET_CATEGORIES), "what the ticket is about"),
            opt("resolved_date", Date, "day it was resolved; empty while open"),
            opt("resolution_hours", Amount, "hours from opening to resolution; empty while open"),
        ],
    },
    TableSpec {
        name: "surveys",
        key: Some("survey_id"),
        may_be_empty: true,
        date_order: &[],
        doc: "one row per survey sent; the score is empty when the customer did not answer",
        columns: &[
            col("survey_id", Id, "survey id"),
            col("customer_id", Id, "customer id"),
            col("survey_date", Date, "day the survey was sent"),
            col("kind", Category(SURVEY_KINDS), "nps (0-10) or csat (1-5)"),
            opt("score", Score(0, 10), "answer; empty when unanswered"),
        ],
    },
    TableSpec {
        name: "churn_events",
        key: Some("customer_id"),
        may_be_empty: true,
        date_order: &[],
        doc: "one row per churned customer",
        columns: &[
            col("customer_id", Id, "customer id"),
            col("churn_date", Date, "last day of service"),
            col("churn_type", Category(CHURN_TYPES), "voluntary (cancelled) or involuntary (unrecovered payment failure)"),
            col("reason", Text, "reason given or recorded"),
        ],
    },
];

/// Date columns that hold a scheduled day rather than an event: they may lie
/// after today and after the end of the observed data.
pub const SCHEDULED_DATES: &[&str] = &["due_date"];

/// The spec of a table by name.
pub fn table(name: &str) -> Option<&'static TableSpec> {
    TABLES.iter().find(|t| t.name == name)
}

const EPOCH_DAYS_CE: i32 = 719_163;

/// Days since 1970-01-01, as polars stores dates.
pub fn days_from_date(date: NaiveDate) -> i32 {
    use chrono::Datelike;
    date.num_days_from_ce() - EPOCH_DAYS_CE
}

/// The date `days` after 1970-01-01.
pub fn date_from_days(days: i32) -> NaiveDate {
    NaiveDate::from_num_days_from_ce_opt(days + EPOCH_DAYS_CE).unwrap_or(NaiveDate::MIN)
}
