//! The store's indexes, and filter planning over them.
//!
//! Per tag name:
//! - presence: the sorted slots of the entities that have the tag (any
//!   non-null value);
//! - values: value key → the sorted slots of the entities whose tag holds
//!   that value (or a list holding it), for every value that is a Ref, Str,
//!   Number, Bool, Symbol, Uri, Date, Time or DateTime. The key is a keyed
//!   64-bit hash of the value, built so that values equal under the filter's
//!   `==` (libhaystack's `Value` equality: a Number's value and unit, a
//!   Ref's id without its dis) hash alike; a Number NaN equals nothing and
//!   is not indexed.
//!
//! Every value under one key is equal, unless a hash collision put a
//! different one there: inserting a slot compares its value with another
//! slot's under the key and, when they differ, marks the key
//! [`Postings::Mixed`], whose slots are then only candidates. A lookup
//! compares its value with the first slot's likewise, so an equality
//! answers exactly, without evaluating the filter.
//!
//! - order: the tag's Numbers, Strs, Dates, Times and DateTimes in order
//!   ([`ordered`]), for `<`, `<=`, `>` and `>=`.
//!
//! All three are kept up to date by [`TagIndex::add`] (a new entity) and
//! [`TagIndex::update`] (a changed one: only the tags that changed are
//! touched, so a `curVal` write costs two small postings edits).

mod keys;
mod ordered;
mod plan;
mod sets;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::Arc;

use libhaystack::val::{Dict, Value};

use keys::{KeyHasher, Keyer, Keys, Postings, insert_sorted};
use ordered::Ordered;

/// The store's indexes. See the [module docs](self).
#[derive(Debug, Default)]
pub(super) struct TagIndex {
    tags: HashMap<String, Tag>,
    keyer: Keyer,
}

/// One tag's postings.
#[derive(Debug, Default)]
struct Tag {
    /// Entities that have the tag.
    slots: Vec<u32>,
    /// Value key → entities whose tag holds the value.
    values: HashMap<u64, Postings, BuildHasherDefault<KeyHasher>>,
    /// Entities whose tag holds a dict (a path may continue into it) or a
    /// list (a path cannot follow it).
    containers: Vec<u32>,
    /// The tag's orderable values in order.
    ordered: Ordered,
}

impl TagIndex {
    /// An empty index whose value keys have only `bits` bits, so that
    /// different values share keys: the collision path, under test.
    #[cfg(test)]
    pub(super) fn with_key_bits(bits: u32) -> Self {
        let mut index = Self::default();
        index.keyer.mask = (1 << bits) - 1;
        index
    }

    /// Index the new entity `entities[slot]`.
    pub(super) fn add(&mut self, slot: u32, entities: &[Arc<Dict>]) {
        let Some(entity) = entities.get(slot as usize) else {
            return;
        };
        for (name, value) in entity.iter() {
            self.add_tag(slot, name, value, entities);
        }
    }

    /// `entities[slot]` changed from `old`: re-index the tags that differ.
    pub(super) fn update(&mut self, slot: u32, old: &Dict, entities: &[Arc<Dict>]) {
        let Some(new) = entities.get(slot as usize) else {
            return;
        };
        for (name, old_value) in old.iter() {
            match new.get(name) {
                Some(new_value) if new_value == old_value => {}
                Some(new_value) => self.change_tag(slot, name, old_value, new_value, entities),
                None => self.remove_tag(slot, name, old_value),
            }
        }
        for (name, new_value) in new.iter() {
            if !old.contains_key(name) {
                self.add_tag(slot, name, new_value, entities);
            }
        }
    }

    /// Slots of the entities that have `tag`.
    pub(super) fn postings(&self, tag: &str) -> &[u32] {
        self.tags.get(tag).map_or(&[], |tag| tag.slots.as_slice())
    }

    /// Slots of the entities whose `tag` may equal `value`, and whether they
    /// all do; `None` when the value's kind is not indexed.
    fn equal(&self, tag: &str, value: &Value, entities: &[Arc<Dict>]) -> Option<(&[u32], bool)> {
        match self.tags.get(tag) {
            Some(entry) => self.equal_in(entry, tag, value, entities),
            None => self.keyer.key(value).map(|_| (&[][..], true)),
        }
    }

    /// As [`equal`](Self::equal), in `tag`'s `entry`.
    fn equal_in<'i>(
        &self,
        entry: &'i Tag,
        tag: &str,
        value: &Value,
        entities: &[Arc<Dict>],
    ) -> Option<(&'i [u32], bool)> {
        let key = self.keyer.key(value)?;
        let Some(postings) = entry.values.get(&key) else {
            return Some((&[], true));
        };
        Some(match postings {
            Postings::Mixed(slots) => (slots, false),
            postings => {
                let slots = postings.as_slice();
                if self.keyer.holds(entities, slots[0], tag, key, value) {
                    (slots, true)
                } else {
                    // Another value with the same key: none of these matches.
                    (&[], true)
                }
            }
        })
    }

    fn add_tag(&mut self, slot: u32, name: &str, value: &Value, entities: &[Arc<Dict>]) {
        if value.is_null() {
            return;
        }
        let entry = match self.tags.get_mut(name) {
            Some(entry) => entry,
            None => self.tags.entry(name.to_owned()).or_default(),
        };
        insert_sorted(&mut entry.slots, slot);
        if is_container(value) {
            insert_sorted(&mut entry.containers, slot);
        }
        let mut keys = Keys::new();
        self.keyer.keys_of(value, &mut keys);
        for (position, (key, scalar)) in keys.iter().enumerate() {
            if first_of(&keys, position) {
                insert_key(&self.keyer, entry, *key, slot, name, &keys, entities);
            }
            entry.ordered.insert(scalar, slot);
        }
    }

    fn remove_tag(&mut self, slot: u32, name: &str, value: &Value) {
        let Some(entry) = self.tags.get_mut(name) else {
            return;
        };
        for slots in [&mut entry.slots, &mut entry.containers] {
            if let Ok(position) = slots.binary_search(&slot) {
                slots.remove(position);
            }
        }
        let mut keys = Keys::new();
        self.keyer.keys_of(value, &mut keys);
        for (key, scalar) in keys {
            remove_key(entry, key, slot);
            entry.ordered.remove(scalar, slot);
        }
        if entry.slots.is_empty() {
            self.tags.remove(name);
        }
    }

    fn change_tag(
        &mut self,
        slot: u32,
        name: &str,
        old: &Value,
        new: &Value,
        entities: &[Arc<Dict>],
    ) {
        if old.is_null() || new.is_null() {
            self.remove_tag(slot, name, old);
            self.add_tag(slot, name, new, entities);
            return;
        }
        let Some(entry) = self.tags.get_mut(name) else {
            return;
        };
        match (is_container(old), is_container(new)) {
            (false, true) => insert_sorted(&mut entry.containers, slot),
            (true, false) => {
                if let Ok(position) = entry.containers.binary_search(&slot) {
                    entry.containers.remove(position);
                }
            }
            _ => {}
        }
        let (mut old_keys, mut new_keys) = (Keys::new(), Keys::new());
        self.keyer.keys_of(old, &mut old_keys);
        self.keyer.keys_of(new, &mut new_keys);
        for (_, scalar) in &old_keys {
            entry.ordered.remove(scalar, slot);
        }
        for (_, scalar) in &new_keys {
            entry.ordered.insert(scalar, slot);
        }
        for (key, _) in &old_keys {
            if !new_keys.iter().any(|(other, _)| other == key) {
                remove_key(entry, *key, slot);
            }
        }
        for (position, (key, _)) in new_keys.iter().enumerate() {
            if !first_of(&new_keys, position) {
                continue;
            }
            let old_scalars = old_keys.iter().filter(|(other, _)| other == key);
            let new_scalars = new_keys.iter().filter(|(other, _)| other == key);
            if old_scalars.clone().next().is_some() {
                if old_scalars.eq(new_scalars) {
                    continue;
                }
                // Same key, other values (a collision): file the slot anew.
                remove_key(entry, *key, slot);
            }
            insert_key(&self.keyer, entry, *key, slot, name, &new_keys, entities);
        }
    }
}

/// Add `slot` under `key` in `tag`'s values (`keys` are the slot's keys and
/// scalars for the tag), marking the key mixed unless the slot's scalars
/// under it, and another slot's there, are all equal.
fn insert_key(
    keyer: &Keyer,
    entry: &mut Tag,
    key: u64,
    slot: u32,
    tag: &str,
    keys: &Keys<'_>,
    entities: &[Arc<Dict>],
) {
    let mut scalars = keys.iter().filter(|(other, _)| *other == key);
    let Some((_, scalar)) = scalars.next() else {
        return;
    };
    let consistent = scalars.all(|(_, other)| other == scalar);
    let mixed = match entry.values.get(&key) {
        None => !consistent,
        Some(Postings::Mixed(_)) => true,
        Some(postings) => {
            let other = postings.as_slice().iter().find(|other| **other != slot);
            !consistent
                || other.is_some_and(|other| !keyer.holds(entities, *other, tag, key, scalar))
        }
    };
    let postings = entry.values.entry(key).or_insert(Postings::One(slot));
    if mixed {
        postings.mark_mixed();
    }
    postings.insert(slot);
}

fn remove_key(entry: &mut Tag, key: u64, slot: u32) {
    if let Some(postings) = entry.values.get_mut(&key) {
        if postings.remove(slot) {
            entry.values.remove(&key);
        }
    }
}

/// A dict or a list: a value a `->` path does not follow as a Ref.
fn is_container(value: &Value) -> bool {
    matches!(value, Value::Dict(_) | Value::List(_))
}

/// True when `keys[position]` is the first entry with its key.
fn first_of(keys: &Keys<'_>, position: usize) -> bool {
    let key = keys[position].0;
    !keys[..position].iter().any(|(other, _)| *other == key)
}
