//! The exposition checked by outside validators: `promtool check metrics`
//! (Debian package `prometheus`) and the strict OpenMetrics parser of the
//! Python client (Debian package `python3-prometheus-client`). `make test`
//! installs both; a missing tool fails the test rather than skipping it.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use hs_prometheus::{ExpositionFormat, PrometheusMetrics};

fn run_with_stdin(program: &str, args: &[&str], input: &str, install_hint: &str) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| {
            panic!("cannot run `{program}` ({error}): install it with `{install_hint}`")
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn promtool(input: &str) -> (Option<i32>, String) {
    let output = run_with_stdin(
        "promtool",
        &["check", "metrics"],
        input,
        "apt-get install -y --no-install-recommends prometheus",
    );
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code(), report)
}

fn everything() -> PrometheusMetrics {
    let metrics = PrometheusMetrics::new();
    common::fire_everything(&metrics);
    metrics
}

#[test]
fn promtool_accepts_the_prometheus_text_format_without_findings() {
    let text = everything()
        .encode(ExpositionFormat::PrometheusText)
        .unwrap();
    let (code, report) = promtool(&text);
    assert_eq!(code, Some(0), "promtool check metrics:\n{report}");
    assert!(report.trim().is_empty(), "promtool findings:\n{report}");
}

#[test]
fn promtool_parses_the_openmetrics_format() {
    let text = everything().encode(ExpositionFormat::OpenMetrics).unwrap();
    let (code, report) = promtool(&text);
    // promtool (2.x) reads the Prometheus text format: it parses OpenMetrics
    // (`# EOF` and `# UNIT` are comments to it) but, as OpenMetrics names a
    // counter family without `_total`, finds no HELP for the `_total`
    // samples. That is the one finding allowed; a parse error (exit 1) or
    // any other lint fails.
    assert!(matches!(code, Some(0 | 3)), "promtool failed:\n{report}");
    for finding in report.lines().filter(|line| !line.trim().is_empty()) {
        let family = finding
            .strip_suffix("_total no help text")
            .unwrap_or_else(|| panic!("unexpected promtool finding: {finding}"));
        assert!(
            text.contains(&format!("# HELP {family} "))
                && text.contains(&format!("# TYPE {family} counter")),
            "{finding}"
        );
    }
}

#[test]
fn promtool_rejects_a_broken_exposition() {
    // The check above can fail: promtool does reject bad input.
    let (code, report) = promtool("haystack_errors_total{op=\"read\" 1\n");
    assert_eq!(code, Some(1), "{report}");
}

#[test]
fn strict_openmetrics_parser_accepts_the_exposition() {
    let text = everything().encode(ExpositionFormat::OpenMetrics).unwrap();
    let script = "import sys\n\
        from prometheus_client.openmetrics.parser import text_string_to_metric_families\n\
        for family in text_string_to_metric_families(sys.stdin.read()):\n\
        \x20   print(family.name, family.type, len(family.samples))\n";
    let hint = "apt-get install -y --no-install-recommends python3-prometheus-client";
    // Debian's interpreter, where the Debian package installs the module.
    let output = run_with_stdin("/usr/bin/python3", &["-c", script], &text, hint);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("No module named 'prometheus_client'"),
        "the Python Prometheus client is missing: install it with `{hint}`"
    );
    assert!(
        output.status.success(),
        "OpenMetrics parser rejected it:\n{stderr}"
    );
    let families: Vec<String> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    for expected in [
        "haystack_request_duration_seconds histogram",
        "haystack_errors counter",
        "haystack_ws_connections counter",
        "haystack_ws_connections_active gauge",
        "haystack_ws_messages_sent counter",
        "haystack_ws_messages_received counter",
        "haystack_ws_sent_bytes counter",
        "haystack_ws_received_bytes counter",
    ] {
        assert!(
            families
                .iter()
                .any(|line| line.starts_with(&format!("{expected} "))),
            "{expected} missing from {families:?}"
        );
    }

    // And it is strict: the same text without `# EOF` is refused.
    let truncated = text.strip_suffix("# EOF\n").unwrap();
    let output = run_with_stdin("/usr/bin/python3", &["-c", script], truncated, hint);
    assert!(!output.status.success());
}

#[tokio::test]
async fn promtool_accepts_what_curl_gets_from_the_endpoint() {
    // `curl /metrics | promtool check metrics`: curl sends `Accept: */*`.
    use tower::ServiceExt;
    let app: axum::Router = hs_prometheus::metrics_router(everything());
    let request = axum::http::Request::get("/metrics")
        .header(axum::http::header::ACCEPT, "*/*")
        .body(axum::body::Body::empty())
        .unwrap();
    let response = app.oneshot(request).await.unwrap();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let (code, report) = promtool(std::str::from_utf8(&body).unwrap());
    assert_eq!(code, Some(0), "promtool check metrics:\n{report}");
    assert!(report.trim().is_empty(), "promtool findings:\n{report}");
}
