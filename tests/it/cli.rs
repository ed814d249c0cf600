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
    for sub in ["generate", "features", "inspect", "demo"] {
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
