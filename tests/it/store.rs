//! The store against both backends: SQLite in a temp dir, and the real
//! PostgreSQL this machine runs (a fresh schema per test). Without a
//! reachable PostgreSQL the Postgres half prints `skipping: …`, unless
//! `CHURNGUARD_REQUIRE_POSTGRES=1` (as `.ci/run` sets) makes that a failure.

use churnguard::health::{Band, Component, ComponentScore, Direction};
use churnguard::interventions::{self, InterventionPolicy, PolicyInput, Status};
use churnguard::store::{
    Backend, CustomerScoreRecord, InterventionFilter, OutcomeInput, RiskListFilter, RunRecord,
    StaffOutcome, Store, StoreError,
};

/// The PostgreSQL URL tests use.
pub fn postgres_url() -> String {
    std::env::var("CHURNGUARD_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/test".into())
}

/// A store on a fresh schema of the test PostgreSQL and the schema's name,
/// or `None` (skipping).
pub async fn postgres_store(test: &str) -> Option<(Store, String)> {
    use sqlx::Connection;
    let url = postgres_url();
    let required = std::env::var("CHURNGUARD_REQUIRE_POSTGRES").is_ok_and(|v| v == "1");
    let mut conn = match sqlx::PgConnection::connect(&url).await {
        Ok(c) => c,
        Err(e) => {
            assert!(
                !required,
                "PostgreSQL required but unreachable at {url}: {e}"
            );
            eprintln!("skipping: PostgreSQL unreachable at {url} ({e}) for {test}");
            return None;
        }
    };
    let schema = format!(
        "cg_{}_{}_{}",
        test,
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
    )))
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    let sep = if url.contains('?') { '&' } else { '?' };
    let scoped = format!("{url}{sep}options=-c%20search_path%3D{schema}");
    Some((Store::connect(&scoped).await.unwrap(), schema))
}

/// Drops a test schema.
pub async fn drop_schema(schema: &str) {
    use sqlx::Connection;
    if let Ok(mut conn) = sqlx::PgConnection::connect(&postgres_url()).await {
        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE"
        )))
        .execute(&mut conn)
        .await;
        let _ = conn.close().await;
    }
}

async fn sqlite_store(dir: &std::path::Path) -> Store {
    Store::connect(&format!("sqlite://{}", dir.join("t.db").display()))
        .await
        .unwrap()
}

fn record(run: &str, id: usize, loss: f64, band: &str, owner: &str) -> CustomerScoreRecord {
    CustomerScoreRecord {
        run_id: run.into(),
        customer_id: format!("c{id:03}"),
        snapshot_date: "2024-06-01".into(),
        name: Some(format!("Company {id}")),
        owner: Some(owner.into()),
        segment: Some("growth".into()),
        churn_probability: 0.1,
        p_involuntary: Some(0.2),
        churn_type: Some("voluntary".into()),
        clv: 1000.0,
        clv_cac: None,
        expected_loss: loss,
        health: 50.0,
        band: band.into(),
        computed_band: None,
        owner_name: Some(format!("Person {owner}")),
        health_change: None,
        trend: "new".into(),
        profile: "default".into(),
        components: vec![ComponentScore {
            component: Component::ChurnRisk,
            score: Some(80.0),
            weight: 1.0,
            contribution: 80.0,
        }],
        reasons: vec![],
        intervention: None,
    }
}

fn run(id: &str, snapshot: &str, n: usize) -> RunRecord {
    RunRecord {
        run_id: id.into(),
        created_at: 1_700_000_000,
        snapshot_date: snapshot.into(),
        model_id: "m1".into(),
        model_family: "logistic".into(),
        source: "test".into(),
        customers: n,
        summary: churnguard::scoring::RunSummary {
            horizon_days: 90,
            ..Default::default()
        },
    }
}

fn policy_input(id: &str, band: Band) -> PolicyInput {
    PolicyInput {
        customer_id: id.into(),
        health: 30.0,
        band,
        previous_band: None,
        health_change: None,
        direction: Direction::New,
        churn_type: None,
        churn_probability: 0.5,
        clv: 5000.0,
        clv_segment: interventions::ClvSegment::Medium,
        payment_failures: Some(0.0),
        account_manager: Some("am-1".into()),
        suppressed: false,
    }
}

async fn risk_list_pages_are_stable_and_filtered(store: &Store) {
    // 25 customers; expected losses with ties, so the cursor must break them by id.
    let scores: Vec<CustomerScoreRecord> = (0..25)
        .map(|i| {
            let band = ["red", "yellow", "green"][i % 3];
            let owner = if i % 2 == 0 { "am-1" } else { "am-2" };
            record("r1", i, f64::from((i % 5) as u32) * 10.0, band, owner)
        })
        .collect();
    store
        .save_run(
            &run("r1", "2024-06-01", 25),
            &scores,
            &Default::default(),
            &[],
            "test",
        )
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .risk_list(
                "r1",
                &RiskListFilter {
                    limit: 7,
                    cursor: cursor.clone(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(page.total, 25);
        seen.extend(
            page.rows
                .iter()
                .map(|r| (r.expected_loss, r.customer_id.clone())),
        );
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen.len(), 25, "every row once");
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    assert_eq!(seen, sorted, "pages follow expected loss, ties by id");
    let red_am1 = store
        .risk_list(
            "r1",
            &RiskListFilter {
                band: Some("red".into()),
                owner: Some("am-1".into()),
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(red_am1
        .rows
        .iter()
        .all(|r| r.band == "red" && r.owner.as_deref() == Some("am-1")));
    assert_eq!(
        red_am1.total,
        (0..25).filter(|i| i % 3 == 0 && i % 2 == 0).count()
    );
    let search = store
        .risk_list(
            "r1",
            &RiskListFilter {
                search: Some("company 1".into()),
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(search.total, 11, "Company 1 and 10..19");
    let by_id = store
        .risk_list(
            "r1",
            &RiskListFilter {
                search: Some("c007".into()),
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(by_id.total, 1);
    // Sorting by another column, ascending, still pages through everything.
    let mut n = 0;
    let mut cursor = None;
    loop {
        let page = store
            .risk_list(
                "r1",
                &RiskListFilter {
                    sort: Some("name".into()),
                    ascending: true,
                    limit: 10,
                    cursor,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        n += page.rows.len();
        if page.next_cursor.is_none() {
            break;
        }
        cursor = page.next_cursor;
    }
    assert_eq!(n, 25);
    // Trend baseline: the latest run on or before a snapshot.
    let prev = store.previous_scores("2024-07-01").await.unwrap();
    assert_eq!(prev.len(), 25);
    for (id, band) in [
        ("c000", Band::Red),
        ("c001", Band::Yellow),
        ("c024", Band::Red),
    ] {
        let p = &prev[id];
        assert_eq!((p.health, p.band), (50.0, band), "{id}");
    }
    assert!(store
        .previous_scores("2024-05-01")
        .await
        .unwrap()
        .is_empty());
}

async fn interventions_follow_their_state_machine(store: &Store) {
    let policy = InterventionPolicy {
        control_share: 0.0,
        ..Default::default()
    };
    let now = 1_720_000_000;
    let plan = interventions::plan(
        &policy,
        &[policy_input("a", Band::Red), policy_input("b", Band::Red)],
        &[],
        "r2",
        now,
        &interventions::PlanContext::default(),
    );
    let ids = store
        .save_run(&run("r2", "2024-07-01", 2), &[], &plan, &[], "test")
        .await
        .unwrap();
    assert_eq!(ids.len(), 2);
    let open = store
        .interventions(&InterventionFilter {
            status: Some(Status::Open),
            owner: Some("am-1".into()),
            limit: 50,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(open.len(), 2);
    let done = store
        .record_outcome(
            ids[0],
            &OutcomeInput {
                outcome: StaffOutcome::Retained,
                note: Some("renewed for a year".into()),
            },
            "admin-key",
            now + 3600,
        )
        .await
        .unwrap();
    assert_eq!(done.status, Status::Done);
    let stored = store.intervention(ids[0]).await.unwrap();
    assert_eq!(stored.outcome.as_deref(), Some("retained"));
    assert_eq!(stored.observed, None);
    match store.intervention(999_999).await {
        Err(StoreError::NotFound { .. }) => {}
        other => panic!("{other:?}"),
    }
    // The planner sees the open one and updates it instead of repeating it.
    let existing = store
        .interventions_for_planning(now + 86_400, 60.0)
        .await
        .unwrap();
    let again = interventions::plan(
        &policy,
        &[policy_input("b", Band::Red)],
        &existing,
        "r3",
        now + 86_400,
        &interventions::PlanContext::default(),
    );
    assert!(again.created.is_empty());
    assert_eq!(again.updated.len(), 1);
    // Saved, the refresh reaches the open intervention (bulk `UPDATE`s on
    // both backends) and creates nothing.
    let none = store
        .save_run(&run("r3", "2024-07-02", 1), &[], &again, &[], "test")
        .await
        .unwrap();
    assert!(none.is_empty());
    let b = store.intervention(ids[1]).await.unwrap().intervention;
    assert_eq!(
        (b.status, b.last_seen_at),
        (Status::Open, again.updated[0].last_seen_at)
    );
    // Back to green, it closes as recovered.
    let existing = store
        .interventions_for_planning(now + 2 * 86_400, 60.0)
        .await
        .unwrap();
    let green = interventions::plan(
        &policy,
        &[policy_input("b", Band::Green)],
        &existing,
        "r4",
        now + 2 * 86_400,
        &interventions::PlanContext::default(),
    );
    assert_eq!(green.recovered, vec![ids[1]]);
    store
        .save_run(&run("r4", "2024-07-03", 1), &[], &green, &[], "test")
        .await
        .unwrap();
    let b = store.intervention(ids[1]).await.unwrap().intervention;
    assert_eq!(b.status, Status::ClosedRecovered);
    assert!(b.closed_at.is_some());
}

async fn the_audit_chain_catches_edits_deletions_and_reordering(store: &Store) {
    for k in 0..6 {
        store
            .audit(
                "test",
                "probe",
                &k.to_string(),
                &serde_json::json!({"k": k}),
            )
            .await
            .unwrap();
    }
    let n = store.verify_audit(None).await.unwrap().unwrap();
    assert!(n >= 6);
    store
        .execute_raw("UPDATE audit_log SET details = '{\"k\":99}' WHERE seq = 3")
        .await
        .unwrap();
    let p = store.verify_audit(None).await.unwrap().unwrap_err();
    assert!(
        p.iter().any(|p| p.seq == 3 && p.message.contains("edited")),
        "{p:?}"
    );
}

async fn deletion_and_reordering(store: &Store) {
    for k in 0..6 {
        store
            .audit(
                "test",
                "probe",
                &k.to_string(),
                &serde_json::json!({"k": k}),
            )
            .await
            .unwrap();
    }
    store
        .execute_raw("DELETE FROM audit_log WHERE seq = 2")
        .await
        .unwrap();
    let p = store.verify_audit(None).await.unwrap().unwrap_err();
    assert!(p.iter().any(|p| p.seq == 3), "{p:?}");
    // Put it right, then swap the contents of two rows.
    store.execute_raw("DELETE FROM audit_log").await.unwrap();
    for k in 0..4 {
        store
            .audit(
                "test",
                "probe",
                &k.to_string(),
                &serde_json::json!({"k": k}),
            )
            .await
            .unwrap();
    }
    assert!(store.verify_audit(None).await.unwrap().is_ok());
    store
        .execute_raw(
            "UPDATE audit_log SET seq = CASE seq WHEN 2 THEN 1002 WHEN 3 THEN 1003 ELSE seq END WHERE seq IN (2, 3);
             UPDATE audit_log SET seq = 3 WHERE seq = 1002;
             UPDATE audit_log SET seq = 2 WHERE seq = 1003;",
        )
        .await
        .unwrap();
    let p = store.verify_audit(None).await.unwrap().unwrap_err();
    assert!(p.iter().any(|p| p.message.contains("link")), "{p:?}");
}

async fn concurrent_appends_keep_one_chain(store: &Store) {
    let mut tasks = Vec::new();
    for k in 0..16 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.audit("test", "concurrent", &k.to_string(), &serde_json::json!({}))
                .await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(store.verify_audit(None).await.unwrap(), Ok(16));
}

async fn outbox_overrides_and_a_keyed_chain(store: &Store) {
    use churnguard::store::{Attempt, DeliveryStatus, NewOverride};
    let store = store.clone().with_audit_key(b"k");
    let policy = InterventionPolicy {
        control_share: 0.0,
        ..Default::default()
    };
    let now = churnguard::store::now();
    let plan = interventions::plan(
        &policy,
        &[policy_input("a", Band::Red), policy_input("b", Band::Red)],
        &[],
        "r9",
        now,
        &interventions::PlanContext::default(),
    );
    let mut scores = vec![record("r9", 1, 10.0, "red", "am-1")];
    scores[0].computed_band = Some("yellow".into());
    store
        .save_run(&run("r9", "2024-07-01", 1), &scores, &plan, &[], "test")
        .await
        .unwrap();
    let back = store.customer_history("c001").await.unwrap();
    assert_eq!(back[0].computed_band.as_deref(), Some("yellow"));
    assert_eq!(back[0].owner_name.as_deref(), Some("Person am-1"));
    // The outbox: two treated interventions, queued once per webhook.
    assert_eq!(store.enqueue_deliveries("crm", now).await.unwrap(), 2);
    assert_eq!(store.enqueue_deliveries("crm", now).await.unwrap(), 0);
    let due = store.due_deliveries("crm", now, 10).await.unwrap();
    assert_eq!(due.len(), 2);
    let (d, i) = &due[0];
    assert_eq!(d.intervention_id, i.id);
    // A claim is taken once.
    assert!(store.claim_delivery(d, now + 30).await.unwrap());
    assert!(!store.claim_delivery(d, now + 30).await.unwrap());
    store
        .record_delivery(d.intervention_id, "crm", &Attempt::Delivered, now)
        .await
        .unwrap();
    let (d2, _) = &due[1];
    assert!(store.claim_delivery(d2, now + 30).await.unwrap());
    let dead = Attempt::Failed {
        error: "answered 500".into(),
        retry_at: None,
    };
    store
        .record_delivery(d2.intervention_id, "crm", &dead, now)
        .await
        .unwrap();
    let listed = store
        .deliveries(Some(DeliveryStatus::Dead), 10)
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].last_error.as_deref(), Some("answered 500"));
    store
        .retry_delivery(d2.intervention_id, "crm", "admin", now)
        .await
        .unwrap();
    assert_eq!(
        store.deliveries_of(&[d2.intervention_id]).await.unwrap()[0].status,
        DeliveryStatus::Pending
    );
    // Overrides.
    let o = store
        .create_override(
            &NewOverride {
                customer_id: "c001".into(),
                band: Some("green".into()),
                suppress: true,
                reason: "hold".into(),
                expires_at: now + 100,
            },
            "ana",
            now,
        )
        .await
        .unwrap();
    assert_eq!(store.active_overrides(now).await.unwrap()["c001"].id, o.id);
    assert_eq!(store.override_by_id(o.id).await.unwrap().unwrap(), o);
    store.revoke_override(o.id, "bo", now + 1).await.unwrap();
    assert!(store.active_overrides(now + 2).await.unwrap().is_empty());
    // Every entry was keyed: it verifies with the key and not without.
    let log = store.audit_log().await.unwrap();
    assert!(log.iter().all(|e| e.hash.starts_with("k1:")), "{log:?}");
    assert!(store.verify_audit(None).await.unwrap().is_ok());
    let head = store.audit_head().await.unwrap().unwrap();
    assert!(store.verify_audit(Some(&head)).await.unwrap().is_ok());
    let unkeyed = churnguard::store::verify_chain(&log, None, None);
    assert!(unkeyed.is_err());
}

async fn shadow_pairs_round_trip(store: &Store) {
    use churnguard::store::ShadowSample;
    assert_eq!(store.latest_shadow_model().await.unwrap(), None);
    // More than one multi-row insert's worth, two shadow models.
    let samples: Vec<ShadowSample> = (0..450)
        .map(|i| ShadowSample {
            scored_at: 1_700_000_000 + i,
            customer_id: format!("{}", 1_000 + i),
            champion_model: "champ".into(),
            shadow_model: if i < 430 { "shadow-a" } else { "shadow-b" }.into(),
            champion_probability: i as f64 / 1_000.0,
            shadow_probability: 1.0 - i as f64 / 1_000.0,
        })
        .collect();
    store.record_shadow_samples(&samples).await.unwrap();
    store.record_shadow_samples(&[]).await.unwrap();
    assert_eq!(
        store.latest_shadow_model().await.unwrap().as_deref(),
        Some("shadow-b")
    );
    let a = store.shadow_samples("shadow-a", 10_000).await.unwrap();
    assert_eq!(a, samples[..430].to_vec());
    // The newest `limit`, oldest first.
    let newest = store.shadow_samples("shadow-a", 5).await.unwrap();
    assert_eq!(newest, samples[425..430].to_vec());
    assert!(store.shadow_samples("nope", 10).await.unwrap().is_empty());

    // The server's shadow thread writes through a connection of its own on
    // SQLite (none on PostgreSQL, where the pool writes); what it writes
    // reads back the same.
    match (store.backend(), store.shadow_writer().await.unwrap()) {
        (Backend::Sqlite, Some(mut writer)) => {
            let more: Vec<ShadowSample> = (0..300)
                .map(|i| ShadowSample {
                    shadow_model: "shadow-c".into(),
                    customer_id: format!("W{i}"),
                    ..samples[i].clone()
                })
                .collect();
            writer.write(&more).await.unwrap();
            writer.write(&[]).await.unwrap();
            assert_eq!(store.shadow_samples("shadow-c", 1_000).await.unwrap(), more);
            assert_eq!(
                store.latest_shadow_model().await.unwrap().as_deref(),
                Some("shadow-c")
            );
        }
        (Backend::Postgres, None) => {}
        (backend, writer) => panic!("{backend:?} gave a writer: {}", writer.is_some()),
    }
}

macro_rules! both_backends {
    ($name:ident, $body:ident) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let dir = tempfile::tempdir().unwrap();
                let store = sqlite_store(dir.path()).await;
                $body(&store).await;
                // Migrations are idempotent: connecting again changes nothing.
                store.close().await;
                let again = sqlite_store(dir.path()).await;
                again.ping().await.unwrap();
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some((store, schema)) = postgres_store(stringify!($name)).await else {
                    return;
                };
                $body(&store).await;
                store.close().await;
                drop_schema(&schema).await;
            }
        }
    };
}

both_backends!(risk_list, risk_list_pages_are_stable_and_filtered);
both_backends!(
    intervention_states,
    interventions_follow_their_state_machine
);
both_backends!(
    audit_edits,
    the_audit_chain_catches_edits_deletions_and_reordering
);
both_backends!(audit_deletions, deletion_and_reordering);
both_backends!(audit_concurrency, concurrent_appends_keep_one_chain);
both_backends!(outbox_and_overrides, outbox_overrides_and_a_keyed_chain);
both_backends!(shadow_pairs, shadow_pairs_round_trip);

#[tokio::test]
async fn a_bad_url_is_named() {
    match Store::connect("mysql://x@y/z").await {
        Err(StoreError::BadUrl { url, .. }) => assert!(url.starts_with("mysql://")),
        other => panic!("{other:?}"),
    }
    match Store::connect("postgres://u:secret@127.0.0.1:1/none").await {
        Err(e) => {
            let m = e.to_string();
            assert!(!m.contains("secret"), "password leaked: {m}");
            assert!(e.is_unavailable());
        }
        Ok(_) => panic!("connected to port 1"),
    }
}

/// A SQLite store the build before migration 9 made: its `customer_scores`
/// has a rowid, a primary-key index and an index by customer, and its rows
/// keep every digit. Opening it migrates the table in place; every score,
/// the customer's history across runs and the risk list read as before.
#[tokio::test]
async fn a_sqlite_store_from_before_migration_9_keeps_its_scores() {
    use sqlx::{ConnectOptions, Connection};
    use std::str::FromStr;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("old.db").display());
    let old: [&str; 8] = [
        include_str!("../../crates/store/migrations/sqlite/0001_init.sql"),
        include_str!("../../crates/store/migrations/sqlite/0002_kpi_weights.sql"),
        include_str!("../../crates/store/migrations/sqlite/0003_decision_inputs.sql"),
        include_str!("../../crates/store/migrations/sqlite/0004_idempotency.sql"),
        include_str!("../../crates/store/migrations/sqlite/0005_web_sessions.sql"),
        include_str!("../../crates/store/migrations/sqlite/0006_deliveries.sql"),
        include_str!("../../crates/store/migrations/sqlite/0007_overrides.sql"),
        include_str!("../../crates/store/migrations/sqlite/0008_shadow_scores.sql"),
    ];
    {
        let mut conn = sqlx::sqlite::SqliteConnectOptions::from_str(&url)
            .unwrap()
            .create_if_missing(true)
            .connect()
            .await
            .unwrap();
        sqlx::raw_sql(
            "CREATE TABLE churnguard_migrations (version BIGINT PRIMARY KEY, \
             description TEXT NOT NULL, checksum TEXT NOT NULL, applied_at BIGINT NOT NULL)",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        for (i, sql) in old.iter().enumerate() {
            sqlx::raw_sql(sqlx::AssertSqlSafe(*sql))
                .execute(&mut conn)
                .await
                .unwrap();
            sqlx::query("INSERT INTO churnguard_migrations VALUES (?, 'old', ?, 0)")
                .bind(i as i64 + 1)
                .bind({
                    use sha2::Digest;
                    hex::encode(sha2::Sha256::digest(sql.as_bytes()))
                })
                .execute(&mut conn)
                .await
                .unwrap();
        }
        for (run, snapshot, created) in [("r1", "2024-06-01", 1), ("r2", "2024-07-01", 2)] {
            sqlx::query(
                "INSERT INTO scoring_runs (run_id, created_at, snapshot_date, model_id, \
                 model_family, source, customers, summary) VALUES (?, ?, ?, 'm1', 'logistic', \
                 'test', 3, '{\"horizon_days\":90}')",
            )
            .bind(run)
            .bind(created)
            .bind(snapshot)
            .execute(&mut conn)
            .await
            .unwrap();
            for (k, loss) in [(1, 30.0), (2, 10.0), (3, 20.0)] {
                sqlx::query(
                    "INSERT INTO customer_scores (run_id, customer_id, snapshot_date, \
                     churn_probability, clv, expected_loss, health, band, trend, profile, \
                     components, reasons) VALUES (?, ?, ?, 0.1, 1000.0, ?, 50.0, 'red', 'new', \
                     'default', '[[81.93326928840303,0.4,32.77330771536121],[82.35669191391413,0.2,16.47133838278283],[75.0,0.15000000000000002,11.250000000000002],[null,0.15000000000000002,9.097959895689502],[100.0,0.1,10.0]]', \
                     '[[\"plan\",\"basic\",0.2156395143417529]]')",
                )
                .bind(run)
                .bind(format!("c{k}"))
                .bind(snapshot)
                .bind(loss)
                .execute(&mut conn)
                .await
                .unwrap();
            }
        }
        conn.close().await.unwrap();
    }
    let store = Store::connect(&url).await.unwrap();
    // The history: newest snapshot first, each run once, read back whole.
    let history = store.customer_history("c1").await.unwrap();
    let runs: Vec<&str> = history.iter().map(|s| s.run_id.as_str()).collect();
    assert_eq!(runs, ["r2", "r1"]);
    assert_eq!(history[0].components[0].score, Some(81.933_269_288_403_03));
    assert_eq!(history[0].components[3].score, None);
    assert_eq!(history[0].components[2].weight, 0.150_000_000_000_000_02);
    assert_eq!(history[0].reasons[0].weight, 0.215_639_514_341_752_9);
    // The risk list of one run, by expected loss, largest first.
    let page = store
        .risk_list(
            "r1",
            &RiskListFilter {
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let ids: Vec<&str> = page.rows.iter().map(|s| s.customer_id.as_str()).collect();
    assert_eq!((page.total, ids), (3, vec!["c1", "c3", "c2"]));
    // A new run goes into the migrated table beside the old ones.
    store
        .save_run(
            &run("r3", "2024-08-01", 1),
            &[record("r3", 1, 5.0, "green", "am-1")],
            &Default::default(),
            &[],
            "test",
        )
        .await
        .unwrap();
    let history = store.customer_history("c001").await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(store.customer_history("c1").await.unwrap().len(), 2);
    // The old table and its index by customer are gone.
    let mut conn = sqlx::sqlite::SqliteConnection::connect(&url).await.unwrap();
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'customer_scores' \
         AND sql IS NOT NULL ORDER BY name",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(indexes, ["customer_scores_risk"]);
}
