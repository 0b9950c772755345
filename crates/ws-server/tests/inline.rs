//! Cheap requests are answered on the reader task; one that does not
//! complete at once must move to its own task and hold up nobody.

mod common;

use std::sync::Arc;

use async_trait::async_trait;
use common::*;
use hs_core::ops::{
    HaystackOps, HisReadRequest, HisWriteRequest, InvokeActionRequest, NavRequest, OpError,
    PointWriteRequest, ReadRequest, WatchPollRequest, WatchSubRequest, WatchUnsubRequest,
};
use hs_core::store::MemoryStore;
use hs_core::value::Grid;
use hs_ws_server::{WsServer, WsServerState};
use serde_json::json;
use tokio::sync::Semaphore;

/// The demo store, except that every `read` waits for a permit of `gate`.
struct GatedReads {
    store: Arc<MemoryStore>,
    gate: Arc<Semaphore>,
}

#[async_trait]
impl HaystackOps for GatedReads {
    async fn read(&self, request: ReadRequest) -> Result<Grid, OpError> {
        let _permit = self.gate.acquire().await.expect("gate open");
        self.store.read(request).await
    }
    async fn nav(&self, request: NavRequest) -> Result<Grid, OpError> {
        self.store.nav(request).await
    }
    async fn his_read(&self, request: HisReadRequest) -> Result<Grid, OpError> {
        self.store.his_read(request).await
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

#[tokio::test]
async fn a_pending_read_by_id_does_not_hold_up_later_requests() {
    init_logs();
    let gate = Arc::new(Semaphore::new(0));
    let ops: Arc<dyn HaystackOps> = Arc::new(GatedReads {
        store: demo_store(),
        gate: gate.clone(),
    });
    let server = WsServer::bind("127.0.0.1:0", WsServerState::builder(ops).build())
        .await
        .expect("bind");
    let addr = server.local_addr();
    let stop = server.shutdown_handle();
    let serving = tokio::spawn(server.serve());
    let mut client = Client::connect(addr).await;

    // A read by id is cheap enough to start on the reader task; this one
    // waits for the gate, so it must continue on a task of its own.
    client
        .send_json(&json!({"id": "slow", "op": "read", "grid": read_ids(&["demo-ahu1-dat"])}))
        .await;
    client
        .send_json(&json!({"id": "fast", "op": "about"}))
        .await;
    let first = client.recv_json().await;
    assert_eq!(first["id"], "fast");
    assert_eq!(first["grid"]["rows"][0]["productName"], "hs");

    gate.add_permits(1);
    let second = client.recv_json().await;
    assert_eq!(second["id"], "slow");
    assert_eq!(row_ids(&second), ["demo-ahu1-dat"]);

    // A filter naming its id is a lookup too: started inline, moved out.
    // (The read above gave its permit back: hold it meanwhile.)
    let held = gate.clone().acquire_owned().await.expect("gate open");
    client
        .send_json(
            &json!({"id": "slow-filter", "op": "read", "grid": read_filter("id==@demo-ahu1-dat")}),
        )
        .await;
    client
        .send_json(&json!({"id": "fast", "op": "about"}))
        .await;
    assert_eq!(client.recv_json().await["id"], "fast");
    drop(held);
    let third = client.recv_json().await;
    assert_eq!(third["id"], "slow-filter");
    assert_eq!(row_ids(&third), ["demo-ahu1-dat"]);

    client.close().await;
    stop.shutdown();
    tokio::time::timeout(WAIT, serving)
        .await
        .expect("server stops in time")
        .expect("serve task")
        .expect("serve result");
}
