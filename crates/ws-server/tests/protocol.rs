//! Envelopes, every op, batches, subprotocols, capabilities, malformed input
//! and the observer events they produce, over real sockets.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use common::*;
use hs_core::observe::RecordedEvent;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn about_request_fires_the_exact_events() {
    let server = start(|b| b).await;
    let mut client = server.client().await;
    let request = json!({"id": "0", "op": "about", "grid": empty_grid()}).to_string();
    client.send_text(&request).await;
    let answer = client.recv_text().await;
    let response: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(response["id"], "0");
    assert!(error_dis(&response).is_none());
    let peer = client.local.to_string();
    client.close().await;
    assert!(server.wait_disconnects(1).await);
    let events = server.recorder.events();
    assert_eq!(events.len(), 5, "{events:?}");
    assert_eq!(
        events[0],
        RecordedEvent::WsConnect {
            remote_addr: peer.clone()
        }
    );
    assert_eq!(
        events[1],
        RecordedEvent::WsMessageRecv {
            op: "about".into(),
            byte_count: request.len()
        }
    );
    assert_eq!(
        events[2],
        RecordedEvent::WsMessageSent {
            op: "about".into(),
            byte_count: answer.len()
        }
    );
    assert!(
        matches!(&events[3], RecordedEvent::Request { op, duration } if op == "about" && !duration.is_zero())
    );
    assert_eq!(events[4], RecordedEvent::WsDisconnect { remote_addr: peer });
    server.stop().await;
}

#[tokio::test]
async fn byte_counts_are_utf8_bytes_not_chars() {
    let server = start(|b| b).await;
    let mut client = server.client().await;
    // `°F` is two bytes in UTF-8.
    let write = grid(
        json!({}),
        &["id", "level", "val", "who"],
        vec![json!({"id": reference("demo-ahu2-sp"), "level": 8.0,
                    "val": {"_kind": "number", "val": 68.0, "unit": "°F"}, "who": "é-user"})],
    );
    let text = json!({"id": "w", "op": "pointWrite", "grid": write}).to_string();
    assert_ne!(text.len(), text.chars().count());
    client.send_text(&text).await;
    let response = client.recv_json().await;
    assert!(error_dis(&response).is_none(), "{response}");
    assert!(
        server
            .recorder
            .messages_recv()
            .contains(&("pointWrite".to_owned(), text.len()))
    );
    client.close().await;
    server.stop().await;
}

#[tokio::test]
async fn every_op_answers() {
    let server = start(|b| b).await;
    let mut client = server.client().await;

    for op in ["about", "ops", "formats", "close"] {
        let response = client.request(op, op, empty_grid()).await;
        assert_eq!(response["id"], op);
        assert!(error_dis(&response).is_none(), "{op}: {response}");
    }
    let about = client.request("a", "about", empty_grid()).await;
    assert!(about["grid"]["rows"][0].get("productName").is_some());

    let read = client
        .request("r1", "read", read_ids(&["demo-ahu1-dat", "demo-ahu2-sp"]))
        .await;
    assert_eq!(row_ids(&read), ["demo-ahu1-dat", "demo-ahu2-sp"]);
    let read = client.request("r2", "read", read_filter("equip")).await;
    let mut equips = row_ids(&read);
    equips.sort();
    assert_eq!(equips, ["demo-ahu1", "demo-ahu2"]);

    let nav = client
        .request(
            "n",
            "nav",
            grid(json!({}), &["navId"], vec![json!({"navId": null})]),
        )
        .await;
    assert_eq!(row_ids(&nav), ["demo-site"]);

    let his = grid(
        json!({"id": reference("demo-ahu1-dat")}),
        &["ts", "val"],
        vec![
            json!({"ts": {"_kind": "dateTime", "val": "2024-01-01T00:00:00-05:00", "tz": "New_York"},
                    "val": {"_kind": "number", "val": 55.0, "unit": "°F"}}),
        ],
    );
    let written = client.request("hw", "hisWrite", his).await;
    assert!(error_dis(&written).is_none(), "{written}");
    let his_read = client
        .request(
            "hr",
            "hisRead",
            grid(
                json!({}),
                &["id", "range"],
                vec![json!({"id": reference("demo-ahu1-dat"), "range": "2024-01-01"})],
            ),
        )
        .await;
    assert!(error_dis(&his_read).is_none(), "{his_read}");
    assert_eq!(his_read["grid"]["rows"].as_array().map(Vec::len), Some(1));

    let array = client
        .request("pw", "pointWrite", read_ids(&["demo-ahu2-sp"]))
        .await;
    assert_eq!(array["grid"]["rows"].as_array().map(Vec::len), Some(17));

    let sub = client
        .request(
            "ws",
            "watchSub",
            grid(
                json!({"watchDis": "t"}),
                &["id"],
                vec![json!({"id": reference("demo-ahu1-dat")})],
            ),
        )
        .await;
    let watch_id = sub["grid"]["meta"]["watchId"]
        .as_str()
        .expect("watchId")
        .to_owned();
    let poll = client
        .request(
            "wp",
            "watchPoll",
            grid(json!({"watchId": watch_id}), &[], vec![]),
        )
        .await;
    assert!(error_dis(&poll).is_none(), "{poll}");
    let unsub = client
        .request(
            "wu",
            "watchUnsub",
            grid(
                json!({"watchId": watch_id, "close": {"_kind": "marker"}}),
                &["id"],
                vec![],
            ),
        )
        .await;
    assert!(error_dis(&unsub).is_none(), "{unsub}");

    let action = client
        .request(
            "ia",
            "invokeAction",
            grid(
                json!({"id": reference("demo-ahu1"), "action": "reset"}),
                &[],
                vec![],
            ),
        )
        .await;
    assert_eq!(action["id"], "ia");
    assert!(
        error_dis(&action).is_some(),
        "no action registered: {action}"
    );

    client.close().await;
    assert!(server.wait_disconnects(1).await);
    // One outcome per request.
    let requests = server.recorder.requests().len();
    let errors = server.recorder.errors().len();
    assert_eq!(requests + errors, 15);
    assert_eq!(errors_of(&server.recorder, "invokeAction").len(), 1);
    server.stop().await;
}

#[tokio::test]
async fn envelope_ids_and_channels_are_echoed() {
    let server = start(|b| b).await;
    let mut client = server.client().await;
    client.send_text(r#"{"op":"about"}"#).await;
    let response = client.recv_json().await;
    assert!(response.get("id").is_none());
    client
        .send_text(r#"{"id":7,"op":"about","grid":{"_kind":"grid","meta":{},"cols":[],"rows":[]}}"#)
        .await;
    assert_eq!(client.recv_json().await["id"], 7);
    client
        .send_text(r#"{"id":"a1","op":"about","ch":"tenant-1"}"#)
        .await;
    let response = client.recv_text().await;
    assert!(
        response.ends_with(r#""id":"a1","ch":"tenant-1"}"#),
        "{response}"
    );
    client.send_text(r#"{"id":"r1","op":"read"}"#).await;
    let response = client.recv_json().await;
    assert_eq!(response["id"], "r1");
    client.close().await;
    server.stop().await;
}

#[tokio::test]
async fn many_requests_in_flight_are_all_answered() {
    let server = start(|b| b).await;
    let mut client = server.client().await;
    for n in 0..50 {
        client
            .send_json(
                &json!({"id": n.to_string(), "op": "read", "grid": read_ids(&["demo-ahu1-dat"])}),
            )
            .await;
    }
    let mut seen = Vec::new();
    for _ in 0..50 {
        let response = client.recv_json().await;
        assert_eq!(row_ids(&response), ["demo-ahu1-dat"]);
        seen.push(response["id"].as_str().unwrap().parse::<u32>().unwrap());
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..50).collect::<Vec<_>>());
    client.close().await;
    server.stop().await;
}

#[tokio::test]
async fn batch_is_answered_in_order_with_one_outcome_per_item() {
    let server = start(|b| b).await;
    let mut client = server.client().await;
    let batch = json!([
        {"id": "b0", "op": "about", "ch": "x"},
        {"id": "b1", "op": "read", "grid": read_ids(&["demo-ahu2-sp"])},
        {"id": "b2", "op": "fooBar"},
        {"id": "b3", "op": "read", "grid": read_filter("site and (")},
        5
    ])
    .to_string();
    client.send_text(&batch).await;
    let answer = client.recv_text().await;
    let items: Vec<serde_json::Value> = serde_json::from_str(&answer).unwrap();
    // Items that are not objects are dropped (as haystack-py does).
    assert_eq!(items.len(), 4);
    assert_eq!(items[0]["id"], "b0");
    assert!(items[0].get("ch").is_none(), "batch answers carry no ch");
    assert_eq!(row_ids(&items[1]), ["demo-ahu2-sp"]);
    assert!(error_dis(&items[2]).is_some());
    assert!(error_dis(&items[3]).is_some());
    client.close().await;
    assert!(server.wait_disconnects(1).await);
    let recorder = &server.recorder;
    assert_eq!(
        recorder.messages_recv(),
        [("batch".to_owned(), batch.len())]
    );
    assert_eq!(
        recorder.messages_sent(),
        [("batch".to_owned(), answer.len())]
    );
    let ok: Vec<String> = recorder.requests().into_iter().map(|(op, _)| op).collect();
    assert_eq!(ok, ["about", "read"]);
    let mut errors = recorder.errors();
    errors.sort();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors
            .iter()
            .any(|(op, kind)| op == "fooBar" && kind == "unknown_op")
    );
    assert!(
        errors
            .iter()
            .any(|(op, kind)| op == "read" && kind == "bad_request")
    );
    server.stop().await;
}

#[tokio::test]
async fn batch_over_the_cap_is_refused_and_empty_batch_unanswered() {
    let server = start(|b| b.config(hs_ws_server::WsConfig::default().with_max_batch(3))).await;
    let mut client = server.client().await;
    client.send_text("[]").await;
    let items: Vec<_> = (0..4)
        .map(|n| json!({"id": n.to_string(), "op": "about"}))
        .collect();
    client.send_json(&json!(items)).await;
    let response = client.recv_json().await;
    assert!(
        error_dis(&response).unwrap().contains("exceeds"),
        "{response}"
    );
    assert_eq!(errors_of(&server.recorder, "batch"), ["too_large"]);
    // The connection still serves.
    let about = client.request("after", "about", empty_grid()).await;
    assert_eq!(about["id"], "after");
    client.close().await;
    server.stop().await;
}

#[tokio::test]
async fn the_configured_batch_limit_applies_above_and_below_the_reference_cap() {
    let batch = |n: usize| {
        let items: Vec<_> = (0..n)
            .map(|n| json!({"id": n.to_string(), "op": "about"}))
            .collect();
        json!(items)
    };
    // Over the limit, configured or the default (the reference's 1,000):
    // one error, observed once as a `batch` too large.
    for (max, len) in [(Some(3), 4), (None, 1_001)] {
        let server = start(|b| match max {
            Some(max) => b.config(hs_ws_server::WsConfig::default().with_max_batch(max)),
            None => b,
        })
        .await;
        let mut client = server.client().await;
        client.send_json(&batch(len)).await;
        let response = client.recv_json().await;
        let limit = max.unwrap_or(hs_core::ws::MAX_BATCH);
        assert_eq!(
            error_dis(&response).as_deref(),
            Some(format!("batch of {len} items exceeds the limit of {limit}").as_str()),
            "{response}"
        );
        assert_eq!(response["grid"]["meta"]["errKind"], "too_large");
        let error = |e: &hs_core::observe::RecordedEvent| {
            matches!(e, hs_core::observe::RecordedEvent::Error { .. })
        };
        assert!(
            server
                .wait_for(move |events| events.iter().any(error))
                .await
        );
        assert_eq!(errors_of(&server.recorder, "batch"), ["too_large"]);
        client.close().await;
        server.stop().await;
    }
    // A limit above the reference's is the one that applies.
    let server = start(|b| b.config(hs_ws_server::WsConfig::default().with_max_batch(1_200))).await;
    let mut client = server.client().await;
    client.send_json(&batch(1_001)).await;
    let response = client.recv_json().await;
    let answers = response.as_array().expect("a batch answer");
    assert_eq!(answers.len(), 1_001);
    assert!(answers.iter().all(|answer| error_dis(answer).is_none()));
    client.close().await;
    server.stop().await;
}

#[tokio::test]
async fn subprotocol_is_echoed_only_when_offered() {
    let server = start(|b| b).await;
    let mut offered = Client::try_connect(server.addr, Some("haystack"))
        .await
        .unwrap();
    assert_eq!(offered.protocol.as_deref(), Some("haystack"));
    let mut none = Client::try_connect(server.addr, None).await.unwrap();
    assert_eq!(none.protocol, None);
    assert_eq!(none.request("1", "about", empty_grid()).await["id"], "1");
    assert_eq!(offered.request("2", "about", empty_grid()).await["id"], "2");
    offered.close().await;
    none.close().await;
    server.stop().await;
}

#[tokio::test]
async fn capabilities_are_answered_as_v1() {
    let server = start(|b| b).await;
    let mut client = server.client().await;
    let hello = r#"{"type":"capabilities","compression":["zlib"],"chunked":true,"version":2}"#;
    client.send_text(hello).await;
    let reply = client.recv_json().await;
    assert_eq!(reply["type"], "capabilities");
    assert!(reply["compression"].is_null(), "{reply}");
    assert_eq!(reply["chunked"], false);
    assert_eq!(
        server.recorder.messages_recv(),
        [("capabilities".to_owned(), hello.len())]
    );
    client.close().await;
    server.stop().await;
}

#[tokio::test]
async fn malformed_input_gets_error_grids_and_the_connection_stays_open() {
    let server = start(|b| b).await;
    let mut client = server.client().await;
    let mut other = server.client().await;
    let cases: &[&str] = &[
        "this is not json",
        "42",
        "\"text\"",
        "null",
        r#"{"id":"g","op":"read","grid":{"_kind":"grid","meta":{},"cols":"nope","rows":[]}}"#,
        r#"{"id":"k","op":"read","grid":{"_kind":"bogus"}}"#,
        r#"{"id":"u","op":"fooBar","grid":{"_kind":"grid","meta":{},"cols":[],"rows":[]}}"#,
        r#"{"id":"f","op":"read","grid":{"_kind":"grid","meta":{},"cols":[{"name":"filter"}],"rows":[{"filter":"site and ("}]}}"#,
        r#"{"id":5,"op":"#,
    ];
    for case in cases {
        client.send_text(case).await;
        let response = client.recv_json().await;
        assert!(error_dis(&response).is_some(), "{case} -> {response}");
    }
    // Ids are echoed on error grids when they could be read.
    client.send_text(r#"{"id":"u2","op":"fooBar"}"#).await;
    let unknown = client.recv_json().await;
    assert_eq!(unknown["id"], "u2");
    assert!(error_dis(&unknown).unwrap().contains("fooBar"));

    // Binary frames: UTF-8 JSON is served, anything else gets an error grid.
    let about = json!({"id": "bin", "op": "about"}).to_string();
    client.ws.send_binary(about.into_bytes()).await;
    assert_eq!(client.recv_json().await["id"], "bin");
    client.ws.send_binary(vec![0x00, 0x01, 0xff, 0xfe]).await;
    assert!(error_dis(&client.recv_json().await).is_some());

    // Still serving, on this connection and the other.
    assert_eq!(
        client.request("ok", "about", empty_grid()).await["id"],
        "ok"
    );
    assert_eq!(
        other.request("ok2", "about", empty_grid()).await["id"],
        "ok2"
    );
    let invalid = server
        .recorder
        .messages_recv()
        .iter()
        .filter(|(op, _)| op == "invalid")
        .count();
    assert!(invalid >= 6, "{invalid}");
    assert_eq!(
        server
            .recorder
            .count_event(hs_core::observe::Event::WsDisconnect),
        0
    );
    client.close().await;
    other.close().await;
    server.stop().await;
}

/// Sends a binary frame (helper trait to keep the tests short).
trait SendBinary {
    async fn send_binary(&mut self, bytes: Vec<u8>);
}

impl SendBinary for Socket {
    async fn send_binary(&mut self, bytes: Vec<u8>) {
        use futures_util::SinkExt;
        self.send(Message::binary(bytes)).await.unwrap();
    }
}

/// Ids come back as their exact JSON text, on the fast paths (`about`, a
/// plain `read`) and the general one (extra members, batches): integers
/// beyond 64 bits, numbers beyond `f64`, escaped strings, objects.
#[tokio::test]
async fn request_ids_are_echoed_exactly_as_received() {
    let server = start(|b| b).await;
    let mut client = server.client().await;
    let read = read_ids(&["demo-ahu1-dat"]).to_string();
    for id in [
        "18446744073709551617",
        "1e400",
        "-0.10",
        r#""a\u0041\/""#,
        r#"{"n": [1, 2.50]}"#,
    ] {
        for request in [
            format!(r#"{{"id":{id},"op":"about"}}"#),
            format!(r#"{{"id":{id},"op":"read","grid":{read}}}"#),
            format!(r#"{{"id":{id},"op":"about","extra":true}}"#),
            format!(r#"{{"id":{id},"op":"read","grid":7}}"#),
        ] {
            client.send_text(&request).await;
            let answer = client.recv_text().await;
            assert!(
                answer.ends_with(&format!(r#","id":{id}}}"#)),
                "{request} -> {answer}"
            );
        }
        client
            .send_text(&format!(r#"[{{"id":{id},"op":"about"}}]"#))
            .await;
        let answer = client.recv_text().await;
        assert!(answer.ends_with(&format!(r#","id":{id}}}]"#)), "{answer}");
    }
    client.close().await;
    server.stop().await;
}
