//! [`OpError`]: why an op failed, as a stable kind plus a message for the error grid.

use libhaystack::val::Grid;

use crate::observe::ErrorKind;

/// An op failed. The server answers it with an error grid ([`OpError::to_grid`])
/// and reports [`OpError::kind`] to its observer.
///
/// ```
/// use hs_core::observe::ErrorKind;
/// use hs_core::ops::OpError;
///
/// let err = OpError::bad_request("read: filter must be a Str");
/// assert_eq!(err.kind(), ErrorKind::BadRequest);
/// assert_eq!(err.as_str(), "bad_request");
/// let grid = err.to_grid();
/// assert!(grid.meta.as_ref().unwrap().contains_key("err"));
/// assert_eq!(hs_core::codec::error_kind(&grid), Some(ErrorKind::BadRequest));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
#[non_exhaustive]
pub struct OpError {
    kind: ErrorKind,
    message: String,
    internal: bool,
}

impl OpError {
    /// An error of any kind.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            internal: false,
        }
    }

    /// The server itself failed (an op panicked): a
    /// [`ServerError`](ErrorKind::ServerError) that HTTP answers with `500`.
    pub(crate) fn internal(message: &str) -> Self {
        Self {
            internal: true,
            ..Self::server_error(message)
        }
    }

    /// Whether this is a failure of the server itself (an op that
    /// panicked, contained by [`Pipeline`](super::Pipeline)) rather than an
    /// error the op answered.
    pub fn is_internal(&self) -> bool {
        self.internal
    }

    /// A malformed request grid, filter or argument.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, message)
    }

    /// An unknown entity, watch or action.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    /// An op name that is not one of the ops the server knows.
    pub fn unknown_op(op: &str) -> Self {
        Self::new(ErrorKind::UnknownOp, format!("Unknown operation: {op}"))
    }

    /// A known op or feature this implementation does not support.
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unsupported, message)
    }

    /// The implementation failed while handling a valid request.
    pub fn server_error(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::ServerError, message)
    }

    /// The stable error kind reported to observers.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The stable snake_case name of [`kind`](Self::kind).
    pub fn as_str(&self) -> &'static str {
        self.kind.as_str()
    }

    /// The human-readable message (the error grid's `dis`).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The error grid sent on the wire: meta `{err: marker, dis: message,
    /// errKind: kind}` ([`ERROR_KIND_TAG`](crate::codec::ERROR_KIND_TAG)),
    /// no columns. Clients read the kind back with
    /// [`codec::error_kind`](crate::codec::error_kind).
    pub fn to_grid(&self) -> Grid {
        let mut grid = crate::codec::error_grid(&self.message);
        if let Some(meta) = grid.meta.as_mut() {
            meta.insert(
                crate::codec::ERROR_KIND_TAG.to_owned(),
                libhaystack::val::Value::make_str(self.kind.as_str()),
            );
        }
        grid
    }
}
