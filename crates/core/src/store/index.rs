//! The store's indexes, and filter planning over them.
//!
//! - Presence: tag name → sorted slots of the entities that have the tag
//!   (any non-null value).
//! - Values: `(tag, value)` → sorted slots of the entities whose tag holds
//!   the value (or a list holding it), for every tag whose value is a Ref,
//!   Str, Number, Bool, Symbol, Uri, Date, Time or DateTime. The key is a
//!   keyed 64-bit hash of the tag and the value, built so that values equal
//!   under the filter's `==` (libhaystack's `Value` equality: a Number's
//!   value and unit, a Ref's id without its dis) hash alike; a Number NaN
//!   equals nothing and is not indexed. Hashes may collide, so the slots of
//!   an equality are candidates, confirmed by evaluating the filter.
//!
//! Both are kept up to date by [`TagIndex::add`] (a new entity) and
//! [`TagIndex::update`] (a changed one: only the tags that changed are
//! touched, so a `curVal` write costs two small postings edits).

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher, RandomState};

use libhaystack::filter::PathResolver;
use libhaystack::filter::nodes::CmpOp;
use libhaystack::filter::path::Path;
use libhaystack::val::{Dict, Ref, Value};
use smallvec::SmallVec;

use super::query::Node;

/// The store's indexes. See the [module docs](self).
#[derive(Debug, Default)]
pub(super) struct TagIndex {
    tags: HashMap<String, Vec<u32>>,
    values: HashMap<u64, Postings, BuildHasherDefault<KeyHasher>>,
    keys: RandomState,
}

/// Sorted slots; one slot (the usual case for ids, names and readings) kept inline.
#[derive(Debug)]
enum Postings {
    One(u32),
    Many(Vec<u32>),
}

impl Postings {
    fn as_slice(&self) -> &[u32] {
        match self {
            Postings::One(slot) => std::slice::from_ref(slot),
            Postings::Many(slots) => slots,
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
            Postings::Many(slots) => insert_sorted(slots, slot),
        }
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

/// The keys of one tag's value: one per indexable scalar (list items each).
type Keys = SmallVec<[u64; 2]>;

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
    /// Index a new entity at `slot`.
    pub(super) fn add(&mut self, slot: u32, entity: &Dict) {
        for (name, value) in entity.iter() {
            self.add_tag(slot, name, value);
        }
    }

    /// The entity at `slot` changed from `old` to `new`: re-index the tags that differ.
    pub(super) fn update(&mut self, slot: u32, old: &Dict, new: &Dict) {
        for (name, old_value) in old.iter() {
            match new.get(name) {
                Some(new_value) if new_value == old_value => {}
                Some(new_value) => self.change_tag(slot, name, old_value, new_value),
                None => self.remove_tag(slot, name, old_value),
            }
        }
        for (name, new_value) in new.iter() {
            if !old.contains_key(name) {
                self.add_tag(slot, name, new_value);
            }
        }
    }

    /// Slots of the entities that have `tag`.
    pub(super) fn postings(&self, tag: &str) -> &[u32] {
        self.tags.get(tag).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Slots of the entities whose `tag` may equal `value`; `None` when the
    /// value's kind is not indexed.
    fn equal(&self, tag: &str, value: &Value) -> Option<&[u32]> {
        let key = self.key(tag, value)?;
        Some(self.values.get(&key).map_or(&[], Postings::as_slice))
    }

    fn add_tag(&mut self, slot: u32, name: &str, value: &Value) {
        if value.is_null() {
            return;
        }
        match self.tags.get_mut(name) {
            Some(slots) => insert_sorted(slots, slot),
            None => {
                self.tags.insert(name.to_owned(), vec![slot]);
            }
        }
        let mut keys = Keys::new();
        self.keys_of(name, value, &mut keys);
        for key in keys {
            self.insert_key(key, slot);
        }
    }

    fn remove_tag(&mut self, slot: u32, name: &str, value: &Value) {
        if let Some(slots) = self.tags.get_mut(name) {
            if let Ok(position) = slots.binary_search(&slot) {
                slots.remove(position);
            }
            if slots.is_empty() {
                self.tags.remove(name);
            }
        }
        let mut keys = Keys::new();
        self.keys_of(name, value, &mut keys);
        for key in keys {
            self.remove_key(key, slot);
        }
    }

    fn change_tag(&mut self, slot: u32, name: &str, old: &Value, new: &Value) {
        if old.is_null() || new.is_null() {
            self.remove_tag(slot, name, old);
            self.add_tag(slot, name, new);
            return;
        }
        let (mut old_keys, mut new_keys) = (Keys::new(), Keys::new());
        self.keys_of(name, old, &mut old_keys);
        self.keys_of(name, new, &mut new_keys);
        for key in &old_keys {
            if !new_keys.contains(key) {
                self.remove_key(*key, slot);
            }
        }
        for key in &new_keys {
            if !old_keys.contains(key) {
                self.insert_key(*key, slot);
            }
        }
    }

    fn insert_key(&mut self, key: u64, slot: u32) {
        self.values
            .entry(key)
            .and_modify(|postings| postings.insert(slot))
            .or_insert(Postings::One(slot));
    }

    fn remove_key(&mut self, key: u64, slot: u32) {
        if let Some(postings) = self.values.get_mut(&key) {
            if postings.remove(slot) {
                self.values.remove(&key);
            }
        }
    }

    /// The key of `tag == value`, when `value`'s kind is indexed.
    fn key(&self, tag: &str, value: &Value) -> Option<u64> {
        let mut hasher = self.keys.build_hasher();
        tag.hash(&mut hasher);
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
        Some(hasher.finish())
    }

    /// The keys of `tag`'s `value`: a list's items (at any depth) each have one,
    /// as `==` matches a list holding the value.
    fn keys_of(&self, tag: &str, value: &Value, keys: &mut Keys) {
        match value {
            Value::List(items) => {
                for item in items {
                    self.keys_of(tag, item, keys);
                }
            }
            scalar => {
                if let Some(key) = self.key(tag, scalar) {
                    if !keys.contains(&key) {
                        keys.push(key);
                    }
                }
            }
        }
    }

    /// Plan a compiled filter: each `and` intersects its terms' postings from
    /// the shortest and subtracts its missing tags; each `or` unions. A term
    /// the indexes cannot answer exactly (an equality, a comparison, a path,
    /// `^def`…) narrows what it can and leaves the rest to evaluation.
    pub(super) fn plan<'i>(&'i self, node: &Node<'_>) -> Plan<'i> {
        match node {
            Node::Or(branches) => self.plan_or(branches),
            Node::And(terms) => self.plan_and(terms),
            Node::Has(path) => Plan::new(
                Candidates::Only(Cow::Borrowed(self.postings(first(path)))),
                path.len() == 1,
            ),
            Node::Missing(path) if path.len() == 1 => Plan::new(
                Candidates::Except(Cow::Borrowed(self.postings(first(path)))),
                true,
            ),
            Node::Missing(_) | Node::Other(_) => Plan::new(Candidates::All, false),
            Node::Cmp { path, op, value } => {
                // Any comparison needs the path's first tag (one against a
                // missing tag is false); an equality on a single tag has postings.
                let slots = match (op, path.as_slice()) {
                    (CmpOp::Eq, [tag]) => self.equal(tag, value),
                    _ => None,
                }
                .unwrap_or_else(|| self.postings(first(path)));
                Plan::new(Candidates::Only(Cow::Borrowed(slots)), false)
            }
        }
    }

    fn plan_and<'i>(&'i self, terms: &[Node<'_>]) -> Plan<'i> {
        let mut only: Vec<Cow<'i, [u32]>> = Vec::new();
        let mut except: Vec<Cow<'i, [u32]>> = Vec::new();
        let mut exact = true;
        for term in terms {
            let plan = self.plan(term);
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

    fn plan_or<'i>(&'i self, branches: &[Node<'_>]) -> Plan<'i> {
        if let [single] = branches {
            return self.plan(single);
        }
        let mut only: Vec<Cow<'i, [u32]>> = Vec::new();
        let mut except: Option<Cow<'i, [u32]>> = None;
        let mut exact = true;
        for branch in branches {
            let plan = self.plan(branch);
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

    fn index() -> TagIndex {
        let mut index = TagIndex::default();
        index.add(0, &entity(&["site"]));
        index.add(
            1,
            &with(
                entity(&["point", "temp"]),
                "equipRef",
                Ref::from("e1").into(),
            ),
        );
        index.add(
            2,
            &with(
                entity(&["point", "temp", "sp"]),
                "equipRef",
                Ref::from("e2").into(),
            ),
        );
        index.add(
            3,
            &with(
                entity(&["point", "flow"]),
                "equipRef",
                Ref::from("e1").into(),
            ),
        );
        index
    }

    fn plan(index: &TagIndex, text: &str) -> (Candidates<'static>, bool) {
        let filter = Filter::try_from(text).unwrap();
        let plan = index.plan(&Node::compile(&filter));
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

    #[test]
    fn and_of_markers_is_an_exact_intersection() {
        let index = index();
        assert_eq!(plan(&index, "point and temp"), (only(&[1, 2]), true));
        assert_eq!(plan(&index, "point and nothing"), (only(&[]), true));
    }

    #[test]
    fn missing_tags_subtract_and_or_unions() {
        let index = index();
        assert_eq!(plan(&index, "site or flow"), (only(&[0, 3]), true));
        assert_eq!(plan(&index, "point and not sp"), (only(&[1, 3]), true));
        assert_eq!(
            plan(&index, "point and (temp or flow)"),
            (only(&[1, 2, 3]), true)
        );
        assert_eq!(
            plan(&index, "not point"),
            (Candidates::Except(Cow::Owned(vec![1, 2, 3])), true)
        );
        assert_eq!(
            plan(&index, "site or not point"),
            (Candidates::Except(Cow::Owned(vec![1, 2, 3])), true)
        );
    }

    #[test]
    fn equality_uses_value_postings_and_is_evaluated() {
        let index = index();
        assert_eq!(plan(&index, "equipRef==@e1"), (only(&[1, 3]), false));
        assert_eq!(plan(&index, "equipRef==@e1 and temp"), (only(&[1]), false));
        assert_eq!(plan(&index, "equipRef==@nope and temp"), (only(&[]), true));
        // Paths and orderings need the first tag; `^def` needs evaluation.
        assert_eq!(plan(&index, "equipRef->ahu"), (only(&[1, 2, 3]), false));
        assert_eq!(plan(&index, "curVal < 3"), (only(&[]), true));
        assert_eq!(plan(&index, "^point"), (Candidates::All, false));
    }

    #[test]
    fn updates_move_only_the_changed_postings() {
        let mut index = index();
        let old = with(
            entity(&["point", "flow"]),
            "equipRef",
            Ref::from("e1").into(),
        );
        let new = with(entity(&["point"]), "equipRef", Ref::from("e2").into());
        index.update(3, &old, &new);
        assert_eq!(index.postings("flow"), &[] as &[u32]);
        assert_eq!(index.postings("point"), &[1, 2, 3]);
        assert_eq!(plan(&index, "equipRef==@e2"), (only(&[2, 3]), false));
        assert_eq!(plan(&index, "equipRef==@e1"), (only(&[1]), false));
    }

    #[test]
    fn number_keys_follow_number_equality() {
        let key = |value: Value| TagIndex::default().key("t", &value);
        let index = TagIndex::default();
        let number = |value: f64, unit: Option<&str>| {
            Value::from(match unit {
                Some(unit) => Number::make_with_unit(value, get_unit_or_default(unit)),
                None => Number::make(value),
            })
        };
        assert_eq!(
            index.key("t", &number(0.0, None)),
            index.key("t", &number(-0.0, None))
        );
        assert_ne!(
            index.key("t", &number(1.0, Some("°F"))),
            index.key("t", &number(1.0, None))
        );
        assert_ne!(
            index.key("t", &number(1.0, Some("°F"))),
            index.key("t", &number(1.0, Some("°C")))
        );
        assert_eq!(key(number(f64::NAN, None)), None);
        // A Ref's dis is not part of its identity.
        assert_eq!(
            index.key("t", &Value::from(Ref::from("a"))),
            index.key("t", &Value::from(Ref::make("a", Some("A"))))
        );
        assert_ne!(
            index.key("t", &Value::make_str("a")),
            index.key("t", &Value::from(Ref::from("a")))
        );
    }
}
