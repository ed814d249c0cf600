//! How labelled rows are divided, so that no estimate sees its own answers.
//!
//! - Flat tables: a held-out test set, stratified by label and chosen by the
//!   stable hash of each row's id (`churnguard_core::hash`), so the same rows
//!   are held out in any language from the documented formula (the Python
//!   peers of the benchmark reproduce it exactly); then stratified k-fold
//!   cross-validation on the training rows.
//! - Event data (a feature table of many snapshots): rolling origins. At
//!   each origin snapshot the model trains only on snapshots whose label
//!   horizon has ended by the origin, and is tested on the origin's rows.
//!   Inside a training window, every split (validation, CV folds) is
//!   grouped by customer, so no customer's rows at different snapshots sit
//!   on both sides.

use churnguard_core::hash::stable_u64;

use crate::{Result, TrainError};

/// The held-out test rows of a flat table: per class, the rows with the
/// lowest stable hash of (`split-<seed>`, id), `floor(n_class × fraction +
/// 0.5)` of them (ties broken by row order). Returns (training, test), each
/// in row order.
pub fn hash_stratified(
    ids: &[String],
    labels: &[u8],
    fraction: f64,
    seed: u64,
) -> (Vec<usize>, Vec<usize>) {
    let salt = format!("split-{seed}");
    let mut test = Vec::new();
    for class in [0u8, 1] {
        let mut rows: Vec<(u64, usize)> = labels
            .iter()
            .enumerate()
            .filter(|(_, l)| **l == class)
            .map(|(i, _)| (stable_u64(&salt, &ids[i]), i))
            .collect();
        rows.sort_unstable();
        let k = (rows.len() as f64 * fraction + 0.5).floor() as usize;
        test.extend(rows.into_iter().take(k).map(|(_, i)| i));
    }
    test.sort_unstable();
    let mut held_out = vec![false; labels.len()];
    for &i in &test {
        held_out[i] = true;
    }
    let train = (0..labels.len()).filter(|i| !held_out[*i]).collect();
    (train, test)
}

/// Assigns `rows` to `k` folds, grouped by id and stratified by label: a
/// group (a customer) is positive when any of its rows is; within each
/// class, groups are ordered by the stable hash of (`folds-<seed>`, id) and
/// dealt round-robin. Returns each row's fold, aligned with `rows`.
pub fn grouped_folds(
    ids: &[String],
    labels: &[u8],
    rows: &[usize],
    k: usize,
    seed: u64,
) -> Vec<usize> {
    let salt = format!("folds-{seed}");
    let mut group_positive: std::collections::HashMap<&str, bool> =
        std::collections::HashMap::new();
    for &i in rows {
        *group_positive.entry(ids[i].as_str()).or_default() |= labels[i] == 1;
    }
    let mut groups: Vec<(bool, u64, &str)> = group_positive
        .iter()
        .map(|(id, pos)| (*pos, stable_u64(&salt, id), *id))
        .collect();
    groups.sort_unstable();
    let mut fold_of: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let mut dealt = [0usize; 2];
    for (pos, _, id) in groups {
        let class = usize::from(pos);
        fold_of.insert(id, dealt[class] % k);
        dealt[class] += 1;
    }
    rows.iter().map(|&i| fold_of[ids[i].as_str()]).collect()
}

/// Splits `rows` into (fitting, validation) by customer: the groups of
/// fold 0 of [`grouped_folds`] with `round(1 / fraction)` folds validate.
pub fn grouped_holdout(
    ids: &[String],
    labels: &[u8],
    rows: &[usize],
    fraction: f64,
    seed: u64,
) -> (Vec<usize>, Vec<usize>) {
    let k = (1.0 / fraction).round().max(2.0) as usize;
    let folds = grouped_folds(ids, labels, rows, k, seed);
    let mut fit = Vec::new();
    let mut validation = Vec::new();
    for (&i, f) in rows.iter().zip(folds) {
        if f == 0 {
            validation.push(i);
        } else {
            fit.push(i);
        }
    }
    (fit, validation)
}

/// One origin of a rolling-origin backtest.
#[derive(Debug, Clone, PartialEq)]
pub struct Origin {
    /// The origin snapshot, days since 1970-01-01.
    pub day: i32,
    /// Rows whose label horizon ended by the origin: the training window.
    pub window: Vec<usize>,
    /// The origin's rows: the test.
    pub test: Vec<usize>,
}

/// The last `n` snapshots that can serve as origins: each has rows, and a
/// training window (rows whose `snapshot + horizon <= origin`) holding both
/// classes. Oldest first.
pub fn rolling_origins(
    snapshots: &[i32],
    labels: &[u8],
    horizon_days: u32,
    n: usize,
) -> Result<Vec<Origin>> {
    let mut days: Vec<i32> = snapshots.to_vec();
    days.sort_unstable();
    days.dedup();
    let horizon = horizon_days as i32;
    let mut origins = Vec::new();
    for &day in days.iter().rev() {
        if origins.len() == n {
            break;
        }
        let window: Vec<usize> = (0..snapshots.len())
            .filter(|&i| snapshots[i] + horizon <= day)
            .collect();
        let test: Vec<usize> = (0..snapshots.len())
            .filter(|&i| snapshots[i] == day)
            .collect();
        let classes = |rows: &[usize]| {
            let pos = rows.iter().filter(|&&i| labels[i] == 1).count();
            pos > 0 && pos < rows.len()
        };
        if classes(&window) && classes(&test) {
            origins.push(Origin { day, window, test });
        }
    }
    if origins.is_empty() {
        return Err(TrainError::Split(format!(
            "no snapshot has an earlier {horizon}-day training window with churners and non-churners; build features with more snapshots (churnguard features --snapshots)"
        )));
    }
    origins.reverse();
    Ok(origins)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("C{i:05}")).collect()
    }

    #[test]
    fn the_test_set_is_stratified_and_stable() {
        let ids = ids(1000);
        let labels: Vec<u8> = (0..1000).map(|i| u8::from(i % 5 == 0)).collect();
        let (train, test) = hash_stratified(&ids, &labels, 0.2, 42);
        assert_eq!(train.len() + test.len(), 1000);
        assert_eq!(test.iter().filter(|&&i| labels[i] == 1).count(), 40);
        assert_eq!(test.len(), 200);
        // The same rows whatever order the table comes in.
        let mut rev_ids = ids.clone();
        rev_ids.reverse();
        let mut rev_labels = labels.clone();
        rev_labels.reverse();
        let (_, rev_test) = hash_stratified(&rev_ids, &rev_labels, 0.2, 42);
        let mut a: Vec<&String> = test.iter().map(|&i| &ids[i]).collect();
        let mut b: Vec<&String> = rev_test.iter().map(|&i| &rev_ids[i]).collect();
        a.sort();
        b.sort();
        assert_eq!(a, b);
        let (_, other) = hash_stratified(&ids, &labels, 0.2, 7);
        assert_ne!(other, test);
    }

    #[test]
    fn folds_never_split_a_customer() {
        // Each customer at three snapshots.
        let ids: Vec<String> = (0..900).map(|i| format!("C{}", i / 3)).collect();
        let labels: Vec<u8> = (0..900).map(|i| u8::from(i % 7 == 0)).collect();
        let rows: Vec<usize> = (0..900).collect();
        let folds = grouped_folds(&ids, &labels, &rows, 5, 1);
        for c in 0..300 {
            let f: Vec<usize> = (0..3).map(|s| folds[3 * c + s]).collect();
            assert!(f.iter().all(|x| *x == f[0]), "customer {c}: {f:?}");
        }
        for k in 0..5 {
            let n = folds.iter().filter(|f| **f == k).count();
            assert!((150..=210).contains(&n), "fold {k}: {n}");
        }
    }

    #[test]
    fn origins_train_only_on_ended_horizons() {
        let snapshots: Vec<i32> = (0..6)
            .flat_map(|s| std::iter::repeat_n(s * 91, 50))
            .collect();
        let labels: Vec<u8> = (0..300).map(|i| u8::from(i % 4 == 0)).collect();
        let origins = rolling_origins(&snapshots, &labels, 90, 3).unwrap();
        assert_eq!(origins.len(), 3);
        assert_eq!(
            origins.iter().map(|o| o.day).collect::<Vec<_>>(),
            vec![3 * 91, 4 * 91, 5 * 91]
        );
        for o in &origins {
            assert!(o.window.iter().all(|&i| snapshots[i] + 90 <= o.day));
            assert!(o.test.iter().all(|&i| snapshots[i] == o.day));
        }
    }
}
