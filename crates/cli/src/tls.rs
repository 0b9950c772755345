//! `--ca`, `--client-cert`, `--client-key` and `--tls-server-name`: read
//! and checked once, then given to whichever client a command builds.

use std::path::Path;

use hs_core::tls::{ClientIdentity, TlsError, TlsOptions};

use crate::cli::TlsArgs;
use crate::error::CliError;

/// The TLS settings of the client commands, read from their files.
#[derive(Clone, Default)]
pub(crate) struct ClientTls {
    /// A PEM bundle of CAs, replacing the operating system's store.
    ca: Option<Vec<u8>>,
    /// The client's certificate chain and key, PEM.
    identity: Option<(Vec<u8>, Vec<u8>)>,
    server_name: Option<String>,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("ClientTls")
            .field("ca", &self.ca.is_some())
            .field("identity", &self.identity.is_some())
            .field("server_name", &self.server_name)
            .finish()
    }
}

/// Reads `path`, given as `flag`.
fn read(flag: &str, path: &Path) -> Result<Vec<u8>, CliError> {
    std::fs::read(path)
        .map_err(|error| CliError::Usage(format!("{flag} {}: {error}", path.display())))
}

/// The error of a file that does not parse, naming the flag and the file.
fn unparsable(flag: &str, path: &Path, error: &TlsError) -> CliError {
    CliError::Usage(format!("{flag} {}: {error}", path.display()))
}

impl ClientTls {
    /// Reads and checks the files the flags name, so a missing or
    /// malformed one is reported with its name before anything connects.
    /// (clap has made sure `--client-cert` and `--client-key` come
    /// together.)
    pub(crate) fn load(args: &TlsArgs) -> Result<ClientTls, CliError> {
        let ca = match &args.ca {
            Some(path) => {
                let pem = read("--ca", path)?;
                hs_core::tls::certificates_from_pem(&pem, "CA certificate")
                    .map_err(|error| unparsable("--ca", path, &error))?;
                Some(pem)
            }
            None => None,
        };
        let identity = match (&args.client_cert, &args.client_key) {
            (Some(cert_path), Some(key_path)) => {
                let cert = read("--client-cert", cert_path)?;
                let key = read("--client-key", key_path)?;
                ClientIdentity::from_pem(&cert, &key).map_err(|error| match error {
                    TlsError::PrivateKey(_) => unparsable("--client-key", key_path, &error),
                    _ => unparsable("--client-cert", cert_path, &error),
                })?;
                Some((cert, key))
            }
            _ => None,
        };
        if let Some(name) = &args.tls_server_name {
            TlsOptions::parse_server_name(name)
                .map_err(|error| CliError::Usage(format!("--tls-server-name: {error}")))?;
        }
        Ok(ClientTls {
            ca,
            identity,
            server_name: args.tls_server_name.clone(),
        })
    }

    /// An HTTP client builder with these settings.
    pub(crate) fn http(
        &self,
        mut builder: hs_http_client::HttpClientBuilder,
    ) -> hs_http_client::HttpClientBuilder {
        if let Some(ca) = &self.ca {
            builder = builder.add_root_certificates_pem(ca);
        }
        if let Some((cert, key)) = &self.identity {
            builder = builder.client_identity(cert, key);
        }
        if let Some(name) = &self.server_name {
            builder = builder.tls_server_name(name);
        }
        builder
    }

    /// A WebSocket client builder with these settings.
    pub(crate) fn ws(
        &self,
        mut builder: hs_ws_client::WsClientBuilder,
    ) -> hs_ws_client::WsClientBuilder {
        if let Some(ca) = &self.ca {
            builder = builder.add_root_certificates_pem(ca);
        }
        if let Some((cert, key)) = &self.identity {
            builder = builder.client_identity(cert, key);
        }
        if let Some(name) = &self.server_name {
            builder = builder.tls_server_name(name);
        }
        builder
    }
}
