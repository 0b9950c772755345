//! Differential test of filter reads: random entity sets and random filters
//! give exactly the rows (same order, same `limit` cut) with the indexes and
//! compiled evaluation as with libhaystack's evaluation of every entity,
//! before and after random writes; half the stores with value keys cut to
//! 3 bits, so that most keys collide.
//!
//! 10,000 filter checks by default; `HS_FILTER_CASES=N` runs N. A failure
//! names the seed of its case: `HS_FILTER_SEED=S` replays that case alone.
#![allow(clippy::unwrap_used)]

use libhaystack::defs::namespace::DEFAULT_NS;
use libhaystack::filter::Filter;
use libhaystack::filter::eval::EvalContext;
use libhaystack::units::get_unit_or_default;
use libhaystack::val::{Date, DateTime, Dict, List, Number, Ref, Symbol, Time, Uri, Value};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::index::TagIndex;
use super::query::RefResolver;
use super::{MemoryStore, eval};
use crate::ops::{HaystackOps, PointWriteRequest, ReadRequest};

/// Filters checked per generated store (and again after each write round).
const FILTERS_PER_STORE: usize = 10;
const WRITE_ROUNDS: usize = 2;

const MARKERS: &[&str] = &["site", "equip", "point", "his", "temp", "writable"];
const REF_TAGS: &[&str] = &["siteRef", "equipRef", "spaceRef"];
const VALUE_TAGS: &[&str] = &["curVal", "dis", "kind", "v"];
const UNITS: &[&str] = &["°F", "°C", "kW", "%"];

/// Strs sharing their first 8 bytes (the ordered index's key) and not.
const STRS: &[&str] = &[
    "x",
    "y",
    "70",
    "AHU-1",
    "",
    "temperature",
    "temperature-1",
    "temperaturf",
    "é",
];
const TIMES: &[&str] = &["12:00:00", "12:01:00", "12:00:00.5", "00:00:00"];
/// The first and the last are the same UTC second.
const DATETIMES: &[&str] = &[
    "2024-01-01T00:00:00Z",
    "2023-12-31T23:59:59Z",
    "2024-01-01T00:00:00.5Z",
];

fn pick<T: Copy>(rng: &mut StdRng, items: &[T]) -> T {
    items[rng.random_range(0..items.len())]
}

fn id(n: usize) -> String {
    format!("e{n}")
}

fn number(rng: &mut StdRng) -> Number {
    let value = pick(rng, &[0.0, -0.0, 1.0, 2.0, 70.0, 70.5, 100.0, f64::NAN]);
    match rng.random_range(0..3) {
        0 => Number::make(value),
        _ => Number::make_with_unit(value, get_unit_or_default(pick(rng, UNITS))),
    }
}

fn scalar(rng: &mut StdRng, entities: usize) -> Value {
    match rng.random_range(0..12) {
        0..=2 => Value::from(number(rng)),
        3 => Value::make_str(pick(rng, STRS)),
        4 => Value::make_bool(rng.random()),
        5 => Value::from(Ref::from(id(rng.random_range(0..entities + 1)).as_str())),
        6 => Value::from(Symbol::from(pick(rng, &["point", "site", "x"]))),
        7 => Value::from(Date::from_ymd(2024, 1, rng.random_range(1..3)).unwrap()),
        8 => Value::from(pick(rng, TIMES).parse::<Time>().unwrap()),
        9 => Value::from(DateTime::from(
            pick(rng, DATETIMES)
                .parse::<chrono::DateTime<chrono::Utc>>()
                .unwrap(),
        )),
        10 => Value::from(Uri::from("http://x")),
        _ => Value::make_marker(),
    }
}

fn value(rng: &mut StdRng, entities: usize) -> Value {
    match rng.random_range(0..10) {
        0 => Value::make_list(
            (0..rng.random_range(0..3))
                .map(|_| scalar(rng, entities))
                .collect::<List>(),
        ),
        1 => {
            let mut dict = Dict::new();
            dict.insert("v".into(), scalar(rng, entities));
            dict.insert("site".into(), Value::make_marker());
            Value::make_dict(dict)
        }
        2 => Value::Null,
        _ => scalar(rng, entities),
    }
}

fn entity(rng: &mut StdRng, n: usize, entities: usize) -> Dict {
    let mut dict = Dict::new();
    dict.insert("id".into(), Value::from(Ref::from(id(n).as_str())));
    for marker in MARKERS {
        if rng.random_bool(0.5) {
            dict.insert((*marker).into(), Value::make_marker());
        }
    }
    for tag in REF_TAGS {
        if rng.random_bool(0.5) {
            let target = id(rng.random_range(0..entities + 1));
            dict.insert((*tag).into(), Value::from(Ref::from(target.as_str())));
        }
    }
    for tag in VALUE_TAGS {
        if rng.random_bool(0.6) {
            dict.insert((*tag).into(), value(rng, entities));
        }
    }
    dict
}

fn path(rng: &mut StdRng) -> String {
    let tags: Vec<&str> = MARKERS
        .iter()
        .chain(REF_TAGS)
        .chain(VALUE_TAGS)
        .chain(&["id", "missing"])
        .copied()
        .collect();
    let mut path = pick(rng, &tags).to_owned();
    for _ in 0..rng.random_range(0..3usize).saturating_sub(1) {
        path.push_str("->");
        path.push_str(pick(rng, &tags));
    }
    path
}

fn literal(rng: &mut StdRng, entities: usize) -> String {
    match rng.random_range(0..10) {
        0 => pick(rng, &["0", "-0", "1", "70", "70.5", "100", "2"]).to_owned(),
        1 => format!(
            "{}{}",
            pick(rng, &["0", "1", "70", "70.5"]),
            pick(rng, UNITS)
        ),
        2 => format!("\"{}\"", pick(rng, STRS)),
        3 => pick(rng, &["true", "false"]).to_owned(),
        4..=5 => format!("@{}", id(rng.random_range(0..entities + 1))),
        6 => format!("2024-01-0{}", rng.random_range(1..3)),
        7 => match rng.random_range(0..2) {
            0 => pick(rng, TIMES).to_owned(),
            _ => pick(rng, DATETIMES).to_owned(),
        },
        8 => "`http://x`".to_owned(),
        _ => format!("^{}", pick(rng, &["point", "site", "x"])),
    }
}

fn term(rng: &mut StdRng, entities: usize, depth: usize) -> String {
    match rng.random_range(0..if depth > 0 { 9 } else { 8 }) {
        0..=1 => path(rng),
        2 => format!("not {}", path(rng)),
        3..=6 => format!(
            "{} {} {}",
            path(rng),
            pick(rng, &["==", "==", "==", "!=", "<", "<=", ">", ">="]),
            literal(rng, entities)
        ),
        7 => format!("^{}", pick(rng, &["point", "site", "equip"])),
        _ => format!("({})", filter(rng, entities, depth - 1)),
    }
}

fn filter(rng: &mut StdRng, entities: usize, depth: usize) -> String {
    let ors: Vec<String> = (0..rng.random_range(1..3))
        .map(|_| {
            let ands: Vec<String> = (0..rng.random_range(1..3))
                .map(|_| term(rng, entities, depth))
                .collect();
            ands.join(" and ")
        })
        .collect();
    ors.join(" or ")
}

/// libhaystack's evaluation of every entity (with the store's comparisons).
fn reference(store: &MemoryStore, filter: &Filter, limit: Option<usize>) -> Vec<usize> {
    let state = store.state.read();
    let resolver = RefResolver {
        lookup: |id: &str| state.entity(id),
    };
    (0..state.entities.len())
        .filter(|slot| {
            eval::matches(
                filter,
                &EvalContext::make(&state.entities[*slot], &DEFAULT_NS, &resolver),
            )
        })
        .take(limit.unwrap_or(usize::MAX))
        .collect()
}

/// Check `FILTERS_PER_STORE` random filters; returns how many matched some entity.
fn check(store: &MemoryStore, rng: &mut StdRng, entities: usize, seed: u64) -> usize {
    let mut matched = 0;
    for _ in 0..FILTERS_PER_STORE {
        let text = filter(rng, entities, 2);
        let filter = Filter::try_from(text.as_str())
            .unwrap_or_else(|err| panic!("seed {seed}: `{text}` does not parse: {err}"));
        let limit = rng.random_bool(0.2).then(|| rng.random_range(0..4));
        let expected = reference(store, &filter, limit);
        let state = store.state.read();
        assert_eq!(
            state.query(&filter, limit),
            expected,
            "seed {seed}: `{text}` limit {limit:?}"
        );
        assert_eq!(
            state.scan(&filter, limit),
            expected,
            "seed {seed}: `{text}`"
        );
        matched += usize::from(!expected.is_empty());
    }
    matched
}

/// Random writes through every path that changes an entity.
fn write(
    store: &MemoryStore,
    rng: &mut StdRng,
    entities: usize,
    runtime: &tokio::runtime::Runtime,
) {
    for _ in 0..rng.random_range(1..6) {
        let target = id(rng.random_range(0..entities));
        match rng.random_range(0..4) {
            0 => {
                // A new entity, or a whole replacement of one.
                let n = rng.random_range(0..entities + 2);
                store.update_entity(entity(rng, n, entities)).unwrap();
            }
            1 => {
                let tags: Vec<&str> = MARKERS
                    .iter()
                    .chain(REF_TAGS)
                    .chain(VALUE_TAGS)
                    .copied()
                    .collect();
                let tag = pick(rng, &tags);
                let value = if rng.random_bool(0.3) {
                    Value::Null
                } else {
                    value(rng, entities)
                };
                store.set_tag(&target, tag, value).unwrap();
            }
            2 => {
                store
                    .set_tag(&target, "writable", Value::make_marker())
                    .unwrap();
                store.set_tag(&target, "kind", Value::Null).unwrap();
                let request = PointWriteRequest::Write {
                    id: Ref::from(target.as_str()),
                    level: rng.random_range(1..17),
                    val: rng.random_bool(0.8).then(|| Value::from(number(rng))),
                    who: None,
                    duration: None,
                };
                runtime.block_on(store.point_write(request)).unwrap();
            }
            _ => {
                // Drop a tag.
                let tags: Vec<&str> = MARKERS
                    .iter()
                    .chain(REF_TAGS)
                    .chain(VALUE_TAGS)
                    .copied()
                    .collect();
                store
                    .set_tag(&target, pick(rng, &tags), Value::Null)
                    .unwrap();
            }
        }
    }
}

#[test]
fn indexed_reads_match_a_scan() {
    let total: usize = std::env::var("HS_FILTER_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(10_000);
    let seeds: Vec<u64> = match std::env::var("HS_FILTER_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        Some(seed) => vec![seed],
        None => (0..)
            .take(total.div_ceil(FILTERS_PER_STORE * (WRITE_ROUNDS + 1)))
            .collect(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (mut checked, mut matched) = (0, 0);
    for seed in seeds {
        let mut rng = StdRng::seed_from_u64(seed);
        let entities = rng.random_range(1..40);
        let store = MemoryStore::new();
        if seed % 2 == 1 {
            // Half the stores with 3-bit value keys: most keys collide.
            store.state.write().index = TagIndex::with_key_bits(3);
        }
        store
            .update_entities(
                (0..entities)
                    .map(|n| entity(&mut rng, n, entities))
                    .collect(),
            )
            .unwrap();
        matched += check(&store, &mut rng, entities, seed);
        checked += FILTERS_PER_STORE;
        for _ in 0..WRITE_ROUNDS {
            write(&store, &mut rng, entities, &runtime);
            matched += check(&store, &mut rng, entities, seed);
            checked += FILTERS_PER_STORE;
        }
    }
    // The generator is only useful if a fair share of its filters match
    // something (one seed alone, to reproduce a failure, may fall short).
    assert!(
        checked < 1_000 || matched * 4 >= checked,
        "{matched} of {checked} filters matched an entity"
    );
    eprintln!("{checked} filters checked, {matched} matched an entity");
}

#[tokio::test]
async fn an_explained_read_answers_its_rows_and_its_plan() {
    let store = crate::demo::building();
    let text = "equipRef->ahu and point and temp";
    let plain = store
        .read(ReadRequest::filter(text, None).unwrap())
        .await
        .unwrap();
    let request = ReadRequest::Filter {
        filter: crate::ops::ParsedFilter::parse(text).unwrap(),
        limit: None,
        explain: true,
    };
    let explained = store.read(request).await.unwrap();
    assert_eq!(explained.rows, plain.rows);
    assert!(!plain.rows.is_empty());
    let Some(Value::Str(plan)) = explained
        .meta
        .as_ref()
        .and_then(|meta| meta.get(ReadRequest::EXPLAIN))
    else {
        panic!("no plan in {:?}", explained.meta);
    };
    let lines: Vec<&str> = plan.as_str().lines().collect();
    assert_eq!(lines.len(), 4, "{plan:?}");
    assert!(lines[0].starts_with("and: intersection, "), "{plan:?}");
    assert!(
        lines[1].starts_with("  equipRef->ahu: reverse refs, "),
        "{plan:?}"
    );
    assert!(lines[2].starts_with("  point: tag postings, "), "{plan:?}");
    assert!(
        lines[0].ends_with(&format!("{} candidates, exact", plain.rows.len())),
        "{plan:?}"
    );
}
