//! What the HTTP server writes on its `log` target: one DEBUG line per
//! request, with the op, status, time and body sizes. One test binary with
//! its own global logger.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use std::sync::{Mutex, OnceLock};

use log::{Level, LevelFilter, Log, Metadata, Record};

struct Capture(Mutex<Vec<(Level, String, String)>>);

impl Log for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &Record<'_>) {
        self.0.lock().unwrap().push((
            record.level(),
            record.target().to_owned(),
            record.args().to_string(),
        ));
    }
    fn flush(&self) {}
}

fn capture() -> &'static Capture {
    static CAPTURE: OnceLock<&'static Capture> = OnceLock::new();
    CAPTURE.get_or_init(|| {
        let capture: &'static Capture = Box::leak(Box::new(Capture(Mutex::new(Vec::new()))));
        log::set_logger(capture).unwrap();
        log::set_max_level(LevelFilter::Debug);
        capture
    })
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

    let lines = capture.0.lock().unwrap();
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
