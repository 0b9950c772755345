use std::sync::Arc;
use std::time::Duration;

use hs_core::auth::AuthToken;
use hs_core::codec::Format;
use hs_core::endpoint::{HTTP_PATH, with_default_path};
use hs_core::observe::{GuardedObserver, MetricsObserver, noop};
use hs_core::tls::{ClientIdentity, TlsError, TlsOptions};
use rustls::pki_types::CertificateDer;
use zeroize::Zeroizing;

use crate::client::{HttpClient, Inner};
use crate::error::HttpClientError;
use crate::retry::RetryPolicy;
use crate::session::{Credentials, Grant, Session};
use crate::tls;

/// The default timeout of one HTTP exchange (the reference client's is 30 s).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The default deadline of one call, retries included, unless the timeout
/// is longer: 30 s.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(30);

/// Configures an [`HttpClient`].
///
/// | setting | default |
/// | --- | --- |
/// | [`credentials`](Self::credentials) | none: no `Authorization` is sent |
/// | [`token`](Self::token) | none: a pre-issued bearer token instead of a login |
/// | [`format`](Self::format) | [`Format::Json`] |
/// | [`timeout`](Self::timeout) | [`DEFAULT_TIMEOUT`] (30 s), per HTTP exchange (attempt) |
/// | [`deadline`](Self::deadline) | the timeout, at least [`DEFAULT_DEADLINE`] (30 s): per call, in total |
/// | [`connect_timeout`](Self::connect_timeout) | the timeout |
/// | [`retry`](Self::retry) | [`RetryPolicy::default`] (3 attempts for reads) |
/// | [`observer`](Self::observer) | a no-op observer |
/// | [`add_root_certificate`](Self::add_root_certificate), [`add_root_certificates_pem`](Self::add_root_certificates_pem) | none: the operating system's trust store |
/// | [`client_identity`](Self::client_identity) | none: no client certificate |
/// | [`tls_server_name`](Self::tls_server_name) | none: the URL's host |
/// | [`tls_config`](Self::tls_config) | none: the trust policy of [`hs_core::tls`] |
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use hs_core::codec::Format;
/// use hs_core::observe::StatsObserver;
/// use hs_http_client::{HttpClient, RetryPolicy};
///
/// let stats = Arc::new(StatsObserver::new());
/// let client = HttpClient::builder("http://127.0.0.1:8080/api")
///     .credentials("demo", "demo-pass")
///     .format(Format::Zinc)
///     .timeout(Duration::from_secs(5))
///     .retry(RetryPolicy { max_attempts: 5, ..RetryPolicy::default() })
///     .observer(stats.clone())
///     .build()
///     .unwrap();
/// assert_eq!(client.base_url(), "http://127.0.0.1:8080/api");
/// ```
pub struct HttpClientBuilder {
    base_url: String,
    credentials: Option<Credentials>,
    token: Option<AuthToken>,
    format: Format,
    timeout: Duration,
    deadline: Option<Duration>,
    connect_timeout: Option<Duration>,
    retry: RetryPolicy,
    observer: Arc<dyn MetricsObserver>,
    tls: TlsOptions,
    /// The first TLS setting that did not parse, reported by `build`.
    tls_invalid: Option<TlsError>,
    #[cfg(feature = "test-util")]
    scram_nonce: Option<String>,
}

impl std::fmt::Debug for HttpClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClientBuilder")
            .field("base_url", &self.base_url)
            .field("credentials", &self.credentials)
            .field("token", &self.token)
            .field("format", &self.format)
            .field("timeout", &self.timeout)
            .field("deadline", &self.deadline)
            .field("connect_timeout", &self.connect_timeout)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl HttpClientBuilder {
    pub(crate) fn new(base_url: impl Into<String>) -> Self {
        HttpClientBuilder {
            base_url: base_url.into(),
            credentials: None,
            token: None,
            format: Format::Json,
            timeout: DEFAULT_TIMEOUT,
            deadline: None,
            connect_timeout: None,
            retry: RetryPolicy::default(),
            observer: noop(),
            tls: TlsOptions::new(),
            tls_invalid: None,
            #[cfg(feature = "test-util")]
            scram_nonce: None,
        }
    }

    /// Logs in as `username` with SCRAM-SHA-256. The password is kept (in
    /// memory that is wiped on drop) so the client can log in again when its
    /// token expires.
    #[must_use]
    pub fn credentials(mut self, username: impl Into<String>, password: impl Into<String>) -> Self {
        self.credentials = Some(Credentials {
            username: username.into(),
            password: Zeroizing::new(password.into()),
        });
        self
    }

    /// Authenticates with a bearer token issued earlier (by a login of
    /// another client, [`HttpClient::login`], or the server's operator)
    /// instead of logging in: every request carries `Authorization: BEARER
    /// authToken=<token>`. When the server refuses the token (`401`), a
    /// client that also has [`credentials`](Self::credentials) logs in
    /// again; one without fails with
    /// [`AuthFailure::TokenRejected`](hs_core::auth::AuthFailure::TokenRejected).
    #[must_use]
    pub fn token(mut self, token: impl Into<AuthToken>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// The wire format of request and response bodies (`Content-Type` and
    /// `Accept`).
    #[must_use]
    pub fn format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// The deadline of one HTTP exchange (one attempt), from sending to
    /// the end of the response body. A call that logs in or retries makes
    /// several; [`deadline`](Self::deadline) bounds them all.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The deadline of one call in total: the login it may need, every
    /// attempt and every backoff. A retry that could not finish in time is
    /// not started (the call fails with the last attempt's error); a call
    /// still running at the deadline fails with
    /// [`HttpClientError::Timeout`]. Default: the
    /// [`timeout`](Self::timeout), at least [`DEFAULT_DEADLINE`] (30 s).
    #[must_use]
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// The deadline for establishing a connection (default: the timeout).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// When to retry failed calls.
    #[must_use]
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// The observer that sees one `on_request` or `on_error` per call. It is
    /// called through a [`GuardedObserver`], so a panicking observer never
    /// breaks the client.
    #[must_use]
    pub fn observer(mut self, observer: Arc<dyn MetricsObserver>) -> Self {
        self.observer = observer;
        self
    }

    /// Trusts `der` (a DER-encoded CA certificate) for `https` servers
    /// **instead of** the operating system's trust store; call it again to
    /// trust several CAs. The policy is the WebSocket client's too (see
    /// [`hs_core::tls`]).
    #[must_use]
    pub fn add_root_certificate(mut self, der: impl Into<Vec<u8>>) -> Self {
        self.tls.roots.push(CertificateDer::from(der.into()));
        self
    }

    /// Trusts every CA certificate of `pem` (a PEM bundle: one or more
    /// `CERTIFICATE` sections), as [`add_root_certificate`](Self::add_root_certificate)
    /// does each. [`build`](Self::build) fails when the bundle holds no
    /// certificate or a malformed one.
    #[must_use]
    pub fn add_root_certificates_pem(mut self, pem: impl AsRef<[u8]>) -> Self {
        match hs_core::tls::certificates_from_pem(pem.as_ref(), "CA certificate") {
            Ok(roots) => self.tls.roots.extend(roots),
            Err(error) => self.invalid(error),
        }
        self
    }

    /// Presents a client certificate to an `https` server that asks for
    /// one (mutual TLS): `cert_chain_pem` holds the client's certificate
    /// first, then any intermediates; `key_pem` its private key (PKCS#8,
    /// PKCS#1 or SEC1). [`build`](Self::build) fails when either does not
    /// parse or the key does not belong to the certificate; the error names
    /// the part, never the key.
    #[must_use]
    pub fn client_identity(
        mut self,
        cert_chain_pem: impl AsRef<[u8]>,
        key_pem: impl AsRef<[u8]>,
    ) -> Self {
        match ClientIdentity::from_pem(cert_chain_pem.as_ref(), key_pem.as_ref()) {
            Ok(identity) => self.tls.identity = Some(identity),
            Err(error) => self.invalid(error),
        }
        self
    }

    /// Verifies the server's certificate against `name` (a DNS name or an
    /// IP address) instead of the URL's host: a gateway reached by IP
    /// address whose certificate names `gw.example.com`. The client still
    /// sends the URL's host as SNI (none for an IP address): reqwest takes
    /// SNI from the URL. [`build`](Self::build) fails when `name` is neither
    /// a DNS name nor an IP address.
    #[must_use]
    pub fn tls_server_name(mut self, name: impl AsRef<str>) -> Self {
        match TlsOptions::parse_server_name(name.as_ref()) {
            Ok(name) => self.tls.server_name = Some(name),
            Err(error) => self.invalid(error),
        }
        self
    }

    /// The complete rustls configuration for `https` (pinning, ...),
    /// instead of the trust policy; it wins over
    /// [`add_root_certificate`](Self::add_root_certificate), and
    /// [`build`](Self::build) fails when it is combined with
    /// [`client_identity`](Self::client_identity) or
    /// [`tls_server_name`](Self::tls_server_name) (the configuration says
    /// those itself). Its ALPN list is replaced by `http/1.1`.
    #[must_use]
    pub fn tls_config(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.tls.config = Some(config);
        self
    }

    /// Keeps the first TLS setting that did not parse, for `build`.
    fn invalid(&mut self, error: TlsError) {
        self.tls_invalid.get_or_insert(error);
    }

    /// Test hook: the SCRAM client nonce to use instead of a random one, so
    /// captured exchanges can be replayed. Never use it against a real
    /// server: a fixed nonce makes the handshake replayable (feature
    /// `test-util`).
    #[cfg(feature = "test-util")]
    #[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
    #[must_use]
    pub fn scram_nonce(mut self, nonce: impl Into<String>) -> Self {
        self.scram_nonce = Some(nonce.into());
        self
    }

    /// Builds the client. Fails with [`HttpClientError::Config`] on a base
    /// URL that is not `http` or `https`, a CA, client certificate, key or
    /// server name that does not parse, or when no TLS trust roots can be
    /// loaded for an `https` URL.
    pub fn build(self) -> Result<HttpClient, HttpClientError> {
        let base_url = with_default_path(&self.base_url, HTTP_PATH);
        let url = reqwest::Url::parse(&base_url).map_err(|error| {
            HttpClientError::Config(format!("base URL {:?}: {error}", self.base_url))
        })?;
        let https = match url.scheme() {
            "https" => true,
            "http" => false,
            other => {
                return Err(HttpClientError::Config(format!(
                    "base URL scheme {other:?} is not http or https"
                )));
            }
        };
        let tls = tls::client_config(https, &self.tls, self.tls_invalid)?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(self.timeout)
            .connect_timeout(self.connect_timeout.unwrap_or(self.timeout))
            // Haystack servers do not redirect; following one would carry
            // the bearer token to another URL.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|error| HttpClientError::Config(error.to_string()))?;
        let session = Session::default();
        if let Some(token) = self.token {
            session.set(Grant { token: Some(token) });
        }
        Ok(HttpClient::from_inner(Inner {
            http,
            base: base_url.trim_end_matches('/').to_owned(),
            format: self.format,
            credentials: self.credentials,
            retry: self.retry,
            timeout: self.timeout,
            deadline: self.deadline.unwrap_or(self.timeout.max(DEFAULT_DEADLINE)),
            observer: GuardedObserver::new(self.observer),
            session,
            #[cfg(feature = "test-util")]
            scram_nonce: self.scram_nonce,
        }))
    }
}
