//! The seam between the engine and redb: durable snapshots and atomic batch writes.
//!
//! Nothing above this module knows redb exists. The engine needs exactly three
//! things from storage: a consistent snapshot at the last committed version, point
//! and range reads on it, and an atomic, durable write of one commit batch together
//! with the batch's version.
//!
//! On disk, durability comes from the [write-ahead log](super::wal): a batch is
//! resolved inside a redb write transaction, its final writes are appended to the log
//! and synced, and only then is the redb transaction committed (without a sync) and
//! made visible. Every [`CHECKPOINT_BATCHES`] batches (configurable) or [`CHECKPOINT_BYTES`] of log,
//! a durable redb commit makes everything so far durable in redb and the log is
//! emptied. Opening replays logged batches newer than redb's durable version.

use super::wal::{wal_path, RecordEncoder, Wal, WalOp};
use crate::kv::{code, FdbError};
use redb::{
    backends::InMemoryBackend, Database, Durability, ReadOnlyTable, ReadableDatabase,
    ReadableTable, TableDefinition,
};
use std::ops::Bound;
use std::path::Path;
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
    wal: Option<Mutex<LogState>>,
}

struct LogState {
    wal: Wal,
    batches_since_checkpoint: u32,
    checkpoint_batches: u32,
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
        let mut log = LogState {
            wal,
            batches_since_checkpoint: 0,
            checkpoint_batches: checkpoint_batches.max(1),
        };
        log.wal.truncate()?;
        storage.wal = Some(Mutex::new(log));
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
        Ok(Storage { db, wal: None })
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
        Ok(StorageSnapshot { data, version })
    }

    /// Applies one batch's writes and records `version`, atomically; durable (on disk)
    /// when this returns.
    ///
    /// On a log failure nothing is applied (`io_error`). If redb fails after the log
    /// holds the batch, the batch will reappear on reopen: `commit_unknown_result`.
    pub(crate) fn write_batch<F>(&self, version: u64, mut apply: F) -> Result<(), FdbError>
    where
        F: FnMut(&mut BatchWriter<'_, '_>) -> Result<(), FdbError>,
    {
        let tx = self.begin(Durability::None)?;
        let mut record = self.wal.is_some().then(|| RecordEncoder::new(version));
        {
            let mut data = tx.open_table(DATA).map_err(storage_error)?;
            let mut writer = BatchWriter {
                table: &mut data,
                record: record.as_mut(),
            };
            apply(&mut writer)?;
            let mut meta = tx.open_table(META).map_err(storage_error)?;
            meta.insert(META_VERSION, version).map_err(storage_error)?;
        }
        let Some(log) = &self.wal else {
            return tx.commit().map_err(storage_error);
        };
        let mut log = log.lock().unwrap_or_else(|p| p.into_inner());
        let record = record.expect("an on-disk batch has a record").finish();
        log.wal.write(&record)?;
        log.wal.sync()?;
        if let Err(e) = tx.commit() {
            eprintln!("fdb-records: redb commit failed after the batch was logged: {e}");
            return Err(FdbError::from_code(code::COMMIT_UNKNOWN_RESULT));
        }
        log.batches_since_checkpoint += 1;
        if log.batches_since_checkpoint >= log.checkpoint_batches
            || log.wal.len() >= CHECKPOINT_BYTES
        {
            // The batch is durable in the log either way; a failed checkpoint is retried
            // at the next batch and the log simply keeps growing meanwhile.
            if let Err(e) = self.checkpoint(&mut log, version, false) {
                eprintln!("fdb-records: checkpoint failed, will retry: {e}");
            }
        }
        Ok(())
    }

    /// Makes redb durable up to `version`, then starts the log over (`empty`: leaves
    /// an empty file, for a clean close).
    fn checkpoint(&self, log: &mut LogState, version: u64, empty: bool) -> Result<(), FdbError> {
        let tx = self.begin(Durability::Immediate)?;
        {
            let mut meta = tx.open_table(META).map_err(storage_error)?;
            meta.insert(META_VERSION, version).map_err(storage_error)?;
        }
        tx.commit().map_err(storage_error)?;
        if empty {
            log.wal.truncate()?;
        } else {
            log.wal.rewind()?;
        }
        log.batches_since_checkpoint = 0;
        Ok(())
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
        let mut log = log.into_inner().unwrap_or_else(|p| p.into_inner());
        if log.wal.len() == 0 {
            // Records of earlier rounds may remain after a rewind; leave an empty file.
            if let Err(e) = log.wal.truncate() {
                eprintln!("fdb-records: emptying the log on close failed: {e}");
            }
            return;
        }
        let version = match self.snapshot() {
            Ok(s) => s.version(),
            Err(_) => return,
        };
        if let Err(e) = self.checkpoint(&mut log, version, true) {
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

impl StoredRows {
    /// Steps over the next row without copying it out; whether there was one.
    pub(crate) fn skip_row(&mut self) -> Result<bool, FdbError> {
        let Some(range) = self.range.as_mut() else {
            return Ok(false);
        };
        let row = if self.reverse {
            range.next_back()
        } else {
            range.next()
        };
        match row {
            None => Ok(false),
            Some(Ok(_)) => Ok(true),
            Some(Err(e)) => Err(storage_error(e)),
        }
    }
}

impl Iterator for StoredRows {
    type Item = Result<(Vec<u8>, Vec<u8>), FdbError>;

    fn next(&mut self) -> Option<Self::Item> {
        let range = self.range.as_mut()?;
        Some(if self.reverse {
            copy_row(range.next_back()?)
        } else {
            copy_row(range.next()?)
        })
    }
}

type Guard = redb::AccessGuard<'static, &'static [u8]>;

/// Copies a row straight out of the page it lives on.
#[inline(always)]
fn copy_row(
    row: Result<(Guard, Guard), redb::StorageError>,
) -> Result<(Vec<u8>, Vec<u8>), FdbError> {
    match row {
        Ok((k, v)) => Ok((k.value().to_vec(), v.value().to_vec())),
        Err(e) => Err(storage_error(e)),
    }
}

/// A consistent read-only view of storage at one committed version.
pub(crate) struct StorageSnapshot {
    data: ReadOnlyTable<&'static [u8], &'static [u8]>,
    version: u64,
}

impl StorageSnapshot {
    /// The committed version this snapshot shows.
    pub(crate) fn version(&self) -> u64 {
        self.version
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
