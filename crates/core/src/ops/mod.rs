//! The 13 standard Haystack ops: names, typed requests, the [`HaystackOps`]
//! trait servers call, and [`dispatch`] from an op name and request grid.
//!
//! Both servers (HTTP and WebSocket) decode a request ([`OpRequest`]), run
//! it through their [`Pipeline`] (authorisation, then [`dispatch_as`] with
//! a panicking op contained), and encode the returned [`Reply`] (with
//! [`codec::encode_reply`](crate::codec::encode_reply)), or
//! [`OpError::to_grid`] on failure; [`outcome_kind`] names the observer
//! event. [`dispatch`] alone runs an op from its name and request grid:
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use hs_core::ops::dispatch;
//! use hs_core::store::MemoryStore;
//! use libhaystack::val::Grid;
//!
//! let store = MemoryStore::new();
//! let about = dispatch(&store, "about", Grid::default()).await.unwrap();
//! assert_eq!(about.row_count(), 1);
//! let err = dispatch(&store, "bogus", Grid::default()).await.unwrap_err();
//! assert_eq!(err.message(), "Unknown operation: bogus");
//! # });
//! ```

pub mod build;
mod error;
mod inbox;
mod pipeline;
pub(crate) mod plain_read;
mod range;
mod request;

use crate::observe::targets;
use std::fmt;
use std::hash::Hash;
use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use chrono_tz::Tz;

use crate::auth::Access;
use crate::codec::Format;
use libhaystack::val::{DateTime, Dict, Grid, Value};

pub use crate::codec::reply::{EncodedRows, Reply, make_grid};
pub use error::OpError;
pub use inbox::WatchInbox;
pub use pipeline::{Pipeline, outcome_kind};
pub use range::HisRange;
pub(crate) use range::kind_name;
pub use request::{
    HisItem, HisReadRequest, HisWriteRequest, HisWriteSeries, InvokeActionRequest,
    MAX_FILTER_DEPTH, MAX_FILTER_LEN, NavRequest, PRIORITY_LEVELS, ParsedFilter, PointWriteRequest,
    ReadRequest, WatchPollRequest, WatchSubRequest, WatchUnsubRequest,
};

/// The wire names of the 13 standard ops, in [`Op::ALL`] order (taken
/// from [`Op::as_str`]).
pub const STANDARD_OPS: [&str; 13] = {
    let mut names = [""; 13];
    let mut i = 0;
    while i < Op::ALL.len() {
        names[i] = Op::ALL[i].as_str();
        i += 1;
    }
    names
};

/// One of the standard ops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Op {
    /// `about`: server information.
    About,
    /// `ops`: the ops the server supports.
    Ops,
    /// `formats`: the MIME types the server reads and writes.
    Formats,
    /// `close`: end the session.
    Close,
    /// `read`: entities by filter or ids.
    Read,
    /// `nav`: walk the site / equip / point tree.
    Nav,
    /// `hisRead`: history of a point over a range.
    HisRead,
    /// `hisWrite`: append history samples.
    HisWrite,
    /// `pointWrite`: read or write a point's priority array.
    PointWrite,
    /// `watchSub`: create or extend a watch.
    WatchSub,
    /// `watchUnsub`: shrink or close a watch.
    WatchUnsub,
    /// `watchPoll`: changes since the last poll.
    WatchPoll,
    /// `invokeAction`: run an action on an entity.
    InvokeAction,
}

impl Op {
    /// Every op, in [`STANDARD_OPS`] order.
    pub const ALL: [Op; 13] = [
        Op::About,
        Op::Ops,
        Op::Formats,
        Op::Close,
        Op::Read,
        Op::Nav,
        Op::HisRead,
        Op::HisWrite,
        Op::PointWrite,
        Op::WatchSub,
        Op::WatchUnsub,
        Op::WatchPoll,
        Op::InvokeAction,
    ];

    /// The op's name on the wire (`hisRead`, ...).
    pub const fn as_str(self) -> &'static str {
        match self {
            Op::About => "about",
            Op::Ops => "ops",
            Op::Formats => "formats",
            Op::Close => "close",
            Op::Read => "read",
            Op::Nav => "nav",
            Op::HisRead => "hisRead",
            Op::HisWrite => "hisWrite",
            Op::PointWrite => "pointWrite",
            Op::WatchSub => "watchSub",
            Op::WatchUnsub => "watchUnsub",
            Op::WatchPoll => "watchPoll",
            Op::InvokeAction => "invokeAction",
        }
    }

    /// The op named `name` on the wire (case-sensitive), if it is one.
    pub fn from_name(name: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.as_str() == name)
    }

    /// Whether the op takes no request arguments: `about`, `ops`, `formats`
    /// and `close`. Over HTTP these are a bodiless `GET` (haystack-py's
    /// server answers any other method with `405`); every other op takes a
    /// request grid.
    pub const fn takes_no_arguments(self) -> bool {
        matches!(self, Op::About | Op::Ops | Op::Formats | Op::Close)
    }

    /// Whether the op only reads, so repeating it (a client's retry) is
    /// safe: `about`, `ops`, `formats`, `read`, `nav`, `hisRead`. Not
    /// `close` (it ends the session), not the watch ops (a `watchPoll`
    /// consumes the server's change set), not the writes.
    pub const fn is_idempotent_read(self) -> bool {
        matches!(
            self,
            Op::About | Op::Ops | Op::Formats | Op::Read | Op::Nav | Op::HisRead
        )
    }

    /// Whether the op may be called with an HTTP `GET` (the side-effect-free
    /// ops, and `close`); every op may be called with `POST`.
    pub const fn allows_get(self) -> bool {
        matches!(
            self,
            Op::About | Op::Ops | Op::Formats | Op::Close | Op::Read | Op::Nav | Op::HisRead
        )
    }

    /// Whether the op acts on a watch: `watchSub`, `watchUnsub`, `watchPoll`.
    pub const fn is_watch(self) -> bool {
        matches!(self, Op::WatchSub | Op::WatchUnsub | Op::WatchPoll)
    }

    /// The access the op needs: `hisWrite`, `pointWrite` and `invokeAction`
    /// write, every other op reads. A `pointWrite` that only reads the
    /// priority array needs less ([`OpRequest::access`]).
    pub const fn access(self) -> Access {
        match self {
            Op::HisWrite | Op::PointWrite | Op::InvokeAction => Access::Write,
            _ => Access::Read,
        }
    }

    /// Whether the op is cheap whatever its request (no scan, no I/O in
    /// the built-in store): `about`, `ops`, `formats`, `close`. A `read` of
    /// a few ids is cheap too ([`OpRequest::is_cheap`]).
    pub const fn is_cheap(self) -> bool {
        self.takes_no_arguments()
    }

    /// A one-line description, used as the `summary` of the `ops` response.
    pub const fn summary(self) -> &'static str {
        match self {
            Op::About => "Summary information for server",
            Op::Ops => "Operations supported by this server",
            Op::Formats => "Grid data formats supported by this server",
            Op::Close => "Close the current session",
            Op::Read => "Read entity records by filter or id",
            Op::Nav => "Navigate the site, equip and point tree",
            Op::HisRead => "Read time series history",
            Op::HisWrite => "Write time series history",
            Op::PointWrite => "Read or write a point's priority array",
            Op::WatchSub => "Subscribe to entity changes",
            Op::WatchUnsub => "Unsubscribe from entity changes",
            Op::WatchPoll => "Poll a watch for changes",
            Op::InvokeAction => "Invoke an action on an entity",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Op {
    type Err = OpError;

    /// Parse a wire name (case-sensitive); anything else is an
    /// [`UnknownOp`](crate::observe::ErrorKind::UnknownOp) error.
    fn from_str(name: &str) -> Result<Self, OpError> {
        Op::from_name(name).ok_or_else(|| OpError::unknown_op(name))
    }
}

/// Changed entities of one watch, taken from a [`WatchInbox`]; the
/// WebSocket server pushes it to the connection that subscribed the watch.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchEvent {
    /// The watch the entities belong to.
    pub watch_id: String,
    /// The changed entities, current state, meta `watchId`.
    pub grid: Grid,
}

/// The ops a Haystack server answers. Servers call it through [`dispatch`];
/// [`MemoryStore`](crate::store::MemoryStore) is the built-in implementation.
///
/// `about`, `ops`, `formats` and `close` have defaults; override
/// [`supported_ops`](Self::supported_ops) when some op only answers
/// [`OpError::unsupported`], so that `ops` lists what really works.
#[async_trait]
pub trait HaystackOps: Send + Sync {
    /// `about`: one row with `haystackVersion`, `tz`, `serverName`,
    /// `serverTime`, `productName`, `productUri`, `productVersion`,
    /// `vendorName`, `vendorUri` and, when known, `serverBootTime`.
    async fn about(&self) -> Result<Grid, OpError> {
        Ok(about_grid(
            &self.server_name(),
            self.timezone(),
            self.boot_time(),
        ))
    }

    /// `ops`: one row `{name, summary}` per [`supported_ops`](Self::supported_ops).
    async fn ops(&self) -> Result<Grid, OpError> {
        Ok(ops_grid(&self.supported_ops()))
    }

    /// `formats`: JSON and Zinc, both read and written.
    async fn formats(&self) -> Result<Grid, OpError> {
        Ok(formats_grid())
    }

    /// `close`: nothing to do at this level (token revocation is the server's
    /// job); answers the empty grid.
    async fn close(&self) -> Result<Grid, OpError> {
        Ok(crate::codec::empty_grid())
    }

    /// `read` by filter or by ids.
    async fn read(&self, request: ReadRequest) -> Result<Grid, OpError>;

    /// `read`, answered as a [`Reply`]: this is the method [`dispatch`]
    /// calls. The default answers [`read`](Self::read)'s grid; a store
    /// holding its entities as `Arc<Dict>` overrides it to answer
    /// [`Reply::Rows`] without copying them.
    async fn read_reply(&self, request: ReadRequest) -> Result<Reply, OpError> {
        self.read(request).await.map(Reply::Grid)
    }

    /// `nav`.
    async fn nav(&self, request: NavRequest) -> Result<Grid, OpError>;

    /// `hisRead`.
    async fn his_read(&self, request: HisReadRequest) -> Result<Grid, OpError>;

    /// `hisWrite`.
    async fn his_write(&self, request: HisWriteRequest) -> Result<Grid, OpError>;

    /// `pointWrite` (read the array or write a level).
    async fn point_write(&self, request: PointWriteRequest) -> Result<Grid, OpError>;

    /// `watchSub`.
    async fn watch_sub(&self, request: WatchSubRequest) -> Result<Grid, OpError>;

    /// `watchUnsub`.
    async fn watch_unsub(&self, request: WatchUnsubRequest) -> Result<Grid, OpError>;

    /// `watchPoll`.
    async fn watch_poll(&self, request: WatchPollRequest) -> Result<Grid, OpError>;

    /// `invokeAction`.
    async fn invoke_action(&self, request: InvokeActionRequest) -> Result<Grid, OpError>;

    /// Pushes: from now on, the changes of watch `watch_id` are also
    /// delivered to `inbox` (a connection's), until the watch closes or the
    /// inbox is dropped. `false` when this implementation pushes nothing (the
    /// default) or the watch is unknown; clients then learn of changes
    /// through `watchPoll` only.
    fn watch_attach(&self, watch_id: &str, inbox: &Arc<WatchInbox>) -> bool {
        let _ = (watch_id, inbox);
        false
    }

    /// The connection that subscribed `watch_id` (and holds `inbox`) ended:
    /// detach the inbox and close the watch, unless another connection's
    /// inbox still listens to it. The default closes the watch with
    /// [`watch_unsub`](Self::watch_unsub).
    async fn watch_release(&self, watch_id: &str, inbox: &Arc<WatchInbox>) {
        let _ = inbox;
        let request = WatchUnsubRequest {
            watch_id: watch_id.to_owned(),
            close: true,
            ids: Vec::new(),
        };
        if let Err(error) = self.watch_unsub(request).await {
            log::debug!(target: targets::STORE, "watch {watch_id} not released: {}", error.message());
        }
    }

    /// The ops listed by `ops`; all 13 by default.
    fn supported_ops(&self) -> Vec<Op> {
        Op::ALL.to_vec()
    }

    /// `serverName` in `about`.
    fn server_name(&self) -> String {
        "hs".to_owned()
    }

    /// `serverBootTime` in `about`; omitted when `None`.
    fn boot_time(&self) -> Option<DateTime> {
        None
    }

    /// The server's default timezone: `tz` in `about`, and the zone
    /// `serverTime` is written in. The machine's own zone by default
    /// ([`local_timezone`]).
    fn timezone(&self) -> Tz {
        local_timezone()
    }
}

/// An op's request as a server received it: the request grid, or a `read`
/// decoded straight from a plain JSON body
/// ([`ReadRequest::from_plain_json`]), which skips building the grid.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum OpRequest {
    /// The request grid.
    Grid(Grid),
    /// A read, already typed.
    Read(ReadRequest),
}

impl OpRequest {
    /// The access running `op` with this request needs: the op's own
    /// ([`Access::of_op`]), except that a `pointWrite` naming neither
    /// `level` nor `val` only reads the priority array.
    pub fn access(&self, op: &str) -> Access {
        match self {
            OpRequest::Grid(grid) if op == Op::PointWrite.as_str() => {
                let writes = grid
                    .columns
                    .iter()
                    .any(|column| column.name == "level" || column.name == "val");
                if writes { Access::Write } else { Access::Read }
            }
            _ => Access::of_op(op),
        }
    }

    /// Whether running `op` with this request is cheap enough to run where
    /// it was received, without a task of its own: a [cheap op](Op::is_cheap),
    /// or a `read` of at most 16 ids, by id list or by a filter that names
    /// them (`id==@x`: lookups, no scan).
    pub fn is_cheap(&self, op: Op) -> bool {
        const MAX_IDS: usize = 16;
        match (op, self) {
            (op, _) if op.is_cheap() => true,
            (Op::Read, OpRequest::Read(ReadRequest::Ids(ids))) => ids.len() <= MAX_IDS,
            (Op::Read, OpRequest::Read(ReadRequest::Filter { filter, .. })) => {
                filter.id_bound().is_some_and(|bound| bound <= MAX_IDS)
            }
            (Op::Read, OpRequest::Grid(grid)) => {
                grid.rows.len() <= MAX_IDS && grid.columns.iter().any(|col| col.name == "id")
            }
            _ => false,
        }
    }

    /// The request grid, if the request is one.
    pub fn as_grid(&self) -> Option<&Grid> {
        match self {
            OpRequest::Grid(grid) => Some(grid),
            OpRequest::Read(_) => None,
        }
    }
}

impl From<Grid> for OpRequest {
    fn from(grid: Grid) -> Self {
        OpRequest::Grid(grid)
    }
}

/// Decodes the request of `op` from a body in `format`: a plain JSON `read`
/// ([`ReadRequest::from_plain_json`]) straight to its typed request (the
/// most common request, and no grid is built), anything else to its
/// request grid. An undecodable body is an error of the codec's kind with
/// the message `Invalid request grid: …`.
pub fn decode_request(op: Op, body: &[u8], format: Format) -> Result<OpRequest, OpError> {
    if let (Op::Read, Format::Json) = (op, format) {
        if let Some(read) = ReadRequest::from_plain_json(body) {
            return Ok(OpRequest::Read(read));
        }
    }
    crate::codec::decode_grid(body, format)
        .map(OpRequest::Grid)
        .map_err(|error| OpError::new(error.kind(), format!("Invalid request grid: {error}")))
}

/// [`dispatch`] for an [`OpRequest`]: a typed read goes straight to
/// [`HaystackOps::read_reply`]. Servers make one only for the `read` op;
/// under another op it is that op's error (unknown op, or bad request).
pub async fn dispatch_request(
    ops: &dyn HaystackOps,
    op: &str,
    request: OpRequest,
) -> Result<Reply, OpError> {
    dispatch_as(ops, op, request, None).await
}

/// [`dispatch_request`] on behalf of `user` (the authenticated principal's
/// name, `None` when anonymous): a `watchSub` carries it as its
/// [`owner`](WatchSubRequest::owner), so that the store can limit watches
/// per user. The servers call this.
pub async fn dispatch_as(
    ops: &dyn HaystackOps,
    op: &str,
    request: OpRequest,
    user: Option<&str>,
) -> Result<Reply, OpError> {
    match request {
        OpRequest::Grid(grid) if user.is_some() && op == Op::WatchSub.as_str() => {
            let mut request = WatchSubRequest::from_grid(&grid)?;
            request.owner = user.map(str::to_owned);
            ops.watch_sub(request).await.map(Reply::Grid)
        }
        OpRequest::Grid(grid) => dispatch(ops, op, grid).await,
        OpRequest::Read(read) => match op.parse::<Op>()? {
            Op::Read => ops.read_reply(read).await,
            _ => Err(OpError::bad_request(format!(
                "{op}: request is a read request"
            ))),
        },
    }
}

/// Run `op` with its request `grid` on `ops`: parse the typed request, call the
/// matching method. Unknown op names are [`UnknownOp`](crate::observe::ErrorKind::UnknownOp)
/// errors with the message `Unknown operation: <op>`; malformed grids are
/// [`BadRequest`](crate::observe::ErrorKind::BadRequest) errors.
pub async fn dispatch(ops: &dyn HaystackOps, op: &str, grid: Grid) -> Result<Reply, OpError> {
    let answer = match op.parse::<Op>()? {
        Op::Read => return ops.read_reply(ReadRequest::from_grid(&grid)?).await,
        Op::About => ops.about().await,
        Op::Ops => ops.ops().await,
        Op::Formats => ops.formats().await,
        Op::Close => ops.close().await,
        Op::Nav => ops.nav(NavRequest::from_grid(&grid)?).await,
        Op::HisRead => ops.his_read(HisReadRequest::from_grid(&grid)?).await,
        Op::HisWrite => ops.his_write(HisWriteRequest::from_grid(&grid)?).await,
        Op::PointWrite => ops.point_write(PointWriteRequest::from_grid(&grid)?).await,
        Op::WatchSub => ops.watch_sub(WatchSubRequest::from_grid(&grid)?).await,
        Op::WatchUnsub => ops.watch_unsub(WatchUnsubRequest::from_grid(&grid)?).await,
        Op::WatchPoll => ops.watch_poll(WatchPollRequest::from_grid(&grid)?).await,
        Op::InvokeAction => {
            ops.invoke_action(InvokeActionRequest::from_grid(&grid)?)
                .await
        }
    };
    answer.map(Reply::Grid)
}

/// The `about` grid for a server called `server_name` whose default
/// timezone is `tz`.
pub(crate) fn about_grid(server_name: &str, tz: Tz, boot_time: Option<DateTime>) -> Grid {
    let mut row = Dict::new();
    row.insert("haystackVersion".into(), Value::make_str("4.0"));
    row.insert("tz".into(), Value::make_str(haystack_tz_name(tz)));
    row.insert("productName".into(), Value::make_str("hs"));
    row.insert(
        "productVersion".into(),
        Value::make_str(env!("CARGO_PKG_VERSION")),
    );
    row.insert(
        "productUri".into(),
        Value::make_uri(env!("CARGO_PKG_REPOSITORY")),
    );
    row.insert("serverName".into(), Value::make_str(server_name));
    row.insert("vendorName".into(), Value::make_str("hs developers"));
    row.insert(
        "vendorUri".into(),
        Value::make_uri(env!("CARGO_PKG_REPOSITORY")),
    );
    let now = chrono::Utc::now().with_timezone(&tz);
    row.insert("serverTime".into(), Value::from(DateTime::from(now)));
    if let Some(boot_time) = boot_time {
        row.insert("serverBootTime".into(), Value::from(boot_time));
    }
    make_grid(Dict::new(), vec![row])
}

/// The machine's timezone: `TZ` when it names a zone, else the system's
/// configured zone, else UTC.
pub fn local_timezone() -> Tz {
    std::env::var("TZ")
        .ok()
        .and_then(|name| name.trim_start_matches(':').parse().ok())
        .or_else(|| iana_time_zone::get_timezone().ok()?.parse().ok())
        .unwrap_or(Tz::UTC)
}

/// A zone's Haystack name: the city part of its IANA name
/// (`America/New_York` is `New_York`), `UTC` for UTC.
pub fn haystack_tz_name(tz: Tz) -> &'static str {
    match tz {
        Tz::UTC | Tz::Etc__UTC | Tz::Etc__UCT | Tz::Etc__Universal | Tz::Etc__Zulu => "UTC",
        tz => tz.name().rsplit('/').next().unwrap_or(tz.name()),
    }
}

/// The `ops` grid listing `ops`.
pub(crate) fn ops_grid(ops: &[Op]) -> Grid {
    let rows = ops
        .iter()
        .map(|op| {
            let mut row = Dict::new();
            row.insert("name".into(), Value::make_str(op.as_str()));
            row.insert("summary".into(), Value::make_str(op.summary()));
            row
        })
        .collect();
    make_grid(Dict::new(), rows)
}

/// The `formats` grid: `application/json` and `text/zinc`, read and written.
pub(crate) fn formats_grid() -> Grid {
    let rows = ["application/json", "text/zinc"]
        .into_iter()
        .map(|mime| {
            let mut row = Dict::new();
            row.insert("mime".into(), Value::make_str(mime));
            row.insert("receive".into(), Value::make_marker());
            row.insert("send".into(), Value::make_marker());
            row
        })
        .collect();
    make_grid(Dict::new(), rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observers_count_the_standard_ops_in_op_order() {
        assert_eq!(
            crate::observe::OBSERVED_OPS[..STANDARD_OPS.len()],
            STANDARD_OPS
        );
    }

    #[test]
    fn haystack_tz_names_are_the_city_part() {
        assert_eq!(haystack_tz_name(Tz::America__New_York), "New_York");
        assert_eq!(
            haystack_tz_name(Tz::America__Argentina__Buenos_Aires),
            "Buenos_Aires"
        );
        assert_eq!(haystack_tz_name(Tz::Etc__UTC), "UTC");
        assert_eq!(haystack_tz_name(Tz::UTC), "UTC");
    }
}
