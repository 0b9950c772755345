use std::time::Duration;

use hs_core::auth::AuthFailure;
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
    /// The client was configured wrongly: a CA, client certificate, key
    /// or server name that does not parse, no trust roots loaded from the
    /// system. The text names the part, never key material.
    #[error("invalid client configuration: {0}")]
    Config(String),
    /// The TCP connection or the WebSocket upgrade failed or timed out.
    #[error("cannot connect to {url}: {reason}")]
    Connect {
        /// The URL the client tried.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The TLS handshake failed: the server's certificate is not signed by
    /// a trusted CA, has expired, or does not name the server; or the
    /// server refused the client (no client certificate, or one it does
    /// not trust; in TLS 1.3 this surfaces on the first read, during the
    /// upgrade). Reported to the observer as `on_error("connect", "tls")`.
    #[error("TLS handshake with {url} failed: {reason}")]
    Tls {
        /// The URL the client tried.
        url: String,
        /// What rustls said (`invalid peer certificate: UnknownIssuer`,
        /// `received fatal alert: CertificateRequired`, ...).
        reason: String,
    },
    /// Authentication was refused or broke off: the server refused the
    /// credentials or the token, demands a login from an anonymous client,
    /// or the exchange broke (a bad server signature, an unexpected message,
    /// the connection closed). With a token or no credentials the server
    /// answers nothing on success, so a refusal surfaces as this error on
    /// the requests the connection carried.
    #[error("{message}{}", close_suffix(.close.as_ref()))]
    Auth {
        /// The refusal, when the server's answer says which (worded as the
        /// HTTP client words it); `None` when the exchange broke off.
        failure: Option<AuthFailure>,
        /// What happened, for humans.
        message: String,
        /// The close frame the server ended the connection with, when it
        /// closed during authentication (e.g. haystack-py's FastAPI
        /// endpoint: `4003 Authentication required`).
        close: Option<ServerClose>,
    },
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
    /// The server answered with an error grid. [`kind`](Self::kind) is the
    /// error type the grid names (`errKind`, which hs servers send: the type
    /// their observer reported), else `error_grid` (haystack-py and other
    /// servers).
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
            WsClientError::InvalidUrl { .. } | WsClientError::Config(_) => ErrorKind::BadRequest,
            WsClientError::Connect { .. } => ErrorKind::Connect,
            WsClientError::Tls { .. } => ErrorKind::Tls,
            WsClientError::Auth { .. } => ErrorKind::Auth,
            WsClientError::Timeout { .. } => ErrorKind::Timeout,
            WsClientError::ConnectionClosed { .. } => ErrorKind::ConnectionClosed,
            // The kind the server named (hs servers), so both sides report
            // one error type for one failure; foreign servers name none.
            WsClientError::ErrorGrid { grid, .. } => {
                hs_core::codec::error_kind(grid).unwrap_or(ErrorKind::ErrorGrid)
            }
            WsClientError::Protocol(_) => ErrorKind::Protocol,
        }
    }

    /// A stable snake_case name of the variant (finer than [`kind`](Self::kind)
    /// for `invalid_url` and `config`, coarser for an error grid: always
    /// `error_grid`).
    pub fn as_str(&self) -> &'static str {
        match self {
            WsClientError::InvalidUrl { .. } => "invalid_url",
            WsClientError::Config(_) => "config",
            WsClientError::ErrorGrid { .. } => "error_grid",
            other => other.kind().as_str(),
        }
    }

    /// Whether the TLS handshake failed (see [`WsClientError::Tls`]).
    pub fn is_tls(&self) -> bool {
        matches!(self, WsClientError::Tls { .. })
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

    /// Whether authentication failed (see [`WsClientError::Auth`]).
    pub fn is_auth(&self) -> bool {
        matches!(self, WsClientError::Auth { .. })
    }

    /// The login refusal, when the server refused the credentials or the
    /// token, or demands a login the client cannot give.
    pub fn auth_failure(&self) -> Option<&AuthFailure> {
        match self {
            WsClientError::Auth { failure, .. } => failure.as_ref(),
            _ => None,
        }
    }

    /// The close code the server sent when it closed the connection during
    /// authentication.
    pub fn close_code(&self) -> Option<u16> {
        self.server_close().map(|close| close.code)
    }

    /// The server closed with [`ServerClose::AUTH_REQUIRED`]: it takes only
    /// a token from an HTTP login (`{"authToken":..}`), not SCRAM.
    pub fn requires_token(&self) -> bool {
        self.close_code() == Some(ServerClose::AUTH_REQUIRED)
    }

    /// The close reason the server sent when it closed the connection during
    /// authentication (may be empty).
    pub fn close_reason(&self) -> Option<&str> {
        self.server_close().map(|close| close.reason.as_str())
    }

    fn server_close(&self) -> Option<&ServerClose> {
        match self {
            WsClientError::Auth { close, .. } => close.as_ref(),
            _ => None,
        }
    }

    /// The server refused the login, the token, or an anonymous client.
    pub(crate) fn refused(failure: AuthFailure, close: Option<ServerClose>) -> Self {
        WsClientError::Auth {
            message: failure.to_string(),
            failure: Some(failure),
            close,
        }
    }

    /// The authentication exchange broke off for a reason other than a
    /// refusal.
    pub(crate) fn auth_broken(what: impl std::fmt::Display, close: Option<ServerClose>) -> Self {
        WsClientError::Auth {
            failure: None,
            message: format!("authentication failed: {what}"),
            close,
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
            WsClientError::Config(reason) => WsClientError::Config(reason.clone()),
            WsClientError::Connect { url, reason } => WsClientError::Connect {
                url: url.clone(),
                reason: reason.clone(),
            },
            WsClientError::Tls { url, reason } => WsClientError::Tls {
                url: url.clone(),
                reason: reason.clone(),
            },
            WsClientError::Auth {
                failure,
                message,
                close,
            } => WsClientError::Auth {
                failure: failure.clone(),
                message: message.clone(),
                close: close.clone(),
            },
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

/// The close frame a server ended a connection with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerClose {
    /// The close code (`1000` normal, `1008` policy, `4003` haystack-py's
    /// FastAPI "Authentication required", ...).
    pub code: u16,
    /// The close reason (may be empty).
    pub reason: String,
}

impl ServerClose {
    /// The code haystack-py's FastAPI `/api/ws` closes with ("Authentication
    /// required") when the first message is not `{"authToken":..}`.
    pub const AUTH_REQUIRED: u16 = 4003;
}

impl std::fmt::Display for ServerClose {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.reason.is_empty() {
            write!(f, "close code {}", self.code)
        } else {
            write!(f, "close code {}: {}", self.code, self.reason)
        }
    }
}

fn close_suffix(close: Option<&ServerClose>) -> String {
    match close {
        Some(close) => format!(" ({close})"),
        None => String::new(),
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
        let tls = WsClientError::Tls {
            url: "wss://h/api/ws".into(),
            reason: "invalid peer certificate: UnknownIssuer".into(),
        };
        assert!(tls.is_tls());
        assert_eq!((tls.as_str(), tls.kind()), ("tls", ErrorKind::Tls));
        assert!(tls.duplicate().is_tls());
        let config = WsClientError::Config("client private key: malformed PEM".into());
        assert_eq!(
            (config.as_str(), config.kind()),
            ("config", ErrorKind::BadRequest)
        );
        let refused = WsClientError::refused(
            AuthFailure::TokenRejected,
            Some(ServerClose {
                code: 4003,
                reason: "Authentication required".into(),
            }),
        );
        assert_eq!(refused.kind(), ErrorKind::Auth);
        assert_eq!(refused.close_code(), Some(4003));
        assert!(refused.requires_token());
        assert_eq!(refused.close_reason(), Some("Authentication required"));
        assert_eq!(refused.auth_failure(), Some(&AuthFailure::TokenRejected));
        assert!(
            refused
                .to_string()
                .ends_with("(close code 4003: Authentication required)"),
            "{refused}"
        );
    }
}
