//! A `ReconnectingWsClient` whose token the server refuses backs off as
//! for a failed connect: its attempt count grows from refusal to refusal
//! instead of starting again at every connection that opened. One test
//! binary with its own logger, reading the client's reconnection lines.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use hs_ws_client::{Backoff, HaystackClient, WsClient};
use log::{LevelFilter, Log, Metadata, Record};
use support::{Action, TestServer, eventually};

struct Capture(Mutex<Vec<String>>);

impl Log for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &Record<'_>) {
        if record.target() == "hs::ws::client" {
            self.0.lock().unwrap().push(record.args().to_string());
        }
    }
    fn flush(&self) {}
}

fn capture() -> &'static Capture {
    static CAPTURE: OnceLock<&'static Capture> = OnceLock::new();
    CAPTURE.get_or_init(|| {
        let capture: &'static Capture = Box::leak(Box::new(Capture(Mutex::new(Vec::new()))));
        log::set_logger(capture).unwrap();
        log::set_max_level(LevelFilter::Warn);
        capture
    })
}

/// The attempt numbers of the "reconnecting in … (attempt N)" lines.
fn attempts(lines: &[String]) -> Vec<u32> {
    lines
        .iter()
        .filter(|line| line.contains("reconnecting in"))
        .filter_map(|line| {
            let tail = line.rsplit_once("(attempt ")?.1;
            tail.trim_end_matches(')').parse().ok()
        })
        .collect()
}

#[tokio::test]
async fn a_refused_token_backs_off_from_refusal_to_refusal() {
    let capture = capture();
    // The server refuses every token as haystack-py's FastAPI endpoint does.
    let server = TestServer::start(Arc::new(|_frame: &str| {
        vec![Action::CloseWith(4003, "Authentication required".into())]
    }))
    .await;
    let client = WsClient::builder(server.url.clone())
        .token("not-a-token")
        .connect_reconnecting(Backoff::new(
            Duration::from_millis(5),
            Duration::from_millis(200),
        ))
        .await
        .unwrap();
    let connections = server.connections.clone();
    eventually("four refused connections", || {
        connections.load(std::sync::atomic::Ordering::SeqCst) >= 4
    })
    .await;
    client.close().await.unwrap();

    let seen = attempts(&capture.0.lock().unwrap());
    assert!(seen.len() >= 3, "{seen:?}");
    assert_eq!(
        seen[..3],
        [1, 2, 3],
        "each refusal is one more attempt: {seen:?}"
    );
}
