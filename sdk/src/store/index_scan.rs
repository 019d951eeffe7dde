//! Reading indexes: entry scans by value or range, the records behind entries,
//! aggregate reads, and the VERSION index's "changes since" scan.

use super::{
    check_bounds, check_tuple, RecordStore, RecordStoreError, RecordVersion, ScanOptions,
    StoredRecord,
};
use crate::index::{self, min_max, value::entry_primary_key, IndexMaintainer};
use crate::key_expression::KeyTuple;
use crate::kv::{Bytes, RangeOption, Transaction};
use crate::metadata::{Index, IndexType};
use crate::store::IndexState;
use foundationdb_tuple::{Element, Subspace};
use std::ops::Bound;

type Result<T, E = RecordStoreError> = std::result::Result<T, E>;

/// A range of index tuples. Bounds are tuple *prefixes*: `Included(t)` as the low bound
/// starts at the first entry beginning with `t`; `Included(t)` as the high bound ends
/// after the last entry beginning with `t`; `Excluded` skips every entry beginning
/// with `t`.
///
/// ```
/// use fdb_records::store::TupleRange;
/// use foundationdb_tuple::Element;
/// let ages_18_to_65 = TupleRange::between_inclusive(vec![Element::Int(18)], vec![Element::Int(65)]);
/// let exactly_alice = TupleRange::prefix(vec![Element::String("alice".into())]);
/// # let _ = (ages_18_to_65, exactly_alice);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct TupleRange {
    pub low: Bound<KeyTuple>,
    pub high: Bound<KeyTuple>,
}

impl TupleRange {
    /// Every entry.
    pub fn all() -> Self {
        TupleRange {
            low: Bound::Unbounded,
            high: Bound::Unbounded,
        }
    }
    /// Entries whose values begin with `prefix` (an exact-value lookup when `prefix`
    /// has every column).
    pub fn prefix(prefix: KeyTuple) -> Self {
        TupleRange {
            low: Bound::Included(prefix.clone()),
            high: Bound::Included(prefix),
        }
    }
    /// `low <= values <= high` (prefix-wise).
    pub fn between_inclusive(low: KeyTuple, high: KeyTuple) -> Self {
        TupleRange {
            low: Bound::Included(low),
            high: Bound::Included(high),
        }
    }
    /// Any bounds.
    pub fn new(low: Bound<KeyTuple>, high: Bound<KeyTuple>) -> Self {
        TupleRange { low, high }
    }
    /// The key range under `subspace`.
    pub fn to_keys(&self, subspace: &Subspace) -> (Vec<u8>, Vec<u8>) {
        let (all_begin, all_end) = subspace.range();
        let begin = match &self.low {
            Bound::Unbounded => all_begin,
            Bound::Included(t) => subspace.subspace(t).range().0,
            Bound::Excluded(t) => subspace.subspace(t).range().1,
        };
        let end = match &self.high {
            Bound::Unbounded => all_end,
            Bound::Included(t) => subspace.subspace(t).range().1,
            Bound::Excluded(t) => subspace.subspace(t).range().0,
        };
        (begin, end)
    }
}

/// One entry of a VALUE or VERSION index.
#[derive(Clone, Debug, PartialEq)]
pub struct IndexEntry {
    /// The indexed values (for a VERSION index, including the versionstamp).
    pub values: KeyTuple,
    pub primary_key: KeyTuple,
    /// For a VERSION index: the record version in the entry.
    pub version: Option<RecordVersion>,
}

impl<T: Transaction> RecordStore<T> {
    /// The index, if it exists, is readable and has one of `types`.
    pub(crate) fn readable_index(
        &self,
        name: &str,
        types: &[IndexType],
        expected: &str,
    ) -> Result<&Index> {
        let index = self.maintainer(name)?.index();
        let state = self.index_state(name)?;
        if state != IndexState::Readable {
            return Err(RecordStoreError::IndexNotReadable {
                index: name.to_string(),
                state,
            });
        }
        if !types.contains(&index.index_type) {
            return Err(RecordStoreError::WrongIndexType {
                index: name.to_string(),
                actual: index.index_type,
                expected: expected.to_string(),
            });
        }
        Ok(index)
    }

    /// Entries of a readable VALUE or VERSION index within `range`.
    pub async fn scan_index(
        &self,
        index: &str,
        range: &TupleRange,
        options: ScanOptions,
    ) -> Result<Vec<IndexEntry>> {
        self.readable_index(
            index,
            &[IndexType::Value, IndexType::Version],
            "a VALUE or VERSION index",
        )?;
        check_bounds(&range.low, &range.high)?;
        self.scan_entries(index, range, options, false).await
    }

    /// Entries of any VALUE/VERSION index, whatever its state (checker, builder).
    pub(crate) async fn scan_entries(
        &self,
        index: &str,
        range: &TupleRange,
        options: ScanOptions,
        snapshot: bool,
    ) -> Result<Vec<IndexEntry>> {
        let (begin, end) = range.to_keys(&self.layout().index(index));
        let mut opt = RangeOption::from_keys(&begin, &end);
        if options.reverse {
            opt = opt.reversed();
        }
        if let Some(limit) = options.limit {
            opt = opt.with_limit(limit);
        }
        let kvs = self.transaction().get_range_all(opt, snapshot).await?;
        kvs.iter()
            .map(|kv| {
                let (values, primary_key) = entry_primary_key(self.layout(), index, &kv.key)?;
                let version = values.iter().find_map(|e| match e {
                    Element::Versionstamp(v) => Some(RecordVersion::from_versionstamp(v)),
                    _ => None,
                });
                Ok(IndexEntry {
                    values,
                    primary_key,
                    version,
                })
            })
            .collect()
    }

    /// The records behind the entries of `range`, in index order. An entry whose record
    /// is missing is skipped (the consistency checker reports it).
    pub async fn scan_index_records(
        &self,
        index: &str,
        range: &TupleRange,
        options: ScanOptions,
    ) -> Result<Vec<(IndexEntry, StoredRecord)>> {
        let entries = self.scan_index(index, range, options).await?;
        let mut out = Vec::with_capacity(entries.len());
        for entry in entries {
            if let Some(record) = self.load_dynamic(&entry.primary_key).await? {
                out.push((entry, record));
            }
        }
        Ok(out)
    }

    /// The VERSION index's entries after `after` (all of them for `None`) within the
    /// group `group` (the columns before `version()`, empty for `version()` alone), in
    /// commit order: every record saved after `after`, once, with its latest version.
    pub async fn changes_since(
        &self,
        index: &str,
        group: &[Element<'_>],
        after: Option<RecordVersion>,
        limit: Option<usize>,
    ) -> Result<Vec<IndexEntry>> {
        self.readable_index(index, &[IndexType::Version], "a VERSION index")?;
        check_tuple(group)?;
        let group: KeyTuple = group.iter().cloned().map(Element::into_owned).collect();
        let low = match after {
            Some(v) => {
                let mut t = group.clone();
                t.push(Element::Versionstamp(v.to_versionstamp()));
                Bound::Excluded(t)
            }
            None => Bound::Included(group.clone()),
        };
        let range = TupleRange::new(low, Bound::Included(group));
        let options = ScanOptions {
            reverse: false,
            limit,
        };
        self.scan_entries(index, &range, options, false).await
    }

    async fn aggregate_raw(&self, index: &str, group: &[Element<'_>]) -> Result<Option<Vec<u8>>> {
        check_tuple(group)?;
        let key = self.layout().index_group_key(index, group);
        Ok(self.transaction().get(&key, false).await?)
    }

    /// A COUNT / COUNT_NOT_NULL index's count for `group` (`&[]` when ungrouped).
    pub async fn count(&self, index: &str, group: &[Element<'_>]) -> Result<i64> {
        self.readable_index(
            index,
            &[IndexType::Count, IndexType::CountNotNull],
            "a COUNT index",
        )?;
        Ok(self
            .aggregate_raw(index, group)
            .await?
            .map(|v| index::decode_i64(&v))
            .unwrap_or(0))
    }

    /// A SUM index's sum for `group`.
    pub async fn sum(&self, index: &str, group: &[Element<'_>]) -> Result<i64> {
        self.readable_index(index, &[IndexType::Sum], "a SUM index")?;
        Ok(self
            .aggregate_raw(index, group)
            .await?
            .map(|v| index::decode_i64(&v))
            .unwrap_or(0))
    }

    /// A MIN_EVER or MAX_EVER index's value for `group` (`None` if nothing was saved).
    pub async fn min_max_ever(&self, index: &str, group: &[Element<'_>]) -> Result<Option<i64>> {
        self.readable_index(
            index,
            &[IndexType::MinEver, IndexType::MaxEver],
            "a MIN_EVER or MAX_EVER index",
        )?;
        match self.aggregate_raw(index, group).await? {
            None => Ok(None),
            Some(v) => min_max::decode_ordered(&v).map(Some).ok_or_else(|| {
                RecordStoreError::CorruptIndex {
                    index: index.to_string(),
                    detail: format!("{}-byte min/max value", v.len()),
                }
            }),
        }
    }

    /// Every group of an aggregate index with its value, in group order.
    pub async fn scan_aggregates(&self, index: &str) -> Result<Vec<(KeyTuple, i64)>> {
        let idx = self.readable_index(
            index,
            &[
                IndexType::Count,
                IndexType::CountNotNull,
                IndexType::Sum,
                IndexType::MinEver,
                IndexType::MaxEver,
            ],
            "an aggregate index",
        )?;
        let kind = idx.index_type;
        self.aggregates_any_state(index, kind, false).await
    }

    pub(crate) async fn aggregates_any_state(
        &self,
        index: &str,
        kind: IndexType,
        snapshot: bool,
    ) -> Result<Vec<(KeyTuple, i64)>> {
        let sub = self.layout().index(index);
        let (begin, end) = sub.range();
        let tx = self.transaction();
        let mut kvs = Vec::new();
        if let Some(v) = tx.get(sub.bytes(), snapshot).await? {
            kvs.push((Bytes::copy_from_slice(sub.bytes()), Bytes::from(v)));
        }
        for kv in tx
            .get_range_all(RangeOption::from_keys(&begin, &end), snapshot)
            .await?
        {
            kvs.push((kv.key, kv.value));
        }
        kvs.into_iter()
            .map(|(key, value)| {
                let corrupt = |detail: String| RecordStoreError::CorruptIndex {
                    index: index.to_string(),
                    detail,
                };
                let group: Vec<Element<'_>> = if key == *sub.bytes() {
                    Vec::new()
                } else {
                    crate::layout::unpack_stored_in(&sub, &key)
                        .map_err(|e| corrupt(format!("undecodable group: {e:?}")))?
                };
                let value = match kind {
                    IndexType::MinEver | IndexType::MaxEver => min_max::decode_ordered(&value)
                        .ok_or_else(|| corrupt("bad min/max value".into()))?,
                    _ => index::decode_i64(&value),
                };
                Ok((group.into_iter().map(Element::into_owned).collect(), value))
            })
            .collect()
    }
}
