//! One tag's values in order, for `<`, `<=`, `>` and `>=`.
//!
//! Only values of one kind compare (and Numbers of one unit), so each
//! [`Class`] keeps its own ordered set of `(order key, slot)`. An order key
//! is a `u64` that never orders two values against their own order
//! (`a < b` implies `key(a) <= key(b)`). For Numbers, Dates and Times the
//! key is exact (`a < b` exactly when `key(a) < key(b)`); a Str keys on its
//! first 8 bytes and a DateTime on its UTC second, so values that share the
//! boundary's key are candidates only.

use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;

use chrono::{Datelike, Timelike};
use libhaystack::filter::nodes::CmpOp;
use libhaystack::units::Unit;
use libhaystack::val::Value;

/// A kind of value that orders; values of different classes never compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Class {
    Number(Option<&'static Unit>),
    Str,
    Date,
    Time,
    DateTime,
}

impl Class {
    /// True when equal keys mean equal values.
    fn keys_exactly(self) -> bool {
        matches!(self, Class::Number(_) | Class::Date | Class::Time)
    }
}

/// The class and order key of a scalar; `None` when it does not order
/// (another kind, or a Number NaN).
fn order_of(value: &Value) -> Option<(Class, u64)> {
    Some(match value {
        Value::Number(number) => (Class::Number(number.unit), float_key(number.value)?),
        Value::Str(text) => {
            let mut prefix = [0u8; 8];
            let bytes = text.value().as_bytes();
            let len = bytes.len().min(8);
            prefix[..len].copy_from_slice(&bytes[..len]);
            (Class::Str, u64::from_be_bytes(prefix))
        }
        Value::Date(date) => (Class::Date, signed_key(i64::from(date.num_days_from_ce()))),
        // Leap seconds carry nanos past 10^9: keep seconds and nanos apart.
        Value::Time(time) => (
            Class::Time,
            u64::from(time.num_seconds_from_midnight()) << 32 | u64::from(time.nanosecond()),
        ),
        Value::DateTime(datetime) => (Class::DateTime, signed_key(datetime.timestamp())),
        _ => return None,
    })
}

/// True when values of `value`'s kind are kept in order.
pub(super) fn orders(value: &Value) -> bool {
    matches!(
        value,
        Value::Number(_) | Value::Str(_) | Value::Date(_) | Value::Time(_) | Value::DateTime(_)
    )
}

/// A key that orders as the float does (`-0.0` as `0.0`); `None` for NaN.
fn float_key(value: f64) -> Option<u64> {
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

/// A key that orders as the signed integer does.
fn signed_key(value: i64) -> u64 {
    u64::from_be_bytes(value.to_be_bytes()) ^ 1 << 63
}

/// A tag's orderable values. See the [module docs](self).
#[derive(Debug, Default)]
pub(super) struct Ordered {
    classes: HashMap<Class, BTreeSet<(u64, u32)>>,
}

impl Ordered {
    /// File `slot` under the scalar `value`, if it orders.
    pub(super) fn insert(&mut self, value: &Value, slot: u32) {
        if let Some((class, key)) = order_of(value) {
            self.classes.entry(class).or_default().insert((key, slot));
        }
    }

    /// Remove `slot` from under the scalar `value`.
    pub(super) fn remove(&mut self, value: &Value, slot: u32) {
        let Some((class, key)) = order_of(value) else {
            return;
        };
        if let Some(set) = self.classes.get_mut(&class) {
            set.remove(&(key, slot));
            if set.is_empty() {
                self.classes.remove(&class);
            }
        }
    }

    /// The sorted slots whose value may compare `op` to `value`, and whether
    /// they all do; `None` for an equality or a value that does not order.
    pub(super) fn range(&self, op: &CmpOp, value: &Value) -> Option<(Vec<u32>, bool)> {
        if matches!(op, CmpOp::Eq | CmpOp::NotEq) {
            return None;
        }
        let Some((class, key)) = order_of(value) else {
            // NaN orders against nothing; other kinds are not kept here.
            return matches!(value, Value::Number(_)).then(|| (Vec::new(), true));
        };
        let Some(set) = self.classes.get(&class) else {
            return Some((Vec::new(), true));
        };
        let exact = class.keys_exactly();
        // With inexact keys the boundary's own key holds candidates either way.
        let (low, high) = match op {
            CmpOp::LessThan if exact => (Bound::Unbounded, Bound::Excluded((key, 0))),
            CmpOp::GreatThan if exact => (Bound::Excluded((key, u32::MAX)), Bound::Unbounded),
            CmpOp::LessThan | CmpOp::LessThanEq => {
                (Bound::Unbounded, Bound::Included((key, u32::MAX)))
            }
            _ => (Bound::Included((key, 0)), Bound::Unbounded),
        };
        let mut on_boundary = false;
        let mut slots: Vec<u32> = set
            .range((low, high))
            .map(|(held, slot)| {
                on_boundary |= *held == key;
                *slot
            })
            .collect();
        slots.sort_unstable();
        slots.dedup();
        Some((slots, exact || !on_boundary))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::str::FromStr;

    use libhaystack::val::{Date, DateTime, Number, Time};

    use super::*;

    fn keys(values: &[Value]) -> Vec<(Class, u64)> {
        values
            .iter()
            .map(|value| order_of(value).unwrap())
            .collect()
    }

    #[test]
    fn keys_follow_each_kinds_order() {
        let numbers = [-1e300, -2.5, -0.0, 0.0, 1e-300, 3.0, f64::INFINITY];
        let numbers: Vec<Value> = numbers.iter().map(|n| Number::make(*n).into()).collect();
        let strs: Vec<Value> = ["", "a", "a\u{0}", "ab", "temperature", "temperaturf", "é"]
            .iter()
            .map(|text| Value::make_str(text))
            .collect();
        let dates: Vec<Value> = ["0001-01-01", "1969-12-31", "1970-01-01", "2024-02-29"]
            .iter()
            .map(|text| Date::from_str(text).unwrap().into())
            .collect();
        let times: Vec<Value> = ["00:00:00", "00:00:00.000000001", "12:59:59.999", "23:59:59"]
            .iter()
            .map(|text| Time::from_str(text).unwrap().into())
            .collect();
        let datetimes: Vec<Value> = [
            "1900-01-01T00:00:00Z",
            "2024-01-01T00:00:00+01:00",
            "2024-01-01T00:00:00Z",
            "2024-01-01T00:00:00.5Z",
        ]
        .iter()
        .map(|text| DateTime::from_str(text).unwrap().into())
        .collect();
        for values in [numbers, strs, dates, times, datetimes] {
            for pair in values.windows(2) {
                assert!(pair[0] <= pair[1], "{pair:?}");
                let keys = keys(pair);
                assert_eq!(keys[0].0, keys[1].0);
                assert!(keys[0].1 <= keys[1].1, "{pair:?}");
                if keys[0].0.keys_exactly() && pair[0] < pair[1] {
                    assert!(keys[0].1 < keys[1].1, "{pair:?}");
                }
            }
        }
    }

    #[test]
    fn strings_sharing_the_boundary_prefix_are_candidates() {
        let mut ordered = Ordered::default();
        for (slot, text) in ["temperature-1", "temperature-2", "a", "z"]
            .iter()
            .enumerate()
        {
            ordered.insert(&Value::make_str(text), slot as u32);
        }
        let below = ordered
            .range(&CmpOp::LessThan, &Value::make_str("temperature-2"))
            .unwrap();
        assert_eq!(below, (vec![0, 1, 2], false));
        let above = ordered
            .range(&CmpOp::GreatThan, &Value::make_str("u"))
            .unwrap();
        assert_eq!(above, (vec![3], true));
    }

    #[test]
    fn numbers_of_other_units_and_nan_match_nothing() {
        let mut ordered = Ordered::default();
        ordered.insert(&Number::make(1.0).into(), 0);
        let fahrenheit = Number::make_with_unit(0.0, libhaystack::units::get_unit_or_default("°F"));
        assert_eq!(
            ordered.range(&CmpOp::GreatThan, &fahrenheit.into()),
            Some((vec![], true))
        );
        assert_eq!(
            ordered.range(&CmpOp::GreatThan, &Number::make(f64::NAN).into()),
            Some((vec![], true))
        );
        assert_eq!(
            ordered.range(&CmpOp::GreatThanEq, &Number::make(1.0).into()),
            Some((vec![0], true))
        );
        assert_eq!(ordered.range(&CmpOp::Eq, &Number::make(1.0).into()), None);
        assert_eq!(
            ordered.range(&CmpOp::LessThan, &Value::make_bool(true)),
            None
        );
    }
}
