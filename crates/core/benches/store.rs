//! MemoryStore benchmarks: filter read over 10,000 entities, a week of
#![allow(clippy::unwrap_used)]
//! 15-minute history, and building the demo.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use hs_core::ops::{HaystackOps, HisRange, HisReadRequest, ReadRequest, make_grid};
use hs_core::store::MemoryStore;
use libhaystack::val::{DateTime, Dict, Ref, Value};

/// 10,000 entities: 100 equips of 99 points; a third of the points are `temp`.
fn ten_thousand() -> MemoryStore {
    let store = MemoryStore::new();
    let mut entities = Vec::with_capacity(10_000);
    for equip in 0..100 {
        let mut dict = Dict::new();
        dict.insert("id".into(), Value::from(Ref::from(format!("e{equip}"))));
        dict.insert("equip".into(), Value::make_marker());
        dict.insert("ahu".into(), Value::make_marker());
        entities.push(dict);
        for point in 0..99 {
            let mut dict = Dict::new();
            dict.insert(
                "id".into(),
                Value::from(Ref::from(format!("e{equip}-p{point}"))),
            );
            dict.insert(
                "dis".into(),
                Value::make_str(&format!("Equip {equip} point {point}")),
            );
            dict.insert("point".into(), Value::make_marker());
            dict.insert("his".into(), Value::make_marker());
            dict.insert("sensor".into(), Value::make_marker());
            dict.insert("air".into(), Value::make_marker());
            dict.insert(
                ["temp", "flow", "pressure"][point % 3].into(),
                Value::make_marker(),
            );
            dict.insert("kind".into(), Value::make_str("Number"));
            dict.insert(
                "equipRef".into(),
                Value::from(Ref::from(format!("e{equip}"))),
            );
            entities.push(dict);
        }
    }
    store.update_entities(entities).unwrap();
    store
}

fn read(c: &mut Criterion) {
    let store = ten_thousand();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("read_10k");
    for filter in [
        "point and temp",
        "point and temp and equipRef->ahu",
        "kind == \"Number\" and not flow",
    ] {
        let request = ReadRequest::filter(filter, None).unwrap();
        let rows = runtime
            .block_on(store.read(request.clone()))
            .unwrap()
            .rows
            .len();
        assert!(rows > 0);
        group.bench_function(filter, |b| {
            b.iter(|| {
                runtime
                    .block_on(store.read(black_box(request.clone())))
                    .unwrap()
            })
        });
    }
    // The hot path of the transport benchmarks: one entity by id.
    let by_id = ReadRequest::Ids(vec![Ref::from("e50-p50")]);
    group.bench_function("one id", |b| {
        b.iter(|| {
            runtime
                .block_on(store.read(black_box(by_id.clone())))
                .unwrap()
        })
    });
    // Where a filter read's time goes: copying the matched rows, and
    // deriving the grid's columns from them.
    let rows = runtime
        .block_on(store.read(ReadRequest::filter("point and temp", None).unwrap()))
        .unwrap()
        .rows;
    group.bench_function("clone 3300 rows", |b| b.iter(|| black_box(&rows).clone()));
    group.bench_function("make_grid 3300 rows", |b| {
        b.iter_batched(
            || rows.clone(),
            |rows| make_grid(Dict::new(), rows),
            criterion::BatchSize::LargeInput,
        )
    });
    group.finish();
}

fn his_read(c: &mut Criterion) {
    let store = ten_thousand();
    let end: chrono::DateTime<chrono::Utc> = "2024-06-10T00:00:00Z".parse().unwrap();
    let samples: Vec<(DateTime, Value)> = (0..672i64)
        .map(|n| {
            let ts = end - chrono::TimeDelta::minutes(15 * (672 - n));
            (
                DateTime::from(ts),
                Value::make_number(70.0 + (n % 10) as f64),
            )
        })
        .collect();
    store.set_history("e0-p0", samples).unwrap();
    let request = HisReadRequest {
        ids: vec![Ref::from("e0-p0")],
        range: HisRange::parse("2024-06-01,2024-06-10").unwrap(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let rows = runtime
        .block_on(store.his_read(request.clone()))
        .unwrap()
        .rows
        .len();
    assert_eq!(rows, 672);
    c.bench_function("hisRead_week_15min", |b| {
        b.iter(|| {
            runtime
                .block_on(store.his_read(black_box(request.clone())))
                .unwrap()
        })
    });
}

fn demo_build(c: &mut Criterion) {
    let end = "2024-06-10T00:00:00Z".parse().unwrap();
    let mut group = c.benchmark_group("demo");
    group.sample_size(10);
    group.bench_function("building", |b| b.iter(|| hs_core::demo::building_at(end)));
    group.finish();
}

criterion_group!(benches, read, his_read, demo_build);
criterion_main!(benches);
