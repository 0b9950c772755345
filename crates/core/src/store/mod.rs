//! [`MemoryStore`]: the embedded, in-memory [`HaystackOps`] implementation.
//!
//! Entities are Haystack dicts with an `id` Ref. Filter reads are planned
//! over indexes kept up to date on every write: per tag, the entities that
//! have it, and for every Ref, Str, Number, Bool, Symbol, Uri, Date, Time or
//! DateTime value, the entities whose tag equals it, and the tag's Numbers
//! in order. An `and` intersects its terms' postings from the shortest and
//! subtracts its missing tags, an `or` unions; markers, missing tags,
//! equalities (`id==@x` is one lookup), Number orderings and `->` paths
//! (planned backwards from their targets) are answered from the indexes, and
//! only the candidates of the other terms (`!=`, other orderings, `^defs`)
//! are evaluated. Rows come in the order the entities were first loaded,
//! with or without the indexes. `->` paths follow Refs through the id map. History is kept per point, sorted by time; writable points
//! have a 17-level priority array; watches track changes for `watchPoll` and
//! deliver them to the [`WatchInbox`]es of the connections that push them
//! ([`HaystackOps::watch_attach`]), under the lock that made them, so that
//! every inbox sees the changes of an entity in order. Watches are limited in
//! total and per user ([`MemoryStore::set_watch_limits`]) and expire when
//! their lease ends without a poll or renewal.
//!
//! Concurrency: one `parking_lot::RwLock` guards the data; no lock is held
//! across an `.await` (every op body is synchronous) or while an action
//! handler runs.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use hs_core::ops::{HaystackOps, ReadRequest};
//! use hs_core::store::MemoryStore;
//! use libhaystack::val::{Dict, Ref, Value};
//!
//! let store = MemoryStore::new();
//! let mut point = Dict::new();
//! point.insert("id".into(), Value::from(Ref::from("p1")));
//! point.insert("point".into(), Value::make_marker());
//! point.insert("temp".into(), Value::make_marker());
//! store.update_entity(point).unwrap();
//!
//! let grid = store.read(ReadRequest::filter("point and temp", None).unwrap()).await.unwrap();
//! assert_eq!(grid.rows.len(), 1);
//! # });
//! ```

mod eval;
mod his;
mod index;
mod load;
mod priority;
mod query;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::fmt::Write as _;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use chrono_tz::Tz;
use libhaystack::filter::Filter;
use libhaystack::units::get_unit_or_default;
use libhaystack::val::{Column, DateTime, Dict, Grid, Number, Ref, Value};
use parking_lot::{Mutex, RwLock};

use crate::observe::ErrorKind;
use crate::ops::UNKNOWN_SHAPE;
use crate::ops::{
    EncodedRows, HaystackOps, HisReadRequest, HisWriteRequest, InvokeActionRequest, NavRequest,
    OpError, PointWriteRequest, ReadRequest, Reply, WatchInbox, WatchPollRequest, WatchSubRequest,
    WatchUnsubRequest, empty_grid, kind_name, make_grid,
};

pub use crate::clock::{Clock, ManualClock, SystemClock};
pub use load::LoadError;

pub(crate) use his::Sample;
use his::Series;
use index::TagIndex;
use priority::{LevelWrite, PriorityArray};
use query::Node;

/// The lease of a watch that asked for none.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(300);
/// The shortest lease granted.
pub const MIN_LEASE: Duration = Duration::from_secs(1);
/// The longest lease granted.
pub const MAX_LEASE: Duration = Duration::from_secs(3_600);
/// Default of the most watches open at once (all users together).
pub const DEFAULT_MAX_WATCHES: usize = 10_000;
/// Default of the most watches one user holds at once; anonymous clients
/// share one allowance.
pub const DEFAULT_MAX_WATCHES_PER_USER: usize = 1_000;

/// An action handler: receives the target entity and the arguments, answers a grid.
///
/// Under a tokio runtime a handler runs on the blocking thread pool, so it may
/// block (device I/O, a slow call) without stalling the server's workers.
pub type ActionHandler = Arc<dyn Fn(&Dict, &Dict) -> Result<Grid, OpError> + Send + Sync>;

/// The in-memory Haystack database. See the [module docs](self).
pub struct MemoryStore {
    state: RwLock<State>,
    actions: RwLock<HashMap<String, ActionHandler>>,
    clock: Arc<dyn Clock>,
    max_watches: AtomicUsize,
    max_watches_per_user: AtomicUsize,
    boot_time: DateTime,
    server_name: String,
    watch_seq: AtomicU64,
    watch_id_keys: RandomState,
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.read();
        f.debug_struct("MemoryStore")
            .field("entities", &state.entities.len())
            .field("watches", &state.watches.len())
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

/// Most distinct sets of tag names the store gives an id (see
/// `State::shape_of`).
const MAX_SHAPES: usize = 1 << 16;

#[derive(Debug, Default)]
struct State {
    /// Shared with the replies of reads ([`Reply::Encoded`]): a read copies
    /// no entity; a change replaces the `Arc`.
    entities: Vec<Arc<Dict>>,
    /// Each entity's JSON row text and the id of its tag names (its shape),
    /// written by the first read that answers it and dropped when the
    /// entity changes.
    json: Vec<OnceLock<(Arc<str>, u32)>>,
    /// Shape ids by tag names (`id` first, comma-separated): rows of one
    /// shape add the same columns to an answer.
    shapes: Mutex<HashMap<String, u32>>,
    /// The row of an unknown id in a read by ids (a row of nulls).
    empty_row: Arc<Dict>,
    by_id: HashMap<String, usize>,
    index: TagIndex,
    history: HashMap<usize, Series>,
    writes: HashMap<usize, PriorityArray>,
    next_write_expiry: Option<chrono::DateTime<Utc>>,
    watches: HashMap<String, Watch>,
    watched_by: HashMap<usize, BTreeSet<String>>,
}

#[derive(Debug)]
struct Watch {
    lease: Duration,
    expires: chrono::DateTime<Utc>,
    members: BTreeSet<usize>,
    dirty: HashSet<usize>,
    /// The user who opened it (`None`: anonymous), for the per-user limit.
    owner: Option<String>,
    /// Inboxes of the connections that push its changes.
    inboxes: Vec<Weak<WatchInbox>>,
}

impl MemoryStore {
    /// An empty store on the system clock.
    pub fn new() -> Self {
        Self::with_clock(Arc::new(SystemClock))
    }

    /// An empty store reading the time from `clock`.
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        Self {
            state: RwLock::new(State::default()),
            actions: RwLock::new(HashMap::new()),
            max_watches: AtomicUsize::new(DEFAULT_MAX_WATCHES),
            max_watches_per_user: AtomicUsize::new(DEFAULT_MAX_WATCHES_PER_USER),
            boot_time: DateTime::from(clock.now_utc()),
            clock,
            server_name: "hs".to_owned(),
            watch_seq: AtomicU64::new(0),
            watch_id_keys: RandomState::new(),
        }
    }

    /// Set the `serverName` reported by `about`.
    pub fn with_server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = name.into();
        self
    }

    /// Limit the watches open at once: `total` for all users together,
    /// `per_user` for each user (anonymous clients share one allowance).
    /// Past either, `watchSub` creating a watch answers an `overloaded`
    /// error; watches already open stay. Defaults [`DEFAULT_MAX_WATCHES`]
    /// and [`DEFAULT_MAX_WATCHES_PER_USER`].
    pub fn set_watch_limits(&self, total: usize, per_user: usize) {
        self.max_watches.store(total, Ordering::Relaxed);
        self.max_watches_per_user.store(per_user, Ordering::Relaxed);
    }

    /// Number of entities.
    pub fn len(&self) -> usize {
        self.state.read().entities.len()
    }

    /// True when the store holds no entity.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A copy of the entity with this id.
    pub fn entity(&self, id: &str) -> Option<Dict> {
        self.state.read().entity(id).cloned()
    }

    /// Insert an entity, or replace the one with the same `id`. Watches that
    /// contain it see it as changed (and their inboxes receive it).
    pub fn update_entity(&self, entity: Dict) -> Result<(), OpError> {
        self.update_entities(vec![entity]).map(|_| ())
    }

    /// Insert or replace several entities under one lock; returns how many.
    pub fn update_entities(&self, entities: Vec<Dict>) -> Result<usize, OpError> {
        let mut state = self.state.write();
        for (index, entity) in entities.iter().enumerate() {
            entity_id(entity)
                .ok_or_else(|| OpError::bad_request(format!("entity {index} has no id Ref")))?;
        }
        let count = entities.len();
        let mut changed = Vec::with_capacity(count);
        for entity in entities {
            state.upsert(entity, &mut changed);
        }
        state.notify_watches(&changed);
        Ok(count)
    }

    /// Set one tag of an entity (`Value::Null` removes it).
    pub fn set_tag(&self, id: &str, name: &str, value: Value) -> Result<(), OpError> {
        if name == "id" {
            return Err(OpError::bad_request("the id tag cannot be changed"));
        }
        let mut state = self.state.write();
        let slot = state
            .slot(id)
            .ok_or_else(|| OpError::not_found(format!("Unknown entity: @{id}")))?;
        let mut entity = Dict::clone(&state.entities[slot]);
        if value.is_null() {
            entity.remove(name);
        } else {
            entity.insert(name.to_owned(), value);
        }
        let mut changed = Vec::new();
        state.replace(slot, entity, &mut changed);
        state.notify_watches(&changed);
        Ok(())
    }

    /// Every entity `filter` matches (at most `limit`), found by testing each
    /// one without the indexes: the baseline that indexed reads are tested
    /// and measured against (feature `test-util`).
    #[cfg(feature = "test-util")]
    #[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
    pub fn read_scan(&self, filter: &Filter, limit: Option<usize>) -> Vec<Arc<Dict>> {
        let state = self.state.read();
        state
            .scan(filter, limit)
            .into_iter()
            .map(|slot| Arc::clone(&state.entities[slot]))
            .collect()
    }

    /// Register (or replace) the handler of action `name` for `invokeAction`.
    /// The handler may block: see [`ActionHandler`].
    pub fn register_action<F>(&self, name: impl Into<String>, handler: F)
    where
        F: Fn(&Dict, &Dict) -> Result<Grid, OpError> + Send + Sync + 'static,
    {
        self.actions.write().insert(name.into(), Arc::new(handler));
    }

    /// Number of live (unexpired) watches.
    pub fn watch_count(&self) -> usize {
        let now = self.clock.now_utc();
        let mut state = self.state.write();
        state.sweep_watches(now);
        state.watches.len()
    }

    /// Number of history samples stored for a point.
    pub fn history_len(&self, id: &str) -> usize {
        let state = self.state.read();
        state
            .slot(id)
            .and_then(|slot| state.history.get(&slot))
            .map_or(0, Series::len)
    }

    /// Replace a point's whole history with `samples` (any order). Used by
    /// loaders and the demo; does not touch `curVal` nor notify watches.
    pub fn set_history(&self, id: &str, samples: Vec<(DateTime, Value)>) -> Result<(), OpError> {
        let samples = samples
            .into_iter()
            .map(|(ts, val)| Sample {
                ts: his::millis(&ts),
                val,
            })
            .collect();
        self.set_history_millis(id, samples)
    }

    pub(crate) fn set_history_millis(&self, id: &str, samples: Vec<Sample>) -> Result<(), OpError> {
        let mut state = self.state.write();
        let slot = state
            .slot(id)
            .ok_or_else(|| OpError::not_found(format!("Unknown point: @{id}")))?;
        state.history.insert(slot, Series::from_unsorted(samples));
        Ok(())
    }

    fn new_watch_id(&self, state: &State) -> String {
        // Up to 16 tries; a 32-bit collision among live watches is rare.
        let mut id = String::new();
        for _ in 0..16 {
            let seq = self.watch_seq.fetch_add(1, Ordering::Relaxed);
            let bits = self.watch_id_keys.hash_one(seq) as u32;
            id = format!("w-{bits:08x}");
            if !state.watches.contains_key(&id) {
                break;
            }
        }
        id
    }

    /// Release priority-array levels whose duration lapsed (lazily, on access).
    fn expire_writes(&self) {
        // No timed write (the rule): no clock read either.
        let Some(next_expiry) = self.state.read().next_write_expiry else {
            return;
        };
        let now = self.clock.now_utc();
        if next_expiry > now {
            return;
        }
        let mut state = self.state.write();
        let due: Vec<usize> = state
            .writes
            .iter_mut()
            .filter_map(|(slot, array)| array.expire(now).then_some(*slot))
            .collect();
        let mut changed = Vec::new();
        for slot in due {
            state.apply_priority(slot, &mut changed);
        }
        state.next_write_expiry = state
            .writes
            .values()
            .filter_map(PriorityArray::next_expiry)
            .min();
        state.notify_watches(&changed);
    }
}

impl State {
    fn slot(&self, id: &str) -> Option<usize> {
        self.by_id.get(id).copied()
    }

    fn entity(&self, id: &str) -> Option<&Dict> {
        self.slot(id).map(|slot| &*self.entities[slot])
    }

    fn upsert(&mut self, entity: Dict, changed: &mut Vec<usize>) {
        let Some(id) = entity_id(&entity).map(|id| id.value().to_owned()) else {
            return;
        };
        match self.slot(&id) {
            Some(slot) => self.replace(slot, entity, changed),
            None => {
                let slot = self.entities.len();
                self.entities.push(Arc::new(entity));
                self.json.push(OnceLock::new());
                self.index.add(slot_u32(slot), &self.entities);
                self.by_id.insert(id, slot);
            }
        }
    }

    fn replace(&mut self, slot: usize, entity: Dict, changed: &mut Vec<usize>) {
        if *self.entities[slot] != entity {
            let old = std::mem::replace(&mut self.entities[slot], Arc::new(entity));
            self.json[slot] = OnceLock::new();
            self.index.update(slot_u32(slot), &old, &self.entities);
            changed.push(slot);
        }
    }

    /// Re-derive `curVal` / `writeVal` / `writeLevel` from the priority array.
    fn apply_priority(&mut self, slot: usize, changed: &mut Vec<usize>) {
        let Some(array) = self.writes.get(&slot) else {
            return;
        };
        let mut entity = Dict::clone(&self.entities[slot]);
        array.apply(&mut entity);
        self.replace(slot, entity, changed);
    }

    /// The point's timezone: its `tz`, else its site's, else UTC.
    fn tz(&self, entity: &Dict) -> Tz {
        let own = entity.get("tz");
        let site = || {
            let Some(Value::Ref(site)) = entity.get("siteRef") else {
                return None;
            };
            self.entity(site.value()).and_then(|site| site.get("tz"))
        };
        match own.or_else(site) {
            Some(Value::Str(name)) => {
                libhaystack::timezone::find_timezone(name.as_str()).unwrap_or(chrono_tz::UTC)
            }
            _ => chrono_tz::UTC,
        }
    }

    /// The slots of the entities `filter` matches, in slot order, at most `limit`.
    fn query(&self, filter: &Filter, limit: Option<usize>) -> Vec<usize> {
        let limit = limit.unwrap_or(usize::MAX);
        let query = Node::compile(filter);
        let plan = self.index.plan(&query, &self.entities);
        log::debug!(
            target: "hs::store",
            "read {filter}: {}",
            self.index
                .explain(&query, &self.entities)
                .lines()
                .map(str::trim)
                .collect::<Vec<_>>()
                .join("; ")
        );
        let candidates = plan.slots(self.entities.len());
        if plan.exact {
            return candidates.take(limit).collect();
        }
        let lookup = |id: &str| self.entity(id);
        candidates
            .filter(|slot| query.matches(&self.entities[*slot], &lookup))
            .take(limit)
            .collect()
    }

    /// The JSON row text and shape of `entities[slot]`, written once per
    /// version.
    fn json_row(&self, slot: usize) -> (Arc<str>, u32) {
        let (text, shape) = self.json[slot].get_or_init(|| {
            let entity = &self.entities[slot];
            (
                Arc::from(crate::codec::json_row(entity)),
                self.shape_of(entity),
            )
        });
        (Arc::clone(text), *shape)
    }

    /// The id of `entity`'s tag names, in the order an answer's columns
    /// take them; unknown once [`MAX_SHAPES`] are known (tag names come
    /// from clients, so their sets are not bounded).
    fn shape_of(&self, entity: &Dict) -> u32 {
        let mut key = String::new();
        for name in crate::ops::column_names(std::slice::from_ref(entity)) {
            // Length-prefixed: any character may appear in a tag name.
            let _ = write!(key, "{}:{name}", name.len());
        }
        let mut shapes = self.shapes.lock();
        match shapes.get(&key) {
            Some(shape) => *shape,
            None if shapes.len() >= MAX_SHAPES => UNKNOWN_SHAPE,
            None => {
                let shape = u32::try_from(shapes.len()).unwrap_or(UNKNOWN_SHAPE);
                shapes.insert(key, shape);
                shape
            }
        }
    }

    /// How [`query`](Self::query) plans `filter`: one line per part, each
    /// with what answers it and its candidate count.
    fn explain(&self, filter: &Filter) -> String {
        self.index.explain(&Node::compile(filter), &self.entities)
    }

    /// As [`query`](Self::query), by testing every entity (no index): the
    /// reference the indexed reads are checked against.
    #[cfg(any(test, feature = "test-util"))]
    fn scan(&self, filter: &Filter, limit: Option<usize>) -> Vec<usize> {
        let query = Node::compile(filter);
        let lookup = |id: &str| self.entity(id);
        (0..self.entities.len())
            .filter(|slot| query.matches(&self.entities[*slot], &lookup))
            .take(limit.unwrap_or(usize::MAX))
            .collect()
    }

    fn sweep_watches(&mut self, now: chrono::DateTime<Utc>) {
        let expired: Vec<String> = self
            .watches
            .iter()
            .filter(|(_, watch)| watch.expires <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            log::debug!(target: "hs::store", "watch {id} expired");
            self.remove_watch(&id);
        }
    }

    fn remove_watch(&mut self, id: &str) {
        if let Some(watch) = self.watches.remove(id) {
            for slot in watch.members {
                self.unlink(slot, id);
            }
        }
    }

    fn unlink(&mut self, slot: usize, watch_id: &str) {
        if let Some(watches) = self.watched_by.get_mut(&slot) {
            watches.remove(watch_id);
            if watches.is_empty() {
                self.watched_by.remove(&slot);
            }
        }
    }

    fn live_watch(&mut self, id: &str, now: chrono::DateTime<Utc>) -> Result<&mut Watch, OpError> {
        self.sweep_watches(now);
        self.watches
            .get_mut(id)
            .ok_or_else(|| OpError::not_found(format!("Unknown watch: {id}")))
    }

    /// Mark `changed` entities dirty in their watches and deliver their new
    /// state to the watches' inboxes. Called under the write lock that made
    /// the change, so deliveries of one entity arrive in order.
    fn notify_watches(&mut self, changed: &[usize]) {
        let mut per_watch: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for slot in changed {
            let Some(watch_ids) = self.watched_by.get(slot) else {
                continue;
            };
            for watch_id in watch_ids {
                if let Some(watch) = self.watches.get_mut(watch_id) {
                    watch.dirty.insert(*slot);
                    if !watch.inboxes.is_empty() {
                        per_watch.entry(watch_id).or_default().push(*slot);
                    }
                }
            }
        }
        for (watch_id, slots) in per_watch {
            let Some(watch) = self.watches.get_mut(watch_id) else {
                continue;
            };
            watch.inboxes.retain(|inbox| {
                let Some(inbox) = inbox.upgrade() else {
                    return false;
                };
                inbox.deliver(
                    watch_id,
                    slots.iter().map(|slot| Arc::clone(&self.entities[*slot])),
                );
                true
            });
        }
    }

    /// Refuses a new watch for `owner` past the total or per-user limit.
    fn admit_watch(
        &self,
        owner: Option<&str>,
        max_total: usize,
        max_per_user: usize,
    ) -> Result<(), OpError> {
        if self.watches.len() >= max_total {
            log::warn!(target: "hs::store", "watchSub refused: {max_total} watches open, the server's limit");
            return Err(OpError::new(
                ErrorKind::Overloaded,
                format!(
                    "watchSub refused: the server holds its limit of {max_total} watches (hs serve --max-watches); close unused watches with watchUnsub"
                ),
            ));
        }
        let held = self
            .watches
            .values()
            .filter(|watch| watch.owner.as_deref() == owner)
            .count();
        if held >= max_per_user {
            let who = owner.map_or_else(
                || "anonymous clients".to_owned(),
                |user| format!("user {user}"),
            );
            log::warn!(target: "hs::store", "watchSub refused: {who} hold {held} watches, the limit per user");
            return Err(OpError::new(
                ErrorKind::Overloaded,
                format!(
                    "watchSub refused: {who} already hold {held} watches, the limit per user (hs serve --max-watches-per-user); close unused watches with watchUnsub"
                ),
            ));
        }
        Ok(())
    }
}

#[async_trait]
impl HaystackOps for MemoryStore {
    async fn read(&self, request: ReadRequest) -> Result<Grid, OpError> {
        self.read_reply(request).await.map(Reply::into_grid)
    }

    /// Answers the store's own entities, shared: no copy.
    async fn read_reply(&self, request: ReadRequest) -> Result<Reply, OpError> {
        self.expire_writes();
        let state = self.state.read();
        let slots: Vec<Option<usize>> = match request {
            ReadRequest::Filter {
                filter,
                limit,
                explain,
            } => {
                let slots = state.query(filter.filter(), limit);
                if explain {
                    let mut meta = Dict::new();
                    let plan = state.explain(filter.filter());
                    meta.insert(ReadRequest::EXPLAIN.to_owned(), Value::make_str(&plan));
                    let rows = slots
                        .into_iter()
                        .map(|slot| Dict::clone(&state.entities[slot]))
                        .collect();
                    return Ok(Reply::Grid(make_grid(meta, rows)));
                }
                slots.into_iter().map(Some).collect()
            }
            ReadRequest::Ids(ids) => ids.iter().map(|id| state.slot(id.value())).collect(),
        };
        let mut rows = EncodedRows::with_capacity(slots.len());
        for slot in slots {
            match slot {
                Some(slot) => {
                    let (text, shape) = state.json_row(slot);
                    rows.push_shaped(Arc::clone(&state.entities[slot]), text, shape);
                }
                None => rows.push(Arc::clone(&state.empty_row), Arc::from("{}")),
            }
        }
        Ok(Reply::Encoded(rows))
    }

    async fn nav(&self, request: NavRequest) -> Result<Grid, OpError> {
        let state = self.state.read();
        let children = |marker: &str, parent_tag: &str, parent: Option<&str>| -> Vec<Dict> {
            state
                .index
                .postings(marker)
                .iter()
                .map(|slot| &state.entities[*slot as usize])
                .filter(|entity| match parent {
                    None => true,
                    Some(parent) => matches!(
                        entity.get(parent_tag),
                        Some(Value::Ref(id)) if id.value() == parent
                    ),
                })
                .map(|entity| {
                    let mut row = Dict::clone(entity);
                    if marker != "point" {
                        if let Some(id) = entity_id(entity) {
                            row.insert("navId".into(), Value::make_str(id.value()));
                        }
                    }
                    row
                })
                .collect()
        };
        let rows = match request.nav_id.as_deref() {
            None => children("site", "", None),
            Some(id) => {
                let entity = state
                    .entity(id)
                    .ok_or_else(|| OpError::not_found(format!("Unknown navId: {id}")))?;
                if entity.get("site").is_some_and(Value::is_marker) {
                    children("equip", "siteRef", Some(id))
                } else if entity.get("equip").is_some_and(Value::is_marker) {
                    children("point", "equipRef", Some(id))
                } else {
                    Vec::new()
                }
            }
        };
        Ok(make_grid(Dict::new(), rows))
    }

    async fn his_read(&self, request: HisReadRequest) -> Result<Grid, OpError> {
        let now = self.clock.now_utc();
        let state = self.state.read();
        let mut points = Vec::with_capacity(request.ids.len());
        for id in &request.ids {
            let slot = state
                .slot(id.value())
                .ok_or_else(|| OpError::not_found(format!("Unknown point: @{}", id.value())))?;
            let entity = &state.entities[slot];
            if !entity.get("his").is_some_and(Value::is_marker) {
                return Err(OpError::bad_request(format!(
                    "hisRead: @{} is not a history point (no his marker)",
                    id.value()
                )));
            }
            points.push((slot, entity));
        }
        let Some((first_slot, first)) = points.first().copied() else {
            return Err(OpError::bad_request("hisRead: no id"));
        };
        let tz = state.tz(first);
        let (start, end) = request.range.resolve(tz, now);
        let (start_ms, end_ms) = (start.timestamp_millis(), end.timestamp_millis());
        let mut meta = Dict::new();
        meta.insert("hisStart".into(), Value::from(DateTime::from(start)));
        meta.insert("hisEnd".into(), Value::from(DateTime::from(end)));
        let empty = Series::default();
        let series = |slot: usize| state.history.get(&slot).unwrap_or(&empty);

        if points.len() == 1 {
            meta.insert("id".into(), first.get("id").cloned().unwrap_or_default());
            let rows = series(first_slot)
                .range(start_ms, end_ms)
                .iter()
                .map(|sample| his_row(sample, tz, "val"))
                .collect();
            let mut grid = make_grid(meta, rows);
            grid.columns = vec![column("ts", None), column("val", None)];
            return Ok(grid);
        }

        // Batch read: one `ts` column and one value column per point.
        let mut table: BTreeMap<i64, Vec<Option<Value>>> = BTreeMap::new();
        for (position, (slot, _)) in points.iter().enumerate() {
            for sample in series(*slot).range(start_ms, end_ms) {
                table
                    .entry(sample.ts)
                    .or_insert_with(|| vec![None; points.len()])[position] =
                    Some(sample.val.clone());
            }
        }
        let names: Vec<String> = (0..points.len()).map(|n| format!("v{n}")).collect();
        let mut columns = vec![column("ts", None)];
        for (name, (_, entity)) in names.iter().zip(&points) {
            let mut column_meta = Dict::new();
            column_meta.insert("id".into(), entity.get("id").cloned().unwrap_or_default());
            columns.push(column(name, Some(column_meta)));
        }
        let rows = table
            .into_iter()
            .map(|(ts, values)| {
                let mut row = Dict::new();
                row.insert("ts".into(), Value::from(his::datetime(ts, tz)));
                for (name, value) in names.iter().zip(values) {
                    if let Some(value) = value {
                        row.insert(name.clone(), value);
                    }
                }
                row
            })
            .collect();
        Ok(Grid {
            meta: Some(meta),
            columns,
            rows,
            ..Grid::default()
        })
    }

    async fn his_write(&self, request: HisWriteRequest) -> Result<Grid, OpError> {
        let mut state = self.state.write();
        let mut slots = Vec::with_capacity(request.series.len());
        for series in &request.series {
            let id = series.id.value();
            let slot = state
                .slot(id)
                .ok_or_else(|| OpError::not_found(format!("Unknown point: @{id}")))?;
            if !state.entities[slot]
                .get("his")
                .is_some_and(Value::is_marker)
            {
                return Err(OpError::bad_request(format!(
                    "hisWrite: @{id} is not a history point (no his marker)"
                )));
            }
            slots.push(slot);
        }
        let mut changed = Vec::new();
        for (series, slot) in request.series.into_iter().zip(slots) {
            let samples: Vec<Sample> = series
                .items
                .into_iter()
                .map(|item| Sample {
                    ts: his::millis(&item.ts),
                    val: item.val,
                })
                .collect();
            let stored = state.history.entry(slot).or_default();
            stored.merge(samples);
            let Some(last) = stored.last().cloned() else {
                continue;
            };
            // curVal follows the newest sample unless a priority-array write rules it.
            let entity = &state.entities[slot];
            if entity.contains_key("writeLevel") {
                continue;
            }
            let newer = match entity.get("curTs") {
                Some(Value::DateTime(current)) => last.ts > his::millis(current),
                _ => true,
            };
            if newer {
                let tz = state.tz(entity);
                let mut entity = Dict::clone(entity);
                entity.insert("curVal".into(), last.val);
                entity.insert("curTs".into(), Value::from(his::datetime(last.ts, tz)));
                state.replace(slot, entity, &mut changed);
            }
        }
        state.notify_watches(&changed);
        Ok(empty_grid())
    }

    async fn point_write(&self, request: PointWriteRequest) -> Result<Grid, OpError> {
        self.expire_writes();
        let now = self.clock.now_utc();
        let id = match &request {
            PointWriteRequest::ReadArray { id } | PointWriteRequest::Write { id, .. } => {
                id.value().to_owned()
            }
        };
        let mut state = self.state.write();
        let slot = state
            .slot(&id)
            .ok_or_else(|| OpError::not_found(format!("Unknown point: @{id}")))?;
        let entity = &state.entities[slot];
        if !entity.get("writable").is_some_and(Value::is_marker) {
            return Err(OpError::bad_request(format!(
                "pointWrite: @{id} is not writable"
            )));
        }
        match request {
            PointWriteRequest::ReadArray { .. } => {
                let rows = state.writes.get(&slot).cloned().unwrap_or_default().rows();
                let mut grid = make_grid(Dict::new(), rows);
                grid.columns = ["level", "levelDis", "val", "who"]
                    .into_iter()
                    .map(|name| column(name, None))
                    .chain(grid.columns.iter().filter(|c| c.name == "expires").cloned())
                    .collect();
                Ok(grid)
            }
            PointWriteRequest::Write {
                level,
                val,
                who,
                duration,
                ..
            } => {
                if let (Some(val), Some(Value::Str(kind))) = (&val, entity.get("kind")) {
                    let expected = kind.as_str();
                    let actual = kind_name(val);
                    if expected != actual {
                        return Err(OpError::bad_request(format!(
                            "pointWrite: @{id} is a {expected} point, val is a {actual}"
                        )));
                    }
                }
                let expires = duration
                    .filter(|duration| !duration.is_zero())
                    .map(|duration| {
                        now + chrono::TimeDelta::from_std(duration)
                            .unwrap_or(chrono::TimeDelta::MAX)
                    });
                let write = val.map(|val| LevelWrite { val, who, expires });
                let array = state.writes.entry(slot).or_default();
                array.set(level, write);
                let next = array.next_expiry();
                state.next_write_expiry = match (state.next_write_expiry, next) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                let mut changed = Vec::new();
                state.apply_priority(slot, &mut changed);
                state.notify_watches(&changed);
                Ok(empty_grid())
            }
        }
    }

    async fn watch_sub(&self, request: WatchSubRequest) -> Result<Grid, OpError> {
        self.expire_writes();
        let now = self.clock.now_utc();
        let mut state = self.state.write();
        let watch_id = match request.watch_id {
            Some(id) => {
                let watch = state.live_watch(&id, now)?;
                if let Some(lease) = request.lease {
                    watch.lease = clamp_lease(lease);
                }
                id
            }
            None => {
                state.sweep_watches(now);
                state.admit_watch(
                    request.owner.as_deref(),
                    self.max_watches.load(Ordering::Relaxed),
                    self.max_watches_per_user.load(Ordering::Relaxed),
                )?;
                let id = self.new_watch_id(&state);
                let lease = clamp_lease(request.lease.unwrap_or(DEFAULT_LEASE));
                log::debug!(
                    target: "hs::store",
                    "watch {id} opened ({}), lease {}s",
                    request.watch_dis.as_deref().unwrap_or(""),
                    lease.as_secs()
                );
                state.watches.insert(
                    id.clone(),
                    Watch {
                        lease,
                        expires: now,
                        members: BTreeSet::new(),
                        dirty: HashSet::new(),
                        owner: request.owner.clone(),
                        inboxes: Vec::new(),
                    },
                );
                id
            }
        };
        let slots: Vec<Option<usize>> = request
            .ids
            .iter()
            .map(|id| state.slot(id.value()))
            .collect();
        for slot in slots.iter().flatten() {
            state
                .watched_by
                .entry(*slot)
                .or_default()
                .insert(watch_id.clone());
        }
        let Some(watch) = state.watches.get_mut(&watch_id) else {
            return Err(OpError::server_error("watch vanished while subscribing"));
        };
        watch.members.extend(slots.iter().flatten());
        watch.expires = lease_end(now, watch.lease);
        let lease = watch.lease;
        let rows = slots
            .iter()
            .map(|slot| {
                slot.map(|slot| Dict::clone(&state.entities[slot]))
                    .unwrap_or_default()
            })
            .collect();
        Ok(make_grid(watch_meta(&watch_id, Some(lease)), rows))
    }

    async fn watch_unsub(&self, request: WatchUnsubRequest) -> Result<Grid, OpError> {
        let now = self.clock.now_utc();
        let mut state = self.state.write();
        state.live_watch(&request.watch_id, now)?;
        if request.close {
            state.remove_watch(&request.watch_id);
            return Ok(empty_grid());
        }
        let slots: Vec<usize> = request
            .ids
            .iter()
            .filter_map(|id| state.slot(id.value()))
            .collect();
        for slot in slots {
            state.unlink(slot, &request.watch_id);
            if let Some(watch) = state.watches.get_mut(&request.watch_id) {
                watch.members.remove(&slot);
                watch.dirty.remove(&slot);
            }
        }
        Ok(empty_grid())
    }

    async fn watch_poll(&self, request: WatchPollRequest) -> Result<Grid, OpError> {
        self.expire_writes();
        let now = self.clock.now_utc();
        let mut state = self.state.write();
        let watch = state.live_watch(&request.watch_id, now)?;
        watch.expires = lease_end(now, watch.lease);
        let dirty = std::mem::take(&mut watch.dirty);
        let slots: Vec<usize> = if request.refresh {
            watch.members.iter().copied().collect()
        } else {
            let mut slots: Vec<usize> = dirty.into_iter().collect();
            slots.sort_unstable();
            slots
        };
        let lease = watch.lease;
        let rows = slots
            .into_iter()
            .map(|slot| Dict::clone(&state.entities[slot]))
            .collect();
        Ok(make_grid(watch_meta(&request.watch_id, Some(lease)), rows))
    }

    async fn invoke_action(&self, request: InvokeActionRequest) -> Result<Grid, OpError> {
        let handler = self
            .actions
            .read()
            .get(&request.action)
            .cloned()
            .ok_or_else(|| OpError::not_found(format!("Unknown action: {}", request.action)))?;
        let target = self.entity(request.id.value()).ok_or_else(|| {
            OpError::not_found(format!("Unknown entity: @{}", request.id.value()))
        })?;
        // No lock is held while the handler runs: it may call back into the store.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return handler(&target, &request.args);
        };
        let args = request.args;
        runtime
            .spawn_blocking(move || handler(&target, &args))
            .await
            .unwrap_or_else(|join_error| {
                log::error!(target: "hs::store", "action {} failed: {join_error}", request.action);
                Err(OpError::server_error(format!(
                    "action {} failed",
                    request.action
                )))
            })
    }

    fn watch_attach(&self, watch_id: &str, inbox: &Arc<WatchInbox>) -> bool {
        let mut state = self.state.write();
        let Some(watch) = state.watches.get_mut(watch_id) else {
            return false;
        };
        let weak = Arc::downgrade(inbox);
        watch.inboxes.retain(|held| held.strong_count() > 0);
        if !watch.inboxes.iter().any(|held| held.ptr_eq(&weak)) {
            watch.inboxes.push(weak);
        }
        true
    }

    async fn watch_release(&self, watch_id: &str, inbox: &Arc<WatchInbox>) {
        let mut state = self.state.write();
        let Some(watch) = state.watches.get_mut(watch_id) else {
            return;
        };
        let weak = Arc::downgrade(inbox);
        watch
            .inboxes
            .retain(|held| held.strong_count() > 0 && !held.ptr_eq(&weak));
        // Another connection resumed the watch: it stays for that one.
        if watch.inboxes.is_empty() {
            log::debug!(target: "hs::store", "watch {watch_id} released: its connection ended");
            state.remove_watch(watch_id);
        }
    }

    fn server_name(&self) -> String {
        self.server_name.clone()
    }

    fn boot_time(&self) -> Option<DateTime> {
        Some(self.boot_time)
    }
}

fn entity_id(entity: &Dict) -> Option<&Ref> {
    match entity.get("id") {
        Some(Value::Ref(id)) => Some(id),
        _ => None,
    }
}

fn slot_u32(slot: usize) -> u32 {
    u32::try_from(slot).unwrap_or(u32::MAX)
}

fn clamp_lease(lease: Duration) -> Duration {
    lease.clamp(MIN_LEASE, MAX_LEASE)
}

fn lease_end(now: chrono::DateTime<Utc>, lease: Duration) -> chrono::DateTime<Utc> {
    now + chrono::TimeDelta::from_std(lease).unwrap_or(chrono::TimeDelta::MAX)
}

fn watch_meta(watch_id: &str, lease: Option<Duration>) -> Dict {
    let mut meta = Dict::new();
    meta.insert("watchId".into(), Value::make_str(watch_id));
    if let Some(lease) = lease {
        meta.insert(
            "lease".into(),
            Value::from(Number::make_with_unit(
                lease.as_secs_f64(),
                get_unit_or_default("s"),
            )),
        );
    }
    meta
}

fn column(name: &str, meta: Option<Dict>) -> Column {
    Column {
        name: name.to_owned(),
        meta,
    }
}

fn his_row(sample: &Sample, tz: Tz, name: &str) -> Dict {
    let mut row = Dict::new();
    row.insert("ts".into(), Value::from(his::datetime(sample.ts, tz)));
    row.insert(name.to_owned(), sample.val.clone());
    row
}
