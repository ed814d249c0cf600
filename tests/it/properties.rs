//! Property tests of the invariants: the health index stays in 0–100 and
//! falls as churn risk rises, normalised weights sum to 1, a save-rate
//! interval contains its estimate, a model predicts the same after a save
//! and load, and the score parser never panics.

use churnguard::health::{health_index, HealthConfig, HealthInputs, MissingPolicy, Weights};
use churnguard::interventions::{save_rate, ArmCounts};
use churnguard::models::{
    Batch, ChurnModel, FittedModel, LogisticModel, LogisticParams, Preprocessor, TreeModel,
    TreeParams,
};
use proptest::prelude::*;

fn opt(r: std::ops::Range<f64>) -> impl Strategy<Value = Option<f64>> {
    prop_oneof![Just(None), r.prop_map(Some)]
}

prop_compose! {
    fn inputs()(
        tenure in opt(0.0..2000.0),
        sps in opt(0.0..100.0),
        trend in opt(-5.0..5.0),
        adopted in opt(0.0..12.0),
        nps in opt(0.0..10.0),
        csat in opt(1.0..5.0),
        fails in opt(0.0..10.0),
        late in opt(0.0..10.0),
        tickets in opt(0.0..50.0),
        severe in opt(0.0..20.0),
        open in opt(0.0..20.0),
    ) -> HealthInputs {
        HealthInputs {
            churn_probability: 0.0,
            tenure_days: tenure,
            sessions_per_seat_30d: sps,
            usage_trend: trend,
            features_adopted: adopted,
            last_nps: nps,
            last_csat: csat,
            payment_failures_90d: fails,
            late_payments_90d: late,
            tickets_90d: tickets,
            severe_tickets_90d: severe,
            open_tickets: open,
            mapped: Vec::new(),
        }
    }
}

fn weights() -> impl Strategy<Value = Weights> {
    (
        0.0..5.0f64,
        0.0..5.0f64,
        0.0..5.0f64,
        0.0..5.0f64,
        0.0..5.0f64,
    )
        .prop_filter("one positive", |w| w.0 + w.1 + w.2 + w.3 + w.4 > 1e-6)
        .prop_map(|w| Weights {
            churn_risk: w.0,
            engagement: w.1,
            satisfaction: w.2,
            payment: w.3,
            support: w.4,
        })
}

proptest! {
    #[test]
    fn the_health_index_stays_in_range_and_falls_with_risk(
        x in inputs(),
        w in weights(),
        p1 in 0.0..1.0f64,
        p2 in 0.0..1.0f64,
        neutral in any::<bool>(),
    ) {
        let config = HealthConfig {
            weights: w,
            missing: if neutral { MissingPolicy::Neutral } else { MissingPolicy::Reweight },
            profiles: Vec::new(),
            ..Default::default()
        };
        let (lo, hi) = if p1 <= p2 { (p1, p2) } else { (p2, p1) };
        let a = health_index(&HealthInputs { churn_probability: lo, ..x.clone() }, &config);
        let b = health_index(&HealthInputs { churn_probability: hi, ..x }, &config);
        prop_assert!((0.0..=100.0).contains(&a.score) && (0.0..=100.0).contains(&b.score));
        prop_assert!(b.score <= a.score + 1e-9, "riskier customer healthier: {} > {}", b.score, a.score);
        let sum: f64 = a.components.iter().map(|c| c.contribution).sum();
        prop_assert!((sum - a.score).abs() < 1e-6);
    }

    #[test]
    fn normalised_weights_sum_to_one(w in weights()) {
        let n = w.normalised();
        prop_assert!((n.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        prop_assert!(n.iter().all(|v| *v >= 0.0));
    }

    #[test]
    fn a_save_rate_interval_contains_its_estimate(
        tn in 1usize..5000, tc in 0usize..5000, cn in 1usize..5000, cc in 0usize..5000,
    ) {
        let treated = ArmCounts { customers: tn, churned: tc.min(tn) };
        let control = ArmCounts { customers: cn, churned: cc.min(cn) };
        let s = save_rate(treated, control).unwrap();
        prop_assert!(s.absolute_ci.0 <= s.absolute + 1e-12 && s.absolute <= s.absolute_ci.1 + 1e-12,
            "{:?} outside {:?}", s.absolute, s.absolute_ci);
        prop_assert!(s.absolute_ci.0 >= -1.0 - 1e-12 && s.absolute_ci.1 <= 1.0 + 1e-12);
        if let (Some(r), Some((a, b))) = (s.relative, s.relative_ci) {
            prop_assert!(a <= r + 1e-9 && r <= b + 1e-9, "{r} outside {a}..{b}");
        }
    }
}

fn batch(rows: &[(f64, f64, u8, bool)]) -> (Batch, Vec<u8>) {
    let n = rows.len();
    let mut x = ndarray::Array2::zeros((n, 2));
    let mut cat = Vec::with_capacity(n);
    let mut y = Vec::with_capacity(n);
    for (i, (a, b, k, churn)) in rows.iter().enumerate() {
        x[[i, 0]] = if *a < 0.05 { f64::NAN } else { *a };
        x[[i, 1]] = *b;
        cat.push(Some(
            ["monthly", "annual", "two_year"][*k as usize % 3].to_string(),
        ));
        y.push(u8::from(*churn));
    }
    (
        Batch {
            ids: (0..n).map(|i| i.to_string()).collect(),
            numeric_names: vec!["a".into(), "b".into()].into(),
            numeric: x,
            categorical_names: vec!["contract".into()].into(),
            categorical: vec![cat],
        },
        y,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn predictions_survive_a_save_and_load(
        rows in proptest::collection::vec((0.0..10.0f64, -3.0..3.0f64, 0u8..3, any::<bool>()), 40..120),
    ) {
        let (b, y) = batch(&rows);
        prop_assume!(y.contains(&1) && y.contains(&0));
        let pre = Preprocessor::fit(&b).unwrap();
        let (x, _) = pre.transform(&b).unwrap();
        let models = [
            ChurnModel::Logistic(LogisticModel::fit(&x, &y, &LogisticParams::default()).unwrap()),
            ChurnModel::Tree(TreeModel::fit(&x, &y, &TreeParams { min_leaf: 5, min_split: 10, ..Default::default() }).unwrap()),
        ];
        for model in models {
            let fitted = FittedModel {
                preprocessor: pre.clone(),
                model,
                calibrator: churnguard::eval::calibration::Calibrator::Identity,
                churn_type: None,
            };
            let before = fitted.predict(&b).unwrap();
            let json = serde_json::to_vec(&fitted).unwrap();
            let loaded: FittedModel = serde_json::from_slice(&json).unwrap();
            let after = loaded.predict(&b).unwrap();
            prop_assert_eq!(before, after);
        }
    }
}

proptest! {
    #[test]
    fn the_score_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let schema = churnguard::serve::state::RecordSchema {
            id: "customer_id".into(),
            numeric: vec!["tenure_days".into()].into(),
            categorical: vec!["contract".into()].into(),
            index: [
                ("customer_id".to_string(), churnguard::serve::state::Slot::Id),
                ("tenure_days".to_string(), churnguard::serve::state::Slot::Numeric(0)),
                ("contract".to_string(), churnguard::serve::state::Slot::Categorical(0)),
            ]
            .into_iter()
            .collect(),
            mrr_input: None,
            segment_input: None,
        };
        let _ = churnguard::serve::score::parse(&bytes, &schema, 10);
    }
}
