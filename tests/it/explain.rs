//! Faithful reasons: for every family, each customer's contributions plus
//! the model's base add up to its raw log-odds, on real rows; a missing
//! value is shown (and blamed) as missing.

use churnguard::models::explain::Method;
use churnguard::models::{Batch, Family, FittedModel};
use churnguard::train::TrainInput;

use crate::models::{config, generated_input, telco};
use crate::support::train;

/// The largest |base + Σ contributions − logit| over the rows.
fn additivity_error(model: &FittedModel, batch: &Batch) -> f64 {
    let e = model.explain(batch).unwrap();
    let mut worst: f64 = 0.0;
    for (i, logit) in e.logits.iter().enumerate() {
        let sum = e.base + e.contributions.row(i).sum();
        worst = worst.max((sum - logit).abs());
    }
    // The logits are the model's own raw score: calibrating them gives
    // exactly what predict gives.
    let p = model.predict(batch).unwrap();
    for (z, p) in e.logits.iter().zip(p) {
        let q = model
            .calibrator
            .apply(churnguard::models::explain::sigmoid(*z));
        assert!((q - p).abs() < 1e-9, "{}: {q} vs {p}", model.family());
    }
    worst
}

fn families() -> Vec<Family> {
    let mut f = vec![Family::Logistic, Family::Tree, Family::Gbdt];
    if crate::support::neural().is_some() {
        f.push(Family::Neural);
    }
    f
}

fn check_every_family(input: &TrainInput, what: &str) {
    let report = train(input, &config(&families())).unwrap();
    let rows: Vec<usize> = report.test_rows.iter().copied().take(300).collect();
    let batch = input.batch.select(&rows);
    for r in &report.results {
        let error = additivity_error(&r.model, &batch);
        let e = r.model.explain(&batch).unwrap();
        eprintln!(
            "{what}: {} contributions add up to the log-odds within {error:.2e} ({:?})",
            r.model.family(),
            e.method
        );
        assert!(
            error < 1e-6,
            "{what}: {}: base + contributions misses the log-odds by {error}",
            r.model.family()
        );
        assert_eq!(
            e.method == Method::Exact,
            r.model.family() != Family::Neural,
            "{what}: {}",
            r.model.family()
        );
    }
}

#[test]
fn contributions_add_up_to_the_score_for_every_family_on_generated_rows() {
    check_every_family(&generated_input(), "generated");
}

#[test]
fn contributions_add_up_to_the_score_for_every_family_on_telco() {
    let Some((_, input)) = telco() else { return };
    check_every_family(&input, "telco");
}

#[test]
fn a_missing_value_is_blamed_on_being_missing() {
    let input = generated_input();
    let report = train(&input, &config(&[Family::Gbdt])).unwrap();
    let model = &report.results[0].model;
    // The test rows, then the same rows with one input blanked.
    let rows: Vec<usize> = report.test_rows.iter().copied().take(200).collect();
    let mut batch = input.batch.select(&rows);
    let top = model.importance()[0].0.clone();
    let j = batch
        .numeric_names
        .iter()
        .position(|n| *n == top)
        .expect("the most important input is numeric");
    batch.numeric.column_mut(j).fill(f64::NAN);
    let e = model.explain(&batch).unwrap();
    let reasons = model.reasons_from(&batch, &e.contributions, 20);
    let blamed: Vec<&churnguard::models::Reason> = reasons
        .iter()
        .flatten()
        .filter(|r| r.feature == top)
        .collect();
    assert!(!blamed.is_empty(), "no row blames {top} once it is missing");
    for r in blamed {
        assert_eq!(r.value, "missing", "{r:?}");
    }
    // The boosted family routes a missing value down its own branch: the
    // contribution is what being missing does, so it differs from the
    // contribution of any one observed value the rows had.
    let column: Vec<f64> = e.contributions.column(j).to_vec();
    assert!(column.iter().any(|c| c.abs() > 1e-9));
    let text = churnguard::scoring::reason_text(&reasons.iter().flatten().next().unwrap().clone());
    assert!(text.ends_with("(raises risk)"), "{text}");
}
