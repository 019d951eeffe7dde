//! The seam between the engine and redb: durable snapshots and atomic batch writes.
//!
//! Nothing above this module knows redb exists. The engine needs exactly three
//! things from storage: a consistent snapshot at the last committed version, point
//! and range reads on it, and an atomic, durable write of one commit batch together
//! with the batch's version.
//!
//! On disk, durability comes from the [write-ahead log](super::wal). A batch is applied
//! to a redb write transaction as its requests arrive, while the batch fills
//! ([`Storage::begin_batch`]), so that the work overlaps the previous batch's log
//! sync; [`Storage::commit_batch`] then appends its record to the log, and
//! [`Storage::sync_log`] makes every record written so far durable (one sync may cover
//! several batches, and it runs without holding anything a committer needs).
//! Nothing reads a batch before its record is durable: the engine publishes the
//! snapshot that shows it only then. The write transaction is carried from batch to
//! batch and committed to redb (without a sync) only every [`FLUSH_BATCHES`] batches
//! or once the [write layer](super::overlay) that shows its batches to readers grows
//! past [`FLUSH_ENTRIES`] keys or [`FLUSH_BYTES`]; a snapshot is redb's last commit
//! with that layer on top. Every
//! [`CHECKPOINT_BATCHES`] batches (configurable) or [`CHECKPOINT_BYTES`] of log, a
//! batch is committed durably to redb instead, which makes everything so far durable
//! there, and the log starts over. Opening replays logged batches newer than redb's
//! durable version.
//!
//! A failed commit, log write or sync fails the storage for good (until it is
//! reopened): redb may hold the batch already, the next batch is applied on top of it,
//! and after a failed `fdatasync` the kernel may have dropped the dirty pages, so a
//! retry could report durable what is not (PostgreSQL stops on a failed fsync likewise).

use super::overlay::{self, Found, LayerScan, Overlay};
use super::wal::{wal_path, RecordEncoder, Wal, WalOp};
use crate::kv::{code, FdbError, METADATA_VERSION_KEY};
use redb::{
    backends::InMemoryBackend, Database, Durability, ReadOnlyTable, ReadableDatabase,
    ReadableTable, TableDefinition,
};
use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

const DATA: TableDefinition<&[u8], &[u8]> = TableDefinition::new("data");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const META_VERSION: &str = "committed_version";

/// Default number of batches between checkpoints.
pub(crate) const CHECKPOINT_BATCHES: u32 = 2048;
/// Log size that forces a checkpoint.
pub(crate) const CHECKPOINT_BYTES: u64 = 32 << 20;

/// Batches that share one redb write transaction at most.
pub(crate) const FLUSH_BATCHES: u32 = 64;
/// Keys in the write layer that make its batch commit the transaction to redb: the
/// layer is copied into every range read that crosses it, so it stays small.
pub(crate) const FLUSH_ENTRIES: usize = 4096;
/// Bytes of keys and values in the write layer that make its batch commit to redb.
pub(crate) const FLUSH_BYTES: usize = 4 << 20;

pub(crate) fn storage_error(e: impl std::fmt::Display) -> FdbError {
    // Surfaced as FoundationDB's io_error: not retryable, the caller must look.
    eprintln!("fdb-records embedded engine storage error: {e}");
    FdbError::from_code(code::IO_ERROR)
}

/// Durable ordered key-value storage with snapshot reads.
pub(crate) struct Storage {
    /// First, so that a write transaction still open goes before the database.
    writer: Arc<Writer>,
    db: Database,
    /// The log of an on-disk database; `None` in memory.
    wal: Option<Mutex<Wal>>,
    /// A second handle on the log's file, for syncs: a sync covers everything written
    /// through either handle, and taking it does not wait for the log's lock, so the
    /// next batch's record can be written while the previous one syncs. The lock keeps
    /// syncs one at a time: the two handles share one open file, whose write-back
    /// error the kernel reports to one sync only, so a sync running beside a failing
    /// one could report success for records that were lost.
    wal_sync: Option<Mutex<std::fs::File>>,
    /// A log sync failed: the kernel may have dropped the log's dirty pages, so no
    /// later sync can vouch for what was written before.
    sync_failed: AtomicBool,
    /// When the next checkpoint is due (on disk).
    checkpoints: Mutex<Checkpoints>,
    /// A batch could not be committed or logged: redb may hold writes that will never
    /// be durable, so no further batch is accepted and closing leaves redb as it is.
    failed: AtomicBool,
    /// Makes the next log sync fail, as a disk error would.
    #[cfg(test)]
    pub(crate) fail_next_sync: AtomicBool,
    /// Holds log syncs back while set, as a slow disk would.
    #[cfg(test)]
    pub(crate) hold_syncs: tests::Gate,
}

/// Batches and log bytes since the last checkpoint.
struct Checkpoints {
    every: u32,
    batches: u32,
    bytes: u64,
}

/// The redb write transaction that batches share, and what it holds beyond redb's
/// last commit.
struct Writer {
    state: Mutex<WriterState>,
    /// Signalled when a batch hands the transaction back.
    returned: Condvar,
}

struct WriterState {
    /// Open between batches; `None` after a commit to redb or a dropped batch (whose
    /// writes it rolled back with everything else: the next batch's transaction starts
    /// by writing `layer` again).
    tx: Option<redb::WriteTransaction>,
    /// A batch holds the transaction.
    lent: bool,
    /// The published batches not in `base`.
    layer: Layer,
    /// redb's last commit.
    base: Arc<Base>,
    /// The last published batch's version.
    version: u64,
}

impl WriterState {
    fn new(base: Base) -> Self {
        let version = base.version;
        WriterState {
            tx: None,
            lent: false,
            layer: Layer::default(),
            base: Arc::new(base),
            version,
        }
    }
}

/// The write layer with what decides when it is committed to redb.
#[derive(Clone, Default)]
struct Layer {
    map: Overlay,
    bytes: usize,
    batches: u32,
}

impl Layer {
    fn is_full(&self) -> bool {
        self.batches >= FLUSH_BATCHES
            || self.map.len() >= FLUSH_ENTRIES
            || self.bytes >= FLUSH_BYTES
    }

    /// Records a write; once the layer is full by size, records nothing more: its batch
    /// commits to redb and publishes an empty layer, so that a clear of a million keys
    /// does not also copy them all into memory.
    fn record(&mut self, key: &[u8], value: Option<&[u8]>) {
        if self.map.len() >= FLUSH_ENTRIES || self.bytes >= FLUSH_BYTES {
            return;
        }
        self.bytes += key.len() + value.map_or(0, <[u8]>::len);
        self.map.insert(key, value);
    }
}

/// redb's last committed state.
struct Base {
    data: ReadOnlyTable<&'static [u8], &'static [u8]>,
    version: u64,
}

/// A batch handed to storage, and what it still needs before it may be answered.
pub(crate) struct CommittedBatch {
    /// The snapshot that shows the batch.
    pub(crate) snapshot: StorageSnapshot,
    pub(crate) durability: BatchDurability,
}

/// How durable a committed batch is when [`Storage::commit_batch`] returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BatchDurability {
    /// In memory: nothing to wait for.
    Volatile,
    /// Its log record is written but durable only after [`Storage::sync_log`].
    Unsynced,
    /// A checkpoint: durable in redb, together with every batch before it.
    Durable,
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
                    layer: None,
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
            let base = storage.read_base()?;
            *storage.writer_state() = WriterState::new(base);
        }
        let mut wal = wal;
        wal.truncate()?;
        storage.wal_sync = Some(Mutex::new(wal.sync_handle()?));
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
        let base = read_base(&db)?;
        Ok(Storage {
            db,
            wal: None,
            wal_sync: None,
            sync_failed: AtomicBool::new(false),
            checkpoints: Mutex::new(Checkpoints {
                every: CHECKPOINT_BATCHES,
                batches: 0,
                bytes: 0,
            }),
            failed: AtomicBool::new(false),
            #[cfg(test)]
            fail_next_sync: AtomicBool::new(false),
            #[cfg(test)]
            hold_syncs: tests::Gate::default(),
            writer: Arc::new(Writer {
                state: Mutex::new(WriterState::new(base)),
                returned: Condvar::new(),
            }),
        })
    }

    fn begin(&self, durability: Durability) -> Result<redb::WriteTransaction, FdbError> {
        let mut tx = self.db.begin_write().map_err(storage_error)?;
        tx.set_durability(durability).map_err(storage_error)?;
        Ok(tx)
    }

    fn read_base(&self) -> Result<Base, FdbError> {
        read_base(&self.db)
    }

    fn writer_state(&self) -> MutexGuard<'_, WriterState> {
        self.writer.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A snapshot of the last batch handed to storage: at open (its only use), all
    /// that storage holds.
    pub(crate) fn snapshot(&self) -> Result<StorageSnapshot, FdbError> {
        let st = self.writer_state();
        StorageSnapshot::new(st.base.clone(), st.layer.map.clone(), st.version)
    }

    /// Starts the write of the batch with `version` on the shared redb write
    /// transaction, applied to as its requests arrive. Blocks while the previous batch
    /// still holds the transaction.
    pub(crate) fn begin_batch(&self, version: u64) -> Result<StorageBatch, FdbError> {
        self.check_usable()?;
        let mut st = self.writer_state();
        while st.lent {
            st = self
                .writer
                .returned
                .wait(st)
                .unwrap_or_else(|p| p.into_inner());
        }
        // The batch that held the transaction may have failed storage meanwhile.
        self.check_usable()?;
        let tx = match st.tx.take() {
            Some(tx) => tx,
            None => self.begin_over(&st.layer.map)?,
        };
        st.lent = true;
        Ok(StorageBatch {
            tx: Some(tx),
            record: self.wal.is_some().then(|| RecordEncoder::new(version)),
            version,
            layer: st.layer.clone(),
            writer: self.writer.clone(),
        })
    }

    /// A new write transaction holding `layer`'s writes (which a dropped batch rolled
    /// back with its own).
    fn begin_over(&self, layer: &Overlay) -> Result<redb::WriteTransaction, FdbError> {
        let tx = self.begin(Durability::None)?;
        if !layer.is_empty() {
            let mut data = tx.open_table(DATA).map_err(storage_error)?;
            for (k, v) in layer.iter() {
                match v {
                    Some(v) => data.insert(k, v).map(drop),
                    None => data.remove(k).map(drop),
                }
                .map_err(storage_error)?;
            }
        }
        Ok(tx)
    }

    /// Commits a batch: hands the shared write transaction (with the batch in it) back
    /// for the next batch, then appends the batch's record to the log, unsynced. When
    /// the batch fills the write layer, the transaction is committed to redb first
    /// (without a sync), and the layer starts over. Every [`CHECKPOINT_BATCHES`]
    /// batches (or [`CHECKPOINT_BYTES`] of log) it is committed durably instead, which
    /// makes redb durable up to the batch, and the log starts over. Returns the
    /// snapshot that shows the batch, for the caller to publish once the batch is
    /// durable (see [`CommittedBatch::durability`]); nothing may read the batch before.
    ///
    /// Batches must be committed in version order. On an error the batch is not
    /// applied (`io_error`), or not known to be (`commit_unknown_result`: redb may
    /// hold it and make it durable when it closes, whether or not its log record is);
    /// either way storage fails for good (see the module documentation), as later
    /// batches would build on it.
    pub(crate) fn commit_batch(&self, batch: StorageBatch) -> Result<CommittedBatch, FdbError> {
        self.check_usable()?;
        let committed = self.commit_and_log(batch);
        if committed.is_err() {
            self.fail();
        }
        committed
    }

    fn commit_and_log(&self, mut batch: StorageBatch) -> Result<CommittedBatch, FdbError> {
        let version = batch.version;
        let mut tx = batch.tx.take().expect("a batch is committed once");
        let mut layer = std::mem::take(&mut batch.layer);
        layer.batches += 1;
        let record = batch.record.take().map(RecordEncoder::finish);
        drop(batch);
        let checkpoint = record.as_ref().is_some_and(|record| {
            let mut due = self.checkpoints.lock().unwrap_or_else(|p| p.into_inner());
            due.batches += 1;
            due.bytes += record.len() as u64;
            let now = due.batches >= due.every || due.bytes >= CHECKPOINT_BYTES;
            if now {
                (due.batches, due.bytes) = (0, 0);
            }
            now
        });
        let snapshot = if checkpoint || layer.is_full() {
            // The version is written with the redb commit that holds its batch: only a
            // commit makes it readable (to the next open), so batches that stay in the
            // open transaction need not each write it.
            let versioned = (|| {
                let mut meta = tx.open_table(META).map_err(storage_error)?;
                meta.insert(META_VERSION, version).map_err(storage_error)?;
                Ok(())
            })();
            if let Err(e) = versioned {
                self.hand_back(None, None);
                return Err(e);
            }
            if checkpoint {
                // Durable in redb with everything before it: nothing in the log is
                // needed any more, this batch included.
                if let Err(e) = tx.set_durability(Durability::Immediate) {
                    self.hand_back(None, None);
                    return Err(storage_error(e));
                }
            }
            if let Err(e) = tx.commit() {
                self.hand_back(None, None);
                return Err(storage_error(e));
            }
            committed_then(|| {
                let base = match self.read_base() {
                    Ok(base) => Arc::new(base),
                    Err(e) => {
                        // Nothing to publish; storage fails, but the next batch waiting
                        // for the transaction must not wait for ever.
                        self.hand_back(None, None);
                        return Err(e);
                    }
                };
                self.hand_back(None, Some((Layer::default(), base.clone(), version)));
                StorageSnapshot::new(base, Overlay::new(), version)
            })?
        } else {
            let base = self.writer_state().base.clone();
            let map = layer.map.clone();
            self.hand_back(Some(tx), Some((layer, base.clone(), version)));
            committed_then(|| StorageSnapshot::new(base, map, version))?
        };
        let Some(record) = record else {
            return Ok(CommittedBatch {
                snapshot,
                durability: BatchDurability::Volatile,
            });
        };
        let wal = self.wal.as_ref().expect("a record is kept on disk only");
        committed_then(|| {
            let mut wal = wal.lock().unwrap_or_else(|p| p.into_inner());
            let durability = if checkpoint {
                wal.rewind()?;
                BatchDurability::Durable
            } else {
                wal.write(&record)?;
                BatchDurability::Unsynced
            };
            Ok(CommittedBatch {
                snapshot,
                durability,
            })
        })
    }

    /// Makes every log record written so far durable (one `fdatasync`). Records
    /// written while it runs may or may not be covered; the caller counts only those
    /// written before it started. A failure fails storage for good, as a failed commit
    /// does: after a failed `fdatasync` the kernel may have dropped the dirty pages,
    /// so it fails every later sync too (`commit_unknown_result`: the records it
    /// covers may or may not be on disk). A storage failure of another kind (a batch
    /// that could not be committed) does not stop the records written before it from
    /// being synced: their batches are sound.
    pub(crate) fn sync_log(&self) -> Result<(), FdbError> {
        let Some(file) = &self.wal_sync else {
            return Ok(());
        };
        let file = file.lock().unwrap_or_else(|p| p.into_inner());
        let synced = committed_then(|| {
            if self.sync_failed.load(Ordering::Acquire) {
                return Err(storage_error("an earlier log sync failed"));
            }
            #[cfg(test)]
            {
                self.hold_syncs.wait_while_held();
                if self.fail_next_sync.swap(false, Ordering::AcqRel) {
                    return Err(storage_error("injected sync failure"));
                }
            }
            file.sync_data().map_err(storage_error)
        });
        if synced.is_err() {
            self.sync_failed.store(true, Ordering::Release);
            self.fail();
        }
        synced
    }

    /// Returns the write transaction (`None`: committed or lost) for the next batch,
    /// with the layer, base and version it publishes (`None`: unchanged).
    fn hand_back(
        &self,
        tx: Option<redb::WriteTransaction>,
        published: Option<(Layer, Arc<Base>, u64)>,
    ) {
        let mut st = self.writer_state();
        st.tx = tx;
        st.lent = false;
        if let Some((layer, base, version)) = published {
            (st.layer, st.base, st.version) = (layer, base, version);
        }
        drop(st);
        self.writer.returned.notify_all();
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

    pub(crate) fn fail(&self) {
        self.failed.store(true, Ordering::Release);
    }

    /// Makes everything published durable in redb and empties the log, for a clean
    /// close. No batch may hold the write transaction any more (the engine abandons its
    /// open batch before storage is dropped): beginning one here would wait for it.
    fn checkpoint_on_close(&self, wal: &mut Wal) -> Result<(), FdbError> {
        let mut st = self.writer_state();
        let mut tx = match st.tx.take() {
            Some(tx) => tx,
            None => self.begin_over(&st.layer.map)?,
        };
        {
            let mut meta = tx.open_table(META).map_err(storage_error)?;
            meta.insert(META_VERSION, st.version)
                .map_err(storage_error)?;
        }
        // A durable commit also makes every earlier non-durable commit durable.
        tx.set_durability(Durability::Immediate)
            .map_err(storage_error)?;
        tx.commit().map_err(storage_error)?;
        st.layer = Layer::default();
        wal.truncate()
    }
}

fn read_base(db: &Database) -> Result<Base, FdbError> {
    let tx = db.begin_read().map_err(storage_error)?;
    let data = tx.open_table(DATA).map_err(storage_error)?;
    let meta = tx.open_table(META).map_err(storage_error)?;
    let version = meta
        .get(META_VERSION)
        .map_err(storage_error)?
        .map(|v| v.value())
        .unwrap_or(0);
    Ok(Base { data, version })
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
    /// The shared write transaction; `None` once committed.
    tx: Option<redb::WriteTransaction>,
    /// The batch's log record; `None` in memory.
    record: Option<RecordEncoder>,
    version: u64,
    /// The write layer with this batch's writes so far.
    layer: Layer,
    writer: Arc<Writer>,
}

impl StorageBatch {
    /// Applies writes of one or more requests; reads in `apply` see the batch's earlier
    /// writes.
    /// After an error the batch must be dropped (which applies none of it).
    pub(crate) fn apply<F>(&mut self, apply: F) -> Result<(), FdbError>
    where
        F: FnOnce(&mut BatchWriter<'_, '_>) -> Result<(), FdbError>,
    {
        let tx = self.tx.as_mut().expect("an uncommitted batch");
        let mut data = tx.open_table(DATA).map_err(storage_error)?;
        apply(&mut BatchWriter {
            table: &mut data,
            record: self.record.as_mut(),
            layer: Some(&mut self.layer),
        })
    }
}

impl Drop for StorageBatch {
    /// A batch dropped before its commit rolls the shared transaction back, earlier
    /// batches' writes with it; the next batch writes the published layer again.
    fn drop(&mut self) {
        let Some(tx) = self.tx.take() else { return };
        drop(tx);
        let mut st = self.writer.state.lock().unwrap_or_else(|p| p.into_inner());
        st.tx = None;
        st.lent = false;
        drop(st);
        self.writer.returned.notify_all();
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
            // their batches were reported as unknown results); the batches only in the
            // shared write transaction are rolled back with it, and replayed.
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
    /// The write layer, which gets each key written or removed (`None` in replay).
    layer: Option<&'a mut Layer>,
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
        let mut layer = self.layer.as_deref_mut();
        match write {
            StorageWrite::Set(k, v) => {
                self.table.insert(k, v).map_err(storage_error)?;
                if let Some(layer) = layer {
                    layer.record(k, Some(v));
                }
            }
            StorageWrite::Clear(k) => {
                let existed = self.table.remove(k).map_err(storage_error)?.is_some();
                if let Some(layer) = layer.filter(|_| existed) {
                    layer.record(k, None);
                }
            }
            StorageWrite::ClearRange(b, e) => {
                if b < e {
                    // Each key removed is recorded as cleared, so that the layer hides
                    // it from redb's snapshot without range tombstones.
                    self.table
                        .retain_in::<&[u8], _>(b..e, |k, _| {
                            if let Some(layer) = layer.as_deref_mut() {
                                layer.record(k, None);
                            }
                            false
                        })
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

type Guard = redb::AccessGuard<'static, &'static [u8]>;
type BaseRow = Result<(Guard, Guard), redb::StorageError>;

/// Rows of a snapshot range read, in scan order: redb's, with the write layer's
/// entries in the range merged over them.
pub(crate) struct StoredRows {
    /// `None` for an empty range.
    range: Option<redb::Range<'static, &'static [u8], &'static [u8]>>,
    reverse: bool,
    /// redb's next row, once looked at.
    peeked: Option<Option<BaseRow>>,
    /// The layer's entries in the range (`None` once there are no more).
    written: Option<LayerScan>,
    /// The layer's next entry, once looked at.
    written_next: Option<overlay::Written>,
}

impl StoredRows {
    fn next_base(&mut self) -> Option<BaseRow> {
        if let Some(row) = self.peeked.take() {
            return row;
        }
        let range = self.range.as_mut()?;
        let row = if self.reverse {
            range.next_back()
        } else {
            range.next()
        };
        if row.is_none() {
            self.range = None;
        }
        row
    }
}

impl StoredRows {
    /// The next row, handed to `f` where it is made: a range read that only copies a
    /// row out looks at it in place instead of moving it (two redb guards) out
    /// through every layer of iterators, a cost paid per row.
    pub(crate) fn next_into<R>(
        &mut self,
        f: impl FnOnce(StoredRow) -> R,
    ) -> Option<Result<R, FdbError>> {
        loop {
            if self.written_next.is_none() {
                self.written_next = self.written.as_mut().and_then(Iterator::next);
            }
            if self.written_next.is_none() {
                self.written = None;
                return self.next_base().map(|row| match row {
                    Ok((key, value)) => Ok(f(StoredRow::Base { key, value })),
                    Err(e) => Err(storage_error(e)),
                });
            }
            let base = match self.next_base() {
                Some(Ok((key, value))) => Some((key, value)),
                Some(Err(e)) => return Some(Err(storage_error(e))),
                None => None,
            };
            let written_key = &self.written_next.as_ref().expect("looked at").0;
            let order = base.as_ref().map(|(key, _)| {
                let order = key.value().cmp(&written_key[..]);
                if self.reverse {
                    order.reverse()
                } else {
                    order
                }
            });
            match order {
                Some(std::cmp::Ordering::Less) => {
                    let (key, value) = base.expect("compared");
                    return Some(Ok(f(StoredRow::Base { key, value })));
                }
                // Written since redb's snapshot: the layer's entry replaces the row.
                Some(std::cmp::Ordering::Equal) => {}
                Some(std::cmp::Ordering::Greater) => self.peeked = Some(base.map(Ok)),
                None => self.peeked = Some(None),
            }
            let (key, value) = self.written_next.take().expect("looked at");
            if let Some(value) = value {
                return Some(Ok(f(StoredRow::Written { key, value })));
            }
        }
    }
}

impl Iterator for StoredRows {
    type Item = Result<StoredRow, FdbError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_into(|row| row)
    }
}

/// A row still on the storage page it lives on (readers copy out only what they
/// keep), or in the write layer.
pub(crate) enum StoredRow {
    Base { key: Guard, value: Guard },
    Written { key: Arc<[u8]>, value: Arc<[u8]> },
}

impl StoredRow {
    pub(crate) fn key(&self) -> &[u8] {
        match self {
            StoredRow::Base { key, .. } => key.value(),
            StoredRow::Written { key, .. } => key,
        }
    }
    pub(crate) fn value(&self) -> &[u8] {
        match self {
            StoredRow::Base { value, .. } => value.value(),
            StoredRow::Written { value, .. } => value,
        }
    }
}

/// A consistent read-only view of storage at one committed version.
pub(crate) struct StorageSnapshot {
    base: Arc<Base>,
    /// The write layer over `base`; `None` when empty, so that reads skip it.
    layer: Option<Overlay>,
    version: u64,
    /// The value of FoundationDB's metadata version key at this version.
    metadata_version: Option<Vec<u8>>,
}

impl StorageSnapshot {
    fn new(base: Arc<Base>, layer: Overlay, version: u64) -> Result<Self, FdbError> {
        let mut snapshot = StorageSnapshot {
            base,
            layer: (!layer.is_empty()).then_some(layer),
            version,
            metadata_version: None,
        };
        // Read once per snapshot: every store open asks for it.
        snapshot.metadata_version = snapshot.get(METADATA_VERSION_KEY)?;
        Ok(snapshot)
    }

    /// The committed version this snapshot shows.
    pub(crate) fn version(&self) -> u64 {
        self.version
    }

    /// The metadata version key's value (`None` until its first bump).
    pub(crate) fn metadata_version(&self) -> Option<&[u8]> {
        self.metadata_version.as_deref()
    }

    pub(crate) fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, FdbError> {
        if let Some(Found::Written(value)) = self.layer.as_ref().map(|l| l.find(key)) {
            return Ok(value.map(<[u8]>::to_vec));
        }
        Ok(self
            .base
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
        if begin >= end {
            return Ok(StoredRows {
                range: None,
                reverse,
                peeked: None,
                written: None,
                written_next: None,
            });
        }
        let range = self
            .base
            .data
            .range::<&[u8]>((Bound::Included(begin), Bound::Excluded(end)))
            .map_err(storage_error)?;
        Ok(StoredRows {
            range: Some(range),
            reverse,
            peeked: None,
            written: self
                .layer
                .as_ref()
                .map(|layer| LayerScan::new(layer, begin, end, reverse)),
            written_next: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    type Model = BTreeMap<Vec<u8>, Vec<u8>>;

    #[derive(Clone, Debug)]
    enum Write {
        Set(u8, u8),
        Clear(u8),
        ClearRange(u8, u8),
    }

    /// Commits a batch and syncs the log, as the engine does before it answers.
    fn commit(storage: &Storage, batch: StorageBatch) -> StorageSnapshot {
        let committed = storage.commit_batch(batch).unwrap();
        storage.sync_log().unwrap();
        committed.snapshot
    }

    /// A gate that threads wait at while it is closed.
    #[derive(Default)]
    pub(crate) struct Gate {
        closed: Mutex<bool>,
        opened: Condvar,
    }

    impl Gate {
        pub(crate) fn close(&self) {
            *self.closed.lock().unwrap() = true;
        }
        pub(crate) fn open(&self) {
            *self.closed.lock().unwrap() = false;
            self.opened.notify_all();
        }
        pub(crate) fn wait_while_held(&self) {
            let mut closed = self.closed.lock().unwrap();
            while *closed {
                closed = self.opened.wait(closed).unwrap();
            }
        }
    }

    fn key(k: u8) -> Vec<u8> {
        vec![b'k', k]
    }

    fn write() -> impl Strategy<Value = Write> {
        prop_oneof![
            4 => (0u8..24, any::<u8>()).prop_map(|(k, v)| Write::Set(k, v)),
            1 => (0u8..24).prop_map(Write::Clear),
            1 => (0u8..24, 0u8..24).prop_map(|(b, e)| Write::ClearRange(b, e)),
        ]
    }

    fn apply(batch: &mut StorageBatch, writes: &[Write], model: &mut Model) {
        batch
            .apply(|w| {
                for write in writes {
                    match *write {
                        Write::Set(k, v) => {
                            w.apply(StorageWrite::Set(&key(k), &[v]))?;
                            model.insert(key(k), vec![v]);
                        }
                        Write::Clear(k) => {
                            w.apply(StorageWrite::Clear(&key(k)))?;
                            model.remove(&key(k));
                        }
                        Write::ClearRange(b, e) => {
                            w.apply(StorageWrite::ClearRange(&key(b), &key(e)))?;
                            model.retain(|k, _| !(key(b) <= *k && *k < key(e)));
                        }
                    }
                }
                Ok(())
            })
            .unwrap();
    }

    fn rows(snapshot: &StorageSnapshot, reverse: bool) -> Vec<(Vec<u8>, Vec<u8>)> {
        snapshot
            .range(&key(0), &key(255), reverse)
            .unwrap()
            .map(|r| r.map(|row| (row.key().to_vec(), row.value().to_vec())))
            .collect::<Result<_, _>>()
            .unwrap()
    }

    fn assert_shows(snapshot: &StorageSnapshot, model: &Model) {
        let expected: Vec<_> = model.clone().into_iter().collect();
        assert_eq!(rows(snapshot, false), expected);
        let mut backwards = expected;
        backwards.reverse();
        assert_eq!(rows(snapshot, true), backwards);
        for k in 0..24 {
            assert_eq!(snapshot.get(&key(k)).unwrap(), model.get(&key(k)).cloned());
        }
        // A range that starts and ends between the layer's keys.
        let inner: Vec<_> = model
            .range(key(5)..key(9))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let got: Vec<_> = snapshot
            .range(&key(5), &key(9), false)
            .unwrap()
            .map(|r| r.map(|row| (row.key().to_vec(), row.value().to_vec())))
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(got, inner);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Reads through the write layer match a plain map after every batch, across
        /// commits to redb (every `FLUSH_BATCHES` batches) and dropped batches, and an
        /// older snapshot keeps showing what it showed.
        #[test]
        fn the_write_layer_over_redb_reads_as_one_map(
            batches in prop::collection::vec(
                (prop::collection::vec(write(), 0..6), prop::bool::weighted(0.15)),
                1..150,
            ),
            keep_at in 0usize..150,
        ) {
            let storage = Storage::in_memory().unwrap();
            let mut model = Model::new();
            let mut version = storage.snapshot().unwrap().version();
            let mut kept: Option<(StorageSnapshot, Model)> = None;
            for (i, (writes, dropped)) in batches.iter().enumerate() {
                let mut batch = storage.begin_batch(version + 1).unwrap();
                let mut after = model.clone();
                apply(&mut batch, writes, &mut after);
                if *dropped {
                    drop(batch);
                    assert_shows(&storage.snapshot().unwrap(), &model);
                    continue;
                }
                let snapshot = commit(&storage, batch);
                version += 1;
                model = after;
                prop_assert_eq!(snapshot.version(), version);
                assert_shows(&snapshot, &model);
                if i == keep_at {
                    kept = Some((snapshot, model.clone()));
                }
            }
            if let Some((snapshot, then)) = kept {
                assert_shows(&snapshot, &then);
            }
            assert_shows(&storage.snapshot().unwrap(), &model);
        }
    }

    #[test]
    fn a_full_layer_is_committed_to_redb_and_starts_over() {
        let storage = Storage::in_memory().unwrap();
        let mut model = Model::new();
        for version in 1..=u64::from(FLUSH_BATCHES) {
            let mut batch = storage.begin_batch(version).unwrap();
            apply(&mut batch, &[Write::Set(version as u8 % 24, 1)], &mut model);
            let snapshot = commit(&storage, batch);
            assert_eq!(
                snapshot.layer.is_none(),
                version == u64::from(FLUSH_BATCHES),
                "version {version}"
            );
            assert_shows(&snapshot, &model);
        }
        assert_eq!(
            storage.writer_state().base.version,
            u64::from(FLUSH_BATCHES)
        );
    }

    #[test]
    fn a_batch_that_writes_more_than_the_layer_holds_reads_from_redb() {
        let storage = Storage::in_memory().unwrap();
        let many = FLUSH_ENTRIES as u32 + 100;
        let key = |i: u32| format!("many/{i:06}").into_bytes();
        let mut batch = storage.begin_batch(1).unwrap();
        batch
            .apply(|w| (0..many).try_for_each(|i| w.apply(StorageWrite::Set(&key(i), b"v"))))
            .unwrap();
        let snapshot = commit(&storage, batch);
        assert!(snapshot.layer.is_none());
        assert_eq!(
            snapshot.range(b"many/", b"many0", false).unwrap().count(),
            many as usize
        );
        // A small batch on top, then a clear of everything.
        let mut batch = storage.begin_batch(2).unwrap();
        batch
            .apply(|w| w.apply(StorageWrite::Set(b"many/x", b"x")))
            .unwrap();
        assert!(commit(&storage, batch).layer.is_some());
        let mut batch = storage.begin_batch(3).unwrap();
        batch
            .apply(|w| w.apply(StorageWrite::ClearRange(b"many/", b"many0")))
            .unwrap();
        let snapshot = commit(&storage, batch);
        assert!(snapshot.layer.is_none());
        assert_eq!(snapshot.range(b"many/", b"many0", true).unwrap().count(), 0);
        assert_eq!(snapshot.get(&key(7)).unwrap(), None);
    }

    #[test]
    fn batches_in_the_shared_transaction_survive_a_close_and_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("layer.redb");
        let mut model = Model::new();
        {
            let storage = Storage::open(&path, CHECKPOINT_BATCHES).unwrap();
            for version in 1..=3 {
                let mut batch = storage.begin_batch(version).unwrap();
                apply(&mut batch, &[Write::Set(version as u8, 7)], &mut model);
                commit(&storage, batch);
            }
            assert!(
                storage.writer_state().tx.is_some(),
                "the batches are not in redb yet"
            );
        }
        {
            // Closed cleanly: committed durably, nothing left to replay.
            let storage = Storage::open(&path, CHECKPOINT_BATCHES).unwrap();
            assert_eq!(storage.writer_state().base.version, 3);
            assert_shows(&storage.snapshot().unwrap(), &model);
            for version in 4..=6 {
                let mut batch = storage.begin_batch(version).unwrap();
                apply(
                    &mut batch,
                    &[Write::ClearRange(0, 2), Write::Set(9, 1)],
                    &mut model,
                );
                commit(&storage, batch);
            }
            // As after a crash: the shared transaction is lost, the log remains.
            storage.fail();
        }
        let storage = Storage::open(&path, CHECKPOINT_BATCHES).unwrap();
        assert_eq!(storage.snapshot().unwrap().version(), 6);
        assert_shows(&storage.snapshot().unwrap(), &model);
    }

    /// The version is written only with the redb commit of a full layer: each such
    /// commit carries its last batch's version, and a crash after one (redb keeps only
    /// its durable commits) replays the log from the version that is durable.
    #[test]
    fn a_flushed_layer_carries_its_version_through_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flush.redb");
        let mut model = Model::new();
        let last = 2 * u64::from(FLUSH_BATCHES) + 5;
        {
            let storage = Storage::open(&path, CHECKPOINT_BATCHES).unwrap();
            for version in 1..=last {
                let mut batch = storage.begin_batch(version).unwrap();
                apply(
                    &mut batch,
                    &[Write::Set(version as u8 % 24, version as u8)],
                    &mut model,
                );
                commit(&storage, batch);
                let flushed = version % u64::from(FLUSH_BATCHES) == 0;
                if flushed {
                    // What the next open would read, had redb made it durable.
                    assert_eq!(storage.read_base().unwrap().version, version);
                }
                assert_eq!(
                    storage.writer_state().base.version,
                    version - version % u64::from(FLUSH_BATCHES)
                );
            }
            storage.fail();
        }
        let storage = Storage::open(&path, CHECKPOINT_BATCHES).unwrap();
        assert_eq!(storage.snapshot().unwrap().version(), last);
        assert_eq!(storage.writer_state().base.version, last);
        assert_shows(&storage.snapshot().unwrap(), &model);
    }
}
