//! Shadow challengers: every sampled customer the server scores with the
//! champion is scored by the shadow challenger too; the client gets the
//! champion's answer only, and both scores are recorded. The request path
//! only queues the customer's inputs beside the champion's probability (a
//! bounded queue: the oldest rows are dropped, and counted, when the
//! flushes fall behind); a background task scores the queued rows with the
//! shadow in batches (QuickScorer and the vectorised paths make a batch far
//! cheaper per row than one request at a time) and writes the pairs to the
//! store, where `churnguard monitor` and the monitoring page compare the two
//! models. So the shadow adds neither its latency nor most of its CPU to
//! the request.
//!
//! Sampling is by a hash of the customer id, so a sampled customer is
//! sampled on every request and the realised comparison sees whole
//! customers.

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use churnguard_core::models::Batch;
use churnguard_store::{ShadowSample, Store};

use crate::state::{lock, LoadedModel};

/// `[serve.shadow]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShadowConfig {
    /// Share of customers scored by the shadow and recorded, `0..=1`;
    /// defaults to `0.1`. What a pair costs is mostly its write to the
    /// store: at every customer, a server saturated with one-customer
    /// requests spent a third of its CPU writing pairs (`bench/shadow`); a
    /// tenth still records thousands of pairs an hour at modest traffic.
    /// Raise it for a quiet service, or for a faster verdict.
    pub sample_rate: f64,
    /// Most customers waiting to be scored by the shadow and written; the
    /// oldest are dropped beyond it. Defaults to `20000` (a few MB: each
    /// holds its inputs until the flush).
    pub buffer: usize,
    /// Seconds between flushes to the store; defaults to `1` (small,
    /// frequent flushes spread their CPU instead of stalling requests in
    /// bursts).
    pub flush_secs: f64,
    /// The nice value (0..=19) of the thread that scores the queued
    /// customers with the shadow and, on SQLite, writes the pairs; defaults
    /// to `10`. The kernel then runs that work when the request threads
    /// leave a core free, and gives it only a small share while they are
    /// busy, so a flush does not stall requests; a server saturated for a
    /// long time drops pairs instead (counted). 0 runs it like any other
    /// thread. Linux only; elsewhere the thread keeps the default priority.
    pub nice: i32,
}

impl Default for ShadowConfig {
    fn default() -> Self {
        ShadowConfig {
            sample_rate: 0.1,
            buffer: 20_000,
            flush_secs: 1.0,
            nice: 10,
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
        if !(0..=19).contains(&self.nice) {
            return bad("nice", format!("must be within 0..=19, got {}", self.nice));
        }
        Ok(())
    }
}

/// A customer waiting for the shadow: its inputs and the champion's score.
#[derive(Debug, Clone)]
struct Pending {
    scored_at: i64,
    customer_id: String,
    champion_model: Arc<str>,
    champion_probability: f64,
    shadow: Arc<LoadedModel>,
    numeric: Box<[f64]>,
    categorical: Box<[Option<String>]>,
}

/// The bounded buffer of pairs and its counters.
#[derive(Debug)]
pub struct ShadowRecorder {
    sample_rate: f64,
    capacity: usize,
    buffer: Mutex<VecDeque<Pending>>,
    /// Pairs scored whose write failed, retried first at the next flush
    /// (bounded like the queue).
    unsent: Mutex<Vec<ShadowSample>>,
    recorded: AtomicU64,
    dropped: AtomicU64,
    flushed: AtomicU64,
    flush_failures: AtomicU64,
    /// Woken when the buffer is half full, so a busy server flushes
    /// sooner than every `flush_secs`.
    half_full: tokio::sync::Notify,
    /// The nice value of the shadow thread.
    nice: i32,
    /// The shadow thread, started by the first flush.
    worker: tokio::sync::OnceCell<Worker>,
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
            unsent: Mutex::new(Vec::new()),
            recorded: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            flushed: AtomicU64::new(0),
            flush_failures: AtomicU64::new(0),
            half_full: tokio::sync::Notify::new(),
            nice: config.nice,
            worker: tokio::sync::OnceCell::new(),
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

    /// Queues the sampled customers of one scored request: `batch` (as the
    /// champion read it), the champion and its probabilities, the shadow
    /// that will score them at the next flush.
    pub fn record(
        &self,
        batch: &Batch,
        champion: &LoadedModel,
        champion_probabilities: &[f64],
        shadow: &Arc<LoadedModel>,
        scored_at: i64,
    ) {
        let mut pending: Vec<Pending> = Vec::new();
        let mut champion_id: Option<Arc<str>> = None;
        for (i, id) in batch.ids.iter().enumerate() {
            if !self.sampled(id) {
                continue;
            }
            let Some(&p) = champion_probabilities.get(i) else {
                continue;
            };
            let champion_model = champion_id
                .get_or_insert_with(|| Arc::from(champion.manifest.id.as_str()))
                .clone();
            pending.push(Pending {
                scored_at,
                customer_id: id.clone(),
                champion_model,
                champion_probability: p,
                shadow: shadow.clone(),
                numeric: batch.numeric.row(i).to_vec().into_boxed_slice(),
                categorical: batch.categorical.iter().map(|c| c[i].clone()).collect(),
            });
        }
        if pending.is_empty() {
            return;
        }
        self.recorded
            .fetch_add(pending.len() as u64, Ordering::Relaxed);
        self.push_bounded(pending);
    }

    fn push_bounded(&self, pairs: Vec<Pending>) {
        let mut buffer = lock(&self.buffer);
        let (dropped, crossed_half) = push_bounded(&mut buffer, pairs, self.capacity);
        drop(buffer);
        if crossed_half {
            self.half_full.notify_one();
        }
        if dropped > 0 {
            self.dropped.fetch_add(dropped, Ordering::Relaxed);
        }
    }

    /// Customers and pairs waiting now.
    pub fn buffered(&self) -> usize {
        lock(&self.buffer).len() + lock(&self.unsent).len()
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

    /// Scores every queued customer with its shadow (in batches, on the
    /// blocking pool) and writes the pairs to the store. Pairs whose write
    /// fails are kept (bounded) for the next flush and the error returned;
    /// customers a shadow cannot score are logged and dropped.
    pub async fn flush(&self, store: &Store) -> Result<usize, churnguard_store::StoreError> {
        let mut written = 0;
        loop {
            // A bounded slice at a time, so a large queue is scored and
            // written in steps that leave the cores to requests between.
            let pending: Vec<Pending> = {
                let mut buffer = lock(&self.buffer);
                let n = buffer.len().min(FLUSH_STEP);
                buffer.drain(..n).collect()
            };
            let more = pending.len() == FLUSH_STEP;
            written += self.flush_step(store, pending).await?;
            if !more {
                return Ok(written);
            }
            tokio::task::yield_now().await;
        }
    }

    async fn flush_step(
        &self,
        store: &Store,
        pending: Vec<Pending>,
    ) -> Result<usize, churnguard_store::StoreError> {
        let unsent: Vec<ShadowSample> = std::mem::take(&mut *lock(&self.unsent));
        if pending.is_empty() && unsent.is_empty() {
            return Ok(0);
        }
        let worker = self
            .worker
            .get_or_init(|| async { Worker::start(store.clone(), self.nice) })
            .await;
        let handed = pending.len() + unsent.len();
        let outcome = match worker.run(pending, unsent).await {
            Some(WorkerOutcome::Written(n)) => Ok(n),
            Some(WorkerOutcome::Scored(samples)) => {
                match store.record_shadow_samples(&samples).await {
                    Ok(()) => Ok(samples.len()),
                    Err(e) => Err((samples, e)),
                }
            }
            Some(WorkerOutcome::Failed(samples, e)) => Err((samples, e)),
            None => {
                tracing::error!("the shadow thread has stopped; queued customers are dropped");
                self.dropped.fetch_add(handed as u64, Ordering::Relaxed);
                Ok(0)
            }
        };
        match outcome {
            Ok(n) => {
                self.flushed.fetch_add(n as u64, Ordering::Relaxed);
                Ok(n)
            }
            Err((mut samples, e)) => {
                self.flush_failures.fetch_add(1, Ordering::Relaxed);
                let keep = samples.len().min(self.capacity);
                let dropped = samples.len() - keep;
                samples.drain(..dropped);
                if dropped > 0 {
                    self.dropped.fetch_add(dropped as u64, Ordering::Relaxed);
                }
                *lock(&self.unsent) = samples;
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

/// Customers scored and written per step of a flush.
const FLUSH_STEP: usize = 2_000;

/// One step of a flush for the shadow thread: customers to score, and
/// pairs scored earlier whose write failed.
struct Job {
    pending: Vec<Pending>,
    unsent: Vec<ShadowSample>,
    reply: tokio::sync::oneshot::Sender<WorkerOutcome>,
}

/// What the shadow thread did with a [`Job`].
enum WorkerOutcome {
    /// Scored and written (SQLite): this many pairs.
    Written(usize),
    /// Scored, for the flush to write through the pool (PostgreSQL,
    /// in-memory SQLite).
    Scored(Vec<ShadowSample>),
    /// Scored, but the write failed; the pairs come back to be kept.
    Failed(Vec<ShadowSample>, churnguard_store::StoreError),
}

/// The thread that scores queued customers with the shadow and, on
/// SQLite, writes the pairs on a connection of its own; it runs at the
/// configured nice value, so its work yields to the request threads.
/// It stops when the recorder is dropped.
#[derive(Debug)]
struct Worker {
    jobs: std::sync::mpsc::Sender<Job>,
}

impl Worker {
    fn start(store: Store, nice: i32) -> Worker {
        let (jobs, inbox) = std::sync::mpsc::channel::<Job>();
        let spawned = std::thread::Builder::new()
            .name("churnguard-shadow".into())
            .spawn(move || {
                lower_priority(nice);
                serve_jobs(&store, &inbox);
            });
        if let Err(e) = &spawned {
            tracing::error!(error = %e, "the shadow thread could not be started");
        }
        Worker { jobs }
    }

    /// Hands one step to the thread and waits for it; `None` when the
    /// thread is gone.
    async fn run(&self, pending: Vec<Pending>, unsent: Vec<ShadowSample>) -> Option<WorkerOutcome> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Job {
                pending,
                unsent,
                reply,
            })
            .ok()?;
        answer.await.ok()
    }
}

/// The shadow thread's loop: each job is scored and, where the store has a
/// [`churnguard_store::ShadowWriter`] (SQLite on a file), written here too.
/// Ends when the recorder, and with it the sender, is dropped.
fn serve_jobs(store: &Store, inbox: &std::sync::mpsc::Receiver<Job>) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "the shadow thread could not start");
            return;
        }
    };
    let mut writer: Option<churnguard_store::ShadowWriter> = None;
    let mut pooled = false;
    while let Ok(Job {
        pending,
        mut unsent,
        reply,
    }) = inbox.recv()
    {
        let scored =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| score_pending(pending)))
                .unwrap_or_else(|_| {
                    tracing::error!("scoring shadow pairs panicked; they are dropped");
                    Vec::new()
                });
        unsent.extend(scored);
        let samples = unsent;
        if writer.is_none() && !pooled {
            match runtime.block_on(store.shadow_writer()) {
                Ok(Some(w)) => writer = Some(w),
                Ok(None) => pooled = true,
                Err(e) => {
                    let _ = reply.send(WorkerOutcome::Failed(samples, e));
                    continue;
                }
            }
        }
        let outcome = match writer.as_mut() {
            None => WorkerOutcome::Scored(samples),
            Some(w) => match runtime.block_on(w.write(&samples)) {
                Ok(()) => WorkerOutcome::Written(samples.len()),
                Err(e) => {
                    // A fresh connection next time.
                    writer = None;
                    WorkerOutcome::Failed(samples, e)
                }
            },
        };
        let _ = reply.send(outcome);
    }
}

/// Gives the calling thread the nice value `nice` (Linux: the nice value
/// is per thread there; threads it starts inherit it).
fn lower_priority(nice: i32) {
    #[cfg(target_os = "linux")]
    if nice > 0 {
        // SAFETY: plain system calls on the calling thread's own id.
        let rc = unsafe {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            libc::setpriority(libc::PRIO_PROCESS, tid, nice)
        };
        if rc != 0 {
            tracing::warn!(
                nice,
                error = %std::io::Error::last_os_error(),
                "could not lower the shadow thread's priority"
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = nice;
}

/// Appends `items` to `queue`, dropping the oldest beyond `capacity`;
/// returns how many were dropped and whether the queue crossed half full.
fn push_bounded<T>(queue: &mut VecDeque<T>, items: Vec<T>, capacity: usize) -> (u64, bool) {
    let before = queue.len();
    let mut dropped = 0u64;
    for item in items {
        if queue.len() == capacity {
            queue.pop_front();
            dropped += 1;
        }
        queue.push_back(item);
    }
    let crossed_half = before < capacity / 2 && queue.len() >= capacity / 2;
    (dropped, crossed_half)
}

/// Scores queued customers with their shadow, run by run of the same
/// shadow (one batch each), into pairs.
fn score_pending(pending: Vec<Pending>) -> Vec<ShadowSample> {
    let mut out = Vec::with_capacity(pending.len());
    let mut rest = pending.as_slice();
    while let Some(first) = rest.first() {
        let run = rest
            .iter()
            .take_while(|p| Arc::ptr_eq(&p.shadow, &first.shadow))
            .count();
        let (group, tail) = rest.split_at(run);
        rest = tail;
        let shadow = &first.shadow;
        let width = shadow.schema.numeric.len();
        let batch = Batch {
            ids: group.iter().map(|p| p.customer_id.clone()).collect(),
            numeric_names: shadow.schema.numeric.clone(),
            numeric: ndarray::Array2::from_shape_fn((group.len(), width), |(i, j)| {
                group[i].numeric.get(j).copied().unwrap_or(f64::NAN)
            }),
            categorical_names: shadow.schema.categorical.clone(),
            categorical: (0..shadow.schema.categorical.len())
                .map(|j| {
                    group
                        .iter()
                        .map(|p| p.categorical.get(j).cloned().flatten())
                        .collect()
                })
                .collect(),
        };
        match shadow.model.predict(&batch) {
            Ok(probabilities) => {
                let shadow_model = shadow.manifest.id.clone();
                out.extend(group.iter().zip(probabilities).map(|(p, s)| ShadowSample {
                    scored_at: p.scored_at,
                    customer_id: p.customer_id.clone(),
                    champion_model: p.champion_model.to_string(),
                    shadow_model: shadow_model.clone(),
                    champion_probability: p.champion_probability,
                    shadow_probability: s,
                }));
            }
            Err(e) => tracing::warn!(
                model = %shadow.manifest.id,
                customers = group.len(),
                error = %e,
                "the shadow challenger could not score queued customers; they are dropped"
            ),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize, from: usize) -> Vec<String> {
        (from..from + n).map(|i| format!("C{i}")).collect()
    }

    #[test]
    fn the_queue_stays_bounded_and_counts_what_it_drops() {
        // A soak: 100,000 requests of one customer with no flush.
        let mut queue = VecDeque::new();
        let mut dropped = 0;
        let mut crossings = 0;
        for i in 0..100_000u32 {
            let (d, crossed) = push_bounded(&mut queue, vec![i], 1_000);
            dropped += d;
            crossings += u32::from(crossed);
        }
        assert_eq!(queue.len(), 1_000);
        assert_eq!(dropped, 99_000);
        // The flush task is woken once, when it filled to half.
        assert_eq!(crossings, 1);
        // The newest are the ones kept.
        assert_eq!(queue.front(), Some(&99_000));
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
        let bad = ShadowConfig {
            nice: 20,
            ..ShadowConfig::default()
        };
        assert_eq!(bad.check().unwrap_err().0, "serve.shadow.nice");
        assert!(ShadowConfig::default().check().is_ok());
    }
}
