//! [`PrometheusObserver`]: records the six hs events into the shared families.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use hs_observe::MetricsObserver;
use hs_observe::labels::{ERROR_SLOTS, OP_SLOTS, error_label, error_slot, op_label, op_slot};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;

use crate::labels::{ErrorLabels, RequestLabels, Side, SideLabels, Transport, WsOpLabels};
use crate::metrics::Families;

/// A [`MetricsObserver`] that records into the `haystack_*` Prometheus
/// metrics of the [`PrometheusMetrics`](crate::PrometheusMetrics) it came
/// from, with this component's constant `side` and `transport` labels.
///
/// | event | metric |
/// | --- | --- |
/// | `on_request(op, d)` | `haystack_request_duration_seconds{op,side,transport}` observes `d` |
/// | `on_error(op, e)` | `haystack_errors_total{op,error_type,side,transport}` + 1 |
/// | `on_ws_connect` | `haystack_ws_connections_total{side}` + 1, `haystack_ws_connections_active{side}` + 1 |
/// | `on_ws_disconnect` | `haystack_ws_connections_active{side}` − 1 |
/// | `on_ws_message_sent(op, n)` | `haystack_ws_messages_sent_total{op,side}` + 1, `haystack_ws_sent_bytes_total{op,side}` + n |
/// | `on_ws_message_recv(op, n)` | `haystack_ws_messages_received_total{op,side}` + 1, `haystack_ws_received_bytes_total{op,side}` + n |
///
/// WebSocket metrics carry no `transport` label: they only ever come from a
/// WebSocket component. The address passed to connect/disconnect is never a
/// label. An `op` outside [`OPS`](crate::OPS), or an `error_type` outside
/// [`ErrorKind::ALL`](hs_observe::ErrorKind::ALL), is counted as
/// `_other`, so the number of series is bounded.
///
/// Each series is created on its first event (so a scrape shows only what
/// happened) and its handle is then cached per op and error-type slot: an
/// event after the first costs one string match, one initialised-check and
/// the atomic update (the histogram takes prometheus-client's short lock),
/// with no allocation. For a WebSocket component the connection series
/// exist from the start, at zero.
///
/// Cloning is cheap and shares the cached handles.
#[derive(Clone)]
pub struct PrometheusObserver {
    handles: Arc<Handles>,
}

struct Handles {
    side: Side,
    transport: Transport,
    families: Families,
    durations: [OnceLock<Histogram>; OP_SLOTS],
    errors: [[OnceLock<Counter>; ERROR_SLOTS]; OP_SLOTS],
    connections: OnceLock<Counter>,
    connections_active: OnceLock<Gauge>,
    messages_sent: [OnceLock<Counter>; OP_SLOTS],
    messages_received: [OnceLock<Counter>; OP_SLOTS],
    sent_bytes: [OnceLock<Counter>; OP_SLOTS],
    received_bytes: [OnceLock<Counter>; OP_SLOTS],
}

impl PrometheusObserver {
    pub(crate) fn new(families: Families, side: Side, transport: Transport) -> Self {
        let handles = Handles {
            side,
            transport,
            families,
            durations: std::array::from_fn(|_| OnceLock::new()),
            errors: std::array::from_fn(|_| std::array::from_fn(|_| OnceLock::new())),
            connections: OnceLock::new(),
            connections_active: OnceLock::new(),
            messages_sent: std::array::from_fn(|_| OnceLock::new()),
            messages_received: std::array::from_fn(|_| OnceLock::new()),
            sent_bytes: std::array::from_fn(|_| OnceLock::new()),
            received_bytes: std::array::from_fn(|_| OnceLock::new()),
        };
        if transport == Transport::Ws {
            // A dashboard should show "0 open connections", not "no data".
            handles.connections();
            handles.connections_active();
        }
        PrometheusObserver {
            handles: Arc::new(handles),
        }
    }

    /// The `side` label of this observer.
    pub fn side(&self) -> Side {
        self.handles.side
    }

    /// The `transport` label of this observer.
    pub fn transport(&self) -> Transport {
        self.handles.transport
    }
}

impl Handles {
    fn side_labels(&self) -> SideLabels {
        SideLabels {
            side: self.side.as_str(),
        }
    }

    fn ws_op_labels(&self, op: usize) -> WsOpLabels {
        WsOpLabels {
            op: op_label(op),
            side: self.side.as_str(),
        }
    }

    #[inline]
    fn duration(&self, op: usize) -> &Histogram {
        self.durations[op].get_or_init(|| {
            self.families
                .request_duration
                .get_or_create_owned(&RequestLabels {
                    op: op_label(op),
                    side: self.side.as_str(),
                    transport: self.transport.as_str(),
                })
        })
    }

    #[inline]
    fn error(&self, op: usize, error: usize) -> &Counter {
        self.errors[op][error].get_or_init(|| {
            self.families.errors.get_or_create_owned(&ErrorLabels {
                op: op_label(op),
                error_type: error_label(error),
                side: self.side.as_str(),
                transport: self.transport.as_str(),
            })
        })
    }

    #[inline]
    fn connections(&self) -> &Counter {
        self.connections.get_or_init(|| {
            self.families
                .ws_connections
                .get_or_create_owned(&self.side_labels())
        })
    }

    #[inline]
    fn connections_active(&self) -> &Gauge {
        self.connections_active.get_or_init(|| {
            self.families
                .ws_connections_active
                .get_or_create_owned(&self.side_labels())
        })
    }

    #[inline]
    fn messages_sent(&self, op: usize) -> &Counter {
        self.messages_sent[op].get_or_init(|| {
            self.families
                .ws_messages_sent
                .get_or_create_owned(&self.ws_op_labels(op))
        })
    }

    #[inline]
    fn messages_received(&self, op: usize) -> &Counter {
        self.messages_received[op].get_or_init(|| {
            self.families
                .ws_messages_received
                .get_or_create_owned(&self.ws_op_labels(op))
        })
    }

    #[inline]
    fn sent_bytes(&self, op: usize) -> &Counter {
        self.sent_bytes[op].get_or_init(|| {
            self.families
                .ws_sent_bytes
                .get_or_create_owned(&self.ws_op_labels(op))
        })
    }

    #[inline]
    fn received_bytes(&self, op: usize) -> &Counter {
        self.received_bytes[op].get_or_init(|| {
            self.families
                .ws_received_bytes
                .get_or_create_owned(&self.ws_op_labels(op))
        })
    }
}

/// `usize` to `u64` without a lossy cast (`usize` is at most 64 bits on
/// every supported target; saturate rather than wrap if it ever is not).
#[inline]
fn byte_count_u64(byte_count: usize) -> u64 {
    u64::try_from(byte_count).unwrap_or(u64::MAX)
}

impl MetricsObserver for PrometheusObserver {
    fn on_ws_connect(&self, remote_addr: &str) {
        // The address goes to logs, never into a label.
        let _ = remote_addr;
        self.handles.connections().inc();
        self.handles.connections_active().inc();
    }

    fn on_ws_disconnect(&self, remote_addr: &str) {
        let _ = remote_addr;
        self.handles.connections_active().dec();
    }

    #[inline]
    fn on_ws_message_sent(&self, op: &str, byte_count: usize) {
        let op = op_slot(op);
        self.handles.messages_sent(op).inc();
        self.handles
            .sent_bytes(op)
            .inc_by(byte_count_u64(byte_count));
    }

    #[inline]
    fn on_ws_message_recv(&self, op: &str, byte_count: usize) {
        let op = op_slot(op);
        self.handles.messages_received(op).inc();
        self.handles
            .received_bytes(op)
            .inc_by(byte_count_u64(byte_count));
    }

    #[inline]
    fn on_request(&self, op: &str, duration: Duration) {
        self.handles
            .duration(op_slot(op))
            .observe(duration.as_secs_f64());
    }

    #[inline]
    fn on_error(&self, op: &str, error_type: &str) {
        self.handles
            .error(op_slot(op), error_slot(error_type))
            .inc();
    }
}

impl std::fmt::Debug for PrometheusObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrometheusObserver")
            .field("side", &self.handles.side)
            .field("transport", &self.handles.transport)
            .finish_non_exhaustive()
    }
}
