//! Cost per event of the observer framework (figures in docs/performance.md).
//!
//! `cargo bench -p hs-observe --bench observe -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use hs_observe::{
    CompositeObserver, FnObserver, GuardedObserver, LoggingObserver, MetricsObserver, NoopObserver,
    StatsObserver,
};

const OP: &str = "read";
const DURATION: Duration = Duration::from_micros(250);

/// One `on_request` through `observer`, with the arguments hidden from the
/// optimiser so the call is not folded away.
#[inline(always)]
fn fire(observer: &dyn MetricsObserver) {
    observer.on_request(black_box(OP), black_box(DURATION));
}

fn dispatch(c: &mut Criterion) {
    let mut group = c.benchmark_group("dispatch");

    let noop: Arc<dyn MetricsObserver> = Arc::new(NoopObserver);
    group.bench_function("noop via Arc<dyn> (bare virtual call)", |b| {
        b.iter(|| fire(&**black_box(&noop)))
    });

    // How transports call: a concrete GuardedObserver, the guard's own
    // virtual call to the user's observer inside.
    let guarded = GuardedObserver::new(Arc::new(NoopObserver));
    group.bench_function("guarded noop (transport path)", |b| {
        b.iter(|| black_box(&guarded).on_request(black_box(OP), black_box(DURATION)))
    });

    let fn_set = FnObserver::new().on_request(|op, d| {
        black_box((op, d));
    });
    let fn_set: Arc<dyn MetricsObserver> = Arc::new(fn_set);
    group.bench_function("FnObserver, closure set", |b| {
        b.iter(|| fire(&**black_box(&fn_set)))
    });
    let fn_unset: Arc<dyn MetricsObserver> = Arc::new(FnObserver::new());
    group.bench_function("FnObserver, slot unset", |b| {
        b.iter(|| fire(&**black_box(&fn_unset)))
    });

    // No logger is installed: the disabled-level path.
    let logging: Arc<dyn MetricsObserver> = Arc::new(LoggingObserver::new());
    group.bench_function("LoggingObserver, level disabled", |b| {
        b.iter(|| fire(&**black_box(&logging)))
    });

    for children in [1, 4, 16] {
        let composite = (0..children)
            .fold(CompositeObserver::builder(), |b, _| b.with(NoopObserver))
            .build();
        let composite: Arc<dyn MetricsObserver> = Arc::new(composite);
        group.bench_function(format!("composite of {children} noop"), |b| {
            b.iter(|| fire(&**black_box(&composite)))
        });
    }

    // A child that panics on every event (no quarantine): the cost of a
    // caught panic. The silent hook keeps stderr quiet; no logger is set, so
    // the guard's DEBUG line is skipped after the first WARN check.
    let previous_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let panicking: Arc<dyn MetricsObserver> = Arc::new(
        CompositeObserver::builder()
            .with(FnObserver::new().on_request(|_, _| panic!("bench")))
            .with(NoopObserver)
            .with(NoopObserver)
            .with(NoopObserver)
            .build(),
    );
    group.bench_function("composite of 4, one panicking", |b| {
        b.iter(|| fire(&**black_box(&panicking)))
    });
    std::panic::set_hook(previous_hook);

    group.finish();
}

fn stats(c: &mut Criterion) {
    let mut group = c.benchmark_group("stats");

    let stats: Arc<dyn MetricsObserver> = Arc::new(StatsObserver::new());
    group.bench_function("StatsObserver on_request, 1 thread", |b| {
        b.iter(|| fire(&**black_box(&stats)))
    });

    // The measured thread and a second one both record requests for the same
    // op, so they contend on the same counters. Time per event on the
    // measured thread.
    group.bench_function("StatsObserver on_request, 2 threads contending", |b| {
        b.iter_custom(|iters| {
            let stop = Arc::new(AtomicBool::new(false));
            let rival = {
                let (stats, stop) = (stats.clone(), stop.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        for _ in 0..64 {
                            fire(&*stats);
                        }
                    }
                })
            };
            let start = Instant::now();
            for _ in 0..iters {
                fire(&**black_box(&stats));
            }
            let elapsed = start.elapsed();
            stop.store(true, Ordering::Relaxed);
            rival.join().expect("rival thread");
            elapsed
        })
    });

    group.finish();
}

criterion_group!(benches, dispatch, stats);
criterion_main!(benches);
