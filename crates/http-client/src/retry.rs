use std::time::Duration;

use hs_core::client::Backoff;

/// When and how often [`HttpClient`](crate::HttpClient) retries a call.
///
/// A call is retried only when it is safe to repeat and the failure is
/// transient:
///
/// - **Retried ops** (idempotent reads): `about`, `ops`, `formats`, `read`,
///   `nav`, `hisRead`, and `pointWrite` when it only reads the priority
///   array ([`HaystackClient::point_write_array`](crate::HaystackClient::point_write_array)).
/// - **Never retried unless [`retry_writes`](Self::retry_writes) is set**:
///   `hisWrite`, `pointWrite` (write), `watchSub`, `watchUnsub`,
///   `invokeAction`, and `watchPoll` (a poll consumes the server's change
///   set: repeating one whose answer was lost would silently drop changes).
/// - `close` is sent once, best effort, whatever the policy.
/// - **Transient failures**: connect errors, timeouts, connections broken
///   mid-request, and HTTP 429, 500, 502, 503, 504. Error grids, auth
///   failures and other statuses are final.
///
/// The wait before retry `n` (1-based) is the [`Backoff`]'s delay before
/// attempt `n - 1`: `min(max, min * 2^(n-1))`, shortened by a random
/// fraction of up to its jitter so that many clients failing together do
/// not retry in lockstep.
///
/// ```
/// use std::time::Duration;
/// use hs_http_client::{Backoff, RetryPolicy};
///
/// let policy = RetryPolicy { max_attempts: 5, ..RetryPolicy::default() };
/// assert_eq!(policy.backoff.base(0), Duration::from_millis(100));
/// assert_eq!(policy.backoff.base(2), Duration::from_millis(400));
/// assert_eq!(RetryPolicy::none().max_attempts, 1);
/// let steady = RetryPolicy {
///     backoff: Backoff::new(Duration::from_secs(1), Duration::from_secs(1)).jitter(0.0),
///     ..RetryPolicy::default()
/// };
/// assert_eq!(steady.backoff.delay(3), Duration::from_secs(1));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included (`1` = never retry; `0` is
    /// treated as `1`). Default 3.
    pub max_attempts: u32,
    /// The wait before each retry. Default 100 ms doubling up to 2 s,
    /// jitter 0.5 (each wait is 50–100 % of its ceiling).
    pub backoff: Backoff,
    /// Retry the write ops too (see above). Default `false`: only set this
    /// when the server tolerates a write applied twice.
    pub retry_writes: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            backoff: Backoff::new(Duration::from_millis(100), Duration::from_secs(2)).jitter(0.5),
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

    /// The wait before retry `retry` (1-based), jitter applied.
    pub(crate) fn wait(&self, retry: u32) -> Duration {
        self.backoff.delay(retry.saturating_sub(1))
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
            backoff: RetryPolicy::default().backoff.jitter(0.0),
            ..RetryPolicy::default()
        };
        let waits: Vec<_> = (1..=7).map(|n| policy.wait(n)).collect();
        assert_eq!(
            waits,
            [100, 200, 400, 800, 1600, 2000, 2000].map(Duration::from_millis)
        );
        assert_eq!(policy.wait(u32::MAX), Duration::from_secs(2));
    }

    #[test]
    fn jitter_stays_within_its_fraction() {
        let policy = RetryPolicy::default();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let wait = policy.wait(2);
            assert!(wait >= Duration::from_millis(100) && wait <= Duration::from_millis(200));
            seen.insert(wait);
        }
        assert!(seen.len() > 1, "jitter should vary the waits");
        let odd = RetryPolicy {
            backoff: RetryPolicy::default().backoff.jitter(f64::NAN),
            ..RetryPolicy::default()
        };
        assert_eq!(odd.wait(1), Duration::from_millis(100));
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
