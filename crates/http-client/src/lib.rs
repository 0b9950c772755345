//! A Haystack HTTP client with SCRAM-SHA-256 login, JSON or Zinc bodies,
//! retries with backoff for the idempotent ops, and one observer event per
//! call, wire-compatible with haystack-py's servers and hs-http-server.
//!
//! ```no_run
//! use std::sync::Arc;
//! use hs_core::codec::Format;
//! use hs_core::observe::StatsObserver;
//! use hs_core::value::Ref;
//! use hs_http_client::{HaystackClient, HttpClient, RetryPolicy};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let stats = Arc::new(StatsObserver::new());
//! let client = HttpClient::builder("http://127.0.0.1:8080/api")
//!     .credentials("demo", "demo-pass")
//!     .format(Format::Zinc)
//!     .retry(RetryPolicy::default())
//!     .observer(stats.clone())
//!     .build()?;
//!
//! let sites = client.read_filter("site", None).await?;
//! let history = client.his_read(&Ref::make("demo-ahu1-dat", None), "today").await?;
//! println!("{} sites, {} samples", sites.rows.len(), history.rows.len());
//! match client.call("fooBar", Default::default()).await {
//!     Err(error) => println!("{} ({})", error, error.kind()),
//!     Ok(grid) => println!("{grid:?}"),
//! }
//! client.close().await?;
//! println!("{}", stats.snapshot());
//! # Ok(()) }
//! ```
//!
//! | item | job |
//! | --- | --- |
//! | [`HttpClient`] | the client: the 13 ops of [`HaystackClient`], typed, and [`call`](HaystackClient::call) for any op |
//! | [`HttpClientBuilder`] | credentials or token, format, timeout, retry policy, observer, TLS |
//! | [`RetryPolicy`] | which calls are retried, how often, with what backoff |
//! | [`HttpClientError`] | why a call failed, with [`kind`](HttpClientError::kind) for metrics; the trait's [`ClientError`] wraps it |
//!
//! **Base URL**: `http://host:port` means `http://host:port/api`; any other
//! path is used as given.
//!
//! **Tokens**: [`HttpClient::login`] (or [`HttpClient::auth_token`] after a
//! call) gives the session's bearer token as an
//! [`AuthToken`](hs_core::auth::AuthToken) (redacted in `Debug`), to hand to
//! a WebSocket endpoint that accepts HTTP tokens (hs, haystack-py's FastAPI
//! `/api/ws`) or to another client; [`HttpClientBuilder::token`] builds a
//! client on such a token instead of credentials. Login failures are
//! [`HttpClientError::Auth`] with an [`AuthFailure`](hs_core::auth::AuthFailure),
//! worded as the WebSocket client words them.
//!
//! **TLS**: the operating system's trust store by default; CAs given to
//! [`HttpClientBuilder::add_root_certificate`] or
//! [`HttpClientBuilder::add_root_certificates_pem`] replace it; a rustls
//! configuration given to [`HttpClientBuilder::tls_config`] replaces both.
//! [`HttpClientBuilder::client_identity`] presents a client certificate
//! (mutual TLS); [`HttpClientBuilder::tls_server_name`] checks the server's
//! certificate against a name other than the URL's host. The WebSocket
//! client has the same setters and follows the same policy
//! ([`hs_core::tls`]). A failed handshake is [`HttpClientError::Tls`]
//! (not retried), observed as `on_error("connect", "tls")` in place of the
//! call's own op.
//!
//! Logging: target `hs::http::client` (DEBUG `<METHOD> <url>` for every HTTP
//! exchange, INFO session opened and closed, WARN retries and re-logins) and
//! `hs::auth` (handshake steps at DEBUG). Passwords, proofs and tokens are
//! never logged.

#![cfg_attr(docsrs, feature(doc_cfg))]

mod auth;
mod builder;
mod client;
mod error;
mod retry;
mod session;
mod tls;

pub use builder::{DEFAULT_DEADLINE, DEFAULT_TIMEOUT, HttpClientBuilder};
pub use client::HttpClient;
pub use error::HttpClientError;
pub use hs_core::client::{Backoff, ClientError, HaystackClient};
pub use retry::RetryPolicy;
