//! The observer layer: exactly one of `on_request` / `on_error` per API
//! request, with the real duration and a stable error type.
//!
//! The layer that decides how a request ended (the op handler, the auth
//! middleware, the timeout) attaches an [`Outcome`] to the response; this
//! layer, the outermost of the API stack, removes it and reports it. A
//! response without an `Outcome` is reported under the route's op (on the
//! route of unknown ops, the op its path names) and classified by its
//! status code: that is how a successful op reply
//! (which skips the extension's allocation) and a panic turned into a `500`
//! are reported, so nothing goes unreported.
//!
//! The same layer opens the request's `haystack.request` span
//! ([`hs_core::spans`]): made under the span current when the request
//! arrives (one the application's own layers opened, if any), entered
//! whenever the request's future is polled, and given the outcome the
//! observer reports.

use hs_core::observe::targets;
use std::borrow::Cow;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::{Method, StatusCode};
use axum::response::IntoResponse;
use axum::response::Response;
use futures_util::FutureExt;
use futures_util::future::CatchUnwind;
use hs_core::observe::labels::{OpLabel, label_of};
use hs_core::observe::{ErrorKind, GuardedObserver, MetricsObserver, Transport};
use hs_core::spans::{self, Parent};
use pin_project_lite::pin_project;
use tokio::time::Timeout;
use tower::{Layer, Service};
use tracing::{Level, Span};

use crate::limits::timeout_response;

/// The op name reported for auth handshake steps (HELLO and SCRAM), which
/// are not requests of an op.
pub(crate) use hs_core::observe::labels::AUTH as AUTH_OP;
/// The op name reported when the path names no plausible op.
pub(crate) use hs_core::observe::labels::INVALID as INVALID_OP;

/// How a request ended, attached to the response as an extension by the
/// layer that decided it.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    /// The op name to report; `None` means "the route's".
    pub(crate) op: Option<OpLabel>,
    /// `None` for a non-error response.
    pub(crate) error: Option<ErrorKind>,
}

impl Outcome {
    /// A successful request of `op`.
    pub(crate) fn ok(op: impl Into<OpLabel>) -> Self {
        Outcome {
            op: Some(op.into()),
            error: None,
        }
    }

    /// A failed request of `op`.
    pub(crate) fn error(op: impl Into<OpLabel>, kind: ErrorKind) -> Self {
        Outcome {
            op: Some(op.into()),
            error: Some(kind),
        }
    }

    /// A failed request of the route's op.
    pub(crate) fn error_on_route(kind: ErrorKind) -> Self {
        Outcome {
            op: None,
            error: Some(kind),
        }
    }

    /// Attaches this outcome to `response`.
    pub(crate) fn attach(self, mut response: Response) -> Response {
        response.extensions_mut().insert(self);
        response
    }
}

/// State of the observer layer.
#[derive(Debug, Clone)]
pub(crate) struct ObserveState {
    pub(crate) observer: GuardedObserver,
    pub(crate) base_path: Arc<str>,
    /// The request deadline, applied here so that a timeout is observed.
    pub(crate) request_timeout: Duration,
}

/// The op label for a path segment naming an op: the op name when it is a
/// standard op, the segment itself when it is a short identifier (so an
/// unknown op is still visible in logs; Prometheus maps it to `_other`),
/// `invalid` otherwise.
pub(crate) fn op_name_label(name: &str) -> OpLabel {
    let plausible = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if plausible {
        label_of(name)
    } else {
        Cow::Borrowed(INVALID_OP)
    }
}

/// The op label of a request to `path` on the route of unknown ops
/// (`{base}/{op}`).
fn path_label(base_path: &str, path: &str) -> OpLabel {
    let segment = path
        .strip_prefix(base_path)
        .and_then(|rest| rest.strip_prefix('/'))
        .unwrap_or("");
    op_name_label(segment)
}

/// The error type of a response that carries no [`Outcome`].
pub(crate) fn kind_from_status(status: StatusCode) -> Option<ErrorKind> {
    match status.as_u16() {
        100..=399 => None,
        401 => Some(ErrorKind::Auth),
        403 => Some(ErrorKind::Forbidden),
        404 => Some(ErrorKind::NotFound),
        406 | 415 => Some(ErrorKind::Unsupported),
        408 | 504 => Some(ErrorKind::Timeout),
        413 => Some(ErrorKind::TooLarge),
        429 | 503 => Some(ErrorKind::Overloaded),
        400..=499 => Some(ErrorKind::BadRequest),
        _ => Some(ErrorKind::ServerError),
    }
}

/// The observer layer, outermost on an API route (inside the security
/// headers): times the request from receipt, bounds it by the request
/// deadline, turns a panic into a `500`, and reports the outcome under the
/// route's op.
///
/// tower-http's `TimeoutLayer` and `CatchPanicLayer` are not used: the
/// first answers a bare status (not the `503` with `Retry-After` this
/// server answers, observed as `timeout`), the second boxes every response
/// body.
///
/// Written as a plain tower layer rather than `axum::middleware::from_fn`,
/// which boxes a future and clones the inner service on every request.
#[derive(Debug, Clone)]
pub(crate) struct ObserveLayer {
    state: Arc<ObserveState>,
    /// The route's op label; `None` on the route of unknown ops, whose
    /// label is the path's op segment.
    route: Option<OpLabel>,
}

impl ObserveLayer {
    pub(crate) fn new(state: ObserveState) -> Self {
        ObserveLayer {
            state: Arc::new(state),
            route: None,
        }
    }

    /// The layer of the route whose requests are observed as `op`.
    pub(crate) fn route(&self, op: Option<OpLabel>) -> Self {
        ObserveLayer {
            state: self.state.clone(),
            route: op,
        }
    }
}

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Observe {
            inner,
            state: self.state.clone(),
            route: self.route.clone(),
        }
    }
}

/// The service of [`ObserveLayer`].
#[derive(Debug, Clone)]
pub(crate) struct Observe<S> {
    inner: S,
    state: Arc<ObserveState>,
    route: Option<OpLabel>,
}

impl<S> Service<Request> for Observe<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = ObservedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let started = Instant::now();
        let method = request.method().clone();
        let route_label = match &self.route {
            Some(label) => label.clone(),
            None => path_label(&self.state.base_path, request.uri().path()),
        };
        let request_bytes = body_bytes(request.body());
        // The peer is looked up only when a span can be recorded at all.
        let peer = if tracing::level_enabled!(Level::INFO) {
            request
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| *addr)
        } else {
            None
        };
        let span = spans::server_request(
            Transport::Http,
            &route_label,
            peer.as_ref().map(|addr| addr as &dyn std::fmt::Display),
            None,
            Parent::Current,
        );
        let inner = {
            // A service may work in `call` already.
            let _entered = span.enter();
            AssertUnwindSafe(self.inner.call(request)).catch_unwind()
        };
        ObservedFuture {
            span,
            inner: tokio::time::timeout_at((started + self.state.request_timeout).into(), inner),
            started,
            method,
            route_label,
            request_bytes,
            state: self.state.clone(),
        }
    }
}

pin_project! {
    /// The response future of [`Observe`].
    pub(crate) struct ObservedFuture<F> {
        #[pin]
        inner: Timeout<CatchUnwind<AssertUnwindSafe<F>>>,
        // The request's span, entered while `inner` is polled; it closes
        // with this future.
        span: Span,
        started: Instant,
        method: Method,
        route_label: OpLabel,
        // The request body's length when known up front (Content-Length).
        request_bytes: Option<u64>,
        state: Arc<ObserveState>,
    }
}

impl<F> Future for ObservedFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let polled = {
            let _entered = this.span.enter();
            ready!(this.inner.poll(cx))
        };
        let mut response = match polled {
            Ok(Ok(Ok(response))) => response,
            Ok(Ok(Err(never))) => match never {},
            Ok(Err(panic)) => panic_response(panic),
            Err(_elapsed) => timeout_response(this.state.request_timeout),
        };
        let elapsed = this.started.elapsed();
        let status = response.status();
        let outcome = response.extensions_mut().remove::<Outcome>();
        let (op, error) = match &outcome {
            Some(outcome) => (
                outcome.op.as_deref().unwrap_or(this.route_label),
                outcome.error,
            ),
            None => (&**this.route_label, kind_from_status(status)),
        };
        if !this.span.is_disabled() {
            if op != &**this.route_label {
                spans::record_op(this.span, op);
            }
            spans::record_outcome(this.span, error);
        }
        let observer = &this.state.observer;
        match error {
            None => observer.on_request(op, elapsed),
            Some(kind) => observer.on_error(op, kind.as_str()),
        }
        log::debug!(
            target: targets::HTTP_SERVER,
            "{} {op} -> {} in {:.3} ms, {} B in, {} B out{}",
            this.method,
            status.as_u16(),
            elapsed.as_secs_f64() * 1e3,
            ByteCount(*this.request_bytes),
            ByteCount(body_bytes(response.body())),
            error.map(|k| format!(" ({k})")).unwrap_or_default()
        );
        Poll::Ready(Ok(response))
    }
}

/// A body's length when it is known without reading it: a full body, or a
/// request with a Content-Length.
fn body_bytes(body: &axum::body::Body) -> Option<u64> {
    axum::body::HttpBody::size_hint(body).exact()
}

/// A byte count for the log line: the number, or `?` when the body streams.
struct ByteCount(Option<u64>);

impl std::fmt::Display for ByteCount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(bytes) => write!(f, "{bytes}"),
            None => f.write_str("?"),
        }
    }
}

/// The `500` for a handler that panicked (observed by status as
/// `server_error`).
fn panic_response(payload: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned());
    log::error!(target: targets::HTTP_SERVER, "request handler panicked: {message}");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        [(CONTENT_TYPE, "text/plain; charset=utf-8")],
        "Internal server error",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_standard_unknown_and_hostile_ops() {
        assert_eq!(path_label("/api", "/api/hisRead"), "hisRead");
        assert_eq!(path_label("/api", "/api/fooBar"), "fooBar");
        assert_eq!(path_label("/api", "/api/a/b"), INVALID_OP);
        assert_eq!(path_label("/api", "/other"), INVALID_OP);
        assert_eq!(path_label("", "/read"), "read");
        let long = format!("/api/{}", "x".repeat(65));
        assert_eq!(path_label("/api", &long), INVALID_OP);
    }

    #[test]
    fn statuses_map_to_kinds() {
        assert_eq!(kind_from_status(StatusCode::OK), None);
        assert_eq!(
            kind_from_status(StatusCode::UNAUTHORIZED),
            Some(ErrorKind::Auth)
        );
        assert_eq!(
            kind_from_status(StatusCode::PAYLOAD_TOO_LARGE),
            Some(ErrorKind::TooLarge)
        );
        assert_eq!(
            kind_from_status(StatusCode::INTERNAL_SERVER_ERROR),
            Some(ErrorKind::ServerError)
        );
        assert_eq!(
            kind_from_status(StatusCode::METHOD_NOT_ALLOWED),
            Some(ErrorKind::BadRequest)
        );
    }
}
