//! [`RawServer`]: a scripted HTTP/1.1 responder on a real socket
//! (127.0.0.1, port 0) that can answer any bytes, reset the connection, or
//! stall, and records every request; shut down on drop. Tests against the
//! real server are in `against_server.rs`.

#![allow(dead_code, unreachable_pub, missing_docs, clippy::unwrap_used)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// Shuts its server down when dropped.
pub struct Shutdown(Option<oneshot::Sender<()>>);

impl Drop for Shutdown {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
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
