//! The OpenAPI 3.1 document at `/openapi.json`: generated from the handlers
//! and their types by utoipa, then completed in one place with what every
//! operation shares, so client generators (openapi-python-client,
//! openapi-typescript) and validators accept it:
//!
//! - the API's version ([`API_VERSION`], also sent as the `API-Version`
//!   header of every response);
//! - a description on every response, and the error responses the layers
//!   around the handlers can give (401 and 429 where a key is needed, 413
//!   where a body is taken, 503 on the timeout);
//! - the `Idempotency-Key` header on the state-changing POSTs;
//! - the score request's schema and example from the serving model's inputs;
//! - request and response examples.
//!
//! The test command validates the served document with
//! `openapi-spec-validator` and generates clients from it.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde_json::{json, Map, Value};
use utoipa::OpenApi;

use super::state::{AppState, LoadedModel};
use super::{error, idempotency, routes, score};

/// The HTTP API's version: the major is the path's `/v1`; a minor release
/// adds (fields, operations, parameters) without breaking a client of the
/// same major. OPERATIONS.md says what counts as breaking.
pub const API_VERSION: &str = "1.2.0";

/// The response header that names [`API_VERSION`].
pub const VERSION_HEADER: &str = "api-version";

/// The routes whose POST takes an `Idempotency-Key` (they change state).
pub const IDEMPOTENT_ROUTES: &[&str] = &[
    "/v1/interventions/{id}/outcome",
    "/v1/scoring-runs",
    "/v1/models/reload",
    "/v1/deliveries/{id}/retry",
    "/v1/customers/{id}/overrides",
    "/v1/overrides/{id}/revoke",
];

/// The OpenAPI document, generated from the handlers and their types.
#[derive(OpenApi)]
#[openapi(
    info(title = "churnguard", description = "Churn prediction and customer health: scores, risk lists, interventions, KPI scorecards."),
    paths(
        routes::score,
        routes::customer,
        routes::risk_list,
        routes::interventions,
        routes::record_outcome,
        routes::outcomes,
        routes::export_interventions,
        routes::deliveries,
        routes::retry_delivery,
        routes::create_override,
        routes::revoke_override,
        routes::scoring_run,
        routes::scorecards,
        routes::models,
        routes::reload,
        routes::healthz,
        routes::readyz,
        routes::metrics,
        routes::monitoring,
    ),
    components(schemas(error::ErrorBody, score::ScoreResponse, score::ScoreResult, score::Detail, routes::OutcomeParam)),
    modifiers(&SecurityAddon),
    tags(
        (name = "scoring", description = "Churn probability, health, reasons, CLV, recommended action"),
        (name = "customers", description = "Stored scores and risk lists"),
        (name = "interventions", description = "Interventions and their outcomes"),
        (name = "kpi", description = "Employee scorecards"),
        (name = "models", description = "The model registry"),
        (name = "service", description = "Health, readiness, metrics, monitoring"),
    )
)]
pub struct ApiDoc;

struct SecurityAddon;

impl utoipa::Modify for SecurityAddon {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "x-api-key",
                "An API key; `Authorization: Bearer KEY` works too",
            ))),
        );
    }
}

/// What a status means where an operation does not say more.
fn default_description(status: &str) -> &'static str {
    match status {
        "200" => "OK",
        "201" => "Created",
        "400" => "A malformed body, parameter or header",
        "401" => "No API key, or one the server does not know",
        "403" => "The key's role may not do this",
        "404" => "No such thing",
        "409" => "The request conflicts with the current state",
        "413" => "The body (or batch) is over the server's limit",
        "422" => "The request is well-formed but cannot be carried out",
        "429" => "Over the key's rate limit; `Retry-After` says when to retry",
        "503" => "Past the server's request timeout, or the store or model is unavailable",
        _ => "See the error body",
    }
}

fn error_response(status: &str) -> Value {
    json!({
        "description": default_description(status),
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    })
}

/// An example score record for the serving model: the training medians
/// and each categorical input's first level.
fn example_record(model: &LoadedModel) -> Value {
    let mut record = Map::new();
    record.insert(model.schema.id.clone(), json!("C-1001"));
    for c in &model.model.preprocessor.numeric {
        let v = (c.median * 100.0).round() / 100.0;
        record.insert(c.name.clone(), json!(v));
    }
    for c in &model.model.preprocessor.categorical {
        let level = c.levels.iter().find(|l| !l.starts_with('<'));
        record.insert(c.name.clone(), json!(level));
    }
    record.insert("name".into(), json!("Acme Corp"));
    Value::Object(record)
}

/// A compact answer of `POST /v1/score`.
fn example_score_response() -> Value {
    json!({
        "model_version": "v0007",
        "results": [{
            "customer_id": "C-1001",
            "churn_probability": 0.31,
            "churn_type": "voluntary",
            "health": {"score": 48.5, "band": "yellow", "profile": "default", "change": -6.0, "direction": "down"},
            "reasons": [{
                "feature": "sessions_30d",
                "value": "3",
                "weight": 0.42,
                "text": "sessions_30d: 3 (raises risk)"
            }],
            "recommended_intervention": {
                "playbook": "csm_outreach", "rule": "yellow_high_value", "channel": "call",
                "owner_role": "account_manager", "owner": "17", "sla_hours": 48.0, "priority": 2
            }
        }]
    })
}

/// The completed document for a server serving `model` (if any).
pub fn document(model: Option<&LoadedModel>, max_batch: usize) -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    doc["info"]["version"] = json!(API_VERSION);
    let version_header = json!({
        "description": "The API's version",
        "schema": {"type": "string", "example": API_VERSION}
    });
    let model_version_header = json!({
        "description": "The model version serving (on a scoring answer: the one that scored it); absent while no model is loaded",
        "schema": {"type": "string"}
    });
    let idempotency_header = json!({
        "name": "Idempotency-Key",
        "in": "header",
        "required": false,
        "description": "A key unique to this request (1 to 255 visible ASCII characters): a retry with the same key and the same request returns the first answer (marked `Idempotent-Replayed: true`) and changes nothing again; the same key with a different request is refused (422). Answers are kept for 24 hours.",
        "schema": {"type": "string", "minLength": 1, "maxLength": idempotency::MAX_KEY_LEN, "pattern": "^[!-~]+$"}
    });
    let Some(paths) = doc["paths"].as_object_mut() else {
        return doc;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, op) in item.iter_mut() {
            let Some(op) = op.as_object_mut() else {
                continue;
            };
            let secured = op.contains_key("security");
            let takes_body = op.contains_key("requestBody");
            let idempotent = method == "post" && IDEMPOTENT_ROUTES.contains(&path.as_str());
            if idempotent {
                let params = op.entry("parameters").or_insert_with(|| json!([]));
                if let Some(params) = params.as_array_mut() {
                    params.push(idempotency_header.clone());
                }
            }
            let responses = op
                .entry("responses")
                .or_insert_with(|| json!({}))
                .as_object_mut();
            let Some(responses) = responses else {
                continue;
            };
            let mut added: Vec<&str> = vec!["503"];
            if secured {
                added.extend(["401", "429"]);
            }
            if takes_body {
                added.push("413");
            }
            if idempotent {
                added.extend(["400", "409", "422"]);
            }
            for status in added {
                responses
                    .entry(status)
                    .or_insert_with(|| error_response(status));
            }
            for (status, response) in responses.iter_mut() {
                let Some(response) = response.as_object_mut() else {
                    continue;
                };
                let described = response
                    .get("description")
                    .and_then(Value::as_str)
                    .is_some_and(|d| !d.is_empty());
                if !described {
                    response.insert("description".into(), json!(default_description(status)));
                }
                if let Some(h) = response
                    .entry("headers")
                    .or_insert_with(|| json!({}))
                    .as_object_mut()
                {
                    h.insert("API-Version".into(), version_header.clone());
                    h.insert("Model-Version".into(), model_version_header.clone());
                }
            }
        }
    }
    // Examples, and the score request's schema for the serving model.
    let score = &mut doc["paths"]["/v1/score"]["post"];
    score["responses"]["200"]["content"]["application/json"]["example"] = example_score_response();
    if let Some(model) = model {
        let body = &mut score["requestBody"];
        body["required"] = json!(true);
        let media = &mut body["content"]["application/json"];
        media["schema"] = score::request_schema(&model.schema, max_batch);
        media["example"] = json!({"customers": [example_record(model)]});
    }
    doc["paths"]["/v1/interventions/{id}/outcome"]["post"]["requestBody"]["content"]
        ["application/json"]["example"] =
        json!({"outcome": "retained", "note": "renewed after the call"});
    doc["paths"]["/v1/scoring-runs"]["post"]["requestBody"]["content"]["application/json"]
        ["example"] = json!({"snapshot": "latest", "model": "champion"});
    doc["paths"]["/v1/deliveries/{id}/retry"]["post"]["requestBody"]["content"]
        ["application/json"]["example"] = json!({"webhook": "crm"});
    doc["paths"]["/v1/customers/{id}/overrides"]["post"]["requestBody"]["content"]
        ["application/json"]["example"] = json!({
        "band": "green",
        "suppress_interventions": true,
        "reason": "Renewal signed on the phone; paperwork follows",
        "expires_on": "2026-12-31"
    });
    doc
}

/// `GET /openapi.json`.
pub async fn serve(State(state): State<Arc<AppState>>) -> Json<Value> {
    let model = state.active.load_full();
    Json(document(model.as_deref(), state.serve.max_batch))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_is_complete() {
        let doc = document(None, 100);
        assert_eq!(doc["info"]["version"], API_VERSION);
        let paths = doc["paths"].as_object().unwrap();
        assert!(paths.len() >= 14);
        let mut ids = std::collections::HashSet::new();
        for (path, item) in paths {
            for (method, op) in item.as_object().unwrap() {
                let id = op["operationId"].as_str().unwrap_or_default();
                assert!(!id.is_empty(), "{method} {path} has no operationId");
                assert!(ids.insert(id.to_string()), "operationId {id} twice");
                assert!(
                    op["summary"].as_str().is_some_and(|s| !s.is_empty()),
                    "{method} {path} has no summary"
                );
                for (status, r) in op["responses"].as_object().unwrap() {
                    assert!(
                        r["description"].as_str().is_some_and(|d| !d.is_empty()),
                        "{method} {path} {status} has no description"
                    );
                    assert!(r["headers"]["API-Version"].is_object());
                }
                if op.get("security").is_some() {
                    assert!(op["responses"]["401"].is_object(), "{method} {path}");
                }
            }
        }
        for route in IDEMPOTENT_ROUTES {
            let params = doc["paths"][route]["post"]["parameters"]
                .as_array()
                .unwrap();
            assert!(
                params.iter().any(|p| p["name"] == "Idempotency-Key"),
                "{route}"
            );
        }
    }
}
