//! Finding a leaf's best split from its histograms.

use rayon::prelude::*;

use super::binning::BinMapper;
use super::histogram::{BinStats, ColumnHistogram, Histogram};
use super::params::GbdtParams;

/// Categorical columns with at most this many levels are split one level
/// against the rest; with so few levels the sorted scan has nothing to add.
const ONE_HOT_MAX_LEVELS: usize = 4;

/// Below this many columns the split search stays on the calling thread.
const PARALLEL_MIN_FEATURES: usize = 16;

/// The set of bin codes a split sends left.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct BinSet([u64; 4]);

impl BinSet {
    pub(crate) fn insert(&mut self, bin: u8) {
        self.0[usize::from(bin >> 6)] |= 1 << (bin & 63);
    }

    #[inline]
    pub(crate) fn contains(&self, bin: u8) -> bool {
        self.0[usize::from(bin >> 6)] >> (bin & 63) & 1 == 1
    }

    /// Bins `0..=last`, the left side of a numeric split.
    fn up_to(last: u8) -> BinSet {
        let mut set = BinSet::default();
        (0..=last).for_each(|bin| set.insert(bin));
        set
    }
}

/// How a chosen split divides a column's bins.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SplitRule {
    /// Bins `..=threshold_bin` go left; missing values go left when
    /// `missing_left`.
    Numeric {
        threshold_bin: u8,
        missing_left: bool,
    },
    /// The listed value bins go left, every other bin right.
    Categorical { left_bins: Vec<u8> },
}

/// The best split found for a leaf.
#[derive(Debug, Clone)]
pub(crate) struct SplitCandidate {
    pub(crate) feature: usize,
    /// Loss reduction (second-order approximation).
    pub(crate) gain: f64,
    pub(crate) left: BinStats,
    pub(crate) right: BinStats,
    pub(crate) rule: SplitRule,
    /// Bins sent left, including the missing bin when missing values go
    /// left: what partitioning the rows needs.
    pub(crate) left_bins: BinSet,
}

/// The settings that constrain splits, taken from [`GbdtParams`].
#[derive(Debug, Clone)]
pub(crate) struct SplitSettings {
    lambda_l2: f64,
    min_data_in_leaf: u64,
    min_sum_hessian: f64,
    min_gain: f64,
    cat_smooth: f64,
    cat_l2: f64,
    cat_min_data_per_level: u64,
    cat_max_split_levels: usize,
}

impl SplitSettings {
    pub(crate) fn new(params: &GbdtParams) -> SplitSettings {
        SplitSettings {
            lambda_l2: params.lambda_l2,
            min_data_in_leaf: params.min_data_in_leaf as u64,
            min_sum_hessian: params.min_sum_hessian,
            min_gain: params.min_gain,
            cat_smooth: params.cat_smooth,
            cat_l2: params.cat_l2,
            cat_min_data_per_level: params.cat_min_data_per_level as u64,
            cat_max_split_levels: params.cat_max_split_levels,
        }
    }

    /// Whether a leaf this size could be split at all.
    pub(crate) fn can_split(&self, total: &BinStats) -> bool {
        total.count >= 2 * self.min_data_in_leaf && total.hess >= 2.0 * self.min_sum_hessian
    }

    /// Whether one side of a split is big enough. Its rows are counted as
    /// LightGBM counts them, by their share of the leaf's hessian
    /// (`side.hess × rows_per_hess`): rows the model already predicts with
    /// confidence (small `p(1 − p)`) count for less than one row, so a leaf
    /// carved out of them needs more rows. Measured against counting rows
    /// plainly, with LightGBM's settings on generated data (100k
    /// customers): test ROC-AUC 0.7067 → 0.7103 (LightGBM 0.7094 on the same
    /// rows); with the defaults 0.7233 → 0.7236; Telco and credit-card
    /// churners unchanged over five splits.
    fn side_allowed(&self, side: &BinStats, rows_per_hess: f64) -> bool {
        let rows = (side.hess * rows_per_hess).round();
        rows >= self.min_data_in_leaf as f64 && side.hess >= self.min_sum_hessian
    }
}

/// The part of the loss a leaf removes with its optimal value
/// `-G / (H + λ)`: `G² / (H + λ)` (halved in the textbook; the factor does
/// not change which split wins, and the gains are only compared).
fn leaf_score(stats: &BinStats, lambda_l2: f64) -> f64 {
    stats.grad * stats.grad / (stats.hess + lambda_l2)
}

/// The best split of a leaf over the `features` drawn for this tree, or
/// `None` when no split passes the constraints with a gain above
/// `min_gain`. Columns are searched in parallel but the winner is picked in
/// column order (the first of equal gains), so the result is deterministic.
pub(crate) fn best_split(
    histogram: &Histogram,
    total: &BinStats,
    mappers: &[BinMapper],
    features: &[usize],
    settings: &SplitSettings,
) -> Option<SplitCandidate> {
    let search = |&feature: &usize| {
        let column = &histogram.columns[feature];
        match &mappers[feature] {
            mapper @ BinMapper::Numeric { .. } => {
                best_numeric(column, total, mapper.value_bins(), settings)
            }
            mapper @ BinMapper::Categorical { .. } => {
                best_categorical(column, total, mapper.value_bins(), settings)
            }
        }
        .map(|mut candidate| {
            candidate.feature = feature;
            candidate
        })
    };
    let per_feature: Vec<Option<SplitCandidate>> = if features.len() >= PARALLEL_MIN_FEATURES {
        features.par_iter().map(search).collect()
    } else {
        features.iter().map(search).collect()
    };
    per_feature
        .into_iter()
        .flatten()
        .fold(None, |best: Option<SplitCandidate>, candidate| match best {
            Some(b) if b.gain >= candidate.gain => Some(b),
            _ => Some(candidate),
        })
}

/// Tracks the best (left side, gain) seen while scanning one column.
struct Best<T> {
    gain: f64,
    left: BinStats,
    choice: Option<T>,
    /// The leaf's rows per unit of hessian, for counting a side's rows
    /// ([`SplitSettings::side_allowed`]): the same for every offer.
    rows_per_hess: f64,
}

impl<T> Best<T> {
    fn new(min_gain: f64, total: &BinStats) -> Best<T> {
        Best {
            gain: min_gain,
            left: BinStats::default(),
            choice: None,
            rows_per_hess: if total.hess > 0.0 {
                total.count as f64 / total.hess
            } else {
                0.0
            },
        }
    }

    /// Keeps `left` if it is allowed and strictly better than the best so
    /// far, children scored with `child_l2` against `parent_score`.
    fn offer(
        &mut self,
        left: BinStats,
        total: &BinStats,
        settings: &SplitSettings,
        child_l2: f64,
        parent_score: f64,
        choice: impl FnOnce() -> T,
    ) {
        let right = *total - left;
        if !settings.side_allowed(&left, self.rows_per_hess)
            || !settings.side_allowed(&right, self.rows_per_hess)
        {
            return;
        }
        let gain = leaf_score(&left, child_l2) + leaf_score(&right, child_l2) - parent_score;
        if gain > self.gain {
            self.gain = gain;
            self.left = left;
            self.choice = Some(choice());
        }
    }
}

/// Scans the thresholds between value bins with missing values on either
/// side, plus "all values left, missing right" (and the reverse) when the
/// leaf has missing values.
fn best_numeric(
    column: &ColumnHistogram,
    total: &BinStats,
    value_bins: usize,
    settings: &SplitSettings,
) -> Option<SplitCandidate> {
    let missing = column[value_bins];
    let has_missing = missing.count > 0;
    let parent_score = leaf_score(total, settings.lambda_l2);
    let mut best = Best::new(settings.min_gain, total);
    let mut left = BinStats::default();
    for (bin, &stats) in column[..value_bins].iter().enumerate() {
        left += stats;
        let last = bin + 1 == value_bins;
        if !last || has_missing {
            best.offer(
                left,
                total,
                settings,
                settings.lambda_l2,
                parent_score,
                || (bin, false),
            );
        }
        if has_missing {
            let mut with_missing = left;
            with_missing += missing;
            best.offer(
                with_missing,
                total,
                settings,
                settings.lambda_l2,
                parent_score,
                || (bin, true),
            );
        }
    }
    let (threshold_bin, missing_left) = best.choice?;
    let right = *total - best.left;
    // Without missing values here, send future ones to the bigger side.
    let missing_left = if has_missing {
        missing_left
    } else {
        best.left.count > right.count
    };
    let mut left_bins = BinSet::up_to(threshold_bin as u8);
    if missing_left {
        left_bins.insert(value_bins as u8);
    }
    Some(SplitCandidate {
        feature: 0,
        gain: best.gain,
        left: best.left,
        right,
        rule: SplitRule::Numeric {
            threshold_bin: threshold_bin as u8,
            missing_left,
        },
        left_bins,
    })
}

/// One level against the rest for few levels; otherwise LightGBM's scan of
/// the levels sorted by `sum_grad / (sum_hess + cat_smooth)` from both
/// ends. The "other" bin (rare, unseen and missing levels) always goes
/// right.
fn best_categorical(
    column: &ColumnHistogram,
    total: &BinStats,
    levels: usize,
    settings: &SplitSettings,
) -> Option<SplitCandidate> {
    let parent_score = leaf_score(total, settings.lambda_l2);
    let mut best: Best<Vec<u8>> = Best::new(settings.min_gain, total);
    if levels <= ONE_HOT_MAX_LEVELS {
        for (bin, &stats) in column[..levels].iter().enumerate() {
            best.offer(
                stats,
                total,
                settings,
                settings.lambda_l2,
                parent_score,
                || vec![bin as u8],
            );
        }
    } else {
        let mut sorted: Vec<usize> = (0..levels)
            .filter(|&bin| column[bin].count >= settings.cat_min_data_per_level.max(1))
            .collect();
        let ratio = |bin: usize| column[bin].grad / (column[bin].hess + settings.cat_smooth);
        // Stable: equal ratios keep bin order, so the result is deterministic.
        sorted.sort_by(|&a, &b| ratio(a).total_cmp(&ratio(b)));
        let max_left = settings.cat_max_split_levels.min(sorted.len().div_ceil(2));
        let child_l2 = settings.lambda_l2 + settings.cat_l2;
        for from_top in [false, true] {
            let mut left = BinStats::default();
            for taken in 0..max_left {
                let index = if from_top {
                    sorted.len() - 1 - taken
                } else {
                    taken
                };
                left += column[sorted[index]];
                best.offer(left, total, settings, child_l2, parent_score, || {
                    let chosen = if from_top {
                        &sorted[sorted.len() - 1 - taken..]
                    } else {
                        &sorted[..=taken]
                    };
                    chosen.iter().map(|&bin| bin as u8).collect()
                });
            }
        }
    }
    let mut left_bins: Vec<u8> = best.choice?;
    left_bins.sort_unstable();
    let mut set = BinSet::default();
    left_bins.iter().for_each(|&bin| set.insert(bin));
    Some(SplitCandidate {
        feature: 0,
        gain: best.gain,
        left: best.left,
        right: *total - best.left,
        rule: SplitRule::Categorical { left_bins },
        left_bins: set,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::gbdt::binning::BIN_SLOTS;

    fn stats(grad: f64, hess: f64, count: u64) -> BinStats {
        BinStats { grad, hess, count }
    }

    fn settings() -> SplitSettings {
        SplitSettings::new(&GbdtParams {
            min_data_in_leaf: 1,
            lambda_l2: 0.0,
            cat_smooth: 0.0,
            cat_l2: 0.0,
            cat_min_data_per_level: 1,
            ..GbdtParams::default()
        })
    }

    fn total(column: &ColumnHistogram) -> BinStats {
        let mut sum = BinStats::default();
        column.iter().for_each(|&s| sum += s);
        sum
    }

    #[test]
    fn numeric_split_separates_gradient_signs_and_places_missing() {
        let mut column = [BinStats::default(); BIN_SLOTS];
        column[0] = stats(-5.0, 2.0, 10);
        column[1] = stats(-4.0, 2.0, 10);
        column[2] = stats(6.0, 2.0, 10);
        // Missing rows look like the right side.
        column[3] = stats(3.0, 1.0, 5);
        let total = total(&column);
        let best = best_numeric(&column, &total, 3, &settings()).unwrap();
        assert_eq!(
            best.rule,
            SplitRule::Numeric {
                threshold_bin: 1,
                missing_left: false
            }
        );
        assert_eq!(best.left.count, 20);
        assert!(best.left_bins.contains(1) && !best.left_bins.contains(2));
        assert!(!best.left_bins.contains(3));
    }

    #[test]
    fn categorical_split_groups_levels_by_gradient_ratio() {
        let mut column = [BinStats::default(); BIN_SLOTS];
        let grads = [5.0, -5.0, 4.0, -6.0, 5.5, -4.5];
        for (bin, &g) in grads.iter().enumerate() {
            column[bin] = stats(g, 2.0, 10);
        }
        let total = total(&column);
        let best = best_categorical(&column, &total, grads.len(), &settings()).unwrap();
        let SplitRule::Categorical { left_bins } = &best.rule else {
            panic!("expected a categorical rule")
        };
        let mut left = left_bins.clone();
        left.sort_unstable();
        assert!(left == vec![1, 3, 5] || left == vec![0, 2, 4], "{left:?}");
        assert!(!best.left_bins.contains(6), "the other bin never goes left");
    }

    #[test]
    fn no_split_when_a_side_would_be_too_small() {
        let mut column = [BinStats::default(); BIN_SLOTS];
        column[0] = stats(-5.0, 2.0, 3);
        column[1] = stats(5.0, 2.0, 3);
        let total = total(&column);
        let strict = SplitSettings {
            min_data_in_leaf: 4,
            ..settings()
        };
        assert!(best_numeric(&column, &total, 2, &strict).is_none());
    }

    #[test]
    fn rows_count_by_their_share_of_the_hessian() {
        // 30 confidently predicted rows (hessian 0.01 each) against 30
        // uncertain ones: by hessian share the first side holds 3 rows.
        let mut column = [BinStats::default(); BIN_SLOTS];
        column[0] = stats(-0.3, 0.3, 30);
        column[1] = stats(3.0, 5.7, 30);
        let total = total(&column);
        let plain_rows_enough = SplitSettings {
            min_data_in_leaf: 20,
            ..settings()
        };
        assert!(best_numeric(&column, &total, 2, &plain_rows_enough).is_none());
        let small = SplitSettings {
            min_data_in_leaf: 3,
            ..settings()
        };
        assert!(best_numeric(&column, &total, 2, &small).is_some());
    }
}
