//! The WebSocket client tour of `docs/ws-client.md`: a reconnecting client
//! with an observer, reads, a batch, a watch with its pushes, and a pool.
//! Start a server first (`cargo run -p hs-cli --bin hs -- serve`), then:
//! `cargo run -p examples --example ws_client [URL]`. With `--users` on the
//! server, set `HS_USER` and `HS_PASSWORD`.
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use hs_core::observe::StatsObserver;
use hs_core::value::{Number, Ref, Value};
use hs_ws_client::{Backoff, HaystackClient, WsClient};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "ws://127.0.0.1:8080".into());
    let stats = Arc::new(StatsObserver::new());
    let builder = || {
        let builder = WsClient::builder(&url)
            .observer(stats.clone())
            .request_timeout(Duration::from_secs(10));
        match (std::env::var("HS_USER"), std::env::var("HS_PASSWORD")) {
            (Ok(user), Ok(password)) => builder.credentials(user, password),
            _ => builder,
        }
    };

    // One connection that comes back by itself, authenticates again and
    // re-subscribes its watches.
    let backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
    let client = builder().connect_reconnecting(backoff).await?;

    let about = client.about().await?;
    println!("connected to {url}: {} rows of about", about.rows.len());
    let points = client.read_filter("point and temp", Some(5)).await?;
    println!("point and temp: {} rows", points.rows.len());

    // Several requests in one frame; one result per item.
    let empty = hs_core::ops::build::empty();
    let results = client
        .batch(vec![
            ("about".into(), empty.clone()),
            ("nope".into(), empty),
        ])
        .await;
    for result in &results {
        match result {
            Ok(grid) => println!("batch item: {} rows", grid.rows.len()),
            Err(error) => println!("batch item failed: {} ({error})", error.as_str()),
        }
    }

    // A watch: pushes arrive on `watch_events()` as the point changes.
    let point = Ref::from("demo-ahu1-dat-sp");
    let mut pushes = client.watch_events();
    let sub = client
        .watch_sub(None, "example", std::slice::from_ref(&point), None)
        .await?;
    let watch_id = sub
        .meta
        .as_ref()
        .and_then(|meta| meta.get("watchId"))
        .and_then(|id| match id {
            Value::Str(id) => Some(id.value().to_owned()),
            _ => None,
        })
        .ok_or("watchSub answered no watchId")?;
    let value = Value::from(Number::make_with_unit(71.5, "°F".into()));
    client
        .point_write(&point, 8, Some(&value), "ws_client example", None)
        .await?;
    match tokio::time::timeout(Duration::from_secs(5), pushes.next()).await {
        Ok(Some(push)) => println!("push for {}: {} rows", push.watch_id, push.grid.rows.len()),
        _ => println!("no push within 5 s"),
    }
    client.watch_unsub(&watch_id, &[], true).await?;

    // A pool: four connections behind one handle.
    let pool = builder().connect_pool(4).await?;
    let reads = (0..8).map(|_| pool.read_filter("site", None));
    let sites = futures_util::future::try_join_all(reads).await?;
    println!(
        "pool: {} reads of {} sites",
        sites.len(),
        sites[0].rows.len()
    );
    pool.close().await?;
    client.close().await?;

    println!("{}", stats.snapshot());
    Ok(())
}
