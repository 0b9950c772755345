//! `hs serve`'s TLS flags: the certificate, client certificates and the
//! certificate logins.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use hs_core::auth::{CertUserMap, CertUserRule};
use hs_http_server::{ClientAuth, ServerTls};

use crate::error::CliError;

/// The TLS flags of `hs serve`.
#[derive(Debug, Clone, Args)]
pub(crate) struct ServeTlsArgs {
    /// Serve HTTPS and WSS on the listen port with this PEM certificate chain
    /// (the server's certificate first); needs --tls-key. SIGHUP reloads the
    /// certificate, key and client CA from their files without a restart
    #[arg(long, value_name = "FILE", requires = "tls_key", help_heading = "TLS")]
    pub(crate) tls_cert: Option<PathBuf>,

    /// The PEM private key of --tls-cert (PKCS#8, PKCS#1 or SEC1)
    #[arg(long, value_name = "FILE", requires = "tls_cert", help_heading = "TLS")]
    pub(crate) tls_key: Option<PathBuf>,

    /// Ask clients for a certificate and verify it against the CAs in this
    /// PEM bundle (mutual TLS)
    #[arg(long, value_name = "FILE", requires = "tls_cert", help_heading = "TLS")]
    pub(crate) tls_client_ca: Option<PathBuf>,

    /// Whether a client without a certificate may connect (then SCRAM applies)
    #[arg(
        long,
        value_name = "MODE",
        default_value = "required",
        requires = "tls_client_ca",
        help_heading = "TLS"
    )]
    pub(crate) tls_client_auth: ClientAuthMode,

    /// Accept TLS 1.2 as well as TLS 1.3
    #[arg(long, requires = "tls_cert", help_heading = "TLS")]
    pub(crate) tls12: bool,

    /// Also reload when the certificate, key or client CA file changes, looking
    /// every DURATION (e.g. 30s; a renewal tool need not send SIGHUP)
    #[arg(long, value_name = "DURATION", requires = "tls_cert", value_parser = crate::cli::parse_interval, help_heading = "TLS")]
    pub(crate) tls_watch: Option<std::time::Duration>,

    /// Let a verified client certificate log in: cn:VALUE=USER:ROLE or
    /// san:VALUE=USER:ROLE (VALUE `*` matches any; USER `*` is the value
    /// matched), tried in order (may be repeated). A client whose
    /// certificate no rule maps logs in with SCRAM
    #[arg(
        long = "tls-user",
        value_name = "RULE",
        requires = "tls_client_ca",
        value_parser = parse_rule,
        help_heading = "TLS"
    )]
    pub(crate) tls_users: Vec<CertUserRule>,
}

/// `--tls-client-auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ClientAuthMode {
    /// A client without a certificate is served (and authenticates otherwise).
    Optional,
    /// The handshake fails without a certificate the client CA signed.
    Required,
}

impl ServeTlsArgs {
    /// The server's TLS configuration, when `--tls-cert` is given.
    pub(crate) fn server_tls(&self) -> Result<Option<ServerTls>, CliError> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            return Ok(None);
        };
        let mut builder = ServerTls::builder()
            .certificate_file(cert)
            .key_file(key)
            .allow_tls12(self.tls12);
        if let Some(ca) = &self.tls_client_ca {
            builder = builder
                .client_ca_file(ca)
                .client_auth(match self.tls_client_auth {
                    ClientAuthMode::Optional => ClientAuth::Optional,
                    ClientAuthMode::Required => ClientAuth::Required,
                });
        }
        Ok(Some(builder.build()?))
    }

    /// The `tls` line of `hs serve`'s banner, when TLS is on.
    pub(crate) fn summary(&self) -> Option<String> {
        let cert = self.tls_cert.as_ref()?;
        let versions = if self.tls12 {
            "TLS 1.3 and 1.2"
        } else {
            "TLS 1.3"
        };
        let mut summary = format!("{versions}, certificate {}", cert.display());
        if let Some(ca) = &self.tls_client_ca {
            let mode = match self.tls_client_auth {
                ClientAuthMode::Optional => "optional",
                ClientAuthMode::Required => "required",
            };
            summary.push_str(&format!("; client certificates {mode} ({})", ca.display()));
        }
        if !self.tls_users.is_empty() {
            let rules: Vec<String> = self.tls_users.iter().map(ToString::to_string).collect();
            summary.push_str(&format!("; certificate logins {}", rules.join(", ")));
        }
        match self.tls_watch {
            Some(interval) => summary.push_str(&format!(
                "; SIGHUP reloads, and a file change (checked every {interval:?})"
            )),
            None => summary.push_str("; SIGHUP reloads"),
        }
        Some(summary)
    }

    /// The certificate logins of `--tls-user`.
    pub(crate) fn cert_users(&self) -> CertUserMap {
        self.tls_users
            .iter()
            .cloned()
            .fold(CertUserMap::new(), CertUserMap::rule)
    }
}

fn parse_rule(raw: &str) -> Result<CertUserRule, String> {
    raw.parse()
}
