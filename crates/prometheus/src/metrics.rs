//! [`PrometheusMetrics`]: the registry and the metric families every
//! [`PrometheusObserver`] of it writes to.

use std::sync::Arc;

use prometheus_client::encoding::{prometheus_text, text};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use crate::labels::{ErrorLabels, RequestLabels, Side, SideLabels, Transport, WsOpLabels};
use crate::observer::PrometheusObserver;

/// Upper bounds (seconds) of the request-duration histogram buckets: 5 µs
/// to 50 s, 1-2.5-5 per decade.
///
/// An hs server answers an in-memory read in 5–10 µs, so the lowest bound
/// must sit there for `histogram_quantile` to tell 9 µs from 90 µs; a client
/// waiting on a slow history query or a timeout (30 s by default) must still
/// land below `+Inf`. 22 buckets per series, with the op list bounded, keep
/// the series count small. prometheus-client has no native (sparse)
/// histograms, which would make this choice unnecessary.
pub const DURATION_BUCKETS: [f64; 22] = [
    0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005,
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0,
];

/// The prefix of every metric name.
const PREFIX: &str = "haystack";

fn new_duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

type HistogramFamily<S> = Family<S, Histogram, fn() -> Histogram>;

/// The metric families, cheap to clone (each is an `Arc` inside).
#[derive(Debug, Clone)]
pub(crate) struct Families {
    pub(crate) request_duration: HistogramFamily<RequestLabels>,
    pub(crate) errors: Family<ErrorLabels, Counter>,
    pub(crate) ws_connections: Family<SideLabels, Counter>,
    pub(crate) ws_connections_active: Family<SideLabels, Gauge>,
    pub(crate) ws_messages_sent: Family<WsOpLabels, Counter>,
    pub(crate) ws_messages_received: Family<WsOpLabels, Counter>,
    pub(crate) ws_sent_bytes: Family<WsOpLabels, Counter>,
    pub(crate) ws_received_bytes: Family<WsOpLabels, Counter>,
}

impl Families {
    fn new() -> Self {
        Families {
            request_duration: Family::new_with_constructor(
                new_duration_histogram as fn() -> Histogram,
            ),
            errors: Family::default(),
            ws_connections: Family::default(),
            ws_connections_active: Family::default(),
            ws_messages_sent: Family::default(),
            ws_messages_received: Family::default(),
            ws_sent_bytes: Family::default(),
            ws_received_bytes: Family::default(),
        }
    }

    /// Registers every family under the `haystack` prefix. prometheus-client
    /// appends the unit and, for counters, `_total` to the exposed names.
    fn register(&self, registry: &mut Registry) {
        let registry = registry.sub_registry_with_prefix(PREFIX);
        registry.register_with_unit(
            "request_duration",
            "Duration of Haystack requests that ended with a non-error response",
            Unit::Seconds,
            self.request_duration.clone(),
        );
        registry.register(
            "errors",
            "Haystack requests that failed, by stable error type",
            self.errors.clone(),
        );
        registry.register(
            "ws_connections",
            "WebSocket connections established",
            self.ws_connections.clone(),
        );
        registry.register(
            "ws_connections_active",
            "WebSocket connections currently open",
            self.ws_connections_active.clone(),
        );
        registry.register(
            "ws_messages_sent",
            "WebSocket data frames sent",
            self.ws_messages_sent.clone(),
        );
        registry.register(
            "ws_messages_received",
            "WebSocket data frames received",
            self.ws_messages_received.clone(),
        );
        registry.register_with_unit(
            "ws_sent",
            "Payload bytes of WebSocket data frames sent",
            Unit::Bytes,
            self.ws_sent_bytes.clone(),
        );
        registry.register_with_unit(
            "ws_received",
            "Payload bytes of WebSocket data frames received",
            Unit::Bytes,
            self.ws_received_bytes.clone(),
        );
    }
}

/// A wire format of the metrics exposition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ExpositionFormat {
    /// OpenMetrics 1.0 text (ends with `# EOF`), for scrapers that ask for it.
    OpenMetrics,
    /// The Prometheus text format 0.0.4: the default.
    PrometheusText,
}

impl ExpositionFormat {
    /// The `Content-Type` of the format.
    pub const fn content_type(self) -> &'static str {
        match self {
            ExpositionFormat::OpenMetrics => {
                "application/openmetrics-text; version=1.0.0; charset=utf-8"
            }
            ExpositionFormat::PrometheusText => prometheus_text::CONTENT_TYPE,
        }
    }

    /// Picks the format for an `Accept` header, as Prometheus' own
    /// exporters do: OpenMetrics when the header accepts
    /// `application/openmetrics-text` (Prometheus asks for it first), the
    /// Prometheus text format otherwise (`*/*` from curl, `text/plain`, no
    /// header), which every scraper and `promtool check metrics` reads.
    pub fn negotiate(accept: Option<&str>) -> Self {
        let asks_for_openmetrics = accept.is_some_and(|accept| {
            accept.split(',').any(|range| {
                let mut parts = range.split(';').map(str::trim);
                let media_type = parts.next().unwrap_or_default();
                media_type.eq_ignore_ascii_case("application/openmetrics-text")
                    && !parts.any(|param| {
                        param
                            .strip_prefix("q=")
                            .and_then(|q| q.parse::<f32>().ok())
                            .is_some_and(|q| q <= 0.0)
                    })
            })
        });
        if asks_for_openmetrics {
            ExpositionFormat::OpenMetrics
        } else {
            ExpositionFormat::PrometheusText
        }
    }
}

/// The hs metrics: one [`Registry`] holding the `haystack_*` families, and a
/// factory of [`PrometheusObserver`]s that all write to them.
///
/// Give each component (HTTP server, WebSocket client, ...) its own observer
/// from [`observer`](Self::observer) with that component's `side` and
/// `transport`; one scrape of [`encode`](Self::encode) (or of
/// [`metrics_router`](crate::metrics_router)) then shows every component.
/// Cloning is cheap and shares everything.
#[derive(Clone)]
pub struct PrometheusMetrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    families: Families,
}

impl PrometheusMetrics {
    /// A fresh registry holding only the `haystack_*` metrics.
    pub fn new() -> Self {
        Self::with_registry(Registry::default())
    }

    /// Registers the `haystack_*` metrics into `registry` (which may already
    /// hold the application's own metrics) and takes it over, so one scrape
    /// shows both.
    pub fn with_registry(mut registry: Registry) -> Self {
        let families = Families::new();
        families.register(&mut registry);
        PrometheusMetrics {
            inner: Arc::new(Inner { registry, families }),
        }
    }

    /// An observer for one component, labelling everything it records with
    /// `side` and (for request and error metrics) `transport`.
    pub fn observer(&self, side: Side, transport: Transport) -> PrometheusObserver {
        PrometheusObserver::new(self.inner.families.clone(), side, transport)
    }

    /// The registry, for encoding it yourself.
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// The current values in `format`.
    ///
    /// # Errors
    ///
    /// Only if prometheus-client fails to encode a metric; writing to the
    /// `String` itself cannot fail.
    pub fn encode(&self, format: ExpositionFormat) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        match format {
            ExpositionFormat::OpenMetrics => text::encode(&mut out, &self.inner.registry)?,
            ExpositionFormat::PrometheusText => {
                prometheus_text::encode(&mut out, &self.inner.registry)?
            }
        }
        Ok(out)
    }
}

impl Default for PrometheusMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for PrometheusMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrometheusMetrics").finish_non_exhaustive()
    }
}
