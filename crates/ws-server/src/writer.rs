//! The writer task: the only owner of a connection's sending half.
//!
//! It drains the bounded send queue, writes everything that is queued before
//! flushing once (fewer syscalls under load), and only then reports the
//! frames (`on_ws_message_sent`) and the requests they answer (`on_request`
//! / `on_error`): a request's duration runs from its receipt to its response
//! written to the socket.

use hs_core::observe::targets;
use std::task::{Context, Waker};
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use futures_util::SinkExt;
use futures_util::stream::SplitSink;
use hs_core::observe::{ErrorKind, GuardedObserver, MetricsObserver};
use tokio::sync::{mpsc, oneshot};

use crate::outgoing::{Label, Outcomes, Outgoing, loggable};
use crate::shared::{Closing, Reservation};

/// Frames taken from the queue per flush.
const WRITE_BATCH: usize = 64;

type Sink = SplitSink<WebSocket, Message>;

/// Runs until the connection is closed; then drains the queue, reporting the
/// requests that never got their answer out as `connection_closed`, and
/// cancels `cancel`.
///
/// `close` decides the end: our close, sent after the frames already queued
/// (all bounded by `close_timeout`), or instead of them for a slow reader,
/// whose queued frames are dropped (after the frame being written, which
/// cannot be cut short, within `close_timeout`); the sender dropped means
/// the peer closed (tungstenite has already queued its reply, which is
/// flushed).
pub(crate) async fn run_writer(
    mut sink: Sink,
    mut queue: mpsc::Receiver<Outgoing>,
    mut close: oneshot::Receiver<Closing>,
    observer: GuardedObserver,
    peer: std::sync::Arc<str>,
    close_timeout: Duration,
    cancel: tokio_util::sync::CancellationToken,
) {
    // However the writer ends (a broken socket above all), the connection is
    // over: the reader stops reading and starting requests nobody will get.
    let _over = cancel.drop_guard();
    let mut taken: Vec<Outgoing> = Vec::with_capacity(WRITE_BATCH);
    let mut written: Vec<Written> = Vec::with_capacity(WRITE_BATCH);
    let mut broken = false;
    let close_frame = loop {
        tokio::select! {
            biased;
            frame = &mut close => break frame.ok(),
            count = queue.recv_many(&mut taken, WRITE_BATCH) => {
                if count == 0 {
                    // Every sender is gone: the connection is over.
                    break None;
                }
                let interrupted = {
                    let write = write_all(&mut sink, &mut taken, &mut written);
                    tokio::pin!(write);
                    let interrupted = tokio::select! {
                        biased;
                        result = &mut write => {
                            broken = result.is_err();
                            None
                        }
                        frame = &mut close => Some(frame.ok()),
                    };
                    if interrupted.is_some() {
                        // Closing: this write gets close_timeout to finish (a
                        // slow reader's will not).
                        broken = !matches!(tokio::time::timeout(close_timeout, write).await, Ok(Ok(())));
                    }
                    interrupted
                };
                if let Some(frame) = interrupted {
                    report(&observer, &mut written, &mut taken, broken);
                    break frame;
                }
                report(&observer, &mut written, &mut taken, broken);
                if broken {
                    break None;
                }
                forget_socket_waker(&mut sink);
            }
        }
    };
    // What the frames never written are reported as: a slow reader's are
    // dropped because it did not read them.
    let lost = match &close_frame {
        Some(Closing { flush: false, .. }) => ErrorKind::Overloaded,
        _ => ErrorKind::ConnectionClosed,
    };
    if !broken {
        let deadline = tokio::time::Instant::now() + close_timeout;
        match close_frame {
            Some(Closing { frame, flush }) => {
                // Frames queued before the close go out first (an `authErr`
                // before its close), within the same deadline.
                if flush {
                    while let Ok(out) = queue.try_recv() {
                        taken.push(out);
                    }
                }
                if !taken.is_empty() {
                    let result = tokio::time::timeout_at(
                        deadline,
                        write_all(&mut sink, &mut taken, &mut written),
                    )
                    .await;
                    broken = !matches!(result, Ok(Ok(())));
                    report(&observer, &mut written, &mut taken, broken);
                }
                if !broken {
                    log::debug!(target: targets::WS_CONN, "{peer}: sending close {} {}", frame.code, frame.reason.as_str());
                    let sent =
                        tokio::time::timeout_at(deadline, sink.send(Message::Close(Some(frame))))
                            .await;
                    if !matches!(sent, Ok(Ok(()))) {
                        log::debug!(target: targets::WS_CONN, "{peer}: close frame not sent");
                    }
                }
            }
            None => {
                let _ = tokio::time::timeout_at(deadline, sink.close()).await;
            }
        }
    }
    queue.close();
    // Dropping the frames gives their bytes back to the budget.
    while let Ok(out) = queue.try_recv() {
        out.outcomes.report(&observer, Some(lost));
    }
}

/// Stops the socket from waking this task while it waits on its queue.
///
/// tokio-tungstenite wakes the task that last flushed whenever the socket
/// becomes readable (its waker proxy wakes readers and writers alike), so an
/// idle writer would be woken, for nothing, by every incoming frame: a
/// spurious poll and, on the multi-threaded runtime, often a wake-up of
/// another worker thread (two `futex` calls per request). Once everything is
/// flushed the writer waits only on its queue and the close signal, so its
/// socket waker is replaced by a no-op one. Should this flush not complete
/// (the reader holds the socket), nothing changes: the next write flushes.
fn forget_socket_waker(sink: &mut Sink) {
    let mut cx = Context::from_waker(Waker::noop());
    let _ = sink.poll_flush_unpin(&mut cx);
}

/// A frame handed to the socket: its label, payload length, requests and
/// bytes of the budget (held until it is flushed).
type Written = (Option<Label>, usize, Outcomes, Option<Reservation>);

/// Reports what was written (`broken`: lost after all) and what never was.
fn report(
    observer: &GuardedObserver,
    written: &mut Vec<Written>,
    taken: &mut Vec<Outgoing>,
    broken: bool,
) {
    for (label, len, outcomes, _reserved) in written.drain(..) {
        if broken {
            outcomes.report(observer, Some(ErrorKind::ConnectionClosed));
        } else {
            if let Some(label) = label {
                observer.on_ws_message_sent(&label, len);
            }
            outcomes.report(observer, None);
        }
    }
    for out in taken.drain(..) {
        out.outcomes
            .report(observer, Some(ErrorKind::ConnectionClosed));
    }
}

/// Feeds every taken frame, then flushes once. `written` gets each frame's
/// label, length and outcomes as it is handed to the socket.
async fn write_all(
    sink: &mut Sink,
    taken: &mut Vec<Outgoing>,
    written: &mut Vec<Written>,
) -> Result<(), ()> {
    for out in taken.drain(..) {
        let len = out.payload_len();
        if log::log_enabled!(target: targets::WS_CONN, log::Level::Trace) {
            if let Message::Text(text) = &out.message {
                log::trace!(target: targets::WS_CONN, "send {len} bytes: {}", loggable(text.as_str()));
            }
        }
        let result = sink.feed(out.message).await;
        written.push((out.label, len, out.outcomes, out.reserved));
        if let Err(err) = result {
            log::debug!(target: targets::WS_CONN, "write failed: {err}");
            return Err(());
        }
    }
    sink.flush()
        .await
        .map_err(|err| log::debug!(target: targets::WS_CONN, "flush failed: {err}"))
}
