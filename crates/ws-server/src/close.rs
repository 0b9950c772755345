//! The close codes the server sends, one per cause.
//!
//! | cause | code | reason |
//! | --- | --- | --- |
//! | the peer closed | its own code echoed (1000 normally) | |
//! | server shutdown | 1001 going away | `server shutting down` |
//! | message over `max_message_size` | 1009 message too big | `message too big` |
//! | a frame breaking RFC 6455: unmasked, RSV bits set, reserved opcode, control frame fragmented or over 125 bytes, continuation without a start | 1002 protocol error | `protocol error` |
//! | a text message that is not UTF-8 | 1007 invalid frame payload data | `invalid UTF-8` |
//! | authentication failed or timed out | 1008 policy violation | `authentication failed` / `authentication timeout` |
//! | no pong to `missed_pongs` pings | 1008 policy violation | `heartbeat timeout` |
//! | send queue full, or over `send_budget` for `stall_timeout` (slow reader) | 1008 policy violation | `send queue full` |
//!
//! 1008 is RFC 6455's generic "policy violation"; the reason tells the
//! causes apart. (haystack-py closes auth failures with 1000, and its FastAPI
//! endpoint with 4003; a standard code is easier for clients to branch on.)

/// 1000: normal closure.
pub const NORMAL: u16 = 1000;
/// 1001: going away, sent to every connection at shutdown.
pub const GOING_AWAY: u16 = 1001;
/// 1002: protocol error (a frame breaking RFC 6455).
pub const PROTOCOL: u16 = 1002;
/// 1007: invalid frame payload data (a text message that is not UTF-8).
pub const INVALID_DATA: u16 = 1007;
/// 1008: policy violation (auth, heartbeat, slow reader).
pub const POLICY: u16 = 1008;
/// 1009: message too big.
pub const TOO_BIG: u16 = 1009;

/// Reason sent with [`GOING_AWAY`].
pub const REASON_SHUTDOWN: &str = "server shutting down";
/// Reason sent with [`PROTOCOL`].
pub const REASON_PROTOCOL: &str = "protocol error";
/// Reason sent with [`INVALID_DATA`].
pub const REASON_INVALID_UTF8: &str = "invalid UTF-8";
/// Reason sent with [`TOO_BIG`].
pub const REASON_TOO_BIG: &str = "message too big";
/// Reason sent with [`POLICY`] when authentication failed.
pub const REASON_AUTH_FAILED: &str = "authentication failed";
/// Reason sent with [`POLICY`] when authentication did not finish in time.
pub const REASON_AUTH_TIMEOUT: &str = "authentication timeout";
/// Reason sent with [`POLICY`] after too many unanswered pings.
pub const REASON_HEARTBEAT: &str = "heartbeat timeout";
/// Reason sent with [`POLICY`] to a reader too slow to drain its queue.
pub const REASON_SLOW_READER: &str = "send queue full";
