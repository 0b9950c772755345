//! What the tasks of one connection share: the send queue and its byte
//! budget, the close switch, the watches the connection subscribed and the
//! inbox of their changes.

use hs_core::observe::targets;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::extract::ws::{CloseFrame, Utf8Bytes};
use hs_core::observe::{ErrorKind, GuardedObserver};
use hs_core::ops::WatchInbox;
use parking_lot::Mutex;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::close;
use crate::outgoing::Outgoing;

/// Shared by the reader loop, the request tasks and the push forwarder of one
/// connection.
#[derive(Debug)]
pub(crate) struct ConnShared {
    /// Peer `ip:port`.
    pub(crate) peer: Arc<str>,
    /// The guarded observer.
    pub(crate) observer: GuardedObserver,
    queue: mpsc::Sender<Outgoing>,
    /// Bytes of answers queued, in the writer's hands or about to be
    /// encoded, at most `WsConfig::send_budget`.
    pub(crate) budget: Arc<SendBudget>,
    close: Mutex<Option<oneshot::Sender<Closing>>>,
    /// Cancelled when the connection is closing, for whatever reason.
    pub(crate) cancel: CancellationToken,
    /// Watch ids this connection subscribed (from its `watchSub` responses).
    watches: Mutex<WatchSet>,
    /// Where the store leaves the changes of those watches (pushes).
    pub(crate) inbox: Arc<WatchInbox>,
    /// Set when the connection is closed as a slow reader: the requests
    /// still waiting for room are then `overloaded`.
    slow: std::sync::atomic::AtomicBool,
}

/// The watches of one connection, and the places taken by `watchSub`s still
/// running, so that concurrent ones cannot pass the limit together.
#[derive(Debug, Default)]
struct WatchSet {
    ids: HashSet<String>,
    reserved: usize,
}

impl ConnShared {
    pub(crate) fn new(
        peer: Arc<str>,
        observer: GuardedObserver,
        queue: mpsc::Sender<Outgoing>,
        budget: Arc<SendBudget>,
        close: oneshot::Sender<Closing>,
        cancel: CancellationToken,
    ) -> Self {
        ConnShared {
            peer,
            observer,
            queue,
            budget,
            close: Mutex::new(Some(close)),
            cancel,
            watches: Mutex::new(WatchSet::default()),
            inbox: Arc::new(WatchInbox::new()),
            slow: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Queues a frame without waiting. A frame made on the reader task (an
    /// auth message, the answer to an unusable frame, a push) is counted in
    /// the send budget but never held back by it: when the budget is used up
    /// it goes beyond, bounded by the queue's length in frames. A
    /// full queue means the peer does not read fast enough: the frame's
    /// requests are reported `overloaded` and the connection is closed
    /// (1008). Returns whether the frame was queued.
    pub(crate) fn enqueue(&self, mut out: Outgoing) -> bool {
        if out.reserved.is_none() {
            out.reserved = Some(self.budget.reserve_now(out.payload_len()));
        }
        match self.queue.try_send(out) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(out)) => {
                self.slow_reader(out, "send queue full");
                false
            }
            Err(mpsc::error::TrySendError::Closed(out)) => {
                out.outcomes
                    .report(&self.observer, Some(ErrorKind::ConnectionClosed));
                false
            }
        }
    }

    /// Gives up on a reader too slow to drain its queue: `out` is reported
    /// `overloaded` and the connection closed with 1008, its queued frames
    /// dropped.
    fn slow_reader(&self, out: Outgoing, why: &str) {
        if !self.cancel.is_cancelled() {
            log::warn!(
                target: targets::WS_SERVER,
                "{}: {why}, closing the connection of a slow reader",
                self.peer
            );
        }
        out.outcomes
            .report(&self.observer, Some(ErrorKind::Overloaded));
        self.close_slow_reader();
    }

    /// Closes with 1008 `send queue full`, dropping what is still queued
    /// (the peer is not reading it).
    pub(crate) fn close_slow_reader(&self) {
        self.slow.store(true, Ordering::Relaxed);
        self.close_with(Closing {
            frame: close_frame(close::POLICY, close::REASON_SLOW_READER),
            flush: false,
        });
    }

    /// Reserves `bytes` of the send budget if they are free now.
    pub(crate) fn try_reserve(&self, bytes: usize) -> Option<Reservation> {
        self.budget.try_reserve(bytes)
    }

    /// How a request that never got its answer queued failed:
    /// `overloaded` when the connection was closed as a slow reader, else
    /// `connection_closed`.
    pub(crate) fn lost(&self) -> ErrorKind {
        if self.slow.load(Ordering::Relaxed) {
            ErrorKind::Overloaded
        } else {
            ErrorKind::ConnectionClosed
        }
    }

    /// Reserves `bytes` of the send budget for an answer about to be
    /// encoded, waiting for room while the peer reads. `None` when the
    /// connection closes first.
    pub(crate) async fn reserve(&self, bytes: usize) -> Option<Reservation> {
        if let Some(reservation) = self.budget.try_reserve(bytes) {
            return Some(reservation);
        }
        tokio::select! {
            biased;
            () = self.cancel.cancelled() => None,
            reservation = self.budget.reserve(bytes) => reservation,
        }
    }

    /// Queues a control frame (ping) if there is room; never closes.
    pub(crate) fn enqueue_control(&self, out: Outgoing) -> bool {
        self.queue.try_send(out).is_ok()
    }

    /// Starts closing with our close frame. Only the first call (or
    /// [`peer_closed`](Self::peer_closed)) decides the code.
    pub(crate) fn close(&self, code: u16, reason: &'static str) {
        self.close_with(Closing {
            frame: close_frame(code, reason),
            flush: true,
        });
    }

    fn close_with(&self, closing: Closing) {
        // A closed receiver: the writer is gone, there is nothing to send.
        if let Some(sender) = self.close.lock().take().filter(|s| !s.is_closed()) {
            log::debug!(
                target: targets::WS_CONN,
                "{}: closing ({} {})",
                self.peer,
                closing.frame.code,
                closing.frame.reason.as_str()
            );
            let _ = sender.send(closing);
        }
        self.cancel.cancel();
    }

    /// The peer sent its close (or vanished): stop without a close frame of
    /// ours; tungstenite answers the peer's close itself.
    pub(crate) fn peer_closed(&self) {
        drop(self.close.lock().take());
        self.cancel.cancel();
    }

    /// Takes a place for a `watchSub` naming `watch_id` (`None`: a new
    /// watch): `false` when the connection already holds `max` watches and
    /// this one is not among them. Give the place back with
    /// [`add_watch`](Self::add_watch) or [`unreserve_watch`](Self::unreserve_watch).
    pub(crate) fn reserve_watch(&self, watch_id: Option<&str>, max: usize) -> bool {
        let mut set = self.watches.lock();
        if watch_id.is_some_and(|id| set.ids.contains(id)) || set.ids.len() + set.reserved < max {
            set.reserved += 1;
            true
        } else {
            false
        }
    }

    /// Gives back a place [`reserve_watch`](Self::reserve_watch) took.
    pub(crate) fn unreserve_watch(&self) {
        let mut set = self.watches.lock();
        set.reserved = set.reserved.saturating_sub(1);
    }

    /// Remembers that this connection subscribed `watch_id`, in the place
    /// [`reserve_watch`](Self::reserve_watch) took.
    pub(crate) fn add_watch(&self, watch_id: String) {
        let mut set = self.watches.lock();
        set.reserved = set.reserved.saturating_sub(1);
        set.ids.insert(watch_id);
    }

    /// Forgets `watch_id` (the connection closed it).
    pub(crate) fn remove_watch(&self, watch_id: &str) {
        self.watches.lock().ids.remove(watch_id);
        self.inbox.forget(watch_id);
    }

    /// Whether this connection subscribed `watch_id`.
    pub(crate) fn watches(&self, watch_id: &str) -> bool {
        self.watches.lock().ids.contains(watch_id)
    }

    /// Every watch this connection subscribed, forgotten here (it ends).
    pub(crate) fn take_watches(&self) -> Vec<String> {
        std::mem::take(&mut self.watches.lock().ids)
            .into_iter()
            .collect()
    }
}

/// How the writer ends a connection we close.
#[derive(Debug)]
pub(crate) struct Closing {
    /// Our close frame.
    pub(crate) frame: CloseFrame,
    /// Whether the frames queued before the close go out first (an `authErr`
    /// before its close); a slow reader's are dropped.
    pub(crate) flush: bool,
}

fn close_frame(code: u16, reason: &'static str) -> CloseFrame {
    CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    }
}

/// One connection's send budget (`WsConfig::send_budget`): a semaphore of
/// bytes. An answer holds a [`Reservation`] of its bytes from before it is
/// encoded until it is written to the socket (or dropped), so the answers a
/// connection holds never exceed the budget. The few frames made on the
/// reader task (pushes, auth messages, answers to unusable frames) are never
/// held back: beyond the budget they are counted only in the server's
/// gauge, bounded by the queue's length in frames.
#[derive(Debug)]
pub(crate) struct SendBudget {
    free: Semaphore,
    limit: usize,
    /// The server-wide gauge, `WsServerState::queued_bytes`.
    total: Arc<AtomicUsize>,
}

impl SendBudget {
    /// A budget of `limit` bytes (at most `u32::MAX`, the most a semaphore
    /// grants at once) counted into `total` too.
    pub(crate) fn new(limit: usize, total: Arc<AtomicUsize>) -> Arc<Self> {
        let limit = limit.min(u32::MAX as usize);
        Arc::new(SendBudget {
            free: Semaphore::new(limit),
            limit,
            total,
        })
    }

    /// The budget in bytes.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// Whether nothing is left: the queue is full, or an answer is waiting
    /// for room (tokio hands released bytes to waiters first). The reader
    /// then stops reading. (Bytes beyond the budget are not looked at: they
    /// take no room from the answers, and the queue's length in frames bounds
    /// them.)
    pub(crate) fn is_full(&self) -> bool {
        self.free.available_permits() == 0
    }

    /// Resolves once every answer waiting for room has it and a byte is
    /// free.
    pub(crate) async fn room(&self) {
        // Queued behind the waiting answers (the semaphore is fair).
        drop(self.free.acquire().await);
    }

    fn try_reserve(self: &Arc<Self>, bytes: usize) -> Option<Reservation> {
        let permits = u32::try_from(bytes).ok().filter(|_| bytes <= self.limit)?;
        self.free.try_acquire_many(permits).ok()?.forget();
        Some(self.granted(bytes))
    }

    /// Reserves `bytes` now: from the budget when they are free, else
    /// beyond it.
    fn reserve_now(self: &Arc<Self>, bytes: usize) -> Reservation {
        if let Some(reservation) = self.try_reserve(bytes) {
            return reservation;
        }
        self.total.fetch_add(bytes, Ordering::Relaxed);
        Reservation {
            budget: self.clone(),
            bytes: 0,
            over: bytes,
        }
    }

    async fn reserve(self: &Arc<Self>, bytes: usize) -> Option<Reservation> {
        let permits = u32::try_from(bytes).ok().filter(|_| bytes <= self.limit)?;
        self.free.acquire_many(permits).await.ok()?.forget();
        Some(self.granted(bytes))
    }

    fn granted(self: &Arc<Self>, bytes: usize) -> Reservation {
        self.total.fetch_add(bytes, Ordering::Relaxed);
        Reservation {
            budget: self.clone(),
            bytes,
            over: 0,
        }
    }
}

/// Bytes of a connection's send budget held by one frame; given back when
/// dropped.
#[derive(Debug)]
pub(crate) struct Reservation {
    budget: Arc<SendBudget>,
    /// Bytes of the budget.
    bytes: usize,
    /// Bytes beyond the budget.
    over: usize,
}

impl Reservation {
    /// The bytes held.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Gives back what is held beyond `bytes`.
    pub(crate) fn shrink_to(&mut self, bytes: usize) {
        if bytes < self.bytes {
            let extra = self.bytes - bytes;
            self.bytes = bytes;
            self.budget.release(extra);
        }
    }

    /// Takes `other`'s bytes into this one.
    pub(crate) fn merge(&mut self, mut other: Reservation) {
        self.bytes += std::mem::take(&mut other.bytes);
        self.over += std::mem::take(&mut other.over);
    }
}

impl SendBudget {
    fn release(&self, bytes: usize) {
        if bytes > 0 {
            self.total.fetch_sub(bytes, Ordering::Relaxed);
            self.free.add_permits(bytes);
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.release(self.bytes);
        if self.over > 0 {
            self.budget.total.fetch_sub(self.over, Ordering::Relaxed);
        }
    }
}
