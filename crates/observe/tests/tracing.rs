//! `TracingObserver` through a real `tracing` subscriber: a layer that
//! records every event's level, target, message and fields.

#![allow(clippy::unwrap_used)] // test helpers: a poisoned lock is a failed test

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hs_observe::{
    CompositeObserver, FnObserver, MetricsObserver, Side, TracingObserver, Transport,
};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

#[derive(Debug, Clone, PartialEq)]
enum Val {
    Str(String),
    U64(u64),
    F64(f64),
}

#[derive(Debug, Clone, PartialEq)]
struct Recorded {
    level: Level,
    target: String,
    fields: BTreeMap<String, Val>,
}

#[derive(Default)]
struct FieldVisitor(BTreeMap<String, Val>);

impl Visit for FieldVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0
            .insert(field.name().to_owned(), Val::Str(value.to_owned()));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), Val::U64(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_owned(), Val::F64(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `message` arrives as format arguments.
        self.0
            .insert(field.name().to_owned(), Val::Str(format!("{value:?}")));
    }
}

#[derive(Clone, Default)]
struct Collect(Arc<Mutex<Vec<Recorded>>>);

impl<S: Subscriber> Layer<S> for Collect {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut visitor = FieldVisitor::default();
        event.record(&mut visitor);
        self.0.lock().unwrap().push(Recorded {
            level: *event.metadata().level(),
            target: event.metadata().target().to_owned(),
            fields: visitor.0,
        });
    }
}

/// Runs `f` with a subscriber that records into the returned list.
fn record(f: impl FnOnce()) -> Vec<Recorded> {
    let collect = Collect::default();
    let subscriber = tracing_subscriber::registry().with(collect.clone());
    tracing::subscriber::with_default(subscriber, f);
    collect.0.lock().unwrap().clone()
}

fn fields(pairs: &[(&str, Val)]) -> BTreeMap<String, Val> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

fn s(value: &str) -> Val {
    Val::Str(value.to_owned())
}

fn expect(level: Level, pairs: &[(&str, Val)]) -> Recorded {
    Recorded {
        level,
        target: "hs::observe".to_owned(),
        fields: fields(pairs),
    }
}

#[test]
fn every_event_is_a_structured_event_at_its_level() {
    let observer = TracingObserver::new();
    let duration = Duration::from_micros(1250);
    let events = record(|| {
        observer.on_ws_connect("127.0.0.1:5000");
        observer.on_ws_message_recv("read", 120);
        observer.on_ws_message_sent("read", 412);
        observer.on_request("read", duration);
        observer.on_error("hisRead", "timeout");
        observer.on_ws_disconnect("127.0.0.1:5000");
    });
    assert_eq!(
        events,
        [
            expect(
                Level::INFO,
                &[("message", s("ws connect")), ("peer", s("127.0.0.1:5000"))]
            ),
            expect(
                Level::TRACE,
                &[
                    ("message", s("ws recv")),
                    ("op", s("read")),
                    ("bytes", Val::U64(120))
                ]
            ),
            expect(
                Level::TRACE,
                &[
                    ("message", s("ws sent")),
                    ("op", s("read")),
                    ("bytes", Val::U64(412))
                ]
            ),
            expect(
                Level::DEBUG,
                &[
                    ("message", s("request")),
                    ("op", s("read")),
                    ("duration_s", Val::F64(0.00125))
                ]
            ),
            expect(
                Level::WARN,
                &[
                    ("message", s("error")),
                    ("op", s("hisRead")),
                    ("error_type", s("timeout"))
                ]
            ),
            expect(
                Level::INFO,
                &[
                    ("message", s("ws disconnect")),
                    ("peer", s("127.0.0.1:5000"))
                ]
            ),
        ]
    );
}

#[test]
fn a_component_adds_side_and_transport() {
    let observer = TracingObserver::new().for_component(Side::Client, Transport::Http);
    let events = record(|| observer.on_error("read", "auth"));
    assert_eq!(
        events,
        [expect(
            Level::WARN,
            &[
                ("message", s("error")),
                ("op", s("read")),
                ("error_type", s("auth")),
                ("side", s("client")),
                ("transport", s("http")),
            ]
        )]
    );
}

#[test]
fn a_panicking_observer_beside_it_is_isolated() {
    let observer = CompositeObserver::builder()
        .with(FnObserver::new().on_request(|_, _| panic!("buggy user observer")))
        .with(TracingObserver::new())
        .build();
    std::panic::set_hook(Box::new(|_| {}));
    let events = record(|| observer.on_request("nav", Duration::from_millis(2)));
    let _ = std::panic::take_hook();
    // The composite's own WARN about the panic goes through `log`, not here.
    assert_eq!(
        events,
        [expect(
            Level::DEBUG,
            &[
                ("message", s("request")),
                ("op", s("nav")),
                ("duration_s", Val::F64(0.002))
            ]
        )]
    );
}
