//! Errors of starting and stopping the server.

use hs_core::observe::ErrorKind;

/// Why the server could not be built, started or stopped cleanly.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpServerError {
    /// The base path is not `""` or `/segment[/segment...]`.
    #[error("invalid base path {0:?}: expected \"\" or a path such as \"/api\"")]
    InvalidBasePath(String),
    /// The listening socket could not be bound.
    #[error("could not bind the listening socket: {0}")]
    Bind(#[source] std::io::Error),
    /// The server stopped on an I/O error.
    #[error("server I/O error: {0}")]
    Serve(#[source] std::io::Error),
    /// The server task panicked or was cancelled.
    #[error("server task failed: {0}")]
    Task(String),
}

impl HttpServerError {
    /// A stable snake_case name for the error.
    pub fn as_str(&self) -> &'static str {
        match self {
            HttpServerError::InvalidBasePath(_) => "invalid_base_path",
            HttpServerError::Bind(_) => "bind",
            HttpServerError::Serve(_) => "serve",
            HttpServerError::Task(_) => "task",
        }
    }

    /// The observer error type this error corresponds to.
    pub fn kind(&self) -> ErrorKind {
        match self {
            HttpServerError::InvalidBasePath(_) => ErrorKind::BadRequest,
            HttpServerError::Bind(_) => ErrorKind::Connect,
            HttpServerError::Serve(_) | HttpServerError::Task(_) => ErrorKind::ServerError,
        }
    }
}
