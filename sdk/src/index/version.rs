//! VERSION: entries keyed by the record's version, in commit order (the sync pattern).
//!
//! A save writes its entry with `set_versionstamped_key`: the key is completed by
//! FoundationDB at commit, so concurrent writers never conflict on it and entries sort
//! in commit order (then by order of the save within its transaction). The old entry
//! is removed with the previous record's (complete) version; if the previous save was
//! in the same transaction, its still-pending entry is cancelled instead.
//! [`RecordStore::changes_since`](crate::store::RecordStore::changes_since) reads the
//! index from a version on.

use super::{IndexMaintainer, IndexRecord, IndexWrite, UpdateMode};
use crate::key_expression::KeyTuple;
use crate::kv::{limits, Transaction};
use crate::layout::StoreLayout;
use crate::metadata::Index;
use crate::store::RecordStoreError;
use foundationdb_tuple::Element;
use std::collections::BTreeMap;
use std::future::Future;

/// Maintains a VERSION index.
#[derive(Clone, Debug)]
pub struct VersionMaintainer {
    index: Index,
}

/// One entry: a finished key, or a template completed at commit.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Entry {
    Key(Vec<u8>),
    Template(Vec<u8>),
}

impl VersionMaintainer {
    pub fn new(index: Index) -> Self {
        VersionMaintainer { index }
    }

    fn entries(
        &self,
        layout: &StoreLayout,
        record: Option<&IndexRecord<'_>>,
    ) -> Result<BTreeMap<Entry, KeyTuple>, RecordStoreError> {
        let Some(record) = record else {
            return Ok(BTreeMap::new());
        };
        // A record stored before versions were kept has no version: no entry.
        if record.version.is_none() {
            return Ok(BTreeMap::new());
        }
        let mut out = BTreeMap::new();
        for values in record.evaluate(&self.index)? {
            let incomplete: usize = values
                .iter()
                .map(Element::count_incomplete_versionstamp)
                .sum();
            let entry = match incomplete {
                0 => Entry::Key(layout.index_entry_key(
                    &self.index.name,
                    &values,
                    record.primary_key,
                )),
                1 => Entry::Template(layout.index_entry_key_template(
                    &self.index.name,
                    &values,
                    record.primary_key,
                )),
                _ => {
                    return Err(RecordStoreError::MultipleVersionsInEntry {
                        index: self.index.name.clone(),
                    })
                }
            };
            out.insert(entry, values);
        }
        Ok(out)
    }
}

impl IndexMaintainer for VersionMaintainer {
    fn index(&self) -> &Index {
        &self.index
    }

    fn plan_update<'a, T: Transaction>(
        &'a self,
        _tx: &'a T,
        layout: &'a StoreLayout,
        old: Option<IndexRecord<'a>>,
        new: Option<IndexRecord<'a>>,
        _mode: UpdateMode,
    ) -> impl Future<Output = Result<Vec<IndexWrite>, RecordStoreError>> + Send + 'a {
        async move {
            let old_entries = self.entries(layout, old.as_ref())?;
            let new_entries = self.entries(layout, new.as_ref())?;
            let mut writes = Vec::new();
            for entry in old_entries.keys() {
                if new_entries.contains_key(entry) {
                    continue;
                }
                writes.push(match entry {
                    Entry::Key(key) => IndexWrite::Clear { key: key.clone() },
                    Entry::Template(template) => IndexWrite::CancelVersionstampedKey {
                        template: template.clone(),
                    },
                });
            }
            for entry in new_entries.keys() {
                if old_entries.contains_key(entry) {
                    continue;
                }
                let size = match entry {
                    Entry::Key(k) => k.len(),
                    Entry::Template(t) => t.len() - 4,
                };
                if size > limits::MAX_KEY_SIZE {
                    return Err(RecordStoreError::KeyTooLarge {
                        what: format!("index `{}` entry", self.index.name),
                        primary_key: new.map(|n| n.primary_key.to_vec()).unwrap_or_default(),
                        size,
                        limit: limits::MAX_KEY_SIZE,
                    });
                }
                writes.push(match entry {
                    Entry::Key(key) => IndexWrite::Set {
                        key: key.clone(),
                        value: Vec::new(),
                    },
                    Entry::Template(template) => IndexWrite::SetVersionstampedKey {
                        template: template.clone(),
                        value: Vec::new(),
                    },
                });
            }
            Ok(writes)
        }
    }
}
