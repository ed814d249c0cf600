//! The JSON API under `/v1` and the service endpoints, one module per
//! resource. Each handler: extract (the caller and its role through
//! [`Auth`], then parameters and body), call one library or service
//! function, map the result. What the handlers share lives here.

mod customers;
mod deliveries;
mod interventions;
mod kpi;
mod models;
mod overrides;
mod scoring;
mod service;

pub use customers::*;
pub use deliveries::*;
pub use interventions::*;
pub use kpi::*;
pub use models::*;
pub use overrides::*;
pub use scoring::*;
pub use service::*;

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

pub(crate) use super::auth::{Admin, Auth, Reader, Scorer};
use super::error::{ApiError, ErrorBody};
use super::score::{self, ScoreResponse};
use super::state::{self, AppState, LoadedModel};
use churnguard_core::interventions::Status;
use churnguard_core::scoring::Settings;
use churnguard_store::{
    CustomerScoreRecord, InterventionFilter, RiskListFilter, RiskListPage, StaffOutcome,
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
