//! Everything the hs transports share: Haystack values and wire formats
//! ([`codec`], [`ws`]), SCRAM and bearer tokens ([`auth`]), the ops and their
//! requests ([`ops`]), the one request pipeline both servers run
//! ([`ops::Pipeline`]), what every client offers ([`client`]), the in-memory
//! store ([`store`]), the `tracing` spans of the servers ([`spans`]), and the
//! observer framework, re-exported from hs-observe as [`observe`].
//!
//! ```
//! use std::sync::Arc;
//! use hs_core::observe::{MetricsObserver, NoopObserver};
//!
//! let observer: Arc<dyn MetricsObserver> = Arc::new(NoopObserver);
//! observer.on_request("read", std::time::Duration::from_millis(2));
//! ```
//!
//! # Features
//!
//! - `test-util`: test hooks: `observe::RecordingObserver`, which records
//!   every event in order, for your tests and ours; fixed SCRAM nonces
//!   (`ScramClient::with_fixed_nonce`, `ScramServerBuilder::fixed_server_nonce`)
//!   to replay captured exchanges; `MemoryStore::read_scan`, the unindexed
//!   baseline of filter reads.
//! - `tls`: `tls`, the clients' one TLS trust policy (rustls with ring, the
//!   operating system's trust store by default).

#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod auth;
pub mod client;
pub mod clock;
pub mod codec;
pub mod demo;
pub mod endpoint;
pub mod ops;
pub mod spans;
pub mod store;
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub mod tls;
pub mod value;
pub mod ws;

/// The observer framework, the hs-observe crate, re-exported so the
/// transports and their users reach it through hs-core.
pub use hs_observe as observe;
