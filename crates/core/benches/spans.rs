//! What a request's `tracing` span costs (`hs_core::spans::client_request`
//! and `record_outcome`, as every client request makes them; the servers'
//! `server_request` spans have the same shape): with no subscriber, with a subscriber whose
//! filter leaves INFO spans out, and with a subscriber recording them
//! (tracing-subscriber's registry, which every span layer sits on).
//!
//! Run: `cargo bench -p hs-core --bench spans`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::FutureExt as _;
use hs_core::observe::ErrorKind;
use hs_core::observe::labels::Transport;
use hs_core::spans::{client_request, record_outcome};
use tracing::Instrument as _;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt as _;

/// One request's span: created, entered while a trivial future is polled
/// to its end, its outcome recorded, closed.
fn one_request(error: bool) {
    let span = client_request(Transport::Ws, black_box("read"));
    black_box(
        async { black_box(1) }
            .instrument(span.clone())
            .now_or_never(),
    );
    record_outcome(&span, error.then_some(ErrorKind::NotFound));
}

fn spans(c: &mut Criterion) {
    let mut group = c.benchmark_group("request_span");
    group.bench_function("no subscriber", |b| b.iter(|| one_request(false)));
    group.bench_function("no span at all (the future alone)", |b| {
        b.iter(|| black_box(async { black_box(1) }.now_or_never()))
    });
    let filtered = tracing_subscriber::registry().with(LevelFilter::WARN);
    tracing::subscriber::with_default(filtered, || {
        group.bench_function("subscriber, INFO filtered out", |b| {
            b.iter(|| one_request(false))
        });
    });
    let recording = tracing_subscriber::registry();
    tracing::subscriber::with_default(recording, || {
        group.bench_function("registry recording the span", |b| {
            b.iter(|| one_request(false))
        });
        group.bench_function("registry recording the span, error", |b| {
            b.iter(|| one_request(true))
        });
    });
    group.finish();
}

criterion_group!(benches, spans);
criterion_main!(benches);
