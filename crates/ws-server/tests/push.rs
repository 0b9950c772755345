//! Watch pushes come from real changes and reach only the subscribers.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

async fn subscribe(client: &mut Client, ids: &[&str]) -> String {
    let rows = ids.iter().map(|id| json!({"id": reference(id)})).collect();
    let response = client
        .request(
            "sub",
            "watchSub",
            grid(json!({"watchDis": "push test"}), &["id"], rows),
        )
        .await;
    response["grid"]["meta"]["watchId"]
        .as_str()
        .expect("watchId")
        .to_owned()
}

fn point_write(id: &str, level: f64, value: f64) -> serde_json::Value {
    grid(
        json!({}),
        &["id", "level", "val", "who"],
        vec![json!({"id": reference(id), "level": level,
                    "val": {"_kind": "number", "val": value, "unit": "°F"}, "who": "test"})],
    )
}

/// Reads frames until a push arrives (answers to our own requests are
/// skipped), bounded.
async fn next_push(client: &mut Client) -> serde_json::Value {
    for _ in 0..10 {
        let frame = client.recv_json().await;
        if frame["type"] == "watch" {
            return frame;
        }
    }
    panic!("no push");
}

#[tokio::test]
async fn point_write_is_pushed_to_subscribers_only_and_promptly() {
    let server = start(|b| b).await;
    let mut subscriber = server.client().await;
    let mut bystander = server.client().await;
    let mut writer = server.client().await;
    let watch_id = subscribe(&mut subscriber, &["demo-ahu2-sp", "demo-ahu1-dat"]).await;

    let sent = Instant::now();
    let answer = writer
        .request("w", "pointWrite", point_write("demo-ahu2-sp", 8.0, 70.0))
        .await;
    assert!(error_dis(&answer).is_none(), "{answer}");
    let push = next_push(&mut subscriber).await;
    let latency = sent.elapsed();
    assert_eq!(push["watchId"], watch_id.as_str());
    assert_eq!(row_ids(&json!({"grid": push["grid"]})), ["demo-ahu2-sp"]);
    // Generous bound for a loaded 2-core machine; typical is well under 10 ms.
    assert!(latency < Duration::from_millis(500), "{latency:?}");

    // The bystander gets nothing: its next frame is the answer to its request.
    let about = bystander.request("b", "about", empty_grid()).await;
    assert_eq!(about["id"], "b");

    // watchPoll reports the same change.
    let poll = subscriber
        .request(
            "p",
            "watchPoll",
            grid(json!({"watchId": watch_id}), &[], vec![]),
        )
        .await;
    assert_eq!(row_ids(&poll), ["demo-ahu2-sp"]);

    assert!(
        server
            .recorder
            .messages_sent()
            .iter()
            .any(|(op, _)| op == "push")
    );
    subscriber.close().await;
    bystander.close().await;
    writer.close().await;
    server.stop().await;
}

#[tokio::test]
async fn his_write_and_store_updates_are_pushed() {
    let server = start(|b| b).await;
    let mut subscriber = server.client().await;
    let watch_id = subscribe(&mut subscriber, &["demo-ahu1-dat", "demo-ahu2-zat"]).await;

    let his = grid(
        json!({"id": reference("demo-ahu1-dat")}),
        &["ts", "val"],
        vec![
            json!({"ts": {"_kind": "dateTime", "val": "2024-01-01T00:00:00-05:00", "tz": "New_York"},
                    "val": {"_kind": "number", "val": 55.0, "unit": "°F"}}),
        ],
    );
    subscriber
        .send_json(&json!({"id": "h", "op": "hisWrite", "grid": his}))
        .await;
    let push = next_push(&mut subscriber).await;
    assert_eq!(push["watchId"], watch_id.as_str());
    assert_eq!(row_ids(&json!({"grid": push["grid"]})), ["demo-ahu1-dat"]);

    // A change made by application code on the store.
    server
        .store
        .set_tag(
            "demo-ahu2-zat",
            "curVal",
            hs_core::value::Value::make_str("cold"),
        )
        .expect("set tag");
    let push = next_push(&mut subscriber).await;
    assert_eq!(row_ids(&json!({"grid": push["grid"]})), ["demo-ahu2-zat"]);
    subscriber.close().await;
    server.stop().await;
}

#[tokio::test]
async fn closed_watch_is_no_longer_pushed() {
    let server = start(|b| b).await;
    let mut subscriber = server.client().await;
    let watch_id = subscribe(&mut subscriber, &["demo-ahu2-sp"]).await;
    let unsub = subscriber
        .request(
            "u",
            "watchUnsub",
            grid(
                json!({"watchId": watch_id, "close": {"_kind": "marker"}}),
                &["id"],
                vec![],
            ),
        )
        .await;
    assert!(error_dis(&unsub).is_none());
    let answer = subscriber
        .request("w", "pointWrite", point_write("demo-ahu2-sp", 9.0, 71.0))
        .await;
    assert_eq!(answer["id"], "w");
    // Give a (wrong) push time to arrive; the next frame must still be the answer.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let about = subscriber.request("a", "about", empty_grid()).await;
    assert_eq!(about["id"], "a");
    assert!(
        !server
            .recorder
            .messages_sent()
            .iter()
            .any(|(op, _)| op == "push")
    );
    subscriber.close().await;
    server.stop().await;
}
