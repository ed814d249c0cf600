//! `churnguard.toml`: the sections of every crate, composed. The
//! application's sections ([`AppConfig`]: store, scoring, health, value,
//! interventions, KPI) and the server's `[serve]` sit side by side at the
//! top level of one file; each crate checks its own.

use churnguard_app::config::{layered, AppConfig, ConfigError};
use churnguard_server::ServeConfig;
use serde::{Deserialize, Serialize};

/// The whole configuration file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    /// Every section but `[serve]`.
    pub app: AppConfig,
    /// `[serve]`.
    pub serve: ServeConfig,
}

/// The file's shape: the application's sections plus `[serve]`.
#[derive(Serialize, Deserialize)]
struct Layout {
    #[serde(default)]
    serve: ServeConfig,
    #[serde(flatten)]
    app: toml::Table,
}

impl Config {
    /// Parses and checks a TOML config over the shipped defaults, key by key;
    /// `source_name` names it in errors, which carry the key.
    pub fn from_toml(text: &str, source_name: &str) -> Result<Config, ConfigError> {
        let err = |key: String, message: String| ConfigError {
            source_name: source_name.into(),
            key,
            message,
        };
        let defaults = toml::Table::try_from(Config::default().layout())
            .map_err(|e| err(String::new(), e.to_string()))?;
        let merged: toml::Table = layered(&defaults, text, source_name)?;
        let mut rest = merged;
        let serve = rest
            .remove("serve")
            .unwrap_or(toml::Value::Table(toml::Table::new()));
        let serve: ServeConfig = serde_path_to_error::deserialize(serve).map_err(|e| {
            let key = format!("serve.{}", e.path());
            err(key, e.into_inner().message().trim().to_string())
        })?;
        let app: AppConfig =
            serde_path_to_error::deserialize(toml::Value::Table(rest)).map_err(|e| {
                err(
                    e.path().to_string(),
                    e.into_inner().message().trim().to_string(),
                )
            })?;
        app.check(source_name)?;
        serve.check().map_err(|(key, message)| err(key, message))?;
        Ok(Config { app, serve })
    }

    fn layout(&self) -> Layout {
        Layout {
            serve: self.serve.clone(),
            app: toml::Table::try_from(&self.app).unwrap_or_default(),
        }
    }

    /// The file this configuration would be written as.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(&self.layout()).unwrap_or_default()
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
    fn every_section_is_checked_and_named() {
        let e = Config::from_toml("[serve]\nmax_batch = \"many\"\n", "c.toml").unwrap_err();
        assert_eq!(e.key, "serve.max_batch");
        let e = Config::from_toml("[health]\nbogus = 1\n", "c.toml").unwrap_err();
        assert!(e.message.contains("bogus"), "{e}");
        let e = Config::from_toml("[bogus]\nx = 1\n", "c.toml").unwrap_err();
        assert!(e.message.contains("bogus"), "{e}");
        let e = Config::from_toml("[store]\nurl = \"\"\n", "c.toml").unwrap_err();
        assert_eq!(e.key, "store.url");
    }
}
