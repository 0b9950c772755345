//! One WebSocket connection: the upgrade, the connection task (reader,
//! writer, heartbeat) and the table of pending requests.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use hs_core::auth::AuthFailure;
use hs_core::observe::{GuardedObserver, MetricsObserver};
use parking_lot::Mutex;
use tokio::net::TcpStream;
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::http::header::SEC_WEBSOCKET_PROTOCOL;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Bytes, Message};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use crate::auth::AUTH_TARGET;
use crate::config::{Auth, WsConfig};
use crate::watch::WatchPush;
use crate::wire::{self, AuthReply, Incoming};
use crate::{Grid, ServerClose, WsClientError};

/// `log` target of connection lifecycle, frames and heartbeat.
pub(crate) const CONN_TARGET: &str = "hs::ws::conn";
/// `log` target of requests, reconnection and pool events.
pub(crate) const CLIENT_TARGET: &str = "hs::ws::client";

/// The subprotocol haystack-py's standalone server insists on.
pub(crate) const SUBPROTOCOL: &str = "haystack";

/// haystack-py drops batch items beyond this many.
const MAX_BATCH: usize = 1000;

/// Queue between callers and the writer.
const COMMAND_QUEUE: usize = 1024;

pub(crate) type WsStream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Where pushes of this connection go.
pub(crate) type PushSink = Arc<dyn Fn(WatchPush) + Send + Sync>;

type Reply = oneshot::Sender<Result<Grid, WsClientError>>;

struct Pending {
    op: String,
    started: Instant,
    reply: Reply,
}

#[derive(Default)]
struct PendingTable {
    /// Set once the connection has ended, to the error its requests got:
    /// nothing may register after that.
    closed: Option<WsClientError>,
    map: HashMap<u32, Pending>,
}

/// Whether the server has accepted the client. After a token, or with no
/// credentials, the server answers nothing on success: the first response
/// is the acceptance, and an `authErr` or a close before it is a refusal.
#[derive(Debug, Clone, PartialEq)]
enum AuthCheck {
    /// Accepted (or SCRAM, which the connect already settled).
    Accepted,
    /// A token was sent; no response yet.
    TokenSent,
    /// No credentials; no response yet.
    Anonymous,
    /// The server answered `authErr`.
    Refused(AuthFailure),
}

impl AuthCheck {
    fn new(auth: &Auth) -> Self {
        match auth {
            Auth::Token(_) => AuthCheck::TokenSent,
            Auth::None => AuthCheck::Anonymous,
            _ => AuthCheck::Accepted,
        }
    }

    /// What an `authErr` means now, if it is a refusal of this client.
    fn refusal(&self) -> Option<AuthFailure> {
        match self {
            AuthCheck::TokenSent => Some(AuthFailure::TokenRejected),
            AuthCheck::Anonymous => Some(AuthFailure::LoginRequired),
            AuthCheck::Accepted | AuthCheck::Refused(_) => None,
        }
    }
}

/// The close code of a server shutting down.
const CLOSE_GOING_AWAY: u16 = 1001;

/// State shared by the connection task and the client handles.
pub(crate) struct Shared {
    pub(crate) url: String,
    pub(crate) observer: GuardedObserver,
    pending: Mutex<PendingTable>,
    next_id: AtomicU32,
    on_push: PushSink,
    closed: watch::Sender<Option<String>>,
    auth_check: Mutex<AuthCheck>,
    /// Set once `auth_check` is `Accepted` for good.
    auth_settled: AtomicBool,
}

impl Shared {
    fn register(&self, id: u32, op: &str, reply: Reply) -> Result<(), WsClientError> {
        let mut table = self.pending.lock();
        if let Some(error) = &table.closed {
            return Err(error.duplicate());
        }
        table.map.insert(
            id,
            Pending {
                op: op.to_string(),
                started: Instant::now(),
                reply,
            },
        );
        Ok(())
    }

    fn take(&self, id: u32) -> Option<Pending> {
        self.pending.lock().map.remove(&id)
    }

    /// Number of requests waiting for their response.
    pub(crate) fn in_flight(&self) -> usize {
        self.pending.lock().map.len()
    }

    /// The reason the connection ended, if it has.
    pub(crate) fn closed_reason(&self) -> Option<String> {
        self.closed.borrow().clone()
    }

    /// Whether the connection ended because the server refused this
    /// client (a bad token, a login required): set once it has ended.
    pub(crate) fn ended_refused(&self) -> bool {
        self.pending
            .lock()
            .closed
            .as_ref()
            .is_some_and(WsClientError::is_auth)
    }

    /// Resolves once the connection has ended; yields the reason.
    pub(crate) async fn wait_closed(&self) -> String {
        let mut rx = self.closed.subscribe();
        match rx.wait_for(Option::is_some).await {
            Ok(reason) => reason.clone().unwrap_or_default(),
            Err(_) => "connection dropped".to_string(),
        }
    }

    /// Completes a request with the server's grid: fires exactly one of
    /// `on_request` / `on_error` and hands the result to the caller.
    fn complete(&self, pending: Pending, grid: Grid) {
        let result = match wire::error_dis(&grid) {
            Some(dis) => {
                let error = WsClientError::ErrorGrid {
                    op: pending.op,
                    dis,
                    grid: Box::new(grid),
                };
                if let WsClientError::ErrorGrid { op, .. } = &error {
                    self.observer.on_error(op, error.kind().as_str());
                }
                Err(error)
            }
            None => {
                self.observer
                    .on_request(&pending.op, pending.started.elapsed());
                Ok(grid)
            }
        };
        // The caller may have gone away (future dropped): nothing to do.
        let _ = pending.reply.send(result);
    }

    fn fail(&self, pending: Pending, error: WsClientError) {
        self.observer.on_error(&pending.op, error.kind().as_str());
        let _ = pending.reply.send(Err(error));
    }

    fn fail_all(&self, error: &WsClientError) {
        let drained: Vec<Pending> = {
            let mut table = self.pending.lock();
            table.closed = Some(error.duplicate());
            table.map.drain().map(|(_, p)| p).collect()
        };
        if !drained.is_empty() {
            log::debug!(
                target: CLIENT_TARGET,
                "{} pending requests failed: connection to {} closed ({error})",
                drained.len(),
                self.url
            );
        }
        for pending in drained {
            self.fail(pending, error.duplicate());
        }
    }

    /// The server answered a request: it accepted the token (or the
    /// anonymous client).
    fn accepted(&self) {
        // Every response calls this: skip the lock once settled.
        if self.auth_settled.load(Ordering::Relaxed) {
            return;
        }
        let mut check = self.auth_check.lock();
        if matches!(*check, AuthCheck::TokenSent | AuthCheck::Anonymous) {
            *check = AuthCheck::Accepted;
        }
        self.auth_settled
            .store(*check == AuthCheck::Accepted, Ordering::Relaxed);
    }

    /// The error the connection's requests get when the server refused the
    /// client (`authErr`, or a close before any response after a token, or
    /// FastAPI's 4003 to an anonymous client); `None` for any other end.
    fn auth_refusal(&self, close: Option<&ServerClose>) -> Option<WsClientError> {
        let failure = match &*self.auth_check.lock() {
            AuthCheck::Refused(failure) => failure.clone(),
            // haystack-py's standalone server refuses a token with a bare
            // close 1000; 1001 is a server going away, not a refusal.
            AuthCheck::TokenSent if close.is_some_and(|c| c.code != CLOSE_GOING_AWAY) => {
                AuthFailure::TokenRejected
            }
            AuthCheck::Anonymous if close.is_some_and(|c| c.code == ServerClose::AUTH_REQUIRED) => {
                AuthFailure::LoginRequired
            }
            _ => return None,
        };
        Some(WsClientError::refused(failure, close.cloned()))
    }

    /// Dispatches one text frame from the server.
    pub(crate) fn on_text(&self, text: &str) {
        let len = text.len();
        match wire::decode(text) {
            Ok(Incoming::Response { id, grid }) => match self
                .take_by_json_id(id.as_ref())
                .inspect(|_| self.accepted())
            {
                Some(pending) => {
                    self.observer.on_ws_message_recv(&pending.op, len);
                    self.complete(pending, grid);
                }
                None => {
                    // A late answer to a request that timed out or was
                    // abandoned, or an id this client never sent.
                    self.observer.on_ws_message_recv("invalid", len);
                    log::debug!(target: CLIENT_TARGET, "unmatched response id {id:?} from {}", self.url);
                }
            },
            Ok(Incoming::Batch(items)) if items.is_empty() => {
                // No server answers a batch with nothing (an array of
                // non-objects decodes to this).
                self.observer.on_ws_message_recv("invalid", len);
                log::warn!(target: CLIENT_TARGET, "empty batch frame from {}", self.url);
            }
            Ok(Incoming::Batch(items)) => {
                self.observer.on_ws_message_recv("batch", len);
                self.accepted();
                for (id, grid) in items {
                    match self.take_by_json_id(id.as_ref()) {
                        Some(pending) => self.complete(pending, grid),
                        None => log::debug!(
                            target: CLIENT_TARGET,
                            "unmatched batch item id {id:?} from {}",
                            self.url
                        ),
                    }
                }
            }
            Ok(Incoming::Watch { watch_id, grid }) => {
                self.observer.on_ws_message_recv("push", len);
                log::debug!(target: CLIENT_TARGET, "push for watch {watch_id} ({} rows)", grid.rows.len());
                (self.on_push)(WatchPush { watch_id, grid });
            }
            Ok(Incoming::Auth(reply)) => {
                self.observer.on_ws_message_recv("auth", len);
                let mut check = self.auth_check.lock();
                match (&reply, check.refusal()) {
                    (AuthReply::Err, Some(failure)) => {
                        // The connection ends next (the server closes it);
                        // the close reports this to the pending requests.
                        // DEBUG: the requests' errors say it.
                        log::debug!(target: AUTH_TARGET, "{} refused the client: {failure}", self.url);
                        *check = AuthCheck::Refused(failure);
                    }
                    _ => {
                        log::warn!(target: CLIENT_TARGET, "unexpected auth message after authentication from {}", self.url)
                    }
                }
            }
            Ok(Incoming::Other) => {
                self.observer.on_ws_message_recv("invalid", len);
                log::debug!(target: CLIENT_TARGET, "ignored message from {}", self.url);
            }
            Err(error) => {
                self.observer.on_ws_message_recv("invalid", len);
                log::warn!(
                    target: CLIENT_TARGET,
                    "undecodable frame from {} ({len} bytes): {}",
                    self.url,
                    error.message
                );
                if let Some(pending) = self.take_by_json_id(error.request_id.as_ref()) {
                    self.fail(
                        pending,
                        WsClientError::Protocol(format!("undecodable response: {}", error.message)),
                    );
                }
            }
        }
    }

    fn take_by_json_id(&self, id: Option<&hs_core::ws::RequestId>) -> Option<Pending> {
        // The client sends decimal strings; accept a number too.
        let id = id?;
        let id = match id.as_str() {
            Some(text) => text.parse::<u32>().ok()?,
            None => u32::try_from(id.as_u64()?).ok()?,
        };
        self.take(id)
    }
}

/// Fires `on_ws_disconnect`, fails every pending request and publishes the
/// end of the connection when dropped: whatever ends the connection task
/// (close, error, heartbeat, abort, runtime shutdown), it runs exactly once.
pub(crate) struct DisconnectGuard {
    shared: Arc<Shared>,
    /// What the pending (and later) requests fail with.
    error: Option<WsClientError>,
}

impl DisconnectGuard {
    fn set_reason(&mut self, reason: String) {
        self.error = Some(WsClientError::closed(reason));
    }

    fn set_error(&mut self, error: WsClientError) {
        self.error = Some(error);
    }
}

impl Drop for DisconnectGuard {
    fn drop(&mut self) {
        let error = self
            .error
            .take()
            .unwrap_or_else(|| WsClientError::closed("connection task ended"));
        let reason = match &error {
            WsClientError::ConnectionClosed { reason } => reason.clone(),
            other => other.to_string(),
        };
        log::info!(target: CONN_TARGET, "connection to {} closed: {reason}", self.shared.url);
        self.shared.fail_all(&error);
        self.shared.observer.on_ws_disconnect(&self.shared.url);
        self.shared.closed.send_replace(Some(reason));
    }
}

/// The close frame as the errors carry it.
pub(crate) fn close_info(frame: &CloseFrame) -> ServerClose {
    ServerClose {
        code: frame.code.into(),
        reason: frame.reason.to_string(),
    }
}

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
        url: url.to_string(),
        reason: reason.to_string(),
    }
}

async fn upgrade(config: &WsConfig) -> Result<WsStream, WsClientError> {
    let url = &config.url;
    if !(url.starts_with("ws://") || url.starts_with("wss://")) {
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
    let connector = config.tls.clone().map(Connector::Rustls);
    let transport = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(config.read_buffer_size);
    let handshake =
        tokio_tungstenite::connect_async_tls_with_config(request, Some(transport), true, connector);
    let (stream, response) = tokio::time::timeout(config.connect_timeout, handshake)
        .await
        .map_err(|_| {
            connect_error(
                url,
                format!("no answer within {:?}", config.connect_timeout),
            )
        })?
        // tungstenite's message wraps the cause ("IO error: ..."): say the
        // cause, as the HTTP client does.
        .map_err(|e| connect_error(url, hs_core::endpoint::failure_cause(&e)))?;
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
        let mut stream = upgrade(config).await?;
        log::info!(target: CONN_TARGET, "connected to {}", config.url);
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

    /// Sends one request and waits for its response (at most `timeout`).
    /// Fires exactly one of `on_request` / `on_error` unless the future is
    /// dropped first.
    pub(crate) async fn request(
        &self,
        op: &str,
        grid: Grid,
        ch: Option<&str>,
        timeout: Duration,
    ) -> Result<Grid, WsClientError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let text = wire::encode_request(id, op, grid, ch);
        let (reply, rx) = oneshot::channel();
        if let Err(error) = self.shared.register(id, op, reply) {
            return Err(self.local_failure(op, error));
        }
        let _abandon = AbandonGuard {
            shared: &self.shared,
            ids: vec![id],
        };
        log::debug!(target: CLIENT_TARGET, "request {id} {op} ({} bytes)", text.len());
        self.send(
            Command::Frame {
                text,
                label: op.to_string(),
            },
            deadline,
            &[id],
        )
        .await;
        self.wait(id, op, rx, deadline, timeout).await
    }

    /// Sends several requests in batch frames of at most 1 000 items and
    /// waits for each result (all within `timeout`).
    pub(crate) async fn batch(
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
            let envelope = wire::encode_request(id, &op, grid, ch);
            let (reply, rx) = oneshot::channel();
            if let Err(error) = self.shared.register(id, &op, reply) {
                slots.push(Slot::Done(Err(self.local_failure(&op, error))));
                continue;
            }
            abandon.ids.push(id);
            envelopes.push(envelope);
            frame_ids.push(id);
            slots.push(Slot::Waiting { id, op, rx });
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
            log::debug!(target: CLIENT_TARGET, "batch of {} requests ({} bytes)", ids.len(), text.len());
            self.send(
                Command::Frame {
                    text,
                    label: "batch".to_string(),
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
                Slot::Waiting { id, op, rx } => self.wait(id, &op, rx, deadline, timeout).await,
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
                    .unwrap_or_else(|| "connection task ended".to_string()),
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
                        op: op.to_string(),
                        after: timeout,
                    };
                    log::debug!(target: CLIENT_TARGET, "request {id} {op} timed out after {timeout:?}");
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

#[derive(Clone, Copy)]
struct Heartbeat {
    interval: Option<Duration>,
    max_missed: u32,
}

impl From<&WsConfig> for Heartbeat {
    fn from(config: &WsConfig) -> Self {
        Heartbeat {
            interval: config.heartbeat_interval,
            max_missed: config.missed_pongs,
        }
    }
}

/// The connection task: reads, writes and watches the heartbeat until one
/// of them ends, then the guard reports the disconnect.
///
/// The heartbeat monitor runs beside the writer, not inside it, so a peer
/// that stops reading (the writer blocked on a full socket) is still
/// detected.
async fn run(
    stream: WsStream,
    commands: mpsc::Receiver<Command>,
    mut guard: DisconnectGuard,
    heartbeat: Heartbeat,
    close_timeout: Duration,
) {
    let shared = guard.shared.clone();
    let (sink, stream) = stream.split();
    // Heartbeat periods since the server last showed a sign of life.
    let unanswered = AtomicU32::new(0);
    let ping_due = Notify::new();
    // Set by the reader when the server's close frame arrives: the truest
    // reason, even if the writer fails first on the closing socket.
    let server_close: Mutex<Option<ServerClose>> = Mutex::new(None);
    // Set by the writer when it starts the closing handshake.
    let client_close = AtomicBool::new(false);
    let reason = tokio::select! {
        reason = read_loop(stream, &shared, &unanswered, &server_close) => reason,
        reason = write_loop(sink, commands, &shared, &ping_due, &client_close, close_timeout) => reason,
        reason = heartbeat_loop(&shared, &unanswered, &ping_due, heartbeat) => reason,
    };
    let server_close = server_close.lock().take();
    let client_closed = client_close.load(Ordering::Relaxed);
    if !client_closed {
        if let Some(error) = shared.auth_refusal(server_close.as_ref()) {
            guard.set_error(error);
            return;
        }
    }
    let reason = match (client_closed, server_close) {
        (true, Some(_)) => "closed by client".to_string(),
        (_, Some(server)) => closed_by_server(Some(&server)),
        (_, None) => reason,
    };
    guard.set_reason(reason);
}

async fn heartbeat_loop(
    shared: &Shared,
    unanswered: &AtomicU32,
    ping_due: &Notify,
    heartbeat: Heartbeat,
) -> String {
    let Some(period) = heartbeat.interval else {
        return std::future::pending().await;
    };
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let missed = unanswered.fetch_add(1, Ordering::Relaxed);
        if missed >= heartbeat.max_missed {
            log::warn!(
                target: CONN_TARGET,
                "no answer from {} to {missed} pings: closing",
                shared.url
            );
            return format!("heartbeat timeout ({missed} pings unanswered)");
        }
        ping_due.notify_one();
    }
}

async fn read_loop(
    mut stream: futures_util::stream::SplitStream<WsStream>,
    shared: &Shared,
    unanswered: &AtomicU32,
    server_close: &Mutex<Option<ServerClose>>,
) -> String {
    let mut close_frame: Option<ServerClose> = None;
    while let Some(message) = stream.next().await {
        match message {
            Ok(Message::Text(text)) => {
                unanswered.store(0, Ordering::Relaxed);
                shared.on_text(text.as_str());
            }
            Ok(Message::Binary(bytes)) => {
                unanswered.store(0, Ordering::Relaxed);
                shared.observer.on_ws_message_recv("invalid", bytes.len());
                log::warn!(target: CONN_TARGET, "ignored binary frame of {} bytes from {}", bytes.len(), shared.url);
            }
            Ok(Message::Pong(_)) => {
                unanswered.store(0, Ordering::Relaxed);
                log::trace!(target: CONN_TARGET, "pong from {}", shared.url);
            }
            // tungstenite answers pings itself.
            Ok(Message::Ping(_)) | Ok(Message::Frame(_)) => {}
            Ok(Message::Close(frame)) => {
                log::debug!(target: CONN_TARGET, "close frame from {}: {frame:?}", shared.url);
                close_frame = frame.as_ref().map(close_info);
                *server_close.lock() = close_frame.clone();
            }
            Err(error) => {
                return match close_frame {
                    Some(close) => closed_by_server(Some(&close)),
                    None => format!("transport error: {error}"),
                };
            }
        }
    }
    closed_by_server(close_frame.as_ref())
}

fn closed_by_server(close: Option<&ServerClose>) -> String {
    match close {
        Some(close) if close.reason.is_empty() => format!("closed by server ({})", close.code),
        Some(close) => format!("closed by server ({} {})", close.code, close.reason),
        None => "closed by server".to_string(),
    }
}

async fn write_loop(
    mut sink: futures_util::stream::SplitSink<WsStream, Message>,
    mut commands: mpsc::Receiver<Command>,
    shared: &Shared,
    ping_due: &Notify,
    client_close: &AtomicBool,
    close_timeout: Duration,
) -> String {
    loop {
        tokio::select! {
            command = commands.recv() => match command {
                Some(Command::Frame { text, label }) => {
                    let len = text.len();
                    if let Err(error) = sink.send(Message::text(text)).await {
                        return format!("send failed: {error}");
                    }
                    shared.observer.on_ws_message_sent(&label, len);
                }
                Some(Command::Close) | None => {
                    log::debug!(target: CONN_TARGET, "closing connection to {}", shared.url);
                    client_close.store(true, Ordering::Relaxed);
                    let frame = CloseFrame { code: CloseCode::Normal, reason: "".into() };
                    let sent = tokio::time::timeout(close_timeout, sink.send(Message::Close(Some(frame)))).await;
                    match sent {
                        Ok(Ok(())) => {}
                        Ok(Err(error)) => return format!("close failed: {error}"),
                        Err(_) => return format!("close frame not sent within {close_timeout:?}"),
                    }
                    // The reader ends the task when the server's close arrives.
                    tokio::time::sleep(close_timeout).await;
                    return format!("no close frame from server within {close_timeout:?}");
                }
            },
            _ = ping_due.notified() => {
                log::trace!(target: CONN_TARGET, "ping to {}", shared.url);
                if let Err(error) = sink.send(Message::Ping(Bytes::new())).await {
                    return format!("ping failed: {error}");
                }
            }
        }
    }
}
