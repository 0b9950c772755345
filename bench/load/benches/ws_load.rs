//! Load test: `read` against hs-ws-server (with NoopObserver, and with
//! LoggingObserver and StatsObserver) and against a bare tokio-tungstenite
//! echo server answering a canned response of the same size, in one run.
//!
//! `cargo bench -p hs-load --bench ws_load`
//! Environment: `HS_LOAD_SECS` (measured seconds per run, default 3),
//! `HS_LOAD_ROUNDS` (interleaved rounds, default 5), `HS_LOAD_READ`:
//! - `ids` (the default): one entity by id list, on the demo building;
//! - `filter`: `id==@p{n}`, a different point each request (no cache can
//!   help), on a generated building of 1,000 points (1,021 entities);
//! - `points`: the filter `point` on that building, 1,000 rows (a large
//!   answer).
//!
//! Each round runs echo, noop and logging+stats back to back; the figures
//! are medians over rounds, the ratios medians of the per-round ratios.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hs_core::observe::{
    CompositeObserver, LoggingObserver, MetricsObserver, NoopObserver, StatsObserver,
};
use hs_core::ops::HaystackOps;
use hs_core::store::MemoryStore;
use hs_load::{EchoServer, LoadConfig, LoadReport, median, run};
use hs_ws_server::{WsServer, WsServerState};

const DEMO_ENTITIES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../crates/ws-server/tests/fixtures/demo-entities.json"
);

/// Points in the generated building of the `filter` and `points` reads.
const POINTS: u64 = 1_000;

/// What each request reads; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Read {
    Ids,
    Filter,
    Points,
}

impl Read {
    fn from_env() -> Self {
        match std::env::var("HS_LOAD_READ").as_deref() {
            Ok("filter") => Read::Filter,
            Ok("points") => Read::Points,
            Ok("ids") | Err(_) => Read::Ids,
            Ok(other) => panic!("HS_LOAD_READ={other}: expected ids, filter or points"),
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Read::Ids => "one entity by id list (demo building)",
            Read::Filter => "id==@p{n}, a different point each request (1,000 points)",
            Read::Points => "point, 1,000 rows (1,000 points)",
        }
    }

    fn store(self) -> MemoryStore {
        match self {
            Read::Ids => {
                let store = MemoryStore::new();
                store.load_json_file(DEMO_ENTITIES).expect("demo entities");
                store
            }
            Read::Filter | Read::Points => hs_core::demo::sized::store(POINTS as usize),
        }
    }

    fn request(self, n: u64) -> String {
        let rows = match self {
            Read::Ids => r#"{"id":{"_kind":"ref","val":"demo-ahu1-dat"}}"#.to_owned(),
            Read::Filter => format!(r#"{{"filter":"id==@p{}"}}"#, n % POINTS + 1),
            Read::Points => r#"{"filter":"point"}"#.to_owned(),
        };
        let column = if self == Read::Ids { "id" } else { "filter" };
        format!(
            r#"{{"id":"{n}","op":"read","grid":{{"_kind":"grid","meta":{{}},"cols":[{{"name":"{column}"}}],"rows":[{rows}]}}}}"#
        )
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

async fn start_server(
    read: Read,
    observer: Arc<dyn MetricsObserver>,
) -> (String, hs_ws_server::ShutdownHandle) {
    let ops: Arc<dyn HaystackOps> = Arc::new(read.store());
    let state = WsServerState::builder(ops).observer(observer).build();
    let server = WsServer::bind("127.0.0.1:0", state).await.expect("bind");
    let url = format!("ws://{}/api/ws", server.local_addr());
    let handle = server.shutdown_handle();
    tokio::spawn(server.serve());
    (url, handle)
}

/// The server's answer to a typical request, to size the echo's canned one.
async fn sample_response(read: Read, url: &str) -> String {
    use tokio_tungstenite::tungstenite::Message;
    let (mut socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connect");
    socket
        .send(Message::text(read.request(12_345)))
        .await
        .expect("send");
    let answer = match socket.next().await {
        Some(Ok(Message::Text(text))) => text.as_str().to_owned(),
        other => panic!("unexpected {other:?}"),
    };
    let _ = socket.close(None).await;
    answer
}

fn min(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::INFINITY, f64::min)
}

fn max(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::NEG_INFINITY, f64::max)
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
    let rounds = env_number("HS_LOAD_ROUNDS", 5).max(1);
    let read = Read::from_env();
    let (noop_url, noop_stop) = start_server(read, Arc::new(NoopObserver)).await;
    let composite: Arc<dyn MetricsObserver> = Arc::new(
        CompositeObserver::builder()
            .with(LoggingObserver::new())
            .with(StatsObserver::new())
            .build(),
    );
    let (composite_url, composite_stop) = start_server(read, composite).await;
    let canned = sample_response(read, &noop_url).await;
    let echo = EchoServer::start(canned.clone()).await.expect("echo");
    let echo_url = format!("ws://{}/api/ws", echo.local_addr());
    println!(
        "read {}: request {} bytes, response {} bytes; {secs} s per run, {rounds} rounds; log level {}",
        read.describe(),
        read.request(12_345).len(),
        canned.len(),
        log::max_level()
    );

    for (connections, in_flight) in [(1, 1), (8, 16)] {
        let targets = [
            ("echo", &echo_url),
            ("hs noop", &noop_url),
            ("hs logging+stats", &composite_url),
        ];
        // Rounds interleave the targets (echo, noop, composite, echo, ...)
        // so that load from elsewhere on the machine hits all of them alike;
        // ratios are taken within a round, then their median reported.
        let mut reports: [Vec<LoadReport>; 3] = Default::default();
        let mut hs_vs_echo = Vec::new();
        let mut observer_cost = Vec::new();
        for round in 0..rounds {
            let mut rps = [0.0f64; 3];
            for (index, (_, url)) in targets.iter().enumerate() {
                let config = LoadConfig::new(url.as_str())
                    .connections(connections)
                    .in_flight(in_flight)
                    .warmup(Duration::from_millis(300))
                    .duration(Duration::from_secs(secs));
                let report = run(&config, move |n| read.request(n))
                    .await
                    .expect("load run");
                rps[index] = report.rps;
                reports[index].push(report);
            }
            hs_vs_echo.push(rps[1] / rps[0]);
            observer_cost.push(1.0 - rps[2] / rps[1]);
            println!(
                "  {connections} x {in_flight} round {}: echo {:.0}, noop {:.0}, logging+stats {:.0} req/s; noop/echo {:.1} %, observer cost {:.1} %",
                round + 1,
                rps[0],
                rps[1],
                rps[2],
                100.0 * rps[1] / rps[0],
                100.0 * (1.0 - rps[2] / rps[1])
            );
        }
        println!(
            "\n{connections} connection(s) x {in_flight} in flight, medians of {rounds} rounds"
        );
        println!(
            "{:<18} {:>10} {:>10} {:>10} {:>8}",
            "target", "req/s", "p50 us", "p99 us", "bytes"
        );
        for (index, (name, _)) in targets.iter().enumerate() {
            let runs = &reports[index];
            println!(
                "{:<18} {:>10.0} {:>10} {:>10} {:>8}",
                name,
                median(runs.iter().map(|r| r.rps)),
                median(runs.iter().map(|r| r.p50.as_secs_f64() * 1e6)).round(),
                median(runs.iter().map(|r| r.p99.as_secs_f64() * 1e6)).round(),
                runs.last().map_or(0, |r| r.response_bytes)
            );
        }
        println!(
            "hs noop / echo = {:.1} % (median of per-round ratios; range {:.1}-{:.1} %)",
            100.0 * median(hs_vs_echo.iter().copied()),
            100.0 * min(&hs_vs_echo),
            100.0 * max(&hs_vs_echo)
        );
        println!(
            "logging+stats cost vs noop = {:.1} % (median of per-round ratios; range {:.1}-{:.1} %)",
            100.0 * median(observer_cost.iter().copied()),
            100.0 * min(&observer_cost),
            100.0 * max(&observer_cost)
        );
    }
    noop_stop.shutdown();
    composite_stop.shutdown();
    noop_stop.closed().await;
    composite_stop.closed().await;
}
