use crate::observe::ErrorKind;

/// Why a grid could not be decoded or encoded, or a media type was refused.
///
/// Every variant maps to a stable name ([`as_str`](Self::as_str)) and an
/// [`ErrorKind`] ([`kind`](Self::kind)); the `Display` text is for humans and
/// logs only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The `Content-Type` names a format hs does not decode (HTTP 415).
    #[error("unsupported media type: {media_type}")]
    UnsupportedMediaType {
        /// The media type as received, lower-cased, without parameters.
        media_type: String,
    },
    /// The body is not well-formed JSON.
    #[error("invalid JSON: {message}")]
    InvalidJson {
        /// The parser's message (with line and column).
        message: String,
    },
    /// The body is not well-formed Zinc.
    #[error("invalid Zinc: {message}")]
    InvalidZinc {
        /// The parser's message.
        message: String,
    },
    /// Well-formed JSON or Zinc, but not a valid Haystack grid (missing
    /// `cols`, unknown `_kind`, unknown unit, a row that is not an object ...).
    #[error("invalid grid: {message}")]
    InvalidGrid {
        /// What was wrong.
        message: String,
    },
    /// The body is not UTF-8 (Zinc is text).
    #[error("body is not valid UTF-8")]
    InvalidUtf8,
    /// Values nest deeper than [`MAX_DEPTH`](super::MAX_DEPTH).
    #[error("grid nests deeper than {max} levels")]
    TooDeep {
        /// The limit that was exceeded.
        max: usize,
    },
    /// More rows than [`MAX_ROWS`](super::MAX_ROWS).
    #[error("grid has more than {max} rows")]
    TooManyRows {
        /// The limit that was exceeded.
        max: usize,
    },
    /// More columns than [`MAX_COLS`](super::MAX_COLS).
    #[error("grid has more than {max} columns")]
    TooManyCols {
        /// The limit that was exceeded.
        max: usize,
    },
    /// The grid holds a value the format cannot express.
    #[error("cannot encode grid: {message}")]
    Encode {
        /// What could not be encoded.
        message: String,
    },
}

impl CodecError {
    /// The stable snake_case name of this error.
    pub const fn as_str(&self) -> &'static str {
        match self {
            CodecError::UnsupportedMediaType { .. } => "unsupported_media_type",
            CodecError::InvalidJson { .. } => "invalid_json",
            CodecError::InvalidZinc { .. } => "invalid_zinc",
            CodecError::InvalidGrid { .. } => "invalid_grid",
            CodecError::InvalidUtf8 => "invalid_utf8",
            CodecError::TooDeep { .. } => "too_deep",
            CodecError::TooManyRows { .. } => "too_many_rows",
            CodecError::TooManyCols { .. } => "too_many_cols",
            CodecError::Encode { .. } => "encode",
        }
    }

    /// The observer error kind: `unsupported` for a refused media type,
    /// `too_large` for the size limits, `server_error` for encoding failures,
    /// `bad_request` for everything else.
    pub const fn kind(&self) -> ErrorKind {
        match self {
            CodecError::UnsupportedMediaType { .. } => ErrorKind::Unsupported,
            CodecError::TooDeep { .. }
            | CodecError::TooManyRows { .. }
            | CodecError::TooManyCols { .. } => ErrorKind::TooLarge,
            CodecError::Encode { .. } => ErrorKind::ServerError,
            CodecError::InvalidJson { .. }
            | CodecError::InvalidZinc { .. }
            | CodecError::InvalidGrid { .. }
            | CodecError::InvalidUtf8 => ErrorKind::BadRequest,
        }
    }
}
