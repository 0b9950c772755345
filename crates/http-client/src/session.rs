//! The login state shared by every clone of a client: the bearer token, and
//! a lock so that concurrent calls needing a login run one handshake.

use std::sync::{Mutex, PoisonError};

use hs_core::auth::AuthToken;
use zeroize::Zeroizing;

/// The outcome of a login: a bearer token, or `None` when the server let the
/// HELLO through (it runs without authentication).
#[derive(Clone)]
pub(crate) struct Grant {
    pub(crate) token: Option<AuthToken>,
}

impl Grant {
    /// Whether two grants are the same login (each login issues a new token).
    fn same(&self, other: &Grant) -> bool {
        self.token == other.token
    }
}

impl std::fmt::Debug for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grant").field("token", &self.token).finish()
    }
}

/// Username and password, kept for re-login (the reference erases the
/// password after the first login, so its clients fail once the token
/// expires). The password is wiped from memory when the client is dropped.
pub(crate) struct Credentials {
    pub(crate) username: String,
    pub(crate) password: Zeroizing<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

#[derive(Debug, Default)]
pub(crate) struct Session {
    current: Mutex<Option<Grant>>,
    /// Held while a handshake runs, so concurrent calls share one login.
    pub(crate) login: tokio::sync::Mutex<()>,
}

impl Session {
    pub(crate) fn current(&self) -> Option<Grant> {
        self.current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn set(&self, grant: Grant) {
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = Some(grant);
    }

    /// Forgets `stale` if it is still the current grant (a concurrent call
    /// may already have replaced it).
    pub(crate) fn invalidate(&self, stale: &Grant) {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        if current.as_ref().is_some_and(|grant| grant.same(stale)) {
            *current = None;
        }
    }

    pub(crate) fn take(&self) -> Option<Grant> {
        self.current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalidate_only_forgets_the_stale_grant() {
        let session = Session::default();
        let first = Grant {
            token: Some(AuthToken::new("a")),
        };
        let second = Grant {
            token: Some(AuthToken::new("b")),
        };
        session.set(second.clone());
        session.invalidate(&first);
        assert!(session.current().is_some(), "a newer login survives");
        session.invalidate(&second);
        assert!(session.current().is_none());
        assert!(format!("{second:?}").contains("redacted"));
    }
}
