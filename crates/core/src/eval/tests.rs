//! Unit tests of the metrics and calibrators. Expected values marked
//! "sklearn" were produced by scikit-learn 1.9.1 (numpy 2.4.6, scipy 1.17.1)
//! with the Python quoted next to them; the rest are hand-computed or are
//! properties checked on seeded random data with many ties.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::calibration::Calibrator;
use super::*;

const TOL: f64 = 1e-12;

#[track_caller]
fn assert_close(actual: f64, expected: f64, tol: f64, what: &str) {
    assert!(
        (actual - expected).abs() <= tol || (actual.is_infinite() && actual == expected),
        "{what}: got {actual}, expected {expected}"
    );
}

#[track_caller]
fn assert_all_close(actual: &[f64], expected: &[f64], tol: f64, what: &str) {
    assert_eq!(
        actual.len(),
        expected.len(),
        "{what}: lengths differ: {actual:?} vs {expected:?}"
    );
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert_close(*a, *e, tol, &format!("{what}[{i}]"));
    }
}

/// A small case with everything sklearn says about it.
struct SkCase {
    name: &'static str,
    y: &'static [u8],
    p: &'static [f64],
    roc_auc: f64,
    average_precision: f64,
    log_loss: f64,
    brier: f64,
    roc_fpr: &'static [f64],
    roc_tpr: &'static [f64],
    roc_thresholds: &'static [f64],
    pr_precision: &'static [f64],
    pr_recall: &'static [f64],
    /// sklearn's thresholds; our last point adds `+∞`.
    pr_thresholds: &'static [f64],
    /// `[tn, fp, fn, tp]` at threshold 0.4.
    confusion_at_04: [usize; 4],
    /// precision, recall, f1, accuracy at threshold 0.4.
    scores_at_04: [f64; 4],
}

// sklearn, for each case (Y, P below):
//   import numpy as np
//   from sklearn.metrics import *
//   y, p = np.array(Y), np.array(P)
//   roc_auc_score(y, p); average_precision_score(y, p)
//   log_loss(y, p); brier_score_loss(y, p)
//   roc_curve(y, p, drop_intermediate=False)  # fpr, tpr, thresholds
//   precision_recall_curve(y, p)              # precision, recall, thresholds
//   yp = (p >= 0.4).astype(int)
//   confusion_matrix(y, yp).ravel()           # tn, fp, fn, tp
//   precision_score(y, yp, zero_division=0); recall_score(y, yp, zero_division=0)
//   f1_score(y, yp, zero_division=0); accuracy_score(y, yp)
const INF: f64 = f64::INFINITY;
const SK_CASES: &[SkCase] = &[
    SkCase {
        name: "sklearn docs example",
        y: &[0, 0, 1, 1],
        p: &[0.1, 0.4, 0.35, 0.8],
        roc_auc: 0.75,
        average_precision: 0.8333333333333333,
        log_loss: 0.47228795380917615,
        brier: 0.15812500000000002,
        roc_fpr: &[0.0, 0.0, 0.5, 0.5, 1.0],
        roc_tpr: &[0.0, 0.5, 0.5, 1.0, 1.0],
        roc_thresholds: &[INF, 0.8, 0.4, 0.35, 0.1],
        pr_precision: &[0.5, 0.6666666666666666, 0.5, 1.0, 1.0],
        pr_recall: &[1.0, 1.0, 0.5, 0.5, 0.0],
        pr_thresholds: &[0.1, 0.35, 0.4, 0.8],
        confusion_at_04: [1, 1, 1, 1],
        scores_at_04: [0.5, 0.5, 0.5, 0.5],
    },
    SkCase {
        name: "ties",
        y: &[0, 0, 1, 1, 0, 1, 0, 1, 1, 0],
        p: &[0.1, 0.4, 0.35, 0.8, 0.4, 0.4, 0.7, 0.7, 0.2, 0.05],
        roc_auc: 0.66,
        average_precision: 0.6726190476190477,
        log_loss: 0.653764712596317,
        brier: 0.23750000000000004,
        roc_fpr: &[0.0, 0.0, 0.2, 0.6, 0.6, 0.6, 0.8, 1.0],
        roc_tpr: &[0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.0, 1.0],
        roc_thresholds: &[INF, 0.8, 0.7, 0.4, 0.35, 0.2, 0.1, 0.05],
        pr_precision: &[
            0.5,
            0.5555555555555556,
            0.625,
            0.5714285714285714,
            0.5,
            0.6666666666666666,
            1.0,
            1.0,
        ],
        pr_recall: &[1.0, 1.0, 1.0, 0.8, 0.6, 0.4, 0.2, 0.0],
        pr_thresholds: &[0.05, 0.1, 0.2, 0.35, 0.4, 0.7, 0.8],
        confusion_at_04: [2, 3, 2, 3],
        scores_at_04: [0.5, 0.6, 0.5454545454545454, 0.5],
    },
    SkCase {
        name: "all scores equal",
        y: &[0, 1, 0, 1, 1],
        p: &[0.3, 0.3, 0.3, 0.3, 0.3],
        roc_auc: 0.5,
        average_precision: 0.6,
        log_loss: 0.8650536601710547,
        brier: 0.32999999999999996,
        roc_fpr: &[0.0, 1.0],
        roc_tpr: &[0.0, 1.0],
        roc_thresholds: &[INF, 0.3],
        pr_precision: &[0.6, 1.0],
        pr_recall: &[1.0, 0.0],
        pr_thresholds: &[0.3],
        confusion_at_04: [2, 0, 3, 0],
        scores_at_04: [0.0, 0.0, 0.0, 0.4],
    },
    SkCase {
        // Confident predictions of exactly 0 and 1 that are right: the clip
        // eps (1e-15 here, 2.2e-16 in sklearn 1.9) changes log loss < 1e-15.
        name: "probabilities 0 and 1, ties at 0.5",
        y: &[0, 1, 1, 0, 1, 0],
        p: &[0.0, 1.0, 0.7, 0.2, 0.5, 0.5],
        roc_auc: 0.9444444444444444,
        average_precision: 0.9166666666666665,
        log_loss: 0.3276854760621389,
        brier: 0.105,
        roc_fpr: &[0.0, 0.0, 0.0, 0.3333333333333333, 0.6666666666666666, 1.0],
        roc_tpr: &[0.0, 0.3333333333333333, 0.6666666666666666, 1.0, 1.0, 1.0],
        roc_thresholds: &[INF, 1.0, 0.7, 0.5, 0.2, 0.0],
        pr_precision: &[0.5, 0.6, 0.75, 1.0, 1.0, 1.0],
        pr_recall: &[1.0, 1.0, 1.0, 0.6666666666666666, 0.3333333333333333, 0.0],
        pr_thresholds: &[0.0, 0.2, 0.5, 0.7, 1.0],
        confusion_at_04: [2, 1, 0, 3],
        scores_at_04: [0.75, 1.0, 0.8571428571428571, 0.8333333333333334],
    },
];

#[test]
fn scalar_metrics_match_sklearn() {
    for c in SK_CASES {
        let name = c.name;
        assert_close(
            roc_auc(c.y, c.p).unwrap(),
            c.roc_auc,
            TOL,
            &format!("{name}: roc_auc"),
        );
        assert_close(
            average_precision(c.y, c.p).unwrap(),
            c.average_precision,
            TOL,
            &format!("{name}: average_precision"),
        );
        assert_close(
            log_loss(c.y, c.p).unwrap(),
            c.log_loss,
            TOL,
            &format!("{name}: log_loss"),
        );
        assert_close(
            brier(c.y, c.p).unwrap(),
            c.brier,
            TOL,
            &format!("{name}: brier"),
        );
    }
}

#[test]
fn curves_match_sklearn() {
    for c in SK_CASES {
        let name = c.name;
        let roc = roc_curve(c.y, c.p);
        let field = |f: fn(&RocPoint) -> f64| roc.iter().map(f).collect::<Vec<_>>();
        assert_all_close(&field(|r| r.fpr), c.roc_fpr, TOL, &format!("{name}: fpr"));
        assert_all_close(&field(|r| r.tpr), c.roc_tpr, TOL, &format!("{name}: tpr"));
        assert_all_close(
            &field(|r| r.threshold),
            c.roc_thresholds,
            0.0,
            &format!("{name}: roc thresholds"),
        );

        let pr = pr_curve(c.y, c.p);
        let field = |f: fn(&PrPoint) -> f64| pr.iter().map(f).collect::<Vec<_>>();
        assert_all_close(
            &field(|r| r.precision),
            c.pr_precision,
            TOL,
            &format!("{name}: precision"),
        );
        assert_all_close(
            &field(|r| r.recall),
            c.pr_recall,
            TOL,
            &format!("{name}: recall"),
        );
        let mut thresholds = c.pr_thresholds.to_vec();
        thresholds.push(INF);
        assert_all_close(
            &field(|r| r.threshold),
            &thresholds,
            0.0,
            &format!("{name}: pr thresholds"),
        );
    }
}

#[test]
fn log_loss_clips_at_1e_15() {
    // The one place the clip matters: a confident wrong 0 or 1 (sklearn 1.9,
    // clipping at 2.2e-16, would give 36.04 instead of 34.54).
    let worst = -(1e-15f64).ln();
    assert_close(log_loss(&[1], &[0.0]).unwrap(), worst, TOL, "wrong 0");
    assert_close(log_loss(&[0], &[1.0]).unwrap(), worst, 1e-9, "wrong 1");
    assert_close(log_loss(&[0, 1], &[0.0, 1.0]).unwrap(), 0.0, 1e-14, "right");
}

#[test]
fn confusion_matches_sklearn() {
    for c in SK_CASES {
        let m = confusion(c.y, c.p, 0.4).unwrap();
        assert_eq!([m.tn, m.fp, m.fn_, m.tp], c.confusion_at_04, "{}", c.name);
        let got = [m.precision(), m.recall(), m.f1(), m.accuracy()];
        assert_all_close(&got, &c.scores_at_04, TOL, c.name);
    }
}

/// 300 rows with 41 distinct scores, reproducible in numpy:
/// `i = np.arange(300); k = (i*37 + 11) % 41; p = k / 40.0;`
/// `y = (((i*53 + 7) % 100) < (k*2 + 10)).astype(int)` (150 churners).
fn generated() -> (Vec<u8>, Vec<f64>, Vec<usize>) {
    let k: Vec<usize> = (0..300).map(|i| (i * 37 + 11) % 41).collect();
    let p = k.iter().map(|&k| k as f64 / 40.0).collect();
    let y = (0..300)
        .map(|i| u8::from((i * 53 + 7) % 100 < k[i] * 2 + 10))
        .collect();
    (y, p, k)
}

#[test]
fn generated_case_matches_sklearn() {
    let (y, p, _) = generated();
    assert_eq!(y.iter().filter(|v| **v == 1).count(), 150);
    // sklearn: roc_auc_score(y, p), average_precision_score(y, p),
    // log_loss(y, p), brier_score_loss(y, p)
    assert_close(roc_auc(&y, &p).unwrap(), 0.7847777777777778, TOL, "roc_auc");
    assert_close(
        average_precision(&y, &p).unwrap(),
        0.7799575811661831,
        TOL,
        "ap",
    );
    assert_close(
        log_loss(&y, &p).unwrap(),
        0.5645239907095365,
        TOL,
        "log_loss",
    );
    assert_close(brier(&y, &p).unwrap(), 0.19158124999999998, TOL, "brier");

    // sklearn: prob_true, prob_pred = calibration_curve(y, p, n_bins=7)
    // (no p lies on an inner edge k/7, where the two conventions differ)
    let prob_true = [
        0.1590909090909091,
        0.24444444444444444,
        0.38636363636363635,
        0.5,
        0.6136363636363636,
        0.7441860465116279,
        0.8636363636363636,
    ];
    let prob_pred = [
        0.06363636363636363,
        0.2127777777777778,
        0.36193181818181824,
        0.5,
        0.6380681818181817,
        0.7877906976744188,
        0.9380681818181817,
    ];
    let bins: Vec<ReliabilityBin> = reliability(&y, &p, 7)
        .into_iter()
        .filter(|b| b.count > 0)
        .collect();
    let observed: Vec<f64> = bins.iter().map(|b| b.observed_rate).collect();
    let predicted: Vec<f64> = bins.iter().map(|b| b.mean_predicted).collect();
    assert_all_close(&observed, &prob_true, TOL, "observed_rate");
    assert_all_close(&predicted, &prob_pred, TOL, "mean_predicted");
}

#[test]
fn isotonic_matches_sklearn() {
    // sklearn:
    //   from sklearn.isotonic import IsotonicRegression
    //   x = [0.1, 0.2, 0.2, 0.3, 0.4, 0.5, 0.5, 0.6, 0.7, 0.9]
    //   y = [0, 1, 0, 0, 1, 0, 1, 1, 0, 1]
    //   ir = IsotonicRegression(out_of_bounds='clip').fit(x, y)
    //   ir.X_thresholds_, ir.y_thresholds_
    //   ir.predict([0.0, 0.1, 0.15, 0.2, 0.25, 0.3, 0.45, 0.55, 0.65, 0.8, 0.9, 1.0])
    let x = [0.1, 0.2, 0.2, 0.3, 0.4, 0.5, 0.5, 0.6, 0.7, 0.9];
    let y = [0, 1, 0, 0, 1, 0, 1, 1, 0, 1];
    let cal = Calibrator::fit_isotonic(&y, &x).unwrap();
    let Calibrator::Isotonic { thresholds, values } = &cal else {
        panic!("not isotonic: {cal:?}");
    };
    assert_all_close(
        thresholds,
        &[0.1, 0.2, 0.3, 0.4, 0.7, 0.9],
        1e-6,
        "thresholds",
    );
    assert_all_close(
        values,
        &[0.0, 0.3333333333333333, 0.3333333333333333, 0.6, 0.6, 1.0],
        1e-6,
        "values",
    );
    let grid = [
        0.0, 0.1, 0.15, 0.2, 0.25, 0.3, 0.45, 0.55, 0.65, 0.8, 0.9, 1.0,
    ];
    let expected = [
        0.0,
        0.0,
        0.1666666666666666,
        0.3333333333333333,
        0.3333333333333333,
        0.3333333333333333,
        0.6,
        0.6,
        0.6,
        0.8,
        1.0,
        1.0,
    ];
    let got: Vec<f64> = grid.iter().map(|&g| cal.apply(g)).collect();
    assert_all_close(&got, &expected, 1e-6, "predict");

    // sklearn, on generated() (see there):
    //   ir = IsotonicRegression(out_of_bounds='clip').fit(p, y)
    //   len(ir.X_thresholds_)   # 26
    //   ir.predict([0.0, 0.0125, 0.3, 0.33, 0.5, 0.61, 0.77, 0.9, 0.99, 1.0])
    let (y, p, _) = generated();
    let cal = Calibrator::fit_isotonic(&y, &p).unwrap();
    let Calibrator::Isotonic { thresholds, .. } = &cal else {
        panic!("not isotonic: {cal:?}");
    };
    assert_eq!(thresholds.len(), 26);
    let grid = [0.0, 0.0125, 0.3, 0.33, 0.5, 0.61, 0.77, 0.9, 0.99, 1.0];
    let expected = [
        0.0,
        0.0,
        0.36666666666666664,
        0.36666666666666664,
        0.4883720930232558,
        0.5758620689655173,
        0.7142857142857143,
        0.7777777777777778,
        1.0,
        1.0,
    ];
    let got: Vec<f64> = grid.iter().map(|&g| cal.apply(g)).collect();
    assert_all_close(&got, &expected, 1e-6, "predict generated");
}

#[test]
fn platt_matches_sklearn() {
    // Scores strictly inside (0, 1), so that logit clipping plays no part.
    // sklearn (private helper behind CalibratedClassifierCV(method="sigmoid"),
    // which fits p = 1 / (1 + exp(A f + B)), so a = -A, b = -B):
    //   from sklearn.calibration import _sigmoid_calibration
    //   pq = (k + 1) / 42.0; f = np.log(pq / (1 - pq))   # k, y from generated()
    //   A, B = _sigmoid_calibration(f, y)
    //   -A, -B   # 0.7883664620318048, 0.005918414220957086
    // A Newton solve in numpy to 1e-15 gives 0.7883664620078784,
    // 0.005918414223525378 (sklearn's L-BFGS stops at gtol=1e-6).
    let (y, _, k) = generated();
    let p: Vec<f64> = k.iter().map(|&k| (k as f64 + 1.0) / 42.0).collect();
    let Calibrator::Platt { a, b } = Calibrator::fit_platt(&y, &p).unwrap() else {
        panic!("not platt");
    };
    assert_close(a, 0.7883664620318048, 1e-6, "a");
    assert_close(b, 0.005918414220957086, 1e-6, "b");
    assert_close(a, 0.7883664620078784, 1e-9, "a (newton)");
    assert_close(b, 0.005918414223525378, 1e-9, "b (newton)");
}

#[test]
fn single_class_follows_sklearn_or_is_none() {
    let ones = [1u8, 1, 1];
    let zeros = [0u8, 0, 0];
    let p = [0.2, 0.5, 0.5];
    assert_eq!(roc_auc(&ones, &p), None);
    assert_eq!(roc_auc(&zeros, &p), None);
    assert!(roc_curve(&ones, &p).is_empty());
    // sklearn: average_precision_score([1, 1, 1], [0.2, 0.5, 0.5]) == 1.0
    assert_eq!(average_precision(&ones, &p), Some(1.0));
    assert_eq!(average_precision(&zeros, &p), None);
    assert!(pr_curve(&zeros, &p).is_empty());
    assert_eq!(pr_curve(&ones, &p).len(), 3);
    let m = evaluate(&zeros, &p).unwrap();
    assert_eq!(
        (m.roc_auc, m.pr_auc, m.positives, m.lift_10, m.capture_10),
        (None, None, 0, 0.0, 0.0)
    );
    assert_eq!(
        Calibrator::fit_platt(&zeros, &p),
        Err(EvalError::SingleClass)
    );
    assert_eq!(
        Calibrator::fit_isotonic(&ones, &p),
        Err(EvalError::SingleClass)
    );
}

#[test]
fn reliability_bins_are_half_open_with_the_last_closed() {
    let y = [0, 0, 1, 1, 1, 0, 1];
    let p = [0.0, 0.1, 0.5, 0.95, 1.0, 0.3, 0.7];
    let bins = reliability(&y, &p, 10);
    assert_eq!(bins.len(), 10, "empty bins are kept");
    let counts: Vec<usize> = bins.iter().map(|b| b.count).collect();
    assert_eq!(counts, [1, 1, 0, 1, 0, 1, 0, 1, 0, 2]);
    assert_eq!((bins[3].lower, bins[3].upper), (0.3, 0.4));
    assert_eq!((bins[9].lower, bins[9].upper), (0.9, 1.0));
    assert_eq!((bins[2].mean_predicted, bins[2].observed_rate), (0.0, 0.0));
    assert_close(bins[9].mean_predicted, 0.975, TOL, "last bin mean");
    assert_eq!(bins[9].observed_rate, 1.0);
    // ECE by hand: |0-0| + |0-0.1| + |1-0.5| + |0-0.3| + |1-0.7| + 2·|1-0.975|, over 7.
    let ece = expected_calibration_error(&y, &p, 10).unwrap();
    assert_close(ece, (0.1 + 0.5 + 0.3 + 0.3 + 0.05) / 7.0, TOL, "ece");
    // Every bin count of 3 uniform bins, and p·n rounding near the edges.
    let p: Vec<f64> = (0..=30).map(|i| f64::from(i) / 30.0).collect();
    let y = vec![0u8; p.len()];
    let counts: Vec<usize> = reliability(&y, &p, 3).iter().map(|b| b.count).collect();
    assert_eq!(counts, [10, 10, 11]);
    // 0.8999999999999999 · 10 rounds to 9.0, yet the value is below 0.9.
    let bins = reliability(&[0, 1], &[0.8999999999999999, 0.9], 10);
    assert_eq!((bins[8].count, bins[9].count), (1, 1));
}

#[test]
fn lift_breaks_ties_by_index_and_counts_rows_with_ceil() {
    let y = [0, 1, 1, 0];
    let p = [0.5, 0.5, 0.5, 0.1];
    let top = lift_at(&y, &p, 0.25).unwrap();
    assert_eq!(
        (top.targeted, top.lift, top.capture_rate),
        (1, 0.0, 0.0),
        "row 0 comes first"
    );
    let half = lift_at(&y, &p, 0.5).unwrap();
    assert_eq!((half.targeted, half.lift, half.capture_rate), (2, 1.0, 0.5));
    let three = lift_at(&y, &p, 0.6).unwrap();
    assert_eq!(three.targeted, 3, "ceil(2.4)");
    assert_close(three.lift, (2.0 / 3.0) / 0.5, TOL, "lift of 3");

    let y30: Vec<u8> = (0..30).map(|i| u8::from(i % 3 == 0)).collect();
    let p30: Vec<f64> = (0..30).map(|i| 1.0 - f64::from(i) / 30.0).collect();
    assert_eq!(
        lift_at(&y30, &p30, 0.1).unwrap().targeted,
        3,
        "0.1 · 30 is 3, not 4"
    );
    assert_eq!(lift_at(&y30, &p30, 0.7).unwrap().targeted, 21);
    assert_eq!(lift_at(&y30, &p30, 0.01).unwrap().targeted, 1);
    // 0.28 · 25 is 7.000000000000001 in floating point: still 7 rows.
    assert_eq!(lift_at(&y30[..25], &p30[..25], 0.28).unwrap().targeted, 7);

    let curve = lift_curve(&y30, &p30, 20);
    assert_eq!(curve.len(), 20);
    assert_eq!(curve[0].targeted, 2, "ceil(30 / 20)");
    assert_close(curve[0].fraction, 0.05, TOL, "first fraction");
    let last = curve.last().unwrap();
    assert_eq!(
        (last.fraction, last.targeted, last.lift, last.capture_rate),
        (1.0, 30, 1.0, 1.0)
    );
    // Rows 0, 3, 6, … churn and score highest first: the top 10% is 1 of 3.
    let m = evaluate(&y30, &p30).unwrap();
    assert_close(m.lift_10, (1.0 / 3.0) / (10.0 / 30.0), TOL, "lift_10");
    assert_close(m.capture_10, 0.1, TOL, "capture_10");
}

#[test]
fn confusion_ratios_are_zero_when_undefined() {
    let c = confusion(&[0, 0], &[0.1, 0.2], 0.5).unwrap();
    assert_eq!(
        c,
        Confusion {
            tp: 0,
            fp: 0,
            tn: 2,
            fn_: 0
        }
    );
    assert_eq!(
        (c.precision(), c.recall(), c.f1(), c.accuracy()),
        (0.0, 0.0, 0.0, 1.0)
    );
    let all = confusion(&[0, 1], &[0.1, 0.2], f64::NEG_INFINITY).unwrap();
    assert_eq!((all.tp, all.fp), (1, 1));
    let empty = Confusion {
        tp: 0,
        fp: 0,
        tn: 0,
        fn_: 0,
    };
    assert_eq!(empty.accuracy(), 0.0);
}

#[test]
fn threshold_maximises_realised_profit() {
    // Profits: 100·0.5−10 = 40, −10, 50·0.5−10 = 15, −10, −10. Running:
    // 40, 30, 45, 35, 25: best at 0.7 with 3 customers.
    let y = [1, 0, 1, 0, 0];
    let p = [0.9, 0.8, 0.7, 0.3, 0.1];
    let v = [100.0, 100.0, 50.0, 100.0, 100.0];
    let c = choose_threshold(&y, &p, &v, 10.0, 0.5).unwrap();
    assert_eq!(c.threshold, 0.7);
    assert_eq!(c.customers_targeted, 3);
    assert_close(c.expected_profit, 45.0, TOL, "profit");
    assert_close(c.profit_if_all, 25.0, TOL, "profit if all");
    assert_eq!(c.profit_if_none, 0.0);

    // Equal profit at 0.9 (10) and 0.4 (10 − 5 + 5): the higher threshold wins.
    let c = choose_threshold(&[1, 0, 1], &[0.9, 0.5, 0.4], &[15.0, 0.0, 10.0], 5.0, 1.0).unwrap();
    assert_eq!((c.threshold, c.customers_targeted), (0.9, 1));

    // Tied scores are targeted together; nothing pays: the top group is chosen
    // and its loss is reported against profit_if_none.
    let c = choose_threshold(&[0, 0, 0], &[0.6, 0.6, 0.2], &[1.0; 3], 2.0, 0.5).unwrap();
    assert_eq!((c.threshold, c.customers_targeted), (0.6, 2));
    assert_close(c.expected_profit, -4.0, TOL, "loss");
    assert!(c.expected_profit < c.profit_if_none);
}

/// Equal up to float parsing: serde_json reads a float back to within one
/// ulp unless its `float_roundtrip` feature is on.
fn json_close(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => (x - y).abs() <= 1e-15 * x.abs().max(1.0),
            _ => false,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_close(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_close(v, w)))
        }
        _ => a == b,
    }
}

/// Writes `value` to JSON and reads it back, checking nothing is lost.
#[track_caller]
fn round_trip<T: Serialize + serde::de::DeserializeOwned>(value: &T) -> (String, T) {
    let json = serde_json::to_string(value).unwrap();
    let back: T = serde_json::from_str(&json).unwrap();
    let (a, b) = (
        serde_json::to_value(value).unwrap(),
        serde_json::to_value(&back).unwrap(),
    );
    assert!(json_close(&a, &b), "{a} became {b}");
    (json, back)
}

#[test]
fn results_round_trip_through_json() {
    let (y, p, _) = generated();
    round_trip(&evaluate(&y, &p).unwrap());
    let (json, _) = round_trip(&evaluate(&[0, 0], &[0.2, 0.3]).unwrap());
    assert!(json.contains("\"roc_auc\":null"), "{json}");

    // +∞ thresholds are written as null and read back as +∞.
    let (_, roc) = round_trip(&roc_curve(&y, &p));
    assert_eq!(roc[0].threshold, f64::INFINITY);
    let (_, pr) = round_trip(&pr_curve(&y, &p));
    assert_eq!(pr.last().map(|l| l.threshold), Some(f64::INFINITY));

    let (json, _) = round_trip(&confusion(&y, &p, 0.5).unwrap());
    assert!(json.contains("\"fn\":"), "{json}");
    round_trip(&reliability(&y, &p, 10));
    round_trip(&lift_curve(&y, &p, 10));
    round_trip(&choose_threshold(&y, &p, &vec![10.0; y.len()], 1.0, 0.3).unwrap());
    for cal in [
        Calibrator::Identity,
        Calibrator::fit_platt(&y, &p).unwrap(),
        Calibrator::fit_isotonic(&y, &p).unwrap(),
    ] {
        let (json, back) = round_trip(&cal);
        assert!(json.starts_with("{\"method\":"), "{json}");
        assert_eq!(std::mem::discriminant(&back), std::mem::discriminant(&cal));
    }
}

// ---- properties on seeded random data ----

/// Scores on a coarse grid (`levels + 1` values, so many ties) and labels
/// drawn with churn probability rising with the score.
fn random_case(rng: &mut ChaCha8Rng, n: usize, levels: u32) -> (Vec<u8>, Vec<f64>) {
    let p: Vec<f64> = (0..n)
        .map(|_| f64::from(rng.gen_range(0..=levels)) / f64::from(levels))
        .collect();
    let y = p
        .iter()
        .map(|&p| u8::from(rng.gen_bool(0.2 + 0.6 * p)))
        .collect();
    (y, p)
}

/// O(n²) AUC over all (churner, non-churner) pairs, ties counting 1/2.
fn naive_auc(y: &[u8], p: &[f64]) -> Option<f64> {
    let (mut pairs, mut wins) = (0.0, 0.0);
    for (&yi, &pi) in y.iter().zip(p) {
        for (&yj, &pj) in y.iter().zip(p) {
            if yi == 1 && yj == 0 {
                pairs += 1.0;
                wins += if pi > pj {
                    1.0
                } else if pi == pj {
                    0.5
                } else {
                    0.0
                };
            }
        }
    }
    (pairs > 0.0).then(|| wins / pairs)
}

#[test]
fn fast_auc_equals_pairwise_auc_with_many_ties() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut defined = 0;
    for trial in 0..300 {
        let n = rng.gen_range(1..120);
        let levels = rng.gen_range(1..12);
        let (y, p) = random_case(&mut rng, n, levels);
        let (fast, slow) = (roc_auc(&y, &p), naive_auc(&y, &p));
        assert_eq!(fast.is_some(), slow.is_some(), "trial {trial}");
        if let (Some(f), Some(s)) = (fast, slow) {
            defined += 1;
            assert_close(f, s, TOL, &format!("trial {trial}"));
            // The ROC curve's trapezoid area is the same number.
            let roc = roc_curve(&y, &p);
            let area: f64 = roc
                .windows(2)
                .map(|w| (w[1].fpr - w[0].fpr) * (w[1].tpr + w[0].tpr) / 2.0)
                .sum();
            assert_close(area, f, 1e-9, &format!("trial {trial}: trapezoid"));
        }
    }
    assert!(defined > 250, "too few trials had both classes: {defined}");
}

#[test]
fn average_precision_and_curves_are_well_formed() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    for trial in 0..300 {
        let n = rng.gen_range(1..150);
        let levels = rng.gen_range(1..30);
        let (y, p) = random_case(&mut rng, n, levels);
        let positives = y.iter().filter(|v| **v == 1).count();
        let ap = average_precision(&y, &p);
        assert_eq!(ap.is_some(), positives > 0, "trial {trial}");
        if let Some(ap) = ap {
            assert!((0.0..=1.0).contains(&ap), "trial {trial}: {ap}");
            let pr = pr_curve(&y, &p);
            assert!(pr
                .windows(2)
                .all(|w| w[0].recall >= w[1].recall && w[0].threshold < w[1].threshold));
            assert_eq!(pr.last().map(|l| (l.recall, l.precision)), Some((0.0, 1.0)));
        }
        let roc = roc_curve(&y, &p);
        assert!(
            roc.windows(2)
                .all(|w| w[0].fpr <= w[1].fpr && w[0].tpr <= w[1].tpr),
            "trial {trial}"
        );
        let bins = reliability(&y, &p, 10);
        assert_eq!(
            bins.iter().map(|b| b.count).sum::<usize>(),
            n,
            "trial {trial}"
        );
        let ece = expected_calibration_error(&y, &p, 10).unwrap();
        assert!((0.0..=1.0).contains(&ece), "trial {trial}: {ece}");
    }
    let y = [1, 0, 0, 1, 0];
    assert_close(
        average_precision(&y, &[0.4; 5]).unwrap(),
        0.4,
        TOL,
        "all tied: the churn rate",
    );
}

#[test]
fn ece_is_zero_when_each_bin_is_calibrated() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let (mut y, mut p) = (Vec::new(), Vec::new());
    for k in 0..10 {
        // 20 rows in bin k, 2k + 1 churners: observed rate r = k/10 + 0.05;
        // predictions r ± d in pairs, inside the bin, average to r.
        let r = (2 * k + 1) as f64 / 20.0;
        for i in 0..10 {
            let d = rng.gen_range(0.0..0.04);
            p.extend([r + d, r - d]);
            y.extend([u8::from(2 * i < 2 * k + 1), u8::from(2 * i + 1 < 2 * k + 1)]);
        }
    }
    let bins = reliability(&y, &p, 10);
    assert!(bins.iter().all(|b| b.count == 20), "{bins:?}");
    let ece = expected_calibration_error(&y, &p, 10).unwrap();
    assert!(ece < 1e-12, "{ece}");
    // Shifting every prediction by 0.001 (staying in its bin) costs 0.001 of ECE.
    let shifted: Vec<f64> = p.iter().map(|v| v + 0.001).collect();
    assert_close(
        expected_calibration_error(&y, &shifted, 10).unwrap(),
        0.001,
        1e-9,
        "shifted",
    );
}

/// Scores uniform on (0.02, 0.98), churn drawn from sigmoid(3 · logit(p)):
/// the scores are under-confident.
fn underconfident(rng: &mut ChaCha8Rng, n: usize) -> (Vec<u8>, Vec<f64>) {
    let p: Vec<f64> = (0..n).map(|_| rng.gen_range(0.02..0.98)).collect();
    let y = p
        .iter()
        .map(|&p| {
            let truth = 1.0 / (1.0 + (-3.0 * (p / (1.0 - p)).ln()).exp());
            u8::from(rng.gen_bool(truth))
        })
        .collect();
    (y, p)
}

#[test]
fn platt_fixes_underconfident_scores_on_fresh_rows() {
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let (y_fit, p_fit) = underconfident(&mut rng, 3000);
    let (y_test, p_test) = underconfident(&mut rng, 3000);
    let cal = Calibrator::fit_platt(&y_fit, &p_fit).unwrap();
    let Calibrator::Platt { a, b } = cal else {
        panic!("not platt");
    };
    assert!((2.5..3.5).contains(&a) && b.abs() < 0.3, "a = {a}, b = {b}");
    let calibrated: Vec<f64> = p_test.iter().map(|&v| cal.apply(v)).collect();
    let (before, after) = (
        log_loss(&y_test, &p_test).unwrap(),
        log_loss(&y_test, &calibrated).unwrap(),
    );
    assert!(after < before - 0.02, "log loss {before} -> {after}");
    let (ece_before, ece_after) = (
        expected_calibration_error(&y_test, &p_test, 10).unwrap(),
        expected_calibration_error(&y_test, &calibrated, 10).unwrap(),
    );
    assert!(ece_after < ece_before, "ece {ece_before} -> {ece_after}");
    // Ranking unchanged.
    assert_eq!(roc_auc(&y_test, &p_test), roc_auc(&y_test, &calibrated));
}

#[test]
fn platt_never_decreases_even_on_anti_correlated_scores() {
    let (y, p, _) = generated();
    let flipped: Vec<f64> = p.iter().map(|v| 1.0 - v).collect();
    let cal = Calibrator::fit_platt(&y, &flipped).unwrap();
    let Calibrator::Platt { a, b } = cal else {
        panic!("not platt");
    };
    assert_eq!(a, 0.0);
    // Intercept-only: the smoothed base rate, (150 + 1) / 152 and 1 / 152 averaged.
    let base = (151.0 / 152.0 + 1.0 / 152.0) / 2.0;
    assert_close(1.0 / (1.0 + (-b).exp()), base, 1e-12, "constant");
}

#[test]
fn calibrators_of_constant_scores_are_constant() {
    // Platt: the smoothed base rate, (2·(3/4) + 3·(1/5)) / 5 = 0.42.
    let (y, p) = ([1, 1, 0, 0, 0], [0.3; 5]);
    let platt = Calibrator::fit_platt(&y, &p).unwrap();
    let Calibrator::Platt { a, b } = platt else {
        panic!("not platt: {platt:?}");
    };
    assert_eq!(a, 0.0);
    assert_close(b, (0.42f64 / 0.58).ln(), TOL, "b");
    for g in [0.0, 0.29, 0.3, 0.31, 1.0] {
        assert_close(platt.apply(g), 0.42, TOL, "platt");
    }
    // sklearn: IsotonicRegression(out_of_bounds='clip').fit([0.3] * 5, y).predict(g)
    // is 0.4 everywhere.
    let iso = Calibrator::fit_isotonic(&y, &p).unwrap();
    for g in [0.0, 0.3, 1.0] {
        assert_close(iso.apply(g), 0.4, TOL, "isotonic");
    }
}

/// Raw values that probe bounds, edges and clipping.
fn probe_grid() -> Vec<f64> {
    let mut grid = vec![
        f64::NEG_INFINITY,
        -1.0,
        -0.0,
        0.0,
        1e-300,
        1e-13,
        1.0 - 1e-13,
        1.0,
        2.0,
        f64::INFINITY,
    ];
    grid.extend((0..=1000).map(|i| f64::from(i) / 1000.0));
    grid.sort_by(f64::total_cmp);
    grid
}

#[test]
fn calibrators_are_monotone_and_stay_in_unit_interval() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let grid = probe_grid();
    for trial in 0..60 {
        let n = rng.gen_range(2..300);
        let levels = rng.gen_range(1..40);
        let (y, p) = random_case(&mut rng, n, levels);
        let mut calibrators = vec![Calibrator::Identity];
        calibrators.extend(Calibrator::fit_platt(&y, &p));
        calibrators.extend(Calibrator::fit_isotonic(&y, &p));
        if y.contains(&1) && y.contains(&0) {
            assert_eq!(calibrators.len(), 3, "trial {trial}");
        }
        for cal in &calibrators {
            let out: Vec<f64> = grid.iter().map(|&g| cal.apply(g)).collect();
            assert!(
                out.iter().all(|v| (0.0..=1.0).contains(v)),
                "trial {trial}: {cal:?}"
            );
            assert!(
                out.windows(2).all(|w| w[0] <= w[1]),
                "trial {trial}: not monotone: {cal:?}"
            );
            assert!(cal.apply(f64::NAN).is_nan());
        }
        if let Some(iso) = calibrators.get(2) {
            // Isotonic regression is the best monotone fit, so on its own
            // training rows it beats the raw scores (also monotone) in Brier.
            let fitted: Vec<f64> = p.iter().map(|&v| iso.apply(v)).collect();
            assert!(
                brier(&y, &fitted).unwrap() <= brier(&y, &p).unwrap() + 1e-12,
                "trial {trial}"
            );
        }
    }
}

#[test]
fn malformed_calibrators_do_not_panic() {
    let weird = [
        Calibrator::Platt {
            a: f64::NAN,
            b: 0.0,
        },
        Calibrator::Platt {
            a: f64::INFINITY,
            b: f64::NEG_INFINITY,
        },
        Calibrator::Isotonic {
            thresholds: vec![],
            values: vec![],
        },
        Calibrator::Isotonic {
            thresholds: vec![0.5],
            values: vec![0.2, 0.9],
        },
        Calibrator::Isotonic {
            thresholds: vec![0.7, 0.3, f64::NAN],
            values: vec![2.0, -1.0, f64::NAN],
        },
        Calibrator::Isotonic {
            thresholds: vec![0.5, 0.5],
            values: vec![0.9, 0.1],
        },
    ];
    for cal in &weird {
        for &g in &probe_grid() {
            let _ = cal.apply(g);
        }
    }
    assert_eq!(weird[3].apply(0.9), 0.2);
}

#[test]
fn lift_at_full_coverage_is_one() {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    for trial in 0..200 {
        let n = rng.gen_range(1..200);
        let levels = rng.gen_range(1..10);
        let (y, p) = random_case(&mut rng, n, levels);
        let full = lift_at(&y, &p, 1.0).unwrap();
        assert_eq!(full.targeted, n);
        if y.contains(&1) {
            assert_eq!((full.lift, full.capture_rate), (1.0, 1.0), "trial {trial}");
        } else {
            assert_eq!((full.lift, full.capture_rate), (0.0, 0.0), "trial {trial}");
        }
        let curve = lift_curve(&y, &p, 10);
        assert_eq!(curve.last(), Some(&full), "trial {trial}");
        assert!(curve
            .windows(2)
            .all(|w| w[0].capture_rate <= w[1].capture_rate));
    }
}

// ---- errors: never a panic ----

#[test]
fn bad_inputs_give_errors_not_panics() {
    let nan = f64::NAN;
    let cases: &[(&str, &[u8], &[f64], EvalError)] = &[
        (
            "mismatched lengths",
            &[0, 1],
            &[0.5],
            EvalError::LengthMismatch {
                what: "probabilities",
                labels: 2,
                values: 1,
            },
        ),
        ("empty", &[], &[], EvalError::Empty),
        (
            "NaN",
            &[0, 1],
            &[nan, 0.5],
            EvalError::NotFinite {
                what: "probability",
                index: 0,
            },
        ),
        (
            "infinite",
            &[0, 1],
            &[0.5, f64::INFINITY],
            EvalError::NotFinite {
                what: "probability",
                index: 1,
            },
        ),
        (
            "label 2",
            &[0, 2],
            &[0.1, 0.5],
            EvalError::BadLabel { index: 1, value: 2 },
        ),
    ];
    for (name, y, p, err) in cases {
        assert_eq!(check_scores(y, p).as_ref(), Err(err), "{name}");
        assert_eq!(roc_auc(y, p), None, "{name}");
        assert_eq!(average_precision(y, p), None, "{name}");
        assert!(roc_curve(y, p).is_empty(), "{name}");
        assert!(pr_curve(y, p).is_empty(), "{name}");
        assert!(reliability(y, p, 10).is_empty(), "{name}");
        assert!(lift_curve(y, p, 10).is_empty(), "{name}");
        assert_eq!(log_loss(y, p).as_ref(), Err(err), "{name}");
        assert_eq!(brier(y, p).as_ref(), Err(err), "{name}");
        assert_eq!(
            expected_calibration_error(y, p, 10).as_ref(),
            Err(err),
            "{name}"
        );
        assert_eq!(lift_at(y, p, 0.1).as_ref(), Err(err), "{name}");
        assert_eq!(confusion(y, p, 0.5).as_ref(), Err(err), "{name}");
        assert_eq!(evaluate(y, p).as_ref(), Err(err), "{name}");
        assert_eq!(
            choose_threshold(y, p, &vec![1.0; y.len()], 1.0, 0.5).as_ref(),
            Err(err),
            "{name}"
        );
        assert_eq!(Calibrator::fit_platt(y, p).as_ref(), Err(err), "{name}");
        assert_eq!(Calibrator::fit_isotonic(y, p).as_ref(), Err(err), "{name}");
    }

    // Scores outside [0, 1]: fine for ranking, an error for probabilities.
    let (y, p) = ([0u8, 1], [-3.0, 7.5]);
    let err = Some(EvalError::OutOfRange {
        index: 0,
        value: -3.0,
    });
    assert_eq!(roc_auc(&y, &p), Some(1.0));
    assert_eq!(lift_at(&y, &p, 0.5).map(|l| l.capture_rate), Ok(1.0));
    assert_eq!(log_loss(&y, &p).err(), err);
    assert_eq!(brier(&y, &p).err(), err);
    assert_eq!(evaluate(&y, &p).err(), err);
    assert!(reliability(&y, &p, 10).is_empty());
    assert_eq!(Calibrator::fit_platt(&y, &p).err(), err);
    assert_eq!(Calibrator::fit_isotonic(&y, &p).err(), err);
}

#[test]
fn bad_parameters_give_errors() {
    let (y, p) = ([0u8, 1, 1], [0.2, 0.6, 0.9]);
    let bad = |r: Result<f64, EvalError>| matches!(r, Err(EvalError::BadParameter { .. }));
    assert!(bad(expected_calibration_error(&y, &p, 0)));
    assert!(bad(expected_calibration_error(&y, &p, MAX_BINS + 1)));
    assert!(reliability(&y, &p, 0).is_empty());
    assert!(lift_curve(&y, &p, 0).is_empty());
    assert!(lift_curve(&y, &p, usize::MAX).is_empty());
    for f in [0.0, -0.1, 1.5, f64::NAN, f64::INFINITY] {
        assert!(bad(lift_at(&y, &p, f).map(|l| l.lift)), "fraction {f}");
    }
    assert!(bad(confusion(&y, &p, f64::NAN).map(|c| c.accuracy())));
    let v = [10.0, 10.0, 10.0];
    let choose = |v: &[f64], cost: f64, rate: f64| {
        choose_threshold(&y, &p, v, cost, rate).map(|c| c.threshold)
    };
    assert!(bad(choose(&v, -1.0, 0.5)));
    assert!(bad(choose(&v, f64::NAN, 0.5)));
    assert!(bad(choose(&v, 1.0, 1.5)));
    assert!(bad(choose(&v, 1.0, f64::NAN)));
    assert_eq!(
        choose(&v[..2], 1.0, 0.5),
        Err(EvalError::LengthMismatch {
            what: "values at risk",
            labels: 3,
            values: 2
        })
    );
    assert_eq!(
        choose(&[1.0, f64::NAN, 1.0], 1.0, 0.5),
        Err(EvalError::NotFinite {
            what: "value at risk",
            index: 1
        })
    );
}

#[test]
fn error_messages_are_lowercase_without_a_trailing_period() {
    let errors = [
        EvalError::Empty,
        EvalError::LengthMismatch {
            what: "probabilities",
            labels: 2,
            values: 1,
        },
        EvalError::BadLabel { index: 1, value: 2 },
        EvalError::NotFinite {
            what: "probability",
            index: 0,
        },
        EvalError::OutOfRange {
            index: 0,
            value: 1.5,
        },
        EvalError::SingleClass,
        EvalError::BadParameter {
            name: "fraction",
            reason: "2 is not in (0, 1]".into(),
        },
    ];
    for e in errors {
        let msg = e.to_string();
        let first = msg.chars().next().unwrap();
        assert!(!first.is_uppercase() && !msg.ends_with('.'), "{msg}");
    }
    assert_eq!(
        EvalError::BadLabel { index: 1, value: 2 }.to_string(),
        "label at index 1 is 2, expected 0 or 1"
    );
}
