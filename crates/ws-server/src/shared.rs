//! What the tasks of one connection share: the send queue, the close switch
//! and the watches the connection subscribed.

use std::collections::HashSet;
use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Utf8Bytes};
use hs_core::observe::{ErrorKind, GuardedObserver};
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
    watches: Mutex<HashSet<String>>,
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
            watches: Mutex::new(HashSet::new()),
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

    /// Remembers that this connection subscribed `watch_id`.
    pub(crate) fn add_watch(&self, watch_id: String) {
        self.watches.lock().insert(watch_id);
    }

    /// Forgets `watch_id` (the connection closed it).
    pub(crate) fn remove_watch(&self, watch_id: &str) {
        self.watches.lock().remove(watch_id);
    }

    /// Whether this connection subscribed `watch_id`.
    pub(crate) fn watches(&self, watch_id: &str) -> bool {
        self.watches.lock().contains(watch_id)
    }
}
