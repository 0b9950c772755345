//! Shared helpers: fire every event once, and read samples out of a scrape.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::time::Duration;

use hs_observe::{ErrorKind, MetricsObserver};
use hs_prometheus::{OPS, PrometheusMetrics, Side, Transport};

/// One sample line of a text exposition.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Sample {
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses every sample line (comments skipped), labels sorted by name. Our label values never hold
/// `"`, `,` or `}`, which the parser relies on; it panics on anything else.
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("sample line has a value");
            let value: f64 = match value {
                "+Inf" => f64::INFINITY,
                v => v.parse().unwrap_or_else(|_| panic!("bad value in {line}")),
            };
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => {
                    let rest = rest.strip_suffix('}').expect("labels close");
                    let mut labels: Vec<(String, String)> = rest
                        .split(',')
                        .filter(|pair| !pair.is_empty())
                        .map(|pair| {
                            let (k, v) = pair.split_once('=').expect("label pair");
                            let v = v.strip_prefix('"').and_then(|v| v.strip_suffix('"'));
                            let mut v = v.expect("quoted label value").to_owned();
                            // OpenMetrics writes `le="1.0"`, Prometheus text `le="1"`.
                            if k == "le" && v != "+Inf" {
                                v = format!("{:?}", v.parse::<f64>().expect("numeric le"));
                            }
                            (k.to_owned(), v)
                        })
                        .collect();
                    // Label order is not significant (and differs by format).
                    labels.sort();
                    (name, labels)
                }
                None => (series, Vec::new()),
            };
            Sample {
                name: name.to_owned(),
                labels,
                value,
            }
        })
        .collect()
}

/// The value of the one sample named `name` whose labels include all of `labels`.
pub fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let matching: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.name == name && labels.iter().all(|(k, v)| s.label(k) == Some(v)))
        .collect();
    assert!(
        matching.len() <= 1,
        "{name} {labels:?} matches several samples: {matching:?}"
    );
    matching.first().map(|s| s.value)
}

/// Fires each of the six events once, for every op and every error kind,
/// plus an unknown op and error type, on one observer per component.
pub fn fire_everything(metrics: &PrometheusMetrics) {
    for side in [Side::Client, Side::Server] {
        for transport in [Transport::Http, Transport::Ws] {
            let observer = metrics.observer(side, transport);
            for op in OPS.iter().copied().chain(["someCustomOp"]) {
                observer.on_request(op, Duration::from_millis(1));
                for kind in ErrorKind::ALL {
                    observer.on_error(op, kind.as_str());
                }
                observer.on_error(op, "made_up_error");
                if transport == Transport::Ws {
                    observer.on_ws_message_sent(op, 10);
                    observer.on_ws_message_recv(op, 20);
                }
            }
            if transport == Transport::Ws {
                observer.on_ws_connect("127.0.0.1:1");
                observer.on_ws_disconnect("127.0.0.1:1");
            }
        }
    }
}
