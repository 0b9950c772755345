//! A client that survives its connection: reconnects with backoff,
//! re-authenticates and re-subscribes its watches.

use hs_core::observe::targets;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hs_core::observe::MetricsObserver;
use hs_core::ops::Op;
use hs_core::value::{Ref, Value};
use parking_lot::Mutex;
use tokio::sync::{broadcast, watch};

use crate::config::{WsClientBuilder, WsConfig};
use crate::conn::{Connection, PushSink};
use crate::watch::{PUSH_QUEUE, WatchEvents, WatchPush};
use crate::{Grid, WsClientError, requests};
use hs_core::client::Backoff;

/// A watch subscribed through the client, to be re-subscribed after a
/// reconnect.
#[derive(Debug, Clone)]
struct WatchRecord {
    /// The id the server knows the watch by on the current connection.
    server_id: String,
    dis: String,
    lease: Option<Value>,
    ids: Vec<Ref>,
}

/// Watches by the id the user knows (the first `watchSub` answer).
#[derive(Debug, Default)]
struct WatchBook {
    by_user_id: HashMap<String, WatchRecord>,
    /// server id -> user id
    by_server_id: HashMap<String, String>,
}

impl WatchBook {
    fn server_id(&self, user_id: &str) -> Option<&str> {
        self.by_user_id.get(user_id).map(|r| r.server_id.as_str())
    }

    fn user_id(&self, server_id: &str) -> Option<&str> {
        self.by_server_id.get(server_id).map(String::as_str)
    }

    fn rebind(&mut self, user_id: &str, new_server_id: String) {
        if let Some(record) = self.by_user_id.get_mut(user_id) {
            self.by_server_id.remove(&record.server_id);
            self.by_server_id
                .insert(new_server_id.clone(), user_id.to_owned());
            record.server_id = new_server_id;
        }
    }

    fn remove(&mut self, user_id: &str) {
        if let Some(record) = self.by_user_id.remove(user_id) {
            self.by_server_id.remove(&record.server_id);
        }
    }
}

struct State {
    config: WsConfig,
    backoff: Backoff,
    /// The live connection; `None` while reconnecting.
    current: watch::Sender<Option<Arc<Connection>>>,
    pushes: broadcast::Sender<WatchPush>,
    watches: Mutex<WatchBook>,
    /// Set by `close`: no more reconnecting, requests fail at once.
    closed: AtomicBool,
}

struct Handle {
    state: Arc<State>,
    supervisor: tokio::task::AbortHandle,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.supervisor.abort();
    }
}

/// A WebSocket client that reconnects whenever its connection ends.
///
/// Reconnection uses exponential backoff with jitter ([`Backoff`]), runs the
/// configured authentication again, and re-subscribes every watch made
/// through this client (re-issuing `watchSub` with its last `watchId`; if
/// the server answers with a new id, the client keeps translating so the
/// user's watch id stays valid and [`watch_events`](Self::watch_events)
/// keeps delivering under it). Requests pending when a connection drops
/// fail at once with [`WsClientError::ConnectionClosed`]; requests made while
/// reconnecting wait for the new connection up to their timeout. Each
/// reconnection attempt is logged at WARN on `hs::ws::client`. A failed TLS
/// handshake ([`WsClientError::Tls`], one `on_error("connect", "tls")` each)
/// is a failed attempt like any other: the client keeps trying with its
/// backoff, so a server whose certificate is fixed is reached again.
#[derive(Clone)]
pub struct ReconnectingWsClient {
    inner: Arc<Handle>,
}

impl std::fmt::Debug for ReconnectingWsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReconnectingWsClient")
            .field("url", &self.inner.state.config.url)
            .field("backoff", &self.inner.state.backoff)
            .field("connected", &self.is_connected())
            .finish_non_exhaustive()
    }
}

impl ReconnectingWsClient {
    /// A builder for `url`; finish with
    /// [`connect_reconnecting`](WsClientBuilder::connect_reconnecting).
    pub fn builder(url: impl Into<String>) -> WsClientBuilder {
        WsClientBuilder::new(url)
    }

    pub(crate) async fn connect_with(
        config: WsConfig,
        backoff: Backoff,
    ) -> Result<Self, WsClientError> {
        let (pushes, _) = broadcast::channel(PUSH_QUEUE);
        Self::connect_sharing(config, backoff, pushes).await
    }

    /// Connects with pushes going to `pushes` (a pool shares one).
    pub(crate) async fn connect_sharing(
        config: WsConfig,
        backoff: Backoff,
        pushes: broadcast::Sender<WatchPush>,
    ) -> Result<Self, WsClientError> {
        let (current, _) = watch::channel(None);
        let state = Arc::new(State {
            config,
            backoff,
            current,
            pushes,
            watches: Mutex::new(WatchBook::default()),
            closed: AtomicBool::new(false),
        });
        let first = Connection::open(&state.config, push_sink(&state)).await?;
        state.current.send_replace(Some(Arc::new(first)));
        let supervisor = tokio::spawn(supervise(Arc::downgrade(&state)));
        Ok(ReconnectingWsClient {
            inner: Arc::new(Handle {
                state,
                supervisor: supervisor.abort_handle(),
            }),
        })
    }

    /// The URL this client connects to.
    pub fn url(&self) -> &str {
        &self.inner.state.config.url
    }

    /// Whether a connection is up right now.
    pub fn is_connected(&self) -> bool {
        self.inner
            .state
            .current
            .borrow()
            .as_ref()
            .is_some_and(|c| c.shared.closed_reason().is_none())
    }

    /// Requests waiting for their response on the current connection.
    pub fn in_flight(&self) -> usize {
        self.inner
            .state
            .current
            .borrow()
            .as_ref()
            .map_or(0, |c| c.shared.in_flight())
    }

    /// Watch pushes from every connection this client makes, under the
    /// user's watch ids.
    pub fn watch_events(&self) -> WatchEvents {
        WatchEvents::new(self.inner.state.pushes.subscribe())
    }

    /// The watch ids this client re-subscribes after a reconnect.
    pub fn watch_ids(&self) -> Vec<String> {
        self.inner
            .state
            .watches
            .lock()
            .by_user_id
            .keys()
            .cloned()
            .collect()
    }

    pub(crate) fn knows_watch(&self, user_id: &str) -> bool {
        self.inner
            .state
            .watches
            .lock()
            .by_user_id
            .contains_key(user_id)
    }

    /// Stops reconnecting and closes the current connection (code 1000).
    pub(crate) async fn shutdown(&self) {
        self.inner.state.closed.store(true, Ordering::SeqCst);
        self.inner.supervisor.abort();
        // Also wakes requests waiting for a connection.
        let current = self.inner.state.current.send_replace(None);
        if let Some(conn) = current {
            conn.close().await;
        }
    }

    /// Waits for a live connection until `deadline`.
    async fn connection(
        &self,
        deadline: tokio::time::Instant,
    ) -> Result<Arc<Connection>, WsClientError> {
        let state = &self.inner.state;
        let client_closed = || WsClientError::closed("client closed");
        let mut rx = state.current.subscribe();
        let wait = rx.wait_for(|c| {
            state.closed.load(Ordering::SeqCst)
                || c.as_ref()
                    .is_some_and(|c| c.shared.closed_reason().is_none())
        });
        match tokio::time::timeout_at(deadline, wait).await {
            Ok(Ok(conn)) if !state.closed.load(Ordering::SeqCst) => {
                conn.as_ref().cloned().ok_or_else(client_closed)
            }
            Ok(_) => Err(client_closed()),
            // Renamed after the request by the caller.
            Err(_) => Err(WsClientError::Timeout {
                op: String::new(),
                after: Duration::ZERO,
            }),
        }
    }

    /// [`call`](hs_core::client::HaystackClient::call) waiting at most
    /// `timeout` (`None`: the client's request timeout), for a connection
    /// included.
    pub async fn call_with_timeout(
        &self,
        op: &str,
        grid: Grid,
        timeout: Option<Duration>,
    ) -> Result<Grid, WsClientError> {
        self.call_on(op, grid, None, timeout).await
    }

    /// [`batch`](hs_core::client::HaystackClient::batch) waiting at most
    /// `timeout` (`None`: the client's request timeout), for a connection
    /// included.
    pub async fn batch_with_timeout(
        &self,
        items: Vec<(String, Grid)>,
        timeout: Option<Duration>,
    ) -> Vec<Result<Grid, WsClientError>> {
        self.batch_on(items, None, timeout).await
    }

    pub(crate) async fn call_on(
        &self,
        op: &str,
        mut grid: Grid,
        ch: Option<&str>,
        timeout: Option<Duration>,
    ) -> Result<Grid, WsClientError> {
        let state = &self.inner.state;
        let timeout = timeout.unwrap_or(state.config.request_timeout);
        let deadline = tokio::time::Instant::now() + timeout;
        let conn = match self.connection(deadline).await {
            Ok(conn) => conn,
            Err(error) => {
                let error = name_timeout(error, op, timeout);
                // Still ends in exactly one event.
                state.config.observer.on_error(op, error.kind().as_str());
                return Err(error);
            }
        };
        let user_watch = translate_request(state, op, &mut grid);
        let kept = records_watches(op).then(|| grid.clone());
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        let result = conn.request(op, grid, ch, remaining).await;
        record_response(state, op, kept.as_ref(), user_watch, result)
    }

    pub(crate) async fn batch_on(
        &self,
        items: Vec<(String, Grid)>,
        ch: Option<&str>,
        timeout: Option<Duration>,
    ) -> Vec<Result<Grid, WsClientError>> {
        let state = &self.inner.state;
        let timeout = timeout.unwrap_or(state.config.request_timeout);
        let deadline = tokio::time::Instant::now() + timeout;
        let conn = match self.connection(deadline).await {
            Ok(conn) => conn,
            Err(error) => {
                return items
                    .iter()
                    .map(|(op, _)| {
                        let error = name_timeout(error.duplicate(), op, timeout);
                        state.config.observer.on_error(op, error.kind().as_str());
                        Err(error)
                    })
                    .collect();
            }
        };
        let mut items = items;
        let mut user_watches = Vec::with_capacity(items.len());
        for (op, grid) in &mut items {
            user_watches.push(translate_request(state, op, grid));
        }
        let kept: Vec<(String, Option<Grid>)> = items
            .iter()
            .map(|(op, grid)| (op.clone(), records_watches(op).then(|| grid.clone())))
            .collect();
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        let results = conn.batch(items, ch, remaining).await;
        results
            .into_iter()
            .zip(kept)
            .zip(user_watches)
            .map(|((result, (op, grid)), user_watch)| {
                record_response(state, &op, grid.as_ref(), user_watch, result)
            })
            .collect()
    }
}

/// A timeout waiting for a connection, named after the request.
fn name_timeout(error: WsClientError, op: &str, timeout: Duration) -> WsClientError {
    match error {
        WsClientError::Timeout { .. } => WsClientError::Timeout {
            op: op.to_owned(),
            after: timeout,
        },
        other => other,
    }
}

/// Pushes arrive under server ids; the user gets them under their own.
fn push_sink(state: &Arc<State>) -> PushSink {
    let weak = Arc::downgrade(state);
    Arc::new(move |mut push: WatchPush| {
        let Some(state) = weak.upgrade() else { return };
        if let Some(user_id) = state.watches.lock().user_id(&push.watch_id) {
            push.watch_id = user_id.to_owned();
        }
        let _ = state.pushes.send(push);
    })
}

/// Rewrites a user watch id in the request meta to the server's; returns
/// the user id it stood for.
fn translate_request(state: &State, op: &str, grid: &mut Grid) -> Option<String> {
    if !Op::from_name(op).is_some_and(Op::is_watch) {
        return None;
    }
    let user_id = requests::watch_id(grid)?;
    let book = state.watches.lock();
    let server_id = book.server_id(&user_id)?;
    if server_id != user_id
        && let Some(meta) = grid.meta.as_mut()
    {
        meta.insert("watchId".into(), Value::make_str(server_id));
    }
    Some(user_id)
}

/// Whether a successful `op` changes the watch book.
fn records_watches(op: &str) -> bool {
    matches!(Op::from_name(op), Some(Op::WatchSub | Op::WatchUnsub))
}

/// Keeps the watch book in step with successful watch ops and shows the
/// user their own watch id in a `watchSub` answer. `request` is the grid
/// sent, kept for the watch ops only.
fn record_response(
    state: &State,
    op: &str,
    request: Option<&Grid>,
    user_watch: Option<String>,
    result: Result<Grid, WsClientError>,
) -> Result<Grid, WsClientError> {
    let mut response = result?;
    if op != "watchSub"
        && let Some(user_id) = &user_watch
        && requests::watch_id(&response).is_some()
        && let Some(meta) = response.meta.as_mut()
    {
        // The user sees their own watch id, whatever the server calls it.
        meta.insert("watchId".into(), Value::make_str(user_id));
    }
    let Some(request) = request else {
        return Ok(response);
    };
    let request_ids = || -> Vec<Ref> {
        request
            .rows
            .iter()
            .filter_map(|row| match row.get("id") {
                Some(Value::Ref(r)) => Some(r.clone()),
                _ => None,
            })
            .collect()
    };
    let mut book = state.watches.lock();
    match op {
        "watchSub" => {
            let Some(server_id) = requests::watch_id(&response) else {
                return Ok(response);
            };
            let meta = request.meta.as_ref();
            let dis = meta
                .and_then(|m| m.get("watchDis"))
                .and_then(|v| match v {
                    Value::Str(s) => Some(s.value().to_owned()),
                    _ => None,
                })
                .unwrap_or_default();
            let lease = meta.and_then(|m| m.get("lease")).cloned();
            let user_id = match user_watch {
                Some(user_id) if book.by_user_id.contains_key(&user_id) => {
                    book.rebind(&user_id, server_id);
                    user_id
                }
                _ => {
                    let record = WatchRecord {
                        server_id: server_id.clone(),
                        dis,
                        lease,
                        ids: Vec::new(),
                    };
                    book.by_server_id
                        .insert(server_id.clone(), server_id.clone());
                    book.by_user_id.insert(server_id.clone(), record);
                    server_id
                }
            };
            if let Some(record) = book.by_user_id.get_mut(&user_id) {
                for id in request_ids() {
                    if !record.ids.contains(&id) {
                        record.ids.push(id);
                    }
                }
            }
            if let Some(meta) = response.meta.as_mut() {
                meta.insert("watchId".into(), Value::make_str(&user_id));
            }
        }
        "watchUnsub" => {
            if let Some(user_id) = user_watch {
                let close = request
                    .meta
                    .as_ref()
                    .is_some_and(|m| m.contains_key("close"));
                if close {
                    book.remove(&user_id);
                } else if let Some(record) = book.by_user_id.get_mut(&user_id) {
                    let gone = request_ids();
                    record.ids.retain(|id| !gone.contains(id));
                }
            }
        }
        _ => {}
    }
    Ok(response)
}

/// Re-subscribes every recorded watch on a fresh connection, before it is
/// handed to callers: `watchSub` with the watch's last id (haystack-py then
/// re-creates it under that id or a new one), and if the server refuses the
/// unknown id, a plain `watchSub` for a new watch.
async fn resubscribe(state: &State, conn: &Connection) {
    let records: Vec<(String, WatchRecord)> = state
        .watches
        .lock()
        .by_user_id
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (user_id, record) in records {
        // haystack-py re-creates a watch whose id it does not know; a server
        // that refuses the unknown id instead gets a fresh watchSub.
        let mut answer = conn
            .request(
                "watchSub",
                resubscription(&record, true),
                None,
                state.config.request_timeout,
            )
            .await;
        if matches!(answer, Err(WsClientError::ErrorGrid { .. })) {
            answer = conn
                .request(
                    "watchSub",
                    resubscription(&record, false),
                    None,
                    state.config.request_timeout,
                )
                .await;
        }
        match answer {
            Ok(response) => match requests::watch_id(&response) {
                Some(server_id) => {
                    log::info!(
                        target: targets::WS_CLIENT,
                        "watch {user_id} re-subscribed on {} as {server_id}",
                        state.config.url
                    );
                    state.watches.lock().rebind(&user_id, server_id);
                }
                None => {
                    log::warn!(target: targets::WS_CLIENT, "watch {user_id}: watchSub answer has no watchId")
                }
            },
            Err(error) => log::warn!(
                target: targets::WS_CLIENT,
                "watch {user_id} not re-subscribed on {}: {error}",
                state.config.url
            ),
        }
    }
}

/// The watchSub that restores `record`, naming its last server id or not.
fn resubscription(record: &WatchRecord, same_id: bool) -> Grid {
    let watch_id = same_id.then_some(record.server_id.as_str());
    let mut grid = requests::watch_sub(watch_id, Some(&record.dis), &record.ids, None);
    if let (Some(lease), Some(meta)) = (record.lease.clone(), grid.meta.as_mut()) {
        meta.insert("lease".into(), lease);
    }
    grid
}

/// Waits for the connection to end, then reconnects with backoff, forever
/// (until the client is closed or dropped).
///
/// A token or an anonymous client learns of a refusal only after the
/// connection opened, so the attempt count starts again only after a
/// connection that ended for another reason: a refused token backs off
/// like a failed connect instead of retrying at the first step forever.
async fn supervise(weak: std::sync::Weak<State>) {
    let mut attempt: u32 = 0;
    loop {
        let conn = {
            let Some(state) = weak.upgrade() else { return };
            state.current.borrow().clone()
        };
        let (reason, refused) = match conn {
            Some(conn) => {
                let reason = conn.shared.wait_closed().await;
                (reason, conn.shared.ended_refused())
            }
            None => ("not connected".to_owned(), false),
        };
        if !refused {
            attempt = 0;
        }
        loop {
            let delay = {
                let Some(state) = weak.upgrade() else { return };
                state.current.send_replace(None);
                let delay = state.backoff.delay(attempt);
                log::warn!(
                    target: targets::WS_CLIENT,
                    "connection to {} lost ({reason}); reconnecting in {delay:?} (attempt {})",
                    state.config.url,
                    attempt + 1
                );
                delay
            };
            tokio::time::sleep(delay).await;
            let Some(state) = weak.upgrade() else { return };
            attempt = attempt.saturating_add(1);
            match Connection::open(&state.config, push_sink(&state)).await {
                Ok(conn) => {
                    resubscribe(&state, &conn).await;
                    log::warn!(target: targets::WS_CLIENT, "reconnected to {}", state.config.url);
                    state.current.send_replace(Some(Arc::new(conn)));
                    break;
                }
                Err(error) => {
                    log::warn!(
                        target: targets::WS_CLIENT,
                        "reconnection attempt {attempt} to {} failed: {error}",
                        state.config.url
                    );
                }
            }
        }
    }
}
