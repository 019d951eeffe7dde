//! The consistency checker: verifies a store and reports **every** problem it finds.
//!
//! Checked, for every *readable* index (write-only and disabled ones are skipped and
//! listed in [`CheckReport::skipped_indexes`]):
//!
//! * every record is whole (no torn or corrupt split record) and, if the metadata
//!   stores record versions, has a version (a record saved while it stored none has
//!   none until saved again);
//! * every record has each VALUE/VERSION entry it should, with the right key;
//! * every VALUE/VERSION entry points to an existing record that produces it
//!   (dangling and stale entries are reported);
//! * unique indexes hold: no two entries with the same values;
//! * COUNT/SUM equal a recount; MIN_EVER/MAX_EVER are at least as extreme as the
//!   records present (they may be more: "ever" keeps values of deleted records);
//! * the record count equals the number of records.
//!
//! A big store is checked in pages, each in its own transaction: [`StoreChecker::step`]
//! returns the checker's next state, which the caller keeps only once the transaction
//! succeeded, so a retried step never reports a problem twice. Run it on a quiescent
//! store: pages read at different versions, so concurrent writes between pages can
//! show up as problems. [`check_store`] runs every page in one transaction.
//!
//! ```
//! use fdb_records::backend::embedded::EmbeddedDatabase;
//! use fdb_records::key_expression::field;
//! use fdb_records::kv::Database;
//! use fdb_records::metadata::{RecordMetaData, RecordTypeDef};
//! use fdb_records::store::{RecordStore, RecordStoreError, StoreChecker};
//! use foundationdb_tuple::Subspace;
//! use std::sync::Arc;
//! # futures::executor::block_on(async {
//! # let pool = fdb_records::metadata::example_pool();
//! let metadata = Arc::new(RecordMetaData::builder(pool)
//!     .record_type(RecordTypeDef::new("examples.users.User").primary_key(field("id")))
//!     .build().unwrap());
//! let db = EmbeddedDatabase::in_memory().unwrap();
//! let mut checker = StoreChecker::new().page_size(500);
//! while !checker.is_done() {
//!     checker = db.run(|tx, _| {
//!         let (metadata, checker) = (metadata.clone(), &checker);
//!         async move {
//!             let store = RecordStore::open(&tx, Subspace::from("app"), metadata).await?;
//!             checker.step(&store).await
//!         }
//!     }).await.unwrap();
//! }
//! assert!(checker.report().is_ok(), "{:?}", checker.report().problems);
//! # });
//! ```

use super::record_store::RawRecord;
use super::{IndexState, RecordStore, RecordStoreError, TupleRange};
use crate::index::{self, min_max, IndexMaintainer, IndexRecord, IndexWrite, UpdateMode};
use crate::key_expression::KeyTuple;
use crate::kv::{MutationType, Transaction};
use crate::layout::{self, DisplayTuple};
use crate::metadata::{Index, IndexType};
use foundationdb_tuple::Element;
use std::collections::{BTreeMap, BTreeSet};

type Result<T, E = RecordStoreError> = std::result::Result<T, E>;

fn t(tuple: &KeyTuple) -> String {
    DisplayTuple(tuple).to_string()
}

/// One problem found by the checker.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum Problem {
    #[error("record {} is torn: {detail}", t(.primary_key))]
    TornRecord {
        primary_key: KeyTuple,
        detail: String,
    },
    #[error("record {} is corrupt: {detail}", t(.primary_key))]
    CorruptRecord {
        primary_key: KeyTuple,
        detail: String,
    },
    /// A key in the records space that is no record key (bytes after the records
    /// prefix): every scan over it fails until it is removed.
    #[error("key {} in the records space is no record key", crate::kv::printable(.key))]
    CorruptRecordKey { key: Vec<u8> },
    /// Reported only when the metadata stores record versions. A record saved while
    /// it stored none has none until it is saved again.
    #[error("record {} has no version", t(.primary_key))]
    MissingRecordVersion { primary_key: KeyTuple },
    #[error("index `{index}` lacks entry {} for record {}", t(.values), t(.primary_key))]
    MissingIndexEntry {
        index: String,
        values: KeyTuple,
        primary_key: KeyTuple,
    },
    #[error("index `{index}` entry {} points to missing record {}", t(.values), t(.primary_key))]
    DanglingIndexEntry {
        index: String,
        values: KeyTuple,
        primary_key: KeyTuple,
    },
    #[error("index `{index}` entry {} does not match record {}", t(.values), t(.primary_key))]
    WrongIndexEntry {
        index: String,
        values: KeyTuple,
        primary_key: KeyTuple,
    },
    #[error("index `{index}` has an undecodable entry: {detail}")]
    CorruptIndexEntry { index: String, detail: String },
    #[error("unique index `{index}`: values {} belong to records {} and {}", t(.values), t(.first), t(.second))]
    UniquenessBroken {
        index: String,
        values: KeyTuple,
        first: KeyTuple,
        second: KeyTuple,
    },
    #[error("index `{index}` group {}: stored {stored:?}, records say {expected:?}", t(.group))]
    AggregateMismatch {
        index: String,
        group: KeyTuple,
        stored: Option<i64>,
        expected: Option<i64>,
    },
    #[error("record count is {stored}, the store holds {expected} records")]
    RecordCountMismatch { stored: i64, expected: i64 },
}

/// What the checker found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CheckReport {
    pub problems: Vec<Problem>,
    pub records_checked: u64,
    pub entries_checked: u64,
    /// Indexes not checked because they are not readable.
    pub skipped_indexes: Vec<String>,
}

impl CheckReport {
    /// No problem found.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Phase {
    /// Records from this primary-key bound on.
    Records(Vec<u8>),
    /// Entries of the `n`-th entry index after this key (`None`: from its start).
    Entries(usize, Option<Vec<u8>>),
    Aggregates,
    Done,
}

/// A recount of one aggregate key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Acc {
    Sum(i64),
    Min(i64),
    Max(i64),
}

/// A resumable store check; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct StoreChecker {
    phase: Phase,
    page_size: usize,
    /// Aggregate key → recount.
    recount: BTreeMap<Vec<u8>, Acc>,
    /// Last entry seen in the current unique index: (values, pk).
    last_unique: Option<(KeyTuple, KeyTuple)>,
    records: i64,
    report: CheckReport,
}

impl Default for StoreChecker {
    fn default() -> Self {
        Self::new()
    }
}

impl StoreChecker {
    /// A checker at the start of the store; pages of 1,000 records/entries.
    pub fn new() -> Self {
        StoreChecker {
            phase: Phase::Records(Vec::new()),
            page_size: 1000,
            recount: BTreeMap::new(),
            last_unique: None,
            records: 0,
            report: CheckReport::default(),
        }
    }
    /// Records or entries read per step.
    pub fn page_size(mut self, page_size: usize) -> Self {
        self.page_size = page_size.max(1);
        self
    }
    /// Whether every check ran.
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }
    /// The report so far (complete once [`is_done`](Self::is_done)).
    pub fn report(&self) -> &CheckReport {
        &self.report
    }
    /// The report.
    pub fn into_report(self) -> CheckReport {
        self.report
    }

    /// Runs one page of the check in `store`'s transaction and returns the next state.
    pub async fn step<T: Transaction>(&self, store: &RecordStore<T>) -> Result<StoreChecker> {
        let mut next = self.clone();
        let readable: Vec<&Index> = store
            .metadata()
            .indexes()
            .values()
            .filter(|i| store.index_state(&i.name).ok() == Some(IndexState::Readable))
            .collect();
        next.report.skipped_indexes = store
            .metadata()
            .indexes()
            .keys()
            .filter(|n| store.index_state(n).ok() != Some(IndexState::Readable))
            .cloned()
            .collect();
        let entry_indexes: Vec<&Index> = readable
            .iter()
            .copied()
            .filter(|i| !i.index_type.is_aggregate())
            .collect();
        match &self.phase {
            Phase::Records(from) => {
                // Keys that are no record keys are passed over (every other scan fails
                // on them) and reported, wherever they sit, even among a record's keys.
                let scan = store
                    .scan_raw(from, b"\xff", false, Some(self.page_size), true, true)
                    .await?;
                for raw in scan.records {
                    next.check_record(store, &readable, raw).await?;
                }
                // check_record advanced the position past each record; keys from there
                // on are read again by the next page.
                let resume = match &next.phase {
                    Phase::Records(resume) if scan.more => Some(resume.clone()),
                    _ => None,
                };
                for key in scan.bad_keys {
                    if resume.as_ref().is_none_or(|r| key < *r) {
                        next.report.problems.push(Problem::CorruptRecordKey { key });
                    }
                }
                if !scan.more {
                    next.phase = Phase::Entries(0, None);
                }
            }
            Phase::Entries(n, after) => match entry_indexes.get(*n) {
                None => next.phase = Phase::Aggregates,
                Some(index) => {
                    let (begin, end) =
                        TupleRange::all().to_keys(&store.layout().index(&index.name));
                    let begin = match after {
                        Some(key) => crate::kv::key_after(key),
                        None => begin,
                    };
                    let count = next.check_entries(store, index, &begin, &end).await?;
                    next.phase = match count {
                        Some(last) => Phase::Entries(*n, Some(last)),
                        None => {
                            next.last_unique = None;
                            Phase::Entries(n + 1, None)
                        }
                    };
                }
            },
            Phase::Aggregates => {
                for index in readable.iter().filter(|i| i.index_type.is_aggregate()) {
                    next.check_aggregates(store, index).await?;
                }
                let stored = store.record_count().await?;
                if stored != next.records {
                    next.report.problems.push(Problem::RecordCountMismatch {
                        stored,
                        expected: next.records,
                    });
                }
                next.phase = Phase::Done;
            }
            Phase::Done => {}
        }
        Ok(next)
    }

    async fn check_record<T: Transaction>(
        &mut self,
        store: &RecordStore<T>,
        readable: &[&Index],
        raw: RawRecord,
    ) -> Result<()> {
        let pk = raw.primary_key.clone();
        self.phase = Phase::Records(layout::primary_key_bytes_after(&pk));
        self.records += 1;
        self.report.records_checked += 1;
        let has_version = raw.version.is_some();
        let record = match store.decode(raw) {
            Ok(r) => r,
            Err(RecordStoreError::TornRecord {
                primary_key,
                detail,
            }) => {
                self.report.problems.push(Problem::TornRecord {
                    primary_key,
                    detail,
                });
                return Ok(());
            }
            Err(RecordStoreError::CorruptRecord {
                primary_key,
                detail,
            }) => {
                self.report.problems.push(Problem::CorruptRecord {
                    primary_key,
                    detail,
                });
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        if !has_version && store.metadata().stores_record_versions() {
            self.report.problems.push(Problem::MissingRecordVersion {
                primary_key: pk.clone(),
            });
        }
        let record_type = store
            .metadata()
            .record_type(&record.record_type)
            .expect("decode found the type");
        let view = IndexRecord {
            primary_key: &pk,
            record_type,
            message: &record.message,
            version: record.version.filter(|v| v.is_complete()),
        };
        let tx = store.transaction();
        for index in readable {
            if !index.covers(&record.record_type) {
                continue;
            }
            if index.index_type.is_aggregate() {
                let writes = store
                    .maintainer(&index.name)?
                    .plan_update(tx, store.layout(), None, Some(view), UpdateMode::Save)
                    .await?;
                for write in writes {
                    if let IndexWrite::Atomic { key, param, op } = write {
                        self.accumulate(key, &param, op);
                    }
                }
                continue;
            }
            if index.index_type == IndexType::Version && view.version.is_none() {
                continue;
            }
            for values in view.evaluate(index)? {
                let key = store.layout().index_entry_key(&index.name, &values, &pk);
                if tx.get(&key, true).await?.is_none() {
                    self.report.problems.push(Problem::MissingIndexEntry {
                        index: index.name.clone(),
                        values,
                        primary_key: pk.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    fn accumulate(&mut self, key: Vec<u8>, param: &[u8], op: MutationType) {
        let entry = self.recount.entry(key);
        match op {
            MutationType::Add => {
                let add = index::decode_i64(param);
                let acc = entry.or_insert(Acc::Sum(0));
                if let Acc::Sum(s) = acc {
                    *s = s.wrapping_add(add);
                }
            }
            MutationType::Min | MutationType::Max => {
                let Some(v) = min_max::decode_ordered(param) else {
                    return;
                };
                let min = op == MutationType::Min;
                let acc = entry.or_insert(if min { Acc::Min(v) } else { Acc::Max(v) });
                match acc {
                    Acc::Min(m) => *m = (*m).min(v),
                    Acc::Max(m) => *m = (*m).max(v),
                    Acc::Sum(_) => {}
                }
            }
            _ => {}
        }
    }

    /// Checks one page of an entry index; returns the last key read if the page was full.
    async fn check_entries<T: Transaction>(
        &mut self,
        store: &RecordStore<T>,
        index: &Index,
        begin: &[u8],
        end: &[u8],
    ) -> Result<Option<Vec<u8>>> {
        let tx = store.transaction();
        let range = crate::kv::RangeOption::from_keys(begin, end).with_limit(self.page_size);
        let kvs = tx.get_range_all(range, true).await?;
        let full = kvs.len() >= self.page_size;
        let mut cache: BTreeMap<Vec<u8>, Expected> = BTreeMap::new();
        for kv in &kvs {
            self.report.entries_checked += 1;
            let (values, pk) =
                match index::value::entry_primary_key(store.layout(), &index.name, &kv.key) {
                    Ok(found) => found,
                    Err(e) => {
                        self.report.problems.push(Problem::CorruptIndexEntry {
                            index: index.name.clone(),
                            detail: e.to_string(),
                        });
                        continue;
                    }
                };
            if index.options.unique {
                if let Some((last_values, last_pk)) = &self.last_unique {
                    if *last_values == values && *last_pk != pk {
                        self.report.problems.push(Problem::UniquenessBroken {
                            index: index.name.clone(),
                            values: values.clone(),
                            first: last_pk.clone(),
                            second: pk.clone(),
                        });
                    }
                }
                self.last_unique = Some((values.clone(), pk.clone()));
            }
            let pk_bytes = layout::primary_key_bytes(&pk);
            if !cache.contains_key(&pk_bytes) {
                let expected = match store.read_raw_skipping_bad_keys(&pk).await? {
                    None => Expected::NoRecord,
                    Some(raw) => match store.decode(raw) {
                        // Reported in the records phase; nothing to compare with.
                        Err(_) => Expected::Undecodable,
                        Ok(record) => Expected::Keys(expected_keys(store, index, &record)?),
                    },
                };
                cache.insert(pk_bytes.clone(), expected);
            }
            let problem = match &cache[&pk_bytes] {
                Expected::NoRecord => Problem::DanglingIndexEntry {
                    index: index.name.clone(),
                    values,
                    primary_key: pk,
                },
                Expected::Keys(keys) if !keys.contains(&kv.key[..]) => Problem::WrongIndexEntry {
                    index: index.name.clone(),
                    values,
                    primary_key: pk,
                },
                _ => continue,
            };
            self.report.problems.push(problem);
        }
        Ok(if full {
            kvs.last().map(|kv| kv.key.to_vec())
        } else {
            None
        })
    }

    async fn check_aggregates<T: Transaction>(
        &mut self,
        store: &RecordStore<T>,
        index: &Index,
    ) -> Result<()> {
        let stored = store
            .aggregates_any_state(&index.name, index.index_type, true)
            .await?;
        let mut expected: BTreeMap<Vec<u8>, (KeyTuple, Acc)> = BTreeMap::new();
        let sub = store.layout().index(&index.name);
        for (key, acc) in &self.recount {
            let group: Option<Vec<Element<'_>>> = if key.as_slice() == sub.bytes() {
                Some(Vec::new())
            } else if sub.is_start_of(key) {
                crate::layout::unpack_stored_in(&sub, key).ok()
            } else {
                None
            };
            if let Some(group) = group {
                let group: KeyTuple = group.into_iter().map(Element::into_owned).collect();
                expected.insert(foundationdb_tuple::pack(&group), (group, *acc));
            }
        }
        let mut stored_map: BTreeMap<Vec<u8>, (KeyTuple, i64)> = BTreeMap::new();
        for (group, value) in stored {
            stored_map.insert(foundationdb_tuple::pack(&group), (group, value));
        }
        let keys: BTreeSet<Vec<u8>> = expected.keys().chain(stored_map.keys()).cloned().collect();
        for key in keys {
            let stored = stored_map.get(&key).map(|(_, v)| *v);
            let acc = expected.get(&key).map(|(_, a)| *a);
            let group = stored_map
                .get(&key)
                .map(|(g, _)| g.clone())
                .or_else(|| expected.get(&key).map(|(g, _)| g.clone()))
                .unwrap_or_default();
            let ok = match acc {
                None | Some(Acc::Sum(_)) => {
                    let e = match acc {
                        Some(Acc::Sum(s)) => s,
                        _ => 0,
                    };
                    match index.index_type {
                        // "ever": a stored extreme without records is legitimate.
                        IndexType::MinEver | IndexType::MaxEver => true,
                        _ => stored.unwrap_or(0) == e,
                    }
                }
                Some(Acc::Min(m)) => stored.is_some_and(|s| s <= m),
                Some(Acc::Max(m)) => stored.is_some_and(|s| s >= m),
            };
            if !ok {
                self.report.problems.push(Problem::AggregateMismatch {
                    index: index.name.clone(),
                    group,
                    stored,
                    expected: acc.map(|a| match a {
                        Acc::Sum(v) | Acc::Min(v) | Acc::Max(v) => v,
                    }),
                });
            }
        }
        Ok(())
    }
}

/// What an entry's record says about the entry.
enum Expected {
    NoRecord,
    Undecodable,
    Keys(BTreeSet<Vec<u8>>),
}

/// The entry keys `record` should have in an entry index.
fn expected_keys<T: Transaction>(
    store: &RecordStore<T>,
    index: &Index,
    record: &super::StoredRecord,
) -> Result<BTreeSet<Vec<u8>>> {
    if !index.covers(&record.record_type) {
        return Ok(BTreeSet::new());
    }
    let record_type = store
        .metadata()
        .record_type(&record.record_type)
        .expect("decoded type");
    let view = IndexRecord {
        primary_key: &record.primary_key,
        record_type,
        message: &record.message,
        version: record.version.filter(|v| v.is_complete()),
    };
    if index.index_type == IndexType::Version && view.version.is_none() {
        return Ok(BTreeSet::new());
    }
    Ok(view
        .evaluate(index)?
        .into_iter()
        .map(|values| {
            store
                .layout()
                .index_entry_key(&index.name, &values, &record.primary_key)
        })
        .collect())
}

/// Checks the whole store in `store`'s transaction.
pub async fn check_store<T: Transaction>(store: &RecordStore<T>) -> Result<CheckReport> {
    let mut checker = StoreChecker::new();
    while !checker.is_done() {
        checker = checker.step(store).await?;
    }
    Ok(checker.into_report())
}
