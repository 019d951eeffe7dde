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
    pub(crate) fn atomic(
        &mut self,
        key: &[u8],
        param: &[u8],
        op: MutationType,
    ) -> Result<(), FdbError> {
        match op {
            MutationType::SetVersionstampedKey => {
                // Its write conflict is the filled-in key, added at commit.
                let (low, high) = versionstamp_key_range(key)?;
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

    /// Whether a range read of `[begin, end)` would touch a value not known until commit.
    pub(crate) fn range_unreadable(&self, begin: &[u8], end: &[u8]) -> bool {
        begin < end
            && (self.unreadable.intersects(begin, end)
                || self
                    .entries
                    .range::<[u8], ByteBounds>((Included(begin), Excluded(end)))
                    .any(|(_, e)| matches!(e, Entry::Unreadable)))
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

/// The range of keys a versionstamped-key template can become once its stamp is filled in.
fn versionstamp_key_range(template: &[u8]) -> Result<(Vec<u8>, Vec<u8>), FdbError> {
    let low = atomic::fill_versionstamp(template, &[0u8; 10])?;
    let high = atomic::fill_versionstamp(template, &[0xffu8; 10])?;
    Ok((low, key_after(&high)))
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
