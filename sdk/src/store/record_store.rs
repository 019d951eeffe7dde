//! [`RecordStore`]: records and all their indexes, changed together in one transaction.

use super::envelope::{self, EnvelopeRef, TypeRef};
use super::split::{self, SplitError};
use super::{
    open_store, IndexState, OpenOptions, RecordStoreError, RecordStoreHeader, RecordVersion,
    StoreState,
};
use crate::index::{
    self, range_set, IndexMaintainer, IndexRecord, IndexWrite, Maintainer, Maintainers, UpdateMode,
};
use crate::key_expression::KeyTuple;
use crate::kv::{limits, BatchRow, Bytes, MutationType, RangeBatch, RangeOption, Transaction};
use crate::layout::{self, space, suffix, StoreLayout};
use crate::metadata::{RecordMetaData, RecordType};
use crate::record::{Record, RecordTypeMismatch};
use foundationdb_tuple::{Element, Subspace, Versionstamp};
use futures::StreamExt;
use prost_reflect::DynamicMessage;
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

type Result<T, E = RecordStoreError> = std::result::Result<T, E>;

/// Whether a save may insert, update, or both.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RecordExistence {
    /// Insert or update.
    #[default]
    Any,
    /// Update only: fails with [`RecordStoreError::RecordDoesNotExist`].
    MustExist,
    /// Insert only: fails with [`RecordStoreError::RecordAlreadyExists`]. A retry after
    /// `commit_unknown_result` whose first attempt committed fails this way too.
    MustNotExist,
}

/// A record loaded from the store.
#[derive(Clone, Debug)]
pub struct StoredRecord {
    pub primary_key: KeyTuple,
    /// Fully-qualified record type name (shared with the metadata: no copy per record).
    pub record_type: Arc<str>,
    pub message: DynamicMessage,
    /// The record's version; incomplete if it was saved in this transaction. `None`
    /// when the metadata stores no versions
    /// ([`RecordMetaData::stores_record_versions`]), or for a record saved while it
    /// stored none.
    pub version: Option<RecordVersion>,
    /// Size of the stored (serialized) record in bytes.
    pub size: usize,
    /// Number of values the record is stored in (1 unless split).
    pub values: usize,
}

impl StoredRecord {
    /// The record as a generated type.
    pub fn to_record<M: Record>(&self) -> Result<M> {
        Ok(M::from_dynamic(&self.message)?)
    }
}

/// What a save did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedRecord {
    pub primary_key: KeyTuple,
    /// Incomplete until commit: complete it with the commit's versionstamp
    /// ([`RecordVersion::complete_with`]). `None` when the metadata stores no versions
    /// ([`RecordMetaData::stores_record_versions`]): the save wrote none.
    pub version: Option<RecordVersion>,
    /// `true` for an insert, `false` for an update.
    pub created: bool,
    /// Serialized size in bytes.
    pub size: usize,
    /// Number of values the record is stored in (1 unless split).
    pub values: usize,
}

/// Bounds of a record scan, by primary key.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordRange {
    pub low: Bound<KeyTuple>,
    pub high: Bound<KeyTuple>,
}

impl RecordRange {
    /// Every record.
    pub fn all() -> Self {
        RecordRange {
            low: Bound::Unbounded,
            high: Bound::Unbounded,
        }
    }
    /// Records with `low <= pk < high`.
    pub fn between(low: KeyTuple, high: KeyTuple) -> Self {
        RecordRange {
            low: Bound::Included(low),
            high: Bound::Excluded(high),
        }
    }
    /// The range as primary-key bytes (see [`layout::primary_key_bytes`]).
    pub fn to_bytes(&self) -> (Vec<u8>, Vec<u8>) {
        let low = match &self.low {
            Bound::Unbounded => Vec::new(),
            Bound::Included(pk) => layout::primary_key_bytes(pk),
            Bound::Excluded(pk) => layout::primary_key_bytes_after(pk),
        };
        let high = match &self.high {
            Bound::Unbounded => range_set::END.to_vec(),
            Bound::Included(pk) => layout::primary_key_bytes_after(pk),
            Bound::Excluded(pk) => layout::primary_key_bytes(pk),
        };
        (low, high)
    }
}

/// Direction and size of a scan.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScanOptions {
    pub reverse: bool,
    /// At most this many results; `None` for all.
    pub limit: Option<usize>,
}

impl ScanOptions {
    pub fn forward() -> Self {
        Self::default()
    }
    pub fn reverse() -> Self {
        ScanOptions {
            reverse: true,
            limit: None,
        }
    }
    pub fn with_limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }
}

/// The stored parts of one record, as read.
#[derive(Clone, Debug)]
pub(crate) struct RawRecord {
    pub primary_key: KeyTuple,
    /// Data parts as (suffix, value), in the order read (the version suffix removed).
    parts: Parts,
    pub version: Option<RecordVersion>,
}

/// A record's data parts: almost always exactly one, which needs no list.
#[derive(Clone, Debug, Default)]
enum Parts {
    #[default]
    None,
    One(i64, Bytes),
    Many(Vec<(i64, Bytes)>),
}

impl RawRecord {
    pub(crate) fn new(primary_key: KeyTuple) -> Self {
        RawRecord {
            primary_key,
            parts: Parts::None,
            version: None,
        }
    }

    /// Adds a row of a range-read batch read at the record's key with suffix `part`:
    /// a version is decoded in place, data is kept as a slice of the batch.
    pub(crate) fn add_row(
        &mut self,
        part: i64,
        batch: &RangeBatch,
        row: &BatchRow<'_>,
    ) -> Result<()> {
        if part == suffix::VERSION {
            self.version = Some(decode_version(&self.primary_key, row.value())?);
            return Ok(());
        }
        self.add_part(part, batch.value_bytes(row))
    }

    /// Adds the value read at the record's key with suffix `part`.
    pub(crate) fn add_part(&mut self, part: i64, value: Bytes) -> Result<()> {
        if part == suffix::VERSION {
            self.version = Some(decode_version(&self.primary_key, &value)?);
            return Ok(());
        }
        self.parts = match std::mem::take(&mut self.parts) {
            Parts::None => Parts::One(part, value),
            Parts::One(first, v) => Parts::Many(vec![(first, v), (part, value)]),
            Parts::Many(mut parts) => {
                parts.push((part, value));
                Parts::Many(parts)
            }
        };
        Ok(())
    }

    /// The record's stored bytes and how many keys they came from (the parts are
    /// taken).
    fn assemble(&mut self) -> Result<(Bytes, usize)> {
        let parts = match std::mem::take(&mut self.parts) {
            Parts::One(suffix::UNSPLIT, bytes) => return Ok((bytes, 1)),
            Parts::None => Vec::new(),
            Parts::One(part, value) => vec![(part, value)],
            Parts::Many(parts) => parts,
        };
        assemble(&self.primary_key, parts)
    }
}

/// The type of the record a scan decoded last (its shared name and descriptor): a
/// stored name equal to it is matched as bytes, with no UTF-8 check and no metadata
/// lookup per record.
#[derive(Default)]
pub(crate) struct LastRecordType(Option<(Arc<str>, prost_reflect::MessageDescriptor)>);

/// One batch of a raw record scan; the cursor module (issue 5) wraps this.
#[derive(Clone, Debug)]
pub(crate) struct RawScan {
    pub records: Vec<RawRecord>,
    /// The limit stopped the scan before the end of the range.
    #[allow(dead_code)] // for the cursor module
    pub more: bool,
    /// Keys that are no record keys (after the records prefix), passed over by a scan
    /// that skips them (the checker's); any other scan fails on the first.
    pub bad_keys: Vec<Vec<u8>>,
}

/// Per-transaction state shared by the clones of one store handle.
#[derive(Default)]
struct Local {
    /// Order of the next save in this transaction.
    next_order: u32,
    /// Versions of records saved in this transaction, by primary-key bytes.
    saved: BTreeMap<Vec<u8>, RecordVersion>,
    /// Versionstamped mutations, applied when the transaction commits, when the last
    /// handle is dropped or by [`RecordStore::prepare_commit`]: key → (param, op).
    pending: BTreeMap<Vec<u8>, (Vec<u8>, MutationType)>,
}

struct Shared<T: Transaction> {
    tx: T,
    local: Mutex<Local>,
    /// Whether `local.saved` ever held a version (set under the lock, before insert).
    saved_any: AtomicBool,
}

impl<T: Transaction> Shared<T> {
    fn flush(&self) {
        // Never panics, even on a lock poisoned by a panic elsewhere: this runs in `Drop`,
        // where a second panic would abort the process.
        let mut local = self
            .local
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let pending = std::mem::take(&mut local.pending);
        drop(local);
        for (key, (param, op)) in pending {
            self.tx.atomic_op(&key, &param, op);
        }
    }
}

impl<T: Transaction> Drop for Shared<T> {
    fn drop(&mut self) {
        self.flush();
    }
}

/// A record store opened in one transaction.
///
/// Every operation reads what it needs, validates, and only then writes, so a failed
/// operation writes nothing. Index updates are derived from the difference between
/// the stored record and the new one, which makes saves and deletes idempotent: a
/// retry after `commit_unknown_result` whose first attempt committed changes nothing.
///
/// Versionstamped writes (record versions, VERSION index entries) are buffered by the
/// handle, so that a later change in the transaction can cancel them, and written when
/// the transaction commits (or the last clone of the handle is dropped, whichever is
/// first). Use one handle per store per transaction attempt (the record order within
/// the transaction is per handle): open it inside the closure given to
/// [`Database::run`](crate::kv::Database::run), so that each retry opens its own.
///
/// ```
/// use fdb_records::backend::embedded::EmbeddedDatabase;
/// use fdb_records::key_expression::{empty, field};
/// use fdb_records::kv::Database;
/// use fdb_records::metadata::{Index, IndexType, RecordMetaData, RecordTypeDef};
/// use fdb_records::store::{RecordStore, RecordStoreError};
/// use foundationdb_tuple::{Element, Subspace};
/// use prost_reflect::{DynamicMessage, Value};
/// use std::sync::Arc;
/// # futures::executor::block_on(async {
/// # let pool = fdb_records::metadata::example_pool();
/// const USER: &str = "examples.users.User";
/// let metadata = Arc::new(RecordMetaData::builder(pool.clone())
///     .record_type(RecordTypeDef::new(USER).primary_key(field("id")))
///     .index(Index::new("by_email", IndexType::Value, field("email")).on(USER).unique())
///     .index(Index::new("users", IndexType::Count, empty().ungrouped()).on(USER))
///     .build().unwrap());
/// let db = EmbeddedDatabase::in_memory().unwrap();
/// let mut user = DynamicMessage::new(pool.get_message_by_name(USER).unwrap());
/// user.set_field_by_name("id", Value::I64(1));
/// user.set_field_by_name("email", Value::String("a@example.com".into()));
/// db.run(|tx, _| {
///     let (metadata, user) = (metadata.clone(), user.clone());
///     async move {
///         let store = RecordStore::open(&tx, Subspace::from("app"), metadata).await?;
///         store.save_dynamic(&user, Default::default()).await?;
///         Ok::<_, RecordStoreError>(())
///     }
/// }).await.unwrap();
/// let (loaded, users) = db.run(|tx, _| {
///     let metadata = metadata.clone();
///     async move {
///         let store = RecordStore::open(&tx, Subspace::from("app"), metadata).await?;
///         let loaded = store.load_dynamic(&[Element::Int(1)]).await?;
///         Ok::<_, RecordStoreError>((loaded, store.count("users", &[]).await?))
///     }
/// }).await.unwrap();
/// assert_eq!(loaded.unwrap().message, user);
/// assert_eq!(users, 1);
/// # });
/// ```
pub struct RecordStore<T: Transaction> {
    shared: Arc<Shared<T>>,
    layout: StoreLayout,
    metadata: Arc<RecordMetaData>,
    state: Arc<StoreState>,
    maintainers: Maintainers,
}

impl<T: Transaction> Clone for RecordStore<T> {
    fn clone(&self) -> Self {
        RecordStore {
            shared: self.shared.clone(),
            layout: self.layout.clone(),
            metadata: self.metadata.clone(),
            state: self.state.clone(),
            maintainers: self.maintainers.clone(),
        }
    }
}

impl<T: Transaction> RecordStore<T> {
    /// Opens (creating or upgrading as needed) the store under `subspace`.
    pub async fn open(tx: &T, subspace: Subspace, metadata: Arc<RecordMetaData>) -> Result<Self> {
        Self::open_with(tx, subspace, metadata, &OpenOptions::default()).await
    }

    /// Opens with explicit [`OpenOptions`].
    pub async fn open_with(
        tx: &T,
        subspace: Subspace,
        metadata: Arc<RecordMetaData>,
        options: &OpenOptions,
    ) -> Result<Self> {
        let opened = open_store(tx, subspace, &metadata, options).await?;
        let maintainers = metadata.maintainers().clone();
        Ok(RecordStore {
            shared: Arc::new(Shared {
                tx: tx.clone(),
                local: Mutex::new(Local::default()),
                saved_any: AtomicBool::new(false),
            }),
            layout: opened.layout,
            metadata,
            state: opened.state,
            maintainers,
        })
    }

    /// The transaction the store was opened in.
    pub fn transaction(&self) -> &T {
        &self.shared.tx
    }
    /// The store's key layout.
    pub fn layout(&self) -> &StoreLayout {
        &self.layout
    }
    /// The metadata the store was opened with.
    pub fn metadata(&self) -> &Arc<RecordMetaData> {
        &self.metadata
    }
    /// The store header as read when opening.
    pub fn header(&self) -> &RecordStoreHeader {
        &self.state.header
    }
    /// The state of an index, as read when opening.
    pub fn index_state(&self, index: &str) -> Result<IndexState> {
        self.state
            .index_states
            .get(index)
            .copied()
            .ok_or_else(|| RecordStoreError::UnknownIndex {
                index: index.to_string(),
            })
    }
    pub(crate) fn maintainer(&self, index: &str) -> Result<&Maintainer> {
        self.maintainers
            .get(index)
            .ok_or_else(|| RecordStoreError::UnknownIndex {
                index: index.to_string(),
            })
    }

    /// The version of a record saved through this handle in this transaction (by
    /// primary-key bytes): scans report it in place of the stored one.
    pub(crate) fn local_version(&self, pk_bytes: &[u8]) -> Option<RecordVersion> {
        if !self.shared.saved_any.load(Ordering::Relaxed) {
            // Scans ask for every record; most transactions that scan saved nothing.
            return None;
        }
        self.local().saved.get(pk_bytes).copied()
    }

    fn local(&self) -> MutexGuard<'_, Local> {
        // The state holds plain maps, each change a single insert or remove: a panic
        // elsewhere while it was held leaves it whole.
        self.shared
            .local
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Writes the buffered versionstamped mutations into the transaction now. The
    /// backends of this crate do it at commit; a [`Transaction`] implemented elsewhere
    /// may not run commit hooks ([`Transaction::on_commit`]), and then this (or dropping
    /// the last handle) must come before the commit.
    pub fn prepare_commit(&self) {
        self.shared.flush();
    }

    // ---- saving ----

    /// Saves a generated record (insert or update).
    pub async fn save_record<M: Record>(&self, record: &M) -> Result<SavedRecord> {
        self.save_record_with(record, RecordExistence::Any).await
    }

    /// Saves a generated record with an existence requirement.
    pub async fn save_record_with<M: Record>(
        &self,
        record: &M,
        existence: RecordExistence,
    ) -> Result<SavedRecord> {
        self.save_dynamic(&record.transcode_to_dynamic(), existence)
            .await
    }

    /// Saves a dynamic record. See the [type docs](Self) for the guarantees.
    pub async fn save_dynamic(
        &self,
        message: &DynamicMessage,
        existence: RecordExistence,
    ) -> Result<SavedRecord> {
        let tx = &self.shared.tx;
        let record_type = self.metadata.record_type_of(message)?;
        let pk = self.metadata.primary_key(message)?;
        let record_key_len = self.layout.record_key(&pk, suffix::FIRST_CHUNK).len() + 1;
        if record_key_len > limits::MAX_KEY_SIZE {
            return Err(RecordStoreError::KeyTooLarge {
                what: "record".into(),
                primary_key: pk,
                size: record_key_len,
                limit: limits::MAX_KEY_SIZE,
            });
        }
        let bytes = envelope::encode(record_type, message);

        // Reads and validation: nothing is written until every check passed.
        let old = match self.read_raw(&pk, false).await? {
            Some(raw) => Some(self.decode(raw)?),
            None => None,
        };
        match (existence, &old) {
            (RecordExistence::MustExist, None) => {
                return Err(RecordStoreError::RecordDoesNotExist { primary_key: pk })
            }
            (RecordExistence::MustNotExist, Some(_)) => {
                return Err(RecordStoreError::RecordAlreadyExists { primary_key: pk })
            }
            _ => {}
        }
        // The order within the transaction exists only to tell versions apart.
        let order = if self.metadata.stores_record_versions() {
            let local = self.local();
            Some(
                u16::try_from(local.next_order)
                    .map_err(|_| RecordStoreError::TooManySavesInTransaction)?,
            )
        } else {
            None
        };
        let version = order.map(RecordVersion::incomplete);
        let new = IndexRecord {
            primary_key: &pk,
            record_type,
            message,
            version,
        };
        let writes = self.plan_indexes(&pk, old.as_ref(), Some(new)).await?;
        let chunks = split::split(&bytes);
        let index_bytes: usize = writes.iter().map(write_size).sum();
        // The record's chunks, and the clear of its range (as a mutation and as the write
        // conflict that covers the chunks).
        let size = tx.get_approximate_size().await?.max(0) as usize
            + chunks
                .iter()
                .map(|(_, v)| v.len() + record_key_len)
                .sum::<usize>()
            + 4 * (record_key_len + 1)
            + index_bytes;
        if size > limits::MAX_TRANSACTION_SIZE {
            return Err(RecordStoreError::RecordTooLarge {
                primary_key: pk,
                size,
                limit: limits::MAX_TRANSACTION_SIZE,
            });
        }

        // Writes.
        let record = self.layout.record(&pk);
        let (begin, end) = record.range();
        tx.clear_range(&begin, &end);
        for (suffix, value) in &chunks {
            tx.set(&record.pack(suffix), value);
        }
        if let Some(order) = order {
            let mut local = self.local();
            local.next_order += 1;
            self.shared.saved_any.store(true, Ordering::Relaxed);
            local.saved.insert(
                layout::primary_key_bytes(&pk),
                RecordVersion::incomplete(order),
            );
            let value =
                foundationdb_tuple::pack_with_versionstamp(&(Versionstamp::incomplete(order),));
            self.buffer(
                &mut local,
                self.layout.record_version_key(&pk),
                value,
                MutationType::SetVersionstampedValue,
            );
        }
        self.apply(writes);
        if old.is_none() {
            tx.atomic_op(
                &self.layout.record_count_key(),
                &index::encode_i64(1),
                MutationType::Add,
            );
        }
        Ok(SavedRecord {
            primary_key: pk,
            version,
            created: old.is_none(),
            size: bytes.len(),
            values: chunks.len(),
        })
    }

    /// Plans every index update for a change of record `pk`, honouring index states:
    /// disabled indexes are skipped; a write-only index is maintained only if `pk` lies
    /// in a range its online build has finished (the builder indexes the rest).
    async fn plan_indexes(
        &self,
        pk: &KeyTuple,
        old: Option<&StoredRecord>,
        new: Option<IndexRecord<'_>>,
    ) -> Result<Vec<IndexWrite>> {
        let old_type = match old {
            Some(o) => Some(self.record_type(&o.record_type, &o.primary_key)?),
            None => None,
        };
        let old_record = match (old, old_type) {
            (Some(o), Some(t)) => Some(IndexRecord {
                primary_key: pk,
                record_type: t,
                message: &o.message,
                version: o.version,
            }),
            _ => None,
        };
        let mut writes = Vec::new();
        let mut pk_bytes = None;
        for (name, maintainer) in self.maintainers.iter() {
            let index = maintainer.index();
            let (o, n) = (covered(index, old_record), covered(index, new));
            if o.is_none() && n.is_none() {
                continue;
            }
            match self
                .state
                .index_states
                .get(name)
                .copied()
                .unwrap_or(IndexState::Readable)
            {
                IndexState::Disabled => continue,
                IndexState::WriteOnly => {
                    let point = pk_bytes.get_or_insert_with(|| layout::primary_key_bytes(pk));
                    if !range_set::contains(&self.shared.tx, &self.layout, name, point).await? {
                        continue;
                    }
                }
                IndexState::Readable => {}
            }
            writes.extend(
                maintainer
                    .plan_update(&self.shared.tx, &self.layout, o, n, UpdateMode::Save)
                    .await?,
            );
        }
        Ok(writes)
    }

    /// Buffers a versionstamped write until the commit. The first write into an empty
    /// buffer asks the transaction to flush it when it commits (held weakly: if the
    /// last handle is dropped first, its drop has written the buffer), so that the
    /// writes are committed even when a handle outlives the commit.
    fn buffer(&self, local: &mut Local, key: Vec<u8>, value: Vec<u8>, op: MutationType) {
        if local.pending.is_empty() {
            let weak = Arc::downgrade(&self.shared);
            self.shared.tx.on_commit(Box::new(move || {
                if let Some(shared) = weak.upgrade() {
                    shared.flush();
                }
            }));
        }
        local.pending.insert(key, (value, op));
    }

    pub(crate) fn apply(&self, writes: Vec<IndexWrite>) {
        let tx = &self.shared.tx;
        for write in writes {
            match write {
                IndexWrite::Set { key, value } => tx.set(&key, &value),
                IndexWrite::Clear { key } => tx.clear(&key),
                IndexWrite::Atomic { key, param, op } => tx.atomic_op(&key, &param, op),
                IndexWrite::SetVersionstampedKey { template, value } => {
                    let mut local = self.local();
                    self.buffer(
                        &mut local,
                        template,
                        value,
                        MutationType::SetVersionstampedKey,
                    );
                }
                IndexWrite::CancelVersionstampedKey { template } => {
                    self.local().pending.remove(&template);
                }
            }
        }
    }

    fn record_type(&self, name: &str, pk: &KeyTuple) -> Result<&RecordType> {
        self.metadata
            .record_type(name)
            .ok_or_else(|| RecordStoreError::CorruptRecord {
                primary_key: pk.clone(),
                detail: format!("unknown record type `{name}`"),
            })
    }

    // ---- deleting ----

    /// Deletes a record and its index entries. Returns whether it existed (deleting an
    /// absent record is a no-op, so a retried delete is harmless).
    pub async fn delete_record(&self, pk: &[Element<'_>]) -> Result<bool> {
        check_tuple(pk)?;
        let pk = owned(pk);
        let Some(raw) = self.read_raw(&pk, false).await? else {
            return Ok(false);
        };
        let old = self.decode(raw)?;
        let writes = self.plan_indexes(&pk, Some(&old), None).await?;
        let tx = &self.shared.tx;
        let (begin, end) = self.layout.record(&pk).range();
        tx.clear_range(&begin, &end);
        if self.metadata.stores_record_versions() {
            let mut local = self.local();
            local.saved.remove(&layout::primary_key_bytes(&pk));
            local.pending.remove(&self.layout.record_version_key(&pk));
        }
        self.apply(writes);
        tx.atomic_op(
            &self.layout.record_count_key(),
            &index::encode_i64(-1),
            MutationType::Add,
        );
        Ok(true)
    }

    /// Deletes every record and all index data (entries, aggregates, build progress,
    /// uniqueness violations) and resets the record count. The header and index
    /// states are kept.
    pub async fn delete_all_records(&self) -> Result<()> {
        let tx = &self.shared.tx;
        for s in [
            space::RECORDS,
            space::INDEX,
            space::INDEX_SECONDARY,
            space::RECORD_COUNT,
            space::INDEX_RANGE,
            space::INDEX_UNIQUENESS_VIOLATIONS,
            space::INDEX_BUILD,
        ] {
            let sub = self.layout.store().subspace(&(s,));
            let (begin, end) = sub.range();
            tx.clear_range(&begin, &end);
            tx.clear(sub.bytes());
        }
        let mut local = self.local();
        local.saved.clear();
        local.pending.clear();
        Ok(())
    }

    // ---- loading ----

    /// Loads a generated record; a record of another type is a
    /// [`RecordStoreError::TypeMismatch`].
    ///
    /// It returns no version, so it reads none: one point read for an unsplit record
    /// (use [`load_dynamic`](Self::load_dynamic) or
    /// [`load_record_version`](Self::load_record_version) for the version).
    pub async fn load_record<M: Record>(&self, pk: &[Element<'_>]) -> Result<Option<M>> {
        check_tuple(pk)?;
        let data_key = self.layout.record_key(pk, suffix::UNSPLIT);
        if let Some(bytes) = self.shared.tx.get(&data_key, false).await? {
            return Ok(Some(self.decode_typed(pk, &bytes)?));
        }
        // A split record, or none (see `load_dynamic`).
        let pk = owned(pk);
        match self.read_raw(&pk, false).await? {
            Some(mut raw) => {
                let (bytes, _) = raw.assemble()?;
                Ok(Some(self.decode_typed(&pk, &bytes)?))
            }
            None => Ok(None),
        }
    }

    /// Loads a record with its version. A torn or corrupt record is an error, never data.
    ///
    /// The unsplit value and the version are two point reads issued together (one
    /// round trip on FoundationDB, and cheaper than a range read on both backends);
    /// when the metadata stores no versions, the unsplit value is the only read.
    /// Only when there is no unsplit value (a split record, or none) does it fall back
    /// to a range read of the record, whose read conflict covers all its keys. Saves
    /// clear a record's whole range, so an unsplit value never sits next to leftover
    /// chunks; the checker reports it if one ever does.
    pub async fn load_dynamic(&self, pk: &[Element<'_>]) -> Result<Option<StoredRecord>> {
        check_tuple(pk)?;
        let tx = &self.shared.tx;
        let (data, version) = if self.metadata.stores_record_versions() {
            let (data_key, version_key) = self.layout.record_data_and_version_keys(pk);
            let (data, version) =
                futures::join!(tx.get(&data_key, false), tx.get(&version_key, false));
            (data?, version?)
        } else {
            // A version key left by a save made while versions were stored is not read.
            let data_key = self.layout.record_key(pk, suffix::UNSPLIT);
            (tx.get(&data_key, false).await?, None)
        };
        let pk = owned(pk);
        let Some(bytes) = data else {
            return match self.read_raw(&pk, false).await? {
                Some(raw) => Ok(Some(self.decode(raw)?)),
                None => Ok(None),
            };
        };
        let mut version = match version {
            Some(v) => Some(decode_version(&pk, &v)?),
            None => None,
        };
        if self.shared.saved_any.load(Ordering::Relaxed) {
            if let Some(v) = self.local().saved.get(&layout::primary_key_bytes(&pk)) {
                version = Some(*v);
            }
        }
        Ok(Some(self.decode_bytes(
            pk,
            &bytes,
            1,
            version,
            &mut LastRecordType::default(),
        )?))
    }

    /// The version of a record (incomplete if saved in this transaction). `None`,
    /// without a read, when the metadata stores no versions.
    pub async fn load_record_version(&self, pk: &[Element<'_>]) -> Result<Option<RecordVersion>> {
        check_tuple(pk)?;
        if !self.metadata.stores_record_versions() {
            return Ok(None);
        }
        let pk = owned(pk);
        if let Some(v) = self.local().saved.get(&layout::primary_key_bytes(&pk)) {
            return Ok(Some(*v));
        }
        let key = self.layout.record_version_key(&pk);
        match self.shared.tx.get(&key, false).await? {
            Some(value) => Ok(Some(decode_version(&pk, &value)?)),
            None => Ok(None),
        }
    }

    /// Whether a record exists (reads only its first data key).
    pub async fn exists(&self, pk: &[Element<'_>]) -> Result<bool> {
        check_tuple(pk)?;
        let record = self.layout.record(pk);
        let begin = record.pack(&suffix::UNSPLIT);
        let (_, end) = record.range();
        let found = self
            .shared
            .tx
            .get_range(
                &RangeOption::from_keys(&begin, &end).with_limit(1),
                1,
                false,
            )
            .await?;
        Ok(!found.key_values.is_empty())
    }

    /// The number of records in the store (atomic counter, space 4).
    pub async fn record_count(&self) -> Result<i64> {
        let value = self
            .shared
            .tx
            .get(&self.layout.record_count_key(), false)
            .await?;
        Ok(value.map(|v| index::decode_i64(&v)).unwrap_or(0))
    }

    /// Records in primary-key order (or reverse), up to `options.limit`.
    pub async fn scan_records(
        &self,
        range: &RecordRange,
        options: ScanOptions,
    ) -> Result<Vec<StoredRecord>> {
        check_bounds(&range.low, &range.high)?;
        let (low, high) = range.to_bytes();
        let scan = self
            .scan_raw(&low, &high, options.reverse, options.limit, false, false)
            .await?;
        scan.records.into_iter().map(|r| self.decode(r)).collect()
    }

    /// Reads the raw parts of the records whose primary-key bytes lie in `[low, high)`,
    /// grouped per record, stopping after `limit` records. A key that is no record key
    /// fails the scan, unless `skip_bad_keys`.
    pub(crate) async fn scan_raw(
        &self,
        low: &[u8],
        high: &[u8],
        reverse: bool,
        limit: Option<usize>,
        snapshot: bool,
        skip_bad_keys: bool,
    ) -> Result<RawScan> {
        if limit == Some(0) {
            // Nothing is read, so nothing is known of what lies beyond.
            return Ok(RawScan {
                records: Vec::new(),
                more: true,
                bad_keys: Vec::new(),
            });
        }
        let records = self.layout.records();
        let begin = [records.bytes(), low].concat();
        let end = [records.bytes(), high].concat();
        let mut range = RangeOption::from_keys(&begin, &end);
        if reverse {
            range = range.reversed();
        }
        // Read as a snapshot; a serializable scan then takes a read conflict on exactly
        // the records it returns (not on the keys read past its limit).
        let mut batches = self.shared.tx.get_ranges(range, true);
        let mut out: Vec<RawRecord> = Vec::new();
        let mut current: Option<(Bytes, RawRecord)> = None;
        let mut more = false;
        let mut bad_keys = Vec::new();
        'scan: while let Some(batch) = batches.next().await {
            for kv in batch?.key_values {
                if let Some((pk_bytes, raw)) = current.as_mut() {
                    if let Some(part) = self.suffix_within(&kv.key, pk_bytes) {
                        if !self.ignores_part(part) {
                            raw.add_part(part, kv.value)?;
                        }
                        continue;
                    }
                }
                let (pk, pk_range, part) = match self.parse_record_key(&kv.key) {
                    Err(RecordStoreError::CorruptRecordKey { key }) if skip_bad_keys => {
                        bad_keys.push(key);
                        continue;
                    }
                    parsed => parsed?,
                };
                if self.ignores_part(part) {
                    // Passed over before it starts a record: a lone one makes none.
                    continue;
                }
                let pk_bytes = kv.key.slice(pk_range);
                if current.as_ref().is_none_or(|(b, _)| *b != pk_bytes) {
                    if let Some((_, done)) = current.take() {
                        out.push(done);
                        if limit.is_some_and(|l| out.len() >= l) {
                            more = true;
                            break 'scan;
                        }
                    }
                    current = Some((pk_bytes, RawRecord::new(pk)));
                }
                let (_, raw) = current.as_mut().expect("set above");
                raw.add_part(part, kv.value)?;
            }
        }
        if let Some((_, done)) = current.take() {
            out.push(done);
        }
        if !snapshot {
            let (conflict_begin, conflict_end) = match (more, out.last()) {
                (true, Some(last)) if !reverse => (
                    begin,
                    [
                        records.bytes(),
                        &layout::primary_key_bytes_after(&last.primary_key),
                    ]
                    .concat(),
                ),
                (true, Some(last)) => (
                    [
                        records.bytes(),
                        &layout::primary_key_bytes(&last.primary_key),
                    ]
                    .concat(),
                    end,
                ),
                _ => (begin, end),
            };
            self.shared.tx.add_conflict_range(
                &conflict_begin,
                &conflict_end,
                crate::kv::ConflictRangeType::Read,
            )?;
        }
        let local = self.local();
        for raw in &mut out {
            if let Some(v) = local
                .saved
                .get(&layout::primary_key_bytes(&raw.primary_key))
            {
                raw.version = Some(*v);
            }
        }
        // A record whose only key is a version (corrupt while versions are stored) still
        // comes back, so that the decoder reports it.
        Ok(RawScan {
            records: out,
            more,
            bad_keys,
        })
    }

    /// A record key's primary key, where its primary-key bytes are in `key` (see
    /// [`layout::primary_key_bytes`]) and its suffix.
    pub(crate) fn parse_record_key(
        &self,
        key: &[u8],
    ) -> Result<(KeyTuple, std::ops::Range<usize>, i64)> {
        match self.layout.parse_record_key(key) {
            Some((pk, pk_len, suffix)) => {
                let start = self.layout.records().bytes().len();
                Ok((pk, start..start + pk_len, suffix))
            }
            None => Err(RecordStoreError::CorruptRecordKey {
                key: key
                    .get(self.layout.records().bytes().len()..)
                    .unwrap_or(key)
                    .to_vec(),
            }),
        }
    }

    /// Whether reads pass over a record's key with suffix `part` as if it were absent:
    /// a version key when the metadata stores no versions. Saves made while it did
    /// left them; a save or delete of the record clears them.
    pub(crate) fn ignores_part(&self, part: i64) -> bool {
        part == suffix::VERSION && !self.metadata.stores_record_versions()
    }

    /// The suffix of `key` if it is a key of the record whose packed primary key is
    /// `pk_bytes`, unpacking only the suffix; `None` for any other key. A packed primary
    /// key is a nested tuple, whose encoding is never a prefix of another's, so the
    /// prefix test is exact. Scans use it for every key after a record's first.
    pub(crate) fn suffix_within(&self, key: &[u8], pk_bytes: &[u8]) -> Option<i64> {
        let rest = key
            .strip_prefix(self.layout.records().bytes())?
            .strip_prefix(pk_bytes)?;
        foundationdb_tuple::unpack::<i64>(rest).ok()
    }

    /// Reads one record's keys (data, chunks, version).
    pub(crate) async fn read_raw(
        &self,
        pk: &KeyTuple,
        snapshot: bool,
    ) -> Result<Option<RawRecord>> {
        let low = layout::primary_key_bytes(pk);
        let high = layout::primary_key_bytes_after(pk);
        let scan = self
            .scan_raw(&low, &high, false, None, snapshot, false)
            .await?;
        Ok(scan.records.into_iter().next())
    }

    /// [`read_raw`](Self::read_raw) as the checker reads: a snapshot, passing over keys
    /// that are no record keys (the records phase reports them).
    pub(crate) async fn read_raw_skipping_bad_keys(
        &self,
        pk: &KeyTuple,
    ) -> Result<Option<RawRecord>> {
        let low = layout::primary_key_bytes(pk);
        let high = layout::primary_key_bytes_after(pk);
        let scan = self.scan_raw(&low, &high, false, None, true, true).await?;
        Ok(scan.records.into_iter().next())
    }

    /// Reassembles and decodes raw parts.
    pub(crate) fn decode(&self, raw: RawRecord) -> Result<StoredRecord> {
        self.decode_scanned(raw, &mut LastRecordType::default())
    }

    /// [`decode`](Self::decode) for a scan, which keeps the type of the record it
    /// decoded last in `last`.
    pub(crate) fn decode_scanned(
        &self,
        mut raw: RawRecord,
        last: &mut LastRecordType,
    ) -> Result<StoredRecord> {
        let (bytes, values) = raw.assemble()?;
        self.decode_bytes(raw.primary_key, &bytes, values, raw.version, last)
    }

    /// Decodes a record's reassembled bytes (`values`: how many keys they came from).
    pub(crate) fn decode_bytes(
        &self,
        primary_key: KeyTuple,
        bytes: &[u8],
        values: usize,
        version: Option<RecordVersion>,
        last: &mut LastRecordType,
    ) -> Result<StoredRecord> {
        let envelope = EnvelopeRef::parse_expecting(bytes, last.0.as_ref().map(|(n, _)| &**n))
            .map_err(|e| corrupt(&primary_key, e))?;
        if envelope.record_type != Some(TypeRef::Expected) {
            let record_type = self.record_type_of(&primary_key, envelope.record_type)?;
            last.0 = Some((
                record_type.shared_name().clone(),
                record_type.descriptor.clone(),
            ));
        }
        let (record_type, descriptor) = last.0.as_ref().expect("set above or expected");
        let message = DynamicMessage::decode(descriptor.clone(), envelope.message)
            .map_err(|e| corrupt(&primary_key, e.to_string()))?;
        Ok(StoredRecord {
            record_type: record_type.clone(),
            message,
            version,
            size: bytes.len(),
            values,
            primary_key,
        })
    }

    /// Decodes a record's bytes straight into a generated type (no dynamic message in
    /// between).
    fn decode_typed<M: Record>(&self, pk: &[Element<'_>], bytes: &[u8]) -> Result<M> {
        let (record_type, message) = self.open_envelope(pk, bytes)?;
        let expected = M::record_descriptor();
        if record_type.descriptor != expected {
            return Err(RecordTypeMismatch {
                expected: expected.full_name().to_string(),
                found: record_type.name.clone(),
            }
            .into());
        }
        M::decode(message).map_err(|e| corrupt(pk, e.to_string()))
    }

    /// Opens a record's envelope in place: its record type and its message bytes.
    fn open_envelope<'b>(
        &self,
        pk: &[Element<'_>],
        bytes: &'b [u8],
    ) -> Result<(&RecordType, &'b [u8])> {
        let envelope = EnvelopeRef::parse(bytes).map_err(|e| corrupt(pk, e))?;
        Ok((
            self.record_type_of(pk, envelope.record_type)?,
            envelope.message,
        ))
    }

    /// The record type an envelope names.
    fn record_type_of(
        &self,
        pk: &[Element<'_>],
        named: Option<TypeRef<'_>>,
    ) -> Result<&RecordType> {
        match named {
            Some(TypeRef::Name(name)) => self.metadata.record_type(name),
            Some(TypeRef::Key(key)) => self
                .metadata
                .record_types()
                .values()
                .find(|t| t.explicit_type_key == Some(key)),
            // Only a reader that expects a type is told it found it.
            Some(TypeRef::Expected) | None => None,
        }
        .ok_or_else(|| corrupt(pk, format!("unknown record type {named:?}")))
    }
}

fn corrupt(pk: &[Element<'_>], detail: String) -> RecordStoreError {
    RecordStoreError::CorruptRecord {
        primary_key: owned(pk),
        detail,
    }
}

/// Reassembles a record's parts: its stored bytes and how many keys they came from.
fn assemble(pk: &KeyTuple, parts: Vec<(i64, Bytes)>) -> Result<(Bytes, usize)> {
    match split::assemble(parts) {
        Ok(Some(found)) => Ok(found),
        Ok(None) => Err(RecordStoreError::CorruptRecord {
            primary_key: pk.clone(),
            detail: "a version without record data".into(),
        }),
        Err(SplitError::Torn(detail)) => Err(RecordStoreError::TornRecord {
            primary_key: pk.clone(),
            detail,
        }),
        Err(SplitError::Corrupt(detail)) => Err(RecordStoreError::CorruptRecord {
            primary_key: pk.clone(),
            detail,
        }),
    }
}

/// `record` if `index` covers its record type.
fn covered<'r>(
    index: &crate::metadata::Index,
    record: Option<IndexRecord<'r>>,
) -> Option<IndexRecord<'r>> {
    record.filter(|r| index.covers(&r.record_type.name))
}

/// A caller's tuple, checked before anything packs it (see [`layout::check_packable`]).
pub(crate) fn check_tuple(tuple: &[Element<'_>]) -> Result<()> {
    layout::check_packable(tuple).map_err(|detail| RecordStoreError::InvalidTuple { detail })
}

/// The tuples of a caller's range bounds, checked (see [`check_tuple`]).
pub(crate) fn check_bounds(low: &Bound<KeyTuple>, high: &Bound<KeyTuple>) -> Result<()> {
    for bound in [low, high] {
        if let Bound::Included(t) | Bound::Excluded(t) = bound {
            check_tuple(t)?;
        }
    }
    Ok(())
}

fn owned(pk: &[Element<'_>]) -> KeyTuple {
    pk.iter().cloned().map(Element::into_owned).collect()
}

/// What a write adds to the transaction's size as FoundationDB counts it: the
/// mutation, plus its write conflict range `[key, key\x00)`.
fn write_size(w: &IndexWrite) -> usize {
    let conflict = |key: &[u8]| 2 * key.len() + 1;
    match w {
        IndexWrite::Set { key, value } => key.len() + value.len() + conflict(key),
        IndexWrite::Clear { key } => key.len() + conflict(key),
        IndexWrite::Atomic { key, param, .. } => key.len() + param.len() + conflict(key),
        IndexWrite::SetVersionstampedKey { template, value } => {
            template.len() + value.len() + conflict(template)
        }
        IndexWrite::CancelVersionstampedKey { .. } => 0,
    }
}

pub(crate) fn decode_version(pk: &KeyTuple, value: &[u8]) -> Result<RecordVersion> {
    match foundationdb_tuple::unpack::<(Versionstamp,)>(value) {
        Ok((stamp,)) => Ok(RecordVersion::from_versionstamp(&stamp)),
        Err(_) => Err(RecordStoreError::CorruptRecord {
            primary_key: pk.clone(),
            detail: "undecodable record version".into(),
        }),
    }
}
