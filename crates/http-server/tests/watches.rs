//! Watches over HTTP under load and their limits (issue 13, items 4 and 6):
//! `watchPoll` returns every change since the previous poll, so 1,000
//! pollers converge on the final values of bursts of writes; watches are
//! limited per user and in total, with an error grid naming the limit.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use common::*;
use futures_util::{StreamExt, stream};
use hs_core::ops::HaystackOps;
use hs_core::store::MemoryStore;
use hs_core::value::{Dict, Ref, Value};
use serde_json::{Value as Json, json};

const POINTS: usize = 10;

fn burst_point(n: usize) -> String {
    format!("burst-{n}")
}

/// The demo store plus `POINTS` writable points.
fn store_with_points(store: MemoryStore) -> Arc<MemoryStore> {
    store.load_json_str(DEMO_ENTITIES).unwrap();
    let points = (0..POINTS)
        .map(|n| {
            let mut point = Dict::new();
            point.insert("id".into(), Value::from(Ref::from(burst_point(n).as_str())));
            for marker in ["point", "writable", "sp"] {
                point.insert(marker.into(), Value::make_marker());
            }
            point.insert("kind".into(), Value::make_str("Number"));
            point
        })
        .collect();
    store.update_entities(points).unwrap();
    Arc::new(store)
}

async fn post(server: &TestServer, op: &str, body: Json, auth: Option<&str>) -> Json {
    let mut request = server
        .client
        .post(server.url(op))
        .header("Content-Type", "application/json")
        .header("Accept", "application/json")
        .body(body.to_string());
    if let Some(token) = auth {
        request = request.header("Authorization", bearer(token));
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    serde_json::from_str(&response.text().await.unwrap()).unwrap()
}

fn sub_body(ids: &[String]) -> Json {
    let rows: Vec<Json> = ids
        .iter()
        .map(|id| json!({"id": {"_kind": "ref", "val": id}}))
        .collect();
    json!({"_kind": "grid", "meta": {"watchDis": "load"}, "cols": [{"name": "id"}], "rows": rows})
}

fn error_dis(grid: &Json) -> Option<String> {
    grid["meta"].get("err")?;
    Some(grid["meta"]["dis"].as_str().unwrap_or_default().to_owned())
}

/// The `curVal` of every row of a poll, by entity id.
fn polled_values(grid: &Json) -> Vec<(String, f64)> {
    grid["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|row| {
            let id = row["id"]["val"].as_str()?.to_owned();
            // A unitless Number is a plain JSON number.
            let value = row["curVal"]
                .as_f64()
                .or_else(|| row["curVal"]["val"].as_f64())?;
            Some((id, value))
        })
        .collect()
}

type Seen = HashMap<(String, String), f64>;

/// Polls every watch once (32 at a time) and records what each reported.
async fn poll_all(server: &TestServer, watches: &[String], seen: &mut Seen) {
    let polls = stream::iter(watches.iter().cloned())
        .map(|watch| async move {
            let body = json!({"_kind": "grid", "meta": {"watchId": watch}, "cols": [], "rows": []});
            let grid = post(server, "watchPoll", body, None).await;
            assert!(error_dis(&grid).is_none(), "{grid}");
            (watch, polled_values(&grid))
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    for (watch, values) in polls {
        for (id, value) in values {
            seen.insert((watch.clone(), id), value);
        }
    }
}

/// Issue 13 item 4 over HTTP: 1,000 watches, each on 10 points, polled
/// while three bursts of 100 pointWrites run (10 writers at once, each
/// writing its point back to back), then once more: every watch has
/// reported the final value of every point.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_poll_watcher_converges_after_bursts() {
    const WATCHES: usize = 1_000;
    const BURSTS: usize = 3;
    const ROUNDS: usize = 10;
    let store = store_with_points(MemoryStore::new());
    let server = start(Options {
        ops: Some(store.clone() as Arc<dyn HaystackOps>),
        ..Options::default()
    })
    .await;
    let ids: Vec<String> = (0..POINTS).map(burst_point).collect();
    let watches: Vec<String> = stream::iter(0..WATCHES)
        .map(|_| async {
            let grid = post(&server, "watchSub", sub_body(&ids), None).await;
            assert!(error_dis(&grid).is_none(), "{grid}");
            grid["meta"]["watchId"].as_str().unwrap().to_owned()
        })
        .buffer_unordered(32)
        .collect()
        .await;
    assert_eq!(store.watch_count(), WATCHES);

    let mut seen = Seen::new();
    let running = &server;
    for burst in 0..BURSTS {
        let writers = (0..POINTS).map(|point| async move {
            for round in 0..ROUNDS {
                let value = ((burst * ROUNDS + round) * 100 + point) as f64;
                let body = json!({"_kind": "grid", "meta": {},
                    "cols": [{"name": "id"}, {"name": "level"}, {"name": "val"}, {"name": "who"}],
                    "rows": [{"id": {"_kind": "ref", "val": burst_point(point)}, "level": 8,
                              "val": value, "who": "burst"}]});
                let grid = post(running, "pointWrite", body, None).await;
                assert!(error_dis(&grid).is_none(), "{grid}");
            }
        });
        // The polls run while the writes do.
        let ((), ()) = tokio::join!(
            async {
                futures_util::future::join_all(writers).await;
            },
            poll_all(running, &watches, &mut seen)
        );
    }
    poll_all(running, &watches, &mut seen).await;

    let final_value = |point: usize| ((BURSTS * ROUNDS - 1) * 100 + point) as f64;
    let short: Vec<_> = watches
        .iter()
        .flat_map(|watch| (0..POINTS).map(move |point| (watch, point)))
        .filter(|(watch, point)| {
            seen.get(&((*watch).clone(), burst_point(*point))) != Some(&final_value(*point))
        })
        .collect();
    assert!(
        short.is_empty(),
        "{} (watch, point) pairs short of the final value",
        short.len()
    );
    // Nothing is left to report.
    let mut after = Seen::new();
    poll_all(running, &watches[..10], &mut after).await;
    assert!(after.is_empty(), "{after:?}");
    server.stop().await;
}

/// Issue 13 item 6 over HTTP: each user holds at most `per_user` watches and
/// the server `total`; past either, `watchSub` answers an error grid naming
/// the limit and its `hs serve` flag. The user comes from the session, not
/// from the request.
#[tokio::test]
async fn watches_are_limited_per_user_and_in_total() {
    let store = store_with_points(MemoryStore::new());
    store.set_watch_limits(3, 2);
    let server = start(Options {
        auth: true,
        ops: Some(store.clone() as Arc<dyn HaystackOps>),
        ..Options::default()
    })
    .await;
    let about = server.url("about");
    let demo = login(&server.client, &about, USER, PASSWORD).await.unwrap();
    let reader = login(&server.client, &about, READER, READER_PASSWORD)
        .await
        .unwrap();
    let ids = vec![burst_point(0)];
    for _ in 0..2 {
        let grid = post(&server, "watchSub", sub_body(&ids), Some(&demo)).await;
        assert!(error_dis(&grid).is_none(), "{grid}");
    }
    let refused = post(&server, "watchSub", sub_body(&ids), Some(&demo)).await;
    let dis = error_dis(&refused).expect("refused");
    assert!(
        dis.contains("user demo") && dis.contains("--max-watches-per-user"),
        "{dis}"
    );

    let grid = post(&server, "watchSub", sub_body(&ids), Some(&reader)).await;
    assert!(
        error_dis(&grid).is_none(),
        "another user has places: {grid}"
    );
    let refused = post(&server, "watchSub", sub_body(&ids), Some(&reader)).await;
    let dis = error_dis(&refused).expect("refused");
    assert!(
        dis.contains("limit of 3 watches") && dis.contains("--max-watches"),
        "{dis}"
    );
    assert_eq!(store.watch_count(), 3);
    server.stop().await;
}
