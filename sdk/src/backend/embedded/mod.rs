//! The embedded engine: FoundationDB's transaction semantics, in-process and durable.
//!
//! | FoundationDB | here |
//! |---|---|
//! | sequencer + read versions | the last committed batch's storage snapshot, shared by transactions that start before the next batch |
//! | resolvers | [`resolver`](self) history of write-conflict sets over the MVCC window (5 s) |
//! | commit proxies batching | pipelined group commit: one durable storage write per batch, the next batch filling during its sync; overlapping commits' syncs on a log thread, as FoundationDB's client runs its network on a thread of its own |
//! | storage servers' in-memory versions | a write layer (`overlay.rs`): batches published but not yet committed to redb, merged over its snapshot |
//! | storage servers | redb, behind a small internal seam (`storage.rs`) |
//! | atomic mutations, versionstamps | applied at commit with FoundationDB's byte semantics |
//!
//! Guarantees: serializable commits with FoundationDB's conflict rules; a commit
//! returns only once its batch is durable (in on-disk mode); a batch is applied
//! atomically, so after a crash every acknowledged commit is present and no
//! transaction is partially visible. Limits and error codes are FoundationDB's.
//! One process at a time may open a database file.
//!
//! ```
//! use fdb_records::backend::embedded::EmbeddedDatabase;
//! use fdb_records::kv::{Database, FdbError, MutationType, Transaction};
//! # futures::executor::block_on(async {
//! let dir = tempfile::tempdir().unwrap();
//! let db = EmbeddedDatabase::open(dir.path().join("data.redb")).unwrap();
//! db.run(|tx, _| async move {
//!     tx.atomic_op(b"visits", &1i64.to_le_bytes(), MutationType::Add);
//!     Ok::<_, FdbError>(())
//! }).await.unwrap();
//! # });
//! ```

mod atomic;
mod clock;
mod commit;
mod engine;
mod faults;
mod intervals;
mod overlay;
mod resolver;
mod storage;
mod transaction;
mod wal;
mod write_buffer;

pub use clock::{Clock, ManualClock, SystemClock};
pub use faults::FaultConfig;
pub use transaction::EmbeddedTransaction;

use crate::kv::{limits, Database, FdbError, FdbResult};
use engine::{Engine, EngineHandle};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Why an embedded database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot open embedded database at {path}: {source}")]
    Storage { path: PathBuf, source: FdbError },
    #[error("cannot create in-memory database: {0}")]
    InMemory(FdbError),
}

/// Commit counters of an [`EmbeddedDatabase`] since it was opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Durable storage writes: one per commit batch (group commit).
    pub batches: u64,
    /// Transactions committed (read-only transactions are not counted).
    pub committed: u64,
    /// Commits rejected: conflicts, `transaction_too_old` and injected faults.
    pub rejected: u64,
}

/// An embedded database. Clones share it; it closes when the last clone and the last
/// transaction are dropped.
#[derive(Clone)]
pub struct EmbeddedDatabase {
    engine: EngineHandle,
}

impl std::fmt::Debug for EmbeddedDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedDatabase")
            .field("committed_version", &self.committed_version())
            .finish()
    }
}

/// Options for opening an [`EmbeddedDatabase`].
pub struct EmbeddedBuilder {
    clock: Arc<dyn Clock>,
    faults: Option<FaultConfig>,
    lifetime: Duration,
    checkpoint_batches: u32,
    seed: u64,
    log_thread: Option<bool>,
}

impl EmbeddedBuilder {
    /// Time source (default: [`SystemClock`]); use [`ManualClock`] for deterministic runs.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }
    /// Turns on seeded fault injection.
    pub fn faults(mut self, faults: FaultConfig) -> Self {
        self.faults = Some(faults);
        self
    }
    /// Seeds the engine's own random choices (default 0): the jitter of retry
    /// backoff, which FoundationDB's client draws from its deterministic random
    /// source. Under a [`ManualClock`] and a single-threaded executor, the same seed
    /// gives the same run. Fault injection has its own seed ([`FaultConfig::seed`]).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    /// How long a read version stays valid (FoundationDB: 5 s).
    pub fn max_transaction_lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }
    /// Commit batches between checkpoints of an on-disk database (default 2048): a
    /// checkpoint makes redb durable and empties the write-ahead log, so fewer batches
    /// mean a shorter replay on open but more frequent full syncs.
    pub fn checkpoint_every(mut self, batches: u32) -> Self {
        self.checkpoint_batches = batches.max(1);
        self
    }
    /// Whether an on-disk database may sync its log on a thread of its own when
    /// commits overlap, so that a commit's sync does not block the executor thread it
    /// runs on (default: yes). Never under a [manual clock](Clock::is_manual), whose
    /// runs must repeat exactly. Commits that come one at a time always sync on the
    /// committing thread. In memory there is nothing to sync.
    ///
    /// ```
    /// use fdb_records::backend::embedded::EmbeddedDatabase;
    /// let dir = tempfile::tempdir().unwrap();
    /// // Every sync on the committing thread, as under a manual clock.
    /// let db = EmbeddedDatabase::builder()
    ///     .log_thread(false)
    ///     .open(dir.path().join("data.redb"))
    ///     .unwrap();
    /// # drop(db);
    /// ```
    pub fn log_thread(mut self, enabled: bool) -> Self {
        self.log_thread = Some(enabled);
        self
    }
    /// Opens or creates a durable database file.
    pub fn open(self, path: impl AsRef<Path>) -> Result<EmbeddedDatabase, OpenError> {
        let path = path.as_ref();
        let wrap = |source| OpenError::Storage {
            path: path.to_path_buf(),
            source,
        };
        let storage = storage::Storage::open(path, self.checkpoint_batches).map_err(wrap)?;
        self.build(storage).map_err(wrap)
    }
    /// Creates a database that lives in memory only.
    pub fn in_memory(self) -> Result<EmbeddedDatabase, OpenError> {
        let storage = storage::Storage::in_memory().map_err(OpenError::InMemory)?;
        self.build(storage).map_err(OpenError::InMemory)
    }
    fn build(self, storage: storage::Storage) -> FdbResult<EmbeddedDatabase> {
        let log_thread = self.log_thread.unwrap_or(true) && !self.clock.is_manual();
        let engine = Engine::new(
            storage,
            self.clock,
            self.lifetime,
            self.faults,
            self.seed,
            log_thread,
        )?;
        let engine = Arc::new(engine);
        engine.pipeline.serve(Arc::downgrade(&engine));
        Ok(EmbeddedDatabase {
            engine: EngineHandle::new(engine),
        })
    }
}

impl EmbeddedDatabase {
    /// Options for opening a database.
    pub fn builder() -> EmbeddedBuilder {
        EmbeddedBuilder {
            clock: Arc::new(SystemClock::default()),
            faults: None,
            lifetime: limits::MAX_TRANSACTION_LIFETIME,
            checkpoint_batches: storage::CHECKPOINT_BATCHES,
            seed: 0,
            log_thread: None,
        }
    }
    /// Opens or creates a durable database file with default options.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, OpenError> {
        Self::builder().open(path)
    }
    /// A fresh in-memory database with default options.
    pub fn in_memory() -> Result<Self, OpenError> {
        Self::builder().in_memory()
    }
    /// Replaces (or with `None` turns off) fault injection.
    pub fn set_faults(&self, faults: Option<FaultConfig>) {
        self.engine.set_faults(faults);
    }
    /// The version of the last committed batch.
    pub fn committed_version(&self) -> i64 {
        self.engine.committed_version() as i64
    }
    /// Commit counters since this database was opened.
    pub fn stats(&self) -> EngineStats {
        use std::sync::atomic::Ordering::Relaxed;
        let c = &self.engine.stats;
        EngineStats {
            batches: c.batches.load(Relaxed),
            committed: c.committed.load(Relaxed),
            rejected: c.rejected.load(Relaxed),
        }
    }
}

impl Database for EmbeddedDatabase {
    type Transaction = EmbeddedTransaction;

    fn create_transaction(&self) -> FdbResult<EmbeddedTransaction> {
        Ok(EmbeddedTransaction::new(self.engine.clone()))
    }
}
