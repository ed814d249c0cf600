//! The distribution of every model input and of the score on the training
//! rows, kept with the model: what drift is measured against.

use serde::{Deserialize, Serialize};

use crate::models::Batch;

/// Quantile bins per numeric input (deciles), plus one for missing values.
pub const BINS: usize = 10;

/// Most levels kept per categorical input; the rest share "other".
const MAX_LEVELS: usize = 30;

/// A numeric input (or the score) on the training rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NumericBaseline {
    /// Inner bin edges: `BINS − 1` training quantiles, ascending (ties
    /// merge bins, so there may be fewer). A value `v` falls in the first
    /// bin whose edge is `>= v`, or the last.
    pub edges: Vec<f64>,
    /// Share of the present values in each bin (`edges.len() + 1` bins).
    pub shares: Vec<f64>,
    /// Share of rows where the value is missing.
    pub missing: f64,
}

/// A categorical input on the training rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoricalBaseline {
    /// The most frequent levels, with their share of the rows.
    pub levels: Vec<(String, f64)>,
    /// Share of rows with any other level.
    pub other: f64,
    /// Share of rows where the value is missing.
    pub missing: f64,
}

/// One input's baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum InputBaseline {
    /// A numeric input.
    Numeric {
        /// Input name.
        name: String,
        /// Its distribution.
        baseline: NumericBaseline,
    },
    /// A categorical input.
    Categorical {
        /// Input name.
        name: String,
        /// Its distribution.
        baseline: CategoricalBaseline,
    },
}

impl InputBaseline {
    /// The input's name.
    pub fn name(&self) -> &str {
        match self {
            InputBaseline::Numeric { name, .. } | InputBaseline::Categorical { name, .. } => name,
        }
    }
}

/// Every input's and the calibrated score's distribution on the training rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// Training rows summarised.
    pub rows: usize,
    /// Per input, numeric then categorical.
    pub inputs: Vec<InputBaseline>,
    /// The calibrated churn probability.
    pub score: NumericBaseline,
}

impl NumericBaseline {
    /// The baseline of `values` (non-finite values count as missing).
    pub fn of(values: &[f64]) -> NumericBaseline {
        let mut present: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        let missing = if values.is_empty() {
            0.0
        } else {
            (values.len() - present.len()) as f64 / values.len() as f64
        };
        present.sort_by(f64::total_cmp);
        let mut edges: Vec<f64> = Vec::new();
        if !present.is_empty() {
            for k in 1..BINS {
                let q = present[(k * present.len() / BINS).min(present.len() - 1)];
                if edges.last().is_none_or(|last| q > *last) {
                    edges.push(q);
                }
            }
        }
        let mut base = NumericBaseline {
            shares: vec![0.0; edges.len() + 1],
            edges,
            missing,
        };
        let counts = base.counts(&present);
        let n = present.len().max(1) as f64;
        base.shares = counts.into_iter().map(|c| c as f64 / n).collect();
        base
    }

    /// The bin of a present value.
    pub fn bin(&self, v: f64) -> usize {
        self.edges.partition_point(|e| *e < v)
    }

    /// Present values per bin.
    pub fn counts(&self, present: &[f64]) -> Vec<usize> {
        let mut counts = vec![0usize; self.edges.len() + 1];
        for &v in present {
            counts[self.bin(v)] += 1;
        }
        counts
    }
}

impl CategoricalBaseline {
    /// The baseline of `values`.
    pub fn of(values: &[Option<String>]) -> CategoricalBaseline {
        let mut counts: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        let mut missing = 0usize;
        for v in values {
            match v {
                Some(s) => *counts.entry(s.as_str()).or_default() += 1,
                None => missing += 1,
            }
        }
        let n = values.len().max(1) as f64;
        let mut levels: Vec<(String, f64)> = counts
            .iter()
            .map(|(k, c)| (k.to_string(), *c as f64 / n))
            .collect();
        levels.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let other: f64 = levels.iter().skip(MAX_LEVELS).map(|l| l.1).sum();
        levels.truncate(MAX_LEVELS);
        CategoricalBaseline {
            levels,
            other,
            missing: missing as f64 / n,
        }
    }
}

impl Baseline {
    /// The baseline of training rows and their calibrated scores.
    pub fn of(batch: &Batch, scores: &[f64]) -> Baseline {
        let mut inputs =
            Vec::with_capacity(batch.numeric_names.len() + batch.categorical_names.len());
        for (j, name) in batch.numeric_names.iter().enumerate() {
            let values: Vec<f64> = batch.numeric.column(j).to_vec();
            inputs.push(InputBaseline::Numeric {
                name: name.clone(),
                baseline: NumericBaseline::of(&values),
            });
        }
        for (name, values) in batch.categorical_names.iter().zip(&batch.categorical) {
            inputs.push(InputBaseline::Categorical {
                name: name.clone(),
                baseline: CategoricalBaseline::of(values),
            });
        }
        Baseline {
            rows: batch.len(),
            inputs,
            score: NumericBaseline::of(scores),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deciles_put_a_tenth_in_each_bin_and_count_missing_apart() {
        let mut values: Vec<f64> = (0..1000).map(f64::from).collect();
        values.extend([f64::NAN; 100]);
        let b = NumericBaseline::of(&values);
        assert_eq!(b.edges.len(), BINS - 1);
        assert!(
            b.shares.iter().all(|s| (s - 0.1).abs() < 0.002),
            "{:?}",
            b.shares
        );
        assert!((b.missing - 100.0 / 1100.0).abs() < 1e-12);
        // Ties merge bins instead of making empty ones.
        let b = NumericBaseline::of(&[1.0; 50]);
        assert!(b.edges.len() <= 1);
        assert!((b.shares.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }
}
