//! The `log` targets of every hs crate: a stable interface, so a filter
//! such as `RUST_LOG=hs::ws::client=debug,hs::ws::conn=warn` keeps meaning
//! the same thing from release to release.
//!
//! No target is a prefix of another, so a filter on one never catches a
//! second. A new target is added here, under that rule, or not at all.

/// HTTP client requests, responses, retries.
pub const HTTP_CLIENT: &str = "hs::http::client";
/// HTTP server: incoming requests, limits, errors, lifecycle.
pub const HTTP_SERVER: &str = "hs::http::server";
/// WebSocket client requests, reconnection, pool events.
pub const WS_CLIENT: &str = "hs::ws::client";
/// WebSocket server: dispatch, pushes, connection limits, shutdown.
pub const WS_SERVER: &str = "hs::ws::server";
/// WebSocket frames, heartbeat and connection lifecycle, on either side.
pub const WS_CONN: &str = "hs::ws::conn";
/// SCRAM handshake steps and token exchange (never a secret).
pub const AUTH: &str = "hs::auth";
/// Observer panics and `LoggingObserver` output.
pub const OBSERVE: &str = "hs::observe";
/// The request pipeline both servers share: an op that panicked.
pub const OPS: &str = "hs::ops";
/// The store: loading data, filter plans, watches.
pub const STORE: &str = "hs::store";
/// Wire values decoded leniently.
pub const CODEC: &str = "hs::codec";
/// The `tracing` spans of the servers (requests, batches, WebSocket
/// connections and their authentication, dispatch); no `log` record uses it.
pub const SPAN: &str = "hs::span";

/// Every target, for tests and for tools that list them.
pub const ALL: [&str; 11] = [
    HTTP_CLIENT,
    HTTP_SERVER,
    WS_CLIENT,
    WS_SERVER,
    WS_CONN,
    AUTH,
    OBSERVE,
    OPS,
    STORE,
    CODEC,
    SPAN,
];

#[cfg(test)]
mod tests {
    use super::ALL;

    #[test]
    fn no_target_is_a_prefix_of_another() {
        for a in ALL {
            for b in ALL {
                assert!(a == b || !b.starts_with(a), "{a} is a prefix of {b}");
            }
        }
    }
}
