//! Exponential backoff with jitter between attempts.

use std::time::Duration;

use rand::Rng;

/// Delay before attempt `n` (a reconnection, a retry): `min * factor^n`, capped at `max`,
/// then shortened by a random fraction of up to `jitter` so that many
/// clients cut off together do not come back in lockstep.
///
/// Default: 1 s doubling to 60 s (haystack-py's schedule), jitter 0.2.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    factor: f64,
    jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(Duration::from_secs(1), Duration::from_secs(60))
    }
}

impl Backoff {
    /// From `min` doubling up to `max` (`max` is raised to `min` if smaller),
    /// jitter 0.2.
    pub fn new(min: Duration, max: Duration) -> Self {
        Backoff {
            min,
            max: max.max(min),
            factor: 2.0,
            jitter: 0.2,
        }
    }

    /// Growth factor per attempt (at least 1).
    #[must_use]
    pub fn factor(mut self, factor: f64) -> Self {
        self.factor = if factor.is_finite() {
            factor.max(1.0)
        } else {
            2.0
        };
        self
    }

    /// Largest random fraction taken off each delay, in `0.0..=1.0`.
    #[must_use]
    pub fn jitter(mut self, jitter: f64) -> Self {
        self.jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self
    }

    /// The delay before attempt `attempt` (0 for the first), jitter included.
    pub fn delay(&self, attempt: u32) -> Duration {
        let base = self.base(attempt);
        if self.jitter == 0.0 {
            return base;
        }
        let cut: f64 = rand::rng().random_range(0.0..=self.jitter);
        base.mul_f64(1.0 - cut)
    }

    /// The delay before attempt `attempt` without jitter.
    pub fn base(&self, attempt: u32) -> Duration {
        let exp = i32::try_from(attempt).unwrap_or(i32::MAX);
        let scaled = self.min.as_secs_f64() * self.factor.powi(exp);
        if !scaled.is_finite() || scaled >= self.max.as_secs_f64() {
            self.max
        } else {
            Duration::from_secs_f64(scaled)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_cap() {
        let b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1)).jitter(0.0);
        assert_eq!(b.delay(0), Duration::from_millis(100));
        assert_eq!(b.delay(1), Duration::from_millis(200));
        assert_eq!(b.delay(3), Duration::from_millis(800));
        assert_eq!(b.delay(4), Duration::from_secs(1));
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(1));
    }

    #[test]
    fn jitter_stays_in_range() {
        let b = Backoff::new(Duration::from_secs(1), Duration::from_secs(8)).jitter(0.5);
        for attempt in 0..20 {
            let d = b.delay(attempt);
            let base = b.base(attempt);
            assert!(d <= base && d >= base.mul_f64(0.5), "{d:?} vs {base:?}");
        }
    }
}
