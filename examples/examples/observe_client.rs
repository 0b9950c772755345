//! Observe your own client: a custom `MetricsObserver` attached to a real
//! `HttpClient`. Start a server first (`cargo run -p hs-cli --bin hs -- serve`),
//! then: `cargo run -p examples --example observe_client [URL]`.
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use hs_core::observe::MetricsObserver;
use hs_http_client::{HaystackClient, HttpClient};

/// Counts requests and errors, and remembers the slowest request.
#[derive(Debug, Default)]
struct SlowestRequest {
    requests: AtomicU64,
    errors: AtomicU64,
    slowest_micros: AtomicU64,
}

impl MetricsObserver for SlowestRequest {
    fn on_request(&self, op: &str, duration: Duration) {
        self.requests.fetch_add(1, Relaxed);
        let micros = u64::try_from(duration.as_micros()).unwrap_or(u64::MAX);
        if self.slowest_micros.fetch_max(micros, Relaxed) < micros {
            println!("new slowest request: {op} in {duration:?}");
        }
    }

    fn on_error(&self, op: &str, error_type: &str) {
        self.errors.fetch_add(1, Relaxed);
        println!("{op} failed: {error_type}");
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "http://127.0.0.1:8080/api".into());
    let observer = Arc::new(SlowestRequest::default());
    let client = HttpClient::builder(url)
        .observer(observer.clone())
        .build()?;
    for filter in ["site", "ahu", "point and temp", "point and ("] {
        match client.read_filter(filter, None).await {
            Ok(grid) => println!("{filter}: {} rows", grid.rows.len()),
            Err(error) => println!("{filter}: {error}"),
        }
    }
    let (n, e) = (
        observer.requests.load(Relaxed),
        observer.errors.load(Relaxed),
    );
    println!(
        "{n} requests, {e} errors, slowest {} µs",
        observer.slowest_micros.load(Relaxed)
    );
    Ok(())
}
