//! Cutting raw columns into at most 256 bins each and storing the bin codes
//! column by column as bytes.

use std::collections::HashMap;

use ndarray::ArrayView2;
use rand::seq::index::sample;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// Histogram slots per column: every bin code is a `u8`.
pub(crate) const BIN_SLOTS: usize = 256;

/// The level code in a categorical cell, or `None` when the cell cannot be
/// a level (missing, negative, fractional or beyond `u32`). Training and
/// prediction share this rule so that a code means the same in both.
pub(crate) fn category_code(value: f64) -> Option<u32> {
    if value >= 0.0 && value <= f64::from(u32::MAX) && value.fract() == 0.0 {
        Some(value as u32)
    } else {
        None
    }
}

/// How one column's values map to bins. The last bin of every column holds
/// the values that are missing (numeric) or have no bin of their own
/// (categorical).
#[derive(Debug, Clone)]
pub(crate) enum BinMapper {
    /// Value bin `b` holds `upper_edges[b - 1] < v <= upper_edges[b]`.
    Numeric { upper_edges: Vec<f64> },
    /// Value bin `b` holds the level `levels[b]`.
    Categorical {
        levels: Vec<u32>,
        bin_of_level: HashMap<u32, u8>,
    },
}

impl BinMapper {
    /// Bins holding values, before the missing/other bin.
    pub(crate) fn value_bins(&self) -> usize {
        match self {
            BinMapper::Numeric { upper_edges } => upper_edges.len() + 1,
            BinMapper::Categorical { levels, .. } => levels.len(),
        }
    }

    /// The bin of missing (numeric) or bin-less (categorical) values, always
    /// the last one.
    pub(crate) fn missing_bin(&self) -> u8 {
        self.value_bins() as u8
    }

    pub(crate) fn bin(&self, value: f64) -> u8 {
        match self {
            BinMapper::Numeric { upper_edges } => {
                if value.is_nan() {
                    self.missing_bin()
                } else {
                    count_below(upper_edges, value) as u8
                }
            }
            BinMapper::Categorical { bin_of_level, .. } => category_code(value)
                .and_then(|code| bin_of_level.get(&code).copied())
                .unwrap_or_else(|| self.missing_bin()),
        }
    }

    /// The real threshold of a numeric split that sends bins `..=bin` left:
    /// the bin's upper edge, or `f64::MAX` (every value) for the last value
    /// bin. `f64::MAX` rather than infinity keeps the model valid JSON.
    pub(crate) fn upper_edge(&self, bin: usize) -> f64 {
        match self {
            BinMapper::Numeric { upper_edges } => upper_edges.get(bin).copied().unwrap_or(f64::MAX),
            BinMapper::Categorical { .. } => f64::MAX,
        }
    }

    /// The level code of a categorical value bin.
    pub(crate) fn level(&self, bin: usize) -> u32 {
        match self {
            BinMapper::Categorical { levels, .. } => levels[bin],
            BinMapper::Numeric { .. } => unreachable!("numeric columns have no levels"),
        }
    }

    fn numeric(mut values: Vec<f64>, max_bins: usize) -> BinMapper {
        values.sort_unstable_by(f64::total_cmp);
        let mut distinct: Vec<(f64, usize)> = Vec::new();
        for v in values {
            match distinct.last_mut() {
                Some((last, count)) if *last == v => *count += 1,
                _ => distinct.push((v, 1)),
            }
        }
        BinMapper::Numeric {
            upper_edges: greedy_upper_edges(&distinct, max_bins),
        }
    }

    fn categorical(values: impl Iterator<Item = f64>, max_levels: usize) -> BinMapper {
        let mut counts: HashMap<u32, usize> = HashMap::new();
        for code in values.filter_map(category_code) {
            *counts.entry(code).or_default() += 1;
        }
        let mut by_frequency: Vec<(u32, usize)> = counts.into_iter().collect();
        // Most frequent first; the code breaks ties so the order never
        // depends on the hash map's iteration order.
        by_frequency.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        by_frequency.truncate(max_levels);
        let levels: Vec<u32> = by_frequency.into_iter().map(|(code, _)| code).collect();
        let bin_of_level = levels
            .iter()
            .enumerate()
            .map(|(bin, &code)| (code, bin as u8))
            .collect();
        BinMapper::Categorical {
            levels,
            bin_of_level,
        }
    }
}

/// How many of the sorted `edges` are below `value`: a binary search whose
/// steps compile to conditional moves rather than branches, since the
/// branches of a search over random values mispredict half the time (coding
/// the training matrix is a third of a short fit otherwise).
#[inline]
fn count_below(edges: &[f64], value: f64) -> usize {
    let (mut base, mut len) = (0, edges.len());
    while len > 1 {
        let half = len / 2;
        if edges[base + half - 1] < value {
            base += half;
        }
        len -= half;
    }
    base + usize::from(len == 1 && edges[base] < value)
}

/// Upper bin edges over sorted distinct values with their counts: one bin
/// per value when they fit, otherwise bins of about equal row counts,
/// recomputing the target size as bins are closed so that a few heavy
/// values (say a spike at zero) do not starve the rest. A value that alone
/// fills a bin is kept apart from its lighter neighbours.
fn greedy_upper_edges(distinct: &[(f64, usize)], max_bins: usize) -> Vec<f64> {
    if distinct.len() <= max_bins {
        return distinct
            .windows(2)
            .map(|w| edge_between(w[0].0, w[1].0))
            .collect();
    }
    let mut edges = Vec::with_capacity(max_bins - 1);
    let mut rows_left: usize = distinct.iter().map(|&(_, n)| n).sum();
    let mut bins_left = max_bins;
    let mut in_bin = 0usize;
    for i in 0..distinct.len() - 1 {
        in_bin += distinct[i].1;
        let target = rows_left as f64 / bins_left as f64;
        let next_is_heavy = distinct[i + 1].1 as f64 >= target;
        if in_bin as f64 >= target || next_is_heavy {
            edges.push(edge_between(distinct[i].0, distinct[i + 1].0));
            rows_left -= in_bin;
            bins_left -= 1;
            in_bin = 0;
            if bins_left == 1 {
                break;
            }
        }
    }
    edges
}

/// A finite edge `e` with `low <= e < high`, the midpoint where it is
/// representable.
fn edge_between(low: f64, high: f64) -> f64 {
    let mid = low / 2.0 + high / 2.0;
    if mid.is_finite() && low <= mid && mid < high {
        mid
    } else if low.is_finite() {
        low
    } else {
        f64::MIN
    }
}

/// The training matrix as bin codes, column-major: the histogram pass reads
/// one column at a time, so a leaf's rows hit a single 1-byte-per-row array
/// whose cache lines serve up to 64 neighbouring rows. (A row-major layout
/// was tried: it loads a fresh cache line per row and ran 3x slower at 1M
/// rows.)
pub(crate) struct BinnedData {
    pub(crate) n_rows: usize,
    pub(crate) mappers: Vec<BinMapper>,
    bins: Vec<u8>,
}

/// Rows coded at a time while building [`BinnedData`].
const CODE_BLOCK: usize = 256;

impl BinnedData {
    /// Places bin edges from (a sample of) the rows, then codes every cell.
    /// Both steps run in parallel over columns and sum no floats, so the
    /// result does not depend on the thread count.
    pub(crate) fn build(
        x: ArrayView2<'_, f64>,
        categorical: &[bool],
        max_bins: usize,
        max_levels: usize,
        sample_rows: usize,
        rng: &mut ChaCha8Rng,
    ) -> BinnedData {
        let (n_rows, n_features) = x.dim();
        let sampled: Option<Vec<usize>> = (n_rows > sample_rows).then(|| {
            let mut rows = sample(rng, n_rows, sample_rows).into_vec();
            rows.sort_unstable();
            rows
        });
        let mappers: Vec<BinMapper> = (0..n_features)
            .into_par_iter()
            .map(|f| {
                let column = x.column(f);
                let values: Vec<f64> = match &sampled {
                    Some(rows) => rows.iter().map(|&r| column[r]).collect(),
                    None => column.iter().copied().collect(),
                };
                if categorical[f] {
                    BinMapper::categorical(values.into_iter(), max_levels)
                } else {
                    let present = values.into_iter().filter(|v| !v.is_nan()).collect();
                    BinMapper::numeric(present, max_bins)
                }
            })
            .collect();
        let mut bins = vec![0u8; n_rows * n_features];
        if n_rows > 0 {
            // One group of columns per thread, each walking the rows in
            // blocks so that a block of (row-major) input stays in cache
            // while all the group's columns are coded from it.
            let group = n_features.div_ceil(rayon::current_num_threads()).max(1);
            bins.par_chunks_mut(n_rows * group)
                .enumerate()
                .for_each(|(index, codes)| {
                    let first = index * group;
                    let features = first..first + codes.len() / n_rows;
                    for start in (0..n_rows).step_by(CODE_BLOCK) {
                        let end = (start + CODE_BLOCK).min(n_rows);
                        for (local, f) in features.clone().enumerate() {
                            let column = &mut codes[local * n_rows..(local + 1) * n_rows];
                            let mapper = &mappers[f];
                            for (row, code) in (start..end).zip(&mut column[start..end]) {
                                *code = mapper.bin(x[[row, f]]);
                            }
                        }
                    }
                });
        }
        BinnedData {
            n_rows,
            mappers,
            bins,
        }
    }

    pub(crate) fn n_features(&self) -> usize {
        self.mappers.len()
    }

    /// Bin codes of column `feature`, one per row.
    #[inline]
    pub(crate) fn column(&self, feature: usize) -> &[u8] {
        &self.bins[feature * self.n_rows..(feature + 1) * self.n_rows]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_below_matches_a_linear_count() {
        for n in 0..40 {
            let edges: Vec<f64> = (0..n).map(|i| f64::from(i) * 2.0).collect();
            for v in -2..(2 * n + 2) {
                let v = f64::from(v) - 0.5;
                let expected = edges.iter().filter(|&&e| e < v).count();
                assert_eq!(count_below(&edges, v), expected, "n {n} v {v}");
                let on_edge = f64::from(v as i32);
                let expected = edges.iter().filter(|&&e| e < on_edge).count();
                assert_eq!(count_below(&edges, on_edge), expected);
            }
        }
    }

    #[test]
    fn few_distinct_values_get_one_bin_each() {
        let distinct: Vec<(f64, usize)> = vec![(1.0, 5), (2.0, 1), (4.0, 7)];
        assert_eq!(greedy_upper_edges(&distinct, 255), vec![1.5, 3.0]);
    }

    #[test]
    fn many_values_respect_the_bin_cap_and_isolate_a_spike() {
        let mut distinct: Vec<(f64, usize)> = (0..1000).map(|i| (f64::from(i), 1)).collect();
        distinct[500].1 = 5000;
        let edges = greedy_upper_edges(&distinct, 16);
        assert!(edges.len() <= 15);
        assert!(edges.windows(2).all(|w| w[0] < w[1]));
        let mapper = BinMapper::Numeric { upper_edges: edges };
        let spike = mapper.bin(500.0);
        assert_ne!(mapper.bin(499.0), spike);
        assert_ne!(mapper.bin(501.0), spike);
    }

    #[test]
    fn edges_stay_finite_next_to_infinities() {
        assert_eq!(edge_between(f64::NEG_INFINITY, 0.0), f64::MIN);
        assert_eq!(edge_between(1.0, f64::INFINITY), 1.0);
        assert_eq!(edge_between(1.0, 2.0), 1.5);
    }

    #[test]
    fn categorical_bins_keep_the_most_frequent_levels() {
        let values = [3.0, 3.0, 3.0, 7.0, 7.0, 1.0, f64::NAN, -1.0, 2.5];
        let mapper = BinMapper::categorical(values.into_iter(), 2);
        assert_eq!(mapper.value_bins(), 2);
        assert_eq!(mapper.bin(3.0), 0);
        assert_eq!(mapper.bin(7.0), 1);
        for other in [1.0, f64::NAN, -1.0, 2.5, 99.0] {
            assert_eq!(mapper.bin(other), mapper.missing_bin());
        }
    }
}
