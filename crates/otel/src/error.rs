use opentelemetry_otlp::ExporterBuildError;
use opentelemetry_sdk::error::OTelSdkError;

/// Why OTLP export could not be set up, flushed or shut down.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OtlpError {
    /// The exporter could not be built from the settings and environment.
    #[error("OTLP exporter: {0}")]
    Build(#[source] ExporterBuildError),
    /// The OTLP/HTTP client (reqwest on rustls) could not be built.
    #[error("OTLP HTTP client: {0}")]
    HttpClient(String),
    /// The gRPC exporter was built outside a Tokio runtime.
    #[cfg(feature = "grpc")]
    #[cfg_attr(docsrs, doc(cfg(feature = "grpc")))]
    #[error("OTLP exporter: gRPC export must be set up inside a Tokio runtime")]
    NoRuntime,
    /// A forced export failed.
    #[error("OTLP flush: {0}")]
    Flush(#[source] OTelSdkError),
    /// The final export failed, or the provider was already shut down.
    #[error("OTLP shutdown: {0}")]
    Shutdown(#[source] OTelSdkError),
}

impl OtlpError {
    /// A stable name for the kind of failure: `build`, `http_client`,
    /// `no_runtime`, `flush` or `shutdown`.
    pub const fn as_str(&self) -> &'static str {
        match self {
            OtlpError::Build(_) => "build",
            OtlpError::HttpClient(_) => "http_client",
            #[cfg(feature = "grpc")]
            OtlpError::NoRuntime => "no_runtime",
            OtlpError::Flush(_) => "flush",
            OtlpError::Shutdown(_) => "shutdown",
        }
    }
}
