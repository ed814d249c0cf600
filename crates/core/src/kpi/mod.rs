//! Employee KPI scorecards: account managers scored on their portfolio,
//! acquisition reps on the customers they brought in, with weights that
//! depend on the role and the business stage, metrics normalised within peer
//! groups, a composite score, rank and top-10% flag, each metric's
//! contribution, and data-driven weights shown beside the configured ones.
//!
//! Pure: [`facts`] turns the tables and a scoring run's rows into per-employee
//! metric values; [`scorecards`] turns those into scorecards.

mod facts;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use facts::{facts, flat_facts, FactsInput, FlatRow, ScoredRow};

/// Result alias of the KPI layer.
pub type Result<T, E = KpiError> = std::result::Result<T, E>;

/// What can go wrong building scorecards.
#[derive(Debug, thiserror::Error)]
pub enum KpiError {
    /// A setting that cannot be used.
    #[error("invalid setting `{key}`: {message}")]
    BadConfig {
        /// The TOML key.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A table lacks what the scorecards need.
    #[error("table `{table}`: {message}")]
    BadTable {
        /// The table.
        table: String,
        /// What is wrong.
        message: String,
    },
}

impl crate::error::HasKind for KpiError {
    fn kind(&self) -> crate::error::ErrorKind {
        // Both name what the caller supplied: a config key or a table.
        crate::error::ErrorKind::BadInput
    }
}

impl From<crate::value::ValueError> for KpiError {
    fn from(e: crate::value::ValueError) -> KpiError {
        match e {
            crate::value::ValueError::BadTable { table, message } => {
                KpiError::BadTable { table, message }
            }
            crate::value::ValueError::BadConfig { key, message } => {
                KpiError::BadConfig { key, message }
            }
        }
    }
}

/// The two scored roles.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Owns a portfolio of customers.
    AccountManager,
    /// Brings customers in.
    Acquisition,
}

impl Role {
    /// The role's name, as in the employees table.
    pub fn name(self) -> &'static str {
        match self {
            Role::AccountManager => "account_manager",
            Role::Acquisition => "acquisition",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Role, String> {
        match s {
            "account_manager" => Ok(Role::AccountManager),
            "acquisition" => Ok(Role::Acquisition),
            other => Err(format!(
                "unknown role {other:?} (expected account_manager or acquisition)"
            )),
        }
    }
}

/// The business stage: it changes what matters most.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// The default weights.
    Balanced,
    /// Growing: activation of new customers weighs 30–40%.
    Growth,
    /// Mature: renewals weigh 50%.
    Mature,
}

impl Stage {
    /// The stage's name.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Balanced => "balanced",
            Stage::Growth => "growth",
            Stage::Mature => "mature",
        }
    }
}

impl std::str::FromStr for Stage {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Stage, String> {
        match s {
            "balanced" => Ok(Stage::Balanced),
            "growth" => Ok(Stage::Growth),
            "mature" => Ok(Stage::Mature),
            other => Err(format!(
                "unknown stage {other:?} (expected balanced, growth or mature)"
            )),
        }
    }
}

/// A scorecard metric.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Mean health index of the portfolio.
    HealthLevel,
    /// Mean change of health since the previous run.
    HealthChange,
    /// Net promoter score of the portfolio's latest answers (−100..100).
    Satisfaction,
    /// Upsell MRR in 90 days over the portfolio's MRR.
    Expansion,
    /// Share of new customers (signed up 60–180 days ago) who adopted enough features in their first 60 days.
    Activation,
    /// Share of contract terms ending in the last 180 days that renewed.
    Renewal,
    /// Mean customer acquisition cost (lower is better).
    Cac,
    /// Converted leads over leads, last 365 days.
    Conversion,
    /// Mean predicted CLV of customers brought in during the last 365 days (churned ones count 0).
    Clv,
    /// 90-day logo retention (reported, not weighted by default).
    Retention,
    /// Intervention save rate of the owner's treated customers (reported).
    SaveRate,
}

impl Metric {
    /// Whether a lower value is better.
    pub fn lower_is_better(self) -> bool {
        self == Metric::Cac
    }

    /// The metric's name.
    pub fn name(self) -> &'static str {
        match self {
            Metric::HealthLevel => "health_level",
            Metric::HealthChange => "health_change",
            Metric::Satisfaction => "satisfaction",
            Metric::Expansion => "expansion",
            Metric::Activation => "activation",
            Metric::Renewal => "renewal",
            Metric::Cac => "cac",
            Metric::Conversion => "conversion",
            Metric::Clv => "clv",
            Metric::Retention => "retention",
            Metric::SaveRate => "save_rate",
        }
    }
}

/// Weights per stage for one role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageWeights {
    /// Weights of the balanced (default) stage.
    pub balanced: BTreeMap<Metric, f64>,
    /// Weights of the growth stage.
    pub growth: BTreeMap<Metric, f64>,
    /// Weights of the mature stage.
    pub mature: BTreeMap<Metric, f64>,
}

impl StageWeights {
    /// The weights of a stage.
    pub fn of(&self, stage: Stage) -> &BTreeMap<Metric, f64> {
        match stage {
            Stage::Balanced => &self.balanced,
            Stage::Growth => &self.growth,
            Stage::Mature => &self.mature,
        }
    }
}

/// How peers are grouped for normalisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeerGroup {
    /// The employee's region.
    Region,
    /// The employee's team.
    Team,
    /// Everyone in the role.
    All,
}

/// `[kpi]`: scorecard settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KpiConfig {
    /// The stage used when none is asked for; defaults to `balanced`.
    pub stage: Stage,
    /// Peer groups for normalisation; defaults to `region`.
    pub peer_group: PeerGroup,
    /// Share of each role flagged as top performers; defaults to `0.10`.
    pub top_share: f64,
    /// Features adopted within 60 days that count as activated; defaults to `3`.
    pub activation_features: u32,
    /// A peer group smaller than this is compared with the whole role
    /// instead (a group of one has no peers); defaults to `3`.
    pub min_peer_group: usize,
    /// A scorecard resting on fewer customers than this is flagged
    /// (`too_few`); defaults to `30`.
    pub min_customers: usize,
    /// Account-manager weights.
    pub account_manager: StageWeights,
    /// Acquisition-rep weights.
    pub acquisition: StageWeights,
}

fn weights(pairs: &[(Metric, f64)]) -> BTreeMap<Metric, f64> {
    pairs.iter().copied().collect()
}

impl Default for KpiConfig {
    fn default() -> Self {
        use Metric::*;
        KpiConfig {
            stage: Stage::Balanced,
            peer_group: PeerGroup::Region,
            top_share: 0.10,
            activation_features: 3,
            min_peer_group: 3,
            min_customers: 30,
            account_manager: StageWeights {
                balanced: weights(&[
                    (HealthLevel, 0.30),
                    (HealthChange, 0.10),
                    (Satisfaction, 0.30),
                    (Expansion, 0.30),
                ]),
                growth: weights(&[
                    (Activation, 0.35),
                    (HealthLevel, 0.20),
                    (HealthChange, 0.05),
                    (Satisfaction, 0.20),
                    (Expansion, 0.20),
                ]),
                mature: weights(&[
                    (Renewal, 0.50),
                    (HealthLevel, 0.15),
                    (HealthChange, 0.05),
                    (Satisfaction, 0.15),
                    (Expansion, 0.15),
                ]),
            },
            acquisition: StageWeights {
                balanced: weights(&[(Cac, 0.35), (Conversion, 0.25), (Clv, 0.40)]),
                growth: weights(&[
                    (Activation, 0.35),
                    (Cac, 0.20),
                    (Conversion, 0.20),
                    (Clv, 0.25),
                ]),
                mature: weights(&[
                    (Renewal, 0.50),
                    (Cac, 0.15),
                    (Conversion, 0.10),
                    (Clv, 0.25),
                ]),
            },
        }
    }
}

impl KpiConfig {
    /// Checks the settings; the error names the key.
    pub fn check(&self) -> Result<()> {
        let bad = |key: String, message: String| Err(KpiError::BadConfig { key, message });
        if !(self.top_share > 0.0 && self.top_share <= 1.0) {
            return bad(
                "kpi.top_share".into(),
                format!("must be within (0, 1], got {}", self.top_share),
            );
        }
        for (role, sw) in [
            ("account_manager", &self.account_manager),
            ("acquisition", &self.acquisition),
        ] {
            for stage in [Stage::Balanced, Stage::Growth, Stage::Mature] {
                let key = format!("kpi.{role}.{}", stage.name());
                let w = sw.of(stage);
                for (m, v) in w {
                    if !(v.is_finite() && *v >= 0.0) {
                        return bad(
                            format!("{key}.{}", m.name()),
                            format!("must be a finite number >= 0, got {v}"),
                        );
                    }
                }
                if w.values().sum::<f64>() <= 0.0 {
                    return bad(key, "at least one weight must be positive".into());
                }
            }
        }
        Ok(())
    }

    /// The configured weights of a role and stage, normalised to sum to 1.
    pub fn weights(&self, role: Role, stage: Stage) -> BTreeMap<Metric, f64> {
        let w = match role {
            Role::AccountManager => self.account_manager.of(stage),
            Role::Acquisition => self.acquisition.of(stage),
        };
        let total: f64 = w.values().sum();
        w.iter().map(|(m, v)| (*m, v / total)).collect()
    }
}

/// What is known about one employee before scoring.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EmployeeFacts {
    /// Employee id.
    pub employee_id: String,
    /// Name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Region.
    pub region: String,
    /// Team.
    pub team: String,
    /// Customers in the portfolio (account managers) or brought in (reps).
    pub customers: usize,
    /// Metric values; `None` when the employee has no data for it.
    pub metrics: BTreeMap<Metric, Option<f64>>,
    /// Retention of the employee's customers, the outcome that data-driven
    /// weights are fitted against.
    pub outcome: Option<f64>,
    /// The book's risk at the start of the period: the mean churn
    /// probability the model predicted then for the customers the
    /// employee held (account managers); `None` without such predictions.
    pub book_risk: Option<f64>,
    /// Customers behind `book_risk`.
    pub book_risk_customers: usize,
}

/// One metric on a scorecard.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricScore {
    /// The metric.
    pub metric: Metric,
    /// Its raw value.
    pub value: Option<f64>,
    /// Normalised within the peer group, 0–100 (50 = the group's mean; 50 when missing).
    pub normalised: f64,
    /// Its weight (normalised).
    pub weight: f64,
    /// Points it adds to the composite: weight × normalised.
    pub contribution: f64,
    /// What the role's books predict for this book from its risk at the
    /// start of the period (a least-squares line of the metric on book
    /// risk across the role); `None` without book risks.
    pub expected: Option<f64>,
    /// `value − expected`, normalised within the peer group like `value`
    /// (0–100, 50 = as expected for such a book).
    pub adjusted_normalised: Option<f64>,
}

/// One employee's scorecard.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scorecard {
    /// Employee id.
    pub employee_id: String,
    /// Name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Stage whose weights were used.
    pub stage: Stage,
    /// Peer group the metrics were normalised in.
    pub peer_group: String,
    /// Customers behind the numbers.
    pub customers: usize,
    /// 0–100.
    pub composite: f64,
    /// The composite of the risk-adjusted metrics (observed − expected for
    /// the book's starting risk), 0–100; `None` without book risks.
    pub adjusted_composite: Option<f64>,
    /// The employee's book risk at the start of the period.
    pub book_risk: Option<f64>,
    /// Fewer than `kpi.min_customers` customers stand behind the card.
    pub too_few: bool,
    /// 1 = best, within the role.
    pub rank: usize,
    /// Rank by `adjusted_composite`, when there is one.
    pub adjusted_rank: Option<usize>,
    /// In the top `top_share` of the role.
    pub top: bool,
    /// Weighted metrics, then reported-only metrics (weight 0).
    pub metrics: Vec<MetricScore>,
}

/// A metric's configured weight beside the weight the data suggest.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SuggestedWeight {
    /// The metric.
    pub metric: Metric,
    /// Configured (normalised).
    pub configured: f64,
    /// Spearman correlation of the normalised metric with the employees' customer retention.
    pub correlation: Option<f64>,
    /// Suggested: positive correlations, normalised to sum to 1.
    pub suggested: f64,
}

/// Scorecards of a role, plus the suggested weights.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scorecards {
    /// Role.
    pub role: Role,
    /// Stage.
    pub stage: Stage,
    /// One per employee, best first.
    pub cards: Vec<Scorecard>,
    /// Configured against data-driven weights.
    pub weights: Vec<SuggestedWeight>,
}

/// Standard normal CDF (Abramowitz–Stegun 7.1.26, |error| < 1.5e-7).
fn normal_cdf(z: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.327_591_1 * z.abs() / std::f64::consts::SQRT_2);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-(z * z) / 2.0).exp();
    if z >= 0.0 {
        0.5 * (1.0 + erf)
    } else {
        0.5 * (1.0 - erf)
    }
}

/// Ranks (1-based, ties averaged).
fn ranks(v: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut r = vec![0.0; v.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            r[k] = avg;
        }
        i = j + 1;
    }
    r
}

/// Spearman's rank correlation; `None` with fewer than 3 pairs or no spread.
pub fn spearman(a: &[f64], b: &[f64]) -> Option<f64> {
    if a.len() != b.len() || a.len() < 3 {
        return None;
    }
    let (ra, rb) = (ranks(a), ranks(b));
    let n = a.len() as f64;
    let (ma, mb) = (ra.iter().sum::<f64>() / n, rb.iter().sum::<f64>() / n);
    let cov: f64 = ra.iter().zip(&rb).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = ra.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = rb.iter().map(|y| (y - mb).powi(2)).sum();
    (va > 0.0 && vb > 0.0).then(|| cov / (va * vb).sqrt())
}

/// A value on the 0–100 peer scale: the normal CDF of its z-score in the
/// group (sign flipped where lower is better); 50 without a spread.
fn peer_score(v: f64, stats: Option<&(f64, f64)>, m: Metric) -> f64 {
    match stats {
        Some(&(mean, sd)) if sd > 1e-12 => {
            let z = (v - mean) / sd;
            100.0 * normal_cdf(if m.lower_is_better() { -z } else { z })
        }
        _ => 50.0,
    }
}

/// Per (peer group, metric), the mean and standard deviation of `value`
/// over the employees who have one.
fn group_stats(
    people: &[&EmployeeFacts],
    metrics: &[Metric],
    group_of: &dyn Fn(&EmployeeFacts) -> String,
    value: impl Fn(&EmployeeFacts, Metric) -> Option<f64>,
) -> BTreeMap<(String, Metric), (f64, f64)> {
    let mut stats = BTreeMap::new();
    for &m in metrics {
        let mut groups: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for e in people {
            if let Some(v) = value(e, m) {
                groups.entry(group_of(e)).or_default().push(v);
            }
        }
        for (g, vs) in groups {
            let n = vs.len() as f64;
            let mean = vs.iter().sum::<f64>() / n;
            let sd = (vs.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
            stats.insert((g, m), (mean, sd));
        }
    }
    stats
}

/// The least-squares line `y = a + b x` through `(x, y)` pairs; `None`
/// with fewer than 3 pairs or no spread in `x`.
fn least_squares(pairs: &[(f64, f64)]) -> Option<(f64, f64)> {
    if pairs.len() < 3 {
        return None;
    }
    let n = pairs.len() as f64;
    let mx = pairs.iter().map(|p| p.0).sum::<f64>() / n;
    let my = pairs.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = pairs.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = pairs.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    (sxx > 1e-18).then(|| {
        let b = sxy / sxx;
        (my - b * mx, b)
    })
}

/// Builds the scorecards of one role at one stage.
///
/// Beside the raw composite, each card carries a **risk-adjusted**
/// composite when the facts carry book risks: every metric is compared
/// with what the role's books predict for a book of that starting risk
/// (observed − expected, the expectation a least-squares line of the
/// metric on book risk), so an account manager handed risky customers is
/// not ranked below one with a safe book for the same work.
pub fn scorecards(
    all: &[EmployeeFacts],
    role: Role,
    stage: Stage,
    config: &KpiConfig,
) -> Scorecards {
    let people: Vec<&EmployeeFacts> = all.iter().filter(|e| e.role == role).collect();
    let weights = config.weights(role, stage);
    let raw_group = |e: &EmployeeFacts| match config.peer_group {
        PeerGroup::Region => e.region.clone(),
        PeerGroup::Team => e.team.clone(),
        PeerGroup::All => "all".to_string(),
    };
    let mut sizes: BTreeMap<String, usize> = BTreeMap::new();
    for e in &people {
        *sizes.entry(raw_group(e)).or_default() += 1;
    }
    let group_of = |e: &EmployeeFacts| {
        let g = raw_group(e);
        if sizes.get(&g).copied().unwrap_or(0) < config.min_peer_group {
            "all".to_string()
        } else {
            g
        }
    };
    let mut shown: Vec<Metric> = weights.keys().copied().collect();
    let reported: &[Metric] = match role {
        Role::AccountManager => &[Metric::Retention, Metric::SaveRate],
        Role::Acquisition => &[Metric::Retention],
    };
    for m in reported {
        if !shown.contains(m) {
            shown.push(*m);
        }
    }
    // Peer-group mean and standard deviation of each metric.
    let stats = group_stats(&people, &shown, &group_of, |e, m| {
        e.metrics
            .get(&m)
            .copied()
            .flatten()
            .filter(|v| v.is_finite())
    });
    // Risk adjustment: per metric, the least-squares line of the metric on
    // the book's starting risk across the role; observed − line is what
    // the employee did beyond what such a book would have done anyway.
    let lines: BTreeMap<Metric, (f64, f64)> = shown
        .iter()
        .filter_map(|&m| {
            let pairs: Vec<(f64, f64)> = people
                .iter()
                .filter_map(|e| {
                    let v = e.metrics.get(&m).copied().flatten()?;
                    let r = e.book_risk?;
                    (v.is_finite() && r.is_finite()).then_some((r, v))
                })
                .collect();
            least_squares(&pairs).map(|line| (m, line))
        })
        .collect();
    let adjusted_value = |e: &EmployeeFacts, m: Metric| -> Option<(f64, f64)> {
        let v = e
            .metrics
            .get(&m)
            .copied()
            .flatten()
            .filter(|v| v.is_finite())?;
        let (a, b) = lines.get(&m)?;
        let expected = a + b * e.book_risk?;
        Some((expected, v - expected))
    };
    let adjusted_stats = group_stats(&people, &shown, &group_of, |e, m| {
        adjusted_value(e, m).map(|(_, residual)| residual)
    });
    let normalise_adjusted = |e: &EmployeeFacts, m: Metric| -> (Option<f64>, Option<f64>) {
        let Some((expected, residual)) = adjusted_value(e, m) else {
            return (None, None);
        };
        let score = peer_score(residual, adjusted_stats.get(&(group_of(e), m)), m);
        (Some(expected), Some(score))
    };
    let normalise = |e: &EmployeeFacts, m: Metric| -> (Option<f64>, f64) {
        let value = e
            .metrics
            .get(&m)
            .copied()
            .flatten()
            .filter(|v| v.is_finite());
        let score = value.map_or(50.0, |v| peer_score(v, stats.get(&(group_of(e), m)), m));
        (value, score)
    };
    let mut cards: Vec<Scorecard> = people
        .iter()
        .map(|e| {
            let metrics: Vec<MetricScore> = shown
                .iter()
                .map(|&m| {
                    let (value, normalised) = normalise(e, m);
                    let (expected, adjusted_normalised) = normalise_adjusted(e, m);
                    let weight = weights.get(&m).copied().unwrap_or(0.0);
                    MetricScore {
                        metric: m,
                        value,
                        normalised,
                        weight,
                        contribution: weight * normalised,
                        expected,
                        adjusted_normalised,
                    }
                })
                .collect();
            // A missing adjusted metric counts as expected (50), as a
            // missing raw metric counts as the group's mean.
            let adjusted_composite = e.book_risk.filter(|_| !lines.is_empty()).map(|_| {
                metrics
                    .iter()
                    .map(|m| m.weight * m.adjusted_normalised.unwrap_or(50.0))
                    .sum()
            });
            Scorecard {
                employee_id: e.employee_id.clone(),
                name: e.name.clone(),
                role,
                stage,
                peer_group: group_of(e),
                customers: e.customers,
                composite: metrics.iter().map(|m| m.contribution).sum(),
                adjusted_composite,
                book_risk: e.book_risk,
                too_few: e.customers < config.min_customers,
                rank: 0,
                adjusted_rank: None,
                top: false,
                metrics,
            }
        })
        .collect();
    cards.sort_by(|a, b| {
        b.composite
            .total_cmp(&a.composite)
            .then_with(|| a.employee_id.cmp(&b.employee_id))
    });
    let n_top = ((cards.len() as f64) * config.top_share).ceil() as usize;
    for (k, c) in cards.iter_mut().enumerate() {
        c.rank = k + 1;
        c.top = k < n_top;
    }
    let mut by_adjusted: Vec<(f64, usize)> = cards
        .iter()
        .enumerate()
        .filter_map(|(i, c)| Some((c.adjusted_composite?, i)))
        .collect();
    by_adjusted.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    for (k, (_, i)) in by_adjusted.into_iter().enumerate() {
        cards[i].adjusted_rank = Some(k + 1);
    }
    // Data-driven weights: how each normalised metric ranks with retention.
    let with_outcome: Vec<&EmployeeFacts> = people
        .iter()
        .copied()
        .filter(|e| e.outcome.is_some_and(f64::is_finite))
        .collect();
    let outcome: Vec<f64> = with_outcome
        .iter()
        .map(|e| e.outcome.unwrap_or(0.0))
        .collect();
    let correlations: Vec<(Metric, Option<f64>)> = weights
        .keys()
        .map(|&m| {
            let xs: Vec<f64> = with_outcome.iter().map(|e| normalise(e, m).1).collect();
            (m, spearman(&xs, &outcome))
        })
        .collect();
    let positive: f64 = correlations
        .iter()
        .map(|(_, c)| c.unwrap_or(0.0).max(0.0))
        .sum();
    let suggested = correlations
        .into_iter()
        .map(|(m, c)| SuggestedWeight {
            metric: m,
            configured: weights[&m],
            correlation: c,
            suggested: if positive > 0.0 {
                c.unwrap_or(0.0).max(0.0) / positive
            } else {
                0.0
            },
        })
        .collect();
    Scorecards {
        role,
        stage,
        cards,
        weights: suggested,
    }
}

#[cfg(test)]
mod tests;
