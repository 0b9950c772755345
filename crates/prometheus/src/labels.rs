//! The bounded label values: `side`, `transport`, `op` and `error_type`.
//!
//! Every label value comes from a fixed list, so the number of series is
//! bounded whatever a peer sends: an op or error type outside the lists is
//! counted under [`OTHER`].

use prometheus_client::encoding::EncodeLabelSet;

pub use hs_observe::OBSERVED_OPS as OPS;
pub use hs_observe::labels::{OTHER, Side, Transport};

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
