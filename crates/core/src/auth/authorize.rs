use crate::observe::targets;
use std::sync::Arc;

use super::AuthError;
use super::users::{Principal, Role};
use crate::ops::Op;

/// Whether a request reads or changes server state.
///
/// Most ops have one access ([`Access::of_op`]); `pointWrite` has two: with
/// only an `id` it reads the priority array, with `level`/`val` it writes.
/// The transport that parsed the request knows which and passes it to
/// [`Authorizer::allows_access`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// Reads state: read, nav, hisRead, watches, the metadata ops, a
    /// pointWrite without `val`/`level`.
    Read,
    /// Changes state: hisWrite, pointWrite with a value, invokeAction.
    Write,
}

impl Access {
    /// The access an op needs by its name alone: `hisWrite`, `pointWrite`
    /// and `invokeAction` write; the other standard ops (`about`, `ops`,
    /// `formats`/`filetypes`, `close`, `read`, `nav`, `hisRead`, `watchSub`,
    /// `watchUnsub`, `watchPoll`, and Haystack 4's `defs`/`libs`) read. An op
    /// this list does not know is treated as a write, so a custom op is
    /// closed to readers until someone decides otherwise.
    pub fn of_op(op: &str) -> Access {
        match op.parse::<Op>() {
            Ok(op) => op.access(),
            Err(_) if matches!(op, "filetypes" | "defs" | "libs") => Access::Read,
            Err(_) => Access::Write,
        }
    }
}

/// Decides whether a principal may run an op. Transports call it after
/// authentication and before dispatch; a refusal is an error grid
/// (see [`AuthError::Forbidden`]).
pub trait Authorizer: Send + Sync {
    /// May `principal` run `op`, with the op's default access
    /// ([`Access::of_op`]; `pointWrite` counts as a write)?
    fn allows(&self, principal: &Principal, op: &str) -> bool;

    /// May `principal` run `op` with `access`? The default answers a
    /// read-only `pointWrite` (reading the priority array) as a `read`, and
    /// everything else as [`allows`](Self::allows).
    fn allows_access(&self, principal: &Principal, op: &str, access: Access) -> bool {
        match (op.parse::<Op>(), access) {
            (Ok(Op::PointWrite), Access::Read) => self.allows(principal, Op::Read.as_str()),
            _ => self.allows(principal, op),
        }
    }

    /// [`allows_access`](Self::allows_access) as a `Result`, with the
    /// haystack-py refusal message.
    fn check(&self, principal: &Principal, op: &str, access: Access) -> Result<(), AuthError> {
        if self.allows_access(principal, op, access) {
            Ok(())
        } else {
            log::debug!(target: targets::AUTH, "{:?} ({}) may not run {op}", principal.username, principal.role);
            Err(AuthError::Forbidden { op: op.to_owned() })
        }
    }
}

impl<T: Authorizer + ?Sized> Authorizer for Arc<T> {
    fn allows(&self, principal: &Principal, op: &str) -> bool {
        (**self).allows(principal, op)
    }

    fn allows_access(&self, principal: &Principal, op: &str, access: Access) -> bool {
        (**self).allows_access(principal, op, access)
    }
}

impl<T: Authorizer + ?Sized> Authorizer for Box<T> {
    fn allows(&self, principal: &Principal, op: &str) -> bool {
        (**self).allows(principal, op)
    }

    fn allows_access(&self, principal: &Principal, op: &str, access: Access) -> bool {
        (**self).allows_access(principal, op, access)
    }
}

/// Authorisation by [`Role`]:
///
/// | op | [`new`](Self::new) | [`haystack_py_compatible`](Self::haystack_py_compatible) |
/// | --- | --- | --- |
/// | about, ops, formats, read, nav, hisRead, pointWrite read | Reader | Reader |
/// | watchSub, watchUnsub, watchPoll, close | Reader | Operator |
/// | hisWrite, pointWrite write, invokeAction, unknown ops | Operator | Operator |
///
/// Watches only read current values, and a read-only dashboard that cannot
/// watch is of little use, so by default a Reader may watch (and close its
/// session). haystack-py (docs/protocol.md 2.5) counts watch ops and `close` as
/// writes; [`haystack_py_compatible`](Self::haystack_py_compatible) does the
/// same. Admin may do everything Operator may.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleAuthorizer {
    session_ops_role: Role,
}

impl RoleAuthorizer {
    /// Readers may read and watch; writes need Operator.
    pub const fn new() -> Self {
        RoleAuthorizer {
            session_ops_role: Role::Reader,
        }
    }

    /// As haystack-py: watch ops and `close` need Operator too.
    pub const fn haystack_py_compatible() -> Self {
        RoleAuthorizer {
            session_ops_role: Role::Operator,
        }
    }

    /// The least role that may run `op` with `access`.
    pub fn required_role(&self, op: &str, access: Access) -> Role {
        let access = match op.parse::<Op>() {
            Ok(known) if known.is_watch() || known == Op::Close => return self.session_ops_role,
            Ok(Op::PointWrite) => access,
            _ => Access::of_op(op),
        };
        match access {
            Access::Read => Role::Reader,
            Access::Write => Role::Operator,
        }
    }
}

impl Default for RoleAuthorizer {
    fn default() -> Self {
        Self::new()
    }
}

impl Authorizer for RoleAuthorizer {
    fn allows(&self, principal: &Principal, op: &str) -> bool {
        self.allows_access(principal, op, Access::of_op(op))
    }

    fn allows_access(&self, principal: &Principal, op: &str, access: Access) -> bool {
        principal.role >= self.required_role(op, access)
    }
}

/// Lets every principal run every op (a server without roles).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AllowAll;

impl Authorizer for AllowAll {
    fn allows(&self, _principal: &Principal, _op: &str) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const READS: [&str; 6] = ["about", "ops", "formats", "read", "nav", "hisRead"];
    const WATCH: [&str; 4] = ["watchSub", "watchUnsub", "watchPoll", "close"];
    const WRITES: [&str; 3] = ["hisWrite", "pointWrite", "invokeAction"];

    #[test]
    fn reader_reads_and_watches_but_does_not_write() {
        let auth = RoleAuthorizer::new();
        let reader = Principal::new("r", Role::Reader);
        for op in READS.iter().chain(&WATCH) {
            assert!(auth.allows(&reader, op), "{op}");
        }
        for op in WRITES {
            assert!(!auth.allows(&reader, op), "{op}");
        }
        assert!(auth.allows_access(&reader, "pointWrite", Access::Read));
        assert!(!auth.allows_access(&reader, "pointWrite", Access::Write));
        assert!(!auth.allows(&reader, "customOp"));
        assert_eq!(
            auth.check(&reader, "hisWrite", Access::Write),
            Err(AuthError::Forbidden {
                op: "hisWrite".into()
            })
        );
    }

    #[test]
    fn operator_and_admin_do_everything() {
        let auth = RoleAuthorizer::new();
        for role in [Role::Operator, Role::Admin] {
            let p = Principal::new("o", role);
            for op in READS.iter().chain(&WATCH).chain(&WRITES) {
                assert!(auth.allows(&p, op), "{op}");
            }
        }
    }

    #[test]
    fn haystack_py_mode_closes_watches_to_readers() {
        let auth = RoleAuthorizer::haystack_py_compatible();
        let reader = Principal::new("r", Role::Reader);
        for op in WATCH {
            assert!(!auth.allows(&reader, op), "{op}");
            assert!(auth.allows(&Principal::new("o", Role::Operator), op));
        }
        assert!(auth.allows(&reader, "read"));
    }

    #[test]
    fn default_allows_access_maps_point_write_read_to_read() {
        struct ReadOnly;
        impl Authorizer for ReadOnly {
            fn allows(&self, _: &Principal, op: &str) -> bool {
                op == "read"
            }
        }
        let p = Principal::new("x", Role::Reader);
        let boxed: Box<dyn Authorizer> = Box::new(ReadOnly);
        assert!(boxed.allows_access(&p, "pointWrite", Access::Read));
        assert!(!boxed.allows_access(&p, "pointWrite", Access::Write));
        assert!(Arc::new(AllowAll).allows(&p, "invokeAction"));
    }
}
