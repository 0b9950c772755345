#![allow(clippy::unwrap_used)]
//! The clients' `tracing` spans (`hs_core::client::request_span`): one
//! `haystack.request` span per request on both clients, its outcome
//! recorded when it ends, WebSocket batches as a `haystack.batch` span
//! with a request span per item, against a real hs server. A recording
//! `tracing_subscriber` layer sees the spans; the test runs on a
//! current-thread runtime so the thread's subscriber sees every task.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;

use hs_core::ops::HaystackOps;
use hs_core::value::{Grid, Ref};
use hs_http_client::HttpClient;
use hs_http_server::HttpServer;
use hs_ws_client::{HaystackClient, WsClient};
use parking_lot::Mutex;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Subscriber, subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;

/// One span as the layer saw it.
#[derive(Debug, Clone)]
struct Seen {
    id: u64,
    name: &'static str,
    parent: Option<u64>,
    fields: BTreeMap<String, String>,
    closed: bool,
}

impl Seen {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

/// Records every span: its fields (recorded late ones included), its
/// parent, whether it closed.
#[derive(Clone, Default)]
struct Spans(Arc<Mutex<Vec<Seen>>>);

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Spans {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let parent = ctx
            .span(id)
            .and_then(|span| span.parent())
            .map(|parent| parent.id().into_u64());
        let mut fields = BTreeMap::new();
        attrs.record(&mut Fields(&mut fields));
        self.0.lock().push(Seen {
            id: id.into_u64(),
            name: attrs.metadata().name(),
            parent,
            fields,
            closed: false,
        });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _ctx: Context<'_, S>) {
        let mut spans = self.0.lock();
        // Ids are reused once a span closes: the open one is the last.
        if let Some(seen) = spans
            .iter_mut()
            .rev()
            .find(|seen| seen.id == id.into_u64() && !seen.closed)
        {
            values.record(&mut Fields(&mut seen.fields));
        }
    }

    fn on_close(&self, id: Id, _ctx: Context<'_, S>) {
        let mut spans = self.0.lock();
        if let Some(seen) = spans
            .iter_mut()
            .rev()
            .find(|seen| seen.id == id.into_u64() && !seen.closed)
        {
            seen.closed = true;
        }
    }
}

impl Spans {
    /// The closed client request spans, in the order they were created.
    fn client_requests(&self) -> Vec<Seen> {
        self.0
            .lock()
            .iter()
            .filter(|seen| {
                seen.name == "haystack.request" && seen.field("hs.side") == Some("client")
            })
            .cloned()
            .collect()
    }

    fn named(&self, name: &str) -> Vec<Seen> {
        self.0
            .lock()
            .iter()
            .filter(|seen| seen.name == name)
            .cloned()
            .collect()
    }

    fn clear(&self) {
        self.0.lock().clear();
    }
}

fn assert_request(seen: &Seen, transport: &str, op: &str, outcome: &str) {
    assert!(seen.closed, "{seen:?}");
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
    let spans = Spans::default();
    let subscriber = tracing_subscriber::registry().with(spans.clone());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    subscriber::with_default(subscriber, || {
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
            let requests = spans.client_requests();
            assert_eq!(requests.len(), 2, "{requests:?}");
            assert_request(&requests[0], "http", "about", "ok");
            assert_request(&requests[1], "http", "noSuchOp", "error");
            spans.clear();

            // WebSocket: a request, then a batch of three, one failing.
            let client = WsClient::connect(format!("ws://{addr}/api/ws"))
                .await
                .unwrap();
            client.about().await.unwrap();
            let requests = spans.client_requests();
            assert_eq!(requests.len(), 1, "{requests:?}");
            assert_request(&requests[0], "ws", "about", "ok");
            assert!(requests[0].field("hs.request_id").is_some(), "{requests:?}");
            spans.clear();

            let read = hs_core::ops::build::read_ids(&[Ref::make("demo-ahu1", None)]);
            let results = client
                .batch(vec![
                    ("about".to_owned(), Grid::default()),
                    ("read".to_owned(), read),
                    ("noSuchOp".to_owned(), Grid::default()),
                ])
                .await;
            assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 2);
            let batches = spans.named("haystack.batch");
            assert_eq!(batches.len(), 1, "{batches:?}");
            assert!(batches[0].closed);
            let items = spans.client_requests();
            assert_eq!(items.len(), 3, "{items:?}");
            for item in &items {
                assert_eq!(item.parent, Some(batches[0].id), "{item:?}");
            }
            assert_request(&items[0], "ws", "about", "ok");
            assert_request(&items[1], "ws", "read", "ok");
            assert_request(&items[2], "ws", "noSuchOp", "error");
            let ids: std::collections::BTreeSet<_> = items
                .iter()
                .map(|item| item.field("hs.request_id"))
                .collect();
            assert_eq!(ids.len(), 3, "each item has its own request id: {items:?}");

            client.close().await.unwrap();
            server.shutdown().await.unwrap();
        });
    });
}
