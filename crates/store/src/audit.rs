//! The append-only, hash-chained audit log. Entry `n` stores the hash of
//! entry `n − 1`; its own hash covers its sequence number, time, actor,
//! action, subject, details and that previous hash. Editing a row breaks its
//! hash; deleting one breaks the sequence and the next row's link; swapping
//! two rows breaks both links.

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{AnyPool, Row};

use super::{q, Result};

/// The hash before the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One audit entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    /// 1, 2, 3, … without gaps.
    pub seq: i64,
    /// When (seconds since 1970-01-01 UTC).
    pub at: i64,
    /// Who: an API key's name, `cli`, `server`.
    pub actor: String,
    /// What, such as `scoring_run.saved`.
    pub action: String,
    /// On what: a run id, an intervention id.
    pub subject: String,
    /// Details as JSON (never customer attribute values).
    pub details: String,
    /// The previous entry's hash.
    pub prev_hash: String,
    /// This entry's hash.
    pub hash: String,
}

/// What `audit verify` found wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditProblem {
    /// The entry's sequence number.
    pub seq: i64,
    /// What is wrong.
    pub message: String,
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The hash of an entry's fields.
pub fn entry_hash(
    seq: i64,
    at: i64,
    actor: &str,
    action: &str,
    subject: &str,
    details: &str,
    prev_hash: &str,
) -> String {
    let mut h = Sha256::new();
    for part in [
        prev_hash,
        &seq.to_string(),
        &at.to_string(),
        actor,
        action,
        subject,
        details,
    ] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

pub(super) async fn entries(pool: &AnyPool) -> Result<Vec<AuditEntry>> {
    let rows = sqlx::query(
        "SELECT seq, at, actor, action, subject, details, prev_hash, hash FROM audit_log ORDER BY seq",
    )
    .fetch_all(pool)
    .await
    .map_err(q("reading the audit log"))?;
    rows.iter()
        .map(|r| {
            let e = || q("reading the audit log");
            Ok(AuditEntry {
                seq: r.try_get(0).map_err(e())?,
                at: r.try_get(1).map_err(e())?,
                actor: r.try_get(2).map_err(e())?,
                action: r.try_get(3).map_err(e())?,
                subject: r.try_get(4).map_err(e())?,
                details: r.try_get(5).map_err(e())?,
                prev_hash: r.try_get(6).map_err(e())?,
                hash: r.try_get(7).map_err(e())?,
            })
        })
        .collect()
}

/// Checks the chain: `Ok(entries)` when whole, else every problem.
pub fn verify(entries: &[AuditEntry]) -> std::result::Result<usize, Vec<AuditProblem>> {
    let mut problems = Vec::new();
    let mut prev_hash = GENESIS.to_string();
    let mut expect_seq = 1;
    for e in entries {
        if e.seq != expect_seq {
            problems.push(AuditProblem {
                seq: e.seq,
                message: format!(
                    "expected entry {expect_seq} here: entries {expect_seq}..{} are missing or out of order",
                    e.seq - 1
                ),
            });
        }
        if e.prev_hash != prev_hash {
            problems.push(AuditProblem {
                seq: e.seq,
                message: "does not link to the entry before it (a row was deleted, inserted or reordered)"
                    .into(),
            });
        }
        let h = entry_hash(
            e.seq,
            e.at,
            &e.actor,
            &e.action,
            &e.subject,
            &e.details,
            &e.prev_hash,
        );
        if h != e.hash {
            problems.push(AuditProblem {
                seq: e.seq,
                message: "its contents do not match its hash (the row was edited)".into(),
            });
        }
        prev_hash = e.hash.clone();
        expect_seq = e.seq + 1;
    }
    if problems.is_empty() {
        Ok(entries.len())
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<AuditEntry> {
        let mut out = Vec::new();
        let mut prev = GENESIS.to_string();
        for seq in 1..=n {
            let details = format!("{{\"k\":{seq}}}");
            let hash = entry_hash(seq, 100 + seq, "cli", "test", "s", &details, &prev);
            out.push(AuditEntry {
                seq,
                at: 100 + seq,
                actor: "cli".into(),
                action: "test".into(),
                subject: "s".into(),
                details,
                prev_hash: prev.clone(),
                hash: hash.clone(),
            });
            prev = hash;
        }
        out
    }

    #[test]
    fn a_whole_chain_verifies() {
        assert_eq!(verify(&chain(5)), Ok(5));
        assert_eq!(verify(&[]), Ok(0));
    }

    #[test]
    fn an_edited_row_is_found() {
        let mut c = chain(5);
        c[2].details = "{\"k\":99}".into();
        let p = verify(&c).unwrap_err();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].seq, 3);
        assert!(p[0].message.contains("edited"));
    }

    #[test]
    fn a_deleted_row_is_found() {
        let mut c = chain(5);
        c.remove(1);
        let p = verify(&c).unwrap_err();
        assert!(p.iter().all(|p| p.seq == 3), "{p:?}");
        assert!(p.iter().any(|p| p.message.contains("missing")));
        // Deleting the newest rows breaks no link: a chain alone cannot see
        // truncation. `churnguard audit verify` prints the head (sequence
        // and hash) so that it can be recorded elsewhere and compared.
    }

    #[test]
    fn a_reordered_pair_is_found() {
        let mut c = chain(5);
        c.swap(1, 2);
        // Renumber so that sequence numbers look contiguous.
        c[1].seq = 2;
        c[2].seq = 3;
        let p = verify(&c).unwrap_err();
        assert!(p.iter().any(|p| p.message.contains("link")), "{p:?}");
    }
}
