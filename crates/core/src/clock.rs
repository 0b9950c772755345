//! [`Clock`]: where hs-core reads the time, so tests (and simulations) can
//! move time without sleeping.
//!
//! One clock answers two questions: [`Clock::now`] is the monotonic
//! [`Instant`] (handshake and token lifetimes, anything measured as an
//! elapsed time), [`Clock::now_utc`] is the wall-clock time (watch leases,
//! priority-array durations, `today` in history ranges, `curTs`). The same
//! [`ManualClock`] drives both, so one test clock serves the auth layer and
//! the store alike. The types are re-exported as `hs_core::auth::{Clock, ...}`
//! and `hs_core::store::{Clock, ...}`.
//!
//! ```
//! use std::time::Duration;
//! use hs_core::clock::{Clock, ManualClock};
//!
//! let clock = ManualClock::at("2024-01-01T00:00:00Z".parse().unwrap());
//! let start = clock.now();
//! clock.advance(Duration::from_secs(61));
//! assert_eq!(clock.now() - start, Duration::from_secs(61));
//! assert_eq!(clock.now_utc().to_rfc3339(), "2024-01-01T00:01:01+00:00");
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use parking_lot::Mutex;

/// A source of the current time: monotonic and wall-clock.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current monotonic instant (for lifetimes and elapsed times).
    fn now(&self) -> Instant;

    /// The current wall-clock time in UTC (for timestamps and leases).
    fn now_utc(&self) -> DateTime<Utc>;
}

/// The real clocks ([`Instant::now`], [`Utc::now`]); the default everywhere.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn now_utc(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that moves only when told to. Clones share the same time, so a
/// test can keep one and hand another (or an `Arc`) to the code under test.
///
/// ```
/// use std::time::Duration;
/// use hs_core::clock::{Clock, ManualClock};
///
/// let clock = ManualClock::new();
/// let start = clock.now();
/// clock.advance(Duration::from_secs(61));
/// assert_eq!(clock.now() - start, Duration::from_secs(61));
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock {
    base: Instant,
    state: Arc<Mutex<ManualTime>>,
}

/// How far a [`ManualClock`]'s monotonic time may move, so that
/// `Instant + elapsed` never overflows.
const MAX_ELAPSED: Duration = Duration::from_secs(100 * 365 * 24 * 3_600);

#[derive(Debug)]
struct ManualTime {
    elapsed: Duration,
    utc: DateTime<Utc>,
}

impl ManualClock {
    /// A clock standing at the current instant and the current UTC time.
    pub fn new() -> Self {
        Self::at(Utc::now())
    }

    /// A clock whose wall-clock time stands at `utc` (its monotonic instant
    /// starts at the current instant).
    pub fn at(utc: DateTime<Utc>) -> Self {
        Self {
            base: Instant::now(),
            state: Arc::new(Mutex::new(ManualTime {
                elapsed: Duration::ZERO,
                utc,
            })),
        }
    }

    /// Moves both the monotonic and the wall-clock time forward by `by`
    /// (saturating: the monotonic time stops about a century ahead).
    pub fn advance(&self, by: Duration) {
        let mut state = self.state.lock();
        state.elapsed = state.elapsed.saturating_add(by).min(MAX_ELAPSED);
        state.utc = state
            .utc
            .checked_add_signed(TimeDelta::from_std(by).unwrap_or(TimeDelta::MAX))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
    }

    /// Sets the wall-clock time (a jump, like a clock being reset); the
    /// monotonic time is left alone, as a real monotonic clock would be.
    pub fn set(&self, to: DateTime<Utc>) {
        self.state.lock().utc = to;
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.base + self.state.lock().elapsed
    }

    fn now_utc(&self) -> DateTime<Utc> {
        self.state.lock().utc
    }
}

/// Lets one event through per interval and counts the others: for log
/// lines a client could otherwise repeat at will (refused connections,
/// refused handshakes), so that an attack does not flood the log.
///
/// ```
/// use std::time::{Duration, Instant};
/// use hs_core::clock::Throttle;
///
/// let mut throttle = Throttle::new(Duration::from_secs(1));
/// let start = Instant::now();
/// assert_eq!(throttle.allow(start), Some(0));
/// assert_eq!(throttle.allow(start), None);
/// assert_eq!(throttle.allow(start + Duration::from_secs(1)), Some(1));
/// ```
#[derive(Debug, Clone)]
pub struct Throttle {
    interval: Duration,
    next: Option<Instant>,
    suppressed: u64,
}

impl Throttle {
    /// At most one event per `interval`.
    pub const fn new(interval: Duration) -> Self {
        Throttle {
            interval,
            next: None,
            suppressed: 0,
        }
    }

    /// `Some(n)` when an event may be reported at `now`, `n` being how many
    /// were held back since the last one; `None` when it is held back.
    pub fn allow(&mut self, now: Instant) -> Option<u64> {
        if self.next.is_some_and(|next| now < next) {
            self.suppressed += 1;
            return None;
        }
        self.next = now.checked_add(self.interval);
        Some(std::mem::take(&mut self.suppressed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_time_and_set_moves_only_the_wall_clock() {
        let clock = ManualClock::at("2024-01-01T00:00:00Z".parse().unwrap());
        let other = clock.clone();
        let start = clock.now();
        other.advance(Duration::from_secs(10));
        assert_eq!(clock.now() - start, Duration::from_secs(10));
        assert_eq!(clock.now_utc().to_rfc3339(), "2024-01-01T00:00:10+00:00");
        clock.set("2023-06-01T00:00:00Z".parse().unwrap());
        assert_eq!(other.now_utc().to_rfc3339(), "2023-06-01T00:00:00+00:00");
        assert_eq!(clock.now() - start, Duration::from_secs(10));
    }

    #[test]
    fn advance_saturates() {
        let clock = ManualClock::new();
        let start = clock.now();
        clock.advance(Duration::MAX);
        assert_eq!(clock.now_utc(), DateTime::<Utc>::MAX_UTC);
        assert_eq!(clock.now() - start, MAX_ELAPSED);
    }
}
