//! Every op and every auth path through `HttpClient` against an axum app
//! built on hs-core's SCRAM server and MemoryStore, on a real socket.

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use hs_core::codec::Format;
use hs_core::observe::{Event, RecordingObserver};
use hs_core::ops::HisItem;
use hs_core::value::{DateTime, Dict, Ref, Value};
use hs_http_client::{HttpClient, HttpClientError, RetryPolicy};
use support::{PASSWORD, ScramApp, USER};

const HOUR: Duration = Duration::from_secs(3600);

fn client(app: &ScramApp, format: Format, recorder: &Arc<RecordingObserver>) -> HttpClient {
    HttpClient::builder(app.base())
        .credentials(USER, PASSWORD)
        .format(format)
        .timeout(Duration::from_secs(10))
        .observer(recorder.clone())
        .build()
        .unwrap()
}

fn text(value: Option<&Value>) -> String {
    match value {
        Some(Value::Str(s)) => s.value().to_owned(),
        other => panic!("not a Str: {other:?}"),
    }
}

async fn every_op(format: Format) {
    let app = ScramApp::start(HOUR).await;
    let recorder = Arc::new(RecordingObserver::new());
    let client = client(&app, format, &recorder);
    let dat = Ref::make("demo-ahu1-dat", None);
    let sp = Ref::make("demo-ahu1-dat-sp", None);

    let about = client.about().await.unwrap();
    assert_eq!(about.rows.len(), 1);
    assert!(client.is_logged_in());
    let ops = client.ops().await.unwrap();
    assert!(ops.rows.len() >= 12);
    assert!(!client.formats().await.unwrap().rows.is_empty());

    let sites = client.read_filter("site", None).await.unwrap();
    assert_eq!(sites.rows.len(), 1);
    let two = client.read_filter("point", Some(2)).await.unwrap();
    assert_eq!(two.rows.len(), 2);
    let by_id = client.read_ids(&[dat.clone(), sp.clone()]).await.unwrap();
    assert_eq!(by_id.rows.len(), 2);

    let roots = client.nav(None).await.unwrap();
    assert_eq!(roots.rows.len(), 1);
    let equips = client.nav(Some("demo-site")).await.unwrap();
    assert!(!equips.rows.is_empty());

    let before = client.his_read(&dat, "today").await.unwrap();
    let ts = DateTime::parse_from_rfc3339_with_timezone("2030-01-01T00:00:00-05:00", "New_York")
        .unwrap();
    let items = [HisItem {
        ts,
        val: Value::make_number(42.0),
    }];
    client.his_write(&dat, &items).await.unwrap();
    let _ = before;

    let array = client.point_write_array(&sp).await.unwrap();
    assert_eq!(array.rows.len(), 17);
    client
        .point_write(&sp, 8, Some(&Value::make_number(60.0)), "tester", None)
        .await
        .unwrap();
    client
        .point_write(&sp, 8, None, "tester", None)
        .await
        .unwrap();
    let level18 = client
        .point_write(&sp, 18, Some(&Value::make_number(1.0)), "tester", None)
        .await
        .unwrap_err();
    assert_eq!(level18.kind().as_str(), "error_grid");
    assert!(level18.error_dis().is_some());

    let watch = client
        .watch_sub(
            "test watch",
            std::slice::from_ref(&dat),
            Some(Duration::from_secs(60)),
        )
        .await
        .unwrap();
    let watch_id = text(watch.meta.as_ref().unwrap().get("watchId"));
    client
        .watch_extend(&watch_id, std::slice::from_ref(&sp))
        .await
        .unwrap();
    let refreshed = client.watch_poll(&watch_id, true).await.unwrap();
    assert_eq!(refreshed.rows.len(), 2);
    client
        .watch_unsub(&watch_id, std::slice::from_ref(&sp), false)
        .await
        .unwrap();
    client.watch_unsub(&watch_id, &[], true).await.unwrap();

    let action = client
        .invoke_action(&sp, "noSuchAction", &Dict::new())
        .await
        .unwrap_err();
    assert!(matches!(action, HttpClientError::ErrorGrid { .. }));

    let unknown = client
        .call("fooBar", &Default::default())
        .await
        .unwrap_err();
    assert_eq!(unknown.kind().as_str(), "error_grid");
    let raw = client.call("about", &Default::default()).await.unwrap();
    assert_eq!(raw.rows.len(), 1);

    client.close().await.unwrap();
    assert!(!client.is_logged_in());

    // One event per call, in call order, each with its op.
    let ops_seen: Vec<_> = recorder
        .events()
        .iter()
        .map(|e| (e.event(), e.op().unwrap().to_owned()))
        .collect();
    let expected = [
        (Event::Request, "about"),
        (Event::Request, "ops"),
        (Event::Request, "formats"),
        (Event::Request, "read"),
        (Event::Request, "read"),
        (Event::Request, "read"),
        (Event::Request, "nav"),
        (Event::Request, "nav"),
        (Event::Request, "hisRead"),
        (Event::Request, "hisWrite"),
        (Event::Request, "pointWrite"),
        (Event::Request, "pointWrite"),
        (Event::Request, "pointWrite"),
        (Event::Error, "pointWrite"),
        (Event::Request, "watchSub"),
        (Event::Request, "watchSub"),
        (Event::Request, "watchPoll"),
        (Event::Request, "watchUnsub"),
        (Event::Request, "watchUnsub"),
        (Event::Error, "invokeAction"),
        (Event::Error, "fooBar"),
        (Event::Request, "about"),
        (Event::Request, "close"),
    ]
    .map(|(e, op)| (e, op.to_owned()));
    assert_eq!(ops_seen, expected);
    // The first call's duration covers the login it waited for.
    let durations = recorder.requests();
    assert!(durations[0].1 > Duration::ZERO);
}

#[tokio::test]
async fn every_op_json() {
    every_op(Format::Json).await;
}

#[tokio::test]
async fn every_op_zinc() {
    every_op(Format::Zinc).await;
}

#[tokio::test]
async fn wrong_password_is_auth_rejected() {
    let app = ScramApp::start(HOUR).await;
    let recorder = Arc::new(RecordingObserver::new());
    let client = HttpClient::builder(app.base())
        .credentials(USER, "wrong")
        .observer(recorder.clone())
        .build()
        .unwrap();
    let error = client.about().await.unwrap_err();
    assert!(
        matches!(error, HttpClientError::AuthRejected { .. }),
        "{error:?}"
    );
    assert_eq!(error.status(), Some(403));
    assert!(error.is_auth());
    assert_eq!(recorder.errors(), [("about".to_owned(), "auth".to_owned())]);
    assert_eq!(recorder.len(), 1);
    assert!(!client.is_logged_in());
}

#[tokio::test]
async fn unknown_user_is_auth_rejected() {
    let app = ScramApp::start(HOUR).await;
    let client = HttpClient::builder(app.base())
        .credentials("nobody", PASSWORD)
        .build()
        .unwrap();
    let error = client.read_filter("site", None).await.unwrap_err();
    assert!(
        matches!(error, HttpClientError::AuthRejected { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn no_credentials_is_unauthorized() {
    let app = ScramApp::start(HOUR).await;
    let recorder = Arc::new(RecordingObserver::new());
    let client = HttpClient::builder(app.base())
        .observer(recorder.clone())
        .build()
        .unwrap();
    let error = client.about().await.unwrap_err();
    assert!(
        matches!(error, HttpClientError::Unauthorized { .. }),
        "{error:?}"
    );
    assert_eq!(error.status(), Some(401));
    assert_eq!(recorder.errors(), [("about".to_owned(), "auth".to_owned())]);
}

#[tokio::test]
async fn expired_token_logs_in_again_transparently() {
    let app = ScramApp::start(Duration::from_millis(300)).await;
    let recorder = Arc::new(RecordingObserver::new());
    let client = client(&app, Format::Json, &recorder);
    client.about().await.unwrap();
    let after_login = app.requests();
    assert_eq!(after_login, 4, "HELLO, first, final, then about");
    tokio::time::sleep(Duration::from_millis(600)).await;
    recorder.clear();
    let sites = client.read_filter("site", None).await.unwrap();
    assert_eq!(sites.rows.len(), 1);
    // read (401), HELLO, first, final, read again.
    assert_eq!(app.requests() - after_login, 5);
    assert_eq!(recorder.count_event(Event::Request), 1);
    assert_eq!(recorder.len(), 1);
    assert_eq!(recorder.requests()[0].0, "read");
}

#[tokio::test]
async fn revoked_token_logs_in_again() {
    let app = ScramApp::start(HOUR).await;
    let recorder = Arc::new(RecordingObserver::new());
    let client = client(&app, Format::Zinc, &recorder);
    client.about().await.unwrap();
    assert_eq!(app.tokens.revoke_user(USER), 1);
    client.nav(None).await.unwrap();
    assert_eq!(app.tokens.len(), 1, "a new token was issued");
    assert_eq!(recorder.count_event(Event::Request), 2);
    assert_eq!(recorder.count_event(Event::Error), 0);
}

#[tokio::test]
async fn concurrent_first_calls_share_one_login() {
    let app = ScramApp::start(HOUR).await;
    let recorder = Arc::new(RecordingObserver::new());
    let client = client(&app, Format::Json, &recorder);
    let calls = (0..8).map(|_| {
        let client = client.clone();
        tokio::spawn(async move { client.about().await })
    });
    for call in calls {
        call.await.unwrap().unwrap();
    }
    assert_eq!(app.tokens.len(), 1);
    assert_eq!(app.requests(), 3 + 8);
    assert_eq!(recorder.count_event(Event::Request), 8);
}

#[tokio::test]
async fn close_without_login_sends_nothing() {
    let app = ScramApp::start(HOUR).await;
    let client = HttpClient::builder(app.base())
        .credentials(USER, PASSWORD)
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    client.close().await.unwrap();
    assert_eq!(app.requests(), 0);
    assert!(format!("{client:?}").contains("<redacted>"));
    assert!(!format!("{client:?}").contains(PASSWORD));
}
