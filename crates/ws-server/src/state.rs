//! The server state shared by every connection, and its builder.

use hs_core::observe::targets;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use hs_core::auth::{Authorizer, CertUserMap, RoleAuthorizer, ScramServer, TokenStore};
use hs_core::observe::{GuardedObserver, MetricsObserver};
use hs_core::ops::{HaystackOps, Pipeline};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::WsConfig;

/// How clients authenticate (docs/protocol.md 4.3).
#[derive(Clone, Default)]
pub(crate) struct AuthSettings {
    /// A fixed token accepted in `{"authToken":..}`.
    pub(crate) static_token: Option<String>,
    /// Live tokens (issued by SCRAM here or over HTTP) accepted in
    /// `{"authToken":..}`.
    pub(crate) tokens: Option<TokenStore>,
    /// SCRAM-SHA-256 over WebSocket messages.
    pub(crate) scram: Option<ScramServer>,
    /// Verified client certificates that stand for a login.
    pub(crate) cert_users: CertUserMap,
}

impl AuthSettings {
    /// Whether a client must authenticate before its first request.
    pub(crate) fn required(&self) -> bool {
        self.static_token.is_some()
            || self.tokens.is_some()
            || self.scram.is_some()
            || !self.cert_users.is_empty()
    }
}

/// Everything a connection needs: the ops, the guarded observer, the limits,
/// authentication, and the shutdown switch. Cheap to clone.
///
/// Build one with [`WsServerState::builder`], then mount it with
/// [`router`](crate::router) / [`method_router`](crate::method_router) or
/// serve it with [`WsServer`](crate::WsServer).
#[derive(Clone)]
pub struct WsServerState {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    /// The ops and the authorizer, as every request runs them.
    pub(crate) pipeline: Pipeline,
    pub(crate) observer: GuardedObserver,
    pub(crate) config: WsConfig,
    pub(crate) auth: AuthSettings,
    pub(crate) connections: Arc<Semaphore>,
    /// Bytes held by every connection's answers ([`WsServerState::queued_bytes`]).
    pub(crate) queued: Arc<AtomicUsize>,
    pub(crate) shutdown: CancellationToken,
    pub(crate) tracker: TaskTracker,
}

impl std::fmt::Debug for WsServerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsServerState")
            .field("observer", &self.inner.observer)
            .field("config", &self.inner.config)
            .field("auth_required", &self.inner.auth.required())
            .field("scram", &self.inner.auth.scram.is_some())
            .field("connections", &self.connection_count())
            .field("queued_bytes", &self.queued_bytes())
            .finish_non_exhaustive()
    }
}

impl WsServerState {
    /// A builder serving `ops`.
    pub fn builder(ops: Arc<dyn HaystackOps>) -> WsServerStateBuilder {
        WsServerStateBuilder {
            ops,
            observer: hs_core::observe::noop(),
            config: WsConfig::default(),
            auth: AuthSettings::default(),
            authorizer: None,
        }
    }

    /// The limits in force.
    pub fn config(&self) -> &WsConfig {
        &self.inner.config
    }

    /// Open WebSocket connections.
    pub fn connection_count(&self) -> usize {
        self.inner.config.max_connections - self.inner.connections.available_permits()
    }

    /// Bytes the answers of every open connection hold: queued for sending,
    /// being written, or reserved by requests about to encode their answers.
    /// A gauge of the memory slow readers cost: each connection holds at most
    /// [`WsConfig::send_budget`], so this never exceeds
    /// `max_connections × send_budget`; it falls back as peers read and to 0
    /// when connections end.
    pub fn queued_bytes(&self) -> usize {
        self.inner.queued.load(Ordering::Relaxed)
    }

    /// Starts a graceful shutdown: every connection is closed with 1001 and
    /// new upgrades are refused (503). Await [`closed`](Self::closed) for the
    /// connections to finish.
    pub fn shutdown(&self) {
        if !self.inner.shutdown.is_cancelled() {
            log::info!(target: targets::WS_SERVER, "shutting down: closing {} connections", self.connection_count());
        }
        self.inner.shutdown.cancel();
        self.inner.tracker.close();
    }

    /// Whether [`shutdown`](Self::shutdown) was called.
    pub fn is_shutting_down(&self) -> bool {
        self.inner.shutdown.is_cancelled()
    }

    /// Resolves once shutdown was requested and every connection (and every
    /// request still running on one) has finished.
    pub async fn closed(&self) {
        self.inner.shutdown.cancelled().await;
        self.inner.tracker.wait().await;
    }
}

/// Builds a [`WsServerState`].
pub struct WsServerStateBuilder {
    ops: Arc<dyn HaystackOps>,
    observer: Arc<dyn MetricsObserver>,
    config: WsConfig,
    auth: AuthSettings,
    authorizer: Option<Arc<dyn Authorizer>>,
}

impl std::fmt::Debug for WsServerStateBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsServerStateBuilder")
            .field("observer", &self.observer.observer_name())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl WsServerStateBuilder {
    /// The observer of every connection, message, request and error (default:
    /// no-op). It is wrapped once in a [`GuardedObserver`].
    #[must_use]
    pub fn observer(mut self, observer: Arc<dyn MetricsObserver>) -> Self {
        self.observer = observer;
        self
    }

    /// Limits and timers (default: [`WsConfig::default`]).
    #[must_use]
    pub fn config(mut self, config: WsConfig) -> Self {
        self.config = config;
        self
    }

    /// Requires the first message to be `{"authToken":"<token>"}` with this
    /// token (compared in constant time). Success is silent.
    #[must_use]
    pub fn static_token(mut self, token: impl Into<String>) -> Self {
        self.auth.static_token = Some(token.into());
        self
    }

    /// Requires authentication and accepts, in `{"authToken":..}`, any live
    /// token of `tokens`: share the store with the HTTP server and a token
    /// obtained over HTTP works here, and one issued here by SCRAM works there.
    #[must_use]
    pub fn token_store(mut self, tokens: TokenStore) -> Self {
        self.auth.tokens = Some(tokens);
        self
    }

    /// Enables SCRAM-SHA-256 over WebSocket messages (docs/protocol.md 4.3). The
    /// `authOk` token comes from the [`TokenStore`] `scram` issues into
    /// (share it, and the `ScramServer`, with the HTTP server), and is
    /// accepted in `{"authToken":..}` here and as a bearer token there. The
    /// HTTP server's setter of the same name takes the same `ScramServer`.
    #[must_use]
    pub fn auth(mut self, scram: ScramServer) -> Self {
        self.auth.tokens = Some(scram.tokens().clone());
        self.auth.scram = Some(scram);
        self
    }

    /// Lets a verified client certificate stand for a login: a connection
    /// whose client certificate a rule of `map` maps starts authenticated as
    /// the mapped principal, with no auth messages (a client with such a
    /// certificate sends no credentials). Other connections authenticate as
    /// configured ([`auth`](Self::auth), [`token_store`](Self::token_store)),
    /// and are refused when nothing else is configured. Needs a server
    /// whose TLS configuration asks for client certificates.
    #[must_use]
    pub fn cert_users(mut self, map: CertUserMap) -> Self {
        self.auth.cert_users = map;
        self
    }

    /// Decides which ops an authenticated principal may run (default:
    /// [`RoleAuthorizer::new`]: readers may read and watch, not write). Not consulted when the
    /// client is anonymous (no auth, or the static token).
    #[must_use]
    pub fn authorizer(mut self, authorizer: Arc<dyn Authorizer>) -> Self {
        self.authorizer = Some(authorizer);
        self
    }

    /// Builds the state.
    pub fn build(self) -> WsServerState {
        let max_connections = self.config.max_connections;
        WsServerState {
            inner: Arc::new(Inner {
                pipeline: Pipeline::new(
                    self.ops,
                    self.authorizer
                        .unwrap_or_else(|| Arc::new(RoleAuthorizer::new())),
                ),
                observer: GuardedObserver::new(self.observer),
                config: self.config,
                auth: self.auth,
                connections: Arc::new(Semaphore::new(max_connections)),
                queued: Arc::new(AtomicUsize::new(0)),
                shutdown: CancellationToken::new(),
                tracker: TaskTracker::new(),
            }),
        }
    }
}
