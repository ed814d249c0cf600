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
