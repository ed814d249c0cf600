//! `GET /healthz`, `/readyz`, `/metrics`: for load balancers and Prometheus.

use super::*;

/// Alive.
#[utoipa::path(get, path = "/healthz", tag = "service", responses((status = 200, description = "ok", body = String, content_type = "text/plain")))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// Readiness.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// Whether the server can serve: a model is loaded and the store answers.
    pub ready: bool,
    /// The model being served.
    pub model: Option<String>,
    /// Whether the store answers and takes writes.
    pub store: bool,
}

/// Ready when a model is loaded and the store answers and takes writes.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "service",
    responses((status = 200, body = Readiness), (status = 503, body = Readiness))
)]
pub async fn readyz(State(state): State<Arc<AppState>>) -> (StatusCode, Json<Readiness>) {
    let model = state.active.load_full().map(|m| m.manifest.id.clone());
    let store = tokio::time::timeout(std::time::Duration::from_secs(2), state.store.writable())
        .await
        .is_ok_and(|r| r.is_ok());
    let ready = model.is_some() && store;
    (
        if ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        Json(Readiness {
            ready,
            model,
            store,
        }),
    )
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "service", responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let model = state.active.load_full();
    let mut text = state.metrics.render(
        model
            .as_ref()
            .map(|m| (m.manifest.id.as_str(), m.manifest.family.name())),
    );
    let latest = state.baseline.load_full();
    if let (Some(drift), Some(version)) = (&latest.drift, &latest.model_id) {
        crate::metrics::render_drift(&mut text, version, drift);
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// The latest scoring run's drift against its model's training baseline,
/// and the configured triggers' verdict on it. Realised performance needs
/// later churn events: `churnguard monitor --events` adds it.
#[derive(Debug, Serialize, ToSchema)]
pub struct MonitoringResponse {
    /// The latest run (null before any).
    pub run_id: Option<String>,
    /// The model that scored it.
    pub model_id: Option<String>,
    /// Per input and for the score: PSI, Jensen–Shannon distance, level
    /// (null when the model has no training baseline).
    pub drift: Option<churnguard_core::monitor::DriftReport>,
    /// `healthy`, `warning` or `action`.
    pub verdict: String,
    /// What fired.
    pub findings: Vec<churnguard_core::monitor::Finding>,
}

/// Drift of the latest run and the triggers' verdict.
#[utoipa::path(
    get,
    path = "/v1/monitoring",
    tag = "service",
    responses(
        (status = 200, body = MonitoringResponse),
        (status = 401, body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn monitoring(
    State(state): State<Arc<AppState>>,
    _: Auth<Reader>,
) -> Json<MonitoringResponse> {
    let latest = state.baseline.load_full();
    let (verdict, findings) = state
        .config
        .monitoring
        .triggers
        .evaluate(latest.drift.as_ref(), None);
    Json(MonitoringResponse {
        run_id: latest.run_id.clone(),
        model_id: latest.model_id.clone(),
        drift: latest.drift.clone(),
        verdict: verdict.name().into(),
        findings,
    })
}
