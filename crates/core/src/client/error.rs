use crate::auth::AuthFailure;
use crate::observe::ErrorKind;

type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a [`HaystackClient`](super::HaystackClient) call failed: the
/// transport's own error (hs-http-client's `HttpClientError`, hs-ws-client's
/// `WsClientError`, reached with [`downcast_ref`](Self::downcast_ref)), with
/// what both say about it.
///
/// `Display` is the transport error's; [`kind`](Self::kind) is the
/// [`ErrorKind`] the client reported to its observer and
/// [`as_str`](Self::as_str) the transport error's stable name.
#[derive(Debug)]
pub struct ClientError {
    kind: ErrorKind,
    name: &'static str,
    auth_failure: Option<AuthFailure>,
    source: Source,
}

impl ClientError {
    /// Wraps a transport's error, of `kind`, named `name` (its stable
    /// snake_case name), refusing a login with `auth_failure` if any.
    pub fn new(
        source: impl std::error::Error + Send + Sync + 'static,
        kind: ErrorKind,
        name: &'static str,
        auth_failure: Option<AuthFailure>,
    ) -> Self {
        ClientError {
            kind,
            name,
            auth_failure,
            source: Box::new(source),
        }
    }

    /// The error type reported to the observer's `on_error`.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The transport error's stable snake_case name (`error_grid` for an
    /// error grid from the server, on both transports).
    pub fn as_str(&self) -> &'static str {
        self.name
    }

    /// Whether the call ran out of time.
    pub fn is_timeout(&self) -> bool {
        self.kind == ErrorKind::Timeout
    }

    /// Whether the server answered with an error grid.
    pub fn is_error_grid(&self) -> bool {
        self.name == "error_grid"
    }

    /// The login refusal, when the server refused the credentials or the
    /// token, or demands a login the client did not give.
    pub fn auth_failure(&self) -> Option<&AuthFailure> {
        self.auth_failure.as_ref()
    }

    /// The transport's error, when it is an `E`.
    pub fn downcast_ref<E: std::error::Error + 'static>(&self) -> Option<&E> {
        self.source.downcast_ref()
    }

    /// The transport's error, when it is an `E`; else `self`.
    pub fn downcast<E: std::error::Error + 'static>(self) -> Result<E, Self> {
        match self.source.downcast() {
            Ok(source) => Ok(*source),
            Err(source) => Err(ClientError { source, ..self }),
        }
    }
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.source.fmt(f)
    }
}

// Transparent: the transport error's message is this error's, so its cause
// is this error's cause.
impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.source()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_and_gives_back_the_transport_error() {
        let gone = std::io::Error::other("gone");
        let error = ClientError::new(gone, ErrorKind::ConnectionClosed, "connection_closed", None);
        assert_eq!(error.to_string(), "gone");
        assert_eq!(error.kind(), ErrorKind::ConnectionClosed);
        assert_eq!(error.as_str(), "connection_closed");
        assert!(!error.is_timeout() && !error.is_error_grid());
        assert_eq!(error.auth_failure(), None);
        assert!(error.downcast_ref::<std::io::Error>().is_some());
        let error = error.downcast::<std::fmt::Error>().unwrap_err();
        assert_eq!(error.as_str(), "connection_closed");
        assert_eq!(
            error.downcast::<std::io::Error>().unwrap().to_string(),
            "gone"
        );
    }
}
