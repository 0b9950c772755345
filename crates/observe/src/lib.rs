//! The observer framework: one trait, [`MetricsObserver`], that sees every
//! connection, message, request and error on every hs transport.
//!
//! Transports never call an observer bare: they hold a [`GuardedObserver`],
//! which isolates panics (see [`GuardedObserver`] for the guarantees and
//! their limits). The user guide is `docs/observability.md`.
//!
//! | type | job |
//! | --- | --- |
//! | [`MetricsObserver`] | the trait: six events, all with no-op defaults |
//! | [`NoopObserver`] / [`noop()`] | ignores everything; every transport's default |
//! | [`GuardedObserver`] | the one guarded dispatch path every transport calls |
//! | [`FnObserver`] | an observer built from closures |
//! | [`CompositeObserver`] | fans events out to many observers, each isolated |
//! | [`LoggingObserver`] | every event as a `log` line on target `hs::observe` |
//! | [`StatsObserver`] | lock-free counters and latency histograms, with a printable snapshot |
//! | `RecordingObserver` | records every event in order, for tests (feature `test-util`) |
//! | `LogCapture` | a `log` logger keeping every line, for tests of the log targets (feature `test-util`) |
//! | `TracingObserver` | every event as a structured `tracing` event on target `hs::observe` (feature `tracing`) |
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use hs_observe::{CompositeObserver, LoggingObserver, MetricsObserver, StatsObserver};
//!
//! let stats = Arc::new(StatsObserver::new());
//! let observer = CompositeObserver::builder()
//!     .with(LoggingObserver::new())
//!     .with_arc(stats.clone())
//!     .build();
//! observer.on_request("read", Duration::from_millis(3));
//! assert_eq!(stats.snapshot().op("read").unwrap().requests, 1);
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]

mod composite;
mod error_kind;
mod fn_observer;
mod guard;
pub mod labels;
#[cfg(any(test, feature = "test-util"))]
mod log_capture;
mod logging;
#[cfg(any(test, feature = "test-util"))]
mod recording;
mod stats;
pub mod targets;
#[cfg(feature = "tracing")]
mod tracing_observer;

pub use composite::{CompositeObserver, CompositeObserverBuilder};
pub use error_kind::ErrorKind;
pub use fn_observer::FnObserver;
pub use guard::GuardedObserver;
pub use labels::{OBSERVED_OPS, Side, Transport};
#[cfg(any(test, feature = "test-util"))]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub use log_capture::LogCapture;
pub use logging::LoggingObserver;
#[cfg(any(test, feature = "test-util"))]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub use recording::{RecordedEvent, RecordingObserver};
pub use stats::{LatencySummary, OpStats, StatsObserver, StatsSnapshot};
#[cfg(feature = "tracing")]
#[cfg_attr(docsrs, doc(cfg(feature = "tracing")))]
pub use tracing_observer::TracingObserver;

use std::sync::Arc;
use std::time::Duration;

/// Receives the six transport events of the hs event contract.
///
/// Every method has a no-op default, so implement only the events you need;
/// a new event added later is never a breaking change.
///
/// | event | fired |
/// | --- | --- |
/// | [`on_ws_connect`](Self::on_ws_connect) | once, when a WebSocket upgrade completes (before auth) |
/// | [`on_ws_disconnect`](Self::on_ws_disconnect) | exactly once for each connect, whatever ends it |
/// | [`on_ws_message_sent`](Self::on_ws_message_sent) / [`on_ws_message_recv`](Self::on_ws_message_recv) | once per data frame (never ping/pong) |
/// | [`on_request`](Self::on_request) | once per request that ended with a non-error response |
/// | [`on_error`](Self::on_error) | once per request that failed |
///
/// Each request ends in exactly one of `on_request` and `on_error`.
/// Implementations must be cheap and must not block: they run on the
/// transport's task, on the hot path.
pub trait MetricsObserver: Send + Sync {
    /// A WebSocket connection was established (upgrade complete, before
    /// auth). `remote_addr` is the peer `ip:port` on a server and the URL on
    /// a client.
    fn on_ws_connect(&self, remote_addr: &str) {
        let _ = remote_addr;
    }

    /// A WebSocket connection ended, for whatever reason. Fired exactly once
    /// per [`on_ws_connect`](Self::on_ws_connect), with the same string.
    fn on_ws_disconnect(&self, remote_addr: &str) {
        let _ = remote_addr;
    }

    /// A WebSocket data frame was sent. `op` is the Haystack op name, or
    /// `batch`, `push`, `auth`; `byte_count` is the frame's payload length.
    fn on_ws_message_sent(&self, op: &str, byte_count: usize) {
        let _ = (op, byte_count);
    }

    /// A WebSocket data frame was received. `op` is the Haystack op name, or
    /// `batch`, `push`, `auth`, or `invalid` for an unparseable frame;
    /// `byte_count` is the frame's payload length.
    fn on_ws_message_recv(&self, op: &str, byte_count: usize) {
        let _ = (op, byte_count);
    }

    /// A request ended with a non-error response after `duration` (monotonic;
    /// client: send to decoded response; server: receipt to response written).
    fn on_request(&self, op: &str, duration: Duration) {
        let _ = (op, duration);
    }

    /// A request failed. `error_type` is one of the stable
    /// [`ErrorKind::as_str`] names.
    fn on_error(&self, op: &str, error_type: &str) {
        let _ = (op, error_type);
    }

    /// The name logged when this observer panics. Defaults to the concrete
    /// type's name; wrappers forward it to what they wrap.
    fn observer_name(&self) -> &'static str {
        std::any::type_name::<Self>()
    }
}

macro_rules! forward_observer {
    ($($ty:ty),*) => {$(
        impl<T: MetricsObserver + ?Sized> MetricsObserver for $ty {
            #[inline]
            fn on_ws_connect(&self, remote_addr: &str) {
                (**self).on_ws_connect(remote_addr)
            }
            #[inline]
            fn on_ws_disconnect(&self, remote_addr: &str) {
                (**self).on_ws_disconnect(remote_addr)
            }
            #[inline]
            fn on_ws_message_sent(&self, op: &str, byte_count: usize) {
                (**self).on_ws_message_sent(op, byte_count)
            }
            #[inline]
            fn on_ws_message_recv(&self, op: &str, byte_count: usize) {
                (**self).on_ws_message_recv(op, byte_count)
            }
            #[inline]
            fn on_request(&self, op: &str, duration: Duration) {
                (**self).on_request(op, duration)
            }
            #[inline]
            fn on_error(&self, op: &str, error_type: &str) {
                (**self).on_error(op, error_type)
            }
            fn observer_name(&self) -> &'static str {
                (**self).observer_name()
            }
        }
    )*};
}

forward_observer!(&T, Box<T>, Arc<T>);

/// An observer that ignores every event: the default of every transport.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoopObserver;

impl MetricsObserver for NoopObserver {}

/// A shared no-op observer, for builders' defaults.
pub fn noop() -> Arc<dyn MetricsObserver> {
    Arc::new(NoopObserver)
}

/// One of the six events, as named in logs (`on_request`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Event {
    /// [`MetricsObserver::on_ws_connect`]
    WsConnect,
    /// [`MetricsObserver::on_ws_disconnect`]
    WsDisconnect,
    /// [`MetricsObserver::on_ws_message_sent`]
    WsMessageSent,
    /// [`MetricsObserver::on_ws_message_recv`]
    WsMessageRecv,
    /// [`MetricsObserver::on_request`]
    Request,
    /// [`MetricsObserver::on_error`]
    Error,
}

impl Event {
    /// Every event, in trait order.
    pub const ALL: [Event; 6] = [
        Event::WsConnect,
        Event::WsDisconnect,
        Event::WsMessageSent,
        Event::WsMessageRecv,
        Event::Request,
        Event::Error,
    ];

    /// Position in [`Event::ALL`], for per-event tables.
    pub(crate) const fn index(self) -> usize {
        match self {
            Event::WsConnect => 0,
            Event::WsDisconnect => 1,
            Event::WsMessageSent => 2,
            Event::WsMessageRecv => 3,
            Event::Request => 4,
            Event::Error => 5,
        }
    }

    /// The trait method's name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Event::WsConnect => "on_ws_connect",
            Event::WsDisconnect => "on_ws_disconnect",
            Event::WsMessageSent => "on_ws_message_sent",
            Event::WsMessageRecv => "on_ws_message_recv",
            Event::Request => "on_request",
            Event::Error => "on_error",
        }
    }
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Compile-time check that observers can be shared across threads.
#[allow(dead_code)]
const fn assert_send_sync<T: Send + Sync + ?Sized>() {}
const _: () = {
    assert_send_sync::<dyn MetricsObserver>();
    assert_send_sync::<NoopObserver>();
    assert_send_sync::<GuardedObserver>();
    assert_send_sync::<FnObserver>();
    assert_send_sync::<CompositeObserver>();
    assert_send_sync::<LoggingObserver>();
    assert_send_sync::<StatsObserver>();
    assert_send_sync::<StatsSnapshot>();
};

#[cfg(any(test, feature = "test-util"))]
const _: () = assert_send_sync::<RecordingObserver>();
#[cfg(feature = "tracing")]
const _: () = assert_send_sync::<TracingObserver>();
