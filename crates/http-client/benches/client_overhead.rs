//! Client overhead: the same `read` request through `HttpClient` and through
//! a bare reqwest loop, against one local axum server, in one run.
//!
//! `cargo bench -p hs-http-client --bench client_overhead`

use std::sync::Arc;
use std::time::Duration;

use axum::http::header;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hs_core::codec::{self, Format};
use hs_core::observe::StatsObserver;
use hs_http_client::{HaystackClient, HttpClient, RetryPolicy};

/// A read answer of 10 points with a few tags each.
fn answer() -> String {
    let rows: Vec<String> = (0..10)
        .map(|i| {
            format!(
                r#"{{"id":{{"_kind":"ref","val":"p{i}"}},"dis":"Point {i}","point":{{"_kind":"marker"}},"curVal":{{"_kind":"number","val":7{i}.5,"unit":"°F"}}}}"#
            )
        })
        .collect();
    format!(
        r#"{{"_kind":"grid","meta":{{}},"cols":[{{"name":"id"}},{{"name":"dis"}},{{"name":"point"}},{{"name":"curVal"}}],"rows":[{}]}}"#,
        rows.join(",")
    )
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let body = answer();
    let addr = runtime.block_on(async {
        let app = axum::Router::new().route(
            "/api/read",
            axum::routing::post(move || {
                let body = body.clone();
                async move { ([(header::CONTENT_TYPE, "application/json")], body) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    });
    let base = format!("http://{addr}/api");

    let stats = Arc::new(StatsObserver::new());
    let client = HttpClient::builder(&base)
        .retry(RetryPolicy::none())
        .timeout(Duration::from_secs(10))
        .observer(stats)
        .build()
        .expect("client");
    let raw = reqwest::Client::builder()
        .tls_backend_preconfigured(
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .expect("tls")
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth(),
        )
        .build()
        .expect("raw client");
    let url = format!("{base}/read");
    let request_body = r#"{"_kind":"grid","meta":{},"cols":[{"name":"filter"},{"name":"limit"}],"rows":[{"filter":"point"}]}"#;

    let mut group = c.benchmark_group("http_client_read");
    group.throughput(Throughput::Elements(1));
    group.bench_function("raw_reqwest", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let response = raw
                    .post(&url)
                    .header(header::CONTENT_TYPE, "application/json")
                    .header(header::ACCEPT, "application/json")
                    .body(request_body)
                    .send()
                    .await
                    .expect("send");
                response.bytes().await.expect("body")
            })
        })
    });
    group.bench_function("raw_reqwest_and_decode", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let response = raw
                    .post(&url)
                    .header(header::CONTENT_TYPE, "application/json")
                    .header(header::ACCEPT, "application/json")
                    .body(request_body)
                    .send()
                    .await
                    .expect("send");
                let bytes = response.bytes().await.expect("body");
                codec::decode_grid(&bytes, Format::Json).expect("grid")
            })
        })
    });
    group.bench_function("http_client", |b| {
        b.iter(|| {
            runtime
                .block_on(client.read_filter("point", None))
                .expect("read")
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
