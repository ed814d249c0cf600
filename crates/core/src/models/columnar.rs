//! Scoring without the one-hot matrix.
//!
//! The general path ([`Preprocessor::transform`]) builds a rows × width
//! `Array2` (impute, standardise, one-hot) and hands it to the family. For a
//! linear model that matrix is mostly zeros: the log-odds of a row are
//! `intercept + Σ coef_j · z_j + Σ coef[level of each categorical input]`.
//! This module computes exactly that, straight from the raw inputs: each
//! categorical value becomes a level code (an index into the sorted levels,
//! the last code being the unknown bucket), each numeric value its clamped
//! z-score, and the terms are added in the transformed columns' order, so
//! the results are bit-for-bit those of the general path (the skipped terms
//! are `0 × coef`, which add nothing).
//!
//! Two inputs are supported: a [`Batch`] (what `score_customers` and the
//! server use) and a polars frame read column by column
//! ([`FrameInputs`], what `churnguard predict` uses: no per-row `String`,
//! no row-major copy). Large inputs are split into row chunks scored on
//! rayon's pool; small ones (online requests) stay on the calling thread.

use std::sync::Arc;

use ndarray::Array2;
use polars::prelude::*;
use rayon::prelude::*;

use super::prepared::Prepared;
use super::preprocess::{Preprocessor, MAX_Z, MISSING};
use super::{format_number, Batch, BatchScores, ChurnModel, FittedModel, LogisticModel};
use super::{ModelError, Reason, Result};

/// Rows per parallel task.
const CHUNK: usize = 16 * 1024;

/// Below this many rows everything runs on the calling thread (handing a
/// small job to the pool costs more than it saves).
const PARALLEL_FROM: usize = 4 * 1024;

/// The logistic function, written exactly as [`LogisticModel::probabilities`]
/// does (so both paths round alike).
fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// The level code of a categorical value: its index among the sorted
/// levels, or `levels.len()` (the unknown bucket) with `true` when it was
/// never seen in training. A missing value is the level `<missing>`.
#[inline]
pub fn level_code(levels: &[String], value: Option<&str>) -> (usize, bool) {
    let level = value.unwrap_or(MISSING);
    match levels.binary_search_by(|l| l.as_str().cmp(level)) {
        Ok(k) => (k, false),
        Err(_) => (levels.len(), true),
    }
}

/// The clamped z-score of a numeric value, as [`Preprocessor::transform`]
/// computes it (non-finite values take the training median).
#[inline]
fn z_score(c: &super::preprocess::NumericColumn, v: f64) -> f64 {
    let v = if v.is_finite() { v } else { c.median };
    ((v - c.mean) / c.std).clamp(-MAX_Z, MAX_Z)
}

/// A linear model's coefficients arranged for raw inputs.
#[derive(Debug, Clone)]
pub struct Linear<'a> {
    pre: &'a Preprocessor,
    model: &'a LogisticModel,
    layout: Arc<Layout>,
}

/// Where each raw input's coefficients sit, and each input's term at the
/// training means; depends only on the model and its preprocessing.
#[derive(Debug)]
pub(crate) struct Layout {
    /// The preprocessing's width it was laid out for.
    width: usize,
    /// Per categorical input, the index of its first level's coefficient.
    offsets: Vec<usize>,
    /// Per raw input, its term at the training means (the sum over its
    /// columns of coefficient × mean): an input's contribution is its term
    /// minus this, as in `FittedModel::explain`.
    expected: Vec<f64>,
}

impl Layout {
    fn new(pre: &Preprocessor, model: &LogisticModel) -> Layout {
        let mut offsets = Vec::with_capacity(pre.categorical.len());
        let mut offset = pre.numeric.len();
        for c in &pre.categorical {
            offsets.push(offset);
            offset += c.levels.len() + 1;
        }
        let mut expected = vec![0.0; pre.numeric.len() + pre.categorical.len()];
        if !model.column_means.is_empty() {
            for (col, src) in pre.encoded_source().into_iter().enumerate() {
                expected[src] += model.coefficients[col] * model.column_means[col];
            }
        }
        Layout {
            width: pre.width(),
            offsets,
            expected,
        }
    }

    fn fits(&self, pre: &Preprocessor) -> bool {
        self.width == pre.width()
            && self.offsets.len() == pre.categorical.len()
            && self.expected.len() == pre.numeric.len() + pre.categorical.len()
    }
}

/// A logistic model's [`Layout`], prepared once (see `LogisticModel`'s
/// field); clones start empty and every cache compares equal.
#[derive(Default, Clone, PartialEq, Debug)]
pub(crate) struct LayoutCache(Prepared<Arc<Layout>>);

impl<'a> Linear<'a> {
    /// Lays out `model`, whose coefficients follow `pre`'s transformed columns
    /// (once per model: later calls reuse the layout).
    /// Errors when the widths differ (a model that does not fit its preprocessing).
    pub fn new(pre: &'a Preprocessor, model: &'a LogisticModel) -> Result<Linear<'a>> {
        if model.coefficients.len() != pre.width() {
            return Err(ModelError::SchemaMismatch(format!(
                "logistic model has {} coefficients for {} inputs",
                model.coefficients.len(),
                pre.width()
            )));
        }
        let cached = model
            .layout
            .0
            .get_or_init(|| Arc::new(Layout::new(pre, model)));
        // The same model under another preprocessing (never in a fitted
        // model) is laid out afresh rather than read wrongly.
        let layout = if cached.fits(pre) {
            Arc::clone(cached)
        } else {
            Arc::new(Layout::new(pre, model))
        };
        Ok(Linear { pre, model, layout })
    }

    /// The log-odds term of numeric input `j` at value `v`.
    #[inline]
    fn numeric_term(&self, j: usize, v: f64) -> f64 {
        z_score(&self.pre.numeric[j], v) * self.model.coefficients[j]
    }

    /// The log-odds term of categorical input `c` at level code `code`.
    #[inline]
    fn level_term(&self, c: usize, code: usize) -> f64 {
        // `1.0 ×` as in the dense product: the same rounding (none).
        1.0 * self.model.coefficients[self.layout.offsets[c] + code]
    }

    /// The uncalibrated probability from the sum of the terms.
    #[inline]
    fn probability(&self, terms: f64) -> f64 {
        sigmoid(self.model.intercept + terms)
    }

    /// Per raw input (numeric, then categorical), its log-odds term for row
    /// `i` of `batch`, written into `out`; the level codes into `codes`.
    /// Returns whether any categorical value was unknown.
    fn batch_terms(&self, batch: &Batch, i: usize, out: &mut [f64], codes: &mut [usize]) -> bool {
        let row = batch.numeric.row(i);
        for (j, v) in row.iter().enumerate() {
            out[j] = self.numeric_term(j, *v);
        }
        let n = self.pre.numeric.len();
        let mut unknown = false;
        for (c, (col, values)) in self
            .pre
            .categorical
            .iter()
            .zip(&batch.categorical)
            .enumerate()
        {
            let (code, u) = level_code(&col.levels, values[i].as_deref());
            unknown |= u;
            codes[c] = code;
            out[n + c] = self.level_term(c, code);
        }
        unknown
    }
}

/// Sums terms in order, as `Iterator::sum` does in the dense product.
#[inline]
fn sum(terms: &[f64]) -> f64 {
    terms.iter().sum::<f64>()
}

/// Maps `0..n` to values with per-task scratch space from `init`, in
/// chunks on rayon's pool when `n` is large.
fn map_rows_with<S, T: Send>(
    n: usize,
    init: impl Fn() -> S + Sync + Send,
    f: impl Fn(&mut S, usize) -> T + Sync + Send,
) -> Vec<T> {
    if n < PARALLEL_FROM {
        let mut s = init();
        (0..n).map(|i| f(&mut s, i)).collect()
    } else {
        (0..n)
            .into_par_iter()
            .with_min_len(CHUNK / 4)
            .map_init(init, f)
            .collect()
    }
}

/// The `k` largest positive per-input contributions, largest first; ties
/// keep the input order (as a stable descending sort then `take(k)` does).
fn top_k(per_input: &[f64], k: usize, out: &mut Vec<usize>) {
    out.clear();
    if k == 0 {
        return;
    }
    for (j, v) in per_input.iter().enumerate() {
        if *v <= 1e-12 {
            continue;
        }
        // First position whose value is strictly smaller: after equals.
        let pos = out
            .iter()
            .position(|&o| per_input[o].total_cmp(v).is_lt())
            .unwrap_or(out.len());
        if pos < k {
            if out.len() == k {
                out.pop();
            }
            out.insert(pos, j);
        }
    }
}

impl FittedModel {
    /// The linear layout of this model, when it is a logistic one.
    fn linear(&self) -> Result<Option<Linear<'_>>> {
        match &self.model {
            ChurnModel::Logistic(m) => Linear::new(&self.preprocessor, m).map(Some),
            _ => Ok(None),
        }
    }

    /// Uncalibrated probabilities of a logistic model, without the one-hot
    /// matrix; `None` for the other families.
    pub(super) fn linear_raw(&self, batch: &Batch) -> Result<Option<Vec<f64>>> {
        let Some(lin) = self.linear()? else {
            return Ok(None);
        };
        self.preprocessor.check(batch)?;
        let width = self.preprocessor.numeric.len() + self.preprocessor.categorical.len();
        let n_cat = self.preprocessor.categorical.len();
        Ok(Some(map_rows_with(
            batch.len(),
            || (vec![0.0; width], vec![0usize; n_cat]),
            |(terms, codes), i| {
                lin.batch_terms(batch, i, terms, codes);
                lin.probability(sum(terms))
            },
        )))
    }

    /// [`FittedModel::score_batch`] for a logistic model, without the one-hot
    /// matrix or the contributions matrix; `None` for the other families.
    pub(super) fn linear_score_batch(
        &self,
        batch: &Batch,
        k: usize,
    ) -> Result<Option<BatchScores>> {
        let Some(lin) = self.linear()? else {
            return Ok(None);
        };
        self.preprocessor.check(batch)?;
        let churn_type = match &self.churn_type {
            Some(m) => Some(Linear::new(&self.preprocessor, m)?),
            None => None,
        };
        let p = &self.preprocessor;
        let n_num = p.numeric.len();
        let width = n_num + p.categorical.len();
        struct Scratch {
            terms: Vec<f64>,
            centred: Vec<f64>,
            codes: Vec<usize>,
            order: Vec<usize>,
        }
        let rows = map_rows_with(
            batch.len(),
            || Scratch {
                terms: vec![0.0; width],
                centred: vec![0.0; width],
                codes: vec![0; p.categorical.len()],
                order: Vec::with_capacity(k + 1),
            },
            |s, i| {
                let unknown_any = lin.batch_terms(batch, i, &mut s.terms, &mut s.codes);
                let probability = self.calibrator.apply(lin.probability(sum(&s.terms)));
                let p_involuntary = churn_type.as_ref().map(|t| {
                    // The same order as the dense product: numeric, then levels.
                    let mut acc = -0.0;
                    for (j, v) in batch.numeric.row(i).iter().enumerate() {
                        acc += t.numeric_term(j, *v);
                    }
                    for (c, code) in s.codes.iter().enumerate() {
                        acc += t.level_term(c, *code);
                    }
                    t.probability(acc)
                });
                for ((c, t), e) in s.centred.iter_mut().zip(&s.terms).zip(&lin.layout.expected) {
                    *c = t - e;
                }
                top_k(&s.centred, k, &mut s.order);
                let reasons: Vec<Reason> = s
                    .order
                    .iter()
                    .map(|&j| {
                        let (feature, value) = if j < n_num {
                            let v = batch.numeric[[i, j]];
                            (
                                p.numeric[j].name.clone(),
                                if v.is_finite() {
                                    format_number(v)
                                } else {
                                    "missing".into()
                                },
                            )
                        } else {
                            let c = j - n_num;
                            (
                                p.categorical[c].name.clone(),
                                batch.categorical[c][i]
                                    .clone()
                                    .unwrap_or_else(|| "missing".into()),
                            )
                        };
                        Reason {
                            feature,
                            value,
                            weight: s.centred[j],
                        }
                    })
                    .collect();
                let unknown = if unknown_any {
                    p.categorical
                        .iter()
                        .zip(&s.codes)
                        .filter(|(c, code)| **code == c.levels.len())
                        .map(|(c, _)| c.name.clone())
                        .collect()
                } else {
                    Vec::new()
                };
                (probability, p_involuntary, reasons, unknown)
            },
        );
        let n = rows.len();
        let mut out = BatchScores {
            probabilities: Vec::with_capacity(n),
            p_involuntary: churn_type.as_ref().map(|_| Vec::with_capacity(n)),
            reasons: Vec::with_capacity(n),
            unknown: Vec::with_capacity(n),
        };
        for (probability, q, reasons, unknown) in rows {
            out.probabilities.push(probability);
            if let (Some(v), Some(q)) = (out.p_involuntary.as_mut(), q) {
                v.push(q);
            }
            out.reasons.push(reasons);
            out.unknown.push(unknown);
        }
        Ok(Some(out))
    }

    /// Calibrated churn probabilities of a frame's rows, read column by
    /// column: `id` names the row ids, `numeric` and `categorical` the
    /// inputs (as for [`Batch::from_frame`], with the same errors). Logistic
    /// models score the columns directly; the other families go through
    /// [`Batch::from_frame`] and [`FittedModel::predict`]. Equal to
    /// `predict(&Batch::from_frame(..))` either way.
    pub fn predict_frame(
        &self,
        df: &DataFrame,
        id: &str,
        numeric: &[String],
        categorical: &[String],
    ) -> Result<Vec<f64>> {
        if let ChurnModel::Gbdt(g) = &self.model {
            // Level codes block by block, straight from the columns: no
            // per-row `String`, no rows × width matrix of the whole frame.
            let inputs = FrameInputs::read(df, id, numeric, categorical)?;
            inputs.check(&self.preprocessor)?;
            let p = g
                .predict_proba_with(inputs.rows, |start, block| {
                    inputs.codes_rows(&self.preprocessor, start, block)
                })
                .map_err(super::gbdt_error)?;
            return Ok(p.into_iter().map(|p| self.calibrator.apply(p)).collect());
        }
        let Some(lin) = self.linear()? else {
            return self.predict(&Batch::from_frame(df, id, numeric, categorical)?);
        };
        let inputs = FrameInputs::read(df, id, numeric, categorical)?;
        inputs.check(&self.preprocessor)?;
        Ok(inputs.linear(&lin, |p| self.calibrator.apply(p)))
    }
}

/// A frame's model inputs, one contiguous array per column (no row copies
/// when the frame's columns are already `f64` and text in one chunk).
pub struct FrameInputs {
    rows: usize,
    /// The id column as text.
    ids: StringChunked,
    numeric_names: Vec<String>,
    categorical_names: Vec<String>,
    numeric: Vec<Float64Chunked>,
    categorical: Vec<StringChunked>,
}

impl FrameInputs {
    /// Reads the named inputs; the checks and errors of [`Batch::from_frame`].
    pub fn read(
        df: &DataFrame,
        id: &str,
        numeric: &[String],
        categorical: &[String],
    ) -> Result<FrameInputs> {
        let bad = |column: &str, message: String| ModelError::BadColumn {
            column: column.to_string(),
            message,
        };
        let get = |name: &str| {
            df.column(name)
                .map_err(|_| bad(name, "missing from the data".into()))
        };
        // Scoring does not need the ids, but they must be readable as text.
        let ids = get(id)?
            .cast(&DataType::String)
            .map_err(|e| bad(id, e.to_string()))?;
        let ids = ids.str().map_err(|e| bad(id, e.to_string()))?.clone();
        let mut nums = Vec::with_capacity(numeric.len());
        for name in numeric {
            let c = get(name)?;
            if !(c.dtype().is_primitive_numeric() || c.dtype() == &DataType::Boolean) {
                return Err(bad(
                    name,
                    format!("expected a number, found type {}", c.dtype()),
                ));
            }
            let f = c
                .cast(&DataType::Float64)
                .map_err(|e| bad(name, e.to_string()))?;
            let ca = f.f64().map_err(|e| bad(name, e.to_string()))?;
            nums.push(ca.rechunk().into_owned());
        }
        let mut cats = Vec::with_capacity(categorical.len());
        for name in categorical {
            let c = get(name)?
                .cast(&DataType::String)
                .map_err(|e| bad(name, e.to_string()))?;
            let ca = c.str().map_err(|e| bad(name, e.to_string()))?;
            cats.push(ca.rechunk().into_owned());
        }
        Ok(FrameInputs {
            rows: df.height(),
            ids,
            numeric_names: numeric.to_vec(),
            categorical_names: categorical.to_vec(),
            numeric: nums,
            categorical: cats,
        })
    }

    /// The inputs as a row-major [`Batch`] (one `String` per id and
    /// categorical value), for the paths that need one.
    pub fn into_batch(self) -> Batch {
        let mut x = Array2::<f64>::from_elem((self.rows, self.numeric.len()), f64::NAN);
        for (j, ca) in self.numeric.iter().enumerate() {
            for (i, v) in ca.iter().enumerate() {
                if let Some(v) = v {
                    x[[i, j]] = v;
                }
            }
        }
        Batch {
            ids: self
                .ids
                .iter()
                .map(|v| v.unwrap_or_default().to_string())
                .collect(),
            numeric_names: self.numeric_names.into(),
            numeric: x,
            categorical_names: self.categorical_names.into(),
            categorical: self
                .categorical
                .iter()
                .map(|ca| ca.iter().map(|v| v.map(str::to_string)).collect())
                .collect(),
        }
    }

    /// Fills `block` with rows `start..` as [`Preprocessor::transform_codes`]
    /// lays them out (row-major; numeric values, `NaN` when missing or not
    /// finite; then level codes, `NaN` when missing, the unknown bucket for
    /// an unseen level), as many rows as `block` holds.
    pub fn codes_rows(&self, pre: &Preprocessor, start: usize, block: &mut [f64]) {
        let width = self.numeric.len() + self.categorical.len();
        if width == 0 {
            return;
        }
        let len = block.len() / width;
        for (j, ca) in self.numeric.iter().enumerate() {
            let arr = ca.downcast_as_array();
            let values = &arr.values()[start..start + len];
            for (i, v) in values.iter().enumerate() {
                let present = arr.validity().is_none_or(|valid| valid.get_bit(start + i));
                block[i * width + j] = if present && v.is_finite() {
                    *v
                } else {
                    f64::NAN
                };
            }
        }
        for (c, ca) in self.categorical.iter().enumerate() {
            let j = self.numeric.len() + c;
            let levels = &pre.categorical[c].levels;
            let arr = ca.downcast_as_array();
            // Codes of the values met in this block, by their string view
            // (a value of up to 12 bytes is held whole in its view).
            let mut seen: Vec<(u128, f64)> = Vec::new();
            let has_nulls = ca.null_count() > 0;
            for i in 0..len {
                let row = start + i;
                if has_nulls && ca.get(row).is_none() {
                    block[i * width + j] = f64::NAN;
                    continue;
                }
                let view = arr.views()[row];
                let key = (view.length <= 12).then(|| view.as_u128());
                let known = key.and_then(|k| seen.iter().find(|(s, _)| *s == k).map(|(_, c)| *c));
                block[i * width + j] = match known {
                    Some(code) => code,
                    None => {
                        let code = level_code(levels, Some(arr.value(row))).0 as f64;
                        if let Some(k) = key.filter(|_| seen.len() < 64) {
                            seen.push((k, code));
                        }
                        code
                    }
                };
            }
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Checks that these are `pre`'s inputs, in order (as [`Preprocessor::check`]).
    fn check(&self, pre: &Preprocessor) -> Result<()> {
        let same_num = pre
            .numeric
            .iter()
            .map(|c| &c.name)
            .eq(self.numeric_names.iter());
        let same_cat = pre
            .categorical
            .iter()
            .map(|c| &c.name)
            .eq(self.categorical_names.iter());
        if same_num && same_cat {
            return Ok(());
        }
        let expect_num: Vec<&str> = pre.numeric.iter().map(|c| c.name.as_str()).collect();
        let expect_cat: Vec<&str> = pre.categorical.iter().map(|c| c.name.as_str()).collect();
        Err(ModelError::SchemaMismatch(format!(
            "model expects numeric {expect_num:?} and categorical {expect_cat:?}, data has numeric {:?} and categorical {:?}",
            self.numeric_names, self.categorical_names
        )))
    }

    /// `finish(probability)` per row of a linear model, computed column by
    /// column over chunks of rows.
    fn linear(&self, lin: &Linear<'_>, finish: impl Fn(f64) -> f64 + Sync) -> Vec<f64> {
        let n = self.rows;
        let mut out = vec![0.0; n];
        if n == 0 {
            return out;
        }
        let numeric: Vec<_> = self
            .numeric
            .iter()
            .map(|ca| ca.downcast_as_array())
            .collect();
        let chunk = |start: usize, out: &mut [f64]| {
            let len = out.len();
            // The running sums start as `Iterator::sum` does.
            out.fill(-0.0);
            for (j, arr) in numeric.iter().enumerate() {
                let values = &arr.values()[start..start + len];
                match arr.validity() {
                    None => {
                        for (acc, v) in out.iter_mut().zip(values) {
                            *acc += lin.numeric_term(j, *v);
                        }
                    }
                    Some(valid) => {
                        for (i, (acc, v)) in out.iter_mut().zip(values).enumerate() {
                            let v = if valid.get_bit(start + i) {
                                *v
                            } else {
                                f64::NAN
                            };
                            *acc += lin.numeric_term(j, v);
                        }
                    }
                }
            }
            for (c, ca) in self.categorical.iter().enumerate() {
                let levels = &lin.pre.categorical[c].levels;
                if ca.null_count() == 0 {
                    // Straight from the string views: a value of up to 12
                    // bytes is held whole in its 16-byte view, so equal
                    // views are equal values and one integer comparison
                    // finds the code of a value met before.
                    let arr = ca.downcast_as_array();
                    let views = &arr.views()[start..start + len];
                    let mut seen: Vec<(u128, usize)> = Vec::new();
                    for (i, (acc, view)) in out.iter_mut().zip(views).enumerate() {
                        let code = if view.length <= 12 {
                            let key = view.as_u128();
                            match seen.iter().find(|(k, _)| *k == key) {
                                Some((_, code)) => *code,
                                None => {
                                    let code = level_code(levels, Some(arr.value(start + i))).0;
                                    if seen.len() < 64 {
                                        seen.push((key, code));
                                    }
                                    code
                                }
                            }
                        } else {
                            level_code(levels, Some(arr.value(start + i))).0
                        };
                        *acc += lin.level_term(c, code);
                    }
                    continue;
                }
                let missing = level_code(levels, None).0;
                let part = ca.slice(start as i64, len);
                for (acc, value) in out.iter_mut().zip(part.iter()) {
                    let code = match value {
                        Some(v) => level_code(levels, Some(v)).0,
                        None => missing,
                    };
                    *acc += lin.level_term(c, code);
                }
            }
            for acc in out.iter_mut() {
                *acc = finish(lin.probability(*acc));
            }
        };
        if n < PARALLEL_FROM {
            chunk(0, &mut out);
        } else {
            out.par_chunks_mut(CHUNK)
                .enumerate()
                .for_each(|(k, o)| chunk(k * CHUNK, o));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_is_a_stable_descending_sort_then_take() {
        let cases: &[&[f64]] = &[
            &[0.5, 0.2, 0.5, 0.0, -1.0, 0.7, 0.2],
            &[1.0, 1.0, 1.0, 1.0],
            &[-0.1, 0.0, 1e-13],
            &[0.3, 0.1, 0.2, 0.4, 0.05],
        ];
        for v in cases {
            for k in 0..6 {
                let mut expect: Vec<usize> = (0..v.len()).filter(|&j| v[j] > 1e-12).collect();
                expect.sort_by(|a, b| v[*b].total_cmp(&v[*a]));
                expect.truncate(k);
                let mut got = Vec::new();
                top_k(v, k, &mut got);
                assert_eq!(got, expect, "{v:?} k={k}");
            }
        }
    }
}
