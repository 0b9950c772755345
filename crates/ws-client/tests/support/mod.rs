//! Test helpers: a tiny scripted WebSocket server and an event recorder.
#![allow(
    dead_code,
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used,
    clippy::result_large_err
)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use parking_lot::Mutex;
use serde_json::Value as Json;
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;

/// What the scripted server does in answer to one client frame.
#[derive(Debug, Clone)]
pub enum Action {
    Text(String),
    Binary(Vec<u8>),
    /// Send a close frame (1000) and stop reading.
    Close,
    /// Send a close frame with this code and reason.
    CloseWith(u16, String),
    /// Drop the TCP connection without a close frame.
    Drop,
    /// Wait before the next action.
    Sleep(Duration),
}

pub type Handler = Arc<dyn Fn(&str) -> Vec<Action> + Send + Sync>;

pub struct TestServer {
    pub url: String,
    pub addr: SocketAddr,
    pub connections: Arc<AtomicUsize>,
    /// Every text frame received, in order.
    pub received: Arc<Mutex<Vec<String>>>,
    /// Frames received per connection (by accept order).
    pub per_connection: Arc<Mutex<Vec<usize>>>,
    kill: broadcast::Sender<()>,
    push: broadcast::Sender<String>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
        let _ = self.kill.send(());
    }
}

impl TestServer {
    /// A server answering every text frame with `handler`; answers to pings
    /// are automatic. `reply_pongs: false` makes a silent peer that never
    /// reads (so never answers a ping).
    pub async fn start(handler: Handler) -> Self {
        Self::start_with(handler, true).await
    }

    pub async fn start_with(handler: Handler, reply_pongs: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        Self::serve(listener, addr, handler, reply_pongs)
    }

    /// Restart on the same address (after `kill`).
    pub async fn start_on(addr: SocketAddr, handler: Handler) -> Self {
        let mut tries = 0;
        let listener = loop {
            match TcpListener::bind(addr).await {
                Ok(l) => break l,
                Err(e) if tries < 50 => {
                    tries += 1;
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("rebind {addr}: {e}"),
            }
        };
        Self::serve(listener, addr, handler, true)
    }

    fn serve(listener: TcpListener, addr: SocketAddr, handler: Handler, reply_pongs: bool) -> Self {
        let (kill, _) = broadcast::channel(4);
        let (push, _) = broadcast::channel(64);
        let connections = Arc::new(AtomicUsize::new(0));
        let received = Arc::new(Mutex::new(Vec::new()));
        let per_connection = Arc::new(Mutex::new(Vec::new()));
        let task = {
            let per_connection = per_connection.clone();
            let kill = kill.clone();
            let push = push.clone();
            let connections = connections.clone();
            let received = received.clone();
            tokio::spawn(async move {
                loop {
                    let Ok((tcp, _)) = listener.accept().await else {
                        return;
                    };
                    let handler = handler.clone();
                    let mut kill_rx = kill.subscribe();
                    let mut push_rx = push.subscribe();
                    let connections = connections.clone();
                    let received = received.clone();
                    let per_connection = per_connection.clone();
                    tokio::spawn(async move {
                        let callback = |req: &Request, mut resp: Response| {
                            if req.headers().get("sec-websocket-protocol").is_some() {
                                resp.headers_mut().insert(
                                    "sec-websocket-protocol",
                                    HeaderValue::from_static("haystack"),
                                );
                            }
                            Ok(resp)
                        };
                        let mut config =
                            tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default();
                        config = config.max_message_size(None);
                        let Ok(mut ws) = tokio_tungstenite::accept_hdr_async_with_config(
                            tcp,
                            callback,
                            Some(config),
                        )
                        .await
                        else {
                            return;
                        };
                        let index = {
                            let mut counts = per_connection.lock();
                            counts.push(0);
                            connections.fetch_add(1, Ordering::SeqCst);
                            counts.len() - 1
                        };
                        if !reply_pongs {
                            // A silent peer: never read, so tungstenite never
                            // answers a ping either.
                            let _ = kill_rx.recv().await;
                            return;
                        }
                        loop {
                            tokio::select! {
                                _ = kill_rx.recv() => return, // drop TCP, no close frame
                                Ok(text) = push_rx.recv() => {
                                    if ws.send(Message::text(text)).await.is_err() { return; }
                                }
                                msg = ws.next() => {
                                    let text = match msg {
                                        Some(Ok(Message::Text(t))) => t.to_string(),
                                        Some(Ok(Message::Close(_))) => {
                                            // Send tungstenite's queued close reply, then
                                            // wait for the client to drop the TCP connection.
                                            let _ = ws.flush().await;
                                            while let Some(Ok(_)) = ws.next().await {}
                                            return;
                                        }
                                        Some(Ok(_)) => continue,
                                        _ => return,
                                    };
                                    received.lock().push(text.clone());
                                    if let Some(n) = per_connection.lock().get_mut(index) { *n += 1; }
                                    for action in handler(&text) {
                                        match action {
                                            Action::Text(t) => { if ws.send(Message::text(t)).await.is_err() { return; } }
                                            Action::Binary(b) => { if ws.send(Message::binary(b)).await.is_err() { return; } }
                                            Action::Close => { let _ = ws.close(None).await; }
                                            Action::CloseWith(code, reason) => {
                                                let frame = tokio_tungstenite::tungstenite::protocol::CloseFrame {
                                                    code: code.into(),
                                                    reason: reason.into(),
                                                };
                                                let _ = ws.close(Some(frame)).await;
                                            }
                                            Action::Drop => return,
                                            Action::Sleep(d) => tokio::time::sleep(d).await,
                                        }
                                    }
                                }
                            }
                        }
                    });
                }
            })
        };
        TestServer {
            url: format!("ws://{addr}/api/ws"),
            addr,
            connections,
            received,
            per_connection,
            kill,
            push,
            task,
        }
    }

    /// Drops every open connection without a close frame and stops accepting.
    pub fn kill(self) -> SocketAddr {
        let addr = self.addr;
        drop(self);
        addr
    }

    /// Sends a text frame to every open connection.
    pub fn push(&self, text: impl Into<String>) {
        let _ = self.push.send(text.into());
    }
}

pub const EMPTY_GRID: &str = r#"{"_kind":"grid","meta":{},"cols":[],"rows":[]}"#;

/// A grid with one row `{op: "<op>"}` naming the op it answers.
pub fn op_grid(op: &str) -> String {
    format!(r#"{{"_kind":"grid","meta":{{}},"cols":[{{"name":"op"}}],"rows":[{{"op":"{op}"}}]}}"#)
}

pub fn error_grid(dis: &str) -> String {
    format!(
        r#"{{"_kind":"grid","meta":{{"err":{{"_kind":"marker"}},"dis":"{dis}"}},"cols":[],"rows":[]}}"#
    )
}

/// Answers each request (and each batch item) with a grid naming its op;
/// op `fail` gets an error grid; op `slow` waits 300 ms first.
pub fn echo_handler() -> Handler {
    Arc::new(|text: &str| {
        let json: Json = match serde_json::from_str(text) {
            Ok(j) => j,
            Err(_) => return vec![],
        };
        let answer = |req: &Json| -> String {
            let op = req["op"].as_str().unwrap_or("");
            let grid = if op == "fail" {
                error_grid("it failed")
            } else {
                op_grid(op)
            };
            format!(r#"{{"grid":{grid},"id":{}}}"#, req["id"])
        };
        match &json {
            Json::Array(items) => {
                let parts: Vec<String> = items.iter().map(answer).collect();
                vec![Action::Text(format!("[{}]", parts.join(",")))]
            }
            Json::Object(_) if json.get("op").is_some() => {
                let op = json["op"].as_str().unwrap_or("");
                let mut actions = vec![];
                if op == "slow" {
                    actions.push(Action::Sleep(Duration::from_millis(300)));
                }
                if op == "never" {
                    return vec![];
                }
                actions.push(Action::Text(answer(&json)));
                actions
            }
            _ => vec![],
        }
    })
}

pub fn init_logs() {
    let _ = env_logger::builder().is_test(true).try_init();
}

#[allow(unused_imports)]
pub use hs_core::observe::{RecordedEvent, RecordingObserver};

/// Polls `check` every 10 ms for up to 5 s.
pub async fn eventually(what: &str, check: impl Fn() -> bool) {
    for _ in 0..500 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}
