//! A closed-loop WebSocket load generator, and a bare echo server to compare
//! against: the tools behind the load benchmarks and profiling drivers in
//! `docs/performance.md` (not published).
//!
//! Used by this crate's `ws_load` bench and `ws_profile` example: `connections`
//! sockets each keep `in_flight` requests outstanding for a fixed time and
//! record each round trip. Latency is measured per connection first-in,
//! first-out (the n-th response closes the n-th request), which is exact for
//! in-order servers and close for a server answering a few requests out of
//! order; it costs the generator no parsing, so the same generator measures
//! a Haystack server and the echo server alike.
//!
//! ```no_run
//! # async fn demo() -> Result<(), hs_load::LoadError> {
//! use std::time::Duration;
//! use hs_load::{EchoServer, LoadConfig, run};
//!
//! let echo = EchoServer::start("x".repeat(700)).await?;
//! let config = LoadConfig::new(format!("ws://{}/api/ws", echo.local_addr()))
//!     .connections(8)
//!     .in_flight(16)
//!     .duration(Duration::from_secs(2));
//! let report = run(&config, |n| format!(r#"{{"id":"{n}","op":"about"}}"#)).await?;
//! println!("{:.0} req/s, p50 {:?}, p99 {:?}", report.rps, report.p50, report.p99);
//! # Ok(()) }
//! ```

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_util::sync::CancellationToken;

/// What to run.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LoadConfig {
    /// `ws://host:port/path` of the server.
    pub url: String,
    /// Sockets opened.
    pub connections: usize,
    /// Requests kept outstanding per socket.
    pub in_flight: usize,
    /// Time spent before measuring (connections warm, caches filled).
    pub warmup: Duration,
    /// Time measured.
    pub duration: Duration,
    /// The TLS configuration of a `wss://` URL.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl LoadConfig {
    /// One connection, one request in flight, 0.5 s warm-up, 3 s measured.
    pub fn new(url: impl Into<String>) -> Self {
        LoadConfig {
            url: url.into(),
            connections: 1,
            in_flight: 1,
            warmup: Duration::from_millis(500),
            duration: Duration::from_secs(3),
            tls: None,
        }
    }

    /// Sets [`connections`](Self::connections) (at least 1).
    #[must_use]
    pub fn connections(mut self, connections: usize) -> Self {
        self.connections = connections.max(1);
        self
    }

    /// Sets [`in_flight`](Self::in_flight) (at least 1).
    #[must_use]
    pub fn in_flight(mut self, in_flight: usize) -> Self {
        self.in_flight = in_flight.max(1);
        self
    }

    /// Sets [`warmup`](Self::warmup).
    #[must_use]
    pub fn warmup(mut self, warmup: Duration) -> Self {
        self.warmup = warmup;
        self
    }

    /// Sets [`duration`](Self::duration).
    #[must_use]
    pub fn duration(mut self, duration: Duration) -> Self {
        self.duration = duration;
        self
    }

    /// Sets [`tls`](Self::tls), for a `wss://` URL.
    #[must_use]
    pub fn tls(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }
}

/// What was measured.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct LoadReport {
    /// Round trips completed in the measured window.
    pub requests: u64,
    /// Length of the measured window.
    pub elapsed: Duration,
    /// Requests per second.
    pub rps: f64,
    /// Median round trip.
    pub p50: Duration,
    /// 99th percentile round trip.
    pub p99: Duration,
    /// Bytes of the last response seen (to check sizes match).
    pub response_bytes: usize,
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// Connecting or talking to the server failed.
    #[error("websocket: {0}")]
    WebSocket(#[from] tungstenite::Error),
    /// Binding the echo server failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The server closed a connection during the run.
    #[error("the server closed a connection during the run")]
    Closed,
}

impl LoadError {
    /// A stable name for the error.
    pub const fn as_str(&self) -> &'static str {
        match self {
            LoadError::WebSocket(_) => "websocket",
            LoadError::Io(_) => "io",
            LoadError::Closed => "closed",
        }
    }
}

/// Runs the load: `request(n)` builds the n-th request text of a connection.
pub async fn run<F>(config: &LoadConfig, request: F) -> Result<LoadReport, LoadError>
where
    F: Fn(u64) -> String + Send + Sync + 'static,
{
    let request = Arc::new(request);
    let mut sockets = Vec::with_capacity(config.connections);
    for _ in 0..config.connections {
        let mut upgrade = config.url.as_str().into_client_request()?;
        upgrade.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static("haystack"),
        );
        let connector = config.tls.clone().map(tokio_tungstenite::Connector::Rustls);
        let (socket, _) = tokio_tungstenite::connect_async_tls_with_config(
            upgrade,
            Some(transport_config()),
            true,
            connector,
        )
        .await?;
        sockets.push(socket);
    }
    let start = Instant::now();
    let measure_from = start + config.warmup;
    let stop_at = measure_from + config.duration;
    let mut tasks = Vec::with_capacity(sockets.len());
    for socket in sockets {
        let request = request.clone();
        let in_flight = config.in_flight;
        tasks.push(tokio::spawn(drive(
            socket,
            request,
            in_flight,
            measure_from,
            stop_at,
        )));
    }
    let mut latencies: Vec<u32> = Vec::new();
    let mut response_bytes = 0;
    for task in tasks {
        let (mut samples, bytes) = task.await.map_err(|_| LoadError::Closed)??;
        latencies.append(&mut samples);
        response_bytes = bytes;
    }
    latencies.sort_unstable();
    let percentile = |p: f64| {
        if latencies.is_empty() {
            return Duration::ZERO;
        }
        let index = ((latencies.len() as f64 - 1.0) * p).round() as usize;
        Duration::from_nanos(u64::from(latencies[index]) * 100)
    };
    let requests = latencies.len() as u64;
    Ok(LoadReport {
        requests,
        elapsed: config.duration,
        rps: requests as f64 / config.duration.as_secs_f64(),
        p50: percentile(0.50),
        p99: percentile(0.99),
        response_bytes,
    })
}

type ClientSocket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One connection's closed loop; latencies in units of 100 ns.
async fn drive<F>(
    mut socket: ClientSocket,
    request: Arc<F>,
    in_flight: usize,
    measure_from: Instant,
    stop_at: Instant,
) -> Result<(Vec<u32>, usize), LoadError>
where
    F: Fn(u64) -> String + Send + Sync + 'static,
{
    let mut sent_at: VecDeque<Instant> = VecDeque::with_capacity(in_flight);
    let mut samples = Vec::with_capacity(100_000);
    let mut counter = 0u64;
    let mut response_bytes = 0;
    for _ in 0..in_flight {
        sent_at.push_back(Instant::now());
        socket.feed(Message::text(request(counter))).await?;
        counter += 1;
    }
    socket.flush().await?;
    let deadline = tokio::time::Instant::from_std(stop_at);
    while !sent_at.is_empty() {
        let frame =
            match tokio::time::timeout_at(deadline + Duration::from_secs(5), socket.next()).await {
                Ok(Some(frame)) => frame?,
                Ok(None) | Err(_) => return Err(LoadError::Closed),
            };
        let len = match &frame {
            Message::Text(text) => text.len(),
            Message::Binary(bytes) => bytes.len(),
            Message::Close(_) => return Err(LoadError::Closed),
            _ => continue,
        };
        response_bytes = len;
        let now = Instant::now();
        if let Some(sent) = sent_at.pop_front() {
            if sent >= measure_from && now < stop_at {
                let ticks = now.duration_since(sent).as_nanos() / 100;
                samples.push(u32::try_from(ticks).unwrap_or(u32::MAX));
            }
        }
        if now < stop_at {
            sent_at.push_back(Instant::now());
            socket.send(Message::text(request(counter))).await?;
            counter += 1;
        }
    }
    let _ = socket.close(None).await;
    Ok((samples, response_bytes))
}

/// Calls per second of a closed loop: each client makes one call at a time
/// (the n-th call of a client gets `n`), for `warmup` and then `duration`;
/// the calls completed in the measured window count. The first failed call
/// ends the run with its error.
pub async fn closed_loop<C, F, Fut, E>(
    clients: Vec<C>,
    call: F,
    warmup: Duration,
    duration: Duration,
) -> Result<f64, E>
where
    C: Send + Sync + 'static,
    F: Fn(Arc<C>, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send,
    E: Send + 'static,
{
    let call = Arc::new(call);
    let measure_from = Instant::now() + warmup;
    let stop_at = measure_from + duration;
    let mut tasks = Vec::with_capacity(clients.len());
    for (index, client) in clients.into_iter().enumerate() {
        let client = Arc::new(client);
        let call = call.clone();
        tasks.push(tokio::spawn(async move {
            // Clients start at different points of the request sequence.
            let mut n = index as u64 * 97;
            let mut counted = 0u64;
            loop {
                call(client.clone(), n).await?;
                n += 1;
                let now = Instant::now();
                if now >= stop_at {
                    return Ok(counted);
                }
                if now >= measure_from {
                    counted += 1;
                }
            }
        }));
    }
    let mut done = 0;
    for task in tasks {
        match task.await {
            Ok(Ok(counted)) => done += counted,
            Ok(Err(error)) => return Err(error),
            Err(join) => std::panic::resume_unwind(join.into_panic()),
        }
    }
    Ok(done as f64 / duration.as_secs_f64())
}

/// The WebSocket request text of a `read` with the filter `id==@p{N}`,
/// where N walks through `points` points as `n` counts up (a different
/// point each request, on a building of `hs_core::demo::sized`).
pub fn point_read_request(n: u64, points: u64) -> String {
    format!(
        r#"{{"id":"{n}","op":"read","grid":{{"_kind":"grid","meta":{{}},"cols":[{{"name":"filter"}}],"rows":[{{"filter":"id==@p{}"}}]}}}}"#,
        n % points + 1
    )
}

/// The median (the mean of the middle two for an even count; 0 for none).
pub fn median(values: impl IntoIterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.into_iter().collect();
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len() % 2 == 0 {
        (values[middle - 1] + values[middle]) / 2.0
    } else {
        values[middle]
    }
}

/// The tungstenite settings of the generator's sockets and of the echo
/// server: hs-ws-server's default read buffer
/// ([`DEFAULT_READ_BUFFER_SIZE`](hs_ws_server::DEFAULT_READ_BUFFER_SIZE)), since
/// tungstenite zero-fills its whole read buffer (128 KiB by default) before
/// every read, which would cost more than the work being measured.
pub fn transport_config() -> tungstenite::protocol::WebSocketConfig {
    tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(hs_ws_server::DEFAULT_READ_BUFFER_SIZE)
}

/// A bare tokio-tungstenite server answering every text message with one
/// canned response: the baseline a Haystack server is compared against. Its
/// sockets use [`transport_config`], the transport settings hs-ws-server
/// uses by default, so the comparison measures the Haystack work.
#[derive(Debug)]
pub struct EchoServer {
    local_addr: SocketAddr,
    stop: CancellationToken,
}

impl EchoServer {
    /// Starts on `127.0.0.1:0`, answering every text frame with `response`.
    /// Echoes the `haystack` subprotocol when offered.
    pub async fn start(response: String) -> Result<Self, LoadError> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let local_addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let response: tungstenite::Utf8Bytes = response.into();
        let accept_stop = stop.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = tokio::select! {
                    () = accept_stop.cancelled() => return,
                    accepted = listener.accept() => match accepted {
                        Ok(accepted) => accepted,
                        Err(_) => continue,
                    },
                };
                let _ = stream.set_nodelay(true);
                let response = response.clone();
                let stop = accept_stop.clone();
                tokio::spawn(async move {
                    let Ok(mut socket) = tokio_tungstenite::accept_hdr_async_with_config(
                        stream,
                        echo_subprotocol,
                        Some(transport_config()),
                    )
                    .await
                    else {
                        return;
                    };
                    loop {
                        let frame = tokio::select! {
                            () = stop.cancelled() => return,
                            frame = socket.next() => frame,
                        };
                        match frame {
                            Some(Ok(Message::Text(_))) => {
                                if socket.send(Message::Text(response.clone())).await.is_err() {
                                    return;
                                }
                            }
                            Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                            Some(Ok(_)) => {}
                        }
                    }
                });
            }
        });
        Ok(EchoServer { local_addr, stop })
    }

    /// The address the echo server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

/// Answers the `haystack` subprotocol when offered (the signature, and its
/// large error type, are tungstenite's).
#[allow(clippy::result_large_err)]
fn echo_subprotocol(request: &Request, mut answer: Response) -> Result<Response, ErrorResponse> {
    if request.headers().get("Sec-WebSocket-Protocol").is_some() {
        answer.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static("haystack"),
        );
    }
    Ok(answer)
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
