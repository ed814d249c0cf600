//! Cohort retention projection: the shifted-beta-geometric (sBG) model of
//! Fader & Hardie (2007), "How to project customer retention".
//!
//! A contract customer renews each period with a churn probability θ that
//! stays fixed for them but differs between customers, following a
//! Beta(α, β) distribution across the cohort. Averaged over the cohort, the
//! chance that a customer's lifetime ends in period `t` and the chance that
//! it lasts beyond `t` are
//!
//! ```text
//! P(T = 1) = α / (α + β)
//! P(T = t) = P(T = t − 1) · (β + t − 2) / (α + β + t − 1)        t ≥ 2
//! S(t)     = S(t − 1) − P(T = t),  S(0) = 1
//! ```
//!
//! and the retention rate among those still there, `r_t = S(t) / S(t − 1) =
//! (β + t − 1) / (α + β + t − 1)`, rises with `t`: the customers most likely
//! to churn leave first. That rise is why a constant retention rate fitted to
//! the first periods understates how long a cohort lasts, and why the model
//! is worth fitting.
//!
//! From a cohort's survivor counts `n_0, n_1, …, n_T` (those still customers
//! at the end of each period), with `d_t = n_{t−1} − n_t` churning in period
//! `t`, the log-likelihood is `Σ_t d_t ln P(T = t) + n_T ln S(T)`, maximised
//! here over `(ln α, ln β)` by [`minimize`], a Nelder–Mead search that
//! restarts until a restart no longer improves the optimum. On the paper's
//! two cohorts it reproduces the published estimates to three decimals (see
//! the tests).
//!
//! Pure: counts in, numbers out.

/// Result alias of the retention model.
pub type Result<T, E = SbgError> = std::result::Result<T, E>;

/// Why a cohort cannot be fitted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SbgError {
    /// Fewer than two counts: the model needs the cohort's size and at least
    /// one period's survivors.
    #[error("a cohort needs its initial size and at least one period's survivors, got {counts} count(s)")]
    TooShort {
        /// How many counts were given.
        counts: usize,
    },
    /// The cohort started with nobody.
    #[error("the cohort is empty: its initial size is 0")]
    EmptyCohort,
    /// Survivors grew from one period to the next: a cohort only shrinks.
    #[error("survivors must not increase: period {period} has {count}, more than the {previous} before it")]
    Increasing {
        /// The period whose count is too high (1 = first renewal).
        period: usize,
        /// Survivors at the end of the period before.
        previous: u64,
        /// Survivors at the end of `period`.
        count: u64,
    },
    /// Nobody churned, or everybody churned in the first period: the counts
    /// do not determine both parameters.
    #[error("the counts do not determine the model: {reason}")]
    Degenerate {
        /// What is missing.
        reason: &'static str,
    },
    /// The likelihood search did not settle.
    #[error("the likelihood search did not converge after {evaluations} evaluations")]
    NotConverged {
        /// Likelihood evaluations spent.
        evaluations: usize,
    },
    /// A parameter out of its domain (α, β must be finite and positive; a
    /// discount rate must be finite and above −1).
    #[error("invalid parameter `{name}`: {value}")]
    BadParameter {
        /// The parameter.
        name: &'static str,
        /// Its value.
        value: f64,
    },
}

impl crate::error::HasKind for SbgError {
    fn kind(&self) -> crate::error::ErrorKind {
        // Every variant is about the counts or parameters the caller gave;
        // a search that does not settle is a property of those counts.
        crate::error::ErrorKind::BadInput
    }
}

/// The two parameters of the Beta distribution of churn probabilities.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SbgParams {
    /// α > 0; the cohort's mean churn probability is α / (α + β).
    pub alpha: f64,
    /// β > 0; α + β measures how alike the customers are (large = alike).
    pub beta: f64,
}

/// A fitted cohort.
#[derive(Debug, Clone, PartialEq)]
pub struct SbgFit {
    /// The maximum-likelihood parameters.
    pub params: SbgParams,
    /// The maximised log-likelihood, `Σ d_t ln P(T = t) + n_T ln S(T)`.
    pub log_likelihood: f64,
    /// Periods observed, `T` (the number of counts minus one).
    pub periods: usize,
    /// Observed survival `n_t / n_0` for `t = 0..=T`.
    pub observed_survival: Vec<f64>,
}

impl SbgParams {
    /// Checks that α and β are finite and positive.
    pub fn new(alpha: f64, beta: f64) -> Result<Self> {
        for (name, value) in [("alpha", alpha), ("beta", beta)] {
            if !(value.is_finite() && value > 0.0) {
                return Err(SbgError::BadParameter { name, value });
            }
        }
        Ok(SbgParams { alpha, beta })
    }

    /// Retention rate in period `t ≥ 1`: the share of customers alive at
    /// the end of period `t − 1` who are still there at the end of `t`,
    /// `(β + t − 1) / (α + β + t − 1)`. Period 0 has no renewal: 1.
    pub fn retention_rate(&self, t: u32) -> f64 {
        if t == 0 {
            return 1.0;
        }
        let k = f64::from(t) - 1.0;
        (self.beta + k) / (self.alpha + self.beta + k)
    }

    /// `S(t)`, the share of the cohort still customers at the end of period
    /// `t` (1 at `t = 0`), also beyond the periods observed. Computed as the
    /// product of retention rates, which equals `S(t − 1) − P(T = t)`
    /// without the cancellation of the subtraction.
    pub fn survival(&self, t: u32) -> f64 {
        (1..=t).map(|k| self.retention_rate(k)).product()
    }

    /// `S(0), S(1), …, S(periods)`: the projected survival curve.
    pub fn survival_curve(&self, periods: u32) -> Vec<f64> {
        let mut s = 1.0;
        let mut out = Vec::with_capacity(periods as usize + 1);
        out.push(s);
        for t in 1..=periods {
            s *= self.retention_rate(t);
            out.push(s);
        }
        out
    }

    /// `P(T = t)`, the probability that a new customer's last period is
    /// `t ≥ 1` (0 for `t = 0`).
    pub fn churn_probability(&self, t: u32) -> f64 {
        if t == 0 {
            return 0.0;
        }
        // S(t − 1) · (1 − r_t), and 1 − r_t = α / (α + β + t − 1).
        let k = f64::from(t) - 1.0;
        self.survival(t - 1) * self.alpha / (self.alpha + self.beta + k)
    }

    /// Log-likelihood of survivor counts `n_0, …, n_T` (see the module
    /// docs). Counts are not checked here; [`fit`] checks them.
    pub fn log_likelihood(&self, survivors: &[u64]) -> f64 {
        let Some(&last) = survivors.last() else {
            return 0.0;
        };
        let (a, b) = (self.alpha, self.beta);
        let mut ll = 0.0;
        let mut s = 1.0; // S(t − 1)
        for (i, pair) in survivors.windows(2).enumerate() {
            let k = i as f64; // t − 1
            let churned = pair[0].saturating_sub(pair[1]) as f64;
            if churned > 0.0 {
                ll += churned * (s * a / (a + b + k)).ln();
            }
            s *= (b + k) / (a + b + k);
        }
        if last > 0 {
            ll += last as f64 * s.ln();
        }
        ll
    }

    /// Discounted expected residual lifetime (Fader & Hardie 2010,
    /// "Customer-base valuation in a contractual setting: the perils of
    /// ignoring heterogeneity"): for a customer who has made `renewals`
    /// renewals, the expected number of further renewals, each discounted
    /// by `(1 + discount_rate)` per period after the first,
    ///
    /// ```text
    /// DERL = Σ_{t = n}^{n + horizon − 1} S(t) / S(n − 1) / (1 + d)^{t − n},   n = renewals + 1
    /// ```
    ///
    /// Multiplied by the margin of one period, it is the customer's residual
    /// value. The sum stops after `horizon` periods, or earlier once a term
    /// no longer changes it; with `discount_rate = 0` it is the expected
    /// number of remaining periods within the horizon.
    pub fn discounted_expected_residual_lifetime(
        &self,
        renewals: u32,
        discount_rate: f64,
        horizon: u32,
    ) -> Result<f64> {
        if !(discount_rate.is_finite() && discount_rate > -1.0) {
            return Err(SbgError::BadParameter {
                name: "discount_rate",
                value: discount_rate,
            });
        }
        let n = renewals.saturating_add(1);
        let discount = 1.0 / (1.0 + discount_rate);
        let (mut sum, mut term) = (0.0, 1.0);
        for k in 0..horizon {
            // term = S(n + k) / S(n − 1) / (1 + d)^k
            term *= self.retention_rate(n.saturating_add(k));
            if k > 0 {
                term *= discount;
            }
            sum += term;
            if term <= sum * 1e-16 {
                break;
            }
        }
        Ok(sum)
    }
}

/// Fits the model to a cohort's survivor counts `n_0, n_1, …, n_T` by
/// maximum likelihood.
///
/// The counts must start above zero, never increase, and show both churn
/// and survival beyond the first period (otherwise α or β runs off to a
/// boundary).
pub fn fit(survivors: &[u64]) -> Result<SbgFit> {
    check_counts(survivors)?;
    let n0 = survivors[0];
    // Start from the first period's churn rate as the mean, with α + β = 2.
    let first_churn = (n0 - survivors[1]) as f64 / n0 as f64;
    let mean = first_churn.clamp(0.05, 0.95);
    let x0 = [(2.0 * mean).ln(), (2.0 * (1.0 - mean)).ln()];
    let objective = |x: &[f64]| {
        let p = SbgParams {
            alpha: x[0].exp(),
            beta: x[1].exp(),
        };
        let ll = p.log_likelihood(survivors);
        if ll.is_finite() {
            -ll / n0 as f64
        } else {
            f64::INFINITY
        }
    };
    let found = minimize(objective, &x0, &LOG_BOX);
    if !found.converged {
        return Err(SbgError::NotConverged {
            evaluations: found.evaluations,
        });
    }
    let params = SbgParams {
        alpha: found.x[0].exp(),
        beta: found.x[1].exp(),
    };
    Ok(SbgFit {
        params,
        log_likelihood: params.log_likelihood(survivors),
        periods: survivors.len() - 1,
        observed_survival: survivors.iter().map(|&n| n as f64 / n0 as f64).collect(),
    })
}

fn check_counts(survivors: &[u64]) -> Result<()> {
    if survivors.len() < 2 {
        return Err(SbgError::TooShort {
            counts: survivors.len(),
        });
    }
    if survivors[0] == 0 {
        return Err(SbgError::EmptyCohort);
    }
    for (i, pair) in survivors.windows(2).enumerate() {
        if pair[1] > pair[0] {
            return Err(SbgError::Increasing {
                period: i + 1,
                previous: pair[0],
                count: pair[1],
            });
        }
    }
    let last = survivors[survivors.len() - 1];
    if last == survivors[0] {
        return Err(SbgError::Degenerate {
            reason: "nobody churned",
        });
    }
    if survivors[1] == 0 {
        return Err(SbgError::Degenerate {
            reason: "everybody churned in the first period",
        });
    }
    Ok(())
}

/// The box the log-parameters are searched in: `e^±25` covers every
/// plausible parameter while keeping the likelihood's arithmetic finite.
pub(crate) const LOG_BOX: [f64; 2] = [-25.0, 25.0];

/// Where a minimisation ended.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Minimum {
    /// The best point found.
    pub x: Vec<f64>,
    /// The objective there.
    pub f: f64,
    /// Objective evaluations spent, restarts included.
    pub evaluations: usize,
    /// Whether the last search met its tolerances before its budget ran out.
    pub converged: bool,
    /// Whether some coordinate ended within 1e-3 of the box's edge: the
    /// likelihood kept improving towards a boundary (a parameter → 0 or ∞).
    pub at_bound: bool,
}

/// Minimises `f` over the box `[bounds[0], bounds[1]]ⁿ` from `x0` with
/// Nelder–Mead, restarting from the best point with a fresh simplex until a
/// restart improves the objective by less than its tolerance (a simplex can
/// collapse before it reaches the minimum; the restart undoes that).
///
/// Points outside the box, and points where `f` is not finite, count as
/// `+∞`. The tolerances are tight (objective spread `1e-13 · (1 + |f|)`,
/// simplex width `1e-10`) because callers compare parameters to published
/// values to three decimals and to other libraries within 1%; the
/// retention and purchase models share it.
pub(crate) fn minimize(mut f: impl FnMut(&[f64]) -> f64, x0: &[f64], bounds: &[f64; 2]) -> Minimum {
    const MAX_RESTARTS: usize = 50;
    let mut eval = |x: &[f64]| {
        if x.iter().any(|v| !(bounds[0]..=bounds[1]).contains(v)) {
            return f64::INFINITY;
        }
        let v = f(x);
        if v.is_finite() {
            v
        } else {
            f64::INFINITY
        }
    };
    let mut x: Vec<f64> = x0.iter().map(|v| v.clamp(bounds[0], bounds[1])).collect();
    let mut best = eval(&x);
    let mut evaluations = 1;
    let mut converged = false;
    for _ in 0..MAX_RESTARTS {
        let run = nelder_mead(&mut eval, &x, 0.5);
        evaluations += run.evaluations;
        converged = run.converged;
        // No gain (or none measurable, with both ends infinite) ends it.
        let improvement = best - run.f;
        let settled = improvement.is_nan() || improvement <= 1e-13 * (1.0 + run.f.abs());
        if run.f <= best {
            x = run.x;
            best = run.f;
        }
        if run.converged && settled {
            break;
        }
    }
    let at_bound = x
        .iter()
        .any(|v| (v - bounds[0]).abs() < 1e-3 || (bounds[1] - v).abs() < 1e-3);
    Minimum {
        x,
        f: best,
        evaluations,
        converged,
        at_bound,
    }
}

/// One Nelder–Mead search with the standard coefficients (reflection 1,
/// expansion 2, contraction ½, shrink ½) from a simplex of `step` around
/// `x0`.
fn nelder_mead(f: &mut impl FnMut(&[f64]) -> f64, x0: &[f64], step: f64) -> Minimum {
    const MAX_EVALUATIONS: usize = 20_000;
    let n = x0.len();
    let mut simplex: Vec<Vec<f64>> = vec![x0.to_vec()];
    for i in 0..n {
        let mut v = x0.to_vec();
        v[i] += step;
        simplex.push(v);
    }
    let mut values: Vec<f64> = simplex.iter().map(|v| f(v)).collect();
    let mut evaluations = n + 1;
    let mut converged = false;
    let point = |c: &[f64], toward: &[f64], t: f64| -> Vec<f64> {
        c.iter().zip(toward).map(|(c, w)| c + t * (w - c)).collect()
    };
    while evaluations < MAX_EVALUATIONS {
        let mut order: Vec<usize> = (0..=n).collect();
        order.sort_by(|&i, &j| values[i].total_cmp(&values[j]));
        simplex = order.iter().map(|&i| simplex[i].clone()).collect();
        values = order.iter().map(|&i| values[i]).collect();
        let (best, worst) = (values[0], values[n]);
        let width = simplex[1..]
            .iter()
            .flat_map(|v| v.iter().zip(&simplex[0]).map(|(a, b)| (a - b).abs()))
            .fold(0.0, f64::max);
        if worst - best <= 1e-13 * (1.0 + best.abs()) && width <= 1e-10 {
            converged = true;
            break;
        }
        let centroid: Vec<f64> = (0..n)
            .map(|k| simplex[..n].iter().map(|v| v[k]).sum::<f64>() / n as f64)
            .collect();
        // Reflection through the centroid of all but the worst point.
        let reflected = point(&centroid, &simplex[n], -1.0);
        let fr = f(&reflected);
        evaluations += 1;
        if fr < values[0] {
            let expanded = point(&centroid, &simplex[n], -2.0);
            let fe = f(&expanded);
            evaluations += 1;
            if fe < fr {
                simplex[n] = expanded;
                values[n] = fe;
            } else {
                simplex[n] = reflected;
                values[n] = fr;
            }
            continue;
        }
        if fr < values[n - 1] {
            simplex[n] = reflected;
            values[n] = fr;
            continue;
        }
        // Contraction: outside when the reflection beat the worst point.
        let (candidate, fc) = if fr < values[n] {
            let c = point(&centroid, &simplex[n], -0.5);
            let fc = f(&c);
            (c, fc)
        } else {
            let c = point(&centroid, &simplex[n], 0.5);
            let fc = f(&c);
            (c, fc)
        };
        evaluations += 1;
        if fc < values[n].min(fr) {
            simplex[n] = candidate;
            values[n] = fc;
            continue;
        }
        // Shrink towards the best point.
        for i in 1..=n {
            simplex[i] = point(&simplex[0], &simplex[i], 0.5);
            values[i] = f(&simplex[i]);
        }
        evaluations += n;
    }
    let best = (0..=n)
        .min_by(|&i, &j| values[i].total_cmp(&values[j]))
        .unwrap_or(0);
    Minimum {
        x: simplex[best].clone(),
        f: values[best],
        evaluations,
        converged,
        at_bound: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The two cohorts of Fader & Hardie (2007), Table 1 (survivors of
    /// 1,000 customers over seven years).
    const REGULAR: [u64; 8] = [1000, 631, 468, 382, 326, 289, 262, 241];
    const HIGH_END: [u64; 8] = [1000, 869, 743, 653, 593, 551, 517, 491];

    fn round3(v: f64) -> f64 {
        (v * 1000.0).round() / 1000.0
    }

    #[test]
    fn reproduces_the_papers_estimates_to_three_decimals() {
        let regular = fit(&REGULAR).unwrap();
        assert_eq!(round3(regular.params.alpha), 0.704, "{regular:?}");
        assert_eq!(round3(regular.params.beta), 1.182, "{regular:?}");
        let high_end = fit(&HIGH_END).unwrap();
        assert_eq!(round3(high_end.params.alpha), 0.668, "{high_end:?}");
        assert_eq!(round3(high_end.params.beta), 3.806, "{high_end:?}");
    }

    #[test]
    fn the_fit_is_a_maximum_of_the_stated_likelihood() {
        let fitted = fit(&REGULAR).unwrap();
        let p = fitted.params;
        // Every nearby point is worse.
        for (da, db) in [(1e-4, 0.0), (-1e-4, 0.0), (0.0, 1e-4), (0.0, -1e-4)] {
            let q = SbgParams::new(p.alpha + da, p.beta + db).unwrap();
            assert!(q.log_likelihood(&REGULAR) < fitted.log_likelihood);
        }
        // The same likelihood written as the brief states it: P by its
        // recursion, S by subtraction.
        let (a, b) = (p.alpha, p.beta);
        let mut prob = a / (a + b);
        let mut s = 1.0 - prob;
        let mut ll = (REGULAR[0] - REGULAR[1]) as f64 * prob.ln();
        for t in 2..REGULAR.len() {
            prob *= (b + t as f64 - 2.0) / (a + b + t as f64 - 1.0);
            s -= prob;
            ll += (REGULAR[t - 1] - REGULAR[t]) as f64 * prob.ln();
        }
        ll += REGULAR[7] as f64 * s.ln();
        assert!((ll - fitted.log_likelihood).abs() < 1e-9, "{ll}");
    }

    #[test]
    fn survival_retention_and_churn_probabilities_agree() {
        let p = SbgParams::new(0.704, 1.182).unwrap();
        let curve = p.survival_curve(12);
        assert_eq!(curve[0], 1.0);
        for t in 1..=12u32 {
            let s = p.survival(t);
            assert!((curve[t as usize] - s).abs() < 1e-15);
            assert!((p.survival(t - 1) - p.churn_probability(t) - s).abs() < 1e-12);
            assert!((s / p.survival(t - 1) - p.retention_rate(t)).abs() < 1e-12);
            // Retention rises with tenure: the likeliest churners go first.
            assert!(p.retention_rate(t + 1) > p.retention_rate(t));
        }
        // Total churn probability sums towards 1.
        let total: f64 = (1..=5000).map(|t| p.churn_probability(t)).sum();
        assert!((total + p.survival(5000) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn derl_matches_its_sum_and_the_geometric_limit() {
        let p = SbgParams::new(0.668, 3.806).unwrap();
        let d: f64 = 0.1;
        // The sum written out from S.
        for renewals in [0u32, 1, 4] {
            let n = renewals + 1;
            let direct: f64 = (n..n + 2000)
                .map(|t| p.survival(t) / p.survival(n - 1) / (1.0 + d).powi((t - n) as i32))
                .sum();
            let derl = p
                .discounted_expected_residual_lifetime(renewals, d, 10_000)
                .unwrap();
            assert!((derl - direct).abs() < 1e-9, "{derl} {direct}");
        }
        // Longer tenure, more residual lifetime (the survivors are loyal).
        let at = |r| {
            p.discounted_expected_residual_lifetime(r, d, 10_000)
                .unwrap()
        };
        assert!(at(5) > at(1) && at(1) > at(0));
        // Homogeneous customers (α, β → ∞ at fixed θ): a geometric series,
        // Σ_k (1 − θ)^{k+1} / (1 + d)^k = (1 − θ) / (1 − (1 − θ) / (1 + d)).
        let theta = 0.2;
        let g = SbgParams::new(theta * 1e9, (1.0 - theta) * 1e9).unwrap();
        let derl = g
            .discounted_expected_residual_lifetime(3, d, 10_000)
            .unwrap();
        let exact = (1.0 - theta) / (1.0 - (1.0 - theta) / (1.0 + d));
        assert!((derl - exact).abs() < 1e-6, "{derl} {exact}");
        // Undiscounted and truncated: the expected periods within the horizon.
        let within = p.discounted_expected_residual_lifetime(0, 0.0, 3).unwrap();
        let expect: f64 = (1..=3).map(|t| p.survival(t)).sum();
        assert!((within - expect).abs() < 1e-12);
        assert!(matches!(
            p.discounted_expected_residual_lifetime(0, -1.0, 3),
            Err(SbgError::BadParameter {
                name: "discount_rate",
                ..
            })
        ));
    }

    #[test]
    fn bad_cohorts_are_refused_with_the_reason() {
        assert_eq!(fit(&[]), Err(SbgError::TooShort { counts: 0 }));
        assert_eq!(fit(&[100]), Err(SbgError::TooShort { counts: 1 }));
        assert_eq!(fit(&[0, 0]), Err(SbgError::EmptyCohort));
        assert_eq!(
            fit(&[100, 80, 90]),
            Err(SbgError::Increasing {
                period: 2,
                previous: 80,
                count: 90
            })
        );
        assert!(matches!(
            fit(&[100, 100, 100]),
            Err(SbgError::Degenerate { .. })
        ));
        assert!(matches!(
            fit(&[100, 0, 0]),
            Err(SbgError::Degenerate { .. })
        ));
        assert!(matches!(
            SbgParams::new(f64::NAN, 1.0),
            Err(SbgError::BadParameter { name: "alpha", .. })
        ));
        assert!(matches!(
            SbgParams::new(1.0, 0.0),
            Err(SbgError::BadParameter { name: "beta", .. })
        ));
        let message = fit(&[100, 80, 90]).unwrap_err().to_string();
        assert!(message.contains("period 2"), "{message}");
    }

    #[test]
    fn the_minimizer_finds_a_rosenbrock_valley_floor() {
        let rosen = |x: &[f64]| (1.0 - x[0]).powi(2) + 100.0 * (x[1] - x[0] * x[0]).powi(2);
        let m = minimize(rosen, &[-1.2, 1.0], &[-10.0, 10.0]);
        assert!(m.converged && !m.at_bound, "{m:?}");
        assert!(
            (m.x[0] - 1.0).abs() < 1e-6 && (m.x[1] - 1.0).abs() < 1e-6,
            "{m:?}"
        );
        // A minimum beyond the box ends at its edge, flagged.
        let m = minimize(|x: &[f64]| x[0], &[0.0], &[-3.0, 3.0]);
        assert!(m.at_bound && (m.x[0] + 3.0).abs() < 1e-3, "{m:?}");
    }
}
