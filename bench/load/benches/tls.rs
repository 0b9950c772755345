//! TLS against plain text on the same server build, in one run: the same
//! store behind two `HttpServer`s (the WebSocket endpoint merged into each),
//! one plain, one with TLS 1.3 (rustls, ring, an ECDSA P-256 certificate).
//!
//! `cargo bench -p hs-load --bench tls`
//! Environment: `HS_LOAD_SECS` (measured seconds per run, default 3),
//! `HS_LOAD_ROUNDS` (interleaved rounds, default 5).
//!
//! - HTTP keep-alive: 8 `HttpClient`s, each one request at a time, `read`
//!   with `id==@p{n}` (a different point each request) on a generated
//!   building of 1,000 points;
//! - WebSocket 8 x 16: 8 connections, 16 requests in flight each, the same
//!   read, through the load generator;
//! - new connections: 8 tasks, each opening a connection, sending one
//!   `GET /api/about` with `Connection: close` and reading the answer, over
//!   plain TCP, TLS with session resumption (the client's in-memory session
//!   cache and the server's, the rustls defaults), and TLS with resumption
//!   off (a full handshake every time).
//!
//! Each round runs plain then TLS back to back; figures are medians over
//! rounds, ratios the medians of the per-round ratios.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hs_core::client::HaystackClient;
use hs_core::ops::HaystackOps;
use hs_http_client::HttpClient;
use hs_http_server::{HttpServer, ServerTls};
use hs_load::{LoadConfig, closed_loop, median, point_read_request, run};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use rustls::client::Resumption;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Points in the generated building.
const POINTS: u64 = 1_000;

/// Concurrent clients of the HTTP and new-connection runs.
const CLIENTS: usize = 8;

const ABOUT: &[u8] = b"GET /api/about HTTP/1.1\r\nhost: localhost\r\naccept: application/json\r\nconnection: close\r\n\r\n";

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// A CA and a `localhost` certificate it signs, as PEM.
struct Pki {
    ca_der: Vec<u8>,
    cert_pem: String,
    key_pem: String,
}

fn pki() -> Pki {
    let ca_key = KeyPair::generate().expect("key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "hs bench CA");
    let ca = ca.self_signed(&ca_key).expect("CA");
    let key = KeyPair::generate().expect("key");
    let cert = CertificateParams::new(vec!["localhost".to_owned()])
        .expect("params")
        .signed_by(&key, &ca, &ca_key)
        .expect("leaf");
    Pki {
        ca_der: ca.der().to_vec(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

async fn start(ops: Arc<dyn HaystackOps>, tls: Option<ServerTls>) -> HttpServer {
    let ws = hs_ws_server::WsServerState::builder(ops.clone()).build();
    let mut builder = HttpServer::builder(ops)
        .merge(hs_ws_server::router(ws))
        .max_connections(10_000);
    if let Some(tls) = tls {
        builder = builder.tls(tls);
    }
    builder.bind("127.0.0.1:0").await.expect("bind")
}

fn client_config(pki: &Pki, resumption: bool) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca_der.clone().into()).expect("root");
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    if !resumption {
        config.resumption = Resumption::disabled();
    }
    Arc::new(config)
}

/// Requests per second of `CLIENTS` HTTP clients, one request at a time each.
async fn http_keep_alive(base_url: &str, pki: &Pki, secs: u64) -> f64 {
    let clients = (0..CLIENTS)
        .map(|_| {
            HttpClient::builder(base_url)
                .add_root_certificate(pki.ca_der.clone())
                .build()
                .expect("client")
        })
        .collect();
    closed_loop(
        clients,
        |client: Arc<HttpClient>, n| async move {
            let filter = format!("id==@p{}", n % POINTS + 1);
            client.read_filter(&filter, None).await.map(drop)
        },
        Duration::from_millis(300),
        Duration::from_secs(secs),
    )
    .await
    .expect("read")
}

/// Requests per second over WebSocket, 8 connections x 16 in flight.
async fn ws_8x16(url: &str, tls: Option<Arc<rustls::ClientConfig>>, secs: u64) -> f64 {
    let mut config = LoadConfig::new(url)
        .connections(8)
        .in_flight(16)
        .warmup(Duration::from_millis(300))
        .duration(Duration::from_secs(secs));
    if let Some(tls) = tls {
        config = config.tls(tls);
    }
    run(&config, |n| point_read_request(n, POINTS))
        .await
        .expect("ws load")
        .rps
}

/// New connections per second (each one `about` request), and the share
/// of TLS handshakes that resumed a session.
async fn new_connections(
    addr: std::net::SocketAddr,
    tls: Option<Arc<rustls::ClientConfig>>,
    secs: u64,
) -> (f64, f64) {
    let done = Arc::new(AtomicU64::new(0));
    let resumed = Arc::new(AtomicU64::new(0));
    let warm_until = Instant::now() + Duration::from_millis(300);
    let stop_at = warm_until + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let done = done.clone();
        let resumed = resumed.clone();
        let tls = tls.clone().map(TlsConnector::from);
        tasks.push(tokio::spawn(async move {
            let mut answer = Vec::with_capacity(1024);
            loop {
                let tcp = TcpStream::connect(addr).await.expect("connect");
                tcp.set_nodelay(true).expect("nodelay");
                answer.clear();
                let was_resumed = match &tls {
                    Some(connector) => {
                        let name = ServerName::try_from("localhost").expect("name");
                        let mut stream = connector.connect(name, tcp).await.expect("handshake");
                        stream.write_all(ABOUT).await.expect("write");
                        stream.read_to_end(&mut answer).await.expect("read");
                        stream.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed)
                    }
                    None => {
                        let mut stream = tcp;
                        stream.write_all(ABOUT).await.expect("write");
                        stream.read_to_end(&mut answer).await.expect("read");
                        false
                    }
                };
                assert!(answer.starts_with(b"HTTP/1.1 200"), "about failed");
                let now = Instant::now();
                if now >= stop_at {
                    break;
                }
                if now >= warm_until {
                    done.fetch_add(1, Ordering::Relaxed);
                    if was_resumed {
                        resumed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    let done = done.load(Ordering::Relaxed);
    let resumed_share = resumed.load(Ordering::Relaxed) as f64 / done.max(1) as f64;
    (done as f64 / secs as f64, resumed_share)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(bench());
}

async fn bench() {
    let secs = env_number("HS_LOAD_SECS", 3).max(1);
    let rounds = env_number("HS_LOAD_ROUNDS", 5).max(1);
    let pki = pki();
    let ops: Arc<dyn HaystackOps> = Arc::new(hs_core::demo::sized::store(POINTS as usize));
    let tls = ServerTls::builder()
        .certificate_pem(pki.cert_pem.clone())
        .key_pem(pki.key_pem.clone())
        .build()
        .expect("server TLS");
    let plain = start(ops.clone(), None).await;
    let secure = start(ops, Some(tls)).await;
    let plain_http = plain.base_url();
    let tls_http = format!("https://localhost:{}/api", secure.local_addr().port());
    let plain_ws = format!("ws://{}/api/ws", plain.local_addr());
    let tls_ws = format!("wss://localhost:{}/api/ws", secure.local_addr().port());
    let resuming = client_config(&pki, true);
    let full = client_config(&pki, false);
    println!(
        "TLS 1.3 (rustls, ring, ECDSA P-256) vs plain text, same server build; {CLIENTS} clients, {secs} s per run, {rounds} rounds"
    );

    let mut http = (Vec::new(), Vec::new(), Vec::new());
    let mut ws = (Vec::new(), Vec::new(), Vec::new());
    let mut conns = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let p = http_keep_alive(&plain_http, &pki, secs).await;
        let t = http_keep_alive(&tls_http, &pki, secs).await;
        http.0.push(p);
        http.1.push(t);
        http.2.push(t / p);

        let p = ws_8x16(&plain_ws, None, secs).await;
        let t = ws_8x16(&tls_ws, Some(resuming.clone()), secs).await;
        ws.0.push(p);
        ws.1.push(t);
        ws.2.push(t / p);

        let (p, _) = new_connections(plain.local_addr(), None, secs).await;
        let (r, share) = new_connections(secure.local_addr(), Some(resuming.clone()), secs).await;
        let (f, _) = new_connections(secure.local_addr(), Some(full.clone()), secs).await;
        conns.0.push(p);
        conns.1.push(r);
        conns.2.push(f);
        conns.3.push(r / f);
        conns.4.push(share);
    }
    println!(
        "HTTP keep-alive read   plain {:>8.0} req/s   TLS {:>8.0} req/s   TLS/plain {:.2}",
        median(http.0),
        median(http.1),
        median(http.2)
    );
    println!(
        "WebSocket 8 x 16 read  plain {:>8.0} req/s   TLS {:>8.0} req/s   TLS/plain {:.2}",
        median(ws.0),
        median(ws.1),
        median(ws.2)
    );
    println!(
        "new connections        plain {:>8.0} conn/s  TLS resumed {:>6.0} conn/s ({:.0} % resumed)  TLS full {:>6.0} conn/s  resumed/full {:.2}",
        median(conns.0),
        median(conns.1),
        median(conns.4) * 100.0,
        median(conns.2),
        median(conns.3)
    );
    plain.shutdown().await.expect("shutdown");
    secure.shutdown().await.expect("shutdown");
}
