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
    /// A request failed (transport, status, error grid, auth), over HTTP
    /// or WebSocket.
    #[error("{0}")]
    Client(#[from] hs_core::client::ClientError),
    /// The server could not be started or stopped.
    #[error("server: {0}")]
    Server(#[from] hs_http_server::HttpServerError),
    /// The OTLP exporter could not be built.
    #[error("OTLP: {0}")]
    Otlp(#[source] hs_otel::OtlpError),
    /// The server's TLS certificate, key or client CA could not be loaded.
    #[error("TLS: {0}")]
    ServerTls(#[from] hs_http_server::TlsError),
    /// The server answered something this command cannot use.
    #[error("{0}")]
    Protocol(String),
    /// Some of the ids asked for are not in the server's store.
    #[error("not found: {} ({} of {asked} ids)", missing.join(", "), missing.len())]
    NotFound {
        /// The missing ids, as `@id`.
        missing: Vec<String>,
        /// How many ids were asked for.
        asked: usize,
    },
    /// Requests of `hs bench` failed.
    #[error("{failed} of {total} requests failed ({by_kind}); the first: {first}")]
    RequestsFailed {
        /// Failed requests.
        failed: u64,
        /// Requests made.
        total: u64,
        /// `kind count` per error kind, e.g. `connect 3, timeout 1`.
        by_kind: String,
        /// The message of the first failure.
        first: String,
    },
    /// Reading or writing a local resource failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl From<hs_http_client::HttpClientError> for CliError {
    fn from(error: hs_http_client::HttpClientError) -> Self {
        CliError::Client(error.into())
    }
}

impl From<hs_ws_client::WsClientError> for CliError {
    fn from(error: hs_ws_client::WsClientError) -> Self {
        CliError::Client(error.into())
    }
}

impl CliError {
    /// A stable name for the error.
    #[allow(dead_code)]
    pub(crate) const fn as_str(&self) -> &'static str {
        match self {
            CliError::Usage(_) => "usage",
            CliError::Codec(_) => "codec",
            CliError::Load { .. } => "load",
            CliError::Client(_) => "client",
            CliError::Server(_) => "server",
            CliError::ServerTls(_) => "server_tls",
            CliError::Otlp(_) => "otlp",
            CliError::Protocol(_) => "protocol",
            CliError::NotFound { .. } => "not_found",
            CliError::RequestsFailed { .. } => "requests_failed",
            CliError::Io(_) => "io",
        }
    }

    /// What the user can do about a server that wants a login this command
    /// did not give, or a TLS handshake that failed: the flags that help.
    pub(crate) fn hint(&self) -> Option<&'static str> {
        let CliError::Client(error) = self else {
            return None;
        };
        if error.kind() == ErrorKind::Tls {
            return Some(
                "give the CA that signs the server's certificate with --ca FILE, its name with \
                 --tls-server-name NAME if the URL's host is not on it, and --client-cert FILE \
                 --client-key FILE if the server requires a client certificate",
            );
        }
        matches!(
            error.auth_failure(),
            Some(hs_core::auth::AuthFailure::LoginRequired)
        )
        .then_some("log in with --user NAME and the password in HS_PASSWORD, or --token TOKEN")
    }

    /// `true` when stdout was closed under the command (`hs ... | head -1`):
    /// like other Unix tools it then ends quietly.
    pub(crate) fn is_broken_pipe(&self) -> bool {
        matches!(self, CliError::Io(error) if error.kind() == std::io::ErrorKind::BrokenPipe)
    }

    /// The observer error kind this error corresponds to.
    pub(crate) fn kind(&self) -> ErrorKind {
        match self {
            CliError::Usage(_)
            | CliError::Load { .. }
            | CliError::ServerTls(_)
            | CliError::Otlp(_) => ErrorKind::BadRequest,
            CliError::Codec(error) => error.kind(),
            CliError::Client(error) => error.kind(),
            CliError::Server(error) => error.kind(),
            CliError::Protocol(_) => ErrorKind::Protocol,
            CliError::NotFound { .. } => ErrorKind::NotFound,
            CliError::RequestsFailed { .. } => ErrorKind::ServerError,
            CliError::Io(_) => ErrorKind::ServerError,
        }
    }
}
