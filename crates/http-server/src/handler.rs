//! The `{base}/{op}` handler: method check, format negotiation, request
//! grid, authorisation, dispatch, response grid.
//!
//! Order of checks (each answers and stops): unknown op `404`, wrong method
//! `405`, unacceptable `Accept` `406` (before the op runs, so a write with a
//! bad `Accept` is not applied), body over the limit `413`, unsupported
//! `Content-Type` `415`, undecodable body (error grid), role refusal (error
//! grid), the op.

use std::sync::Arc;

use axum::extract::{Path, Query, Request};
use axum::http::header::{ACCEPT, CONTENT_TYPE};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use hs_core::auth::Authorizer;
use hs_core::codec::{Format, decode_grid};
use hs_core::observe::ErrorKind;
use hs_core::ops::{HaystackOps, Op, OpError, OpRequest, ReadRequest, dispatch_as};
use hs_core::value::Grid;

use crate::auth::Session;
use crate::limits::{BodyError, read_body};
use crate::observe::{Outcome, op_name_label};
use crate::query::grid_from_params;
use crate::{LOG_TARGET, responses};

/// What the op handler needs, shared by every request.
pub(crate) struct ApiState {
    pub(crate) ops: Arc<dyn HaystackOps>,
    pub(crate) authorizer: Arc<dyn Authorizer>,
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

/// Whether `op` may be called with GET (side-effect-free ops, PROTOCOL.md
/// 2.1). Every op may be called with POST.
pub(crate) fn allows_get(op: Op) -> bool {
    matches!(
        op,
        Op::About | Op::Ops | Op::Formats | Op::Close | Op::Read | Op::Nav | Op::HisRead
    )
}

/// `{base}/{name}` where `name` is no standard op: `404`.
pub(crate) async fn unknown_op(Path(op_name): Path<String>) -> Response {
    log::debug!(target: LOG_TARGET, "unknown op {op_name:?}: 404");
    Outcome::error(op_name_label(&op_name), ErrorKind::UnknownOp).attach(responses::not_found())
}

/// `{base}/{op}` for any method (one route per op, so the op is known
/// without parsing the path).
pub(crate) async fn handle_op(state: Arc<ApiState>, op: Op, request: Request) -> Response {
    let name = op.as_str();
    let method = request.method();
    let is_get = method == Method::GET;
    if !(method == Method::POST || is_get && allows_get(op)) {
        let allow = if allows_get(op) { "GET, POST" } else { "POST" };
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
                return error_grid_response(name, ErrorKind::BadRequest, &dis, format);
            }
        }
    } else {
        let bytes = match read_body(&parts.headers, body, state.body_limit).await {
            Ok(bytes) => bytes,
            Err(BodyError::TooLarge) => {
                log::warn!(target: LOG_TARGET, "{name}: request body over {} bytes, answered 413", state.body_limit);
                return responses::error_grid(
                    name,
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &OpError::new(ErrorKind::TooLarge, "Request body too large").to_grid(),
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
            // A plain JSON read skips the grid (the most common request).
            let plain_read = match (op, body_format) {
                (Op::Read, Format::Json) => ReadRequest::from_plain_json(&bytes),
                _ => None,
            };
            let decoded = match plain_read {
                Some(read) => Ok(OpRequest::Read(read)),
                None => decode_grid(&bytes, body_format).map(OpRequest::Grid),
            };
            match decoded {
                Ok(request) => request,
                Err(error) => {
                    log::debug!(target: LOG_TARGET, "{name}: undecodable request body: {error}");
                    let dis = format!("Invalid request grid: {error}");
                    return error_grid_response(name, error.kind(), &dis, format);
                }
            }
        }
    };

    let session = parts.extensions.get::<Session>();
    if let Some(auth) = session {
        if !state
            .authorizer
            .allows_access(&auth.principal, name, request.access(name))
        {
            log::info!(
                target: crate::AUTH_LOG_TARGET,
                "user {} ({:?}) may not run {name}",
                auth.principal.username,
                auth.principal.role
            );
            let dis = format!("Insufficient permissions: {name} requires operator or admin role");
            return error_grid_response(name, ErrorKind::Forbidden, &dis, format);
        }
    }

    let user = session.map(|auth| auth.principal.username.as_str());
    let result = dispatch_as(&*state.ops, name, request, user).await;
    if op == Op::Close {
        if let Some(auth) = session {
            auth.revoke();
        }
    }
    match result {
        Ok(reply) => responses::reply(name, &reply, format),
        Err(error) => {
            log::debug!(target: LOG_TARGET, "{name}: {}", error.message());
            responses::error_grid(name, StatusCode::OK, &error.to_grid(), format, error.kind())
        }
    }
}

/// An error grid with `dis` and `kind` (HTTP 200, as the reference),
/// observed as `kind`.
fn error_grid_response(op: &'static str, kind: ErrorKind, dis: &str, format: Format) -> Response {
    let grid = OpError::new(kind, dis).to_grid();
    responses::error_grid(op, StatusCode::OK, &grid, format, kind)
}
