//! The axum endpoint: limits checked before the upgrade, then one task per
//! connection.

use hs_core::observe::targets;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::http::{Extensions, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, any};
use hs_core::auth::PeerCertificate;
use hs_core::observe::{ErrorKind, MetricsObserver};

use crate::conn;
use crate::state::WsServerState;

/// The path [`router`] mounts the endpoint at.
pub const WS_PATH: &str = hs_core::endpoint::WS_PATH;

/// The op name observed when an upgrade is refused (`on_error("connect",
/// "overloaded")` at the connection limit, `on_error("connect",
/// "connect")` while shutting down).
pub const CONNECT_OP: &str = "connect";

/// A router serving the WebSocket endpoint at [`WS_PATH`] (`/api/ws`).
/// Merge it into an application's router:
///
/// ```no_run
/// # use std::sync::Arc;
/// # fn demo(ops: Arc<dyn hs_core::ops::HaystackOps>) {
/// let ws = hs_ws_server::WsServerState::builder(ops).build();
/// let app: axum::Router = axum::Router::new().merge(hs_ws_server::router(ws));
/// # }
/// ```
///
/// The peer address comes from axum's `ConnectInfo<SocketAddr>`: serve with
/// `into_make_service_with_connect_info::<SocketAddr>()` (else observers see
/// `unknown`).
pub fn router(state: WsServerState) -> Router {
    Router::new().route(WS_PATH, method_router(state))
}

/// The endpoint as a `MethodRouter`, for mounting at any path:
/// `Router::new().route("/ws", method_router(state))`.
pub fn method_router(state: WsServerState) -> MethodRouter {
    any(upgrade).with_state(state)
}

async fn upgrade(
    State(state): State<WsServerState>,
    extensions: Extensions,
    upgrade: WebSocketUpgrade,
) -> Response {
    let peer: Arc<str> = match extensions.get::<ConnectInfo<SocketAddr>>() {
        Some(ConnectInfo(addr)) => addr.to_string().into(),
        None => Arc::from("unknown"),
    };
    let certificate = extensions.get::<PeerCertificate>().cloned();
    let inner = &state.inner;
    if inner.shutdown.is_cancelled() {
        log::debug!(target: targets::WS_SERVER, "{peer}: upgrade refused, shutting down");
        inner
            .observer
            .on_error(CONNECT_OP, ErrorKind::Connect.as_str());
        return (StatusCode::SERVICE_UNAVAILABLE, "server shutting down").into_response();
    }
    let Ok(permit) = inner.connections.clone().try_acquire_owned() else {
        log::warn!(
            target: targets::WS_SERVER,
            "{peer}: upgrade refused, connection limit of {} reached",
            inner.config.max_connections
        );
        inner
            .observer
            .on_error(CONNECT_OP, ErrorKind::Overloaded.as_str());
        return (StatusCode::SERVICE_UNAVAILABLE, "too many connections").into_response();
    };
    let max = inner.config.max_message_size;
    let read_buffer = inner.config.read_buffer_size;
    let tracker = inner.tracker.clone();
    let failed_peer = peer.clone();
    upgrade
        .protocols([hs_core::ws::SUBPROTOCOL])
        .max_message_size(max)
        .max_frame_size(max)
        .read_buffer_size(read_buffer)
        .on_failed_upgrade(move |err| {
            log::debug!(target: targets::WS_SERVER, "{failed_peer}: upgrade failed: {err}");
        })
        .on_upgrade(move |socket| {
            tracker.track_future(conn::run(state, socket, peer, certificate, permit))
        })
}
