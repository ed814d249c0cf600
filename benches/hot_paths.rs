//! Criterion micro-benchmarks of the hot paths of scoring: preprocessing a
//! row, the logistic score of a row, a tree path, the health index of a
//! customer, and scoring a 1,000-row batch (probability, reasons, CLV,
//! health) through `score_customers`, as `churnguard score` and
//! `POST /v1/score` do; probabilities of the same batch through the one-hot
//! matrix (`predict_logistic_dense`), from raw rows (`predict_logistic`) and
//! straight from the frame's columns (`predict_frame_logistic`, as
//! `churnguard predict` does).
//!
//! The models are trained once, at start-up, on a generated company of 2,000
//! customers (logistic and tree; the neural family needs libtorch).
//!
//! ```text
//! cargo bench --bench hot_paths
//! ```

use std::collections::HashMap;
use std::hint::black_box;

use churnguard::data::columns;
use churnguard::data::synthetic::{generate, GeneratorParams};
use churnguard::features::{build_features, default_snapshots, model_inputs, FeatureParams};
use churnguard::health::{health_index, HealthConfig, HealthInputs};
use churnguard::interventions::InterventionPolicy;
use churnguard::models::{labels_from_frame, Batch, ChurnModel, Family, FittedModel};
use churnguard::scoring::{score_customers, CustomerContext, ScoringConfig, Settings};
use churnguard::train::{train, TrainConfig, TrainInput};
use churnguard::value::ValueConfig;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// A feature table's rows, the labelled ones, and the fitted models.
struct Fixture {
    frame: polars::prelude::DataFrame,
    rows: Batch,
    logistic: FittedModel,
    tree: FittedModel,
}

fn fixture() -> Fixture {
    let company = generate(&GeneratorParams {
        n_customers: 2_000,
        ..Default::default()
    })
    .expect("generate a company");
    let tables = &company.tables;
    let snapshots = default_snapshots(tables, 90, 3).expect("snapshots");
    let frame = build_features(
        tables,
        &FeatureParams {
            snapshots,
            horizon_days: 90,
        },
    )
    .expect("build features");
    let (numeric, categorical) = model_inputs();
    let numeric: Vec<String> = numeric.into_iter().map(String::from).collect();
    let categorical: Vec<String> = categorical.into_iter().map(String::from).collect();
    let rows =
        Batch::from_frame(&frame, "customer_id", &numeric, &categorical).expect("model inputs");
    let labels = labels_from_frame(&frame, "churned").expect("labels");
    let days = columns::days(&frame, "snapshot_date").expect("snapshot days");
    let keep: Vec<usize> = (0..labels.len()).filter(|&i| labels[i].is_some()).collect();
    let input = TrainInput {
        batch: rows.select(&keep),
        labels: keep.iter().map(|&i| labels[i].unwrap_or(0)).collect(),
        snapshots: Some(keep.iter().map(|&i| days[i].unwrap_or(0)).collect()),
        horizon_days: 90,
        churn_types: None,
    };
    let config = TrainConfig {
        families: vec![Family::Logistic, Family::Tree],
        ..TrainConfig::default()
    };
    let report = train(&input, &config).expect("train logistic and tree");
    let model = |family: Family| {
        report
            .results
            .iter()
            .find(|r| r.model.family() == family)
            .map(|r| r.model.clone())
            .expect("family trained")
    };
    Fixture {
        frame,
        rows,
        logistic: model(Family::Logistic),
        tree: model(Family::Tree),
    }
}

fn hot_paths(c: &mut Criterion) {
    let fx = fixture();
    let row = fx.rows.select(&[fx.rows.len() / 2]);
    let pre = &fx.logistic.preprocessor;
    let (x_row, _) = pre.transform(&row).expect("transform a row");

    c.bench_function("preprocess_row", |b| {
        b.iter(|| pre.transform(black_box(&row)).expect("transform"))
    });

    let ChurnModel::Logistic(logistic) = &fx.logistic.model else {
        panic!("the logistic result holds a logistic model");
    };
    c.bench_function("logistic_score_row", |b| {
        b.iter(|| logistic.probabilities(black_box(&x_row)))
    });

    let ChurnModel::Tree(tree) = &fx.tree.model else {
        panic!("the tree result holds a tree model");
    };
    let (x_tree, _) = fx
        .tree
        .preprocessor
        .transform(&row)
        .expect("transform a row");
    c.bench_function("tree_path_row", |b| {
        b.iter(|| tree.path(black_box(x_tree.row(0))))
    });
    c.bench_function("tree_score_row", |b| {
        b.iter(|| tree.probabilities(black_box(&x_tree)))
    });

    let health = HealthConfig::default();
    let inputs = HealthInputs {
        churn_probability: 0.12,
        tenure_days: Some(400.0),
        sessions_per_seat_30d: Some(6.5),
        usage_trend: Some(-0.2),
        features_adopted: Some(5.0),
        last_nps: Some(7.0),
        last_csat: None,
        payment_failures_90d: Some(1.0),
        late_payments_90d: Some(0.0),
        tickets_90d: Some(2.0),
        severe_tickets_90d: Some(0.0),
        open_tickets: Some(1.0),
        mapped: Vec::new(),
    };
    c.bench_function("health_index", |b| {
        b.iter(|| health_index(black_box(&inputs), &health))
    });

    let n = 1_000.min(fx.rows.len());
    let idx: Vec<usize> = (0..n).collect();
    let batch = fx.rows.select(&idx);
    let contexts = vec![CustomerContext::default(); n];
    let previous = HashMap::new();
    let scoring = ScoringConfig::default();
    let value = ValueConfig::default();
    let policy = InterventionPolicy::default();
    let settings = Settings {
        scoring: &scoring,
        health: &health,
        value: &value,
        policy: &policy,
        clv_thresholds: None,
        lifetime: None,
        input: None,
    };
    let mut group = c.benchmark_group("batch_1000");
    group.throughput(Throughput::Elements(n as u64));
    group.bench_function("preprocess", |b| {
        b.iter(|| pre.transform(black_box(&batch)).expect("transform"))
    });
    group.bench_function("predict_logistic", |b| {
        b.iter(|| fx.logistic.predict(black_box(&batch)).expect("predict"))
    });
    group.bench_function("predict_logistic_dense", |b| {
        b.iter(|| {
            fx.logistic
                .predict_dense(black_box(&batch))
                .expect("predict")
        })
    });
    let frame = fx.frame.slice(0, n);
    group.bench_function("predict_frame_logistic", |b| {
        b.iter(|| {
            fx.logistic
                .predict_frame(
                    black_box(&frame),
                    "customer_id",
                    &batch.numeric_names,
                    &batch.categorical_names,
                )
                .expect("predict")
        })
    });
    group.bench_function("score_customers_logistic", |b| {
        b.iter(|| {
            score_customers(
                &fx.logistic,
                90,
                black_box(&batch),
                &contexts,
                &previous,
                settings,
            )
            .expect("score")
        })
    });
    group.bench_function("score_customers_tree", |b| {
        b.iter(|| {
            score_customers(
                &fx.tree,
                90,
                black_box(&batch),
                &contexts,
                &previous,
                settings,
            )
            .expect("score")
        })
    });
    group.finish();
}

criterion_group!(benches, hot_paths);
criterion_main!(benches);
