//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use libhaystack::val::{Dict, Grid, Ref, Value};
use serde_json::json;

/// A grid from its Haystack JSON v4 form, as it travels on the wire.
pub fn grid(value: serde_json::Value) -> Grid {
    serde_json::from_value(value).expect("valid Haystack JSON grid")
}

/// A `{"_kind":"ref"}` JSON value.
pub fn r(id: &str) -> serde_json::Value {
    json!({"_kind": "ref", "val": id})
}

/// The `id` values of a grid's rows (`None` for a row without id).
pub fn ids(grid: &Grid) -> Vec<Option<String>> {
    grid.rows
        .iter()
        .map(|row| match row.get("id") {
            Some(Value::Ref(id)) => Some(id.value().to_owned()),
            _ => None,
        })
        .collect()
}

/// An entity with an id and marker tags.
pub fn entity(id: &str, markers: &[&str]) -> Dict {
    let mut dict = Dict::new();
    dict.insert("id".into(), Value::from(Ref::from(id)));
    for marker in markers {
        dict.insert((*marker).to_owned(), Value::make_marker());
    }
    dict
}

/// `(op, request grid, response grid)` for each request/response pair in a WebSocket transcript.
pub fn transcript(path: &str) -> Vec<(String, Grid, Grid)> {
    let text = std::fs::read_to_string(path).expect("fixture");
    let mut requests = std::collections::HashMap::new();
    let mut pairs = Vec::new();
    for line in text.lines() {
        let event: serde_json::Value = serde_json::from_str(line).expect("json line");
        if event["kind"] != "text" {
            continue;
        }
        let message: serde_json::Value =
            serde_json::from_str(event["text"].as_str().expect("text")).expect("envelope");
        let id = message["id"].to_string();
        if event["dir"] == "c2s" {
            requests.insert(id, message);
        } else if let Some(request) = requests.remove(&id) {
            pairs.push((
                request["op"].as_str().expect("op").to_owned(),
                grid(request["grid"].clone()),
                grid(message["grid"].clone()),
            ));
        }
    }
    pairs
}
