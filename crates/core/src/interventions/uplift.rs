//! Uplift: how much a playbook lowers each customer's churn probability,
//! learnt from the hold-out experiment's treated and control outcomes, and
//! how to judge such a model on held-out outcomes (the Qini curve).
//!
//! The model is a two-model per playbook: a churn model of untreated
//! customers, and the treated customers' churn as a learnt shift of its
//! logit ([`LogitShift`]); the predicted uplift is
//! `P(churn | control, x) − P(churn | treated, x)`.
//! Both arms come from the same population (the customers the policy would
//! have treated, see `experiment.rs`), so the difference estimates the
//! effect of treating a customer like `x`, not a difference of populations.
//!
//! **The Qini curve.** Customers are ranked by predicted uplift, highest
//! first. Among the top `k`, with `n_t(k)`, `n_c(k)` treated and control
//! customers of whom `r_t(k)`, `r_c(k)` churned, the churners saved among the
//! treated are `Q(k) = r_c(k) × n_t(k) / n_c(k) − r_t(k)`. The curve plots
//! `Q(k) / N_t` against `k / N`; random targeting is the straight line to its
//! end. The **Qini coefficient** is the area between the model's curve and
//! that line: positive when the ranking finds the customers the playbook
//! moves, zero for a random ranking. The **AUUC** is the area under the
//! uplift curve `(r_c(k)/n_c(k) − r_t(k)/n_t(k)) × k / N`, beside its random
//! baseline (half the overall uplift).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::models::{Batch, FittedModel, ModelError, Preprocessor};

/// One playbook's two models.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TwoModel {
    /// Churn without the playbook.
    pub control: FittedModel,
    /// Churn with it, as a shift of the control model's logit.
    pub treated: LogitShift,
}

/// The treated arm's churn as a shift of the control logit:
/// `logit P(churn | treated, x) = logit P(churn | control, x) + b + w · z(x)`
/// with `z` the standardised inputs. Learning the shift, rather than a
/// second churn model from scratch, spends the treated arm's outcomes on
/// the one thing the control model cannot know, how the playbook changes
/// the odds and for whom; two separate models would each carry their own
/// errors into the difference.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogitShift {
    /// Standardises the inputs, learnt on the treated rows.
    pub preprocessor: Preprocessor,
    /// `b`.
    pub intercept: f64,
    /// `w`, one per preprocessed column.
    pub weights: Vec<f64>,
}

/// Logit of a probability kept off 0 and 1.
fn logit(p: f64) -> f64 {
    let p = p.clamp(1e-6, 1.0 - 1e-6);
    (p / (1.0 - p)).ln()
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

impl LogitShift {
    /// Fits the shift by penalised Newton steps on treated outcomes `y`, with
    /// the control model's probabilities `p_control` as the offset; `l2`
    /// penalises `w`, not `b`.
    pub fn fit(
        preprocessor: Preprocessor,
        z: &ndarray::Array2<f64>,
        y: &[u8],
        p_control: &[f64],
        l2: f64,
    ) -> Result<LogitShift, ModelError> {
        let (n, width) = z.dim();
        let k = width + 1;
        let offset: Vec<f64> = p_control.iter().map(|&p| logit(p)).collect();
        let mut beta = vec![0.0; k];
        for _ in 0..50 {
            let mut grad = vec![0.0; k];
            let mut hess = vec![0.0; k * k];
            let mut row = vec![0.0; k];
            for i in 0..n {
                row[0] = 1.0;
                for j in 0..width {
                    row[j + 1] = z[[i, j]];
                }
                let eta = offset[i] + row.iter().zip(&beta).map(|(a, b)| a * b).sum::<f64>();
                let mu = sigmoid(eta);
                let w = (mu * (1.0 - mu)).max(1e-12);
                let r = f64::from(y[i]) - mu;
                for a in 0..k {
                    grad[a] += row[a] * r;
                    for b in 0..=a {
                        hess[a * k + b] += w * row[a] * row[b];
                    }
                }
            }
            for a in 1..k {
                grad[a] -= l2 * beta[a];
                hess[a * k + a] += l2;
            }
            for a in 0..k {
                for b in a + 1..k {
                    hess[a * k + b] = hess[b * k + a];
                }
            }
            // A tiny ridge on the intercept keeps a one-class arm solvable.
            hess[0] += 1e-9;
            let step = crate::models::logistic::newton::cholesky_solve(&hess, &grad, k)
                .ok_or_else(|| ModelError::Fit {
                    family: crate::models::Family::Logistic,
                    message: "the uplift shift's Hessian is not positive definite".into(),
                })?;
            for (b, d) in beta.iter_mut().zip(&step) {
                *b += d;
            }
            if step.iter().map(|d| d.abs()).fold(0.0, f64::max) < 1e-8 {
                break;
            }
        }
        Ok(LogitShift {
            preprocessor,
            intercept: beta[0],
            weights: beta[1..].to_vec(),
        })
    }

    /// `P(churn | treated)` per row, from the control probabilities.
    pub fn apply(&self, batch: &Batch, p_control: &[f64]) -> Result<Vec<f64>, ModelError> {
        let (z, _) = self.preprocessor.transform(batch)?;
        Ok(p_control
            .iter()
            .enumerate()
            .map(|(i, &p)| {
                let shift: f64 = self.intercept
                    + z.row(i)
                        .iter()
                        .zip(&self.weights)
                        .map(|(a, b)| a * b)
                        .sum::<f64>();
                sigmoid(logit(p) + shift)
            })
            .collect())
    }

    /// Checks that the weights fit the preprocessor.
    pub fn validate(&self) -> Result<(), ModelError> {
        if self.weights.len() != self.preprocessor.width()
            || !self.intercept.is_finite()
            || self.weights.iter().any(|w| !w.is_finite())
        {
            return Err(ModelError::BadParam {
                name: "uplift.treated".into(),
                message: format!(
                    "{} weights for {} inputs, or a weight that is not finite",
                    self.weights.len(),
                    self.preprocessor.width()
                ),
            });
        }
        Ok(())
    }
}

impl TwoModel {
    /// Predicted uplift per row: `P(churn | control) − P(churn | treated)`.
    pub fn uplift(&self, batch: &Batch) -> Result<Vec<f64>, ModelError> {
        let control = self.control.predict(batch)?;
        let treated = self.treated.apply(batch, &control)?;
        Ok(control.iter().zip(&treated).map(|(c, t)| c - t).collect())
    }
}

/// The uplift models of every playbook with enough outcomes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UpliftModel {
    /// Per playbook name.
    pub playbooks: BTreeMap<String, TwoModel>,
}

impl UpliftModel {
    /// Predicted uplift of `playbook` for every row; `None` when the model
    /// has no part for that playbook.
    pub fn predict(&self, playbook: &str, batch: &Batch) -> Result<Option<Vec<f64>>, ModelError> {
        self.playbooks
            .get(playbook)
            .map(|m| m.uplift(batch))
            .transpose()
    }

    /// Checks every part.
    pub fn validate(&self) -> Result<(), ModelError> {
        for m in self.playbooks.values() {
            m.treated.validate()?;
            m.control.validate()?;
        }
        Ok(())
    }
}

/// One point of a Qini curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct QiniPoint {
    /// Share of the customers targeted, highest predicted uplift first.
    pub share: f64,
    /// Churners saved among the treated in that share, per treated customer
    /// overall.
    pub saved: f64,
}

/// A ranking judged on held-out outcomes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QiniReport {
    /// Treated customers.
    pub treated: usize,
    /// Control customers.
    pub control: usize,
    /// Area between the Qini curve and random targeting (positive: better
    /// than random).
    pub qini_coefficient: f64,
    /// 90% bootstrap interval of the coefficient: the 5th and 95th
    /// percentiles over [`QINI_RESAMPLES`] resamples of the customers,
    /// drawn with replacement within each arm (so each resample keeps the
    /// arms' sizes), with a fixed seed. Reports saved before it existed
    /// read `[NaN, NaN]`: unknown.
    #[serde(default = "unknown_interval")]
    pub qini_interval: [f64; 2],
    /// Area under the uplift curve.
    pub auuc: f64,
    /// The AUUC of random targeting (half the overall uplift).
    pub auuc_random: f64,
    /// Control churn rate − treated churn rate over everyone.
    pub overall_uplift: f64,
    /// The curve at every tenth.
    pub curve: Vec<QiniPoint>,
}

/// Resamples behind [`QiniReport::qini_interval`].
pub const QINI_RESAMPLES: usize = 200;

fn unknown_interval() -> [f64; 2] {
    [f64::NAN, f64::NAN]
}

/// The Qini curve, coefficient (with its bootstrap interval) and AUUC of
/// ranking by `uplift` (higher first) on customers with known arms
/// (`treated`) and outcomes (`churned`). `None` without both arms.
pub fn qini(uplift: &[f64], treated: &[bool], churned: &[bool]) -> Option<QiniReport> {
    let mut report = qini_point(uplift, treated, churned)?;
    report.qini_interval = qini_interval(uplift, treated, churned);
    Some(report)
}

/// The bootstrap interval of the Qini coefficient (see
/// [`QiniReport::qini_interval`]). Why a bootstrap: the coefficient is an
/// area under a ranking's curve, with no closed-form variance; resampling
/// customers within each arm keeps the experiment's design.
fn qini_interval(uplift: &[f64], treated: &[bool], churned: &[bool]) -> [f64; 2] {
    use rand::{Rng, SeedableRng};
    let arm_rows =
        |arm: bool| -> Vec<usize> { (0..uplift.len()).filter(|&i| treated[i] == arm).collect() };
    let (t_rows, c_rows) = (arm_rows(true), arm_rows(false));
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x9141);
    let mut coefficients = Vec::with_capacity(QINI_RESAMPLES);
    let (mut u, mut t, mut c) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..QINI_RESAMPLES {
        u.clear();
        t.clear();
        c.clear();
        for rows in [&t_rows, &c_rows] {
            for _ in 0..rows.len() {
                let i = rows[rng.gen_range(0..rows.len())];
                u.push(uplift[i]);
                t.push(treated[i]);
                c.push(churned[i]);
            }
        }
        if let Some(r) = qini_point(&u, &t, &c) {
            coefficients.push(r.qini_coefficient);
        }
    }
    if coefficients.is_empty() {
        return unknown_interval();
    }
    coefficients.sort_by(f64::total_cmp);
    let at = |q: f64| coefficients[((coefficients.len() - 1) as f64 * q).round() as usize];
    [at(0.05), at(0.95)]
}

/// [`qini`] without the interval.
fn qini_point(uplift: &[f64], treated: &[bool], churned: &[bool]) -> Option<QiniReport> {
    let n = uplift.len();
    assert_eq!(n, treated.len(), "one arm per customer");
    assert_eq!(n, churned.len(), "one outcome per customer");
    let n_t_all = treated.iter().filter(|&&t| t).count();
    let n_c_all = n - n_t_all;
    if n_t_all == 0 || n_c_all == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| uplift[b].total_cmp(&uplift[a]).then(a.cmp(&b)));
    let (mut nt, mut nc, mut rt, mut rc) = (0usize, 0usize, 0usize, 0usize);
    // (share, Qini value per treated customer, uplift-curve value)
    let mut points: Vec<(f64, f64, f64)> = Vec::with_capacity(n + 1);
    points.push((0.0, 0.0, 0.0));
    for (k, &i) in order.iter().enumerate() {
        if treated[i] {
            nt += 1;
            rt += usize::from(churned[i]);
        } else {
            nc += 1;
            rc += usize::from(churned[i]);
        }
        // Ties in the prediction are one step: the curve moves only where
        // the ranking can tell customers apart.
        let last_of_tie = order.get(k + 1).is_none_or(|&j| uplift[j] != uplift[i]);
        if !last_of_tie {
            continue;
        }
        let share = (k + 1) as f64 / n as f64;
        let (q, u) = if nc == 0 || nt == 0 {
            (0.0, 0.0)
        } else {
            let q = rc as f64 * nt as f64 / nc as f64 - rt as f64;
            let u = (rc as f64 / nc as f64 - rt as f64 / nt as f64) * share;
            (q, u)
        };
        points.push((share, q / n_t_all as f64, u));
    }
    let end = points.last().expect("at least the origin").1;
    let overall = points.last().expect("at least the origin").2;
    let mut qini_area = 0.0;
    let mut auuc = 0.0;
    for w in points.windows(2) {
        let (x0, q0, u0) = w[0];
        let (x1, q1, u1) = w[1];
        let dx = x1 - x0;
        // Minus the random line's value at each end.
        qini_area += dx * ((q0 - end * x0) + (q1 - end * x1)) / 2.0;
        auuc += dx * (u0 + u1) / 2.0;
    }
    let curve = (1..=10)
        .map(|d| {
            let share = f64::from(d) / 10.0;
            let at = points
                .iter()
                .rev()
                .find(|p| p.0 <= share + 1e-12)
                .expect("the origin is at 0");
            QiniPoint { share, saved: at.1 }
        })
        .collect();
    Some(QiniReport {
        treated: n_t_all,
        control: n_c_all,
        qini_coefficient: qini_area,
        qini_interval: unknown_interval(),
        auuc,
        auuc_random: overall / 2.0,
        overall_uplift: overall,
        curve,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Customers 0..n: even ids treated; the treatment saves every churner
    /// among the first half and none in the second.
    fn world(n: usize) -> (Vec<bool>, Vec<bool>) {
        let treated: Vec<bool> = (0..n).map(|i| i % 2 == 0).collect();
        let churned: Vec<bool> = (0..n)
            .map(|i| {
                let would_churn = i % 4 < 2;
                let saved = treated[i] && i < n / 2;
                would_churn && !saved
            })
            .collect();
        (treated, churned)
    }

    #[test]
    fn a_ranking_that_finds_the_movable_customers_beats_random() {
        let n = 400;
        let (treated, churned) = world(n);
        // The true ranking: the first half is where the effect is.
        let good: Vec<f64> = (0..n).map(|i| if i < n / 2 { 1.0 } else { 0.0 }).collect();
        let bad: Vec<f64> = good.iter().map(|g| -g).collect();
        let flat = vec![0.0; n];
        let g = qini(&good, &treated, &churned).unwrap();
        let b = qini(&bad, &treated, &churned).unwrap();
        let f = qini(&flat, &treated, &churned).unwrap();
        assert!(g.qini_coefficient > 0.05, "{g:?}");
        assert!(b.qini_coefficient < -0.05, "{b:?}");
        assert!(f.qini_coefficient.abs() < 1e-12, "ties are one step: {f:?}");
        assert!(g.auuc > g.auuc_random && b.auuc < b.auuc_random);
        // Treating everyone saves the same whatever the order.
        assert!((g.curve[9].saved - b.curve[9].saved).abs() < 1e-12);
        // Half the treated would churn in the first half, all saved: 50 of 200.
        assert!((g.curve[9].saved - 50.0 / 200.0).abs() < 1e-12);
        assert!((g.curve[4].saved - 50.0 / 200.0).abs() < 1e-12);
        assert_eq!((g.treated, g.control), (200, 200));
    }

    #[test]
    fn the_qini_interval_tells_skill_from_luck() {
        let n = 400;
        let (treated, churned) = world(n);
        let good: Vec<f64> = (0..n).map(|i| if i < n / 2 { 1.0 } else { 0.0 }).collect();
        let g = qini(&good, &treated, &churned).unwrap();
        let [lo, hi] = g.qini_interval;
        assert!(
            0.0 < lo && lo < g.qini_coefficient && g.qini_coefficient < hi,
            "{g:?}"
        );
        // A ranking that knows nothing (a hash of the id) scores near zero,
        // and its interval says it could be either side of it.
        let noise: Vec<f64> = (0..n)
            .map(|i| crate::hash::stable_unit("qini-noise", &i.to_string()))
            .collect();
        let r = qini(&noise, &treated, &churned).unwrap();
        let [lo, hi] = r.qini_interval;
        assert!(lo < 0.0 && 0.0 < hi, "{r:?}");
        // Ties everywhere: the coefficient is zero in every resample.
        let f = qini(&vec![0.0; n], &treated, &churned).unwrap();
        assert_eq!(f.qini_interval.map(f64::abs), [0.0, 0.0]);
        // Seeded: the same interval every time.
        assert_eq!(qini(&good, &treated, &churned).unwrap(), g);
        // A report saved before the interval existed reads as unknown.
        let mut old = serde_json::to_value(&g).unwrap();
        old.as_object_mut().unwrap().remove("qini_interval");
        let back: QiniReport = serde_json::from_value(old).unwrap();
        assert!(back.qini_interval.iter().all(|v| v.is_nan()));
    }

    #[test]
    fn one_arm_is_not_enough() {
        assert!(qini(&[0.1, 0.2], &[true, true], &[false, true]).is_none());
    }
}
