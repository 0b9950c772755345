//! `StatsObserver` under 8 threads × 100,000 events: every count exact, and
//! the percentiles exact because every duration is a bucket midpoint.

use std::sync::Arc;
use std::time::Duration;

use hs_observe::{MetricsObserver, StatsObserver};

const THREADS: u64 = 8;
const EVENTS_PER_THREAD: u64 = 100_000;

/// Durations that are bucket midpoints (`(2m + 1) << (k - 1)`, 32 <= m < 64),
/// so the histogram reports them exactly.
const FAST: Duration = Duration::from_nanos(101 << 10); // 103.424 µs
const MEDIUM: Duration = Duration::from_nanos(65 << 13); // 532.480 µs
const SLOW: Duration = Duration::from_nanos(127 << 14); // 2.080768 ms
const WORST: Duration = Duration::from_nanos(99 << 20); // 103.809024 ms

/// Per 100 requests: 50 fast, 40 medium, 9 slow, 1 worst. Across all threads
/// the p50 rank lands on the last fast request, p90 on the last medium, p99 on
/// the last slow.
fn duration_for(j: u64) -> Duration {
    match j % 100 {
        0..50 => FAST,
        50..90 => MEDIUM,
        90..99 => SLOW,
        _ => WORST,
    }
}

#[test]
fn counts_and_percentiles_are_exact_under_eight_threads() {
    let stats = Arc::new(StatsObserver::new());
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let observer: Arc<dyn MetricsObserver> = stats.clone();
            std::thread::spawn(move || {
                for j in 0..EVENTS_PER_THREAD {
                    observer.on_request("read", duration_for(j));
                    if j % 10 == 0 {
                        observer.on_error(["hisRead", "nav"][(j / 10 % 2) as usize], "timeout");
                        observer.on_ws_message_sent("hisRead", 100);
                        observer.on_ws_message_recv("notAnOp", 7);
                    }
                    if j % 1000 == 0 {
                        observer.on_ws_connect("127.0.0.1:1");
                        observer.on_ws_disconnect("127.0.0.1:1");
                        observer.on_error("read", "brand_new_error");
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }

    let s = stats.snapshot();
    let n = THREADS * EVENTS_PER_THREAD;
    assert_eq!(s.requests, n);
    let read = s.op("read").unwrap();
    assert_eq!(read.requests, n);
    assert_eq!(read.errors, THREADS * 100);
    assert_eq!(s.op("hisRead").unwrap().errors, THREADS * 5_000);
    assert_eq!(s.op("nav").unwrap().errors, THREADS * 5_000);
    assert_eq!(s.errors, THREADS * (10_000 + 100));
    assert_eq!(s.errors_of_type("timeout"), THREADS * 10_000);
    assert_eq!(s.errors_of_type("brand_new_error"), THREADS * 100);
    assert_eq!(s.errors_of_type("_other"), THREADS * 100);
    assert_eq!(s.op("hisRead").unwrap().messages_sent, THREADS * 10_000);
    assert_eq!(s.bytes_sent, THREADS * 10_000 * 100);
    assert_eq!(s.op("notAnOp").unwrap().op, "_other");
    assert_eq!(s.op("_other").unwrap().messages_recv, THREADS * 10_000);
    assert_eq!(s.bytes_recv, THREADS * 10_000 * 7);
    assert_eq!(
        (s.ws_connects, s.ws_disconnects, s.ws_active()),
        (THREADS * 100, THREADS * 100, 0)
    );

    let latency = read.latency;
    assert_eq!(latency.count, n);
    assert_eq!(latency.p50, FAST);
    assert_eq!(latency.p90, MEDIUM);
    assert_eq!(latency.p99, SLOW);
    assert_eq!(latency.max, WORST);
    let total_nanos: u128 = (0..EVENTS_PER_THREAD)
        .map(|j| duration_for(j).as_nanos())
        .sum::<u128>()
        * THREADS as u128;
    assert_eq!(latency.mean.as_nanos(), total_nanos / n as u128);
}

#[test]
fn percentiles_of_arbitrary_values_stay_within_the_documented_error() {
    let stats = StatsObserver::new();
    // 1..=10_000 µs: the true p50/p90/p99 are 5000, 9000 and 9900 µs.
    for micros in 1..=10_000u64 {
        stats.on_request("nav", Duration::from_micros(micros));
    }
    let latency = stats.snapshot().op("nav").unwrap().latency;
    let within = |got: Duration, want_micros: u64| {
        let want = want_micros as f64 * 1000.0;
        let err = (got.as_nanos() as f64 - want).abs() / want;
        assert!(err <= 1.0 / 64.0, "{got:?} vs {want_micros} µs: {err}");
    };
    within(latency.p50, 5_000);
    within(latency.p90, 9_000);
    within(latency.p99, 9_900);
    assert_eq!(latency.max, Duration::from_micros(10_000));
    assert_eq!(latency.mean, Duration::from_nanos(5_000_500));
}
