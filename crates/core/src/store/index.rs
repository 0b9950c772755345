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
//! Both are kept up to date by [`TagIndex::add`] (a new entity) and
//! [`TagIndex::update`] (a changed one: only the tags that changed are
//! touched, so a `curVal` write costs two small postings edits).

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher, RandomState};
use std::ops::Bound;
use std::sync::Arc;

use libhaystack::filter::PathResolver;
use libhaystack::filter::nodes::CmpOp;
use libhaystack::filter::path::Path;
use libhaystack::units::Unit;
use libhaystack::val::{Dict, Number, Ref, Value};
use smallvec::SmallVec;

use super::query::Node;

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
    /// The tag's Numbers in order (NaN aside), per unit: numbers of
    /// different units never compare.
    numbers: HashMap<Option<&'static Unit>, BTreeSet<(u64, u32)>>,
}

impl Tag {
    fn insert_number(&mut self, number: &Number, slot: u32) {
        if let Some(order) = order_key(number.value) {
            self.numbers
                .entry(number.unit)
                .or_default()
                .insert((order, slot));
        }
    }

    fn remove_number(&mut self, number: &Number, slot: u32) {
        let Some(order) = order_key(number.value) else {
            return;
        };
        if let Some(numbers) = self.numbers.get_mut(&number.unit) {
            numbers.remove(&(order, slot));
            if numbers.is_empty() {
                self.numbers.remove(&number.unit);
            }
        }
    }

    /// The sorted slots whose tag holds a Number (or a list with one) that
    /// compares `op` to `number`; `None` for an equality.
    fn range(&self, op: &CmpOp, number: &Number) -> Option<Vec<u32>> {
        let (low, high) = match (op, order_key(number.value)) {
            (CmpOp::Eq | CmpOp::NotEq, _) => return None,
            // NaN orders against nothing.
            (_, None) => return Some(Vec::new()),
            (CmpOp::LessThan, Some(key)) => (Bound::Unbounded, Bound::Excluded((key, 0))),
            (CmpOp::LessThanEq, Some(key)) => (Bound::Unbounded, Bound::Included((key, u32::MAX))),
            (CmpOp::GreatThan, Some(key)) => (Bound::Excluded((key, u32::MAX)), Bound::Unbounded),
            (CmpOp::GreatThanEq, Some(key)) => (Bound::Included((key, 0)), Bound::Unbounded),
        };
        let Some(numbers) = self.numbers.get(&number.unit) else {
            return Some(Vec::new());
        };
        let mut slots: Vec<u32> = numbers.range((low, high)).map(|(_, slot)| *slot).collect();
        slots.sort_unstable();
        slots.dedup();
        Some(slots)
    }
}

/// A key that orders as the number does (`-0.0` as `0.0`); `None` for NaN.
fn order_key(value: f64) -> Option<u64> {
    if value.is_nan() {
        return None;
    }
    let bits = if value == 0.0 { 0 } else { value.to_bits() };
    Some(if bits >> 63 == 1 {
        !bits
    } else {
        bits | 1 << 63
    })
}

/// Computes value keys.
#[derive(Debug)]
struct Keyer {
    keys: RandomState,
    /// All ones; tests keep a few bits to make keys collide.
    mask: u64,
}

impl Default for Keyer {
    fn default() -> Self {
        Self {
            keys: RandomState::new(),
            mask: u64::MAX,
        }
    }
}

impl Keyer {
    /// The key of `value`, when its kind is indexed.
    fn key(&self, value: &Value) -> Option<u64> {
        let mut hasher = self.keys.build_hasher();
        std::mem::discriminant(value).hash(&mut hasher);
        match value {
            Value::Number(number) => {
                if number.value.is_nan() {
                    return None;
                }
                // -0.0 == 0.0, as `f64` equality has it.
                let bits = if number.value == 0.0 {
                    0
                } else {
                    number.value.to_bits()
                };
                bits.hash(&mut hasher);
                // Units compare (and hash) by content.
                number.unit.hash(&mut hasher);
            }
            // `Value`'s own hash agrees with its equality for these kinds
            // (a Ref hashes its id only, a DateTime its UTC instant).
            Value::Bool(_)
            | Value::Str(_)
            | Value::Ref(_)
            | Value::Uri(_)
            | Value::Symbol(_)
            | Value::Date(_)
            | Value::Time(_)
            | Value::DateTime(_) => value.hash(&mut hasher),
            _ => return None,
        }
        Some(hasher.finish() & self.mask)
    }

    /// The keys of a tag's `value`, each with its scalar: a list's items (at
    /// any depth) each have one, as `==` matches a list holding the value.
    fn keys_of<'v>(&self, value: &'v Value, keys: &mut Keys<'v>) {
        match value {
            Value::List(items) => {
                for item in items {
                    self.keys_of(item, keys);
                }
            }
            scalar => {
                if let Some(key) = self.key(scalar) {
                    keys.push((key, scalar));
                }
            }
        }
    }

    /// True when every scalar of `entities[slot]`'s `tag` under `key` (at
    /// least one) equals `value`; `slot` is one filed under `key`.
    fn holds(&self, entities: &[Arc<Dict>], slot: u32, tag: &str, key: u64, value: &Value) -> bool {
        let Some(held) = entities
            .get(slot as usize)
            .and_then(|entity| entity.get(tag))
        else {
            return false;
        };
        if !held.is_list() {
            // A slot's scalar under `key` is the scalar itself.
            return held == value;
        }
        let mut keys = Keys::new();
        self.keys_of(held, &mut keys);
        let mut under_key = keys.iter().filter(|(other, _)| *other == key).peekable();
        under_key.peek().is_some() && under_key.all(|(_, scalar)| *scalar == value)
    }
}

/// Sorted slots; one slot (the usual case for ids, names and readings) kept inline.
#[derive(Debug)]
enum Postings {
    One(u32),
    Many(Vec<u32>),
    /// Values that are not all equal share this key (a hash collision).
    Mixed(Vec<u32>),
}

impl Postings {
    fn as_slice(&self) -> &[u32] {
        match self {
            Postings::One(slot) => std::slice::from_ref(slot),
            Postings::Many(slots) | Postings::Mixed(slots) => slots,
        }
    }

    fn insert(&mut self, slot: u32) {
        match self {
            Postings::One(only) if *only == slot => {}
            Postings::One(only) => {
                let only = *only;
                *self = Postings::Many(if only < slot {
                    vec![only, slot]
                } else {
                    vec![slot, only]
                });
            }
            Postings::Many(slots) | Postings::Mixed(slots) => insert_sorted(slots, slot),
        }
    }

    fn mark_mixed(&mut self) {
        let slots = match self {
            Postings::One(only) => vec![*only],
            Postings::Many(slots) | Postings::Mixed(slots) => std::mem::take(slots),
        };
        *self = Postings::Mixed(slots);
    }

    /// Remove `slot`; true when no slot is left.
    fn remove(&mut self, slot: u32) -> bool {
        match self {
            Postings::One(only) => *only == slot,
            Postings::Many(slots) => {
                if let Ok(position) = slots.binary_search(&slot) {
                    slots.remove(position);
                }
                match slots.as_slice() {
                    [] => true,
                    [only] => {
                        *self = Postings::One(*only);
                        false
                    }
                    _ => false,
                }
            }
            Postings::Mixed(slots) => {
                if let Ok(position) = slots.binary_search(&slot) {
                    slots.remove(position);
                }
                slots.is_empty()
            }
        }
    }
}

fn insert_sorted(slots: &mut Vec<u32>, slot: u32) {
    // Loads append in slot order: check the end first.
    match slots.last() {
        Some(last) if *last < slot => slots.push(slot),
        None => slots.push(slot),
        _ => {
            if let Err(position) = slots.binary_search(&slot) {
                slots.insert(position, slot);
            }
        }
    }
}

/// Passes the already keyed 64-bit hash of a value key straight through.
#[derive(Debug, Default, Clone, Copy)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `u64` keys are hashed; this keeps any other input well mixed.
        for byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*byte);
        }
    }

    fn write_u64(&mut self, key: u64) {
        self.0 = key;
    }
}

/// The keys of one tag's value, each with the scalar it comes from: one per
/// indexable scalar (list items each).
type Keys<'v> = SmallVec<[(u64, &'v Value); 2]>;

/// The end of a path term: `has`, or a comparison with a value.
#[derive(Debug, Clone, Copy)]
enum Leaf<'f> {
    Has,
    Cmp(&'f CmpOp, &'f Value),
}

/// Slots a filter (or a part of one) may match.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Candidates<'i> {
    /// Every entity.
    All,
    /// Only these (sorted).
    Only(Cow<'i, [u32]>),
    /// Every entity except these (sorted).
    Except(Cow<'i, [u32]>),
}

/// How to find the entities a filter matches.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Plan<'i> {
    pub(super) candidates: Candidates<'i>,
    /// Every candidate matches: no evaluation needed.
    pub(super) exact: bool,
}

impl<'i> Plan<'i> {
    fn new(candidates: Candidates<'i>, exact: bool) -> Self {
        Self { candidates, exact }
    }

    /// The candidate slots among `len` entities, in slot order.
    pub(super) fn slots(&self, len: usize) -> Box<dyn Iterator<Item = usize> + '_> {
        match &self.candidates {
            Candidates::All => Box::new(0..len),
            Candidates::Only(slots) => Box::new(slots.iter().map(|slot| *slot as usize)),
            Candidates::Except(excluded) => {
                let mut excluded = excluded.iter().map(|slot| *slot as usize).peekable();
                Box::new((0..len).filter(move |slot| {
                    while excluded.next_if(|next| next < slot).is_some() {}
                    excluded.next_if_eq(slot).is_none()
                }))
            }
        }
    }

    /// How many candidates among `len` entities.
    pub(super) fn count(&self, len: usize) -> usize {
        match &self.candidates {
            Candidates::All => len,
            Candidates::Only(slots) => slots.len(),
            Candidates::Except(excluded) => len.saturating_sub(excluded.len()),
        }
    }
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
            if let Value::Number(number) = scalar {
                entry.insert_number(number, slot);
            }
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
            if let Value::Number(number) = scalar {
                entry.remove_number(number, slot);
            }
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
            if let Value::Number(number) = scalar {
                entry.remove_number(number, slot);
            }
        }
        for (_, scalar) in &new_keys {
            if let Value::Number(number) = scalar {
                entry.insert_number(number, slot);
            }
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

    /// Plan a compiled filter: each `and` intersects its terms' postings from
    /// the shortest and subtracts its missing tags; each `or` unions. A term
    /// the indexes cannot answer exactly (an equality, a comparison, a path,
    /// `^def`…) narrows what it can and leaves the rest to evaluation.
    pub(super) fn plan<'i>(&'i self, node: &Node<'_>, entities: &[Arc<Dict>]) -> Plan<'i> {
        match node {
            Node::Or(branches) => self.plan_or(branches, entities),
            Node::And(terms) => self.plan_and(terms, entities),
            Node::Has(path) => self.plan_path(path, Leaf::Has, entities),
            Node::Missing(path) if path.len() == 1 => Plan::new(
                Candidates::Except(Cow::Borrowed(self.postings(first(path)))),
                true,
            ),
            Node::Missing(_) | Node::Other(_) => Plan::new(Candidates::All, false),
            Node::Cmp { path, op, value } => self.plan_path(path, Leaf::Cmp(op, value), entities),
        }
    }

    /// Plan `path` ending in `leaf`. On one tag: the tag's postings (exact
    /// for `has`), the value's for an equality (exact), the numbers in range
    /// for a Number ordering (exact); any other comparison needs the tag (one
    /// against a missing tag is false). On
    /// `tag->rest`: the entities whose `tag` names an entity that `rest` may
    /// match (the value postings of each one's id, the reverse of the Ref),
    /// or holds a dict (or a list), unless the targets outnumber the entities
    /// with the tag twice.
    fn plan_path<'i>(
        &'i self,
        path: &[String],
        leaf: Leaf<'_>,
        entities: &[Arc<Dict>],
    ) -> Plan<'i> {
        let [tag, rest @ ..] = path else {
            return Plan::new(Candidates::All, false);
        };
        let with_tag = || Plan::new(Candidates::Only(Cow::Borrowed(self.postings(tag))), false);
        if rest.is_empty() {
            return match leaf {
                Leaf::Has => Plan::new(Candidates::Only(Cow::Borrowed(self.postings(tag))), true),
                Leaf::Cmp(CmpOp::Eq, value) => match self.equal(tag, value, entities) {
                    Some((slots, exact)) => {
                        Plan::new(Candidates::Only(Cow::Borrowed(slots)), exact)
                    }
                    None => with_tag(),
                },
                Leaf::Cmp(op, Value::Number(number)) => {
                    match self
                        .tags
                        .get(tag.as_str())
                        .and_then(|entry| entry.range(op, number))
                    {
                        Some(slots) => Plan::new(Candidates::Only(Cow::Owned(slots)), true),
                        None => with_tag(),
                    }
                }
                Leaf::Cmp(..) => with_tag(),
            };
        }
        let Some(entry) = self.tags.get(tag.as_str()) else {
            return Plan::new(Candidates::Only(Cow::Borrowed(&[])), true);
        };
        let targets = self.plan_path(rest, leaf, entities);
        let Candidates::Only(slots) = targets.candidates else {
            return with_tag();
        };
        // A lookup per target costs less than evaluating a candidate.
        if slots.len() >= 2 * entry.slots.len() {
            return with_tag();
        }
        // Exact when every target matches, every source found holds a Ref
        // to one (no key mixed) and no source holds a dict or a list.
        let mut exact = targets.exact && entry.containers.is_empty();
        let mut sources: Vec<Cow<'i, [u32]>> = Vec::with_capacity(slots.len() + 1);
        sources.push(Cow::Borrowed(entry.containers.as_slice()));
        for target in slots.iter() {
            let id = entities
                .get(*target as usize)
                .and_then(|entity| entity.get("id"));
            if let Some(id @ Value::Ref(_)) = id {
                if let Some((slots, slots_exact)) = self.equal_in(entry, tag, id, entities) {
                    exact &= slots_exact;
                    sources.push(Cow::Borrowed(slots));
                }
            }
        }
        Plan::new(Candidates::Only(union_all(sources)), exact)
    }

    fn plan_and<'i>(&'i self, terms: &[Node<'_>], entities: &[Arc<Dict>]) -> Plan<'i> {
        let mut only: Vec<Cow<'i, [u32]>> = Vec::new();
        let mut except: Vec<Cow<'i, [u32]>> = Vec::new();
        let mut exact = true;
        // Number orderings last: a range may hold most of the tag's entities,
        // and a few candidates are cheaper to evaluate than a range to collect.
        let (ranges, others): (Vec<&Node<'_>>, Vec<&Node<'_>>) =
            terms.iter().partition(|term| ordering_tag(term).is_some());
        for term in others.into_iter().chain(ranges) {
            if let Some(tag) = ordering_tag(term) {
                let fewest = only.iter().map(|slots| slots.len()).min();
                if fewest.is_some_and(|fewest| fewest * 32 <= self.postings(tag).len()) {
                    exact = false;
                    continue;
                }
            }
            let plan = self.plan(term, entities);
            exact &= plan.exact;
            match plan.candidates {
                Candidates::All => {}
                Candidates::Only(slots) => {
                    if slots.is_empty() {
                        return Plan::new(Candidates::Only(slots), true);
                    }
                    only.push(slots);
                }
                Candidates::Except(slots) => except.push(slots),
            }
        }
        only.sort_by_key(|slots| slots.len());
        let mut only = only.into_iter();
        let Some(mut slots) = only.next() else {
            return match except.len() {
                0 => Plan::new(Candidates::All, exact),
                _ => Plan::new(Candidates::Except(union_all(except)), exact),
            };
        };
        for other in only {
            if slots.is_empty() {
                break;
            }
            slots = Cow::Owned(intersection(&slots, &other));
        }
        for excluded in except {
            if slots.is_empty() {
                break;
            }
            slots = Cow::Owned(difference(&slots, &excluded));
        }
        Plan::new(Candidates::Only(slots), exact)
    }

    fn plan_or<'i>(&'i self, branches: &[Node<'_>], entities: &[Arc<Dict>]) -> Plan<'i> {
        if let [single] = branches {
            return self.plan(single, entities);
        }
        let mut only: Vec<Cow<'i, [u32]>> = Vec::new();
        let mut except: Option<Cow<'i, [u32]>> = None;
        let mut exact = true;
        for branch in branches {
            let plan = self.plan(branch, entities);
            exact &= plan.exact;
            match plan.candidates {
                // An exact `All` branch matches everything.
                Candidates::All => return Plan::new(Candidates::All, plan.exact),
                Candidates::Only(slots) => only.push(slots),
                // (all but A) or (all but B) = all but (A and B)
                Candidates::Except(slots) => {
                    except = Some(match except {
                        None => slots,
                        Some(previous) => Cow::Owned(intersection(&previous, &slots)),
                    });
                }
            }
        }
        let only = union_all(only);
        match except {
            // (all but A) or B = all but (A without B)
            Some(excluded) => Plan::new(
                Candidates::Except(Cow::Owned(difference(&excluded, &only))),
                exact,
            ),
            None => Plan::new(Candidates::Only(only), exact),
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

/// The tag of a `tag < number` (or `<=`, `>`, `>=`) term.
fn ordering_tag<'n>(term: &'n Node<'_>) -> Option<&'n str> {
    match term {
        Node::Cmp {
            path,
            op: CmpOp::LessThan | CmpOp::LessThanEq | CmpOp::GreatThan | CmpOp::GreatThanEq,
            value: Value::Number(_),
        } => match path.as_slice() {
            [tag] => Some(tag),
            _ => None,
        },
        _ => None,
    }
}

/// True when `keys[position]` is the first entry with its key.
fn first_of(keys: &Keys<'_>, position: usize) -> bool {
    let key = keys[position].0;
    !keys[..position].iter().any(|(other, _)| *other == key)
}

fn first(path: &[String]) -> &str {
    path.first().map_or("", String::as_str)
}

fn union_all(mut lists: Vec<Cow<'_, [u32]>>) -> Cow<'_, [u32]> {
    match lists.len() {
        0 => Cow::Owned(Vec::new()),
        1 => lists.swap_remove(0),
        _ => {
            let mut out: Vec<u32> = lists.iter().flat_map(|list| list.iter().copied()).collect();
            out.sort_unstable();
            out.dedup();
            Cow::Owned(out)
        }
    }
}

/// Sorted `a ∩ b`: a merge when the lengths are close, else a binary search
/// of the longer for each of the shorter's slots (galloping forward).
fn intersection(a: &[u32], b: &[u32]) -> Vec<u32> {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let mut out = Vec::with_capacity(short.len());
    if long.len() / 16 > short.len() {
        let mut rest = long;
        for slot in short {
            match rest.binary_search(slot) {
                Ok(position) => {
                    out.push(*slot);
                    rest = &rest[position + 1..];
                }
                Err(position) => rest = &rest[position..],
            }
        }
        return out;
    }
    let (mut i, mut j) = (0, 0);
    while i < short.len() && j < long.len() {
        match short[i].cmp(&long[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(short[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

/// Sorted `a \ b`.
fn difference(a: &[u32], b: &[u32]) -> Vec<u32> {
    let mut out = Vec::with_capacity(a.len());
    let mut j = 0;
    for slot in a {
        while j < b.len() && b[j] < *slot {
            j += 1;
        }
        if b.get(j) != Some(slot) {
            out.push(*slot);
        }
    }
    out
}

/// Resolves filter paths, following `->` through Refs to the entities they name.
pub(super) struct RefResolver<'a, F: Fn(&str) -> Option<&'a Dict>> {
    pub(super) lookup: F,
}

impl<'a, F: Fn(&str) -> Option<&'a Dict>> PathResolver for RefResolver<'a, F> {
    fn resolve_for(&self, root: &Dict, path: &Path) -> Value {
        let mut current: Option<&Value> = None;
        for (position, segment) in path.iter().enumerate() {
            let dict = if position == 0 {
                root
            } else {
                match current {
                    Some(Value::Ref(id)) => match (self.lookup)(id.value()) {
                        Some(dict) => dict,
                        None => return Value::Null,
                    },
                    Some(Value::Dict(dict)) => dict,
                    _ => return Value::Null,
                }
            };
            current = dict.get(&segment.to_string());
            if current.is_none() {
                return Value::Null;
            }
        }
        current.cloned().unwrap_or(Value::Null)
    }

    fn resolve(&self, _path: &Path) -> Value {
        // Evaluation always goes through `resolve_for` with the entity as root.
        Value::Null
    }

    fn resolve_ref(&self, reference: &Ref) -> Option<Dict> {
        (self.lookup)(reference.value()).cloned()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use libhaystack::filter::Filter;
    use libhaystack::units::get_unit_or_default;
    use libhaystack::val::Number;

    use super::*;

    fn entity(tags: &[&str]) -> Dict {
        let mut dict = Dict::new();
        for tag in tags {
            dict.insert((*tag).to_owned(), Value::make_marker());
        }
        dict
    }

    fn with(mut dict: Dict, name: &str, value: Value) -> Dict {
        dict.insert(name.to_owned(), value);
        dict
    }

    /// An index and the entities it indexes.
    struct Fixture {
        index: TagIndex,
        entities: Vec<Arc<Dict>>,
    }

    impl Fixture {
        fn push(&mut self, entity: Dict) {
            self.entities.push(Arc::new(entity));
            self.index
                .add(self.entities.len() as u32 - 1, &self.entities);
        }

        fn replace(&mut self, slot: usize, entity: Dict) {
            let old = std::mem::replace(&mut self.entities[slot], Arc::new(entity));
            self.index.update(slot as u32, &old, &self.entities);
        }
    }

    fn fixture() -> Fixture {
        let mut fixture = Fixture {
            index: TagIndex::default(),
            entities: Vec::new(),
        };
        let e1 = || Value::from(Ref::from("e1"));
        fixture.push(entity(&["site"]));
        fixture.push(with(entity(&["point", "temp"]), "equipRef", e1()));
        fixture.push(with(
            entity(&["point", "temp", "sp"]),
            "equipRef",
            Value::from(Ref::from("e2")),
        ));
        fixture.push(with(entity(&["point", "flow"]), "equipRef", e1()));
        fixture
    }

    fn plan(fixture: &Fixture, text: &str) -> (Candidates<'static>, bool) {
        let filter = Filter::try_from(text).unwrap();
        let plan = fixture
            .index
            .plan(&Node::compile(&filter), &fixture.entities);
        let candidates = match plan.candidates {
            Candidates::All => Candidates::All,
            Candidates::Only(slots) => Candidates::Only(Cow::Owned(slots.into_owned())),
            Candidates::Except(slots) => Candidates::Except(Cow::Owned(slots.into_owned())),
        };
        (candidates, plan.exact)
    }

    fn only(slots: &[u32]) -> Candidates<'static> {
        Candidates::Only(Cow::Owned(slots.to_vec()))
    }

    fn except(slots: &[u32]) -> Candidates<'static> {
        Candidates::Except(Cow::Owned(slots.to_vec()))
    }

    #[test]
    fn and_of_markers_is_an_exact_intersection() {
        let fixture = fixture();
        assert_eq!(plan(&fixture, "point and temp"), (only(&[1, 2]), true));
        assert_eq!(plan(&fixture, "point and nothing"), (only(&[]), true));
    }

    #[test]
    fn missing_tags_subtract_and_or_unions() {
        let fixture = fixture();
        assert_eq!(plan(&fixture, "site or flow"), (only(&[0, 3]), true));
        assert_eq!(plan(&fixture, "point and not sp"), (only(&[1, 3]), true));
        assert_eq!(
            plan(&fixture, "point and (temp or flow)"),
            (only(&[1, 2, 3]), true)
        );
        assert_eq!(plan(&fixture, "not point"), (except(&[1, 2, 3]), true));
        assert_eq!(
            plan(&fixture, "site or not point"),
            (except(&[1, 2, 3]), true)
        );
    }

    #[test]
    fn equality_uses_value_postings_exactly() {
        let fixture = fixture();
        assert_eq!(plan(&fixture, "equipRef==@e1"), (only(&[1, 3]), true));
        assert_eq!(plan(&fixture, "equipRef==@e1 and temp"), (only(&[1]), true));
        assert_eq!(
            plan(&fixture, "equipRef==@nope and temp"),
            (only(&[]), true)
        );
        // Paths and orderings need the first tag; `^def` needs evaluation.
        assert_eq!(plan(&fixture, "equipRef->ahu"), (only(&[]), true));
        assert_eq!(plan(&fixture, "equipRef!=@e1"), (only(&[1, 2, 3]), false));
        assert_eq!(plan(&fixture, "curVal < 3"), (only(&[]), true));
        assert_eq!(plan(&fixture, "^point"), (Candidates::All, false));
    }

    #[test]
    fn paths_resolve_backwards_from_their_targets() {
        let mut fixture = fixture();
        let id = |id: &str| Value::from(Ref::from(id));
        fixture.push(with(
            with(entity(&["equip", "ahu"]), "id", id("e1")),
            "siteRef",
            id("s"),
        ));
        fixture.push(with(entity(&["equip"]), "id", id("e2")));
        fixture.push(with(
            Dict::new(),
            "equipRef",
            Value::make_dict(entity(&["ahu"])),
        ));
        // Points of e1 (the ahu), and the dict that may hold the rest of the path.
        assert_eq!(plan(&fixture, "equipRef->ahu"), (only(&[1, 3, 6]), false));
        assert_eq!(
            plan(&fixture, "equipRef->siteRef==@s"),
            (only(&[1, 3, 6]), false)
        );
        assert_eq!(
            plan(&fixture, "equipRef->equip"),
            (only(&[1, 2, 3, 6]), false)
        );
        assert_eq!(plan(&fixture, "equipRef->siteRef==@x"), (only(&[6]), false));
        // Without a dict (or list) among the sources, the plan is exact.
        fixture.replace(6, with(Dict::new(), "equipRef", id("e2")));
        assert_eq!(plan(&fixture, "equipRef->ahu"), (only(&[1, 3]), true));
        assert_eq!(
            plan(&fixture, "equipRef->equip"),
            (only(&[1, 2, 3, 6]), true)
        );
        assert_eq!(plan(&fixture, "equipRef->siteRef==@x"), (only(&[]), true));
    }

    #[test]
    fn number_orderings_use_the_ordered_numbers_of_their_unit() {
        let mut fixture = fixture();
        let f = |value: f64| Value::from(Number::make_with_unit(value, get_unit_or_default("°F")));
        fixture.push(with(entity(&["point"]), "curVal", f(68.0)));
        fixture.push(with(entity(&["point"]), "curVal", f(72.5)));
        fixture.push(with(
            entity(&["point"]),
            "curVal",
            Value::from(Number::make(80.0)),
        ));
        fixture.push(with(
            entity(&["point"]),
            "curVal",
            Value::make_list(vec![f(-0.0), f(90.0)]),
        ));
        assert_eq!(plan(&fixture, "curVal > 70°F"), (only(&[5, 7]), true));
        assert_eq!(plan(&fixture, "curVal >= 72.5°F"), (only(&[5, 7]), true));
        assert_eq!(plan(&fixture, "curVal < 72.5°F"), (only(&[4, 7]), true));
        assert_eq!(plan(&fixture, "curVal <= 0°F"), (only(&[7]), true));
        assert_eq!(plan(&fixture, "curVal > 70"), (only(&[6]), true));
        assert_eq!(plan(&fixture, "curVal > 70°C"), (only(&[]), true));
        // A write moves the number.
        fixture.replace(4, with(entity(&["point"]), "curVal", f(75.0)));
        assert_eq!(plan(&fixture, "curVal > 70°F"), (only(&[4, 5, 7]), true));
        assert_eq!(plan(&fixture, "site and curVal > 70°F"), (only(&[]), true));
        // With far fewer other candidates than numbers, the ordering is
        // evaluated instead of collected.
        for value in 0..32 {
            fixture.push(with(Dict::new(), "curVal", f(f64::from(value))));
        }
        assert_eq!(
            plan(&fixture, "site and curVal > 70°F"),
            (only(&[0]), false)
        );
    }

    #[test]
    fn updates_move_only_the_changed_postings() {
        let mut fixture = fixture();
        fixture.replace(
            3,
            with(entity(&["point"]), "equipRef", Value::from(Ref::from("e2"))),
        );
        assert_eq!(fixture.index.postings("flow"), &[] as &[u32]);
        assert_eq!(fixture.index.postings("point"), &[1, 2, 3]);
        assert_eq!(plan(&fixture, "equipRef==@e2"), (only(&[2, 3]), true));
        assert_eq!(plan(&fixture, "equipRef==@e1"), (only(&[1]), true));
    }

    #[test]
    fn a_collision_makes_a_key_mixed_and_its_slots_candidates() {
        let mut fixture = fixture();
        let a = Value::make_str("a");
        let b = Value::make_str("b");
        fixture.push(with(Dict::new(), "dis", a.clone()));
        fixture.push(with(Dict::new(), "dis", b.clone()));
        // File b's slot under a's key, as a collision would.
        let key = fixture.index.keyer.key(&a).unwrap();
        let keys: Keys<'_> = [(key, &b)].into_iter().collect();
        let TagIndex { tags, keyer } = &mut fixture.index;
        let dis = tags.get_mut("dis").unwrap();
        insert_key(keyer, dis, key, 5, "dis", &keys, &fixture.entities);
        assert!(matches!(dis.values.get(&key), Some(Postings::Mixed(_))));
        assert_eq!(plan(&fixture, "dis==\"a\""), (only(&[4, 5]), false));
        // A lookup whose value only shares its key with others finds nothing.
        let key_b = fixture.index.keyer.key(&b).unwrap();
        let dis = fixture.index.tags.get_mut("dis").unwrap();
        dis.values.insert(key_b, Postings::One(4));
        assert_eq!(plan(&fixture, "dis==\"b\""), (only(&[]), true));
    }

    #[test]
    fn number_keys_follow_number_equality() {
        let keyer = Keyer::default();
        let key = |value: Value| keyer.key(&value);
        let number = |value: f64, unit: Option<&str>| {
            Value::from(match unit {
                Some(unit) => Number::make_with_unit(value, get_unit_or_default(unit)),
                None => Number::make(value),
            })
        };
        assert_eq!(key(number(0.0, None)), key(number(-0.0, None)));
        assert_ne!(key(number(1.0, Some("°F"))), key(number(1.0, None)));
        assert_ne!(key(number(1.0, Some("°F"))), key(number(1.0, Some("°C"))));
        assert_eq!(key(number(f64::NAN, None)), None);
        // A Ref's dis is not part of its identity; kinds never share a key.
        assert_eq!(
            key(Value::from(Ref::from("a"))),
            key(Value::from(Ref::make("a", Some("A"))))
        );
        assert_ne!(key(Value::make_str("a")), key(Value::from(Ref::from("a"))));
    }
}
