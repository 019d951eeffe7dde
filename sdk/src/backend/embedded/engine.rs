//! The shared state of one embedded database: storage, the current read snapshot,
//! the commit pipeline, the resolver, fault injection and the engine's seeded random
//! source.

use super::clock::Clock;
use super::commit::Pipeline;
use super::faults::{FaultConfig, FaultInjector};
use super::storage::{Storage, StorageSnapshot};
use crate::kv::FdbResult;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// Counters since the database was opened.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) batches: AtomicU64,
    pub(crate) committed: AtomicU64,
    pub(crate) rejected: AtomicU64,
}

pub(crate) struct Engine {
    pub(crate) stats: Counters,
    pub(crate) storage: Storage,
    pub(crate) clock: Arc<dyn Clock>,
    /// MVCC window: how long a read version stays usable.
    pub(crate) lifetime: Duration,
    faults: RwLock<Option<Arc<FaultInjector>>>,
    /// Lets every read skip the lock above while fault injection is off (the default).
    faults_on: AtomicBool,
    /// Snapshot of the last committed batch, shared by every transaction that starts
    /// before the next batch (FoundationDB batches read-version requests the same way).
    pub(crate) current: RwLock<Arc<StorageSnapshot>>,
    pub(crate) pipeline: Pipeline,
    /// Record-store states cached across this database's transactions.
    pub(crate) store_states: crate::store::StoreStateCache,
    /// Draws for retry backoff jitter: seeded, so that a run repeats.
    jitter: Mutex<ChaCha8Rng>,
    /// Database and transaction handles alive (see [`EngineHandle`]).
    handles: AtomicUsize,
}

/// A database or transaction handle's hold on the engine. The log thread holds the
/// engine too, while it works; so that the engine closes (and frees its file) on the
/// thread that drops the last handle, as soon as it is dropped, the last handle to go
/// stops the log thread and waits for it.
pub(crate) struct EngineHandle(Arc<Engine>);

impl EngineHandle {
    /// The first handle on a new engine.
    pub(crate) fn new(engine: Arc<Engine>) -> Self {
        engine.handles.fetch_add(1, Ordering::AcqRel);
        EngineHandle(engine)
    }
}

impl Clone for EngineHandle {
    fn clone(&self) -> Self {
        Self::new(self.0.clone())
    }
}

impl std::ops::Deref for EngineHandle {
    type Target = Engine;
    fn deref(&self) -> &Engine {
        &self.0
    }
}

impl Drop for EngineHandle {
    fn drop(&mut self) {
        if self.0.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.pipeline.stop_log_thread(true);
        }
    }
}

impl Engine {
    pub(crate) fn new(
        storage: Storage,
        clock: Arc<dyn Clock>,
        lifetime: Duration,
        faults: Option<FaultConfig>,
        seed: u64,
        log_thread: bool,
    ) -> FdbResult<Self> {
        let log_thread = log_thread && storage.syncs();
        let snapshot = storage.snapshot()?;
        let last_version = snapshot.version();
        Ok(Engine {
            stats: Counters::default(),
            storage,
            clock,
            lifetime,
            faults_on: AtomicBool::new(faults.is_some()),
            faults: RwLock::new(faults.map(|f| Arc::new(FaultInjector::new(f)))),
            current: RwLock::new(Arc::new(snapshot)),
            pipeline: Pipeline::new(last_version, log_thread),
            store_states: crate::store::StoreStateCache::new(),
            jitter: Mutex::new(ChaCha8Rng::seed_from_u64(seed)),
            handles: AtomicUsize::new(0),
        })
    }

    /// `delay` scaled by a uniform draw from [0, 1), as FoundationDB's client scales
    /// each retry backoff: transactions that conflicted with each other then retry
    /// at different times instead of colliding again.
    pub(crate) fn jittered(&self, delay: Duration) -> Duration {
        let draw: u32 = self
            .jitter
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .random();
        // Integer arithmetic: exact, and no overflow even for `Duration::MAX`.
        let nanos = (delay.as_nanos() * u128::from(draw)) >> 32;
        const NANOS_PER_SEC: u128 = 1_000_000_000;
        Duration::new(
            (nanos / NANOS_PER_SEC) as u64,
            (nanos % NANOS_PER_SEC) as u32,
        )
    }

    /// The snapshot a new read version reads from.
    pub(crate) fn read_snapshot(&self) -> Arc<StorageSnapshot> {
        self.current.read().expect("snapshot cache").clone()
    }

    pub(crate) fn faults(&self) -> Option<Arc<FaultInjector>> {
        if !self.faults_on.load(Ordering::Acquire) {
            return None;
        }
        self.faults.read().expect("fault config").clone()
    }

    pub(crate) fn set_faults(&self, faults: Option<FaultConfig>) {
        let mut slot = self.faults.write().expect("fault config");
        self.faults_on.store(faults.is_some(), Ordering::Release);
        *slot = faults.map(|f| Arc::new(FaultInjector::new(f)));
    }

    pub(crate) fn committed_version(&self) -> u64 {
        self.read_snapshot().version()
    }
}

impl Drop for Engine {
    /// A batch still filling holds storage's write transaction; storage cannot close
    /// (and checkpoint) before it is gone.
    fn drop(&mut self) {
        self.pipeline.stop_log_thread(false);
        self.pipeline.abandon_open_batch();
    }
}
