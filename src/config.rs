//! `churnguard.toml`: every setting of scoring, health, value, interventions,
//! KPI scorecards, the store and the server, with the shipped presets as
//! defaults. Loaded once, checked once: a bad value is rejected at load time
//! with the key that holds it.
//!
//! Layers, lowest first: the defaults, the TOML file (`--config FILE`, or
//! `churnguard.toml` in the working directory when present), then the
//! environment for what differs between deployments (`CHURNGUARD_DATABASE_URL`,
//! `CHURNGUARD_API_KEYS`), then command-line flags.

use serde::{Deserialize, Serialize};

use crate::health::HealthConfig;
use crate::interventions::InterventionPolicy;
use crate::kpi::KpiConfig;
use crate::scoring::ScoringConfig;
use crate::serve::ServeConfig;
use crate::value::ValueConfig;

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

/// `[store]`: where scoring runs, interventions, KPI snapshots and the audit log live.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite://PATH` (the default, `sqlite://churnguard.db`) or
    /// `postgres://USER@HOST/DB`; `CHURNGUARD_DATABASE_URL` overrides it.
    pub url: String,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            url: "sqlite://churnguard.db".into(),
        }
    }
}

/// The whole configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
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
    /// The HTTP server.
    pub serve: ServeConfig,
}

impl Config {
    /// Parses and checks a TOML config; `source_name` names it in errors.
    /// The file overrides the defaults key by key: a table it names is
    /// merged into the default table (so `[kpi.account_manager.growth]
    /// activation = 0.4` keeps the other growth weights), while an array
    /// (rules, playbooks, profiles, keys) replaces the default array whole.
    pub fn from_toml(text: &str, source_name: &str) -> Result<Config, ConfigError> {
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
        let mut merged = toml::Table::try_from(Config::default())
            .map_err(|e| err(String::new(), e.to_string()))?;
        merge(&mut merged, user);
        let config: Config =
            serde_path_to_error::deserialize(toml::Value::Table(merged)).map_err(|e| {
                let key = e.path().to_string();
                let message = e.into_inner().message().trim().to_string();
                err(key, message)
            })?;
        config.check(source_name)?;
        Ok(config)
    }

    /// Checks every section.
    pub fn check(&self, source_name: &str) -> Result<(), ConfigError> {
        let err = |key: String, message: String| ConfigError {
            source_name: source_name.into(),
            key,
            message,
        };
        if self.store.url.trim().is_empty() {
            return Err(err("store.url".into(), "must not be empty".into()));
        }
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
            crate::value::ValueError::BadConfig { key, message } => err(key, message),
            other => err("value".into(), other.to_string()),
        })?;
        self.interventions
            .check()
            .map_err(|e| err(e.key, e.message))?;
        self.kpi.check().map_err(|e| match e {
            crate::kpi::KpiError::BadConfig { key, message } => err(key, message),
            other => err("kpi".into(), other.to_string()),
        })?;
        self.serve
            .check()
            .map_err(|(key, message)| err(key, message))?;
        Ok(())
    }
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

    #[test]
    fn the_example_file_is_the_defaults() {
        let text = include_str!("../churnguard.example.toml");
        let parsed = Config::from_toml(text, "churnguard.example.toml").unwrap();
        assert_eq!(parsed, Config::default());
    }

    #[test]
    fn a_partial_file_overrides_only_what_it_names() {
        let c = Config::from_toml(
            "[kpi.account_manager.growth]\nactivation = 0.5\n[health.bands]\ngreen = 75\n",
            "t.toml",
        )
        .unwrap();
        let d = Config::default();
        assert_eq!(c.health.bands.green, 75.0);
        assert_eq!(c.health.bands.yellow, d.health.bands.yellow);
        assert_eq!(
            c.kpi.account_manager.growth[&crate::kpi::Metric::Activation],
            0.5
        );
        assert_eq!(
            c.kpi.account_manager.growth[&crate::kpi::Metric::Expansion],
            d.kpi.account_manager.growth[&crate::kpi::Metric::Expansion]
        );
        assert_eq!(c.interventions, d.interventions);
    }

    #[test]
    fn errors_name_the_file_and_key() {
        let e =
            Config::from_toml("[health.weights]\nengagement = \"lots\"\n", "c.toml").unwrap_err();
        assert_eq!(e.source_name, "c.toml");
        assert_eq!(e.key, "health.weights.engagement");
        let e = Config::from_toml("[health]\nbogus = 1\n", "c.toml").unwrap_err();
        assert!(e.message.contains("bogus"), "{e}");
        let e = Config::from_toml("[health.weights]\nsupport = -1\n", "c.toml").unwrap_err();
        assert_eq!(e.key, "health.weights.support");
        let e = Config::from_toml("[store]\nurl = \"\"\n", "c.toml").unwrap_err();
        assert_eq!(e.key, "store.url");
    }
}
