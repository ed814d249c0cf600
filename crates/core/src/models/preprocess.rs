//! Preprocessing that travels with a model: median imputation and
//! standardisation of numeric inputs, one-hot encoding of categorical inputs
//! with an unknown bucket. Fitted on training rows only.

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use super::{Batch, ModelError, Result};

/// The level name of the bucket for categories not seen in training.
pub const UNKNOWN: &str = "<unknown>";

/// How one numeric input is imputed and scaled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NumericColumn {
    /// Input name.
    pub name: String,
    /// Median of the training rows, used for missing values.
    pub median: f64,
    /// Mean after imputation.
    pub mean: f64,
    /// Standard deviation after imputation (1 when constant).
    pub std: f64,
}

/// How one categorical input is one-hot encoded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoricalColumn {
    /// Input name.
    pub name: String,
    /// Levels seen in training, sorted; a missing value is the level `<missing>`
    /// when training had missing values, else unknown.
    pub levels: Vec<String>,
}

/// The fitted preprocessing of a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preprocessor {
    /// Numeric inputs in order.
    pub numeric: Vec<NumericColumn>,
    /// Categorical inputs in order.
    pub categorical: Vec<CategoricalColumn>,
}

/// Where a transformed column comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Encoded<'a> {
    /// A standardised numeric input.
    Numeric(&'a NumericColumn),
    /// The indicator of one level (or the unknown bucket) of a categorical input.
    Level(&'a CategoricalColumn, &'a str),
}

/// The level name of a missing categorical value.
pub(crate) const MISSING: &str = "<missing>";

/// Standardised inputs are clamped to ±`MAX_Z`.
pub const MAX_Z: f64 = 1e4;

impl Preprocessor {
    /// Learns imputation, scaling and vocabularies from training rows.
    pub fn fit(batch: &Batch) -> Result<Preprocessor> {
        if batch.is_empty() {
            return Err(ModelError::EmptyTraining);
        }
        let mut numeric = Vec::with_capacity(batch.numeric_names.len());
        for (j, name) in batch.numeric_names.iter().enumerate() {
            let mut present: Vec<f64> = batch
                .numeric
                .column(j)
                .iter()
                .copied()
                .filter(|v| v.is_finite())
                .collect();
            let median = if present.is_empty() {
                0.0
            } else {
                present.sort_by(f64::total_cmp);
                let m = present.len() / 2;
                if present.len().is_multiple_of(2) {
                    (present[m - 1] + present[m]) / 2.0
                } else {
                    present[m]
                }
            };
            let n = batch.len() as f64;
            let values = batch
                .numeric
                .column(j)
                .mapv(|v| if v.is_finite() { v } else { median });
            let mean = values.sum() / n;
            let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
            let std = if var > 1e-24 { var.sqrt() } else { 1.0 };
            numeric.push(NumericColumn {
                name: name.clone(),
                median,
                mean,
                std,
            });
        }
        let categorical = batch
            .categorical_names
            .iter()
            .zip(&batch.categorical)
            .map(|(name, values)| {
                let mut levels: Vec<String> = values
                    .iter()
                    .map(|v| v.clone().unwrap_or_else(|| MISSING.to_string()))
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect();
                levels.retain(|l| l != UNKNOWN);
                CategoricalColumn {
                    name: name.clone(),
                    levels,
                }
            })
            .collect();
        Ok(Preprocessor {
            numeric,
            categorical,
        })
    }

    /// The number of transformed columns.
    pub fn width(&self) -> usize {
        self.numeric.len()
            + self
                .categorical
                .iter()
                .map(|c| c.levels.len() + 1)
                .sum::<usize>()
    }

    /// What each transformed column is, in order.
    pub fn encoded(&self) -> Vec<Encoded<'_>> {
        let mut out: Vec<Encoded<'_>> = self.numeric.iter().map(Encoded::Numeric).collect();
        for c in &self.categorical {
            out.extend(c.levels.iter().map(|l| Encoded::Level(c, l.as_str())));
            out.push(Encoded::Level(c, UNKNOWN));
        }
        out
    }

    /// Names of the transformed columns: `tenure`, `contract=monthly`, `contract=<unknown>`.
    pub fn encoded_names(&self) -> Vec<String> {
        self.encoded()
            .into_iter()
            .map(|e| match e {
                Encoded::Numeric(c) => c.name.clone(),
                Encoded::Level(c, l) => format!("{}={l}", c.name),
            })
            .collect()
    }

    /// The raw input each transformed column belongs to (index into
    /// numeric names followed by categorical names).
    pub fn encoded_source(&self) -> Vec<usize> {
        let mut out: Vec<usize> = (0..self.numeric.len()).collect();
        for (k, c) in self.categorical.iter().enumerate() {
            out.extend(std::iter::repeat_n(
                self.numeric.len() + k,
                c.levels.len() + 1,
            ));
        }
        out
    }

    /// Checks that a batch has this preprocessor's inputs, in order.
    pub fn check(&self, batch: &Batch) -> Result<()> {
        // Compared in place first, without collecting: every online
        // request asks.
        let numeric = self.numeric.iter().map(|c| c.name.as_str());
        let categorical = self.categorical.iter().map(|c| c.name.as_str());
        if numeric.eq(batch.numeric_names.iter().map(String::as_str))
            && categorical.eq(batch.categorical_names.iter().map(String::as_str))
        {
            return Ok(());
        }
        let expect_num: Vec<&str> = self.numeric.iter().map(|c| c.name.as_str()).collect();
        let expect_cat: Vec<&str> = self.categorical.iter().map(|c| c.name.as_str()).collect();
        let got_num: Vec<&str> = batch.numeric_names.iter().map(String::as_str).collect();
        let got_cat: Vec<&str> = batch.categorical_names.iter().map(String::as_str).collect();
        if expect_num != got_num || expect_cat != got_cat {
            return Err(ModelError::SchemaMismatch(format!(
                "model expects numeric {expect_num:?} and categorical {expect_cat:?}, data has numeric {got_num:?} and categorical {got_cat:?}"
            )));
        }
        Ok(())
    }

    /// The categorical inputs of row `i` whose value was not seen in training.
    pub fn unknown_inputs(&self, batch: &Batch, i: usize) -> Vec<String> {
        self.categorical
            .iter()
            .zip(&batch.categorical)
            .filter(|(c, values)| {
                let level = values[i].as_deref().unwrap_or(MISSING);
                c.levels
                    .binary_search_by(|l| l.as_str().cmp(level))
                    .is_err()
            })
            .map(|(c, _)| c.name.clone())
            .collect()
    }

    /// Transforms raw rows into the model's input matrix. Returns the matrix and,
    /// per row, whether any categorical value fell into the unknown bucket.
    pub fn transform(&self, batch: &Batch) -> Result<(Array2<f64>, Vec<bool>)> {
        self.check(batch)?;
        let n = batch.len();
        let mut x = Array2::<f64>::zeros((n, self.width()));
        for (j, c) in self.numeric.iter().enumerate() {
            for (i, v) in batch.numeric.column(j).iter().enumerate() {
                let v = if v.is_finite() { *v } else { c.median };
                // Absurd inputs saturate instead of overflowing the model
                // (no training value lies 10,000 deviations out).
                x[[i, j]] = ((v - c.mean) / c.std).clamp(-MAX_Z, MAX_Z);
            }
        }
        let mut unknown = vec![false; n];
        let mut offset = self.numeric.len();
        for (c, values) in self.categorical.iter().zip(&batch.categorical) {
            for (i, v) in values.iter().enumerate() {
                let level = v.as_deref().unwrap_or(MISSING);
                match c.levels.binary_search_by(|l| l.as_str().cmp(level)) {
                    Ok(k) => x[[i, offset + k]] = 1.0,
                    Err(_) => {
                        x[[i, offset + c.levels.len()]] = 1.0;
                        unknown[i] = true;
                    }
                }
            }
            offset += c.levels.len() + 1;
        }
        Ok((x, unknown))
    }

    /// Raw rows as level codes, the input of the gradient-boosted family:
    /// numeric inputs as they are (missing or non-finite as `NaN`, which
    /// the trees route natively, never the median), then one column per
    /// categorical input holding the level's index in `levels` (an unseen
    /// level gets `levels.len()`, a code training never saw; a missing
    /// value is `NaN`). Returns the matrix and, per row, whether any
    /// categorical value was unseen.
    pub fn transform_codes(&self, batch: &Batch) -> Result<(Array2<f64>, Vec<bool>)> {
        self.check(batch)?;
        let n = batch.len();
        let width = self.numeric.len() + self.categorical.len();
        let mut x = Array2::<f64>::zeros((n, width));
        for j in 0..self.numeric.len() {
            for (i, v) in batch.numeric.column(j).iter().enumerate() {
                x[[i, j]] = if v.is_finite() { *v } else { f64::NAN };
            }
        }
        let mut unknown = vec![false; n];
        for (k, (c, values)) in self.categorical.iter().zip(&batch.categorical).enumerate() {
            let j = self.numeric.len() + k;
            for (i, v) in values.iter().enumerate() {
                x[[i, j]] = match v.as_deref() {
                    None => f64::NAN,
                    Some(level) => match c.levels.binary_search_by(|l| l.as_str().cmp(level)) {
                        Ok(code) => code as f64,
                        Err(_) => {
                            unknown[i] = true;
                            c.levels.len() as f64
                        }
                    },
                };
            }
        }
        Ok((x, unknown))
    }

    /// Which columns of [`Preprocessor::transform_codes`] are categorical.
    pub fn categorical_mask(&self) -> Vec<bool> {
        std::iter::repeat_n(false, self.numeric.len())
            .chain(std::iter::repeat_n(true, self.categorical.len()))
            .collect()
    }

    /// The number of raw inputs (numeric, then categorical).
    pub fn n_inputs(&self) -> usize {
        self.numeric.len() + self.categorical.len()
    }
}
