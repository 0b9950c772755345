//! Haystack JSON v4 (Hayson) grids, written the way haystack-py writes them.
//!
//! Scalars are encoded and decoded by libhaystack; this module owns only the
//! grid layout, where libhaystack's own encoder differs from the reference:
//! it adds `ver` to the grid meta, writes tags in sorted order, writes
//! unitless integral numbers as JSON integers and NaN/INF as `null`.

use std::cell::Cell;

use libhaystack::val::{Column, Dict, Grid, Value};
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::json_read::{OptionalDictSeed, SkipSeed, check_depth};
use super::json_write::GridColumn;
use super::limits::{self, MAX_COLS, MAX_ROWS};
use super::reply::Reply;
use super::{CodecError, json_fast, json_write, number};

/// Grid meta tags written first, in this order, so that the grids the
/// reference builds (error grids `err, dis`; hisRead `id, hisStart, hisEnd`;
/// watchSub `watchId, lease`; ...) come out byte for byte as it writes them.
/// libhaystack's `Dict` keeps no insertion order; other tags follow in its
/// (sorted) order.
pub(super) const META_ORDER: [&str; 12] = [
    "err", "dis", "id", "watchId", "watchDis", "lease", "hisStart", "hisEnd", "action", "close",
    "refresh", "range",
];

/// The grid meta tag libhaystack uses for the format version; never written.
const VER: &str = "ver";

// ---------------------------------------------------------------- encoding

/// Calls `tag` for each non-null tag of `row` in the order written: column
/// order, then any tag without a column.
pub(super) fn row_tags<C: GridColumn, E>(
    row: &Dict,
    columns: &[C],
    mut tag: impl FnMut(&str, &Value) -> Result<(), E>,
) -> Result<(), E> {
    let mut found = 0;
    for column in columns {
        if let Some(value) = row.get(column.name()) {
            found += 1;
            if !value.is_null() {
                tag(column.name(), value)?;
            }
        }
    }
    if found < row.len() {
        for (name, value) in row.iter() {
            let has_column = columns.iter().any(|c| c.name() == name);
            if !has_column && !value.is_null() {
                tag(name, value)?;
            }
        }
    }
    Ok(())
}

/// Encodes a grid as compact JSON v4 text.
pub(super) fn encode(grid: &Grid) -> Result<String, CodecError> {
    let mut out = String::with_capacity(encoded_size_hint(grid));
    json_write::write_grid(&mut out, grid);
    Ok(out)
}

/// A guess at the encoded size, to allocate the output once or twice:
/// about 40 bytes a cell.
pub(crate) fn encoded_size_hint(grid: &Grid) -> usize {
    64 + grid
        .rows
        .len()
        .saturating_mul(grid.columns.len())
        .saturating_mul(40)
}

/// [`encoded_size_hint`] for a reply (shared rows: the first row's width).
pub(crate) fn reply_size_hint(reply: &Reply) -> usize {
    match reply {
        Reply::Grid(grid) => encoded_size_hint(grid),
        Reply::Rows(rows) => {
            let width = rows.first().map_or(0, |row| row.len());
            // Entities carry longer values than the average cell.
            64 + rows.len().saturating_mul(width).saturating_mul(64)
        }
        Reply::Encoded(rows) => {
            let width = rows.rows().first().map_or(0, |row| row.len());
            let texts: usize = rows.json().iter().map(|text| text.len() + 1).sum();
            64 + width.saturating_mul(32) + texts
        }
    }
}

// ---------------------------------------------------------------- decoding

/// Records why decoding stopped when serde can only carry a message.
type Failure = Cell<Option<CodecError>>;

/// Decodes JSON v4 text into a grid, enforcing the limits.
///
/// [`json_read`](super::json_read) decodes the values as libhaystack does. When it refuses one (a non-finite number
/// or a unit outside its database; see [`number`]), the body is decoded a
/// second time in the [lenient](Mode::Lenient) mode, which decodes numbers
/// here and leaves every other value to libhaystack.
pub(super) fn decode(bytes: &[u8]) -> Result<Grid, CodecError> {
    match std::str::from_utf8(bytes).ok().and_then(json_fast::decode) {
        Some(grid) => Ok(grid),
        None => decode_serde(bytes),
    }
}

/// [`decode`] without the [`json_fast`] attempt.
pub(super) fn decode_serde(bytes: &[u8]) -> Result<Grid, CodecError> {
    match decode_bytes(bytes, Mode::Strict) {
        Ok(grid) => Ok(grid),
        Err(err) => {
            // The strict pass stops at the depth limit as it goes; the scan
            // reports it (and any deeper nesting past an earlier syntax
            // error) as the one error it was before the pass.
            limits::check_json_depth(bytes)?;
            match err {
                CodecError::InvalidGrid { .. } => decode_bytes(bytes, Mode::Lenient),
                other => Err(other),
            }
        }
    }
}

fn decode_bytes(bytes: &[u8], mode: Mode) -> Result<Grid, CodecError> {
    // Valid UTF-8 as a whole (the rule) is not checked again string by
    // string; invalid bodies get the slice reader's errors, as before.
    match std::str::from_utf8(bytes) {
        Ok(text) => decode_from(serde_json::Deserializer::from_str(text), mode),
        Err(_) => decode_from(serde_json::Deserializer::from_slice(bytes), mode),
    }
}

fn decode_from<'de, R: serde_json::de::Read<'de>>(
    mut deserializer: serde_json::Deserializer<R>,
    mode: Mode,
) -> Result<Grid, CodecError> {
    let failure = Failure::default();
    GridSeed {
        failure: &failure,
        mode,
        depth: 1,
    }
    .deserialize(&mut deserializer)
    .and_then(|grid| deserializer.end().map(|()| grid))
    .map_err(|err| decode_error(err, &failure))
}

fn decode_error(err: serde_json::Error, failure: &Failure) -> CodecError {
    if let Some(failure) = failure.take() {
        return failure;
    }
    let message = err.to_string();
    match err.classify() {
        serde_json::error::Category::Data => CodecError::InvalidGrid { message },
        _ => CodecError::InvalidJson { message },
    }
}

fn fail<E: de::Error>(failure: &Failure, error: CodecError) -> E {
    let message = error.to_string();
    failure.set(Some(error));
    E::custom(message)
}

/// Drops null tags (the reference's clients send `{"navId":null}`; a null
/// cell means "absent").
pub(super) fn without_nulls(mut dict: Dict) -> Dict {
    dict.retain(|_, value| !value.is_null());
    dict
}

/// How dicts (rows, meta) are decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Streaming, with libhaystack's rules ([`json_read`](super::json_read)): the fast path.
    Strict,
    /// Through a `serde_json::Value`, numbers decoded here
    /// ([`number::number_from_json`]), other values by libhaystack.
    Lenient,
}

/// Each seed below knows the nesting level its container opens at (the
/// grid object is level 1), to stop at [`MAX_DEPTH`] in one pass.
struct GridSeed<'f> {
    failure: &'f Failure,
    mode: Mode,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for GridSeed<'_> {
    type Value = Grid;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Grid, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for GridSeed<'_> {
    type Value = Grid;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON v4 grid object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Grid, A::Error> {
        check_depth(self.depth)?;
        let depth = self.depth + 1;
        let mut is_grid = false;
        let mut meta: Option<Dict> = None;
        let mut columns = None;
        let mut rows = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "_kind" => {
                    let kind = map.next_value::<std::borrow::Cow<'de, str>>()?;
                    if kind != "grid" {
                        return Err(de::Error::custom(format_args!(
                            "expected _kind \"grid\", found {kind:?}"
                        )));
                    }
                    is_grid = true;
                }
                "meta" => meta = map.next_value_seed(DictSeed(self.mode, depth))?,
                "cols" => {
                    columns = Some(map.next_value_seed(ColumnsSeed {
                        failure: self.failure,
                        mode: self.mode,
                        depth,
                    })?)
                }
                "rows" => {
                    rows = Some(map.next_value_seed(RowsSeed {
                        failure: self.failure,
                        mode: self.mode,
                        depth,
                    })?)
                }
                _ => map.next_value_seed(SkipSeed { depth })?,
            }
        }
        if !is_grid {
            return Err(de::Error::custom("missing \"_kind\":\"grid\""));
        }
        let columns = columns.ok_or_else(|| de::Error::missing_field("cols"))?;
        let rows = rows.ok_or_else(|| de::Error::missing_field("rows"))?;
        let mut grid = Grid {
            meta: None,
            columns,
            rows,
            ..Grid::default()
        };
        if let Some(meta) = meta {
            let mut meta = without_nulls(meta);
            // As libhaystack does: the format version is the grid's `ver`,
            // not a meta tag (and so is never written back).
            if let Some(Value::Str(ver)) = meta.remove(VER) {
                grid.ver = ver.value().to_owned();
            }
            grid.meta = Some(meta).filter(|meta| !meta.is_empty());
        }
        Ok(grid)
    }
}

struct ColumnsSeed<'f> {
    failure: &'f Failure,
    mode: Mode,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for ColumnsSeed<'_> {
    type Value = Vec<Column>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Vec<Column>, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ColumnsSeed<'_> {
    type Value = Vec<Column>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an array of column objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Column>, A::Error> {
        check_depth(self.depth)?;
        let mut columns = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(column) = seq.next_element_seed(ColumnSeed(self.mode, self.depth + 1))? {
            if columns.len() == MAX_COLS {
                return Err(fail(
                    self.failure,
                    CodecError::TooManyCols { max: MAX_COLS },
                ));
            }
            columns.push(column);
        }
        Ok(columns)
    }
}

struct ColumnSeed(Mode, usize);

impl<'de> DeserializeSeed<'de> for ColumnSeed {
    type Value = Column;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Column, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ColumnSeed {
    type Value = Column;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a column object with a \"name\"")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Column, A::Error> {
        check_depth(self.1)?;
        let depth = self.1 + 1;
        let mut name: Option<String> = None;
        let mut meta: Option<Dict> = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "name" => name = Some(map.next_value()?),
                "meta" => meta = map.next_value_seed(DictSeed(self.0, depth))?,
                _ => map.next_value_seed(SkipSeed { depth })?,
            }
        }
        let name = name
            .filter(|name| !name.is_empty())
            .ok_or_else(|| de::Error::missing_field("name"))?;
        let meta = meta.map(without_nulls).filter(|meta| !meta.is_empty());
        Ok(Column { name, meta })
    }
}

struct RowsSeed<'f> {
    failure: &'f Failure,
    mode: Mode,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for RowsSeed<'_> {
    type Value = Vec<Dict>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Vec<Dict>, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for RowsSeed<'_> {
    type Value = Vec<Dict>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an array of row objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Dict>, A::Error> {
        check_depth(self.depth)?;
        let mut rows = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(row) = seq.next_element_seed(DictSeed(self.mode, self.depth + 1))? {
            let row = row.ok_or_else(|| de::Error::custom("a row must be an object, not null"))?;
            if rows.len() == MAX_ROWS {
                return Err(fail(
                    self.failure,
                    CodecError::TooManyRows { max: MAX_ROWS },
                ));
            }
            rows.push(without_nulls(row));
        }
        Ok(rows)
    }
}

/// A dict, or `None` for JSON `null`, decoded as its [`Mode`] says, at a
/// nesting level.
struct DictSeed(Mode, usize);

impl<'de> DeserializeSeed<'de> for DictSeed {
    type Value = Option<Dict>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<Dict>, D::Error> {
        match self.0 {
            Mode::Strict => OptionalDictSeed { depth: self.1 }.deserialize(deserializer),
            Mode::Lenient => match serde_json::Value::deserialize(deserializer)? {
                serde_json::Value::Null => Ok(None),
                serde_json::Value::Object(object) => {
                    lenient::dict(&object).map(Some).map_err(de::Error::custom)
                }
                _ => Err(de::Error::custom("expected a dict object")),
            },
        }
    }
}

/// Hayson values from parsed JSON, numbers decoded by [`number`].
mod lenient {
    use libhaystack::val::{Dict, Value};
    use serde::Deserialize;
    use serde::de::DeserializeSeed;
    use serde_json::{Map, Value as Json};

    use super::{Failure, GridSeed, Mode, decode_error, number};

    /// A dict object (its `_kind`, if any, is `dict`).
    pub(super) fn dict(object: &Map<String, Json>) -> Result<Dict, String> {
        let mut dict = Dict::new();
        for (name, json) in object {
            if name != "_kind" {
                dict.insert(name.clone(), value(json)?);
            }
        }
        Ok(dict)
    }

    fn value(json: &Json) -> Result<Value, String> {
        match json {
            Json::Array(items) => items
                .iter()
                .map(value)
                .collect::<Result<Vec<_>, _>>()
                .map(Value::from),
            Json::Object(object) => match object.get("_kind") {
                None => dict(object).map(Value::from),
                Some(Json::String(kind)) => match kind.as_str() {
                    "dict" => dict(object).map(Value::from),
                    "number" => number::number_from_json(object).map(Value::from),
                    "grid" => {
                        let failure = Failure::default();
                        GridSeed {
                            failure: &failure,
                            mode: Mode::Lenient,
                            depth: 1,
                        }
                        .deserialize(json)
                        .map(Value::from)
                        .map_err(|err| decode_error(err, &failure).to_string())
                    }
                    _ => Value::deserialize(json).map_err(|err| err.to_string()),
                },
                Some(_) => Err("invalid Hayson kind type".to_owned()),
            },
            scalar => Value::deserialize(scalar).map_err(|err| err.to_string()),
        }
    }
}
