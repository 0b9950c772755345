//! What travels through a connection's send queue, and how a written (or
//! lost) frame is reported to the observer.

use std::time::Instant;

use axum::extract::ws::Message;
use hs_core::observe::{ErrorKind, GuardedObserver, MetricsObserver};
use hs_core::spans;
use tracing::Span;

use crate::shared::Reservation;

/// The `op` an observer sees for a frame or a request.
pub(crate) use hs_core::observe::labels::OpLabel as Label;
pub(crate) use hs_core::observe::labels::{AUTH, BATCH, INVALID, PUSH};

/// Label of a capabilities message.
pub(crate) const CAPABILITIES: &str = "capabilities";

/// A frame's text as logged: an authentication message (or anything that
/// may be one: it names a token) is left out, since it carries a token, a
/// handshake token or SCRAM data with the client's proof.
pub(crate) fn loggable(text: &str) -> &str {
    if text.contains("authToken") || text.contains("handshakeToken") {
        "<authentication message, not logged>"
    } else {
        text
    }
}

/// How one request ended, reported once its response frame is written.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// The request's op (or `invalid`).
    pub(crate) op: Label,
    /// When the request's frame was received.
    pub(crate) received: Instant,
    /// `None` for a normal response, else the error kind of the error grid.
    pub(crate) error: Option<ErrorKind>,
    /// The request's `haystack.request` span: given the outcome when it is
    /// reported, and closed with it, so it lasts until the answer is
    /// written.
    pub(crate) span: Span,
}

/// The requests a frame answers: none (push, auth, ping), one, or a batch's.
#[derive(Debug, Default)]
pub(crate) enum Outcomes {
    /// Not a response.
    #[default]
    None,
    /// A single response.
    One(Outcome),
    /// A batch response, one outcome per item.
    Many(Vec<Outcome>),
}

impl Outcomes {
    /// Marks every request as failed with `kind` (its answer was replaced
    /// by an error grid).
    pub(crate) fn fail(&mut self, kind: ErrorKind) {
        match self {
            Outcomes::None => {}
            Outcomes::One(outcome) => outcome.error = Some(kind),
            Outcomes::Many(outcomes) => {
                for outcome in outcomes {
                    outcome.error = Some(kind);
                }
            }
        }
    }

    /// Reports each request: `on_request` / `on_error` with its own kind when
    /// the frame was written, `on_error(op, lost)` when it never was.
    pub(crate) fn report(self, observer: &GuardedObserver, lost: Option<ErrorKind>) {
        match self {
            Outcomes::None => {}
            Outcomes::One(outcome) => report_one(observer, outcome, lost),
            Outcomes::Many(outcomes) => {
                for outcome in outcomes {
                    report_one(observer, outcome, lost);
                }
            }
        }
    }
}

fn report_one(observer: &GuardedObserver, outcome: Outcome, lost: Option<ErrorKind>) {
    let error = lost.or(outcome.error);
    spans::record_outcome(&outcome.span, error);
    match error {
        Some(kind) => observer.on_error(&outcome.op, kind.as_str()),
        None => observer.on_request(&outcome.op, outcome.received.elapsed()),
    }
}

/// One frame waiting in the send queue.
#[derive(Debug)]
pub(crate) struct Outgoing {
    /// The frame.
    pub(crate) message: Message,
    /// Its `on_ws_message_sent` label; `None` for control frames (pings),
    /// which are never counted.
    pub(crate) label: Option<Label>,
    /// The requests it answers.
    pub(crate) outcomes: Outcomes,
    /// Its bytes of the connection's send budget, given back once it is
    /// written (or dropped); `None` for control frames.
    pub(crate) reserved: Option<Reservation>,
}

impl Outgoing {
    /// A text data frame.
    pub(crate) fn text(text: String, label: Label, outcomes: Outcomes) -> Self {
        Outgoing {
            message: Message::Text(text.into()),
            label: Some(label),
            outcomes,
            reserved: None,
        }
    }

    /// A ping (never reported).
    pub(crate) fn ping() -> Self {
        Outgoing {
            message: Message::Ping(Default::default()),
            label: None,
            outcomes: Outcomes::None,
            reserved: None,
        }
    }

    /// The payload length of the frame in bytes.
    pub(crate) fn payload_len(&self) -> usize {
        payload_len(&self.message)
    }
}

/// The payload length of a frame in bytes (text: UTF-8 bytes, not chars).
pub(crate) fn payload_len(message: &Message) -> usize {
    match message {
        Message::Text(text) => text.as_str().len(),
        Message::Binary(bytes) => bytes.len(),
        Message::Ping(bytes) | Message::Pong(bytes) => bytes.len(),
        Message::Close(_) => 0,
    }
}
