//! [`OtelObserver`]: records the six hs events into OpenTelemetry instruments.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use hs_observe::MetricsObserver;
use hs_observe::labels::{
    ERROR_SLOTS, OP_SLOTS, Side, Transport, error_label, error_slot, op_label, op_slot,
};
use opentelemetry::metrics::{
    BoundCounter, BoundHistogram, BoundUpDownCounter, Counter, Histogram, Meter, MeterProvider,
    UpDownCounter,
};
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
/// Each series is bound on its first event (OpenTelemetry's bound
/// instruments) and the bound handle cached per op slot and per (op slot,
/// error slot), as hs-prometheus caches its series: an event after the
/// first costs one string match, one initialised-check and the SDK's
/// update of that series (atomics; a histogram takes a short lock), with no
/// attribute hashing and no allocation. A series shows in an export once
/// it has had an event; for a WebSocket component the connection series
/// exist from the start, at zero. Cloning is cheap and shares the handles.
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
    instruments: Instruments,
    /// Per op slot.
    durations: [OnceLock<BoundHistogram<f64>>; OP_SLOTS],
    /// Per `op slot * ERROR_SLOTS + error slot`.
    errors: Box<[OnceLock<BoundCounter<u64>>]>,
    connections: OnceLock<BoundCounter<u64>>,
    active_connections: OnceLock<BoundUpDownCounter<i64>>,
    /// Per op slot, for each direction.
    messages_sent: [OnceLock<BoundCounter<u64>>; OP_SLOTS],
    messages_received: [OnceLock<BoundCounter<u64>>; OP_SLOTS],
    bytes_sent: [OnceLock<BoundCounter<u64>>; OP_SLOTS],
    bytes_received: [OnceLock<BoundCounter<u64>>; OP_SLOTS],
}

/// The instruments, shared by every observer of one meter provider.
struct Instruments {
    duration: Histogram<f64>,
    errors: Counter<u64>,
    connections: Counter<u64>,
    active_connections: UpDownCounter<i64>,
    messages: Counter<u64>,
    io: Counter<u64>,
}

impl Instruments {
    fn new(meter: &Meter, side: Side) -> Self {
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
        Instruments {
            duration: meter
                .f64_histogram(duration_name)
                .with_unit("s")
                .with_description(duration_description)
                .with_boundaries(DURATION_BOUNDARIES.to_vec())
                .build(),
            errors: meter
                .u64_counter(errors_name)
                .with_unit("{call}")
                .with_description("Haystack calls that failed, by error type")
                .build(),
            connections: meter
                .u64_counter(names::WS_CONNECTIONS)
                .with_unit("{connection}")
                .with_description("WebSocket connections established")
                .build(),
            active_connections: meter
                .i64_up_down_counter(names::WS_ACTIVE_CONNECTIONS)
                .with_unit("{connection}")
                .with_description("WebSocket connections currently open")
                .build(),
            messages: meter
                .u64_counter(names::WS_MESSAGES)
                .with_unit("{message}")
                .with_description("WebSocket data frames sent and received")
                .build(),
            io: meter
                .u64_counter(names::WS_IO)
                .with_unit("By")
                .with_description("Payload bytes of WebSocket data frames sent and received")
                .build(),
        }
    }
}

impl OtelObserver {
    /// An observer for one component, recording through a meter of
    /// `provider` (scope `hs`, this crate's version): an
    /// [`OtlpMetrics`](crate::OtlpMetrics)'s provider, or the application's
    /// own (`opentelemetry::global::meter_provider()`, an `SdkMeterProvider`).
    ///
    /// Observers made from one provider share its instruments: one export
    /// holds every component, told apart by `hs.side` and `hs.transport`.
    /// With the global provider, make the observer after
    /// `opentelemetry::global::set_meter_provider`: instruments of the
    /// global no-op provider stay no-ops.
    pub fn new<P>(provider: &P, side: Side, transport: Transport) -> Self
    where
        P: MeterProvider + ?Sized,
    {
        let scope = InstrumentationScope::builder(names::SCOPE)
            .with_version(env!("CARGO_PKG_VERSION"))
            .build();
        let meter = provider.meter_with_scope(scope);
        let inner = Inner {
            side,
            transport,
            instruments: Instruments::new(&meter, side),
            durations: std::array::from_fn(|_| OnceLock::new()),
            errors: (0..OP_SLOTS * ERROR_SLOTS)
                .map(|_| OnceLock::new())
                .collect(),
            connections: OnceLock::new(),
            active_connections: OnceLock::new(),
            messages_sent: std::array::from_fn(|_| OnceLock::new()),
            messages_received: std::array::from_fn(|_| OnceLock::new()),
            bytes_sent: std::array::from_fn(|_| OnceLock::new()),
            bytes_received: std::array::from_fn(|_| OnceLock::new()),
        };
        if transport == Transport::Ws {
            // A dashboard should show "0 open connections", not "no data".
            inner.connections().add(0);
            inner.active_connections().add(0);
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

impl Inner {
    fn side_kv(&self) -> KeyValue {
        KeyValue::new(attr::SIDE, self.side.as_str())
    }

    fn call_attrs(&self, op: usize) -> [KeyValue; 4] {
        [
            KeyValue::new(attr::RPC_SYSTEM_NAME, names::RPC_SYSTEM),
            KeyValue::new(attr::RPC_METHOD, op_label(op)),
            self.side_kv(),
            KeyValue::new(attr::TRANSPORT, self.transport.as_str()),
        ]
    }

    fn frame_attrs(&self, op: usize, direction: &'static str) -> [KeyValue; 3] {
        [
            KeyValue::new(attr::RPC_METHOD, op_label(op)),
            KeyValue::new(attr::NETWORK_IO_DIRECTION, direction),
            self.side_kv(),
        ]
    }

    #[inline]
    fn duration(&self, op: usize) -> &BoundHistogram<f64> {
        self.durations[op].get_or_init(|| self.instruments.duration.bind(&self.call_attrs(op)))
    }

    #[inline]
    fn error(&self, op: usize, error: usize) -> &BoundCounter<u64> {
        self.errors[op * ERROR_SLOTS + error].get_or_init(|| {
            let [system, method, side, transport] = self.call_attrs(op);
            let error = KeyValue::new(attr::ERROR_TYPE, error_label(error));
            self.instruments
                .errors
                .bind(&[system, method, error, side, transport])
        })
    }

    #[inline]
    fn connections(&self) -> &BoundCounter<u64> {
        self.connections
            .get_or_init(|| self.instruments.connections.bind(&[self.side_kv()]))
    }

    #[inline]
    fn active_connections(&self) -> &BoundUpDownCounter<i64> {
        self.active_connections
            .get_or_init(|| self.instruments.active_connections.bind(&[self.side_kv()]))
    }

    #[inline]
    fn sent(&self, op: usize) -> (&BoundCounter<u64>, &BoundCounter<u64>) {
        let attrs = || self.frame_attrs(op, "transmit");
        (
            self.messages_sent[op].get_or_init(|| self.instruments.messages.bind(&attrs())),
            self.bytes_sent[op].get_or_init(|| self.instruments.io.bind(&attrs())),
        )
    }

    #[inline]
    fn received(&self, op: usize) -> (&BoundCounter<u64>, &BoundCounter<u64>) {
        let attrs = || self.frame_attrs(op, "receive");
        (
            self.messages_received[op].get_or_init(|| self.instruments.messages.bind(&attrs())),
            self.bytes_received[op].get_or_init(|| self.instruments.io.bind(&attrs())),
        )
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
        self.inner.connections().add(1);
        self.inner.active_connections().add(1);
    }

    fn on_ws_disconnect(&self, remote_addr: &str) {
        let _ = remote_addr;
        self.inner.active_connections().add(-1);
    }

    #[inline]
    fn on_ws_message_sent(&self, op: &str, byte_count: usize) {
        let (messages, bytes) = self.inner.sent(op_slot(op));
        messages.add(1);
        bytes.add(byte_count_u64(byte_count));
    }

    #[inline]
    fn on_ws_message_recv(&self, op: &str, byte_count: usize) {
        let (messages, bytes) = self.inner.received(op_slot(op));
        messages.add(1);
        bytes.add(byte_count_u64(byte_count));
    }

    #[inline]
    fn on_request(&self, op: &str, duration: Duration) {
        self.inner
            .duration(op_slot(op))
            .record(duration.as_secs_f64());
    }

    #[inline]
    fn on_error(&self, op: &str, error_type: &str) {
        self.inner.error(op_slot(op), error_slot(error_type)).add(1);
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
