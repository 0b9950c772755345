//! A filter compiled for the store: path segments as strings, evaluation by
//! reference (no path allocation, no value clone per entity).
//!
//! Semantics are those of [`eval`](super::eval) (libhaystack's, except that
//! a comparison against a missing tag or another kind is false); the
//! differential test in [`super::tests`] checks the two agree.

use libhaystack::defs::namespace::DEFAULT_NS;
use libhaystack::filter::Filter;
use libhaystack::filter::eval::EvalContext;
use libhaystack::filter::nodes::{And, CmpOp, Or, Term};
use libhaystack::filter::path::Path;
use libhaystack::filter::{Eval, PathResolver};
use libhaystack::val::{Dict, Ref, Value};

use super::eval::compare_values;

/// One node of a compiled filter.
#[derive(Debug)]
pub(super) enum Node<'f> {
    /// Any branch matches (a filter's top level, or parentheses).
    Or(Vec<Node<'f>>),
    /// Every term matches.
    And(Vec<Node<'f>>),
    /// The path resolves to a value.
    Has(Vec<String>),
    /// The path resolves to nothing.
    Missing(Vec<String>),
    /// `path op value`.
    Cmp {
        path: Vec<String>,
        op: &'f CmpOp,
        value: &'f Value,
    },
    /// `^def`, wildcard equality, relationships: libhaystack evaluates them.
    Other(&'f Term),
}

impl<'f> Node<'f> {
    /// Compile `filter`.
    pub(super) fn compile(filter: &'f Filter) -> Self {
        compile_or(&filter.or)
    }

    /// True when the node matches `entity`; `lookup` finds the entity a Ref names.
    pub(super) fn matches<'a, F>(&self, entity: &'a Dict, lookup: &F) -> bool
    where
        F: Fn(&str) -> Option<&'a Dict>,
    {
        match self {
            Node::Or(branches) => branches.iter().any(|node| node.matches(entity, lookup)),
            Node::And(terms) => terms.iter().all(|node| node.matches(entity, lookup)),
            Node::Has(path) => resolve(entity, path, lookup).is_some_and(Value::has_value),
            Node::Missing(path) => !resolve(entity, path, lookup).is_some_and(Value::has_value),
            Node::Cmp { path, op, value } => compare_values(
                op,
                resolve(entity, path, lookup).unwrap_or(&Value::Null),
                value,
            ),
            Node::Other(term) => {
                let resolver = RefResolver { lookup };
                term.eval(&EvalContext::make(entity, &DEFAULT_NS, &resolver))
            }
        }
    }
}

fn compile_or(or: &Or) -> Node<'_> {
    Node::Or(or.ands.iter().map(compile_and).collect())
}

fn compile_and(and: &And) -> Node<'_> {
    Node::And(and.terms.iter().map(compile_term).collect())
}

fn compile_term(term: &Term) -> Node<'_> {
    match term {
        Term::Parens(parens) => compile_or(&parens.or),
        Term::Has(has) => Node::Has(segments(&has.path)),
        Term::Missing(missing) => Node::Missing(segments(&missing.path)),
        Term::Cmp(cmp) => Node::Cmp {
            path: segments(&cmp.path),
            op: &cmp.op,
            value: &cmp.value,
        },
        other => Node::Other(other),
    }
}

fn segments(path: &Path) -> Vec<String> {
    path.iter().map(ToString::to_string).collect()
}

/// The value `path` names from `root`, following Refs (through `lookup`) and
/// nested dicts; `None` when any step is missing. As `RefResolver::resolve_for`.
pub(super) fn resolve<'a, F>(root: &'a Dict, path: &[String], lookup: &F) -> Option<&'a Value>
where
    F: Fn(&str) -> Option<&'a Dict>,
{
    let (first, rest) = path.split_first()?;
    let mut current = root.get(first)?;
    for segment in rest {
        let dict = match current {
            Value::Ref(id) => lookup(id.value())?,
            Value::Dict(dict) => dict,
            _ => return None,
        };
        current = dict.get(segment)?;
    }
    Some(current)
}

/// Resolves filter paths, following `->` through Refs to the entities they name.
pub(super) struct RefResolver<'a, F: Fn(&str) -> Option<&'a Dict>> {
    pub(super) lookup: F,
}

impl<'a, F: Fn(&str) -> Option<&'a Dict>> PathResolver for RefResolver<'a, F> {
    fn resolve_for(&self, root: &Dict, path: &Path) -> Value {
        let mut current: Option<&Value> = None;
        for (position, segment) in path.iter().enumerate() {
            let dict = if position == 0 {
                root
            } else {
                match current {
                    Some(Value::Ref(id)) => match (self.lookup)(id.value()) {
                        Some(dict) => dict,
                        None => return Value::Null,
                    },
                    Some(Value::Dict(dict)) => dict,
                    _ => return Value::Null,
                }
            };
            current = dict.get(&segment.to_string());
            if current.is_none() {
                return Value::Null;
            }
        }
        current.cloned().unwrap_or(Value::Null)
    }

    fn resolve(&self, _path: &Path) -> Value {
        // Evaluation always goes through `resolve_for` with the entity as root.
        Value::Null
    }

    fn resolve_ref(&self, reference: &Ref) -> Option<Dict> {
        (self.lookup)(reference.value()).cloned()
    }
}
