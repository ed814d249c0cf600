//! Shadow challengers: the server scores every sampled request with the
//! champion and the shadow challenger, answers with the champion's score
//! only, and records both. Pairs wait in a bounded buffer (the oldest are
//! dropped, and counted, when the store falls behind) and a background task
//! flushes them to the store in batches, where `churnguard monitor` and the
//! monitoring page compare the two models.
//!
//! Sampling is by a hash of the customer id, so a sampled customer is
//! sampled on every request and the realised comparison sees whole
//! customers; the request path pays one hash per record, and with a shadow
//! set, one extra prediction of the batch.

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use churnguard_store::{ShadowSample, Store};

/// `[serve.shadow]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShadowConfig {
    /// Share of customers whose scores are recorded, `0..=1`; defaults to
    /// `1.0` (every customer).
    pub sample_rate: f64,
    /// Most pairs waiting to be written; the oldest are dropped beyond it.
    /// Defaults to `20000` (about 2 MB).
    pub buffer: usize,
    /// Seconds between flushes to the store; defaults to `5`.
    pub flush_secs: f64,
}

impl Default for ShadowConfig {
    fn default() -> Self {
        ShadowConfig {
            sample_rate: 1.0,
            buffer: 20_000,
            flush_secs: 5.0,
        }
    }
}

impl ShadowConfig {
    /// Checks the settings; the error is `(key, message)`.
    pub fn check(&self) -> Result<(), (String, String)> {
        let bad = |k: &str, m: String| Err((format!("serve.shadow.{k}"), m));
        if !(0.0..=1.0).contains(&self.sample_rate) {
            return bad(
                "sample_rate",
                format!("must be within 0..=1, got {}", self.sample_rate),
            );
        }
        if self.buffer == 0 || self.buffer > 10_000_000 {
            return bad(
                "buffer",
                format!("must be 1..=10000000, got {}", self.buffer),
            );
        }
        if !(self.flush_secs.is_finite() && self.flush_secs > 0.0) {
            return bad("flush_secs", "must be > 0".into());
        }
        Ok(())
    }
}

/// A pair waiting in the buffer (model ids shared, not copied per pair).
#[derive(Debug, Clone)]
struct Pending {
    scored_at: i64,
    customer_id: String,
    champion_model: Arc<str>,
    shadow_model: Arc<str>,
    champion_probability: f64,
    shadow_probability: f64,
}

/// The bounded buffer of pairs and its counters.
#[derive(Debug)]
pub struct ShadowRecorder {
    sample_rate: f64,
    capacity: usize,
    buffer: Mutex<VecDeque<Pending>>,
    recorded: AtomicU64,
    dropped: AtomicU64,
    flushed: AtomicU64,
    flush_failures: AtomicU64,
    /// Woken when the buffer is half full, so a busy server flushes
    /// sooner than every `flush_secs`.
    half_full: tokio::sync::Notify,
}

/// What the recorder has done, for metrics and the monitoring page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RecorderCounts {
    /// Pairs recorded since start.
    pub recorded: u64,
    /// Pairs dropped because the buffer was full.
    pub dropped: u64,
    /// Pairs written to the store.
    pub flushed: u64,
    /// Flushes that failed (their pairs went back to the buffer).
    pub flush_failures: u64,
    /// Pairs waiting now.
    pub buffered: u64,
}

impl ShadowRecorder {
    /// A recorder with the configured sampling and bound.
    pub fn new(config: &ShadowConfig) -> ShadowRecorder {
        ShadowRecorder {
            sample_rate: config.sample_rate,
            capacity: config.buffer.max(1),
            buffer: Mutex::new(VecDeque::new()),
            recorded: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            flushed: AtomicU64::new(0),
            flush_failures: AtomicU64::new(0),
            half_full: tokio::sync::Notify::new(),
        }
    }

    /// Resolves when the buffer has filled to half its bound since the
    /// last call (the flush task waits on it beside its timer).
    pub async fn half_full(&self) {
        self.half_full.notified().await;
    }

    /// Whether `customer_id` is in the sample (the same answer on every
    /// request and every replica).
    pub fn sampled(&self, customer_id: &str) -> bool {
        if self.sample_rate >= 1.0 {
            return true;
        }
        if self.sample_rate <= 0.0 {
            return false;
        }
        let mut h = rustc_hash::FxHasher::default();
        customer_id.hash(&mut h);
        // The top 53 bits as a uniform number in [0, 1).
        ((h.finish() >> 11) as f64 / (1u64 << 53) as f64) < self.sample_rate
    }

    /// Records the pairs of one request: `ids`, the champion's and the
    /// shadow's probabilities, row by row, for the sampled customers.
    pub fn record(
        &self,
        ids: &[String],
        champion: (&Arc<str>, &[f64]),
        shadow: (&Arc<str>, &[f64]),
        scored_at: i64,
    ) {
        let mut pairs: Vec<Pending> = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            if !self.sampled(id) {
                continue;
            }
            let (Some(&c), Some(&s)) = (champion.1.get(i), shadow.1.get(i)) else {
                continue;
            };
            pairs.push(Pending {
                scored_at,
                customer_id: id.clone(),
                champion_model: champion.0.clone(),
                shadow_model: shadow.0.clone(),
                champion_probability: c,
                shadow_probability: s,
            });
        }
        if pairs.is_empty() {
            return;
        }
        self.recorded
            .fetch_add(pairs.len() as u64, Ordering::Relaxed);
        self.push_bounded(pairs);
    }

    fn push_bounded(&self, pairs: Vec<Pending>) {
        let mut buffer = self
            .buffer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut dropped = 0u64;
        let before = buffer.len();
        for p in pairs {
            if buffer.len() == self.capacity {
                buffer.pop_front();
                dropped += 1;
            }
            buffer.push_back(p);
        }
        let crossed_half = before < self.capacity / 2 && buffer.len() >= self.capacity / 2;
        drop(buffer);
        if crossed_half {
            self.half_full.notify_one();
        }
        if dropped > 0 {
            self.dropped.fetch_add(dropped, Ordering::Relaxed);
        }
    }

    /// Pairs waiting now.
    pub fn buffered(&self) -> usize {
        self.buffer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// The counters.
    pub fn counts(&self) -> RecorderCounts {
        RecorderCounts {
            recorded: self.recorded.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            flushed: self.flushed.load(Ordering::Relaxed),
            flush_failures: self.flush_failures.load(Ordering::Relaxed),
            buffered: self.buffered() as u64,
        }
    }

    /// Writes every waiting pair to the store; on failure they go back to
    /// the buffer (still bounded) and the error is returned.
    pub async fn flush(&self, store: &Store) -> Result<usize, churnguard_store::StoreError> {
        let pending: Vec<Pending> = {
            let mut buffer = self
                .buffer
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            buffer.drain(..).collect()
        };
        if pending.is_empty() {
            return Ok(0);
        }
        let samples: Vec<ShadowSample> = pending
            .iter()
            .map(|p| ShadowSample {
                scored_at: p.scored_at,
                customer_id: p.customer_id.clone(),
                champion_model: p.champion_model.to_string(),
                shadow_model: p.shadow_model.to_string(),
                champion_probability: p.champion_probability,
                shadow_probability: p.shadow_probability,
            })
            .collect();
        match store.record_shadow_samples(&samples).await {
            Ok(()) => {
                self.flushed
                    .fetch_add(samples.len() as u64, Ordering::Relaxed);
                Ok(samples.len())
            }
            Err(e) => {
                self.flush_failures.fetch_add(1, Ordering::Relaxed);
                // Older pairs go back in front of any that arrived since.
                let mut buffer = self
                    .buffer
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let newer: Vec<Pending> = buffer.drain(..).collect();
                drop(buffer);
                self.push_bounded(pending.into_iter().chain(newer).collect());
                Err(e)
            }
        }
    }

    /// Appends the shadow gauges and counters to a Prometheus exposition.
    pub fn render(&self, out: &mut String, shadow_model: Option<&str>) {
        use std::fmt::Write;
        let c = self.counts();
        for (name, help, kind, value) in [
            ("churnguard_shadow_pairs_total", "Requests' customers scored by both the champion and the shadow challenger and recorded.", "counter", c.recorded),
            ("churnguard_shadow_dropped_total", "Shadow pairs dropped because the buffer was full (the store fell behind).", "counter", c.dropped),
            ("churnguard_shadow_flushed_total", "Shadow pairs written to the store.", "counter", c.flushed),
            ("churnguard_shadow_flush_failures_total", "Flushes of shadow pairs that failed (retried at the next flush).", "counter", c.flush_failures),
            ("churnguard_shadow_buffered", "Shadow pairs waiting to be written.", "gauge", c.buffered),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
        }
        let _ = writeln!(
            out,
            "# HELP churnguard_shadow_model_info The shadow challenger being scored (1), if any.\n# TYPE churnguard_shadow_model_info gauge"
        );
        if let Some(id) = shadow_model {
            let _ = writeln!(
                out,
                "churnguard_shadow_model_info{{model_version=\"{id}\"}} 1"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize, from: usize) -> Vec<String> {
        (from..from + n).map(|i| format!("C{i}")).collect()
    }

    #[test]
    fn the_buffer_stays_bounded_and_counts_what_it_drops() {
        let r = ShadowRecorder::new(&ShadowConfig {
            buffer: 1_000,
            ..ShadowConfig::default()
        });
        let (c, s): (Arc<str>, Arc<str>) = ("champ".into(), "shadow".into());
        // A soak: 100,000 requests of one customer with no flush.
        for i in 0..100_000 {
            r.record(&ids(1, i), (&c, &[0.1]), (&s, &[0.2]), 0);
        }
        let counts = r.counts();
        assert_eq!(counts.buffered, 1_000);
        assert_eq!(counts.recorded, 100_000);
        assert_eq!(counts.dropped, 99_000);
        // The newest pairs are the ones kept.
        let first = r
            .buffer
            .lock()
            .unwrap()
            .front()
            .unwrap()
            .customer_id
            .clone();
        assert_eq!(first, "C99000");
    }

    #[test]
    fn sampling_is_by_customer_and_near_its_rate() {
        let r = ShadowRecorder::new(&ShadowConfig {
            sample_rate: 0.2,
            ..ShadowConfig::default()
        });
        let all = ids(20_000, 0);
        let picked: Vec<bool> = all.iter().map(|id| r.sampled(id)).collect();
        let share = picked.iter().filter(|p| **p).count() as f64 / all.len() as f64;
        assert!((share - 0.2).abs() < 0.02, "{share}");
        // The same customers again.
        assert!(all.iter().zip(&picked).all(|(id, p)| r.sampled(id) == *p));
    }

    #[test]
    fn settings_are_checked() {
        let bad = ShadowConfig {
            sample_rate: 1.5,
            ..ShadowConfig::default()
        };
        assert_eq!(bad.check().unwrap_err().0, "serve.shadow.sample_rate");
        assert!(ShadowConfig::default().check().is_ok());
    }
}
