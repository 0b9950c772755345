//! One client over either transport: the URL's scheme picks HTTP or WebSocket.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use hs_core::auth::AuthToken;
use hs_core::codec::Format;
use hs_core::observe::MetricsObserver;
use hs_core::value::{Grid, Ref, Value};
use hs_http_client::HttpClient;
use hs_ws_client::{Backoff, HaystackClient, ReconnectingWsClient, WsClient, WsClientBuilder};

use crate::cli::WsAuth;
use crate::error::CliError;

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
    let http = HttpClient::builder(http_url.clone())
        .timeout(options.timeout)
        .deadline(options.timeout)
        .credentials(user, password)
        .build()?;
    let token = http.login().await?;
    match &token {
        Some(_) => {
            log::info!(target: "hs::auth", "logged in to {http_url} as {user}; its token opens {ws_url}")
        }
        None => {
            log::info!(target: "hs::auth", "{http_url} requires no login; connecting to {ws_url} without a token")
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
            .finish_non_exhaustive()
    }
}

/// A connected client of either transport.
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

impl Client {
    /// Connects (a WebSocket connects and logs in now; HTTP logs in on the
    /// first request).
    pub(crate) async fn connect(options: &ConnectOptions) -> Result<Client, CliError> {
        let (transport, url) = normalise_url(&options.url)?;
        match transport {
            Transport::Http => {
                let mut builder = HttpClient::builder(url)
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
                    WsClient::builder(url.clone())
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
                        connect(builder().scram(user, password)).await?
                    }
                    (None, Some((user, password)), WsAuth::Token) => {
                        match http_login(&url, user, password, options).await? {
                            Some(token) => connect(builder().token(token)).await?,
                            None => connect(builder()).await?,
                        }
                    }
                    (None, Some((user, password)), WsAuth::Auto) => {
                        match connect(builder().scram(user, password)).await {
                            Ok(client) => client,
                            Err(error) if error.requires_token() => {
                                log::info!(
                                    target: "hs::auth",
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

    /// `about`.
    pub(crate) async fn about(&self) -> Result<Grid, CliError> {
        Ok(match self {
            Client::Http(client, _) => client.about().await?,
            Client::Ws(client) => client.about().await?,
            Client::WsReconnecting(client) => client.about().await?,
        })
    }

    /// `ops`.
    pub(crate) async fn ops(&self) -> Result<Grid, CliError> {
        Ok(match self {
            Client::Http(client, _) => client.ops().await?,
            Client::Ws(client) => client.ops().await?,
            Client::WsReconnecting(client) => client.ops().await?,
        })
    }

    /// `nav` from the roots (`None`) or from `nav_id`.
    pub(crate) async fn nav(&self, nav_id: Option<&str>) -> Result<Grid, CliError> {
        Ok(match self {
            Client::Http(client, _) => client.nav(nav_id).await?,
            Client::Ws(client) => client.nav(nav_id).await?,
            Client::WsReconnecting(client) => client.nav(nav_id).await?,
        })
    }

    /// `read` by filter.
    pub(crate) async fn read_filter(
        &self,
        filter: &str,
        limit: Option<usize>,
    ) -> Result<Grid, CliError> {
        Ok(match self {
            Client::Http(client, _) => client.read_filter(filter, limit).await?,
            Client::Ws(client) => client.read_filter(filter, limit).await?,
            Client::WsReconnecting(client) => client.read_filter(filter, limit).await?,
        })
    }

    /// `read` by ids.
    pub(crate) async fn read_ids(&self, ids: &[Ref]) -> Result<Grid, CliError> {
        Ok(match self {
            Client::Http(client, _) => client.read_ids(ids).await?,
            Client::Ws(client) => client.read_ids(ids).await?,
            Client::WsReconnecting(client) => client.read_ids(ids).await?,
        })
    }

    /// `hisRead`.
    pub(crate) async fn his_read(&self, id: &Ref, range: &str) -> Result<Grid, CliError> {
        Ok(match self {
            Client::Http(client, _) => client.his_read(id, range).await?,
            Client::Ws(client) => client.his_read(id, range).await?,
            Client::WsReconnecting(client) => client.his_read(id, range).await?,
        })
    }

    /// `pointWrite` at `level`; `None` releases it.
    pub(crate) async fn point_write(
        &self,
        id: &Ref,
        level: u8,
        val: Option<Value>,
        who: &str,
    ) -> Result<Grid, CliError> {
        Ok(match self {
            Client::Http(client, _) => {
                client
                    .point_write(id, level, val.as_ref(), who, None)
                    .await?
            }
            Client::Ws(client) => client.point_write(id, level, val, who, None).await?,
            Client::WsReconnecting(client) => client.point_write(id, level, val, who, None).await?,
        })
    }

    /// `pointWrite` without a level: the priority array.
    pub(crate) async fn point_write_array(&self, id: &Ref) -> Result<Grid, CliError> {
        Ok(match self {
            Client::Http(client, _) => client.point_write_array(id).await?,
            Client::Ws(client) => client.point_write_array(id).await?,
            Client::WsReconnecting(client) => client.point_write_array(id).await?,
        })
    }

    /// Any op by name.
    pub(crate) async fn call(&self, op: &str, grid: Grid) -> Result<Grid, CliError> {
        Ok(match self {
            Client::Http(client, _) => client.call(op, &grid).await?,
            Client::Ws(client) => client.call(op, grid).await?,
            Client::WsReconnecting(client) => client.call(op, grid).await?,
        })
    }

    /// `watchSub` of `ids`, asking for `lease` (`None`: the server's
    /// default); returns the watch id and the response (current values, the
    /// granted lease in its meta).
    pub(crate) async fn watch_sub(
        &self,
        dis: &str,
        ids: &[Ref],
        lease: Option<Duration>,
    ) -> Result<(String, Grid), CliError> {
        let grid = match self {
            Client::Http(client, _) => client.watch_sub(dis, ids, lease).await?,
            Client::Ws(client) => client.watch_sub(None, dis, ids, lease).await?,
            Client::WsReconnecting(client) => client.watch_sub(None, dis, ids, lease).await?,
        };
        let watch_id = hs_ws_client::requests::watch_id(&grid).ok_or_else(|| {
            CliError::Protocol("the watchSub response carries no watchId".to_owned())
        })?;
        Ok((watch_id, grid))
    }

    /// `watchSub` of the open watch `watch_id` with no ids: renews its lease
    /// (a push-only client never polls, which is what renews it otherwise).
    pub(crate) async fn watch_renew(&self, watch_id: &str) -> Result<(), CliError> {
        match self {
            Client::Http(client, _) => client.watch_extend(watch_id, &[]).await.map(drop)?,
            Client::Ws(client) => client
                .watch_sub(Some(watch_id), "hs watch", &[], None)
                .await
                .map(drop)?,
            Client::WsReconnecting(client) => client
                .watch_sub(Some(watch_id), "hs watch", &[], None)
                .await
                .map(drop)?,
        }
        Ok(())
    }

    /// `watchUnsub` closing the watch.
    pub(crate) async fn watch_close(&self, watch_id: &str) -> Result<(), CliError> {
        match self {
            Client::Http(client, _) => client.watch_unsub(watch_id, &[], true).await.map(drop)?,
            Client::Ws(client) => client.watch_unsub(watch_id, &[], true).await.map(drop)?,
            Client::WsReconnecting(client) => {
                client.watch_unsub(watch_id, &[], true).await.map(drop)?
            }
        }
        Ok(())
    }

    /// `watchPoll` of `watch_id`: the entities changed since the last poll.
    pub(crate) async fn watch_poll(&self, watch_id: &str) -> Result<Grid, CliError> {
        Ok(match self {
            Client::Http(client, _) => client.watch_poll(watch_id, false).await?,
            Client::Ws(client) => client.watch_poll(watch_id, false).await?,
            Client::WsReconnecting(client) => client.watch_poll(watch_id, false).await?,
        })
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
                log::info!(target: "hs::ws::client", "connection ended: {reason}");
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

    /// Ends the session and closes the connection.
    pub(crate) async fn close(&self) {
        match self {
            // Only a session this command logged in has anything to close:
            // closing a pre-issued token's would revoke it for its owner.
            Client::Http(client, given)
                if client.is_logged_in() && client.auth_token() != *given =>
            {
                if let Err(error) = client.close().await {
                    log::debug!(target: "hs::http::client", "close: {error}");
                }
            }
            Client::Http(..) => {}
            Client::Ws(client) => client.close().await,
            Client::WsReconnecting(client) => client.close().await,
        }
    }

    /// A batch: over WebSocket one frame with every request, over HTTP one
    /// request after the other (HTTP has no batch).
    pub(crate) async fn batch(&self, items: Vec<(String, Grid)>) -> Vec<Result<Grid, CliError>> {
        match self {
            Client::Ws(client) => client
                .batch(items)
                .await
                .into_iter()
                .map(|result| result.map_err(CliError::from))
                .collect(),
            Client::WsReconnecting(client) => client
                .batch(items)
                .await
                .into_iter()
                .map(|result| result.map_err(CliError::from))
                .collect(),
            Client::Http(client, _) => {
                let mut results = Vec::with_capacity(items.len());
                for (op, grid) in items {
                    results.push(client.call(&op, &grid).await.map_err(CliError::from));
                }
                results
            }
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
