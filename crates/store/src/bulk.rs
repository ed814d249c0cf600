//! A scoring run's rows, written in bulk inside the run's one transaction,
//! on a native driver connection: SQLite through one prepared statement
//! stepped once per row, PostgreSQL through `COPY … FROM STDIN`.
//!
//! Why not sqlx's `Any` driver, which serves every other query: it binds
//! each value through a conversion layer and sends each statement to the
//! SQLite worker thread as a message, which made a 1M-customer run spend
//! most of its time in the store (50.9 s of a 1M-row `score`). A prepared
//! statement stepped directly costs about a microsecond a row, and COPY is
//! PostgreSQL's own bulk path.

use std::ffi::{c_int, CStr, CString};
use std::io::Write;
use std::ptr::NonNull;

use rayon::prelude::*;

use crate::{CustomerScoreRecord, Result, ShadowSample, StoreError, SCORE_COLUMNS};

/// Rows whose JSON columns are written ahead of their inserts, at a time.
const CHUNK: usize = 8192;

/// The two JSON columns of a score row, in their stored form.
fn json_columns(s: &CustomerScoreRecord) -> (String, String) {
    (
        crate::records::components_text(&s.components),
        crate::records::reasons_text(&s.reasons),
    )
}

/// A SQLite failure: the database's own message, and whether the database
/// could not take the write (full, locked, read-only, I/O) rather than a bug.
fn sqlite_error(
    db: NonNull<libsqlite3_sys::sqlite3>,
    what: &'static str,
    code: c_int,
) -> StoreError {
    use libsqlite3_sys as ffi;
    // SAFETY: `db` is the open handle the caller holds locked; the message
    // is copied before any other call on it.
    let message = unsafe {
        let m = ffi::sqlite3_errmsg(db.as_ptr());
        if m.is_null() {
            format!("SQLite error {code}")
        } else {
            CStr::from_ptr(m).to_string_lossy().into_owned()
        }
    };
    let primary = code & 0xff;
    let unavailable = matches!(
        primary,
        ffi::SQLITE_BUSY
            | ffi::SQLITE_LOCKED
            | ffi::SQLITE_READONLY
            | ffi::SQLITE_IOERR
            | ffi::SQLITE_FULL
            | ffi::SQLITE_CANTOPEN
    );
    StoreError::Native {
        what,
        message,
        unavailable,
    }
}

/// A prepared statement, finalized on drop.
struct Statement {
    db: NonNull<libsqlite3_sys::sqlite3>,
    raw: *mut libsqlite3_sys::sqlite3_stmt,
    /// What its rows are, for error messages ("inserting scores").
    what: &'static str,
}

impl Drop for Statement {
    fn drop(&mut self) {
        // SAFETY: `raw` came from sqlite3_prepare_v2 on `db` and is
        // finalized exactly once.
        unsafe {
            libsqlite3_sys::sqlite3_finalize(self.raw);
        }
    }
}

impl Statement {
    fn prepare(
        db: NonNull<libsqlite3_sys::sqlite3>,
        sql: &str,
        what: &'static str,
    ) -> Result<Statement> {
        let text = CString::new(sql).expect("SQL has no NUL byte");
        let mut raw = std::ptr::null_mut();
        // SAFETY: `db` is open and locked by the caller; `text` outlives the call.
        let rc = unsafe {
            libsqlite3_sys::sqlite3_prepare_v2(
                db.as_ptr(),
                text.as_ptr(),
                -1,
                &mut raw,
                std::ptr::null_mut(),
            )
        };
        if rc != libsqlite3_sys::SQLITE_OK {
            return Err(sqlite_error(db, what, rc));
        }
        Ok(Statement { db, raw, what })
    }

    fn check(&self, rc: c_int) -> Result<()> {
        if rc == libsqlite3_sys::SQLITE_OK {
            Ok(())
        } else {
            Err(sqlite_error(self.db, self.what, rc))
        }
    }

    /// Binds text that stays alive until the statement is stepped and reset
    /// (SQLITE_STATIC: no copy).
    fn text(&mut self, i: c_int, v: Option<&str>) -> Result<()> {
        // SAFETY: the statement is live; the caller keeps `v` alive until
        // after the step and reset of this row.
        let rc = unsafe {
            match v {
                Some(s) => libsqlite3_sys::sqlite3_bind_text(
                    self.raw,
                    i,
                    s.as_ptr().cast(),
                    c_int::try_from(s.len()).unwrap_or(c_int::MAX),
                    libsqlite3_sys::SQLITE_STATIC(),
                ),
                None => libsqlite3_sys::sqlite3_bind_null(self.raw, i),
            }
        };
        self.check(rc)
    }

    fn real(&mut self, i: c_int, v: Option<f64>) -> Result<()> {
        // SAFETY: the statement is live.
        let rc = unsafe {
            match v {
                Some(x) => libsqlite3_sys::sqlite3_bind_double(self.raw, i, x),
                None => libsqlite3_sys::sqlite3_bind_null(self.raw, i),
            }
        };
        self.check(rc)
    }

    fn int(&mut self, i: c_int, v: Option<i64>) -> Result<()> {
        // SAFETY: the statement is live.
        let rc = unsafe {
            match v {
                Some(x) => libsqlite3_sys::sqlite3_bind_int64(self.raw, i, x),
                None => libsqlite3_sys::sqlite3_bind_null(self.raw, i),
            }
        };
        self.check(rc)
    }

    /// Steps a query: `true` while it has a row to read.
    fn next_row(&mut self) -> Result<bool> {
        // SAFETY: the statement is live.
        match unsafe { libsqlite3_sys::sqlite3_step(self.raw) } {
            libsqlite3_sys::SQLITE_ROW => Ok(true),
            libsqlite3_sys::SQLITE_DONE => Ok(false),
            rc => Err(sqlite_error(self.db, self.what, rc)),
        }
    }

    /// The current row's column `i` as text (`None` for NULL).
    fn column_text(&self, i: c_int) -> Option<&[u8]> {
        // SAFETY: the statement is on a row (the caller's `next_row` said
        // so); the pointer and length are read before any other call on the
        // statement and copied by the caller before it steps again.
        unsafe {
            let p = libsqlite3_sys::sqlite3_column_text(self.raw, i);
            if p.is_null() {
                return None;
            }
            let n = libsqlite3_sys::sqlite3_column_bytes(self.raw, i);
            Some(std::slice::from_raw_parts(
                p,
                usize::try_from(n).unwrap_or(0),
            ))
        }
    }

    /// The current row's column `i` as a number (0.0 for NULL, as SQLite's).
    fn column_real(&self, i: c_int) -> f64 {
        // SAFETY: the statement is on a row.
        unsafe { libsqlite3_sys::sqlite3_column_double(self.raw, i) }
    }

    /// Runs the bound row and readies the statement for the next.
    fn step_and_reset(&mut self) -> Result<()> {
        // SAFETY: the statement is live; reset after every step.
        let rc = unsafe { libsqlite3_sys::sqlite3_step(self.raw) };
        // SAFETY: as above.
        unsafe { libsqlite3_sys::sqlite3_reset(self.raw) };
        if rc == libsqlite3_sys::SQLITE_DONE {
            Ok(())
        } else {
            Err(sqlite_error(self.db, self.what, rc))
        }
    }
}

/// Runs one SQL statement without results (`BEGIN`, `COMMIT`).
fn exec(db: NonNull<libsqlite3_sys::sqlite3>, sql: &str, what: &'static str) -> Result<()> {
    let text = CString::new(sql).expect("SQL has no NUL byte");
    // SAFETY: `db` is open and locked by the caller; no callback is given.
    let rc = unsafe {
        libsqlite3_sys::sqlite3_exec(
            db.as_ptr(),
            text.as_ptr(),
            None,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
    if rc == libsqlite3_sys::SQLITE_OK {
        Ok(())
    } else {
        Err(sqlite_error(db, what, rc))
    }
}

/// Inserts shadow pairs in one transaction of their own, through one
/// prepared statement, all on the calling thread: the server's shadow
/// thread runs at a lower priority, and so then does the write.
pub(crate) async fn insert_shadow_sqlite(
    conn: &mut sqlx::SqliteConnection,
    samples: &[ShadowSample],
) -> Result<()> {
    let mut handle = conn
        .lock_handle()
        .await
        .map_err(crate::q("locking the connection"))?;
    let db = handle.as_raw_handle();
    exec(db, "BEGIN IMMEDIATE", "starting a transaction")?;
    let inserted = (|| {
        let mut stmt = Statement::prepare(
            db,
            "INSERT INTO shadow_scores (scored_at, customer_id, champion_model, shadow_model, \
             champion_probability, shadow_probability) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            "saving shadow scores",
        )?;
        for s in samples {
            // SAFETY: the statement is live.
            let rc = unsafe { libsqlite3_sys::sqlite3_bind_int64(stmt.raw, 1, s.scored_at) };
            stmt.check(rc)?;
            stmt.text(2, Some(&s.customer_id))?;
            stmt.text(3, Some(&s.champion_model))?;
            stmt.text(4, Some(&s.shadow_model))?;
            stmt.real(5, Some(s.champion_probability))?;
            stmt.real(6, Some(s.shadow_probability))?;
            stmt.step_and_reset()?;
        }
        Ok(())
    })()
    .and_then(|()| exec(db, "COMMIT", "committing shadow scores"));
    if inserted.is_err() {
        let _ = exec(db, "ROLLBACK", "rolling back shadow scores");
    }
    drop(handle);
    inserted
}

/// Inserts every score row through one prepared statement. Runs inside the
/// transaction the caller opened on `conn`.
pub(crate) async fn insert_scores_sqlite(
    conn: &mut sqlx::SqliteConnection,
    scores: &[CustomerScoreRecord],
) -> Result<()> {
    let sql = format!(
        "INSERT INTO customer_scores ({SCORE_COLUMNS}) VALUES ({})",
        (1..=22)
            .map(|i| format!("?{i}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut handle = conn
        .lock_handle()
        .await
        .map_err(crate::q("locking the connection"))?;
    let db = handle.as_raw_handle();
    let mut stmt = Statement::prepare(db, &sql, "inserting scores")?;
    // Rows go in by customer id (SQLite's BINARY order is byte order, as
    // Rust's): the table is keyed by (run, customer), so the inserts sweep
    // its B-tree once instead of landing on random pages; only the risk
    // index takes inserts out of order.
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.par_sort_unstable_by(|&a, &b| scores[a].customer_id.cmp(&scores[b].customer_id));
    // The JSON columns are written on a thread of their own, a few chunks
    // ahead, while this one steps the inserts: SQLite's writer is one
    // thread, and it should spend it in the B-tree only.
    std::thread::scope(|scope| {
        let (ready, chunks) = std::sync::mpsc::sync_channel::<Vec<(String, String)>>(4);
        let order = &order;
        scope.spawn(move || {
            for chunk in order.chunks(CHUNK) {
                let json = chunk.iter().map(|&i| json_columns(&scores[i])).collect();
                if ready.send(json).is_err() {
                    return; // the inserts stopped on an error
                }
            }
        });
        for (chunk, json) in order.chunks(CHUNK).zip(chunks) {
            for (&i, (components, reasons)) in chunk.iter().zip(&json) {
                let s = &scores[i];
                stmt.text(1, Some(&s.run_id))?;
                stmt.text(2, Some(&s.customer_id))?;
                stmt.text(3, Some(&s.snapshot_date))?;
                stmt.text(4, s.name.as_deref())?;
                stmt.text(5, s.owner.as_deref())?;
                stmt.text(6, s.segment.as_deref())?;
                stmt.real(7, Some(s.churn_probability))?;
                stmt.real(8, s.p_involuntary)?;
                stmt.text(9, s.churn_type.as_deref())?;
                stmt.real(10, Some(s.clv))?;
                stmt.real(11, s.clv_cac)?;
                stmt.real(12, Some(s.expected_loss))?;
                stmt.real(13, Some(s.health))?;
                stmt.text(14, Some(&s.band))?;
                stmt.real(15, s.health_change)?;
                stmt.text(16, Some(&s.trend))?;
                stmt.text(17, Some(&s.profile))?;
                stmt.text(18, Some(components))?;
                stmt.text(19, Some(reasons))?;
                stmt.text(20, s.intervention.as_deref())?;
                stmt.text(21, s.computed_band.as_deref())?;
                stmt.text(22, s.owner_name.as_deref())?;
                stmt.step_and_reset()?;
            }
        }
        Ok::<(), StoreError>(())
    })?;
    drop(stmt);
    drop(handle);
    Ok(())
}

/// Applies a run's intervention plan through prepared statements: creates
/// the new ones (returning their ids, in plan order), refreshes the open
/// ones seen again, and closes the recovered and expired. The same writes
/// as `WriteStatements::apply_plan`, which PostgreSQL keeps; on SQLite a
/// 1M-customer run creates about 118,000 interventions, and one sqlx
/// query each took 7.0 s of its transaction. Runs inside the transaction
/// the caller opened on `conn`.
pub(crate) async fn apply_plan_sqlite(
    conn: &mut sqlx::SqliteConnection,
    plan: &churnguard_core::interventions::Plan,
) -> Result<Vec<i64>> {
    let mut handle = conn
        .lock_handle()
        .await
        .map_err(crate::q("locking the connection"))?;
    let db = handle.as_raw_handle();
    let mut ids = Vec::with_capacity(plan.created.len());
    let mut create = Statement::prepare(
        db,
        "INSERT INTO interventions (customer_id, playbook, rule, channel, owner_role, owner, priority, arm, status,
            created_run, created_at, due_at, last_seen_at, closed_at, churn_probability, clv, expected_value, effect, cost)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)",
        "creating an intervention",
    )?;
    for i in &plan.created {
        create.text(1, Some(&i.customer_id))?;
        create.text(2, Some(&i.playbook))?;
        create.text(3, Some(&i.rule))?;
        create.text(4, Some(&i.channel))?;
        create.text(5, Some(&i.owner_role))?;
        create.text(6, Some(&i.owner))?;
        create.int(7, Some(i64::from(i.priority)))?;
        create.text(8, Some(i.arm.name()))?;
        create.text(9, Some(i.status.name()))?;
        create.text(10, Some(&i.created_run))?;
        create.int(11, Some(i.created_at))?;
        create.int(12, Some(i.due_at))?;
        create.int(13, Some(i.last_seen_at))?;
        create.int(14, i.closed_at)?;
        create.real(15, Some(i.churn_probability))?;
        create.real(16, Some(i.clv))?;
        create.real(17, Some(i.expected_value))?;
        create.real(18, Some(i.effect))?;
        create.real(19, Some(i.cost))?;
        create.step_and_reset()?;
        // SAFETY: `db` is open and locked; the row was just inserted on it.
        ids.push(unsafe { libsqlite3_sys::sqlite3_last_insert_rowid(db.as_ptr()) });
    }
    drop(create);
    let mut refresh = Statement::prepare(
        db,
        "UPDATE interventions SET last_seen_at = ?1, churn_probability = ?2, clv = ?3, expected_value = ?4, effect = ?5
         WHERE id = ?6 AND status = 'open'",
        "updating an intervention",
    )?;
    for i in &plan.updated {
        refresh.int(1, Some(i.last_seen_at))?;
        refresh.real(2, Some(i.churn_probability))?;
        refresh.real(3, Some(i.clv))?;
        refresh.real(4, Some(i.expected_value))?;
        refresh.real(5, Some(i.effect))?;
        refresh.int(6, Some(i.id))?;
        refresh.step_and_reset()?;
    }
    drop(refresh);
    let now = crate::statements::plan_clock(plan);
    let mut close = Statement::prepare(
        db,
        "UPDATE interventions SET status = ?1, closed_at = ?2 WHERE id = ?3 AND status = 'open'",
        "closing an intervention",
    )?;
    for (ids, status) in [
        (
            &plan.recovered,
            churnguard_core::interventions::Status::ClosedRecovered,
        ),
        (
            &plan.expired,
            churnguard_core::interventions::Status::Expired,
        ),
    ] {
        for id in ids {
            close.text(1, Some(status.name()))?;
            close.int(2, Some(now))?;
            close.int(3, Some(*id))?;
            close.step_and_reset()?;
        }
    }
    drop(close);
    drop(handle);
    Ok(ids)
}

/// Every `(customer_id, health, band)` of one run, read through one
/// prepared statement: the trend baseline of the next run. Through sqlx's
/// `Any` driver each of a 1M-customer run's rows was converted twice and
/// sent across threads; stepping the statement reads the rows in key order
/// straight from the B-tree. A text that is not UTF-8 is a corrupt row.
pub(crate) async fn run_health_sqlite(
    conn: &mut sqlx::SqliteConnection,
    run_id: &str,
) -> Result<Vec<(String, f64, String)>> {
    let mut handle = conn
        .lock_handle()
        .await
        .map_err(crate::q("locking the connection"))?;
    let db = handle.as_raw_handle();
    let mut stmt = Statement::prepare(
        db,
        "SELECT customer_id, health, band FROM customer_scores WHERE run_id = ?1",
        "reading previous scores",
    )?;
    stmt.text(1, Some(run_id))?;
    let text = |v: Option<&[u8]>, column: &str| -> Result<String> {
        let bytes = v.unwrap_or_default();
        String::from_utf8(bytes.to_vec()).map_err(|_| StoreError::Corrupt {
            table: "customer_scores",
            message: format!("{column} is not UTF-8 text in run {run_id}"),
        })
    };
    let mut rows = Vec::new();
    while stmt.next_row()? {
        rows.push((
            text(stmt.column_text(0), "customer_id")?,
            stmt.column_real(1),
            text(stmt.column_text(2), "band")?,
        ));
    }
    drop(stmt);
    drop(handle);
    Ok(rows)
}

/// A CSV field for COPY: `None` is an unquoted empty field (NULL), text is
/// always quoted (so an empty string stays an empty string).
fn csv_text(out: &mut Vec<u8>, v: Option<&str>) {
    if let Some(s) = v {
        out.push(b'"');
        for b in s.bytes() {
            if b == b'"' {
                out.push(b'"');
            }
            out.push(b);
        }
        out.push(b'"');
    }
}

fn csv_real(out: &mut Vec<u8>, v: Option<f64>) {
    if let Some(x) = v {
        // Rust prints f64 so that it parses back to the same value.
        let _ = write!(out, "{x:?}");
    }
}

/// Score rows as COPY's CSV lines.
fn csv_lines(chunk: &[CustomerScoreRecord]) -> Vec<u8> {
    let mut out = Vec::with_capacity(chunk.len() * 400);
    for s in chunk {
        let (components, reasons) = json_columns(s);
        let o = &mut out;
        csv_text(o, Some(&s.run_id));
        o.push(b',');
        csv_text(o, Some(&s.customer_id));
        o.push(b',');
        csv_text(o, Some(&s.snapshot_date));
        o.push(b',');
        csv_text(o, s.name.as_deref());
        o.push(b',');
        csv_text(o, s.owner.as_deref());
        o.push(b',');
        csv_text(o, s.segment.as_deref());
        o.push(b',');
        csv_real(o, Some(s.churn_probability));
        o.push(b',');
        csv_real(o, s.p_involuntary);
        o.push(b',');
        csv_text(o, s.churn_type.as_deref());
        o.push(b',');
        csv_real(o, Some(s.clv));
        o.push(b',');
        csv_real(o, s.clv_cac);
        o.push(b',');
        csv_real(o, Some(s.expected_loss));
        o.push(b',');
        csv_real(o, Some(s.health));
        o.push(b',');
        csv_text(o, Some(&s.band));
        o.push(b',');
        csv_real(o, s.health_change);
        o.push(b',');
        csv_text(o, Some(&s.trend));
        o.push(b',');
        csv_text(o, Some(&s.profile));
        o.push(b',');
        csv_text(o, Some(&components));
        o.push(b',');
        csv_text(o, Some(&reasons));
        o.push(b',');
        csv_text(o, s.intervention.as_deref());
        o.push(b',');
        csv_text(o, s.computed_band.as_deref());
        o.push(b',');
        csv_text(o, s.owner_name.as_deref());
        out.push(b'\n');
    }
    out
}

/// Sends every score row through `COPY … FROM STDIN (FORMAT csv)`. Runs
/// inside the transaction the caller opened on `conn`.
pub(crate) async fn copy_scores_postgres(
    conn: &mut sqlx::PgConnection,
    scores: &[CustomerScoreRecord],
) -> Result<()> {
    let mut copy = conn
        .copy_in_raw(&format!(
            "COPY customer_scores ({SCORE_COLUMNS}) FROM STDIN WITH (FORMAT csv)"
        ))
        .await
        .map_err(crate::q("starting COPY of scores"))?;
    for chunk in scores.chunks(CHUNK * 4) {
        let bytes: Vec<u8> = chunk
            .par_chunks(1024)
            .map(csv_lines)
            .collect::<Vec<_>>()
            .concat();
        if let Err(e) = copy.send(bytes).await {
            let _ = copy.abort("churnguard could not send a score row").await;
            return Err(crate::q("copying scores")(e));
        }
    }
    copy.finish()
        .await
        .map_err(crate::q("finishing COPY of scores"))?;
    Ok(())
}

/// Created interventions as COPY's CSV lines, each with the id drawn for it.
fn intervention_lines(rows: &[(i64, &churnguard_core::interventions::Intervention)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rows.len() * 200);
    for (id, i) in rows {
        let o = &mut out;
        let _ = write!(o, "{id},");
        for text in [
            i.customer_id.as_str(),
            &i.playbook,
            &i.rule,
            &i.channel,
            &i.owner_role,
            &i.owner,
        ] {
            csv_text(o, Some(text));
            o.push(b',');
        }
        let _ = write!(o, "{},", i.priority);
        csv_text(o, Some(i.arm.name()));
        o.push(b',');
        csv_text(o, Some(i.status.name()));
        o.push(b',');
        csv_text(o, Some(&i.created_run));
        let _ = write!(o, ",{},{},{},", i.created_at, i.due_at, i.last_seen_at);
        if let Some(closed) = i.closed_at {
            let _ = write!(o, "{closed}");
        }
        for x in [
            i.churn_probability,
            i.clv,
            i.expected_value,
            i.effect,
            i.cost,
        ] {
            o.push(b',');
            csv_real(o, Some(x));
        }
        o.push(b'\n');
    }
    out
}

/// Applies a run's intervention plan on PostgreSQL in bulk: the new ones'
/// ids are drawn from the table's sequence in one query and the rows sent
/// through `COPY` with them (in plan order, as the caller expects); the
/// refreshes and closes are one `UPDATE` each over arrays. The same writes
/// as `WriteStatements::apply_plan`: a 1M-customer run creates about
/// 118,000 interventions, and one `INSERT … RETURNING` each took 13.3 s of
/// its transaction. Runs inside the transaction the caller opened.
pub(crate) async fn apply_plan_postgres(
    conn: &mut sqlx::PgConnection,
    plan: &churnguard_core::interventions::Plan,
) -> Result<Vec<i64>> {
    let ids: Vec<i64> = if plan.created.is_empty() {
        Vec::new()
    } else {
        sqlx::query_scalar(
            "SELECT nextval(pg_get_serial_sequence('interventions', 'id')) FROM generate_series(1, $1)",
        )
        .bind(plan.created.len() as i64)
        .fetch_all(&mut *conn)
        .await
        .map_err(crate::q("drawing intervention ids"))?
    };
    if !plan.created.is_empty() {
        let mut copy = conn
            .copy_in_raw(
                "COPY interventions (id, customer_id, playbook, rule, channel, owner_role, owner, priority, arm, status,
                    created_run, created_at, due_at, last_seen_at, closed_at, churn_probability, clv, expected_value, effect, cost)
                 FROM STDIN WITH (FORMAT csv)",
            )
            .await
            .map_err(crate::q("starting COPY of interventions"))?;
        let rows: Vec<(i64, &churnguard_core::interventions::Intervention)> =
            ids.iter().copied().zip(&plan.created).collect();
        for chunk in rows.chunks(CHUNK * 4) {
            if let Err(e) = copy.send(intervention_lines(chunk)).await {
                let _ = copy
                    .abort("churnguard could not send an intervention")
                    .await;
                return Err(crate::q("copying interventions")(e));
            }
        }
        copy.finish()
            .await
            .map_err(crate::q("finishing COPY of interventions"))?;
    }
    if !plan.updated.is_empty() {
        let u = &plan.updated;
        sqlx::query(
            "UPDATE interventions AS i SET last_seen_at = v.last_seen_at, churn_probability = v.p,
                 clv = v.clv, expected_value = v.ev, effect = v.effect
             FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::DOUBLE PRECISION[], $4::DOUBLE PRECISION[],
                         $5::DOUBLE PRECISION[], $6::DOUBLE PRECISION[]) AS v(id, last_seen_at, p, clv, ev, effect)
             WHERE i.id = v.id AND i.status = 'open'",
        )
        .bind(u.iter().map(|i| i.id).collect::<Vec<i64>>())
        .bind(u.iter().map(|i| i.last_seen_at).collect::<Vec<i64>>())
        .bind(u.iter().map(|i| i.churn_probability).collect::<Vec<f64>>())
        .bind(u.iter().map(|i| i.clv).collect::<Vec<f64>>())
        .bind(u.iter().map(|i| i.expected_value).collect::<Vec<f64>>())
        .bind(u.iter().map(|i| i.effect).collect::<Vec<f64>>())
        .execute(&mut *conn)
        .await
        .map_err(crate::q("updating interventions"))?;
    }
    let now = crate::statements::plan_clock(plan);
    for (closed, status) in [
        (
            &plan.recovered,
            churnguard_core::interventions::Status::ClosedRecovered,
        ),
        (
            &plan.expired,
            churnguard_core::interventions::Status::Expired,
        ),
    ] {
        if closed.is_empty() {
            continue;
        }
        sqlx::query(
            "UPDATE interventions SET status = $1, closed_at = $2 WHERE id = ANY($3) AND status = 'open'",
        )
        .bind(status.name())
        .bind(now)
        .bind(closed.clone())
        .execute(&mut *conn)
        .await
        .map_err(crate::q("closing interventions"))?;
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_keep_nulls_empty_strings_and_quotes_apart() {
        let mut out = Vec::new();
        csv_text(&mut out, None);
        out.push(b',');
        csv_text(&mut out, Some(""));
        out.push(b',');
        csv_text(&mut out, Some("say \"hi\", ok\n"));
        out.push(b',');
        csv_real(&mut out, Some(0.1));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            ",\"\",\"say \"\"hi\"\", ok\n\",0.1"
        );
    }
}
