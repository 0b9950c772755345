//! One WebSocket connection: the upgrade, the connection task (reader,
//! writer, heartbeat) and the table of pending requests.

use hs_core::observe::labels;
use hs_core::observe::targets;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use hs_core::observe::MetricsObserver;
use hs_core::observe::labels::Transport;
use hs_core::spans;
use parking_lot::Mutex;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::http::header::SEC_WEBSOCKET_PROTOCOL;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tracing::Instrument as _;

use crate::config::WsConfig;
use crate::watch::WatchPush;
use crate::wire;
use crate::{Grid, WsClientError};

/// The subprotocol haystack-py's standalone server insists on.
pub(crate) const SUBPROTOCOL: &str = "haystack";

/// The op a failed TLS handshake is reported under.
const CONNECT_OP: &str = "connect";

/// haystack-py drops batch items beyond this many.
const MAX_BATCH: usize = 1000;

/// Queue between callers and the writer.
const COMMAND_QUEUE: usize = 1024;

pub(crate) type WsStream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Where pushes of this connection go.
pub(crate) type PushSink = Arc<dyn Fn(WatchPush) + Send + Sync>;

mod shared;
mod task;

use shared::{AuthCheck, PendingTable};
pub(crate) use shared::{DisconnectGuard, Shared, close_info};
use task::{Heartbeat, run};

enum Command {
    /// A data frame; `label` names it for `on_ws_message_sent`.
    Frame { text: String, label: String },
    /// Close with 1000 and wait for the server's close.
    Close,
}

/// One open connection. Cheap to share behind an `Arc`.
pub(crate) struct Connection {
    pub(crate) shared: Arc<Shared>,
    commands: mpsc::Sender<Command>,
    close_timeout: Duration,
    task: tokio::task::AbortHandle,
}

impl Drop for Connection {
    fn drop(&mut self) {
        // The last handle is gone. Dropping the command sender makes the
        // writer close with 1000 after the queued frames; a watchdog ends the
        // task if that takes longer than the close timeout (the guard reports
        // the disconnect either way).
        let task = self.task.clone();
        let bound = self.close_timeout + Duration::from_millis(500);
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    tokio::time::sleep(bound).await;
                    task.abort();
                });
            }
            Err(_) => task.abort(),
        }
    }
}

fn connect_error(url: &str, reason: impl std::fmt::Display) -> WsClientError {
    WsClientError::Connect {
        url: url.to_owned(),
        reason: reason.to_string(),
    }
}

/// The error of a failed connection attempt: [`WsClientError::Tls`] when
/// rustls failed it (during the handshake, or on the first read, where a
/// TLS 1.3 server refuses a client certificate), else `Connect` with the
/// cause (tungstenite's message wraps it in "IO error: ...": say the cause,
/// as the HTTP client does).
fn failure(url: &str, error: &(dyn std::error::Error + 'static)) -> WsClientError {
    match hs_core::tls::handshake_failure(error) {
        Some(tls) => WsClientError::Tls {
            url: url.to_owned(),
            reason: tls.to_string(),
        },
        None => connect_error(url, hs_core::endpoint::failure_cause(error)),
    }
}

async fn upgrade(config: &WsConfig) -> Result<WsStream, WsClientError> {
    let url = &config.url;
    let secure = url.starts_with("wss://");
    if !(url.starts_with("ws://") || secure) {
        return Err(WsClientError::InvalidUrl {
            url: url.clone(),
            reason: "scheme must be ws:// or wss://".into(),
        });
    }
    let mut request =
        url.as_str()
            .into_client_request()
            .map_err(|e| WsClientError::InvalidUrl {
                url: url.clone(),
                reason: e.to_string(),
            })?;
    request.headers_mut().insert(
        SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static(SUBPROTOCOL),
    );
    let invalid = |reason: &str| WsClientError::InvalidUrl {
        url: url.clone(),
        reason: reason.to_owned(),
    };
    // rustls and the resolver take an IPv6 host without its brackets.
    let host = request
        .uri()
        .host()
        .ok_or_else(|| invalid("no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = request
        .uri()
        .port_u16()
        .unwrap_or(if secure { 443 } else { 80 });
    let transport = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(config.read_buffer_size);
    let handshake = async {
        let tcp = TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| failure(url, &e))?;
        tcp.set_nodelay(true).map_err(|e| failure(url, &e))?;
        let stream = match (&config.tls, secure) {
            (Some(tls), true) => {
                // The server name override is also the SNI; else the URL's host.
                let name = match config.tls_server_name() {
                    Some(name) => name.clone(),
                    None => ServerName::try_from(host.clone())
                        .map_err(|_| invalid("the host is not a valid TLS server name"))?,
                };
                let tls = tokio_rustls::TlsConnector::from(tls.clone())
                    .connect(name, tcp)
                    .await
                    .map_err(|e| failure(url, &e))?;
                MaybeTlsStream::Rustls(tls)
            }
            _ => MaybeTlsStream::Plain(tcp),
        };
        tokio_tungstenite::client_async_with_config(request, stream, Some(transport))
            .await
            .map_err(|e| failure(url, &e))
    };
    let (stream, response) = tokio::time::timeout(config.connect_timeout, handshake)
        .await
        .map_err(|_| {
            connect_error(
                url,
                format!("no answer within {:?}", config.connect_timeout),
            )
        })??;
    let offered = response
        .headers()
        .get(SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok());
    if offered != Some(SUBPROTOCOL) {
        return Err(connect_error(
            url,
            format!("server did not accept subprotocol {SUBPROTOCOL:?} (answered {offered:?})"),
        ));
    }
    Ok(stream)
}

impl Connection {
    /// Upgrades, authenticates and starts the connection task.
    pub(crate) async fn open(config: &WsConfig, on_push: PushSink) -> Result<Self, WsClientError> {
        let mut stream = match upgrade(config).await {
            Ok(stream) => stream,
            Err(error @ WsClientError::Tls { .. }) => {
                log::debug!(target: targets::WS_CONN, "{error}");
                // A failed handshake is the connection's failure, reported
                // as every transport reports one: op `connect`.
                config.observer.on_error(CONNECT_OP, error.kind().as_str());
                return Err(error);
            }
            Err(error) => return Err(error),
        };
        log::info!(target: targets::WS_CONN, "connected to {}", config.url);
        let (closed, _) = watch::channel(None);
        let shared = Arc::new(Shared {
            url: config.url.clone(),
            observer: config.observer.clone(),
            pending: Mutex::new(PendingTable::default()),
            next_id: AtomicU32::new(0),
            on_push,
            closed,
            auth_check: Mutex::new(AuthCheck::new(&config.auth)),
            auth_settled: AtomicBool::new(false),
        });
        shared.observer.on_ws_connect(&shared.url);
        // From here on the guard reports the disconnect, also when auth fails.
        let mut guard = DisconnectGuard {
            shared: shared.clone(),
            error: None,
        };
        let auth = tokio::time::timeout(
            config.auth_timeout,
            crate::auth::authenticate(&mut stream, &config.auth, &shared),
        )
        .await
        .unwrap_or_else(|_| {
            Err(WsClientError::auth_broken(
                format!("no answer within {:?}", config.auth_timeout),
                None,
            ))
        });
        if let Err(error) = auth {
            // The disconnect reason is the error's own text.
            guard.set_error(error.duplicate());
            let _ = tokio::time::timeout(config.close_timeout, stream.close(None)).await;
            return Err(error);
        }
        let (commands, rx) = mpsc::channel(COMMAND_QUEUE);
        let task = tokio::spawn(run(
            stream,
            rx,
            guard,
            Heartbeat::from(config),
            config.close_timeout,
        ));
        Ok(Connection {
            shared,
            commands,
            close_timeout: config.close_timeout,
            task: task.abort_handle(),
        })
    }

    /// Sends one request and waits for its response (at most `timeout`),
    /// in its [`client_request`](spans::client_request).
    /// Fires exactly one of `on_request` / `on_error` unless the future is
    /// dropped first.
    pub(crate) async fn request(
        &self,
        op: &str,
        grid: Grid,
        ch: Option<&str>,
        timeout: Duration,
    ) -> Result<Grid, WsClientError> {
        let span = spans::client_request(Transport::Ws, op);
        let result = self
            .request_in_span(op, grid, ch, timeout, &span)
            .instrument(span.clone())
            .await;
        spans::record_outcome(&span, result.as_ref().err().map(WsClientError::kind));
        result
    }

    async fn request_in_span(
        &self,
        op: &str,
        grid: Grid,
        ch: Option<&str>,
        timeout: Duration,
        span: &tracing::Span,
    ) -> Result<Grid, WsClientError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        spans::record_request_id(span, id);
        let text = wire::encode_request(id, op, grid, ch);
        let (reply, rx) = oneshot::channel();
        if let Err(error) = self.shared.register(id, op, reply) {
            return Err(self.local_failure(op, error));
        }
        let _abandon = AbandonGuard {
            shared: &self.shared,
            ids: vec![id],
        };
        log::debug!(target: targets::WS_CLIENT, "request {id} {op} ({} bytes)", text.len());
        self.send(
            Command::Frame {
                text,
                label: op.to_owned(),
            },
            deadline,
            &[id],
        )
        .await;
        self.wait(id, op, rx, deadline, timeout).await
    }

    /// Sends several requests in batch frames of at most 1 000 items and
    /// waits for each result (all within `timeout`), in a
    /// [`client_batch`](spans::client_batch) with a
    /// [`client_request`](spans::client_request) per item.
    pub(crate) async fn batch(
        &self,
        items: Vec<(String, Grid)>,
        ch: Option<&str>,
        timeout: Duration,
    ) -> Vec<Result<Grid, WsClientError>> {
        let span = spans::client_batch(items.len());
        self.batch_in_span(items, ch, timeout)
            .instrument(span)
            .await
    }

    async fn batch_in_span(
        &self,
        items: Vec<(String, Grid)>,
        ch: Option<&str>,
        timeout: Duration,
    ) -> Vec<Result<Grid, WsClientError>> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut slots: Vec<Slot> = Vec::with_capacity(items.len());
        let mut abandon = AbandonGuard {
            shared: &self.shared,
            ids: Vec::with_capacity(items.len()),
        };
        let mut envelopes = Vec::with_capacity(items.len().min(MAX_BATCH));
        let mut frame_ids = Vec::with_capacity(items.len().min(MAX_BATCH));
        let mut frames = Vec::new();
        for (op, grid) in items {
            let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
            // A child of the batch's span (the current one).
            let span = spans::client_request(Transport::Ws, &op);
            spans::record_request_id(&span, id);
            let envelope = wire::encode_request(id, &op, grid, ch);
            let (reply, rx) = oneshot::channel();
            if let Err(error) = self.shared.register(id, &op, reply) {
                let error = self.local_failure(&op, error);
                spans::record_outcome(&span, Some(error.kind()));
                slots.push(Slot::Done(Err(error)));
                continue;
            }
            abandon.ids.push(id);
            envelopes.push(envelope);
            frame_ids.push(id);
            slots.push(Slot::Waiting { id, op, rx, span });
            if envelopes.len() == MAX_BATCH {
                frames.push((
                    wire::encode_batch(&envelopes),
                    std::mem::take(&mut frame_ids),
                ));
                envelopes.clear();
            }
        }
        if !envelopes.is_empty() {
            frames.push((wire::encode_batch(&envelopes), frame_ids));
        }
        for (text, ids) in frames {
            log::debug!(target: targets::WS_CLIENT, "batch of {} requests ({} bytes)", ids.len(), text.len());
            self.send(
                Command::Frame {
                    text,
                    label: labels::BATCH.to_owned(),
                },
                deadline,
                &ids,
            )
            .await;
        }
        let mut results = Vec::with_capacity(slots.len());
        for slot in slots {
            results.push(match slot {
                Slot::Done(result) => result,
                Slot::Waiting { id, op, rx, span } => {
                    let result = self
                        .wait(id, &op, rx, deadline, timeout)
                        .instrument(span.clone())
                        .await;
                    spans::record_outcome(&span, result.as_ref().err().map(WsClientError::kind));
                    result
                }
            });
        }
        results
    }

    /// Queues a frame for the writer. On failure the requests in `ids` are
    /// failed here (their waits then return the recorded result).
    async fn send(&self, command: Command, deadline: tokio::time::Instant, ids: &[u32]) {
        let outcome = tokio::time::timeout_at(deadline, self.commands.send(command)).await;
        let error = match outcome {
            Ok(Ok(())) => return,
            Ok(Err(_)) => WsClientError::closed(
                self.shared
                    .closed_reason()
                    .unwrap_or_else(|| "connection task ended".to_owned()),
            ),
            // The wait below reports the timeout.
            Err(_) => return,
        };
        for id in ids {
            if let Some(pending) = self.shared.take(*id) {
                self.shared.fail(pending, error.duplicate());
            }
        }
    }

    async fn wait(
        &self,
        id: u32,
        op: &str,
        mut rx: oneshot::Receiver<Result<Grid, WsClientError>>,
        deadline: tokio::time::Instant,
        timeout: Duration,
    ) -> Result<Grid, WsClientError> {
        match tokio::time::timeout_at(deadline, &mut rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(WsClientError::closed("connection task ended")),
            Err(_) => match self.shared.take(id) {
                Some(pending) => {
                    let error = WsClientError::Timeout {
                        op: op.to_owned(),
                        after: timeout,
                    };
                    log::debug!(target: targets::WS_CLIENT, "request {id} {op} timed out after {timeout:?}");
                    self.shared.fail(pending, error.duplicate());
                    Err(error)
                }
                // The answer won the race: it is already in the channel.
                None => rx
                    .await
                    .unwrap_or_else(|_| Err(WsClientError::closed("connection task ended"))),
            },
        }
    }

    /// A request that failed before reaching the wire still ends in exactly
    /// one `on_error`.
    fn local_failure(&self, op: &str, error: WsClientError) -> WsClientError {
        self.shared.observer.on_error(op, error.kind().as_str());
        error
    }

    /// Closes with code 1000 and waits (bounded) for the server's close.
    pub(crate) async fn close(&self) {
        if self.shared.closed_reason().is_some() {
            return;
        }
        let _ = self.commands.try_send(Command::Close);
        // The writer gives the server `close_timeout`; a little slack, then
        // end the task regardless.
        let bound = self.close_timeout + Duration::from_millis(500);
        if tokio::time::timeout(bound, self.shared.wait_closed())
            .await
            .is_err()
        {
            self.task.abort();
            let _ = tokio::time::timeout(Duration::from_secs(1), self.shared.wait_closed()).await;
        }
    }
}

enum Slot {
    Done(Result<Grid, WsClientError>),
    Waiting {
        id: u32,
        op: String,
        rx: oneshot::Receiver<Result<Grid, WsClientError>>,
        span: tracing::Span,
    },
}

/// Drops the pending entries of a request whose caller went away, so an
/// abandoned request does not linger until the connection ends.
struct AbandonGuard<'a> {
    shared: &'a Shared,
    ids: Vec<u32>,
}

impl Drop for AbandonGuard<'_> {
    fn drop(&mut self) {
        let mut table = self.shared.pending.lock();
        for id in &self.ids {
            table.map.remove(id);
        }
    }
}
