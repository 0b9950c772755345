//! What every hs client offers, whatever its transport: the
//! [`HaystackClient`] trait, its [`ClientError`], and the [`Backoff`] the
//! clients wait by between attempts. Each request runs in a
//! [`spans::client_request`](crate::spans::client_request) span.
//!
//! hs-http-client's `HttpClient` and hs-ws-client's `WsClient`,
//! `ReconnectingWsClient` and `WsPool` implement the trait (both crates
//! re-export it), so code written against `&dyn HaystackClient` or
//! `Arc<dyn HaystackClient>` runs over either transport.

mod backoff;
mod error;

pub use backoff::Backoff;
pub use error::ClientError;

use std::time::Duration;

use async_trait::async_trait;

use crate::ops::HisItem;
use crate::ops::build as request;
use crate::value::{Dict, Grid, Number, Ref, Value};

/// The Haystack ops as typed async methods, plus any op by name
/// ([`call`](Self::call)) and [`batch`](Self::batch).
///
/// An implementation provides [`call`](Self::call) and
/// [`close`](Self::close); every op method is [`call`](Self::call) with the
/// request grid haystack-py sends ([`crate::ops::build`]), and a transport
/// overrides one only to say more about it (the HTTP client retries
/// [`point_write_array`](Self::point_write_array), a read). An error grid
/// from the server is an error whose [`ClientError::as_str`] is
/// `error_grid`.
#[async_trait]
pub trait HaystackClient: Send + Sync + std::fmt::Debug {
    /// Sends `op` with `grid` and waits for the response grid.
    async fn call(&self, op: &str, grid: Grid) -> Result<Grid, ClientError>;

    /// Ends the client's session (the HTTP login, the WebSocket
    /// connection). Requests still pending fail.
    async fn close(&self) -> Result<(), ClientError>;

    /// Several requests; one result per item, in order (an error item does
    /// not affect the others). A WebSocket client sends them in one frame;
    /// by default they are sent one after the other.
    async fn batch(&self, items: Vec<(String, Grid)>) -> Vec<Result<Grid, ClientError>> {
        let mut results = Vec::with_capacity(items.len());
        for (op, grid) in items {
            results.push(self.call(&op, grid).await);
        }
        results
    }

    /// `about`: the server's summary.
    async fn about(&self) -> Result<Grid, ClientError> {
        self.call("about", request::empty()).await
    }

    /// `ops`: the ops the server lists.
    async fn ops(&self) -> Result<Grid, ClientError> {
        self.call("ops", request::empty()).await
    }

    /// `formats`: the MIME types the server reads and writes.
    async fn formats(&self) -> Result<Grid, ClientError> {
        self.call("formats", request::empty()).await
    }

    /// The `close` op: ends the server-side session; unlike
    /// [`close`](Self::close) the client stays as it is.
    async fn close_session(&self) -> Result<Grid, ClientError> {
        self.call("close", request::empty()).await
    }

    /// `read` of the entities matching `filter`, at most `limit` (`None`:
    /// all).
    async fn read_filter(&self, filter: &str, limit: Option<usize>) -> Result<Grid, ClientError> {
        self.call("read", request::read_filter(filter, limit)).await
    }

    /// `read` of the given ids. Unknown ids are dropped by haystack-py
    /// servers and answered as rows without tags by others.
    async fn read_ids(&self, ids: &[Ref]) -> Result<Grid, ClientError> {
        self.call("read", request::read_ids(ids)).await
    }

    /// `nav` from the roots (`None`) or from an entity.
    async fn nav(&self, nav_id: Option<&str>) -> Result<Grid, ClientError> {
        self.call("nav", request::nav(nav_id)).await
    }

    /// `hisRead` of one point over `range` (`today`, `yesterday`,
    /// `2024-01-01`, `2024-01-01,2024-01-31`, ...).
    async fn his_read(&self, id: &Ref, range: &str) -> Result<Grid, ClientError> {
        self.call("hisRead", request::his_read(id, range)).await
    }

    /// `hisWrite`: appends `items` to the history of `id`.
    async fn his_write(&self, id: &Ref, items: &[HisItem]) -> Result<Grid, ClientError> {
        self.call("hisWrite", request::his_write(id, items)).await
    }

    /// `pointWrite` at `level` (1..=17): sets `val`, or releases the level
    /// when `val` is `None`; `duration` (a Number with a time unit, such as
    /// `30min`; [`request::seconds`] makes one of a `Duration`) limits how
    /// long the write holds.
    async fn point_write(
        &self,
        id: &Ref,
        level: u8,
        val: Option<&Value>,
        who: &str,
        duration: Option<Number>,
    ) -> Result<Grid, ClientError> {
        let grid = request::point_write(id, level, val, who, duration);
        self.call("pointWrite", grid).await
    }

    /// `pointWrite` without a level: the point's 17-level priority array.
    async fn point_write_array(&self, id: &Ref) -> Result<Grid, ClientError> {
        self.call("pointWrite", request::point_write_array(id))
            .await
    }

    /// `watchSub`: a new watch named `dis` (`watch_id: None`), or more ids
    /// for (and a renewed lease of) the open watch `watch_id`; the response
    /// meta carries the `watchId` ([`request::watch_id`]).
    async fn watch_sub(
        &self,
        watch_id: Option<&str>,
        dis: &str,
        ids: &[Ref],
        lease: Option<Duration>,
    ) -> Result<Grid, ClientError> {
        let grid = request::watch_sub(watch_id, Some(dis), ids, lease);
        self.call("watchSub", grid).await
    }

    /// `watchUnsub`: removes `ids` from the watch, or drops the whole watch
    /// with `close`.
    async fn watch_unsub(
        &self,
        watch_id: &str,
        ids: &[Ref],
        close: bool,
    ) -> Result<Grid, ClientError> {
        let grid = request::watch_unsub(watch_id, ids, close);
        self.call("watchUnsub", grid).await
    }

    /// `watchPoll`: the entities changed since the last poll, or all
    /// watched entities with `refresh`.
    async fn watch_poll(&self, watch_id: &str, refresh: bool) -> Result<Grid, ClientError> {
        self.call("watchPoll", request::watch_poll(watch_id, refresh))
            .await
    }

    /// `invokeAction`: runs `action` on `id` with `args`.
    async fn invoke_action(
        &self,
        id: &Ref,
        action: &str,
        args: &Dict,
    ) -> Result<Grid, ClientError> {
        let grid = request::invoke_action(id, action, args);
        self.call("invokeAction", grid).await
    }
}
