//! Logistic regression with L2 regularisation, fitted by linfa-logistic
//! (L-BFGS), with optional class weighting. Coefficients are on standardised
//! inputs, so `exp(coefficient)` is the odds ratio per standard deviation (or
//! for being in a category level).

use linfa::prelude::*;
use linfa_logistic::LogisticRegression;
use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};

use super::{Family, ModelError, Result};

/// Hyperparameters of logistic regression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogisticParams {
    /// L2 penalty weight (like scikit-learn's `1/C`); defaults to `1.0`.
    pub l2: f64,
    /// `"none"` or `"balanced"` (positives weighted by negatives/positives,
    /// by repeating positive rows); defaults to `"none"`.
    pub class_weight: ClassWeight,
    /// L-BFGS iteration limit; defaults to `300`.
    pub max_iterations: u64,
}

/// Class weighting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClassWeight {
    /// Every row counts once.
    None,
    /// Churners weighted up to balance the classes.
    Balanced,
}

impl Default for LogisticParams {
    fn default() -> Self {
        LogisticParams {
            l2: 1.0,
            class_weight: ClassWeight::None,
            max_iterations: 300,
        }
    }
}

impl LogisticParams {
    /// Checks the settings.
    pub fn check(&self) -> Result<()> {
        if !(self.l2.is_finite() && self.l2 >= 0.0) {
            return Err(ModelError::BadParam {
                name: "logistic.l2".into(),
                message: format!("must be a finite number >= 0, got {}", self.l2),
            });
        }
        if self.max_iterations == 0 {
            return Err(ModelError::BadParam {
                name: "logistic.max_iterations".into(),
                message: "must be at least 1".into(),
            });
        }
        Ok(())
    }
}

/// A fitted logistic regression: churn log-odds = intercept + coefficients · x.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogisticModel {
    /// The intercept.
    pub intercept: f64,
    /// One coefficient per transformed column.
    pub coefficients: Vec<f64>,
}

fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

impl LogisticModel {
    /// Fits on preprocessed rows `x` and 0/1 labels `y`.
    pub fn fit(x: &Array2<f64>, y: &[u8], params: &LogisticParams) -> Result<LogisticModel> {
        params.check()?;
        let positives = y.iter().filter(|v| **v == 1).count();
        if positives == 0 || positives == y.len() {
            return Err(ModelError::SingleClass);
        }
        let (x, y) = match params.class_weight {
            ClassWeight::None => (x.clone(), y.to_vec()),
            ClassWeight::Balanced => {
                let copies = ((y.len() - positives) as f64 / positives as f64)
                    .round()
                    .max(1.0) as usize;
                let mut idx = Vec::with_capacity(y.len() + positives * copies);
                for (i, v) in y.iter().enumerate() {
                    let k = if *v == 1 { copies } else { 1 };
                    idx.extend(std::iter::repeat_n(i, k));
                }
                (
                    x.select(ndarray::Axis(0), &idx),
                    idx.iter().map(|&i| y[i]).collect(),
                )
            }
        };
        let targets: Array1<bool> = y.iter().map(|v| *v == 1).collect();
        let dataset = Dataset::new(x, targets);
        let fitted = LogisticRegression::default()
            .alpha(params.l2)
            .max_iterations(params.max_iterations)
            .fit(&dataset)
            .map_err(|e| ModelError::Fit {
                family: Family::Logistic,
                message: e.to_string(),
            })?;
        // linfa orders labels so that `params` predict the "positive" class,
        // which is the larger label (true) in sort order; check it.
        let positive_is_true = fitted.labels().pos.class;
        let sign = if positive_is_true { 1.0 } else { -1.0 };
        Ok(LogisticModel {
            intercept: sign * fitted.intercept(),
            coefficients: fitted.params().iter().map(|w| sign * w).collect(),
        })
    }

    /// Churn probabilities of preprocessed rows.
    pub fn probabilities(&self, x: &Array2<f64>) -> Vec<f64> {
        x.rows()
            .into_iter()
            .map(|row| {
                sigmoid(
                    self.intercept
                        + row
                            .iter()
                            .zip(&self.coefficients)
                            .map(|(a, b)| a * b)
                            .sum::<f64>(),
                )
            })
            .collect()
    }

    /// Log-odds contributions `coefficient × x` per row and column.
    pub fn contributions(&self, x: &Array2<f64>) -> Array2<f64> {
        let w = Array1::from(self.coefficients.clone());
        x * &w
    }

    /// |coefficient| per column: the importance on standardised inputs.
    pub fn importance(&self) -> Vec<f64> {
        self.coefficients.iter().map(|w| w.abs()).collect()
    }

    /// The odds ratio of each column: `exp(coefficient)`.
    pub fn odds_ratios(&self) -> Vec<f64> {
        self.coefficients.iter().map(|w| w.exp()).collect()
    }
}
