//! Several connections behind one handle, and channels over them.

use hs_core::observe::targets;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hs_core::ops::Op;
use tokio::sync::broadcast;

use crate::config::{WsClientBuilder, WsConfig};
use crate::reconnect::ReconnectingWsClient;
use crate::watch::{PUSH_QUEUE, WatchEvents, WatchPush};
use crate::{Grid, WsClientError, requests};
use hs_core::client::Backoff;

struct PoolInner {
    members: Vec<ReconnectingWsClient>,
    pushes: broadcast::Sender<WatchPush>,
    /// Rotates the start of the least-in-flight scan so ties spread out.
    next: AtomicUsize,
}

/// `N` connections to one server behind one handle.
///
/// Each connection is a [`ReconnectingWsClient`]. A request goes to the
/// connection with the fewest requests in flight; watch ops go to the
/// connection that made the watch. [`channel`](Self::channel) gives handles
/// that tag their requests with `ch`, so several logical clients share the
/// connections.
#[derive(Clone)]
pub struct WsPool {
    inner: Arc<PoolInner>,
}

impl std::fmt::Debug for WsPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsPool")
            .field("size", &self.inner.members.len())
            .field("in_flight", &self.in_flight())
            .finish_non_exhaustive()
    }
}

impl WsPool {
    /// A builder for `url`; finish with
    /// [`connect_pool`](WsClientBuilder::connect_pool).
    pub fn builder(url: impl Into<String>) -> WsClientBuilder {
        WsClientBuilder::new(url)
    }

    pub(crate) async fn connect_with(
        config: WsConfig,
        size: usize,
        backoff: Backoff,
    ) -> Result<Self, WsClientError> {
        let size = size.max(1);
        let (pushes, _) = broadcast::channel(PUSH_QUEUE);
        let mut members = Vec::with_capacity(size);
        for _ in 0..size {
            members.push(
                ReconnectingWsClient::connect_sharing(config.clone(), backoff, pushes.clone())
                    .await?,
            );
        }
        log::info!(target: targets::WS_CLIENT, "pool of {size} connections to {}", config.url);
        Ok(WsPool {
            inner: Arc::new(PoolInner {
                members,
                pushes,
                next: AtomicUsize::new(0),
            }),
        })
    }

    /// Number of connections.
    pub fn size(&self) -> usize {
        self.inner.members.len()
    }

    /// Requests in flight over all connections.
    pub fn in_flight(&self) -> usize {
        self.inner.members.iter().map(|m| m.in_flight()).sum()
    }

    /// A handle whose requests carry `"ch":"<name>"`.
    pub fn channel(&self, name: impl Into<Arc<str>>) -> WsChannel {
        WsChannel {
            pool: self.clone(),
            name: name.into(),
        }
    }

    /// Pushes from every connection of the pool.
    ///
    /// hs-ws-server sends a push only to the connection that subscribed the
    /// watch, so each push arrives once. haystack-py's standalone server
    /// sends every push to every open connection: against it, a pool of `N`
    /// connections yields each push `N` times.
    pub fn watch_events(&self) -> WatchEvents {
        WatchEvents::new(self.inner.pushes.subscribe())
    }

    /// Closes every connection.
    pub(crate) async fn shutdown(&self) {
        for member in &self.inner.members {
            member.shutdown().await;
        }
    }

    /// The connection for a request: the watch's owner for watch ops,
    /// otherwise the least loaded.
    fn pick(&self, op: &str, grid: &Grid) -> &ReconnectingWsClient {
        let members = &self.inner.members;
        if Op::from_name(op).is_some_and(Op::is_watch)
            && let Some(id) = requests::watch_id(grid)
            && let Some(owner) = members.iter().find(|m| m.knows_watch(&id))
        {
            return owner;
        }
        let start = self.inner.next.fetch_add(1, Ordering::Relaxed);
        let n = members.len();
        let mut best = &members[start % n];
        let mut best_load = best.in_flight();
        for offset in 1..n {
            let candidate = &members[(start + offset) % n];
            let load = candidate.in_flight();
            if load < best_load {
                best = candidate;
                best_load = load;
            }
        }
        best
    }

    async fn call_on(
        &self,
        op: &str,
        grid: Grid,
        ch: Option<&str>,
        timeout: Option<Duration>,
    ) -> Result<Grid, WsClientError> {
        self.pick(op, &grid).call_on(op, grid, ch, timeout).await
    }

    async fn batch_on(
        &self,
        items: Vec<(String, Grid)>,
        ch: Option<&str>,
        timeout: Option<Duration>,
    ) -> Vec<Result<Grid, WsClientError>> {
        let member = match items.first() {
            Some((op, grid)) => self.pick(op, grid),
            None => return Vec::new(),
        };
        member.batch_on(items, ch, timeout).await
    }
}

impl WsPool {
    /// [`call`](hs_core::client::HaystackClient::call) waiting at most
    /// `timeout` (`None`: the client's request timeout).
    pub async fn call_with_timeout(
        &self,
        op: &str,
        grid: Grid,
        timeout: Option<Duration>,
    ) -> Result<Grid, WsClientError> {
        self.call_on(op, grid, None, timeout).await
    }

    /// [`batch`](hs_core::client::HaystackClient::batch) waiting at most
    /// `timeout` (`None`: the client's request timeout).
    pub async fn batch_with_timeout(
        &self,
        items: Vec<(String, Grid)>,
        timeout: Option<Duration>,
    ) -> Vec<Result<Grid, WsClientError>> {
        self.batch_on(items, None, timeout).await
    }
}

/// A logical client on a [`WsPool`]: every request carries its channel
/// label `ch`.
#[derive(Clone)]
pub struct WsChannel {
    pool: WsPool,
    name: Arc<str>,
}

impl std::fmt::Debug for WsChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsChannel")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl WsChannel {
    /// The channel label.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Nothing: the connections are the pool's, closed with it.
    pub(crate) async fn shutdown(&self) {}

    /// [`call`](hs_core::client::HaystackClient::call) waiting at most
    /// `timeout` (`None`: the client's request timeout).
    pub async fn call_with_timeout(
        &self,
        op: &str,
        grid: Grid,
        timeout: Option<Duration>,
    ) -> Result<Grid, WsClientError> {
        self.pool.call_on(op, grid, Some(&self.name), timeout).await
    }

    /// [`batch`](hs_core::client::HaystackClient::batch) waiting at most
    /// `timeout` (`None`: the client's request timeout).
    pub async fn batch_with_timeout(
        &self,
        items: Vec<(String, Grid)>,
        timeout: Option<Duration>,
    ) -> Vec<Result<Grid, WsClientError>> {
        self.pool.batch_on(items, Some(&self.name), timeout).await
    }
}
