//! How the `hs` binary behaves at the edges: failed requests, a closed
//! stdout, credentials from the environment, unknown ids, host names,
//! duplicate and wide data. Each test drives the real binary against a real
//! `hs serve` on 127.0.0.1.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use std::io::Read;

use support::{ChildGuard, TempDir, dead_port, hs, hs_env, serve, serve_on, stderr, stdout};
use unicode_width::UnicodeWidthChar;

/// The stderr lines of a command, without the empty ones.
fn lines(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .collect()
}

/// Asserts that stderr says one thing: a single `error:` line, no log line.
fn assert_one_error_line(what: &str, stderr: &str) {
    let lines = lines(stderr);
    assert_eq!(lines.len(), 1, "{what}: one line on stderr, got {lines:#?}");
    assert!(lines[0].starts_with("error: "), "{what}: {lines:#?}");
}

#[test]
fn bench_with_nothing_listening_exits_1_with_one_error_on_both_transports() {
    let port = dead_port();
    for url in [
        format!("http://127.0.0.1:{port}"),
        format!("ws://127.0.0.1:{port}"),
    ] {
        let output = hs(&["bench", "--url", &url, "-n", "50", "-c", "2", "--quiet"]);
        assert_eq!(output.status.code(), Some(1), "{url}: {}", stderr(&output));
        assert_one_error_line(&url, &stderr(&output));
        assert!(
            stderr(&output).contains("cannot connect"),
            "{url}: {}",
            stderr(&output)
        );
    }
}

#[test]
fn bench_that_loses_its_server_exits_1_and_summarises_the_errors_once() {
    for scheme in ["http", "ws"] {
        // INFO logs every request, so the test can see the load running.
        let (mut server, addr) = serve(&["--event-log", "info"]);
        let url = format!("{scheme}://{addr}");
        let (mut bench, mut bench_stdout) = ChildGuard::spawn(
            &[
                "bench",
                "--url",
                &url,
                "--duration",
                "10m",
                "-c",
                "2",
                "--in-flight",
                "2",
                "--quiet",
            ],
            &[],
        );
        // Well past the two first (untimed) reads: the timed run is going.
        assert!(
            server.wait_for_stderr("request read", 50),
            "{scheme}: {:#?}",
            server.stderr_lines()
        );
        server.kill();
        let status = bench
            .wait_exit()
            .expect("bench ends once its server is gone");
        let mut out = String::new();
        bench_stdout.read_to_string(&mut out).unwrap();
        assert_eq!(
            status.code(),
            Some(1),
            "{scheme}: {out}\n{:#?}",
            bench.stderr_lines()
        );
        assert!(
            out.contains("\nerrors      "),
            "{scheme}: the table is printed: {out}"
        );
        let err = bench.stderr_lines().join("\n");
        assert_one_error_line(scheme, &err);
        assert!(err.contains(" requests failed ("), "{scheme}: {err}");
        assert!(err.contains("; the first: "), "{scheme}: {err}");
    }
}

#[test]
fn a_login_required_reads_the_same_on_both_transports_and_suggests_user() {
    let (_server, addr) = serve(&["--user", "ada:right-password", "--event-log", "off"]);
    let mut messages = Vec::new();
    for scheme in ["http", "ws"] {
        let url = format!("{scheme}://{addr}");
        let output = hs(&["read", "site", "--url", &url]);
        assert_eq!(output.status.code(), Some(1), "{url}");
        let err = stderr(&output);
        let lines = lines(&err);
        assert_eq!(lines.len(), 2, "{url}: an error and a hint, got {lines:#?}");
        assert!(
            lines[0].starts_with("error: authentication required"),
            "{url}: {err}"
        );
        assert!(
            lines[1].starts_with("hint: ") && lines[1].contains("--user"),
            "{url}: {err}"
        );
        messages.push(lines[0].to_owned());
    }
    // The WebSocket error adds the server's close code and reason after the
    // shared wording.
    assert!(
        messages[1].starts_with(&messages[0]),
        "one wording on both transports: {messages:#?}"
    );
}

#[test]
fn a_wrong_password_fails_once_with_one_wording_of_the_prefix() {
    let (_server, addr) = serve(&["--user", "ada:right-password", "--event-log", "off"]);
    let wrong = [("HS_USER", "ada"), ("HS_PASSWORD", "wrong-password")];
    for scheme in ["http", "ws"] {
        let url = format!("{scheme}://{addr}");
        // bench: one login refused, one message, exit 1 on both transports.
        let output = hs_env(
            &["bench", "--url", &url, "-n", "20", "-c", "1", "--quiet"],
            &wrong,
        );
        assert_eq!(
            output.status.code(),
            Some(1),
            "bench {url}: {}",
            stderr(&output)
        );
        assert_one_error_line(&format!("bench {url}"), &stderr(&output));
        assert!(
            // The clients' one login wording (AuthFailure::CredentialsRejected).
            stderr(&output).contains("unknown user or wrong password"),
            "bench {url}: {}",
            stderr(&output)
        );

        // read: the failure once, not again from the libraries and observer.
        let output = hs_env(&["read", "site", "--url", &url], &wrong);
        assert_eq!(output.status.code(), Some(1), "read {url}");
        assert_one_error_line(&format!("read {url}"), &stderr(&output));
    }
    // Asked for, the logs say why once per line, in the clients' one wording.
    let output = hs_env(
        &[
            "read",
            "site",
            "--url",
            &format!("ws://{addr}"),
            "--log",
            "info",
        ],
        &wrong,
    );
    assert!(!output.status.success());
    let err = stderr(&output);
    assert!(
        err.contains("closed: authentication failed for user"),
        "{err}"
    );
    assert!(
        !err.contains("authentication failed: authentication failed"),
        "{err}"
    );
    assert!(
        !err.contains("authentication failed: authentication failed"),
        "{err}"
    );
}

#[test]
fn a_refused_connection_is_reported_once() {
    let url = format!("http://127.0.0.1:{}", dead_port());
    for command in [&["read", "site"][..], &["his", "demo-ahu1-dat", "today"]] {
        let mut args = command.to_vec();
        args.extend(["--url", &url]);
        let output = hs(&args);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        assert_one_error_line(&format!("{args:?}"), &stderr(&output));
    }
}

#[test]
fn the_timeout_bounds_a_request_to_a_server_that_never_answers() {
    // A port that accepts and never answers: `--timeout` is the whole
    // request's deadline, so the command gives up after one attempt instead
    // of retrying each for the full time.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    listener.set_nonblocking(true).unwrap();
    let output = hs(&["read", "site", "--url", &url, "--timeout", "1s"]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert_one_error_line("read", &err);
    assert!(err.contains("within 1s"), "{err}");
    let mut accepted = Vec::new();
    while let Ok((stream, _)) = listener.accept() {
        accepted.push(stream);
    }
    assert_eq!(accepted.len(), 1, "one attempt, no retry past the deadline");
}

#[test]
fn a_closed_stdout_ends_the_command_quietly() {
    let (_server, addr) = serve(&["--event-log", "off"]);
    let http = format!("http://{addr}");
    let ws = format!("ws://{addr}");
    let commands: [&[&str]; 7] = [
        &["bench", "-n", "500", "--quiet"],
        &["demo"],
        &["write", "demo-ahu1-dat-sp", "8", "55", "--url", &http],
        &["read", "point", "--url", &http],
        &["read", "point", "--url", &ws, "--format", "json"],
        &["his", "demo-ahu1-dat", "yesterday", "--url", &http],
        &["serve", "--listen", "127.0.0.1:0", "--event-log", "off"],
    ];
    for args in commands {
        let (mut child, child_stdout) = ChildGuard::spawn(args, &[]);
        // The reader goes away before anything is written: the first write
        // fails with EPIPE, every time.
        drop(child_stdout);
        let status = child.wait_exit().expect("the command ends");
        let err = child.stderr_lines().join("\n");
        assert_ne!(status.code(), Some(101), "{args:?} panicked: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(!err.contains("Broken pipe"), "{args:?}: {err}");
        assert!(status.success(), "{args:?}: {status:?} {err}");
    }
}

#[test]
fn an_exported_password_without_a_user_is_ignored() {
    let (_server, addr) = serve(&["--event-log", "off"]);
    let http = format!("http://{addr}");
    let ws = format!("ws://{addr}");
    let env = [("HS_PASSWORD", "exported-elsewhere")];
    let commands: [&[&str]; 5] = [
        &["read", "site", "--url", &http],
        &["read", "site", "--url", &ws],
        &["his", "demo-ahu1-dat", "yesterday", "--url", &http],
        &["watch", "site", "--url", &ws, "--duration", "200ms"],
        &["bench", "--url", &http, "-n", "10", "-c", "1", "--quiet"],
    ];
    for args in commands {
        let output = hs_env(args, &env);
        assert!(
            output.status.success(),
            "{args:?}: {:?} {}",
            output.status,
            stderr(&output)
        );
    }
}

#[test]
fn reading_unknown_ids_names_them_and_exits_1() {
    let (_server, addr) = serve(&["--event-log", "off"]);
    for url in [format!("http://{addr}"), format!("ws://{addr}")] {
        let output = hs(&[
            "read",
            "--id",
            "nosuch",
            "--id",
            "@demo-ahu1",
            "--id",
            "gone",
            "--url",
            &url,
            "--format",
            "json",
        ]);
        assert_eq!(output.status.code(), Some(1), "{url}");
        let grid: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
        let rows = grid["rows"].as_array().unwrap();
        assert_eq!(rows.len(), 1, "only the entity found: {grid}");
        assert_eq!(rows[0]["id"]["val"], "demo-ahu1");
        assert_one_error_line(&url, &stderr(&output));
        assert!(
            stderr(&output).contains("not found: @nosuch, @gone (2 of 3 ids)"),
            "{}",
            stderr(&output)
        );

        let output = hs(&["read", "--id", "nosuch", "--url", &url]);
        assert_eq!(output.status.code(), Some(1), "{url}");
        assert_eq!(stdout(&output), "(no rows)\n");
        assert!(stderr(&output).contains("@nosuch"), "{}", stderr(&output));
    }
    // Every id found: exit 0.
    let output = hs(&[
        "read",
        "--id",
        "demo-ahu1",
        "--url",
        &format!("http://{addr}"),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
}

#[test]
fn serve_listens_on_a_host_name() {
    let (_server, addr) = serve_on("localhost:0", &["--event-log", "off"]);
    let ip: std::net::SocketAddr = addr.parse().expect("an IP address is printed");
    assert!(ip.ip().is_loopback(), "{addr}");
    let output = hs(&[
        "read",
        "site",
        "--url",
        &format!("http://{addr}"),
        "--format",
        "json",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("demo-site"));
}

#[test]
fn duplicate_ids_in_a_data_file_are_named() {
    let dir = TempDir::new("duplicates");
    let zinc = dir.file(
        "dups.zinc",
        "ver:\"3.0\"\nid,dis,site\n@a,\"A\",M\n@b,\"B\",M\n@a,\"A again\",M\n@c,\"C\",M\n@b,\"B again\",M\n@b,\"B thrice\",M\n",
    );
    let (server, addr) = serve(&["--data", &zinc]);
    assert!(
        server.wait_for_stderr("loaded ", 1),
        "{:#?}",
        server.stderr_lines()
    );
    let log = server.stderr_lines().join("\n");
    assert!(
        log.contains("2 id(s) appear in more than one row; the last row of each is kept: @a, @b"),
        "{log}"
    );
    assert!(log.contains("loaded 3 entities"), "{log}");
    let output = hs(&[
        "read",
        "--id",
        "b",
        "--url",
        &format!("http://{addr}"),
        "--format",
        "json",
    ]);
    assert!(stdout(&output).contains("B thrice"), "the last row wins");
}

/// The display column at which each cell of a table line starts (cells are
/// separated by two or more spaces).
fn cell_columns(line: &str) -> Vec<usize> {
    let mut starts = Vec::new();
    // The first cell counts as following a separator.
    let (mut column, mut spaces) = (0, usize::MAX);
    for ch in line.chars() {
        if ch == ' ' {
            spaces += 1;
        } else {
            if spaces >= 2 {
                starts.push(column);
            }
            spaces = 0;
        }
        column += ch.width().unwrap_or(0);
    }
    starts
}

#[test]
fn table_columns_align_for_cjk_text_and_emoji() {
    let dir = TempDir::new("wide");
    let zinc = dir.file(
        "wide.zinc",
        "ver:\"3.0\"\nid,dis,site,area\n\
         @b1,\"空调机组一号\",M,100\n\
         @b2,\"🔥 Boiler\",M,2000\n\
         @b3,\"Pump\",M,3\n\
         @b4,\"冷却塔 🌊\",M,45\n",
    );
    let (_server, addr) = serve(&["--data", &zinc, "--event-log", "off"]);
    let output = hs(&[
        "read",
        "site",
        "--url",
        &format!("http://{addr}"),
        "--columns",
        "id,dis,area",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6, "{text}");
    let header = cell_columns(lines[0]);
    assert_eq!(header.len(), 3, "id, dis, area: {text}");
    for line in &lines[2..] {
        assert_eq!(cell_columns(line), header, "misaligned:\n{text}");
    }
}

#[test]
fn the_watch_banner_agrees_in_number() {
    let (_server, addr) = serve(&["--event-log", "off"]);
    let url = format!("ws://{addr}");
    let one = hs(&["watch", "site", "--url", &url, "--duration", "200ms"]);
    assert!(one.status.success(), "{}", stderr(&one));
    assert!(
        stderr(&one).contains("watching 1 entity ("),
        "{}",
        stderr(&one)
    );
    let many = hs(&["watch", "ahu", "--url", &url, "--duration", "200ms"]);
    assert!(
        stderr(&many).contains("watching 4 entities ("),
        "{}",
        stderr(&many)
    );
}

#[test]
fn serve_counts_agree_in_number() {
    let dir = TempDir::new("one");
    let zinc = dir.file("one.zinc", "ver:\"3.0\"\nid,dis,site\n@only,\"Only\",M\n");
    let (server, _addr) = serve(&["--data", &zinc, "--event-log", "off"]);
    assert!(
        server.wait_for_stderr("loaded 1 entity from ", 1),
        "{:#?}",
        server.stderr_lines()
    );
}

#[test]
fn the_timeout_help_says_it_is_a_total_deadline() {
    for command in ["read", "his", "write", "watch"] {
        let output = hs(&[command, "--help"]);
        let help = stdout(&output)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            help.contains("Deadline of each request in total, retries and an HTTP login included"),
            "{command}: {help}"
        );
    }
}
