//! [`LogCapture`]: a `log` logger that keeps every line, for tests of what
//! hs writes on its targets (feature `test-util`).

use std::sync::{Mutex, OnceLock, PoisonError};

use log::{Level, LevelFilter, Log, Metadata, Record};

/// The global `log` logger of a test binary, keeping every line at DEBUG
/// and above as `(level, target, message)`.
///
/// ```
/// let logs = hs_observe::LogCapture::install();
/// log::warn!(target: "hs::observe", "observer panicked");
/// assert!(logs.lines().iter().any(|(_, target, text)| target == "hs::observe" && text == "observer panicked"));
/// ```
#[derive(Debug)]
pub struct LogCapture(Mutex<Vec<(Level, String, String)>>);

impl LogCapture {
    /// The capture, installed as the global logger on the first call (at
    /// most DEBUG). Panics when another logger was installed first.
    pub fn install() -> &'static LogCapture {
        static CAPTURE: OnceLock<&'static LogCapture> = OnceLock::new();
        CAPTURE.get_or_init(|| {
            let capture: &'static LogCapture =
                Box::leak(Box::new(LogCapture(Mutex::new(Vec::new()))));
            if log::set_logger(capture).is_err() {
                panic!(
                    "another logger is installed: LogCapture must be the test binary's only one"
                );
            }
            log::set_max_level(LevelFilter::Debug);
            capture
        })
    }

    /// Every line so far, in order: level, target, message.
    pub fn lines(&self) -> Vec<(Level, String, String)> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Log for LogCapture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &Record<'_>) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).push((
            record.level(),
            record.target().to_owned(),
            record.args().to_string(),
        ));
    }

    fn flush(&self) {}
}
