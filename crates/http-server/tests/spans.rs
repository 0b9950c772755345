//! The `tracing` spans of the HTTP server (`hs_core::spans`): one
//! `haystack.request` span per API request (authentication steps
//! included) with the span contract's fields, the principal once
//! authenticated, the outcome the observer reports, and a
//! `haystack.dispatch` child for the op's work.
//!
//! Each test runs on tokio's current-thread runtime (the default of
//! `#[tokio::test]`): the server's tasks run on the test's thread, so the
//! subscriber installed there with `set_default` sees all of their spans.

mod common;

use common::*;
use hs_core::client::HaystackClient;
use hs_core::observe::RecordedEvent;
use hs_core::ops::build as request;
use hs_core::spans::testing::{SpanRecord, capture_side};
use hs_core::value::Ref;
use hs_http_client::HttpClient;
use tracing::Level;

/// The fields every HTTP request span has, whatever its outcome.
fn assert_request_contract(span: &SpanRecord, op: &str) {
    assert_eq!(span.level, Level::INFO);
    assert_eq!(span.field("otel.name"), Some(op), "{span:?}");
    assert_eq!(span.field("rpc.method"), Some(op), "{span:?}");
    assert_eq!(span.field("otel.kind"), Some("server"));
    assert_eq!(span.field("rpc.system"), Some("haystack"));
    assert_eq!(span.field("hs.side"), Some("server"));
    assert_eq!(span.field("hs.transport"), Some("http"));
    let peer = span.field("network.peer.address").unwrap_or_default();
    assert!(peer.starts_with("127.0.0.1:"), "{span:?}");
    // No request id on HTTP; a root, with no span around the router.
    assert_eq!(span.field("hs.request_id"), None);
    assert_eq!(span.parent, None);
}

#[tokio::test]
async fn every_request_has_a_span_with_its_outcome_and_user() {
    let (log, _guard) = capture_side("server");
    let server = start_with_auth().await;
    // reqwest is built without a rustls provider of its own.
    let _already_installed = rustls::crypto::ring::default_provider().install_default();
    let client = HttpClient::builder(server.base.clone())
        .credentials(USER, PASSWORD)
        .build()
        .expect("client");

    client
        .read_ids(&[Ref::from("demo-site")])
        .await
        .expect("read by id (logs in first)");
    client
        .read_filter("site and", None)
        .await
        .expect_err("an unparseable filter fails");
    client
        .call("fooBar", request::empty())
        .await
        .expect_err("an unknown op fails");

    // One span per request the observer saw, closed when it reported it.
    let observed = server.observer.events();
    assert!(
        log.wait_until(|spans| spans
            .iter()
            .filter(|s| s.name == "haystack.request" && s.closed.is_some())
            .count()
            == observed.len())
            .await,
        "{observed:?} against {:#?}",
        log.spans()
    );
    let requests = log.named("haystack.request");
    assert_eq!(requests.len(), observed.len());
    for (span, event) in requests.iter().zip(&observed) {
        // Observed in the order they ended: one connection, one at a time.
        let (op, error_type) = match event {
            RecordedEvent::Request { op, .. } => (op.as_str(), None),
            RecordedEvent::Error { op, error_type } => (op.as_str(), Some(error_type.as_str())),
            other => panic!("unexpected event {other:?}"),
        };
        // An op outside the standard list is `_other` in a span's name.
        let op = if op == "fooBar" { "_other" } else { op };
        assert_request_contract(span, op);
        match error_type {
            None => {
                assert_eq!(span.field("hs.outcome"), Some("ok"), "{span:?}");
                assert_eq!(span.field("error.type"), None);
                assert_eq!(span.field("otel.status_code"), None);
            }
            Some(kind) => {
                assert_eq!(span.field("hs.outcome"), Some("error"), "{span:?}");
                assert_eq!(span.field("error.type"), Some(kind));
                assert_eq!(span.field("otel.status_code"), Some("ERROR"));
            }
        }
    }

    // The login: HELLO and two SCRAM steps, spans named `auth`; the last
    // one authenticates, and names the user.
    let auth: Vec<_> = requests
        .iter()
        .filter(|span| span.field("rpc.method") == Some("auth"))
        .collect();
    assert_eq!(auth.len(), 3, "{auth:#?}");
    assert_eq!(auth[2].field("enduser.id"), Some(USER));

    // The ops, with the user their bearer token stands for.
    let ops: Vec<_> = requests
        .iter()
        .filter(|span| span.field("rpc.method") != Some("auth"))
        .collect();
    let methods: Vec<_> = ops.iter().map(|s| s.field("rpc.method").unwrap()).collect();
    assert_eq!(methods, ["read", "read", "_other"]);
    for span in &ops {
        assert_eq!(span.field("enduser.id"), Some(USER), "{span:?}");
    }
    let (ok_read, failed_read) = (ops[0], ops[1]);
    assert_eq!(ok_read.field("hs.outcome"), Some("ok"));
    assert_eq!(failed_read.field("error.type"), Some("bad_request"));
    assert_eq!(ops[2].field("error.type"), Some("unknown_op"));

    // Both reads ran in the store (the filter fails there): a DEBUG child
    // of each one's span, closed before it; nothing else was dispatched.
    let dispatches = log.named("haystack.dispatch");
    assert_eq!(dispatches.len(), 2, "{dispatches:#?}");
    for (dispatch, read) in dispatches.iter().zip([ok_read, failed_read]) {
        assert_eq!(dispatch.parent, Some(read.serial));
        assert_eq!(dispatch.level, Level::DEBUG);
        assert_eq!(dispatch.field("rpc.method"), Some("read"));
        assert!(dispatch.closed < read.closed);
    }

    server.stop().await;
}

/// A router served by the application, inside a span of its own around
/// every request: the request span is made under it.
#[tokio::test]
async fn the_request_span_is_a_child_of_the_applications_span() {
    use std::net::SocketAddr;

    use axum::extract::Request;
    use axum::middleware::{self, Next};
    use hs_http_server::HttpServer;
    use tracing::Instrument;

    async fn app_span(request: Request, next: Next) -> axum::response::Response {
        let span = tracing::info_span!(target: "hs::span", "app.request");
        next.run(request).instrument(span).await
    }

    let (log, _guard) = capture_side("server");
    let router = HttpServer::builder(demo_store())
        .into_router()
        .expect("router")
        .layer(middleware::from_fn(app_span));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serve = tokio::spawn(
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = stopped.await;
        })
        .into_future(),
    );
    let response = http_client()
        .get(format!("http://{addr}/api/about"))
        .send()
        .await
        .expect("about");
    assert!(response.status().is_success());
    let _ = response.bytes().await;

    assert!(
        log.wait_until(|spans| spans.iter().all(|s| s.closed.is_some()) && spans.len() >= 3)
            .await,
        "{:#?}",
        log.spans()
    );
    let apps = log.named("app.request");
    let requests = log.named("haystack.request");
    let ([app], [span]) = (apps.as_slice(), requests.as_slice()) else {
        panic!("one of each: {:#?}", log.spans());
    };
    assert_eq!(span.parent, Some(app.serial));
    assert_eq!(span.field("rpc.method"), Some("about"));
    assert_eq!(span.field("hs.outcome"), Some("ok"));
    let peer = span.field("network.peer.address").unwrap_or_default();
    assert!(peer.starts_with("127.0.0.1:"), "{span:?}");
    // The about op's work, under the request's span.
    let dispatches = log.named("haystack.dispatch");
    assert_eq!(dispatches.len(), 1);
    assert_eq!(dispatches[0].parent, Some(span.serial));

    let _ = stop.send(());
    serve.await.expect("serve task").expect("served");
}
