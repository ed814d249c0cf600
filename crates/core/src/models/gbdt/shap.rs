//! Exact per-row explanations: path-dependent TreeSHAP (Lundberg, Erion &
//! Lee 2018, "Consistent individualized feature attribution for tree
//! ensembles", Algorithm 2), following the reference implementation in
//! XGBoost and `shap`.
//!
//! For a row `x` and a set `S` of known columns, the value of `S` is the
//! tree's output when the splits on columns in `S` follow `x` and the other
//! splits send the row down both branches, weighted by the share of the
//! node's cover (training hessian) that went each way. The contributions
//! are the exact Shapley values of that game, found in
//! `O(leaves · depth²)` per tree instead of `2^columns`.

use ndarray::{Array2, ArrayView2};

use super::predict::for_row_blocks;
use super::tree::Tree;
use super::{GbdtModel, Result};

/// Marks the path's root element, which stands for no column.
const NO_FEATURE: usize = usize::MAX;

/// One column on the path from the root to the current node.
#[derive(Debug, Clone, Copy)]
struct PathElement {
    feature: usize,
    /// Share of the cover that follows this path when the column is unknown.
    zero_fraction: f64,
    /// Whether the row itself follows this path (1) or not (0).
    one_fraction: f64,
    /// Weight of the subsets of the path's columns of each size.
    weight: f64,
}

impl Default for PathElement {
    fn default() -> Self {
        PathElement {
            feature: NO_FEATURE,
            zero_fraction: 0.0,
            one_fraction: 0.0,
            weight: 0.0,
        }
    }
}

/// Adds a column to the path and updates the subset weights.
fn extend(
    path: &mut [PathElement],
    depth: usize,
    zero_fraction: f64,
    one_fraction: f64,
    feature: usize,
) {
    path[depth] = PathElement {
        feature,
        zero_fraction,
        one_fraction,
        weight: if depth == 0 { 1.0 } else { 0.0 },
    };
    let scale = (depth + 1) as f64;
    for i in (0..depth).rev() {
        path[i + 1].weight += one_fraction * path[i].weight * (i + 1) as f64 / scale;
        path[i].weight = zero_fraction * path[i].weight * (depth - i) as f64 / scale;
    }
}

/// Removes the column at `index` from the path, undoing its `extend`.
fn unwind(path: &mut [PathElement], depth: usize, index: usize) {
    let PathElement {
        zero_fraction,
        one_fraction,
        ..
    } = path[index];
    let scale = (depth + 1) as f64;
    let mut next_one_portion = path[depth].weight;
    for i in (0..depth).rev() {
        if one_fraction != 0.0 {
            let kept = path[i].weight;
            path[i].weight = next_one_portion * scale / ((i + 1) as f64 * one_fraction);
            next_one_portion = kept - path[i].weight * zero_fraction * (depth - i) as f64 / scale;
        } else {
            path[i].weight = path[i].weight * scale / (zero_fraction * (depth - i) as f64);
        }
    }
    for i in index..depth {
        path[i].feature = path[i + 1].feature;
        path[i].zero_fraction = path[i + 1].zero_fraction;
        path[i].one_fraction = path[i + 1].one_fraction;
    }
}

/// The total subset weight the path would have without the column at
/// `index`, without changing the path.
fn unwound_sum(path: &[PathElement], depth: usize, index: usize) -> f64 {
    let PathElement {
        zero_fraction,
        one_fraction,
        ..
    } = path[index];
    let scale = (depth + 1) as f64;
    let mut next_one_portion = path[depth].weight;
    let mut total = 0.0;
    for i in (0..depth).rev() {
        if one_fraction != 0.0 {
            let part = next_one_portion * scale / ((i + 1) as f64 * one_fraction);
            total += part;
            next_one_portion = path[i].weight - part * zero_fraction * ((depth - i) as f64 / scale);
        } else {
            total += (path[i].weight / zero_fraction) / ((depth - i) as f64 / scale);
        }
    }
    total
}

/// One tree's walk for one row. Each recursion level keeps its own copy of
/// the path in `buffer`, right after its parent's, so going back up needs
/// no undo.
struct Walk<'a> {
    tree: &'a Tree,
    row: &'a [f64],
    phi: &'a mut [f64],
    buffer: &'a mut [PathElement],
}

impl Walk<'_> {
    #[allow(clippy::too_many_arguments)]
    fn visit(
        &mut self,
        node_index: usize,
        parent_start: usize,
        depth: usize,
        zero_fraction: f64,
        one_fraction: f64,
        feature: usize,
    ) {
        let start = parent_start + depth + 1;
        self.buffer
            .copy_within(parent_start..parent_start + depth + 1, start);
        let path = &mut self.buffer[start..];
        extend(path, depth, zero_fraction, one_fraction, feature);

        let node = &self.tree.nodes[node_index];
        if node.is_leaf() {
            for i in 1..=depth {
                let element = path[i];
                let weight = unwound_sum(path, depth, i);
                self.phi[element.feature] +=
                    weight * (element.one_fraction - element.zero_fraction) * node.value;
            }
            return;
        }

        let split_feature = node.feature as usize;
        let (hot, cold) = if self.tree.goes_left(node, self.row[split_feature]) {
            (node.left as usize, node.right as usize)
        } else {
            (node.right as usize, node.left as usize)
        };
        let hot_zero = self.tree.nodes[hot].cover / node.cover;
        let cold_zero = self.tree.nodes[cold].cover / node.cover;

        // A column met again on the path: undo its earlier split so both
        // combine into one element.
        let mut depth = depth;
        let (mut incoming_zero, mut incoming_one) = (1.0, 1.0);
        if let Some(index) = (1..=depth).find(|&i| path[i].feature == split_feature) {
            incoming_zero = path[index].zero_fraction;
            incoming_one = path[index].one_fraction;
            unwind(path, depth, index);
            depth -= 1;
        }
        self.visit(
            hot,
            start,
            depth + 1,
            hot_zero * incoming_zero,
            incoming_one,
            split_feature,
        );
        self.visit(
            cold,
            start,
            depth + 1,
            cold_zero * incoming_zero,
            0.0,
            split_feature,
        );
    }
}

/// Path elements needed for a tree of depth `depth`: one path copy per
/// level, each one longer than its parent's.
fn buffer_len(depth: usize) -> usize {
    (depth + 3) * (depth + 4) / 2
}

impl GbdtModel {
    /// The expected margin over the training data as TreeSHAP sees it (the
    /// cover-weighted mean of every tree plus the base score): with the
    /// [contributions](Self::contributions) it adds up to each row's
    /// margin.
    pub fn base_value(&self) -> f64 {
        self.base_score + self.trees.iter().map(Tree::expected_value).sum::<f64>()
    }

    /// Exact TreeSHAP contributions to the margin (log-odds), one row per
    /// row of `x` and one column per input: `base_value() + Σ row ==
    /// predict_raw(x)` up to rounding. A missing value's effect is credited
    /// to its column like any other value.
    pub fn contributions(&self, x: ArrayView2<'_, f64>) -> Result<Array2<f64>> {
        self.check_width(x)?;
        Ok(tree_contributions(&self.trees, x))
    }
}

/// Exact TreeSHAP contributions of a sum of trees (no base score), one row
/// per row of `x` and one column per column: with the trees' expected
/// values they add up to the trees' summed output. The single decision tree
/// family explains itself through this too.
pub(crate) fn tree_contributions(trees: &[Tree], x: ArrayView2<'_, f64>) -> Array2<f64> {
    let width = x.ncols();
    let mut phi = vec![0.0; x.nrows() * width];
    if width == 0 {
        return Array2::zeros((x.nrows(), 0));
    }
    let deepest = trees.iter().map(Tree::depth).max().unwrap_or(0);
    for_row_blocks(x, &mut phi, width, |values, phi| {
        let mut buffer = vec![PathElement::default(); buffer_len(deepest)];
        for (row, phi) in values.chunks_exact(width).zip(phi.chunks_exact_mut(width)) {
            for tree in trees {
                Walk {
                    tree,
                    row,
                    phi,
                    buffer: &mut buffer,
                }
                .visit(0, 0, 0, 1.0, 1.0, NO_FEATURE);
            }
        }
    });
    Array2::from_shape_vec((x.nrows(), width), phi).expect("sized above")
}
