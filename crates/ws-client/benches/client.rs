//! Client-side throughput through `WsClient` against hs-ws-server, and the
//! same frames sent by a bare tokio-tungstenite client, in one run.
//!
//! `cargo bench -p hs-ws-client --bench client`
//!
//! Cases: `{WsClient,raw}/{op}/{connections}x{in_flight}`; one criterion
//! element is one request, so criterion's throughput is requests/s. The
//! server runs on its own runtime in this process.
#![allow(missing_docs, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures_util::{SinkExt, StreamExt};
use hs_ws_client::{Grid, HaystackClient, WsClient, requests};
use tokio::runtime::Runtime;
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

type RawWs =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn runtime(threads: usize) -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .unwrap()
}

/// hs-ws-server over the demo building, no auth, no observer.
async fn start_server() -> String {
    let store = Arc::new(hs_core::demo::building());
    let state = hs_ws_server::WsServerState::builder(store).build();
    let server = hs_ws_server::WsServer::bind("127.0.0.1:0", state)
        .await
        .unwrap();
    let url = format!("ws://{}/api/ws", server.local_addr());
    tokio::spawn(server.serve());
    url
}

/// The request each case sends.
#[derive(Clone, Copy)]
enum Op {
    About,
    ReadPoints,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::About => "about",
            Op::ReadPoints => "read",
        }
    }

    fn grid(self) -> Grid {
        match self {
            Op::About => requests::empty(),
            Op::ReadPoints => requests::read_filter("point", Some(10)),
        }
    }
}

/// Splits `total` requests over `parts` workers.
fn share(total: u64, parts: usize, index: usize) -> u64 {
    let parts = parts as u64;
    total / parts + u64::from((index as u64) < total % parts)
}

async fn run_client(clients: &[WsClient], in_flight: usize, op: Op, iters: u64) -> Duration {
    let workers = clients.len() * in_flight;
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(workers);
    for w in 0..workers {
        let client = clients[w % clients.len()].clone();
        let n = share(iters, workers, w);
        tasks.push(tokio::spawn(async move {
            for _ in 0..n {
                client.call(op.name(), op.grid()).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    start.elapsed()
}

async fn raw_connect(url: &str) -> RawWs {
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_static("haystack"),
    );
    let (ws, _) = tokio_tungstenite::connect_async_with_config(request, None, true)
        .await
        .unwrap();
    ws
}

/// The frame WsClient sends for `op`, with id `id`: the raw client sends
/// exactly these bytes (the grid is encoded once, up front).
fn raw_frame(grid_json: &str, op: Op, id: u64) -> String {
    format!(r#"{{"id":"{id}","op":"{}","grid":{grid_json}}}"#, op.name())
}

/// A bare pipelined client: keeps `in_flight` requests outstanding per
/// connection, counts answers, decodes nothing.
async fn run_raw(
    conns: &[Arc<Mutex<RawWs>>],
    in_flight: usize,
    grid_json: Arc<str>,
    op: Op,
    iters: u64,
) -> Duration {
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(conns.len());
    for (c, conn) in conns.iter().enumerate() {
        let conn = conn.clone();
        let grid_json = grid_json.clone();
        let n = share(iters, conns.len(), c);
        tasks.push(tokio::spawn(async move {
            let mut ws = conn.lock().await;
            let (mut sent, mut received) = (0u64, 0u64);
            while sent < n.min(in_flight as u64) {
                ws.send(Message::text(raw_frame(&grid_json, op, sent)))
                    .await
                    .unwrap();
                sent += 1;
            }
            while received < n {
                match ws.next().await.unwrap().unwrap() {
                    Message::Text(_) => received += 1,
                    _ => continue,
                }
                if sent < n {
                    ws.send(Message::text(raw_frame(&grid_json, op, sent)))
                        .await
                        .unwrap();
                    sent += 1;
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    start.elapsed()
}

fn bench(c: &mut Criterion) {
    let server_rt = runtime(2);
    let url = server_rt.block_on(start_server());
    let client_rt = runtime(2);
    let mut group = c.benchmark_group("ws_client");
    group
        .throughput(Throughput::Elements(1))
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(10);
    for op in [Op::About, Op::ReadPoints] {
        let grid_json: Arc<str> =
            hs_core::codec::encode_grid(&op.grid(), hs_core::codec::Format::Json)
                .unwrap()
                .into();
        // The raw client must send the frames WsClient sends: same length
        // for the first request (id "0").
        let recorder = Arc::new(hs_core::observe::RecordingObserver::new());
        client_rt.block_on(async {
            let probe = WsClient::builder(&url)
                .observer(recorder.clone())
                .connect()
                .await
                .unwrap();
            probe.call(op.name(), op.grid()).await.unwrap();
            probe.close().await.unwrap();
        });
        assert_eq!(
            recorder.messages_sent()[0].1,
            raw_frame(&grid_json, op, 0).len()
        );
        for (connections, in_flight) in [(1usize, 1usize), (8, 16)] {
            let clients: Vec<WsClient> = client_rt.block_on(async {
                let mut v = Vec::new();
                for _ in 0..connections {
                    v.push(
                        WsClient::builder(&url)
                            .no_heartbeat()
                            .connect()
                            .await
                            .unwrap(),
                    );
                }
                v
            });
            group.bench_function(
                format!("WsClient/{}/{connections}x{in_flight}", op.name()),
                |b| {
                    b.iter_custom(|iters| {
                        client_rt.block_on(run_client(&clients, in_flight, op, iters))
                    })
                },
            );
            client_rt.block_on(async {
                for client in &clients {
                    client.close().await.unwrap();
                }
            });

            let conns: Vec<Arc<Mutex<RawWs>>> = client_rt.block_on(async {
                let mut v = Vec::new();
                for _ in 0..connections {
                    v.push(Arc::new(Mutex::new(raw_connect(&url).await)));
                }
                v
            });
            group.bench_function(
                format!("raw/{}/{connections}x{in_flight}", op.name()),
                |b| {
                    b.iter_custom(|iters| {
                        client_rt.block_on(run_raw(&conns, in_flight, grid_json.clone(), op, iters))
                    })
                },
            );
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
