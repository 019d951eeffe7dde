//! The seam between the engine and redb: durable snapshots and atomic batch writes.
//!
//! Nothing above this module knows redb exists. The engine needs exactly three
//! things from storage: a consistent snapshot at the last committed version, point
//! and range reads on it, and an atomic, durable write of one commit batch together
//! with the batch's version.
//!
//! On disk, durability comes from the [write-ahead log](super::wal). A batch is applied
//! request by request in a redb write transaction that stays open while the batch
//! fills ([`Storage::begin_batch`]), so that the work overlaps the previous batch's log
//! sync; [`Storage::commit_batch`] then commits it to redb without a sync, appends its
//! record to the log and syncs. Nothing reads a batch before its record is durable:
//! the engine publishes the snapshot that shows it only then. Every
//! [`CHECKPOINT_BATCHES`] batches (configurable) or [`CHECKPOINT_BYTES`] of log, a
//! batch is committed durably to redb instead, which makes everything so far durable
//! there, and the log starts over. Opening replays logged batches newer than redb's
//! durable version.
//!
//! A failed commit, log write or sync fails the storage for good (until it is
//! reopened): redb may hold the batch already, the next batch is applied on top of it,
//! and after a failed `fdatasync` the kernel may have dropped the dirty pages, so a
//! retry could report durable what is not (PostgreSQL stops on a failed fsync likewise).

use super::wal::{wal_path, RecordEncoder, Wal, WalOp};
use crate::kv::{code, FdbError, METADATA_VERSION_KEY};
use redb::{
    backends::InMemoryBackend, Database, Durability, ReadOnlyTable, ReadableDatabase,
    ReadableTable, TableDefinition,
};
use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

const DATA: TableDefinition<&[u8], &[u8]> = TableDefinition::new("data");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const META_VERSION: &str = "committed_version";

/// Default number of batches between checkpoints.
pub(crate) const CHECKPOINT_BATCHES: u32 = 2048;
/// Log size that forces a checkpoint.
pub(crate) const CHECKPOINT_BYTES: u64 = 32 << 20;

pub(crate) fn storage_error(e: impl std::fmt::Display) -> FdbError {
    // Surfaced as FoundationDB's io_error: not retryable, the caller must look.
    eprintln!("fdb-records embedded engine storage error: {e}");
    FdbError::from_code(code::IO_ERROR)
}

/// Durable ordered key-value storage with snapshot reads.
pub(crate) struct Storage {
    db: Database,
    /// The log of an on-disk database; `None` in memory.
    wal: Option<Mutex<Wal>>,
    /// When the next checkpoint is due (on disk).
    checkpoints: Mutex<Checkpoints>,
    /// A batch could not be committed or logged: redb may hold writes that will never
    /// be durable, so no further batch is accepted and closing leaves redb as it is.
    failed: AtomicBool,
}

/// Batches and log bytes since the last checkpoint.
struct Checkpoints {
    every: u32,
    batches: u32,
    bytes: u64,
}

/// One write to apply in a batch, already resolved to plain sets and clears.
pub(crate) enum StorageWrite<'a> {
    Set(&'a [u8], &'a [u8]),
    Clear(&'a [u8]),
    ClearRange(&'a [u8], &'a [u8]),
}

impl Storage {
    /// Opens (or creates) the database file at `path`, replaying its log.
    pub(crate) fn open(path: &Path, checkpoint_batches: u32) -> Result<Self, FdbError> {
        if !path.exists() {
            create_atomically(path)?;
        }
        let db = Database::open(path).map_err(storage_error)?;
        let (wal, records) = Wal::open(&wal_path(path))?;
        let mut storage = Self::init(db)?;
        let durable = storage.snapshot()?.version();
        let pending: Vec<_> = records
            .into_iter()
            .filter(|r| r.version > durable)
            .collect();
        if let Some(last) = pending.last().map(|r| r.version) {
            let tx = storage.begin(Durability::Immediate)?;
            {
                let mut data = tx.open_table(DATA).map_err(storage_error)?;
                let mut writer = BatchWriter {
                    table: &mut data,
                    record: None,
                };
                for op in pending.iter().flat_map(|r| &r.ops) {
                    writer.apply(match op {
                        WalOp::Set(k, v) => StorageWrite::Set(k, v),
                        WalOp::Clear(k) => StorageWrite::Clear(k),
                        WalOp::ClearRange(b, e) => StorageWrite::ClearRange(b, e),
                    })?;
                }
                let mut meta = tx.open_table(META).map_err(storage_error)?;
                meta.insert(META_VERSION, last).map_err(storage_error)?;
            }
            tx.commit().map_err(storage_error)?;
        }
        let mut wal = wal;
        wal.truncate()?;
        storage.wal = Some(Mutex::new(wal));
        storage.checkpoints.get_mut().expect("checkpoints").every = checkpoint_batches.max(1);
        Ok(storage)
    }

    /// A fresh database that lives in memory only.
    pub(crate) fn in_memory() -> Result<Self, FdbError> {
        let db = Database::builder()
            .create_with_backend(InMemoryBackend::new())
            .map_err(storage_error)?;
        Self::init(db)
    }

    fn init(db: Database) -> Result<Self, FdbError> {
        let tx = db.begin_write().map_err(storage_error)?;
        tx.open_table(DATA).map_err(storage_error)?;
        tx.open_table(META).map_err(storage_error)?;
        tx.commit().map_err(storage_error)?;
        Ok(Storage {
            db,
            wal: None,
            checkpoints: Mutex::new(Checkpoints {
                every: CHECKPOINT_BATCHES,
                batches: 0,
                bytes: 0,
            }),
            failed: AtomicBool::new(false),
        })
    }

    fn begin(&self, durability: Durability) -> Result<redb::WriteTransaction, FdbError> {
        let mut tx = self.db.begin_write().map_err(storage_error)?;
        tx.set_durability(durability).map_err(storage_error)?;
        Ok(tx)
    }

    /// A snapshot of the last committed batch.
    pub(crate) fn snapshot(&self) -> Result<StorageSnapshot, FdbError> {
        let tx = self.db.begin_read().map_err(storage_error)?;
        let data = tx.open_table(DATA).map_err(storage_error)?;
        let meta = tx.open_table(META).map_err(storage_error)?;
        let version = meta
            .get(META_VERSION)
            .map_err(storage_error)?
            .map(|v| v.value())
            .unwrap_or(0);
        // Read once per snapshot: every store open asks for it.
        let metadata_version = data
            .get(METADATA_VERSION_KEY)
            .map_err(storage_error)?
            .map(|v| v.value().to_vec());
        Ok(StorageSnapshot {
            data,
            version,
            metadata_version,
        })
    }

    /// Starts the write of the batch with `version`: a redb write transaction that
    /// stays open while the batch's requests are applied, one by one, as they arrive.
    /// Blocks while the previous batch's transaction is still open.
    pub(crate) fn begin_batch(&self, version: u64) -> Result<StorageBatch, FdbError> {
        self.check_usable()?;
        Ok(StorageBatch {
            tx: self.begin(Durability::None)?,
            record: self.wal.is_some().then(|| RecordEncoder::new(version)),
            version,
        })
    }

    /// Commits a batch and makes it durable: records its version, commits the redb
    /// transaction without a sync (so that the next batch can begin), then appends the
    /// batch's record to the log and syncs. Every [`CHECKPOINT_BATCHES`] batches (or
    /// [`CHECKPOINT_BYTES`] of log) the batch is committed durably instead, which makes
    /// redb durable up to it, and the log starts over. Returns the snapshot that shows
    /// the batch, for the caller to publish; nothing may read the batch before this
    /// returns.
    ///
    /// Batches must be committed in version order. On an error the batch is not
    /// applied (`io_error`), or not known to be (`commit_unknown_result`: redb holds it
    /// and makes it durable when it closes, whether or not its log record is); either
    /// way storage fails for good (see the module documentation), as later batches
    /// would build on it.
    pub(crate) fn commit_batch(&self, batch: StorageBatch) -> Result<StorageSnapshot, FdbError> {
        self.check_usable()?;
        let committed = self.commit_and_log(batch);
        if committed.is_err() {
            self.fail();
        }
        committed
    }

    fn commit_and_log(&self, batch: StorageBatch) -> Result<StorageSnapshot, FdbError> {
        let StorageBatch {
            mut tx,
            record,
            version,
        } = batch;
        {
            let mut meta = tx.open_table(META).map_err(storage_error)?;
            meta.insert(META_VERSION, version).map_err(storage_error)?;
        }
        let Some(record) = record.map(RecordEncoder::finish) else {
            tx.commit().map_err(storage_error)?;
            return self.snapshot();
        };
        let wal = self.wal.as_ref().expect("a record is kept on disk only");
        let checkpoint = {
            let mut due = self.checkpoints.lock().unwrap_or_else(|p| p.into_inner());
            due.batches += 1;
            due.bytes += record.len() as u64;
            let now = due.batches >= due.every || due.bytes >= CHECKPOINT_BYTES;
            if now {
                (due.batches, due.bytes) = (0, 0);
            }
            now
        };
        if checkpoint {
            // Durable in redb with everything before it: nothing in the log is needed
            // any more, this batch included.
            tx.set_durability(Durability::Immediate)
                .map_err(storage_error)?;
            tx.commit().map_err(storage_error)?;
            return committed_then(|| {
                wal.lock().unwrap_or_else(|p| p.into_inner()).rewind()?;
                self.snapshot()
            });
        }
        tx.commit().map_err(storage_error)?;
        committed_then(|| {
            let snapshot = self.snapshot()?;
            let mut wal = wal.lock().unwrap_or_else(|p| p.into_inner());
            wal.write(&record)?;
            wal.sync()?;
            Ok(snapshot)
        })
    }

    /// Whether a batch is made durable by a sync (on disk), rather than in memory only.
    pub(crate) fn syncs(&self) -> bool {
        self.wal.is_some()
    }

    fn check_usable(&self) -> Result<(), FdbError> {
        if self.failed.load(Ordering::Acquire) {
            return Err(storage_error(
                "an earlier commit batch could not be committed or logged; reopen the database",
            ));
        }
        Ok(())
    }

    fn fail(&self) {
        self.failed.store(true, Ordering::Release);
    }

    /// Makes everything committed to redb durable there and empties the log, for a
    /// clean close.
    fn checkpoint_on_close(&self, wal: &mut Wal) -> Result<(), FdbError> {
        // An empty durable commit makes every earlier non-durable commit durable.
        let tx = self.begin(Durability::Immediate)?;
        tx.commit().map_err(storage_error)?;
        wal.truncate()
    }
}

/// Runs what follows a batch's redb commit: once redb holds the batch it may become
/// durable whatever happens next, so a failure then is an unknown result.
fn committed_then<T>(rest: impl FnOnce() -> Result<T, FdbError>) -> Result<T, FdbError> {
    rest().map_err(|e| {
        eprintln!("fdb-records: a commit batch in redb could not be logged: {e}");
        FdbError::from_code(code::COMMIT_UNKNOWN_RESULT)
    })
}

/// One batch's storage write while the batch fills (see [`Storage::begin_batch`]).
pub(crate) struct StorageBatch {
    tx: redb::WriteTransaction,
    /// The batch's log record; `None` in memory.
    record: Option<RecordEncoder>,
    version: u64,
}

impl StorageBatch {
    /// Applies one request's writes; reads in `apply` see the batch's earlier writes.
    /// After an error the batch must be dropped (which applies none of it).
    pub(crate) fn apply<F>(&mut self, apply: F) -> Result<(), FdbError>
    where
        F: FnOnce(&mut BatchWriter<'_, '_>) -> Result<(), FdbError>,
    {
        let mut data = self.tx.open_table(DATA).map_err(storage_error)?;
        apply(&mut BatchWriter {
            table: &mut data,
            record: self.record.as_mut(),
        })
    }
}

/// Creates an empty database at `path` so that a crash leaves either no file or a
/// complete one: a crash halfway through creating a redb file in place leaves a file
/// that can never be opened.
fn create_atomically(path: &Path) -> Result<(), FdbError> {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".creating");
    let staging = path.with_file_name(name);
    match std::fs::remove_file(&staging) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(storage_error(e)),
    }
    let db = Database::create(&staging).map_err(storage_error)?;
    drop(Storage::init(db)?);
    std::fs::rename(&staging, path).map_err(storage_error)?;
    // Make the rename itself durable.
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(storage_error)
}

impl Drop for Storage {
    /// A clean close leaves nothing to replay on the next open.
    fn drop(&mut self) {
        let Some(log) = self.wal.take() else { return };
        if self.failed.load(Ordering::Acquire) {
            // No checkpoint and no log changes: reopening replays what the log holds
            // (redb still makes its last non-durable commits durable as it closes;
            // their batches were reported as unknown results).
            return;
        }
        let mut wal = log.into_inner().unwrap_or_else(|p| p.into_inner());
        if wal.len() == 0 {
            // Records of earlier rounds may remain after a rewind; leave an empty file.
            if let Err(e) = wal.truncate() {
                eprintln!("fdb-records: emptying the log on close failed: {e}");
            }
            return;
        }
        if let Err(e) = self.checkpoint_on_close(&mut wal) {
            eprintln!("fdb-records: checkpoint on close failed; the log will be replayed: {e}");
        }
    }
}

/// Writes inside one batch; reads see the batch's earlier writes.
pub(crate) struct BatchWriter<'a, 't> {
    table: &'a mut redb::Table<'t, &'static [u8], &'static [u8]>,
    /// The batch's log record, which gets each resolved write.
    record: Option<&'a mut RecordEncoder>,
}

impl BatchWriter<'_, '_> {
    pub(crate) fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, FdbError> {
        Ok(self
            .table
            .get(key)
            .map_err(storage_error)?
            .map(|v| v.value().to_vec()))
    }

    pub(crate) fn apply(&mut self, write: StorageWrite<'_>) -> Result<(), FdbError> {
        match write {
            StorageWrite::Set(k, v) => {
                self.table.insert(k, v).map_err(storage_error)?;
            }
            StorageWrite::Clear(k) => {
                self.table.remove(k).map_err(storage_error)?;
            }
            StorageWrite::ClearRange(b, e) => {
                if b < e {
                    self.table
                        .retain_in::<&[u8], _>(b..e, |_, _| false)
                        .map_err(storage_error)?;
                }
            }
        }
        if let Some(record) = self.record.as_deref_mut() {
            match write {
                StorageWrite::Set(k, v) => record.set(k, v),
                StorageWrite::Clear(k) => record.clear(k),
                StorageWrite::ClearRange(b, e) => record.clear_range(b, e),
            }
        }
        Ok(())
    }
}

/// Rows of a snapshot range read, in scan order.
pub(crate) struct StoredRows {
    /// `None` for an empty range.
    range: Option<redb::Range<'static, &'static [u8], &'static [u8]>>,
    reverse: bool,
}

impl Iterator for StoredRows {
    type Item = Result<StoredRow, FdbError>;

    fn next(&mut self) -> Option<Self::Item> {
        let range = self.range.as_mut()?;
        let row = if self.reverse {
            range.next_back()?
        } else {
            range.next()?
        };
        Some(match row {
            Ok((key, value)) => Ok(StoredRow { key, value }),
            Err(e) => Err(storage_error(e)),
        })
    }
}

type Guard = redb::AccessGuard<'static, &'static [u8]>;

/// A row still on the storage page it lives on: readers copy out only what they keep.
pub(crate) struct StoredRow {
    key: Guard,
    value: Guard,
}

impl StoredRow {
    pub(crate) fn key(&self) -> &[u8] {
        self.key.value()
    }
    pub(crate) fn value(&self) -> &[u8] {
        self.value.value()
    }
}

/// A consistent read-only view of storage at one committed version.
pub(crate) struct StorageSnapshot {
    data: ReadOnlyTable<&'static [u8], &'static [u8]>,
    version: u64,
    /// The value of FoundationDB's metadata version key at this version.
    metadata_version: Option<Vec<u8>>,
}

impl StorageSnapshot {
    /// The committed version this snapshot shows.
    pub(crate) fn version(&self) -> u64 {
        self.version
    }

    /// The metadata version key's value (`None` until its first bump).
    pub(crate) fn metadata_version(&self) -> Option<&[u8]> {
        self.metadata_version.as_deref()
    }

    pub(crate) fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, FdbError> {
        Ok(self
            .data
            .get(key)
            .map_err(storage_error)?
            .map(|v| v.value().to_vec()))
    }

    /// Keys in `[begin, end)` in the given direction, lazily.
    pub(crate) fn range(
        &self,
        begin: &[u8],
        end: &[u8],
        reverse: bool,
    ) -> Result<StoredRows, FdbError> {
        let range = if begin < end {
            Some(
                self.data
                    .range::<&[u8]>((Bound::Included(begin), Bound::Excluded(end)))
                    .map_err(storage_error)?,
            )
        } else {
            None
        };
        Ok(StoredRows { range, reverse })
    }
}
