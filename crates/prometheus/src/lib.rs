//! Prometheus exposition for hs: a [`MetricsObserver`](hs_observe::MetricsObserver)
//! that records every transport event into `haystack_*` metrics, and an axum
//! `/metrics` handler that serves them.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use hs_observe::MetricsObserver;
//! use hs_prometheus::{ExpositionFormat, PrometheusMetrics, Side, Transport, metrics_router};
//!
//! let metrics = PrometheusMetrics::new();
//! // One observer per component, each with its own constant labels; hand it
//! // to the component's builder as `Arc<dyn MetricsObserver>`.
//! let server: Arc<dyn MetricsObserver> = Arc::new(metrics.observer(Side::Server, Transport::Http));
//! server.on_request("read", Duration::from_millis(3));
//! server.on_error("hisRead", "bad_request");
//!
//! let text = metrics.encode(ExpositionFormat::OpenMetrics).unwrap();
//! assert!(text.contains(
//!     r#"haystack_request_duration_seconds_count{op="read",side="server",transport="http"} 1"#
//! ));
//! assert!(text.contains(
//!     r#"haystack_errors_total{op="hisRead",error_type="bad_request",side="server",transport="http"} 1"#
//! ));
//!
//! // Serve it: `axum::serve(listener, app.merge(metrics_router(metrics)))`.
//! let app: axum::Router = metrics_router(metrics);
//! # let _ = app;
//! ```
//!
//! The metric names, labels and the Grafana dashboard are described in
//! `docs/prometheus.md`.

mod handler;
mod labels;
mod metrics;
mod observer;

pub use handler::{metrics_handler, metrics_router};
pub use labels::{OPS, OTHER, Side, Transport};
pub use metrics::{DURATION_BUCKETS, ExpositionFormat, PrometheusMetrics};
pub use observer::PrometheusObserver;
