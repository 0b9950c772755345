//! The bounded label values: `side`, `transport`, `op` and `error_type`.
//!
//! Every label value comes from a fixed list, so the number of series is
//! bounded whatever a peer sends: an op or error type outside the lists is
//! counted under [`OTHER`].

use prometheus_client::encoding::EncodeLabelSet;

pub use hs_core::observe::OBSERVED_OPS as OPS;
pub use hs_core::observe::labels::OTHER;

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
