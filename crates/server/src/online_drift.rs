//! Drift of online traffic, per replica: the inputs and scores of the last
//! `[serve] drift_window` customers scored by `POST /v1/score`, kept in
//! memory column by column (a bounded ring per input, reset when the
//! serving model changes), compared with the serving model's training
//! baseline when `/metrics` or `GET /v1/monitoring` asks. Replicas each see
//! their own share of traffic; Prometheus labels them by instance.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use churnguard_core::models::Batch;
use churnguard_core::monitor::{drift, Baseline, DriftConfig, DriftReport};

use crate::state::lock;

/// The ring of one model's recent rows.
#[derive(Debug, Default)]
struct Ring {
    model: Option<Arc<str>>,
    numeric_names: Vec<String>,
    categorical_names: Vec<String>,
    numeric: Vec<VecDeque<f64>>,
    categorical: Vec<VecDeque<Option<String>>>,
    scores: VecDeque<f64>,
}

/// The recent online rows of the serving model.
#[derive(Debug)]
pub struct OnlineWindow {
    capacity: usize,
    ring: Mutex<Ring>,
}

impl OnlineWindow {
    /// A window of the last `capacity` rows (`0` keeps none).
    pub fn new(capacity: usize) -> OnlineWindow {
        OnlineWindow {
            capacity,
            ring: Mutex::new(Ring::default()),
        }
    }

    /// Adds a scored batch of `model`.
    pub fn push(&self, model: &str, batch: &Batch, scores: &[f64]) {
        if self.capacity == 0 || batch.is_empty() || scores.len() != batch.len() {
            return;
        }
        let mut ring = lock(&self.ring);
        if ring.model.as_deref() != Some(model)
            || ring.numeric_names != batch.numeric_names
            || ring.categorical_names != batch.categorical_names
        {
            *ring = Ring {
                model: Some(Arc::from(model)),
                numeric_names: batch.numeric_names.clone(),
                categorical_names: batch.categorical_names.clone(),
                numeric: vec![VecDeque::new(); batch.numeric_names.len()],
                categorical: vec![VecDeque::new(); batch.categorical_names.len()],
                scores: VecDeque::new(),
            };
        }
        // Only the newest `capacity` rows of a large batch matter.
        let skip = batch.len().saturating_sub(self.capacity);
        let added = batch.len() - skip;
        let over = (ring.scores.len() + added).saturating_sub(self.capacity);
        for (j, column) in ring.numeric.iter_mut().enumerate() {
            column.drain(..over.min(column.len()));
            column.extend(batch.numeric.column(j).iter().skip(skip).copied());
        }
        for (j, column) in ring.categorical.iter_mut().enumerate() {
            column.drain(..over.min(column.len()));
            column.extend(batch.categorical[j].iter().skip(skip).cloned());
        }
        let scores_over = over.min(ring.scores.len());
        ring.scores.drain(..scores_over);
        ring.scores.extend(scores.iter().skip(skip).copied());
    }

    /// Rows held now, and the model they belong to.
    pub fn rows(&self) -> (usize, Option<Arc<str>>) {
        let ring = lock(&self.ring);
        (ring.scores.len(), ring.model.clone())
    }

    /// Drift of the window's rows against `baseline`, if they belong to
    /// `model` (rows of an earlier model are not compared with a new one).
    pub fn drift(
        &self,
        model: &str,
        baseline: &Baseline,
        config: &DriftConfig,
    ) -> Option<DriftReport> {
        let (batch, scores) = {
            let ring = lock(&self.ring);
            if ring.model.as_deref() != Some(model) || ring.scores.is_empty() {
                return None;
            }
            let n = ring.scores.len();
            let mut numeric = ndarray::Array2::<f64>::zeros((n, ring.numeric.len()));
            for (j, column) in ring.numeric.iter().enumerate() {
                for (i, v) in column.iter().enumerate() {
                    numeric[[i, j]] = *v;
                }
            }
            let batch = Batch {
                ids: vec![String::new(); n],
                numeric_names: ring.numeric_names.clone(),
                numeric,
                categorical_names: ring.categorical_names.clone(),
                categorical: ring
                    .categorical
                    .iter()
                    .map(|c| c.iter().cloned().collect())
                    .collect(),
            };
            (batch, ring.scores.iter().copied().collect::<Vec<f64>>())
        };
        Some(drift(baseline, &batch, &scores, config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use churnguard_core::monitor::{DriftLevel, InputBaseline, NumericBaseline};

    fn batch(values: &[f64], level: &str) -> Batch {
        Batch {
            ids: vec![String::new(); values.len()],
            numeric_names: vec!["x".into()],
            numeric: ndarray::Array2::from_shape_vec((values.len(), 1), values.to_vec()).unwrap(),
            categorical_names: vec!["plan".into()],
            categorical: vec![vec![Some(level.to_string()); values.len()]],
        }
    }

    #[test]
    fn the_window_is_bounded_resets_with_the_model_and_sees_a_shift() {
        let w = OnlineWindow::new(1_000);
        let train: Vec<f64> = (0..10_000).map(|i| f64::from(i % 1000)).collect();
        let baseline = Baseline {
            rows: train.len(),
            inputs: vec![InputBaseline::Numeric {
                name: "x".into(),
                baseline: NumericBaseline::of(&train),
            }],
            score: NumericBaseline::of(&vec![0.1; 100]),
        };
        let config = DriftConfig::default();
        // 3,000 rows of the training distribution, 7 at a time.
        for start in (0..3_000).step_by(7) {
            let v: Vec<f64> = (start..start + 7)
                .map(|i| f64::from((i * 7) % 1000))
                .collect();
            w.push("m1", &batch(&v, "basic"), &vec![0.1; v.len()]);
        }
        assert_eq!(w.rows().0, 1_000);
        let d = w.drift("m1", &baseline, &config).unwrap();
        assert_eq!(d.rows, 1_000);
        assert_eq!(d.inputs[0].level, DriftLevel::None, "{d:?}");
        // A batch larger than the window replaces it with its newest rows.
        let shifted: Vec<f64> = (0..2_500).map(|i| f64::from(i % 1000) + 600.0).collect();
        w.push("m1", &batch(&shifted, "basic"), &vec![0.1; shifted.len()]);
        let d = w.drift("m1", &baseline, &config).unwrap();
        assert_eq!(d.rows, 1_000);
        assert_eq!(d.inputs[0].level, DriftLevel::Drift, "{d:?}");
        // Another model's rows are never compared with this baseline.
        assert!(w.drift("m2", &baseline, &config).is_none());
        w.push("m2", &batch(&[1.0], "basic"), &[0.1]);
        assert_eq!(w.rows().0, 1);
        assert!(w.drift("m1", &baseline, &config).is_none());
    }

    #[test]
    fn a_zero_window_keeps_nothing() {
        let w = OnlineWindow::new(0);
        w.push("m1", &batch(&[1.0], "basic"), &[0.1]);
        assert_eq!(w.rows().0, 0);
    }
}
