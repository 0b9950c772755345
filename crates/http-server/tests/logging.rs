//! What the HTTP server writes on its `log` target: one DEBUG line per
//! request, with the op, status, time and body sizes. One test binary with
//! its own global logger.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use hs_core::observe::LogCapture;
use log::Level;

fn capture() -> &'static LogCapture {
    LogCapture::install()
}

#[tokio::test]
async fn each_request_is_logged_with_its_body_sizes() {
    let capture = capture();
    let server = common::start_open().await;
    let body =
        r#"{"_kind":"grid","meta":{},"cols":[{"name":"filter"}],"rows":[{"filter":"site"}]}"#;
    let response = server
        .client
        .post(server.url("read"))
        .header("Content-Type", "application/json")
        .header("Accept", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    let answer = response.bytes().await.unwrap();
    server.events_after(1);
    server.stop().await;

    let lines = capture.lines();
    let request_line = lines
        .iter()
        .find(|(_, target, text)| {
            target == "hs::http::server" && text.starts_with("POST read -> 200")
        })
        .unwrap_or_else(|| panic!("no request line in {lines:?}"));
    assert_eq!(request_line.0, Level::Debug);
    let sizes = format!("{} B in, {} B out", body.len(), answer.len());
    assert!(
        request_line.2.contains(&sizes),
        "{request_line:?} lacks `{sizes}`"
    );
}
