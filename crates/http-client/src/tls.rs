//! The TLS configuration handed to reqwest: the hs clients' one trust
//! policy ([`hs_core::tls`]), or the caller's own rustls configuration.

use std::sync::Arc;

use rustls::ClientConfig;
use rustls::pki_types::CertificateDer;

use crate::error::HttpClientError;

/// The configuration for a client of an `http` or `https` base URL.
///
/// For `https`: `custom` when given, else [`hs_core::tls::client_config`]
/// (the operating system's roots, or only `roots` when any are given). For
/// `http` no TLS is ever used (the client neither follows redirects nor
/// talks to other hosts), so an empty root store (which would refuse every
/// certificate) spares loading the system's roots.
pub(crate) fn client_config(
    https: bool,
    roots: &[CertificateDer<'static>],
    custom: Option<Arc<ClientConfig>>,
) -> Result<ClientConfig, HttpClientError> {
    let tls_error = |error: rustls::Error| HttpClientError::Config(format!("TLS: {error}"));
    let mut config = match custom {
        Some(custom) => ClientConfig::clone(&custom),
        None if https => hs_core::tls::client_config(roots).map_err(tls_error)?,
        None => ClientConfig::builder_with_provider(hs_core::tls::provider())
            .with_safe_default_protocol_versions()
            .map_err(tls_error)?
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth(),
    };
    // The client speaks HTTP/1.1 only.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}
