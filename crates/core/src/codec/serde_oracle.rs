//! The serde encoder of JSON v4 grids: an independent writer that the
//! hand-written one ([`json_write`](super::json_write)) is tested against.

use libhaystack::val::{Column, Dict, Grid, Number, Value};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

use super::json::{META_ORDER, row_tags};
use super::number;

/// Serializes a grid as haystack-py's JSON v4: keys `_kind, meta, cols,
/// rows`; no `ver`; column `meta` only when present; row tags in column
/// order, null cells left out.
pub(super) struct JsonGrid<'a>(pub(super) &'a Grid);

impl Serialize for JsonGrid<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let grid = self.0;
        let mut map = serializer.serialize_map(Some(4))?;
        map.serialize_entry("_kind", "grid")?;
        map.serialize_entry("meta", &JsonMeta(grid.meta.as_ref()))?;
        map.serialize_entry("cols", &JsonColumns(&grid.columns))?;
        map.serialize_entry("rows", &JsonRows(grid))?;
        map.end()
    }
}

struct JsonMeta<'a>(Option<&'a Dict>);

impl Serialize for JsonMeta<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        if let Some(meta) = self.0 {
            for name in META_ORDER {
                if let Some(value) = meta.get(name).filter(|v| !v.is_null()) {
                    map.serialize_entry(name, &JsonValue(value))?;
                }
            }
            for (name, value) in meta.iter() {
                if !value.is_null() && !META_ORDER.contains(&name.as_str()) {
                    map.serialize_entry(name, &JsonValue(value))?;
                }
            }
        }
        map.end()
    }
}

struct JsonColumns<'a>(&'a [Column]);

impl Serialize for JsonColumns<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for column in self.0 {
            seq.serialize_element(&JsonColumn(column))?;
        }
        seq.end()
    }
}

struct JsonColumn<'a>(&'a Column);

impl Serialize for JsonColumn<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let meta = self.0.meta.as_ref().filter(|meta| !meta.is_empty());
        let mut map = serializer.serialize_map(Some(1 + usize::from(meta.is_some())))?;
        map.serialize_entry("name", &self.0.name)?;
        if let Some(meta) = meta {
            map.serialize_entry("meta", &JsonDict(meta))?;
        }
        map.end()
    }
}

struct JsonRows<'a>(&'a Grid);

impl Serialize for JsonRows<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.rows.len()))?;
        for row in &self.0.rows {
            seq.serialize_element(&JsonRow {
                row,
                columns: &self.0.columns,
            })?;
        }
        seq.end()
    }
}

/// A row with its tags in column order (as the reference writes them: its
/// columns are built from its rows' keys), then any tag without a column.
struct JsonRow<'a> {
    row: &'a Dict,
    columns: &'a [Column],
}

impl Serialize for JsonRow<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        row_tags(self.row, self.columns, |name, value| {
            map.serialize_entry(name, &JsonValue(value))
        })?;
        map.end()
    }
}

/// A dict (column meta, nested dict): tags in dict order, nulls left out.
struct JsonDict<'a>(&'a Dict);

impl Serialize for JsonDict<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        for (name, value) in self.0.iter() {
            if !value.is_null() {
                map.serialize_entry(name, &JsonValue(value))?;
            }
        }
        map.end()
    }
}

/// A value: numbers, collections and nested grids here, every other scalar
/// by libhaystack.
struct JsonValue<'a>(&'a Value);

impl Serialize for JsonValue<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Number(number) => JsonNumber(number).serialize(serializer),
            Value::List(list) => {
                let mut seq = serializer.serialize_seq(Some(list.len()))?;
                for item in list {
                    seq.serialize_element(&JsonValue(item))?;
                }
                seq.end()
            }
            Value::Dict(dict) => JsonDict(dict).serialize(serializer),
            Value::Grid(grid) => JsonGrid(grid).serialize(serializer),
            other => other.serialize(serializer),
        }
    }
}

/// A number as the reference writes it: a bare JSON float (`8.0`) without a
/// unit, `{"_kind":"number","val":68.0,"unit":"°F"}` with one, and the
/// strings `NaN`, `INF`, `-INF` for the non-finite values.
struct JsonNumber<'a>(&'a Number);

impl Serialize for JsonNumber<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let Number { value, unit } = *self.0;
        if value.is_finite() && unit.is_none() {
            return serializer.serialize_f64(value);
        }
        let mut map = serializer.serialize_map(Some(2 + usize::from(unit.is_some())))?;
        map.serialize_entry("_kind", "number")?;
        if value.is_finite() {
            map.serialize_entry("val", &value)?;
        } else if value.is_nan() {
            map.serialize_entry("val", "NaN")?;
        } else if value.is_sign_negative() {
            map.serialize_entry("val", "-INF")?;
        } else {
            map.serialize_entry("val", "INF")?;
        }
        if let Some(unit) = unit {
            map.serialize_entry("unit", number::unit_symbol(unit))?;
        }
        map.end()
    }
}
