//! A real hs HTTP server and client, each with an `OtelObserver` of one
//! `OtlpMetrics`, exported over OTLP/HTTP to a real receiver: the counts
//! on both sides are exact.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Value, attrs, hs_metrics, http_receiver};
use hs_core::client::HaystackClient;
use hs_http_client::HttpClient;
use hs_http_server::HttpServer;
use hs_observe::{Side, Transport};
use hs_otel::OtlpMetrics;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_http_session_is_exported_exactly() {
    let mut receiver = http_receiver().await;
    let otlp = OtlpMetrics::builder()
        .endpoint(receiver.url())
        .interval(Duration::from_secs(3600))
        .service_name("http-session")
        .build()
        .unwrap();

    let server = HttpServer::builder(Arc::new(hs_core::demo::sized::store(20)))
        .observer(Arc::new(otlp.observer(Side::Server, Transport::Http)))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let client = HttpClient::builder(server.base_url())
        .observer(Arc::new(otlp.observer(Side::Client, Transport::Http)))
        .build()
        .unwrap();
    client.about().await.unwrap();
    client.read_filter("point", Some(5)).await.unwrap();
    client.read_filter("point", None).await.unwrap();
    assert!(client.read_filter("point and (", None).await.is_err());
    // Every server event has fired once the server is down.
    server.shutdown().await.unwrap();

    let flushing = otlp.clone();
    tokio::task::spawn_blocking(move || flushing.force_flush())
        .await
        .unwrap()
        .unwrap();
    let metrics = hs_metrics(&receiver.next().await, "http-session");
    assert_eq!(
        metrics.keys().collect::<Vec<_>>(),
        [
            "hs.rpc.client.call.errors",
            "hs.rpc.server.call.errors",
            "rpc.client.call.duration",
            "rpc.server.call.duration",
        ],
        "no WebSocket metrics from HTTP components"
    );
    for side in ["server", "client"] {
        let call = |op: &str| {
            attrs(&[
                ("rpc.system.name", "haystack"),
                ("rpc.method", op),
                ("hs.side", side),
                ("hs.transport", "http"),
            ])
        };
        let name = format!("rpc.{side}.call.duration");
        let points = &metrics[&name].points;
        assert_eq!(points.len(), 2, "{name}: {points:?}");
        for (op, calls) in [("about", 1), ("read", 2)] {
            match &points[&call(op)] {
                Value::Histogram {
                    count,
                    sum,
                    buckets,
                } => {
                    assert_eq!(*count, calls, "{name} {op}");
                    assert!(*sum > 0.0, "{name} {op}");
                    assert_eq!(buckets.iter().sum::<u64>(), calls, "{name} {op}");
                }
                other @ Value::Sum(_) => panic!("{name} {op}: {other:?}"),
            }
        }
        let name = format!("hs.rpc.{side}.call.errors");
        let mut failed = call("read");
        failed.insert("error.type".to_owned(), "bad_request".to_owned());
        assert_eq!(
            metrics[&name].points,
            [(failed, Value::Sum(1))].into(),
            "{name}"
        );
    }

    let closing = otlp.clone();
    tokio::task::spawn_blocking(move || closing.shutdown())
        .await
        .unwrap()
        .unwrap();
    receiver.stop().await;
}
