//! `hs serve` as a real process on port 0, driven by `hs read`, `hs watch`,
//! `hs write` and by the Rust clients; `/metrics` checked against the
//! requests made; SIGINT shuts it down with every disconnect observed.

#![allow(clippy::unwrap_used)] // tests may unwrap (COMMON.md); clippy.toml covers only #[test] fns

mod support;

use std::io::{BufReader, Read};
use std::time::{Duration, Instant};

use support::{ChildGuard, WAIT, hs, json_rows, scrape, series, serve};

fn requests(metrics: &str, op: &str, transport: &str) -> f64 {
    series(
        metrics,
        &format!(
            r#"haystack_request_duration_seconds_count{{op="{op}",side="server",transport="{transport}"}}"#
        ),
    )
}

#[test]
fn serve_is_driven_by_the_cli_and_metrics_count_every_request_then_sigint_closes_cleanly() {
    let (mut server, addr) = serve(&[]);
    let http = format!("http://{addr}");
    let ws = format!("ws://{addr}");

    // hs read over both transports, as JSON and Zinc.
    let ahus = json_rows(&hs(&["read", "ahu", "--url", &http, "--format", "json"]));
    assert_eq!(ahus.len(), 4);
    let by_id = json_rows(&hs(&[
        "read",
        "--id",
        "@demo-ahu1-dat",
        "--url",
        &ws,
        "--format",
        "json",
    ]));
    assert_eq!(by_id.len(), 1);
    assert_eq!(by_id[0]["id"]["val"], "demo-ahu1-dat");
    let zinc = hs(&["read", "site", "--url", &http, "--format", "zinc"]);
    assert!(zinc.status.success());
    assert!(String::from_utf8_lossy(&zinc.stdout).starts_with("ver:\"3.0\""));

    // hs watch over WebSocket prints the push caused by hs write over HTTP.
    let (mut watch, watch_stdout) = ChildGuard::spawn(
        &[
            "watch",
            "point and sp and equipRef->ahu",
            "--url",
            &ws,
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
        watch.wait_for_stderr("watching", 1),
        "{:?}",
        watch.stderr_lines()
    );
    let write = hs(&[
        "write",
        "demo-ahu1-dat-sp",
        "8",
        "57°F",
        "--url",
        &http,
        "--format",
        "json",
    ]);
    let levels = json_rows(&write);
    assert_eq!(levels.len(), 17);
    let status = watch
        .wait_exit_within(WAIT)
        .expect("hs watch stops after --count 1");
    assert!(status.success(), "{:?}", watch.stderr_lines());
    let mut pushed = String::new();
    BufReader::new(watch_stdout)
        .read_to_string(&mut pushed)
        .unwrap();
    let push: serde_json::Value = serde_json::from_str(pushed.trim()).expect("one JSON grid");
    assert_eq!(push["rows"][0]["id"]["val"], "demo-ahu1-dat-sp");
    let level = &push["rows"][0]["writeLevel"];
    assert_eq!(
        level.as_f64().or(level["val"].as_f64()),
        Some(8.0),
        "{push}"
    );

    // The Rust clients against the same process.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        use hs_ws_client::HaystackClient;
        let client = hs_http_client::HttpClient::builder(format!("{http}/api"))
            .build()
            .unwrap();
        assert_eq!(
            client.read_filter("ahu", Some(2)).await.unwrap().rows.len(),
            2
        );
        let ws_client = hs_ws_client::WsClient::connect(format!("{ws}/api/ws"))
            .await
            .unwrap();
        assert_eq!(
            ws_client
                .read_filter("site", None)
                .await
                .unwrap()
                .rows
                .len(),
            1
        );
        ws_client.close().await.unwrap();
    });

    // /metrics counts exactly the requests made above.
    let metrics = scrape(&addr);
    assert_eq!(
        requests(&metrics, "read", "http"),
        3.0,
        "hs read ahu, hs read site, HttpClient\n{metrics}"
    );
    assert_eq!(
        requests(&metrics, "read", "ws"),
        3.0,
        "hs read --id, hs watch's read, WsClient\n{metrics}"
    );
    assert_eq!(
        requests(&metrics, "pointWrite", "http"),
        2.0,
        "the write and the array read"
    );
    assert_eq!(requests(&metrics, "watchSub", "ws"), 1.0);
    assert_eq!(requests(&metrics, "watchUnsub", "ws"), 1.0);
    assert_eq!(
        series(&metrics, r#"haystack_ws_connections_total{side="server"}"#),
        3.0
    );
    assert_eq!(
        series(
            &metrics,
            r#"haystack_ws_messages_sent_total{op="push",side="server"}"#
        ),
        1.0
    );

    // Hold a connection open, then SIGINT: it is closed and its disconnect observed.
    let (mut holder, _holder_stdout) = ChildGuard::spawn(
        &[
            "watch",
            "point and sp and equipRef->ahu",
            "--url",
            &ws,
            "--duration",
            "3s",
        ],
        &[],
    );
    assert!(
        holder.wait_for_stderr("watching", 1),
        "{:?}",
        holder.stderr_lines()
    );
    let metrics = scrape(&addr);
    assert_eq!(
        series(&metrics, r#"haystack_ws_connections_active{side="server"}"#),
        1.0
    );
    let connects = server
        .stderr_lines()
        .iter()
        .filter(|l| l.contains("server/ws ws connect "))
        .count();
    assert_eq!(connects, 4, "{:#?}", server.stderr_lines());

    let signalled = Instant::now();
    server.interrupt();
    // Generous for a loaded 2-core CI machine; it takes milliseconds.
    let status = server
        .wait_exit_within(Duration::from_secs(3))
        .expect("hs serve exits after SIGINT");
    let took = signalled.elapsed();
    assert!(status.success(), "exit status {status:?}");
    let log = server.stderr_lines();
    let disconnects = log.iter().filter(|l| l.contains("ws disconnect ")).count();
    assert_eq!(
        disconnects, connects,
        "every connection's disconnect observed: {log:#?}"
    );
    assert!(
        log.iter().any(|l| l.contains("SIGINT: shutting down")),
        "{log:#?}"
    );
    eprintln!("hs serve stopped {took:?} after SIGINT");

    // The held client outlives the server (it reconnects and would
    // re-subscribe, issue 13 item 9) and ends at its --duration, successfully.
    let holder_status = holder
        .wait_exit_within(WAIT)
        .expect("hs watch ends at its --duration");
    assert!(
        holder_status.success(),
        "the server going away did not end hs watch: {:#?}",
        holder.stderr_lines()
    );
}

#[test]
fn serve_loads_data_files_and_can_run_without_metrics() {
    let dir = std::env::temp_dir().join(format!("hs-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let zinc = dir.join("plant.zinc");
    std::fs::write(
        &zinc,
        "ver:\"3.0\"\nid,dis,site,area\n@plant,\"Plant\",M,1200ft²\n",
    )
    .unwrap();
    let (_server, addr) = serve(&[
        "--data",
        zinc.to_str().unwrap(),
        "--no-metrics",
        "--event-log",
        "off",
    ]);
    let rows = json_rows(&hs(&[
        "read",
        "site",
        "--url",
        &format!("http://{addr}"),
        "--format",
        "json",
    ]));
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["dis"], "Plant");
    let table = hs(&["read", "site", "--url", &format!("ws://{addr}")]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.lines().nth(2).unwrap_or("").starts_with("@plant"),
        "{text}"
    );
    assert!(
        !scrape(&addr).contains("haystack_"),
        "no /metrics with --no-metrics"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn client_errors_exit_non_zero_with_a_message() {
    let (_server, addr) = serve(&["--event-log", "off"]);
    let bad = hs(&["read", "point and (", "--url", &format!("http://{addr}")]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("error:"));
    let usage = hs(&["write", "demo-ahu1-dat-sp", "18", "1"]);
    assert_eq!(usage.status.code(), Some(2), "clap rejects level 18");
}

#[test]
fn demo_runs_the_tour_and_exits_zero() {
    let output = hs(&["demo"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for needle in [
        "push received over WebSocket",
        "FlakyObserver panicked 2 times",
        "ws connections: 1 opened, 1 closed, 0 active",
        r#"haystack_ws_connections_active{side="server"} 0"#,
        // The logging observer names the component each line comes from.
        "log │ INFO  hs::observe      server/ws ws disconnect",
    ] {
        assert!(stdout.contains(needle), "missing {needle:?} in:\n{stdout}");
    }
}

#[test]
fn bench_against_an_in_process_server_prints_the_result_table() {
    for transport in ["ws", "http"] {
        let output = hs(&[
            "bench",
            "--transport",
            transport,
            "--requests",
            "200",
            "-c",
            "2",
            "--in-flight",
            "2",
            "--quiet",
        ]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{stdout}");
        assert!(stdout.contains("requests    200\n"), "{stdout}");
        assert!(stdout.contains("errors      0\n"), "{stdout}");
        assert!(stdout.contains("p99"), "{stdout}");
    }
}

#[test]
fn demo_with_a_size_explains_reads_on_the_generated_building() {
    let output = hs(&["demo", "--size", "1000"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for needle in [
        "with the demo building (2057 entities)",
        "▶ 7. HTTP reads on the generated building of 1000 points",
        "id==@p500: 1 row(s)",
        "    id == @p500: value postings, 1 candidates, exact",
        "equipRef==@e10 and point and not his: ",
        "      equipRef->siteRef == @s1: reverse refs, 1000 candidates, exact",
        "▶ 8. Close the clients",
        "▶ 9. Shut down",
    ] {
        assert!(stdout.contains(needle), "missing {needle:?} in:\n{stdout}");
    }
}

/// `--ws-send-budget` bounds what one WebSocket connection's answers may
/// hold: an answer larger than it is refused with an error grid naming the
/// budget, over HTTP the same read is served; `--help` states the default.
#[test]
fn ws_send_budget_is_a_serve_flag_with_its_default_in_the_help() {
    let help = support::stdout(&hs(&["serve", "--help"]))
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(help.contains("--ws-send-budget <MIB>"), "{help}");
    assert!(help.contains("[default: 16]"), "{help}");
    assert!(help.contains("--ws-stall-timeout <DURATION>"), "{help}");
    assert!(help.contains("[default: 10s]"), "{help}");

    // 5,000 points read at once are an answer of some 2 MB.
    let (_server, addr) = serve(&[
        "--demo-size",
        "5000",
        "--ws-send-budget",
        "1",
        "--event-log",
        "off",
    ]);
    let refused = hs(&["read", "point", "--url", &format!("ws://{addr}")]);
    assert!(!refused.status.success());
    let message = support::stderr(&refused);
    assert!(
        message.contains("exceeds the connection's send budget of 1048576 bytes"),
        "{message}"
    );
    let served = json_rows(&hs(&[
        "read",
        "point",
        "--url",
        &format!("http://{addr}"),
        "--format",
        "json",
    ]));
    assert_eq!(served.len(), 5000);
}
