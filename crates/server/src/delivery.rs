//! Delivering interventions to the tools staff work in: outgoing webhooks.
//!
//! Design (at-least-once with an idempotency key, so receivers apply each
//! intervention once):
//! - **Outbox.** Every treated, open intervention gets one row per webhook
//!   in the store's `deliveries` table; control-arm ones never leave (no one
//!   acts on them). The row survives restarts and is shared by replicas.
//! - **Lease.** A deliverer claims a due row by moving its next attempt past
//!   the request timeout before sending, so two replicas do not send it at
//!   the same time; a crash mid-send only delays the row to the lease's end.
//! - **Same key, same body.** Every attempt of an intervention to a webhook
//!   carries `Idempotency-Key: churnguard-intervention-<id>` and the same
//!   JSON body; the receiver keeps the keys it has applied. A lost answer, a
//!   timeout after the receiver acted, or a duplicate send is then harmless.
//! - **Signature.** `Churnguard-Signature: t=<unix seconds>,v1=<hex>` where
//!   `v1` is HMAC-SHA256 over `"<t>.<body>"` with the webhook's secret
//!   (read from the environment variable the config names, never from the
//!   file): the receiver checks the sender and refuses stale replays.
//! - **Retries** with exponential backoff (`first_retry_secs` doubling up to
//!   `max_retry_secs`) on any answer but 2xx, on timeouts and on connection
//!   errors; after `max_attempts` the row is `dead`, audit-logged, listed for
//!   admins (`GET /v1/deliveries?status=dead`, the interventions page) and
//!   retried only by an admin.
//!
//! The server runs [`Deliverer::run_once`] every `poll_secs` when webhooks
//! are configured; `churnguard deliver` runs it from a scheduler.

use std::sync::Arc;
use std::time::Duration;

use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};

use churnguard_core::interventions::Intervention;
use churnguard_store::{Attempt, Delivery, Store, StoreError};

/// One webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Its name in the outbox, logs and the admin list (stable: renaming it
    /// delivers every open intervention again under the new name).
    pub name: String,
    /// Where interventions are POSTed (`https://…`, or `http://` for a
    /// receiver on the same host).
    pub url: String,
    /// The environment variable holding the signing secret.
    pub secret_env: String,
}

/// `[serve.delivery]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryConfig {
    /// Webhooks every treated intervention goes to; none by default.
    pub webhooks: Vec<WebhookConfig>,
    /// Attempts before a delivery is dead; defaults to `8`.
    pub max_attempts: u32,
    /// Seconds before the first retry, doubling each time; defaults to `30`.
    pub first_retry_secs: u64,
    /// Longest wait between retries; defaults to `3600`.
    pub max_retry_secs: u64,
    /// Seconds a receiver has to answer; defaults to `10`.
    pub timeout_secs: u64,
    /// Seconds between the server's delivery passes; defaults to `15`.
    pub poll_secs: u64,
    /// Deliveries in flight at once per pass; defaults to `4`.
    pub concurrency: usize,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            webhooks: Vec::new(),
            max_attempts: 8,
            first_retry_secs: 30,
            max_retry_secs: 3600,
            timeout_secs: 10,
            poll_secs: 15,
            concurrency: 4,
        }
    }
}

impl DeliveryConfig {
    /// Checks the settings; the error is `(key, message)` under `serve.delivery`.
    pub fn check(&self) -> Result<(), (String, String)> {
        let bad = |k: String, m: String| Err((format!("serve.delivery.{k}"), m));
        if self.max_attempts == 0 {
            return bad("max_attempts".into(), "must be at least 1".into());
        }
        for (k, v) in [
            ("first_retry_secs", self.first_retry_secs),
            ("timeout_secs", self.timeout_secs),
            ("poll_secs", self.poll_secs),
        ] {
            if v == 0 {
                return bad(k.into(), "must be at least 1".into());
            }
        }
        if self.max_retry_secs < self.first_retry_secs {
            return bad(
                "max_retry_secs".into(),
                format!(
                    "must be at least first_retry_secs ({})",
                    self.first_retry_secs
                ),
            );
        }
        if self.concurrency == 0 || self.concurrency > 64 {
            return bad("concurrency".into(), "must be 1..=64".into());
        }
        let mut names = std::collections::HashSet::new();
        for (i, w) in self.webhooks.iter().enumerate() {
            if w.name.is_empty() || !names.insert(w.name.as_str()) {
                return bad(
                    format!("webhooks[{i}].name"),
                    format!("must be non-empty and unique, got {:?}", w.name),
                );
            }
            if !(w.url.starts_with("https://") || w.url.starts_with("http://")) {
                return bad(
                    format!("webhooks[{i}].url"),
                    format!("must start with https:// or http://, got {:?}", w.url),
                );
            }
            if w.secret_env.is_empty() {
                return bad(
                    format!("webhooks[{i}].secret_env"),
                    "must name the environment variable holding the signing secret".into(),
                );
            }
        }
        Ok(())
    }

    /// When to try again after `attempts` failed attempts (this one
    /// included), or `None` when they have run out.
    pub fn retry_at(&self, attempts: u32, now: i64) -> Option<i64> {
        if attempts >= self.max_attempts {
            return None;
        }
        let wait = self
            .first_retry_secs
            .saturating_mul(1u64 << attempts.saturating_sub(1).min(30))
            .min(self.max_retry_secs);
        Some(now + wait as i64)
    }
}

/// What can stop delivery.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// A webhook's secret is not in the environment.
    #[error("webhook {webhook:?}: the environment variable {env} (its signing secret) is not set")]
    MissingSecret {
        /// The webhook.
        webhook: String,
        /// The variable.
        env: String,
    },
    /// The HTTP client cannot be built (TLS roots).
    #[error("the webhook client cannot start: {0}")]
    Client(String),
    /// The store.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl churnguard_core::error::HasKind for DeliveryError {
    fn kind(&self) -> churnguard_core::error::ErrorKind {
        match self {
            DeliveryError::MissingSecret { .. } => churnguard_core::error::ErrorKind::BadInput,
            DeliveryError::Client(_) => churnguard_core::error::ErrorKind::Internal,
            DeliveryError::Store(e) => e.kind(),
        }
    }
}

struct Hook {
    name: String,
    url: String,
    secret: Vec<u8>,
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PassReport {
    /// New outbox rows.
    pub queued: u64,
    /// Attempts made.
    pub attempted: u64,
    /// Accepted by the receiver.
    pub delivered: u64,
    /// Failed, to be retried.
    pub retrying: u64,
    /// Failed for the last time.
    pub dead: u64,
}

/// Sends due deliveries; cheap to share.
pub struct Deliverer {
    hooks: Vec<Hook>,
    config: DeliveryConfig,
    client: reqwest::Client,
}

/// The key every attempt of an intervention carries.
pub fn idempotency_key(intervention_id: i64) -> String {
    format!("churnguard-intervention-{intervention_id}")
}

/// The `Churnguard-Signature` header of `body` sent at `t`.
pub fn signature(secret: &[u8], t: i64, body: &[u8]) -> String {
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

impl Deliverer {
    /// A deliverer for the configured webhooks, their secrets read from the
    /// environment now, so a missing one fails at start, not at 3 a.m.
    pub fn new(config: &DeliveryConfig) -> Result<Deliverer, DeliveryError> {
        let hooks = config
            .webhooks
            .iter()
            .map(|w| {
                let secret = std::env::var(&w.secret_env)
                    .ok()
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| DeliveryError::MissingSecret {
                        webhook: w.name.clone(),
                        env: w.secret_env.clone(),
                    })?;
                Ok(Hook {
                    name: w.name.clone(),
                    url: w.url.clone(),
                    secret: secret.into_bytes(),
                })
            })
            .collect::<Result<Vec<_>, DeliveryError>>()?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(config.timeout_secs))
            .user_agent(concat!("churnguard/", env!("CARGO_PKG_VERSION")))
            // A webhook answers where it was configured: a redirect is a
            // failed attempt, never a request to somewhere else (SSRF).
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| DeliveryError::Client(e.to_string()))?;
        Ok(Deliverer {
            hooks,
            config: config.clone(),
            client,
        })
    }

    /// Whether any webhook is configured.
    pub fn is_empty(&self) -> bool {
        self.hooks.is_empty()
    }

    /// One pass: queue what is new, then send every due row (a few at a
    /// time) and record each answer.
    pub async fn run_once(self: &Arc<Self>, store: &Store) -> Result<PassReport, DeliveryError> {
        let mut report = PassReport::default();
        for (h, hook) in self.hooks.iter().enumerate() {
            let now = churnguard_store::now();
            report.queued += store.enqueue_deliveries(&hook.name, now).await?;
            let due = store.due_deliveries(&hook.name, now, 500).await?;
            let mut in_flight = tokio::task::JoinSet::new();
            for (delivery, intervention) in due {
                let lease = now + self.config.timeout_secs as i64 + 5;
                if !store.claim_delivery(&delivery, lease).await? {
                    continue;
                }
                while in_flight.len() >= self.config.concurrency {
                    if let Some(done) = in_flight.join_next().await {
                        tally(&mut report, done)?;
                    }
                }
                let this = Arc::clone(self);
                let store = store.clone();
                in_flight
                    .spawn(async move { this.attempt(&store, h, &delivery, &intervention).await });
            }
            while let Some(done) = in_flight.join_next().await {
                tally(&mut report, done)?;
            }
        }
        Ok(report)
    }

    async fn attempt(
        &self,
        store: &Store,
        hook: usize,
        delivery: &Delivery,
        intervention: &Intervention,
    ) -> Result<Attempt, StoreError> {
        let hook = &self.hooks[hook];
        let body = payload(store, intervention).await?;
        let body = serde_json::to_vec(&body).expect("JSON values serialise");
        let now = churnguard_store::now();
        let sent = self
            .client
            .post(&hook.url)
            .header("content-type", "application/json")
            .header("idempotency-key", idempotency_key(intervention.id))
            .header("churnguard-signature", signature(&hook.secret, now, &body))
            .body(body)
            .send()
            .await;
        let attempt = match sent {
            Ok(resp) if resp.status().is_success() => Attempt::Delivered,
            outcome => {
                let error = match outcome {
                    Ok(resp) => format!("answered {}", resp.status()),
                    Err(e) if e.is_timeout() => {
                        format!("no answer within {} s", self.config.timeout_secs)
                    }
                    Err(e) => format!("cannot send: {}", error_chain(&e)),
                };
                let now = churnguard_store::now();
                Attempt::Failed {
                    error,
                    retry_at: self.config.retry_at(delivery.attempts + 1, now),
                }
            }
        };
        match &attempt {
            Attempt::Delivered => tracing::info!(
                intervention = intervention.id,
                webhook = %hook.name,
                "intervention delivered"
            ),
            Attempt::Failed { error, retry_at } => tracing::warn!(
                intervention = intervention.id,
                webhook = %hook.name,
                %error,
                gave_up = retry_at.is_none(),
                "webhook delivery failed"
            ),
        }
        store
            .record_delivery(
                intervention.id,
                &hook.name,
                &attempt,
                churnguard_store::now(),
            )
            .await?;
        Ok(attempt)
    }
}

fn tally(
    report: &mut PassReport,
    done: Result<Result<Attempt, StoreError>, tokio::task::JoinError>,
) -> Result<(), DeliveryError> {
    report.attempted += 1;
    match done.map_err(|e| DeliveryError::Client(e.to_string()))?? {
        Attempt::Delivered => report.delivered += 1,
        Attempt::Failed {
            retry_at: Some(_), ..
        } => report.retrying += 1,
        Attempt::Failed { retry_at: None, .. } => report.dead += 1,
    }
    Ok(())
}

/// reqwest's error with its causes (a refused connection says so only in
/// its source).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// What staff tools are told about an intervention's customer, from their
/// newest score: shared by the webhook body and the per-owner export.
pub(crate) struct CustomerBrief {
    /// Name, when known.
    pub name: Option<String>,
    /// Health index.
    pub health: Option<f64>,
    /// Band.
    pub band: Option<String>,
    /// Reasons in words, levers first.
    pub reasons: Vec<String>,
}

impl CustomerBrief {
    /// The brief of `customer_id` (empty without a stored score).
    pub(crate) async fn of(store: &Store, customer_id: &str) -> Result<CustomerBrief, StoreError> {
        let latest = store
            .customer_history(customer_id)
            .await?
            .into_iter()
            .next();
        Ok(CustomerBrief {
            name: latest.as_ref().and_then(|s| s.name.clone()),
            health: latest.as_ref().map(|s| s.health),
            band: latest.as_ref().map(|s| s.band.clone()),
            reasons: latest
                .map(|s| {
                    s.reasons
                        .iter()
                        .map(churnguard_core::scoring::reason_text)
                        .collect()
                })
                .unwrap_or_default(),
        })
    }
}

/// The body of an intervention's delivery: what a CRM task or a ticket
/// needs, with names beside ids. The same on every attempt.
async fn payload(store: &Store, i: &Intervention) -> Result<serde_json::Value, StoreError> {
    let brief = CustomerBrief::of(store, &i.customer_id).await?;
    Ok(serde_json::json!({
        "event": "intervention.created",
        "idempotency_key": idempotency_key(i.id),
        "intervention": {
            "id": i.id,
            "playbook": i.playbook,
            "channel": i.channel,
            "owner_role": i.owner_role,
            "owner": i.owner,
            "priority": i.priority,
            "due_at": crate::routes::rfc3339(i.due_at),
            "expected_value": i.expected_value,
        },
        "customer": {
            "id": i.customer_id,
            "name": brief.name,
            "churn_probability": i.churn_probability,
            "clv": i.clv,
            "health": brief.health,
            "band": brief.band,
            "reasons": brief.reasons,
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_stops_at_the_last_attempt() {
        let c = DeliveryConfig {
            max_attempts: 5,
            first_retry_secs: 30,
            max_retry_secs: 100,
            ..DeliveryConfig::default()
        };
        assert_eq!(c.retry_at(1, 0), Some(30));
        assert_eq!(c.retry_at(2, 0), Some(60));
        assert_eq!(c.retry_at(3, 0), Some(100));
        assert_eq!(c.retry_at(4, 0), Some(100));
        assert_eq!(c.retry_at(5, 0), None);
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_time_and_body() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let s = signature(b"Jefe", 0, b"what do ya want for nothing?");
        // The signed text is "0." + body, so compare with an HMAC of that.
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"0.what do ya want for nothing?");
        let want = hex::encode(mac.finalize().into_bytes());
        assert_eq!(s, format!("t=0,v1={want}"));
        // And the HMAC itself is the standard one.
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn bad_settings_name_their_key() {
        let mut c = DeliveryConfig::default();
        c.webhooks.push(WebhookConfig {
            name: "crm".into(),
            url: "ftp://x".into(),
            secret_env: "S".into(),
        });
        assert_eq!(c.check().unwrap_err().0, "serve.delivery.webhooks[0].url");
        c.webhooks[0].url = "https://crm.example".into();
        c.webhooks.push(c.webhooks[0].clone());
        assert_eq!(c.check().unwrap_err().0, "serve.delivery.webhooks[1].name");
    }
}
