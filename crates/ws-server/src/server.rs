//! The standalone server: a listener serving the endpoint at any path, with
//! a graceful shutdown handle.

use hs_core::observe::targets;
use std::net::SocketAddr;

use axum::Router;
use axum::serve::ListenerExt;
use tokio::net::{TcpListener, ToSocketAddrs};

use crate::error::WsServerError;
use crate::method_router;
use crate::state::WsServerState;

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
#[derive(Debug)]
pub struct WsServer {
    listener: TcpListener,
    local_addr: SocketAddr,
    state: WsServerState,
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
        })
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
        } = self;
        log::info!(target: targets::WS_SERVER, "listening on {local_addr}");
        let app = Router::new().fallback_service(method_router(state.clone()));
        let stop = state.clone();
        // Small request/response frames: Nagle would add latency.
        let listener = listener.tap_io(|tcp| {
            if let Err(err) = tcp.set_nodelay(true) {
                log::debug!(target: targets::WS_SERVER, "cannot set TCP_NODELAY: {err}");
            }
        });
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move { stop.inner.shutdown.cancelled().await })
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
