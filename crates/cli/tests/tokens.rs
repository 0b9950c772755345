//! `--token`/`HS_TOKEN` (a pre-issued bearer token) over both transports,
//! and `--ws-auth token`: SCRAM over HTTP, then the token handed to the
//! WebSocket endpoint as `{"authToken":..}` (what haystack-py's FastAPI
//! `/api/ws` requires), against a real `hs serve` with a SCRAM user, and
//! `--ws-auth auto` turning to it when an endpoint refuses SCRAM with 4003.

#![allow(clippy::unwrap_used)]
// tests may unwrap (COMMON.md)
// tungstenite's handshake callback type has a large error (an HTTP response).
#![allow(clippy::result_large_err)]

mod support;

use std::time::{Duration, Instant};

use support::{ChildGuard, hs, hs_env, json_rows, scrape, series, serve, stderr};

const USER: &str = "ada";
const PASSWORD: &str = "lovelace";

fn scram_server() -> (ChildGuard, String) {
    serve(&[
        "--user",
        &format!("{USER}:{PASSWORD}:operator"),
        "--scram-iterations",
        "4096",
    ])
}

fn login(addr: &str) -> String {
    support::login_token(addr, USER, PASSWORD)
}

#[test]
fn a_pre_issued_token_opens_both_transports() {
    let (_server, addr) = scram_server();
    let token = login(&addr);
    for url in [format!("http://{addr}"), format!("ws://{addr}")] {
        let by_flag = hs(&[
            "read",
            "site",
            "--url",
            &url,
            &format!("--token={token}"),
            "--format",
            "json",
        ]);
        assert_eq!(json_rows(&by_flag).len(), 1, "{url}");
        let by_env = hs_env(
            &["read", "site", "--url", &url, "--format", "json"],
            &[("HS_TOKEN", &token)],
        );
        assert_eq!(json_rows(&by_env).len(), 1, "{url}");
        // A token in the environment wins over a user there too.
        let with_user_env = hs_env(
            &["about", "--url", &url, "--format", "json"],
            &[("HS_TOKEN", &token), ("HS_USER", USER)],
        );
        assert_eq!(json_rows(&with_user_env).len(), 1, "{url}");

        // HS_USER alone, without a token, still asks for the password.
        let no_password = hs_env(&["about", "--url", &url], &[("HS_USER", USER)]);
        assert!(
            stderr(&no_password).contains("--user needs a password"),
            "{}",
            stderr(&no_password)
        );

        let refused = hs(&["read", "site", "--url", &url, "--token", "not-a-token"]);
        assert!(!refused.status.success(), "{url}");
        assert!(
            stderr(&refused).contains("the auth token was refused"),
            "{url}: {}",
            stderr(&refused)
        );
    }
}

#[test]
fn ws_auth_token_logs_in_over_http_and_hands_the_token_to_the_websocket() {
    let (_server, addr) = scram_server();
    let ws = format!("ws://{addr}");
    let http_logins = |metrics: &str| {
        series(
            metrics,
            r#"haystack_request_duration_seconds_count{op="auth",side="server",transport="http"}"#,
        )
    };
    let ws_reads = |metrics: &str| {
        series(
            metrics,
            r#"haystack_request_duration_seconds_count{op="read",side="server",transport="ws"}"#,
        )
    };
    // SCRAM in WebSocket messages (the default) makes no HTTP login.
    let scram = hs(&[
        "read",
        "site",
        "--url",
        &ws,
        "--user",
        USER,
        "--password",
        PASSWORD,
        "--format",
        "json",
    ]);
    assert_eq!(json_rows(&scram).len(), 1);
    let before = scrape(&addr);
    assert_eq!(http_logins(&before), 0.0, "{before}");
    assert_eq!(ws_reads(&before), 1.0);

    let handed = hs(&[
        "read",
        "site",
        "--url",
        &ws,
        "--user",
        USER,
        "--password",
        PASSWORD,
        "--ws-auth",
        "token",
        "--format",
        "json",
        "--log",
        "hs::auth=info",
    ]);
    assert_eq!(json_rows(&handed).len(), 1, "{}", stderr(&handed));
    assert!(
        stderr(&handed).contains("its token opens ws://"),
        "{}",
        stderr(&handed)
    );
    let after = scrape(&addr);
    assert!(http_logins(&after) > 0.0, "SCRAM ran over HTTP: {after}");
    assert_eq!(ws_reads(&after), 2.0, "the read went over WebSocket");

    let wrong = hs(&[
        "read",
        "site",
        "--url",
        &ws,
        "--user",
        USER,
        "--password",
        "wrong",
        "--ws-auth",
        "token",
    ]);
    assert!(!wrong.status.success());
}

/// A stand-in for haystack-py's FastAPI app in front of a real `hs serve`:
/// HTTP is relayed as is; a WebSocket whose first message is not
/// `{"authToken":..}` is closed with 4003 `Authentication required` (what
/// FastAPI's `/api/ws` does, docs/protocol.md 4.3, transcript
/// fastapi-ws-token-failure); one that starts with a token is relayed to the
/// server's endpoint, which checks the token. Accepts connections for WAIT.
mod fastapi_gate {
    use futures_util::{SinkExt, StreamExt};
    use tokio::io::AsyncWriteExt;
    use tokio::net::{TcpListener, TcpStream};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;

    /// Starts the gate for the server at `target`; answers its address.
    pub(super) fn start(target: &str) -> String {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap().to_string();
        let target = target.to_owned();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = TcpListener::from_std(std_listener).unwrap();
                let _ = tokio::time::timeout(super::support::WAIT, async {
                    while let Ok((socket, _)) = listener.accept().await {
                        tokio::spawn(serve(socket, target.clone()));
                    }
                })
                .await;
            });
        });
        addr
    }

    async fn serve(socket: TcpStream, target: String) {
        // The request head decides: an upgrade is ours, anything else is relayed.
        let mut head = [0u8; 4096];
        let mut upgrade = false;
        for _ in 0..100 {
            let Ok(n) = socket.peek(&mut head).await else {
                return;
            };
            let text = String::from_utf8_lossy(&head[..n]).to_lowercase();
            if text.contains("\r\n\r\n") || n == head.len() || n == 0 {
                upgrade = text.contains("upgrade: websocket");
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        if upgrade {
            websocket(socket, &target).await;
        } else if let Ok(mut upstream) = TcpStream::connect(&target).await {
            let mut socket = socket;
            let _ = tokio::io::copy_bidirectional(&mut socket, &mut upstream).await;
            let _ = socket.shutdown().await;
        }
    }

    async fn websocket(socket: TcpStream, target: &str) {
        let echo_subprotocol = |request: &Request, mut response: Response| {
            if let Some(protocol) = request.headers().get("sec-websocket-protocol") {
                response
                    .headers_mut()
                    .insert("sec-websocket-protocol", protocol.clone());
            }
            Ok(response)
        };
        let Ok(mut client) = tokio_tungstenite::accept_hdr_async(socket, echo_subprotocol).await
        else {
            return;
        };
        let first = match client.next().await {
            Some(Ok(Message::Text(text))) if text.as_str().contains("\"authToken\"") => text,
            _ => {
                let _ = client
                    .close(Some(CloseFrame {
                        code: 4003.into(),
                        reason: "Authentication required".into(),
                    }))
                    .await;
                return;
            }
        };
        let Ok((mut upstream, _)) =
            tokio_tungstenite::connect_async(format!("ws://{target}/api/ws")).await
        else {
            return;
        };
        if upstream.send(Message::Text(first)).await.is_err() {
            return;
        }
        loop {
            tokio::select! {
                message = client.next() => match message {
                    Some(Ok(message)) if !message.is_close() => {
                        if upstream.send(message).await.is_err() { break; }
                    }
                    _ => break,
                },
                message = upstream.next() => match message {
                    Some(Ok(message)) if !message.is_close() => {
                        if client.send(message).await.is_err() { break; }
                    }
                    _ => break,
                },
            }
        }
        let _ = client.close(None).await;
        let _ = upstream.close(None).await;
    }
}

#[test]
fn a_token_only_endpoint_is_detected_by_its_4003_and_logged_in_to_with_an_http_token() {
    let (_server, addr) = scram_server();
    let gate = format!("ws://{}", fastapi_gate::start(&addr));

    // SCRAM in WebSocket messages is refused, and the error says how.
    let scram = hs(&[
        "read",
        "site",
        "--url",
        &gate,
        "--user",
        USER,
        "--password",
        PASSWORD,
        "--ws-auth",
        "scram",
    ]);
    assert!(!scram.status.success());
    assert!(
        stderr(&scram).contains("4003"),
        "the server's close code is shown: {}",
        stderr(&scram)
    );

    // --ws-auth token, and auto (the default), log in over HTTP and hand the token over.
    for how in ["token", "auto"] {
        let output = hs(&[
            "read",
            "site",
            "--url",
            &gate,
            "--user",
            USER,
            "--password",
            PASSWORD,
            "--ws-auth",
            how,
            "--format",
            "json",
            "--log",
            "hs::auth=info",
        ]);
        assert_eq!(json_rows(&output).len(), 1, "{how}: {}", stderr(&output));
        let log = stderr(&output);
        assert!(log.contains("its token opens ws://"), "{how}: {log}");
        assert_eq!(
            log.contains("refused a SCRAM login with close 4003"),
            how == "auto",
            "{how}: {log}"
        );
    }
    let metrics = scrape(&addr);
    assert_eq!(
        series(
            &metrics,
            r#"haystack_request_duration_seconds_count{op="read",side="server",transport="ws"}"#
        ),
        2.0,
        "both reads reached the server over WebSocket: {metrics}"
    );
}

#[test]
fn token_ttl_expires_tokens_over_both_transports() {
    let ttl = Duration::from_secs(5);
    let (_server, addr) = serve(&[
        "--user",
        &format!("{USER}:{PASSWORD}:operator"),
        "--scram-iterations",
        "4096",
        "--token-ttl",
        "5s",
    ]);
    let before_login = Instant::now();
    let token = login(&addr);
    let after_login = Instant::now();
    let urls = [format!("http://{addr}"), format!("ws://{addr}")];
    let read = |url: &str| hs(&["read", "site", "--url", url, &format!("--token={token}")]);

    // Within the TTL the token opens both transports (checked only when the
    // machine was quick enough to ask within it).
    let fresh: Vec<_> = urls.iter().map(|url| read(url)).collect();
    if Instant::now() < before_login + ttl {
        for (url, output) in urls.iter().zip(&fresh) {
            assert!(output.status.success(), "{url}: {}", stderr(output));
        }
    }

    // Past it (a bounded wait: the token was issued before `after_login`),
    // both refuse it with the documented error.
    let expired = after_login + ttl + Duration::from_millis(100);
    while Instant::now() < expired {
        std::thread::sleep(Duration::from_millis(50));
    }
    for url in &urls {
        let refused = read(url);
        assert!(!refused.status.success(), "{url}");
        assert!(
            stderr(&refused).contains("the auth token was refused"),
            "{url}: {}",
            stderr(&refused)
        );
    }
}
