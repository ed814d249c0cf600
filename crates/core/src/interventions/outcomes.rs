//! Did the interventions save anyone? Churn of treated customers against the
//! hold-out control group, overall and per playbook, with 95% intervals.
//!
//! The unit is the customer: each customer counts once overall (their first
//! record) and once per playbook (their first record of it). Control
//! assignment hashes the customer id, so a customer stays in one arm. A
//! record's outcome is `churned` when the customer churned within
//! `outcome_window_days` after it was created, `retained` when that window is
//! over without churn, and pending otherwise.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::{Arm, Intervention};

/// z for a two-sided 95% interval.
pub(super) const Z95: f64 = 1.959_963_984_540_054;

/// Customers and churners in one arm.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ArmCounts {
    /// Customers with a known outcome.
    pub customers: usize,
    /// Of those, churned within the window.
    pub churned: usize,
}

impl ArmCounts {
    /// Churned / customers (0 when empty).
    pub fn churn_rate(&self) -> f64 {
        if self.customers == 0 {
            0.0
        } else {
            self.churned as f64 / self.customers as f64
        }
    }
}

/// Treated against control.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SaveRate {
    /// Treated customers.
    pub treated: ArmCounts,
    /// Control customers.
    pub control: ArmCounts,
    /// Share of treated (warned) customers retained: the warning-customer
    /// conversion rate.
    pub treated_retention: f64,
    /// Share of control customers retained.
    pub control_retention: f64,
    /// Control churn rate − treated churn rate: churners saved per treated customer.
    pub absolute: f64,
    /// 95% interval of `absolute` (Newcombe's hybrid score interval), `[low, high]`.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<f64>, min_items = 2, max_items = 2))]
    pub absolute_ci: (f64, f64),
    /// 1 − treated rate / control rate: share of would-be churners saved.
    pub relative: Option<f64>,
    /// 95% interval of `relative` (Katz log interval of the risk ratio), `[low, high]`.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<f64>>, min_items = 2, max_items = 2))]
    pub relative_ci: Option<(f64, f64)>,
}

/// One playbook's save rate.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlaybookOutcome {
    /// Playbook name.
    pub playbook: String,
    /// Its save rate.
    pub save_rate: Option<SaveRate>,
    /// Customers whose window is not over yet.
    pub pending: usize,
}

/// One owner's save rate: their treated customers against the control
/// customers the policy would have given them.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OwnerOutcome {
    /// The owner: an account manager id or a team queue.
    pub owner: String,
    /// Their save rate.
    pub save_rate: Option<SaveRate>,
    /// Customers whose window is not over yet.
    pub pending: usize,
}

/// The whole analysis.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutcomeReport {
    /// All playbooks together.
    pub overall: Option<SaveRate>,
    /// Per playbook, by name.
    pub playbooks: Vec<PlaybookOutcome>,
    /// Per owner, by name. Control records carry the owner the customer
    /// would have had, so each owner is compared with their own control.
    pub owners: Vec<OwnerOutcome>,
    /// Customers whose window is not over yet.
    pub pending: usize,
    /// Outcome per record id: `Some(true)` churned, `Some(false)` retained, `None` pending.
    pub record_outcomes: Vec<(i64, Option<bool>)>,
}

/// Wilson score interval of `k` successes in `n` at 95%.
pub fn wilson(k: usize, n: usize) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let (k, n) = (k as f64, n as f64);
    let p = k / n;
    let z2 = Z95 * Z95;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = Z95 * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / (1.0 + z2 / n);
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// The save rate of `treated` against `control`; `None` when an arm is empty.
pub fn save_rate(treated: ArmCounts, control: ArmCounts) -> Option<SaveRate> {
    if treated.customers == 0 || control.customers == 0 {
        return None;
    }
    let (pc, pt) = (control.churn_rate(), treated.churn_rate());
    let (lc, uc) = wilson(control.churned, control.customers);
    let (lt, ut) = wilson(treated.churned, treated.customers);
    let d = pc - pt;
    let lower = d - ((pc - lc).powi(2) + (ut - pt).powi(2)).sqrt();
    let upper = d + ((uc - pc).powi(2) + (pt - lt).powi(2)).sqrt();
    let (relative, relative_ci) = if control.churned == 0 {
        (None, None)
    } else {
        // Haldane's correction keeps the log finite when no treated customer churned.
        let (a, n1, c, n2) = if treated.churned == 0 {
            (
                0.5,
                treated.customers as f64 + 1.0,
                control.churned as f64 + 0.5,
                control.customers as f64 + 1.0,
            )
        } else {
            (
                treated.churned as f64,
                treated.customers as f64,
                control.churned as f64,
                control.customers as f64,
            )
        };
        // The estimate comes from the same (corrected) counts as its
        // interval, so the interval always contains it.
        let log_rr = ((a / n1) / (c / n2)).ln();
        let se = (1.0 / a - 1.0 / n1 + 1.0 / c - 1.0 / n2).max(0.0).sqrt();
        let (lo, hi) = ((log_rr - Z95 * se).exp(), (log_rr + Z95 * se).exp());
        (Some(1.0 - log_rr.exp()), Some((1.0 - hi, 1.0 - lo)))
    };
    Some(SaveRate {
        treated,
        control,
        treated_retention: 1.0 - pt,
        control_retention: 1.0 - pc,
        absolute: d,
        absolute_ci: (lower, upper),
        relative,
        relative_ci,
    })
}

/// Outcomes of intervention records. `churned_on` maps customer ids to the
/// day they churned (days since 1970-01-01); `observed_until` is the last day
/// the churn data covers.
pub fn outcomes(
    records: &[Intervention],
    churned_on: &HashMap<String, i32>,
    observed_until: i32,
    window_days: u32,
) -> OutcomeReport {
    let window = i64::from(window_days);
    let outcome = |r: &Intervention| -> Option<bool> {
        let start = r.created_at.div_euclid(86_400);
        let end = start + window;
        match churned_on.get(&r.customer_id) {
            Some(&d) if i64::from(d) > start && i64::from(d) <= end => Some(true),
            Some(&d) if i64::from(d) <= start => None, // gone before: not a valid unit
            _ if end <= i64::from(observed_until) => Some(false),
            _ => None,
        }
    };
    let per_record: HashMap<i64, Option<bool>> =
        records.iter().map(|r| (r.id, outcome(r))).collect();
    summarise(records, &per_record)
}

/// Save rates from each record's known outcome (`Some(true)` churned,
/// `Some(false)` retained, absent or `None` pending), counting each customer
/// once overall, once per playbook and once per owner (their first record).
pub fn summarise(records: &[Intervention], outcome: &HashMap<i64, Option<bool>>) -> OutcomeReport {
    let mut sorted: Vec<&Intervention> = records.iter().collect();
    sorted.sort_by_key(|r| (r.created_at, r.id));
    let record_outcomes: Vec<(i64, Option<bool>)> = sorted
        .iter()
        .map(|r| (r.id, outcome.get(&r.id).copied().flatten()))
        .collect();
    let by_record: HashMap<i64, Option<bool>> = record_outcomes.iter().copied().collect();

    let tally = |units: &[&Intervention]| -> (ArmCounts, ArmCounts, usize) {
        let (mut t, mut c, mut pending) = (ArmCounts::default(), ArmCounts::default(), 0);
        for r in units {
            match by_record[&r.id] {
                None => pending += 1,
                Some(churned) => {
                    let arm = match r.arm {
                        Arm::Treated => &mut t,
                        Arm::Control => &mut c,
                    };
                    arm.customers += 1;
                    arm.churned += usize::from(churned);
                }
            }
        }
        (t, c, pending)
    };
    let mut first_overall: HashMap<&str, &Intervention> = HashMap::new();
    let mut first_per_playbook: BTreeMap<&str, HashMap<&str, &Intervention>> = BTreeMap::new();
    let mut first_per_owner: BTreeMap<&str, HashMap<&str, &Intervention>> = BTreeMap::new();
    for r in &sorted {
        first_overall.entry(r.customer_id.as_str()).or_insert(r);
        first_per_playbook
            .entry(r.playbook.as_str())
            .or_default()
            .entry(r.customer_id.as_str())
            .or_insert(r);
        first_per_owner
            .entry(r.owner.as_str())
            .or_default()
            .entry(r.customer_id.as_str())
            .or_insert(r);
    }
    let overall_units: Vec<&Intervention> = first_overall.into_values().collect();
    let (t, c, pending) = tally(&overall_units);
    let playbooks = first_per_playbook
        .into_iter()
        .map(|(name, units)| {
            let units: Vec<&Intervention> = units.into_values().collect();
            let (t, c, pending) = tally(&units);
            PlaybookOutcome {
                playbook: name.to_string(),
                save_rate: save_rate(t, c),
                pending,
            }
        })
        .collect();
    let owners = first_per_owner
        .into_iter()
        .map(|(name, units)| {
            let units: Vec<&Intervention> = units.into_values().collect();
            let (t, c, pending) = tally(&units);
            OwnerOutcome {
                owner: name.to_string(),
                save_rate: save_rate(t, c),
                pending,
            }
        })
        .collect();
    OutcomeReport {
        overall: save_rate(t, c),
        playbooks,
        owners,
        pending,
        record_outcomes,
    }
}
