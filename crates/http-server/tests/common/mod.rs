//! Shared test harness: a real server on 127.0.0.1:0 over the demo
//! entities, a RecordingObserver, and a SCRAM login over reqwest.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use hs_core::auth::http::{AuthenticationInfo, Authorization, WwwAuthenticate};
use hs_core::auth::{Role, ScramClient, ScramServer, TokenStore, UserStore};
use hs_core::observe::{MetricsObserver, RecordedEvent, RecordingObserver};
use hs_core::ops::HaystackOps;
use hs_core::store::MemoryStore;
use hs_http_server::{HttpServer, HttpServerBuilder};
use reqwest::StatusCode;

/// The demo dataset the reference transcripts were captured against.
pub const DEMO_ENTITIES: &str = include_str!("../fixtures/demo-entities.json");

pub const USER: &str = "demo";
pub const PASSWORD: &str = "demo-pass";
pub const READER: &str = "reader";
pub const READER_PASSWORD: &str = "reader-pass";

/// A MemoryStore loaded with `demo-entities.json`.
pub fn demo_store() -> Arc<MemoryStore> {
    let store = MemoryStore::new();
    store
        .load_json_str(DEMO_ENTITIES)
        .expect("demo entities load");
    Arc::new(store)
}

/// A running server and what the tests look at.
pub struct TestServer {
    pub server: HttpServer,
    pub observer: Arc<RecordingObserver>,
    pub tokens: Option<TokenStore>,
    pub client: reqwest::Client,
    pub base: String,
}

impl TestServer {
    pub fn url(&self, op: &str) -> String {
        format!("{}/{op}", self.base)
    }

    /// Events recorded so far, waiting briefly for the last one: the
    /// observer fires after the response is handed to hyper, which can be a
    /// moment after the client has read it.
    pub fn events_after(&self, n: usize) -> Vec<RecordedEvent> {
        assert!(
            self.observer.wait_for_count(n, Duration::from_secs(5)),
            "expected {n} events, got {:?}",
            self.observer.events()
        );
        self.observer.events()
    }

    pub async fn stop(self) {
        self.server.shutdown().await.expect("clean shutdown");
    }
}

/// Options of [`start`].
pub struct Options {
    pub auth: bool,
    pub token_ttl: Option<Duration>,
    pub ops: Option<Arc<dyn HaystackOps>>,
    pub configure: Box<dyn FnOnce(HttpServerBuilder) -> HttpServerBuilder>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            auth: false,
            token_ttl: None,
            ops: None,
            configure: Box::new(|b| b),
        }
    }
}

pub async fn start_open() -> TestServer {
    start(Options::default()).await
}

pub async fn start_with_auth() -> TestServer {
    start(Options {
        auth: true,
        ..Options::default()
    })
    .await
}

pub async fn start(options: Options) -> TestServer {
    let observer = Arc::new(RecordingObserver::new());
    let ops = options.ops.unwrap_or_else(|| demo_store());
    let mut builder =
        HttpServer::builder(ops).observer(observer.clone() as Arc<dyn MetricsObserver>);
    let mut tokens = None;
    if options.auth {
        let users = UserStore::new().with_iterations(4096);
        users.add_user(USER, PASSWORD, Role::Operator);
        users.add_user(READER, READER_PASSWORD, Role::Reader);
        let mut store = TokenStore::new();
        if let Some(ttl) = options.token_ttl {
            store = store.with_ttl(ttl);
        }
        tokens = Some(store.clone());
        builder = builder.auth(ScramServer::new(users, store));
    }
    let builder = (options.configure)(builder);
    let server = builder.bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
    let base = server.base_url();
    TestServer {
        server,
        observer,
        tokens,
        client: http_client(),
        base,
    }
}

/// A plain-HTTP reqwest client. The workspace builds reqwest with
/// `rustls-no-provider` (for hs-http-client), so a rustls provider must be
/// installed before any client is built, even one that never uses TLS.
pub fn http_client() -> reqwest::Client {
    let _already_installed = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("reqwest client")
}

/// The three handshake responses of a login, for tests that inspect them.
pub struct Login {
    pub token: String,
    pub hello: reqwest::Response,
}

/// Runs HELLO, SCRAM, SCRAM against `url` and returns the bearer token.
pub async fn login(
    client: &reqwest::Client,
    url: &str,
    user: &str,
    password: &str,
) -> Result<String, StatusCode> {
    let mut scram = ScramClient::new(user, password);
    let hello = client
        .get(url)
        .header("Authorization", Authorization::hello(user).header_value())
        .send()
        .await
        .expect("HELLO sent");
    if hello.status() != StatusCode::UNAUTHORIZED {
        return Err(hello.status());
    }
    let challenge = www_authenticate(&hello);
    let Some(token1) = challenge.handshake_token else {
        return Err(hello.status());
    };
    let first = client
        .get(url)
        .header(
            "Authorization",
            Authorization::Scram {
                handshake_token: token1,
                data: scram.client_first(),
            }
            .header_value(),
        )
        .send()
        .await
        .expect("client-first sent");
    if first.status() != StatusCode::UNAUTHORIZED {
        return Err(first.status());
    }
    let server_first = www_authenticate(&first);
    let (Some(token2), Some(data)) = (server_first.handshake_token, server_first.data) else {
        return Err(first.status());
    };
    let client_final = scram.client_final(&data).expect("server-first accepted");
    let done = client
        .get(url)
        .header(
            "Authorization",
            Authorization::Scram {
                handshake_token: token2,
                data: client_final,
            }
            .header_value(),
        )
        .send()
        .await
        .expect("client-final sent");
    if done.status() != StatusCode::OK {
        return Err(done.status());
    }
    let info = done
        .headers()
        .get("authentication-info")
        .and_then(|v| v.to_str().ok())
        .expect("Authentication-Info present");
    let info = AuthenticationInfo::parse(info).expect("Authentication-Info parses");
    scram
        .verify_server_final(info.data.as_deref().expect("server-final data"))
        .expect("server signature verifies");
    Ok(info.auth_token)
}

pub fn www_authenticate(response: &reqwest::Response) -> WwwAuthenticate {
    let value = response
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .expect("WWW-Authenticate present");
    WwwAuthenticate::parse(value).expect("WWW-Authenticate parses")
}

pub fn bearer(token: &str) -> String {
    format!("BEARER authToken={token}")
}

/// A JSON v4 request grid with one row.
pub fn json_grid(row: serde_json::Value) -> String {
    let cols: Vec<serde_json::Value> = row
        .as_object()
        .map(|o| o.keys().map(|k| serde_json::json!({ "name": k })).collect())
        .unwrap_or_default();
    serde_json::json!({"_kind": "grid", "meta": {}, "cols": cols, "rows": [row]}).to_string()
}

/// Parses a JSON v4 response body.
pub fn json_body(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// The `dis` of an error grid, if the body is one.
pub fn error_dis(grid: &serde_json::Value) -> Option<String> {
    let meta = grid.get("meta")?;
    meta.get("err")?;
    meta.get("dis").and_then(|d| d.as_str()).map(str::to_owned)
}

pub fn rows(grid: &serde_json::Value) -> &Vec<serde_json::Value> {
    grid["rows"].as_array().expect("rows array")
}
