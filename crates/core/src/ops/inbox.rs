//! [`WatchInbox`]: where a store leaves the changes of the watches one
//! connection subscribed, coalesced per entity.

use std::collections::BTreeMap;
use std::sync::Arc;

use libhaystack::val::{Dict, Value};
use parking_lot::Mutex;
use tokio::sync::Notify;

use super::{WatchEvent, make_grid};

/// The pending changes of one connection's watches, until it takes them.
///
/// A store [`deliver`](Self::deliver)s the current state of each changed
/// entity; the connection waits with [`changed`](Self::changed) and
/// [`take`](Self::take)s everything pending as one [`WatchEvent`] per watch.
/// Per watch and entity only the latest state is kept, so a connection that
/// falls behind loses nothing: it sends fewer, newer pushes and still ends
/// with the current value of every entity it watches. Memory is bounded by
/// the entities its watches hold, not by the number of changes.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use hs_core::ops::WatchInbox;
/// use libhaystack::val::{Dict, Ref, Value};
///
/// let point = |val: f64| {
///     let mut row = Dict::new();
///     row.insert("id".into(), Value::from(Ref::from("p1")));
///     row.insert("curVal".into(), Value::make_number(val));
///     Arc::new(row)
/// };
/// let inbox = WatchInbox::new();
/// inbox.deliver("w-1", [point(1.0)]);
/// inbox.deliver("w-1", [point(2.0)]);
/// inbox.changed().await;
/// let events = inbox.take();
/// assert_eq!(events.len(), 1);
/// assert_eq!(events[0].grid.rows.len(), 1, "the latest state only");
/// assert_eq!(events[0].grid.rows[0].get("curVal"), Some(&Value::make_number(2.0)));
/// assert!(inbox.take().is_empty());
/// # });
/// ```
#[derive(Debug, Default)]
pub struct WatchInbox {
    /// watch id -> entity id -> latest state.
    pending: Mutex<BTreeMap<String, BTreeMap<String, Arc<Dict>>>>,
    notify: Notify,
}

impl WatchInbox {
    /// An empty inbox.
    pub fn new() -> Self {
        Self::default()
    }

    /// Leaves the current state of changed entities of `watch_id`, replacing
    /// any state of the same entities not taken yet, and wakes the waiter.
    /// Rows without an `id` Ref are ignored.
    pub fn deliver(&self, watch_id: &str, rows: impl IntoIterator<Item = Arc<Dict>>) {
        let mut pending = self.pending.lock();
        let entities = match pending.get_mut(watch_id) {
            Some(entities) => entities,
            None => pending.entry(watch_id.to_owned()).or_default(),
        };
        for row in rows {
            if let Some(Value::Ref(id)) = row.get("id") {
                entities.insert(id.value().to_owned(), row);
            }
        }
        drop(pending);
        self.notify.notify_one();
    }

    /// Resolves once something was delivered since the last wait (at once if
    /// a delivery came meanwhile). Meant for one waiter, the connection.
    pub async fn changed(&self) {
        self.notify.notified().await;
    }

    /// Everything pending, one event per watch (rows in id order), leaving
    /// the inbox empty.
    pub fn take(&self) -> Vec<WatchEvent> {
        let pending = std::mem::take(&mut *self.pending.lock());
        pending
            .into_iter()
            .filter(|(_, entities)| !entities.is_empty())
            .map(|(watch_id, entities)| {
                let rows = entities.into_values().map(Arc::unwrap_or_clone).collect();
                let mut meta = Dict::new();
                meta.insert("watchId".into(), Value::make_str(&watch_id));
                WatchEvent {
                    grid: make_grid(meta, rows),
                    watch_id,
                }
            })
            .collect()
    }

    /// Drops what is pending for `watch_id` (the watch was closed).
    pub fn forget(&self, watch_id: &str) {
        self.pending.lock().remove(watch_id);
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.pending.lock().values().all(BTreeMap::is_empty)
    }
}
