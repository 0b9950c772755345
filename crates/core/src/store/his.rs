//! History series: samples sorted by time, merged on write.

use chrono::TimeZone;
use chrono_tz::Tz;
use libhaystack::val::{DateTime, Value};

/// One stored sample: epoch milliseconds and a value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sample {
    pub(crate) ts: i64,
    pub(crate) val: Value,
}

/// A point's history, sorted by `ts`, one sample per timestamp.
#[derive(Debug, Clone, Default)]
pub(super) struct Series {
    samples: Vec<Sample>,
}

impl Series {
    /// Build from samples in any order; a later duplicate timestamp wins.
    pub(super) fn from_unsorted(samples: Vec<Sample>) -> Self {
        let mut series = Series::default();
        series.merge(samples);
        series
    }

    /// Merge `new` samples; on equal timestamps the new sample replaces the
    /// stored one, and among new ones the last wins.
    pub(super) fn merge(&mut self, mut new: Vec<Sample>) {
        new.reverse();
        // Stable sort of the reversed list keeps the last-written first among equals.
        new.sort_by_key(|sample| sample.ts);
        new.dedup_by_key(|sample| sample.ts);
        let appends = self
            .samples
            .last()
            .is_none_or(|last| new.first().is_none_or(|first| first.ts > last.ts));
        if appends {
            self.samples.extend(new);
            return;
        }
        let old = std::mem::take(&mut self.samples);
        let mut merged = Vec::with_capacity(old.len() + new.len());
        let mut old = old.into_iter().peekable();
        let mut new = new.into_iter().peekable();
        loop {
            match (old.peek(), new.peek()) {
                (Some(a), Some(b)) if a.ts < b.ts => merged.extend(old.next()),
                (Some(a), Some(b)) if a.ts == b.ts => {
                    old.next();
                    merged.extend(new.next());
                }
                (_, Some(_)) => merged.extend(new.next()),
                (Some(_), None) => merged.extend(old.next()),
                (None, None) => break,
            }
        }
        self.samples = merged;
    }

    /// Samples with `start <= ts < end` (epoch milliseconds).
    pub(super) fn range(&self, start: i64, end: i64) -> &[Sample] {
        let from = self.samples.partition_point(|sample| sample.ts < start);
        let to = self.samples.partition_point(|sample| sample.ts < end);
        &self.samples[from..to.max(from)]
    }

    pub(super) fn last(&self) -> Option<&Sample> {
        self.samples.last()
    }

    pub(super) fn len(&self) -> usize {
        self.samples.len()
    }
}

/// A Haystack DateTime for epoch milliseconds in `tz`.
pub(super) fn datetime(ts: i64, tz: Tz) -> DateTime {
    DateTime::from(tz.timestamp_millis_opt(ts).single().unwrap_or_else(|| {
        // Only out-of-range instants land here; clamp to the epoch.
        tz.from_utc_datetime(&chrono::DateTime::UNIX_EPOCH.naive_utc())
    }))
}

/// Epoch milliseconds of a Haystack DateTime.
pub(super) fn millis(ts: &DateTime) -> i64 {
    ts.timestamp_millis()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sample(ts: i64, val: f64) -> Sample {
        Sample {
            ts,
            val: Value::make_number(val),
        }
    }

    #[test]
    fn merge_sorts_replaces_and_appends() {
        let mut series =
            Series::from_unsorted(vec![sample(3, 3.0), sample(1, 1.0), sample(1, 1.5)]);
        assert_eq!(
            series.range(i64::MIN, i64::MAX),
            &[sample(1, 1.5), sample(3, 3.0)]
        );
        series.merge(vec![sample(5, 5.0)]);
        series.merge(vec![sample(2, 2.0), sample(3, 30.0)]);
        assert_eq!(
            series.range(i64::MIN, i64::MAX),
            &[
                sample(1, 1.5),
                sample(2, 2.0),
                sample(3, 30.0),
                sample(5, 5.0)
            ]
        );
        assert_eq!(series.range(2, 5), &[sample(2, 2.0), sample(3, 30.0)]);
        assert_eq!(series.range(6, 9), &[] as &[Sample]);
        assert_eq!(series.range(5, 2), &[] as &[Sample]);
    }
}
