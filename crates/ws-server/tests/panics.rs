//! An `HaystackOps` that panics is contained: the request is answered with
//! an error grid and observed once, whether it ran on the reader task or on
//! its own, and the connection goes on serving.

mod common;

use std::sync::Arc;

use async_trait::async_trait;
use common::*;
use hs_core::observe::{RecordedEvent, RecordingObserver};
use hs_core::ops::{
    HaystackOps, HisReadRequest, HisWriteRequest, InvokeActionRequest, NavRequest, OpError,
    PointWriteRequest, ReadRequest, WatchPollRequest, WatchSubRequest, WatchUnsubRequest,
};
use hs_core::store::MemoryStore;
use hs_core::value::Grid;
use hs_ws_server::{WsServer, WsServerState};
use serde_json::json;

/// The demo store, except that a `read` naming `@boom` and every `hisRead`
/// panic.
struct Panicking {
    store: Arc<MemoryStore>,
}

#[async_trait]
impl HaystackOps for Panicking {
    async fn read(&self, request: ReadRequest) -> Result<Grid, OpError> {
        if let ReadRequest::Ids(ids) = &request {
            assert!(ids.iter().all(|id| id.value() != "boom"), "read exploded");
        }
        self.store.read(request).await
    }
    async fn nav(&self, request: NavRequest) -> Result<Grid, OpError> {
        self.store.nav(request).await
    }
    async fn his_read(&self, _request: HisReadRequest) -> Result<Grid, OpError> {
        panic!("hisRead exploded");
    }
    async fn his_write(&self, request: HisWriteRequest) -> Result<Grid, OpError> {
        self.store.his_write(request).await
    }
    async fn point_write(&self, request: PointWriteRequest) -> Result<Grid, OpError> {
        self.store.point_write(request).await
    }
    async fn watch_sub(&self, request: WatchSubRequest) -> Result<Grid, OpError> {
        self.store.watch_sub(request).await
    }
    async fn watch_unsub(&self, request: WatchUnsubRequest) -> Result<Grid, OpError> {
        self.store.watch_unsub(request).await
    }
    async fn watch_poll(&self, request: WatchPollRequest) -> Result<Grid, OpError> {
        self.store.watch_poll(request).await
    }
    async fn invoke_action(&self, request: InvokeActionRequest) -> Result<Grid, OpError> {
        self.store.invoke_action(request).await
    }
}

fn error_kind(response: &serde_json::Value) -> &str {
    response["grid"]["meta"]["errKind"]
        .as_str()
        .unwrap_or_default()
}

/// The `on_request` / `on_error` events of `op`.
fn outcomes(recorder: &RecordingObserver, op: &str) -> Vec<RecordedEvent> {
    recorder
        .events()
        .into_iter()
        .filter(|event| match event {
            RecordedEvent::Request { op: o, .. } | RecordedEvent::Error { op: o, .. } => o == op,
            _ => false,
        })
        .collect()
}

#[tokio::test]
async fn a_panicking_op_is_answered_and_observed_once_inline_and_spawned() {
    init_logs();
    let recorder = Arc::new(RecordingObserver::new());
    let ops: Arc<dyn HaystackOps> = Arc::new(Panicking {
        store: demo_store(),
    });
    let state = WsServerState::builder(ops)
        .observer(recorder.clone())
        .build();
    let server = WsServer::bind("127.0.0.1:0", state).await.expect("bind");
    let addr = server.local_addr();
    let stop = server.shutdown_handle();
    let serving = tokio::spawn(server.serve());
    let mut client = Client::connect(addr).await;

    // A read of one id runs on the reader task.
    let inline = client.request("inline", "read", read_ids(&["boom"])).await;
    assert_eq!(error_dis(&inline).as_deref(), Some("Internal server error"));
    assert_eq!(error_kind(&inline), "server_error");
    // A hisRead runs on a task of its own.
    let range = grid(
        json!({}),
        &["id", "range"],
        vec![json!({"id": reference("demo-ahu1-dat"), "range": "today"})],
    );
    let spawned = client.request("spawned", "hisRead", range).await;
    assert_eq!(
        error_dis(&spawned).as_deref(),
        Some("Internal server error")
    );
    assert_eq!(error_kind(&spawned), "server_error");
    // The same connection then serves, inline and not.
    let read = client
        .request("after", "read", read_ids(&["demo-ahu1-dat"]))
        .await;
    assert_eq!(row_ids(&read), ["demo-ahu1-dat"]);
    let nav = client.request("nav", "nav", empty_grid()).await;
    assert!(error_dis(&nav).is_none(), "{nav}");

    let observed = recorder.clone();
    let settled = tokio::task::spawn_blocking(move || {
        observed.wait_for(
            |events| {
                events
                    .iter()
                    .filter(|e| matches!(e, RecordedEvent::Request { op, .. } if op == "nav"))
                    .count()
                    == 1
            },
            WAIT,
        )
    })
    .await
    .expect("wait");
    assert!(settled, "{:?}", recorder.events());
    let error = |op: &str| RecordedEvent::Error {
        op: op.to_owned(),
        error_type: "server_error".to_owned(),
    };
    let read = outcomes(&recorder, "read");
    assert_eq!(read.len(), 2, "{read:?}");
    assert_eq!(read[0], error("read"));
    assert!(
        matches!(&read[1], RecordedEvent::Request { .. }),
        "{read:?}"
    );
    assert_eq!(outcomes(&recorder, "hisRead"), [error("hisRead")]);
    assert!(
        !recorder
            .events()
            .iter()
            .any(|e| matches!(e, RecordedEvent::WsDisconnect { .. })),
        "the connection stayed open"
    );

    client.close().await;
    stop.shutdown();
    tokio::time::timeout(WAIT, serving)
        .await
        .expect("server stops in time")
        .expect("serve task")
        .expect("serve result");
}
