//! Answers of state-changing requests by their `Idempotency-Key`: the first
//! request with a key claims it, does the work and stores its answer; a
//! retry with the same key and the same request gets that answer back and
//! changes nothing. The claim is one `INSERT … ON CONFLICT DO NOTHING`, so
//! of any number of concurrent retries, across replicas sharing a
//! PostgreSQL store, exactly one does the work.

use sqlx::Row;

use super::{q, Result, Store};

/// What a claim on a key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyClaim {
    /// The key was free and is now this request's: do the work, then
    /// [`Store::finish_idempotency_key`] (or release it on a server error).
    Claimed,
    /// A request with this key is still being carried out.
    InProgress,
    /// The key's request was answered: return this answer again.
    Answered {
        /// HTTP status of the first answer.
        status: u16,
        /// Its body.
        body: String,
    },
    /// The key was used for a different request (another body or route).
    KeyReused,
}

/// How long answers and claims are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdempotencyRetention {
    /// Seconds an answer is kept for retries (then the key may be reused).
    pub answers_secs: i64,
    /// Seconds after which a claim still in progress is taken to be
    /// abandoned (its process died) and may be claimed again.
    pub abandoned_secs: i64,
}

impl Default for IdempotencyRetention {
    fn default() -> Self {
        IdempotencyRetention {
            answers_secs: 24 * 3600,
            abandoned_secs: 3600,
        }
    }
}

impl Store {
    /// Claims `key` for `caller`'s request (identified by `request_hash`),
    /// or says what an earlier request with the key left.
    pub async fn claim_idempotency_key(
        &self,
        caller: &str,
        key: &str,
        request_hash: &str,
        now: i64,
        retention: IdempotencyRetention,
    ) -> Result<IdempotencyClaim> {
        self.tracked(async {
            let mut tx = self.begin_write().await?;
            sqlx::query(
                "DELETE FROM idempotency_keys WHERE (status IS NOT NULL AND created_at < $1) OR (status IS NULL AND created_at < $2)",
            )
            .bind(now - retention.answers_secs)
            .bind(now - retention.abandoned_secs)
            .execute(&mut *tx)
            .await
            .map_err(q("expiring idempotency keys"))?;
            let inserted = sqlx::query(
                "INSERT INTO idempotency_keys (caller, key, request_hash, status, body, created_at) VALUES ($1, $2, $3, NULL, NULL, $4) ON CONFLICT (caller, key) DO NOTHING",
            )
            .bind(caller)
            .bind(key)
            .bind(request_hash)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(q("claiming an idempotency key"))?
            .rows_affected();
            tx.commit()
                .await
                .map_err(q("committing an idempotency claim"))?;
            if inserted == 1 {
                return Ok(IdempotencyClaim::Claimed);
            }
            // Taken: what the earlier request left (a claim released or
            // expired in between reads as in progress: the caller looks again).
            Ok(self
                .idempotency_key(caller, key, request_hash)
                .await?
                .unwrap_or(IdempotencyClaim::InProgress))
        })
        .await
    }

    /// What a request with `key` left, without claiming it (`None`: the key
    /// is free). Waiting retries poll this: a read, not a write.
    pub async fn idempotency_key(
        &self,
        caller: &str,
        key: &str,
        request_hash: &str,
    ) -> Result<Option<IdempotencyClaim>> {
        let row = sqlx::query(
            "SELECT request_hash, status, body FROM idempotency_keys WHERE caller = $1 AND key = $2",
        )
        .bind(caller)
        .bind(key)
        .fetch_optional(&self.pool)
        .await
        .map_err(q("reading an idempotency key"))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let hash: String = row.try_get(0).map_err(q("reading an idempotency key"))?;
        let status: Option<i64> = row.try_get(1).map_err(q("reading an idempotency key"))?;
        let body: Option<String> = row.try_get(2).map_err(q("reading an idempotency key"))?;
        Ok(Some(match status {
            _ if hash != request_hash => IdempotencyClaim::KeyReused,
            None => IdempotencyClaim::InProgress,
            Some(status) => IdempotencyClaim::Answered {
                status: u16::try_from(status).unwrap_or(500),
                body: body.unwrap_or_default(),
            },
        }))
    }
    /// Stores the answer of a claimed key, for its retries.
    pub async fn finish_idempotency_key(
        &self,
        caller: &str,
        key: &str,
        status: u16,
        body: &str,
    ) -> Result<()> {
        self.tracked(async {
            sqlx::query(
                "UPDATE idempotency_keys SET status = $1, body = $2 WHERE caller = $3 AND key = $4",
            )
            .bind(i64::from(status))
            .bind(body)
            .bind(caller)
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(q("storing an idempotent answer"))?;
            Ok(())
        })
        .await
    }

    /// Frees a claimed key whose request failed in a way a retry may not
    /// (a server error), so the retry is carried out.
    pub async fn release_idempotency_key(&self, caller: &str, key: &str) -> Result<()> {
        self.tracked(async {
            sqlx::query(
                "DELETE FROM idempotency_keys WHERE caller = $1 AND key = $2 AND status IS NULL",
            )
            .bind(caller)
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(q("releasing an idempotency key"))?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("s.db").display());
        let s = Store::connect(&url).await.unwrap();
        (dir, s)
    }

    #[tokio::test]
    async fn a_key_is_claimed_once_answered_and_replayed() {
        let (_d, s) = store().await;
        let r = IdempotencyRetention::default();
        let claim = |hash: &'static str, now| {
            let s = s.clone();
            async move {
                s.claim_idempotency_key("admin", "k1", hash, now, r)
                    .await
                    .unwrap()
            }
        };
        assert_eq!(claim("h", 100).await, IdempotencyClaim::Claimed);
        assert_eq!(claim("h", 101).await, IdempotencyClaim::InProgress);
        assert_eq!(claim("other", 101).await, IdempotencyClaim::KeyReused);
        s.finish_idempotency_key("admin", "k1", 201, "{\"a\":1}")
            .await
            .unwrap();
        assert_eq!(
            claim("h", 102).await,
            IdempotencyClaim::Answered {
                status: 201,
                body: "{\"a\":1}".into()
            }
        );
        // Another caller's key of the same name is its own.
        assert_eq!(
            s.claim_idempotency_key("reader", "k1", "h", 102, r)
                .await
                .unwrap(),
            IdempotencyClaim::Claimed
        );
        // After the retention, the key is free again.
        assert_eq!(
            claim("other", 100 + r.answers_secs + 1).await,
            IdempotencyClaim::Claimed
        );
    }

    #[tokio::test]
    async fn a_released_or_abandoned_claim_can_be_claimed_again() {
        let (_d, s) = store().await;
        let r = IdempotencyRetention::default();
        assert_eq!(
            s.claim_idempotency_key("a", "k", "h", 10, r).await.unwrap(),
            IdempotencyClaim::Claimed
        );
        s.release_idempotency_key("a", "k").await.unwrap();
        assert_eq!(
            s.claim_idempotency_key("a", "k", "h", 11, r).await.unwrap(),
            IdempotencyClaim::Claimed
        );
        assert_eq!(
            s.claim_idempotency_key("a", "k", "h", 11 + r.abandoned_secs + 1, r)
                .await
                .unwrap(),
            IdempotencyClaim::Claimed
        );
    }
}
