//! Numbers the wire allows and libhaystack's decoders refuse: non-finite
//! values, units outside the unit database; and the `s` symbol for seconds.
#![allow(clippy::unwrap_used)]

use hs_core::codec::{Format, decode_grid, encode_grid};
use hs_core::ops::{HaystackOps, WatchSubRequest};
use hs_core::store::MemoryStore;
use hs_core::value::{Dict, Grid, Number, Value, dict, get_unit};

fn cell<'g>(grid: &'g Grid, row: usize, name: &str) -> &'g Value {
    grid.rows[row].get(name).unwrap()
}

fn number(value: &Value) -> Number {
    match value {
        Value::Number(number) => *number,
        other => panic!("not a number: {other:?}"),
    }
}

const NON_FINITE_JSON: &str = r#"{"_kind":"grid","meta":{"limit":{"_kind":"number","val":"INF"}},"cols":[{"name":"v","meta":{"max":{"_kind":"number","val":"-INF","unit":"°F"}}},{"name":"l"}],"rows":[{"v":{"_kind":"number","val":"NaN"}},{"v":{"_kind":"number","val":"INF","unit":"°F"}},{"v":{"_kind":"number","val":"-INF"},"l":[{"_kind":"number","val":"NaN"},{"a":{"_kind":"number","val":"INF"}}]}]}"#;

#[test]
fn json_decodes_non_finite_numbers() {
    let grid = decode_grid(NON_FINITE_JSON.as_bytes(), Format::Json).unwrap();
    assert!(number(cell(&grid, 0, "v")).value.is_nan());
    let inf = number(cell(&grid, 1, "v"));
    assert_eq!(inf.value, f64::INFINITY);
    assert_eq!(inf.unit, get_unit("°F"));
    assert_eq!(number(cell(&grid, 2, "v")).value, f64::NEG_INFINITY);
    let Value::List(list) = cell(&grid, 2, "l") else {
        panic!("l is a list")
    };
    assert!(number(&list[0]).value.is_nan());
    let Value::Dict(inner) = &list[1] else {
        panic!("a dict")
    };
    assert_eq!(number(inner.get("a").unwrap()).value, f64::INFINITY);
    let meta = grid.meta.as_ref().unwrap();
    assert_eq!(number(meta.get("limit").unwrap()).value, f64::INFINITY);
    let column_meta = grid.columns[0].meta.as_ref().unwrap();
    assert_eq!(
        number(column_meta.get("max").unwrap()).value,
        f64::NEG_INFINITY
    );
}

#[test]
fn non_finite_numbers_round_trip_in_json_and_zinc() {
    let grid = decode_grid(NON_FINITE_JSON.as_bytes(), Format::Json).unwrap();
    let json = encode_grid(&grid, Format::Json).unwrap();
    assert!(json.contains(r#"{"_kind":"number","val":"NaN"}"#), "{json}");
    assert!(
        json.contains(r#"{"_kind":"number","val":"INF","unit":"°F"}"#),
        "{json}"
    );
    assert!(
        json.contains(r#"{"_kind":"number","val":"-INF"}"#),
        "{json}"
    );
    // NaN != NaN, so compare what the decoded grid writes.
    let again = decode_grid(json.as_bytes(), Format::Json).unwrap();
    assert_eq!(encode_grid(&again, Format::Json).unwrap(), json);

    let zinc = "ver:\"3.0\"\nv\nNaN\nINF\n-INF";
    let grid = decode_grid(zinc.as_bytes(), Format::Zinc).unwrap();
    assert!(number(cell(&grid, 0, "v")).value.is_nan());
    assert_eq!(number(cell(&grid, 1, "v")).value, f64::INFINITY);
    assert_eq!(number(cell(&grid, 2, "v")).value, f64::NEG_INFINITY);
    assert_eq!(encode_grid(&grid, Format::Zinc).unwrap(), zinc);
    let json = encode_grid(&grid, Format::Json).unwrap();
    let back = decode_grid(json.as_bytes(), Format::Json).unwrap();
    assert_eq!(encode_grid(&back, Format::Zinc).unwrap(), zinc);
}

#[test]
fn bad_number_vals_are_still_refused() {
    for body in [
        r#"{"_kind":"grid","meta":{},"cols":[{"name":"v"}],"rows":[{"v":{"_kind":"number","val":"nan"}}]}"#,
        r#"{"_kind":"grid","meta":{},"cols":[{"name":"v"}],"rows":[{"v":{"_kind":"number"}}]}"#,
    ] {
        let err = decode_grid(body.as_bytes(), Format::Json).unwrap_err();
        assert_eq!(err.as_str(), "invalid_grid", "{body}");
    }
}

#[test]
fn unknown_units_are_kept_and_written_back() {
    let body = r#"{"_kind":"grid","meta":{},"cols":[{"name":"v"}],"rows":[{"v":{"_kind":"number","val":3.0,"unit":"widget"}}]}"#;
    let grid = decode_grid(body.as_bytes(), Format::Json).unwrap();
    let value = number(cell(&grid, 0, "v"));
    assert_eq!(value.value, 3.0);
    assert_eq!(value.unit.map(|unit| unit.symbol()), Some("widget"));
    assert_eq!(encode_grid(&grid, Format::Json).unwrap(), body);
    assert_eq!(
        encode_grid(&grid, Format::Zinc).unwrap(),
        "ver:\"3.0\"\nv\n3widget"
    );
}

#[test]
fn units_zinc_cannot_write_are_dropped_not_fatal() {
    let body = r#"{"_kind":"grid","meta":{},"cols":[{"name":"v"},{"name":"t"}],"rows":[{"v":{"_kind":"number","val":2.5,"unit":"kg m"},"t":{"_kind":"number","val":1.0,"unit":"°F"}}]}"#;
    let grid = decode_grid(body.as_bytes(), Format::Json).unwrap();
    assert_eq!(number(cell(&grid, 0, "v")), Number::make(2.5));
    assert_eq!(number(cell(&grid, 0, "t")).unit, get_unit("°F"));
}

#[test]
fn seconds_are_written_s_and_read_as_s_or_sec() {
    let seconds = get_unit("sec").unwrap();
    let grid = Grid::make_from_dicts(vec![dict! {
        "d" => Number::make_with_unit(30.0, seconds)
    }]);
    let json = encode_grid(&grid, Format::Json).unwrap();
    assert!(
        json.contains(r#"{"_kind":"number","val":30.0,"unit":"s"}"#),
        "{json}"
    );
    let zinc = encode_grid(&grid, Format::Zinc).unwrap();
    assert!(zinc.ends_with("\n30s"), "{zinc}");
    for body in [json.as_bytes(), zinc.as_bytes()] {
        let format = if body[0] == b'{' {
            Format::Json
        } else {
            Format::Zinc
        };
        let back = decode_grid(body, format).unwrap();
        assert_eq!(number(cell(&back, 0, "d")).unit, Some(seconds));
    }
    let sec = "ver:\"3.0\"\nd\n30sec";
    let back = decode_grid(sec.as_bytes(), Format::Zinc).unwrap();
    assert_eq!(number(cell(&back, 0, "d")).unit, Some(seconds));
}

#[tokio::test]
async fn watch_lease_is_written_in_s() {
    let store = MemoryStore::new();
    let request = WatchSubRequest {
        watch_id: None,
        watch_dis: Some("test".to_owned()),
        lease: Some(std::time::Duration::from_secs(60)),
        ids: Vec::new(),
        owner: None,
    };
    let grid = store.watch_sub(request).await.unwrap();
    let json = encode_grid(&grid, Format::Json).unwrap();
    assert!(
        json.contains(r#""lease":{"_kind":"number","val":60.0,"unit":"s"}"#),
        "{json}"
    );
    assert!(
        encode_grid(&grid, Format::Zinc)
            .unwrap()
            .contains(" lease:60s"),
    );
}
