//! Grid codec throughput: JSON v4 and Zinc encode/decode of a realistic
//! 1,000-point grid, the WebSocket envelope around it, and the same JSON and
//! Zinc text through rusty-haystack-core's codecs for comparison.
//!
//! Run: `cargo bench -p hs-core --bench codec`

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hs_core::codec::{Format, decode_grid, encode_grid};
use hs_core::value::{Column, Dict, Grid, Marker, Number, Value, get_unit};
use hs_core::ws::{WsResponse, decode_server_frame, encode_response};

const ROWS: usize = 1_000;

/// A read response as a building-automation server sends it: points with
/// refs, markers, units and current values.
fn point_grid() -> Grid {
    let names = [
        "id", "dis", "point", "his", "kind", "unit", "curVal", "equipRef", "siteRef", "tz",
        "sensor", "temp",
    ];
    let fahrenheit = get_unit("°F").expect("°F is in the unit database");
    let rows = (0..ROWS)
        .map(|i| {
            let equip = i / 10;
            let mut row = Dict::new();
            row.insert(
                "id".into(),
                Value::make_ref_with_dis(&format!("p-{i:05}"), &format!("AHU-{equip} Point {i}")),
            );
            row.insert(
                "dis".into(),
                Value::make_str(&format!("AHU-{equip} Point {i}")),
            );
            row.insert("point".into(), Marker.into());
            row.insert("his".into(), Marker.into());
            row.insert("kind".into(), Value::make_str("Number"));
            row.insert("unit".into(), Value::make_str("°F"));
            row.insert(
                "curVal".into(),
                Number::make_with_unit(55.0 + (i % 97) as f64 * 0.25, fahrenheit).into(),
            );
            row.insert("equipRef".into(), Value::make_ref(&format!("ahu-{equip}")));
            row.insert("siteRef".into(), Value::make_ref("demo-site"));
            row.insert("tz".into(), Value::make_str("New_York"));
            row.insert("sensor".into(), Marker.into());
            row.insert("temp".into(), Marker.into());
            row
        })
        .collect();
    Grid {
        meta: None,
        columns: names
            .iter()
            .map(|name| Column {
                name: (*name).into(),
                meta: None,
            })
            .collect(),
        rows,
        ..Grid::default()
    }
}

fn codecs(c: &mut Criterion) {
    let grid = point_grid();
    let json = encode_grid(&grid, Format::Json).expect("encodes");
    let zinc = encode_grid(&grid, Format::Zinc).expect("encodes");
    let envelope = encode_response(&WsResponse {
        id: Some("42".into()),
        grid: grid.clone().into(),
        ch: None,
    });

    let mut group = c.benchmark_group("grid_1000_rows");
    group.sample_size(20);
    group.measurement_time(std::time::Duration::from_secs(4));

    group.throughput(Throughput::Bytes(json.len() as u64));
    group.bench_function(BenchmarkId::new("hs/encode", "json"), |b| {
        b.iter(|| encode_grid(black_box(&grid), Format::Json))
    });
    group.bench_function(BenchmarkId::new("hs/decode", "json"), |b| {
        b.iter(|| decode_grid(black_box(json.as_bytes()), Format::Json))
    });
    group.bench_function(BenchmarkId::new("hs/ws_response_encode", "json"), |b| {
        let response = WsResponse {
            id: Some("42".into()),
            grid: grid.clone().into(),
            ch: None,
        };
        b.iter(|| encode_response(black_box(&response)))
    });
    group.bench_function(BenchmarkId::new("hs/ws_response_decode", "json"), |b| {
        b.iter(|| decode_server_frame(black_box(&envelope)))
    });

    let rusty_json = haystack_core::codecs::codec_for("application/json").expect("json4");
    let rusty_grid = rusty_json
        .decode_grid(&json)
        .expect("rusty decodes hs JSON");
    assert_eq!(rusty_grid.len(), ROWS);
    group.bench_function(BenchmarkId::new("rusty/encode", "json"), |b| {
        b.iter(|| rusty_json.encode_grid(black_box(&rusty_grid)))
    });
    group.bench_function(BenchmarkId::new("rusty/decode", "json"), |b| {
        b.iter(|| rusty_json.decode_grid(black_box(&json)))
    });

    group.throughput(Throughput::Bytes(zinc.len() as u64));
    group.bench_function(BenchmarkId::new("hs/encode", "zinc"), |b| {
        b.iter(|| encode_grid(black_box(&grid), Format::Zinc))
    });
    group.bench_function(BenchmarkId::new("hs/decode", "zinc"), |b| {
        b.iter(|| decode_grid(black_box(zinc.as_bytes()), Format::Zinc))
    });
    let rusty_zinc = haystack_core::codecs::codec_for("text/zinc").expect("zinc");
    let rusty_grid = rusty_zinc
        .decode_grid(&zinc)
        .expect("rusty decodes hs Zinc");
    assert_eq!(rusty_grid.len(), ROWS);
    group.bench_function(BenchmarkId::new("rusty/encode", "zinc"), |b| {
        b.iter(|| rusty_zinc.encode_grid(black_box(&rusty_grid)))
    });
    group.bench_function(BenchmarkId::new("rusty/decode", "zinc"), |b| {
        b.iter(|| rusty_zinc.decode_grid(black_box(&zinc)))
    });
    group.finish();
}

criterion_group!(benches, codecs);
criterion_main!(benches);
