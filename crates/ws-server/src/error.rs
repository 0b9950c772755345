//! Errors of the standalone server.

use hs_core::observe::ErrorKind;

/// Why the standalone server could not start or stopped serving.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WsServerError {
    /// The listening socket could not be bound.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Accepting or serving connections failed.
    #[error("serving failed: {0}")]
    Serve(#[source] std::io::Error),
}

impl WsServerError {
    /// A stable name for the error.
    pub const fn as_str(&self) -> &'static str {
        match self {
            WsServerError::Bind { .. } => "bind",
            WsServerError::Serve(_) => "serve",
        }
    }

    /// The observer error kind.
    pub const fn kind(&self) -> ErrorKind {
        ErrorKind::Connect
    }
}
