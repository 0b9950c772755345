//! rustls on the `ring` provider (no aws-lc-sys, no cmake), configured per
//! client rather than through rustls' process-wide default provider, so a
//! library never changes its host's global state.

use std::sync::Arc;

use rustls::ClientConfig;
use rustls::pki_types::CertificateDer;

use crate::error::HttpClientError;

/// The TLS configuration handed to reqwest.
///
/// For `https` the server certificate is checked by the platform verifier
/// (the system's roots) plus `extra_roots`. For `http` no TLS is ever used:
/// the client neither follows redirects nor talks to other hosts, so an
/// empty root store (which would refuse every certificate) spares loading
/// the system's roots.
pub(crate) fn client_config(
    https: bool,
    extra_roots: Vec<CertificateDer<'static>>,
) -> Result<ClientConfig, HttpClientError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|error| HttpClientError::Config(format!("TLS: {error}")))?;
    let mut config = if https {
        let verifier =
            rustls_platform_verifier::Verifier::new_with_extra_roots(extra_roots, provider)
                .map_err(|error| HttpClientError::Config(format!("TLS roots: {error}")))?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth()
    } else {
        builder
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth()
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}
