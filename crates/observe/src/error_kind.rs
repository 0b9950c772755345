/// The stable error types passed to [`MetricsObserver::on_error`](super::MetricsObserver::on_error).
///
/// The strings returned by [`as_str`](Self::as_str) are a public interface
/// (Prometheus labels, dashboards, alerts) and never change once released:
///
/// | kind | `as_str()` | meaning |
/// | --- | --- | --- |
/// | `Timeout` | `timeout` | no answer within the deadline |
/// | `ConnectionClosed` | `connection_closed` | the connection ended while the request was pending |
/// | `Connect` | `connect` | the connection could not be established |
/// | `Auth` | `auth` | authentication missing, wrong or expired |
/// | `Forbidden` | `forbidden` | authenticated, but not allowed to do this |
/// | `BadRequest` | `bad_request` | malformed request: bad grid, JSON, filter, arguments |
/// | `NotFound` | `not_found` | unknown entity, watch or path |
/// | `UnknownOp` | `unknown_op` | the op is not one the server knows |
/// | `Unsupported` | `unsupported` | the op or format is known but not supported |
/// | `TooLarge` | `too_large` | message or body over the configured limit |
/// | `Overloaded` | `overloaded` | refused for capacity (connections, queue) |
/// | `Protocol` | `protocol` | the peer broke the wire protocol (bad frame, unexpected message) |
/// | `ErrorGrid` | `error_grid` | the server answered with an error grid naming no kind (client side; an hs server names one in `errKind`, which the client reports instead) |
/// | `ServerError` | `server_error` | the server failed while handling the request |
/// | `Tls` | `tls` | the TLS handshake failed: unknown CA, expired certificate, name mismatch, missing client certificate (reported with op `connect`) |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// No answer within the deadline.
    Timeout,
    /// The connection ended while the request was pending.
    ConnectionClosed,
    /// The connection could not be established.
    Connect,
    /// Authentication missing, wrong or expired.
    Auth,
    /// Authenticated, but not allowed to do this.
    Forbidden,
    /// Malformed request: bad grid, JSON, filter, arguments.
    BadRequest,
    /// Unknown entity, watch or path.
    NotFound,
    /// The op is not one the server knows.
    UnknownOp,
    /// The op or format is known but not supported.
    Unsupported,
    /// Message or body over the configured limit.
    TooLarge,
    /// Refused for capacity (connections, send queue).
    Overloaded,
    /// The peer broke the wire protocol.
    Protocol,
    /// The server answered with an error grid (client side).
    ErrorGrid,
    /// The server failed while handling the request.
    ServerError,
    /// The TLS handshake failed (reported with op `connect`).
    Tls,
}

impl ErrorKind {
    /// Every kind, in declaration order.
    pub const ALL: &'static [ErrorKind] = &[
        ErrorKind::Timeout,
        ErrorKind::ConnectionClosed,
        ErrorKind::Connect,
        ErrorKind::Auth,
        ErrorKind::Forbidden,
        ErrorKind::BadRequest,
        ErrorKind::NotFound,
        ErrorKind::UnknownOp,
        ErrorKind::Unsupported,
        ErrorKind::TooLarge,
        ErrorKind::Overloaded,
        ErrorKind::Protocol,
        ErrorKind::ErrorGrid,
        ErrorKind::ServerError,
        ErrorKind::Tls,
    ];

    /// The kind named `name` (an [`as_str`](Self::as_str) name), if any.
    pub fn from_name(name: &str) -> Option<ErrorKind> {
        ErrorKind::ALL
            .iter()
            .copied()
            .find(|kind| kind.as_str() == name)
    }

    /// The stable snake_case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Timeout => "timeout",
            ErrorKind::ConnectionClosed => "connection_closed",
            ErrorKind::Connect => "connect",
            ErrorKind::Auth => "auth",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::NotFound => "not_found",
            ErrorKind::UnknownOp => "unknown_op",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::TooLarge => "too_large",
            ErrorKind::Overloaded => "overloaded",
            ErrorKind::Protocol => "protocol",
            ErrorKind::ErrorGrid => "error_grid",
            ErrorKind::ServerError => "server_error",
            ErrorKind::Tls => "tls",
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for kind in ErrorKind::ALL {
            let name = kind.as_str();
            assert!(
                name.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{name}"
            );
            assert!(seen.insert(name), "duplicate {name}");
        }
    }
}
