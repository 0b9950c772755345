//! Issue 13, item 3: one address flooding `Authorization: HELLO` requests
//! must not keep anyone else from logging in. 2,000 HELLOs from 127.0.0.2
//! against a real `hs serve`, then SCRAM logins from 127.0.0.1 over HTTP
//! and WebSocket.

#![allow(clippy::unwrap_used)] // tests may unwrap (COMMON.md)

mod support;

use std::net::SocketAddr;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpSocket;

use hs_core::ws::{self, AuthMessage, ServerFrame};
use support::{WAIT, hs, json_rows, serve, stderr};

const USER: &str = "ada";
const PASSWORD: &str = "lovelace";
const FLOOD: usize = 2_000;

/// Sends `count` HELLOs for random users on one kept-alive connection from
/// `from`; answers the status of each response.
async fn flood_hellos(server: SocketAddr, from: &str, count: usize) -> Vec<u16> {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    let stream = socket.connect(server).await.unwrap();
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let mut statuses = Vec::with_capacity(count);
    for n in 0..count {
        let username = hs_core_b64(&format!("flood-{n}"));
        let request = format!(
            "GET /api/about HTTP/1.1\r\nHost: hs\r\nAuthorization: HELLO username={username}\r\n\r\n"
        );
        write.write_all(request.as_bytes()).await.unwrap();
        // Status line, headers (Content-Length), body.
        let mut line = String::new();
        read.read_line(&mut line).await.unwrap();
        let status: u16 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        let mut length = 0usize;
        loop {
            line.clear();
            read.read_line(&mut line).await.unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap();
                }
            }
        }
        let mut body = vec![0u8; length];
        read.read_exact(&mut body).await.unwrap();
        statuses.push(status);
    }
    statuses
}

/// One WebSocket `hello` from `from`: answers the server's reply frame.
async fn ws_hello(server: SocketAddr, from: &str) -> ServerFrame {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    let stream = socket.connect(server).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(format!("ws://{server}/api/ws"), stream)
        .await
        .unwrap();
    let hello = ws::encode_auth(&AuthMessage::Hello {
        username: hs_core_b64(USER),
    });
    ws.send(Message::text(hello)).await.unwrap();
    loop {
        match ws.next().await.expect("a reply").unwrap() {
            Message::Text(text) => return ws::decode_server_frame(&text).unwrap(),
            Message::Close(_) => panic!("closed without a reply"),
            _ => {}
        }
    }
}

/// base64url without padding, as HELLO's username is sent.
fn hs_core_b64(text: &str) -> String {
    hs_core::auth::http::Authorization::hello(text)
        .header_value()
        .trim_start_matches("HELLO username=")
        .to_owned()
}

#[test]
fn a_hello_flood_from_one_address_leaves_logins_from_others_working() {
    let (server, addr) = serve(&[
        "--user",
        &format!("{USER}:{PASSWORD}:operator"),
        "--scram-iterations",
        "4096",
    ]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let statuses = runtime.block_on(async {
        tokio::time::timeout(
            WAIT,
            flood_hellos(addr.parse().unwrap(), "127.0.0.2", FLOOD),
        )
        .await
        .expect("the flood ran within the wait")
    });

    // The flooding address gets its share of handshakes, then 429s.
    let challenged = statuses.iter().filter(|&&status| status == 401).count();
    let refused = statuses.iter().filter(|&&status| status == 429).count();
    assert_eq!(challenged, hs_core::auth::DEFAULT_MAX_HANDSHAKES_PER_SOURCE);
    assert_eq!(challenged + refused, FLOOD, "{statuses:?}");
    assert!(
        server.wait_for_stderr("handshakes in progress from that address", 1),
        "{:#?}",
        server.stderr_lines()
    );

    // Its WebSocket `hello` is refused too (the same handshake table).
    let reply = runtime.block_on(async {
        tokio::time::timeout(WAIT, ws_hello(addr.parse().unwrap(), "127.0.0.2"))
            .await
            .unwrap()
    });
    assert!(
        matches!(reply, ServerFrame::Auth(AuthMessage::AuthErr)),
        "{reply:?}"
    );

    // Real users from another address log in over both transports.
    let token = runtime.block_on(async {
        let client = hs_http_client::HttpClient::builder(format!("http://{addr}"))
            .credentials(USER, PASSWORD)
            .build()
            .unwrap();
        client.login().await.unwrap().expect("SCRAM issues a token")
    });
    assert!(!token.expose().is_empty());
    for url in [format!("http://{addr}"), format!("ws://{addr}")] {
        let output = hs(&[
            "read",
            "site",
            "--url",
            &url,
            "--user",
            USER,
            "--password",
            PASSWORD,
            "--format",
            "json",
        ]);
        assert!(output.status.success(), "{url}: {}", stderr(&output));
        assert_eq!(json_rows(&output).len(), 1, "{url}");
    }
}
