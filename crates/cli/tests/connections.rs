//! `hs serve` under connection attacks (issue 13, item 2): connections that
//! never finish their request headers, headers sent a byte at a time, idle
//! kept-alive connections, and a process out of file descriptors. Each
//! server runs with `ulimit -n` low or small limits, so the attacks stay
//! small: 50 stalled connections against `--max-connections 40`.

#![allow(clippy::unwrap_used)] // tests may unwrap (COMMON.md)

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use support::{ChildGuard, WAIT, hs, json_rows, serve, serve_with_fd_limit};

/// A request line and headers without the blank line that ends them.
const STALLED: &[u8] = b"GET /api/about HTTP/1.1\r\nHost: hs\r\nAccept: application/json\r\n";

/// Opens `count` connections that each send [`STALLED`] and nothing more.
fn stall(addr: &str, count: usize) -> Vec<TcpStream> {
    (0..count)
        .map(|_| {
            let mut stream = TcpStream::connect(addr).unwrap();
            // A refused connection may already be closed; that is fine.
            let _ = stream.write_all(STALLED);
            stream
        })
        .collect()
}

/// Whether the server closed `stream` (EOF or reset) within `limit`;
/// whatever it answered before closing is skipped.
fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 1024];
    while Instant::now() < deadline {
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return true,
        }
    }
    false
}

/// Runs `hs about --url URL` until it succeeds (bounded by [`WAIT`]);
/// answers the attempts it took.
fn about_until_served(url: &str) -> usize {
    let deadline = Instant::now() + WAIT;
    let mut attempts = 0;
    while Instant::now() < deadline {
        attempts += 1;
        let output = hs(&["about", "--url", url, "--format", "json"]);
        if output.status.success() {
            assert_eq!(json_rows(&output).len(), 1);
            return attempts;
        }
        thread::sleep(Duration::from_millis(100));
    }
    panic!("{url} never answered `about` after {attempts} attempts");
}

fn warnings(server: &ChildGuard, needle: &str) -> Vec<String> {
    server
        .stderr_lines()
        .into_iter()
        .filter(|line| line.contains("WARN") && line.contains(needle))
        .collect()
}

#[test]
fn fifty_stalled_header_connections_against_a_limit_of_forty_lock_out_no_one() {
    // 60 descriptors (`hs serve` starts with 12 open): without the bound,
    // 50 stalled connections leave the server none to accept real clients
    // with, and nothing ever frees them.
    let (server, addr) =
        serve_with_fd_limit(60, &["--max-connections", "40", "--header-timeout", "2s"]);
    let mut stalled = stall(&addr, 50);

    // The ten over the limit are refused, with a WARN.
    assert!(
        server.wait_for_stderr("max_connections", 1),
        "no refusal logged: {:#?}",
        server.stderr_lines()
    );
    let refusals = warnings(&server, "refused");
    assert!(!refusals.is_empty(), "{:#?}", server.stderr_lines());
    assert!(refusals[0].contains("40 connections open"), "{refusals:?}");

    // Real clients get in over both transports (once the header timeout
    // has freed the slots the stalled connections held).
    about_until_served(&format!("http://{addr}"));
    about_until_served(&format!("ws://{addr}"));

    // Every stalled connection was closed by the server.
    for (index, stream) in stalled.iter_mut().enumerate() {
        assert!(
            closed_within(stream, WAIT),
            "stalled connection {index} still open"
        );
    }
}

#[test]
fn a_client_sending_one_header_byte_a_second_is_cut_off_by_the_header_timeout() {
    let (_server, addr) = serve(&["--header-timeout", "2s"]);
    let mut stream = TcpStream::connect(&addr).unwrap();
    stream
        .write_all(b"GET /api/about HTTP/1.1\r\nX-Slow: ")
        .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let mut buf = [0u8; 1024];
    // Without a header timeout this would go on for as long as the client
    // likes; 30 bytes (about 30 s) is far past the 2 s limit.
    let mut sent = 0;
    let cut_off = loop {
        if sent == 30 {
            break false;
        }
        if stream.write_all(b"a").is_err() {
            break true;
        }
        sent += 1;
        match stream.read(&mut buf) {
            Ok(0) => break true,
            Ok(_) => {}
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break true,
        }
    };
    assert!(cut_off, "still connected after {sent} header bytes");
}

#[test]
fn an_idle_kept_alive_connection_is_closed_after_the_idle_timeout() {
    // A long header timeout, so that only the idle timeout can close it.
    let (_server, addr) = serve(&["--header-timeout", "10m", "--idle-timeout", "1s"]);
    let mut stream = TcpStream::connect(&addr).unwrap();
    stream
        .write_all(b"GET /api/about HTTP/1.1\r\nHost: hs\r\nAccept: application/json\r\n\r\n")
        .unwrap();
    // Read the whole response (headers, then Content-Length bytes).
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    let body_complete = |response: &[u8]| {
        let text = String::from_utf8_lossy(response);
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            return false;
        };
        let length: usize = head
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())?
            })
            .expect("a Content-Length");
        body.len() >= length
    };
    while !body_complete(&response) {
        let read = stream.read(&mut buf).unwrap();
        assert!(read > 0, "closed before the response was complete");
        response.extend_from_slice(&buf[..read]);
    }
    assert!(response.starts_with(b"HTTP/1.1 200"), "{response:?}");
    // Kept alive (HTTP/1.1 default), then left idle: the server closes it.
    assert!(
        closed_within(&mut stream, Duration::from_secs(60)),
        "idle connection still open after 60 s"
    );
}

#[test]
fn accepting_goes_on_after_the_process_runs_out_of_file_descriptors() {
    // The default bound (1 000) is far above what 32 descriptors allow.
    let (server, addr) = serve_with_fd_limit(32, &["--header-timeout", "1m"]);
    let stalled = stall(&addr, 40);
    assert!(
        server.wait_for_stderr("accept failed", 1),
        "no accept failure logged: {:#?}",
        server.stderr_lines()
    );
    let failures = warnings(&server, "accept failed");
    assert!(!failures.is_empty(), "{:#?}", server.stderr_lines());
    // Descriptors come back: the server accepts again.
    drop(stalled);
    about_until_served(&format!("http://{addr}"));
    about_until_served(&format!("ws://{addr}"));
}
