//! Scoring customers without contracts from their transaction log: a retail
//! shop's or an app's buyers, who never cancel but stop buying.
//!
//! At a snapshot, every customer's purchases before it are summarised
//! (repeat purchases `x`, age at the last purchase `t_x`, age `T`, in weeks
//! from daily purchase occasions, as the BG/NBD paper summarises CDNOW), and
//! BG/NBD and Gamma-Gamma are fitted on those summaries
//! ([`crate::value::btyd`]). Then per customer:
//!
//! - **churn risk** is `1 − P(alive)`: the probability that they have
//!   already left, which is what a silent churn is;
//! - **CLV** is the expected discounted margin of their future purchases:
//!   `Σ_{t=1..T} m · E[purchases in month t] · E[spend] / (1 + d)^t`, with
//!   the expected spend per purchase from Gamma-Gamma (the population's mean
//!   for customers without repeats, or the observed mean where Gamma-Gamma
//!   has no finite mean);
//! - **reasons**: the weeks since the last purchase against the customer's
//!   usual gap, and one-time buyers;
//! - **health**: from the risk alone (a log holds no usage, survey or
//!   support data), with the index's usual bands and trend.
//!
//! No model is trained: the fit is the data's own and is redone every run,
//! which suits these models (they have four and three parameters).

use std::collections::HashMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::{CustomerContext, Previous, ScoredCustomer, Settings};
use crate::health::{self, HealthInputs};
use crate::interventions::{ClvSegment, ClvThresholds};
use crate::models::Reason;
use crate::value::btyd::{
    self, BgNbdFit, BtydError, CustomerSummary, GammaGammaFit, TimeUnit, Transaction,
};

/// Days in an average month.
const MONTH_DAYS: f64 = 30.4375;

/// The fits a run scored with, for its record and summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PurchaseFit {
    /// BG/NBD parameters (weeks).
    pub bg_nbd: btyd::BgNbdParams,
    /// Gamma-Gamma parameters, when it could be fitted (customers with
    /// repeat purchases of positive value).
    pub gamma_gamma: Option<btyd::GammaGammaParams>,
    /// Customers summarised.
    pub customers: usize,
    /// Mean spend per repeat purchase over the log, the fallback spend.
    pub mean_spend: f64,
    /// The last day of purchases read (the day before the snapshot).
    pub calibration_end: NaiveDate,
}

impl PurchaseFit {
    /// A short name of the fit for the run record: `bgnbd-<r>-<α>-<a>-<b>`.
    pub fn version(&self) -> String {
        let p = &self.bg_nbd;
        format!(
            "bgnbd-r{:.3}-alpha{:.2}-a{:.3}-b{:.3}",
            p.r, p.alpha, p.a, p.b
        )
    }
}

/// Scores every customer seen in `transactions` before `snapshot`. `previous`
/// holds the last run's score per customer id (for the trend).
pub fn score_purchases(
    transactions: &[Transaction],
    snapshot: NaiveDate,
    previous: &HashMap<String, Previous>,
    settings: Settings<'_>,
) -> Result<(PurchaseFit, Vec<ScoredCustomer>), BtydError> {
    let calibration_end = snapshot.pred_opt().unwrap_or(snapshot);
    let summaries = btyd::summarize(transactions, calibration_end, TimeUnit::DaysInWeeks)?;
    let BgNbdFit { params: bg, .. } = btyd::fit_bg_nbd(&summaries)?;
    let gamma_gamma = btyd::fit_gamma_gamma(&summaries)
        .ok()
        .map(|GammaGammaFit { params, .. }| params);
    let repeats: Vec<&CustomerSummary> = summaries.iter().filter(|c| c.frequency > 0).collect();
    let mean_spend = if repeats.is_empty() {
        // Nobody bought twice: the mean of all purchases is all there is.
        let total: f64 = transactions
            .iter()
            .filter(|t| t.date <= calibration_end)
            .map(|t| t.amount)
            .sum();
        total / transactions.len().max(1) as f64
    } else {
        repeats.iter().map(|c| c.monetary_value).sum::<f64>() / repeats.len() as f64
    };
    let value = settings.value;
    let d = (1.0 + value.annual_discount_rate).powf(1.0 / 12.0) - 1.0;
    let mut scored: Vec<ScoredCustomer> = summaries
        .iter()
        .map(|c| {
            let (x, t_x, age) = (c.frequency, c.recency, c.age);
            let p_alive = bg.p_alive(x, t_x, age);
            let risk = (1.0 - p_alive).clamp(0.0, 1.0);
            let spend = gamma_gamma
                .and_then(|g| g.expected_average_value(x, c.monetary_value))
                .unwrap_or(if x > 0 { c.monetary_value } else { mean_spend });
            let mut before = 0.0;
            let mut clv = 0.0;
            for t in 1..=value.months {
                let weeks = f64::from(t) * MONTH_DAYS / 7.0;
                let cumulative = bg.expected_purchases(weeks, x, t_x, age);
                clv += (cumulative - before) * spend / (1.0 + d).powi(t as i32);
                before = cumulative;
            }
            let clv = value.gross_margin * clv;
            // Revenue per month while buying at the expected rate, for the
            // risk list's MRR-like context.
            let monthly = bg.expected_purchases(MONTH_DAYS / 7.0, x, t_x, age) * spend;
            let id = c.customer_id.to_string();
            let h = health::health_index(
                &HealthInputs {
                    churn_probability: risk,
                    ..HealthInputs::default()
                },
                settings.health,
            );
            let prev = previous.get(&id);
            ScoredCustomer {
                reasons: reasons(c, risk),
                customer_id: id,
                context: CustomerContext {
                    mrr: Some(monthly),
                    ..CustomerContext::default()
                },
                churn_probability: risk,
                p_involuntary: None,
                churn_type: None,
                unknown_categories: Vec::new(),
                clv,
                clv_cac: None,
                expected_loss: risk * clv,
                clv_segment: ClvSegment::Medium,
                trend: health::trend(prev.map(|p| p.health), h.score, settings.health),
                previous_band: prev.map(|p| p.band),
                health: h,
                payment_failures: None,
            }
        })
        .collect();
    let clvs: Vec<f64> = scored.iter().map(|c| c.clv).collect();
    if let Some(t) = settings
        .clv_thresholds
        .or_else(|| ClvThresholds::of(&clvs, settings.policy))
    {
        for c in &mut scored {
            c.clv_segment = t.segment(c.clv);
        }
    }
    Ok((
        PurchaseFit {
            bg_nbd: bg,
            gamma_gamma,
            customers: summaries.len(),
            mean_spend,
            calibration_end,
        },
        scored,
    ))
}

/// Why a buyer may have left, in words a CSM can act on: how long since the
/// last purchase against their usual gap, and whether they ever came back.
fn reasons(c: &CustomerSummary, risk: f64) -> Vec<Reason> {
    let silent = c.age - c.recency;
    let mut out = Vec::new();
    let usual = (c.frequency > 0).then(|| c.recency / f64::from(c.frequency));
    out.push(Reason {
        feature: "weeks_since_last_purchase".into(),
        value: match usual {
            Some(gap) => format!("{silent:.0} (usually buys every {gap:.1} weeks)"),
            None => format!("{silent:.0}"),
        },
        weight: risk,
    });
    if c.frequency == 0 {
        out.push(Reason {
            feature: "repeat_purchases".into(),
            value: "0 (bought once)".into(),
            weight: risk / 2.0,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::HealthConfig;
    use crate::interventions::InterventionPolicy;
    use crate::scoring::ScoringConfig;
    use crate::value::ValueConfig;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn a_buyer_who_went_quiet_is_riskier_and_worth_less_than_a_regular() {
        // 200 regulars buying every two weeks through 2024, 200 who stopped
        // in March, 100 who bought once.
        let mut log = Vec::new();
        for id in 0..500i64 {
            let first = day("2024-01-05") + chrono::Days::new((id % 7) as u64);
            let last = match id {
                0..=199 => day("2024-12-28"),
                200..=399 => day("2024-03-01"),
                _ => first,
            };
            let mut d = first;
            while d <= last {
                log.push(Transaction {
                    customer_id: id,
                    date: d,
                    amount: 20.0 + (id % 5) as f64,
                });
                d = d + chrono::Days::new(14);
            }
        }
        let scoring = ScoringConfig::default();
        let health = HealthConfig::default();
        let value = ValueConfig::default();
        let policy = InterventionPolicy::default();
        let (fit, scored) = score_purchases(
            &log,
            day("2025-01-01"),
            &HashMap::new(),
            Settings {
                scoring: &scoring,
                health: &health,
                value: &value,
                policy: &policy,
                clv_thresholds: None,
                lifetime: None,
                input: None,
            },
        )
        .unwrap();
        assert_eq!(fit.customers, 500);
        let by_id: HashMap<&str, &ScoredCustomer> =
            scored.iter().map(|c| (c.customer_id.as_str(), c)).collect();
        let (regular, quiet) = (by_id["5"], by_id["205"]);
        assert!(
            regular.churn_probability < 0.2,
            "{}",
            regular.churn_probability
        );
        assert!(quiet.churn_probability > 0.8, "{}", quiet.churn_probability);
        assert!(
            regular.clv > 5.0 * quiet.clv,
            "{} vs {}",
            regular.clv,
            quiet.clv
        );
        assert!(regular.health.score > quiet.health.score);
        let reason = super::super::reason_text(&quiet.reasons[0]);
        assert!(
            reason.starts_with("weeks since last purchase: 4")
                && reason.contains("usually buys every 2.0 weeks"),
            "{reason}"
        );
        assert_eq!(by_id["450"].reasons[1].value, "0 (bought once)");
    }
}
