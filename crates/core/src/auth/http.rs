//! The HTTP face of Haystack auth (docs/protocol.md 3.1 to 3.3): parsing and
//! building `Authorization`, `WWW-Authenticate` and `Authentication-Info`
//! values, and [`authenticate`], which runs one request's `Authorization`
//! header through a [`ScramServer`] and says what to answer.
//!
//! Header syntax: `SCHEME name=value, name=value` (`Authentication-Info`
//! has no scheme). Values never contain commas; parameters are split on `,`,
//! then on the first `=`, and trimmed. Schemes and parameter names are
//! matched case-insensitively.
//!
//! ```
//! use hs_core::auth::http::Authorization;
//!
//! let header = Authorization::parse("bearer authToken=abc").unwrap();
//! assert_eq!(header, Authorization::Bearer { auth_token: "abc".into() });
//! assert_eq!(header.header_value(), "BEARER authToken=abc");
//! ```

use crate::observe::targets;
use std::fmt;
use std::net::IpAddr;

use super::encoding::b64url_encode;
use super::server::{ScramServer, ScramStep};
use super::users::Principal;
use super::{AuthError, HASH_NAME};

/// The body of the `403` that answers a rejected final step.
pub const AUTH_FAILED_BODY: &str = "Authentication failed";

/// Splits `name=value, name=value` into trimmed pairs; parts without `=` are
/// skipped.
pub(crate) fn parse_params(params: &str) -> Vec<(&str, &str)> {
    params
        .split(',')
        .filter_map(|part| part.split_once('='))
        .map(|(name, value)| (name.trim(), value.trim()))
        .collect()
}

fn param<'a>(params: &[(&str, &'a str)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| *v)
}

fn required<'a>(
    params: &[(&str, &'a str)],
    name: &str,
    what: &'static str,
) -> Result<&'a str, AuthError> {
    param(params, name)
        .filter(|v| !v.is_empty())
        .ok_or(AuthError::Malformed(what))
}

/// Splits `SCHEME rest` at the first whitespace.
fn split_scheme(value: &str) -> (&str, &str) {
    let value = value.trim();
    match value.split_once(char::is_whitespace) {
        Some((scheme, rest)) => (scheme, rest.trim()),
        None => (value, ""),
    }
}

/// A parsed `Authorization` request header. `Debug` redacts tokens and data.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Authorization {
    /// `HELLO username=<b64url(user)>`.
    Hello {
        /// The base64url username, as sent (decode with [`ScramServer::hello`]).
        username: String,
    },
    /// `SCRAM handshakeToken=<t>, data=<b64url(message)>`.
    Scram {
        /// The handshake token.
        handshake_token: String,
        /// base64url of the SCRAM message.
        data: String,
    },
    /// `BEARER authToken=<token>`.
    Bearer {
        /// The auth token.
        auth_token: String,
    },
}

impl Authorization {
    /// `HELLO` for a plain username (encodes it).
    pub fn hello(username: &str) -> Self {
        Authorization::Hello {
            username: b64url_encode(username),
        }
    }

    /// Parses an `Authorization` value. Schemes other than HELLO, SCRAM and
    /// BEARER (e.g. `Basic`) are [`AuthError::UnsupportedScheme`]; a missing
    /// parameter is [`AuthError::Malformed`].
    pub fn parse(value: &str) -> Result<Self, AuthError> {
        let (scheme, rest) = split_scheme(value);
        let params = parse_params(rest);
        if scheme.eq_ignore_ascii_case("HELLO") {
            Ok(Authorization::Hello {
                username: required(&params, "username", "HELLO without username")?.to_owned(),
            })
        } else if scheme.eq_ignore_ascii_case("SCRAM") {
            Ok(Authorization::Scram {
                handshake_token: required(
                    &params,
                    "handshakeToken",
                    "SCRAM without handshakeToken",
                )?
                .to_owned(),
                data: required(&params, "data", "SCRAM without data")?.to_owned(),
            })
        } else if scheme.eq_ignore_ascii_case("BEARER") {
            Ok(Authorization::Bearer {
                auth_token: required(&params, "authToken", "BEARER without authToken")?.to_owned(),
            })
        } else {
            Err(AuthError::UnsupportedScheme(
                scheme.chars().take(32).collect(),
            ))
        }
    }

    /// The scheme as written: `HELLO`, `SCRAM` or `BEARER`.
    pub fn scheme(&self) -> &'static str {
        match self {
            Authorization::Hello { .. } => "HELLO",
            Authorization::Scram { .. } => "SCRAM",
            Authorization::Bearer { .. } => "BEARER",
        }
    }

    /// The header value, as the haystack-py client writes it.
    pub fn header_value(&self) -> String {
        match self {
            Authorization::Hello { username } => format!("HELLO username={username}"),
            Authorization::Scram {
                handshake_token,
                data,
            } => {
                format!("SCRAM handshakeToken={handshake_token}, data={data}")
            }
            Authorization::Bearer { auth_token } => format!("BEARER authToken={auth_token}"),
        }
    }
}

impl fmt::Debug for Authorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Authorization::Hello { username } => {
                f.debug_struct("Hello").field("username", username).finish()
            }
            Authorization::Scram { .. } => f
                .debug_struct("Scram")
                .field("handshake_token", &"<redacted>")
                .field("data", &"<redacted>")
                .finish(),
            Authorization::Bearer { .. } => f
                .debug_struct("Bearer")
                .field("auth_token", &"<redacted>")
                .finish(),
        }
    }
}

/// A parsed `WWW-Authenticate: SCRAM ...` challenge (client side).
#[derive(Clone, PartialEq, Eq)]
pub struct WwwAuthenticate {
    /// `hash=`, normally `SHA-256`.
    pub hash: Option<String>,
    /// `handshakeToken=`: absent on a bare challenge (a refusal).
    pub handshake_token: Option<String>,
    /// `data=`: the server-first message, after the SCRAM first step.
    pub data: Option<String>,
}

impl WwwAuthenticate {
    /// Parses a `WWW-Authenticate` value; only the SCRAM scheme is
    /// understood, and a hash other than SHA-256 is refused.
    pub fn parse(value: &str) -> Result<Self, AuthError> {
        let (scheme, rest) = split_scheme(value);
        if !scheme.eq_ignore_ascii_case("SCRAM") {
            return Err(AuthError::UnsupportedScheme(
                scheme.chars().take(32).collect(),
            ));
        }
        let params = parse_params(rest);
        let hash = param(&params, "hash").map(str::to_owned);
        if let Some(hash) = &hash {
            if !hash.eq_ignore_ascii_case(HASH_NAME) {
                return Err(AuthError::UnsupportedHash(hash.chars().take(32).collect()));
            }
        }
        let get = |name| {
            param(&params, name)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        Ok(WwwAuthenticate {
            hash,
            handshake_token: get("handshakeToken"),
            data: get("data"),
        })
    }
}

impl fmt::Debug for WwwAuthenticate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WwwAuthenticate")
            .field("hash", &self.hash)
            .field(
                "handshake_token",
                &self.handshake_token.as_ref().map(|_| "<redacted>"),
            )
            .field("data", &self.data)
            .finish()
    }
}

/// A parsed `Authentication-Info` value (client side).
#[derive(Clone, PartialEq, Eq)]
pub struct AuthenticationInfo {
    /// `authToken=`.
    pub auth_token: String,
    /// `data=`: the server-final message.
    pub data: Option<String>,
}

impl AuthenticationInfo {
    /// Parses an `Authentication-Info` value (no scheme).
    pub fn parse(value: &str) -> Result<Self, AuthError> {
        let params = parse_params(value);
        Ok(AuthenticationInfo {
            auth_token: required(
                &params,
                "authToken",
                "Authentication-Info without authToken",
            )?
            .to_owned(),
            data: param(&params, "data")
                .filter(|v| !v.is_empty())
                .map(str::to_owned),
        })
    }
}

impl fmt::Debug for AuthenticationInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthenticationInfo")
            .field("auth_token", &"<redacted>")
            .field("data", &self.data)
            .finish()
    }
}

/// The bare challenge sent with every refusal: `SCRAM hash=SHA-256`.
pub(crate) fn www_authenticate_bare() -> String {
    format!("SCRAM hash={HASH_NAME}")
}

/// The answer to HELLO: `SCRAM hash=SHA-256, handshakeToken=<t>`.
pub(crate) fn www_authenticate_hello(handshake_token: &str) -> String {
    format!("SCRAM hash={HASH_NAME}, handshakeToken={handshake_token}")
}

/// The answer to the SCRAM first step:
/// `SCRAM handshakeToken=<t>, hash=SHA-256, data=<d>`.
pub(crate) fn www_authenticate_server_first(handshake_token: &str, data: &str) -> String {
    format!("SCRAM handshakeToken={handshake_token}, hash={HASH_NAME}, data={data}")
}

/// The answer to the final step: `authToken=<token>, data=<d>`.
pub fn authentication_info(auth_token: &str, data: &str) -> String {
    format!("authToken={auth_token}, data={data}")
}

/// What to answer an HTTP request, from its `Authorization` header.
/// `Debug` redacts the header values.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HttpAuth {
    /// A valid bearer token: run the request as this principal.
    Authorized(Principal),
    /// `401`, empty body, with this `WWW-Authenticate`. `error` is `None`
    /// when this is a handshake step (HELLO answered, server-first sent),
    /// and says why otherwise (the challenge is then the bare one).
    Unauthorized {
        /// The `WWW-Authenticate` value.
        www_authenticate: String,
        /// Why, when this is a refusal.
        error: Option<AuthError>,
    },
    /// `200`, empty body, with this `Authentication-Info`; the request's op
    /// is not run (as haystack-py does).
    Authenticated {
        /// The `Authentication-Info` value.
        authentication_info: String,
        /// Who authenticated.
        principal: Principal,
    },
    /// `403`, body [`AUTH_FAILED_BODY`], no Content-Type: the final step was
    /// rejected.
    Forbidden {
        /// Why.
        error: AuthError,
    },
    /// `429`, with `Retry-After`: the client's address has as many
    /// handshakes in progress as it may
    /// ([`AuthError::TooManyHandshakes`]).
    TooManyRequests {
        /// Why.
        error: AuthError,
    },
}

impl HttpAuth {
    /// The HTTP status to answer with (`200` for [`Authorized`](Self::Authorized):
    /// run the op).
    pub fn status(&self) -> u16 {
        match self {
            HttpAuth::Authorized(_) | HttpAuth::Authenticated { .. } => 200,
            HttpAuth::Unauthorized { .. } => 401,
            HttpAuth::Forbidden { .. } => 403,
            HttpAuth::TooManyRequests { .. } => 429,
        }
    }

    fn refused(error: AuthError) -> Self {
        if error.is_final_step_failure() {
            HttpAuth::Forbidden { error }
        } else if error == AuthError::TooManyHandshakes {
            HttpAuth::TooManyRequests { error }
        } else {
            HttpAuth::Unauthorized {
                www_authenticate: www_authenticate_bare(),
                error: Some(error),
            }
        }
    }
}

impl fmt::Debug for HttpAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpAuth::Authorized(principal) => {
                f.debug_tuple("Authorized").field(principal).finish()
            }
            HttpAuth::Unauthorized { error, .. } => f
                .debug_struct("Unauthorized")
                .field("www_authenticate", &"<redacted>")
                .field("error", error)
                .finish(),
            HttpAuth::Authenticated { principal, .. } => f
                .debug_struct("Authenticated")
                .field("authentication_info", &"<redacted>")
                .field("principal", principal)
                .finish(),
            HttpAuth::Forbidden { error } => {
                f.debug_struct("Forbidden").field("error", error).finish()
            }
            HttpAuth::TooManyRequests { error } => f
                .debug_struct("TooManyRequests")
                .field("error", error)
                .finish(),
        }
    }
}

/// Runs one request's `Authorization` header (`None` when absent) through
/// `server` (docs/protocol.md 3.2 and 3.3), for a client whose address is not
/// known; a server that knows it calls [`authenticate_from`].
///
/// ```
/// use hs_core::auth::http::{self, HttpAuth};
/// use hs_core::auth::{ScramServer, TokenStore, UserStore};
///
/// let server = ScramServer::new(UserStore::new(), TokenStore::new());
/// let answer = http::authenticate(&server, None);
/// assert_eq!(answer.status(), 401);
/// let answer = http::authenticate(&server, Some("HELLO username=ZGVtbw"));
/// let HttpAuth::Unauthorized { www_authenticate, error: None } = answer else { panic!() };
/// assert!(www_authenticate.starts_with("SCRAM hash=SHA-256, handshakeToken="));
/// ```
pub fn authenticate(server: &ScramServer, authorization: Option<&str>) -> HttpAuth {
    authenticate_from(server, None, authorization)
}

/// [`authenticate`] for a request from `source`, the client's address: a
/// HELLO counts against that address's handshakes
/// ([`ScramServer::hello_from`]). Servers call this one.
pub fn authenticate_from(
    server: &ScramServer,
    source: Option<IpAddr>,
    authorization: Option<&str>,
) -> HttpAuth {
    let Some(value) = authorization else {
        return HttpAuth::Unauthorized {
            www_authenticate: www_authenticate_bare(),
            error: None,
        };
    };
    let header = match Authorization::parse(value) {
        Ok(header) => header,
        Err(error) => {
            log::debug!(target: targets::AUTH, "Authorization header refused: {error}");
            return HttpAuth::refused(error);
        }
    };
    let outcome = match header {
        Authorization::Bearer { auth_token } => server
            .authenticate_bearer(&auth_token)
            .map(HttpAuth::Authorized),
        Authorization::Hello { username } => {
            server
                .hello_from(source, &username)
                .map(|challenge| HttpAuth::Unauthorized {
                    www_authenticate: challenge.www_authenticate(),
                    error: None,
                })
        }
        Authorization::Scram {
            handshake_token,
            data,
        } => server.step(&handshake_token, &data).map(|step| match step {
            ScramStep::Continue(first) => HttpAuth::Unauthorized {
                www_authenticate: first.www_authenticate(),
                error: None,
            },
            ScramStep::Authenticated(done) => HttpAuth::Authenticated {
                authentication_info: done.authentication_info(),
                principal: done.principal,
            },
        }),
    };
    outcome.unwrap_or_else(HttpAuth::refused)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn authorization_parsing() {
        assert_eq!(
            Authorization::parse("HELLO username=ZGVtbw").unwrap(),
            Authorization::Hello {
                username: "ZGVtbw".into()
            }
        );
        assert_eq!(
            Authorization::parse("  scram  handshakeToken = abc ,data=ZGF0YQ== ").unwrap(),
            Authorization::Scram {
                handshake_token: "abc".into(),
                data: "ZGF0YQ==".into()
            }
        );
        assert_eq!(
            Authorization::parse("Bearer authToken=x-y_z").unwrap(),
            Authorization::Bearer {
                auth_token: "x-y_z".into()
            }
        );
        assert_eq!(
            Authorization::parse("Basic dXNlcjpwYXNz"),
            Err(AuthError::UnsupportedScheme("Basic".into()))
        );
        assert!(matches!(
            Authorization::parse("BEARER"),
            Err(AuthError::Malformed(_))
        ));
        assert!(matches!(
            Authorization::parse("SCRAM handshakeToken=abc"),
            Err(AuthError::Malformed(_))
        ));
        assert!(matches!(
            Authorization::parse(""),
            Err(AuthError::UnsupportedScheme(_))
        ));
        let debug = format!(
            "{:?}",
            Authorization::parse("BEARER authToken=sekrit").unwrap()
        );
        assert!(!debug.contains("sekrit"), "{debug}");
    }

    #[test]
    fn header_building_matches_the_protocol_tables() {
        assert_eq!(www_authenticate_bare(), "SCRAM hash=SHA-256");
        assert_eq!(
            www_authenticate_hello("t1"),
            "SCRAM hash=SHA-256, handshakeToken=t1"
        );
        assert_eq!(
            www_authenticate_server_first("t2", "d"),
            "SCRAM handshakeToken=t2, hash=SHA-256, data=d"
        );
        assert_eq!(authentication_info("tok", "d"), "authToken=tok, data=d");
        assert_eq!(
            Authorization::hello("demo").header_value(),
            "HELLO username=ZGVtbw"
        );
        assert_eq!(
            Authorization::Scram {
                handshake_token: "t".into(),
                data: "d".into()
            }
            .header_value(),
            "SCRAM handshakeToken=t, data=d"
        );
    }

    #[test]
    fn challenge_parsing() {
        let bare = WwwAuthenticate::parse("SCRAM hash=SHA-256").unwrap();
        assert_eq!((bare.handshake_token, bare.data), (None, None));
        let step =
            WwwAuthenticate::parse("SCRAM handshakeToken=t2, hash=SHA-256, data=abc").unwrap();
        assert_eq!(step.handshake_token.as_deref(), Some("t2"));
        assert_eq!(step.data.as_deref(), Some("abc"));
        assert_eq!(
            WwwAuthenticate::parse("SCRAM hash=SHA-1, handshakeToken=t"),
            Err(AuthError::UnsupportedHash("SHA-1".into()))
        );
        assert!(WwwAuthenticate::parse("PLAINTEXT").is_err());
        let info = AuthenticationInfo::parse("authToken=tok, data=dj1h").unwrap();
        assert_eq!(
            (info.auth_token.as_str(), info.data.as_deref()),
            ("tok", Some("dj1h"))
        );
        assert!(AuthenticationInfo::parse("data=dj1h").is_err());
    }
}
