//! Zinc 3.0 grids, laid out the way haystack-py writes them.
//!
//! Scalars are encoded and decoded by libhaystack. The grid layout is ours:
//! libhaystack's grid encoder puts the meta on a line of its own, writes no
//! space between a column name and its meta, and drops the columns of a grid
//! without rows. Refs and XStrs are written here too because libhaystack
//! does not escape their strings.

use std::io::{Read, Write};

use libhaystack::encoding::zinc::decode::parse_grid;
use libhaystack::encoding::zinc::decode::parser::Parser;
use libhaystack::encoding::zinc::encode::ToZinc;
use libhaystack::val::{Column, Dict, Grid, Number, Str, Value};

use super::limits::{self, MAX_COLS, MAX_ROWS};
use super::{CodecError, number};

/// The column line of a grid without columns.
const EMPTY: &str = "empty";

/// Grid meta tags written first (see the JSON encoder for why).
const META_ORDER: [&str; 12] = [
    "err", "dis", "id", "watchId", "watchDis", "lease", "hisStart", "hisEnd", "action", "close",
    "refresh", "range",
];

// ---------------------------------------------------------------- encoding

/// Encodes a grid as haystack-py writes Zinc: `ver:"3.0"` and the meta on the
/// first line, the column line (`empty` for no columns), one line per row
/// with `N` for missing cells, lines joined by `\n`, no trailing newline.
pub(super) fn encode(grid: &Grid) -> Result<String, CodecError> {
    let mut out = Vec::with_capacity(64 + grid.rows.len() * grid.columns.len() * 12);
    write_grid(&mut out, grid)?;
    String::from_utf8(out).map_err(|err| CodecError::Encode {
        message: err.to_string(),
    })
}

fn encode_error(err: impl std::fmt::Display) -> CodecError {
    CodecError::Encode {
        message: err.to_string(),
    }
}

fn write_grid(out: &mut Vec<u8>, grid: &Grid) -> Result<(), CodecError> {
    out.extend_from_slice(b"ver:\"3.0\"");
    if let Some(meta) = &grid.meta {
        for name in META_ORDER {
            if let Some(value) = meta.get(name) {
                write_tag(out, b' ', name, value)?;
            }
        }
        for (name, value) in meta.iter() {
            if name != "ver" && !META_ORDER.contains(&name.as_str()) {
                write_tag(out, b' ', name, value)?;
            }
        }
    }
    out.push(b'\n');
    if grid.columns.is_empty() {
        out.extend_from_slice(EMPTY.as_bytes());
    }
    for (index, column) in grid.columns.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        write_column(out, column)?;
    }
    for row in &grid.rows {
        out.push(b'\n');
        for (index, column) in grid.columns.iter().enumerate() {
            if index > 0 {
                out.push(b',');
            }
            match row.get(&column.name) {
                Some(value) => write_value(out, value)?,
                None => out.push(b'N'),
            }
        }
    }
    Ok(())
}

fn write_column(out: &mut Vec<u8>, column: &Column) -> Result<(), CodecError> {
    out.extend_from_slice(column.name.as_bytes());
    if let Some(meta) = &column.meta {
        for (name, value) in meta.iter() {
            write_tag(out, b' ', name, value)?;
        }
    }
    Ok(())
}

/// Writes `<sep>name` for a marker, `<sep>name:value` otherwise; null tags
/// are absent tags and are skipped.
fn write_tag(out: &mut Vec<u8>, sep: u8, name: &str, value: &Value) -> Result<(), CodecError> {
    if value.is_null() {
        return Ok(());
    }
    out.push(sep);
    out.extend_from_slice(name.as_bytes());
    if !value.is_marker() {
        out.push(b':');
        write_value(out, value)?;
    }
    Ok(())
}

fn write_value(out: &mut Vec<u8>, value: &Value) -> Result<(), CodecError> {
    match value {
        Value::List(list) => {
            out.push(b'[');
            for (index, item) in list.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_value(out, item)?;
            }
            out.push(b']');
        }
        Value::Dict(dict) => write_dict(out, dict)?,
        Value::Grid(grid) => {
            out.extend_from_slice(b"<<\n");
            write_grid(out, grid)?;
            out.extend_from_slice(b"\n>>");
        }
        Value::Ref(reference) => {
            out.push(b'@');
            out.extend_from_slice(reference.value().as_bytes());
            if let Some(dis) = reference.dis() {
                out.push(b' ');
                Str::from(dis).to_zinc(out).map_err(encode_error)?;
            }
        }
        Value::XStr(xstr) => {
            let kind = xstr.r#type();
            let mut chars = kind.chars();
            if let Some(first) = chars.next() {
                out.extend(first.to_uppercase().to_string().bytes());
                out.extend_from_slice(chars.as_str().as_bytes());
            }
            out.push(b'(');
            Str::from(xstr.value()).to_zinc(out).map_err(encode_error)?;
            out.push(b')');
        }
        // libhaystack writes `NaN`/`INF`/`-INF` without a unit, as Zinc does.
        Value::Number(Number {
            value,
            unit: Some(unit),
        }) if value.is_finite() => {
            write!(out, "{value}{}", number::unit_symbol(unit)).map_err(encode_error)?;
        }
        other => other.to_zinc(out).map_err(encode_error)?,
    }
    Ok(())
}

fn write_dict(out: &mut Vec<u8>, dict: &Dict) -> Result<(), CodecError> {
    out.push(b'{');
    let mut sep = None;
    for (name, value) in dict.iter() {
        if value.is_null() {
            continue;
        }
        if let Some(sep) = sep {
            out.push(sep);
        }
        write_tag_body(out, name, value)?;
        sep = Some(b' ');
    }
    out.push(b'}');
    Ok(())
}

fn write_tag_body(out: &mut Vec<u8>, name: &str, value: &Value) -> Result<(), CodecError> {
    out.extend_from_slice(name.as_bytes());
    if !value.is_marker() {
        out.push(b':');
        write_value(out, value)?;
    }
    Ok(())
}

// ---------------------------------------------------------------- decoding

/// Decodes Zinc text into a grid, enforcing the limits.
pub(super) fn decode(bytes: &[u8]) -> Result<Grid, CodecError> {
    std::str::from_utf8(bytes).map_err(|_| CodecError::InvalidUtf8)?;
    limits::check_zinc_depth(bytes)?;
    // The reference writes no trailing newline; libhaystack needs one after
    // the column line.
    let newline: &[u8] = if bytes.ends_with(b"\n") { b"" } else { b"\n" };
    let mut input = bytes.chain(newline);
    let invalid = |err: std::io::Error| CodecError::InvalidZinc {
        message: err.to_string(),
    };
    let mut parser = Parser::make(&mut input).map_err(invalid)?;
    let mut grid = parse_grid(&mut parser).map_err(invalid)?;
    if grid.columns.len() > MAX_COLS {
        return Err(CodecError::TooManyCols { max: MAX_COLS });
    }
    if grid.rows.len() > MAX_ROWS {
        return Err(CodecError::TooManyRows { max: MAX_ROWS });
    }
    // `empty` is Zinc's spelling of "no columns".
    if grid.rows.is_empty()
        && grid.columns.len() == 1
        && grid.columns[0].name == EMPTY
        && grid.columns[0].meta.is_none()
    {
        grid.columns.clear();
    }
    for row in &mut grid.rows {
        row.retain(|_, value| !value.is_null());
    }
    if let Some(meta) = &mut grid.meta {
        meta.retain(|_, value| !value.is_null());
    }
    grid.meta = grid.meta.filter(|meta| !meta.is_empty());
    Ok(grid)
}
