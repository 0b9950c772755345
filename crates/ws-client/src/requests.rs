//! Request grids for the 13 standard ops, shaped exactly as haystack-py's
//! client sends them (PROTOCOL.md 2.2). Use them with `call` and `batch`.

use std::time::Duration;

use hs_core::value::get_unit;
use hs_core::value::{Column, DateTime, Dict, Grid, Number, Ref, Value};

use crate::wire;

fn grid(meta: Option<Dict>, cols: &[&str], rows: Vec<Dict>) -> Grid {
    let mut g = wire::empty_grid();
    g.meta = meta.filter(|m| !m.is_empty());
    g.columns = cols
        .iter()
        .map(|name| Column {
            name: (*name).to_string(),
            meta: None,
        })
        .collect();
    g.rows = rows;
    g
}

fn dict<const N: usize>(pairs: [(&str, Value); N]) -> Dict {
    let mut d = Dict::new();
    for (k, v) in pairs {
        d.insert(k.to_string(), v);
    }
    d
}

fn number(n: f64) -> Value {
    Value::Number(Number::make(n))
}

/// The empty grid sent by `about`, `ops`, `formats` and `close`.
pub fn empty() -> Grid {
    wire::empty_grid()
}

/// `read` by filter: cols `filter`, `limit`; `limit` omitted when `None`.
pub fn read_filter(filter: &str, limit: Option<usize>) -> Grid {
    let mut row = dict([("filter", Value::make_str(filter))]);
    if let Some(limit) = limit {
        row.insert("limit".into(), number(limit as f64));
    }
    grid(None, &["filter", "limit"], vec![row])
}

/// `read` by ids: col `id`, one row per id.
pub fn read_ids(ids: &[Ref]) -> Grid {
    grid(None, &["id"], id_rows(ids))
}

fn id_rows(ids: &[Ref]) -> Vec<Dict> {
    ids.iter()
        .map(|id| dict([("id", Value::Ref(id.clone()))]))
        .collect()
}

/// `nav`: `navId` null for the root, else the given id as a Str.
pub fn nav(nav_id: Option<&str>) -> Grid {
    let value = nav_id.map_or(Value::Null, Value::make_str);
    grid(None, &["navId"], vec![dict([("navId", value)])])
}

/// `hisRead` of one point over `range` (`"today"`, `"2024-01-01"`,
/// `"2024-01-01,2024-01-31"`, ...).
pub fn his_read(id: &Ref, range: &str) -> Grid {
    grid(
        None,
        &["id", "range"],
        vec![dict([
            ("id", Value::Ref(id.clone())),
            ("range", Value::make_str(range)),
        ])],
    )
}

/// `hisWrite`: meta `id`, cols `ts`, `val`.
pub fn his_write(id: &Ref, samples: &[(DateTime, Value)]) -> Grid {
    let rows = samples
        .iter()
        .map(|(ts, val)| dict([("ts", Value::DateTime(*ts)), ("val", val.clone())]))
        .collect();
    grid(
        Some(dict([("id", Value::Ref(id.clone()))])),
        &["ts", "val"],
        rows,
    )
}

/// `pointWrite` reading the priority array of `id`.
pub fn point_write_array(id: &Ref) -> Grid {
    grid(None, &["id"], id_rows(std::slice::from_ref(id)))
}

/// `pointWrite` at `level` (1..=17); `val: None` releases the level.
pub fn point_write(
    id: &Ref,
    level: u8,
    val: Option<Value>,
    who: &str,
    duration: Option<Number>,
) -> Grid {
    let mut row = dict([
        ("id", Value::Ref(id.clone())),
        ("level", number(f64::from(level))),
        ("val", val.unwrap_or(Value::Null)),
        ("who", Value::make_str(who)),
    ]);
    if let Some(duration) = duration {
        row.insert("duration".into(), Value::Number(duration));
    }
    grid(None, &["id", "level", "val", "who", "duration"], vec![row])
}

/// `watchSub`: a new watch (`watch_id: None`) or more ids for an existing
/// one; `lease` is sent in seconds.
pub fn watch_sub(watch_id: Option<&str>, dis: &str, ids: &[Ref], lease: Option<Duration>) -> Grid {
    let mut meta = Dict::new();
    if let Some(watch_id) = watch_id {
        meta.insert("watchId".into(), Value::make_str(watch_id));
    }
    meta.insert("watchDis".into(), Value::make_str(dis));
    if let Some(lease) = lease {
        let secs = lease.as_secs_f64();
        let value = match get_unit("s") {
            Some(unit) => Value::Number(Number::make_with_unit(secs, unit)),
            None => number(secs),
        };
        meta.insert("lease".into(), value);
    }
    grid(Some(meta), &["id"], id_rows(ids))
}

/// `watchUnsub`: remove `ids` from the watch, or drop it with `close`.
pub fn watch_unsub(watch_id: &str, ids: &[Ref], close: bool) -> Grid {
    let mut meta = dict([("watchId", Value::make_str(watch_id))]);
    if close {
        meta.insert("close".into(), Value::Marker);
    }
    grid(Some(meta), &["id"], id_rows(ids))
}

/// `watchPoll`: changes since the last poll, or everything with `refresh`.
pub fn watch_poll(watch_id: &str, refresh: bool) -> Grid {
    let mut meta = dict([("watchId", Value::make_str(watch_id))]);
    if refresh {
        meta.insert("refresh".into(), Value::Marker);
    }
    grid(Some(meta), &[], Vec::new())
}

/// `invokeAction`: meta `id`, `action`; `args` become the columns of one
/// row (no row when empty).
pub fn invoke_action(id: &Ref, action: &str, args: Dict) -> Grid {
    let meta = dict([
        ("id", Value::Ref(id.clone())),
        ("action", Value::make_str(action)),
    ]);
    if args.is_empty() {
        return grid(Some(meta), &[], Vec::new());
    }
    let cols: Vec<String> = args.keys().cloned().collect();
    let cols: Vec<&str> = cols.iter().map(String::as_str).collect();
    grid(Some(meta), &cols, vec![args])
}

/// The `watchId` in a grid's meta (a `watchSub` response or request).
pub fn watch_id(grid: &Grid) -> Option<String> {
    match grid.meta.as_ref()?.get("watchId")? {
        Value::Str(s) => Some(s.value().to_string()),
        _ => None,
    }
}
