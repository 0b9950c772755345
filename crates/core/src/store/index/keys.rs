//! Value keys (keyed hashes that follow `==`) and the postings under them.

use std::hash::{BuildHasher, Hash, Hasher, RandomState};
use std::sync::Arc;

use libhaystack::val::{Dict, Value};
use smallvec::SmallVec;

/// Computes value keys.
#[derive(Debug)]
pub(super) struct Keyer {
    hashes: RandomState,
    /// All ones; tests keep a few bits to make keys collide.
    pub(super) mask: u64,
}

impl Default for Keyer {
    fn default() -> Self {
        Self {
            hashes: RandomState::new(),
            mask: u64::MAX,
        }
    }
}

impl Keyer {
    /// The key of `value`, when its kind is indexed.
    pub(super) fn key(&self, value: &Value) -> Option<u64> {
        let mut hasher = self.hashes.build_hasher();
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
    pub(super) fn keys_of<'v>(&self, value: &'v Value, keys: &mut Keys<'v>) {
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
    pub(super) fn holds(
        &self,
        entities: &[Arc<Dict>],
        slot: u32,
        tag: &str,
        key: u64,
        value: &Value,
    ) -> bool {
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
pub(super) enum Postings {
    One(u32),
    Many(Vec<u32>),
    /// Values that are not all equal share this key (a hash collision).
    Mixed(Vec<u32>),
}

impl Postings {
    pub(super) fn as_slice(&self) -> &[u32] {
        match self {
            Postings::One(slot) => std::slice::from_ref(slot),
            Postings::Many(slots) | Postings::Mixed(slots) => slots,
        }
    }

    pub(super) fn insert(&mut self, slot: u32) {
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

    pub(super) fn mark_mixed(&mut self) {
        let slots = match self {
            Postings::One(only) => vec![*only],
            Postings::Many(slots) | Postings::Mixed(slots) => std::mem::take(slots),
        };
        *self = Postings::Mixed(slots);
    }

    /// Remove `slot`; true when no slot is left.
    pub(super) fn remove(&mut self, slot: u32) -> bool {
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

pub(super) fn insert_sorted(slots: &mut Vec<u32>, slot: u32) {
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
pub(super) struct KeyHasher(u64);

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
pub(super) type Keys<'v> = SmallVec<[(u64, &'v Value); 2]>;
