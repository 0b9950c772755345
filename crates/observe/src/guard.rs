use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use super::{Event, MetricsObserver};
use crate::targets;

/// An observer behind the isolation guard: the one dispatch path every hs
/// transport uses, so even a single observer handed to a transport is
/// isolated.
///
/// Each event runs inside `catch_unwind`. A panic never reaches the caller:
/// the first panic of the observer is logged at WARN on target
/// `hs::observe` (naming the observer's type and the event), later ones at
/// DEBUG. With [`with_quarantine`](Self::with_quarantine), an observer that
/// panics on `n` consecutive calls of the same event is skipped from then on
/// (logged once, at WARN). Counting per event means an observer that panics
/// on every `on_request` is quarantined even though the events it does not
/// override (and so never panic on) come in between.
///
/// Limits: nothing is caught in a build with `panic = "abort"`, and the
/// process-wide panic hook (which prints the panic message to stderr by
/// default) still runs before the guard sees the panic.
///
/// The no-panic path costs one virtual call plus one relaxed atomic load.
///
/// # For transport authors
///
/// Take the user's observer as `Arc<dyn MetricsObserver>` (default
/// [`noop()`](super::noop)), wrap it in a `GuardedObserver` once, when the
/// transport is built, and call only the guard from then on. Clones share
/// the guard's state (first-panic flag, quarantine), so hand clones to
/// per-connection tasks rather than guarding again.
///
/// ```
/// use std::sync::Arc;
/// use std::time::{Duration, Instant};
/// use hs_observe::{GuardedObserver, MetricsObserver, noop};
///
/// struct ClientBuilder { observer: Arc<dyn MetricsObserver> }
/// struct Client { observer: GuardedObserver }
///
/// impl ClientBuilder {
///     fn new() -> Self { ClientBuilder { observer: noop() } }
///     fn observer(mut self, observer: Arc<dyn MetricsObserver>) -> Self {
///         self.observer = observer;
///         self
///     }
///     fn build(self) -> Client {
///         Client { observer: GuardedObserver::new(self.observer) }
///     }
/// }
///
/// impl Client {
///     fn read(&self) {
///         let started = Instant::now();
///         // ... send, await and decode the response ...
///         self.observer.on_request("read", started.elapsed());
///     }
/// }
///
/// ClientBuilder::new().build().read();
/// ```
#[derive(Clone)]
pub struct GuardedObserver {
    inner: Arc<dyn MetricsObserver>,
    state: Arc<GuardState>,
}

struct GuardState {
    /// Consecutive panics per event (indexed by `Event::index`); reset when
    /// that event completes.
    consecutive_panics: [AtomicU32; 6],
    /// Set once the first panic has been logged at WARN.
    panicked_before: AtomicBool,
    /// Skip the observer entirely (quarantine engaged).
    quarantined: AtomicBool,
    /// Consecutive panics after which the observer is quarantined; 0 = never.
    quarantine_after: u32,
}

impl GuardedObserver {
    /// Guards `observer`, never quarantining it.
    pub fn new(observer: Arc<dyn MetricsObserver>) -> Self {
        Self::build(observer, 0)
    }

    /// Guards `observer`, skipping it once it has panicked on
    /// `consecutive_panics` consecutive calls of one event (`0` disables
    /// quarantine).
    pub fn with_quarantine(observer: Arc<dyn MetricsObserver>, consecutive_panics: u32) -> Self {
        Self::build(observer, consecutive_panics)
    }

    fn build(inner: Arc<dyn MetricsObserver>, quarantine_after: u32) -> Self {
        GuardedObserver {
            inner,
            state: Arc::new(GuardState {
                consecutive_panics: std::array::from_fn(|_| AtomicU32::new(0)),
                panicked_before: AtomicBool::new(false),
                quarantined: AtomicBool::new(false),
                quarantine_after,
            }),
        }
    }

    /// The guarded observer.
    pub fn inner(&self) -> &Arc<dyn MetricsObserver> {
        &self.inner
    }

    /// Whether quarantine has engaged and the observer is being skipped.
    pub fn is_quarantined(&self) -> bool {
        self.state.quarantined.load(Ordering::Relaxed)
    }

    #[inline]
    fn dispatch(&self, event: Event, call: impl FnOnce(&dyn MetricsObserver)) {
        if self.state.quarantined.load(Ordering::Relaxed) {
            return;
        }
        match catch_unwind(AssertUnwindSafe(|| call(&*self.inner))) {
            Ok(()) => {
                // Only write when there is something to reset: keeps the
                // cache line shared on the hot path.
                let consecutive = &self.state.consecutive_panics[event.index()];
                if consecutive.load(Ordering::Relaxed) != 0 {
                    consecutive.store(0, Ordering::Relaxed);
                }
            }
            Err(payload) => self.record_panic(event, payload.as_ref()),
        }
    }

    #[cold]
    fn record_panic(&self, event: Event, payload: &(dyn std::any::Any + Send)) {
        let name = self.inner.observer_name();
        let message = panic_message(payload);
        if self.state.panicked_before.swap(true, Ordering::Relaxed) {
            log::debug!(target: targets::OBSERVE, "observer {name} panicked in {event}: {message}");
        } else {
            log::warn!(
                target: targets::OBSERVE,
                "observer {name} panicked in {event}: {message} (caught; later panics are logged at DEBUG)"
            );
        }
        let consecutive =
            self.state.consecutive_panics[event.index()].fetch_add(1, Ordering::Relaxed) + 1;
        let limit = self.state.quarantine_after;
        if limit != 0
            && consecutive >= limit
            && !self.state.quarantined.swap(true, Ordering::Relaxed)
        {
            log::warn!(
                target: targets::OBSERVE,
                "observer {name} quarantined after {consecutive} consecutive panics in {event}; it receives no further events"
            );
        }
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "non-string panic payload"
    }
}

impl std::fmt::Debug for GuardedObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardedObserver")
            .field("observer", &self.inner.observer_name())
            .field("quarantined", &self.is_quarantined())
            .finish_non_exhaustive()
    }
}

impl Default for GuardedObserver {
    fn default() -> Self {
        Self::new(super::noop())
    }
}

impl From<Arc<dyn MetricsObserver>> for GuardedObserver {
    fn from(observer: Arc<dyn MetricsObserver>) -> Self {
        Self::new(observer)
    }
}

impl MetricsObserver for GuardedObserver {
    #[inline]
    fn on_ws_connect(&self, remote_addr: &str) {
        self.dispatch(Event::WsConnect, |o| o.on_ws_connect(remote_addr))
    }
    #[inline]
    fn on_ws_disconnect(&self, remote_addr: &str) {
        self.dispatch(Event::WsDisconnect, |o| o.on_ws_disconnect(remote_addr))
    }
    #[inline]
    fn on_ws_message_sent(&self, op: &str, byte_count: usize) {
        self.dispatch(Event::WsMessageSent, |o| {
            o.on_ws_message_sent(op, byte_count)
        })
    }
    #[inline]
    fn on_ws_message_recv(&self, op: &str, byte_count: usize) {
        self.dispatch(Event::WsMessageRecv, |o| {
            o.on_ws_message_recv(op, byte_count)
        })
    }
    #[inline]
    fn on_request(&self, op: &str, duration: Duration) {
        self.dispatch(Event::Request, |o| o.on_request(op, duration))
    }
    #[inline]
    fn on_error(&self, op: &str, error_type: &str) {
        self.dispatch(Event::Error, |o| o.on_error(op, error_type))
    }
    fn observer_name(&self) -> &'static str {
        self.inner.observer_name()
    }
}
