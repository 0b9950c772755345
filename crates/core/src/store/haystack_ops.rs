//! [`HaystackOps`] for [`MemoryStore`]: each op over the store's state.

use crate::observe::targets;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use async_trait::async_trait;
use chrono_tz::Tz;
use libhaystack::val::{Column, DateTime, Dict, Grid, Value};

use crate::codec::empty_grid;
use crate::ops::{
    EncodedRows, HaystackOps, HisReadRequest, HisWriteRequest, InvokeActionRequest, NavRequest,
    OpError, PointWriteRequest, ReadRequest, Reply, WatchInbox, WatchPollRequest, WatchSubRequest,
    WatchUnsubRequest, kind_name, make_grid,
};

use super::his::{self, Sample, Series};
use super::priority::LevelWrite;
use super::watch::{clamp_lease, lease_end, watch_meta};
use super::{DEFAULT_LEASE, MemoryStore, Watch, entity_id};

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
                    target: targets::STORE,
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
                log::error!(target: targets::STORE, "action {} failed: {join_error}", request.action);
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
            log::debug!(target: targets::STORE, "watch {watch_id} released: its connection ended");
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
