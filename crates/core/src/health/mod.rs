//! The customer health index: a 0–100 blend of five components (churn risk,
//! engagement, satisfaction, payment health, support burden), with bands,
//! per-segment weight profiles, stored contributions and a trend.
//!
//! Pure: numbers in, [`HealthIndex`] out. Every setting lives in
//! [`HealthConfig`] (`[health]` in `churnguard.toml`) and is checked once by
//! [`HealthConfig::check`], which names the offending key.
//!
//! ```
//! use churnguard_core::health::{health_index, HealthConfig, HealthInputs, Band};
//!
//! let config = HealthConfig::default();
//! let inputs = HealthInputs { churn_probability: 0.05, tenure_days: Some(400.0),
//!     sessions_per_seat_30d: Some(20.0), usage_trend: Some(0.0), features_adopted: Some(8.0),
//!     last_nps: Some(9.0), last_csat: Some(5.0), payment_failures_90d: Some(0.0),
//!     late_payments_90d: Some(0.0), tickets_90d: Some(0.0), severe_tickets_90d: Some(0.0),
//!     open_tickets: Some(0.0), mapped: Vec::new() };
//! let h = health_index(&inputs, &config);
//! assert!(h.score > 90.0 && h.band == Band::Green);
//! let sum: f64 = h.components.iter().map(|c| c.contribution).sum();
//! assert!((sum - h.score).abs() < 1e-9);
//! ```

use serde::{Deserialize, Serialize};

/// Result alias of the health layer.
pub type Result<T, E = HealthError> = std::result::Result<T, E>;

/// A health setting that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("invalid setting `{key}`: {message}")]
pub struct HealthError {
    /// The TOML key, such as `health.weights.engagement`.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl crate::error::HasKind for HealthError {
    fn kind(&self) -> crate::error::ErrorKind {
        crate::error::ErrorKind::BadInput
    }
}

fn bad<T>(key: impl Into<String>, message: impl Into<String>) -> Result<T> {
    Err(HealthError {
        key: key.into(),
        message: message.into(),
    })
}

/// The five components of the index.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Component {
    /// 100 × (1 − calibrated churn probability / `churn_probability_at_zero`).
    ChurnRisk,
    /// Usage level per seat, usage trend and feature adoption.
    Engagement,
    /// Latest NPS and CSAT answers.
    Satisfaction,
    /// Failed and late payments.
    Payment,
    /// Tickets, severe tickets and open tickets.
    Support,
}

impl Component {
    /// Every component, in display order.
    pub const ALL: [Component; 5] = [
        Component::ChurnRisk,
        Component::Engagement,
        Component::Satisfaction,
        Component::Payment,
        Component::Support,
    ];

    /// The component's name in configs and outputs.
    pub fn name(self) -> &'static str {
        match self {
            Component::ChurnRisk => "churn_risk",
            Component::Engagement => "engagement",
            Component::Satisfaction => "satisfaction",
            Component::Payment => "payment",
            Component::Support => "support",
        }
    }
}

impl std::fmt::Display for Component {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Colour bands of the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Band {
    /// At risk: below the yellow threshold.
    Red,
    /// Watch: between the thresholds.
    Yellow,
    /// Healthy: at or above the green threshold.
    Green,
}

impl Band {
    /// The band's name.
    pub fn name(self) -> &'static str {
        match self {
            Band::Red => "red",
            Band::Yellow => "yellow",
            Band::Green => "green",
        }
    }
}

impl std::fmt::Display for Band {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Band {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Band, String> {
        match s {
            "red" => Ok(Band::Red),
            "yellow" => Ok(Band::Yellow),
            "green" => Ok(Band::Green),
            other => Err(format!(
                "unknown band {other:?} (expected red, yellow or green)"
            )),
        }
    }
}

/// Weights of the components; normalised to sum to 1 when used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Weights {
    /// Churn risk; defaults to `0.40`.
    pub churn_risk: f64,
    /// Engagement; defaults to `0.20`.
    pub engagement: f64,
    /// Satisfaction; defaults to `0.15`.
    pub satisfaction: f64,
    /// Payment health; defaults to `0.15`.
    pub payment: f64,
    /// Support burden; defaults to `0.10`.
    pub support: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            churn_risk: 0.40,
            engagement: 0.20,
            satisfaction: 0.15,
            payment: 0.15,
            support: 0.10,
        }
    }
}

impl Weights {
    /// The raw weight of a component.
    pub fn get(&self, c: Component) -> f64 {
        match c {
            Component::ChurnRisk => self.churn_risk,
            Component::Engagement => self.engagement,
            Component::Satisfaction => self.satisfaction,
            Component::Payment => self.payment,
            Component::Support => self.support,
        }
    }

    /// The weights scaled to sum to 1, in [`Component::ALL`] order.
    pub fn normalised(&self) -> [f64; 5] {
        let raw = Component::ALL.map(|c| self.get(c));
        let total: f64 = raw.iter().sum();
        raw.map(|w| w / total)
    }

    fn check(&self, key: &str) -> Result<()> {
        for c in Component::ALL {
            let w = self.get(c);
            if !(w.is_finite() && w >= 0.0) {
                return bad(
                    format!("{key}.{}", c.name()),
                    format!("must be a finite number >= 0, got {w}"),
                );
            }
        }
        if Component::ALL.iter().map(|c| self.get(*c)).sum::<f64>() <= 0.0 {
            return bad(key, "at least one weight must be positive");
        }
        Ok(())
    }
}

/// How a component with no data is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissingPolicy {
    /// Drop it and share its weight among the present components.
    Reweight,
    /// Score it at `neutral_score`.
    Neutral,
}

/// Band thresholds: green at or above `green`, yellow at or above `yellow`, red below.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Bands {
    /// Lowest green score; defaults to `70`.
    pub green: f64,
    /// Lowest yellow score; defaults to `40`.
    pub yellow: f64,
}

impl Default for Bands {
    fn default() -> Self {
        Bands {
            green: 70.0,
            yellow: 40.0,
        }
    }
}

impl Bands {
    /// The band of a score.
    pub fn of(&self, score: f64) -> Band {
        if score >= self.green {
            Band::Green
        } else if score >= self.yellow {
            Band::Yellow
        } else {
            Band::Red
        }
    }
}

/// A segment with its own weights, such as onboarding customers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// The profile's name (stored with each score).
    pub name: String,
    /// Applies to customers with tenure below this many days.
    pub max_tenure_days: f64,
    /// The profile's weights.
    pub weights: Weights,
}

/// How raw inputs become component scores. Each sub-score is 0–100.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scales {
    /// Churn risk score = 100 × (1 − p / churn_probability_at_zero), floored
    /// at 0: the probability at which the component reaches 0. `1` gives the
    /// plain 100 × (1 − p); defaults to `0.4`, because 90-day churn
    /// probabilities rarely exceed it and 1 − p would leave every customer
    /// between 80 and 100.
    pub churn_probability_at_zero: f64,
    /// Sessions per seat in 30 days that count as fully engaged; defaults to `12`.
    pub sessions_per_seat_target: f64,
    /// Usage trend (log ratio) at which the trend sub-score is ~88 or ~12; defaults to `0.5`.
    pub trend_scale: f64,
    /// Features adopted that count as full adoption; defaults to `8`.
    pub adoption_target: f64,
    /// Engagement sub-weights of level, trend and adoption; default to `0.5`, `0.25`, `0.25`.
    pub engagement_mix: [f64; 3],
    /// Payment score = 100·exp(−(failure_penalty·failures + late_penalty·late)); defaults to `0.5`.
    pub failure_penalty: f64,
    /// See `failure_penalty`; defaults to `0.2`.
    pub late_penalty: f64,
    /// Support score = 100·exp(−(ticket·tickets + severe·severe + open·open)); defaults to `0.1`.
    pub ticket_penalty: f64,
    /// See `ticket_penalty`; defaults to `0.3`.
    pub severe_ticket_penalty: f64,
    /// See `ticket_penalty`; defaults to `0.2`.
    pub open_ticket_penalty: f64,
}

impl Default for Scales {
    fn default() -> Self {
        Scales {
            churn_probability_at_zero: 0.4,
            sessions_per_seat_target: 12.0,
            trend_scale: 0.5,
            adoption_target: 8.0,
            engagement_mix: [0.5, 0.25, 0.25],
            failure_penalty: 0.5,
            late_penalty: 0.2,
            ticket_penalty: 0.1,
            severe_ticket_penalty: 0.3,
            open_ticket_penalty: 0.2,
        }
    }
}

impl Scales {
    fn check(&self) -> Result<()> {
        if !(self.churn_probability_at_zero > 0.0 && self.churn_probability_at_zero <= 1.0) {
            return bad(
                "health.scales.churn_probability_at_zero",
                format!(
                    "must be within (0, 1], got {}",
                    self.churn_probability_at_zero
                ),
            );
        }
        for (key, v) in [
            ("sessions_per_seat_target", self.sessions_per_seat_target),
            ("trend_scale", self.trend_scale),
            ("adoption_target", self.adoption_target),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return bad(
                    format!("health.scales.{key}"),
                    format!("must be > 0, got {v}"),
                );
            }
        }
        for (key, v) in [
            ("failure_penalty", self.failure_penalty),
            ("late_penalty", self.late_penalty),
            ("ticket_penalty", self.ticket_penalty),
            ("severe_ticket_penalty", self.severe_ticket_penalty),
            ("open_ticket_penalty", self.open_ticket_penalty),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return bad(
                    format!("health.scales.{key}"),
                    format!("must be >= 0, got {v}"),
                );
            }
        }
        if self
            .engagement_mix
            .iter()
            .any(|w| !(w.is_finite() && *w >= 0.0))
            || self.engagement_mix.iter().sum::<f64>() <= 0.0
        {
            return bad(
                "health.scales.engagement_mix",
                "three weights >= 0, at least one positive",
            );
        }
        Ok(())
    }
}

/// `[health]`: every setting of the index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthConfig {
    /// Default component weights.
    pub weights: Weights,
    /// Band thresholds.
    pub bands: Bands,
    /// Missing components: `reweight` (default) or `neutral`.
    pub missing: MissingPolicy,
    /// Score of a missing component under `neutral`; defaults to `50`.
    pub neutral_score: f64,
    /// A change smaller than this (in points) is a flat trend; defaults to `1`.
    pub flat_within: f64,
    /// Segment profiles, first match wins; defaults to one `onboarding` profile (tenure < 90 days).
    pub profiles: Vec<Profile>,
    /// How raw inputs become component scores.
    pub scales: Scales,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            weights: Weights::default(),
            bands: Bands::default(),
            missing: MissingPolicy::Reweight,
            neutral_score: 50.0,
            flat_within: 1.0,
            profiles: vec![Profile {
                name: "onboarding".into(),
                max_tenure_days: 90.0,
                weights: Weights {
                    churn_risk: 0.30,
                    engagement: 0.40,
                    satisfaction: 0.10,
                    payment: 0.10,
                    support: 0.10,
                },
            }],
            scales: Scales::default(),
        }
    }
}

impl HealthConfig {
    /// Checks every setting; the error names the key.
    pub fn check(&self) -> Result<()> {
        self.weights.check("health.weights")?;
        let b = &self.bands;
        if !(b.yellow.is_finite() && b.green.is_finite()) {
            return bad("health.bands", "thresholds must be finite numbers");
        }
        if !(0.0 < b.yellow && b.yellow < b.green && b.green <= 100.0) {
            return bad(
                "health.bands",
                format!(
                    "need 0 < yellow < green <= 100 so bands do not overlap, got yellow {} and green {}",
                    b.yellow, b.green
                ),
            );
        }
        if !(0.0..=100.0).contains(&self.neutral_score) {
            return bad(
                "health.neutral_score",
                format!("must be within 0..=100, got {}", self.neutral_score),
            );
        }
        if !(self.flat_within.is_finite() && self.flat_within >= 0.0) {
            return bad("health.flat_within", "must be >= 0");
        }
        for (i, p) in self.profiles.iter().enumerate() {
            let key = format!("health.profiles[{i}]");
            if p.name.trim().is_empty() {
                return bad(format!("{key}.name"), "must not be empty");
            }
            if !(p.max_tenure_days.is_finite() && p.max_tenure_days > 0.0) {
                return bad(format!("{key}.max_tenure_days"), "must be > 0");
            }
            p.weights.check(&format!("{key}.weights"))?;
        }
        self.scales.check()
    }

    /// The profile for a customer of this tenure: its name and weights.
    pub fn profile(&self, tenure_days: Option<f64>) -> (&str, &Weights) {
        tenure_days
            .and_then(|t| self.profiles.iter().find(|p| t < p.max_tenure_days))
            .map_or(("default", &self.weights), |p| {
                (p.name.as_str(), &p.weights)
            })
    }
}

/// What the index is computed from. `None` means unknown (the input is not
/// in the data, or the customer has no value), never zero.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HealthInputs {
    /// Calibrated churn probability.
    pub churn_probability: f64,
    /// Days since signup (chooses the profile).
    pub tenure_days: Option<f64>,
    /// Sessions per licensed seat in the last 30 days.
    pub sessions_per_seat_30d: Option<f64>,
    /// ln((sessions_30d + 1) / (sessions_prev_30d + 1)).
    pub usage_trend: Option<f64>,
    /// Distinct product features used.
    pub features_adopted: Option<f64>,
    /// Latest NPS answer (0–10).
    pub last_nps: Option<f64>,
    /// Latest CSAT answer (1–5).
    pub last_csat: Option<f64>,
    /// Failed payment attempts in 90 days.
    pub payment_failures_90d: Option<f64>,
    /// Late payments in 90 days.
    pub late_payments_90d: Option<f64>,
    /// Tickets opened in 90 days.
    pub tickets_90d: Option<f64>,
    /// Severe tickets opened in 90 days.
    pub severe_tickets_90d: Option<f64>,
    /// Tickets open at the snapshot.
    pub open_tickets: Option<f64>,
    /// Scores (0–100) of a flat table's mapped input columns, by component
    /// (its schema's `[[health]]` signals). A component without native
    /// inputs takes the mean of its mapped scores.
    pub mapped: Vec<(Component, f64)>,
}

/// One component's part in a customer's index.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentScore {
    /// The component.
    pub component: Component,
    /// Its score, 0–100; `None` when its data is missing.
    pub score: Option<f64>,
    /// Its normalised weight in this customer's index (0 when re-weighted away).
    pub weight: f64,
    /// Points it adds to the index: `weight × score` (or × neutral score).
    pub contribution: f64,
}

/// A customer's health index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthIndex {
    /// 0–100.
    pub score: f64,
    /// Its band.
    pub band: Band,
    /// The profile whose weights were used (`default` or a profile's name).
    pub profile: String,
    /// Every component, in [`Component::ALL`] order; contributions sum to `score`.
    pub components: Vec<ComponentScore>,
}

/// Direction of a change in health.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Up by at least `flat_within` points.
    Up,
    /// Within `flat_within` points.
    Flat,
    /// Down by at least `flat_within` points.
    Down,
    /// No earlier score.
    New,
}

impl Direction {
    /// The direction's name.
    pub fn name(self) -> &'static str {
        match self {
            Direction::Up => "up",
            Direction::Flat => "flat",
            Direction::Down => "down",
            Direction::New => "new",
        }
    }
}

/// Change since the previous scoring run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Trend {
    /// Points gained (negative: lost); `None` without an earlier score.
    pub change: Option<f64>,
    /// Its direction.
    pub direction: Direction,
}

/// The trend from a previous score to the current one.
pub fn trend(previous: Option<f64>, current: f64, config: &HealthConfig) -> Trend {
    match previous {
        None => Trend {
            change: None,
            direction: Direction::New,
        },
        Some(p) => {
            let change = current - p;
            let direction = if change >= config.flat_within && change > 0.0 {
                Direction::Up
            } else if change <= -config.flat_within && change < 0.0 {
                Direction::Down
            } else {
                Direction::Flat
            };
            Trend {
                change: Some(change),
                direction,
            }
        }
    }
}

fn present(v: Option<f64>) -> Option<f64> {
    v.filter(|x| x.is_finite())
}

fn weighted_mean(parts: &[(Option<f64>, f64)]) -> Option<f64> {
    let (mut sum, mut total) = (0.0, 0.0);
    for (v, w) in parts {
        if let Some(v) = v {
            sum += v * w;
            total += w;
        }
    }
    (total > 0.0).then(|| sum / total)
}

/// The score of one component, 0–100, or `None` when its data is missing:
/// from the native inputs where there are any, else from the mapped ones.
pub fn component_score(c: Component, x: &HealthInputs, s: &Scales) -> Option<f64> {
    native_score(c, x, s).or_else(|| {
        let mapped: Vec<f64> = x
            .mapped
            .iter()
            .filter(|(m, v)| *m == c && v.is_finite())
            .map(|(_, v)| *v)
            .collect();
        (!mapped.is_empty())
            .then(|| (mapped.iter().sum::<f64>() / mapped.len() as f64).clamp(0.0, 100.0))
    })
}

fn native_score(c: Component, x: &HealthInputs, s: &Scales) -> Option<f64> {
    let score = match c {
        Component::ChurnRisk => {
            let p = x.churn_probability;
            if !p.is_finite() {
                return None;
            }
            100.0 * (1.0 - p.clamp(0.0, 1.0) / s.churn_probability_at_zero)
        }
        Component::Engagement => {
            let level = present(x.sessions_per_seat_30d)
                .map(|v| 100.0 * (v.max(0.0) / s.sessions_per_seat_target).min(1.0));
            let trend = present(x.usage_trend).map(|t| 50.0 + 50.0 * (t / s.trend_scale).tanh());
            let adoption = present(x.features_adopted)
                .map(|a| 100.0 * (a.max(0.0) / s.adoption_target).min(1.0));
            let m = s.engagement_mix;
            weighted_mean(&[(level, m[0]), (trend, m[1]), (adoption, m[2])])?
        }
        Component::Satisfaction => {
            let nps = present(x.last_nps).map(|v| 10.0 * v.clamp(0.0, 10.0));
            let csat = present(x.last_csat).map(|v| 25.0 * (v.clamp(1.0, 5.0) - 1.0));
            weighted_mean(&[(nps, 1.0), (csat, 1.0)])?
        }
        Component::Payment => {
            let f = present(x.payment_failures_90d);
            let l = present(x.late_payments_90d);
            if f.is_none() && l.is_none() {
                return None;
            }
            let load = s.failure_penalty * f.unwrap_or(0.0).max(0.0)
                + s.late_penalty * l.unwrap_or(0.0).max(0.0);
            100.0 * (-load).exp()
        }
        Component::Support => {
            let t = present(x.tickets_90d);
            let sev = present(x.severe_tickets_90d);
            let open = present(x.open_tickets);
            if t.is_none() && sev.is_none() && open.is_none() {
                return None;
            }
            let load = s.ticket_penalty * t.unwrap_or(0.0).max(0.0)
                + s.severe_ticket_penalty * sev.unwrap_or(0.0).max(0.0)
                + s.open_ticket_penalty * open.unwrap_or(0.0).max(0.0);
            100.0 * (-load).exp()
        }
    };
    Some(score.clamp(0.0, 100.0))
}

/// The health index of one customer.
pub fn health_index(x: &HealthInputs, config: &HealthConfig) -> HealthIndex {
    let (profile, weights) = config.profile(present(x.tenure_days));
    let w = weights.normalised();
    let scores = Component::ALL.map(|c| component_score(c, x, &config.scales));
    let effective: [f64; 5] = match config.missing {
        MissingPolicy::Neutral => w,
        MissingPolicy::Reweight => {
            let kept: f64 = w
                .iter()
                .zip(&scores)
                .filter(|(_, s)| s.is_some())
                .map(|(w, _)| w)
                .sum();
            let mut e = [0.0; 5];
            for k in 0..5 {
                if scores[k].is_some() && kept > 0.0 {
                    e[k] = w[k] / kept;
                }
            }
            e
        }
    };
    let components: Vec<ComponentScore> = Component::ALL
        .iter()
        .enumerate()
        .map(|(k, &component)| {
            let value = scores[k].unwrap_or(config.neutral_score);
            ComponentScore {
                component,
                score: scores[k],
                weight: effective[k],
                contribution: effective[k] * value,
            }
        })
        .collect();
    let score = components
        .iter()
        .map(|c| c.contribution)
        .sum::<f64>()
        .clamp(0.0, 100.0);
    HealthIndex {
        score,
        band: config.bands.of(score),
        profile: profile.to_string(),
        components,
    }
}

#[cfg(test)]
mod tests;
