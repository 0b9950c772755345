//! The accept loop of the hs servers ([`AcceptLoop`]): it serves an axum
//! `Router` over plain TCP or TLS ([`ServerTls`]) with a bound on open
//! connections, a header-read timeout, an idle timeout, throttled WARNs and
//! a graceful shutdown. `hs-http-server` and `hs-ws-server`'s standalone
//! `WsServer` both run it; library users get it through their builders.
//!
//! TLS is rustls with the `ring` provider, configured per server (never the
//! process-wide default provider): TLS 1.3 (1.2 when allowed), ALPN `h2`
//! (served as HTTP/2) and `http/1.1`, optionally client certificates
//! verified against a client CA, whose end-entity certificate reaches every
//! request of the connection as a
//! [`PeerCertificate`](hs_core::auth::PeerCertificate) extension.
//! [`ServerTls::reload`] swaps the configuration without a restart
//! ([`ServerTls::watch_files`] calls it when the files change).
//!
//! What is logged (on the target the server gives) and observed:
//!
//! | event | log | observer |
//! | --- | --- | --- |
//! | connection over the bound | WARN, at most one a second | `on_error("connect", "overloaded")` |
//! | TLS handshake failed or timed out | WARN with the peer and rustls' reason, at most one a second | `on_error("connect", "tls")` |
//! | `accept` failing for want of resources | WARN, at most one a second | — |
//! | handshake done, client certificate | DEBUG with the version, ALPN, certificate's names | — |
//! | header-read timeout, idle close, connection errors | DEBUG | — |
//! | [`ServerTls::reload`] (also from [`ServerTls::watch_files`]) | INFO, or WARN when refused | — |
//!
//! No key material and no certificate bytes are logged.

mod activity;
mod conn;
mod limits;
mod serve;
mod tls;

pub use limits::{
    ConnLimits, DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS,
};
pub use serve::{AcceptLoop, CONNECT_OP};
pub use tls::{ClientAuth, ServerTls, ServerTlsBuilder, TlsError};
