//! No secret reaches a log line at any level: SCRAM logins and token logins
//! over HTTP and WebSocket, with `RUST_LOG=trace` on both the `hs serve`
//! and the `hs` client side (hs's own targets and every library's, as the
//! `hs` binary installs its logger), every stderr line grepped for the
//! password, the token and the SCRAM messages that carry the proof.

#![allow(clippy::unwrap_used)] // tests may unwrap (COMMON.md)

mod support;

use support::{hs_env, json_rows, serve_with_env};

const USER: &str = "ada";
const PASSWORD: &str = "Pw-7f3a9c-secret";

fn login(addr: &str) -> String {
    support::login_token(addr, USER, PASSWORD)
}

/// What gives a secret away in a log line: the password, the token, or an
/// auth message's field that holds one (an issued token, a handshake token,
/// SCRAM data whose client-final message carries the proof).
fn leaks<'a>(line: &str, secrets: &[&'a str]) -> Option<&'a str> {
    const MARKERS: [&str; 8] = [
        "authToken\":\"",
        "authToken=",
        "handshakeToken\":\"",
        "handshakeToken=",
        "\"data\":\"",
        "data=",
        "Bearer ",
        "\"type\":\"scram\"",
    ];
    secrets
        .iter()
        .chain(MARKERS.iter())
        .find(|secret| line.contains(**secret))
        .copied()
}

#[test]
fn traced_logins_log_no_password_proof_or_token_on_either_side() {
    let trace = [("RUST_LOG", "trace")];
    let (server, addr) = serve_with_env(
        &[
            "--user",
            &format!("{USER}:{PASSWORD}:operator"),
            "--scram-iterations",
            "4096",
            "--event-log",
            "trace",
        ],
        &trace,
    );
    let token = login(&addr);
    let mut client_lines = Vec::new();
    for url in [format!("http://{addr}"), format!("ws://{addr}")] {
        // SCRAM login (over WebSocket: in WebSocket messages).
        let scram = hs_env(
            &[
                "read", "site", "--url", &url, "--user", USER, "--format", "json",
            ],
            &[("HS_PASSWORD", PASSWORD), ("RUST_LOG", "trace")],
        );
        assert_eq!(json_rows(&scram).len(), 1, "{url}: SCRAM login");
        // Token login (over WebSocket: {"authToken":..}).
        let by_token = hs_env(
            &[
                "read",
                "site",
                "--url",
                &url,
                &format!("--token={token}"),
                "--format",
                "json",
            ],
            &[("RUST_LOG", "trace")],
        );
        assert_eq!(json_rows(&by_token).len(), 1, "{url}: token login");
        for output in [scram, by_token] {
            let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
            client_lines.extend(stderr.lines().map(str::to_owned));
        }
    }
    // The server logged the exchanges (at TRACE, hs::ws::conn among others).
    assert!(server.wait_for_stderr("authenticated as ada", 2));
    let server_lines = server.stderr_lines();
    assert!(
        server_lines.iter().any(|line| line.contains("TRACE")),
        "the server traced"
    );
    // hs::ws::conn traced the auth frames it sent, without their content.
    assert!(
        server_lines.iter().any(|line| line.contains("hs::ws::conn")
            && line.contains("<authentication message, not logged>")),
        "the server traced its auth frames"
    );
    assert!(
        client_lines.iter().any(|line| line.contains("TRACE")),
        "the clients traced"
    );
    let mut leaked = Vec::new();
    for (side, lines) in [("server", &server_lines), ("client", &client_lines)] {
        for line in lines {
            if let Some(secret) = leaks(line, &[PASSWORD, &token]) {
                leaked.push(format!("{side} logged {secret:?}: {line}"));
            }
        }
    }
    assert!(leaked.is_empty(), "{}", leaked.join("\n"));
}
