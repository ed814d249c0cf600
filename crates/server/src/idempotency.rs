//! Safe retries: an `Idempotency-Key` header on a state-changing POST makes
//! a retried request return the first answer instead of acting twice.
//!
//! Keys are scoped by the caller (the API key's name) and bound to the
//! request (method, path, query and body, hashed): the same key with a
//! different request is refused (422). The first request claims the key in
//! the store (one insert that only one of any number of concurrent retries
//! wins, on every replica sharing the store); the others wait for its
//! answer and return it, marked `Idempotent-Replayed: true`. Answers a retry
//! could change are not kept: server errors, 409 (a state that passes) and
//! 429 release the key, so the retry is carried out. A request without the
//! header is served as before.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use churnguard_store::{IdempotencyClaim, IdempotencyRetention};

use super::auth;
use super::error::ApiError;
use super::state::AppState;

/// The request header.
pub const HEADER: &str = "idempotency-key";
/// The response header set on a replayed answer.
pub const REPLAYED: &str = "idempotent-replayed";
/// The longest key accepted.
pub const MAX_KEY_LEN: usize = 255;

/// How often a waiting retry looks for the first request's answer.
const POLL: Duration = Duration::from_millis(20);

fn valid_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= MAX_KEY_LEN && key.bytes().all(|b| b.is_ascii_graphic())
}

/// The request's identity: method, path with query, and body.
fn request_hash(method: &str, uri: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(method.as_bytes());
    h.update([0]);
    h.update(uri.as_bytes());
    h.update([0]);
    h.update(body);
    hex::encode(h.finalize())
}

/// Whether a retry must get this answer again (else it is carried out anew).
fn keep(status: StatusCode) -> bool {
    status.is_success()
        || (status.is_client_error()
            && status != StatusCode::CONFLICT
            && status != StatusCode::TOO_MANY_REQUESTS
            && status != StatusCode::REQUEST_TIMEOUT)
}

fn replay(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = (status, body).into_response();
    let headers = resp.headers_mut();
    headers.insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(REPLAYED, HeaderValue::from_static("true"));
    resp
}

/// Frees the claim if the request is dropped before its answer is stored
/// (the server's timeout or a client gone), so a retry is not locked out.
struct Claim {
    state: Arc<AppState>,
    caller: String,
    key: String,
    settled: bool,
}

impl Drop for Claim {
    fn drop(&mut self) {
        if !self.settled {
            let store = self.state.store.clone();
            let (caller, key) = (
                std::mem::take(&mut self.caller),
                std::mem::take(&mut self.key),
            );
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    if let Err(e) = store.release_idempotency_key(&caller, &key).await {
                        tracing::warn!(error = %e, "could not release an idempotency key");
                    }
                });
            }
        }
    }
}

/// The middleware, on each state-changing POST route.
pub async fn idempotent(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    // The route's other methods (405) pass through untouched.
    if req.method() != axum::http::Method::POST {
        return next.run(req).await;
    }
    let Some(key) = req.headers().get(HEADER) else {
        return next.run(req).await;
    };
    let key = match key.to_str() {
        Ok(k) if valid_key(k) => k.to_string(),
        _ => {
            return ApiError::BadParameter {
                field: "Idempotency-Key".into(),
                message: format!(
                    "an Idempotency-Key is 1 to {MAX_KEY_LEN} visible ASCII characters"
                ),
            }
            .into_response()
        }
    };
    // Keys are the caller's own; a request without a valid API key gets
    // the handler's 401 as usual, and nothing is stored for it.
    let Ok(caller) = state.keys.identify(auth::presented_key(req.headers())) else {
        return next.run(req).await;
    };
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, state.serve.body_limit_bytes).await else {
        return ApiError::PayloadTooLarge.into_response();
    };
    let uri = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_string(), |p| p.as_str().to_string());
    let hash = request_hash(parts.method.as_str(), &uri, &bytes);
    // Answer before the server's own timeout does.
    let deadline = Instant::now() + Duration::from_secs_f64(state.serve.request_timeout_secs * 0.9);
    let retention = IdempotencyRetention::default();
    loop {
        let claim = state
            .store
            .claim_idempotency_key(
                &caller.name,
                &key,
                &hash,
                churnguard_store::now(),
                retention,
            )
            .await;
        let claim = match claim {
            Ok(c) => c,
            Err(e) => return ApiError::from(e).into_response(),
        };
        match claim {
            IdempotencyClaim::Claimed => {
                let mut guard = Claim {
                    state: state.clone(),
                    caller: caller.name.clone(),
                    key: key.clone(),
                    settled: false,
                };
                let resp = next
                    .run(Request::from_parts(parts, Body::from(bytes)))
                    .await;
                let (rparts, rbody) = resp.into_parts();
                let Ok(rbytes) = axum::body::to_bytes(rbody, usize::MAX).await else {
                    return ApiError::Internal("reading an answer to keep".into()).into_response();
                };
                let kept = match std::str::from_utf8(&rbytes) {
                    Ok(text) if keep(rparts.status) => state
                        .store
                        .finish_idempotency_key(&caller.name, &key, rparts.status.as_u16(), text)
                        .await
                        .map_err(
                            |e| tracing::warn!(error = %e, "could not keep an idempotent answer"),
                        )
                        .is_ok(),
                    _ => false,
                };
                // A kept answer settles the claim; any other is released by the guard.
                guard.settled = kept;
                drop(guard);
                return Response::from_parts(rparts, Body::from(rbytes));
            }
            IdempotencyClaim::Answered { status, body } => return replay(status, body),
            IdempotencyClaim::KeyReused => return ApiError::IdempotencyKeyReused.into_response(),
            IdempotencyClaim::InProgress => {}
        }
        // Wait for the first request's answer, reading (not claiming).
        loop {
            if Instant::now() >= deadline {
                return ApiError::IdempotencyInProgress.into_response();
            }
            tokio::time::sleep(POLL).await;
            match state.store.idempotency_key(&caller.name, &key, &hash).await {
                Ok(Some(IdempotencyClaim::InProgress)) => continue,
                Ok(Some(IdempotencyClaim::Answered { status, body })) => {
                    return replay(status, body)
                }
                Ok(Some(IdempotencyClaim::KeyReused)) => {
                    return ApiError::IdempotencyKeyReused.into_response()
                }
                // Released (the first request failed): claim it again.
                Ok(Some(IdempotencyClaim::Claimed) | None) => break,
                Err(e) => return ApiError::from(e).into_response(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_visible_ascii_up_to_the_limit() {
        assert!(valid_key("retry-3f9a_1"));
        assert!(!valid_key(""));
        assert!(!valid_key("has space"));
        assert!(!valid_key("é"));
        assert!(!valid_key(&"k".repeat(MAX_KEY_LEN + 1)));
    }

    #[test]
    fn the_answers_a_retry_could_change_are_not_kept() {
        assert!(keep(StatusCode::OK));
        assert!(keep(StatusCode::CREATED));
        assert!(keep(StatusCode::NOT_FOUND));
        assert!(keep(StatusCode::UNPROCESSABLE_ENTITY));
        assert!(!keep(StatusCode::CONFLICT));
        assert!(!keep(StatusCode::TOO_MANY_REQUESTS));
        assert!(!keep(StatusCode::INTERNAL_SERVER_ERROR));
        assert!(!keep(StatusCode::SERVICE_UNAVAILABLE));
    }

    #[test]
    fn the_request_hash_covers_method_path_and_body() {
        let a = request_hash("POST", "/v1/x", b"{}");
        assert_ne!(a, request_hash("POST", "/v1/y", b"{}"));
        assert_ne!(a, request_hash("POST", "/v1/x", b"{ }"));
        assert_ne!(a, request_hash("PUT", "/v1/x", b"{}"));
        assert_eq!(a, request_hash("POST", "/v1/x", b"{}"));
    }
}
