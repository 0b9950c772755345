//! Typed request parsing: the wire shapes of docs/protocol.md 2.2, and a clear
#![allow(clippy::unwrap_used)]
//! BadRequest for every malformed grid.

mod common;

use std::time::Duration;

use common::{grid, r};
use hs_core::observe::ErrorKind;
use hs_core::ops::*;
use libhaystack::val::Grid;
use serde_json::json;

fn bad(result: Result<impl std::fmt::Debug, OpError>, needle: &str) {
    let err = result.expect_err("should be rejected");
    assert_eq!(err.kind(), ErrorKind::BadRequest, "{err}");
    assert!(
        err.message().contains(needle),
        "`{}` should mention `{needle}`",
        err.message()
    );
}

fn one_row(row: serde_json::Value) -> Grid {
    grid(json!({"_kind":"grid","meta":{},"cols":[],"rows":[row]}))
}

#[test]
fn op_names_round_trip() {
    for (op, name) in Op::ALL.iter().zip(STANDARD_OPS) {
        assert_eq!(op.as_str(), name);
        assert_eq!(name.parse::<Op>().unwrap(), *op);
        assert_eq!(op.to_string(), name);
    }
    let err = "hisread".parse::<Op>().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnknownOp);
    assert_eq!(err.message(), "Unknown operation: hisread");
}

#[test]
fn read_by_filter_as_captured() {
    let request = ReadRequest::from_grid(&grid(json!({"_kind":"grid","meta":{},
        "cols":[{"name":"filter"},{"name":"limit"}],
        "rows":[{"filter":"point and temp and equipRef->ahu","limit":2.0}]})))
    .unwrap();
    match request {
        ReadRequest::Filter {
            filter,
            limit,
            explain,
        } => {
            assert_eq!(filter.text(), "point and temp and equipRef->ahu");
            assert_eq!(limit, Some(2));
            assert!(!explain);
        }
        other => panic!("{other:?}"),
    }
    // Explicit null limit means unlimited.
    let request = ReadRequest::from_grid(&one_row(json!({"filter":"site","limit":null}))).unwrap();
    assert!(matches!(request, ReadRequest::Filter { limit: None, .. }));
    // `explain`, an hs extension, as a Marker or Bool.
    for (explain, expected) in [
        (json!({"_kind":"marker"}), true),
        (json!(true), true),
        (json!(false), false),
    ] {
        let request =
            ReadRequest::from_grid(&one_row(json!({"filter":"site","explain":explain}))).unwrap();
        assert!(
            matches!(request, ReadRequest::Filter { explain, .. } if explain == expected),
            "{request:?}"
        );
    }
    let refused = ReadRequest::from_grid(&one_row(json!({"filter":"site","explain":"yes"})));
    assert!(refused.is_err());
}

#[test]
fn read_by_ids_as_captured() {
    let request = ReadRequest::from_grid(&grid(json!({"_kind":"grid","meta":{},
        "cols":[{"name":"id"}],
        "rows":[{"id":r("a")},{"id":r("b")},{"id":"@c"}]})))
    .unwrap();
    match request {
        ReadRequest::Ids(ids) => {
            let ids: Vec<_> = ids.iter().map(|id| id.value().to_owned()).collect();
            assert_eq!(ids, ["a", "b", "c"]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn malformed_reads() {
    bad(ReadRequest::from_grid(&Grid::default()), "no rows");
    bad(
        ReadRequest::from_grid(&one_row(json!({"foo":1}))),
        "filter or an id",
    );
    bad(
        ReadRequest::from_grid(&one_row(json!({"filter":1}))),
        "filter must be a Str",
    );
    bad(
        ReadRequest::from_grid(&one_row(json!({"filter":""}))),
        "empty",
    );
    bad(
        ReadRequest::from_grid(&one_row(json!({"filter":"point and"}))),
        "invalid filter",
    );
    bad(
        ReadRequest::from_grid(&one_row(json!({"filter":"(site"}))),
        "invalid filter",
    );
    bad(
        ReadRequest::from_grid(&one_row(json!({"filter":"site ==="}))),
        "invalid filter",
    );
    bad(
        ReadRequest::from_grid(&one_row(json!({"filter":"site","limit":"2"}))),
        "limit must be a Number",
    );
    bad(
        ReadRequest::from_grid(&one_row(json!({"filter":"site","limit":-1}))),
        "non-negative",
    );
    bad(
        ReadRequest::from_grid(&one_row(json!({"id":1}))),
        "id must be a Ref",
    );
    bad(
        ReadRequest::from_grid(&grid(
            json!({"_kind":"grid","meta":{},"cols":[{"name":"id"}],
            "rows":[{"id":r("a")},{"id":null}]}),
        )),
        "row 1 has no id",
    );
}

#[test]
fn filter_limits() {
    let long = format!("a{}", " or a".repeat(MAX_FILTER_LEN / 5));
    assert!(long.len() > MAX_FILTER_LEN);
    bad(ParsedFilter::parse(&long), "longer than 10240");
    let just_fits = "a".repeat(MAX_FILTER_LEN);
    assert!(ParsedFilter::parse(&just_fits).is_ok());
    let deep = format!(
        "{}a{}",
        "(".repeat(MAX_FILTER_DEPTH + 1),
        ")".repeat(MAX_FILTER_DEPTH + 1)
    );
    bad(ParsedFilter::parse(&deep), "nests deeper");
    let ok = format!(
        "{}a{}",
        "(".repeat(MAX_FILTER_DEPTH),
        ")".repeat(MAX_FILTER_DEPTH)
    );
    assert!(ParsedFilter::parse(&ok).is_ok());
    // Parentheses inside strings do not count.
    let quoted = format!("dis == \"{}\"", "(".repeat(100));
    assert!(ParsedFilter::parse(&quoted).is_ok());
}

#[test]
fn nav_requests() {
    let root = NavRequest::from_grid(&grid(json!({"_kind":"grid","meta":{},
        "cols":[{"name":"navId"}],"rows":[{"navId":null}]})))
    .unwrap();
    assert_eq!(root.nav_id, None);
    assert_eq!(
        NavRequest::from_grid(&Grid::default()).unwrap().nav_id,
        None
    );
    let site = NavRequest::from_grid(&one_row(json!({"navId":"demo-site"}))).unwrap();
    assert_eq!(site.nav_id.as_deref(), Some("demo-site"));
    let by_ref = NavRequest::from_grid(&one_row(json!({"navId":r("demo-ahu1")}))).unwrap();
    assert_eq!(by_ref.nav_id.as_deref(), Some("demo-ahu1"));
    bad(
        NavRequest::from_grid(&one_row(json!({"navId":3}))),
        "navId must be a Str or Ref",
    );
}

#[test]
fn his_read_requests() {
    let single =
        HisReadRequest::from_grid(&one_row(json!({"id":r("p"),"range":"2024-01-01"}))).unwrap();
    assert_eq!(single.ids.len(), 1);
    assert!(matches!(single.range, HisRange::Date(_)));
    let batch = HisReadRequest::from_grid(&grid(json!({"_kind":"grid","meta":{"range":"today"},
        "cols":[{"name":"id"}],"rows":[{"id":r("a")},{"id":r("b")}]})))
    .unwrap();
    assert_eq!(batch.ids.len(), 2);
    assert_eq!(batch.range, HisRange::Today);
    let date_value = HisReadRequest::from_grid(&one_row(
        json!({"id":r("p"),"range":{"_kind":"date","val":"2024-01-01"}}),
    ))
    .unwrap();
    assert!(matches!(date_value.range, HisRange::Date(_)));

    bad(HisReadRequest::from_grid(&Grid::default()), "no rows");
    bad(
        HisReadRequest::from_grid(&one_row(json!({"id":r("p")}))),
        "missing range",
    );
    bad(
        HisReadRequest::from_grid(&one_row(json!({"range":"today"}))),
        "no id",
    );
    bad(
        HisReadRequest::from_grid(&one_row(json!({"id":r("p"),"range":"someday"}))),
        "invalid range",
    );
    bad(
        HisReadRequest::from_grid(&one_row(json!({"id":r("p"),"range":5}))),
        "range must be",
    );
    bad(
        HisReadRequest::from_grid(&one_row(
            json!({"id":r("p"),"range":"2024-02-01,2024-01-01"}),
        )),
        "start is after end",
    );
}

fn ts(iso: &str) -> serde_json::Value {
    json!({"_kind":"dateTime","val":iso,"tz":"New_York"})
}

#[test]
fn his_write_requests() {
    let request = HisWriteRequest::from_grid(&grid(json!({"_kind":"grid","meta":{"id":r("p")},
        "cols":[{"name":"ts"},{"name":"val"}],
        "rows":[{"ts":ts("2024-01-01T00:00:00-05:00"),"val":1.0},{"ts":ts("2024-01-01T00:15:00-05:00"),"val":2.0}]})))
    .unwrap();
    assert_eq!(request.series.len(), 1);
    assert_eq!(request.series[0].id.value(), "p");
    assert_eq!(request.series[0].items.len(), 2);

    let batch = HisWriteRequest::from_grid(&grid(json!({"_kind":"grid","meta":{},
        "cols":[{"name":"ts"},{"name":"v0","meta":{"id":r("a")}},{"name":"v1","meta":{"id":r("b")}}],
        "rows":[{"ts":ts("2024-01-01T00:00:00-05:00"),"v0":1.0,"v1":2.0},{"ts":ts("2024-01-01T00:15:00-05:00"),"v1":3.0}]})))
    .unwrap();
    assert_eq!(batch.series.len(), 2);
    assert_eq!(batch.series[0].items.len(), 1);
    assert_eq!(batch.series[1].items.len(), 2);

    bad(
        HisWriteRequest::from_grid(&grid(json!({"_kind":"grid","meta":{},
            "cols":[{"name":"ts"},{"name":"val"}],"rows":[]}))),
        "missing id",
    );
    bad(HisWriteRequest::from_grid(&Grid::default()), "missing id");
    bad(
        HisWriteRequest::from_grid(&grid(
            json!({"_kind":"grid","meta":{"id":"x y"},"cols":[],"rows":[{"val":1}]}),
        )),
        "no ts",
    );
    bad(
        HisWriteRequest::from_grid(&grid(
            json!({"_kind":"grid","meta":{"id":7},"cols":[],"rows":[]}),
        )),
        "must be a Ref",
    );
    bad(
        HisWriteRequest::from_grid(&grid(json!({"_kind":"grid","meta":{"id":r("p")},"cols":[],
            "rows":[{"ts":"2024-01-01","val":1}]}))),
        "ts must be a DateTime",
    );
    bad(
        HisWriteRequest::from_grid(&grid(json!({"_kind":"grid","meta":{"id":r("p")},"cols":[],
            "rows":[{"ts":ts("2024-01-01T00:00:00-05:00")}]}))),
        "has no val",
    );
}

#[test]
fn point_write_requests() {
    let read = PointWriteRequest::from_grid(&one_row(json!({"id":r("sp")}))).unwrap();
    assert!(matches!(read, PointWriteRequest::ReadArray { .. }));
    let write = PointWriteRequest::from_grid(&one_row(json!({"id":r("sp"),"level":8.0,
        "val":{"_kind":"number","val":68.0,"unit":"°F"},"who":"demo-user",
        "duration":{"_kind":"number","val":5.0,"unit":"min"}})))
    .unwrap();
    match write {
        PointWriteRequest::Write {
            level,
            val,
            who,
            duration,
            ..
        } => {
            assert_eq!(level, 8);
            assert!(val.is_some());
            assert_eq!(who.as_deref(), Some("demo-user"));
            assert_eq!(duration, Some(Duration::from_secs(300)));
        }
        other => panic!("{other:?}"),
    }
    let release =
        PointWriteRequest::from_grid(&one_row(json!({"id":r("sp"),"level":8,"val":null}))).unwrap();
    assert!(matches!(
        release,
        PointWriteRequest::Write { val: None, .. }
    ));

    bad(PointWriteRequest::from_grid(&Grid::default()), "no rows");
    bad(
        PointWriteRequest::from_grid(&one_row(json!({"level":8}))),
        "no id",
    );
    for level in [json!(0), json!(18.0), json!(1.5), json!(-1)] {
        bad(
            PointWriteRequest::from_grid(&one_row(json!({"id":r("sp"),"level":level}))),
            "level must be 1-17",
        );
    }
    bad(
        PointWriteRequest::from_grid(&one_row(json!({"id":r("sp"),"level":"8"}))),
        "level must be a Number",
    );
    bad(
        PointWriteRequest::from_grid(&one_row(json!({"id":r("sp"),"level":8,"who":1}))),
        "who must be a Str",
    );
    bad(
        PointWriteRequest::from_grid(&one_row(json!({"id":r("sp"),"level":8,"duration":"5min"}))),
        "duration must be a Number",
    );
    bad(
        PointWriteRequest::from_grid(&one_row(
            json!({"id":r("sp"),"level":8,"duration":{"_kind":"number","val":5.0,"unit":"°F"}}),
        )),
        "not a time unit",
    );
    bad(
        PointWriteRequest::from_grid(&one_row(json!({"id":r("sp"),"level":8,"duration":-5}))),
        "non-negative",
    );
}

#[test]
fn watch_requests() {
    let sub = WatchSubRequest::from_grid(&grid(json!({"_kind":"grid",
        "meta":{"watchDis":"demo watch","lease":{"_kind":"number","val":60.0,"unit":"s"}},
        "cols":[{"name":"id"}],"rows":[{"id":r("a")},{"id":r("b")}]})))
    .unwrap();
    assert_eq!(sub.watch_id, None);
    assert_eq!(sub.watch_dis.as_deref(), Some("demo watch"));
    assert_eq!(sub.lease, Some(Duration::from_secs(60)));
    assert_eq!(sub.ids.len(), 2);
    let extend = WatchSubRequest::from_grid(&grid(json!({"_kind":"grid",
        "meta":{"watchId":"w-1","watchDis":"x"},"cols":[{"name":"id"}],"rows":[{"id":r("c")}]})))
    .unwrap();
    assert_eq!(extend.watch_id.as_deref(), Some("w-1"));
    bad(
        WatchSubRequest::from_grid(&grid(
            json!({"_kind":"grid","meta":{"watchId":5},"cols":[],"rows":[]}),
        )),
        "watchId must be a Str",
    );
    bad(
        WatchSubRequest::from_grid(&grid(
            json!({"_kind":"grid","meta":{"lease":"long"},"cols":[],"rows":[]}),
        )),
        "lease must be a Number",
    );
    bad(
        WatchSubRequest::from_grid(&grid(
            json!({"_kind":"grid","meta":{},"cols":[{"name":"id"}],"rows":[{"id":5}]}),
        )),
        "id must be a Ref",
    );

    let unsub = WatchUnsubRequest::from_grid(&grid(json!({"_kind":"grid",
        "meta":{"watchId":"w-1","close":{"_kind":"marker"}},"cols":[],"rows":[]})))
    .unwrap();
    assert!(unsub.close);
    bad(
        WatchUnsubRequest::from_grid(&Grid::default()),
        "missing watchId",
    );

    let poll = WatchPollRequest::from_grid(&grid(json!({"_kind":"grid",
        "meta":{"watchId":"w-1","refresh":{"_kind":"marker"}},"cols":[],"rows":[]})))
    .unwrap();
    assert!(poll.refresh);
    assert!(
        !WatchPollRequest::from_grid(&grid(
            json!({"_kind":"grid","meta":{"watchId":"w-1"},"cols":[],"rows":[]})
        ))
        .unwrap()
        .refresh
    );
    bad(
        WatchPollRequest::from_grid(&Grid::default()),
        "missing watchId",
    );
    bad(
        WatchPollRequest::from_grid(&grid(
            json!({"_kind":"grid","meta":{"watchId":r("w-1")},"cols":[],"rows":[]}),
        )),
        "watchId must be a Str",
    );
}

#[test]
fn invoke_action_requests() {
    let request = InvokeActionRequest::from_grid(&grid(json!({"_kind":"grid",
        "meta":{"id":r("ahu"),"action":"reset"},"cols":[{"name":"delay"}],"rows":[{"delay":5}]})))
    .unwrap();
    assert_eq!(request.id.value(), "ahu");
    assert_eq!(request.action, "reset");
    assert!(request.args.contains_key("delay"));
    let no_args = InvokeActionRequest::from_grid(&grid(json!({"_kind":"grid",
        "meta":{"id":r("ahu"),"action":"reset"},"cols":[],"rows":[]})))
    .unwrap();
    assert!(no_args.args.is_empty());
    bad(
        InvokeActionRequest::from_grid(&Grid::default()),
        "missing id",
    );
    bad(
        InvokeActionRequest::from_grid(&grid(
            json!({"_kind":"grid","meta":{"id":r("ahu")},"cols":[],"rows":[]}),
        )),
        "missing action",
    );
    bad(
        InvokeActionRequest::from_grid(&grid(
            json!({"_kind":"grid","meta":{"id":r("ahu"),"action":1},"cols":[],"rows":[]}),
        )),
        "action must be a Str",
    );
}

#[test]
fn error_grid_shape() {
    let err = OpError::not_found("Unknown watch: w-1");
    let grid = err.to_grid();
    let meta = grid.meta.unwrap();
    assert!(meta.get("err").unwrap().is_marker());
    assert_eq!(
        meta.get("dis").unwrap(),
        &libhaystack::val::Value::make_str("Unknown watch: w-1")
    );
    assert!(grid.columns.is_empty() && grid.rows.is_empty());
    assert_eq!(err.as_str(), "not_found");
}

#[test]
fn filters_naming_their_ids_are_bounded_lookups() {
    let bound = |text: &str| ParsedFilter::parse(text).unwrap().id_bound();
    assert_eq!(bound("id==@p1"), Some(1));
    assert_eq!(bound("point and id==@p1"), Some(1));
    assert_eq!(bound("id==@a and point or id==@b"), Some(2));
    for unbounded in [
        "point",
        "id==@a or point",
        "id!=@a",
        "id==\"a\"",
        "equipRef->id==@a",
        "(id==@a or point)",
        "equipRef==@e1",
    ] {
        assert_eq!(bound(unbounded), None, "{unbounded}");
    }
}
