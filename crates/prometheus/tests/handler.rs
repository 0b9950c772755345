//! The `/metrics` endpoint: in-process through `oneshot`, and on a real socket.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use hs_observe::MetricsObserver;
use hs_prometheus::{PrometheusMetrics, Side, Transport, metrics_router};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::ServiceExt;

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

async fn get(metrics: &PrometheusMetrics, accept: Option<&str>) -> (StatusCode, String, String) {
    let mut request = Request::get("/metrics");
    if let Some(accept) = accept {
        request = request.header(header::ACCEPT, accept);
    }
    let app: axum::Router = metrics_router(metrics.clone());
    let response = app
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let content_type = response.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        content_type,
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

#[tokio::test]
async fn serves_openmetrics_to_scrapers_that_ask_for_it() {
    let metrics = PrometheusMetrics::new();
    metrics
        .observer(Side::Server, Transport::Http)
        .on_request("read", Duration::from_millis(5));

    let prometheus_scraper = "application/openmetrics-text;version=1.0.0,\
        application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    for accept in ["application/openmetrics-text", prometheus_scraper] {
        let (status, content_type, body) = get(&metrics, Some(accept)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(content_type, OPENMETRICS, "{accept:?}");
        assert!(body.ends_with("# EOF\n"));
        let samples = common::parse(&body);
        assert_eq!(
            common::value(
                &samples,
                "haystack_request_duration_seconds_count",
                &[("op", "read"), ("side", "server"), ("transport", "http")]
            ),
            Some(1.0)
        );
    }
}

#[tokio::test]
async fn serves_prometheus_text_by_default() {
    // curl sends `*/*`; a browser or a script may send nothing: both get the
    // format `promtool check metrics` and every scraper read.
    let metrics = PrometheusMetrics::new();
    metrics
        .observer(Side::Server, Transport::Http)
        .on_request("read", Duration::from_millis(5));
    for accept in [
        None,
        Some("*/*"),
        Some("application/openmetrics-text;q=0, */*"),
    ] {
        let (status, content_type, body) = get(&metrics, accept).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            content_type, "text/plain; version=0.0.4; charset=utf-8",
            "{accept:?}"
        );
        assert!(!body.contains("# EOF"), "{accept:?}");
    }
}

#[tokio::test]
async fn serves_prometheus_text_to_plain_text_scrapers() {
    let metrics = PrometheusMetrics::new();
    metrics
        .observer(Side::Client, Transport::Ws)
        .on_ws_message_sent("read", 42);
    let (status, content_type, body) = get(&metrics, Some("text/plain")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    assert!(!body.contains("# EOF"));
    assert!(body.contains("# TYPE haystack_ws_sent_bytes_total counter"));
    assert_eq!(
        common::value(
            &common::parse(&body),
            "haystack_ws_sent_bytes_total",
            &[("op", "read"), ("side", "client")]
        ),
        Some(42.0)
    );
}

#[tokio::test]
async fn other_paths_and_methods_are_not_served() {
    let app: axum::Router = metrics_router(PrometheusMetrics::new());
    let response = app
        .clone()
        .oneshot(Request::get("/other").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = app
        .oneshot(Request::post("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn scrape_over_a_real_socket_sees_live_updates() {
    let metrics = PrometheusMetrics::new();
    let observer = metrics.observer(Side::Server, Transport::Ws);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, metrics_router::<()>(metrics))
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });

    // Plain HTTP/1.1 with `Connection: close`: read until the server closes.
    let scrape = || async move {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(
                b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\
                  Accept: application/openmetrics-text\r\nConnection: close\r\n\r\n",
            )
            .await
            .unwrap();
        let mut response = String::new();
        tokio::time::timeout(
            Duration::from_secs(10),
            stream.read_to_string(&mut response),
        )
        .await
        .expect("response within 10 s")
        .unwrap();
        response
    };

    observer.on_ws_connect("127.0.0.1:40000");
    let first = scrape().await;
    let (head, body) = first.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("content-type: {OPENMETRICS}")),
        "{head}"
    );
    let active = |body: &str| {
        common::value(
            &common::parse(body),
            "haystack_ws_connections_active",
            &[("side", "server")],
        )
    };
    assert_eq!(active(body), Some(1.0));

    observer.on_ws_disconnect("127.0.0.1:40000");
    let second = scrape().await;
    let (_, body) = second.split_once("\r\n\r\n").unwrap();
    assert_eq!(active(body), Some(0.0));

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("server stops within 10 s")
        .unwrap();
}
