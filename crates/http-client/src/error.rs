use std::time::Duration;

use hs_core::auth::{AuthError, AuthFailure};
use hs_core::codec::CodecError;
use hs_core::endpoint::failure_cause;
use hs_core::observe::ErrorKind;

/// Why a call through [`HttpClient`](crate::HttpClient) failed.
///
/// [`as_str`](Self::as_str) is a stable snake_case name for logs;
/// [`kind`](Self::kind) is the [`ErrorKind`] reported to the observer's
/// `on_error`. The `Display` text is for humans and never holds a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpClientError {
    /// The TCP connection could not be established.
    #[error("cannot connect to {url}: {reason}")]
    Connect {
        /// The URL that was requested.
        url: String,
        /// What went wrong (`connection refused`, a certificate error, ...).
        reason: String,
        /// The underlying error.
        #[source]
        source: reqwest::Error,
    },
    /// The TLS handshake failed: the server's certificate is not signed by
    /// a trusted CA, has expired, or does not name the server; or the
    /// server refused the client (no client certificate, or one it does
    /// not trust; in TLS 1.3 this surfaces on the first read). Reported
    /// to the observer as `on_error("connect", "tls")`, and not retried:
    /// the same handshake fails the same way.
    #[error("TLS handshake with {url} failed: {reason}")]
    Tls {
        /// The URL that was requested.
        url: String,
        /// What rustls said (`invalid peer certificate: UnknownIssuer`,
        /// `received fatal alert: CertificateRequired`, ...).
        reason: String,
        /// The underlying error.
        #[source]
        source: reqwest::Error,
    },
    /// No complete answer in time: one HTTP exchange outlived the
    /// [`timeout`](crate::HttpClientBuilder::timeout), or the whole call
    /// (login, retries and backoff included) its
    /// [`deadline`](crate::HttpClientBuilder::deadline).
    #[error("no answer from {url} within {after:?}")]
    Timeout {
        /// The URL that was requested.
        url: String,
        /// The timeout or deadline that passed.
        after: Duration,
    },
    /// The connection failed after it was established (reset, closed while
    /// the request or response was in flight).
    #[error("connection to {url} failed: {reason}")]
    Transport {
        /// The URL that was requested.
        url: String,
        /// What went wrong (`connection reset by peer`, ...).
        reason: String,
        /// The underlying error.
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with an HTTP status other than 200 (and other
    /// than a 401 the client could resolve by logging in again).
    #[error("HTTP {status} from {url}: {body}")]
    Status {
        /// The HTTP status code.
        status: u16,
        /// The URL that was requested.
        url: String,
        /// The start of the response body (at most 512 bytes), for diagnosis.
        body: String,
    },
    /// The server answered with a Haystack error grid.
    #[error("error grid: {dis}")]
    ErrorGrid {
        /// The grid's `dis`: the server's message.
        dis: String,
        /// The grid's `errTrace`, when the server sent one.
        trace: Option<String>,
        /// The error type the grid names (`errKind`, which hs servers send:
        /// the type their observer reported), else
        /// [`ErrorKind::ErrorGrid`] (haystack-py and other servers).
        kind: ErrorKind,
    },
    /// The server refused to authenticate the client: it requires a login
    /// and the client has no credentials (a `401`), it refused the user name
    /// or password (the HELLO or the final SCRAM step), or it refused the
    /// bearer token (a `401` to a token, a pre-issued one or a fresh login's).
    /// Worded as the WebSocket client words the same failure.
    #[error("{0}")]
    Auth(AuthFailure),
    /// The SCRAM exchange broke down: a malformed or unexpected challenge,
    /// parameters the client refuses, or a server signature that does not
    /// verify (the server does not know the credential).
    #[error("SCRAM handshake failed: {0}")]
    Scram(#[from] AuthError),
    /// The response body could not be decoded as a grid.
    #[error("cannot decode the response: {0}")]
    Decode(#[source] CodecError),
    /// The request grid could not be encoded.
    #[error("cannot encode the request: {0}")]
    Encode(#[source] CodecError),
    /// The client was configured wrongly (bad base URL, TLS setup).
    #[error("invalid client configuration: {0}")]
    Config(String),
}

impl HttpClientError {
    /// A stable snake_case name for this error, for logs.
    pub const fn as_str(&self) -> &'static str {
        match self {
            HttpClientError::Connect { .. } => "connect",
            HttpClientError::Tls { .. } => "tls",
            HttpClientError::Timeout { .. } => "timeout",
            HttpClientError::Transport { .. } => "transport",
            HttpClientError::Status { .. } => "status",
            HttpClientError::ErrorGrid { .. } => "error_grid",
            HttpClientError::Auth(_) => "auth",
            HttpClientError::Scram(_) => "scram",
            HttpClientError::Decode(_) => "decode",
            HttpClientError::Encode(_) => "encode",
            HttpClientError::Config(_) => "config",
        }
    }

    /// The error type reported to the observer's `on_error`.
    pub fn kind(&self) -> ErrorKind {
        match self {
            HttpClientError::Connect { .. } => ErrorKind::Connect,
            HttpClientError::Tls { .. } => ErrorKind::Tls,
            HttpClientError::Timeout { .. } => ErrorKind::Timeout,
            HttpClientError::Transport { .. } => ErrorKind::ConnectionClosed,
            HttpClientError::Status { status, .. } => status_kind(*status),
            HttpClientError::ErrorGrid { kind, .. } => *kind,
            HttpClientError::Auth(failure) => failure.kind(),
            HttpClientError::Scram(error) => error.kind(),
            HttpClientError::Decode(_) => ErrorKind::Protocol,
            HttpClientError::Encode(_) | HttpClientError::Config(_) => ErrorKind::BadRequest,
        }
    }

    /// `true` when the request ran out of time.
    pub fn is_timeout(&self) -> bool {
        matches!(self, HttpClientError::Timeout { .. })
    }

    /// `true` when the TLS handshake failed (see [`HttpClientError::Tls`]).
    pub fn is_tls(&self) -> bool {
        matches!(self, HttpClientError::Tls { .. })
    }

    /// `true` for the authentication failures (refused credentials, a `401`
    /// that a new login did not cure, a broken SCRAM exchange).
    pub fn is_auth(&self) -> bool {
        matches!(self, HttpClientError::Auth(_) | HttpClientError::Scram(_))
    }

    /// The HTTP status code, when the error is an HTTP answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            HttpClientError::Status { status, .. } => Some(*status),
            HttpClientError::Auth(AuthFailure::LoginRequired | AuthFailure::TokenRejected) => {
                Some(401)
            }
            _ => None,
        }
    }

    /// The login failure, when the server refused to authenticate the client.
    pub fn auth_failure(&self) -> Option<&AuthFailure> {
        match self {
            HttpClientError::Auth(failure) => Some(failure),
            _ => None,
        }
    }

    /// The error grid's `dis`, when the server answered with an error grid.
    pub fn error_dis(&self) -> Option<&str> {
        match self {
            HttpClientError::ErrorGrid { dis, .. } => Some(dis),
            _ => None,
        }
    }

    /// Whether a retry may help: connect failures, timeouts, broken
    /// connections, and the statuses 429, 500, 502, 503 and 504 (not a
    /// failed TLS handshake: the same certificates fail the same way).
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            HttpClientError::Connect { .. }
            | HttpClientError::Timeout { .. }
            | HttpClientError::Transport { .. } => true,
            HttpClientError::Status { status, .. } => {
                matches!(status, 429 | 500 | 502 | 503 | 504)
            }
            _ => false,
        }
    }

    /// Classifies a reqwest error for `url`; `timeout` is the per-exchange
    /// timeout in force.
    pub(crate) fn from_reqwest(url: &str, error: reqwest::Error, timeout: Duration) -> Self {
        let url = url.to_owned();
        if error.is_timeout() {
            HttpClientError::Timeout {
                url,
                after: timeout,
            }
        } else if error.is_builder() {
            HttpClientError::Config(error.to_string())
        } else if let Some(tls) = hs_core::tls::handshake_failure(&error) {
            HttpClientError::Tls {
                url,
                reason: tls.to_string(),
                source: error,
            }
        } else {
            // reqwest's own message repeats the URL and hides the cause.
            let reason = failure_cause(&error);
            if error.is_connect() {
                HttpClientError::Connect {
                    url,
                    reason,
                    source: error,
                }
            } else {
                HttpClientError::Transport {
                    url,
                    reason,
                    source: error,
                }
            }
        }
    }
}

/// The [`ErrorKind`] of an HTTP status the client does not handle itself.
fn status_kind(status: u16) -> ErrorKind {
    match status {
        400 | 405 => ErrorKind::BadRequest,
        401 => ErrorKind::Auth,
        403 => ErrorKind::Forbidden,
        404 => ErrorKind::NotFound,
        406 | 415 => ErrorKind::Unsupported,
        408 | 504 => ErrorKind::Timeout,
        413 => ErrorKind::TooLarge,
        429 | 503 => ErrorKind::Overloaded,
        500..=599 => ErrorKind::ServerError,
        _ => ErrorKind::Protocol,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_kinds_and_transience() {
        let status = |status| HttpClientError::Status {
            status,
            url: "http://h/api/read".into(),
            body: String::new(),
        };
        assert_eq!(status(503).kind(), ErrorKind::Overloaded);
        assert_eq!(status(500).kind(), ErrorKind::ServerError);
        assert_eq!(status(404).kind(), ErrorKind::NotFound);
        assert_eq!(status(415).kind(), ErrorKind::Unsupported);
        assert_eq!(status(302).kind(), ErrorKind::Protocol);
        assert!(status(503).is_transient());
        assert!(status(502).is_transient());
        assert!(!status(400).is_transient());
        assert!(!status(501).is_transient());
        assert_eq!(status(418).status(), Some(418));
        assert_eq!(status(500).as_str(), "status");
    }

    #[test]
    fn error_grid_carries_dis() {
        let error = HttpClientError::ErrorGrid {
            kind: ErrorKind::ErrorGrid,
            dis: "Unknown watch".into(),
            trace: None,
        };
        assert_eq!(error.kind().as_str(), "error_grid");
        assert_eq!(error.error_dis(), Some("Unknown watch"));
        assert!(!error.is_transient());
        assert!(error.to_string().contains("Unknown watch"));
    }

    #[test]
    fn auth_errors() {
        let rejected = HttpClientError::Auth(AuthFailure::CredentialsRejected {
            username: "demo".into(),
        });
        assert!(rejected.is_auth());
        assert_eq!(rejected.kind(), ErrorKind::Auth);
        assert_eq!(rejected.as_str(), "auth");
        assert_eq!(
            HttpClientError::Auth(AuthFailure::TokenRejected).status(),
            Some(401)
        );
        let scram = HttpClientError::from(AuthError::ServerSignatureMismatch);
        assert_eq!(scram.kind(), ErrorKind::Auth);
        assert_eq!(scram.as_str(), "scram");
        let timeout = HttpClientError::Timeout {
            url: "u".into(),
            after: Duration::from_secs(1),
        };
        assert!(timeout.is_timeout() && timeout.is_transient());
    }
}
