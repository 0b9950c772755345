//! OpenTelemetry metrics for hs: [`OtelObserver`], a
//! [`MetricsObserver`](hs_observe::MetricsObserver) that records the six
//! transport events into OpenTelemetry instruments named after the semantic
//! conventions, and [`OtlpMetrics`], which exports them over OTLP
//! (HTTP/protobuf, or gRPC with the `grpc` feature) with the SDK's periodic
//! reader.
//!
//! ```no_run
//! use std::sync::Arc;
//! use hs_observe::{MetricsObserver, Side, Transport};
//! use hs_otel::OtlpMetrics;
//!
//! // Endpoint, protocol, interval and service name from the builder, or
//! // from the standard OTEL_EXPORTER_OTLP_* / OTEL_SERVICE_NAME variables.
//! let otlp = OtlpMetrics::builder().endpoint("http://127.0.0.1:4318").build()?;
//! let http_server: Arc<dyn MetricsObserver> =
//!     Arc::new(otlp.observer(Side::Server, Transport::Http));
//! // ... hand each observer to its component's builder ...
//! otlp.shutdown()?; // exports what is left
//! # Ok::<(), hs_otel::OtlpError>(())
//! ```
//!
//! An application with its own `MeterProvider` skips [`OtlpMetrics`] and
//! calls [`OtelObserver::new`] with that provider.
//!
//! # Metrics
//!
//! Scope `hs` (this crate's version). `{side}` is `server` or `client`.
//!
//! | metric | instrument | unit | attributes | from |
//! | --- | --- | --- | --- | --- |
//! | `rpc.{side}.call.duration` | Histogram (f64) | `s` | `rpc.system.name`, `rpc.method`, `hs.side`, `hs.transport` | `on_request` |
//! | `hs.rpc.{side}.call.errors` | Counter | `{call}` | `rpc.system.name`, `rpc.method`, `error.type`, `hs.side`, `hs.transport` | `on_error` |
//! | `hs.ws.connections` | Counter | `{connection}` | `hs.side` | `on_ws_connect` |
//! | `hs.ws.active_connections` | UpDownCounter | `{connection}` | `hs.side` | +1 `on_ws_connect`, −1 `on_ws_disconnect` |
//! | `hs.ws.messages` | Counter | `{message}` | `rpc.method`, `network.io.direction`, `hs.side` | `on_ws_message_sent`, `on_ws_message_recv` |
//! | `hs.ws.io` | Counter | `By` | `rpc.method`, `network.io.direction`, `hs.side` | the same, payload bytes |
//!
//! Attribute values, all from fixed lists so the number of series is bounded:
//!
//! - `rpc.system.name`: `haystack`.
//! - `rpc.method`: the Haystack op as on the wire (`read`, `hisRead`, ...),
//!   or the WebSocket message kinds `batch`, `push`, `auth`, `invalid`
//!   (hs-observe's `OBSERVED_OPS`); any other name is `_other`.
//! - `error.type`: an `ErrorKind::as_str()` name (`timeout`, `bad_request`,
//!   ...), or `_other`.
//! - `network.io.direction`: `transmit` (sent) or `receive` (received).
//! - `hs.side`: `server` or `client`; `hs.transport`: `http` or `ws`, both
//!   given when the observer is made. The WebSocket metrics carry no
//!   `hs.transport`: only WebSocket components fire those events.
//!
//! The call-duration histograms count the calls that succeeded (an
//! `on_error` carries no duration); the error counters count the rest. Their
//! bucket boundaries are [`DURATION_BOUNDARIES`] (5 µs to 50 s), given as
//! the instrument's advice. The names are constants in [`names`].

#![cfg_attr(docsrs, feature(doc_cfg))]

mod error;
mod export;
pub mod names;
mod observer;

pub use error::OtlpError;
pub use export::{OtlpMetrics, OtlpMetricsBuilder, OtlpProtocol};
pub use hs_observe::labels::{Side, Transport};
pub use observer::{DURATION_BOUNDARIES, OtelObserver};
