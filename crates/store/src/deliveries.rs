//! The delivery outbox: which interventions have reached which webhook. A
//! deliverer (the server's background task or `churnguard deliver`) first
//! [enqueues](Store::enqueue_deliveries) every treated, open intervention a
//! webhook has not seen, then [claims](Store::claim_delivery) due rows one at
//! a time, sends them, and [records](Store::record_delivery) the answer.
//! Rows are never deleted: `delivered` and `dead` rows are the history an
//! admin reads, and a dead row goes back to `pending` only by
//! [`Store::retry_delivery`] (audit-logged).

use sqlx::{AssertSqlSafe, Row};

use churnguard_core::interventions::Intervention;

use super::statements::WriteStatements;
use super::{q, records, Result, Store, StoreError};

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Not yet accepted by the receiver; retried until the attempts run out.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Every attempt failed: waits for an admin.
    Dead,
}

impl DeliveryStatus {
    /// The status's name in the store and in answers.
    pub fn name(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Dead => "dead",
        }
    }

    fn parse(s: &str) -> Result<DeliveryStatus> {
        match s {
            "pending" => Ok(DeliveryStatus::Pending),
            "delivered" => Ok(DeliveryStatus::Delivered),
            "dead" => Ok(DeliveryStatus::Dead),
            other => Err(StoreError::Corrupt {
                table: "deliveries",
                message: format!("unknown status {other:?}"),
            }),
        }
    }
}

/// One intervention's delivery to one webhook.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Delivery {
    /// The intervention.
    pub intervention_id: i64,
    /// The webhook's name (from the config).
    pub webhook: String,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// Attempts made.
    pub attempts: u32,
    /// Unix seconds of the next attempt (pending rows).
    pub next_attempt_at: i64,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// Unix seconds the receiver accepted it.
    pub delivered_at: Option<i64>,
    /// Unix seconds the row was made.
    pub created_at: i64,
}

/// Read by position; aliased so that a join with `interventions` leaves
/// that table's `status` and `created_at` unambiguous by name.
const DELIVERY_COLUMNS: &str = "d.intervention_id AS d_intervention_id, d.webhook AS d_webhook, d.status AS d_status, d.attempts AS d_attempts, d.next_attempt_at AS d_next_attempt_at, d.last_error AS d_last_error, d.delivered_at AS d_delivered_at, d.created_at AS d_created_at";

fn delivery_from_row(r: &sqlx::any::AnyRow) -> Result<Delivery> {
    let get = |e| q("reading a delivery")(e);
    let status: String = r.try_get(2).map_err(get)?;
    let attempts: i64 = r.try_get(3).map_err(get)?;
    Ok(Delivery {
        intervention_id: r.try_get(0).map_err(get)?,
        webhook: r.try_get(1).map_err(get)?,
        status: DeliveryStatus::parse(&status)?,
        attempts: attempts.max(0) as u32,
        next_attempt_at: r.try_get(4).map_err(get)?,
        last_error: r.try_get(5).map_err(get)?,
        delivered_at: r.try_get(6).map_err(get)?,
        created_at: r.try_get(7).map_err(get)?,
    })
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Attempt {
    /// The receiver answered 2xx.
    Delivered,
    /// It failed; try again at `retry_at` (Unix seconds), or give up when
    /// `None`.
    Failed {
        /// Why, for the admin list.
        error: String,
        /// When to try again; `None` marks the row dead.
        retry_at: Option<i64>,
    },
}

impl Store {
    /// Makes a pending row for `webhook` for every treated, open
    /// intervention it has no row for; returns how many. Control-arm
    /// interventions are never delivered: no one acts on them.
    pub async fn enqueue_deliveries(&self, webhook: &str, now: i64) -> Result<u64> {
        self.tracked(async {
            let done = sqlx::query(
                "INSERT INTO deliveries (intervention_id, webhook, status, attempts, next_attempt_at, created_at) \
                 SELECT i.id, $1, 'pending', 0, $2, $2 FROM interventions i \
                 WHERE i.status = 'open' AND i.arm = 'treated' AND NOT EXISTS \
                 (SELECT 1 FROM deliveries d WHERE d.intervention_id = i.id AND d.webhook = $1)",
            )
            .bind(webhook)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(q("queueing deliveries"))?;
            Ok(done.rows_affected())
        })
        .await
    }

    /// Pending rows of `webhook` due at `now`, oldest first, with their
    /// interventions; at most `limit`.
    pub async fn due_deliveries(
        &self,
        webhook: &str,
        now: i64,
        limit: usize,
    ) -> Result<Vec<(Delivery, Intervention)>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {DELIVERY_COLUMNS}, {} FROM deliveries d JOIN interventions i ON i.id = d.intervention_id \
             WHERE d.webhook = $1 AND d.status = 'pending' AND d.next_attempt_at <= $2 \
             ORDER BY d.next_attempt_at, d.intervention_id LIMIT $3",
            records::INTERVENTION_COLUMNS
                .split(", ")
                .map(|c| format!("i.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        )))
        .bind(webhook)
        .bind(now)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(q("reading due deliveries"))?;
        rows.iter()
            .map(|r| Ok((delivery_from_row(r)?, records::intervention_from_row(r)?)))
            .collect()
    }

    /// Takes a due row for one attempt: moves its next attempt to `lease_until`
    /// if nobody else has since it was read. `false`: another deliverer has it.
    pub async fn claim_delivery(&self, d: &Delivery, lease_until: i64) -> Result<bool> {
        self.tracked(async {
            let done = sqlx::query(
                "UPDATE deliveries SET next_attempt_at = $1 \
                 WHERE intervention_id = $2 AND webhook = $3 AND status = 'pending' AND next_attempt_at = $4",
            )
            .bind(lease_until)
            .bind(d.intervention_id)
            .bind(&d.webhook)
            .bind(d.next_attempt_at)
            .execute(&self.pool)
            .await
            .map_err(q("claiming a delivery"))?;
            Ok(done.rows_affected() == 1)
        })
        .await
    }

    /// Records an attempt's end. A row that dies is audit-logged.
    pub async fn record_delivery(
        &self,
        intervention_id: i64,
        webhook: &str,
        attempt: &Attempt,
        now: i64,
    ) -> Result<()> {
        self.tracked(async {
            let mut tx = self.begin_write().await?;
            match attempt {
                Attempt::Delivered => {
                    sqlx::query(
                        "UPDATE deliveries SET status = 'delivered', attempts = attempts + 1, delivered_at = $1, last_error = NULL \
                         WHERE intervention_id = $2 AND webhook = $3",
                    )
                    .bind(now)
                    .bind(intervention_id)
                    .bind(webhook)
                    .execute(&mut *tx)
                    .await
                    .map_err(q("recording a delivery"))?;
                }
                Attempt::Failed { error, retry_at } => {
                    let status = if retry_at.is_some() { "pending" } else { "dead" };
                    sqlx::query(
                        "UPDATE deliveries SET status = $1, attempts = attempts + 1, next_attempt_at = $2, last_error = $3 \
                         WHERE intervention_id = $4 AND webhook = $5",
                    )
                    .bind(status)
                    .bind(retry_at.unwrap_or(now))
                    .bind(error)
                    .bind(intervention_id)
                    .bind(webhook)
                    .execute(&mut *tx)
                    .await
                    .map_err(q("recording a failed delivery"))?;
                    if retry_at.is_none() {
                        let details = serde_json::json!({ "webhook": webhook, "error": error });
                        tx.append_audit(self.backend, self.audit_key(),
                            "deliverer",
                            "delivery.dead",
                            &intervention_id.to_string(),
                            &details,
                        )
                        .await?;
                    }
                }
            }
            tx.commit().await.map_err(q("committing a delivery"))?;
            Ok(())
        })
        .await
    }

    /// Deliveries in a status (every status when `None`), newest first; at most `limit`.
    pub async fn deliveries(
        &self,
        status: Option<DeliveryStatus>,
        limit: usize,
    ) -> Result<Vec<Delivery>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries d WHERE ($1 = '' OR d.status = $1) \
             ORDER BY d.created_at DESC, d.intervention_id DESC LIMIT $2"
        )))
        .bind(status.map_or("", DeliveryStatus::name))
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(q("reading deliveries"))?;
        rows.iter().map(delivery_from_row).collect()
    }

    /// The deliveries of these interventions (to every webhook).
    pub async fn deliveries_of(&self, intervention_ids: &[i64]) -> Result<Vec<Delivery>> {
        let mut out = Vec::new();
        for chunk in intervention_ids.chunks(500) {
            let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT {DELIVERY_COLUMNS} FROM deliveries d WHERE d.intervention_id IN ({}) ORDER BY d.intervention_id, d.webhook",
                marks.join(", ")
            );
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for id in chunk {
                query = query.bind(*id);
            }
            let rows = query
                .fetch_all(&self.pool)
                .await
                .map_err(q("reading deliveries"))?;
            for r in &rows {
                out.push(delivery_from_row(r)?);
            }
        }
        Ok(out)
    }

    /// Puts a dead delivery back in the queue for an immediate attempt, with
    /// its attempts reset; audit-logged under `actor`.
    pub async fn retry_delivery(
        &self,
        intervention_id: i64,
        webhook: &str,
        actor: &str,
        now: i64,
    ) -> Result<()> {
        self.tracked(async {
            let mut tx = self.begin_write().await?;
            let done = sqlx::query(
                "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = $1 \
                 WHERE intervention_id = $2 AND webhook = $3 AND status = 'dead'",
            )
            .bind(now)
            .bind(intervention_id)
            .bind(webhook)
            .execute(&mut *tx)
            .await
            .map_err(q("retrying a delivery"))?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound {
                    what: "dead delivery",
                    id: format!("{intervention_id} to {webhook}"),
                });
            }
            let details = serde_json::json!({ "webhook": webhook });
            tx.append_audit(
                self.backend,
                self.audit_key(),
                actor,
                "delivery.retried",
                &intervention_id.to_string(),
                &details,
            )
            .await?;
            tx.commit().await.map_err(q("committing a retry"))?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_and_a_stranger_is_corruption() {
        for s in [
            DeliveryStatus::Pending,
            DeliveryStatus::Delivered,
            DeliveryStatus::Dead,
        ] {
            assert_eq!(DeliveryStatus::parse(s.name()).unwrap(), s);
        }
        assert!(DeliveryStatus::parse("lost").is_err());
    }
}
