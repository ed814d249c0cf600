//! What the generator's ground truth lets us check about the action layer:
//! the outcome analysis recovers a known treatment effect, and the account
//! managers' KPI ranking follows their latent skill.

use std::collections::HashMap;
use std::sync::OnceLock;

use churnguard::data::synthetic::{apply_treatment_effects, generate, Company, GeneratorParams};
use churnguard::data::{columns, Tables};
use churnguard::features::{build_features, model_inputs, FeatureParams};
use churnguard::interventions::{self, Arm, InterventionPolicy};
use churnguard::kpi::{self, Role, Stage};
use churnguard::models::{Batch, Family, FittedModel};
use churnguard::scoring::{self, CustomerContext, ScoredCustomer, Settings};
use churnguard::train::{self, TrainConfig, TrainInput};

use crate::support::small_company;

fn inputs() -> (Vec<String>, Vec<String>) {
    let (n, c) = model_inputs();
    (
        n.iter().map(|s| s.to_string()).collect(),
        c.iter().map(|s| s.to_string()).collect(),
    )
}

/// A logistic model trained on the small company's quarterly snapshots.
fn model() -> &'static FittedModel {
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
fn score(tables: &Tables, snapshot: &str) -> (polars::prelude::DataFrame, Vec<ScoredCustomer>) {
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
        },
    )
    .unwrap();
    (frame, scored)
}

fn company(n: usize, seed: u64) -> Company {
    generate(&GeneratorParams {
        n_customers: n,
        seed,
        ..Default::default()
    })
    .unwrap()
}

#[test]
fn the_outcome_analysis_recovers_a_known_effect() {
    let c = company(20_000, 11);
    let snapshot = "2024-07-01";
    let (_, scored) = score(&c.tables, snapshot);
    let policy = InterventionPolicy {
        // Capacity would leave eligible customers untreated; this test is about the estimate.
        owners: InterventionPolicy::default()
            .owners
            .into_iter()
            .map(|(k, mut o)| {
                o.capacity_per_day = 1_000_000;
                (k, o)
            })
            .collect(),
        ..Default::default()
    };
    let now = chrono::NaiveDate::parse_from_str(snapshot, "%Y-%m-%d")
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp();
    let inputs: Vec<_> = scored.iter().map(ScoredCustomer::policy_input).collect();
    let mut records = interventions::plan(&policy, &inputs, &[], "run", now).created;
    for (k, r) in records.iter_mut().enumerate() {
        r.id = k as i64 + 1;
    }
    let treated = records.iter().filter(|r| r.arm == Arm::Treated).count();
    let control = records.len() - treated;
    assert!(control > 300, "control group too small to test: {control}");

    let end = churnguard::data::schema::days_from_date(c.tables.data_end().unwrap());
    let churned_on = |events: &polars::prelude::DataFrame| -> HashMap<String, i32> {
        columns::strs(events, "customer_id")
            .unwrap()
            .into_iter()
            .zip(columns::days(events, "churn_date").unwrap())
            .filter_map(|(i, d)| Some((i?, d?)))
            .collect()
    };
    for true_effect in [0.0, 0.45] {
        let effects: Vec<(String, i64, f64)> = records
            .iter()
            .filter(|r| r.arm == Arm::Treated)
            .map(|r| (r.customer_id.clone(), r.created_at, true_effect))
            .collect();
        let (events, prevented) =
            apply_treatment_effects(&c.tables.churn_events, &effects, 90, 5).unwrap();
        assert_eq!(prevented > 0, true_effect > 0.0);
        let report = interventions::outcomes(&records, &churned_on(&events), end, 90);
        let s = report.overall.expect("both arms settled");
        let (lo, hi) = s.relative_ci.unwrap();
        eprintln!(
            "true effect {true_effect}: treated {} ({} churned), control {} ({} churned), relative save rate {:.3} (95% CI {lo:.3}..{hi:.3})",
            s.treated.customers, s.treated.churned, s.control.customers, s.control.churned,
            s.relative.unwrap()
        );
        assert!(
            lo <= true_effect && true_effect <= hi,
            "true effect {true_effect} outside the 95% CI {lo:.3}..{hi:.3} (estimate {:.3})",
            s.relative.unwrap()
        );
        assert!(
            hi - lo < 0.6,
            "interval too wide to mean anything: {lo:.3}..{hi:.3}"
        );
        if true_effect > 0.0 {
            assert!(
                lo > 0.0,
                "a 45% effect should be detectable: {lo:.3}..{hi:.3}"
            );
            assert!(s.absolute_ci.0 > 0.0, "{:?}", s.absolute_ci);
        }
    }
}

#[test]
fn account_manager_ranking_tracks_latent_skill() {
    let c = company(100_000, 42);
    let snapshot = "2024-10-01";
    let (frame, scored) = score(&c.tables, snapshot);
    let rows = kpi::ScoredRow::from_scores(&frame, &scored);
    let facts = kpi::facts(&kpi::FactsInput {
        tables: &c.tables,
        rows: &rows,
        snapshot: churnguard::data::schema::days_from_date(snapshot.parse().unwrap()),
        save_rates: &HashMap::new(),
        activation_features: 3,
    })
    .unwrap();
    let cards = kpi::scorecards(
        &facts,
        Role::AccountManager,
        Stage::Balanced,
        &kpi::KpiConfig::default(),
    );
    let skill: HashMap<String, f64> = columns::strs(&c.truth.employees, "employee_id")
        .unwrap()
        .into_iter()
        .zip(columns::f64s(&c.truth.employees, "skill").unwrap())
        .filter_map(|(i, s)| Some((i?, s?)))
        .collect();
    let composite: Vec<f64> = cards.cards.iter().map(|c| c.composite).collect();
    let latent: Vec<f64> = cards.cards.iter().map(|c| skill[&c.employee_id]).collect();
    let rho = kpi::spearman(&composite, &latent).unwrap();
    eprintln!(
        "account managers: {}, Spearman(composite, latent skill) = {rho:.3}",
        cards.cards.len()
    );
    assert!(cards.cards.len() >= 200);
    assert!(rho >= 0.6, "Spearman {rho:.3} < 0.6");
}
