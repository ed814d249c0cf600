//! A fitted regression tree as a flat node array.

use serde::{Deserialize, Serialize};

use super::binning::category_code;
use super::params::MAX_TREE_DEPTH;

/// One node of a [`Tree`], a split or a leaf. Nodes live in one array with
/// the root first and every child after its parent, so index 0 never names
/// a child and `left == right == 0` marks a leaf.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Column the split reads; `0` in a leaf.
    pub feature: u32,
    /// Numeric split: a value `<= threshold` goes left, a larger one right.
    /// `f64::MAX` sends every present value left (a "missing or not"
    /// split). Unused by categorical splits and leaves.
    pub threshold: f64,
    /// Numeric split: whether a missing value (`NaN`) goes left.
    /// Categorical splits send missing values right.
    pub default_left: bool,
    /// Categorical split: its left levels are
    /// `Tree::cat_levels[cat_start..cat_start + cat_len]`, sorted; every
    /// other code (and a missing one) goes right. `cat_len == 0` for numeric
    /// splits and leaves.
    pub cat_start: u32,
    /// Number of left levels of a categorical split; see `cat_start`.
    pub cat_len: u32,
    /// Index of the left child; `0` in a leaf.
    pub left: u32,
    /// Index of the right child; `0` in a leaf.
    pub right: u32,
    /// A leaf's output in log-odds (learning rate applied). For a split,
    /// the output it would have had as a leaf, kept for inspection.
    pub value: f64,
    /// Summed hessian of the training rows that reached the node (its
    /// "cover"), which weighs the branches in TreeSHAP.
    pub cover: f64,
    /// Training rows that reached the node.
    pub count: u64,
    /// Loss reduction of the split; `0` in a leaf.
    pub gain: f64,
}

impl Node {
    /// Whether the node is a leaf.
    #[inline]
    pub fn is_leaf(&self) -> bool {
        self.left == 0
    }

    /// Whether the split sends its levels left (categorical) rather than
    /// comparing with a threshold.
    #[inline]
    pub fn is_categorical(&self) -> bool {
        self.cat_len > 0
    }

    pub(crate) fn leaf(value: f64, cover: f64, count: u64) -> Node {
        Node {
            feature: 0,
            threshold: 0.0,
            default_left: false,
            cat_start: 0,
            cat_len: 0,
            left: 0,
            right: 0,
            value,
            cover,
            count,
            gain: 0.0,
        }
    }
}

/// One boosted tree: its nodes and the level lists of its categorical
/// splits, both flat so the tree serializes as plain arrays.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    /// The nodes, root first, children after their parent.
    pub nodes: Vec<Node>,
    /// Left levels of all categorical splits, one sorted run per split.
    pub cat_levels: Vec<u32>,
}

impl Tree {
    /// Whether `value` in the split's column goes to the left child.
    #[inline]
    pub(crate) fn goes_left(&self, node: &Node, value: f64) -> bool {
        if node.is_categorical() {
            let start = node.cat_start as usize;
            let levels = &self.cat_levels[start..start + node.cat_len as usize];
            category_code(value).is_some_and(|code| levels.binary_search(&code).is_ok())
        } else if value.is_nan() {
            node.default_left
        } else {
            value <= node.threshold
        }
    }

    /// The leaf a row lands in.
    #[inline]
    pub(crate) fn leaf_of(&self, row: &[f64]) -> &Node {
        let mut node = &self.nodes[0];
        while !node.is_leaf() {
            let next = if self.goes_left(node, row[node.feature as usize]) {
                node.left
            } else {
                node.right
            };
            node = &self.nodes[next as usize];
        }
        node
    }

    /// The cover-weighted mean output: what the tree predicts when nothing
    /// is known about the row, the TreeSHAP base value.
    pub fn expected_value(&self) -> f64 {
        let mut weight = vec![0.0; self.nodes.len()];
        weight[0] = 1.0;
        let mut expected = 0.0;
        for (index, node) in self.nodes.iter().enumerate() {
            if node.is_leaf() {
                expected += weight[index] * node.value;
            } else {
                for child in [node.left, node.right] {
                    let child = child as usize;
                    weight[child] = weight[index] * self.nodes[child].cover / node.cover;
                }
            }
        }
        expected
    }

    /// Depth of the deepest leaf (a lone root has depth 0).
    pub(crate) fn depth(&self) -> usize {
        let mut depth = vec![0usize; self.nodes.len()];
        let mut deepest = 0;
        for (index, node) in self.nodes.iter().enumerate() {
            deepest = deepest.max(depth[index]);
            if !node.is_leaf() {
                depth[node.left as usize] = depth[index] + 1;
                depth[node.right as usize] = depth[index] + 1;
            }
        }
        deepest
    }

    /// Checks that the tree is well formed for `categorical.len()` columns,
    /// so that prediction and TreeSHAP cannot index out of range or loop.
    pub(crate) fn validate(&self, categorical: &[bool]) -> Result<(), String> {
        let n = self.nodes.len();
        if n == 0 {
            return Err("a tree has no nodes".into());
        }
        if n > u32::MAX as usize {
            return Err("a tree has too many nodes".into());
        }
        let mut has_parent = vec![false; n];
        for (index, node) in self.nodes.iter().enumerate() {
            let at = |what: &str| format!("node {index}: {what}");
            if !node.value.is_finite() || !node.gain.is_finite() {
                return Err(at("value or gain is not finite"));
            }
            if !(node.cover.is_finite() && node.cover >= 0.0) {
                return Err(at("cover is not a finite number >= 0"));
            }
            if node.is_leaf() {
                if node.right != 0 {
                    return Err(at("a leaf with a right child"));
                }
                continue;
            }
            let (left, right) = (node.left as usize, node.right as usize);
            if left <= index || right <= index || left >= n || right >= n || left == right {
                return Err(at("children must be distinct nodes after their parent"));
            }
            for child in [left, right] {
                if std::mem::replace(&mut has_parent[child], true) {
                    return Err(at("a child with two parents"));
                }
            }
            if node.cover <= 0.0 {
                return Err(at("a split with no cover"));
            }
            let feature = node.feature as usize;
            let Some(&is_categorical) = categorical.get(feature) else {
                return Err(at("split on an unknown column"));
            };
            if node.is_categorical() != is_categorical {
                return Err(at("split kind does not match the column kind"));
            }
            if node.is_categorical() {
                let start = node.cat_start as usize;
                let levels = self
                    .cat_levels
                    .get(start..start + node.cat_len as usize)
                    .ok_or_else(|| at("categorical levels out of range"))?;
                if !levels.windows(2).all(|w| w[0] < w[1]) {
                    return Err(at("categorical levels are not sorted"));
                }
            } else if node.threshold.is_nan() {
                return Err(at("threshold is NaN"));
            }
        }
        if has_parent[0] || has_parent[1..].iter().any(|&p| !p) {
            return Err("nodes do not form one tree".into());
        }
        if self.depth() > MAX_TREE_DEPTH {
            return Err(format!("a tree deeper than {MAX_TREE_DEPTH}"));
        }
        Ok(())
    }
}
