//! Probability calibrators, fitted on held-out (validation) rows: Platt
//! scaling on the log-odds and isotonic regression.
//!
//! A fitted [`Calibrator`] maps a raw probability to a calibrated one with
//! [`Calibrator::apply`], which returns a value in `[0, 1]` and is monotone
//! non-decreasing in its input, so calibration never changes a ranking's
//! order (ties may be created, never inverted).

use serde::{Deserialize, Serialize};

use super::{canonical, check_probabilities, EvalError};

/// Probabilities are clipped to `[LOGIT_EPS, 1 - LOGIT_EPS]` before taking
/// log-odds in Platt scaling (the 1e-12 sklearn adds to probabilities before
/// taking logs in its temperature scaling).
const LOGIT_EPS: f64 = 1e-12;

/// Most Newton iterations in [`Calibrator::fit_platt`] (it converges in under
/// ten on ordinary data).
const PLATT_MAX_ITER: usize = 100;

/// A monotone map from raw to calibrated probabilities.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum Calibrator {
    /// No calibration: probabilities are only clamped to `[0, 1]`.
    Identity,
    /// Platt scaling on the log-odds: `sigmoid(a · logit(p) + b)`, `a >= 0`.
    Platt {
        /// Slope on `logit(p)`; above 1 sharpens, below 1 softens.
        a: f64,
        /// Intercept, shifting every log-odds.
        b: f64,
    },
    /// Isotonic regression: piecewise linear through the points
    /// (`thresholds[i]`, `values[i]`), constant outside them (sklearn
    /// `IsotonicRegression(out_of_bounds="clip")`).
    Isotonic {
        /// Increasing raw probabilities.
        thresholds: Vec<f64>,
        /// Non-decreasing calibrated probabilities, one per threshold.
        values: Vec<f64>,
    },
}

/// `1 / (1 + e^(−z))`, monotone in `z` and in `[0, 1]` for any non-NaN `z`.
fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// Log-odds of `p` clipped to `[LOGIT_EPS, 1 - LOGIT_EPS]`; NaN stays NaN.
fn logit(p: f64) -> f64 {
    let q = p.clamp(LOGIT_EPS, 1.0 - LOGIT_EPS);
    (q / (1.0 - q)).ln()
}

/// `ln(1 + e^x)` without overflow.
fn softplus(x: f64) -> f64 {
    if x > 0.0 {
        x + (-x).exp().ln_1p()
    } else {
        x.exp().ln_1p()
    }
}

/// Cross-entropy of targets `t` against `sigmoid(a · f + b)`, summed.
fn platt_loss(f: &[f64], t: &[f64], a: f64, b: f64) -> f64 {
    f.iter()
        .zip(t)
        .map(|(&fi, &ti)| {
            let z = a * fi + b;
            ti * softplus(-z) + (1.0 - ti) * softplus(z)
        })
        .sum()
}

/// Counts of churners and of all rows, failing on one class.
fn class_counts(y: &[u8]) -> Result<(usize, usize), EvalError> {
    let pos = y.iter().filter(|v| **v == 1).count();
    if pos == 0 || pos == y.len() {
        return Err(EvalError::SingleClass);
    }
    Ok((pos, y.len()))
}

impl Calibrator {
    /// Fits Platt scaling, `sigmoid(a · logit(p) + b)`, on raw probabilities
    /// `p` and labels `y`.
    ///
    /// Minimises the cross-entropy against Platt's smoothed targets
    /// `t+ = (N+ + 1) / (N+ + 2)` for churners and `t- = 1 / (N- + 2)` for
    /// the others (as sklearn's sigmoid calibration), which keeps `a` and `b`
    /// finite on separable data. Solved by Newton's method with a
    /// backtracking line search (Lin, Lin and Weng, 2007), started at `a = 0`
    /// and the prior log-odds. The loss is convex; if its minimum has `a < 0`
    /// (raw scores anti-correlated with churn), the best `a >= 0` is `a = 0`,
    /// a constant calibrator, so that [`Calibrator::apply`] stays monotone;
    /// the same constant is returned when all scores are equal.
    /// `p` is clipped to `[1e-12, 1 - 1e-12]` before the log-odds.
    ///
    /// Fails when the input fails [`check_probabilities`] or one class is
    /// missing.
    pub fn fit_platt(y: &[u8], p: &[f64]) -> Result<Calibrator, EvalError> {
        check_probabilities(y, p)?;
        let (pos, n) = class_counts(y)?;
        let neg = n - pos;
        let (t_pos, t_neg) = (
            (pos as f64 + 1.0) / (pos as f64 + 2.0),
            1.0 / (neg as f64 + 2.0),
        );
        let t: Vec<f64> = y
            .iter()
            .map(|&v| if v == 1 { t_pos } else { t_neg })
            .collect();
        let f: Vec<f64> = p.iter().map(|&v| logit(v)).collect();

        let mean_t = t.iter().sum::<f64>() / n as f64;
        let intercept_only = Calibrator::Platt {
            a: 0.0,
            b: (mean_t / (1.0 - mean_t)).ln(),
        };
        if f.iter().all(|&v| v == f[0]) {
            // One distinct score: only the intercept is identified.
            return Ok(intercept_only);
        }

        let (mut a, mut b) = (0.0, ((pos as f64 + 1.0) / (neg as f64 + 1.0)).ln());
        let mut loss = platt_loss(&f, &t, a, b);
        for _ in 0..PLATT_MAX_ITER {
            // Gradient and Hessian of the loss in (a, b).
            let (mut g1, mut g2, mut h11, mut h12, mut h22) = (0.0, 0.0, 0.0, 0.0, 0.0);
            for (&fi, &ti) in f.iter().zip(&t) {
                let q = sigmoid(a * fi + b);
                let w = q * (1.0 - q);
                g1 += (q - ti) * fi;
                g2 += q - ti;
                h11 += w * fi * fi;
                h12 += w * fi;
                h22 += w;
            }
            // A tiny ridge guards against a singular Hessian (saturated sigmoids).
            let (h11, h22) = (h11 + 1e-12, h22 + 1e-12);
            let det = h11 * h22 - h12 * h12;
            if det.is_nan() || det <= 0.0 {
                break;
            }
            let da = -(h22 * g1 - h12 * g2) / det;
            let db = -(h11 * g2 - h12 * g1) / det;
            let slope = g1 * da + g2 * db;
            if slope.is_nan() || slope >= 0.0 {
                break; // at the minimum, to rounding
            }
            let mut step = 1.0;
            let mut accepted = false;
            while step >= 1e-10 {
                let (na, nb) = (a + step * da, b + step * db);
                let new_loss = platt_loss(&f, &t, na, nb);
                if new_loss <= loss + 1e-4 * step * slope {
                    (a, b, loss) = (na, nb, new_loss);
                    accepted = true;
                    break;
                }
                step /= 2.0;
            }
            let moved = (step * da).abs().max((step * db).abs());
            if !accepted || moved <= 1e-12 * (1.0 + a.abs().max(b.abs())) {
                break;
            }
        }
        if !(a.is_finite() && b.is_finite()) || a < 0.0 {
            return Ok(intercept_only);
        }
        Ok(Calibrator::Platt { a, b })
    }

    /// Fits isotonic regression (pool adjacent violators, non-decreasing) of
    /// `y` on `p`, as sklearn `IsotonicRegression(out_of_bounds="clip")`:
    /// rows with equal `p` are first averaged, and interior points on a flat
    /// run are dropped (they do not change the interpolation).
    ///
    /// Fails when the input fails [`check_probabilities`] or one class is
    /// missing.
    pub fn fit_isotonic(y: &[u8], p: &[f64]) -> Result<Calibrator, EvalError> {
        check_probabilities(y, p)?;
        class_counts(y)?;
        let mut order: Vec<usize> = (0..p.len()).collect();
        order.sort_by(|&i, &j| p[i].total_cmp(&p[j]));
        // Distinct p with (churners, rows), ascending.
        let mut points: Vec<(f64, u64, u64)> = Vec::new();
        for &i in &order {
            match points.last_mut() {
                Some(last) if last.0 == p[i] => {
                    last.1 += u64::from(y[i]);
                    last.2 += 1;
                }
                _ => points.push((canonical(p[i]), u64::from(y[i]), 1)),
            }
        }
        // Pool adjacent violators: blocks of (churners, rows, points covered),
        // merged while a block's mean exceeds the next one's. Means are
        // compared exactly by cross-multiplying integer counts.
        let mut blocks: Vec<(u64, u64, usize)> = Vec::with_capacity(points.len());
        for &(_, churners, rows) in &points {
            blocks.push((churners, rows, 1));
            while blocks.len() >= 2 {
                let (c2, r2, k2) = blocks[blocks.len() - 1];
                let (c1, r1, k1) = blocks[blocks.len() - 2];
                if u128::from(c1) * u128::from(r2) <= u128::from(c2) * u128::from(r1) {
                    break;
                }
                blocks.pop();
                let merged = blocks.len() - 1;
                blocks[merged] = (c1 + c2, r1 + r2, k1 + k2);
            }
        }
        let fitted: Vec<f64> = blocks
            .iter()
            .flat_map(|&(c, r, k)| std::iter::repeat_n(c as f64 / r as f64, k))
            .collect();
        // Keep the ends and every point whose value differs from a neighbour.
        let last = fitted.len() - 1;
        let (mut thresholds, mut values) = (Vec::new(), Vec::new());
        for (i, &v) in fitted.iter().enumerate() {
            if i == 0 || i == last || v != fitted[i - 1] || v != fitted[i + 1] {
                thresholds.push(points[i].0);
                values.push(v);
            }
        }
        Ok(Calibrator::Isotonic { thresholds, values })
    }

    /// Calibrated probability of a raw probability `p`.
    ///
    /// For a calibrator made by the fit functions (or any with finite
    /// parameters, `a >= 0`, and increasing thresholds with non-decreasing
    /// values) the result is in `[0, 1]` and monotone non-decreasing in `p`,
    /// for every `p` including `±∞`. A NaN `p` gives NaN, so that a model
    /// producing NaN is caught by [`check_scores`](super::check_scores)
    /// downstream rather than hidden. Never panics, even on a malformed
    /// deserialised calibrator.
    pub fn apply(&self, p: f64) -> f64 {
        if p.is_nan() {
            return p;
        }
        match self {
            Calibrator::Identity => p.clamp(0.0, 1.0),
            Calibrator::Platt { a, b } => sigmoid(a * logit(p) + b),
            Calibrator::Isotonic { thresholds, values } => interpolate(thresholds, values, p),
        }
    }
}

/// Linear interpolation through the points, clipped to their range (scipy's
/// `interp1d` as sklearn uses it), then to `[0, 1]`.
fn interpolate(thresholds: &[f64], values: &[f64], p: f64) -> f64 {
    let n = thresholds.len().min(values.len());
    if n == 0 {
        return p.clamp(0.0, 1.0);
    }
    let (xs, ys) = (&thresholds[..n], &values[..n]);
    // `max`/`min` rather than `clamp`: they cannot panic on bad bounds.
    let x = p.max(xs[0]).min(xs[n - 1]);
    let y = if n == 1 {
        ys[0]
    } else {
        let hi = xs.partition_point(|&t| t < x).clamp(1, n - 1);
        let (x0, x1, y0, y1) = (xs[hi - 1], xs[hi], ys[hi - 1], ys[hi]);
        let y = if x1 > x0 {
            (y1 - y0) / (x1 - x0) * (x - x0) + y0
        } else {
            y1
        };
        // Rounding must not step outside the segment (keeps monotonicity).
        y.max(y0.min(y1)).min(y0.max(y1))
    };
    y.clamp(0.0, 1.0)
}
