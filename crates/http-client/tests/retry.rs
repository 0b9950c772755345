//! Retries, backoff and timeouts against a scripted server that fails N
//! times, then succeeds; one observer event per call whatever happened.

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use hs_core::observe::{Event, RecordingObserver};
use hs_core::value::{Ref, Value};
use hs_http_client::{Backoff, HaystackClient, HttpClient, HttpClientError, RetryPolicy};
use support::{Action, EMPTY_GRID, RawServer};

const ABOUT: &str =
    r#"{"_kind":"grid","meta":{},"cols":[{"name":"productName"}],"rows":[{"productName":"test"}]}"#;

fn fast_policy(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        backoff: Backoff::new(Duration::from_millis(10), Duration::from_millis(40)).jitter(0.5),
        retry_writes: false,
    }
}

fn client(
    server: &RawServer,
    policy: RetryPolicy,
    recorder: &Arc<RecordingObserver>,
) -> HttpClient {
    HttpClient::builder(server.base())
        .retry(policy)
        .timeout(Duration::from_secs(5))
        .observer(recorder.clone())
        .build()
        .unwrap()
}

#[tokio::test]
async fn reads_are_retried_through_503s_with_one_observer_event() {
    let server = RawServer::start(
        vec![Action::status(503), Action::status(503)],
        Action::grid(ABOUT),
    )
    .await;
    let recorder = Arc::new(RecordingObserver::new());
    let client = client(&server, fast_policy(3), &recorder);
    let about = client.about().await.unwrap();
    assert_eq!(about.rows.len(), 1);
    assert_eq!(server.requests().len(), 3);
    assert_eq!(recorder.len(), 1);
    let (op, duration) = &recorder.requests()[0];
    assert_eq!(op, "about");
    // The duration covers both backoffs (at least half of 10 ms + 20 ms).
    assert!(*duration >= Duration::from_millis(15), "{duration:?}");
}

#[tokio::test]
async fn connection_resets_are_retried() {
    let server = RawServer::start(vec![Action::Reset], Action::grid(ABOUT)).await;
    let recorder = Arc::new(RecordingObserver::new());
    let client = client(&server, fast_policy(3), &recorder);
    client.read_filter("site", None).await.unwrap();
    assert_eq!(server.requests().len(), 2);
    assert_eq!(recorder.count_event(Event::Request), 1);
    assert_eq!(recorder.len(), 1);
}

#[tokio::test]
async fn attempts_are_bounded_and_the_last_error_is_reported_once() {
    let server = RawServer::start(Vec::new(), Action::status(503)).await;
    let recorder = Arc::new(RecordingObserver::new());
    let client = client(&server, fast_policy(4), &recorder);
    let error = client
        .nav(None)
        .await
        .unwrap_err()
        .downcast::<HttpClientError>()
        .unwrap();
    assert_eq!(error.status(), Some(503));
    assert_eq!(server.requests().len(), 4);
    assert_eq!(
        recorder.errors(),
        [("nav".to_owned(), "overloaded".to_owned())]
    );
    assert_eq!(recorder.len(), 1);
}

#[tokio::test]
async fn writes_are_not_retried_by_default() {
    let sp = Ref::make("p", None);
    let server = RawServer::start(Vec::new(), Action::status(503)).await;
    let recorder = Arc::new(RecordingObserver::new());
    let client = client(&server, fast_policy(5), &recorder);
    client.his_write(&sp, &[]).await.unwrap_err();
    client
        .point_write(&sp, 8, Some(&Value::make_number(1.0)), "t", None)
        .await
        .unwrap_err();
    client
        .watch_sub(None, "w", std::slice::from_ref(&sp), None)
        .await
        .unwrap_err();
    client
        .watch_unsub("w-1", std::slice::from_ref(&sp), false)
        .await
        .unwrap_err();
    client.watch_poll("w-1", false).await.unwrap_err();
    client
        .invoke_action(&sp, "a", &Default::default())
        .await
        .unwrap_err();
    client.call("custom", Default::default()).await.unwrap_err();
    let paths: Vec<_> = server.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        [
            "/api/hisWrite",
            "/api/pointWrite",
            "/api/watchSub",
            "/api/watchUnsub",
            "/api/watchPoll",
            "/api/invokeAction",
            "/api/custom"
        ]
    );
    assert_eq!(recorder.count_event(Event::Error), 7);
    // The priority-array read is a read, and is retried.
    client.point_write_array(&sp).await.unwrap_err();
    assert_eq!(server.requests().len(), 7 + 5);
}

#[tokio::test]
async fn writes_are_retried_when_the_policy_asks() {
    let server = RawServer::start(vec![Action::status(502)], Action::grid(EMPTY_GRID)).await;
    let recorder = Arc::new(RecordingObserver::new());
    let policy = RetryPolicy {
        retry_writes: true,
        ..fast_policy(3)
    };
    let client = client(&server, policy, &recorder);
    client.his_write(&Ref::make("p", None), &[]).await.unwrap();
    assert_eq!(server.requests().len(), 2);
    assert_eq!(recorder.count_event(Event::Request), 1);
}

#[tokio::test]
async fn final_errors_are_not_retried() {
    let error_grid = r#"{"_kind":"grid","meta":{"err":{"_kind":"marker"},"dis":"Unknown watch"},"cols":[],"rows":[]}"#;
    let server = RawServer::start(
        vec![Action::grid(error_grid), Action::status(404)],
        Action::status(400),
    )
    .await;
    let recorder = Arc::new(RecordingObserver::new());
    let client = client(&server, fast_policy(5), &recorder);
    let grid_error = client
        .read_filter("x", None)
        .await
        .unwrap_err()
        .downcast::<HttpClientError>()
        .unwrap();
    assert_eq!(grid_error.error_dis(), Some("Unknown watch"));
    let not_found = client
        .about()
        .await
        .unwrap_err()
        .downcast::<HttpClientError>()
        .unwrap();
    assert_eq!(not_found.status(), Some(404));
    assert_eq!(server.requests().len(), 2);
    assert_eq!(
        recorder.errors(),
        [
            ("read".to_owned(), "error_grid".to_owned()),
            ("about".to_owned(), "not_found".to_owned())
        ]
    );
}

#[tokio::test]
async fn timeouts_are_reported_and_retried() {
    let stall = |then: Action| Action::Stall(Duration::from_secs(3), Box::new(then));
    let server = RawServer::start(vec![stall(Action::grid(ABOUT))], Action::grid(ABOUT)).await;
    let recorder = Arc::new(RecordingObserver::new());
    let client = HttpClient::builder(server.base())
        .retry(fast_policy(2))
        .timeout(Duration::from_millis(200))
        .observer(recorder.clone())
        .build()
        .unwrap();
    client.about().await.unwrap();
    assert_eq!(server.requests().len(), 2);
    assert_eq!(recorder.count_event(Event::Request), 1);

    let server = RawServer::start(Vec::new(), stall(Action::grid(ABOUT))).await;
    let recorder = Arc::new(RecordingObserver::new());
    let client = HttpClient::builder(server.base())
        .retry(RetryPolicy::none())
        .timeout(Duration::from_millis(200))
        .observer(recorder.clone())
        .build()
        .unwrap();
    let started = Instant::now();
    let error = client.about().await.unwrap_err();
    assert!(error.is_timeout(), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(
        recorder.errors(),
        [("about".to_owned(), "timeout".to_owned())]
    );
}

#[tokio::test]
async fn connect_errors_are_retried_then_reported() {
    // A port that was bound and released: nothing listens there.
    let addr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let recorder = Arc::new(RecordingObserver::new());
    let client = HttpClient::builder(format!("http://{addr}/api"))
        .retry(fast_policy(3))
        .observer(recorder.clone())
        .build()
        .unwrap();
    let error = client
        .about()
        .await
        .unwrap_err()
        .downcast::<HttpClientError>()
        .unwrap();
    assert!(
        matches!(error, HttpClientError::Connect { .. }),
        "{error:?}"
    );
    // What happened, once: the cause, the URL once.
    assert_eq!(
        error.to_string(),
        format!("cannot connect to http://{addr}/api/about: connection refused")
    );
    assert_eq!(
        recorder.errors(),
        [("about".to_owned(), "connect".to_owned())]
    );
}

#[tokio::test]
async fn the_deadline_bounds_a_call_across_attempts() {
    // Accepts (the kernel completes the handshake from the backlog) and
    // never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let recorder = Arc::new(RecordingObserver::new());
    let client = HttpClient::builder(format!("http://{addr}"))
        .retry(fast_policy(3))
        .timeout(Duration::from_secs(60))
        .deadline(Duration::from_millis(300))
        .observer(recorder.clone())
        .build()
        .unwrap();
    // Bounded so that a missing deadline fails rather than hangs 3 × 60 s.
    let error = tokio::time::timeout(Duration::from_secs(30), client.read_filter("site", None))
        .await
        .expect("the deadline ends the call")
        .unwrap_err();
    assert!(error.is_timeout(), "{error:?}");
    assert_eq!(
        error.to_string(),
        format!("no answer from http://{addr}/api/read within 300ms")
    );
    assert_eq!(
        recorder.errors(),
        [("read".to_owned(), "timeout".to_owned())]
    );
    drop(silent);
}

#[tokio::test]
async fn undecodable_responses_are_protocol_errors() {
    let server = RawServer::start(
        vec![
            Action::grid("{not json"),
            Action::Respond {
                status: 200,
                headers: vec![("content-type".into(), "text/csv".into())],
                body: "a,b".into(),
            },
        ],
        Action::grid(ABOUT),
    )
    .await;
    let recorder = Arc::new(RecordingObserver::new());
    let client = client(&server, fast_policy(3), &recorder);
    assert!(matches!(
        client
            .about()
            .await
            .unwrap_err()
            .downcast::<HttpClientError>()
            .unwrap(),
        HttpClientError::Decode(_)
    ));
    assert!(matches!(
        client
            .about()
            .await
            .unwrap_err()
            .downcast::<HttpClientError>()
            .unwrap(),
        HttpClientError::Decode(_)
    ));
    assert_eq!(
        recorder.errors(),
        [
            ("about".to_owned(), "protocol".to_owned()),
            ("about".to_owned(), "protocol".to_owned())
        ]
    );
}

#[tokio::test]
async fn bad_base_urls_are_refused() {
    let error = HttpClient::builder("ftp://h/api").build().unwrap_err();
    assert_eq!(error.as_str(), "config");
    assert!(HttpClient::builder("not a url").build().is_err());
}
