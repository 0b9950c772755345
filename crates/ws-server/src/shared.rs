//! What the tasks of one connection share: the send queue, the close switch,
//! the watches the connection subscribed and the inbox of their changes.

use std::collections::HashSet;
use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Utf8Bytes};
use hs_core::observe::{ErrorKind, GuardedObserver};
use hs_core::ops::WatchInbox;
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::outgoing::Outgoing;
use crate::{LOG_CONN, LOG_SERVER, close};

/// Shared by the reader loop, the request tasks and the push forwarder of one
/// connection.
#[derive(Debug)]
pub(crate) struct ConnShared {
    /// Peer `ip:port`.
    pub(crate) peer: Arc<str>,
    /// The guarded observer.
    pub(crate) observer: GuardedObserver,
    queue: mpsc::Sender<Outgoing>,
    close: Mutex<Option<oneshot::Sender<CloseFrame>>>,
    /// Cancelled when the connection is closing, for whatever reason.
    pub(crate) cancel: CancellationToken,
    /// Watch ids this connection subscribed (from its `watchSub` responses).
    watches: Mutex<WatchSet>,
    /// Where the store leaves the changes of those watches (pushes).
    pub(crate) inbox: Arc<WatchInbox>,
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
        close: oneshot::Sender<CloseFrame>,
        cancel: CancellationToken,
    ) -> Self {
        ConnShared {
            peer,
            observer,
            queue,
            close: Mutex::new(Some(close)),
            cancel,
            watches: Mutex::new(WatchSet::default()),
            inbox: Arc::new(WatchInbox::new()),
        }
    }

    /// Queues a frame without waiting. A full queue means the peer does not
    /// read fast enough: the frame's requests are reported `overloaded` and
    /// the connection is closed (1008). Returns whether the frame was queued.
    pub(crate) fn enqueue(&self, out: Outgoing) -> bool {
        match self.queue.try_send(out) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(out)) => {
                if !self.cancel.is_cancelled() {
                    log::warn!(
                        target: LOG_SERVER,
                        "{}: send queue full, closing the connection of a slow reader",
                        self.peer
                    );
                }
                out.outcomes
                    .report(&self.observer, Some(ErrorKind::Overloaded));
                self.close(close::POLICY, close::REASON_SLOW_READER);
                false
            }
            Err(mpsc::error::TrySendError::Closed(out)) => {
                out.outcomes
                    .report(&self.observer, Some(ErrorKind::ConnectionClosed));
                false
            }
        }
    }

    /// Queues a control frame (ping) if there is room; never closes.
    pub(crate) fn enqueue_control(&self, out: Outgoing) -> bool {
        self.queue.try_send(out).is_ok()
    }

    /// Starts closing with our close frame. Only the first call (or
    /// [`peer_closed`](Self::peer_closed)) decides the code.
    pub(crate) fn close(&self, code: u16, reason: &'static str) {
        if let Some(sender) = self.close.lock().take() {
            log::debug!(target: LOG_CONN, "{}: closing ({code} {reason})", self.peer);
            let _ = sender.send(CloseFrame {
                code,
                reason: Utf8Bytes::from_static(reason),
            });
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
