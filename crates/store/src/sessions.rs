//! Web sessions in the store, so that replicas behind a load balancer are
//! one service: a session made on one replica is known to every other, and
//! a sign-out on any of them ends it everywhere. Rows are keyed by the
//! SHA-256 of the cookie's token (the caller hashes it), never the token.

use sqlx::Row;

use super::{q, Result, Store};

/// A signed-in web user, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSession {
    /// The API key's name.
    pub name: String,
    /// Its role's name.
    pub role: String,
    /// The account manager id the key belongs to, if any.
    pub owner: Option<String>,
    /// The token every form must send back.
    pub csrf: String,
    /// Unix seconds after which the session is gone.
    pub expires_at: i64,
}

impl Store {
    /// Saves a new session under `token_hash`, and drops expired ones.
    pub async fn create_web_session(
        &self,
        token_hash: &str,
        session: &WebSession,
        now: i64,
    ) -> Result<()> {
        self.tracked(async {
            let mut tx = self.begin_write().await?;
            sqlx::query("DELETE FROM web_sessions WHERE expires_at <= $1")
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(q("expiring web sessions"))?;
            sqlx::query(
                "INSERT INTO web_sessions (token_hash, name, role, owner, csrf, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(token_hash)
            .bind(&session.name)
            .bind(&session.role)
            .bind(&session.owner)
            .bind(&session.csrf)
            .bind(session.expires_at)
            .execute(&mut *tx)
            .await
            .map_err(q("saving a web session"))?;
            tx.commit().await.map_err(q("committing a web session"))?;
            Ok(())
        })
        .await
    }

    /// The session under `token_hash`, unless it has expired.
    pub async fn web_session(&self, token_hash: &str, now: i64) -> Result<Option<WebSession>> {
        let row = sqlx::query(
            "SELECT name, role, owner, csrf, expires_at FROM web_sessions WHERE token_hash = $1 AND expires_at > $2",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(q("reading a web session"))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let get = |e| q("reading a web session")(e);
        Ok(Some(WebSession {
            name: row.try_get(0).map_err(get)?,
            role: row.try_get(1).map_err(get)?,
            owner: row.try_get(2).map_err(get)?,
            csrf: row.try_get(3).map_err(get)?,
            expires_at: row.try_get(4).map_err(get)?,
        }))
    }

    /// Ends the session under `token_hash` (signing out).
    pub async fn delete_web_session(&self, token_hash: &str) -> Result<()> {
        self.tracked(async {
            sqlx::query("DELETE FROM web_sessions WHERE token_hash = $1")
                .bind(token_hash)
                .execute(&self.pool)
                .await
                .map_err(q("ending a web session"))?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_session_is_found_until_it_expires_or_ends() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("s.db").display());
        let s = Store::connect(&url).await.unwrap();
        let session = WebSession {
            name: "ana".into(),
            role: "admin".into(),
            owner: Some("7".into()),
            csrf: "c".into(),
            expires_at: 200,
        };
        s.create_web_session("h1", &session, 100).await.unwrap();
        assert_eq!(
            s.web_session("h1", 150).await.unwrap(),
            Some(session.clone())
        );
        assert_eq!(s.web_session("h1", 200).await.unwrap(), None);
        assert_eq!(s.web_session("other", 150).await.unwrap(), None);
        s.delete_web_session("h1").await.unwrap();
        assert_eq!(s.web_session("h1", 150).await.unwrap(), None);
        // Creating a session clears expired ones.
        s.create_web_session("h1", &session, 100).await.unwrap();
        s.create_web_session(
            "h2",
            &WebSession {
                expires_at: 900,
                ..session
            },
            300,
        )
        .await
        .unwrap();
        assert_eq!(s.web_session("h1", 150).await.unwrap(), None);
    }
}
