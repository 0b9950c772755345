//! `HttpClient::call` uses the method each op allows, against a server that,
//! like haystack-py's, answers `about`, `ops`, `formats` and `close` only to
//! GET (POST is 405) and `read` only to POST.

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::{Method, Uri, header};
use axum::routing::{get, post};
use hs_core::observe::RecordingObserver;
use hs_core::ops::build as request;
use hs_core::value::Grid;
use hs_http_client::{HaystackClient, HttpClient};

const GRID: &str =
    r#"{"_kind":"grid","meta":{},"cols":[{"name":"op"}],"rows":[{"op":"answered"}]}"#;

/// The method and op of every request the server received.
type Seen = Arc<Mutex<Vec<(Method, String)>>>;

struct Server {
    base: String,
    seen: Seen,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn start() -> Server {
    let seen: Seen = Arc::default();
    let answer = {
        let seen = seen.clone();
        move |method: Method, uri: Uri| {
            let seen = seen.clone();
            async move {
                let op = uri.path().rsplit('/').next().unwrap_or_default().to_owned();
                seen.lock().unwrap().push((method, op));
                ([(header::CONTENT_TYPE, "application/json")], GRID)
            }
        }
    };
    let app = Router::new()
        .route("/api/{op}", get(answer.clone()))
        .route("/api/read", post(answer));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/api", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Server { base, seen, task }
}

#[tokio::test]
async fn call_gets_the_ops_without_arguments_and_posts_the_others() {
    let server = start().await;
    let recorder = Arc::new(RecordingObserver::new());
    let client = HttpClient::builder(&server.base)
        .observer(recorder.clone())
        .build()
        .unwrap();
    for op in ["about", "ops", "formats", "close"] {
        let grid = client.call(op, Grid::default()).await.unwrap();
        assert_eq!(grid.rows.len(), 1, "{op}");
    }
    client
        .call("read", request::read_filter("site", None))
        .await
        .unwrap();
    let seen = server.seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        [
            (Method::GET, "about".to_owned()),
            (Method::GET, "ops".to_owned()),
            (Method::GET, "formats".to_owned()),
            (Method::GET, "close".to_owned()),
            (Method::POST, "read".to_owned()),
        ]
    );
    let ops: Vec<String> = recorder.requests().into_iter().map(|(op, _)| op).collect();
    assert_eq!(ops, ["about", "ops", "formats", "close", "read"]);
    assert!(recorder.errors().is_empty());
}
