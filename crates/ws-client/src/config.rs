use std::sync::Arc;
use std::time::Duration;

use hs_core::auth::AuthToken;
use hs_core::client::Backoff;
use hs_core::endpoint::{WS_PATH, with_default_path};
use hs_core::observe::{GuardedObserver, MetricsObserver};
use hs_core::tls::{ClientIdentity, TlsError, TlsOptions};
use rustls::pki_types::{CertificateDer, ServerName};

use crate::pool::WsPool;
use crate::reconnect::ReconnectingWsClient;
use crate::{WsClient, WsClientError};

/// How the client authenticates after the upgrade (docs/protocol.md 4.3).
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum Auth {
    /// No authentication.
    #[default]
    None,
    /// Token: the first message is `{"authToken":"<token>"}`, with a
    /// server's static token or the bearer token of an HTTP login
    /// (`HttpClient::login` in hs-http-client; haystack-py's FastAPI
    /// `/api/ws` and hs servers sharing a token store accept those). The
    /// server answers nothing on success; a refusal fails the connection's
    /// requests with [`AuthFailure::TokenRejected`](hs_core::auth::AuthFailure::TokenRejected).
    Token(AuthToken),
    /// SCRAM-SHA-256 carried in WebSocket messages; the server signature is
    /// verified.
    Scram {
        /// The user name.
        username: String,
        /// The password (kept for re-authentication after a reconnect).
        password: String,
    },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        match self {
            Auth::None => f.write_str("None"),
            Auth::Token(_) => f.write_str("Token(..)"),
            Auth::Scram { username, .. } => f
                .debug_struct("Scram")
                .field("username", username)
                .finish_non_exhaustive(),
        }
    }
}

/// The default [`WsClientBuilder::read_buffer_size`]: 8 KiB, a dozen
/// typical responses per read.
pub const DEFAULT_READ_BUFFER_SIZE: usize = 8 * 1024;

/// Everything a connection needs; built by [`WsClientBuilder`].
#[derive(Clone)]
pub(crate) struct WsConfig {
    pub(crate) url: String,
    pub(crate) auth: Auth,
    pub(crate) request_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) auth_timeout: Duration,
    pub(crate) heartbeat_interval: Option<Duration>,
    pub(crate) missed_pongs: u32,
    pub(crate) close_timeout: Duration,
    pub(crate) read_buffer_size: usize,
    /// The TLS policy's options (see [`hs_core::tls`]).
    pub(crate) tls_options: TlsOptions,
    /// The first TLS setting that did not parse, reported on connecting.
    pub(crate) tls_invalid: Option<Arc<TlsError>>,
    /// The configuration of a `wss://` connection, settled by `with_tls`.
    pub(crate) tls: Option<Arc<rustls::ClientConfig>>,
    pub(crate) observer: GuardedObserver,
}

impl WsConfig {
    /// Settles the TLS configuration of a `wss://` URL once, before the
    /// first connection (reconnections reuse it): the policy of
    /// [`hs_core::tls`]. A setting that did not parse fails whatever the
    /// URL, so a mistake shows before the URL changes.
    fn with_tls(mut self) -> Result<Self, WsClientError> {
        if let Some(error) = &self.tls_invalid {
            return Err(WsClientError::Config(error.to_string()));
        }
        if self.url.starts_with("wss://") {
            let config = hs_core::tls::client_config(&self.tls_options)
                .map_err(|error| WsClientError::Config(error.to_string()))?;
            self.tls = Some(Arc::new(config));
        }
        Ok(self)
    }

    /// The name sent as SNI instead of the URL's host, when one is set.
    pub(crate) fn tls_server_name(&self) -> Option<&ServerName<'static>> {
        self.tls_options.server_name.as_ref()
    }

    /// Keeps the first TLS setting that did not parse.
    fn invalid(&mut self, error: TlsError) {
        self.tls_invalid.get_or_insert(Arc::new(error));
    }
}

/// Builds a [`WsClient`], a [`ReconnectingWsClient`] or a [`WsPool`].
///
/// Defaults: no auth, request timeout 30 s, connect timeout 10 s (TCP, TLS
/// and upgrade), auth timeout 30 s, a ping every 30 s with the connection
/// closed after 2 missed pongs, close timeout 5 s, read buffer 8 KiB
/// ([`DEFAULT_READ_BUFFER_SIZE`]), the operating system's trust store for
/// `wss://` (the policy of [`hs_core::tls`], shared with the HTTP client),
/// no client certificate, the URL's host as the TLS server name, no
/// observer.
pub struct WsClientBuilder {
    config: WsConfig,
}

impl std::fmt::Debug for WsClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsClientBuilder")
            .field("url", &self.config.url)
            .field("auth", &self.config.auth)
            .field("request_timeout", &self.config.request_timeout)
            .field("heartbeat_interval", &self.config.heartbeat_interval)
            .finish_non_exhaustive()
    }
}

impl WsClientBuilder {
    /// A builder for `url` (`ws://` or `wss://`). A URL without a path gets
    /// the standard one: `ws://127.0.0.1:8080` is
    /// `ws://127.0.0.1:8080/api/ws` ([`WS_PATH`](hs_core::endpoint::WS_PATH));
    /// any other path is used as given.
    pub fn new(url: impl Into<String>) -> Self {
        WsClientBuilder {
            config: WsConfig {
                url: with_default_path(&url.into(), WS_PATH),
                auth: Auth::None,
                request_timeout: Duration::from_secs(30),
                connect_timeout: Duration::from_secs(10),
                auth_timeout: Duration::from_secs(30),
                heartbeat_interval: Some(Duration::from_secs(30)),
                missed_pongs: 2,
                close_timeout: Duration::from_secs(5),
                read_buffer_size: DEFAULT_READ_BUFFER_SIZE,
                tls_options: TlsOptions::new(),
                tls_invalid: None,
                tls: None,
                observer: GuardedObserver::default(),
            },
        }
    }

    /// Sets the authentication.
    #[must_use]
    pub fn auth(mut self, auth: Auth) -> Self {
        self.config.auth = auth;
        self
    }

    /// Token authentication (`{"authToken":..}`, see [`Auth::Token`]): a
    /// server's static token, or the bearer token of an HTTP login.
    #[must_use]
    pub fn token(self, token: impl Into<AuthToken>) -> Self {
        self.auth(Auth::Token(token.into()))
    }

    /// Logs in as `username` with SCRAM-SHA-256 ([`Auth::Scram`]), again
    /// after each reconnect.
    #[must_use]
    pub fn credentials(self, username: impl Into<String>, password: impl Into<String>) -> Self {
        self.auth(Auth::Scram {
            username: username.into(),
            password: password.into(),
        })
    }

    /// Default timeout of each request (overridable per call).
    #[must_use]
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.config.request_timeout = timeout;
        self
    }

    /// Timeout of the TCP connect, TLS and WebSocket upgrade together.
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout = timeout;
        self
    }

    /// Timeout of the whole authentication exchange.
    #[must_use]
    pub fn auth_timeout(mut self, timeout: Duration) -> Self {
        self.config.auth_timeout = timeout;
        self
    }

    /// Sends a ping every `interval` and closes the connection when
    /// `missed_pongs` pings in a row went unanswered (any frame from the
    /// server counts as an answer); the names of the server's
    /// `WsConfig::with_heartbeat`.
    #[must_use]
    pub fn heartbeat(mut self, interval: Duration, missed_pongs: u32) -> Self {
        self.config.heartbeat_interval = Some(interval);
        self.config.missed_pongs = missed_pongs.max(1);
        self
    }

    /// Turns the client's pings off.
    #[must_use]
    pub fn no_heartbeat(mut self) -> Self {
        self.config.heartbeat_interval = None;
        self
    }

    /// How long [`close`](hs_core::client::HaystackClient::close) waits for the server's close frame.
    #[must_use]
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.config.close_timeout = timeout;
        self
    }

    /// Bytes read from the socket per read call (at least 1 KiB; default
    /// [`DEFAULT_READ_BUFFER_SIZE`]). tungstenite zero-fills this much of its
    /// read buffer before every read, so its own 128 KiB default costs more
    /// than parsing a small response; larger messages are still read whole,
    /// in several reads.
    #[must_use]
    pub fn read_buffer_size(mut self, bytes: usize) -> Self {
        self.config.read_buffer_size = bytes.max(1024);
        self
    }

    /// Trusts `der` (a DER-encoded CA certificate) for `wss://` servers
    /// **instead of** the operating system's trust store; call it again to
    /// trust several CAs. The policy is the HTTP client's too (see
    /// [`hs_core::tls`]).
    #[must_use]
    pub fn add_root_certificate(mut self, der: impl Into<Vec<u8>>) -> Self {
        self.config
            .tls_options
            .roots
            .push(CertificateDer::from(der.into()));
        self
    }

    /// Trusts every CA certificate of `pem` (a PEM bundle: one or more
    /// `CERTIFICATE` sections), as [`add_root_certificate`](Self::add_root_certificate)
    /// does each. Connecting fails with [`WsClientError::Config`] when the
    /// bundle holds no certificate or a malformed one.
    #[must_use]
    pub fn add_root_certificates_pem(mut self, pem: impl AsRef<[u8]>) -> Self {
        match hs_core::tls::certificates_from_pem(pem.as_ref(), "CA certificate") {
            Ok(roots) => self.config.tls_options.roots.extend(roots),
            Err(error) => self.config.invalid(error),
        }
        self
    }

    /// Presents a client certificate to a `wss://` server that asks for one
    /// (mutual TLS): `cert_chain_pem` holds the client's certificate first,
    /// then any intermediates; `key_pem` its private key (PKCS#8, PKCS#1 or
    /// SEC1). Connecting fails with [`WsClientError::Config`] when either
    /// does not parse or the key does not belong to the certificate; the
    /// error names the part, never the key.
    #[must_use]
    pub fn client_identity(
        mut self,
        cert_chain_pem: impl AsRef<[u8]>,
        key_pem: impl AsRef<[u8]>,
    ) -> Self {
        match ClientIdentity::from_pem(cert_chain_pem.as_ref(), key_pem.as_ref()) {
            Ok(identity) => self.config.tls_options.identity = Some(identity),
            Err(error) => self.config.invalid(error),
        }
        self
    }

    /// Verifies the server's certificate against `name` (a DNS name or an
    /// IP address) instead of the URL's host, and sends it as SNI: a
    /// gateway reached by IP address whose certificate names
    /// `gw.example.com`. Connecting fails with [`WsClientError::Config`]
    /// when `name` is neither a DNS name nor an IP address.
    #[must_use]
    pub fn tls_server_name(mut self, name: impl AsRef<str>) -> Self {
        match TlsOptions::parse_server_name(name.as_ref()) {
            Ok(name) => self.config.tls_options.server_name = Some(name),
            Err(error) => self.config.invalid(error),
        }
        self
    }

    /// The complete rustls configuration for `wss://` (pinning, ...),
    /// instead of the trust policy; it wins over
    /// [`add_root_certificate`](Self::add_root_certificate), and connecting
    /// fails with [`WsClientError::Config`] when it is combined with
    /// [`client_identity`](Self::client_identity) or
    /// [`tls_server_name`](Self::tls_server_name) (the configuration says
    /// those itself).
    #[must_use]
    pub fn tls_config(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.config.tls_options.config = Some(config);
        self
    }

    /// The observer that sees every connection, message, request and error
    /// (wrapped once in a [`GuardedObserver`]).
    #[must_use]
    pub fn observer(mut self, observer: Arc<dyn MetricsObserver>) -> Self {
        self.config.observer = GuardedObserver::new(observer);
        self
    }

    /// Connects and authenticates one connection.
    pub async fn connect(self) -> Result<WsClient, WsClientError> {
        WsClient::connect_with(self.config.with_tls()?).await
    }

    /// Connects a client that reconnects with `backoff` whenever its
    /// connection ends. The first connection must succeed.
    pub async fn connect_reconnecting(
        self,
        backoff: Backoff,
    ) -> Result<ReconnectingWsClient, WsClientError> {
        ReconnectingWsClient::connect_with(self.config.with_tls()?, backoff).await
    }

    /// Connects a pool of `size` connections (at least one), each
    /// reconnecting with the default [`Backoff`].
    pub async fn connect_pool(self, size: usize) -> Result<WsPool, WsClientError> {
        WsPool::connect_with(self.config.with_tls()?, size, Backoff::default()).await
    }

    /// Connects a pool of `size` connections, each reconnecting with `backoff`.
    pub async fn connect_pool_with_backoff(
        self,
        size: usize,
        backoff: Backoff,
    ) -> Result<WsPool, WsClientError> {
        WsPool::connect_with(self.config.with_tls()?, size, backoff).await
    }
}
