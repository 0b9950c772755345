//! `hs bench`: a closed-loop load generator driving `read` by id through the
//! real clients, with a progress bar and a result table.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hs_core::observe::{ErrorKind, noop};
use indicatif::{ProgressBar, ProgressStyle};
use parking_lot::Mutex;

use crate::cli::{BenchArgs, BenchTransport, EventLog};
use crate::client::{Client, ConnectOptions, normalise_url, parse_ref};
use crate::error::CliError;
use crate::observers::ObserverChoice;
use crate::output::{outln, plural};
use crate::serve::{RunningServer, ServerConfig, load_store};

/// What one run measured.
#[derive(Debug, Default)]
pub(crate) struct BenchReport {
    /// Requests answered without error.
    pub(crate) ok: u64,
    /// Failed requests by error type.
    pub(crate) errors: BTreeMap<&'static str, u64>,
    /// The message of the first failed request.
    pub(crate) first_error: Option<String>,
    /// Wall time of the run.
    pub(crate) elapsed: Duration,
    /// Round trips of the successful requests, in microseconds, sorted.
    pub(crate) latencies_us: Vec<u32>,
}

impl BenchReport {
    fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// `Err` naming how many requests failed, by error type, once.
    fn outcome(&self) -> Result<(), CliError> {
        let failed = self.error_count();
        if failed == 0 {
            return Ok(());
        }
        Err(CliError::RequestsFailed {
            failed,
            total: self.ok + failed,
            by_kind: self.errors_by_kind(),
            first: self.first_error.clone().unwrap_or_default(),
        })
    }

    /// `connect 3, timeout 1`.
    fn errors_by_kind(&self) -> String {
        let kinds: Vec<String> = self
            .errors
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        kinds.join(", ")
    }

    fn percentile(&self, p: f64) -> Duration {
        if self.latencies_us.is_empty() {
            return Duration::ZERO;
        }
        let index = ((self.latencies_us.len() - 1) as f64 * p).round() as usize;
        Duration::from_micros(u64::from(self.latencies_us[index]))
    }

    /// The result table.
    pub(crate) fn table(&self) -> String {
        let total = self.ok + self.error_count();
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let errors = if self.errors.is_empty() {
            "0".to_owned()
        } else {
            format!("{} ({})", self.error_count(), self.errors_by_kind())
        };
        let rows = [
            ("requests", total.to_string()),
            ("requests/s", format!("{:.0}", total as f64 / secs)),
            ("p50", millis(self.percentile(0.50))),
            ("p99", millis(self.percentile(0.99))),
            ("max", millis(self.percentile(1.0))),
            ("errors", errors),
            ("elapsed", format!("{secs:.2} s")),
        ];
        let mut out = String::from("metric      value\n──────────  ─────────────\n");
        for (name, value) in rows {
            out.push_str(&format!("{name:<10}  {value}\n"));
        }
        out
    }
}

fn millis(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1_000.0)
}

/// When a run stops.
#[derive(Debug, Clone, Copy)]
enum Budget {
    Time(Duration),
    Requests(u64),
}

/// `hs bench`.
pub(crate) async fn run(args: BenchArgs) -> Result<(), CliError> {
    // Before the in-process server starts: a bad file ends the run at once.
    let tls = crate::tls::ClientTls::load(&args.tls)?;
    let mut server = None;
    let url = match &args.url {
        Some(url) => normalise_url(url)?.1,
        None => {
            let running = RunningServer::start(ServerConfig {
                listen: ([127, 0, 0, 1], 0).into(),
                store: load_store(&[] as &[&str])?,
                users: Vec::new(),
                observers: ObserverChoice {
                    event_log: EventLog::Off,
                    stats: false,
                    metrics: true,
                },
                otlp: None,
                extra_observers: Vec::new(),
                max_connections: None,
                header_timeout: None,
                idle_timeout: None,
                token_ttl: None,
                scram_iterations: None,
                push: true,
                max_watches_per_connection: None,
                ws_send_budget: None,
                ws_stall_timeout: None,
                tls: None,
                cert_users: hs_core::auth::CertUserMap::new(),
            })
            .await?;
            let url = match args.transport {
                BenchTransport::Http => running.http_url(),
                BenchTransport::Ws => running.ws_url(),
            };
            server = Some(running);
            url
        }
    };
    let budget = match args.requests {
        Some(n) => Budget::Requests(n),
        None => Budget::Time(args.duration),
    };
    outln!(
        "hs bench: read @{} over {url}{}",
        args.id.trim_start_matches('@'),
        if server.is_some() {
            " (in-process server)"
        } else {
            ""
        }
    )?;
    outln!(
        "{} x {} in flight, {}",
        plural(args.connections.max(1), "connection", "connections"),
        args.in_flight.max(1),
        match budget {
            Budget::Time(d) => format!("{:.1} s", d.as_secs_f64()),
            Budget::Requests(n) => format!("{n} requests"),
        }
    )?;
    let options = ConnectOptions {
        url,
        credentials: args.user.clone().zip(args.password.clone()),
        timeout: Duration::from_secs(10),
        observer: noop(),
        wire: hs_core::codec::Format::Json,
        token: None,
        ws_auth: crate::cli::WsAuth::Scram,
        reconnect: None,
        tls,
    };
    let report = drive(&options, &args, budget).await;
    if let Some(server) = server {
        server.shutdown().await?;
    }
    let report = report?;
    outln!("\n{}", report.table())?;
    report.outcome()
}

async fn drive(
    options: &ConnectOptions,
    args: &BenchArgs,
    budget: Budget,
) -> Result<BenchReport, CliError> {
    let id = parse_ref(&args.id);
    let mut clients = Vec::with_capacity(args.connections.max(1));
    for _ in 0..args.connections.max(1) {
        let client = Client::connect(options).await?;
        // One untimed read first: a server that cannot be reached or refuses
        // the login fails the command now, with one message, instead of
        // failing every request; and an HTTP login stays out of the timings,
        // as the WebSocket one does.
        client.read_ids(std::slice::from_ref(&id)).await?;
        clients.push(Arc::new(client));
    }
    let progress = progress_bar(budget, args.quiet);
    let issued = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let errors: Arc<Mutex<BTreeMap<&'static str, u64>>> = Arc::default();
    let first_error: Arc<Mutex<Option<String>>> = Arc::default();
    let started = Instant::now();
    let deadline = match budget {
        Budget::Time(d) => Some(started + d),
        Budget::Requests(_) => None,
    };
    let mut workers = Vec::new();
    for client in &clients {
        for _ in 0..args.in_flight.max(1) {
            let client = client.clone();
            let (issued, done, errors, first_error, progress, id) = (
                issued.clone(),
                done.clone(),
                errors.clone(),
                first_error.clone(),
                progress.clone(),
                id.clone(),
            );
            workers.push(tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(4_096);
                loop {
                    match budget {
                        Budget::Time(_) => {
                            if deadline.is_some_and(|d| Instant::now() >= d) {
                                break;
                            }
                        }
                        Budget::Requests(n) => {
                            if issued.fetch_add(1, Ordering::Relaxed) >= n {
                                break;
                            }
                        }
                    }
                    let sent = Instant::now();
                    match client.read_ids(std::slice::from_ref(&id)).await {
                        Ok(_) => {
                            let us = sent.elapsed().as_micros();
                            latencies.push(u32::try_from(us).unwrap_or(u32::MAX));
                        }
                        Err(error) => {
                            let kind = error.kind();
                            *errors.lock().entry(kind.as_str()).or_insert(0) += 1;
                            first_error.lock().get_or_insert_with(|| error.to_string());
                            // The server went away or stopped accepting the
                            // login: later requests would only fail the same
                            // way, so this worker stops (counted once).
                            if matches!(
                                kind,
                                ErrorKind::Connect | ErrorKind::ConnectionClosed | ErrorKind::Auth
                            ) {
                                done.fetch_add(1, Ordering::Relaxed);
                                break;
                            }
                        }
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                    if let Budget::Requests(_) = budget {
                        progress.inc(1);
                    }
                }
                latencies
            }));
        }
    }
    let ticker = {
        let (progress, done, errors) = (progress.clone(), done.clone(), errors.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let elapsed = started.elapsed();
                if let Budget::Time(_) = budget {
                    progress.set_position(elapsed.as_millis() as u64);
                }
                let n = done.load(Ordering::Relaxed);
                let failed: u64 = errors.lock().values().sum();
                progress.set_message(format!(
                    "{n} requests, {:.0}/s, {failed} errors",
                    n as f64 / elapsed.as_secs_f64().max(1e-3)
                ));
            }
        })
    };
    let mut report = BenchReport::default();
    for worker in workers {
        if let Ok(mut latencies) = worker.await {
            report.latencies_us.append(&mut latencies);
        }
    }
    report.elapsed = started.elapsed();
    ticker.abort();
    progress.finish_and_clear();
    report.latencies_us.sort_unstable();
    report.ok = report.latencies_us.len() as u64;
    report.errors = std::mem::take(&mut *errors.lock());
    report.first_error = first_error.lock().take();
    for client in clients {
        client.finish().await;
    }
    Ok(report)
}

fn progress_bar(budget: Budget, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let (len, template) = match budget {
        Budget::Time(d) => (
            d.as_millis() as u64,
            "{spinner} [{elapsed_precise}] {wide_bar} {msg}",
        ),
        Budget::Requests(n) => (
            n,
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg}",
        ),
    };
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("█▉▊▋▌▍▎▏ "));
    }
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_shows_rate_percentiles_and_errors() {
        let report = BenchReport {
            ok: 4,
            errors: BTreeMap::from([("timeout", 1)]),
            elapsed: Duration::from_secs(1),
            latencies_us: vec![100, 200, 300, 10_000],
            first_error: Some("read timed out after 10s".to_owned()),
        };
        let table = report.table();
        assert!(table.contains("requests    5\n"), "{table}");
        assert!(table.contains("requests/s  5\n"), "{table}");
        assert!(table.contains("p50         0.300 ms"), "{table}");
        assert!(table.contains("p99         10.000 ms"), "{table}");
        assert!(table.contains("errors      1 (timeout 1)"), "{table}");
        let error = report.outcome().unwrap_err().to_string();
        assert_eq!(
            error,
            "1 of 5 requests failed (timeout 1); the first: read timed out after 10s"
        );
    }
}
