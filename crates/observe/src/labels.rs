//! The bounded label values metric observers count by: a component's
//! [`Side`] and [`Transport`], and the op and error-type names.
//!
//! Every name comes from a fixed list, so the number of counters (or
//! Prometheus series) is bounded whatever a peer sends: an op or error type
//! outside the lists is counted under [`OTHER`]. Each name has a slot, an
//! index found without allocating, so an observer can keep its counters in a
//! plain array.

use std::borrow::Cow;

use super::ErrorKind;

/// Which end of a connection a component is: the `side` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Side {
    /// A client (`side="client"`).
    Client,
    /// A server (`side="server"`).
    Server,
}

impl Side {
    /// The label value: `client` or `server`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Server => "server",
        }
    }
}

/// Which transport a component speaks: the `transport` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Transport {
    /// HTTP (`transport="http"`).
    Http,
    /// WebSocket (`transport="ws"`).
    Ws,
}

impl Transport {
    /// The label value: `http` or `ws`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Transport::Http => "http",
            Transport::Ws => "ws",
        }
    }
}

/// The name counted for an op or error type outside the fixed lists.
pub const OTHER: &str = "_other";

/// The op label of a batch frame (WebSocket).
pub const BATCH: &str = "batch";
/// The op label of a watch push frame (WebSocket).
pub const PUSH: &str = "push";
/// The op label of an authentication step: a WebSocket auth message, an
/// HTTP HELLO or SCRAM step.
pub const AUTH: &str = "auth";
/// The op label of a request that names no usable op: an unparseable
/// WebSocket frame, an HTTP path that is no API path.
pub const INVALID: &str = "invalid";

/// The op names observers count separately, in slot order: the 13 standard
/// Haystack ops as they appear on the wire (`hs_core::ops::STANDARD_OPS`,
/// which a test there keeps in step), then [`BATCH`], [`PUSH`], [`AUTH`]
/// and [`INVALID`]. Any other name has the slot `OBSERVED_OPS.len()`,
/// labelled [`OTHER`].
pub const OBSERVED_OPS: [&str; 17] = [
    "about",
    "ops",
    "formats",
    "close",
    "read",
    "nav",
    "hisRead",
    "hisWrite",
    "pointWrite",
    "watchSub",
    "watchUnsub",
    "watchPoll",
    "invokeAction",
    BATCH,
    PUSH,
    AUTH,
    INVALID,
];

/// The `op` an observer is given for a request or a frame: an op name from
/// the wire, or one of the fixed labels above.
pub type OpLabel = Cow<'static, str>;

/// The [`OpLabel`] of an op name: borrowed when it is one of
/// [`OBSERVED_OPS`] (no allocation on the hot path), a copy otherwise.
#[inline]
pub fn label_of(name: &str) -> OpLabel {
    match OBSERVED_OPS.get(op_slot(name)) {
        Some(known) => Cow::Borrowed(known),
        None => Cow::Owned(name.to_owned()),
    }
}

/// Number of op slots: [`OBSERVED_OPS`] plus the [`OTHER`] slot.
pub const OP_SLOTS: usize = OBSERVED_OPS.len() + 1;

/// Number of error-type slots: [`ErrorKind::ALL`] plus the [`OTHER`] slot.
pub const ERROR_SLOTS: usize = ErrorKind::ALL.len() + 1;

/// The slot of `op` in [`OBSERVED_OPS`], or `OBSERVED_OPS.len()` for any
/// other name.
#[inline]
pub fn op_slot(op: &str) -> usize {
    // A match on string literals compiles to a length switch plus one
    // comparison: cheaper than hashing, and no allocation. The
    // `op_slots_round_trip` test keeps it in step with OBSERVED_OPS.
    match op {
        "about" => 0,
        "ops" => 1,
        "formats" => 2,
        "close" => 3,
        "read" => 4,
        "nav" => 5,
        "hisRead" => 6,
        "hisWrite" => 7,
        "pointWrite" => 8,
        "watchSub" => 9,
        "watchUnsub" => 10,
        "watchPoll" => 11,
        "invokeAction" => 12,
        BATCH => 13,
        PUSH => 14,
        AUTH => 15,
        INVALID => 16,
        _ => OBSERVED_OPS.len(),
    }
}

/// The name of an op slot: an entry of [`OBSERVED_OPS`], or [`OTHER`].
pub fn op_label(slot: usize) -> &'static str {
    OBSERVED_OPS.get(slot).copied().unwrap_or(OTHER)
}

/// The slot of `error_type` in [`ErrorKind::ALL`], or `ErrorKind::ALL.len()`
/// for a name that is not an [`ErrorKind::as_str`] name.
#[inline]
pub fn error_slot(error_type: &str) -> usize {
    // As in `op_slot`; `error_slots_round_trip` keeps it in step with the enum.
    match error_type {
        "timeout" => 0,
        "connection_closed" => 1,
        "connect" => 2,
        "auth" => 3,
        "forbidden" => 4,
        "bad_request" => 5,
        "not_found" => 6,
        "unknown_op" => 7,
        "unsupported" => 8,
        "too_large" => 9,
        "overloaded" => 10,
        "protocol" => 11,
        "error_grid" => 12,
        "server_error" => 13,
        "tls" => 14,
        _ => ErrorKind::ALL.len(),
    }
}

/// The name of an error-type slot: an [`ErrorKind::as_str`] name, or [`OTHER`].
pub fn error_label(slot: usize) -> &'static str {
    ErrorKind::ALL.get(slot).map_or(OTHER, |kind| kind.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_slots_round_trip() {
        for (slot, op) in OBSERVED_OPS.iter().enumerate() {
            assert_eq!(op_slot(op), slot, "{op}");
            assert_eq!(op_label(slot), *op);
        }
        for other in ["nonsense", "", "READ"] {
            assert_eq!(op_label(op_slot(other)), OTHER);
            assert!(matches!(label_of(other), Cow::Owned(name) if name == other));
        }
        assert!(matches!(label_of("hisRead"), Cow::Borrowed("hisRead")));
        assert!(matches!(label_of(BATCH), Cow::Borrowed("batch")));
    }

    #[test]
    fn error_slots_round_trip() {
        for (slot, kind) in ErrorKind::ALL.iter().enumerate() {
            assert_eq!(error_slot(kind.as_str()), slot);
            assert_eq!(error_label(slot), kind.as_str());
        }
        assert_eq!(error_label(error_slot("Timeout")), OTHER);
        assert_eq!(error_slot("boom"), ERROR_SLOTS - 1);
    }
}
