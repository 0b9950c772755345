//! The op methods every client type offers.

use std::future::Future;
use std::time::Duration;

use hs_core::ops::HisItem;
use hs_core::value::{DateTime, Dict, Number, Ref, Value};

use crate::{Grid, WsClientError, requests};

/// The 13 Haystack ops as typed async methods, plus raw `call` and `batch`.
///
/// Implemented by [`WsClient`](crate::WsClient),
/// [`ReconnectingWsClient`](crate::ReconnectingWsClient),
/// [`WsPool`](crate::WsPool) and [`WsChannel`](crate::WsChannel); an
/// implementation provides [`call_with_timeout`](Self::call_with_timeout) and
/// [`batch_with_timeout`](Self::batch_with_timeout), everything else is
/// built on them. An error grid from the server is an
/// [`WsClientError::ErrorGrid`].
pub trait HaystackClient: Send + Sync {
    /// Sends `op` with `grid`; waits at most `timeout` (`None`: the client's
    /// default).
    fn call_with_timeout(
        &self,
        op: &str,
        grid: Grid,
        timeout: Option<Duration>,
    ) -> impl Future<Output = Result<Grid, WsClientError>> + Send;

    /// Sends several requests in one frame; one result per item, in order
    /// (an error item does not affect the others).
    fn batch_with_timeout(
        &self,
        items: Vec<(String, Grid)>,
        timeout: Option<Duration>,
    ) -> impl Future<Output = Vec<Result<Grid, WsClientError>>> + Send;

    /// Sends `op` with `grid` and waits for the response grid.
    fn call(
        &self,
        op: &str,
        grid: Grid,
    ) -> impl Future<Output = Result<Grid, WsClientError>> + Send {
        self.call_with_timeout(op, grid, None)
    }

    /// [`batch_with_timeout`](Self::batch_with_timeout) with the default timeout.
    fn batch(
        &self,
        items: Vec<(String, Grid)>,
    ) -> impl Future<Output = Vec<Result<Grid, WsClientError>>> + Send {
        self.batch_with_timeout(items, None)
    }

    /// `about`: the server's summary.
    fn about(&self) -> impl Future<Output = Result<Grid, WsClientError>> + Send {
        self.call("about", requests::empty())
    }

    /// `ops`: the ops the server lists.
    fn ops(&self) -> impl Future<Output = Result<Grid, WsClientError>> + Send {
        self.call("ops", requests::empty())
    }

    /// `formats`: the MIME types the server reads and writes.
    fn formats(&self) -> impl Future<Output = Result<Grid, WsClientError>> + Send {
        self.call("formats", requests::empty())
    }

    /// `close`: ends the server-side session (the socket stays open).
    fn close_session(&self) -> impl Future<Output = Result<Grid, WsClientError>> + Send {
        self.call("close", requests::empty())
    }

    /// `read` of the entities matching `filter`, at most `limit`.
    fn read_filter(
        &self,
        filter: &str,
        limit: Option<usize>,
    ) -> impl Future<Output = Result<Grid, WsClientError>> + Send {
        self.call("read", requests::read_filter(filter, limit))
    }

    /// `read` of the given ids.
    fn read_ids(&self, ids: &[Ref]) -> impl Future<Output = Result<Grid, WsClientError>> + Send {
        self.call("read", requests::read_ids(ids))
    }

    /// `nav` from the root (`None`) or from an entity.
    fn nav(
        &self,
        nav_id: Option<&str>,
    ) -> impl Future<Output = Result<Grid, WsClientError>> + Send {
        self.call("nav", requests::nav(nav_id))
    }

    /// `hisRead` of one point over `range`.
    fn his_read(
        &self,
        id: &Ref,
        range: &str,
    ) -> impl Future<Output = Result<Grid, WsClientError>> + Send {
        self.call("hisRead", requests::his_read(id, range))
    }

    /// `hisWrite` of timestamped samples to one point.
    fn his_write(
        &self,
        id: &Ref,
        samples: &[(DateTime, Value)],
    ) -> impl Future<Output = Result<Grid, WsClientError>> + Send {
        let items: Vec<HisItem> = samples
            .iter()
            .map(|(ts, val)| HisItem {
                ts: *ts,
                val: val.clone(),
            })
            .collect();
        self.call("hisWrite", requests::his_write(id, &items))
    }

    /// `pointWrite` at `level` (1..=17); `val: None` releases the level.
    fn point_write(
        &self,
        id: &Ref,
        level: u8,
        val: Option<Value>,
        who: &str,
        duration: Option<Number>,
    ) -> impl Future<Output = Result<Grid, WsClientError>> + Send {
        self.call(
            "pointWrite",
            requests::point_write(id, level, val.as_ref(), who, duration),
        )
    }

    /// `pointWrite` reading the priority array.
    fn point_write_array(
        &self,
        id: &Ref,
    ) -> impl Future<Output = Result<Grid, WsClientError>> + Send {
        self.call("pointWrite", requests::point_write_array(id))
    }

    /// `watchSub`: a new watch (`watch_id: None`) or more ids for one; the
    /// response meta carries the `watchId` ([`requests::watch_id`]).
    fn watch_sub(
        &self,
        watch_id: Option<&str>,
        dis: &str,
        ids: &[Ref],
        lease: Option<Duration>,
    ) -> impl Future<Output = Result<Grid, WsClientError>> + Send {
        self.call(
            "watchSub",
            requests::watch_sub(watch_id, Some(dis), ids, lease),
        )
    }

    /// `watchUnsub`: remove ids, or drop the watch with `close`.
    fn watch_unsub(
        &self,
        watch_id: &str,
        ids: &[Ref],
        close: bool,
    ) -> impl Future<Output = Result<Grid, WsClientError>> + Send {
        self.call("watchUnsub", requests::watch_unsub(watch_id, ids, close))
    }

    /// `watchPoll`: changes since the last poll (`refresh`: everything).
    fn watch_poll(
        &self,
        watch_id: &str,
        refresh: bool,
    ) -> impl Future<Output = Result<Grid, WsClientError>> + Send {
        self.call("watchPoll", requests::watch_poll(watch_id, refresh))
    }

    /// `invokeAction` `action` on `id` with `args`.
    fn invoke_action(
        &self,
        id: &Ref,
        action: &str,
        args: Dict,
    ) -> impl Future<Output = Result<Grid, WsClientError>> + Send {
        self.call("invokeAction", requests::invoke_action(id, action, &args))
    }
}
