//! Cost of one event on an `OtelObserver` beside a `PrometheusObserver`, in
//! one run: `cargo bench -p hs-otel --bench observer`.
//!
//! The `OtelObserver` records into an `SdkMeterProvider` with no reader, as
//! between two exports: the cost measured is the instrument update, the
//! same work whatever the exporter.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use hs_observe::{MetricsObserver, Side, Transport};
use hs_otel::OtelObserver;
use hs_prometheus::PrometheusMetrics;
use opentelemetry_sdk::metrics::SdkMeterProvider;

fn bench_observer(c: &mut Criterion, group_name: &str, observer: &dyn MetricsObserver) {
    let duration = Duration::from_micros(750);
    let mut group = c.benchmark_group(group_name);
    group.bench_function("on_request", |b| {
        b.iter(|| observer.on_request(black_box("read"), black_box(duration)))
    });
    group.bench_function("on_error", |b| {
        b.iter(|| observer.on_error(black_box("read"), black_box("server_error")))
    });
    group.bench_function("on_ws_message_sent", |b| {
        b.iter(|| observer.on_ws_message_sent(black_box("hisRead"), black_box(1234)))
    });
    group.finish();
}

fn events(c: &mut Criterion) {
    let provider = SdkMeterProvider::builder().build();
    let otel = OtelObserver::new(&provider, Side::Server, Transport::Ws);
    let metrics = PrometheusMetrics::new();
    let prometheus = metrics.observer(Side::Server, Transport::Ws);

    bench_observer(c, "otel_observer", &otel);
    bench_observer(c, "prometheus_observer", &prometheus);
}

criterion_group!(benches, events);
criterion_main!(benches);
