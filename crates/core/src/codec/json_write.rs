//! Writes JSON v4 grid text straight into a `String`.
//!
//! The same bytes as serializing the grid with serde_json (tested against
//! a serde encoder), without serde's per-value dispatch: strings with nothing to
//! escape (nearly all of them) are copied as they are, and the common scalar
//! kinds are written here. The rare kinds (dates, times, coords, xstrs) are
//! still written by libhaystack through serde_json.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::convert::Infallible;

use libhaystack::val::{Column, Dict, Grid, Number, Value};

use super::json::{META_ORDER, row_tags};
use super::number;
use super::reply::{Reply, column_names};

/// A grid column as the writer sees it: a name, maybe meta.
pub(crate) trait GridColumn {
    fn name(&self) -> &str;
    fn meta(&self) -> Option<&Dict>;
}

impl GridColumn for Column {
    fn name(&self) -> &str {
        &self.name
    }
    fn meta(&self) -> Option<&Dict> {
        self.meta.as_ref()
    }
}

/// The columns of shared rows: names only.
impl GridColumn for &str {
    fn name(&self) -> &str {
        self
    }
    fn meta(&self) -> Option<&Dict> {
        None
    }
}

/// Writes a grid as haystack-py's JSON v4: keys `_kind, meta, cols, rows`;
/// no `ver`; column `meta` only when present; row tags in column order,
/// null cells left out.
pub(crate) fn write_grid(out: &mut String, grid: &Grid) {
    write_parts(out, grid.meta.as_ref(), &grid.columns, &grid.rows);
}

/// Writes a reply as [`write_grid`] writes the grid [`Reply::into_grid`]
/// would give, without building it.
pub(crate) fn write_reply(out: &mut String, reply: &Reply) {
    match reply {
        Reply::Grid(grid) => write_grid(out, grid),
        Reply::Rows(rows) => match rows.as_slice() {
            [row] if !row.is_empty() => {
                write_columns(out, None, &column_names(rows));
                write_row(out, row);
                out.push_str("]}");
            }
            _ => write_parts(out, None, &column_names(rows), rows),
        },
        Reply::Encoded(rows) => {
            write_columns(out, None, &rows.column_names());
            for (i, text) in rows.json().iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(text);
            }
            out.push_str("]}");
        }
    }
}

/// One row as a JSON object in its own order: `id` first (as
/// [`column_names`] puts it), then the dict's order, nulls left out. A
/// single row's columns are its own tags, so this is the order
/// [`write_parts`] would give it.
pub(crate) fn write_row(out: &mut String, row: &Dict) {
    out.push('{');
    let mut first = true;
    if let Some(id) = row.get("id").filter(|id| !id.is_null()) {
        write_entry(out, &mut first, "id", id);
    }
    for (name, value) in row.iter() {
        if name != "id" && !value.is_null() {
            write_entry(out, &mut first, name, value);
        }
    }
    out.push('}');
}

fn write_parts<C: GridColumn, R: Borrow<Dict>>(
    out: &mut String,
    meta: Option<&Dict>,
    columns: &[C],
    rows: &[R],
) {
    write_columns(out, meta, columns);
    let mut order = ColumnOrder::new(columns, rows.len());
    for (i, row) in rows.iter().enumerate() {
        let row: &Dict = row.borrow();
        if i > 0 {
            out.push(',');
        }
        out.push('{');
        let mut first = true;
        let mut tag = |name: &str, value: &Value| {
            write_entry(out, &mut first, name, value);
            Ok(())
        };
        let written: Result<(), Infallible> = match order.as_mut() {
            Some(order) => order.row_tags(row, tag),
            None => row_tags(row, columns, &mut tag),
        };
        let Ok(()) = written;
        out.push('}');
    }
    out.push_str("]}");
}

/// The grid's start: meta, the columns, and `"rows":[`.
fn write_columns<C: GridColumn>(out: &mut String, meta: Option<&Dict>, columns: &[C]) {
    out.push_str(r#"{"_kind":"grid","meta":{"#);
    if let Some(meta) = meta {
        let mut first = true;
        for name in META_ORDER {
            if let Some(value) = meta.get(name).filter(|v| !v.is_null()) {
                write_entry(out, &mut first, name, value);
            }
        }
        for (name, value) in meta.iter() {
            if !value.is_null() && !META_ORDER.contains(&name.as_str()) {
                write_entry(out, &mut first, name, value);
            }
        }
    }
    out.push_str(r#"},"cols":["#);
    for (i, column) in columns.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(r#"{"name":"#);
        write_str(out, column.name());
        if let Some(meta) = column.meta().filter(|meta| !meta.is_empty()) {
            out.push_str(r#","meta":"#);
            write_dict(out, meta);
        }
        out.push('}');
    }
    out.push_str(r#"],"rows":["#);
}

/// Puts each row's tags in column order (as [`row_tags`] does) without a
/// dict lookup per column: the rows of a grid nearly always hold the same
/// tags in the same order, so the column of the tag at each position is
/// remembered from the row before and only checked.
struct ColumnOrder<'g, C> {
    columns: &'g [C],
    /// Column names to indexes, for wide grids only (narrow ones are
    /// searched).
    index: Option<HashMap<&'g str, usize>>,
    /// The previous row's tag positions to their columns.
    by_position: Vec<Option<usize>>,
    /// This row's value for each column.
    slots: Vec<Option<&'g Value>>,
    /// This row's tags without a column, in dict order.
    extra: Vec<(&'g str, &'g Value)>,
}

/// Most columns searched one by one for a tag's column.
const SEARCHED_COLUMNS: usize = 32;

impl<'g, C: GridColumn> ColumnOrder<'g, C> {
    /// `None` when there is no use for it: a single row, or columns with
    /// the same name (each gets the tag, as [`row_tags`] writes it).
    fn new(columns: &'g [C], rows: usize) -> Option<Self> {
        if rows < 2 {
            return None;
        }
        let index = if columns.len() > SEARCHED_COLUMNS {
            let mut index = HashMap::with_capacity(columns.len());
            for (i, column) in columns.iter().enumerate() {
                if index.insert(column.name(), i).is_some() {
                    return None;
                }
            }
            Some(index)
        } else {
            for (i, column) in columns.iter().enumerate() {
                if columns[..i]
                    .iter()
                    .any(|other| other.name() == column.name())
                {
                    return None;
                }
            }
            None
        };
        Some(ColumnOrder {
            columns,
            index,
            by_position: Vec::new(),
            slots: vec![None; columns.len()],
            extra: Vec::new(),
        })
    }

    fn column_of(&self, name: &str) -> Option<usize> {
        match &self.index {
            Some(index) => index.get(name).copied(),
            None => self.columns.iter().position(|column| column.name() == name),
        }
    }

    fn row_tags<E>(
        &mut self,
        row: &'g Dict,
        mut tag: impl FnMut(&str, &Value) -> Result<(), E>,
    ) -> Result<(), E> {
        self.slots.fill(None);
        self.extra.clear();
        for (position, (name, value)) in row.iter().enumerate() {
            let remembered = self.by_position.get(position).copied().flatten();
            let column = match remembered {
                Some(column) if self.columns[column].name() == name.as_str() => Some(column),
                _ => {
                    let column = self.column_of(name);
                    if position < self.by_position.len() {
                        self.by_position[position] = column;
                    } else {
                        self.by_position.push(column);
                    }
                    column
                }
            };
            match column {
                Some(column) => self.slots[column] = Some(value),
                None => self.extra.push((name, value)),
            }
        }
        for (column, value) in self.columns.iter().zip(&self.slots) {
            if let Some(value) = value.filter(|value| !value.is_null()) {
                tag(column.name(), value)?;
            }
        }
        for (name, value) in &self.extra {
            if !value.is_null() {
                tag(name, value)?;
            }
        }
        Ok(())
    }
}

fn write_entry(out: &mut String, first: &mut bool, name: &str, value: &Value) {
    if !std::mem::take(first) {
        out.push(',');
    }
    write_str(out, name);
    out.push(':');
    write_value(out, value);
}

/// A dict: tags in dict order, nulls left out.
fn write_dict(out: &mut String, dict: &Dict) {
    out.push('{');
    let mut first = true;
    for (name, value) in dict.iter() {
        if !value.is_null() {
            write_entry(out, &mut first, name, value);
        }
    }
    out.push('}');
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Marker => out.push_str(r#"{"_kind":"marker"}"#),
        Value::Na => out.push_str(r#"{"_kind":"na"}"#),
        Value::Remove => out.push_str(r#"{"_kind":"remove"}"#),
        Value::Bool(flag) => out.push_str(if flag.value { "true" } else { "false" }),
        Value::Number(number) => write_number(out, number),
        Value::Str(text) => write_str(out, text.value()),
        Value::Ref(reference) => {
            out.push_str(r#"{"_kind":"ref","val":"#);
            write_str(out, reference.value());
            if let Some(dis) = reference.dis() {
                out.push_str(r#","dis":"#);
                write_str(out, dis);
            }
            out.push('}');
        }
        Value::Uri(uri) => {
            out.push_str(r#"{"_kind":"uri","val":"#);
            write_str(out, uri.value());
            out.push('}');
        }
        Value::Symbol(symbol) => {
            out.push_str(r#"{"_kind":"symbol","val":"#);
            write_str(out, symbol.value());
            out.push('}');
        }
        Value::List(list) => {
            out.push('[');
            for (i, item) in list.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Dict(dict) => write_dict(out, dict),
        Value::Grid(grid) => write_grid(out, grid),
        // Rare kinds: libhaystack's own serde encoding, as before.
        other => out.push_str(&serde_json::to_string(other).unwrap_or_default()),
    }
}

/// A number as the reference writes it: a bare JSON float (`8.0`) without
/// a unit, `{"_kind":"number","val":68.0,"unit":"°F"}` with one, and the
/// strings `NaN`, `INF`, `-INF` for the non-finite values.
fn write_number(out: &mut String, number: &Number) {
    let Number { value, unit } = *number;
    if value.is_finite() && unit.is_none() {
        write_f64(out, value);
        return;
    }
    out.push_str(r#"{"_kind":"number","val":"#);
    if value.is_finite() {
        write_f64(out, value);
    } else if value.is_nan() {
        out.push_str(r#""NaN""#);
    } else if value.is_sign_negative() {
        out.push_str(r#""-INF""#);
    } else {
        out.push_str(r#""INF""#);
    }
    if let Some(unit) = unit {
        out.push_str(r#","unit":"#);
        write_str(out, number::unit_symbol(unit));
    }
    out.push('}');
}

/// A finite float as serde_json writes it (shortest round-trip, by zmij as serde_json does).
fn write_f64(out: &mut String, value: f64) {
    out.push_str(zmij::Buffer::new().format_finite(value));
}

/// A JSON string literal, escaped exactly as serde_json escapes it.
pub(crate) fn write_str(out: &mut String, text: &str) {
    if !needs_escape(text.as_bytes()) {
        out.reserve(text.len() + 2);
        out.push('"');
        out.push_str(text);
        out.push('"');
    } else {
        out.push_str(&serde_json::to_string(text).unwrap_or_default());
    }
}

/// Whether any byte is a control character, `"` or `\\` (the tags and
/// values written are short and nearly never need it: one table lookup a
/// byte).
fn needs_escape(bytes: &[u8]) -> bool {
    const ESCAPED: [bool; 256] = {
        let mut table = [false; 256];
        let mut byte = 0;
        while byte < 0x20 {
            table[byte] = true;
            byte += 1;
        }
        table[b'"' as usize] = true;
        table[b'\\' as usize] = true;
        table
    };
    bytes.iter().any(|&byte| ESCAPED[usize::from(byte)])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    fn written(text: &str) -> String {
        let mut out = String::new();
        write_str(&mut out, text);
        out
    }

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        for text in [
            "",
            "plain",
            "°F ünïcode ✓",
            "quote \" backslash \\ slash /",
            "controls \u{0} \u{1f} \n \r \t \u{7f}",
        ] {
            assert_eq!(written(text), serde_json::to_string(text).unwrap());
        }
    }

    /// Every byte value at every position of short strings, against the
    /// plain per-byte rule.
    #[test]
    fn escape_detection_matches_the_byte_rule() {
        for byte in 0..=255u8 {
            for len in 1..=17 {
                for at in 0..len {
                    let mut bytes = vec![b'a'; len];
                    bytes[at] = byte;
                    let expected = byte < 0x20 || byte == b'"' || byte == b'\\';
                    assert_eq!(needs_escape(&bytes), expected, "{byte:#x} at {at} of {len}");
                }
            }
        }
        assert!(!needs_escape("°F ünïcode ✓ and more text".as_bytes()));
    }

    #[test]
    fn floats_are_written_as_serde_json_writes_them() {
        for value in [0.0, -0.0, 8.0, 0.1, 1e20, 1.5e-7, f64::MAX, -72.25] {
            let mut out = String::new();
            write_f64(&mut out, value);
            assert_eq!(out, serde_json::to_string(&value).unwrap());
        }
    }

    /// A grid with every kind of value, nulls, column meta, ordered grid
    /// meta, a tag without a column, non-finite numbers and escapes.
    fn every_kind_grid() -> Grid {
        use libhaystack::units::get_unit;
        use libhaystack::val::{Column, Date, Time};
        let fahrenheit = get_unit("°F").unwrap();
        let mut nested = Dict::new();
        nested.insert("a".into(), Value::make_int(1));
        nested.insert("gone".into(), Value::Null);
        nested.insert("s".into(), Value::make_str("tab\there \"quoted\""));
        let mut row = Dict::new();
        row.insert("id".into(), Value::make_ref_with_dis("p-1", "Point \\ 1"));
        row.insert("plain".into(), Value::make_ref("p-2"));
        row.insert("m".into(), Value::make_marker());
        row.insert("na".into(), Value::make_na());
        row.insert("rm".into(), Value::make_remove());
        row.insert("yes".into(), Value::make_bool(true));
        row.insert("no".into(), Value::make_bool(false));
        row.insert("int".into(), Value::make_number(8.0));
        row.insert("frac".into(), Value::make_number(-0.125));
        row.insert("big".into(), Value::make_number(1e21));
        row.insert("unit".into(), Value::make_number_unit(68.5, fahrenheit));
        row.insert(
            "sec".into(),
            Value::make_number_unit(5.0, get_unit("s").unwrap()),
        );
        row.insert("nan".into(), Value::make_number(f64::NAN));
        row.insert(
            "inf".into(),
            Value::make_number_unit(f64::INFINITY, fahrenheit),
        );
        row.insert("ninf".into(), Value::make_number(f64::NEG_INFINITY));
        row.insert("str".into(), Value::make_str("ünïcode \u{1} \n"));
        row.insert("uri".into(), Value::make_uri("http://x/\"y\""));
        row.insert("sym".into(), Value::make_symbol("elec-meter"));
        row.insert(
            "date".into(),
            Value::make_date("2024-01-02".parse::<Date>().unwrap()),
        );
        row.insert(
            "time".into(),
            Value::make_time("10:20:30.5".parse::<Time>().unwrap()),
        );
        row.insert(
            "ts".into(),
            Value::make_datetime_from_iso("2024-01-02T03:04:05.123-05:00").unwrap(),
        );
        row.insert("coord".into(), Value::make_coord_from(37.5, -77.25));
        row.insert("xstr".into(), Value::make_xstr_from("Bin", "text/plain"));
        row.insert(
            "list".into(),
            Value::make_list(vec![Value::Null, Value::make_int(2), Value::make_marker()]),
        );
        row.insert("dict".into(), Value::make_dict(nested.clone()));
        row.insert("empty".into(), Value::Null);
        row.insert("extra\"tag".into(), Value::make_str("no column"));
        let inner = Grid::make_from_dicts(vec![nested.clone()]);
        row.insert("grid".into(), Value::make_grid(inner));
        let mut meta = Dict::new();
        meta.insert("zzz".into(), Value::make_marker());
        meta.insert("dis".into(), Value::make_str("shown"));
        meta.insert("err".into(), Value::make_marker());
        meta.insert("none".into(), Value::Null);
        let mut columns: Vec<Column> = row
            .keys()
            .filter(|name| !name.starts_with("extra"))
            .map(|name| Column {
                name: name.clone(),
                meta: None,
            })
            .collect();
        columns[0].meta = Some(nested);
        columns[1].meta = Some(Dict::new());
        Grid {
            meta: Some(meta),
            columns,
            rows: vec![row, Dict::new()],
            ..Grid::default()
        }
    }

    #[test]
    fn grids_are_written_as_the_serde_encoder_writes_them() {
        use crate::codec::serde_oracle::JsonGrid;
        let grid = every_kind_grid();
        let mut out = String::new();
        write_grid(&mut out, &grid);
        assert_eq!(out, serde_json::to_string(&JsonGrid(&grid)).unwrap());
        // Rows with differing tags and orders, wide and narrow, and
        // columns sharing a name.
        let rows: Vec<Dict> = (0..6)
            .map(|i| {
                let mut row = Dict::new();
                for j in 0..40 {
                    if (i + j) % (i + 2) != 0 {
                        row.insert(format!("t{:02}", (j * (i + 3)) % 41), Value::make_int(j));
                    }
                }
                row.insert(format!("x{i}"), Value::make_marker());
                row
            })
            .collect();
        for width in [5, 41] {
            let mut columns: Vec<libhaystack::val::Column> = (0..width)
                .map(|j| libhaystack::val::Column {
                    name: format!("t{:02}", (j * 7) % 41),
                    meta: None,
                })
                .collect();
            let mut grid = Grid {
                columns: columns.clone(),
                rows: rows.clone(),
                ..Grid::default()
            };
            let mut out = String::new();
            write_grid(&mut out, &grid);
            assert_eq!(out, serde_json::to_string(&JsonGrid(&grid)).unwrap());
            columns.push(columns[1].clone());
            grid.columns = columns;
            let mut out = String::new();
            write_grid(&mut out, &grid);
            assert_eq!(out, serde_json::to_string(&JsonGrid(&grid)).unwrap());
        }
        let empty = Grid::default();
        let mut out = String::new();
        write_grid(&mut out, &empty);
        assert_eq!(out, serde_json::to_string(&JsonGrid(&empty)).unwrap());
    }
}
