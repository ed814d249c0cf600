//! Prometheus metrics, kept in atomics: request counts and latency
//! histograms per route and status, scores served, the churn probability
//! distribution of served scores, model reloads and the model version.
//! Rendered in the text exposition format at `GET /metrics`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// Upper bounds (seconds) of the latency buckets.
const LATENCY: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];
/// Upper bounds of the churn probability buckets.
const PROBABILITY: [f64; 10] = [0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0];

#[derive(Debug)]
struct Histogram<const N: usize> {
    buckets: [AtomicU64; N],
    count: AtomicU64,
    /// Sum in micro-units, to stay in integers.
    sum_micros: AtomicU64,
}

impl<const N: usize> Histogram<N> {
    fn new() -> Self {
        Histogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }

    fn observe(&self, bounds: &[f64; N], v: f64) {
        if let Some(k) = bounds.iter().position(|b| v <= *b) {
            self.buckets[k].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add((v.max(0.0) * 1e6) as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, labels: &str, bounds: &[f64; N]) {
        let mut cumulative = 0;
        let sep = if labels.is_empty() { "" } else { "," };
        for (b, n) in bounds.iter().zip(&self.buckets) {
            cumulative += n.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {cumulative}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {sum}");
        let _ = writeln!(out, "{name}_count{braces} {count}");
    }
}

/// One route's counts by method and status, and its latency.
#[derive(Debug)]
struct RouteMetrics {
    counts: RwLock<BTreeMap<(&'static str, u16), Arc<AtomicU64>>>,
    latency: Histogram<14>,
}

/// The label of a method: HTTP's own names, `OTHER` for extensions (so a
/// client cannot grow the label set).
fn method_label(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        "PATCH" => "PATCH",
        "TRACE" => "TRACE",
        "CONNECT" => "CONNECT",
        _ => "OTHER",
    }
}

/// The server's metrics. Counting a request allocates nothing once its
/// route, method and status have been seen.
#[derive(Debug)]
pub struct Metrics {
    routes: RwLock<BTreeMap<String, Arc<RouteMetrics>>>,
    scores: AtomicU64,
    probability: Histogram<10>,
    reloads_ok: AtomicU64,
    reloads_rejected: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            routes: RwLock::new(BTreeMap::new()),
            scores: AtomicU64::new(0),
            probability: Histogram::new(),
            reloads_ok: AtomicU64::new(0),
            reloads_rejected: AtomicU64::new(0),
        }
    }
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Metrics {
    /// Counts a finished request.
    pub fn request(&self, route: &str, method: &str, status: u16, seconds: f64) {
        let known = read(&self.routes).get(route).cloned();
        let stats = known.unwrap_or_else(|| {
            write(&self.routes)
                .entry(route.to_string())
                .or_insert_with(|| {
                    Arc::new(RouteMetrics {
                        counts: RwLock::new(BTreeMap::new()),
                        latency: Histogram::new(),
                    })
                })
                .clone()
        });
        let key = (method_label(method), status);
        let counter = read(&stats.counts).get(&key).cloned();
        let counter = counter.unwrap_or_else(|| {
            write(&stats.counts)
                .entry(key)
                .or_insert_with(|| Arc::new(AtomicU64::new(0)))
                .clone()
        });
        counter.fetch_add(1, Ordering::Relaxed);
        stats.latency.observe(&LATENCY, seconds);
    }

    /// Counts served scores.
    pub fn scored(&self, probabilities: impl Iterator<Item = f64>) {
        let mut n = 0;
        for p in probabilities {
            self.probability.observe(&PROBABILITY, p);
            n += 1;
        }
        self.scores.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts a model reload attempt.
    pub fn reload(&self, ok: bool) {
        if ok {
            self.reloads_ok.fetch_add(1, Ordering::Relaxed);
        } else {
            self.reloads_rejected.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The exposition text; `model` is the serving version and family.
    pub fn render(&self, model: Option<(&str, &str)>) -> String {
        let mut out = String::with_capacity(4096);
        out.push_str(
            "# HELP churnguard_http_requests_total HTTP requests by route, method and status.\n",
        );
        out.push_str("# TYPE churnguard_http_requests_total counter\n");
        let routes: Vec<(String, Arc<RouteMetrics>)> = read(&self.routes)
            .iter()
            .map(|(r, m)| (r.clone(), m.clone()))
            .collect();
        for (route, m) in &routes {
            for ((method, status), n) in read(&m.counts).iter() {
                let _ = writeln!(
                    out,
                    "churnguard_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {}",
                    n.load(Ordering::Relaxed)
                );
            }
        }
        out.push_str("# HELP churnguard_http_request_duration_seconds Request latency by route.\n");
        out.push_str("# TYPE churnguard_http_request_duration_seconds histogram\n");
        for (route, m) in &routes {
            m.latency.render(
                &mut out,
                "churnguard_http_request_duration_seconds",
                &format!("route=\"{route}\""),
                &LATENCY,
            );
        }
        out.push_str("# HELP churnguard_scores_total Customers scored online.\n");
        out.push_str("# TYPE churnguard_scores_total counter\n");
        let _ = writeln!(
            out,
            "churnguard_scores_total {}",
            self.scores.load(Ordering::Relaxed)
        );
        out.push_str(
            "# HELP churnguard_churn_probability Distribution of served churn probabilities.\n",
        );
        out.push_str("# TYPE churnguard_churn_probability histogram\n");
        self.probability
            .render(&mut out, "churnguard_churn_probability", "", &PROBABILITY);
        out.push_str("# HELP churnguard_model_reloads_total Model reload attempts by result.\n");
        out.push_str("# TYPE churnguard_model_reloads_total counter\n");
        let _ = writeln!(
            out,
            "churnguard_model_reloads_total{{result=\"ok\"}} {}",
            self.reloads_ok.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "churnguard_model_reloads_total{{result=\"rejected\"}} {}",
            self.reloads_rejected.load(Ordering::Relaxed)
        );
        out.push_str("# HELP churnguard_model_info The model being served.\n");
        out.push_str("# TYPE churnguard_model_info gauge\n");
        if let Some((version, family)) = model {
            let _ = writeln!(
                out,
                "churnguard_model_info{{version=\"{version}\",family=\"{family}\"}} 1"
            );
        }
        out
    }
}

/// Drift as gauges: PSI per input and for the score
/// (`input="churn_probability"`), labelled by the model version that
/// scored the rows, and the level as a number (0 none, 1 watch, 2 drift, -1
/// too few rows) so an alert can fire on `>= 2`. `metric` is the name
/// prefix (`churnguard_drift` for the latest run, `churnguard_online_drift`
/// for this replica's recent requests) and `rows` says whose rows.
pub fn render_drift(
    out: &mut String,
    metric: &str,
    rows: &str,
    version: &str,
    drift: &churnguard_core::monitor::DriftReport,
) {
    use churnguard_core::monitor::DriftLevel;
    use std::fmt::Write;
    let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    let level = |l: DriftLevel| match l {
        DriftLevel::TooFewRows => -1,
        DriftLevel::None => 0,
        DriftLevel::Watch => 1,
        DriftLevel::Drift => 2,
    };
    let _ = writeln!(out, "# HELP {metric}_psi Population stability index of {rows} input against the model's training baseline.\n# TYPE {metric}_psi gauge");
    let all = std::iter::once(&drift.score).chain(&drift.inputs);
    for d in all.clone() {
        let _ = writeln!(
            out,
            "{metric}_psi{{model_version=\"{}\",input=\"{}\"}} {}",
            esc(version),
            esc(&d.name),
            d.psi
        );
    }
    let _ = writeln!(out, "# HELP {metric}_level Drift level of {rows} input: -1 too few rows, 0 none, 1 watch, 2 drift.\n# TYPE {metric}_level gauge");
    for d in all {
        let _ = writeln!(
            out,
            "{metric}_level{{model_version=\"{}\",input=\"{}\"}} {}",
            esc(version),
            esc(&d.name),
            level(d.level)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_and_cumulative_buckets() {
        let m = Metrics::default();
        m.request("/v1/score", "POST", 200, 0.0003);
        m.request("/v1/score", "POST", 200, 0.02);
        m.request("/v1/score", "POST", 422, 0.0001);
        m.scored([0.02, 0.5, 0.9].into_iter());
        let text = m.render(Some(("m1", "logistic")));
        assert!(text.contains(
            "churnguard_http_requests_total{route=\"/v1/score\",method=\"POST\",status=\"200\"} 2"
        ));
        assert!(text.contains("status=\"422\"} 1"));
        assert!(text.contains(
            "churnguard_http_request_duration_seconds_bucket{route=\"/v1/score\",le=\"0.0005\"} 2"
        ));
        assert!(text.contains(
            "churnguard_http_request_duration_seconds_bucket{route=\"/v1/score\",le=\"+Inf\"} 3"
        ));
        assert!(text.contains("churnguard_scores_total 3"));
        assert!(text.contains("churnguard_churn_probability_bucket{le=\"0.05\"} 1"));
        assert!(text.contains("churnguard_model_info{version=\"m1\",family=\"logistic\"} 1"));
    }
}
