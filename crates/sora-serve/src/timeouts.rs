//! Time limits on requests: the body must arrive within `--body-timeout-ms` (408 otherwise),
//! and the answer must start within `--request-timeout-ms` (503 otherwise). The limit on a
//! request's head is hyper's, set on each connection (see `listen`).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use crate::Shared;
use crate::metrics::Stage;
use crate::request::ApiError;

/// Answers 503 when the rest of the chain (reading the body, checking, queueing, scoring)
/// has not produced an answer within the request timeout. Work already queued on the
/// scoring thread still runs; its result is dropped.
pub(crate) async fn deadline(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let limit = shared.config.request_timeout();
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            shared.metrics.timed_out(Stage::Request);
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "no answer within {} ms (--request-timeout-ms)",
                    limit.as_millis()
                ),
            )
            .into_response()
        }
    }
}

/// Reads the whole body, within the body timeout and the size limit, before the handlers
/// see it: a client that sends less than it announced is answered 408 when the time is up,
/// and its connection closed, instead of holding a handler. A body announced over the size
/// limit is refused (413) before it is read.
pub(crate) async fn read_body(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let limit = shared.config.max_body_bytes;
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if announced.is_some_and(|n| n > limit as u64) {
        return ApiError::too_large().into_response();
    }
    let (parts, body) = request.into_parts();
    let read = Limited::new(body, limit).collect();
    let bytes = match tokio::time::timeout(shared.config.body_timeout(), read).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return ApiError::too_large().into_response();
        }
        Ok(Err(e)) => {
            return ApiError::bad(format!("could not read the request body: {e}")).into_response();
        }
        Err(_) => {
            shared.metrics.timed_out(Stage::Body);
            let mut response = ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the request body did not arrive within {} ms (--body-timeout-ms)",
                    shared.config.body_timeout_ms
                ),
            )
            .into_response();
            // The rest of the body may still come: the connection cannot be reused.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return response;
        }
    };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}
