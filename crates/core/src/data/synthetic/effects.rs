//! The true effect of each default playbook on each customer: who a
//! playbook helps, who it leaves cold and who it drives away, as a function
//! of the customer's hidden traits. Written to `truth_customers` as
//! `effect_<playbook>` so that uplift models can be checked against an
//! oracle, and used by [`apply_true_effects`] to play out a world in which
//! the interventions had these effects.
//!
//! An effect is relative: the share of the customer's would-be churn in the
//! outcome window that the playbook prevents (negative: the share it adds,
//! so that the treated churn probability is `p × (1 − effect)` either way).
//! The customer's true uplift, the drop in churn probability from treating
//! them, is `p × effect` with `p` the oracle probability of the window.
//! `data/README.md` states the same table for users.

use std::collections::HashMap;

use polars::prelude::*;

use super::sigmoid;
use crate::data::{DataError, Result};

/// The playbooks with a true effect, in the order of their
/// `truth_customers` columns (the default policy's playbooks).
pub const EFFECT_PLAYBOOKS: [&str; 5] = [
    "payment_recovery",
    "executive_escalation",
    "csm_call",
    "success_plan_checkin",
    "nurture_email",
];

/// The `truth_customers` column holding a playbook's true effect.
pub fn effect_column(playbook: &str) -> String {
    format!("effect_{playbook}")
}

/// A customer's hidden traits, as `truth_customers` records them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Traits {
    /// `engagement_propensity`: standard normal, higher uses more.
    pub engagement: f64,
    /// `satisfaction_base`: standard normal.
    pub satisfaction: f64,
    /// `price_sensitivity`: about standard normal, higher on the cheap plan.
    pub price_sensitivity: f64,
    /// `payment_failure_rate`: the chance a card payment fails, about 0.05.
    pub payment_failure_rate: f64,
}

/// The true relative effect of `playbook` on a customer with `traits`;
/// `None` for a playbook the generator does not know.
///
/// - `payment_recovery` saves involuntary churn, so it works in proportion
///   to how often the card fails: `0.65 × f / (f + 0.04)`.
/// - `executive_escalation` wins back the dissatisfied and slightly irks
///   the content: `0.45 × σ(−2(s + 0.3)) − 0.10 × σ(2(s − 1))`.
/// - `csm_call` re-engages the disengaged, and reminds price-sensitive
///   customers of what they pay: `0.55 × σ(−2.5(e + 0.3)) − 0.30 × σ(3(ps − 0.8))`.
/// - `success_plan_checkin` helps the disengaged and annoys the engaged,
///   who did not ask for it: `0.45 × σ(−2.5(e + 0.3)) − 0.20 × σ(2.5(e − 0.8))`.
/// - `nurture_email` carries a discount: it keeps price-sensitive customers
///   and nudges the others to reconsider: `0.35 × σ(3(ps − 0.6)) − 0.08`.
///
/// Every effect lies within `[−0.4, 0.65]`.
pub fn true_effect(playbook: &str, t: &Traits) -> Option<f64> {
    let (e, s, ps, f) = (
        t.engagement,
        t.satisfaction,
        t.price_sensitivity,
        t.payment_failure_rate,
    );
    Some(match playbook {
        "payment_recovery" => 0.65 * f / (f + 0.04),
        "executive_escalation" => {
            0.45 * sigmoid(-2.0 * (s + 0.3)) - 0.10 * sigmoid(2.0 * (s - 1.0))
        }
        "csm_call" => 0.55 * sigmoid(-2.5 * (e + 0.3)) - 0.30 * sigmoid(3.0 * (ps - 0.8)),
        "success_plan_checkin" => {
            0.45 * sigmoid(-2.5 * (e + 0.3)) - 0.20 * sigmoid(2.5 * (e - 0.8))
        }
        "nurture_email" => 0.35 * sigmoid(3.0 * (ps - 0.6)) - 0.08,
        _ => return None,
    })
}

/// Per customer id, per playbook, the true effect, read from
/// `truth_customers`' `effect_<playbook>` columns.
pub fn true_effects(truth_customers: &DataFrame) -> Result<HashMap<String, [f64; 5]>> {
    let err = |c: &str| DataError::polars(format!("truth_customers.{c}"));
    let ids = truth_customers
        .column("customer_id")
        .and_then(|c| c.cast(&DataType::String))
        .map_err(err("customer_id"))?;
    let ids = ids.str().map_err(err("customer_id"))?;
    let mut cols = Vec::with_capacity(EFFECT_PLAYBOOKS.len());
    for p in EFFECT_PLAYBOOKS {
        let name = effect_column(p);
        cols.push(
            truth_customers
                .column(&name)
                .and_then(|c| c.f64().cloned())
                .map_err(err(&name))?,
        );
    }
    Ok(ids
        .iter()
        .enumerate()
        .filter_map(|(i, id)| {
            let mut effects = [0.0; 5];
            for (e, c) in effects.iter_mut().zip(&cols) {
                *e = c.get(i)?;
            }
            Some((id?.to_string(), effects))
        })
        .collect())
}

/// The true effect of `playbook` from a row of [`true_effects`].
pub fn effect_of(effects: &[f64; 5], playbook: &str) -> Option<f64> {
    EFFECT_PLAYBOOKS
        .iter()
        .position(|p| *p == playbook)
        .map(|i| effects[i])
}

/// A treatment to play out: who, when (seconds since 1970), its true
/// relative effect, and the customer's untreated churn probability over
/// the outcome window from that day (the oracle's).
#[derive(Debug, Clone, PartialEq)]
pub struct Treatment {
    /// Customer id.
    pub customer_id: String,
    /// When the treatment happened.
    pub at: i64,
    /// The true relative effect.
    pub effect: f64,
    /// The untreated probability of churning within the window.
    pub window_probability: f64,
}

/// What [`apply_true_effects`] changed.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Played {
    /// Churns within a treatment's window that it prevented.
    pub prevented: usize,
    /// Churns a treatment caused (customers it drove away).
    pub caused: usize,
}

/// Churn events as they would have been had each treatment had its true
/// effect. A churn within `window_days` after a treatment with a positive
/// effect is prevented with probability `effect`; a customer with a
/// negative effect who did not churn in the window churns in it with
/// probability `p × |effect| / (1 − p)` (`p` the window probability), so the
/// treated churn probability is `p × (1 − effect)` for either sign. The
/// first treatment whose window holds the day decides. Coins are stable
/// hashes of `seed` and the customer id, so reruns agree.
pub fn apply_true_effects(
    churn_events: &DataFrame,
    treatments: &[Treatment],
    window_days: u32,
    seed: u64,
) -> Result<(DataFrame, Played)> {
    let bad = |m: String| DataError::polars("churn_events")(PolarsError::ComputeError(m.into()));
    let ids = crate::data::columns::strs(churn_events, "customer_id").map_err(bad)?;
    let days = crate::data::columns::days(churn_events, "churn_date").map_err(bad)?;
    let window = i64::from(window_days);
    let mut by_customer: HashMap<&str, Vec<&Treatment>> = HashMap::new();
    for t in treatments {
        by_customer
            .entry(t.customer_id.as_str())
            .or_default()
            .push(t);
    }
    for v in by_customer.values_mut() {
        v.sort_by_key(|t| t.at);
    }
    let start = |t: &Treatment| t.at.div_euclid(86_400);
    let salt = format!("simulated-effect-{seed}");
    let mut played = Played::default();
    let mut churn_day: HashMap<&str, i64> = HashMap::new();
    let keep: BooleanChunked = ids
        .iter()
        .zip(&days)
        .map(|(id, day)| {
            let (Some(id), Some(day)) = (id, day) else {
                return true;
            };
            let day = i64::from(*day);
            churn_day.insert(id.as_str(), day);
            let Some(t) = by_customer.get(id.as_str()).and_then(|v| {
                v.iter()
                    .find(|t| day > start(t) && day <= start(t) + window)
            }) else {
                return true;
            };
            let drop = t.effect > 0.0 && crate::hash::stable_unit(&salt, id) < t.effect;
            played.prevented += usize::from(drop);
            !drop
        })
        .collect();
    let mut out = churn_events
        .filter(&keep)
        .map_err(DataError::polars("thinning churn_events"))?;

    // Customers driven away: a new churn inside the window, replacing any
    // later one.
    let mut added: Vec<(String, i32)> = Vec::new();
    for (id, ts) in &by_customer {
        let churned = churn_day.get(id).copied();
        for t in ts {
            if t.effect >= 0.0 {
                continue;
            }
            let s = start(t);
            if churned.is_some_and(|d| d <= s + window) {
                break; // gone before or within this window anyway
            }
            let p = t.window_probability.clamp(0.0, 0.999);
            let q = (p * -t.effect / (1.0 - p)).min(1.0);
            if crate::hash::stable_unit(&salt, &format!("{id}/{s}")) < q {
                let offset = 1
                    + (crate::hash::stable_unit(&salt, &format!("{id}/{s}/day")) * window as f64)
                        as i64;
                added.push((id.to_string(), (s + offset.min(window)) as i32));
                break;
            }
        }
    }
    if !added.is_empty() {
        played.caused = added.len();
        let moved: std::collections::HashSet<&str> = added.iter().map(|a| a.0.as_str()).collect();
        let ids = crate::data::columns::strs(&out, "customer_id").map_err(bad)?;
        let keep: BooleanChunked = ids
            .iter()
            .map(|id| !id.as_deref().is_some_and(|i| moved.contains(i)))
            .collect();
        out = out
            .filter(&keep)
            .map_err(DataError::polars("moving churn_events"))?;
        let id_dtype = out
            .column("customer_id")
            .map_err(DataError::polars("churn_events.customer_id"))?
            .dtype()
            .clone();
        let n = added.len();
        let ids = Column::new(
            "customer_id".into(),
            added.iter().map(|a| a.0.clone()).collect::<Vec<_>>(),
        )
        .cast(&id_dtype)
        .map_err(DataError::polars("churn_events.customer_id"))?;
        let dates = Column::new(
            "churn_date".into(),
            added.iter().map(|a| a.1).collect::<Vec<_>>(),
        )
        .cast(&DataType::Date)
        .map_err(DataError::polars("churn_events.churn_date"))?;
        let mut cols = vec![ids, dates];
        for c in out.columns().iter().skip(2) {
            let filler = match c.name().as_str() {
                "churn_type" => Column::new(c.name().clone(), vec!["voluntary"; n]),
                "reason" => Column::new(c.name().clone(), vec!["contact"; n]),
                _ => Column::full_null(c.name().clone(), n, c.dtype()),
            };
            cols.push(
                filler
                    .cast(c.dtype())
                    .map_err(DataError::polars(format!("churn_events.{}", c.name())))?,
            );
        }
        let extra = DataFrame::new(n, cols).map_err(DataError::polars("churn_events"))?;
        out = out
            .vstack(&extra)
            .map_err(DataError::polars("adding churn_events"))?;
    }
    Ok((out, played))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effects_follow_the_documented_traits() {
        let base = Traits {
            engagement: 0.0,
            satisfaction: 0.0,
            price_sensitivity: 0.0,
            payment_failure_rate: 0.05,
        };
        let with = |f: &dyn Fn(&mut Traits)| {
            let mut t = base;
            f(&mut t);
            t
        };
        let e = |p: &str, t: &Traits| true_effect(p, t).unwrap();
        // Disengaged customers respond to calls; engaged ones are annoyed by check-ins.
        let disengaged = with(&|t| t.engagement = -2.0);
        let engaged = with(&|t| t.engagement = 2.0);
        assert!(e("csm_call", &disengaged) > 0.45);
        assert!(e("success_plan_checkin", &engaged) < -0.1);
        // Discounts keep the price-sensitive and nudge the others.
        assert!(e("nurture_email", &with(&|t| t.price_sensitivity = 2.0)) > 0.25);
        assert!(e("nurture_email", &with(&|t| t.price_sensitivity = -2.0)) < 0.0);
        // Payment recovery tracks the failure rate.
        assert!(
            e("payment_recovery", &with(&|t| t.payment_failure_rate = 0.2))
                > e("payment_recovery", &base)
        );
        assert_eq!(true_effect("send_flowers", &base), None);
        for p in EFFECT_PLAYBOOKS {
            for t in [base, disengaged, engaged] {
                let v = e(p, &t);
                assert!((-0.4..=0.65).contains(&v), "{p}: {v}");
            }
        }
    }
}
