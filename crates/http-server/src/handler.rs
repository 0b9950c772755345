//! The `{base}/{op}` handler: method check, format negotiation, request
//! grid, authorisation, dispatch, response grid.
//!
//! Order of checks (each answers and stops): unknown op `404`, wrong method
//! `405`, unacceptable `Accept` `406` (before the op runs, so a write with a
//! bad `Accept` is not applied), body over the limit `413`, unsupported
//! `Content-Type` `415`, undecodable body (error grid), role refusal (error
//! grid), the op.

use hs_core::observe::targets;
use std::sync::Arc;

use axum::extract::{Path, Query, Request};
use axum::http::header::{ACCEPT, CONTENT_TYPE};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use hs_core::codec::Format;
use hs_core::observe::ErrorKind;
use hs_core::ops::{Op, OpError, OpRequest, Pipeline, decode_request, outcome_kind};
use hs_core::value::Grid;

use crate::auth::Session;
use crate::limits::{BodyError, read_body};
use crate::observe::{Outcome, op_name_label};
use crate::query::grid_from_params;
use crate::responses;

/// What the op handler needs, shared by every request.
pub(crate) struct ApiState {
    pub(crate) pipeline: Pipeline,
    pub(crate) body_limit: usize,
    pub(crate) default_format: Format,
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState")
            .field("body_limit", &self.body_limit)
            .field("default_format", &self.default_format)
            .finish_non_exhaustive()
    }
}

/// `{base}/{name}` where `name` is no standard op: `404`.
pub(crate) async fn unknown_op(Path(op_name): Path<String>) -> Response {
    log::debug!(target: targets::HTTP_SERVER, "unknown op {op_name:?}: 404");
    Outcome::error(op_name_label(&op_name), ErrorKind::UnknownOp).attach(responses::not_found())
}

/// `{base}/{op}` for any method (one route per op, so the op is known
/// without parsing the path).
pub(crate) async fn handle_op(state: Arc<ApiState>, op: Op, request: Request) -> Response {
    let name = op.as_str();
    let method = request.method();
    let is_get = method == Method::GET;
    if !(method == Method::POST || is_get && op.allows_get()) {
        let allow = if op.allows_get() { "GET, POST" } else { "POST" };
        return Outcome::error(name, ErrorKind::BadRequest)
            .attach(responses::method_not_allowed(allow));
    }

    let accept = request.headers().get(ACCEPT).and_then(|v| v.to_str().ok());
    let Some(format) = Format::negotiate(accept, state.default_format) else {
        return Outcome::error(name, ErrorKind::Unsupported).attach(responses::not_acceptable());
    };

    let (parts, body) = request.into_parts();
    let request = if is_get {
        match Query::<Vec<(String, String)>>::try_from_uri(&parts.uri) {
            Ok(Query(params)) => OpRequest::Grid(grid_from_params(params)),
            Err(error) => {
                let dis = format!("Invalid query string: {}", error.body_text());
                let error = OpError::new(ErrorKind::BadRequest, dis);
                return op_error_response(name, &error, format);
            }
        }
    } else {
        let bytes = match read_body(&parts.headers, body, state.body_limit).await {
            Ok(bytes) => bytes,
            Err(BodyError::TooLarge) => {
                log::warn!(target: targets::HTTP_SERVER, "{name}: request body over {} bytes, answered 413", state.body_limit);
                let grid = OpError::new(ErrorKind::TooLarge, "Request body too large").to_grid();
                return responses::error_grid(
                    name,
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &grid,
                    format,
                    ErrorKind::TooLarge,
                );
            }
            Err(BodyError::Read) => {
                return Outcome::error(name, ErrorKind::ConnectionClosed)
                    .attach(responses::bad_body());
            }
        };
        if bytes.is_empty() {
            // An empty body is an empty grid whatever its Content-Type.
            OpRequest::Grid(Grid::make_empty())
        } else {
            let content_type = parts
                .headers
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok());
            let body_format = match Format::from_content_type(content_type) {
                Ok(body_format) => body_format,
                Err(_) => {
                    let mime = content_type.unwrap_or("");
                    let mime = mime.split(';').next().unwrap_or("").trim();
                    return Outcome::error(name, ErrorKind::Unsupported)
                        .attach(responses::unsupported_media_type(mime));
                }
            };
            match decode_request(op, &bytes, body_format) {
                Ok(request) => request,
                Err(error) => {
                    log::debug!(target: targets::HTTP_SERVER, "{name}: undecodable request body: {}", error.message());
                    return op_error_response(name, &error, format);
                }
            }
        }
    };

    let session = parts.extensions.get::<Session>();
    let principal = session.map(|auth| &auth.principal);
    let pipeline = &state.pipeline;
    let result = match pipeline.authorize(name, &request, principal) {
        Ok(()) => {
            let user = principal.map(|principal| principal.username.as_str());
            let result = pipeline.dispatch(name, request, user).await;
            if let (Op::Close, Some(auth)) = (op, session) {
                auth.revoke();
            }
            result
        }
        Err(refusal) => Err(refusal),
    };
    let kind = outcome_kind(&result);
    match result {
        Ok(reply) => {
            let response = responses::reply(name, &reply, format);
            match kind {
                Some(kind) => Outcome::error(name, kind).attach(response),
                None => response,
            }
        }
        Err(error) => {
            log::debug!(target: targets::HTTP_SERVER, "{name}: {}", error.message());
            op_error_response(name, &error, format)
        }
    }
}

/// The error grid of `error`, observed as its kind: HTTP 200 (as the
/// reference), or 500 for a failure of the server itself.
fn op_error_response(op: &'static str, error: &OpError, format: Format) -> Response {
    let status = if error.is_internal() {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    };
    responses::error_grid(op, status, &error.to_grid(), format, error.kind())
}
