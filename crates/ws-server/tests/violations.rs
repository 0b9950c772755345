//! Frames that break RFC 6455, sent as raw bytes after a real upgrade: each
//! closes the connection with its code (1002 protocol error, 1007 invalid
//! UTF-8), and the server keeps serving others.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A TCP connection upgraded to WebSocket by hand.
async fn upgraded(server: &TestServer) -> TcpStream {
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    let request = format!(
        "GET /api/ws HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        server.addr
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert!(head.len() < 4096, "response head too long");
        let read = tokio::time::timeout(WAIT, tcp.read(&mut byte))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(read, 1, "connection closed during the upgrade");
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    tcp
}

/// A client frame: FIN and opcode in `first`, masked with a fixed key.
fn masked(first: u8, payload: &[u8]) -> Vec<u8> {
    let key = [0x12, 0x34, 0x56, 0x78];
    let mut frame = vec![first];
    match payload.len() {
        len @ 0..=125 => frame.push(0x80 | len as u8),
        len => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        }
    }
    frame.extend_from_slice(&key);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    frame
}

/// Reads server frames until a close frame; its code and reason.
async fn close_of(tcp: &mut TcpStream) -> (u16, String) {
    let read = async {
        loop {
            let mut header = [0u8; 2];
            tcp.read_exact(&mut header)
                .await
                .expect("a frame from the server");
            assert_eq!(header[1] & 0x80, 0, "server frames are not masked");
            let len = match header[1] & 0x7f {
                126 => {
                    let mut len = [0u8; 2];
                    tcp.read_exact(&mut len).await.unwrap();
                    u64::from(u16::from_be_bytes(len))
                }
                127 => {
                    let mut len = [0u8; 8];
                    tcp.read_exact(&mut len).await.unwrap();
                    u64::from_be_bytes(len)
                }
                len => u64::from(len),
            };
            let mut payload = vec![0u8; usize::try_from(len).unwrap()];
            tcp.read_exact(&mut payload).await.unwrap();
            if header[0] & 0x0f == 0x8 {
                assert!(payload.len() >= 2, "a close frame with a code");
                let code = u16::from_be_bytes([payload[0], payload[1]]);
                return (code, String::from_utf8(payload[2..].to_vec()).unwrap());
            }
        }
    };
    tokio::time::timeout(WAIT, read)
        .await
        .expect("a close frame within the wait")
}

#[tokio::test]
async fn protocol_violations_close_with_1002_and_bad_utf8_with_1007() {
    let server = start(|b| b).await;
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("unmasked text frame", vec![0x81, 0x02, b'h', b'i'], 1002),
        ("RSV1 set", masked(0x80 | 0x40 | 0x1, b"{}"), 1002),
        ("reserved data opcode", masked(0x80 | 0x3, b""), 1002),
        ("reserved control opcode", masked(0x80 | 0xB, b""), 1002),
        (
            "ping over 125 bytes",
            masked(0x80 | 0x9, &[b'p'; 126]),
            1002,
        ),
        ("fragmented ping", masked(0x9, b"p"), 1002),
        ("continuation without a start", masked(0x80, b"{}"), 1002),
        (
            "text that is not UTF-8",
            masked(0x81, &[b'"', 0xC3, 0x28, b'"']),
            1007,
        ),
    ];
    for (n, (case, bytes, code)) in cases.into_iter().enumerate() {
        let mut tcp = upgraded(&server).await;
        tcp.write_all(&bytes).await.unwrap();
        let (got, reason) = close_of(&mut tcp).await;
        assert_eq!(got, code, "{case}: closed with {got} {reason}");
        let expected = if code == 1007 {
            "invalid UTF-8"
        } else {
            "protocol error"
        };
        assert_eq!(reason, expected, "{case}");
        drop(tcp);
        assert!(
            server.wait_disconnects(n + 1).await,
            "{case}: connection ended"
        );
    }
    assert_eq!(
        errors_of(&server.recorder, "invalid"),
        vec!["protocol"; 8],
        "each violation observed once"
    );
    // Others are served throughout.
    let mut client = server.client().await;
    assert_eq!(
        client.request("ok", "about", empty_grid()).await["id"],
        "ok"
    );
    client.close().await;
    server.stop().await;
}
