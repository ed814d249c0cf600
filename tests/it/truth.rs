//! What the generator's ground truth lets us check about the action layer:
//! the account managers' KPI ranking follows their latent skill. (The
//! experiment's coverage and uplift targeting are in `experiment.rs`.)

use std::collections::HashMap;
use std::sync::OnceLock;

use churnguard::data::synthetic::{generate, Company, GeneratorParams};
use churnguard::data::{columns, Tables};
use churnguard::features::{build_features, model_inputs, FeatureParams};
use churnguard::kpi::{self, Role, Stage};
use churnguard::models::{Batch, Family, FittedModel};
use churnguard::scoring::{self, CustomerContext, ScoredCustomer, Settings};
use churnguard::train::{self, TrainConfig, TrainInput};

use crate::support::small_company;

pub(crate) fn inputs() -> (Vec<String>, Vec<String>) {
    let (n, c) = model_inputs();
    (
        n.iter().map(|s| s.to_string()).collect(),
        c.iter().map(|s| s.to_string()).collect(),
    )
}

/// A logistic model trained on the small company's quarterly snapshots.
pub(crate) fn model() -> &'static FittedModel {
    static MODEL: OnceLock<FittedModel> = OnceLock::new();
    MODEL.get_or_init(|| {
        let snapshots = [
            "2023-07-01",
            "2023-10-01",
            "2024-01-01",
            "2024-04-01",
            "2024-07-01",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        let f = build_features(
            &small_company().tables,
            &FeatureParams {
                snapshots,
                horizon_days: 90,
            },
        )
        .unwrap();
        let (numeric, categorical) = inputs();
        let batch = Batch::from_frame(&f, "customer_id", &numeric, &categorical).unwrap();
        let labels = columns::i64s(&f, "churned")
            .unwrap()
            .into_iter()
            .map(|v| v.unwrap() as u8)
            .collect();
        let snaps = columns::days(&f, "snapshot_date")
            .unwrap()
            .into_iter()
            .map(|v| v.unwrap())
            .collect();
        let report = train::train(
            &TrainInput {
                batch,
                labels,
                snapshots: Some(snaps),
                horizon_days: 90,
                churn_types: None,
            },
            &TrainConfig {
                families: vec![Family::Logistic],
                ..Default::default()
            },
        )
        .unwrap();
        report.results[0].model.clone()
    })
}

/// Scores every active customer of a company at a snapshot.
pub(crate) fn score(
    tables: &Tables,
    snapshot: &str,
) -> (polars::prelude::DataFrame, Vec<ScoredCustomer>) {
    let frame = build_features(
        tables,
        &FeatureParams {
            snapshots: vec![snapshot.parse().unwrap()],
            horizon_days: 90,
        },
    )
    .unwrap();
    let (numeric, categorical) = inputs();
    let batch = Batch::from_frame(&frame, "customer_id", &numeric, &categorical).unwrap();
    let contexts = CustomerContext::from_frame(&frame, &HashMap::new());
    let config = churnguard::config::Config::default().app;
    let scored = scoring::score_customers(
        model(),
        90,
        &batch,
        &contexts,
        &HashMap::new(),
        Settings {
            scoring: &config.scoring,
            health: &config.health,
            value: &config.value,
            policy: &config.interventions,
            clv_thresholds: None,
            lifetime: None,
            input: None,
        },
    )
    .unwrap();
    (frame, scored)
}

pub(crate) fn company(n: usize, seed: u64) -> Company {
    generate(&GeneratorParams {
        n_customers: n,
        seed,
        ..Default::default()
    })
    .unwrap()
}

#[test]
fn risk_adjusted_scorecards_track_latent_skill_better_than_raw_ones() {
    let c = company(100_000, 42);
    let snapshot = "2024-10-01";
    let (frame, scored) = score(&c.tables, snapshot);
    // The period's start: what the model predicted 90 days earlier.
    let (_, at_start) = score(&c.tables, "2024-07-03");
    let expected: HashMap<i64, f64> = at_start
        .iter()
        .filter_map(|s| Some((s.customer_id.parse().ok()?, s.churn_probability)))
        .collect();
    let rows = kpi::ScoredRow::from_scores(&frame, &scored);
    let facts = kpi::facts(&kpi::FactsInput {
        tables: &c.tables,
        rows: &rows,
        snapshot: churnguard::data::schema::days_from_date(snapshot.parse().unwrap()),
        save_rates: &HashMap::new(),
        activation_features: 3,
        expected_churn: Some(&expected),
    })
    .unwrap();
    let config = kpi::KpiConfig::default();
    let skill: HashMap<String, f64> = columns::strs(&c.truth.employees, "employee_id")
        .unwrap()
        .into_iter()
        .zip(columns::f64s(&c.truth.employees, "skill").unwrap())
        .filter_map(|(i, s)| Some((i?, s?)))
        .collect();

    let managers = kpi::scorecards(&facts, Role::AccountManager, Stage::Balanced, &config);
    let latent: Vec<f64> = managers
        .cards
        .iter()
        .map(|c| skill[&c.employee_id])
        .collect();
    let raw: Vec<f64> = managers.cards.iter().map(|c| c.composite).collect();
    let adjusted: Vec<f64> = managers
        .cards
        .iter()
        .map(|c| {
            c.adjusted_composite
                .expect("every book has a starting risk")
        })
        .collect();
    let rho_raw = kpi::spearman(&raw, &latent).unwrap();
    let rho_adjusted = kpi::spearman(&adjusted, &latent).unwrap();
    let customers: Vec<usize> = managers.cards.iter().map(|c| c.customers).collect();
    eprintln!(
        "account managers: {} (customers per book {}..{}), Spearman with latent skill: \
         raw composite {rho_raw:.3}, risk-adjusted composite {rho_adjusted:.3}",
        managers.cards.len(),
        customers.iter().min().unwrap(),
        customers.iter().max().unwrap(),
    );
    assert!(managers.cards.len() >= 200);
    assert!(rho_raw >= 0.6, "raw Spearman {rho_raw:.3} < 0.6");
    assert!(
        rho_adjusted > rho_raw,
        "risk-adjusted {rho_adjusted:.3} does not beat raw {rho_raw:.3}"
    );

    let reps = kpi::scorecards(&facts, Role::Acquisition, Stage::Balanced, &config);
    let quality: Vec<f64> = reps.cards.iter().map(|c| skill[&c.employee_id]).collect();
    let composite: Vec<f64> = reps.cards.iter().map(|c| c.composite).collect();
    let rho_reps = kpi::spearman(&composite, &quality).unwrap();
    eprintln!(
        "acquisition reps: {}, Spearman(composite, latent lead quality) = {rho_reps:.3}",
        reps.cards.len()
    );
    assert!(rho_reps >= 0.6, "acquisition Spearman {rho_reps:.3} < 0.6");
}
