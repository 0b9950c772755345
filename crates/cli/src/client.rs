//! One client over either transport: the URL's scheme picks HTTP or WebSocket.

use hs_core::observe::targets;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use hs_core::auth::AuthToken;
use hs_core::codec::Format;
use hs_core::observe::MetricsObserver;
use hs_core::value::{Grid, Ref};
use hs_http_client::HttpClient;
use hs_ws_client::{Backoff, HaystackClient, ReconnectingWsClient, WsClient, WsClientBuilder};

use crate::cli::WsAuth;
use crate::error::CliError;
use crate::tls::ClientTls;

/// The transport a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    /// `http://` or `https://`.
    Http,
    /// `ws://` or `wss://`.
    Ws,
}

/// A server URL with the default path filled in: `http://host:port` becomes
/// `http://host:port/api`, `ws://host:port` becomes `ws://host:port/api/ws`.
pub(crate) fn normalise_url(url: &str) -> Result<(Transport, String), CliError> {
    let url = url.trim().trim_end_matches('/');
    let (scheme, rest) = url.split_once("://").ok_or_else(|| {
        CliError::Usage(format!("`{url}` is not a URL (try http://127.0.0.1:8080)"))
    })?;
    let transport = match scheme.to_ascii_lowercase().as_str() {
        "http" | "https" => Transport::Http,
        "ws" | "wss" => Transport::Ws,
        other => {
            return Err(CliError::Usage(format!(
                "unsupported scheme `{other}`: use http://, https://, ws:// or wss://"
            )));
        }
    };
    if rest.is_empty() {
        return Err(CliError::Usage(format!("`{url}` has no host")));
    }
    let default_path = match transport {
        Transport::Http => hs_core::endpoint::HTTP_PATH,
        Transport::Ws => hs_core::endpoint::WS_PATH,
    };
    Ok((
        transport,
        hs_core::endpoint::with_default_path(url, default_path),
    ))
}

/// `--ws-auth token`: logs in with SCRAM to the HTTP API beside the
/// WebSocket endpoint `ws_url` (`ws://host/api/ws` → `http://host/api`) and
/// answers the session's bearer token, for `{"authToken":..}` (haystack-py's
/// FastAPI `/api/ws` takes only that). `None` when that API requires no
/// login. The HTTP session is left open: closing it would revoke the token.
async fn http_login(
    ws_url: &str,
    user: &str,
    password: &str,
    options: &ConnectOptions,
) -> Result<Option<AuthToken>, CliError> {
    let http_url = http_api_of(ws_url)?;
    let http = options
        .tls
        .http(HttpClient::builder(http_url.clone()))
        .timeout(options.timeout)
        .deadline(options.timeout)
        .credentials(user, password)
        .build()?;
    let token = http.login().await?;
    match &token {
        Some(_) => {
            log::info!(target: targets::AUTH, "logged in to {http_url} as {user}; its token opens {ws_url}")
        }
        None => {
            log::info!(target: targets::AUTH, "{http_url} requires no login; connecting to {ws_url} without a token")
        }
    }
    Ok(token)
}

/// The HTTP API beside a WebSocket endpoint: the scheme made `http(s)` and a
/// final `/ws` dropped (`wss://h/haystack/api/ws` → `https://h/haystack/api`).
fn http_api_of(ws_url: &str) -> Result<String, CliError> {
    let (scheme, rest) = ws_url
        .split_once("://")
        .ok_or_else(|| CliError::Usage(format!("`{ws_url}` is not a URL")))?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "wss" => "https",
        _ => "http",
    };
    let path = rest.strip_suffix("/ws").ok_or_else(|| {
        CliError::Usage(format!(
            "--ws-auth token: cannot tell the HTTP API of `{ws_url}` (its path does not end in /ws)"
        ))
    })?;
    Ok(format!("{scheme}://{path}"))
}

/// How to connect.
#[derive(Clone)]
pub(crate) struct ConnectOptions {
    /// The server URL (normalised or not).
    pub(crate) url: String,
    /// SCRAM credentials.
    pub(crate) credentials: Option<(String, String)>,
    /// Deadline of each request (and, over WebSocket, of connecting and of
    /// logging in).
    pub(crate) timeout: Duration,
    /// The client's observer.
    pub(crate) observer: Arc<dyn MetricsObserver>,
    /// The encoding of HTTP bodies (WebSocket messages are always JSON).
    pub(crate) wire: Format,
    /// A bearer token from an earlier login, instead of `credentials`.
    pub(crate) token: Option<AuthToken>,
    /// How `credentials` log in to a WebSocket endpoint.
    pub(crate) ws_auth: WsAuth,
    /// Over WebSocket, reconnect with this backoff whenever the connection
    /// ends, logging in and re-subscribing the watches again
    /// ([`ReconnectingWsClient`]); `None`: one connection.
    pub(crate) reconnect: Option<Backoff>,
    /// `--ca`, `--client-cert`, `--client-key`, `--tls-server-name`.
    pub(crate) tls: ClientTls,
}

impl std::fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("url", &self.url)
            .field("user", &self.credentials.as_ref().map(|(user, _)| user))
            .field("timeout", &self.timeout)
            .field("wire", &self.wire)
            .field("token", &self.token)
            .field("ws_auth", &self.ws_auth)
            .field("reconnect", &self.reconnect)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

/// A connected client of either transport. Its ops are those of
/// [`HaystackClient`], which it dereferences to; beside them it has what
/// one transport alone has (pushes) and how the command ends its session.
#[derive(Debug)]
pub(crate) enum Client {
    /// Over HTTP, with the pre-issued token it was given (a session the
    /// command did not open, so does not close).
    Http(HttpClient, Option<AuthToken>),
    /// Over one WebSocket connection.
    Ws(WsClient),
    /// Over WebSocket connections that follow one another (`hs watch`).
    WsReconnecting(ReconnectingWsClient),
}

impl std::ops::Deref for Client {
    type Target = dyn HaystackClient;

    fn deref(&self) -> &Self::Target {
        match self {
            Client::Http(client, _) => client,
            Client::Ws(client) => client,
            Client::WsReconnecting(client) => client,
        }
    }
}

impl Client {
    /// Connects (a WebSocket connects and logs in now; HTTP logs in on the
    /// first request).
    pub(crate) async fn connect(options: &ConnectOptions) -> Result<Client, CliError> {
        let (transport, url) = normalise_url(&options.url)?;
        match transport {
            Transport::Http => {
                let mut builder = options
                    .tls
                    .http(HttpClient::builder(url))
                    .format(options.wire)
                    .timeout(options.timeout)
                    // `--timeout` bounds the whole request, retries included.
                    .deadline(options.timeout)
                    .observer(options.observer.clone());
                if let Some((user, password)) = &options.credentials {
                    builder = builder.credentials(user.clone(), password.clone());
                }
                if let Some(token) = &options.token {
                    builder = builder.token(token.clone());
                }
                Ok(Client::Http(builder.build()?, options.token.clone()))
            }
            Transport::Ws => {
                let builder = || {
                    options
                        .tls
                        .ws(WsClient::builder(url.clone()))
                        .request_timeout(options.timeout)
                        .connect_timeout(options.timeout)
                        .auth_timeout(options.timeout)
                        .observer(options.observer.clone())
                };
                let connect = |builder: WsClientBuilder| async {
                    match options.reconnect {
                        Some(backoff) => builder
                            .connect_reconnecting(backoff)
                            .await
                            .map(Client::WsReconnecting),
                        None => builder.connect().await.map(Client::Ws),
                    }
                };
                let client = match (&options.token, &options.credentials, options.ws_auth) {
                    (Some(token), _, _) => connect(builder().token(token.clone())).await?,
                    (None, None, _) => connect(builder()).await?,
                    (None, Some((user, password)), WsAuth::Scram) => {
                        connect(builder().credentials(user, password)).await?
                    }
                    (None, Some((user, password)), WsAuth::Token) => {
                        match http_login(&url, user, password, options).await? {
                            Some(token) => connect(builder().token(token)).await?,
                            None => connect(builder()).await?,
                        }
                    }
                    (None, Some((user, password)), WsAuth::Auto) => {
                        match connect(builder().credentials(user, password)).await {
                            Ok(client) => client,
                            Err(error) if error.requires_token() => {
                                log::info!(
                                    target: targets::AUTH,
                                    "{url} refused a SCRAM login with close {} ({}): it takes tokens; logging in over HTTP",
                                    hs_ws_client::ServerClose::AUTH_REQUIRED,
                                    error.close_reason().unwrap_or_default()
                                );
                                match http_login(&url, user, password, options).await? {
                                    Some(token) => connect(builder().token(token)).await?,
                                    None => return Err(error.into()),
                                }
                            }
                            Err(error) => return Err(error.into()),
                        }
                    }
                };
                Ok(client)
            }
        }
    }

    /// Which transport this is.
    pub(crate) fn transport(&self) -> Transport {
        match self {
            Client::Http(..) => Transport::Http,
            Client::Ws(_) | Client::WsReconnecting(_) => Transport::Ws,
        }
    }

    /// `watchSub` of `ids` in a new watch named `dis`, asking for `lease` (`None`: the
    /// server's default); returns the watch id and the response (current
    /// values, the granted lease in its meta).
    pub(crate) async fn subscribe(
        &self,
        dis: &str,
        ids: &[Ref],
        lease: Option<Duration>,
    ) -> Result<(String, Grid), CliError> {
        let grid = self.watch_sub(None, dis, ids, lease).await?;
        let watch_id = hs_ws_client::requests::watch_id(&grid).ok_or_else(|| {
            CliError::Protocol("the watchSub response carries no watchId".to_owned())
        })?;
        Ok((watch_id, grid))
    }

    /// The next push for `watch_id` from `pushes`; `None` when the
    /// connection ended (or there is no push stream). A reconnecting client
    /// waits across reconnections. Cancel-safe: no push is lost when the
    /// future is dropped.
    pub(crate) async fn next_push(
        &self,
        watch_id: &str,
        pushes: &mut hs_ws_client::WatchEvents,
    ) -> Option<Grid> {
        let next_push = async {
            while let Some(push) = pushes.next().await {
                if push.watch_id == watch_id {
                    return Some(push.grid);
                }
            }
            None
        };
        let client = match self {
            Client::Ws(client) => client,
            Client::WsReconnecting(_) => return next_push.await,
            Client::Http(..) => return None,
        };
        tokio::select! {
            push = next_push => push,
            reason = client.closed() => {
                log::info!(target: targets::WS_CLIENT, "connection ended: {reason}");
                None
            }
        }
    }

    /// The push stream, for WebSocket clients (create it before `watchSub`
    /// so no push is missed).
    pub(crate) fn watch_events(&self) -> Option<hs_ws_client::WatchEvents> {
        match self {
            Client::Ws(client) => Some(client.watch_events()),
            Client::WsReconnecting(client) => Some(client.watch_events()),
            Client::Http(..) => None,
        }
    }

    /// Ends the session and closes the connection. Over HTTP only a
    /// session this command logged in has anything to close: closing a
    /// pre-issued token's would revoke it for its owner.
    pub(crate) async fn finish(&self) {
        if let Client::Http(client, given) = self
            && (!client.is_logged_in() || client.auth_token() == *given)
        {
            return;
        }
        if let Err(error) = self.close().await {
            log::debug!(target: targets::HTTP_CLIENT, "close: {error}");
        }
    }
}

/// `@id` or `id` as a Ref.
pub(crate) fn parse_ref(raw: &str) -> Ref {
    Ref::from(raw.trim().trim_start_matches('@'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_get_their_default_paths() {
        assert_eq!(
            normalise_url("http://127.0.0.1:8080").unwrap(),
            (Transport::Http, "http://127.0.0.1:8080/api".to_owned())
        );
        assert_eq!(
            normalise_url("ws://127.0.0.1:8080/").unwrap(),
            (Transport::Ws, "ws://127.0.0.1:8080/api/ws".to_owned())
        );
        assert_eq!(
            normalise_url("https://h/haystack/api").unwrap(),
            (Transport::Http, "https://h/haystack/api".to_owned())
        );
        assert!(normalise_url("ftp://h").is_err());
        assert!(normalise_url("127.0.0.1:8080").is_err());
    }

    #[test]
    fn the_http_api_beside_a_websocket_endpoint() {
        assert_eq!(
            http_api_of("ws://127.0.0.1:8080/api/ws").unwrap(),
            "http://127.0.0.1:8080/api"
        );
        assert_eq!(
            http_api_of("wss://h/haystack/api/ws").unwrap(),
            "https://h/haystack/api"
        );
        assert!(http_api_of("ws://h/socket").is_err());
    }

    #[test]
    fn refs_accept_a_leading_at() {
        assert_eq!(parse_ref("@demo-ahu1").value(), "demo-ahu1");
        assert_eq!(parse_ref("demo-ahu1").value(), "demo-ahu1");
    }
}
