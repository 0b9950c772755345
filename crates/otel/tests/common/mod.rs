//! A real OTLP receiver (HTTP, and gRPC with the `grpc` feature) on
//! 127.0.0.1:0 that decodes the exporter's protobuf with
//! opentelemetry-proto, and helpers to read the exported points.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, HistogramDataPoint, Metric, NumberDataPoint, metric, number_data_point,
};
use prost::Message;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// How long a test waits for an export the flush has already sent.
pub const RECEIVE_WAIT: Duration = Duration::from_secs(10);

/// A running receiver: every export request it gets, decoded, in order.
pub struct Receiver {
    pub addr: std::net::SocketAddr,
    requests: mpsc::UnboundedReceiver<ExportMetricsServiceRequest>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Receiver {
    /// The base URL (`http://127.0.0.1:PORT`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The next export request; panics if none comes within `RECEIVE_WAIT`.
    pub async fn next(&mut self) -> ExportMetricsServiceRequest {
        tokio::time::timeout(RECEIVE_WAIT, self.requests.recv())
            .await
            .expect("an export reaches the receiver")
            .expect("the receiver is running")
    }

    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
    }
}

/// OTLP/HTTP: `POST /v1/metrics` with an `application/x-protobuf` body.
pub async fn http_receiver() -> Receiver {
    let (tx, requests) = mpsc::unbounded_channel();
    let app = Router::new().route(
        "/v1/metrics",
        post(move |headers: axum::http::HeaderMap, body: Bytes| {
            let tx = tx.clone();
            async move {
                let content_type = headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                if content_type != "application/x-protobuf" {
                    return (StatusCode::UNSUPPORTED_MEDIA_TYPE, Vec::new()).into_response();
                }
                match ExportMetricsServiceRequest::decode(body) {
                    Ok(request) => {
                        let _ = tx.send(request);
                        (
                            [(header::CONTENT_TYPE, "application/x-protobuf")],
                            ExportMetricsServiceResponse::default().encode_to_vec(),
                        )
                            .into_response()
                    }
                    Err(_) => (StatusCode::BAD_REQUEST, Vec::new()).into_response(),
                }
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    Receiver {
        addr,
        requests,
        stop: Some(stop),
        task: Some(task),
    }
}

/// OTLP/gRPC: the metrics service of opentelemetry-proto, on tonic.
#[cfg(feature = "grpc")]
pub async fn grpc_receiver() -> Receiver {
    use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
        MetricsService, MetricsServiceServer,
    };

    struct Collector(mpsc::UnboundedSender<ExportMetricsServiceRequest>);

    #[tonic::async_trait]
    impl MetricsService for Collector {
        async fn export(
            &self,
            request: tonic::Request<ExportMetricsServiceRequest>,
        ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
            let _ = self.0.send(request.into_inner());
            Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
        }
    }

    let (tx, requests) = mpsc::unbounded_channel();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(MetricsServiceServer::new(Collector(tx)))
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener),
                async {
                    let _ = stopped.await;
                },
            )
            .await
            .unwrap();
    });
    Receiver {
        addr,
        requests,
        stop: Some(stop),
        task: Some(task),
    }
}

/// One exported data point, flattened.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A counter or up-down counter point.
    Sum(i128),
    /// A histogram point: count, sum, per-bucket counts.
    Histogram {
        count: u64,
        sum: f64,
        buckets: Vec<u64>,
    },
}

/// Attributes as a sorted map of string values.
pub type Attrs = BTreeMap<String, String>;

/// Builds an [`Attrs`] from pairs.
pub fn attrs(pairs: &[(&str, &str)]) -> Attrs {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn string_attrs(kvs: &[opentelemetry_proto::tonic::common::v1::KeyValue]) -> Attrs {
    kvs.iter()
        .map(|kv| {
            let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(any_value::Value::StringValue(s)) => s.clone(),
                other => panic!("attribute {} is not a string: {other:?}", kv.key),
            };
            (kv.key.clone(), value)
        })
        .collect()
}

fn number(point: &NumberDataPoint) -> i128 {
    match point.value {
        Some(number_data_point::Value::AsInt(v)) => i128::from(v),
        other => panic!("not an integer point: {other:?}"),
    }
}

fn histogram(point: &HistogramDataPoint) -> Value {
    Value::Histogram {
        count: point.count,
        sum: point.sum.expect("a histogram point has a sum"),
        buckets: point.bucket_counts.clone(),
    }
}

/// One metric of an export: its description and all its points.
#[derive(Debug, Clone, PartialEq)]
pub struct Exported {
    pub unit: String,
    /// `sum`, `sum (monotonic)` or `histogram`, each cumulative.
    pub kind: &'static str,
    pub explicit_bounds: Vec<f64>,
    pub points: BTreeMap<Attrs, Value>,
}

fn exported(metric: &Metric) -> Exported {
    let cumulative = AggregationTemporality::Cumulative as i32;
    match metric.data.as_ref().expect("a metric has data") {
        metric::Data::Sum(sum) => {
            assert_eq!(sum.aggregation_temporality, cumulative, "{}", metric.name);
            Exported {
                unit: metric.unit.clone(),
                kind: if sum.is_monotonic {
                    "sum (monotonic)"
                } else {
                    "sum"
                },
                explicit_bounds: Vec::new(),
                points: sum
                    .data_points
                    .iter()
                    .map(|p| (string_attrs(&p.attributes), Value::Sum(number(p))))
                    .collect(),
            }
        }
        metric::Data::Histogram(h) => {
            assert_eq!(h.aggregation_temporality, cumulative, "{}", metric.name);
            let bounds = h
                .data_points
                .first()
                .map(|p| p.explicit_bounds.clone())
                .unwrap_or_default();
            assert!(
                h.data_points.iter().all(|p| p.explicit_bounds == bounds),
                "{}: one set of bounds",
                metric.name
            );
            Exported {
                unit: metric.unit.clone(),
                kind: "histogram",
                explicit_bounds: bounds,
                points: h
                    .data_points
                    .iter()
                    .map(|p| (string_attrs(&p.attributes), histogram(p)))
                    .collect(),
            }
        }
        other => panic!("{}: unexpected data {other:?}", metric.name),
    }
}

/// Every metric of scope `hs` in `request`, by name; also checks the
/// resource's `service.name` and the scope's version.
pub fn hs_metrics(
    request: &ExportMetricsServiceRequest,
    service_name: &str,
) -> BTreeMap<String, Exported> {
    assert_eq!(request.resource_metrics.len(), 1);
    let resource_metrics = &request.resource_metrics[0];
    let resource = resource_metrics.resource.as_ref().expect("a resource");
    let service = resource
        .attributes
        .iter()
        .find(|kv| kv.key == "service.name")
        .and_then(|kv| kv.value.as_ref()?.value.as_ref());
    assert_eq!(
        service,
        Some(&any_value::Value::StringValue(service_name.to_owned()))
    );
    let scopes: Vec<_> = resource_metrics
        .scope_metrics
        .iter()
        .filter(|s| s.scope.as_ref().is_some_and(|scope| scope.name == "hs"))
        .collect();
    assert_eq!(scopes.len(), 1, "one `hs` scope");
    let scope = scopes[0].scope.as_ref().unwrap();
    assert_eq!(scope.version, env!("CARGO_PKG_VERSION"));
    let mut by_name = BTreeMap::new();
    for metric in &scopes[0].metrics {
        let previous = by_name.insert(metric.name.clone(), exported(metric));
        assert!(previous.is_none(), "{} exported once", metric.name);
    }
    by_name
}

/// The bucket counts of a histogram of `DURATION_BOUNDARIES` holding `values`.
pub fn buckets_of(values: &[f64]) -> Vec<u64> {
    let bounds = hs_otel::DURATION_BOUNDARIES;
    let mut counts = vec![0; bounds.len() + 1];
    for &value in values {
        // OTel explicit buckets are (previous bound, bound].
        let index = bounds
            .iter()
            .position(|&bound| value <= bound)
            .unwrap_or(bounds.len());
        counts[index] += 1;
    }
    counts
}
