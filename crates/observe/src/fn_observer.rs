use std::time::Duration;

use super::MetricsObserver;

type AddrFn = Box<dyn Fn(&str) + Send + Sync>;
type BytesFn = Box<dyn Fn(&str, usize) + Send + Sync>;
type DurationFn = Box<dyn Fn(&str, Duration) + Send + Sync>;
type ErrorFn = Box<dyn Fn(&str, &str) + Send + Sync>;

/// An observer built from closures, one per event; the Rust face of
/// haystack-py's `MetricsHooks`.
///
/// The setters are named like the trait methods. An event whose closure is
/// not set does nothing (one branch on an `Option`, no call).
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::time::Duration;
/// use hs_observe::{FnObserver, MetricsObserver};
///
/// let slow = Arc::new(AtomicU64::new(0));
/// let counter = slow.clone();
/// let observer: Arc<dyn MetricsObserver> = Arc::new(
///     FnObserver::new()
///         .on_request(move |_op, duration| {
///             if duration > Duration::from_millis(100) {
///                 counter.fetch_add(1, Ordering::Relaxed);
///             }
///         })
///         .on_error(|op, error_type| eprintln!("{op} failed: {error_type}")),
/// );
/// observer.on_request("read", Duration::from_millis(250));
/// observer.on_ws_connect("127.0.0.1:5000"); // not set: nothing happens
/// assert_eq!(slow.load(Ordering::Relaxed), 1);
/// ```
///
/// Because the setters share the trait methods' names, call the events of
/// an `FnObserver` value through the trait (`MetricsObserver::on_request(&obs,
/// ..)`) or, as transports do, through an `Arc<dyn MetricsObserver>`.
#[derive(Default)]
pub struct FnObserver {
    ws_connect: Option<AddrFn>,
    ws_disconnect: Option<AddrFn>,
    ws_message_sent: Option<BytesFn>,
    ws_message_recv: Option<BytesFn>,
    request: Option<DurationFn>,
    error: Option<ErrorFn>,
}

impl FnObserver {
    /// An observer with no closures: every event does nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `f(remote_addr)` on [`MetricsObserver::on_ws_connect`].
    #[must_use]
    pub fn on_ws_connect(mut self, f: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.ws_connect = Some(Box::new(f));
        self
    }

    /// Runs `f(remote_addr)` on [`MetricsObserver::on_ws_disconnect`].
    #[must_use]
    pub fn on_ws_disconnect(mut self, f: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.ws_disconnect = Some(Box::new(f));
        self
    }

    /// Runs `f(op, byte_count)` on [`MetricsObserver::on_ws_message_sent`].
    #[must_use]
    pub fn on_ws_message_sent(mut self, f: impl Fn(&str, usize) + Send + Sync + 'static) -> Self {
        self.ws_message_sent = Some(Box::new(f));
        self
    }

    /// Runs `f(op, byte_count)` on [`MetricsObserver::on_ws_message_recv`].
    #[must_use]
    pub fn on_ws_message_recv(mut self, f: impl Fn(&str, usize) + Send + Sync + 'static) -> Self {
        self.ws_message_recv = Some(Box::new(f));
        self
    }

    /// Runs `f(op, duration)` on [`MetricsObserver::on_request`].
    #[must_use]
    pub fn on_request(mut self, f: impl Fn(&str, Duration) + Send + Sync + 'static) -> Self {
        self.request = Some(Box::new(f));
        self
    }

    /// Runs `f(op, error_type)` on [`MetricsObserver::on_error`].
    #[must_use]
    pub fn on_error(mut self, f: impl Fn(&str, &str) + Send + Sync + 'static) -> Self {
        self.error = Some(Box::new(f));
        self
    }
}

impl MetricsObserver for FnObserver {
    #[inline]
    fn on_ws_connect(&self, remote_addr: &str) {
        if let Some(f) = &self.ws_connect {
            f(remote_addr)
        }
    }
    #[inline]
    fn on_ws_disconnect(&self, remote_addr: &str) {
        if let Some(f) = &self.ws_disconnect {
            f(remote_addr)
        }
    }
    #[inline]
    fn on_ws_message_sent(&self, op: &str, byte_count: usize) {
        if let Some(f) = &self.ws_message_sent {
            f(op, byte_count)
        }
    }
    #[inline]
    fn on_ws_message_recv(&self, op: &str, byte_count: usize) {
        if let Some(f) = &self.ws_message_recv {
            f(op, byte_count)
        }
    }
    #[inline]
    fn on_request(&self, op: &str, duration: Duration) {
        if let Some(f) = &self.request {
            f(op, duration)
        }
    }
    #[inline]
    fn on_error(&self, op: &str, error_type: &str) {
        if let Some(f) = &self.error {
            f(op, error_type)
        }
    }
}

impl std::fmt::Debug for FnObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FnObserver")
            .field("on_ws_connect", &self.ws_connect.is_some())
            .field("on_ws_disconnect", &self.ws_disconnect.is_some())
            .field("on_ws_message_sent", &self.ws_message_sent.is_some())
            .field("on_ws_message_recv", &self.ws_message_recv.is_some())
            .field("on_request", &self.request.is_some())
            .field("on_error", &self.error.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    fn fire_all(observer: &dyn MetricsObserver) {
        observer.on_ws_connect("127.0.0.1:1");
        observer.on_ws_disconnect("127.0.0.1:1");
        observer.on_ws_message_sent("read", 10);
        observer.on_ws_message_recv("read", 20);
        observer.on_request("read", Duration::from_millis(1));
        observer.on_error("read", "timeout");
    }

    #[test]
    fn unset_closures_do_nothing() {
        let observer = FnObserver::new();
        assert_eq!(
            format!("{observer:?}"),
            "FnObserver { on_ws_connect: false, on_ws_disconnect: false, on_ws_message_sent: false, \
             on_ws_message_recv: false, on_request: false, on_error: false }"
        );
        fire_all(&observer);

        // Only the one closure that is set runs, once, for its own event.
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let observer = FnObserver::new()
            .on_error(move |op, kind| sink.lock().unwrap().push(format!("{op}:{kind}")));
        fire_all(&observer);
        assert_eq!(*seen.lock().unwrap(), ["read:timeout"]);
    }

    #[test]
    fn each_setter_feeds_its_own_event() {
        let seen = Arc::new(Mutex::new(Vec::<String>::new()));
        let s = |seen: &Arc<Mutex<Vec<String>>>| seen.clone();
        let (a, b, c, d, e, f) = (s(&seen), s(&seen), s(&seen), s(&seen), s(&seen), s(&seen));
        let observer = FnObserver::new()
            .on_ws_connect(move |addr| a.lock().unwrap().push(format!("connect {addr}")))
            .on_ws_disconnect(move |addr| b.lock().unwrap().push(format!("disconnect {addr}")))
            .on_ws_message_sent(move |op, n| c.lock().unwrap().push(format!("sent {op} {n}")))
            .on_ws_message_recv(move |op, n| d.lock().unwrap().push(format!("recv {op} {n}")))
            .on_request(move |op, t| e.lock().unwrap().push(format!("request {op} {t:?}")))
            .on_error(move |op, k| f.lock().unwrap().push(format!("error {op} {k}")));
        fire_all(&observer);
        assert_eq!(
            *seen.lock().unwrap(),
            [
                "connect 127.0.0.1:1",
                "disconnect 127.0.0.1:1",
                "sent read 10",
                "recv read 20",
                "request read 1ms",
                "error read timeout"
            ]
        );
    }
}
