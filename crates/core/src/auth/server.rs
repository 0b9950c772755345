use crate::observe::targets;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

use super::encoding::{b64url_decode_utf8, b64url_encode, random_bytes, random_token_32};
use super::scram::{self, CHANNEL_BINDING, ClientFinal, ClientFirst, Key};
use super::tokens::TokenStore;
use super::users::{Principal, SALT_LEN, ScramCredential, UserStore};
use super::{AuthError, HASH_NAME, http};
use crate::clock::{Clock, SystemClock, Throttle};

/// How long a handshake lives from its HELLO: 15 s, ample for a client's
/// PBKDF2 between the two SCRAM steps.
pub const DEFAULT_HANDSHAKE_TTL: Duration = Duration::from_secs(15);

/// How many handshakes may be in progress at once; one more HELLO evicts the
/// handshake that has waited longest for its next step.
pub const DEFAULT_MAX_HANDSHAKES: usize = 1_000;

/// How many handshakes one source address (an IPv4 address, an IPv6 /64)
/// may have in progress at once; one more HELLO from it is refused with
/// [`AuthError::TooManyHandshakes`].
pub const DEFAULT_MAX_HANDSHAKES_PER_SOURCE: usize = 32;

/// At most one WARN per this interval for each kind of refusal.
const WARN_INTERVAL: Duration = Duration::from_secs(1);

/// The answer to HELLO: a handshake token for the SCRAM first step.
///
/// An unknown user gets exactly the same answer as a known one.
#[derive(Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The new handshake token (32 base64url characters, single use).
    pub handshake_token: String,
}

impl Challenge {
    /// The hash name, always `SHA-256`.
    pub fn hash(&self) -> &'static str {
        HASH_NAME
    }

    /// The `WWW-Authenticate` value: `SCRAM hash=SHA-256, handshakeToken=<t>`.
    pub fn www_authenticate(&self) -> String {
        http::www_authenticate_hello(&self.handshake_token)
    }
}

/// The answer to the SCRAM first step: the server-first message and the
/// handshake token for the final step.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerFirst {
    /// The new handshake token (32 base64url characters, single use).
    pub handshake_token: String,
    /// base64url (no padding) of the server-first message.
    pub data: String,
}

impl ServerFirst {
    /// The hash name, always `SHA-256`.
    pub fn hash(&self) -> &'static str {
        HASH_NAME
    }

    /// The `WWW-Authenticate` value:
    /// `SCRAM handshakeToken=<t>, hash=SHA-256, data=<d>`.
    pub fn www_authenticate(&self) -> String {
        http::www_authenticate_server_first(&self.handshake_token, &self.data)
    }
}

/// A completed handshake: the auth token issued and the server-final message.
#[derive(Clone, PartialEq, Eq)]
pub struct Authenticated {
    /// The bearer token (43 base64url characters), already in the
    /// [`TokenStore`].
    pub auth_token: String,
    /// base64url (no padding) of the server-final message `v=<signature>`.
    pub data: String,
    /// Who authenticated.
    pub principal: Principal,
}

impl Authenticated {
    /// The `Authentication-Info` value: `authToken=<token>, data=<d>`.
    pub fn authentication_info(&self) -> String {
        http::authentication_info(&self.auth_token, &self.data)
    }
}

/// What [`ScramServer::step`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScramStep {
    /// The first step succeeded: send the server-first message (HTTP `401`
    /// with `WWW-Authenticate`, WebSocket `scram` message).
    Continue(ServerFirst),
    /// The final step succeeded (HTTP `200` with `Authentication-Info`,
    /// WebSocket `authOk`).
    Authenticated(Authenticated),
}

struct Handshake {
    username: String,
    /// When the HELLO arrived; the TTL counts from here across both steps.
    started: Instant,
    /// Where the HELLO came from, when the transport said.
    source: Option<IpAddr>,
    phase: Phase,
}

enum Phase {
    Hello,
    First {
        /// The user's credential, or a fake one for an unknown user.
        credential: ScramCredential,
        client_first_bare: String,
        server_first: String,
        nonce: String,
    },
}

struct Inner {
    users: UserStore,
    tokens: TokenStore,
    handshake_ttl: Duration,
    max_handshakes: usize,
    max_per_source: usize,
    /// Keys the fake credentials of unknown users.
    secret: Zeroizing<Key>,
    clock: Arc<dyn Clock>,
    fixed_nonce: Option<String>,
    handshakes: Mutex<Table>,
}

/// The handshakes in progress.
#[derive(Default)]
struct Table {
    /// By SHA-256 of their token.
    live: HashMap<Key, Handshake>,
    /// Tokens in the order their handshakes last moved, oldest first; a
    /// token no longer in `live` is skipped (and dropped) when met.
    order: VecDeque<Key>,
    /// Handshakes in progress per source (see [`source_key`]).
    per_source: HashMap<IpAddr, usize>,
    evictions: Option<Throttle>,
    refusals: Option<Throttle>,
}

impl Table {
    fn insert(&mut self, key: Key, handshake: Handshake) {
        if let Some(source) = handshake.source {
            *self.per_source.entry(source).or_default() += 1;
        }
        self.live.insert(key, handshake);
        self.order.push_back(key);
        // Tokens taken leave stale keys behind: drop them once they are
        // half the queue, so it stays proportional to the table.
        if self.order.len() > 2 * self.live.len() + 16 {
            let live = &self.live;
            self.order.retain(|key| live.contains_key(key));
        }
    }

    fn remove(&mut self, key: &Key) -> Option<Handshake> {
        let handshake = self.live.remove(key)?;
        if let Some(source) = handshake.source {
            if let Some(count) = self.per_source.get_mut(&source) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    self.per_source.remove(&source);
                }
            }
        }
        Some(handshake)
    }

    /// Removes the handshake that has waited longest for its next step.
    fn evict_oldest(&mut self) -> Option<Handshake> {
        while let Some(key) = self.order.pop_front() {
            if let Some(handshake) = self.remove(&key) {
                return Some(handshake);
            }
        }
        None
    }

    /// Removes the expired handshakes at the front of the queue (the queue
    /// is in HELLO order but for handshakes past their first step, so a few
    /// expired ones may stay until they are taken or reach the front).
    fn purge_expired(&mut self, now: Instant, ttl: Duration) {
        while let Some(key) = self.order.front() {
            match self.live.get(key) {
                Some(handshake) if now.saturating_duration_since(handshake.started) < ttl => {
                    return;
                }
                Some(_) => {
                    let key = *key;
                    self.remove(&key);
                }
                None => {}
            }
            self.order.pop_front();
        }
    }
}

/// The address handshakes are counted under: an IPv4 address (IPv4-mapped
/// IPv6 included) as is, an IPv6 address by its /64 prefix, which one host
/// usually has all of.
fn source_key(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(
                u128::from(v6) & 0xffff_ffff_ffff_ffff_0000_0000_0000_0000,
            )),
        },
    }
}

/// The server side of the SCRAM-SHA-256 handshake, independent of transport.
///
/// The HTTP server maps the outcomes onto status codes and headers (see
/// [`http::authenticate`] which does it all), the WebSocket server onto
/// `hello` / `scram` / `authOk` / `authErr` messages:
///
/// | call | success | failure |
/// | --- | --- | --- |
/// | [`hello`](Self::hello) | [`Challenge`]: 401 + `WWW-Authenticate`, WS `hello` | 401 bare challenge, WS `authErr` |
/// | [`step`](Self::step) with the first token | [`ScramStep::Continue`]: 401 + `WWW-Authenticate`, WS `scram` | 401 bare challenge, WS `authErr` |
/// | [`step`](Self::step) with the second token | [`ScramStep::Authenticated`]: 200 + `Authentication-Info`, WS `authOk` | [`AuthError::AuthenticationFailed`]: 403, WS `authErr` |
///
/// Every handshake token is single use: each step consumes the token it
/// was given, whatever the outcome, and success returns a new one. A
/// handshake lives [`DEFAULT_HANDSHAKE_TTL`] from its HELLO.
///
/// Pending handshakes are not a pool one client can drain: servers pass the
/// client's address ([`hello_from`](Self::hello_from)), and one address (an
/// IPv6 /64) may have [`DEFAULT_MAX_HANDSHAKES_PER_SOURCE`] in progress;
/// its next HELLO is refused with [`AuthError::TooManyHandshakes`] (HTTP
/// `429`). When [`DEFAULT_MAX_HANDSHAKES`] are in progress in all, a HELLO
/// evicts the handshake that has waited longest for its next step, so a
/// new login always gets a handshake. Both are logged at WARN, at most
/// once a second each.
///
/// Unknown users cannot be told from known ones: HELLO returns a token, the
/// first step a server-first message with a salt derived by HMAC from a
/// server secret and the username (stable, 16 bytes) and the store's
/// iteration count, and the final step fails like a wrong password.
///
/// As in haystack-py, the user is the one named in HELLO; the `n=` of the
/// client-first message is not used (it still enters the AuthMessage, so
/// the proof covers it).
///
/// Cheap to clone (an `Arc` inside); clones share the handshake table.
#[derive(Clone)]
pub struct ScramServer {
    inner: Arc<Inner>,
}

/// Configures a [`ScramServer`].
pub struct ScramServerBuilder {
    users: UserStore,
    tokens: TokenStore,
    handshake_ttl: Duration,
    max_handshakes: usize,
    max_per_source: usize,
    secret: Option<Zeroizing<Key>>,
    clock: Arc<dyn Clock>,
    fixed_nonce: Option<String>,
}

impl ScramServerBuilder {
    /// Sets how long a handshake lives from its HELLO.
    #[must_use]
    pub fn handshake_ttl(mut self, ttl: Duration) -> Self {
        self.handshake_ttl = ttl;
        self
    }

    /// Sets how many handshakes may be in progress at once (at least 1);
    /// past it, a HELLO evicts the oldest.
    #[must_use]
    pub fn max_handshakes(mut self, max: usize) -> Self {
        self.max_handshakes = max.max(1);
        self
    }

    /// Sets how many handshakes one source address may have in progress
    /// (at least 1); past it, its HELLOs are refused.
    #[must_use]
    pub fn max_handshakes_per_source(mut self, max: usize) -> Self {
        self.max_per_source = max.max(1);
        self
    }

    /// Sets the secret that keys unknown users' fake salts. Give the same
    /// secret across restarts if real salts are stable across restarts
    /// (persisted users), so a fake salt does not change when a real one
    /// would not. Default: random per server.
    #[must_use]
    pub fn secret(mut self, secret: [u8; 32]) -> Self {
        self.secret = Some(Zeroizing::new(secret));
        self
    }

    /// Sets the clock for handshake lifetimes (tests use a
    /// [`ManualClock`](crate::clock::ManualClock)).
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Test hook: the server nonce suffix to use instead of a random one, so
    /// captured exchanges and RFC test vectors can be replayed (feature
    /// `test-util`).
    #[cfg(feature = "test-util")]
    #[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
    #[must_use]
    pub fn fixed_server_nonce(mut self, suffix: impl Into<String>) -> Self {
        self.fixed_nonce = Some(suffix.into());
        self
    }

    /// Builds the server.
    pub fn build(self) -> ScramServer {
        ScramServer {
            inner: Arc::new(Inner {
                users: self.users,
                tokens: self.tokens,
                handshake_ttl: self.handshake_ttl,
                max_handshakes: self.max_handshakes,
                max_per_source: self.max_per_source,
                secret: self
                    .secret
                    .unwrap_or_else(|| Zeroizing::new(random_bytes::<32>())),
                clock: self.clock,
                fixed_nonce: self.fixed_nonce,
                handshakes: Mutex::default(),
            }),
        }
    }
}

impl fmt::Debug for ScramServerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramServerBuilder")
            .field("handshake_ttl", &self.handshake_ttl)
            .field("max_handshakes", &self.max_handshakes)
            .field("max_handshakes_per_source", &self.max_per_source)
            .finish_non_exhaustive()
    }
}

impl ScramServer {
    /// A server with the default lifetimes and a random secret.
    pub fn new(users: UserStore, tokens: TokenStore) -> Self {
        Self::builder(users, tokens).build()
    }

    /// A builder to set lifetimes, limits, secret and clock.
    pub fn builder(users: UserStore, tokens: TokenStore) -> ScramServerBuilder {
        ScramServerBuilder {
            users,
            tokens,
            handshake_ttl: DEFAULT_HANDSHAKE_TTL,
            max_handshakes: DEFAULT_MAX_HANDSHAKES,
            max_per_source: DEFAULT_MAX_HANDSHAKES_PER_SOURCE,
            secret: None,
            clock: Arc::new(SystemClock),
            fixed_nonce: None,
        }
    }

    /// The user store.
    pub fn users(&self) -> &UserStore {
        &self.inner.users
    }

    /// The token store tokens are issued into.
    pub fn tokens(&self) -> &TokenStore {
        &self.inner.tokens
    }

    /// Handshakes in progress (expired ones included until purged).
    pub fn handshakes_in_progress(&self) -> usize {
        self.inner.handshakes.lock().live.len()
    }

    /// The principal of a bearer token.
    pub fn authenticate_bearer(&self, auth_token: &str) -> Result<Principal, AuthError> {
        self.inner.tokens.validate(auth_token).ok_or_else(|| {
            log::debug!(target: targets::AUTH, "bearer token rejected (unknown, expired or revoked)");
            AuthError::InvalidToken
        })
    }

    /// Step 1, HELLO, from a client whose address the transport does not
    /// know: only the table's total bound applies. Servers call
    /// [`hello_from`](Self::hello_from).
    pub fn hello(&self, username_b64url: &str) -> Result<Challenge, AuthError> {
        self.hello_from(None, username_b64url)
    }

    /// Step 1, HELLO: `username_b64url` is the base64url (padding tolerated)
    /// of the UTF-8 username, `source` the client's address. Returns a
    /// handshake token, for known and unknown users alike, or
    /// [`AuthError::TooManyHandshakes`] when `source` has as many handshakes
    /// in progress as it may.
    pub fn hello_from(
        &self,
        source: Option<IpAddr>,
        username_b64url: &str,
    ) -> Result<Challenge, AuthError> {
        let username = b64url_decode_utf8(username_b64url).ok_or_else(|| {
            log::debug!(target: targets::AUTH, "HELLO with an undecodable username");
            AuthError::Malformed("username is not base64url UTF-8")
        })?;
        let source = source.map(source_key);
        let now = self.inner.clock.now();
        let token = random_token_32();
        {
            let mut table = self.inner.handshakes.lock();
            table.purge_expired(now, self.inner.handshake_ttl);
            if let Some(source) = source {
                let pending = table.per_source.get(&source).copied().unwrap_or(0);
                if pending >= self.inner.max_per_source {
                    let warn = table
                        .refusals
                        .get_or_insert_with(|| Throttle::new(WARN_INTERVAL))
                        .allow(now);
                    drop(table);
                    if let Some(suppressed) = warn {
                        log::warn!(
                            target: targets::AUTH,
                            "HELLO from {source} refused: {pending} handshakes in progress from that address ({suppressed} more refused since the last warning)",
                        );
                    }
                    return Err(AuthError::TooManyHandshakes);
                }
            }
            if table.live.len() >= self.inner.max_handshakes {
                let evicted = table.evict_oldest();
                let warn = table
                    .evictions
                    .get_or_insert_with(|| Throttle::new(WARN_INTERVAL))
                    .allow(now);
                if let (Some(evicted), Some(suppressed)) = (evicted, warn) {
                    log::warn!(
                        target: targets::AUTH,
                        "{} handshakes in progress: evicted the oldest, for {:?} ({suppressed} more evicted since the last warning)",
                        self.inner.max_handshakes,
                        evicted.username
                    );
                }
            }
            table.insert(
                scram::sha256(&token),
                Handshake {
                    username: username.clone(),
                    started: now,
                    source,
                    phase: Phase::Hello,
                },
            );
        }
        log::debug!(target: targets::AUTH, "HELLO for {username:?}: challenge sent");
        Ok(Challenge {
            handshake_token: token,
        })
    }

    /// Any SCRAM step: the first or the final one, as the handshake token's
    /// state says. This is what a server calls for `Authorization: SCRAM ..`
    /// or a WebSocket `scram` message.
    pub fn step(&self, handshake_token: &str, data: &str) -> Result<ScramStep, AuthError> {
        let handshake = self.take(handshake_token)?;
        match handshake.phase {
            Phase::Hello => self.first_step(handshake, data).map(ScramStep::Continue),
            Phase::First { .. } => self
                .final_step(handshake, data)
                .map(ScramStep::Authenticated),
        }
    }

    /// Step 2 only: `data` is base64url of the client-first message. A token
    /// from another step is refused (and consumed).
    pub fn first(&self, handshake_token: &str, data: &str) -> Result<ServerFirst, AuthError> {
        match self.step_expecting(handshake_token, data, true)? {
            ScramStep::Continue(first) => Ok(first),
            ScramStep::Authenticated(_) => Err(AuthError::UnknownHandshake),
        }
    }

    /// Step 3 only: `data` is base64url of the client-final message. A token
    /// from another step is refused (and consumed).
    pub fn finish(&self, handshake_token: &str, data: &str) -> Result<Authenticated, AuthError> {
        match self.step_expecting(handshake_token, data, false)? {
            ScramStep::Authenticated(done) => Ok(done),
            ScramStep::Continue(_) => Err(AuthError::UnknownHandshake),
        }
    }

    fn step_expecting(
        &self,
        handshake_token: &str,
        data: &str,
        first: bool,
    ) -> Result<ScramStep, AuthError> {
        let handshake = self.take(handshake_token)?;
        match (&handshake.phase, first) {
            (Phase::Hello, true) => self.first_step(handshake, data).map(ScramStep::Continue),
            (Phase::First { .. }, false) => self
                .final_step(handshake, data)
                .map(ScramStep::Authenticated),
            _ => {
                log::debug!(target: targets::AUTH, "handshake token used at the wrong step");
                Err(AuthError::UnknownHandshake)
            }
        }
    }

    /// Removes and returns a live handshake: every token is single use.
    fn take(&self, handshake_token: &str) -> Result<Handshake, AuthError> {
        let handshake = self
            .inner
            .handshakes
            .lock()
            .remove(&scram::sha256(handshake_token));
        let Some(handshake) = handshake else {
            log::debug!(target: targets::AUTH, "unknown or already used handshake token");
            return Err(AuthError::UnknownHandshake);
        };
        let age = self
            .inner
            .clock
            .now()
            .saturating_duration_since(handshake.started);
        if age >= self.inner.handshake_ttl {
            log::debug!(target: targets::AUTH, "handshake for {:?} expired after {age:?}", handshake.username);
            return Err(AuthError::HandshakeExpired);
        }
        Ok(handshake)
    }

    fn first_step(&self, handshake: Handshake, data: &str) -> Result<ServerFirst, AuthError> {
        let username = handshake.username;
        let message = b64url_decode_utf8(data).ok_or_else(|| {
            log::debug!(target: targets::AUTH, "SCRAM first step for {username:?}: data is not base64url UTF-8");
            AuthError::Malformed("data is not base64url UTF-8")
        })?;
        let client_first = ClientFirst::parse(&message).inspect_err(|err| {
            log::debug!(target: targets::AUTH, "SCRAM first step for {username:?}: {err}");
        })?;
        // The fake is derived for known users too, so both paths cost the same.
        let fake = self.fake_credential(&username);
        let credential = self.inner.users.credential(&username).unwrap_or(fake);
        let suffix = self
            .inner
            .fixed_nonce
            .clone()
            .unwrap_or_else(random_token_32);
        let nonce = format!("{}{suffix}", client_first.nonce);
        let server_first = scram::ServerFirst {
            nonce: nonce.clone(),
            salt: credential.salt().to_vec(),
            iterations: credential.iterations(),
        }
        .to_message();
        let token = random_token_32();
        let data = b64url_encode(&server_first);
        self.inner.handshakes.lock().insert(
            scram::sha256(&token),
            Handshake {
                username: username.clone(),
                started: handshake.started,
                source: handshake.source,
                phase: Phase::First {
                    credential,
                    client_first_bare: client_first.bare,
                    server_first,
                    nonce,
                },
            },
        );
        log::debug!(target: targets::AUTH, "SCRAM first step for {username:?}: server-first sent");
        Ok(ServerFirst {
            handshake_token: token,
            data,
        })
    }

    fn final_step(&self, handshake: Handshake, data: &str) -> Result<Authenticated, AuthError> {
        let Handshake {
            username, phase, ..
        } = handshake;
        let Phase::First {
            credential,
            client_first_bare,
            server_first,
            nonce,
        } = phase
        else {
            return Err(AuthError::UnknownHandshake);
        };
        let message = b64url_decode_utf8(data).ok_or_else(|| {
            log::debug!(target: targets::AUTH, "SCRAM final step for {username:?}: data is not base64url UTF-8");
            AuthError::Malformed("data is not base64url UTF-8")
        })?;
        let fail = |reason: &str| {
            log::warn!(target: targets::AUTH, "authentication failed for {username:?}: {reason}");
            AuthError::AuthenticationFailed
        };
        let client_final =
            ClientFinal::parse(&message).map_err(|_| fail("malformed client-final"))?;
        if client_final.channel_binding != CHANNEL_BINDING {
            return Err(fail("channel binding is not biws"));
        }
        if !bool::from(client_final.nonce.as_bytes().ct_eq(nonce.as_bytes())) {
            return Err(fail("nonce mismatch"));
        }
        if client_final.proof.len() != scram::KEY_LEN {
            return Err(fail("proof of the wrong length"));
        }
        let auth_message = scram::auth_message(
            &client_first_bare,
            &server_first,
            &client_final.without_proof,
        );
        // Unknown users run the same check against a fake credential, so the
        // time taken does not tell them apart either.
        let proof_ok = credential.verify_proof(&auth_message, &client_final.proof);
        let role = self.inner.users.role(&username);
        let (true, Some(role)) = (proof_ok, role) else {
            return Err(fail("wrong proof or unknown user"));
        };
        let signature = credential.server_signature(&auth_message);
        let principal = Principal::new(username, role);
        let auth_token = self.inner.tokens.issue(principal.clone());
        log::info!(target: targets::AUTH, "{:?} authenticated as {}", principal.username, principal.role);
        Ok(Authenticated {
            auth_token,
            data: b64url_encode(scram::ServerFinal::Verifier(signature.to_vec()).to_message()),
            principal,
        })
    }

    /// A stable, secret-keyed credential for a user that does not exist: the
    /// same salt every time for the same name, the store's iteration count,
    /// and keys no password matches.
    fn fake_credential(&self, username: &str) -> ScramCredential {
        let secret = &self.inner.secret;
        let salt = scram::hmac(secret, format!("fake-salt\0{username}"));
        ScramCredential::from_keys(
            salt[..SALT_LEN].to_vec(),
            self.inner.users.iterations(),
            scram::hmac(secret, format!("fake-stored-key\0{username}")),
            scram::hmac(secret, format!("fake-server-key\0{username}")),
        )
    }
}

impl fmt::Debug for ScramServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramServer")
            .field("users", &self.inner.users)
            .field("tokens", &self.inner.tokens)
            .field("handshake_ttl", &self.inner.handshake_ttl)
            .field("max_handshakes", &self.inner.max_handshakes)
            .field("max_handshakes_per_source", &self.inner.max_per_source)
            .field("handshakes_in_progress", &self.handshakes_in_progress())
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Challenge")
            .field("handshake_token", &"<redacted>")
            .finish()
    }
}

impl fmt::Debug for ServerFirst {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerFirst")
            .field("handshake_token", &"<redacted>")
            .field("data", &self.data)
            .finish()
    }
}

impl fmt::Debug for Authenticated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticated")
            .field("auth_token", &"<redacted>")
            .field("data", &self.data)
            .field("principal", &self.principal)
            .finish()
    }
}
