use std::fmt;
use std::sync::Arc;

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// A bearer auth token as a client holds it: the `authToken` of a login,
/// handed to another request or transport (an HTTP login's token opens a
/// WebSocket endpoint that expects `{"authToken": <token>}`).
///
/// It is a credential: `Debug` prints `AuthToken(<redacted>)`, there is no
/// `Display`, equality is constant-time, the text is wiped from memory when
/// the last clone is dropped, and [`expose`](Self::expose) is the only way
/// to read it. Cheap to clone (an `Arc` inside).
///
/// ```
/// use hs_core::auth::AuthToken;
///
/// let token = AuthToken::new("s3cr3t");
/// assert_eq!(token.expose(), "s3cr3t");
/// assert_eq!(format!("{token:?}"), "AuthToken(<redacted>)");
/// assert_eq!(token, AuthToken::from("s3cr3t"));
/// ```
#[derive(Clone)]
pub struct AuthToken(Arc<Zeroizing<String>>);

impl AuthToken {
    /// Wraps a token.
    pub fn new(token: impl Into<String>) -> Self {
        AuthToken(Arc::new(Zeroizing::new(token.into())))
    }

    /// The token text, to put on the wire. Never log it.
    pub fn expose(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Debug for AuthToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthToken(<redacted>)")
    }
}

impl PartialEq for AuthToken {
    fn eq(&self, other: &Self) -> bool {
        self.expose()
            .as_bytes()
            .ct_eq(other.expose().as_bytes())
            .into()
    }
}

impl Eq for AuthToken {}

impl From<String> for AuthToken {
    fn from(token: String) -> Self {
        AuthToken::new(token)
    }
}

impl From<&str> for AuthToken {
    fn from(token: &str) -> Self {
        AuthToken::new(token)
    }
}

impl From<&String> for AuthToken {
    fn from(token: &String) -> Self {
        AuthToken::new(token.as_str())
    }
}
