//! The data behind the lock: entities, indexes and their upkeep on writes.

use crate::observe::targets;
use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};

use chrono_tz::Tz;
use libhaystack::filter::Filter;
use libhaystack::val::{Dict, Value};

use crate::codec::reply::{UNKNOWN_SHAPE, column_names};

use super::query::Node;
use super::{MAX_SHAPES, State, entity_id, slot_u32};

impl State {
    pub(super) fn slot(&self, id: &str) -> Option<usize> {
        self.by_id.get(id).copied()
    }

    pub(super) fn entity(&self, id: &str) -> Option<&Dict> {
        self.slot(id).map(|slot| &*self.entities[slot])
    }

    pub(super) fn upsert(&mut self, entity: Dict, changed: &mut Vec<usize>) {
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

    pub(super) fn replace(&mut self, slot: usize, entity: Dict, changed: &mut Vec<usize>) {
        if *self.entities[slot] != entity {
            let old = std::mem::replace(&mut self.entities[slot], Arc::new(entity));
            self.json[slot] = OnceLock::new();
            self.index.update(slot_u32(slot), &old, &self.entities);
            changed.push(slot);
        }
    }

    /// Re-derive `curVal` / `writeVal` / `writeLevel` from the priority array.
    pub(super) fn apply_priority(&mut self, slot: usize, changed: &mut Vec<usize>) {
        let Some(array) = self.writes.get(&slot) else {
            return;
        };
        let mut entity = Dict::clone(&self.entities[slot]);
        array.apply(&mut entity);
        self.replace(slot, entity, changed);
    }

    /// The point's timezone: its `tz`, else its site's, else UTC.
    pub(super) fn tz(&self, entity: &Dict) -> Tz {
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
    pub(super) fn query(&self, filter: &Filter, limit: Option<usize>) -> Vec<usize> {
        let limit = limit.unwrap_or(usize::MAX);
        let query = Node::compile(filter);
        let plan = self.index.plan(&query, &self.entities);
        log::debug!(
            target: targets::STORE,
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
    pub(super) fn json_row(&self, slot: usize) -> (Arc<str>, u32) {
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
    pub(super) fn shape_of(&self, entity: &Dict) -> u32 {
        let mut key = String::new();
        for name in column_names(std::slice::from_ref(entity)) {
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
    pub(super) fn explain(&self, filter: &Filter) -> String {
        self.index.explain(&Node::compile(filter), &self.entities)
    }

    /// As [`query`](Self::query), by testing every entity (no index): the
    /// reference the indexed reads are checked against.
    #[cfg(any(test, feature = "test-util"))]
    pub(super) fn scan(&self, filter: &Filter, limit: Option<usize>) -> Vec<usize> {
        let query = Node::compile(filter);
        let lookup = |id: &str| self.entity(id);
        (0..self.entities.len())
            .filter(|slot| query.matches(&self.entities[*slot], &lookup))
            .take(limit.unwrap_or(usize::MAX))
            .collect()
    }
}
