#![allow(clippy::unwrap_used, clippy::result_large_err)]
//! Replays haystack-py's captured server frames (`tests/fixtures/ws-*.jsonl`,
//! copied from the protocol transcripts) to the client: a scripted server
//! checks each client frame against the one haystack-py's client sent and
//! answers with the frames haystack-py's server sent.

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use hs_core::auth::AuthFailure;
use hs_core::ops::HisItem;
use hs_core::value::get_unit;
use hs_core::value::{DateTime, Dict, Number, Ref, Value};
use hs_ws_client::{ClientError, Grid, HaystackClient, WsClient, WsClientError};
use parking_lot::Mutex;
use serde_json::Value as Json;
use support::{Action, RecordingObserver, TestServer};

/// One client frame of a transcript and the server frames that followed it.
#[derive(Debug, Clone)]
struct Step {
    client: String,
    replies: Vec<Action>,
    reply_texts: Vec<String>,
}

fn load(name: &str, conn: u64) -> Vec<Step> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(format!("{name}.jsonl"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut steps: Vec<Step> = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let event: Json = serde_json::from_str(line).unwrap();
        if event["conn"].as_u64() != Some(conn) {
            continue;
        }
        match (
            event["dir"].as_str().unwrap(),
            event["kind"].as_str().unwrap(),
        ) {
            ("c2s", "text") => steps.push(Step {
                client: event["text"].as_str().unwrap().to_owned(),
                replies: vec![],
                reply_texts: vec![],
            }),
            ("s2c", "text") => {
                let step = steps
                    .last_mut()
                    .expect("server frame before any client frame");
                let text = event["text"].as_str().unwrap().to_owned();
                step.replies.push(Action::Text(text.clone()));
                step.reply_texts.push(text);
            }
            ("s2c", "close") => {
                if let Some(step) = steps.last_mut() {
                    step.replies.push(Action::CloseWith(
                        u16::try_from(event["code"].as_u64().unwrap()).unwrap(),
                        event["reason"].as_str().unwrap().to_owned(),
                    ));
                }
            }
            _ => {}
        }
    }
    steps
}

/// Numbers compared as floats (haystack-py writes `8.0` where a JSON
/// writer may write `8`); object key order is not significant; a unit is
/// compared as the libhaystack unit it names (haystack-py writes `s`,
/// libhaystack's symbol for the same unit is `sec`); a `null` cell is the
/// same as an absent one (docs/protocol.md 1.1: haystack-py writes `{"navId":null}`
/// and `{"val":null}`, hs_core's codec leaves the cell out).
fn normalize(value: &Json) -> Json {
    match value {
        Json::Number(n) => serde_json::json!(n.as_f64().unwrap()),
        Json::Array(items) => Json::Array(items.iter().map(normalize).collect()),
        Json::Object(map) => Json::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| match (k.as_str(), v.as_str()) {
                    ("unit", Some(unit))
                        if map.get("_kind").and_then(Json::as_str) == Some("number") =>
                    {
                        let canonical = get_unit(unit).map_or(unit, |u| u.symbol());
                        (k.clone(), Json::from(canonical))
                    }
                    _ => (k.clone(), normalize(v)),
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

struct Replay {
    server: TestServer,
    mismatches: Arc<Mutex<Vec<String>>>,
}

async fn replay(steps: Vec<Step>) -> Replay {
    let mismatches = Arc::new(Mutex::new(Vec::new()));
    let cursor = Arc::new(Mutex::new(0usize));
    let handler: support::Handler = {
        let mismatches = mismatches.clone();
        Arc::new(move |text: &str| {
            let mut at = cursor.lock();
            let Some(step) = steps.get(*at) else {
                mismatches
                    .lock()
                    .push(format!("unexpected extra frame {text}"));
                return vec![];
            };
            *at += 1;
            let got: Json = serde_json::from_str(text).unwrap();
            let want: Json = serde_json::from_str(&step.client).unwrap();
            // SCRAM nonces and proofs are random: compare the message type only.
            let same = if want["type"] == "scram" {
                got["type"] == "scram"
            } else {
                normalize(&got) == normalize(&want)
            };
            if !same {
                mismatches.lock().push(format!(
                    "client sent\n  {text}\nhaystack-py sent\n  {}",
                    step.client
                ));
            }
            step.replies.clone()
        })
    };
    Replay {
        server: TestServer::start(handler).await,
        mismatches,
    }
}

fn grid_of(json: &Json) -> Grid {
    serde_json::from_value(json.clone()).unwrap()
}

/// What the recorded reply to a request says: Ok(rows) or Err(dis).
fn expected(reply: &str) -> Result<usize, String> {
    let json: Json = serde_json::from_str(reply).unwrap();
    let grid = &json["grid"];
    if grid["meta"].get("err").is_some() {
        Err(grid["meta"]["dis"].as_str().unwrap().to_owned())
    } else {
        Ok(grid["rows"].as_array().unwrap().len())
    }
}

fn check(result: &Result<Grid, ClientError>, want: Result<usize, String>, what: &str) {
    let failure = result
        .as_ref()
        .err()
        .and_then(|e| e.downcast_ref::<WsClientError>());
    match (result, failure, want) {
        (Ok(grid), _, Ok(rows)) => assert_eq!(grid.rows.len(), rows, "{what}"),
        (_, Some(WsClientError::ErrorGrid { dis, .. }), Err(want)) => {
            assert_eq!(dis, &want, "{what}")
        }
        (got, _, want) => panic!("{what}: got {got:?}, want {want:?}"),
    }
}

/// Every request frame of the transcript, sent through `call`/`batch`
/// with the grid haystack-py sent; the client must produce the same frame
/// and decode the recorded answer.
async fn replay_raw(name: &str) {
    let steps = load(name, 0);
    let r = replay(steps.clone()).await;
    let rec = Arc::new(RecordingObserver::new());
    let client = WsClient::builder(&r.server.url)
        .observer(rec.clone())
        .connect()
        .await
        .unwrap();
    let mut requests = 0;
    for step in &steps {
        let frame: Json = serde_json::from_str(&step.client).unwrap();
        match &frame {
            Json::Array(items) => {
                let batch: Vec<(String, Grid)> = items
                    .iter()
                    .map(|i| (i["op"].as_str().unwrap().to_owned(), grid_of(&i["grid"])))
                    .collect();
                requests += batch.len();
                let results = client.batch(batch).await;
                let reply: Json = serde_json::from_str(&step.reply_texts[0]).unwrap();
                for (result, item) in results.iter().zip(reply.as_array().unwrap()) {
                    check(
                        result,
                        expected(&format!(r#"{{"grid":{}}}"#, item["grid"])),
                        name,
                    );
                }
            }
            _ => {
                let handle = match frame.get("ch").and_then(Json::as_str) {
                    Some(ch) => client.with_channel(ch),
                    None => client.clone(),
                };
                requests += 1;
                let result = handle
                    .call(frame["op"].as_str().unwrap(), grid_of(&frame["grid"]))
                    .await;
                check(&result, expected(&step.reply_texts[0]), name);
            }
        }
    }
    assert_eq!(r.mismatches.lock().clone(), Vec::<String>::new(), "{name}");
    assert_eq!(
        rec.requests().len() + rec.errors().len(),
        requests,
        "{name}: one event per request"
    );
    client.close().await.unwrap();
}

#[tokio::test]
async fn captured_exchanges_replay_through_call_and_batch() {
    for name in [
        "ws-op-about",
        "ws-op-ops",
        "ws-op-formats",
        "ws-op-close",
        "ws-op-read-filter",
        "ws-op-read-ids",
        "ws-op-nav",
        "ws-op-hisRead",
        "ws-op-hisWrite",
        "ws-op-pointWrite",
        "ws-op-watchSub",
        "ws-op-watchUnsub",
        "ws-op-watchPoll",
        "ws-op-invokeAction",
        "ws-batch",
        "ws-unknown-op",
        "ws-malformed-filter",
        "ws-read-cache-defect",
        "ws-pool-channels",
    ] {
        replay_raw(name).await;
    }
}

fn r(id: &str) -> Ref {
    Ref::make(id, None)
}

fn unit_number(val: f64, unit: &str) -> Number {
    Number::make_with_unit(val, get_unit(unit).unwrap())
}

/// The typed methods send exactly what haystack-py's client sent.
#[tokio::test]
async fn typed_methods_send_haystack_py_frames() {
    let sp = r("demo-ahu2-sp");

    let rp = replay(load("ws-op-nav", 0)).await;
    let c = WsClient::connect(&rp.server.url).await.unwrap();
    assert_eq!(c.nav(None).await.unwrap().rows.len(), 1);
    c.nav(Some("demo-site")).await.unwrap();
    c.nav(Some("demo-ahu1")).await.unwrap();
    assert!(
        rp.mismatches.lock().is_empty(),
        "{:?}",
        rp.mismatches.lock()
    );

    let rp = replay(load("ws-op-read-filter", 0)).await;
    let c = WsClient::connect(&rp.server.url).await.unwrap();
    assert_eq!(
        c.read_filter("point and temp and equipRef->ahu", Some(2))
            .await
            .unwrap()
            .rows
            .len(),
        2
    );
    c.read_filter("site", None).await.unwrap();
    assert!(
        c.read_filter("nosuchtag", None)
            .await
            .unwrap()
            .rows
            .is_empty()
    );
    assert!(
        rp.mismatches.lock().is_empty(),
        "{:?}",
        rp.mismatches.lock()
    );

    let rp = replay(load("ws-op-read-ids", 0)).await;
    let c = WsClient::connect(&rp.server.url).await.unwrap();
    let got = c
        .read_ids(&[r("demo-ahu1-dat"), sp.clone(), r("no-such-id")])
        .await
        .unwrap();
    assert_eq!(got.rows.len(), 2);
    assert!(
        rp.mismatches.lock().is_empty(),
        "{:?}",
        rp.mismatches.lock()
    );

    let rp = replay(load("ws-op-pointWrite", 0)).await;
    let c = WsClient::connect(&rp.server.url).await.unwrap();
    assert_eq!(c.point_write_array(&sp).await.unwrap().rows.len(), 17);
    c.point_write(
        &sp,
        8,
        Some(&Value::Number(unit_number(68.0, "°F"))),
        "demo-user",
        None,
    )
    .await
    .unwrap();
    c.point_write(
        &sp,
        16,
        Some(&Value::Number(unit_number(72.0, "°F"))),
        "demo-user",
        Some(unit_number(30.0, "min")),
    )
    .await
    .unwrap();
    c.point_write_array(&sp).await.unwrap();
    let err = c
        .point_write(&sp, 18, Some(&Value::make_number(1.0)), "demo-user", None)
        .await
        .unwrap_err()
        .downcast::<WsClientError>()
        .unwrap();
    assert!(err.is_error_grid(), "{err}");
    c.point_write(&sp, 8, None, "demo-user", None)
        .await
        .unwrap();
    c.point_write_array(&sp).await.unwrap();
    assert!(
        rp.mismatches.lock().is_empty(),
        "{:?}",
        rp.mismatches.lock()
    );

    let rp = replay(load("ws-op-watchSub", 0)).await;
    let c = WsClient::connect(&rp.server.url).await.unwrap();
    let sub = c
        .watch_sub(
            None,
            "demo watch",
            &[r("demo-ahu1-dat"), sp.clone()],
            Some(Duration::from_secs(60)),
        )
        .await
        .unwrap();
    let id = hs_ws_client::requests::watch_id(&sub).unwrap();
    c.watch_sub(Some(&id), "demo watch", &[r("demo-ahu2-zat")], None)
        .await
        .unwrap();
    assert!(
        rp.mismatches.lock().is_empty(),
        "{:?}",
        rp.mismatches.lock()
    );

    let rp = replay(load("ws-op-watchUnsub", 0)).await;
    let c = WsClient::connect(&rp.server.url).await.unwrap();
    let sub = c
        .watch_sub(None, "demo watch", &[r("demo-ahu1-dat"), sp.clone()], None)
        .await
        .unwrap();
    let id = hs_ws_client::requests::watch_id(&sub).unwrap();
    c.watch_unsub(&id, &[r("demo-ahu1-dat")], false)
        .await
        .unwrap();
    c.watch_unsub(&id, &[], true).await.unwrap();
    c.watch_poll(&id, true).await.unwrap();
    assert!(
        rp.mismatches.lock().is_empty(),
        "{:?}",
        rp.mismatches.lock()
    );

    let rp = replay(load("ws-op-hisWrite", 0)).await;
    let c = WsClient::connect(&rp.server.url).await.unwrap();
    let samples: Vec<HisItem> = [
        ("00:00", 55.0),
        ("00:15", 55.5),
        ("00:30", 56.25),
        ("00:45", 57.0),
    ]
    .iter()
    .map(|(t, v)| {
        let ts = DateTime::parse_from_rfc3339_with_timezone(
            &format!("2024-01-01T{t}:00-05:00"),
            "New_York",
        )
        .unwrap();
        HisItem {
            ts,
            val: Value::Number(unit_number(*v, "°F")),
        }
    })
    .collect();
    c.his_write(&r("demo-ahu2-dat"), &samples).await.unwrap();
    assert_eq!(
        c.his_read(&r("demo-ahu2-dat"), "2024-01-01")
            .await
            .unwrap()
            .rows
            .len(),
        4
    );
    assert!(
        rp.mismatches.lock().is_empty(),
        "{:?}",
        rp.mismatches.lock()
    );

    let rp = replay(load("ws-op-invokeAction", 0)).await;
    let c = WsClient::connect(&rp.server.url).await.unwrap();
    let mut args = Dict::new();
    args.insert("level".into(), Value::make_number(8.0));
    args.insert("note".into(), Value::make_str("demo"));
    let err = c
        .invoke_action(&sp, "reset", &args)
        .await
        .unwrap_err()
        .downcast::<WsClientError>()
        .unwrap();
    assert_eq!(
        err.to_string(),
        "invokeAction: server error: Operation 'invokeAction' is not supported by this server"
    );
    assert!(
        rp.mismatches.lock().is_empty(),
        "{:?}",
        rp.mismatches.lock()
    );

    for (name, call) in [
        ("ws-op-about", "about"),
        ("ws-op-ops", "ops"),
        ("ws-op-formats", "formats"),
        ("ws-op-close", "close"),
    ] {
        let rp = replay(load(name, 0)).await;
        let c = WsClient::connect(&rp.server.url).await.unwrap();
        let result = match call {
            "about" => c.about().await,
            "ops" => c.ops().await,
            "formats" => c.formats().await,
            _ => c.close_session().await,
        };
        result.unwrap();
        assert!(
            rp.mismatches.lock().is_empty(),
            "{name}: {:?}",
            rp.mismatches.lock()
        );
    }
}

#[tokio::test]
async fn captured_push_reaches_the_watch_stream() {
    let rp = replay(load("ws-watch-push", 0)).await;
    let rec = Arc::new(RecordingObserver::new());
    let c = WsClient::builder(&rp.server.url)
        .observer(rec.clone())
        .connect()
        .await
        .unwrap();
    let mut pushes = c.watch_events();
    let steps = load("ws-watch-push", 0);
    for step in &steps {
        let frame: Json = serde_json::from_str(&step.client).unwrap();
        c.call(frame["op"].as_str().unwrap(), grid_of(&frame["grid"]))
            .await
            .unwrap();
    }
    let push = tokio::time::timeout(Duration::from_secs(5), pushes.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(push.watch_id, "w-b2641d6b");
    assert!(!push.grid.rows.is_empty());
    let last = steps.last().unwrap().reply_texts.last().unwrap().len();
    assert!(rec.messages_recv().contains(&("push".to_owned(), last)));
    assert!(
        rp.mismatches.lock().is_empty(),
        "{:?}",
        rp.mismatches.lock()
    );
}

#[tokio::test]
async fn captured_auth_refusals() {
    // Unknown user: authErr right after hello.
    let rp = replay(load("ws-scram-unknown-user", 0)).await;
    let err = WsClient::builder(&rp.server.url)
        .credentials("nobody", "x")
        .connect()
        .await
        .unwrap_err();
    assert_eq!(err.kind().as_str(), "auth", "{err}");
    assert!(
        rp.mismatches.lock().is_empty(),
        "{:?}",
        rp.mismatches.lock()
    );

    // Token accepted: silent; the requests go through.
    let rp = replay(load("ws-token-success", 0)).await;
    let c = WsClient::builder(&rp.server.url)
        .token("demo-static-token")
        .connect()
        .await
        .unwrap();
    let steps = load("ws-token-success", 0);
    for step in steps.iter().skip(1) {
        let frame: Json = serde_json::from_str(&step.client).unwrap();
        c.call(frame["op"].as_str().unwrap(), grid_of(&frame["grid"]))
            .await
            .unwrap();
    }
    assert!(
        rp.mismatches.lock().is_empty(),
        "{:?}",
        rp.mismatches.lock()
    );

    // Token refused: the server just closes (1000, no reason); the next
    // request says the token was refused.
    let rp = replay(load("ws-token-failure", 0)).await;
    let rec = Arc::new(RecordingObserver::new());
    let c = WsClient::builder(&rp.server.url)
        .token("wrong-token")
        .observer(rec.clone())
        .connect()
        .await
        .unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(5), c.closed())
        .await
        .unwrap();
    let err = c
        .about()
        .await
        .unwrap_err()
        .downcast::<WsClientError>()
        .unwrap();
    assert_eq!(
        err.auth_failure(),
        Some(&AuthFailure::TokenRejected),
        "{err}"
    );
    assert_eq!(err.close_code(), Some(1000));
    assert_eq!(rec.errors(), vec![("about".to_owned(), "auth".to_owned())]);
}

/// haystack-py's FastAPI `/api/ws` takes the token of an HTTP login in
/// `{"authToken":..}` and answers nothing; then every op works.
#[tokio::test]
async fn fastapi_endpoint_accepts_an_http_login_token() {
    let steps = load("fastapi-ws-token", 1);
    let token: Json = serde_json::from_str(&steps[0].client).unwrap();
    let token = token["authToken"].as_str().unwrap();
    let rp = replay(steps.clone()).await;
    let c = WsClient::builder(&rp.server.url)
        .token(token)
        .connect()
        .await
        .unwrap();
    for step in steps.iter().skip(1) {
        let frame: Json = serde_json::from_str(&step.client).unwrap();
        match &frame {
            Json::Array(items) => {
                let batch = items
                    .iter()
                    .map(|i| (i["op"].as_str().unwrap().to_owned(), grid_of(&i["grid"])))
                    .collect();
                for result in c.batch(batch).await {
                    result.unwrap();
                }
            }
            _ => {
                let result = c
                    .call(frame["op"].as_str().unwrap(), grid_of(&frame["grid"]))
                    .await;
                check(&result, expected(&step.reply_texts[0]), "fastapi-ws-token");
            }
        }
    }
    assert!(
        rp.mismatches.lock().is_empty(),
        "{:?}",
        rp.mismatches.lock()
    );
    c.close().await.unwrap();
}

/// FastAPI refuses a bad token, and a SCRAM `hello`, with close 4003
/// "Authentication required": the error carries the code and the reason.
#[tokio::test]
async fn fastapi_refusals_carry_the_close_code_and_reason() {
    let rp = replay(load("fastapi-ws-token-failure", 0)).await;
    let rec = Arc::new(RecordingObserver::new());
    let c = WsClient::builder(&rp.server.url)
        .token("not-a-valid-token")
        .observer(rec.clone())
        .connect()
        .await
        .unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(5), c.closed())
        .await
        .unwrap();
    let err = c
        .read_filter("site", None)
        .await
        .unwrap_err()
        .downcast::<WsClientError>()
        .unwrap();
    assert_eq!(
        err.auth_failure(),
        Some(&AuthFailure::TokenRejected),
        "{err}"
    );
    assert_eq!(err.close_code(), Some(4003));
    assert_eq!(err.close_reason(), Some("Authentication required"));
    assert_eq!(
        err.to_string(),
        "authentication failed: the auth token was refused as unknown, expired or revoked \
         (close code 4003: Authentication required)"
    );
    assert_eq!(rec.errors(), vec![("read".to_owned(), "auth".to_owned())]);
    assert!(
        rp.mismatches.lock().is_empty(),
        "{:?}",
        rp.mismatches.lock()
    );

    let rp = replay(load("fastapi-ws-token-failure", 1)).await;
    let err = WsClient::builder(&rp.server.url)
        .credentials("demo", "demo-pass")
        .connect()
        .await
        .unwrap_err();
    assert_eq!(err.kind().as_str(), "auth");
    assert_eq!(err.auth_failure(), None, "not a refusal of the credentials");
    assert_eq!(err.close_code(), Some(4003));
    assert_eq!(err.close_reason(), Some("Authentication required"));
    assert_eq!(
        err.to_string(),
        "authentication failed: the server closed the connection during the SCRAM exchange \
         (close code 4003: Authentication required)"
    );
    assert!(
        rp.mismatches.lock().is_empty(),
        "{:?}",
        rp.mismatches.lock()
    );
}
