//! The message loop's protocol side: envelopes, batches, capabilities and
//! pushes, for an authenticated connection.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::ws::Utf8Bytes;
use bytes::Bytes;
use hs_core::auth::{Access, Authorizer, Principal};
use hs_core::observe::{ErrorKind, MetricsObserver};
use hs_core::ops::{OpError, WatchEvent};
use hs_core::value::{Grid, Value};
use hs_core::ws::{self, ClientFrame, WsRequest, WsResponse};
use tokio::sync::OwnedSemaphorePermit;

use crate::outgoing::{
    AUTH, BATCH, CAPABILITIES, INVALID, Label, Outcome, Outcomes, Outgoing, PUSH, op_label,
};
use crate::shared::ConnShared;
use crate::state::WsServerState;
use crate::{LOG_CONN, LOG_SERVER};

/// An authenticated connection's request handling. Each data frame is
/// handled on its own task, so many requests are in flight at once and each
/// is answered as it completes.
#[derive(Clone)]
pub(crate) struct Session {
    inner: Arc<SessionInner>,
}

struct SessionInner {
    state: WsServerState,
    shared: Arc<ConnShared>,
    /// Who authenticated; `None` for anonymous clients (no auth, static
    /// token), which the authorizer does not restrict.
    principal: Option<Principal>,
}

/// A data frame's payload as received.
enum Payload {
    Text(Utf8Bytes),
    Binary(Bytes),
}

impl Session {
    pub(crate) fn new(
        state: WsServerState,
        shared: Arc<ConnShared>,
        principal: Option<Principal>,
    ) -> Self {
        Session {
            inner: Arc::new(SessionInner {
                state,
                shared,
                principal,
            }),
        }
    }

    /// Handles a text frame on its own task; `permit` is the in-flight slot,
    /// released once the answer is queued.
    pub(crate) fn handle_text(
        &self,
        text: Utf8Bytes,
        received: Instant,
        permit: OwnedSemaphorePermit,
    ) {
        self.spawn(Payload::Text(text), received, permit);
    }

    /// Handles a binary frame: UTF-8 JSON is served like text (as
    /// haystack-py does outside its binary mode); anything else gets an
    /// error grid.
    pub(crate) fn handle_binary(
        &self,
        bytes: Bytes,
        received: Instant,
        permit: OwnedSemaphorePermit,
    ) {
        self.spawn(Payload::Binary(bytes), received, permit);
    }

    fn spawn(&self, payload: Payload, received: Instant, permit: OwnedSemaphorePermit) {
        let inner = self.inner.clone();
        self.inner.state.inner.tracker.spawn(async move {
            inner.handle(payload, received).await;
            drop(permit);
        });
    }

    /// Forwards a watch event if this connection subscribed its watch.
    pub(crate) fn push(&self, event: WatchEvent) {
        let shared = &self.inner.shared;
        if !shared.watches(&event.watch_id) {
            return;
        }
        let text = ws::encode_watch(&event.watch_id, &event.grid);
        log::debug!(
            target: LOG_SERVER,
            "{}: push watch {} ({} rows, {} bytes)",
            shared.peer,
            event.watch_id,
            event.grid.rows.len(),
            text.len()
        );
        shared.enqueue(Outgoing::text(text, PUSH.into(), Outcomes::None));
    }
}

impl SessionInner {
    async fn handle(&self, payload: Payload, received: Instant) {
        let observer = &self.shared.observer;
        let (text, len) = match &payload {
            Payload::Text(text) => (text.as_str(), text.as_str().len()),
            Payload::Binary(bytes) => match std::str::from_utf8(bytes) {
                Ok(text) => (text, bytes.len()),
                Err(_) => {
                    observer.on_ws_message_recv(INVALID, bytes.len());
                    log::debug!(target: LOG_CONN, "{}: binary frame of {} bytes is not UTF-8", self.shared.peer, bytes.len());
                    self.answer_invalid(
                        None,
                        ErrorKind::BadRequest,
                        "binary frames must hold UTF-8 JSON",
                        received,
                    );
                    return;
                }
            },
        };
        if log::log_enabled!(target: LOG_CONN, log::Level::Trace) {
            log::trace!(target: LOG_CONN, "{}: recv {len} bytes: {text}", self.shared.peer);
        }
        match ws::decode_client_frame(text) {
            Ok(ClientFrame::Request(request)) => {
                observer.on_ws_message_recv(&request.op, len);
                let op = op_label(&request.op);
                let (response, outcome) = self.run(request, op.clone(), received).await;
                let text = ws::encode_response(&response);
                self.shared
                    .enqueue(Outgoing::text(text, op, Outcomes::One(outcome)));
            }
            Ok(ClientFrame::Batch(items)) => {
                observer.on_ws_message_recv(BATCH, len);
                self.run_batch(items, received).await;
            }
            Ok(ClientFrame::Capabilities(..)) => {
                observer.on_ws_message_recv(CAPABILITIES, len);
                let reply = ws::encode_capabilities_v1_reply();
                self.shared
                    .enqueue(Outgoing::text(reply, CAPABILITIES.into(), Outcomes::None));
            }
            Ok(ClientFrame::Auth(_)) => {
                observer.on_ws_message_recv(AUTH, len);
                let outcome = Outcome {
                    op: AUTH.into(),
                    received,
                    error: Some(ErrorKind::Protocol),
                };
                let grid = hs_core::codec::error_grid("unexpected authentication message");
                let response = WsResponse {
                    id: None,
                    grid,
                    ch: None,
                };
                self.shared.enqueue(Outgoing::text(
                    ws::encode_response(&response),
                    AUTH.into(),
                    Outcomes::One(outcome),
                ));
            }
            Ok(_) => {
                observer.on_ws_message_recv(INVALID, len);
                self.answer_invalid(None, ErrorKind::Protocol, "unexpected message", received);
            }
            Err(err) => {
                observer.on_ws_message_recv(INVALID, len);
                log::debug!(target: LOG_CONN, "{}: invalid frame: {err}", self.shared.peer);
                self.answer_invalid(
                    err.request_id().cloned(),
                    err.kind(),
                    &err.to_string(),
                    received,
                );
            }
        }
    }

    /// Answers an unusable frame with an error grid (carrying the request id
    /// when it could be read), counted as one failed `invalid` request.
    fn answer_invalid(
        &self,
        id: Option<serde_json::Value>,
        kind: ErrorKind,
        message: &str,
        received: Instant,
    ) {
        let response = WsResponse {
            id,
            grid: hs_core::codec::error_grid(message),
            ch: None,
        };
        let outcome = Outcome {
            op: INVALID.into(),
            received,
            error: Some(kind),
        };
        self.shared.enqueue(Outgoing::text(
            ws::encode_response(&response),
            INVALID.into(),
            Outcomes::One(outcome),
        ));
    }

    /// Runs a batch's items concurrently; one array answer in request order.
    async fn run_batch(&self, items: Vec<Result<WsRequest, ws::FrameError>>, received: Instant) {
        let max = self.state.inner.config.max_batch;
        if items.is_empty() {
            // Nothing to answer (as haystack-py does).
            return;
        }
        if items.len() > max {
            log::warn!(
                target: LOG_SERVER,
                "{}: batch of {} items refused (limit {max})",
                self.shared.peer,
                items.len()
            );
            let message = format!("batch of {} items exceeds the limit of {max}", items.len());
            let response = WsResponse {
                id: None,
                grid: hs_core::codec::error_grid(&message),
                ch: None,
            };
            let outcome = Outcome {
                op: BATCH.into(),
                received,
                error: Some(ErrorKind::TooLarge),
            };
            self.shared.enqueue(Outgoing::text(
                ws::encode_response(&response),
                BATCH.into(),
                Outcomes::One(outcome),
            ));
            return;
        }
        let runs = items.into_iter().map(|item| async move {
            match item {
                Ok(mut request) => {
                    // Batch answers never carry `ch` (PROTOCOL.md 4.5).
                    request.ch = None;
                    let op = op_label(&request.op);
                    self.run(request, op, received).await
                }
                Err(err) => {
                    let grid = hs_core::codec::error_grid(&err.to_string());
                    let response = WsResponse {
                        id: err.request_id().cloned(),
                        grid,
                        ch: None,
                    };
                    (
                        response,
                        Outcome {
                            op: INVALID.into(),
                            received,
                            error: Some(err.kind()),
                        },
                    )
                }
            }
        });
        let results = futures_util::future::join_all(runs).await;
        let mut responses = Vec::with_capacity(results.len());
        let mut outcomes = Vec::with_capacity(results.len());
        for (response, outcome) in results {
            responses.push(response);
            outcomes.push(outcome);
        }
        let text = ws::encode_responses(&responses);
        self.shared
            .enqueue(Outgoing::text(text, BATCH.into(), Outcomes::Many(outcomes)));
    }

    /// Authorises and dispatches one request; tracks the watches it opens and
    /// closes.
    async fn run(&self, request: WsRequest, op: Label, received: Instant) -> (WsResponse, Outcome) {
        let WsRequest {
            id,
            op: op_name,
            grid,
            ch,
        } = request;
        let refused = self.principal.as_ref().and_then(|principal| {
            let access = access_of(&op_name, &grid);
            let refusal = self
                .state
                .inner
                .authorizer
                .check(principal, &op_name, access)
                .err()?;
            log::warn!(
                target: LOG_SERVER,
                "{}: {op_name} refused for {} ({})",
                self.shared.peer,
                principal.username,
                principal.role.as_str()
            );
            Some(OpError::new(refusal.kind(), refusal.to_string()))
        });
        let result = match refused {
            Some(refusal) => Err(refusal),
            _ => {
                let closing_watch = (op_name == "watchUnsub")
                    .then(|| closed_watch(&grid))
                    .flatten();
                let result = hs_core::ops::dispatch(&*self.state.inner.ops, &op_name, grid).await;
                if let Ok(answer) = &result {
                    if op_name == "watchSub" {
                        if let Some(watch_id) = meta_str(answer, "watchId") {
                            self.shared.add_watch(watch_id);
                        }
                    } else if let Some(watch_id) = closing_watch {
                        self.shared.remove_watch(&watch_id);
                    }
                }
                result
            }
        };
        match result {
            Ok(grid) => {
                let error = hs_core::codec::error_message(&grid).map(|_| ErrorKind::ServerError);
                (
                    WsResponse { id, grid, ch },
                    Outcome {
                        op,
                        received,
                        error,
                    },
                )
            }
            Err(err) => {
                log::debug!(target: LOG_SERVER, "{}: {op_name} failed: {}", self.shared.peer, err.message());
                let kind = err.kind();
                (
                    WsResponse {
                        id,
                        grid: err.to_grid(),
                        ch,
                    },
                    Outcome {
                        op,
                        received,
                        error: Some(kind),
                    },
                )
            }
        }
    }
}

/// What a request does: by the op's name, except that a `pointWrite` with
/// neither `level` nor `val` only reads the priority array.
fn access_of(op: &str, grid: &Grid) -> Access {
    if op == "pointWrite" {
        let writes = grid
            .columns
            .iter()
            .any(|col| col.name == "level" || col.name == "val");
        if writes { Access::Write } else { Access::Read }
    } else {
        Access::of_op(op)
    }
}

/// The watch a `watchUnsub` request closes (meta `close` marker and
/// `watchId`), if any.
fn closed_watch(grid: &Grid) -> Option<String> {
    grid.meta.as_ref()?.get("close")?;
    meta_str(grid, "watchId")
}

fn meta_str(grid: &Grid, name: &str) -> Option<String> {
    match grid.meta.as_ref()?.get(name)? {
        Value::Str(text) => Some(text.value().to_owned()),
        _ => None,
    }
}
