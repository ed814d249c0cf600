//! The real server on an ephemeral loopback port, driven over HTTP: scoring
//! (agreeing with batch `predict`), errors clients can act on, auth and
//! roles, risk lists, customers, interventions, KPI, models, hot swap, and
//! the same against PostgreSQL.

use std::collections::HashMap;
use std::path::Path;

use churnguard::features::model_inputs;

use crate::actions::ok;
use crate::http::{config, request, start, ADMIN, READER, SCORER};
use crate::support::{copy_dir, trained};

/// The rows of a feature CSV as score records (inputs, id, context).
fn records(csv: &Path, n: usize) -> Vec<serde_json::Value> {
    records_of(&std::fs::read_to_string(csv).unwrap(), n)
}

/// The first `n` rows of a feature CSV's text as score records.
pub fn records_of(text: &str, n: usize) -> Vec<serde_json::Value> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let (numeric, categorical) = model_inputs();
    lines
        .take(n)
        .map(|line| {
            let cells: Vec<&str> = line.split(',').collect();
            let mut m = serde_json::Map::new();
            for (h, v) in header.iter().zip(&cells) {
                let value = if numeric.contains(h) || ["cac"].contains(h) {
                    if v.is_empty() {
                        serde_json::Value::Null
                    } else {
                        serde_json::json!(v.parse::<f64>().unwrap())
                    }
                } else if categorical.contains(h)
                    || ["customer_id", "account_manager_id"].contains(h)
                {
                    if v.is_empty() {
                        serde_json::Value::Null
                    } else {
                        serde_json::json!(v)
                    }
                } else {
                    continue;
                };
                m.insert(h.to_string(), value);
            }
            serde_json::Value::Object(m)
        })
        .collect()
}

fn predictions(base: &Path, dir: &Path) -> HashMap<String, f64> {
    let models = base.join("models");
    ok(
        &[
            "predict",
            "--registry",
            models.to_str().unwrap(),
            "--data",
            base.join("latest.csv").to_str().unwrap(),
            "--out",
            "p.csv",
        ],
        dir,
    );
    let text = std::fs::read_to_string(dir.join("p.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(
        header,
        ["customer_id", "snapshot_date", "churn_probability"]
    );
    lines
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            (cells[0].to_string(), cells[2].parse().unwrap())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_scores_match_batch_predictions_and_carry_everything() {
    let base = trained();
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("s.db").display());
    let (addr, _state) = start(config(&base.join("models"), &store, None)).await;
    let batch = records(&base.join("latest.csv"), 120);
    let body = serde_json::json!({ "customers": batch }).to_string();
    let r = request(
        addr,
        "POST",
        "/v1/score?detail=full",
        Some(SCORER),
        Some(&body),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.header("api-version"),
        Some(churnguard_server::openapi::API_VERSION)
    );
    let json = r.json();
    let results = json["results"].as_array().unwrap();
    assert_eq!(results.len(), 120);
    let expected = predictions(base, dir.path());
    for res in results {
        let id = res["customer_id"].as_str().unwrap();
        let p = res["churn_probability"].as_f64().unwrap();
        assert!(
            (p - expected[id]).abs() < 1e-9,
            "{id}: online {p} vs batch {}",
            expected[id]
        );
        let h = &res["health"];
        let sum: f64 = h["components"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["contribution"].as_f64().unwrap())
            .sum();
        assert!((sum - h["score"].as_f64().unwrap()).abs() < 1e-9);
        assert!(["green", "yellow", "red"].contains(&h["band"].as_str().unwrap()));
        assert!(res["clv"].as_f64().unwrap() > 0.0, "mrr came through");
        assert!(res["model_version"].as_str().unwrap().contains('-'));
        assert!(
            res["churn_type"].is_string(),
            "the model learned churn types"
        );
    }
    assert!(results
        .iter()
        .any(|r| r["recommended_intervention"].is_object()));
    assert!(results
        .iter()
        .any(|r| !r["reasons"].as_array().unwrap().is_empty()));
    // By default the answer is compact: the same probabilities, health,
    // band, trend and top reasons, without components, CLV or per-result
    // model versions; full detail lists every reason that raises the risk.
    let r = request(addr, "POST", "/v1/score", Some(SCORER), Some(&body)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let compact = r.json();
    assert_eq!(compact["model_version"], json["model_version"]);
    let mut more_reasons = 0;
    for (c, f) in compact["results"].as_array().unwrap().iter().zip(results) {
        assert_eq!(c["customer_id"], f["customer_id"]);
        assert_eq!(c["churn_probability"], f["churn_probability"]);
        assert_eq!(c["churn_type"], f["churn_type"]);
        assert_eq!(c["recommended_intervention"], f["recommended_intervention"]);
        for k in ["score", "band", "change", "direction"] {
            assert_eq!(c["health"][k], f["health"][k], "{k}");
        }
        for absent in ["clv", "expected_loss", "p_involuntary", "model_version"] {
            assert!(c.get(absent).is_none(), "compact has {absent}: {c}");
        }
        assert!(c["health"].get("components").is_none());
        let (cr, fr) = (
            c["reasons"].as_array().unwrap(),
            f["reasons"].as_array().unwrap(),
        );
        assert!(cr.len() <= 3 && fr.len() >= cr.len());
        assert_eq!(
            cr[..],
            fr[..cr.len()],
            "compact reasons are the top of the full list"
        );
        more_reasons += usize::from(fr.len() > cr.len());
    }
    assert!(
        more_reasons > 0,
        "full detail lists more than the top three"
    );
    let r = request(
        addr,
        "POST",
        "/v1/score?detail=everything",
        Some(SCORER),
        Some(&body),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    // One record on its own.
    let one = batch[0].to_string();
    let r = request(addr, "POST", "/v1/score", Some(SCORER), Some(&one)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["results"].as_array().unwrap().len(), 1);
    // A request id comes back.
    assert!(r.header("x-request-id").is_some_and(|v| v.len() > 8));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_codes_and_field_paths() {
    let base = trained();
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("s.db").display());
    let mut c = config(&base.join("models"), &store, None);
    c.serve.max_batch = 5;
    let (addr, _) = start(c).await;
    let rec = records(&base.join("latest.csv"), 1).remove(0);
    let post = |body: String| async move {
        let r = request(addr, "POST", "/v1/score", Some(SCORER), Some(&body)).await;
        (r.status, r.json())
    };
    let (s, j) = post("{\"customers\": [".into()).await;
    assert_eq!((s, j["code"].as_str()), (400, Some("malformed_json")));

    let mut missing = rec.clone();
    missing.as_object_mut().unwrap().remove("tenure_days");
    let (s, j) = post(serde_json::json!({"customers": [rec.clone(), missing]}).to_string()).await;
    assert_eq!(s, 422);
    assert_eq!(j["code"], "missing_feature");
    assert_eq!(j["field"], "customers[1].tenure_days");

    let mut wrong = rec.clone();
    wrong["mrr"] = serde_json::json!("a lot");
    let (s, j) = post(wrong.to_string()).await;
    assert_eq!(
        (s, j["code"].as_str(), j["field"].as_str()),
        (422, Some("wrong_type"), Some("mrr"))
    );

    let huge = rec
        .to_string()
        .replacen("\"mrr\":", "\"mrr\":1e999,\"x\":", 1);
    let (s, j) = post(huge).await;
    assert_eq!((s, j["code"].as_str()), (400, Some("malformed_json")));

    // A field the model does not know is skipped and listed; a misspelt
    // input still fails, as the real input is then missing.
    let mut extra = rec.clone();
    extra["snapshot_date"] = serde_json::json!("2024-01-01");
    let (s, j) = post(extra.to_string()).await;
    assert_eq!(s, 200);
    assert_eq!(
        j["results"][0]["ignored_fields"],
        serde_json::json!(["snapshot_date"])
    );
    let mut typo = rec.clone();
    let v = typo.as_object_mut().unwrap().remove("tenure_days").unwrap();
    typo["tenure_dayz"] = v;
    let (s, j) = post(typo.to_string()).await;
    assert_eq!(
        (s, j["code"].as_str(), j["field"].as_str()),
        (422, Some("missing_feature"), Some("tenure_days"))
    );

    let six = serde_json::json!({"customers": vec![rec.clone(); 6]}).to_string();
    let (s, j) = post(six).await;
    assert_eq!((s, j["code"].as_str()), (413, Some("batch_too_large")));
    // Oversized is refused for its size even when its first record is bad.
    let six_bad = serde_json::json!({"customers": vec![typo.clone(); 6]}).to_string();
    let (s, j) = post(six_bad).await;
    assert_eq!((s, j["code"].as_str()), (413, Some("batch_too_large")));

    // An unknown category is scored in the unknown bucket and flagged.
    let mut novel = rec.clone();
    novel["region"] = serde_json::json!("antarctica");
    let (s, j) = post(novel.to_string()).await;
    assert_eq!(s, 200);
    assert_eq!(
        j["results"][0]["unknown_categories"],
        serde_json::json!(["region"])
    );

    // Auth: no key 401, wrong role 403.
    let r = request(addr, "POST", "/v1/score", None, Some(&rec.to_string())).await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (401, Some("unauthorized"))
    );
    let r = request(
        addr,
        "POST",
        "/v1/score",
        Some("not-a-key"),
        Some(&rec.to_string()),
    )
    .await;
    assert_eq!(r.status, 401);
    let r = request(
        addr,
        "POST",
        "/v1/score",
        Some(READER),
        Some(&rec.to_string()),
    )
    .await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (403, Some("forbidden"))
    );
    let r = request(addr, "POST", "/v1/models/reload", Some(SCORER), None).await;
    assert_eq!(r.status, 403);
    let r = request(addr, "GET", "/v1/nope", Some(READER), None).await;
    assert_eq!(r.status, 404);
}

async fn the_whole_api(store_url: &str) {
    let base = trained();
    let (addr, state) = start(config(
        &base.join("models"),
        store_url,
        Some(&base.join("co")),
    ))
    .await;
    let get = |path: String, key: &'static str| async move {
        request(addr, "GET", &path, Some(key), None).await
    };

    // Before any run: no risk list yet.
    let r = get("/v1/risk-list".into(), READER).await;
    assert_eq!(r.status, 404, "{}", r.body);

    // A scoring run as admin; readers may not start one.
    let r = request(addr, "POST", "/v1/scoring-runs", Some(READER), Some("{}")).await;
    assert_eq!(r.status, 403);
    let r = request(
        addr,
        "POST",
        "/v1/scoring-runs",
        Some(ADMIN),
        Some(r#"{"snapshot": "2024-10-01"}"#),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let run = r.json();
    let customers = run["customers"].as_u64().unwrap() as usize;
    assert!(customers > 300);

    // The risk list pages through every customer once, by expected loss.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/risk-list?limit=100&cursor={c}"),
            None => "/v1/risk-list?limit=100".into(),
        };
        let r = get(path, READER).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let j = r.json();
        assert_eq!(j["total"].as_u64().unwrap() as usize, customers);
        for row in j["rows"].as_array().unwrap() {
            seen.push((
                row["expected_loss"].as_f64().unwrap(),
                row["customer_id"].as_str().unwrap().to_string(),
            ));
        }
        match j["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), customers);
    assert!(seen.windows(2).all(|w| w[0].0 >= w[1].0));
    let r = get("/v1/risk-list?band=purple".into(), READER).await;
    assert_eq!((r.status, r.json()["field"].as_str()), (400, Some("band")));
    let r = get("/v1/risk-list?cursor=zz".into(), READER).await;
    assert_eq!(r.status, 400);
    let red = get("/v1/risk-list?band=yellow&limit=5".into(), READER)
        .await
        .json();
    assert!(red["rows"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["band"] == "yellow"));

    // A customer: latest score, history, interventions.
    let top = &seen[0].1;
    let r = get(format!("/v1/customers/{top}"), READER).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let c = r.json();
    assert_eq!(c["latest"]["customer_id"], top.as_str());
    assert_eq!(c["history"].as_array().unwrap().len(), 1);
    assert_eq!(get("/v1/customers/nobody".into(), READER).await.status, 404);

    // Interventions: list open ones, record an outcome as admin.
    let r = get("/v1/interventions?status=open&limit=5".into(), READER).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let open = r.json();
    let first = &open.as_array().unwrap()[0];
    assert_eq!(first["status"], "open");
    // The decision carries the expected-value gate's inputs, and passed it.
    assert!(first["expected_value"].as_f64().unwrap() > 0.0, "{first}");
    assert!(first["effect"].as_f64().unwrap() > 0.0, "{first}");
    assert!(first["cost"].as_f64().unwrap() > 0.0, "{first}");
    // Outcomes: per playbook and per owner, with each playbook's power.
    let r = get("/v1/outcomes".into(), READER).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let o = r.json();
    assert!(o["owners"].is_array(), "{o}");
    let power = o["power"].as_array().unwrap();
    assert_eq!(power.len(), 5, "{o}");
    assert!(power[0]["plan"]["selected"].as_u64().unwrap() > 100, "{o}");
    let id = first["id"].as_i64().unwrap();
    let path = format!("/v1/interventions/{id}/outcome");
    let r = request(
        addr,
        "POST",
        &path,
        Some(READER),
        Some(r#"{"outcome":"retained"}"#),
    )
    .await;
    assert_eq!(r.status, 403);
    let r = request(
        addr,
        "POST",
        &path,
        Some(ADMIN),
        Some(r#"{"outcome":"maybe"}"#),
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.body);
    let r = request(
        addr,
        "POST",
        &path,
        Some(ADMIN),
        Some(r#"{"outcome":"retained","note":"renewed"}"#),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["status"], "done");
    let r = get("/v1/interventions?status=bogus".into(), READER).await;
    assert_eq!(r.status, 400);
    let control = get("/v1/interventions?status=control&limit=1".into(), READER)
        .await
        .json();
    if let Some(c) = control.as_array().unwrap().first() {
        let path = format!("/v1/interventions/{}/outcome", c["id"]);
        let r = request(
            addr,
            "POST",
            &path,
            Some(ADMIN),
            Some(r#"{"outcome":"retained"}"#),
        )
        .await;
        assert_eq!(r.status, 409, "{}", r.body);
    }

    // KPI scorecards for both roles and a stage switch.
    let r = get(
        "/v1/kpi/scorecards?role=account_manager&stage=growth".into(),
        READER,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let k = r.json();
    assert!(!k["scorecards"].as_array().unwrap().is_empty());
    assert_eq!(k["stage"], "growth");
    let r = get("/v1/kpi/scorecards?role=acquisition".into(), READER).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        get("/v1/kpi/scorecards?role=ceo".into(), READER)
            .await
            .status,
        400
    );

    // Models, readiness, metrics, OpenAPI.
    let m = get("/v1/models".into(), READER).await.json();
    assert!(m["serving"].is_string());
    assert_eq!(m["champion"], m["serving"]);
    let r = request(addr, "GET", "/readyz", None, None).await;
    assert_eq!((r.status, r.json()["ready"].as_bool()), (200, Some(true)));
    let r = request(addr, "GET", "/metrics", None, None).await;
    assert!(r.body.contains(
        "churnguard_http_requests_total{route=\"/v1/risk-list\",method=\"GET\",status=\"200\"}"
    ));
    assert!(r.body.contains("churnguard_model_info{"));
    // The latest run's drift against the model's training baseline, as
    // gauges and at /v1/monitoring.
    assert!(
        r.body.contains("churnguard_drift_psi{model_version=\"")
            && r.body.contains("input=\"churn_probability\"}"),
        "{}",
        r.body
    );
    let m = get("/v1/monitoring".into(), READER).await;
    assert_eq!(m.status, 200, "{}", m.body);
    let m = m.json();
    assert!(m["drift"]["inputs"].as_array().unwrap().len() > 10, "{m}");
    assert!(["healthy", "warning", "action"].contains(&m["verdict"].as_str().unwrap()));
    let spec = request(addr, "GET", "/openapi.json", None, None)
        .await
        .json();
    for p in [
        "/v1/score",
        "/v1/risk-list",
        "/v1/customers/{id}",
        "/v1/kpi/scorecards",
        "/v1/models/reload",
    ] {
        assert!(spec["paths"][p].is_object(), "openapi lacks {p}");
    }
    // The audit log records the run and the outcome, and verifies.
    let log = state.store.audit_log().await.unwrap();
    assert!(log
        .iter()
        .any(|e| e.action == "intervention.outcome" && e.actor == "ops"));
    assert!(state.store.verify_audit(None).await.unwrap().is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_api_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    the_whole_api(&format!("sqlite://{}", dir.path().join("s.db").display())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_api_on_postgres() {
    let Some((store, schema)) = crate::store::postgres_store("server_api").await else {
        return;
    };
    store.close().await;
    let sep = if crate::store::postgres_url().contains('?') {
        '&'
    } else {
        '?'
    };
    let url = format!(
        "{}{sep}options=-c%20search_path%3D{schema}",
        crate::store::postgres_url()
    );
    the_whole_api(&url).await;
    crate::store::drop_schema(&schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_swap_atomically_and_refuse_bad_models() {
    let base = trained();
    let dir = tempfile::tempdir().unwrap();
    // A registry of our own, copied, so that we can break and promote models.
    let reg = dir.path().join("models");
    copy_dir(&base.join("models"), &reg);
    let store = format!("sqlite://{}", dir.path().join("s.db").display());
    let (addr, state) = start(config(&reg, &store, None)).await;
    let serving = state.active.load_full().unwrap().manifest.id.clone();
    let ids: Vec<String> = state
        .registry
        .list()
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    let other = ids.iter().find(|i| **i != serving).unwrap().clone();
    let body =
        serde_json::json!({ "customers": records(&base.join("latest.csv"), 20) }).to_string();

    // Score continuously while reloading back and forth: no request fails.
    let load = {
        let body = body.clone();
        tokio::spawn(async move {
            let mut codes = Vec::new();
            for _ in 0..60 {
                codes.push(
                    request(addr, "POST", "/v1/score", Some(SCORER), Some(&body))
                        .await
                        .status,
                );
            }
            codes
        })
    };
    for k in 0..10 {
        let id = if k % 2 == 0 { &other } else { &serving };
        let r = request(
            addr,
            "POST",
            &format!("/v1/models/reload?id={id}"),
            Some(ADMIN),
            None,
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.json()["serving"], id.as_str());
    }
    let codes = load.await.unwrap();
    assert!(codes.iter().all(|c| *c == 200), "{codes:?}");

    // A truncated model file is refused; the old model keeps serving.
    let victim = reg.join(&other).join("model.json");
    let bytes = std::fs::read(&victim).unwrap();
    std::fs::write(&victim, &bytes[..bytes.len() / 2]).unwrap();
    let r = request(
        addr,
        "POST",
        &format!("/v1/models/reload?id={other}"),
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (422, Some("model_rejected"))
    );
    assert_eq!(state.active.load_full().unwrap().manifest.id, serving);
    let r = request(addr, "POST", "/v1/score", Some(SCORER), Some(&body)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["model_version"], serving.as_str());
    let metrics = request(addr, "GET", "/metrics", None, None).await.body;
    assert!(
        metrics.contains("churnguard_model_reloads_total{result=\"rejected\"} 1"),
        "{metrics}"
    );
}
