//! VALUE: one entry per (fanned-out) tuple, `(2, index, values..., (pk...))`, empty value.
//!
//! **Unique** indexes: before a save adds an entry, it reads the range
//! `(2, index, values...)` (a non-snapshot read, so the transaction conflicts only with
//! writers of those same values); an entry there with another primary key fails the
//! save with [`RecordStoreError::UniquenessViolation`] before anything is written.

use super::{IndexMaintainer, IndexRecord, IndexWrite, UpdateMode};
use crate::key_expression::KeyTuple;
use crate::kv::{limits, RangeOption, Transaction};
use crate::layout::StoreLayout;
use crate::metadata::Index;
use crate::store::RecordStoreError;
use foundationdb_tuple::Element;
use std::collections::BTreeMap;
use std::future::Future;

/// Maintains a VALUE index (unique or not).
#[derive(Clone, Debug)]
pub struct ValueMaintainer {
    index: Index,
}

impl ValueMaintainer {
    pub fn new(index: Index) -> Self {
        ValueMaintainer { index }
    }

    /// Entry key → indexed values, for one record.
    pub(crate) fn entries(
        &self,
        layout: &StoreLayout,
        record: Option<&IndexRecord<'_>>,
    ) -> Result<BTreeMap<Vec<u8>, KeyTuple>, RecordStoreError> {
        let Some(record) = record else {
            return Ok(BTreeMap::new());
        };
        Ok(record
            .evaluate(&self.index)?
            .into_iter()
            .map(|values| {
                (
                    layout.index_entry_key(&self.index.name, &values, record.primary_key),
                    values,
                )
            })
            .collect())
    }
}

/// The primary key at the end of an index entry key.
pub(crate) fn entry_primary_key(
    layout: &StoreLayout,
    index: &str,
    key: &[u8],
) -> Result<(KeyTuple, KeyTuple), RecordStoreError> {
    let corrupt = |detail: String| RecordStoreError::CorruptIndex {
        index: index.to_string(),
        detail,
    };
    let mut elements: Vec<Element<'_>> = crate::layout::unpack_stored_in(&layout.index(index), key)
        .map_err(|e| corrupt(format!("undecodable entry key: {e:?}")))?;
    match elements.pop() {
        Some(Element::Tuple(pk)) => Ok((
            elements.into_iter().map(Element::into_owned).collect(),
            pk.into_iter().map(Element::into_owned).collect(),
        )),
        _ => Err(corrupt("entry key does not end with a primary key".into())),
    }
}

impl IndexMaintainer for ValueMaintainer {
    fn index(&self) -> &Index {
        &self.index
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
            let name = &self.index.name;
            let old_entries = self.entries(layout, old.as_ref())?;
            let new_entries = self.entries(layout, new.as_ref())?;
            let mut writes = Vec::new();
            for key in old_entries.keys() {
                if !new_entries.contains_key(key) {
                    writes.push(IndexWrite::Clear { key: key.clone() });
                }
            }
            let Some(new) = new else { return Ok(writes) };
            for (key, values) in &new_entries {
                if old_entries.contains_key(key) {
                    continue;
                }
                if key.len() > limits::MAX_KEY_SIZE {
                    return Err(RecordStoreError::KeyTooLarge {
                        what: format!("index `{name}` entry"),
                        primary_key: new.primary_key.to_vec(),
                        size: key.len(),
                        limit: limits::MAX_KEY_SIZE,
                    });
                }
                if self.index.options.unique {
                    let (begin, end) = layout.index_values(name, values).range();
                    let found = tx
                        .get_range(
                            &RangeOption::from_keys(&begin, &end).with_limit(2),
                            1,
                            false,
                        )
                        .await?;
                    for kv in &found.key_values {
                        let (_, existing) = entry_primary_key(layout, name, &kv.key)?;
                        if existing.as_slice() == new.primary_key {
                            continue;
                        }
                        match mode {
                            UpdateMode::Save => {
                                return Err(RecordStoreError::UniquenessViolation {
                                    index: name.clone(),
                                    values: values.clone(),
                                    existing_primary_key: existing,
                                })
                            }
                            UpdateMode::Build => {
                                for pk in [existing.as_slice(), new.primary_key] {
                                    writes.push(IndexWrite::Set {
                                        key: layout.uniqueness_violation_key(name, values, pk),
                                        value: Vec::new(),
                                    });
                                }
                            }
                        }
                    }
                }
                writes.push(IndexWrite::Set {
                    key: key.clone(),
                    value: Vec::new(),
                });
            }
            Ok(writes)
        }
    }
}
