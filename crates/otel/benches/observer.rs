//! Cost of one event on an `OtelObserver` beside a `PrometheusObserver`, in
//! one run: `cargo bench -p hs-otel --bench observer`.
//!
//! The `OtelObserver` records into a real `OtlpMetrics` pipeline (periodic
//! reader, OTLP/HTTP exporter) whose interval is longer than the run, so
//! what is measured is the instrument update between two exports. (A
//! provider with no reader would measure nothing: the SDK skips instruments
//! no reader collects.)

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use hs_observe::{MetricsObserver, Side, Transport};
use hs_otel::OtlpMetrics;
use hs_prometheus::PrometheusMetrics;

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
    // Nothing listens on the discard port: no export happens during the run.
    let otlp = OtlpMetrics::builder()
        .endpoint("http://127.0.0.1:9")
        .interval(Duration::from_secs(24 * 3600))
        .build()
        .expect("an OTLP/HTTP exporter builds without a receiver");
    let otel = otlp.observer(Side::Server, Transport::Ws);
    let metrics = PrometheusMetrics::new();
    let prometheus = metrics.observer(Side::Server, Transport::Ws);

    bench_observer(c, "otel_observer", &otel);
    bench_observer(c, "prometheus_observer", &prometheus);
    // The final export fails (no receiver); that is expected here.
    let _ = otlp.shutdown();
}

criterion_group!(benches, events);
criterion_main!(benches);
