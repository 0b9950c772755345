//! MemoryStore behaviour, driven through `dispatch` with wire-shaped grids.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{entity, grid, ids, r};
use hs_core::clock::ManualClock;
use hs_core::observe::ErrorKind;
use hs_core::ops::{
    HaystackOps, OpError, ReadRequest, Reply, WatchInbox, WatchSubRequest, dispatch,
};
use hs_core::store::MemoryStore;
use libhaystack::val::{Dict, Grid, Number, Ref, Value};
use serde_json::{Value as Json, json};

const T0: &str = "2024-03-15T16:00:00Z";

fn clock() -> ManualClock {
    ManualClock::at(T0.parse().unwrap())
}

fn with_tag(mut dict: Dict, name: &str, value: Value) -> Dict {
    dict.insert(name.into(), value);
    dict
}

/// A site, two equips and a few points, on a manual clock.
fn store(clock: &ManualClock) -> MemoryStore {
    let store = MemoryStore::with_clock(Arc::new(clock.clone()));
    let site = with_tag(entity("s", &["site"]), "tz", Value::make_str("New_York"));
    let ahu = with_tag(
        entity("ahu", &["equip", "ahu"]),
        "siteRef",
        Value::from(Ref::from("s")),
    );
    let vav = with_tag(
        entity("vav", &["equip", "vav"]),
        "siteRef",
        Value::from(Ref::from("s")),
    );
    let point = |id: &str, equip: &str, markers: &[&str]| {
        let mut point = entity(id, markers);
        point.insert("point".into(), Value::make_marker());
        point.insert("kind".into(), Value::make_str("Number"));
        point.insert("siteRef".into(), Value::from(Ref::from("s")));
        point.insert("equipRef".into(), Value::from(Ref::from(equip)));
        point
    };
    store
        .update_entities(vec![
            site,
            ahu,
            vav,
            point("ahu-dat", "ahu", &["his", "temp", "sensor"]),
            point("ahu-sp", "ahu", &["his", "temp", "sp", "writable"]),
            point("vav-zat", "vav", &["his", "temp", "sensor"]),
            point("vav-flow", "vav", &["his", "flow", "sensor"]),
        ])
        .unwrap();
    store
}

async fn call(store: &MemoryStore, op: &str, request: Json) -> Result<Grid, OpError> {
    dispatch(store, op, grid(request))
        .await
        .map(Reply::into_grid)
}

async fn ok(store: &MemoryStore, op: &str, request: Json) -> Grid {
    call(store, op, request)
        .await
        .unwrap_or_else(|err| panic!("{op}: {err}"))
}

fn read_filter(filter: &str) -> Json {
    json!({"_kind":"grid","meta":{},"cols":[{"name":"filter"}],"rows":[{"filter":filter}]})
}

fn some(ids: &[&str]) -> Vec<Option<String>> {
    ids.iter().map(|id| Some((*id).to_owned())).collect()
}

#[tokio::test]
async fn read_by_filter_with_index_scan_and_paths() {
    let clock = clock();
    let store = store(&clock);
    let cases: &[(&str, &[&str])] = &[
        ("point and temp", &["ahu-dat", "ahu-sp", "vav-zat"]),
        ("temp and sp", &["ahu-sp"]),
        ("site or ahu", &["s", "ahu"]),
        ("point and not temp", &["vav-flow"]),
        ("not point", &["s", "ahu", "vav"]),
        ("point and equipRef->ahu", &["ahu-dat", "ahu-sp"]),
        ("equipRef->vav and flow", &["vav-flow"]),
        (
            "point and siteRef->tz == \"New_York\"",
            &["ahu-dat", "ahu-sp", "vav-zat", "vav-flow"],
        ),
        (
            "kind == \"Number\" and equipRef->siteRef->site",
            &["ahu-dat", "ahu-sp", "vav-zat", "vav-flow"],
        ),
        ("point and (flow or sp)", &["ahu-sp", "vav-flow"]),
        ("nosuchtag", &[]),
        ("equipRef->nosuch", &[]),
    ];
    for (filter, expected) in cases {
        let grid = ok(&store, "read", read_filter(filter)).await;
        assert_eq!(ids(&grid), some(expected), "{filter}");
    }
    let limited = ok(
        &store,
        "read",
        json!({"_kind":"grid","meta":{},"cols":[{"name":"filter"},{"name":"limit"}],"rows":[{"filter":"point","limit":2.0}]}),
    )
    .await;
    assert_eq!(limited.rows.len(), 2);
    let err = call(&store, "read", read_filter("point =="))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadRequest);
}

#[tokio::test]
async fn index_follows_updates() {
    let clock = clock();
    let store = store(&clock);
    store
        .set_tag("vav-flow", "temp", Value::make_marker())
        .unwrap();
    let grid = ok(&store, "read", read_filter("point and temp")).await;
    assert_eq!(ids(&grid).len(), 4);
    store.set_tag("vav-flow", "temp", Value::Null).unwrap();
    store.update_entity(entity("ahu-dat", &["point"])).unwrap();
    let grid = ok(&store, "read", read_filter("point and temp")).await;
    assert_eq!(ids(&grid), some(&["ahu-sp", "vav-zat"]));
    assert_eq!(
        store
            .set_tag("nope", "x", Value::make_marker())
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
    assert!(store.update_entity(Dict::new()).is_err());
}

#[tokio::test]
async fn read_by_ids_keeps_order_and_nulls_unknown() {
    let clock = clock();
    let store = store(&clock);
    let grid = ok(
        &store,
        "read",
        json!({"_kind":"grid","meta":{},"cols":[{"name":"id"}],"rows":[{"id":r("vav-zat")},{"id":r("no-such-id")},{"id":r("s")}]}),
    )
    .await;
    assert_eq!(
        ids(&grid),
        vec![Some("vav-zat".into()), None, Some("s".into())]
    );
    assert!(grid.rows[1].is_empty(), "unknown id gives a row of nulls");
    assert_eq!(grid.columns[0].name, "id");
    // No stale cache: a second read by other ids answers those ids.
    let second = ok(
        &store,
        "read",
        json!({"_kind":"grid","meta":{},"cols":[{"name":"id"}],"rows":[{"id":r("ahu")}]}),
    )
    .await;
    assert_eq!(ids(&second), some(&["ahu"]));
}

#[tokio::test]
async fn nav_levels() {
    let clock = clock();
    let store = store(&clock);
    let root = ok(
        &store,
        "nav",
        json!({"_kind":"grid","meta":{},"cols":[{"name":"navId"}],"rows":[{"navId":null}]}),
    )
    .await;
    assert_eq!(ids(&root), some(&["s"]));
    assert_eq!(root.rows[0].get("navId"), Some(&Value::make_str("s")));
    let site = ok(
        &store,
        "nav",
        json!({"_kind":"grid","meta":{},"cols":[],"rows":[{"navId":"s"}]}),
    )
    .await;
    assert_eq!(ids(&site), some(&["ahu", "vav"]));
    let equip = ok(
        &store,
        "nav",
        json!({"_kind":"grid","meta":{},"cols":[],"rows":[{"navId":r("vav")}]}),
    )
    .await;
    assert_eq!(ids(&equip), some(&["vav-zat", "vav-flow"]));
    assert!(equip.rows[0].get("navId").is_none(), "points are leaves");
    let leaf = ok(
        &store,
        "nav",
        json!({"_kind":"grid","meta":{},"cols":[],"rows":[{"navId":"vav-zat"}]}),
    )
    .await;
    assert!(leaf.rows.is_empty());
    let err = call(
        &store,
        "nav",
        json!({"_kind":"grid","meta":{},"cols":[],"rows":[{"navId":"nope"}]}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

fn ts(iso: &str) -> Json {
    json!({"_kind":"dateTime","val":iso,"tz":"New_York"})
}

fn num(value: f64) -> Json {
    json!({"_kind":"number","val":value,"unit":"°F"})
}

async fn write_history(store: &MemoryStore, id: &str, samples: &[(&str, f64)]) {
    let rows: Vec<Json> = samples
        .iter()
        .map(|(t, v)| json!({"ts":ts(t),"val":num(*v)}))
        .collect();
    let grid = ok(
        store,
        "hisWrite",
        json!({"_kind":"grid","meta":{"id":r(id)},"cols":[{"name":"ts"},{"name":"val"}],"rows":rows}),
    )
    .await;
    assert!(grid.rows.is_empty());
}

async fn his_read(store: &MemoryStore, id: &str, range: &str) -> Result<Grid, OpError> {
    call(
        store,
        "hisRead",
        json!({"_kind":"grid","meta":{},"cols":[{"name":"id"},{"name":"range"}],"rows":[{"id":r(id),"range":range}]}),
    )
    .await
}

fn vals(grid: &Grid) -> Vec<f64> {
    grid.rows
        .iter()
        .map(|row| match row.get("val") {
            Some(Value::Number(Number { value, .. })) => *value,
            other => panic!("{other:?}"),
        })
        .collect()
}

#[tokio::test]
async fn his_write_then_read_every_range_form() {
    let clock = clock(); // 2024-03-15 12:00 New York (EDT)
    let store = store(&clock);
    write_history(
        &store,
        "ahu-dat",
        &[
            ("2024-03-13T23:45:00-04:00", 1.0),
            ("2024-03-14T00:00:00-04:00", 2.0),
            ("2024-03-14T12:00:00-04:00", 3.0),
            ("2024-03-15T00:00:00-04:00", 4.0),
            ("2024-03-15T11:00:00-04:00", 5.0),
        ],
    )
    .await;
    // Out of order write merges and replaces.
    write_history(
        &store,
        "ahu-dat",
        &[
            ("2024-03-14T12:00:00-04:00", 30.0),
            ("2024-03-14T06:00:00-04:00", 2.5),
        ],
    )
    .await;
    assert_eq!(store.history_len("ahu-dat"), 6);

    let today = his_read(&store, "ahu-dat", "today").await.unwrap();
    assert_eq!(vals(&today), [4.0, 5.0]);
    let meta = today.meta.clone().unwrap();
    assert!(matches!(meta.get("hisStart"), Some(Value::DateTime(_))));
    assert!(matches!(meta.get("hisEnd"), Some(Value::DateTime(_))));
    assert_eq!(meta.get("id"), Some(&Value::from(Ref::from("ahu-dat"))));
    if let Some(Value::DateTime(start)) = meta.get("hisStart") {
        assert_eq!(start.to_rfc3339(), "2024-03-15T00:00:00-04:00");
    }
    assert_eq!(
        today
            .columns
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        ["ts", "val"]
    );

    assert_eq!(
        vals(&his_read(&store, "ahu-dat", "yesterday").await.unwrap()),
        [2.0, 2.5, 30.0]
    );
    assert_eq!(
        vals(&his_read(&store, "ahu-dat", "2024-03-13").await.unwrap()),
        [1.0]
    );
    assert_eq!(
        vals(
            &his_read(&store, "ahu-dat", "2024-03-13,2024-03-14")
                .await
                .unwrap()
        ),
        [1.0, 2.0, 2.5, 30.0]
    );
    assert_eq!(
        vals(
            &his_read(
                &store,
                "ahu-dat",
                "2024-03-14T00:00:00-04:00 New_York,2024-03-15T00:00:00-04:00 New_York"
            )
            .await
            .unwrap()
        ),
        [2.0, 2.5, 30.0]
    );
    assert_eq!(
        vals(
            &his_read(&store, "ahu-dat", "2024-03-15T00:00:00-04:00 New_York")
                .await
                .unwrap()
        ),
        [4.0, 5.0]
    );
    assert!(
        his_read(&store, "ahu-dat", "2020-01-01")
            .await
            .unwrap()
            .rows
            .is_empty()
    );

    // hisWrite moved curVal / curTs to the newest sample.
    let point = store.entity("ahu-dat").unwrap();
    assert_eq!(
        point
            .get("curVal")
            .map(|v| matches!(v, Value::Number(n) if n.value == 5.0)),
        Some(true)
    );
    assert!(matches!(point.get("curTs"), Some(Value::DateTime(_))));

    // Timestamps come back in the point's (site's) timezone.
    if let Some(Value::DateTime(first)) = today.rows[0].get("ts") {
        assert_eq!(first.timezone_short_name(), "New_York");
    }

    let err = his_read(&store, "nope", "today").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let err = his_read(&store, "s", "today").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadRequest);
    let err = call(
        &store,
        "hisWrite",
        json!({"_kind":"grid","meta":{"id":r("nope")},"cols":[],"rows":[]}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn batch_his_read_has_one_column_per_point() {
    let clock = clock();
    let store = store(&clock);
    write_history(
        &store,
        "ahu-dat",
        &[
            ("2024-03-15T01:00:00-04:00", 1.0),
            ("2024-03-15T02:00:00-04:00", 2.0),
        ],
    )
    .await;
    write_history(&store, "vav-zat", &[("2024-03-15T02:00:00-04:00", 20.0)]).await;
    let grid = ok(
        &store,
        "hisRead",
        json!({"_kind":"grid","meta":{"range":"today"},"cols":[{"name":"id"}],"rows":[{"id":r("ahu-dat")},{"id":r("vav-zat")}]}),
    )
    .await;
    let names: Vec<_> = grid.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["ts", "v0", "v1"]);
    assert_eq!(
        grid.columns[2].meta.as_ref().unwrap().get("id"),
        Some(&Value::from(Ref::from("vav-zat")))
    );
    assert_eq!(grid.rows.len(), 2);
    assert!(grid.rows[0].get("v1").is_none());
    assert!(grid.rows[1].get("v1").is_some());
}

fn point_write(id: &str, level: f64, val: Json, duration: Option<Json>) -> Json {
    let mut row = json!({"id":r(id),"level":level,"val":val,"who":"tester"});
    if let Some(duration) = duration {
        row["duration"] = duration;
    }
    json!({"_kind":"grid","meta":{},"cols":[],"rows":[row]})
}

fn cur_val(store: &MemoryStore, id: &str) -> Option<f64> {
    match store.entity(id).unwrap().get("curVal") {
        Some(Value::Number(n)) => Some(n.value),
        _ => None,
    }
}

#[tokio::test]
async fn point_write_levels_winner_and_release() {
    let clock = clock();
    let store = store(&clock);
    let array = ok(
        &store,
        "pointWrite",
        json!({"_kind":"grid","meta":{},"cols":[{"name":"id"}],"rows":[{"id":r("ahu-sp")}]}),
    )
    .await;
    assert_eq!(array.rows.len(), 17);
    let names: Vec<_> = array.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["level", "levelDis", "val", "who"]);

    ok(
        &store,
        "pointWrite",
        point_write("ahu-sp", 16.0, num(72.0), None),
    )
    .await;
    assert_eq!(cur_val(&store, "ahu-sp"), Some(72.0));
    ok(
        &store,
        "pointWrite",
        point_write("ahu-sp", 8.0, num(68.0), None),
    )
    .await;
    assert_eq!(cur_val(&store, "ahu-sp"), Some(68.0));
    let point = store.entity("ahu-sp").unwrap();
    assert_eq!(point.get("writeLevel"), Some(&Value::make_number(8.0)));
    ok(
        &store,
        "pointWrite",
        point_write("ahu-sp", 10.0, num(70.0), None),
    )
    .await;
    assert_eq!(
        cur_val(&store, "ahu-sp"),
        Some(68.0),
        "level 8 still wins over 10"
    );

    let array = ok(
        &store,
        "pointWrite",
        json!({"_kind":"grid","meta":{},"cols":[{"name":"id"}],"rows":[{"id":r("ahu-sp")}]}),
    )
    .await;
    assert_eq!(array.rows[7].get("who"), Some(&Value::make_str("tester")));
    assert!(array.rows[7].get("val").is_some());
    assert!(array.rows[0].get("val").is_none());

    ok(
        &store,
        "pointWrite",
        point_write("ahu-sp", 8.0, Json::Null, None),
    )
    .await;
    assert_eq!(
        cur_val(&store, "ahu-sp"),
        Some(70.0),
        "release falls back to level 10"
    );
    ok(
        &store,
        "pointWrite",
        point_write("ahu-sp", 10.0, Json::Null, None),
    )
    .await;
    ok(
        &store,
        "pointWrite",
        point_write("ahu-sp", 16.0, Json::Null, None),
    )
    .await;
    assert_eq!(cur_val(&store, "ahu-sp"), None);
    assert!(store.entity("ahu-sp").unwrap().get("writeLevel").is_none());

    let err = call(
        &store,
        "pointWrite",
        point_write("ahu-sp", 18.0, num(1.0), None),
    )
    .await
    .unwrap_err();
    assert_eq!(
        (err.kind(), err.message()),
        (ErrorKind::BadRequest, "pointWrite: level must be 1-17")
    );
    let err = call(
        &store,
        "pointWrite",
        point_write("ahu-dat", 8.0, num(1.0), None),
    )
    .await
    .unwrap_err();
    assert!(err.message().contains("not writable"));
    let err = call(
        &store,
        "pointWrite",
        point_write("nope", 8.0, num(1.0), None),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let err = call(
        &store,
        "pointWrite",
        point_write("ahu-sp", 8.0, json!("hot"), None),
    )
    .await
    .unwrap_err();
    assert!(err.message().contains("is a Number point"), "{err}");
}

#[tokio::test]
async fn point_write_duration_expires_lazily() {
    let clock = clock();
    let store = store(&clock);
    ok(
        &store,
        "pointWrite",
        point_write("ahu-sp", 16.0, num(72.0), None),
    )
    .await;
    ok(
        &store,
        "pointWrite",
        point_write(
            "ahu-sp",
            8.0,
            num(68.0),
            Some(json!({"_kind":"number","val":5.0,"unit":"min"})),
        ),
    )
    .await;
    assert_eq!(cur_val(&store, "ahu-sp"), Some(68.0));
    clock.advance(Duration::from_secs(299));
    ok(&store, "read", read_filter("point")).await;
    assert_eq!(cur_val(&store, "ahu-sp"), Some(68.0));
    clock.advance(Duration::from_secs(1));
    let grid = ok(&store, "read", read_filter("writable")).await;
    assert!(matches!(grid.rows[0].get("curVal"), Some(Value::Number(n)) if n.value == 72.0));
    assert_eq!(cur_val(&store, "ahu-sp"), Some(72.0));
}

fn watch_sub(ids: &[&str], meta: Json) -> Json {
    let rows: Vec<Json> = ids.iter().map(|id| json!({"id":r(id)})).collect();
    json!({"_kind":"grid","meta":meta,"cols":[{"name":"id"}],"rows":rows})
}

fn watch_id(grid: &Grid) -> String {
    match grid.meta.as_ref().and_then(|m| m.get("watchId")) {
        Some(Value::Str(id)) => id.as_str().to_owned(),
        other => panic!("no watchId: {other:?}"),
    }
}

fn lease_secs(grid: &Grid) -> f64 {
    match grid.meta.as_ref().and_then(|m| m.get("lease")) {
        Some(Value::Number(n)) => n.value,
        other => panic!("no lease: {other:?}"),
    }
}

async fn poll(store: &MemoryStore, watch: &str, refresh: bool) -> Result<Grid, OpError> {
    let mut meta = json!({"watchId":watch});
    if refresh {
        meta["refresh"] = json!({"_kind":"marker"});
    }
    call(
        store,
        "watchPoll",
        json!({"_kind":"grid","meta":meta,"cols":[],"rows":[]}),
    )
    .await
}

#[tokio::test]
async fn watch_sub_poll_unsub_close() {
    let clock = clock();
    let store = store(&clock);
    let sub = ok(
        &store,
        "watchSub",
        watch_sub(&["ahu-dat", "nope", "ahu-sp"], json!({"watchDis":"w"})),
    )
    .await;
    let id = watch_id(&sub);
    assert!(
        id.starts_with("w-") && id.len() == 10 && id[2..].chars().all(|c| c.is_ascii_hexdigit()),
        "{id}"
    );
    assert_eq!(lease_secs(&sub), 300.0);
    assert_eq!(
        ids(&sub),
        vec![Some("ahu-dat".into()), None, Some("ahu-sp".into())]
    );

    let first = poll(&store, &id, false).await.unwrap();
    assert!(first.rows.is_empty());
    assert_eq!(watch_id(&first), id, "watchPoll carries watchId");

    ok(
        &store,
        "pointWrite",
        point_write("ahu-sp", 8.0, num(68.0), None),
    )
    .await;
    store
        .set_tag("vav-zat", "curVal", Value::make_number(1.0))
        .unwrap(); // not watched
    let changed = poll(&store, &id, false).await.unwrap();
    assert_eq!(ids(&changed), some(&["ahu-sp"]));
    assert!(
        poll(&store, &id, false).await.unwrap().rows.is_empty(),
        "dirty set cleared"
    );

    let refresh = poll(&store, &id, true).await.unwrap();
    assert_eq!(ids(&refresh), some(&["ahu-dat", "ahu-sp"]));

    // Extend the watch.
    let extended = ok(
        &store,
        "watchSub",
        watch_sub(&["vav-zat"], json!({"watchId":id})),
    )
    .await;
    assert_eq!(watch_id(&extended), id);
    assert_eq!(ids(&poll(&store, &id, true).await.unwrap()).len(), 3);

    // Unsub one id: changes to it no longer show.
    let unsub = json!({"_kind":"grid","meta":{"watchId":id},"cols":[{"name":"id"}],"rows":[{"id":r("ahu-sp")}]});
    assert!(ok(&store, "watchUnsub", unsub).await.rows.is_empty());
    ok(
        &store,
        "pointWrite",
        point_write("ahu-sp", 8.0, num(60.0), None),
    )
    .await;
    assert!(poll(&store, &id, false).await.unwrap().rows.is_empty());

    // Close.
    let close = json!({"_kind":"grid","meta":{"watchId":id,"close":{"_kind":"marker"}},"cols":[],"rows":[]});
    ok(&store, "watchUnsub", close).await;
    let err = poll(&store, &id, false).await.unwrap_err();
    assert_eq!(
        (err.kind(), err.message().starts_with("Unknown watch")),
        (ErrorKind::NotFound, true)
    );
    assert_eq!(store.watch_count(), 0);
}

#[tokio::test]
async fn unknown_watches_are_not_found() {
    let clock = clock();
    let store = store(&clock);
    for (op, meta) in [
        ("watchPoll", json!({"watchId":"w-00000000"})),
        ("watchUnsub", json!({"watchId":"w-00000000"})),
        ("watchSub", json!({"watchId":"w-00000000"})),
    ] {
        let err = call(
            &store,
            op,
            json!({"_kind":"grid","meta":meta,"cols":[],"rows":[]}),
        )
        .await
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{op}");
        assert!(err.message().starts_with("Unknown watch"), "{op}");
    }
}

#[tokio::test]
async fn leases_are_honoured_clamped_and_expire() {
    let clock = clock();
    let store = store(&clock);
    let short = ok(
        &store,
        "watchSub",
        watch_sub(
            &["ahu-dat"],
            json!({"watchDis":"a","lease":{"_kind":"number","val":60.0,"unit":"s"}}),
        ),
    )
    .await;
    assert_eq!(lease_secs(&short), 60.0);
    let long = ok(
        &store,
        "watchSub",
        watch_sub(
            &["ahu-dat"],
            json!({"watchDis":"b","lease":{"_kind":"number","val":10.0,"unit":"day"}}),
        ),
    )
    .await;
    assert_eq!(lease_secs(&long), 3_600.0);
    let tiny = ok(
        &store,
        "watchSub",
        watch_sub(&[], json!({"watchDis":"c","lease":0})),
    )
    .await;
    assert_eq!(lease_secs(&tiny), 1.0);
    assert_eq!(store.watch_count(), 3);

    clock.advance(Duration::from_secs(50));
    // Polling renews the lease.
    poll(&store, &watch_id(&short), false).await.unwrap();
    clock.advance(Duration::from_secs(50));
    assert!(
        poll(&store, &watch_id(&short), false).await.is_ok(),
        "renewed at t=50"
    );
    clock.advance(Duration::from_secs(61));
    assert_eq!(
        poll(&store, &watch_id(&short), false)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
    assert!(poll(&store, &watch_id(&long), false).await.is_ok());
    assert_eq!(store.watch_count(), 1);
}

/// Everything pending in `inbox`, as (watch id, entity ids).
fn taken(inbox: &WatchInbox) -> Vec<(String, Vec<Option<String>>)> {
    inbox
        .take()
        .into_iter()
        .map(|event| {
            assert_eq!(watch_id(&event.grid), event.watch_id);
            (event.watch_id, ids(&event.grid))
        })
        .collect()
}

#[tokio::test]
async fn changes_go_to_the_inboxes_of_their_watches() {
    let clock = clock();
    let store = store(&clock);
    let a = watch_id(
        &ok(
            &store,
            "watchSub",
            watch_sub(&["ahu-sp", "ahu-dat"], json!({"watchDis":"a"})),
        )
        .await,
    );
    let b = watch_id(
        &ok(
            &store,
            "watchSub",
            watch_sub(&["ahu-dat"], json!({"watchDis":"b"})),
        )
        .await,
    );
    let inbox_a = Arc::new(WatchInbox::new());
    let inbox_b = Arc::new(WatchInbox::new());
    assert!(store.watch_attach(&a, &inbox_a));
    assert!(store.watch_attach(&b, &inbox_b));
    assert!(!store.watch_attach("w-unknown", &inbox_a));

    ok(
        &store,
        "pointWrite",
        point_write("ahu-sp", 8.0, num(68.0), None),
    )
    .await;
    assert_eq!(taken(&inbox_a), [(a.clone(), some(&["ahu-sp"]))]);
    assert!(inbox_b.is_empty(), "watch b does not hold ahu-sp");

    write_history(&store, "ahu-dat", &[("2024-03-15T11:00:00-04:00", 1.0)]).await;
    assert_eq!(taken(&inbox_a), [(a.clone(), some(&["ahu-dat"]))]);
    assert_eq!(taken(&inbox_b), [(b.clone(), some(&["ahu-dat"]))]);

    store
        .set_tag("vav-zat", "curVal", Value::make_number(3.0))
        .unwrap();
    assert!(
        inbox_a.is_empty() && inbox_b.is_empty(),
        "unwatched entity delivers nothing"
    );

    // Writing the same value again is no change.
    store
        .update_entity(store.entity("ahu-dat").unwrap())
        .unwrap();
    assert!(inbox_a.is_empty());

    // A dropped inbox is forgotten; the watch still tracks changes for polls.
    drop(inbox_b);
    store
        .set_tag("ahu-dat", "curVal", Value::make_number(9.0))
        .unwrap();
    assert_eq!(taken(&inbox_a), [(a.clone(), some(&["ahu-dat"]))]);
    assert_eq!(
        ids(&poll(&store, &b, false).await.unwrap()),
        some(&["ahu-dat"])
    );
}

// The issue-13 loss: a burst of writes faster than the consumer takes them
// leaves one row per entity, its latest state, in the inbox; and watchPoll
// still reports every change since the previous poll.
#[tokio::test]
async fn a_burst_of_writes_coalesces_to_the_latest_state() {
    let clock = clock();
    let store = store(&clock);
    let watch = watch_id(
        &ok(
            &store,
            "watchSub",
            watch_sub(&["ahu-sp", "ahu-dat"], json!({"watchDis":"burst"})),
        )
        .await,
    );
    let inbox = Arc::new(WatchInbox::new());
    assert!(store.watch_attach(&watch, &inbox));
    for n in 0..5_000 {
        ok(
            &store,
            "pointWrite",
            point_write("ahu-sp", 8.0, num(f64::from(n)), None),
        )
        .await;
    }
    store
        .set_tag("ahu-dat", "curVal", Value::make_number(1.0))
        .unwrap();
    let events = inbox.take();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].grid.rows.len(), 2, "one row per entity");
    let sp = events[0]
        .grid
        .rows
        .iter()
        .find(|row| row.get("id") == Some(&Value::from(Ref::from("ahu-sp"))))
        .unwrap();
    assert!(matches!(sp.get("curVal"), Some(Value::Number(n)) if n.value == 4_999.0));
    let polled = poll(&store, &watch, false).await.unwrap();
    assert_eq!(ids(&polled), some(&["ahu-dat", "ahu-sp"]));
    assert!(poll(&store, &watch, false).await.unwrap().rows.is_empty());
}

fn sub_as(ids: &[&str], user: Option<&str>) -> WatchSubRequest {
    WatchSubRequest {
        watch_id: None,
        watch_dis: Some("limit".to_owned()),
        lease: Some(Duration::from_secs(60)),
        ids: ids.iter().map(|id| Ref::from(*id)).collect(),
        owner: user.map(str::to_owned),
    }
}

#[tokio::test]
async fn watches_are_limited_per_user_and_in_total() {
    let clock = clock();
    let store = store(&clock);
    store.set_watch_limits(5, 2);
    for user in [Some("alice"), None] {
        let first = watch_id(&store.watch_sub(sub_as(&["ahu-sp"], user)).await.unwrap());
        store.watch_sub(sub_as(&["ahu-sp"], user)).await.unwrap();
        let refused = store
            .watch_sub(sub_as(&["ahu-sp"], user))
            .await
            .unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::Overloaded);
        assert!(refused.message().contains("limit per user"), "{refused}");
        assert!(
            refused.message().contains("--max-watches-per-user"),
            "{refused}"
        );
        // Extending a watch one holds is not a new watch.
        let mut extend = sub_as(&["ahu-dat"], user);
        extend.watch_id = Some(first);
        store.watch_sub(extend).await.unwrap();
    }
    // The owner comes from dispatch_as, never from the request grid.
    let as_bob = hs_core::ops::dispatch_as(
        &store,
        "watchSub",
        grid(watch_sub(&["ahu-sp"], json!({"watchDis":"bob"}))).into(),
        Some("bob"),
    )
    .await;
    assert!(as_bob.is_ok());
    let refused = store
        .watch_sub(sub_as(&["ahu-sp"], Some("carol")))
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Overloaded);
    assert!(
        refused.message().contains("limit of 5 watches"),
        "{refused}"
    );
    assert!(refused.message().contains("--max-watches"), "{refused}");
    assert_eq!(store.watch_count(), 5);
}

#[tokio::test]
async fn expired_leases_free_their_places() {
    let clock = clock();
    let store = store(&clock);
    store.set_watch_limits(10, 2);
    store
        .watch_sub(sub_as(&["ahu-sp"], Some("alice")))
        .await
        .unwrap();
    store
        .watch_sub(sub_as(&["ahu-sp"], Some("alice")))
        .await
        .unwrap();
    assert!(
        store
            .watch_sub(sub_as(&["ahu-sp"], Some("alice")))
            .await
            .is_err()
    );
    clock.advance(Duration::from_secs(61));
    assert_eq!(store.watch_count(), 0, "the 60 s leases ended");
    store
        .watch_sub(sub_as(&["ahu-sp"], Some("alice")))
        .await
        .unwrap();
    assert_eq!(store.watch_count(), 1);
}

#[tokio::test]
async fn released_watches_close_unless_another_inbox_listens() {
    let clock = clock();
    let store = store(&clock);
    let grid = store.watch_sub(sub_as(&["ahu-sp"], None)).await.unwrap();
    let watch = watch_id(&grid);
    let first = Arc::new(WatchInbox::new());
    let second = Arc::new(WatchInbox::new());
    assert!(store.watch_attach(&watch, &first));
    assert!(store.watch_attach(&watch, &second));
    store.watch_release(&watch, &first).await;
    assert_eq!(
        store.watch_count(),
        1,
        "the second connection still listens"
    );
    store
        .set_tag("ahu-sp", "curVal", Value::make_number(1.0))
        .unwrap();
    assert!(first.is_empty());
    assert!(!second.is_empty());
    store.watch_release(&watch, &second).await;
    assert_eq!(store.watch_count(), 0);
    // A watch no inbox ever attached to (pushes off) is released too.
    let grid = store.watch_sub(sub_as(&["ahu-sp"], None)).await.unwrap();
    store.watch_release(&watch_id(&grid), &first).await;
    assert_eq!(store.watch_count(), 0);
}

// A handler that blocks runs on the blocking pool: on a one-worker runtime a
// timer still fires while it sleeps, and a panicking handler is a server error.
#[tokio::test(flavor = "current_thread")]
async fn action_handlers_run_off_the_async_workers() {
    let clock = clock();
    let store = store(&clock);
    let (release, released) = std::sync::mpsc::channel::<()>();
    let released = std::sync::Mutex::new(released);
    store.register_action("block", move |_: &Dict, _: &Dict| {
        // Released by the timer only if this thread is not the runtime's.
        match released
            .lock()
            .map(|rx| rx.recv_timeout(std::time::Duration::from_secs(2)))
        {
            Ok(Ok(())) => Ok(Grid::default()),
            _ => Err(OpError::server_error("never released")),
        }
    });
    store.register_action("boom", |_: &Dict, _: &Dict| panic!("handler bug"));
    let blocked = call(
        &store,
        "invokeAction",
        json!({"_kind":"grid","meta":{"id":r("ahu"),"action":"block"},"cols":[],"rows":[]}),
    );
    let timer = async {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        release.send(()).unwrap();
    };
    let (result, ()) = tokio::join!(blocked, timer);
    assert!(result.is_ok(), "{result:?}");
    let err = call(
        &store,
        "invokeAction",
        json!({"_kind":"grid","meta":{"id":r("ahu"),"action":"boom"},"cols":[],"rows":[]}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ServerError);
}

#[tokio::test]
async fn actions_are_pluggable() {
    let clock = clock();
    let store = store(&clock);
    store.register_action("describe", |target: &Dict, args: &Dict| {
        let mut row = Dict::new();
        row.insert(
            "target".into(),
            target.get("id").cloned().unwrap_or_default(),
        );
        row.insert("args".into(), Value::make_number(args.len() as f64));
        Ok(hs_core::ops::make_grid(Dict::new(), vec![row]))
    });
    store.register_action("fail", |_: &Dict, _: &Dict| {
        Err(OpError::bad_request("nope"))
    });
    let grid = ok(
        &store,
        "invokeAction",
        json!({"_kind":"grid","meta":{"id":r("ahu"),"action":"describe"},"cols":[{"name":"a"},{"name":"b"}],"rows":[{"a":1,"b":null}]}),
    )
    .await;
    assert_eq!(
        grid.rows[0].get("target"),
        Some(&Value::from(Ref::from("ahu")))
    );
    assert_eq!(grid.rows[0].get("args"), Some(&Value::make_number(1.0)));
    let err = call(
        &store,
        "invokeAction",
        json!({"_kind":"grid","meta":{"id":r("ahu"),"action":"fail"},"cols":[],"rows":[]}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.message(), "nope");
    let err = call(
        &store,
        "invokeAction",
        json!({"_kind":"grid","meta":{"id":r("ahu"),"action":"nosuch"},"cols":[],"rows":[]}),
    )
    .await
    .unwrap_err();
    assert_eq!(
        (err.kind(), err.message()),
        (ErrorKind::NotFound, "Unknown action: nosuch")
    );
    let err = call(
        &store,
        "invokeAction",
        json!({"_kind":"grid","meta":{"id":r("ghost"),"action":"describe"},"cols":[],"rows":[]}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn dispatch_answers_every_op_name() {
    let clock = clock();
    let store = store(&clock);
    let empty = || json!({"_kind":"grid","meta":{},"cols":[],"rows":[]});
    let about = ok(&store, "about", empty()).await;
    // The tags the Haystack `about` op requires, and the optional ones hs knows.
    for tag in [
        "haystackVersion",
        "tz",
        "serverName",
        "serverTime",
        "serverBootTime",
        "productName",
        "productUri",
        "productVersion",
        "vendorName",
        "vendorUri",
    ] {
        assert!(about.rows[0].get(tag).is_some(), "about lacks {tag}");
    }
    let tz = hs_core::ops::haystack_tz_name(hs_core::ops::local_timezone());
    assert_eq!(about.rows[0].get("tz"), Some(&Value::make_str(tz)));
    assert!(libhaystack::timezone::find_timezone(tz).is_ok(), "{tz}");
    let Some(Value::DateTime(server_time)) = about.rows[0].get("serverTime") else {
        panic!("serverTime is not a DateTime");
    };
    assert_eq!(
        hs_core::ops::haystack_tz_name(server_time.timezone()),
        tz,
        "serverTime is written in the server's zone"
    );
    assert_eq!(
        about.rows[0].get("haystackVersion"),
        Some(&Value::make_str("4.0"))
    );
    let ops = ok(&store, "ops", empty()).await;
    let names: Vec<_> = ops
        .rows
        .iter()
        .map(|row| row.get("name").cloned().unwrap())
        .collect();
    assert_eq!(
        names,
        hs_core::ops::STANDARD_OPS.map(Value::make_str).to_vec()
    );
    let formats = ok(&store, "formats", empty()).await;
    assert_eq!(formats.rows.len(), 2);
    assert_eq!(ok(&store, "close", empty()).await, Grid::default());

    let sub = ok(
        &store,
        "watchSub",
        watch_sub(&["ahu-dat"], json!({"watchDis":"x"})),
    )
    .await;
    let id = watch_id(&sub);
    let requests = [
        ("read", read_filter("site")),
        ("nav", empty()),
        (
            "hisRead",
            json!({"_kind":"grid","meta":{},"cols":[],"rows":[{"id":r("ahu-dat"),"range":"today"}]}),
        ),
        (
            "hisWrite",
            json!({"_kind":"grid","meta":{"id":r("ahu-dat")},"cols":[],"rows":[]}),
        ),
        (
            "pointWrite",
            json!({"_kind":"grid","meta":{},"cols":[],"rows":[{"id":r("ahu-sp")}]}),
        ),
        (
            "watchPoll",
            json!({"_kind":"grid","meta":{"watchId":id},"cols":[],"rows":[]}),
        ),
        (
            "watchUnsub",
            json!({"_kind":"grid","meta":{"watchId":id},"cols":[],"rows":[]}),
        ),
    ];
    for (op, request) in requests {
        ok(&store, op, request).await;
    }
    store.register_action("noop", |_: &Dict, _: &Dict| Ok(Grid::default()));
    ok(
        &store,
        "invokeAction",
        json!({"_kind":"grid","meta":{"id":r("ahu"),"action":"noop"},"cols":[],"rows":[]}),
    )
    .await;

    for unknown in ["defs", "READ", "", "hisread"] {
        let err = call(&store, unknown, empty()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnknownOp);
        assert_eq!(err.message(), format!("Unknown operation: {unknown}"));
    }
    // Malformed grids are BadRequest through dispatch too.
    for op in [
        "read",
        "hisRead",
        "hisWrite",
        "pointWrite",
        "watchUnsub",
        "watchPoll",
        "invokeAction",
    ] {
        let err = call(&store, op, empty()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadRequest, "{op}");
    }
}

#[test]
fn concurrent_readers_and_writers() {
    let clock = clock();
    let store = Arc::new(store(&clock));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut tasks = Vec::new();
        for worker in 0..4 {
            let store = Arc::clone(&store);
            tasks.push(tokio::spawn(async move {
                for i in 0..200 {
                    if worker % 2 == 0 {
                        let grid = store
                            .read(ReadRequest::filter("point and temp", None).unwrap())
                            .await
                            .unwrap();
                        assert_eq!(grid.rows.len(), 3);
                    } else {
                        let level = f64::from(worker * 2 + 1);
                        let val = if i % 2 == 0 {
                            num(f64::from(i))
                        } else {
                            Json::Null
                        };
                        dispatch(
                            &*store,
                            "pointWrite",
                            grid(point_write("ahu-sp", level, val, None)),
                        )
                        .await
                        .unwrap();
                        store
                            .set_tag("vav-zat", "curVal", Value::make_number(f64::from(i)))
                            .unwrap();
                    }
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
    });
    // Every writer ended on a release, so nothing is left in the array.
    assert_eq!(cur_val(&store, "ahu-sp"), None);
    assert_eq!(cur_val(&store, "vav-zat"), Some(199.0));
}
