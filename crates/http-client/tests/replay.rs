//! Replays haystack-py's captured HTTP exchanges (tests/fixtures, copied
//! from the protocol transcripts): a scripted server answers with the
//! captured responses, the client must decode them (the SCRAM handshake
//! included, server signature checked), and the client's requests must be
//! shaped like the captured ones: method, path, Content-Type, Accept,
//! Authorization, and the request grid.

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use hs_core::auth::AuthFailure;
use hs_core::codec::{self, Format};
use hs_core::observe::{Event, RecordingObserver};
use hs_core::ops::HisItem;
use hs_core::value::{DateTime, Dict, Number, Ref, Value, get_unit};
use hs_http_client::{HaystackClient, HttpClient, HttpClientError, RetryPolicy};
use serde_json::Value as Json;
use support::{Action, RawRequest, RawServer};

/// The captured requests and responses of a transcript, in wire order.
struct Capture {
    requests: Vec<Json>,
    responses: Vec<Json>,
}

fn capture(name: &str) -> Capture {
    let path = format!("{}/tests/fixtures/{name}.jsonl", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(path).unwrap();
    let events: Vec<Json> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let of_kind = |kind: &str| {
        events
            .iter()
            .filter(|e| e["kind"] == kind)
            .cloned()
            .collect::<Vec<_>>()
    };
    Capture {
        requests: of_kind("http-request"),
        responses: of_kind("http-response"),
    }
}

fn header<'a>(event: &'a Json, name: &str) -> Option<&'a str> {
    event["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h[0].as_str().unwrap().eq_ignore_ascii_case(name))
        .map(|h| h[1].as_str().unwrap())
}

/// The captured responses as the scripted server's actions.
fn script(capture: &Capture) -> Vec<Action> {
    capture
        .responses
        .iter()
        .map(|response| Action::Respond {
            status: response["status"].as_u64().unwrap() as u16,
            headers: ["content-type", "www-authenticate", "authentication-info"]
                .iter()
                .filter_map(|name| {
                    header(response, name).map(|v| ((*name).to_owned(), v.to_owned()))
                })
                .collect(),
            body: response["body"].as_str().unwrap().to_owned(),
        })
        .collect()
}

/// The client nonces of every SCRAM client-first in the capture.
fn nonces(capture: &Capture) -> Vec<String> {
    capture
        .requests
        .iter()
        .filter_map(|r| header(r, "Authorization"))
        .filter_map(|a| a.strip_prefix("SCRAM "))
        .filter_map(|params| params.split(", data=").nth(1))
        .filter_map(|data| {
            let text = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(data)
                .ok()?;
            let text = String::from_utf8(text).ok()?;
            text.strip_prefix("n,,")
                .and_then(|bare| bare.split(",r=").nth(1))
                .map(str::to_owned)
        })
        .collect()
}

fn grid_of(body: &str, content_type: Option<&str>) -> hs_core::value::Grid {
    let format = Format::from_content_type(content_type).unwrap();
    codec::decode_grid(body.as_bytes(), format).unwrap()
}

/// The client's requests have the captured requests' shape.
fn assert_same_shape(sent: &[RawRequest], captured: &[Json]) {
    assert_eq!(sent.len(), captured.len(), "request count");
    for (i, (ours, theirs)) in sent.iter().zip(captured).enumerate() {
        let at = format!("request {i} ({} {})", ours.method, ours.path);
        assert_eq!(ours.method, theirs["method"].as_str().unwrap(), "{at}");
        assert_eq!(ours.path, theirs["path"].as_str().unwrap(), "{at}");
        assert_eq!(
            ours.header("authorization"),
            header(theirs, "Authorization"),
            "{at}"
        );
        assert_eq!(
            ours.header("content-type"),
            header(theirs, "Content-Type"),
            "{at}"
        );
        assert_eq!(ours.header("accept"), header(theirs, "Accept"), "{at}");
        let body = theirs["body"].as_str().unwrap();
        if !body.is_empty() {
            let content_type = header(theirs, "Content-Type");
            assert_eq!(
                grid_of(&ours.body, ours.header("content-type")),
                grid_of(body, content_type),
                "{at}: request grid"
            );
        } else {
            assert!(ours.body.is_empty(), "{at}: no body");
        }
    }
}

fn client(
    server: &RawServer,
    format: Format,
    nonce: &str,
    recorder: &Arc<RecordingObserver>,
) -> HttpClient {
    HttpClient::builder(server.base())
        .credentials("demo", "demo-pass")
        .format(format)
        .retry(RetryPolicy::none())
        .timeout(Duration::from_secs(10))
        .scram_nonce(nonce)
        .observer(recorder.clone())
        .build()
        .unwrap()
}

fn fahrenheit(value: f64) -> Value {
    Value::from(Number::make_with_unit(value, get_unit("°F").unwrap()))
}

fn samples(values: &[f64]) -> Vec<HisItem> {
    values
        .iter()
        .enumerate()
        .map(|(i, value)| HisItem {
            ts: DateTime::parse_from_rfc3339_with_timezone(
                &format!("2024-01-01T00:{:02}:00-05:00", i * 15),
                "New_York",
            )
            .unwrap(),
            val: fahrenheit(*value),
        })
        .collect()
}

fn str_tag(grid: &hs_core::value::Grid, name: &str) -> String {
    match grid.meta.as_ref().unwrap().get(name) {
        Some(Value::Str(s)) => s.value().to_owned(),
        other => panic!("{name}: {other:?}"),
    }
}

#[tokio::test]
async fn all_ops_json() {
    let capture = capture("http-all-ops-json");
    let server = RawServer::start(script(&capture), Action::status(599)).await;
    let recorder = Arc::new(RecordingObserver::new());
    let client = client(&server, Format::Json, &nonces(&capture)[0], &recorder);
    let dat1 = Ref::make("demo-ahu1-dat", None);
    let dat2 = Ref::make("demo-ahu2-dat", None);
    let sp2 = Ref::make("demo-ahu2-sp", None);

    let about = client.about().await.unwrap();
    assert_eq!(
        about.rows[0].get("productName"),
        Some(&Value::make_str("hs-py"))
    );
    assert_eq!(client.ops().await.unwrap().rows.len(), 15);
    assert_eq!(client.formats().await.unwrap().rows.len(), 6);
    let read = client
        .read_filter("point and temp and equipRef->ahu", Some(2))
        .await
        .unwrap();
    assert_eq!(read.rows.len(), 2);
    let by_id = client
        .read_ids(&[dat1.clone(), Ref::make("no-such-id", None)])
        .await
        .unwrap();
    assert_eq!(by_id.rows.len(), 1);
    assert_eq!(client.nav(None).await.unwrap().rows.len(), 1);
    assert!(!client.nav(Some("demo-site")).await.unwrap().rows.is_empty());
    client
        .his_write(&dat2, &samples(&[55.0, 55.5]))
        .await
        .unwrap();
    let his = client.his_read(&dat2, "2024-01-01").await.unwrap();
    assert_eq!(his.rows.len(), 2);
    assert_eq!(his.rows[1].get("val"), Some(&fahrenheit(55.5)));
    assert_eq!(client.point_write_array(&sp2).await.unwrap().rows.len(), 17);
    client
        .point_write(&sp2, 8, Some(&fahrenheit(68.0)), "demo-user", None)
        .await
        .unwrap();
    let watch = client
        .watch_sub(
            None,
            "http watch",
            &[dat1.clone(), sp2.clone()],
            Some(Duration::from_secs(60)),
        )
        .await
        .unwrap();
    let watch_id = str_tag(&watch, "watchId");
    assert_eq!(watch_id, "w-4b14bc42");
    assert_eq!(
        client.watch_poll(&watch_id, true).await.unwrap().rows.len(),
        2
    );
    client
        .watch_unsub(&watch_id, std::slice::from_ref(&dat1), false)
        .await
        .unwrap();
    client.watch_unsub(&watch_id, &[], true).await.unwrap();
    let mut args = Dict::new();
    args.insert("level".to_owned(), Value::make_number(8.0));
    let error = client
        .invoke_action(&sp2, "reset", &args)
        .await
        .unwrap_err()
        .downcast::<HttpClientError>()
        .unwrap();
    assert_eq!(
        error.error_dis(),
        Some("Operation 'invokeAction' is not supported by this server")
    );
    client.close().await.unwrap();

    assert_same_shape(&server.requests(), &capture.requests);
    assert_eq!(recorder.count_event(Event::Request), 16);
    assert_eq!(
        recorder.errors(),
        [("invokeAction".to_owned(), "error_grid".to_owned())]
    );
}

#[tokio::test]
async fn read_zinc() {
    let capture = capture("http-scram-read-zinc");
    let server = RawServer::start(script(&capture), Action::status(599)).await;
    let recorder = Arc::new(RecordingObserver::new());
    let client = client(&server, Format::Zinc, &nonces(&capture)[0], &recorder);
    let equips = client.read_filter("equip", None).await.unwrap();
    assert_eq!(equips.rows.len(), 2);
    let site = client
        .read_ids(&[Ref::make("demo-site", None)])
        .await
        .unwrap();
    assert_eq!(site.rows[0].get("dis"), Some(&Value::make_str("Demo Site")));
    client.close().await.unwrap();
    assert_same_shape(&server.requests(), &capture.requests);
    assert_eq!(recorder.count_event(Event::Request), 3);
}

#[tokio::test]
async fn his_read_json_then_zinc_in_two_sessions() {
    let capture = capture("http-hisRead");
    let nonces = nonces(&capture);
    let server = RawServer::start(script(&capture), Action::status(599)).await;
    let recorder = Arc::new(RecordingObserver::new());
    let point = Ref::make("demo-ahu1-dat", None);

    let json = client(&server, Format::Json, &nonces[0], &recorder);
    json.his_write(&point, &samples(&[55.0, 55.5, 56.25, 57.0]))
        .await
        .unwrap();
    let his = json.his_read(&point, "2024-01-01").await.unwrap();
    assert_eq!(his.rows.len(), 4);
    json.close().await.unwrap();

    let zinc = client(&server, Format::Zinc, &nonces[1], &recorder);
    let his_zinc = zinc.his_read(&point, "2024-01-01").await.unwrap();
    assert_eq!(his_zinc.rows, his.rows);
    zinc.close().await.unwrap();

    assert_same_shape(&server.requests(), &capture.requests);
    assert_eq!(recorder.count_event(Event::Request), 5);
}

#[tokio::test]
async fn error_grids_in_both_formats_are_decoded() {
    let capture = capture("http-error-grid");
    let server = RawServer::start(script(&capture), Action::status(599)).await;
    let recorder = Arc::new(RecordingObserver::new());
    let client = client(&server, Format::Json, &nonces(&capture)[0], &recorder);
    let sp2 = Ref::make("demo-ahu2-sp", None);
    // The capture's requests were hand-made; only the answers matter here.
    let json = client
        .read_filter("site and (", None)
        .await
        .unwrap_err()
        .downcast::<HttpClientError>()
        .unwrap();
    assert_eq!(json.error_dis(), Some("Internal server error"));
    let zinc = client
        .read_filter("site and (", None)
        .await
        .unwrap_err()
        .downcast::<HttpClientError>()
        .unwrap();
    assert_eq!(zinc.error_dis(), Some("Internal server error"));
    let action = client
        .invoke_action(&sp2, "reset", &Dict::new())
        .await
        .unwrap_err()
        .downcast::<HttpClientError>()
        .unwrap();
    assert!(action.error_dis().unwrap().contains("not supported"));
    let level = client
        .point_write(&sp2, 18, Some(&Value::make_number(1.0)), "x", None)
        .await
        .unwrap_err()
        .downcast::<HttpClientError>()
        .unwrap();
    assert_eq!(level.error_dis(), Some("pointWrite level must be 1-17"));
    assert_eq!(recorder.count_event(Event::Error), 4);
    assert!(
        recorder
            .errors()
            .iter()
            .all(|(_, kind)| kind == "error_grid")
    );
}

#[tokio::test]
async fn wrong_password_capture() {
    let capture = capture("http-scram-wrong-password");
    let server = RawServer::start(script(&capture), Action::status(599)).await;
    let recorder = Arc::new(RecordingObserver::new());
    let client = client(&server, Format::Json, &nonces(&capture)[0], &recorder);
    let error = client
        .about()
        .await
        .unwrap_err()
        .downcast::<HttpClientError>()
        .unwrap();
    assert!(
        matches!(
            error.auth_failure(),
            Some(AuthFailure::CredentialsRejected { .. })
        ),
        "{error:?}"
    );
    let sent = server.requests();
    assert_eq!(sent.len(), 3);
    // HELLO and client-first are identical; the proof differs (we do not
    // know the wrong password the capture used), the handshake token not.
    assert_same_shape(&sent[..2], &capture.requests[..2]);
    let ours = sent[2].header("authorization").unwrap();
    let theirs = header(&capture.requests[2], "Authorization").unwrap();
    assert_eq!(ours.split(", data=").next(), theirs.split(", data=").next());
    assert_eq!(recorder.errors(), [("about".to_owned(), "auth".to_owned())]);
}

#[tokio::test]
async fn unknown_user_capture_stops_after_hello() {
    let capture = capture("http-scram-unknown-user");
    let server = RawServer::start(script(&capture), Action::status(599)).await;
    let client = HttpClient::builder(server.base())
        .credentials("nobody", "x")
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    let error = client
        .about()
        .await
        .unwrap_err()
        .downcast::<HttpClientError>()
        .unwrap();
    assert!(
        matches!(
            error.auth_failure(),
            Some(AuthFailure::CredentialsRejected { .. })
        ),
        "{error:?}"
    );
    // Unlike the reference, no SCRAM step with an empty handshake token.
    let sent = server.requests();
    assert_eq!(sent.len(), 1);
    assert_same_shape(&sent, &capture.requests[..1]);
}

#[tokio::test]
async fn a_forged_server_signature_is_refused() {
    let capture = capture("http-scram-read-zinc");
    let mut actions = script(&capture);
    // Replace the server-final signature with another capture's.
    if let Action::Respond { headers, .. } = &mut actions[2] {
        for (name, value) in headers.iter_mut() {
            if name == "authentication-info" {
                let token = value.split(", data=").next().unwrap().to_owned();
                *value = format!(
                    "{token}, data=dj01Y1FLdm13WE5JR2tDeENiM1VKZ0NyeEpQQ3djVXZIb0FsbVhmdDFQdWxjPQ"
                );
            }
        }
    }
    let server = RawServer::start(actions, Action::status(599)).await;
    let recorder = Arc::new(RecordingObserver::new());
    let client = client(&server, Format::Zinc, &nonces(&capture)[0], &recorder);
    let error = client
        .read_filter("equip", None)
        .await
        .unwrap_err()
        .downcast::<HttpClientError>()
        .unwrap();
    assert!(matches!(error, HttpClientError::Scram(_)), "{error:?}");
    assert_eq!(
        server.requests().len(),
        3,
        "no request is sent with the token"
    );
    assert_eq!(recorder.errors(), [("read".to_owned(), "auth".to_owned())]);
}
