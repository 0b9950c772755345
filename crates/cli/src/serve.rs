//! `hs serve`, and the in-process server `hs bench` and `hs demo` start:
//! the HTTP API, the WebSocket endpoint and `/metrics` on one port.

use hs_core::observe::targets;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hs_core::auth::{CertUserMap, ScramServer, TokenStore, UserStore};
use hs_core::observe::MetricsObserver;
use hs_core::ops::HaystackOps;
use hs_core::store::MemoryStore;
use hs_http_server::{HttpServer, ServerTls};
use hs_otel::OtlpMetrics;
use hs_prometheus::{PrometheusMetrics, Side, metrics_router};
use hs_ws_server::{WsConfig, WsServerState};

use crate::cli::{ServeArgs, UserSpec};
use crate::error::CliError;
use crate::observers::{ObserverChoice, Observers};
use crate::output::{outln, plural};

/// How long shutdown waits for connections and in-flight requests.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(800);

/// What to serve and how.
pub(crate) struct ServerConfig {
    /// Address to bind.
    pub(crate) listen: SocketAddr,
    /// The store.
    pub(crate) store: Arc<MemoryStore>,
    /// SCRAM users; none means no authentication.
    pub(crate) users: Vec<UserSpec>,
    /// Which observers to attach.
    pub(crate) observers: ObserverChoice,
    /// The OTLP export the observers record into, when on.
    pub(crate) otlp: Option<OtlpMetrics>,
    /// Observers added beside the chosen ones (each guarded separately).
    pub(crate) extra_observers: Vec<Arc<dyn MetricsObserver>>,
    /// The most connections at once, HTTP and WebSocket together.
    pub(crate) max_connections: Option<usize>,
    /// Time to send a request's headers, and to wait for the next request
    /// (default: hs-http-server's).
    pub(crate) header_timeout: Option<Duration>,
    /// Idle time of a kept-alive HTTP connection (default: hs-http-server's).
    pub(crate) idle_timeout: Option<Duration>,
    /// Lifetime of issued bearer tokens (default: hs-core's, 1 h).
    pub(crate) token_ttl: Option<Duration>,
    /// PBKDF2 iterations for the users' SCRAM credentials (default: hs-core's).
    pub(crate) scram_iterations: Option<u32>,
    /// Whether the WebSocket endpoint pushes watch changes.
    pub(crate) push: bool,
    /// The most watches one WebSocket connection holds (default: hs-ws-server's).
    pub(crate) max_watches_per_connection: Option<usize>,
    /// Bytes of answers one WebSocket connection may hold (default: hs-ws-server's).
    pub(crate) ws_send_budget: Option<usize>,
    /// How long a connection may stay over its send budget (default: hs-ws-server's).
    pub(crate) ws_stall_timeout: Option<Duration>,
    /// HTTPS and WSS instead of plain text.
    pub(crate) tls: Option<ServerTls>,
    /// Verified client certificates that stand for a login.
    pub(crate) cert_users: CertUserMap,
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("listen", &self.listen)
            .field("entities", &self.store.len())
            .field("users", &self.users.len())
            .field("observers", &self.observers)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

/// A running server.
#[derive(Debug)]
pub(crate) struct RunningServer {
    http: HttpServer,
    ws: WsServerState,
    /// Whether it serves HTTPS and WSS.
    tls: bool,
    /// The bound address.
    pub(crate) addr: SocketAddr,
    /// The observers attached (stats and metrics handles inside).
    pub(crate) observers: Observers,
    /// The served store.
    pub(crate) store: Arc<MemoryStore>,
}

impl RunningServer {
    /// Binds and starts serving.
    pub(crate) async fn start(config: ServerConfig) -> Result<RunningServer, CliError> {
        let observers = Observers::build(
            config.observers,
            Side::Server,
            None::<PrometheusMetrics>,
            config.otlp,
            &config.extra_observers,
        );
        let ops: Arc<dyn HaystackOps> = config.store.clone();
        let scram = (!config.users.is_empty()).then(|| {
            let users = match config.scram_iterations {
                Some(iterations) => UserStore::new().with_iterations(iterations),
                None => UserStore::new(),
            };
            for user in &config.users {
                users.add_user(user.name.clone(), &user.password, user.role);
            }
            let tokens = match config.token_ttl {
                Some(ttl) => TokenStore::new().with_ttl(ttl),
                None => TokenStore::new(),
            };
            ScramServer::new(users, tokens)
        });

        let mut ws_config = WsConfig::default();
        if let Some(max) = config.max_connections {
            ws_config = ws_config.with_max_connections(max);
        }
        ws_config = ws_config.with_push(config.push);
        if let Some(max) = config.max_watches_per_connection {
            ws_config = ws_config.with_max_watches_per_connection(max);
        }
        if let Some(bytes) = config.ws_send_budget {
            ws_config = ws_config.with_send_budget(bytes);
        }
        if let Some(timeout) = config.ws_stall_timeout {
            ws_config = ws_config.with_stall_timeout(timeout);
        }
        let mut ws = WsServerState::builder(ops.clone())
            .observer(observers.ws.clone())
            .config(ws_config)
            .cert_users(config.cert_users.clone());
        if let Some(scram) = &scram {
            ws = ws.auth(scram.clone());
        }
        let ws = ws.build();

        let mut http = HttpServer::builder(ops)
            .observer(observers.http.clone())
            .shutdown_grace(SHUTDOWN_GRACE)
            .cert_users(config.cert_users)
            .merge(hs_ws_server::router(ws.clone()));
        let tls = config.tls.is_some();
        if let Some(server_tls) = config.tls {
            http = http.tls(server_tls);
        }
        if let Some(metrics) = &observers.metrics {
            http = http.merge(metrics_router(metrics.clone()));
        }
        if let Some(scram) = scram {
            http = http.auth(scram);
        }
        if let Some(max) = config.max_connections {
            http = http.max_connections(max);
        }
        if let Some(timeout) = config.header_timeout {
            http = http.header_read_timeout(timeout);
        }
        if let Some(timeout) = config.idle_timeout {
            http = http.idle_timeout(timeout);
        }
        let http = http.bind(config.listen).await?;
        let addr = http.local_addr();
        Ok(RunningServer {
            http,
            ws,
            tls,
            addr,
            observers,
            store: config.store,
        })
    }

    /// `http://ADDR/api`, or `https://` with TLS.
    pub(crate) fn http_url(&self) -> String {
        self.http.base_url()
    }

    /// `ws://ADDR/api/ws`, or `wss://` with TLS.
    pub(crate) fn ws_url(&self) -> String {
        let scheme = if self.tls { "wss" } else { "ws" };
        format!("{scheme}://{}{}", self.addr, hs_ws_server::WS_PATH)
    }

    /// `http://ADDR/metrics` (`https://` with TLS), when metrics are on.
    pub(crate) fn metrics_url(&self) -> Option<String> {
        let scheme = if self.tls { "https" } else { "http" };
        self.observers
            .metrics
            .as_ref()
            .map(|_| format!("{scheme}://{}/metrics", self.addr))
    }

    /// Closes every WebSocket (close 1001, each disconnect observed), lets
    /// in-flight HTTP requests finish, and returns once both are down (at
    /// most about [`SHUTDOWN_GRACE`]).
    pub(crate) async fn shutdown(self) -> Result<(), CliError> {
        self.ws.shutdown();
        let ws = self.ws.clone();
        let ws_closed = async move {
            if tokio::time::timeout(SHUTDOWN_GRACE, ws.closed())
                .await
                .is_err()
            {
                log::warn!(
                    target: targets::HTTP_SERVER,
                    "{} WebSocket connections still open after {SHUTDOWN_GRACE:?}",
                    ws.connection_count()
                );
            }
        };
        let (_, http) = tokio::join!(ws_closed, self.http.shutdown());
        http?;
        Ok(())
    }
}

/// Builds the store: the demo building, or the entities of `files`.
pub(crate) fn load_store<P: AsRef<Path>>(files: &[P]) -> Result<Arc<MemoryStore>, CliError> {
    if files.is_empty() {
        return Ok(Arc::new(hs_core::demo::building()));
    }
    let store = MemoryStore::new();
    for file in files {
        let path = file.as_ref();
        let zinc = path
            .extension()
            .is_some_and(|ext| ext.eq_ignore_ascii_case("zinc"));
        let loaded = if zinc {
            store.load_zinc_file(path)
        } else {
            store.load_json_file(path)
        };
        let count = loaded.map_err(|source| CliError::Load {
            path: path.display().to_string(),
            source,
        })?;
        log::info!(
            target: targets::HTTP_SERVER,
            "loaded {} from {}",
            plural(count, "entity", "entities"),
            path.display()
        );
    }
    Ok(Arc::new(store))
}

/// `hs serve`: run until SIGINT or SIGTERM.
pub(crate) async fn run(mut args: ServeArgs) -> Result<(), CliError> {
    if let Some(source) = &args.users_file {
        let users = crate::users::load(source)?;
        args.users = crate::users::merge(std::mem::take(&mut args.users), users);
    }
    let store = match args.demo_size {
        Some(points) => {
            let store = hs_core::demo::sized::store(points);
            log::info!(
                target: targets::HTTP_SERVER,
                "generated a building of {}",
                plural(store.len(), "entity", "entities")
            );
            Arc::new(store)
        }
        None => load_store(&args.data)?,
    };
    let source = if args.data.is_empty() {
        "demo building".to_owned()
    } else {
        format!("{} file(s)", args.data.len())
    };
    store.set_watch_limits(args.max_watches, args.max_watches_per_user);
    let entities = store.len();
    let users: Vec<String> = args
        .users
        .iter()
        .map(|user| format!("{} ({})", user.name, user.role))
        .collect();
    let tls = args.tls.server_tls()?;
    let otlp = args.otlp.metrics()?;
    let otlp_summary = otlp.as_ref().map(|otlp| args.otlp.summary(otlp));
    let tls_summary = args.tls.summary();
    let cert_users = args.tls.cert_users();
    let signal = ShutdownSignal::install();
    let reload = tls.clone().map(reload_on_sighup);
    let watch = match (&tls, args.tls.tls_watch) {
        (Some(tls), Some(interval)) => Some(tls.watch_files(interval)),
        _ => None,
    };
    let server = RunningServer::start(ServerConfig {
        listen: args.listen,
        store,
        users: args.users,
        observers: ObserverChoice {
            event_log: args.event_log,
            stats: args.stats,
            metrics: !args.no_metrics,
        },
        otlp,
        extra_observers: Vec::new(),
        max_connections: usize::try_from(args.max_connections).ok(),
        header_timeout: Some(args.header_timeout),
        idle_timeout: Some(args.idle_timeout),
        token_ttl: Some(args.token_ttl),
        scram_iterations: args.scram_iterations,
        push: !args.no_push,
        max_watches_per_connection: Some(args.max_watches_per_connection),
        ws_send_budget: args.ws_send_budget.map(|mib| {
            usize::try_from(mib)
                .unwrap_or(usize::MAX)
                .saturating_mul(1024 * 1024)
        }),
        ws_stall_timeout: args.ws_stall_timeout,
        tls,
        cert_users,
    })
    .await?;
    // The first stdout line is for scripts and tests: the real address.
    outln!("listening on {}", server.addr)?;
    outln!("  http api   {}", server.http_url())?;
    if args.no_push {
        outln!(
            "  websocket  {} (no pushes: clients poll, --no-push)",
            server.ws_url()
        )?;
    } else {
        outln!("  websocket  {}", server.ws_url())?;
    }
    match server.metrics_url() {
        Some(url) => outln!("  metrics    {url}"),
        None => outln!("  metrics    off (--no-metrics)"),
    }?;
    outln!(
        "  store      {} from the {source}",
        plural(entities, "entity", "entities")
    )?;
    if let Some(summary) = otlp_summary {
        outln!("  otlp       {summary}")?;
    }
    if let Some(summary) = tls_summary {
        outln!("  tls        {summary}")?;
    }
    if users.is_empty() {
        outln!("  auth       none (add --users FILE or --user NAME:PASSWORD to require SCRAM)")?;
    } else {
        outln!("  auth       SCRAM-SHA-256: {}", users.join(", "))?;
    }
    outln!("Ctrl-C to stop")?;
    flush_stdout();

    let signal = signal.wait().await;
    log::info!(target: targets::HTTP_SERVER, "{signal}: shutting down");
    for task in [reload, watch].into_iter().flatten() {
        task.abort();
    }
    let stats = server.observers.stats.clone();
    let otlp = server.observers.otlp.clone();
    server.shutdown().await?;
    if let Some(otlp) = otlp {
        // The last export: what was recorded since the previous one.
        let flushed = tokio::task::spawn_blocking(move || otlp.shutdown()).await;
        match flushed {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                log::warn!(target: targets::OBSERVE, "OTLP: the last export failed: {error}")
            }
            Err(error) => {
                log::warn!(target: targets::OBSERVE, "OTLP: the last export did not finish: {error}")
            }
        }
    }
    if let Some(stats) = stats {
        outln!("\n{}", stats.snapshot())?;
    }
    log::info!(target: targets::HTTP_SERVER, "stopped");
    Ok(())
}

/// Reloads `tls` from its files on every SIGHUP; a refused reload keeps the
/// configuration in force (`ServerTls::reload` logs either outcome).
fn reload_on_sighup(tls: ServerTls) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let mut hangup = match signal(SignalKind::hangup()) {
                Ok(hangup) => hangup,
                Err(error) => {
                    log::warn!(target: targets::HTTP_SERVER, "cannot install the SIGHUP handler, TLS reload is off: {error}");
                    return;
                }
            };
            while hangup.recv().await.is_some() {
                log::info!(target: targets::HTTP_SERVER, "SIGHUP: reloading the TLS configuration");
                // The outcome is logged by `reload`; the old configuration
                // stays when it fails.
                let _ = tls.reload();
            }
        }
        #[cfg(not(unix))]
        drop(tls);
    })
}

fn flush_stdout() {
    use std::io::Write;
    let _ = std::io::stdout().flush();
}

/// SIGINT and SIGTERM handlers, installed before the address is printed so
/// that a signal sent as soon as a script has read it is never lost (the
/// default action would kill the process without a graceful shutdown).
struct ShutdownSignal {
    #[cfg(unix)]
    signals: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl ShutdownSignal {
    fn install() -> ShutdownSignal {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let signals = match (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) {
                (Ok(int), Ok(term)) => Some((int, term)),
                (Err(error), _) | (_, Err(error)) => {
                    log::warn!(target: targets::HTTP_SERVER, "cannot install signal handlers: {error}");
                    None
                }
            };
            ShutdownSignal { signals }
        }
        #[cfg(not(unix))]
        {
            ShutdownSignal {}
        }
    }

    /// Waits for SIGINT (Ctrl-C) or SIGTERM; returns its name.
    async fn wait(self) -> &'static str {
        #[cfg(unix)]
        if let Some((mut int, mut term)) = self.signals {
            return tokio::select! {
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            };
        }
        match tokio::signal::ctrl_c().await {
            Ok(()) => "Ctrl-C",
            Err(error) => {
                log::error!(target: targets::HTTP_SERVER, "cannot wait for Ctrl-C: {error}; serving until killed");
                std::future::pending().await
            }
        }
    }
}
