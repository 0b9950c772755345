//! The GET form of `read`, `nav` and `hisRead`: query parameters become the
//! cells of a one-row request grid (docs/protocol.md 2.1).
//!
//! Each value is decoded as one whole Zinc scalar (`@demo-site` is a Ref,
//! `1` a Number, `"point and his"` a Str, `2024-01-01` a Date). A value
//! that is not exactly one Zinc value is kept as the raw string, as the
//! reference does, so `filter=point and his` still means that filter.
//! Unlike the reference, the value is never cut at the first Zinc token:
//! `navId=demo-site` is the Str `demo-site`, not `demo`. A repeated name
//! keeps its first value.

use libhaystack::encoding::zinc::decode::from_str as zinc_value;
use libhaystack::val::{Column, Dict, Grid, Value};

/// Builds the request grid of a GET request from its query string (already
/// split and percent-decoded).
pub(crate) fn grid_from_params(params: Vec<(String, String)>) -> Grid {
    if params.is_empty() {
        return Grid::make_empty();
    }
    let mut columns = Vec::with_capacity(params.len());
    let mut row = Dict::new();
    for (name, raw) in params {
        if name.is_empty() || row.contains_key(&name) {
            continue;
        }
        columns.push(Column {
            name: name.clone(),
            meta: None,
        });
        row.insert(name, scalar(&raw));
    }
    let mut grid = Grid::make_from_dicts(vec![row]);
    grid.columns = columns;
    grid
}

/// Decodes `raw` as exactly one Zinc value, or keeps it as a Str.
pub(crate) fn scalar(raw: &str) -> Value {
    // Parsing `[raw]` as a list makes the parser consume the whole input:
    // anything after the first value is a syntax error, not ignored.
    if let Ok(Value::List(mut items)) = zinc_value(&format!("[{raw}]")) {
        if items.len() == 1 {
            if let Some(value) = items.pop() {
                return value;
            }
        }
    }
    Value::make_str(raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use libhaystack::val::{Ref, Str};

    #[test]
    fn decodes_whole_zinc_scalars() {
        assert_eq!(scalar("@demo-site"), Value::make_ref("demo-site"));
        assert_eq!(
            scalar("\"point and his\""),
            Value::make_str("point and his")
        );
        assert_eq!(scalar("1"), Value::make_number(1.0));
        assert!(matches!(scalar("2024-01-01"), Value::Date(_)));
        assert!(matches!(scalar("N"), Value::Null));
    }

    #[test]
    fn keeps_non_zinc_values_whole() {
        assert_eq!(scalar("site"), Value::make_str("site"));
        assert_eq!(scalar("point and his"), Value::make_str("point and his"));
        assert_eq!(scalar("demo-site"), Value::make_str("demo-site"));
        assert_eq!(scalar("1,2"), Value::make_str("1,2"));
        assert_eq!(scalar(""), Value::make_str(""));
    }

    #[test]
    fn one_row_in_parameter_order() {
        let grid = grid_from_params(vec![
            ("id".into(), "@a".into()),
            ("range".into(), "\"today\"".into()),
            ("id".into(), "@b".into()),
        ]);
        let names: Vec<_> = grid.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["id", "range"]);
        assert_eq!(grid.rows.len(), 1);
        assert_eq!(Ref::try_from(&grid.rows[0]["id"]).unwrap().value(), "a");
        assert_eq!(
            Str::try_from(&grid.rows[0]["range"]).unwrap().value(),
            "today"
        );
    }
}
