//! Time to churn: Cox proportional hazards with a Breslow baseline, giving
//! each customer a survival curve `S(t | x)` and an expected remaining
//! lifetime.
//!
//! ## The model
//!
//! The hazard of customer `i` is `h(t | xᵢ) = h₀(t) · exp(xᵢ·β)`. `β` maximises
//! Cox's partial likelihood with Efron's handling of tied event times (as
//! lifelines' `CoxPHFitter` does, so the coefficients can be checked against
//! it), by Newton–Raphson with step halving on standardised inputs, then
//! mapped back to the inputs' own scale. Censoring enters only through the
//! risk sets: a customer still active at their last observation is in every
//! risk set up to that time and contributes no event, which is what makes the
//! estimate unbiased under independent censoring.
//!
//! The cumulative baseline hazard is Breslow's: at each event time `t`,
//! `ΔH₀(t) = d(t) / Σ_{j at risk} exp(xⱼ·β)`, so
//! `S(t | x) = exp(−H₀(t) · exp(x·β))`. Beyond the last observed time the
//! curve is not extrapolated: the expected remaining lifetime is the area under
//! the conditional curve up to that time (a restricted mean, said as such).
//!
//! Concordance (Harrell's C) measures ranking quality on held-out customers:
//! the share of comparable pairs (the earlier time is an event) in which the
//! customer who churned first had the higher predicted hazard; ties in the
//! prediction count one half.

/// What can go wrong fitting or using a survival model.
#[derive(Debug, thiserror::Error)]
pub enum SurvivalError {
    /// The inputs do not fit together or hold no usable data.
    #[error("survival data: {0}")]
    BadInput(String),
    /// Newton–Raphson did not converge (separation or collinear inputs).
    #[error("the Cox fit did not converge after {iterations} iterations: {message}")]
    NoConvergence {
        /// Iterations run.
        iterations: usize,
        /// Why it stopped.
        message: String,
    },
}

impl crate::error::HasKind for SurvivalError {
    fn kind(&self) -> crate::error::ErrorKind {
        crate::error::ErrorKind::BadInput
    }
}

/// Result alias of the survival model.
pub type Result<T, E = SurvivalError> = std::result::Result<T, E>;

/// A fitted Cox model.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CoxModel {
    /// Input names, in column order.
    pub names: Vec<String>,
    /// `β` on the inputs' own scale (log hazard ratio per unit).
    pub coefficients: Vec<f64>,
    /// Standard errors of `β` (from the inverse observed information).
    pub standard_errors: Vec<f64>,
    /// Input means of the training rows (the baseline is at these).
    pub means: Vec<f64>,
    /// Event times, ascending, with the cumulative baseline hazard there
    /// (for a customer at the input means).
    pub baseline: Vec<(f64, f64)>,
    /// Partial log-likelihood at `β`.
    pub log_likelihood: f64,
    /// Newton iterations used.
    pub iterations: usize,
    /// Rows and events fitted.
    pub rows: usize,
    /// Of them, events (churns).
    pub events: usize,
}

/// Rows of a survival data set: inputs row-major (`rows × names.len()`).
#[derive(Debug, Clone, Copy)]
pub struct SurvivalData<'a> {
    /// Input values, row-major; must be finite.
    pub x: &'a [f64],
    /// Observed time of each row (churn, or last observation when censored).
    pub durations: &'a [f64],
    /// Whether the row's time is a churn (`false`: censored).
    pub events: &'a [bool],
}

impl SurvivalData<'_> {
    fn check(&self, p: usize) -> Result<usize> {
        let n = self.durations.len();
        if self.events.len() != n || self.x.len() != n * p {
            return Err(SurvivalError::BadInput(format!(
                "{n} durations, {} events and {} input values for {p} inputs do not fit together",
                self.events.len(),
                self.x.len()
            )));
        }
        if let Some(i) = self
            .durations
            .iter()
            .position(|d| !(d.is_finite() && *d >= 0.0))
        {
            return Err(SurvivalError::BadInput(format!(
                "row {i}: duration {} is not a finite number ≥ 0",
                self.durations[i]
            )));
        }
        if let Some(k) = self.x.iter().position(|v| !v.is_finite()) {
            return Err(SurvivalError::BadInput(format!(
                "row {}, input {}: value is not finite (impute missing values first)",
                k / p.max(1),
                k % p.max(1)
            )));
        }
        if !self.events.iter().any(|e| *e) {
            return Err(SurvivalError::BadInput(
                "no events: every row is censored".into(),
            ));
        }
        Ok(n)
    }
}

/// Partial log-likelihood, gradient and Hessian (Efron ties) at `beta`, for
/// standardised inputs `z` (row-major) with rows sorted by time descending.
struct Efron<'a> {
    z: &'a [f64],
    t: &'a [f64],
    e: &'a [bool],
    p: usize,
}

impl Efron<'_> {
    fn eval(&self, beta: &[f64], want_derivatives: bool) -> (f64, Vec<f64>, Vec<f64>) {
        let (p, n) = (self.p, self.t.len());
        let mut ll = 0.0;
        let mut grad = vec![0.0; p];
        let mut hess = vec![0.0; p * p];
        // Risk-set sums, accumulated as time falls.
        let mut s0 = 0.0;
        let mut s1 = vec![0.0; p];
        let mut s2 = vec![0.0; p * p];
        let mut i = 0;
        while i < n {
            let time = self.t[i];
            // Tied-time block: everyone at this time joins the risk set; the
            // events among them form the tied set D.
            let mut d = 0usize;
            let mut d0 = 0.0;
            let mut d1 = vec![0.0; p];
            let mut d2 = vec![0.0; p * p];
            let mut j = i;
            while j < n && self.t[j] == time {
                let row = &self.z[j * p..(j + 1) * p];
                let eta: f64 = row.iter().zip(beta).map(|(a, b)| a * b).sum();
                let w = eta.exp();
                s0 += w;
                for a in 0..p {
                    s1[a] += w * row[a];
                    if want_derivatives {
                        for b in 0..p {
                            s2[a * p + b] += w * row[a] * row[b];
                        }
                    }
                }
                if self.e[j] {
                    d += 1;
                    d0 += w;
                    ll += eta;
                    for a in 0..p {
                        d1[a] += w * row[a];
                        grad[a] += row[a];
                        if want_derivatives {
                            for b in 0..p {
                                d2[a * p + b] += w * row[a] * row[b];
                            }
                        }
                    }
                }
                j += 1;
            }
            for l in 0..d {
                let f = l as f64 / d as f64;
                let phi = s0 - f * d0;
                ll -= phi.ln();
                if want_derivatives {
                    for a in 0..p {
                        let m_a = (s1[a] - f * d1[a]) / phi;
                        grad[a] -= m_a;
                        for b in 0..p {
                            let m_b = (s1[b] - f * d1[b]) / phi;
                            hess[a * p + b] -=
                                (s2[a * p + b] - f * d2[a * p + b]) / phi - m_a * m_b;
                        }
                    }
                }
            }
            i = j;
        }
        (ll, grad, hess)
    }
}

use crate::models::logistic::newton::cholesky_solve;

/// The diagonal of `A⁻¹` for a symmetric positive-definite `A` (`p × p`),
/// one unit-vector solve per entry: the variances of the estimates.
fn inverse_diagonal(a: &[f64], p: usize) -> Option<Vec<f64>> {
    let mut unit = vec![0.0; p];
    (0..p)
        .map(|i| {
            unit[i] = 1.0;
            let column = cholesky_solve(a, &unit, p);
            unit[i] = 0.0;
            column.map(|c| c[i])
        })
        .collect()
}

/// Fits a Cox model. `names` gives the inputs (columns of `data.x`).
pub fn fit_cox(names: Vec<String>, data: SurvivalData<'_>) -> Result<CoxModel> {
    const MAX_ITERATIONS: usize = 100;
    let p = names.len();
    let n = data.check(p)?;
    // Standardise: Newton is scale-sensitive, and lifelines does the same.
    let mut means = vec![0.0; p];
    let mut scales = vec![1.0; p];
    for a in 0..p {
        let col = (0..n).map(|i| data.x[i * p + a]);
        let mean = col.clone().sum::<f64>() / n as f64;
        let var = col.map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
        if var <= 1e-24 {
            return Err(SurvivalError::BadInput(format!(
                "input {} is constant: it cannot be estimated",
                names[a]
            )));
        }
        means[a] = mean;
        scales[a] = var.sqrt();
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| data.durations[b].total_cmp(&data.durations[a]));
    let mut z = Vec::with_capacity(n * p);
    for &i in &order {
        for a in 0..p {
            z.push((data.x[i * p + a] - means[a]) / scales[a]);
        }
    }
    let t: Vec<f64> = order.iter().map(|&i| data.durations[i]).collect();
    let e: Vec<bool> = order.iter().map(|&i| data.events[i]).collect();
    let efron = Efron {
        z: &z,
        t: &t,
        e: &e,
        p,
    };
    let mut beta = vec![0.0; p];
    let (mut ll, mut grad, mut hess) = efron.eval(&beta, true);
    let mut iterations = 0;
    let singular = |iterations| SurvivalError::NoConvergence {
        iterations,
        message: "the information matrix is singular (collinear inputs?)".into(),
    };
    let variances = loop {
        iterations += 1;
        let neg_hess: Vec<f64> = hess.iter().map(|h| -h).collect();
        let step = cholesky_solve(&neg_hess, &grad, p).ok_or_else(|| singular(iterations))?;
        // Step halving keeps every step an ascent.
        let mut scale = 1.0;
        let mut accepted = None;
        for _ in 0..30 {
            let candidate: Vec<f64> = beta.iter().zip(&step).map(|(b, s)| b + scale * s).collect();
            let (cand_ll, _, _) = efron.eval(&candidate, false);
            if cand_ll.is_finite() && cand_ll >= ll - 1e-12 {
                accepted = Some((candidate, cand_ll));
                break;
            }
            scale /= 2.0;
        }
        let Some((next, next_ll)) = accepted else {
            return Err(SurvivalError::NoConvergence {
                iterations,
                message: "no step increases the partial likelihood".into(),
            });
        };
        let moved = step.iter().map(|s| (scale * s).abs()).fold(0.0, f64::max);
        let gained = next_ll - ll;
        beta = next;
        (ll, grad, hess) = efron.eval(&beta, true);
        if moved < 1e-10 || (gained.abs() < 1e-12 && moved < 1e-6) {
            // The variances at the optimum (the last step's information
            // when the optimum's own does not factor).
            let at_optimum: Vec<f64> = hess.iter().map(|h| -h).collect();
            break inverse_diagonal(&at_optimum, p)
                .or_else(|| inverse_diagonal(&neg_hess, p))
                .ok_or_else(|| singular(iterations))?;
        }
        if iterations >= MAX_ITERATIONS {
            return Err(SurvivalError::NoConvergence {
                iterations,
                message: format!("still moving by {moved:.2e}"),
            });
        }
        if beta.iter().any(|b| b.abs() > 50.0) {
            return Err(SurvivalError::NoConvergence {
                iterations,
                message: "a coefficient diverges (an input separates churners perfectly)".into(),
            });
        }
    };
    let coefficients: Vec<f64> = beta.iter().zip(&scales).map(|(b, s)| b / s).collect();
    let standard_errors: Vec<f64> = variances
        .iter()
        .zip(&scales)
        .map(|(v, s)| v.max(0.0).sqrt() / s)
        .collect();
    // Breslow's cumulative baseline hazard, at the input means.
    let risk: Vec<f64> = (0..n)
        .map(|k| {
            let row = &z[k * p..(k + 1) * p];
            row.iter().zip(&beta).map(|(a, b)| a * b).sum::<f64>().exp()
        })
        .collect();
    let mut steps: Vec<(f64, f64)> = Vec::new();
    let mut at_risk = 0.0;
    let mut k = 0;
    while k < n {
        let time = t[k];
        let mut deaths = 0.0;
        while k < n && t[k] == time {
            at_risk += risk[k];
            if e[k] {
                deaths += 1.0;
            }
            k += 1;
        }
        if deaths > 0.0 {
            steps.push((time, deaths / at_risk));
        }
    }
    steps.reverse();
    let mut cumulative = 0.0;
    let baseline = steps
        .into_iter()
        .map(|(time, dh)| {
            cumulative += dh;
            (time, cumulative)
        })
        .collect();
    Ok(CoxModel {
        names,
        coefficients,
        standard_errors,
        means,
        baseline,
        log_likelihood: ll,
        iterations,
        rows: n,
        events: data.events.iter().filter(|e| **e).count(),
    })
}

impl CoxModel {
    /// `exp((x − mean)·β)`: the customer's hazard relative to an average one.
    pub fn partial_hazard(&self, x: &[f64]) -> f64 {
        x.iter()
            .zip(&self.means)
            .zip(&self.coefficients)
            .map(|((v, m), b)| (v - m) * b)
            .sum::<f64>()
            .exp()
    }

    /// Partial hazards of row-major rows.
    pub fn partial_hazards(&self, x: &[f64]) -> Vec<f64> {
        let p = self.names.len().max(1);
        x.chunks(p).map(|row| self.partial_hazard(row)).collect()
    }

    /// The cumulative baseline hazard at `t`.
    pub fn baseline_hazard(&self, t: f64) -> f64 {
        let k = self.baseline.partition_point(|(time, _)| *time <= t);
        if k == 0 {
            0.0
        } else {
            self.baseline[k - 1].1
        }
    }

    /// `S(t | x)`: the probability of still being a customer at time `t`.
    pub fn survival(&self, x: &[f64], t: f64) -> f64 {
        (-self.baseline_hazard(t) * self.partial_hazard(x)).exp()
    }

    /// The last time the baseline covers.
    pub fn horizon(&self) -> f64 {
        self.baseline.last().map_or(0.0, |(t, _)| *t)
    }

    /// Expected remaining lifetime of a customer who has stayed `survived`
    /// so far: `∫ S(t | x) / S(survived | x) dt` from `survived` to the last
    /// observed time (a restricted mean: the curve is not extrapolated).
    pub fn expected_remaining(&self, x: &[f64], survived: f64) -> f64 {
        let r = self.partial_hazard(x);
        let at = |h: f64| (-h * r).exp();
        let s0 = at(self.baseline_hazard(survived));
        if s0 <= 0.0 {
            return 0.0;
        }
        let mut area = 0.0;
        let mut from = survived;
        let mut level = s0;
        for &(time, h) in &self.baseline {
            if time <= survived {
                continue;
            }
            area += level * (time - from);
            from = time;
            level = at(h);
        }
        area / s0
    }
}

/// Harrell's concordance of `risk` (higher: churns sooner) with observed
/// `durations` and `events`: the share of comparable pairs ordered right,
/// prediction ties counting one half. `None` without comparable pairs.
pub fn concordance_index(durations: &[f64], risk: &[f64], events: &[bool]) -> Option<f64> {
    let n = durations.len();
    let mut concordant = 0.0;
    let mut comparable = 0.0;
    for i in 0..n {
        if !events[i] {
            continue;
        }
        for j in 0..n {
            // i churned before j was last seen: a comparable pair.
            if durations[i] < durations[j] {
                comparable += 1.0;
                if risk[i] > risk[j] {
                    concordant += 1.0;
                } else if risk[i] == risk[j] {
                    concordant += 0.5;
                }
            }
        }
    }
    (comparable > 0.0).then(|| concordant / comparable)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small data set whose Efron estimate is known: one binary input,
    /// three event times, one tie.
    #[test]
    fn a_binary_input_recovers_the_simulated_hazard_ratio() {
        // Exponential times with hazard 0.1 (x = 0) and 0.3 (x = 1), censored at 20.
        let mut state = 42u64;
        let mut uniform = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        let n = 4000;
        let mut x = Vec::new();
        let mut durations = Vec::new();
        let mut events = Vec::new();
        for i in 0..n {
            let xi = (i % 2) as f64;
            let rate = 0.1 * (1.0986123 * xi).exp();
            let t = (-uniform().ln() / rate).ceil(); // whole months: many ties
            x.push(xi);
            durations.push(t.min(20.0));
            events.push(t <= 20.0);
        }
        let m = fit_cox(
            vec!["x".into()],
            SurvivalData {
                x: &x,
                durations: &durations,
                events: &events,
            },
        )
        .unwrap();
        // Efron's estimate with monthly ties is close to log 3.
        assert!((m.coefficients[0] - 3f64.ln()).abs() < 0.08, "{m:?}");
        assert!(m.standard_errors[0] > 0.0 && m.standard_errors[0] < 0.1);
        // Higher hazard: lower survival and fewer remaining months.
        assert!(m.survival(&[1.0], 5.0) < m.survival(&[0.0], 5.0));
        assert!(m.expected_remaining(&[1.0], 0.0) < m.expected_remaining(&[0.0], 0.0));
        // The baseline is non-decreasing and survival falls with time.
        assert!(m.baseline.windows(2).all(|w| w[0].1 <= w[1].1));
        assert!(m.survival(&[0.5], 3.0) >= m.survival(&[0.5], 10.0));
        let risk = m.partial_hazards(&x);
        let c = concordance_index(&durations, &risk, &events).unwrap();
        assert!(c > 0.6 && c < 0.7, "{c}");
    }

    #[test]
    fn concordance_counts_comparable_pairs_and_half_ties() {
        // (time, event, risk): 1 churns first with the highest risk.
        let t = [1.0, 2.0, 3.0];
        let e = [true, true, false];
        assert_eq!(concordance_index(&t, &[3.0, 2.0, 1.0], &e), Some(1.0));
        assert_eq!(concordance_index(&t, &[1.0, 2.0, 3.0], &e), Some(0.0));
        assert_eq!(concordance_index(&t, &[1.0, 1.0, 1.0], &e), Some(0.5));
        assert_eq!(concordance_index(&t, &[1.0, 1.0, 1.0], &[false; 3]), None);
    }

    #[test]
    fn bad_input_is_named() {
        let err = |x: &[f64], d: &[f64], e: &[bool]| {
            fit_cox(
                vec!["a".into()],
                SurvivalData {
                    x,
                    durations: d,
                    events: e,
                },
            )
            .unwrap_err()
            .to_string()
        };
        assert!(err(&[1.0, 2.0], &[1.0, -1.0], &[true, true]).contains("row 1"));
        assert!(err(&[1.0, f64::NAN], &[1.0, 2.0], &[true, true]).contains("not finite"));
        assert!(err(&[1.0, 2.0], &[1.0, 2.0], &[false, false]).contains("no events"));
        assert!(err(&[1.0, 1.0], &[1.0, 2.0], &[true, true]).contains("constant"));
        assert!(err(&[1.0], &[1.0, 2.0], &[true, true]).contains("do not fit"));
    }
}
