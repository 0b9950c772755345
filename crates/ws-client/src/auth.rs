//! Authentication right after the upgrade (docs/protocol.md 4.3): a static token,
//! or SCRAM-SHA-256 carried in JSON messages.

use futures_util::{SinkExt, StreamExt};
use hs_core::auth::AuthFailure;
use hs_core::observe::MetricsObserver;
use hs_core::observe::labels;
use hs_core::observe::targets;
use tokio_tungstenite::tungstenite::Message;

use crate::config::Auth;
use crate::conn::{Shared, WsStream, close_info};
use crate::wire::{self, AuthReply, Incoming};
use crate::{ServerClose, WsClientError};

/// Runs the configured authentication on a fresh connection.
pub(crate) async fn authenticate(
    stream: &mut WsStream,
    auth: &Auth,
    shared: &Shared,
) -> Result<(), WsClientError> {
    match auth {
        Auth::None => Ok(()),
        Auth::Token(token) => {
            // Success is silent; a refusal (authErr or a close before any
            // response) fails the requests the connection carried with
            // `AuthFailure::TokenRejected` (see `Shared::auth_refusal`).
            send(stream, shared, wire::encode_token(token.expose())).await?;
            log::debug!(target: targets::AUTH, "token sent to {}", shared.url);
            Ok(())
        }
        Auth::Scram { username, password } => {
            scram(stream, shared, username, password).await?;
            log::info!(target: targets::AUTH, "authenticated to {} as {username} (SCRAM-SHA-256)", shared.url);
            Ok(())
        }
    }
}

async fn scram(
    stream: &mut WsStream,
    shared: &Shared,
    username: &str,
    password: &str,
) -> Result<(), WsClientError> {
    let mut client = hs_core::auth::ScramClient::new(username, password);
    log::debug!(target: targets::AUTH, "SCRAM hello for {username} to {}", shared.url);
    send(stream, shared, wire::encode_hello(&client.hello_username())).await?;
    let handshake_token = match recv(stream, shared).await? {
        AuthReply::Challenge { handshake_token } if !handshake_token.is_empty() => handshake_token,
        AuthReply::Err => return Err(refused(username)),
        other => return Err(unexpected("hello", &other)),
    };
    let first = client.client_first();
    log::debug!(target: targets::AUTH, "SCRAM client-first sent");
    send(stream, shared, wire::encode_scram(&handshake_token, &first)).await?;
    let (handshake_token, server_first) = match recv(stream, shared).await? {
        AuthReply::Scram {
            handshake_token,
            data,
        } if !handshake_token.is_empty() && !data.is_empty() => (handshake_token, data),
        AuthReply::Scram { .. } => {
            return Err(broken("the server refused the handshake token"));
        }
        AuthReply::Err => return Err(refused(username)),
        other => return Err(unexpected("server-first", &other)),
    };
    let last = client
        .client_final(&server_first)
        .map_err(|e| broken(format!("bad server-first message: {e}")))?;
    log::debug!(target: targets::AUTH, "SCRAM client-final sent");
    send(stream, shared, wire::encode_scram(&handshake_token, &last)).await?;
    match recv(stream, shared).await? {
        AuthReply::Ok { data } => {
            // Always verify: a server that cannot prove it knows the
            // password is not the server we meant.
            client
                .verify_server_final(&data)
                .map_err(|e| broken(format!("server signature not verified: {e}")))?;
            Ok(())
        }
        AuthReply::Err => Err(refused(username)),
        other => Err(unexpected("authOk", &other)),
    }
}

/// `authErr`: the server does not say whether the user is unknown or the
/// password wrong, so neither does the error.
fn refused(username: &str) -> WsClientError {
    // DEBUG: the error returned to the caller says it; a WARN would say it twice.
    log::debug!(target: targets::AUTH, "login refused for user {username:?} (authErr)");
    WsClientError::refused(
        AuthFailure::CredentialsRejected {
            username: username.to_owned(),
        },
        None,
    )
}

fn broken(what: impl std::fmt::Display) -> WsClientError {
    log::debug!(target: targets::AUTH, "SCRAM exchange failed: {what}");
    WsClientError::auth_broken(what, None)
}

fn unexpected(expected: &str, got: &AuthReply) -> WsClientError {
    broken(format!("expected {expected}, got {got:?}"))
}

async fn send(stream: &mut WsStream, shared: &Shared, text: String) -> Result<(), WsClientError> {
    let len = text.len();
    stream
        .send(Message::text(text))
        .await
        .map_err(|e| WsClientError::auth_broken(format!("send failed: {e}"), None))?;
    shared.observer.on_ws_message_sent(labels::AUTH, len);
    Ok(())
}

/// The next auth message; pushes and other frames that arrive meanwhile
/// (haystack-py pushes to connections still authenticating) are dispatched
/// as usual.
async fn recv(stream: &mut WsStream, shared: &Shared) -> Result<AuthReply, WsClientError> {
    // Every iteration consumes a frame; the caller bounds the time.
    while let Some(message) = stream.next().await {
        match message {
            Ok(Message::Text(text)) => match wire::decode(text.as_str()) {
                Ok(Incoming::Auth(reply)) => {
                    shared.observer.on_ws_message_recv(labels::AUTH, text.len());
                    return Ok(reply);
                }
                _ => shared.on_text(text.as_str()),
            },
            Ok(Message::Binary(bytes)) => shared
                .observer
                .on_ws_message_recv(labels::INVALID, bytes.len()),
            Ok(Message::Close(frame)) => return Err(closed(frame.as_ref().map(close_info))),
            Err(_) => break,
            Ok(_) => {}
        }
    }
    Err(closed(None))
}

/// The server closed the connection in the middle of the SCRAM exchange
/// (haystack-py's FastAPI endpoint answers a `hello` with close 4003: it
/// takes only a token from an HTTP login).
fn closed(close: Option<ServerClose>) -> WsClientError {
    let error = WsClientError::auth_broken(
        "the server closed the connection during the SCRAM exchange",
        close,
    );
    log::debug!(target: targets::AUTH, "{error}");
    error
}
