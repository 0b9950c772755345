//! A Haystack WebSocket client speaking haystack-py's protocol, built to be
//! held open for weeks and observed through [`MetricsObserver`].
//!
//! ```
//! use hs_ws_client::{HaystackClient, WsClient};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let store = std::sync::Arc::new(hs_core::demo::building());
//! # let server = hs_ws_server::WsServer::bind(
//! #     "127.0.0.1:0",
//! #     hs_ws_server::WsServerState::builder(store).build(),
//! # ).await?;
//! # let url = format!("ws://{}/api/ws", server.local_addr());
//! # tokio::spawn(server.serve());
//! // `.credentials(user, password)` or `.token(..)` on the builder to authenticate.
//! let client = WsClient::builder(&url).connect().await?;
//! let sites = client.read_filter("site", None).await?;
//! assert_eq!(sites.rows.len(), 1);
//! client.close().await?;
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
//! # URL, authentication, TLS
//!
//! `ws://host:port` means `ws://host:port/api/ws`; any other path is used as
//! given. [`Auth`] is none, SCRAM over messages, or a token sent as
//! `{"authToken":..}`: a server's static token, or the bearer token of an
//! HTTP login (`HttpClient::login` in hs-http-client), which hs servers
//! sharing a token store and haystack-py's FastAPI `/api/ws` accept. A
//! refusal is [`WsClientError::Auth`] with an
//! [`AuthFailure`](hs_core::auth::AuthFailure) worded as the HTTP client
//! words it, and with the server's close code and reason when it closed
//! the connection ([`WsClientError::close_code`]). A token or an anonymous
//! client gets no answer on success, so its refusal surfaces on the first
//! request.
//!
//! `wss://` trusts the operating system's store by default; CAs given to
//! [`WsClientBuilder::add_root_certificate`] or
//! [`WsClientBuilder::add_root_certificates_pem`] replace it; a rustls
//! configuration given to [`WsClientBuilder::tls_config`] replaces both.
//! [`WsClientBuilder::client_identity`] presents a client certificate
//! (mutual TLS); [`WsClientBuilder::tls_server_name`] checks the server's
//! certificate against a name other than the URL's host, and sends it as
//! SNI. The HTTP client has the same setters and follows the same policy
//! ([`hs_core::tls`]). A failed handshake is [`WsClientError::Tls`],
//! observed as `on_error("connect", "tls")`.
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
//! per request, batch items included; `on_error("connect", "tls")` once
//! per failed TLS handshake. A request whose future is dropped before it
//! completes is abandoned and reports nothing.
//!
//! Logs: `hs::ws::client` (requests, reconnection, pool), `hs::ws::conn`
//! (connection lifecycle, frames, heartbeat), `hs::auth` (handshake steps,
//! never secrets).
//!
//! [`MetricsObserver`]: hs_core::observe::MetricsObserver

mod api;
mod auth;
mod client;
mod config;
mod conn;
mod error;
mod pool;
mod reconnect;
/// Request grids for the 13 ops, shaped as haystack-py sends them.
pub use hs_core::ops::build as requests;
mod watch;
mod wire;

pub use client::WsClient;
pub use config::{Auth, DEFAULT_READ_BUFFER_SIZE, WsClientBuilder};
pub use error::{ServerClose, WsClientError};
pub use hs_core::client::{Backoff, ClientError, HaystackClient};
pub use pool::{WsChannel, WsPool};
pub use reconnect::ReconnectingWsClient;
pub use watch::{WatchEvents, WatchPush};

/// The grid type of requests and responses (the other Haystack value types
/// are in [`hs_core::value`]).
pub use hs_core::value::Grid;
