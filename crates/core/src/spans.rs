//! The `tracing` spans the servers open, made here so that both servers
//! (and, for the clients, the same names) keep one contract. Every span is
//! on target [`targets::SPAN`] (`hs::span`).
//!
//! | span | level | made by | fields |
//! | --- | --- | --- | --- |
//! | [`REQUEST`] `haystack.request` | INFO | [`server_request`]: one per request, both servers | `otel.name` and `rpc.method` (the op label), `otel.kind = "server"`, `rpc.system = "haystack"`, `hs.side = "server"`, `hs.transport`, `network.peer.address`, `hs.request_id` (WebSocket envelope id), then `enduser.id`, `hs.outcome`, `error.type`, `otel.status_code` |
//! | [`BATCH`] `haystack.batch` | INFO | [`ws_batch`]: a WebSocket batch, its items' request spans its children | `otel.name = rpc.method = "batch"`, `otel.kind`, `rpc.system`, `hs.side`, `hs.transport`, `network.peer.address`, `hs.batch.size`, `enduser.id` |
//! | [`CONNECTION`] `haystack.ws.connection` | INFO | [`ws_connection`]: a WebSocket connection's life | `otel.kind`, `hs.side`, `hs.transport`, `network.peer.address`, then `enduser.id` |
//! | [`AUTH`] `haystack.auth` | INFO | [`auth`]: a WebSocket connection's authentication phase | `otel.kind`, `rpc.system`, `rpc.method = "auth"`, `hs.side`, `hs.transport`, `network.peer.address`, then `enduser.id`, `hs.outcome`, `error.type`, `otel.status_code` |
//! | [`DISPATCH`] `haystack.dispatch` | DEBUG | [`Pipeline::dispatch`](crate::ops::Pipeline::dispatch): the op's own work, in the request span | `rpc.method` |
//!
//! Every field recorded after a span is made is declared
//! [`Empty`](tracing::field::Empty) when it is made. The `record_*`
//! functions do nothing on a disabled span (no subscriber, or filtered
//! out), so the servers call them unconditionally and a disabled span
//! costs no formatting and no allocation.

#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub mod testing;

use std::borrow::Cow;
use std::fmt::Display;

use tracing::{Level, Span, field};

use crate::observe::labels::{self, Transport};
use crate::observe::{ErrorKind, targets};
use crate::ws::RequestId;

/// The name of a request's span.
pub const REQUEST: &str = "haystack.request";
/// The name of a WebSocket batch's span.
pub const BATCH: &str = "haystack.batch";
/// The name of a WebSocket connection's span.
pub const CONNECTION: &str = "haystack.ws.connection";
/// The name of a WebSocket connection's authentication phase.
pub const AUTH: &str = "haystack.auth";
/// The name of the span of an op's own work ([`Pipeline::dispatch`](crate::ops::Pipeline::dispatch)).
pub const DISPATCH: &str = "haystack.dispatch";

/// Where a new span sits in its trace.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Parent<'a> {
    /// Under the span current where it is made (for an HTTP request, a span
    /// the application's own layers opened around the router, if any).
    Current,
    /// A root: a trace of its own (WebSocket requests and batches, linked to
    /// their connection's span instead).
    Root,
    /// Under this span (a batch's items).
    Span(&'a Span),
}

/// A server's span of one request: `op` is the observer's op label
/// (`invalid` for garbage; a name outside the observed ops is recorded as
/// `_other`, as the metrics count it), `peer` the client's `ip:port`, `request_id` the
/// WebSocket envelope's id. The outcome is recorded at the end with
/// [`record_outcome`], the principal with [`record_user`] once known.
pub fn server_request(
    transport: Transport,
    op: &str,
    peer: Option<&dyn Display>,
    request_id: Option<&RequestId>,
    parent: Parent<'_>,
) -> Span {
    // A string id is recorded as its text, any other as its JSON.
    let id_text = |id: &RequestId| {
        field::display(
            id.as_str()
                .unwrap_or(Cow::Borrowed(id.as_json()))
                .into_owned(),
        )
    };
    macro_rules! request_span {
        ($($parent:tt)*) => {
            tracing::info_span!(
                target: targets::SPAN,
                $($parent)*
                REQUEST,
                otel.name = bounded(op),
                otel.kind = "server",
                rpc.system = "haystack",
                rpc.method = bounded(op),
                hs.side = "server",
                hs.transport = transport.as_str(),
                network.peer.address = peer.map(field::display),
                hs.request_id = request_id.map(id_text),
                enduser.id = field::Empty,
                hs.outcome = field::Empty,
                error.type = field::Empty,
                otel.status_code = field::Empty,
            )
        };
    }
    match parent {
        Parent::Current => request_span!(),
        Parent::Root => request_span!(parent: None,),
        Parent::Span(parent) => request_span!(parent: parent,),
    }
}

/// A WebSocket batch's span (a root, like a request's): its items' request
/// spans are made with [`Parent::Span`] of it.
pub fn ws_batch(peer: &str, size: usize) -> Span {
    tracing::info_span!(
        target: targets::SPAN,
        parent: None,
        BATCH,
        otel.name = crate::observe::labels::BATCH,
        otel.kind = "server",
        rpc.system = "haystack",
        rpc.method = crate::observe::labels::BATCH,
        hs.side = "server",
        hs.transport = Transport::Ws.as_str(),
        network.peer.address = peer,
        hs.batch.size = size,
        enduser.id = field::Empty,
    )
}

/// A WebSocket connection's span, from the upgrade to the closing
/// handshake; [`record_user`] once authenticated.
pub fn ws_connection(peer: &str) -> Span {
    tracing::info_span!(
        target: targets::SPAN,
        CONNECTION,
        otel.kind = "server",
        hs.side = "server",
        hs.transport = Transport::Ws.as_str(),
        network.peer.address = peer,
        enduser.id = field::Empty,
    )
}

/// A connection's authentication phase, under the span current where it is
/// made (the connection's); ended with [`record_outcome`].
pub fn auth(transport: Transport, peer: &str) -> Span {
    tracing::info_span!(
        target: targets::SPAN,
        AUTH,
        otel.kind = "server",
        rpc.system = "haystack",
        rpc.method = crate::observe::labels::AUTH,
        hs.side = "server",
        hs.transport = transport.as_str(),
        network.peer.address = peer,
        enduser.id = field::Empty,
        hs.outcome = field::Empty,
        error.type = field::Empty,
        otel.status_code = field::Empty,
    )
}

/// A client's span of one request, under the span current where it is made
/// (the application's, or a batch's for its items): the server's fields
/// with `otel.kind = "client"` and `hs.side = "client"`, and no peer
/// address; `hs.request_id` is recorded once the WebSocket envelope's id is
/// chosen, the outcome at the end with [`record_outcome`].
pub fn client_request(transport: Transport, op: &str) -> Span {
    tracing::info_span!(
        target: targets::SPAN,
        REQUEST,
        otel.name = bounded(op),
        otel.kind = "client",
        rpc.system = "haystack",
        rpc.method = bounded(op),
        hs.side = "client",
        hs.transport = transport.as_str(),
        hs.request_id = field::Empty,
        hs.outcome = field::Empty,
        error.type = field::Empty,
        otel.status_code = field::Empty,
    )
}

/// A WebSocket client's span of a batch, under the current span; its items'
/// [`client_request`] spans are made inside it.
pub fn client_batch(size: usize) -> Span {
    tracing::info_span!(
        target: targets::SPAN,
        BATCH,
        otel.name = crate::observe::labels::BATCH,
        otel.kind = "client",
        rpc.system = "haystack",
        rpc.method = crate::observe::labels::BATCH,
        hs.side = "client",
        hs.transport = Transport::Ws.as_str(),
        hs.batch.size = size,
    )
}

/// Records a WebSocket request's envelope id.
pub fn record_request_id(span: &Span, id: u32) {
    if !span.is_disabled() {
        span.record("hs.request_id", id);
    }
}

/// An op label from a fixed list (`_other` for a name outside it), so that
/// span names stay few whatever a peer sends.
fn bounded(op: &str) -> &'static str {
    labels::op_label(labels::op_slot(op))
}

/// The span of an op's own work, under the request's.
pub(crate) fn dispatch(op: &str) -> Span {
    tracing::debug_span!(target: targets::SPAN, DISPATCH, rpc.method = bounded(op))
}

/// Records how a request ended: `hs.outcome = "ok"`, or `"error"` with
/// `error.type` (the [`ErrorKind`] name) and `otel.status_code = "ERROR"`.
pub fn record_outcome(span: &Span, error: Option<ErrorKind>) {
    if span.is_disabled() {
        return;
    }
    match error {
        None => {
            span.record("hs.outcome", "ok");
        }
        Some(kind) => {
            span.record("hs.outcome", "error");
            span.record("error.type", kind.as_str());
            span.record("otel.status_code", "ERROR");
        }
    }
}

/// Records the authenticated user as `enduser.id`.
pub fn record_user(span: &Span, user: &str) {
    if !span.is_disabled() {
        span.record("enduser.id", user);
    }
}

/// Records the user on the current span, when spans at INFO can be enabled
/// at all (a check of tracing's global level hint first, so that without a
/// subscriber this costs one load).
pub fn record_user_on_current(user: &str) {
    if tracing::level_enabled!(Level::INFO) {
        record_user(&Span::current(), user);
    }
}

/// Renames a request span's op (`otel.name`, `rpc.method`): an HTTP request
/// that turned out to be an authentication step is observed as `auth`.
pub fn record_op(span: &Span, op: &str) {
    if !span.is_disabled() {
        span.record("otel.name", bounded(op));
        span.record("rpc.method", bounded(op));
    }
}

/// Links `span` to `from` (a WebSocket request or batch to its connection):
/// a `follows_from` relation, an OpenTelemetry link through
/// `tracing-opentelemetry`.
pub fn link(span: &Span, from: &Span) {
    if !span.is_disabled() {
        span.follows_from(from);
    }
}
