//! Everything that asserts on log output, in one test binary because a
//! process has one global logger. Tests run in parallel threads under
//! `cargo test` (one process per test under nextest), so the capture keeps
//! each record with its thread and every test reads only its own.

#![allow(clippy::unwrap_used)] // test helpers: a poisoned lock is a failed test

use std::sync::{Arc, Mutex, OnceLock};
use std::thread::ThreadId;
use std::time::Duration;

use hs_observe::{
    CompositeObserver, Event, FnObserver, GuardedObserver, LoggingObserver, MetricsObserver, Side,
    Transport,
};
use log::{Level, LevelFilter, Log, Metadata, Record};

#[derive(Debug, Clone, PartialEq)]
struct Line {
    level: Level,
    target: String,
    text: String,
}

struct Capture {
    records: Mutex<Vec<(ThreadId, Line)>>,
    /// When set, `enabled` refuses this level and below, to check that
    /// `LoggingObserver` asks the logger before formatting.
    refuse_below: Mutex<Option<(ThreadId, Level)>>,
}

impl Log for Capture {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        match *self.refuse_below.lock().unwrap() {
            Some((thread, level)) if thread == std::thread::current().id() => {
                metadata.level() < level
            }
            _ => true,
        }
    }
    fn log(&self, record: &Record<'_>) {
        // `log!` does not consult `enabled` itself; honour it as real
        // loggers do.
        if !self.enabled(record.metadata()) {
            return;
        }
        self.records.lock().unwrap().push((
            std::thread::current().id(),
            Line {
                level: record.level(),
                target: record.target().to_owned(),
                text: record.args().to_string(),
            },
        ));
    }
    fn flush(&self) {}
}

fn capture() -> &'static Capture {
    static CAPTURE: OnceLock<&'static Capture> = OnceLock::new();
    CAPTURE.get_or_init(|| {
        let capture: &'static Capture = Box::leak(Box::new(Capture {
            records: Mutex::new(Vec::new()),
            refuse_below: Mutex::new(None),
        }));
        log::set_logger(capture).unwrap();
        log::set_max_level(LevelFilter::Trace);
        // Keep panic messages of the deliberately panicking observers off stderr.
        std::panic::set_hook(Box::new(|_| {}));
        capture
    })
}

/// The lines this thread logged, as `(level, text)`; every one must be on
/// target `hs::observe`.
fn my_lines() -> Vec<(Level, String)> {
    let me = std::thread::current().id();
    capture()
        .records
        .lock()
        .unwrap()
        .iter()
        .filter(|(thread, _)| *thread == me)
        .map(|(_, line)| {
            assert_eq!(line.target, "hs::observe", "{line:?}");
            (line.level, line.text.clone())
        })
        .collect()
}

fn fire_all(observer: &dyn MetricsObserver) {
    observer.on_ws_connect("127.0.0.1:5000");
    observer.on_ws_message_sent("read", 412);
    observer.on_ws_message_recv("read", 2048);
    observer.on_request("read", Duration::from_micros(1234));
    observer.on_error("read", "timeout");
    observer.on_ws_disconnect("127.0.0.1:5000");
}

#[test]
fn logging_observer_writes_one_readable_line_per_event_at_default_levels() {
    capture();
    fire_all(&LoggingObserver::new());
    assert_eq!(
        my_lines(),
        [
            (Level::Info, "ws connect 127.0.0.1:5000".to_owned()),
            (Level::Trace, "ws sent read 412 B".to_owned()),
            (Level::Trace, "ws recv read 2048 B".to_owned()),
            (Level::Debug, "request read 1.234 ms".to_owned()),
            (Level::Warn, "error read timeout".to_owned()),
            (Level::Info, "ws disconnect 127.0.0.1:5000".to_owned()),
        ]
    );
}

#[test]
fn logging_observer_lines_name_their_component() {
    capture();
    let client_ws = LoggingObserver::new().for_component(Side::Client, Transport::Ws);
    let server_http = LoggingObserver::new()
        .for_component(Side::Server, Transport::Http)
        .with_level(Event::Request, LevelFilter::Info);
    client_ws.on_ws_connect("ws://127.0.0.1:5000/api/ws");
    client_ws.on_ws_message_sent("read", 412);
    client_ws.on_error("read", "timeout");
    server_http.on_request("read", Duration::from_micros(1234));
    server_http.on_error("hisRead", "bad_request");
    assert_eq!(
        my_lines(),
        [
            (
                Level::Info,
                "client/ws ws connect ws://127.0.0.1:5000/api/ws".to_owned()
            ),
            (Level::Trace, "client/ws ws sent read 412 B".to_owned()),
            (Level::Warn, "client/ws error read timeout".to_owned()),
            (Level::Info, "server/http request read 1.234 ms".to_owned()),
            (
                Level::Warn,
                "server/http error hisRead bad_request".to_owned()
            ),
        ]
    );
}

#[test]
fn logging_observer_honours_configured_levels_and_off() {
    capture();
    let observer = LoggingObserver::new()
        .with_level(Event::Request, LevelFilter::Info)
        .with_level(Event::Error, LevelFilter::Error)
        .with_level(Event::WsMessageSent, LevelFilter::Off)
        .with_level(Event::WsMessageRecv, LevelFilter::Off)
        .with_level(Event::WsConnect, LevelFilter::Debug);
    assert_eq!(observer.level(Event::WsMessageSent), LevelFilter::Off);
    assert_eq!(observer.level(Event::WsDisconnect), LevelFilter::Info);
    fire_all(&observer);
    assert_eq!(
        my_lines(),
        [
            (Level::Debug, "ws connect 127.0.0.1:5000".to_owned()),
            (Level::Info, "request read 1.234 ms".to_owned()),
            (Level::Error, "error read timeout".to_owned()),
            (Level::Info, "ws disconnect 127.0.0.1:5000".to_owned()),
        ]
    );
}

#[test]
fn logging_observer_skips_levels_the_logger_disables() {
    let capture = capture();
    *capture.refuse_below.lock().unwrap() = Some((std::thread::current().id(), Level::Debug));
    fire_all(&LoggingObserver::new());
    *capture.refuse_below.lock().unwrap() = None;
    assert_eq!(
        my_lines(),
        [
            (Level::Info, "ws connect 127.0.0.1:5000".to_owned()),
            (Level::Warn, "error read timeout".to_owned()),
            (Level::Info, "ws disconnect 127.0.0.1:5000".to_owned()),
        ]
    );
}

#[test]
fn guard_logs_first_panic_at_warn_then_debug_naming_type_and_event() {
    capture();
    let guarded = GuardedObserver::new(Arc::new(
        FnObserver::new()
            .on_request(|_, _| panic!("request bug"))
            .on_error(|_, _| panic!("error bug")),
    ));
    guarded.on_request("read", Duration::ZERO);
    guarded.on_error("read", "timeout");
    guarded.on_request("read", Duration::ZERO);
    let lines = my_lines();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[0].0, Level::Warn);
    assert!(
        lines[0].1.contains("hs_observe::fn_observer::FnObserver"),
        "{lines:?}"
    );
    assert!(lines[0].1.contains("on_request"), "{lines:?}");
    assert!(lines[0].1.contains("request bug"), "{lines:?}");
    assert_eq!(lines[1].0, Level::Debug);
    assert!(lines[1].1.contains("on_error: error bug"), "{lines:?}");
    assert_eq!(lines[2].0, Level::Debug);
}

/// A child whose every event panics, with a name of its own.
struct Exploding;

impl MetricsObserver for Exploding {
    fn on_request(&self, op: &str, _: Duration) {
        panic!("exploding on {op}");
    }
}

#[test]
fn composite_logs_each_child_separately_and_quarantine_once() {
    capture();
    let composite = CompositeObserver::builder()
        .with(Exploding)
        .with(LoggingObserver::new().with_level(Event::Request, LevelFilter::Info))
        .with(FnObserver::new().on_request(|_, _| panic!("second bug")))
        .quarantine_after(3)
        .build();
    for _ in 0..6 {
        composite.on_request("read", Duration::from_millis(2));
    }
    let lines = my_lines();
    let exploding: Vec<_> = lines
        .iter()
        .filter(|(_, t)| t.contains("Exploding"))
        .collect();
    let second: Vec<_> = lines
        .iter()
        .filter(|(_, t)| t.contains("FnObserver"))
        .collect();
    let requests = lines
        .iter()
        .filter(|(_, t)| t == "request read 2.000 ms")
        .count();

    // The logging child between the two panicking ones saw every event.
    assert_eq!(requests, 6);
    // Each panicking child: WARN first, DEBUG twice, then one WARN for the
    // quarantine, then silence.
    for child in [exploding, second] {
        assert_eq!(child.len(), 4, "{child:?}");
        assert_eq!(child[0].0, Level::Warn);
        assert!(child[0].1.contains("panicked in on_request"), "{child:?}");
        assert_eq!((child[1].0, child[2].0), (Level::Debug, Level::Debug));
        assert_eq!(child[3].0, Level::Warn);
        assert!(
            child[3]
                .1
                .contains("quarantined after 3 consecutive panics"),
            "{child:?}"
        );
    }
    let children = composite.children();
    assert!(children[0].is_quarantined() && children[2].is_quarantined());
    assert!(!children[1].is_quarantined());
}
