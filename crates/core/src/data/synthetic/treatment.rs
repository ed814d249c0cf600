//! Simulated treatment effects: churn events as they would have been had
//! the interventions worked, for checking that the outcome analysis
//! recovers a known effect.

use polars::prelude::*;

use crate::data::{DataError, Result};

/// Churn events as they would have been had treatment worked: each churn of
/// a treated customer that falls within `window_days` after the treatment
/// is prevented with probability equal to that playbook's true effect (the
/// first treatment whose window holds the churn decides). Returns the
/// thinned events and how many churns were prevented. The coin of each
/// customer is a stable hash of `seed` and the id, so reruns agree.
pub fn apply_treatment_effects(
    churn_events: &DataFrame,
    treated: &[(String, i64, f64)],
    window_days: u32,
    seed: u64,
) -> Result<(DataFrame, usize)> {
    let ids = crate::data::columns::strs(churn_events, "customer_id")
        .map_err(|m| DataError::polars("churn_events")(PolarsError::ComputeError(m.into())))?;
    let days = crate::data::columns::days(churn_events, "churn_date")
        .map_err(|m| DataError::polars("churn_events")(PolarsError::ComputeError(m.into())))?;
    let mut by_customer: std::collections::HashMap<&str, Vec<(i64, f64)>> =
        std::collections::HashMap::new();
    for (id, at, effect) in treated {
        by_customer
            .entry(id.as_str())
            .or_default()
            .push((at.div_euclid(86_400), *effect));
    }
    for v in by_customer.values_mut() {
        v.sort_by_key(|t| t.0);
    }
    let salt = format!("simulated-effect-{seed}");
    let mut prevented = 0;
    let keep: BooleanChunked = ids
        .iter()
        .zip(&days)
        .map(|(id, day)| {
            let (Some(id), Some(day)) = (id, day) else {
                return true;
            };
            let day = i64::from(*day);
            let Some(effect) = by_customer.get(id.as_str()).and_then(|v| {
                v.iter()
                    .find(|(start, _)| day > *start && day <= start + i64::from(window_days))
                    .map(|t| t.1)
            }) else {
                return true;
            };
            let drop = crate::hash::stable_unit(&salt, id) < effect;
            prevented += usize::from(drop);
            !drop
        })
        .collect();
    let out = churn_events
        .filter(&keep)
        .map_err(DataError::polars("thinning churn_events"))?;
    Ok((out, prevented))
}
