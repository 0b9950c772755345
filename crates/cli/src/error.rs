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
            CliError::Io(_) => "io",
        }
    }

    /// The observer error kind this error corresponds to.
    #[allow(dead_code)]
    pub(crate) fn kind(&self) -> ErrorKind {
        match self {
            CliError::Usage(_) | CliError::Load { .. } => ErrorKind::BadRequest,
            CliError::Codec(error) => error.kind(),
            CliError::Io(_) => ErrorKind::ServerError,
        }
    }
}
