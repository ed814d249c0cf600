//! The JSON API under `/v1` and the service endpoints. Each handler:
//! authenticate, check the role, extract, call one library or service
//! function, map the result.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
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

/// Query parameters, with malformed ones answered as a JSON `400
/// bad_parameter` (axum's own rejection is plain text).
pub struct ApiQuery<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for ApiQuery<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(ApiQuery)
            .map_err(|e| ApiError::BadParameter {
                field: e.path().to_string(),
                message: format!("query parameter {}: {}", e.path(), e.inner()),
            })
    }
}

/// A band, as a filter.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BandParam {
    /// Red.
    Red,
    /// Yellow.
    Yellow,
    /// Green.
    Green,
}

/// A sort order.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderParam {
    /// Ascending.
    Asc,
    /// Descending.
    Desc,
}

/// Risk-list columns to sort by.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SortParam {
    /// Probability × CLV (the default).
    ExpectedLoss,
    /// Churn probability.
    ChurnProbability,
    /// Health index.
    Health,
    /// Change of health.
    HealthChange,
    /// CLV.
    Clv,
    /// Customer id.
    CustomerId,
    /// Company name.
    Name,
    /// Owner.
    Owner,
    /// Band.
    Band,
    /// Segment.
    Segment,
}

/// Intervention statuses, as a filter.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StatusParam {
    /// Open.
    Open,
    /// Done.
    Done,
    /// Closed because the customer recovered.
    ClosedRecovered,
    /// Expired.
    Expired,
    /// Control-group records.
    Control,
}

/// KPI roles.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoleParam {
    /// Account managers.
    AccountManager,
    /// Acquisition reps.
    Acquisition,
}

/// Business stages.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StageParam {
    /// Default weights.
    Balanced,
    /// Growth.
    Growth,
    /// Mature.
    Mature,
}

fn name_of<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn nonempty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.trim().is_empty())
}

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
    // Bodies are JSON objects; serde would also take a struct as an array.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::MalformedJson(
            "the body must be a JSON object".into(),
        ));
    }
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

/// Score one customer or a batch.
///
/// The body is `{"customers": [record, ...]}` or a single record. A record
/// holds the model's id field, every model input (null when unknown), and
/// optionally `name`, `account_manager_id`, `acquisition_rep_id`, `segment`,
/// `mrr` and `cac`; other fields are skipped and listed in `ignored_fields`.
#[utoipa::path(
    post,
    path = "/v1/score",
    tag = "scoring",
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
            let records = score::parse(&bytes, &model.schema, limit)?;
            let (batch, contexts, ignored) = records.into_batch(&model.schema);
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
                .zip(ignored)
                .map(|(s, ignored)| score::result_of(s, ignored, &c.interventions, &model))
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

/// Filters of the risk list, as the web app's form sends them (free text).
#[derive(Debug, Default, Deserialize)]
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

/// Filters of `GET /v1/risk-list`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RiskListParams {
    /// Only this band.
    #[param(inline)]
    pub band: Option<BandParam>,
    /// Owner (account manager id).
    pub owner: Option<String>,
    /// Segment (plan).
    pub segment: Option<String>,
    /// Customer id, or part of the name.
    pub q: Option<String>,
    /// Sort column (default `expected_loss`).
    #[param(inline)]
    pub sort: Option<SortParam>,
    /// `desc` (default) or `asc`.
    #[param(inline)]
    pub order: Option<OrderParam>,
    /// Rows per page (default 50).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// Cursor from the previous page's `next_cursor`.
    #[param(pattern = "^[0-9a-f]*$")]
    pub cursor: Option<String>,
    /// Scoring run (default: the latest).
    pub run: Option<String>,
}

impl From<RiskListParams> for RiskListQuery {
    fn from(p: RiskListParams) -> RiskListQuery {
        RiskListQuery {
            band: p.band.map(|b| match b {
                BandParam::Red => "red".into(),
                BandParam::Yellow => "yellow".into(),
                BandParam::Green => "green".into(),
            }),
            owner: nonempty(p.owner),
            segment: nonempty(p.segment),
            q: nonempty(p.q),
            sort: p.sort.map(|s| name_of(&s)),
            order: p.order.map(|o| match o {
                OrderParam::Asc => "asc".into(),
                OrderParam::Desc => "desc".into(),
            }),
            limit: p.limit,
            cursor: nonempty(p.cursor),
            run: nonempty(p.run),
        }
    }
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
    params(RiskListParams),
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
    ApiQuery(params): ApiQuery<RiskListParams>,
) -> Result<Json<RiskListResponse>, ApiError> {
    authorize(&state, &headers, Role::Reader)?;
    let q = RiskListQuery::from(params);
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
#[into_params(parameter_in = Query)]
pub struct InterventionQuery {
    /// Only this status.
    #[param(inline)]
    pub status: Option<StatusParam>,
    /// Owner.
    pub owner: Option<String>,
    /// Customer id.
    pub customer_id: Option<String>,
    /// At most this many (default 200).
    #[param(minimum = 1, maximum = 10000)]
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
    ApiQuery(q): ApiQuery<InterventionQuery>,
) -> Result<Json<Vec<InterventionView>>, ApiError> {
    authorize(&state, &headers, Role::Reader)?;
    let status = q.status.map(|s| match s {
        StatusParam::Open => Status::Open,
        StatusParam::Done => Status::Done,
        StatusParam::ClosedRecovered => Status::ClosedRecovered,
        StatusParam::Expired => Status::Expired,
        StatusParam::Control => Status::Control,
    });
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
            owner: nonempty(q.owner),
            customer_id: nonempty(q.customer_id),
            limit,
        })
        .await?;
    Ok(Json(rows.into_iter().map(intervention_view).collect()))
}

/// Outcomes staff can record.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeParam {
    /// The customer stays.
    Retained,
    /// The customer leaves anyway.
    Churned,
    /// Could not reach the customer.
    Unreachable,
    /// The customer declined.
    Declined,
}

impl From<OutcomeParam> for StaffOutcome {
    fn from(o: OutcomeParam) -> StaffOutcome {
        match o {
            OutcomeParam::Retained => StaffOutcome::Retained,
            OutcomeParam::Churned => StaffOutcome::Churned,
            OutcomeParam::Unreachable => StaffOutcome::Unreachable,
            OutcomeParam::Declined => StaffOutcome::Declined,
        }
    }
}

/// What staff report.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OutcomeRequest {
    /// What happened.
    pub outcome: OutcomeParam,
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
                outcome: req.outcome.into(),
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
    #[schema(pattern = "^(latest|[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01]))$")]
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
        (status = 400, description = "No body, or malformed JSON", body = ErrorBody),
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
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::MalformedJson(
            "a JSON body is required: send {} to score the latest snapshot with the champion"
                .into(),
        ));
    }
    let req: ScoringRunRequest = json_body(&bytes)?;
    if let Some(s) = &req.snapshot {
        let date_like = s.len() == 10
            && s.bytes().enumerate().all(|(i, b)| {
                if i == 4 || i == 7 {
                    b == b'-'
                } else {
                    b.is_ascii_digit()
                }
            });
        if s != "latest" && !date_like {
            return Err(ApiError::BadField {
                code: "wrong_type",
                field: "snapshot".into(),
                message: format!("snapshot: expected YYYY-MM-DD or latest, got {s:?}"),
            });
        }
    }
    let Some(data) = state.config.serve.data.clone() else {
        return Err(ApiError::Conflict(
            "no data directory configured: set serve.data in churnguard.toml".into(),
        ));
    };
    let _one = state.exclusive.lock().await;
    let request = crate::service::ScoreRunRequest {
        registry: state.registry.root().to_path_buf(),
        model: nonempty(req.model).unwrap_or_else(|| "champion".into()),
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
    /// Scorecards, best first.
    #[schema(value_type = Vec<Object>)]
    pub scorecards: Vec<serde_json::Value>,
    /// Configured weights beside the data-driven ones.
    #[schema(value_type = Vec<Object>)]
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
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<KpiQuery>,
) -> Result<Json<ScorecardsResponse>, ApiError> {
    authorize(&state, &headers, Role::Reader)?;
    let role = match q.role.unwrap_or(RoleParam::AccountManager) {
        RoleParam::AccountManager => crate::kpi::Role::AccountManager,
        RoleParam::Acquisition => crate::kpi::Role::Acquisition,
    };
    let stage = match q.stage {
        None => state.config.kpi.stage,
        Some(StageParam::Balanced) => crate::kpi::Stage::Balanced,
        Some(StageParam::Growth) => crate::kpi::Stage::Growth,
        Some(StageParam::Mature) => crate::kpi::Stage::Mature,
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
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<ReloadQuery>,
) -> Result<Json<ReloadResponse>, ApiError> {
    let who = authorize(&state, &headers, Role::Admin)?;
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
