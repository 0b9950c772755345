//! [`Clock`]: where the store reads the time (leases, write durations, `today`).

use std::fmt;
use std::sync::Arc;

use chrono::Utc;
use parking_lot::Mutex;

/// The store's source of the current time.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time.
    fn now(&self) -> chrono::DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> chrono::DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that moves only when told to; for tests of leases and durations.
///
/// ```
/// use hs_core::store::{Clock, ManualClock};
///
/// let clock = ManualClock::new("2024-01-01T00:00:00Z".parse().unwrap());
/// clock.advance(std::time::Duration::from_secs(60));
/// assert_eq!(clock.now().to_rfc3339(), "2024-01-01T00:01:00+00:00");
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<chrono::DateTime<Utc>>>,
}

impl ManualClock {
    /// A clock stopped at `now`.
    pub fn new(now: chrono::DateTime<Utc>) -> Self {
        Self {
            now: Arc::new(Mutex::new(now)),
        }
    }

    /// Move the clock forward (clones share the same time).
    pub fn advance(&self, by: std::time::Duration) {
        let mut now = self.now.lock();
        *now += chrono::TimeDelta::from_std(by).unwrap_or(chrono::TimeDelta::MAX);
    }

    /// Set the time.
    pub fn set(&self, to: chrono::DateTime<Utc>) {
        *self.now.lock() = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> chrono::DateTime<Utc> {
        *self.now.lock()
    }
}
