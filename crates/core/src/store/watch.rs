//! Watch bookkeeping: leases, limits, expiry and delivery of changes.

use crate::observe::targets;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use libhaystack::units::get_unit_or_default;
use libhaystack::val::{Dict, Number, Value};

use crate::observe::ErrorKind;
use crate::ops::OpError;

use super::{MAX_LEASE, MIN_LEASE, State, Watch};

impl State {
    pub(super) fn sweep_watches(&mut self, now: chrono::DateTime<Utc>) {
        let expired: Vec<String> = self
            .watches
            .iter()
            .filter(|(_, watch)| watch.expires <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            log::debug!(target: targets::STORE, "watch {id} expired");
            self.remove_watch(&id);
        }
    }

    pub(super) fn remove_watch(&mut self, id: &str) {
        if let Some(watch) = self.watches.remove(id) {
            for slot in watch.members {
                self.unlink(slot, id);
            }
        }
    }

    pub(super) fn unlink(&mut self, slot: usize, watch_id: &str) {
        if let Some(watches) = self.watched_by.get_mut(&slot) {
            watches.remove(watch_id);
            if watches.is_empty() {
                self.watched_by.remove(&slot);
            }
        }
    }

    pub(super) fn live_watch(
        &mut self,
        id: &str,
        now: chrono::DateTime<Utc>,
    ) -> Result<&mut Watch, OpError> {
        self.sweep_watches(now);
        self.watches
            .get_mut(id)
            .ok_or_else(|| OpError::not_found(format!("Unknown watch: {id}")))
    }

    /// Mark `changed` entities dirty in their watches and deliver their new
    /// state to the watches' inboxes. Called under the write lock that made
    /// the change, so deliveries of one entity arrive in order.
    pub(super) fn notify_watches(&mut self, changed: &[usize]) {
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
    pub(super) fn admit_watch(
        &self,
        owner: Option<&str>,
        max_total: usize,
        max_per_user: usize,
    ) -> Result<(), OpError> {
        if self.watches.len() >= max_total {
            log::warn!(target: targets::STORE, "watchSub refused: {max_total} watches open, the server's limit");
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
            log::warn!(target: targets::STORE, "watchSub refused: {who} hold {held} watches, the limit per user");
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

pub(super) fn clamp_lease(lease: Duration) -> Duration {
    lease.clamp(MIN_LEASE, MAX_LEASE)
}

pub(super) fn lease_end(now: chrono::DateTime<Utc>, lease: Duration) -> chrono::DateTime<Utc> {
    now + chrono::TimeDelta::from_std(lease).unwrap_or(chrono::TimeDelta::MAX)
}

pub(super) fn watch_meta(watch_id: &str, lease: Option<Duration>) -> Dict {
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
