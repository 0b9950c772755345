//! The TLS policy of the hs clients, one for HTTP and WebSocket (feature
//! `tls`).
//!
//! Which servers a client trusts:
//!
//! | configured | servers trusted |
//! | --- | --- |
//! | nothing (the default) | certificates that chain to the operating system's trust store, checked by [rustls-platform-verifier](https://docs.rs/rustls-platform-verifier) (on Linux the system bundle, honouring `SSL_CERT_FILE` / `SSL_CERT_DIR`) |
//! | one or more CA certificates (`add_root_certificate` or `add_root_certificates_pem` on either client's builder) | only certificates that chain to those CAs: the operating system's store is **not** consulted, so a private CA cannot be bypassed by a public one |
//! | a complete rustls `ClientConfig` (`tls_config` on either builder) | whatever it says (client certificates, pinning); it wins over the CAs, and cannot be combined with a client identity or a server name |
//!
//! And, with either of the first two rows:
//!
//! | configured | effect |
//! | --- | --- |
//! | a client identity (`client_identity`: a certificate chain and its private key) | the client presents the certificate to a server that asks for one (mutual TLS) |
//! | a server name (`tls_server_name`) | the server's certificate must name it instead of the URL's host (a gateway reached by IP whose certificate names `gw.example.com`); the WebSocket client also sends it as SNI, the HTTP client sends the URL's host (none for an IP address) |
//!
//! There is no way to accept any certificate. Both clients use rustls with
//! the `ring` provider, configured per client rather than through rustls'
//! process-wide default, so a library never changes its host's global
//! state.
//!
//! A handshake that fails (unknown CA, expired certificate, name mismatch,
//! a client certificate the server requires and the client lacks) is the
//! clients' `tls` error, reported as `on_error("connect", "tls")`;
//! [`handshake_failure`] finds it in an error's chain.

use std::sync::Arc;

use rustls::ClientConfig;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::{CertificateDer, ServerName};

mod error;
mod failure;
mod identity;
mod server_name;

pub use error::TlsError;
pub use failure::handshake_failure;
pub use identity::{ClientIdentity, certificates_from_pem};
pub use server_name::ServerNameOverride;

/// The rustls provider every hs client uses.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// What a client's TLS configuration is built from (see the tables above):
/// both client builders fill one in and call [`client_config`].
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct TlsOptions {
    /// CA certificates trusted instead of the operating system's store
    /// (empty: the operating system's store).
    pub roots: Vec<CertificateDer<'static>>,
    /// The certificate chain and key presented to a server that asks for
    /// one.
    pub identity: Option<ClientIdentity>,
    /// The name the server's certificate must carry instead of the URL's
    /// host.
    pub server_name: Option<ServerName<'static>>,
    /// A complete rustls configuration, used as it is instead of the
    /// above (it cannot be combined with `identity` or `server_name`).
    pub config: Option<Arc<ClientConfig>>,
}

impl std::fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsOptions")
            .field("roots", &self.roots.len())
            .field("identity", &self.identity)
            .field("server_name", &self.server_name)
            .field("config", &self.config.is_some())
            .finish()
    }
}

impl TlsOptions {
    /// The options of a client that sets none: the operating system's
    /// store, no client certificate, the URL's host.
    pub fn new() -> Self {
        TlsOptions::default()
    }

    /// The server name given as text (a DNS name or an IP address), checked.
    pub fn parse_server_name(name: &str) -> Result<ServerName<'static>, TlsError> {
        ServerName::try_from(name.to_owned()).map_err(|error| TlsError::ServerName {
            name: name.to_owned(),
            reason: error.to_string(),
        })
    }
}

/// A client configuration with the policy above: a copy of the complete
/// configuration when one is given, else one built from the options.
/// Fails when a root does not parse, no root can be loaded from the
/// system, the identity's key does not fit its certificate, or a complete
/// configuration comes with an identity or a server name.
pub fn client_config(options: &TlsOptions) -> Result<ClientConfig, TlsError> {
    if let Some(config) = &options.config {
        if options.identity.is_some() || options.server_name.is_some() {
            return Err(TlsError::Conflict(
                "a complete rustls configuration (tls_config) carries its own client \
                 certificate and verifier: it cannot be combined with client_identity \
                 or tls_server_name",
            ));
        }
        return Ok(ClientConfig::clone(config));
    }
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let verifier: Arc<dyn ServerCertVerifier> = if options.roots.is_empty() {
        Arc::new(rustls_platform_verifier::Verifier::new(provider)?)
    } else {
        let mut store = rustls::RootCertStore::empty();
        for root in &options.roots {
            store
                .add(root.clone())
                .map_err(|error| TlsError::Certificate {
                    what: "CA certificate",
                    reason: error.to_string(),
                })?;
        }
        WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider)
            .build()
            .map_err(|error| TlsError::Certificate {
                what: "CA certificate",
                reason: error.to_string(),
            })?
    };
    let verifier = match &options.server_name {
        Some(name) => Arc::new(ServerNameOverride::new(verifier, name.clone())),
        None => verifier,
    };
    let builder = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let config = match &options.identity {
        Some(identity) => {
            let (chain, key) = identity.parts();
            builder
                .with_client_auth_cert(chain, key)
                .map_err(TlsError::Identity)?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_are_checked() {
        assert!(TlsOptions::parse_server_name("gw.example.com").is_ok());
        assert!(TlsOptions::parse_server_name("10.0.0.5").is_ok());
        let error = TlsOptions::parse_server_name("not a name").unwrap_err();
        assert_eq!(error.as_str(), "server_name");
        assert!(error.to_string().contains("not a name"), "{error}");
    }

    #[test]
    fn a_given_root_that_does_not_parse_is_refused() {
        let options = TlsOptions {
            roots: vec![CertificateDer::from(b"not DER".to_vec())],
            ..TlsOptions::default()
        };
        let error = client_config(&options).unwrap_err();
        assert_eq!(error.as_str(), "certificate", "{error}");
    }
}
