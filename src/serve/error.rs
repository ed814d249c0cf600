//! `ApiError`: every way a request can fail, mapped to an HTTP status and a
//! JSON body `{code, message, field}` by one exhaustive match. 4xx bodies
//! explain the problem; 5xx bodies say nothing internal (the cause is logged).

#![warn(clippy::wildcard_enum_match_arm)]

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::registry::RegistryError;
use crate::service::ServiceError;
use crate::store::StoreError;

/// The JSON body of every error response.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Machine-readable code, such as `missing_feature`.
    pub code: String,
    /// What went wrong, for people.
    pub message: String,
    /// Path of the offending field, such as `customers[3].tenure_days`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not JSON (or not the JSON expected).
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    /// A field has a problem: `code` says which.
    #[error("{message}")]
    BadField {
        /// `missing_feature`, `wrong_type`, `not_finite`, `missing_id`, `empty_batch`.
        code: &'static str,
        /// The field's path.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// More customers than the batch limit.
    #[error("batch of {got} customers is over the limit of {limit}")]
    BatchTooLarge {
        /// Customers sent.
        got: usize,
        /// The limit.
        limit: usize,
    },
    /// The body is over the size limit.
    #[error("request body over the size limit")]
    PayloadTooLarge,
    /// A query parameter that cannot be used.
    #[error("{message}")]
    BadParameter {
        /// The parameter.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// No or an unknown API key.
    #[error("a valid API key is required (Authorization: Bearer KEY or X-API-Key)")]
    Unauthorized,
    /// The key's role may not do this.
    #[error("role {have} may not do this; it needs {need}")]
    Forbidden {
        /// The caller's role.
        have: &'static str,
        /// The role needed.
        need: &'static str,
    },
    /// Too many requests for this key.
    #[error("rate limit of {per_minute} requests per minute exceeded; retry in {retry_after} s")]
    RateLimited {
        /// The limit.
        per_minute: u32,
        /// Seconds until a request is allowed.
        retry_after: u64,
    },
    /// No such thing.
    #[error("{what} {id} not found")]
    NotFound {
        /// What was looked for.
        what: &'static str,
        /// Its id.
        id: String,
    },
    /// The request conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// A model that cannot be served (reload rejected).
    #[error("model rejected, the previous model keeps serving: {0}")]
    ModelRejected(String),
    /// The request is valid but cannot be carried out as asked.
    #[error("{0}")]
    Unprocessable(String),
    /// The database does not answer (or is read-only, locked, gone).
    #[error("the store is unavailable")]
    StoreUnavailable(String),
    /// No model is loaded.
    #[error("no model is loaded")]
    NoModel,
    /// Anything else: logged, not shown.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// The status and body of this error.
    pub fn parts(&self) -> (StatusCode, ErrorBody) {
        let body = |code: &str, field: Option<String>| ErrorBody {
            code: code.to_string(),
            message: self.to_string(),
            field,
        };
        match self {
            ApiError::MalformedJson(_) => (StatusCode::BAD_REQUEST, body("malformed_json", None)),
            ApiError::BadField { code, field, .. } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                body(code, Some(field.clone())),
            ),
            ApiError::BatchTooLarge { .. } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                body("batch_too_large", Some("customers".into())),
            ),
            ApiError::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                body("payload_too_large", None),
            ),
            ApiError::BadParameter { field, .. } => (
                StatusCode::BAD_REQUEST,
                body("bad_parameter", Some(field.clone())),
            ),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, body("unauthorized", None)),
            ApiError::Forbidden { .. } => (StatusCode::FORBIDDEN, body("forbidden", None)),
            ApiError::RateLimited { .. } => {
                (StatusCode::TOO_MANY_REQUESTS, body("rate_limited", None))
            }
            ApiError::NotFound { .. } => (StatusCode::NOT_FOUND, body("not_found", None)),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, body("conflict", None)),
            ApiError::ModelRejected(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                body("model_rejected", None),
            ),
            ApiError::Unprocessable(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                body("unprocessable", None),
            ),
            ApiError::StoreUnavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                body("store_unavailable", None),
            ),
            ApiError::NoModel => (StatusCode::SERVICE_UNAVAILABLE, body("no_model", None)),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, body("internal", None)),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = self.parts();
        if let ApiError::Internal(cause) | ApiError::StoreUnavailable(cause) = &self {
            tracing::error!(status = status.as_u16(), error = %cause, "request failed");
        } else if let ApiError::ModelRejected(cause) = &self {
            tracing::warn!(error = %cause, "model reload rejected");
        }
        let mut resp = (status, Json(body)).into_response();
        if let ApiError::RateLimited { retry_after, .. } = self {
            if let Ok(v) = retry_after.to_string().parse() {
                resp.headers_mut().insert("retry-after", v);
            }
        }
        resp
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        if e.is_unavailable() {
            return ApiError::StoreUnavailable(e.to_string());
        }
        match e {
            StoreError::NotFound { what, id } => ApiError::NotFound { what, id },
            StoreError::BadTransition { .. } => ApiError::Conflict(e.to_string()),
            StoreError::BadUrl { .. }
            | StoreError::Unavailable { .. }
            | StoreError::Query { .. }
            | StoreError::MigrationChanged { .. }
            | StoreError::Corrupt { .. } => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> ApiError {
        match e {
            ServiceError::Store(s) => s.into(),
            ServiceError::Registry(RegistryError::NotFound { id, .. }) => {
                ApiError::NotFound { what: "model", id }
            }
            e @ (ServiceError::Registry(_)
            | ServiceError::Data(_)
            | ServiceError::Features(_)
            | ServiceError::Model(_)
            | ServiceError::Scoring(_)
            | ServiceError::Kpi(_)
            | ServiceError::Value(_)
            | ServiceError::BadRequest(_)
            | ServiceError::BadPath { .. }
            | ServiceError::Outputs { .. }) => {
                if e.is_bad_input() {
                    ApiError::Unprocessable(e.to_string())
                } else {
                    ApiError::Internal(e.to_string())
                }
            }
        }
    }
}
