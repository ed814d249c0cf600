//! The JSON API under `/v1` and the service endpoints. Each handler:
//! authenticate, check the role, extract, call one library or service
//! function, map the result.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::{Caller, Role};
use super::error::{ApiError, ErrorBody};
use super::score::{self, ScoreResponse};
use super::state::{self, AppState};
use crate::interventions::Status;
use crate::scoring::{self, Settings};
use crate::store::{
    CustomerScoreRecord, InterventionFilter, OutcomeInput, RiskListFilter, RiskListPage,
    StaffOutcome,
};

/// Who is calling, with rate limiting. Keys come from `Authorization:
/// Bearer KEY` or `X-API-Key: KEY`.
pub fn caller(state: &AppState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let key = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .or_else(|| {
            headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
        })
        .map(str::trim);
    let c = state.keys.identify(key)?;
    state.limiter.check(&c.name)?;
    Ok(c)
}

fn authorize(state: &AppState, headers: &HeaderMap, need: Role) -> Result<Caller, ApiError> {
    let c = caller(state, headers)?;
    c.require(need)?;
    Ok(c)
}

fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge
        } else {
            ApiError::MalformedJson(e.body_text())
        }
    })
}

fn json_body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut de)
        .map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if inner.is_syntax() || inner.is_eof() || path == "." {
                ApiError::MalformedJson(inner.to_string())
            } else {
                ApiError::BadField {
                    code: "wrong_type",
                    message: format!("{path}: {inner}"),
                    field: path,
                }
            }
        })
        .and_then(|v| {
            de.end()
                .map_err(|e| ApiError::MalformedJson(e.to_string()))
                .map(|()| v)
        })
}

/// Options of `POST /v1/score`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct ScoreQuery {
    /// Skip fields that are neither model inputs nor context (default: reject them).
    pub ignore_unknown: Option<bool>,
}

/// Score one customer or a batch.
///
/// The body is `{"customers": [record, ...]}` or a single record. A record
/// holds the model's id field, every model input (null when unknown), and
/// optionally `name`, `account_manager_id`, `acquisition_rep_id`, `segment`,
/// `mrr` and `cac`.
#[utoipa::path(
    post,
    path = "/v1/score",
    tag = "scoring",
    params(ScoreQuery),
    request_body(content = serde_json::Value, description = "`{\"customers\": [record, …]}` or one record; a record maps the model's id field and every input to a value"),
    responses(
        (status = 200, description = "Scores in request order", body = ScoreResponse),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 403, description = "The key's role may not score", body = ErrorBody),
        (status = 413, description = "Batch or body over the limit", body = ErrorBody),
        (status = 422, description = "A field is missing, of the wrong type or not finite", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
        (status = 503, description = "No model loaded", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn score(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(options): Query<ScoreQuery>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    authorize(&state, &headers, Role::Scorer)?;
    let bytes = body_bytes(body)?;
    let model = state::model(&state)?;
    let limit = state.config.serve.max_batch;
    let work = {
        let state = state.clone();
        let model = model.clone();
        move || -> Result<Vec<u8>, ApiError> {
            let records = score::parse(
                &bytes,
                &model.schema,
                limit,
                options.ignore_unknown.unwrap_or(false),
            )?;
            let (batch, contexts, _) = records.into_batch(&model.schema);
            let baseline = state.baseline.load();
            let c = &state.config;
            let scored = scoring::score_customers(
                &model.model,
                model.horizon_days,
                &batch,
                &contexts,
                &baseline.previous,
                Settings {
                    scoring: &c.scoring,
                    health: &c.health,
                    value: &c.value,
                    policy: &c.interventions,
                    clv_thresholds: baseline.clv_thresholds,
                },
            )
            .map_err(|e| ApiError::Unprocessable(e.to_string()))?;
            state
                .metrics
                .scored(scored.iter().map(|s| s.churn_probability));
            let results = scored
                .into_iter()
                .map(|s| score::result_of(s, &c.interventions, &model))
                .collect();
            serde_json::to_vec(&ScoreResponse {
                model_version: model.manifest.id.clone(),
                results,
            })
            .map_err(|e| ApiError::Internal(e.to_string()))
        }
    };
    // Small requests are cheaper inline; large ones go to the blocking pool.
    let json = if headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|n| n <= 16 * 1024)
    {
        work()?
    } else {
        let _permit = state
            .heavy
            .acquire()
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))??
    };
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        json,
    )
        .into_response())
}

/// A customer's latest score, health history and interventions.
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerView {
    /// Customer id.
    pub customer_id: String,
    /// The newest stored score.
    #[schema(value_type = Object)]
    pub latest: CustomerScoreRecord,
    /// Every stored score, newest first.
    pub history: Vec<HistoryPoint>,
    /// Interventions on record, most urgent first.
    pub interventions: Vec<InterventionView>,
}

/// One point of a customer's health history.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryPoint {
    /// Run id.
    pub run_id: String,
    /// Snapshot.
    pub snapshot_date: String,
    /// Health index.
    pub health: f64,
    /// Band.
    pub band: String,
    /// Churn probability.
    pub churn_probability: f64,
}

/// An intervention as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct InterventionView {
    /// Id.
    pub id: i64,
    /// Customer id.
    pub customer_id: String,
    /// Playbook.
    pub playbook: String,
    /// Rule that chose it.
    pub rule: String,
    /// Channel.
    pub channel: String,
    /// Owner role.
    pub owner_role: String,
    /// Owner.
    pub owner: String,
    /// Priority (1 most urgent).
    pub priority: u32,
    /// `treated` or `control`.
    pub arm: String,
    /// `open`, `done`, `closed_recovered`, `expired` or `control`.
    pub status: String,
    /// Created (RFC 3339).
    pub created_at: String,
    /// SLA due (RFC 3339).
    pub due_at: String,
    /// Whether it is open and past due.
    pub overdue: bool,
    /// Expected value saved.
    pub expected_value: f64,
    /// What staff recorded, if anything.
    pub outcome: Option<String>,
    /// What churn data showed after it (`churned` or `retained`), once settled.
    pub observed: Option<String>,
}

fn rfc3339(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.to_rfc3339())
        .unwrap_or_default()
}

pub(crate) fn intervention_view(s: crate::store::StoredIntervention) -> InterventionView {
    let i = s.intervention;
    InterventionView {
        overdue: i.status == Status::Open && i.due_at < chrono::Utc::now().timestamp(),
        id: i.id,
        customer_id: i.customer_id,
        playbook: i.playbook,
        rule: i.rule,
        channel: i.channel,
        owner_role: i.owner_role,
        owner: i.owner,
        priority: i.priority,
        arm: i.arm.name().into(),
        status: i.status.name().into(),
        created_at: rfc3339(i.created_at),
        due_at: rfc3339(i.due_at),
        expected_value: i.expected_value,
        outcome: s.outcome,
        observed: s.observed,
    }
}

/// The latest score and health history of a customer.
#[utoipa::path(
    get,
    path = "/v1/customers/{id}",
    tag = "customers",
    params(("id" = String, Path, description = "Customer id")),
    responses(
        (status = 200, body = CustomerView),
        (status = 401, body = ErrorBody),
        (status = 404, description = "No stored score for this customer", body = ErrorBody),
        (status = 503, description = "The store is unavailable", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn customer(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<CustomerView>, ApiError> {
    authorize(&state, &headers, Role::Reader)?;
    let history = state.store.customer_history(&id).await?;
    let Some(latest) = history.first().cloned() else {
        return Err(ApiError::NotFound {
            what: "customer",
            id,
        });
    };
    let interventions = state
        .store
        .interventions(&InterventionFilter {
            customer_id: Some(id.clone()),
            limit: 200,
            ..Default::default()
        })
        .await?
        .into_iter()
        .map(intervention_view)
        .collect();
    Ok(Json(CustomerView {
        customer_id: id,
        latest,
        history: history
            .into_iter()
            .map(|r| HistoryPoint {
                run_id: r.run_id,
                snapshot_date: r.snapshot_date,
                health: r.health,
                band: r.band,
                churn_probability: r.churn_probability,
            })
            .collect(),
        interventions,
    }))
}

/// Filters of the risk list.
#[derive(Debug, Deserialize, IntoParams)]
pub struct RiskListQuery {
    /// `green`, `yellow` or `red`.
    pub band: Option<String>,
    /// Owner (account manager id).
    pub owner: Option<String>,
    /// Segment (plan).
    pub segment: Option<String>,
    /// Customer id or part of the name.
    pub q: Option<String>,
    /// Sort column (default `expected_loss`).
    pub sort: Option<String>,
    /// `asc` or `desc` (default).
    pub order: Option<String>,
    /// Rows per page, 1..=1000 (default 50).
    pub limit: Option<usize>,
    /// Cursor from the previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Scoring run (default: the latest).
    pub run: Option<String>,
}

/// One page of the risk list.
#[derive(Debug, Serialize, ToSchema)]
pub struct RiskListResponse {
    /// Run id.
    pub run_id: String,
    /// Snapshot of the run.
    pub snapshot_date: String,
    /// Rows matching the filter.
    pub total: usize,
    /// Rows of this page.
    #[schema(value_type = Vec<Object>)]
    pub rows: Vec<CustomerScoreRecord>,
    /// Cursor of the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// Checks risk-list parameters into a store filter.
pub fn risk_filter(q: &RiskListQuery) -> Result<RiskListFilter, ApiError> {
    if let Some(b) = &q.band {
        b.parse::<crate::health::Band>()
            .map_err(|message| ApiError::BadParameter {
                field: "band".into(),
                message,
            })?;
    }
    if let Some(s) = &q.sort {
        if !crate::store::SORTABLE.contains(&s.as_str()) {
            return Err(ApiError::BadParameter {
                field: "sort".into(),
                message: format!(
                    "cannot sort by {s:?} (one of {})",
                    crate::store::SORTABLE.join(", ")
                ),
            });
        }
    }
    let ascending = match q.order.as_deref() {
        None | Some("desc") => false,
        Some("asc") => true,
        Some(o) => {
            return Err(ApiError::BadParameter {
                field: "order".into(),
                message: format!("order must be asc or desc, got {o:?}"),
            })
        }
    };
    let limit = q.limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::BadParameter {
            field: "limit".into(),
            message: format!("limit must be 1..=1000, got {limit}"),
        });
    }
    if let Some(c) = &q.cursor {
        if crate::store::bad_cursor(c) {
            return Err(ApiError::BadParameter {
                field: "cursor".into(),
                message: "not a cursor this server issued".into(),
            });
        }
    }
    Ok(RiskListFilter {
        band: q.band.clone(),
        owner: q.owner.clone().filter(|s| !s.is_empty()),
        segment: q.segment.clone().filter(|s| !s.is_empty()),
        search: q.q.clone().filter(|s| !s.trim().is_empty()),
        sort: q.sort.clone(),
        ascending,
        limit,
        cursor: q.cursor.clone(),
    })
}

/// Customers by expected loss (probability × CLV), from a scoring run.
#[utoipa::path(
    get,
    path = "/v1/risk-list",
    tag = "customers",
    params(RiskListQuery),
    responses(
        (status = 200, body = RiskListResponse),
        (status = 400, description = "A parameter that cannot be used", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, description = "No scoring run yet, or no such run", body = ErrorBody),
        (status = 503, body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn risk_list(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<RiskListQuery>,
) -> Result<Json<RiskListResponse>, ApiError> {
    authorize(&state, &headers, Role::Reader)?;
    let filter = risk_filter(&q)?;
    let run = state
        .store
        .run(q.run.as_deref().unwrap_or("latest"))
        .await?;
    let RiskListPage {
        run_id,
        rows,
        total,
        next_cursor,
    } = state.store.risk_list(&run.run_id, &filter).await?;
    Ok(Json(RiskListResponse {
        run_id,
        snapshot_date: run.snapshot_date,
        total,
        rows,
        next_cursor,
    }))
}

/// Filters of the intervention list.
#[derive(Debug, Deserialize, IntoParams)]
pub struct InterventionQuery {
    /// `open`, `done`, `closed_recovered`, `expired` or `control`.
    pub status: Option<String>,
    /// Owner.
    pub owner: Option<String>,
    /// Customer id.
    pub customer_id: Option<String>,
    /// At most this many (default 200, at most 10000).
    pub limit: Option<usize>,
}

/// Interventions, most urgent first.
#[utoipa::path(
    get,
    path = "/v1/interventions",
    tag = "interventions",
    params(InterventionQuery),
    responses(
        (status = 200, body = Vec<InterventionView>),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn interventions(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<InterventionQuery>,
) -> Result<Json<Vec<InterventionView>>, ApiError> {
    authorize(&state, &headers, Role::Reader)?;
    let status = q
        .status
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<Status>()
                .map_err(|message| ApiError::BadParameter {
                    field: "status".into(),
                    message,
                })
        })
        .transpose()?;
    let limit = q.limit.unwrap_or(200);
    if !(1..=10_000).contains(&limit) {
        return Err(ApiError::BadParameter {
            field: "limit".into(),
            message: format!("limit must be 1..=10000, got {limit}"),
        });
    }
    let rows = state
        .store
        .interventions(&InterventionFilter {
            status,
            owner: q.owner.filter(|s| !s.is_empty()),
            customer_id: q.customer_id.filter(|s| !s.is_empty()),
            limit,
        })
        .await?;
    Ok(Json(rows.into_iter().map(intervention_view).collect()))
}

/// What staff report.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OutcomeRequest {
    /// `retained`, `churned`, `unreachable` or `declined`.
    #[schema(value_type = String)]
    pub outcome: StaffOutcome,
    /// A note (kept out of logs).
    pub note: Option<String>,
}

/// Record the outcome of an intervention; an open one becomes `done`.
#[utoipa::path(
    post,
    path = "/v1/interventions/{id}/outcome",
    tag = "interventions",
    params(("id" = i64, Path, description = "Intervention id")),
    request_body = OutcomeRequest,
    responses(
        (status = 200, body = InterventionView),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "A control-group record takes no outcome", body = ErrorBody),
        (status = 422, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn record_outcome(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<InterventionView>, ApiError> {
    let who = authorize(&state, &headers, Role::Admin)?;
    let id: i64 = id.parse().map_err(|_| ApiError::BadParameter {
        field: "id".into(),
        message: format!("intervention id must be an integer, got {id:?}"),
    })?;
    let req: OutcomeRequest = json_body(&body_bytes(body)?)?;
    if req.note.as_deref().is_some_and(|n| n.len() > 4000) {
        return Err(ApiError::BadField {
            code: "too_long",
            field: "note".into(),
            message: "note: at most 4000 bytes".into(),
        });
    }
    state
        .store
        .record_outcome(
            id,
            &OutcomeInput {
                outcome: req.outcome,
                note: req.note,
            },
            &who.name,
            chrono::Utc::now().timestamp(),
        )
        .await?;
    Ok(Json(intervention_view(state.store.intervention(id).await?)))
}

/// Treated against control, from the outcomes churn data has settled.
#[derive(Debug, Serialize, ToSchema)]
pub struct OutcomesResponse {
    /// All playbooks together (null until both arms have settled outcomes).
    #[schema(value_type = Option<Object>)]
    pub overall: Option<crate::interventions::SaveRate>,
    /// Per playbook.
    #[schema(value_type = Vec<Object>)]
    pub playbooks: Vec<crate::interventions::PlaybookOutcome>,
    /// Customers whose outcome window is not settled yet.
    pub pending: usize,
}

/// The save rate of treated customers against the control group, overall and per playbook.
#[utoipa::path(
    get,
    path = "/v1/outcomes",
    tag = "interventions",
    responses(
        (status = 200, body = OutcomesResponse),
        (status = 401, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn outcomes(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<OutcomesResponse>, ApiError> {
    authorize(&state, &headers, Role::Reader)?;
    let records = state.store.outcome_records().await?;
    let known: HashMap<i64, Option<bool>> = records.iter().map(|(i, o)| (i.id, *o)).collect();
    let list: Vec<_> = records.into_iter().map(|(i, _)| i).collect();
    let r = crate::interventions::summarise(&list, &known);
    Ok(Json(OutcomesResponse {
        overall: r.overall,
        playbooks: r.playbooks,
        pending: r.pending,
    }))
}

/// A scoring run to start.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScoringRunRequest {
    /// `YYYY-MM-DD` or `latest` (default).
    pub snapshot: Option<String>,
    /// Model id (default `champion`).
    pub model: Option<String>,
}

/// What a scoring run did.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScoringRunResponse {
    /// Run id.
    pub run_id: String,
    /// Snapshot.
    pub snapshot_date: String,
    /// Model used.
    pub model_id: String,
    /// Customers scored.
    pub customers: usize,
    /// Customers per band.
    pub bands: HashMap<String, usize>,
    /// Policy choices per action.
    pub actions: HashMap<String, usize>,
}

/// Score every active customer of the configured data, plan interventions, save the run.
#[utoipa::path(
    post,
    path = "/v1/scoring-runs",
    tag = "scoring",
    request_body = ScoringRunRequest,
    responses(
        (status = 201, body = ScoringRunResponse),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 409, description = "No data directory configured", body = ErrorBody),
        (status = 422, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn scoring_run(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<ScoringRunResponse>), ApiError> {
    let who = authorize(&state, &headers, Role::Admin)?;
    let bytes = body_bytes(body)?;
    let req: ScoringRunRequest = if bytes.iter().all(u8::is_ascii_whitespace) {
        ScoringRunRequest::default()
    } else {
        json_body(&bytes)?
    };
    let Some(data) = state.config.serve.data.clone() else {
        return Err(ApiError::Conflict(
            "no data directory configured: set serve.data in churnguard.toml".into(),
        ));
    };
    let _one = state.exclusive.lock().await;
    let request = crate::service::ScoreRunRequest {
        registry: state.registry.root().to_path_buf(),
        model: req.model.unwrap_or_else(|| "champion".into()),
        data: data.into(),
        schema: None,
        snapshot: req.snapshot,
        out: None,
        run_id: None,
        actor: who.name.clone(),
        as_of: None,
    };
    let s = state.clone();
    // The run mixes CPU work with store I/O: it gets a blocking thread
    // that drives its own future, so it never stalls the request workers.
    let handle = tokio::runtime::Handle::current();
    let summary = tokio::task::spawn_blocking(move || {
        handle.block_on(crate::service::score_run(&request, &s.config, &s.store))
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))??;
    state::refresh_baseline(&state).await?;
    Ok((
        StatusCode::CREATED,
        Json(ScoringRunResponse {
            run_id: summary.run.run_id,
            snapshot_date: summary.run.snapshot_date,
            model_id: summary.run.model_id,
            customers: summary.run.customers,
            bands: summary.bands.into_iter().collect(),
            actions: summary.actions.into_iter().collect(),
        }),
    ))
}

/// Which scorecards.
#[derive(Debug, Deserialize, IntoParams)]
pub struct KpiQuery {
    /// `account_manager` (default) or `acquisition`.
    pub role: Option<String>,
    /// `balanced`, `growth` or `mature` (default: the config's).
    pub stage: Option<String>,
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
    /// Scorecards, best first.
    #[schema(value_type = Vec<Object>)]
    pub scorecards: Vec<serde_json::Value>,
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
    headers: HeaderMap,
    Query(q): Query<KpiQuery>,
) -> Result<Json<ScorecardsResponse>, ApiError> {
    authorize(&state, &headers, Role::Reader)?;
    let role = q
        .role
        .as_deref()
        .unwrap_or("account_manager")
        .parse::<crate::kpi::Role>()
        .map_err(|message| ApiError::BadParameter {
            field: "role".into(),
            message,
        })?;
    let stage = match q.stage.as_deref() {
        None | Some("") => state.config.kpi.stage,
        Some(s) => s
            .parse::<crate::kpi::Stage>()
            .map_err(|message| ApiError::BadParameter {
                field: "stage".into(),
                message,
            })?,
    };
    let run = state
        .store
        .run(q.run.as_deref().unwrap_or("latest"))
        .await?;
    let cards = state
        .store
        .scorecards(&run.run_id, role.name(), stage.name())
        .await?;
    Ok(Json(ScorecardsResponse {
        run_id: run.run_id,
        role: role.name().into(),
        stage: stage.name().into(),
        scorecards: cards,
    }))
}

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
    headers: HeaderMap,
) -> Result<Json<ModelsResponse>, ApiError> {
    authorize(&state, &headers, Role::Reader)?;
    let s = state.clone();
    let (list, champion) = tokio::task::spawn_blocking(move || {
        Ok::<_, crate::registry::RegistryError>((s.registry.list()?, s.registry.champion()?))
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?
    .map_err(|e| ApiError::Internal(e.to_string()))?;
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
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 422, description = "The model cannot be served; the previous one keeps serving", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn reload(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<ReloadQuery>,
) -> Result<Json<ReloadResponse>, ApiError> {
    let who = authorize(&state, &headers, Role::Admin)?;
    let id = q.id.unwrap_or_else(|| "champion".into());
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

/// Alive.
#[utoipa::path(get, path = "/healthz", tag = "service", responses((status = 200, description = "ok")))]
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
