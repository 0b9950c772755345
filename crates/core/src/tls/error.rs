/// Why a client's TLS configuration could not be built.
///
/// [`as_str`](Self::as_str) is a stable snake_case name. No variant ever
/// carries key material: a private key that does not parse is named, not
/// shown.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A certificate (a CA, or one of the client's chain) is missing or
    /// does not parse.
    #[error("{what}: {reason}")]
    Certificate {
        /// Which certificate: `CA certificate` or `client certificate`.
        what: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// The client's private key is missing or does not parse.
    #[error("client private key: {0}")]
    PrivateKey(&'static str),
    /// rustls refused the client identity (a key of an unsupported type, a
    /// key that does not belong to the certificate).
    #[error("client identity: {0}")]
    Identity(#[source] rustls::Error),
    /// The server name override is neither a DNS name nor an IP address.
    #[error("TLS server name {name:?}: {reason}")]
    ServerName {
        /// The name as given.
        name: String,
        /// Why it was refused.
        reason: String,
    },
    /// A client configuration and a complete rustls configuration were
    /// both given for what only one of them can say.
    #[error("{0}")]
    Conflict(&'static str),
    /// rustls could not build the configuration (no root loaded from the
    /// system, no protocol version).
    #[error("TLS: {0}")]
    Rustls(#[from] rustls::Error),
}

impl TlsError {
    /// A stable snake_case name for this error.
    pub const fn as_str(&self) -> &'static str {
        match self {
            TlsError::Certificate { .. } => "certificate",
            TlsError::PrivateKey(_) => "private_key",
            TlsError::Identity(_) => "identity",
            TlsError::ServerName { .. } => "server_name",
            TlsError::Conflict(_) => "conflict",
            TlsError::Rustls(_) => "rustls",
        }
    }
}
