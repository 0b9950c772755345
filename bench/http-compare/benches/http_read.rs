//! HTTP `read` throughput in one run, on keep-alive HTTP/1.1 connections:
//!
//! - `hs`: hs-http-server over a MemoryStore (no auth);
//! - `hs+auth`: the same with SCRAM auth on, requests carrying a bearer token;
//! - `rusty`: rusty-haystack-server 0.8.1 (the published crate) over the
//!   same entities (its auth is off by default);
//! - `bare`: an axum handler that reads the body and returns the bytes hs
//!   returned for the same request (the ceiling of axum + hyper here).
//!
//! Scenarios: `read` of one entity by id, `read` of the filter `id==@p-N`
//! with a different point on every request (so no query cache can answer
//! it), and `read` of `point` (1,000 rows), each at 1 and 32 concurrent
//! connections. Every rate is the median
//! of `ROUNDS` windows of `WINDOW`, the servers interleaved round by round
//! (every other round in reverse order) so that background load hits them
//! alike. The ratios are paired: each round's hs rate over the other
//! server's rate in the same round, then the median (with the lowest and
//! highest) of those, so that drift between rounds cancels out.
//!
//! Run: `cargo bench --manifest-path bench/http-compare/Cargo.toml`
//! (`HS_BENCH_WINDOW_MS`, `HS_BENCH_ROUNDS` override the defaults).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

const POINTS: usize = 1_000;

fn entities_json() -> String {
    let mut rows = vec![
        serde_json::json!({"id": {"_kind": "ref", "val": "site"}, "dis": "Site", "site": {"_kind": "marker"},
            "tz": "New_York"}),
        serde_json::json!({"id": {"_kind": "ref", "val": "ahu"}, "dis": "AHU", "equip": {"_kind": "marker"},
            "ahu": {"_kind": "marker"}, "siteRef": {"_kind": "ref", "val": "site"}}),
    ];
    for i in 0..POINTS {
        rows.push(serde_json::json!({
            "id": {"_kind": "ref", "val": format!("p-{i:04}")},
            "dis": format!("Point {i}"),
            "point": {"_kind": "marker"}, "his": {"_kind": "marker"}, "sensor": {"_kind": "marker"},
            "temp": {"_kind": "marker"}, "air": {"_kind": "marker"},
            "kind": "Number", "unit": "°F", "tz": "New_York",
            "curVal": {"_kind": "number", "val": 68.5 + i as f64 / 100.0, "unit": "°F"},
            "siteRef": {"_kind": "ref", "val": "site"}, "equipRef": {"_kind": "ref", "val": "ahu"},
        }));
    }
    let mut names: Vec<String> = Vec::new();
    for row in &rows {
        for key in row.as_object().unwrap().keys() {
            if !names.contains(key) {
                names.push(key.clone());
            }
        }
    }
    let cols: Vec<_> = names
        .iter()
        .map(|n| serde_json::json!({"name": n}))
        .collect();
    serde_json::json!({"_kind": "grid", "meta": {"ver": "3.0"}, "cols": cols, "rows": rows})
        .to_string()
}

const BY_ID: &str = r#"{"_kind":"grid","meta":{},"cols":[{"name":"id"}],"rows":[{"id":{"_kind":"ref","val":"p-0500"}}]}"#;
const BY_FILTER: &str =
    r#"{"_kind":"grid","meta":{},"cols":[{"name":"filter"}],"rows":[{"filter":"point"}]}"#;

/// What a load task sends: one body every time, or the `id==@p-N` filter
/// for the task's `n`-th request.
#[derive(Clone, Copy)]
enum Body {
    Fixed(&'static str),
    IdFilter,
}

impl Body {
    fn bytes(self, n: u64) -> Bytes {
        match self {
            Body::Fixed(body) => Bytes::from_static(body.as_bytes()),
            Body::IdFilter => Bytes::from(format!(
                r#"{{"_kind":"grid","meta":{{}},"cols":[{{"name":"filter"}}],"rows":[{{"filter":"id==@p-{:04}"}}]}}"#,
                n % POINTS as u64
            )),
        }
    }
}

struct Target {
    name: &'static str,
    addr: SocketAddr,
    authorization: Option<String>,
}

async fn start_hs(
    entities: &str,
    auth: bool,
) -> (SocketAddr, Option<String>, hs_http_server::HttpServer) {
    use hs_core::auth::{Role, ScramServer, TokenStore, UserStore};
    let store = hs_core::store::MemoryStore::new();
    store.load_json_str(entities).expect("entities load");
    let mut builder = hs_http_server::HttpServer::builder(Arc::new(store));
    let mut bearer = None;
    if auth {
        let users = UserStore::new().with_iterations(4096);
        users.add_user("bench", "bench-pass", Role::Operator);
        let tokens = TokenStore::new();
        let token = tokens.issue(hs_core::auth::Principal::new("bench", Role::Operator));
        bearer = Some(format!("BEARER authToken={token}"));
        builder = builder.auth(ScramServer::new(users, tokens));
    }
    let server = builder.bind("127.0.0.1:0").await.expect("hs binds");
    (server.local_addr(), bearer, server)
}

async fn start_rusty(entities: &str) -> SocketAddr {
    use haystack_core::codecs::codec_for;
    use haystack_core::graph::{EntityGraph, SharedGraph};
    let grid = codec_for("application/json")
        .expect("rusty JSON codec")
        .decode_grid(entities)
        .expect("rusty decodes the entities");
    let graph = SharedGraph::new(EntityGraph::new());
    for row in grid.rows {
        graph.add(row).expect("rusty accepts the entity");
    }
    // rusty-haystack-server takes a port, not a listener: find a free one.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    tokio::spawn(async move {
        haystack_server::HaystackServer::new(graph)
            .host("127.0.0.1")
            .port(port)
            .run()
            .await
            .expect("rusty server runs")
    });
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    for _ in 0..100 {
        if TcpStream::connect(addr).await.is_ok() {
            return addr;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("rusty-haystack-server did not start on {addr}");
}

async fn start_bare(by_id: Bytes, by_filter: Bytes) -> SocketAddr {
    let app = Router::new().route(
        "/api/read",
        post(move |body: Bytes| {
            // The 1,000-row answer for `point`; the one-row answer for an id
            // or an `id==` filter.
            let answer = if body.windows(7).any(|w| w == b"\"point\"") {
                by_filter.clone()
            } else {
                by_id.clone()
            };
            async move { ([(CONTENT_TYPE, "application/json")], answer) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bare binds");
    let addr = listener.local_addr().expect("bare addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(addr: SocketAddr) -> Sender {
    let stream = TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(connection);
    sender
}

async fn send(sender: &mut Sender, target: &Target, body: Bytes) -> Bytes {
    let mut request = Request::post("/api/read")
        .header(HOST, "127.0.0.1")
        .header(CONTENT_TYPE, "application/json")
        .header(ACCEPT, "application/json");
    if let Some(auth) = &target.authorization {
        request = request.header(AUTHORIZATION, auth);
    }
    let request = request
        .body(Full::new(body))
        .expect("request");
    sender.ready().await.expect("connection ready");
    let response = sender.send_request(request).await.expect("response");
    assert_eq!(response.status(), 200, "{}: status", target.name);
    response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
}

/// Requests per second over one window with `connections` keep-alive
/// connections, each sending requests back to back.
async fn measure(target: &Target, body: Body, connections: usize, window: Duration) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let counting = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for connection in 0..connections {
        let mut sender = connect(target.addr).await;
        let target = Target {
            name: target.name,
            addr: target.addr,
            authorization: target.authorization.clone(),
        };
        let (stop, count, counting) = (stop.clone(), count.clone(), counting.clone());
        tasks.push(tokio::spawn(async move {
            // Connections start at different points of the id sequence.
            let mut n = connection as u64 * 97;
            while !stop.load(Ordering::Relaxed) {
                send(&mut sender, &target, body.bytes(n)).await;
                n += 1;
                if counting.load(Ordering::Relaxed) {
                    count.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    tokio::time::sleep(window / 4).await; // warm-up
    counting.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(window).await;
    let done = count.load(Ordering::Relaxed);
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.expect("load task");
    }
    done as f64 / elapsed.as_secs_f64()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let window = Duration::from_millis(env_number("HS_BENCH_WINDOW_MS", 2_000));
    let rounds = env_number("HS_BENCH_ROUNDS", 3) as usize;
    let entities = entities_json();

    let (hs_addr, _, _hs) = start_hs(&entities, false).await;
    let (hs_auth_addr, bearer, _hs_auth) = start_hs(&entities, true).await;
    let rusty_addr = start_rusty(&entities).await;

    // The bare handler returns exactly what hs returns.
    let hs_target = Target {
        name: "hs",
        addr: hs_addr,
        authorization: None,
    };
    let mut probe = connect(hs_addr).await;
    let by_id_bytes = send(&mut probe, &hs_target, Body::Fixed(BY_ID).bytes(0)).await;
    let by_filter_bytes = send(&mut probe, &hs_target, Body::Fixed(BY_FILTER).bytes(0)).await;
    let bare_addr = start_bare(by_id_bytes.clone(), by_filter_bytes.clone()).await;

    let targets = [
        hs_target,
        Target {
            name: "hs+auth",
            addr: hs_auth_addr,
            authorization: bearer,
        },
        Target {
            name: "rusty",
            addr: rusty_addr,
            authorization: None,
        },
        Target {
            name: "bare",
            addr: bare_addr,
            authorization: None,
        },
    ];

    // Every target answers both requests with the data asked for.
    for target in &targets {
        let mut sender = connect(target.addr).await;
        let one = send(&mut sender, target, Body::Fixed(BY_ID).bytes(0)).await;
        let all = send(&mut sender, target, Body::Fixed(BY_FILTER).bytes(0)).await;
        let one_text = String::from_utf8_lossy(&one);
        // The varying filter finds its point on every server (the bare
        // handler answers one fixed row of the same size).
        for n in [0, 500, 999].into_iter().filter(|_| target.name != "bare") {
            let found = send(&mut sender, target, Body::IdFilter.bytes(n)).await;
            let rows = serde_json::from_slice::<serde_json::Value>(&found).expect("JSON grid")
                ["rows"]
                .clone();
            assert_eq!(
                rows[0]["id"]["val"],
                format!("p-{n:04}"),
                "{}: id==@p-{n:04}",
                target.name
            );
        }
        let rows = serde_json::from_slice::<serde_json::Value>(&all).expect("JSON grid")["rows"]
            .as_array()
            .map_or(0, Vec::len);
        assert!(one_text.contains("p-0500"), "{}: {one_text}", target.name);
        assert_eq!(rows, POINTS, "{}: rows of the point read", target.name);
        println!(
            "{:8} by-id response {:6} bytes, point response {:7} bytes",
            target.name,
            one.len(),
            all.len()
        );
    }

    println!(
        "\nrequests/s, median of {rounds} windows of {} ms (servers interleaved)\n",
        window.as_millis()
    );
    println!(
        "| scenario | conns | hs | hs+auth | rusty | bare | hs/rusty (range) | hs/bare (range) |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (scenario, body) in [
        ("read by id", Body::Fixed(BY_ID)),
        ("read `id==@p-N`, N varying", Body::IdFilter),
        ("read point (1,000 rows)", Body::Fixed(BY_FILTER)),
    ] {
        for connections in [1, 32] {
            let mut samples: Vec<Vec<f64>> = vec![Vec::new(); targets.len()];
            for round in 0..rounds {
                // Every other round runs the servers in reverse order, so
                // that none always runs first or last.
                let mut order: Vec<usize> = (0..targets.len()).collect();
                if round % 2 == 1 {
                    order.reverse();
                }
                for i in order {
                    samples[i].push(measure(&targets[i], body, connections, window).await);
                }
            }
            let ratio = |other: usize| {
                let ratios: Vec<f64> = samples[0]
                    .iter()
                    .zip(&samples[other])
                    .map(|(hs, other)| hs / other)
                    .collect();
                let (low, high) = ratios
                    .iter()
                    .fold((f64::MAX, f64::MIN), |(l, h), r| (l.min(*r), h.max(*r)));
                format!("{:.2} ({low:.2}–{high:.2})", median(ratios))
            };
            let (vs_rusty, vs_bare) = (ratio(2), ratio(3));
            let rates: Vec<f64> = samples.into_iter().map(median).collect();
            println!(
                "| {scenario} | {connections} | {:.0} | {:.0} | {:.0} | {:.0} | {vs_rusty} | {vs_bare} |",
                rates[0], rates[1], rates[2], rates[3],
            );
        }
    }
}
