#![allow(clippy::unwrap_used, clippy::result_large_err)]
//! WsClient against a tiny scripted WebSocket server: correlation,
//! timeouts, error grids, batches, garbage frames, heartbeat, close, token
//! auth, pushes, and the observer events of each.

mod support;

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use hs_core::value::Value;
use hs_ws_client::{HaystackClient, WsClient, WsClientError, requests};
use parking_lot::Mutex;
use serde_json::Value as Json;
use support::{Action, RecordedEvent, RecordingObserver, TestServer, echo_handler, eventually};

async fn client_for(server: &TestServer, rec: &Arc<RecordingObserver>) -> WsClient {
    WsClient::builder(&server.url)
        .observer(rec.clone())
        .connect()
        .await
        .unwrap()
}

fn op_of(grid: &hs_ws_client::Grid) -> String {
    match grid.rows[0].get("op") {
        Some(Value::Str(s)) => s.value().to_owned(),
        other => panic!("no op in {other:?}"),
    }
}

#[tokio::test]
async fn one_request_fires_the_contract_events_with_exact_byte_counts() {
    support::init_logs();
    let server = TestServer::start(echo_handler()).await;
    let rec = Arc::new(RecordingObserver::new());
    let client = client_for(&server, &rec).await;
    let grid = client.about().await.unwrap();
    assert_eq!(op_of(&grid), "about");
    client.close().await.unwrap();
    assert!(client.is_closed());

    let sent_frame = server.received.lock()[0].clone();
    let reply = format!(r#"{{"grid":{},"id":"0"}}"#, support::op_grid("about"));
    let events = rec.events();
    assert_eq!(
        events[0],
        RecordedEvent::WsConnect {
            remote_addr: server.url.clone()
        }
    );
    assert_eq!(
        events[1],
        RecordedEvent::WsMessageSent {
            op: "about".into(),
            byte_count: sent_frame.len()
        }
    );
    assert_eq!(
        events[2],
        RecordedEvent::WsMessageRecv {
            op: "about".into(),
            byte_count: reply.len()
        }
    );
    assert!(
        matches!(&events[3], RecordedEvent::Request { op, duration } if op == "about" && *duration > Duration::ZERO)
    );
    assert_eq!(
        events[4],
        RecordedEvent::WsDisconnect {
            remote_addr: server.url.clone()
        }
    );
    assert_eq!(events.len(), 5);
    // Ids are decimal strings from "0", like haystack-py.
    let sent: Json = serde_json::from_str(&sent_frame).unwrap();
    assert_eq!(sent["id"], "0");
    assert_eq!(sent["op"], "about");
}

#[tokio::test]
async fn a_thousand_requests_in_flight_are_correlated_when_answered_in_reverse() {
    const N: usize = 1000;
    let queue: Arc<Mutex<Vec<Json>>> = Arc::new(Mutex::new(Vec::new()));
    let handler = {
        let queue = queue.clone();
        Arc::new(move |text: &str| {
            let req: Json = serde_json::from_str(text).unwrap();
            let mut q = queue.lock();
            q.push(req);
            if q.len() < N {
                return vec![];
            }
            // Everything is in flight: answer in reverse order, echoing
            // each request grid.
            q.drain(..)
                .rev()
                .map(|r| Action::Text(format!(r#"{{"grid":{},"id":{}}}"#, r["grid"], r["id"])))
                .collect()
        }) as support::Handler
    };
    let server = TestServer::start(handler).await;
    let rec = Arc::new(RecordingObserver::new());
    let client = client_for(&server, &rec).await;
    let mut tasks = Vec::with_capacity(N);
    for i in 0..N {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let grid = client
                .read_filter(&format!("n == {i}"), Some(i))
                .await
                .unwrap();
            let filter = match grid.rows[0].get("filter") {
                Some(Value::Str(s)) => s.value().to_owned(),
                other => panic!("{other:?}"),
            };
            assert_eq!(filter, format!("n == {i}"));
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(rec.requests().len(), N);
    assert!(rec.errors().is_empty());
    assert_eq!(rec.messages_sent().len(), N);
    assert_eq!(rec.messages_recv().len(), N);
    assert_eq!(client.in_flight(), 0);
}

#[tokio::test]
async fn a_response_larger_than_the_read_buffer_arrives_whole() {
    // Echo each request grid back, so a long filter makes a long answer.
    let handler = Arc::new(|text: &str| {
        let req: Json = serde_json::from_str(text).unwrap();
        vec![Action::Text(format!(
            r#"{{"grid":{},"id":{}}}"#,
            req["grid"], req["id"]
        ))]
    }) as support::Handler;
    let server = TestServer::start(handler).await;
    let client = WsClient::builder(&server.url)
        .read_buffer_size(1024)
        .connect()
        .await
        .unwrap();
    let long = format!("dis == \"{}\"", "x".repeat(200_000));
    let grid = client.read_filter(&long, None).await.unwrap();
    match grid.rows[0].get("filter") {
        Some(Value::Str(s)) => assert_eq!(s.value(), long.as_str()),
        other => panic!("{other:?}"),
    }
    client.close().await.unwrap();
}

#[tokio::test]
async fn timeout_fires_one_error_and_a_late_answer_counts_as_invalid() {
    let server = TestServer::start(echo_handler()).await;
    let rec = Arc::new(RecordingObserver::new());
    let client = client_for(&server, &rec).await;
    let err = client
        .call_with_timeout("slow", requests::empty(), Some(Duration::from_millis(50)))
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert_eq!(err.kind().as_str(), "timeout");
    // The late answer arrives after 300 ms; it matches nothing.
    eventually("late answer", || {
        rec.messages_recv().iter().any(|(op, _)| op == "invalid")
    })
    .await;
    assert_eq!(
        rec.errors(),
        vec![("slow".to_owned(), "timeout".to_owned())]
    );
    assert!(rec.requests().is_empty());
    // The connection still works, with the builder's default timeout.
    let fast = client.with_request_timeout(Duration::from_secs(5));
    assert_eq!(op_of(&fast.ops().await.unwrap()), "ops");
}

#[tokio::test]
async fn error_grid_is_an_error_with_its_dis() {
    let server = TestServer::start(echo_handler()).await;
    let rec = Arc::new(RecordingObserver::new());
    let client = client_for(&server, &rec).await;
    let err = client
        .call("fail", requests::empty())
        .await
        .unwrap_err()
        .downcast::<WsClientError>()
        .unwrap();
    match &err {
        WsClientError::ErrorGrid { op, dis, grid } => {
            assert_eq!(op, "fail");
            assert_eq!(dis, "it failed");
            assert!(grid.is_err());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(err.as_str(), "error_grid");
    assert_eq!(
        rec.errors(),
        vec![("fail".to_owned(), "error_grid".to_owned())]
    );
}

#[tokio::test]
async fn batch_returns_every_item_even_after_an_error_item() {
    let server = TestServer::start(echo_handler()).await;
    let rec = Arc::new(RecordingObserver::new());
    let client = client_for(&server, &rec).await;
    let results = client
        .batch(vec![
            ("about".into(), requests::empty()),
            ("fail".into(), requests::empty()),
            ("read".into(), requests::read_filter("site", None)),
        ])
        .await;
    assert_eq!(results.len(), 3);
    assert_eq!(op_of(results[0].as_ref().unwrap()), "about");
    assert!(results[1].as_ref().unwrap_err().is_error_grid());
    assert_eq!(op_of(results[2].as_ref().unwrap()), "read");
    let frame = server.received.lock()[0].clone();
    assert!(frame.starts_with('['));
    assert_eq!(rec.messages_sent(), vec![("batch".to_owned(), frame.len())]);
    assert_eq!(rec.messages_recv().len(), 1);
    assert_eq!(rec.messages_recv()[0].0, "batch");
    assert_eq!(rec.requests().len(), 2);
    assert_eq!(
        rec.errors(),
        vec![("fail".to_owned(), "error_grid".to_owned())]
    );
    // An empty batch sends nothing (the server would not answer).
    assert!(client.batch(vec![]).await.is_empty());
    assert_eq!(server.received.lock().len(), 1);
}

#[tokio::test]
async fn garbage_frames_are_reported_as_invalid_and_do_not_break_the_client() {
    let handler: support::Handler = Arc::new(|text: &str| {
        let req: Json = serde_json::from_str(text).unwrap();
        let id = &req["id"];
        match req["op"].as_str().unwrap() {
            "garbage" => vec![
                Action::Text("this is not json".into()),
                Action::Text("42".into()),
                Action::Text(r#"{"type":"capabilities","compression":null}"#.into()),
                Action::Text(r#"{"type":"mystery"}"#.into()),
                Action::Binary(vec![0xff, 0x00, 0x01, 0x02, 0x03]),
                Action::Text(r#"[1,2,3]"#.into()),
                // An answer to this very request whose grid is nonsense.
                Action::Text(format!(r#"{{"grid":{{"_kind":"bogus"}},"id":{id}}}"#)),
            ],
            op => vec![Action::Text(format!(
                r#"{{"grid":{},"id":{id}}}"#,
                support::op_grid(op)
            ))],
        }
    });
    let server = TestServer::start(handler).await;
    let rec = Arc::new(RecordingObserver::new());
    let client = client_for(&server, &rec).await;
    let err = client
        .call("garbage", requests::empty())
        .await
        .unwrap_err()
        .downcast::<WsClientError>()
        .unwrap();
    assert_eq!(err.as_str(), "protocol", "{err}");
    assert_eq!(op_of(&client.about().await.unwrap()), "about");
    let invalid = rec
        .messages_recv()
        .iter()
        .filter(|(op, _)| op == "invalid")
        .count();
    assert_eq!(invalid, 7, "{:?}", rec.messages_recv());
    assert_eq!(
        rec.errors(),
        vec![("garbage".to_owned(), "protocol".to_owned())]
    );
    assert_eq!(rec.requests().len(), 1);
    assert!(!client.is_closed());
}

#[tokio::test]
async fn server_dropping_the_connection_fails_pending_requests_promptly() {
    let handler: support::Handler = Arc::new(|text: &str| {
        let req: Json = serde_json::from_str(text).unwrap();
        match req["op"].as_str().unwrap() {
            "die" => vec![Action::Sleep(Duration::from_millis(100)), Action::Drop],
            _ => vec![],
        }
    });
    let server = TestServer::start(handler).await;
    let rec = Arc::new(RecordingObserver::new());
    let client = client_for(&server, &rec).await;
    let started = std::time::Instant::now();
    let pending = {
        let client = client.clone();
        tokio::spawn(async move { client.call("never", requests::empty()).await })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    let err = client
        .call("die", requests::empty())
        .await
        .unwrap_err()
        .downcast::<WsClientError>()
        .unwrap();
    assert!(err.is_connection_closed(), "{err}");
    let err = pending
        .await
        .unwrap()
        .unwrap_err()
        .downcast::<WsClientError>()
        .unwrap();
    assert!(err.is_connection_closed(), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // Later requests fail at once, also with one event each.
    let err = client
        .about()
        .await
        .unwrap_err()
        .downcast::<WsClientError>()
        .unwrap();
    assert!(err.is_connection_closed());
    let errors = rec.errors();
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(errors.iter().all(|(_, kind)| kind == "connection_closed"));
    let disconnects = rec.count(|e| matches!(e, RecordedEvent::WsDisconnect { .. }));
    assert_eq!(disconnects, 1);
}

#[tokio::test]
async fn missed_pongs_close_the_connection() {
    let server = TestServer::start_with(echo_handler(), false).await;
    let rec = Arc::new(RecordingObserver::new());
    let client = WsClient::builder(&server.url)
        .heartbeat(Duration::from_millis(50), 2)
        .observer(rec.clone())
        .connect()
        .await
        .unwrap();
    let reason = tokio::time::timeout(Duration::from_secs(5), client.closed())
        .await
        .unwrap();
    assert!(reason.contains("heartbeat"), "{reason}");
    assert_eq!(
        rec.count(|e| matches!(e, RecordedEvent::WsDisconnect { .. })),
        1
    );
}

#[tokio::test]
async fn heartbeat_keeps_a_live_connection_open() {
    let server = TestServer::start(echo_handler()).await;
    let client = WsClient::builder(&server.url)
        .heartbeat(Duration::from_millis(100), 5)
        .connect()
        .await
        .unwrap();
    // Several pings go out and are answered.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(!client.is_closed());
    assert_eq!(op_of(&client.about().await.unwrap()), "about");
}

#[tokio::test]
async fn close_is_idempotent_and_reports_one_disconnect() {
    let server = TestServer::start(echo_handler()).await;
    let rec = Arc::new(RecordingObserver::new());
    let client = client_for(&server, &rec).await;
    client.close().await.unwrap();
    let reason = client.closed().await;
    assert_eq!(reason, "closed by client");
    client.close().await.unwrap();
    assert_eq!(
        rec.count(|e| matches!(e, RecordedEvent::WsDisconnect { .. })),
        1
    );
    let err = client
        .about()
        .await
        .unwrap_err()
        .downcast::<WsClientError>()
        .unwrap();
    assert!(err.is_connection_closed());
    assert_eq!(
        rec.errors(),
        vec![("about".to_owned(), "connection_closed".to_owned())]
    );
}

#[tokio::test]
async fn close_is_bounded_when_the_server_never_answers_it() {
    // A silent peer never reads, so never answers the close frame.
    let server = TestServer::start_with(echo_handler(), false).await;
    let rec = Arc::new(RecordingObserver::new());
    let client = WsClient::builder(&server.url)
        .no_heartbeat()
        .close_timeout(Duration::from_millis(200))
        .observer(rec.clone())
        .connect()
        .await
        .unwrap();
    let started = std::time::Instant::now();
    client.close().await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(client.is_closed());
    assert_eq!(
        rec.count(|e| matches!(e, RecordedEvent::WsDisconnect { .. })),
        1
    );
}

#[tokio::test]
async fn dropping_the_last_handle_reports_the_disconnect() {
    let server = TestServer::start(echo_handler()).await;
    let rec = Arc::new(RecordingObserver::new());
    let client = client_for(&server, &rec).await;
    drop(client);
    eventually("disconnect", || {
        rec.count(|e| matches!(e, RecordedEvent::WsDisconnect { .. })) == 1
    })
    .await;
}

#[tokio::test]
async fn token_auth_sends_the_token_first() {
    let server = TestServer::start(echo_handler()).await;
    let rec = Arc::new(RecordingObserver::new());
    let client = WsClient::builder(&server.url)
        .token("demo-static-token")
        .observer(rec.clone())
        .connect()
        .await
        .unwrap();
    client.about().await.unwrap();
    let first = server.received.lock()[0].clone();
    assert_eq!(first, r#"{"authToken":"demo-static-token"}"#);
    assert_eq!(rec.messages_sent()[0], ("auth".to_owned(), first.len()));
}

#[tokio::test]
async fn pushes_arrive_on_the_watch_stream() {
    let server = TestServer::start(echo_handler()).await;
    let rec = Arc::new(RecordingObserver::new());
    let client = client_for(&server, &rec).await;
    let mut events = client.watch_events();
    client.about().await.unwrap(); // the connection is registered
    let push = format!(
        r#"{{"type":"watch","watchId":"w-1","grid":{}}}"#,
        support::op_grid("p")
    );
    server.push(push.clone());
    let got = tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.watch_id, "w-1");
    assert_eq!(op_of(&got.grid), "p");
    assert!(
        rec.messages_recv()
            .contains(&("push".to_owned(), push.len()))
    );
}

#[tokio::test]
async fn connect_errors_are_typed() {
    let rec = Arc::new(RecordingObserver::new());
    let err = WsClient::builder("http://127.0.0.1:1/")
        .connect()
        .await
        .unwrap_err();
    assert_eq!(err.as_str(), "invalid_url");
    // Nothing listens on this port.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let err = WsClient::builder(format!("ws://{addr}/api/ws"))
        .observer(rec.clone())
        .connect()
        .await
        .unwrap_err();
    assert_eq!(err.kind().as_str(), "connect");
    // What happened, once, in the HTTP client's words.
    assert_eq!(
        err.to_string(),
        format!("cannot connect to ws://{addr}/api/ws: connection refused")
    );
    // No connection, so no connect/disconnect pair.
    assert!(rec.events().is_empty());

    // A port that accepts (the kernel completes the handshake from the
    // backlog) but never answers the upgrade.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let err = WsClient::builder(format!("ws://{addr}"))
        .connect_timeout(Duration::from_millis(200))
        .connect()
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("cannot connect to ws://{addr}/api/ws: no answer within 200ms")
    );
    drop(silent);
}

#[tokio::test]
async fn a_server_refusing_the_subprotocol_is_a_connect_error() {
    // Accept the upgrade but never answer `haystack`.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let _ws = tokio_tungstenite::accept_async(tcp).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
    });
    let err = WsClient::connect(format!("ws://{addr}/api/ws"))
        .await
        .unwrap_err();
    assert_eq!(err.kind().as_str(), "connect", "{err}");
    task.abort();
}

/// A scripted server doing SCRAM over messages with hs_core's ScramServer;
/// `tamper` corrupts the server signature in `authOk`.
fn scram_handler(tamper: bool) -> support::Handler {
    use hs_core::auth::{Role, ScramServer, ScramStep, TokenStore, UserStore};
    let users = UserStore::new().with_iterations(4096);
    users.add_user("demo", "demo-pass", Role::Operator);
    let server = ScramServer::new(users, TokenStore::new());
    let echo = echo_handler();
    Arc::new(move |text: &str| {
        let msg: Json = serde_json::from_str(text).unwrap();
        let reply = match msg["type"].as_str() {
            Some("hello") => match server.hello(msg["username"].as_str().unwrap()) {
                Ok(c) => {
                    serde_json::json!({"type":"hello","handshakeToken":c.handshake_token,"hash":"SHA-256"})
                }
                Err(_) => serde_json::json!({"type":"authErr"}),
            },
            Some("scram") => {
                let token = msg["handshakeToken"].as_str().unwrap();
                match server.step(token, msg["data"].as_str().unwrap()) {
                    Ok(ScramStep::Continue(first)) => {
                        serde_json::json!({"type":"scram","handshakeToken":first.handshake_token,"hash":"SHA-256","data":first.data})
                    }
                    Ok(ScramStep::Authenticated(done)) => {
                        let data = if tamper {
                            "dj1BQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQT0".to_owned()
                        } else {
                            done.data
                        };
                        serde_json::json!({"type":"authOk","authToken":done.auth_token,"data":data})
                    }
                    Ok(_) | Err(_) => serde_json::json!({"type":"authErr"}),
                }
            }
            _ => return echo(text),
        };
        vec![Action::Text(reply.to_string())]
    })
}

#[tokio::test]
async fn scram_over_messages_authenticates_and_counts_auth_frames() {
    let server = TestServer::start(scram_handler(false)).await;
    let rec = Arc::new(RecordingObserver::new());
    let client = WsClient::builder(&server.url)
        .credentials("demo", "demo-pass")
        .observer(rec.clone())
        .connect()
        .await
        .unwrap();
    assert_eq!(op_of(&client.about().await.unwrap()), "about");
    let received = server.received.lock().clone();
    let sent = rec.messages_sent();
    assert_eq!(sent.len(), 4);
    for (i, frame) in received.iter().take(3).enumerate() {
        assert_eq!(sent[i], ("auth".to_owned(), frame.len()));
    }
    assert_eq!(received[0], r#"{"type":"hello","username":"ZGVtbw"}"#);
    let recv_auth = rec
        .messages_recv()
        .iter()
        .filter(|(op, _)| op == "auth")
        .count();
    assert_eq!(recv_auth, 3);
    // No secret reaches the observer: the events carry op names only.
    assert!(
        rec.events()
            .iter()
            .all(|e| !format!("{e:?}").contains("demo-pass"))
    );
}

#[tokio::test]
async fn wrong_password_and_forged_server_signature_are_auth_errors() {
    let server = TestServer::start(scram_handler(false)).await;
    let rec = Arc::new(RecordingObserver::new());
    let err = WsClient::builder(&server.url)
        .credentials("demo", "wrong")
        .observer(rec.clone())
        .connect()
        .await
        .unwrap_err();
    assert_eq!(err.kind().as_str(), "auth", "{err}");
    // The connection was made, so it is also reported closed.
    assert_eq!(
        rec.count(|e| matches!(e, RecordedEvent::WsConnect { .. })),
        1
    );
    assert_eq!(
        rec.count(|e| matches!(e, RecordedEvent::WsDisconnect { .. })),
        1
    );

    let err = WsClient::builder(&server.url)
        .credentials("nobody", "x")
        .connect()
        .await
        .unwrap_err();
    assert_eq!(err.kind().as_str(), "auth", "{err}");

    let forged = TestServer::start(scram_handler(true)).await;
    let err = WsClient::builder(&forged.url)
        .credentials("demo", "demo-pass")
        .connect()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("server signature"), "{err}");
}
