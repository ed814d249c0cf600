//! Shadow challengers end to end: set one from the CLI (audit-logged), the
//! real server scores every request with both and answers with the
//! champion only, the pairs reach the store, `/v1/monitoring`, `/metrics`
//! and `churnguard monitor` compare the two (realised performance included
//! once the horizon has passed), and one command promotes the shadow. The
//! same requests feed the replica's online drift window.

use std::collections::HashMap;
use std::path::Path;

use crate::actions::{churnguard, ok};
use crate::http::{config, request, start, ADMIN, READER, SCORER};
use crate::server::records_of;
use crate::support::{copy_dir, trained};

/// Batch predictions of `model` on the fixture's latest rows, by customer.
fn predictions(base: &Path, dir: &Path, model: &str) -> HashMap<String, f64> {
    let out = format!("{model}.csv");
    ok(
        &[
            "predict",
            "--registry",
            "models",
            "--model",
            model,
            "--data",
            base.join("latest.csv").to_str().unwrap(),
            "--out",
            &out,
        ],
        dir,
    );
    let text = std::fs::read_to_string(dir.join(&out)).unwrap();
    text.lines()
        .skip(1)
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            (cells[0].to_string(), cells[2].parse().unwrap())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shadow_is_scored_beside_the_champion_compared_and_promoted() {
    let base = trained();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    copy_dir(&base.join("models"), &p.join("models"));
    let store = format!("sqlite://{}", p.join("s.db").display());
    let registry = churnguard::registry::Registry::open(&p.join("models")).unwrap();
    let champion = registry.champion().unwrap().unwrap();
    let challenger = registry
        .list()
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .find(|id| *id != champion)
        .expect("the fixture trains two families");

    // The champion cannot shadow itself (a conflict, exit 6 like a rollback
    // with no history); an unknown id is not found.
    let out = churnguard(
        &[
            "models",
            "shadow",
            &champion,
            "--registry",
            "models",
            "--store",
            &store,
        ],
        p,
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is the champion"));
    let out = churnguard(
        &[
            "models",
            "shadow",
            "nope",
            "--registry",
            "models",
            "--store",
            &store,
        ],
        p,
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("not found"));
    ok(
        &[
            "models",
            "shadow",
            &challenger,
            "--registry",
            "models",
            "--store",
            &store,
        ],
        p,
    );
    let shown = ok(&["models", "shadow", "--registry", "models"], p);
    assert!(shown.contains(&challenger), "{shown}");

    // The server loads both through the one load path.
    let mut c = config(&p.join("models"), &store, None);
    // Every customer (the default samples a tenth).
    c.serve.shadow.sample_rate = 1.0;
    let (addr, state) = start(c).await;
    assert_eq!(
        state.shadow.load_full().map(|m| m.manifest.id.clone()),
        Some(challenger.clone())
    );
    let text = std::fs::read_to_string(base.join("latest.csv")).unwrap();
    let records = records_of(&text, 300);
    let champion_p = predictions(base, p, &champion);
    let challenger_p = predictions(base, p, &challenger);
    // 40 requests of one customer, then one batch of the other 260.
    let mut answered: HashMap<String, f64> = HashMap::new();
    let mut bodies: Vec<String> = records[..40].iter().map(|r| r.to_string()).collect();
    bodies.push(serde_json::json!({ "customers": records[40..] }).to_string());
    for body in &bodies {
        let r = request(addr, "POST", "/v1/score", Some(SCORER), Some(body)).await;
        assert_eq!(r.status, 200, "{}", r.body);
        // Clients only ever see the champion.
        assert_eq!(r.header("model-version"), Some(champion.as_str()));
        for result in r.json()["results"].as_array().unwrap() {
            answered.insert(
                result["customer_id"].as_str().unwrap().to_string(),
                result["churn_probability"].as_f64().unwrap(),
            );
        }
    }
    assert_eq!(answered.len(), 300);
    for (id, p) in &answered {
        assert!(
            (p - champion_p[id]).abs() < 1e-9,
            "{id}: {p} vs the champion's {}",
            champion_p[id]
        );
    }

    // Flushed (the background task does this every few seconds), the
    // pairs hold both models' own probabilities.
    assert_eq!(state.shadow_recorder.counts().recorded, 300);
    state.shadow_recorder.flush(&state.store).await.unwrap();
    let samples = state
        .store
        .shadow_samples(&challenger, 10_000)
        .await
        .unwrap();
    assert_eq!(samples.len(), 300);
    // They were scored and written by the shadow thread, at the default
    // nice value of 10, so the work yields to the request threads.
    #[cfg(target_os = "linux")]
    {
        let nices: Vec<i64> = std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|t| {
                let t = t.ok()?.path();
                let comm = std::fs::read_to_string(t.join("comm")).ok()?;
                // The kernel keeps the first 15 bytes of a thread name.
                (comm.trim() == "churnguard-shad").then_some(())?;
                let stat = std::fs::read_to_string(t.join("stat")).ok()?;
                // Fields after the command's closing parenthesis start at
                // the third (state); the nice value is the nineteenth.
                let rest = &stat[stat.rfind(')')? + 2..];
                rest.split(' ').nth(16)?.parse().ok()
            })
            .collect();
        assert!(!nices.is_empty(), "no shadow thread found");
        assert!(nices.iter().all(|&n| n == 10), "{nices:?}");
    }
    for s in &samples {
        assert_eq!(s.champion_model, champion);
        assert!((s.champion_probability - answered[&s.customer_id]).abs() < 1e-12);
        assert!(
            (s.shadow_probability - challenger_p[&s.customer_id]).abs() < 1e-9,
            "{}: shadow {} vs its batch prediction {}",
            s.customer_id,
            s.shadow_probability,
            challenger_p[&s.customer_id]
        );
    }

    // The API and the metrics show it.
    let m = request(addr, "GET", "/v1/monitoring", Some(READER), None).await;
    assert_eq!(m.status, 200, "{}", m.body);
    let shadow = &m.json()["shadow"];
    assert_eq!(shadow["shadow_model"], challenger.as_str());
    assert_eq!(shadow["serving"], true);
    assert_eq!(shadow["pairs"], 300);
    let a = &shadow["agreement"];
    let (lo, hi) = (
        a["mean_shift_interval"][0].as_f64().unwrap(),
        a["mean_shift_interval"][1].as_f64().unwrap(),
    );
    let shift = a["mean_shift"].as_f64().unwrap();
    assert!(lo <= shift && shift <= hi);
    let expected_shift = answered
        .iter()
        .map(|(id, c)| challenger_p[id] - c)
        .sum::<f64>()
        / 300.0;
    assert!((shift - expected_shift).abs() < 1e-9);
    // Online drift of this replica's recent customers against the
    // champion's training baseline: 300 rows, below the 500 a verdict needs.
    let online = &m.json()["online_drift"];
    assert_eq!(online["rows"], 300, "{online}");
    assert_eq!(online["score"]["level"], "too_few_rows");
    let metrics = request(addr, "GET", "/metrics", Some(ADMIN), None).await;
    assert!(metrics.body.contains(&format!(
        "churnguard_online_drift_level{{model_version=\"{champion}\",input=\"churn_probability\"}} -1"
    )), "{}", metrics.body);
    assert!(
        metrics.body.contains("churnguard_shadow_pairs_total 300"),
        "{}",
        metrics.body
    );
    assert!(metrics.body.contains(&format!(
        "churnguard_shadow_model_info{{model_version=\"{challenger}\"}} 1"
    )));

    // Realised performance: pairs scored long ago whose horizon has passed
    // in later churn events (the store's own path; the server stamps pairs
    // with the wall clock). 400 customers, the riskiest by the challenger
    // churn, so it must rank better than the champion.
    let old: Vec<churnguard::store::ShadowSample> = (0..400)
        .map(|i| {
            let shadow = f64::from(i) / 400.0;
            churnguard::store::ShadowSample {
                scored_at: 1_704_067_200, // 2024-01-01
                customer_id: format!("{}", 900_000 + i),
                champion_model: champion.clone(),
                shadow_model: challenger.clone(),
                champion_probability: f64::from((i * 37) % 400) / 400.0,
                shadow_probability: shadow,
            }
        })
        .collect();
    state.store.record_shadow_samples(&old).await.unwrap();
    let mut events = String::from("customer_id,churn_date,churn_type,reason\n");
    for i in 300..400 {
        events += &format!("{},2024-02-15,voluntary,price\n", 900_000 + i);
    }
    // One churn after the horizon does not count.
    events += "900000,2024-12-01,voluntary,price\n";
    std::fs::write(p.join("churn_events.csv"), events).unwrap();
    // A scoring run for the monitor's drift part.
    ok(
        &[
            "score",
            "--data",
            base.join("co").to_str().unwrap(),
            "--registry",
            "models",
            "--out",
            "run",
            "--store",
            &store,
        ],
        p,
    );
    let out = churnguard(
        &[
            "monitor",
            "--store",
            &store,
            "--registry",
            "models",
            "--events",
            "churn_events.csv",
            "--observed-until",
            "2024-12-31",
            "--out",
            "monitor.json",
        ],
        p,
    );
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let text = std::fs::read_to_string(p.join("monitor.json")).unwrap_or_else(|e| {
        panic!(
            "no monitor report ({e}): {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let report: serde_json::Value = serde_json::from_str(&text).unwrap();
    eprintln!("{stdout}");
    let sh = &report["shadow"];
    assert_eq!(sh["pairs"], 700, "{stdout}");
    // Only the old pairs are settled; each customer once.
    let r = &sh["realised"];
    assert_eq!(r["champion"]["customers"], 400, "{stdout}");
    assert_eq!(r["champion"]["churned"], 100, "{stdout}");
    assert_eq!(r["shadow"]["roc_auc"], 1.0, "{stdout}");
    let lo = r["roc_auc_difference_interval"][0].as_f64().unwrap();
    assert!(lo > 0.0, "{stdout}");
    assert!(stdout.contains("promote-shadow"), "{stdout}");

    // Promotion from shadow: one command, audit-logged with its evidence.
    let promoted = ok(
        &[
            "models",
            "promote-shadow",
            "--registry",
            "models",
            "--store",
            &store,
        ],
        p,
    );
    assert!(
        promoted.contains(&format!("champion: {challenger}")),
        "{promoted}"
    );
    assert_eq!(registry.champion().unwrap(), Some(challenger.clone()));
    assert_eq!(registry.shadow().unwrap(), None);
    let log = state.store.audit_log().await.unwrap();
    let actions: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
    assert!(actions.contains(&"model.shadow_set"), "{actions:?}");
    let entry = log
        .iter()
        .find(|e| e.action == "model.promoted_from_shadow")
        .expect("the promotion is logged");
    assert_eq!(entry.subject, challenger);
    let details: serde_json::Value = serde_json::from_str(&entry.details).unwrap();
    assert_eq!(details["previous"], champion.as_str());
    assert_eq!(details["comparison"]["pairs"], 700);
    // The server follows: the new champion serves and the shadow is gone.
    churnguard::serve::state::reload(&state, "champion", false)
        .await
        .unwrap();
    churnguard::serve::sync_shadow(&state).await;
    assert!(state.shadow.load_full().is_none());
    // Under the default sample rate (a tenth), a second server queues
    // exactly the customers its hash picks, and every one reaches the store.
    ok(
        &[
            "models",
            "shadow",
            &champion,
            "--registry",
            "models",
            "--store",
            &store,
        ],
        p,
    );
    let defaults = config(&p.join("models"), &store, None);
    assert_eq!(defaults.serve.shadow.sample_rate, 0.1);
    let (addr2, state2) = start(defaults).await;
    let body = serde_json::json!({ "customers": records }).to_string();
    let r = request(addr2, "POST", "/v1/score", Some(SCORER), Some(&body)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let picked = records
        .iter()
        .filter(|r| {
            state2
                .shadow_recorder
                .sampled(r["customer_id"].as_str().unwrap())
        })
        .count();
    assert!((10..=60).contains(&picked), "{picked} of 300 sampled");
    assert_eq!(
        state2.shadow_recorder.flush(&state2.store).await.unwrap(),
        picked
    );
    ok(
        &[
            "models",
            "shadow",
            "--clear",
            "--registry",
            "models",
            "--store",
            &store,
        ],
        p,
    );

    // Nothing left to promote.
    let again = churnguard(
        &[
            "models",
            "promote-shadow",
            "--registry",
            "models",
            "--store",
            &store,
        ],
        p,
    );
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("no shadow challenger is set"));
}
