//! Per-bin sums of gradients, hessians and row counts for one leaf.

use std::ops::{AddAssign, SubAssign};

use rayon::prelude::*;

use super::binning::{BinnedData, BIN_SLOTS};

/// Below this many row-column cells a histogram is built on the calling
/// thread: for small leaves the cost of handing out tasks exceeds the work.
const PARALLEL_MIN_CELLS: usize = 64 * 1024;

/// Gradient and hessian of the loss at one row, as `f32`: the histogram pass
/// streams them once per column, so half the bytes of `f64` is worth more
/// than the precision, which the `f64` sums keep anyway.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct GradHess {
    pub(crate) grad: f32,
    pub(crate) hess: f32,
}

/// Sums over the rows in one bin (or a leaf, or one side of a split).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct BinStats {
    pub(crate) grad: f64,
    pub(crate) hess: f64,
    pub(crate) count: u64,
}

impl AddAssign for BinStats {
    fn add_assign(&mut self, other: BinStats) {
        self.grad += other.grad;
        self.hess += other.hess;
        self.count += other.count;
    }
}

impl SubAssign for BinStats {
    fn sub_assign(&mut self, other: BinStats) {
        self.grad -= other.grad;
        self.hess -= other.hess;
        self.count -= other.count;
    }
}

impl std::ops::Sub for BinStats {
    type Output = BinStats;
    fn sub(mut self, other: BinStats) -> BinStats {
        self -= other;
        self
    }
}

/// One column's histogram: a fixed 256 slots, so a `u8` bin code indexes it
/// without a bounds check and every column sits at a fixed offset.
pub(crate) type ColumnHistogram = [BinStats; BIN_SLOTS];

/// A leaf's histograms for all columns. Columns not drawn for the current
/// tree are left stale and never read.
pub(crate) struct Histogram {
    pub(crate) columns: Vec<ColumnHistogram>,
}

impl Histogram {
    pub(crate) fn new(n_features: usize) -> Histogram {
        Histogram {
            columns: vec![[BinStats::default(); BIN_SLOTS]; n_features],
        }
    }

    /// Fills the histograms of the `used` columns from `rows` (all rows in
    /// order when `None`), whose gradients are given in the same order as
    /// `rows` in `ordered`. Each column is summed by one task in row order,
    /// so the sums are the same on any number of threads.
    pub(crate) fn build(
        &mut self,
        data: &BinnedData,
        used: &[bool],
        rows: Option<&[u32]>,
        ordered: &[GradHess],
    ) {
        let fill = |(feature, column): (usize, &mut ColumnHistogram)| {
            if used[feature] {
                accumulate(column, data.column(feature), rows, ordered);
            }
        };
        let cells = ordered.len() * used.iter().filter(|&&u| u).count();
        if cells >= PARALLEL_MIN_CELLS {
            // One task per column: work stealing balances them.
            self.columns
                .par_iter_mut()
                .with_max_len(1)
                .enumerate()
                .for_each(fill);
        } else {
            self.columns.iter_mut().enumerate().for_each(fill);
        }
    }

    /// Turns a parent's histogram into its larger child's by taking away the
    /// smaller child's.
    pub(crate) fn subtract(&mut self, smaller: &Histogram, used: &[bool]) {
        for ((parent, child), _) in self
            .columns
            .iter_mut()
            .zip(&smaller.columns)
            .zip(used)
            .filter(|(_, &u)| u)
        {
            for (p, &c) in parent.iter_mut().zip(child) {
                *p -= c;
            }
        }
    }
}

fn accumulate(
    histogram: &mut ColumnHistogram,
    codes: &[u8],
    rows: Option<&[u32]>,
    ordered: &[GradHess],
) {
    *histogram = [BinStats::default(); BIN_SLOTS];
    let mut add = |code: u8, gh: &GradHess| {
        let slot = &mut histogram[usize::from(code)];
        slot.grad += f64::from(gh.grad);
        slot.hess += f64::from(gh.hess);
        slot.count += 1;
    };
    match rows {
        None => codes
            .iter()
            .zip(ordered)
            .for_each(|(&code, gh)| add(code, gh)),
        Some(rows) => {
            for (i, (&row, gh)) in rows.iter().zip(ordered).enumerate() {
                if let Some(&ahead) = rows.get(i + PREFETCH_DISTANCE) {
                    prefetch(codes, ahead as usize);
                }
                add(codes[row as usize], gh);
            }
        }
    }
}

/// Rows ahead whose bin code is prefetched in the gathered pass: a leaf's
/// rows are scattered over the column, and the hardware prefetcher cannot
/// guess the next one (the prefetch made 1M-row fits ~9% faster).
const PREFETCH_DISTANCE: usize = 64;

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn prefetch(codes: &[u8], index: usize) {
    use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
    // SAFETY: SSE is part of the x86_64 baseline, and a prefetch is only a
    // hint that never dereferences or faults; the index is in range anyway.
    unsafe { _mm_prefetch::<_MM_HINT_T0>(codes.as_ptr().wrapping_add(index).cast()) };
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn prefetch(_codes: &[u8], _index: usize) {}
