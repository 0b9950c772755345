//! OTLP export: [`OtlpMetrics`], a meter provider whose periodic reader
//! pushes every hs metric to an OTLP receiver.

use std::sync::Arc;
use std::time::Duration;

use hs_observe::labels::{Side, Transport};
use opentelemetry_otlp::{MetricExporter, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};

use crate::{OtelObserver, OtlpError};

/// The wire protocol of the OTLP exporter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OtlpProtocol {
    /// OTLP/HTTP with protobuf bodies (`http/protobuf`), posted to
    /// `{endpoint}/v1/metrics`; the default, on port 4318.
    HttpProtobuf,
    /// OTLP/gRPC (`grpc`, tonic), on port 4317. The exporter must be built
    /// inside a Tokio runtime, which must outlive it.
    #[cfg(feature = "grpc")]
    #[cfg_attr(docsrs, doc(cfg(feature = "grpc")))]
    Grpc,
}

impl OtlpProtocol {
    /// The name `OTEL_EXPORTER_OTLP_PROTOCOL` gives it: `http/protobuf` or `grpc`.
    pub const fn as_str(self) -> &'static str {
        match self {
            OtlpProtocol::HttpProtobuf => "http/protobuf",
            #[cfg(feature = "grpc")]
            OtlpProtocol::Grpc => "grpc",
        }
    }

    /// The protocol named `name` (an [`as_str`](Self::as_str) name), if this
    /// build has it.
    pub fn from_name(name: &str) -> Option<Self> {
        match name.trim() {
            "http/protobuf" => Some(OtlpProtocol::HttpProtobuf),
            #[cfg(feature = "grpc")]
            "grpc" => Some(OtlpProtocol::Grpc),
            _ => None,
        }
    }

    /// The protocol of `OTEL_EXPORTER_OTLP_METRICS_PROTOCOL`, else of
    /// `OTEL_EXPORTER_OTLP_PROTOCOL`, else [`HttpProtobuf`](Self::HttpProtobuf).
    fn from_env() -> Self {
        [
            "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ]
        .into_iter()
        .find_map(|var| std::env::var(var).ok())
        .and_then(|name| Self::from_name(&name))
        .unwrap_or(OtlpProtocol::HttpProtobuf)
    }
}

impl std::fmt::Display for OtlpProtocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Builds an [`OtlpMetrics`]. Anything not set here comes from the standard
/// environment variables, read by the OpenTelemetry SDK as it documents
/// them:
///
/// | setting | here | environment (when not set here) | default |
/// | --- | --- | --- | --- |
/// | receiver | [`endpoint`](Self::endpoint) | `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT` (used as is), `OTEL_EXPORTER_OTLP_ENDPOINT` | `http://localhost:4318` (HTTP), `http://localhost:4317` (gRPC) |
/// | protocol | [`protocol`](Self::protocol) | `OTEL_EXPORTER_OTLP_METRICS_PROTOCOL`, `OTEL_EXPORTER_OTLP_PROTOCOL` | `http/protobuf` |
/// | export interval | [`interval`](Self::interval) | `OTEL_METRIC_EXPORT_INTERVAL` (ms) | 60 s |
/// | `service.name` | [`service_name`](Self::service_name) | `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES` | `unknown_service` |
/// | headers, timeout, compression, temporality | — | `OTEL_EXPORTER_OTLP_[METRICS_]HEADERS`, `..._TIMEOUT`, `..._COMPRESSION`, `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE` | none, 10 s, none, cumulative |
///
/// Over HTTP, an `https://` endpoint is verified against the operating
/// system's trust store (rustls with ring, no OpenSSL). The gRPC exporter
/// of this build speaks plain `http://` only.
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct OtlpMetricsBuilder {
    endpoint: Option<String>,
    protocol: Option<OtlpProtocol>,
    interval: Option<Duration>,
    service_name: Option<String>,
}

impl OtlpMetricsBuilder {
    /// The receiver's base URL, as in `OTEL_EXPORTER_OTLP_ENDPOINT`
    /// (`http://collector:4318`): over HTTP the metrics are posted to
    /// `{endpoint}/v1/metrics`; over gRPC it is the server's address.
    pub fn endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoint = Some(url.into());
        self
    }

    /// The wire protocol.
    pub fn protocol(mut self, protocol: OtlpProtocol) -> Self {
        self.protocol = Some(protocol);
        self
    }

    /// The time between two exports (zero keeps the default).
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = Some(interval);
        self
    }

    /// The `service.name` resource attribute.
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = Some(name.into());
        self
    }

    /// Builds the exporter and starts the periodic reader's thread.
    ///
    /// # Errors
    ///
    /// [`OtlpError::Build`] when the settings (or the environment) are
    /// invalid: a malformed endpoint URL, say; [`OtlpError::HttpClient`] if
    /// the HTTP client cannot be built (no usable trust store); with gRPC,
    /// [`OtlpError::NoRuntime`](crate::OtlpError) outside a Tokio runtime. A receiver that cannot be reached is no
    /// build error: each failed export is reported by the SDK's own
    /// diagnostics and retried at the next interval.
    pub fn build(self) -> Result<OtlpMetrics, OtlpError> {
        let protocol = self.protocol.unwrap_or_else(OtlpProtocol::from_env);
        let exporter = match protocol {
            OtlpProtocol::HttpProtobuf => {
                let builder = MetricExporter::builder()
                    .with_http()
                    .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                    .with_http_client(http_client(http_timeout())?);
                match &self.endpoint {
                    // The SDK takes a configured HTTP endpoint as the full
                    // URL; the base-URL form matches OTEL_EXPORTER_OTLP_ENDPOINT.
                    Some(base) => builder.with_endpoint(metrics_url(base)).build(),
                    None => builder.build(),
                }
            }
            #[cfg(feature = "grpc")]
            OtlpProtocol::Grpc => {
                // tonic spawns its connection task on the current runtime
                // and panics without one: refuse instead.
                if tokio::runtime::Handle::try_current().is_err() {
                    return Err(OtlpError::NoRuntime);
                }
                let builder = MetricExporter::builder()
                    .with_tonic()
                    .with_protocol(opentelemetry_otlp::Protocol::Grpc);
                match &self.endpoint {
                    Some(url) => builder.with_endpoint(url.clone()).build(),
                    None => builder.build(),
                }
            }
        }
        .map_err(OtlpError::Build)?;

        let mut reader = PeriodicReader::builder(exporter);
        if let Some(interval) = self.interval {
            reader = reader.with_interval(interval);
        }
        let mut resource = Resource::builder();
        if let Some(name) = self.service_name {
            resource = resource.with_service_name(name);
        }
        let provider = SdkMeterProvider::builder()
            .with_reader(reader.build())
            .with_resource(resource.build())
            .build();
        Ok(OtlpMetrics { provider, protocol })
    }
}

/// The export timeout as the SDK reads it: `OTEL_EXPORTER_OTLP_METRICS_TIMEOUT`,
/// else `OTEL_EXPORTER_OTLP_TIMEOUT` (milliseconds), else 10 s.
fn http_timeout() -> Duration {
    [
        "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT",
        "OTEL_EXPORTER_OTLP_TIMEOUT",
    ]
    .into_iter()
    .find_map(|var| std::env::var(var).ok()?.trim().parse().ok())
    .map_or(Duration::from_secs(10), Duration::from_millis)
}

/// reqwest's blocking client on rustls with ring and the OS trust store.
///
/// The TLS configuration is given whole, so the client works whatever
/// reqwest features the application unifies in (`rustls-no-provider` needs
/// a process-wide crypto provider otherwise). The blocking client runs a
/// runtime of its own, which cannot be built on an async task: build it on
/// a thread of its own, as the SDK does.
fn http_client(timeout: Duration) -> Result<reqwest::blocking::Client, OtlpError> {
    let build = move || {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = rustls_platform_verifier::Verifier::new(provider.clone())
            .map_err(|error| OtlpError::HttpClient(format!("trust store: {error}")))?;
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| OtlpError::HttpClient(error.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        reqwest::blocking::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(timeout)
            .build()
            .map_err(|error| OtlpError::HttpClient(error.to_string()))
    };
    std::thread::Builder::new()
        .name("hs-otel-client".to_owned())
        .spawn(build)
        .map_err(|error| OtlpError::HttpClient(error.to_string()))?
        .join()
        .map_err(|_| OtlpError::HttpClient("building the client panicked".to_owned()))?
}

/// `{base}/v1/metrics`, with exactly one `/` between.
fn metrics_url(base: &str) -> String {
    format!("{}/v1/metrics", base.trim_end_matches('/'))
}

/// hs metrics exported over OTLP: an `SdkMeterProvider` with a periodic
/// reader and an OTLP exporter, and a factory of [`OtelObserver`]s that all
/// record into it.
///
/// Give each component its own observer from [`observer`](Self::observer);
/// call [`shutdown`](Self::shutdown) before the process exits so the last
/// interval's values are sent. Cloning is cheap and shares the provider.
///
/// ```no_run
/// use std::sync::Arc;
/// use std::time::Duration;
/// use hs_observe::{MetricsObserver, Side, Transport};
/// use hs_otel::OtlpMetrics;
///
/// let otlp = OtlpMetrics::builder()
///     .endpoint("http://127.0.0.1:4318")
///     .service_name("building-gateway")
///     .interval(Duration::from_secs(10))
///     .build()?;
/// let observer: Arc<dyn MetricsObserver> = Arc::new(otlp.observer(Side::Server, Transport::Ws));
/// // ... hand `observer` to the server's builder, run it ...
/// otlp.shutdown()?;
/// # Ok::<(), hs_otel::OtlpError>(())
/// ```
#[derive(Debug, Clone)]
pub struct OtlpMetrics {
    provider: SdkMeterProvider,
    protocol: OtlpProtocol,
}

impl OtlpMetrics {
    /// A builder with nothing set: everything from the environment.
    pub fn builder() -> OtlpMetricsBuilder {
        OtlpMetricsBuilder::default()
    }

    /// An observer for one component, recording into this provider with
    /// constant `hs.side` and `hs.transport` attributes.
    pub fn observer(&self, side: Side, transport: Transport) -> OtelObserver {
        OtelObserver::new(&self.provider, side, transport)
    }

    /// The meter provider, for the application's own instruments (or to
    /// make it the global one).
    pub fn meter_provider(&self) -> &SdkMeterProvider {
        &self.provider
    }

    /// The protocol the exporter speaks.
    pub fn protocol(&self) -> OtlpProtocol {
        self.protocol
    }

    /// Collects and exports now, waiting for the receiver's answer (blocks
    /// the calling thread: from async code, call it through
    /// `tokio::task::spawn_blocking`).
    ///
    /// # Errors
    ///
    /// [`OtlpError::Flush`] if the export failed or timed out.
    pub fn force_flush(&self) -> Result<(), OtlpError> {
        self.provider.force_flush().map_err(OtlpError::Flush)
    }

    /// Exports what was recorded since the last export, then stops the
    /// reader (blocking, as [`force_flush`](Self::force_flush)). Observers
    /// made from it keep working and record nowhere.
    ///
    /// # Errors
    ///
    /// [`OtlpError::Shutdown`] if the last export failed, or the provider
    /// was already shut down.
    pub fn shutdown(&self) -> Result<(), OtlpError> {
        self.provider.shutdown().map_err(OtlpError::Shutdown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_url_joins_once() {
        assert_eq!(metrics_url("http://h:4318"), "http://h:4318/v1/metrics");
        assert_eq!(metrics_url("http://h:4318/"), "http://h:4318/v1/metrics");
        assert_eq!(metrics_url("http://h/otlp"), "http://h/otlp/v1/metrics");
    }

    #[test]
    fn protocol_names_round_trip() {
        assert_eq!(
            OtlpProtocol::from_name(OtlpProtocol::HttpProtobuf.as_str()),
            Some(OtlpProtocol::HttpProtobuf)
        );
        #[cfg(feature = "grpc")]
        assert_eq!(OtlpProtocol::from_name("grpc"), Some(OtlpProtocol::Grpc));
        assert_eq!(OtlpProtocol::from_name("http/json"), None);
    }
}
