//! `churnguard monitor` on the generator's drift scenario: a billing change
//! that triples first-attempt card failures. The monitor must see the
//! payment inputs move, in the scenario's company and not in its twin
//! without it; compute realised performance once the horizon has passed;
//! and exit with its verdict.

use std::collections::BTreeMap;

use crate::actions::{churnguard, ok};

fn levels(report: &serde_json::Value) -> BTreeMap<String, (f64, String)> {
    report["drift"]["inputs"]
        .as_array()
        .expect("a drift report")
        .iter()
        .map(|i| {
            (
                i["name"].as_str().unwrap().to_string(),
                (
                    i["psi"].as_f64().unwrap(),
                    i["level"].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect()
}

#[test]
fn the_monitor_finds_the_billing_change_and_only_what_follows_from_it() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let generate = |out: &str, extra: &[&str]| {
        let mut args = vec![
            "generate",
            "--customers",
            "5000",
            "--seed",
            "3",
            "--out",
            out,
        ];
        args.extend_from_slice(extra);
        ok(&args, p);
    };
    // Twins: the same customers, one with the billing change from July.
    generate("base", &[]);
    generate("drift", &["--billing-change-from", "2024-07-01"]);
    // A model trained before the change (the twins agree until then).
    ok(
        &[
            "features",
            "--data",
            "base",
            "--snapshot",
            "2023-10-02",
            "--snapshot",
            "2024-01-01",
            "--snapshot",
            "2024-04-01",
            "--snapshot",
            "2024-07-01",
            "--out",
            "f.parquet",
        ],
        p,
    );
    ok(
        &[
            "train",
            "--data",
            "f.parquet",
            "--families",
            "logistic",
            "--registry",
            "models",
        ],
        p,
    );
    let version = std::fs::read_dir(p.join("models"))
        .unwrap()
        .filter_map(|e| e.ok())
        .find(|e| e.path().join("manifest.json").is_file())
        .unwrap()
        .path();
    assert!(version.join("baseline.json").is_file(), "no baseline saved");

    let out = churnguard(&["monitor", "--store", "sqlite://none.db"], p);
    assert_eq!(out.status.code(), Some(2), "no run yet is bad input");

    let mut reports = BTreeMap::new();
    for company in ["base", "drift"] {
        let store = format!("sqlite://{company}.db");
        ok(
            &[
                "score",
                "--data",
                company,
                "--registry",
                "models",
                "--snapshot",
                "2024-09-30",
                "--out",
                company,
                "--store",
                &store,
            ],
            p,
        );
        let json = format!("{company}-monitor.json");
        let out = churnguard(
            &[
                "monitor",
                "--store",
                &store,
                "--registry",
                "models",
                "--events",
                company,
                "--out",
                &json,
            ],
            p,
        );
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(p.join(&json)).unwrap()).unwrap();
        let expected = match report["verdict"].as_str().unwrap() {
            "healthy" => 0,
            "warning" => 4,
            _ => 5,
        };
        assert_eq!(out.status.code(), Some(expected), "{stdout}");
        // The run's horizon has passed in the data: realised performance
        // over every customer the run scored.
        let realised = &report["realised"]["realised"];
        assert_eq!(
            realised["customers"], report["run"]["customers"],
            "{stdout}"
        );
        let auc = realised["roc_auc"].as_f64().unwrap();
        assert!((0.55..0.95).contains(&auc), "{stdout}");
        eprintln!("{company}:\n{stdout}");
        reports.insert(company, report);
    }
    let (base, drift) = (levels(&reports["base"]), levels(&reports["drift"]));
    // What the change touches directly: failed payment attempts.
    let (psi_base, level_base) = &base["payment_failures_90d"];
    let (psi_drift, level_drift) = &drift["payment_failures_90d"];
    assert_eq!(level_base, "none", "PSI {psi_base}");
    assert_ne!(level_drift, "none", "PSI {psi_drift}");
    assert!(
        *psi_drift > 5.0 * psi_base,
        "{psi_drift} against {psi_base}"
    );
    // Everything else: the same verdict as without the change, unless it
    // is a payment input (late payments follow failed ones).
    for (name, (psi, level)) in &drift {
        if name.contains("payment") {
            continue;
        }
        let (psi0, level0) = &base[name];
        assert_eq!(
            level, level0,
            "{name}: {level} (PSI {psi:.3}) with the change, {level0} (PSI {psi0:.3}) without"
        );
    }
}
