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
    numeric_names: Arc<[String]>,
    categorical_names: Arc<[String]>,
    numeric: Vec<VecDeque<f64>>,
    /// Categorical values as codes into `levels` (one table per input),
    /// not as strings: a request then neither allocates a copy of each value
    /// nor frees an evicted one (which, allocated on another worker thread,
    /// took the allocator's slow cross-thread path: 5% of a 1-customer
    /// request's time).
    categorical: Vec<VecDeque<u32>>,
    levels: Vec<Levels>,
    scores: VecDeque<f64>,
}

/// Code of a missing categorical value.
const MISSING: u32 = u32::MAX;

/// Distinct values kept per categorical input. Beyond it, new values share
/// one code, read back as [`OVERFLOW_LEVEL`]: a client sending free text
/// cannot grow the table without bound, and such values are unseen in
/// training anyway, which is what drift then reports.
const MAX_LEVELS: usize = 4_096;

/// The value that codes past [`MAX_LEVELS`] read back as.
const OVERFLOW_LEVEL: &str = "(other values)";

/// The distinct values of one categorical input, in first-seen order.
#[derive(Debug, Default)]
struct Levels {
    values: Vec<Box<str>>,
    /// Built once an input has more than a few values: a handful are found
    /// faster by comparing them in turn than by hashing.
    index: Option<std::collections::HashMap<Box<str>, u32>>,
}

impl Levels {
    const SCAN: usize = 16;

    fn code(&mut self, value: Option<&str>) -> u32 {
        let Some(v) = value else {
            return MISSING;
        };
        let found = match &self.index {
            Some(index) => index.get(v).copied(),
            None => self.values.iter().position(|l| &**l == v).map(|i| i as u32),
        };
        if let Some(code) = found {
            return code;
        }
        if self.values.len() >= MAX_LEVELS {
            return MAX_LEVELS as u32;
        }
        let code = self.values.len() as u32;
        self.values.push(v.into());
        if let Some(index) = &mut self.index {
            index.insert(v.into(), code);
        } else if self.values.len() > Self::SCAN {
            self.index = Some(
                self.values
                    .iter()
                    .enumerate()
                    .map(|(i, l)| (l.clone(), i as u32))
                    .collect(),
            );
        }
        code
    }

    fn value(&self, code: u32) -> Option<String> {
        match code {
            MISSING => None,
            c => Some(
                self.values
                    .get(c as usize)
                    .map_or(OVERFLOW_LEVEL, |l| &**l)
                    .to_string(),
            ),
        }
    }
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
        // A model's inputs are fixed, so its id says whether the ring holds
        // its rows: the input names are not compared on every request (the
        // counts are, so a batch of another shape can never index past a
        // ring).
        let same_model = ring.model.as_deref() == Some(model)
            && ring.numeric.len() == batch.numeric_names.len()
            && ring.categorical.len() == batch.categorical_names.len();
        if !same_model {
            *ring = Ring {
                model: Some(Arc::from(model)),
                numeric_names: batch.numeric_names.clone(),
                categorical_names: batch.categorical_names.clone(),
                numeric: vec![VecDeque::new(); batch.numeric_names.len()],
                categorical: vec![VecDeque::new(); batch.categorical_names.len()],
                levels: (0..batch.categorical_names.len())
                    .map(|_| Levels::default())
                    .collect(),
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
        let Ring {
            categorical,
            levels,
            ..
        } = &mut *ring;
        for ((column, levels), values) in categorical
            .iter_mut()
            .zip(levels.iter_mut())
            .zip(&batch.categorical)
        {
            column.drain(..over.min(column.len()));
            column.extend(values.iter().skip(skip).map(|v| levels.code(v.as_deref())));
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
                    .zip(&ring.levels)
                    .map(|(c, levels)| c.iter().map(|&code| levels.value(code)).collect())
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
            numeric_names: vec!["x".into()].into(),
            numeric: ndarray::Array2::from_shape_vec((values.len(), 1), values.to_vec()).unwrap(),
            categorical_names: vec!["plan".into()].into(),
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
    fn categorical_values_read_back_as_sent_and_free_text_is_bounded() {
        let mut levels = Levels::default();
        // Past the scan threshold the index takes over; codes stay stable.
        let sent: Vec<String> = (0..40).map(|i| format!("plan-{i}")).collect();
        let codes: Vec<u32> = sent.iter().map(|v| levels.code(Some(v))).collect();
        assert!(levels.index.is_some());
        for (v, c) in sent.iter().zip(&codes) {
            assert_eq!(levels.code(Some(v)), *c);
            assert_eq!(levels.value(*c).as_deref(), Some(v.as_str()));
        }
        let missing = levels.code(None);
        assert_eq!(levels.value(missing), None);
        // A client sending a new value every time fills the table once.
        for i in 0..2 * MAX_LEVELS {
            levels.code(Some(&format!("free text {i}")));
        }
        assert_eq!(levels.values.len(), MAX_LEVELS);
        let late = levels.code(Some("yet another"));
        assert_eq!(levels.value(late).as_deref(), Some(OVERFLOW_LEVEL));
        assert_eq!(levels.value(codes[3]).as_deref(), Some("plan-3"));

        // Through the window: what drift sees is what was sent.
        let w = OnlineWindow::new(10);
        for level in ["basic", "pro", "basic"] {
            w.push("m1", &batch(&[1.0], level), &[0.1]);
        }
        let ring = lock(&w.ring);
        let seen: Vec<Option<String>> = ring.categorical[0]
            .iter()
            .map(|&c| ring.levels[0].value(c))
            .collect();
        assert_eq!(seen, ["basic", "pro", "basic"].map(|v| Some(v.to_string())));
    }

    #[test]
    fn a_zero_window_keeps_nothing() {
        let w = OnlineWindow::new(0);
        w.push("m1", &batch(&[1.0], "basic"), &[0.1]);
        assert_eq!(w.rows().0, 0);
    }
}
