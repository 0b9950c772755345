use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;

use crate::config::{WsClientBuilder, WsConfig};
use crate::conn::{Connection, PushSink};
use crate::watch::{PUSH_QUEUE, WatchEvents, WatchPush};
use crate::{Grid, WsClientError};

/// One WebSocket connection to a Haystack server.
///
/// Cheap to clone (clones share the connection); many requests may be in
/// flight at once, matched to their responses by id. The connection closes
/// when [`HaystackClient::close`] is called or the last clone is dropped.
/// The op methods come from [`HaystackClient`].
///
/// [`HaystackClient`]: hs_core::client::HaystackClient
/// [`HaystackClient::close`]: hs_core::client::HaystackClient::close
#[derive(Clone)]
pub struct WsClient {
    conn: Arc<Connection>,
    pushes: broadcast::Sender<WatchPush>,
    request_timeout: Duration,
    channel: Option<Arc<str>>,
}

impl std::fmt::Debug for WsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsClient")
            .field("url", &self.conn.shared.url)
            .field("request_timeout", &self.request_timeout)
            .field("in_flight", &self.in_flight())
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

impl WsClient {
    /// A builder for `url` (auth, timeouts, heartbeat, TLS, observer).
    pub fn builder(url: impl Into<String>) -> WsClientBuilder {
        WsClientBuilder::new(url)
    }

    /// Connects to `url` with the defaults (no auth).
    pub async fn connect(url: impl Into<String>) -> Result<Self, WsClientError> {
        WsClientBuilder::new(url).connect().await
    }

    pub(crate) async fn connect_with(config: WsConfig) -> Result<Self, WsClientError> {
        let (pushes, _) = broadcast::channel(PUSH_QUEUE);
        let sender = pushes.clone();
        let sink: PushSink = Arc::new(move |push| {
            // No subscriber is fine: pushes nobody listens to are dropped.
            let _ = sender.send(push);
        });
        let conn = Connection::open(&config, sink).await?;
        Ok(WsClient {
            conn: Arc::new(conn),
            pushes,
            request_timeout: config.request_timeout,
            channel: None,
        })
    }

    /// The URL this client connected to.
    pub fn url(&self) -> &str {
        &self.conn.shared.url
    }

    /// A handle on the same connection whose requests use `timeout` by default.
    #[must_use]
    pub fn with_request_timeout(&self, timeout: Duration) -> Self {
        WsClient {
            request_timeout: timeout,
            ..self.clone()
        }
    }

    /// A handle on the same connection that tags every request with the
    /// channel label `ch` (echoed by haystack-py's standalone server).
    #[must_use]
    pub fn with_channel(&self, ch: impl Into<Arc<str>>) -> Self {
        WsClient {
            channel: Some(ch.into()),
            ..self.clone()
        }
    }

    /// The server's watch pushes, from now on.
    pub fn watch_events(&self) -> WatchEvents {
        WatchEvents::new(self.pushes.subscribe())
    }

    /// Requests waiting for their response.
    pub fn in_flight(&self) -> usize {
        self.conn.shared.in_flight()
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.conn.shared.closed_reason().is_some()
    }

    /// Waits until the connection ends; returns why it ended.
    pub async fn closed(&self) -> String {
        self.conn.shared.wait_closed().await
    }

    /// Closes with code 1000 and waits (at most the close timeout) for the
    /// server's close frame. Pending requests fail with
    /// [`WsClientError::ConnectionClosed`].
    pub(crate) async fn shutdown(&self) {
        self.conn.close().await;
    }

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

    pub(crate) async fn call_on(
        &self,
        op: &str,
        grid: Grid,
        ch: Option<&str>,
        timeout: Option<Duration>,
    ) -> Result<Grid, WsClientError> {
        let ch = ch.or(self.channel.as_deref());
        self.conn
            .request(op, grid, ch, timeout.unwrap_or(self.request_timeout))
            .await
    }

    pub(crate) async fn batch_on(
        &self,
        items: Vec<(String, Grid)>,
        ch: Option<&str>,
        timeout: Option<Duration>,
    ) -> Vec<Result<Grid, WsClientError>> {
        let ch = ch.or(self.channel.as_deref());
        self.conn
            .batch(items, ch, timeout.unwrap_or(self.request_timeout))
            .await
    }
}
