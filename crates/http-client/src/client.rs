use hs_core::observe::targets;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hs_core::auth::http::Authorization;
use hs_core::auth::{AuthFailure, AuthToken};
use hs_core::client::{ClientError, HaystackClient};
use hs_core::codec::{self, Format};
use hs_core::observe::labels::Transport;
use hs_core::observe::{ErrorKind, GuardedObserver, MetricsObserver};
use hs_core::ops::Op;
use hs_core::ops::build as request;
use hs_core::spans;
use hs_core::value::{Grid, Ref, Value};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use reqwest::{Method, StatusCode};
use tracing::Instrument as _;

use crate::auth;
use crate::builder::HttpClientBuilder;
use crate::error::HttpClientError;
use crate::retry::RetryPolicy;
use crate::session::{Credentials, Grant, Session};

/// The op a failed TLS handshake is reported under.
const CONNECT_OP: &str = "connect";

/// How much of an unexpected response body an error keeps.
const ERROR_BODY_LIMIT: usize = 512;

/// A Haystack HTTP client: SCRAM login, JSON or Zinc, retries, and one
/// observer event per call.
///
/// Cheap to clone (clones share the connection pool and the login). Build
/// one with [`HttpClient::builder`]. The first call logs in (HELLO / SCRAM /
/// BEARER against `GET {base}/about`, checking the server signature); a
/// `401` later (expired or revoked token) logs in again once and repeats
/// the call, transparently.
///
/// Every call ends in exactly one observer event: `on_request(op, duration)`
/// when it succeeded, with the time from the call's start to the decoded
/// response (any login and retries included), or `on_error(op, kind)`; a
/// call that failed in the TLS handshake is `on_error("connect", "tls")`.
///
/// ```no_run
/// # async fn demo() -> Result<(), hs_http_client::ClientError> {
/// use hs_http_client::{HaystackClient, HttpClient};
///
/// let client = HttpClient::builder("http://127.0.0.1:8080/api")
///     .credentials("demo", "demo-pass")
///     .build()?;
/// let points = client.read_filter("point and temp", Some(10)).await?;
/// println!("{} points", points.rows.len());
/// client.close().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct HttpClient {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) http: reqwest::Client,
    /// Base URL without a trailing slash (`http://host/api`).
    pub(crate) base: String,
    pub(crate) format: Format,
    pub(crate) credentials: Option<Credentials>,
    pub(crate) retry: RetryPolicy,
    /// The deadline of one HTTP exchange.
    pub(crate) timeout: Duration,
    /// The deadline of one call: login, attempts and backoff.
    pub(crate) deadline: Duration,
    pub(crate) observer: GuardedObserver,
    pub(crate) session: Session,
    /// Test hook: a fixed SCRAM client nonce (see the builder).
    #[cfg(feature = "test-util")]
    pub(crate) scram_nonce: Option<String>,
}

impl Inner {
    pub(crate) fn op_url(&self, op: &str) -> String {
        format!("{}/{op}", self.base)
    }
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("base", &self.inner.base)
            .field("format", &self.inner.format)
            .field("credentials", &self.inner.credentials)
            .field("retry", &self.inner.retry)
            .finish_non_exhaustive()
    }
}

/// The error for a `401` that the client cannot cure by logging in: the
/// server refused the token it sent, or it sent none.
fn refused(grant: &Grant) -> HttpClientError {
    HttpClientError::Auth(match grant.token {
        Some(_) => AuthFailure::TokenRejected,
        None => AuthFailure::LoginRequired,
    })
}

/// The method and body of one call.
struct Call<'a> {
    op: &'a str,
    method: Method,
    /// Encoded request grid (POST only).
    body: Option<String>,
    idempotent: bool,
}

impl HttpClient {
    /// A builder for a client of the server at `base_url`: ops are requested
    /// at `{base_url}/{op}`. A URL without a path gets the standard one:
    /// `http://127.0.0.1:8080` is `http://127.0.0.1:8080/api`
    /// ([`HTTP_PATH`](hs_core::endpoint::HTTP_PATH)); any other path is used
    /// as given (`https://host/haystack/api`).
    pub fn builder(base_url: impl Into<String>) -> HttpClientBuilder {
        HttpClientBuilder::new(base_url)
    }

    pub(crate) fn from_inner(inner: Inner) -> Self {
        HttpClient {
            inner: Arc::new(inner),
        }
    }

    /// The base URL, without a trailing slash, with the default path filled
    /// in (see [`builder`](Self::builder)).
    pub fn base_url(&self) -> &str {
        &self.inner.base
    }

    /// The wire format of requests and responses.
    pub fn format(&self) -> Format {
        self.inner.format
    }

    /// Whether a login has completed (or a token was given to the builder)
    /// and not been closed or invalidated.
    pub fn is_logged_in(&self) -> bool {
        self.inner.session.current().is_some()
    }

    /// The bearer token of the current session: the token of the last
    /// login, or the one given to [`HttpClientBuilder::token`]. `None` before
    /// the first login, after [`close`](HaystackClient::close), and against a server
    /// that requires no authentication. Hand it to a WebSocket endpoint that
    /// accepts HTTP tokens (`WsClientBuilder::token` in hs-ws-client), or to
    /// another client; its `Debug` is redacted, and it must not be logged.
    pub fn auth_token(&self) -> Option<AuthToken> {
        self.inner.session.current().and_then(|grant| grant.token)
    }

    /// Logs in now unless a session is open, and answers its bearer token
    /// (see [`auth_token`](Self::auth_token)): `None` when the client has
    /// no credentials nor token, or the server requires no authentication.
    /// Calls log in by themselves when needed; this is for handing the
    /// token over before any call. It is not an op and reports no observer
    /// event.
    pub async fn login(&self) -> Result<Option<AuthToken>, HttpClientError> {
        Ok(self.grant(None).await?.token)
    }

    /// `GET {base}/{op}`: one observed call, retried when `idempotent`.
    async fn get_with(&self, op: Op, idempotent: bool) -> Result<Grid, HttpClientError> {
        let op = op.as_str();
        let started = Instant::now();
        let span = spans::client_request(Transport::Http, op);
        let result = self
            .execute(&Call {
                op,
                method: Method::GET,
                body: None,
                idempotent,
            })
            .instrument(span.clone())
            .await;
        self.report(op, started, &span, result)
    }

    /// `POST {base}/{op}` with `grid`: one observed call, retried when
    /// `idempotent` (see [`RetryPolicy`]).
    async fn post_named(
        &self,
        op: &str,
        grid: &Grid,
        idempotent: bool,
    ) -> Result<Grid, HttpClientError> {
        let started = Instant::now();
        let span = spans::client_request(Transport::Http, op);
        let result = match self.encode(grid) {
            Ok(body) => {
                self.execute(&Call {
                    op,
                    method: Method::POST,
                    body: Some(body),
                    idempotent,
                })
                .instrument(span.clone())
                .await
            }
            Err(error) => Err(error),
        };
        self.report(op, started, &span, result)
    }

    fn encode(&self, grid: &Grid) -> Result<String, HttpClientError> {
        codec::encode_grid(grid, self.inner.format).map_err(HttpClientError::Encode)
    }

    /// Fires the call's one observer event, and records its outcome on its
    /// span.
    fn report<T>(
        &self,
        op: &str,
        started: Instant,
        span: &tracing::Span,
        result: Result<T, HttpClientError>,
    ) -> Result<T, HttpClientError> {
        spans::record_outcome(span, result.as_ref().err().map(HttpClientError::kind));
        match &result {
            Ok(_) => self.inner.observer.on_request(op, started.elapsed()),
            Err(error @ HttpClientError::Tls { url, reason, .. }) => {
                log::debug!(target: targets::HTTP_CLIENT, "{op}: TLS handshake with {url} failed: {reason}");
                // A failed handshake is the connection's failure, reported
                // as every transport reports one: op `connect`.
                self.inner
                    .observer
                    .on_error(CONNECT_OP, error.kind().as_str());
            }
            Err(error) => self.inner.observer.on_error(op, error.kind().as_str()),
        }
        result
    }

    /// Runs a call with the retry policy, within the call's deadline. A
    /// retry whose backoff would end past the deadline is not made: the call
    /// fails with the last attempt's error, which says what happened.
    async fn execute(&self, call: &Call<'_>) -> Result<Grid, HttpClientError> {
        let attempts = self.inner.retry.attempts_for(call.idempotent);
        let deadline = tokio::time::Instant::now() + self.inner.deadline;
        let mut attempt = 1;
        loop {
            let result = tokio::time::timeout_at(deadline, self.attempt(call))
                .await
                .unwrap_or_else(|_| {
                    Err(HttpClientError::Timeout {
                        url: self.inner.op_url(call.op),
                        after: self.inner.deadline,
                    })
                });
            match result {
                Err(error) if attempt < attempts && error.is_transient() => {
                    let wait = self.inner.retry.wait(attempt);
                    if tokio::time::Instant::now() + wait >= deadline {
                        return Err(error);
                    }
                    log::warn!(
                        target: targets::HTTP_CLIENT,
                        "{} attempt {attempt}/{attempts} failed ({error}); retrying in {wait:?}",
                        call.op
                    );
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    /// One attempt: log in if needed, send, and on a `401` log in again once
    /// and repeat.
    async fn attempt(&self, call: &Call<'_>) -> Result<Grid, HttpClientError> {
        let url = self.inner.op_url(call.op);
        let grant = self.grant(None).await?;
        let response = self
            .send(&url, call.method.clone(), call.body.as_deref(), &grant)
            .await?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return self.read_response(&url, response).await;
        }
        if self.inner.credentials.is_none() {
            return Err(refused(&grant));
        }
        // The token expired or was revoked: a fresh login, then once more.
        log::warn!(
            target: targets::HTTP_CLIENT,
            "{} {url} answered 401; logging in again",
            call.method
        );
        let grant = self.grant(Some(&grant)).await?;
        let response = self
            .send(&url, call.method.clone(), call.body.as_deref(), &grant)
            .await?;
        if response.status() == StatusCode::UNAUTHORIZED {
            return Err(refused(&grant));
        }
        self.read_response(&url, response).await
    }

    /// The grant to send with: the current one, or a new login when there is
    /// none or the current one is `stale`. Concurrent callers share one
    /// login.
    async fn grant(&self, stale: Option<&Grant>) -> Result<Grant, HttpClientError> {
        let session = &self.inner.session;
        let Some(credentials) = &self.inner.credentials else {
            // Anonymous, or a pre-issued token: nothing to log in with.
            return Ok(session.current().unwrap_or(Grant { token: None }));
        };
        if let Some(stale) = stale {
            session.invalidate(stale);
        }
        if let Some(grant) = session.current() {
            return Ok(grant);
        }
        let _login = session.login.lock().await;
        // Another call may have logged in while this one waited.
        if let Some(grant) = session.current() {
            return Ok(grant);
        }
        let grant = auth::login(&self.inner, credentials).await?;
        session.set(grant.clone());
        Ok(grant)
    }

    async fn send(
        &self,
        url: &str,
        method: Method,
        body: Option<&str>,
        grant: &Grant,
    ) -> Result<reqwest::Response, HttpClientError> {
        log::debug!(target: targets::HTTP_CLIENT, "{method} {url}");
        let media_type = HeaderValue::from_static(self.inner.format.content_type());
        let mut request = self
            .inner
            .http
            .request(method, url)
            .header(CONTENT_TYPE, media_type.clone())
            .header(ACCEPT, media_type);
        if let Some(token) = &grant.token {
            let bearer = Authorization::Bearer {
                auth_token: token.expose().to_owned(),
            };
            let mut value = HeaderValue::from_str(&bearer.header_value()).map_err(|_| {
                HttpClientError::Scram(hs_core::auth::AuthError::Malformed(
                    "auth token is not a valid header value",
                ))
            })?;
            value.set_sensitive(true);
            request = request.header(AUTHORIZATION, value);
        }
        if let Some(body) = body {
            request = request.body(body.to_owned());
        }
        request
            .send()
            .await
            .map_err(|error| HttpClientError::from_reqwest(url, error, self.inner.timeout))
    }

    async fn read_response(
        &self,
        url: &str,
        response: reqwest::Response,
    ) -> Result<Grid, HttpClientError> {
        let status = response.status();
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let body = response
            .bytes()
            .await
            .map_err(|error| HttpClientError::from_reqwest(url, error, self.inner.timeout))?;
        if status != StatusCode::OK {
            let end = body.len().min(ERROR_BODY_LIMIT);
            return Err(HttpClientError::Status {
                status: status.as_u16(),
                url: url.to_owned(),
                body: String::from_utf8_lossy(&body[..end]).into_owned(),
            });
        }
        let format = if body.is_empty() {
            self.inner.format
        } else {
            Format::from_content_type(content_type.as_deref()).map_err(HttpClientError::Decode)?
        };
        let grid = codec::decode_grid(&body, format).map_err(HttpClientError::Decode)?;
        if let Some(dis) = codec::error_message(&grid) {
            let trace = grid
                .meta
                .as_ref()
                .and_then(|meta| match meta.get("errTrace") {
                    Some(Value::Str(trace)) => Some(trace.value().to_owned()),
                    _ => None,
                });
            // The kind an hs server names, so client and server report one
            // error type for one failure; foreign servers name none.
            let kind = codec::error_kind(&grid).unwrap_or(ErrorKind::ErrorGrid);
            return Err(HttpClientError::ErrorGrid { dis, trace, kind });
        }
        Ok(grid)
    }

    /// The observer events go to, behind the isolation guard.
    pub fn observer(&self) -> &Arc<dyn MetricsObserver> {
        self.inner.observer.inner()
    }
}

impl From<HttpClientError> for ClientError {
    fn from(error: HttpClientError) -> Self {
        let (kind, name) = (error.kind(), error.as_str());
        let failure = error.auth_failure().cloned();
        ClientError::new(error, kind, name, failure)
    }
}

#[async_trait::async_trait]
impl HaystackClient for HttpClient {
    /// Any op by name, with the method the op allows: a bodiless `GET
    /// {base}/{op}` for the ops without arguments (`about`, `ops`,
    /// `formats`, `close`: [`Op::takes_no_arguments`]; `grid` is not sent),
    /// else `POST {base}/{op}` with `grid`. Retried only when the op is one
    /// of the idempotent reads (see [`RetryPolicy`]). Unlike
    /// [`close`](HaystackClient::close), `call("close", ..)` is an ordinary call: it
    /// logs in if needed and keeps the session.
    async fn call(&self, op: &str, grid: Grid) -> Result<Grid, ClientError> {
        // Ops not in the standard list are treated as writes.
        let known = op.parse::<Op>().ok();
        Ok(match known {
            Some(known) if known.takes_no_arguments() => {
                self.get_with(known, known.is_idempotent_read()).await?
            }
            _ => {
                let idempotent = known.is_some_and(Op::is_idempotent_read);
                self.post_named(op, &grid, idempotent).await?
            }
        })
    }

    /// Ends the session: sends the `close` op once (best effort: `GET
    /// {base}/close` with the current token, no retry, no new login) and
    /// forgets the token. Nothing is sent when no login has happened. A
    /// token the server no longer knows (expired or revoked: a `401`) means
    /// the session has already ended, which is what `close` asks for: that
    /// is a success. The client stays usable: the next call logs in again.
    async fn close(&self) -> Result<(), ClientError> {
        let op = Op::Close.as_str();
        let grant = self.inner.session.take();
        if grant.is_none() && self.inner.credentials.is_some() {
            return Ok(());
        }
        let started = Instant::now();
        let url = self.inner.op_url(op);
        let grant = grant.unwrap_or(Grant { token: None });
        let had_token = grant.token.is_some();
        let span = spans::client_request(Transport::Http, op);
        let result = async {
            match self.send(&url, Method::GET, None, &grant).await {
                Ok(response) if response.status() == StatusCode::UNAUTHORIZED => {
                    if had_token {
                        log::info!(target: targets::AUTH, "close: the server had already ended the session (token expired or revoked)");
                        Ok(())
                    } else {
                        Err(refused(&grant))
                    }
                }
                Ok(response) => self.read_response(&url, response).await.map(drop),
                Err(error) => Err(error),
            }
        }
        .instrument(span.clone())
        .await;
        let result = self.report(op, started, &span, result);
        log::info!(target: targets::HTTP_CLIENT, "session closed at {}", self.inner.base);
        Ok(result?)
    }

    /// Only reads, so it is retried like the other reads.
    async fn point_write_array(&self, id: &Ref) -> Result<Grid, ClientError> {
        let grid = request::point_write_array(id);
        Ok(self
            .post_named(Op::PointWrite.as_str(), &grid, true)
            .await?)
    }
}
