//! The bench's 1-connection case in isolation, for `strace`/`perf`: starts
//! hs-http-server (MemoryStore of 1,000 points, no auth) or a bare axum
//! handler returning hs's exact bytes, and sends `N` single-entity `read`
//! requests over one keep-alive connection with the bench's hyper client
//! (request task + hyper connection task).
//!
//! Run: `cargo run --release --manifest-path bench/http-compare/Cargo.toml
//! --example one_conn -- hs 20000` (`bare` for the ceiling).
//!
//! `HS_DRIVER_LAYOUT` chooses where the client runs:
//! - `shared` (default, as the bench): client and
//!   server on one 2-worker runtime;
//! - `split`: the server on a 2-worker runtime, the client on its own
//!   1-thread runtime (as a separate client process would be).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::header::{ACCEPT, CONTENT_TYPE, HOST};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

type Error = Box<dyn std::error::Error + Send + Sync>;
type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

const BY_ID: &str = r#"{"_kind":"grid","meta":{},"cols":[{"name":"id"}],"rows":[{"id":{"_kind":"ref","val":"p-0500"}}]}"#;

fn entities_json() -> String {
    let rows: Vec<_> = (0..1000)
        .map(|i| {
            serde_json::json!({
                "id": {"_kind": "ref", "val": format!("p-{i:04}")},
                "dis": format!("Point {i}"),
                "point": {"_kind": "marker"}, "his": {"_kind": "marker"},
                "kind": "Number", "unit": "°F", "tz": "New_York",
                "curVal": {"_kind": "number", "val": 68.5, "unit": "°F"},
            })
        })
        .collect();
    let cols: Vec<_> = ["id", "dis", "point", "his", "kind", "unit", "tz", "curVal"]
        .iter()
        .map(|n| serde_json::json!({"name": n}))
        .collect();
    serde_json::json!({"_kind": "grid", "meta": {"ver": "3.0"}, "cols": cols, "rows": rows})
        .to_string()
}

async fn connect(addr: SocketAddr) -> Result<Sender, Error> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

async fn send(sender: &mut Sender) -> Result<Bytes, Error> {
    let request = Request::post("/api/read")
        .header(HOST, "127.0.0.1")
        .header(CONTENT_TYPE, "application/json")
        .header(ACCEPT, "application/json")
        .body(Full::new(Bytes::from_static(BY_ID.as_bytes())))?;
    sender.ready().await?;
    let response = sender.send_request(request).await?;
    if response.status() != 200 {
        return Err(format!("status {}", response.status()).into());
    }
    Ok(response.into_body().collect().await?.to_bytes())
}

/// Starts the server named by `mode`; returns its address and a guard that
/// keeps it running.
async fn start(mode: &str) -> Result<(SocketAddr, hs_http_server::HttpServer), Error> {
    let store = hs_core::store::MemoryStore::new();
    store.load_json_str(&entities_json())?;
    let hs = hs_http_server::HttpServer::builder(Arc::new(store))
        .bind("127.0.0.1:0")
        .await?;
    if mode != "bare" {
        return Ok((hs.local_addr(), hs));
    }
    let answer = send(&mut connect(hs.local_addr()).await?).await?;
    let app = Router::new().route(
        "/api/read",
        post(move |_body: Bytes| {
            let answer = answer.clone();
            async move { ([(CONTENT_TYPE, "application/json")], answer) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((addr, hs))
}

/// Per-worker counters of the server runtime: (busy time, parks).
fn worker_counters(metrics: &tokio::runtime::RuntimeMetrics) -> Vec<(Duration, u64)> {
    (0..metrics.num_workers())
        .map(|w| {
            (
                metrics.worker_total_busy_duration(w),
                metrics.worker_park_count(w),
            )
        })
        .collect()
}

async fn drive(
    addr: SocketAddr,
    count: usize,
    servers: tokio::runtime::RuntimeMetrics,
) -> Result<(Duration, Vec<(Duration, u64)>), Error> {
    let mut sender = connect(addr).await?;
    for _ in 0..count / 10 {
        send(&mut sender).await?; // warm-up
    }
    let before = worker_counters(&servers);
    let started = Instant::now();
    for _ in 0..count {
        send(&mut sender).await?;
    }
    let elapsed = started.elapsed();
    let after = worker_counters(&servers);
    let delta = before
        .iter()
        .zip(after)
        .map(|(b, a)| (a.0 - b.0, a.1 - b.1))
        .collect();
    Ok((elapsed, delta))
}

fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "hs".into());
    let count: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(20_000);
    let layout = std::env::var("HS_DRIVER_LAYOUT").unwrap_or_else(|_| "shared".into());

    let servers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (addr, _hs) = servers.block_on(start(&mode))?;
    let metrics = servers.metrics();
    let (elapsed, workers) = match layout.as_str() {
        "shared" => {
            servers.block_on(async move { tokio::spawn(drive(addr, count, metrics)).await? })?
        }
        "split" => {
            let client = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("client")
                .enable_all()
                .build()?;
            client.block_on(async move { tokio::spawn(drive(addr, count, metrics)).await? })?
        }
        other => return Err(format!("unknown HS_DRIVER_LAYOUT {other}").into()),
    };
    let per_request = |d: Duration| d.as_secs_f64() * 1e6 / count as f64;
    let workers: Vec<String> = workers
        .iter()
        .map(|(busy, parks)| {
            format!(
                "busy {:.1} µs, parks {:.2}",
                per_request(*busy),
                *parks as f64 / count as f64
            )
        })
        .collect();
    println!(
        "{mode} ({layout}): {count} requests in {elapsed:?} ({:.1} µs each); per request, server workers: {}",
        per_request(elapsed),
        workers.join(" | ")
    );
    Ok(())
}
