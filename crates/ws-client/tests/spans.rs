#![allow(clippy::unwrap_used)]
//! The clients' `tracing` spans (`hs_core::spans::client_request`): one
//! `haystack.request` span per request on both clients, its outcome
//! recorded when it ends, WebSocket batches as a `haystack.batch` span
//! with a request span per item, against a real hs server. hs-core's
//! recording layer (`spans::testing`) sees the spans; the test runs on a
//! current-thread runtime so the thread's subscriber sees every task.

use std::sync::Arc;

use hs_core::ops::HaystackOps;
use hs_core::spans::testing::{SpanLog, SpanRecord, capture_side};
use hs_core::value::{Grid, Ref};
use hs_http_client::HttpClient;
use hs_http_server::HttpServer;
use hs_ws_client::{HaystackClient, WsClient};

/// The closed request spans recorded since `from` (a serial).
fn requests_since(log: &SpanLog, from: usize) -> Vec<SpanRecord> {
    log.named("haystack.request")
        .into_iter()
        .filter(|span| span.serial >= from && span.closed.is_some())
        .collect()
}

fn assert_request(seen: &SpanRecord, transport: &str, op: &str, outcome: &str) {
    assert!(seen.closed.is_some(), "{seen:?}");
    assert_eq!(seen.field("otel.name"), Some(op), "{seen:?}");
    assert_eq!(seen.field("rpc.method"), Some(op), "{seen:?}");
    assert_eq!(seen.field("otel.kind"), Some("client"), "{seen:?}");
    assert_eq!(seen.field("rpc.system"), Some("haystack"), "{seen:?}");
    assert_eq!(seen.field("hs.transport"), Some(transport), "{seen:?}");
    assert_eq!(seen.field("hs.outcome"), Some(outcome), "{seen:?}");
    if outcome == "error" {
        assert_eq!(seen.field("otel.status_code"), Some("ERROR"), "{seen:?}");
        assert!(seen.field("error.type").is_some(), "{seen:?}");
    } else {
        assert_eq!(seen.field("error.type"), None, "{seen:?}");
    }
}

#[test]
fn every_request_of_both_clients_is_one_span_with_its_outcome() {
    // The server in the same process makes server spans: left out.
    let (log, _guard) = capture_side("client");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    {
        runtime.block_on(async {
            let store: Arc<dyn HaystackOps> = Arc::new(hs_core::demo::building());
            let ws = hs_ws_server::WsServerState::builder(store.clone()).build();
            let server = HttpServer::builder(store)
                .merge(hs_ws_server::router(ws))
                .bind("127.0.0.1:0")
                .await
                .unwrap();
            let addr = server.local_addr();

            // HTTP: a read, then an op the server does not know.
            let http = HttpClient::builder(format!("http://{addr}"))
                .build()
                .unwrap();
            http.about().await.unwrap();
            http.call("noSuchOp", Grid::default()).await.unwrap_err();
            let requests = requests_since(&log, 0);
            assert_eq!(requests.len(), 2, "{requests:?}");
            assert_request(&requests[0], "http", "about", "ok");
            // An op outside the known ones is named `_other`, as the metrics count it.
            assert_request(&requests[1], "http", "_other", "error");
            let mark = log.spans().len();

            // WebSocket: a request, then a batch of three, one failing.
            let client = WsClient::connect(format!("ws://{addr}/api/ws"))
                .await
                .unwrap();
            client.about().await.unwrap();
            let requests = requests_since(&log, mark);
            assert_eq!(requests.len(), 1, "{requests:?}");
            assert_request(&requests[0], "ws", "about", "ok");
            assert!(requests[0].field("hs.request_id").is_some(), "{requests:?}");
            let mark = log.spans().len();

            let read = hs_core::ops::build::read_ids(&[Ref::make("demo-ahu1", None)]);
            let results = client
                .batch(vec![
                    ("about".to_owned(), Grid::default()),
                    ("read".to_owned(), read),
                    ("noSuchOp".to_owned(), Grid::default()),
                ])
                .await;
            assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 2);
            let batches = log.named("haystack.batch");
            assert_eq!(batches.len(), 1, "{batches:?}");
            assert!(batches[0].closed.is_some());
            assert_eq!(batches[0].field("hs.batch.size"), Some("3"));
            let items = requests_since(&log, mark);
            assert_eq!(items.len(), 3, "{items:?}");
            for item in &items {
                assert_eq!(item.parent, Some(batches[0].serial), "{item:?}");
            }
            assert_request(&items[0], "ws", "about", "ok");
            assert_request(&items[1], "ws", "read", "ok");
            assert_request(&items[2], "ws", "_other", "error");
            let ids: std::collections::BTreeSet<_> = items
                .iter()
                .map(|item| item.field("hs.request_id"))
                .collect();
            assert_eq!(ids.len(), 3, "each item has its own request id: {items:?}");

            client.close().await.unwrap();
            server.shutdown().await.unwrap();
        });
    }
}
