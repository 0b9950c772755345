//! [`AcceptLoop`]: accepts TCP connections under a bound and hands each to
//! its own task ([`crate::conn`]).
//!
//! `axum::serve` has neither the bound nor the timeouts, and it stops for a
//! second, silently, when `accept` fails for lack of file descriptors.

use std::io;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hs_core::clock::Throttle;
use hs_core::observe::{ErrorKind, GuardedObserver, MetricsObserver as _, noop};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::conn::{self, Shared};
use crate::limits::ConnLimits;
use crate::tls::ServerTls;

/// The op name connection-level failures are observed under:
/// `on_error("connect", "overloaded")` for a connection over the bound,
/// `on_error("connect", "tls")` for a failed TLS handshake.
pub const CONNECT_OP: &str = "connect";

/// How long the accept loop pauses when `accept` fails for want of
/// resources (file descriptors, memory) before it tries again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// At most one WARN per this interval for each kind of trouble, so that an
/// attack does not flood the log.
pub(crate) const WARN_INTERVAL: Duration = Duration::from_secs(1);

/// Serves an axum [`Router`] on a [`TcpListener`], plain or over TLS, each
/// connection on a task of its own:
///
/// - at most [`ConnLimits::max_connections`] open; one more is answered
///   `503` (best effort; over TLS only closed) and closed, with a WARN (at most one a second) and
///   `on_error("connect", "overloaded")`;
/// - with TLS, the handshake runs in the connection's task, bounded by the
///   header-read timeout; a failed one is a WARN naming the peer and
///   rustls' reason (throttled alike) and `on_error("connect", "tls")`;
///   ALPN `h2` is served as HTTP/2, anything else as HTTP/1.1 with upgrades
///   (WebSocket);
/// - a client has [`ConnLimits::header_read_timeout`] to send a request's
///   headers (HTTP/1.1) and a connection idle for
///   [`ConnLimits::idle_timeout`] is closed;
/// - every request carries `ConnectInfo<SocketAddr>` and, when the client
///   presented a verified certificate, its
///   [`PeerCertificate`](hs_core::auth::PeerCertificate) in its extensions.
///
/// ```no_run
/// use hs_core::observe::targets;
/// use hs_listener::AcceptLoop;
///
/// # async fn demo(router: axum::Router) -> std::io::Result<()> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// AcceptLoop::new(targets::HTTP_SERVER)
///     .serve(listener, router, async { let _ = tokio::signal::ctrl_c().await; })
///     .await
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct AcceptLoop {
    limits: ConnLimits,
    observer: GuardedObserver,
    log_target: &'static str,
    tls: Option<ServerTls>,
    nodelay: bool,
}

impl AcceptLoop {
    /// An accept loop logging on `log_target`, with the default
    /// [`ConnLimits`], no observer, no TLS.
    pub fn new(log_target: &'static str) -> Self {
        AcceptLoop {
            limits: ConnLimits::default(),
            observer: GuardedObserver::new(noop()),
            log_target,
            tls: None,
            nodelay: false,
        }
    }

    /// The connections' bounds.
    #[must_use]
    pub fn limits(mut self, limits: ConnLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The observer of connection-level failures (`connect`).
    #[must_use]
    pub fn observer(mut self, observer: GuardedObserver) -> Self {
        self.observer = observer;
        self
    }

    /// Serves TLS with this configuration (`None`: plain TCP).
    #[must_use]
    pub fn tls(mut self, tls: Option<ServerTls>) -> Self {
        self.tls = tls;
        self
    }

    /// Sets `TCP_NODELAY` on every accepted socket (default off).
    #[must_use]
    pub fn nodelay(mut self, nodelay: bool) -> Self {
        self.nodelay = nodelay;
        self
    }

    /// Accepts connections until `shutdown` resolves, then lets every open
    /// HTTP connection finish its request (they are told to close) and
    /// returns when they have. Upgraded connections are not waited for:
    /// they belong to their endpoint.
    pub async fn serve(
        self,
        listener: TcpListener,
        router: Router,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> io::Result<()> {
        let AcceptLoop {
            limits,
            observer,
            log_target,
            tls,
            nodelay,
        } = self;
        let target = log_target;
        let slots = Arc::new(Semaphore::new(
            limits.max_connections.clamp(1, Semaphore::MAX_PERMITS),
        ));
        let stop = CancellationToken::new();
        let shared = Arc::new(Shared::new(
            limits.clone(),
            observer.clone(),
            log_target,
            tls,
            stop.clone(),
        ));
        let connections = TaskTracker::new();
        let mut refused = Throttle::new(WARN_INTERVAL);
        let mut failed = Throttle::new(WARN_INTERVAL);
        let mut shutdown = pin!(shutdown);
        loop {
            let accepted = tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => accepted,
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(error) if is_connection_error(&error) => {
                    log::debug!(target: target, "accept: {error}");
                    continue;
                }
                Err(error) => {
                    // EMFILE, ENFILE, ENOBUFS, ENOMEM: the process is out of
                    // something the next accept needs. Pause, then go on.
                    if let Some(suppressed) = failed.allow(std::time::Instant::now()) {
                        log::warn!(
                            target: target,
                            "accept failed: {error}; retrying in {ACCEPT_BACKOFF:?}{}",
                            suppressed_note(suppressed)
                        );
                    }
                    tokio::select! {
                        () = &mut shutdown => break,
                        () = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                    }
                }
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                if let Some(suppressed) = refused.allow(std::time::Instant::now()) {
                    log::warn!(
                        target: target,
                        "connection from {peer} refused: {} connections open (max_connections){}",
                        limits.max_connections,
                        suppressed_note(suppressed)
                    );
                }
                if !shared.is_tls() {
                    refuse(stream);
                }
                observer.on_error(CONNECT_OP, ErrorKind::Overloaded.as_str());
                continue;
            };
            if nodelay && let Err(error) = stream.set_nodelay(true) {
                log::debug!(target: target, "cannot set TCP_NODELAY: {error}");
            }
            connections.spawn(conn::serve_connection(
                stream,
                peer,
                slot,
                router.clone(),
                shared.clone(),
            ));
        }
        drop(listener);
        stop.cancel();
        connections.close();
        connections.wait().await;
        Ok(())
    }
}

/// A best-effort `503` to a connection over the bound, then close: a client
/// that has not sent its request yet gets an answer it can retry on
/// rather than a bare reset. Over TLS it could not be read: the connection
/// is only closed.
fn refuse(stream: TcpStream) {
    const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\n\
connection: close\r\ncontent-length: 0\r\n\r\n";
    let _ = stream.try_write(BUSY);
}

/// Per-connection failures of `accept`: the next one may succeed at once.
fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}

pub(crate) fn suppressed_note(suppressed: u64) -> String {
    if suppressed == 0 {
        String::new()
    } else {
        format!(" ({suppressed} more since the last warning)")
    }
}
