use std::time::Duration;

use super::{MetricsObserver, Side, Transport};
use crate::targets;

/// Emits every event as a structured [`tracing`] event on target
/// `hs::observe`, for applications whose logs and traces go through
/// `tracing` (feature `tracing`).
///
/// | event | level | message | fields |
/// | --- | --- | --- | --- |
/// | `on_ws_connect` | INFO | `ws connect` | `peer` |
/// | `on_ws_disconnect` | INFO | `ws disconnect` | `peer` |
/// | `on_ws_message_sent` | TRACE | `ws sent` | `op`, `bytes` |
/// | `on_ws_message_recv` | TRACE | `ws recv` | `op`, `bytes` |
/// | `on_request` | DEBUG | `request` | `op`, `duration_s` (f64 seconds) |
/// | `on_error` | WARN | `error` | `op`, `error_type` |
///
/// The levels are [`LoggingObserver`](crate::LoggingObserver)'s defaults;
/// choose what to keep with the subscriber's filter
/// (`hs::observe=debug`). [`for_component`](Self::for_component) adds
/// `side` and `transport` fields to every event. With no subscriber, or
/// the level filtered out, an event costs tracing's callsite check and no
/// formatting. Inside a span (a transport's request span, say) the event
/// belongs to that span, as any `tracing` event does.
///
/// ```
/// use hs_observe::{Side, TracingObserver, Transport};
///
/// let observer = TracingObserver::new().for_component(Side::Server, Transport::Ws);
/// # let _ = observer;
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TracingObserver {
    side: Option<&'static str>,
    transport: Option<&'static str>,
}

impl TracingObserver {
    /// An observer whose events carry no component fields.
    pub const fn new() -> Self {
        TracingObserver {
            side: None,
            transport: None,
        }
    }

    /// Adds `side` (`client`/`server`) and `transport` (`http`/`ws`) fields
    /// to every event.
    #[must_use]
    pub const fn for_component(mut self, side: Side, transport: Transport) -> Self {
        self.side = Some(side.as_str());
        self.transport = Some(transport.as_str());
        self
    }
}

impl MetricsObserver for TracingObserver {
    fn on_ws_connect(&self, remote_addr: &str) {
        tracing::info!(
            target: targets::OBSERVE,
            peer = remote_addr,
            side = self.side,
            transport = self.transport,
            "ws connect"
        );
    }

    fn on_ws_disconnect(&self, remote_addr: &str) {
        tracing::info!(
            target: targets::OBSERVE,
            peer = remote_addr,
            side = self.side,
            transport = self.transport,
            "ws disconnect"
        );
    }

    fn on_ws_message_sent(&self, op: &str, byte_count: usize) {
        tracing::trace!(
            target: targets::OBSERVE,
            op,
            bytes = byte_count,
            side = self.side,
            transport = self.transport,
            "ws sent"
        );
    }

    fn on_ws_message_recv(&self, op: &str, byte_count: usize) {
        tracing::trace!(
            target: targets::OBSERVE,
            op,
            bytes = byte_count,
            side = self.side,
            transport = self.transport,
            "ws recv"
        );
    }

    fn on_request(&self, op: &str, duration: Duration) {
        tracing::debug!(
            target: targets::OBSERVE,
            op,
            duration_s = duration.as_secs_f64(),
            side = self.side,
            transport = self.transport,
            "request"
        );
    }

    fn on_error(&self, op: &str, error_type: &str) {
        tracing::warn!(
            target: targets::OBSERVE,
            op,
            error_type,
            side = self.side,
            transport = self.transport,
            "error"
        );
    }
}
