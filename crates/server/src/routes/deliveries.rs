//! `GET /v1/deliveries`, `POST /v1/deliveries/{id}/retry` (the webhook
//! outbox, for admins) and `GET /v1/interventions/export` (an owner's open
//! interventions as CSV or JSON, for tools without a webhook).

use super::*;

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatusParam {
    /// Not yet accepted; retried with backoff.
    Pending,
    /// Accepted (2xx).
    Delivered,
    /// Every attempt failed; waits for an admin.
    Dead,
}

/// Filters of the outbox list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    /// Only this status (`dead`: the dead-letter list).
    #[param(inline)]
    pub status: Option<DeliveryStatusParam>,
    /// At most this many, newest first (default 200).
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<usize>,
}

/// One intervention's delivery to one webhook.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    /// The intervention.
    pub intervention_id: i64,
    /// The webhook (its name in the config).
    pub webhook: String,
    /// `pending`, `delivered` or `dead`.
    pub status: String,
    /// Attempts made.
    pub attempts: u32,
    /// Next attempt (Unix seconds), for pending ones.
    pub next_attempt_at: i64,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When the receiver accepted it (Unix seconds).
    pub delivered_at: Option<i64>,
    /// The idempotency key every attempt carried.
    pub idempotency_key: String,
}

fn delivery_view(d: churnguard_store::Delivery) -> DeliveryView {
    DeliveryView {
        idempotency_key: crate::delivery::idempotency_key(d.intervention_id),
        intervention_id: d.intervention_id,
        webhook: d.webhook,
        status: d.status.name().to_string(),
        attempts: d.attempts,
        next_attempt_at: d.next_attempt_at,
        last_error: d.last_error,
        delivered_at: d.delivered_at,
    }
}

/// The webhook outbox, newest first: what reached each webhook, what is being retried, and the dead letters.
#[utoipa::path(
    get,
    path = "/v1/deliveries",
    tag = "interventions",
    params(DeliveryQuery),
    responses(
        (status = 200, body = Vec<DeliveryView>),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn deliveries(
    State(state): State<Arc<AppState>>,
    _: Auth<Admin>,
    ApiQuery(q): ApiQuery<DeliveryQuery>,
) -> Result<Json<Vec<DeliveryView>>, ApiError> {
    let limit = q.limit.unwrap_or(200);
    if !(1..=10_000).contains(&limit) {
        return Err(ApiError::BadParameter {
            field: "limit".into(),
            message: format!("limit must be 1..=10000, got {limit}"),
        });
    }
    let status = q.status.map(|s| match s {
        DeliveryStatusParam::Pending => churnguard_store::DeliveryStatus::Pending,
        DeliveryStatusParam::Delivered => churnguard_store::DeliveryStatus::Delivered,
        DeliveryStatusParam::Dead => churnguard_store::DeliveryStatus::Dead,
    });
    let rows = state.store.deliveries(status, limit).await?;
    Ok(Json(rows.into_iter().map(delivery_view).collect()))
}

/// Which dead delivery to retry.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryRequest {
    /// The webhook's name.
    pub webhook: String,
}

/// Put a dead delivery back in the queue (attempts reset); audit-logged.
#[utoipa::path(
    post,
    path = "/v1/deliveries/{id}/retry",
    tag = "interventions",
    params(("id" = i64, Path, description = "Intervention id")),
    request_body = RetryRequest,
    responses(
        (status = 200, body = DeliveryView),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "No dead delivery of this intervention to this webhook", body = ErrorBody),
        (status = 422, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn retry_delivery(
    State(state): State<Arc<AppState>>,
    Auth(who, _): Auth<Admin>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<DeliveryView>, ApiError> {
    let id: i64 = id.parse().map_err(|_| ApiError::BadParameter {
        field: "id".into(),
        message: format!("intervention id must be an integer, got {id:?}"),
    })?;
    let req: RetryRequest = json_body(&body_bytes(body)?)?;
    let now = churnguard_store::now();
    state
        .store
        .retry_delivery(id, &req.webhook, &who.name, now)
        .await?;
    let row = state
        .store
        .deliveries(None, 10_000)
        .await?
        .into_iter()
        .find(|d| d.intervention_id == id && d.webhook == req.webhook)
        .ok_or_else(|| ApiError::NotFound {
            what: "delivery",
            id: format!("{id} to {}", req.webhook),
        })?;
    Ok(Json(delivery_view(row)))
}

/// Export formats.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExportFormat {
    /// One JSON array.
    #[default]
    Json,
    /// CSV with a header row.
    Csv,
}

/// Whose interventions, in what form.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// The owner (an account manager id or a team queue).
    #[param(min_length = 1)]
    pub owner: String,
    /// `json` (default) or `csv`.
    #[param(inline)]
    pub format: Option<ExportFormat>,
}

/// One row of an owner's export: the intervention with the customer's latest score.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExportRow {
    /// Intervention id.
    pub intervention_id: i64,
    /// The key a tool importing this row should deduplicate by.
    pub idempotency_key: String,
    /// Customer id.
    pub customer_id: String,
    /// Customer name, when known.
    pub customer_name: Option<String>,
    /// Playbook.
    pub playbook: String,
    /// Channel.
    pub channel: String,
    /// Priority (1 most urgent).
    pub priority: u32,
    /// SLA due (RFC 3339).
    pub due_at: String,
    /// Churn probability when planned.
    pub churn_probability: f64,
    /// CLV when planned.
    pub clv: f64,
    /// Latest health index.
    pub health: Option<f64>,
    /// Latest band.
    pub band: Option<String>,
    /// Why, in words (strongest first).
    pub reasons: Vec<String>,
}

/// An owner's open, treated interventions (most urgent first) as JSON or CSV, for tools without a webhook.
#[utoipa::path(
    get,
    path = "/v1/interventions/export",
    tag = "interventions",
    params(ExportQuery),
    responses(
        (status = 200, description = "JSON (`format=json`) or CSV (`format=csv`)", content((Vec<ExportRow> = "application/json"), (String = "text/csv"))),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn export_interventions(
    State(state): State<Arc<AppState>>,
    _: Auth<Reader>,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> Result<Response, ApiError> {
    if q.owner.is_empty() {
        return Err(ApiError::BadParameter {
            field: "owner".into(),
            message: "owner must name an owner".into(),
        });
    }
    let rows = state
        .store
        .interventions(&InterventionFilter {
            status: Some(Status::Open),
            owner: Some(q.owner.clone()),
            customer_id: None,
            limit: 10_000,
        })
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let i = r.intervention;
        if i.arm != churnguard_core::interventions::Arm::Treated {
            continue;
        }
        let brief = crate::delivery::CustomerBrief::of(&state.store, &i.customer_id).await?;
        out.push(ExportRow {
            idempotency_key: crate::delivery::idempotency_key(i.id),
            intervention_id: i.id,
            customer_name: brief.name,
            customer_id: i.customer_id,
            playbook: i.playbook,
            channel: i.channel,
            priority: i.priority,
            due_at: rfc3339(i.due_at),
            churn_probability: i.churn_probability,
            clv: i.clv,
            health: brief.health,
            band: brief.band,
            reasons: brief.reasons,
        });
    }
    match q.format.unwrap_or_default() {
        ExportFormat::Json => Ok(Json(out).into_response()),
        ExportFormat::Csv => {
            let mut csv = String::from("intervention_id,idempotency_key,customer_id,customer_name,playbook,channel,priority,due_at,churn_probability,clv,health,band,reasons\n");
            for r in &out {
                let fields = [
                    r.intervention_id.to_string(),
                    r.idempotency_key.clone(),
                    r.customer_id.clone(),
                    r.customer_name.clone().unwrap_or_default(),
                    r.playbook.clone(),
                    r.channel.clone(),
                    r.priority.to_string(),
                    r.due_at.clone(),
                    format!("{:.4}", r.churn_probability),
                    format!("{:.2}", r.clv),
                    r.health.map_or(String::new(), |h| format!("{h:.1}")),
                    r.band.clone().unwrap_or_default(),
                    r.reasons.join("; "),
                ];
                let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
                csv.push_str(&line.join(","));
                csv.push('\n');
            }
            Ok((
                [(axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8")],
                csv,
            )
                .into_response())
        }
    }
}

/// A CSV field, quoted when it holds a comma, quote or line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
