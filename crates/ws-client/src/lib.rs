//! A Haystack WebSocket client speaking haystack-py's protocol, built to be
//! held open for weeks and observed through [`MetricsObserver`].
//!
//! ```no_run
//! use hs_ws_client::{HaystackClient, WsClient};
//!
//! # async fn demo() -> Result<(), hs_ws_client::WsClientError> {
//! let client = WsClient::builder("ws://127.0.0.1:8080/api/ws")
//!     .scram("demo", "demo-pass")
//!     .connect()
//!     .await?;
//! let sites = client.read_filter("site", None).await?;
//! println!("{} sites", sites.rows.len());
//! client.close().await;
//! # Ok(())
//! # }
//! ```
//!
//! Three handles, all with the op methods of [`HaystackClient`]:
//!
//! - [`WsClient`]: one connection; many requests in flight, matched by id;
//!   per-request timeouts; batches; watch pushes as a `Stream`; heartbeat.
//! - [`ReconnectingWsClient`]: reconnects with [`Backoff`], authenticates
//!   again and re-subscribes its watches.
//! - [`WsPool`]: several connections behind one handle, and [`WsChannel`]s
//!   that tag requests with `ch`.
//!
//! # Events
//!
//! The observer set with [`WsClientBuilder::observer`] sees, per the hs
//! event contract: `on_ws_connect` / `on_ws_disconnect` once per connection
//! with the URL (whatever ends it; each reconnect is a new pair);
//! `on_ws_message_sent` / `on_ws_message_recv` once per data frame with its
//! exact payload length in bytes, labelled with the op, `batch`, `auth`,
//! `push`, or `invalid` (a frame the client could not decode or attribute,
//! such as a late answer to a timed-out request); and exactly one of
//! `on_request` (duration from just before send to the decoded response)
//! or `on_error` (a stable [`ErrorKind`](hs_core::observe::ErrorKind) name)
//! per request, batch items included. A request whose future is dropped
//! before it completes is abandoned and reports nothing.
//!
//! Logs: `hs::ws::client` (requests, reconnection, pool), `hs::ws::conn`
//! (connection lifecycle, frames, heartbeat), `hs::auth` (handshake steps,
//! never secrets).
//!
//! [`MetricsObserver`]: hs_core::observe::MetricsObserver

mod api;
mod auth;
mod backoff;
mod client;
mod config;
mod conn;
mod error;
mod pool;
mod reconnect;
pub mod requests;
mod watch;
mod wire;

pub use api::HaystackClient;
pub use backoff::Backoff;
pub use client::WsClient;
pub use config::{Auth, WsClientBuilder};
pub use error::WsClientError;
pub use pool::{WsChannel, WsPool};
pub use reconnect::ReconnectingWsClient;
pub use watch::{WatchEvents, WatchPush};

/// The grid type of requests and responses (the other Haystack value types
/// are in [`hs_core::value`]).
pub use hs_core::value::Grid;
