//! Everything the hs transports share: the observer framework, and (as the
//! wire-layer work lands) Haystack values, wire formats, SCRAM and the ops.
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
pub mod clock;
pub mod codec;
pub mod demo;
pub mod endpoint;
pub mod observe;
pub mod ops;
pub mod store;
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub mod tls;
pub mod value;
pub mod ws;
