//! The intervention policy (`[interventions]` in `churnguard.toml`) and the
//! planner that applies it to one scoring run.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::health::{Band, Direction};

/// Result alias of the intervention layer.
pub type Result<T, E = PolicyError> = std::result::Result<T, E>;

/// An intervention setting that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("invalid setting `{key}`: {message}")]
pub struct PolicyError {
    /// The TOML key, such as `interventions.rules[2].playbook`.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl crate::error::HasKind for PolicyError {
    fn kind(&self) -> crate::error::ErrorKind {
        crate::error::ErrorKind::BadInput
    }
}

fn bad<T>(key: impl Into<String>, message: impl Into<String>) -> Result<T> {
    Err(PolicyError {
        key: key.into(),
        message: message.into(),
    })
}

/// Voluntary (the customer cancels) or involuntary (payments fail).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChurnType {
    /// The customer cancels.
    Voluntary,
    /// Payments fail and are not recovered.
    Involuntary,
}

impl ChurnType {
    /// The type's name.
    pub fn name(self) -> &'static str {
        match self {
            ChurnType::Voluntary => "voluntary",
            ChurnType::Involuntary => "involuntary",
        }
    }
}

/// A customer's CLV relative to the rest of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClvSegment {
    /// At or above the high quantile.
    High,
    /// Between the quantiles.
    Medium,
    /// Below the low quantile.
    Low,
}

impl ClvSegment {
    /// The segment's name.
    pub fn name(self) -> &'static str {
        match self {
            ClvSegment::High => "high",
            ClvSegment::Medium => "medium",
            ClvSegment::Low => "low",
        }
    }
}

/// Who works a playbook, and how much they can take per day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OwnerRole {
    /// `true`: each customer's own account manager owns it; `false`: the
    /// role's team queue does (owner = the role's name).
    #[serde(default)]
    pub personal: bool,
    /// New interventions one owner takes per day.
    pub capacity_per_day: u32,
}

/// What to do for a customer, by whom, how fast.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Playbook {
    /// Its name, referred to by rules.
    pub name: String,
    /// Channel: `phone`, `email`, `meeting`, ...
    pub channel: String,
    /// The owner role (a key of `interventions.owners`).
    pub owner: String,
    /// Hours from creation to the SLA due time.
    pub sla_hours: f64,
    /// 1 is the most urgent.
    pub priority: u32,
    /// At most one intervention per customer and playbook in this many days.
    pub cooldown_days: f64,
    /// Cost of running it once.
    pub cost: f64,
    /// The prior: the share of would-be churners it is assumed to save
    /// before outcomes are measured. The expected-value gate shrinks the
    /// measured save rate toward it (see `prior_strength`).
    pub effectiveness: f64,
    /// How many customers' outcomes the prior is worth: with `n` settled
    /// customers in the smaller arm, the effect used is `(n × measured + k ×
    /// prior) / (n + k)`; defaults to `200`.
    #[serde(default = "default_prior_strength")]
    pub prior_strength: f64,
}

fn default_prior_strength() -> f64 {
    200.0
}

/// How candidates are ranked for their owners' capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Targeting {
    /// By expected value saved: churn probability × CLV × the playbook's
    /// effect − cost (the default).
    #[default]
    RiskValue,
    /// By expected saved value from an uplift model: the predicted drop in
    /// churn probability if treated × CLV − cost.
    Uplift,
}

/// Conditions of a rule; every condition given must hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Conditions {
    /// The band is one of these.
    pub bands: Vec<Band>,
    /// `true`: the customer entered the band since the previous run (or is new to it).
    pub entered_band: Option<bool>,
    /// Health fell by at least this many points since the previous run.
    pub min_health_drop: Option<f64>,
    /// The trend's direction is this.
    pub trend: Option<Direction>,
    /// The most likely churn type is one of these.
    pub churn_types: Vec<ChurnType>,
    /// The CLV segment is one of these.
    pub clv_segments: Vec<ClvSegment>,
    /// At least this many failed payments in 90 days.
    pub min_payment_failures: Option<f64>,
    /// Churn probability at least this.
    pub min_churn_probability: Option<f64>,
}

/// One rule: when its conditions hold, the customer gets its playbook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Its name, for the record.
    pub name: String,
    /// The playbook it triggers.
    pub playbook: String,
    /// When it applies.
    #[serde(default)]
    pub when: Conditions,
}

/// `[interventions]`: the whole policy. Rules are tried in order; the first
/// that matches chooses the playbook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InterventionPolicy {
    /// Share of the customers the policy would treat that are held out as
    /// control instead; defaults to `0.10`.
    pub control_share: f64,
    /// How candidates are ranked: `risk_value` (default) or `uplift` (needs
    /// an uplift model in the registry).
    pub targeting: Targeting,
    /// Take an action only when its expected value `p × CLV × effect − cost`
    /// (or `uplift × CLV − cost`) is positive; defaults to `true`.
    pub value_gate: bool,
    /// Name of the experiment; salts the control hash, so a new name draws a
    /// new control group; defaults to `"holdout-1"`.
    pub experiment: String,
    /// An open intervention expires this many days after its SLA is due; defaults to `14`.
    pub expire_after_days: f64,
    /// Days after creation in which a churn counts against an intervention; defaults to `90`.
    pub outcome_window_days: u32,
    /// CLV at or above this quantile of the run is `high`; defaults to `0.8`.
    pub clv_high_quantile: f64,
    /// CLV below this quantile is `low`; defaults to `0.3`.
    pub clv_low_quantile: f64,
    /// Owner roles by name.
    pub owners: BTreeMap<String, OwnerRole>,
    /// Playbooks.
    pub playbooks: Vec<Playbook>,
    /// Rules, in order.
    pub rules: Vec<Rule>,
}

#[allow(clippy::too_many_arguments)] // a table of presets reads best as one call per row
fn playbook(
    name: &str,
    channel: &str,
    owner: &str,
    sla_hours: f64,
    priority: u32,
    cooldown_days: f64,
    cost: f64,
    effectiveness: f64,
) -> Playbook {
    Playbook {
        name: name.into(),
        channel: channel.into(),
        owner: owner.into(),
        sla_hours,
        priority,
        cooldown_days,
        cost,
        effectiveness,
        prior_strength: default_prior_strength(),
    }
}

impl Default for InterventionPolicy {
    fn default() -> Self {
        let owner = |personal, capacity_per_day| OwnerRole {
            personal,
            capacity_per_day,
        };
        let rule = |name: &str, playbook: &str, when: Conditions| Rule {
            name: name.into(),
            playbook: playbook.into(),
            when,
        };
        InterventionPolicy {
            control_share: 0.10,
            targeting: Targeting::RiskValue,
            value_gate: true,
            experiment: "holdout-1".into(),
            expire_after_days: 14.0,
            outcome_window_days: 90,
            clv_high_quantile: 0.8,
            clv_low_quantile: 0.3,
            owners: [
                ("account_manager".to_string(), owner(true, 8)),
                ("billing".to_string(), owner(false, 200)),
                ("executive".to_string(), owner(false, 5)),
                ("automation".to_string(), owner(false, 100_000)),
            ]
            .into_iter()
            .collect(),
            playbooks: vec![
                playbook(
                    "payment_recovery",
                    "email+phone",
                    "billing",
                    24.0,
                    1,
                    14.0,
                    10.0,
                    0.5,
                ),
                playbook(
                    "executive_escalation",
                    "meeting",
                    "executive",
                    24.0,
                    1,
                    60.0,
                    400.0,
                    0.35,
                ),
                playbook(
                    "csm_call",
                    "phone",
                    "account_manager",
                    48.0,
                    2,
                    30.0,
                    60.0,
                    0.25,
                ),
                playbook(
                    "success_plan_checkin",
                    "meeting",
                    "account_manager",
                    120.0,
                    3,
                    45.0,
                    40.0,
                    0.15,
                ),
                playbook(
                    "nurture_email",
                    "email",
                    "automation",
                    168.0,
                    4,
                    30.0,
                    1.0,
                    0.05,
                ),
            ],
            rules: vec![
                rule(
                    "payment failure",
                    "payment_recovery",
                    Conditions {
                        min_payment_failures: Some(1.0),
                        ..Default::default()
                    },
                ),
                rule(
                    "red with high CLV",
                    "executive_escalation",
                    Conditions {
                        bands: vec![Band::Red],
                        clv_segments: vec![ClvSegment::High],
                        ..Default::default()
                    },
                ),
                rule(
                    "red",
                    "csm_call",
                    Conditions {
                        bands: vec![Band::Red],
                        ..Default::default()
                    },
                ),
                rule(
                    "yellow and falling",
                    "success_plan_checkin",
                    Conditions {
                        bands: vec![Band::Yellow],
                        trend: Some(Direction::Down),
                        ..Default::default()
                    },
                ),
                rule(
                    "yellow",
                    "nurture_email",
                    Conditions {
                        bands: vec![Band::Yellow],
                        ..Default::default()
                    },
                ),
            ],
        }
    }
}

impl InterventionPolicy {
    /// Checks the policy; the error names the key. Rules must name known
    /// playbooks, playbooks known owner roles.
    pub fn check(&self) -> Result<()> {
        if !(0.0..=0.9).contains(&self.control_share) {
            return bad(
                "interventions.control_share",
                format!("must be within 0..=0.9, got {}", self.control_share),
            );
        }
        if self.experiment.trim().is_empty() {
            return bad("interventions.experiment", "must not be empty");
        }
        if !(self.expire_after_days.is_finite() && self.expire_after_days >= 0.0) {
            return bad("interventions.expire_after_days", "must be >= 0");
        }
        if self.outcome_window_days == 0 {
            return bad("interventions.outcome_window_days", "must be at least 1");
        }
        if !(0.0 < self.clv_low_quantile
            && self.clv_low_quantile < self.clv_high_quantile
            && self.clv_high_quantile < 1.0)
        {
            return bad(
                "interventions.clv_high_quantile",
                format!(
                    "need 0 < clv_low_quantile < clv_high_quantile < 1, got {} and {}",
                    self.clv_low_quantile, self.clv_high_quantile
                ),
            );
        }
        for (name, o) in &self.owners {
            if o.capacity_per_day == 0 {
                return bad(
                    format!("interventions.owners.{name}.capacity_per_day"),
                    "must be at least 1",
                );
            }
        }
        let mut seen = std::collections::HashSet::new();
        for (i, p) in self.playbooks.iter().enumerate() {
            let key = format!("interventions.playbooks[{i}]");
            if p.name.trim().is_empty() || !seen.insert(p.name.as_str()) {
                return bad(
                    format!("{key}.name"),
                    format!("{:?} is empty or used twice", p.name),
                );
            }
            if !self.owners.contains_key(&p.owner) {
                return bad(
                    format!("{key}.owner"),
                    format!(
                        "unknown owner role {:?} (known: {})",
                        p.owner,
                        self.owners.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                );
            }
            for (field, v, ok) in [
                ("sla_hours", p.sla_hours, p.sla_hours > 0.0),
                ("cooldown_days", p.cooldown_days, p.cooldown_days >= 0.0),
                ("cost", p.cost, p.cost >= 0.0),
                (
                    "effectiveness",
                    p.effectiveness,
                    (0.0..=1.0).contains(&p.effectiveness),
                ),
                ("prior_strength", p.prior_strength, p.prior_strength >= 0.0),
            ] {
                if !(v.is_finite() && ok) {
                    return bad(format!("{key}.{field}"), format!("out of range: {v}"));
                }
            }
        }
        for (i, r) in self.rules.iter().enumerate() {
            let key = format!("interventions.rules[{i}]");
            if !self.playbooks.iter().any(|p| p.name == r.playbook) {
                return bad(
                    format!("{key}.playbook"),
                    format!(
                        "unknown playbook {:?} (known: {})",
                        r.playbook,
                        self.playbooks
                            .iter()
                            .map(|p| p.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
            }
            let w = &r.when;
            for (field, v) in [
                ("min_health_drop", w.min_health_drop),
                ("min_payment_failures", w.min_payment_failures),
                ("min_churn_probability", w.min_churn_probability),
            ] {
                if v.is_some_and(|v| !v.is_finite()) {
                    return bad(format!("{key}.when.{field}"), "must be a finite number");
                }
            }
        }
        Ok(())
    }

    /// A playbook by name.
    pub fn playbook(&self, name: &str) -> Option<&Playbook> {
        self.playbooks.iter().find(|p| p.name == name)
    }

    /// The first rule whose conditions hold, if any.
    pub fn first_match(&self, c: &PolicyInput) -> Option<&Rule> {
        self.rules.iter().find(|r| matches(&r.when, c))
    }

    /// Whether a customer falls in the control group: a stable hash of the
    /// experiment name and the customer id, below `control_share`.
    pub fn is_control(&self, customer_id: &str) -> bool {
        control_hash(&self.experiment, customer_id) < self.control_share
    }
}

/// A uniform number in [0, 1) from the experiment and the customer id
/// (FNV-1a 64, then a SplitMix64 finaliser). The same inputs always give the
/// same number, on every machine and in every release.
pub fn control_hash(experiment: &str, customer_id: &str) -> f64 {
    crate::hash::stable_unit(experiment, customer_id)
}

/// What the policy sees of a scored customer.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyInput {
    /// Customer id.
    pub customer_id: String,
    /// Health index now.
    pub health: f64,
    /// Band now.
    pub band: Band,
    /// Band at the previous run, if any.
    pub previous_band: Option<Band>,
    /// Health change since the previous run.
    pub health_change: Option<f64>,
    /// Direction of that change.
    pub direction: Direction,
    /// Most likely churn type, when the model knows.
    pub churn_type: Option<ChurnType>,
    /// Calibrated churn probability.
    pub churn_probability: f64,
    /// Customer lifetime value.
    pub clv: f64,
    /// CLV segment within the run.
    pub clv_segment: ClvSegment,
    /// Failed payments in 90 days, when known.
    pub payment_failures: Option<f64>,
    /// The customer's account manager, when known.
    pub account_manager: Option<String>,
    /// Staff suppressed new interventions for the customer (an override in
    /// force): no rule matches it; its open interventions run their course.
    pub suppressed: bool,
}

fn matches(w: &Conditions, c: &PolicyInput) -> bool {
    (w.bands.is_empty() || w.bands.contains(&c.band))
        && w.entered_band.is_none_or(|want| {
            let entered = c.previous_band != Some(c.band);
            entered == want
        })
        && w.min_health_drop
            .is_none_or(|d| c.health_change.is_some_and(|ch| -ch >= d))
        && w.trend.is_none_or(|t| t == c.direction)
        && (w.churn_types.is_empty() || c.churn_type.is_some_and(|t| w.churn_types.contains(&t)))
        && (w.clv_segments.is_empty() || w.clv_segments.contains(&c.clv_segment))
        && w.min_payment_failures
            .is_none_or(|m| c.payment_failures.is_some_and(|f| f >= m))
        && w.min_churn_probability
            .is_none_or(|m| c.churn_probability >= m)
}

/// CLV cut-offs of a run: the low and high quantiles of its CLVs
/// (linear interpolation between order statistics, numpy's default).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClvThresholds {
    /// CLV below this is `low`.
    pub low: f64,
    /// CLV at or above this is `high`.
    pub high: f64,
}

impl ClvThresholds {
    /// The cut-offs of a set of CLVs; `None` with fewer than two.
    pub fn of(clvs: &[f64], policy: &InterventionPolicy) -> Option<ClvThresholds> {
        let mut sorted: Vec<f64> = clvs.iter().copied().filter(|v| v.is_finite()).collect();
        if sorted.len() < 2 {
            return None;
        }
        sorted.sort_by(f64::total_cmp);
        let q = |p: f64| -> f64 {
            let pos = (sorted.len() - 1) as f64 * p;
            let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
            sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
        };
        Some(ClvThresholds {
            low: q(policy.clv_low_quantile),
            high: q(policy.clv_high_quantile),
        })
    }

    /// The segment of one CLV.
    pub fn segment(&self, clv: f64) -> ClvSegment {
        if clv >= self.high {
            ClvSegment::High
        } else if clv < self.low {
            ClvSegment::Low
        } else {
            ClvSegment::Medium
        }
    }
}

/// CLV segments of a run, by its own quantiles (all `medium` with fewer than two).
pub fn clv_segments(clvs: &[f64], policy: &InterventionPolicy) -> Vec<ClvSegment> {
    match ClvThresholds::of(clvs, policy) {
        Some(t) => clvs.iter().map(|&v| t.segment(v)).collect(),
        None => vec![ClvSegment::Medium; clvs.len()],
    }
}

/// Arm of the hold-out experiment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arm {
    /// Received the playbook.
    Treated,
    /// Held out: recorded, not contacted.
    Control,
}

impl Arm {
    /// The arm's name.
    pub fn name(self) -> &'static str {
        match self {
            Arm::Treated => "treated",
            Arm::Control => "control",
        }
    }
}

/// Where an intervention stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Waiting for its owner.
    Open,
    /// The owner carried it out.
    Done,
    /// Closed because the customer recovered to green.
    ClosedRecovered,
    /// Not done within `expire_after_days` of its SLA.
    Expired,
    /// A control-group record: never contacted.
    Control,
}

impl Status {
    /// The status's name.
    pub fn name(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Done => "done",
            Status::ClosedRecovered => "closed_recovered",
            Status::Expired => "expired",
            Status::Control => "control",
        }
    }

    /// Whether the status still waits for work.
    pub fn is_open(self) -> bool {
        self == Status::Open
    }
}

impl std::str::FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Status, String> {
        Ok(match s {
            "open" => Status::Open,
            "done" => Status::Done,
            "closed_recovered" => Status::ClosedRecovered,
            "expired" => Status::Expired,
            "control" => Status::Control,
            other => {
                return Err(format!(
                    "unknown status {other:?} (expected open, done, closed_recovered, expired or control)"
                ))
            }
        })
    }
}

/// An intervention on record (as the store keeps it). Times are seconds
/// since 1970-01-01 UTC.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Intervention {
    /// Store id (0 before it is stored).
    pub id: i64,
    /// Customer id.
    pub customer_id: String,
    /// Playbook name.
    pub playbook: String,
    /// Rule that chose it.
    pub rule: String,
    /// Channel.
    pub channel: String,
    /// Owner role.
    pub owner_role: String,
    /// Owner: an account manager id or a team queue.
    pub owner: String,
    /// Priority (1 most urgent).
    pub priority: u32,
    /// Experiment arm.
    pub arm: Arm,
    /// Status.
    pub status: Status,
    /// Scoring run that created it.
    pub created_run: String,
    /// When it was created.
    pub created_at: i64,
    /// When its SLA is due.
    pub due_at: i64,
    /// Last run that matched it again.
    pub last_seen_at: i64,
    /// When it left `open`.
    pub closed_at: Option<i64>,
    /// Churn probability when last seen.
    pub churn_probability: f64,
    /// CLV when last seen.
    pub clv: f64,
    /// Expected value saved when the decision was made: probability × CLV
    /// × effect − cost (or uplift × CLV − cost).
    pub expected_value: f64,
    /// The effect the decision assumed: the share of would-be churners it
    /// saves (under uplift targeting, the predicted uplift / churn
    /// probability), so the gate always reads `p × CLV × effect − cost`.
    #[serde(default)]
    pub effect: f64,
    /// The playbook's cost the decision assumed.
    #[serde(default)]
    pub cost: f64,
}

/// Why a customer matched a rule but got nothing new.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// The same playbook ran for the customer within its cooldown.
    Cooldown,
    /// The owner's daily capacity was full of higher-value work.
    Capacity,
    /// The expected value of acting was not positive.
    Gated,
}

/// What the plan chose for one customer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Choice {
    /// Customer id.
    pub customer_id: String,
    /// Rule that matched.
    pub rule: String,
    /// Playbook.
    pub playbook: String,
    /// `new`, `updated`, `control`, `cooldown`, `capacity` or `gated`.
    pub action: &'static str,
    /// Owner (for new and updated).
    pub owner: Option<String>,
    /// The expected value the gate saw (probability × CLV × effect − cost,
    /// or uplift × CLV − cost); `None` for updates and cooldowns.
    pub expected_value: Option<f64>,
    /// The effect (or uplift) the gate assumed.
    pub effect: Option<f64>,
}

/// What the planner knows beyond the policy and the customers: the
/// effects measured so far, and uplift predictions under uplift targeting.
#[derive(Debug, Clone, Default)]
pub struct PlanContext {
    /// Per playbook, its save rate measured from settled outcomes.
    pub measured: HashMap<String, super::MeasuredEffect>,
    /// Per (customer, playbook), the predicted drop in churn probability if
    /// treated (uplift targeting). A pair without a prediction is valued by
    /// risk × value instead.
    pub uplift: HashMap<(String, String), f64>,
}

/// The changes one run makes to the interventions on record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// New records: treated (open) and control.
    pub created: Vec<Intervention>,
    /// Open interventions matched again, with fresh probability, CLV and value.
    pub updated: Vec<Intervention>,
    /// Open interventions closed because the customer is green now.
    pub recovered: Vec<i64>,
    /// Open interventions past their SLA plus the grace period.
    pub expired: Vec<i64>,
    /// One entry per customer a rule matched.
    pub choices: Vec<Choice>,
}

/// Applies the policy to one run. `existing` are the interventions on
/// record (any status); `now` is the run's time (seconds).
///
/// The walk (see `experiment.rs` for why): candidates that match a rule and
/// are out of cooldown are ranked by expected value saved; those whose
/// expected value is not positive are gated out; then, in rank order, a
/// candidate whose owner still has capacity today flips its stable coin:
/// control (no capacity used) or treated (one slot used). So the control
/// arm is drawn from exactly the customers the policy would have treated,
/// and the treated arm still fills the capacity.
pub fn plan(
    policy: &InterventionPolicy,
    customers: &[PolicyInput],
    existing: &[Intervention],
    run_id: &str,
    now: i64,
    context: &PlanContext,
) -> Plan {
    plan_with(
        policy,
        customers,
        existing,
        run_id,
        now,
        context,
        Design::AtTreatment,
    )
}

/// Where the control group is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Design {
    /// From the customers the policy would treat (the design in use).
    AtTreatment,
    /// From every eligible customer before capacity: the first design,
    /// biased, kept only as the negative control of the coverage test.
    BeforeCapacity,
}

/// [`plan`] with the control group drawn before capacity, the first
/// design: treated and control are then different populations and the
/// difference in their churn is not the effect. Kept only so the coverage
/// test can show it fails; never used by churnguard itself.
#[doc(hidden)]
pub fn plan_control_before_capacity(
    policy: &InterventionPolicy,
    customers: &[PolicyInput],
    existing: &[Intervention],
    run_id: &str,
    now: i64,
    context: &PlanContext,
) -> Plan {
    plan_with(
        policy,
        customers,
        existing,
        run_id,
        now,
        context,
        Design::BeforeCapacity,
    )
}

#[allow(clippy::too_many_arguments)]
fn plan_with(
    policy: &InterventionPolicy,
    customers: &[PolicyInput],
    existing: &[Intervention],
    run_id: &str,
    now: i64,
    context: &PlanContext,
    design: Design,
) -> Plan {
    const DAY: f64 = 86_400.0;
    let mut out = Plan::default();
    let by_id: HashMap<&str, &PolicyInput> = customers
        .iter()
        .map(|c| (c.customer_id.as_str(), c))
        .collect();
    // Open interventions: recovered, expired or still open.
    let mut open: HashMap<(&str, &str), &Intervention> = HashMap::new();
    let mut last_created: HashMap<(&str, &str), i64> = HashMap::new();
    let mut created_today: HashMap<&str, u32> = HashMap::new();
    let today = now.div_euclid(86_400);
    for i in existing {
        let key = (i.customer_id.as_str(), i.playbook.as_str());
        let e = last_created.entry(key).or_insert(i.created_at);
        *e = (*e).max(i.created_at);
        if i.arm == Arm::Treated && i.created_at.div_euclid(86_400) == today {
            *created_today.entry(i.owner.as_str()).or_default() += 1;
        }
        if !i.status.is_open() {
            continue;
        }
        if by_id
            .get(i.customer_id.as_str())
            .is_some_and(|c| c.band == Band::Green)
        {
            out.recovered.push(i.id);
        } else if (now - i.due_at) as f64 > policy.expire_after_days * DAY {
            out.expired.push(i.id);
        } else {
            open.insert(key, i);
        }
    }
    struct Candidate<'a> {
        input: &'a PolicyInput,
        rule: &'a Rule,
        playbook: &'a Playbook,
        owner: String,
        effect: f64,
        value: f64,
    }
    let mut candidates: Vec<Candidate<'_>> = Vec::new();
    for c in customers {
        if c.suppressed {
            continue;
        }
        let Some(rule) = policy.first_match(c) else {
            continue;
        };
        let pb = policy
            .playbook(&rule.playbook)
            .expect("checked: rules name known playbooks");
        let role = &policy.owners[&pb.owner];
        let owner = if role.personal {
            c.account_manager
                .clone()
                .unwrap_or_else(|| pb.owner.clone())
        } else {
            pb.owner.clone()
        };
        // The expected value saved: the effect is the measured save rate
        // shrunk toward the prior (risk × value targeting), or the uplift
        // model's predicted drop in churn probability (uplift targeting).
        let risk_value = || {
            let effect = super::shrunk_effect(
                pb.effectiveness,
                pb.prior_strength,
                context.measured.get(&pb.name).copied(),
            );
            (effect, c.churn_probability * c.clv * effect - pb.cost)
        };
        // A playbook the uplift model has no part for (too few outcomes
        // yet) falls back to risk × value, so its experiment goes on.
        let (effect, value) = match policy.targeting {
            Targeting::RiskValue => risk_value(),
            Targeting::Uplift => match context
                .uplift
                .get(&(c.customer_id.clone(), pb.name.clone()))
            {
                // The effect is kept relative in both modes (uplift / p),
                // so every decision reads p × CLV × effect − cost.
                Some(&uplift) => (
                    if c.churn_probability > 0.0 {
                        uplift / c.churn_probability
                    } else {
                        0.0
                    },
                    uplift * c.clv - pb.cost,
                ),
                None => risk_value(),
            },
        };
        let key = (c.customer_id.as_str(), pb.name.as_str());
        let choice = |action, owner: Option<String>| Choice {
            customer_id: c.customer_id.clone(),
            rule: rule.name.clone(),
            playbook: pb.name.clone(),
            action,
            owner,
            expected_value: Some(value),
            effect: Some(effect),
        };
        if let Some(existing) = open.get(&key) {
            let mut u = (*existing).clone();
            u.last_seen_at = now;
            u.churn_probability = c.churn_probability;
            u.clv = c.clv;
            u.expected_value = value;
            u.effect = effect;
            out.choices.push(choice("updated", Some(u.owner.clone())));
            out.updated.push(u);
            continue;
        }
        if last_created
            .get(&key)
            .is_some_and(|&t| ((now - t) as f64) < pb.cooldown_days * DAY)
        {
            out.choices.push(choice("cooldown", None));
            continue;
        }
        if policy.value_gate && value <= 0.0 {
            out.choices.push(choice("gated", None));
            continue;
        }
        candidates.push(Candidate {
            input: c,
            rule,
            playbook: pb,
            owner,
            effect,
            value,
        });
    }
    candidates.sort_by(|a, b| {
        b.value
            .total_cmp(&a.value)
            .then_with(|| a.input.customer_id.cmp(&b.input.customer_id))
    });
    let record = |cand: &Candidate<'_>, arm: Arm| Intervention {
        id: 0,
        customer_id: cand.input.customer_id.clone(),
        playbook: cand.playbook.name.clone(),
        rule: cand.rule.name.clone(),
        channel: cand.playbook.channel.clone(),
        owner_role: cand.playbook.owner.clone(),
        owner: cand.owner.clone(),
        priority: cand.playbook.priority,
        arm,
        status: match arm {
            Arm::Treated => Status::Open,
            Arm::Control => Status::Control,
        },
        created_run: run_id.to_string(),
        created_at: now,
        due_at: now + (cand.playbook.sla_hours * 3600.0).round() as i64,
        last_seen_at: now,
        closed_at: None,
        churn_probability: cand.input.churn_probability,
        clv: cand.input.clv,
        expected_value: cand.value,
        effect: cand.effect,
        cost: cand.playbook.cost,
    };
    for cand in &candidates {
        let choice = |action, owner: Option<String>| Choice {
            customer_id: cand.input.customer_id.clone(),
            rule: cand.rule.name.clone(),
            playbook: cand.playbook.name.clone(),
            action,
            owner,
            expected_value: Some(cand.value),
            effect: Some(cand.effect),
        };
        let control = policy.is_control(&cand.input.customer_id);
        if design == Design::BeforeCapacity && control {
            out.created.push(record(cand, Arm::Control));
            out.choices.push(choice("control", None));
            continue;
        }
        let capacity = policy.owners[&cand.playbook.owner].capacity_per_day;
        let used = created_today.entry(cand.owner.as_str()).or_default();
        if *used >= capacity {
            out.choices.push(choice("capacity", None));
            continue;
        }
        if control {
            // Held out where treatment would have happened: no slot used,
            // so the walk goes on until the treated arm fills capacity.
            out.created.push(record(cand, Arm::Control));
            out.choices.push(choice("control", None));
            continue;
        }
        *used += 1;
        out.created.push(record(cand, Arm::Treated));
        out.choices.push(choice("new", Some(cand.owner.clone())));
    }
    out
}
