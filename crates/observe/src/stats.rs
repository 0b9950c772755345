use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use super::MetricsObserver;
use super::labels::{ERROR_SLOTS, OP_SLOTS, error_label, error_slot, op_label, op_slot};

/// A log-linear latency histogram of nanoseconds on atomic buckets.
///
/// Values below 32 ns have a bucket each (exact). Above, each power of two
/// `[2^e, 2^(e+1))` is split into 32 equal buckets, so a bucket's width is at
/// most 1/32 of its lower bound. A percentile reports its bucket's midpoint,
/// which is within 1/64 (1.5625 %) of the true value. Values of 2^40 ns
/// (about 18 minutes) and more share the last bucket; `max` is exact.
struct Histogram {
    buckets: Box<[AtomicU64]>,
    sum_nanos: AtomicU64,
    max_nanos: AtomicU64,
}

const SUB_BITS: u32 = 5;
const SUB: u64 = 1 << SUB_BITS;
const MAX_EXP: u32 = 40;
const BUCKETS: usize = (SUB + (MAX_EXP - SUB_BITS) as u64 * SUB) as usize;

fn bucket_index(nanos: u64) -> usize {
    let v = nanos.min((1 << MAX_EXP) - 1);
    if v < SUB {
        return v as usize;
    }
    let exp = 63 - v.leading_zeros();
    let shift = exp - SUB_BITS;
    ((exp - SUB_BITS + 1) as u64 * SUB + ((v >> shift) - SUB)) as usize
}

/// The value reported for bucket `index`: its midpoint.
fn bucket_midpoint(index: usize) -> u64 {
    let index = index as u64;
    if index < SUB {
        return index;
    }
    let shift = index / SUB - 1;
    let low = (SUB + index % SUB) << shift;
    low + ((1u64 << shift) >> 1)
}

impl Histogram {
    fn new() -> Self {
        Histogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            sum_nanos: AtomicU64::new(0),
            max_nanos: AtomicU64::new(0),
        }
    }

    #[inline]
    fn record(&self, duration: Duration) {
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        self.buckets[bucket_index(nanos)].fetch_add(1, Relaxed);
        self.sum_nanos.fetch_add(nanos, Relaxed);
        // A plain load first: the max rarely changes, and a load does not
        // take the cache line exclusive as the RMW would.
        if nanos > self.max_nanos.load(Relaxed) {
            self.max_nanos.fetch_max(nanos, Relaxed);
        }
    }

    fn summary(&self) -> LatencySummary {
        let counts: Vec<u64> = self.buckets.iter().map(|b| b.load(Relaxed)).collect();
        let count: u64 = counts.iter().sum();
        let max = self.max_nanos.load(Relaxed);
        if count == 0 {
            return LatencySummary::default();
        }
        // Nearest rank: the smallest value with at least ceil(q * count)
        // values at or below it.
        let percentile = |permille: u64| -> Duration {
            let rank = (count * permille).div_ceil(1000).max(1);
            let mut seen = 0;
            for (index, n) in counts.iter().enumerate() {
                seen += n;
                if seen >= rank {
                    return Duration::from_nanos(bucket_midpoint(index).min(max));
                }
            }
            Duration::from_nanos(max)
        };
        LatencySummary {
            count,
            mean: Duration::from_nanos(self.sum_nanos.load(Relaxed) / count),
            p50: percentile(500),
            p90: percentile(900),
            p99: percentile(990),
            max: Duration::from_nanos(max),
        }
    }
}

struct OpCounters {
    errors: AtomicU64,
    messages_sent: AtomicU64,
    bytes_sent: AtomicU64,
    messages_recv: AtomicU64,
    bytes_recv: AtomicU64,
    /// Its count is the op's request count.
    latency: Histogram,
}

impl OpCounters {
    fn new() -> Self {
        OpCounters {
            errors: AtomicU64::new(0),
            messages_sent: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
            messages_recv: AtomicU64::new(0),
            bytes_recv: AtomicU64::new(0),
            latency: Histogram::new(),
        }
    }
}

/// Lock-free in-process statistics: counters per event, per op and per
/// error type, and a latency histogram per op.
///
/// Ops are counted in the fixed slots of [`OBSERVED_OPS`](super::OBSERVED_OPS) plus `_other` (any other name goes
/// to `_other`, so a peer cannot grow memory); error types in one slot per
/// [`ErrorKind`](super::ErrorKind) plus `_other`. Every update is a handful of relaxed atomic
/// adds; nothing allocates or locks, so it is safe on any thread, on the hot
/// path.
///
/// Latency percentiles come from log-linear buckets and are within 1.5625 %
/// of the true value (a value below 32 ns is exact); `count`, `mean` and
/// `max` are exact. A [`snapshot`](Self::snapshot) taken while events are
/// being recorded reads each counter atomically, but not all of them at one
/// instant. The histograms take about 166 KiB per `StatsObserver` (18 ops ×
/// 1,152 buckets × 8 bytes), allocated once in [`new`](Self::new).
///
/// ```
/// use std::time::Duration;
/// use hs_observe::{MetricsObserver, StatsObserver};
///
/// let stats = StatsObserver::new();
/// stats.on_request("read", Duration::from_millis(2));
/// stats.on_error("read", "timeout");
/// let snapshot = stats.snapshot();
/// assert_eq!(snapshot.op("read").unwrap().requests, 1);
/// assert_eq!(snapshot.errors_of_type("timeout"), 1);
/// println!("{snapshot}"); // an aligned table
/// ```
pub struct StatsObserver {
    ws_connects: AtomicU64,
    ws_disconnects: AtomicU64,
    ops: Box<[OpCounters]>,
    errors_by_type: [AtomicU64; ERROR_SLOTS],
}

impl StatsObserver {
    /// Empty statistics.
    pub fn new() -> Self {
        StatsObserver {
            ws_connects: AtomicU64::new(0),
            ws_disconnects: AtomicU64::new(0),
            ops: (0..OP_SLOTS).map(|_| OpCounters::new()).collect(),
            errors_by_type: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    #[inline]
    fn op(&self, op: &str) -> &OpCounters {
        &self.ops[op_slot(op)]
    }

    /// Reads every counter into a plain value.
    pub fn snapshot(&self) -> StatsSnapshot {
        let ops: Vec<OpStats> = self
            .ops
            .iter()
            .enumerate()
            .map(|(slot, c)| {
                let latency = c.latency.summary();
                OpStats {
                    op: op_label(slot),
                    requests: latency.count,
                    errors: c.errors.load(Relaxed),
                    messages_sent: c.messages_sent.load(Relaxed),
                    bytes_sent: c.bytes_sent.load(Relaxed),
                    messages_recv: c.messages_recv.load(Relaxed),
                    bytes_recv: c.bytes_recv.load(Relaxed),
                    latency,
                }
            })
            .collect();
        let total = |f: fn(&OpStats) -> u64| ops.iter().map(f).sum();
        StatsSnapshot {
            ws_connects: self.ws_connects.load(Relaxed),
            ws_disconnects: self.ws_disconnects.load(Relaxed),
            messages_sent: total(|o| o.messages_sent),
            bytes_sent: total(|o| o.bytes_sent),
            messages_recv: total(|o| o.messages_recv),
            bytes_recv: total(|o| o.bytes_recv),
            requests: total(|o| o.requests),
            errors: total(|o| o.errors),
            errors_by_type: self
                .errors_by_type
                .iter()
                .enumerate()
                .map(|(i, n)| (error_label(i), n.load(Relaxed)))
                .collect(),
            ops,
        }
    }
}

impl Default for StatsObserver {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for StatsObserver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.snapshot();
        f.debug_struct("StatsObserver")
            .field("requests", &s.requests)
            .field("errors", &s.errors)
            .field("ws_connects", &s.ws_connects)
            .finish_non_exhaustive()
    }
}

impl MetricsObserver for StatsObserver {
    #[inline]
    fn on_ws_connect(&self, remote_addr: &str) {
        let _ = remote_addr;
        self.ws_connects.fetch_add(1, Relaxed);
    }
    #[inline]
    fn on_ws_disconnect(&self, remote_addr: &str) {
        let _ = remote_addr;
        self.ws_disconnects.fetch_add(1, Relaxed);
    }
    #[inline]
    fn on_ws_message_sent(&self, op: &str, byte_count: usize) {
        let c = self.op(op);
        c.messages_sent.fetch_add(1, Relaxed);
        c.bytes_sent.fetch_add(byte_count as u64, Relaxed);
    }
    #[inline]
    fn on_ws_message_recv(&self, op: &str, byte_count: usize) {
        let c = self.op(op);
        c.messages_recv.fetch_add(1, Relaxed);
        c.bytes_recv.fetch_add(byte_count as u64, Relaxed);
    }
    #[inline]
    fn on_request(&self, op: &str, duration: Duration) {
        self.op(op).latency.record(duration);
    }
    #[inline]
    fn on_error(&self, op: &str, error_type: &str) {
        self.op(op).errors.fetch_add(1, Relaxed);
        self.errors_by_type[error_slot(error_type)].fetch_add(1, Relaxed);
    }
}

/// Request latency of one op, from [`StatsSnapshot`]. All zero when the op
/// had no request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LatencySummary {
    /// Requests measured (exact).
    pub count: u64,
    /// Arithmetic mean (exact, to the nanosecond).
    pub mean: Duration,
    /// Median, within 1.5625 %.
    pub p50: Duration,
    /// 90th percentile, within 1.5625 %.
    pub p90: Duration,
    /// 99th percentile, within 1.5625 %.
    pub p99: Duration,
    /// Largest (exact).
    pub max: Duration,
}

/// The counters of one op slot, from [`StatsSnapshot`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct OpStats {
    /// The op name, one of [`OBSERVED_OPS`](super::OBSERVED_OPS) plus `_other`.
    pub op: &'static str,
    /// `on_request` events.
    pub requests: u64,
    /// `on_error` events.
    pub errors: u64,
    /// `on_ws_message_sent` events.
    pub messages_sent: u64,
    /// Bytes in sent messages.
    pub bytes_sent: u64,
    /// `on_ws_message_recv` events.
    pub messages_recv: u64,
    /// Bytes in received messages.
    pub bytes_recv: u64,
    /// Request latency.
    pub latency: LatencySummary,
}

impl OpStats {
    fn is_idle(&self) -> bool {
        self.requests == 0 && self.errors == 0 && self.messages_sent == 0 && self.messages_recv == 0
    }
}

/// A plain copy of a [`StatsObserver`]'s counters. `Display` prints an
/// aligned table of the active ops and the error types seen.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StatsSnapshot {
    /// `on_ws_connect` events.
    pub ws_connects: u64,
    /// `on_ws_disconnect` events.
    pub ws_disconnects: u64,
    /// `on_ws_message_sent` events, all ops.
    pub messages_sent: u64,
    /// Bytes sent, all ops.
    pub bytes_sent: u64,
    /// `on_ws_message_recv` events, all ops.
    pub messages_recv: u64,
    /// Bytes received, all ops.
    pub bytes_recv: u64,
    /// `on_request` events, all ops.
    pub requests: u64,
    /// `on_error` events, all ops.
    pub errors: u64,
    /// One entry per slot of [`OBSERVED_OPS`](super::OBSERVED_OPS) plus `_other`, in that order.
    pub ops: Vec<OpStats>,
    /// `(error_type, count)` for every [`ErrorKind`](super::ErrorKind) in declaration order,
    /// then `_other`.
    pub errors_by_type: Vec<(&'static str, u64)>,
}

impl StatsSnapshot {
    /// The counters of `op`'s slot (`_other` for a name not in
    /// [`OBSERVED_OPS`](super::OBSERVED_OPS) plus `_other`).
    pub fn op(&self, op: &str) -> Option<&OpStats> {
        self.ops.get(op_slot(op))
    }

    /// Errors counted under `error_type` (`_other` collects unknown names).
    pub fn errors_of_type(&self, error_type: &str) -> u64 {
        self.errors_by_type
            .get(error_slot(error_type))
            .map_or(0, |&(_, n)| n)
    }

    /// Connections open now: connects minus disconnects.
    pub fn ws_active(&self) -> u64 {
        self.ws_connects.saturating_sub(self.ws_disconnects)
    }
}

/// `1.234 ms`-style: three significant-ish digits in the largest fitting unit.
struct Millis(Duration);

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = self.0.as_nanos();
        let text = if nanos < 1_000 {
            format!("{nanos} ns")
        } else if nanos < 1_000_000 {
            format!("{:.1} µs", nanos as f64 / 1e3)
        } else if nanos < 1_000_000_000 {
            format!("{:.3} ms", nanos as f64 / 1e6)
        } else {
            format!("{:.3} s", nanos as f64 / 1e9)
        };
        f.pad(&text)
    }
}

/// `412 B`, `40.2 KiB`, `3.1 MiB`.
struct Bytes(u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0 as f64;
        let text = if self.0 < 1024 {
            format!("{} B", self.0)
        } else if b < 1024.0 * 1024.0 {
            format!("{:.1} KiB", b / 1024.0)
        } else if b < 1024.0 * 1024.0 * 1024.0 {
            format!("{:.1} MiB", b / (1024.0 * 1024.0))
        } else {
            format!("{:.1} GiB", b / (1024.0 * 1024.0 * 1024.0))
        };
        f.pad(&text)
    }
}

impl fmt::Display for StatsSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "ws connections: {} opened, {} closed, {} active",
            self.ws_connects,
            self.ws_disconnects,
            self.ws_active()
        )?;
        writeln!(
            f,
            "{:<13} {:>9} {:>7} {:>8} {:>10} {:>8} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
            "op",
            "requests",
            "errors",
            "msgs out",
            "bytes out",
            "msgs in",
            "bytes in",
            "mean",
            "p50",
            "p90",
            "p99",
            "max"
        )?;
        let mut rows = 0;
        for o in self.ops.iter().filter(|o| !o.is_idle()) {
            let l = &o.latency;
            writeln!(
                f,
                "{:<13} {:>9} {:>7} {:>8} {:>10} {:>8} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
                o.op,
                o.requests,
                o.errors,
                o.messages_sent,
                Bytes(o.bytes_sent),
                o.messages_recv,
                Bytes(o.bytes_recv),
                Millis(l.mean),
                Millis(l.p50),
                Millis(l.p90),
                Millis(l.p99),
                Millis(l.max),
            )?;
            rows += 1;
        }
        if rows == 0 {
            writeln!(f, "(no requests or messages yet)")?;
        } else {
            writeln!(
                f,
                "{:<13} {:>9} {:>7} {:>8} {:>10} {:>8} {:>10}",
                "total",
                self.requests,
                self.errors,
                self.messages_sent,
                Bytes(self.bytes_sent),
                self.messages_recv,
                Bytes(self.bytes_recv),
            )?;
        }
        let seen: Vec<String> = self
            .errors_by_type
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(name, n)| format!("{name} {n}"))
            .collect();
        if seen.is_empty() {
            write!(f, "errors by type: none")
        } else {
            write!(f, "errors by type: {}", seen.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_within_the_documented_error() {
        // Bucket indices are monotonic and never skip.
        let mut last = 0;
        let mut v = 0u64;
        while v < (1 << 22) {
            let i = bucket_index(v);
            assert!(i == last || i == last + 1, "{v}: {last} -> {i}");
            last = i;
            let mid = bucket_midpoint(i);
            let err = mid.abs_diff(v) as f64;
            assert!(err <= v as f64 / 64.0, "{v} -> {mid}");
            v += 1;
        }
        assert_eq!(bucket_index(u64::MAX), BUCKETS - 1);
        assert_eq!(bucket_index((1 << MAX_EXP) - 1), BUCKETS - 1);
        // Sampled at large values too.
        for exp in 22..MAX_EXP {
            for step in 0..1000u64 {
                let v = (1u64 << exp) + step * ((1u64 << exp) / 1000);
                let mid = bucket_midpoint(bucket_index(v));
                assert!(mid.abs_diff(v) as f64 <= v as f64 / 64.0, "{v} -> {mid}");
            }
        }
    }

    #[test]
    fn values_below_32ns_and_midpoints_are_exact() {
        for v in 0..32 {
            assert_eq!(bucket_midpoint(bucket_index(v)), v);
        }
        // (2m + 1) << (k - 1) with 32 <= m < 64 is the midpoint of a bucket.
        for odd in (65..128u64).step_by(2) {
            for k in 1..(MAX_EXP - SUB_BITS) {
                let v = odd << (k - 1);
                assert_eq!(bucket_midpoint(bucket_index(v)), v, "{v}");
            }
        }
    }

    #[test]
    fn empty_snapshot_prints_a_placeholder() {
        let s = StatsObserver::new().snapshot();
        assert_eq!(s.requests, 0);
        assert_eq!(s.op("read").unwrap().latency, LatencySummary::default());
        assert_eq!(
            s.to_string(),
            "ws connections: 0 opened, 0 closed, 0 active\n\
             op             requests  errors msgs out  bytes out  msgs in   bytes in       mean        p50        p90        p99        max\n\
             (no requests or messages yet)\n\
             errors by type: none"
        );
    }

    #[test]
    fn table_lists_active_ops_and_error_types() {
        let stats = StatsObserver::new();
        stats.on_ws_connect("a");
        stats.on_request("read", Duration::from_micros(1500));
        stats.on_ws_message_sent("read", 412);
        stats.on_ws_message_recv("read", 4096);
        stats.on_error("hisRead", "timeout");
        stats.on_error("fancyOp", "weird");
        let table = stats.snapshot().to_string();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines[0], "ws connections: 1 opened, 0 closed, 1 active");
        assert!(lines[2].starts_with(
            "read                  1       0        1      412 B        1    4.0 KiB"
        ));
        assert!(lines[2].contains("1.500 ms"), "{}", lines[2]);
        assert!(lines[3].starts_with("hisRead               0       1"));
        assert!(lines[4].starts_with("_other                0       1"));
        assert!(lines[5].starts_with("total                 1       2        1"));
        assert_eq!(lines[6], "errors by type: timeout 1, _other 1");
        // Columns line up: every row is as wide as the header.
        assert_eq!(lines[1].chars().count(), lines[2].chars().count());
    }
}
