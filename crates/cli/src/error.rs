//! Why a command failed.

use hs_core::observe::ErrorKind;

/// Why a command failed; printed as `error: ...` with exit status 1.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum CliError {
    /// Bad input on the command line that clap could not catch.
    #[error("{0}")]
    Usage(String),
    /// A grid could not be encoded for printing.
    #[error("cannot encode the grid: {0}")]
    Codec(#[from] hs_core::codec::CodecError),
    /// A data file could not be loaded.
    #[error("cannot load {path}: {source}")]
    Load {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: hs_core::store::LoadError,
    },
    /// An HTTP request failed (transport, status, error grid, auth).
    #[error("{0}")]
    Http(#[from] hs_http_client::HttpClientError),
    /// A WebSocket request failed.
    #[error("{0}")]
    Ws(#[from] hs_ws_client::WsClientError),
    /// The server could not be started or stopped.
    #[error("server: {0}")]
    Server(#[from] hs_http_server::HttpServerError),
    /// The server answered something this command cannot use.
    #[error("{0}")]
    Protocol(String),
    /// Reading or writing a local resource failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl CliError {
    /// A stable name for the error.
    #[allow(dead_code)]
    pub(crate) const fn as_str(&self) -> &'static str {
        match self {
            CliError::Usage(_) => "usage",
            CliError::Codec(_) => "codec",
            CliError::Load { .. } => "load",
            CliError::Http(_) => "http",
            CliError::Ws(_) => "ws",
            CliError::Server(_) => "server",
            CliError::Protocol(_) => "protocol",
            CliError::Io(_) => "io",
        }
    }

    /// The observer error kind this error corresponds to.
    pub(crate) fn kind(&self) -> ErrorKind {
        match self {
            CliError::Usage(_) | CliError::Load { .. } => ErrorKind::BadRequest,
            CliError::Codec(error) => error.kind(),
            CliError::Http(error) => error.kind(),
            CliError::Ws(error) => error.kind(),
            CliError::Server(error) => error.kind(),
            CliError::Protocol(_) => ErrorKind::Protocol,
            CliError::Io(_) => ErrorKind::ServerError,
        }
    }
}
