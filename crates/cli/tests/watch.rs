//! `hs watch` against a real `hs serve`: falling back to watchPoll when the
//! server never pushes, settling on pushes when it does, and `--columns`.

#![allow(clippy::unwrap_used)] // tests may unwrap (COMMON.md)

mod support;

use std::time::{Duration, Instant};

use support::{ChildGuard, WAIT, hs, read_all, scrape, series, serve, stderr};

const SETPOINTS: &str = "point and sp and equipRef->ahu";

/// `hs write demo-ahu1-dat-sp 8 VAL` over HTTP.
fn write_setpoint(http: &str, val: &str) {
    let output = hs(&["write", "demo-ahu1-dat-sp", "8", val, "--url", http]);
    assert!(output.status.success(), "{}", stderr(&output));
}

/// The header and the rows of the one table printed after the `──` line.
fn table(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .skip_while(|line| !line.starts_with("── "))
        .skip(1)
        .filter(|line| !line.starts_with('─'))
        .map(str::to_owned)
        .collect()
}

#[test]
fn watch_over_ws_falls_back_to_polling_when_the_server_never_pushes() {
    let (_server, addr) = serve(&["--no-push", "--event-log", "off"]);
    let (http, ws) = (format!("http://{addr}"), format!("ws://{addr}"));
    let (mut watch, stdout) = ChildGuard::spawn(
        &[
            "watch",
            SETPOINTS,
            "--url",
            &ws,
            "--count",
            "1",
            "--duration",
            "15s",
            "--poll",
            "100ms",
            "--columns",
            "id,writeVal",
        ],
        &[],
    );
    assert!(
        watch.wait_for_stderr("watching", 1),
        "{:?}",
        watch.stderr_lines()
    );
    write_setpoint(&http, "61°F");
    let status = watch.wait_exit().expect("hs watch stops after --count 1");
    let log = watch.stderr_lines();
    assert!(status.success(), "{log:#?}");
    assert!(
        log.iter()
            .any(|l| l.contains("waiting for server pushes, polling with watchPoll every 100ms")),
        "the banner names the mode: {log:#?}"
    );
    assert!(
        log.iter()
            .any(|l| l.contains("no push from the server: polling with watchPoll every 100ms")),
        "the switch is announced: {log:#?}"
    );
    let rows = table(&read_all(stdout));
    assert_eq!(rows.len(), 2, "{rows:#?}");
    assert_eq!(
        rows[0].split_whitespace().collect::<Vec<_>>(),
        ["id", "writeVal"]
    );
    assert!(rows[1].starts_with("@demo-ahu1-dat-sp"), "{rows:#?}");
    assert!(rows[1].ends_with("61°F"), "{rows:#?}");
}

#[test]
fn watch_over_ws_settles_on_pushes_when_the_server_pushes() {
    let (_server, addr) = serve(&["--event-log", "off"]);
    let (http, ws) = (format!("http://{addr}"), format!("ws://{addr}"));
    // A poll interval far longer than the test: the change can only come as a push.
    let (mut watch, stdout) = ChildGuard::spawn(
        &[
            "watch",
            SETPOINTS,
            "--url",
            &ws,
            "--count",
            "1",
            "--duration",
            "15s",
            "--poll",
            "60s",
            "--columns",
            "dis,writeLevel",
        ],
        &[],
    );
    assert!(
        watch.wait_for_stderr("watching", 1),
        "{:?}",
        watch.stderr_lines()
    );
    write_setpoint(&http, "62°F");
    let status = watch.wait_exit().expect("hs watch stops after --count 1");
    let log = watch.stderr_lines();
    assert!(status.success(), "{log:#?}");
    assert!(
        log.iter()
            .any(|l| l.contains("a push arrived: waiting for server pushes")),
        "{log:#?}"
    );
    let rows = table(&read_all(stdout));
    assert_eq!(
        rows[0].split_whitespace().collect::<Vec<_>>(),
        ["dis", "writeLevel"]
    );
    assert_eq!(rows.len(), 2, "{rows:#?}");
    assert!(rows[1].trim_end().ends_with('8'), "{rows:#?}");
}

#[test]
fn watch_polls_when_asked_and_refuses_push_mode_over_http() {
    let (_server, addr) = serve(&["--event-log", "off"]);
    let (http, ws) = (format!("http://{addr}"), format!("ws://{addr}"));
    let (mut watch, stdout) = ChildGuard::spawn(
        &[
            "watch",
            SETPOINTS,
            "--url",
            &ws,
            "--mode",
            "poll",
            "--poll",
            "100ms",
            "--count",
            "1",
            "--duration",
            "15s",
            "--format",
            "json",
        ],
        &[],
    );
    assert!(
        watch.wait_for_stderr("polling with watchPoll every 100ms", 1),
        "{:?}",
        watch.stderr_lines()
    );
    write_setpoint(&http, "63°F");
    let status = watch.wait_exit().expect("hs watch stops after --count 1");
    assert!(status.success(), "{:?}", watch.stderr_lines());
    let grid: serde_json::Value = serde_json::from_str(read_all(stdout).trim()).unwrap();
    assert_eq!(grid["rows"][0]["id"]["val"], "demo-ahu1-dat-sp");

    let refused = hs(&[
        "watch",
        SETPOINTS,
        "--url",
        &http,
        "--mode",
        "push",
        "--duration",
        "1s",
    ]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("HTTP has no pushes"),
        "{}",
        stderr(&refused)
    );
}

#[test]
fn watch_waiting_only_for_pushes_renews_its_lease() {
    let (_server, addr) = serve(&["--event-log", "off"]);
    let ws = format!("ws://{addr}");
    let (mut watch, stdout) = ChildGuard::spawn(
        &[
            "watch", SETPOINTS, "--url", &ws, "--mode", "push", "--lease", "2s", "--count", "1",
        ],
        &[],
    );
    assert!(
        watch.wait_for_stderr("watching", 1),
        "{:?}",
        watch.stderr_lines()
    );
    // Without polls, only a renewing watchSub keeps the watch's lease: wait
    // (bounded) until the server has seen one beside the first.
    let subs = || {
        series(
            &scrape(&addr),
            r#"haystack_request_duration_seconds_count{op="watchSub",side="server",transport="ws"}"#,
        )
    };
    let deadline = Instant::now() + WAIT;
    while subs() < 2.0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(subs() >= 2.0, "no renewal: {:?}", watch.stderr_lines());
    write_setpoint(&format!("http://{addr}"), "64°F");
    let status = watch.wait_exit().expect("hs watch stops after --count 1");
    assert!(status.success(), "{:?}", watch.stderr_lines());
    assert!(read_all(stdout).contains("64°F"));
}

/// `hs watch` outlives a `kill -9` of its server and a restart on the same
/// port. Writes follow the
/// restart until `hs watch --count 1` prints one (each is a change; the
/// loop is bounded), and it must then end successfully with that change.
fn watch_survives_a_server_restart(scheme: &str, mode: &str) {
    let (mut server, addr) = serve(&["--event-log", "off"]);
    let url = format!("{scheme}://{addr}");
    let (mut watch, stdout) = ChildGuard::spawn(
        &[
            "watch",
            SETPOINTS,
            "--url",
            &url,
            "--mode",
            mode,
            "--count",
            "1",
            "--duration",
            "100s",
            "--poll",
            "100ms",
            "--timeout",
            "2s",
            "--columns",
            "id,writeVal",
        ],
        &[],
    );
    assert!(
        watch.wait_for_stderr("watching", 1),
        "{:?}",
        watch.stderr_lines()
    );
    server.kill();
    let (_restarted, again) = support::serve_on(&addr, &["--event-log", "off"]);
    assert_eq!(again, addr);
    let http = format!("http://{addr}");
    let mut status = None;
    for attempt in 0..100 {
        write_setpoint(&http, &format!("{}°F", 70 + attempt));
        status = watch.wait_exit_within(Duration::from_millis(500));
        if status.is_some() {
            break;
        }
    }
    let log = watch.stderr_lines();
    let status = status.unwrap_or_else(|| panic!("hs watch printed no change: {log:#?}"));
    assert!(status.success(), "{log:#?}");
    if scheme == "http" {
        assert!(
            log.iter()
                .any(|line| line.contains("re-subscribed as watch")),
            "{log:#?}"
        );
    }
    let rows = table(&read_all(stdout));
    assert_eq!(rows.len(), 2, "{rows:#?}");
    assert!(rows[1].starts_with("@demo-ahu1-dat-sp"), "{rows:#?}");
    assert!(rows[1].contains("°F"), "{rows:#?}");
}

#[test]
fn watch_over_ws_survives_a_server_restart() {
    watch_survives_a_server_restart("ws", "push");
}

#[test]
fn watch_over_http_survives_a_server_restart() {
    watch_survives_a_server_restart("http", "poll");
}
