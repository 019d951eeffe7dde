//! Index maintainers: one file per index type, behind one trait, [`IndexMaintainer`].
//!
//! A maintainer turns a record change `old → new` into the index writes it implies,
//! *without writing*: [`IndexMaintainer::plan_update`] returns [`IndexWrite`]s, so the
//! record store can validate every index (uniqueness needs reads) before it writes
//! anything, and an operation that fails leaves nothing half-written.
//!
//! Because every write is derived from the difference between the stored record and
//! the new one, saving the same record twice changes nothing the second time: this is
//! what makes a retry after `commit_unknown_result` safe. Aggregates are atomic
//! mutations of a delta and are never read while writing, so concurrent writers do
//! not conflict on them.
//!
//! | type | file | key | value |
//! |---|---|---|---|
//! | VALUE | [`value`] | `(2, index, values..., (pk...))` | empty |
//! | COUNT, COUNT_NOT_NULL | [`count`] | `(2, index, group...)` | `i64` LE, atomic add |
//! | SUM | [`sum`] | `(2, index, group...)` | `i64` LE two's complement, atomic add |
//! | MIN_EVER, MAX_EVER | [`min_max`] | `(2, index, group...)` | order-preserving `i64` (see [`min_max`]) |
//! | VERSION | [`version`] | `(2, index, values with versionstamp..., (pk...))` | empty |

// The maintainers spell out `impl Future + Send` so the Send bound the trait requires
// is visible where it is implemented.
#![allow(clippy::manual_async_fn)]

pub mod count;
pub mod min_max;
pub(crate) mod range_set;
pub mod sum;
pub mod value;
pub mod version;

use crate::key_expression::{EvaluationContext, KeyTuple};
use crate::kv::{MutationType, Transaction};
use crate::layout::StoreLayout;
use crate::metadata::{Index, IndexType, RecordType};
use crate::store::{RecordStoreError, RecordVersion};
use foundationdb_tuple::Element;
use prost_reflect::DynamicMessage;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

/// A record as index maintainers see it.
#[derive(Clone, Copy, Debug)]
pub struct IndexRecord<'a> {
    pub primary_key: &'a [Element<'static>],
    pub record_type: &'a RecordType,
    pub message: &'a DynamicMessage,
    /// The record's version: incomplete for a save in the current transaction.
    pub version: Option<RecordVersion>,
}

impl IndexRecord<'_> {
    /// The index expression's tuples for this record.
    pub fn evaluate(&self, index: &Index) -> Result<Vec<KeyTuple>, RecordStoreError> {
        let context = EvaluationContext {
            record_type_key: Some(self.record_type.record_type_key()),
            version: self.version.map(|v| v.to_versionstamp()),
        };
        Ok(index.expression.evaluate_with(self.message, &context)?)
    }
}

/// One write an index update needs. The record store applies them after every index
/// has been planned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IndexWrite {
    Set {
        key: Vec<u8>,
        value: Vec<u8>,
    },
    Clear {
        key: Vec<u8>,
    },
    Atomic {
        key: Vec<u8>,
        param: Vec<u8>,
        op: MutationType,
    },
    /// A `set_versionstamped_key` (key template with its offset suffix). Buffered by the
    /// store until commit so that a later change in the same transaction can cancel it.
    SetVersionstampedKey {
        template: Vec<u8>,
        value: Vec<u8>,
    },
    /// Cancels a buffered `set_versionstamped_key` of this transaction.
    CancelVersionstampedKey {
        template: Vec<u8>,
    },
}

/// Every key an update writes within FoundationDB's key limit, as a typed error for the
/// save rather than `key_too_large` from the transaction (which would fail it whole):
/// aggregate group keys and versionstamped entries are as long as the values in them.
fn check_key_sizes(
    index: &str,
    primary_key: &[Element<'static>],
    writes: &[IndexWrite],
) -> Result<(), RecordStoreError> {
    let written = writes.iter().filter_map(|w| match w {
        IndexWrite::Set { key, .. } | IndexWrite::Atomic { key, .. } => Some(key.len()),
        // FoundationDB holds the whole template to the limit, its 4-byte offset
        // included.
        IndexWrite::SetVersionstampedKey { template, .. } => Some(template.len()),
        IndexWrite::Clear { .. } | IndexWrite::CancelVersionstampedKey { .. } => None,
    });
    match written.max() {
        Some(size) if size > crate::kv::limits::MAX_KEY_SIZE => {
            Err(RecordStoreError::KeyTooLarge {
                what: format!("index `{index}` entry"),
                primary_key: primary_key.to_vec(),
                size,
                limit: crate::kv::limits::MAX_KEY_SIZE,
            })
        }
        _ => Ok(()),
    }
}

/// Why an update is being planned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateMode {
    /// A save or delete: a uniqueness violation fails the operation.
    Save,
    /// An online build: a uniqueness violation is recorded (space 7) and the entry is
    /// still written, so that the build can report every violation.
    Build,
}

/// The maintainer of one index type. See the [module docs](self).
pub trait IndexMaintainer: Send + Sync {
    /// The index maintained.
    fn index(&self) -> &Index;

    /// The index tuples `record` contributes (entries' values, or group + value for
    /// aggregates), in evaluation order. The consistency checker recounts with this.
    fn evaluate(&self, record: &IndexRecord<'_>) -> Result<Vec<KeyTuple>, RecordStoreError> {
        record.evaluate(self.index())
    }

    /// The writes that move the index from `old` to `new` (either may be absent: an
    /// insert or a delete). Reads what must be validated, with read conflicts only on
    /// what it examines; writes nothing.
    fn plan_update<'a, T: Transaction>(
        &'a self,
        tx: &'a T,
        layout: &'a StoreLayout,
        old: Option<IndexRecord<'a>>,
        new: Option<IndexRecord<'a>>,
        mode: UpdateMode,
    ) -> impl Future<Output = Result<Vec<IndexWrite>, RecordStoreError>> + Send + 'a;
}

/// The registry: the maintainer of any index, by its type.
#[derive(Clone, Debug)]
pub enum Maintainer {
    Value(value::ValueMaintainer),
    Count(count::CountMaintainer),
    Sum(sum::SumMaintainer),
    MinMax(min_max::MinMaxMaintainer),
    Version(version::VersionMaintainer),
}

/// The maintainers of a metadata's indexes, by index name; cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Maintainers(Arc<BTreeMap<String, Maintainer>>);

impl Maintainers {
    pub(crate) fn for_indexes<'a>(indexes: impl Iterator<Item = &'a Index>) -> Self {
        Maintainers(Arc::new(
            indexes.map(|i| (i.name.clone(), maintainer(i))).collect(),
        ))
    }
    pub(crate) fn get(&self, index: &str) -> Option<&Maintainer> {
        self.0.get(index)
    }
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&String, &Maintainer)> {
        self.0.iter()
    }
}

/// The maintainer for `index`.
pub fn maintainer(index: &Index) -> Maintainer {
    let index = index.clone();
    match index.index_type {
        IndexType::Value => Maintainer::Value(value::ValueMaintainer::new(index)),
        IndexType::Count | IndexType::CountNotNull => {
            Maintainer::Count(count::CountMaintainer::new(index))
        }
        IndexType::Sum => Maintainer::Sum(sum::SumMaintainer::new(index)),
        IndexType::MinEver | IndexType::MaxEver => {
            Maintainer::MinMax(min_max::MinMaxMaintainer::new(index))
        }
        IndexType::Version => Maintainer::Version(version::VersionMaintainer::new(index)),
    }
}

impl IndexMaintainer for Maintainer {
    fn index(&self) -> &Index {
        match self {
            Maintainer::Value(m) => m.index(),
            Maintainer::Count(m) => m.index(),
            Maintainer::Sum(m) => m.index(),
            Maintainer::MinMax(m) => m.index(),
            Maintainer::Version(m) => m.index(),
        }
    }

    fn plan_update<'a, T: Transaction>(
        &'a self,
        tx: &'a T,
        layout: &'a StoreLayout,
        old: Option<IndexRecord<'a>>,
        new: Option<IndexRecord<'a>>,
        mode: UpdateMode,
    ) -> impl Future<Output = Result<Vec<IndexWrite>, RecordStoreError>> + Send + 'a {
        async move {
            let primary_key = new.as_ref().or(old.as_ref()).map(|r| r.primary_key);
            let writes = match self {
                Maintainer::Value(m) => m.plan_update(tx, layout, old, new, mode).await,
                Maintainer::Count(m) => m.plan_update(tx, layout, old, new, mode).await,
                Maintainer::Sum(m) => m.plan_update(tx, layout, old, new, mode).await,
                Maintainer::MinMax(m) => m.plan_update(tx, layout, old, new, mode).await,
                Maintainer::Version(m) => m.plan_update(tx, layout, old, new, mode).await,
            }?;
            check_key_sizes(&self.index().name, primary_key.unwrap_or_default(), &writes)?;
            Ok(writes)
        }
    }
}

/// Splits an aggregate index tuple into (group, grouped columns).
pub(crate) fn split_group(index: &Index, mut tuple: KeyTuple) -> (KeyTuple, KeyTuple) {
    let grouped = index
        .expression
        .grouping_split()
        .map(|(_, g)| g)
        .unwrap_or(0)
        .min(tuple.len());
    let value = tuple.split_off(tuple.len() - grouped);
    (tuple, value)
}

/// An aggregated value as an `i64`: `None` for an unset (null) value.
pub(crate) fn int_value(
    index: &Index,
    pk: &[Element<'static>],
    value: &Element<'_>,
) -> Result<Option<i64>, RecordStoreError> {
    match value {
        Element::Int(i) => Ok(Some(*i)),
        Element::Nil => Ok(None),
        other => Err(RecordStoreError::AggregateValueOutOfRange {
            index: index.name.clone(),
            primary_key: pk.to_vec(),
            value: format!("{other:?}"),
        }),
    }
}

/// Per-group contributions of a record to an aggregate: `(group, value)` pairs.
pub(crate) fn contributions(
    index: &Index,
    record: Option<&IndexRecord<'_>>,
) -> Result<Vec<(KeyTuple, Option<i64>)>, RecordStoreError> {
    let Some(record) = record else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for tuple in record.evaluate(index)? {
        let (group, value) = split_group(index, tuple);
        let value = match value.first() {
            Some(v) => int_value(index, record.primary_key, v)?,
            None => None,
        };
        out.push((group, value));
    }
    Ok(out)
}

/// Sums per group `f(value)` of `new` minus that of `old`; groups whose delta is zero
/// are dropped (nothing to write: this is what makes a repeated save a no-op).
pub(crate) fn group_deltas(
    old: &[(KeyTuple, Option<i64>)],
    new: &[(KeyTuple, Option<i64>)],
    f: impl Fn(Option<i64>) -> i128,
) -> BTreeMap<Vec<u8>, (KeyTuple, i128)> {
    let mut deltas: BTreeMap<Vec<u8>, (KeyTuple, i128)> = BTreeMap::new();
    for (sign, side) in [(-1i128, old), (1, new)] {
        for (group, value) in side {
            let entry = deltas
                .entry(foundationdb_tuple::pack(group))
                .or_insert_with(|| (group.clone(), 0));
            entry.1 += sign * f(*value);
        }
    }
    deltas.retain(|_, (_, d)| *d != 0);
    deltas
}

/// `v` as FoundationDB's atomic add expects it: 8 bytes, little-endian two's complement.
pub fn encode_i64(v: i64) -> [u8; 8] {
    v.to_le_bytes()
}

/// Decodes a little-endian integer of up to 8 bytes (shorter values are zero-extended,
/// as atomic add leaves them).
pub fn decode_i64(bytes: &[u8]) -> i64 {
    let mut b = [0u8; 8];
    let n = bytes.len().min(8);
    b[..n].copy_from_slice(&bytes[..n]);
    i64::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn little_endian_encoding_adds_negative_values() {
        // What FoundationDB's ADD does: byte-wise little-endian addition with carry.
        let add = |a: i64, b: i64| {
            let (a, b) = (encode_i64(a), encode_i64(b));
            let mut out = [0u8; 8];
            let mut carry = 0u16;
            for i in 0..8 {
                let s = a[i] as u16 + b[i] as u16 + carry;
                out[i] = s as u8;
                carry = s >> 8;
            }
            decode_i64(&out)
        };
        assert_eq!(add(5, -7), -2);
        assert_eq!(add(-1, -1), -2);
        assert_eq!(add(i64::MAX, 1), i64::MIN);
        assert_eq!(decode_i64(&[1]), 1);
        assert_eq!(decode_i64(&[]), 0);
    }

    #[test]
    fn deltas_cancel_out_for_identical_records() {
        let g = |i: i64| vec![Element::Int(i)];
        let same = vec![(g(1), Some(3)), (g(2), Some(4))];
        assert!(group_deltas(&same, &same, |v| v.unwrap_or(0) as i128).is_empty());
        let moved = vec![(g(2), Some(3))];
        let d = group_deltas(&[(g(1), Some(3))], &moved, |_| 1);
        assert_eq!(
            d.into_values().collect::<Vec<_>>(),
            vec![(g(1), -1), (g(2), 1)]
        );
    }
}
