//! QuickScorer (Lucchese et al., SIGIR 2015): the forest scored feature by
//! feature instead of tree by tree, for large batches.
//!
//! Each tree keeps a bit vector with one bit per leaf, leaves numbered left
//! to right, all set at the start of a row. A split whose test is false for
//! the row (the row goes right) clears the bits of the leaves in its left
//! subtree. Once every false split has been applied, the leaf the row
//! reaches is the lowest set bit. The false splits are found per column
//! without walking any tree: a column's numeric thresholds across the whole
//! forest are sorted, and a value `v` makes exactly those with `threshold <
//! v` false, a prefix of the sorted list. So a row costs one sequential
//! scan per column plus one `AND` per false split, with no data-dependent
//! branch per node: the tree walk's cost was branch mispredictions and
//! dependent loads, one chain per tree and row.
//!
//! The result is bit-identical to the walk: the same comparisons
//! (`value <= threshold` goes left, a missing value goes where the node's
//! `default_left` says, a categorical node sends its listed levels left and
//! every other code right) pick the same leaf, and the margins are summed
//! in the same tree order. Trees with more than 64 leaves do not fit a
//! `u64` and keep the walk.

use std::sync::Arc;

use super::binning::category_code;
use super::tree::Tree;
use crate::models::prepared::Prepared;

/// A model's QuickScorer, prepared once on first use and shared by every
/// prediction after it; `None` inside when the trees do not fit it. It
/// compares equal to any other and clones empty, so it never changes what
/// a model is.
#[derive(Default, Clone, PartialEq, Debug)]
pub(crate) struct ScorerCache(Prepared<Option<Arc<QuickScorer>>>);

impl ScorerCache {
    /// The scorer for `trees`, prepared on the first call.
    pub(crate) fn get(&self, trees: &[Tree], categorical: &[bool]) -> Option<&QuickScorer> {
        self.0
            .get_or_init(|| QuickScorer::new(trees, categorical).map(Arc::new))
            .as_deref()
            .filter(|q| q.leaf_offsets.len() == trees.len())
    }
}

/// The splits on one numeric column, sorted by threshold, as parallel
/// arrays (the scan reads only `thresholds` until it stops).
#[derive(Debug, Default)]
struct NumericTests {
    thresholds: Vec<f64>,
    trees: Vec<u32>,
    masks: Vec<u64>,
    /// The splits that send a missing value right.
    missing_right: Vec<(u32, u64)>,
}

/// The splits on one categorical column: for each level code, those that
/// send it right; codes above the listed ones (and missing or invalid
/// codes) go right at every split on the column.
#[derive(Debug, Default)]
struct CategoricalTests {
    by_code: Vec<Vec<(u32, u64)>>,
    every: Vec<(u32, u64)>,
}

/// A forest prepared for QuickScorer.
#[derive(Debug)]
pub(crate) struct QuickScorer {
    numeric: Vec<(usize, NumericTests)>,
    categorical: Vec<(usize, CategoricalTests)>,
    /// Leaf values, tree by tree, leaves left to right.
    leaf_values: Vec<f64>,
    /// Where each tree's leaves start in `leaf_values`.
    leaf_offsets: Vec<usize>,
}

/// Most leaves a tree may have for QuickScorer (one bit each in a `u64`).
const MAX_LEAVES: usize = 64;

/// Rows scored together.
const LANES: usize = 8;

/// Numbers the leaves of `tree` left to right: `leaf_index[node]` for
/// leaves, and for every node the range of leaf numbers below it.
fn leaf_ranges(tree: &Tree) -> (Vec<(u32, u32)>, Vec<usize>) {
    let n = tree.nodes.len();
    let mut range = vec![(0u32, 0u32); n];
    let mut leaves = Vec::new();
    // Depth-first, left child first; an explicit stack (trees are validated
    // acyclic, depth at most 128).
    let mut stack = vec![(0usize, false)];
    while let Some((index, children_done)) = stack.pop() {
        let node = &tree.nodes[index];
        if node.is_leaf() {
            let k = leaves.len() as u32;
            range[index] = (k, k + 1);
            leaves.push(index);
        } else if children_done {
            range[index] = (range[node.left as usize].0, range[node.right as usize].1);
        } else {
            stack.push((index, true));
            stack.push((node.right as usize, false));
            stack.push((node.left as usize, false));
        }
    }
    (range, leaves)
}

/// The bits of leaves `from..to` cleared, all others set.
fn clearing(from: u32, to: u32) -> u64 {
    let width = to - from;
    let ones = if width >= 64 {
        u64::MAX
    } else {
        (1u64 << width) - 1
    };
    !(ones << from)
}

impl QuickScorer {
    /// Prepares `trees` over `categorical.len()` columns, or `None` when a
    /// tree has more than 64 leaves.
    pub(crate) fn new(trees: &[Tree], categorical: &[bool]) -> Option<QuickScorer> {
        let width = categorical.len();
        let mut numeric: Vec<Vec<(f64, u32, u64)>> = vec![Vec::new(); width];
        let mut missing_right: Vec<Vec<(u32, u64)>> = vec![Vec::new(); width];
        // Per categorical column: (tree, mask, left levels) of every split.
        let mut cat_splits: Vec<Vec<(u32, u64, &[u32])>> = vec![Vec::new(); width];
        let mut leaf_values = Vec::new();
        let mut leaf_offsets = Vec::with_capacity(trees.len());
        for (t, tree) in trees.iter().enumerate() {
            let (range, leaves) = leaf_ranges(tree);
            if leaves.len() > MAX_LEAVES {
                return None;
            }
            leaf_offsets.push(leaf_values.len());
            leaf_values.extend(leaves.iter().map(|&i| tree.nodes[i].value));
            let t = t as u32;
            for node in tree.nodes.iter().filter(|n| !n.is_leaf()) {
                let (from, to) = range[node.left as usize];
                let mask = clearing(from, to);
                let f = node.feature as usize;
                if node.is_categorical() {
                    let start = node.cat_start as usize;
                    let levels = &tree.cat_levels[start..start + node.cat_len as usize];
                    cat_splits[f].push((t, mask, levels));
                } else {
                    numeric[f].push((node.threshold, t, mask));
                    if !node.default_left {
                        missing_right[f].push((t, mask));
                    }
                }
            }
        }
        let numeric = numeric
            .into_iter()
            .zip(missing_right)
            .enumerate()
            .filter(|(_, (tests, _))| !tests.is_empty())
            .map(|(f, (mut tests, missing_right))| {
                // Ties keep tree order, so the scan is deterministic.
                tests.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                (
                    f,
                    NumericTests {
                        thresholds: tests.iter().map(|t| t.0).collect(),
                        trees: tests.iter().map(|t| t.1).collect(),
                        masks: tests.iter().map(|t| t.2).collect(),
                        missing_right,
                    },
                )
            })
            .collect();
        let categorical = cat_splits
            .into_iter()
            .enumerate()
            .filter(|(_, splits)| !splits.is_empty())
            .map(|(f, splits)| {
                let codes = splits
                    .iter()
                    .flat_map(|(_, _, levels)| levels.last().copied())
                    .max()
                    .map_or(0, |m| m as usize + 1);
                let by_code = (0..codes as u32)
                    .map(|code| {
                        splits
                            .iter()
                            .filter(|(_, _, levels)| levels.binary_search(&code).is_err())
                            .map(|&(t, mask, _)| (t, mask))
                            .collect()
                    })
                    .collect();
                let every = splits.iter().map(|&(t, mask, _)| (t, mask)).collect();
                (f, CategoricalTests { by_code, every })
            })
            .collect();
        Some(QuickScorer {
            numeric,
            categorical,
            leaf_values,
            leaf_offsets,
        })
    }

    /// Adds every tree's output for each row of `values` (row-major,
    /// `width` values a row) to `margins`, in tree order; `bits` is scratch
    /// space.
    ///
    /// Rows go [`LANES`] at a time: each tree keeps one bit vector per lane,
    /// and a column's sorted thresholds are scanned once for the group, up
    /// to the largest of its values, each split clearing the lanes whose
    /// value exceeds its threshold (a compare and a blend the compiler
    /// vectorizes, with no branch per row).
    pub(crate) fn add_margins(
        &self,
        values: &[f64],
        width: usize,
        margins: &mut [f64],
        bits: &mut Vec<u64>,
    ) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, checked just above.
            return unsafe { self.add_margins_avx2(values, width, margins, bits) };
        }
        self.add_margins_lanes(values, width, margins, bits);
    }

    /// [`QuickScorer::add_margins`] compiled for AVX2: four lanes a compare
    /// instead of two. The same code, so the same results.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn add_margins_avx2(
        &self,
        values: &[f64],
        width: usize,
        margins: &mut [f64],
        bits: &mut Vec<u64>,
    ) {
        self.add_margins_lanes(values, width, margins, bits);
    }

    #[inline(always)]
    fn add_margins_lanes(
        &self,
        values: &[f64],
        width: usize,
        margins: &mut [f64],
        bits: &mut Vec<u64>,
    ) {
        let trees = self.leaf_offsets.len();
        for (rows, margins) in values.chunks(width * LANES).zip(margins.chunks_mut(LANES)) {
            bits.clear();
            bits.resize(trees * LANES, u64::MAX);
            let n = margins.len();
            for (f, tests) in &self.numeric {
                // Missing values never pass a threshold; lanes past `n`
                // hold -∞, which passes none either.
                let mut v = [f64::NEG_INFINITY; LANES];
                let mut missing = [false; LANES];
                for l in 0..n {
                    let x = rows[l * width + f];
                    if x.is_nan() {
                        missing[l] = true;
                    } else {
                        v[l] = x;
                    }
                }
                for l in (0..n).filter(|&l| missing[l]) {
                    for &(t, mask) in &tests.missing_right {
                        bits[t as usize * LANES + l] &= mask;
                    }
                }
                let highest = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                for (k, &threshold) in tests.thresholds.iter().enumerate() {
                    if threshold >= highest {
                        break;
                    }
                    let t = tests.trees[k] as usize * LANES;
                    let mask = tests.masks[k];
                    let lanes: &mut [u64; LANES] = (&mut bits[t..t + LANES])
                        .try_into()
                        .expect("LANES words a tree");
                    for l in 0..LANES {
                        lanes[l] &= if threshold < v[l] { mask } else { u64::MAX };
                    }
                }
            }
            for (f, tests) in &self.categorical {
                for l in 0..n {
                    let false_splits = match category_code(rows[l * width + f]) {
                        Some(code) if (code as usize) < tests.by_code.len() => {
                            &tests.by_code[code as usize]
                        }
                        _ => &tests.every,
                    };
                    for &(t, mask) in false_splits {
                        bits[t as usize * LANES + l] &= mask;
                    }
                }
            }
            for (l, margin) in margins.iter_mut().enumerate() {
                for (t, offset) in self.leaf_offsets.iter().enumerate() {
                    *margin +=
                        self.leaf_values[offset + bits[t * LANES + l].trailing_zeros() as usize];
                }
            }
        }
    }
}
