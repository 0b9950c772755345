//! A Haystack WebSocket server, wire-compatible with haystack-py's WebSocket
//! protocol, that reports every connection, message, request and error to a
//! [`MetricsObserver`](hs_core::observe::MetricsObserver).
//!
//! ```no_run
//! use std::sync::Arc;
//! use hs_ws_server::{WsConfig, WsServer, WsServerState};
//!
//! # async fn demo(ops: Arc<dyn hs_core::ops::HaystackOps>) -> Result<(), hs_ws_server::WsServerError> {
//! let state = WsServerState::builder(ops)
//!     .observer(Arc::new(hs_core::observe::NoopObserver))
//!     .config(WsConfig::default().with_max_connections(100))
//!     .build();
//! // Standalone:
//! let server = WsServer::bind("127.0.0.1:8080", state.clone()).await?;
//! // ... or mounted at /api/ws beside an HTTP API:
//! let app: axum::Router = axum::Router::new().merge(hs_ws_server::router(state));
//! # Ok(()) }
//! ```
//!
//! What the server does, in short (the full guide is `docs/ws-server.md`):
//!
//! - JSON envelopes `{"id","op","grid"[,"ch"]}` for the 13 ops, many in
//!   flight per connection, each answered as it completes; batches (arrays)
//!   answered in one array in request order; errors as error grids, never by
//!   closing the connection.
//! - Subprotocol `haystack` echoed when offered; clients offering none are
//!   served without one.
//! - Watch pushes `{"type":"watch",..}` of the changes the store delivers
//!   to the connection's [`WatchInbox`](hs_core::ops::WatchInbox)
//!   ([`HaystackOps::watch_attach`](hs_core::ops::HaystackOps::watch_attach)),
//!   sent only to the connections that subscribed the watch. A connection
//!   that falls behind gets the latest state of each changed entity, never
//!   a gap. Its watches close when it ends
//!   ([`HaystackOps::watch_release`](hs_core::ops::HaystackOps::watch_release)).
//! - Authentication: none, a static token, live tokens of a shared
//!   [`TokenStore`](hs_core::auth::TokenStore), or SCRAM-SHA-256 messages;
//!   an [`Authorizer`](hs_core::auth::Authorizer) per request.
//! - Limits in [`WsConfig`]; close codes in [`close`].
//!
//! Log targets: `hs::ws::server` (dispatch, push, limits, listening),
//! `hs::ws::conn` (frames, heartbeat, lifecycle), `hs::auth`. Each
//! connection runs in a `haystack.ws.connection` `tracing` span and each
//! request in a `haystack.request` span linked to it, on target `hs::span`
//! ([`hs_core::spans`], `docs/opentelemetry.md`).

mod auth;
pub mod close;
mod config;
mod conn;
mod endpoint;
mod error;
mod outgoing;
mod protocol;
mod server;
mod shared;
mod state;
mod writer;

pub use config::{DEFAULT_READ_BUFFER_SIZE, DEFAULT_SEND_BUDGET, WsConfig};
pub use endpoint::{CONNECT_OP, WS_PATH, method_router, router};
pub use error::WsServerError;
pub use hs_listener::{ClientAuth, ServerTls, ServerTlsBuilder, TlsError};
pub use server::{ShutdownHandle, WsServer};
pub use state::{WsServerState, WsServerStateBuilder};
