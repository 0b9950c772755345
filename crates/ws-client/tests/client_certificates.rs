#![allow(clippy::unwrap_used, clippy::result_large_err)]
//! Client certificates (mutual TLS), the server name override and the
//! `tls` error of both clients, against real TLS servers built here with
//! tokio-rustls and certificates generated with rcgen: a server that
//! requires a client certificate sees the one the client presents, and
//! refuses a client without one; an unknown CA and a name mismatch are TLS
//! failures, reported once as `on_error("connect", "tls")`; a PEM that does
//! not parse fails the build.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hs_core::observe::RecordingObserver;
use hs_http_client::{HttpClient, RetryPolicy};
use hs_ws_client::{HaystackClient, WsClient};
use parking_lot::Mutex;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;

const GRID: &str = r#"{"_kind":"grid","meta":{},"cols":[{"name":"tls"}],"rows":[{"tls":true}]}"#;

/// A generated certificate authority.
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

/// A certificate a CA signed, and its key, in PEM.
struct Leaf {
    cert_pem: String,
    key_pem: String,
    der: Vec<u8>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).unwrap();
        Ca { cert, key }
    }

    fn pem(&self) -> String {
        self.cert.pem()
    }

    /// A certificate for `names` (DNS SANs) with common name `cn`.
    fn leaf(&self, cn: &str, names: &[&str]) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }
}

impl Leaf {
    fn rustls(&self) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let key = KeyPair::from_pem(&self.key_pem).unwrap();
        (
            vec![CertificateDer::from(self.der.clone())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
    }
}

/// What the servers saw of each accepted TLS connection.
#[derive(Debug, Default, Clone)]
struct Seen {
    /// The client's certificate (DER), when it presented one.
    peer: Option<Vec<u8>>,
    /// The SNI the client sent.
    sni: Option<String>,
}

/// A `wss://` Haystack endpoint and an `https://` one on 127.0.0.1,
/// answering every request with one grid, with `server`'s certificate;
/// with `client_ca`, a client certificate it signs is required.
struct Servers {
    ws_port: u16,
    http_port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Servers {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Servers {
    async fn start(server: &Leaf, client_ca: Option<&Ca>) -> Servers {
        let provider = hs_core::tls::provider();
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = match client_ca {
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                roots
                    .add(CertificateDer::from(ca.cert.der().to_vec()))
                    .unwrap();
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                )
                .build()
                .unwrap();
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let (chain, key) = server.rustls();
        let config = builder.with_single_cert(chain, key).unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let ws = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        Servers {
            ws_port: ws.local_addr().unwrap().port(),
            http_port: http.local_addr().unwrap().port(),
            tasks: vec![
                tokio::spawn(serve(ws, acceptor.clone(), seen.clone(), true)),
                tokio::spawn(serve(http, acceptor, seen.clone(), false)),
            ],
            seen,
        }
    }

    fn wss(&self, host: &str) -> String {
        format!("wss://{host}:{}", self.ws_port)
    }

    fn https(&self, host: &str) -> String {
        format!("https://{host}:{}", self.http_port)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().clone()
    }
}

async fn serve(
    listener: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    seen: Arc<Mutex<Vec<Seen>>>,
    websocket: bool,
) {
    while let Ok((tcp, _)) = listener.accept().await {
        let acceptor = acceptor.clone();
        let seen = seen.clone();
        tokio::spawn(async move {
            let tls = match acceptor.accept(tcp).into_fallible().await {
                Ok(tls) => tls,
                Err((_, tcp)) => return linger(tcp).await,
            };
            let (_, connection) = tls.get_ref();
            seen.lock().push(Seen {
                peer: connection
                    .peer_certificates()
                    .and_then(|chain| chain.first())
                    .map(|cert| cert.to_vec()),
                sni: connection.server_name().map(str::to_owned),
            });
            if websocket {
                answer_ws(tls).await;
            } else {
                answer_http(tls).await;
            }
        });
    }
}

/// After a refused handshake (its alert is sent): close with a FIN after
/// reading what the client sent meanwhile, so the alert is not lost to a
/// reset.
async fn linger(mut tcp: TcpStream) {
    let _ = tcp.shutdown().await;
    let mut buffer = [0u8; 4096];
    let drain = async {
        while let Ok(n) = tcp.read(&mut buffer).await {
            if n == 0 {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(10), drain).await;
}

async fn answer_ws(tls: tokio_rustls::server::TlsStream<TcpStream>) {
    let callback = |_: &Request, mut resp: Response| {
        resp.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_static("haystack"),
        );
        Ok(resp)
    };
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tls, callback).await else {
        return;
    };
    while let Some(Ok(msg)) = ws.next().await {
        if let Message::Text(text) = msg {
            let req: serde_json::Value = serde_json::from_str(text.as_str()).unwrap();
            let reply = format!(r#"{{"grid":{GRID},"id":{}}}"#, req["id"]);
            if ws.send(Message::text(reply)).await.is_err() {
                return;
            }
        }
    }
}

/// Answers one HTTP/1.1 request per connection with the grid.
async fn answer_http(mut tls: tokio_rustls::server::TlsStream<TcpStream>) {
    let mut request = Vec::new();
    let mut buffer = [0u8; 1024];
    // The client's requests are small and bodiless (GET about).
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 64 * 1024 {
        match tls.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buffer[..n]),
        }
    }
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{GRID}",
        GRID.len()
    );
    let _ = tls.write_all(response.as_bytes()).await;
    let _ = tls.shutdown().await;
}

fn http(url: &str) -> hs_http_client::HttpClientBuilder {
    HttpClient::builder(url)
        .retry(RetryPolicy::none())
        .timeout(Duration::from_secs(10))
}

fn ws(url: &str) -> hs_ws_client::WsClientBuilder {
    WsClient::builder(url).connect_timeout(Duration::from_secs(10))
}

/// Asserts that `error` is the `tls` error, saying so and why, and that the
/// client's observer saw exactly one `on_error("connect", "tls")` and
/// nothing else.
fn assert_tls_failure(error: &dyn std::fmt::Display, kind: &str, observer: &RecordingObserver) {
    assert_eq!(kind, "tls", "{error}");
    let text = error.to_string();
    assert!(text.contains("TLS handshake with"), "{text}");
    assert_eq!(
        observer.errors(),
        vec![("connect".to_owned(), "tls".to_owned())],
        "{text}"
    );
    assert_eq!(observer.len(), 1, "{:?}", observer.events());
}

#[tokio::test]
async fn a_required_client_certificate_is_presented_and_seen() {
    let server_ca = Ca::new("hs test server CA");
    let client_ca = Ca::new("hs test client CA");
    let servers = Servers::start(&server_ca.leaf("server", &["localhost"]), Some(&client_ca)).await;
    let gateway = client_ca.leaf("gateway-1", &["gateway-1.example.com"]);

    let client = ws(&servers.wss("localhost"))
        .add_root_certificates_pem(server_ca.pem())
        .client_identity(&gateway.cert_pem, &gateway.key_pem)
        .connect()
        .await
        .unwrap();
    assert_eq!(client.about().await.unwrap().rows.len(), 1);
    client.close().await.unwrap();

    let client = http(&servers.https("localhost"))
        .add_root_certificates_pem(server_ca.pem())
        .client_identity(&gateway.cert_pem, &gateway.key_pem)
        .build()
        .unwrap();
    assert_eq!(client.about().await.unwrap().rows.len(), 1);

    let seen = servers.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    for connection in seen {
        assert_eq!(connection.peer.as_deref(), Some(gateway.der.as_slice()));
    }
}

#[tokio::test]
async fn a_client_without_the_required_certificate_fails_with_the_tls_error() {
    let server_ca = Ca::new("hs test server CA");
    let client_ca = Ca::new("hs test client CA");
    let servers = Servers::start(&server_ca.leaf("server", &["localhost"]), Some(&client_ca)).await;

    let observer = Arc::new(RecordingObserver::new());
    let error = ws(&servers.wss("localhost"))
        .add_root_certificates_pem(server_ca.pem())
        .observer(observer.clone())
        .connect()
        .await
        .unwrap_err();
    assert!(error.is_tls(), "{error}");
    assert_tls_failure(&error, error.kind().as_str(), &observer);

    let observer = Arc::new(RecordingObserver::new());
    let client = http(&servers.https("localhost"))
        .add_root_certificates_pem(server_ca.pem())
        // Retries allowed: a TLS failure is not retried.
        .retry(RetryPolicy::default())
        .observer(observer.clone())
        .build()
        .unwrap();
    let error = client.about().await.unwrap_err();
    let http_error = error
        .downcast_ref::<hs_http_client::HttpClientError>()
        .unwrap();
    assert!(http_error.is_tls(), "{error}");
    assert_eq!(error.as_str(), "tls");
    assert_tls_failure(&error, error.kind().as_str(), &observer);

    // A certificate from another CA is refused the same way.
    let stranger = Ca::new("another CA").leaf("stranger", &["stranger.example.com"]);
    let observer = Arc::new(RecordingObserver::new());
    let error = ws(&servers.wss("localhost"))
        .add_root_certificates_pem(server_ca.pem())
        .client_identity(&stranger.cert_pem, &stranger.key_pem)
        .observer(observer.clone())
        .connect()
        .await
        .unwrap_err();
    assert_tls_failure(&error, error.kind().as_str(), &observer);
    assert!(servers.seen().is_empty(), "{:?}", servers.seen());
}

#[tokio::test]
async fn an_unknown_ca_is_the_tls_error() {
    let server_ca = Ca::new("hs test server CA");
    let servers = Servers::start(&server_ca.leaf("server", &["localhost"]), None).await;
    let other = Ca::new("another CA");

    let observer = Arc::new(RecordingObserver::new());
    let error = ws(&servers.wss("localhost"))
        .add_root_certificates_pem(other.pem())
        .observer(observer.clone())
        .connect()
        .await
        .unwrap_err();
    assert_tls_failure(&error, error.kind().as_str(), &observer);
    assert!(error.to_string().contains("certificate"), "{error}");

    let observer = Arc::new(RecordingObserver::new());
    let error = http(&servers.https("localhost"))
        .add_root_certificates_pem(other.pem())
        .observer(observer.clone())
        .build()
        .unwrap()
        .about()
        .await
        .unwrap_err();
    assert_tls_failure(&error, error.kind().as_str(), &observer);
    assert!(error.to_string().contains("certificate"), "{error}");
}

#[tokio::test]
async fn a_name_mismatch_is_the_tls_error_and_tls_server_name_accepts_the_certificate() {
    let ca = Ca::new("hs test CA");
    // A gateway reached by IP address whose certificate names only
    // gw.example.com.
    let servers = Servers::start(&ca.leaf("gw", &["gw.example.com"]), None).await;

    let observer = Arc::new(RecordingObserver::new());
    let error = ws(&servers.wss("127.0.0.1"))
        .add_root_certificate(ca.cert.der().to_vec())
        .observer(observer.clone())
        .connect()
        .await
        .unwrap_err();
    assert_tls_failure(&error, error.kind().as_str(), &observer);

    let observer = Arc::new(RecordingObserver::new());
    let error = http(&servers.https("127.0.0.1"))
        .add_root_certificate(ca.cert.der().to_vec())
        .observer(observer.clone())
        .build()
        .unwrap()
        .about()
        .await
        .unwrap_err();
    assert_tls_failure(&error, error.kind().as_str(), &observer);

    let client = ws(&servers.wss("127.0.0.1"))
        .add_root_certificate(ca.cert.der().to_vec())
        .tls_server_name("gw.example.com")
        .connect()
        .await
        .unwrap();
    assert_eq!(client.about().await.unwrap().rows.len(), 1);
    client.close().await.unwrap();
    // The WebSocket client sends the name as SNI too.
    assert_eq!(
        servers
            .seen()
            .last()
            .and_then(|seen| seen.sni.clone())
            .as_deref(),
        Some("gw.example.com")
    );

    let client = http(&servers.https("127.0.0.1"))
        .add_root_certificate(ca.cert.der().to_vec())
        .tls_server_name("gw.example.com")
        .build()
        .unwrap();
    assert_eq!(client.about().await.unwrap().rows.len(), 1);

    // The override replaces the URL's host: a certificate for localhost
    // does not pass for gw.example.com.
    let localhost = Servers::start(&ca.leaf("local", &["localhost"]), None).await;
    let error = ws(&localhost.wss("localhost"))
        .add_root_certificate(ca.cert.der().to_vec())
        .tls_server_name("gw.example.com")
        .connect()
        .await
        .unwrap_err();
    assert!(error.is_tls(), "{error}");
}

#[tokio::test]
async fn tls_settings_that_do_not_parse_fail_the_build_without_showing_the_key() {
    let ca = Ca::new("hs test CA");
    let leaf = ca.leaf("gateway", &["gateway.example.com"]);
    // The key's body, mangled: the error must not quote it.
    let bad_key = leaf
        .key_pem
        .replace("PRIVATE KEY-----\n", "PRIVATE KEY-----\n!!");
    let body_line = bad_key.lines().nth(1).unwrap().to_owned();
    let other = ca.leaf("other", &["other.example.com"]);
    // A URL nothing listens on: the build fails before any connection.
    let unused = "127.0.0.1:9";

    let cases: Vec<(&str, String, String, &str)> = vec![
        (
            "a malformed key",
            leaf.cert_pem.clone(),
            bad_key.clone(),
            "client private key",
        ),
        (
            "no key",
            leaf.cert_pem.clone(),
            leaf.cert_pem.clone(),
            "client private key",
        ),
        (
            "no certificate",
            leaf.key_pem.clone(),
            leaf.key_pem.clone(),
            "client certificate",
        ),
        (
            "another certificate's key",
            leaf.cert_pem.clone(),
            other.key_pem.clone(),
            "client identity",
        ),
    ];
    for (case, cert, key, names) in cases {
        let error = http(&format!("https://{unused}"))
            .client_identity(&cert, &key)
            .build()
            .unwrap_err();
        assert_eq!(error.as_str(), "config", "{case}: {error}");
        let text = format!("{error} {error:?}");
        assert!(text.contains(names), "{case}: {text}");
        assert!(!text.contains(&body_line), "{case}: {text}");

        let error = ws(&format!("wss://{unused}"))
            .client_identity(&cert, &key)
            .connect()
            .await
            .unwrap_err();
        assert_eq!(error.as_str(), "config", "{case}: {error}");
        let text = format!("{error} {error:?}");
        assert!(text.contains(names), "{case}: {text}");
        assert!(!text.contains(&body_line), "{case}: {text}");
    }

    let error = http(&format!("https://{unused}"))
        .add_root_certificates_pem("not a PEM bundle")
        .build()
        .unwrap_err();
    assert!(error.to_string().contains("CA certificate"), "{error}");
    let error = ws(&format!("wss://{unused}"))
        .tls_server_name("not a name")
        .connect()
        .await
        .unwrap_err();
    assert!(error.to_string().contains("not a name"), "{error}");
}
