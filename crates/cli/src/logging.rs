//! env_logger set-up: plain stderr lines for the commands, a readable
//! prefixed transcript on stdout for `hs demo`.

use std::io::Write;

/// Where log lines go and how they look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LogStyle {
    /// env_logger's usual stderr format with a timestamp.
    Stderr,
    /// `  log │ INFO  hs::ws::server   message` on stdout, interleaved with
    /// the demo's own narration.
    DemoTranscript,
}

/// Crates that log whole WebSocket frames at TRACE (tungstenite's
/// `Received message {..}`, `Sending frame: {..}`), authentication messages
/// with their tokens and SCRAM proofs included. Their TRACE records never
/// reach the log, whatever the filter says; their DEBUG and above do.
const FRAME_LOGGERS: [&str; 2] = ["tungstenite", "tokio_tungstenite"];

/// Installs the logger. `explicit` (`--log`) wins over `RUST_LOG`, which
/// wins over `default`. TRACE records of [`FRAME_LOGGERS`] are dropped
/// (no secret reaches a log line, even with `RUST_LOG=trace`).
pub(crate) fn init(explicit: Option<&str>, default: &str, style: LogStyle) {
    let filter = explicit
        .map(str::to_owned)
        .or_else(|| std::env::var("RUST_LOG").ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| default.to_owned());
    let mut builder = env_logger::Builder::new();
    builder.parse_filters(&filter);
    match style {
        LogStyle::Stderr => {
            builder.target(env_logger::Target::Stderr);
        }
        LogStyle::DemoTranscript => {
            builder
                .target(env_logger::Target::Stdout)
                .format(|buf, record| {
                    writeln!(
                        buf,
                        "  log │ {:<5} {:<16} {}",
                        record.level(),
                        record.target(),
                        record.args()
                    )
                });
        }
    }
    let logger = builder.build();
    let max_level = logger.filter();
    // A second init (tests calling in) keeps the first logger.
    if log::set_boxed_logger(Box::new(NoFrameTrace(logger))).is_ok() {
        log::set_max_level(max_level);
    }
}

/// env_logger without the TRACE records of [`FRAME_LOGGERS`].
struct NoFrameTrace(env_logger::Logger);

impl NoFrameTrace {
    fn frames_traced(metadata: &log::Metadata<'_>) -> bool {
        metadata.level() == log::Level::Trace
            && FRAME_LOGGERS.iter().any(|name| {
                metadata
                    .target()
                    .strip_prefix(name)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
            })
    }
}

impl log::Log for NoFrameTrace {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        !Self::frames_traced(metadata) && self.0.enabled(metadata)
    }

    fn log(&self, record: &log::Record<'_>) {
        if !Self::frames_traced(record.metadata()) {
            self.0.log(record);
        }
    }

    fn flush(&self) {
        self.0.flush();
    }
}
