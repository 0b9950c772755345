//! The tag index (tag name → sorted entity slots) and filter planning over it.

use std::collections::HashMap;

use libhaystack::filter::nodes::{And, CmpOp, Or, Term};
use libhaystack::filter::path::Path;
use libhaystack::filter::{Filter, PathResolver};
use libhaystack::val::{Dict, Ref, Value};

/// Tag name → sorted slots of the entities that have the tag (any non-null value).
#[derive(Debug, Default)]
pub(super) struct TagIndex {
    postings: HashMap<String, Vec<u32>>,
}

/// How to find the entities a filter may match.
#[derive(Debug, PartialEq)]
pub(super) enum Plan {
    /// The filter requires no indexed tag: test every entity.
    Scan,
    /// Only these slots (sorted) can match; `exact` when every one of them
    /// matches without evaluating the filter.
    Candidates { slots: Vec<u32>, exact: bool },
}

impl TagIndex {
    pub(super) fn add(&mut self, slot: u32, entity: &Dict) {
        for (name, value) in entity.iter() {
            if value.is_null() {
                continue;
            }
            let postings = self.postings.entry(name.clone()).or_default();
            if let Err(position) = postings.binary_search(&slot) {
                postings.insert(position, slot);
            }
        }
    }

    pub(super) fn remove(&mut self, slot: u32, entity: &Dict) {
        for (name, _) in entity.iter() {
            if let Some(postings) = self.postings.get_mut(name) {
                if let Ok(position) = postings.binary_search(&slot) {
                    postings.remove(position);
                }
                if postings.is_empty() {
                    self.postings.remove(name);
                }
            }
        }
    }

    pub(super) fn postings(&self, tag: &str) -> &[u32] {
        self.postings.get(tag).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Plan a filter: each `and` branch needs its required tags (the first
    /// segment of a `has` or `==` path); an `or` unions its branches. A branch
    /// with no required tag makes the whole filter a scan.
    pub(super) fn plan(&self, filter: &Filter) -> Plan {
        match self.plan_or(&filter.or) {
            Some((slots, exact)) => Plan::Candidates { slots, exact },
            None => Plan::Scan,
        }
    }

    fn plan_or(&self, or: &Or) -> Option<(Vec<u32>, bool)> {
        let mut union: Vec<u32> = Vec::new();
        let mut exact = true;
        for and in &or.ands {
            let (slots, and_exact) = self.plan_and(and)?;
            exact &= and_exact;
            union = if union.is_empty() {
                slots
            } else {
                merge_union(&union, &slots)
            };
        }
        Some((union, exact))
    }

    fn plan_and(&self, and: &And) -> Option<(Vec<u32>, bool)> {
        let mut required: Vec<String> = Vec::new();
        let mut exact = true;
        let mut nested: Option<Vec<u32>> = None;
        for term in &and.terms {
            match term {
                Term::Has(has) if has.path.len() == 1 => required.push(first_segment(&has.path)),
                Term::Has(has) => {
                    required.push(first_segment(&has.path));
                    exact = false;
                }
                Term::Cmp(cmp) if cmp.op == CmpOp::Eq => {
                    required.push(first_segment(&cmp.path));
                    exact = false;
                }
                Term::Parens(parens) => match self.plan_or(&parens.or) {
                    Some((slots, parens_exact)) => {
                        exact &= parens_exact;
                        nested = Some(match nested {
                            None => slots,
                            Some(previous) => merge_intersection(&previous, &slots),
                        });
                    }
                    None => exact = false,
                },
                _ => exact = false,
            }
        }
        if required.is_empty() && nested.is_none() {
            return None;
        }
        let mut lists: Vec<&[u32]> = required.iter().map(|tag| self.postings(tag)).collect();
        lists.sort_by_key(|list| list.len());
        let mut slots = match (lists.first(), nested) {
            (Some(first), None) => first.to_vec(),
            (Some(first), Some(nested)) => merge_intersection(first, &nested),
            (None, Some(nested)) => nested,
            (None, None) => Vec::new(),
        };
        for list in lists.iter().skip(1) {
            if slots.is_empty() {
                break;
            }
            slots = merge_intersection(&slots, list);
        }
        Some((slots, exact))
    }
}

fn first_segment(path: &Path) -> String {
    path.iter()
        .next()
        .map(ToString::to_string)
        .unwrap_or_default()
}

fn merge_intersection(a: &[u32], b: &[u32]) -> Vec<u32> {
    let mut out = Vec::with_capacity(a.len().min(b.len()));
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

fn merge_union(a: &[u32], b: &[u32]) -> Vec<u32> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) if x < y => {
                out.push(*x);
                i += 1;
            }
            (Some(x), Some(y)) if x > y => {
                out.push(*y);
                j += 1;
            }
            (Some(x), Some(_)) => {
                out.push(*x);
                i += 1;
                j += 1;
            }
            (Some(x), None) => {
                out.push(*x);
                i += 1;
            }
            (None, Some(y)) => {
                out.push(*y);
                j += 1;
            }
            (None, None) => break,
        }
    }
    out
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn entity(tags: &[&str]) -> Dict {
        let mut dict = Dict::new();
        for tag in tags {
            dict.insert((*tag).to_owned(), Value::make_marker());
        }
        dict
    }

    fn index() -> TagIndex {
        let mut index = TagIndex::default();
        index.add(0, &entity(&["site"]));
        index.add(1, &entity(&["point", "temp"]));
        index.add(2, &entity(&["point", "temp", "sp"]));
        index.add(3, &entity(&["point", "flow"]));
        index
    }

    fn plan(text: &str) -> Plan {
        index().plan(&Filter::try_from(text).unwrap())
    }

    #[test]
    fn and_of_markers_is_an_exact_intersection() {
        assert_eq!(
            plan("point and temp"),
            Plan::Candidates {
                slots: vec![1, 2],
                exact: true
            }
        );
        assert_eq!(
            plan("point and nothing"),
            Plan::Candidates {
                slots: vec![],
                exact: true
            }
        );
    }

    #[test]
    fn or_unions_and_other_terms_need_evaluation() {
        assert_eq!(
            plan("site or flow"),
            Plan::Candidates {
                slots: vec![0, 3],
                exact: true
            }
        );
        assert_eq!(
            plan("point and not sp"),
            Plan::Candidates {
                slots: vec![1, 2, 3],
                exact: false
            }
        );
        assert_eq!(
            plan("point and (temp or flow)"),
            Plan::Candidates {
                slots: vec![1, 2, 3],
                exact: true
            }
        );
        assert_eq!(
            plan("equipRef->ahu"),
            Plan::Candidates {
                slots: vec![],
                exact: false
            }
        );
    }

    #[test]
    fn filters_without_a_required_tag_scan() {
        assert_eq!(plan("not point"), Plan::Scan);
        assert_eq!(plan("site or not point"), Plan::Scan);
        assert_eq!(plan("curVal < 3"), Plan::Scan);
    }

    #[test]
    fn remove_drops_postings() {
        let mut index = index();
        index.remove(2, &entity(&["point", "temp", "sp"]));
        assert_eq!(
            index.plan(&Filter::try_from("temp").unwrap()),
            Plan::Candidates {
                slots: vec![1],
                exact: true
            }
        );
    }
}
