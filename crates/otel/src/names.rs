//! The names hs-otel records under: its instrumentation scope, the metric
//! names and the attribute keys. They are a public interface (dashboards,
//! alerts) and change only with a major version.
//!
//! The call-duration metrics and the `rpc.*`, `error.type` and
//! `network.io.direction` attributes are those of the OpenTelemetry
//! semantic conventions' current RPC metrics (the ones that replaced
//! `rpc.server.duration` in milliseconds after v1.37); the rest has no
//! convention and lives in the `hs.` namespace.

/// The instrumentation scope of every hs instrument.
pub const SCOPE: &str = "hs";

/// The `rpc.system.name` of every hs call.
pub const RPC_SYSTEM: &str = "haystack";

/// Histogram (s): duration of calls an hs server answered without an error.
pub const SERVER_CALL_DURATION: &str = "rpc.server.call.duration";
/// Histogram (s): duration of calls an hs client made that ended without an error.
pub const CLIENT_CALL_DURATION: &str = "rpc.client.call.duration";
/// Counter (`{call}`): calls an hs server failed, by `error.type`.
pub const SERVER_CALL_ERRORS: &str = "hs.rpc.server.call.errors";
/// Counter (`{call}`): calls an hs client saw fail, by `error.type`.
pub const CLIENT_CALL_ERRORS: &str = "hs.rpc.client.call.errors";
/// Counter (`{connection}`): WebSocket connections established.
pub const WS_CONNECTIONS: &str = "hs.ws.connections";
/// UpDownCounter (`{connection}`): WebSocket connections open.
pub const WS_ACTIVE_CONNECTIONS: &str = "hs.ws.active_connections";
/// Counter (`{message}`): WebSocket data frames, by op and direction.
pub const WS_MESSAGES: &str = "hs.ws.messages";
/// Counter (`By`): payload bytes of WebSocket data frames, by op and direction.
pub const WS_IO: &str = "hs.ws.io";

/// The attribute keys.
pub mod attr {
    /// The RPC system: always [`RPC_SYSTEM`](super::RPC_SYSTEM).
    pub const RPC_SYSTEM_NAME: &str = "rpc.system.name";
    /// The Haystack op (an entry of `hs_observe::OBSERVED_OPS`, or `_other`).
    pub const RPC_METHOD: &str = "rpc.method";
    /// The error type of a failed call (an `ErrorKind::as_str()` name, or `_other`).
    pub const ERROR_TYPE: &str = "error.type";
    /// `transmit` for a frame sent, `receive` for a frame received.
    pub const NETWORK_IO_DIRECTION: &str = "network.io.direction";
    /// `client` or `server`: the component's side, given when the observer is made.
    pub const SIDE: &str = "hs.side";
    /// `http` or `ws`: the component's transport, given when the observer is made.
    pub const TRANSPORT: &str = "hs.transport";
}
