//! The cost of OpenTelemetry metrics on the servers' throughput: the same
//! store behind three `HttpServer`s (the WebSocket endpoint merged into
//! each) in one process, one run:
//!
//! - `off`: `NoopObserver`;
//! - `otel, no receiver`: an `OtelObserver` per component recording into an
//!   `OtlpMetrics` whose endpoint nobody listens on (each export fails);
//! - `otel, receiver`: the same, exporting to a local OTLP/HTTP receiver
//!   that accepts every export.
//!
//! Both OTLP pipelines export every second, so exports run during the
//! measured window.
//!
//! `cargo bench -p hs-load --bench otel`
//! Environment: `HS_LOAD_SECS` (measured seconds per run, default 3),
//! `HS_LOAD_ROUNDS` (interleaved rounds, default 5).
//!
//! Workloads as in the `tls` bench: HTTP keep-alive (8 `HttpClient`s, one
//! request at a time each) and WebSocket 8 x 16, both reading `id==@p{n}`
//! on a generated building of 1,000 points. Each round runs the three
//! servers back to back; figures are medians over rounds, ratios the
//! medians of the per-round ratios.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::post;
use hs_core::client::HaystackClient;
use hs_core::observe::{MetricsObserver, NoopObserver, Side, Transport};
use hs_core::ops::HaystackOps;
use hs_http_client::HttpClient;
use hs_http_server::HttpServer;
use hs_load::{LoadConfig, closed_loop, median, point_read_request, run};
use hs_otel::OtlpMetrics;

/// Points in the generated building.
const POINTS: u64 = 1_000;

/// Concurrent HTTP clients.
const CLIENTS: usize = 8;

const EXPORT_INTERVAL: Duration = Duration::from_secs(1);

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

async fn start(
    ops: Arc<dyn HaystackOps>,
    http: Arc<dyn MetricsObserver>,
    ws: Arc<dyn MetricsObserver>,
) -> HttpServer {
    let endpoint = hs_ws_server::WsServerState::builder(ops.clone())
        .observer(ws)
        .build();
    HttpServer::builder(ops)
        .observer(http)
        .merge(hs_ws_server::router(endpoint))
        .bind("127.0.0.1:0")
        .await
        .expect("bind")
}

fn otlp(endpoint: &str) -> OtlpMetrics {
    OtlpMetrics::builder()
        .endpoint(endpoint)
        .interval(EXPORT_INTERVAL)
        .service_name("hs-bench")
        .build()
        .expect("OTLP")
}

/// A local OTLP/HTTP receiver accepting every export unread; its base URL.
async fn receiver() -> String {
    let app = Router::new().route("/v1/metrics", post(|| async { Vec::<u8>::new() }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("receiver") });
    url
}

/// A port on 127.0.0.1 nobody listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

async fn http_keep_alive(base_url: &str, secs: u64) -> f64 {
    let clients = (0..CLIENTS)
        .map(|_| HttpClient::builder(base_url).build().expect("client"))
        .collect();
    closed_loop(
        clients,
        |client: Arc<HttpClient>, n| async move {
            let filter = format!("id==@p{}", n % POINTS + 1);
            client.read_filter(&filter, None).await.map(drop)
        },
        Duration::from_millis(300),
        Duration::from_secs(secs),
    )
    .await
    .expect("read")
}

async fn ws_8x16(url: &str, secs: u64) -> f64 {
    let config = LoadConfig::new(url)
        .connections(8)
        .in_flight(16)
        .warmup(Duration::from_millis(300))
        .duration(Duration::from_secs(secs));
    run(&config, |n| point_read_request(n, POINTS))
        .await
        .expect("ws load")
        .rps
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(bench());
}

async fn bench() {
    let secs = env_number("HS_LOAD_SECS", 3).max(1);
    let rounds = env_number("HS_LOAD_ROUNDS", 5).max(1);
    let ops: Arc<dyn HaystackOps> = Arc::new(hs_core::demo::sized::store(POINTS as usize));
    let unreachable = otlp(&format!("http://127.0.0.1:{}", closed_port()));
    let received = otlp(&receiver().await);
    let components = |otlp: &OtlpMetrics| -> (Arc<dyn MetricsObserver>, Arc<dyn MetricsObserver>) {
        (
            Arc::new(otlp.observer(Side::Server, Transport::Http)),
            Arc::new(otlp.observer(Side::Server, Transport::Ws)),
        )
    };
    let (http, ws) = components(&unreachable);
    let (http_received, ws_received) = components(&received);
    let servers = [
        (
            "off",
            start(ops.clone(), Arc::new(NoopObserver), Arc::new(NoopObserver)).await,
        ),
        ("otel, no receiver", start(ops.clone(), http, ws).await),
        (
            "otel, receiver",
            start(ops, http_received, ws_received).await,
        ),
    ];
    println!(
        "OpenTelemetry metrics on the server vs off; export every {EXPORT_INTERVAL:?}; {secs} s per run, {rounds} rounds"
    );
    for workload in ["HTTP keep-alive, 8 clients", "WebSocket 8 x 16"] {
        let mut rates: [Vec<f64>; 3] = Default::default();
        let mut ratios: [Vec<f64>; 2] = Default::default();
        for _ in 0..rounds {
            let mut round = [0.0; 3];
            for (index, (_, server)) in servers.iter().enumerate() {
                round[index] = if workload.starts_with("HTTP") {
                    http_keep_alive(&server.base_url(), secs).await
                } else {
                    ws_8x16(&format!("ws://{}/api/ws", server.local_addr()), secs).await
                };
                rates[index].push(round[index]);
            }
            ratios[0].push(round[1] / round[0]);
            ratios[1].push(round[2] / round[0]);
        }
        let [off, unreachable_rates, received_rates] = rates;
        let [unreachable_ratio, received_ratio] = ratios;
        println!(
            "{workload:<28} off {:>8.0} req/s   otel, no receiver {:>8.0} req/s ({:.3})   otel, receiver {:>8.0} req/s ({:.3})",
            median(off),
            median(unreachable_rates),
            median(unreachable_ratio),
            median(received_rates),
            median(received_ratio),
        );
    }
    for (_, server) in servers {
        server.shutdown().await.expect("shutdown");
    }
    // The provider's shutdown blocks (the last export).
    tokio::task::spawn_blocking(move || {
        let _ = unreachable.shutdown();
        let _ = received.shutdown();
    })
    .await
    .expect("shutdown");
}
