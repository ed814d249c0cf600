//! `[serve]`: the HTTP server's settings.

use serde::{Deserialize, Serialize};

/// One API key: its SHA-256 (hex) and role. Keys themselves are never stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// Who holds it (shown in logs and the audit log, never the key).
    pub name: String,
    /// `reader`, `scorer` or `admin`.
    pub role: String,
    /// Lowercase hex SHA-256 of the key (`churnguard keys hash KEY` prints it).
    pub sha256: String,
    /// The account manager id of the holder, for "my accounts" in the web app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

/// `[serve]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServeConfig {
    /// Address to listen on; defaults to `127.0.0.1:8080`.
    pub listen: String,
    /// Model registry directory; defaults to `models`.
    pub registry: String,
    /// Event-table directory that `POST /v1/scoring-runs` scores; none by default.
    pub data: Option<String>,
    /// Most customers in one `POST /v1/score`; defaults to `10000`.
    pub max_batch: usize,
    /// Largest request body in bytes; defaults to `33554432` (32 MiB).
    pub body_limit_bytes: usize,
    /// Seconds before a request is cut off with 503; defaults to `30`.
    pub request_timeout_secs: f64,
    /// Requests per minute per API key (0 = unlimited); defaults to `0`.
    pub rate_limit_per_minute: u32,
    /// Mark the web session cookie `Secure` (when served over HTTPS); defaults to `false`.
    pub secure_cookies: bool,
    /// API keys (hashed). `CHURNGUARD_API_KEYS="role:key,role:key"` adds more.
    pub keys: Vec<ApiKeyConfig>,
    /// `[serve.delivery]`: webhooks interventions are delivered to.
    pub delivery: crate::delivery::DeliveryConfig,
    /// Customers of recent `POST /v1/score` requests kept per replica for
    /// online drift against the serving model's training baseline (`0`
    /// keeps none); defaults to `5000`.
    pub drift_window: usize,
    /// `[serve.shadow]`: sampling and buffering of a shadow challenger's scores.
    pub shadow: crate::shadow::ShadowConfig,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            listen: "127.0.0.1:8080".into(),
            registry: "models".into(),
            data: None,
            max_batch: 10_000,
            body_limit_bytes: 32 * 1024 * 1024,
            request_timeout_secs: 30.0,
            rate_limit_per_minute: 0,
            secure_cookies: false,
            keys: Vec::new(),
            delivery: crate::delivery::DeliveryConfig::default(),
            drift_window: 5_000,
            shadow: crate::shadow::ShadowConfig::default(),
        }
    }
}

/// The roles a key can have.
pub const ROLES: &[&str] = &["reader", "scorer", "admin"];

impl ServeConfig {
    /// Checks the settings; the error is `(key, message)`.
    pub fn check(&self) -> Result<(), (String, String)> {
        let bad = |k: &str, m: String| Err((format!("serve.{k}"), m));
        if self.max_batch == 0 || self.max_batch > 1_000_000 {
            return bad(
                "max_batch",
                format!("must be 1..=1000000, got {}", self.max_batch),
            );
        }
        if self.body_limit_bytes < 1024 {
            return bad("body_limit_bytes", "must be at least 1024".into());
        }
        if !(self.request_timeout_secs.is_finite() && self.request_timeout_secs > 0.0) {
            return bad("request_timeout_secs", "must be > 0".into());
        }
        self.delivery.check()?;
        if self.drift_window > 1_000_000 {
            return bad(
                "drift_window",
                format!("must be 0..=1000000, got {}", self.drift_window),
            );
        }
        self.shadow.check()?;
        for (i, k) in self.keys.iter().enumerate() {
            if !ROLES.contains(&k.role.as_str()) {
                return bad(
                    &format!("keys[{i}].role"),
                    format!(
                        "unknown role {:?} (expected reader, scorer or admin)",
                        k.role
                    ),
                );
            }
            if k.sha256.len() != 64 || !k.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return bad(
                    &format!("keys[{i}].sha256"),
                    "must be 64 hex digits (the SHA-256 of the key)".into(),
                );
            }
        }
        Ok(())
    }
}
