//! How long a scored customer stays after the model's horizon, and what
//! their revenue does meanwhile: the curve CLV sums.
//!
//! ## Why not a constant retention
//!
//! A churn model answers for one horizon `H` (90 days by default). The old
//! CLV stretched that answer over five years as a constant monthly
//! retention, so a customer who is safe *today* was assumed safe forever.
//! Risk regresses to the mean: engagement shocks, renewals and price rises
//! come to safe customers too, and a risky customer who stays is usually one
//! whose trouble passed. A constant retention therefore overstates the
//! value of safe, long-lived accounts and ranks them above what they are
//! worth.
//!
//! ## The window-hazard ladder
//!
//! The horizon after the snapshot is cut into windows of `H` days. The first
//! window's churn probability is the model's calibrated `p`. For each later
//! window `j`, a logistic regression on the training rows learns how much of
//! today's risk still shows then:
//!
//! ```text
//! P(churn in window j | alive at its start) = σ(a_j + b_j · logit p)
//! ```
//!
//! fit on the pairs (the customer's probability at snapshot `s`, their label
//! at snapshot `s + (j − 1)·H`) of customers still present at that later
//! snapshot. Customers who churned earlier are not at risk there, and those
//! whose later snapshot lies past the data are censored: both simply have no
//! pair, which is how the ladder handles censoring. `b_j` falls towards 0 as
//! today's risk stops mattering; `a_j` carries the hazard every customer
//! shares at that distance (renewals, tenure). Windows past the last one the
//! data reaches keep the last fitted window's hazard.
//!
//! ## Expansion and contraction
//!
//! Revenue of staying customers changes too (upgrades, seat growth,
//! downgrades), and not evenly: engaged, safe customers expand, troubled
//! ones contract. Per segment (the plan), the ladder keeps, for each fifth
//! of today's risk, the yearly growth of the typical staying customer: the
//! geometric mean of the ratio of MRR about a year later to MRR now, over
//! customers present at both snapshots (annualised from the longest gap of
//! whole windows, up to four, the data holds). The geometric mean rather
//! than the revenue-weighted net revenue retention (also kept, as
//! `yearly_factor`) because a few large expansions lift the latter far
//! above what most customers do; on generated data it ranks customers
//! closer to their true value. Segments with fewer than [`MIN_PAIRS`]
//! pairs use the pooled figures.
//!
//! ## CLV
//!
//! With `S(t)` the survival to month `t` implied by the window hazards,
//! `g` the yearly growth of the customer's segment and risk band, margin `m` and monthly
//! discount `d`:
//!
//! ```text
//! CLV = Σ_{t=1..T} S(t) · m · MRR · g^(t/12) / (1 + d)^t
//! ```
//!
//! With every window's hazard equal to `p` and `g = 1` this is exactly the
//! constant-retention formula of [`super::clv`].

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::ValueConfig;

/// Days in an average month, as [`super::monthly_retention`] counts them.
const MONTH_DAYS: f64 = 30.4375;

/// Fewest pairs (rows, or MRR pairs) a window or a segment needs to be fitted.
pub const MIN_PAIRS: usize = 30;

/// Fewest churn events (and stays) a window's regression needs.
const MIN_EVENTS: usize = 10;

/// Bands of today's risk the expansion rates are measured in.
const RISK_BANDS: usize = 5;

/// Months summed for the expected remaining lifetime (50 years).
const LIFETIME_MONTHS: u32 = 600;

/// A later window's hazard as a function of today's risk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WindowHazard {
    /// The window: 2 is `(H, 2H]` after the snapshot.
    pub window: u32,
    /// `a_j`.
    pub intercept: f64,
    /// `b_j`, on the logit of the first window's probability.
    pub slope: f64,
    /// Customers at risk at the window's start.
    pub rows: usize,
    /// Of them, how many churned in the window.
    pub events: usize,
}

/// A segment's yearly net revenue retention among staying customers, as a
/// function of today's risk: engaged (safe) customers expand, troubled
/// ones contract, so one rate per segment would overvalue the risky and
/// undervalue the safe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Expansion {
    /// MRR a year later over MRR now, revenue-weighted, over the segment.
    pub yearly_factor: f64,
    /// Yearly factors by band of today's risk: `(upper bound of the band's
    /// probability, factor)`, safest band first; the last band is open.
    /// Each is the typical stayer's growth (the geometric mean of the MRR
    /// ratios), what CLV uses: a few large expansions lift the revenue-
    /// weighted figure far above what most customers do.
    pub by_risk: Vec<(f64, f64)>,
    /// The gap the pairs span, in days (annualised from it).
    pub gap_days: u32,
    /// Customers measured.
    pub pairs: usize,
}

/// The ladder and the expansion rates, fitted at training time and kept in
/// the model's manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LifetimeCurve {
    /// The horizon `H` of the model's probability, in days.
    pub horizon_days: u32,
    /// Windows 2, 3, … as far as the data reached (may be empty: then every
    /// later window keeps the first window's hazard).
    pub windows: Vec<WindowHazard>,
    /// Yearly net revenue retention per segment.
    pub segments: BTreeMap<String, Expansion>,
    /// Pooled over segments (1 when the data held too few pairs).
    pub pooled: Expansion,
}

/// Training rows the ladder is fitted on: one per (customer, snapshot).
#[derive(Debug, Clone, Copy)]
pub struct LadderRows<'a> {
    /// Customer id per row.
    pub ids: &'a [String],
    /// Snapshot day per row.
    pub snapshots: &'a [i32],
    /// Churned within the horizon after the snapshot (0/1).
    pub labels: &'a [u8],
    /// The model's calibrated probability per row.
    pub probabilities: &'a [f64],
    /// MRR per row, when the rows have it.
    pub mrr: Option<&'a [f64]>,
    /// Segment (plan) per row, when the rows have it.
    pub segments: Option<&'a [Option<String>]>,
    /// The horizon `H`, in days.
    pub horizon_days: u32,
}

fn logit(p: f64) -> f64 {
    let p = p.clamp(1e-6, 1.0 - 1e-6);
    (p / (1.0 - p)).ln()
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// A two-parameter logistic regression `σ(a + b·x)` by Newton's method, with
/// a tiny ridge on `b` so separable data still converge.
fn fit_two(x: &[f64], y: &[bool]) -> (f64, f64) {
    let events = y.iter().filter(|v| **v).count() as f64;
    let n = y.len() as f64;
    let mut a = logit(events / n);
    let mut b = 0.0;
    for _ in 0..50 {
        let (mut ga, mut gb, mut haa, mut hab, mut hbb) = (0.0, 1e-6 * b, 0.0, 0.0, 1e-6);
        for (&xi, &yi) in x.iter().zip(y) {
            let p = sigmoid(a + b * xi);
            let r = p - f64::from(u8::from(yi));
            let w = (p * (1.0 - p)).max(1e-12);
            ga += r;
            gb += r * xi;
            haa += w;
            hab += w * xi;
            hbb += w * xi * xi;
        }
        let det = haa * hbb - hab * hab;
        if det.abs() < 1e-18 {
            break;
        }
        let da = (hbb * ga - hab * gb) / det;
        let db = (haa * gb - hab * ga) / det;
        a -= da;
        b -= db;
        if da.abs().max(db.abs()) < 1e-10 {
            break;
        }
    }
    (a, b)
}

impl LifetimeCurve {
    /// Fits the ladder and the expansion rates on training rows. Rows of a
    /// customer at snapshots `(j − 1)·H` days apart (within a sixth of `H`)
    /// form the window-`j` pairs; see the module docs.
    pub fn fit(rows: LadderRows<'_>) -> LifetimeCurve {
        let h = rows.horizon_days.max(1) as i32;
        let tolerance = (h / 6).max(1);
        // Per customer, their rows by snapshot day.
        let mut by_customer: HashMap<&str, Vec<(i32, usize)>> = HashMap::new();
        for (i, id) in rows.ids.iter().enumerate() {
            by_customer
                .entry(id.as_str())
                .or_default()
                .push((rows.snapshots[i], i));
        }
        for v in by_customer.values_mut() {
            v.sort_unstable();
        }
        let later = |i: usize, gap_days: i32| -> Option<usize> {
            let target = rows.snapshots[i] + gap_days;
            let v = &by_customer[rows.ids[i].as_str()];
            let k = v.partition_point(|(d, _)| *d < target - tolerance);
            v.get(k)
                .filter(|(d, _)| (d - target).abs() <= tolerance)
                .map(|(_, r)| *r)
        };
        let n = rows.ids.len();
        let mut windows = Vec::new();
        for j in 2u32.. {
            let gap = (j as i32 - 1) * h;
            let (mut x, mut y) = (Vec::new(), Vec::new());
            for i in 0..n {
                if let Some(r) = later(i, gap) {
                    x.push(logit(rows.probabilities[i]));
                    y.push(rows.labels[r] == 1);
                }
            }
            let events = y.iter().filter(|v| **v).count();
            if y.len() < MIN_PAIRS || events < MIN_EVENTS || y.len() - events < MIN_EVENTS {
                break;
            }
            let (intercept, slope) = fit_two(&x, &y);
            windows.push(WindowHazard {
                window: j,
                intercept,
                slope,
                rows: y.len(),
                events,
            });
        }
        let (segments, pooled) = match rows.mrr {
            Some(mrr) => expansion(&rows, mrr, h, &later),
            None => (BTreeMap::new(), Expansion::neutral()),
        };
        LifetimeCurve {
            horizon_days: rows.horizon_days,
            windows,
            segments,
            pooled,
        }
    }

    /// The probability of churning in window `j` (1-based) given alive at
    /// its start, for a customer whose first-window probability is `p`.
    pub fn window_hazard(&self, p: f64, j: u32) -> f64 {
        if j <= 1 {
            return p.clamp(0.0, 1.0);
        }
        match self.windows.iter().take_while(|w| w.window <= j).last() {
            Some(w) => sigmoid(w.intercept + w.slope * logit(p)),
            None => p.clamp(0.0, 1.0),
        }
    }

    /// Survival to the end of each month `1..=months` after the snapshot.
    pub fn survival(&self, p: f64, months: u32) -> Vec<f64> {
        let h = f64::from(self.horizon_days.max(1));
        let mut out = Vec::with_capacity(months as usize);
        // Log-survival at the start of the current window, and its hazard.
        let mut window = 1u32;
        let mut at_window_start = 0.0;
        let mut log_keep = (1.0 - self.window_hazard(p, 1)).max(1e-12).ln();
        for t in 1..=months {
            let day = f64::from(t) * MONTH_DAYS;
            while day > f64::from(window) * h {
                at_window_start += log_keep;
                window += 1;
                log_keep = (1.0 - self.window_hazard(p, window)).max(1e-12).ln();
            }
            let into = (day - f64::from(window - 1) * h) / h;
            out.push((at_window_start + into * log_keep).exp());
        }
        out
    }

    /// The yearly revenue factor of a customer of a segment whose
    /// first-window probability is `p` (the pooled fit when the segment is
    /// unknown or was too small).
    pub fn yearly_factor(&self, segment: Option<&str>, p: f64) -> f64 {
        segment
            .and_then(|s| self.segments.get(s))
            .unwrap_or(&self.pooled)
            .factor(p)
    }

    /// Lifetime value from the curve (see the module docs). A missing or
    /// negative MRR is worth 0.
    pub fn clv(&self, mrr: f64, p: f64, segment: Option<&str>, config: &ValueConfig) -> f64 {
        if !(mrr.is_finite() && mrr > 0.0) {
            return 0.0;
        }
        let d = (1.0 + config.annual_discount_rate).powf(1.0 / 12.0) - 1.0;
        let monthly_growth = self.yearly_factor(segment, p).powf(1.0 / 12.0) / (1.0 + d);
        let mut factor = 1.0;
        let mut sum = 0.0;
        for s in self.survival(p, config.months) {
            factor *= monthly_growth;
            sum += s * factor;
        }
        config.gross_margin * mrr * sum
    }

    /// Expected months the customer stays, Σ S(t) over 50 years.
    pub fn expected_months(&self, p: f64) -> f64 {
        self.survival(p, LIFETIME_MONTHS).iter().sum()
    }
}

impl Expansion {
    fn neutral() -> Expansion {
        Expansion {
            yearly_factor: 1.0,
            by_risk: Vec::new(),
            gap_days: 365,
            pairs: 0,
        }
    }

    /// The yearly factor at first-window probability `p`: its risk band's.
    pub fn factor(&self, p: f64) -> f64 {
        self.by_risk
            .iter()
            .find(|(upper, _)| p <= *upper)
            .or(self.by_risk.last())
            .map_or(self.yearly_factor, |(_, f)| *f)
    }

    /// Net revenue retention overall, and the typical stayer's growth per
    /// quintile of today's risk.
    fn fit(pairs: &[(f64, f64, f64)], gap_days: u32) -> Expansion {
        let per_year = 365.0 / f64::from(gap_days);
        // The typical stayer's growth: the geometric mean of the ratios.
        let typical = |v: &[(f64, f64, f64)]| {
            let logs: Vec<f64> = v
                .iter()
                .filter(|(_, r, _)| *r > 0.0)
                .map(|(_, r, _)| r.ln())
                .collect();
            (per_year * logs.iter().sum::<f64>() / logs.len().max(1) as f64).exp()
        };
        // Net revenue retention: revenue-weighted.
        let nrr = |v: &[(f64, f64, f64)]| {
            let now: f64 = v.iter().map(|(_, _, w)| w).sum();
            let then: f64 = v.iter().map(|(_, r, w)| r * w).sum();
            (then / now).powf(per_year)
        };
        let mut sorted = pairs.to_vec();
        sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
        let bands = RISK_BANDS.min(sorted.len() / MIN_PAIRS).max(1);
        let by_risk = (0..bands)
            .map(|k| {
                let part = &sorted[k * sorted.len() / bands..(k + 1) * sorted.len() / bands];
                let upper = sigmoid(part.last().map_or(f64::INFINITY, |x| x.0));
                (upper, typical(part))
            })
            .collect();
        Expansion {
            yearly_factor: nrr(pairs),
            by_risk,
            gap_days,
            pairs: pairs.len(),
        }
    }
}

/// Net revenue retention of stayers, per segment and pooled: pairs of a
/// customer's rows `k·H` apart for the largest `k ≤ 4` (≈ a year) with
/// enough pairs, annualised.
fn expansion(
    rows: &LadderRows<'_>,
    mrr: &[f64],
    h: i32,
    later: &dyn Fn(usize, i32) -> Option<usize>,
) -> (BTreeMap<String, Expansion>, Expansion) {
    let whole_windows = (365 / h).max(1);
    for k in (1..=whole_windows.min(4)).rev() {
        let gap = k * h;
        // (logit p, MRR ratio, MRR now) per pair.
        let mut pooled = Vec::new();
        let mut by_segment: BTreeMap<String, Vec<(f64, f64, f64)>> = BTreeMap::new();
        for i in 0..rows.ids.len() {
            let Some(r) = later(i, gap) else { continue };
            let (now, then) = (mrr[i], mrr[r]);
            if !(now.is_finite() && then.is_finite() && now > 0.0 && then >= 0.0) {
                continue;
            }
            let pair = (logit(rows.probabilities[i]), then / now, now);
            pooled.push(pair);
            if let Some(s) = rows.segments.and_then(|s| s[i].clone()) {
                by_segment.entry(s).or_default().push(pair);
            }
        }
        if pooled.len() < MIN_PAIRS {
            continue;
        }
        let gap = gap as u32;
        let segments = by_segment
            .into_iter()
            .filter(|(_, v)| v.len() >= MIN_PAIRS)
            .map(|(s, v)| (s, Expansion::fit(&v, gap)))
            .collect();
        return (segments, Expansion::fit(&pooled, gap));
    }
    (BTreeMap::new(), Expansion::neutral())
}

/// The median of `|estimate − truth| / truth` over rows with a positive truth.
pub fn median_absolute_percentage_error(estimate: &[f64], truth: &[f64]) -> Option<f64> {
    let mut e: Vec<f64> = estimate
        .iter()
        .zip(truth)
        .filter(|(_, t)| **t > 0.0)
        .map(|(e, t)| ((e - t) / t).abs())
        .collect();
    if e.is_empty() {
        return None;
    }
    e.sort_by(f64::total_cmp);
    let m = e.len() / 2;
    Some(if e.len() % 2 == 1 {
        e[m]
    } else {
        (e[m - 1] + e[m]) / 2.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat_curve(h: u32) -> LifetimeCurve {
        LifetimeCurve {
            horizon_days: h,
            windows: Vec::new(),
            segments: BTreeMap::new(),
            pooled: Expansion::neutral(),
        }
    }

    #[test]
    fn a_flat_ladder_is_the_constant_retention_formula() {
        let config = ValueConfig::default();
        for p in [0.01, 0.1, 0.4] {
            let old = super::super::clv(250.0, p, 90, &config);
            let new = flat_curve(90).clv(250.0, p, None, &config);
            assert!((old - new).abs() / old < 1e-9, "{old} vs {new}");
        }
    }

    #[test]
    fn the_ladder_recovers_regression_to_the_mean() {
        // Two kinds of customer: their first-window risk differs (0.05 vs
        // 0.30), but after it both churn at 0.15 a window.
        let (mut ids, mut days, mut labels, mut probs) = (vec![], vec![], vec![], vec![]);
        let mut state = 7u64;
        let mut uniform = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        for c in 0..4000 {
            let p = if c % 2 == 0 { 0.05 } else { 0.30 };
            for k in 0..6 {
                let hazard = if k == 0 { p } else { 0.15 };
                let churned = uniform() < hazard;
                ids.push(format!("c{c}"));
                days.push(k * 90);
                labels.push(u8::from(churned));
                // The model's probability at each snapshot: the first
                // window's risk is this snapshot's, later ones regress.
                probs.push(if k == 0 { p } else { 0.15 });
                if churned {
                    break;
                }
            }
        }
        // Only first snapshots carry the two-valued risk, so fit on rows
        // whose probability is that of their own first window.
        let curve = LifetimeCurve::fit(LadderRows {
            ids: &ids,
            snapshots: &days,
            labels: &labels,
            probabilities: &probs,
            mrr: None,
            segments: None,
            horizon_days: 90,
        });
        assert!(curve.windows.len() >= 3, "{:?}", curve.windows);
        for j in 2..=4 {
            for p in [0.05, 0.30] {
                let h = curve.window_hazard(p, j);
                assert!((h - 0.15).abs() < 0.03, "window {j}, p {p}: {h}");
            }
        }
        // Safe customers' value is no longer a constant 0.05 a window.
        let config = ValueConfig::default();
        let ladder = curve.clv(100.0, 0.05, None, &config);
        let constant = super::super::clv(100.0, 0.05, 90, &config);
        assert!(ladder < 0.6 * constant, "{ladder} vs {constant}");
    }

    #[test]
    fn expansion_is_revenue_weighted_and_annualised() {
        let mut ids = vec![];
        let mut days = vec![];
        let mut mrr = vec![];
        let mut seg = vec![];
        for c in 0..40 {
            for k in 0..5 {
                ids.push(format!("c{c}"));
                days.push(k * 91);
                // 10% a year for the "pro" plan, flat for "basic".
                let pro = c % 2 == 0;
                mrr.push(if pro {
                    100.0 * 1.1f64.powf(f64::from(k) * 91.0 / 365.0)
                } else {
                    50.0
                });
                seg.push(Some(if pro { "pro" } else { "basic" }.to_string()));
            }
        }
        let n = ids.len();
        let curve = LifetimeCurve::fit(LadderRows {
            ids: &ids,
            snapshots: &days,
            labels: &vec![0; n],
            probabilities: &vec![0.1; n],
            mrr: Some(&mrr),
            segments: Some(&seg),
            horizon_days: 91,
        });
        // 20 pairs per plan are too few: both use the pooled figure.
        assert!(curve.segments.is_empty());
        assert_eq!(curve.pooled.pairs, 40);
        assert!(
            curve.pooled.yearly_factor > 1.0 && curve.pooled.yearly_factor < 1.1,
            "{:?}",
            curve.pooled
        );
        // Every pair has the same risk: one band. The typical stayer (half
        // grow 6.7%, half stay flat) grows less than the revenue-weighted
        // figure, whose growing half pays more.
        let at = curve.yearly_factor(Some("pro"), 0.1);
        assert_eq!(curve.pooled.by_risk.len(), 1);
        assert!(
            at > 1.0 && at < curve.pooled.yearly_factor,
            "{at} {:?}",
            curve.pooled
        );
        assert_eq!(at, curve.yearly_factor(None, 0.9));
    }

    #[test]
    fn median_errors() {
        assert_eq!(
            median_absolute_percentage_error(&[110.0, 50.0, 1.0], &[100.0, 100.0, 0.0]),
            Some(0.3)
        );
    }
}
