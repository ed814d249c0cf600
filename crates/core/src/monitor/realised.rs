//! What a model actually achieved on a scoring run's customers once the
//! run's horizon has passed and the churn events are in: ROC-AUC, PR-AUC,
//! Brier score, calibration by decile of the prediction, lift in the top
//! decile.

use serde::{Deserialize, Serialize};

use crate::eval;

/// One decile of the predictions: mean predicted against observed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationBin {
    /// 1 = lowest predictions.
    pub decile: usize,
    /// Customers in it.
    pub customers: usize,
    /// Their mean predicted probability.
    pub predicted: f64,
    /// Their observed churn rate.
    pub observed: f64,
}

/// Realised performance of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Realised {
    /// Customers with a settled outcome.
    pub customers: usize,
    /// Of them, churned within the horizon.
    pub churned: usize,
    /// ROC-AUC (`None` with one class).
    pub roc_auc: Option<f64>,
    /// Average precision.
    pub pr_auc: Option<f64>,
    /// Brier score.
    pub brier: f64,
    /// Expected calibration error over the deciles (weighted by size).
    pub calibration_error: f64,
    /// Churn rate in the top decile over the overall churn rate.
    pub lift_top_decile: f64,
    /// Per decile.
    pub deciles: Vec<CalibrationBin>,
}

/// Realised performance of predictions `p` against outcomes `y` (1 churned
/// within the horizon). `None` with no rows.
pub fn realised(y: &[u8], p: &[f64]) -> Option<Realised> {
    if y.is_empty() || y.len() != p.len() {
        return None;
    }
    let n = y.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]).then_with(|| a.cmp(&b)));
    let mut deciles = Vec::with_capacity(10);
    let mut ece = 0.0;
    for d in 0..10 {
        let rows = &order[d * n / 10..(d + 1) * n / 10];
        if rows.is_empty() {
            continue;
        }
        let predicted = rows.iter().map(|&i| p[i]).sum::<f64>() / rows.len() as f64;
        let observed = rows.iter().map(|&i| f64::from(y[i])).sum::<f64>() / rows.len() as f64;
        ece += rows.len() as f64 / n as f64 * (predicted - observed).abs();
        deciles.push(CalibrationBin {
            decile: d + 1,
            customers: rows.len(),
            predicted,
            observed,
        });
    }
    let churned = y.iter().filter(|v| **v == 1).count();
    let base = churned as f64 / n as f64;
    let top = deciles.last().map_or(0.0, |b| b.observed);
    Some(Realised {
        customers: n,
        churned,
        roc_auc: eval::roc_auc(y, p),
        pr_auc: eval::average_precision(y, p),
        brier: y
            .iter()
            .zip(p)
            .map(|(y, p)| (f64::from(*y) - p).powi(2))
            .sum::<f64>()
            / n as f64,
        calibration_error: ece,
        lift_top_decile: if base > 0.0 { top / base } else { 0.0 },
        deciles,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hand_computed_case() {
        // Ten customers, one per decile; the two riskiest churned.
        let p: Vec<f64> = (1..=10).map(|i| f64::from(i) / 10.0).collect();
        let y = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1];
        let r = realised(&y, &p).unwrap();
        assert_eq!((r.customers, r.churned), (10, 2));
        assert_eq!(r.roc_auc, Some(1.0));
        // Brier: Σ (y − p)² / 10.
        let brier: f64 = y
            .iter()
            .zip(&p)
            .map(|(y, p)| (f64::from(*y) - p).powi(2))
            .sum::<f64>()
            / 10.0;
        assert!((r.brier - brier).abs() < 1e-12);
        // The top decile churns at 1.0 against 0.2 overall.
        assert!((r.lift_top_decile - 5.0).abs() < 1e-12);
        assert_eq!(r.deciles.len(), 10);
        assert!((r.deciles[9].observed - 1.0).abs() < 1e-12);
        // ECE: mean |p − y| with one row per decile.
        let ece = y
            .iter()
            .zip(&p)
            .map(|(y, p)| (f64::from(*y) - p).abs())
            .sum::<f64>()
            / 10.0;
        assert!((r.calibration_error - ece).abs() < 1e-12);
    }
}
