//! The message loop's protocol side: envelopes, batches, capabilities and
//! pushes, for an authenticated connection.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::ws::Utf8Bytes;
use bytes::Bytes;
use hs_core::auth::{Authorizer, Principal};
use hs_core::observe::{ErrorKind, MetricsObserver};
use hs_core::ops::{OpError, OpRequest, ReadRequest, WatchEvent};
use hs_core::value::{Grid, Value};
use hs_core::ws::{self, ClientFrame, WsReadRequest, WsRequest, WsResponse};
use tokio::sync::OwnedSemaphorePermit;

use crate::outgoing::{
    AUTH, BATCH, CAPABILITIES, INVALID, Label, Outcome, Outcomes, Outgoing, PUSH, loggable,
    op_label,
};
use crate::shared::ConnShared;
use crate::state::WsServerState;
use crate::{LOG_CONN, LOG_SERVER};

/// An authenticated connection's request handling. Many requests are in
/// flight at once and each is answered as it completes: a request that may
/// take long (a batch, a large frame, an op that scans or writes) runs on its
/// own task. A small request for a cheap op (see [`runs_inline`]) is decoded
/// and answered on the reader task itself, which saves a task spawn and a
/// cross-thread wake-up per request; should it not complete at once (an
/// `HaystackOps` that awaits I/O), it moves to its own task then.
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

/// A request envelope ready to run: its grid, or a `read` already typed
/// ([`ws::decode_plain_read`]).
struct Request {
    id: Option<ws::RequestId>,
    op: Cow<'static, str>,
    body: OpRequest,
    ch: Option<String>,
}

impl From<WsRequest> for Request {
    fn from(request: WsRequest) -> Self {
        Request {
            id: request.id,
            op: Cow::Owned(request.op),
            body: OpRequest::Grid(request.grid),
            ch: request.ch,
        }
    }
}

impl From<WsReadRequest> for Request {
    fn from(request: WsReadRequest) -> Self {
        Request {
            id: request.id,
            op: Cow::Borrowed("read"),
            body: OpRequest::Read(request.read),
            ch: request.ch,
        }
    }
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
        if payload.len() <= INLINE_MAX_BYTES && !payload.is_batch() {
            if let Some(request) = self.inner.decode(&payload, received) {
                self.run_request(request, payload.len(), received, permit);
            }
            return;
        }
        let inner = self.inner.clone();
        self.inner.state.inner.tracker.spawn(async move {
            inner.handle(payload, received).await;
            drop(permit);
        });
    }

    /// Answers one decoded request: inline when its op is cheap and it
    /// completes on the first poll, else on its own task.
    fn run_request(
        &self,
        request: Request,
        len: usize,
        received: Instant,
        permit: OwnedSemaphorePermit,
    ) {
        let inner = self.inner.clone();
        let inline = runs_inline(&request);
        let mut task = Box::pin(async move {
            inner.answer(request, len, received).await;
            drop(permit);
        });
        if inline && futures_util::FutureExt::now_or_never(&mut task).is_some() {
            return;
        }
        // Polling again on the task registers the task's own waker.
        self.inner.state.inner.tracker.spawn(task);
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

impl Payload {
    fn len(&self) -> usize {
        match self {
            Payload::Text(text) => text.as_str().len(),
            Payload::Binary(bytes) => bytes.len(),
        }
    }

    /// Whether the frame is a JSON array (a batch), judged as
    /// [`ws::decode_client_frame`] does: by its first non-whitespace
    /// character.
    fn is_batch(&self) -> bool {
        let text = match self {
            Payload::Text(text) => text.as_str(),
            Payload::Binary(bytes) => std::str::from_utf8(bytes).unwrap_or_default(),
        };
        text.trim_start().starts_with('[')
    }
}

/// Largest frame decoded on the reader task; larger ones are decoded on
/// their own task so that other frames keep being read meanwhile.
const INLINE_MAX_BYTES: usize = 16 * 1024;

/// Most ids a `read` may ask for and still run on the reader task.
const INLINE_MAX_IDS: usize = 16;

/// Whether a request is cheap enough to run on the reader task: `about`,
/// `ops`, `formats`, `close`, and a `read` of a few ids, by id list or by a
/// filter that names them (`id==@x`: lookups, no scan). Other filter reads,
/// history, writes, watches and actions get their own task.
fn runs_inline(request: &Request) -> bool {
    match (request.op.as_ref(), &request.body) {
        ("about" | "ops" | "formats" | "close", _) => true,
        ("read", OpRequest::Read(ReadRequest::Ids(ids))) => ids.len() <= INLINE_MAX_IDS,
        ("read", OpRequest::Read(ReadRequest::Filter { filter, .. })) => filter
            .id_bound()
            .is_some_and(|bound| bound <= INLINE_MAX_IDS),
        ("read", OpRequest::Grid(grid)) => {
            grid.rows.len() <= INLINE_MAX_IDS && grid.columns.iter().any(|col| col.name == "id")
        }
        _ => false,
    }
}

impl SessionInner {
    /// Handles a frame of any kind (on its own task).
    async fn handle(&self, payload: Payload, received: Instant) {
        let len = payload.len();
        if let Some(frame) = self.decode_frame(&payload, received) {
            match frame {
                ClientFrame::Request(request) => self.answer(request.into(), len, received).await,
                ClientFrame::Batch(items) => {
                    self.shared.observer.on_ws_message_recv(BATCH, len);
                    self.run_batch(items, received).await;
                }
                other => self.answer_other(other, len, received),
            }
        }
    }

    /// Decodes a frame that is not a batch: a request is returned, anything
    /// else is answered here. A plain `read` (the most common request) is
    /// decoded without building its grid.
    fn decode(&self, payload: &Payload, received: Instant) -> Option<Request> {
        if let Payload::Text(text) = payload {
            if let Some(read) = ws::decode_plain_read(text.as_str()) {
                self.trace_recv(text.as_str());
                return Some(read.into());
            }
        }
        match self.decode_frame(payload, received)? {
            ClientFrame::Request(request) => Some(request.into()),
            other => {
                self.answer_other(other, payload.len(), received);
                None
            }
        }
    }

    fn trace_recv(&self, text: &str) {
        if log::log_enabled!(target: LOG_CONN, log::Level::Trace) {
            log::trace!(target: LOG_CONN, "{}: recv {} bytes: {}", self.shared.peer, text.len(), loggable(text));
        }
    }

    /// Decodes a frame; a frame that cannot be decoded is answered with an
    /// error grid and `None` returned.
    fn decode_frame(&self, payload: &Payload, received: Instant) -> Option<ClientFrame> {
        let observer = &self.shared.observer;
        let (text, len) = match payload {
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
                    return None;
                }
            },
        };
        self.trace_recv(text);
        match ws::decode_client_frame(text) {
            Ok(frame) => Some(frame),
            Err(err) => {
                observer.on_ws_message_recv(INVALID, len);
                log::debug!(target: LOG_CONN, "{}: invalid frame: {err}", self.shared.peer);
                self.answer_invalid(
                    err.request_id().cloned(),
                    err.kind(),
                    &err.to_string(),
                    received,
                );
                None
            }
        }
    }

    /// Runs one request and queues its answer.
    async fn answer(&self, request: Request, len: usize, received: Instant) {
        self.shared.observer.on_ws_message_recv(&request.op, len);
        let op = op_label(&request.op);
        let (response, outcome) = self.run(request, op.clone(), received).await;
        self.send_answer(
            response.size_hint(),
            || ws::encode_response(&response),
            |refusal| {
                let error = OpError::new(ErrorKind::TooLarge, refusal);
                ws::encode_response(&WsResponse::error(
                    response.id.clone(),
                    response.ch.clone(),
                    &error,
                ))
            },
            op,
            Outcomes::One(outcome),
        )
        .await;
    }

    /// Queues an answer within the connection's send budget: its estimated
    /// size is reserved before it is encoded (waiting while the peer reads),
    /// then the reservation is fitted to its real size. An answer larger
    /// than the whole budget is replaced by `too_large(why)`, an error
    /// envelope.
    async fn send_answer(
        &self,
        size_hint: usize,
        encode: impl FnOnce() -> String,
        too_large: impl FnOnce(String) -> String,
        label: Label,
        mut outcomes: Outcomes,
    ) {
        let shared = &self.shared;
        let limit = shared.budget.limit();
        let Some(mut reserved) = shared.reserve(size_hint.min(limit)).await else {
            outcomes.report(&shared.observer, Some(shared.lost()));
            return;
        };
        let mut text = encode();
        if text.len() > limit {
            let why = format!(
                "answer of {} bytes exceeds the connection's send budget of {limit} bytes",
                text.len()
            );
            log::warn!(target: LOG_SERVER, "{}: {label} {why}", shared.peer);
            text = too_large(why);
            outcomes.fail(ErrorKind::TooLarge);
        }
        let len = text.len();
        if len <= reserved.bytes() {
            reserved.shrink_to(len);
        } else if let Some(more) = shared.try_reserve(len - reserved.bytes()) {
            reserved.merge(more);
        } else {
            // Never wait holding bytes: two answers doing so could each
            // wait for the other's.
            drop(reserved);
            match shared.reserve(len).await {
                Some(all) => reserved = all,
                None => {
                    outcomes.report(&shared.observer, Some(shared.lost()));
                    return;
                }
            }
        }
        let mut out = Outgoing::text(text, label, outcomes);
        out.reserved = Some(reserved);
        shared.enqueue(out);
    }

    /// Answers the frames that are neither requests nor batches.
    fn answer_other(&self, frame: ClientFrame, len: usize, received: Instant) {
        let observer = &self.shared.observer;
        match frame {
            ClientFrame::Capabilities(..) => {
                observer.on_ws_message_recv(CAPABILITIES, len);
                let reply = ws::encode_capabilities_v1_reply();
                self.shared
                    .enqueue(Outgoing::text(reply, CAPABILITIES.into(), Outcomes::None));
            }
            ClientFrame::Auth(_) => {
                observer.on_ws_message_recv(AUTH, len);
                let outcome = Outcome {
                    op: AUTH.into(),
                    received,
                    error: Some(ErrorKind::Protocol),
                };
                let error = OpError::new(ErrorKind::Protocol, "unexpected authentication message");
                let response = WsResponse::error(None, None, &error);
                self.shared.enqueue(Outgoing::text(
                    ws::encode_response(&response),
                    AUTH.into(),
                    Outcomes::One(outcome),
                ));
            }
            // A request or batch is never passed here; any future kind of
            // frame is unexpected.
            _ => {
                observer.on_ws_message_recv(INVALID, len);
                self.answer_invalid(None, ErrorKind::Protocol, "unexpected message", received);
            }
        }
    }

    /// Answers an unusable frame with an error grid (carrying the request id
    /// when it could be read), counted as one failed `invalid` request.
    fn answer_invalid(
        &self,
        id: Option<ws::RequestId>,
        kind: ErrorKind,
        message: &str,
        received: Instant,
    ) {
        let response = WsResponse::error(id, None, &OpError::new(kind, message));
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
            let response =
                WsResponse::error(None, None, &OpError::new(ErrorKind::TooLarge, message));
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
                    self.run(request.into(), op, received).await
                }
                Err(err) => {
                    let error = OpError::new(err.kind(), err.to_string());
                    let response = WsResponse::error(err.request_id().cloned(), None, &error);
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
        let size_hint = responses.iter().map(WsResponse::size_hint).sum();
        self.send_answer(
            size_hint,
            || ws::encode_responses(&responses),
            |refusal| {
                let error = OpError::new(ErrorKind::TooLarge, refusal);
                ws::encode_response(&WsResponse::error(None, None, &error))
            },
            BATCH.into(),
            Outcomes::Many(outcomes),
        )
        .await;
    }

    /// Authorises and dispatches one request; tracks the watches it opens and
    /// closes.
    async fn run(&self, request: Request, op: Label, received: Instant) -> (WsResponse, Outcome) {
        let Request {
            id,
            op: op_name,
            body,
            ch,
        } = request;
        let refused = self.principal.as_ref().and_then(|principal| {
            let access = body.access(&op_name);
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
        let watch_sub = op_name == "watchSub";
        let refused = refused.or_else(|| {
            if !watch_sub {
                return None;
            }
            let max = self.state.inner.config.max_watches_per_connection;
            let named = body.as_grid().and_then(|grid| meta_str(grid, "watchId"));
            (!self.shared.reserve_watch(named.as_deref(), max))
                .then(|| self.watch_limit_refusal(max))
        });
        let result = match refused {
            Some(refusal) => Err(refusal),
            _ => {
                let closing_watch = (op_name == "watchUnsub")
                    .then(|| body.as_grid().and_then(closed_watch))
                    .flatten();
                let user = self.principal.as_ref().map(|p| p.username.as_str());
                let ops = &*self.state.inner.ops;
                let result = hs_core::ops::dispatch_as(ops, &op_name, body, user).await;
                let subscribed = watch_sub
                    .then(|| result.as_ref().ok())
                    .flatten()
                    .and_then(|answer| answer.as_grid().and_then(|grid| meta_str(grid, "watchId")));
                if let Some(watch_id) = subscribed {
                    self.subscribed(watch_id).await;
                } else if watch_sub {
                    self.shared.unreserve_watch();
                } else if let (Ok(_), Some(watch_id)) = (&result, closing_watch) {
                    self.shared.remove_watch(&watch_id);
                }
                result
            }
        };
        match result {
            Ok(grid) => {
                let error = grid.error_message().map(|_| ErrorKind::ServerError);
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
                        grid: err.to_grid().into(),
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

impl SessionInner {
    /// Tracks a watch this connection subscribed, and has its changes pushed.
    async fn subscribed(&self, watch_id: String) {
        let ops = &*self.state.inner.ops;
        if self.state.inner.config.push {
            ops.watch_attach(&watch_id, &self.shared.inbox);
        }
        self.shared.add_watch(watch_id.clone());
        // The connection ended while this watchSub ran: its watches were
        // released already, or are being released, without this one.
        if self.shared.cancel.is_cancelled() {
            ops.watch_release(&watch_id, &self.shared.inbox).await;
        }
    }

    /// The error of a `watchSub` past the connection's limit.
    fn watch_limit_refusal(&self, max: usize) -> OpError {
        log::warn!(
            target: LOG_SERVER,
            "{}: watchSub refused: the connection holds {max} watches, its limit",
            self.shared.peer
        );
        OpError::new(
            ErrorKind::Overloaded,
            format!(
                "watchSub refused: this connection already holds {max} watches, the limit per connection (hs serve --max-watches-per-connection); close unused watches with watchUnsub"
            ),
        )
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
