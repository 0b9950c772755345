use std::time::Duration;

use rand::Rng;

/// When and how often [`HttpClient`](crate::HttpClient) retries a call.
///
/// A call is retried only when it is safe to repeat and the failure is
/// transient:
///
/// - **Retried ops** (idempotent reads): `about`, `ops`, `formats`, `read`,
///   `nav`, `hisRead`, and `pointWrite` when it only reads the priority
///   array ([`HttpClient::point_write_array`](crate::HttpClient::point_write_array)).
/// - **Never retried unless [`retry_writes`](Self::retry_writes) is set**:
///   `hisWrite`, `pointWrite` (write), `watchSub`, `watchUnsub`,
///   `invokeAction`, and `watchPoll` (a poll consumes the server's change
///   set: repeating one whose answer was lost would silently drop changes).
/// - `close` is sent once, best effort, whatever the policy.
/// - **Transient failures**: connect errors, timeouts, connections broken
///   mid-request, and HTTP 429, 500, 502, 503, 504. Error grids, auth
///   failures and other statuses are final.
///
/// Backoff before retry `n` (1-based) is
/// `min(max_backoff, initial_backoff * 2^(n-1))`, shortened by a random
/// fraction of up to `jitter` (0.0 = none, 1.0 = "full jitter") so that many
/// clients failing together do not retry in lockstep.
///
/// ```
/// use std::time::Duration;
/// use hs_http_client::RetryPolicy;
///
/// let policy = RetryPolicy { max_attempts: 5, ..RetryPolicy::default() };
/// assert_eq!(policy.backoff_ceiling(1), Duration::from_millis(100));
/// assert_eq!(policy.backoff_ceiling(3), Duration::from_millis(400));
/// assert_eq!(RetryPolicy::none().max_attempts, 1);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included (`1` = never retry; `0` is
    /// treated as `1`). Default 3.
    pub max_attempts: u32,
    /// Backoff before the first retry. Default 100 ms.
    pub initial_backoff: Duration,
    /// Upper bound of any one backoff. Default 2 s.
    pub max_backoff: Duration,
    /// Random shortening of each backoff, as a fraction in `0.0..=1.0`.
    /// Default 0.5 (each wait is 50–100 % of its ceiling).
    pub jitter: f64,
    /// Retry the write ops too (see above). Default `false`: only set this
    /// when the server tolerates a write applied twice.
    pub retry_writes: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            jitter: 0.5,
            retry_writes: false,
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The backoff before retry `retry` (1-based) before jitter:
    /// `min(max_backoff, initial_backoff * 2^(retry-1))`.
    pub fn backoff_ceiling(&self, retry: u32) -> Duration {
        let exponent = retry.saturating_sub(1).min(31);
        self.initial_backoff
            .saturating_mul(1u32 << exponent)
            .min(self.max_backoff)
    }

    /// The backoff before retry `retry`, jitter applied.
    pub(crate) fn backoff(&self, retry: u32) -> Duration {
        let ceiling = self.backoff_ceiling(retry);
        let jitter = if self.jitter.is_finite() {
            self.jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        if jitter == 0.0 {
            return ceiling;
        }
        let cut = rand::rng().random_range(0.0..=jitter);
        ceiling.mul_f64(1.0 - cut)
    }

    /// How many attempts a call may make.
    pub(crate) fn attempts_for(&self, idempotent: bool) -> u32 {
        if idempotent || self.retry_writes {
            self.max_attempts.max(1)
        } else {
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_exponentially_up_to_the_cap() {
        let policy = RetryPolicy {
            jitter: 0.0,
            ..RetryPolicy::default()
        };
        let waits: Vec<_> = (1..=7).map(|n| policy.backoff(n)).collect();
        assert_eq!(
            waits,
            [100, 200, 400, 800, 1600, 2000, 2000].map(Duration::from_millis)
        );
        assert_eq!(policy.backoff_ceiling(u32::MAX), Duration::from_secs(2));
    }

    #[test]
    fn jitter_stays_within_its_fraction() {
        let policy = RetryPolicy {
            jitter: 0.5,
            ..RetryPolicy::default()
        };
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let wait = policy.backoff(2);
            assert!(wait >= Duration::from_millis(100) && wait <= Duration::from_millis(200));
            seen.insert(wait);
        }
        assert!(seen.len() > 1, "jitter should vary the waits");
        let odd = RetryPolicy {
            jitter: f64::NAN,
            ..RetryPolicy::default()
        };
        assert_eq!(odd.backoff(1), Duration::from_millis(100));
    }

    #[test]
    fn writes_get_one_attempt_unless_asked() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.attempts_for(true), 3);
        assert_eq!(policy.attempts_for(false), 1);
        let writes = RetryPolicy {
            retry_writes: true,
            ..policy
        };
        assert_eq!(writes.attempts_for(false), 3);
        let zero = RetryPolicy {
            max_attempts: 0,
            ..RetryPolicy::default()
        };
        assert_eq!(zero.attempts_for(true), 1);
        // The ops `HttpClient::call` retries (`Op::is_idempotent_read`).
        let is_idempotent_op = |op: &str| {
            op.parse::<hs_core::ops::Op>()
                .is_ok_and(hs_core::ops::Op::is_idempotent_read)
        };
        for op in ["about", "ops", "formats", "read", "nav", "hisRead"] {
            assert!(is_idempotent_op(op), "{op}");
        }
        for op in [
            "hisWrite",
            "pointWrite",
            "watchSub",
            "watchUnsub",
            "watchPoll",
            "invokeAction",
            "close",
            "custom",
        ] {
            assert!(!is_idempotent_op(op), "{op}");
        }
    }
}
