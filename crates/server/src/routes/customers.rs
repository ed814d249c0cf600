//! `GET /v1/customers/{id}` and `GET /v1/risk-list`.

use super::*;

/// A customer's latest score, health history and interventions.
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerView {
    /// Customer id.
    pub customer_id: String,
    /// The newest stored score.
    pub latest: CustomerScoreRecord,
    /// Every stored score, newest first.
    pub history: Vec<HistoryPoint>,
    /// Interventions on record, most urgent first.
    pub interventions: Vec<InterventionView>,
    /// Overrides staff set, newest first (`active` marks the one in force).
    pub overrides: Vec<OverrideView>,
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
    /// Expected value saved: the gate `churn_probability × clv × effect −
    /// cost`, which must be positive for the action to be taken.
    pub expected_value: f64,
    /// Churn probability at the decision.
    pub churn_probability: f64,
    /// CLV at the decision.
    pub clv: f64,
    /// The effect the gate assumed (share of would-be churners saved).
    pub effect: f64,
    /// The playbook's cost.
    pub cost: f64,
    /// What staff recorded, if anything.
    pub outcome: Option<String>,
    /// What churn data showed after it (`churned` or `retained`), once settled.
    pub observed: Option<String>,
}

/// Unix seconds as RFC 3339, as every answer writes times.
pub(crate) fn rfc3339(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.to_rfc3339())
        .unwrap_or_default()
}

pub(crate) fn intervention_view(s: churnguard_store::StoredIntervention) -> InterventionView {
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
        churn_probability: i.churn_probability,
        clv: i.clv,
        effect: i.effect,
        cost: i.cost,
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
    _: Auth<Reader>,
    Path(id): Path<String>,
) -> Result<Json<CustomerView>, ApiError> {
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
    let overrides = state
        .store
        .customer_overrides(&id)
        .await?
        .into_iter()
        .map(override_view)
        .collect();
    Ok(Json(CustomerView {
        overrides,
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
    pub rows: Vec<CustomerScoreRecord>,
    /// Cursor of the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// Checks risk-list parameters into a store filter.
pub fn risk_filter(q: &RiskListQuery) -> Result<RiskListFilter, ApiError> {
    if let Some(b) = &q.band {
        b.parse::<churnguard_core::health::Band>()
            .map_err(|message| ApiError::BadParameter {
                field: "band".into(),
                message,
            })?;
    }
    if let Some(s) = &q.sort {
        if !churnguard_store::SORTABLE.contains(&s.as_str()) {
            return Err(ApiError::BadParameter {
                field: "sort".into(),
                message: format!(
                    "cannot sort by {s:?} (one of {})",
                    churnguard_store::SORTABLE.join(", ")
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
        if churnguard_store::bad_cursor(c) {
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
    _: Auth<Reader>,
    ApiQuery(params): ApiQuery<RiskListParams>,
) -> Result<Json<RiskListResponse>, ApiError> {
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
