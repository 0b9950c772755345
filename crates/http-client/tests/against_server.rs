//! `HttpClient` against the real `hs_http_server::HttpServer` on a real
//! socket (127.0.0.1, port 0): every op in JSON and in Zinc with its real
//! results, and every auth path (wrong password, unknown user, no
//! credentials, expired and revoked tokens, a reader refused a write).
//!
//! A `RecordingObserver` sits on each side. Each call must end in exactly one
//! `on_request` or `on_error` on the client and one on the server, with the
//! same op name; the error types are the stable ones, and the same on both
//! sides for an error grid (the server names its kind in the grid's
//! `errKind`; an unknown op, answered `404` without a grid, is `unknown_op`
//! on the server and `not_found` on the client). The
//! server also reports each SCRAM handshake step as op `auth`, which the
//! tests check separately.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use hs_core::auth::{AuthFailure, Role, ScramServer, TokenStore, UserStore};
use hs_core::clock::ManualClock;
use hs_core::codec::Format;
use hs_core::observe::{RecordedEvent, RecordingObserver};
use hs_core::ops::{HisItem, OpError, STANDARD_OPS, make_grid};
use hs_core::store::MemoryStore;
use hs_core::value::{DateTime, Dict, Grid, Ref, Value};
use hs_http_client::{HaystackClient, HttpClient, HttpClientError};
use hs_http_server::{HttpServer, HttpServerBuilder};

const OPERATOR: &str = "operator";
const OPERATOR_PASSWORD: &str = "operator-pass";
const READER: &str = "reader";
const READER_PASSWORD: &str = "reader-pass";
/// The client refuses fewer PBKDF2 iterations than this.
const ITERATIONS: u32 = 4096;
const TOKEN_TTL: Duration = Duration::from_secs(60);
/// Bound of every wait for server events.
const WAIT: Duration = Duration::from_secs(5);

/// A site, two air handlers, a history point and a writable point.
const ENTITIES: &str = r#"{"_kind":"grid","meta":{"ver":"3.0"},
 "cols":[{"name":"id"},{"name":"dis"},{"name":"site"},{"name":"equip"},{"name":"point"},
   {"name":"his"},{"name":"writable"},{"name":"temp"},{"name":"sp"},{"name":"kind"},
   {"name":"unit"},{"name":"tz"},{"name":"siteRef"},{"name":"equipRef"}],
 "rows":[
  {"id":{"_kind":"ref","val":"s1"},"dis":"Site One","site":{"_kind":"marker"},"tz":"New_York"},
  {"id":{"_kind":"ref","val":"e1"},"dis":"AHU-1","equip":{"_kind":"marker"},
   "siteRef":{"_kind":"ref","val":"s1"}},
  {"id":{"_kind":"ref","val":"e2"},"dis":"AHU-2","equip":{"_kind":"marker"},
   "siteRef":{"_kind":"ref","val":"s1"}},
  {"id":{"_kind":"ref","val":"p-temp"},"dis":"AHU-1 Temp","point":{"_kind":"marker"},
   "his":{"_kind":"marker"},"temp":{"_kind":"marker"},"kind":"Number","unit":"°F",
   "tz":"New_York","siteRef":{"_kind":"ref","val":"s1"},"equipRef":{"_kind":"ref","val":"e1"}},
  {"id":{"_kind":"ref","val":"p-sp"},"dis":"AHU-1 Setpoint","point":{"_kind":"marker"},
   "writable":{"_kind":"marker"},"sp":{"_kind":"marker"},"kind":"Number","unit":"°F",
   "tz":"New_York","siteRef":{"_kind":"ref","val":"s1"},"equipRef":{"_kind":"ref","val":"e1"}}
 ]}"#;

fn ts(rfc3339: &str) -> DateTime {
    DateTime::parse_from_rfc3339_with_timezone(rfc3339, "New_York").unwrap()
}

fn store() -> Arc<MemoryStore> {
    let store = MemoryStore::new().with_server_name("e2e");
    assert_eq!(store.load_json_str(ENTITIES).unwrap(), 5);
    let samples = [
        ("2024-01-01T00:00:00-05:00", 70.0),
        ("2024-01-01T01:00:00-05:00", 71.0),
        ("2024-01-01T02:00:00-05:00", 72.0),
        ("2024-01-02T00:00:00-05:00", 73.0),
    ];
    store
        .set_history(
            "p-temp",
            samples
                .iter()
                .map(|(t, v)| (ts(t), Value::make_number(*v)))
                .collect(),
        )
        .unwrap();
    // Echoes its target and its `by` argument.
    store.register_action("bump", |target: &Dict, args: &Dict| {
        let mut row = Dict::new();
        row.insert(
            "target".into(),
            target.get("id").cloned().unwrap_or_default(),
        );
        let by = args
            .get("by")
            .cloned()
            .ok_or_else(|| OpError::bad_request("bump: no by"))?;
        row.insert("by".into(), by);
        Ok(make_grid(Dict::new(), vec![row]))
    });
    Arc::new(store)
}

/// A running server with SCRAM users and a token store on a manual clock.
struct Harness {
    server: HttpServer,
    store: Arc<MemoryStore>,
    tokens: TokenStore,
    /// Moves the token store's time (expiry without sleeping).
    clock: ManualClock,
    events: Arc<RecordingObserver>,
}

impl Harness {
    async fn start() -> Harness {
        Self::start_with(|builder| builder).await
    }

    /// A harness whose server builder `configure` adjusts.
    async fn start_with(configure: impl FnOnce(HttpServerBuilder) -> HttpServerBuilder) -> Harness {
        let users = UserStore::new().with_iterations(ITERATIONS);
        users.add_user(OPERATOR, OPERATOR_PASSWORD, Role::Operator);
        users.add_user(READER, READER_PASSWORD, Role::Reader);
        let clock = ManualClock::new();
        let tokens = TokenStore::new()
            .with_ttl(TOKEN_TTL)
            .with_clock(Arc::new(clock.clone()));
        let store = store();
        let events = Arc::new(RecordingObserver::new());
        let builder = HttpServer::builder(store.clone())
            .auth(ScramServer::new(users, tokens.clone()))
            .observer(events.clone());
        let server = configure(builder).bind("127.0.0.1:0").await.unwrap();
        Harness {
            server,
            store,
            tokens,
            clock,
            events,
        }
    }

    fn client(
        &self,
        user: &str,
        password: &str,
        format: Format,
        recorder: &Arc<RecordingObserver>,
    ) -> HttpClient {
        HttpClient::builder(self.server.base_url())
            .credentials(user, password)
            .format(format)
            .timeout(Duration::from_secs(10))
            .observer(recorder.clone())
            .build()
            .unwrap()
    }

    /// The server's events, once there are at least `n` of them.
    fn server_outcomes(&self, n: usize) -> Vec<Outcome> {
        assert!(
            self.events.wait_for_count(n, WAIT),
            "expected {n} server events, got {:?}",
            self.events.events()
        );
        outcomes(&self.events)
    }

    async fn stop(self) {
        self.server.shutdown().await.unwrap();
    }
}

/// An op and how it ended: `None` for `on_request`, the error type for
/// `on_error`.
type Outcome = (String, Option<String>);

fn outcomes(recorder: &RecordingObserver) -> Vec<Outcome> {
    recorder
        .events()
        .into_iter()
        .map(|event| match event {
            RecordedEvent::Request { op, .. } => (op, None),
            RecordedEvent::Error { op, error_type } => (op, Some(error_type)),
            other => panic!("an HTTP transport fired {other:?}"),
        })
        .collect()
}

fn ok(op: &str) -> Outcome {
    (op.to_owned(), None)
}

fn err(op: &str, kind: &str) -> Outcome {
    (op.to_owned(), Some(kind.to_owned()))
}

/// The three handshake steps of one login, as the server reports them.
fn login() -> Vec<Outcome> {
    vec![ok("auth"); 3]
}

/// What each side should have observed, call by call.
#[derive(Default)]
struct Ledger {
    client: Vec<Outcome>,
    server: Vec<Outcome>,
}

impl Ledger {
    fn ok(&mut self, op: &str) {
        self.client.push(ok(op));
        self.server.push(ok(op));
    }

    fn err(&mut self, op: &str, client_kind: &str, server_kind: &str) {
        self.client.push(err(op, client_kind));
        self.server.push(err(op, server_kind));
    }
}

fn text(value: Option<&Value>) -> String {
    match value {
        Some(Value::Str(s)) => s.value().to_owned(),
        other => panic!("not a Str: {other:?}"),
    }
}

fn number(value: Option<&Value>) -> f64 {
    match value {
        Some(Value::Number(n)) => n.value,
        other => panic!("not a Number: {other:?}"),
    }
}

fn ref_id(value: Option<&Value>) -> String {
    match value {
        Some(Value::Ref(r)) => r.value().to_owned(),
        other => panic!("not a Ref: {other:?}"),
    }
}

/// The rows' ids, sorted.
fn ids(grid: &Grid) -> Vec<String> {
    let mut ids: Vec<String> = grid.rows.iter().map(|r| ref_id(r.get("id"))).collect();
    ids.sort();
    ids
}

fn values(grid: &Grid, column: &str) -> Vec<f64> {
    grid.rows.iter().map(|r| number(r.get(column))).collect()
}

fn reference(id: &str) -> Ref {
    Ref::make(id, None)
}

fn error_grid(error: HttpClientError) -> String {
    match error {
        HttpClientError::ErrorGrid { dis, .. } => dis,
        other => panic!("not an error grid: {other:?}"),
    }
}

async fn every_op(format: Format) {
    let h = Harness::start().await;
    let recorder = Arc::new(RecordingObserver::new());
    let client = h.client(OPERATOR, OPERATOR_PASSWORD, format, &recorder);
    assert_eq!(client.format(), format);
    let (temp, sp, nope) = (reference("p-temp"), reference("p-sp"), reference("nope"));
    let mut ledger = Ledger::default();

    // about, ops, formats.
    let about = client.about().await.unwrap();
    assert_eq!(about.rows.len(), 1);
    assert_eq!(text(about.rows[0].get("serverName")), "e2e");
    assert_eq!(text(about.rows[0].get("productName")), "hs");
    assert!(client.is_logged_in());
    ledger.ok("about");
    let ops = client.ops().await.unwrap();
    let names: BTreeSet<String> = ops.rows.iter().map(|r| text(r.get("name"))).collect();
    assert_eq!(names, STANDARD_OPS.iter().map(|s| s.to_string()).collect());
    ledger.ok("ops");
    let formats = client.formats().await.unwrap();
    let mimes: BTreeSet<String> = formats.rows.iter().map(|r| text(r.get("mime"))).collect();
    assert!(mimes.contains("application/json"), "{mimes:?}");
    assert!(mimes.contains("text/zinc"), "{mimes:?}");
    ledger.ok("formats");

    // read by filter and by ids; an unknown id is a row without tags.
    let sites = client.read_filter("site", None).await.unwrap();
    assert_eq!(ids(&sites), ["s1"]);
    assert_eq!(text(sites.rows[0].get("tz")), "New_York");
    let points = client.read_filter("point", None).await.unwrap();
    assert_eq!(ids(&points), ["p-sp", "p-temp"]);
    assert!(points.rows.iter().all(|r| text(r.get("unit")) == "°F"));
    let one = client.read_filter("point", Some(1)).await.unwrap();
    assert_eq!(one.rows.len(), 1);
    let by_path = client
        .read_filter("point and equipRef->dis == \"AHU-1\"", None)
        .await
        .unwrap();
    assert_eq!(ids(&by_path), ["p-sp", "p-temp"]);
    let none = client
        .read_filter("point and equipRef->dis == \"AHU-2\"", None)
        .await
        .unwrap();
    assert!(none.rows.is_empty());
    let by_id = client
        .read_ids(&[temp.clone(), nope.clone(), reference("s1")])
        .await
        .unwrap();
    assert_eq!(by_id.rows.len(), 3);
    assert_eq!(ref_id(by_id.rows[0].get("id")), "p-temp");
    assert!(
        by_id.rows[1].values().all(Value::is_null),
        "unknown id: {:?}",
        by_id.rows[1]
    );
    assert_eq!(ref_id(by_id.rows[2].get("id")), "s1");
    for _ in 0..6 {
        ledger.ok("read");
    }
    let bad_filter = client
        .read_filter("point and", None)
        .await
        .unwrap_err()
        .downcast::<HttpClientError>()
        .unwrap();
    assert!(error_grid(bad_filter).to_lowercase().contains("filter"));
    ledger.err("read", "bad_request", "bad_request");

    // nav down the tree: site, equips, points.
    let roots = client.nav(None).await.unwrap();
    assert_eq!(ids(&roots), ["s1"]);
    assert_eq!(text(roots.rows[0].get("navId")), "s1");
    let equips = client.nav(Some("s1")).await.unwrap();
    assert_eq!(ids(&equips), ["e1", "e2"]);
    let nav_ids: BTreeSet<String> = equips.rows.iter().map(|r| text(r.get("navId"))).collect();
    assert_eq!(nav_ids, BTreeSet::from(["e1".to_owned(), "e2".to_owned()]));
    let equip_points = client.nav(Some("e1")).await.unwrap();
    assert_eq!(ids(&equip_points), ["p-sp", "p-temp"]);
    assert!(client.nav(Some("e2")).await.unwrap().rows.is_empty());
    for _ in 0..4 {
        ledger.ok("nav");
    }
    let unknown_nav = client
        .nav(Some("nope"))
        .await
        .unwrap_err()
        .downcast::<HttpClientError>()
        .unwrap();
    assert!(error_grid(unknown_nav).contains("nope"));
    ledger.err("nav", "not_found", "not_found");

    // hisRead ranges.
    let day = client.his_read(&temp, "2024-01-01").await.unwrap();
    assert_eq!(values(&day, "val"), [70.0, 71.0, 72.0]);
    assert_eq!(ref_id(day.meta.as_ref().unwrap().get("id")), "p-temp");
    let first = match day.rows[0].get("ts") {
        Some(Value::DateTime(first)) => *first,
        other => panic!("ts: {other:?}"),
    };
    assert_eq!(first, ts("2024-01-01T00:00:00-05:00"));
    let two_days = client
        .his_read(&temp, "2024-01-01,2024-01-02")
        .await
        .unwrap();
    assert_eq!(values(&two_days, "val"), [70.0, 71.0, 72.0, 73.0]);
    let empty = client.his_read(&temp, "2024-01-03").await.unwrap();
    assert!(empty.rows.is_empty());
    // Instants: start included, end excluded; a lone start runs to now.
    let span = client
        .his_read(
            &temp,
            "2024-01-01T00:30:00-05:00 New_York,2024-01-01T02:00:00-05:00 New_York",
        )
        .await
        .unwrap();
    assert_eq!(values(&span, "val"), [71.0]);
    let since = client
        .his_read(&temp, "2024-01-01T01:30:00-05:00 New_York")
        .await
        .unwrap();
    assert_eq!(values(&since, "val"), [72.0, 73.0]);
    for _ in 0..5 {
        ledger.ok("hisRead");
    }
    let not_his = client
        .his_read(&sp, "2024-01-01")
        .await
        .unwrap_err()
        .downcast::<HttpClientError>()
        .unwrap();
    assert!(error_grid(not_his).contains("his"));
    ledger.err("hisRead", "bad_request", "bad_request");
    let bad_range = client
        .his_read(&temp, "someday")
        .await
        .unwrap_err()
        .downcast::<HttpClientError>()
        .unwrap();
    assert!(matches!(bad_range, HttpClientError::ErrorGrid { .. }));
    ledger.err("hisRead", "bad_request", "bad_request");

    // hisWrite, then hisRead sees the samples and curVal follows the newest.
    let items = [
        HisItem {
            ts: ts("2024-01-05T08:00:00-05:00"),
            val: Value::make_number(65.0),
        },
        HisItem {
            ts: ts("2024-01-05T09:00:00-05:00"),
            val: Value::make_number(66.0),
        },
    ];
    client.his_write(&temp, &items).await.unwrap();
    ledger.ok("hisWrite");
    assert_eq!(h.store.history_len("p-temp"), 6);
    let written = client.his_read(&temp, "2024-01-05").await.unwrap();
    assert_eq!(values(&written, "val"), [65.0, 66.0]);
    ledger.ok("hisRead");
    let point = client.read_ids(std::slice::from_ref(&temp)).await.unwrap();
    assert_eq!(number(point.rows[0].get("curVal")), 66.0);
    ledger.ok("read");
    let unknown_point = client
        .his_write(&nope, &items)
        .await
        .unwrap_err()
        .downcast::<HttpClientError>()
        .unwrap();
    assert!(error_grid(unknown_point).contains("nope"));
    ledger.err("hisWrite", "not_found", "not_found");

    // pointWrite: the priority array decides curVal.
    let array = client.point_write_array(&sp).await.unwrap();
    assert_eq!(array.rows.len(), 17);
    assert!(array.rows.iter().all(|r| r.get("val").is_none()));
    ledger.ok("pointWrite");
    let val = |v: f64| Value::make_number(v);
    client
        .point_write(&sp, 8, Some(&val(72.0)), "e2e", None)
        .await
        .unwrap();
    client
        .point_write(&sp, 1, Some(&val(60.0)), "e2e-emergency", None)
        .await
        .unwrap();
    let array = client.point_write_array(&sp).await.unwrap();
    let level = |grid: &Grid, level: f64| {
        grid.rows
            .iter()
            .find(|r| number(r.get("level")) == level)
            .cloned()
            .unwrap()
    };
    assert_eq!(number(level(&array, 1.0).get("val")), 60.0);
    assert_eq!(text(level(&array, 1.0).get("who")), "e2e-emergency");
    assert_eq!(number(level(&array, 8.0).get("val")), 72.0);
    let point = client.read_ids(std::slice::from_ref(&sp)).await.unwrap();
    assert_eq!(number(point.rows[0].get("curVal")), 60.0);
    assert_eq!(number(point.rows[0].get("writeLevel")), 1.0);
    client.point_write(&sp, 1, None, "e2e", None).await.unwrap();
    let point = client.read_ids(std::slice::from_ref(&sp)).await.unwrap();
    assert_eq!(number(point.rows[0].get("curVal")), 72.0);
    assert_eq!(number(point.rows[0].get("writeLevel")), 8.0);
    // A timed write below level 8 shows in the array with its expiry.
    client
        .point_write(
            &sp,
            9,
            Some(&val(80.0)),
            "e2e-timed",
            Some(hs_core::ops::build::seconds(Duration::from_secs(3600))),
        )
        .await
        .unwrap();
    let array = client.point_write_array(&sp).await.unwrap();
    let nine = level(&array, 9.0);
    assert_eq!(number(nine.get("val")), 80.0);
    assert!(
        matches!(nine.get("expires"), Some(Value::DateTime(_))),
        "{nine:?}"
    );
    assert!(level(&array, 10.0).get("expires").is_none());
    client.point_write(&sp, 9, None, "e2e", None).await.unwrap();
    for op in [
        "pointWrite",
        "pointWrite",
        "pointWrite",
        "read",
        "pointWrite",
        "read",
        "pointWrite",
        "pointWrite",
        "pointWrite",
    ] {
        ledger.ok(op);
    }
    let level18 = client
        .point_write(&sp, 18, Some(&val(1.0)), "e2e", None)
        .await
        .unwrap_err()
        .downcast::<HttpClientError>()
        .unwrap();
    assert!(error_grid(level18).contains("level"));
    ledger.err("pointWrite", "bad_request", "bad_request");
    let not_writable = client
        .point_write(&temp, 8, Some(&val(1.0)), "e2e", None)
        .await
        .unwrap_err()
        .downcast::<HttpClientError>()
        .unwrap();
    assert!(error_grid(not_writable).contains("writable"));
    ledger.err("pointWrite", "bad_request", "bad_request");

    // watchSub, watchPoll after writes, watchUnsub.
    let watch = client
        .watch_sub(
            None,
            "e2e watch",
            &[sp.clone(), nope.clone()],
            Some(Duration::from_secs(60)),
        )
        .await
        .unwrap();
    let watch_id = text(watch.meta.as_ref().unwrap().get("watchId"));
    assert_eq!(number(watch.meta.as_ref().unwrap().get("lease")), 60.0);
    assert_eq!(watch.rows.len(), 2);
    assert_eq!(ref_id(watch.rows[0].get("id")), "p-sp");
    assert!(watch.rows[1].values().all(Value::is_null));
    assert_eq!(h.store.watch_count(), 1);
    ledger.ok("watchSub");
    let quiet = client.watch_poll(&watch_id, false).await.unwrap();
    assert!(quiet.rows.is_empty());
    client
        .point_write(&sp, 8, Some(&val(74.0)), "e2e", None)
        .await
        .unwrap();
    let changed = client.watch_poll(&watch_id, false).await.unwrap();
    assert_eq!(ids(&changed), ["p-sp"]);
    assert_eq!(number(changed.rows[0].get("curVal")), 74.0);
    assert!(
        client
            .watch_poll(&watch_id, false)
            .await
            .unwrap()
            .rows
            .is_empty()
    );
    for op in ["watchPoll", "pointWrite", "watchPoll", "watchPoll"] {
        ledger.ok(op);
    }
    let extended = client
        .watch_sub(
            Some(&watch_id),
            "e2e watch",
            std::slice::from_ref(&temp),
            None,
        )
        .await
        .unwrap();
    assert_eq!(ids(&extended), ["p-temp"]);
    let newer = [HisItem {
        ts: ts("2024-01-06T00:00:00-05:00"),
        val: val(67.0),
    }];
    client.his_write(&temp, &newer).await.unwrap();
    let changed = client.watch_poll(&watch_id, false).await.unwrap();
    assert_eq!(ids(&changed), ["p-temp"]);
    assert_eq!(number(changed.rows[0].get("curVal")), 67.0);
    let refreshed = client.watch_poll(&watch_id, true).await.unwrap();
    assert_eq!(ids(&refreshed), ["p-sp", "p-temp"]);
    client
        .watch_unsub(&watch_id, std::slice::from_ref(&temp), false)
        .await
        .unwrap();
    let newest = [HisItem {
        ts: ts("2024-01-07T00:00:00-05:00"),
        val: val(68.0),
    }];
    client.his_write(&temp, &newest).await.unwrap();
    let after_unsub = client.watch_poll(&watch_id, false).await.unwrap();
    assert!(after_unsub.rows.is_empty(), "{after_unsub:?}");
    client.watch_unsub(&watch_id, &[], true).await.unwrap();
    assert_eq!(h.store.watch_count(), 0);
    for op in [
        "watchSub",
        "hisWrite",
        "watchPoll",
        "watchPoll",
        "watchUnsub",
        "hisWrite",
        "watchPoll",
        "watchUnsub",
    ] {
        ledger.ok(op);
    }
    let closed = client
        .watch_poll(&watch_id, false)
        .await
        .unwrap_err()
        .downcast::<HttpClientError>()
        .unwrap();
    assert!(error_grid(closed).contains(&watch_id));
    ledger.err("watchPoll", "not_found", "not_found");

    // invokeAction on a registered action.
    let mut args = Dict::new();
    args.insert("by".into(), val(2.0));
    let bumped = client.invoke_action(&sp, "bump", &args).await.unwrap();
    assert_eq!(bumped.rows.len(), 1);
    assert_eq!(ref_id(bumped.rows[0].get("target")), "p-sp");
    assert_eq!(number(bumped.rows[0].get("by")), 2.0);
    ledger.ok("invokeAction");
    let missing_arg = client
        .invoke_action(&sp, "bump", &Dict::new())
        .await
        .unwrap_err()
        .downcast::<HttpClientError>()
        .unwrap();
    assert_eq!(error_grid(missing_arg), "bump: no by");
    ledger.err("invokeAction", "bad_request", "bad_request");
    let unknown_action = client
        .invoke_action(&sp, "noSuchAction", &args)
        .await
        .unwrap_err()
        .downcast::<HttpClientError>()
        .unwrap();
    assert!(error_grid(unknown_action).contains("noSuchAction"));
    ledger.err("invokeAction", "not_found", "not_found");

    // Any op by name: a standard op, and one the server does not know (404).
    let raw = client.call("about", Grid::make_empty()).await.unwrap();
    assert_eq!(text(raw.rows[0].get("serverName")), "e2e");
    ledger.ok("about");
    let unknown_op = client
        .call("fooBar", Grid::make_empty())
        .await
        .unwrap_err()
        .downcast::<HttpClientError>()
        .unwrap();
    assert_eq!(unknown_op.status(), Some(404), "{unknown_op:?}");
    ledger.err("fooBar", "not_found", "unknown_op");

    // close revokes the token on the server.
    assert_eq!(h.tokens.len(), 1);
    client.close().await.unwrap();
    assert!(!client.is_logged_in());
    assert_eq!(h.tokens.len(), 0);
    ledger.ok("close");

    assert_eq!(outcomes(&recorder), ledger.client);
    let mut server = login();
    server.extend(ledger.server);
    assert_eq!(h.server_outcomes(server.len()), server);
    // The first call's duration covers the login it waited for.
    assert!(recorder.requests()[0].1 > Duration::ZERO);
    h.stop().await;
}

#[tokio::test]
async fn every_op_json() {
    every_op(Format::Json).await;
}

#[tokio::test]
async fn every_op_zinc() {
    every_op(Format::Zinc).await;
}

/// Logs in as `user` with `password` and fails; answers the client's error
/// and what each side observed.
async fn refused(h: &Harness, user: &str, password: &str) -> (HttpClientError, Vec<Outcome>) {
    h.events.clear();
    let recorder = Arc::new(RecordingObserver::new());
    let client = h.client(user, password, Format::Json, &recorder);
    let error = client
        .read_filter("site", None)
        .await
        .unwrap_err()
        .downcast::<HttpClientError>()
        .unwrap();
    assert!(!client.is_logged_in());
    assert_eq!(outcomes(&recorder), [err("read", "auth")]);
    (error, h.server_outcomes(3))
}

#[tokio::test]
async fn wrong_password_and_unknown_user_fail_alike() {
    let h = Harness::start().await;
    let (wrong, wrong_seen) = refused(&h, OPERATOR, "not-the-password").await;
    assert!(
        matches!(&wrong, HttpClientError::Auth(AuthFailure::CredentialsRejected { username }) if username == OPERATOR),
        "{wrong:?}"
    );
    assert_eq!(wrong.kind().as_str(), "auth");
    assert_eq!(
        wrong.to_string(),
        "authentication failed for user \"operator\": unknown user or wrong password"
    );
    assert!(wrong.is_auth());
    // The server answered the HELLO and the first step, refused the last.
    let expected = [ok("auth"), ok("auth"), err("auth", "auth")];
    assert_eq!(wrong_seen, expected);

    let (unknown, unknown_seen) = refused(&h, "nobody", "whatever").await;
    assert!(
        matches!(&unknown, HttpClientError::Auth(AuthFailure::CredentialsRejected { username }) if username == "nobody"),
        "{unknown:?}"
    );
    // Same variant, kind, status and message but for the name, and the
    // server went through the same steps: nothing tells the user exists.
    assert_eq!(unknown.kind(), wrong.kind());
    assert_eq!(unknown.as_str(), wrong.as_str());
    assert_eq!(unknown.status(), wrong.status());
    assert_eq!(
        unknown.to_string().replace("nobody", "?"),
        wrong.to_string().replace(OPERATOR, "?")
    );
    assert_eq!(unknown_seen, expected);
    assert!(h.tokens.is_empty());
    h.stop().await;
}

#[tokio::test]
async fn no_credentials_is_unauthorized() {
    let h = Harness::start().await;
    let recorder = Arc::new(RecordingObserver::new());
    let client = HttpClient::builder(h.server.base_url())
        .observer(recorder.clone())
        .build()
        .unwrap();
    let error = client
        .about()
        .await
        .unwrap_err()
        .downcast::<HttpClientError>()
        .unwrap();
    assert_eq!(
        error.auth_failure(),
        Some(&AuthFailure::LoginRequired),
        "{error:?}"
    );
    assert_eq!(error.status(), Some(401));
    assert_eq!(outcomes(&recorder), [err("about", "auth")]);
    assert_eq!(h.server_outcomes(1), [err("about", "auth")]);
    h.stop().await;
}

#[tokio::test]
async fn expired_token_logs_in_again_transparently() {
    let h = Harness::start().await;
    let recorder = Arc::new(RecordingObserver::new());
    let client = h.client(OPERATOR, OPERATOR_PASSWORD, Format::Zinc, &recorder);
    client.about().await.unwrap();
    let mut seen = login();
    seen.push(ok("about"));
    assert_eq!(h.server_outcomes(4), seen);

    h.clock.advance(TOKEN_TTL + Duration::from_secs(1));
    recorder.clear();
    h.events.clear();
    let sites = client.read_filter("site", None).await.unwrap();
    assert_eq!(ids(&sites), ["s1"]);
    // One call for the client; for the server a refused bearer, a new
    // login and the read.
    assert_eq!(outcomes(&recorder), [ok("read")]);
    let mut seen = vec![err("read", "auth")];
    seen.extend(login());
    seen.push(ok("read"));
    assert_eq!(h.server_outcomes(5), seen);
    assert_eq!(
        h.tokens.len(),
        1,
        "the expired token is gone, the new one live"
    );

    // A write refused for its token is sent again after the login, and
    // applied once.
    h.clock.advance(TOKEN_TTL + Duration::from_secs(1));
    recorder.clear();
    h.events.clear();
    let items = [HisItem {
        ts: ts("2024-01-05T08:00:00-05:00"),
        val: Value::make_number(65.0),
    }];
    client
        .his_write(&reference("p-temp"), &items)
        .await
        .unwrap();
    assert_eq!(h.store.history_len("p-temp"), 5);
    assert_eq!(outcomes(&recorder), [ok("hisWrite")]);
    let mut seen = vec![err("hisWrite", "auth")];
    seen.extend(login());
    seen.push(ok("hisWrite"));
    assert_eq!(h.server_outcomes(5), seen);
    h.stop().await;
}

#[tokio::test]
async fn closed_session_logs_in_again_on_the_next_call() {
    let h = Harness::start().await;
    let recorder = Arc::new(RecordingObserver::new());
    let client = h.client(OPERATOR, OPERATOR_PASSWORD, Format::Json, &recorder);
    client.about().await.unwrap();
    client.close().await.unwrap();
    assert_eq!(h.tokens.len(), 0, "close revoked the token");
    let roots = client.nav(None).await.unwrap();
    assert_eq!(ids(&roots), ["s1"]);
    assert!(client.is_logged_in());
    assert_eq!(h.tokens.len(), 1);
    assert_eq!(outcomes(&recorder), [ok("about"), ok("close"), ok("nav")]);
    let mut seen = login();
    seen.extend([ok("about"), ok("close")]);
    seen.extend(login());
    seen.push(ok("nav"));
    assert_eq!(h.server_outcomes(seen.len()), seen);
    h.stop().await;
}

#[tokio::test]
async fn close_after_the_token_expired_succeeds_without_a_new_login() {
    let h = Harness::start().await;
    let recorder = Arc::new(RecordingObserver::new());
    let client = h.client(OPERATOR, OPERATOR_PASSWORD, Format::Json, &recorder);
    client.about().await.unwrap();
    h.clock.advance(TOKEN_TTL + Duration::from_secs(1));
    recorder.clear();
    h.events.clear();
    // The session is already over on the server: close says so, and
    // neither logs in again nor fails.
    client.close().await.unwrap();
    assert!(!client.is_logged_in());
    assert_eq!(outcomes(&recorder), [ok("close")]);
    assert_eq!(h.server_outcomes(1), [err("close", "auth")]);
    assert_eq!(h.tokens.len(), 0);
    h.stop().await;
}

#[tokio::test]
async fn token_revoked_by_the_server_logs_in_again_transparently() {
    let h = Harness::start().await;
    let recorder = Arc::new(RecordingObserver::new());
    let client = h.client(OPERATOR, OPERATOR_PASSWORD, Format::Zinc, &recorder);
    client.about().await.unwrap();
    assert_eq!(h.tokens.revoke_user(OPERATOR), 1);
    h.events.clear();
    let equips = client.nav(Some("s1")).await.unwrap();
    assert_eq!(ids(&equips), ["e1", "e2"]);
    assert_eq!(outcomes(&recorder), [ok("about"), ok("nav")]);
    let mut seen = vec![err("nav", "auth")];
    seen.extend(login());
    seen.push(ok("nav"));
    assert_eq!(h.server_outcomes(5), seen);
    assert_eq!(h.tokens.len(), 1);
    h.stop().await;
}

#[tokio::test]
async fn reader_reads_but_is_refused_writes() {
    let h = Harness::start().await;
    let recorder = Arc::new(RecordingObserver::new());
    let client = h.client(READER, READER_PASSWORD, Format::Json, &recorder);
    let sp = reference("p-sp");
    let temp = reference("p-temp");
    let mut ledger = Ledger::default();

    assert_eq!(
        client.read_filter("point", None).await.unwrap().rows.len(),
        2
    );
    ledger.ok("read");
    // Reading the priority array is a read.
    assert_eq!(client.point_write_array(&sp).await.unwrap().rows.len(), 17);
    ledger.ok("pointWrite");

    // Writes: an error grid (HTTP 200, as the reference), observed by both
    // sides as `forbidden`.
    let write = client
        .point_write(&sp, 8, Some(&Value::make_number(50.0)), "reader", None)
        .await
        .unwrap_err()
        .downcast::<HttpClientError>()
        .unwrap();
    assert_eq!(write.kind().as_str(), "forbidden");
    assert_eq!(write.as_str(), "error_grid");
    assert!(
        error_grid(write).contains("Insufficient permissions"),
        "pointWrite"
    );
    ledger.err("pointWrite", "forbidden", "forbidden");
    let items = [HisItem {
        ts: ts("2024-01-05T08:00:00-05:00"),
        val: Value::make_number(1.0),
    }];
    let his = client
        .his_write(&temp, &items)
        .await
        .unwrap_err()
        .downcast::<HttpClientError>()
        .unwrap();
    assert!(error_grid(his).contains("Insufficient permissions"));
    ledger.err("hisWrite", "forbidden", "forbidden");
    let mut args = Dict::new();
    args.insert("by".into(), Value::make_number(1.0));
    let action = client
        .invoke_action(&sp, "bump", &args)
        .await
        .unwrap_err()
        .downcast::<HttpClientError>()
        .unwrap();
    assert!(error_grid(action).contains("Insufficient permissions"));
    ledger.err("invokeAction", "forbidden", "forbidden");

    // Nothing was written.
    assert_eq!(h.store.history_len("p-temp"), 4);
    assert!(h.store.entity("p-sp").unwrap().get("curVal").is_none());
    client.close().await.unwrap();
    ledger.ok("close");

    assert_eq!(outcomes(&recorder), ledger.client);
    let mut server = login();
    server.extend(ledger.server);
    assert_eq!(h.server_outcomes(server.len()), server);
    h.stop().await;
}

#[tokio::test]
async fn concurrent_first_calls_share_one_login() {
    let h = Harness::start().await;
    let recorder = Arc::new(RecordingObserver::new());
    let client = h.client(OPERATOR, OPERATOR_PASSWORD, Format::Json, &recorder);
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.about().await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    assert_eq!(h.tokens.len(), 1);
    assert_eq!(outcomes(&recorder), vec![ok("about"); 8]);
    let mut seen = login();
    seen.extend(vec![ok("about"); 8]);
    assert_eq!(h.server_outcomes(11), seen);
    h.stop().await;
}

#[tokio::test]
async fn close_without_login_sends_nothing() {
    let h = Harness::start().await;
    let recorder = Arc::new(RecordingObserver::new());
    let client = h.client(OPERATOR, OPERATOR_PASSWORD, Format::Json, &recorder);
    client.close().await.unwrap();
    assert!(recorder.is_empty());
    assert!(h.events.is_empty());
    assert!(format!("{client:?}").contains("<redacted>"));
    assert!(!format!("{client:?}").contains(OPERATOR_PASSWORD));
    h.stop().await;
}

#[tokio::test]
async fn body_over_the_limit_is_too_large_on_both_sides() {
    let h = Harness::start_with(|builder| builder.body_limit(1024)).await;
    let recorder = Arc::new(RecordingObserver::new());
    let client = h.client(OPERATOR, OPERATOR_PASSWORD, Format::Zinc, &recorder);
    let many: Vec<Ref> = (0..200).map(|n| reference(&format!("p-{n}"))).collect();
    let error = client
        .read_ids(&many)
        .await
        .unwrap_err()
        .downcast::<HttpClientError>()
        .unwrap();
    assert_eq!(error.status(), Some(413), "{error:?}");
    assert_eq!(error.kind().as_str(), "too_large");
    assert_eq!(outcomes(&recorder), [err("read", "too_large")]);
    let mut seen = login();
    seen.push(err("read", "too_large"));
    assert_eq!(h.server_outcomes(4), seen);
    h.stop().await;
}

#[tokio::test]
async fn server_without_auth() {
    let events = Arc::new(RecordingObserver::new());
    let server = HttpServer::builder(store())
        .observer(events.clone())
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let recorder = Arc::new(RecordingObserver::new());
    let anonymous = HttpClient::builder(server.base_url())
        .format(Format::Zinc)
        .observer(recorder.clone())
        .build()
        .unwrap();
    assert_eq!(
        ids(&anonymous.read_filter("site", None).await.unwrap()),
        ["s1"]
    );
    anonymous.close().await.unwrap();
    assert_eq!(outcomes(&recorder), [ok("read"), ok("close")]);
    assert!(events.wait_for_count(2, WAIT));
    assert_eq!(outcomes(&events), [ok("read"), ok("close")]);

    // With credentials the client's HELLO is answered by `about` itself:
    // the client goes on without a token.
    events.clear();
    recorder.clear();
    let with_credentials = HttpClient::builder(server.base_url())
        .credentials(OPERATOR, OPERATOR_PASSWORD)
        .observer(recorder.clone())
        .build()
        .unwrap();
    assert_eq!(ids(&with_credentials.nav(None).await.unwrap()), ["s1"]);
    assert!(with_credentials.is_logged_in());
    assert_eq!(outcomes(&recorder), [ok("nav")]);
    assert!(events.wait_for_count(2, WAIT));
    assert_eq!(outcomes(&events), [ok("about"), ok("nav")]);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn usernames_and_passwords_with_scram_special_characters() {
    // `=` and `,` must be escaped in the SCRAM messages; the rest is UTF-8.
    let user = "jöé=a,b c";
    let password = "pä ss=,wörd\u{1F511}";
    let users = UserStore::new().with_iterations(ITERATIONS);
    users.add_user(user, password, Role::Operator);
    let tokens = TokenStore::new();
    let events = Arc::new(RecordingObserver::new());
    let server = HttpServer::builder(store())
        .auth(ScramServer::new(users, tokens.clone()))
        .observer(events.clone())
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let client = HttpClient::builder(server.base_url())
        .credentials(user, password)
        .build()
        .unwrap();
    assert_eq!(ids(&client.nav(None).await.unwrap()), ["s1"]);
    assert_eq!(tokens.len(), 1);
    let mut seen = login();
    seen.push(ok("nav"));
    assert!(events.wait_for_count(4, WAIT));
    assert_eq!(outcomes(&events), seen);
    server.shutdown().await.unwrap();
}
