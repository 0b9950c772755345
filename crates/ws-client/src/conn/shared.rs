//! The state a connection's task shares with its handles: pending
//! requests, the auth check, and how the connection ended.

use hs_core::observe::labels;
use hs_core::observe::targets;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Instant;

use hs_core::auth::AuthFailure;
use hs_core::observe::{GuardedObserver, MetricsObserver};
use parking_lot::Mutex;
use tokio::sync::{oneshot, watch};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

use super::PushSink;
use crate::config::Auth;
use crate::watch::WatchPush;
use crate::wire::{self, AuthReply, Incoming};
use crate::{Grid, ServerClose, WsClientError};

pub(super) type Reply = oneshot::Sender<Result<Grid, WsClientError>>;

pub(super) struct Pending {
    pub(super) op: String,
    pub(super) started: Instant,
    pub(super) reply: Reply,
}

#[derive(Default)]
pub(super) struct PendingTable {
    /// Set once the connection has ended, to the error its requests got:
    /// nothing may register after that.
    pub(super) closed: Option<WsClientError>,
    pub(super) map: HashMap<u32, Pending>,
}

/// Whether the server has accepted the client. After a token, or with no
/// credentials, the server answers nothing on success: the first response
/// is the acceptance, and an `authErr` or a close before it is a refusal.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum AuthCheck {
    /// Accepted (or SCRAM, which the connect already settled).
    Accepted,
    /// A token was sent; no response yet.
    TokenSent,
    /// No credentials; no response yet.
    Anonymous,
    /// The server answered `authErr`.
    Refused(AuthFailure),
}

impl AuthCheck {
    pub(super) fn new(auth: &Auth) -> Self {
        match auth {
            Auth::Token(_) => AuthCheck::TokenSent,
            Auth::None => AuthCheck::Anonymous,
            _ => AuthCheck::Accepted,
        }
    }

    /// What an `authErr` means now, if it is a refusal of this client.
    pub(super) fn refusal(&self) -> Option<AuthFailure> {
        match self {
            AuthCheck::TokenSent => Some(AuthFailure::TokenRejected),
            AuthCheck::Anonymous => Some(AuthFailure::LoginRequired),
            AuthCheck::Accepted | AuthCheck::Refused(_) => None,
        }
    }
}

/// The close code of a server shutting down.
pub(super) const CLOSE_GOING_AWAY: u16 = 1001;

/// State shared by the connection task and the client handles.
pub(crate) struct Shared {
    pub(crate) url: String,
    pub(crate) observer: GuardedObserver,
    pub(super) pending: Mutex<PendingTable>,
    pub(super) next_id: AtomicU32,
    pub(super) on_push: PushSink,
    pub(super) closed: watch::Sender<Option<String>>,
    pub(super) auth_check: Mutex<AuthCheck>,
    /// Set once `auth_check` is `Accepted` for good.
    pub(super) auth_settled: AtomicBool,
}

impl Shared {
    pub(super) fn register(&self, id: u32, op: &str, reply: Reply) -> Result<(), WsClientError> {
        let mut table = self.pending.lock();
        if let Some(error) = &table.closed {
            return Err(error.duplicate());
        }
        table.map.insert(
            id,
            Pending {
                op: op.to_owned(),
                started: Instant::now(),
                reply,
            },
        );
        Ok(())
    }

    pub(super) fn take(&self, id: u32) -> Option<Pending> {
        self.pending.lock().map.remove(&id)
    }

    /// Number of requests waiting for their response.
    pub(crate) fn in_flight(&self) -> usize {
        self.pending.lock().map.len()
    }

    /// The reason the connection ended, if it has.
    pub(crate) fn closed_reason(&self) -> Option<String> {
        self.closed.borrow().clone()
    }

    /// Whether the connection ended because the server refused this
    /// client (a bad token, a login required): set once it has ended.
    pub(crate) fn ended_refused(&self) -> bool {
        self.pending
            .lock()
            .closed
            .as_ref()
            .is_some_and(WsClientError::is_auth)
    }

    /// Resolves once the connection has ended; yields the reason.
    pub(crate) async fn wait_closed(&self) -> String {
        let mut rx = self.closed.subscribe();
        match rx.wait_for(Option::is_some).await {
            Ok(reason) => reason.clone().unwrap_or_default(),
            Err(_) => "connection dropped".to_owned(),
        }
    }

    /// Completes a request with the server's grid: fires exactly one of
    /// `on_request` / `on_error` and hands the result to the caller.
    pub(super) fn complete(&self, pending: Pending, grid: Grid) {
        let result = match wire::error_dis(&grid) {
            Some(dis) => {
                let error = WsClientError::ErrorGrid {
                    op: pending.op,
                    dis,
                    grid: Box::new(grid),
                };
                if let WsClientError::ErrorGrid { op, .. } = &error {
                    self.observer.on_error(op, error.kind().as_str());
                }
                Err(error)
            }
            None => {
                self.observer
                    .on_request(&pending.op, pending.started.elapsed());
                Ok(grid)
            }
        };
        // The caller may have gone away (future dropped): nothing to do.
        let _ = pending.reply.send(result);
    }

    pub(super) fn fail(&self, pending: Pending, error: WsClientError) {
        self.observer.on_error(&pending.op, error.kind().as_str());
        let _ = pending.reply.send(Err(error));
    }

    fn fail_all(&self, error: &WsClientError) {
        let drained: Vec<Pending> = {
            let mut table = self.pending.lock();
            table.closed = Some(error.duplicate());
            table.map.drain().map(|(_, p)| p).collect()
        };
        if !drained.is_empty() {
            log::debug!(
                target: targets::WS_CLIENT,
                "{} pending requests failed: connection to {} closed ({error})",
                drained.len(),
                self.url
            );
        }
        for pending in drained {
            self.fail(pending, error.duplicate());
        }
    }

    /// The server answered a request: it accepted the token (or the
    /// anonymous client).
    fn accepted(&self) {
        // Every response calls this: skip the lock once settled.
        if self.auth_settled.load(Ordering::Relaxed) {
            return;
        }
        let mut check = self.auth_check.lock();
        if matches!(*check, AuthCheck::TokenSent | AuthCheck::Anonymous) {
            *check = AuthCheck::Accepted;
        }
        self.auth_settled
            .store(*check == AuthCheck::Accepted, Ordering::Relaxed);
    }

    /// The error the connection's requests get when the server refused the
    /// client (`authErr`, or a close before any response after a token, or
    /// FastAPI's 4003 to an anonymous client); `None` for any other end.
    pub(super) fn auth_refusal(&self, close: Option<&ServerClose>) -> Option<WsClientError> {
        let failure = match &*self.auth_check.lock() {
            AuthCheck::Refused(failure) => failure.clone(),
            // haystack-py's standalone server refuses a token with a bare
            // close 1000; 1001 is a server going away, not a refusal.
            AuthCheck::TokenSent if close.is_some_and(|c| c.code != CLOSE_GOING_AWAY) => {
                AuthFailure::TokenRejected
            }
            AuthCheck::Anonymous if close.is_some_and(|c| c.code == ServerClose::AUTH_REQUIRED) => {
                AuthFailure::LoginRequired
            }
            _ => return None,
        };
        Some(WsClientError::refused(failure, close.cloned()))
    }

    /// Dispatches one text frame from the server.
    pub(crate) fn on_text(&self, text: &str) {
        let len = text.len();
        match wire::decode(text) {
            Ok(Incoming::Response { id, grid }) => match self
                .take_by_json_id(id.as_ref())
                .inspect(|_| self.accepted())
            {
                Some(pending) => {
                    self.observer.on_ws_message_recv(&pending.op, len);
                    self.complete(pending, grid);
                }
                None => {
                    // A late answer to a request that timed out or was
                    // abandoned, or an id this client never sent.
                    self.observer.on_ws_message_recv(labels::INVALID, len);
                    log::debug!(target: targets::WS_CLIENT, "unmatched response id {id:?} from {}", self.url);
                }
            },
            Ok(Incoming::Batch(items)) if items.is_empty() => {
                // No server answers a batch with nothing (an array of
                // non-objects decodes to this).
                self.observer.on_ws_message_recv(labels::INVALID, len);
                log::warn!(target: targets::WS_CLIENT, "empty batch frame from {}", self.url);
            }
            Ok(Incoming::Batch(items)) => {
                self.observer.on_ws_message_recv(labels::BATCH, len);
                self.accepted();
                for (id, grid) in items {
                    match self.take_by_json_id(id.as_ref()) {
                        Some(pending) => self.complete(pending, grid),
                        None => log::debug!(
                            target: targets::WS_CLIENT,
                            "unmatched batch item id {id:?} from {}",
                            self.url
                        ),
                    }
                }
            }
            Ok(Incoming::Watch { watch_id, grid }) => {
                self.observer.on_ws_message_recv(labels::PUSH, len);
                log::debug!(target: targets::WS_CLIENT, "push for watch {watch_id} ({} rows)", grid.rows.len());
                (self.on_push)(WatchPush { watch_id, grid });
            }
            Ok(Incoming::Auth(reply)) => {
                self.observer.on_ws_message_recv(labels::AUTH, len);
                let mut check = self.auth_check.lock();
                match (&reply, check.refusal()) {
                    (AuthReply::Err, Some(failure)) => {
                        // The connection ends next (the server closes it);
                        // the close reports this to the pending requests.
                        // DEBUG: the requests' errors say it.
                        log::debug!(target: targets::AUTH, "{} refused the client: {failure}", self.url);
                        *check = AuthCheck::Refused(failure);
                    }
                    _ => {
                        log::warn!(target: targets::WS_CLIENT, "unexpected auth message after authentication from {}", self.url)
                    }
                }
            }
            Ok(Incoming::Other) => {
                self.observer.on_ws_message_recv(labels::INVALID, len);
                log::debug!(target: targets::WS_CLIENT, "ignored message from {}", self.url);
            }
            Err(error) => {
                self.observer.on_ws_message_recv(labels::INVALID, len);
                log::warn!(
                    target: targets::WS_CLIENT,
                    "undecodable frame from {} ({len} bytes): {}",
                    self.url,
                    error.message
                );
                if let Some(pending) = self.take_by_json_id(error.request_id.as_ref()) {
                    self.fail(
                        pending,
                        WsClientError::Protocol(format!("undecodable response: {}", error.message)),
                    );
                }
            }
        }
    }

    fn take_by_json_id(&self, id: Option<&hs_core::ws::RequestId>) -> Option<Pending> {
        // The client sends decimal strings; accept a number too.
        let id = id?;
        let id = match id.as_str() {
            Some(text) => text.parse::<u32>().ok()?,
            None => u32::try_from(id.as_u64()?).ok()?,
        };
        self.take(id)
    }
}

/// Fires `on_ws_disconnect`, fails every pending request and publishes the
/// end of the connection when dropped: whatever ends the connection task
/// (close, error, heartbeat, abort, runtime shutdown), it runs exactly once.
pub(crate) struct DisconnectGuard {
    pub(super) shared: Arc<Shared>,
    /// What the pending (and later) requests fail with.
    pub(super) error: Option<WsClientError>,
}

impl DisconnectGuard {
    pub(super) fn set_reason(&mut self, reason: String) {
        self.error = Some(WsClientError::closed(reason));
    }

    pub(super) fn set_error(&mut self, error: WsClientError) {
        self.error = Some(error);
    }
}

impl Drop for DisconnectGuard {
    fn drop(&mut self) {
        let error = self
            .error
            .take()
            .unwrap_or_else(|| WsClientError::closed("connection task ended"));
        let reason = match &error {
            WsClientError::ConnectionClosed { reason } => reason.clone(),
            other => other.to_string(),
        };
        log::info!(target: targets::WS_CONN, "connection to {} closed: {reason}", self.shared.url);
        self.shared.fail_all(&error);
        self.shared.observer.on_ws_disconnect(&self.shared.url);
        self.shared.closed.send_replace(Some(reason));
    }
}

/// The close frame as the errors carry it.
pub(crate) fn close_info(frame: &CloseFrame) -> ServerClose {
    ServerClose {
        code: frame.code.into(),
        reason: frame.reason.to_string(),
    }
}
