//! The accept loop: every TCP connection is served by hyper's HTTP/1
//! connection (upgrades included, for the WebSocket endpoint) under a bound
//! on open connections, a header-read timeout and an idle timeout.
//!
//! `axum::serve` has neither the bound nor the timeouts, and it stops for a
//! second, silently, when `accept` fails for lack of file descriptors.

use hs_core::observe::targets;
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use hs_core::clock::Throttle;
use hs_core::observe::{ErrorKind, GuardedObserver, MetricsObserver as _};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::{Layer as _, ServiceExt as _};

/// Default bound on open TCP connections (HTTP and upgraded WebSocket
/// connections together): 1 000.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1_000;

/// Default time a client has to send a request's headers: 10 s.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The op name a refused connection is observed under:
/// `on_error("connect", "overloaded")`, as the WebSocket endpoint reports a
/// refused upgrade.
const CONNECT_OP: &str = "connect";

/// Default time a connection may stay idle between requests: 5 s.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the accept loop pauses when `accept` fails for want of
/// resources (file descriptors, memory) before it tries again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// At most one WARN per this interval for each kind of trouble, so that an
/// attack does not flood the log.
const WARN_INTERVAL: Duration = Duration::from_secs(1);

/// What every connection of one server shares.
#[derive(Debug, Clone)]
pub(crate) struct ConnLimits {
    pub(crate) max_connections: usize,
    pub(crate) header_read_timeout: Duration,
    pub(crate) idle_timeout: Duration,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
        }
    }
}

/// Accepts connections until `shutdown` resolves, then lets every open
/// HTTP connection finish its request (they are told to close) and
/// returns when they have. Upgraded connections are not waited for: they
/// belong to their endpoint.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnLimits,
    observer: GuardedObserver,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(
        limits.max_connections.min(Semaphore::MAX_PERMITS),
    ));
    let stop = CancellationToken::new();
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
                log::debug!(target: targets::HTTP_SERVER, "accept: {error}");
                continue;
            }
            Err(error) => {
                // EMFILE, ENFILE, ENOBUFS, ENOMEM: the process is out of
                // something the next accept needs. Pause, then go on.
                if let Some(suppressed) = failed.allow(std::time::Instant::now()) {
                    log::warn!(
                        target: targets::HTTP_SERVER,
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
                    target: targets::HTTP_SERVER,
                    "connection from {peer} refused: {} connections open (max_connections){}",
                    limits.max_connections,
                    suppressed_note(suppressed)
                );
            }
            refuse(stream);
            observer.on_error(CONNECT_OP, ErrorKind::Overloaded.as_str());
            continue;
        };
        let router = router.clone();
        let limits = limits.clone();
        let stop = stop.clone();
        connections.spawn(serve_connection(stream, peer, slot, router, limits, stop));
    }
    drop(listener);
    stop.cancel();
    connections.close();
    connections.wait().await;
    Ok(())
}

/// A best-effort `503` to a connection over the bound, then close: a client
/// that has not sent its request yet gets an answer it can retry on
/// rather than a bare reset.
fn refuse(stream: TcpStream) {
    const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\n\
connection: close\r\ncontent-length: 0\r\n\r\n";
    let _ = stream.try_write(BUSY);
}

/// Serves one connection until it closes or upgrades.
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    slot: OwnedSemaphorePermit,
    router: Router,
    limits: ConnLimits,
    stop: CancellationToken,
) {
    let activity = Arc::new(Activity::new());
    // The slot lives in the socket: an upgraded connection holds it until
    // its endpoint drops the socket.
    let io = TokioIo::new(Tracked {
        stream,
        activity: activity.clone(),
        _slot: slot,
    });
    let app = axum::Extension(ConnectInfo(peer)).layer(router);
    let counted = activity.clone();
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let busy = counted.begin();
        let call = app.clone().oneshot(request);
        async move {
            let response = call.await;
            drop(busy);
            response
        }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let mut conn = pin!(builder.serve_connection(io, service).with_upgrades());
    let mut closing = false;
    let mut idle_check = activity.next_check(limits.idle_timeout);
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(error) = result {
                    if error.is_timeout() {
                        log::debug!(
                            target: targets::HTTP_SERVER,
                            "{peer}: request headers not complete within {:?}; closed",
                            limits.header_read_timeout
                        );
                    } else {
                        log::debug!(target: targets::HTTP_SERVER, "{peer}: connection ended: {error}");
                    }
                }
                return;
            }
            () = stop.cancelled(), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
            () = tokio::time::sleep_until(idle_check), if !closing => {
                idle_check = activity.next_check(limits.idle_timeout);
                if activity.is_idle(limits.idle_timeout) {
                    log::debug!(
                        target: targets::HTTP_SERVER,
                        "{peer}: idle for {:?}; closing",
                        limits.idle_timeout
                    );
                    // Closes the connection between requests; mid-request it
                    // only asks for the connection to close after it.
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
        }
    }
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

fn suppressed_note(suppressed: u64) -> String {
    if suppressed == 0 {
        String::new()
    } else {
        format!(" ({suppressed} more since the last warning)")
    }
}

/// When a connection last moved a byte, and how many of its requests are
/// being handled.
#[derive(Debug)]
struct Activity {
    start: Instant,
    /// Nanoseconds from `start` to the last read or write.
    last: AtomicU64,
    busy: AtomicUsize,
}

impl Activity {
    fn new() -> Self {
        Activity {
            start: Instant::now(),
            last: AtomicU64::new(0),
            busy: AtomicUsize::new(0),
        }
    }

    fn touch(&self) {
        let nanos = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.last.store(nanos, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.start + Duration::from_nanos(self.last.load(Ordering::Relaxed))
    }

    /// When to look again whether the connection has been idle for
    /// `timeout`: that long after its last byte, or, while a request is
    /// being handled, that long from now.
    fn next_check(&self, timeout: Duration) -> Instant {
        let now = Instant::now();
        if self.busy.load(Ordering::Relaxed) > 0 {
            now + timeout
        } else {
            (self.last() + timeout).max(now)
        }
    }

    /// No request is being handled and no byte moved for `timeout`.
    fn is_idle(&self, timeout: Duration) -> bool {
        self.busy.load(Ordering::Relaxed) == 0 && self.last().elapsed() >= timeout
    }

    fn begin(self: &Arc<Self>) -> Busy {
        self.busy.fetch_add(1, Ordering::Relaxed);
        Busy(self.clone())
    }
}

/// A request being handled; dropped when its response is ready (or the
/// request is abandoned).
struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

pin_project_lite::pin_project! {
    /// The socket, stamping [`Activity`] on every byte moved, and holding
    /// the connection's slot.
    struct Tracked {
        #[pin]
        stream: TcpStream,
        activity: Arc<Activity>,
        _slot: OwnedSemaphorePermit,
    }
}

impl AsyncRead for Tracked {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        let before = buf.filled().len();
        let poll = this.stream.poll_read(cx, buf);
        if buf.filled().len() > before {
            this.activity.touch();
        }
        poll
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let poll = this.stream.poll_write(cx, buf);
        if matches!(poll, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        poll
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let poll = this.stream.poll_write_vectored(cx, bufs);
        if matches!(poll, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        poll
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().stream.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().stream.poll_shutdown(cx)
    }
}
