//! The oracles: the true churn probability of a window, from the hazards
//! the generator wrote to `truth_hazard`. They are the bars no model can
//! beat (the full-hazard oracle) and what a model that knew every hidden
//! state at the snapshot could reach (the snapshot oracle).

use std::collections::HashMap;

use chrono::NaiveDate;
use polars::prelude::*;

use super::add_months;
use crate::data::schema::days_from_date;
use crate::data::{DataError, Result};

/// `truth_hazard`'s rows, typed once for both oracles.
struct HazardRows {
    customer: Int64Chunked,
    month: Int32Chunked,
    voluntary: Float64Chunked,
    involuntary: Float64Chunked,
}

impl HazardRows {
    fn read(hazard: &DataFrame) -> Result<HazardRows> {
        let f64s = |name: &'static str| {
            hazard
                .column(name)
                .and_then(|c| c.f64().cloned())
                .map_err(DataError::polars(format!("truth_hazard.{name}")))
        };
        Ok(HazardRows {
            customer: hazard
                .column("customer_id")
                .and_then(|c| c.i64().cloned())
                .map_err(DataError::polars("truth_hazard.customer_id"))?,
            month: hazard
                .column("month_start")
                .and_then(|c| c.cast(&DataType::Int32))
                .and_then(|c| c.i32().cloned())
                .map_err(DataError::polars("truth_hazard.month_start"))?,
            voluntary: f64s("voluntary_hazard")?,
            involuntary: f64s("involuntary_hazard")?,
        })
    }

    /// Every complete row: (customer, month start, voluntary, involuntary).
    fn iter(&self) -> impl Iterator<Item = (i64, i32, f64, f64)> + '_ {
        (0..self.customer.len()).filter_map(|i| {
            Some((
                self.customer.get(i)?,
                self.month.get(i)?,
                self.voluntary.get(i)?,
                self.involuntary.get(i)?,
            ))
        })
    }
}

/// The true probability that each customer churns in
/// `(snapshot, snapshot + horizon_days]`, from the generator's hazards.
///
/// Each calendar month contributes its combined hazard
/// `1 − (1 − voluntary)(1 − involuntary)`, scaled by the share of the month
/// inside the window. Customers without hazard rows in the window get 0.
pub fn oracle_probability(
    hazard: &DataFrame,
    customer_ids: &[i64],
    snapshot: NaiveDate,
    horizon_days: u32,
) -> Result<Vec<f64>> {
    let s = days_from_date(snapshot);
    let e = s + horizon_days as i32;
    let rows = HazardRows::read(hazard)?;
    let mut log_survival: HashMap<i64, f64> = customer_ids.iter().map(|&id| (id, 0.0)).collect();
    for (id, m0, v, iv) in rows.iter() {
        let Some(acc) = log_survival.get_mut(&id) else {
            continue;
        };
        let m1 = add_months(m0, 1);
        let overlap = (m1.min(e + 1) - m0.max(s + 1)).max(0) as f64;
        if overlap > 0.0 {
            let frac = overlap / (m1 - m0) as f64;
            *acc += frac * ((1.0 - v) * (1.0 - iv)).max(1e-12).ln();
        }
    }
    Ok(customer_ids
        .iter()
        .map(|id| 1.0 - log_survival[id].exp())
        .collect())
}

/// The probability of churn in `(snapshot, snapshot + horizon_days]` if the
/// hazard of the month holding the snapshot held for the whole window: what a
/// model that knew every hidden trait and state at the snapshot, but nothing
/// after it, could reach. The gap between this and [`oracle_probability`] is
/// what no model can close; the gap from a model to this one is what better
/// features could.
pub fn snapshot_oracle_probability(
    hazard: &DataFrame,
    customer_ids: &[i64],
    snapshot: NaiveDate,
    horizon_days: u32,
) -> Result<Vec<f64>> {
    let s = days_from_date(snapshot);
    let rows = HazardRows::read(hazard)?;
    let mut monthly: HashMap<i64, f64> = customer_ids.iter().map(|&id| (id, 0.0)).collect();
    for (id, m0, v, iv) in rows.iter() {
        if m0 <= s && s < add_months(m0, 1) {
            if let Some(h) = monthly.get_mut(&id) {
                *h = 1.0 - (1.0 - v) * (1.0 - iv);
            }
        }
    }
    let months = f64::from(horizon_days) / 30.4375;
    Ok(customer_ids
        .iter()
        .map(|id| 1.0 - (1.0 - monthly[id]).powf(months))
        .collect())
}
