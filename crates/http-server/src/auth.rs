//! The SCRAM-SHA-256 middleware (Project Haystack Auth, docs/protocol.md 3).
//!
//! Every API path accepts the handshake (HELLO, SCRAM, SCRAM) and, once it
//! is done, `BEARER authToken=<token>`. The handshake itself is
//! [`hs_core::auth::http::authenticate`]; this layer turns its answer into
//! HTTP and observer events:
//!
//! | request | answer | observed as |
//! | --- | --- | --- |
//! | no `Authorization` | `401`, `WWW-Authenticate: SCRAM hash=SHA-256` | `on_error(<op>, "auth")` |
//! | other scheme (`Basic`), unknown, expired or revoked bearer | the same `401` | `on_error(<op>, "auth")` |
//! | HELLO (known or unknown user: the same shape) | `401` with a handshake token | `on_request("auth", d)` |
//! | SCRAM first step | `401` with the server-first message | `on_request("auth", d)` |
//! | SCRAM final step | `200`, empty body, `Authentication-Info`; the op is not run | `on_request("auth", d)` |
//! | SCRAM final step rejected (wrong password, ...) | `403 Authentication failed` | `on_error("auth", "auth")` |
//! | bad or reused handshake token, malformed step | `401` bare challenge | `on_error("auth", "auth")` |
//! | HELLO from an address with as many handshakes in progress as it may | `429`, `Retry-After: 1` | `on_error("auth", "overloaded")` |
//! | valid bearer | the op runs as that principal | the op's own event |
//! | no `Authorization`, a verified client certificate a [`CertUserMap`] rule maps | the op runs as the mapped principal | the op's own event |
//! | no SCRAM configured (certificate logins only), no mapped certificate | `403` | `on_error(<op>, "auth")` |
//!
//! A request that carries an `Authorization` header is authenticated by it
//! (SCRAM or bearer), whatever certificate its connection presented.

use hs_core::observe::targets;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderValue;
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;
use hs_core::auth::http::{self as auth_http, Authorization, HttpAuth};
use hs_core::auth::{CertUserMap, PeerCertificate, Principal, ScramServer, TokenStore};
use hs_core::observe::ErrorKind;
use hs_core::spans;

use crate::observe::{AUTH_OP, Outcome};
use crate::responses;

/// The challenge sent with every refusal.
pub(crate) const BARE_CHALLENGE: &str = "SCRAM hash=SHA-256";

/// State of the auth middleware: SCRAM, certificate logins, or both.
pub(crate) struct AuthState {
    pub(crate) scram: Option<ScramServer>,
    pub(crate) cert_users: CertUserMap,
}

impl std::fmt::Debug for AuthState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthState")
            .field("scram", &self.scram.is_some())
            .field("cert_users", &self.cert_users.rules().len())
            .finish_non_exhaustive()
    }
}

/// The authenticated caller of a request, put in the request's extensions.
#[derive(Clone)]
pub(crate) struct Session {
    pub(crate) principal: Principal,
    /// The bearer token the request carried, revoked by `close`; none for a
    /// certificate login.
    bearer: Option<(String, TokenStore)>,
}

impl Session {
    /// Revokes this session's bearer token (the `close` op).
    pub(crate) fn revoke(&self) {
        if let Some((token, tokens)) = &self.bearer {
            if tokens.revoke(token) {
                log::info!(target: targets::AUTH, "token of {:?} revoked by close", self.principal.username);
            }
        }
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("principal", &self.principal)
            .finish_non_exhaustive()
    }
}

/// Middleware: authenticates the request or answers the handshake step.
pub(crate) async fn authenticate(
    State(auth): State<Arc<AuthState>>,
    mut request: Request,
    next: Next,
) -> Response {
    let header = request.headers().get(AUTHORIZATION);
    // A verified client certificate a rule maps stands for a login when the
    // request carries no credentials of its own.
    if header.is_none() {
        let mapped = request
            .extensions()
            .get::<PeerCertificate>()
            .and_then(|peer| auth.cert_users.principal(peer));
        if let Some(principal) = mapped {
            log::debug!(target: targets::AUTH, "{}: certificate login as {:?} ({})", request.uri().path(), principal.username, principal.role);
            spans::record_user_on_current(&principal.username);
            request.extensions_mut().insert(Session {
                principal,
                bearer: None,
            });
            return next.run(request).await;
        }
    }
    let Some(scram) = &auth.scram else {
        log::debug!(target: targets::AUTH, "{}: no client certificate mapped to a user", request.uri().path());
        return Outcome::error_on_route(ErrorKind::Auth).attach(responses::certificate_required());
    };
    let Some(value) = header else {
        log::debug!(target: targets::AUTH, "{}: no Authorization header", request.uri().path());
        return Outcome::error_on_route(ErrorKind::Auth)
            .attach(responses::unauthorized(BARE_CHALLENGE));
    };
    let Ok(value) = value.to_str() else {
        log::debug!(target: targets::AUTH, "Authorization header is not visible ASCII");
        return Outcome::error_on_route(ErrorKind::Auth)
            .attach(responses::unauthorized(BARE_CHALLENGE));
    };

    // The hot path: a bearer token, checked without the handshake machinery.
    if let Ok(Authorization::Bearer { auth_token }) = Authorization::parse(value) {
        return match scram.authenticate_bearer(&auth_token) {
            Ok(principal) => {
                spans::record_user_on_current(&principal.username);
                request.extensions_mut().insert(Session {
                    principal,
                    bearer: Some((auth_token, scram.tokens().clone())),
                });
                next.run(request).await
            }
            Err(_) => Outcome::error_on_route(ErrorKind::Auth)
                .attach(responses::unauthorized(BARE_CHALLENGE)),
        };
    }

    let handshake = is_handshake_scheme(value);
    // The peer, when the server was started with its address (`bind`,
    // `serve`, or axum's `into_make_service_with_connect_info`).
    let source = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    match auth_http::authenticate_from(scram, source, Some(value)) {
        HttpAuth::Authorized(principal) => {
            // Not reached (bearer handled above); serve it all the same.
            spans::record_user_on_current(&principal.username);
            request.extensions_mut().insert(Session {
                principal,
                bearer: None,
            });
            next.run(request).await
        }
        HttpAuth::Unauthorized {
            www_authenticate,
            error: None,
        } => Outcome::ok(AUTH_OP).attach(responses::unauthorized(&www_authenticate)),
        HttpAuth::Unauthorized {
            www_authenticate,
            error: Some(error),
        } => {
            log::debug!(target: targets::AUTH, "refused: {error}");
            let outcome = if handshake {
                Outcome::error(AUTH_OP, ErrorKind::Auth)
            } else {
                Outcome::error_on_route(ErrorKind::Auth)
            };
            outcome.attach(responses::unauthorized(&www_authenticate))
        }
        HttpAuth::Authenticated {
            authentication_info,
            principal,
        } => {
            log::info!(target: targets::AUTH, "{:?} authenticated ({:?})", principal.username, principal.role);
            spans::record_user_on_current(&principal.username);
            let mut response = Response::new(Body::empty());
            match HeaderValue::from_str(&authentication_info) {
                Ok(info) => {
                    response.headers_mut().insert("authentication-info", info);
                    Outcome::ok(AUTH_OP).attach(response)
                }
                Err(_) => {
                    log::error!(target: targets::AUTH, "Authentication-Info is not a valid header value");
                    *response.status_mut() = axum::http::StatusCode::INTERNAL_SERVER_ERROR;
                    Outcome::error(AUTH_OP, ErrorKind::ServerError).attach(response)
                }
            }
        }
        HttpAuth::TooManyRequests { error } => {
            log::debug!(target: targets::AUTH, "refused: {error}");
            Outcome::error(AUTH_OP, error.kind()).attach(responses::too_many_handshakes())
        }
        HttpAuth::Forbidden { error } => {
            log::warn!(target: targets::AUTH, "SCRAM final step rejected: {error}");
            Outcome::error(AUTH_OP, ErrorKind::Auth).attach(responses::authentication_failed())
        }
        other => {
            // `HttpAuth` is non-exhaustive: refuse what this version does not know.
            log::warn!(target: targets::AUTH, "unhandled auth answer {other:?}; refused");
            Outcome::error_on_route(ErrorKind::Auth).attach(responses::unauthorized(BARE_CHALLENGE))
        }
    }
}

/// Whether the header's scheme is a handshake step (HELLO or SCRAM).
fn is_handshake_scheme(value: &str) -> bool {
    let scheme = value.split_whitespace().next().unwrap_or("");
    scheme.eq_ignore_ascii_case("hello") || scheme.eq_ignore_ascii_case("scram")
}
