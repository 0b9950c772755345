//! Filter plans over the indexes: which slots may match, and whether they
//! all do.

use std::borrow::Cow;
use std::fmt::Write;
use std::sync::Arc;

use libhaystack::filter::nodes::CmpOp;
use libhaystack::val::{Dict, Value};

use super::TagIndex;
use super::ordered::orders;
use super::sets::{Meet, difference, intersection, union_all};
use crate::store::query::Node;

/// The end of a path term: `has`, or a comparison with a value.
#[derive(Debug, Clone, Copy)]
enum Leaf<'f> {
    Has,
    Cmp(&'f CmpOp, &'f Value),
}

/// Slots a filter (or a part of one) may match.
#[derive(Debug, Clone, PartialEq)]
pub(in crate::store) enum Candidates<'i> {
    /// Every entity.
    All,
    /// Only these (sorted).
    Only(Cow<'i, [u32]>),
    /// Every entity except these (sorted).
    Except(Cow<'i, [u32]>),
    /// The slots in every list of `all` (shortest first) and in no list of
    /// `none`: an `and`, walked lazily so that a limit ends it early.
    Meet {
        all: Vec<Cow<'i, [u32]>>,
        none: Vec<Cow<'i, [u32]>>,
    },
}

/// How to find the entities a filter matches.
#[derive(Debug, Clone, PartialEq)]
pub(in crate::store) struct Plan<'i> {
    pub(in crate::store) candidates: Candidates<'i>,
    /// Every candidate matches: no evaluation needed.
    pub(in crate::store) exact: bool,
}

impl<'i> Plan<'i> {
    fn new(candidates: Candidates<'i>, exact: bool) -> Self {
        Self { candidates, exact }
    }

    /// The candidate slots among `len` entities, in slot order.
    pub(in crate::store) fn slots(&self, len: usize) -> Box<dyn Iterator<Item = usize> + '_> {
        match &self.candidates {
            Candidates::All => Box::new(0..len),
            Candidates::Only(slots) => Box::new(slots.iter().map(|slot| *slot as usize)),
            Candidates::Except(excluded) => {
                let mut excluded = excluded.iter().map(|slot| *slot as usize).peekable();
                Box::new((0..len).filter(move |slot| {
                    while excluded.next_if(|next| next < slot).is_some() {}
                    excluded.next_if_eq(slot).is_none()
                }))
            }
            Candidates::Meet { all, none } => {
                Box::new(Meet::new(all, none).map(|slot| slot as usize))
            }
        }
    }

    /// How many candidates among `len` entities.
    pub(in crate::store) fn count(&self, len: usize) -> usize {
        match &self.candidates {
            Candidates::All => len,
            Candidates::Only(slots) => slots.len(),
            Candidates::Except(excluded) => len.saturating_sub(excluded.len()),
            Candidates::Meet { all, none } => Meet::new(all, none).count(),
        }
    }
}

impl TagIndex {
    /// Plan a compiled filter: each `and` meets its terms' postings from the
    /// shortest and subtracts its missing tags; each `or` unions. A term the
    /// indexes cannot answer exactly (a comparison of a kind that does not
    /// order, a path into dicts, `^def`…) narrows what it can and leaves the
    /// rest to evaluation.
    pub(in crate::store) fn plan<'i>(
        &'i self,
        node: &Node<'_>,
        entities: &[Arc<Dict>],
    ) -> Plan<'i> {
        match node {
            Node::Or(branches) => self.plan_or(branches, entities),
            Node::And(terms) => self.plan_and(terms, entities),
            Node::Has(path) => self.plan_path(path, Leaf::Has, entities),
            Node::Missing(path) if path.len() == 1 => Plan::new(
                Candidates::Except(Cow::Borrowed(self.postings(first(path)))),
                true,
            ),
            Node::Missing(_) | Node::Other(_) => Plan::new(Candidates::All, false),
            Node::Cmp { path, op, value } => self.plan_path(path, Leaf::Cmp(op, value), entities),
        }
    }

    /// The plan of `node` and of each of its parts, one line per node,
    /// indented by depth: what answers it and how many candidates it has
    /// among the store's `entities`.
    pub(in crate::store) fn explain(&self, node: &Node<'_>, entities: &[Arc<Dict>]) -> String {
        let mut out = String::new();
        self.explain_into(node, entities, 0, &mut out);
        out
    }

    fn explain_into(
        &self,
        node: &Node<'_>,
        entities: &[Arc<Dict>],
        depth: usize,
        out: &mut String,
    ) {
        if let Node::Or(children) | Node::And(children) = node {
            if let [single] = children.as_slice() {
                return self.explain_into(single, entities, depth, out);
            }
        }
        let plan = self.plan(node, entities);
        let source = match node {
            Node::Or(_) => "union",
            Node::And(_) => "intersection",
            Node::Has(path) | Node::Missing(path) if path.len() > 1 => "reverse refs",
            Node::Has(_) => "tag postings",
            Node::Missing(_) => "all but the tag postings",
            Node::Cmp { path, .. } if path.len() > 1 => "reverse refs",
            Node::Cmp {
                op: CmpOp::Eq,
                value,
                ..
            } if self.keyer.key(value).is_some() => "value postings",
            Node::Cmp { op, value, .. } if ordering_tag(node).is_some() && orders(value) => {
                "ordered values"
            }
            Node::Cmp { .. } => "tag postings",
            Node::Other(_) => "every entity",
        };
        let _ = writeln!(
            out,
            "{:indent$}{}: {source}, {} candidates, {}",
            "",
            describe(node),
            plan.count(entities.len()),
            if plan.exact { "exact" } else { "evaluated" },
            indent = depth * 2,
        );
        if let Node::Or(children) | Node::And(children) = node {
            for child in children {
                self.explain_into(child, entities, depth + 1, out);
            }
        }
    }

    /// Plan `path` ending in `leaf`. On one tag: the tag's postings (exact
    /// for `has`), the value's for an equality (exact), the ordered values
    /// in range for an ordering; any other comparison needs the tag (one
    /// against a missing tag is false). On `tag->rest`: the entities whose
    /// `tag` names an entity that `rest` may match (the value postings of
    /// each one's id, the reverse of the Ref), or holds a dict (or a list),
    /// unless the targets outnumber the entities with the tag twice.
    fn plan_path<'i>(
        &'i self,
        path: &[String],
        leaf: Leaf<'_>,
        entities: &[Arc<Dict>],
    ) -> Plan<'i> {
        let [tag, rest @ ..] = path else {
            return Plan::new(Candidates::All, false);
        };
        let with_tag = || Plan::new(Candidates::Only(Cow::Borrowed(self.postings(tag))), false);
        if rest.is_empty() {
            return match leaf {
                Leaf::Has => Plan::new(Candidates::Only(Cow::Borrowed(self.postings(tag))), true),
                Leaf::Cmp(CmpOp::Eq, value) => match self.equal(tag, value, entities) {
                    Some((slots, exact)) => {
                        Plan::new(Candidates::Only(Cow::Borrowed(slots)), exact)
                    }
                    None => with_tag(),
                },
                Leaf::Cmp(op, value) => match self
                    .tags
                    .get(tag.as_str())
                    .and_then(|entry| entry.ordered.range(op, value))
                {
                    Some((slots, exact)) => Plan::new(Candidates::Only(Cow::Owned(slots)), exact),
                    None => with_tag(),
                },
            };
        }
        let Some(entry) = self.tags.get(tag.as_str()) else {
            return Plan::new(Candidates::Only(Cow::Borrowed(&[])), true);
        };
        let targets = self.plan_path(rest, leaf, entities);
        let Some(slots) = into_list(targets.candidates) else {
            return with_tag();
        };
        // A lookup per target costs less than evaluating a candidate.
        if slots.len() >= 2 * entry.slots.len() {
            return with_tag();
        }
        // Exact when every target matches, every source found holds a Ref
        // to one (no key mixed) and no source holds a dict or a list.
        let mut exact = targets.exact && entry.containers.is_empty();
        let mut sources: Vec<Cow<'i, [u32]>> = Vec::with_capacity(slots.len() + 1);
        sources.push(Cow::Borrowed(entry.containers.as_slice()));
        for target in slots.iter() {
            let id = entities
                .get(*target as usize)
                .and_then(|entity| entity.get("id"));
            if let Some(id @ Value::Ref(_)) = id {
                if let Some((slots, slots_exact)) = self.equal_in(entry, tag, id, entities) {
                    exact &= slots_exact;
                    sources.push(Cow::Borrowed(slots));
                }
            }
        }
        Plan::new(Candidates::Only(union_all(sources)), exact)
    }

    fn plan_and<'i>(&'i self, terms: &[Node<'_>], entities: &[Arc<Dict>]) -> Plan<'i> {
        let mut all: Vec<Cow<'i, [u32]>> = Vec::new();
        let mut none: Vec<Cow<'i, [u32]>> = Vec::new();
        let mut exact = true;
        // Orderings last: a range may hold most of the tag's entities, and a
        // few candidates are cheaper to evaluate than a range to collect.
        let (ranges, others): (Vec<&Node<'_>>, Vec<&Node<'_>>) =
            terms.iter().partition(|term| ordering_tag(term).is_some());
        for term in others.into_iter().chain(ranges) {
            if let Some(tag) = ordering_tag(term) {
                let fewest = all.iter().map(|slots| slots.len()).min();
                if fewest.is_some_and(|fewest| fewest * 32 <= self.postings(tag).len()) {
                    exact = false;
                    continue;
                }
            }
            let plan = self.plan(term, entities);
            exact &= plan.exact;
            match plan.candidates {
                Candidates::All => {}
                Candidates::Only(slots) => {
                    if slots.is_empty() {
                        return Plan::new(Candidates::Only(slots), true);
                    }
                    all.push(slots);
                }
                Candidates::Except(slots) => none.push(slots),
                Candidates::Meet {
                    all: more_all,
                    none: more_none,
                } => {
                    all.extend(more_all);
                    none.extend(more_none);
                }
            }
        }
        all.sort_by_key(|slots| slots.len());
        let candidates = match (all.len(), none.len()) {
            (0, 0) => Candidates::All,
            (0, _) => Candidates::Except(union_all(none)),
            (1, 0) => Candidates::Only(all.swap_remove(0)),
            _ => Candidates::Meet { all, none },
        };
        Plan::new(candidates, exact)
    }

    fn plan_or<'i>(&'i self, branches: &[Node<'_>], entities: &[Arc<Dict>]) -> Plan<'i> {
        if let [single] = branches {
            return self.plan(single, entities);
        }
        let mut only: Vec<Cow<'i, [u32]>> = Vec::new();
        let mut except: Option<Cow<'i, [u32]>> = None;
        let mut exact = true;
        for branch in branches {
            let plan = self.plan(branch, entities);
            exact &= plan.exact;
            match plan.candidates {
                // An exact `All` branch matches everything.
                Candidates::All => return Plan::new(Candidates::All, plan.exact),
                // (all but A) or (all but B) = all but (A and B)
                Candidates::Except(slots) => {
                    except = Some(match except {
                        None => slots,
                        Some(previous) => Cow::Owned(intersection(&previous, &slots)),
                    });
                }
                candidates => only.extend(into_list(candidates)),
            }
        }
        let only = union_all(only);
        match except {
            // (all but A) or B = all but (A without B)
            Some(excluded) => Plan::new(
                Candidates::Except(Cow::Owned(difference(&excluded, &only))),
                exact,
            ),
            None => Plan::new(Candidates::Only(only), exact),
        }
    }
}

/// The tag of a `tag < value` (or `<=`, `>`, `>=`) term.
fn ordering_tag<'n>(term: &'n Node<'_>) -> Option<&'n str> {
    match term {
        Node::Cmp {
            path,
            op: CmpOp::LessThan | CmpOp::LessThanEq | CmpOp::GreatThan | CmpOp::GreatThanEq,
            ..
        } => match path.as_slice() {
            [tag] => Some(tag),
            _ => None,
        },
        _ => None,
    }
}

/// The sorted slots of `Only` or `Meet` candidates; `None` for the others.
fn into_list(candidates: Candidates<'_>) -> Option<Cow<'_, [u32]>> {
    match candidates {
        Candidates::Only(slots) => Some(slots),
        Candidates::Meet { all, none } => Some(Cow::Owned(Meet::new(&all, &none).collect())),
        Candidates::All | Candidates::Except(_) => None,
    }
}

/// One node as filter text (without its children).
fn describe(node: &Node<'_>) -> String {
    match node {
        Node::Or(_) => "or".to_owned(),
        Node::And(_) => "and".to_owned(),
        Node::Has(path) => path.join("->"),
        Node::Missing(path) => format!("not {}", path.join("->")),
        Node::Cmp { path, op, value } => {
            let op = match op {
                CmpOp::Eq => "==",
                CmpOp::NotEq => "!=",
                CmpOp::LessThan => "<",
                CmpOp::LessThanEq => "<=",
                CmpOp::GreatThan => ">",
                CmpOp::GreatThanEq => ">=",
            };
            format!("{} {op} {value}", path.join("->"))
        }
        Node::Other(term) => term.to_string(),
    }
}

fn first(path: &[String]) -> &str {
    path.first().map_or("", String::as_str)
}
