//! Overrides staff set on a customer: a health band they know better than
//! the model, or no new interventions, each with a reason and an expiry.
//! Every change is audit-logged in the same transaction. Scoring runs read
//! [`Store::active_overrides`] and keep the computed band beside the shown one,
//! so an override is never silently undone by the next run, and lapses by
//! itself when it expires.

use std::collections::HashMap;

use sqlx::{AssertSqlSafe, Row};

use super::statements::WriteStatements;
use super::{q, Result, Store, StoreError};

/// An override as stored.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Override {
    /// Its id.
    pub id: i64,
    /// The customer.
    pub customer_id: String,
    /// The band staff set (`green`, `yellow`, `red`), if they set one.
    pub band: Option<String>,
    /// No new interventions for the customer while it lasts.
    pub suppress: bool,
    /// Why (shown beside the band, kept in the audit log).
    pub reason: String,
    /// Who set it.
    pub actor: String,
    /// When (Unix seconds).
    pub created_at: i64,
    /// When it lapses (Unix seconds).
    pub expires_at: i64,
    /// When it was ended early, if it was.
    pub revoked_at: Option<i64>,
    /// Who ended it early.
    pub revoked_by: Option<String>,
}

impl Override {
    /// Whether it applies at `now`.
    pub fn is_active(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at > now
    }
}

/// What staff ask for.
#[derive(Debug, Clone, PartialEq)]
pub struct NewOverride {
    /// The customer.
    pub customer_id: String,
    /// The band to show, if any.
    pub band: Option<String>,
    /// Suppress new interventions.
    pub suppress: bool,
    /// Why (required).
    pub reason: String,
    /// When it lapses (Unix seconds, after now).
    pub expires_at: i64,
}

const COLUMNS: &str =
    "id, customer_id, band, suppress, reason, actor, created_at, expires_at, revoked_at, revoked_by";

fn from_row(r: &sqlx::any::AnyRow) -> Result<Override> {
    let get = |e| q("reading an override")(e);
    let suppress: i64 = r.try_get(3).map_err(get)?;
    Ok(Override {
        id: r.try_get(0).map_err(get)?,
        customer_id: r.try_get(1).map_err(get)?,
        band: r.try_get(2).map_err(get)?,
        suppress: suppress != 0,
        reason: r.try_get(4).map_err(get)?,
        actor: r.try_get(5).map_err(get)?,
        created_at: r.try_get(6).map_err(get)?,
        expires_at: r.try_get(7).map_err(get)?,
        revoked_at: r.try_get(8).map_err(get)?,
        revoked_by: r.try_get(9).map_err(get)?,
    })
}

impl Store {
    /// Saves an override and its audit entry; returns it with its id.
    pub async fn create_override(
        &self,
        new: &NewOverride,
        actor: &str,
        now: i64,
    ) -> Result<Override> {
        self.tracked(async {
            let mut tx = self.begin_write().await?;
            let row = sqlx::query(
                "INSERT INTO overrides (customer_id, band, suppress, reason, actor, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            )
            .bind(&new.customer_id)
            .bind(&new.band)
            .bind(i64::from(new.suppress))
            .bind(&new.reason)
            .bind(actor)
            .bind(now)
            .bind(new.expires_at)
            .fetch_one(&mut *tx)
            .await
            .map_err(q("saving an override"))?;
            let id: i64 = row.try_get(0).map_err(q("saving an override"))?;
            let details = serde_json::json!({
                "override": id,
                "band": new.band,
                "suppress": new.suppress,
                "reason": new.reason,
                "expires_at": new.expires_at,
            });
            tx.append_audit(self.backend, self.audit_key(),
                actor,
                "override.created",
                &new.customer_id,
                &details,
            )
            .await?;
            tx.commit().await.map_err(q("committing an override"))?;
            Ok(Override {
                id,
                customer_id: new.customer_id.clone(),
                band: new.band.clone(),
                suppress: new.suppress,
                reason: new.reason.clone(),
                actor: actor.to_string(),
                created_at: now,
                expires_at: new.expires_at,
                revoked_at: None,
                revoked_by: None,
            })
        })
        .await
    }

    /// The override in force per customer at `now` (the newest, when
    /// several are).
    pub async fn active_overrides(&self, now: i64) -> Result<HashMap<String, Override>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM overrides WHERE revoked_at IS NULL AND expires_at > $1 ORDER BY id"
        )))
        .bind(now)
        .fetch_all(&self.pool)
        .await
        .map_err(q("reading overrides"))?;
        let mut out = HashMap::new();
        for r in &rows {
            let o = from_row(r)?;
            out.insert(o.customer_id.clone(), o);
        }
        Ok(out)
    }

    /// One override by id.
    pub async fn override_by_id(&self, id: i64) -> Result<Option<Override>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM overrides WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(q("reading an override"))?;
        row.as_ref().map(from_row).transpose()
    }

    /// A customer's overrides, newest first (ended ones too).
    pub async fn customer_overrides(&self, customer_id: &str) -> Result<Vec<Override>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM overrides WHERE customer_id = $1 ORDER BY id DESC"
        )))
        .bind(customer_id)
        .fetch_all(&self.pool)
        .await
        .map_err(q("reading a customer's overrides"))?;
        rows.iter().map(from_row).collect()
    }

    /// Ends an override early; audit-logged. An override that has already
    /// ended is not found.
    pub async fn revoke_override(&self, id: i64, actor: &str, now: i64) -> Result<Override> {
        self.tracked(async {
            let mut tx = self.begin_write().await?;
            let done = sqlx::query(
                "UPDATE overrides SET revoked_at = $1, revoked_by = $2 \
                 WHERE id = $3 AND revoked_at IS NULL AND expires_at > $1",
            )
            .bind(now)
            .bind(actor)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(q("ending an override"))?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound {
                    what: "override in force",
                    id: id.to_string(),
                });
            }
            let row = sqlx::query(AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM overrides WHERE id = $1"
            )))
            .bind(id)
            .fetch_one(&mut *tx)
            .await
            .map_err(q("reading an override"))?;
            let o = from_row(&row)?;
            tx.append_audit(
                self.backend,
                self.audit_key(),
                actor,
                "override.revoked",
                &o.customer_id,
                &serde_json::json!({ "override": id }),
            )
            .await?;
            tx.commit().await.map_err(q("committing an override"))?;
            Ok(o)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_override_applies_until_it_expires_or_is_revoked_and_is_audited() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("s.db").display());
        let s = Store::connect(&url).await.unwrap();
        let new = NewOverride {
            customer_id: "c1".into(),
            band: Some("green".into()),
            suppress: true,
            reason: "signed renewal".into(),
            expires_at: 200,
        };
        let o = s.create_override(&new, "ana", 100).await.unwrap();
        assert_eq!(s.active_overrides(150).await.unwrap()["c1"], o);
        assert!(s.active_overrides(200).await.unwrap().is_empty(), "lapsed");
        let ended = s.revoke_override(o.id, "bo", 160).await.unwrap();
        assert_eq!(ended.revoked_by.as_deref(), Some("bo"));
        assert!(s.active_overrides(170).await.unwrap().is_empty());
        assert!(
            s.revoke_override(o.id, "bo", 170).await.is_err(),
            "ended twice"
        );
        assert_eq!(s.customer_overrides("c1").await.unwrap().len(), 1);
        let log = s.audit_log().await.unwrap();
        let actions: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
        assert!(actions.contains(&"override.created") && actions.contains(&"override.revoked"));
    }
}
