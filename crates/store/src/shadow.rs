//! Scores of a shadow challenger beside the champion's. The server keeps
//! sampled pairs in a bounded buffer and flushes them here in batches; the
//! monitor reads them back to compare the two models.

use sqlx::{AssertSqlSafe, Row};

use super::{q, Result, Store};

/// One customer scored by both the champion and the shadow challenger.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ShadowSample {
    /// When (Unix seconds).
    pub scored_at: i64,
    /// The customer.
    pub customer_id: String,
    /// The champion that answered.
    pub champion_model: String,
    /// The shadow challenger.
    pub shadow_model: String,
    /// The champion's churn probability (what the client got).
    pub champion_probability: f64,
    /// The shadow's churn probability (never sent).
    pub shadow_probability: f64,
}

/// Rows per `INSERT` (six parameters each, well under every backend's
/// parameter limit).
const ROWS_PER_INSERT: usize = 200;

/// A SQLite connection of its own for shadow pairs, for the thread that
/// scores them: each batch is inserted through one prepared statement and
/// committed on the calling thread (`bulk.rs`), so a server that runs that
/// thread at a lower priority runs the write at that priority too, and the
/// pool the requests use is not involved. PostgreSQL stores write through
/// [`Store::record_shadow_samples`] (the work is then in the database's
/// own processes).
#[derive(Debug)]
pub struct ShadowWriter {
    conn: sqlx::SqliteConnection,
}

impl ShadowWriter {
    /// Saves `samples` in one transaction.
    pub async fn write(&mut self, samples: &[ShadowSample]) -> Result<()> {
        if samples.is_empty() {
            return Ok(());
        }
        super::bulk::insert_shadow_sqlite(&mut self.conn, samples).await
    }
}

impl Store {
    /// A [`ShadowWriter`] on a new connection to this store's SQLite file;
    /// `None` for PostgreSQL and in-memory databases (another connection
    /// would not see the same database). Connect it from the thread that
    /// will write: SQLite's connection thread inherits that thread's
    /// priority.
    pub async fn shadow_writer(&self) -> Result<Option<ShadowWriter>> {
        use sqlx::ConnectOptions;
        let Some(options) = self.native_sqlite_options()? else {
            return Ok(None);
        };
        let conn = options
            // Pairs are a sample for comparison; losing the last second of
            // them to a power cut is acceptable, an fsync per flush is not
            // needed (WAL keeps the file consistent either way).
            .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
            .connect()
            .await
            .map_err(|e| self.unavailable(e))?;
        Ok(Some(ShadowWriter { conn }))
    }

    /// Saves sampled pairs in one transaction.
    pub async fn record_shadow_samples(&self, samples: &[ShadowSample]) -> Result<()> {
        if samples.is_empty() {
            return Ok(());
        }
        self.tracked(async {
            let mut tx = self.begin_write().await?;
            for chunk in samples.chunks(ROWS_PER_INSERT) {
                let values: Vec<String> = (0..chunk.len())
                    .map(|i| {
                        let p: Vec<String> = (1..=6).map(|k| format!("${}", i * 6 + k)).collect();
                        format!("({})", p.join(", "))
                    })
                    .collect();
                let sql = format!(
                    "INSERT INTO shadow_scores (scored_at, customer_id, champion_model, shadow_model, \
                     champion_probability, shadow_probability) VALUES {}",
                    values.join(", ")
                );
                let mut query = sqlx::query(AssertSqlSafe(sql));
                for s in chunk {
                    query = query
                        .bind(s.scored_at)
                        .bind(&s.customer_id)
                        .bind(&s.champion_model)
                        .bind(&s.shadow_model)
                        .bind(s.champion_probability)
                        .bind(s.shadow_probability);
                }
                query
                    .execute(&mut *tx)
                    .await
                    .map_err(q("saving shadow scores"))?;
            }
            tx.commit().await.map_err(q("committing shadow scores"))?;
            Ok(())
        })
        .await
    }

    /// The newest `limit` pairs recorded for `shadow_model`, oldest first.
    pub async fn shadow_samples(
        &self,
        shadow_model: &str,
        limit: usize,
    ) -> Result<Vec<ShadowSample>> {
        let rows = sqlx::query(
            "SELECT scored_at, customer_id, champion_model, shadow_model, champion_probability, \
             shadow_probability FROM shadow_scores WHERE shadow_model = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(shadow_model)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(q("reading shadow scores"))?;
        let get = |e| q("reading shadow scores")(e);
        let mut out = rows
            .iter()
            .map(|r| {
                Ok(ShadowSample {
                    scored_at: r.try_get(0).map_err(get)?,
                    customer_id: r.try_get(1).map_err(get)?,
                    champion_model: r.try_get(2).map_err(get)?,
                    shadow_model: r.try_get(3).map_err(get)?,
                    champion_probability: r.try_get(4).map_err(get)?,
                    shadow_probability: r.try_get(5).map_err(get)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        out.reverse();
        Ok(out)
    }

    /// The shadow model recorded most recently, if any (the monitor's
    /// subject once the registry's shadow pointer is cleared by a
    /// promotion).
    pub async fn latest_shadow_model(&self) -> Result<Option<String>> {
        let row = sqlx::query("SELECT shadow_model FROM shadow_scores ORDER BY id DESC LIMIT 1")
            .fetch_optional(&self.pool)
            .await
            .map_err(q("reading shadow scores"))?;
        row.map(|r| r.try_get(0).map_err(q("reading shadow scores")))
            .transpose()
    }
}
