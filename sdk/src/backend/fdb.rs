//! The production backend: the [transaction abstraction](crate::kv) over a FoundationDB
//! cluster, through the [`foundationdb`] crate (API version 730 with feature `fdb`, 740 with `fdb-7_4`).
//!
//! The adapter is thin: every call goes to the C client, which owns conflict checking,
//! retries (`on_error`), backoff, timeouts and size limits. What it adds is the glue the
//! two APIs disagree on:
//!
//! * the crate's `commit`, `on_error` and `cancel` consume the transaction while the
//!   [`Transaction`](crate::kv::Transaction) trait works on shared `&self` handles, so the
//!   native transaction lives in a mutex-guarded slot that moves between states (ready,
//!   committing, committed, commit failed, cancelled). The lock is never held across an
//!   `.await`: the crate's futures own their native handles and borrow nothing.
//! * uses that FoundationDB rejects while the native object is away are answered with
//!   the error the C client gives in that situation (`used_during_commit`,
//!   `transaction_cancelled`), including its "used during commit" protection: such a use
//!   also fails the in-flight commit.
//! * `on_error` keeps the persistent options (`timeout`, `retry_limit`,
//!   `max_retry_delay`) even where the crate only hands a transaction back through
//!   `reset`, which drops them: the adapter re-applies them there. An explicit
//!   [`Transaction::reset`](crate::kv::Transaction::reset) drops every option, as
//!   FoundationDB's does.
//! * dropping a `commit` or `on_error` future before it completes drops the native
//!   transaction inside it; the handle then reports `transaction_cancelled` until
//!   `reset` opens a fresh native transaction.
//!
//! # Starting the client
//!
//! The FoundationDB client network must be started once per process with
//! [`foundationdb::boot`] before any database is opened, and its guard must stay alive
//! (and be dropped before the process exits) while the database is in use:
//!
//! ```no_run
//! use fdb_records::backend::fdb::FdbDatabase;
//! use fdb_records::kv::{Database, FdbError, Transaction};
//!
//! // SAFETY: `network` is dropped below, after every database handle, before exit.
//! let network = unsafe { foundationdb::boot() };
//! let db = FdbDatabase::from_cluster_file(None)?; // the default cluster file
//! futures::executor::block_on(db.run(|tx, _maybe_committed| async move {
//!     tx.set(b"hello", b"world");
//!     Ok::<_, FdbError>(())
//! }))?;
//! drop(db);
//! drop(network);
//! # Ok::<_, FdbError>(())
//! ```

use crate::kv::types::BatchBuilder;
use crate::kv::{
    self, code, Committed, ConflictRangeType, FdbError, FdbResult, KeySelector, MutationType,
    RangeBatch, RangeOption, RangeResult, StreamingMode, TransactionOption,
};
use crate::store::StoreStateCache;
use foundationdb as fdb;
use foundationdb::options as fdb_opt;
use futures::future::Either;
use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// A FoundationDB database. Clones share one native database handle.
#[derive(Clone)]
pub struct FdbDatabase {
    db: Arc<fdb::Database>,
    /// Record-store states cached across this handle's transactions (per handle: two
    /// handles on one cluster keep separate caches, each kept exact by the cluster's
    /// metadata version key).
    store_states: Arc<StoreStateCache>,
}

impl FdbDatabase {
    /// Wraps an open database. The network must already be running
    /// (see [the module documentation](self)).
    pub fn new(db: fdb::Database) -> Self {
        Self::from_arc(Arc::new(db))
    }

    /// Shares a database handle someone else owns, such as the one fdbserver's
    /// simulator lends a workload for one phase: drop every `FdbDatabase` built on it
    /// before the phase ends, so the lender's handle is the last one again.
    pub fn from_arc(db: Arc<fdb::Database>) -> Self {
        FdbDatabase {
            db,
            store_states: Arc::new(StoreStateCache::new()),
        }
    }

    /// Opens the database named by a cluster file, or by the default cluster file
    /// (`/etc/foundationdb/fdb.cluster` on Linux) when `path` is `None`.
    ///
    /// The network must already be running (see [the module documentation](self)).
    pub fn from_cluster_file(path: Option<&str>) -> FdbResult<Self> {
        // A path with a NUL byte names no file (the crate would panic on it).
        if path.is_some_and(|p| p.contains('\0')) {
            return Err(FdbError::from_code(code::NO_CLUSTER_FILE_FOUND));
        }
        fdb::Database::new(path).map(Self::new).map_err(fdb_error)
    }

    /// The native database, for what the abstraction does not cover (database options,
    /// tenants, client status).
    pub fn inner(&self) -> &fdb::Database {
        &self.db
    }
}

impl fmt::Debug for FdbDatabase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FdbDatabase").finish_non_exhaustive()
    }
}

impl kv::Database for FdbDatabase {
    type Transaction = FdbTransaction;

    fn create_transaction(&self) -> FdbResult<FdbTransaction> {
        let tr = self.db.create_trx().map_err(fdb_error)?;
        Ok(FdbTransaction {
            shared: Arc::new(Shared {
                db: Arc::clone(&self.db),
                store_states: Arc::clone(&self.store_states),
                state: Mutex::new(State::new(tr)),
            }),
        })
    }
}

/// A FoundationDB transaction. Clones are handles to the same native transaction.
#[derive(Clone)]
pub struct FdbTransaction {
    shared: Arc<Shared>,
}

struct Shared {
    /// Kept to replace a native transaction the crate dropped (see [`Slot::Failed`]).
    db: Arc<fdb::Database>,
    store_states: Arc<StoreStateCache>,
    state: Mutex<State>,
}

impl Shared {
    /// Locks the state. The state is valid at every step (a slot being moved out holds a
    /// placeholder that refuses use), so a lock poisoned by a panic is simply recovered.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Where the native transaction is. The crate's `commit`, `on_error` and `cancel` take it
/// by value, so it moves between these instead of sitting behind `&self`.
enum Slot {
    Ready(fdb::Transaction),
    /// Moved into an in-flight `commit` or `on_error`.
    Busy(Busy),
    /// Committed; kept so that `reset` can reuse the native object.
    Committed(fdb::TransactionCommitted),
    /// The commit failed; kept so that `on_error` backs off with the retry count intact.
    CommitFailed(fdb::TransactionCommitError),
    Cancelled(fdb::TransactionCancelled),
    /// No native transaction: the crate dropped it when `on_error` gave up, or a
    /// replacement could not be set up. Uses fail with this error until `reset`.
    Failed(FdbError),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Busy {
    Committing,
    Retrying,
}

/// A `cancel` or `reset` asked for while the native transaction was busy, applied when
/// it comes back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AfterBusy {
    Cancel,
    Reset,
}

struct State {
    slot: Slot,
    /// The C client's "reset promise" error: set by a use during or after commit
    /// (`used_during_commit`) or by `cancel` (`transaction_cancelled`); it fails the
    /// in-flight commit or `on_error` and every later `on_error`, until `reset`.
    poison: Option<FdbError>,
    /// An error from a write, surfaced by the next read or commit (as the C client's
    /// deferred error). Only raised here for lengths the crate cannot pass to C.
    deferred: Option<FdbError>,
    after_busy: Option<AfterBusy>,
    persistent: Persistent,
    versionstamp: Option<[u8; 10]>,
    /// This attempt changed record-store state (see `mark_store_state_changed`).
    store_state_changed: bool,
    /// Run when this attempt commits (see `on_commit`).
    commit_hooks: Vec<kv::CommitHook>,
}

impl State {
    fn new(tr: fdb::Transaction) -> Self {
        State {
            slot: Slot::Ready(tr),
            poison: None,
            deferred: None,
            after_busy: None,
            persistent: Persistent::default(),
            versionstamp: None,
            store_state_changed: false,
            commit_hooks: Vec::new(),
        }
    }

    /// Why the native transaction cannot be used now (the error the C client gives for
    /// this use), or `None` when it can. `read` also surfaces the deferred error.
    fn unusable(&self, read: bool) -> Option<FdbError> {
        match &self.slot {
            Slot::Ready(_) => self.poison.or(self.deferred.filter(|_| read)),
            // During `on_error` the C client would reset under the operation, cancelling it.
            Slot::Busy(Busy::Retrying) | Slot::Cancelled(_) => Some(cancelled()),
            Slot::Busy(Busy::Committing) | Slot::Committed(_) | Slot::CommitFailed(_) => {
                Some(FdbError::from_code(code::USED_DURING_COMMIT))
            }
            Slot::Failed(e) => Some(*e),
        }
    }

    /// As [`State::unusable`], for a read or write: like the C client, a read or write
    /// once the commit has started also fails the commit and every later `on_error`.
    fn check(&mut self, read: bool) -> FdbResult<()> {
        match self.unusable(read) {
            None => Ok(()),
            Some(e) => {
                if e.code() == code::USED_DURING_COMMIT {
                    self.poison.get_or_insert(e);
                }
                Err(e)
            }
        }
    }

    /// Runs `f` on the ready native transaction, or returns why it cannot be used.
    fn with_tx<R>(
        &mut self,
        read: bool,
        f: impl FnOnce(&fdb::Transaction) -> FdbResult<R>,
    ) -> FdbResult<R> {
        self.check(read)?;
        self.ready(f)
    }

    fn ready<R>(&self, f: impl FnOnce(&fdb::Transaction) -> FdbResult<R>) -> FdbResult<R> {
        match &self.slot {
            Slot::Ready(tr) => f(tr),
            _ => Err(self
                .unusable(false)
                .unwrap_or(FdbError::from_code(code::INTERNAL_ERROR))),
        }
    }

    /// Moves the ready native transaction out for a consuming call.
    fn take(&mut self, busy: Busy) -> FdbResult<fdb::Transaction> {
        self.check(true)?;
        match std::mem::replace(&mut self.slot, Slot::Busy(busy)) {
            Slot::Ready(tr) => Ok(tr),
            other => {
                self.slot = other;
                Err(FdbError::from_code(code::INTERNAL_ERROR))
            }
        }
    }

    /// Starts the crate's `on_error` on whatever the slot holds.
    fn start_on_error(
        &mut self,
        error: FdbError,
    ) -> FdbResult<impl Future<Output = fdb::FdbResult<fdb::Transaction>> + Send + 'static> {
        if let Some(poison) = self.poison {
            return Err(poison);
        }
        let native_error = fdb::FdbError::from_code(error.code());
        let (tr, was_reset) = match std::mem::replace(&mut self.slot, Slot::Busy(Busy::Retrying)) {
            Slot::Ready(tr) => (tr, false),
            // The usual case after a failed commit: keeps the retry count and backoff.
            Slot::CommitFailed(failed) if failed.code() == error.code() => {
                return Ok(Either::Right(failed.on_error()));
            }
            // The crate only hands these back reset, which also drops the options.
            Slot::CommitFailed(failed) => (failed.reset(), true),
            Slot::Committed(done) => (done.reset(), true),
            other => {
                self.slot = other;
                return Err(self.check(false).err().unwrap_or(error));
            }
        };
        if was_reset {
            if let Err(e) = self.persistent.apply(&tr) {
                self.slot = Slot::Ready(tr);
                return Err(e);
            }
        }
        Ok(Either::Left(tr.on_error(native_error)))
    }

    /// Applies a `cancel` or `reset` requested while the transaction was busy.
    fn finish_busy(&mut self, db: &fdb::Database) {
        match self.after_busy.take() {
            Some(AfterBusy::Cancel) => self.cancel(),
            Some(AfterBusy::Reset) => self.reset(db),
            None => {}
        }
    }

    fn cancel(&mut self) {
        self.poison.get_or_insert(cancelled());
        match std::mem::replace(&mut self.slot, Slot::Failed(cancelled())) {
            Slot::Ready(tr) => self.slot = Slot::Cancelled(tr.cancel()),
            busy @ Slot::Busy(_) => {
                self.after_busy = Some(AfterBusy::Cancel);
                self.slot = busy;
            }
            // Later uses still fail with `used_during_commit`; `on_error` with the poison.
            other => self.slot = other,
        }
    }

    fn reset(&mut self, db: &fdb::Database) {
        let tr = match std::mem::replace(&mut self.slot, Slot::Failed(cancelled())) {
            Slot::Ready(mut tr) => {
                tr.reset();
                Ok(tr)
            }
            Slot::Committed(done) => Ok(done.reset()),
            Slot::CommitFailed(failed) => Ok(failed.reset()),
            Slot::Cancelled(cancelled) => Ok(cancelled.reset()),
            Slot::Failed(_) => db.create_trx().map_err(fdb_error),
            busy @ Slot::Busy(_) => {
                // As in the C client, resetting under a commit or `on_error` fails it.
                self.poison.get_or_insert(cancelled());
                self.after_busy = Some(AfterBusy::Reset);
                self.slot = busy;
                return;
            }
        };
        self.poison = None;
        self.deferred = None;
        self.store_state_changed = false;
        self.commit_hooks.clear();
        // An explicit reset is a fresh transaction: FoundationDB drops every option.
        self.persistent = Persistent::default();
        self.slot = match tr.and_then(|tr| self.persistent.apply(&tr).map(|()| tr)) {
            Ok(tr) => Slot::Ready(tr),
            Err(e) => Slot::Failed(e),
        };
    }
}

impl FdbTransaction {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.lock()
    }

    /// Buffers a write. As in the C client, a write returns nothing: a write on an
    /// unusable transaction is dropped (its error reaches the next read, commit or
    /// `on_error`), and one the crate cannot pass to C is deferred to the next read.
    fn write(&self, oversized: Option<FdbError>, f: impl FnOnce(&fdb::Transaction)) {
        let mut state = self.lock();
        if state.check(false).is_err() {
            return;
        }
        if let Some(e) = oversized {
            state.deferred.get_or_insert(e);
            return;
        }
        if let Slot::Ready(tr) = &state.slot {
            f(tr);
        }
    }
}

/// Owns the busy state of an in-flight `commit` or `on_error`. The native transaction
/// lives inside that future, so if the future is dropped before it completes, the
/// transaction is gone: the guard then leaves it cancelled (until `reset` replaces it)
/// instead of busy forever.
struct InFlight {
    shared: Arc<Shared>,
    finished: bool,
}

impl InFlight {
    fn new(shared: &Arc<Shared>) -> Self {
        InFlight {
            shared: Arc::clone(shared),
            finished: false,
        }
    }

    /// Puts the outcome back under the lock and applies any `cancel` or `reset` asked
    /// for meanwhile.
    fn finish<R>(mut self, put_back: impl FnOnce(&mut State) -> R) -> R {
        let mut state = self.shared.lock();
        let result = put_back(&mut state);
        state.finish_busy(&self.shared.db);
        self.finished = true;
        result
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let mut state = self.shared.lock();
        if matches!(state.slot, Slot::Busy(_)) {
            state.slot = Slot::Failed(cancelled());
        }
        state.finish_busy(&self.shared.db);
    }
}

impl fmt::Debug for FdbTransaction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        let slot = match &state.slot {
            Slot::Ready(_) => "ready",
            Slot::Busy(Busy::Committing) => "committing",
            Slot::Busy(Busy::Retrying) => "retrying",
            Slot::Committed(_) => "committed",
            Slot::CommitFailed(_) => "commit_failed",
            Slot::Cancelled(_) => "cancelled",
            Slot::Failed(_) => "failed",
        };
        f.debug_struct("FdbTransaction")
            .field("state", &slot)
            .field("poison", &state.poison)
            .finish_non_exhaustive()
    }
}

impl kv::Transaction for FdbTransaction {
    fn set_option(&self, option: TransactionOption) -> FdbResult<()> {
        let option = transaction_option(&option);
        let mut state = self.lock();
        // Options are not reads or writes: an unusable transaction refuses them without
        // the used-during-commit poisoning.
        state.ready(|tr| tr.set_option(option.clone()).map_err(fdb_error))?;
        state.persistent.record(&option);
        Ok(())
    }

    fn get_read_version(&self) -> impl Future<Output = FdbResult<i64>> + Send {
        let pending = self.lock().with_tx(true, |tr| Ok(tr.get_read_version()));
        async move { pending?.await.map_err(fdb_error) }
    }

    fn get(
        &self,
        key: &[u8],
        snapshot: bool,
    ) -> impl Future<Output = FdbResult<Option<Vec<u8>>>> + Send {
        let pending = self.lock().with_tx(true, |tr| {
            fits(&[key])?;
            Ok(tr.get(key, snapshot))
        });
        async move {
            let value = pending?.await.map_err(fdb_error)?;
            Ok(value.map(|v| v.to_vec()))
        }
    }

    fn get_key(
        &self,
        selector: &KeySelector,
        snapshot: bool,
    ) -> impl Future<Output = FdbResult<Vec<u8>>> + Send {
        let pending = self.lock().with_tx(true, |tr| {
            fits(&[&selector.key])?;
            Ok(tr.get_key(&key_selector(selector), snapshot))
        });
        async move { Ok(pending?.await.map_err(fdb_error)?.to_vec()) }
    }

    fn get_range(
        &self,
        range: &RangeOption,
        iteration: usize,
        snapshot: bool,
    ) -> impl Future<Output = FdbResult<RangeResult>> + Send {
        let batch = self.get_range_batch(range, iteration, snapshot);
        async move { Ok(batch.await?.into_result()) }
    }

    fn get_range_batch(
        &self,
        range: &RangeOption,
        iteration: usize,
        snapshot: bool,
    ) -> impl Future<Output = FdbResult<RangeBatch>> + Send {
        let limit = range.limit;
        let pending = self.lock().with_tx(true, |tr| {
            fits(&[&range.begin.key, &range.end.key])?;
            Ok(range_option(range).map(|opt| tr.get_range(&opt, iteration, snapshot)))
        });
        async move {
            match pending? {
                Some(batch) => Ok(range_batch(&batch.await.map_err(fdb_error)?, limit)),
                // A zero limit: nothing to read (FoundationDB would read 0 as "no limit").
                None => Ok(RangeBatch::default()),
            }
        }
    }

    fn set(&self, key: &[u8], value: &[u8]) {
        let oversized = fits(&[key]).and_then(|()| fits_value(value)).err();
        self.write(oversized, |tr| tr.set(key, value));
    }

    fn clear(&self, key: &[u8]) {
        self.write(fits(&[key]).err(), |tr| tr.clear(key));
    }

    fn clear_range(&self, begin: &[u8], end: &[u8]) {
        self.write(fits(&[begin, end]).err(), |tr| tr.clear_range(begin, end));
    }

    fn atomic_op(&self, key: &[u8], param: &[u8], op: MutationType) {
        let oversized = fits(&[key]).and_then(|()| fits_value(param)).err();
        self.write(oversized, |tr| tr.atomic_op(key, param, mutation_type(op)));
    }

    fn add_conflict_range(
        &self,
        begin: &[u8],
        end: &[u8],
        kind: ConflictRangeType,
    ) -> FdbResult<()> {
        self.lock().with_tx(false, |tr| {
            fits(&[begin, end])?;
            tr.add_conflict_range(begin, end, conflict_range_type(kind))
                .map_err(fdb_error)
        })
    }

    fn get_approximate_size(&self) -> impl Future<Output = FdbResult<i64>> + Send {
        let pending = self
            .lock()
            .with_tx(true, |tr| Ok(tr.get_approximate_size()));
        async move { pending?.await.map_err(fdb_error) }
    }

    fn commit(&self) -> impl Future<Output = FdbResult<Committed>> + Send {
        // Outside the lock: hooks write into this transaction.
        let hooks = std::mem::take(&mut self.lock().commit_hooks);
        hooks.into_iter().for_each(|hook| hook());
        let started = self.lock().take(Busy::Committing);
        let started = started.map(|tr| {
            // Taken before `commit` consumes the transaction; ready once it succeeds.
            let versionstamp = tr.get_versionstamp();
            (versionstamp, tr.commit(), InFlight::new(&self.shared))
        });
        let shared = Arc::clone(&self.shared);
        async move {
            let (versionstamp, commit, in_flight) = started?;
            let result = commit.await;
            let version = in_flight.finish(|state| {
                let outcome = match result {
                    Ok(done) => {
                        let version = done.committed_version().map_err(fdb_error);
                        state.slot = Slot::Committed(done);
                        version
                    }
                    Err(failed) => {
                        let error = fdb_error(*failed);
                        state.slot = Slot::CommitFailed(failed);
                        Err(error)
                    }
                };
                state.poison.map_or(outcome, Err)
            })?;
            // Read-only commits report version -1 and their versionstamp future fails.
            let versionstamp = if version < 0 {
                None
            } else {
                versionstamp
                    .await
                    .ok()
                    .and_then(|bytes| to_versionstamp(&bytes))
            };
            shared.lock().versionstamp = versionstamp;
            Ok(Committed {
                version,
                versionstamp,
            })
        }
    }

    fn committed_versionstamp(&self) -> Option<[u8; 10]> {
        self.lock().versionstamp
    }

    fn on_error(&self, error: FdbError) -> impl Future<Output = FdbResult<()>> + Send {
        let started = self.lock().start_on_error(error);
        let started = started.map(|retry| (retry, InFlight::new(&self.shared)));
        async move {
            let (retry, in_flight) = started?;
            let result = retry.await;
            in_flight.finish(|state| {
                let outcome = match result {
                    Ok(tr) => {
                        state.slot = Slot::Ready(tr);
                        Ok(())
                    }
                    // The crate drops the transaction when `on_error` gives up.
                    Err(e) => {
                        let e = fdb_error(e);
                        state.slot = Slot::Failed(e);
                        Err(e)
                    }
                };
                let outcome = state.poison.map_or(outcome, Err);
                if outcome.is_ok() {
                    state.deferred = None;
                    state.store_state_changed = false;
                    state.commit_hooks.clear();
                }
                outcome
            })
        }
    }

    fn reset(&self) {
        self.lock().reset(&self.shared.db);
    }

    fn cancel(&self) {
        self.lock().cancel();
    }

    fn store_state_cache(&self) -> Option<&StoreStateCache> {
        Some(&self.shared.store_states)
    }

    fn mark_store_state_changed(&self) {
        self.lock().store_state_changed = true;
    }

    fn store_state_changed(&self) -> bool {
        self.lock().store_state_changed
    }

    fn on_commit(&self, hook: kv::CommitHook) -> bool {
        self.lock().commit_hooks.push(hook);
        true
    }
}

/// The options FoundationDB keeps across `on_error` (`persistent` in `fdb.options`),
/// remembered so that `on_error` keeps them where the crate forces a reset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Persistent {
    timeout_ms: Option<i32>,
    retry_limit: Option<i32>,
    max_retry_delay_ms: Option<i32>,
}

impl Persistent {
    fn record(&mut self, option: &fdb_opt::TransactionOption) {
        match option {
            fdb_opt::TransactionOption::Timeout(ms) => self.timeout_ms = Some(*ms),
            fdb_opt::TransactionOption::RetryLimit(n) => self.retry_limit = Some(*n),
            fdb_opt::TransactionOption::MaxRetryDelay(ms) => self.max_retry_delay_ms = Some(*ms),
            _ => {}
        }
    }

    fn options(&self) -> impl Iterator<Item = fdb_opt::TransactionOption> {
        [
            self.timeout_ms.map(fdb_opt::TransactionOption::Timeout),
            self.retry_limit.map(fdb_opt::TransactionOption::RetryLimit),
            self.max_retry_delay_ms
                .map(fdb_opt::TransactionOption::MaxRetryDelay),
        ]
        .into_iter()
        .flatten()
    }

    fn apply(&self, tr: &fdb::Transaction) -> FdbResult<()> {
        self.options()
            .try_for_each(|option| tr.set_option(option).map_err(fdb_error))
    }
}

fn cancelled() -> FdbError {
    FdbError::from_code(code::TRANSACTION_CANCELLED)
}

/// The crate's error as ours: both are bare FoundationDB error codes.
fn fdb_error(error: fdb::FdbError) -> FdbError {
    FdbError::from_code(error.code())
}

/// The crate panics on lengths that do not fit the C API's `int`; such keys are far over
/// FoundationDB's limits anyway, so they get the error FoundationDB would give.
fn fits(keys: &[&[u8]]) -> FdbResult<()> {
    if keys.iter().any(|k| k.len() > i32::MAX as usize) {
        return Err(FdbError::from_code(code::KEY_TOO_LARGE));
    }
    Ok(())
}

/// As [`fits`], for values and mutation parameters.
fn fits_value(value: &[u8]) -> FdbResult<()> {
    if value.len() > i32::MAX as usize {
        return Err(FdbError::from_code(code::VALUE_TOO_LARGE));
    }
    Ok(())
}

fn key_selector(selector: &KeySelector) -> fdb::KeySelector<'_> {
    fdb::KeySelector::new(
        Cow::Borrowed(&selector.key[..]),
        selector.or_equal,
        selector.offset,
    )
}

/// Our range read as the crate's, or `None` for a zero limit, which FoundationDB would
/// read as "no limit".
fn range_option(range: &RangeOption) -> Option<fdb::RangeOption<'_>> {
    if range.limit == Some(0) {
        return None;
    }
    Some(fdb::RangeOption {
        begin: key_selector(&range.begin),
        end: key_selector(&range.end),
        // `None` becomes 0, FoundationDB's "no limit".
        limit: range.limit,
        // 0 lets the mode decide; an explicit 0 asks for the smallest batch instead.
        target_bytes: range.target_bytes.map_or(0, |bytes| bytes.max(1)),
        mode: streaming_mode(range.mode),
        reverse: range.reverse,
        ..fdb::RangeOption::default()
    })
}

/// One batch as ours, copied once out of the client's memory. FoundationDB reports
/// `more` when the row limit cut the batch short; the trait's `more` only counts rows
/// within the limit.
fn range_batch(batch: &fdb::future::FdbValues, limit: Option<usize>) -> RangeBatch {
    let bytes = batch
        .iter()
        .map(|kv| kv.key().len() + kv.value().len())
        .sum();
    let mut rows = BatchBuilder::exact(batch.len(), bytes);
    for kv in batch.iter() {
        rows.push(kv.key(), kv.value());
    }
    let more = batch.more() && limit.is_none_or(|limit| batch.len() < limit);
    rows.finish_batch(more)
}

fn streaming_mode(mode: StreamingMode) -> fdb_opt::StreamingMode {
    match mode {
        StreamingMode::WantAll => fdb_opt::StreamingMode::WantAll,
        StreamingMode::Iterator => fdb_opt::StreamingMode::Iterator,
        StreamingMode::Exact => fdb_opt::StreamingMode::Exact,
        StreamingMode::Small => fdb_opt::StreamingMode::Small,
        StreamingMode::Medium => fdb_opt::StreamingMode::Medium,
        StreamingMode::Large => fdb_opt::StreamingMode::Large,
        StreamingMode::Serial => fdb_opt::StreamingMode::Serial,
    }
}

fn mutation_type(op: MutationType) -> fdb_opt::MutationType {
    match op {
        MutationType::Add => fdb_opt::MutationType::Add,
        MutationType::BitAnd => fdb_opt::MutationType::BitAnd,
        MutationType::BitOr => fdb_opt::MutationType::BitOr,
        MutationType::BitXor => fdb_opt::MutationType::BitXor,
        MutationType::AppendIfFits => fdb_opt::MutationType::AppendIfFits,
        MutationType::Max => fdb_opt::MutationType::Max,
        MutationType::Min => fdb_opt::MutationType::Min,
        MutationType::SetVersionstampedKey => fdb_opt::MutationType::SetVersionstampedKey,
        MutationType::SetVersionstampedValue => fdb_opt::MutationType::SetVersionstampedValue,
        MutationType::ByteMin => fdb_opt::MutationType::ByteMin,
        MutationType::ByteMax => fdb_opt::MutationType::ByteMax,
        MutationType::CompareAndClear => fdb_opt::MutationType::CompareAndClear,
    }
}

fn conflict_range_type(kind: ConflictRangeType) -> fdb_opt::ConflictRangeType {
    match kind {
        ConflictRangeType::Read => fdb_opt::ConflictRangeType::Read,
        ConflictRangeType::Write => fdb_opt::ConflictRangeType::Write,
    }
}

fn transaction_option(option: &TransactionOption) -> fdb_opt::TransactionOption {
    match option {
        TransactionOption::Timeout(timeout) => {
            fdb_opt::TransactionOption::Timeout(millis(*timeout))
        }
        // -1 is FoundationDB's "no retry limit".
        TransactionOption::RetryLimit(limit) => fdb_opt::TransactionOption::RetryLimit(
            limit.map_or(-1, |n| i32::try_from(n).unwrap_or(i32::MAX)),
        ),
        TransactionOption::MaxRetryDelay(delay) => {
            fdb_opt::TransactionOption::MaxRetryDelay(millis(*delay))
        }
        // Out-of-range sizes saturate, so FoundationDB still rejects them (invalid_option_value).
        TransactionOption::SizeLimit(bytes) => {
            fdb_opt::TransactionOption::SizeLimit(i32::try_from(*bytes).unwrap_or(i32::MAX))
        }
        TransactionOption::AutomaticIdempotency => fdb_opt::TransactionOption::AutomaticIdempotency,
        TransactionOption::SnapshotRywDisable => fdb_opt::TransactionOption::SnapshotRywDisable,
        TransactionOption::SnapshotRywEnable => fdb_opt::TransactionOption::SnapshotRywEnable,
    }
}

/// Whole milliseconds for FoundationDB's millisecond options, rounded up so that a short
/// non-zero duration does not become 0 (which disables a timeout), saturating at `i32::MAX`.
fn millis(duration: Duration) -> i32 {
    i32::try_from(duration.as_nanos().div_ceil(1_000_000)).unwrap_or(i32::MAX)
}

fn to_versionstamp(bytes: &[u8]) -> Option<[u8; 10]> {
    bytes.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_selectors_keep_their_components() {
        for selector in [
            KeySelector::first_greater_or_equal(b"a".to_vec()),
            KeySelector::first_greater_than(b"b".to_vec()),
            KeySelector::last_less_than(b"c".to_vec()),
            KeySelector::last_less_or_equal(b"d".to_vec()).offset_by(-3),
        ] {
            let native = key_selector(&selector);
            assert_eq!(native.key(), &selector.key[..]);
            assert_eq!(native.or_equal(), selector.or_equal);
            assert_eq!(native.offset(), selector.offset);
        }
    }

    #[test]
    fn range_options_map_limits_bytes_mode_and_direction() {
        let unlimited = RangeOption::from_keys(b"a", b"b");
        let native = range_option(&unlimited).expect("no zero limit");
        assert_eq!(native.limit, None);
        assert_eq!(native.target_bytes, 0);
        assert_eq!(native.mode.code(), fdb_opt::StreamingMode::Iterator.code());
        assert!(!native.reverse);
        assert_eq!(native.begin.key(), b"a");
        assert_eq!(native.end.key(), b"b");

        let limited = RangeOption::from_keys(b"a", b"b")
            .with_limit(7)
            .with_target_bytes(4096)
            .with_mode(StreamingMode::Exact)
            .reversed();
        let native = range_option(&limited).expect("no zero limit");
        assert_eq!(native.limit, Some(7));
        assert_eq!(native.target_bytes, 4096);
        assert_eq!(native.mode.code(), fdb_opt::StreamingMode::Exact.code());
        assert!(native.reverse);

        let smallest = RangeOption::from_keys(b"a", b"b").with_target_bytes(0);
        assert_eq!(
            range_option(&smallest).expect("no zero limit").target_bytes,
            1
        );

        assert!(range_option(&RangeOption::from_keys(b"a", b"b").with_limit(0)).is_none());
    }

    #[test]
    fn streaming_modes_have_foundationdb_codes() {
        let expected = [
            (StreamingMode::WantAll, -2),
            (StreamingMode::Iterator, -1),
            (StreamingMode::Exact, 0),
            (StreamingMode::Small, 1),
            (StreamingMode::Medium, 2),
            (StreamingMode::Large, 3),
            (StreamingMode::Serial, 4),
        ];
        for (mode, code) in expected {
            assert_eq!(i64::from(streaming_mode(mode).code()), code, "{mode:?}");
        }
    }

    #[test]
    fn mutation_types_have_the_codes_the_trait_documents() {
        let all = [
            MutationType::Add,
            MutationType::BitAnd,
            MutationType::BitOr,
            MutationType::BitXor,
            MutationType::AppendIfFits,
            MutationType::Max,
            MutationType::Min,
            MutationType::SetVersionstampedKey,
            MutationType::SetVersionstampedValue,
            MutationType::ByteMin,
            MutationType::ByteMax,
            MutationType::CompareAndClear,
        ];
        for op in all {
            assert_eq!(
                i64::from(mutation_type(op).code()),
                i64::from(op.code()),
                "{op:?}"
            );
        }
    }

    #[test]
    fn conflict_range_types_map() {
        assert_eq!(
            conflict_range_type(ConflictRangeType::Read).code(),
            fdb_opt::ConflictRangeType::Read.code()
        );
        assert_eq!(
            conflict_range_type(ConflictRangeType::Write).code(),
            fdb_opt::ConflictRangeType::Write.code()
        );
    }

    #[test]
    fn transaction_options_map_units_and_sentinels() {
        use fdb_opt::TransactionOption as Native;
        let map = |o: TransactionOption| transaction_option(&o);
        assert!(matches!(
            map(TransactionOption::Timeout(Duration::from_millis(1500))),
            Native::Timeout(1500)
        ));
        assert!(matches!(
            map(TransactionOption::Timeout(Duration::ZERO)),
            Native::Timeout(0)
        ));
        assert!(matches!(
            map(TransactionOption::Timeout(Duration::from_micros(1))),
            Native::Timeout(1)
        ));
        assert!(matches!(
            map(TransactionOption::Timeout(Duration::MAX)),
            Native::Timeout(i32::MAX)
        ));
        assert!(matches!(
            map(TransactionOption::RetryLimit(None)),
            Native::RetryLimit(-1)
        ));
        assert!(matches!(
            map(TransactionOption::RetryLimit(Some(5))),
            Native::RetryLimit(5)
        ));
        assert!(matches!(
            map(TransactionOption::RetryLimit(Some(u32::MAX))),
            Native::RetryLimit(i32::MAX)
        ));
        assert!(matches!(
            map(TransactionOption::MaxRetryDelay(Duration::from_secs(2))),
            Native::MaxRetryDelay(2000)
        ));
        assert!(matches!(
            map(TransactionOption::SizeLimit(1_000)),
            Native::SizeLimit(1_000)
        ));
        assert!(matches!(
            map(TransactionOption::SizeLimit(usize::MAX)),
            Native::SizeLimit(i32::MAX)
        ));
        assert!(matches!(
            map(TransactionOption::AutomaticIdempotency),
            Native::AutomaticIdempotency
        ));
        assert!(matches!(
            map(TransactionOption::SnapshotRywDisable),
            Native::SnapshotRywDisable
        ));
        assert!(matches!(
            map(TransactionOption::SnapshotRywEnable),
            Native::SnapshotRywEnable
        ));
    }

    #[test]
    fn persistent_options_are_remembered_and_replayed() {
        let mut persistent = Persistent::default();
        assert_eq!(persistent.options().count(), 0);
        for option in [
            TransactionOption::Timeout(Duration::from_millis(250)),
            TransactionOption::RetryLimit(Some(3)),
            TransactionOption::SizeLimit(1_000),
            TransactionOption::MaxRetryDelay(Duration::from_millis(40)),
            TransactionOption::RetryLimit(None),
            TransactionOption::SnapshotRywDisable,
        ] {
            persistent.record(&transaction_option(&option));
        }
        assert_eq!(
            persistent,
            Persistent {
                timeout_ms: Some(250),
                retry_limit: Some(-1),
                max_retry_delay_ms: Some(40),
            }
        );
        let replayed: Vec<_> = persistent.options().map(|o| format!("{o:?}")).collect();
        assert_eq!(
            replayed,
            ["Timeout(250)", "RetryLimit(-1)", "MaxRetryDelay(40)"]
        );
    }

    #[test]
    fn errors_keep_their_codes() {
        for code in [
            code::NOT_COMMITTED,
            code::COMMIT_UNKNOWN_RESULT,
            code::TRANSACTION_TOO_OLD,
        ] {
            assert_eq!(
                fdb_error(fdb::FdbError::from_code(code)),
                FdbError::from_code(code)
            );
        }
        assert!(fits(&[b"key", b""]).is_ok());
        assert!(fits_value(&[0; 16]).is_ok());
    }

    #[test]
    fn versionstamps_need_exactly_ten_bytes() {
        let bytes = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
        assert_eq!(to_versionstamp(&bytes), Some(bytes));
        assert_eq!(to_versionstamp(&bytes[..9]), None);
        assert_eq!(to_versionstamp(&[]), None);
    }
}
