//! The standalone server: a listener serving the endpoint at any path, with
//! a graceful shutdown handle.

use hs_core::observe::targets;
use std::net::SocketAddr;

use axum::Router;
use hs_listener::{AcceptLoop, ConnLimits, ServerTls};
use tokio::net::{TcpListener, ToSocketAddrs};

use crate::error::WsServerError;
use crate::method_router;
use crate::state::WsServerState;

/// TCP connections the standalone server takes beyond
/// [`WsConfig::max_connections`](crate::WsConfig::max_connections): room for
/// connections still in their TLS handshake or upgrade request, so that one
/// over the WebSocket limit is refused by the endpoint (HTTP 503 "too many
/// connections") rather than by the accept loop.
const UPGRADE_HEADROOM: usize = 64;

/// A WebSocket server on its own listener. Like haystack-py's standalone
/// server it accepts the upgrade at any path (clients use `/api/ws`).
///
/// ```no_run
/// # use std::sync::Arc;
/// # async fn demo(ops: Arc<dyn hs_core::ops::HaystackOps>) -> Result<(), hs_ws_server::WsServerError> {
/// use hs_ws_server::{WsServer, WsServerState};
///
/// let server = WsServer::bind("127.0.0.1:0", WsServerState::builder(ops).build()).await?;
/// println!("ws://{}/api/ws", server.local_addr());
/// let shutdown = server.shutdown_handle();
/// let running = tokio::spawn(server.serve());
/// // ...
/// shutdown.shutdown(); // every connection gets close 1001
/// running.await.ok();
/// # Ok(()) }
/// ```
///
/// It runs `hs-listener`'s accept loop: at most
/// [`WsConfig::max_connections`](crate::WsConfig::max_connections) + 64 TCP
/// connections (the endpoint refuses upgrades past `max_connections`), 10 s
/// for the TLS handshake and for the upgrade request's headers, 5 s idle
/// before an upgrade, `TCP_NODELAY`. Connection-level failures (a refused
/// connection, a failed TLS handshake) are logged on `hs::ws::conn` and
/// observed as `on_error("connect", ..)` on the state's observer.
#[derive(Debug)]
pub struct WsServer {
    listener: TcpListener,
    local_addr: SocketAddr,
    state: WsServerState,
    tls: Option<ServerTls>,
}

impl WsServer {
    /// Binds `addr` (port 0 picks a free port; see
    /// [`local_addr`](Self::local_addr)).
    pub async fn bind(
        addr: impl ToSocketAddrs + std::fmt::Debug,
        state: WsServerState,
    ) -> Result<Self, WsServerError> {
        let shown = format!("{addr:?}");
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| WsServerError::Bind {
                addr: shown.clone(),
                source,
            })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| WsServerError::Bind {
                addr: shown,
                source,
            })?;
        Ok(WsServer {
            listener,
            local_addr,
            state,
            tls: None,
        })
    }

    /// Serves WSS with this configuration, as
    /// `HttpServerBuilder::tls` does HTTPS: the handshake on the
    /// connection's task within 10 s; a failed one is a WARN on
    /// `hs::ws::conn` naming the peer and the reason (at most one a second)
    /// and `on_error("connect", "tls")`. A verified client certificate
    /// reaches the upgrade request as a
    /// [`PeerCertificate`](hs_core::auth::PeerCertificate) extension. Keep a
    /// clone of `tls` to [`reload`](ServerTls::reload) it.
    #[must_use]
    pub fn tls(mut self, tls: ServerTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The server's state (connection count, config).
    pub fn state(&self) -> &WsServerState {
        &self.state
    }

    /// A handle that stops the server gracefully.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            state: self.state.clone(),
        }
    }

    /// Serves until [`ShutdownHandle::shutdown`]; then stops accepting, closes
    /// every connection with 1001 and returns once they have all ended.
    pub async fn serve(self) -> Result<(), WsServerError> {
        let WsServer {
            listener,
            local_addr,
            state,
            tls,
        } = self;
        let tls_note = if tls.is_some() { " (TLS)" } else { "" };
        log::info!(target: targets::WS_SERVER, "listening on {local_addr}{tls_note}");
        let app = Router::new().fallback_service(method_router(state.clone()));
        let stop = state.clone();
        let mut limits = ConnLimits::default();
        limits.max_connections = state
            .config()
            .max_connections
            .saturating_add(UPGRADE_HEADROOM);
        // Small request/response frames: Nagle would add latency.
        AcceptLoop::new(targets::WS_CONN)
            .limits(limits)
            .observer(state.inner.observer.clone())
            .tls(tls)
            .nodelay(true)
            .serve(listener, app, async move {
                stop.inner.shutdown.cancelled().await;
            })
            .await
            .map_err(WsServerError::Serve)?;
        state.closed().await;
        log::info!(target: targets::WS_SERVER, "stopped listening on {local_addr}");
        Ok(())
    }
}

/// Stops a [`WsServer`] (or any mounted endpoint's connections) gracefully.
#[derive(Debug, Clone)]
pub struct ShutdownHandle {
    state: WsServerState,
}

impl ShutdownHandle {
    /// Starts the shutdown: no new connections, close 1001 to every open one.
    pub fn shutdown(&self) {
        self.state.shutdown();
    }

    /// Resolves when every connection has ended after a shutdown.
    pub async fn closed(&self) {
        self.state.closed().await;
    }
}
