use std::time::Duration;

use hs_core::observe::ErrorKind;

use crate::Grid;

/// Everything a WebSocket client call can fail with.
///
/// Branch on [`kind`](Self::kind) (or the predicates) rather than on the
/// variants: new variants may be added. [`as_str`](Self::as_str) is a stable
/// snake_case name for logs and metrics.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WsClientError {
    /// The URL is not a `ws://` or `wss://` URL the client can use.
    #[error("invalid WebSocket URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// The TCP, TLS or WebSocket handshake failed or timed out.
    #[error("cannot connect to {url}: {reason}")]
    Connect {
        /// The URL the client tried.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// Authentication was refused or broke off (wrong password, unknown
    /// user, bad server signature, closed during the exchange).
    #[error("authentication failed: {0}")]
    Auth(String),
    /// No response within the request timeout.
    #[error("{op} timed out after {after:?}")]
    Timeout {
        /// The op that timed out.
        op: String,
        /// The timeout that elapsed.
        after: Duration,
    },
    /// The connection ended (or was already closed) while the request was
    /// pending.
    #[error("connection closed: {reason}")]
    ConnectionClosed {
        /// Why the connection ended.
        reason: String,
    },
    /// The server answered with an error grid.
    #[error("{op}: server error: {dis}")]
    ErrorGrid {
        /// The op the error grid answered.
        op: String,
        /// The grid's `dis` message.
        dis: String,
        /// The error grid itself (it may carry `errTrace`).
        grid: Box<Grid>,
    },
    /// The server broke the wire protocol (an undecodable response, an
    /// unexpected message).
    #[error("protocol error: {0}")]
    Protocol(String),
}

impl WsClientError {
    /// The stable error type passed to `on_error` and used as a metric label.
    pub fn kind(&self) -> ErrorKind {
        match self {
            WsClientError::InvalidUrl { .. } => ErrorKind::BadRequest,
            WsClientError::Connect { .. } => ErrorKind::Connect,
            WsClientError::Auth(_) => ErrorKind::Auth,
            WsClientError::Timeout { .. } => ErrorKind::Timeout,
            WsClientError::ConnectionClosed { .. } => ErrorKind::ConnectionClosed,
            WsClientError::ErrorGrid { .. } => ErrorKind::ErrorGrid,
            WsClientError::Protocol(_) => ErrorKind::Protocol,
        }
    }

    /// A stable snake_case name of the variant (finer than [`kind`](Self::kind)
    /// only for `invalid_url`).
    pub fn as_str(&self) -> &'static str {
        match self {
            WsClientError::InvalidUrl { .. } => "invalid_url",
            other => other.kind().as_str(),
        }
    }

    /// Whether the request timed out.
    pub fn is_timeout(&self) -> bool {
        matches!(self, WsClientError::Timeout { .. })
    }

    /// Whether the connection ended under the request (retrying on a new
    /// connection may succeed).
    pub fn is_connection_closed(&self) -> bool {
        matches!(self, WsClientError::ConnectionClosed { .. })
    }

    /// Whether the server answered with an error grid.
    pub fn is_error_grid(&self) -> bool {
        matches!(self, WsClientError::ErrorGrid { .. })
    }

    /// The server's error grid, when the server answered with one.
    pub fn error_grid(&self) -> Option<&Grid> {
        match self {
            WsClientError::ErrorGrid { grid, .. } => Some(grid),
            _ => None,
        }
    }

    pub(crate) fn closed(reason: impl Into<String>) -> Self {
        WsClientError::ConnectionClosed {
            reason: reason.into(),
        }
    }

    /// A copy for fanning one failure out to several waiters (the error
    /// grid is cloned).
    pub(crate) fn duplicate(&self) -> Self {
        match self {
            WsClientError::InvalidUrl { url, reason } => WsClientError::InvalidUrl {
                url: url.clone(),
                reason: reason.clone(),
            },
            WsClientError::Connect { url, reason } => WsClientError::Connect {
                url: url.clone(),
                reason: reason.clone(),
            },
            WsClientError::Auth(m) => WsClientError::Auth(m.clone()),
            WsClientError::Timeout { op, after } => WsClientError::Timeout {
                op: op.clone(),
                after: *after,
            },
            WsClientError::ConnectionClosed { reason } => WsClientError::ConnectionClosed {
                reason: reason.clone(),
            },
            WsClientError::ErrorGrid { op, dis, grid } => WsClientError::ErrorGrid {
                op: op.clone(),
                dis: dis.clone(),
                grid: grid.clone(),
            },
            WsClientError::Protocol(m) => WsClientError::Protocol(m.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_names() {
        let timeout = WsClientError::Timeout {
            op: "read".into(),
            after: Duration::from_secs(1),
        };
        assert!(timeout.is_timeout());
        assert_eq!(timeout.kind(), ErrorKind::Timeout);
        assert_eq!(timeout.as_str(), "timeout");
        let closed = WsClientError::closed("gone");
        assert_eq!(closed.as_str(), "connection_closed");
        assert!(closed.is_connection_closed());
        let url = WsClientError::InvalidUrl {
            url: "http://x".into(),
            reason: "scheme".into(),
        };
        assert_eq!(url.as_str(), "invalid_url");
        assert_eq!(url.kind().as_str(), "bad_request");
        assert_eq!(WsClientError::Auth("no".into()).kind(), ErrorKind::Auth);
    }
}
