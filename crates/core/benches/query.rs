//! Filter reads on generated buildings ([`hs_core::demo::sized`]) of 1k, 10k
//! and 100k points: hs's indexed read, the same filter testing every entity
//! (`MemoryStore::read_scan`), and rusty-haystack-core 0.8.1's
//! `EntityGraph::read` on the same entities, in the same run; and a write
//! of an indexed tag (`curVal`). Figures in docs/performance.md.
//!
//! Each iteration reads a different filter text where the query has a
//! parameter (a different id, equip or site), and rusty-haystack-core is
//! called with a non-zero limit, which it never caches: no query cache can
//! help either side. Before timing, every query's answers are compared: the
//! indexed read must give exactly the scan's rows, and where the peer's rows
//! differ from hs's the run says so (and the peer's time is not comparable).
//!
//! `cargo bench -p hs-core --features test-util --bench query -- --warm-up-time 1 --measurement-time 3`
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use haystack_core::graph::EntityGraph;
use hs_core::codec::{Format, encode_grid};
use hs_core::demo::sized;
use hs_core::ops::{HaystackOps, ReadRequest, make_grid};
use hs_core::store::MemoryStore;
use libhaystack::filter::Filter;
use libhaystack::units::get_unit_or_default;
use libhaystack::val::{Dict, Number, Value};

const SIZES: [usize; 3] = [1_000, 10_000, 100_000];
/// Distinct filter texts cycled through per query.
const VARIANTS: usize = 512;

/// A query: its name and the filter text of variant `n` on a building of
/// `points` points (`dis` lists the points' names).
struct Query {
    name: &'static str,
    text: fn(n: usize, points: usize, dis: &[String]) -> String,
}

fn spread(n: usize, count: usize) -> usize {
    // A stride coprime with the counts used, so variants spread over the building.
    n.wrapping_mul(7_919) % count.max(1) + 1
}

const QUERIES: &[Query] = &[
    Query {
        name: "id==@p{n}",
        text: |n, points, _| format!("id==@p{}", spread(n, points)),
    },
    Query {
        name: "equipRef==@e{n} and point",
        text: |n, points, _| {
            let equips = points.div_ceil(sized::POINTS_PER_EQUIP);
            format!("equipRef==@e{} and point", spread(n, equips))
        },
    },
    Query {
        name: "point and temp and siteRef==@s{n}",
        text: |n, points, _| {
            let sites = points
                .div_ceil(sized::POINTS_PER_EQUIP)
                .div_ceil(sized::EQUIPS_PER_SITE);
            format!("point and temp and siteRef==@s{}", spread(n, sites))
        },
    },
    Query {
        name: "equipRef->siteRef==@s{n} and point",
        text: |n, points, _| {
            let sites = points
                .div_ceil(sized::POINTS_PER_EQUIP)
                .div_ceil(sized::EQUIPS_PER_SITE);
            format!("equipRef->siteRef==@s{} and point", spread(n, sites))
        },
    },
    Query {
        name: "curVal > 70 and point",
        text: |_, _, _| "curVal > 70 and point".to_owned(),
    },
    Query {
        name: "curVal > 70°F and point",
        text: |_, _, _| "curVal > 70°F and point".to_owned(),
    },
    Query {
        name: "dis==\"{point n}\"",
        text: |n, _, dis| format!("dis==\"{}\"", dis[spread(n, dis.len()) - 1]),
    },
    Query {
        name: "point and not his",
        text: |_, _, _| "point and not his".to_owned(),
    },
];

fn ids(rows: impl IntoIterator<Item = String>) -> BTreeSet<String> {
    rows.into_iter().collect()
}

fn hs_id(row: &Dict) -> String {
    match row.get("id") {
        Some(Value::Ref(id)) => id.value().to_owned(),
        other => panic!("row without id: {other:?}"),
    }
}

/// This process's resident set (Linux), 0 elsewhere.
fn resident_bytes() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|statm| statm.split_whitespace().nth(1)?.parse::<usize>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// Memory and load time at the largest size, measured first in a fresh
/// process: the store holds its own copy of the dicts, as large as the
/// generated ones; the rest of its growth is the id map and the indexes.
fn memory(_: &mut Criterion) {
    let points = SIZES[SIZES.len() - 1];
    let before = resident_bytes();
    let entities = sized::entities(points);
    let generated = resident_bytes();
    let store = MemoryStore::new();
    let start = Instant::now();
    store.update_entities(entities.clone()).unwrap();
    let load = start.elapsed();
    let loaded = resident_bytes();
    let dicts = generated.saturating_sub(before);
    let overhead = loaded.saturating_sub(generated).saturating_sub(dicts);
    eprintln!(
        "{points} points ({} entities): dicts {} MiB; loading them into a store took {load:.2?} \
         and {} MiB more than the dicts (indexes and id map: {:.0} % of the dicts)",
        store.len(),
        dicts >> 20,
        overhead >> 20,
        100.0 * overhead as f64 / dicts.max(1) as f64
    );
}

fn queries(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    for points in SIZES {
        let entities = sized::entities(points);
        let dis: Vec<String> = entities
            .iter()
            .filter(|entity| entity.contains_key("point"))
            .filter_map(|entity| match entity.get("dis") {
                Some(Value::Str(dis)) => Some(dis.value().to_owned()),
                _ => None,
            })
            .collect();
        let store = MemoryStore::new();
        store.update_entities(entities.clone()).unwrap();
        let json = encode_grid(&make_grid(Dict::new(), entities), Format::Json).unwrap();
        let codec = haystack_core::codecs::codec_for("application/json").unwrap();
        let graph = EntityGraph::from_grid(&codec.decode_grid(&json).unwrap(), None).unwrap();
        drop(json);
        assert_eq!(graph.len(), store.len());

        let mut group = c.benchmark_group(format!("query_{}k", points / 1_000));
        if points >= 100_000 {
            group.sample_size(10);
        }
        for query in QUERIES {
            let texts: Vec<String> = (0..VARIANTS)
                .map(|n| (query.text)(n, points, &dis))
                .collect();
            // Correctness first: indexed == scan exactly; the peer's rows compared as sets.
            let mut peer_wrong = 0;
            let mut rows = 0;
            for text in texts.iter().take(16) {
                let indexed: Vec<String> = runtime
                    .block_on(store.read_reply(ReadRequest::filter(text, None).unwrap()))
                    .unwrap()
                    .into_grid()
                    .rows
                    .iter()
                    .map(hs_id)
                    .collect();
                let scanned: Vec<String> = store
                    .read_scan(&Filter::try_from(text.as_str()).unwrap(), None)
                    .iter()
                    .map(|row| hs_id(row))
                    .collect();
                assert_eq!(indexed, scanned, "{text}");
                let peer = graph.read_all(text, usize::MAX).unwrap();
                let peer = ids(peer
                    .iter()
                    .filter_map(|row| row.id())
                    .map(|id| id.val.clone()));
                if peer != ids(indexed.iter().cloned()) {
                    peer_wrong += 1;
                    eprintln!(
                        "{points} points, `{text}`: hs {} rows, rusty-haystack-core {} rows",
                        indexed.len(),
                        peer.len()
                    );
                }
                rows += indexed.len();
            }
            eprintln!(
                "{points} points, {}: {} rows on average; rusty-haystack-core wrong on {peer_wrong} of 16",
                query.name,
                rows / 16
            );

            let mut n = 0;
            group.bench_function(BenchmarkId::new("hs indexed", query.name), |b| {
                b.iter(|| {
                    n += 1;
                    let request = ReadRequest::filter(&texts[n % VARIANTS], None).unwrap();
                    runtime
                        .block_on(store.read_reply(black_box(request)))
                        .unwrap()
                })
            });
            group.bench_function(BenchmarkId::new("hs scan", query.name), |b| {
                b.iter(|| {
                    n += 1;
                    let filter = Filter::try_from(texts[n % VARIANTS].as_str()).unwrap();
                    store.read_scan(black_box(&filter), None)
                })
            });
            group.bench_function(BenchmarkId::new("rusty-haystack-core", query.name), |b| {
                b.iter(|| {
                    n += 1;
                    graph
                        .read(black_box(&texts[n % VARIANTS]), usize::MAX)
                        .unwrap()
                })
            });
        }
        // A write that changes an indexed tag: a point's curVal, a different
        // point and value each time.
        let mut n = 0;
        group.bench_function("hs write curVal", |b| {
            b.iter(|| {
                n += 1;
                let value = Value::from(Number::make_with_unit(
                    (n % 1_000) as f64 / 10.0,
                    get_unit_or_default("°F"),
                ));
                store
                    .set_tag(&format!("p{}", spread(n, points)), "curVal", value)
                    .unwrap()
            })
        });
        group.finish();
    }
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = memory, queries
}
criterion_main!(benches);
