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
//!
//! [`HaystackOps`]: crate::ops::HaystackOps
//! [`HaystackOps::watch_attach`]: crate::ops::HaystackOps::watch_attach

mod eval;
mod haystack_ops;
mod his;
mod index;
mod load;
mod priority;
mod query;
mod state;
#[cfg(test)]
mod tests;
mod watch;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use chrono::Utc;
use libhaystack::val::{DateTime, Dict, Grid, Ref, Value};
use parking_lot::{Mutex, RwLock};

use crate::clock::{Clock, SystemClock};
use crate::ops::{OpError, WatchInbox};

pub use load::LoadError;

pub(crate) use his::Sample;
use his::Series;
use index::TagIndex;
use priority::PriorityArray;

/// The lease of a watch that asked for none.
pub(crate) const DEFAULT_LEASE: Duration = Duration::from_secs(300);
/// The shortest lease granted.
pub(crate) const MIN_LEASE: Duration = Duration::from_secs(1);
/// The longest lease granted.
pub(crate) const MAX_LEASE: Duration = Duration::from_secs(3_600);
/// Default of the most watches open at once (all users together).
pub const DEFAULT_MAX_WATCHES: usize = 10_000;
/// Default of the most watches one user holds at once; anonymous clients
/// share one allowance.
pub const DEFAULT_MAX_WATCHES_PER_USER: usize = 1_000;

/// An action handler: receives the target entity and the arguments, answers a grid.
type ActionHandler = Arc<dyn Fn(&Dict, &Dict) -> Result<Grid, OpError> + Send + Sync>;

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
    #[must_use]
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
    pub fn read_scan(
        &self,
        filter: &libhaystack::filter::Filter,
        limit: Option<usize>,
    ) -> Vec<Arc<Dict>> {
        let state = self.state.read();
        state
            .scan(filter, limit)
            .into_iter()
            .map(|slot| Arc::clone(&state.entities[slot]))
            .collect()
    }

    /// Register (or replace) the handler of action `name` for `invokeAction`.
    /// The handler receives the target entity and the arguments and answers
    /// a grid. Under a tokio runtime it runs on the blocking thread pool, so
    /// it may block (device I/O, a slow call) without stalling the server's
    /// workers.
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

fn entity_id(entity: &Dict) -> Option<&Ref> {
    match entity.get("id") {
        Some(Value::Ref(id)) => Some(id),
        _ => None,
    }
}

fn slot_u32(slot: usize) -> u32 {
    u32::try_from(slot).unwrap_or(u32::MAX)
}
