#![allow(clippy::unwrap_used, clippy::result_large_err)]
//! Both clients against one real hs server as `hs serve` runs it: the HTTP
//! API and the WebSocket endpoint on one port, sharing SCRAM users and
//! tokens. An HTTP login's token opens the WebSocket endpoint; base URLs
//! work with or without the API path; and the login failures read the same
//! on both transports.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hs_core::auth::{AuthFailure, AuthToken, Role, ScramServer, TokenStore, UserStore};
use hs_core::observe::RecordingObserver;
use hs_core::ops::HaystackOps;
use hs_http_client::HttpClient;
use hs_http_client::HttpClientError;
use hs_http_server::HttpServer;
use hs_ws_client::{HaystackClient, WsClient, WsClientError};
use hs_ws_server::WsServerState;

const USER: &str = "demo";
const PASSWORD: &str = "demo-pass";

/// One server, HTTP API at `/api` and WebSocket at `/api/ws`, SCRAM
/// required on both (or no auth at all with `scram: false`).
struct Server {
    http: HttpServer,
    ws: WsServerState,
    /// Everything the server observed, both transports.
    events: Arc<RecordingObserver>,
}

impl Server {
    async fn start(scram: bool) -> Server {
        let _ = env_logger::builder().is_test(true).try_init();
        let store: Arc<dyn HaystackOps> = Arc::new(hs_core::demo::building());
        let events = Arc::new(RecordingObserver::new());
        let mut ws = WsServerState::builder(store.clone()).observer(events.clone());
        let mut http = HttpServer::builder(store).observer(events.clone());
        if scram {
            let users = UserStore::new().with_iterations(4096);
            users.add_user(USER, PASSWORD, Role::Operator);
            let scram = ScramServer::new(users, TokenStore::new());
            ws = ws.auth(scram.clone());
            http = http.auth(scram);
        }
        let ws = ws.build();
        let http = http
            .merge(hs_ws_server::router(ws.clone()))
            .bind("127.0.0.1:0")
            .await
            .unwrap();
        Server { http, ws, events }
    }

    fn addr(&self) -> SocketAddr {
        self.http.local_addr()
    }

    async fn stop(self) {
        self.ws.shutdown();
        self.http.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn an_http_login_token_opens_the_websocket_endpoint() {
    let server = Server::start(true).await;
    let http = HttpClient::builder(server.http.base_url())
        .credentials(USER, PASSWORD)
        .build()
        .unwrap();
    assert_eq!(http.auth_token(), None, "no login yet");
    let token = http
        .login()
        .await
        .unwrap()
        .expect("a SCRAM login issues a token");
    assert_eq!(http.auth_token().as_ref(), Some(&token));
    // The token never shows in Debug output.
    for shown in [format!("{token:?}"), format!("{http:?}")] {
        assert!(!shown.contains(token.expose()), "{shown}");
    }

    let ws = WsClient::builder(format!("ws://{}/api/ws", server.addr()))
        .token(token.clone())
        .connect()
        .await
        .unwrap();
    let sites = ws.read_filter("site", None).await.unwrap();
    assert_eq!(sites.rows.len(), 1);
    ws.close().await.unwrap();

    // A second HTTP client built with the token alone: no login of its own.
    server.events.clear();
    let reuse = HttpClient::builder(server.http.base_url())
        .token(token)
        .build()
        .unwrap();
    assert!(reuse.is_logged_in());
    reuse.about().await.unwrap();
    assert!(
        server.events.wait_for_count(1, Duration::from_secs(5)),
        "{:?}",
        server.events.events()
    );
    let ops: Vec<String> = server
        .events
        .requests()
        .into_iter()
        .map(|(op, _)| op)
        .collect();
    assert_eq!(ops, ["about"], "one about, no SCRAM steps");
    assert!(server.events.errors().is_empty());
    http.close().await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn base_urls_work_with_and_without_the_api_path() {
    let server = Server::start(false).await;
    let addr = server.addr();
    for url in [format!("http://{addr}"), format!("http://{addr}/api/")] {
        let client = HttpClient::builder(&url).build().unwrap();
        assert_eq!(client.base_url(), format!("http://{addr}/api"));
        client.read_filter("site", None).await.unwrap();
        client.about().await.unwrap();
    }
    for url in [format!("ws://{addr}"), format!("ws://{addr}/api/ws")] {
        let client = WsClient::connect(&url).await.unwrap();
        assert_eq!(client.url(), format!("ws://{addr}/api/ws"));
        client.read_filter("site", None).await.unwrap();
        client.close().await.unwrap();
    }
    server.stop().await;
}

/// One code path for both transports: the same calls through
/// `Arc<dyn HaystackClient>` answer the same, an error grid is one error
/// on both, and `close` ends either session.
#[tokio::test]
async fn one_dyn_haystack_client_code_path_serves_both_transports() {
    let server = Server::start(true).await;
    let http = HttpClient::builder(server.http.base_url())
        .credentials(USER, PASSWORD)
        .build()
        .unwrap();
    let ws = WsClient::builder(format!("ws://{}", server.addr()))
        .credentials(USER, PASSWORD)
        .connect()
        .await
        .unwrap();
    let clients: [Arc<dyn HaystackClient>; 2] = [Arc::new(http), Arc::new(ws)];
    let mut answers = Vec::new();
    for client in &clients {
        let sites = client.read_filter("site", None).await.unwrap();
        let batch = client
            .batch(vec![
                ("about".to_owned(), hs_ws_client::requests::empty()),
                (
                    "read".to_owned(),
                    hs_ws_client::requests::read_filter("point and (", None),
                ),
            ])
            .await;
        assert!(batch[0].is_ok(), "{batch:?}");
        let bad_filter = batch[1].as_ref().unwrap_err();
        assert!(bad_filter.is_error_grid(), "{bad_filter:?}");
        assert_eq!(bad_filter.kind().as_str(), "bad_request");
        client.close().await.unwrap();
        answers.push(sites);
    }
    assert_eq!(answers[0].rows.len(), 1);
    assert_eq!(answers[0].rows, answers[1].rows);
    server.stop().await;
}

/// Both transports' errors for one login failure: same refusal, same
/// kind, the same words (the WebSocket one may add the close code).
async fn refusals(
    server: &Server,
    credentials: Option<(&str, &str)>,
    token: Option<&str>,
) -> (HttpClientError, WsClientError) {
    let mut http = HttpClient::builder(format!("http://{}", server.addr()));
    let mut ws = WsClient::builder(format!("ws://{}", server.addr()));
    if let Some((user, password)) = credentials {
        http = http.credentials(user, password);
        ws = ws.credentials(user, password);
    }
    if let Some(token) = token {
        http = http.token(token);
        ws = ws.token(AuthToken::new(token));
    }
    let http_error = http.build().unwrap().about().await.unwrap_err();
    let http_error: HttpClientError = http_error.downcast().unwrap();
    let ws_error = match ws.connect().await {
        Ok(client) => client.about().await.unwrap_err().downcast().unwrap(),
        Err(error) => error,
    };
    assert_eq!(http_error.kind(), ws_error.kind());
    assert_eq!(http_error.kind().as_str(), "auth");
    assert_eq!(
        http_error.auth_failure(),
        ws_error.auth_failure(),
        "http: {http_error}\nws:   {ws_error}"
    );
    let words = http_error.auth_failure().unwrap().to_string();
    assert_eq!(http_error.to_string(), words);
    assert!(ws_error.to_string().starts_with(&words), "{ws_error}");
    (http_error, ws_error)
}

#[tokio::test]
async fn login_failures_read_the_same_on_both_transports() {
    let server = Server::start(true).await;

    let (_, ws) = refusals(&server, None, None).await;
    assert_eq!(ws.auth_failure(), Some(&AuthFailure::LoginRequired));
    // hs closes with 1008 after its authErr.
    assert_eq!(ws.close_code(), Some(1008));

    let (wrong, _) = refusals(&server, Some((USER, "not-the-password")), None).await;
    let (unknown, _) = refusals(&server, Some(("nobody", PASSWORD)), None).await;
    // Nothing tells an unknown user from a wrong password.
    assert_eq!(
        wrong.to_string().replace(USER, "?"),
        unknown.to_string().replace("nobody", "?")
    );
    assert!(wrong.to_string().contains("unknown user or wrong password"));

    let (_, ws) = refusals(&server, None, Some("not-a-live-token")).await;
    assert_eq!(ws.auth_failure(), Some(&AuthFailure::TokenRejected));
    server.stop().await;
}

#[tokio::test]
async fn one_failure_is_one_error_type_on_both_sides_and_both_transports() {
    let server = Server::start(false).await;
    let client_events = Arc::new(RecordingObserver::new());
    let http = HttpClient::builder(server.http.base_url())
        .observer(client_events.clone())
        .build()
        .unwrap();
    let ws = WsClient::builder(format!("ws://{}", server.addr()))
        .observer(client_events.clone())
        .connect()
        .await
        .unwrap();
    let bad_filter = "site and (";
    let http_error = http.read_filter(bad_filter, None).await.unwrap_err();
    let ws_error = ws.read_filter(bad_filter, None).await.unwrap_err();
    // An unknown id is the other failure an error grid carries.
    let missing = hs_core::value::Ref::make("no-such-point", None);
    http.his_read(&missing, "today").await.unwrap_err();
    ws.his_read(&missing, "today").await.unwrap_err();
    ws.close().await.unwrap();

    assert_eq!(http_error.kind().as_str(), "bad_request", "{http_error}");
    assert_eq!(ws_error.kind().as_str(), "bad_request", "{ws_error}");
    let expected = [
        ("read".to_owned(), "bad_request".to_owned()),
        ("read".to_owned(), "bad_request".to_owned()),
        ("hisRead".to_owned(), "not_found".to_owned()),
        ("hisRead".to_owned(), "not_found".to_owned()),
    ];
    assert_eq!(client_events.errors(), expected);
    // The server may report a request just after answering it.
    for _ in 0..500 {
        if server.events.errors().len() >= expected.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(server.events.errors(), expected);
    server.stop().await;
}
