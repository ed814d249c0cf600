//! Behaviour of the whole module: fitting, determinism, explanations,
//! artifacts and errors.

use ndarray::{Array2, ArrayView2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;

/// Generated churn-like rows: numeric columns with a nonlinear signal, some
/// missing values (missingness itself predictive), and one categorical
/// column whose levels {1, 4, 7} churn more.
fn churn_like(n: usize, seed: u64) -> (Array2<f64>, Vec<u8>, Vec<bool>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n_numeric = 5;
    let mut x = Array2::zeros((n, n_numeric + 1));
    let mut y = vec![0u8; n];
    for i in 0..n {
        let mut logit = -1.5;
        for j in 0..n_numeric {
            let v: f64 = rng.gen_range(-2.0..2.0);
            x[[i, j]] = v;
        }
        logit += 1.5 * x[[i, 0]].sin() + x[[i, 1]] * x[[i, 2]] - 0.5 * x[[i, 3]].abs();
        if rng.gen_bool(0.15) {
            x[[i, 4]] = f64::NAN;
            logit += 1.0;
        }
        let level = rng.gen_range(0..10u32);
        x[[i, n_numeric]] = f64::from(level);
        if [1, 4, 7].contains(&level) {
            logit += 1.2;
        }
        y[i] = u8::from(rng.gen::<f64>() < 1.0 / (1.0 + (-logit).exp()));
    }
    let mut categorical = vec![false; n_numeric + 1];
    categorical[n_numeric] = true;
    (x, y, categorical)
}

fn auc(scores: &[f64], y: &[u8]) -> f64 {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let (mut rank_sum, mut positives) = (0.0, 0.0);
    for (rank, &i) in order.iter().enumerate() {
        if y[i] == 1 {
            rank_sum += (rank + 1) as f64;
            positives += 1.0;
        }
    }
    let negatives = scores.len() as f64 - positives;
    (rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives)
}

fn small_params() -> GbdtParams {
    GbdtParams {
        n_trees: 60,
        learning_rate: 0.1,
        max_leaves: 15,
        ..GbdtParams::default()
    }
}

fn fit(x: ArrayView2<'_, f64>, y: &[u8], categorical: &[bool], params: &GbdtParams) -> GbdtModel {
    GbdtModel::fit(x, y, categorical, params, None).expect("fits")
}

#[test]
fn learns_the_signal_on_held_out_rows() {
    let (x, y, categorical) = churn_like(6000, 1);
    let (x_test, y_test, _) = churn_like(3000, 2);
    let model = fit(x.view(), &y, &categorical, &small_params());
    let scores = model.predict_raw(x_test.view()).unwrap();
    let auc = auc(&scores, &y_test);
    assert!(auc > 0.78, "held-out AUC {auc}");
    let proba = model.predict_proba(x_test.view()).unwrap();
    assert!(proba.iter().all(|p| (0.0..=1.0).contains(p)));
}

#[test]
fn fits_are_bit_identical_on_any_number_of_threads() {
    // Enough rows for the parallel paths (histograms, partitions, gradient
    // chunks) to be taken, and sampling on so the random draws count too.
    let (x, y, categorical) = churn_like(80_000, 3);
    let (x_val, y_val, _) = churn_like(5000, 4);
    let params = GbdtParams {
        n_trees: 15,
        max_leaves: 31,
        feature_fraction: 0.7,
        bagging_fraction: 0.8,
        bin_sample_rows: 20_000,
        ..GbdtParams::default()
    };
    let fit_on = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let validation = Validation {
                x: x_val.view(),
                y: &y_val,
            };
            let model =
                GbdtModel::fit(x.view(), &y, &categorical, &params, Some(validation)).unwrap();
            let margins = model.predict_raw(x_val.view()).unwrap();
            let contributions = model.contributions(x_val.view()).unwrap();
            (model.to_json().unwrap(), margins, contributions)
        })
    };
    let one = fit_on(1);
    for threads in [2, 4] {
        let other = fit_on(threads);
        assert!(one.0 == other.0, "model differs on {threads} threads");
        let bits = |v: &[f64]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&one.1), bits(&other.1));
        assert_eq!(
            bits(one.2.as_slice().unwrap()),
            bits(other.2.as_slice().unwrap())
        );
    }
}

#[test]
fn contributions_add_up_to_the_margin() {
    let (x, y, categorical) = churn_like(4000, 5);
    let model = fit(x.view(), &y, &categorical, &small_params());
    let (x_test, _, _) = churn_like(500, 6);
    let margins = model.predict_raw(x_test.view()).unwrap();
    let phi = model.contributions(x_test.view()).unwrap();
    let base = model.base_value();
    for (row, margin) in phi.rows().into_iter().zip(&margins) {
        let total = base + row.sum();
        assert!((total - margin).abs() < 1e-6, "{total} vs {margin}");
    }
}

/// The path-dependent value of knowing the columns in `known` (a bit mask):
/// splits on known columns follow the row, the others average their
/// branches by cover.
fn conditional_value(tree: &Tree, node: usize, row: &[f64], known: u32) -> f64 {
    let n = &tree.nodes[node];
    if n.is_leaf() {
        return n.value;
    }
    let (left, right) = (n.left as usize, n.right as usize);
    if known >> n.feature & 1 == 1 {
        let next = if tree.goes_left(n, row[n.feature as usize]) {
            left
        } else {
            right
        };
        conditional_value(tree, next, row, known)
    } else {
        (tree.nodes[left].cover * conditional_value(tree, left, row, known)
            + tree.nodes[right].cover * conditional_value(tree, right, row, known))
            / n.cover
    }
}

/// Shapley values by enumerating all `2^p` subsets.
fn brute_force_shapley(model: &GbdtModel, row: &[f64]) -> Vec<f64> {
    let p = row.len();
    let value = |known: u32| -> f64 {
        model
            .trees
            .iter()
            .map(|t| conditional_value(t, 0, row, known))
            .sum()
    };
    let factorial = |k: usize| (1..=k).map(|i| i as f64).product::<f64>();
    let mut phi = vec![0.0; p];
    for (feature, phi) in phi.iter_mut().enumerate() {
        for subset in 0u32..(1 << p) {
            if subset >> feature & 1 == 1 {
                continue;
            }
            let size = subset.count_ones() as usize;
            let weight = factorial(size) * factorial(p - size - 1) / factorial(p);
            *phi += weight * (value(subset | 1 << feature) - value(subset));
        }
    }
    phi
}

#[test]
fn contributions_match_brute_force_shapley_values() {
    let (x, y, categorical) = churn_like(3000, 7);
    let params = GbdtParams {
        n_trees: 5,
        max_leaves: 12,
        min_data_in_leaf: 5,
        ..small_params()
    };
    let model = fit(x.view(), &y, &categorical, &params);
    // Repeated columns on a path are the tricky case for TreeSHAP.
    let repeated = model.trees.iter().any(|t| {
        let features: Vec<u32> = t
            .nodes
            .iter()
            .filter(|n| !n.is_leaf())
            .map(|n| n.feature)
            .collect();
        features.len()
            > features
                .iter()
                .collect::<std::collections::BTreeSet<_>>()
                .len()
    });
    assert!(repeated, "the test trees should reuse a column");
    let (x_test, _, _) = churn_like(40, 8);
    let phi = model.contributions(x_test.view()).unwrap();
    for (i, row) in x_test.rows().into_iter().enumerate() {
        let row = row.to_vec();
        let exact = brute_force_shapley(&model, &row);
        for (f, &e) in exact.iter().enumerate() {
            assert!(
                (phi[[i, f]] - e).abs() < 1e-9,
                "row {i} column {f}: {} vs {e}",
                phi[[i, f]]
            );
        }
    }
}

#[test]
fn a_missing_value_gets_its_own_contribution() {
    let (x, y, categorical) = churn_like(4000, 9);
    let model = fit(x.view(), &y, &categorical, &small_params());
    let mut row = Array2::zeros((1, 6));
    row[[0, 4]] = f64::NAN;
    row[[0, 5]] = 2.0;
    let phi = model.contributions(row.view()).unwrap();
    // Missingness raised churn in the data, so it should push up here.
    assert!(
        phi[[0, 4]] > 0.05,
        "contribution of the missing value: {}",
        phi[[0, 4]]
    );
    let margin = model.predict_raw(row.view()).unwrap()[0];
    assert!((model.base_value() + phi.sum() - margin).abs() < 1e-6);
}

#[test]
fn categorical_levels_are_split_as_a_set() {
    let (x, y, categorical) = churn_like(8000, 10);
    let model = fit(x.view(), &y, &categorical, &small_params());
    let split = model
        .trees
        .iter()
        .flat_map(|t| t.nodes.iter().map(move |n| (t, n)))
        .find(|(_, n)| n.is_categorical())
        .expect("a categorical split");
    let (tree, node) = split;
    let start = node.cat_start as usize;
    let mut levels = tree.cat_levels[start..start + node.cat_len as usize].to_vec();
    // Either side may hold the churny levels.
    if !levels.contains(&1) {
        levels = (0..10).filter(|l| !levels.contains(l)).collect();
    }
    assert_eq!(levels, vec![1, 4, 7]);
    // Unseen, fractional and missing codes follow the "other" side.
    for code in [99.0, 2.5, -1.0, f64::NAN] {
        assert!(!tree.goes_left(node, code));
    }
}

#[test]
fn early_stopping_keeps_the_best_round() {
    let (x, y, categorical) = churn_like(3000, 11);
    let (x_val, y_val, _) = churn_like(1000, 12);
    let params = GbdtParams {
        n_trees: 2000,
        learning_rate: 0.3,
        early_stopping_rounds: 10,
        ..GbdtParams::default()
    };
    let validation = Validation {
        x: x_val.view(),
        y: &y_val,
    };
    let model = GbdtModel::fit(x.view(), &y, &categorical, &params, Some(validation)).unwrap();
    assert!(model.n_trees() < 2000);
    let kept = model.validation_logloss.unwrap();
    let margins = model.predict_raw(x_val.view()).unwrap();
    let loss: f64 = margins
        .iter()
        .zip(&y_val)
        .map(|(&m, &l)| (1.0 + (-m).exp()).ln() + (1.0 - f64::from(l)) * m)
        .sum::<f64>()
        / y_val.len() as f64;
    assert!((loss - kept).abs() < 1e-9, "{loss} vs {kept}");
}

#[test]
fn importance_ranks_signal_columns_above_noise() {
    let (x, y, categorical) = churn_like(6000, 13);
    let model = fit(x.view(), &y, &categorical, &small_params());
    let gain = model.feature_importance_gain();
    assert_eq!(gain.len(), 6);
    // Column 0 (a sine) and 1, 2 (a product) carry signal, column 3 less.
    assert!(gain[0] > gain[3] && gain[1] > gain[3]);
}

#[test]
fn round_trips_through_json_and_rejects_corrupt_models() {
    let (x, y, categorical) = churn_like(2000, 14);
    let model = fit(x.view(), &y, &categorical, &small_params());
    let text = model.to_json().unwrap();
    let loaded = GbdtModel::from_json(&text).unwrap();
    assert!(loaded == model, "the model changed through JSON");
    assert_eq!(
        loaded.predict_raw(x.view()).unwrap(),
        model.predict_raw(x.view()).unwrap()
    );

    let split_index = model.trees[0]
        .nodes
        .iter()
        .position(|n| !n.is_leaf())
        .unwrap();
    type Corruption<'a> = Box<dyn Fn(&mut GbdtModel) + 'a>;
    let corruptions: Vec<Corruption> = vec![
        Box::new(|m| m.trees[0].nodes[split_index].left = 10_000),
        Box::new(|m| m.trees[0].nodes[split_index].right = 0),
        Box::new(move |m| {
            let left = m.trees[0].nodes[split_index].left;
            m.trees[0].nodes[split_index].right = left;
        }),
        Box::new(|m| m.trees[0].nodes[split_index].feature = 99),
        Box::new(|m| m.trees[0].nodes[split_index].cover = 0.0),
        Box::new(|m| m.trees[0].nodes.last_mut().unwrap().value = f64::NAN),
        Box::new(|m| m.trees[0].nodes.clear()),
        Box::new(|m| m.categorical.clear()),
        Box::new(|m| m.base_score = f64::INFINITY),
        Box::new(|m| m.params.learning_rate = -1.0),
    ];
    for (i, corrupt) in corruptions.iter().enumerate() {
        let mut bad = model.clone();
        corrupt(&mut bad);
        assert!(bad.validate().is_err(), "corruption {i} passed validation");
    }
    assert!(GbdtModel::from_json("{\"trees\": 3}").is_err());
}

#[test]
fn a_corrupt_categorical_split_is_rejected() {
    let (x, y, categorical) = churn_like(4000, 15);
    let model = fit(x.view(), &y, &categorical, &small_params());
    let (tree_index, node_index) = model
        .trees
        .iter()
        .enumerate()
        .find_map(|(t, tree)| {
            tree.nodes
                .iter()
                .position(|n| n.is_categorical())
                .map(|n| (t, n))
        })
        .expect("a categorical split");
    let mut bad = model.clone();
    bad.trees[tree_index].nodes[node_index].cat_len = 1_000;
    assert!(bad.validate().is_err());
    let mut bad = model.clone();
    bad.categorical[5] = false;
    assert!(bad.validate().is_err());
}

#[test]
fn bad_inputs_are_reported() {
    let (x, y, categorical) = churn_like(500, 16);
    let params = small_params();
    let err = |result: Result<GbdtModel>| result.unwrap_err();
    assert!(matches!(
        err(GbdtModel::fit(
            x.slice(ndarray::s![..0, ..]),
            &[],
            &categorical,
            &params,
            None
        )),
        GbdtError::EmptyTraining(_)
    ));
    assert!(matches!(
        err(GbdtModel::fit(
            x.view(),
            &vec![0; 500],
            &categorical,
            &params,
            None
        )),
        GbdtError::SingleClass
    ));
    assert!(matches!(
        err(GbdtModel::fit(
            x.view(),
            &y[..10],
            &categorical,
            &params,
            None
        )),
        GbdtError::ShapeMismatch(_)
    ));
    assert!(matches!(
        err(GbdtModel::fit(
            x.view(),
            &y,
            &categorical[..2],
            &params,
            None
        )),
        GbdtError::ShapeMismatch(_)
    ));
    let mut bad_labels = y.clone();
    bad_labels[7] = 2;
    assert!(matches!(
        err(GbdtModel::fit(
            x.view(),
            &bad_labels,
            &categorical,
            &params,
            None
        )),
        GbdtError::BadLabel { row: 7, value: 2 }
    ));
    let bad = GbdtParams {
        learning_rate: 0.0,
        ..params.clone()
    };
    match err(GbdtModel::fit(x.view(), &y, &categorical, &bad, None)) {
        GbdtError::BadParam { name, .. } => assert_eq!(name, "gbdt.learning_rate"),
        other => panic!("unexpected {other}"),
    }
    let model = fit(x.view(), &y, &categorical, &params);
    let narrow = Array2::<f64>::zeros((3, 2));
    assert!(matches!(
        model.predict_raw(narrow.view()),
        Err(GbdtError::ShapeMismatch(_))
    ));
    assert!(model.contributions(narrow.view()).is_err());
}

#[test]
fn small_and_large_batches_predict_the_same() {
    let (x, y, categorical) = churn_like(3000, 18);
    let model = fit(x.view(), &y, &categorical, &small_params());
    let all = model.predict_raw(x.view()).unwrap();
    for (i, row) in x.rows().into_iter().enumerate().step_by(97) {
        let one = row.insert_axis(ndarray::Axis(0));
        assert_eq!(
            model.predict_raw(one).unwrap()[0].to_bits(),
            all[i].to_bits()
        );
    }
}

#[test]
fn column_major_input_predicts_like_row_major() {
    let (x, y, categorical) = churn_like(2000, 17);
    let model = fit(x.view(), &y, &categorical, &small_params());
    let column_major = x.t().to_owned();
    let column_major = column_major.t();
    assert_eq!(
        model.predict_raw(column_major).unwrap(),
        model.predict_raw(x.view()).unwrap()
    );
}

#[test]
fn params_deserialize_with_defaults_and_reject_unknown_keys() {
    let params: GbdtParams = serde_json::from_str("{\"max_leaves\": 63}").unwrap();
    assert_eq!(params.max_leaves, 63);
    assert_eq!(params.learning_rate, GbdtParams::default().learning_rate);
    assert!(serde_json::from_str::<GbdtParams>("{\"max_leaf\": 63}").is_err());
}

#[test]
fn quickscorer_picks_the_walks_leaf_for_every_kind_of_value() {
    // Larger trees too (up to 40 leaves), and values training never saw:
    // infinities, unseen, negative and fractional level codes, missing
    // values in every column.
    let (x, y, categorical) = churn_like(4000, 21);
    for max_leaves in [4, 15, 40] {
        let params = GbdtParams {
            max_leaves,
            min_data_in_leaf: 5,
            ..small_params()
        };
        let model = fit(x.view(), &y, &categorical, &params);
        let mut probe = x.slice(ndarray::s![..600, ..]).to_owned();
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for mut row in probe.rows_mut() {
            for v in row.iter_mut() {
                match rng.gen_range(0..12) {
                    0 => *v = f64::NAN,
                    1 => *v = f64::INFINITY,
                    2 => *v = f64::NEG_INFINITY,
                    3 => *v = 1e9,
                    4 => *v = -3.0,
                    5 => *v = 2.5,
                    _ => {}
                }
            }
        }
        let width = probe.ncols();
        let scorer = super::quickscorer::QuickScorer::new(&model.trees, &model.categorical)
            .expect("64 leaves or fewer");
        let values = probe.as_slice().unwrap();
        let mut fast = vec![model.base_score; probe.nrows()];
        scorer.add_margins(values, width, &mut fast, &mut Vec::new());
        for (i, row) in values.chunks_exact(width).enumerate() {
            let mut walk = model.base_score;
            for tree in &model.trees {
                walk += tree.leaf_of(row).value;
            }
            assert_eq!(
                fast[i].to_bits(),
                walk.to_bits(),
                "row {i}, {max_leaves} leaves"
            );
        }
    }
}
