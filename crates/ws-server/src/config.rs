//! Limits and timers of a WebSocket server, each with a default.

use std::time::Duration;

/// Limits and timers of the WebSocket server.
///
/// Every field has a sensible default ([`WsConfig::default`]); override the
/// ones you need with the `with_*` methods:
///
/// ```
/// use std::time::Duration;
/// use hs_ws_server::WsConfig;
///
/// let config = WsConfig::default()
///     .with_max_connections(100)
///     .with_heartbeat(Some(Duration::from_secs(10)), 3);
/// assert_eq!(config.max_connections, 100);
/// ```
///
/// | limit | default | when exceeded |
/// | --- | --- | --- |
/// | `max_connections` | 1 000 | upgrade refused with HTTP 503, WARN, `on_error("connect", "overloaded")` |
/// | `max_message_size` | 10 MiB | close 1009 |
/// | `heartbeat_interval` / `missed_pongs` | 30 s / 2 | close 1008 `heartbeat timeout` after that many pings without a pong |
/// | `auth_timeout` | 30 s | `authErr`, close 1008 `authentication timeout` |
/// | `send_queue` | 1 024 frames | WARN, close 1008 `send queue full` (slow reader) |
/// | `send_budget` | 16 MiB | bytes of answers one connection holds (queued, being written, or reserved by a request about to encode its answer); full, the connection is not read (back-pressure); an answer larger than the budget is replaced by an error grid (`too_large`) |
/// | `stall_timeout` | 10 s | how long a connection may stay over its `send_budget` before it is closed: WARN, close 1008 `send queue full`, its queued frames dropped |
/// | `max_in_flight` | 64 requests | the connection stops reading until one finishes |
/// | `max_batch` | 1 000 items | the batch is answered with one error grid (`too_large`) |
/// | `close_timeout` | 1 s | how long a closing handshake may take before TCP is dropped |
/// | `read_buffer_size` | 8 KiB | (not a limit) bytes read from the socket at a time |
/// | `max_watches_per_connection` | 100 watches | `watchSub` opening one more answers an error grid (`overloaded`); the watches close with the connection |
/// | `push` | on | (not a limit) whether watch changes are pushed; off, clients must `watchPoll` |
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WsConfig {
    /// Open connections the server accepts; the next upgrade gets HTTP 503.
    pub max_connections: usize,
    /// Largest message (and frame) accepted, in bytes; larger ones close the
    /// connection with 1009.
    pub max_message_size: usize,
    /// Interval between server pings; `None` disables the heartbeat.
    pub heartbeat_interval: Option<Duration>,
    /// Consecutive pings left without a pong after which the connection is
    /// closed.
    pub missed_pongs: u32,
    /// Time a client has to complete authentication, from the upgrade.
    pub auth_timeout: Duration,
    /// Frames queued for sending on one connection; a reader too slow to
    /// drain it is disconnected.
    pub send_queue: usize,
    /// Bytes of answers one connection may hold: queued, being written, or
    /// reserved by a request about to encode its answer (from an estimate of
    /// its size). When none are left the connection is not read until the
    /// peer reads; a single answer larger than this is replaced by an error
    /// grid. The answers of all connections hold at most
    /// `max_connections × send_budget` bytes
    /// ([`WsServerState::queued_bytes`](crate::WsServerState::queued_bytes)
    /// tells how many they hold). Watch pushes (and auth messages) are never
    /// held back: beyond the budget they are bounded by
    /// [`send_queue`](Self::send_queue) frames.
    pub send_budget: usize,
    /// How long a connection may stay over its [`send_budget`](Self::send_budget),
    /// unread, before it is closed with 1008 `send queue full`.
    pub stall_timeout: Duration,
    /// Requests (or batches) handled concurrently on one connection.
    pub max_in_flight: usize,
    /// Items in one batch, more or fewer than the reference's
    /// [`MAX_BATCH`](hs_core::ws::MAX_BATCH); a longer batch is refused as
    /// it is decoded.
    pub max_batch: usize,
    /// Time allowed for a closing handshake (our close frame written, the
    /// peer's close read) before the TCP connection is dropped.
    pub close_timeout: Duration,
    /// Bytes read from the socket per read call. tungstenite zero-fills this
    /// much of its read buffer before every read, so its 128 KiB default
    /// costs more than parsing a small request; larger messages are still
    /// read whole, in several reads.
    pub read_buffer_size: usize,
    /// Whether changes to watched entities are pushed to the connection
    /// (`{"type":"watch",..}`, docs/protocol.md 4.6). Off, the endpoint behaves
    /// like haystack-py's, whose ops never push: clients learn of changes
    /// only through `watchPoll`.
    pub push: bool,
    /// Watches one connection holds at once; each closes when the connection
    /// ends (unless another connection resumed it). The store limits watches
    /// in total and per user as well.
    pub max_watches_per_connection: usize,
}

/// The default [`WsConfig::send_budget`]: 16 MiB, above
/// [`max_message_size`](WsConfig::max_message_size)'s default.
pub const DEFAULT_SEND_BUDGET: usize = 16 * 1024 * 1024;

/// The default [`WsConfig::read_buffer_size`]: 8 KiB, a dozen typical
/// requests per read.
pub const DEFAULT_READ_BUFFER_SIZE: usize = 8 * 1024;

impl Default for WsConfig {
    fn default() -> Self {
        WsConfig {
            max_connections: 1_000,
            max_message_size: 10 * 1024 * 1024,
            heartbeat_interval: Some(Duration::from_secs(30)),
            missed_pongs: 2,
            auth_timeout: Duration::from_secs(30),
            send_queue: 1_024,
            send_budget: DEFAULT_SEND_BUDGET,
            stall_timeout: Duration::from_secs(10),
            max_in_flight: 64,
            max_batch: hs_core::ws::MAX_BATCH,
            close_timeout: Duration::from_secs(1),
            read_buffer_size: DEFAULT_READ_BUFFER_SIZE,
            push: true,
            max_watches_per_connection: 100,
        }
    }
}

impl WsConfig {
    /// Sets [`max_connections`](Self::max_connections).
    #[must_use]
    pub fn with_max_connections(mut self, max: usize) -> Self {
        self.max_connections = max;
        self
    }

    /// Sets [`max_message_size`](Self::max_message_size).
    #[must_use]
    pub fn with_max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// Sets the heartbeat: ping every `interval` (`None`: never) and close
    /// after `missed_pongs` pings without a pong (at least 1).
    #[must_use]
    pub fn with_heartbeat(mut self, interval: Option<Duration>, missed_pongs: u32) -> Self {
        self.heartbeat_interval = interval;
        self.missed_pongs = missed_pongs.max(1);
        self
    }

    /// Sets [`auth_timeout`](Self::auth_timeout).
    #[must_use]
    pub fn with_auth_timeout(mut self, timeout: Duration) -> Self {
        self.auth_timeout = timeout;
        self
    }

    /// Sets [`send_queue`](Self::send_queue) (at least 1).
    #[must_use]
    pub fn with_send_queue(mut self, frames: usize) -> Self {
        self.send_queue = frames.max(1);
        self
    }

    /// Sets [`send_budget`](Self::send_budget) in bytes (at least 4 KiB, at
    /// most 4 GiB).
    #[must_use]
    pub fn with_send_budget(mut self, bytes: usize) -> Self {
        self.send_budget = bytes.clamp(4 * 1024, u32::MAX as usize);
        self
    }

    /// Sets [`stall_timeout`](Self::stall_timeout).
    #[must_use]
    pub fn with_stall_timeout(mut self, timeout: Duration) -> Self {
        self.stall_timeout = timeout;
        self
    }

    /// Sets [`max_in_flight`](Self::max_in_flight) (at least 1).
    #[must_use]
    pub fn with_max_in_flight(mut self, requests: usize) -> Self {
        self.max_in_flight = requests.max(1);
        self
    }

    /// Sets [`max_batch`](Self::max_batch).
    #[must_use]
    pub fn with_max_batch(mut self, items: usize) -> Self {
        self.max_batch = items;
        self
    }

    /// Sets [`close_timeout`](Self::close_timeout).
    #[must_use]
    pub fn with_close_timeout(mut self, timeout: Duration) -> Self {
        self.close_timeout = timeout;
        self
    }

    /// Sets [`read_buffer_size`](Self::read_buffer_size) (at least 1 KiB).
    #[must_use]
    pub fn with_read_buffer_size(mut self, bytes: usize) -> Self {
        self.read_buffer_size = bytes.max(1024);
        self
    }

    /// Sets [`max_watches_per_connection`](Self::max_watches_per_connection).
    #[must_use]
    pub fn with_max_watches_per_connection(mut self, watches: usize) -> Self {
        self.max_watches_per_connection = watches;
        self
    }

    /// Sets [`push`](Self::push).
    #[must_use]
    pub fn with_push(mut self, push: bool) -> Self {
        self.push = push;
        self
    }
}
