//! `LoggingObserver` with env_logger: every event becomes one line on target
//! `hs::observe`, and `RUST_LOG` picks what you see.
//!
//! The example fires the events itself, by calling the observer directly as
//! a transport does, so it runs without a server.
//!
//! Run it with different filters:
//!
//! ```sh
//! cargo run -p examples --example logging                               # default: hs::observe=debug
//! RUST_LOG=hs::observe=trace cargo run -p examples --example logging    # also every message
//! RUST_LOG=hs::observe=warn  cargo run -p examples --example logging    # errors only
//! RUST_LOG=hs=info,hs::observe=off cargo run -p examples --example logging  # nothing from observers
//! ```

use std::time::Duration;

use hs_core::observe::{Event, LoggingObserver, MetricsObserver};
use log::LevelFilter;

fn main() {
    env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or("hs::observe=debug"),
    )
    // tungstenite prints whole frames at TRACE, tokens and SCRAM proofs
    // included: keep it below TRACE whatever RUST_LOG says.
    .filter_module("tungstenite", LevelFilter::Debug)
    .filter_module("tokio_tungstenite", LevelFilter::Debug)
    .init();

    // Default levels: connect/disconnect INFO, messages TRACE, request DEBUG,
    // error WARN. Here slow-path noise is raised: requests at INFO.
    let observer = LoggingObserver::new().with_level(Event::Request, LevelFilter::Info);

    observer.on_ws_connect("127.0.0.1:5000");
    observer.on_ws_message_recv("read", 96);
    observer.on_ws_message_sent("read", 1834);
    observer.on_request("read", Duration::from_micros(1_234));
    observer.on_ws_message_recv("hisRead", 120);
    observer.on_error("hisRead", "timeout");
    observer.on_ws_disconnect("127.0.0.1:5000");
}
