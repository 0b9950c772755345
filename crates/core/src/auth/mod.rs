//! SCRAM-SHA-256 authentication as Project Haystack (and haystack-py) uses
//! it, auth tokens, and role-based authorisation.
//!
//! The pieces, each transport-agnostic so the HTTP and WebSocket servers and
//! clients share them:
//!
//! | item | job |
//! | --- | --- |
//! | [`UserStore`] | users with salted SCRAM credentials (never the password) and a [`Role`] |
//! | [`TokenStore`] | auth tokens with a TTL and revocation, shared by both servers |
//! | [`AuthToken`] | a bearer token as a client holds it (redacted in `Debug`) |
//! | [`ScramServer`] | the server side of the handshake: [`hello`](ScramServer::hello), [`step`](ScramServer::step) ([`first`](ScramServer::first) / [`finish`](ScramServer::finish)) |
//! | [`ScramClient`] | the client side of the handshake |
//! | [`http`] | `Authorization`, `WWW-Authenticate` and `Authentication-Info` header values |
//! | [`scram`] | the RFC 5802 primitives and message formats |
//! | [`Authorizer`], [`RoleAuthorizer`] | which principal may run which op |
//! | [`CertUserMap`], [`PeerCertificate`] | verified client certificates as logins (mutual TLS) |
//!
//! A whole handshake, in memory:
//!
//! ```
//! use hs_core::auth::{Role, ScramClient, ScramServer, ScramStep, TokenStore, UserStore};
//!
//! let users = UserStore::new().with_iterations(4096);
//! users.add_user("demo", "demo-pass", Role::Operator);
//! let tokens = TokenStore::new();
//! let server = ScramServer::new(users, tokens.clone());
//!
//! let mut client = ScramClient::new("demo", "demo-pass");
//! let challenge = server.hello(&client.hello_username())?;
//! let first = server.first(&challenge.handshake_token, &client.client_first())?;
//! let client_final = client.client_final(&first.data)?;
//! let ScramStep::Authenticated(done) = server.step(&first.handshake_token, &client_final)? else {
//!     unreachable!("the final step authenticates or fails")
//! };
//! client.verify_server_final(&done.data)?;
//! assert_eq!(tokens.validate(&done.auth_token).map(|p| p.role), Some(Role::Operator));
//! # Ok::<(), hs_core::auth::AuthError>(())
//! ```
//!
//! Logging goes to target [`targets::AUTH`](crate::observe::targets::AUTH) (`hs::auth`): DEBUG for handshake
//! steps, INFO when a user is authenticated, WARN for failures and a full
//! handshake table. Passwords, proofs, salted keys and tokens are never
//! logged, at any level, and the `Debug` impls of every type holding one
//! redact it.

mod authorize;
mod bearer;
mod cert;
mod client;
mod error;
mod server;
mod tokens;
mod users;

mod encoding;
pub mod http;
pub mod scram;

pub use authorize::{Access, AllowAll, Authorizer, RoleAuthorizer};
pub use bearer::AuthToken;
pub use cert::{CertField, CertUserMap, CertUserRule, PeerCertificate};
pub use client::{DEFAULT_MAX_ITERATIONS, DEFAULT_MIN_ITERATIONS, ScramClient};
pub use error::{AuthError, AuthFailure};
pub use server::{
    Authenticated, Challenge, DEFAULT_HANDSHAKE_TTL, DEFAULT_MAX_HANDSHAKES,
    DEFAULT_MAX_HANDSHAKES_PER_SOURCE, ScramServer, ScramServerBuilder, ScramStep, ServerFirst,
};
pub use tokens::{DEFAULT_MAX_TOKENS, DEFAULT_TOKEN_TTL, TokenStore};
pub use users::{DEFAULT_ITERATIONS, Principal, Role, ScramCredential, UnknownRole, UserStore};

/// The hash name carried in `hash=` parameters and WebSocket `hash` fields.
pub(crate) const HASH_NAME: &str = "SHA-256";
