//! Build an observer from closures with `FnObserver`: the setters are named
//! like the trait methods, and any event without a closure does nothing.
//!
//! The example fires the events itself, by calling the observer directly as
//! a transport does, so it runs without a server.
//!
//! Run: `cargo run -p examples --example closures`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hs_core::observe::{FnObserver, MetricsObserver};

fn main() {
    let bytes_in = Arc::new(AtomicU64::new(0));
    let counter = bytes_in.clone();

    // Transports take an `Arc<dyn MetricsObserver>`.
    let observer: Arc<dyn MetricsObserver> = Arc::new(
        FnObserver::new()
            .on_ws_connect(|addr| println!("connected to {addr}"))
            .on_ws_message_recv(move |_op, bytes| {
                counter.fetch_add(bytes as u64, Ordering::Relaxed);
            })
            .on_request(|op, duration| println!("{op} took {:.3} ms", duration.as_secs_f64() * 1e3))
            .on_error(|op, error_type| println!("{op} failed: {error_type}")),
    );

    // Simulated client traffic.
    observer.on_ws_connect("ws://127.0.0.1:8080/api/ws");
    observer.on_ws_message_sent("read", 96); // no closure set: nothing happens
    observer.on_ws_message_recv("read", 1834);
    observer.on_request("read", Duration::from_micros(2_417));
    observer.on_ws_message_sent("hisRead", 120);
    observer.on_ws_message_recv("hisRead", 88);
    observer.on_error("hisRead", "not_found");
    observer.on_ws_disconnect("ws://127.0.0.1:8080/api/ws"); // no closure set

    println!("{} bytes received", bytes_in.load(Ordering::Relaxed));
}
