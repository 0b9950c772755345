use crate::codec::CodecError;
use crate::observe::ErrorKind;

use super::RequestId;

/// Why a WebSocket text frame could not be decoded.
///
/// Decoding never panics: every malformed frame becomes one of these. When
/// the request `id` could be read, [`request_id`](Self::request_id) returns
/// it so that a server can still answer with an error grid carrying that id.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The frame is not JSON (the reference ignores such frames).
    #[error("frame is not JSON: {message}")]
    InvalidJson {
        /// The parser's message.
        message: String,
    },
    /// The frame is JSON but neither an object nor an array (the reference
    /// closes the connection).
    #[error("frame is a JSON scalar, not an object or array")]
    NotAnObject,
    /// An envelope field has the wrong JSON type (e.g. `op` is a number).
    #[error("envelope field `{field}` must be {expected}")]
    BadField {
        /// The request id, when it could be read.
        id: Option<RequestId>,
        /// The field.
        field: &'static str,
        /// What it must be.
        expected: &'static str,
    },
    /// A field the message type requires is absent.
    #[error("envelope field `{field}` is missing")]
    MissingField {
        /// The request id, when it could be read.
        id: Option<RequestId>,
        /// The field.
        field: &'static str,
    },
    /// The envelope is fine but its `grid` is not a valid grid.
    #[error("bad grid: {source}")]
    BadGrid {
        /// The request id, when it could be read.
        id: Option<RequestId>,
        /// Why the grid was refused.
        #[source]
        source: CodecError,
    },
    /// A batch holds more items than the limit ([`MAX_BATCH`](super::MAX_BATCH)
    /// unless the server sets another).
    #[error("batch of {len} items exceeds the limit of {max}")]
    BatchTooLarge {
        /// Items in the batch.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A server message with a `type` this library does not know.
    #[error("unknown message type {message_type:?}")]
    UnknownType {
        /// The `type` value.
        message_type: String,
    },
}

impl FrameError {
    /// The stable snake_case name of this error.
    pub const fn as_str(&self) -> &'static str {
        match self {
            FrameError::InvalidJson { .. } => "invalid_json",
            FrameError::NotAnObject => "not_an_object",
            FrameError::BadField { .. } => "bad_field",
            FrameError::MissingField { .. } => "missing_field",
            FrameError::BadGrid { .. } => "bad_grid",
            FrameError::BatchTooLarge { .. } => "batch_too_large",
            FrameError::UnknownType { .. } => "unknown_type",
        }
    }

    /// The observer error kind: `protocol` for frames that are not
    /// envelopes at all, `bad_request` for bad envelope fields, the grid
    /// error's kind for a bad grid, `too_large` for an oversized batch.
    pub const fn kind(&self) -> ErrorKind {
        match self {
            FrameError::InvalidJson { .. }
            | FrameError::NotAnObject
            | FrameError::UnknownType { .. } => ErrorKind::Protocol,
            FrameError::BadField { .. } | FrameError::MissingField { .. } => ErrorKind::BadRequest,
            FrameError::BadGrid { source, .. } => source.kind(),
            FrameError::BatchTooLarge { .. } => ErrorKind::TooLarge,
        }
    }

    /// The id of the request this error belongs to, when it could be read.
    pub fn request_id(&self) -> Option<&RequestId> {
        match self {
            FrameError::BadField { id, .. }
            | FrameError::MissingField { id, .. }
            | FrameError::BadGrid { id, .. } => id.as_ref(),
            _ => None,
        }
    }
}
