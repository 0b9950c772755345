//! The TLS trust policy of the hs clients, one for HTTP and WebSocket
//! (feature `tls`).
//!
//! | configured | servers trusted |
//! | --- | --- |
//! | nothing (the default) | certificates that chain to the operating system's trust store, checked by [rustls-platform-verifier](https://docs.rs/rustls-platform-verifier) (on Linux the system bundle, honouring `SSL_CERT_FILE` / `SSL_CERT_DIR`) |
//! | one or more CA certificates (`add_root_certificate` on either client's builder) | only certificates that chain to those CAs: the operating system's store is **not** consulted, so a private CA cannot be bypassed by a public one |
//! | a complete rustls `ClientConfig` (`tls_config` on either builder) | whatever it says (client certificates, pinning); it wins over the CAs |
//!
//! Both use rustls with the `ring` provider, configured per client rather
//! than through rustls' process-wide default, so a library never changes
//! its host's global state.

use std::sync::Arc;

use rustls::ClientConfig;
use rustls::pki_types::CertificateDer;

/// The rustls provider every hs client uses.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client configuration with the policy above: the operating system's
/// trust store when `roots` is empty, else only `roots` (DER-encoded CA
/// certificates). Fails when a root does not parse, or no root can be
/// loaded from the system.
pub fn client_config(roots: &[CertificateDer<'static>]) -> Result<ClientConfig, rustls::Error> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let config = if roots.is_empty() {
        let verifier = rustls_platform_verifier::Verifier::new(provider)?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth()
    } else {
        let mut store = rustls::RootCertStore::empty();
        for root in roots {
            store.add(root.clone())?;
        }
        builder.with_root_certificates(store).with_no_client_auth()
    };
    Ok(config)
}
