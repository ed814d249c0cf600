//! The experiment behind every intervention: which effect the expected-value
//! gate assumes for a playbook, and how many customers an experiment needs
//! to see a given effect.
//!
//! **Why the control group is drawn where treatment would happen.** The
//! planner walks the candidates in priority order and, for each one the
//! policy would treat (eligible, out of cooldown, through the gate, with
//! its owner's capacity not yet full), flips the customer's stable coin:
//! heads it is held out as control, tails it is treated and takes a slot.
//! Control customers take no capacity, so the walk goes on until the
//! treated arm fills it. Both arms are then random draws from the same
//! population, the customers the policy would have treated, and the
//! difference in their churn is the effect of treating them. Drawing the
//! control group from every eligible customer before capacity (the first
//! design) compared the few highest-value customers that fit the day's
//! capacity with a random slice of all eligible ones, two different
//! populations; its estimate was biased (a test keeps that design as a
//! negative control and shows its intervals miss the true effect).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::outcomes::{OutcomeReport, Z95};

/// A playbook's effect as measured so far: the relative save rate (share
/// of would-be churners saved) and how many customers stand behind it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MeasuredEffect {
    /// 1 − treated churn rate / control churn rate.
    pub relative_save: f64,
    /// The smaller arm's settled customers.
    pub customers: usize,
}

/// The effect the gate uses: the measured save rate shrunk toward the
/// configured prior by its sample size, `(n × measured + k × prior) / (n +
/// k)` with `k = prior_strength` (customers the prior is worth). With no
/// measurement it is the prior; with many customers, the measurement.
pub fn shrunk_effect(prior: f64, prior_strength: f64, measured: Option<MeasuredEffect>) -> f64 {
    match measured {
        None => prior,
        Some(m) => {
            let n = m.customers as f64;
            (n * m.relative_save + prior_strength * prior) / (n + prior_strength)
        }
    }
}

/// Each playbook's measured effect from an outcome analysis: its relative
/// save rate, behind the smaller arm's settled customers. Playbooks whose
/// control arm had no churner (no relative rate) are left out, so the gate
/// keeps their prior.
pub fn measured_effects(report: &OutcomeReport) -> HashMap<String, MeasuredEffect> {
    report
        .playbooks
        .iter()
        .filter_map(|p| {
            let s = p.save_rate.as_ref()?;
            Some((
                p.playbook.clone(),
                MeasuredEffect {
                    relative_save: s.relative?,
                    customers: s.treated.customers.min(s.control.customers),
                },
            ))
        })
        .collect()
}

/// One-sided z for 80% power.
const Z80: f64 = 0.841_621_233_572_914_3;

/// How many customers each arm needs to detect, with 80% power at the 5%
/// level (two-sided), a playbook that saves `relative_effect` of the
/// would-be churners when the control group churns at `control_rate`
/// (the two-proportion formula). `None` when nothing can be detected
/// (an effect or churn rate of 0).
pub fn customers_per_arm(control_rate: f64, relative_effect: f64) -> Option<usize> {
    let p0 = control_rate.clamp(0.0, 1.0);
    let p1 = (p0 * (1.0 - relative_effect)).clamp(0.0, 1.0);
    let d = (p0 - p1).abs();
    if d <= 0.0 {
        return None;
    }
    let p_bar = (p0 + p1) / 2.0;
    let a = Z95 * (2.0 * p_bar * (1.0 - p_bar)).sqrt();
    let b = Z80 * (p0 * (1.0 - p0) + p1 * (1.0 - p1)).sqrt();
    Some(((a + b) / d).powi(2).ceil() as usize)
}

/// What an experiment needs, in customers the policy selects: the control
/// arm is `control_share` of them, so the smaller arm sets the total.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PowerPlan {
    /// The control churn rate assumed.
    pub control_rate: f64,
    /// The relative effect to detect.
    pub relative_effect: f64,
    /// Customers each arm needs.
    pub per_arm: Option<usize>,
    /// Customers the policy must select (treated and control together).
    pub selected: Option<usize>,
}

/// The power plan of detecting `relative_effect` at `control_rate` when
/// `control_share` of the selected customers are held out.
pub fn power_plan(control_rate: f64, relative_effect: f64, control_share: f64) -> PowerPlan {
    let per_arm = customers_per_arm(control_rate, relative_effect);
    let share = control_share.clamp(1e-6, 0.5);
    PowerPlan {
        control_rate,
        relative_effect,
        per_arm,
        selected: per_arm.map(|n| (n as f64 / share).ceil() as usize),
    }
}

/// Where a playbook's experiment stands: what it needs to detect the
/// playbook's assumed effect, and what it has.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlaybookPower {
    /// Playbook name.
    pub playbook: String,
    /// The plan: to detect the playbook's prior effect at the control churn
    /// rate measured so far (or `assumed_control_rate` before any).
    pub plan: PowerPlan,
    /// Whether `plan.control_rate` was measured (`false`: assumed).
    pub measured_control_rate: bool,
    /// Settled customers so far, treated and control together.
    pub settled: usize,
    /// `settled / plan.selected`, capped at 1: how far the experiment is.
    pub progress: Option<f64>,
}

/// The control churn rate assumed for a playbook before any outcome.
pub const ASSUMED_CONTROL_RATE: f64 = 0.2;

/// Each playbook's power: customers needed to detect its prior effect, and
/// customers settled so far.
pub fn playbook_power(
    report: &OutcomeReport,
    policy: &super::InterventionPolicy,
) -> Vec<PlaybookPower> {
    policy
        .playbooks
        .iter()
        .map(|pb| {
            let s = report
                .playbooks
                .iter()
                .find(|p| p.playbook == pb.name)
                .and_then(|p| p.save_rate.as_ref());
            let measured = s.filter(|s| s.control.customers > 0);
            let rate = measured.map_or(ASSUMED_CONTROL_RATE, |s| s.control.churn_rate());
            let plan = power_plan(rate, pb.effectiveness, policy.control_share);
            let settled = s.map_or(0, |s| s.treated.customers + s.control.customers);
            PlaybookPower {
                playbook: pb.name.clone(),
                plan,
                measured_control_rate: measured.is_some(),
                settled,
                progress: plan
                    .selected
                    .map(|n| (settled as f64 / n.max(1) as f64).min(1.0)),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shrinkage_moves_from_prior_to_measurement() {
        assert_eq!(shrunk_effect(0.2, 100.0, None), 0.2);
        let m = |n| {
            Some(MeasuredEffect {
                relative_save: 0.5,
                customers: n,
            })
        };
        assert!((shrunk_effect(0.2, 100.0, m(100)) - 0.35).abs() < 1e-12);
        assert!((shrunk_effect(0.2, 100.0, m(1_000_000)) - 0.5).abs() < 1e-3);
    }

    #[test]
    fn sample_size_matches_the_textbook_formula() {
        // 20% churn, a playbook saving a quarter of churners (20% → 15%):
        // the classic two-proportion answer is about 903 per arm.
        let n = customers_per_arm(0.2, 0.25).unwrap();
        assert!((895..=910).contains(&n), "{n}");
        assert_eq!(customers_per_arm(0.2, 0.0), None);
        let plan = power_plan(0.2, 0.25, 0.1);
        assert_eq!(plan.selected, Some((n as f64 / 0.1).ceil() as usize));
    }
}
