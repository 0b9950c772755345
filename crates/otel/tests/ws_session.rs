//! A real hs WebSocket server and client, each with an `OtelObserver` of
//! one `OtlpMetrics`, exported over OTLP/HTTP to a real receiver: the
//! counts are exact, and each side's bytes match the other's.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Value, attrs, hs_metrics, http_receiver};
use hs_core::client::HaystackClient;
use hs_core::ops::HaystackOps;
use hs_observe::{Side, Transport};
use hs_otel::OtlpMetrics;
use hs_ws_client::WsClient;
use hs_ws_server::{WsServer, WsServerState};

const WAIT: Duration = Duration::from_secs(10);

fn sum(
    metrics: &std::collections::BTreeMap<String, common::Exported>,
    name: &str,
    attrs: &common::Attrs,
) -> i128 {
    match metrics[name].points.get(attrs) {
        Some(Value::Sum(n)) => *n,
        other => panic!("{name} {attrs:?}: {other:?} in {:?}", metrics[name].points),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_websocket_session_is_exported_exactly() {
    let mut receiver = http_receiver().await;
    let otlp = OtlpMetrics::builder()
        .endpoint(receiver.url())
        .interval(Duration::from_secs(3600))
        .service_name("ws-session")
        .build()
        .unwrap();

    let ops: Arc<dyn HaystackOps> = Arc::new(hs_core::demo::sized::store(20));
    let state = WsServerState::builder(ops)
        .observer(Arc::new(otlp.observer(Side::Server, Transport::Ws)))
        .build();
    let server = WsServer::bind("127.0.0.1:0", state).await.unwrap();
    let url = format!("ws://{}", server.local_addr());
    let stop = server.shutdown_handle();
    let serving = tokio::spawn(server.serve());

    let client = WsClient::builder(&url)
        .observer(Arc::new(otlp.observer(Side::Client, Transport::Ws)))
        .connect()
        .await
        .unwrap();
    client.about().await.unwrap();
    client.read_filter("point", Some(5)).await.unwrap();
    client.read_filter("point", None).await.unwrap();
    let unknown = client.call("noSuchOp", hs_core::ops::build::empty()).await;
    assert!(unknown.is_err());

    // The server's events have all fired once it has stopped; the client's
    // disconnect fires before `closed` resolves.
    stop.shutdown();
    tokio::time::timeout(WAIT, serving)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    tokio::time::timeout(WAIT, client.closed()).await.unwrap();

    let flushing = otlp.clone();
    tokio::task::spawn_blocking(move || flushing.force_flush())
        .await
        .unwrap()
        .unwrap();
    let metrics = hs_metrics(&receiver.next().await, "ws-session");

    let side = |side: &str| attrs(&[("hs.side", side)]);
    for s in ["server", "client"] {
        assert_eq!(sum(&metrics, "hs.ws.connections", &side(s)), 1, "{s}");
        assert_eq!(
            sum(&metrics, "hs.ws.active_connections", &side(s)),
            0,
            "{s}"
        );
    }

    // Every request frame the client sent, the server received, with the
    // same payload bytes; and the other way round for the answers.
    let frame = |side: &str, op: &str, direction: &str| {
        attrs(&[
            ("rpc.method", op),
            ("network.io.direction", direction),
            ("hs.side", side),
        ])
    };
    for (op, frames) in [("about", 1), ("read", 2), ("_other", 1)] {
        for (from, to) in [("client", "server"), ("server", "client")] {
            let sent = frame(from, op, "transmit");
            let received = frame(to, op, "receive");
            assert_eq!(sum(&metrics, "hs.ws.messages", &sent), frames, "{sent:?}");
            assert_eq!(
                sum(&metrics, "hs.ws.messages", &received),
                frames,
                "{received:?}"
            );
            let bytes = sum(&metrics, "hs.ws.io", &sent);
            assert!(bytes > 0, "{sent:?}");
            assert_eq!(sum(&metrics, "hs.ws.io", &received), bytes, "{received:?}");
        }
    }
    assert_eq!(metrics["hs.ws.messages"].points.len(), 12);

    // Successful calls in the duration histograms, the unknown op as an error.
    for (name, side) in [
        ("rpc.server.call.duration", "server"),
        ("rpc.client.call.duration", "client"),
    ] {
        let points = &metrics[name].points;
        assert_eq!(points.len(), 2, "{name}: {points:?}");
        for (op, calls) in [("about", 1), ("read", 2)] {
            let key = attrs(&[
                ("rpc.system.name", "haystack"),
                ("rpc.method", op),
                ("hs.side", side),
                ("hs.transport", "ws"),
            ]);
            match &points[&key] {
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
    }
    // The server names the kind in the error grid's `errKind`, and the
    // client's observer reports that kind.
    for (name, side) in [
        ("hs.rpc.server.call.errors", "server"),
        ("hs.rpc.client.call.errors", "client"),
    ] {
        let key = attrs(&[
            ("rpc.system.name", "haystack"),
            ("rpc.method", "_other"),
            ("error.type", "unknown_op"),
            ("hs.side", side),
            ("hs.transport", "ws"),
        ]);
        assert_eq!(
            metrics[name].points.len(),
            1,
            "{name}: {:?}",
            metrics[name].points
        );
        assert_eq!(sum(&metrics, name, &key), 1, "{name}");
    }

    let closing = otlp.clone();
    tokio::task::spawn_blocking(move || closing.shutdown())
        .await
        .unwrap()
        .unwrap();
    receiver.stop().await;
}
