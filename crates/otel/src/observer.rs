//! [`OtelObserver`]: records the six hs events into OpenTelemetry instruments.

use std::sync::Arc;
use std::time::Duration;

use hs_observe::MetricsObserver;
use hs_observe::labels::{ERROR_SLOTS, OP_SLOTS, Side, Transport, error_label, error_slot};
use hs_observe::labels::{op_label, op_slot};
use opentelemetry::metrics::{Counter, Histogram, Meter, MeterProvider, UpDownCounter};
use opentelemetry::{InstrumentationScope, KeyValue};

use crate::names::{self, attr};

/// Upper bounds (seconds) of the call-duration histogram buckets: 5 µs to
/// 50 s, 1-2.5-5 per decade, the same as hs-prometheus's.
///
/// An hs server answers an in-memory read in 5–10 µs, so the lowest bound
/// must sit there to tell 9 µs from 90 µs (the semantic conventions' advice,
/// starting at 5 ms, would put every hs server call in its first bucket); a
/// client waiting on a slow history query or a 30 s timeout still lands
/// below `+Inf`. They are set as the instrument's advisory boundaries, so a
/// View of the application's `MeterProvider` can still replace them.
pub const DURATION_BOUNDARIES: [f64; 22] = [
    0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005,
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0,
];

/// A [`MetricsObserver`] that records every event into OpenTelemetry
/// instruments named after the semantic conventions, with this component's
/// constant `hs.side` and `hs.transport` attributes.
///
/// | event | instrument |
/// | --- | --- |
/// | `on_request(op, d)` | `rpc.server.call.duration` (server) or `rpc.client.call.duration` (client) records `d` in seconds |
/// | `on_error(op, e)` | `hs.rpc.server.call.errors` or `hs.rpc.client.call.errors` + 1, with `error.type` = `e` |
/// | `on_ws_connect` | `hs.ws.connections` + 1, `hs.ws.active_connections` + 1 |
/// | `on_ws_disconnect` | `hs.ws.active_connections` − 1 |
/// | `on_ws_message_sent(op, n)` | `hs.ws.messages` + 1 and `hs.ws.io` + n, `network.io.direction` = `transmit` |
/// | `on_ws_message_recv(op, n)` | `hs.ws.messages` + 1 and `hs.ws.io` + n, `network.io.direction` = `receive` |
///
/// The crate docs list units and attributes. The op is the `rpc.method`
/// attribute; an op outside [`OBSERVED_OPS`](hs_observe::OBSERVED_OPS), or
/// an error type outside [`ErrorKind::ALL`](hs_observe::ErrorKind::ALL), is
/// recorded as `_other`, and the address given to connect/disconnect is
/// never an attribute, so the number of series is bounded.
///
/// Every attribute set is built once, when the observer is made, per op
/// slot and per (op slot, error slot): an event costs one string match, the
/// SDK's attribute-set lookup (a hash and a read lock) and the atomic
/// update, with no allocation.
///
/// For a WebSocket component the connection series exist from the start,
/// at zero. Cloning is cheap and shares the instruments.
///
/// ```
/// use std::time::Duration;
/// use hs_observe::{MetricsObserver, Side, Transport};
/// use hs_otel::OtelObserver;
/// use opentelemetry_sdk::metrics::SdkMeterProvider;
///
/// let provider = SdkMeterProvider::builder().build();
/// let observer = OtelObserver::new(&provider, Side::Server, Transport::Http);
/// observer.on_request("read", Duration::from_micros(12));
/// ```
#[derive(Clone)]
pub struct OtelObserver {
    inner: Arc<Inner>,
}

struct Inner {
    side: Side,
    transport: Transport,
    duration: Histogram<f64>,
    errors: Counter<u64>,
    connections: Counter<u64>,
    active_connections: UpDownCounter<i64>,
    messages: Counter<u64>,
    io: Counter<u64>,
    /// Per op slot: the attributes of a call.
    call_attrs: Box<[[KeyValue; 4]]>,
    /// Per `op slot * ERROR_SLOTS + error slot`: the attributes of a failed call.
    error_attrs: Box<[[KeyValue; 5]]>,
    /// The attributes of the connection instruments.
    connection_attrs: [KeyValue; 1],
    /// Per op slot: the attributes of a frame sent.
    sent_attrs: Box<[[KeyValue; 3]]>,
    /// Per op slot: the attributes of a frame received.
    received_attrs: Box<[[KeyValue; 3]]>,
}

impl OtelObserver {
    /// An observer for one component, recording through a meter of
    /// `provider` (scope `hs`, this crate's version): an
    /// [`OtlpMetrics`](crate::OtlpMetrics)'s provider, or the application's
    /// own (`opentelemetry::global::meter_provider()`, an `SdkMeterProvider`).
    ///
    /// Observers made from one provider share its instruments: one export
    /// holds every component, told apart by `hs.side` and `hs.transport`.
    pub fn new<P>(provider: &P, side: Side, transport: Transport) -> Self
    where
        P: MeterProvider + ?Sized,
    {
        let scope = InstrumentationScope::builder(names::SCOPE)
            .with_version(env!("CARGO_PKG_VERSION"))
            .build();
        Self::with_meter(&provider.meter_with_scope(scope), side, transport)
    }

    fn with_meter(meter: &Meter, side: Side, transport: Transport) -> Self {
        let (duration_name, duration_description, errors_name) = match side {
            Side::Client => (
                names::CLIENT_CALL_DURATION,
                "Duration of outgoing Haystack calls that ended with a non-error response",
                names::CLIENT_CALL_ERRORS,
            ),
            // `Side` is non-exhaustive; a new side reports as a server.
            _ => (
                names::SERVER_CALL_DURATION,
                "Duration of incoming Haystack calls that ended with a non-error response",
                names::SERVER_CALL_ERRORS,
            ),
        };
        let duration = meter
            .f64_histogram(duration_name)
            .with_unit("s")
            .with_description(duration_description)
            .with_boundaries(DURATION_BOUNDARIES.to_vec())
            .build();
        let errors = meter
            .u64_counter(errors_name)
            .with_unit("{call}")
            .with_description("Haystack calls that failed, by error type")
            .build();
        let connections = meter
            .u64_counter(names::WS_CONNECTIONS)
            .with_unit("{connection}")
            .with_description("WebSocket connections established")
            .build();
        let active_connections = meter
            .i64_up_down_counter(names::WS_ACTIVE_CONNECTIONS)
            .with_unit("{connection}")
            .with_description("WebSocket connections currently open")
            .build();
        let messages = meter
            .u64_counter(names::WS_MESSAGES)
            .with_unit("{message}")
            .with_description("WebSocket data frames sent and received")
            .build();
        let io = meter
            .u64_counter(names::WS_IO)
            .with_unit("By")
            .with_description("Payload bytes of WebSocket data frames sent and received")
            .build();

        let side_kv = || KeyValue::new(attr::SIDE, side.as_str());
        let call = |op: usize| {
            [
                KeyValue::new(attr::RPC_SYSTEM_NAME, names::RPC_SYSTEM),
                KeyValue::new(attr::RPC_METHOD, op_label(op)),
                side_kv(),
                KeyValue::new(attr::TRANSPORT, transport.as_str()),
            ]
        };
        let frame = |op: usize, direction: &'static str| {
            [
                KeyValue::new(attr::RPC_METHOD, op_label(op)),
                KeyValue::new(attr::NETWORK_IO_DIRECTION, direction),
                side_kv(),
            ]
        };
        let inner = Inner {
            side,
            transport,
            call_attrs: (0..OP_SLOTS).map(call).collect(),
            error_attrs: (0..OP_SLOTS * ERROR_SLOTS)
                .map(|slot| {
                    let [system, method, side, transport] = call(slot / ERROR_SLOTS);
                    let error = KeyValue::new(attr::ERROR_TYPE, error_label(slot % ERROR_SLOTS));
                    [system, method, error, side, transport]
                })
                .collect(),
            connection_attrs: [side_kv()],
            sent_attrs: (0..OP_SLOTS).map(|op| frame(op, "transmit")).collect(),
            received_attrs: (0..OP_SLOTS).map(|op| frame(op, "receive")).collect(),
            duration,
            errors,
            connections,
            active_connections,
            messages,
            io,
        };
        if transport == Transport::Ws {
            // A dashboard should show "0 open connections", not "no data".
            inner.connections.add(0, &inner.connection_attrs);
            inner.active_connections.add(0, &inner.connection_attrs);
        }
        OtelObserver {
            inner: Arc::new(inner),
        }
    }

    /// The `hs.side` attribute of this observer.
    pub fn side(&self) -> Side {
        self.inner.side
    }

    /// The `hs.transport` attribute of this observer.
    pub fn transport(&self) -> Transport {
        self.inner.transport
    }
}

/// `usize` to `u64` without a lossy cast (saturating, should `usize` ever
/// be wider).
#[inline]
fn byte_count_u64(byte_count: usize) -> u64 {
    u64::try_from(byte_count).unwrap_or(u64::MAX)
}

impl MetricsObserver for OtelObserver {
    fn on_ws_connect(&self, remote_addr: &str) {
        // The address goes to logs, never into an attribute.
        let _ = remote_addr;
        let inner = &*self.inner;
        inner.connections.add(1, &inner.connection_attrs);
        inner.active_connections.add(1, &inner.connection_attrs);
    }

    fn on_ws_disconnect(&self, remote_addr: &str) {
        let _ = remote_addr;
        let inner = &*self.inner;
        inner.active_connections.add(-1, &inner.connection_attrs);
    }

    #[inline]
    fn on_ws_message_sent(&self, op: &str, byte_count: usize) {
        let inner = &*self.inner;
        let attrs = &inner.sent_attrs[op_slot(op)];
        inner.messages.add(1, attrs);
        inner.io.add(byte_count_u64(byte_count), attrs);
    }

    #[inline]
    fn on_ws_message_recv(&self, op: &str, byte_count: usize) {
        let inner = &*self.inner;
        let attrs = &inner.received_attrs[op_slot(op)];
        inner.messages.add(1, attrs);
        inner.io.add(byte_count_u64(byte_count), attrs);
    }

    #[inline]
    fn on_request(&self, op: &str, duration: Duration) {
        let inner = &*self.inner;
        inner
            .duration
            .record(duration.as_secs_f64(), &inner.call_attrs[op_slot(op)]);
    }

    #[inline]
    fn on_error(&self, op: &str, error_type: &str) {
        let inner = &*self.inner;
        let slot = op_slot(op) * ERROR_SLOTS + error_slot(error_type);
        inner.errors.add(1, &inner.error_attrs[slot]);
    }
}

impl std::fmt::Debug for OtelObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtelObserver")
            .field("side", &self.inner.side)
            .field("transport", &self.inner.transport)
            .finish_non_exhaustive()
    }
}
