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
        crate::metrics::render_drift(
            &mut text,
            "churnguard_drift",
            "the latest run's",
            version,
            drift,
        );
    }
    if let Some(model) = &model {
        if let Some(online) = online_drift(&state, model) {
            crate::metrics::render_drift(
                &mut text,
                "churnguard_online_drift",
                "this replica's recent online",
                &model.manifest.id,
                &online,
            );
        }
    }
    let shadow = state.shadow.load_full();
    state
        .shadow_recorder
        .render(&mut text, shadow.as_ref().map(|m| m.manifest.id.as_str()));
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
    /// The shadow challenger against the champion (null when none is set
    /// and none was recorded).
    pub shadow: Option<ShadowStatus>,
    /// Drift of this replica's recent `POST /v1/score` customers (the last
    /// `[serve] drift_window`) against the serving model's training
    /// baseline (null before any, or without a baseline).
    pub online_drift: Option<churnguard_core::monitor::DriftReport>,
}

/// A shadow challenger's comparison with the champion, from the pairs this
/// and other replicas recorded in the store, and this replica's recorder.
#[derive(Debug, Serialize, ToSchema)]
pub struct ShadowStatus {
    /// The shadow challenger.
    pub shadow_model: String,
    /// Whether this replica scores it now.
    pub serving: bool,
    /// Pairs compared (the newest in the store, at most 50,000).
    pub pairs: usize,
    /// Distinct customers among them.
    pub customers: usize,
    /// Agreement and score shift (null below 100 pairs).
    pub agreement: Option<churnguard_core::monitor::ShadowAgreement>,
    /// This replica's recorder: pairs recorded, dropped (buffer full),
    /// written, failed flushes, waiting.
    #[schema(value_type = Object)]
    pub recorder: crate::shadow::RecorderCounts,
}

/// Drift of this replica's recent online rows against the serving model's
/// training baseline.
pub(crate) fn online_drift(
    state: &AppState,
    model: &LoadedModel,
) -> Option<churnguard_core::monitor::DriftReport> {
    let baseline = model.baseline.as_ref()?;
    state
        .online
        .drift(&model.manifest.id, baseline, &state.config.monitoring.drift)
}

/// Pairs the API and the web page compare (the monitor reads more).
pub(crate) const SHADOW_PAIRS_SHOWN: usize = 50_000;

/// The shadow comparison the API and the monitoring page show.
pub(crate) async fn shadow_status(state: &AppState) -> Result<Option<ShadowStatus>, ApiError> {
    let serving = state.shadow.load_full().map(|m| m.manifest.id.clone());
    let model = match serving.clone() {
        Some(id) => Some(id),
        None => state.store.latest_shadow_model().await?,
    };
    let Some(model) = model else {
        return Ok(None);
    };
    let samples = state
        .store
        .shadow_samples(&model, SHADOW_PAIRS_SHOWN)
        .await?;
    let report = churnguard_app::service::compare_shadow(&model, true, &samples, None);
    Ok(Some(ShadowStatus {
        serving: serving.as_deref() == Some(model.as_str()),
        shadow_model: model,
        pairs: report.pairs,
        customers: report.customers,
        agreement: report.agreement,
        recorder: state.shadow_recorder.counts(),
    }))
}

/// Drift of the latest run and the triggers' verdict.
#[utoipa::path(
    get,
    path = "/v1/monitoring",
    tag = "service",
    responses(
        (status = 200, body = MonitoringResponse),
        (status = 401, body = ErrorBody),
        (status = 503, description = "The store is unavailable", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn monitoring(
    State(state): State<Arc<AppState>>,
    _: Auth<Reader>,
) -> Result<Json<MonitoringResponse>, ApiError> {
    let latest = state.baseline.load_full();
    let (verdict, findings) = state
        .config
        .monitoring
        .triggers
        .evaluate(latest.drift.as_ref(), None);
    Ok(Json(MonitoringResponse {
        run_id: latest.run_id.clone(),
        model_id: latest.model_id.clone(),
        drift: latest.drift.clone(),
        verdict: verdict.name().into(),
        findings,
        shadow: shadow_status(&state).await?,
        online_drift: state
            .active
            .load_full()
            .and_then(|m| online_drift(&state, &m)),
    }))
}
