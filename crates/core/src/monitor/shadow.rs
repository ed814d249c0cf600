//! A shadow challenger against the champion on the same customers: how
//! much they agree, how far the challenger moves the scores, and (once the
//! horizon has passed) what each really achieved on the customers both
//! scored.
//!
//! Every figure carries its sample size, and the estimates an operator
//! decides on carry 95% intervals: the mean score shift by the normal
//! approximation (n is in the thousands), the realised ROC-AUC difference
//! by a paired bootstrap over customers (both models are judged on the same
//! resampled customers, so their correlation is kept).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::realised::{realised, Realised};
use crate::eval;
use crate::kpi::spearman;

/// Fewest scored pairs before agreement figures are given (below it the
/// comparison says so instead).
pub const MIN_SHADOW_PAIRS: usize = 100;

/// Bootstrap resamples of the realised ROC-AUC difference.
const BOOTSTRAP_RESAMPLES: usize = 400;

/// How the shadow's scores compare with the champion's.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShadowAgreement {
    /// Pairs compared.
    pub pairs: usize,
    /// Spearman rank correlation of the two scores.
    pub rank_correlation: Option<f64>,
    /// Share of the champion's top decile (the riskiest tenth, the
    /// customers interventions go to first) that is also in the shadow's.
    pub top_decile_agreement: f64,
    /// Mean of shadow − champion probability.
    pub mean_shift: f64,
    /// Its 95% interval.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<f64>, min_items = 2, max_items = 2))]
    pub mean_shift_interval: (f64, f64),
    /// Mean of |shadow − champion|.
    pub mean_absolute_shift: f64,
}

/// Realised performance of both models on the same settled customers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShadowRealised {
    /// The champion's.
    pub champion: Realised,
    /// The shadow's.
    pub shadow: Realised,
    /// Shadow − champion ROC-AUC.
    pub roc_auc_difference: Option<f64>,
    /// Its 95% paired-bootstrap interval.
    pub roc_auc_difference_interval: Option<(f64, f64)>,
}

/// Agreement of `champion` and `shadow` scores of the same pairs; `None`
/// below [`MIN_SHADOW_PAIRS`].
pub fn agreement(champion: &[f64], shadow: &[f64]) -> Option<ShadowAgreement> {
    let n = champion.len();
    if n < MIN_SHADOW_PAIRS || shadow.len() != n {
        return None;
    }
    let shifts: Vec<f64> = shadow.iter().zip(champion).map(|(s, c)| s - c).collect();
    let mean = shifts.iter().sum::<f64>() / n as f64;
    let var = shifts.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let half = 1.959_964 * (var / n as f64).sqrt();
    let top = |p: &[f64]| {
        let k = (n / 10).max(1);
        let mut order: Vec<usize> = (0..n).collect();
        // Ties broken by position, so the sets are deterministic.
        order.sort_by(|&a, &b| p[b].total_cmp(&p[a]).then_with(|| a.cmp(&b)));
        let mut member = vec![false; n];
        for &i in &order[..k] {
            member[i] = true;
        }
        (member, k)
    };
    let (champion_top, k) = top(champion);
    let (shadow_top, _) = top(shadow);
    let both = champion_top
        .iter()
        .zip(&shadow_top)
        .filter(|(a, b)| **a && **b)
        .count();
    Some(ShadowAgreement {
        pairs: n,
        rank_correlation: spearman(champion, shadow),
        top_decile_agreement: both as f64 / k as f64,
        mean_shift: mean,
        mean_shift_interval: (mean - half, mean + half),
        mean_absolute_shift: shifts.iter().map(|d| d.abs()).sum::<f64>() / n as f64,
    })
}

/// Realised performance of both models against outcomes `y` (1 churned
/// within the horizon) of the same customers; `None` with no rows.
pub fn realised_pair(y: &[u8], champion: &[f64], shadow: &[f64]) -> Option<ShadowRealised> {
    let c = realised(y, champion)?;
    let s = realised(y, shadow)?;
    let difference = s.roc_auc.zip(c.roc_auc).map(|(s, c)| s - c);
    let interval = difference.and_then(|_| {
        let n = y.len();
        let mut rng = ChaCha8Rng::seed_from_u64(0x05ea_d0ff);
        let mut diffs = Vec::with_capacity(BOOTSTRAP_RESAMPLES);
        let (mut yb, mut cb, mut sb) = (vec![0u8; n], vec![0.0; n], vec![0.0; n]);
        for _ in 0..BOOTSTRAP_RESAMPLES {
            for i in 0..n {
                let j = rng.gen_range(0..n);
                yb[i] = y[j];
                cb[i] = champion[j];
                sb[i] = shadow[j];
            }
            if let (Some(a), Some(b)) = (eval::roc_auc(&yb, &sb), eval::roc_auc(&yb, &cb)) {
                diffs.push(a - b);
            }
        }
        if diffs.len() < BOOTSTRAP_RESAMPLES / 2 {
            return None;
        }
        diffs.sort_by(f64::total_cmp);
        let at = |q: f64| diffs[((diffs.len() - 1) as f64 * q).round() as usize];
        Some((at(0.025), at(0.975)))
    });
    Some(ShadowRealised {
        champion: c,
        shadow: s,
        roc_auc_difference: difference,
        roc_auc_difference_interval: interval,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_scores_agree_fully_and_do_not_shift() {
        let p: Vec<f64> = (0..200).map(|i| f64::from(i) / 200.0).collect();
        let a = agreement(&p, &p).unwrap();
        assert_eq!(a.pairs, 200);
        assert_eq!(a.top_decile_agreement, 1.0);
        assert!((a.rank_correlation.unwrap() - 1.0).abs() < 1e-12);
        assert_eq!(a.mean_shift, 0.0);
        assert_eq!(a.mean_shift_interval, (0.0, 0.0));
    }

    #[test]
    fn a_reversed_ranking_shares_no_top_decile_and_a_shift_is_measured() {
        let c: Vec<f64> = (0..200).map(|i| f64::from(i) / 400.0).collect();
        let s: Vec<f64> = c.iter().rev().map(|p| p + 0.01).collect();
        let a = agreement(&c, &s).unwrap();
        assert_eq!(a.top_decile_agreement, 0.0);
        assert!((a.rank_correlation.unwrap() + 1.0).abs() < 1e-12);
        // Shadow − champion: reversed order, plus 0.01, so the mean shift is 0.01.
        assert!((a.mean_shift - 0.01).abs() < 1e-12);
        assert!(a.mean_shift_interval.0 < 0.01 && a.mean_shift_interval.1 > 0.01);
    }

    #[test]
    fn too_few_pairs_give_no_verdict() {
        let p = vec![0.1; MIN_SHADOW_PAIRS - 1];
        assert!(agreement(&p, &p).is_none());
    }

    #[test]
    fn the_better_model_wins_on_realised_auc_with_an_interval_above_zero() {
        // The shadow ranks the churners perfectly; the champion at random.
        let n = 400;
        let y: Vec<u8> = (0..n).map(|i| u8::from(i % 4 == 0)).collect();
        let shadow: Vec<f64> = y.iter().map(|&y| if y == 1 { 0.8 } else { 0.2 }).collect();
        let champion: Vec<f64> = (0..n).map(|i| ((i * 37) % 101) as f64 / 101.0).collect();
        let r = realised_pair(&y, &champion, &shadow).unwrap();
        assert_eq!(r.shadow.roc_auc, Some(1.0));
        let d = r.roc_auc_difference.unwrap();
        let (lo, hi) = r.roc_auc_difference_interval.unwrap();
        assert!(lo > 0.0 && lo <= d && d <= hi, "{lo} {d} {hi}");
    }
}
