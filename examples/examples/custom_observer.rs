//! Implement `MetricsObserver` on your own struct: override only the events
//! you care about, the others keep their no-op defaults.
//!
//! The example fires the events itself, by calling the observer directly as
//! a transport does through its `GuardedObserver`, so it runs without a
//! server.
//!
//! Run: `cargo run -p examples --example custom_observer`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hs_core::observe::{ErrorKind, GuardedObserver, MetricsObserver};

/// Counts requests slower than a threshold, and timeouts.
#[derive(Debug)]
struct SlowRequestCounter {
    threshold: Duration,
    slow: AtomicU64,
    timeouts: AtomicU64,
}

impl MetricsObserver for SlowRequestCounter {
    fn on_request(&self, op: &str, duration: Duration) {
        if duration > self.threshold {
            self.slow.fetch_add(1, Ordering::Relaxed);
            println!("slow {op}: {duration:?}");
        }
    }

    fn on_error(&self, op: &str, error_type: &str) {
        // Compare against the stable names, never against an error message.
        if error_type == ErrorKind::Timeout.as_str() {
            self.timeouts.fetch_add(1, Ordering::Relaxed);
            println!("{op} timed out");
        }
    }
}

fn main() {
    let counter = Arc::new(SlowRequestCounter {
        threshold: Duration::from_millis(100),
        slow: AtomicU64::new(0),
        timeouts: AtomicU64::new(0),
    });

    // What a transport does with the observer you give its builder: wrap it
    // once in the guard, then call only the guard.
    let observer = GuardedObserver::new(counter.clone());

    // Simulated traffic.
    observer.on_ws_connect("127.0.0.1:5000"); // not overridden: ignored
    observer.on_request("read", Duration::from_millis(12));
    observer.on_request("hisRead", Duration::from_millis(340));
    observer.on_error("hisRead", ErrorKind::Timeout.as_str());
    observer.on_request("nav", Duration::from_millis(180));
    observer.on_error("pointWrite", ErrorKind::Forbidden.as_str());
    observer.on_ws_disconnect("127.0.0.1:5000");

    println!(
        "{} slow requests, {} timeouts",
        counter.slow.load(Ordering::Relaxed),
        counter.timeouts.load(Ordering::Relaxed)
    );
}
