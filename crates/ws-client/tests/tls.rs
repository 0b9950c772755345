#![allow(clippy::unwrap_used, clippy::result_large_err)]
//! The one TLS trust policy of both clients (`hs_core::tls`), over rustls
//! (ring) against real TLS servers whose certificates generated CAs sign:
//! the operating system's store by default, a given CA instead of it, a
//! complete rustls configuration over both.
//!
//! "The operating system's store" is made a generated CA by running part
//! of the test in a child process with `SSL_CERT_FILE` pointing at it
//! (rustls-platform-verifier reads the system roots through
//! rustls-native-certs, which honours it).

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hs_http_client::{HttpClient, RetryPolicy};
use hs_ws_client::{HaystackClient, WsClient};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;

const GRID: &str = r#"{"_kind":"grid","meta":{},"cols":[{"name":"tls"}],"rows":[{"tls":true}]}"#;

/// A generated certificate authority.
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    fn new(name: &str) -> Ca {
        Ca::with_key(name, KeyPair::generate().unwrap())
    }

    /// The CA named `name` with `key`: the same name and key make a
    /// certificate that verifies what any other such certificate signed.
    fn with_key(name: &str, key: KeyPair) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let cert = params.self_signed(&key).unwrap();
        Ca { cert, key }
    }

    fn der(&self) -> Vec<u8> {
        self.cert.der().to_vec()
    }

    /// A `localhost` server certificate this CA signs, and its key.
    fn leaf(&self) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .signed_by(&key, &self.cert, &self.key)
            .unwrap();
        (
            CertificateDer::from(cert.der().to_vec()),
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
    }
}

/// A `wss://` Haystack endpoint and an `https://` one answering every
/// request with one grid, both with a certificate `ca` signs.
struct Servers {
    wss: String,
    https: String,
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
    async fn start(ca: &Ca) -> Servers {
        let (cert, key) = ca.leaf();
        let config = rustls::ServerConfig::builder_with_provider(hs_core::tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let ws = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let wss = format!("wss://localhost:{}", ws.local_addr().unwrap().port());
        let https = format!("https://localhost:{}", http.local_addr().unwrap().port());
        let tasks = vec![
            tokio::spawn(serve_ws(ws, acceptor.clone())),
            tokio::spawn(serve_http(http, acceptor)),
        ];
        Servers { wss, https, tasks }
    }
}

async fn serve_ws(listener: tokio::net::TcpListener, acceptor: tokio_rustls::TlsAcceptor) {
    while let Ok((tcp, _)) = listener.accept().await {
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
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
        });
    }
}

/// Answers one HTTP/1.1 request per connection with the grid.
async fn serve_http(listener: tokio::net::TcpListener, acceptor: tokio_rustls::TlsAcceptor) {
    while let Ok((tcp, _)) = listener.accept().await {
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let Ok(mut tls) = acceptor.accept(tcp).await else {
                return;
            };
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
        });
    }
}

/// Whether each client accepts the servers, configured by `ws` and `http`.
async fn accepted(
    servers: &Servers,
    ws: impl FnOnce(hs_ws_client::WsClientBuilder) -> hs_ws_client::WsClientBuilder,
    http: impl FnOnce(hs_http_client::HttpClientBuilder) -> hs_http_client::HttpClientBuilder,
) -> (bool, bool) {
    let ws = match ws(WsClient::builder(&servers.wss)).connect().await {
        Ok(client) => {
            assert_eq!(client.about().await.unwrap().rows.len(), 1);
            client.close().await.unwrap();
            true
        }
        Err(error) => {
            assert_eq!(error.kind().as_str(), "tls", "{error}");
            assert!(error.to_string().contains("certificate"), "{error}");
            false
        }
    };
    let client = http(
        HttpClient::builder(&servers.https)
            .retry(RetryPolicy::none())
            .timeout(Duration::from_secs(10)),
    )
    .build()
    .unwrap();
    let http = match client.about().await {
        Ok(grid) => {
            assert_eq!(grid.rows.len(), 1);
            true
        }
        Err(error) => {
            assert_eq!(error.kind().as_str(), "tls", "{error}");
            false
        }
    };
    (ws, http)
}

#[tokio::test]
async fn a_given_ca_is_trusted_and_a_complete_config_wins() {
    let ours = Ca::new("hs test CA");
    let other = Ca::new("another CA");
    let servers = Servers::start(&ours).await;

    let trusting_ours = accepted(
        &servers,
        |b| b.add_root_certificate(ours.der()),
        |b| b.add_root_certificate(ours.der()),
    )
    .await;
    assert_eq!(trusting_ours, (true, true));

    let trusting_other = accepted(
        &servers,
        |b| b.add_root_certificate(other.der()),
        |b| b.add_root_certificate(other.der()),
    )
    .await;
    assert_eq!(trusting_other, (false, false));

    // A rustls configuration trusting our CA wins over the other CA.
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(ours.der())).unwrap();
    let config = Arc::new(
        rustls::ClientConfig::builder_with_provider(hs_core::tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );
    let custom = accepted(
        &servers,
        |b| {
            b.add_root_certificate(other.der())
                .tls_config(config.clone())
        },
        |b| {
            b.add_root_certificate(other.der())
                .tls_config(config.clone())
        },
    )
    .await;
    assert_eq!(custom, (true, true));
}

/// Set for the child process: the PEM file of the CA that plays the
/// operating system's store.
const SYSTEM_CA_ENV: &str = "SSL_CERT_FILE";
const SYSTEM_CA_NAME: &str = "hs test system CA";

#[tokio::test]
async fn the_os_store_is_the_default_and_a_given_ca_replaces_it() {
    let system = Ca::new(SYSTEM_CA_NAME);
    let path = std::env::temp_dir().join(format!("hs-tls-system-ca-{}.pem", std::process::id()));
    std::fs::write(&path, system.cert.pem()).unwrap();
    let key = std::env::temp_dir().join(format!("hs-tls-system-key-{}.pem", std::process::id()));
    std::fs::write(&key, system.key.serialize_pem()).unwrap();
    let output = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "os_store_child", "--nocapture"])
        .env(SYSTEM_CA_ENV, &path)
        .env("HS_TEST_SYSTEM_CA_KEY", &key)
        .env_remove("SSL_CERT_DIR")
        .output();
    let output = tokio::time::timeout(Duration::from_secs(120), output)
        .await
        .unwrap()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(&key);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Run by the test above, in a process whose system trust store is one
/// generated CA.
#[tokio::test]
#[ignore = "run by the_os_store_is_the_default_and_a_given_ca_replaces_it"]
async fn os_store_child() {
    assert!(
        std::env::var_os(SYSTEM_CA_ENV).is_some(),
        "run by the parent"
    );
    let key = std::fs::read_to_string(std::env::var("HS_TEST_SYSTEM_CA_KEY").unwrap()).unwrap();
    let system = Ca::with_key(SYSTEM_CA_NAME, KeyPair::from_pem(&key).unwrap());
    let servers = Servers::start(&system).await;

    // Nothing configured: both trust the system's store.
    assert_eq!(accepted(&servers, |b| b, |b| b).await, (true, true));

    // A given CA replaces the system's store: the system CA's server is
    // refused by both.
    let other = Ca::new("another CA");
    let replaced = accepted(
        &servers,
        |b| b.add_root_certificate(other.der()),
        |b| b.add_root_certificate(other.der()),
    )
    .await;
    assert_eq!(replaced, (false, false));
}
