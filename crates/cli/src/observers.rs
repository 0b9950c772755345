//! The observers a command attaches, chosen by its flags.

use std::sync::Arc;

use hs_core::observe::{
    CompositeObserver, Event, LoggingObserver, MetricsObserver, Side, StatsObserver, Transport,
};
use hs_otel::OtlpMetrics;
use hs_prometheus::PrometheusMetrics;
use log::LevelFilter;

use crate::cli::EventLog;

/// What to attach.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ObserverChoice {
    /// The logging observer's levels, or `Off` for none.
    pub(crate) event_log: EventLog,
    /// A [`StatsObserver`] shared by every component.
    pub(crate) stats: bool,
    /// Prometheus metrics (one observer per component).
    pub(crate) metrics: bool,
}

/// The observers of one side (server or client) of both transports, plus
/// handles to the shared stats and metrics.
pub(crate) struct Observers {
    /// Everything attached to the HTTP component.
    pub(crate) http: Arc<dyn MetricsObserver>,
    /// Everything attached to the WebSocket component.
    pub(crate) ws: Arc<dyn MetricsObserver>,
    /// The stats both components feed, when chosen.
    pub(crate) stats: Option<Arc<StatsObserver>>,
    /// The metrics both components feed, when chosen.
    pub(crate) metrics: Option<PrometheusMetrics>,
    /// The OTLP export both components feed, when chosen.
    pub(crate) otlp: Option<OtlpMetrics>,
}

impl std::fmt::Debug for Observers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observers")
            .field("stats", &self.stats.is_some())
            .field("metrics", &self.metrics.is_some())
            .field("otlp", &self.otlp.is_some())
            .finish_non_exhaustive()
    }
}

impl Observers {
    /// Builds the observers for `side`; with `otlp`, an OpenTelemetry
    /// observer per component records into it; `extra` observers (the
    /// demo's panicking one) are added to both components, each guarded
    /// separately.
    pub(crate) fn build(
        choice: ObserverChoice,
        side: Side,
        metrics: Option<PrometheusMetrics>,
        otlp: Option<OtlpMetrics>,
        extra: &[Arc<dyn MetricsObserver>],
    ) -> Self {
        let stats = choice.stats.then(|| Arc::new(StatsObserver::new()));
        let metrics = if choice.metrics {
            Some(metrics.unwrap_or_default())
        } else {
            None
        };
        let component = |transport: Transport| -> Arc<dyn MetricsObserver> {
            let mut builder = CompositeObserver::builder();
            if let Some(logging) = logging_observer(choice.event_log) {
                let mut logging = logging.for_component(side, transport);
                // A client command prints its failure itself, once; at WARN
                // the observer's line would repeat it.
                if side == Side::Client && choice.event_log == EventLog::Default {
                    logging = logging.with_level(Event::Error, LevelFilter::Debug);
                }
                builder = builder.with(logging);
            }
            if let Some(stats) = &stats {
                builder = builder.with_arc(stats.clone());
            }
            if let Some(metrics) = &metrics {
                builder = builder.with(metrics.observer(side, transport));
            }
            if let Some(otlp) = &otlp {
                builder = builder.with(otlp.observer(side, transport));
            }
            for observer in extra {
                builder = builder.with_arc(observer.clone());
            }
            Arc::new(builder.build())
        };
        Observers {
            http: component(Transport::Http),
            ws: component(Transport::Ws),
            stats,
            metrics,
            otlp,
        }
    }
}

/// The logging observer `event_log` asks for.
pub(crate) fn logging_observer(event_log: EventLog) -> Option<LoggingObserver> {
    let every = |level: LevelFilter| {
        Event::ALL
            .iter()
            .fold(LoggingObserver::new(), |observer, event| {
                observer.with_level(*event, level)
            })
    };
    match event_log {
        EventLog::Off => None,
        EventLog::Default => Some(LoggingObserver::new()),
        EventLog::Error => Some(every(LevelFilter::Error)),
        EventLog::Warn => Some(every(LevelFilter::Warn)),
        EventLog::Info => Some(every(LevelFilter::Info)),
        EventLog::Debug => Some(every(LevelFilter::Debug)),
        EventLog::Trace => Some(every(LevelFilter::Trace)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_choose_the_observers() {
        let choice = ObserverChoice {
            event_log: EventLog::Off,
            stats: true,
            metrics: true,
        };
        let observers = Observers::build(choice, Side::Server, None, None, &[]);
        observers.ws.on_ws_connect("127.0.0.1:1");
        observers
            .http
            .on_request("read", std::time::Duration::from_millis(1));
        let stats = observers.stats.as_ref().unwrap().snapshot();
        assert_eq!(stats.ws_connects, 1);
        assert_eq!(stats.requests, 1);
        let text = observers
            .metrics
            .as_ref()
            .unwrap()
            .encode(hs_prometheus::ExpositionFormat::PrometheusText)
            .unwrap();
        assert!(
            text.contains(r#"haystack_request_duration_seconds_count{op="read",side="server",transport="http"} 1"#),
            "{text}"
        );

        let none = Observers::build(
            ObserverChoice {
                event_log: EventLog::Off,
                stats: false,
                metrics: false,
            },
            Side::Client,
            None,
            None,
            &[],
        );
        assert!(none.stats.is_none() && none.metrics.is_none());
    }

    #[test]
    fn a_level_sets_every_event() {
        let observer = logging_observer(EventLog::Info).unwrap();
        for event in Event::ALL {
            assert_eq!(observer.level(event), LevelFilter::Info);
        }
        assert!(logging_observer(EventLog::Off).is_none());
    }
}
