//! Sets of half-open key ranges `[begin, end)`, kept disjoint and merged: the shape of
//! conflict sets, cleared ranges and unreadable ranges.

use crate::kv::key_after;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::Bound::{self, Excluded, Included, Unbounded};

/// A `BTreeMap<Vec<u8>, _>` range over unsized byte-slice bounds.
pub(crate) type ByteBounds<'a> = (Bound<&'a [u8]>, Bound<&'a [u8]>);

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct IntervalSet {
    /// begin -> end, disjoint and non-adjacent.
    ranges: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Sum of the lengths of every bound, kept up to date so that the size check a
    /// transaction runs on every operation costs nothing.
    bound_bytes: usize,
}

impl IntervalSet {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.ranges.len()
    }

    /// Adds `[begin, end)`, merging with overlapping or touching ranges.
    pub(crate) fn insert(&mut self, begin: &[u8], end: &[u8]) {
        self.insert_cow(Cow::Borrowed(begin), Cow::Borrowed(end));
    }

    /// [`insert`](Self::insert) taking bounds the caller owns, so that they move into
    /// the set instead of being copied.
    pub(crate) fn insert_owned(&mut self, begin: Vec<u8>, end: Vec<u8>) {
        self.insert_cow(Cow::Owned(begin), Cow::Owned(end));
    }

    /// Adds the single key `key`: `[key, key\x00)`.
    pub(crate) fn insert_key(&mut self, key: &[u8]) {
        self.insert_cow(Cow::Borrowed(key), Cow::Owned(key_after(key)));
    }

    /// Adds `[begin, end)`, copying a borrowed bound only if it is stored. Allocates
    /// nothing when the set already covers the range.
    fn insert_cow(&mut self, begin: Cow<'_, [u8]>, end: Cow<'_, [u8]>) {
        if begin >= end {
            return;
        }
        // The range starting at or before `begin`: does it reach `begin`, or cover it all?
        let extends_previous = match self
            .ranges
            .range::<[u8], ByteBounds>((Unbounded, Included(&*begin)))
            .next_back()
        {
            Some((_, e)) if e.as_slice() >= &*end => return,
            Some((_, e)) => e.as_slice() >= &*begin,
            None => false,
        };
        // Ranges starting inside `(begin, end]` are absorbed; being disjoint and sorted,
        // the last one absorbed reaches furthest.
        let mut new_end = end;
        while let Some(b) = self
            .ranges
            .range::<[u8], ByteBounds>((Excluded(&*begin), Included(&*new_end)))
            .next()
            .map(|(b, _)| b.clone())
        {
            let e = self.ranges.remove(&b).expect("absorbed range");
            self.bound_bytes -= b.len() + e.len();
            if e.as_slice() > &*new_end {
                new_end = Cow::Owned(e);
            }
        }
        if extends_previous {
            let (_, e) = self
                .ranges
                .range_mut::<[u8], ByteBounds>((Unbounded, Included(&*begin)))
                .next_back()
                .expect("previous range");
            self.bound_bytes = self.bound_bytes - e.len() + new_end.len();
            *e = new_end.into_owned();
        } else {
            // No range starts at `begin` (it would have reached it), so nothing is replaced.
            self.bound_bytes += begin.len() + new_end.len();
            self.ranges.insert(begin.into_owned(), new_end.into_owned());
        }
    }

    /// Whether `key` lies in the set.
    pub(crate) fn contains(&self, key: &[u8]) -> bool {
        self.ranges
            .range::<[u8], ByteBounds>((Unbounded, Included(key)))
            .next_back()
            .is_some_and(|(_, e)| key < e.as_slice())
    }

    /// Whether `[begin, end)` overlaps the set.
    pub(crate) fn intersects(&self, begin: &[u8], end: &[u8]) -> bool {
        if begin >= end {
            return false;
        }
        self.ranges
            .range::<[u8], ByteBounds>((Unbounded, Excluded(end)))
            .next_back()
            .is_some_and(|(_, e)| e.as_slice() > begin)
    }

    /// Whether any range of `other` overlaps this set.
    pub(crate) fn intersects_set(&self, other: &IntervalSet) -> bool {
        let (small, large) = if self.len() <= other.len() {
            (self, other)
        } else {
            (other, self)
        };
        small.iter().any(|(b, e)| large.intersects(b, e))
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.ranges
            .iter()
            .map(|(b, e)| (b.as_slice(), e.as_slice()))
    }

    /// Bytes of all range bounds (what FoundationDB counts against the size limit).
    pub(crate) fn byte_size(&self) -> usize {
        self.bound_bytes
    }

    /// The parts of the set inside `[begin, end)`, in order.
    pub(crate) fn clipped<'a>(
        &'a self,
        begin: &'a [u8],
        end: &'a [u8],
    ) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + 'a {
        // An empty range has no parts (and a `BTreeMap` range must not be empty).
        let end = end.max(begin);
        let first = self
            .ranges
            .range::<[u8], ByteBounds>((Unbounded, Included(begin)))
            .next_back()
            .filter(|(_, e)| e.as_slice() > begin && begin < end);
        let rest = self
            .ranges
            .range::<[u8], ByteBounds>((Included(begin), Excluded(end)))
            .filter(move |(b, _)| b.as_slice() > begin);
        first
            .into_iter()
            .chain(rest)
            .map(move |(b, e)| (b.as_slice().max(begin), e.as_slice().min(end)))
            .filter(|(b, e)| b < e)
    }

    /// Adds every range of `other`, taking it over whole when this set is empty (as a
    /// batch's first request finds it) and otherwise inserting the smaller set's
    /// ranges into the larger one's, moving their bounds.
    pub(crate) fn absorb(&mut self, mut other: IntervalSet) {
        if other.ranges.len() > self.ranges.len() {
            std::mem::swap(self, &mut other);
        }
        for (b, e) in other.ranges {
            self.insert_owned(b, e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clipped_yields_the_parts_inside_a_range() {
        let mut set = IntervalSet::new();
        set.insert(b"a", b"c");
        set.insert(b"e", b"g");
        set.insert(b"x", b"z");
        let parts: Vec<_> = set.clipped(b"b", b"f").collect();
        assert_eq!(parts, vec![(&b"b"[..], &b"c"[..]), (&b"e"[..], &b"f"[..])]);
        assert_eq!(set.clipped(b"c", b"e").count(), 0);
        assert_eq!(set.clipped(b"a", b"zz").count(), 3);
        assert_eq!(set.clipped(b"b", b"b").count(), 0, "empty");
        assert_eq!(set.clipped(b"f", b"b").count(), 0, "inverted");
    }
    use proptest::prelude::*;

    #[test]
    fn merges_and_queries() {
        let mut s = IntervalSet::new();
        s.insert(b"b", b"d");
        s.insert(b"f", b"h");
        assert!(s.contains(b"b") && s.contains(b"c") && !s.contains(b"d") && !s.contains(b"a"));
        assert!(s.intersects(b"a", b"c") && !s.intersects(b"d", b"f") && s.intersects(b"e", b"g"));
        s.insert(b"c", b"g");
        assert_eq!(s.len(), 1);
        assert!(s.contains(b"g\xff") && !s.contains(b"h"));
        s.insert(b"h", b"i");
        assert_eq!(s.len(), 1, "touching ranges merge");
    }

    #[test]
    fn owned_and_key_inserts_merge_like_borrowed_ones() {
        let mut s = IntervalSet::new();
        s.insert_owned(b"b".to_vec(), b"d".to_vec());
        s.insert_key(b"d");
        assert_eq!(s.iter().collect::<Vec<_>>(), [(&b"b"[..], &b"d\x00"[..])]);
        s.insert_owned(b"a".to_vec(), b"c".to_vec());
        s.insert_owned(b"c".to_vec(), b"c\x01".to_vec());
        assert_eq!(s.iter().collect::<Vec<_>>(), [(&b"a"[..], &b"d\x00"[..])]);
        s.insert_owned(b"f".to_vec(), b"g".to_vec());
        s.insert_owned(b"c".to_vec(), b"f".to_vec());
        assert_eq!(s.iter().collect::<Vec<_>>(), [(&b"a"[..], &b"g"[..])]);
        assert_eq!(s.byte_size(), 2);
    }

    proptest! {
        #[test]
        fn byte_size_is_the_sum_of_the_bounds(ranges in prop::collection::vec((prop::collection::vec(0u8..4, 0..4), prop::collection::vec(0u8..4, 0..4)), 0..16)) {
            let mut set = IntervalSet::new();
            for (i, (b, e)) in ranges.iter().enumerate() {
                // Every way in: borrowed, owned, and single keys.
                match i % 3 {
                    0 => set.insert(b, e),
                    1 => set.insert_owned(b.clone(), e.clone()),
                    _ => set.insert_key(b),
                }
                let recount: usize = set.iter().map(|(b, e)| b.len() + e.len()).sum();
                prop_assert_eq!(set.byte_size(), recount);
            }
        }

        #[test]
        fn absorbing_a_set_inserts_its_ranges(
            left in prop::collection::vec((prop::collection::vec(0u8..4, 0..3), prop::collection::vec(0u8..4, 0..3)), 0..8),
            right in prop::collection::vec((prop::collection::vec(0u8..4, 0..3), prop::collection::vec(0u8..4, 0..3)), 0..8),
        ) {
            let build = |ranges: &[(Vec<u8>, Vec<u8>)]| {
                let mut set = IntervalSet::new();
                for (b, e) in ranges { set.insert(b, e) }
                set
            };
            let mut absorbed = build(&left);
            absorbed.absorb(build(&right));
            let mut inserted = build(&left);
            for (b, e) in &right { inserted.insert(b, e) }
            prop_assert_eq!(&absorbed, &inserted);
            let recount: usize = absorbed.iter().map(|(b, e)| b.len() + e.len()).sum();
            prop_assert_eq!(absorbed.byte_size(), recount);
        }

        #[test]
        fn matches_a_naive_model(ranges in prop::collection::vec((0u8..20, 0u8..20), 0..12), probes in prop::collection::vec((0u8..21, 0u8..21), 0..20)) {
            let mut set = IntervalSet::new();
            for (i, &(b, e)) in ranges.iter().enumerate() {
                if i % 2 == 0 { set.insert(&[b], &[e]) } else { set.insert_owned(vec![b], vec![e]) }
            }
            let covered = |k: u8| ranges.iter().any(|&(b, e)| b <= k && k < e);
            for k in 0..21u8 { prop_assert_eq!(set.contains(&[k]), covered(k)); }
            for &(b, e) in &probes {
                let naive = (b..e).any(covered);
                prop_assert_eq!(set.intersects(&[b], &[e]), naive);
            }
        }
    }
}
