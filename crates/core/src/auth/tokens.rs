use crate::observe::targets;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::encoding::random_token_43;
use super::scram::{Key, sha256};
use super::users::Principal;
use crate::clock::{Clock, SystemClock};

/// How long an auth token lives from issue: 3 600 s (haystack-py's value).
/// Use does not renew it.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(3600);

/// How many live tokens a [`TokenStore`] keeps before dropping the oldest.
pub const DEFAULT_MAX_TOKENS: usize = 10_000;

/// Bearer auth tokens: 43 base64url characters (32 random bytes), valid for
/// a TTL from issue, revocable, reusable until then.
///
/// Cheap to clone (an `Arc` inside) so the HTTP and WebSocket servers can
/// share one store. At most [`with_max_tokens`](Self::with_max_tokens) tokens
/// are kept; issuing one more drops the oldest. Tokens are kept only as
/// SHA-256 hashes, so a lookup's timing reveals nothing useful about a
/// stored token, and a memory dump holds no usable token.
///
/// ```
/// use hs_core::auth::{Principal, Role, TokenStore};
///
/// let tokens = TokenStore::new();
/// let token = tokens.issue(Principal::new("demo", Role::Reader));
/// assert_eq!(token.len(), 43);
/// assert_eq!(tokens.validate(&token).unwrap().username, "demo");
/// assert!(tokens.revoke(&token));
/// assert!(tokens.validate(&token).is_none());
/// ```
#[derive(Clone)]
pub struct TokenStore {
    inner: Arc<Mutex<Tokens>>,
    ttl: Duration,
    max_tokens: usize,
    clock: Arc<dyn Clock>,
}

#[derive(Default)]
struct Tokens {
    by_hash: HashMap<Key, Entry>,
    /// Issue order: sequence number to token hash, oldest first.
    order: BTreeMap<u64, Key>,
    next_seq: u64,
}

struct Entry {
    principal: Principal,
    issued: Instant,
    seq: u64,
}

impl Tokens {
    fn remove(&mut self, hash: &Key) -> Option<Entry> {
        let entry = self.by_hash.remove(hash)?;
        self.order.remove(&entry.seq);
        Some(entry)
    }

    fn purge_expired(&mut self, now: Instant, ttl: Duration) {
        // Issue order is expiry order, so stop at the first live token.
        while let Some((_, hash)) = self.order.first_key_value() {
            let hash = *hash;
            match self.by_hash.get(&hash) {
                Some(entry) if now.saturating_duration_since(entry.issued) < ttl => break,
                _ => {
                    self.remove(&hash);
                }
            }
        }
    }
}

impl TokenStore {
    /// An empty store with [`DEFAULT_TOKEN_TTL`] and [`DEFAULT_MAX_TOKENS`].
    pub fn new() -> Self {
        TokenStore {
            inner: Arc::default(),
            ttl: DEFAULT_TOKEN_TTL,
            max_tokens: DEFAULT_MAX_TOKENS,
            clock: Arc::new(SystemClock),
        }
    }

    /// Sets the token lifetime.
    #[must_use]
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Sets the maximum number of tokens kept (at least 1).
    #[must_use]
    pub fn with_max_tokens(mut self, max_tokens: usize) -> Self {
        self.max_tokens = max_tokens.max(1);
        self
    }

    /// Sets the clock (tests use a [`ManualClock`](crate::clock::ManualClock)).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The token lifetime.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Issues a new token for `principal`. Keep it secret: it is a bearer
    /// credential.
    pub fn issue(&self, principal: Principal) -> String {
        let token = random_token_43();
        let now = self.clock.now();
        let mut tokens = self.inner.lock();
        tokens.purge_expired(now, self.ttl);
        while tokens.by_hash.len() >= self.max_tokens {
            let Some((_, oldest)) = tokens.order.first_key_value() else {
                break;
            };
            let oldest = *oldest;
            tokens.remove(&oldest);
            log::debug!(target: targets::AUTH, "token store full ({}): dropped the oldest token", self.max_tokens);
        }
        let seq = tokens.next_seq;
        tokens.next_seq += 1;
        let hash = sha256(&token);
        tokens.order.insert(seq, hash);
        tokens.by_hash.insert(
            hash,
            Entry {
                principal,
                issued: now,
                seq,
            },
        );
        token
    }

    /// The principal a live token was issued to; `None` for an unknown,
    /// expired or revoked token.
    pub fn validate(&self, token: &str) -> Option<Principal> {
        let hash = sha256(token);
        let now = self.clock.now();
        let mut tokens = self.inner.lock();
        let entry = tokens.by_hash.get(&hash)?;
        if now.saturating_duration_since(entry.issued) < self.ttl {
            return Some(entry.principal.clone());
        }
        tokens.remove(&hash);
        None
    }

    /// Revokes a token; `true` if it was live.
    pub fn revoke(&self, token: &str) -> bool {
        let now = self.clock.now();
        let removed = self.inner.lock().remove(&sha256(token));
        removed.is_some_and(|entry| now.saturating_duration_since(entry.issued) < self.ttl)
    }

    /// Revokes every token of `username`; returns how many were removed.
    pub fn revoke_user(&self, username: &str) -> usize {
        let mut tokens = self.inner.lock();
        let hashes: Vec<Key> = tokens
            .by_hash
            .iter()
            .filter(|(_, entry)| entry.principal.username == username)
            .map(|(hash, _)| *hash)
            .collect();
        for hash in &hashes {
            tokens.remove(hash);
        }
        hashes.len()
    }

    /// Number of live tokens (expired ones are dropped first).
    pub fn len(&self) -> usize {
        let now = self.clock.now();
        let mut tokens = self.inner.lock();
        tokens.purge_expired(now, self.ttl);
        tokens.by_hash.len()
    }

    /// `true` when no live token exists.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for TokenStore {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for TokenStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenStore")
            .field("tokens", &self.inner.lock().by_hash.len())
            .field("ttl", &self.ttl)
            .field("max_tokens", &self.max_tokens)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use crate::auth::Role;
    use crate::clock::ManualClock;

    fn principal(name: &str) -> Principal {
        Principal::new(name, Role::Reader)
    }

    #[test]
    fn tokens_expire_after_ttl() {
        let clock = Arc::new(ManualClock::new());
        let tokens = TokenStore::new()
            .with_ttl(Duration::from_secs(10))
            .with_clock(clock.clone());
        let token = tokens.issue(principal("a"));
        clock.advance(Duration::from_secs(9));
        assert!(
            tokens.validate(&token).is_some(),
            "use does not renew, but 9 s < 10 s"
        );
        clock.advance(Duration::from_secs(1));
        assert!(tokens.validate(&token).is_none());
        assert_eq!(tokens.len(), 0);
    }

    #[test]
    fn clones_share_and_revocation_works() {
        let tokens = TokenStore::new();
        let shared = tokens.clone();
        let a = tokens.issue(principal("a"));
        let a2 = tokens.issue(principal("a"));
        let b = shared.issue(principal("b"));
        assert_eq!(shared.validate(&a).unwrap().username, "a");
        assert!(shared.revoke(&a));
        assert!(!tokens.revoke(&a));
        assert!(tokens.validate(&a).is_none());
        assert_eq!(tokens.revoke_user("a"), 1);
        assert!(tokens.validate(&a2).is_none());
        assert!(tokens.validate(&b).is_some());
        assert!(tokens.validate("").is_none());
        assert!(!format!("{tokens:?}").contains(&b));
    }

    #[test]
    fn oldest_token_is_dropped_at_capacity() {
        let tokens = TokenStore::new().with_max_tokens(3);
        let issued: Vec<String> = (0..5)
            .map(|i| tokens.issue(principal(&format!("u{i}"))))
            .collect();
        assert_eq!(tokens.len(), 3);
        assert!(tokens.validate(&issued[0]).is_none());
        assert!(tokens.validate(&issued[1]).is_none());
        assert!(issued[2..].iter().all(|t| tokens.validate(t).is_some()));
    }
}
