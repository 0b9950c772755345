//! Priority arrays of writable points: 17 levels, the lowest set level wins.

use chrono::Utc;
use libhaystack::val::{Dict, Number, Value};

use crate::ops::PRIORITY_LEVELS;

/// One written level.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct LevelWrite {
    pub(super) val: Value,
    pub(super) who: Option<String>,
    /// When the write lapses; `None` for never.
    pub(super) expires: Option<chrono::DateTime<Utc>>,
}

/// A point's priority array; index 0 is level 1.
#[derive(Debug, Clone, Default)]
pub(super) struct PriorityArray {
    levels: [Option<LevelWrite>; PRIORITY_LEVELS as usize],
}

impl PriorityArray {
    /// Set (`Some`) or release (`None`) `level` (1..=17).
    pub(super) fn set(&mut self, level: u8, write: Option<LevelWrite>) {
        if let Some(slot) = self.levels.get_mut(usize::from(level).wrapping_sub(1)) {
            *slot = write;
        }
    }

    /// Release every level whose duration lapsed at `now`; true if any did.
    pub(super) fn expire(&mut self, now: chrono::DateTime<Utc>) -> bool {
        let mut changed = false;
        for slot in &mut self.levels {
            if slot
                .as_ref()
                .is_some_and(|write| write.expires.is_some_and(|at| at <= now))
            {
                *slot = None;
                changed = true;
            }
        }
        changed
    }

    /// The earliest pending expiry.
    pub(super) fn next_expiry(&self) -> Option<chrono::DateTime<Utc>> {
        self.levels
            .iter()
            .flatten()
            .filter_map(|write| write.expires)
            .min()
    }

    /// The winning level and its write: the lowest level set.
    pub(super) fn winner(&self) -> Option<(u8, &LevelWrite)> {
        self.levels
            .iter()
            .zip(1u8..)
            .find_map(|(slot, level)| slot.as_ref().map(|write| (level, write)))
    }

    /// The 17 rows of the pointWrite read-array response.
    pub(super) fn rows(&self) -> Vec<Dict> {
        self.levels
            .iter()
            .zip(1u8..)
            .map(|(slot, level)| {
                let mut row = Dict::new();
                row.insert("level".into(), Value::from(Number::make(f64::from(level))));
                row.insert("levelDis".into(), Value::make_str(&level_dis(level)));
                if let Some(write) = slot {
                    row.insert("val".into(), write.val.clone());
                    if let Some(who) = &write.who {
                        row.insert("who".into(), Value::make_str(who));
                    }
                    if let Some(expires) = write.expires {
                        row.insert(
                            "expires".into(),
                            Value::from(libhaystack::val::DateTime::from(expires)),
                        );
                    }
                }
                row
            })
            .collect()
    }

    /// Apply the winner to a point's tags (`writeVal`, `writeLevel`, `curVal`).
    pub(super) fn apply(&self, entity: &mut Dict) {
        match self.winner() {
            Some((level, write)) => {
                entity.insert("writeVal".into(), write.val.clone());
                entity.insert(
                    "writeLevel".into(),
                    Value::from(Number::make(f64::from(level))),
                );
                entity.insert("curVal".into(), write.val.clone());
            }
            None => {
                if entity.remove("writeLevel").is_some() {
                    entity.remove("curVal");
                }
                entity.remove("writeVal");
            }
        }
    }
}

fn level_dis(level: u8) -> String {
    match level {
        1 => "1 (emergency)".to_owned(),
        8 => "8 (manual operator)".to_owned(),
        17 => "17 (default)".to_owned(),
        other => other.to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn write(val: f64) -> Option<LevelWrite> {
        Some(LevelWrite {
            val: Value::make_number(val),
            who: None,
            expires: None,
        })
    }

    #[test]
    fn lowest_level_wins_and_release_falls_back() {
        let mut array = PriorityArray::default();
        assert!(array.winner().is_none());
        array.set(17, write(70.0));
        array.set(8, write(72.0));
        assert_eq!(array.winner().map(|(level, _)| level), Some(8));
        array.set(8, None);
        assert_eq!(array.winner().map(|(level, _)| level), Some(17));
        assert_eq!(array.rows().len(), 17);
        let mut entity = Dict::new();
        array.apply(&mut entity);
        assert_eq!(entity.get("curVal"), Some(&Value::make_number(70.0)));
        array.set(17, None);
        array.apply(&mut entity);
        assert!(entity.get("curVal").is_none());
    }
}
