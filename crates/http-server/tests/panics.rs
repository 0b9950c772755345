//! An `HaystackOps` that panics is contained: the request is answered
//! `500` with an error grid and observed once, and the server goes on
//! serving the same client.

#![allow(clippy::unwrap_used)] // tests may unwrap (COMMON.md)

mod common;

use std::sync::Arc;

use common::*;
use hs_core::observe::RecordedEvent;
use hs_core::ops::*;
use hs_core::store::MemoryStore;
use hs_core::value::Grid;
use reqwest::StatusCode;
use serde_json::json;

/// The demo store, except that a `read` naming `@boom` and every `hisRead`
/// panic.
struct Panicking {
    store: Arc<MemoryStore>,
}

#[async_trait::async_trait]
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

/// POSTs a JSON grid with one row to `op`: the status and the body.
async fn post(
    server: &TestServer,
    op: &str,
    row: serde_json::Value,
) -> (StatusCode, serde_json::Value) {
    let response = server
        .client
        .post(server.url(op))
        .header("content-type", "application/json")
        .body(json_grid(row))
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, json_body(&response.text().await.unwrap()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_op_is_a_500_error_grid_observed_once() {
    let server = start(Options {
        ops: Some(Arc::new(Panicking {
            store: demo_store(),
        })),
        ..Options::default()
    })
    .await;
    let id = |id: &str| json!({"_kind": "ref", "val": id});

    // A plain read by id (decoded without a grid).
    let (status, body) = post(&server, "read", json!({"id": id("boom")})).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(error_dis(&body).as_deref(), Some("Internal server error"));
    assert_eq!(body["meta"]["errKind"], "server_error");
    let (status, body) = post(
        &server,
        "hisRead",
        json!({"id": id("demo-ahu1-dat"), "range": "today"}),
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(error_dis(&body).as_deref(), Some("Internal server error"));
    // The same client is then served.
    let (status, body) = post(&server, "read", json!({"id": id("demo-ahu1-dat")})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(rows(&body).len(), 1);

    let events = server.events_after(3);
    let error = |op: &str| RecordedEvent::Error {
        op: op.to_owned(),
        error_type: "server_error".to_owned(),
    };
    assert_eq!(events.len(), 3, "{events:?}");
    assert_eq!(events[..2], [error("read"), error("hisRead")]);
    assert!(
        matches!(&events[2], RecordedEvent::Request { op, .. } if op == "read"),
        "{events:?}"
    );
    server.stop().await;
}
