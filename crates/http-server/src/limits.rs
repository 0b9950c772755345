//! Request limits: the request deadline and the body-size limit.

use hs_core::observe::targets;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::header::CONTENT_LENGTH;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hs_core::observe::ErrorKind;
use http_body_util::{BodyExt, LengthLimitError, Limited};

use crate::observe::Outcome;

/// Default body-size limit: 16 MiB, as the reference server.
pub const DEFAULT_BODY_LIMIT: usize = 16 * 1024 * 1024;

/// Default request deadline.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The answer to a request that ran past its deadline: `503 Service
/// Unavailable` (`text/plain`, `Retry-After: 1`), observed as `timeout`.
pub(crate) fn timeout_response(timeout: Duration) -> Response {
    log::warn!(target: targets::HTTP_SERVER, "no response within {timeout:?}: answered 503");
    let response = (
        StatusCode::SERVICE_UNAVAILABLE,
        [("retry-after", "1")],
        "Request timed out",
    )
        .into_response();
    Outcome::error_on_route(ErrorKind::Timeout).attach(response)
}

/// Why a body could not be read.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// Over the limit (declared or actual length).
    TooLarge,
    /// The connection failed while the body was read.
    Read,
}

/// Reads the whole body, refusing more than `limit` bytes. A declared
/// `Content-Length` over the limit is refused before anything is read.
pub(crate) async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Bytes, BodyError> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(BodyError::TooLarge);
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<LengthLimitError>() => Err(BodyError::TooLarge),
        Err(error) => {
            // axum wraps the limit error of a nested `Limited`; look one level down.
            if std::error::Error::source(&*error).is_some_and(|s| s.is::<LengthLimitError>()) {
                Err(BodyError::TooLarge)
            } else {
                log::debug!(target: targets::HTTP_SERVER, "request body could not be read: {error}");
                Err(BodyError::Read)
            }
        }
    }
}
