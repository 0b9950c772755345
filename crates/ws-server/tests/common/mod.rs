//! Test harness: a server on 127.0.0.1:0 over the demo store with a
//! `RecordingObserver`, and a tokio-tungstenite client.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hs_core::observe::{RecordedEvent, RecordingObserver};
use hs_core::ops::HaystackOps;
use hs_core::store::MemoryStore;
use hs_ws_server::{ShutdownHandle, WsServer, WsServerState, WsServerStateBuilder};
use serde_json::{Value as Json, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Upper bound for anything a test waits for.
pub const WAIT: Duration = Duration::from_secs(5);

pub const DEMO_ENTITIES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/demo-entities.json"
);

pub fn init_logs() {
    let _ = env_logger::builder().is_test(true).try_init();
}

/// The demo store of the captures.
pub fn demo_store() -> Arc<MemoryStore> {
    let store = MemoryStore::new();
    store
        .load_json_file(DEMO_ENTITIES)
        .expect("demo entities load");
    Arc::new(store)
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub recorder: Arc<RecordingObserver>,
    pub store: Arc<MemoryStore>,
    pub state: WsServerState,
    handle: ShutdownHandle,
    join: tokio::task::JoinHandle<Result<(), hs_ws_server::WsServerError>>,
}

/// Starts a server over the demo store; `configure` adds config and auth.
pub async fn start(
    configure: impl FnOnce(WsServerStateBuilder) -> WsServerStateBuilder,
) -> TestServer {
    start_with_store(demo_store(), configure).await
}

/// Starts a server over `store`; `configure` adds config and auth.
pub async fn start_with_store(
    store: Arc<MemoryStore>,
    configure: impl FnOnce(WsServerStateBuilder) -> WsServerStateBuilder,
) -> TestServer {
    init_logs();
    let recorder = Arc::new(RecordingObserver::new());
    let ops: Arc<dyn HaystackOps> = store.clone();
    let state = configure(WsServerState::builder(ops).observer(recorder.clone())).build();
    let server = WsServer::bind("127.0.0.1:0", state.clone())
        .await
        .expect("bind");
    let addr = server.local_addr();
    let handle = server.shutdown_handle();
    let join = tokio::spawn(server.serve());
    TestServer {
        addr,
        recorder,
        store,
        state,
        handle,
        join,
    }
}

impl TestServer {
    pub fn url(&self) -> String {
        format!("ws://{}/api/ws", self.addr)
    }

    pub async fn client(&self) -> Client {
        Client::connect(self.addr).await
    }

    /// Graceful shutdown; waits (bounded) for `serve` to return.
    pub async fn stop(self) {
        self.handle.shutdown();
        tokio::time::timeout(WAIT, self.join)
            .await
            .expect("server stops in time")
            .expect("serve task")
            .expect("serve result");
    }

    /// Waits (bounded) until `predicate` holds for the recorded events.
    pub async fn wait_for(
        &self,
        predicate: impl Fn(&[RecordedEvent]) -> bool + Send + 'static,
    ) -> bool {
        let recorder = self.recorder.clone();
        tokio::task::spawn_blocking(move || recorder.wait_for(predicate, WAIT))
            .await
            .expect("wait")
    }

    /// Waits until the server has seen `n` disconnects.
    pub async fn wait_disconnects(&self, n: usize) -> bool {
        self.wait_for(move |events| {
            events
                .iter()
                .filter(|e| matches!(e, RecordedEvent::WsDisconnect { .. }))
                .count()
                >= n
        })
        .await
    }
}

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub struct Client {
    pub ws: Socket,
    pub local: SocketAddr,
    pub protocol: Option<String>,
}

impl Client {
    /// Connects offering the `haystack` subprotocol.
    pub async fn connect(addr: SocketAddr) -> Client {
        Client::try_connect(addr, Some("haystack"))
            .await
            .expect("connect")
    }

    pub async fn try_connect(
        addr: SocketAddr,
        protocol: Option<&str>,
    ) -> Result<Client, tungstenite::Error> {
        let mut request = format!("ws://{addr}/api/ws").into_client_request()?;
        if let Some(protocol) = protocol {
            request.headers_mut().insert(
                "Sec-WebSocket-Protocol",
                HeaderValue::from_str(protocol).expect("header"),
            );
        }
        let (ws, response) = tokio_tungstenite::connect_async(request).await?;
        let local = match ws.get_ref() {
            MaybeTlsStream::Plain(tcp) => tcp.local_addr().expect("local addr"),
            _ => unreachable!("plain TCP"),
        };
        let protocol = response
            .headers()
            .get("Sec-WebSocket-Protocol")
            .map(|value| value.to_str().expect("ascii").to_owned());
        Ok(Client {
            ws,
            local,
            protocol,
        })
    }

    pub async fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.expect("send");
    }

    pub async fn send_json(&mut self, value: &Json) {
        self.send_text(&value.to_string()).await;
    }

    /// The next data or close frame (pings and pongs skipped), within WAIT.
    pub async fn recv(&mut self) -> Option<Message> {
        let read = async {
            loop {
                match self.ws.next().await {
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    Some(Ok(message)) => return Some(message),
                    Some(Err(_)) | None => return None,
                }
            }
        };
        tokio::time::timeout(WAIT, read)
            .await
            .expect("a frame within the wait")
    }

    /// The next text frame as text.
    pub async fn recv_text(&mut self) -> String {
        match self.recv().await {
            Some(Message::Text(text)) => text.as_str().to_owned(),
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    pub async fn recv_json(&mut self) -> Json {
        serde_json::from_str(&self.recv_text().await).expect("JSON")
    }

    /// Sends one envelope and returns the response envelope.
    pub async fn request(&mut self, id: &str, op: &str, grid: Json) -> Json {
        self.send_json(&json!({"id": id, "op": op, "grid": grid}))
            .await;
        self.recv_json().await
    }

    /// Reads until the close frame (or the end of the stream), within WAIT.
    pub async fn expect_close(&mut self) -> Option<CloseFrame> {
        let read = async {
            loop {
                match self.ws.next().await {
                    Some(Ok(Message::Close(frame))) => return frame,
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => return None,
                }
            }
        };
        tokio::time::timeout(WAIT, read)
            .await
            .expect("closed within the wait")
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
        let _ = tokio::time::timeout(WAIT, async {
            while let Some(Ok(_)) = self.ws.next().await {}
        })
        .await;
    }
}

/// A JSON v4 grid.
pub fn grid(meta: Json, cols: &[&str], rows: Vec<Json>) -> Json {
    let cols: Vec<Json> = cols.iter().map(|name| json!({"name": name})).collect();
    json!({"_kind": "grid", "meta": meta, "cols": cols, "rows": rows})
}

pub fn empty_grid() -> Json {
    grid(json!({}), &[], vec![])
}

pub fn reference(id: &str) -> Json {
    json!({"_kind": "ref", "val": id})
}

/// A read-by-ids grid.
pub fn read_ids(ids: &[&str]) -> Json {
    grid(
        json!({}),
        &["id"],
        ids.iter().map(|id| json!({"id": reference(id)})).collect(),
    )
}

/// A read-by-filter grid.
pub fn read_filter(filter: &str) -> Json {
    grid(json!({}), &["filter"], vec![json!({"filter": filter})])
}

/// The `dis` of an error grid, if the grid is one.
pub fn error_dis(response: &Json) -> Option<String> {
    let meta = &response["grid"]["meta"];
    meta.get("err")?;
    Some(meta["dis"].as_str().unwrap_or_default().to_owned())
}

/// The row ids of a response grid, in order.
pub fn row_ids(response: &Json) -> Vec<String> {
    response["grid"]["rows"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .filter_map(|row| row["id"]["val"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Every event recorded, for messages.
pub fn events(recorder: &RecordingObserver) -> Vec<RecordedEvent> {
    recorder.events()
}

pub fn errors_of(recorder: &RecordingObserver, op: &str) -> Vec<String> {
    recorder
        .errors()
        .into_iter()
        .filter(|(o, _)| o == op)
        .map(|(_, kind)| kind)
        .collect()
}
