//! The command line: every subcommand, flag and its `--help` text.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// hs: Project Haystack over HTTP and WebSocket, with every connection,
/// message, request and error observable.
#[derive(Debug, Parser)]
#[command(
    name = "hs",
    version,
    about,
    long_about = None,
    after_help = "Examples:\n  \
        hs serve                                  # demo building on http://127.0.0.1:8080\n  \
        hs about                                  # is it there? what is it?\n  \
        hs read 'ahu'                             # query it over HTTP\n  \
        hs read --url ws://127.0.0.1:8080 'point and temp' --format zinc\n  \
        hs watch 'point and sp' --count 1         # print the next change, then exit\n  \
        hs bench --connections 4 --in-flight 16   # load-test an in-process server\n  \
        hs demo                                   # a scripted tour of every transport\n\n\
        Logs go to stderr; RUST_LOG or --log choose what is shown (targets: hs::http::server,\n\
        hs::http::client, hs::ws::server, hs::ws::client, hs::ws::conn, hs::auth, hs::observe)."
)]
pub(crate) struct Cli {
    /// Log filter in env_logger syntax, e.g. `debug` or `hs::ws::server=debug,hs::observe=info`
    /// [default: $RUST_LOG, else `info` for serve and demo, `error` otherwise: the other
    /// commands print each failure once themselves]
    #[arg(long, global = true, value_name = "FILTER")]
    pub(crate) log: Option<String>,

    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Serve a Haystack store: HTTP API, WebSocket endpoint and /metrics on one port
    ///
    /// The HTTP API is at /api/{op}, the WebSocket endpoint at /api/ws and the
    /// Prometheus metrics at /metrics. The first line printed on stdout is
    /// `listening on ADDR` with the real bound address (useful with port 0).
    /// Ctrl-C (SIGINT) or SIGTERM shuts down gracefully: new connections are
    /// refused, WebSocket clients get a close frame, in-flight requests finish.
    Serve(ServeArgs),
    /// Print the server's `about`: its name, product, version, time and time zone
    About(AboutArgs),
    /// List the ops the server supports
    Ops(OpsArgs),
    /// Navigate the server's tree: the roots, or the children of NAV_ID (a quick connectivity check)
    Nav(NavArgs),
    /// Read entities matching a filter, or by id
    Read(ReadArgs),
    /// Read the history of a point over a range
    His(HisArgs),
    /// Write a level of a writable point's priority array
    Write(WriteArgs),
    /// Subscribe to the entities matching a filter and print their changes as they arrive
    ///
    /// Over HTTP changes are polled with watchPoll every --poll interval.
    /// Over WebSocket (--mode auto) hs waits for the server's pushes and,
    /// when none arrives within a poll interval, asks with watchPoll; once
    /// a poll finds changes no push announced, it keeps polling (servers such
    /// as haystack-py's never push). The mode in use is printed on stderr.
    /// Runs until Ctrl-C, or until --count changes or --duration have passed;
    /// a server that goes away (a restart, even kill -9) is waited for, and
    /// the watch subscribed again, with backoff from 200 ms to 10 s.
    Watch(WatchArgs),
    /// Load-test a server with `read` by id, and print requests/s, p50/p99 and errors
    ///
    /// Opens --connections clients, each keeping --in-flight requests
    /// outstanding, for --duration (or until --requests are done). Without
    /// --url, starts a server in-process on a free port and loads it.
    Bench(BenchArgs),
    /// Start a server in-process and tour every transport, showing what the observers saw
    ///
    /// Runs HTTP read, hisRead and pointWrite, a WebSocket watch and its push,
    /// a batch, a failing request and a deliberately panicking observer, then
    /// prints the log lines, the stats table and the haystack_* lines of /metrics.
    Demo(DemoArgs),
}

/// `hs serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on, HOST:PORT with an IP or a host name (the first address it
    /// resolves to, e.g. localhost:8080); port 0 picks a free port
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR", value_parser = parse_listen)]
    pub(crate) listen: SocketAddr,

    /// Haystack JSON (.json) or Zinc (.zinc) grid files of entities to serve
    /// instead of the demo building (may be given several times)
    #[arg(long, value_name = "FILE", num_args = 1..)]
    pub(crate) data: Vec<PathBuf>,

    /// Serve a generated building of POINTS points instead of the demo building:
    /// deterministic sites (s1...), equips (e1...) and points (p1...) with refs,
    /// units and current values, for load tests at any size (no history)
    #[arg(long, value_name = "POINTS", conflicts_with = "data")]
    pub(crate) demo_size: Option<usize>,

    /// Require SCRAM-SHA-256 login; NAME:PASSWORD or NAME:PASSWORD:ROLE, with ROLE one of
    /// reader, operator, admin [default role: admin] (may be repeated). The command line
    /// is visible to every user of the machine (ps): prefer --users for real passwords
    #[arg(long = "user", value_name = "NAME:PASSWORD[:ROLE]", value_parser = parse_user)]
    pub(crate) users: Vec<UserSpec>,

    /// Require SCRAM-SHA-256 login for the users in FILE, or on stdin for `-`: one
    /// `NAME:PASSWORD[:ROLE]` per line, blank lines and `#` comments skipped. A file
    /// other users may read is refused (chmod 600 it)
    #[arg(long = "users", value_name = "FILE")]
    pub(crate) users_file: Option<PathBuf>,

    /// PBKDF2 iterations of the users' SCRAM credentials: each login costs the
    /// client this many (at least 4096, the protocol minimum) [default: 600000]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(4096..))]
    pub(crate) scram_iterations: Option<u32>,

    /// How the logging observer reports events (target hs::observe): `default`
    /// logs connects at INFO, requests at DEBUG, errors at WARN, frames at TRACE;
    /// a level logs every event at that level; `off` attaches no logging observer
    #[arg(long, default_value = "default", value_name = "LEVEL")]
    pub(crate) event_log: EventLog,

    /// Keep in-process statistics and print the per-op table on exit
    #[arg(long)]
    pub(crate) stats: bool,

    /// No Prometheus observer and no /metrics endpoint
    #[arg(long)]
    pub(crate) no_metrics: bool,

    /// The most connections open at once, HTTP and WebSocket together (the
    /// WebSocket endpoint refuses upgrades past it too); one more is answered
    /// 503 and closed, with a WARN at most once a second
    #[arg(long, default_value_t = hs_http_server::DEFAULT_MAX_CONNECTIONS as u32, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) max_connections: u32,

    /// How long a client has to send a request's headers, from accepting its
    /// connection or sending its previous response; slower ones are disconnected
    #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = parse_duration)]
    pub(crate) header_timeout: Duration,

    /// How long a kept-alive HTTP connection may wait for its next request
    /// before it is closed
    #[arg(long, default_value = "5s", value_name = "DURATION", value_parser = parse_duration)]
    pub(crate) idle_timeout: Duration,

    /// How long a bearer token issued by a SCRAM login stays valid (HTTP and
    /// WebSocket alike); past it, requests with it are refused and clients log in again
    #[arg(long, default_value = "1h", value_name = "DURATION", value_parser = parse_duration)]
    pub(crate) token_ttl: Duration,

    /// Push no watch changes over WebSocket: clients learn of them only with
    /// watchPoll, as with haystack-py's servers, whose ops never push
    #[arg(long)]
    pub(crate) no_push: bool,

    /// The most watches open at once, all users together; a watchSub opening
    /// one more gets an error grid. Watches expire with their lease (300 s
    /// unless asked, at most 3600 s) when nobody polls or renews them
    #[arg(long, value_name = "N", default_value_t = hs_core::store::DEFAULT_MAX_WATCHES)]
    pub(crate) max_watches: usize,

    /// The most watches one user holds at once (anonymous clients together
    /// count as one user)
    #[arg(long, value_name = "N", default_value_t = hs_core::store::DEFAULT_MAX_WATCHES_PER_USER)]
    pub(crate) max_watches_per_user: usize,

    /// The most watches one WebSocket connection holds at once; they close
    /// with the connection
    #[arg(long, value_name = "N", default_value_t = hs_ws_server::WsConfig::default().max_watches_per_connection)]
    pub(crate) max_watches_per_connection: usize,

    /// Bytes of answers one WebSocket connection may hold, in MiB: past it the
    /// connection is not read until its client reads (a slow reader), and an
    /// answer larger than it is refused with an error grid. At most
    /// --max-connections times this is held in all [default: 16]
    #[arg(long, value_name = "MIB", value_parser = clap::value_parser!(u32).range(1..=4095))]
    pub(crate) ws_send_budget: Option<u32>,

    /// How long a WebSocket connection may stay over its --ws-send-budget,
    /// unread, before it is closed (1008 `send queue full`) [default: 10s]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub(crate) ws_stall_timeout: Option<Duration>,

    /// HTTPS and WSS.
    #[command(flatten)]
    pub(crate) tls: crate::serve_tls::ServeTlsArgs,

    /// OpenTelemetry export.
    #[command(flatten)]
    pub(crate) otlp: crate::otlp::OtlpArgs,
}

/// One `--user` of `hs serve`.
#[derive(Debug, Clone)]
pub(crate) struct UserSpec {
    /// Login name.
    pub(crate) name: String,
    /// Password (kept only until the SCRAM credential is derived).
    pub(crate) password: String,
    /// Role name.
    pub(crate) role: hs_core::auth::Role,
}

/// `IP:PORT`, or `HOST:PORT` resolved to its first address.
fn parse_listen(raw: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    if let Ok(addr) = raw.parse() {
        return Ok(addr);
    }
    raw.to_socket_addrs()
        .map_err(|error| format!("cannot resolve `{raw}`: {error} (expected HOST:PORT)"))?
        .next()
        .ok_or_else(|| format!("`{raw}` resolves to no address"))
}

pub(crate) fn parse_user(raw: &str) -> Result<UserSpec, String> {
    let mut parts = raw.splitn(3, ':');
    let name = parts.next().unwrap_or_default();
    let password = parts
        .next()
        .ok_or_else(|| "expected NAME:PASSWORD[:ROLE]".to_owned())?;
    if name.is_empty() || password.is_empty() {
        return Err("name and password must not be empty".to_owned());
    }
    let role = match parts.next() {
        None => hs_core::auth::Role::Admin,
        Some(role) => role
            .parse()
            // The role is not echoed: in a password with a `:` it is part of the password.
            .map_err(|_| {
                "unknown role: use reader, operator or admin (a password cannot contain `:`)"
                    .to_owned()
            })?,
    };
    Ok(UserSpec {
        name: name.to_owned(),
        password: password.to_owned(),
        role,
    })
}

/// How the logging observer reports events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum EventLog {
    /// No logging observer.
    Off,
    /// Per-event levels (connects INFO, requests DEBUG, errors WARN, frames TRACE).
    Default,
    /// Every event at ERROR.
    Error,
    /// Every event at WARN.
    Warn,
    /// Every event at INFO.
    Info,
    /// Every event at DEBUG.
    Debug,
    /// Every event at TRACE.
    Trace,
}

/// Where a client command connects and how it prints.
#[derive(Debug, Args)]
pub(crate) struct ClientArgs {
    /// Server URL: http://HOST:PORT[/api] for HTTP, ws://HOST:PORT[/api/ws] for WebSocket
    #[arg(
        long,
        env = "HS_URL",
        default_value = "http://127.0.0.1:8080",
        value_name = "URL"
    )]
    pub(crate) url: String,

    /// Login name for SCRAM-SHA-256 (with --password); with --token, used only over HTTP,
    /// to log in again if the server refuses the token
    // Checked by hand, not with `requires`: HS_USER exported beside --token is fine.
    #[arg(long, env = "HS_USER", value_name = "NAME")]
    pub(crate) user: Option<String>,

    /// Password for --user (prefer the HS_PASSWORD environment variable); ignored
    /// without --user, so an exported HS_PASSWORD does not get in the way of open servers
    #[arg(
        long,
        env = "HS_PASSWORD",
        hide_env_values = true,
        value_name = "PASSWORD"
    )]
    pub(crate) password: Option<String>,

    /// Deadline of each request in total, retries and an HTTP login included, e.g. 500ms,
    /// 10s, 2m (over WebSocket, connecting and logging in each get a deadline of the same
    /// length before the first request)
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = parse_duration)]
    pub(crate) timeout: Duration,

    /// A bearer token from an earlier login, used instead of --user and --password
    /// (over HTTP as `Authorization: BEARER authToken=..`, over WebSocket as {"authToken":..});
    /// over HTTP, --user and --password log in again if the server refuses it
    #[arg(long, env = "HS_TOKEN", hide_env_values = true, value_name = "TOKEN")]
    pub(crate) token: Option<String>,

    /// How --user logs in to a ws:// URL: `scram` in WebSocket messages (hs, haystack-py's
    /// WebSocketServer); `token` with SCRAM over the HTTP API beside the endpoint, then the
    /// token as {"authToken":..} (haystack-py's FastAPI /api/ws); `auto` tries `scram` and
    /// turns to `token` when the endpoint closes with 4003, as FastAPI's does
    #[arg(long, value_enum, default_value_t = WsAuth::Auto, value_name = "HOW")]
    pub(crate) ws_auth: WsAuth,

    /// Output format: `table` for people; `json` and `zinc` print the grid in that
    /// encoding and, over HTTP, ask the server for it on the wire too (`table` asks for
    /// JSON). WebSocket messages are always JSON
    #[arg(long, short = 'f', value_enum, default_value_t = OutputFormat::Table)]
    pub(crate) format: OutputFormat,

    /// Print the client's observer statistics (requests, latency, bytes) on stderr at the end
    #[arg(long)]
    pub(crate) stats: bool,

    #[command(flatten)]
    pub(crate) tls: TlsArgs,
}

/// How a client checks an https:// or wss:// server and proves itself to it.
#[derive(Debug, Args)]
pub(crate) struct TlsArgs {
    /// PEM file of the CA certificates (one or more) that sign the server's certificate,
    /// for https:// and wss://; replaces the operating system's trust store
    #[arg(long, value_name = "FILE")]
    pub(crate) ca: Option<PathBuf>,

    /// PEM file of the client's certificate (then any intermediates), presented to a server
    /// that asks for one (mutual TLS); needs --client-key
    #[arg(long, value_name = "FILE", requires = "client_key")]
    pub(crate) client_cert: Option<PathBuf>,

    /// PEM file of the private key of --client-cert (PKCS#8, PKCS#1 or SEC1)
    #[arg(long, value_name = "FILE", requires = "client_cert")]
    pub(crate) client_key: Option<PathBuf>,

    /// The name the server's certificate must carry instead of the URL's host, e.g. a
    /// gateway reached by IP address whose certificate names gw.example.com (over wss://
    /// also sent as SNI)
    #[arg(long, value_name = "NAME")]
    pub(crate) tls_server_name: Option<String>,
}

/// How grids are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OutputFormat {
    /// Aligned columns for people.
    Table,
    /// Haystack Zinc.
    Zinc,
    /// Haystack JSON (v4 encoding).
    Json,
}

impl OutputFormat {
    /// The encoding asked of an HTTP server: the printed one, JSON for a table.
    pub(crate) fn wire(self) -> hs_core::codec::Format {
        match self {
            OutputFormat::Zinc => hs_core::codec::Format::Zinc,
            OutputFormat::Json | OutputFormat::Table => hs_core::codec::Format::Json,
        }
    }
}

/// How a client logs in to a WebSocket endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum WsAuth {
    /// `scram`, then `token` if the endpoint closes with 4003.
    Auto,
    /// SCRAM-SHA-256 in WebSocket messages.
    Scram,
    /// SCRAM over HTTP, then the token in `{"authToken":..}`.
    Token,
}

/// `hs about`.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  hs about --url ws://127.0.0.1:8080")]
pub(crate) struct AboutArgs {
    /// Connection and output.
    #[command(flatten)]
    pub(crate) client: ClientArgs,
}

/// `hs ops`.
#[derive(Debug, Args)]
pub(crate) struct OpsArgs {
    /// Connection and output.
    #[command(flatten)]
    pub(crate) client: ClientArgs,
}

/// `hs nav`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  hs nav                 # the roots: sites\n  hs nav demo-site       # the equipment of a site"
)]
pub(crate) struct NavArgs {
    /// The entity whose children to list (with or without the leading @); the roots without it
    #[arg(value_name = "NAV_ID")]
    pub(crate) nav_id: Option<String>,

    /// Only these columns in the table, comma-separated
    #[arg(long, value_delimiter = ',', value_name = "COLS")]
    pub(crate) columns: Vec<String>,

    /// Connection and output.
    #[command(flatten)]
    pub(crate) client: ClientArgs,
}

/// `hs read`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  hs read 'ahu'\n  hs read 'point and temp and sensor' --limit 5 --columns id,dis,curVal\n  hs read --id demo-ahu1-dat --id demo-ahu1-rat --format json"
)]
pub(crate) struct ReadArgs {
    /// Haystack filter, e.g. `point and temp` or `equipRef->ahu`
    #[arg(
        value_name = "FILTER",
        required_unless_present = "ids",
        conflicts_with = "ids"
    )]
    pub(crate) filter: Option<String>,

    /// Read these ids instead of a filter (with or without the leading @; may be repeated)
    #[arg(long = "id", value_name = "ID")]
    pub(crate) ids: Vec<String>,

    /// At most this many entities
    #[arg(long, value_name = "N")]
    pub(crate) limit: Option<usize>,

    /// Only these columns in the table, comma-separated
    #[arg(long, value_delimiter = ',', value_name = "COLS")]
    pub(crate) columns: Vec<String>,

    /// Print how the server plans FILTER (each part, what answers it, its
    /// candidate count) and the number of rows, instead of the rows; an hs
    /// server answers it, others do not
    #[arg(long, conflicts_with = "ids")]
    pub(crate) explain: bool,

    /// Connection and output.
    #[command(flatten)]
    pub(crate) client: ClientArgs,
}

/// `hs his`.
#[derive(Debug, Args)]
#[command(
    after_help = "RANGE is a Haystack range: today, yesterday, a date 2024-01-08,\na date span 2024-01-01,2024-01-08, or two date-times separated by a comma.\n\nExample:\n  hs his demo-ahu1-dat yesterday"
)]
pub(crate) struct HisArgs {
    /// Point id (with or without the leading @)
    #[arg(value_name = "ID")]
    pub(crate) id: String,

    /// Range: today, yesterday, DATE, DATE,DATE or DATETIME,DATETIME
    #[arg(value_name = "RANGE")]
    pub(crate) range: String,

    /// Connection and output.
    #[command(flatten)]
    pub(crate) client: ClientArgs,
}

/// `hs write`.
#[derive(Debug, Args)]
#[command(
    after_help = "VAL is a Zinc scalar: 72, 72°F, true, \"text\", or null to release the level.\n\nExample:\n  hs write demo-ahu1-dat-sp 8 54°F --who tuning"
)]
pub(crate) struct WriteArgs {
    /// Writable point id (with or without the leading @)
    #[arg(value_name = "ID")]
    pub(crate) id: String,

    /// Priority level, 1 (highest) to 17 (default)
    #[arg(value_name = "LEVEL", value_parser = clap::value_parser!(u8).range(1..=17))]
    pub(crate) level: u8,

    /// The value as Zinc, or `null` to release the level
    #[arg(value_name = "VAL", allow_hyphen_values = true)]
    pub(crate) val: String,

    /// Who is writing (kept in the priority array)
    #[arg(long, value_name = "NAME", default_value = "hs-cli")]
    pub(crate) who: String,

    /// Connection and output.
    #[command(flatten)]
    pub(crate) client: ClientArgs,
}

/// `hs watch`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  hs watch --url ws://127.0.0.1:8080 'point and sp' --count 1 --duration 30s\n  hs watch 'point and sp' --mode poll --poll 5s --columns id,dis,curVal,writeVal"
)]
pub(crate) struct WatchArgs {
    /// Haystack filter selecting the entities to watch
    #[arg(value_name = "FILTER")]
    pub(crate) filter: String,

    /// Stop after this many changes have been printed
    #[arg(long, value_name = "N")]
    pub(crate) count: Option<u64>,

    /// Stop after this long, e.g. 30s, 5m
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub(crate) duration: Option<Duration>,

    /// How often to poll with watchPoll (at most half the watch's lease)
    #[arg(long, default_value = "1s", value_name = "DURATION", value_parser = parse_duration)]
    pub(crate) poll: Duration,

    /// The lease to ask for, e.g. 10m; the server may clamp it [default: the server's]. hs
    /// polls, or renews the watch when it only waits for pushes, twice per lease granted
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub(crate) lease: Option<Duration>,

    /// How changes are learnt: `auto` waits for pushes over WebSocket and
    /// falls back to polling, `push` only waits for pushes, `poll` only polls
    #[arg(long, value_enum, default_value_t = WatchMode::Auto)]
    pub(crate) mode: WatchMode,

    /// Only these columns in the table, comma-separated
    #[arg(long, value_delimiter = ',', value_name = "COLS")]
    pub(crate) columns: Vec<String>,

    /// Connection and output.
    #[command(flatten)]
    pub(crate) client: ClientArgs,
}

/// How `hs watch` learns of changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum WatchMode {
    /// Pushes over WebSocket, falling back to polling when none arrives; polling over HTTP.
    Auto,
    /// Only the server's pushes (WebSocket only).
    Push,
    /// Only watchPoll every --poll interval.
    Poll,
}

/// Which transport `hs bench` drives against its in-process server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum BenchTransport {
    /// HTTP (`POST /api/read`).
    Http,
    /// WebSocket (`/api/ws`).
    Ws,
}

/// `hs bench`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  hs bench                                   # in-process server, WebSocket, 5 s\n  hs bench --transport http --requests 20000\n  hs bench --url ws://127.0.0.1:8080 --connections 8 --in-flight 32 --duration 10s"
)]
pub(crate) struct BenchArgs {
    /// Server to load: http://.. or ws://.. [default: an in-process server on a free port]
    #[arg(long, value_name = "URL")]
    pub(crate) url: Option<String>,

    /// Transport for the in-process server (ignored with --url, whose scheme decides)
    #[arg(long, value_enum, default_value_t = BenchTransport::Ws)]
    pub(crate) transport: BenchTransport,

    /// Client connections
    #[arg(long, short = 'c', default_value_t = 4, value_name = "N")]
    pub(crate) connections: usize,

    /// Requests kept outstanding per connection
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub(crate) in_flight: usize,

    /// How long to run, e.g. 10s
    #[arg(long, short = 'd', default_value = "5s", value_name = "DURATION", value_parser = parse_duration)]
    pub(crate) duration: Duration,

    /// Stop after this many requests instead of after --duration
    #[arg(long, short = 'n', value_name = "N")]
    pub(crate) requests: Option<u64>,

    /// The id read by every request
    #[arg(long, default_value = "demo-ahu1-dat", value_name = "ID")]
    pub(crate) id: String,

    /// Login name for SCRAM-SHA-256 (with --password)
    #[arg(long, env = "HS_USER", value_name = "NAME", requires = "password")]
    pub(crate) user: Option<String>,

    /// Password for --user (prefer HS_PASSWORD); ignored without --user
    #[arg(
        long,
        env = "HS_PASSWORD",
        hide_env_values = true,
        value_name = "PASSWORD"
    )]
    pub(crate) password: Option<String>,

    /// No progress bar (for logs and CI)
    #[arg(long)]
    pub(crate) quiet: bool,

    #[command(flatten)]
    pub(crate) tls: TlsArgs,
}

/// `hs demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Also show DEBUG lines (SCRAM steps, every request) in the log section
    #[arg(long)]
    pub(crate) verbose: bool,

    /// Add a generated building of POINTS points (sites of 20 equips of 50
    /// points, as `hs serve --demo-size`) and show how filter reads on it
    /// are planned
    #[arg(long, value_name = "POINTS")]
    pub(crate) size: Option<usize>,
}

/// Parses `500ms`, `10s`, `2m`, `1h`, or a bare number of seconds (`1.5`).
pub(crate) fn parse_duration(raw: &str) -> Result<Duration, String> {
    let raw = raw.trim();
    let split = raw
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(raw.len());
    let (number, unit) = raw.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{raw}` is not a duration (try 500ms, 10s, 2m)"))?;
    let seconds = match unit.trim() {
        "ms" => value / 1_000.0,
        "" | "s" => value,
        "m" | "min" => value * 60.0,
        "h" => value * 3_600.0,
        other => return Err(format!("unknown duration unit `{other}` (ms, s, m, h)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|error| format!("`{raw}`: {error}"))
}

/// A period: a duration above zero.
pub(crate) fn parse_interval(raw: &str) -> Result<Duration, String> {
    let interval = parse_duration(raw)?;
    if interval.is_zero() {
        return Err("the interval must be above zero".to_owned());
    }
    Ok(interval)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("3 weeks").is_err());
    }

    #[test]
    fn listen_addresses_take_ips_and_host_names() {
        assert_eq!(
            parse_listen("127.0.0.1:0"),
            Ok(SocketAddr::from(([127, 0, 0, 1], 0)))
        );
        assert!(parse_listen("[::1]:8080").is_ok());
        let localhost = parse_listen("localhost:8080").unwrap();
        assert!(localhost.ip().is_loopback() && localhost.port() == 8080);
        assert!(parse_listen("8080").unwrap_err().contains("HOST:PORT"));
    }

    #[test]
    fn users_parse() {
        let user = parse_user("ada:s3cret:reader").unwrap();
        assert_eq!(user.name, "ada");
        assert_eq!(user.password, "s3cret");
        assert_eq!(user.role, hs_core::auth::Role::Reader);
        assert_eq!(
            parse_user("bob:pw").unwrap().role,
            hs_core::auth::Role::Admin
        );
        // A password may contain a colon only before the role field.
        assert!(parse_user("bob").is_err());
        assert!(parse_user(":pw").is_err());
        assert!(parse_user("bob:pw:boss").is_err());
    }
}
