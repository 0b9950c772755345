//! `hs about`, `hs ops` and `hs nav` over both transports, `--format`
//! choosing the encoding on the HTTP wire as well as on stdout, and
//! `hs serve --demo-size`.

#![allow(clippy::unwrap_used)] // tests may unwrap (COMMON.md)

mod support;

use support::{Relay, hs, json_rows, serve, stderr, stdout};

#[test]
fn about_ops_and_nav_work_over_both_transports() {
    let (_server, addr) = serve(&["--event-log", "off"]);
    for url in [format!("http://{addr}"), format!("ws://{addr}")] {
        let about = json_rows(&hs(&["about", "--url", &url, "--format", "json"]));
        assert_eq!(about.len(), 1, "{url}");
        assert_eq!(about[0]["productName"], "hs", "{url}");
        // The table shows one line per tag.
        let table = stdout(&hs(&["about", "--url", &url]));
        assert!(
            table
                .lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["productName", "hs"]),
            "{url}: {table}"
        );

        let ops = json_rows(&hs(&["ops", "--url", &url, "--format", "json"]));
        let names: Vec<_> = ops.iter().filter_map(|op| op["name"].as_str()).collect();
        for op in ["about", "read", "nav", "watchSub", "hisRead"] {
            assert!(names.contains(&op), "{url}: {names:?}");
        }

        let roots = json_rows(&hs(&["nav", "--url", &url, "--format", "json"]));
        assert_eq!(roots.len(), 1, "{url}: one site");
        assert_eq!(roots[0]["navId"], "demo-site");
        let equips = hs(&["nav", "@demo-site", "--url", &url, "--columns", "navId,dis"]);
        assert!(equips.status.success(), "{}", stderr(&equips));
        let text = stdout(&equips);
        assert!(
            text.lines().any(|l| l.starts_with("demo-ahu1 ")),
            "{url}: {text}"
        );
        assert_eq!(
            text.lines()
                .next()
                .unwrap()
                .split_whitespace()
                .collect::<Vec<_>>(),
            ["navId", "dis"]
        );

        let unknown = hs(&["nav", "nosuch", "--url", &url]);
        assert!(!unknown.status.success(), "{url}");
        assert!(stderr(&unknown).contains("nosuch"), "{}", stderr(&unknown));
    }
}

#[test]
fn format_chooses_the_http_wire_encoding_too() {
    let (_server, addr) = serve(&["--event-log", "off"]);
    let zinc_relay = Relay::start(&addr);
    let zinc = hs(&[
        "read",
        "site",
        "--url",
        &format!("http://{}", zinc_relay.addr),
        "--format",
        "zinc",
    ]);
    assert!(zinc.status.success(), "{}", stderr(&zinc));
    assert!(stdout(&zinc).starts_with("ver:\"3.0\""));
    let sent = zinc_relay.sent_lowercase();
    assert!(sent.contains("accept: text/zinc"), "{sent}");
    assert!(sent.contains("content-type: text/zinc"), "{sent}");

    for format in ["json", "table"] {
        let relay = Relay::start(&addr);
        let output = hs(&[
            "about",
            "--url",
            &format!("http://{}", relay.addr),
            "--format",
            format,
        ]);
        assert!(output.status.success(), "{}", stderr(&output));
        let sent = relay.sent_lowercase();
        assert!(
            sent.contains("accept: application/json"),
            "{format}: {sent}"
        );
        assert!(!sent.contains("zinc"), "{format}: {sent}");
    }
}

#[test]
fn serve_generates_a_building_of_the_size_asked_for() {
    let (_server, addr) = serve(&["--demo-size", "1000", "--event-log", "off"]);
    let url = format!("http://{addr}");
    let read = |filter: &str| json_rows(&hs(&["read", filter, "--url", &url, "--format", "json"]));
    assert_eq!(read("point").len(), 1_000);
    assert_eq!(read("equip").len(), 20);
    assert_eq!(read("equipRef==@e3 and point").len(), 50);
    let one = read("id==@p1");
    assert_eq!(one.len(), 1);
    assert_eq!(one[0]["siteRef"]["val"], "s1");
    // --data and --demo-size name two different stores.
    let refused = hs(&["serve", "--demo-size", "10", "--data", "x.json"]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("cannot be used with"),
        "{}",
        stderr(&refused)
    );
}

#[test]
fn read_explain_prints_the_servers_plan_over_both_transports() {
    let (_server, addr) = serve(&["--demo-size", "1000", "--event-log", "off"]);
    for url in [format!("http://{addr}"), format!("ws://{addr}")] {
        let explained = hs(&[
            "read",
            "--explain",
            "equipRef==@e3 and point and not his",
            "--url",
            &url,
        ]);
        assert!(explained.status.success(), "{}", stderr(&explained));
        let text = stdout(&explained);
        let lines: Vec<&str> = text.lines().collect();
        let expected_rows = json_rows(&hs(&[
            "read",
            "equipRef==@e3 and point and not his",
            "--url",
            &url,
            "--format",
            "json",
        ]))
        .len();
        assert_eq!(lines.len(), 5, "{url}: {text}");
        assert!(lines[0].starts_with("and: intersection, "), "{url}: {text}");
        assert_eq!(
            lines[1], "  equipRef == @e3: value postings, 50 candidates, exact",
            "{url}: {text}"
        );
        assert_eq!(
            lines[2], "  point: tag postings, 1000 candidates, exact",
            "{url}: {text}"
        );
        assert!(
            lines[3].starts_with("  not his: all but the tag postings, "),
            "{url}: {text}"
        );
        assert_eq!(lines[4], format!("{expected_rows} rows"), "{url}: {text}");
        assert!(expected_rows > 0 && expected_rows < 50, "{url}: {text}");
    }
    // A filter is required.
    let refused = hs(&[
        "read",
        "--explain",
        "--id",
        "p1",
        "--url",
        &format!("http://{addr}"),
    ]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("cannot be used with"),
        "{}",
        stderr(&refused)
    );
}
