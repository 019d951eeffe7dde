//! The seam between the engine and redb: durable snapshots and atomic batch writes.
//!
//! Nothing above this module knows redb exists. The engine needs exactly three
//! things from storage: a consistent snapshot at the last committed version, point
//! and range reads on it, and an atomic, durable write of one commit batch together
//! with the batch's version.

use crate::kv::{code, FdbError};
use redb::{
    backends::InMemoryBackend, Database, Durability, ReadOnlyTable, ReadableDatabase,
    ReadableTable, TableDefinition,
};
use std::ops::Bound;
use std::path::Path;

const DATA: TableDefinition<&[u8], &[u8]> = TableDefinition::new("data");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const META_VERSION: &str = "committed_version";

pub(crate) fn storage_error(e: impl std::fmt::Display) -> FdbError {
    // Surfaced as FoundationDB's io_error: not retryable, the caller must look.
    eprintln!("fdb-records embedded engine storage error: {e}");
    FdbError::from_code(code::IO_ERROR)
}

/// Durable ordered key-value storage with snapshot reads.
pub(crate) struct Storage {
    db: Database,
    durable: bool,
}

/// One write to apply in a batch, already resolved to plain sets and clears.
pub(crate) enum StorageWrite<'a> {
    Set(&'a [u8], &'a [u8]),
    Clear(&'a [u8]),
    ClearRange(&'a [u8], &'a [u8]),
}

impl Storage {
    /// Opens (or creates) the database file at `path`.
    pub(crate) fn open(path: &Path) -> Result<Self, FdbError> {
        let db = Database::create(path).map_err(storage_error)?;
        Self::init(db, true)
    }

    /// A fresh database that lives in memory only.
    pub(crate) fn in_memory() -> Result<Self, FdbError> {
        let db = Database::builder()
            .create_with_backend(InMemoryBackend::new())
            .map_err(storage_error)?;
        Self::init(db, false)
    }

    fn init(db: Database, durable: bool) -> Result<Self, FdbError> {
        let tx = db.begin_write().map_err(storage_error)?;
        tx.open_table(DATA).map_err(storage_error)?;
        tx.open_table(META).map_err(storage_error)?;
        tx.commit().map_err(storage_error)?;
        Ok(Storage { db, durable })
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

    /// Applies `writes` and records `version` atomically; durable when this returns.
    ///
    /// `read_modify` is called for keys whose new value depends on the current one
    /// (atomic mutations): it receives the current value and returns the new one.
    pub(crate) fn write_batch<F>(&self, version: u64, mut apply: F) -> Result<(), FdbError>
    where
        F: FnMut(&mut BatchWriter<'_, '_>) -> Result<(), FdbError>,
    {
        let mut tx = self.db.begin_write().map_err(storage_error)?;
        tx.set_durability(if self.durable {
            Durability::Immediate
        } else {
            Durability::None
        })
        .map_err(storage_error)?;
        {
            let mut data = tx.open_table(DATA).map_err(storage_error)?;
            let mut writer = BatchWriter { table: &mut data };
            apply(&mut writer)?;
            let mut meta = tx.open_table(META).map_err(storage_error)?;
            meta.insert(META_VERSION, version).map_err(storage_error)?;
        }
        tx.commit().map_err(storage_error)
    }
}

/// Writes inside one batch; reads see the batch's earlier writes.
pub(crate) struct BatchWriter<'a, 't> {
    table: &'a mut redb::Table<'t, &'static [u8], &'static [u8]>,
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
        Ok(())
    }
}

/// Rows of a snapshot range read, in scan order.
pub(crate) type StoredRows<'s> =
    Box<dyn Iterator<Item = Result<(Vec<u8>, Vec<u8>), FdbError>> + 's>;

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
    pub(crate) fn range<'s>(
        &'s self,
        begin: &[u8],
        end: &[u8],
        reverse: bool,
    ) -> Result<StoredRows<'s>, FdbError> {
        if begin >= end {
            return Ok(Box::new(std::iter::empty()));
        }
        let range = self
            .data
            .range::<&[u8]>((Bound::Included(begin), Bound::Excluded(end)))
            .map_err(storage_error)?;
        type Row<'g> = (
            redb::AccessGuard<'g, &'static [u8]>,
            redb::AccessGuard<'g, &'static [u8]>,
        );
        let map = |r: Result<Row<'_>, redb::StorageError>| {
            r.map(|(k, v)| (k.value().to_vec(), v.value().to_vec()))
                .map_err(storage_error)
        };
        Ok(if reverse {
            Box::new(range.rev().map(map))
        } else {
            Box::new(range.map(map))
        })
    }
}
