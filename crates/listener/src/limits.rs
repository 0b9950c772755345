//! The bounds of one server's connections.

use std::time::Duration;

/// Default bound on open TCP connections (HTTP and upgraded WebSocket
/// connections together): 1 000.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1_000;

/// Default time a client has to complete the TLS handshake and then to send
/// a request's headers: 10 s each.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Default time a connection may stay idle between requests: 5 s.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(5);

/// What every connection of one server is bound by.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnLimits {
    /// The most TCP connections open at once (upgraded ones included); one
    /// more is answered `503` and closed.
    pub max_connections: usize,
    /// How long a client has to complete the TLS handshake, and then to send
    /// a request's headers once the connection is ready for one.
    pub header_read_timeout: Duration,
    /// How long a kept-alive connection may wait for its next request.
    pub idle_timeout: Duration,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
        }
    }
}
