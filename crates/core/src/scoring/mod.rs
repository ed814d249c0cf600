//! Scoring: from a model and raw feature rows to what staff act on. Per
//! customer: the calibrated churn probability and most likely churn type, the
//! top reasons, CLV and CLV/CAC, expected loss, the health index with its
//! trend since the previous run, and the inputs of the intervention policy.
//!
//! Pure, and shared by batch scoring (`churnguard score`) and online scoring
//! (`POST /v1/score`): [`score_customers`] does the work for both.

pub mod purchases;
mod reasons;
mod summary;

use std::collections::HashMap;

use polars::prelude::DataFrame;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::{columns, flat};

use crate::health::{self, Band, Component, HealthConfig, HealthIndex, HealthInputs, Trend};
use crate::interventions::{ChurnType, ClvSegment, ClvThresholds, InterventionPolicy, PolicyInput};
use crate::models::{Batch, FittedModel, ModelError, Reason};
use crate::value::{self, ValueConfig};

pub use reasons::{is_lever, levers_first, reason_text, LEVER_WINDOW};
pub use summary::{BelowMinimum, RunSummary};

/// Result alias of the scoring layer.
pub type Result<T, E = ScoringError> = std::result::Result<T, E>;

/// What can go wrong while scoring.
#[derive(Debug, thiserror::Error)]
pub enum ScoringError {
    /// The model could not score the rows.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// Customer context and rows differ in number.
    #[error("{rows} rows but {contexts} customer records")]
    Mismatch {
        /// Rows in the batch.
        rows: usize,
        /// Context records.
        contexts: usize,
    },
    /// A `[[health]]` signal reads a column the rows do not have.
    #[error("health signal: input `{column}` is not among the rows' inputs")]
    MissingInput {
        /// The column.
        column: String,
    },
    /// A `[roles]` column cannot be read as its role needs.
    #[error("column `{column}` (a `[roles]` column): {message}")]
    BadRole {
        /// The column.
        column: String,
        /// What is wrong, with the row.
        message: String,
    },
    /// A `[[health]]` signal is malformed.
    #[error("{message}")]
    BadSignal {
        /// What is wrong.
        message: String,
    },
}

impl crate::error::HasKind for ScoringError {
    fn kind(&self) -> crate::error::ErrorKind {
        match self {
            ScoringError::Model(e) => crate::error::HasKind::kind(e),
            ScoringError::Mismatch { .. } => crate::error::ErrorKind::Internal,
            ScoringError::MissingInput { .. }
            | ScoringError::BadSignal { .. }
            | ScoringError::BadRole { .. } => crate::error::ErrorKind::BadInput,
        }
    }
}

/// What a customer is besides their model inputs: who owns them, what they
/// pay, what they cost to acquire.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CustomerContext {
    /// Company name, when known.
    pub name: Option<String>,
    /// Account manager id.
    pub account_manager: Option<String>,
    /// Acquisition rep id.
    pub acquisition_rep: Option<String>,
    /// Segment for filtering risk lists (the plan, by default).
    pub segment: Option<String>,
    /// Monthly recurring revenue.
    pub mrr: Option<f64>,
    /// Customer acquisition cost.
    pub cac: Option<f64>,
    /// Days since signup, when the data says it only as a signup date (a
    /// flat table's `roles.signup_date`); otherwise tenure is a model input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenure_days: Option<f64>,
}

impl CustomerContext {
    /// Contexts of a feature table's rows: `account_manager_id`,
    /// `acquisition_rep_id`, `plan` (the segment), `mrr` (or a flat table's
    /// `MonthlyCharges`) and `cac` where present; names looked up by customer id.
    pub fn from_frame(frame: &DataFrame, names: &HashMap<String, String>) -> Vec<CustomerContext> {
        let n = frame.height();
        let text = |c: &str| columns::strs(frame, c).unwrap_or_else(|_| vec![None; n]);
        let num = |c: &str| columns::f64s(frame, c).unwrap_or_else(|_| vec![None; n]);
        let ids = text("customer_id");
        let am = text("account_manager_id");
        let rep = text("acquisition_rep_id");
        let plan = text("plan");
        let mrr = if frame.column("mrr").is_ok() {
            num("mrr")
        } else {
            num("MonthlyCharges")
        };
        let cac = num("cac");
        (0..n)
            .map(|i| CustomerContext {
                name: ids[i].as_ref().and_then(|id| names.get(id).cloned()),
                account_manager: am[i].clone(),
                acquisition_rep: rep[i].clone(),
                segment: plan[i].clone(),
                mrr: mrr[i],
                cac: cac[i],
                tenure_days: None,
            })
            .collect()
    }

    /// Contexts of a flat table's rows, read from the columns its schema's
    /// `[roles]` name (where a role is not set, as [`Self::from_frame`]
    /// does). `snapshot` dates the tenure of a `signup_date` role. A role
    /// column whose text is not a number (or a date) is an error naming the
    /// column and the row, never a silent blank.
    pub fn from_flat(
        frame: &DataFrame,
        roles: &flat::BusinessRoles,
        snapshot: chrono::NaiveDate,
    ) -> Result<Vec<CustomerContext>> {
        let mut contexts = CustomerContext::from_frame(frame, &HashMap::new());
        let bad = |column: &str, message: String| ScoringError::BadRole {
            column: column.to_string(),
            message,
        };
        let text = |column: &str| columns::strs(frame, column).map_err(|m| bad(column, m));
        // A cast turns unreadable text into a blank; find the first such row.
        let checked =
            |column: &str, values: Vec<Option<f64>>, what: &str| -> Result<Vec<Option<f64>>> {
                let raw = text(column)?;
                if let Some(row) = raw.iter().zip(&values).position(|(t, v)| {
                    t.as_deref().is_some_and(|t| !t.trim().is_empty()) && v.is_none()
                }) {
                    return Err(bad(
                        column,
                        format!(
                            "row {}: {:?} is not {what}",
                            row + 1,
                            raw[row].as_deref().unwrap_or_default()
                        ),
                    ));
                }
                Ok(values)
            };
        let number = |column: &str| -> Result<Vec<Option<f64>>> {
            let values = columns::f64s(frame, column).map_err(|m| bad(column, m))?;
            checked(column, values, "a number")
        };
        if let Some(c) = &roles.name {
            for (ctx, v) in contexts.iter_mut().zip(text(c)?) {
                ctx.name = v;
            }
        }
        if let Some(c) = &roles.owner {
            for (ctx, v) in contexts.iter_mut().zip(text(c)?) {
                ctx.account_manager = v;
            }
        }
        if let Some(c) = &roles.segment {
            for (ctx, v) in contexts.iter_mut().zip(text(c)?) {
                ctx.segment = v;
            }
        }
        if let Some(c) = &roles.mrr {
            for (ctx, v) in contexts.iter_mut().zip(number(c)?) {
                ctx.mrr = v;
            }
        }
        if let Some(c) = &roles.cac {
            for (ctx, v) in contexts.iter_mut().zip(number(c)?) {
                ctx.cac = v;
            }
        }
        let tenure: Option<Vec<Option<f64>>> = if let Some(c) = &roles.signup_date {
            let dates = frame
                .column(c.as_str())
                .and_then(|col| col.cast(&polars::prelude::DataType::Date))
                .map_err(|e| bad(c, e.to_string()))?;
            let dated =
                DataFrame::new(frame.height(), vec![dates]).map_err(|e| bad(c, e.to_string()))?;
            let days = columns::days(&dated, c).map_err(|m| bad(c, m))?;
            let days = checked(
                c,
                days.into_iter().map(|d| d.map(f64::from)).collect(),
                "a date (YYYY-MM-DD)",
            )?;
            let today = f64::from(crate::data::schema::days_from_date(snapshot));
            Some(
                days.into_iter()
                    .map(|d| d.map(|d| (today - d).max(0.0)))
                    .collect(),
            )
        } else if let Some(c) = &roles.tenure_months {
            Some(
                number(c)?
                    .into_iter()
                    .map(|m| m.map(|m| m * DAYS_PER_MONTH))
                    .collect(),
            )
        } else if let Some(c) = &roles.tenure_days {
            Some(number(c)?)
        } else {
            None
        };
        if let Some(tenure) = tenure {
            for (ctx, v) in contexts.iter_mut().zip(tenure) {
                ctx.tenure_days = v;
            }
        }
        Ok(contexts)
    }
}

/// A customer's score at the previous run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Previous {
    /// Health index then.
    pub health: f64,
    /// Band then.
    pub band: Band,
}

/// Settings of scoring: `[scoring]`, `[health]` and `[value]` in the config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScoringConfig {
    /// Reasons kept per customer; defaults to `3`.
    pub top_reasons: usize,
    /// P(involuntary | churn) above which the type is involuntary; defaults to `0.5`.
    pub involuntary_above: f64,
}

impl Default for ScoringConfig {
    fn default() -> Self {
        ScoringConfig {
            top_reasons: 3,
            involuntary_above: 0.5,
        }
    }
}

/// Everything scored about one customer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScoredCustomer {
    /// Customer id.
    pub customer_id: String,
    /// Context carried through.
    pub context: CustomerContext,
    /// Calibrated churn probability within the model's horizon.
    pub churn_probability: f64,
    /// P(involuntary | churn), when the model knows churn types.
    pub p_involuntary: Option<f64>,
    /// The most likely churn type, when the model knows churn types.
    pub churn_type: Option<ChurnType>,
    /// Inputs pushing risk up, strongest first.
    pub reasons: Vec<Reason>,
    /// Categorical inputs whose value was never seen in training (scored in the unknown bucket).
    pub unknown_categories: Vec<String>,
    /// Customer lifetime value.
    pub clv: f64,
    /// CLV / CAC.
    pub clv_cac: Option<f64>,
    /// churn probability × CLV.
    pub expected_loss: f64,
    /// CLV segment within this batch.
    pub clv_segment: ClvSegment,
    /// The health index.
    pub health: HealthIndex,
    /// Change since the previous run.
    pub trend: Trend,
    /// Band at the previous run.
    pub previous_band: Option<Band>,
    /// Failed payments in 90 days (from the inputs, when present).
    pub payment_failures: Option<f64>,
}

impl ScoredCustomer {
    /// What the intervention policy needs of this customer.
    pub fn policy_input(&self) -> PolicyInput {
        PolicyInput {
            customer_id: self.customer_id.clone(),
            health: self.health.score,
            band: self.health.band,
            previous_band: self.previous_band,
            health_change: self.trend.change,
            direction: self.trend.direction,
            churn_type: self.churn_type,
            churn_probability: self.churn_probability,
            clv: self.clv,
            clv_segment: self.clv_segment,
            payment_failures: self.payment_failures,
            account_manager: self.context.account_manager.clone(),
            suppressed: false,
        }
    }
}

/// Batches from this many rows are scored on rayon's pool.
const PARALLEL_FROM: usize = 4 * 1024;

/// A flat schema's health signal with its columns found in the batch.
enum BatchSignal<'a> {
    Linear {
        component: Component,
        column: usize,
        worst: f64,
        best: f64,
    },
    Levels {
        component: Component,
        column: usize,
        points: &'a std::collections::BTreeMap<String, f64>,
    },
    Share {
        component: Component,
        columns: Vec<usize>,
        value: &'a str,
    },
}

impl<'a> BatchSignal<'a> {
    fn resolve(signal: &'a flat::HealthSignal, batch: &Batch) -> Result<BatchSignal<'a>> {
        let missing = |column: &str| ScoringError::MissingInput {
            column: column.to_string(),
        };
        let numeric = |c: &str| {
            batch
                .numeric_names
                .iter()
                .position(|n| n == c)
                .ok_or_else(|| missing(c))
        };
        let categorical = |c: &str| {
            batch
                .categorical_names
                .iter()
                .position(|n| n == c)
                .ok_or_else(|| missing(c))
        };
        let component = signal.component;
        Ok(
            match signal
                .rule()
                .map_err(|message| ScoringError::BadSignal { message })?
            {
                flat::SignalRule::Linear {
                    column,
                    worst,
                    best,
                } => BatchSignal::Linear {
                    component,
                    column: numeric(column)?,
                    worst,
                    best,
                },
                flat::SignalRule::Levels { column, points } => BatchSignal::Levels {
                    component,
                    column: categorical(column)?,
                    points,
                },
                flat::SignalRule::Share { columns, value } => BatchSignal::Share {
                    component,
                    columns: columns
                        .iter()
                        .map(|c| categorical(c))
                        .collect::<Result<_>>()?,
                    value,
                },
            },
        )
    }

    /// The signal's score for row `i`, `None` where its input is unknown.
    fn score(&self, batch: &Batch, i: usize) -> Option<(Component, f64)> {
        match self {
            BatchSignal::Linear {
                component,
                column,
                worst,
                best,
            } => {
                let v = batch.numeric[[i, *column]];
                v.is_finite().then(|| {
                    (
                        *component,
                        100.0 * ((v - worst) / (best - worst)).clamp(0.0, 1.0),
                    )
                })
            }
            BatchSignal::Levels {
                component,
                column,
                points,
            } => {
                let level = batch.categorical[*column][i].as_deref()?;
                points.get(level).map(|p| (*component, *p))
            }
            BatchSignal::Share {
                component,
                columns,
                value,
            } => {
                let (mut known, mut hits) = (0usize, 0usize);
                for v in columns
                    .iter()
                    .filter_map(|&c| batch.categorical[c][i].as_deref())
                {
                    known += 1;
                    hits += usize::from(v == *value);
                }
                (known > 0).then(|| (*component, 100.0 * hits as f64 / known as f64))
            }
        }
    }
}

/// Days in an average month, for tenure given in months.
const DAYS_PER_MONTH: f64 = 30.4375;

/// Column positions of the health inputs in a batch.
struct HealthColumns<'a> {
    /// Tenure's column and the factor that makes it days.
    tenure: Option<(usize, f64)>,
    signals: Vec<BatchSignal<'a>>,
    sessions_per_seat: Option<usize>,
    usage_trend: Option<usize>,
    features_adopted: Option<usize>,
    nps: Option<usize>,
    csat: Option<usize>,
    failures: Option<usize>,
    late: Option<usize>,
    tickets: Option<usize>,
    severe: Option<usize>,
    open: Option<usize>,
}

impl<'a> HealthColumns<'a> {
    fn of(batch: &Batch, input: Option<&'a flat::FlatSchema>) -> Result<HealthColumns<'a>> {
        let find = |name: &str| batch.numeric_names.iter().position(|n| n == name);
        let roles = input.map(|s| &s.roles);
        let tenure = find("tenure_days")
            .map(|j| (j, 1.0))
            .or_else(|| {
                let days = roles?.tenure_days.as_deref()?;
                find(days).map(|j| (j, 1.0))
            })
            .or_else(|| {
                let months = roles?.tenure_months.as_deref()?;
                find(months).map(|j| (j, DAYS_PER_MONTH))
            });
        let signals = input
            .map(|s| {
                s.health
                    .iter()
                    .map(|signal| BatchSignal::resolve(signal, batch))
                    .collect::<Result<Vec<_>>>()
            })
            .transpose()?
            .unwrap_or_default();
        Ok(HealthColumns {
            tenure,
            signals,
            sessions_per_seat: find("sessions_per_seat_30d"),
            usage_trend: find("usage_trend"),
            features_adopted: find("features_adopted"),
            nps: find("last_nps"),
            csat: find("last_csat"),
            failures: find("payment_failures_90d"),
            late: find("late_payments_90d"),
            tickets: find("tickets_90d"),
            severe: find("severe_tickets_90d"),
            open: find("open_tickets"),
        })
    }

    fn inputs(&self, batch: &Batch, i: usize, p: f64, context: &CustomerContext) -> HealthInputs {
        let get = |j: Option<usize>| {
            j.map(|j| batch.numeric[[i, j]])
                .filter(|v: &f64| v.is_finite())
        };
        let tenure = self
            .tenure
            .and_then(|(j, days)| get(Some(j)).map(|v| v * days))
            .or(context.tenure_days);
        HealthInputs {
            churn_probability: p,
            tenure_days: tenure,
            sessions_per_seat_30d: get(self.sessions_per_seat),
            usage_trend: get(self.usage_trend),
            features_adopted: get(self.features_adopted),
            last_nps: get(self.nps),
            last_csat: get(self.csat),
            payment_failures_90d: get(self.failures),
            late_payments_90d: get(self.late),
            tickets_90d: get(self.tickets),
            severe_tickets_90d: get(self.severe),
            open_tickets: get(self.open),
            mapped: self
                .signals
                .iter()
                .filter_map(|s| s.score(batch, i))
                .collect(),
        }
    }
}

/// The settings [`score_customers`] reads.
#[derive(Debug, Clone, Copy)]
pub struct Settings<'a> {
    /// Scoring settings.
    pub scoring: &'a ScoringConfig,
    /// Health index settings.
    pub health: &'a HealthConfig,
    /// Valuation settings.
    pub value: &'a ValueConfig,
    /// The intervention policy (for CLV segments).
    pub policy: &'a InterventionPolicy,
    /// CLV cut-offs to use; `None` takes them from this batch's own CLVs
    /// (batch runs), a server passes those of the latest batch run.
    pub clv_thresholds: Option<ClvThresholds>,
    /// The model's lifetime curve (its manifest's), which values customers;
    /// without one CLV falls back to a constant retention.
    pub lifetime: Option<&'a value::lifetime::LifetimeCurve>,
    /// The model's input schema, whose roles (tenure) and `[[health]]`
    /// signals feed the health index; `None` for none.
    pub input: Option<&'a flat::FlatSchema>,
}

/// Scores a batch. `contexts` line up with the batch's rows; `previous`
/// holds the last run's score per customer id; `horizon_days` is the
/// horizon of the model's probability.
pub fn score_customers(
    model: &FittedModel,
    horizon_days: u32,
    batch: &Batch,
    contexts: &[CustomerContext],
    previous: &HashMap<String, Previous>,
    settings: Settings<'_>,
) -> Result<Vec<ScoredCustomer>> {
    if contexts.len() != batch.len() {
        return Err(ScoringError::Mismatch {
            rows: batch.len(),
            contexts: contexts.len(),
        });
    }
    // A few more reasons than kept, so a lever just below the strongest
    // context can lead (reasons.rs).
    let keep = settings.scoring.top_reasons;
    let asked = if keep == 0 { 0 } else { keep.max(LEVER_WINDOW) };
    let scores = model.score_batch(batch, asked)?;
    let columns = HealthColumns::of(batch, settings.input)?;
    let clvs: Vec<f64> = scores
        .probabilities
        .iter()
        .zip(contexts)
        .map(|(p, c)| {
            let mrr = c.mrr.unwrap_or(0.0);
            match settings.lifetime {
                Some(curve) => curve.clv(mrr, *p, c.segment.as_deref(), settings.value),
                None => value::clv(mrr, *p, horizon_days, settings.value),
            }
        })
        .collect();
    let thresholds = settings
        .clv_thresholds
        .or_else(|| ClvThresholds::of(&clvs, settings.policy));
    let segment = |v: f64| thresholds.map_or(ClvSegment::Medium, |t| t.segment(v));
    let p_involuntary = scores.p_involuntary.as_deref();
    let probabilities = &scores.probabilities;
    let clvs = &clvs;
    let row = |i: usize, mut reasons: Vec<Reason>, unknown: Vec<String>| {
        levers_first(&mut reasons, keep, settings.input);
        let p = probabilities[i];
        let context = &contexts[i];
        let id = &batch.ids[i];
        let inputs = columns.inputs(batch, i, p, context);
        let h = health::health_index(&inputs, settings.health);
        let prev = previous.get(id);
        let p_involuntary = p_involuntary.map(|v| v[i]);
        ScoredCustomer {
            customer_id: id.clone(),
            context: context.clone(),
            churn_probability: p,
            p_involuntary,
            churn_type: p_involuntary.map(|q| {
                if q > settings.scoring.involuntary_above {
                    ChurnType::Involuntary
                } else {
                    ChurnType::Voluntary
                }
            }),
            reasons,
            unknown_categories: unknown,
            clv: clvs[i],
            clv_cac: value::clv_cac(clvs[i], context.cac),
            expected_loss: p * clvs[i],
            clv_segment: segment(clvs[i]),
            trend: health::trend(prev.map(|p| p.health), h.score, settings.health),
            previous_band: prev.map(|p| p.band),
            health: h,
            payment_failures: inputs.payment_failures_90d,
        }
    };
    // Rows are independent: large batches are split across rayon's pool,
    // small ones (online requests) stay on the calling thread.
    let out: Vec<ScoredCustomer> = if batch.len() < PARALLEL_FROM {
        scores
            .reasons
            .into_iter()
            .zip(scores.unknown)
            .enumerate()
            .map(|(i, (r, u))| row(i, r, u))
            .collect()
    } else {
        scores
            .reasons
            .into_par_iter()
            .zip(scores.unknown.into_par_iter())
            .enumerate()
            .with_min_len(1024)
            .map(|(i, (r, u))| row(i, r, u))
            .collect()
    };
    Ok(out)
}
