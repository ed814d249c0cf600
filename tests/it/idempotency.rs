//! Safe retries: twenty concurrent retries of one state-changing request
//! with one `Idempotency-Key` act once and all get the first answer.

use crate::http::{config, request, request_with, start, ADMIN, READER};
use crate::support::trained;

async fn retries(
    addr: std::net::SocketAddr,
    path: &str,
    key: &str,
    body: &str,
    n: usize,
) -> Vec<crate::http::Reply> {
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let (path, key, body) = (path.to_string(), key.to_string(), body.to_string());
            tokio::spawn(async move {
                request_with(
                    addr,
                    "POST",
                    &path,
                    Some(ADMIN),
                    &[("Idempotency-Key", &key)],
                    Some(&body),
                )
                .await
            })
        })
        .collect();
    let mut replies = Vec::with_capacity(n);
    for h in handles {
        replies.push(h.await.unwrap());
    }
    replies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_retries_act_once_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    twenty_concurrent_retries_act_once(&format!("sqlite://{}", dir.path().join("s.db").display()))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_retries_act_once_on_postgres() {
    let Some((store, schema)) = crate::store::postgres_store("idempotency").await else {
        return;
    };
    store.close().await;
    let base = crate::store::postgres_url();
    let sep = if base.contains('?') { '&' } else { '?' };
    twenty_concurrent_retries_act_once(&format!("{base}{sep}options=-c%20search_path%3D{schema}"))
        .await;
    crate::store::drop_schema(&schema).await;
}

async fn twenty_concurrent_retries_act_once(store: &str) {
    let base = trained();
    let (addr, state) = start(config(&base.join("models"), store, Some(&base.join("co")))).await;

    // A scoring run, retried twenty times at once: one run.
    let body = r#"{"snapshot": "2024-10-01"}"#;
    let replies = retries(addr, "/v1/scoring-runs", "run-2024-10-01", body, 20).await;
    let first = &replies[0];
    assert_eq!(first.status, 201, "{}", first.body);
    for r in &replies {
        assert_eq!((r.status, &r.body), (first.status, &first.body));
    }
    let fresh = replies
        .iter()
        .filter(|r| r.header("idempotent-replayed").is_none())
        .count();
    assert_eq!(fresh, 1, "one request did the work, the rest were replays");
    assert_eq!(state.store.runs().await.unwrap().len(), 1, "one run saved");

    // An outcome, retried twenty times at once: recorded once.
    let open = request(
        addr,
        "GET",
        "/v1/interventions?status=open&limit=1",
        Some(READER),
        None,
    )
    .await
    .json();
    let id = open[0]["id"].as_i64().unwrap();
    let path = format!("/v1/interventions/{id}/outcome");
    let body = r#"{"outcome":"retained","note":"renewed"}"#;
    let replies = retries(addr, &path, "outcome-1", body, 20).await;
    assert!(replies
        .iter()
        .all(|r| r.status == 200 && r.body == replies[0].body));
    let log = state.store.audit_log().await.unwrap();
    let recorded = log
        .iter()
        .filter(|e| e.action == "intervention.outcome" && e.subject == id.to_string())
        .count();
    assert_eq!(recorded, 1, "the outcome was recorded once");
    let runs = log
        .iter()
        .filter(|e| e.action == "scoring_run.saved")
        .count();
    assert_eq!(runs, 1, "one run audited");

    // The same key for a different request is refused; a new key acts.
    let r = request_with(
        addr,
        "POST",
        &path,
        Some(ADMIN),
        &[("Idempotency-Key", "outcome-1")],
        Some(r#"{"outcome":"churned"}"#),
    )
    .await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (422, Some("idempotency_key_reused"))
    );
    // Keys are the caller's: a reader's key of the same name is its own
    // (and the reader is refused by role, which is not kept).
    let r = request_with(
        addr,
        "POST",
        &path,
        Some(READER),
        &[("Idempotency-Key", "outcome-1")],
        Some(body),
    )
    .await;
    assert_eq!(r.status, 403);
    let r = request_with(
        addr,
        "POST",
        &path,
        Some(ADMIN),
        &[("Idempotency-Key", "has space")],
        Some(body),
    )
    .await;
    assert_eq!(
        (r.status, r.json()["field"].as_str()),
        (400, Some("Idempotency-Key"))
    );
}
