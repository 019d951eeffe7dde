//! Sets of half-open key ranges `[begin, end)`, kept disjoint and merged: the shape of
//! conflict sets, cleared ranges and unreadable ranges.

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
        if begin >= end {
            return;
        }
        let mut new_begin = begin.to_vec();
        let mut new_end = end.to_vec();
        // A range starting at or before `begin` that reaches it.
        if let Some((b, e)) = self
            .ranges
            .range::<[u8], ByteBounds>((Unbounded, Included(begin)))
            .next_back()
        {
            if e.as_slice() >= begin {
                new_begin = b.clone();
                if e.as_slice() > end {
                    new_end = e.clone();
                }
            }
        }
        // Ranges starting inside `[begin, end]` are absorbed.
        let absorbed: Vec<Vec<u8>> = self
            .ranges
            .range::<[u8], ByteBounds>((Included(new_begin.as_slice()), Included(end)))
            .map(|(b, _)| b.clone())
            .collect();
        for b in absorbed {
            if let Some(e) = self.ranges.remove(&b) {
                self.bound_bytes -= b.len() + e.len();
                if e > new_end {
                    new_end = e;
                }
            }
        }
        let begin_len = new_begin.len();
        self.bound_bytes += begin_len + new_end.len();
        if let Some(old_end) = self.ranges.insert(new_begin, new_end) {
            self.bound_bytes -= begin_len + old_end.len();
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

    /// Adds every range of `other`.
    pub(crate) fn extend(&mut self, other: &IntervalSet) {
        for (b, e) in other.iter() {
            self.insert(b, e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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

    proptest! {
        #[test]
        fn byte_size_is_the_sum_of_the_bounds(ranges in prop::collection::vec((prop::collection::vec(0u8..4, 0..4), prop::collection::vec(0u8..4, 0..4)), 0..16)) {
            let mut set = IntervalSet::new();
            for (b, e) in &ranges {
                set.insert(b, e);
                let recount: usize = set.iter().map(|(b, e)| b.len() + e.len()).sum();
                prop_assert_eq!(set.byte_size(), recount);
            }
        }

        #[test]
        fn matches_a_naive_model(ranges in prop::collection::vec((0u8..20, 0u8..20), 0..12), probes in prop::collection::vec((0u8..21, 0u8..21), 0..20)) {
            let mut set = IntervalSet::new();
            for &(b, e) in &ranges { set.insert(&[b], &[e]); }
            let covered = |k: u8| ranges.iter().any(|&(b, e)| b <= k && k < e);
            for k in 0..21u8 { prop_assert_eq!(set.contains(&[k]), covered(k)); }
            for &(b, e) in &probes {
                let naive = (b..e).any(covered);
                prop_assert_eq!(set.intersects(&[b], &[e]), naive);
            }
        }
    }
}
