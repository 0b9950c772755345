//! Set operations on sorted slot lists.

use std::borrow::Cow;

pub(super) fn union_all(mut lists: Vec<Cow<'_, [u32]>>) -> Cow<'_, [u32]> {
    match lists.len() {
        0 => Cow::Owned(Vec::new()),
        1 => lists.swap_remove(0),
        _ => {
            let mut out: Vec<u32> = lists.iter().flat_map(|list| list.iter().copied()).collect();
            out.sort_unstable();
            out.dedup();
            Cow::Owned(out)
        }
    }
}

/// Sorted `a ∩ b`: a merge when the lengths are close, else a binary search
/// of the longer for each of the shorter's slots (galloping forward).
pub(super) fn intersection(a: &[u32], b: &[u32]) -> Vec<u32> {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let mut out = Vec::with_capacity(short.len());
    if long.len() / 16 > short.len() {
        let mut rest = long;
        for slot in short {
            match rest.binary_search(slot) {
                Ok(position) => {
                    out.push(*slot);
                    rest = &rest[position + 1..];
                }
                Err(position) => rest = &rest[position..],
            }
        }
        return out;
    }
    let (mut i, mut j) = (0, 0);
    while i < short.len() && j < long.len() {
        match short[i].cmp(&long[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(short[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

/// Sorted `a \ b`.
pub(super) fn difference(a: &[u32], b: &[u32]) -> Vec<u32> {
    let mut out = Vec::with_capacity(a.len());
    let mut j = 0;
    for slot in a {
        while j < b.len() && b[j] < *slot {
            j += 1;
        }
        if b.get(j) != Some(slot) {
            out.push(*slot);
        }
    }
    out
}

/// The slots of `all[0]` that are in every other list of `all` and in no
/// list of `none`, in order, found lazily so that a limit stops the walk.
/// `all[0]` should be the shortest: every other list is only searched.
#[derive(Debug)]
pub(super) struct Meet<'a> {
    base: std::slice::Iter<'a, u32>,
    all: Vec<&'a [u32]>,
    none: Vec<&'a [u32]>,
}

impl<'a> Meet<'a> {
    pub(super) fn new(all: &'a [Cow<'a, [u32]>], none: &'a [Cow<'a, [u32]>]) -> Self {
        let (base, all) = all
            .split_first()
            .map_or((&[][..], &[][..]), |(base, all)| (base.as_ref(), all));
        Self {
            base: base.iter(),
            all: all.iter().map(AsRef::as_ref).collect(),
            none: none.iter().map(AsRef::as_ref).collect(),
        }
    }
}

impl Iterator for Meet<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        'slots: for slot in self.base.by_ref() {
            for list in &mut self.all {
                *list = seek(list, *slot);
                match list.first() {
                    None => return None,
                    Some(first) if first != slot => continue 'slots,
                    Some(_) => {}
                }
            }
            for list in &mut self.none {
                *list = seek(list, *slot);
                if list.first() == Some(slot) {
                    continue 'slots;
                }
            }
            return Some(*slot);
        }
        None
    }
}

/// The tail of sorted `list` from its first slot `>= slot`: a galloping
/// search, so walking a list forward costs the log of each gap.
fn seek(list: &[u32], slot: u32) -> &[u32] {
    let mut step = 1;
    let mut end = 0;
    while end < list.len() && list[end] < slot {
        end += step;
        step *= 2;
    }
    let start = end - step / 2;
    let end = end.min(list.len());
    let offset = list[start..end].partition_point(|held| *held < slot);
    &list[start + offset..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seek_finds_the_first_slot_not_below() {
        let list: Vec<u32> = (0..100).map(|n| n * 3).collect();
        for slot in 0..310 {
            let expected = list
                .iter()
                .position(|held| *held >= slot)
                .unwrap_or(list.len());
            assert_eq!(seek(&list, slot), &list[expected..], "{slot}");
        }
        assert!(seek(&[], 5).is_empty());
    }

    #[test]
    fn meet_is_the_intersection_minus_the_exclusions() {
        let evens: Vec<u32> = (0..200).filter(|n| n % 2 == 0).collect();
        let threes: Vec<u32> = (0..200).filter(|n| n % 3 == 0).collect();
        let fives: Vec<u32> = (0..200).filter(|n| n % 5 == 0).collect();
        let all = [Cow::Borrowed(&threes[..]), Cow::Borrowed(&evens[..])];
        let none = [Cow::Borrowed(&fives[..])];
        let met: Vec<u32> = Meet::new(&all, &none).collect();
        let expected: Vec<u32> = (0..200).filter(|n| n % 6 == 0 && n % 5 != 0).collect();
        assert_eq!(met, expected);
        assert_eq!(met, difference(&intersection(&threes, &evens), &fives));
        assert_eq!(Meet::new(&all, &none).take(2).collect::<Vec<_>>(), [6, 12]);
        assert_eq!(Meet::new(&[], &none).next(), None);
    }
}
