//! The SCRAM-SHA-256 login over HTTP headers (docs/protocol.md 3.2), run against
//! `GET {base}/about` as the reference client does.

use hs_core::auth::http::{AuthenticationInfo, Authorization, WwwAuthenticate};
use hs_core::auth::{AuthError, AuthFailure, AuthToken, ScramClient};
use hs_core::observe::targets;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, WWW_AUTHENTICATE};

use crate::client::Inner;
use crate::error::HttpClientError;
use crate::session::{Credentials, Grant};

/// `Authentication-Info` (RFC 7615), which `http` has no constant for.
const AUTHENTICATION_INFO: HeaderName = HeaderName::from_static("authentication-info");

/// One `GET {base}/about` with an `Authorization` header; answers the
/// status and headers (the bodies of handshake answers are empty).
async fn step(
    inner: &Inner,
    url: &str,
    authorization: &Authorization,
) -> Result<(StatusCode, HeaderMap), HttpClientError> {
    log::debug!(target: targets::HTTP_CLIENT, "GET {url}");
    let mut value = reqwest::header::HeaderValue::from_str(&authorization.header_value())
        .map_err(|_| HttpClientError::Scram(AuthError::Malformed("unsendable header value")))?;
    value.set_sensitive(true);
    let response = inner
        .http
        .get(url)
        .header(AUTHORIZATION, value)
        .send()
        .await
        .map_err(|error| HttpClientError::from_reqwest(url, error, inner.timeout))?;
    let status = response.status();
    let headers = response.headers().clone();
    // Drain the (normally empty) body so the connection can be reused.
    let _ = response.bytes().await;
    Ok((status, headers))
}

fn header<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

fn challenge(headers: &HeaderMap) -> Result<WwwAuthenticate, HttpClientError> {
    let value = header(headers, &WWW_AUTHENTICATE).ok_or(HttpClientError::Scram(
        AuthError::Malformed("401 without WWW-Authenticate"),
    ))?;
    Ok(WwwAuthenticate::parse(value)?)
}

fn rejected(username: &str) -> HttpClientError {
    HttpClientError::Auth(AuthFailure::CredentialsRejected {
        username: username.to_owned(),
    })
}

fn unexpected(status: StatusCode, url: &str) -> HttpClientError {
    HttpClientError::Status {
        status: status.as_u16(),
        url: url.to_owned(),
        body: "unexpected answer during the SCRAM handshake".to_owned(),
    }
}

/// Runs HELLO, SCRAM client-first and client-final, verifies the server
/// signature, and answers the grant.
pub(crate) async fn login(
    inner: &Inner,
    credentials: &Credentials,
) -> Result<Grant, HttpClientError> {
    let url = inner.op_url("about");
    let username = credentials.username.as_str();
    let mut scram = ScramClient::new(username, credentials.password.as_str());
    #[cfg(feature = "test-util")]
    if let Some(nonce) = &inner.scram_nonce {
        scram = scram.with_fixed_nonce(nonce.clone());
    }

    log::debug!(target: targets::AUTH, "HELLO for user {username:?} at {url}");
    let (status, headers) = step(inner, &url, &Authorization::hello(username)).await?;
    if status == StatusCode::OK {
        // The server runs without authentication (as the reference does, go
        // on without a token).
        log::info!(target: targets::HTTP_CLIENT, "session opened at {} (server requires no authentication)", inner.base);
        return Ok(Grant { token: None });
    }
    if status != StatusCode::UNAUTHORIZED {
        return Err(unexpected(status, &url));
    }
    let Some(handshake_token) = challenge(&headers)?.handshake_token else {
        // A bare challenge: the server does not know the user.
        // DEBUG: the error returned to the caller says it (without telling
        // an unknown user from a wrong password); a WARN would say it twice.
        log::debug!(target: targets::AUTH, "login refused for user {username:?} (HELLO)");
        return Err(rejected(username));
    };

    log::debug!(target: targets::AUTH, "SCRAM client-first for user {username:?}");
    let first = Authorization::Scram {
        handshake_token,
        data: scram.client_first(),
    };
    let (status, headers) = step(inner, &url, &first).await?;
    if status != StatusCode::UNAUTHORIZED {
        return Err(unexpected(status, &url));
    }
    let server_first = challenge(&headers)?;
    let (Some(handshake_token), Some(server_first_data)) =
        (server_first.handshake_token, server_first.data)
    else {
        return Err(
            AuthError::Malformed("server-first challenge without handshakeToken or data").into(),
        );
    };

    // PBKDF2 with the server's iteration count (600 000 by default) takes
    // long enough to stall other tasks: run it off the async workers.
    let (mut scram, client_final) = tokio::task::spawn_blocking(move || {
        let data = scram.client_final(&server_first_data);
        (scram, data)
    })
    .await
    .map_err(|_| HttpClientError::Scram(AuthError::OutOfOrder))?;
    let client_final = client_final?;

    log::debug!(target: targets::AUTH, "SCRAM client-final for user {username:?}");
    let last = Authorization::Scram {
        handshake_token,
        data: client_final,
    };
    let (status, headers) = step(inner, &url, &last).await?;
    match status {
        StatusCode::OK => {}
        StatusCode::FORBIDDEN => {
            log::debug!(target: targets::AUTH, "login refused for user {username:?} (final step)");
            return Err(rejected(username));
        }
        StatusCode::UNAUTHORIZED => return Err(AuthError::UnknownHandshake.into()),
        other => return Err(unexpected(other, &url)),
    }
    let info = header(&headers, &AUTHENTICATION_INFO).ok_or(HttpClientError::Scram(
        AuthError::Malformed("200 without Authentication-Info"),
    ))?;
    let info = AuthenticationInfo::parse(info)?;
    // Over HTTP the server signature is required: it proves the server knows
    // the credential, not only the token format.
    let server_final = info.data.as_deref().ok_or(AuthError::Malformed(
        "Authentication-Info without server-final data",
    ))?;
    scram.verify_server_final(server_final)?;
    log::debug!(target: targets::AUTH, "server signature verified for user {username:?}");
    log::info!(target: targets::HTTP_CLIENT, "session opened for user {username:?} at {}", inner.base);
    Ok(Grant {
        token: Some(AuthToken::new(info.auth_token)),
    })
}
