//! The append-only, hash-chained audit log. Entry `n` stores the hash of
//! entry `n − 1`; its own hash covers its sequence number, time, actor,
//! action, subject, details and that previous hash. Editing a row breaks its
//! hash; deleting one breaks the sequence and the next row's link; swapping
//! two rows breaks both links.
//!
//! **Keyed.** With an audit key (`CHURNGUARD_AUDIT_KEY`, set at the binary's
//! edge with [`crate::Store::with_audit_key`]), an entry's hash is
//! HMAC-SHA256 under the key, written `k1:<hex>`: someone who can write the
//! database but lacks the key cannot rewrite the whole chain so that it
//! verifies. Entries written before a key was set stay plain and are counted;
//! a plain entry after a keyed one is a problem. **Head.** `churnguard audit
//! head` exports the newest entry's sequence and hash; `audit verify --head`
//! checks the chain still holds it, so a cut tail (newest rows deleted) or a
//! rewrite from any point is found.

use hmac::{KeyInit, Mac};
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

/// The prefix of a keyed entry's hash.
pub const KEYED: &str = "k1:";

/// The hash of an entry's fields: plain SHA-256 hex, or `k1:` and the
/// HMAC-SHA256 hex under `key`.
#[allow(clippy::too_many_arguments)]
pub fn entry_hash(
    seq: i64,
    at: i64,
    actor: &str,
    action: &str,
    subject: &str,
    details: &str,
    prev_hash: &str,
    key: Option<&[u8]>,
) -> String {
    let seq = seq.to_string();
    let at = at.to_string();
    let parts = [prev_hash, &seq, &at, actor, action, subject, details];
    match key {
        None => {
            let mut h = Sha256::new();
            for part in parts {
                h.update((part.len() as u64).to_le_bytes());
                h.update(part.as_bytes());
            }
            hex::encode(h.finalize())
        }
        Some(key) => {
            let mut h =
                hmac::Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
            for part in parts {
                h.update(&(part.len() as u64).to_le_bytes());
                h.update(part.as_bytes());
            }
            format!("{KEYED}{}", hex::encode(h.finalize().into_bytes()))
        }
    }
}

/// The newest entry, exported to be checked later (`audit head`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct AuditHead {
    /// Its sequence number.
    pub seq: i64,
    /// Its hash.
    pub hash: String,
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

/// Checks the chain: `Ok(entries)` when whole, else every problem. `key`
/// checks keyed entries (without it, a keyed entry is a problem); `head`, an
/// exported head, must still be in the chain.
pub fn verify(
    entries: &[AuditEntry],
    key: Option<&[u8]>,
    head: Option<&AuditHead>,
) -> std::result::Result<usize, Vec<AuditProblem>> {
    let mut problems = Vec::new();
    let mut prev_hash = GENESIS.to_string();
    let mut expect_seq = 1;
    let mut seen_keyed = false;
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
        let keyed = e.hash.starts_with(KEYED);
        if keyed {
            seen_keyed = true;
        } else if seen_keyed {
            problems.push(AuditProblem {
                seq: e.seq,
                message: "an unkeyed entry after keyed ones (written without the key, or forged)"
                    .into(),
            });
        }
        match (keyed, key) {
            (true, None) => problems.push(AuditProblem {
                seq: e.seq,
                message: "a keyed entry, and no key to check it (set CHURNGUARD_AUDIT_KEY)".into(),
            }),
            (true, Some(_)) | (false, _) => {
                let h = entry_hash(
                    e.seq,
                    e.at,
                    &e.actor,
                    &e.action,
                    &e.subject,
                    &e.details,
                    &e.prev_hash,
                    if keyed { key } else { None },
                );
                if h != e.hash {
                    problems.push(AuditProblem {
                        seq: e.seq,
                        message: if keyed {
                            "its contents do not match its keyed hash (edited, or hashed with another key)".into()
                        } else {
                            "its contents do not match its hash (the row was edited)".into()
                        },
                    });
                }
            }
        }
        prev_hash = e.hash.clone();
        expect_seq = e.seq + 1;
    }
    if let Some(head) = head {
        match entries.iter().find(|e| e.seq == head.seq) {
            None => problems.push(AuditProblem {
                seq: head.seq,
                message: format!(
                    "the exported head (entry {}) is gone: the chain ends at {} (its tail was cut)",
                    head.seq,
                    entries.last().map_or(0, |e| e.seq)
                ),
            }),
            Some(e) if e.hash != head.hash => problems.push(AuditProblem {
                seq: head.seq,
                message:
                    "its hash differs from the exported head's: the chain was rewritten up to here"
                        .into(),
            }),
            Some(_) => {}
        }
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
        keyed_chain(n, None)
    }

    fn keyed_chain(n: i64, key: Option<&[u8]>) -> Vec<AuditEntry> {
        let mut out = Vec::new();
        let mut prev = GENESIS.to_string();
        for seq in 1..=n {
            let details = format!("{{\"k\":{seq}}}");
            let hash = entry_hash(seq, 100 + seq, "cli", "test", "s", &details, &prev, key);
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
        assert_eq!(verify(&chain(5), None, None), Ok(5));
        assert_eq!(verify(&[], None, None), Ok(0));
    }

    #[test]
    fn an_edited_row_is_found() {
        let mut c = chain(5);
        c[2].details = "{\"k\":99}".into();
        let p = verify(&c, None, None).unwrap_err();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].seq, 3);
        assert!(p[0].message.contains("edited"));
    }

    #[test]
    fn a_deleted_row_is_found() {
        let mut c = chain(5);
        c.remove(1);
        let p = verify(&c, None, None).unwrap_err();
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
        let p = verify(&c, None, None).unwrap_err();
        assert!(p.iter().any(|p| p.message.contains("link")), "{p:?}");
    }

    #[test]
    fn a_keyed_chain_needs_its_key_and_a_rewrite_without_it_is_found() {
        let key = b"audit-secret".as_slice();
        let c = keyed_chain(5, Some(key));
        assert!(c.iter().all(|e| e.hash.starts_with(KEYED)));
        assert_eq!(verify(&c, Some(key), None), Ok(5));
        // Without the key, or with another, it cannot be checked.
        assert!(verify(&c, None, None).is_err());
        assert!(verify(&c, Some(b"other".as_slice()), None).is_err());
        // Someone without the key rewrites the whole chain (plain hashes,
        // an edited entry): it verifies as a chain, but not against the
        // head exported earlier.
        let head = AuditHead {
            seq: 5,
            hash: c[4].hash.clone(),
        };
        let mut forged = chain(5);
        forged[1].details = "{\"k\":99}".into();
        let forged = {
            // Re-hash from the edit on, as a forger would.
            let mut prev = forged[0].hash.clone();
            for e in forged.iter_mut().skip(1) {
                e.prev_hash = prev.clone();
                e.hash = entry_hash(
                    e.seq, e.at, &e.actor, &e.action, &e.subject, &e.details, &prev, None,
                );
                prev = e.hash.clone();
            }
            forged
        };
        assert_eq!(verify(&forged, Some(key), None), Ok(5));
        let p = verify(&forged, Some(key), Some(&head)).unwrap_err();
        assert!(p[0].message.contains("rewritten"), "{p:?}");
        // Re-hashed with a guessed key instead: every entry fails.
        let guessed = keyed_chain(5, Some(b"guess".as_slice()));
        assert_eq!(verify(&guessed, Some(key), None).unwrap_err().len(), 5);
        // A plain entry appended after keyed ones is found.
        let mut mixed = c.clone();
        let last = mixed[4].hash.clone();
        mixed.push(AuditEntry {
            seq: 6,
            at: 106,
            actor: "x".into(),
            action: "test".into(),
            subject: "s".into(),
            details: "{}".into(),
            prev_hash: last.clone(),
            hash: entry_hash(6, 106, "x", "test", "s", "{}", &last, None),
        });
        let p = verify(&mixed, Some(key), None).unwrap_err();
        assert!(p[0].message.contains("unkeyed entry after keyed"), "{p:?}");
    }

    #[test]
    fn a_cut_tail_is_found_against_the_exported_head() {
        let c = chain(5);
        let head = AuditHead {
            seq: 5,
            hash: c[4].hash.clone(),
        };
        assert_eq!(verify(&c, None, Some(&head)), Ok(5));
        let cut = &c[..3];
        assert_eq!(
            verify(cut, None, None),
            Ok(3),
            "a chain alone cannot see it"
        );
        let p = verify(cut, None, Some(&head)).unwrap_err();
        assert!(p[0].message.contains("tail was cut"), "{p:?}");
    }
}
