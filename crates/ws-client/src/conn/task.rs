//! The connection task: reader, writer and heartbeat.

use hs_core::observe::labels;
use hs_core::observe::targets;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hs_core::observe::MetricsObserver;
use parking_lot::Mutex;
use tokio::sync::{Notify, mpsc};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Bytes, Message};

use super::{Command, DisconnectGuard, Shared, WsStream, close_info};
use crate::ServerClose;
use crate::config::WsConfig;

#[derive(Clone, Copy)]
pub(super) struct Heartbeat {
    interval: Option<Duration>,
    max_missed: u32,
}

impl From<&WsConfig> for Heartbeat {
    fn from(config: &WsConfig) -> Self {
        Heartbeat {
            interval: config.heartbeat_interval,
            max_missed: config.missed_pongs,
        }
    }
}

/// The connection task: reads, writes and watches the heartbeat until one
/// of them ends, then the guard reports the disconnect.
///
/// The heartbeat monitor runs beside the writer, not inside it, so a peer
/// that stops reading (the writer blocked on a full socket) is still
/// detected.
pub(super) async fn run(
    stream: WsStream,
    commands: mpsc::Receiver<Command>,
    mut guard: DisconnectGuard,
    heartbeat: Heartbeat,
    close_timeout: Duration,
) {
    let shared = guard.shared.clone();
    let (sink, stream) = stream.split();
    // Heartbeat periods since the server last showed a sign of life.
    let unanswered = AtomicU32::new(0);
    let ping_due = Notify::new();
    // Set by the reader when the server's close frame arrives: the truest
    // reason, even if the writer fails first on the closing socket.
    let server_close: Mutex<Option<ServerClose>> = Mutex::new(None);
    // Set by the writer when it starts the closing handshake.
    let client_close = AtomicBool::new(false);
    let reason = tokio::select! {
        reason = read_loop(stream, &shared, &unanswered, &server_close) => reason,
        reason = write_loop(sink, commands, &shared, &ping_due, &client_close, close_timeout) => reason,
        reason = heartbeat_loop(&shared, &unanswered, &ping_due, heartbeat) => reason,
    };
    let server_close = server_close.lock().take();
    let client_closed = client_close.load(Ordering::Relaxed);
    if !client_closed {
        if let Some(error) = shared.auth_refusal(server_close.as_ref()) {
            guard.set_error(error);
            return;
        }
    }
    let reason = match (client_closed, server_close) {
        (true, Some(_)) => "closed by client".to_owned(),
        (_, Some(server)) => closed_by_server(Some(&server)),
        (_, None) => reason,
    };
    guard.set_reason(reason);
}

pub(super) async fn heartbeat_loop(
    shared: &Shared,
    unanswered: &AtomicU32,
    ping_due: &Notify,
    heartbeat: Heartbeat,
) -> String {
    let Some(period) = heartbeat.interval else {
        return std::future::pending().await;
    };
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let missed = unanswered.fetch_add(1, Ordering::Relaxed);
        if missed >= heartbeat.max_missed {
            log::warn!(
                target: targets::WS_CONN,
                "no answer from {} to {missed} pings: closing",
                shared.url
            );
            return format!("heartbeat timeout ({missed} pings unanswered)");
        }
        ping_due.notify_one();
    }
}

pub(super) async fn read_loop(
    mut stream: futures_util::stream::SplitStream<WsStream>,
    shared: &Shared,
    unanswered: &AtomicU32,
    server_close: &Mutex<Option<ServerClose>>,
) -> String {
    let mut close_frame: Option<ServerClose> = None;
    while let Some(message) = stream.next().await {
        match message {
            Ok(Message::Text(text)) => {
                unanswered.store(0, Ordering::Relaxed);
                shared.on_text(text.as_str());
            }
            Ok(Message::Binary(bytes)) => {
                unanswered.store(0, Ordering::Relaxed);
                shared
                    .observer
                    .on_ws_message_recv(labels::INVALID, bytes.len());
                log::warn!(target: targets::WS_CONN, "ignored binary frame of {} bytes from {}", bytes.len(), shared.url);
            }
            Ok(Message::Pong(_)) => {
                unanswered.store(0, Ordering::Relaxed);
                log::trace!(target: targets::WS_CONN, "pong from {}", shared.url);
            }
            // tungstenite answers pings itself.
            Ok(Message::Ping(_) | Message::Frame(_)) => {}
            Ok(Message::Close(frame)) => {
                log::debug!(target: targets::WS_CONN, "close frame from {}: {frame:?}", shared.url);
                close_frame = frame.as_ref().map(close_info);
                *server_close.lock() = close_frame.clone();
            }
            Err(error) => {
                return match close_frame {
                    Some(close) => closed_by_server(Some(&close)),
                    None => format!("transport error: {error}"),
                };
            }
        }
    }
    closed_by_server(close_frame.as_ref())
}

pub(super) fn closed_by_server(close: Option<&ServerClose>) -> String {
    match close {
        Some(close) if close.reason.is_empty() => format!("closed by server ({})", close.code),
        Some(close) => format!("closed by server ({} {})", close.code, close.reason),
        None => "closed by server".to_owned(),
    }
}

pub(super) async fn write_loop(
    mut sink: futures_util::stream::SplitSink<WsStream, Message>,
    mut commands: mpsc::Receiver<Command>,
    shared: &Shared,
    ping_due: &Notify,
    client_close: &AtomicBool,
    close_timeout: Duration,
) -> String {
    loop {
        tokio::select! {
            command = commands.recv() => match command {
                Some(Command::Frame { text, label }) => {
                    let len = text.len();
                    if let Err(error) = sink.send(Message::text(text)).await {
                        return format!("send failed: {error}");
                    }
                    shared.observer.on_ws_message_sent(&label, len);
                }
                Some(Command::Close) | None => {
                    log::debug!(target: targets::WS_CONN, "closing connection to {}", shared.url);
                    client_close.store(true, Ordering::Relaxed);
                    let frame = CloseFrame { code: CloseCode::Normal, reason: "".into() };
                    let sent = tokio::time::timeout(close_timeout, sink.send(Message::Close(Some(frame)))).await;
                    match sent {
                        Ok(Ok(())) => {}
                        Ok(Err(error)) => return format!("close failed: {error}"),
                        Err(_) => return format!("close frame not sent within {close_timeout:?}"),
                    }
                    // The reader ends the task when the server's close arrives.
                    tokio::time::sleep(close_timeout).await;
                    return format!("no close frame from server within {close_timeout:?}");
                }
            },
            _ = ping_due.notified() => {
                log::trace!(target: targets::WS_CONN, "ping to {}", shared.url);
                if let Err(error) = sink.send(Message::Ping(Bytes::new())).await {
                    return format!("ping failed: {error}");
                }
            }
        }
    }
}
