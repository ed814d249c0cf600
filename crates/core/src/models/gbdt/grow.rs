//! Growing one tree leaf-wise on the binned data.

use std::ops::Range;

use rayon::prelude::*;

use super::binning::BinnedData;
use super::histogram::{BinStats, GradHess, Histogram};
use super::params::{GbdtParams, MAX_TREE_DEPTH};
use super::split::{best_split, BinSet, SplitCandidate, SplitRule, SplitSettings};
use super::tree::{Node, Tree};

/// Leaves with at least this many rows gather their gradients and
/// partition their rows in parallel, in fixed-size blocks.
const PARALLEL_MIN_ROWS: usize = 32 * 1024;
/// Block size of the parallel row passes. It is a constant, not derived from
/// the thread count, so block boundaries (and results) never change.
const ROW_BLOCK: usize = 16 * 1024;

/// A split in bin codes, to route training rows that were left out of the
/// tree's bag (out-of-bag rows still need their scores updated).
#[derive(Debug, Clone)]
pub(crate) struct BinNode {
    feature: usize,
    left_bins: BinSet,
    left: usize,
    right: usize,
}

/// A grown tree, plus what updating the training scores needs.
pub(crate) struct GrownTree {
    pub(crate) tree: Tree,
    /// For each leaf, its rows' positions in [`TreeGrower::rows`] and its
    /// value.
    pub(crate) leaves: Vec<(Range<usize>, f64)>,
    /// The splits in bin codes, indexed like `tree.nodes` (leaves hold
    /// `None`).
    pub(crate) bin_nodes: Vec<Option<BinNode>>,
}

impl GrownTree {
    /// The value of the leaf a training row lands in, read from its bins.
    pub(crate) fn value_of_row(&self, data: &BinnedData, row: usize) -> f64 {
        let mut index = 0;
        while let Some(split) = &self.bin_nodes[index] {
            index = if split.left_bins.contains(data.column(split.feature)[row]) {
                split.left
            } else {
                split.right
            };
        }
        self.tree.nodes[index].value
    }
}

/// A leaf still open for splitting.
struct OpenLeaf {
    rows: Range<usize>,
    depth: usize,
    node: usize,
    total: BinStats,
    histogram: Option<Histogram>,
    best: Option<SplitCandidate>,
}

/// Grows trees on one binned data set, reusing its buffers from tree to
/// tree so that no per-node allocation happens after the first tree.
pub(crate) struct TreeGrower<'a> {
    data: &'a BinnedData,
    settings: SplitSettings,
    max_leaves: usize,
    max_depth: usize,
    lambda_l2: f64,
    learning_rate: f64,
    /// Row indices grouped by leaf: each open leaf owns a contiguous range.
    rows: Vec<u32>,
    scratch: Vec<u32>,
    /// Gradients of a leaf's rows in the order of its row range, so the
    /// histogram pass reads them sequentially.
    ordered: Vec<GradHess>,
    spare_histograms: Vec<Histogram>,
}

impl<'a> TreeGrower<'a> {
    pub(crate) fn new(data: &'a BinnedData, params: &GbdtParams) -> TreeGrower<'a> {
        TreeGrower {
            data,
            settings: SplitSettings::new(params),
            max_leaves: params.max_leaves,
            max_depth: if params.max_depth == 0 {
                MAX_TREE_DEPTH
            } else {
                params.max_depth
            },
            lambda_l2: params.lambda_l2,
            learning_rate: params.learning_rate,
            rows: Vec::with_capacity(data.n_rows),
            scratch: vec![0; data.n_rows],
            ordered: Vec::with_capacity(data.n_rows),
            spare_histograms: Vec::new(),
        }
    }

    /// Row indices grouped by leaf, as left by the last [`Self::grow`].
    pub(crate) fn rows(&self) -> &[u32] {
        &self.rows
    }

    /// Grows one tree on the rows in `bag` (all rows when `None`, sorted
    /// otherwise) with split candidates from `features` (sorted).
    pub(crate) fn grow(
        &mut self,
        gradients: &[GradHess],
        bag: Option<&[u32]>,
        features: &[usize],
    ) -> GrownTree {
        let mut used = vec![false; self.data.n_features()];
        features.iter().for_each(|&f| used[f] = true);

        self.rows.clear();
        match bag {
            Some(bag) => self.rows.extend_from_slice(bag),
            None => self.rows.extend(0..self.data.n_rows as u32),
        }
        let total = self.sum(gradients, bag);

        let mut tree = Tree {
            nodes: vec![Node::leaf(0.0, total.hess, total.count)],
            cat_levels: Vec::new(),
        };
        let mut bin_nodes = vec![None];
        let mut open = vec![OpenLeaf {
            rows: 0..self.rows.len(),
            depth: 0,
            node: 0,
            total,
            histogram: None,
            best: None,
        }];
        if self.splittable(&open[0]) {
            let mut histogram = self.take_histogram();
            match bag {
                Some(_) => {
                    self.gather(gradients, 0..self.rows.len());
                    histogram.build(
                        self.data,
                        &used,
                        Some(&self.rows),
                        &self.ordered,
                        &mut self.spare_histograms,
                    );
                }
                None => histogram.build(
                    self.data,
                    &used,
                    None,
                    gradients,
                    &mut self.spare_histograms,
                ),
            }
            open[0].best = best_split(
                &histogram,
                &total,
                &self.data.mappers,
                features,
                &self.settings,
            );
            open[0].histogram = Some(histogram);
        }

        while open.len() < self.max_leaves {
            // The leaf whose split gains most; the first one on ties.
            let chosen = open
                .iter()
                .enumerate()
                .filter_map(|(i, leaf)| leaf.best.as_ref().map(|b| (i, b.gain)))
                .fold(None, |best: Option<(usize, f64)>, (i, gain)| match best {
                    Some((_, g)) if g >= gain => best,
                    _ => Some((i, gain)),
                });
            let Some((index, _)) = chosen else { break };
            let right = self.split_leaf(
                &mut open[index],
                &mut tree,
                &mut bin_nodes,
                gradients,
                &used,
                features,
            );
            open.push(right);
        }

        let mut leaves = Vec::with_capacity(open.len());
        for leaf in open {
            if let Some(histogram) = leaf.histogram {
                self.spare_histograms.push(histogram);
            }
            let value = self.leaf_value(&leaf.total);
            tree.nodes[leaf.node] = Node::leaf(value, leaf.total.hess, leaf.total.count);
            leaves.push((leaf.rows, value));
        }
        GrownTree {
            tree,
            leaves,
            bin_nodes,
        }
    }

    fn leaf_value(&self, total: &BinStats) -> f64 {
        -total.grad / (total.hess + self.lambda_l2) * self.learning_rate
    }

    fn splittable(&self, leaf: &OpenLeaf) -> bool {
        leaf.depth < self.max_depth && self.settings.can_split(&leaf.total)
    }

    fn take_histogram(&mut self) -> Histogram {
        self.spare_histograms
            .pop()
            .unwrap_or_else(|| Histogram::new(self.data.n_features()))
    }

    /// Gradient sums over the root's rows, in row order.
    fn sum(&self, gradients: &[GradHess], bag: Option<&[u32]>) -> BinStats {
        let mut total = BinStats::default();
        let mut add = |gh: &GradHess| {
            total.grad += f64::from(gh.grad);
            total.hess += f64::from(gh.hess);
            total.count += 1;
        };
        match bag {
            Some(bag) => bag.iter().for_each(|&r| add(&gradients[r as usize])),
            None => gradients.iter().for_each(add),
        }
        total
    }

    /// Copies the gradients of the rows in `range` into `self.ordered`.
    fn gather(&mut self, gradients: &[GradHess], range: Range<usize>) {
        let rows = &self.rows[range];
        if rows.len() >= PARALLEL_MIN_ROWS {
            rows.par_iter()
                .with_min_len(ROW_BLOCK)
                .map(|&r| gradients[r as usize])
                .collect_into_vec(&mut self.ordered);
        } else {
            self.ordered.clear();
            self.ordered
                .extend(rows.iter().map(|&r| gradients[r as usize]));
        }
    }

    /// Splits `leaf` by its best split: partitions its rows, records the
    /// split in the tree, turns `leaf` into the left child and returns the
    /// right one, each with its histogram and best split when it can split.
    fn split_leaf(
        &mut self,
        leaf: &mut OpenLeaf,
        tree: &mut Tree,
        bin_nodes: &mut Vec<Option<BinNode>>,
        gradients: &[GradHess],
        used: &[bool],
        features: &[usize],
    ) -> OpenLeaf {
        let split = leaf
            .best
            .take()
            .expect("only leaves with a split are chosen");
        let middle = leaf.rows.start
            + partition(
                &mut self.rows[leaf.rows.clone()],
                &mut self.scratch,
                self.data,
                split.feature,
                &split.left_bins,
            );

        let (left_node, right_node) = (tree.nodes.len(), tree.nodes.len() + 1);
        let value = self.leaf_value(&leaf.total);
        tree.nodes[leaf.node] =
            self.split_node(&split, value, leaf.total, left_node, right_node, tree);
        tree.nodes
            .push(Node::leaf(0.0, split.left.hess, split.left.count));
        tree.nodes
            .push(Node::leaf(0.0, split.right.hess, split.right.count));
        bin_nodes[leaf.node] = Some(BinNode {
            feature: split.feature,
            left_bins: split.left_bins,
            left: left_node,
            right: right_node,
        });
        bin_nodes.extend([None, None]);

        let parent_histogram = leaf.histogram.take();
        let mut right = OpenLeaf {
            rows: middle..leaf.rows.end,
            depth: leaf.depth + 1,
            node: right_node,
            total: split.right,
            histogram: None,
            best: None,
        };
        leaf.rows = leaf.rows.start..middle;
        leaf.depth += 1;
        leaf.node = left_node;
        leaf.total = split.left;

        let (left_splits, right_splits) = (self.splittable(leaf), self.splittable(&right));
        let Some(mut larger_histogram) = parent_histogram else {
            return right;
        };
        if !left_splits && !right_splits {
            self.spare_histograms.push(larger_histogram);
            return right;
        }
        // Build the smaller child from its rows; the larger is the parent
        // minus the smaller.
        let left_is_smaller = leaf.total.count <= right.total.count;
        let (smaller, larger) = if left_is_smaller {
            (&mut *leaf, &mut right)
        } else {
            (&mut right, &mut *leaf)
        };
        let mut smaller_histogram = self.take_histogram();
        self.gather(gradients, smaller.rows.clone());
        smaller_histogram.build(
            self.data,
            used,
            Some(&self.rows[smaller.rows.clone()]),
            &self.ordered,
            &mut self.spare_histograms,
        );
        larger_histogram.subtract(&smaller_histogram, used);
        smaller.histogram = Some(smaller_histogram);
        larger.histogram = Some(larger_histogram);

        for child in [&mut *leaf, &mut right] {
            if self.splittable(child) {
                let histogram = child.histogram.as_ref().expect("built above");
                child.best = best_split(
                    histogram,
                    &child.total,
                    &self.data.mappers,
                    features,
                    &self.settings,
                );
            }
            if child.best.is_none() {
                if let Some(histogram) = child.histogram.take() {
                    self.spare_histograms.push(histogram);
                }
            }
        }
        right
    }

    /// The tree node of a split, with its threshold or levels in raw values.
    fn split_node(
        &self,
        split: &SplitCandidate,
        value: f64,
        total: BinStats,
        left: usize,
        right: usize,
        tree: &mut Tree,
    ) -> Node {
        let mapper = &self.data.mappers[split.feature];
        let mut node = Node {
            feature: split.feature as u32,
            left: left as u32,
            right: right as u32,
            gain: split.gain,
            ..Node::leaf(value, total.hess, total.count)
        };
        match &split.rule {
            SplitRule::Numeric {
                threshold_bin,
                missing_left,
            } => {
                node.threshold = mapper.upper_edge(usize::from(*threshold_bin));
                node.default_left = *missing_left;
            }
            SplitRule::Categorical { left_bins } => {
                let mut levels: Vec<u32> = left_bins
                    .iter()
                    .map(|&bin| mapper.level(usize::from(bin)))
                    .collect();
                levels.sort_unstable();
                node.cat_start = tree.cat_levels.len() as u32;
                node.cat_len = levels.len() as u32;
                tree.cat_levels.extend(levels);
            }
        }
        node
    }
}

/// Stable partition of `rows` into those whose bin code is in `left_bins`
/// and the rest; returns the number going left. Stability keeps each leaf's
/// rows ascending, which keeps the histogram pass's reads of the
/// row-major codes moving forward through memory.
fn partition(
    rows: &mut [u32],
    scratch: &mut [u32],
    data: &BinnedData,
    feature: usize,
    left_bins: &BinSet,
) -> usize {
    if rows.len() < PARALLEL_MIN_ROWS {
        return partition_block(rows, scratch, data, feature, left_bins);
    }
    // Each block partitions itself; then the left parts and the right parts
    // are concatenated in block order, which is the sequential result.
    let scratch = &mut scratch[..rows.len()];
    let lefts: Vec<usize> = rows
        .par_chunks_mut(ROW_BLOCK)
        .zip(scratch.par_chunks_mut(ROW_BLOCK))
        .map(|(block, spare)| partition_block(block, spare, data, feature, left_bins))
        .collect();
    scratch.copy_from_slice(rows);
    let n_left: usize = lefts.iter().sum();
    let (mut at_left, mut at_right) = (0, n_left);
    for (block, &n) in scratch.chunks(ROW_BLOCK).zip(&lefts) {
        rows[at_left..at_left + n].copy_from_slice(&block[..n]);
        rows[at_right..at_right + block.len() - n].copy_from_slice(&block[n..]);
        at_left += n;
        at_right += block.len() - n;
    }
    n_left
}

fn partition_block(
    rows: &mut [u32],
    scratch: &mut [u32],
    data: &BinnedData,
    feature: usize,
    left_bins: &BinSet,
) -> usize {
    let codes = data.column(feature);
    let (mut n_left, mut n_right) = (0, 0);
    for i in 0..rows.len() {
        let row = rows[i];
        // Write to both sides and advance one: no unpredictable branch.
        let goes_left = left_bins.contains(codes[row as usize]);
        rows[n_left] = row;
        scratch[n_right] = row;
        n_left += usize::from(goes_left);
        n_right += usize::from(!goes_left);
    }
    rows[n_left..].copy_from_slice(&scratch[..n_right]);
    n_left
}

#[cfg(test)]
mod tests {
    use super::*;

    use ndarray::Array2;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn partition_is_stable_and_matches_in_parallel() {
        let n = 3 * PARALLEL_MIN_ROWS + 17;
        // One column holding the values 0..251, one bin per value.
        let x = Array2::from_shape_fn((n, 1), |(i, _)| ((i * 7919) % 251) as f64);
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let data = BinnedData::build(x.view(), &[false], 255, 1, n, &mut rng);
        let codes = data.column(0);
        assert!((0..n).all(|r| f64::from(codes[r]) == x[[r, 0]]));
        let mut left_bins = BinSet::default();
        (0..100).for_each(|b| left_bins.insert(b));
        let mut rows: Vec<u32> = (0..n as u32).collect();
        let mut scratch = vec![0; n];
        let n_left = partition(&mut rows, &mut scratch, &data, 0, &left_bins);
        let expected_left: Vec<u32> = (0..n as u32).filter(|&r| codes[r as usize] < 100).collect();
        assert_eq!(n_left, expected_left.len());
        assert_eq!(&rows[..n_left], &expected_left[..]);
        assert!(rows[n_left..].windows(2).all(|w| w[0] < w[1]));
        assert!(rows[n_left..].iter().all(|&r| codes[r as usize] >= 100));
    }
}
