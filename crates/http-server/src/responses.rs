//! The non-grid responses, shaped as the reference server shapes them so
//! that haystack-py clients read them unchanged.

use axum::body::Body;
use axum::http::header::{ALLOW, CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hs_core::codec::{CodecError, Format, encode_grid, encode_reply};
use hs_core::observe::ErrorKind;
use hs_core::observe::targets;
use hs_core::ops::Reply;
use hs_core::value::Grid;

use crate::observe::Outcome;

const JSON: &str = "application/json";
const TEXT: &str = "text/plain; charset=utf-8";

/// `404` with FastAPI's JSON body `{"detail":"Not Found"}`.
pub(crate) fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(CONTENT_TYPE, JSON)],
        r#"{"detail":"Not Found"}"#,
    )
        .into_response()
}

/// `405` with FastAPI's JSON body and an `allow` header.
pub(crate) fn method_not_allowed(allow: &'static str) -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [(ALLOW, allow), (CONTENT_TYPE, JSON)],
        r#"{"detail":"Method Not Allowed"}"#,
    )
        .into_response()
}

/// `406` for an `Accept` header naming no supported format.
pub(crate) fn not_acceptable() -> Response {
    (
        StatusCode::NOT_ACCEPTABLE,
        [(CONTENT_TYPE, TEXT)],
        "Not Acceptable: no supported media type in Accept header",
    )
        .into_response()
}

/// `415` for a body in an unsupported format.
pub(crate) fn unsupported_media_type(mime: &str) -> Response {
    (
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        [(CONTENT_TYPE, TEXT)],
        format!("Unsupported Media Type: {mime}"),
    )
        .into_response()
}

/// `400` for a body the connection failed to deliver.
pub(crate) fn bad_body() -> Response {
    (
        StatusCode::BAD_REQUEST,
        [(CONTENT_TYPE, TEXT)],
        "Request body could not be read",
    )
        .into_response()
}

/// `429` for a HELLO from an address with as many handshakes in progress
/// as it may.
pub(crate) fn too_many_handshakes() -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        [("retry-after", "1"), (CONTENT_TYPE.as_str(), TEXT)],
        "Too many handshakes in progress from this address",
    )
        .into_response()
}

/// `401` with an empty body and the given `WWW-Authenticate` value.
pub(crate) fn unauthorized(www_authenticate: &str) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::UNAUTHORIZED;
    match HeaderValue::from_str(www_authenticate) {
        Ok(value) => {
            response.headers_mut().insert(WWW_AUTHENTICATE, value);
        }
        Err(_) => {
            log::error!(target: targets::HTTP_SERVER, "WWW-Authenticate value is not a valid header; sent the bare challenge");
            response.headers_mut().insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static(crate::auth::BARE_CHALLENGE),
            );
        }
    }
    response
}

/// `403 Authentication failed`, without a Content-Type (as the reference).
pub(crate) fn authentication_failed() -> Response {
    let mut response = Response::new(Body::from("Authentication failed"));
    *response.status_mut() = StatusCode::FORBIDDEN;
    response
}

/// `403` to a request without a mapped client certificate on a server whose
/// only login is a certificate.
pub(crate) fn certificate_required() -> Response {
    let mut response = Response::new(Body::from(
        "A client certificate mapped to a user is required",
    ));
    *response.status_mut() = StatusCode::FORBIDDEN;
    response
}

/// An error grid in `format` with `status`, observed as `op` failing with
/// `error`; `500`, observed as `server_error`, if it cannot be encoded.
pub(crate) fn error_grid(
    op: &'static str,
    status: StatusCode,
    grid: &Grid,
    format: Format,
    error: ErrorKind,
) -> Response {
    encoded(op, status, encode_grid(grid, format), format, Some(error))
}

/// An op's reply, in `format` with `200`. It carries no [`Outcome`]: the
/// observer layer reports a `200` without one as a success of the route's
/// op, which is this op.
pub(crate) fn reply(op: &'static str, reply: &Reply, format: Format) -> Response {
    encoded(
        op,
        StatusCode::OK,
        encode_reply(reply, format),
        format,
        None,
    )
}

/// `Content-Type` values of the formats, built once.
const JSON_CONTENT_TYPE: HeaderValue = HeaderValue::from_static(Format::Json.content_type());
const ZINC_CONTENT_TYPE: HeaderValue = HeaderValue::from_static(Format::Zinc.content_type());

fn encoded(
    op: &'static str,
    status: StatusCode,
    body: Result<String, CodecError>,
    format: Format,
    error: Option<ErrorKind>,
) -> Response {
    match body {
        Ok(body) => {
            let mut response = Response::new(Body::from(body));
            *response.status_mut() = status;
            let content_type = match format {
                Format::Zinc => ZINC_CONTENT_TYPE,
                _ => JSON_CONTENT_TYPE,
            };
            response.headers_mut().insert(CONTENT_TYPE, content_type);
            match error {
                Some(kind) => Outcome::error(op, kind).attach(response),
                None => response,
            }
        }
        Err(encode_error) => {
            log::error!(target: targets::HTTP_SERVER, "{op}: response grid could not be encoded as {format:?}: {encode_error}");
            let response = (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(CONTENT_TYPE, TEXT)],
                "Internal server error",
            )
                .into_response();
            Outcome::error(op, ErrorKind::ServerError).attach(response)
        }
    }
}
