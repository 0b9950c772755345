//! Compose observers: logging, in-process stats and a deliberately buggy
//! observer that panics, all behind one `CompositeObserver`. The buggy one
//! is caught, logged once at WARN, and quarantined after 3 panics in a row;
//! logging and stats keep seeing every event.
//!
//! The example simulates the traffic of a WebSocket server by calling the
//! observer directly, as the transport does, so it runs without a server.
//!
//! Run: `cargo run -p examples --example compose`
//! (`RUST_LOG=hs::observe=debug` also shows each request and the later,
//! DEBUG-level panic reports.)

use std::sync::Arc;
use std::time::Duration;

use hs_core::observe::{
    CompositeObserver, ErrorKind, Event, LoggingObserver, MetricsObserver, StatsObserver,
};
use log::LevelFilter;

/// A buggy observer: divides by zero on every request faster than a second.
struct RequestRate;

impl MetricsObserver for RequestRate {
    fn on_request(&self, op: &str, duration: Duration) {
        let per_second = 1 / duration.as_secs();
        println!("{op}: {per_second} per second"); // never reached
    }
}

/// A small deterministic generator, so every run prints the same table.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % bound
    }
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("hs::observe=info"))
        .format_timestamp(None)
        .init();
    // The process-wide panic hook runs before the guard catches a panic, and
    // by default prints every panic to stderr. Keep this demo readable; the
    // guard's own log line reports the panic instead.
    std::panic::set_hook(Box::new(|_| {}));

    let stats = Arc::new(StatsObserver::new());
    let observer: Arc<dyn MetricsObserver> = Arc::new(
        CompositeObserver::builder()
            // Connects/disconnects at INFO; requests and (for this demo, so
            // the 40 simulated failures do not flood the screen) errors at DEBUG.
            .with(LoggingObserver::new().with_level(Event::Error, LevelFilter::Debug))
            .with(RequestRate)
            .with_arc(stats.clone())
            .quarantine_after(3)
            .build(),
    );

    println!("== simulating 2 WebSocket connections and 2,000 requests ==");
    let ops = [
        "read",
        "read",
        "read",
        "nav",
        "hisRead",
        "pointWrite",
        "watchPoll",
    ];
    let errors = [
        ErrorKind::Timeout,
        ErrorKind::NotFound,
        ErrorKind::Forbidden,
    ];
    let mut rng = Lcg(42);
    for peer in ["127.0.0.1:50412", "127.0.0.1:50413"] {
        observer.on_ws_connect(peer);
        for _ in 0..1_000 {
            let op = ops[rng.next(ops.len() as u64) as usize];
            observer.on_ws_message_recv(op, 80 + rng.next(60) as usize);
            if rng.next(100) < 2 {
                let kind = errors[rng.next(errors.len() as u64) as usize];
                observer.on_error(op, kind.as_str());
                observer.on_ws_message_sent(op, 140);
            } else {
                // Mostly fast, with a long tail.
                let micros = match rng.next(100) {
                    0..90 => 200 + rng.next(800),
                    90..99 => 2_000 + rng.next(8_000),
                    _ => 40_000 + rng.next(60_000),
                };
                observer.on_request(op, Duration::from_micros(micros));
                observer.on_ws_message_sent(op, 300 + rng.next(4_000) as usize);
            }
        }
        observer.on_ws_disconnect(peer);
    }

    let snapshot = stats.snapshot();
    println!();
    println!("== StatsObserver snapshot ==");
    println!("{snapshot}");
    println!();
    println!(
        "The buggy observer panicked on the first 3 requests (WARN once, then DEBUG) and was \
         quarantined;\nthe logging and stats observers beside it still saw all {} requests \
         and {} errors, and the caller never saw a panic.",
        snapshot.requests, snapshot.errors
    );
}
