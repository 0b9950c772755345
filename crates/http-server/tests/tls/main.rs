//! The HTTP server over TLS, on real sockets with certificates generated
//! here: every op over HTTPS observed as over HTTP, WSS through a merged
//! endpoint, HTTP/2 by ALPN, client certificates required and optional,
//! failed handshakes (WARN and `on_error("connect", "tls")`), and reload.
//! One test binary with its own global logger.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod pki;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Extension;
use axum::routing::get;
use bytes::Bytes;
use hs_core::auth::{PeerCertificate, Role, ScramServer, TokenStore, UserStore};
use hs_core::observe::LogCapture;
use hs_core::observe::{MetricsObserver, RecordedEvent, RecordingObserver};
use hs_core::ops::{HisItem, STANDARD_OPS};
use hs_core::value::{DateTime, Dict, Grid, Ref, Value};
use hs_http_client::{HaystackClient, HttpClient, RetryPolicy};
use hs_http_server::{ClientAuth, HttpServer, HttpServerBuilder, ServerTls};
use http_body_util::{BodyExt, Empty};
use hyper::{StatusCode, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};
use log::Level;
use pki::{Ca, Issued, client_config, tls12_client_config};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;

/// The longest any step waits.
const WAIT: Duration = Duration::from_secs(20);

const USER: &str = "tls-user";
const PASSWORD: &str = "tls-pass";

// ---------------------------------------------------------------- logging

fn capture() -> &'static LogCapture {
    LogCapture::install()
}

/// The WARNs on `hs::http::server` that mention `needle`, waiting for the
/// first (the server logs once the client has seen its alert).
fn warnings_about(needle: &str) -> Vec<String> {
    let found = || -> Vec<String> {
        capture()
            .lines()
            .iter()
            .filter(|(level, target, text)| {
                *level == Level::Warn && target == "hs::http::server" && text.contains(needle)
            })
            .map(|(_, _, text)| text.clone())
            .collect()
    };
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let lines = found();
        if !lines.is_empty() || std::time::Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

// ---------------------------------------------------------------- servers

/// A TLS configuration from `server`'s PEM, `client_ca` verifying clients.
fn server_tls(server: &Issued, client_ca: Option<(&Ca, ClientAuth)>) -> ServerTls {
    let mut builder = ServerTls::builder()
        .certificate_pem(server.cert_pem.clone())
        .key_pem(server.key_pem.clone());
    if let Some((ca, auth)) = client_ca {
        builder = builder.client_ca_pem(ca.pem()).client_auth(auth);
    }
    builder.build().unwrap()
}

async fn start(
    tls: Option<ServerTls>,
    observer: &Arc<RecordingObserver>,
    configure: impl FnOnce(HttpServerBuilder) -> HttpServerBuilder,
) -> HttpServer {
    let mut builder = HttpServer::builder(Arc::new(hs_core::demo::building()))
        .observer(observer.clone() as Arc<dyn MetricsObserver>);
    if let Some(tls) = tls {
        builder = builder.tls(tls);
    }
    configure(builder).bind("127.0.0.1:0").await.unwrap()
}

fn is_tls_error(event: &RecordedEvent) -> bool {
    matches!(event, RecordedEvent::Error { op, error_type } if op == "connect" && error_type == "tls")
}

/// `on_error("connect", "tls")` events recorded so far.
fn tls_errors(observer: &RecordingObserver) -> usize {
    observer.count(is_tls_error)
}

/// Waits (bounded) until exactly `n` `on_error("connect", "tls")` are
/// recorded.
fn wait_tls_errors(observer: &RecordingObserver, n: usize) -> bool {
    observer.wait_for(
        |events| events.iter().filter(|e| is_tls_error(e)).count() == n,
        WAIT,
    )
}

// ---------------------------------------------------------------- a hand-made client

/// An HTTP connection over TLS made by hand: tokio-rustls, then hyper's
/// HTTP/1.1 or HTTP/2 client as ALPN chose.
struct Conn {
    local: SocketAddr,
    server_cert: CertificateDer<'static>,
    version: Version,
    authority: String,
    sender: Sender,
}

enum Sender {
    H1(hyper::client::conn::http1::SendRequest<Empty<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Empty<Bytes>>),
}

/// A response as the hand-made client read it.
struct Answer {
    status: StatusCode,
    version: Version,
    headers: hyper::HeaderMap,
    body: String,
}

/// The failure of a hand-made connection: where it came from and why.
#[derive(Debug)]
struct Failed {
    local: Option<SocketAddr>,
    reason: String,
}

impl Conn {
    async fn open(addr: SocketAddr, config: Arc<rustls::ClientConfig>) -> Result<Conn, Failed> {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let local = tcp.local_addr().unwrap();
        let failed = |reason: String| Failed {
            local: Some(local),
            reason,
        };
        let name = ServerName::IpAddress(addr.ip().into());
        let connect = tokio_rustls::TlsConnector::from(config).connect(name, tcp);
        let tls = tokio::time::timeout(WAIT, connect)
            .await
            .map_err(|_| failed("handshake timed out".to_owned()))?
            .map_err(|e| failed(e.to_string()))?;
        let session = tls.get_ref().1;
        let server_cert = session.peer_certificates().unwrap()[0].clone();
        let h2 = session.alpn_protocol() == Some(b"h2".as_slice());
        let io = TokioIo::new(tls);
        let (sender, version) = if h2 {
            let (sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                .await
                .map_err(|e| failed(e.to_string()))?;
            tokio::spawn(conn);
            (Sender::H2(sender), Version::HTTP_2)
        } else {
            let (sender, conn) = hyper::client::conn::http1::handshake(io)
                .await
                .map_err(|e| failed(e.to_string()))?;
            tokio::spawn(conn);
            (Sender::H1(sender), Version::HTTP_11)
        };
        Ok(Conn {
            local,
            server_cert,
            version,
            authority: addr.to_string(),
            sender,
        })
    }

    /// GETs `path`: the status, the version answered, the body.
    async fn get(&mut self, path: &str) -> Result<(StatusCode, Version, String), Failed> {
        let answer = self.get_answer(path).await?;
        Ok((answer.status, answer.version, answer.body))
    }

    async fn get_answer(&mut self, path: &str) -> Result<Answer, Failed> {
        tokio::time::timeout(WAIT, self.get_unbounded(path))
            .await
            .unwrap_or_else(|_| {
                Err(Failed {
                    local: None,
                    reason: "no answer".to_owned(),
                })
            })
    }

    async fn get_unbounded(&mut self, path: &str) -> Result<Answer, Failed> {
        let failed = |reason: String| Failed {
            local: None,
            reason,
        };
        let response = match &mut self.sender {
            Sender::H1(sender) => {
                // The previous response may not have freed the connection yet.
                sender.ready().await.map_err(|e| failed(format!("{e:?}")))?;
                let request = hyper::Request::get(path)
                    .header("host", &self.authority)
                    .body(Empty::new())
                    .unwrap();
                sender.send_request(request).await
            }
            Sender::H2(sender) => {
                sender.ready().await.map_err(|e| failed(format!("{e:?}")))?;
                let uri = format!("https://{}{path}", self.authority);
                sender
                    .send_request(hyper::Request::get(uri).body(Empty::new()).unwrap())
                    .await
            }
        }
        .map_err(|e| failed(format!("{e:?}")))?;
        let status = response.status();
        let version = response.version();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| failed(e.to_string()))?
            .to_bytes();
        Ok(Answer {
            status,
            version,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }
}

/// A handshake that the server refuses once it has seen the client's
/// certificate (TLS 1.3 finishes the client's side first): the client's
/// first read gets the server's alert. The client's address and that read's
/// error.
async fn refused(addr: SocketAddr, config: Arc<rustls::ClientConfig>) -> (SocketAddr, String) {
    refused_as(addr, config, ServerName::IpAddress(addr.ip().into())).await
}

/// [`refused`], the client expecting the server to be `name`.
async fn refused_as(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    name: ServerName<'static>,
) -> (SocketAddr, String) {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let local = tcp.local_addr().unwrap();
    let connect = tokio_rustls::TlsConnector::from(config).connect(name, tcp);
    let error = match tokio::time::timeout(WAIT, connect).await.unwrap() {
        Err(error) => error,
        Ok(mut tls) => {
            let mut buf = [0u8; 64];
            let read = tokio::io::AsyncReadExt::read(&mut tls, &mut buf);
            match tokio::time::timeout(WAIT, read).await.unwrap() {
                Err(error) => error,
                Ok(n) => panic!("the server accepted the connection ({n} bytes read)"),
            }
        }
    };
    (local, error.to_string())
}

/// One GET on a new connection.
async fn fetch(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    path: &str,
) -> Result<(StatusCode, Version, String), Failed> {
    let mut conn = Conn::open(addr, config).await?;
    let local = conn.local;
    conn.get(path).await.map_err(|mut failed| {
        failed.local = Some(local);
        failed
    })
}

// ---------------------------------------------------------------- every op

/// An op and how it ended: `None` for `on_request`, the error type for
/// `on_error`.
type Outcome = (String, Option<String>);

fn outcomes(recorder: &RecordingObserver) -> Vec<Outcome> {
    recorder
        .events()
        .into_iter()
        .map(|event| match event {
            RecordedEvent::Request { op, .. } => (op, None),
            RecordedEvent::Error { op, error_type } => (op, Some(error_type)),
            other => panic!("an HTTP transport fired {other:?}"),
        })
        .collect()
}

fn first_id(grid: &Grid) -> Ref {
    match grid.rows.first().and_then(|row| row.get("id")) {
        Some(Value::Ref(id)) => id.clone(),
        other => panic!("no id in {other:?}"),
    }
}

/// Calls each of the 13 ops once (some answer error grids, the same on any
/// transport), `formats` last.
async fn every_op(client: &HttpClient) {
    client.about().await.unwrap();
    client.ops().await.unwrap();
    let his = client.read_filter("point and his", Some(1)).await.unwrap();
    let his = first_id(&his);
    let writable = client.read_filter("writable", Some(1)).await.unwrap();
    let writable = first_id(&writable);
    client.read_ids(std::slice::from_ref(&his)).await.unwrap();
    client.nav(None).await.unwrap();
    client.his_read(&his, "2024-01-01").await.unwrap();
    let ts = DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z").unwrap();
    let items = [HisItem {
        ts,
        val: Value::make_number(1.0),
    }];
    let _ = client.his_write(&his, &items).await;
    let _ = client
        .point_write(&writable, 8, Some(&Value::make_number(70.0)), "tls", None)
        .await;
    let sub = client
        .watch_sub(None, "tls", std::slice::from_ref(&his), None)
        .await
        .unwrap();
    let watch = hs_core::ops::build::watch_id(&sub).unwrap();
    client.watch_poll(&watch, true).await.unwrap();
    client.watch_unsub(&watch, &[], true).await.unwrap();
    let _ = client
        .invoke_action(&writable, "noSuchAction", &Dict::new())
        .await;
    client.close_session().await.unwrap();
    client.formats().await.unwrap();
}

/// The server's and the client's outcomes of [`every_op`] against a server
/// with SCRAM, over TLS or not.
async fn every_op_outcomes(tls: Option<(ServerTls, &Ca)>) -> (Vec<Outcome>, Vec<Outcome>) {
    let server_events = Arc::new(RecordingObserver::new());
    let users = UserStore::new().with_iterations(4096);
    users.add_user(USER, PASSWORD, Role::Operator);
    let scram = ScramServer::new(users, TokenStore::new());
    let (server_tls, ca) = match tls {
        Some((tls, ca)) => (Some(tls), Some(ca)),
        None => (None, None),
    };
    let server = start(server_tls, &server_events, |b| b.auth(scram)).await;
    let client_events = Arc::new(RecordingObserver::new());
    let mut client = HttpClient::builder(server.base_url())
        .credentials(USER, PASSWORD)
        .retry(RetryPolicy::none())
        .timeout(WAIT)
        .observer(client_events.clone());
    if let Some(ca) = ca {
        client = client.add_root_certificate(ca.der().to_vec());
    }
    every_op(&client.build().unwrap()).await;
    assert!(
        server_events.wait_for(
            |events| events
                .iter()
                .any(|e| matches!(e, RecordedEvent::Request { op, .. } if op == "formats")),
            WAIT
        ),
        "the server observed the last call"
    );
    server.shutdown().await.unwrap();
    (outcomes(&server_events), outcomes(&client_events))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_op_over_https_is_observed_as_over_http() {
    let ca = Ca::new("hs test CA");
    let tls = server_tls(&ca.server(), None);
    let (plain_server, plain_client) = every_op_outcomes(None).await;
    let (tls_server, tls_client) = every_op_outcomes(Some((tls, &ca))).await;
    assert_eq!(tls_server, plain_server);
    assert_eq!(tls_client, plain_client);
    for op in STANDARD_OPS {
        assert!(
            tls_server.iter().any(|(seen, _)| seen == op),
            "{op} not observed over TLS: {tls_server:?}"
        );
    }
    assert!(
        tls_server.iter().any(|(op, _)| op == "auth"),
        "{tls_server:?}"
    );
}

// ---------------------------------------------------------------- WSS, HTTP/2

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_through_the_endpoint_merged_into_the_https_server() {
    let ca = Ca::new("hs test CA");
    let ws_events = Arc::new(RecordingObserver::new());
    let state = hs_ws_server::WsServerState::builder(Arc::new(hs_core::demo::building()))
        .observer(ws_events.clone())
        .build();
    let http_events = Arc::new(RecordingObserver::new());
    let tls = server_tls(&ca.server(), None);
    let server = start(Some(tls), &http_events, |b| {
        b.merge(hs_ws_server::router(state.clone()))
    })
    .await;
    let url = format!("wss://{}/api/ws", server.local_addr());
    let client_events = Arc::new(RecordingObserver::new());
    let client = hs_ws_client::WsClient::builder(&url)
        .add_root_certificate(ca.der().to_vec())
        .observer(client_events.clone())
        .connect()
        .await
        .unwrap();
    assert_eq!(client.about().await.unwrap().rows.len(), 1);
    let sites = client.read_filter("site", None).await.unwrap();
    assert!(!sites.rows.is_empty());
    client.close().await.unwrap();
    let requests = |recorder: &RecordingObserver| {
        let mut ops: Vec<String> = recorder.requests().into_iter().map(|(op, _)| op).collect();
        ops.sort();
        ops
    };
    assert!(ws_events.wait_for(
        |events| {
            events
                .iter()
                .any(|e| matches!(e, RecordedEvent::WsDisconnect { .. }))
        },
        WAIT
    ));
    assert_eq!(requests(&ws_events), ["about", "read"]);
    assert_eq!(requests(&client_events), ["about", "read"]);
    assert_eq!(ws_events.count_event(hs_core::observe::Event::WsConnect), 1);
    assert_eq!(tls_errors(&http_events), 0);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alpn_h2_is_served_as_http2_and_http11_as_http11() {
    let ca = Ca::new("hs test CA");
    let events = Arc::new(RecordingObserver::new());
    let server = start(Some(server_tls(&ca.server(), None)), &events, |b| b).await;
    assert!(server.base_url().starts_with("https://127.0.0.1:"));
    let addr = server.local_addr();
    for (alpn, version) in [
        (&[b"h2".as_slice(), b"http/1.1"][..], Version::HTTP_2),
        (&[b"http/1.1".as_slice()][..], Version::HTTP_11),
        (&[][..], Version::HTTP_11),
    ] {
        let config = client_config(&[&ca], None, alpn);
        let mut conn = Conn::open(addr, config).await.unwrap();
        let answer = conn.get_answer("/api/about").await.unwrap();
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        assert_eq!(answer.version, version);
        assert!(answer.body.contains("serverName"), "{}", answer.body);
        assert_eq!(
            answer.headers["strict-transport-security"],
            "max-age=63072000; includeSubDomains"
        );
        assert_eq!(answer.headers["x-content-type-options"], "nosniff");
    }
    assert!(events.wait_for(|events| events.len() >= 3, WAIT));
    assert_eq!(
        outcomes(&events),
        vec![("about".to_owned(), None); 3],
        "each version observed alike"
    );
    server.shutdown().await.unwrap();
}

// ---------------------------------------------------------------- client certificates

/// A merged route answering the request's `PeerCertificate`, or
/// `anonymous`.
fn whoami() -> Router {
    Router::new().route(
        "/whoami",
        get(|peer: Option<Extension<PeerCertificate>>| async move {
            match peer {
                Some(Extension(peer)) => peer.to_string(),
                None => "anonymous".to_owned(),
            }
        }),
    )
}

/// A server requiring client certificates of `ca`, and what it observes.
async fn mtls_required(ca: &Ca) -> (HttpServer, Arc<RecordingObserver>) {
    let events = Arc::new(RecordingObserver::new());
    let tls = server_tls(&ca.server(), Some((ca, ClientAuth::Required)));
    assert_eq!(tls.client_auth(), Some(ClientAuth::Required));
    let server = start(Some(tls), &events, |b| b.merge(whoami())).await;
    (server, events)
}

/// A good client is served by `server` (after a bad one was refused).
async fn good_client_is_served(server: &HttpServer, ca: &Ca) {
    let gateway = ca.client("gateway-7", "gw7.example.com");
    let config = client_config(&[ca], Some(&gateway), &[b"http/1.1"]);
    let (status, _, body) = fetch(server.local_addr(), config, "/whoami").await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "CN=gateway-7 SAN=gw7.example.com");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_required_refuses_each_bad_client_once_and_keeps_serving() {
    capture();
    let ca = Ca::new("hs clients");
    let other = Ca::new("someone else");
    let strangers = other.client("stranger", "stranger.example.com");
    let expired = ca.expired_client("old-gateway");
    // (case, client certificate, the server's reason, the client's alert)
    let cases: [(&str, Option<&Issued>, &str, &str); 3] = [
        (
            "no certificate",
            None,
            "no certificate",
            "CertificateRequired",
        ),
        ("another CA", Some(&strangers), "UnknownIssuer", "UnknownCA"),
        ("expired", Some(&expired), "expired", "CertificateExpired"),
    ];
    // A server per case: each one's first WARN is logged (they are
    // throttled per server).
    for (case, cert, reason, alert) in cases {
        let (server, events) = mtls_required(&ca).await;
        let config = client_config(&[&ca], cert, &[b"http/1.1"]);
        let (local, error) = refused(server.local_addr(), config).await;
        assert!(error.contains(alert), "{case}: {error}");
        let warnings = warnings_about(&format!("TLS handshake with {local} failed"));
        assert_eq!(warnings.len(), 1, "{case}: {warnings:?}");
        assert!(warnings[0].contains(reason), "{case}: {warnings:?}");
        assert!(wait_tls_errors(&events, 1), "{case}: {:?}", events.events());
        good_client_is_served(&server, &ca).await;
        assert_eq!(tls_errors(&events), 1, "{case}: one per failed handshake");
        server.shutdown().await.unwrap();
    }

    // A plain-HTTP client on the TLS port.
    let (server, events) = mtls_required(&ca).await;
    let mut plain = TcpStream::connect(server.local_addr()).await.unwrap();
    let local = plain.local_addr().unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut plain, b"GET /whoami HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(
        warnings_about(&format!("TLS handshake with {local} failed")).len(),
        1
    );
    assert!(wait_tls_errors(&events, 1));
    good_client_is_served(&server, &ca).await;
    assert_eq!(tls_errors(&events), 1);
    server.shutdown().await.unwrap();

    let logs = capture().lines();
    assert!(
        !logs.iter().any(|(_, _, text)| text.contains("BEGIN")),
        "key or certificate material logged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_refusing_the_server_certificate_is_a_tls_failure_on_the_server() {
    capture();
    let ca = Ca::new("hs test CA");
    let other = Ca::new("someone else");
    // (case, the CA the client trusts, the name it expects, its error, the
    // server's reason)
    let cases = [
        (
            "unknown CA",
            &other,
            "127.0.0.1",
            "UnknownIssuer",
            "UnknownCA",
        ),
        (
            "name mismatch",
            &ca,
            "gw.example.com",
            "not valid for name",
            "BadCertificate",
        ),
    ];
    for (case, trusted, name, client_error, server_reason) in cases {
        let events = Arc::new(RecordingObserver::new());
        let server = start(Some(server_tls(&ca.server(), None)), &events, |b| b).await;
        let config = client_config(&[trusted], None, &[]);
        let name = ServerName::try_from(name).unwrap().to_owned();
        let (local, error) = refused_as(server.local_addr(), config, name).await;
        assert!(error.contains(client_error), "{case}: {error}");
        let warnings = warnings_about(&format!("TLS handshake with {local} failed"));
        assert_eq!(warnings.len(), 1, "{case}: {warnings:?}");
        assert!(warnings[0].contains(server_reason), "{case}: {warnings:?}");
        assert!(wait_tls_errors(&events, 1), "{case}: {:?}", events.events());
        server.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls12_is_refused_unless_allowed() {
    capture();
    let ca = Ca::new("hs test CA");
    let issued = ca.server();
    let events = Arc::new(RecordingObserver::new());
    let server = start(Some(server_tls(&issued, None)), &events, |b| b).await;
    let (local, error) = refused(server.local_addr(), tls12_client_config(&ca)).await;
    assert!(error.contains("ProtocolVersion"), "{error}");
    let warnings = warnings_about(&format!("TLS handshake with {local} failed"));
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(wait_tls_errors(&events, 1));
    server.shutdown().await.unwrap();

    let tls12 = ServerTls::builder()
        .certificate_pem(issued.cert_pem.clone())
        .key_pem(issued.key_pem.clone())
        .allow_tls12(true)
        .build()
        .unwrap();
    let server = start(Some(tls12), &events, |b| b).await;
    let (status, version, _) = fetch(server.local_addr(), tls12_client_config(&ca), "/api/about")
        .await
        .unwrap();
    assert_eq!((status, version), (StatusCode::OK, Version::HTTP_11));
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_not_done_within_the_header_read_timeout_is_a_tls_failure() {
    capture();
    let ca = Ca::new("hs test CA");
    let events = Arc::new(RecordingObserver::new());
    let server = start(Some(server_tls(&ca.server(), None)), &events, |b| {
        b.header_read_timeout(Duration::from_millis(200))
    })
    .await;
    // Sends one byte of a ClientHello and stalls.
    let mut stalled = TcpStream::connect(server.local_addr()).await.unwrap();
    let local = stalled.local_addr().unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut stalled, &[0x16])
        .await
        .unwrap();
    let warnings = warnings_about(&format!("TLS handshake with {local} failed"));
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].contains("not complete within"), "{warnings:?}");
    assert!(wait_tls_errors(&events, 1));
    // A probe that connects and closes without a byte is no handshake.
    drop(TcpStream::connect(server.local_addr()).await.unwrap());
    let config = client_config(&[&ca], None, &[]);
    let (status, _, _) = fetch(server.local_addr(), config, "/api/about")
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(tls_errors(&events), 1);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_optional_serves_anonymous_clients_and_names_certified_ones() {
    capture();
    let ca = Ca::new("hs clients");
    let events = Arc::new(RecordingObserver::new());
    let tls = server_tls(&ca.server(), Some((&ca, ClientAuth::Optional)));
    let server = start(Some(tls), &events, |b| b.merge(whoami())).await;
    let addr = server.local_addr();
    let anonymous = client_config(&[&ca], None, &[b"h2"]);
    let (status, _, body) = fetch(addr, anonymous, "/whoami").await.unwrap();
    assert_eq!((status, body.as_str()), (StatusCode::OK, "anonymous"));
    let gateway = ca.client("gateway-7", "gw7.example.com");
    // Over HTTP/2 and HTTP/1.1, each request of the connection carries it.
    for alpn in [b"h2".as_slice(), b"http/1.1"] {
        let config = client_config(&[&ca], Some(&gateway), &[alpn]);
        let mut conn = Conn::open(addr, config).await.unwrap();
        for _ in 0..2 {
            let (status, _, body) = conn.get("/whoami").await.unwrap();
            assert_eq!(status, StatusCode::OK);
            assert_eq!(body, "CN=gateway-7 SAN=gw7.example.com");
        }
    }
    // An HTTPS client of hs with a client certificate.
    let client = HttpClient::builder(server.base_url())
        .tls_config(client_config(&[&ca], Some(&gateway), &[]))
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    client.about().await.unwrap();
    assert_eq!(tls_errors(&events), 0);
    let identified = capture().lines().iter().any(|(level, target, text)| {
        *level == Level::Debug
            && target == "hs::http::server"
            && text.contains("client certificate CN=gateway-7 SAN=gw7.example.com")
    });
    assert!(identified, "the peer's identity is logged at DEBUG");
    server.shutdown().await.unwrap();
}

// ---------------------------------------------------------------- reload

/// A directory of its own under the system's temporary directory, removed
/// on drop.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!("hs-tls-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_serves_new_connections_the_new_certificate_and_refuses_bad_files() {
    capture();
    let dir = TempDir::new();
    let (cert_path, key_path) = (dir.0.join("server.pem"), dir.0.join("server.key"));
    let (old_ca, new_ca) = (Ca::new("old CA"), Ca::new("new CA"));
    let (old, new) = (old_ca.server(), new_ca.server());
    std::fs::write(&cert_path, &old.cert_pem).unwrap();
    std::fs::write(&key_path, &old.key_pem).unwrap();
    let tls = ServerTls::builder()
        .certificate_file(&cert_path)
        .key_file(&key_path)
        .build()
        .unwrap();
    let events = Arc::new(RecordingObserver::new());
    let server = start(Some(tls.clone()), &events, |b| b).await;
    let addr = server.local_addr();
    let trust_both = || client_config(&[&old_ca, &new_ca], None, &[b"http/1.1"]);

    let mut kept = Conn::open(addr, trust_both()).await.unwrap();
    assert_eq!(kept.server_cert, old.cert_der);
    assert_eq!(kept.get("/api/about").await.unwrap().0, StatusCode::OK);

    std::fs::write(&cert_path, &new.cert_pem).unwrap();
    std::fs::write(&key_path, &new.key_pem).unwrap();
    tls.reload().unwrap();
    let fresh = Conn::open(addr, trust_both()).await.unwrap();
    assert_eq!(fresh.server_cert, new.cert_der);
    assert_eq!(kept.version, Version::HTTP_11);
    assert_eq!(
        kept.get("/api/about").await.unwrap().0,
        StatusCode::OK,
        "the open connection keeps working"
    );

    // A key that is not PEM, then one of another certificate: refused, the
    // new certificate stays.
    std::fs::write(&key_path, "not a key").unwrap();
    let error = tls.reload().unwrap_err();
    assert_eq!(error.as_str(), "pem");
    assert!(
        error.to_string().contains(&*key_path.to_string_lossy()),
        "{error}"
    );
    std::fs::write(&key_path, &old.key_pem).unwrap();
    let error = tls.reload().unwrap_err();
    assert_eq!(error.as_str(), "config");
    assert!(!error.to_string().contains("BEGIN"), "{error}");
    let refusals = warnings_about("TLS reload refused");
    assert!(
        refusals.iter().any(|line| line.contains("server.key")),
        "{refusals:?}"
    );
    assert!(
        refusals.iter().all(|line| !line.contains("BEGIN")),
        "{refusals:?}"
    );
    let after = Conn::open(addr, trust_both()).await.unwrap();
    assert_eq!(after.server_cert, new.cert_der);
    let only_old = client_config(&[&old_ca], None, &[]);
    let failed = fetch(addr, only_old, "/api/about").await.unwrap_err();
    assert!(failed.reason.contains("certificate"), "{failed:?}");
    assert!(wait_tls_errors(&events, 1), "the client's alert");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_configuration_is_refused_at_build_naming_the_file() {
    let dir = TempDir::new();
    let missing = dir.0.join("missing.pem");
    let error = ServerTls::builder()
        .certificate_file(&missing)
        .key_file(&missing)
        .build()
        .unwrap_err();
    assert_eq!(error.as_str(), "read");
    assert!(error.to_string().contains("missing.pem"), "{error}");
    let error = ServerTls::builder().build().unwrap_err();
    assert_eq!(error.as_str(), "missing");
    let ca = Ca::new("hs test CA");
    let server = ca.server();
    let error = ServerTls::builder()
        .certificate_pem(server.cert_pem.clone())
        .key_pem(server.key_pem.clone())
        .client_ca_pem("no PEM here")
        .build()
        .unwrap_err();
    assert_eq!(error.as_str(), "pem");
    assert!(error.to_string().contains("in-memory PEM"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_under_load_fail_no_request() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    let dir = TempDir::new();
    let (cert_path, key_path) = (dir.0.join("server.pem"), dir.0.join("server.key"));
    let cas = [Ca::new("first CA"), Ca::new("second CA")];
    let certs = [cas[0].server(), cas[1].server()];
    std::fs::write(&cert_path, &certs[0].cert_pem).unwrap();
    std::fs::write(&key_path, &certs[0].key_pem).unwrap();
    let tls = ServerTls::builder()
        .certificate_file(&cert_path)
        .key_file(&key_path)
        .build()
        .unwrap();
    let events = Arc::new(RecordingObserver::new());
    let server = start(Some(tls.clone()), &events, |b| b).await;
    let addr = server.local_addr();
    let config = client_config(&[&cas[0], &cas[1]], None, &[b"http/1.1"]);
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    // Each client alternates a request on a new connection with one on its
    // kept-alive connection, until told to stop (at most 2 000 rounds).
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (config, stop, done) = (config.clone(), stop.clone(), done.clone());
            tokio::spawn(async move {
                let mut seen = Vec::new();
                let mut kept = Conn::open(addr, config.clone()).await.unwrap();
                for _ in 0..2_000 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let mut fresh = Conn::open(addr, config.clone()).await.unwrap();
                    assert_eq!(fresh.get("/api/about").await.unwrap().0, StatusCode::OK);
                    assert_eq!(kept.get("/api/about").await.unwrap().0, StatusCode::OK);
                    if !seen.contains(&fresh.server_cert) {
                        seen.push(fresh.server_cert.clone());
                    }
                    done.fetch_add(2, Ordering::Relaxed);
                }
                seen
            })
        })
        .collect();
    for round in 1..=6 {
        let next = &certs[round % 2];
        std::fs::write(&cert_path, &next.cert_pem).unwrap();
        std::fs::write(&key_path, &next.key_pem).unwrap();
        tls.reload().unwrap();
        // Let some requests run on the new certificate.
        let before = done.load(Ordering::Relaxed);
        let deadline = std::time::Instant::now() + WAIT;
        while done.load(Ordering::Relaxed) < before + 8 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        let seen = client.await.expect("every request succeeded");
        assert_eq!(seen.len(), 2, "each client met both certificates");
    }
    assert!(done.load(Ordering::Relaxed) >= 48);
    assert_eq!(tls_errors(&events), 0);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watched_files_are_reloaded_when_they_change() {
    let dir = TempDir::new();
    let (cert_path, key_path) = (dir.0.join("server.pem"), dir.0.join("server.key"));
    let (old_ca, new_ca) = (Ca::new("old CA"), Ca::new("new CA"));
    let (old, new) = (old_ca.server(), new_ca.server());
    std::fs::write(&cert_path, &old.cert_pem).unwrap();
    std::fs::write(&key_path, &old.key_pem).unwrap();
    let tls = ServerTls::builder()
        .certificate_file(&cert_path)
        .key_file(&key_path)
        .build()
        .unwrap();
    let watch = tls.watch_files(Duration::from_millis(20));
    let events = Arc::new(RecordingObserver::new());
    let server = start(Some(tls), &events, |b| b).await;
    let addr = server.local_addr();
    let trust_both = || client_config(&[&old_ca, &new_ca], None, &[]);
    assert_eq!(
        Conn::open(addr, trust_both()).await.unwrap().server_cert,
        old.cert_der
    );
    // The certificate first, the key a moment later: the watch may see the
    // pair mismatched once (refused, kept), then loads both.
    std::fs::write(&cert_path, &new.cert_pem).unwrap();
    std::fs::write(&key_path, &new.key_pem).unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let served = Conn::open(addr, trust_both()).await.unwrap().server_cert;
        if served == new.cert_der {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never reloaded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    watch.abort();
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_mapped_reader_reads_and_may_not_write() {
    let ca = Ca::new("hs clients");
    let events = Arc::new(RecordingObserver::new());
    let tls = server_tls(&ca.server(), Some((&ca, ClientAuth::Optional)));
    let map = hs_core::auth::CertUserMap::new().rule("cn:reader-gw=gw:reader".parse().unwrap());
    let server = start(Some(tls), &events, |b| b.cert_users(map)).await;
    let reader = ca.client("reader-gw", "reader.example.com");
    let client = HttpClient::builder(server.base_url())
        .tls_config(client_config(&[&ca], Some(&reader), &[]))
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    let points = client.read_filter("writable", Some(1)).await.unwrap();
    let point = first_id(&points);
    let refused = client
        .point_write(&point, 8, Some(&Value::make_number(70.0)), "gw", None)
        .await
        .unwrap_err();
    assert_eq!(refused.kind().as_str(), "forbidden", "{refused}");
    // Without a certificate (and without SCRAM) nothing is served.
    let anonymous = HttpClient::builder(server.base_url())
        .add_root_certificate(ca.der().to_vec())
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    assert!(anonymous.about().await.is_err());
    assert!(events.wait_for(|events| events.len() >= 3, WAIT));
    let seen = outcomes(&events);
    assert_eq!(
        seen[..2],
        [
            ("read".to_owned(), None),
            ("pointWrite".to_owned(), Some("forbidden".to_owned()))
        ]
    );
    assert_eq!(seen[2].0, "about");
    server.shutdown().await.unwrap();
}
