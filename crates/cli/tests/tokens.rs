//! `--token`/`HS_TOKEN` (a pre-issued bearer token) over both transports,
//! and `--ws-auth token`: SCRAM over HTTP, then the token handed to the
//! WebSocket endpoint as `{"authToken":..}` (what haystack-py's FastAPI
//! `/api/ws` requires), against a real `hs serve` with a SCRAM user.

#![allow(clippy::unwrap_used)] // tests may unwrap (COMMON.md)

mod support;

use support::{Server, hs, hs_with, json_rows, scrape, series, serve, stderr};

const USER: &str = "ada";
const PASSWORD: &str = "lovelace";

fn scram_server() -> Server {
    serve(&[
        "--user",
        &format!("{USER}:{PASSWORD}:operator"),
        "--scram-iterations",
        "4096",
    ])
}

/// A token issued by an HTTP login with the library client.
fn login(server: &Server) -> String {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = hs_http_client::HttpClient::builder(server.http())
            .credentials(USER, PASSWORD)
            .build()
            .unwrap();
        let token = client.login().await.unwrap().expect("SCRAM issues a token");
        token.expose().to_owned()
    })
}

#[test]
fn a_pre_issued_token_opens_both_transports() {
    let server = scram_server();
    let token = login(&server);
    for url in [server.http(), server.ws()] {
        let by_flag = hs(&[
            "read", "site", "--url", &url, "--token", &token, "--format", "json",
        ]);
        assert_eq!(json_rows(&by_flag).len(), 1, "{url}");
        let by_env = hs_with(
            &["read", "site", "--url", &url, "--format", "json"],
            &[("HS_TOKEN", &token)],
        );
        assert_eq!(json_rows(&by_env).len(), 1, "{url}");
        // A token in the environment wins over a user there too.
        let with_user_env = hs_with(
            &["about", "--url", &url, "--format", "json"],
            &[("HS_TOKEN", &token), ("HS_USER", USER)],
        );
        assert_eq!(json_rows(&with_user_env).len(), 1, "{url}");

        // HS_USER alone, without a token, still asks for the password.
        let no_password = hs_with(&["about", "--url", &url], &[("HS_USER", USER)]);
        assert!(
            stderr(&no_password).contains("--user needs a password"),
            "{}",
            stderr(&no_password)
        );

        let refused = hs(&["read", "site", "--url", &url, "--token", "not-a-token"]);
        assert!(!refused.status.success(), "{url}");
        assert!(
            stderr(&refused).contains("token refused"),
            "{url}: {}",
            stderr(&refused)
        );
    }
}

#[test]
fn ws_auth_token_logs_in_over_http_and_hands_the_token_to_the_websocket() {
    let server = scram_server();
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
        &server.ws(),
        "--user",
        USER,
        "--password",
        PASSWORD,
        "--format",
        "json",
    ]);
    assert_eq!(json_rows(&scram).len(), 1);
    let before = scrape(&server.addr);
    assert_eq!(http_logins(&before), 0.0, "{before}");
    assert_eq!(ws_reads(&before), 1.0);

    let handed = hs(&[
        "read",
        "site",
        "--url",
        &server.ws(),
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
    let after = scrape(&server.addr);
    assert!(http_logins(&after) > 0.0, "SCRAM ran over HTTP: {after}");
    assert_eq!(ws_reads(&after), 2.0, "the read went over WebSocket");

    let wrong = hs(&[
        "read",
        "site",
        "--url",
        &server.ws(),
        "--user",
        USER,
        "--password",
        "wrong",
        "--ws-auth",
        "token",
    ]);
    assert!(!wrong.status.success());
}
