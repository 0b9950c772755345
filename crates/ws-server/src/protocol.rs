//! The message loop's protocol side: envelopes, batches, capabilities and
//! pushes, for an authenticated connection.

use hs_core::observe::targets;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::ws::Utf8Bytes;
use bytes::Bytes;
use hs_core::auth::Principal;
use hs_core::observe::labels::{OBSERVED_OPS, op_slot};
use hs_core::observe::{ErrorKind, MetricsObserver, Transport};
use hs_core::ops::{Op, OpError, OpRequest, Reply, WatchEvent, outcome_kind};
use hs_core::spans::{self, Parent};
use hs_core::value::{Grid, Value};
use hs_core::ws::{self, ClientFrame, FrameError, WsReadRequest, WsRequest, WsResponse};
use tokio::sync::OwnedSemaphorePermit;
use tracing::{Instrument, Span};

use crate::outgoing::{
    AUTH, BATCH, CAPABILITIES, INVALID, Label, Outcome, Outcomes, Outgoing, PUSH, loggable,
};
use crate::shared::ConnShared;
use crate::state::WsServerState;

/// An authenticated connection's request handling. Many requests are in
/// flight at once and each is answered as it completes: a request that may
/// take long (a batch, a large frame, an op that scans or writes) runs on its
/// own task. A small request for a cheap op ([`OpRequest::is_cheap`]) is
/// decoded and answered on the reader task itself, which saves a task spawn
/// and a cross-thread wake-up per request; should it not complete at once
/// (an `HaystackOps` that awaits I/O), it moves to its own task then.
///
/// Each request runs in a `haystack.request` span, a root linked to the
/// connection's span (`follows_from`), so that a request is a trace of its
/// own rather than one more child of a connection that lives for hours; a
/// batch's items are children of its `haystack.batch` span, itself a linked
/// root.
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
    /// The connection's span, which request and batch spans link to.
    connection: Span,
}

/// A request envelope ready to run: its grid, or a `read` already typed
/// ([`ws::decode_plain_read`]).
struct Request {
    id: Option<ws::RequestId>,
    /// The op name as observed.
    op: Label,
    /// The op, when `op` names a standard one.
    known: Option<Op>,
    body: OpRequest,
    ch: Option<String>,
}

impl From<WsRequest> for Request {
    fn from(request: WsRequest) -> Self {
        // A standard op's label is borrowed: no allocation on the hot path.
        let op = match OBSERVED_OPS.get(op_slot(&request.op)) {
            Some(known) => Label::Borrowed(known),
            None => Label::Owned(request.op),
        };
        Request {
            known: Op::from_name(&op),
            id: request.id,
            op,
            body: OpRequest::Grid(request.grid),
            ch: request.ch,
        }
    }
}

impl From<WsReadRequest> for Request {
    fn from(request: WsReadRequest) -> Self {
        Request {
            id: request.id,
            op: Label::Borrowed(Op::Read.as_str()),
            known: Some(Op::Read),
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

/// A frame, decoded: what to run, or what to answer without running
/// anything.
enum Decoded {
    Request(Request),
    Batch(Vec<Result<WsRequest, FrameError>>),
    Answer(Immediate),
}

/// An answer that runs nothing, queued as soon as its frame is decoded.
enum Immediate {
    /// The capabilities reply.
    Capabilities,
    /// An error answer, observed under `label`: an unusable frame
    /// (`invalid`), an auth message after authentication (`auth`), a batch
    /// over the limit (`batch`).
    Refused {
        label: &'static str,
        id: Option<ws::RequestId>,
        error: OpError,
    },
}

impl Session {
    pub(crate) fn new(
        state: WsServerState,
        shared: Arc<ConnShared>,
        principal: Option<Principal>,
        connection: Span,
    ) -> Self {
        Session {
            inner: Arc::new(SessionInner {
                state,
                shared,
                principal,
                connection,
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
        let len = payload.len();
        let decoded = if len <= INLINE_MAX_BYTES && !payload.is_batch() {
            match self.inner.decode(&payload) {
                Decoded::Request(request) => {
                    return self.run_request(request, len, received, permit);
                }
                Decoded::Answer(answer) => return self.inner.answer_now(answer, len, received),
                batch @ Decoded::Batch(_) => Some(batch),
            }
        } else {
            None
        };
        let inner = self.inner.clone();
        self.inner.state.inner.tracker.spawn(async move {
            let decoded = decoded.unwrap_or_else(|| inner.decode(&payload));
            inner.handle(decoded, len, received).await;
            drop(permit);
        });
    }

    /// Answers one decoded request: inline when it is cheap and completes
    /// on the first poll, else on its own task.
    fn run_request(
        &self,
        request: Request,
        len: usize,
        received: Instant,
        permit: OwnedSemaphorePermit,
    ) {
        let inner = self.inner.clone();
        let inline = request.known.is_some_and(|op| request.body.is_cheap(op));
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
            target: targets::WS_SERVER,
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

impl SessionInner {
    /// Answers a decoded frame (on its own task).
    async fn handle(&self, decoded: Decoded, len: usize, received: Instant) {
        match decoded {
            Decoded::Request(request) => self.answer(request, len, received).await,
            Decoded::Batch(items) => {
                self.shared.observer.on_ws_message_recv(BATCH, len);
                let span = spans::ws_batch(&self.shared.peer, items.len());
                self.identify(&span, true);
                self.run_batch(items, received, &span)
                    .instrument(span.clone())
                    .await;
            }
            Decoded::Answer(answer) => self.answer_now(answer, len, received),
        }
    }

    /// Queues an answer that runs nothing.
    fn answer_now(&self, answer: Immediate, len: usize, received: Instant) {
        match answer {
            Immediate::Capabilities => {
                self.shared.observer.on_ws_message_recv(CAPABILITIES, len);
                let reply = ws::encode_capabilities_v1_reply();
                self.shared
                    .enqueue(Outgoing::text(reply, CAPABILITIES.into(), Outcomes::None));
            }
            Immediate::Refused { label, id, error } => {
                self.shared.observer.on_ws_message_recv(label, len);
                let span = self.request_span(label, id.as_ref(), Parent::Root);
                let (response, outcome) =
                    respond(id, None, label.into(), received, Err(error), span);
                self.shared.enqueue(Outgoing::text(
                    ws::encode_response(&response),
                    label.into(),
                    Outcomes::One(outcome),
                ));
            }
        }
    }

    /// Decodes a frame. A plain `read` (the most common request) is decoded
    /// without building its grid.
    fn decode(&self, payload: &Payload) -> Decoded {
        let text = match payload {
            Payload::Text(text) => {
                if let Some(read) = ws::decode_plain_read(text.as_str()) {
                    self.trace_recv(text.as_str());
                    return Decoded::Request(read.into());
                }
                text.as_str()
            }
            Payload::Binary(bytes) => match std::str::from_utf8(bytes) {
                Ok(text) => text,
                Err(_) => {
                    log::debug!(target: targets::WS_CONN, "{}: binary frame of {} bytes is not UTF-8", self.shared.peer, bytes.len());
                    let error = OpError::bad_request("binary frames must hold UTF-8 JSON");
                    return Decoded::Answer(Immediate::Refused {
                        label: INVALID,
                        id: None,
                        error,
                    });
                }
            },
        };
        self.trace_recv(text);
        let max_batch = self.state.inner.config.max_batch;
        let refused = |label, id, kind, message: String| {
            let error = OpError::new(kind, message);
            Decoded::Answer(Immediate::Refused { label, id, error })
        };
        match ws::decode_client_frame_with_limit(text, max_batch) {
            Ok(ClientFrame::Request(request)) => Decoded::Request(request.into()),
            Ok(ClientFrame::Batch(items)) => Decoded::Batch(items),
            Ok(ClientFrame::Capabilities(..)) => Decoded::Answer(Immediate::Capabilities),
            Ok(ClientFrame::Auth(_)) => refused(
                AUTH,
                None,
                ErrorKind::Protocol,
                "unexpected authentication message".to_owned(),
            ),
            // Any future kind of frame is unexpected.
            Ok(_) => refused(
                INVALID,
                None,
                ErrorKind::Protocol,
                "unexpected message".to_owned(),
            ),
            Err(err @ FrameError::BatchTooLarge { .. }) => {
                log::warn!(target: targets::WS_SERVER, "{}: {err}: refused", self.shared.peer);
                refused(BATCH, None, err.kind(), err.to_string())
            }
            Err(err) => {
                log::debug!(target: targets::WS_CONN, "{}: invalid frame: {err}", self.shared.peer);
                refused(
                    INVALID,
                    err.request_id().cloned(),
                    err.kind(),
                    err.to_string(),
                )
            }
        }
    }

    fn trace_recv(&self, text: &str) {
        if log::log_enabled!(target: targets::WS_CONN, log::Level::Trace) {
            log::trace!(target: targets::WS_CONN, "{}: recv {} bytes: {}", self.shared.peer, text.len(), loggable(text));
        }
    }

    /// The span of a request of this connection (with its user), linked to
    /// the connection's span when it is a root.
    fn request_span(&self, op: &str, id: Option<&ws::RequestId>, parent: Parent<'_>) -> Span {
        let peer: &dyn std::fmt::Display = &self.shared.peer;
        let span = spans::server_request(Transport::Ws, op, Some(peer), id, parent);
        self.identify(&span, matches!(parent, Parent::Root));
        span
    }

    /// Records the connection's user on `span`, and links it to the
    /// connection's span when `link`.
    fn identify(&self, span: &Span, link: bool) {
        if span.is_disabled() {
            return;
        }
        if link {
            spans::link(span, &self.connection);
        }
        if let Some(principal) = &self.principal {
            spans::record_user(span, &principal.username);
        }
    }

    /// Runs one request and queues its answer, in the request's span.
    async fn answer(&self, request: Request, len: usize, received: Instant) {
        self.shared.observer.on_ws_message_recv(&request.op, len);
        let span = self.request_span(&request.op, request.id.as_ref(), Parent::Root);
        self.answer_in(request, received, span.clone())
            .instrument(span)
            .await;
    }

    async fn answer_in(&self, request: Request, received: Instant, span: Span) {
        let op = request.op.clone();
        let (response, outcome) = self.run(request, received, span).await;
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
            log::warn!(target: targets::WS_SERVER, "{}: {label} {why}", shared.peer);
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

    /// Runs a batch's items concurrently, each in a request span under
    /// `batch`; one array answer in request order.
    async fn run_batch(
        &self,
        items: Vec<Result<WsRequest, FrameError>>,
        received: Instant,
        batch: &Span,
    ) {
        if items.is_empty() {
            // Nothing to answer (as haystack-py does).
            return;
        }
        let runs = items.into_iter().map(|item| async move {
            match item {
                Ok(mut request) => {
                    // Batch answers never carry `ch` (docs/protocol.md 4.5).
                    request.ch = None;
                    let request = Request::from(request);
                    let span =
                        self.request_span(&request.op, request.id.as_ref(), Parent::Span(batch));
                    self.run(request, received, span.clone())
                        .instrument(span)
                        .await
                }
                Err(err) => {
                    let error = OpError::new(err.kind(), err.to_string());
                    let id = err.request_id().cloned();
                    let span = self.request_span(INVALID, id.as_ref(), Parent::Span(batch));
                    respond(id, None, INVALID.into(), received, Err(error), span)
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

    /// Runs one request through the server's pipeline, with this
    /// connection's watch bookkeeping around it; `span` is the request's.
    async fn run(&self, request: Request, received: Instant, span: Span) -> (WsResponse, Outcome) {
        let Request {
            id,
            op,
            known,
            body,
            ch,
        } = request;
        let result = match self
            .state
            .inner
            .pipeline
            .authorize(&op, &body, self.principal.as_ref())
        {
            Ok(()) => self.dispatch(&op, known, body).await,
            Err(refusal) => Err(refusal),
        };
        if let Err(error) = &result {
            log::debug!(target: targets::WS_SERVER, "{}: {op} failed: {}", self.shared.peer, error.message());
        }
        respond(id, ch, op, received, result, span)
    }

    /// Dispatches an authorised request; tracks the watches it opens and
    /// closes, within the connection's limit.
    async fn dispatch(
        &self,
        op: &str,
        known: Option<Op>,
        body: OpRequest,
    ) -> Result<Reply, OpError> {
        let pipeline = &self.state.inner.pipeline;
        let user = self.principal.as_ref().map(|p| p.username.as_str());
        match known {
            Some(Op::WatchSub) => {
                let max = self.state.inner.config.max_watches_per_connection;
                let named = body.as_grid().and_then(|grid| meta_str(grid, "watchId"));
                if !self.shared.reserve_watch(named.as_deref(), max) {
                    return Err(self.watch_limit_refusal(max));
                }
                let result = pipeline.dispatch(op, body, user).await;
                let subscribed = result
                    .as_ref()
                    .ok()
                    .and_then(|answer| answer.as_grid().and_then(|grid| meta_str(grid, "watchId")));
                match subscribed {
                    Some(watch_id) => self.subscribed(watch_id).await,
                    None => self.shared.unreserve_watch(),
                }
                result
            }
            Some(Op::WatchUnsub) => {
                let closing = body.as_grid().and_then(closed_watch);
                let result = pipeline.dispatch(op, body, user).await;
                if let (Ok(_), Some(watch_id)) = (&result, closing) {
                    self.shared.remove_watch(&watch_id);
                }
                result
            }
            _ => pipeline.dispatch(op, body, user).await,
        }
    }
}

/// A request's answer and how it ended: the one place both are made from
/// its result.
fn respond(
    id: Option<ws::RequestId>,
    ch: Option<String>,
    op: Label,
    received: Instant,
    result: Result<Reply, OpError>,
    span: Span,
) -> (WsResponse, Outcome) {
    let error = outcome_kind(&result);
    let grid = result.unwrap_or_else(|error| error.to_grid().into());
    (
        WsResponse { id, grid, ch },
        Outcome {
            op,
            received,
            error,
            span,
        },
    )
}

impl SessionInner {
    /// Tracks a watch this connection subscribed, and has its changes pushed.
    async fn subscribed(&self, watch_id: String) {
        let ops = self.state.inner.pipeline.ops();
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
            target: targets::WS_SERVER,
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
