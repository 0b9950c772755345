//! Test servers on real sockets (127.0.0.1, port 0), shut down on drop.
//!
//! - [`ScramApp`]: an axum app speaking the Haystack HTTP API over hs-core's
//!   SCRAM server, token store and `MemoryStore` (the demo building).
//! - [`RawServer`]: a scripted HTTP/1.1 responder that can answer any bytes,
//!   reset the connection, or stall, and records every request.

#![allow(dead_code, unreachable_pub, missing_docs, clippy::unwrap_used)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::Response;
use hs_core::auth::http::{HttpAuth, authenticate};
use hs_core::auth::{Role, ScramServer, TokenStore, UserStore};
use hs_core::codec::{self, Format};
use hs_core::ops::{HaystackOps, dispatch};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

pub const USER: &str = "demo";
pub const PASSWORD: &str = "demo-pass";

/// Shuts its server down when dropped.
pub struct Shutdown(Option<oneshot::Sender<()>>);

impl Drop for Shutdown {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
}

struct AppState {
    scram: ScramServer,
    ops: Arc<dyn HaystackOps>,
    requests: AtomicUsize,
}

pub struct ScramApp {
    pub addr: SocketAddr,
    pub tokens: TokenStore,
    state: Arc<AppState>,
    _shutdown: Shutdown,
}

impl ScramApp {
    /// The demo building behind SCRAM (`demo`/`demo-pass`, operator),
    /// tokens living `token_ttl`.
    pub async fn start(token_ttl: Duration) -> ScramApp {
        let users = UserStore::new().with_iterations(4096);
        users.add_user(USER, PASSWORD, Role::Operator);
        let tokens = TokenStore::new().with_ttl(token_ttl);
        let state = Arc::new(AppState {
            scram: ScramServer::new(users, tokens.clone()),
            ops: Arc::new(hs_core::demo::building()),
            requests: AtomicUsize::new(0),
        });
        let app = axum::Router::new()
            .route("/api/{op}", axum::routing::any(handle))
            .with_state(state.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await
                .unwrap();
        });
        ScramApp {
            addr,
            tokens,
            state,
            _shutdown: Shutdown(Some(tx)),
        }
    }

    pub fn base(&self) -> String {
        format!("http://{}/api", self.addr)
    }

    /// HTTP requests received so far (handshake steps included).
    pub fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }
}

fn empty(status: StatusCode) -> axum::http::response::Builder {
    Response::builder().status(status)
}

async fn handle(
    State(state): State<Arc<AppState>>,
    Path(op): Path<String>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    state.requests.fetch_add(1, Ordering::SeqCst);
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match authenticate(&state.scram, authorization) {
        HttpAuth::Authorized(_) => {}
        HttpAuth::Unauthorized {
            www_authenticate, ..
        } => {
            return empty(StatusCode::UNAUTHORIZED)
                .header(header::WWW_AUTHENTICATE, www_authenticate)
                .body(Body::empty())
                .unwrap();
        }
        HttpAuth::Authenticated {
            authentication_info,
            ..
        } => {
            return empty(StatusCode::OK)
                .header("authentication-info", authentication_info)
                .body(Body::empty())
                .unwrap();
        }
        HttpAuth::Forbidden { .. } => {
            return empty(StatusCode::FORBIDDEN)
                .body(Body::from("Authentication failed"))
                .unwrap();
        }
        _ => unreachable!("HttpAuth has four outcomes"),
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let Ok(request_format) = Format::from_content_type(content_type) else {
        return empty(StatusCode::UNSUPPORTED_MEDIA_TYPE)
            .body(Body::empty())
            .unwrap();
    };
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let Some(format) = Format::negotiate(accept, Format::Json) else {
        return empty(StatusCode::NOT_ACCEPTABLE)
            .body(Body::empty())
            .unwrap();
    };
    let grid = if method == Method::GET {
        Default::default()
    } else {
        match codec::decode_grid(&body, request_format) {
            Ok(grid) => grid,
            Err(error) => codec::error_grid(&error.to_string()),
        }
    };
    let answer = match dispatch(state.ops.as_ref(), &op, grid).await {
        Ok(grid) => grid,
        Err(error) => error.to_grid(),
    };
    empty(StatusCode::OK)
        .header(header::CONTENT_TYPE, format.content_type())
        .body(Body::from(codec::encode_grid(&answer, format).unwrap()))
        .unwrap()
}

/// One request as the raw server read it.
#[derive(Debug, Clone)]
pub struct RawRequest {
    pub method: String,
    pub path: String,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl RawRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What the raw server does with one request.
#[derive(Debug, Clone)]
pub enum Action {
    /// Answer `status` with these headers and body (Content-Length added).
    Respond {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// Close the connection without answering.
    Reset,
    /// Wait, then answer.
    Stall(Duration, Box<Action>),
}

impl Action {
    pub fn grid(body: &str) -> Action {
        Action::Respond {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.into(),
        }
    }

    pub fn status(status: u16) -> Action {
        Action::Respond {
            status,
            headers: Vec::new(),
            body: String::new(),
        }
    }
}

pub const EMPTY_GRID: &str = r#"{"_kind":"grid","meta":{},"cols":[],"rows":[]}"#;

/// A scripted HTTP/1.1 server: answers requests with the queued actions in
/// order, then with `fallback`. Every answer closes the connection.
pub struct RawServer {
    pub addr: SocketAddr,
    script: Arc<Mutex<VecDeque<Action>>>,
    requests: Arc<Mutex<Vec<RawRequest>>>,
    _shutdown: Shutdown,
}

impl RawServer {
    pub async fn start(script: Vec<Action>, fallback: Action) -> RawServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (tx, mut rx) = oneshot::channel::<()>();
        let (s, r) = (script.clone(), requests.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = &mut rx => break,
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { break };
                        let (s, r, fallback) = (s.clone(), r.clone(), fallback.clone());
                        tokio::spawn(serve_raw(stream, s, r, fallback));
                    }
                }
            }
        });
        RawServer {
            addr,
            script,
            requests,
            _shutdown: Shutdown(Some(tx)),
        }
    }

    pub fn base(&self) -> String {
        format!("http://{}/api", self.addr)
    }

    pub fn requests(&self) -> Vec<RawRequest> {
        self.requests.lock().unwrap().clone()
    }
}

async fn read_request(stream: &mut TcpStream) -> Option<RawRequest> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 || buf.len() > 1 << 20 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_owned();
    let path = request_line.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(RawRequest {
        method,
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

async fn serve_raw(
    mut stream: TcpStream,
    script: Arc<Mutex<VecDeque<Action>>>,
    requests: Arc<Mutex<Vec<RawRequest>>>,
    fallback: Action,
) {
    let Some(request) = read_request(&mut stream).await else {
        return;
    };
    requests.lock().unwrap().push(request);
    let mut action = script.lock().unwrap().pop_front().unwrap_or(fallback);
    loop {
        match action {
            Action::Stall(wait, next) => {
                tokio::time::sleep(wait).await;
                action = *next;
            }
            Action::Reset => return,
            Action::Respond {
                status,
                headers,
                body,
            } => {
                let mut out = format!("HTTP/1.1 {status} X\r\nconnection: close\r\n");
                for (name, value) in headers {
                    out.push_str(&format!("{name}: {value}\r\n"));
                }
                out.push_str(&format!("content-length: {}\r\n\r\n{body}", body.len()));
                let _ = stream.write_all(out.as_bytes()).await;
                let _ = stream.shutdown().await;
                return;
            }
        }
    }
}
