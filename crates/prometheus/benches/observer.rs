//! Cost of one event on a `PrometheusObserver`, called directly and through
//! the `GuardedObserver` every transport uses.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use hs_observe::{GuardedObserver, MetricsObserver};
use hs_prometheus::{PrometheusMetrics, Side, Transport};

fn events(c: &mut Criterion) {
    let metrics = PrometheusMetrics::new();
    let observer = metrics.observer(Side::Server, Transport::Ws);
    let guarded = GuardedObserver::new(Arc::new(observer.clone()));
    let duration = Duration::from_micros(750);

    let mut group = c.benchmark_group("prometheus_observer");
    group.bench_function("on_request", |b| {
        b.iter(|| observer.on_request(black_box("read"), black_box(duration)))
    });
    group.bench_function("on_request_guarded", |b| {
        b.iter(|| guarded.on_request(black_box("read"), black_box(duration)))
    });
    group.bench_function("on_request_unknown_op", |b| {
        b.iter(|| observer.on_request(black_box("someCustomOp"), black_box(duration)))
    });
    group.bench_function("on_ws_message_sent", |b| {
        b.iter(|| observer.on_ws_message_sent(black_box("hisRead"), black_box(1234)))
    });
    group.bench_function("on_ws_message_sent_guarded", |b| {
        b.iter(|| guarded.on_ws_message_sent(black_box("hisRead"), black_box(1234)))
    });
    group.bench_function("on_error", |b| {
        b.iter(|| observer.on_error(black_box("read"), black_box("server_error")))
    });
    group.finish();
}

criterion_group!(benches, events);
criterion_main!(benches);
