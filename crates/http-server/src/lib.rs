//! The Project Haystack HTTP API (`/api/{op}`) as an axum router, with
//! SCRAM-SHA-256 authentication and an observer on every request.
//!
//! ```no_run
//! use std::sync::Arc;
//! use hs_core::observe::LoggingObserver;
//! use hs_http_server::HttpServer;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let store = Arc::new(hs_core::demo::building());
//! let server = HttpServer::builder(store)
//!     .observer(Arc::new(LoggingObserver::new()))
//!     .bind("127.0.0.1:8080")
//!     .await?;
//! println!("serving {}", server.base_url());
//! tokio::signal::ctrl_c().await?;
//! server.shutdown().await?;
//! # Ok(())
//! # }
//! ```
//!
//! What the router does, in the order a request meets it (the user guide
//! is `docs/http-server.md`):
//!
//! | layer | answers |
//! | --- | --- |
//! | connection (`bind`, `serve`; the accept loop of `hs-listener`) | `503` and close past `max_connections` (WARN, `on_error("connect", "overloaded")`); with [`tls`](HttpServerBuilder::tls), the handshake (a failed one: WARN, `on_error("connect", "tls")`), HTTP/2 when ALPN picks `h2`; close when the handshake or the headers take longer than `header_read_timeout` or the connection idles past `idle_timeout` |
//! | security headers | every response gets `x-content-type-options: nosniff` and `x-frame-options: DENY` |
//! | observer | exactly one `on_request(op, duration)` or `on_error(op, error_type)` per API request |
//! | deadline | `503` after the request timeout, observed as `timeout` |
//! | auth (optional) | HELLO / SCRAM handshake steps (`401` challenges, `200` + `Authentication-Info`, `403`), `401` without a valid bearer token |
//! | op handler | `404` unknown op, `405` wrong method, `406` before the op runs, `413`, `415`, error grids with HTTP 200, the op's grid |
//!
//! Log targets: `hs::http::server` (requests, errors, lifecycle) and
//! `hs::auth` (handshake steps and refusals; never secrets). Every API
//! request also runs in a `tracing` span, `haystack.request` on target
//! `hs::span` ([`hs_core::spans`], `docs/opentelemetry.md`).

mod auth;
mod builder;
mod error;
mod handler;
mod limits;
mod observe;
mod query;
mod responses;
mod server;

pub use builder::{DEFAULT_BASE_PATH, HttpServerBuilder};
pub use error::HttpServerError;
pub use hs_listener::{
    ClientAuth, DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS,
    ServerTls, ServerTlsBuilder, TlsError,
};
pub use limits::{DEFAULT_BODY_LIMIT, DEFAULT_REQUEST_TIMEOUT};
pub use server::{DEFAULT_SHUTDOWN_GRACE, HttpServer};

use std::sync::Arc;

use hs_core::ops::HaystackOps;

impl HttpServer {
    /// A builder for the API router or a running server serving `ops`, e.g.
    /// a [`MemoryStore`](hs_core::store::MemoryStore). Share the same `Arc`
    /// with the WebSocket server (`WsServerState::builder`) to serve one
    /// store on both.
    pub fn builder(ops: Arc<dyn HaystackOps>) -> HttpServerBuilder {
        HttpServerBuilder::new(ops)
    }
}
