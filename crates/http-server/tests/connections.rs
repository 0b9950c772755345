//! The builder's connection limits (`max_connections`,
//! `header_read_timeout`, `idle_timeout`) on a real server: stalled
//! connections are refused past the bound with `503`, cut off by the header
//! timeout, and idle kept-alive connections are closed.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::sync::Arc;
use std::time::Duration;

use hs_core::observe::RecordingObserver;
use hs_http_server::HttpServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The longest any step waits.
const WAIT: Duration = Duration::from_secs(30);

const STALLED: &[u8] = b"GET /api/about HTTP/1.1\r\nHost: hs\r\n";

/// Reads until the server closes the connection (bounded by [`WAIT`]);
/// answers what it sent.
async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    tokio::time::timeout(WAIT, async {
        let mut buf = [0u8; 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .expect("the server closed the connection");
    received
}

#[tokio::test]
async fn stalled_connections_past_the_bound_get_503_and_the_rest_time_out() {
    let observer = Arc::new(RecordingObserver::new());
    let server = HttpServer::builder(Arc::new(hs_core::demo::building()))
        .observer(observer.clone())
        .max_connections(2)
        .header_read_timeout(Duration::from_millis(500))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let addr = server.local_addr();
    let mut stalled = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(STALLED).await.unwrap();
        stalled.push(stream);
    }
    // The two above hold both slots once accepted: a third is refused.
    // (Accepting is asynchronous, so retry until the bound is seen.)
    let refused = tokio::time::timeout(WAIT, async {
        loop {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            let answer = read_to_close(&mut stream).await;
            if answer.starts_with(b"HTTP/1.1 503") {
                return answer;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("a connection past the bound is refused");
    assert!(
        String::from_utf8_lossy(&refused).contains("retry-after: 1"),
        "{refused:?}"
    );
    // Observed as the WebSocket endpoint observes a refused upgrade.
    assert!(
        observer
            .errors()
            .contains(&("connect".to_owned(), "overloaded".to_owned())),
        "{:?}",
        observer.events()
    );
    // The header timeout closes the stalled ones without an answer.
    for stream in &mut stalled {
        read_to_close(stream).await;
    }
    // Their slots are free again.
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /api/about HTTP/1.1\r\nHost: hs\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let answer = read_to_close(&mut stream).await;
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed() {
    let server = HttpServer::builder(Arc::new(hs_core::demo::building()))
        .header_read_timeout(Duration::from_secs(600))
        .idle_timeout(Duration::from_millis(300))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
    stream
        .write_all(b"GET /api/about HTTP/1.1\r\nHost: hs\r\n\r\n")
        .await
        .unwrap();
    // The response, then (kept alive, idle) the close.
    let answer = read_to_close(&mut stream).await;
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");
    server.shutdown().await.unwrap();
}
