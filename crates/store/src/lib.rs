//! The store: scoring runs, per-customer score and health history,
//! interventions with their state machine and outcomes, KPI snapshots and a
//! hash-chained audit log, in SQLite (the default: one file, no set-up) or
//! PostgreSQL (a `postgres://` URL, for replicas sharing one store).
//!
//! One code path serves both through sqlx's `Any` driver: SQL is written in
//! the dialect both accept (`$1` placeholders, `BIGINT`-safe integers, no
//! vendor functions); only the DDL differs, in `migrations/{sqlite,postgres}`.
//! Versioned migrations run at connect time, each in its own transaction,
//! recorded in `churnguard_migrations` (with the SQL's checksum, so an edited
//! migration is refused).

#![warn(missing_docs)]

mod audit;
mod bulk;
mod deliveries;
mod idempotency;
mod overrides;
mod records;
mod sessions;
mod shadow;
mod statements;

use std::collections::HashMap;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, AssertSqlSafe};

pub use audit::{verify as verify_chain, AuditEntry, AuditHead, AuditProblem};
pub use deliveries::{Attempt, Delivery, DeliveryStatus};
pub use idempotency::{IdempotencyClaim, IdempotencyRetention};
pub use overrides::{NewOverride, Override};
use records::SCORE_COLUMNS;
pub use records::{
    bad_cursor, CustomerScoreRecord, InterventionFilter, OutcomeInput, RiskListFilter,
    RiskListPage, RunRecord, StaffOutcome, StoredIntervention, SORTABLE,
};
pub use sessions::WebSession;
pub use shadow::{ShadowSample, ShadowWriter};
use statements::WriteStatements;

use churnguard_core::error::{ErrorKind, HasKind};
use churnguard_core::interventions::{Intervention, Status};
use churnguard_core::scoring::Previous;
use serde::{Deserialize, Serialize};

/// `[store]`: where scoring runs, interventions, KPI snapshots and the audit log live.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite://PATH` (the default, `sqlite://churnguard.db`) or
    /// `postgres://USER@HOST/DB`; `CHURNGUARD_DATABASE_URL` overrides it.
    pub url: String,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            url: "sqlite://churnguard.db".into(),
        }
    }
}

impl StoreConfig {
    /// Checks the section; the error is `(key, message)`.
    pub fn check(&self) -> std::result::Result<(), (String, String)> {
        if self.url.trim().is_empty() {
            return Err(("store.url".into(), "must not be empty".into()));
        }
        Ok(())
    }
}

/// Result alias of the store.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL is not one the store understands.
    #[error("store URL {url:?}: {message}")]
    BadUrl {
        /// The URL, with any password removed.
        url: String,
        /// What is wrong.
        message: String,
    },
    /// The database could not be reached or refused the work.
    #[error("database {url}: {message}")]
    Unavailable {
        /// The URL, with any password removed.
        url: String,
        /// The driver's message.
        message: String,
    },
    /// A query failed.
    #[error("database query ({what}): {source}")]
    Query {
        /// What the query was for.
        what: &'static str,
        /// The driver's error.
        source: sqlx::Error,
    },
    /// A stored migration differs from this build's.
    #[error("migration {version} was changed after it was applied (checksum {stored} on record, {ours} in this build)")]
    MigrationChanged {
        /// Version.
        version: i64,
        /// Checksum on record.
        stored: String,
        /// Checksum of this build's SQL.
        ours: String,
    },
    /// A row that should exist does not.
    #[error("{what} {id} not found")]
    NotFound {
        /// What was looked for.
        what: &'static str,
        /// Its id.
        id: String,
    },
    /// A state change the state machine does not allow.
    #[error("intervention {id} is {status}: {message}")]
    BadTransition {
        /// Intervention id.
        id: i64,
        /// Its status.
        status: String,
        /// Why the change is refused.
        message: String,
    },
    /// The native driver refused a bulk write.
    #[error("database ({what}): {message}")]
    Native {
        /// What the write was for.
        what: &'static str,
        /// The database's message.
        message: String,
        /// Whether the database could not take it (full, locked,
        /// read-only, I/O) rather than refusing the data.
        unavailable: bool,
    },
    /// A stored value that does not parse.
    #[error("corrupt row in {table}: {message}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// What is wrong.
        message: String,
    },
}

impl StoreError {
    /// Whether the database itself is unavailable (connection, lock, read-only, I/O).
    pub fn is_unavailable(&self) -> bool {
        self.kind() == ErrorKind::Unavailable
    }
}

impl HasKind for StoreError {
    fn kind(&self) -> ErrorKind {
        match self {
            StoreError::BadUrl { .. } => ErrorKind::BadInput,
            StoreError::Unavailable { .. } => ErrorKind::Unavailable,
            StoreError::Query { source, .. } if is_unavailable(source) => ErrorKind::Unavailable,
            StoreError::Native {
                unavailable: true, ..
            } => ErrorKind::Unavailable,
            StoreError::Query { .. }
            | StoreError::Native { .. }
            | StoreError::MigrationChanged { .. }
            | StoreError::Corrupt { .. } => ErrorKind::Internal,
            StoreError::NotFound { .. } => ErrorKind::NotFound,
            StoreError::BadTransition { .. } => ErrorKind::Conflict,
        }
    }
}

fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Tls(_) => true,
        sqlx::Error::Database(d) => {
            let m = d.message().to_ascii_lowercase();
            m.contains("locked")
                || m.contains("readonly")
                || m.contains("read-only")
                || m.contains("disk i/o")
                || m.contains("unable to open")
                || m.contains("no such table")
                || m.contains("disk is full")
                || m.contains("does not exist")
                || m.contains("terminating connection")
        }
        _ => false,
    }
}

pub(crate) fn q(what: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Query { what, source }
}

/// Which database a store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

struct Migration {
    version: i64,
    description: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "scoring runs, scores, interventions, KPI snapshots, audit log",
        sqlite: include_str!("../migrations/sqlite/0001_init.sql"),
        postgres: include_str!("../migrations/postgres/0001_init.sql"),
    },
    Migration {
        version: 2,
        description: "data-driven KPI weights",
        sqlite: include_str!("../migrations/sqlite/0002_kpi_weights.sql"),
        postgres: include_str!("../migrations/postgres/0002_kpi_weights.sql"),
    },
    Migration {
        version: 3,
        description: "the effect and cost each intervention decision assumed",
        sqlite: include_str!("../migrations/sqlite/0003_decision_inputs.sql"),
        postgres: include_str!("../migrations/postgres/0003_decision_inputs.sql"),
    },
    Migration {
        version: 4,
        description: "answers of state-changing requests by idempotency key",
        sqlite: include_str!("../migrations/sqlite/0004_idempotency.sql"),
        postgres: include_str!("../migrations/postgres/0004_idempotency.sql"),
    },
    Migration {
        version: 5,
        description: "web sessions shared by every replica",
        sqlite: include_str!("../migrations/sqlite/0005_web_sessions.sql"),
        postgres: include_str!("../migrations/postgres/0005_web_sessions.sql"),
    },
    Migration {
        version: 6,
        description: "outgoing deliveries of interventions (webhook outbox)",
        sqlite: include_str!("../migrations/sqlite/0006_deliveries.sql"),
        postgres: include_str!("../migrations/postgres/0006_deliveries.sql"),
    },
    Migration {
        version: 7,
        description: "overrides of health bands and interventions, with the computed band kept; owner names with scores",
        sqlite: include_str!("../migrations/sqlite/0007_overrides.sql"),
        postgres: include_str!("../migrations/postgres/0007_overrides.sql"),
    },
    Migration {
        version: 8,
        description: "shadow challengers' scores beside the champion's",
        sqlite: include_str!("../migrations/sqlite/0008_shadow_scores.sql"),
        postgres: include_str!("../migrations/postgres/0008_shadow_scores.sql"),
    },
    Migration {
        version: 9,
        description: "scores keyed by run in the table itself; no customer index",
        sqlite: include_str!("../migrations/sqlite/0009_scores_keyed_by_run.sql"),
        postgres: include_str!("../migrations/postgres/0009_scores_keyed_by_run.sql"),
    },
];

/// Fault injection for the crash tests: when `CHURNGUARD_FAILPOINT` names
/// this point, the process says so on stderr and stops here until it is
/// killed. Never set in production; costs one environment lookup.
pub fn failpoint(name: &str) {
    if std::env::var("CHURNGUARD_FAILPOINT").is_ok_and(|v| v == name) {
        eprintln!("failpoint {name} reached");
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
}

/// The schema version this build migrates to.
pub fn schema_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// A connected, migrated store.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    url: String,
    /// The URL with the options the store adds, for native connections.
    full_url: String,
    /// Whether the last write went through (false after a write failed
    /// because the database could not take it: full, read-only, locked).
    write_ok: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// The audit chain's key, when one is set.
    audit_key: Option<AuditKey>,
}

/// The audit chain's HMAC key; never printed.
#[derive(Clone)]
struct AuditKey(std::sync::Arc<[u8]>);

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditKey(***)")
    }
}

/// The environment variable the binary reads the audit key from.
pub const AUDIT_KEY_ENV: &str = "CHURNGUARD_AUDIT_KEY";

/// For a SQLite URL whose file would go into a folder that does not exist,
/// the message to give (SQLite itself only says "unable to open database
/// file"). The folder is not created: a mistyped path should fail.
fn sqlite_folder_missing(url: &str) -> Option<String> {
    let path = url
        .strip_prefix("sqlite://")
        .or(url.strip_prefix("sqlite:"))
        .or((!url.contains("://")).then_some(url))?;
    let file = path.split('?').next().unwrap_or_default();
    if file.is_empty() || file == ":memory:" {
        return None;
    }
    let folder = std::path::Path::new(file).parent()?;
    (!folder.as_os_str().is_empty() && !folder.is_dir())
        .then(|| format!("the folder {} does not exist", folder.display()))
}

impl Store {
    /// Connects to `url` and runs pending migrations. `sqlite://PATH` creates
    /// the file when absent; a bare path is taken as SQLite.
    pub async fn connect(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        if let Some(message) = sqlite_folder_missing(url) {
            return Err(StoreError::BadUrl {
                url: url.into(),
                message,
            });
        }
        let (backend, full) = if url.starts_with("postgres://") || url.starts_with("postgresql://")
        {
            (Backend::Postgres, url.to_string())
        } else if let Some(path) = url
            .strip_prefix("sqlite://")
            .or(url.strip_prefix("sqlite:"))
        {
            if path.is_empty() {
                return Err(StoreError::BadUrl {
                    url: url.into(),
                    message: "no file path after sqlite://".into(),
                });
            }
            let sep = if path.contains('?') { '&' } else { '?' };
            let full = if path.contains("mode=") {
                format!("sqlite://{path}")
            } else {
                format!("sqlite://{path}{sep}mode=rwc")
            };
            (Backend::Sqlite, full)
        } else if !url.contains("://") {
            (Backend::Sqlite, format!("sqlite://{url}?mode=rwc"))
        } else {
            return Err(StoreError::BadUrl {
                url: redact(url),
                message: "expected sqlite://PATH or postgres://…".into(),
            });
        };
        let mut options = AnyPoolOptions::new()
            .acquire_timeout(Duration::from_secs(5))
            .max_connections(match backend {
                Backend::Sqlite => 4,
                Backend::Postgres => 8,
            })
            // A connection whose COMMIT failed (a full disk) can come back
            // still inside its transaction; closing it keeps the pool clean.
            .after_release(|conn, _meta| {
                Box::pin(async move { Ok(!sqlx::Connection::is_in_transaction(conn)) })
            });
        if backend == Backend::Sqlite {
            options = options.after_connect(|conn, _meta| {
                Box::pin(async move {
                    // WAL lets readers run beside the writer; a read-only file
                    // keeps its mode (the error is not fatal).
                    let _ = sqlx::query("PRAGMA journal_mode=WAL")
                        .execute(&mut *conn)
                        .await;
                    sqlx::query("PRAGMA busy_timeout=5000")
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query("PRAGMA foreign_keys=ON")
                        .execute(&mut *conn)
                        .await?;
                    Ok(())
                })
            });
        }
        let pool = options
            .connect(&full)
            .await
            .map_err(|e| StoreError::Unavailable {
                url: redact(url),
                message: e.to_string(),
            })?;
        let store = Store {
            pool,
            backend,
            url: redact(url),
            full_url: full.clone(),
            write_ok: std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true)),
            audit_key: None,
        };
        store.migrate().await?;
        Ok(store)
    }

    /// This store, keying the audit entries it appends (HMAC-SHA256 under
    /// `key`) and checking keyed ones with it. An empty key is no key.
    pub fn with_audit_key(mut self, key: &[u8]) -> Store {
        self.audit_key = (!key.is_empty()).then(|| AuditKey(key.into()));
        self
    }

    /// The audit key, as the binary's edge reads it from
    /// [`AUDIT_KEY_ENV`]; `None` when unset or empty.
    pub fn audit_key_from_env() -> Option<Vec<u8>> {
        std::env::var(AUDIT_KEY_ENV)
            .ok()
            .filter(|k| !k.is_empty())
            .map(String::into_bytes)
    }

    fn audit_key(&self) -> Option<&[u8]> {
        self.audit_key.as_ref().map(|k| &*k.0)
    }

    /// The backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The URL (password removed).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Whether the database answers a trivial query.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .fetch_one(&self.pool)
            .await
            .map_err(q("ping"))?;
        Ok(())
    }

    /// Runs a write and remembers whether the database could take it.
    async fn tracked<T>(&self, write: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        use std::sync::atomic::Ordering;
        let r = write.await;
        match &r {
            Ok(_) => self.write_ok.store(true, Ordering::Relaxed),
            Err(e) if e.is_unavailable() => self.write_ok.store(false, Ordering::Relaxed),
            Err(_) => {}
        }
        r
    }

    /// Whether the store takes writes: PostgreSQL must not be read-only; a
    /// SQLite store whose last write failed for want of the database
    /// (locked, read-only) is probed by taking and releasing the write lock.
    /// A write in progress does not make the store unready. Readiness uses it.
    pub async fn writable(&self) -> Result<()> {
        use std::sync::atomic::Ordering;
        match self.backend {
            Backend::Sqlite => {
                if !self.write_ok.load(Ordering::Relaxed) {
                    let tx = self.begin_write().await?;
                    tx.rollback().await.map_err(q("releasing the write lock"))?;
                    self.write_ok.store(true, Ordering::Relaxed);
                }
                Ok(())
            }
            Backend::Postgres => {
                let ro: String = sqlx::query_scalar("SHOW transaction_read_only")
                    .fetch_one(&self.pool)
                    .await
                    .map_err(q("ping"))?;
                if ro == "on" {
                    return Err(StoreError::Unavailable {
                        url: self.url.clone(),
                        message: "the database does not take writes".into(),
                    });
                }
                Ok(())
            }
        }
    }

    async fn migrate(&self) -> Result<()> {
        let unavailable = |e: sqlx::Error| StoreError::Unavailable {
            url: self.url.clone(),
            message: e.to_string(),
        };
        // Under the same lock as the migrations: two replicas creating the
        // table at once would collide in PostgreSQL's catalog.
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock(7426001)")
                .execute(&mut *tx)
                .await
                .map_err(q("migration lock"))?;
        }
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS churnguard_migrations (
                version BIGINT PRIMARY KEY,
                description TEXT NOT NULL,
                checksum TEXT NOT NULL,
                applied_at BIGINT NOT NULL
            )",
        )
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)?;
        for m in MIGRATIONS {
            let sql = match self.backend {
                Backend::Sqlite => m.sqlite,
                Backend::Postgres => m.postgres,
            };
            let ours = audit::sha256_hex(sql.as_bytes());
            let mut tx = self.pool.begin().await.map_err(unavailable)?;
            if self.backend == Backend::Postgres {
                // Replicas starting together migrate one at a time.
                sqlx::query("SELECT pg_advisory_xact_lock(7426001)")
                    .execute(&mut *tx)
                    .await
                    .map_err(q("migration lock"))?;
            }
            let stored: Option<String> =
                sqlx::query_scalar("SELECT checksum FROM churnguard_migrations WHERE version = $1")
                    .bind(m.version)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(q("reading migrations"))?;
            match stored {
                Some(stored) if stored == ours => continue,
                Some(stored) => {
                    return Err(StoreError::MigrationChanged {
                        version: m.version,
                        stored,
                        ours,
                    })
                }
                None => {}
            }
            sqlx::raw_sql(sql)
                .execute(&mut *tx)
                .await
                .map_err(q("applying a migration"))?;
            sqlx::query(
                "INSERT INTO churnguard_migrations (version, description, checksum, applied_at)
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(m.version)
            .bind(m.description)
            .bind(&ours)
            .bind(now())
            .execute(&mut *tx)
            .await
            .map_err(q("recording a migration"))?;
            tx.commit().await.map_err(q("committing a migration"))?;
        }
        Ok(())
    }

    /// Saves a scoring run in one transaction: the run, every customer's
    /// score, the intervention plan, the KPI scorecards, and their audit
    /// entries. A crash at any point leaves all of it or none. The
    /// transaction runs on a native connection so the score rows can go in
    /// bulk (`bulk.rs`): one prepared statement for SQLite, COPY for
    /// PostgreSQL.
    pub async fn save_run(
        &self,
        run: &RunRecord,
        scores: &[CustomerScoreRecord],
        plan: &churnguard_core::interventions::Plan,
        scorecards: &[churnguard_core::kpi::Scorecards],
        actor: &str,
    ) -> Result<Vec<i64>> {
        use sqlx::{ConnectOptions, Connection};
        let unavailable = |e: sqlx::Error| StoreError::Unavailable {
            url: self.url.clone(),
            message: e.to_string(),
        };
        self.tracked(async {
            match self.backend {
                Backend::Sqlite => {
                    let options: sqlx::sqlite::SqliteConnectOptions =
                        self.full_url.parse().map_err(unavailable)?;
                    let mut conn = options
                        .busy_timeout(Duration::from_secs(5))
                        .foreign_keys(true)
                        .connect()
                        .await
                        .map_err(unavailable)?;
                    let mut tx = conn
                        .begin_with("BEGIN IMMEDIATE")
                        .await
                        .map_err(q("starting a transaction"))?;
                    tx.insert_run(run).await?;
                    if scores.len() > 10_000 {
                        // A large run's rows go into two B-trees (the table
                        // and the risk index), the index in an order that
                        // jumps around it: with SQLite's default 2 MiB page
                        // cache most of its inserts read pages back.
                        sqlx::query("PRAGMA cache_size = -262144")
                            .execute(&mut *tx)
                            .await
                            .map_err(q("sizing the page cache"))?;
                    }
                    bulk::insert_scores_sqlite(&mut tx, scores).await?;
                    let ids = bulk::apply_plan_sqlite(&mut tx, plan).await?;
                    self.finish_run(&mut *tx, run, plan, scorecards, actor)
                        .await?;
                    failpoint("store.save_run.before_commit");
                    tx.commit().await.map_err(q("committing the run"))?;
                    let _ = conn.close().await;
                    Ok(ids)
                }
                Backend::Postgres => {
                    let mut conn = sqlx::PgConnection::connect(&self.full_url)
                        .await
                        .map_err(unavailable)?;
                    let mut tx = conn.begin().await.map_err(q("starting a transaction"))?;
                    tx.insert_run(run).await?;
                    bulk::copy_scores_postgres(&mut tx, scores).await?;
                    let ids = bulk::apply_plan_postgres(&mut tx, plan).await?;
                    self.finish_run(&mut *tx, run, plan, scorecards, actor)
                        .await?;
                    failpoint("store.save_run.before_commit");
                    tx.commit().await.map_err(q("committing the run"))?;
                    let _ = conn.close().await;
                    Ok(ids)
                }
            }
        })
        .await
    }

    /// The store's URL could not be opened or reached.
    fn unavailable(&self, e: sqlx::Error) -> StoreError {
        StoreError::Unavailable {
            url: self.url.clone(),
            message: e.to_string(),
        }
    }

    /// Options for a native SQLite connection beside the pool, to the same
    /// file (bulk reads and writes step statements on the raw handle), with
    /// the pool's busy timeout. `None` on PostgreSQL and for an in-memory
    /// database, which a second connection would not see.
    fn native_sqlite_options(&self) -> Result<Option<sqlx::sqlite::SqliteConnectOptions>> {
        if self.backend != Backend::Sqlite
            || self.full_url.contains(":memory:")
            || self.full_url.contains("mode=memory")
        {
            return Ok(None);
        }
        let options: sqlx::sqlite::SqliteConnectOptions =
            self.full_url.parse().map_err(|e| self.unavailable(e))?;
        Ok(Some(options.busy_timeout(Duration::from_secs(5))))
    }

    /// The rest of a run's transaction after its rows and its applied
    /// plan: the audit entry, the scorecards and theirs.
    async fn finish_run(
        &self,
        conn: &mut impl WriteStatements,
        run: &RunRecord,
        plan: &churnguard_core::interventions::Plan,
        scorecards: &[churnguard_core::kpi::Scorecards],
        actor: &str,
    ) -> Result<()> {
        let details = serde_json::json!({
            "snapshot_date": run.snapshot_date,
            "model_id": run.model_id,
            "customers": run.customers,
            "interventions_created": plan.created.len(),
            "interventions_updated": plan.updated.len(),
            "closed_recovered": plan.recovered.len(),
            "expired": plan.expired.len(),
        });
        conn.append_audit(
            self.backend,
            self.audit_key(),
            actor,
            "scoring_run.saved",
            &run.run_id,
            &details,
        )
        .await?;
        for cards in scorecards {
            conn.save_scorecards(&run.run_id, cards).await?;
            let details = serde_json::json!({
                "role": cards.role.name(),
                "stage": cards.stage.name(),
                "employees": cards.cards.len(),
            });
            conn.append_audit(
                self.backend,
                self.audit_key(),
                actor,
                "kpi.saved",
                &run.run_id,
                &details,
            )
            .await?;
        }
        Ok(())
    }

    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        let tx = match self.backend {
            // Take the write lock up front, so concurrent writers queue on
            // busy_timeout instead of failing on lock upgrade.
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        };
        tx.map_err(q("starting a transaction"))
    }

    /// Every run, newest first.
    pub async fn runs(&self) -> Result<Vec<RunRecord>> {
        let rows = sqlx::query(
            "SELECT run_id, created_at, snapshot_date, model_id, model_family, source, customers, summary
             FROM scoring_runs ORDER BY snapshot_date DESC, created_at DESC, run_id DESC",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(q("listing runs"))?;
        rows.iter().map(records::run_from_row).collect()
    }

    /// The newest run, if any.
    pub async fn latest_run(&self) -> Result<Option<RunRecord>> {
        Ok(self.runs().await?.into_iter().next())
    }

    /// A run by id, or `latest`.
    pub async fn run(&self, id: &str) -> Result<RunRecord> {
        let runs = self.runs().await?;
        let found = if id == "latest" {
            runs.into_iter().next()
        } else {
            runs.into_iter().find(|r| r.run_id == id)
        };
        found.ok_or_else(|| StoreError::NotFound {
            what: "scoring run",
            id: id.into(),
        })
    }

    /// Each customer's score at the latest run with a snapshot on or before
    /// `snapshot_date` (YYYY-MM-DD): the baseline of health trends.
    pub async fn previous_scores(&self, snapshot_date: &str) -> Result<HashMap<String, Previous>> {
        let run: Option<String> = sqlx::query_scalar(
            "SELECT run_id FROM scoring_runs WHERE snapshot_date <= $1
             ORDER BY snapshot_date DESC, created_at DESC, run_id DESC LIMIT 1",
        )
        .bind(snapshot_date)
        .fetch_optional(&self.pool)
        .await
        .map_err(q("finding the previous run"))?;
        let Some(run) = run else {
            return Ok(HashMap::new());
        };
        let rows: Vec<(String, f64, String)> = match self.native_sqlite_options()? {
            Some(options) => {
                use sqlx::{ConnectOptions, Connection};
                let mut conn = options.connect().await.map_err(|e| self.unavailable(e))?;
                let rows = bulk::run_health_sqlite(&mut conn, &run).await;
                let _ = conn.close().await;
                rows?
            }
            None => sqlx::query_as(
                "SELECT customer_id, health, band FROM customer_scores WHERE run_id = $1",
            )
            .bind(&run)
            .fetch_all(&self.pool)
            .await
            .map_err(q("reading previous scores"))?,
        };
        let mut out = HashMap::with_capacity(rows.len());
        for (id, health, band) in rows {
            let band = band.parse().map_err(|message| StoreError::Corrupt {
                table: "customer_scores",
                message,
            })?;
            out.insert(id, Previous { health, band });
        }
        Ok(out)
    }

    /// Each customer's predicted churn probability at the latest run with a
    /// snapshot on or before `snapshot_date` (YYYY-MM-DD), with that run's
    /// snapshot: the baseline the risk-adjusted KPIs compare a book with.
    /// `None` when no run is that old.
    pub async fn churn_probabilities_at(
        &self,
        snapshot_date: &str,
    ) -> Result<Option<(String, HashMap<String, f64>)>> {
        let run: Option<(String, String)> = sqlx::query_as(
            "SELECT run_id, snapshot_date FROM scoring_runs WHERE snapshot_date <= $1
             ORDER BY snapshot_date DESC, created_at DESC, run_id DESC LIMIT 1",
        )
        .bind(snapshot_date)
        .fetch_optional(&self.pool)
        .await
        .map_err(q("finding the run at the period's start"))?;
        let Some((run, snapshot)) = run else {
            return Ok(None);
        };
        let rows: Vec<(String, f64)> = sqlx::query_as(
            "SELECT customer_id, churn_probability FROM customer_scores WHERE run_id = $1",
        )
        .bind(&run)
        .fetch_all(&self.pool)
        .await
        .map_err(q("reading the period's starting scores"))?;
        Ok(Some((snapshot, rows.into_iter().collect())))
    }

    /// Every customer's predicted churn probability in one run.
    pub async fn run_probabilities(&self, run_id: &str) -> Result<Vec<(String, f64)>> {
        sqlx::query_as(
            "SELECT customer_id, churn_probability FROM customer_scores WHERE run_id = $1
             ORDER BY customer_id",
        )
        .bind(run_id)
        .fetch_all(&self.pool)
        .await
        .map_err(q("reading a run's scores"))
    }

    /// Interventions the planner must see: open ones, and any created in
    /// the last `days` days (for cooldowns and capacity).
    pub async fn interventions_for_planning(
        &self,
        now: i64,
        days: f64,
    ) -> Result<Vec<Intervention>> {
        let since = now - (days * 86_400.0) as i64;
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {} FROM interventions WHERE status = 'open' OR created_at >= $1",
            records::INTERVENTION_COLUMNS
        )))
        .bind(since)
        .fetch_all(&self.pool)
        .await
        .map_err(q("reading interventions"))?;
        rows.iter().map(records::intervention_from_row).collect()
    }

    /// Interventions matching a filter, most urgent first.
    pub async fn interventions(
        &self,
        filter: &InterventionFilter,
    ) -> Result<Vec<StoredIntervention>> {
        records::list_interventions(&self.pool, filter).await
    }

    /// One intervention with its outcomes.
    pub async fn intervention(&self, id: i64) -> Result<StoredIntervention> {
        let row: Option<AnyRow> = sqlx::query(AssertSqlSafe(format!(
            "SELECT {}, outcome, observed FROM interventions WHERE id = $1",
            records::INTERVENTION_COLUMNS
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(q("reading an intervention"))?;
        let row = row.ok_or_else(|| StoreError::NotFound {
            what: "intervention",
            id: id.to_string(),
        })?;
        records::stored_from_row(&row)
    }

    /// Records what staff report for an intervention. An open one becomes
    /// `done`; a closed one keeps its status. Control records take no outcome.
    pub async fn record_outcome(
        &self,
        id: i64,
        input: &OutcomeInput,
        actor: &str,
        at: i64,
    ) -> Result<Intervention> {
        self.tracked(async {
            let mut tx = self.begin_write().await?;
            let row: Option<AnyRow> = sqlx::query(AssertSqlSafe(format!(
                "SELECT {} FROM interventions WHERE id = $1",
                records::INTERVENTION_COLUMNS
            )))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(q("reading an intervention"))?;
            let mut i = match row {
                Some(r) => records::intervention_from_row(&r)?,
                None => {
                    return Err(StoreError::NotFound {
                        what: "intervention",
                        id: id.to_string(),
                    })
                }
            };
            if i.status == Status::Control {
                return Err(StoreError::BadTransition {
                    id,
                    status: i.status.name().into(),
                    message: "control-group records are never contacted, so they take no outcome"
                        .into(),
                });
            }
            if i.status == Status::Open {
                i.status = Status::Done;
                i.closed_at = Some(at);
            }
            sqlx::query(
                "UPDATE interventions SET status = $1, closed_at = $2, outcome = $3, outcome_note = $4, outcome_at = $5 WHERE id = $6",
            )
            .bind(i.status.name())
            .bind(i.closed_at)
            .bind(input.outcome.name())
            .bind(&input.note)
            .bind(at)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(q("recording an outcome"))?;
            let details = serde_json::json!({
                "outcome": input.outcome.name(),
                "status": i.status.name(),
                "note_chars": input.note.as_deref().map_or(0, str::len),
            });
            tx.append_audit(self.backend, self.audit_key(),
                actor,
                "intervention.outcome",
                &id.to_string(),
                &details,
            )
            .await?;
            tx.commit().await.map_err(q("committing an outcome"))?;
            Ok(i)
        })
        .await
    }

    /// Marks an open intervention done (its owner carried it out).
    pub async fn mark_done(&self, id: i64, actor: &str, at: i64) -> Result<Intervention> {
        self.tracked(async {
            let mut tx = self.begin_write().await?;
            let row: Option<AnyRow> = sqlx::query(AssertSqlSafe(format!(
                "SELECT {} FROM interventions WHERE id = $1",
                records::INTERVENTION_COLUMNS
            )))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(q("reading an intervention"))?;
            let Some(row) = row else {
                return Err(StoreError::NotFound {
                    what: "intervention",
                    id: id.to_string(),
                });
            };
            let mut i = records::intervention_from_row(&row)?;
            if i.status != Status::Open {
                return Err(StoreError::BadTransition {
                    id,
                    status: i.status.name().into(),
                    message: "only an open intervention can be marked done".into(),
                });
            }
            i.status = Status::Done;
            i.closed_at = Some(at);
            sqlx::query("UPDATE interventions SET status = 'done', closed_at = $1 WHERE id = $2")
                .bind(at)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(q("closing an intervention"))?;
            tx.append_audit(
                self.backend,
                self.audit_key(),
                actor,
                "intervention.done",
                &id.to_string(),
                &serde_json::json!({}),
            )
            .await?;
            tx.commit().await.map_err(q("committing a status change"))?;
            Ok(i)
        })
        .await
    }

    /// Stores what churn data says happened after each record (`churned` or
    /// `retained`), for the records whose window is over.
    pub async fn save_observed(&self, outcomes: &[(i64, bool)], actor: &str) -> Result<()> {
        self.tracked(async {
            let mut tx = self.begin_write().await?;
            for chunk in outcomes.chunks(500) {
                for (id, churned) in chunk {
                    sqlx::query("UPDATE interventions SET observed = $1 WHERE id = $2")
                        .bind(if *churned { "churned" } else { "retained" })
                        .bind(*id)
                        .execute(&mut *tx)
                        .await
                        .map_err(q("saving observed outcomes"))?;
                }
            }
            let details = serde_json::json!({ "records": outcomes.len() });
            tx.append_audit(
                self.backend,
                self.audit_key(),
                actor,
                "outcomes.ingested",
                "interventions",
                &details,
            )
            .await?;
            tx.commit()
                .await
                .map_err(q("committing observed outcomes"))?;
            Ok(())
        })
        .await
    }

    /// Every intervention record (for outcome analysis).
    pub async fn all_interventions(&self) -> Result<Vec<Intervention>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {} FROM interventions ORDER BY id",
            records::INTERVENTION_COLUMNS
        )))
        .fetch_all(&self.pool)
        .await
        .map_err(q("reading interventions"))?;
        rows.iter().map(records::intervention_from_row).collect()
    }

    /// Every intervention with what churn data showed after it (`Some(true)`
    /// churned, `Some(false)` retained, `None` not settled yet).
    pub async fn outcome_records(&self) -> Result<Vec<(Intervention, Option<bool>)>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {}, outcome, observed FROM interventions ORDER BY id",
            records::INTERVENTION_COLUMNS
        )))
        .fetch_all(&self.pool)
        .await
        .map_err(q("reading outcomes"))?;
        rows.iter()
            .map(|r| {
                let s = records::stored_from_row(r)?;
                let observed = s.observed.as_deref().map(|o| o == "churned");
                Ok((s.intervention, observed))
            })
            .collect()
    }

    /// The scores of `ids` in run `run_id`, by customer id.
    pub async fn scores_in_run(
        &self,
        run_id: &str,
        ids: &[String],
    ) -> Result<HashMap<String, CustomerScoreRecord>> {
        records::scores_in_run(&self.pool, run_id, ids).await
    }

    /// A customer's scores, newest first.
    pub async fn customer_history(&self, customer_id: &str) -> Result<Vec<CustomerScoreRecord>> {
        records::customer_history(&self.pool, customer_id).await
    }

    /// One page of a run's risk list, by expected loss.
    pub async fn risk_list(&self, run_id: &str, filter: &RiskListFilter) -> Result<RiskListPage> {
        records::risk_list(&self.pool, run_id, filter).await
    }

    /// Saves KPI scorecards for a run (replacing any for the same run, role and stage).
    pub async fn save_scorecards(
        &self,
        run_id: &str,
        cards: &churnguard_core::kpi::Scorecards,
        actor: &str,
    ) -> Result<()> {
        self.tracked(async {
            let mut tx = self.begin_write().await?;
            tx.save_scorecards(run_id, cards).await?;
            let details = serde_json::json!({
                "role": cards.role.name(),
                "stage": cards.stage.name(),
                "employees": cards.cards.len(),
            });
            tx.append_audit(
                self.backend,
                self.audit_key(),
                actor,
                "kpi.saved",
                run_id,
                &details,
            )
            .await?;
            tx.commit().await.map_err(q("committing scorecards"))?;
            Ok(())
        })
        .await
    }

    /// The configured and data-driven weights stored with a run's scorecards.
    pub async fn kpi_weights(
        &self,
        run_id: &str,
        role: &str,
        stage: &str,
    ) -> Result<Vec<serde_json::Value>> {
        records::kpi_weights(&self.pool, run_id, role, stage).await
    }

    /// Stored scorecards of a run, role and stage, best first.
    pub async fn scorecards(
        &self,
        run_id: &str,
        role: &str,
        stage: &str,
    ) -> Result<Vec<serde_json::Value>> {
        records::scorecards(&self.pool, run_id, role, stage).await
    }

    /// Appends an audit entry on its own.
    pub async fn audit(
        &self,
        actor: &str,
        action: &str,
        subject: &str,
        details: &serde_json::Value,
    ) -> Result<()> {
        self.tracked(async {
            let mut tx = self.begin_write().await?;
            tx.append_audit(
                self.backend,
                self.audit_key(),
                actor,
                action,
                subject,
                details,
            )
            .await?;
            tx.commit().await.map_err(q("committing an audit entry"))?;
            Ok(())
        })
        .await
    }

    /// The audit log, in order.
    pub async fn audit_log(&self) -> Result<Vec<AuditEntry>> {
        audit::entries(&self.pool).await
    }

    /// Checks the audit log's hash chain; returns the number of entries, or
    /// every problem found.
    pub async fn verify_audit(
        &self,
        head: Option<&AuditHead>,
    ) -> Result<std::result::Result<usize, Vec<AuditProblem>>> {
        Ok(audit::verify(
            &self.audit_log().await?,
            self.audit_key(),
            head,
        ))
    }

    /// The newest audit entry's sequence and hash, to export and check
    /// later with [`Store::verify_audit`]; `None` while the log is empty.
    pub async fn audit_head(&self) -> Result<Option<AuditHead>> {
        Ok(self.audit_log().await?.last().map(|e| AuditHead {
            seq: e.seq,
            hash: e.hash.clone(),
        }))
    }

    /// Runs raw SQL (tests use it to tamper with rows).
    #[doc(hidden)]
    pub async fn execute_raw(&self, sql: &str) -> Result<u64> {
        Ok(sqlx::raw_sql(AssertSqlSafe(sql.to_string()))
            .execute(&self.pool)
            .await
            .map_err(q("raw SQL"))?
            .rows_affected())
    }
}

/// Seconds since 1970-01-01 UTC.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[cfg(test)]
mod url_tests {
    use super::sqlite_folder_missing;

    #[test]
    fn a_sqlite_file_in_a_missing_folder_is_named() {
        let tmp = std::env::temp_dir();
        let missing = tmp.join("churnguard-no-such-folder-3f9a").join("s.db");
        let msg = sqlite_folder_missing(&format!("sqlite://{}", missing.display())).unwrap();
        assert!(msg.contains("churnguard-no-such-folder-3f9a"), "{msg}");
        assert!(sqlite_folder_missing(&missing.display().to_string()).is_some());
        let present = tmp.join("s.db");
        assert_eq!(
            sqlite_folder_missing(&format!("sqlite://{}?mode=rwc", present.display())),
            None
        );
        for fine in [
            "sqlite://s.db",
            "sqlite::memory:",
            "sqlite://:memory:",
            "postgres://root@127.0.0.1/test",
            "s.db",
        ] {
            assert_eq!(sqlite_folder_missing(fine), None, "{fine}");
        }
    }
}
