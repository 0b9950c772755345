use std::time::Duration;

use log::{Level, LevelFilter};

use super::{Event, MetricsObserver, Side, Transport};
use crate::targets;

/// Writes every event through `log` on target `hs::observe`, one short line
/// a person reads at a glance:
///
/// | event | default level | line |
/// | --- | --- | --- |
/// | `on_ws_connect` | INFO | `ws connect 127.0.0.1:5000` |
/// | `on_ws_disconnect` | INFO | `ws disconnect 127.0.0.1:5000` |
/// | `on_ws_message_sent` | TRACE | `ws sent read 412 B` |
/// | `on_ws_message_recv` | TRACE | `ws recv read 412 B` |
/// | `on_request` | DEBUG | `request read 1.234 ms` |
/// | `on_error` | WARN | `error read timeout` |
///
/// A process often runs several components (an HTTP server beside a
/// WebSocket client, say): [`for_component`](Self::for_component) starts
/// each line with the component's side and transport
/// (`server/http request read 1.234 ms`), as the Prometheus labels do.
///
/// Each level can be changed, or turned off, with
/// [`with_level`](Self::with_level). The logger is asked
/// (`log::log_enabled!`) before any formatting, so an event whose level is
/// disabled costs an atomic load and, at most, one `Log::enabled` call.
///
/// ```
/// use log::LevelFilter;
/// use hs_observe::{Event, LoggingObserver};
///
/// use hs_observe::{Side, Transport};
///
/// let observer = LoggingObserver::new()
///     .for_component(Side::Server, Transport::Http)
///     .with_level(Event::Request, LevelFilter::Info)
///     .with_level(Event::WsMessageSent, LevelFilter::Off);
/// assert_eq!(observer.level(Event::Request), LevelFilter::Info);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoggingObserver {
    /// Indexed by `Event::index`; `None` = off.
    levels: [Option<Level>; 6],
    /// `"server/http "` and the like, or empty: written before every line.
    component: &'static str,
}

impl LoggingObserver {
    /// An observer with the default levels (see the table above).
    pub const fn new() -> Self {
        let mut levels = [None; 6];
        levels[Event::WsConnect.index()] = Some(Level::Info);
        levels[Event::WsDisconnect.index()] = Some(Level::Info);
        levels[Event::WsMessageSent.index()] = Some(Level::Trace);
        levels[Event::WsMessageRecv.index()] = Some(Level::Trace);
        levels[Event::Request.index()] = Some(Level::Debug);
        levels[Event::Error.index()] = Some(Level::Warn);
        LoggingObserver {
            levels,
            component: "",
        }
    }

    /// Starts every line with `side/transport` (`client/ws ws sent read 412 B`).
    #[must_use]
    pub const fn for_component(mut self, side: Side, transport: Transport) -> Self {
        self.component = match (side, transport) {
            (Side::Client, Transport::Http) => "client/http ",
            (Side::Client, Transport::Ws) => "client/ws ",
            (Side::Server, Transport::Http) => "server/http ",
            (Side::Server, Transport::Ws) => "server/ws ",
        };
        self
    }

    /// Logs `event` at `level`; [`LevelFilter::Off`] silences it.
    #[must_use]
    pub const fn with_level(mut self, event: Event, level: LevelFilter) -> Self {
        self.levels[event.index()] = match level {
            LevelFilter::Off => None,
            LevelFilter::Error => Some(Level::Error),
            LevelFilter::Warn => Some(Level::Warn),
            LevelFilter::Info => Some(Level::Info),
            LevelFilter::Debug => Some(Level::Debug),
            LevelFilter::Trace => Some(Level::Trace),
        };
        self
    }

    /// The level `event` is logged at ([`LevelFilter::Off`] if silenced).
    pub fn level(&self, event: Event) -> LevelFilter {
        self.levels[event.index()].map_or(LevelFilter::Off, |level| level.to_level_filter())
    }

    /// The level to log `event` at, if it is on here and enabled in the logger.
    #[inline]
    fn enabled(&self, event: Event) -> Option<Level> {
        let level = self.levels[event.index()]?;
        log::log_enabled!(target: targets::OBSERVE, level).then_some(level)
    }
}

impl Default for LoggingObserver {
    fn default() -> Self {
        Self::new()
    }
}

impl MetricsObserver for LoggingObserver {
    fn on_ws_connect(&self, remote_addr: &str) {
        if let Some(level) = self.enabled(Event::WsConnect) {
            log::log!(target: targets::OBSERVE, level, "{}ws connect {remote_addr}", self.component);
        }
    }

    fn on_ws_disconnect(&self, remote_addr: &str) {
        if let Some(level) = self.enabled(Event::WsDisconnect) {
            log::log!(target: targets::OBSERVE, level, "{}ws disconnect {remote_addr}", self.component);
        }
    }

    fn on_ws_message_sent(&self, op: &str, byte_count: usize) {
        if let Some(level) = self.enabled(Event::WsMessageSent) {
            log::log!(target: targets::OBSERVE, level, "{}ws sent {op} {byte_count} B", self.component);
        }
    }

    fn on_ws_message_recv(&self, op: &str, byte_count: usize) {
        if let Some(level) = self.enabled(Event::WsMessageRecv) {
            log::log!(target: targets::OBSERVE, level, "{}ws recv {op} {byte_count} B", self.component);
        }
    }

    fn on_request(&self, op: &str, duration: Duration) {
        if let Some(level) = self.enabled(Event::Request) {
            let millis = duration.as_secs_f64() * 1000.0;
            log::log!(target: targets::OBSERVE, level, "{}request {op} {millis:.3} ms", self.component);
        }
    }

    fn on_error(&self, op: &str, error_type: &str) {
        if let Some(level) = self.enabled(Event::Error) {
            log::log!(target: targets::OBSERVE, level, "{}error {op} {error_type}", self.component);
        }
    }
}
