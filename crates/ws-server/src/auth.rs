//! The authentication phase (docs/protocol.md 4.3): a token message, or SCRAM
//! over `hello` / `scram` / `authOk` messages, before any request.
//!
//! Nothing the client sends reaches dispatch before this succeeds. Every
//! failure sends `{"type":"authErr"}` and closes with 1008 (see
//! [`close`](crate::close)). Observed as one request named `auth`:
//! `on_request("auth", duration)` on success, `on_error(<op>, "auth")` on a
//! refusal (`<op>` is `auth` for an auth message, the request's op when a
//! request came first, `invalid` for garbage) or `on_error("auth",
//! "timeout")` when the deadline passes.

use hs_core::observe::targets;
use std::time::Instant;

use axum::extract::ws::Message;
use futures_util::StreamExt;
use hs_core::auth::{Principal, ScramStep};
use hs_core::observe::{ErrorKind, MetricsObserver, Transport};
use hs_core::spans;
use hs_core::ws::{self, AuthMessage, ClientFrame};
use subtle::ConstantTimeEq;
use tracing::{Instrument, Span};

use crate::close;
use crate::conn::{Stream, read_failed};
use crate::outgoing::{AUTH, INVALID, Label, Outcomes, Outgoing};
use crate::shared::ConnShared;
use crate::state::WsServerState;
use hs_core::observe::labels::label_of;

/// Why the phase ended without a principal.
enum Refusal {
    /// Refused: the label observed with `on_error(label, "auth")`.
    Refused(Label),
    /// The deadline passed.
    Timeout,
    /// The peer went away or the server is shutting down: nothing to answer.
    Gone,
}

/// Runs the auth phase in a `haystack.auth` span (under the connection's).
/// `Some(principal)` on success (`None` inside for an anonymous
/// static-token client); `None` when the connection is closing.
pub(crate) async fn authenticate(
    state: &WsServerState,
    shared: &ConnShared,
    stream: &mut Stream,
) -> Option<Option<Principal>> {
    let span = spans::auth(Transport::Ws, &shared.peer);
    authenticate_in(state, shared, stream, &span)
        .instrument(span.clone())
        .await
}

async fn authenticate_in(
    state: &WsServerState,
    shared: &ConnShared,
    stream: &mut Stream,
    span: &Span,
) -> Option<Option<Principal>> {
    let started = Instant::now();
    let timeout = state.inner.config.auth_timeout;
    let mut began = false;
    let result = tokio::select! {
        biased;
        () = shared.cancel.cancelled() => Err(Refusal::Gone),
        result = tokio::time::timeout(timeout, exchange(state, shared, stream, &mut began)) => {
            result.unwrap_or(Err(Refusal::Timeout))
        }
    };
    let observer = &shared.observer;
    match result {
        Ok(principal) => {
            match &principal {
                Some(principal) => log::info!(
                    target: targets::AUTH,
                    "{}: authenticated as {} ({})",
                    shared.peer,
                    principal.username,
                    principal.role.as_str()
                ),
                None => {
                    log::info!(target: targets::AUTH, "{}: authenticated by static token", shared.peer)
                }
            }
            if let Some(principal) = &principal {
                spans::record_user(span, &principal.username);
            }
            spans::record_outcome(span, None);
            observer.on_request(AUTH, started.elapsed());
            Some(principal)
        }
        Err(Refusal::Refused(label)) => {
            log::warn!(target: targets::AUTH, "{}: authentication failed", shared.peer);
            spans::record_outcome(span, Some(ErrorKind::Auth));
            observer.on_error(&label, ErrorKind::Auth.as_str());
            refuse(shared, close::REASON_AUTH_FAILED);
            None
        }
        Err(Refusal::Timeout) => {
            log::warn!(target: targets::AUTH, "{}: authentication not completed within {timeout:?}", shared.peer);
            spans::record_outcome(span, Some(ErrorKind::Timeout));
            observer.on_error(AUTH, ErrorKind::Timeout.as_str());
            refuse(shared, close::REASON_AUTH_TIMEOUT);
            None
        }
        Err(Refusal::Gone) => {
            if shared.cancel.is_cancelled() {
                // Shutdown (or a close already decided) during the auth phase.
                shared.close(close::GOING_AWAY, close::REASON_SHUTDOWN);
            }
            if began {
                // An exchange was under way: it failed with the connection.
                spans::record_outcome(span, Some(ErrorKind::ConnectionClosed));
                observer.on_error(AUTH, ErrorKind::ConnectionClosed.as_str());
            }
            None
        }
    }
}

/// `authErr`, then close 1008.
fn refuse(shared: &ConnShared, reason: &'static str) {
    send(shared, &AuthMessage::AuthErr);
    shared.close(close::POLICY, reason);
}

fn send(shared: &ConnShared, message: &AuthMessage) {
    shared.enqueue(Outgoing::text(
        ws::encode_auth(message),
        AUTH.into(),
        Outcomes::None,
    ));
}

/// Reads auth messages until the client is authenticated or refused.
async fn exchange(
    state: &WsServerState,
    shared: &ConnShared,
    stream: &mut Stream,
    began: &mut bool,
) -> Result<Option<Principal>, Refusal> {
    let auth = &state.inner.auth;
    let observer = &shared.observer;
    let mut said_hello = false;
    loop {
        let text = match stream.next().await {
            Some(Ok(Message::Text(text))) => text.as_str().to_owned(),
            Some(Ok(Message::Binary(bytes))) => match String::from_utf8(bytes.to_vec()) {
                Ok(text) => text,
                Err(_) => {
                    observer.on_ws_message_recv(INVALID, bytes.len());
                    return Err(Refusal::Refused(INVALID.into()));
                }
            },
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Close(_))) | None => {
                shared.peer_closed();
                return Err(Refusal::Gone);
            }
            Some(Err(err)) => {
                read_failed(shared, err);
                return Err(Refusal::Gone);
            }
        };
        let len = text.len();
        let message = match ws::decode_client_frame(&text) {
            Ok(ClientFrame::Auth(message)) => {
                observer.on_ws_message_recv(AUTH, len);
                *began = true;
                message
            }
            Ok(ClientFrame::Request(request)) => {
                observer.on_ws_message_recv(&request.op, len);
                log::debug!(target: targets::AUTH, "{}: request before authentication", shared.peer);
                return Err(Refusal::Refused(label_of(&request.op)));
            }
            Ok(_) | Err(_) => {
                observer.on_ws_message_recv(INVALID, len);
                log::debug!(target: targets::AUTH, "{}: unexpected message during authentication", shared.peer);
                return Err(Refusal::Refused(INVALID.into()));
            }
        };
        match message {
            AuthMessage::AuthToken { token } => {
                if let Some(expected) = &auth.static_token {
                    if bool::from(expected.as_bytes().ct_eq(token.as_bytes())) {
                        return Ok(None);
                    }
                }
                return match auth
                    .tokens
                    .as_ref()
                    .and_then(|tokens| tokens.validate(&token))
                {
                    Some(principal) => Ok(Some(principal)),
                    None => {
                        log::debug!(target: targets::AUTH, "{}: unknown or expired token", shared.peer);
                        Err(Refusal::Refused(AUTH.into()))
                    }
                };
            }
            AuthMessage::Hello { username } if !said_hello => {
                let Some(scram) = &auth.scram else {
                    log::debug!(target: targets::AUTH, "{}: hello, but SCRAM is not enabled", shared.peer);
                    return Err(Refusal::Refused(AUTH.into()));
                };
                said_hello = true;
                log::debug!(target: targets::AUTH, "{}: SCRAM hello", shared.peer);
                // The peer is kept as its `ip:port` text; parsed back, it
                // counts the handshake against that address.
                let source = shared
                    .peer
                    .parse::<std::net::SocketAddr>()
                    .ok()
                    .map(|addr| addr.ip());
                match scram.hello_from(source, &username) {
                    Ok(challenge) => {
                        let hash = challenge.hash().to_owned();
                        send(
                            shared,
                            &AuthMessage::HelloChallenge {
                                handshake_token: challenge.handshake_token,
                                hash,
                            },
                        );
                    }
                    Err(err) => {
                        log::debug!(target: targets::AUTH, "{}: SCRAM hello refused: {}", shared.peer, err.as_str());
                        return Err(Refusal::Refused(AUTH.into()));
                    }
                }
            }
            AuthMessage::Scram {
                handshake_token,
                data,
                ..
            } if said_hello => {
                let Some(scram) = &auth.scram else {
                    return Err(Refusal::Refused(AUTH.into()));
                };
                match scram.step(&handshake_token, &data) {
                    Ok(ScramStep::Continue(first)) => {
                        log::debug!(target: targets::AUTH, "{}: SCRAM first step", shared.peer);
                        send(
                            shared,
                            &AuthMessage::Scram {
                                handshake_token: first.handshake_token.clone(),
                                hash: Some(first.hash().to_owned()),
                                data: first.data,
                            },
                        );
                    }
                    Ok(ScramStep::Authenticated(done)) => {
                        log::debug!(target: targets::AUTH, "{}: SCRAM final step", shared.peer);
                        send(
                            shared,
                            &AuthMessage::AuthOk {
                                auth_token: done.auth_token,
                                data: done.data,
                            },
                        );
                        return Ok(Some(done.principal));
                    }
                    Ok(_) => return Err(Refusal::Refused(AUTH.into())),
                    Err(err) => {
                        log::debug!(target: targets::AUTH, "{}: SCRAM step refused: {}", shared.peer, err.as_str());
                        return Err(Refusal::Refused(AUTH.into()));
                    }
                }
            }
            _ => {
                log::debug!(target: targets::AUTH, "{}: auth message out of sequence", shared.peer);
                return Err(Refusal::Refused(AUTH.into()));
            }
        }
    }
}
