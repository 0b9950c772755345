//! The bounded label values: `side`, `transport`, `op` and `error_type`.
//!
//! Every label value comes from a fixed list, so the number of series is
//! bounded whatever a peer sends: an op or error type outside the lists is
//! counted under [`OTHER`].

use hs_core::observe::ErrorKind;
use prometheus_client::encoding::EncodeLabelSet;

/// The label value for an op or error type outside the fixed lists.
pub const OTHER: &str = "_other";

/// The `op` label values, in index order; anything else is [`OTHER`].
///
/// The 13 standard Haystack ops as they appear on the wire, then the
/// WebSocket message kinds `batch`, `push`, `auth` and `invalid` (an
/// unparseable frame).
pub const OPS: [&str; 17] = [
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
    "batch",
    "push",
    "auth",
    "invalid",
];

/// Number of distinct `op` label values (the fixed list plus [`OTHER`]).
pub(crate) const OP_SLOTS: usize = OPS.len() + 1;

/// Number of distinct `error_type` label values ([`ErrorKind::ALL`] plus [`OTHER`]).
pub(crate) const ERROR_SLOTS: usize = ErrorKind::ALL.len() + 1;

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

/// The slot of `op` in [`OPS`], or the [`OTHER`] slot.
#[inline]
pub(crate) fn op_index(op: &str) -> usize {
    // A match on string literals compiles to a length switch plus one
    // comparison: cheaper than hashing, and no allocation.
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
        "batch" => 13,
        "push" => 14,
        "auth" => 15,
        "invalid" => 16,
        _ => OPS.len(),
    }
}

/// The label value of an op slot.
pub(crate) fn op_label(index: usize) -> &'static str {
    OPS.get(index).copied().unwrap_or(OTHER)
}

/// The slot of `error_type` in [`ErrorKind::ALL`], or the [`OTHER`] slot.
#[inline]
pub(crate) fn error_index(error_type: &str) -> usize {
    ErrorKind::ALL
        .iter()
        .position(|kind| kind.as_str() == error_type)
        .unwrap_or(ErrorKind::ALL.len())
}

/// The label value of an error-type slot.
pub(crate) fn error_label(index: usize) -> &'static str {
    ErrorKind::ALL
        .get(index)
        .map_or(OTHER, |kind| kind.as_str())
}

/// Labels of `haystack_request_duration_seconds`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct RequestLabels {
    pub(crate) op: &'static str,
    pub(crate) side: &'static str,
    pub(crate) transport: &'static str,
}

/// Labels of `haystack_errors_total`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct ErrorLabels {
    pub(crate) op: &'static str,
    pub(crate) error_type: &'static str,
    pub(crate) side: &'static str,
    pub(crate) transport: &'static str,
}

/// Labels of the WebSocket connection metrics.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct SideLabels {
    pub(crate) side: &'static str,
}

/// Labels of the WebSocket message and byte counters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct WsOpLabels {
    pub(crate) op: &'static str,
    pub(crate) side: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_index_round_trips_every_op() {
        for (index, op) in OPS.iter().enumerate() {
            assert_eq!(op_index(op), index, "{op}");
            assert_eq!(op_label(index), *op);
        }
        assert_eq!(op_label(op_index("nonsense")), OTHER);
        assert_eq!(op_label(op_index("")), OTHER);
        assert_eq!(op_label(op_index("READ")), OTHER);
    }

    #[test]
    fn error_index_round_trips_every_kind() {
        for (index, kind) in ErrorKind::ALL.iter().enumerate() {
            assert_eq!(error_index(kind.as_str()), index);
            assert_eq!(error_label(index), kind.as_str());
        }
        assert_eq!(error_label(error_index("Timeout")), OTHER);
        assert_eq!(error_index("boom"), ERROR_SLOTS - 1);
    }
}
