//! `hs demo`: a server in-process, a scripted tour through both transports,
//! and what the observers saw.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hs_core::observe::{FnObserver, MetricsObserver};
use hs_core::value::{Grid, Ref};
use hs_prometheus::Side;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::cli::{DemoArgs, EventLog, UserSpec};
use crate::client::{Client, ConnectOptions};
use crate::commands::parse_val;
use crate::error::CliError;
use crate::observers::{ObserverChoice, Observers};
use crate::output::{self, outln};
use crate::serve::{RunningServer, ServerConfig, load_store};

const USER: &str = "demo";
const PASSWORD: &str = "demo-pass";
const SENSOR: &str = "demo-ahu1-dat";
const SETPOINT: &str = "demo-ahu1-dat-sp";
/// The longest the tour waits for anything (a push, a disconnect).
const WAIT: Duration = Duration::from_secs(5);

/// `hs demo`.
pub(crate) async fn run(args: DemoArgs) -> Result<(), CliError> {
    let started = Instant::now();
    install_quiet_panic_hook();
    let panics = Arc::new(AtomicUsize::new(0));
    let flaky: Arc<dyn MetricsObserver> = {
        let panics = panics.clone();
        Arc::new(FnObserver::new().on_error(move |op, error_type| {
            panics.fetch_add(1, Ordering::Relaxed);
            panic!("FlakyObserver cannot cope with {op}/{error_type}");
        }))
    };
    let store = load_store(&[] as &[&str])?;
    if let Some(points) = args.size {
        store
            .update_entities(hs_core::demo::sized::entities(points))
            .map_err(|error| CliError::Usage(format!("--size {points}: {error}")))?;
    }
    let server = RunningServer::start(ServerConfig {
        listen: ([127, 0, 0, 1], 0).into(),
        store,
        users: vec![UserSpec {
            name: USER.to_owned(),
            password: PASSWORD.to_owned(),
            role: hs_core::auth::Role::Admin,
        }],
        observers: ObserverChoice {
            event_log: EventLog::Default,
            stats: true,
            metrics: true,
        },
        otlp: None,
        extra_observers: vec![flaky],
        max_connections: None,
        header_timeout: None,
        idle_timeout: None,
        token_ttl: None,
        // The SCRAM minimum: two logins in a debug build then take
        // milliseconds, not seconds (`hs serve` keeps hs-core's 600,000).
        scram_iterations: Some(hs_core::auth::DEFAULT_MIN_ITERATIONS),
        push: true,
        max_watches_per_connection: None,
        ws_send_budget: None,
        ws_stall_timeout: None,
        tls: None,
        cert_users: hs_core::auth::CertUserMap::new(),
    })
    .await?;
    outln!(
        "hs demo: a Haystack server on {} with the demo building ({} entities)",
        server.addr,
        server.store.len()
    )?;
    outln!(
        "  HTTP {}   WebSocket {}   metrics /metrics   SCRAM user {USER}",
        server.http_url(),
        server.ws_url()
    )?;
    outln!(
        "  server observers: LoggingObserver (the `log │` lines), StatsObserver, PrometheusObserver,"
    )?;
    outln!("  and FlakyObserver, which panics on every error: watch the transport shrug it off.")?;

    let steps = Steps::default();
    let result = tour(&server, &steps, args.size).await;
    steps.next("Shut down (every WebSocket gets close 1001; each disconnect is observed)")?;
    let stats = server.observers.stats.clone();
    let metrics_text = scrape_metrics(server.addr).await;
    server.shutdown().await?;
    result?;

    outln!("\n══ What the StatsObserver saw (server side, both transports) ══")?;
    if let Some(stats) = stats {
        outln!("{}", stats.snapshot())?;
    }
    outln!(
        "\n══ /metrics excerpt (haystack_* counts; buckets, sums and byte counters left out; side=client is the demo's own clients) ══"
    )?;
    match metrics_text {
        Ok(text) => {
            let mut lines: Vec<&str> = text
                .lines()
                .filter(|l| l.starts_with("haystack_"))
                .filter(|l| {
                    !l.contains("_bucket") && !l.contains("_sum{") && !l.contains("bytes_total")
                })
                .collect();
            lines.sort_unstable();
            for line in lines {
                outln!("{line}")?;
            }
        }
        Err(error) => outln!("(cannot scrape /metrics: {error})")?,
    }
    outln!(
        "\nFlakyObserver panicked {} times; every request was still answered and the other observers saw every event.",
        panics.load(Ordering::Relaxed)
    )?;
    outln!("Done in {:.1} s.", started.elapsed().as_secs_f64())?;
    Ok(())
}

/// The scripted traffic.
async fn tour(server: &RunningServer, steps: &Steps, size: Option<usize>) -> Result<(), CliError> {
    // The demo's clients report to the server's registry, labelled side=client.
    let client_observers = Observers::build(
        ObserverChoice {
            event_log: EventLog::Off,
            stats: false,
            metrics: true,
        },
        Side::Client,
        server.observers.metrics.clone(),
        None,
        &[],
    );
    let options = |url: String, observer: Arc<dyn MetricsObserver>| ConnectOptions {
        url,
        credentials: Some((USER.to_owned(), PASSWORD.to_owned())),
        timeout: WAIT,
        observer,
        wire: hs_core::codec::Format::Json,
        token: None,
        ws_auth: crate::cli::WsAuth::Scram,
        reconnect: None,
        tls: crate::tls::ClientTls::default(),
    };
    let http = Client::connect(&options(server.http_url(), client_observers.http.clone())).await?;
    let sensor = Ref::from(SENSOR);
    let setpoint = Ref::from(SETPOINT);

    steps.next("HTTP read `ahu` (the first request logs in with SCRAM-SHA-256)")?;
    let ahus = http.read_filter("ahu", None).await?;
    show(&output::table(&ahus, &["id".to_owned(), "dis".to_owned()]))?;

    steps.next(&format!("HTTP hisRead @{SENSOR} yesterday"))?;
    let his = http.his_read(&sensor, "yesterday").await?;
    outln!(
        "    {} samples at 15-minute intervals; the first three:",
        his.rows.len()
    )?;
    let mut first = his.clone();
    first.rows.truncate(3);
    show(&output::table(&first, &[]))?;

    steps.next(&format!("HTTP pointWrite @{SETPOINT} level 8 = 54°F"))?;
    http.point_write(&setpoint, 8, parse_val("54°F")?.as_ref(), "hs demo", None)
        .await?;
    let array = http.point_write_array(&setpoint).await?;
    let mut level8 = array.clone();
    level8.rows.retain(|row| row.get("val").is_some());
    show(&output::table(&level8, &[]))?;

    steps.next(&format!(
        "WebSocket watchSub @{SETPOINT}, then a pointWrite over HTTP, and the push"
    ))?;
    let ws = Client::connect(&options(server.ws_url(), client_observers.ws.clone())).await?;
    let mut pushes = ws.watch_events();
    let (watch_id, _) = ws
        .subscribe("hs demo", std::slice::from_ref(&setpoint), None)
        .await?;
    outln!("    watch {watch_id} open; writing 56°F at level 8 over HTTP...")?;
    http.point_write(&setpoint, 8, parse_val("56°F")?.as_ref(), "hs demo", None)
        .await?;
    let next_push = async {
        match pushes.as_mut() {
            Some(stream) => ws.next_push(&watch_id, stream).await,
            None => None,
        }
    };
    match tokio::time::timeout(WAIT, next_push).await {
        Ok(Some(push)) => {
            outln!("    push received over WebSocket:")?;
            let columns: Vec<String> = ["id", "curVal", "writeLevel", "writeVal"]
                .map(str::to_owned)
                .into();
            show(&output::table(&push, &columns))
        }
        Ok(None) => outln!("    (the connection ended before the push)"),
        Err(_) => outln!("    (no push within {WAIT:?})"),
    }?;

    steps.next("WebSocket batch: read, hisRead and about in one frame")?;
    let results = ws
        .batch(vec![
            (
                "read".to_owned(),
                hs_ws_client::requests::read_ids(std::slice::from_ref(&sensor)),
            ),
            (
                "hisRead".to_owned(),
                hs_ws_client::requests::his_read(&sensor, "today"),
            ),
            ("about".to_owned(), hs_ws_client::requests::empty()),
        ])
        .await;
    for (op, result) in ["read", "hisRead", "about"].into_iter().zip(results) {
        match result {
            Ok(grid) => outln!(
                "    {op:<8} {} row(s){}",
                grid.rows.len(),
                about_line(op, &grid)
            ),
            Err(error) => outln!("    {op:<8} failed: {error}"),
        }?;
    }

    steps.next("Failing requests: a bad filter over HTTP, an unknown op over WebSocket")?;
    match http.read_filter("point and (", None).await {
        Ok(_) => outln!("    unexpectedly succeeded"),
        Err(error) => outln!("    HTTP read `point and (` → {} ({})", error, error.kind()),
    }?;
    match ws.call("fooBar", hs_ws_client::requests::empty()).await {
        Ok(_) => outln!("    unexpectedly succeeded"),
        Err(error) => outln!("    WebSocket fooBar → {} ({})", error, error.kind()),
    }?;
    outln!(
        "    FlakyObserver panicked on both errors: the guard logged the first at WARN and the next at DEBUG."
    )?;

    if let Some(points) = size {
        steps.next(&format!(
            "HTTP reads on the generated building of {points} points, explained by the server"
        ))?;
        let middle = (points / 2).max(1);
        let equip = middle.div_ceil(hs_core::demo::sized::POINTS_PER_EQUIP);
        for filter in [
            format!("id==@p{middle}"),
            format!("equipRef==@e{equip} and point and not his"),
            "equipRef->siteRef==@s1 and point and curVal > 70°F".to_owned(),
        ] {
            let request = hs_core::ops::build::read_explain(&filter, None);
            let started = Instant::now();
            let answer = http.call("read", request).await?;
            let elapsed = started.elapsed();
            outln!(
                "    {filter}: {} row(s) in {:.2} ms over HTTP",
                answer.rows.len(),
                elapsed.as_secs_f64() * 1e3
            )?;
            if let Some(hs_core::value::Value::Str(plan)) = answer
                .meta
                .as_ref()
                .and_then(|meta| meta.get(hs_core::ops::ReadRequest::EXPLAIN))
            {
                show(plan.as_str())?;
            }
        }
    }

    steps.next("Close the clients")?;
    ws.watch_unsub(&watch_id, &[], true).await?;
    ws.finish().await;
    http.finish().await;
    wait_for_disconnects(server).await;
    Ok(())
}

/// Numbers the tour's steps as they are shown.
#[derive(Default)]
struct Steps(std::cell::Cell<u32>);

impl Steps {
    fn next(&self, title: &str) -> Result<(), CliError> {
        let n = self.0.get() + 1;
        self.0.set(n);
        outln!("\n▶ {n}. {title}")
    }
}

fn show(text: &str) -> Result<(), CliError> {
    for line in text.lines() {
        outln!("    {line}")?;
    }
    Ok(())
}

fn about_line(op: &str, grid: &Grid) -> String {
    if op != "about" {
        return String::new();
    }
    grid.rows
        .first()
        .and_then(|row| row.get("serverName"))
        .map(|name| format!(", serverName {}", output::cell(name)))
        .unwrap_or_default()
}

/// Waits (bounded) until the server has observed every WebSocket disconnect.
async fn wait_for_disconnects(server: &RunningServer) {
    let Some(stats) = &server.observers.stats else {
        return;
    };
    let deadline = Instant::now() + WAIT;
    while stats.snapshot().ws_active() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// `GET /metrics` over a plain socket, as Prometheus would scrape it.
async fn scrape_metrics(addr: std::net::SocketAddr) -> Result<String, CliError> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream
            .write_all(b"GET /metrics HTTP/1.0\r\nHost: hs\r\nAccept: text/plain\r\n\r\n")
            .await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        Ok::<_, std::io::Error>(response)
    };
    let response = tokio::time::timeout(WAIT, exchange)
        .await
        .map_err(|_| CliError::Protocol("scraping /metrics timed out".to_owned()))??;
    let text = String::from_utf8_lossy(&response);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    Ok(body.to_owned())
}

/// The default hook prints a backtrace banner for every observer panic;
/// the guard already logs them, so print one short line instead.
fn install_quiet_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        // A write error here must not become a panic inside the hook.
        let _ = writeln!(
            std::io::stdout().lock(),
            "  hook │ panic: {message} (the process-wide hook still runs; catch_unwind then contains it)"
        );
    }));
}
