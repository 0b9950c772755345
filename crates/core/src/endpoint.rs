//! Where the Haystack endpoints live on an hs (or haystack-py) server, and
//! how a client URL that names only the server gets its path.

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
}
