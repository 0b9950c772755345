//! One connection's life: connect event, auth phase, message loop with
//! heartbeat and pushes, closing handshake, disconnect event.

use hs_core::observe::targets;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::ws::{Message, WebSocket};
use futures_util::StreamExt;
use futures_util::stream::SplitStream;
use hs_core::auth::PeerCertificate;
use hs_core::observe::{ErrorKind, GuardedObserver, MetricsObserver};
use hs_core::spans;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tracing::{Instrument, Span};

use crate::outgoing::{INVALID, Outgoing};
use crate::shared::{ConnShared, SendBudget};
use crate::state::WsServerState;
use crate::{auth, close, protocol, writer};

pub(crate) type Stream = SplitStream<WebSocket>;

/// Fires `on_ws_connect` when created and `on_ws_disconnect` when dropped,
/// so the pair holds whatever ends the connection (error, panic, shutdown).
/// Holds the connection-limit permit for as long.
struct ConnectionGuard {
    observer: GuardedObserver,
    peer: Arc<str>,
    opened: Instant,
    _permit: OwnedSemaphorePermit,
}

impl ConnectionGuard {
    fn new(observer: GuardedObserver, peer: Arc<str>, permit: OwnedSemaphorePermit) -> Self {
        log::info!(target: targets::WS_CONN, "{peer}: connection opened");
        observer.on_ws_connect(&peer);
        ConnectionGuard {
            observer,
            peer,
            opened: Instant::now(),
            _permit: permit,
        }
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        log::info!(
            target: targets::WS_CONN,
            "{}: connection closed after {:.3} s",
            self.peer,
            self.opened.elapsed().as_secs_f64()
        );
        self.observer.on_ws_disconnect(&self.peer);
    }
}

/// Runs one upgraded connection to its end, in its
/// `haystack.ws.connection` span; `certificate` is the verified client
/// certificate of a TLS connection, when it presented one.
pub(crate) async fn run(
    state: WsServerState,
    socket: WebSocket,
    peer: Arc<str>,
    certificate: Option<PeerCertificate>,
    permit: OwnedSemaphorePermit,
) {
    let span = spans::ws_connection(&peer);
    serve(state, socket, peer, certificate, permit, span.clone())
        .instrument(span)
        .await;
}

async fn serve(
    state: WsServerState,
    socket: WebSocket,
    peer: Arc<str>,
    certificate: Option<PeerCertificate>,
    permit: OwnedSemaphorePermit,
    span: Span,
) {
    let inner = &state.inner;
    let _guard = ConnectionGuard::new(inner.observer.clone(), peer.clone(), permit);
    let (sink, mut stream) = socket.split();
    let (queue_tx, queue_rx) = mpsc::channel(inner.config.send_queue);
    let (close_tx, close_rx) = oneshot::channel();
    let shared = Arc::new(ConnShared::new(
        peer.clone(),
        inner.observer.clone(),
        queue_tx,
        SendBudget::new(inner.config.send_budget, inner.queued.clone()),
        close_tx,
        inner.shutdown.child_token(),
    ));
    let writer = tokio::spawn(
        writer::run_writer(
            sink,
            queue_rx,
            close_rx,
            inner.observer.clone(),
            peer.clone(),
            inner.config.close_timeout,
            shared.cancel.clone(),
        )
        .instrument(span.clone()),
    );

    let certified =
        certificate.and_then(|certificate| inner.auth.cert_users.principal(&certificate));
    let principal = if let Some(principal) = certified {
        log::info!(
            target: targets::AUTH,
            "{peer}: authenticated by client certificate as {} ({})",
            principal.username,
            principal.role.as_str()
        );
        Some(principal)
    } else if inner.auth.required() {
        match auth::authenticate(&state, &shared, &mut stream).await {
            Some(principal) => principal,
            None => {
                end(&state, &shared, writer, stream).await;
                return;
            }
        }
    } else {
        None
    };
    if let Some(principal) = &principal {
        spans::record_user(&span, &principal.username);
    }
    let session = protocol::Session::new(state.clone(), shared.clone(), principal, span);
    message_loop(&state, &shared, &session, &mut stream).await;
    release_watches(&state, &shared).await;
    end(&state, &shared, writer, stream).await;
}

/// Closes the watches the connection subscribed, unless another connection
/// resumed them (a reconnecting client that came back first).
async fn release_watches(state: &WsServerState, shared: &ConnShared) {
    let watches = shared.take_watches();
    if !watches.is_empty() {
        log::debug!(target: targets::WS_SERVER, "{}: releasing {} watches", shared.peer, watches.len());
    }
    for watch_id in watches {
        state
            .inner
            .pipeline
            .ops()
            .watch_release(&watch_id, &shared.inbox)
            .await;
    }
}

/// Reads frames until the connection closes, one way or another.
async fn message_loop(
    state: &WsServerState,
    shared: &Arc<ConnShared>,
    session: &protocol::Session,
    stream: &mut Stream,
) {
    let config = &state.inner.config;
    let in_flight = Arc::new(Semaphore::new(config.max_in_flight));
    let mut heartbeat = config.heartbeat_interval.map(|period| {
        let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        interval
    });
    let mut unanswered_pings: u32 = 0;
    // While the send budget is exhausted the connection is not read (TCP
    // back-pressure on the peer); past this deadline it is closed.
    let mut stalled_until: Option<tokio::time::Instant> = None;
    // One wait for the whole loop (a new one per frame would register and
    // deregister with the token each time).
    let cancelled = shared.cancel.cancelled();
    tokio::pin!(cancelled);
    // Likewise one wait for pushes, renewed only when it fires.
    let changed = shared.inbox.changed();
    tokio::pin!(changed);
    loop {
        let full = shared.budget.is_full();
        let stall_deadline = if full {
            Some(
                *stalled_until
                    .get_or_insert_with(|| tokio::time::Instant::now() + config.stall_timeout),
            )
        } else {
            stalled_until = None;
            None
        };
        tokio::select! {
            biased;
            () = &mut cancelled => {
                // Our own close already chose its code, and a writer that
                // ended took the close with it; otherwise this is shutdown.
                shared.close(close::GOING_AWAY, close::REASON_SHUTDOWN);
                return;
            }
            _ = tick(&mut heartbeat) => {
                if unanswered_pings >= config.missed_pongs {
                    log::warn!(target: targets::WS_CONN, "{}: {unanswered_pings} pings without a pong, closing", shared.peer);
                    shared.close(close::POLICY, close::REASON_HEARTBEAT);
                    return;
                }
                unanswered_pings += 1;
                log::trace!(target: targets::WS_CONN, "{}: ping", shared.peer);
                // A full queue is handled where data frames are queued.
                let _ = shared.enqueue_control(Outgoing::ping());
            }
            // Changes coalesce in the inbox while this loop is busy: each
            // wake-up pushes the latest state of every changed entity once.
            () = &mut changed => {
                changed.set(shared.inbox.changed());
                for event in shared.inbox.take() {
                    session.push(event);
                }
            }
            () = shared.budget.room(), if full => {}
            () = sleep_until(stall_deadline), if full => {
                stalled(shared, config.stall_timeout);
                return;
            }
            frame = stream.next(), if !full => {
                let received = Instant::now();
                match frame {
                    Some(Ok(Message::Text(text))) => {
                        let Some(permit) = acquire(&in_flight, shared, config.stall_timeout).await else { return };
                        session.handle_text(text, received, permit);
                    }
                    Some(Ok(Message::Binary(bytes))) => {
                        let Some(permit) = acquire(&in_flight, shared, config.stall_timeout).await else { return };
                        session.handle_binary(bytes, received, permit);
                    }
                    Some(Ok(Message::Pong(_))) => {
                        log::trace!(target: targets::WS_CONN, "{}: pong", shared.peer);
                        unanswered_pings = 0;
                    }
                    Some(Ok(Message::Ping(_))) => log::trace!(target: targets::WS_CONN, "{}: ping received", shared.peer),
                    Some(Ok(Message::Close(frame))) => {
                        match frame {
                            Some(frame) => log::debug!(target: targets::WS_CONN, "{}: peer closed ({} {})", shared.peer, frame.code, frame.reason.as_str()),
                            None => log::debug!(target: targets::WS_CONN, "{}: peer closed", shared.peer),
                        }
                        shared.peer_closed();
                        return;
                    }
                    Some(Err(err)) => {
                        read_failed(shared, err);
                        return;
                    }
                    None => {
                        log::debug!(target: targets::WS_CONN, "{}: connection dropped by the peer", shared.peer);
                        shared.peer_closed();
                        return;
                    }
                }
            }
        }
    }
}

/// Waits for an in-flight slot, giving up when the connection closes, or
/// closing it when the requests holding the slots have waited for room in
/// the send budget for `stall_timeout` (a slow reader).
async fn acquire(
    in_flight: &Arc<Semaphore>,
    shared: &ConnShared,
    stall_timeout: std::time::Duration,
) -> Option<OwnedSemaphorePermit> {
    // Nearly always a slot is free: take it without building the wait.
    if let Ok(permit) = in_flight.clone().try_acquire_owned() {
        return Some(permit);
    }
    let mut stalled_until: Option<tokio::time::Instant> = None;
    loop {
        let full = shared.budget.is_full();
        let deadline = if full {
            Some(*stalled_until.get_or_insert_with(|| tokio::time::Instant::now() + stall_timeout))
        } else {
            stalled_until = None;
            None
        };
        tokio::select! {
            biased;
            permit = in_flight.clone().acquire_owned() => return permit.ok(),
            () = shared.cancel.cancelled() => return None,
            () = shared.budget.room(), if full => {}
            () = sleep_until(deadline) => {
                stalled(shared, stall_timeout);
                return None;
            }
        }
    }
}

/// Sleeps until `deadline`; forever without one.
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// The send budget stayed exhausted for `stall_timeout`: close 1008.
fn stalled(shared: &ConnShared, stall_timeout: std::time::Duration) {
    if !shared.cancel.is_cancelled() {
        log::warn!(
            target: targets::WS_SERVER,
            "{}: send budget of {} bytes exhausted for {stall_timeout:?}, closing the connection of a slow reader",
            shared.peer,
            shared.budget.limit()
        );
    }
    shared.close_slow_reader();
}

async fn tick(heartbeat: &mut Option<tokio::time::Interval>) {
    match heartbeat {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// A read error: an oversized message gets close 1009, a protocol
/// violation 1002, a text message that is not UTF-8 1007; anything else
/// (the TCP connection reset or closed without a close frame) is a broken
/// transport.
pub(crate) fn read_failed(shared: &ConnShared, err: axum::Error) {
    use tokio_tungstenite::tungstenite::Error as WsError;
    use tokio_tungstenite::tungstenite::error::{CapacityError, ProtocolError};
    let Ok(err) = err.into_inner().downcast::<WsError>() else {
        log::debug!(target: targets::WS_CONN, "{}: read failed, dropping the connection", shared.peer);
        shared.peer_closed();
        return;
    };
    match *err {
        WsError::Capacity(CapacityError::MessageTooLong { .. }) => {
            log::warn!(target: targets::WS_SERVER, "{}: message over the size limit, closing with 1009", shared.peer);
            shared
                .observer
                .on_error(INVALID, ErrorKind::TooLarge.as_str());
            shared.close(close::TOO_BIG, close::REASON_TOO_BIG);
        }
        WsError::Utf8(_) => {
            log::debug!(target: targets::WS_CONN, "{}: text message is not UTF-8, closing with 1007", shared.peer);
            shared
                .observer
                .on_error(INVALID, ErrorKind::Protocol.as_str());
            shared.close(close::INVALID_DATA, close::REASON_INVALID_UTF8);
        }
        // The peer vanished mid-frame, or sent after its own close: nothing
        // to answer.
        WsError::Protocol(
            ProtocolError::ResetWithoutClosingHandshake | ProtocolError::ReceivedAfterClosing,
        ) => {
            log::debug!(target: targets::WS_CONN, "{}: connection dropped by the peer", shared.peer);
            shared.peer_closed();
        }
        WsError::Protocol(violation) => {
            log::debug!(target: targets::WS_CONN, "{}: protocol violation ({violation}), closing with 1002", shared.peer);
            shared
                .observer
                .on_error(INVALID, ErrorKind::Protocol.as_str());
            shared.close(close::PROTOCOL, close::REASON_PROTOCOL);
        }
        other => {
            log::debug!(target: targets::WS_CONN, "{}: read failed ({other}), dropping the connection", shared.peer);
            shared.peer_closed();
        }
    }
}

/// The closing handshake: the writer sends our close (or flushes the reply to
/// the peer's) and exits; then, when we closed first, the peer's close is
/// read, bounded by `close_timeout`, so the TCP connection ends cleanly.
async fn end(
    state: &WsServerState,
    shared: &ConnShared,
    writer: tokio::task::JoinHandle<()>,
    mut stream: Stream,
) {
    let close_timeout = state.inner.config.close_timeout;
    // The writer's own sends are bounded by close_timeout.
    if let Err(err) = writer.await {
        log::error!(target: targets::WS_CONN, "{}: writer task failed: {err}", shared.peer);
    }
    let drain = async {
        while let Some(Ok(frame)) = stream.next().await {
            if matches!(frame, Message::Close(_)) {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(close_timeout, drain).await;
}
