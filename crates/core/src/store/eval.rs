//! Filter comparison semantics, and the reference evaluator.
//!
//! libhaystack 4.1 compares with `Value`'s `PartialOrd`, which orders values
//! of different kinds by variant, so a missing tag (`Null`) is "less than"
//! every number: `curVal < 3` would match entities without `curVal`, and
//! `curVal != 3` would too. The Haystack filter spec (and the reference
//! implementations) make a comparison against a missing tag false, and an
//! ordering between values of different kinds false. Every other term is
//! libhaystack's.
//!
//! Reads evaluate a compiled filter ([`super::query`]); [`matches`] is
//! libhaystack's own evaluation with [`compare_values`] for comparisons, the
//! reference the tests check compiled, indexed reads against.

#[cfg(test)]
use libhaystack::filter::eval::EvalContext;
use libhaystack::filter::nodes::CmpOp;
#[cfg(test)]
use libhaystack::filter::nodes::{And, Cmp, Or, Term};
#[cfg(test)]
use libhaystack::filter::{Eval, Filter, PathResolver};
use libhaystack::val::Value;

/// True when `filter` matches the context's dict.
#[cfg(test)]
pub(super) fn matches<R: PathResolver>(filter: &Filter, context: &EvalContext<'_, '_, R>) -> bool {
    or(&filter.or, context)
}

#[cfg(test)]
fn or<R: PathResolver>(or_node: &Or, context: &EvalContext<'_, '_, R>) -> bool {
    or_node.ands.iter().any(|and_node| and(and_node, context))
}

#[cfg(test)]
fn and<R: PathResolver>(and_node: &And, context: &EvalContext<'_, '_, R>) -> bool {
    and_node.terms.iter().all(|term| match term {
        Term::Parens(parens) => or(&parens.or, context),
        Term::Cmp(cmp) => compare(cmp, context),
        other => other.eval(context),
    })
}

#[cfg(test)]
fn compare<R: PathResolver>(cmp: &Cmp, context: &EvalContext<'_, '_, R>) -> bool {
    compare_values(&cmp.op, &context.resolve(&cmp.path), &cmp.value)
}

/// `actual <op> expected`; a list matches when any item does (as in
/// libhaystack), unless `expected` is itself a list.
pub(super) fn compare_values(op: &CmpOp, actual: &Value, expected: &Value) -> bool {
    match actual {
        Value::Null => false,
        Value::List(items) if !expected.is_list() => {
            items.iter().any(|item| compare_values(op, item, expected))
        }
        _ => match op {
            CmpOp::Eq => actual == expected,
            CmpOp::NotEq => actual != expected,
            _ if std::mem::discriminant(actual) != std::mem::discriminant(expected) => false,
            CmpOp::LessThan => actual < expected,
            CmpOp::LessThanEq => actual <= expected,
            CmpOp::GreatThan => actual > expected,
            CmpOp::GreatThanEq => actual >= expected,
        },
    }
}

#[cfg(test)]
mod tests {
    use libhaystack::val::Number;

    use super::*;

    #[test]
    fn missing_and_other_kinds_never_compare() {
        let three = Value::from(Number::make(3.0));
        for op in [
            CmpOp::Eq,
            CmpOp::NotEq,
            CmpOp::LessThan,
            CmpOp::LessThanEq,
            CmpOp::GreatThan,
            CmpOp::GreatThanEq,
        ] {
            assert!(!compare_values(&op, &Value::Null, &three), "{op:?}");
        }
        let text = Value::make_str("a");
        assert!(!compare_values(&CmpOp::LessThan, &text, &three));
        assert!(!compare_values(&CmpOp::GreatThan, &text, &three));
        assert!(compare_values(&CmpOp::NotEq, &text, &three));
        assert!(compare_values(
            &CmpOp::LessThan,
            &Value::from(Number::make(2.0)),
            &three
        ));
    }
}
