//! Configuration: each crate owns its section (`[store]` is the store's,
//! `[scoring]`, `[health]`, `[value]`, `[interventions]` and `[kpi]` are the
//! domain's, `[serve]` is the server's); [`AppConfig`] gathers the sections
//! the operations of this crate use, and the binary adds the server's to
//! make `churnguard.toml`.
//!
//! Layers, lowest first: the defaults, the TOML file, then the environment
//! for what differs between deployments (`CHURNGUARD_DATABASE_URL`,
//! `CHURNGUARD_API_KEYS`), then command-line flags. A file overrides the
//! defaults key by key: a table it names is merged into the default table
//! (so `[kpi.account_manager.growth] activation = 0.4` keeps the other
//! growth weights), while an array (rules, playbooks, profiles, keys)
//! replaces the default array whole.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use churnguard_core::error::{ErrorKind, HasKind};
use churnguard_core::health::HealthConfig;
use churnguard_core::interventions::InterventionPolicy;
use churnguard_core::kpi::KpiConfig;
use churnguard_core::scoring::ScoringConfig;
use churnguard_core::value::ValueConfig;
use churnguard_store::StoreConfig;

/// A setting that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{source_name}: invalid setting `{key}`: {message}")]
pub struct ConfigError {
    /// Where the setting came from (a file path, or `defaults`).
    pub source_name: String,
    /// The key, such as `health.bands`.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl HasKind for ConfigError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::BadInput
    }
}

/// The sections the application's operations use: the store and the domain.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AppConfig {
    /// The store.
    pub store: StoreConfig,
    /// Scoring.
    pub scoring: ScoringConfig,
    /// The health index.
    pub health: HealthConfig,
    /// Customer value.
    pub value: ValueConfig,
    /// The intervention policy.
    pub interventions: InterventionPolicy,
    /// KPI scorecards.
    pub kpi: KpiConfig,
    /// Drift thresholds and retrain triggers.
    pub monitoring: MonitoringConfig,
}

/// `[monitoring]`: when drift is worth a look, and when the monitor calls
/// for action.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MonitoringConfig {
    /// PSI thresholds and the minimum sample.
    pub drift: churnguard_core::monitor::DriftConfig,
    /// What makes `churnguard monitor` warn (exit 4) or call for action (exit 5).
    pub triggers: churnguard_core::monitor::TriggerPolicy,
}

impl AppConfig {
    /// Checks every section; the error names the key.
    pub fn check(&self, source_name: &str) -> Result<(), ConfigError> {
        let err = |key: String, message: String| ConfigError {
            source_name: source_name.into(),
            key,
            message,
        };
        self.store.check().map_err(|(k, m)| err(k, m))?;
        if self.scoring.top_reasons > 20 {
            return Err(err(
                "scoring.top_reasons".into(),
                "must be at most 20".into(),
            ));
        }
        if !(0.0..=1.0).contains(&self.scoring.involuntary_above) {
            return Err(err(
                "scoring.involuntary_above".into(),
                "must be within 0..=1".into(),
            ));
        }
        self.health.check().map_err(|e| err(e.key, e.message))?;
        self.value.check().map_err(|e| match e {
            churnguard_core::value::ValueError::BadConfig { key, message } => err(key, message),
            other => err("value".into(), other.to_string()),
        })?;
        self.interventions
            .check()
            .map_err(|e| err(e.key, e.message))?;
        self.kpi.check().map_err(|e| match e {
            churnguard_core::kpi::KpiError::BadConfig { key, message } => err(key, message),
            other => err("kpi".into(), other.to_string()),
        })?;
        let d = &self.monitoring.drift;
        if !(d.psi_watch > 0.0 && d.psi_watch.is_finite()) {
            return Err(err(
                "monitoring.drift.psi_watch".into(),
                format!("must be positive, got {}", d.psi_watch),
            ));
        }
        if !(d.psi_drift > d.psi_watch && d.psi_drift.is_finite()) {
            return Err(err(
                "monitoring.drift.psi_drift".into(),
                format!(
                    "must be above psi_watch ({}), got {}",
                    d.psi_watch, d.psi_drift
                ),
            ));
        }
        if d.min_rows == 0 {
            return Err(err(
                "monitoring.drift.min_rows".into(),
                "must be at least 1".into(),
            ));
        }
        let t = &self.monitoring.triggers;
        for (key, v) in [
            ("auc_drop", t.auc_drop),
            ("calibration_error", t.calibration_error),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(err(
                    format!("monitoring.triggers.{key}"),
                    format!("must be within 0..=1, got {v}"),
                ));
            }
        }
        Ok(())
    }
}

/// Parses a TOML text over `defaults`, key by key (see the module docs), into
/// `T`; `source_name` names the text in errors, which carry the key's path.
pub fn layered<T: Serialize + DeserializeOwned>(
    defaults: &T,
    text: &str,
    source_name: &str,
) -> Result<T, ConfigError> {
    let err = |key: String, message: String| ConfigError {
        source_name: source_name.into(),
        key,
        message,
    };
    let user: toml::Table = toml::from_str(text).map_err(|e| {
        let key = e
            .span()
            .and_then(|s| text.get(s))
            .map(|k| k.trim().to_string())
            .unwrap_or_default();
        err(key, e.message().trim().to_string())
    })?;
    let mut merged =
        toml::Table::try_from(defaults).map_err(|e| err(String::new(), e.to_string()))?;
    merge(&mut merged, user);
    serde_path_to_error::deserialize(toml::Value::Table(merged)).map_err(|e| {
        let key = e.path().to_string();
        let message = e.into_inner().message().trim().to_string();
        err(key, message)
    })
}

/// Merges `over` into `base`: tables recursively, everything else replaced.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<AppConfig, ConfigError> {
        let c: AppConfig = layered(&AppConfig::default(), text, "c.toml")?;
        c.check("c.toml")?;
        Ok(c)
    }

    #[test]
    fn a_partial_file_overrides_only_what_it_names() {
        let c =
            parse("[kpi.account_manager.growth]\nactivation = 0.5\n[health.bands]\ngreen = 75\n")
                .unwrap();
        let d = AppConfig::default();
        assert_eq!(c.health.bands.green, 75.0);
        assert_eq!(c.health.bands.yellow, d.health.bands.yellow);
        assert_eq!(
            c.kpi.account_manager.growth[&churnguard_core::kpi::Metric::Activation],
            0.5
        );
        assert_eq!(
            c.kpi.account_manager.growth[&churnguard_core::kpi::Metric::Expansion],
            d.kpi.account_manager.growth[&churnguard_core::kpi::Metric::Expansion]
        );
        assert_eq!(c.interventions, d.interventions);
    }

    #[test]
    fn errors_name_the_file_and_key() {
        let e = parse("[health.weights]\nengagement = \"lots\"\n").unwrap_err();
        assert_eq!(e.source_name, "c.toml");
        assert_eq!(e.key, "health.weights.engagement");
        let e = parse("[health]\nbogus = 1\n").unwrap_err();
        assert!(e.message.contains("bogus"), "{e}");
        let e = parse("[health.weights]\nsupport = -1\n").unwrap_err();
        assert_eq!(e.key, "health.weights.support");
        let e = parse("[store]\nurl = \"\"\n").unwrap_err();
        assert_eq!(e.key, "store.url");
    }
}
