use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use parking_lot::RwLock;
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

use super::encoding::random_bytes;
use super::scram::{self, Key};

/// PBKDF2 iterations for new users: 600 000, OWASP's figure for
/// PBKDF2-HMAC-SHA-256 and haystack-py's default. It costs the *client*
/// about a quarter of a second per login on a 2020s CPU in a release build
/// (the server stores derived keys and never runs PBKDF2 at login). Tests use
/// [`UserStore::with_iterations`]`(4096)`, the protocol minimum.
pub const DEFAULT_ITERATIONS: u32 = 600_000;

/// Salt length for new credentials, in bytes.
pub(crate) const SALT_LEN: usize = 16;

/// What a principal may do; ordered, `Reader < Operator < Admin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Role {
    /// Read-only access (see [`RoleAuthorizer`](super::RoleAuthorizer) for the op list).
    Reader,
    /// May also write: hisWrite, pointWrite, invokeAction.
    Operator,
    /// Everything.
    Admin,
}

impl Role {
    /// The lowercase name: `reader`, `operator`, `admin`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "reader" | "viewer" => Ok(Role::Reader),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            _ => Err(UnknownRole(s.to_owned())),
        }
    }
}

/// A role name that is not `reader`, `operator` or `admin`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}")]
pub struct UnknownRole(pub String);

/// An authenticated user.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Principal {
    /// The username.
    pub username: String,
    /// The user's role.
    pub role: Role,
}

impl Principal {
    /// A principal named `username` with `role`.
    pub fn new(username: impl Into<String>, role: Role) -> Self {
        Principal {
            username: username.into(),
            role,
        }
    }
}

/// A user's SCRAM-SHA-256 credential: salt, iteration count, `StoredKey` and
/// `ServerKey`. The password cannot be recovered from it. `Debug` shows only
/// the iteration count and salt length.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramCredential {
    salt: Vec<u8>,
    iterations: u32,
    stored_key: Key,
    server_key: Key,
}

impl ScramCredential {
    /// Derives a credential from a password with a new random 16-byte salt.
    pub fn new(password: &str, iterations: u32) -> Self {
        Self::derive(password, &random_bytes::<SALT_LEN>(), iterations)
    }

    /// Derives a credential from a password with a given salt (for tests and
    /// for reproducing a captured exchange).
    pub fn derive(password: &str, salt: &[u8], iterations: u32) -> Self {
        let password = Zeroizing::new(password.as_bytes().to_vec());
        let salted = scram::salted_password(&password, salt, iterations);
        let client_key = scram::client_key(&salted);
        ScramCredential {
            salt: salt.to_vec(),
            iterations: iterations.max(1),
            stored_key: scram::stored_key(&client_key),
            server_key: scram::server_key(&salted),
        }
    }

    /// A credential from stored parts (as loaded from a user database).
    pub fn from_keys(salt: Vec<u8>, iterations: u32, stored_key: Key, server_key: Key) -> Self {
        ScramCredential {
            salt,
            iterations,
            stored_key,
            server_key,
        }
    }

    /// The salt.
    pub fn salt(&self) -> &[u8] {
        &self.salt
    }

    /// The PBKDF2 iteration count.
    pub fn iterations(&self) -> u32 {
        self.iterations
    }

    /// `StoredKey = SHA-256(ClientKey)`.
    pub fn stored_key(&self) -> &Key {
        &self.stored_key
    }

    /// `ServerKey`.
    pub fn server_key(&self) -> &Key {
        &self.server_key
    }

    /// Checks a client proof against `auth_message` in constant time: a
    /// proof of the wrong length is simply false.
    pub fn verify_proof(&self, auth_message: &str, proof: &[u8]) -> bool {
        let Ok(proof) = <&Key>::try_from(proof) else {
            return false;
        };
        let signature = scram::client_signature(&self.stored_key, auth_message);
        let client_key = Zeroizing::new(scram::xor(proof, &signature));
        scram::stored_key(&client_key)
            .ct_eq(&self.stored_key)
            .into()
    }

    /// `ServerSignature` for `auth_message`.
    pub fn server_signature(&self, auth_message: &str) -> Key {
        scram::server_signature(&self.server_key, auth_message)
    }
}

impl fmt::Debug for ScramCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramCredential")
            .field("iterations", &self.iterations)
            .field("salt_len", &self.salt.len())
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
struct UserRecord {
    credential: ScramCredential,
    role: Role,
}

/// Users, each with a [`ScramCredential`] and a [`Role`]. Passwords are
/// turned into salted keys on insertion and never kept.
///
/// Cheap to clone (an `Arc` inside): clones share the same users, so users
/// added later are seen by a [`ScramServer`](super::ScramServer) already
/// built from a clone.
///
/// ```
/// use hs_core::auth::{Role, UserStore};
///
/// let users = UserStore::new().with_iterations(4096);
/// users.add_user("demo", "demo-pass", Role::Reader);
/// assert_eq!(users.role("demo"), Some(Role::Reader));
/// assert_eq!(users.credential("demo").unwrap().salt().len(), 16);
/// ```
#[derive(Clone)]
pub struct UserStore {
    users: Arc<RwLock<HashMap<String, UserRecord>>>,
    iterations: u32,
}

impl UserStore {
    /// An empty store deriving new credentials with [`DEFAULT_ITERATIONS`].
    pub fn new() -> Self {
        UserStore {
            users: Arc::default(),
            iterations: DEFAULT_ITERATIONS,
        }
    }

    /// Sets the PBKDF2 iteration count for users added from now on (and the
    /// count shown to unknown users). Clients refuse fewer than 4096.
    ///
    /// # Panics
    ///
    /// If `iterations` is 0.
    #[must_use]
    pub fn with_iterations(mut self, iterations: u32) -> Self {
        assert!(iterations > 0, "PBKDF2 needs at least one iteration");
        self.iterations = iterations;
        self
    }

    /// The iteration count new users get.
    pub fn iterations(&self) -> u32 {
        self.iterations
    }

    /// Adds (or replaces) a user, deriving a credential with a new random
    /// 16-byte salt. Runs PBKDF2: slow by design.
    pub fn add_user(&self, username: impl Into<String>, password: &str, role: Role) {
        let credential = ScramCredential::new(password, self.iterations);
        self.insert_credential(username, credential, role);
    }

    /// Adds (or replaces) a user with an existing credential.
    pub fn insert_credential(
        &self,
        username: impl Into<String>,
        credential: ScramCredential,
        role: Role,
    ) {
        self.users
            .write()
            .insert(username.into(), UserRecord { credential, role });
    }

    /// Removes a user; `true` if it existed. Tokens already issued stay valid
    /// until revoked (see [`TokenStore::revoke_user`](super::TokenStore::revoke_user)).
    pub fn remove_user(&self, username: &str) -> bool {
        self.users.write().remove(username).is_some()
    }

    /// The user's role, if the user exists.
    pub fn role(&self, username: &str) -> Option<Role> {
        self.users.read().get(username).map(|user| user.role)
    }

    /// The user's credential, if the user exists.
    pub fn credential(&self, username: &str) -> Option<ScramCredential> {
        self.users
            .read()
            .get(username)
            .map(|user| user.credential.clone())
    }

    /// Number of users.
    pub fn len(&self) -> usize {
        self.users.read().len()
    }

    /// `true` when there are no users.
    pub fn is_empty(&self) -> bool {
        self.users.read().is_empty()
    }
}

impl Default for UserStore {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for UserStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserStore")
            .field("users", &self.len())
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn credentials_hold_no_password_and_verify() {
        let users = UserStore::new().with_iterations(4096);
        users.add_user("a", "secret-pw", Role::Admin);
        let credential = users.credential("a").unwrap();
        assert_eq!(credential.salt().len(), SALT_LEN);
        assert_eq!(credential.iterations(), 4096);
        let debug = format!("{credential:?} {users:?}");
        assert!(!debug.contains("secret-pw"));
        assert!(!debug.contains("stored_key"));
        // Two users with the same password get different salts and keys.
        users.add_user("b", "secret-pw", Role::Reader);
        assert_ne!(users.credential("b").unwrap(), credential);
        assert!(users.remove_user("b"));
        assert_eq!(users.len(), 1);
    }

    #[test]
    fn roles_parse_and_order() {
        assert_eq!("Operator".parse::<Role>().unwrap(), Role::Operator);
        assert!("root".parse::<Role>().is_err());
        assert!(Role::Reader < Role::Operator && Role::Operator < Role::Admin);
    }

    #[test]
    fn wrong_length_proof_is_false() {
        let credential = ScramCredential::derive("pw", &[0; 16], 4096);
        assert!(!credential.verify_proof("msg", &[0; 31]));
        assert!(!credential.verify_proof("msg", &[0; 32]));
    }
}
