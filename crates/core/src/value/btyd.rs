//! Customers without contracts ("buy till you die"): the BG/NBD model of
//! Fader, Hardie & Lee (2005), "Counting your customers the easy way", for
//! whether a customer is still active and how many purchases they will
//! make, and the Gamma-Gamma spend model (Fader, Hardie & Lee 2005, "RFM
//! and CLV: using iso-value curves for customer base analysis"; Fader &
//! Hardie's note 025) for what a purchase is worth.
//!
//! A retail customer never announces that they have left; they just stop
//! buying. BG/NBD reads that from three numbers per customer, taken over a
//! calibration period: `x`, repeat purchases; `t_x`, the customer's age at
//! their last purchase; `T`, their age at the end of the period. While
//! active, a customer buys as a Poisson process whose rate varies across
//! customers as Gamma(r, α); after each purchase they drop out with a
//! probability that varies as Beta(a, b). Churn risk is then
//! `1 − P(alive)`.
//!
//! Everything here follows the python `lifetimes` package (0.11.3), so that
//! its fits can be checked against ours (`tests/it/btyd.rs`, references from
//! `bench/peers/btyd_lifetimes.py`):
//!
//! - the summary is `calibration_and_holdout_data`'s (see [`summarize`]);
//! - the parameters are lifetimes' (`r, alpha, a, b`; `p, q, v`) and the
//!   log-likelihoods are its, with no penalty;
//! - predictions are its equations (P(alive), conditional and unconditional
//!   expected purchases, conditional expected average value).
//!
//! The likelihoods are maximised over the log-parameters with the
//! Nelder–Mead search the retention model uses ([`super::sbg`]), after
//! grouping customers with identical summaries. Times are rescaled so that
//! the oldest customer is 1 old during the search, as lifetimes does, which
//! changes the likelihood only by a constant.
//!
//! Pure: parsed rows in, numbers out. ln Γ and ₂F₁ are our own (a Lanczos
//! approximation and the Gauss series after Euler's transformation).

use std::collections::{BTreeMap, HashMap};

use chrono::{Datelike, NaiveDate};

use super::sbg::{minimize, Minimum};

/// Result alias of the purchase models.
pub type Result<T, E = BtydError> = std::result::Result<T, E>;

/// What can go wrong building a summary or fitting a purchase model.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BtydError {
    /// A transaction's amount is negative or not a number.
    #[error("transaction {row} (customer {customer_id}, {date}): amount {amount} must be a finite number >= 0")]
    BadAmount {
        /// Index of the row in the input, from 0.
        row: usize,
        /// The row's customer.
        customer_id: i64,
        /// The row's date.
        date: NaiveDate,
        /// The offending amount.
        amount: f64,
    },
    /// The holdout period ends before it starts.
    #[error("the holdout end {holdout_end} must be after the calibration end {calibration_end}")]
    BadPeriod {
        /// Last day of the calibration period.
        calibration_end: NaiveDate,
        /// Last day of the holdout period.
        holdout_end: NaiveDate,
    },
    /// Nothing to summarise or fit.
    #[error("no {what}")]
    Empty {
        /// What is missing ("transactions on or before the calibration end", ...).
        what: &'static str,
    },
    /// A customer summary that no transaction log could produce.
    #[error("customer {customer_id}: {message}")]
    BadSummary {
        /// The customer.
        customer_id: i64,
        /// What is wrong.
        message: String,
    },
    /// A model parameter out of its domain.
    #[error("invalid parameter `{name}`: {value}")]
    BadParameter {
        /// The parameter.
        name: &'static str,
        /// Its value.
        value: f64,
    },
    /// A transaction log's column is missing or a row's value is unreadable.
    #[error("column `{column}`: {message}")]
    BadColumn {
        /// The column.
        column: String,
        /// What is wrong, naming the row where one is to blame.
        message: String,
    },
    /// The likelihood search did not settle.
    #[error("the {model} likelihood search did not converge after {evaluations} evaluations")]
    NotConverged {
        /// "BG/NBD" or "Gamma-Gamma".
        model: &'static str,
        /// Likelihood evaluations spent.
        evaluations: usize,
    },
}

impl crate::error::HasKind for BtydError {
    fn kind(&self) -> crate::error::ErrorKind {
        // Every variant names rows, dates, summaries or parameters the caller
        // supplied; a search that does not settle is a property of the data.
        crate::error::ErrorKind::BadInput
    }
}

// ---------------------------------------------------------------------------
// The summary
// ---------------------------------------------------------------------------

/// One purchase in a transaction log.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Transaction {
    /// The customer.
    pub customer_id: i64,
    /// The day of the purchase.
    pub date: NaiveDate,
    /// Its value (revenue or margin), `>= 0`.
    pub amount: f64,
}

/// Reads a transaction log's rows: integer `customer_id`, `date` (a date,
/// or text as `YYYY-MM-DD`) and the `amount` column. A row with a missing
/// or unreadable value is an error naming the column and the row (counted
/// from 1, the first data row), never dropped.
pub fn transactions_from_frame(
    frame: &polars::prelude::DataFrame,
    amount: &str,
) -> Result<Vec<Transaction>> {
    use crate::data::columns;
    use polars::prelude::DataType;
    let bad = |column: &str, message: String| BtydError::BadColumn {
        column: column.to_string(),
        message,
    };
    let first_missing = |v: &[Option<bool>]| v.iter().position(|x| x.is_none());
    let ids = columns::i64s(frame, "customer_id").map_err(|e| bad("customer_id", e))?;
    let dates = match columns::days(frame, "date") {
        Ok(d)
            if frame
                .column("date")
                .map(|c| c.dtype() == &DataType::Date)
                .unwrap_or(false) =>
        {
            d
        }
        _ => {
            let parsed = frame
                .column("date")
                .map_err(|_| bad("date", "no such column".into()))?
                .cast(&DataType::Date)
                .map_err(|e| bad("date", e.to_string()))?;
            let df = polars::prelude::DataFrame::new(frame.height(), vec![parsed])
                .map_err(|e| bad("date", e.to_string()))?;
            columns::days(&df, "date").map_err(|e| bad("date", e))?
        }
    };
    let amounts = columns::f64s(frame, amount).map_err(|e| bad(amount, e))?;
    for (name, present) in [
        (
            "customer_id",
            ids.iter().map(|v| v.map(|_| true)).collect::<Vec<_>>(),
        ),
        ("date", dates.iter().map(|v| v.map(|_| true)).collect()),
        (amount, amounts.iter().map(|v| v.map(|_| true)).collect()),
    ] {
        if let Some(row) = first_missing(&present) {
            return Err(bad(
                name,
                format!(
                    "row {} is empty or not readable as the column's type",
                    row + 1
                ),
            ));
        }
    }
    Ok(ids
        .into_iter()
        .zip(dates)
        .zip(amounts)
        .filter_map(|((id, day), amount)| {
            Some(Transaction {
                customer_id: id?,
                date: crate::data::schema::date_from_days(day?),
                amount: amount?,
            })
        })
        .collect())
}

/// How purchases are grouped and time is measured: lifetimes' `freq` and
/// `freq_multiplier`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeUnit {
    /// `freq='D'`: one purchase occasion per day; times in days.
    Days,
    /// `freq='W'`: one purchase occasion per calendar week (pandas' `W-SUN`
    /// weeks, Monday to Sunday, each dated by its Monday); times in whole
    /// weeks between those Mondays, the calibration end included.
    Weeks,
    /// `freq='D', freq_multiplier=7`: one purchase occasion per day, times
    /// in fractional weeks (days / 7). This is how the BG/NBD paper's CDNOW
    /// summary was made.
    DaysInWeeks,
}

impl TimeUnit {
    /// The period a day falls in, as the day number of the period's start.
    fn period_start(self, date: NaiveDate) -> i64 {
        let day = i64::from(date.num_days_from_ce());
        match self {
            TimeUnit::Days | TimeUnit::DaysInWeeks => day,
            TimeUnit::Weeks => day - i64::from(date.weekday().num_days_from_monday()),
        }
    }

    /// Days in one unit of time.
    fn days(self) -> f64 {
        match self {
            TimeUnit::Days => 1.0,
            TimeUnit::Weeks | TimeUnit::DaysInWeeks => 7.0,
        }
    }
}

/// One customer's calibration-period summary.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CustomerSummary {
    /// The customer.
    pub customer_id: i64,
    /// `x`: repeat purchase occasions (periods with a purchase, the first
    /// excluded).
    pub frequency: u32,
    /// `t_x`: time from the first to the last purchase occasion (0 without
    /// repeats).
    pub recency: f64,
    /// `T`: time from the first purchase occasion to the calibration end.
    pub age: f64,
    /// Mean value of the repeat occasions (each occasion's amounts summed);
    /// 0 without repeats.
    pub monetary_value: f64,
}

/// Summaries of the calibration period and purchases of the holdout period.
#[derive(Debug, Clone, PartialEq)]
pub struct CalibrationHoldout {
    /// One summary per customer seen by the calibration end, by customer id.
    pub customers: Vec<CustomerSummary>,
    /// Purchase occasions in the holdout period, per customer of
    /// `customers` (same order).
    pub holdout_frequency: Vec<u32>,
    /// The holdout period's length in the time unit (whole periods between
    /// the calibration end's and the holdout end's, as lifetimes counts it).
    pub holdout_duration: f64,
}

/// Summarises a transaction log as lifetimes' `calibration_and_holdout_data`
/// summarises its calibration part: transactions after `calibration_end`
/// are dropped; dates are bucketed into periods of `unit`, and a period with
/// several purchases is one occasion whose amounts are summed; `frequency`
/// counts occasions after the first; `recency` and `age` run from the first
/// occasion's period to the last one's and to the calibration end's (in
/// `unit`); `monetary_value` is the mean of the repeat occasions' sums.
///
/// Customers come out sorted by id. Fails on an empty log and on a negative
/// or non-finite amount (zero is allowed).
pub fn summarize(
    transactions: &[Transaction],
    calibration_end: NaiveDate,
    unit: TimeUnit,
) -> Result<Vec<CustomerSummary>> {
    let occasions = occasions(transactions, unit, |d| d <= calibration_end)?;
    if occasions.is_empty() {
        return Err(BtydError::Empty {
            what: "transactions on or before the calibration end",
        });
    }
    let end = unit.period_start(calibration_end);
    let scale = unit.days();
    Ok(occasions
        .into_iter()
        .map(|(customer_id, periods)| {
            // BTreeMap: periods in order, the first is the first purchase.
            let first = *periods.keys().next().unwrap_or(&end);
            let last = *periods.keys().next_back().unwrap_or(&end);
            let repeats: Vec<f64> = periods.values().skip(1).copied().collect();
            let frequency = repeats.len() as u32;
            let monetary_value = if repeats.is_empty() {
                0.0
            } else {
                repeats.iter().sum::<f64>() / repeats.len() as f64
            };
            CustomerSummary {
                customer_id,
                frequency,
                recency: (last - first) as f64 / scale,
                age: (end - first) as f64 / scale,
                monetary_value,
            }
        })
        .collect())
}

/// [`summarize`] for the calibration period ending `calibration_end`, plus
/// each of those customers' purchase occasions in `(calibration_end,
/// holdout_end]` (customers first seen in the holdout are left out), as
/// lifetimes' `calibration_and_holdout_data` computes them.
pub fn calibration_and_holdout(
    transactions: &[Transaction],
    calibration_end: NaiveDate,
    holdout_end: NaiveDate,
    unit: TimeUnit,
) -> Result<CalibrationHoldout> {
    if holdout_end <= calibration_end {
        return Err(BtydError::BadPeriod {
            calibration_end,
            holdout_end,
        });
    }
    let customers = summarize(transactions, calibration_end, unit)?;
    let holdout = occasions(transactions, unit, |d| {
        d > calibration_end && d <= holdout_end
    })?;
    let holdout_frequency = customers
        .iter()
        .map(|c| holdout.get(&c.customer_id).map_or(0, |p| p.len() as u32))
        .collect();
    let holdout_duration =
        (unit.period_start(holdout_end) - unit.period_start(calibration_end)) as f64 / unit.days();
    Ok(CalibrationHoldout {
        customers,
        holdout_frequency,
        holdout_duration,
    })
}

/// Per customer, the amount summed per period, for the rows whose date
/// passes `keep`.
fn occasions(
    transactions: &[Transaction],
    unit: TimeUnit,
    keep: impl Fn(NaiveDate) -> bool,
) -> Result<BTreeMap<i64, BTreeMap<i64, f64>>> {
    let mut out: BTreeMap<i64, BTreeMap<i64, f64>> = BTreeMap::new();
    for (row, t) in transactions.iter().enumerate() {
        if !(t.amount.is_finite() && t.amount >= 0.0) {
            return Err(BtydError::BadAmount {
                row,
                customer_id: t.customer_id,
                date: t.date,
                amount: t.amount,
            });
        }
        if keep(t.date) {
            *out.entry(t.customer_id)
                .or_default()
                .entry(unit.period_start(t.date))
                .or_default() += t.amount;
        }
    }
    Ok(out)
}

fn check_summary(c: &CustomerSummary) -> Result<()> {
    let bad = |message: String| {
        Err(BtydError::BadSummary {
            customer_id: c.customer_id,
            message,
        })
    };
    if !(c.age.is_finite() && c.recency.is_finite() && c.recency >= 0.0) {
        return bad(format!(
            "recency {} and age {} must be finite and >= 0",
            c.recency, c.age
        ));
    }
    if c.recency > c.age {
        return bad(format!(
            "recency {} is larger than age {}",
            c.recency, c.age
        ));
    }
    if c.frequency == 0 && c.recency != 0.0 {
        return bad(format!(
            "recency {} without repeat purchases must be 0",
            c.recency
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// BG/NBD
// ---------------------------------------------------------------------------

/// BG/NBD parameters in lifetimes' naming. Persisted as they are.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BgNbdParams {
    /// Shape of the Gamma distribution of purchase rates.
    pub r: f64,
    /// Scale of that Gamma distribution, in the summary's time unit (the
    /// mean purchase rate while active is `r / alpha` per unit).
    pub alpha: f64,
    /// First parameter of the Beta distribution of dropout probabilities.
    pub a: f64,
    /// Second parameter of that Beta (mean dropout per purchase `a / (a + b)`).
    pub b: f64,
}

/// A BG/NBD fit.
#[derive(Debug, Clone, PartialEq)]
pub struct BgNbdFit {
    /// The maximum-likelihood parameters.
    pub params: BgNbdParams,
    /// The maximised log-likelihood, summed over customers, in the
    /// summary's time unit.
    pub log_likelihood: f64,
    /// Customers fitted.
    pub customers: usize,
    /// Whether the search stopped at the edge of its box (a log-parameter
    /// at ±25). On data where nobody is seen to drop out, the likelihood
    /// keeps rising as `a → 0` with `a / b → 0`: the model becomes the NBD,
    /// `r` and `alpha` are still determined but `a` and `b` are not, and the
    /// search ends on that ridge, at the edge or, once the likelihood no
    /// longer changes, before it; a dropout per purchase `a / (a + b)` near
    /// 0 tells either case.
    pub at_bound: bool,
}

/// `ln Γ(a + n) − ln Γ(a)` for whole `n`, as a sum of logs: exact where the
/// difference of two large ln Γ values would cancel.
fn ln_rising(a: f64, n: u32) -> f64 {
    if n > 2000 {
        return ln_gamma(a + f64::from(n)) - ln_gamma(a);
    }
    (0..n).map(|k| (a + f64::from(k)).ln()).sum()
}

impl BgNbdParams {
    /// Checks that every parameter is finite and positive.
    pub fn new(r: f64, alpha: f64, a: f64, b: f64) -> Result<Self> {
        for (name, value) in [("r", r), ("alpha", alpha), ("a", a), ("b", b)] {
            if !(value.is_finite() && value > 0.0) {
                return Err(BtydError::BadParameter { name, value });
            }
        }
        Ok(BgNbdParams { r, alpha, a, b })
    }

    /// One customer's log-likelihood (lifetimes' `_negative_log_likelihood`,
    /// negated, per customer; Fader, Hardie & Lee 2005, eq. 6).
    pub fn customer_log_likelihood(&self, x: u32, t_x: f64, age: f64) -> f64 {
        let BgNbdParams { r, alpha, a, b } = *self;
        let xf = f64::from(x);
        let a1 = ln_rising(r, x) + r * alpha.ln();
        // ln Γ(a+b) + ln Γ(b+x) − ln Γ(b) − ln Γ(a+b+x), without cancellation.
        let a2 = (0..x)
            .map(|k| -(a / (b + f64::from(k))).ln_1p())
            .sum::<f64>();
        let a3 = -(r + xf) * (alpha + age).ln();
        if x == 0 {
            return a1 + a2 + a3;
        }
        let a4 = a.ln() - (b + xf - 1.0).ln() - (r + xf) * (t_x + alpha).ln();
        let m = a3.max(a4);
        a1 + a2 + m + ((a3 - m).exp() + (a4 - m).exp()).ln()
    }

    /// Log-likelihood of a set of summaries.
    pub fn log_likelihood(&self, customers: &[CustomerSummary]) -> f64 {
        customers
            .iter()
            .map(|c| self.customer_log_likelihood(c.frequency, c.recency, c.age))
            .sum()
    }

    /// P(alive): the probability that a customer with history
    /// `(x, t_x, T)` has not dropped out (Fader, Hardie & Lee's note 021).
    /// 1 without repeat purchases: in BG/NBD a customer can only drop out
    /// right after a purchase.
    pub fn p_alive(&self, x: u32, t_x: f64, age: f64) -> f64 {
        if x == 0 {
            return 1.0;
        }
        let BgNbdParams { r, alpha, a, b } = *self;
        let xf = f64::from(x);
        let log_odds_dead =
            (r + xf) * ((alpha + age) / (alpha + t_x)).ln() + (a / (b + xf - 1.0)).ln();
        1.0 / (1.0 + log_odds_dead.exp())
    }

    /// Expected repeat purchases in the next `t` time units of a customer
    /// with history `(x, t_x, T)` (eq. 10 of the paper; lifetimes'
    /// `conditional_expected_number_of_purchases_up_to_time`).
    pub fn expected_purchases(&self, t: f64, x: u32, t_x: f64, age: f64) -> f64 {
        let BgNbdParams { r, alpha, a, b } = *self;
        let xf = f64::from(x);
        if t <= 0.0 {
            return 0.0;
        }
        // ((α+T)/(α+T+t))^{r+x} ₂F₁(r+x, b+x; a+b+x−1; z) with Euler's
        // transformation is (1−z)^{a−1} ₂F₁(a+b−1−r, a−1; a+b+x−1; z).
        let z = t / (alpha + age + t);
        let c = a + b + xf - 1.0;
        let tail = ((a - 1.0) * (-z).ln_1p()).exp() * hyp2f1_series(a + b - 1.0 - r, a - 1.0, c, z);
        let numerator = c / (a - 1.0) * (1.0 - tail);
        let denominator = if x > 0 {
            1.0 + a / (b + xf - 1.0) * ((alpha + age) / (alpha + t_x)).powf(r + xf)
        } else {
            1.0
        };
        numerator / denominator
    }

    /// Expected repeat purchases of a new customer over their first `t`
    /// time units (eq. 9; lifetimes' `expected_number_of_purchases_up_to_time`).
    pub fn expected_purchases_new(&self, t: f64) -> f64 {
        let BgNbdParams { r, alpha, a, b } = *self;
        if t <= 0.0 {
            return 0.0;
        }
        let z = t / (alpha + t);
        let c = a + b - 1.0;
        let tail = ((a - 1.0) * (-z).ln_1p()).exp() * hyp2f1_series(c - r, a - 1.0, c, z);
        c / (a - 1.0) * (1.0 - tail)
    }
}

/// Summaries grouped by identical `(x, t_x, T)`, with counts: the
/// likelihood is evaluated once per group.
fn grouped(customers: &[CustomerSummary]) -> Vec<(u32, f64, f64, f64)> {
    let mut groups: HashMap<(u32, u64, u64), f64> = HashMap::new();
    for c in customers {
        *groups
            .entry((c.frequency, c.recency.to_bits(), c.age.to_bits()))
            .or_default() += 1.0;
    }
    let mut out: Vec<(u32, f64, f64, f64)> = groups
        .into_iter()
        .map(|((x, t_x, age), w)| (x, f64::from_bits(t_x), f64::from_bits(age), w))
        .collect();
    // A fixed order, so that the fit does not depend on the hash seed.
    out.sort_by(|p, q| {
        (p.0, p.1, p.2)
            .partial_cmp(&(q.0, q.1, q.2))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    out
}

/// Fits BG/NBD to calibration summaries by maximum likelihood (lifetimes'
/// `BetaGeoFitter(penalizer_coef=0)`).
///
/// Fails on an empty or inconsistent summary (recency above age, recency
/// without repeats, negative times), on summaries where nobody is older than
/// 0, and when the search does not settle. See [`BgNbdFit::at_bound`] for
/// data that show no dropout.
pub fn fit_bg_nbd(customers: &[CustomerSummary]) -> Result<BgNbdFit> {
    if customers.is_empty() {
        return Err(BtydError::Empty {
            what: "customers to fit",
        });
    }
    for c in customers {
        check_summary(c)?;
    }
    let max_age = customers.iter().map(|c| c.age).fold(0.0, f64::max);
    if max_age <= 0.0 {
        return Err(BtydError::Empty {
            what: "customer older than 0 time units",
        });
    }
    // Search in time units where the oldest customer is 1 old.
    let scale = 1.0 / max_age;
    let groups: Vec<(u32, f64, f64, f64)> = grouped(customers)
        .into_iter()
        .map(|(x, t_x, age, w)| (x, t_x * scale, age * scale, w))
        .collect();
    let total: f64 = groups.iter().map(|g| g.3).sum();
    let objective = |p: &[f64]| {
        let params = BgNbdParams {
            r: p[0].exp(),
            alpha: p[1].exp(),
            a: p[2].exp(),
            b: p[3].exp(),
        };
        let ll: f64 = groups
            .iter()
            .map(|&(x, t_x, age, w)| w * params.customer_log_likelihood(x, t_x, age))
            .sum();
        -ll / total
    };
    // lifetimes starts every log-parameter at 0.1.
    let found = minimize(objective, &[0.1; 4], &super::sbg::LOG_BOX);
    let Minimum {
        x,
        converged,
        evaluations,
        at_bound,
        ..
    } = found;
    if !converged {
        return Err(BtydError::NotConverged {
            model: "BG/NBD",
            evaluations,
        });
    }
    let params = BgNbdParams {
        r: x[0].exp(),
        alpha: x[1].exp() / scale,
        a: x[2].exp(),
        b: x[3].exp(),
    };
    Ok(BgNbdFit {
        params,
        log_likelihood: params.log_likelihood(customers),
        customers: customers.len(),
        at_bound,
    })
}

// ---------------------------------------------------------------------------
// Gamma-Gamma
// ---------------------------------------------------------------------------

/// Gamma-Gamma parameters in lifetimes' naming. Persisted as they are.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GammaGammaParams {
    /// Shape of the Gamma distribution of one transaction's value.
    pub p: f64,
    /// Shape of the Gamma distribution of customers' scale parameters.
    pub q: f64,
    /// Scale of that distribution, in currency (the population's mean
    /// transaction value is `p v / (q − 1)` when `q > 1`).
    pub v: f64,
}

/// A Gamma-Gamma fit.
#[derive(Debug, Clone, PartialEq)]
pub struct GammaGammaFit {
    /// The maximum-likelihood parameters.
    pub params: GammaGammaParams,
    /// The maximised log-likelihood, summed over the customers fitted.
    pub log_likelihood: f64,
    /// Customers fitted: those with repeat purchases of positive mean value.
    pub customers: usize,
    /// Customers with repeat purchases whose mean value is 0, left out (the
    /// likelihood takes `ln m`; lifetimes refuses them).
    pub skipped_zero_value: usize,
}

impl GammaGammaParams {
    /// Checks that every parameter is finite and positive.
    pub fn new(p: f64, q: f64, v: f64) -> Result<Self> {
        for (name, value) in [("p", p), ("q", q), ("v", v)] {
            if !(value.is_finite() && value > 0.0) {
                return Err(BtydError::BadParameter { name, value });
            }
        }
        Ok(GammaGammaParams { p, q, v })
    }

    /// One customer's log-likelihood given `x > 0` repeat purchases of mean
    /// value `m > 0` (Fader & Hardie's note 025, eq. 1a; lifetimes'
    /// `_negative_log_likelihood`, negated).
    pub fn customer_log_likelihood(&self, x: u32, m: f64) -> f64 {
        let GammaGammaParams { p, q, v } = *self;
        let xf = f64::from(x);
        let px = p * xf;
        ln_gamma(px + q) - ln_gamma(px) - ln_gamma(q)
            + q * v.ln()
            + (px - 1.0) * m.ln()
            + px * xf.ln()
            - (px + q) * (xf * m + v).ln()
    }

    /// Expected value of a customer's future transactions given `x` repeat
    /// purchases of mean value `m` (note 025, eq. 5; lifetimes'
    /// `conditional_expected_average_profit`): a weighted average of their
    /// own mean and the population's, the weight growing with `x`. `None`
    /// when `q <= 1`, where the population mean is infinite.
    pub fn expected_average_value(&self, x: u32, m: f64) -> Option<f64> {
        let GammaGammaParams { p, q, v } = *self;
        if q <= 1.0 {
            return None;
        }
        let px = p * f64::from(x);
        let weight = px / (px + q - 1.0);
        Some((1.0 - weight) * p * v / (q - 1.0) + weight * m)
    }
}

/// Fits Gamma-Gamma by maximum likelihood (lifetimes'
/// `GammaGammaFitter(penalizer_coef=0)`) on the customers with repeat
/// purchases of positive mean value; the others are skipped and counted.
pub fn fit_gamma_gamma(customers: &[CustomerSummary]) -> Result<GammaGammaFit> {
    let mut data: Vec<(u32, f64)> = Vec::new();
    let mut skipped_zero_value = 0;
    for c in customers {
        if c.frequency == 0 {
            continue;
        }
        if !(c.monetary_value.is_finite() && c.monetary_value >= 0.0) {
            return Err(BtydError::BadSummary {
                customer_id: c.customer_id,
                message: format!(
                    "monetary value {} must be finite and >= 0",
                    c.monetary_value
                ),
            });
        }
        if c.monetary_value == 0.0 {
            skipped_zero_value += 1;
            continue;
        }
        data.push((c.frequency, c.monetary_value));
    }
    if data.is_empty() {
        return Err(BtydError::Empty {
            what: "customers with repeat purchases of positive value",
        });
    }
    // Search in currency units where the mean value is 1; scaling m and v
    // together changes the likelihood by a constant.
    let scale = data.len() as f64 / data.iter().map(|d| d.1).sum::<f64>();
    let scaled: Vec<(u32, f64)> = data.iter().map(|&(x, m)| (x, m * scale)).collect();
    let n = scaled.len() as f64;
    let objective = |p: &[f64]| {
        let params = GammaGammaParams {
            p: p[0].exp(),
            q: p[1].exp(),
            v: p[2].exp(),
        };
        let ll: f64 = scaled
            .iter()
            .map(|&(x, m)| params.customer_log_likelihood(x, m))
            .sum();
        -ll / n
    };
    // p = 1, q = 2, v = 1: a population mean value of 1 (the mean).
    let found = minimize(objective, &[0.0, 2f64.ln(), 0.0], &super::sbg::LOG_BOX);
    if !found.converged {
        return Err(BtydError::NotConverged {
            model: "Gamma-Gamma",
            evaluations: found.evaluations,
        });
    }
    let params = GammaGammaParams {
        p: found.x[0].exp(),
        q: found.x[1].exp(),
        v: found.x[2].exp() / scale,
    };
    Ok(GammaGammaFit {
        params,
        log_likelihood: data
            .iter()
            .map(|&(x, m)| params.customer_log_likelihood(x, m))
            .sum(),
        customers: data.len(),
        skipped_zero_value,
    })
}

// ---------------------------------------------------------------------------
// Holdout validation
// ---------------------------------------------------------------------------

/// Predicted against actual purchases in the holdout period.
#[derive(Debug, Clone, PartialEq)]
pub struct HoldoutComparison {
    /// Customers compared.
    pub customers: usize,
    /// The holdout period's length in the time unit.
    pub duration: f64,
    /// Purchase occasions observed in the holdout, all customers.
    pub actual_total: f64,
    /// Purchase occasions the model expected, all customers.
    pub predicted_total: f64,
    /// Mean over customers of |predicted − actual|.
    pub mean_absolute_error: f64,
    /// Root mean squared error per customer.
    pub root_mean_squared_error: f64,
    /// The paper's validation view (Fader, Hardie & Lee 2005, Figure 4): by
    /// calibration-period repeat purchases `0, 1, …, 6, 7+`, the customers
    /// and their mean actual and predicted holdout purchases.
    pub by_frequency: Vec<FrequencyBin>,
    /// Each customer's prediction, in the order of the summaries.
    pub predicted: Vec<f64>,
}

/// One row of [`HoldoutComparison::by_frequency`].
#[derive(Debug, Clone, PartialEq)]
pub struct FrequencyBin {
    /// Calibration repeat purchases; the last bin holds this many or more.
    pub frequency: u32,
    /// Customers in the bin.
    pub customers: usize,
    /// Their mean actual holdout purchases.
    pub mean_actual: f64,
    /// Their mean predicted holdout purchases.
    pub mean_predicted: f64,
}

/// Compares BG/NBD's expected purchases over the holdout period with what
/// each customer actually bought.
pub fn holdout_comparison(params: &BgNbdParams, data: &CalibrationHoldout) -> HoldoutComparison {
    const LAST_BIN: u32 = 7;
    let predicted: Vec<f64> = data
        .customers
        .iter()
        .map(|c| params.expected_purchases(data.holdout_duration, c.frequency, c.recency, c.age))
        .collect();
    let n = data.customers.len();
    let mut bins: Vec<(usize, f64, f64)> = vec![(0, 0.0, 0.0); LAST_BIN as usize + 1];
    let (mut actual_total, mut abs, mut sq) = (0.0, 0.0, 0.0);
    for ((c, &actual), &pred) in data
        .customers
        .iter()
        .zip(&data.holdout_frequency)
        .zip(&predicted)
    {
        let actual = f64::from(actual);
        actual_total += actual;
        abs += (pred - actual).abs();
        sq += (pred - actual).powi(2);
        let bin = &mut bins[c.frequency.min(LAST_BIN) as usize];
        bin.0 += 1;
        bin.1 += actual;
        bin.2 += pred;
    }
    let per = |v: f64, k: usize| if k == 0 { 0.0 } else { v / k as f64 };
    HoldoutComparison {
        customers: n,
        duration: data.holdout_duration,
        actual_total,
        predicted_total: predicted.iter().sum(),
        mean_absolute_error: per(abs, n),
        root_mean_squared_error: per(sq, n).sqrt(),
        by_frequency: bins
            .into_iter()
            .enumerate()
            .map(|(f, (k, a, p))| FrequencyBin {
                frequency: f as u32,
                customers: k,
                mean_actual: per(a, k),
                mean_predicted: per(p, k),
            })
            .collect(),
        predicted,
    }
}

// ---------------------------------------------------------------------------
// Special functions
// ---------------------------------------------------------------------------

/// `ln Γ(x)` for `x > 0`: the Lanczos approximation (g = 7, 9 terms), good
/// to about 1e-15 relative; below ½ through the reflection formula.
pub(crate) fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const COEFFICIENTS: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Γ(x) Γ(1 − x) = π / sin(πx)
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin().abs()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut sum = COEFFICIENTS[0];
    for (i, c) in COEFFICIENTS.iter().enumerate().skip(1) {
        sum += c / (x + i as f64);
    }
    let t = x + G + 0.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

/// The Gauss series of `₂F₁(a, b; c; z)` for `0 <= z < 1`, summed until a
/// term no longer changes the sum. Callers pass the Euler-transformed
/// parameters, whose terms shrink fast.
fn hyp2f1_series(a: f64, b: f64, c: f64, z: f64) -> f64 {
    let (mut sum, mut term) = (1.0, 1.0);
    for k in 0..100_000 {
        let k = f64::from(k);
        term *= (a + k) * (b + k) / ((c + k) * (k + 1.0)) * z;
        sum += term;
        if term.abs() <= 1e-17 * sum.abs() {
            break;
        }
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs().max(1e-300)
    }

    /// The paper's CDNOW estimates, at which lifetimes computed the values
    /// the tests compare with.
    const PAPER: BgNbdParams = BgNbdParams {
        r: 0.243,
        alpha: 4.414,
        a: 0.793,
        b: 2.426,
    };

    /// 80 customers drawn by lifetimes' `beta_geometric_nbd_model` (seed 0,
    /// r 0.5, alpha 5, a 0.8, b 2.5; ages 20, 30 or 39) with a Gamma-Gamma
    /// spend: `(x, t_x, T, m)`.
    const SAMPLE: [(u32, f64, f64, f64); 80] = [
        (0, 0.0, 20.0, 0.0),
        (0, 0.0, 30.0, 0.0),
        (0, 0.0, 20.0, 0.0),
        (1, 28.32, 30.0, 18.75),
        (0, 0.0, 30.0, 0.0),
        (1, 5.89, 39.0, 22.26),
        (0, 0.0, 20.0, 0.0),
        (2, 25.08, 39.0, 72.03),
        (0, 0.0, 20.0, 0.0),
        (0, 0.0, 20.0, 0.0),
        (2, 11.01, 20.0, 9.13),
        (2, 5.31, 39.0, 15.37),
        (0, 0.0, 30.0, 0.0),
        (1, 26.32, 39.0, 8.95),
        (0, 0.0, 39.0, 0.0),
        (1, 17.44, 20.0, 18.27),
        (0, 0.0, 30.0, 0.0),
        (1, 16.82, 30.0, 73.41),
        (8, 13.49, 30.0, 29.89),
        (10, 29.91, 30.0, 18.7),
        (0, 0.0, 20.0, 0.0),
        (0, 0.0, 30.0, 0.0),
        (0, 0.0, 20.0, 0.0),
        (1, 0.1, 20.0, 58.91),
        (0, 0.0, 30.0, 0.0),
        (7, 38.9, 39.0, 21.7),
        (1, 11.59, 20.0, 36.33),
        (1, 9.54, 39.0, 33.38),
        (0, 0.0, 20.0, 0.0),
        (3, 5.32, 30.0, 27.96),
        (8, 27.77, 30.0, 12.52),
        (1, 0.33, 39.0, 23.34),
        (7, 14.26, 20.0, 26.11),
        (1, 16.6, 30.0, 20.59),
        (2, 15.79, 30.0, 11.06),
        (3, 20.86, 30.0, 22.88),
        (1, 3.01, 20.0, 20.13),
        (2, 17.73, 39.0, 10.16),
        (1, 16.83, 20.0, 11.27),
        (4, 31.87, 39.0, 14.4),
        (1, 3.87, 39.0, 45.96),
        (1, 9.71, 20.0, 46.89),
        (2, 25.2, 39.0, 26.71),
        (1, 11.53, 20.0, 34.59),
        (6, 12.45, 20.0, 69.68),
        (0, 0.0, 20.0, 0.0),
        (3, 22.31, 30.0, 27.23),
        (5, 26.44, 30.0, 11.88),
        (3, 7.89, 39.0, 24.04),
        (0, 0.0, 20.0, 0.0),
        (4, 19.26, 20.0, 26.01),
        (0, 0.0, 30.0, 0.0),
        (0, 0.0, 20.0, 0.0),
        (1, 21.34, 30.0, 9.37),
        (0, 0.0, 39.0, 0.0),
        (3, 10.14, 39.0, 12.4),
        (3, 14.77, 20.0, 31.93),
        (2, 22.99, 30.0, 26.84),
        (0, 0.0, 30.0, 0.0),
        (4, 27.76, 30.0, 20.4),
        (0, 0.0, 30.0, 0.0),
        (0, 0.0, 39.0, 0.0),
        (1, 18.25, 39.0, 20.81),
        (0, 0.0, 39.0, 0.0),
        (1, 12.71, 20.0, 20.89),
        (1, 6.75, 39.0, 83.62),
        (0, 0.0, 30.0, 0.0),
        (7, 18.48, 20.0, 49.44),
        (15, 29.67, 30.0, 28.7),
        (3, 2.69, 39.0, 81.44),
        (3, 8.84, 20.0, 58.07),
        (0, 0.0, 20.0, 0.0),
        (2, 23.3, 39.0, 17.53),
        (0, 0.0, 20.0, 0.0),
        (5, 19.36, 20.0, 34.98),
        (1, 2.0, 20.0, 38.27),
        (1, 11.72, 20.0, 91.96),
        (0, 0.0, 20.0, 0.0),
        (0, 0.0, 20.0, 0.0),
        (4, 14.87, 39.0, 22.86),
    ];

    fn sample() -> Vec<CustomerSummary> {
        SAMPLE
            .iter()
            .enumerate()
            .map(
                |(i, &(frequency, recency, age, monetary_value))| CustomerSummary {
                    customer_id: i as i64,
                    frequency,
                    recency,
                    age,
                    monetary_value,
                },
            )
            .collect()
    }

    #[test]
    fn fits_equal_lifetimes_on_a_small_sample() {
        let customers = sample();
        // BetaGeoFitter(penalizer_coef=0) and GammaGammaFitter(penalizer_coef=0).
        let bg = fit_bg_nbd(&customers).unwrap();
        let want = [
            0.5597413654682877,
            5.177420514235275,
            1.1262355619091307,
            5.497348855183947,
        ];
        let got = [bg.params.r, bg.params.alpha, bg.params.a, bg.params.b];
        for (g, w) in got.iter().zip(want) {
            assert!(close(*g, w, 1e-3), "{got:?} vs {want:?}");
        }
        assert!(!bg.at_bound);
        let theirs = BgNbdParams::new(want[0], want[1], want[2], want[3]).unwrap();
        assert!(bg.log_likelihood >= theirs.log_likelihood(&customers) - 1e-9);
        let gg = fit_gamma_gamma(&customers).unwrap();
        let want = [8.133412023697101, 3.809663897183723, 10.88311420206917];
        let got = [gg.params.p, gg.params.q, gg.params.v];
        for (g, w) in got.iter().zip(want) {
            assert!(close(*g, w, 1e-3), "{got:?} vs {want:?}");
        }
        assert_eq!(gg.customers, SAMPLE.iter().filter(|c| c.0 > 0).count());
        assert_eq!(gg.skipped_zero_value, 0);
    }

    #[test]
    fn likelihoods_equal_lifetimes() {
        // lifetimes' negative log-likelihoods, times the customers, negated.
        let ll: f64 = [(0, 0.0, 38.86), (2, 30.43, 38.86), (7, 29.43, 38.86)]
            .iter()
            .map(|&(x, t_x, age)| PAPER.customer_log_likelihood(x, t_x, age))
            .sum();
        assert!(close(ll, -31.87659585496795, 1e-12), "{ll}");
        let gg = GammaGammaParams::new(6.25, 3.74, 15.45).unwrap();
        let ll: f64 = [(1, 11.77), (2, 22.35), (7, 73.74)]
            .iter()
            .map(|&(x, m)| gg.customer_log_likelihood(x, m))
            .sum();
        assert!(close(ll, -13.343893472068714, 1e-12), "{ll}");
    }

    #[test]
    fn predictions_equal_lifetimes() {
        // (x, t_x, T, t) -> lifetimes' conditional_probability_alive and
        // conditional_expected_number_of_purchases_up_to_time.
        let cases = [
            (0, 0.0, 38.86, 39.0, 1.0, 0.19509805201125396),
            (2, 30.43, 38.86, 39.0, 0.726578570080673, 1.226028174767135),
            (
                1,
                1.71,
                38.86,
                39.0,
                0.2121009853773791,
                0.20318698707975183,
            ),
            (
                7,
                29.43,
                38.86,
                39.0,
                0.6417563459461072,
                3.3370532748513577,
            ),
            (26, 30.86, 31.0, 1.0, 0.968915649717525, 0.7106209373347258),
            (0, 0.0, 10.0, 52.0, 1.0, 0.6264375051577407),
            (80, 38.5, 38.86, 39.0, 0.981317087818784, 54.387236901532944),
        ];
        for (x, t_x, age, t, alive, purchases) in cases {
            let p = PAPER.p_alive(x, t_x, age);
            let e = PAPER.expected_purchases(t, x, t_x, age);
            assert!(close(p, alive, 1e-10), "{x} {t_x} {age}: {p} vs {alive}");
            assert!(
                close(e, purchases, 1e-9),
                "{x} {t_x} {age} {t}: {e} vs {purchases}"
            );
        }
        // expected_number_of_purchases_up_to_time.
        for (t, want) in [
            (1.0, 0.05326789117165627),
            (39.0, 1.1967231933207985),
            (78.0, 1.8605190579427455),
        ] {
            let got = PAPER.expected_purchases_new(t);
            assert!(close(got, want, 1e-10), "{t}: {got} vs {want}");
        }
        // conditional_expected_average_profit at lifetimes' CDNOW example.
        let gg = GammaGammaParams::new(6.25, 3.74, 15.45).unwrap();
        for (x, m, want) in [
            (1, 11.77, 18.923804226918797),
            (2, 22.35, 24.667814960629922),
            (7, 73.74, 71.47101527210151),
        ] {
            let got = gg.expected_average_value(x, m).unwrap();
            assert!(close(got, want, 1e-12), "{x} {m}: {got} vs {want}");
        }
        assert_eq!(
            GammaGammaParams::new(1.0, 0.5, 1.0)
                .unwrap()
                .expected_average_value(1, 1.0),
            None
        );
    }

    #[test]
    fn ln_gamma_equals_scipy() {
        for (x, want) in [
            (0.1, 2.252712651734206),
            (0.5, 0.5723649429247),
            (1.0, 0.0),
            (2.5, 0.2846828704729192),
            (10.0, 12.801827480081469),
            (123.4, 469.3360974421906),
            (1e5, 1051287.7089736569),
        ] {
            let got = ln_gamma(x);
            assert!(
                (got - want).abs() <= 1e-13 * want.abs().max(1.0),
                "{x}: {got} vs {want}"
            );
        }
        assert!((ln_rising(2.5, 7) - (ln_gamma(9.5) - ln_gamma(2.5))).abs() < 1e-12);
    }

    /// A small log: customer 1 buys twice on 2024-01-01 (Monday), then on
    /// the 3rd and 10th, and after the calibration end (the 12th) on the
    /// 13th; customer 2 on the 7th (a Sunday), the 8th and the 20th;
    /// customer 3 only on the 12th.
    fn log() -> Vec<Transaction> {
        [
            (1, "2024-01-01", 5.0),
            (1, "2024-01-01", 3.0),
            (1, "2024-01-03", 4.0),
            (1, "2024-01-10", 10.0),
            (2, "2024-01-07", 2.0),
            (2, "2024-01-08", 6.0),
            (3, "2024-01-12", 1.0),
            (1, "2024-01-13", 7.0),
            (2, "2024-01-20", 9.0),
        ]
        .iter()
        .map(|&(customer_id, date, amount)| Transaction {
            customer_id,
            date: day(date),
            amount,
        })
        .collect()
    }

    #[test]
    fn summaries_equal_lifetimes_calibration_and_holdout_data() {
        // lifetimes' (frequency, recency, T, monetary_value, frequency_holdout)
        // per customer and duration_holdout, for freq D, W and D x 7.
        let expect = [
            (
                TimeUnit::Days,
                [
                    (2, 9.0, 11.0, 7.0, 1),
                    (1, 1.0, 5.0, 6.0, 1),
                    (0, 0.0, 0.0, 0.0, 0),
                ],
                9.0,
            ),
            (
                TimeUnit::Weeks,
                [
                    (1, 1.0, 1.0, 10.0, 1),
                    (1, 1.0, 1.0, 6.0, 1),
                    (0, 0.0, 0.0, 0.0, 0),
                ],
                1.0,
            ),
            (
                TimeUnit::DaysInWeeks,
                [
                    (2, 9.0 / 7.0, 11.0 / 7.0, 7.0, 1),
                    (1, 1.0 / 7.0, 5.0 / 7.0, 6.0, 1),
                    (0, 0.0, 0.0, 0.0, 0),
                ],
                9.0 / 7.0,
            ),
        ];
        for (unit, rows, duration) in expect {
            let s = calibration_and_holdout(&log(), day("2024-01-12"), day("2024-01-21"), unit)
                .unwrap();
            assert_eq!(s.customers.len(), 3);
            for (i, (c, want)) in s.customers.iter().zip(rows).enumerate() {
                assert_eq!(c.customer_id, i as i64 + 1);
                let got = (
                    c.frequency,
                    c.recency,
                    c.age,
                    c.monetary_value,
                    s.holdout_frequency[i],
                );
                assert!(
                    got.0 == want.0
                        && (got.1 - want.1).abs() < 1e-12
                        && (got.2 - want.2).abs() < 1e-12
                        && (got.3 - want.3).abs() < 1e-12
                        && got.4 == want.4,
                    "{unit:?} customer {}: {got:?} vs {want:?}",
                    i + 1
                );
            }
            assert!((s.holdout_duration - duration).abs() < 1e-12, "{unit:?}");
        }
    }

    #[test]
    fn holdout_comparison_adds_up() {
        let s =
            calibration_and_holdout(&log(), day("2024-01-12"), day("2024-01-21"), TimeUnit::Days)
                .unwrap();
        let h = holdout_comparison(&PAPER, &s);
        assert_eq!(h.customers, 3);
        assert_eq!(h.actual_total, 2.0);
        assert!((h.predicted_total - h.predicted.iter().sum::<f64>()).abs() < 1e-12);
        let mae = h
            .predicted
            .iter()
            .zip(&s.holdout_frequency)
            .map(|(p, &a)| (p - f64::from(a)).abs())
            .sum::<f64>()
            / 3.0;
        assert!((h.mean_absolute_error - mae).abs() < 1e-12);
        assert_eq!(h.by_frequency.len(), 8);
        assert_eq!(h.by_frequency.iter().map(|b| b.customers).sum::<usize>(), 3);
        assert_eq!(h.by_frequency[2].mean_actual, 1.0);
    }

    #[test]
    fn bad_input_is_refused_with_the_culprit() {
        let mut rows = log();
        rows[4].amount = -2.0;
        match summarize(&rows, day("2024-01-12"), TimeUnit::Days) {
            Err(BtydError::BadAmount {
                row: 4,
                customer_id: 2,
                ..
            }) => {}
            other => panic!("{other:?}"),
        }
        rows[4].amount = f64::NAN;
        assert!(matches!(
            summarize(&rows, day("2024-01-12"), TimeUnit::Days),
            Err(BtydError::BadAmount { row: 4, .. })
        ));
        assert!(matches!(
            summarize(&[], day("2024-01-12"), TimeUnit::Days),
            Err(BtydError::Empty { .. })
        ));
        assert!(matches!(
            summarize(&log(), day("2023-12-31"), TimeUnit::Days),
            Err(BtydError::Empty { .. })
        ));
        assert!(matches!(
            calibration_and_holdout(&log(), day("2024-01-12"), day("2024-01-12"), TimeUnit::Days),
            Err(BtydError::BadPeriod { .. })
        ));
        assert!(matches!(fit_bg_nbd(&[]), Err(BtydError::Empty { .. })));
        let mut bad = sample();
        bad[3].recency = 31.0;
        match fit_bg_nbd(&bad) {
            Err(BtydError::BadSummary {
                customer_id: 3,
                message,
            }) => {
                assert!(message.contains("larger than age"), "{message}")
            }
            other => panic!("{other:?}"),
        }
        let mut bad = sample();
        bad[0].recency = 1.0;
        assert!(matches!(
            fit_bg_nbd(&bad),
            Err(BtydError::BadSummary { customer_id: 0, .. })
        ));
        let only_new: Vec<CustomerSummary> =
            sample().into_iter().filter(|c| c.frequency == 0).collect();
        assert!(matches!(
            fit_gamma_gamma(&only_new),
            Err(BtydError::Empty { .. })
        ));
        let mut zero = sample();
        zero[3].monetary_value = 0.0;
        assert_eq!(fit_gamma_gamma(&zero).unwrap().skipped_zero_value, 1);
        assert!(matches!(
            BgNbdParams::new(0.2, 0.0, 1.0, 1.0),
            Err(BtydError::BadParameter { name: "alpha", .. })
        ));
    }
}
