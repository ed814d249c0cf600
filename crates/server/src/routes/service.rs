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
    let text = state.metrics.render(
        model
            .as_ref()
            .map(|m| (m.manifest.id.as_str(), m.manifest.family.name())),
    );
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
