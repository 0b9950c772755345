//! `hs serve` exporting its metrics over OTLP: a real OTLP/HTTP receiver
//! here decodes what the running `hs` process sends (opentelemetry-proto),
//! turned on by `--otlp-endpoint` or by the standard environment.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::metric;
use prost::Message;
use support::{ChildGuard, hs, serve, serve_with_env};
use tokio::sync::mpsc;

/// An OTLP/HTTP receiver: its base URL, and the export requests it decoded.
async fn receiver() -> (String, mpsc::UnboundedReceiver<ExportMetricsServiceRequest>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = Router::new().route(
        "/v1/metrics",
        post(move |body: Bytes| {
            let tx = tx.clone();
            async move {
                let request = ExportMetricsServiceRequest::decode(body).unwrap();
                let _ = tx.send(request);
                ExportMetricsServiceResponse::default().encode_to_vec()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, rx)
}

fn text(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes.iter().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref()?.value.as_ref()? {
            any_value::Value::StringValue(s) => Some(s.clone()),
            _ => None,
        }
    })
}

/// What one export says: the service name, and the count of server-side
/// HTTP `about` calls in `rpc.server.call.duration`.
fn about_calls(request: &ExportMetricsServiceRequest) -> (Option<String>, u64) {
    let mut service = None;
    let mut calls = 0;
    for resource in &request.resource_metrics {
        if let Some(r) = &resource.resource {
            service = service.or_else(|| text(&r.attributes, "service.name"));
        }
        for scope in &resource.scope_metrics {
            for m in scope
                .metrics
                .iter()
                .filter(|m| m.name == "rpc.server.call.duration")
            {
                assert_eq!(m.unit, "s");
                let Some(metric::Data::Histogram(histogram)) = &m.data else {
                    panic!("{} is not a histogram", m.name);
                };
                for point in &histogram.data_points {
                    let attrs = &point.attributes;
                    if text(attrs, "rpc.method").as_deref() == Some("about")
                        && text(attrs, "hs.transport").as_deref() == Some("http")
                        && text(attrs, "hs.side").as_deref() == Some("server")
                    {
                        calls += point.count;
                    }
                }
            }
        }
    }
    (service, calls)
}

/// Asks `about` over HTTP `times` times, then waits (bounded) for an export
/// counting them; answers the service name it carried.
async fn exported_about_calls(
    addr: &str,
    exports: &mut mpsc::UnboundedReceiver<ExportMetricsServiceRequest>,
    times: u64,
) -> Option<String> {
    let url = format!("http://{addr}");
    for _ in 0..times {
        let url = url.clone();
        let about = tokio::task::spawn_blocking(move || hs(&["about", "--url", &url]))
            .await
            .unwrap();
        assert!(about.status.success(), "{}", support::stderr(&about));
    }
    let deadline = Instant::now() + support::WAIT;
    while Instant::now() < deadline {
        let Ok(Some(request)) = tokio::time::timeout(Duration::from_secs(1), exports.recv()).await
        else {
            continue;
        };
        let (service, calls) = about_calls(&request);
        if calls == times {
            return service;
        }
        assert!(calls < times, "{calls} about calls exported, {times} made");
    }
    panic!("no export counted the {times} about calls");
}

fn stop(mut server: ChildGuard) {
    server.interrupt();
    let status = server.wait_exit().expect("hs serve exits after SIGINT");
    assert!(status.success(), "{:?}", server.stderr_lines());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_endpoint_exports_the_server_metrics_beside_prometheus() {
    let (url, mut exports) = receiver().await;
    let args = ["--otlp-endpoint", &url, "--otlp-interval", "100ms"].map(str::to_owned);
    let (server, addr) = tokio::task::spawn_blocking(move || {
        serve(&args.iter().map(String::as_str).collect::<Vec<_>>())
    })
    .await
    .unwrap();
    let service = exported_about_calls(&addr, &mut exports, 2).await;
    assert_eq!(service.as_deref(), Some("hs"));
    // Prometheus keeps working beside it.
    let metrics = support::scrape(&addr);
    assert!(
        metrics.contains("haystack_request_duration_seconds"),
        "{metrics}"
    );
    stop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standard_environment_turns_the_export_on() {
    let (url, mut exports) = receiver().await;
    let (server, addr) = tokio::task::spawn_blocking(move || {
        serve_with_env(
            &[],
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", url.as_str()),
                ("OTEL_METRIC_EXPORT_INTERVAL", "100"),
                ("OTEL_SERVICE_NAME", "gateway-7"),
            ],
        )
    })
    .await
    .unwrap();
    let service = exported_about_calls(&addr, &mut exports, 1).await;
    assert_eq!(service.as_deref(), Some("gateway-7"));
    stop(server);
}
