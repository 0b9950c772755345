#![allow(clippy::unwrap_used, clippy::result_large_err)]
//! ReconnectingWsClient and WsPool against the scripted server: reconnect
//! with backoff, watches re-subscribed under the user's id, pushes across
//! reconnects, requests during an outage, pool spreading and channels.

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use hs_core::value::Ref;
use hs_ws_client::{Backoff, HaystackClient, WsClient, WsClientError, requests};
use parking_lot::Mutex;
use serde_json::Value as Json;
use support::{Action, RecordedEvent, RecordingObserver, TestServer};

/// A server answering watchSub with ids `<tag>-<n>`, reusing a known id
/// (like haystack-py, which creates a new watch for an unknown id), and
/// echoing the op name for anything else.
fn watch_server(tag: &'static str) -> support::Handler {
    let known: Arc<Mutex<HashMap<String, ()>>> = Arc::new(Mutex::new(HashMap::new()));
    Arc::new(move |text: &str| {
        let req: Json = serde_json::from_str(text).unwrap();
        let id = &req["id"];
        let op = req["op"].as_str().unwrap_or("");
        match op {
            "never" => vec![],
            "watchSub" => {
                let asked = req["grid"]["meta"]["watchId"].as_str().map(str::to_owned);
                let mut known = known.lock();
                let watch_id = match asked {
                    Some(w) if known.contains_key(&w) => w,
                    _ => format!("{tag}-{}", known.len() + 1),
                };
                known.insert(watch_id.clone(), ());
                vec![Action::Text(format!(
                    r#"{{"grid":{{"_kind":"grid","meta":{{"watchId":"{watch_id}"}},"cols":[{{"name":"id"}}],"rows":[]}},"id":{id}}}"#
                ))]
            }
            _ => vec![Action::Text(format!(
                r#"{{"grid":{},"id":{id}}}"#,
                support::op_grid(op)
            ))],
        }
    })
}

fn sent_watch_ids(server: &TestServer, op: &str) -> Vec<Option<String>> {
    server
        .received
        .lock()
        .iter()
        .filter_map(|t| {
            let j: Json = serde_json::from_str(t).ok()?;
            (j["op"] == op).then(|| j["grid"]["meta"]["watchId"].as_str().map(str::to_owned))
        })
        .collect()
}

fn fast_backoff() -> Backoff {
    Backoff::new(Duration::from_millis(20), Duration::from_millis(200))
}

#[tokio::test]
async fn reconnects_resubscribes_and_keeps_the_users_watch_id() {
    support::init_logs();
    let server = TestServer::start(watch_server("a")).await;
    let url = server.url.clone();
    let rec = Arc::new(RecordingObserver::new());
    let client = WsClient::builder(&url)
        .observer(rec.clone())
        .connect_reconnecting(fast_backoff())
        .await
        .unwrap();
    let mut pushes = client.watch_events();
    let sub = client
        .watch_sub(
            None,
            "demo watch",
            &[Ref::make("p1", None)],
            Some(Duration::from_secs(60)),
        )
        .await
        .unwrap();
    assert_eq!(requests::watch_id(&sub).as_deref(), Some("a-1"));
    assert_eq!(client.watch_ids(), vec!["a-1".to_owned()]);

    // A request in flight when the server dies fails promptly.
    let pending = {
        let client = client.clone();
        tokio::spawn(async move { client.call("never", requests::empty()).await })
    };
    support::eventually("the request on the wire", || {
        server
            .received
            .lock()
            .iter()
            .any(|t| t.contains(r#""op":"never""#))
    })
    .await;
    let addr = server.kill();
    let err = tokio::time::timeout(Duration::from_secs(2), pending)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err()
        .downcast::<WsClientError>()
        .unwrap();
    assert!(err.is_connection_closed(), "{err}");

    // A request made during the outage waits for the new connection.
    let during = {
        let client = client.clone();
        tokio::spawn(async move { client.about().await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let server = TestServer::start_on(addr, watch_server("b")).await;
    let about = tokio::time::timeout(Duration::from_secs(5), during)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(about.rows.len(), 1);
    assert!(client.is_connected());

    // The watch was re-issued with its last id; the new server named it b-1.
    assert_eq!(
        sent_watch_ids(&server, "watchSub"),
        vec![Some("a-1".to_owned())]
    );
    // The user keeps using a-1: translated on the way out ...
    client.watch_poll("a-1", false).await.unwrap();
    assert_eq!(
        sent_watch_ids(&server, "watchPoll"),
        vec![Some("b-1".to_owned())]
    );
    // ... and pushes under b-1 come back as a-1.
    server.push(format!(
        r#"{{"type":"watch","watchId":"b-1","grid":{}}}"#,
        support::op_grid("p")
    ));
    let push = tokio::time::timeout(Duration::from_secs(5), pushes.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(push.watch_id, "a-1");

    // Each connection is one connect/disconnect pair.
    client.close().await.unwrap();
    let connects = rec.count(|e| matches!(e, RecordedEvent::WsConnect { .. }));
    let disconnects = rec.count(|e| matches!(e, RecordedEvent::WsDisconnect { .. }));
    assert_eq!((connects, disconnects), (2, 2));
    let errors = rec.errors();
    assert_eq!(
        errors,
        vec![("never".to_owned(), "connection_closed".to_owned())]
    );
}

#[tokio::test]
async fn closing_a_watch_stops_its_resubscription() {
    let server = TestServer::start(watch_server("a")).await;
    let client = WsClient::builder(&server.url)
        .connect_reconnecting(fast_backoff())
        .await
        .unwrap();
    let sub = client
        .watch_sub(None, "w", &[Ref::make("p1", None)], None)
        .await
        .unwrap();
    let id = requests::watch_id(&sub).unwrap();
    client.watch_unsub(&id, &[], true).await.unwrap();
    assert!(client.watch_ids().is_empty());
}

#[tokio::test]
async fn requests_during_an_outage_time_out() {
    let server = TestServer::start(watch_server("a")).await;
    let rec = Arc::new(RecordingObserver::new());
    let client = WsClient::builder(&server.url)
        .observer(rec.clone())
        .connect_reconnecting(fast_backoff())
        .await
        .unwrap();
    server.kill();
    support::eventually("disconnect", || !client.is_connected()).await;
    let err = client
        .call_with_timeout("about", requests::empty(), Some(Duration::from_millis(150)))
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert_eq!(
        rec.errors(),
        vec![("about".to_owned(), "timeout".to_owned())]
    );
    client.close().await.unwrap();
}

#[tokio::test]
async fn pool_spreads_requests_and_channels_tag_them() {
    // Echoes `ch` on single requests, never in batches (haystack-py).
    let handler: support::Handler = Arc::new(|text: &str| {
        let req: Json = serde_json::from_str(text).unwrap();
        let answer = |r: &Json, with_ch: bool| {
            let mut reply = format!(
                r#"{{"grid":{},"id":{}"#,
                support::op_grid(r["op"].as_str().unwrap()),
                r["id"]
            );
            if let (true, Some(ch)) = (with_ch, r.get("ch")) {
                reply.push_str(&format!(r#","ch":{ch}"#));
            }
            reply.push('}');
            reply
        };
        let reply = match &req {
            Json::Array(items) => format!(
                "[{}]",
                items
                    .iter()
                    .map(|r| answer(r, false))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            _ => answer(&req, true),
        };
        vec![
            Action::Sleep(Duration::from_millis(20)),
            Action::Text(reply),
        ]
    });
    let server = TestServer::start(handler).await;
    let rec = Arc::new(RecordingObserver::new());
    let pool = WsClient::builder(&server.url)
        .observer(rec.clone())
        .connect_pool(2)
        .await
        .unwrap();
    assert_eq!(pool.size(), 2);
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move { pool.about().await.unwrap() }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let counts = server.per_connection.lock().clone();
    assert_eq!(counts.len(), 2);
    assert!(counts.iter().all(|&n| n >= 4), "unbalanced: {counts:?}");

    let tenant = pool.channel("tenant-1");
    assert_eq!(tenant.name(), "tenant-1");
    tenant.ops().await.unwrap();
    let last: Json = serde_json::from_str(server.received.lock().last().unwrap()).unwrap();
    assert_eq!(last["ch"], "tenant-1");
    assert_eq!(last["op"], "ops");
    let results = tenant
        .batch(vec![("about".into(), requests::empty())])
        .await;
    assert!(results[0].is_ok());
    assert_eq!(rec.requests().len(), 18);
    pool.close().await.unwrap();
    assert_eq!(
        rec.count(|e| matches!(e, RecordedEvent::WsDisconnect { .. })),
        2
    );
}

#[tokio::test]
async fn pool_sends_watch_ops_to_the_connection_that_made_the_watch() {
    let server = TestServer::start(watch_server("a")).await;
    let pool = WsClient::builder(&server.url)
        .connect_pool(2)
        .await
        .unwrap();
    let mut pushes = pool.watch_events();
    let sub = pool
        .watch_sub(None, "w", &[Ref::make("p1", None)], None)
        .await
        .unwrap();
    let id = requests::watch_id(&sub).unwrap();
    let owner = {
        let counts = server.per_connection.lock().clone();
        counts.iter().position(|&n| n == 1).unwrap()
    };
    for _ in 0..6 {
        pool.watch_poll(&id, false).await.unwrap();
    }
    let counts = server.per_connection.lock().clone();
    assert_eq!(counts[owner], 7, "{counts:?}");
    assert_eq!(counts[1 - owner], 0, "{counts:?}");
    // A push on the owner's connection reaches the pool's stream.
    server.push(format!(
        r#"{{"type":"watch","watchId":"{id}","grid":{}}}"#,
        support::op_grid("p")
    ));
    let push = tokio::time::timeout(Duration::from_secs(5), pushes.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(push.watch_id, id);
    pool.close().await.unwrap();
}
