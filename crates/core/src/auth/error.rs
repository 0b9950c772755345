use crate::observe::ErrorKind;

/// Why an authentication or authorisation step failed.
///
/// Server-side, the variants map onto the protocol's answers (docs/protocol.md
/// 3.3): [`AuthenticationFailed`](Self::AuthenticationFailed) is the final
/// step's `403` (WebSocket `authErr`), [`Forbidden`](Self::Forbidden) is a role
/// refusal (an error grid), everything else before a token exists is a `401`
/// with the bare challenge `WWW-Authenticate: SCRAM hash=SHA-256`.
/// [`is_final_step_failure`](Self::is_final_step_failure) tells the two
/// apart. The messages never contain a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// An auth header or message lacks a parameter or cannot be parsed.
    #[error("malformed authorization: {0}")]
    Malformed(&'static str),
    /// The `Authorization` scheme is not HELLO, SCRAM or BEARER.
    #[error("unsupported authorization scheme {0:?}")]
    UnsupportedScheme(String),
    /// The server asked for a hash other than SHA-256.
    #[error("unsupported SCRAM hash {0:?}")]
    UnsupportedHash(String),
    /// The handshake token is unknown or was already used.
    #[error("unknown or already used handshake token")]
    UnknownHandshake,
    /// The handshake token outlived its TTL.
    #[error("handshake token expired")]
    HandshakeExpired,
    /// The server-side handshake table is full.
    #[error("too many handshakes in progress")]
    TooManyHandshakes,
    /// The final SCRAM step was rejected: wrong password, unknown user,
    /// tampered or wrong-length proof, nonce or channel-binding mismatch.
    /// The reasons are deliberately not told apart.
    #[error("authentication failed")]
    AuthenticationFailed,
    /// The bearer token is unknown, expired or revoked.
    #[error("invalid or expired auth token")]
    InvalidToken,
    /// Authenticated, but the role may not run this op.
    #[error("Insufficient permissions: {op} requires operator or admin role")]
    Forbidden {
        /// The op that was refused.
        op: String,
    },
    /// Client side: the server's iteration count is outside the client's bounds.
    #[error("server iteration count {iterations} outside {min}..={max}")]
    IterationsOutOfRange {
        /// The count the server sent.
        iterations: u32,
        /// The client's lower bound.
        min: u32,
        /// The client's upper bound.
        max: u32,
    },
    /// Client side: the server's salt is shorter than 16 bytes.
    #[error("server salt of {0} bytes is too short")]
    SaltTooShort(usize),
    /// Client side: the server nonce does not extend the client nonce.
    #[error("server nonce does not start with the client nonce")]
    NonceMismatch,
    /// Client side: the server signature does not match (the server does not
    /// know the credential).
    #[error("server signature mismatch")]
    ServerSignatureMismatch,
    /// Client side: the server-final message carried `e=<error>`.
    #[error("server rejected the authentication: {0}")]
    ServerRejected(String),
    /// Client side: a method of [`ScramClient`](super::ScramClient) was called
    /// out of order.
    #[error("SCRAM client step called out of order")]
    OutOfOrder,
}

impl AuthError {
    /// A stable snake_case name, for logs and metrics labels.
    pub const fn as_str(&self) -> &'static str {
        match self {
            AuthError::Malformed(_) => "malformed",
            AuthError::UnsupportedScheme(_) => "unsupported_scheme",
            AuthError::UnsupportedHash(_) => "unsupported_hash",
            AuthError::UnknownHandshake => "unknown_handshake",
            AuthError::HandshakeExpired => "handshake_expired",
            AuthError::TooManyHandshakes => "too_many_handshakes",
            AuthError::AuthenticationFailed => "authentication_failed",
            AuthError::InvalidToken => "invalid_token",
            AuthError::Forbidden { .. } => "forbidden",
            AuthError::IterationsOutOfRange { .. } => "iterations_out_of_range",
            AuthError::SaltTooShort(_) => "salt_too_short",
            AuthError::NonceMismatch => "nonce_mismatch",
            AuthError::ServerSignatureMismatch => "server_signature_mismatch",
            AuthError::ServerRejected(_) => "server_rejected",
            AuthError::OutOfOrder => "out_of_order",
        }
    }

    /// The observer error type this maps to.
    pub const fn kind(&self) -> ErrorKind {
        match self {
            AuthError::Malformed(_) => ErrorKind::BadRequest,
            AuthError::UnsupportedScheme(_)
            | AuthError::UnknownHandshake
            | AuthError::HandshakeExpired
            | AuthError::AuthenticationFailed
            | AuthError::InvalidToken
            | AuthError::ServerSignatureMismatch
            | AuthError::ServerRejected(_) => ErrorKind::Auth,
            AuthError::TooManyHandshakes => ErrorKind::Overloaded,
            AuthError::Forbidden { .. } => ErrorKind::Forbidden,
            AuthError::UnsupportedHash(_) => ErrorKind::Unsupported,
            AuthError::IterationsOutOfRange { .. }
            | AuthError::SaltTooShort(_)
            | AuthError::NonceMismatch
            | AuthError::OutOfOrder => ErrorKind::Protocol,
        }
    }

    /// `true` for the final step's rejection: HTTP answers `403
    /// Authentication failed`, the WebSocket server `authErr`. Every other
    /// server-side handshake error is a `401` with the bare challenge.
    pub const fn is_final_step_failure(&self) -> bool {
        matches!(self, AuthError::AuthenticationFailed)
    }
}

/// Why a client could not log in, worded the same on every transport
/// (HTTP and WebSocket clients carry it in their error type).
///
/// Servers do not tell an unknown user from a wrong password, so neither
/// does [`CredentialsRejected`](Self::CredentialsRejected). Every variant is
/// [`ErrorKind::Auth`].
///
/// ```
/// use hs_core::auth::AuthFailure;
///
/// let failure = AuthFailure::CredentialsRejected { username: "demo".into() };
/// assert_eq!(failure.as_str(), "credentials_rejected");
/// assert_eq!(
///     failure.to_string(),
///     "authentication failed for user \"demo\": unknown user or wrong password"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthFailure {
    /// The server requires a login and the client has no credentials.
    #[error(
        "authentication required: the server refuses anonymous clients; give a user name and password, or a token"
    )]
    LoginRequired,
    /// The server refused the user name or the password (it does not say
    /// which).
    #[error("authentication failed for user {username:?}: unknown user or wrong password")]
    CredentialsRejected {
        /// The user that tried to log in.
        username: String,
    },
    /// The server refused the bearer token: unknown, expired or revoked.
    #[error("authentication failed: the auth token was refused as unknown, expired or revoked")]
    TokenRejected,
}

impl AuthFailure {
    /// A stable snake_case name, for logs.
    pub const fn as_str(&self) -> &'static str {
        match self {
            AuthFailure::LoginRequired => "login_required",
            AuthFailure::CredentialsRejected { .. } => "credentials_rejected",
            AuthFailure::TokenRejected => "token_rejected",
        }
    }

    /// The observer error type: always [`ErrorKind::Auth`].
    pub const fn kind(&self) -> ErrorKind {
        ErrorKind::Auth
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_snake_case_and_kinds_stable() {
        let all = [
            AuthError::Malformed("x"),
            AuthError::UnsupportedScheme("Basic".into()),
            AuthError::UnsupportedHash("SHA-1".into()),
            AuthError::UnknownHandshake,
            AuthError::HandshakeExpired,
            AuthError::TooManyHandshakes,
            AuthError::AuthenticationFailed,
            AuthError::InvalidToken,
            AuthError::Forbidden {
                op: "hisWrite".into(),
            },
            AuthError::IterationsOutOfRange {
                iterations: 1,
                min: 4096,
                max: 10,
            },
            AuthError::SaltTooShort(4),
            AuthError::NonceMismatch,
            AuthError::ServerSignatureMismatch,
            AuthError::ServerRejected("e".into()),
            AuthError::OutOfOrder,
        ];
        let mut seen = std::collections::HashSet::new();
        for err in &all {
            let name = err.as_str();
            assert!(
                name.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{name}"
            );
            assert!(seen.insert(name), "duplicate {name}");
        }
        assert_eq!(AuthError::AuthenticationFailed.kind(), ErrorKind::Auth);
        assert_eq!(AuthError::TooManyHandshakes.kind(), ErrorKind::Overloaded);
        assert!(AuthError::AuthenticationFailed.is_final_step_failure());
        assert!(!AuthError::UnknownHandshake.is_final_step_failure());
        assert_eq!(
            AuthError::Forbidden {
                op: "hisWrite".into()
            }
            .to_string(),
            "Insufficient permissions: hisWrite requires operator or admin role"
        );
    }
}
