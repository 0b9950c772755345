//! One connection: the TLS handshake (with TLS), then hyper's HTTP/1.1
//! (upgrades included, for WebSocket) or HTTP/2 (ALPN `h2`) connection
//! under the header-read and idle timeouts, until it closes, upgrades or the
//! server shuts down.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::response::Response;
use hs_core::auth::PeerCertificate;
use hs_core::clock::Throttle;
use hs_core::observe::{ErrorKind, GuardedObserver, MetricsObserver as _};
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use parking_lot::Mutex;
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

use crate::activity::{Activity, Tracked};
use crate::limits::ConnLimits;
use crate::serve::{CONNECT_OP, WARN_INTERVAL, suppressed_note};
use crate::tls::ServerTls;
use crate::tls::peer::peer_certificate;

/// What every connection of one accept loop shares.
#[derive(Debug)]
pub(crate) struct Shared {
    limits: ConnLimits,
    observer: GuardedObserver,
    target: &'static str,
    tls: Option<ServerTls>,
    stop: CancellationToken,
    /// Failed handshakes' WARNs, at most one a second.
    handshake_warns: Mutex<Throttle>,
}

impl Shared {
    pub(crate) fn new(
        limits: ConnLimits,
        observer: GuardedObserver,
        target: &'static str,
        tls: Option<ServerTls>,
        stop: CancellationToken,
    ) -> Self {
        Shared {
            limits,
            observer,
            target,
            tls,
            stop,
            handshake_warns: Mutex::new(Throttle::new(WARN_INTERVAL)),
        }
    }

    pub(crate) fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// A failed handshake: a throttled WARN and `on_error("connect", "tls")`.
    fn handshake_failed(&self, peer: SocketAddr, reason: &dyn std::fmt::Display) {
        let allowed = self.handshake_warns.lock().allow(std::time::Instant::now());
        if let Some(suppressed) = allowed {
            log::warn!(
                target: self.target,
                "TLS handshake with {peer} failed: {reason}{}",
                suppressed_note(suppressed)
            );
        }
        self.observer.on_error(CONNECT_OP, ErrorKind::Tls.as_str());
    }
}

/// Serves one connection until it closes or upgrades.
pub(crate) async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    slot: OwnedSemaphorePermit,
    router: Router,
    shared: Arc<Shared>,
) {
    let activity = Arc::new(Activity::new());
    // The slot lives in the socket: an upgraded connection holds it until
    // its endpoint drops the socket.
    let io = Tracked {
        stream,
        activity: activity.clone(),
        _slot: slot,
    };
    let Some(tls) = &shared.tls else {
        let service = Service::new(router, peer, None, activity.clone());
        serve_http1(TokioIo::new(io), service, peer, &activity, &shared).await;
        return;
    };
    let acceptor = TlsAcceptor::from(tls.config());
    let timeout = shared.limits.header_read_timeout;
    let handshake = tokio::select! {
        handshake = tokio::time::timeout(timeout, acceptor.accept(io)) => handshake,
        () = shared.stop.cancelled() => return,
    };
    let stream = match handshake {
        Ok(Ok(stream)) => stream,
        Ok(Err(error))
            if error.kind() == io::ErrorKind::UnexpectedEof && activity.is_untouched() =>
        {
            // Connected and closed without a byte (a port probe): no
            // handshake was attempted.
            log::debug!(target: shared.target, "{peer}: closed before the TLS handshake");
            return;
        }
        Ok(Err(error)) => {
            shared.handshake_failed(peer, &error);
            return;
        }
        Err(_elapsed) => {
            shared.handshake_failed(peer, &format_args!("not complete within {timeout:?}"));
            return;
        }
    };
    let session = stream.get_ref().1;
    let h2 = session.alpn_protocol() == Some(b"h2".as_slice());
    let certificate = session
        .peer_certificates()
        .and_then(|chain| chain.first())
        .and_then(|der| {
            let parsed = peer_certificate(der);
            if parsed.is_none() {
                log::warn!(
                    target: shared.target,
                    "{peer}: the client certificate verified but its names cannot be read"
                );
            }
            parsed
        });
    let version = session
        .protocol_version()
        .and_then(|version| version.as_str())
        .unwrap_or("TLS");
    let alpn = if h2 { "h2" } else { "http/1.1" };
    match &certificate {
        Some(certificate) => log::debug!(
            target: shared.target,
            "{peer}: {version}, {alpn}, client certificate {certificate}"
        ),
        None => log::debug!(target: shared.target, "{peer}: {version}, {alpn}"),
    }
    let service = Service::new(router, peer, certificate, activity.clone());
    if h2 {
        serve_http2(TokioIo::new(stream), service, peer, &activity, &shared).await;
    } else {
        serve_http1(TokioIo::new(stream), service, peer, &activity, &shared).await;
    }
}

async fn serve_http1<I>(
    io: I,
    service: Service,
    peer: SocketAddr,
    activity: &Activity,
    shared: &Shared,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(shared.limits.header_read_timeout);
    let conn = pin!(
        builder
            .serve_connection(io, service.hyper())
            .with_upgrades()
    );
    drive(
        conn,
        |conn| conn.graceful_shutdown(),
        peer,
        activity,
        shared,
    )
    .await;
}

async fn serve_http2<I>(
    io: I,
    service: Service,
    peer: SocketAddr,
    activity: &Activity,
    shared: &Shared,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let mut builder = http2::Builder::new(TokioExecutor::new());
    builder.timer(TokioTimer::new());
    let conn = pin!(builder.serve_connection(io, service.hyper()));
    drive(
        conn,
        |conn| conn.graceful_shutdown(),
        peer,
        activity,
        shared,
    )
    .await;
}

/// Runs a hyper connection to its end, asking it to close gracefully when
/// the server shuts down or it idles past the idle timeout.
async fn drive<C>(
    mut conn: Pin<&mut C>,
    graceful_shutdown: impl Fn(Pin<&mut C>),
    peer: SocketAddr,
    activity: &Activity,
    shared: &Shared,
) where
    C: Future<Output = hyper::Result<()>>,
{
    let limits = &shared.limits;
    let target = shared.target;
    let mut closing = false;
    let mut idle_check = activity.next_check(limits.idle_timeout);
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(error) = result {
                    if error.is_timeout() {
                        log::debug!(
                            target: target,
                            "{peer}: request headers not complete within {:?}; closed",
                            limits.header_read_timeout
                        );
                    } else {
                        log::debug!(target: target, "{peer}: connection ended: {error}");
                    }
                }
                return;
            }
            () = shared.stop.cancelled(), if !closing => {
                graceful_shutdown(conn.as_mut());
                closing = true;
            }
            () = tokio::time::sleep_until(idle_check), if !closing => {
                idle_check = activity.next_check(limits.idle_timeout);
                if activity.is_idle(limits.idle_timeout) {
                    log::debug!(
                        target: target,
                        "{peer}: idle for {:?}; closing",
                        limits.idle_timeout
                    );
                    // Closes the connection between requests; mid-request it
                    // only asks for the connection to close after it.
                    graceful_shutdown(conn.as_mut());
                    closing = true;
                }
            }
        }
    }
}

/// The router as one connection's service: each request gets the peer's
/// address and certificate in its extensions and counts as activity while
/// it is handled.
#[derive(Clone)]
struct Service {
    router: Router,
    peer: SocketAddr,
    certificate: Option<PeerCertificate>,
    activity: Arc<Activity>,
}

impl Service {
    fn new(
        router: Router,
        peer: SocketAddr,
        certificate: Option<PeerCertificate>,
        activity: Arc<Activity>,
    ) -> Self {
        Service {
            router,
            peer,
            certificate,
            activity,
        }
    }

    fn hyper(
        self,
    ) -> impl hyper::service::Service<
        Request<Incoming>,
        Response = Response,
        Error = Infallible,
        Future: Send + 'static,
    > + Clone {
        hyper::service::service_fn(move |mut request: Request<Incoming>| {
            let extensions = request.extensions_mut();
            extensions.insert(ConnectInfo(self.peer));
            if let Some(certificate) = &self.certificate {
                extensions.insert(certificate.clone());
            }
            let busy = self.activity.begin();
            let call = self.router.clone().oneshot(request);
            async move {
                let response = call.await;
                drop(busy);
                response
            }
        })
    }
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}
