//! A fixed-count driver for profiling the request path load-independently
//! (e.g. under `valgrind --tool=callgrind`): starts hs-http-server (over a
//! MemoryStore) or a bare axum handler returning the same bytes, and sends
//! `N` single-entity `read` requests over one keep-alive connection
//! (`HS_DRIVER_READ=point`: the filter `point` instead, 1,000 rows).
//!
//! Run: `cargo run --release -p hs-load --example http_read_driver -- hs 2000`
//! (`bare` instead of `hs` for the ceiling). Compare instructions per request:
//! `valgrind --tool=callgrind target/release/examples/http_read_driver hs 2000`
//! against `... hs 1000`; the difference over 1000 is the per-request cost.

use std::sync::Arc;

type Error = Box<dyn std::error::Error + Send + Sync>;

use axum::Router;
use axum::body::Bytes;
use axum::http::header::CONTENT_TYPE;
use axum::routing::post;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const POINTS: &str =
    r#"{"_kind":"grid","meta":{},"cols":[{"name":"filter"}],"rows":[{"filter":"point"}]}"#;
const BY_ID: &str = r#"{"_kind":"grid","meta":{},"cols":[{"name":"id"}],"rows":[{"id":{"_kind":"ref","val":"p-0500"}}]}"#;

fn entities_json() -> String {
    let mut rows = Vec::new();
    for i in 0..1000 {
        rows.push(serde_json::json!({
            "id": {"_kind": "ref", "val": format!("p-{i:04}")},
            "dis": format!("Point {i}"),
            "point": {"_kind": "marker"}, "his": {"_kind": "marker"},
            "kind": "Number", "unit": "°F", "tz": "New_York",
            "curVal": {"_kind": "number", "val": 68.5, "unit": "°F"},
        }));
    }
    let cols: Vec<_> = ["id", "dis", "point", "his", "kind", "unit", "tz", "curVal"]
        .iter()
        .map(|n| serde_json::json!({"name": n}))
        .collect();
    serde_json::json!({"_kind": "grid", "meta": {"ver": "3.0"}, "cols": cols, "rows": rows})
        .to_string()
}

/// Sends one request and reads the whole response; returns the body.
async fn round_trip(
    stream: &mut TcpStream,
    request: &[u8],
    buf: &mut Vec<u8>,
) -> Result<Vec<u8>, Error> {
    stream.write_all(request).await?;
    buf.clear();
    let mut chunk = [0u8; 8192];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err("connection closed".into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..end])?.to_ascii_lowercase();
            if !head.starts_with("http/1.1 200") {
                return Err(format!("unexpected response: {head}").into());
            }
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .ok_or("no content-length")?
                .trim()
                .parse()?;
            if buf.len() >= end + 4 + length {
                return Ok(buf[end + 4..end + 4 + length].to_vec());
            }
        }
    }
}

fn main() -> Result<(), Error> {
    // `HS_DRIVER_THREADS=N` runs on a multi-threaded runtime of N workers
    // (as a deployed server and the bench do); default: one thread.
    let threads: usize = std::env::var("HS_DRIVER_THREADS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let runtime = if threads == 0 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    };
    runtime?.block_on(run())
}

async fn run() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "hs".into());
    let count: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(1000);

    let store = hs_core::store::MemoryStore::new();
    store.load_json_str(&entities_json())?;
    let hs = hs_http_server::HttpServer::builder(Arc::new(store))
        .bind("127.0.0.1:0")
        .await?;
    let body = match std::env::var("HS_DRIVER_READ").as_deref() {
        Ok("point") => POINTS,
        _ => BY_ID,
    };
    let request = format!(
        "POST /api/read HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\naccept: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut buf = Vec::new();
    let mut stream = TcpStream::connect(hs.local_addr()).await?;
    stream.set_nodelay(true)?;
    let answer = Bytes::from(round_trip(&mut stream, request.as_bytes(), &mut buf).await?);

    let addr = if mode == "bare" {
        let app = Router::new().route(
            "/api/read",
            post(move |_body: Bytes| {
                let answer = answer.clone();
                async move { ([(CONTENT_TYPE, "application/json")], answer) }
            }),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    } else {
        hs.local_addr()
    };
    // The client runs on its own task, as a remote client would.
    let client = tokio::spawn(async move {
        let mut stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let mut buf = Vec::new();
        let started = std::time::Instant::now();
        for _ in 0..count {
            round_trip(&mut stream, request.as_bytes(), &mut buf).await?;
        }
        Ok::<_, Error>(started.elapsed())
    });
    let elapsed = client.await??;
    println!(
        "{mode}: {count} requests in {elapsed:?} ({:.1} µs each)",
        elapsed.as_secs_f64() * 1e6 / count as f64
    );
    hs.shutdown().await?;
    Ok(())
}
