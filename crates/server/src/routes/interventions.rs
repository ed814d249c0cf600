//! `GET /v1/interventions`, `POST /v1/interventions/{id}/outcome` and `GET /v1/outcomes`.

use super::*;

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
    _: Auth<Reader>,
    ApiQuery(q): ApiQuery<InterventionQuery>,
) -> Result<Json<Vec<InterventionView>>, ApiError> {
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

/// Record the outcome of an intervention (admins, or the intervention's own account manager); an open one becomes `done`.
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
    Auth(who, _): Auth<Reader>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<InterventionView>, ApiError> {
    let refuse = || ApiError::Forbidden {
        have: who.role.name(),
        need: "admin, or the intervention's own account manager",
    };
    if !crate::auth::may_act_on_some(who.role, who.owner.as_deref()) {
        return Err(refuse());
    }
    let id: i64 = id.parse().map_err(|_| ApiError::BadParameter {
        field: "id".into(),
        message: format!("intervention id must be an integer, got {id:?}"),
    })?;
    if who.role < crate::auth::Role::Admin {
        let owner = state.store.intervention(id).await?.intervention.owner;
        if !crate::auth::may_act_on(who.role, who.owner.as_deref(), Some(&owner)) {
            return Err(refuse());
        }
    }
    let req: OutcomeRequest = json_body(&body_bytes(body)?)?;
    churnguard_app::service::record_outcome(
        &state.store,
        id,
        req.outcome.into(),
        req.note,
        &who.name,
    )
    .await?;
    Ok(Json(intervention_view(state.store.intervention(id).await?)))
}

/// Treated against control, from the outcomes churn data has settled.
#[derive(Debug, Serialize, ToSchema)]
pub struct OutcomesResponse {
    /// All playbooks together (null until both arms have settled outcomes).
    pub overall: Option<churnguard_core::interventions::SaveRate>,
    /// Per playbook.
    pub playbooks: Vec<churnguard_core::interventions::PlaybookOutcome>,
    /// Per owner (account manager or team queue): their treated customers
    /// against the control customers the policy would have given them.
    pub owners: Vec<churnguard_core::interventions::OwnerOutcome>,
    /// Per playbook: customers its experiment needs to detect the
    /// playbook's assumed effect (80% power, 5% level), and how many have
    /// settled.
    pub power: Vec<churnguard_core::interventions::PlaybookPower>,
    /// Customers whose outcome window is not settled yet.
    pub pending: usize,
}

/// The save rate of treated customers against the control group, overall, per playbook and per owner, with each playbook's power.
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
    _: Auth<Reader>,
) -> Result<Json<OutcomesResponse>, ApiError> {
    let records = state.store.outcome_records().await?;
    let known: HashMap<i64, Option<bool>> = records.iter().map(|(i, o)| (i.id, *o)).collect();
    let list: Vec<_> = records.into_iter().map(|(i, _)| i).collect();
    let r = churnguard_core::interventions::summarise(&list, &known);
    let power = churnguard_core::interventions::playbook_power(&r, &state.config.interventions);
    Ok(Json(OutcomesResponse {
        overall: r.overall,
        playbooks: r.playbooks,
        owners: r.owners,
        power,
        pending: r.pending,
    }))
}
