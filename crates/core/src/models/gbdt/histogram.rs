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
    /// `rows` in `ordered`. The columns are summed [`COLUMNS_PER_PASS`] at a
    /// time, each group by one task in row order, so the sums are the same
    /// on any number of threads.
    pub(crate) fn build(
        &mut self,
        data: &BinnedData,
        used: &[bool],
        rows: Option<&[u32]>,
        ordered: &[GradHess],
    ) {
        let mut columns: Vec<(&[u8], &mut ColumnHistogram)> = self
            .columns
            .iter_mut()
            .enumerate()
            .filter(|(feature, _)| used[*feature])
            .map(|(feature, histogram)| (data.column(feature), histogram))
            .collect();
        let cells = ordered.len() * columns.len();
        let fill = |group: &mut [(&[u8], &mut ColumnHistogram)]| {
            accumulate_group(group, rows, ordered);
        };
        if cells >= PARALLEL_MIN_CELLS {
            // One task per group: work stealing balances them.
            columns
                .par_chunks_mut(COLUMNS_PER_PASS)
                .with_max_len(1)
                .for_each(fill);
        } else {
            columns.chunks_mut(COLUMNS_PER_PASS).for_each(fill);
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

/// Columns summed in one pass over a leaf's rows: the row index and its
/// gradient are read once for all of them, and their gathers are
/// independent, so the core overlaps the cache misses of a scattered leaf.
/// (One column a pass read 12 bytes of index and gradient per row per
/// column: a 1M-row fit took 37.9 s against 30.4 s now; eight columns a
/// pass measured the same as four.)
const COLUMNS_PER_PASS: usize = 4;

#[inline(always)]
fn add(histogram: &mut ColumnHistogram, code: u8, gh: &GradHess) {
    let slot = &mut histogram[usize::from(code)];
    slot.grad += f64::from(gh.grad);
    slot.hess += f64::from(gh.hess);
    slot.count += 1;
}

/// Sums a group of up to [`COLUMNS_PER_PASS`] columns (codes, histogram)
/// over `rows`, each in row order.
fn accumulate_group(
    group: &mut [(&[u8], &mut ColumnHistogram)],
    rows: Option<&[u32]>,
    ordered: &[GradHess],
) {
    for (_, histogram) in group.iter_mut() {
        **histogram = [BinStats::default(); BIN_SLOTS];
    }
    // A full group as an array: its length is known, so the inner loops
    // over it unroll.
    if let Ok(full) =
        <&mut [(&[u8], &mut ColumnHistogram); COLUMNS_PER_PASS]>::try_from(&mut *group)
    {
        match rows {
            None => {
                for (i, gh) in ordered.iter().enumerate() {
                    for (codes, histogram) in full.iter_mut() {
                        add(histogram, codes[i], gh);
                    }
                }
            }
            Some(rows) => {
                for (i, (&row, gh)) in rows.iter().zip(ordered).enumerate() {
                    if let Some(&ahead) = rows.get(i + PREFETCH_DISTANCE) {
                        for (codes, _) in full.iter() {
                            prefetch(codes, ahead as usize);
                        }
                    }
                    let row = row as usize;
                    for (codes, histogram) in full.iter_mut() {
                        add(histogram, codes[row], gh);
                    }
                }
            }
        }
        return;
    }
    for (codes, histogram) in group.iter_mut() {
        accumulate(histogram, codes, rows, ordered);
    }
}

fn accumulate(
    histogram: &mut ColumnHistogram,
    codes: &[u8],
    rows: Option<&[u32]>,
    ordered: &[GradHess],
) {
    match rows {
        None => codes
            .iter()
            .zip(ordered)
            .for_each(|(&code, gh)| add(histogram, code, gh)),
        Some(rows) => {
            for (i, (&row, gh)) in rows.iter().zip(ordered).enumerate() {
                if let Some(&ahead) = rows.get(i + PREFETCH_DISTANCE) {
                    prefetch(codes, ahead as usize);
                }
                add(histogram, codes[row as usize], gh);
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
