//! The `tracing` span of a client request, the same on both transports.

use tracing::Span;
use tracing::field::Empty;

use crate::observe::ErrorKind;

/// The span of one request a client makes: `haystack.request` at INFO,
/// named and attributed after the OpenTelemetry RPC conventions so that
/// `tracing-opentelemetry` exports it as a client span.
///
/// | field | value |
/// | --- | --- |
/// | `otel.name`, `rpc.method` | the op (`read`, ...) |
/// | `otel.kind` | `client` |
/// | `rpc.system` | `haystack` |
/// | `hs.side`, `hs.transport` | `client`; `http` or `ws` |
/// | `hs.request_id` | the WebSocket envelope's `id` (recorded when sent) |
/// | `hs.outcome` | `ok` or `error`, recorded at the end |
/// | `error.type`, `otel.status_code` | the [`ErrorKind`] name and `ERROR`, on errors |
///
/// Without a subscriber that wants it, the span is disabled and costs a
/// callsite check.
pub fn request_span(transport: &'static str, op: &str) -> Span {
    tracing::info_span!(
        "haystack.request",
        otel.name = op,
        otel.kind = "client",
        rpc.system = "haystack",
        rpc.method = op,
        hs.side = "client",
        hs.transport = transport,
        hs.request_id = Empty,
        hs.outcome = Empty,
        error.type = Empty,
        otel.status_code = Empty,
    )
}

/// The span of a WebSocket batch: `haystack.batch` at INFO; its items'
/// [`request_span`]s are its children.
pub fn batch_span(items: usize) -> Span {
    tracing::info_span!(
        "haystack.batch",
        otel.kind = "client",
        hs.side = "client",
        hs.transport = "ws",
        hs.batch_size = items,
    )
}

/// Records how a request ended on its span: `None` for a response, else
/// the error's kind.
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
