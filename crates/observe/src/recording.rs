use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::{Event, MetricsObserver};

/// One event as a [`RecordingObserver`] saw it, with its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordedEvent {
    /// [`MetricsObserver::on_ws_connect`]
    WsConnect {
        /// Peer `ip:port` (server) or URL (client).
        remote_addr: String,
    },
    /// [`MetricsObserver::on_ws_disconnect`]
    WsDisconnect {
        /// The same string as the matching connect.
        remote_addr: String,
    },
    /// [`MetricsObserver::on_ws_message_sent`]
    WsMessageSent {
        /// Op name, `batch`, `push` or `auth`.
        op: String,
        /// The frame's payload length.
        byte_count: usize,
    },
    /// [`MetricsObserver::on_ws_message_recv`]
    WsMessageRecv {
        /// Op name, `batch`, `push`, `auth` or `invalid`.
        op: String,
        /// The frame's payload length.
        byte_count: usize,
    },
    /// [`MetricsObserver::on_request`]
    Request {
        /// Op name.
        op: String,
        /// Time taken.
        duration: Duration,
    },
    /// [`MetricsObserver::on_error`]
    Error {
        /// Op name, or `invalid`.
        op: String,
        /// An [`ErrorKind`](super::ErrorKind) name.
        error_type: String,
    },
}

impl RecordedEvent {
    /// Which of the six events this is.
    pub fn event(&self) -> Event {
        match self {
            RecordedEvent::WsConnect { .. } => Event::WsConnect,
            RecordedEvent::WsDisconnect { .. } => Event::WsDisconnect,
            RecordedEvent::WsMessageSent { .. } => Event::WsMessageSent,
            RecordedEvent::WsMessageRecv { .. } => Event::WsMessageRecv,
            RecordedEvent::Request { .. } => Event::Request,
            RecordedEvent::Error { .. } => Event::Error,
        }
    }

    /// The op argument, for the events that carry one.
    pub fn op(&self) -> Option<&str> {
        match self {
            RecordedEvent::WsMessageSent { op, .. }
            | RecordedEvent::WsMessageRecv { op, .. }
            | RecordedEvent::Request { op, .. }
            | RecordedEvent::Error { op, .. } => Some(op),
            RecordedEvent::WsConnect { .. } | RecordedEvent::WsDisconnect { .. } => None,
        }
    }
}

/// Records every event in order, for tests (feature `test-util`).
///
/// Share it as an `Arc<RecordingObserver>` with the transport under test,
/// then assert on [`events`](Self::events) or the helpers. Transports fire
/// events from their own tasks, so wait for them with
/// [`wait_for`](Self::wait_for) (bounded, no async runtime needed).
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use hs_observe::{MetricsObserver, RecordedEvent, RecordingObserver};
///
/// let recorder = Arc::new(RecordingObserver::new());
/// let observer: Arc<dyn MetricsObserver> = recorder.clone();
/// std::thread::spawn(move || observer.on_error("read", "timeout"));
/// assert!(recorder.wait_for_count(1, Duration::from_secs(5)));
/// assert_eq!(recorder.errors(), [("read".to_string(), "timeout".to_string())]);
/// assert_eq!(recorder.count(|e| matches!(e, RecordedEvent::Error { .. })), 1);
/// ```
#[derive(Debug, Default)]
pub struct RecordingObserver {
    events: Mutex<Vec<RecordedEvent>>,
    changed: Condvar,
}

impl RecordingObserver {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    // A panic elsewhere while holding the lock cannot leave the Vec
    // half-written (push is the only mutation), so poisoning is ignored.
    fn lock(&self) -> MutexGuard<'_, Vec<RecordedEvent>> {
        self.events.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn record(&self, event: RecordedEvent) {
        self.lock().push(event);
        self.changed.notify_all();
    }

    /// A copy of every event recorded so far, in order.
    pub fn events(&self) -> Vec<RecordedEvent> {
        self.lock().clone()
    }

    /// Number of events recorded so far.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing has been recorded.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Forgets every event recorded so far.
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// Number of recorded events matching `predicate`.
    pub fn count(&self, predicate: impl Fn(&RecordedEvent) -> bool) -> usize {
        self.lock().iter().filter(|e| predicate(e)).count()
    }

    /// Number of recorded events of kind `event`.
    pub fn count_event(&self, event: Event) -> usize {
        self.count(|e| e.event() == event)
    }

    /// `(op, duration)` of every `on_request`, in order.
    pub fn requests(&self) -> Vec<(String, Duration)> {
        self.lock()
            .iter()
            .filter_map(|e| match e {
                RecordedEvent::Request { op, duration } => Some((op.clone(), *duration)),
                _ => None,
            })
            .collect()
    }

    /// `(op, error_type)` of every `on_error`, in order.
    pub fn errors(&self) -> Vec<(String, String)> {
        self.lock()
            .iter()
            .filter_map(|e| match e {
                RecordedEvent::Error { op, error_type } => Some((op.clone(), error_type.clone())),
                _ => None,
            })
            .collect()
    }

    /// `(op, byte_count)` of every `on_ws_message_sent`, in order.
    pub fn messages_sent(&self) -> Vec<(String, usize)> {
        self.lock()
            .iter()
            .filter_map(|e| match e {
                RecordedEvent::WsMessageSent { op, byte_count } => Some((op.clone(), *byte_count)),
                _ => None,
            })
            .collect()
    }

    /// `(op, byte_count)` of every `on_ws_message_recv`, in order.
    pub fn messages_recv(&self) -> Vec<(String, usize)> {
        self.lock()
            .iter()
            .filter_map(|e| match e {
                RecordedEvent::WsMessageRecv { op, byte_count } => Some((op.clone(), *byte_count)),
                _ => None,
            })
            .collect()
    }

    /// Blocks until `predicate` holds for the recorded events, or `timeout`
    /// has passed. Returns whether it held.
    pub fn wait_for(
        &self,
        predicate: impl Fn(&[RecordedEvent]) -> bool,
        timeout: Duration,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        let mut events = self.lock();
        loop {
            if predicate(&events) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            events = self
                .changed
                .wait_timeout(events, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Blocks until at least `n` events are recorded, or `timeout` has
    /// passed. Returns whether they were.
    pub fn wait_for_count(&self, n: usize, timeout: Duration) -> bool {
        self.wait_for(|events| events.len() >= n, timeout)
    }
}

impl MetricsObserver for RecordingObserver {
    fn on_ws_connect(&self, remote_addr: &str) {
        self.record(RecordedEvent::WsConnect {
            remote_addr: remote_addr.to_owned(),
        });
    }
    fn on_ws_disconnect(&self, remote_addr: &str) {
        self.record(RecordedEvent::WsDisconnect {
            remote_addr: remote_addr.to_owned(),
        });
    }
    fn on_ws_message_sent(&self, op: &str, byte_count: usize) {
        self.record(RecordedEvent::WsMessageSent {
            op: op.to_owned(),
            byte_count,
        });
    }
    fn on_ws_message_recv(&self, op: &str, byte_count: usize) {
        self.record(RecordedEvent::WsMessageRecv {
            op: op.to_owned(),
            byte_count,
        });
    }
    fn on_request(&self, op: &str, duration: Duration) {
        self.record(RecordedEvent::Request {
            op: op.to_owned(),
            duration,
        });
    }
    fn on_error(&self, op: &str, error_type: &str) {
        self.record(RecordedEvent::Error {
            op: op.to_owned(),
            error_type: error_type.to_owned(),
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn records_in_order_with_helpers() {
        let r = RecordingObserver::new();
        assert!(r.is_empty());
        r.on_ws_connect("ws://h/api");
        r.on_ws_message_sent("read", 40);
        r.on_ws_message_recv("read", 400);
        r.on_request("read", Duration::from_micros(7));
        r.on_error("nav", "not_found");
        r.on_ws_disconnect("ws://h/api");
        assert_eq!(r.len(), 6);
        assert_eq!(
            r.events()[0],
            RecordedEvent::WsConnect {
                remote_addr: "ws://h/api".into()
            }
        );
        assert_eq!(r.events()[5].event(), Event::WsDisconnect);
        assert_eq!(r.events()[4].op(), Some("nav"));
        assert_eq!(
            r.requests(),
            [("read".to_owned(), Duration::from_micros(7))]
        );
        assert_eq!(r.errors(), [("nav".to_owned(), "not_found".to_owned())]);
        assert_eq!(r.messages_sent(), [("read".to_owned(), 40)]);
        assert_eq!(r.messages_recv(), [("read".to_owned(), 400)]);
        assert_eq!(r.count(|e| e.op() == Some("read")), 3);
        assert_eq!(r.count_event(Event::Request), 1);
        r.clear();
        assert!(r.events().is_empty());
    }

    #[test]
    fn wait_for_sees_events_from_other_threads_and_times_out() {
        let r = Arc::new(RecordingObserver::new());
        let writer = r.clone();
        let handle = std::thread::spawn(move || {
            for i in 0..100 {
                writer.on_ws_message_recv("read", i);
            }
        });
        assert!(r.wait_for_count(100, Duration::from_secs(10)));
        handle.join().unwrap();
        let start = Instant::now();
        assert!(!r.wait_for(|e| e.len() > 100, Duration::from_millis(50)));
        assert!(start.elapsed() >= Duration::from_millis(50));
    }
}
