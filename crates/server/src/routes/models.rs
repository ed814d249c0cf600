//! `GET /v1/models` and `POST /v1/models/reload`.

use super::*;

/// A registry version.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelView {
    /// Version id.
    pub id: String,
    /// Family.
    pub family: String,
    /// Trained at (RFC 3339).
    pub created_at: String,
    /// Data set.
    pub dataset: String,
    /// Test ROC-AUC.
    pub test_roc_auc: Option<f64>,
    /// Test PR-AUC.
    pub test_pr_auc: Option<f64>,
    /// Test log loss.
    pub test_log_loss: f64,
    /// Test Brier score.
    pub test_brier: f64,
    /// Whether it is the registry's champion.
    pub champion: bool,
    /// Whether this server is serving it.
    pub serving: bool,
}

/// The registry.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelsResponse {
    /// The champion's id.
    pub champion: Option<String>,
    /// The id being served.
    pub serving: Option<String>,
    /// Every version, oldest first.
    pub models: Vec<ModelView>,
}

/// The model registry with its champion.
#[utoipa::path(
    get,
    path = "/v1/models",
    tag = "models",
    responses((status = 200, body = ModelsResponse), (status = 401, body = ErrorBody)),
    security(("api_key" = []))
)]
pub async fn models(
    State(state): State<Arc<AppState>>,
    _: Auth<Reader>,
) -> Result<Json<ModelsResponse>, ApiError> {
    let s = state.clone();
    let (list, champion) = tokio::task::spawn_blocking(move || {
        Ok::<_, churnguard_app::registry::RegistryError>((
            s.registry.list()?,
            s.registry.champion()?,
        ))
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))??;
    let serving = state.active.load_full().map(|m| m.manifest.id.clone());
    Ok(Json(ModelsResponse {
        models: list
            .into_iter()
            .map(|m| ModelView {
                champion: champion.as_deref() == Some(m.id.as_str()),
                serving: serving.as_deref() == Some(m.id.as_str()),
                id: m.id,
                family: m.family.name().into(),
                created_at: m.created_at,
                dataset: m.dataset,
                test_roc_auc: m.test.roc_auc,
                test_pr_auc: m.test.pr_auc,
                test_log_loss: m.test.log_loss,
                test_brier: m.test.brier,
            })
            .collect(),
        champion,
        serving,
    }))
}

/// Options of a reload.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReloadQuery {
    /// Version to load (default: the champion).
    pub id: Option<String>,
    /// Accept a model whose inputs differ from the serving one's.
    pub allow_schema_change: Option<bool>,
}

/// The result of a reload.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReloadResponse {
    /// The id now serving.
    pub serving: String,
    /// Its family.
    pub family: String,
}

/// Load the champion (or a version) and swap it in atomically.
#[utoipa::path(
    post,
    path = "/v1/models/reload",
    tag = "models",
    params(ReloadQuery),
    responses(
        (status = 200, body = ReloadResponse),
        (status = 400, description = "A malformed parameter", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, description = "No such model version", body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 422, description = "The model cannot be served; the previous one keeps serving", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn reload(
    State(state): State<Arc<AppState>>,
    Auth(who, _): Auth<Admin>,
    ApiQuery(q): ApiQuery<ReloadQuery>,
) -> Result<Json<ReloadResponse>, ApiError> {
    let id = nonempty(q.id).unwrap_or_else(|| "champion".into());
    let result = state::reload(&state, &id, q.allow_schema_change.unwrap_or(false)).await;
    let details = match &result {
        Ok(m) => serde_json::json!({"loaded": m.manifest.id}),
        Err(e) => serde_json::json!({"rejected": id, "reason": e.to_string()}),
    };
    if let Err(e) = state
        .store
        .audit(&who.name, "model.reload", &id, &details)
        .await
    {
        tracing::warn!(error = %e, "audit entry for a reload not written");
    }
    let m = result?;
    Ok(Json(ReloadResponse {
        serving: m.manifest.id.clone(),
        family: m.manifest.family.name().into(),
    }))
}
