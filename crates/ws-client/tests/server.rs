#![allow(clippy::unwrap_used, clippy::result_large_err)]
//! The client against hs-ws-server on real sockets, observed with
//! `RecordingObserver`: every op, 1 000 requests in flight, timeouts, SCRAM
//! and token auth, and a server shut down and restarted under a
//! reconnecting client whose watch keeps receiving pushes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use hs_core::auth::{AuthFailure, Role, ScramServer, TokenStore, UserStore};
use hs_core::observe::{RecordedEvent, RecordingObserver};
use hs_core::ops::{HaystackOps, HisItem};
use hs_core::store::MemoryStore;
use hs_core::value::{DateTime, Dict, Number, Ref, Value, get_unit};
use hs_ws_client::{Backoff, HaystackClient, WsClient, WsClientError, requests};
use hs_ws_server::{ShutdownHandle, WsServer, WsServerState, WsServerStateBuilder};

struct Server {
    url: String,
    addr: SocketAddr,
    store: Arc<MemoryStore>,
    handle: ShutdownHandle,
    join: tokio::task::JoinHandle<Result<(), hs_ws_server::WsServerError>>,
}

impl Server {
    async fn stop(self) -> SocketAddr {
        self.handle.shutdown();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.join).await;
        self.addr
    }
}

async fn start_on(
    addr: &str,
    configure: impl FnOnce(WsServerStateBuilder) -> WsServerStateBuilder,
) -> Server {
    let _ = env_logger::builder().is_test(true).try_init();
    let store = Arc::new(hs_core::demo::building());
    let ops: Arc<dyn HaystackOps> = store.clone();
    let state = configure(WsServerState::builder(ops)).build();
    // A restart may race the old socket's release: retry the bind briefly.
    let mut tries = 0;
    let server = loop {
        match WsServer::bind(addr.to_owned(), state.clone()).await {
            Ok(server) => break server,
            Err(e) if tries < 50 => {
                tries += 1;
                let _ = e;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("bind {addr}: {e}"),
        }
    };
    let addr = server.local_addr();
    let handle = server.shutdown_handle();
    let join = tokio::spawn(server.serve());
    Server {
        url: format!("ws://{addr}/api/ws"),
        addr,
        store,
        handle,
        join,
    }
}

async fn start() -> Server {
    start_on("127.0.0.1:0", |b| b).await
}

fn r(id: &str) -> Ref {
    Ref::make(id, None)
}

fn one_event_per_request(rec: &RecordingObserver, requests: usize) {
    assert_eq!(
        rec.requests().len() + rec.errors().len(),
        requests,
        "{:?}",
        rec.events()
    );
}

#[tokio::test]
async fn every_op_against_hs_ws_server() {
    let server = start().await;
    let rec = Arc::new(RecordingObserver::new());
    let c = WsClient::builder(&server.url)
        .observer(rec.clone())
        .connect()
        .await
        .unwrap();

    assert_eq!(c.about().await.unwrap().rows.len(), 1);
    assert!(!c.ops().await.unwrap().rows.is_empty());
    assert!(!c.formats().await.unwrap().rows.is_empty());
    let sites = c.read_filter("site", None).await.unwrap();
    assert_eq!(sites.rows.len(), 1);
    let points = c.read_filter("point and his", Some(3)).await.unwrap();
    assert_eq!(points.rows.len(), 3);
    let by_id = c.read_ids(&[r("demo-site"), r("demo-ahu1")]).await.unwrap();
    assert_eq!(by_id.rows.len(), 2);
    assert!(!c.nav(None).await.unwrap().rows.is_empty());
    assert!(!c.nav(Some("demo-site")).await.unwrap().rows.is_empty());
    let his = c.his_read(&r("demo-ahu1-dat"), "yesterday").await.unwrap();
    assert!(!his.rows.is_empty());
    let ts = DateTime::parse_from_rfc3339_with_timezone("2024-01-01T00:00:00-05:00", "New_York")
        .unwrap();
    let f = get_unit("°F").unwrap();
    c.his_write(
        &r("demo-ahu1-dat"),
        &[HisItem {
            ts,
            val: Value::Number(Number::make_with_unit(55.0, f)),
        }],
    )
    .await
    .unwrap();
    let array = c.point_write_array(&r("demo-ahu1-sp")).await;
    let write = c
        .point_write(
            &r("demo-ahu1-sp"),
            8,
            Some(&Value::Number(Number::make_with_unit(70.0, f))),
            "test",
            None,
        )
        .await;
    // The demo may or may not mark the point writable; either way the
    // answer is a grid or an error grid, never a transport error.
    for result in [&array, &write] {
        assert!(
            result.is_ok() || result.as_ref().unwrap_err().is_error_grid(),
            "{result:?}"
        );
    }
    let err = c
        .point_write(
            &r("demo-ahu1-sp"),
            18,
            Some(&Value::make_number(1.0)),
            "test",
            None,
        )
        .await
        .unwrap_err()
        .downcast::<WsClientError>()
        .unwrap();
    assert!(err.is_error_grid(), "{err}");
    let sub = c
        .watch_sub(
            None,
            "test",
            &[r("demo-ahu1-dat")],
            Some(Duration::from_secs(60)),
        )
        .await
        .unwrap();
    let watch = requests::watch_id(&sub).unwrap();
    c.watch_poll(&watch, true).await.unwrap();
    c.watch_unsub(&watch, &[], true).await.unwrap();
    let action = c
        .invoke_action(&r("demo-ahu1"), "noSuchAction", &Dict::new())
        .await;
    assert!(
        action
            .unwrap_err()
            .downcast::<WsClientError>()
            .unwrap()
            .is_error_grid()
    );
    let unknown = c
        .call("fooBar", requests::empty())
        .await
        .unwrap_err()
        .downcast::<WsClientError>()
        .unwrap();
    assert!(unknown.is_error_grid());
    c.close_session().await.unwrap();
    let results = c
        .batch(vec![
            ("about".into(), requests::empty()),
            ("fooBar".into(), requests::empty()),
            ("read".into(), requests::read_filter("equip", None)),
        ])
        .await;
    assert!(results[0].is_ok() && results[1].is_err() && results[2].is_ok());
    c.close().await.unwrap();

    one_event_per_request(&rec, 22);
    let (connects, disconnects) = (
        rec.count(|e| matches!(e, RecordedEvent::WsConnect { .. })),
        rec.count(|e| matches!(e, RecordedEvent::WsDisconnect { .. })),
    );
    assert_eq!((connects, disconnects), (1, 1));
    // 19 single requests + 1 batch frame each way.
    assert_eq!(rec.messages_sent().len(), 20);
    assert_eq!(rec.messages_recv().len(), 20);
    assert!(
        rec.messages_recv()
            .iter()
            .all(|(op, n)| op != "invalid" && *n > 0)
    );
    server.stop().await;
}

#[tokio::test]
async fn a_thousand_requests_in_flight_on_one_connection() {
    let server = start().await;
    let rec = Arc::new(RecordingObserver::new());
    let c = WsClient::builder(&server.url)
        .observer(rec.clone())
        .connect()
        .await
        .unwrap();
    let ids: Vec<String> = c
        .read_filter("point", None)
        .await
        .unwrap()
        .rows
        .iter()
        .filter_map(|row| match row.get("id") {
            Some(Value::Ref(id)) => Some(id.value().to_owned()),
            _ => None,
        })
        .collect();
    assert!(ids.len() > 10);
    let mut tasks = Vec::new();
    for i in 0..1000 {
        let c = c.clone();
        let id = ids[i % ids.len()].clone();
        tasks.push(tokio::spawn(async move {
            let grid = c.read_filter(&format!("id == @{id}"), None).await.unwrap();
            match grid.rows[0].get("id") {
                Some(Value::Ref(got)) => assert_eq!(got.value(), id),
                other => panic!("{other:?}"),
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    one_event_per_request(&rec, 1001);
    assert!(rec.errors().is_empty());
    c.close().await.unwrap();
    server.stop().await;
}

// The slow action sleeps on the store's blocking pool; the client's timer
// fires meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_op_times_out_once_and_its_late_answer_is_ignored() {
    let server = start().await;
    server.store.register_action("slow", |_, _| {
        std::thread::sleep(Duration::from_millis(500));
        Ok(hs_core::codec::empty_grid())
    });
    let rec = Arc::new(RecordingObserver::new());
    let c = WsClient::builder(&server.url)
        .observer(rec.clone())
        .connect()
        .await
        .unwrap();
    let grid = requests::invoke_action(&r("demo-ahu1"), "slow", &Dict::new());
    let err = c
        .call_with_timeout("invokeAction", grid, Some(Duration::from_millis(100)))
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert_eq!(
        rec.errors(),
        vec![("invokeAction".to_owned(), "timeout".to_owned())]
    );
    // The late answer matches nothing: counted as invalid, no second event.
    for _ in 0..500 {
        if rec.messages_recv().iter().any(|(op, _)| op == "invalid") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(rec.messages_recv().iter().any(|(op, _)| op == "invalid"));
    c.about().await.unwrap();
    one_event_per_request(&rec, 2);
    c.close().await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn scram_and_token_auth_against_the_server() {
    let users = UserStore::new().with_iterations(4096);
    users.add_user("demo", "demo-pass", Role::Operator);
    let scram = ScramServer::new(users, TokenStore::new());
    let server = start_on("127.0.0.1:0", |b| b.auth(scram)).await;
    let rec = Arc::new(RecordingObserver::new());
    let c = WsClient::builder(&server.url)
        .credentials("demo", "demo-pass")
        .observer(rec.clone())
        .connect()
        .await
        .unwrap();
    c.about().await.unwrap();
    assert_eq!(
        rec.messages_sent()
            .iter()
            .filter(|(op, _)| op == "auth")
            .count(),
        3
    );
    assert_eq!(
        rec.messages_recv()
            .iter()
            .filter(|(op, _)| op == "auth")
            .count(),
        3
    );
    c.close().await.unwrap();

    let rec = Arc::new(RecordingObserver::new());
    let err = WsClient::builder(&server.url)
        .credentials("demo", "wrong")
        .observer(rec.clone())
        .connect()
        .await
        .unwrap_err();
    assert!(
        matches!(
            err.auth_failure(),
            Some(AuthFailure::CredentialsRejected { username }) if username == "demo"
        ),
        "{err}"
    );
    assert_eq!(
        rec.count(|e| matches!(e, RecordedEvent::WsDisconnect { .. })),
        1
    );
    server.stop().await;

    let server = start_on("127.0.0.1:0", |b| b.static_token("demo-static-token")).await;
    let c = WsClient::builder(&server.url)
        .token("demo-static-token")
        .connect()
        .await
        .unwrap();
    c.about().await.unwrap();
    let bad = WsClient::builder(&server.url)
        .token("wrong")
        .connect()
        .await
        .unwrap();
    let refused = bad
        .about()
        .await
        .unwrap_err()
        .downcast::<WsClientError>()
        .unwrap();
    assert_eq!(
        refused.auth_failure(),
        Some(&AuthFailure::TokenRejected),
        "{refused}"
    );
    server.stop().await;
}

#[tokio::test]
async fn server_restart_under_a_reconnecting_client() {
    let server = start().await;
    let rec = Arc::new(RecordingObserver::new());
    let c = WsClient::builder(&server.url)
        .observer(rec.clone())
        .connect_reconnecting(Backoff::new(
            Duration::from_millis(20),
            Duration::from_millis(200),
        ))
        .await
        .unwrap();
    let mut pushes = c.watch_events();
    let sub = c
        .watch_sub(None, "restart", &[r("demo-ahu1-dat")], None)
        .await
        .unwrap();
    let watch = requests::watch_id(&sub).unwrap();

    // A push before the restart.
    server
        .store
        .set_tag("demo-ahu1-dat", "note", Value::make_str("one"))
        .unwrap();
    let push = tokio::time::timeout(Duration::from_secs(5), pushes.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(push.watch_id, watch);

    // Many requests in flight while the server goes away: each ends in
    // exactly one result and one event.
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            c.his_read(&r("demo-ahu1-dat"), "yesterday").await
        }));
    }
    let addr = server.stop().await;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => {}
            Err(e) => assert!(
                e.downcast::<WsClientError>()
                    .unwrap()
                    .is_connection_closed()
            ),
        }
    }
    one_event_per_request(&rec, 201);
    assert_eq!(
        rec.count(|e| matches!(e, RecordedEvent::WsDisconnect { .. })),
        1
    );

    // The server comes back on the same port with a fresh store: the
    // client reconnects, re-subscribes, and the user's watch id keeps working.
    let server = start_on(&addr.to_string(), |b| b).await;
    c.about().await.unwrap();
    assert!(c.is_connected());
    c.watch_poll(&watch, true).await.unwrap();
    server
        .store
        .set_tag("demo-ahu1-dat", "note", Value::make_str("two"))
        .unwrap();
    let push = tokio::time::timeout(Duration::from_secs(5), pushes.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(push.watch_id, watch);
    c.close().await.unwrap();
    assert_eq!(
        rec.count(|e| matches!(e, RecordedEvent::WsConnect { .. })),
        2
    );
    assert_eq!(
        rec.count(|e| matches!(e, RecordedEvent::WsDisconnect { .. })),
        2
    );
    server.stop().await;
}
