//! What staff do to an intervention, one function per action, shared by the
//! API and the web app so both accept and refuse exactly the same input.

use churnguard_core::interventions::Intervention;
use churnguard_store::{OutcomeInput, StaffOutcome, Store};

use super::{Result, ServiceError};

/// The longest note an outcome may carry, in bytes.
pub const MAX_NOTE_BYTES: usize = 4000;

/// Records what staff saw happen with an intervention; an open one becomes
/// `done`. A note over [`MAX_NOTE_BYTES`] is refused (never truncated), and
/// a blank note is no note.
pub async fn record_outcome(
    store: &Store,
    id: i64,
    outcome: StaffOutcome,
    note: Option<String>,
    actor: &str,
) -> Result<Intervention> {
    let note = note.filter(|n| !n.trim().is_empty());
    if let Some(n) = &note {
        if n.len() > MAX_NOTE_BYTES {
            return Err(ServiceError::BadField {
                field: "note",
                code: "too_long",
                message: format!("note: at most {MAX_NOTE_BYTES} bytes, got {}", n.len()),
            });
        }
    }
    Ok(store
        .record_outcome(
            id,
            &OutcomeInput { outcome, note },
            actor,
            chrono::Utc::now().timestamp(),
        )
        .await?)
}

/// Closes an open intervention as done, without an outcome.
pub async fn mark_done(store: &Store, id: i64, actor: &str) -> Result<Intervention> {
    Ok(store
        .mark_done(id, actor, chrono::Utc::now().timestamp())
        .await?)
}

/// The longest reason an override may carry, in bytes.
pub const MAX_REASON_BYTES: usize = 1000;

/// The furthest an override may reach, in days: a standing exception
/// belongs in the data or the policy, not in an override.
pub const MAX_OVERRIDE_DAYS: i64 = 366;

/// What staff ask an override to do.
#[derive(Debug, Clone, PartialEq)]
pub struct OverrideRequest {
    /// The band to show instead of the computed one (`green`, `yellow`, `red`).
    pub band: Option<String>,
    /// No new interventions while it lasts.
    pub suppress_interventions: bool,
    /// Why (required: it is shown beside the band and kept in the audit log).
    pub reason: String,
    /// The last day it applies (it lapses at the end of that day, UTC).
    pub expires_on: chrono::NaiveDate,
}

/// Sets an override on a customer who has a stored score. Checks each field
/// and names the one that is wrong; never trims or clamps silently.
pub async fn set_override(
    store: &Store,
    customer_id: &str,
    req: OverrideRequest,
    actor: &str,
    now: i64,
) -> Result<churnguard_store::Override> {
    if let Some(band) = &req.band {
        band.parse::<churnguard_core::health::Band>()
            .map_err(|message| ServiceError::BadField {
                field: "band",
                code: "bad_band",
                message,
            })?;
    }
    if req.band.is_none() && !req.suppress_interventions {
        return Err(ServiceError::BadField {
            field: "band",
            code: "nothing_to_override",
            message: "set a band, suppress interventions, or both".into(),
        });
    }
    let reason = req.reason.trim().to_string();
    if reason.is_empty() {
        return Err(ServiceError::BadField {
            field: "reason",
            code: "required",
            message: "reason: say why the model is overridden (kept in the audit log)".into(),
        });
    }
    if reason.len() > MAX_REASON_BYTES {
        return Err(ServiceError::BadField {
            field: "reason",
            code: "too_long",
            message: format!(
                "reason: at most {MAX_REASON_BYTES} bytes, got {}",
                reason.len()
            ),
        });
    }
    let expires_at = req
        .expires_on
        .succ_opt()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp())
        .unwrap_or(i64::MAX);
    if expires_at <= now {
        return Err(ServiceError::BadField {
            field: "expires_on",
            code: "in_the_past",
            message: format!("expires_on {}: must be today or later", req.expires_on),
        });
    }
    if expires_at - now > MAX_OVERRIDE_DAYS * 86_400 {
        return Err(ServiceError::BadField {
            field: "expires_on",
            code: "too_far",
            message: format!(
                "expires_on {}: at most {MAX_OVERRIDE_DAYS} days ahead",
                req.expires_on
            ),
        });
    }
    if store.customer_history(customer_id).await?.is_empty() {
        return Err(churnguard_store::StoreError::NotFound {
            what: "customer",
            id: customer_id.to_string(),
        }
        .into());
    }
    Ok(store
        .create_override(
            &churnguard_store::NewOverride {
                customer_id: customer_id.to_string(),
                band: req.band,
                suppress: req.suppress_interventions,
                reason,
                expires_at,
            },
            actor,
            now,
        )
        .await?)
}
