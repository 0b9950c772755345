//! Request grids for the 13 standard ops, shaped exactly as haystack-py's
//! client sends them (docs/protocol.md 2.2, identical over HTTP and WebSocket): the
//! client side of the typed requests that [`ops`](super) parses. Both hs
//! clients build their requests here; use them with a client's raw `call`.

use std::time::Duration;

use crate::value::{Column, Dict, Grid, Number, Ref, Value, get_unit};

use super::HisItem;

fn grid(meta: Option<Dict>, names: &[&str], rows: Vec<Dict>) -> Grid {
    Grid {
        meta: meta.filter(|meta| !meta.is_empty()),
        columns: names
            .iter()
            .map(|name| Column {
                name: (*name).to_owned(),
                meta: None,
            })
            .collect(),
        rows,
        ..Grid::default()
    }
}

fn dict<const N: usize>(pairs: [(&str, Value); N]) -> Dict {
    let mut dict = Dict::new();
    for (name, value) in pairs {
        dict.insert(name.to_owned(), value);
    }
    dict
}

fn id_rows(ids: &[Ref]) -> Vec<Dict> {
    ids.iter()
        .map(|id| dict([("id", Value::Ref(id.clone()))]))
        .collect()
}

/// `duration` as a Number of seconds, with the unit `s`.
pub fn seconds(duration: Duration) -> Number {
    let secs = duration.as_secs_f64();
    match get_unit("s") {
        Some(unit) => Number::make_with_unit(secs, unit),
        None => Number::make(secs),
    }
}

/// The empty grid sent by `about`, `ops`, `formats` and `close`.
pub fn empty() -> Grid {
    crate::codec::empty_grid()
}

/// `read` by filter: cols `filter`, `limit`; `limit` left out when unlimited.
pub fn read_filter(filter: &str, limit: Option<usize>) -> Grid {
    let mut row = dict([("filter", Value::make_str(filter))]);
    if let Some(limit) = limit {
        // The reference sends the limit as a float number (`2.0`).
        row.insert("limit".to_owned(), Value::make_number(limit as f64));
    }
    grid(None, &["filter", "limit"], vec![row])
}

/// `read` by filter that also asks for the plan (an hs extension, see
/// [`ReadRequest::Filter`](super::ReadRequest::Filter)): [`read_filter`]'s
/// grid with an `explain` marker.
pub fn read_explain(filter: &str, limit: Option<usize>) -> Grid {
    let mut grid = read_filter(filter, limit);
    let explain = super::ReadRequest::EXPLAIN;
    for row in &mut grid.rows {
        row.insert(explain.to_owned(), Value::make_marker());
    }
    grid.columns.push(Column {
        name: explain.to_owned(),
        meta: None,
    });
    grid
}

/// `read` by ids: col `id`, one row per id.
pub fn read_ids(ids: &[Ref]) -> Grid {
    grid(None, &["id"], id_rows(ids))
}

/// `nav`: col `navId`; no value for the root.
pub fn nav(nav_id: Option<&str>) -> Grid {
    let mut row = Dict::new();
    if let Some(nav_id) = nav_id {
        row.insert("navId".to_owned(), Value::make_str(nav_id));
    }
    grid(None, &["navId"], vec![row])
}

/// `hisRead` of one point over `range` (`today`, `2024-01-01`,
/// `2024-01-01,2024-01-31`, ...): cols `id`, `range`.
pub fn his_read(id: &Ref, range: &str) -> Grid {
    let row = dict([
        ("id", Value::Ref(id.clone())),
        ("range", Value::make_str(range)),
    ]);
    grid(None, &["id", "range"], vec![row])
}

/// `hisWrite`: meta `id`, cols `ts`, `val`.
pub fn his_write(id: &Ref, items: &[HisItem]) -> Grid {
    let rows = items
        .iter()
        .map(|item| dict([("ts", Value::DateTime(item.ts)), ("val", item.val.clone())]))
        .collect();
    grid(
        Some(dict([("id", Value::Ref(id.clone()))])),
        &["ts", "val"],
        rows,
    )
}

/// `pointWrite` reading the priority array of `id`: col `id`.
pub fn point_write_array(id: &Ref) -> Grid {
    read_ids(std::slice::from_ref(id))
}

/// `pointWrite` at `level` (1..=17); `val: None` releases the level;
/// `duration` (a Number with a time unit, see [`seconds`]) limits the write.
pub fn point_write(
    id: &Ref,
    level: u8,
    val: Option<&Value>,
    who: &str,
    duration: Option<Number>,
) -> Grid {
    let mut row = dict([
        ("id", Value::Ref(id.clone())),
        ("level", Value::make_number(f64::from(level))),
    ]);
    if let Some(val) = val {
        row.insert("val".to_owned(), val.clone());
    }
    row.insert("who".to_owned(), Value::make_str(who));
    if let Some(duration) = duration {
        row.insert("duration".to_owned(), Value::Number(duration));
    }
    grid(None, &["id", "level", "val", "who", "duration"], vec![row])
}

/// `watchSub`: meta `watchId` (to extend an open watch) and/or `watchDis`
/// (to name a new one) and `lease` in seconds; col `id`.
pub fn watch_sub(
    watch_id: Option<&str>,
    watch_dis: Option<&str>,
    ids: &[Ref],
    lease: Option<Duration>,
) -> Grid {
    let mut meta = Dict::new();
    if let Some(watch_id) = watch_id {
        meta.insert("watchId".to_owned(), Value::make_str(watch_id));
    }
    if let Some(watch_dis) = watch_dis {
        meta.insert("watchDis".to_owned(), Value::make_str(watch_dis));
    }
    if let Some(lease) = lease {
        meta.insert("lease".to_owned(), Value::Number(seconds(lease)));
    }
    grid(Some(meta), &["id"], id_rows(ids))
}

/// `watchUnsub`: meta `watchId` (plus `close` to drop the watch); col `id`.
pub fn watch_unsub(watch_id: &str, ids: &[Ref], close: bool) -> Grid {
    let mut meta = dict([("watchId", Value::make_str(watch_id))]);
    if close {
        meta.insert("close".to_owned(), Value::make_marker());
    }
    grid(Some(meta), &["id"], id_rows(ids))
}

/// `watchPoll`: meta `watchId` (plus `refresh` for everything); no columns.
pub fn watch_poll(watch_id: &str, refresh: bool) -> Grid {
    let mut meta = dict([("watchId", Value::make_str(watch_id))]);
    if refresh {
        meta.insert("refresh".to_owned(), Value::make_marker());
    }
    grid(Some(meta), &[], Vec::new())
}

/// `invokeAction`: meta `id`, `action`; the arguments as the columns of one
/// row, or no columns when there are none.
pub fn invoke_action(id: &Ref, action: &str, args: &Dict) -> Grid {
    let meta = dict([
        ("id", Value::Ref(id.clone())),
        ("action", Value::make_str(action)),
    ]);
    if args.is_empty() {
        return grid(Some(meta), &[], Vec::new());
    }
    let names: Vec<&str> = args.keys().map(String::as_str).collect();
    grid(Some(meta), &names, vec![args.clone()])
}

/// The `watchId` in a grid's meta (a `watchSub` response or request).
pub fn watch_id(grid: &Grid) -> Option<String> {
    match grid.meta.as_ref()?.get("watchId")? {
        Value::Str(s) => Some(s.value().to_owned()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use crate::codec::{Format, encode_grid};

    use super::*;

    fn json(grid: &Grid) -> String {
        encode_grid(grid, Format::Json).unwrap()
    }

    #[test]
    fn grids_match_the_reference_client() {
        // Bodies captured from haystack-py (http-all-ops-json); the reference
        // writes null cells, which hs leaves out (docs/protocol.md 1.1: same meaning).
        assert_eq!(
            json(&read_filter("point and temp and equipRef->ahu", Some(2))),
            r#"{"_kind":"grid","meta":{},"cols":[{"name":"filter"},{"name":"limit"}],"rows":[{"filter":"point and temp and equipRef->ahu","limit":2.0}]}"#
        );
        assert_eq!(
            json(&read_ids(&[
                Ref::make("demo-ahu1-dat", None),
                Ref::make("no-such-id", None)
            ])),
            r#"{"_kind":"grid","meta":{},"cols":[{"name":"id"}],"rows":[{"id":{"_kind":"ref","val":"demo-ahu1-dat"}},{"id":{"_kind":"ref","val":"no-such-id"}}]}"#
        );
        assert_eq!(
            json(&nav(Some("demo-site"))),
            r#"{"_kind":"grid","meta":{},"cols":[{"name":"navId"}],"rows":[{"navId":"demo-site"}]}"#
        );
        assert_eq!(
            json(&his_read(&Ref::make("demo-ahu2-dat", None), "2024-01-01")),
            r#"{"_kind":"grid","meta":{},"cols":[{"name":"id"},{"name":"range"}],"rows":[{"id":{"_kind":"ref","val":"demo-ahu2-dat"},"range":"2024-01-01"}]}"#
        );
        assert_eq!(
            json(&watch_poll("w-4b14bc42", true)),
            r#"{"_kind":"grid","meta":{"watchId":"w-4b14bc42","refresh":{"_kind":"marker"}},"cols":[],"rows":[]}"#
        );
        assert_eq!(
            json(&watch_unsub("w-4b14bc42", &[], true)),
            r#"{"_kind":"grid","meta":{"watchId":"w-4b14bc42","close":{"_kind":"marker"}},"cols":[{"name":"id"}],"rows":[]}"#
        );
        let captured = r#"{"_kind":"grid","meta":{"watchDis":"http watch","lease":{"_kind":"number","val":60.0,"unit":"s"}},"cols":[{"name":"id"}],"rows":[{"id":{"_kind":"ref","val":"demo-ahu1-dat"}}]}"#;
        assert_eq!(
            watch_sub(
                None,
                Some("http watch"),
                &[Ref::make("demo-ahu1-dat", None)],
                Some(Duration::from_secs(60))
            ),
            crate::codec::decode_grid(captured.as_bytes(), Format::Json).unwrap()
        );
        let mut args = Dict::new();
        args.insert("level".to_owned(), Value::make_number(8.0));
        assert_eq!(
            json(&invoke_action(
                &Ref::make("demo-ahu2-sp", None),
                "reset",
                &args
            )),
            r#"{"_kind":"grid","meta":{"id":{"_kind":"ref","val":"demo-ahu2-sp"},"action":"reset"},"cols":[{"name":"level"}],"rows":[{"level":8.0}]}"#
        );
    }

    #[test]
    fn point_write_rows() {
        let id = Ref::make("demo-ahu2-sp", None);
        let write = point_write(
            &id,
            8,
            Some(&Value::make_number(72.0)),
            "demo-user",
            Some(seconds(Duration::from_secs(30))),
        );
        assert_eq!(write.columns.len(), 5);
        assert_eq!(write.rows[0].get("level"), Some(&Value::make_number(8.0)));
        let release = point_write(&id, 8, None, "demo-user", None);
        assert!(release.rows[0].get("val").is_none());
        assert_eq!(point_write_array(&id).rows.len(), 1);
    }
}
