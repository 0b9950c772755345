//! Load test: single-entity `read` by id against hs-ws-server (NoopObserver,
//! and LoggingObserver + StatsObserver) and against a bare tokio-tungstenite
//! echo server answering a canned response of the same size, in one run.
//!
//! `cargo bench -p hs-ws-server --features loadgen --bench load`
//! Environment: `HS_LOAD_SECS` (measured seconds per run, default 3),
//! `HS_LOAD_ROUNDS` (interleaved rounds, default 2).

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hs_core::observe::{
    CompositeObserver, LoggingObserver, MetricsObserver, NoopObserver, StatsObserver,
};
use hs_core::ops::HaystackOps;
use hs_core::store::MemoryStore;
use hs_ws_server::loadgen::{EchoServer, LoadConfig, LoadReport, run};
use hs_ws_server::{WsServer, WsServerState};

const DEMO_ENTITIES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/demo-entities.json"
);

fn read_request(n: u64) -> String {
    format!(
        r#"{{"id":"{n}","op":"read","grid":{{"_kind":"grid","meta":{{}},"cols":[{{"name":"id"}}],"rows":[{{"id":{{"_kind":"ref","val":"demo-ahu1-dat"}}}}]}}}}"#
    )
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

async fn start_server(
    observer: Arc<dyn MetricsObserver>,
) -> (String, hs_ws_server::ShutdownHandle) {
    let store = MemoryStore::new();
    store.load_json_file(DEMO_ENTITIES).expect("demo entities");
    let ops: Arc<dyn HaystackOps> = Arc::new(store);
    let state = WsServerState::builder(ops).observer(observer).build();
    let server = WsServer::bind("127.0.0.1:0", state).await.expect("bind");
    let url = format!("ws://{}/api/ws", server.local_addr());
    let handle = server.shutdown_handle();
    tokio::spawn(server.serve());
    (url, handle)
}

/// The server's answer to a typical request, to size the echo's canned one.
async fn sample_response(url: &str) -> String {
    use tokio_tungstenite::tungstenite::Message;
    let (mut socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connect");
    socket
        .send(Message::text(read_request(12_345)))
        .await
        .expect("send");
    let answer = match socket.next().await {
        Some(Ok(Message::Text(text))) => text.as_str().to_owned(),
        other => panic!("unexpected {other:?}"),
    };
    let _ = socket.close(None).await;
    answer
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(bench());
}

async fn bench() {
    let secs = env_number("HS_LOAD_SECS", 3);
    let rounds = env_number("HS_LOAD_ROUNDS", 2);
    let (noop_url, noop_stop) = start_server(Arc::new(NoopObserver)).await;
    let composite: Arc<dyn MetricsObserver> = Arc::new(
        CompositeObserver::builder()
            .with(LoggingObserver::new())
            .with(StatsObserver::new())
            .build(),
    );
    let (composite_url, composite_stop) = start_server(composite).await;
    let canned = sample_response(&noop_url).await;
    let echo = EchoServer::start(canned.clone()).await.expect("echo");
    let echo_url = format!("ws://{}/api/ws", echo.local_addr());
    println!(
        "read by id: request {} bytes, response {} bytes; {secs} s per run, {rounds} rounds; log level {}",
        read_request(12_345).len(),
        canned.len(),
        log::max_level()
    );

    for (connections, in_flight) in [(1, 1), (8, 16)] {
        let targets = [
            ("echo", &echo_url),
            ("hs noop", &noop_url),
            ("hs logging+stats", &composite_url),
        ];
        let mut totals = [0.0f64; 3];
        let mut last: Vec<Option<LoadReport>> = vec![None, None, None];
        for _ in 0..rounds {
            for (index, (_, url)) in targets.iter().enumerate() {
                let config = LoadConfig::new(url.as_str())
                    .connections(connections)
                    .in_flight(in_flight)
                    .warmup(Duration::from_millis(300))
                    .duration(Duration::from_secs(secs));
                let report = run(&config, read_request).await.expect("load run");
                totals[index] += report.rps;
                last[index] = Some(report);
            }
        }
        println!("\n{connections} connection(s) x {in_flight} in flight");
        println!(
            "{:<18} {:>10} {:>10} {:>10} {:>8}",
            "target", "req/s", "p50 us", "p99 us", "bytes"
        );
        for (index, (name, _)) in targets.iter().enumerate() {
            let report = last[index].as_ref().expect("report");
            println!(
                "{:<18} {:>10.0} {:>10} {:>10} {:>8}",
                name,
                totals[index] / rounds as f64,
                report.p50.as_micros(),
                report.p99.as_micros(),
                report.response_bytes
            );
        }
        println!(
            "hs noop / echo = {:.1} %; logging+stats cost vs noop = {:.1} %",
            100.0 * totals[1] / totals[0],
            100.0 * (1.0 - totals[2] / totals[1])
        );
    }
    noop_stop.shutdown();
    composite_stop.shutdown();
    noop_stop.closed().await;
    composite_stop.closed().await;
}
