//! The TLS configuration handed to reqwest: the hs clients' one policy
//! ([`hs_core::tls`]).

use hs_core::tls::{TlsError, TlsOptions};
use rustls::ClientConfig;

use crate::error::HttpClientError;

/// The configuration for a client of an `http` or `https` base URL.
///
/// For `https`: [`hs_core::tls::client_config`]. For `http` no TLS is ever
/// used (the client neither follows redirects nor talks to other hosts),
/// so an empty root store (which would refuse every certificate) spares
/// loading the system's roots. `invalid` is the first setting that did not
/// parse: it fails the build whatever the URL, so a mistake shows before
/// the URL changes.
pub(crate) fn client_config(
    https: bool,
    options: &TlsOptions,
    invalid: Option<TlsError>,
) -> Result<ClientConfig, HttpClientError> {
    let tls_error = |error: TlsError| HttpClientError::Config(error.to_string());
    if let Some(error) = invalid {
        return Err(tls_error(error));
    }
    let mut config = if https {
        hs_core::tls::client_config(options).map_err(tls_error)?
    } else {
        ClientConfig::builder_with_provider(hs_core::tls::provider())
            .with_safe_default_protocol_versions()
            .map_err(|error| tls_error(error.into()))?
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth()
    };
    // The client speaks HTTP/1.1 only.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}
