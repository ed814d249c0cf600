//! The Cox model against lifelines' CoxPHFitter on the same inputs, the same
//! encoding and the same held-out rows (bench/peers/cox_lifelines.py wrote
//! tests/data/cox_reference.json): coefficients close, held-out concordance
//! within 0.01. Skips without ../shared/data (fails under
//! `CHURNGUARD_REQUIRE_SHARED_DATA=1`).

use churnguard::value::cox::{concordance_index, fit_cox, SurvivalData};

use crate::support::shared_data;

struct Spec {
    file: &'static str,
    duration: &'static str,
    event: (&'static str, &'static str),
    numeric: &'static [&'static str],
    categorical: &'static [&'static str],
}

const TELCO: Spec = Spec {
    file: "telco/telco_churn.csv",
    duration: "tenure",
    event: ("Churn", "Yes"),
    numeric: &["SeniorCitizen", "MonthlyCharges"],
    categorical: &[
        "Partner",
        "Dependents",
        "PaperlessBilling",
        "Contract",
        "InternetService",
        "PaymentMethod",
    ],
};

const SAAS: Spec = Spec {
    file: "saas_survival/saas_churn_survival.csv",
    duration: "months_active",
    event: ("churned", "1.0"),
    numeric: &[
        "csat_score",
        "articles_viewed",
        "smartphone_notifications_viewed",
        "marketing_emails_clicked",
        "social_media_ads_viewed",
        "minutes_customer_support",
    ],
    categorical: &[
        "product_data_storage",
        "product_travel_expense",
        "product_payroll",
        "product_accounting",
        "company_size",
    ],
};

/// Rows of the design: (position in the file, duration, event, inputs).
struct Design {
    names: Vec<String>,
    rows: Vec<(usize, f64, bool, Vec<f64>)>,
}

/// The same design as the reference script: numeric inputs as they are,
/// categorical ones one-hot without their lexicographically first level,
/// rows with a zero duration dropped.
fn design(path: &std::path::Path, spec: &Spec) -> Design {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let cells: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let mut names: Vec<String> = spec.numeric.iter().map(|s| s.to_string()).collect();
    let mut levels_of = Vec::new();
    for c in spec.categorical {
        let k = col(c);
        let mut levels: Vec<&str> = cells.iter().map(|r| r[k]).collect();
        levels.sort_unstable();
        levels.dedup();
        names.extend(levels[1..].iter().map(|l| format!("{c}={l}")));
        levels_of.push((k, levels[1..].to_vec()));
    }
    let (d, (e, yes)) = (col(spec.duration), spec.event);
    let e = col(e);
    let rows = cells
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            let duration: f64 = r[d].parse().unwrap();
            if duration <= 0.0 {
                return None;
            }
            let mut x: Vec<f64> = spec
                .numeric
                .iter()
                .map(|c| r[col(c)].parse().unwrap())
                .collect();
            for (k, levels) in &levels_of {
                x.extend(levels.iter().map(|l| f64::from(u8::from(r[*k] == *l))));
            }
            Some((i, duration, r[e] == yes, x))
        })
        .collect();
    Design { names, rows }
}

fn check(key: &str, spec: &Spec) -> Option<(f64, f64)> {
    let path = shared_data(spec.file)?;
    let reference: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/cox_reference.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let reference = &reference["sets"][key];
    let d = design(&path, spec);
    let names: Vec<String> = reference["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(d.names, names, "{key}: the same inputs in the same order");
    let (test, train): (Vec<_>, Vec<_>) = d.rows.iter().partition(|r| r.0 % 4 == 0);
    let flat = |rows: &[&(usize, f64, bool, Vec<f64>)]| {
        (
            rows.iter()
                .flat_map(|r| r.3.iter().copied())
                .collect::<Vec<f64>>(),
            rows.iter().map(|r| r.1).collect::<Vec<f64>>(),
            rows.iter().map(|r| r.2).collect::<Vec<bool>>(),
        )
    };
    let (x, durations, events) = flat(&train);
    let model = fit_cox(
        d.names.clone(),
        SurvivalData {
            x: &x,
            durations: &durations,
            events: &events,
        },
    )
    .unwrap();
    assert_eq!(
        model.rows,
        reference["train_rows"].as_u64().unwrap() as usize
    );
    for (k, name) in d.names.iter().enumerate() {
        let theirs = reference["coefficients"][k].as_f64().unwrap();
        let ours = model.coefficients[k];
        assert!(
            (ours - theirs).abs() <= 1e-3 + 1e-3 * theirs.abs(),
            "{key} {name}: ours {ours} vs lifelines {theirs}"
        );
        let se = reference["standard_errors"][k].as_f64().unwrap();
        assert!(
            (model.standard_errors[k] - se).abs() <= 1e-2 * se,
            "{key} {name}: standard error {} vs {se}",
            model.standard_errors[k]
        );
    }
    let (x, durations, events) = flat(&test);
    let risk = model.partial_hazards(&x);
    let ours = concordance_index(&durations, &risk, &events).unwrap();
    let theirs = reference["test_concordance"].as_f64().unwrap();
    assert!(
        (ours - theirs).abs() <= 0.01,
        "{key}: held-out concordance {ours:.4} vs lifelines {theirs:.4}"
    );
    // Curves: falling, and a riskier customer expects fewer months.
    let (lo, hi) = risk.iter().enumerate().fold((0, 0), |(lo, hi), (i, r)| {
        (
            if *r < risk[lo] { i } else { lo },
            if *r > risk[hi] { i } else { hi },
        )
    });
    let p = d.names.len();
    let row = |i: usize| &x[i * p..(i + 1) * p];
    assert!(model.expected_remaining(row(hi), 0.0) < model.expected_remaining(row(lo), 0.0));
    assert!(model.survival(row(hi), 6.0) <= model.survival(row(hi), 1.0));
    Some((ours, theirs))
}

#[test]
fn cox_matches_lifelines_on_telco() {
    if let Some((ours, theirs)) = check("telco", &TELCO) {
        assert!(ours > 0.8, "telco concordance {ours} (lifelines {theirs})");
    }
}

#[test]
fn cox_matches_lifelines_on_saas_survival() {
    if let Some((ours, theirs)) = check("saas_survival", &SAAS) {
        assert!(ours > 0.8, "saas concordance {ours} (lifelines {theirs})");
    }
}
