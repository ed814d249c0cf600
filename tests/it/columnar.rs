//! The fast scoring paths (no one-hot matrix, column-by-column frames,
//! rayon over row chunks) against the general path through
//! `Preprocessor::transform`, for every family, on generated data with
//! missing values, unseen categories and absurd numbers mixed in.

use crate::support::train;
use churnguard::models::{Batch, Family, FittedModel};
use polars::prelude::*;

use crate::models::{config, generated_input};

/// The generated rows six times over (more rows than one parallel chunk),
/// with missing values, unseen categories and extreme numbers mixed in.
fn awkward_batch(base: &Batch) -> Batch {
    let n = base.len();
    let idx: Vec<usize> = (0..6 * n).map(|i| i % n).collect();
    let mut b = base.select(&idx);
    for (i, id) in b.ids.iter_mut().enumerate() {
        *id = format!("r{i}");
    }
    let cols = b.numeric.ncols();
    for i in (0..b.len()).step_by(7) {
        let j = i % cols;
        b.numeric[[i, j]] = match i % 4 {
            0 => f64::NAN,
            1 => 1e300,
            2 => -1e300,
            _ => f64::INFINITY,
        };
    }
    for (c, values) in b.categorical.iter_mut().enumerate() {
        for i in (c..values.len()).step_by(11) {
            values[i] = match i % 3 {
                0 => None,
                1 => Some("never-seen".into()),
                _ => Some("<unknown>".into()),
            };
        }
    }
    b
}

/// A frame with the batch's columns, in two chunks, nulls for missing values.
fn frame_of(b: &Batch) -> DataFrame {
    let mut columns = vec![Column::new("customer_id".into(), b.ids.clone())];
    for (j, name) in b.numeric_names.iter().enumerate() {
        let v: Vec<Option<f64>> = b
            .numeric
            .column(j)
            .iter()
            // NaN is a missing value, written as a null; ±∞ and huge values stay.
            .map(|v| (!v.is_nan()).then_some(*v))
            .collect();
        columns.push(Column::new(name.as_str().into(), v));
    }
    for (name, values) in b.categorical_names.iter().zip(&b.categorical) {
        columns.push(Column::new(name.as_str().into(), values.clone()));
    }
    let df = DataFrame::new(b.len(), columns).unwrap();
    let half = (b.len() / 2) as i64;
    let mut top = df.slice(0, half as usize);
    top.vstack_mut(&df.slice(half, b.len() - half as usize))
        .unwrap();
    top
}

fn close(a: &[f64], b: &[f64], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= 1e-12 || (x.is_nan() && y.is_nan()),
            "{what}: row {i}: {x} vs {y}"
        );
    }
}

fn families() -> Vec<Family> {
    if crate::support::neural().is_some() {
        vec![Family::Logistic, Family::Tree, Family::Gbdt, Family::Neural]
    } else {
        vec![Family::Logistic, Family::Tree, Family::Gbdt]
    }
}

#[test]
fn fast_paths_equal_the_one_hot_path_for_every_family() {
    let input = generated_input();
    let mut cfg = config(&families());
    cfg.neural.max_epochs = 3;
    let report = train(&input, &cfg).unwrap();
    let batch = awkward_batch(&input.batch);
    assert!(batch.len() > 20_000, "{} rows", batch.len());
    let frame = frame_of(&batch);
    for r in &report.results {
        let model: &FittedModel = &r.model;
        let family = model.family();
        let dense = model.predict_dense(&batch).unwrap();
        let fast = model.predict(&batch).unwrap();
        close(&fast, &dense, &format!("{family}: predict"));
        if family == Family::Logistic {
            assert_eq!(fast, dense, "logistic: bit for bit");
        }
        let from_frame = model
            .predict_frame(
                &frame,
                "customer_id",
                &batch.numeric_names,
                &batch.categorical_names,
            )
            .unwrap();
        close(&from_frame, &dense, &format!("{family}: predict_frame"));
        if family == Family::Gbdt {
            // Codes block by block and QuickScorer against the whole matrix
            // and the tree walk.
            assert_eq!(from_frame, dense, "gbdt: bit for bit");
        }
        let via_batch = Batch::from_frame(
            &frame,
            "customer_id",
            &batch.numeric_names,
            &batch.categorical_names,
        )
        .unwrap();
        assert_eq!(
            model.predict_dense(&via_batch).unwrap(),
            dense,
            "{family}: the frame holds the batch"
        );

        let a = model.score_batch(&batch, 3).unwrap();
        let b = model.score_batch_dense(&batch, 3).unwrap();
        close(
            &a.probabilities,
            &b.probabilities,
            &format!("{family}: score"),
        );
        match (&a.p_involuntary, &b.p_involuntary) {
            (Some(x), Some(y)) => close(x, y, &format!("{family}: p_involuntary")),
            (None, None) => {}
            _ => panic!("{family}: churn type present on one path only"),
        }
        assert_eq!(a.unknown, b.unknown, "{family}: unknown categories");
        assert!(a.unknown.iter().any(|u| !u.is_empty()));
        for (i, (x, y)) in a.reasons.iter().zip(&b.reasons).enumerate() {
            assert_eq!(x.len(), y.len(), "{family}: row {i}: {x:?} vs {y:?}");
            for (p, q) in x.iter().zip(y) {
                assert_eq!(
                    (&p.feature, &p.value),
                    (&q.feature, &q.value),
                    "{family} row {i}"
                );
                assert!((p.weight - q.weight).abs() <= 1e-12, "{family} row {i}");
            }
        }
    }
    assert!(report
        .results
        .iter()
        .any(|r| r.model.family() == Family::Logistic && r.model.churn_type.is_some()));
}

#[test]
fn predict_frame_reports_bad_columns_like_the_batch_reader() {
    let input = generated_input();
    let report = train(&input, &config(&[Family::Logistic])).unwrap();
    let model = &report.results[0].model;
    let b = input.batch.select(&[0, 1, 2]);
    let frame = frame_of(&b);
    let mut numeric = b.numeric_names.to_vec();
    numeric[0] = "nope".into();
    let err = model
        .predict_frame(&frame, "customer_id", &numeric, &b.categorical_names)
        .unwrap_err()
        .to_string();
    let want = Batch::from_frame(&frame, "customer_id", &numeric, &b.categorical_names)
        .unwrap_err()
        .to_string();
    assert_eq!(err, want);
    let mut swapped = b.numeric_names.to_vec();
    swapped.swap(0, 1);
    let err = model
        .predict_frame(&frame, "customer_id", &swapped, &b.categorical_names)
        .unwrap_err()
        .to_string();
    assert!(err.contains("schema mismatch"), "{err}");
    let text = frame
        .clone()
        .with_column(Column::new(
            b.numeric_names[0].as_str().into(),
            vec!["x", "y", "z"],
        ))
        .unwrap()
        .clone();
    let err = model
        .predict_frame(&text, "customer_id", &b.numeric_names, &b.categorical_names)
        .unwrap_err()
        .to_string();
    assert!(err.contains("expected a number"), "{err}");
}
