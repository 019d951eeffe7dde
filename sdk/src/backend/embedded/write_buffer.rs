//! A transaction's buffered writes: the mutation log sent at commit, the view that
//! gives read-your-writes, and the write-conflict set.

use super::atomic;
use super::intervals::{ByteBounds, IntervalSet};
use crate::kv::{key_after, FdbError, MutationType};
use std::collections::{btree_map, BTreeMap};
use std::ops::Bound::{Excluded, Included};

/// One buffered write, applied in order at commit.
#[derive(Clone, Debug)]
pub(crate) enum Mutation {
    Set(Vec<u8>, Vec<u8>),
    Clear(Vec<u8>),
    ClearRange(Vec<u8>, Vec<u8>),
    Atomic(MutationType, Vec<u8>, Vec<u8>),
}

/// What this transaction knows about one key it wrote.
#[derive(Clone, Debug)]
pub(crate) enum Entry {
    /// The value no longer depends on storage (`None`: cleared).
    Known(Option<Vec<u8>>),
    /// Atomic mutations stacked on the stored value, applied when read.
    Pending(Vec<(MutationType, Vec<u8>)>),
    /// Holds a versionstamp not assigned until commit.
    Unreadable,
}

/// How a read of one key must be answered.
pub(crate) enum Lookup<'a> {
    /// Entirely from the buffer; no storage read, no read conflict.
    Local(Option<&'a [u8]>),
    /// Read storage and apply these mutations.
    Stored(&'a [(MutationType, Vec<u8>)]),
    Unreadable,
}

#[derive(Default)]
pub(crate) struct WriteBuffer {
    entries: BTreeMap<Vec<u8>, Entry>,
    cleared: IntervalSet,
    unreadable: IntervalSet,
    pub(crate) mutations: Vec<Mutation>,
    pub(crate) write_conflicts: IntervalSet,
    /// Bytes of keys, values and parameters written (FoundationDB's size accounting).
    pub(crate) mutation_bytes: usize,
}

const NO_MUTATIONS: &[(MutationType, Vec<u8>)] = &[];

impl WriteBuffer {
    pub(crate) fn is_empty(&self) -> bool {
        self.mutations.is_empty() && self.write_conflicts.is_empty()
    }

    pub(crate) fn set(&mut self, key: &[u8], value: &[u8]) {
        self.entries
            .insert(key.to_vec(), Entry::Known(Some(value.to_vec())));
        self.write_conflicts.insert_key(key);
        self.mutation_bytes += key.len() + value.len();
        self.mutations
            .push(Mutation::Set(key.to_vec(), value.to_vec()));
    }

    pub(crate) fn clear(&mut self, key: &[u8]) {
        self.entries.insert(key.to_vec(), Entry::Known(None));
        self.write_conflicts.insert_key(key);
        self.mutation_bytes += key.len();
        self.mutations.push(Mutation::Clear(key.to_vec()));
    }

    pub(crate) fn clear_range(&mut self, begin: &[u8], end: &[u8]) {
        if begin >= end {
            return;
        }
        let inside: Vec<Vec<u8>> = self
            .entries
            .range::<[u8], ByteBounds>((Included(begin), Excluded(end)))
            .map(|(k, _)| k.clone())
            .collect();
        for k in inside {
            self.entries.remove(&k);
        }
        self.cleared.insert(begin, end);
        self.write_conflicts.insert(begin, end);
        self.mutation_bytes += begin.len() + end.len();
        self.mutations
            .push(Mutation::ClearRange(begin.to_vec(), end.to_vec()));
    }

    /// Buffers an atomic mutation. Versionstamp templates must already be validated.
    /// `read_version`, once the transaction has one, bounds what a versionstamped key
    /// can become: its commit comes after it.
    pub(crate) fn atomic(
        &mut self,
        key: &[u8],
        param: &[u8],
        op: MutationType,
        read_version: Option<u64>,
    ) -> Result<(), FdbError> {
        match op {
            MutationType::SetVersionstampedKey => {
                // Its write conflict is the filled-in key, added at commit.
                let (low, high) = versionstamp_key_range(key, read_version)?;
                self.unreadable.insert(&low, &high);
            }
            MutationType::SetVersionstampedValue => {
                atomic::versionstamp_offset(param)?;
                self.entries.insert(key.to_vec(), Entry::Unreadable);
                self.write_conflicts.insert_key(key);
            }
            _ => {
                let next = match self.entries.remove(key) {
                    Some(Entry::Known(v)) => Entry::Known(atomic::apply(op, v.as_deref(), param)),
                    Some(Entry::Pending(mut ops)) => {
                        ops.push((op, param.to_vec()));
                        Entry::Pending(ops)
                    }
                    Some(Entry::Unreadable) => Entry::Unreadable,
                    None if self.cleared.contains(key) => {
                        Entry::Known(atomic::apply(op, None, param))
                    }
                    None => Entry::Pending(vec![(op, param.to_vec())]),
                };
                self.entries.insert(key.to_vec(), next);
                self.write_conflicts.insert_key(key);
            }
        }
        self.mutation_bytes += key.len() + param.len();
        self.mutations
            .push(Mutation::Atomic(op, key.to_vec(), param.to_vec()));
        Ok(())
    }

    /// How to answer a read of `key`.
    pub(crate) fn lookup(&self, key: &[u8]) -> Lookup<'_> {
        if self.mutations.is_empty() {
            // Nothing written (reads far outnumber writes): storage answers.
            return Lookup::Stored(NO_MUTATIONS);
        }
        if self.unreadable.contains(key) {
            return Lookup::Unreadable;
        }
        match self.entries.get(key) {
            Some(Entry::Known(v)) => Lookup::Local(v.as_deref()),
            Some(Entry::Pending(ops)) => Lookup::Stored(ops),
            Some(Entry::Unreadable) => Lookup::Unreadable,
            None if self.cleared.contains(key) => Lookup::Local(None),
            None => Lookup::Stored(NO_MUTATIONS),
        }
    }

    /// The parts of `[begin, end)` that a versionstamped key of this transaction may
    /// become, in order.
    pub(crate) fn unreadable_spans<'a>(
        &'a self,
        begin: &'a [u8],
        end: &'a [u8],
    ) -> impl DoubleEndedIterator<Item = (&'a [u8], &'a [u8])> + 'a {
        self.unreadable
            .clipped(begin, end)
            .collect::<Vec<_>>()
            .into_iter()
    }

    /// Whether this transaction wrote, cleared or versionstamped anything in `[begin, end)`.
    pub(crate) fn touches(&self, begin: &[u8], end: &[u8]) -> bool {
        begin < end
            && (self.cleared.intersects(begin, end)
                || self.unreadable.intersects(begin, end)
                || self
                    .entries
                    .range::<[u8], ByteBounds>((Included(begin), Excluded(end)))
                    .next()
                    .is_some())
    }

    /// Calls `f` with the parts of `[begin, end)` whose reads depend on storage, in
    /// order: all of it but what this transaction set or cleared. FoundationDB's RYW
    /// adds read conflicts only there (`updateConflictMap`): a read of a key this
    /// transaction set learns nothing from storage, while a key under atomic ops still
    /// depends on what is stored. A versionstamped value's key is kept too, on the
    /// safe side (one more conflict at most).
    pub(crate) fn storage_dependent(
        &self,
        begin: &[u8],
        end: &[u8],
        mut f: impl FnMut(&[u8], &[u8]),
    ) {
        let mut independent = IntervalSet::new();
        for (b, e) in self.cleared.clipped(begin, end) {
            independent.insert(b, e);
        }
        let entries = self.entries_in(begin, end);
        for (k, entry) in entries.clone() {
            if matches!(entry, Entry::Known(_)) {
                independent.insert_key(k);
            }
        }
        let mut from = begin;
        for (b, e) in independent.iter() {
            let e = e.min(end);
            if from < b {
                f(from, b);
            }
            from = e;
        }
        if from < end {
            f(from, end);
        }
        // Written over a clear, yet not known: still read from storage at commit.
        for (k, entry) in entries {
            if !matches!(entry, Entry::Known(_)) && self.cleared.contains(k) {
                f(k, &key_after(k));
            }
        }
    }

    /// Whether storage's value for `key` is hidden by a clear in this transaction.
    pub(crate) fn is_cleared(&self, key: &[u8]) -> bool {
        self.cleared.contains(key)
    }

    /// Buffered entries in `[begin, end)`, in key order (`next_back` for a reverse scan).
    pub(crate) fn entries_in(
        &self,
        begin: &[u8],
        end: &[u8],
    ) -> btree_map::Range<'_, Vec<u8>, Entry> {
        // An empty (or inverted) range yields nothing, like storage's.
        let end = end.max(begin);
        self.entries
            .range::<[u8], ByteBounds>((Included(begin), Excluded(end)))
    }
}

/// The range of keys a versionstamped-key template can become once its stamp is filled
/// in: from the stamp `(read version + 1, 0)` (zeros before a read version), as
/// FoundationDB's `getVersionstampKeyRange`, to all-`ff`, capped at `\xff`.
fn versionstamp_key_range(
    template: &[u8],
    read_version: Option<u64>,
) -> Result<(Vec<u8>, Vec<u8>), FdbError> {
    let mut lowest = [0u8; 10];
    if let Some(v) = read_version {
        lowest[..8].copy_from_slice(&v.saturating_add(1).to_be_bytes());
    }
    let low = atomic::fill_versionstamp(template, &lowest)?;
    let high = atomic::fill_versionstamp(template, &[0xffu8; 10])?;
    Ok((low, key_after(&high).min(b"\xff".to_vec())))
}

/// Applies buffered mutations to a stored value.
pub(crate) fn apply_pending(
    mut value: Option<Vec<u8>>,
    ops: &[(MutationType, Vec<u8>)],
) -> Option<Vec<u8>> {
    for (op, param) in ops {
        value = atomic::apply(*op, value.as_deref(), param);
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// One write over a one-byte key space.
    #[derive(Clone, Debug)]
    enum Op {
        Set(u8),
        Clear(u8),
        ClearRange(u8, u8),
        Add(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u8..16).prop_map(Op::Set),
            (0u8..16).prop_map(Op::Clear),
            (0u8..16, 0u8..16).prop_map(|(a, b)| Op::ClearRange(a, b)),
            (0u8..16).prop_map(Op::Add),
        ]
    }

    proptest! {
        /// A key lies in the storage-dependent parts exactly when a read of it must
        /// look at storage (`lookup` is not `Local`), and the parts come in order.
        #[test]
        fn storage_dependent_parts_are_the_keys_read_from_storage(
            ops in proptest::collection::vec(op(), 0..12),
            begin in 0u8..16,
            len in 0u8..16,
        ) {
            let mut w = WriteBuffer::default();
            for op in &ops {
                match *op {
                    Op::Set(k) => w.set(&[k], b"v"),
                    Op::Clear(k) => w.clear(&[k]),
                    Op::ClearRange(a, b) => w.clear_range(&[a], &[b]),
                    Op::Add(k) => w.atomic(&[k], &1i64.to_le_bytes(), MutationType::Add, None).unwrap(),
                }
            }
            let end = begin.saturating_add(len);
            let mut parts = IntervalSet::new();
            let mut last_end: Vec<u8> = Vec::new();
            let mut ordered = true;
            w.storage_dependent(&[begin], &[end], |b, e| {
                ordered &= b >= last_end.as_slice() || w.cleared.contains(b);
                last_end = e.to_vec();
                parts.insert(b, e);
            });
            prop_assert!(ordered);
            for k in 0u8..=16 {
                let inside = (begin..end).contains(&k);
                let from_storage = !matches!(w.lookup(&[k]), Lookup::Local(_));
                prop_assert_eq!(parts.contains(&[k]), inside && from_storage, "key {}", k);
                // Keys between one-byte keys ([k, 0]) follow whatever covers them.
                let between = [k, 0];
                let between_from_storage = !w.cleared.contains(&between);
                prop_assert_eq!(
                    parts.contains(&between),
                    inside && between_from_storage,
                    "key {:?}", between
                );
            }
        }
    }
}
