//! Every limit, and every way a connection ends, with its close code and its
//! connect/disconnect pair.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use futures_util::SinkExt;
use hs_core::observe::{Event, RecordedEvent};
use hs_ws_server::WsConfig;
use serde_json::json;
use tokio_tungstenite::tungstenite::{self, Message};

#[tokio::test]
async fn connections_over_the_limit_get_503() {
    let server = start(|b| b.config(WsConfig::default().with_max_connections(2))).await;
    let first = server.client().await;
    let mut second = server.client().await;
    match Client::try_connect(server.addr, Some("haystack")).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 503),
        Err(other) => panic!("expected HTTP 503, got {other}"),
        Ok(_) => panic!("third connection accepted"),
    }
    assert_eq!(errors_of(&server.recorder, "connect"), ["overloaded"]);
    assert_eq!(server.state.connection_count(), 2);
    // Existing connections are unaffected; a slot freed is usable again.
    assert_eq!(second.request("1", "about", empty_grid()).await["id"], "1");
    first.close().await;
    assert!(server.wait_disconnects(1).await);
    let mut third = server.client().await;
    assert_eq!(third.request("2", "about", empty_grid()).await["id"], "2");
    second.close().await;
    third.close().await;
    server.stop().await;
}

#[tokio::test]
async fn oversized_message_closes_with_1009() {
    let server = start(|b| b.config(WsConfig::default().with_max_message_size(1024))).await;
    let mut client = server.client().await;
    let mut other = server.client().await;
    // Just under the limit is served.
    let padding = "x".repeat(900);
    let response = client.request(&padding, "about", empty_grid()).await;
    assert_eq!(response["id"], padding.as_str());
    client.send_text(&"y".repeat(2000)).await;
    let frame = client.expect_close().await.expect("close frame");
    assert_eq!(u16::from(frame.code), 1009);
    assert!(server.wait_disconnects(1).await);
    assert_eq!(errors_of(&server.recorder, "invalid"), ["too_large"]);
    assert_eq!(other.request("o", "about", empty_grid()).await["id"], "o");
    other.close().await;
    server.stop().await;
}

#[tokio::test]
async fn silent_peer_is_closed_after_missed_pongs() {
    let config = WsConfig::default().with_heartbeat(Some(Duration::from_millis(100)), 2);
    let server = start(move |b| b.config(config)).await;
    // This client does not read, so it does not answer pings: the server
    // closes after ~300 ms and waits up to close_timeout (1 s) for the
    // peer's close. Reading within that window gets the close frame (later,
    // the TCP reset would discard it).
    let mut silent = server.client().await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let frame = silent.expect_close().await.expect("close frame");
    assert_eq!(u16::from(frame.code), 1008);
    assert_eq!(frame.reason.as_str(), "heartbeat timeout");
    assert!(server.wait_disconnects(1).await, "heartbeat timeout");
    server.stop().await;
}

#[tokio::test]
async fn reading_peer_survives_many_heartbeats() {
    let config = WsConfig::default().with_heartbeat(Some(Duration::from_millis(50)), 2);
    let server = start(move |b| b.config(config)).await;
    let mut client = server.client().await;
    // Reading answers the pings (tungstenite pongs automatically); stay for
    // ~10 intervals.
    let mut pings = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
    while let Ok(frame) =
        tokio::time::timeout_at(deadline, futures_util::StreamExt::next(&mut client.ws)).await
    {
        match frame {
            Some(Ok(Message::Ping(_))) => pings += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(pings >= 4, "{pings} pings");
    assert_eq!(
        client.request("alive", "about", empty_grid()).await["id"],
        "alive"
    );
    assert_eq!(server.recorder.count_event(Event::WsDisconnect), 0);
    // Pings and pongs are never counted as messages.
    assert_eq!(server.recorder.messages_recv().len(), 1);
    client.close().await;
    server.stop().await;
}

#[tokio::test]
async fn slow_reader_is_closed_and_others_are_unaffected() {
    let config = WsConfig::default().with_send_queue(4).with_max_in_flight(4);
    let server = start(move |b| b.config(config)).await;
    let mut slow = server.client().await;
    let mut healthy = server.client().await;
    // Large answers (every entity), never read: the socket buffers fill, then
    // the queue, then the server gives up on this reader.
    let request = json!({"id": "s", "op": "read", "grid": read_filter("id")}).to_string();
    let mut sent = 0;
    for _ in 0..20_000 {
        if server.recorder.count_event(Event::WsDisconnect) > 0 {
            break;
        }
        if slow.ws.send(Message::text(request.clone())).await.is_err() {
            break;
        }
        sent += 1;
    }
    assert!(
        server.wait_disconnects(1).await,
        "slow reader closed after {sent} requests"
    );
    assert!(
        errors_of(&server.recorder, "read")
            .iter()
            .any(|kind| kind == "overloaded")
    );
    assert_eq!(healthy.request("h", "about", empty_grid()).await["id"], "h");
    healthy.close().await;
    server.stop().await;
}

/// The attack of issue 13 in small: a client sends many `read` requests
/// with large answers and never reads. Its answers may hold at most the
/// send budget; the server stops reading it, serves others meanwhile, and
/// closes it with 1008 once it stayed over budget for `stall_timeout`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_reader_is_held_to_its_send_budget_then_closed_1008() {
    const BUDGET: usize = 1024 * 1024;
    let config = WsConfig::default()
        .with_send_budget(BUDGET)
        .with_stall_timeout(Duration::from_secs(4))
        .with_close_timeout(Duration::from_secs(2))
        .with_heartbeat(None, 1);
    let store = std::sync::Arc::new(hs_core::demo::sized::store(400));
    let server = start_with_store(store, move |b| b.config(config)).await;
    let state = server.state.clone();

    let attacker = server.client().await;
    let (mut sender, mut receiver) = futures_util::StreamExt::split(attacker.ws);
    let request = json!({"id": "a", "op": "read", "grid": read_filter("point")}).to_string();
    // Sends until the server stops reading (the send then waits) or closes.
    let sending = tokio::spawn(async move {
        for _ in 0..3_000 {
            if sender.send(Message::text(request.clone())).await.is_err() {
                break;
            }
        }
    });

    // Phase 1: the answers pile up to the budget, never past it.
    let mut peak = 0;
    let mut samples = 0;
    let deadline = tokio::time::Instant::now() + WAIT;
    while peak < BUDGET / 2 && tokio::time::Instant::now() < deadline {
        peak = peak.max(state.queued_bytes());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(
        peak >= BUDGET / 2,
        "the slow reader's queue filled ({peak} bytes)"
    );
    while samples < 200 {
        peak = peak.max(state.queued_bytes());
        samples += 1;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(peak <= BUDGET, "{peak} bytes queued, budget {BUDGET}");

    // Phase 2: another client is served while the slow reader is stalled.
    let mut healthy = server.client().await;
    assert_eq!(healthy.request("h", "about", empty_grid()).await["id"], "h");
    let answer = healthy.request("r", "read", read_ids(&["p1"])).await;
    assert_eq!(row_ids(&answer), ["p1"]);
    assert_eq!(state.connection_count(), 2, "the slow reader is still open");
    healthy.close().await;

    // Phase 3: still within budget until the server gives up; its waiting
    // requests are `overloaded`, and the close is 1008.
    let recorder = server.recorder.clone();
    let overloaded = tokio::task::spawn_blocking(move || {
        recorder.wait_for(
            |events| {
                events.iter().any(|e| {
                    matches!(e, RecordedEvent::Error { op, error_type } if op == "read" && error_type == "overloaded")
                })
            },
            Duration::from_secs(10),
        )
    });
    while !overloaded.is_finished() {
        peak = peak.max(state.queued_bytes());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(overloaded.await.unwrap(), "the slow reader was given up on");
    assert!(peak <= BUDGET, "{peak} bytes queued, budget {BUDGET}");
    let close = tokio::time::timeout(WAIT, async {
        while let Some(Ok(frame)) = futures_util::StreamExt::next(&mut receiver).await {
            if let Message::Close(frame) = frame {
                return frame;
            }
        }
        None
    })
    .await
    .expect("closed within the wait")
    .expect("a close frame");
    assert_eq!(u16::from(close.code), 1008);
    assert_eq!(close.reason.as_str(), "send queue full");
    // Reading on lets tungstenite answer the close; the server then ends.
    let _ = tokio::time::timeout(WAIT, async {
        while let Some(Ok(_)) = futures_util::StreamExt::next(&mut receiver).await {}
    })
    .await;
    assert!(server.wait_disconnects(2).await);
    tokio::time::timeout(WAIT, sending).await.unwrap().unwrap();
    // Memory goes back: nothing is held once the connection is gone.
    assert_eq!(state.queued_bytes(), 0);
    server.stop().await;
}

/// A client that pipelines more answers than its budget holds, then reads
/// them all, is held back (not read meanwhile), never closed: every answer
/// arrives. An answer larger than the whole budget is an error grid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipelining_reader_is_held_back_by_its_budget_not_closed() {
    const BUDGET: usize = 64 * 1024;
    let config = WsConfig::default()
        .with_send_budget(BUDGET)
        .with_heartbeat(None, 1);
    let store = std::sync::Arc::new(hs_core::demo::sized::store(40));
    let server = start_with_store(store, move |b| b.config(config)).await;
    let client = server.client().await;
    let (mut sender, mut receiver) = futures_util::StreamExt::split(client.ws);
    const REQUESTS: usize = 300;
    let sending = tokio::spawn(async move {
        for n in 0..REQUESTS {
            let request = json!({"id": n, "op": "read", "grid": read_filter("point")});
            sender
                .send(Message::text(request.to_string()))
                .await
                .unwrap();
        }
        sender
    });
    let mut seen = vec![false; REQUESTS];
    let mut largest = 0;
    for _ in 0..REQUESTS {
        let frame = tokio::time::timeout(WAIT, futures_util::StreamExt::next(&mut receiver))
            .await
            .expect("an answer within the wait")
            .expect("open")
            .unwrap();
        let Message::Text(text) = frame else {
            panic!("unexpected {frame:?}")
        };
        largest = largest.max(text.len());
        let answer: serde_json::Value = serde_json::from_str(text.as_str()).unwrap();
        assert_eq!(error_dis(&answer), None);
        assert_eq!(answer["grid"]["rows"].as_array().unwrap().len(), 40);
        seen[usize::try_from(answer["id"].as_u64().unwrap()).unwrap()] = true;
    }
    assert!(seen.iter().all(|seen| *seen));
    assert!(
        REQUESTS * largest > 4 * BUDGET,
        "the answers overflow the budget"
    );
    assert!(server.state.queued_bytes() <= BUDGET);
    let mut sender = sending.await.unwrap();

    // An answer larger than the whole budget: an error grid with the id.
    server
        .store
        .update_entities(hs_core::demo::sized::entities(400))
        .unwrap();
    let request = json!({"id": "big", "op": "read", "grid": read_filter("point")});
    sender
        .send(Message::text(request.to_string()))
        .await
        .unwrap();
    let frame = tokio::time::timeout(WAIT, futures_util::StreamExt::next(&mut receiver))
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let answer: serde_json::Value = serde_json::from_str(frame.to_text().unwrap()).unwrap();
    assert_eq!(answer["id"], "big");
    let dis = error_dis(&answer).expect("an error grid");
    assert!(
        dis.contains("exceeds the connection's send budget"),
        "{dis}"
    );
    assert_eq!(answer["grid"]["meta"]["errKind"], "too_large");
    assert_eq!(server.recorder.count_event(Event::WsDisconnect), 0);
    server.stop().await;
}

/// The next frame of a plain TCP WebSocket, as JSON, within the wait.
async fn next_json(
    receiver: &mut futures_util::stream::SplitStream<
        tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
    >,
) -> serde_json::Value {
    let frame = tokio::time::timeout(WAIT, futures_util::StreamExt::next(receiver))
        .await
        .expect("a frame within the wait")
        .expect("open")
        .unwrap();
    serde_json::from_str(frame.to_text().unwrap()).unwrap()
}

/// A watch push to a connection whose answers fill its budget is queued
/// beyond it (pushes are never held back), not taken for a slow reader:
/// once the client reads, every answer and the push arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_at_a_full_budget_is_queued_not_a_close() {
    const BUDGET: usize = 16 * 1024;
    let config = WsConfig::default()
        .with_send_budget(BUDGET)
        .with_heartbeat(None, 1);
    let server = start(move |b| b.config(config)).await;
    // A small receive buffer, so that the answers wait in the server's queue
    // rather than in the kernel's.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let tcp = socket.connect(server.addr).await.unwrap();
    let (ws, _) = tokio_tungstenite::client_async(format!("ws://{}/api/ws", server.addr), tcp)
        .await
        .unwrap();
    let (mut sender, mut receiver) = futures_util::StreamExt::split(ws);
    let sub = json!({"id": "sub", "op": "watchSub", "grid": grid(json!({"watchDis": "t"}), &["id"], vec![json!({"id": reference("demo-ahu2-sp")})])});
    sender.send(Message::text(sub.to_string())).await.unwrap();
    assert_eq!(next_json(&mut receiver).await["id"], "sub");

    // Answers of ~4 KB each, not read, until the budget fills: the kernel's
    // send buffer (up to a few MB) takes the first ones, so the count needed
    // varies; 3,000 answers (12 MB) is more than any buffer holds.
    const MAX_REQUESTS: usize = 3_000;
    let request = json!({"id": "r", "op": "read", "grid": read_filter("id")}).to_string();
    let filled = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let sending = tokio::spawn({
        let (filled, sent) = (filled.clone(), sent.clone());
        async move {
            while !filled.load(Ordering::SeqCst) && sent.load(Ordering::SeqCst) < MAX_REQUESTS {
                sender.send(Message::text(request.clone())).await.unwrap();
                sent.fetch_add(1, Ordering::SeqCst);
            }
            sender
        }
    });
    let deadline = tokio::time::Instant::now() + WAIT;
    while server.state.queued_bytes() + 4096 < BUDGET && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    filled.store(true, Ordering::SeqCst);
    assert!(
        server.state.queued_bytes() + 4096 >= BUDGET,
        "the budget filled"
    );

    // A change to the watched point: its push goes beyond the budget.
    let mut writer = server.client().await;
    let write = grid(
        json!({}),
        &["id", "level", "val", "who"],
        vec![
            json!({"id": reference("demo-ahu2-sp"), "level": 8.0, "val": {"_kind": "number", "val": 71.0, "unit": "°F"}, "who": "test"}),
        ],
    );
    assert_eq!(writer.request("w", "pointWrite", write).await["id"], "w");
    writer.close().await;

    // Read everything: every answer and the push, no close. The sender stops
    // once its pending send completes, which needs the server reading again.
    let (mut answers, mut pushes) = (0, 0);
    while !sending.is_finished() || answers < sent.load(Ordering::SeqCst) || pushes == 0 {
        let frame = next_json(&mut receiver).await;
        if frame["type"] == "watch" {
            pushes += 1;
        } else {
            assert_eq!(frame["id"], "r", "{frame}");
            assert_eq!(error_dis(&frame), None);
            answers += 1;
        }
    }
    assert_eq!((answers, pushes), (sent.load(Ordering::SeqCst), 1));
    assert_eq!(
        server.recorder.count_event(Event::WsDisconnect),
        1,
        "only the writer left"
    );
    drop(sending.await.unwrap());
    server.stop().await;
}

#[tokio::test]
async fn shutdown_closes_every_connection_with_1001() {
    let server = start(|b| b).await;
    let mut first = server.client().await;
    let mut second = server.client().await;
    assert_eq!(first.request("1", "about", empty_grid()).await["id"], "1");
    let recorder = server.recorder.clone();
    let addr = server.addr;
    let stopping = tokio::spawn(server.stop());
    for client in [&mut first, &mut second] {
        let frame = client.expect_close().await.expect("close frame");
        assert_eq!(u16::from(frame.code), 1001);
    }
    tokio::time::timeout(WAIT, stopping)
        .await
        .expect("stopped")
        .expect("stop task");
    assert_eq!(recorder.count_event(Event::WsConnect), 2);
    assert_eq!(recorder.count_event(Event::WsDisconnect), 2);
    assert!(
        Client::try_connect(addr, Some("haystack")).await.is_err(),
        "no longer listening"
    );
}

#[tokio::test]
async fn every_disconnect_cause_fires_exactly_one_disconnect() {
    let config = WsConfig::default()
        .with_max_message_size(4096)
        .with_heartbeat(Some(Duration::from_millis(100)), 2);
    let server = start(move |b| b.config(config)).await;
    // 1. Normal close by the client.
    let normal = server.client().await;
    normal.close().await;
    // 2. TCP dropped without a close frame.
    let dropped = server.client().await;
    drop(dropped);
    // 3. Oversized message.
    let mut big = server.client().await;
    big.send_text(&"z".repeat(5000)).await;
    let _ = big.expect_close().await;
    // 4. Heartbeat timeout (never reads).
    let _silent = server.client().await;
    assert!(server.wait_disconnects(4).await);
    // 5. Shutdown.
    let mut last = server.client().await;
    assert_eq!(last.request("l", "about", empty_grid()).await["id"], "l");
    let recorder = server.recorder.clone();
    let stopping = tokio::spawn(server.stop());
    let _ = last.expect_close().await;
    stopping.await.unwrap();
    let events = recorder.events();
    let connects: Vec<&String> = events
        .iter()
        .filter_map(|e| match e {
            RecordedEvent::WsConnect { remote_addr } => Some(remote_addr),
            _ => None,
        })
        .collect();
    let mut disconnects: Vec<&String> = events
        .iter()
        .filter_map(|e| match e {
            RecordedEvent::WsDisconnect { remote_addr } => Some(remote_addr),
            _ => None,
        })
        .collect();
    assert_eq!(connects.len(), 5);
    let mut sorted = connects.clone();
    sorted.sort();
    disconnects.sort();
    assert_eq!(
        sorted, disconnects,
        "each connect has exactly one disconnect with the same peer"
    );
    assert!(
        connects
            .iter()
            .all(|peer| peer.parse::<std::net::SocketAddr>().is_ok()),
        "ip:port"
    );
}

#[tokio::test]
async fn in_flight_requests_are_bounded_and_all_answered() {
    let config = WsConfig::default().with_max_in_flight(2);
    let server = start(move |b| b.config(config)).await;
    let mut client = server.client().await;
    for n in 0..20 {
        client
            .send_json(&json!({"id": n.to_string(), "op": "about"}))
            .await;
    }
    for _ in 0..20 {
        assert!(error_dis(&client.recv_json().await).is_none());
    }
    client.close().await;
    server.stop().await;
}
