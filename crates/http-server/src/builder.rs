//! [`HttpServerBuilder`]: configuration, the router, binding.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::handler::Handler;
use axum::http::HeaderValue;
use axum::http::header::{STRICT_TRANSPORT_SECURITY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS};
use axum::middleware::from_fn_with_state;
use axum::response::Response;
use hs_core::auth::{Authorizer, CertUserMap, RoleAuthorizer, ScramServer};
use hs_core::codec::Format;
use hs_core::observe::labels::{INVALID, OpLabel};
use hs_core::observe::{GuardedObserver, MetricsObserver, noop};
use hs_core::ops::{HaystackOps, Op, Pipeline};
use hs_listener::{ConnLimits, ServerTls};
use std::convert::Infallible;
use tokio::net::{TcpListener, ToSocketAddrs};

use tower::{ServiceBuilder, service_fn};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::auth::{AuthState, authenticate};
use crate::error::HttpServerError;
use crate::handler::{ApiState, handle_op, unknown_op};
use crate::limits::{DEFAULT_BODY_LIMIT, DEFAULT_REQUEST_TIMEOUT};
use crate::observe::{ObserveLayer, ObserveState, Outcome};
use crate::responses;
use crate::server::{DEFAULT_SHUTDOWN_GRACE, HttpServer};

/// The longest connection timeout taken: deadlines are instants, and an
/// instant a few centuries away does not exist.
const MAX_TIMEOUT: Duration = Duration::from_secs(365 * 24 * 3_600);

/// The `Strict-Transport-Security` value of every response over TLS.
const HSTS: &str = "max-age=63072000; includeSubDomains";

/// The default API base path.
pub const DEFAULT_BASE_PATH: &str = hs_core::endpoint::HTTP_PATH;

/// Builds the Haystack HTTP API: an axum [`Router`] ([`into_router`](Self::into_router))
/// or a running [`HttpServer`] ([`bind`](Self::bind)).
///
/// Defaults: base path `/api`, no authentication, JSON when the client
/// expresses no preference, 16 MiB body limit, 30 s request deadline,
/// [`NoopObserver`](hs_core::observe::NoopObserver), [`RoleAuthorizer`];
/// a running server also bounds its connections (1 000 open, 10 s to send
/// a request's headers, 5 s idle between requests).
pub struct HttpServerBuilder {
    ops: Arc<dyn HaystackOps>,
    observer: Arc<dyn MetricsObserver>,
    auth: Option<ScramServer>,
    cert_users: CertUserMap,
    authorizer: Arc<dyn Authorizer>,
    base_path: String,
    body_limit: usize,
    request_timeout: Duration,
    default_format: Format,
    shutdown_grace: Duration,
    limits: ConnLimits,
    tls: Option<ServerTls>,
    extra: Vec<Router>,
}

impl std::fmt::Debug for HttpServerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpServerBuilder")
            .field("observer", &self.observer.observer_name())
            .field("auth", &self.auth.is_some())
            .field("cert_users", &self.cert_users.rules().len())
            .field("base_path", &self.base_path)
            .field("body_limit", &self.body_limit)
            .field("request_timeout", &self.request_timeout)
            .field("default_format", &self.default_format)
            .field("max_connections", &self.limits.max_connections)
            .field("header_read_timeout", &self.limits.header_read_timeout)
            .field("idle_timeout", &self.limits.idle_timeout)
            .field("tls", &self.tls)
            .field("extra_routers", &self.extra.len())
            .finish_non_exhaustive()
    }
}

impl HttpServerBuilder {
    pub(crate) fn new(ops: Arc<dyn HaystackOps>) -> Self {
        HttpServerBuilder {
            ops,
            observer: noop(),
            auth: None,
            cert_users: CertUserMap::new(),
            authorizer: Arc::new(RoleAuthorizer::new()),
            base_path: DEFAULT_BASE_PATH.to_owned(),
            body_limit: DEFAULT_BODY_LIMIT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            default_format: Format::Json,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            limits: ConnLimits::default(),
            tls: None,
            extra: Vec::new(),
        }
    }

    /// The observer of every API request; wrapped once in a
    /// [`GuardedObserver`].
    #[must_use]
    pub fn observer(mut self, observer: Arc<dyn MetricsObserver>) -> Self {
        self.observer = observer;
        self
    }

    /// Requires SCRAM-SHA-256 authentication (HELLO, SCRAM, BEARER) on
    /// every API path. Bearer tokens are checked against `scram`'s
    /// [`TokenStore`](hs_core::auth::TokenStore); give the WebSocket server a
    /// clone of that store so one login serves both.
    #[must_use]
    pub fn auth(mut self, scram: ScramServer) -> Self {
        self.auth = Some(scram);
        self
    }

    /// Lets a verified client certificate stand for a login: a request
    /// without an `Authorization` header, on a TLS connection whose client
    /// certificate a rule of `map` maps, runs as the mapped principal (its
    /// role authorised like any other). Needs a TLS configuration that asks
    /// for client certificates. Other requests authenticate with SCRAM when
    /// [`auth`](Self::auth) is set, and are refused with `403` otherwise.
    #[must_use]
    pub fn cert_users(mut self, map: CertUserMap) -> Self {
        self.cert_users = map;
        self
    }

    /// Decides which authenticated principal may run which op (default
    /// [`RoleAuthorizer`]: readers may not write). Used only with
    /// [`auth`](Self::auth) or [`cert_users`](Self::cert_users).
    #[must_use]
    pub fn authorizer(mut self, authorizer: Arc<dyn Authorizer>) -> Self {
        self.authorizer = authorizer;
        self
    }

    /// The API base path (default `/api`; `""` serves ops at the root).
    #[must_use]
    pub fn base_path(mut self, base_path: impl Into<String>) -> Self {
        self.base_path = base_path.into();
        self
    }

    /// The largest accepted request body in bytes (default 16 MiB); larger
    /// bodies get `413` with an error grid.
    #[must_use]
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// The request deadline (default 30 s); a request still running then
    /// gets `503`, observed as `timeout`.
    #[must_use]
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// The response format when `Accept` is absent or a wildcard (default
    /// JSON, as haystack-py; the Haystack spec's default is Zinc).
    #[must_use]
    pub fn default_format(mut self, format: Format) -> Self {
        self.default_format = format;
        self
    }

    /// How long [`HttpServer::shutdown`] waits for in-flight requests
    /// (default 10 s).
    #[must_use]
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// The most TCP connections open at once (default
    /// [`DEFAULT_MAX_CONNECTIONS`](crate::DEFAULT_MAX_CONNECTIONS), at
    /// least 1), WebSocket connections upgraded from them included: one more
    /// is answered `503` and closed, with a WARN (at most one a second), and
    /// observed as `on_error("connect", "overloaded")`.
    /// Applies to [`bind`](Self::bind) and [`serve`](Self::serve), not to
    /// [`into_router`](Self::into_router).
    #[must_use]
    pub fn max_connections(mut self, max: usize) -> Self {
        self.limits.max_connections = max.max(1);
        self
    }

    /// How long a client has to send a request's headers (default
    /// [`DEFAULT_HEADER_READ_TIMEOUT`](crate::DEFAULT_HEADER_READ_TIMEOUT)),
    /// counted from when the connection is ready for the request: accepted,
    /// or its previous response sent. A client still sending them then is
    /// disconnected, however steadily it trickles bytes. At most a year.
    /// Applies to [`bind`](Self::bind) and [`serve`](Self::serve).
    #[must_use]
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.limits.header_read_timeout = timeout.min(MAX_TIMEOUT);
        self
    }

    /// How long a kept-alive connection may wait for its next request
    /// (default [`DEFAULT_IDLE_TIMEOUT`](crate::DEFAULT_IDLE_TIMEOUT)) before
    /// the server closes it. The header-read timeout runs in that wait too,
    /// so the shorter of the two applies. At most a year. Applies to
    /// [`bind`](Self::bind) and [`serve`](Self::serve).
    #[must_use]
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.limits.idle_timeout = timeout.min(MAX_TIMEOUT);
        self
    }

    /// Serves HTTPS (and WSS on merged WebSocket routes) with this
    /// configuration: TLS 1.3 (and 1.2 if the configuration allows it),
    /// HTTP/2 when the client's ALPN picks `h2`, else HTTP/1.1; client
    /// certificates when it has a client CA, each verified one reaching the
    /// connection's requests as a
    /// [`PeerCertificate`](hs_core::auth::PeerCertificate) extension.
    ///
    /// The handshake runs on the connection's own task within the
    /// [`header_read_timeout`](Self::header_read_timeout); a failed or late
    /// one is a WARN naming the peer and the reason (at most one a second)
    /// and `on_error("connect", "tls")`. Keep a clone of `tls` to
    /// [`reload`](ServerTls::reload) it. [`HttpServer::base_url`] starts
    /// with `https://`, and every response carries
    /// `Strict-Transport-Security: max-age=63072000; includeSubDomains`, as
    /// haystack-py's. Applies to [`bind`](Self::bind) and
    /// [`serve`](Self::serve), not to [`into_router`](Self::into_router).
    #[must_use]
    pub fn tls(mut self, tls: ServerTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Serves `router` beside the API (a WebSocket endpoint, `/metrics`,
    /// health checks). Its routes get the security headers but neither the
    /// API's authentication nor its observer: they bring their own.
    #[must_use]
    pub fn merge(mut self, router: Router) -> Self {
        self.extra.push(router);
        self
    }

    /// Serves `router` under `path` beside the API, like [`merge`](Self::merge).
    #[must_use]
    pub fn nest(mut self, path: &str, router: Router) -> Self {
        self.extra.push(Router::new().nest(path, router));
        self
    }

    /// The complete router: the API under the base path, the merged
    /// routers, a `404` fallback, and the security headers on everything.
    pub fn into_router(self) -> Result<Router, HttpServerError> {
        Ok(self.build()?.router)
    }

    fn build(self) -> Result<Built, HttpServerError> {
        let ops = self.ops;
        let base = normalise_base_path(&self.base_path)?;
        let api_state = Arc::new(ApiState {
            pipeline: Pipeline::new(ops, self.authorizer),
            body_limit: self.body_limit,
            default_format: self.default_format,
        });
        let observer = GuardedObserver::new(self.observer);
        let observe = ObserveLayer::new(ObserveState {
            observer: observer.clone(),
            base_path: Arc::from(base.as_str()),
            request_timeout: self.request_timeout,
        });
        let auth = (self.auth.is_some() || !self.cert_users.is_empty()).then(|| {
            let state = AuthState {
                scram: self.auth,
                cert_users: self.cert_users,
            };
            from_fn_with_state(Arc::new(state), authenticate)
        });
        let headers = ServiceBuilder::new()
            .layer(SetResponseHeaderLayer::overriding(
                X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ))
            .layer(SetResponseHeaderLayer::overriding(
                X_FRAME_OPTIONS,
                HeaderValue::from_static("DENY"),
            ))
            // Over HTTPS, as haystack-py: browsers keep to HTTPS for two years.
            .option_layer(self.tls.is_some().then(|| {
                SetResponseHeaderLayer::overriding(
                    STRICT_TRANSPORT_SECURITY,
                    HeaderValue::from_static(HSTS),
                )
            }));
        // Each API route is its own stack (security headers, observer layer
        // observing the route's op, auth, the op), added with
        // `route_service`: `Router::layer` would box and clone every route a
        // second time per request.
        let stack = |op: Option<OpLabel>| {
            headers
                .clone()
                .layer(observe.route(op))
                .option_layer(auth.clone())
        };
        let mut api = Router::new();
        for op in Op::ALL {
            let state = api_state.clone();
            let handler = service_fn(move |request: Request| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(handle_op(state, op, request).await) }
            });
            let route = stack(Some(OpLabel::Borrowed(op.as_str())));
            api = api.route_service(&format!("{base}/{}", op.as_str()), route.service(handler));
        }
        let mut app = api
            .route_service(
                &format!("{base}/{{op}}"),
                stack(None).service(unknown_op.with_state(())),
            )
            .route_service(
                &format!("{base}/{{op}}/{{*rest}}"),
                stack(Some(OpLabel::Borrowed(INVALID))).service(nested_path.with_state(())),
            );
        for router in self.extra {
            app = app.merge(router.layer(headers.clone()));
        }
        let not_found =
            service_fn(|_request: Request| async { Ok::<_, Infallible>(responses::not_found()) });
        let app = app.fallback_service(headers.service(not_found));
        Ok(Built {
            router: app,
            base,
            grace: self.shutdown_grace,
            limits: self.limits,
            tls: self.tls,
            observer,
        })
    }

    /// Binds `addr` (use `127.0.0.1:0` in tests) and starts serving.
    pub async fn bind(self, addr: impl ToSocketAddrs) -> Result<HttpServer, HttpServerError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(HttpServerError::Bind)?;
        self.serve(listener)
    }

    /// Starts serving on an already bound listener.
    pub fn serve(self, listener: TcpListener) -> Result<HttpServer, HttpServerError> {
        let Built {
            router,
            base,
            grace,
            limits,
            tls,
            observer,
        } = self.build()?;
        HttpServer::start(listener, router, base, grace, limits, tls, observer)
    }
}

/// What [`HttpServerBuilder::build`] makes.
struct Built {
    router: Router,
    base: String,
    grace: Duration,
    limits: ConnLimits,
    tls: Option<ServerTls>,
    observer: GuardedObserver,
}

/// `{base}/{op}/anything`: not an API path.
async fn nested_path() -> Response {
    Outcome::error(INVALID, hs_core::observe::ErrorKind::NotFound).attach(responses::not_found())
}

/// `""`, or `/seg[/seg...]` without a trailing slash.
fn normalise_base_path(raw: &str) -> Result<String, HttpServerError> {
    let trimmed = raw.trim_end_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    let with_slash = if trimmed.starts_with('/') {
        trimmed.to_owned()
    } else {
        format!("/{trimmed}")
    };
    let valid = with_slash[1..].split('/').all(|segment| {
        !segment.is_empty()
            && segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'))
    });
    if valid {
        Ok(with_slash)
    } else {
        Err(HttpServerError::InvalidBasePath(raw.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::normalise_base_path;

    #[test]
    fn base_paths() {
        assert_eq!(normalise_base_path("/api").unwrap(), "/api");
        assert_eq!(normalise_base_path("api/").unwrap(), "/api");
        assert_eq!(normalise_base_path("/").unwrap(), "");
        assert_eq!(normalise_base_path("/haystack/v1").unwrap(), "/haystack/v1");
        assert!(normalise_base_path("/a//b").is_err());
        assert!(normalise_base_path("/{op}").is_err());
    }
}
