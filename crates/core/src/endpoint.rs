//! How clients reach a server: where the Haystack endpoints live on an hs
//! (or haystack-py) server, how a client URL that names only the server
//! gets its path, and how a failed connection is described.

/// The path of the HTTP API: ops are at `{HTTP_PATH}/{op}`.
pub const HTTP_PATH: &str = "/api";

/// The path of the WebSocket endpoint.
pub const WS_PATH: &str = "/api/ws";

/// `url` with `path` filled in when it names no path: `http://host:8080`
/// and `http://host:8080/` become `http://host:8080{path}`. A URL with any
/// other path (`http://host/haystack/api`) is answered unchanged, as is
/// text that is not a URL (the client's own check reports it).
///
/// ```
/// use hs_core::endpoint::{HTTP_PATH, WS_PATH, with_default_path};
///
/// assert_eq!(with_default_path("http://127.0.0.1:8080", HTTP_PATH), "http://127.0.0.1:8080/api");
/// assert_eq!(with_default_path("ws://h:1/", WS_PATH), "ws://h:1/api/ws");
/// assert_eq!(with_default_path("ws://h:1/api/ws", WS_PATH), "ws://h:1/api/ws");
/// assert_eq!(with_default_path("https://h/haystack/api", HTTP_PATH), "https://h/haystack/api");
/// ```
pub fn with_default_path(url: &str, path: &str) -> String {
    let url = url.trim();
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = match rest.find('/') {
        Some(slash) => rest.split_at(slash),
        None => (rest, ""),
    };
    if authority.is_empty() || authority.contains(['?', '#']) || !matches!(tail, "" | "/") {
        return url.to_owned();
    }
    format!("{scheme}://{authority}{path}")
}

/// What went wrong, in a few words, from the innermost error of `error`'s
/// source chain: `connection refused`, `connection reset by peer`,
/// `invalid peer certificate: UnknownIssuer`, `failed to lookup address
/// information: ...`. The wrappers above it (which often repeat the URL)
/// are skipped: clients put the URL in their own message, once.
///
/// ```
/// use std::io;
/// use hs_core::endpoint::failure_cause;
///
/// let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
/// assert_eq!(failure_cause(&refused), "connection refused");
/// ```
pub fn failure_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut innermost = error;
    // Source chains are short; the bound only guards a cyclic one.
    for _ in 0..32 {
        match innermost.source() {
            Some(source) => innermost = source,
            None => break,
        }
    }
    if let Some(io) = innermost.downcast_ref::<std::io::Error>() {
        use std::io::ErrorKind;
        let phrase = match io.kind() {
            ErrorKind::ConnectionRefused => Some("connection refused"),
            ErrorKind::ConnectionReset => Some("connection reset by peer"),
            ErrorKind::ConnectionAborted => Some("connection aborted"),
            ErrorKind::NotConnected => Some("not connected"),
            ErrorKind::AddrNotAvailable => Some("address not available"),
            ErrorKind::TimedOut => Some("timed out"),
            ErrorKind::UnexpectedEof => Some("connection closed by the server"),
            ErrorKind::BrokenPipe => Some("broken pipe"),
            _ => None,
        };
        if let Some(phrase) = phrase {
            return phrase.to_owned();
        }
    }
    innermost.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_missing_path_is_filled_in() {
        assert_eq!(with_default_path(" http://h ", HTTP_PATH), "http://h/api");
        assert_eq!(
            with_default_path("http://h/api/", HTTP_PATH),
            "http://h/api/"
        );
        assert_eq!(with_default_path("http://h?x=1", HTTP_PATH), "http://h?x=1");
        assert_eq!(with_default_path("not a url", HTTP_PATH), "not a url");
        assert_eq!(with_default_path("ws://", WS_PATH), "ws://");
    }

    #[derive(Debug, thiserror::Error)]
    #[error("error sending request for url (http://h/api/about)")]
    struct Wrapper(#[source] std::io::Error);

    #[test]
    fn the_cause_is_the_innermost_error() {
        let wrapped = Wrapper(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(failure_cause(&wrapped), "connection refused");
        let other = Wrapper(std::io::Error::other("no route to the moon"));
        assert_eq!(failure_cause(&other), "no route to the moon");
    }
}
