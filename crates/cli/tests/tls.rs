//! `--ca`, `--client-cert`, `--client-key` and `--tls-server-name` of the
//! client commands, against TLS test servers built here (tokio-rustls,
//! certificates generated with rcgen) over both transports: with `--ca` the
//! command reaches the server, without it the handshake fails with a clear
//! TLS message; the certificate flags come together or not at all; a file
//! that cannot be read or parsed is named.

#![allow(clippy::unwrap_used, clippy::result_large_err)] // tests may unwrap; tungstenite's callback type

mod support;

use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use support::{Ca, TempDir, hs, hs_env, stderr, stdout};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;

const GRID: &str =
    r#"{"_kind":"grid","meta":{},"cols":[{"name":"served"}],"rows":[{"served":"over TLS"}]}"#;

/// An `https://` and a `wss://` Haystack endpoint on 127.0.0.1 answering
/// every request with one grid; with `client_ca`, a client certificate it
/// signs is required.
struct Servers {
    http_port: u16,
    ws_port: u16,
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
    async fn start(server_ca: &Ca, client_ca: Option<&Ca>) -> Servers {
        let (cert, key) = server_ca.leaf(&["localhost"]);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = match client_ca {
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                roots
                    .add(CertificateDer::from(ca.cert.der().to_vec()))
                    .unwrap();
                builder.with_client_cert_verifier(
                    rustls::server::WebPkiClientVerifier::builder_with_provider(
                        Arc::new(roots),
                        provider,
                    )
                    .build()
                    .unwrap(),
                )
            }
            None => builder.with_no_client_auth(),
        };
        let config = builder
            .with_single_cert(
                vec![CertificateDer::from(cert.der().to_vec())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let ws = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Servers {
            http_port: http.local_addr().unwrap().port(),
            ws_port: ws.local_addr().unwrap().port(),
            tasks: vec![
                tokio::spawn(serve(http, acceptor.clone(), false)),
                tokio::spawn(serve(ws, acceptor, true)),
            ],
        }
    }

    fn urls(&self) -> [String; 2] {
        [
            format!("https://localhost:{}", self.http_port),
            format!("wss://localhost:{}", self.ws_port),
        ]
    }
}

async fn serve(listener: tokio::net::TcpListener, acceptor: tokio_rustls::TlsAcceptor, ws: bool) {
    while let Ok((tcp, _)) = listener.accept().await {
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            match acceptor.accept(tcp).into_fallible().await {
                Ok(tls) if ws => answer_ws(tls).await,
                Ok(tls) => answer_http(tls).await,
                Err((_, tcp)) => linger(tcp).await,
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
    let drain = async { while matches!(tcp.read(&mut buffer).await, Ok(n) if n > 0) {} };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), drain).await;
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

/// `hs about -f json` with `args`, run off the runtime serving the test
/// servers; the "operating system's store" is `system_ca` (a PEM file), so
/// the outcome does not depend on the machine's CAs.
async fn about(url: &str, args: &[&str], system_ca: &str) -> std::process::Output {
    let mut all = vec!["about", "--url", url, "-f", "json", "--timeout", "20s"];
    all.extend_from_slice(args);
    let all: Vec<String> = all.into_iter().map(str::to_owned).collect();
    let system_ca = system_ca.to_owned();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = all.iter().map(String::as_str).collect();
        hs_env(
            &args,
            &[
                ("SSL_CERT_FILE", &system_ca),
                ("SSL_CERT_DIR", "/nonexistent"),
            ],
        )
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ca_reaches_a_tls_server_and_without_it_the_handshake_fails_clearly() {
    let dir = TempDir::new("hs-cli-tls");
    let ca = Ca::new("hs cli test CA");
    let ca_file = dir.file("ca.pem", &ca.cert.pem());
    let system_ca = dir.file("system.pem", &Ca::new("another CA").cert.pem());
    let servers = Servers::start(&ca, None).await;

    for url in servers.urls() {
        let output = about(&url, &["--ca", &ca_file], &system_ca).await;
        assert_eq!(output.status.code(), Some(0), "{url}: {}", stderr(&output));
        assert!(
            stdout(&output).contains("over TLS"),
            "{url}: {}",
            stdout(&output)
        );

        let output = about(&url, &[], &system_ca).await;
        assert_eq!(output.status.code(), Some(1), "{url}");
        let text = stderr(&output);
        assert!(
            text.starts_with("error: TLS handshake with"),
            "{url}: {text}"
        );
        assert!(text.contains("certificate"), "{url}: {text}");
        assert!(text.contains("hint: give the CA"), "{url}: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificate_flags_reach_a_server_that_requires_one() {
    let dir = TempDir::new("hs-cli-mtls");
    let ca = Ca::new("hs cli test CA");
    let client_ca = Ca::new("hs cli client CA");
    let (cert, key) = client_ca.leaf(&["gateway.example.com"]);
    let ca_file = dir.file("ca.pem", &ca.cert.pem());
    let cert_file = dir.file("client.pem", &cert.pem());
    let key_file = dir.file("client.key", &key.serialize_pem());
    let servers = Servers::start(&ca, Some(&client_ca)).await;

    for url in servers.urls() {
        let with_cert = [
            "--ca",
            &ca_file,
            "--client-cert",
            &cert_file,
            "--client-key",
            &key_file,
        ];
        let output = about(&url, &with_cert, &ca_file).await;
        assert_eq!(output.status.code(), Some(0), "{url}: {}", stderr(&output));
        assert!(stdout(&output).contains("over TLS"), "{url}");

        let output = about(&url, &["--ca", &ca_file], &ca_file).await;
        assert_eq!(output.status.code(), Some(1), "{url}");
        let text = stderr(&output);
        assert!(
            text.starts_with("error: TLS handshake with"),
            "{url}: {text}"
        );
    }
}

#[test]
fn certificate_flags_come_together_and_bad_files_are_named() {
    let output = hs(&["about", "--client-cert", "client.pem"]);
    assert_eq!(output.status.code(), Some(2), "clap's usage error");
    assert!(
        stderr(&output).contains("--client-key"),
        "{}",
        stderr(&output)
    );
    let output = hs(&["about", "--client-key", "client.key"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("--client-cert"),
        "{}",
        stderr(&output)
    );

    let dir = TempDir::new("hs-cli-tls-files");
    let missing = dir
        .file("empty.pem", "")
        .replace("empty.pem", "missing.pem");
    let not_pem = dir.file("not.pem", "not a certificate");
    let secret_line = "c2VjcmV0IGtleSBieXRlcyBuZXZlciBzaG93bg==!!";
    let bad_key = dir.file(
        "bad.key",
        &format!("-----BEGIN PRIVATE KEY-----\n{secret_line}\n-----END PRIVATE KEY-----\n"),
    );
    let cert = dir.file("client.pem", &Ca::new("a CA").cert.pem());
    // Nothing listens there: the files are checked before connecting.
    let url = "https://127.0.0.1:9";
    let cases: [(&[&str], &str); 4] = [
        (&["--ca", &missing], "--ca"),
        (&["--ca", &not_pem], "--ca"),
        (
            &["--client-cert", &not_pem, "--client-key", &bad_key],
            "--client-cert",
        ),
        (
            &["--client-cert", &cert, "--client-key", &bad_key],
            "--client-key",
        ),
    ];
    for (flags, named) in cases {
        let mut args = vec!["about", "--url", url];
        args.extend_from_slice(flags);
        let output = hs(&args);
        assert_eq!(output.status.code(), Some(1), "{flags:?}");
        let text = stderr(&output);
        assert!(
            text.starts_with(&format!("error: {named} ")),
            "{flags:?}: {text}"
        );
        let file = flags[flags.iter().position(|f| *f == named).unwrap() + 1];
        assert!(text.contains(file), "{flags:?}: {text}");
        assert!(!text.contains(secret_line), "{flags:?}: {text}");
    }
}
