//! Filter comparisons in `MemoryStore::read`: per the Haystack filter spec, a
//! comparison against a missing tag (or a value of another kind) is false.
#![allow(clippy::unwrap_used)]

use hs_core::ops::{HaystackOps, ReadRequest};
use hs_core::store::MemoryStore;
use hs_core::value::{Dict, Number, Ref, Value};

fn store() -> MemoryStore {
    let store = MemoryStore::new();
    let mut entities = Vec::new();
    for (id, cur_val) in [
        ("low", Some(Value::from(Number::make(1.0)))),
        ("high", Some(Value::from(Number::make(5.0)))),
        ("text", Some(Value::make_str("2"))),
        ("missing", None),
    ] {
        let mut entity = Dict::new();
        entity.insert("id".into(), Value::from(Ref::from(id)));
        entity.insert("point".into(), Value::make_marker());
        if let Some(value) = cur_val {
            entity.insert("curVal".into(), value);
        }
        entities.push(entity);
    }
    let mut list = Dict::new();
    list.insert("id".into(), Value::from(Ref::from("list")));
    list.insert("point".into(), Value::make_marker());
    list.insert(
        "curVal".into(),
        Value::make_list(vec![
            Value::from(Number::make(0.5)),
            Value::from(Number::make(9.0)),
        ]),
    );
    entities.push(list);
    store.update_entities(entities).unwrap();
    store
}

async fn ids(store: &MemoryStore, filter: &str) -> Vec<String> {
    let grid = store
        .read(ReadRequest::filter(filter, None).unwrap())
        .await
        .unwrap();
    let mut ids: Vec<String> = grid
        .rows
        .iter()
        .map(|row| match row.get("id") {
            Some(Value::Ref(id)) => id.value().to_owned(),
            other => panic!("no id: {other:?}"),
        })
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn ordering_against_a_missing_tag_or_another_kind_is_false() {
    let store = store();
    // Scanned (no required tag) and planned (point required) filters alike.
    for prefix in ["", "point and "] {
        assert_eq!(
            ids(&store, &format!("{prefix}curVal < 3")).await,
            ["list", "low"]
        );
        assert_eq!(
            ids(&store, &format!("{prefix}curVal <= 1")).await,
            ["list", "low"]
        );
        assert_eq!(
            ids(&store, &format!("{prefix}curVal > 3")).await,
            ["high", "list"]
        );
        assert_eq!(
            ids(&store, &format!("{prefix}curVal >= 5")).await,
            ["high", "list"]
        );
        assert_eq!(
            ids(&store, &format!("{prefix}curVal != 1")).await,
            ["high", "list", "text"]
        );
        assert_eq!(ids(&store, &format!("{prefix}curVal == 1")).await, ["low"]);
        assert_eq!(
            ids(&store, &format!("{prefix}curVal < \"3\"")).await,
            ["text"]
        );
        assert_eq!(
            ids(&store, &format!("{prefix}not curVal")).await,
            ["missing"]
        );
    }
}
