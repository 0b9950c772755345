//! [`Pipeline`]: what both servers do with a decoded request, so that
//! authorisation, the refusal, panic containment and the outcome an
//! observer sees are the same on every transport. Each server keeps only
//! its framing (and its session bookkeeping: token revocation, watches).

use crate::observe::targets;
use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_util::FutureExt;
use tracing::Instrument;

use super::{HaystackOps, OpError, OpRequest, Reply, dispatch_as};
use crate::auth::{Authorizer, Principal};
use crate::observe::ErrorKind;

/// The message of the error answered for an op that panicked.
const PANIC_MESSAGE: &str = "Internal server error";

/// The request pipeline of a server: [`authorize`](Self::authorize), then
/// [`dispatch`](Self::dispatch) (between the two a server does its own
/// session bookkeeping: watch limits, token revocation), then
/// [`outcome_kind`] of the result for the observer.
#[derive(Clone)]
pub struct Pipeline {
    ops: Arc<dyn HaystackOps>,
    authorizer: Arc<dyn Authorizer>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline").finish_non_exhaustive()
    }
}

impl Pipeline {
    /// A pipeline running `ops`, refusing what `authorizer` does not allow.
    pub fn new(ops: Arc<dyn HaystackOps>, authorizer: Arc<dyn Authorizer>) -> Self {
        Pipeline { ops, authorizer }
    }

    /// The ops it runs.
    pub fn ops(&self) -> &Arc<dyn HaystackOps> {
        &self.ops
    }

    /// Whether `principal` may run `op` with `request`; `None` (an anonymous
    /// client: no auth, or a static token) may run everything. A refusal is
    /// a [`Forbidden`](ErrorKind::Forbidden) error with the reference's
    /// message (`Insufficient permissions: …`).
    pub fn authorize(
        &self,
        op: &str,
        request: &OpRequest,
        principal: Option<&Principal>,
    ) -> Result<(), OpError> {
        let Some(principal) = principal else {
            return Ok(());
        };
        self.authorizer
            .check(principal, op, request.access(op))
            .map_err(|refusal| {
                log::info!(
                    target: targets::AUTH,
                    "user {} ({:?}) may not run {op}",
                    principal.username,
                    principal.role
                );
                OpError::new(refusal.kind(), refusal.to_string())
            })
    }

    /// Runs `op` on behalf of `user` ([`dispatch_as`]) in a
    /// [`haystack.dispatch`](crate::spans::DISPATCH) span (DEBUG), a child
    /// of the request's. A panic of the ops is contained: it is logged and
    /// answered as an [internal](OpError::is_internal)
    /// [`ServerError`](ErrorKind::ServerError), and the caller (a
    /// connection's reader task, an HTTP handler) carries on.
    pub async fn dispatch(
        &self,
        op: &str,
        request: OpRequest,
        user: Option<&str>,
    ) -> Result<Reply, OpError> {
        // Unwind safety: the ops are shared behind an `Arc` and must be
        // `Sync`, so whatever a panic leaves half-done they guard with their
        // own locks (a poisoned std lock, a parking_lot lock released on
        // unwind); this future owns nothing else that outlives the panic.
        let work =
            dispatch_as(&*self.ops, op, request, user).instrument(crate::spans::dispatch(op));
        AssertUnwindSafe(work)
            .catch_unwind()
            .await
            .unwrap_or_else(|panic| {
                log::error!(
                    target: targets::OPS,
                    "{op} panicked: {}",
                    panic_message(&*panic)
                );
                Err(OpError::internal(PANIC_MESSAGE))
            })
    }
}

/// How a request the pipeline ran ended, as its observer event names it:
/// `None` for a success (`on_request`), else the error type (`on_error`).
/// A reply that is itself an error grid counts as a
/// [`ServerError`](ErrorKind::ServerError).
pub fn outcome_kind(result: &Result<Reply, OpError>) -> Option<ErrorKind> {
    match result {
        Ok(reply) => reply.error_message().map(|_| ErrorKind::ServerError),
        Err(error) => Some(error.kind()),
    }
}

/// A panic's message, when it is a string.
fn panic_message(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("non-string panic payload")
}
