//! The HTTP server: `churnguard serve`. [`router`] builds the axum app over
//! an [`AppState`]; [`run`] loads the config, keys, store and champion,
//! binds, and serves until SIGTERM or Ctrl-C, finishing in-flight requests.
//!
//! Layers, outermost first: request id (set and propagated), metrics and a
//! structured log line per request (at info when it failed, debug when it
//! succeeded: method, route, status, latency, request id; never bodies, keys
//! or customer values), a timeout (503), and a body
//! limit (413). A background task polls the registry's champion pointer and
//! reloads through the same path as `POST /v1/models/reload`, so a
//! `churnguard models promote` reaches a running server; it follows the
//! shadow pointer (`churnguard models shadow ID`) the same way, and a second
//! task flushes the shadow challenger's recorded scores to the store.

#![warn(missing_docs)]

pub mod auth;
pub mod config;
pub mod delivery;
pub mod error;
pub mod idempotency;
pub mod metrics;
pub mod online_drift;
pub mod openapi;
pub mod routes;
pub mod score;
pub mod shadow;
pub mod state;
pub mod web;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::{ArcSwap, ArcSwapOption};
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::timeout::TimeoutLayer;

pub use config::ServeConfig;
use state::lock;
pub use state::AppState;

use churnguard_app::config::AppConfig;
use churnguard_app::registry::Registry;
use churnguard_core::error::{ErrorKind, HasKind};
use churnguard_store::Store;

/// The log filter when `CHURNGUARD_LOG` is unset: requests at info, the
/// database driver's statement logs only when slow or failing.
pub const DEFAULT_LOG_FILTER: &str = "info,sqlx=warn";

/// Counts, times and logs every request under its route template.
async fn observe(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    // Cheap clones (shared strings), not copies: this runs on every request.
    let route = req.extensions().get::<MatchedPath>().cloned();
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    let method = req.method().clone();
    let request_id = req.headers().get("x-request-id").cloned();
    let request_id = request_id
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mut resp = next.run(req).await;
    resp.headers_mut().insert(
        openapi::VERSION_HEADER,
        axum::http::HeaderValue::from_static(openapi::API_VERSION),
    );
    // Every answer names the model version serving it (scoring answers
    // have set the one that scored them already).
    if !resp.headers().contains_key(state::MODEL_VERSION_HEADER) {
        if let Some(m) = state.active.load().as_ref() {
            resp.headers_mut()
                .insert(state::MODEL_VERSION_HEADER, m.version_header.clone());
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let status = resp.status().as_u16();
    state
        .metrics
        .request(route, method.as_str(), status, seconds);
    // Failed requests at info, successful ones at debug: /metrics counts
    // those, and a line per success costs a tenth of the server's time.
    if status >= 400 {
        tracing::info!(
            request_id = %request_id,
            method = %method,
            route = %route,
            status,
            latency_ms = seconds * 1000.0,
            "request"
        );
    } else {
        tracing::debug!(
            request_id = %request_id,
            method = %method,
            route = %route,
            status,
            latency_ms = seconds * 1000.0,
            "request"
        );
    }
    resp
}

/// Request ids: a random prefix per process and a counter. Unique across
/// replicas and restarts without a system call per request (a v4 UUID reads
/// the OS's random source every time, a few percent of a small request).
#[derive(Clone)]
struct RequestIds {
    prefix: String,
    next: Arc<std::sync::atomic::AtomicU64>,
}

impl RequestIds {
    fn new() -> RequestIds {
        RequestIds {
            prefix: format!("{:016x}", rand::random::<u64>()),
            next: Arc::new(std::sync::atomic::AtomicU64::new(1)),
        }
    }
}

impl MakeRequestId for RequestIds {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        use std::io::Write;
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // Formatted on the stack: the header value is the one allocation.
        let mut id = [0u8; 40];
        let mut cursor = std::io::Cursor::new(&mut id[..]);
        write!(cursor, "{}-{n:x}", self.prefix).ok()?;
        let len = cursor.position() as usize;
        axum::http::HeaderValue::from_bytes(&id[..len])
            .ok()
            .map(RequestId::new)
    }
}

/// The app: every route with its layers.
pub fn router(state: Arc<AppState>) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    let timeout = Duration::from_secs_f64(state.serve.request_timeout_secs);
    let body_limit = state.serve.body_limit_bytes;
    let idempotent = axum::middleware::from_fn_with_state(state.clone(), idempotency::idempotent);
    Router::new()
        .route("/v1/score", post(routes::score))
        .route("/v1/customers/{id}", get(routes::customer))
        .route("/v1/risk-list", get(routes::risk_list))
        .route("/v1/interventions", get(routes::interventions))
        .route(
            "/v1/interventions/{id}/outcome",
            post(routes::record_outcome).layer(idempotent.clone()),
        )
        .route(
            "/v1/interventions/export",
            get(routes::export_interventions),
        )
        .route(
            "/v1/customers/{id}/overrides",
            post(routes::create_override).layer(idempotent.clone()),
        )
        .route(
            "/v1/overrides/{id}/revoke",
            post(routes::revoke_override).layer(idempotent.clone()),
        )
        .route("/v1/deliveries", get(routes::deliveries))
        .route(
            "/v1/deliveries/{id}/retry",
            post(routes::retry_delivery).layer(idempotent.clone()),
        )
        .route("/v1/outcomes", get(routes::outcomes))
        .route(
            "/v1/scoring-runs",
            post(routes::scoring_run).layer(idempotent.clone()),
        )
        .route("/v1/kpi/scorecards", get(routes::scorecards))
        .route("/v1/models", get(routes::models))
        .route("/v1/models/reload", post(routes::reload).layer(idempotent))
        .route("/healthz", get(routes::healthz))
        .route("/readyz", get(routes::readyz))
        .route("/metrics", get(routes::metrics))
        .route("/v1/monitoring", get(routes::monitoring))
        .route("/openapi.json", get(openapi::serve))
        .merge(web::routes())
        .fallback(|| async {
            error::ApiError::NotFound {
                what: "route",
                id: String::new(),
            }
        })
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            timeout,
        ))
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, RequestIds::new()))
        .with_state(state)
}

/// What can stop the server from starting.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address cannot be bound.
    #[error("cannot listen on {addr}: {error}")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        error: std::io::Error,
    },
    /// API keys that cannot be used, or none at all.
    #[error("{0}")]
    Keys(String),
    /// The store.
    #[error(transparent)]
    Store(#[from] churnguard_store::StoreError),
    /// The registry.
    #[error(transparent)]
    Registry(#[from] churnguard_app::registry::RegistryError),
    /// Webhook delivery cannot start (a secret is missing).
    #[error(transparent)]
    Delivery(#[from] delivery::DeliveryError),
    /// Serving failed.
    #[error("server: {0}")]
    Io(std::io::Error),
}

impl HasKind for ServeError {
    fn kind(&self) -> ErrorKind {
        match self {
            ServeError::Bind { .. } | ServeError::Keys(_) => ErrorKind::BadInput,
            ServeError::Store(e) => e.kind(),
            ServeError::Registry(e) => e.kind(),
            ServeError::Delivery(e) => e.kind(),
            ServeError::Io(_) => ErrorKind::Internal,
        }
    }
}

/// How `run` starts.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Overrides `serve.listen`.
    pub listen: Option<String>,
    /// Everyone is admin; allowed only on a loopback address.
    pub no_auth: bool,
    /// Seconds between checks of the champion pointer (0 = never).
    pub watch_secs: f64,
}

/// Options from the command line's flags.
pub fn routes_options(listen: Option<String>, no_auth: bool, watch_secs: f64) -> ServeOptions {
    ServeOptions {
        listen,
        no_auth,
        watch_secs,
    }
}

/// Builds the state: keys, store, registry, champion, baseline.
pub async fn build_state(
    config: AppConfig,
    serve: ServeConfig,
    options: &ServeOptions,
) -> Result<Arc<AppState>, ServeError> {
    let env_keys = std::env::var("CHURNGUARD_API_KEYS").ok();
    let keys = if options.no_auth {
        auth::KeyRing::open()
    } else {
        let ring = auth::KeyRing::new(&serve, env_keys.as_deref()).map_err(ServeError::Keys)?;
        if !ring.usable() {
            return Err(ServeError::Keys(
                "no API keys: add [[serve.keys]] (name, role, sha256 from `churnguard keys hash`) or set CHURNGUARD_API_KEYS=role:key,…; `--no-auth` serves loopback without keys".into(),
            ));
        }
        ring
    };
    // The audit key comes from the environment only, never the file.
    let store = Store::connect(&config.store.url).await?;
    let store = match Store::audit_key_from_env() {
        Some(key) => store.with_audit_key(&key),
        None => store,
    };
    let registry = Registry::open(std::path::Path::new(&serve.registry))?;
    let state = Arc::new(AppState {
        limiter: auth::RateLimiter::new(serve.rate_limit_per_minute),
        registry,
        store,
        active: ArcSwapOption::empty(),
        shadow: ArcSwapOption::empty(),
        shadow_recorder: shadow::ShadowRecorder::new(&serve.shadow),
        online: online_drift::OnlineWindow::new(serve.drift_window),
        shadow_rejected: std::sync::Mutex::new(None),
        keys,
        metrics: metrics::Metrics::default(),
        baseline: ArcSwap::from_pointee(state::Baseline::default()),
        reload_lock: Arc::new(tokio::sync::Mutex::new(())),
        run_lock: Arc::new(tokio::sync::Mutex::new(())),
        heavy: Arc::new(tokio::sync::Semaphore::new(2)),
        rejected: std::sync::Mutex::new(None),
        config,
        serve,
    });
    if state.registry.champion()?.is_some() {
        if let Err(e) = state::reload(&state, "champion", false).await {
            tracing::error!(error = %e, "the champion cannot be served; starting without a model");
        }
    } else {
        tracing::warn!(registry = %state.registry.root().display(), "no champion in the registry; scoring answers 503 until one is promoted");
    }
    match state.registry.shadow() {
        Ok(Some(id)) if state.active.load().is_some() => {
            if let Err(e) = state::reload_shadow(&state, Some(&id)).await {
                tracing::error!(model = %id, error = %e, "the shadow challenger cannot be scored; serving without it");
                *lock(&state.shadow_rejected) = Some(id);
            }
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot read the shadow pointer"),
    }
    if let Err(e) = state::refresh_baseline(&state).await {
        tracing::warn!(error = %e, "no baseline from the store");
    }
    Ok(state)
}

/// Polls the champion pointer and reloads when it moves.
pub fn watch_champion(state: Arc<AppState>, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let registry = state.registry.clone();
            let Ok(Ok(Some(champion))) =
                tokio::task::spawn_blocking(move || registry.champion()).await
            else {
                continue;
            };
            let serving = state.active.load_full().map(|m| m.manifest.id.clone());
            let rejected = lock(&state.rejected).clone();
            if serving.as_deref() == Some(champion.as_str())
                || rejected.as_deref() == Some(champion.as_str())
            {
                sync_shadow(&state).await;
                continue;
            }
            match state::reload(&state, &champion, false).await {
                Ok(m) => {
                    tracing::info!(model = %m.manifest.id, "champion changed: reloaded");
                    sync_shadow(&state).await;
                }
                Err(e) => {
                    tracing::error!(model = %champion, error = %e, "champion changed but cannot be served; keeping the current model");
                    *lock(&state.rejected) = Some(champion);
                }
            }
        }
    })
}

/// Brings the served shadow in line with the registry's shadow pointer:
/// loads a new one, clears a removed one, and drops a shadow that has
/// become the champion (a promotion from shadow).
pub async fn sync_shadow(state: &Arc<AppState>) {
    let registry = state.registry.clone();
    let Ok(Ok(wanted)) = tokio::task::spawn_blocking(move || registry.shadow()).await else {
        return;
    };
    let serving_champion = state.active.load_full().map(|m| m.manifest.id.clone());
    let wanted = wanted.filter(|id| serving_champion.as_deref() != Some(id.as_str()));
    let serving = state.shadow.load_full().map(|m| m.manifest.id.clone());
    if serving == wanted {
        return;
    }
    if wanted.is_some() && *lock(&state.shadow_rejected) == wanted {
        return;
    }
    match state::reload_shadow(state, wanted.as_deref()).await {
        Ok(Some(m)) => tracing::info!(model = %m.manifest.id, "shadow challenger changed: loaded"),
        Ok(None) => tracing::info!("shadow challenger removed"),
        Err(e) => {
            tracing::error!(model = ?wanted, error = %e, "shadow challenger changed but cannot be scored");
            state.shadow.store(None);
            *lock(&state.shadow_rejected) = wanted;
        }
    }
}

/// Flushes the shadow challenger's recorded pairs to the store every
/// `every`, and sooner whenever the buffer is half full.
pub fn flush_shadow_every(state: Arc<AppState>, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = state.shadow_recorder.half_full() => {}
            }
            if let Err(e) = state.shadow_recorder.flush(&state.store).await {
                tracing::error!(error = %e, "writing shadow scores failed; kept for the next flush");
            }
        }
    })
}

/// Runs a delivery pass every `every` (webhooks configured).
pub fn deliver_every(
    state: Arc<AppState>,
    deliverer: Arc<delivery::Deliverer>,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match deliverer.run_once(&state.store).await {
                Ok(r) if r.attempted > 0 => tracing::info!(
                    delivered = r.delivered,
                    retrying = r.retrying,
                    dead = r.dead,
                    "delivery pass"
                ),
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "delivery pass failed"),
            }
        }
    })
}

/// Resolves when SIGTERM or Ctrl-C arrives.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

/// Serves until a shutdown signal; in-flight requests finish first.
pub async fn run(
    config: AppConfig,
    serve: ServeConfig,
    options: ServeOptions,
) -> Result<(), ServeError> {
    let addr = options
        .listen
        .clone()
        .unwrap_or_else(|| serve.listen.clone());
    if options.no_auth {
        let loopback = addr
            .parse::<SocketAddr>()
            .is_ok_and(|a| a.ip().is_loopback())
            || addr.starts_with("localhost:");
        if !loopback {
            return Err(ServeError::Keys(format!(
                "--no-auth is allowed only on a loopback address, not {addr}"
            )));
        }
    }
    let state = build_state(config, serve, &options).await?;
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|error| ServeError::Bind {
            addr: addr.clone(),
            error,
        })?;
    let local = listener.local_addr().map_err(ServeError::Io)?;
    tracing::info!(addr = %local, store = %state.store.url(), "serving");
    println!("churnguard serving on http://{local}");
    let watcher = (options.watch_secs > 0.0)
        .then(|| watch_champion(state.clone(), Duration::from_secs_f64(options.watch_secs)));
    let deliverer = Arc::new(delivery::Deliverer::new(&state.serve.delivery)?);
    let delivering = (!deliverer.is_empty()).then(|| {
        deliver_every(
            state.clone(),
            deliverer,
            Duration::from_secs(state.serve.delivery.poll_secs),
        )
    });
    let flushing = Some(flush_shadow_every(
        state.clone(),
        Duration::from_secs_f64(state.serve.shadow.flush_secs),
    ));
    let app = router(state.clone());
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(ServeError::Io);
    for task in [watcher, delivering, flushing].into_iter().flatten() {
        task.abort();
    }
    // What the requests recorded last is not lost at shutdown.
    if let Err(e) = state.shadow_recorder.flush(&state.store).await {
        tracing::error!(error = %e, "writing the last shadow scores failed");
    }
    state.store.close().await;
    result
}
