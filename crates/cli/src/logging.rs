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

/// Installs the logger. `explicit` (`--log`) wins over `RUST_LOG`, which
/// wins over `default`.
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
    // A second init (tests calling in) keeps the first logger.
    let _ = builder.try_init();
}
