//! Prediction on raw rows.

use ndarray::{s, ArrayView2};
use rayon::prelude::*;

use super::tree::Tree;
use super::{GbdtError, GbdtModel, Result};

/// Rows from which QuickScorer scores a batch. It applies about half of all
/// the forest's splits to every row, the walk only a path per tree: the
/// walk's mispredicted branches cost more only once many rows share the
/// prepared thresholds (measured: one Telco request at a time, QuickScorer
/// lost throughput to the walk).
const QUICKSCORER_MIN_ROWS: usize = 64;

/// Rows per task. A block of rows stays in cache while every tree visits
/// it, and each tree's nodes stay in L1 while it visits the block.
const PREDICT_BLOCK: usize = 256;

/// Calls `visit` with consecutive blocks of rows of `x`, each as a
/// row-major slice of `x.ncols()` values per row, in parallel, together with
/// the matching block of `out`. Copies a block only when `x` is not
/// row-major.
pub(crate) fn for_row_blocks<T: Send>(
    x: ArrayView2<'_, f64>,
    out: &mut [T],
    rows_per_out: usize,
    visit: impl Fn(&[f64], &mut [T]) + Sync,
) {
    // One block runs on the calling thread: handing it to rayon's pool from
    // outside costs a wake-up and a wait, more than scoring an online
    // request's few rows.
    if out.len() <= PREDICT_BLOCK * rows_per_out {
        let rows = x.as_standard_layout();
        visit(rows.as_slice().expect("standard layout is contiguous"), out);
        return;
    }
    out.par_chunks_mut(PREDICT_BLOCK * rows_per_out)
        .enumerate()
        .for_each(|(block, out)| {
            let first = block * PREDICT_BLOCK;
            let rows = x.slice(s![first..first + out.len() / rows_per_out, ..]);
            let rows = rows.as_standard_layout();
            let values = rows.as_slice().expect("standard layout is contiguous");
            visit(values, out);
        });
}

/// Adds one tree's output to `scores`, row by row (early stopping).
pub(crate) fn add_tree_outputs(tree: &Tree, x: ArrayView2<'_, f64>, scores: &mut [f64]) {
    let width = x.ncols();
    for_row_blocks(x, scores, 1, |values, scores| {
        for (row, score) in values.chunks_exact(width).zip(scores) {
            *score += tree.leaf_of(row).value;
        }
    });
}

impl GbdtModel {
    pub(crate) fn check_width(&self, x: ArrayView2<'_, f64>) -> Result<()> {
        if x.ncols() == self.n_features() {
            Ok(())
        } else {
            Err(GbdtError::ShapeMismatch(format!(
                "the model reads {} columns, the data has {}",
                self.n_features(),
                x.ncols()
            )))
        }
    }

    /// The margin (log-odds of churn) of each row of `x`.
    pub fn predict_raw(&self, x: ArrayView2<'_, f64>) -> Result<Vec<f64>> {
        self.check_width(x)?;
        let width = x.ncols();
        let mut margins = vec![self.base_score; x.nrows()];
        if width == 0 {
            return Ok(margins);
        }
        // QuickScorer, prepared once per model, for batches (the walk below
        // for a few rows, and for trees of more than 64 leaves).
        let scorer = (x.nrows() >= QUICKSCORER_MIN_ROWS)
            .then(|| self.scorer.get(&self.trees, &self.categorical))
            .flatten();
        if let Some(scorer) = scorer {
            for_row_blocks(x, &mut margins, 1, |values, margins| {
                let mut bits = Vec::with_capacity(self.trees.len());
                scorer.add_margins(values, width, margins, &mut bits);
            });
            return Ok(margins);
        }
        // A simple walk per row and tree: a fixed-step, branch-free walk of
        // eight rows in lockstep measured no faster here (the walk is bound
        // by its chain of dependent loads either way).
        for_row_blocks(x, &mut margins, 1, |values, margins| {
            // Tree by tree over the block, so each row sums its trees in
            // model order whatever the blocking.
            for tree in &self.trees {
                for (row, margin) in values.chunks_exact(width).zip(margins.iter_mut()) {
                    *margin += tree.leaf_of(row).value;
                }
            }
        });
        Ok(margins)
    }

    /// The churn probability of `rows` rows that `fill(first_row, block)`
    /// writes block by block (row-major, `n_features()` values a row, as
    /// many rows as `block` holds): the same probabilities as
    /// [`GbdtModel::predict_proba`] on the whole matrix, without building
    /// it.
    pub fn predict_proba_with(
        &self,
        rows: usize,
        fill: impl Fn(usize, &mut [f64]) + Sync,
    ) -> Result<Vec<f64>> {
        let width = self.n_features();
        let mut margins = vec![self.base_score; rows];
        let scorer = (rows >= QUICKSCORER_MIN_ROWS)
            .then(|| self.scorer.get(&self.trees, &self.categorical))
            .flatten();
        let block =
            |first: usize, margins: &mut [f64], values: &mut Vec<f64>, bits: &mut Vec<u64>| {
                values.clear();
                values.resize(margins.len() * width, 0.0);
                fill(first, values);
                match scorer {
                    Some(scorer) => scorer.add_margins(values, width, margins, bits),
                    None => {
                        for tree in &self.trees {
                            for (row, margin) in values.chunks_exact(width).zip(margins.iter_mut())
                            {
                                *margin += tree.leaf_of(row).value;
                            }
                        }
                    }
                }
                for m in margins.iter_mut() {
                    *m = 1.0 / (1.0 + (-*m).exp());
                }
            };
        if width == 0 {
            margins
                .iter_mut()
                .for_each(|m| *m = 1.0 / (1.0 + (-*m).exp()));
            return Ok(margins);
        }
        if rows <= PREDICT_BLOCK {
            block(0, &mut margins, &mut Vec::new(), &mut Vec::new());
        } else {
            margins
                .par_chunks_mut(PREDICT_BLOCK)
                .enumerate()
                .for_each_init(
                    || (Vec::new(), Vec::new()),
                    |(values, bits), (k, margins)| block(k * PREDICT_BLOCK, margins, values, bits),
                );
        }
        Ok(margins)
    }

    /// The churn probability of each row of `x`.
    pub fn predict_proba(&self, x: ArrayView2<'_, f64>) -> Result<Vec<f64>> {
        let mut margins = self.predict_raw(x)?;
        let sigmoid = |m: &mut f64| *m = 1.0 / (1.0 + (-*m).exp());
        if margins.len() <= PREDICT_BLOCK {
            margins.iter_mut().for_each(sigmoid);
        } else {
            margins.par_iter_mut().for_each(sigmoid);
        }
        Ok(margins)
    }
}
