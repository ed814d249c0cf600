//! From scores to action, driven through the real executable: score twice,
//! read the risk list, interventions and scorecards, ingest outcomes,
//! verify the audit log.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::trained;

pub fn churnguard(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_churnguard"))
        .args(args)
        .current_dir(cwd)
        .env_remove("CHURNGUARD_DATABASE_URL")
        .output()
        .expect("runs the binary")
}

pub fn ok(args: &[&str], cwd: &Path) -> String {
    let out = churnguard(args, cwd);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "churnguard {args:?} failed:\n{text}");
    text
}

fn read_csv(path: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

#[test]
fn two_scoring_runs_give_trends_interventions_and_scorecards() {
    let base = trained();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let data = base.join("co");
    let models = base.join("models");
    let (data, models) = (data.to_str().unwrap(), models.to_str().unwrap());
    let store = "sqlite://cg.db";
    let first = ok(
        &[
            "score",
            "--data",
            data,
            "--registry",
            models,
            "--snapshot",
            "2024-08-01",
            "--out",
            "r1",
            "--store",
            store,
        ],
        p,
    );
    assert!(first.contains("health bands: green"), "{first}");
    let second = ok(
        &[
            "score",
            "--data",
            data,
            "--registry",
            models,
            "--snapshot",
            "2024-08-11",
            "--out",
            "r2",
            "--store",
            store,
        ],
        p,
    );
    // Ten days later, open interventions matched again are updated, not repeated.
    assert!(second.contains("updated"), "{second}");

    // The risk list is sorted by expected loss and carries the health trend.
    let rows = read_csv(&p.join("r2/risk_list.csv"));
    let header = &rows[0];
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let (loss, trend, change, band) = (
        col("expected_loss"),
        col("trend"),
        col("health_change"),
        col("band"),
    );
    // It is the staff's view: ranked, a top reason in words, not every score column.
    assert_eq!(header[0], "rank");
    let ranks: Vec<usize> = rows[1..].iter().map(|r| r[0].parse().unwrap()).collect();
    assert_eq!(ranks, (1..rows.len()).collect::<Vec<_>>());
    // Owners by name beside the id a machine joins on.
    let (owner, owner_name) = (col("owner"), col("owner_name"));
    let named = rows[1..]
        .iter()
        .filter(|r| !r[owner].is_empty())
        .inspect(|r| {
            assert!(
                r[owner_name].contains(' ') && !r[owner_name].chars().any(|c| c.is_ascii_digit()),
                "owner {} named {:?}",
                r[owner],
                r[owner_name]
            )
        })
        .count();
    assert!(named > 0, "no owner named");
    let reason = col("top_reason");
    // Reasons in words with a direction, never a raw column name.
    assert!(rows[1..].iter().any(|r| r[reason].contains("raises risk")));
    assert!(
        rows[1..].iter().all(|r| !r[reason].contains('_')),
        "a reason names a column instead of saying what it means"
    );
    let all = read_csv(&p.join("r2/scores.csv"));
    assert!(
        header.len() < all[0].len(),
        "scores.csv keeps the other columns"
    );
    assert_eq!(
        all.len(),
        rows.len(),
        "one risk-list row per scored customer"
    );
    let losses: Vec<f64> = rows[1..].iter().map(|r| r[loss].parse().unwrap()).collect();
    assert!(
        losses.windows(2).all(|w| w[0] >= w[1]),
        "not sorted by expected loss"
    );
    let with_change = rows[1..].iter().filter(|r| !r[change].is_empty()).count();
    assert!(
        with_change as f64 > 0.9 * (rows.len() - 1) as f64,
        "most customers were scored ten days earlier: {with_change} of {}",
        rows.len() - 1
    );
    assert!(rows[1..].iter().any(|r| r[trend] == "down"));
    for b in ["green", "yellow"] {
        assert!(rows[1..].iter().any(|r| r[band] == b), "no {b} customers");
    }
    // Health means something: customers who churn within the next 90 days
    // had lower health at the snapshot than those who stay.
    ok(
        &[
            "features",
            "--data",
            data,
            "--snapshot",
            "2024-08-11",
            "--out",
            "labels.csv",
        ],
        p,
    );
    let labels = read_csv(&p.join("labels.csv"));
    let (lid, lchurn) = (
        labels[0].iter().position(|h| h == "customer_id").unwrap(),
        labels[0].iter().position(|h| h == "churned").unwrap(),
    );
    let churned: std::collections::HashMap<String, bool> = labels[1..]
        .iter()
        .map(|r| (r[lid].clone(), r[lchurn] == "1"))
        .collect();
    let id = col("customer_id");
    let (mut stay, mut go) = (Vec::new(), Vec::new());
    for r in &rows[1..] {
        let h: f64 = r[col("health")].parse().unwrap();
        if churned[&r[id]] {
            go.push(h);
        } else {
            stay.push(h);
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    assert!(
        mean(&go) + 2.0 < mean(&stay),
        "churners' health {:.1} vs stayers' {:.1}",
        mean(&go),
        mean(&stay)
    );
    // Contributions (in scores.csv) add up to the index.
    let (header, rows) = (&all[0], &all);
    let health = header.iter().position(|h| h == "health").unwrap();
    let parts: Vec<usize> = header
        .iter()
        .enumerate()
        .filter(|(_, h)| h.starts_with("health_") && *h != "health_change")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(parts.len(), 5);
    for r in &rows[1..50] {
        let sum: f64 = parts.iter().map(|&i| r[i].parse::<f64>().unwrap()).sum();
        let h: f64 = r[health].parse().unwrap();
        assert!((sum - h).abs() < 1e-6, "{sum} vs {h}");
    }

    // Interventions: no customer gets the same playbook twice within its cooldown.
    let iv1 = read_csv(&p.join("r1/interventions.csv"));
    let iv2 = read_csv(&p.join("r2/interventions.csv"));
    let key = |r: &Vec<String>| (r[1].clone(), r[2].clone());
    let first_keys: std::collections::HashSet<_> = iv1[1..].iter().map(key).collect();
    let repeated = iv2[1..]
        .iter()
        .filter(|r| first_keys.contains(&key(r)))
        .count();
    assert_eq!(repeated, 0, "a playbook was repeated within its cooldown");
    let control = iv1[1..].iter().filter(|r| r[4] == "control").count();
    let share = control as f64 / (iv1.len() - 1) as f64;
    assert!((0.04..0.2).contains(&share), "control share {share}");

    // Scorecards for both roles; the KPI command reads them back.
    assert!(p.join("r2/kpi_account_manager.csv").is_file());
    assert!(p.join("r2/kpi_acquisition.csv").is_file());
    let kpi = ok(&["kpi", "--store", store, "--stage", "mature"], p);
    assert!(
        kpi.contains("account_manager") && kpi.contains("renewal"),
        "{kpi}"
    );

    let runs = ok(&["runs", "--store", store], p);
    assert_eq!(runs.lines().count(), 2, "{runs}");
    let verify = ok(&["audit", "verify", "--store", store], p);
    assert!(verify.contains("intact"), "{verify}");

    // Outcomes: the generated churn events after the first run.
    let out = ok(&["outcomes", "--events", data, "--store", store], p);
    assert!(out.contains("control"), "{out}");
    assert!(out.contains("per owner"), "{out}");
    assert!(
        out.contains("customers each experiment needs") && out.contains("csm_call"),
        "{out}"
    );
}

#[test]
fn a_broken_audit_chain_exits_3() {
    let base = trained();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let data = base.join("co");
    let models = base.join("models");
    let store = "sqlite://cg.db";
    ok(
        &[
            "score",
            "--data",
            data.to_str().unwrap(),
            "--registry",
            models.to_str().unwrap(),
            "--snapshot",
            "2024-06-01",
            "--out",
            "r",
            "--store",
            store,
        ],
        p,
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let s = churnguard::store::Store::connect(
            store
                .replace("cg.db", p.join("cg.db").to_str().unwrap())
                .as_str(),
        )
        .await
        .unwrap();
        s.execute_raw("UPDATE audit_log SET actor = 'mallory' WHERE seq = 1")
            .await
            .unwrap();
        s.close().await;
    });
    let out = churnguard(&["audit", "verify", "--store", store], p);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stdout).contains("edited"));
}

#[test]
fn a_keyed_audit_chain_finds_a_cut_tail_and_entries_without_the_key() {
    let base = trained();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let store = "sqlite://cg.db";
    let keyed = |args: &[&str], key: Option<&str>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_churnguard"));
        c.args(args)
            .current_dir(p)
            .env_remove("CHURNGUARD_DATABASE_URL")
            .env_remove("CHURNGUARD_AUDIT_KEY");
        if let Some(k) = key {
            c.env("CHURNGUARD_AUDIT_KEY", k);
        }
        c.output().unwrap()
    };
    let text = |o: &Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    let score = |snapshot: &str| {
        let out = keyed(
            &[
                "score",
                "--data",
                base.join("co").to_str().unwrap(),
                "--registry",
                base.join("models").to_str().unwrap(),
                "--snapshot",
                snapshot,
                "--out",
                snapshot,
                "--store",
                store,
            ],
            Some("the-audit-key"),
        );
        assert!(out.status.success(), "{}", text(&out));
    };
    score("2024-05-01");
    let out = keyed(
        &["audit", "head", "--out", "head.json", "--store", store],
        None,
    );
    assert!(out.status.success(), "{}", text(&out));
    score("2024-06-01");
    let ok_run = keyed(
        &["audit", "verify", "--head", "head.json", "--store", store],
        Some("the-audit-key"),
    );
    assert!(ok_run.status.success(), "{}", text(&ok_run));
    // Without the key, keyed entries cannot be checked: exit 3, said why.
    let out = keyed(&["audit", "verify", "--store", store], None);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("CHURNGUARD_AUDIT_KEY"),
        "{}",
        text(&out)
    );
    // With another key, every keyed entry fails.
    let out = keyed(&["audit", "verify", "--store", store], Some("a-guess"));
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("another key"), "{}", text(&out));
    // Cutting the tail back past the exported head: a chain alone still
    // verifies, the head does not.
    let head: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p.join("head.json")).unwrap()).unwrap();
    let seq = head["seq"].as_i64().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let s =
            churnguard::store::Store::connect(&format!("sqlite://{}", p.join("cg.db").display()))
                .await
                .unwrap();
        s.execute_raw(&format!("DELETE FROM audit_log WHERE seq >= {seq}"))
            .await
            .unwrap();
        s.close().await;
    });
    let out = keyed(
        &["audit", "verify", "--store", store],
        Some("the-audit-key"),
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = keyed(
        &["audit", "verify", "--head", "head.json", "--store", store],
        Some("the-audit-key"),
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("tail was cut"), "{}", text(&out));
}

#[test]
fn bad_config_is_rejected_with_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::write(
        p.join("bad.toml"),
        "[health.bands]\ngreen = 40\nyellow = 60\n",
    )
    .unwrap();
    let out = churnguard(&["config", "check", "--config", "bad.toml"], p);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("health.bands") && err.contains("bad.toml"),
        "{err}"
    );
    std::fs::write(
        p.join("bad.toml"),
        "[[interventions.rules]]\nname = \"x\"\nplaybook = \"send_flowers\"\n",
    )
    .unwrap();
    let out = churnguard(&["config", "check", "--config", "bad.toml"], p);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("interventions.rules[0].playbook"), "{err}");
    std::fs::write(
        p.join("bad.toml"),
        "[kpi.account_manager.growth]\nactivation = -1\n",
    )
    .unwrap();
    let out = churnguard(&["config", "check", "--config", "bad.toml"], p);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn uplift_targeting_without_an_uplift_model_is_refused_up_front() {
    let base = trained();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let data = base.join("co");
    let models = base.join("models");
    std::fs::write(
        p.join("uplift.toml"),
        "[interventions]\ntargeting = \"uplift\"\n",
    )
    .unwrap();
    let out = churnguard(
        &[
            "score",
            "--data",
            data.to_str().unwrap(),
            "--registry",
            models.to_str().unwrap(),
            "--snapshot",
            "2024-06-01",
            "--out",
            "r",
            "--store",
            "sqlite://cg.db",
            "--config",
            "uplift.toml",
        ],
        p,
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("churnguard uplift train"), "{err}");
    assert!(!p.join("r").exists(), "a refused run writes nothing");

    let out = churnguard(
        &["uplift", "show", "--registry", models.to_str().unwrap()],
        p,
    );
    assert_eq!(out.status.code(), Some(2));

    // One small run: its experiment is far too small to learn from, and
    // training says so instead of saving a model of noise.
    ok(
        &[
            "score",
            "--data",
            data.to_str().unwrap(),
            "--registry",
            models.to_str().unwrap(),
            "--snapshot",
            "2024-06-01",
            "--out",
            "r",
            "--store",
            "sqlite://cg.db",
        ],
        p,
    );
    let out = churnguard(
        &[
            "uplift",
            "train",
            "--data",
            data.to_str().unwrap(),
            "--registry",
            "reg",
            "--store",
            "sqlite://cg.db",
        ],
        p,
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("enough settled outcomes"), "{err}");
    assert!(!p.join("reg/uplift/champion").exists());
}

#[test]
fn an_override_sticks_across_runs_keeps_the_computed_band_and_lapses() {
    let base = trained();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let store_url = format!("sqlite://{}", p.join("cg.db").display());
    let score = |snapshot: &str, out: &str| {
        ok(
            &[
                "score",
                "--data",
                base.join("co").to_str().unwrap(),
                "--registry",
                base.join("models").to_str().unwrap(),
                "--snapshot",
                snapshot,
                "--out",
                out,
                "--store",
                "sqlite://cg.db",
            ],
            p,
        )
    };
    score("2024-05-01", "r1");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = rt
        .block_on(churnguard::store::Store::connect(&store_url))
        .unwrap();
    // The riskiest red customers: one gets a green band with new
    // interventions stopped, another a band that lapses in two seconds.
    let run = rt.block_on(store.latest_run()).unwrap().unwrap();
    let page = rt
        .block_on(store.risk_list(
            &run.run_id,
            &churnguard::store::RiskListFilter {
                band: Some("red".into()),
                limit: 50,
                ..Default::default()
            },
        ))
        .unwrap();
    assert!(page.rows.len() >= 2, "too few red customers");
    let (held, brief) = (
        page.rows[0].customer_id.clone(),
        page.rows[1].customer_id.clone(),
    );
    let now = churnguard::store::now();
    let set = churnguard::service::set_override(
        &store,
        &held,
        churnguard::service::OverrideRequest {
            band: Some("green".into()),
            suppress_interventions: true,
            reason: "service hold until the outage review".into(),
            expires_on: chrono::Utc::now().date_naive() + chrono::Days::new(30),
        },
        "ana",
        now,
    );
    rt.block_on(set).unwrap();
    // Bad input names its field.
    let bad = churnguard::service::set_override(
        &store,
        &held,
        churnguard::service::OverrideRequest {
            band: Some("purple".into()),
            suppress_interventions: false,
            reason: "x".into(),
            expires_on: chrono::Utc::now().date_naive(),
        },
        "ana",
        now,
    );
    let err = rt.block_on(bad).unwrap_err().to_string();
    assert!(err.contains("purple"), "{err}");
    rt.block_on(store.create_override(
        &churnguard::store::NewOverride {
            customer_id: brief.clone(),
            band: Some("yellow".into()),
            suppress: false,
            reason: "brief".into(),
            expires_at: now + 2,
        },
        "ana",
        now,
    ))
    .unwrap();

    score("2024-06-01", "r2");
    let latest = |id: &str| rt.block_on(store.customer_history(id)).unwrap()[0].clone();
    let h = latest(&held);
    assert_eq!(h.band, "green", "the override is shown");
    let computed = h.computed_band.clone().expect("the computed band is kept");
    assert_ne!(computed, "green", "{h:?}");
    // Stopped interventions: none created for it by the second run.
    let second = rt.block_on(store.latest_run()).unwrap().unwrap();
    let made: Vec<_> = rt
        .block_on(store.all_interventions())
        .unwrap()
        .into_iter()
        .filter(|i| i.customer_id == held && i.created_run == second.run_id)
        .collect();
    assert!(made.is_empty(), "{made:?}");

    // The brief override lapses: the next run (the same snapshot again, so
    // every customer is still there) shows the computed band again.
    assert_eq!(latest(&brief).band, "yellow");
    std::thread::sleep(std::time::Duration::from_secs(3));
    score("2024-06-01", "r3");
    let b = latest(&brief);
    assert!(b.computed_band.is_none(), "{b:?}");
    let h = latest(&held);
    assert_eq!(h.band, "green", "the long override still holds");
    let log = rt.block_on(store.audit_log()).unwrap();
    assert_eq!(
        log.iter()
            .filter(|e| e.action == "override.created")
            .count(),
        2
    );
    rt.block_on(store.close());
}
