//! The statements of a write transaction, written once and instantiated for
//! every connection type a transaction runs on: sqlx's `Any` connection
//! (ordinary writes) and the native SQLite and PostgreSQL connections that
//! a scoring run's bulk transaction uses (`crate::bulk`). The SQL is the
//! dialect both databases accept, so one text serves all three; a macro
//! rather than generic functions because sqlx's executor and encoding
//! bounds would have to be spelled out on every function for every type.

use churnguard_core::interventions::Plan;
use churnguard_core::kpi::Scorecards;
use sqlx::Row;

use crate::{q, Backend, Result, RunRecord};

/// The writes a transaction may make besides a run's score rows.
pub(crate) trait WriteStatements {
    /// Inserts a scoring run's row.
    async fn insert_run(&mut self, run: &RunRecord) -> Result<()>;
    /// Saves a run's scorecards for one role and stage (replacing any).
    async fn save_scorecards(&mut self, run_id: &str, cards: &Scorecards) -> Result<()>;
    /// Appends an entry to the hash-chained audit log.
    #[allow(clippy::too_many_arguments)]
    async fn append_audit(
        &mut self,
        backend: Backend,
        key: Option<&[u8]>,
        actor: &str,
        action: &str,
        subject: &str,
        details: &serde_json::Value,
    ) -> Result<()>;
}

/// When a plan's closes happen: the run's clock (its first created or
/// refreshed intervention's), else now.
pub(crate) fn plan_clock(plan: &Plan) -> i64 {
    plan.created
        .first()
        .map(|i| i.created_at)
        .or_else(|| plan.updated.first().map(|i| i.last_seen_at))
        .unwrap_or_else(crate::now)
}

macro_rules! write_statements {
    ($conn:ty) => {
        impl WriteStatements for $conn {
            async fn insert_run(&mut self, run: &RunRecord) -> Result<()> {
                sqlx::query(
                    "INSERT INTO scoring_runs (run_id, created_at, snapshot_date, model_id, model_family, source, customers, summary)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(&run.run_id)
                .bind(run.created_at)
                .bind(&run.snapshot_date)
                .bind(&run.model_id)
                .bind(&run.model_family)
                .bind(&run.source)
                .bind(run.customers as i64)
                .bind(serde_json::to_string(&run.summary).expect("a run summary serialises"))
                .execute(&mut *self)
                .await
                .map_err(q("inserting the run"))?;
                Ok(())
            }

            async fn save_scorecards(&mut self, run_id: &str, cards: &Scorecards) -> Result<()> {

                sqlx::query("DELETE FROM kpi_snapshots WHERE run_id = $1 AND role = $2 AND stage = $3")
                    .bind(run_id)
                    .bind(cards.role.name())
                    .bind(cards.stage.name())
                    .execute(&mut *self)
                    .await
                    .map_err(q("replacing scorecards"))?;
                sqlx::query("DELETE FROM kpi_weights WHERE run_id = $1 AND role = $2 AND stage = $3")
                    .bind(run_id)
                    .bind(cards.role.name())
                    .bind(cards.stage.name())
                    .execute(&mut *self)
                    .await
                    .map_err(q("replacing KPI weights"))?;
                sqlx::query("INSERT INTO kpi_weights (run_id, role, stage, weights) VALUES ($1, $2, $3, $4)")
                    .bind(run_id)
                    .bind(cards.role.name())
                    .bind(cards.stage.name())
                    .bind(serde_json::to_string(&cards.weights).expect("weights serialise"))
                    .execute(&mut *self)
                    .await
                    .map_err(q("saving KPI weights"))?;
                for c in &cards.cards {
                    sqlx::query(
                        "INSERT INTO kpi_snapshots (run_id, role, stage, employee_id, name, composite, rank, top, card)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    )
                    .bind(run_id)
                    .bind(cards.role.name())
                    .bind(cards.stage.name())
                    .bind(&c.employee_id)
                    .bind(&c.name)
                    .bind(c.composite)
                    .bind(c.rank as i64)
                    .bind(i64::from(c.top))
                    .bind(serde_json::to_string(c).expect("scorecards serialise"))
                    .execute(&mut *self)
                    .await
                    .map_err(q("saving scorecards"))?;
                }
                Ok(())
            }

            async fn append_audit(
                &mut self,
                backend: Backend,
                key: Option<&[u8]>,
                actor: &str,
                action: &str,
                subject: &str,
                details: &serde_json::Value,
            ) -> Result<()> {

                if backend == Backend::Postgres {
                    // One appender at a time across replicas; SQLite's BEGIN IMMEDIATE
                    // already serialises writers.
                    sqlx::query("SELECT pg_advisory_xact_lock(7426002)")
                        .execute(&mut *self)
                        .await
                        .map_err(q("locking the audit log"))?;
                }
                let head = sqlx::query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
                    .fetch_optional(&mut *self)
                    .await
                    .map_err(q("reading the audit head"))?;
                let (seq, prev) = match head {
                    Some(r) => (
                        r.try_get::<i64, _>(0)
                            .map_err(q("reading the audit head"))?
                            + 1,
                        r.try_get::<String, _>(1)
                            .map_err(q("reading the audit head"))?,
                    ),
                    None => (1, crate::audit::GENESIS.to_string()),
                };
                let at = crate::now();
                let details = details.to_string();
                let hash = crate::audit::entry_hash(seq, at, actor, action, subject, &details, &prev, key);
                sqlx::query(
                    "INSERT INTO audit_log (seq, at, actor, action, subject, details, prev_hash, hash)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(seq)
                .bind(at)
                .bind(actor)
                .bind(action)
                .bind(subject)
                .bind(&details)
                .bind(&prev)
                .bind(&hash)
                .execute(&mut *self)
                .await
                .map_err(q("appending to the audit log"))?;
                Ok(())
            }
        }
    };
}

write_statements!(sqlx::AnyConnection);
write_statements!(sqlx::SqliteConnection);
write_statements!(sqlx::PgConnection);
