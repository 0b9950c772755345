//! [`ServerTls`]: the servers' TLS configuration (rustls with the `ring`
//! provider), built from PEM and reloadable while the server runs.

mod error;
pub(crate) mod peer;

pub use error::TlsError;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use hs_core::observe::targets;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, SupportedProtocolVersion};
use zeroize::Zeroizing;

/// The ALPN protocols offered, in the server's order of preference.
const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// What the origin of in-memory PEM is called in errors and logs.
const IN_MEMORY: &str = "in-memory PEM";

/// Whether a client must present a certificate. Meaningful only with a
/// client CA ([`ServerTlsBuilder::client_ca_file`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ClientAuth {
    /// A client without a certificate is served; one that presents a
    /// certificate must present one the client CA verifies.
    Optional,
    /// Every client must present a certificate the client CA verifies; the
    /// handshake of one that does not fails.
    #[default]
    Required,
}

impl ClientAuth {
    /// `optional` or `required`.
    pub fn as_str(self) -> &'static str {
        match self {
            ClientAuth::Optional => "optional",
            ClientAuth::Required => "required",
        }
    }
}

/// The TLS configuration of a server: a certificate chain and its private
/// key, optionally a client CA bundle to verify client certificates
/// (mutual TLS).
///
/// TLS 1.3 only unless [`allow_tls12`](ServerTlsBuilder::allow_tls12);
/// ALPN offers `h2` and `http/1.1`; rustls with its `ring` provider, set on
/// this configuration (the process-wide default provider is neither used
/// nor installed).
///
/// Clones share one configuration: [`reload`](Self::reload) on any clone
/// changes it for every server holding one. New handshakes use the
/// configuration current when they start; open connections keep theirs.
///
/// ```no_run
/// use hs_listener::{ClientAuth, ServerTls};
///
/// # fn demo() -> Result<(), hs_listener::TlsError> {
/// let tls = ServerTls::builder()
///     .certificate_file("server.pem")
///     .key_file("server.key")
///     .client_ca_file("clients-ca.pem")
///     .client_auth(ClientAuth::Optional)
///     .build()?;
/// // later, on SIGHUP:
/// if let Err(error) = tls.reload() {
///     eprintln!("kept the old certificate: {error}");
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ServerTls {
    inner: Arc<Inner>,
}

struct Inner {
    source: Source,
    current: ArcSwap<ServerConfig>,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = &self.inner.source;
        f.debug_struct("ServerTls")
            .field("certificate", &source.cert.origin())
            .field("key", &source.key.origin())
            .field("client_ca", &source.client_ca.as_ref().map(Pem::origin))
            .field("client_auth", &self.client_auth())
            .field("tls12", &source.tls12)
            .finish()
    }
}

impl ServerTls {
    /// A builder; it needs a certificate chain and a private key.
    pub fn builder() -> ServerTlsBuilder {
        ServerTlsBuilder {
            cert: None,
            key: None,
            client_ca: None,
            client_auth: ClientAuth::default(),
            tls12: false,
            log_target: targets::HTTP_SERVER,
        }
    }

    /// Reads the certificate chain, the key and the client CA bundle again
    /// (in-memory PEM is reused as given) and, when they make a valid
    /// configuration, swaps it in atomically: handshakes that start after
    /// this use it, open connections are untouched.
    ///
    /// On error the current configuration stays in force, a WARN says why,
    /// and the error is returned. Success is logged at INFO.
    pub fn reload(&self) -> Result<(), TlsError> {
        let source = &self.inner.source;
        match source.config() {
            Ok(config) => {
                self.inner.current.store(Arc::new(config));
                log::info!(
                    target: source.log_target,
                    "TLS configuration reloaded from {}",
                    source.cert.origin()
                );
                Ok(())
            }
            Err(error) => {
                log::warn!(
                    target: source.log_target,
                    "TLS reload refused, the current certificate stays: {error}"
                );
                Err(error)
            }
        }
    }

    /// The configuration in force, for serving connections of one's own
    /// (`tokio_rustls::TlsAcceptor::from(tls.config())`).
    pub fn config(&self) -> Arc<ServerConfig> {
        self.inner.current.load_full()
    }

    /// How client certificates are asked for: `None` without a client CA.
    pub fn client_auth(&self) -> Option<ClientAuth> {
        let source = &self.inner.source;
        source.client_ca.as_ref().map(|_| source.client_auth)
    }

    /// Watches the certificate, key and client CA files: every `interval`
    /// it compares their modification times and sizes with the last ones
    /// seen and, when one changed, [`reload`](Self::reload)s (a refused
    /// reload is retried at the next change, so a certificate and key
    /// replaced one after the other end up loaded together). In-memory PEM
    /// is not watched.
    ///
    /// The task ends once every clone of this `ServerTls` is dropped; abort
    /// the handle to stop it sooner. Needs a Tokio runtime.
    pub fn watch_files(&self, interval: Duration) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(&self.inner);
        let mut seen = self.inner.source.stamps();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let Some(inner) = weak.upgrade() else {
                    return;
                };
                let now = inner.source.stamps();
                if now != seen {
                    seen = now;
                    // reload logs the outcome.
                    let _ = ServerTls { inner }.reload();
                }
            }
        })
    }
}

/// Builds a [`ServerTls`]: see [`ServerTls::builder`].
pub struct ServerTlsBuilder {
    cert: Option<Pem>,
    key: Option<Pem>,
    client_ca: Option<Pem>,
    client_auth: ClientAuth,
    tls12: bool,
    log_target: &'static str,
}

impl fmt::Debug for ServerTlsBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTlsBuilder")
            .field("certificate", &self.cert.as_ref().map(Pem::origin))
            .field("key", &self.key.as_ref().map(Pem::origin))
            .field("client_ca", &self.client_ca.as_ref().map(Pem::origin))
            .field("client_auth", &self.client_auth)
            .field("tls12", &self.tls12)
            .finish()
    }
}

impl ServerTlsBuilder {
    /// The server's certificate chain: a PEM file of one or more
    /// certificates, the server's own first. Read again by
    /// [`ServerTls::reload`].
    #[must_use]
    pub fn certificate_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.cert = Some(Pem::File(path.into()));
        self
    }

    /// The server's certificate chain as PEM text, for library users who
    /// hold it in memory.
    #[must_use]
    pub fn certificate_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.cert = Some(Pem::memory(pem.into()));
        self
    }

    /// The private key of the chain's first certificate: a PEM file (PKCS#8,
    /// PKCS#1 or SEC1). Read again by [`ServerTls::reload`].
    #[must_use]
    pub fn key_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.key = Some(Pem::File(path.into()));
        self
    }

    /// The private key as PEM text (wiped from memory when the last clone
    /// of the [`ServerTls`] is dropped).
    #[must_use]
    pub fn key_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.key = Some(Pem::memory(pem.into()));
        self
    }

    /// Verifies client certificates against the CA certificates of this PEM
    /// file (mutual TLS); see [`client_auth`](Self::client_auth). Read again
    /// by [`ServerTls::reload`].
    #[must_use]
    pub fn client_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.client_ca = Some(Pem::File(path.into()));
        self
    }

    /// The client CA bundle as PEM text.
    #[must_use]
    pub fn client_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.client_ca = Some(Pem::memory(pem.into()));
        self
    }

    /// Whether a client certificate is required or optional (default
    /// [`ClientAuth::Required`]); ignored without a client CA.
    #[must_use]
    pub fn client_auth(mut self, client_auth: ClientAuth) -> Self {
        self.client_auth = client_auth;
        self
    }

    /// Also accepts TLS 1.2 (default: TLS 1.3 only).
    #[must_use]
    pub fn allow_tls12(mut self, allow: bool) -> Self {
        self.tls12 = allow;
        self
    }

    /// The `log` target of [`ServerTls::reload`]'s lines (default
    /// `hs::http::server`); the servers log failed handshakes on their own.
    #[must_use]
    pub fn log_target(mut self, target: &'static str) -> Self {
        self.log_target = target;
        self
    }

    /// Reads the PEM and builds the configuration.
    pub fn build(self) -> Result<ServerTls, TlsError> {
        let source = Source {
            cert: self.cert.ok_or(TlsError::Missing("certificate chain"))?,
            key: self.key.ok_or(TlsError::Missing("private key"))?,
            client_ca: self.client_ca,
            client_auth: self.client_auth,
            tls12: self.tls12,
            log_target: self.log_target,
        };
        let config = source.config()?;
        Ok(ServerTls {
            inner: Arc::new(Inner {
                source,
                current: ArcSwap::from_pointee(config),
            }),
        })
    }
}

/// Where some PEM comes from.
#[derive(Clone)]
enum Pem {
    File(PathBuf),
    Memory(Arc<Zeroizing<Vec<u8>>>),
}

impl Pem {
    fn memory(pem: Vec<u8>) -> Self {
        Pem::Memory(Arc::new(Zeroizing::new(pem)))
    }

    fn origin(&self) -> String {
        match self {
            Pem::File(path) => path.display().to_string(),
            Pem::Memory(_) => IN_MEMORY.to_owned(),
        }
    }

    fn read(&self, what: &'static str) -> Result<Zeroizing<Vec<u8>>, TlsError> {
        match self {
            Pem::File(path) => {
                std::fs::read(path)
                    .map(Zeroizing::new)
                    .map_err(|source| TlsError::Read {
                        what,
                        origin: self.origin(),
                        source,
                    })
            }
            Pem::Memory(bytes) => Ok(Zeroizing::new(bytes.to_vec())),
        }
    }

    fn certificates(&self, what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
        let text = self.read(what)?;
        let certs = CertificateDer::pem_slice_iter(&text)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| self.pem_error(what, &error))?;
        if certs.is_empty() {
            return Err(TlsError::Pem {
                what,
                origin: self.origin(),
                reason: "no certificate section",
            });
        }
        Ok(certs)
    }

    fn private_key(&self) -> Result<PrivateKeyDer<'static>, TlsError> {
        const WHAT: &str = "private key";
        let text = self.read(WHAT)?;
        PrivateKeyDer::from_pem_slice(&text).map_err(|error| match error {
            pem::Error::NoItemsFound => TlsError::Pem {
                what: WHAT,
                origin: self.origin(),
                reason: "no private key section (PKCS#8, PKCS#1 or SEC1)",
            },
            other => self.pem_error(WHAT, &other),
        })
    }

    /// The PEM error without the text it quotes (a key's line, say).
    fn pem_error(&self, what: &'static str, error: &pem::Error) -> TlsError {
        let reason = match error {
            pem::Error::MissingSectionEnd { .. } => "a section has no END line",
            pem::Error::IllegalSectionStart { .. } => "malformed BEGIN line",
            pem::Error::Base64Decode(_) => "invalid base64",
            pem::Error::NoItemsFound => "no section of the expected kind",
            _ => "unreadable PEM",
        };
        TlsError::Pem {
            what,
            origin: self.origin(),
            reason,
        }
    }
}

/// What a configuration is built from, again on every reload.
struct Source {
    cert: Pem,
    key: Pem,
    client_ca: Option<Pem>,
    client_auth: ClientAuth,
    tls12: bool,
    log_target: &'static str,
}

/// A file's modification time and size, `None` when it cannot be read.
type Stamp = Option<(SystemTime, u64)>;

impl Source {
    /// The stamps of the files this configuration is read from.
    fn stamps(&self) -> Vec<Stamp> {
        [Some(&self.cert), Some(&self.key), self.client_ca.as_ref()]
            .into_iter()
            .flatten()
            .filter_map(|pem| match pem {
                Pem::File(path) => Some(
                    std::fs::metadata(path)
                        .and_then(|meta| Ok((meta.modified()?, meta.len())))
                        .ok(),
                ),
                Pem::Memory(_) => None,
            })
            .collect()
    }

    fn config(&self) -> Result<ServerConfig, TlsError> {
        let chain = self.cert.certificates("certificate chain")?;
        let key = self.key.private_key()?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let versions: &[&SupportedProtocolVersion] = if self.tls12 {
            &[&rustls::version::TLS13, &rustls::version::TLS12]
        } else {
            &[&rustls::version::TLS13]
        };
        let config_error = |error: rustls::Error| TlsError::Config {
            cert: self.cert.origin(),
            key: self.key.origin(),
            reason: error.to_string(),
        };
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)
            .map_err(config_error)?;
        let builder = match &self.client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let ca_error = |reason: String| TlsError::ClientCa {
                    origin: ca.origin(),
                    reason,
                };
                let mut roots = RootCertStore::empty();
                for cert in ca.certificates("client CA bundle")? {
                    roots
                        .add(cert)
                        .map_err(|error| ca_error(error.to_string()))?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
                let verifier = match self.client_auth {
                    ClientAuth::Optional => verifier.allow_unauthenticated(),
                    ClientAuth::Required => verifier,
                };
                builder.with_client_cert_verifier(
                    verifier
                        .build()
                        .map_err(|error| ca_error(error.to_string()))?,
                )
            }
        };
        let mut config = builder.with_single_cert(chain, key).map_err(config_error)?;
        config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::{ClientAuth, ServerTls};

    fn self_signed() -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn debug_names_origins_and_never_the_pem() {
        let (cert, key) = self_signed();
        let builder = ServerTls::builder()
            .certificate_pem(cert.clone())
            .key_pem(key)
            .client_ca_pem(cert);
        assert!(!format!("{builder:?}").contains("BEGIN"), "{builder:?}");
        let tls = builder.build().unwrap();
        let shown = format!("{tls:?}");
        assert!(!shown.contains("BEGIN"), "{shown}");
        assert!(shown.contains("in-memory PEM"), "{shown}");
        assert_eq!(tls.client_auth(), Some(ClientAuth::Required));
    }

    #[test]
    fn alpn_h2_first_and_reload_of_memory_pem() {
        let (cert, key) = self_signed();
        let tls = ServerTls::builder()
            .certificate_pem(cert.clone())
            .key_pem(key.clone())
            .build()
            .unwrap();
        let config = tls.config();
        assert_eq!(
            config.alpn_protocols,
            [b"h2".to_vec(), b"http/1.1".to_vec()]
        );
        assert_eq!(tls.client_auth(), None);
        let before = tls.config();
        let clone = tls.clone();
        clone.reload().unwrap();
        assert!(
            !std::sync::Arc::ptr_eq(&before, &tls.config()),
            "clones share one configuration"
        );
        let tls12 = ServerTls::builder()
            .certificate_pem(cert)
            .key_pem(key)
            .allow_tls12(true)
            .build()
            .unwrap();
        assert_eq!(tls12.config().alpn_protocols, config.alpn_protocols);
    }
}
