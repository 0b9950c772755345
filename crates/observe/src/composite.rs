use std::sync::Arc;
use std::time::Duration;

use super::{GuardedObserver, MetricsObserver};

/// Fans every event out to any number of observers, in insertion order,
/// each behind its own [`GuardedObserver`].
///
/// A panicking child never stops the children after it and never reaches
/// the caller: its first panic is logged at WARN on target `hs::observe`
/// (naming the child's type and the event), later ones at DEBUG. With
/// [`quarantine_after`](CompositeObserverBuilder::quarantine_after), a child
/// that panics on `n` consecutive calls of one event is skipped from then on
/// (logged once). The isolation limits of [`GuardedObserver`] apply.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use hs_observe::{CompositeObserver, FnObserver, LoggingObserver, MetricsObserver, StatsObserver};
///
/// let stats = Arc::new(StatsObserver::new());
/// let observer = CompositeObserver::builder()
///     .with(LoggingObserver::new())
///     .with(FnObserver::new().on_request(|_, _| panic!("buggy user code")))
///     .with_arc(stats.clone())
///     .quarantine_after(10)
///     .build();
/// # std::panic::set_hook(Box::new(|_| {}));
/// observer.on_request("read", Duration::from_millis(3)); // the panic is caught
/// assert_eq!(stats.snapshot().requests, 1);              // and stats still counted
/// ```
#[derive(Clone, Default)]
pub struct CompositeObserver {
    children: Box<[GuardedObserver]>,
}

impl CompositeObserver {
    /// Starts a builder with no children and no quarantine.
    pub fn builder() -> CompositeObserverBuilder {
        CompositeObserverBuilder::default()
    }

    /// The guarded children, in dispatch order.
    pub fn children(&self) -> &[GuardedObserver] {
        &self.children
    }

    /// Number of children.
    pub fn len(&self) -> usize {
        self.children.len()
    }

    /// Whether there are no children (every event is then a no-op).
    pub fn is_empty(&self) -> bool {
        self.children.is_empty()
    }
}

/// Builds a [`CompositeObserver`]; see [`CompositeObserver::builder`].
#[derive(Default)]
pub struct CompositeObserverBuilder {
    children: Vec<Arc<dyn MetricsObserver>>,
    quarantine_after: u32,
}

impl CompositeObserverBuilder {
    /// Adds an observer of any type, after those already added.
    #[must_use]
    pub fn with(self, observer: impl MetricsObserver + 'static) -> Self {
        self.with_arc(Arc::new(observer))
    }

    /// Adds an observer that is shared elsewhere (e.g. a [`StatsObserver`]
    /// you keep a handle to in order to read its snapshot).
    ///
    /// [`StatsObserver`]: super::StatsObserver
    #[must_use]
    pub fn with_arc(mut self, observer: Arc<dyn MetricsObserver>) -> Self {
        self.children.push(observer);
        self
    }

    /// Skips a child from the point it has panicked on `consecutive_panics`
    /// calls of one event in a row (`0`, the default, never skips). Applies to every
    /// child, whenever it was added.
    #[must_use]
    pub fn quarantine_after(mut self, consecutive_panics: u32) -> Self {
        self.quarantine_after = consecutive_panics;
        self
    }

    /// Guards each child separately and builds the composite.
    pub fn build(self) -> CompositeObserver {
        let quarantine_after = self.quarantine_after;
        CompositeObserver {
            children: self
                .children
                .into_iter()
                .map(|child| GuardedObserver::with_quarantine(child, quarantine_after))
                .collect(),
        }
    }
}

impl MetricsObserver for CompositeObserver {
    #[inline]
    fn on_ws_connect(&self, remote_addr: &str) {
        for child in self.children.iter() {
            child.on_ws_connect(remote_addr);
        }
    }
    #[inline]
    fn on_ws_disconnect(&self, remote_addr: &str) {
        for child in self.children.iter() {
            child.on_ws_disconnect(remote_addr);
        }
    }
    #[inline]
    fn on_ws_message_sent(&self, op: &str, byte_count: usize) {
        for child in self.children.iter() {
            child.on_ws_message_sent(op, byte_count);
        }
    }
    #[inline]
    fn on_ws_message_recv(&self, op: &str, byte_count: usize) {
        for child in self.children.iter() {
            child.on_ws_message_recv(op, byte_count);
        }
    }
    #[inline]
    fn on_request(&self, op: &str, duration: Duration) {
        for child in self.children.iter() {
            child.on_request(op, duration);
        }
    }
    #[inline]
    fn on_error(&self, op: &str, error_type: &str) {
        for child in self.children.iter() {
            child.on_error(op, error_type);
        }
    }
}

impl std::fmt::Debug for CompositeObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompositeObserver")
            .field("children", &self.children)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for CompositeObserverBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.children.iter().map(|c| c.observer_name()).collect();
        f.debug_struct("CompositeObserverBuilder")
            .field("children", &names)
            .field("quarantine_after", &self.quarantine_after)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FnObserver, RecordedEvent, RecordingObserver};

    fn fire_all(observer: &dyn MetricsObserver) {
        observer.on_ws_connect("127.0.0.1:1");
        observer.on_ws_message_recv("read", 20);
        observer.on_ws_message_sent("read", 10);
        observer.on_request("read", Duration::from_millis(1));
        observer.on_error("hisRead", "timeout");
        observer.on_ws_disconnect("127.0.0.1:1");
    }

    /// A child that appends its tag to a shared log on every event.
    fn tagger(tag: &'static str, log: &Arc<std::sync::Mutex<Vec<String>>>) -> FnObserver {
        let l = |log: &Arc<std::sync::Mutex<Vec<String>>>| log.clone();
        let (a, b, c, d, e, f) = (l(log), l(log), l(log), l(log), l(log), l(log));
        FnObserver::new()
            .on_ws_connect(move |_| a.lock().unwrap().push(format!("{tag} connect")))
            .on_ws_disconnect(move |_| b.lock().unwrap().push(format!("{tag} disconnect")))
            .on_ws_message_sent(move |_, _| c.lock().unwrap().push(format!("{tag} sent")))
            .on_ws_message_recv(move |_, _| d.lock().unwrap().push(format!("{tag} recv")))
            .on_request(move |_, _| e.lock().unwrap().push(format!("{tag} request")))
            .on_error(move |_, _| f.lock().unwrap().push(format!("{tag} error")))
    }

    #[test]
    fn each_event_reaches_every_child_in_order() {
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let observer = CompositeObserver::builder()
            .with(tagger("a", &log))
            .with(tagger("b", &log))
            .with(tagger("c", &log))
            .build();
        assert_eq!(observer.len(), 3);
        fire_all(&observer);
        let expected: Vec<String> = ["connect", "recv", "sent", "request", "error", "disconnect"]
            .iter()
            .flat_map(|event| ["a", "b", "c"].map(|tag| format!("{tag} {event}")))
            .collect();
        assert_eq!(*log.lock().unwrap(), expected);
    }

    #[test]
    fn children_receive_the_arguments_unchanged() {
        let first = Arc::new(RecordingObserver::new());
        let second = Arc::new(RecordingObserver::new());
        let observer = CompositeObserver::builder()
            .with_arc(first.clone())
            .with_arc(second.clone())
            .build();
        fire_all(&observer);
        let expected = vec![
            RecordedEvent::WsConnect {
                remote_addr: "127.0.0.1:1".into(),
            },
            RecordedEvent::WsMessageRecv {
                op: "read".into(),
                byte_count: 20,
            },
            RecordedEvent::WsMessageSent {
                op: "read".into(),
                byte_count: 10,
            },
            RecordedEvent::Request {
                op: "read".into(),
                duration: Duration::from_millis(1),
            },
            RecordedEvent::Error {
                op: "hisRead".into(),
                error_type: "timeout".into(),
            },
            RecordedEvent::WsDisconnect {
                remote_addr: "127.0.0.1:1".into(),
            },
        ];
        assert_eq!(first.events(), expected);
        assert_eq!(second.events(), expected);
    }

    #[test]
    fn a_panicking_child_neither_stops_later_children_nor_propagates() {
        let before = Arc::new(RecordingObserver::new());
        let after = Arc::new(RecordingObserver::new());
        let observer = CompositeObserver::builder()
            .with_arc(before.clone())
            .with(
                FnObserver::new()
                    .on_ws_connect(|_| panic!("connect boom"))
                    .on_ws_disconnect(|_| panic!("disconnect boom"))
                    .on_ws_message_sent(|_, _| panic!("sent boom"))
                    .on_ws_message_recv(|_, _| panic!("recv boom"))
                    .on_request(|_, _| panic!("request boom"))
                    .on_error(|_, _| panic!("error boom")),
            )
            .with_arc(after.clone())
            .build();
        // Any escaping panic would fail this test.
        for _ in 0..3 {
            fire_all(&observer);
        }
        assert_eq!(before.len(), 18);
        assert_eq!(after.len(), 18);
        assert_eq!(after.events(), before.events());
        // No quarantine was asked for.
        assert!(observer.children().iter().all(|c| !c.is_quarantined()));
    }

    #[test]
    fn quarantine_skips_a_child_after_n_consecutive_panics() {
        let calls = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let counter = calls.clone();
        let after = Arc::new(RecordingObserver::new());
        let observer = CompositeObserver::builder()
            .quarantine_after(3)
            .with(FnObserver::new().on_request(move |_, _| {
                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                panic!("always");
            }))
            .with_arc(after.clone())
            .build();
        for _ in 0..10 {
            observer.on_request("read", Duration::from_millis(1));
        }
        assert!(observer.children()[0].is_quarantined());
        assert!(!observer.children()[1].is_quarantined());
        assert_eq!(calls.load(std::sync::atomic::Ordering::Relaxed), 3);
        assert_eq!(after.requests().len(), 10);
    }

    #[test]
    fn a_completed_call_of_the_same_event_resets_the_count() {
        let observer = CompositeObserver::builder()
            .quarantine_after(2)
            .with(FnObserver::new().on_error(|_, kind| assert_ne!(kind, "timeout")))
            .build();
        for _ in 0..5 {
            observer.on_error("read", "timeout"); // panics
            observer.on_error("read", "auth"); // completes: resets
        }
        assert!(!observer.children()[0].is_quarantined());
        observer.on_error("read", "timeout");
        observer.on_error("read", "timeout");
        assert!(observer.children()[0].is_quarantined());
    }

    #[test]
    fn other_events_in_between_do_not_reset_the_count() {
        let observer = CompositeObserver::builder()
            .quarantine_after(3)
            .with(FnObserver::new().on_request(|_, _| panic!("every request")))
            .build();
        for i in 0..3 {
            assert!(!observer.children()[0].is_quarantined(), "after {i}");
            observer.on_ws_message_recv("read", 10); // completes (not overridden)
            observer.on_request("read", Duration::ZERO); // panics
        }
        assert!(observer.children()[0].is_quarantined());
    }

    #[test]
    fn empty_composite_is_a_noop() {
        let observer = CompositeObserver::builder().build();
        assert!(observer.is_empty());
        fire_all(&observer);
        assert_eq!(
            format!("{observer:?}"),
            "CompositeObserver { children: [], .. }"
        );
    }
}
