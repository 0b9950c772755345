//! Bad input of every kind gets a clear status, is observed once with a
//! stable error type, and leaves the server serving.

#![allow(clippy::unwrap_used)] // tests may unwrap (COMMON.md)

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use common::*;
use hs_core::observe::RecordedEvent;
use hs_core::ops::*;
use hs_core::store::MemoryStore;
use hs_core::value::Grid;
use reqwest::StatusCode;
use serde_json::json;

fn error(op: &str, kind: &str) -> RecordedEvent {
    RecordedEvent::Error {
        op: op.to_owned(),
        error_type: kind.to_owned(),
    }
}

async fn still_serving(server: &TestServer) {
    let response = server.client.get(server.url("about")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_op_is_404_and_wrong_method_is_405_with_fastapi_bodies() {
    let server = start_open().await;
    let response = server
        .client
        .get(server.url("fooBar"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.text().await.unwrap(), r#"{"detail":"Not Found"}"#);
    let response = server
        .client
        .post(server.url("fooBar"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    let response = server
        .client
        .get(server.url("hisWrite"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()["allow"], "POST");
    assert_eq!(
        response.text().await.unwrap(),
        r#"{"detail":"Method Not Allowed"}"#
    );
    let response = server.client.put(server.url("about")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()["allow"], "GET, POST");

    // Outside the API: a plain 404, not an API request, not observed.
    let outside = format!("http://{}/elsewhere", server.server.local_addr());
    let response = server.client.get(outside).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(response.headers()["x-frame-options"], "DENY");
    let response = server
        .client
        .get(server.url("read/extra"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    still_serving(&server).await;
    let events = server.events_after(6);
    assert_eq!(
        &events[..5],
        &[
            error("fooBar", "unknown_op"),
            error("fooBar", "unknown_op"),
            error("hisWrite", "bad_request"),
            error("about", "bad_request"),
            error("invalid", "not_found"),
        ]
    );
    assert_eq!(events[5].op(), Some("about"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_acceptable_is_decided_before_the_op_runs() {
    let server = start_open().await;
    let write = json_grid(
        json!({"id": {"_kind": "ref", "val": "demo-ahu2-sp"}, "level": 8,
        "val": {"_kind": "number", "val": 70.0, "unit": "°F"}, "who": "t"}),
    );
    let response = server
        .client
        .post(server.url("pointWrite"))
        .header("Content-Type", "application/json")
        .header("Accept", "text/csv")
        .body(write)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_ACCEPTABLE);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; charset=utf-8"
    );
    assert_eq!(
        response.text().await.unwrap(),
        "Not Acceptable: no supported media type in Accept header"
    );
    // The write was not applied: level 8 is still empty.
    let array = server
        .client
        .post(server.url("pointWrite"))
        .header("Content-Type", "application/json")
        .body(json_grid(
            json!({"id": {"_kind": "ref", "val": "demo-ahu2-sp"}}),
        ))
        .send()
        .await
        .unwrap();
    let grid = json_body(&array.text().await.unwrap());
    let level8 = rows(&grid)
        .iter()
        .find(|r| r["level"] == 8 || r["level"] == 8.0)
        .unwrap();
    assert!(level8.get("val").is_none_or(|v| v.is_null()), "{grid}");
    let events = server.events_after(2);
    assert_eq!(events[0], error("pointWrite", "unsupported"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_content_types_are_415_but_empty_bodies_are_empty_grids() {
    let server = start_open().await;
    for mime in ["text/plain", "text/csv"] {
        let response = server
            .client
            .post(server.url("read"))
            .header("Content-Type", mime)
            .body("filter\nsite")
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{mime}"
        );
        assert_eq!(
            response.text().await.unwrap(),
            format!("Unsupported Media Type: {mime}")
        );
    }
    let response = server
        .client
        .post(server.url("about"))
        .header("Content-Type", "application/octet-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let events = server.events_after(3);
    assert_eq!(
        &events[..2],
        &[error("read", "unsupported"), error("read", "unsupported")]
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_bodies_and_filters_are_error_grids() {
    let server = start_open().await;
    let cases: [(&str, &str, &str); 4] = [
        ("application/json", "{not json", "bad_request"),
        (
            "application/json",
            r#"{"_kind":"grid","meta":{},"cols":[{"name":"filter"}],"rows":[{"filter":"site and ("}]}"#,
            "bad_request",
        ),
        (
            "text/zinc",
            "ver:\"3.0\"\nfilter\n\"site and (\"",
            "bad_request",
        ),
        ("text/zinc", "this is not zinc", "bad_request"),
    ];
    for (mime, body, _) in cases {
        let response = server
            .client
            .post(server.url("read"))
            .header("Content-Type", mime)
            .header("Accept", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "error grids are HTTP 200: {body}"
        );
        let grid = json_body(&response.text().await.unwrap());
        assert!(error_dis(&grid).is_some(), "{body}: {grid}");
    }
    still_serving(&server).await;
    let events = server.events_after(5);
    for (event, (_, body, kind)) in events.iter().zip(cases) {
        assert_eq!(event, &error("read", kind), "{body}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_the_limit_are_413() {
    let server = start(Options {
        configure: Box::new(|b| b.body_limit(1024)),
        ..Options::default()
    })
    .await;
    let big = json_grid(json!({"filter": "x".repeat(4096)}));
    let response = server
        .client
        .post(server.url("read"))
        .header("Content-Type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let grid = json_body(&response.text().await.unwrap());
    assert_eq!(error_dis(&grid).as_deref(), Some("Request body too large"));

    // Chunked (no Content-Length): refused once the limit is crossed.
    let chunks: Vec<Result<String, std::io::Error>> =
        (0..16).map(|_| Ok("x".repeat(256))).collect();
    let stream = futures_util::stream::iter(chunks);
    let response = server
        .client
        .post(server.url("read"))
        .header("Content-Type", "application/json")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    still_serving(&server).await;
    let events = server.events_after(3);
    assert_eq!(
        &events[..2],
        &[error("read", "too_large"), error("read", "too_large")]
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_limit_refuses_a_17_mib_body() {
    let server = start_open().await;
    let body = vec![b' '; 17 * 1024 * 1024];
    let response = server
        .client
        .post(server.url("read"))
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await;
    // The server answers before reading the body; the client may see the
    // answer or a reset connection, depending on timing.
    if let Ok(response) = response {
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }
    still_serving(&server).await;
    let events = server.events_after(2);
    assert_eq!(events[0], error("read", "too_large"));
    server.stop().await;
}

/// Ops that take too long in `read` and panic in `nav`.
struct MisbehavingOps {
    inner: MemoryStore,
    read_delay: Duration,
}

#[async_trait::async_trait]
impl HaystackOps for MisbehavingOps {
    async fn read(&self, request: ReadRequest) -> Result<Grid, OpError> {
        tokio::time::sleep(self.read_delay).await;
        self.inner.read(request).await
    }
    async fn nav(&self, _request: NavRequest) -> Result<Grid, OpError> {
        panic!("nav exploded");
    }
    async fn his_read(&self, request: HisReadRequest) -> Result<Grid, OpError> {
        self.inner.his_read(request).await
    }
    async fn his_write(&self, request: HisWriteRequest) -> Result<Grid, OpError> {
        self.inner.his_write(request).await
    }
    async fn point_write(&self, request: PointWriteRequest) -> Result<Grid, OpError> {
        self.inner.point_write(request).await
    }
    async fn watch_sub(&self, request: WatchSubRequest) -> Result<Grid, OpError> {
        self.inner.watch_sub(request).await
    }
    async fn watch_unsub(&self, request: WatchUnsubRequest) -> Result<Grid, OpError> {
        self.inner.watch_unsub(request).await
    }
    async fn watch_poll(&self, request: WatchPollRequest) -> Result<Grid, OpError> {
        self.inner.watch_poll(request).await
    }
    async fn invoke_action(&self, request: InvokeActionRequest) -> Result<Grid, OpError> {
        self.inner.invoke_action(request).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_ops_time_out_and_panics_are_500() {
    let inner = MemoryStore::new();
    inner.load_json_str(DEMO_ENTITIES).unwrap();
    let ops = Arc::new(MisbehavingOps {
        inner,
        read_delay: Duration::from_secs(5),
    });
    let server = start(Options {
        ops: Some(ops),
        configure: Box::new(|b| b.request_timeout(Duration::from_millis(200))),
        ..Options::default()
    })
    .await;
    let started = std::time::Instant::now();
    let response = server
        .client
        .get(format!("{}?filter=site", server.url("read")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(started.elapsed() < Duration::from_secs(4));

    let response = server.client.get(server.url("nav")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    still_serving(&server).await;
    let events = server.events_after(3);
    assert_eq!(
        &events[..2],
        &[error("read", "timeout"), error("nav", "server_error")]
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merged_routers_share_the_listener_without_api_auth_or_observer() {
    let metrics = Router::new().route("/metrics", get(|| async { "haystack_requests_total 0\n" }));
    let server = start(Options {
        auth: true,
        configure: Box::new(move |b| b.merge(metrics)),
        ..Options::default()
    })
    .await;
    let url = format!("http://{}/metrics", server.server.local_addr());
    let response = server.client.get(url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    assert_eq!(
        response.text().await.unwrap(),
        "haystack_requests_total 0\n"
    );
    // The API next to it still requires auth.
    let response = server.client.get(server.url("about")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(server.events_after(1), [error("about", "auth")]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_parallel_requests_are_each_observed_once() {
    let server = Arc::new(start_with_auth().await);
    let token = login(&server.client, &server.url("about"), USER, PASSWORD)
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..200 {
        let server = server.clone();
        let token = token.clone();
        tasks.push(tokio::spawn(async move {
            let (op, body) = match i % 3 {
                0 => ("read", json_grid(json!({"filter": "point"}))),
                1 => (
                    "read",
                    json_grid(json!({"id": {"_kind": "ref", "val": "demo-ahu1-dat"}})),
                ),
                _ => (
                    "nav",
                    json_grid(json!({"navId": {"_kind": "ref", "val": "demo-site"}})),
                ),
            };
            let response = server
                .client
                .post(server.url(op))
                .header("Authorization", bearer(&token))
                .header("Content-Type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            let grid = json_body(&response.text().await.unwrap());
            assert!(!rows(&grid).is_empty());
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let events = server.events_after(203);
    assert_eq!(events.len(), 203);
    let requests = events
        .iter()
        .filter(|e| matches!(e, RecordedEvent::Request { op, .. } if op == "read" || op == "nav"))
        .count();
    assert_eq!(requests, 200);
    let server = Arc::into_inner(server).expect("no other handle");
    server.stop().await;
}
