//! Grid wire formats: Haystack JSON v4 and Zinc 3.0, media-type handling and
//! error grids, written as haystack-py writes them (docs/protocol.md sections 1
//! and 2.3–2.4).
//!
//! ```
//! use hs_core::codec::{decode_grid, encode_grid, error_grid, error_message, Format};
//!
//! let body = br#"{"_kind":"grid","meta":{},"cols":[{"name":"navId"}],"rows":[{"navId":null}]}"#;
//! let grid = decode_grid(body, Format::Json).unwrap();
//! assert!(grid.rows[0].is_empty()); // a null cell is an absent tag
//!
//! let error = error_grid("Unknown watch");
//! assert_eq!(
//!     encode_grid(&error, Format::Json).unwrap(),
//!     r#"{"_kind":"grid","meta":{"err":{"_kind":"marker"},"dis":"Unknown watch"},"cols":[],"rows":[]}"#
//! );
//! assert_eq!(encode_grid(&error, Format::Zinc).unwrap(), "ver:\"3.0\" err dis:\"Unknown watch\"\nempty");
//! assert_eq!(error_message(&error).as_deref(), Some("Unknown watch"));
//! ```
//!
//! Values are libhaystack's ([`crate::value`]); this module owns the grid
//! layout so that output matches the reference where libhaystack's own
//! encoders differ.
//!
//! # Compatibility with haystack-py
//!
//! Checked against every captured frame and body (`tests/transcripts.rs`):
//! 71 of 80 server WebSocket frames and every error grid re-encode byte for
//! byte. Decided differences, all semantically equal:
//!
//! - **Tag order.** libhaystack's `Dict` is sorted, so insertion order is
//!   lost. Row tags are written in column order (which is how the reference
//!   builds its grids), grid meta in a fixed order of well-known tags
//!   (`err, dis, id, watchId, watchDis, lease, hisStart, hisEnd, action,
//!   close, refresh, range`, then the rest sorted). Rows the reference built
//!   from unordered sets come out with a different tag order.
//! - **`ver`.** Never written in JSON. A `ver` received in meta becomes
//!   [`Grid::ver`](crate::value::Grid) (as libhaystack does), not a meta tag.
//! - **Numbers.** libhaystack numbers are `f64`: unitless numbers are written
//!   as JSON floats (`8.0`, as the reference writes its floats); an integer
//!   received (`18`) is sent back as `18.0`. Floats print via ryu (`1e-7`
//!   where Python prints `1e-07`). Non-finite values are written as
//!   `{"_kind":"number","val":"NaN"}` (`"INF"`, `"-INF"`; libhaystack would
//!   write `null`) and read back: libhaystack 4.1's JSON decoder refuses that
//!   form, so a body it refuses is decoded a second time with numbers decoded
//!   here and every other value by libhaystack (the fast path is unchanged).
//!   Zinc's `NaN`, `INF` and `-INF` are libhaystack's own.
//! - **Units** are libhaystack's database units, written by their symbol,
//!   except seconds: written `s` (the SI symbol, and haystack-py's), read as
//!   `s` or `sec`. A JSON unit **not in the database** does not fail the
//!   grid: it is kept as an ad-hoc unit (symbol only, no dimension, so it
//!   converts to nothing) and written back as received. libhaystack's
//!   `Number` holds a `&'static Unit`, so each distinct ad-hoc symbol is
//!   allocated once for the life of the process; at most 256 symbols of at
//!   most 32 bytes are kept. A unit beyond that, or one Zinc cannot write (a
//!   space, a digit: Zinc units are letters, `%_/$` and non-ASCII), is
//!   dropped and the number kept without it, with a DEBUG log on target
//!   `hs::codec`. In **Zinc**, an unknown unit still makes the grid
//!   `invalid_zinc`: libhaystack's Zinc parser looks units up itself.
//! - **Zinc numbers** are written with full precision (the reference rounds
//!   to six significant digits), without exponent.
//! - **UTC date-times** are written as libhaystack does (`...Z`, no `tz`);
//!   the reference adds `"tz":"UTC"`. Both decode to the same value.

mod error;
mod format;
mod json;
pub(crate) mod json_fast;
mod json_read;
mod json_write;
mod limits;
mod number;
pub(crate) mod reply;
#[cfg(test)]
mod serde_oracle;
mod zinc;

pub use error::CodecError;
pub use format::Format;
pub use limits::{MAX_COLS, MAX_DEPTH, MAX_ROWS};

pub(crate) use json::{encoded_size_hint, reply_size_hint};
pub(crate) use json_write::{write_grid, write_reply, write_str};

use libhaystack::val::{Dict, Grid, Value};

use reply::Reply;

/// Encodes a grid in `format`: compact UTF-8 JSON v4 (no `ver` in meta) or
/// Zinc without a trailing newline.
pub fn encode_grid(grid: &Grid, format: Format) -> Result<String, CodecError> {
    match format {
        Format::Json => json::encode(grid),
        Format::Zinc => zinc::encode(grid),
    }
}

/// Encodes an op's [`Reply`] in `format`: the text [`encode_grid`] gives
/// for [`Reply::into_grid`]'s grid (for [`Reply::Encoded`], the same grid
/// with each row's tags in the row's own order). JSON writes shared rows in
/// place, or copies their texts; Zinc builds the grid first.
pub fn encode_reply(reply: &Reply, format: Format) -> Result<String, CodecError> {
    match (reply, format) {
        (Reply::Grid(grid), _) => encode_grid(grid, format),
        (_, Format::Json) => {
            let mut out = String::with_capacity(reply_size_hint(reply));
            write_reply(&mut out, reply);
            Ok(out)
        }
        (_, Format::Zinc) => zinc::encode(&reply.clone().into_grid()),
    }
}

/// One row's JSON v4 object text, `id` first and then the dict's order,
/// nulls left out: the text an [`EncodedRows`](reply::EncodedRows)
/// pairs with the row.
pub(crate) fn json_row(row: &Dict) -> String {
    let mut out = String::with_capacity(32 * row.len());
    json_write::write_row(&mut out, row);
    out
}

/// Decodes a request or response body. An empty (or all-whitespace) body is
/// the empty grid, whatever the format, as the reference treats it.
///
/// Null cells and null meta tags are dropped (they mean "absent"). Bodies
/// nesting deeper than [`MAX_DEPTH`] or holding more than [`MAX_ROWS`] rows
/// or [`MAX_COLS`] columns are refused with a typed error.
pub fn decode_grid(body: &[u8], format: Format) -> Result<Grid, CodecError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(empty_grid());
    }
    match format {
        Format::Json => json::decode(body),
        Format::Zinc => zinc::decode(body),
    }
}

/// The empty grid: no meta, no columns, no rows
/// (`{"_kind":"grid","meta":{},"cols":[],"rows":[]}`).
pub fn empty_grid() -> Grid {
    Grid::default()
}

/// An error grid: meta `{err: marker, dis: <dis>}`, no columns, no rows, as
/// the reference's servers send (they never send `errTrace`).
pub fn error_grid(dis: &str) -> Grid {
    let mut meta = Dict::new();
    meta.insert("err".to_owned(), Value::Marker);
    meta.insert("dis".to_owned(), Value::make_str(dis));
    Grid {
        meta: Some(meta),
        ..Grid::default()
    }
}

/// The error grid meta tag in which hs servers name the failure's
/// [`ErrorKind`](crate::observe::ErrorKind) (`errKind: "bad_request"`), so that a client reports the
/// same error type as the server for the same failure. Not `errType`, which
/// SkySpark uses for its exception class.
pub const ERROR_KIND_TAG: &str = "errKind";

/// The error type an error grid names in [`ERROR_KIND_TAG`]; `None` when
/// `grid` is no error grid, or names no known kind (foreign servers such
/// as haystack-py name none: clients then report
/// [`ErrorKind::ErrorGrid`](crate::observe::ErrorKind::ErrorGrid)).
pub fn error_kind(grid: &Grid) -> Option<crate::observe::ErrorKind> {
    let meta = grid.meta.as_ref()?;
    if !meta.get("err").is_some_and(Value::is_marker) {
        return None;
    }
    match meta.get(ERROR_KIND_TAG) {
        Some(Value::Str(name)) => crate::observe::ErrorKind::from_name(name.value()),
        _ => None,
    }
}

/// `Some(dis)` when `grid` is an error grid (meta has the `err` marker): its
/// `dis`, or `"error grid without dis"` when it has none.
pub fn error_message(grid: &Grid) -> Option<String> {
    let meta = grid.meta.as_ref()?;
    if !meta.get("err").is_some_and(Value::is_marker) {
        return None;
    }
    Some(match meta.get("dis") {
        Some(Value::Str(dis)) => dis.value().to_owned(),
        _ => "error grid without dis".to_owned(),
    })
}
