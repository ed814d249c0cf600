//! Per-bin sums of gradients, hessians and row counts for one leaf.

use std::ops::{AddAssign, Range, SubAssign};

use rayon::prelude::*;

use super::binning::{BinnedData, BIN_SLOTS};

/// Below this many row-column cells a histogram is built as one chunk on
/// the calling thread: for small leaves the cost of handing out tasks
/// exceeds the work.
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
/// (LightGBM's 16-byte slot without the count, its counts estimated from
/// the hessian, was tried with the row-wise pass: 1M fits took 48–56 s
/// against 34 s with the count.)
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
    /// `rows` in `ordered`. Every used column of a row is summed at once,
    /// from the row-major codes. A large leaf's rows are cut into chunks
    /// whose number depends only on the row count: each chunk is summed in
    /// row order into its own histogram (the first into `self`, the others
    /// into histograms taken from `spare` and given back), and the chunks are
    /// then added in order, so the sums are the same on any number of
    /// threads.
    pub(crate) fn build(
        &mut self,
        data: &BinnedData,
        used: &[bool],
        rows: Option<&[u32]>,
        ordered: &[GradHess],
        spare: &mut Vec<Histogram>,
    ) {
        let features: Vec<usize> = (0..used.len()).filter(|&f| used[f]).collect();
        let n = ordered.len();
        let chunks = if n * features.len() >= PARALLEL_MIN_CELLS {
            (n / CHUNK_MIN_ROWS).clamp(1, MAX_CHUNKS)
        } else {
            1
        };
        let chunk_rows = n.div_ceil(chunks).max(1);
        let mut extra: Vec<Histogram> = (1..chunks)
            .map(|_| {
                spare
                    .pop()
                    .unwrap_or_else(|| Histogram::new(data.n_features()))
            })
            .collect();
        let pass = |histogram: &mut Histogram, chunk: usize| {
            let range = chunk * chunk_rows..((chunk + 1) * chunk_rows).min(n);
            accumulate_rows(histogram, &features, data, rows, range, ordered);
        };
        if chunks == 1 {
            pass(self, 0);
        } else {
            rayon::join(
                || pass(self, 0),
                || {
                    extra
                        .par_iter_mut()
                        .with_max_len(1)
                        .enumerate()
                        .for_each(|(i, histogram)| pass(histogram, i + 1));
                },
            );
            for histogram in &extra {
                for &f in &features {
                    for (total, &part) in self.columns[f].iter_mut().zip(&histogram.columns[f]) {
                        *total += part;
                    }
                }
            }
        }
        spare.append(&mut extra);
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

/// Below this many rows a leaf is summed as one chunk; above it, in up to
/// [`MAX_CHUNKS`] chunks of at least this many rows.
const CHUNK_MIN_ROWS: usize = 8 * 1024;
/// The most chunks a leaf is summed in: enough to balance the threads of a
/// large machine, few enough that adding the chunks' histograms is cheap.
const MAX_CHUNKS: usize = 16;

#[inline(always)]
fn add(histogram: &mut ColumnHistogram, code: u8, gh: &GradHess) {
    let slot = &mut histogram[usize::from(code)];
    slot.grad += f64::from(gh.grad);
    slot.hess += f64::from(gh.hess);
    slot.count += 1;
}

/// Sums the used `features` of the rows at positions `range` (of `rows`,
/// or of all rows in order) into `histogram`, in row order. A row's codes
/// sit in one cache line, and its columns' updates are independent, so a
/// bin hit by row after row (a flag, a common level) does not hold up the
/// next row as it does in a column-at-a-time pass.
fn accumulate_rows(
    histogram: &mut Histogram,
    features: &[usize],
    data: &BinnedData,
    rows: Option<&[u32]>,
    range: Range<usize>,
    ordered: &[GradHess],
) {
    for &f in features {
        histogram.columns[f] = [BinStats::default(); BIN_SLOTS];
    }
    let all = features.len() == data.n_features();
    let columns = &mut histogram.columns;
    let mut sum_row = |codes: &[u8], gh: &GradHess| {
        if all {
            for (column, &code) in columns.iter_mut().zip(codes) {
                add(column, code, gh);
            }
        } else {
            for &f in features {
                add(&mut columns[f], codes[f], gh);
            }
        }
    };
    match rows {
        None => {
            for i in range {
                sum_row(data.row(i), &ordered[i]);
            }
        }
        Some(rows) => {
            for i in range {
                if let Some(&ahead) = rows.get(i + PREFETCH_DISTANCE) {
                    prefetch(data.row(ahead as usize));
                }
                sum_row(data.row(rows[i] as usize), &ordered[i]);
            }
        }
    }
}

/// Rows ahead whose codes are prefetched in the gathered pass: a leaf's
/// rows are scattered over the matrix, and the hardware prefetcher cannot
/// guess the next one.
const PREFETCH_DISTANCE: usize = 16;

/// Asks for the cache lines of a row's codes (a row may straddle two).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn prefetch(codes: &[u8]) {
    use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
    // SAFETY: SSE is part of the x86_64 baseline, and a prefetch is only a
    // hint that never dereferences or faults; both addresses are in range.
    unsafe {
        _mm_prefetch::<_MM_HINT_T0>(codes.as_ptr().cast());
        _mm_prefetch::<_MM_HINT_T0>(
            codes
                .as_ptr()
                .wrapping_add(codes.len().saturating_sub(1))
                .cast(),
        );
    }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn prefetch(_codes: &[u8]) {}

#[cfg(test)]
mod tests {
    use super::*;

    use ndarray::Array2;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// The row-wise, chunked pass against plain sums column by column, over
    /// a leaf large enough to be cut into chunks and over a scattered
    /// subset of rows, with some columns not drawn.
    #[test]
    fn row_wise_chunked_pass_sums_what_each_column_holds() {
        let n = 5 * CHUNK_MIN_ROWS + 17;
        let n_features = 5;
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let x = Array2::from_shape_fn((n, n_features), |(_, f)| {
            if f == 2 && rng.gen_bool(0.1) {
                f64::NAN
            } else {
                f64::from(rng.gen_range(0..(3 + 40 * f as u32)))
            }
        });
        let data = BinnedData::build(x.view(), &[false; 5], 255, 1, n, &mut rng);
        let gradients: Vec<GradHess> = (0..n)
            .map(|_| GradHess {
                grad: rng.gen_range(-1.0..1.0),
                hess: rng.gen_range(0.01..0.25),
            })
            .collect();
        let used = [true, true, false, true, true];
        let scattered: Vec<u32> = (0..n as u32).filter(|r| r % 3 != 1).collect();
        for rows in [None, Some(&scattered[..])] {
            let ordered: Vec<GradHess> = match rows {
                Some(rows) => rows.iter().map(|&r| gradients[r as usize]).collect(),
                None => gradients.clone(),
            };
            let mut histogram = Histogram::new(n_features);
            let mut spare = Vec::new();
            histogram.build(&data, &used, rows, &ordered, &mut spare);
            assert!(!spare.is_empty(), "a leaf this large is summed in chunks");
            for (f, _) in used.iter().enumerate().filter(|(_, &u)| u) {
                let mut expected = [BinStats::default(); BIN_SLOTS];
                for (i, gh) in ordered.iter().enumerate() {
                    let row = rows.map_or(i, |r| r[i] as usize);
                    let slot = &mut expected[usize::from(data.column(f)[row])];
                    slot.grad += f64::from(gh.grad);
                    slot.hess += f64::from(gh.hess);
                    slot.count += 1;
                }
                for (got, want) in histogram.columns[f].iter().zip(&expected) {
                    assert_eq!(got.count, want.count, "column {f}");
                    assert!((got.grad - want.grad).abs() < 1e-9, "column {f}");
                    assert!((got.hess - want.hess).abs() < 1e-9, "column {f}");
                }
            }
        }
    }
}
