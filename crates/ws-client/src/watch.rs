//! Watch pushes as a `Stream`.

use hs_core::observe::targets;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::Stream;
use tokio::sync::broadcast;

use crate::Grid;

/// Queue of pushes per subscriber; a subscriber that falls further behind
/// loses the oldest (logged at WARN).
pub(crate) const PUSH_QUEUE: usize = 1024;

/// A server push: the changed entities of one watch.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct WatchPush {
    /// The watch id (for a [`ReconnectingWsClient`](crate::ReconnectingWsClient),
    /// the id its `watchSub` first returned, also after a reconnect).
    pub watch_id: String,
    /// The changed entities.
    pub grid: Grid,
}

/// The stream returned by `watch_events()`: every push received from the
/// moment it was created. It ends when the client is dropped.
pub struct WatchEvents {
    inner: Pin<Box<dyn Stream<Item = WatchPush> + Send>>,
}

impl std::fmt::Debug for WatchEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchEvents").finish_non_exhaustive()
    }
}

impl WatchEvents {
    pub(crate) fn new(rx: broadcast::Receiver<WatchPush>) -> Self {
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(push) => return Some((push, rx)),
                    Err(broadcast::error::RecvError::Lagged(n)) => log::warn!(
                        target: targets::WS_CLIENT,
                        "watch event consumer too slow: {n} pushes dropped"
                    ),
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        WatchEvents {
            inner: Box::pin(stream),
        }
    }
}

impl Stream for WatchEvents {
    type Item = WatchPush;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<WatchPush>> {
        self.inner.as_mut().poll_next(cx)
    }
}
