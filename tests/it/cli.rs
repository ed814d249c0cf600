//! The real `churnguard` executable, driven as a user would.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::{root, shared_data};

fn churnguard(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_churnguard"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("runs the binary")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn help_lists_every_subcommand_and_each_has_help() {
    let dir = tempfile::tempdir().unwrap();
    let out = churnguard(&["--help"], dir.path());
    assert!(out.status.success());
    let help = text(&out);
    for sub in [
        "generate", "features", "inspect", "train", "evaluate", "predict", "models", "demo",
    ] {
        assert!(help.contains(sub), "--help lacks {sub}");
        let out = churnguard(&[sub, "--help"], dir.path());
        assert!(out.status.success(), "{sub} --help failed");
        assert!(
            text(&out).contains("Usage: churnguard"),
            "{sub} --help: {}",
            text(&out)
        );
    }
}

#[test]
fn generate_then_features_then_inspect() {
    let dir = tempfile::tempdir().unwrap();
    let out = churnguard(
        &[
            "generate",
            "--customers",
            "300",
            "--months",
            "18",
            "--seed",
            "9",
            "--out",
            "co",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out));
    for table in [
        "customers",
        "employees",
        "usage",
        "payments",
        "churn_events",
        "truth_hazard",
        "truth_employees",
    ] {
        assert!(
            dir.path().join(format!("co/{table}.parquet")).is_file(),
            "{table} not written"
        );
    }
    let out = churnguard(
        &[
            "features",
            "--data",
            "co",
            "--horizon",
            "60",
            "--out",
            "f/features.csv",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("labelled rows"), "{}", text(&out));
    let csv = std::fs::read_to_string(dir.path().join("f/features.csv")).unwrap();
    assert!(
        csv.starts_with("customer_id,snapshot_date,"),
        "{}",
        &csv[..80]
    );
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("f/features.csv.schema.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(schema["horizon_days"], 60);
    let out = churnguard(
        &[
            "features",
            "--data",
            "co",
            "--snapshot",
            "latest",
            "--out",
            "latest.parquet",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("ready for scoring"), "{}", text(&out));
    let out = churnguard(&["inspect", "--data", "co"], dir.path());
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("all 10 tables valid"), "{}", text(&out));
}

#[test]
fn bad_input_exits_2_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = churnguard(
        &["features", "--data", "nowhere", "--out", "x.parquet"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("nowhere"), "{}", text(&out));
    let out = churnguard(&["generate", "--customers", "0", "--out", "x"], dir.path());
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("customers"), "{}", text(&out));
    std::fs::write(dir.path().join("t.csv"), "a,b\n1,2\n").unwrap();
    let out = churnguard(&["inspect", "--data", "t.csv"], dir.path());
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let out = churnguard(
        &[
            "features",
            "--data",
            ".",
            "--snapshot",
            "yesterday",
            "--out",
            "x.csv",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let out = churnguard(
        &["generate", "--out", "x", "--customers", "ten"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn inspect_flat_telco_reports_missing_total_charges() {
    let Some(path) = shared_data("telco/telco_churn.csv") else {
        return;
    };
    let schema = root().join("data/schemas/telco.toml");
    let out = churnguard(
        &[
            "inspect",
            "--data",
            path.to_str().unwrap(),
            "--schema",
            schema.to_str().unwrap(),
        ],
        root(),
    );
    assert!(out.status.success(), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains("rows:      7043") && t.contains("TotalCharges: 11"),
        "{t}"
    );
}

#[test]
fn train_list_predict_evaluate_promote_rollback() {
    let dir = tempfile::tempdir().unwrap();
    let ok = |args: &[&str]| {
        let out = churnguard(args, dir.path());
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        text(&out)
    };
    ok(&[
        "generate",
        "--customers",
        "800",
        "--seed",
        "4",
        "--out",
        "co",
    ]);
    ok(&["features", "--data", "co", "--out", "f.parquet"]);
    // The event tables beside it: the report draws cohort retention.
    let out = ok(&[
        "train",
        "--data",
        "f.parquet",
        "--registry",
        "reg",
        "--families",
        "logistic,tree",
        "--events",
        "co",
    ]);
    assert!(
        out.contains("ROC-AUC") && out.contains("champion:"),
        "{out}"
    );
    let report_path = out
        .lines()
        .find_map(|l| l.strip_prefix("training report: "))
        .expect("the report's path is printed");
    let report = std::fs::read_to_string(dir.path().join(report_path.trim())).unwrap();
    assert!(
        report.contains("<h2>Cohort retention by signup month (as of "),
        "the report has the cohort section"
    );
    assert!(report.contains("projected at 12 months"));
    // Events that are not there: exit 2, naming them, and nothing saved.
    let out = churnguard(
        &[
            "train",
            "--data",
            "f.parquet",
            "--registry",
            "reg-missing",
            "--families",
            "logistic",
            "--events",
            "no-such-dir",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("no-such-dir"), "{}", text(&out));
    let list = ok(&["models", "list", "--registry", "reg"]);
    assert_eq!(
        list.lines()
            .filter(|l| l.contains("-logistic-") || l.contains("-tree-"))
            .count(),
        2,
        "{list}"
    );
    assert_eq!(
        list.lines().filter(|l| l.starts_with('*')).count(),
        1,
        "{list}"
    );
    ok(&["models", "show", "champion", "--registry", "reg"]);
    ok(&[
        "features",
        "--data",
        "co",
        "--snapshot",
        "latest",
        "--out",
        "latest.csv",
    ]);
    ok(&[
        "predict",
        "--model",
        "champion",
        "--data",
        "latest.csv",
        "--out",
        "scores.csv",
        "--registry",
        "reg",
    ]);
    let scores = std::fs::read_to_string(dir.path().join("scores.csv")).unwrap();
    let input = std::fs::read_to_string(dir.path().join("latest.csv")).unwrap();
    assert!(scores.starts_with("customer_id,snapshot_date,churn_probability"));
    assert_eq!(
        scores.lines().count(),
        input.lines().count(),
        "one score per input row"
    );
    let first_ids: Vec<&str> = input
        .lines()
        .skip(1)
        .take(5)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    let score_ids: Vec<&str> = scores
        .lines()
        .skip(1)
        .take(5)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(first_ids, score_ids, "input order is kept");
    let eval = ok(&[
        "evaluate",
        "--model",
        "champion",
        "--data",
        "f.parquet",
        "--registry",
        "reg",
    ]);
    assert!(
        eval.contains("ROC-AUC") && eval.contains("threshold"),
        "{eval}"
    );
    let ids: Vec<String> = list
        .lines()
        .filter_map(|l| {
            l.split_whitespace()
                .find(|w| w.contains("-logistic-") || w.contains("-tree-"))
                .map(String::from)
        })
        .collect();
    let other = ids
        .iter()
        .find(|id| {
            !list
                .lines()
                .any(|l| l.starts_with('*') && l.contains(id.as_str()))
        })
        .unwrap();
    ok(&["models", "promote", other, "--registry", "reg"]);
    let back = ok(&["models", "rollback", "--registry", "reg"]);
    assert!(back.contains("rolled back"), "{back}");
    assert!(dir.path().join("reg").read_dir().unwrap().any(|e| e
        .unwrap()
        .path()
        .join("report.html")
        .is_file()));
    // Wrong model or mismatched data: exit 2 with a clear message.
    let out = churnguard(
        &[
            "predict",
            "--model",
            "nope",
            "--data",
            "latest.csv",
            "--out",
            "x.csv",
            "--registry",
            "reg",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("nope"), "{}", text(&out));
    std::fs::write(dir.path().join("bad.csv"), "customer_id,tenure_days\n1,3\n").unwrap();
    let out = churnguard(
        &[
            "predict",
            "--data",
            "bad.csv",
            "--out",
            "x.csv",
            "--registry",
            "reg",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("missing required column"),
        "{}",
        text(&out)
    );
}

#[test]
fn train_and_predict_a_flat_table() {
    let Some(path) = shared_data("telco/telco_churn.csv") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let schema = root().join("data/schemas/telco.toml");
    let out = churnguard(
        &[
            "train",
            "--data",
            path.to_str().unwrap(),
            "--schema",
            schema.to_str().unwrap(),
            "--registry",
            "reg",
            "--families",
            "logistic",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = churnguard(
        &[
            "predict",
            "--data",
            path.to_str().unwrap(),
            "--out",
            "p.parquet",
            "--registry",
            "reg",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("scored 7043 rows"), "{}", text(&out));
}

#[test]
fn retention_projects_every_old_enough_cohort() {
    let dir = tempfile::tempdir().unwrap();
    let out = churnguard(
        &[
            "generate",
            "--customers",
            "2000",
            "--seed",
            "5",
            "--out",
            "co",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = churnguard(
        &[
            "retention",
            "--data",
            "co",
            "--by-plan",
            "--out",
            "cohorts.json",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("sBG projection"), "{}", text(&out));
    let cohorts: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("cohorts.json")).unwrap())
            .unwrap();
    let cohorts = cohorts.as_array().unwrap();
    let all: Vec<_> = cohorts.iter().filter(|c| c["plan"] == "all").collect();
    assert!(all.len() >= 12, "{} monthly cohorts", all.len());
    for c in &all {
        let survivors = c["survivors"].as_array().unwrap();
        let observed = survivors.len() - 1;
        // Old enough and big enough: fitted, its projection falling from 1.
        if observed >= 2 && c["customers"].as_u64().unwrap() >= 20 {
            assert!(c["alpha_beta"].is_array(), "{c}");
            let s: Vec<f64> = c["projected"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            assert_eq!(s.len(), 25);
            assert!(
                s[0] == 1.0 && s.windows(2).all(|w| w[1] <= w[0] + 1e-12),
                "{c}"
            );
            // The model reproduces what was observed within a few points.
            let observed_share =
                survivors[observed].as_f64().unwrap() / survivors[0].as_f64().unwrap();
            assert!((s[observed] - observed_share).abs() < 0.1, "{c}");
        } else {
            assert!(c["note"].is_string(), "{c}");
        }
    }
    // A missing data directory is a clear error, exit 2.
    let out = churnguard(&["retention", "--data", "nowhere"], dir.path());
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("nowhere"), "{}", text(&out));
}

#[test]
fn a_flat_export_without_ids_is_scored_by_row_number() {
    let Some(telco) = shared_data("telco/telco_churn.csv") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // Telco without its customerID column, and a schema that names no id.
    let csv = std::fs::read_to_string(telco).unwrap();
    let stripped: String = csv
        .lines()
        .map(|l| l.split_once(',').unwrap().1.to_string() + "\n")
        .collect();
    std::fs::write(dir.path().join("export.csv"), stripped).unwrap();
    let schema = std::fs::read_to_string(root().join("data/schemas/telco.toml")).unwrap();
    let schema: String = schema
        .lines()
        .filter(|l| !l.starts_with("id ") && !l.starts_with("id="))
        .map(|l| l.to_string() + "\n")
        .collect();
    std::fs::write(dir.path().join("noid.toml"), schema).unwrap();
    let flat = ["--data", "export.csv", "--schema", "noid.toml"];
    let out = churnguard(
        &[
            &["train"],
            &flat[..],
            &["--families", "logistic", "--registry", "models"],
        ]
        .concat(),
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = churnguard(
        &[
            &["score"],
            &flat[..],
            &[
                "--registry",
                "models",
                "--out",
                "run",
                "--store",
                "sqlite://s.db",
            ],
        ]
        .concat(),
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("row number"), "{}", text(&out));
    let risk = std::fs::read_to_string(dir.path().join("run/risk_list.csv")).unwrap();
    let ids: Vec<usize> = risk
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap().parse().unwrap())
        .collect();
    assert_eq!(ids.len(), 7043);
    assert!(ids.iter().all(|i| (1..=7043).contains(i)));
}

#[test]
fn a_transaction_log_is_scored_end_to_end() {
    let Some(cdnow) = shared_data("cdnow/cdnow_transactions.csv") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let log = cdnow.to_str().unwrap();
    let run = |extra: &[&str]| {
        churnguard(
            &[
                &[
                    "score",
                    "--data",
                    log,
                    "--out",
                    "run",
                    "--store",
                    "sqlite://s.db",
                ][..],
                extra,
            ]
            .concat(),
            dir.path(),
        )
    };
    // The amount column must exist: the error names it, exit 2.
    let out = run(&["--transactions"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("`amount`"), "{}", text(&out));

    let out = run(&["--transactions", "dollar_value"]);
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("scored 23570 customers at 1998-07-01"),
        "{said}"
    );
    // Where the time went, stage by stage.
    let stages = said
        .lines()
        .find_map(|l| l.trim().strip_prefix("time: "))
        .unwrap_or_else(|| panic!("no stage times in {said}"));
    for stage in ["load", "compute", "store", "files"] {
        assert!(stages.contains(&format!("{stage} ")), "{stages}");
    }
    assert!(
        said.contains("BG/NBD") && said.contains("1 - P(alive)"),
        "{said}"
    );
    // The risk list: every customer, riskiest value first, with a reason a
    // CSM can read and an intervention for some.
    let risk = std::fs::read_to_string(dir.path().join("run/risk_list.csv")).unwrap();
    let header: Vec<&str> = risk.lines().next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let rows: Vec<Vec<String>> = risk.lines().skip(1).map(parse_csv_line).collect();
    assert_eq!(rows.len(), 23570);
    let loss = |r: &Vec<String>| r[col("expected_loss")].parse::<f64>().unwrap();
    assert!(rows.windows(2).all(|w| loss(&w[0]) >= loss(&w[1])));
    assert!(
        rows[0][col("top_reason")].starts_with("weeks since last purchase:"),
        "{:?}",
        rows[0]
    );
    let bands: std::collections::HashSet<&str> =
        rows.iter().map(|r| r[col("band")].as_str()).collect();
    assert!(
        bands.contains("red") && bands.contains("green"),
        "{bands:?}"
    );
    assert!(rows.iter().any(|r| !r[col("intervention")].is_empty()));
    let interventions = std::fs::read_to_string(dir.path().join("run/interventions.csv")).unwrap();
    assert!(interventions.lines().count() > 1, "{interventions}");
    // The run is in the store like any other.
    let out = churnguard(&["runs", "--store", "sqlite://s.db"], dir.path());
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("bg/nbd"), "{}", text(&out));
}

/// One CSV line's fields (quotes as the writer puts them).
fn parse_csv_line(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    out.push(field);
    out
}

/// Trains a logistic model on a flat table (`flat`: `--data … --schema …`),
/// scores it into `run/`, and returns the run's scores (every column).
fn train_and_score_flat(flat: &[&str], dir: &Path) -> polars::prelude::DataFrame {
    let out = churnguard(
        &[
            &["train"],
            flat,
            &["--families", "logistic", "--registry", "models"],
        ]
        .concat(),
        dir,
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = churnguard(
        &[
            &["score"],
            flat,
            &[
                "--registry",
                "models",
                "--out",
                "run",
                "--store",
                "sqlite://s.db",
            ],
        ]
        .concat(),
        dir,
    );
    assert!(out.status.success(), "{}", text(&out));
    churnguard::data::read_raw(&dir.join("run/scores.parquet")).unwrap()
}

fn column_f64(frame: &polars::prelude::DataFrame, name: &str) -> Vec<Option<f64>> {
    churnguard::data::columns::f64s(frame, name).unwrap()
}

#[test]
fn telco_health_is_made_of_four_components_and_values_come_from_roles() {
    let Some(path) = shared_data("telco/telco_churn.csv") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = path.to_str().unwrap();
    let schema = root().join("data/schemas/telco.toml");
    let flat = ["--data", data, "--schema", schema.to_str().unwrap()];
    let scores = train_and_score_flat(&flat, dir.path());
    let n = scores.height();
    assert_eq!(n, 7043);
    // A component contributes where the customer has data for it (its own
    // score is present, and weighs in the index).
    let contributing = |component: &str| {
        column_f64(&scores, &format!("component_{component}"))
            .iter()
            .filter(|v| v.is_some())
            .count()
    };
    // Churn risk, engagement (add-ons taken), payment (method) and support
    // (support and security services): four components with data. Customers
    // without internet service have no support services, so support is
    // unknown for them (1,526 in the export) and reweighted away.
    for component in ["churn_risk", "engagement", "payment"] {
        assert!(
            contributing(component) >= n * 99 / 100,
            "{component}: {} of {n}",
            contributing(component)
        );
    }
    assert!(
        contributing("support") >= n * 3 / 4,
        "{}",
        contributing("support")
    );
    assert_eq!(contributing("satisfaction"), 0, "Telco has no surveys");
    // MRR comes from MonthlyCharges (roles.mrr): every customer has a CLV.
    assert!(column_f64(&scores, "clv")
        .iter()
        .all(|v| v.is_some_and(|v| v > 0.0)));
    // The contract is the segment (roles.segment).
    let segments = churnguard::data::columns::strs(&scores, "segment").unwrap();
    assert!(segments
        .iter()
        .all(|s| ["Month-to-month", "One year", "Two year"].contains(&s.as_deref().unwrap_or(""))));
}

#[test]
fn mapped_columns_score_health_components_as_the_schema_says() {
    let dir = tempfile::tempdir().unwrap();
    // 300 customers: usage (0–20), tickets (0–9), a payment method, a plan,
    // an owner and MRR; churn more likely with low usage.
    let mut csv = String::from("id,usage,tickets,method,owner,fee,churn\n");
    let mut state = 7u64;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as f64 / (1u64 << 31) as f64
    };
    for i in 0..300 {
        let usage = (next() * 20.0).floor();
        let tickets = (next() * 10.0).floor();
        let method = ["card", "check", "invoice"][i % 3];
        let churn = if next() < 0.6 - usage / 40.0 {
            "Yes"
        } else {
            "No"
        };
        let fee = 50 + i % 7 * 10;
        csv.push_str(&format!(
            "c{i},{usage},{tickets},{method},am{},{fee},{churn}\n",
            i % 4
        ));
    }
    std::fs::write(dir.path().join("t.csv"), csv).unwrap();
    std::fs::write(
        dir.path().join("t.toml"),
        r#"id = "id"
[target]
column = "churn"
positive = "Yes"
[columns]
numeric = ["usage", "tickets"]
categorical = ["method"]
[roles]
owner = "owner"
mrr = "fee"
[[health]]
component = "engagement"
column = "usage"
worst = 0
best = 10
[[health]]
component = "support"
column = "tickets"
worst = 8
best = 0
[[health]]
component = "payment"
column = "method"
levels = { card = 100, check = 40 }
"#,
    )
    .unwrap();
    let flat = ["--data", "t.csv", "--schema", "t.toml"];
    let scores = train_and_score_flat(&flat, dir.path());
    let input = churnguard::data::read_raw(&dir.path().join("t.csv")).unwrap();
    let by_id: std::collections::HashMap<String, usize> =
        churnguard::data::columns::strs(&input, "id")
            .unwrap()
            .into_iter()
            .enumerate()
            .map(|(i, id)| (id.unwrap(), i))
            .collect();
    let usage = column_f64(&input, "usage");
    let tickets = column_f64(&input, "tickets");
    let method = churnguard::data::columns::strs(&input, "method").unwrap();
    let fee = column_f64(&input, "fee");
    let ids = churnguard::data::columns::strs(&scores, "customer_id").unwrap();
    let owners = churnguard::data::columns::strs(&scores, "owner").unwrap();
    let p = column_f64(&scores, "churn_probability");
    let health = column_f64(&scores, "health");
    let parts: Vec<Vec<Option<f64>>> = churnguard::health::Component::ALL
        .iter()
        .map(|c| column_f64(&scores, &format!("health_{}", c.name())))
        .collect();
    let config = churnguard::health::HealthConfig::default();
    use churnguard::health::Component;
    for (row, id) in ids.iter().enumerate() {
        let i = by_id[id.as_deref().unwrap()];
        // What the schema says each component is, by hand.
        let mut mapped = vec![
            (
                Component::Engagement,
                100.0 * (usage[i].unwrap() / 10.0).min(1.0),
            ),
            (
                Component::Support,
                100.0 * (1.0 - tickets[i].unwrap() / 8.0).max(0.0),
            ),
        ];
        match method[i].as_deref() {
            Some("card") => mapped.push((Component::Payment, 100.0)),
            Some("check") => mapped.push((Component::Payment, 40.0)),
            _ => {} // "invoice" has no points: payment unknown
        }
        let want = churnguard::health::health_index(
            &churnguard::health::HealthInputs {
                churn_probability: p[row].unwrap(),
                mapped,
                ..Default::default()
            },
            &config,
        );
        assert!((want.score - health[row].unwrap()).abs() < 1e-9, "{id:?}");
        for (k, c) in want.components.iter().enumerate() {
            assert!(
                (c.contribution - parts[k][row].unwrap_or(0.0)).abs() < 1e-9,
                "{id:?} {}",
                c.component
            );
        }
        // roles: the owner column is the owner, the fee the MRR.
        assert_eq!(
            owners[row].as_deref(),
            Some(format!("am{}", i % 4).as_str())
        );
        assert!(fee[i].unwrap() > 0.0);
    }
    // KPI on a flat table: account-manager scorecards by the owner role,
    // with health and retention (the export's label) per book.
    let kpi = churnguard::data::read_raw(&dir.path().join("run/kpi_account_manager.csv")).unwrap();
    let owners = churnguard::data::columns::strs(&kpi, "employee_id").unwrap();
    let mut owners: Vec<String> = owners.into_iter().map(Option::unwrap).collect();
    owners.sort();
    assert_eq!(owners, ["am0", "am1", "am2", "am3"]);
    let retention = column_f64(&kpi, "retention");
    assert!(retention
        .iter()
        .all(|r| r.is_some_and(|r| (0.0..=1.0).contains(&r))));
    let books = column_f64(&kpi, "customers");
    assert_eq!(books.iter().map(|b| b.unwrap()).sum::<f64>(), 300.0);
    // A signal on a column that is not an input is refused, naming it.
    std::fs::write(
        dir.path().join("bad.toml"),
        std::fs::read_to_string(dir.path().join("t.toml"))
            .unwrap()
            .replace("column = \"usage\"", "column = \"fee\""),
    )
    .unwrap();
    let out = churnguard(
        &[
            "score",
            "--data",
            "t.csv",
            "--schema",
            "bad.toml",
            "--registry",
            "models",
            "--out",
            "run2",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("`fee`") && text(&out).contains("not a numeric input"),
        "{}",
        text(&out)
    );
}
