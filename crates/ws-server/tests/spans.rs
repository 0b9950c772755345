//! The `tracing` spans of the WebSocket server (`hs_core::spans`): one
//! `haystack.request` span per request with the span contract's fields, a
//! `haystack.dispatch` child for the op's work, batches under a
//! `haystack.batch` span, and a `haystack.ws.connection` span that request
//! and batch spans link to (they are roots of their own traces).
//!
//! Each test runs on tokio's current-thread runtime (the default of
//! `#[tokio::test]`): the server's tasks run on the test's thread, so the
//! subscriber installed there with `set_default` sees all of their spans.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use hs_core::auth::{Role, ScramServer, TokenStore, UserStore};
use hs_core::client::HaystackClient;
use hs_core::observe::RecordedEvent;
use hs_core::ops::build as request;
use hs_core::spans::testing::{SpanLog, SpanRecord, capture_side};
use hs_core::value::Ref;
use hs_ws_client::WsClient;
use tracing::Level;

fn scram_server() -> ScramServer {
    let users = UserStore::new().with_iterations(4096);
    users.add_user("demo", "demo-pass", Role::Operator);
    ScramServer::new(users, TokenStore::new())
}

/// The fields every server request span has, whatever its outcome.
fn assert_request_contract(span: &SpanRecord, op: &str, peer: &str) {
    assert_eq!(span.level, Level::INFO);
    assert_eq!(span.field("otel.name"), Some(op), "{span:?}");
    assert_eq!(span.field("rpc.method"), Some(op), "{span:?}");
    assert_eq!(span.field("otel.kind"), Some("server"));
    assert_eq!(span.field("rpc.system"), Some("haystack"));
    assert_eq!(span.field("hs.side"), Some("server"));
    assert_eq!(span.field("hs.transport"), Some("ws"));
    assert_eq!(span.field("network.peer.address"), Some(peer));
    assert!(span.field("hs.request_id").is_some(), "{span:?}");
}

fn assert_ok(span: &SpanRecord) {
    assert_eq!(span.field("hs.outcome"), Some("ok"), "{span:?}");
    assert_eq!(span.field("error.type"), None, "{span:?}");
    assert_eq!(span.field("otel.status_code"), None, "{span:?}");
}

#[tokio::test]
async fn requests_batches_and_the_connection_have_their_spans() {
    let (log, _guard) = capture_side("server");
    let server = start(|b| b.auth(scram_server())).await;
    let client = WsClient::builder(server.url())
        .credentials("demo", "demo-pass")
        .connect()
        .await
        .expect("connect and authenticate");

    // A cheap read (answered on the reader task), a filter read (on a task
    // of its own), a read that fails, and a batch of three.
    client
        .read_ids(&[Ref::from("demo-site")])
        .await
        .expect("read by id");
    client
        .read_filter("site", None)
        .await
        .expect("read a filter");
    client
        .read_filter("site and", None)
        .await
        .expect_err("an unparseable filter fails");
    let batch = client
        .batch(vec![
            ("read".to_owned(), request::read_filter("equip", None)),
            ("about".to_owned(), request::empty()),
            ("nav".to_owned(), request::nav(None)),
        ])
        .await;
    assert!(batch.iter().all(Result::is_ok), "{batch:?}");
    client.close().await.expect("close");
    assert!(server.wait_disconnects(1).await);

    // Every request span, the batch's and the connection's closed.
    assert!(
        log.wait_until(|spans| {
            let closed = |name: &str| {
                spans
                    .iter()
                    .filter(|s| s.name == name && s.closed.is_some())
                    .count()
            };
            closed("haystack.request") == 6
                && closed("haystack.batch") == 1
                && closed("haystack.ws.connection") == 1
        })
        .await,
        "spans: {:#?}",
        log.spans()
    );

    let connections = log.named("haystack.ws.connection");
    let [connection] = connections.as_slice() else {
        panic!("one connection span: {connections:#?}");
    };
    let peer = connection.field("network.peer.address").unwrap().to_owned();
    assert!(peer.starts_with("127.0.0.1:"), "{peer}");
    assert_eq!(connection.level, Level::INFO);
    assert_eq!(connection.field("otel.kind"), Some("server"));
    assert_eq!(connection.field("hs.side"), Some("server"));
    assert_eq!(connection.field("hs.transport"), Some("ws"));
    assert_eq!(connection.field("enduser.id"), Some("demo"));
    assert_eq!(connection.parent, None);

    // The authentication phase, inside the connection's span.
    let auths = log.named("haystack.auth");
    let [auth] = auths.as_slice() else {
        panic!("one auth span: {auths:#?}");
    };
    assert_eq!(auth.parent, Some(connection.serial));
    assert_eq!(auth.field("rpc.method"), Some("auth"));
    assert_eq!(auth.field("enduser.id"), Some("demo"));
    assert_ok(auth);

    let requests = log.named("haystack.request");
    let dispatches = log.named("haystack.dispatch");
    let (batched, single): (Vec<_>, Vec<_>) =
        requests.iter().partition(|span| span.parent.is_some());

    // The three single requests: roots linked to the connection.
    assert_eq!(single.len(), 3, "{single:#?}");
    for span in &single {
        assert_request_contract(span, "read", &peer);
        assert_eq!(span.follows_from, vec![connection.serial], "{span:?}");
        assert_eq!(span.field("enduser.id"), Some("demo"));
    }
    let ids: Vec<_> = single.iter().map(|s| s.field("hs.request_id")).collect();
    assert!(
        ids.windows(2).all(|w| w[0] != w[1]),
        "distinct ids: {ids:?}"
    );
    let (failed, succeeded): (Vec<&SpanRecord>, Vec<&SpanRecord>) = single
        .iter()
        .copied()
        .partition(|span| span.field("hs.outcome") == Some("error"));
    assert_eq!((failed.len(), succeeded.len()), (1, 2), "{single:#?}");
    for span in &succeeded {
        assert_ok(span);
        // The op's own work is a child span, closed before the request's.
        let children: Vec<_> = dispatches
            .iter()
            .filter(|d| d.parent == Some(span.serial))
            .collect();
        let [dispatch] = children.as_slice() else {
            panic!("one dispatch span under {span:?}: {dispatches:#?}");
        };
        assert_eq!(dispatch.level, Level::DEBUG);
        assert_eq!(dispatch.field("rpc.method"), Some("read"));
        assert!(dispatch.closed < span.closed);
    }
    // The failure carries the error type the observer reported.
    let observed_error = server
        .recorder
        .events()
        .into_iter()
        .find_map(|event| match event {
            RecordedEvent::Error { op, error_type } if op == "read" => Some(error_type),
            _ => None,
        })
        .expect("the failed read observed");
    let failed = failed[0];
    assert_eq!(failed.field("error.type"), Some(observed_error.as_str()));
    assert_eq!(failed.field("otel.status_code"), Some("ERROR"));

    // The batch: one root span linked to the connection, its three items
    // children of it, each with its own dispatch child; it closes last.
    let batches = log.named("haystack.batch");
    let [batch_span] = batches.as_slice() else {
        panic!("one batch span: {batches:#?}");
    };
    assert_eq!(batch_span.parent, None);
    assert_eq!(batch_span.follows_from, vec![connection.serial]);
    assert_eq!(batch_span.field("hs.batch.size"), Some("3"));
    assert_eq!(batch_span.field("rpc.method"), Some("batch"));
    assert_eq!(batch_span.field("enduser.id"), Some("demo"));
    assert_eq!(batched.len(), 3, "{batched:#?}");
    let mut ops: Vec<_> = batched
        .iter()
        .map(|span| {
            assert_eq!(span.parent, Some(batch_span.serial));
            assert!(span.follows_from.is_empty(), "{span:?}");
            assert!(span.closed < batch_span.closed);
            assert_ok(span);
            let op = span.field("rpc.method").unwrap();
            assert_request_contract(span, op, &peer);
            assert!(dispatches.iter().any(|d| d.parent == Some(span.serial)));
            op
        })
        .collect();
    ops.sort_unstable();
    assert_eq!(ops, ["about", "nav", "read"]);

    server.stop().await;
}

#[tokio::test]
async fn garbage_is_a_request_span_named_invalid() {
    let (log, _guard) = capture_side("server");
    let server = start(|b| b).await;
    let mut client = server.client().await;
    client.send_text(r#"{"id": "g1", "op": 7}"#).await;
    let answer = client.recv_json().await;
    assert!(error_dis(&answer).is_some(), "{answer}");
    client.close().await;
    assert!(
        log.wait_until(|spans| spans
            .iter()
            .any(|s| s.name == "haystack.request" && s.closed.is_some()))
            .await
    );

    let requests = log.named("haystack.request");
    let [span] = requests.as_slice() else {
        panic!("one request span: {requests:#?}");
    };
    assert_request_contract(span, "invalid", &client_peer(&log));
    assert_eq!(span.field("hs.request_id"), Some("g1"));
    assert_eq!(span.field("hs.outcome"), Some("error"));
    assert_eq!(span.field("otel.status_code"), Some("ERROR"));
    let observed = server.recorder.events();
    let observed_error = observed
        .iter()
        .find_map(|event| match event {
            RecordedEvent::Error { op, error_type } if op == "invalid" => Some(error_type),
            _ => None,
        })
        .expect("the garbage observed");
    assert_eq!(span.field("error.type"), Some(observed_error.as_str()));
    // No user on an anonymous connection; nothing was dispatched.
    assert_eq!(span.field("enduser.id"), None);
    assert!(log.named("haystack.dispatch").is_empty());

    server.stop().await;
}

/// The peer address of the (one) connection span.
fn client_peer(log: &SpanLog) -> String {
    log.named("haystack.ws.connection")[0]
        .field("network.peer.address")
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_refused_login_ends_the_auth_span_with_its_error() {
    let (log, _guard) = capture_side("server");
    let server = start(|b| b.auth(scram_server())).await;
    WsClient::builder(server.url())
        .credentials("demo", "wrong-pass")
        .connect()
        .await
        .expect_err("refused");
    assert!(server.wait_disconnects(1).await);
    assert!(
        log.wait_until(|spans| spans
            .iter()
            .any(|s| s.name == "haystack.ws.connection" && s.closed.is_some()))
            .await
    );

    let connection = &log.named("haystack.ws.connection")[0];
    assert_eq!(connection.field("enduser.id"), None);
    let auths = log.named("haystack.auth");
    let [auth] = auths.as_slice() else {
        panic!("one auth span: {auths:#?}");
    };
    assert_eq!(auth.parent, Some(connection.serial));
    assert_eq!(auth.field("hs.outcome"), Some("error"));
    assert_eq!(auth.field("error.type"), Some("auth"));
    assert_eq!(auth.field("otel.status_code"), Some("ERROR"));
    assert_eq!(auth.field("enduser.id"), None);
    assert!(log.named("haystack.request").is_empty());

    server.stop().await;
}
