//! The axum `/metrics` endpoint.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hs_observe::targets;

use crate::metrics::{ExpositionFormat, PrometheusMetrics};

/// A router serving `GET /metrics` from `metrics`; merge it into your app
/// (`app.merge(metrics_router(metrics))`) or serve it on its own port.
///
/// The answer is the Prometheus text format 0.0.4, or OpenMetrics text
/// (`application/openmetrics-text; version=1.0.0; charset=utf-8`) when the
/// `Accept` header asks for it, as Prometheus does (see
/// [`ExpositionFormat::negotiate`]).
pub fn metrics_router<S>(metrics: PrometheusMetrics) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/metrics", get(metrics_handler))
        .with_state(metrics)
}

/// The handler behind [`metrics_router`], for mounting at another path:
/// `Router::new().route("/stats", get(metrics_handler)).with_state(metrics)`.
pub async fn metrics_handler(
    State(metrics): State<PrometheusMetrics>,
    headers: HeaderMap,
) -> Response {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok());
    let format = ExpositionFormat::negotiate(accept);
    match metrics.encode(format) {
        Ok(body) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(format.content_type()),
            )],
            body,
        )
            .into_response(),
        Err(error) => {
            log::error!(target: targets::OBSERVE, "encoding the Prometheus metrics failed: {error}");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
