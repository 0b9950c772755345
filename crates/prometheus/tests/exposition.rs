//! What a scrape shows after known events: exact counts and sums, bounded
//! labels, shared registries, concurrency.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use common::{parse, value};
use hs_observe::{ErrorKind, GuardedObserver, MetricsObserver};
use hs_prometheus::{
    DURATION_BUCKETS, ExpositionFormat, OPS, OTHER, PrometheusMetrics, Side, Transport,
};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;

fn scrape(metrics: &PrometheusMetrics) -> Vec<common::Sample> {
    parse(&metrics.encode(ExpositionFormat::OpenMetrics).unwrap())
}

const SERVER_HTTP: [(&str, &str); 2] = [("side", "server"), ("transport", "http")];

#[test]
fn request_count_sum_and_buckets_are_exact() {
    let metrics = PrometheusMetrics::new();
    let observer = metrics.observer(Side::Server, Transport::Http);
    let durations_us = [
        50_u64, 100, 300, 900, 2_000, 7_000, 40_000, 1_500_000, 20_000_000,
    ];
    let mut expected_sum = 0.0;
    for us in durations_us {
        let duration = Duration::from_micros(us);
        expected_sum += duration.as_secs_f64();
        observer.on_request("read", duration);
    }
    observer.on_request("nav", Duration::from_millis(1));

    let samples = scrape(&metrics);
    let read = [("op", "read"), SERVER_HTTP[0], SERVER_HTTP[1]];
    assert_eq!(
        value(&samples, "haystack_request_duration_seconds_count", &read),
        Some(durations_us.len() as f64)
    );
    let sum = value(&samples, "haystack_request_duration_seconds_sum", &read).unwrap();
    assert!((sum - expected_sum).abs() < 1e-9, "{sum} vs {expected_sum}");

    // Cumulative buckets: each counts the observations at or below its bound.
    for bound in DURATION_BUCKETS {
        let le = format!("{bound:?}");
        let expected = durations_us
            .iter()
            .filter(|&&us| us as f64 / 1e6 <= bound)
            .count() as f64;
        let labels = [
            ("op", "read"),
            ("le", le.as_str()),
            SERVER_HTTP[0],
            SERVER_HTTP[1],
        ];
        assert_eq!(
            value(
                &samples,
                "haystack_request_duration_seconds_bucket",
                &labels
            ),
            Some(expected),
            "le={le}"
        );
    }
    let inf = [
        ("op", "read"),
        ("le", "+Inf"),
        SERVER_HTTP[0],
        SERVER_HTTP[1],
    ];
    assert_eq!(
        value(&samples, "haystack_request_duration_seconds_bucket", &inf),
        Some(durations_us.len() as f64)
    );
    let nav = [("op", "nav"), SERVER_HTTP[0], SERVER_HTTP[1]];
    assert_eq!(
        value(&samples, "haystack_request_duration_seconds_count", &nav),
        Some(1.0)
    );
    // Ops that saw no event have no series.
    let about = [("op", "about")];
    assert_eq!(
        value(&samples, "haystack_request_duration_seconds_count", &about),
        None
    );
}

#[test]
fn errors_count_per_op_and_error_type() {
    let metrics = PrometheusMetrics::new();
    let observer = metrics.observer(Side::Client, Transport::Ws);
    for _ in 0..3 {
        observer.on_error("hisRead", "timeout");
    }
    observer.on_error("hisRead", "auth");
    observer.on_error("pointWrite", "forbidden");

    let samples = scrape(&metrics);
    let errors = |op, error_type| {
        value(
            &samples,
            "haystack_errors_total",
            &[
                ("op", op),
                ("error_type", error_type),
                ("side", "client"),
                ("transport", "ws"),
            ],
        )
    };
    assert_eq!(errors("hisRead", "timeout"), Some(3.0));
    assert_eq!(errors("hisRead", "auth"), Some(1.0));
    assert_eq!(errors("pointWrite", "forbidden"), Some(1.0));
    assert_eq!(errors("read", "timeout"), None);
}

#[test]
fn unknown_ops_and_error_types_are_counted_as_other() {
    let metrics = PrometheusMetrics::new();
    let observer = metrics.observer(Side::Server, Transport::Ws);
    let odd_ops = [
        "",
        "READ",
        "fooBar",
        "read ",
        "x".repeat(300).leak(),
        "a\"b",
    ];
    for op in odd_ops {
        observer.on_request(op, Duration::from_millis(1));
        observer.on_error(op, "timeout");
        observer.on_ws_message_sent(op, 1);
        observer.on_ws_message_recv(op, 1);
    }
    observer.on_error("read", "Timeout");
    observer.on_error("read", "connection reset by peer");

    let samples = scrape(&metrics);
    let n = odd_ops.len() as f64;
    assert_eq!(
        value(
            &samples,
            "haystack_request_duration_seconds_count",
            &[("op", OTHER)]
        ),
        Some(n)
    );
    assert_eq!(
        value(
            &samples,
            "haystack_errors_total",
            &[("op", OTHER), ("error_type", "timeout")]
        ),
        Some(n)
    );
    assert_eq!(
        value(
            &samples,
            "haystack_errors_total",
            &[("op", "read"), ("error_type", OTHER)]
        ),
        Some(2.0)
    );
    for name in [
        "haystack_ws_messages_sent_total",
        "haystack_ws_messages_received_total",
        "haystack_ws_sent_bytes_total",
        "haystack_ws_received_bytes_total",
    ] {
        assert_eq!(value(&samples, name, &[("op", OTHER)]), Some(n), "{name}");
    }
}

#[test]
fn label_values_stay_within_the_fixed_lists() {
    let metrics = PrometheusMetrics::new();
    common::fire_everything(&metrics);
    let observer = metrics.observer(Side::Server, Transport::Http);
    for i in 0..500 {
        observer.on_request(&format!("op{i}"), Duration::from_micros(i));
        observer.on_error(&format!("op{i}"), &format!("error{i}"));
    }

    let samples = scrape(&metrics);
    let allowed_ops: BTreeSet<&str> = OPS.iter().copied().chain([OTHER]).collect();
    let allowed_errors: BTreeSet<&str> = ErrorKind::ALL
        .iter()
        .map(|k| k.as_str())
        .chain([OTHER])
        .collect();
    let mut seen_ops = BTreeSet::new();
    let mut seen_errors = BTreeSet::new();
    for sample in &samples {
        let keys: BTreeSet<&str> = sample.labels.iter().map(|(k, _)| k.as_str()).collect();
        assert!(
            keys.is_subset(&["op", "error_type", "side", "transport", "le"].into()),
            "{sample:?}"
        );
        assert!(matches!(sample.label("side"), Some("client" | "server")));
        assert!(matches!(
            sample.label("transport"),
            None | Some("http" | "ws")
        ));
        if let Some(op) = sample.label("op") {
            assert!(allowed_ops.contains(op), "{sample:?}");
            seen_ops.insert(op.to_owned());
        }
        if let Some(error_type) = sample.label("error_type") {
            assert!(allowed_errors.contains(error_type), "{sample:?}");
            seen_errors.insert(error_type.to_owned());
        }
    }
    assert_eq!(seen_ops.len(), allowed_ops.len());
    assert_eq!(seen_errors.len(), allowed_errors.len());
    // Bounded: per component at most (ops x error types) error series.
    let error_series = samples
        .iter()
        .filter(|s| s.name == "haystack_errors_total")
        .count();
    assert_eq!(error_series, 4 * allowed_ops.len() * allowed_errors.len());
}

#[test]
fn ws_messages_and_bytes_are_exact_and_carry_no_transport() {
    let metrics = PrometheusMetrics::new();
    let observer = metrics.observer(Side::Client, Transport::Ws);
    observer.on_ws_message_sent("read", 120);
    observer.on_ws_message_sent("read", 80);
    observer.on_ws_message_sent("batch", 4_000);
    observer.on_ws_message_recv("read", 1_000_000);
    observer.on_ws_message_recv("push", 7);
    observer.on_ws_message_recv("push", 0);

    let samples = scrape(&metrics);
    let check = |name, op, expected| {
        assert_eq!(
            value(&samples, name, &[("op", op), ("side", "client")]),
            Some(expected),
            "{name} {op}"
        );
    };
    check("haystack_ws_messages_sent_total", "read", 2.0);
    check("haystack_ws_sent_bytes_total", "read", 200.0);
    check("haystack_ws_messages_sent_total", "batch", 1.0);
    check("haystack_ws_sent_bytes_total", "batch", 4_000.0);
    check("haystack_ws_messages_received_total", "read", 1.0);
    check("haystack_ws_received_bytes_total", "read", 1_000_000.0);
    check("haystack_ws_messages_received_total", "push", 2.0);
    check("haystack_ws_received_bytes_total", "push", 7.0);
    assert!(
        samples
            .iter()
            .filter(|s| s.name.starts_with("haystack_ws_"))
            .all(|s| s.label("transport").is_none())
    );
}

#[test]
fn active_connections_go_up_and_down() {
    let metrics = PrometheusMetrics::new();
    let observer = metrics.observer(Side::Server, Transport::Ws);
    let active = |metrics: &PrometheusMetrics| {
        value(
            &scrape(metrics),
            "haystack_ws_connections_active",
            &[("side", "server")],
        )
    };
    let opened = |metrics: &PrometheusMetrics| {
        value(
            &scrape(metrics),
            "haystack_ws_connections_total",
            &[("side", "server")],
        )
    };
    // A WebSocket component's connection series exist from the start.
    assert_eq!(active(&metrics), Some(0.0));
    assert_eq!(opened(&metrics), Some(0.0));

    observer.on_ws_connect("10.0.0.1:5000");
    observer.on_ws_connect("10.0.0.2:5000");
    observer.on_ws_connect("10.0.0.3:5000");
    assert_eq!(active(&metrics), Some(3.0));
    observer.on_ws_disconnect("10.0.0.2:5000");
    assert_eq!(active(&metrics), Some(2.0));
    observer.on_ws_disconnect("10.0.0.1:5000");
    observer.on_ws_disconnect("10.0.0.3:5000");
    assert_eq!(active(&metrics), Some(0.0));
    assert_eq!(opened(&metrics), Some(3.0));

    let text = metrics.encode(ExpositionFormat::OpenMetrics).unwrap();
    assert!(!text.contains("10.0.0."), "addresses never become labels");
}

#[test]
fn components_share_one_registry_with_distinct_labels() {
    let metrics = PrometheusMetrics::new();
    let http_server = metrics.observer(Side::Server, Transport::Http);
    let ws_server = metrics.observer(Side::Server, Transport::Ws);
    let ws_client = metrics.observer(Side::Client, Transport::Ws);
    let http_client = metrics.observer(Side::Client, Transport::Http);
    // A second observer with the same labels adds to the same series.
    let http_server_too = metrics.clone().observer(Side::Server, Transport::Http);

    http_server.on_request("read", Duration::from_millis(1));
    http_server_too.on_request("read", Duration::from_millis(1));
    ws_server.on_request("read", Duration::from_millis(1));
    ws_client.on_request("read", Duration::from_millis(1));
    ws_client.on_request("read", Duration::from_millis(1));
    ws_client.on_request("read", Duration::from_millis(1));
    http_client.on_error("read", "connect");
    ws_server.on_ws_connect("a");
    ws_client.on_ws_connect("b");
    ws_client.on_ws_connect("c");

    let samples = scrape(&metrics);
    let count = |side, transport| {
        value(
            &samples,
            "haystack_request_duration_seconds_count",
            &[("op", "read"), ("side", side), ("transport", transport)],
        )
    };
    assert_eq!(count("server", "http"), Some(2.0));
    assert_eq!(count("server", "ws"), Some(1.0));
    assert_eq!(count("client", "ws"), Some(3.0));
    assert_eq!(count("client", "http"), None);
    assert_eq!(
        value(
            &samples,
            "haystack_errors_total",
            &[("side", "client"), ("transport", "http")]
        ),
        Some(1.0)
    );
    let active = |side| {
        value(
            &samples,
            "haystack_ws_connections_active",
            &[("side", side)],
        )
    };
    assert_eq!(active("server"), Some(1.0));
    assert_eq!(active("client"), Some(2.0));
    assert_eq!(http_server.side(), Side::Server);
    assert_eq!(ws_client.transport(), Transport::Ws);
}

#[test]
fn concurrent_events_from_many_threads_are_all_counted() {
    const THREADS: usize = 4;
    const EVENTS: usize = 5_000;
    let metrics = PrometheusMetrics::new();
    // Half the threads share one observer (shared handle cache), the others
    // each make their own with the same labels (shared series).
    let shared: Arc<dyn MetricsObserver> = Arc::new(metrics.observer(Side::Server, Transport::Ws));
    std::thread::scope(|scope| {
        for thread in 0..THREADS {
            let observer: Arc<dyn MetricsObserver> = if thread % 2 == 0 {
                shared.clone()
            } else {
                Arc::new(metrics.observer(Side::Server, Transport::Ws))
            };
            // Through the guard, as a transport calls it.
            let observer = GuardedObserver::new(observer);
            scope.spawn(move || {
                for i in 0..EVENTS {
                    let op = OPS[i % OPS.len()];
                    observer.on_ws_connect("peer");
                    observer.on_ws_message_recv(op, 3);
                    observer.on_request(op, Duration::from_micros(250));
                    observer.on_ws_message_sent(op, 5);
                    if i % 10 == 0 {
                        observer.on_error(op, "timeout");
                    }
                    observer.on_ws_disconnect("peer");
                }
            });
        }
    });

    let samples = scrape(&metrics);
    let total = |name: &str| -> f64 {
        samples
            .iter()
            .filter(|s| s.name == name)
            .map(|s| s.value)
            .sum()
    };
    let events = (THREADS * EVENTS) as f64;
    assert_eq!(total("haystack_request_duration_seconds_count"), events);
    let sum = total("haystack_request_duration_seconds_sum");
    assert!((sum - events * 0.000_25).abs() < 1e-6, "{sum}");
    assert_eq!(total("haystack_ws_messages_received_total"), events);
    assert_eq!(total("haystack_ws_received_bytes_total"), events * 3.0);
    assert_eq!(total("haystack_ws_messages_sent_total"), events);
    assert_eq!(total("haystack_ws_sent_bytes_total"), events * 5.0);
    assert_eq!(
        total("haystack_errors_total"),
        (THREADS * EVENTS.div_ceil(10)) as f64
    );
    assert_eq!(total("haystack_ws_connections_total"), events);
    assert_eq!(total("haystack_ws_connections_active"), 0.0);
    // One series per op, whichever thread created it first.
    let read_series = samples
        .iter()
        .filter(|s| {
            s.name == "haystack_request_duration_seconds_count" && s.label("op") == Some("read")
        })
        .count();
    assert_eq!(read_series, 1);
}

#[test]
fn with_registry_keeps_the_applications_own_metrics() {
    let mut registry = Registry::default();
    let jobs: Counter = Counter::default();
    registry.register("app_jobs", "Jobs run", jobs.clone());
    jobs.inc_by(7);
    let metrics = PrometheusMetrics::with_registry(registry);
    metrics
        .observer(Side::Server, Transport::Http)
        .on_request("about", Duration::from_millis(2));

    let samples = scrape(&metrics);
    assert_eq!(value(&samples, "app_jobs_total", &[]), Some(7.0));
    assert_eq!(
        value(
            &samples,
            "haystack_request_duration_seconds_count",
            &[("op", "about")]
        ),
        Some(1.0)
    );
}

#[test]
fn both_formats_carry_the_same_samples() {
    let metrics = PrometheusMetrics::new();
    common::fire_everything(&metrics);
    let open_metrics = metrics.encode(ExpositionFormat::OpenMetrics).unwrap();
    let prometheus_text = metrics.encode(ExpositionFormat::PrometheusText).unwrap();
    assert!(open_metrics.ends_with("# EOF\n"));
    assert!(!prometheus_text.contains("# EOF"));
    // Same samples; the order of series within a family may differ.
    let sorted = |text: &str| {
        let mut lines: Vec<String> = parse(text).iter().map(|s| format!("{s:?}")).collect();
        lines.sort();
        lines
    };
    let (a, b) = (sorted(&open_metrics), sorted(&prometheus_text));
    assert_eq!(a.len(), b.len());
    let differ: Vec<_> = a.iter().zip(&b).filter(|(x, y)| x != y).take(3).collect();
    assert!(differ.is_empty(), "the two formats disagree: {differ:?}");
}

#[test]
fn format_negotiation_gives_openmetrics_only_when_asked() {
    use ExpositionFormat::{OpenMetrics, PrometheusText};
    let prometheus_scraper = "application/openmetrics-text;version=1.0.0;q=0.5,\
        application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
    assert_eq!(
        ExpositionFormat::negotiate(Some(prometheus_scraper)),
        OpenMetrics
    );
    assert_eq!(
        ExpositionFormat::negotiate(Some("Application/OpenMetrics-Text; version=1.0.0")),
        OpenMetrics
    );
    for accept in [
        None,
        Some("*/*"),
        Some("text/plain; version=0.0.4"),
        Some("application/openmetrics-text;q=0,text/plain"),
    ] {
        assert_eq!(
            ExpositionFormat::negotiate(accept),
            PrometheusText,
            "{accept:?}"
        );
    }
    assert_eq!(
        OpenMetrics.content_type(),
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert_eq!(
        PrometheusText.content_type(),
        "text/plain; version=0.0.4; charset=utf-8"
    );
}

#[test]
fn buckets_resolve_a_ten_microsecond_server_and_reach_tens_of_seconds() {
    let metrics = PrometheusMetrics::new();
    let observer = metrics.observer(Side::Server, Transport::Http);
    // An in-memory read answered in 9 µs, and a tail at 128 µs.
    for _ in 0..99 {
        observer.on_request("read", Duration::from_micros(9));
    }
    observer.on_request("read", Duration::from_micros(128));
    // A client that waited 40 s.
    observer.on_request("hisRead", Duration::from_secs(40));

    let samples = scrape(&metrics);
    let bucket = |op: &str, le: f64| {
        let le = format!("{le:?}");
        value(
            &samples,
            "haystack_request_duration_seconds_bucket",
            &[
                ("op", op),
                ("le", le.as_str()),
                SERVER_HTTP[0],
                SERVER_HTTP[1],
            ],
        )
        .unwrap()
    };
    // histogram_quantile interpolates inside one bucket: the 9 µs reads must
    // sit in a bucket no wider than 5–10 µs, and the tail above them.
    let p50_bucket = DURATION_BUCKETS
        .iter()
        .position(|&le| bucket("read", le) >= 50.0)
        .unwrap();
    let upper = DURATION_BUCKETS[p50_bucket];
    let lower = p50_bucket
        .checked_sub(1)
        .map_or(0.0, |i| DURATION_BUCKETS[i]);
    assert!(
        upper <= 10e-6 && lower >= 5e-6,
        "p50 bucket ({lower}, {upper}]"
    );
    assert_eq!(bucket("read", upper), 99.0);
    assert!(
        bucket("read", 100e-6) < 100.0,
        "the 128 µs tail is its own bucket"
    );
    // The 40 s request lands in a finite bucket.
    let largest = DURATION_BUCKETS[DURATION_BUCKETS.len() - 1];
    assert!(largest >= 40.0, "largest bucket {largest} s");
    assert_eq!(bucket("hisRead", largest), 1.0);
}
