//! `POST /v1/customers/{id}/overrides` and `POST /v1/overrides/{id}/revoke`:
//! a CSM who knows better than the model sets a customer's band, or stops
//! new interventions, with a reason and an expiry.

use super::*;

use crate::auth::{may_act_on, may_act_on_some};

/// Bands staff can set.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BandParam {
    /// Healthy.
    Green,
    /// Watch.
    Yellow,
    /// At risk.
    Red,
}

impl BandParam {
    fn name(self) -> &'static str {
        match self {
            BandParam::Green => "green",
            BandParam::Yellow => "yellow",
            BandParam::Red => "red",
        }
    }
}

/// An override to set.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OverrideBody {
    /// The band to show instead of the computed one.
    pub band: Option<BandParam>,
    /// Stop new interventions for the customer while it lasts (default false).
    #[serde(default)]
    pub suppress_interventions: bool,
    /// Why: shown beside the band and kept in the audit log.
    pub reason: String,
    /// The last day it applies (YYYY-MM-DD; it lapses at the end of that day, UTC; at most a year ahead).
    #[schema(value_type = String, format = Date)]
    pub expires_on: chrono::NaiveDate,
}

/// An override as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct OverrideView {
    /// Its id.
    pub id: i64,
    /// The customer.
    pub customer_id: String,
    /// The band staff set, if any.
    pub band: Option<String>,
    /// Whether new interventions are stopped.
    pub suppress_interventions: bool,
    /// Why.
    pub reason: String,
    /// Who set it.
    pub set_by: String,
    /// When (RFC 3339).
    pub created_at: String,
    /// When it lapses (RFC 3339).
    pub expires_at: String,
    /// Whether it is in force now.
    pub active: bool,
    /// Who ended it early, if anyone.
    pub revoked_by: Option<String>,
}

pub(crate) fn override_view(o: churnguard_store::Override) -> OverrideView {
    let now = churnguard_store::now();
    OverrideView {
        active: o.is_active(now),
        id: o.id,
        customer_id: o.customer_id,
        band: o.band,
        suppress_interventions: o.suppress,
        reason: o.reason,
        set_by: o.actor,
        created_at: rfc3339(o.created_at),
        expires_at: rfc3339(o.expires_at),
        revoked_by: o.revoked_by,
    }
}

/// The customer's owner in their newest score, or 404 (the API and the
/// web app's override forms ask it before acting).
pub(crate) async fn customer_owner(
    state: &AppState,
    customer_id: &str,
) -> Result<Option<String>, ApiError> {
    let history = state.store.customer_history(customer_id).await?;
    match history.into_iter().next() {
        Some(latest) => Ok(latest.owner),
        None => Err(ApiError::NotFound {
            what: "customer",
            id: customer_id.to_string(),
        }),
    }
}

fn refuse(role: crate::auth::Role) -> ApiError {
    ApiError::Forbidden {
        have: role.name(),
        need: "admin, or the customer's own account manager",
    }
}

/// Override a customer's band and/or stop new interventions, with a reason and an expiry; the next scoring runs keep it (the computed band beside it) until it lapses.
#[utoipa::path(
    post,
    path = "/v1/customers/{id}/overrides",
    tag = "customers",
    params(("id" = String, Path, description = "Customer id")),
    request_body = OverrideBody,
    responses(
        (status = 200, body = OverrideView),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Neither an admin nor the customer's account manager", body = ErrorBody),
        (status = 404, description = "No stored score for this customer", body = ErrorBody),
        (status = 422, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn create_override(
    State(state): State<Arc<AppState>>,
    Auth(who, _): Auth<Reader>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<OverrideView>, ApiError> {
    if !may_act_on_some(who.role, who.owner.as_deref()) {
        return Err(refuse(who.role));
    }
    let req: OverrideBody = json_body(&body_bytes(body)?)?;
    let owner = customer_owner(&state, &id).await?;
    if !may_act_on(who.role, who.owner.as_deref(), owner.as_deref()) {
        return Err(refuse(who.role));
    }
    let o = churnguard_app::service::set_override(
        &state.store,
        &id,
        churnguard_app::service::OverrideRequest {
            band: req.band.map(|b| b.name().to_string()),
            suppress_interventions: req.suppress_interventions,
            reason: req.reason,
            expires_on: req.expires_on,
        },
        &who.name,
        churnguard_store::now(),
    )
    .await?;
    Ok(Json(override_view(o)))
}

/// End an override early; audit-logged.
#[utoipa::path(
    post,
    path = "/v1/overrides/{id}/revoke",
    tag = "customers",
    params(("id" = i64, Path, description = "Override id")),
    responses(
        (status = 200, body = OverrideView),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Neither an admin nor the customer's account manager", body = ErrorBody),
        (status = 404, description = "No override in force with this id", body = ErrorBody),
        (status = 503, body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn revoke_override(
    State(state): State<Arc<AppState>>,
    Auth(who, _): Auth<Reader>,
    Path(id): Path<String>,
) -> Result<Json<OverrideView>, ApiError> {
    if !may_act_on_some(who.role, who.owner.as_deref()) {
        return Err(refuse(who.role));
    }
    let id: i64 = id.parse().map_err(|_| ApiError::BadParameter {
        field: "id".into(),
        message: format!("override id must be an integer, got {id:?}"),
    })?;
    let customer = state
        .store
        .override_by_id(id)
        .await?
        .filter(|o| o.is_active(churnguard_store::now()))
        .ok_or_else(|| ApiError::NotFound {
            what: "override in force",
            id: id.to_string(),
        })?
        .customer_id;
    let owner = customer_owner(&state, &customer).await?;
    if !may_act_on(who.role, who.owner.as_deref(), owner.as_deref()) {
        return Err(refuse(who.role));
    }
    let o = state
        .store
        .revoke_override(id, &who.name, churnguard_store::now())
        .await?;
    Ok(Json(override_view(o)))
}
