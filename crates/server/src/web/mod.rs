//! The risk-list web app for customer-success staff: server-rendered HTML
//! (maud), a vendored stylesheet and a small script, no CDN. Sign-in uses
//! the API keys and roles of the API; the session cookie is HttpOnly and
//! SameSite=Strict, every state-changing form carries a CSRF token, and the
//! server (not only the page) enforces roles. Pages are sent with a strict
//! Content-Security-Policy (no inline script or style), nosniff, and
//! `frame-ancestors 'none'`.

mod charts;
mod pages;

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Form, FromRequestParts, Path, Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::Markup;
use serde::Deserialize;

use super::auth::Role;
use super::error::ApiError;
use super::routes::{risk_filter, RiskListQuery};
use super::state::AppState;
use churnguard_core::interventions::Status;
use churnguard_store::{InterventionFilter, StaffOutcome};

const COOKIE: &str = "cg_session";
const SESSION_HOURS: u64 = 12;
const CSS: &str = include_str!("static/app.css");
const JS: &str = include_str!("static/app.js");

/// A signed-in user.
#[derive(Debug, Clone)]
pub struct Session {
    /// The key's name.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// The account manager id the key belongs to, if configured.
    pub owner: Option<String>,
    /// The token every form must send back.
    pub csrf: String,
}

fn random_token() -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

/// Sessions live in the store, keyed by the SHA-256 of the cookie's token:
/// every replica sharing the store knows a session made on any of them, a
/// sign-out on one ends it on all, and a restart signs nobody out.
fn token_hash(token: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Starts a session; returns the cookie's token.
async fn create_session(
    state: &AppState,
    name: String,
    role: Role,
    owner: Option<String>,
) -> Result<String, ApiError> {
    let token = random_token();
    let now = unix_now();
    state
        .store
        .create_web_session(
            &token_hash(&token),
            &churnguard_store::WebSession {
                name,
                role: role.name().to_string(),
                owner,
                csrf: random_token(),
                expires_at: now + (SESSION_HOURS * 3600) as i64,
            },
            now,
        )
        .await?;
    Ok(token)
}

/// The headers every HTML page carries.
fn html_response(status: StatusCode, markup: Markup) -> Response {
    let mut r = (status, markup.into_string()).into_response();
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    secure(h, "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'");
    r
}

fn secure(h: &mut HeaderMap, csp: &str) {
    if let Ok(v) = HeaderValue::from_str(csp) {
        h.insert("content-security-policy", v);
    }
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

fn redirect(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(LOCATION, v);
    }
    r
}

fn cookie_value(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

/// The signed-in session, if any (pages redirect to the sign-in page
/// without one); an error when the store cannot be read.
async fn session(state: &AppState, headers: &HeaderMap) -> Result<Option<Session>, ApiError> {
    let Some(token) = cookie_value(headers) else {
        return Ok(None);
    };
    let Some(s) = state
        .store
        .web_session(&token_hash(&token), unix_now())
        .await?
    else {
        return Ok(None);
    };
    // A role this build does not know (a downgrade), or a key revoked or
    // given another role since, signs the user out.
    Ok(Role::parse(&s.role)
        .filter(|role| state.keys.grants(&s.name, *role))
        .map(|role| Session {
            name: s.name,
            role,
            owner: s.owner,
            csrf: s.csrf,
        }))
}

/// The signed-in user of a page. A request without a session never reaches
/// the handler: it is redirected to the sign-in page.
pub struct Signed(pub Session);

impl axum::extract::FromRequestParts<Arc<AppState>> for Signed {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        match session(state, &parts.headers).await {
            Ok(Some(s)) => Ok(Signed(s)),
            Ok(None) => Err(redirect("/login")),
            Err(e) => Err(page_error(None, e)),
        }
    }
}

/// A form that carries the session's CSRF token.
pub trait CsrfToken {
    /// The token the form sent back.
    fn csrf(&self) -> &str;
}

/// A state-changing form from a signed-in user whose CSRF token matched:
/// every form that changes something takes this extractor, so a new form
/// cannot forget either check.
pub struct SignedForm<T>(pub Session, pub T);

impl<T> axum::extract::FromRequest<Arc<AppState>> for SignedForm<T>
where
    T: serde::de::DeserializeOwned + CsrfToken + Send,
{
    type Rejection = Response;

    async fn from_request(
        req: axum::extract::Request,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let Signed(s) = Signed::from_request_parts(&mut parts, state).await?;
        let request = axum::extract::Request::from_parts(parts, body);
        let Form(form) = <Form<T> as axum::extract::FromRequest<_>>::from_request(request, state)
            .await
            .map_err(IntoResponse::into_response)?;
        if !csrf_ok(&s, form.csrf()) {
            return Err(forbidden(
                &s,
                "The form has expired; reload the page and try again.",
            ));
        }
        Ok(SignedForm(s, form))
    }
}

/// A page error shown as HTML.
fn page_error(s: Option<&Session>, e: ApiError) -> Response {
    let (status, body) = e.parts();
    html_response(
        status,
        pages::message(s, "Something went wrong", &body.message),
    )
}

fn csrf_ok(s: &Session, token: &str) -> bool {
    use subtle::ConstantTimeEq;
    s.csrf.len() == token.len() && bool::from(s.csrf.as_bytes().ct_eq(token.as_bytes()))
}

/// The web app's routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(risk_page))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/risk-list.csv", get(risk_csv))
        .route("/customers/{id}", get(customer_page))
        .route("/interventions", get(board_page))
        .route("/interventions/{id}/outcome", post(outcome_form))
        .route("/interventions/{id}/done", post(done_form))
        .route("/customers/{id}/override", post(override_form))
        .route("/overrides/{id}/revoke", post(revoke_form))
        .route("/kpi", get(kpi_page))
        .route("/monitoring", get(monitoring_page))
        .route("/retention", get(retention_page))
        .route("/models", get(models_page))
        .route("/models/{id}/report", get(report_page))
        .route(
            "/static/app.css",
            get(|| async { asset("text/css; charset=utf-8", CSS) }),
        )
        .route(
            "/static/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", JS) }),
        )
}

fn asset(kind: &'static str, body: &'static str) -> Response {
    let mut r = body.into_response();
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(kind));
    r.headers_mut().insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    r.headers_mut().insert(
        CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    r
}

async fn login_page(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    match session(&state, &headers).await {
        Ok(Some(_)) => return redirect("/"),
        Ok(None) => {}
        Err(e) => return page_error(None, e),
    }
    html_response(StatusCode::OK, pages::login(None))
}

#[derive(Deserialize)]
struct LoginForm {
    api_key: String,
}

async fn login(State(state): State<Arc<AppState>>, Form(f): Form<LoginForm>) -> Response {
    if let Err(e) = state.limiter.check("web-login") {
        return page_error(None, e);
    }
    match state.keys.identify(Some(f.api_key.trim())) {
        Ok(c) => {
            let owner = state
                .serve
                .keys
                .iter()
                .find(|k| k.name == c.name)
                .and_then(|k| k.owner.clone());
            let id = match create_session(&state, c.name.clone(), c.role, owner).await {
                Ok(id) => id,
                Err(e) => return page_error(None, e),
            };
            tracing::info!(who = %c.name, role = c.role.name(), "signed in");
            // Sign-ins are in the audit log; a log that cannot be written
            // (store down) is logged but does not lock staff out.
            if let Err(e) = state
                .store
                .audit(
                    &c.name,
                    "web.login",
                    &c.name,
                    &serde_json::json!({ "role": c.role.name() }),
                )
                .await
            {
                tracing::warn!(error = %e, "sign-in not audit-logged");
            }
            let mut r = redirect("/");
            let secure = if state.serve.secure_cookies {
                "; Secure"
            } else {
                ""
            };
            if let Ok(v) = HeaderValue::from_str(&format!(
                "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
                SESSION_HOURS * 3600
            )) {
                r.headers_mut().insert(SET_COOKIE, v);
            }
            r
        }
        Err(_) => {
            // The key itself is never logged, only that one failed.
            if let Err(e) = state
                .store
                .audit(
                    "unknown",
                    "web.login_failed",
                    "web",
                    &serde_json::json!({ "reason": "unknown key" }),
                )
                .await
            {
                tracing::warn!(error = %e, "failed sign-in not audit-logged");
            }
            html_response(
                StatusCode::UNAUTHORIZED,
                pages::login(Some("That key is not valid.")),
            )
        }
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

impl CsrfToken for CsrfForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

async fn logout(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    SignedForm(_, _): SignedForm<CsrfForm>,
) -> Response {
    if let Some(id) = cookie_value(&headers) {
        if let Err(e) = state.store.delete_web_session(&token_hash(&id)).await {
            return page_error(None, e.into());
        }
    }
    let mut r = redirect("/login");
    r.headers_mut().insert(
        SET_COOKIE,
        HeaderValue::from_static("cg_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    r
}

fn query_string(q: &RiskListQuery) -> String {
    let e = |v: &Option<String>| pages::enc(v.as_deref().unwrap_or(""));
    format!(
        "band={}&owner={}&segment={}&q={}&sort={}&order={}",
        e(&q.band),
        e(&q.owner),
        e(&q.segment),
        e(&q.q),
        e(&q.sort),
        e(&q.order)
    )
}

fn clean(mut q: RiskListQuery) -> RiskListQuery {
    let empty = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
    q.band = empty(q.band);
    q.owner = empty(q.owner);
    q.segment = empty(q.segment);
    q.q = empty(q.q);
    q.sort = empty(q.sort);
    q.order = empty(q.order);
    q.cursor = empty(q.cursor);
    q
}

async fn risk_page(
    State(state): State<Arc<AppState>>,
    Signed(s): Signed,
    Query(q): Query<RiskListQuery>,
) -> Response {
    let q = clean(q);
    let mut filter = match risk_filter(&q) {
        Ok(f) => f,
        Err(e) => return page_error(Some(&s), e),
    };
    filter.limit = q.limit.unwrap_or(50).clamp(1, 500);
    let run = match state.store.latest_run().await {
        Ok(Some(r)) => r,
        Ok(None) => {
            return html_response(
                StatusCode::OK,
                pages::message(
                    Some(&s),
                    "Risk list",
                    "No scoring run yet: run `churnguard score` or POST /v1/scoring-runs.",
                ),
            )
        }
        Err(e) => return page_error(Some(&s), e.into()),
    };
    let page = match state.store.risk_list(&run.run_id, &filter).await {
        Ok(p) => p,
        Err(e) => return page_error(Some(&s), e.into()),
    };
    let query = query_string(&q);
    let next = page
        .next_cursor
        .as_ref()
        .map(|c| format!("/?{query}&cursor={}", pages::enc(c)));
    let view = pages::RiskView {
        rows: &page.rows,
        total: page.total,
        run_id: &run.run_id,
        snapshot: &run.snapshot_date,
        band: q.band.as_deref().unwrap_or(""),
        owner: q.owner.as_deref().unwrap_or(""),
        segment: q.segment.as_deref().unwrap_or(""),
        q: q.q.as_deref().unwrap_or(""),
        sort: q.sort.as_deref().unwrap_or("expected_loss"),
        order: q.order.as_deref().unwrap_or("desc"),
        next,
        query,
        my_owner: s.owner.as_deref(),
    };
    html_response(StatusCode::OK, pages::risk_list(&s, &view))
}

fn csv_field(v: &str) -> String {
    // Quote when needed, and defuse spreadsheet formulas.
    let v = if v.starts_with(['=', '+', '-', '@']) && v.parse::<f64>().is_err() {
        format!("'{v}")
    } else {
        v.to_string()
    };
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v
    }
}

async fn risk_csv(
    State(state): State<Arc<AppState>>,
    Signed(s): Signed,
    Query(q): Query<RiskListQuery>,
) -> Response {
    let q = clean(q);
    let mut filter = match risk_filter(&RiskListQuery { cursor: None, ..q }) {
        Ok(f) => f,
        Err(e) => return page_error(Some(&s), e),
    };
    filter.limit = 10_000;
    let run = match state.store.latest_run().await {
        Ok(Some(r)) => r,
        Ok(None) => {
            return page_error(
                Some(&s),
                ApiError::NotFound {
                    what: "scoring run",
                    id: "latest".into(),
                },
            )
        }
        Err(e) => return page_error(Some(&s), e.into()),
    };
    let mut out = String::from(
        "customer_id,name,owner,owner_name,segment,band,health,health_change,trend,churn_probability,churn_type,clv,expected_loss,top_reason,intervention\n",
    );
    let mut cursor = None;
    loop {
        filter.cursor = cursor;
        let page = match state.store.risk_list(&run.run_id, &filter).await {
            Ok(p) => p,
            Err(e) => return page_error(Some(&s), e.into()),
        };
        for r in &page.rows {
            let row = [
                r.customer_id.clone(),
                r.name.clone().unwrap_or_default(),
                r.owner.clone().unwrap_or_default(),
                r.owner_name.clone().unwrap_or_default(),
                r.segment.clone().unwrap_or_default(),
                r.band.clone(),
                format!("{:.2}", r.health),
                r.health_change
                    .map(|c| format!("{c:.2}"))
                    .unwrap_or_default(),
                r.trend.clone(),
                format!("{:.6}", r.churn_probability),
                r.churn_type.clone().unwrap_or_default(),
                format!("{:.2}", r.clv),
                format!("{:.2}", r.expected_loss),
                r.reasons
                    .first()
                    .map(pages::plain_reason)
                    .unwrap_or_default(),
                r.intervention.clone().unwrap_or_default(),
            ];
            out.push_str(
                &row.iter()
                    .map(|v| csv_field(v))
                    .collect::<Vec<_>>()
                    .join(","),
            );
            out.push('\n');
        }
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let mut r = out.into_response();
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    h.insert(
        "content-disposition",
        HeaderValue::from_static("attachment; filename=\"risk_list.csv\""),
    );
    secure(h, "default-src 'none'");
    r
}

fn date(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

fn datetime(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

/// The clock the board judges "overdue" by: the latest run's snapshot plus
/// the time since that run, so a deployment that scores live data sees
/// today, and one replaying history sees the history's today.
async fn as_of(state: &AppState) -> i64 {
    let now = chrono::Utc::now().timestamp();
    match state.store.latest_run().await {
        Ok(Some(run)) => chrono::NaiveDate::parse_from_str(&run.snapshot_date, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc().timestamp())
            .map_or(now, |snapshot| {
                (snapshot + (now - run.created_at).max(0)).min(now)
            }),
        _ => now,
    }
}

fn row_of(
    i: churnguard_core::interventions::Intervention,
    outcome: Option<String>,
    now: i64,
) -> pages::InterventionRow {
    pages::InterventionRow {
        overdue: i.status == Status::Open && i.due_at < now,
        id: i.id,
        customer_id: i.customer_id,
        playbook: i.playbook,
        owner: i.owner,
        status: i.status.name().into(),
        arm: i.arm.name().into(),
        created: date(i.created_at),
        due: datetime(i.due_at),
        due_at: i.due_at,
        due_today: i.status == Status::Open && i.due_at >= now && i.due_at < now + 86_400,
        outcome,
        priority: i.priority,
        customer_name: None,
        health: None,
        band: None,
        churn_probability: i.churn_probability,
        expected_loss: i.churn_probability * i.clv,
        reason: None,
        delivery: Vec::new(),
        gate: format!(
            "{:.0}% × {:.0} × {:.0}% − {:.0} = {:.0}",
            100.0 * i.churn_probability,
            i.clv,
            100.0 * i.effect,
            i.cost,
            i.expected_value
        ),
    }
}

#[derive(Deserialize)]
struct Flash {
    done: Option<String>,
}

async fn customer_page(
    State(state): State<Arc<AppState>>,
    Signed(s): Signed,
    Path(id): Path<String>,
    Query(flash): Query<Flash>,
) -> Response {
    let history = match state.store.customer_history(&id).await {
        Ok(h) => h,
        Err(e) => return page_error(Some(&s), e.into()),
    };
    let Some(latest) = history.first() else {
        return page_error(
            Some(&s),
            ApiError::NotFound {
                what: "customer",
                id,
            },
        );
    };
    let interventions = match state
        .store
        .interventions(&InterventionFilter {
            customer_id: Some(id.clone()),
            limit: 200,
            ..Default::default()
        })
        .await
    {
        Ok(v) => v,
        Err(e) => return page_error(Some(&s), e.into()),
    };
    let now = as_of(&state).await;
    let overrides = match state.store.customer_overrides(&id).await {
        Ok(v) => v,
        Err(e) => return page_error(Some(&s), e.into()),
    };
    let points: Vec<(String, f64)> = history
        .iter()
        .rev()
        .map(|r| (r.snapshot_date.clone(), r.health))
        .collect();
    let view = pages::CustomerView {
        overrides,
        may_override: crate::auth::may_act_on(s.role, s.owner.as_deref(), latest.owner.as_deref()),
        now: churnguard_store::now(),
        latest,
        history: points,
        interventions: {
            let ids: Vec<i64> = interventions.iter().map(|r| r.intervention.id).collect();
            let deliveries = state.store.deliveries_of(&ids).await.unwrap_or_else(|e| {
                tracing::warn!(error = %e, "deliveries unavailable on the customer page");
                Vec::new()
            });
            interventions
                .into_iter()
                .map(|r| {
                    let id = r.intervention.id;
                    let mut row = row_of(r.intervention, r.outcome, now);
                    row.delivery = deliveries
                        .iter()
                        .filter(|d| d.intervention_id == id)
                        .map(|d| match d.status {
                            churnguard_store::DeliveryStatus::Delivered => {
                                format!("{}: delivered", d.webhook)
                            }
                            churnguard_store::DeliveryStatus::Pending => format!(
                                "{}: sending ({} attempt{} so far)",
                                d.webhook,
                                d.attempts,
                                if d.attempts == 1 { "" } else { "s" }
                            ),
                            churnguard_store::DeliveryStatus::Dead => {
                                format!("{}: failed after {} attempts", d.webhook, d.attempts)
                            }
                        })
                        .collect();
                    row
                })
                .collect()
        },
        lifetime: state.active.load_full().and_then(|m| {
            let curve = m.manifest.lifetime.as_ref()?;
            let months = state.config.value.months.max(12);
            Some((
                m.manifest.id.clone(),
                curve.survival(latest.churn_probability, months),
                curve.expected_months(latest.churn_probability),
            ))
        }),
        flash: flash.done.as_deref().map(|d| match d {
            "outcome" => "Outcome recorded.",
            "override" => "Override saved: the next scoring run keeps it until it lapses.",
            "revoked" => "Override ended: the next scoring run shows the computed band.",
            _ => "Marked as done.",
        }),
    };
    html_response(StatusCode::OK, pages::customer(&s, &view))
}

/// Whether the session may act on intervention `id`: an admin, or its own
/// account manager. A lookup failure is a refusal (the handler then says so).
async fn intervention_is_theirs(state: &AppState, s: &Session, id: i64) -> bool {
    if s.role >= Role::Admin {
        return true;
    }
    if !crate::auth::may_act_on_some(s.role, s.owner.as_deref()) {
        return false;
    }
    match state.store.intervention(id).await {
        Ok(i) => crate::auth::may_act_on(s.role, s.owner.as_deref(), Some(&i.intervention.owner)),
        Err(_) => false,
    }
}

#[derive(Deserialize)]
struct OutcomeForm {
    csrf: String,
    outcome: String,
    note: Option<String>,
    back: Option<String>,
}

impl CsrfToken for OutcomeForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

fn safe_back(back: Option<&str>, fallback: &str) -> String {
    // Only same-site paths: never an absolute or protocol-relative URL.
    match back {
        Some(b) if b.starts_with('/') && !b.starts_with("//") && !b.contains('\\') => b.to_string(),
        _ => fallback.to_string(),
    }
}

fn forbidden(s: &Session, why: &str) -> Response {
    html_response(
        StatusCode::FORBIDDEN,
        pages::message(Some(s), "Forbidden", why),
    )
}

async fn outcome_form(
    State(state): State<Arc<AppState>>,
    Path(id): Path<i64>,
    SignedForm(s, f): SignedForm<OutcomeForm>,
) -> Response {
    if !intervention_is_theirs(&state, &s, id).await {
        return forbidden(
            &s,
            "Only an admin or the intervention's own account manager may record its outcome.",
        );
    }
    let outcome = match f.outcome.as_str() {
        "retained" => StaffOutcome::Retained,
        "churned" => StaffOutcome::Churned,
        "unreachable" => StaffOutcome::Unreachable,
        "declined" => StaffOutcome::Declined,
        other => {
            return page_error(
                Some(&s),
                ApiError::BadParameter {
                    field: "outcome".into(),
                    message: format!("unknown outcome {other:?}"),
                },
            )
        }
    };
    match churnguard_app::service::record_outcome(&state.store, id, outcome, f.note, &s.name).await
    {
        Ok(i) => {
            let back = safe_back(
                f.back.as_deref(),
                &format!("/customers/{}", pages::enc(&i.customer_id)),
            );
            let sep = if back.contains('?') { '&' } else { '?' };
            redirect(&format!("{back}{sep}done=outcome"))
        }
        Err(e) => page_error(Some(&s), e.into()),
    }
}

#[derive(Deserialize)]
struct OverrideForm {
    csrf: String,
    band: Option<String>,
    suppress: Option<String>,
    reason: String,
    expires_on: String,
}

impl CsrfToken for OverrideForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

async fn override_form(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    SignedForm(s, f): SignedForm<OverrideForm>,
) -> Response {
    let owner = match crate::routes::customer_owner(&state, &id).await {
        Ok(o) => o,
        Err(e) => return page_error(Some(&s), e),
    };
    if !crate::auth::may_act_on(s.role, s.owner.as_deref(), owner.as_deref()) {
        return forbidden(
            &s,
            "Only an admin or the customer's own account manager may override it.",
        );
    }
    let Ok(expires_on) = chrono::NaiveDate::parse_from_str(&f.expires_on, "%Y-%m-%d") else {
        return page_error(
            Some(&s),
            ApiError::BadParameter {
                field: "expires_on".into(),
                message: format!("expires_on {:?}: expected a date YYYY-MM-DD", f.expires_on),
            },
        );
    };
    let req = churnguard_app::service::OverrideRequest {
        band: f.band.filter(|b| !b.is_empty()),
        suppress_interventions: f.suppress.is_some(),
        reason: f.reason,
        expires_on,
    };
    match churnguard_app::service::set_override(
        &state.store,
        &id,
        req,
        &s.name,
        churnguard_store::now(),
    )
    .await
    {
        Ok(_) => redirect(&format!("/customers/{}?done=override", pages::enc(&id))),
        Err(e) => page_error(Some(&s), e.into()),
    }
}

async fn revoke_form(
    State(state): State<Arc<AppState>>,
    Path(id): Path<i64>,
    SignedForm(s, f): SignedForm<DoneForm>,
) -> Response {
    let now = churnguard_store::now();
    let found = match state.store.override_by_id(id).await {
        Ok(o) => o.filter(|o| o.is_active(now)),
        Err(e) => return page_error(Some(&s), e.into()),
    };
    let Some(found) = found else {
        return page_error(
            Some(&s),
            ApiError::NotFound {
                what: "override in force",
                id: id.to_string(),
            },
        );
    };
    let owner = match crate::routes::customer_owner(&state, &found.customer_id).await {
        Ok(o) => o,
        Err(e) => return page_error(Some(&s), e),
    };
    if !crate::auth::may_act_on(s.role, s.owner.as_deref(), owner.as_deref()) {
        return forbidden(
            &s,
            "Only an admin or the customer's own account manager may end its override.",
        );
    }
    match state.store.revoke_override(id, &s.name, now).await {
        Ok(o) => {
            let back = safe_back(
                f.back.as_deref(),
                &format!("/customers/{}", pages::enc(&o.customer_id)),
            );
            let sep = if back.contains('?') { '&' } else { '?' };
            redirect(&format!("{back}{sep}done=revoked"))
        }
        Err(e) => page_error(Some(&s), e.into()),
    }
}

#[derive(Deserialize)]
struct DoneForm {
    csrf: String,
    back: Option<String>,
}

impl CsrfToken for DoneForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

async fn done_form(
    State(state): State<Arc<AppState>>,
    Path(id): Path<i64>,
    SignedForm(s, f): SignedForm<DoneForm>,
) -> Response {
    if !intervention_is_theirs(&state, &s, id).await {
        return forbidden(
            &s,
            "Only an admin or the intervention's own account manager may close it.",
        );
    }
    match churnguard_app::service::mark_done(&state.store, id, &s.name).await {
        Ok(i) => {
            let back = safe_back(
                f.back.as_deref(),
                &format!("/customers/{}", pages::enc(&i.customer_id)),
            );
            let sep = if back.contains('?') { '&' } else { '?' };
            redirect(&format!("{back}{sep}done=done"))
        }
        Err(e) => page_error(Some(&s), e.into()),
    }
}

/// The board's filters: `mine=1` shows only the signed-in account
/// manager's items; `sort=value` orders by expected loss instead of urgency.
#[derive(Debug, Default, Deserialize)]
struct BoardQuery {
    mine: Option<String>,
    sort: Option<String>,
}

async fn board_page(
    State(state): State<Arc<AppState>>,
    Signed(s): Signed,
    Query(q): Query<BoardQuery>,
) -> Response {
    let mine = q.mine.as_deref().is_some_and(|m| m == "1" || m == "true");
    let by_value = q.sort.as_deref() == Some("value");
    let open = match state
        .store
        .interventions(&InterventionFilter {
            status: Some(Status::Open),
            owner: if mine { s.owner.clone() } else { None },
            limit: 5000,
            ..Default::default()
        })
        .await
    {
        Ok(v) => v,
        Err(e) => return page_error(Some(&s), e.into()),
    };
    // "Mine" without an owner on the key shows nothing rather than everything.
    let open = if mine && s.owner.is_none() {
        Vec::new()
    } else {
        open
    };
    let now = as_of(&state).await;
    // The customers' latest scores: name, health, band and why, beside the item.
    let ids: Vec<String> = open
        .iter()
        .map(|r| r.intervention.customer_id.clone())
        .collect();
    let scores = match state.store.latest_run().await {
        Ok(Some(run)) => state
            .store
            .scores_in_run(&run.run_id, &ids)
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "latest scores unavailable; the board shows ids");
                HashMap::new()
            }),
        _ => HashMap::new(),
    };
    let mut by_owner: std::collections::BTreeMap<String, Vec<pages::InterventionRow>> =
        Default::default();
    for r in open {
        let score = scores.get(&r.intervention.customer_id);
        let mut row = row_of(r.intervention, r.outcome, now);
        if let Some(score) = score {
            row.customer_name = score.name.clone();
            row.health = Some(score.health);
            row.band = Some(score.band.clone());
            row.reason = score
                .reasons
                .first()
                .map(churnguard_core::scoring::reason_text);
        }
        by_owner.entry(row.owner.clone()).or_default().push(row);
    }
    let mut grouped: Vec<(String, Vec<pages::InterventionRow>)> = by_owner.into_iter().collect();
    for (_, rows) in &mut grouped {
        if by_value {
            rows.sort_by(|a, b| b.expected_loss.total_cmp(&a.expected_loss));
        } else {
            rows.sort_by(|a, b| {
                b.overdue
                    .cmp(&a.overdue)
                    .then(a.priority.cmp(&b.priority))
                    .then(a.due_at.cmp(&b.due_at))
            });
        }
    }
    let save = match state.store.outcome_records().await {
        Ok(records) => {
            let (list, known): (Vec<_>, HashMap<i64, Option<bool>>) = records
                .into_iter()
                .map(|(i, o)| {
                    let id = i.id;
                    (i, (id, o))
                })
                .unzip();
            churnguard_core::interventions::summarise(&list, &known)
        }
        Err(e) => return page_error(Some(&s), e.into()),
    };
    let power = churnguard_core::interventions::playbook_power(&save, &state.config.interventions);
    let names = owner_names(&state).await;
    // Dead webhook deliveries, for admins: what never reached the CRM.
    let dead = if s.role >= crate::auth::Role::Admin {
        state
            .store
            .deliveries(Some(churnguard_store::DeliveryStatus::Dead), 100)
            .await
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    html_response(
        StatusCode::OK,
        pages::board(
            &s,
            &date(now),
            &grouped,
            &save,
            &power,
            &names,
            pages::BoardOptions {
                mine,
                by_value,
                dead: &dead,
            },
        ),
    )
}

/// Account managers' names by employee id, from the latest run's
/// scorecards: the store keeps owners as ids (what machines join on), a
/// page shows names. Without a run (or on a store error, logged) the page
/// shows ids.
async fn owner_names(state: &AppState) -> HashMap<String, String> {
    let stage = state.config.kpi.stage.name();
    let cards = match state.store.latest_run().await {
        Ok(Some(run)) => {
            state
                .store
                .scorecards(&run.run_id, "account_manager", stage)
                .await
        }
        Ok(None) => return HashMap::new(),
        Err(e) => Err(e),
    };
    match cards {
        Ok(cards) => cards
            .iter()
            .filter_map(|c| {
                Some((
                    c["employee_id"].as_str()?.to_string(),
                    c["name"].as_str()?.to_string(),
                ))
            })
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "owner names unavailable; the board shows ids");
            HashMap::new()
        }
    }
}

#[derive(Deserialize)]
struct KpiForm {
    role: Option<String>,
    stage: Option<String>,
}

async fn kpi_page(
    State(state): State<Arc<AppState>>,
    Signed(s): Signed,
    Query(q): Query<KpiForm>,
) -> Response {
    let role = q
        .role
        .filter(|r| r == "acquisition")
        .unwrap_or_else(|| "account_manager".into());
    let stage = q
        .stage
        .filter(|x| ["balanced", "growth", "mature"].contains(&x.as_str()))
        .unwrap_or_else(|| state.config.kpi.stage.name().to_string());
    let run = match state.store.latest_run().await {
        Ok(r) => r,
        Err(e) => return page_error(Some(&s), e.into()),
    };
    let (cards, weights) = match &run {
        Some(run) => {
            let cards = state.store.scorecards(&run.run_id, &role, &stage).await;
            let weights = state.store.kpi_weights(&run.run_id, &role, &stage).await;
            match (cards, weights) {
                (Ok(c), Ok(w)) => (c, w),
                (Err(e), _) | (_, Err(e)) => return page_error(Some(&s), e.into()),
            }
        }
        None => (Vec::new(), Vec::new()),
    };
    html_response(
        StatusCode::OK,
        pages::kpi(
            &s,
            &role,
            &stage,
            run.as_ref().map(|r| r.run_id.as_str()),
            &cards,
            &weights,
        ),
    )
}

async fn monitoring_page(State(state): State<Arc<AppState>>, Signed(s): Signed) -> Response {
    let latest = state.baseline.load_full();
    let (verdict, findings) = state
        .config
        .monitoring
        .triggers
        .evaluate(latest.drift.as_ref(), None);
    let runs = match state.store.runs().await {
        Ok(r) => r,
        Err(e) => return page_error(Some(&s), e.into()),
    };
    let mut by_snapshot: Vec<(String, f64)> = runs
        .iter()
        .map(|r| {
            (
                r.snapshot_date.clone(),
                100.0 * r.summary.mean_churn_probability,
            )
        })
        .collect();
    by_snapshot.sort_by(|a, b| a.0.cmp(&b.0));
    let run = latest
        .run_id
        .as_deref()
        .zip(latest.model_id.as_deref().or(Some("?")));
    let online = state
        .active
        .load_full()
        .and_then(|m| crate::routes::online_drift(&state, &m));
    let shadow = match crate::routes::shadow_status(&state).await {
        Ok(s) => s,
        Err(e) => return page_error(Some(&s), e),
    };
    html_response(
        StatusCode::OK,
        pages::monitoring(
            &s,
            &pages::MonitoringView {
                run,
                drift: latest.drift.as_ref(),
                verdict: verdict.name(),
                findings: &findings,
                mean_score: &by_snapshot,
                shadow: shadow.as_ref(),
                online: online.as_ref(),
            },
        ),
    )
}

async fn retention_page(State(state): State<Arc<AppState>>, Signed(s): Signed) -> Response {
    let run = match state.store.latest_run().await {
        Ok(r) => r,
        Err(e) => return page_error(Some(&s), e.into()),
    };
    let shown = run
        .as_ref()
        .filter(|r| !r.summary.cohorts.is_empty())
        .map(|r| (r.run_id.as_str(), r.summary.cohorts.as_slice()));
    html_response(StatusCode::OK, pages::retention(&s, shown))
}

async fn models_page(State(state): State<Arc<AppState>>, Signed(s): Signed) -> Response {
    let st = state.clone();
    let listed = tokio::task::spawn_blocking(move || {
        Ok::<_, churnguard_app::registry::RegistryError>((
            st.registry.list()?,
            st.registry.champion()?,
        ))
    })
    .await;
    let (list, champion) = match listed {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => return page_error(Some(&s), e.into()),
        Err(e) => return page_error(Some(&s), ApiError::Internal(e.to_string())),
    };
    let serving = state.active.load_full().map(|m| m.manifest.id.clone());
    let rows: Vec<pages::ModelRow> = list
        .into_iter()
        .rev()
        .map(|m| pages::ModelRow {
            report: state
                .registry
                .version_dir(&m.id)
                .join("report.html")
                .is_file(),
            champion: champion.as_deref() == Some(m.id.as_str()),
            serving: serving.as_deref() == Some(m.id.as_str()),
            family: m.family.name().into(),
            created: m
                .created_at
                .chars()
                .take(16)
                .collect::<String>()
                .replace('T', " "),
            roc_auc: m.test.roc_auc,
            pr_auc: m.test.pr_auc,
            log_loss: m.test.log_loss,
            brier: m.test.brier,
            id: m.id,
        })
        .collect();
    html_response(StatusCode::OK, pages::models(&s, &rows))
}

/// The training report: its own inline `<style>` blocks are allowed by hash,
/// nothing else inline is.
async fn report_page(
    State(state): State<Arc<AppState>>,
    Signed(s): Signed,
    Path(id): Path<String>,
) -> Response {
    let st = state.clone();
    let html = tokio::task::spawn_blocking(move || -> Option<String> {
        let id = st.registry.resolve(&id).ok()?;
        churnguard_core::data::read_text(&st.registry.version_dir(&id).join("report.html")).ok()
    })
    .await
    .ok()
    .flatten();
    let Some(html) = html else {
        return page_error(
            Some(&s),
            ApiError::NotFound {
                what: "report",
                id: String::new(),
            },
        );
    };
    let mut hashes = Vec::new();
    let mut rest = html.as_str();
    while let Some(start) = rest.find("<style>") {
        let after = &rest[start + 7..];
        let Some(end) = after.find("</style>") else {
            break;
        };
        use base64_hash::sha256_base64;
        hashes.push(format!("'sha256-{}'", sha256_base64(&after[..end])));
        rest = &after[end..];
    }
    let csp = format!(
        "default-src 'none'; style-src {}; img-src data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        if hashes.is_empty() { "'none'".to_string() } else { hashes.join(" ") }
    );
    let mut r = html.into_response();
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    secure(r.headers_mut(), &csp);
    r
}

mod base64_hash {
    //! SHA-256 in base64, for CSP hash sources.
    use sha2::{Digest, Sha256};

    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    /// Standard base64 (with padding) of the SHA-256 of `text`.
    pub fn sha256_base64(text: &str) -> String {
        let d = Sha256::digest(text.as_bytes());
        let mut out = String::new();
        for chunk in d.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for k in 0..4 {
                if k <= chunk.len() {
                    out.push(TABLE[((n >> (18 - 6 * k)) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn matches_a_known_digest() {
            // printf 'abc' | openssl dgst -sha256 -binary | base64
            assert_eq!(
                super::sha256_base64("abc"),
                "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_field("-3.5"), "-3.5");
    }

    #[test]
    fn only_same_site_paths_are_followed() {
        assert_eq!(safe_back(Some("/customers/7"), "/"), "/customers/7");
        assert_eq!(safe_back(Some("//evil.example"), "/"), "/");
        assert_eq!(safe_back(Some("https://evil.example"), "/"), "/");
        assert_eq!(safe_back(Some("/\\evil"), "/"), "/");
        assert_eq!(safe_back(None, "/x"), "/x");
    }
}
