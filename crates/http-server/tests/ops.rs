//! Every op, in JSON and in Zinc, on a real socket; each request observed
//! exactly once.

#![allow(clippy::unwrap_used)] // tests may unwrap (COMMON.md)

mod common;

use common::*;
use hs_core::observe::RecordedEvent;
use reqwest::StatusCode;
use serde_json::json;

const JSON: &str = "application/json";
const ZINC: &str = "text/zinc; charset=utf-8";

/// One op call: its JSON and Zinc request bodies (`None`: GET).
struct Case {
    op: &'static str,
    json: Option<String>,
    zinc: Option<&'static str>,
    /// A string the JSON response must contain.
    json_expect: &'static str,
    /// A string the Zinc response must contain.
    zinc_expect: &'static str,
}

fn cases() -> Vec<Case> {
    vec![
        Case { op: "about", json: None, zinc: None, json_expect: "haystackVersion", zinc_expect: "haystackVersion" },
        Case { op: "ops", json: None, zinc: None, json_expect: "hisRead", zinc_expect: "hisRead" },
        Case { op: "formats", json: None, zinc: None, json_expect: "text/zinc", zinc_expect: "text/zinc" },
        Case {
            op: "read",
            json: Some(json_grid(json!({"filter": "equip", "limit": 10}))),
            zinc: Some("ver:\"3.0\"\nfilter,limit\n\"equip\",10"),
            json_expect: "demo-ahu1",
            zinc_expect: "@demo-ahu1",
        },
        Case {
            op: "read",
            json: Some(json_grid(json!({"id": {"_kind": "ref", "val": "demo-ahu1-dat"}}))),
            zinc: Some("ver:\"3.0\"\nid\n@demo-ahu1-dat"),
            json_expect: "demo-ahu1-dat",
            zinc_expect: "@demo-ahu1-dat",
        },
        Case {
            op: "nav",
            json: Some(json_grid(json!({"navId": null}))),
            zinc: Some("ver:\"3.0\"\nnavId\nN"),
            json_expect: "demo-site",
            zinc_expect: "@demo-site",
        },
        Case {
            op: "hisWrite",
            json: Some(
                json!({"_kind": "grid", "meta": {"id": {"_kind": "ref", "val": "demo-ahu1-dat"}},
                    "cols": [{"name": "ts"}, {"name": "val"}],
                    "rows": [{"ts": {"_kind": "dateTime", "val": "2024-01-01T00:00:00-05:00", "tz": "New_York"},
                              "val": {"_kind": "number", "val": 55.0, "unit": "°F"}}]})
                .to_string(),
            ),
            zinc: Some("ver:\"3.0\" id:@demo-ahu1-dat\nts,val\n2024-01-01T00:15:00-05:00 New_York,55.5°F"),
            json_expect: "_kind",
            zinc_expect: "ver:\"3.0\"",
        },
        Case {
            op: "hisRead",
            json: Some(json_grid(json!({"id": {"_kind": "ref", "val": "demo-ahu1-dat"}, "range": "2024-01-01"}))),
            zinc: Some("ver:\"3.0\"\nid,range\n@demo-ahu1-dat,\"2024-01-01\""),
            json_expect: "\"ts\"",
            zinc_expect: "ts,val",
        },
        Case {
            op: "pointWrite",
            json: Some(json_grid(json!({"id": {"_kind": "ref", "val": "demo-ahu2-sp"}, "level": 8,
                "val": {"_kind": "number", "val": 70.0, "unit": "°F"}, "who": "test"}))),
            zinc: Some("ver:\"3.0\"\nid,level,val,who\n@demo-ahu2-sp,9,71°F,\"test\""),
            json_expect: "_kind",
            zinc_expect: "ver:\"3.0\"",
        },
        Case {
            op: "pointWrite",
            json: Some(json_grid(json!({"id": {"_kind": "ref", "val": "demo-ahu2-sp"}}))),
            zinc: Some("ver:\"3.0\"\nid\n@demo-ahu2-sp"),
            json_expect: "level",
            zinc_expect: "level",
        },
        Case {
            op: "watchSub",
            json: Some(
                json!({"_kind": "grid", "meta": {"watchDis": "t"}, "cols": [{"name": "id"}],
                    "rows": [{"id": {"_kind": "ref", "val": "demo-ahu1-dat"}}]})
                .to_string(),
            ),
            zinc: Some("ver:\"3.0\" watchDis:\"t\"\nid\n@demo-ahu1-dat"),
            json_expect: "watchId",
            zinc_expect: "watchId",
        },
        Case { op: "close", json: None, zinc: None, json_expect: "_kind", zinc_expect: "ver:\"3.0\"" },
    ]
}

async fn call(
    server: &TestServer,
    case: &Case,
    body: Option<String>,
    mime: &str,
) -> (StatusCode, String, String) {
    let request = match body {
        Some(body) => server
            .client
            .post(server.url(case.op))
            .header("Content-Type", mime)
            .body(body),
        None => server.client.get(server.url(case.op)),
    };
    let response = request.header("Accept", mime).send().await.unwrap();
    let status = response.status();
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    (status, content_type, response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_op_in_json_and_zinc() {
    let server = start_open().await;
    let mut expected_requests = Vec::new();
    for case in cases() {
        let (status, content_type, body) = call(&server, &case, case.json.clone(), JSON).await;
        assert_eq!(status, StatusCode::OK, "{} json: {body}", case.op);
        assert_eq!(content_type, JSON);
        let grid = json_body(&body);
        assert_eq!(
            error_dis(&grid),
            None,
            "{} json answered an error grid: {body}",
            case.op
        );
        assert!(body.contains(case.json_expect), "{} json: {body}", case.op);
        expected_requests.push(case.op);

        let (status, content_type, body) =
            call(&server, &case, case.zinc.map(str::to_owned), ZINC).await;
        assert_eq!(status, StatusCode::OK, "{} zinc: {body}", case.op);
        assert_eq!(content_type, ZINC);
        assert!(body.starts_with("ver:\"3.0\""), "{} zinc: {body}", case.op);
        assert!(
            !body.lines().next().unwrap().contains(" err"),
            "{} zinc error grid: {body}",
            case.op
        );
        assert!(body.contains(case.zinc_expect), "{} zinc: {body}", case.op);
        expected_requests.push(case.op);
    }

    let events = server.events_after(expected_requests.len());
    let ops: Vec<&str> = events
        .iter()
        .map(|e| match e {
            RecordedEvent::Request { op, duration } => {
                assert!(!duration.is_zero(), "{op}: zero duration");
                op.as_str()
            }
            other => panic!("unexpected event {other:?}"),
        })
        .collect();
    assert_eq!(ops, expected_requests);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn his_write_then_read_round_trips_in_both_formats() {
    let server = start_open().await;
    let write = cases().into_iter().find(|c| c.op == "hisWrite").unwrap();
    let (status, _, _) = call(&server, &write, write.json.clone(), JSON).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = call(&server, &write, write.zinc.map(str::to_owned), ZINC).await;
    assert_eq!(status, StatusCode::OK);

    let read = cases().into_iter().find(|c| c.op == "hisRead").unwrap();
    let (_, _, body) = call(&server, &read, read.json.clone(), JSON).await;
    let grid = json_body(&body);
    assert_eq!(rows(&grid).len(), 2, "{body}");
    assert_eq!(grid["meta"]["id"]["val"], "demo-ahu1-dat");
    let (_, _, zinc) = call(&server, &read, read.zinc.map(str::to_owned), ZINC).await;
    assert!(zinc.contains("55°F") && zinc.contains("55.5°F"), "{zinc}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_query_parameters_are_zinc_scalars_or_raw_strings() {
    let server = start_open().await;
    let get = |query: &str| {
        let url = format!("{}?{query}", server.url("read"));
        let client = server.client.clone();
        async move {
            let response = client.get(url).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            json_body(&response.text().await.unwrap())
        }
    };
    // Unquoted, not Zinc: the raw string is the filter (not cut at a token).
    let grid = get("filter=point%20and%20his").await;
    assert!(rows(&grid).len() >= 2, "{grid}");
    assert!(rows(&grid).iter().all(|r| r.get("his").is_some()), "{grid}");
    // Quoted Str and bare Number.
    let grid = get("filter=%22equip%22&limit=1").await;
    assert_eq!(rows(&grid).len(), 1, "{grid}");
    // A Ref.
    let grid = get("id=@demo-site").await;
    assert_eq!(rows(&grid)[0]["id"]["val"], "demo-site");

    let nav = server
        .client
        .get(format!("{}?navId=%22demo-site%22", server.url("nav")))
        .send()
        .await
        .unwrap();
    let grid = json_body(&nav.text().await.unwrap());
    assert!(
        rows(&grid).iter().any(|r| r["id"]["val"] == "demo-ahu1"),
        "{grid}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configurable_base_path_and_zinc_default() {
    let server = start(Options {
        configure: Box::new(|b| {
            b.base_path("/haystack/v1")
                .default_format(hs_core::codec::Format::Zinc)
        }),
        ..Options::default()
    })
    .await;
    assert!(server.base.ends_with("/haystack/v1"));
    let response = server.client.get(server.url("about")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], ZINC);
    let old = format!("http://{}/api/about", server.server.local_addr());
    assert_eq!(
        server.client.get(old).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_ops_and_invoke_action_in_json_and_zinc() {
    let store = demo_store();
    store.register_action("reset", |target, _args| {
        let id = target
            .get("id")
            .cloned()
            .unwrap_or(hs_core::value::Value::Null);
        let row: hs_core::value::Dict = [("reset".to_owned(), id)].into_iter().collect();
        Ok(hs_core::value::Grid::make_from_dicts(vec![row]))
    });
    let server = start(Options {
        ops: Some(store),
        ..Options::default()
    })
    .await;
    let post = |op: &'static str, mime: &'static str, body: String| {
        let request = server
            .client
            .post(server.url(op))
            .header("Content-Type", mime)
            .header("Accept", mime)
            .body(body);
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{op}");
            response.text().await.unwrap()
        }
    };

    for mime in [JSON, ZINC] {
        let zinc = mime == ZINC;
        let sub = if zinc {
            "ver:\"3.0\" watchDis:\"z\"\nid\n@demo-ahu1-dat\n@demo-ahu2-sp".to_owned()
        } else {
            json!({"_kind": "grid", "meta": {"watchDis": "j"}, "cols": [{"name": "id"}],
                "rows": [{"id": {"_kind": "ref", "val": "demo-ahu1-dat"}}, {"id": {"_kind": "ref", "val": "demo-ahu2-sp"}}]})
            .to_string()
        };
        let answer = post("watchSub", mime, sub).await;
        let watch_id = if zinc {
            let meta = answer.lines().next().unwrap();
            let start = meta.find("watchId:\"").unwrap() + 9;
            meta[start..].split('"').next().unwrap().to_owned()
        } else {
            json_body(&answer)["meta"]["watchId"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        assert!(!watch_id.is_empty());

        let poll = if zinc {
            format!("ver:\"3.0\" watchId:\"{watch_id}\" refresh\nempty")
        } else {
            json!({"_kind": "grid", "meta": {"watchId": watch_id, "refresh": {"_kind": "marker"}}, "cols": [], "rows": []})
                .to_string()
        };
        let answer = post("watchPoll", mime, poll).await;
        if zinc {
            assert!(
                answer.contains("@demo-ahu1-dat") && answer.contains("@demo-ahu2-sp"),
                "{answer}"
            );
        } else {
            assert_eq!(rows(&json_body(&answer)).len(), 2, "{answer}");
        }

        let unsub = if zinc {
            format!("ver:\"3.0\" watchId:\"{watch_id}\" close\nid\n@demo-ahu1-dat")
        } else {
            json!({"_kind": "grid", "meta": {"watchId": watch_id, "close": {"_kind": "marker"}},
                "cols": [{"name": "id"}], "rows": [{"id": {"_kind": "ref", "val": "demo-ahu1-dat"}}]})
            .to_string()
        };
        let answer = post("watchUnsub", mime, unsub).await;
        assert!(!answer.contains("err"), "{answer}");

        let invoke = if zinc {
            "ver:\"3.0\" id:@demo-ahu2-sp action:\"reset\"\nlevel\n8".to_owned()
        } else {
            json!({"_kind": "grid", "meta": {"id": {"_kind": "ref", "val": "demo-ahu2-sp"}, "action": "reset"},
                "cols": [{"name": "level"}], "rows": [{"level": 8}]})
            .to_string()
        };
        let answer = post("invokeAction", mime, invoke).await;
        assert!(
            answer.contains("reset") && answer.contains("demo-ahu2-sp"),
            "{answer}"
        );
        assert!(!answer.lines().next().unwrap().contains(" err"), "{answer}");
    }
    let events = server.events_after(8);
    let ops: Vec<_> = events
        .iter()
        .map(|e| {
            (
                e.op().unwrap().to_owned(),
                matches!(e, RecordedEvent::Request { .. }),
            )
        })
        .collect();
    let expected: Vec<_> = ["watchSub", "watchPoll", "watchUnsub", "invokeAction"]
        .repeat(2)
        .into_iter()
        .map(|op| (op.to_owned(), true))
        .collect();
    assert_eq!(ops, expected);
    server.stop().await;
}
