//! `hs serve`'s OpenTelemetry flags: the metrics exported over OTLP beside
//! Prometheus' `/metrics`.

use std::time::Duration;

use clap::Args;
use hs_otel::{OtlpMetrics, OtlpProtocol};

use crate::error::CliError;

/// The environment variables that turn the export on without a flag (the
/// OpenTelemetry SDK reads them, and the others it documents).
const ENDPOINT_VARIABLES: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
];

/// The `service.name` when neither `OTEL_SERVICE_NAME` nor
/// `OTEL_RESOURCE_ATTRIBUTES` names one.
const SERVICE_NAME: &str = "hs";

/// The OTLP flags of `hs serve`.
#[derive(Debug, Clone, Args)]
pub(crate) struct OtlpArgs {
    /// Export the metrics over OTLP to this receiver as well (its base URL:
    /// http://collector:4318 for HTTP, http://collector:4317 for gRPC). Also
    /// on when OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_METRICS_ENDPOINT
    /// is set; the SDK's other OTEL_* variables apply (headers, timeout, ...)
    #[arg(long, value_name = "URL", help_heading = "OpenTelemetry")]
    pub(crate) otlp_endpoint: Option<String>,

    /// The OTLP protocol: http/protobuf or grpc [default:
    /// $OTEL_EXPORTER_OTLP_PROTOCOL, else http/protobuf]
    #[arg(long, value_name = "PROTOCOL", value_parser = parse_protocol, help_heading = "OpenTelemetry")]
    pub(crate) otlp_protocol: Option<OtlpProtocol>,

    /// Time between two exports [default: $OTEL_METRIC_EXPORT_INTERVAL, else 60s]
    #[arg(long, value_name = "DURATION", value_parser = crate::cli::parse_interval, help_heading = "OpenTelemetry")]
    pub(crate) otlp_interval: Option<Duration>,
}

impl OtlpArgs {
    /// The OTLP export, when a flag or the environment asks for one. Needs
    /// the Tokio runtime (the gRPC exporter runs on it).
    pub(crate) fn metrics(&self) -> Result<Option<OtlpMetrics>, CliError> {
        let from_environment = ENDPOINT_VARIABLES
            .iter()
            .any(|variable| std::env::var_os(variable).is_some_and(|value| !value.is_empty()));
        if self.otlp_endpoint.is_none() && !from_environment {
            return Ok(None);
        }
        let mut builder = OtlpMetrics::builder();
        if let Some(endpoint) = &self.otlp_endpoint {
            builder = builder.endpoint(endpoint);
        }
        if let Some(protocol) = self.otlp_protocol {
            builder = builder.protocol(protocol);
        }
        if let Some(interval) = self.otlp_interval {
            builder = builder.interval(interval);
        }
        if !names_a_service() {
            builder = builder.service_name(SERVICE_NAME);
        }
        builder.build().map(Some).map_err(CliError::Otlp)
    }

    /// The `otlp` line of `hs serve`'s banner.
    pub(crate) fn summary(&self, otlp: &OtlpMetrics) -> String {
        let endpoint = self
            .otlp_endpoint
            .clone()
            .or_else(|| {
                ENDPOINT_VARIABLES
                    .iter()
                    .find_map(|variable| std::env::var(variable).ok())
            })
            .unwrap_or_default();
        let interval = match self.otlp_interval {
            Some(interval) => format!("every {interval:?}"),
            None => "at the SDK's interval".to_owned(),
        };
        format!("{} to {endpoint}, {interval}", otlp.protocol())
    }
}

/// Whether the environment gives the `service.name` resource attribute.
fn names_a_service() -> bool {
    std::env::var_os("OTEL_SERVICE_NAME").is_some_and(|name| !name.is_empty())
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|attributes| {
            attributes
                .split(',')
                .any(|pair| pair.trim().starts_with("service.name="))
        })
}

fn parse_protocol(raw: &str) -> Result<OtlpProtocol, String> {
    OtlpProtocol::from_name(raw).ok_or_else(|| format!("`{raw}`: expected http/protobuf or grpc"))
}
