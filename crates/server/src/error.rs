//! `ApiError`: every way a request can fail, mapped to an HTTP status and a
//! JSON body `{code, message, field}` by one exhaustive match. 4xx bodies
//! explain the problem; 5xx bodies say nothing internal (the cause is logged).

#![warn(clippy::wildcard_enum_match_arm)]

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use churnguard_app::registry::RegistryError;
use churnguard_app::service::ServiceError;
use churnguard_core::error::{ErrorKind, HasKind};
use churnguard_store::StoreError;

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
    /// Something a lower layer could not find (a file, a run, a model), in its words.
    #[error("{0}")]
    Missing(String),
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
    /// An `Idempotency-Key` already used for a different request.
    #[error(
        "this Idempotency-Key was used for a different request; use a new key for a new request"
    )]
    IdempotencyKeyReused,
    /// A request with this `Idempotency-Key` is still being carried out.
    #[error("a request with this Idempotency-Key is still being carried out; retry later")]
    IdempotencyInProgress,
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
    /// The error of a lower layer, by the kind it says it is: the one
    /// classification the command line's exit codes share.
    pub fn of_kind(kind: ErrorKind, message: String) -> ApiError {
        match kind {
            ErrorKind::BadInput => ApiError::Unprocessable(message),
            ErrorKind::NotFound => ApiError::Missing(message),
            ErrorKind::Conflict => ApiError::Conflict(message),
            ErrorKind::Unavailable => ApiError::StoreUnavailable(message),
            ErrorKind::Internal => ApiError::Internal(message),
        }
    }

    /// The status and body of this error. Errors that mean the same as an
    /// [`ErrorKind`] take that kind's status ([`ErrorKind::http_status`]);
    /// the rest are HTTP's own (malformed body, size limits, keys, roles,
    /// rate limits).
    pub fn parts(&self) -> (StatusCode, ErrorBody) {
        let body = |code: &str, field: Option<String>| ErrorBody {
            code: code.to_string(),
            message: self.to_string(),
            field,
        };
        let of = |kind: ErrorKind| {
            StatusCode::from_u16(kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
        };
        match self {
            ApiError::MalformedJson(_) => (StatusCode::BAD_REQUEST, body("malformed_json", None)),
            ApiError::BadField { code, field, .. } => {
                (of(ErrorKind::BadInput), body(code, Some(field.clone())))
            }
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
            ApiError::Missing(_) | ApiError::NotFound { .. } => {
                (of(ErrorKind::NotFound), body("not_found", None))
            }
            ApiError::Conflict(_) => (of(ErrorKind::Conflict), body("conflict", None)),
            ApiError::ModelRejected(_) => (of(ErrorKind::BadInput), body("model_rejected", None)),
            ApiError::Unprocessable(_) => (of(ErrorKind::BadInput), body("unprocessable", None)),
            ApiError::IdempotencyKeyReused => (
                of(ErrorKind::BadInput),
                body("idempotency_key_reused", Some("Idempotency-Key".into())),
            ),
            ApiError::IdempotencyInProgress => (
                of(ErrorKind::Conflict),
                body("idempotency_in_progress", Some("Idempotency-Key".into())),
            ),
            ApiError::StoreUnavailable(_) => {
                (of(ErrorKind::Unavailable), body("store_unavailable", None))
            }
            ApiError::NoModel => (of(ErrorKind::Unavailable), body("no_model", None)),
            ApiError::Internal(_) => (of(ErrorKind::Internal), body("internal", None)),
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
        if let StoreError::NotFound { what, id } = e {
            return ApiError::NotFound { what, id };
        }
        ApiError::of_kind(e.kind(), e.to_string())
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> ApiError {
        if let ServiceError::Store(s) = e {
            return s.into();
        }
        if let ServiceError::BadField {
            field,
            code,
            message,
        } = e
        {
            return ApiError::BadField {
                code,
                field: field.into(),
                message,
            };
        }
        if let ServiceError::Registry(RegistryError::NotFound { id, .. }) = e {
            return ApiError::NotFound { what: "model", id };
        }
        ApiError::of_kind(e.kind(), e.to_string())
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> ApiError {
        ApiError::of_kind(e.kind(), e.to_string())
    }
}
