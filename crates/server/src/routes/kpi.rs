//! `GET /v1/kpi/scorecards`.

use super::*;

/// Which scorecards.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct KpiQuery {
    /// Role (default `account_manager`).
    #[param(inline)]
    pub role: Option<RoleParam>,
    /// Stage (default: the config's).
    #[param(inline)]
    pub stage: Option<StageParam>,
    /// Scoring run (default: the latest).
    pub run: Option<String>,
}

/// Scorecards of one role and stage.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScorecardsResponse {
    /// Run id.
    pub run_id: String,
    /// Role.
    pub role: String,
    /// Stage.
    pub stage: String,
    /// Scorecards, best first (as saved with the run).
    #[schema(value_type = Vec<churnguard_core::kpi::Scorecard>)]
    pub scorecards: Vec<serde_json::Value>,
    /// Configured weights beside the data-driven ones (as saved with the run).
    #[schema(value_type = Vec<churnguard_core::kpi::SuggestedWeight>)]
    pub weights: Vec<serde_json::Value>,
}

/// Employee KPI scorecards of a scoring run.
#[utoipa::path(
    get,
    path = "/v1/kpi/scorecards",
    tag = "kpi",
    params(KpiQuery),
    responses(
        (status = 200, body = ScorecardsResponse),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn scorecards(
    State(state): State<Arc<AppState>>,
    _: Auth<Reader>,
    ApiQuery(q): ApiQuery<KpiQuery>,
) -> Result<Json<ScorecardsResponse>, ApiError> {
    let role = match q.role.unwrap_or(RoleParam::AccountManager) {
        RoleParam::AccountManager => churnguard_core::kpi::Role::AccountManager,
        RoleParam::Acquisition => churnguard_core::kpi::Role::Acquisition,
    };
    let stage = match q.stage {
        None => state.config.kpi.stage,
        Some(StageParam::Balanced) => churnguard_core::kpi::Stage::Balanced,
        Some(StageParam::Growth) => churnguard_core::kpi::Stage::Growth,
        Some(StageParam::Mature) => churnguard_core::kpi::Stage::Mature,
    };
    let run = state
        .store
        .run(nonempty(q.run).as_deref().unwrap_or("latest"))
        .await?;
    let cards = state
        .store
        .scorecards(&run.run_id, role.name(), stage.name())
        .await?;
    let weights = state
        .store
        .kpi_weights(&run.run_id, role.name(), stage.name())
        .await?;
    Ok(Json(ScorecardsResponse {
        run_id: run.run_id,
        role: role.name().into(),
        stage: stage.name().into(),
        scorecards: cards,
        weights,
    }))
}
