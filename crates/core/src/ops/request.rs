//! Typed requests parsed from request grids (docs/protocol.md 2.2).
//!
//! Every parser names the op and the problem in its [`OpError`]
//! (kind [`BadRequest`](crate::observe::ErrorKind::BadRequest)). A `null` cell
//! is treated as absent, as haystack-py clients send explicit nulls.

use std::time::Duration;

use libhaystack::filter::Filter;
use libhaystack::filter::nodes::{CmpOp, Term};
use libhaystack::val::{DateTime, Dict, Grid, Number, Ref, Value};

use super::OpError;
use super::range::{HisRange, kind_name};

/// The longest filter accepted, in characters.
pub const MAX_FILTER_LEN: usize = 10_240;
/// The deepest parenthesis nesting accepted in a filter.
pub const MAX_FILTER_DEPTH: usize = 50;
/// Priority levels of a writable point: 1 (highest) to 17 (default).
pub const PRIORITY_LEVELS: u8 = 17;

/// A parsed filter together with its source text. Two are equal when
/// their texts are (the same text always parses to the same filter).
#[derive(Debug, Clone)]
pub struct ParsedFilter {
    text: String,
    filter: Filter,
}

impl PartialEq for ParsedFilter {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl ParsedFilter {
    /// Parse a Haystack filter, enforcing [`MAX_FILTER_LEN`] and [`MAX_FILTER_DEPTH`].
    pub fn parse(text: &str) -> Result<Self, OpError> {
        if text.chars().count() > MAX_FILTER_LEN {
            return Err(OpError::bad_request(format!(
                "filter is longer than {MAX_FILTER_LEN} characters"
            )));
        }
        if text.trim().is_empty() {
            return Err(OpError::bad_request("filter is empty"));
        }
        // The parser recurses per parenthesis: bound the depth before parsing.
        let mut depth = 0usize;
        let mut in_string = false;
        let mut escaped = false;
        for c in text.chars() {
            if in_string {
                match (escaped, c) {
                    (false, '\\') => escaped = true,
                    (false, '"') => in_string = false,
                    _ => escaped = false,
                }
                continue;
            }
            match c {
                '"' => in_string = true,
                '(' => {
                    depth += 1;
                    if depth > MAX_FILTER_DEPTH {
                        return Err(OpError::bad_request(format!(
                            "filter nests deeper than {MAX_FILTER_DEPTH} levels"
                        )));
                    }
                }
                ')' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        let filter = Filter::try_from(text)
            .map_err(|err| OpError::bad_request(format!("invalid filter `{text}`: {err}")))?;
        Ok(Self {
            text: text.to_owned(),
            filter,
        })
    }

    /// The filter as the client wrote it.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The parsed filter.
    pub fn filter(&self) -> &Filter {
        &self.filter
    }

    /// The most entities the filter can match when every branch of its top
    /// level names one id (`id==@p1`, `id==@a and point or id==@b`): a read
    /// of it is a lookup of that many ids. `None` when a branch does not.
    pub fn id_bound(&self) -> Option<usize> {
        let branches = &self.filter.or.ands;
        branches
            .iter()
            .all(|and| and.terms.iter().any(names_an_id))
            .then_some(branches.len())
    }
}

/// `id == @x`.
fn names_an_id(term: &Term) -> bool {
    let Term::Cmp(cmp) = term else {
        return false;
    };
    let mut path = cmp.path.iter();
    matches!(cmp.op, CmpOp::Eq)
        && matches!(cmp.value, Value::Ref(_))
        && matches!((path.next(), path.next()), (Some(first), None) if *first == "id".into())
}

/// A read request: by filter or by ids.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ReadRequest {
    /// `filter` (and optional `limit` and `explain`) in the first row.
    Filter {
        /// The filter to match.
        filter: ParsedFilter,
        /// At most this many entities; `None` for all.
        limit: Option<usize>,
        /// Also answer how the filter was planned: a server that can puts
        /// the plan in the answer's meta as [`EXPLAIN`](ReadRequest::EXPLAIN)
        /// (a Str, one line per part of the filter, each with its candidate
        /// count). An hs extension; other servers ignore the column.
        explain: bool,
    },
    /// One `id` per row; the response has one row per id, in order, a row of
    /// nulls for an unknown id.
    Ids(Vec<Ref>),
}

impl ReadRequest {
    /// The request column, and the answer's meta tag, of
    /// [`Filter::explain`](ReadRequest::Filter::explain).
    pub const EXPLAIN: &'static str = "explain";

    /// A read by filter.
    pub fn filter(text: &str, limit: Option<usize>) -> Result<Self, OpError> {
        Ok(ReadRequest::Filter {
            filter: ParsedFilter::parse(text)?,
            limit,
            explain: false,
        })
    }

    /// The read request in a JSON v4 body, decoded straight from the text
    /// when the body is a plain read grid (every row just an `id` Ref, or
    /// one row just a `filter`): no grid is built. `None` for any other
    /// body; decode it with [`decode_grid`](crate::codec::decode_grid) and
    /// use [`from_grid`](Self::from_grid), which gives the same request for
    /// every body this takes, and every error.
    ///
    /// ```
    /// use hs_core::ops::ReadRequest;
    /// let body = br#"{"_kind":"grid","meta":{},"cols":[{"name":"id"}],
    ///     "rows":[{"id":{"_kind":"ref","val":"p1"}}]}"#;
    /// assert!(matches!(ReadRequest::from_plain_json(body), Some(ReadRequest::Ids(ids)) if ids.len() == 1));
    /// // A Str id is valid but not plain: the grid path decides.
    /// let body = br#"{"_kind":"grid","meta":{},"cols":[{"name":"id"}],"rows":[{"id":"@p1"}]}"#;
    /// assert!(ReadRequest::from_plain_json(body).is_none());
    /// ```
    pub fn from_plain_json(body: &[u8]) -> Option<Self> {
        super::plain_read::read_request(std::str::from_utf8(body).ok()?)
    }

    /// Parse a read request grid.
    pub fn from_grid(grid: &Grid) -> Result<Self, OpError> {
        let first = grid
            .rows
            .first()
            .ok_or_else(|| OpError::bad_request("read: request has no rows"))?;
        if let Some(filter) = cell(first, "filter") {
            let Value::Str(text) = filter else {
                return Err(OpError::bad_request(format!(
                    "read: filter must be a Str, not {}",
                    kind_name(filter)
                )));
            };
            let limit = match cell(first, "limit") {
                None => None,
                Some(value) => Some(count(value, "read", "limit")?),
            };
            let explain = match cell(first, Self::EXPLAIN) {
                None => false,
                Some(Value::Marker) => true,
                Some(Value::Bool(flag)) => flag.value,
                Some(other) => {
                    return Err(OpError::bad_request(format!(
                        "read: explain must be a Marker or Bool, not {}",
                        kind_name(other)
                    )));
                }
            };
            return Ok(ReadRequest::Filter {
                filter: ParsedFilter::parse(text.as_str())?,
                limit,
                explain,
            });
        }
        if has_column(grid, "id") || cell(first, "id").is_some() {
            let ids = grid
                .rows
                .iter()
                .enumerate()
                .map(|(index, row)| required_ref(row, "id", "read", index))
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(ReadRequest::Ids(ids));
        }
        Err(OpError::bad_request(
            "read: request needs a filter or an id column",
        ))
    }
}

/// A nav request: `None` for the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NavRequest {
    /// The entity to list the children of, or `None` for the root (the sites).
    pub nav_id: Option<String>,
}

impl NavRequest {
    /// Parse a nav request grid (`navId` Str or Ref, or null/absent for the root).
    pub fn from_grid(grid: &Grid) -> Result<Self, OpError> {
        let nav_id = match grid.rows.first().and_then(|row| cell(row, "navId")) {
            None => None,
            Some(Value::Str(id)) => Some(id.as_str().trim_start_matches('@').to_owned()),
            Some(Value::Ref(id)) => Some(id.value().to_owned()),
            Some(other) => {
                return Err(OpError::bad_request(format!(
                    "nav: navId must be a Str or Ref, not {}",
                    kind_name(other)
                )));
            }
        };
        Ok(Self { nav_id })
    }
}

/// A hisRead request: one or more points and a range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HisReadRequest {
    /// The points; more than one is a batch read (columns `v0`, `v1`, ...).
    pub ids: Vec<Ref>,
    /// The range to read.
    pub range: HisRange,
}

impl HisReadRequest {
    /// Parse a hisRead grid: rows of `id`, with `range` in the first row or in
    /// the grid meta (the batch form).
    pub fn from_grid(grid: &Grid) -> Result<Self, OpError> {
        if grid.rows.is_empty() {
            return Err(OpError::bad_request("hisRead: request has no rows"));
        }
        let ids = grid
            .rows
            .iter()
            .enumerate()
            .map(|(index, row)| required_ref(row, "id", "hisRead", index))
            .collect::<Result<Vec<_>, _>>()?;
        let range = grid
            .rows
            .first()
            .and_then(|row| cell(row, "range"))
            .or_else(|| grid.meta.as_ref().and_then(|meta| cell(meta, "range")))
            .ok_or_else(|| OpError::bad_request("hisRead: missing range"))?;
        Ok(Self {
            ids,
            range: HisRange::from_value(range)?,
        })
    }
}

/// One timestamped sample.
#[derive(Debug, Clone, PartialEq)]
pub struct HisItem {
    /// When.
    pub ts: DateTime,
    /// The value (never null).
    pub val: Value,
}

/// The samples to write to one point.
#[derive(Debug, Clone, PartialEq)]
pub struct HisWriteSeries {
    /// The point.
    pub id: Ref,
    /// Its samples, in request order.
    pub items: Vec<HisItem>,
}

/// A hisWrite request: samples for one point (meta `id`, columns `ts`, `val`)
/// or several (columns `ts`, `v0`, `v1`, ... each with column meta `id`).
#[derive(Debug, Clone, PartialEq)]
pub struct HisWriteRequest {
    /// One series per point.
    pub series: Vec<HisWriteSeries>,
}

impl HisWriteRequest {
    /// Parse a hisWrite grid.
    pub fn from_grid(grid: &Grid) -> Result<Self, OpError> {
        if let Some(id) = grid.meta.as_ref().and_then(|meta| cell(meta, "id")) {
            let id = as_ref(id, "hisWrite", "meta id")?;
            let items = grid
                .rows
                .iter()
                .enumerate()
                .map(|(index, row)| {
                    let ts = row_ts(row, index)?;
                    let val = cell(row, "val").ok_or_else(|| {
                        OpError::bad_request(format!("hisWrite: row {index} has no val"))
                    })?;
                    Ok(HisItem {
                        ts,
                        val: val.clone(),
                    })
                })
                .collect::<Result<Vec<_>, OpError>>()?;
            return Ok(Self {
                series: vec![HisWriteSeries { id, items }],
            });
        }
        let value_columns: Vec<_> = grid
            .columns
            .iter()
            .filter(|column| column.name != "ts")
            .map(|column| {
                let id = column
                    .meta
                    .as_ref()
                    .and_then(|meta| cell(meta, "id"))
                    .ok_or_else(|| {
                        OpError::bad_request("hisWrite: missing id in grid meta or column meta")
                    })?;
                Ok((column.name.as_str(), as_ref(id, "hisWrite", "column id")?))
            })
            .collect::<Result<_, OpError>>()?;
        if value_columns.is_empty() {
            return Err(OpError::bad_request("hisWrite: missing id in grid meta"));
        }
        let mut series: Vec<HisWriteSeries> = value_columns
            .iter()
            .map(|(_, id)| HisWriteSeries {
                id: id.clone(),
                items: Vec::new(),
            })
            .collect();
        for (index, row) in grid.rows.iter().enumerate() {
            let ts = row_ts(row, index)?;
            for ((name, _), series) in value_columns.iter().zip(series.iter_mut()) {
                if let Some(val) = cell(row, name) {
                    series.items.push(HisItem {
                        ts,
                        val: val.clone(),
                    });
                }
            }
        }
        Ok(Self { series })
    }
}

/// A pointWrite request: read the priority array, or write one level.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum PointWriteRequest {
    /// No `level`: answer the 17-level priority array.
    ReadArray {
        /// The point.
        id: Ref,
    },
    /// Set (or with `val: None`, release) one level.
    Write {
        /// The point.
        id: Ref,
        /// 1 to 17.
        level: u8,
        /// The value, `None` to release the level.
        val: Option<Value>,
        /// Who wrote it.
        who: Option<String>,
        /// How long the write holds before it is released; `None` for ever.
        duration: Option<Duration>,
    },
}

impl PointWriteRequest {
    /// Parse a pointWrite grid.
    pub fn from_grid(grid: &Grid) -> Result<Self, OpError> {
        let row = grid
            .rows
            .first()
            .ok_or_else(|| OpError::bad_request("pointWrite: request has no rows"))?;
        let id = required_ref(row, "id", "pointWrite", 0)?;
        let Some(level) = cell(row, "level") else {
            return Ok(PointWriteRequest::ReadArray { id });
        };
        let level = match level {
            Value::Number(Number { value, .. })
                if value.fract() == 0.0 && (1.0..=f64::from(PRIORITY_LEVELS)).contains(value) =>
            {
                // In range and integral, so the cast is exact.
                *value as u8
            }
            Value::Number(_) => {
                return Err(OpError::bad_request("pointWrite: level must be 1-17"));
            }
            other => {
                return Err(OpError::bad_request(format!(
                    "pointWrite: level must be a Number, not {}",
                    kind_name(other)
                )));
            }
        };
        let who = match cell(row, "who") {
            None => None,
            Some(Value::Str(who)) => Some(who.as_str().to_owned()),
            Some(other) => {
                return Err(OpError::bad_request(format!(
                    "pointWrite: who must be a Str, not {}",
                    kind_name(other)
                )));
            }
        };
        let duration = match cell(row, "duration") {
            None => None,
            Some(value) => Some(duration(value, "pointWrite", "duration")?),
        };
        Ok(PointWriteRequest::Write {
            id,
            level,
            val: cell(row, "val").cloned(),
            who,
            duration,
        })
    }
}

/// A watchSub request: create a watch, or add ids to an existing one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchSubRequest {
    /// The watch to extend; `None` creates a new watch.
    pub watch_id: Option<String>,
    /// Display name of a new watch.
    pub watch_dis: Option<String>,
    /// The requested lease; the store may clamp it.
    pub lease: Option<Duration>,
    /// The entities to watch.
    pub ids: Vec<Ref>,
    /// The user opening the watch, set by the server from the authenticated
    /// principal ([`dispatch_as`](super::dispatch_as)), never from the
    /// request; `None` for an anonymous client. Stores limit watches per
    /// owner.
    pub owner: Option<String>,
}

impl WatchSubRequest {
    /// Parse a watchSub grid (meta `watchDis`, `watchId`, `lease`; rows of `id`).
    pub fn from_grid(grid: &Grid) -> Result<Self, OpError> {
        let meta = grid.meta.as_ref();
        let watch_id = optional_str(meta, "watchId", "watchSub")?;
        let watch_dis = optional_str(meta, "watchDis", "watchSub")?;
        let lease = match meta.and_then(|meta| cell(meta, "lease")) {
            None => None,
            Some(value) => Some(duration(value, "watchSub", "lease")?),
        };
        Ok(Self {
            watch_id,
            watch_dis,
            lease,
            ids: row_ids(grid, "watchSub")?,
            owner: None,
        })
    }
}

/// A watchUnsub request: remove ids from a watch, or close it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchUnsubRequest {
    /// The watch.
    pub watch_id: String,
    /// Close the whole watch (meta `close` marker).
    pub close: bool,
    /// The entities to stop watching.
    pub ids: Vec<Ref>,
}

impl WatchUnsubRequest {
    /// Parse a watchUnsub grid (meta `watchId`, optional `close`; rows of `id`).
    pub fn from_grid(grid: &Grid) -> Result<Self, OpError> {
        let meta = grid.meta.as_ref();
        Ok(Self {
            watch_id: required_watch_id(meta, "watchUnsub")?,
            close: meta.is_some_and(|meta| cell(meta, "close").is_some()),
            ids: row_ids(grid, "watchUnsub")?,
        })
    }
}

/// A watchPoll request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchPollRequest {
    /// The watch.
    pub watch_id: String,
    /// Answer every watched entity, not only the changed ones.
    pub refresh: bool,
}

impl WatchPollRequest {
    /// Parse a watchPoll grid (meta `watchId`, optional `refresh` marker).
    pub fn from_grid(grid: &Grid) -> Result<Self, OpError> {
        let meta = grid.meta.as_ref();
        Ok(Self {
            watch_id: required_watch_id(meta, "watchPoll")?,
            refresh: meta.is_some_and(|meta| cell(meta, "refresh").is_some()),
        })
    }
}

/// An invokeAction request.
#[derive(Debug, Clone, PartialEq)]
pub struct InvokeActionRequest {
    /// The target entity.
    pub id: Ref,
    /// The action name.
    pub action: String,
    /// The arguments (the first row; empty when there is none).
    pub args: Dict,
}

impl InvokeActionRequest {
    /// Parse an invokeAction grid (meta `id`, `action`; arguments in the first row).
    pub fn from_grid(grid: &Grid) -> Result<Self, OpError> {
        let meta = grid.meta.as_ref();
        let id = meta
            .and_then(|meta| cell(meta, "id"))
            .ok_or_else(|| OpError::bad_request("invokeAction: missing id in grid meta"))?;
        let id = as_ref(id, "invokeAction", "id")?;
        let action = optional_str(meta, "action", "invokeAction")?
            .filter(|action| !action.is_empty())
            .ok_or_else(|| OpError::bad_request("invokeAction: missing action in grid meta"))?;
        let mut args = grid.rows.first().cloned().unwrap_or_default();
        args.retain(|_, value| !value.is_null());
        Ok(Self { id, action, args })
    }
}

/// A cell's value; `None` when absent or null.
fn cell<'a>(row: &'a Dict, name: &str) -> Option<&'a Value> {
    row.get(name).filter(|value| !value.is_null())
}

fn has_column(grid: &Grid, name: &str) -> bool {
    grid.columns.iter().any(|column| column.name == name)
}

fn as_ref(value: &Value, op: &str, what: &str) -> Result<Ref, OpError> {
    match value {
        Value::Ref(id) => Ok(id.clone()),
        // Some clients send ids as Str ("@id" or "id").
        Value::Str(id) if !id.as_str().trim_start_matches('@').is_empty() => {
            Ok(Ref::from(id.as_str().trim_start_matches('@')))
        }
        other => Err(OpError::bad_request(format!(
            "{op}: {what} must be a Ref, not {}",
            kind_name(other)
        ))),
    }
}

fn required_ref(row: &Dict, name: &str, op: &str, index: usize) -> Result<Ref, OpError> {
    let value = cell(row, name)
        .ok_or_else(|| OpError::bad_request(format!("{op}: row {index} has no {name}")))?;
    as_ref(value, op, name)
}

fn row_ids(grid: &Grid, op: &str) -> Result<Vec<Ref>, OpError> {
    grid.rows
        .iter()
        .enumerate()
        .map(|(index, row)| required_ref(row, "id", op, index))
        .collect()
}

fn row_ts(row: &Dict, index: usize) -> Result<DateTime, OpError> {
    match cell(row, "ts") {
        Some(Value::DateTime(ts)) => Ok(*ts),
        Some(other) => Err(OpError::bad_request(format!(
            "hisWrite: ts must be a DateTime, not {} (row {index})",
            kind_name(other)
        ))),
        None => Err(OpError::bad_request(format!(
            "hisWrite: row {index} has no ts"
        ))),
    }
}

fn optional_str(meta: Option<&Dict>, name: &str, op: &str) -> Result<Option<String>, OpError> {
    match meta.and_then(|meta| cell(meta, name)) {
        None => Ok(None),
        Some(Value::Str(text)) => Ok(Some(text.as_str().to_owned())),
        Some(other) => Err(OpError::bad_request(format!(
            "{op}: {name} must be a Str, not {}",
            kind_name(other)
        ))),
    }
}

fn required_watch_id(meta: Option<&Dict>, op: &str) -> Result<String, OpError> {
    optional_str(meta, "watchId", op)?
        .ok_or_else(|| OpError::bad_request(format!("{op}: missing watchId in grid meta")))
}

/// A non-negative integral count (`limit`).
fn count(value: &Value, op: &str, name: &str) -> Result<usize, OpError> {
    match value {
        Value::Number(Number { value, .. }) if value.is_finite() && *value >= 0.0 => {
            // Saturating float-to-int conversion; fractions are floored.
            Ok(*value as usize)
        }
        Value::Number(_) => Err(OpError::bad_request(format!(
            "{op}: {name} must be a non-negative number"
        ))),
        other => Err(OpError::bad_request(format!(
            "{op}: {name} must be a Number, not {}",
            kind_name(other)
        ))),
    }
}

/// A Number with a time unit (none means seconds) as a [`Duration`].
fn duration(value: &Value, op: &str, name: &str) -> Result<Duration, OpError> {
    let Value::Number(number) = value else {
        return Err(OpError::bad_request(format!(
            "{op}: {name} must be a Number, not {}",
            kind_name(value)
        )));
    };
    if !number.value.is_finite() || number.value < 0.0 {
        return Err(OpError::bad_request(format!(
            "{op}: {name} must be a non-negative duration"
        )));
    }
    let unit = number.unit.map(|unit| unit.name()).unwrap_or("second");
    let seconds_per_unit = match unit {
        "millisecond" => 0.001,
        "second" => 1.0,
        "minute" => 60.0,
        "hour" => 3_600.0,
        "day" => 86_400.0,
        "week" => 604_800.0,
        other => {
            return Err(OpError::bad_request(format!(
                "{op}: {name} has unit `{other}`, not a time unit"
            )));
        }
    };
    Duration::try_from_secs_f64(number.value * seconds_per_unit)
        .map_err(|_| OpError::bad_request(format!("{op}: {name} is out of range")))
}
