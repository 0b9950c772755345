//! OTLP export to a real receiver (HTTP/protobuf; gRPC with the `grpc`
//! feature): every metric's name, unit, attributes and values, exactly,
//! after a scripted session of events on three components.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Attrs, Exported, Value, attrs, buckets_of, hs_metrics, http_receiver};
use hs_observe::{CompositeObserver, FnObserver, MetricsObserver, Side, Transport};
use hs_otel::{DURATION_BOUNDARIES, OtlpMetrics, OtlpProtocol};

/// Long enough that only the test's own flushes export.
const NEVER: Duration = Duration::from_secs(3600);

fn secs(values: &[Duration]) -> Vec<f64> {
    values.iter().map(Duration::as_secs_f64).collect()
}

fn histogram(values: &[Duration]) -> Value {
    let values = secs(values);
    Value::Histogram {
        count: values.len() as u64,
        // The SDK adds in recording order; so does this.
        sum: values.iter().fold(0.0, |sum, v| sum + v),
        buckets: buckets_of(&values),
    }
}

fn call(side: &str, transport: &str, op: &str) -> Attrs {
    attrs(&[
        ("rpc.system.name", "haystack"),
        ("rpc.method", op),
        ("hs.side", side),
        ("hs.transport", transport),
    ])
}

fn failed(side: &str, transport: &str, op: &str, error: &str) -> Attrs {
    let mut attrs = call(side, transport, op);
    attrs.insert("error.type".to_owned(), error.to_owned());
    attrs
}

fn frame(side: &str, op: &str, direction: &str) -> Attrs {
    attrs(&[
        ("rpc.method", op),
        ("network.io.direction", direction),
        ("hs.side", side),
    ])
}

fn metric(unit: &str, kind: &'static str, points: Vec<(Attrs, Value)>) -> Exported {
    Exported {
        unit: unit.to_owned(),
        kind,
        explicit_bounds: if kind == "histogram" {
            DURATION_BOUNDARIES.to_vec()
        } else {
            Vec::new()
        },
        points: points.into_iter().collect(),
    }
}

async fn flush(otlp: &OtlpMetrics) {
    let otlp = otlp.clone();
    tokio::task::spawn_blocking(move || otlp.force_flush())
        .await
        .unwrap()
        .unwrap();
}

/// Fires a scripted session on an HTTP server, a WebSocket server and a
/// WebSocket client; returns what each metric must hold.
fn scripted_session(otlp: &OtlpMetrics) -> BTreeMap<String, Exported> {
    let http_server = otlp.observer(Side::Server, Transport::Http);
    let ws_server = otlp.observer(Side::Server, Transport::Ws);
    let ws_client = otlp.observer(Side::Client, Transport::Ws);

    let http_reads = [Duration::from_micros(9), Duration::from_micros(12)];
    for d in http_reads {
        http_server.on_request("read", d);
    }
    let his_read = Duration::from_millis(3);
    http_server.on_request("hisRead", his_read);
    let custom = Duration::from_millis(1);
    http_server.on_request("someCustomOp", custom);
    http_server.on_error("read", "bad_request");
    http_server.on_error("read", "bad_request");
    http_server.on_error("nav", "not_a_kind");

    ws_server.on_ws_connect("127.0.0.1:50000");
    ws_server.on_ws_connect("127.0.0.1:50001");
    ws_server.on_ws_disconnect("127.0.0.1:50000");
    ws_server.on_ws_message_recv("read", 100);
    ws_server.on_ws_message_recv("read", 120);
    ws_server.on_ws_message_sent("read", 400);
    ws_server.on_ws_message_recv("batch", 50);
    ws_server.on_ws_message_sent("push", 30);
    ws_server.on_ws_message_recv("notAnOp", 7);
    let ws_read = Duration::from_micros(8);
    ws_server.on_request("read", ws_read);
    ws_server.on_error("watchPoll", "overloaded");

    ws_client.on_ws_connect("ws://127.0.0.1:8080/api/ws");
    ws_client.on_ws_message_sent("read", 100);
    ws_client.on_ws_message_recv("read", 400);
    let client_read = Duration::from_millis(2);
    ws_client.on_request("read", client_read);
    ws_client.on_error("hisRead", "timeout");
    ws_client.on_ws_disconnect("ws://127.0.0.1:8080/api/ws");

    let mut expected = BTreeMap::new();
    expected.insert(
        "rpc.server.call.duration".to_owned(),
        metric(
            "s",
            "histogram",
            vec![
                (call("server", "http", "read"), histogram(&http_reads)),
                (call("server", "http", "hisRead"), histogram(&[his_read])),
                (call("server", "http", "_other"), histogram(&[custom])),
                (call("server", "ws", "read"), histogram(&[ws_read])),
            ],
        ),
    );
    expected.insert(
        "rpc.client.call.duration".to_owned(),
        metric(
            "s",
            "histogram",
            vec![(call("client", "ws", "read"), histogram(&[client_read]))],
        ),
    );
    expected.insert(
        "hs.rpc.server.call.errors".to_owned(),
        metric(
            "{call}",
            "sum (monotonic)",
            vec![
                (
                    failed("server", "http", "read", "bad_request"),
                    Value::Sum(2),
                ),
                (failed("server", "http", "nav", "_other"), Value::Sum(1)),
                (
                    failed("server", "ws", "watchPoll", "overloaded"),
                    Value::Sum(1),
                ),
            ],
        ),
    );
    expected.insert(
        "hs.rpc.client.call.errors".to_owned(),
        metric(
            "{call}",
            "sum (monotonic)",
            vec![(failed("client", "ws", "hisRead", "timeout"), Value::Sum(1))],
        ),
    );
    expected.insert(
        "hs.ws.connections".to_owned(),
        metric(
            "{connection}",
            "sum (monotonic)",
            vec![
                (attrs(&[("hs.side", "server")]), Value::Sum(2)),
                (attrs(&[("hs.side", "client")]), Value::Sum(1)),
            ],
        ),
    );
    expected.insert(
        "hs.ws.active_connections".to_owned(),
        metric(
            "{connection}",
            "sum",
            vec![
                (attrs(&[("hs.side", "server")]), Value::Sum(1)),
                (attrs(&[("hs.side", "client")]), Value::Sum(0)),
            ],
        ),
    );
    expected.insert(
        "hs.ws.messages".to_owned(),
        metric(
            "{message}",
            "sum (monotonic)",
            vec![
                (frame("server", "read", "receive"), Value::Sum(2)),
                (frame("server", "read", "transmit"), Value::Sum(1)),
                (frame("server", "batch", "receive"), Value::Sum(1)),
                (frame("server", "push", "transmit"), Value::Sum(1)),
                (frame("server", "_other", "receive"), Value::Sum(1)),
                (frame("client", "read", "transmit"), Value::Sum(1)),
                (frame("client", "read", "receive"), Value::Sum(1)),
            ],
        ),
    );
    expected.insert(
        "hs.ws.io".to_owned(),
        metric(
            "By",
            "sum (monotonic)",
            vec![
                (frame("server", "read", "receive"), Value::Sum(220)),
                (frame("server", "read", "transmit"), Value::Sum(400)),
                (frame("server", "batch", "receive"), Value::Sum(50)),
                (frame("server", "push", "transmit"), Value::Sum(30)),
                (frame("server", "_other", "receive"), Value::Sum(7)),
                (frame("client", "read", "transmit"), Value::Sum(100)),
                (frame("client", "read", "receive"), Value::Sum(400)),
            ],
        ),
    );
    expected
}

fn assert_metrics(actual: &BTreeMap<String, Exported>, expected: &BTreeMap<String, Exported>) {
    assert_eq!(
        actual.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "metric names"
    );
    for (name, want) in expected {
        assert_eq!(&actual[name], want, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripted_session_exports_exact_metrics_over_http() {
    let mut receiver = http_receiver().await;
    let otlp = OtlpMetrics::builder()
        .endpoint(receiver.url())
        .protocol(OtlpProtocol::HttpProtobuf)
        .interval(NEVER)
        .service_name("hs-otel-test")
        .build()
        .unwrap();
    assert_eq!(otlp.protocol(), OtlpProtocol::HttpProtobuf);

    let expected = scripted_session(&otlp);
    flush(&otlp).await;
    let request = receiver.next().await;
    assert_metrics(&hs_metrics(&request, "hs-otel-test"), &expected);

    // Cumulative: a second flush after more events carries the totals.
    let again = otlp.observer(Side::Server, Transport::Http);
    again.on_error("read", "bad_request");
    let shutdown = {
        let otlp = otlp.clone();
        tokio::task::spawn_blocking(move || otlp.shutdown())
    };
    shutdown.await.unwrap().unwrap();
    let last = hs_metrics(&receiver.next().await, "hs-otel-test");
    assert_eq!(
        last["hs.rpc.server.call.errors"].points[&failed("server", "http", "read", "bad_request")],
        Value::Sum(3)
    );
    receiver.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_component_exports_zero_connections_before_any() {
    let mut receiver = http_receiver().await;
    let otlp = OtlpMetrics::builder()
        .endpoint(format!("{}/", receiver.url()))
        .interval(NEVER)
        .service_name("idle")
        .build()
        .unwrap();
    let _ws = otlp.observer(Side::Server, Transport::Ws);
    let _http = otlp.observer(Side::Server, Transport::Http);
    flush(&otlp).await;
    let metrics = hs_metrics(&receiver.next().await, "idle");
    let zero = [(attrs(&[("hs.side", "server")]), Value::Sum(0))];
    assert_eq!(
        metrics.keys().collect::<Vec<_>>(),
        ["hs.ws.active_connections", "hs.ws.connections"]
    );
    assert_eq!(metrics["hs.ws.connections"].points, zero.clone().into());
    assert_eq!(metrics["hs.ws.active_connections"].points, zero.into());
    receiver.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_observer_beside_otel_is_isolated() {
    let mut receiver = http_receiver().await;
    let otlp = OtlpMetrics::builder()
        .endpoint(receiver.url())
        .interval(NEVER)
        .service_name("isolated")
        .build()
        .unwrap();
    let observer = CompositeObserver::builder()
        .with(
            FnObserver::new()
                .on_request(|_, _| panic!("buggy user observer"))
                .on_error(|_, _| panic!("buggy user observer")),
        )
        .with(otlp.observer(Side::Server, Transport::Http))
        .build();
    std::panic::set_hook(Box::new(|_| {}));
    let d = Duration::from_micros(20);
    for _ in 0..3 {
        observer.on_request("read", d);
        observer.on_error("read", "forbidden");
    }
    let _ = std::panic::take_hook();
    flush(&otlp).await;
    let metrics = hs_metrics(&receiver.next().await, "isolated");
    assert_eq!(
        metrics["rpc.server.call.duration"].points,
        [(call("server", "http", "read"), histogram(&[d, d, d]))].into()
    );
    assert_eq!(
        metrics["hs.rpc.server.call.errors"].points,
        [(failed("server", "http", "read", "forbidden"), Value::Sum(3))].into()
    );
    receiver.stop().await;
}

#[cfg(feature = "grpc")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripted_session_exports_exact_metrics_over_grpc() {
    let mut receiver = common::grpc_receiver().await;
    let otlp = OtlpMetrics::builder()
        .endpoint(receiver.url())
        .protocol(OtlpProtocol::Grpc)
        .interval(NEVER)
        .service_name("hs-otel-grpc")
        .build()
        .unwrap();
    assert_eq!(otlp.protocol(), OtlpProtocol::Grpc);
    let expected = scripted_session(&otlp);
    flush(&otlp).await;
    assert_metrics(
        &hs_metrics(&receiver.next().await, "hs-otel-grpc"),
        &expected,
    );
    let shutdown = {
        let otlp = otlp.clone();
        tokio::task::spawn_blocking(move || otlp.shutdown())
    };
    shutdown.await.unwrap().unwrap();
    receiver.stop().await;
}

#[cfg(feature = "grpc")]
#[test]
fn grpc_outside_a_runtime_is_refused() {
    let error = OtlpMetrics::builder()
        .endpoint("http://127.0.0.1:4317")
        .protocol(OtlpProtocol::Grpc)
        .build()
        .unwrap_err();
    assert_eq!(error.as_str(), "no_runtime");
}

/// Set in the child process that `the_standard_environment_configures_the_export` runs.
const CHILD: &str = "HS_OTEL_ENV_CHILD";

/// Runs this test binary again with only `env_child` selected and `vars`
/// set (the environment is process-wide: setting it in this process would
/// race the other tests); returns its combined output if it failed.
fn run_env_child(vars: &[(&str, String)]) -> Result<(), String> {
    let mut command = std::process::Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "env_child",
            "--exact",
            "--include-ignored",
            "--test-threads=1",
        ])
        .env(CHILD, "1");
    for var in [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
        "OTEL_SERVICE_NAME",
        "OTEL_RESOURCE_ATTRIBUTES",
        "OTEL_METRIC_EXPORT_INTERVAL",
    ] {
        command.env_remove(var);
    }
    for (key, value) in vars {
        command.env(key, value);
    }
    // The child's only wait is its export, bounded by the exporter's timeout.
    let output = command.output().unwrap();
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// The child half of `the_standard_environment_configures_the_export`:
/// builds with nothing set, so everything comes from the environment.
/// Ignored in a normal run, where it has no receiver to talk to.
#[test]
#[ignore = "run by the_standard_environment_configures_the_export in a child process"]
fn env_child() {
    assert_eq!(
        std::env::var(CHILD).as_deref(),
        Ok("1"),
        "run by the parent test only"
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // Inside the runtime, which gRPC needs; HTTP does not mind.
    let otlp = runtime.block_on(async { OtlpMetrics::builder().build().unwrap() });
    let expected = std::env::var("HS_OTEL_EXPECT_PROTOCOL").unwrap();
    assert_eq!(otlp.protocol().as_str(), expected);
    otlp.observer(Side::Server, Transport::Http)
        .on_error("read", "timeout");
    // `shutdown` exports what was recorded, then stops the reader.
    otlp.shutdown().unwrap();
    drop(runtime);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standard_environment_configures_the_export() {
    let receivers = vec![
        (http_receiver().await, "http/protobuf"),
        #[cfg(feature = "grpc")]
        (common::grpc_receiver().await, "grpc"),
    ];
    for (mut receiver, protocol) in receivers {
        let vars = vec![
            ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol.to_owned()),
            ("OTEL_SERVICE_NAME", format!("from-env-{protocol}")),
            // Longer than the child lives: only `shutdown` exports.
            ("OTEL_METRIC_EXPORT_INTERVAL", "3600000".to_owned()),
            ("HS_OTEL_EXPECT_PROTOCOL", protocol.to_owned()),
        ];
        tokio::task::spawn_blocking(move || run_env_child(&vars))
            .await
            .unwrap()
            .unwrap_or_else(|output| panic!("child over {protocol} failed:\n{output}"));
        let metrics = hs_metrics(&receiver.next().await, &format!("from-env-{protocol}"));
        assert_eq!(
            metrics.keys().collect::<Vec<_>>(),
            ["hs.rpc.server.call.errors"],
            "{protocol}"
        );
        assert_eq!(
            metrics["hs.rpc.server.call.errors"].points,
            [(failed("server", "http", "read", "timeout"), Value::Sum(1))].into(),
            "{protocol}"
        );
        receiver.stop().await;
    }
}
