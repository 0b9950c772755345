//! A fixed-count driver for profiling the request path under callgrind or
//! `perf record`: one connection sends `HS_PROFILE_REQUESTS` single-entity
//! `read` requests (`HS_PROFILE_IN_FLIGHT` outstanding) to the server chosen
//! by `HS_PROFILE_TARGET` (`noop`, `composite` or `echo`), then exits.
//!
//! ```sh
//! cargo build --release -p hs-load --example ws_profile
//! HS_PROFILE_TARGET=noop HS_PROFILE_REQUESTS=20000 \
//!   valgrind --tool=callgrind target/release/examples/ws_profile
//! ```
//!
//! Run it twice with different counts and divide the difference in
//! instructions by the difference in requests: that is the cost of one round
//! trip (client and server, user space), independent of machine load.

use std::collections::VecDeque;
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use hs_core::observe::{
    CompositeObserver, LoggingObserver, MetricsObserver, NoopObserver, StatsObserver,
};
use hs_core::ops::HaystackOps;
use hs_core::store::MemoryStore;
use hs_load::EchoServer;
use hs_ws_server::{WsServer, WsServerState};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

const DEMO_ENTITIES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../crates/ws-server/tests/fixtures/demo-entities.json"
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

async fn start_server(observer: Arc<dyn MetricsObserver>) -> String {
    let store = MemoryStore::new();
    store.load_json_file(DEMO_ENTITIES).expect("demo entities");
    let ops: Arc<dyn HaystackOps> = Arc::new(store);
    let state = WsServerState::builder(ops).observer(observer).build();
    let server = WsServer::bind("127.0.0.1:0", state).await.expect("bind");
    let url = format!("ws://{}/api/ws", server.local_addr());
    tokio::spawn(server.serve());
    url
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(drive());
}

async fn drive() {
    let target = std::env::var("HS_PROFILE_TARGET").unwrap_or_else(|_| "noop".into());
    let requests = env_number("HS_PROFILE_REQUESTS", 10_000);
    let in_flight = env_number("HS_PROFILE_IN_FLIGHT", 1).max(1);
    let mut _echo = None;
    let url = match target.as_str() {
        "noop" => start_server(Arc::new(NoopObserver)).await,
        "composite" => {
            start_server(Arc::new(
                CompositeObserver::builder()
                    .with(LoggingObserver::new())
                    .with(StatsObserver::new())
                    .build(),
            ))
            .await
        }
        "echo" => {
            let echo = EchoServer::start("x".repeat(689)).await.expect("echo");
            let url = format!("ws://{}/api/ws", echo.local_addr());
            _echo = Some(echo);
            url
        }
        other => panic!("HS_PROFILE_TARGET must be noop, composite or echo, not {other}"),
    };
    let mut upgrade = url.as_str().into_client_request().expect("url");
    upgrade.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("haystack"),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async_with_config(
        upgrade,
        Some(hs_load::transport_config()),
        true,
    )
    .await
    .expect("connect");
    let mut outstanding = VecDeque::new();
    let mut sent = 0;
    let mut bytes = 0;
    while sent < in_flight.min(requests) {
        socket
            .feed(Message::text(read_request(sent)))
            .await
            .expect("send");
        outstanding.push_back(sent);
        sent += 1;
    }
    socket.flush().await.expect("flush");
    while outstanding.pop_front().is_some() {
        loop {
            match socket.next().await {
                Some(Ok(Message::Text(text))) => {
                    bytes += text.len();
                    break;
                }
                // Heartbeat pings (answered by tungstenite) under a slow profiler.
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        if sent < requests {
            socket
                .send(Message::text(read_request(sent)))
                .await
                .expect("send");
            outstanding.push_back(sent);
            sent += 1;
        }
    }
    let _ = socket.close(None).await;
    println!("{target}: {requests} requests, {bytes} response bytes");
}
