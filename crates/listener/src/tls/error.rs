//! Why a TLS configuration could not be built or reloaded.

/// Why a [`ServerTls`](crate::ServerTls) could not be built or reloaded.
///
/// Each message names the file (or `in-memory PEM`) it concerns and never
/// quotes its contents.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The builder was given no certificate chain or no private key.
    #[error("TLS needs a {0}: none was given")]
    Missing(&'static str),
    /// A file could not be read.
    #[error("cannot read {what} {origin}: {source}")]
    Read {
        /// What the file should hold (`certificate chain`, `private key`,
        /// `client CA bundle`).
        what: &'static str,
        /// The file's path.
        origin: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The PEM text is malformed, or holds no item of the kind wanted.
    #[error("invalid {what} in {origin}: {reason}")]
    Pem {
        /// What the PEM should hold.
        what: &'static str,
        /// The file's path, or `in-memory PEM`.
        origin: String,
        /// What is wrong, without the PEM's contents.
        reason: &'static str,
    },
    /// The client CA bundle holds a certificate that cannot be a trust
    /// anchor, or no client certificate verifier could be built from it.
    #[error("invalid client CA bundle {origin}: {reason}")]
    ClientCa {
        /// The file's path, or `in-memory PEM`.
        origin: String,
        /// rustls' reason.
        reason: String,
    },
    /// rustls refused the certificate chain and key (e.g. the key does not
    /// belong to the certificate, or its algorithm is not supported).
    #[error("invalid certificate or key ({cert}, {key}): {reason}")]
    Config {
        /// The certificate chain's path, or `in-memory PEM`.
        cert: String,
        /// The private key's path, or `in-memory PEM`.
        key: String,
        /// rustls' reason.
        reason: String,
    },
}

impl TlsError {
    /// A stable snake_case name for the error.
    pub fn as_str(&self) -> &'static str {
        match self {
            TlsError::Missing(_) => "missing",
            TlsError::Read { .. } => "read",
            TlsError::Pem { .. } => "pem",
            TlsError::ClientCa { .. } => "client_ca",
            TlsError::Config { .. } => "config",
        }
    }
}
