//! Group commit, pipelined: while one batch's log record is being synced, the next
//! batch fills, and the one before is answered.
//!
//! Committers do the work, but for syncing the log (see *Log thread* below):
//!
//! - *fill*: an arriving request is resolved against recent commits and the batch's
//!   earlier requests (in arrival order) and, if accepted, queued to be applied;
//! - *apply*: queued mutations are applied, in arrival order, to the batch's open
//!   storage write ([`Storage::begin_batch`]), neither durable nor visible yet, by
//!   whichever committer holds the applier: each arriving committer tries, and one that
//!   finds it busy leaves its request to the holder or to the closer. Resolving is
//!   short; applying (the storage writes) is most of a commit's engine work, and kept
//!   out of the lock that every committer takes, so that committers on other threads
//!   are not held up behind it. The first request's committer is the batch's *closer*;
//! - *log* (one batch at a time, under a lock): once the previous batch is logged, the
//!   closer takes its batch as it stands, commits it to storage and writes its log
//!   record ([`Storage::commit_batch`]), then makes it durable with a log sync
//!   ([`Storage::sync_log`]), here or on the log thread. The next batch fills meanwhile;
//! - *answer* (one at a time): publish the read snapshot of each durable batch and
//!   answer its requests, strictly in version order, during the next batch's sync.
//!
//! Batches fill up by themselves while the log is busy. When it is free, a closer waits
//! (bounded) for the committers answered by the last round if they are still on their
//! way back, as closed-loop clients are (see [`Engine::close_batch`]): otherwise the
//! first of them to return would take the log alone, one sync for one commit, just
//! before the others arrive. The last one back closes the batch, so nobody is woken
//! for it. A lone client never waits: its own return is the one expected.
//!
//! A closer yields once before it takes its batch, so that commits from tasks that are
//! ready on the same executor thread join it. Under a single-threaded executor each
//! batch is filled, logged and answered in one go, and waits take no real time (the
//! engine's clock); runs are deterministic, which the simulation relies on.
//!
//! *Log thread.* A log sync blocks the thread that makes it for as long as the disk
//! takes (0.1 ms to several ms); on an executor thread, every task queued behind the
//! closer waits that long, though most of them have nothing to do with the commit. So
//! once commits overlap, an on-disk database hands its syncs to a thread of its own, as
//! FoundationDB's client hands its network work to one: a closer that finds the log
//! idle writes its batch's record and returns to its executor at once, leaving the
//! sync to the log thread; one that finds a batch waiting for a sync leaves its batch
//! to fill, and the log thread, once it has synced and answered what was written, takes
//! that batch to the log in turn (see [`Engine::hand_close_to_log_thread`]). One sync
//! covers every record written before it. Commits that come one at a time (see
//! [`Engine::commits_alone`]) are synced by their closer, as above: a hand-over to
//! another thread and back would only add to their wait; so is every commit under a
//! manual clock, whose runs must repeat exactly. The thread starts at the first sync
//! it is given and ends with the database (the last handle dropped waits for it, so
//! that the file is free when the drop returns).
//!
//! Each accepted transaction in a batch gets the batch's commit version and its
//! position in the batch: its versionstamp is `version (8 bytes BE) ‖ position (2 bytes BE)`.
//! A batch is resolved against the previous one before that is durable; it is never
//! durable (nor visible) before it, as batches are logged in version order.
//!
//! [`Storage::begin_batch`]: super::storage::Storage::begin_batch
//! [`Storage::commit_batch`]: super::storage::Storage::commit_batch
//! [`Storage::sync_log`]: super::storage::Storage::sync_log

use super::engine::Engine;
use super::faults::CommitFault;
use super::intervals::IntervalSet;
use super::resolver::Resolver;
use super::storage::{BatchDurability, CommittedBatch, StorageBatch, StorageWrite};
use super::write_buffer::Mutation;
use super::{atomic, storage};
use crate::kv::{code, Committed, FdbError, FdbResult, MutationType};
use futures::future::{self, Either};
use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::task::{Poll, Waker};
use std::time::Duration;

/// Largest batch; keeps a batch's position within the versionstamp's 2 bytes.
const MAX_BATCH: usize = 4096;

pub(crate) struct CommitRequest {
    /// `None` when the transaction read nothing (blind writes never conflict).
    pub(crate) read_version: Option<u64>,
    pub(crate) read_conflicts: IntervalSet,
    pub(crate) write_conflicts: IntervalSet,
    pub(crate) mutations: Vec<Mutation>,
    pub(crate) fault: CommitFault,
    /// Automatic idempotency: resolve unknown results instead of reporting them.
    pub(crate) idempotent: bool,
}

/// The commit pipeline's state.
pub(crate) struct Pipeline {
    fill: Mutex<Fill>,
    /// The open batch's storage write. Taken before `fill` by whoever holds both.
    applier: Mutex<Applier>,
    /// Held while a batch is committed and logged: batches reach storage, and the
    /// answer queue, in version order.
    log: Mutex<()>,
    answers: Mutex<Answers>,
    /// Where log syncs go when they do not run on a committer's thread (`None`: every
    /// sync runs on the closer's thread).
    log_thread: Option<LogThread>,
    /// Versions of accepted requests, in the order they were answered.
    #[cfg(test)]
    acknowledged: Mutex<Vec<u64>>,
    /// Times a closer waited for returning committers.
    #[cfg(test)]
    parks: std::sync::atomic::AtomicU64,
    /// Names of the threads that synced the log, in order.
    #[cfg(test)]
    syncs_on: Mutex<Vec<Option<String>>>,
    /// The log thread keeps the engine a while after it answers, as a slow thread may.
    #[cfg(test)]
    linger_after_answering: std::sync::atomic::AtomicBool,
    /// The log thread panics at its next sync.
    #[cfg(test)]
    panic_on_log_thread: std::sync::atomic::AtomicBool,
}

impl Pipeline {
    /// A pipeline whose first batch follows `last_version`; with `log_thread`, syncs
    /// may be handed to a thread of the database's own (see the module documentation).
    pub(crate) fn new(last_version: u64, log_thread: bool) -> Self {
        Pipeline {
            fill: Mutex::new(Fill {
                resolver: Resolver::default(),
                last_version,
                open: None,
                waiting: VecDeque::new(),
                returning: 0,
                returning_until: Duration::ZERO,
                alone: true,
            }),
            applier: Mutex::new(Applier::default()),
            log: Mutex::new(()),
            answers: Mutex::new(Answers {
                durable: last_version,
                written: last_version,
                ..Answers::default()
            }),
            log_thread: log_thread.then(LogThread::default),
            #[cfg(test)]
            acknowledged: Mutex::default(),
            #[cfg(test)]
            parks: Default::default(),
            #[cfg(test)]
            syncs_on: Mutex::default(),
            #[cfg(test)]
            linger_after_answering: Default::default(),
            #[cfg(test)]
            panic_on_log_thread: Default::default(),
        }
    }

    /// Tells the log thread which engine it serves (the engine is built before its
    /// `Arc`, which the thread must not keep alive while it waits).
    pub(crate) fn serve(&self, engine: Weak<Engine>) {
        if let Some(log_thread) = &self.log_thread {
            let _ = log_thread.engine.set(engine);
        }
    }

    /// Ends the log thread once it is done with what it is doing, and with `wait`
    /// waits for it to end (unless called on it). Later syncs run on the committers'
    /// threads.
    pub(crate) fn stop_log_thread(&self, wait: bool) {
        let Some(log_thread) = &self.log_thread else {
            return;
        };
        let thread = {
            let mut state = log_thread.shared.lock();
            state.stopped = true;
            state.thread.take()
        };
        log_thread.shared.wake.notify_one();
        if let Some(thread) =
            thread.filter(|t| wait && t.thread().id() != std::thread::current().id())
        {
            // It holds nothing this thread holds: it ends after its current sync.
            let _ = thread.join();
        }
    }

    /// Aborts a batch still filling (its committers are gone), so that storage can close.
    pub(crate) fn abandon_open_batch(&self) {
        let open = self
            .fill
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .open
            .take();
        drop(open);
        let storage = self
            .applier
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .storage
            .take();
        drop(storage);
    }
}

/// The storage write of the batch being applied.
#[derive(Default)]
struct Applier {
    /// The batch that `storage` and `failed` belong to.
    version: u64,
    /// Begun at the batch's first applied request.
    storage: Option<StorageBatch>,
    /// Applying a request failed: the whole batch fails with this.
    failed: Option<FdbError>,
    /// A committer panicked while applying: storage may hold part of a request, and
    /// a queued request may be lost, so no batch commits any more (`internal_error`).
    broken: bool,
}

/// An accepted request's mutations, waiting to be applied.
struct Pending {
    mutations: Vec<Mutation>,
    stamp: [u8; 10],
}

struct Fill {
    resolver: Resolver,
    /// The version of the last batch handed to storage.
    last_version: u64,
    /// The batch filling now.
    open: Option<OpenBatch>,
    /// Requests that found the open batch full, in arrival order; they fill the next.
    waiting: VecDeque<Queued>,
    /// Commits accepted by the last logging round, less the requests that arrived
    /// since: closed-loop clients answered by that round that are still on their way.
    returning: usize,
    /// Until when (by the engine's clock) a closer waits for them: as long again as
    /// the round took, from its end.
    returning_until: Duration,
    /// The last batch taken to the log held one request, and nothing else was in
    /// the pipeline: commits come one at a time.
    alone: bool,
}

struct OpenBatch {
    version: u64,
    /// Accepted requests not applied yet, in arrival order.
    pending: Vec<Pending>,
    /// Write conflicts of the batch's accepted requests.
    writes: IntervalSet,
    replies: Vec<(Reply, Outcome)>,
    accepted: u16,
    /// The committer that will take this batch to the log.
    closer: Option<Arc<Mailbox>>,
    /// Its closer waits for returning committers.
    parked: bool,
}

impl OpenBatch {
    fn closed_by(&self, mailbox: &Arc<Mailbox>) -> bool {
        self.closer
            .as_ref()
            .is_some_and(|c| Arc::ptr_eq(c, mailbox))
    }
}

#[derive(Default)]
struct Answers {
    /// Logged batches, or why they failed, in version order.
    queue: VecDeque<Logged>,
    answering: bool,
    /// The last batch whose log record is written: a sync that starts now makes it
    /// durable, and every batch before it.
    written: u64,
    /// The last batch known to be durable; batches up to it may be answered.
    durable: u64,
    /// A log sync failed: batches written but not durable fail with this.
    sync_failed: Option<FdbError>,
}

impl Answers {
    /// Whether the batch at the front of the queue may be answered now.
    fn front_answerable(&self) -> bool {
        self.queue.front().is_some_and(|batch| {
            !matches!(&batch.result, Ok(Some(c)) if c.durability == BatchDurability::Unsynced)
                || batch.version <= self.durable
                || self.sync_failed.is_some()
        })
    }

    /// A sync that started once `target` was written has ended with `synced`.
    fn synced(&mut self, target: u64, synced: FdbResult<()>) {
        match synced {
            Ok(()) => self.durable = self.durable.max(target),
            Err(e) => {
                self.sync_failed.get_or_insert(e);
            }
        }
    }
}

struct Logged {
    version: u64,
    replies: Vec<(Reply, Outcome)>,
    /// The batch as storage took it (`None`: nothing was written).
    result: FdbResult<Option<CommittedBatch>>,
}

/// A thread that syncs the log for committers, so that their threads do not wait for
/// the disk (see the module documentation).
#[derive(Default)]
struct LogThread {
    engine: std::sync::OnceLock<Weak<Engine>>,
    shared: Arc<LogThreadShared>,
    /// The open batch's closer when the thread is to close it.
    closer: Arc<Mailbox>,
}

/// What the log thread waits on: kept apart from the engine, which the thread does not
/// hold while it waits (the engine's drop stops the thread).
#[derive(Default)]
struct LogThreadShared {
    state: Mutex<LogThreadState>,
    /// Signalled when there is something to sync, or the thread is to stop.
    wake: Condvar,
}

#[derive(Default)]
struct LogThreadState {
    /// A batch's record was written since the thread last looked.
    requested: bool,
    started: bool,
    stopped: bool,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LogThreadShared {
    fn lock(&self) -> MutexGuard<'_, LogThreadState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl LogThread {
    /// Hands the thread a sync, starting it on first use; `false` if it cannot run
    /// (then the caller syncs).
    fn request(&self) -> bool {
        let mut state = self.shared.lock();
        if state.stopped {
            return false;
        }
        if !state.started {
            let Some(engine) = self.engine.get().cloned() else {
                return false;
            };
            let shared = self.shared.clone();
            let spawned = std::thread::Builder::new()
                .name("fdb-records-log".into())
                .spawn(move || run_log_thread(&engine, &shared));
            let Ok(thread) = spawned else {
                return false;
            };
            state.thread = Some(thread);
            state.started = true;
        }
        state.requested = true;
        drop(state);
        self.shared.wake.notify_one();
        true
    }
}

/// The log thread: syncs whatever committers wrote and answers the batches made
/// durable, until the engine is gone. It holds the engine only while it works.
fn run_log_thread(engine: &Weak<Engine>, shared: &LogThreadShared) {
    loop {
        {
            let mut state = shared.lock();
            while !state.requested && !state.stopped {
                state = shared.wake.wait(state).unwrap_or_else(|p| p.into_inner());
            }
            if state.stopped {
                return;
            }
            state.requested = false;
        }
        let Some(engine) = engine.upgrade() else {
            return;
        };
        let worked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| loop {
            let synced = engine.sync_written();
            if synced {
                engine.answer_logged();
                #[cfg(test)]
                if engine.pipeline.linger_after_answering.load(Relaxed) {
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
            let closed = engine.close_for_log_thread();
            if closed {
                // A batch that needs no sync (all of it rejected) is answered now.
                engine.answer_logged();
            }
            if !synced && !closed {
                break;
            }
        }));
        if worked.is_err() {
            engine.log_thread_failed();
            return;
        }
    }
}

/// What a request will be told once its batch is durable (or failed).
enum Outcome {
    Rejected(FdbError),
    Accepted {
        stamp: [u8; 10],
        /// Injected `commit_unknown_result` for a commit that is applied nonetheless.
        report_unknown: bool,
    },
}

struct Queued {
    request: CommitRequest,
    reply: Reply,
}

/// Where a waiting committer learns its outcome, or that it now closes a batch.
#[derive(Default)]
struct Mailbox(Mutex<MailboxState>);

#[derive(Default)]
struct MailboxState {
    result: Option<FdbResult<Committed>>,
    /// Closing the open batch was handed to this committer.
    close: bool,
    waker: Option<Waker>,
    /// The committer stopped waiting (its future was dropped): it closes nothing.
    gone: bool,
}

impl Mailbox {
    fn lock(&self) -> MutexGuard<'_, MailboxState> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands closing the open batch to this committer if it is still waiting.
    fn offer_close(&self) -> bool {
        let mut m = self.lock();
        if m.gone || m.result.is_some() || m.close {
            return false;
        }
        m.close = true;
        let waker = m.waker.take();
        drop(m);
        if let Some(w) = waker {
            w.wake();
        }
        true
    }
}

/// The pipeline's side of a request: answers it exactly once (with `internal_error`
/// if the pipeline drops it unanswered, as a dropped channel would).
struct Reply(Option<Arc<Mailbox>>);

impl Reply {
    fn mailbox(&self) -> &Arc<Mailbox> {
        self.0.as_ref().expect("unanswered")
    }

    fn send(mut self, result: FdbResult<Committed>) {
        let Some(mailbox) = self.0.take() else { return };
        let mut m = mailbox.lock();
        m.result = Some(result);
        let waker = m.waker.take();
        drop(m);
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl Drop for Reply {
    fn drop(&mut self) {
        if self.0.is_some() {
            Reply(self.0.take()).send(Err(FdbError::from_code(code::INTERNAL_ERROR)));
        }
    }
}

/// A committer's handle on its request. If its future is dropped while it is to close
/// the open batch, closing passes to another committer, so that the pipeline never
/// stalls.
struct Committer<'e> {
    engine: &'e Engine,
    mailbox: Arc<Mailbox>,
    close: bool,
}

impl Committer<'_> {
    /// Waits until this committer is answered (`Some`) or handed the open batch to close.
    async fn wait(&self) -> Option<FdbResult<Committed>> {
        std::future::poll_fn(|cx| {
            let mut m = self.mailbox.lock();
            // Closing first: it must be passed on even if the answer came meanwhile.
            if std::mem::take(&mut m.close) {
                return Poll::Ready(None);
            }
            if let Some(result) = m.result.take() {
                return Poll::Ready(Some(result));
            }
            match &mut m.waker {
                Some(w) => w.clone_from(cx.waker()),
                None => m.waker = Some(cx.waker().clone()),
            }
            Poll::Pending
        })
        .await
    }

    /// Waits for committers on their way back, for at most `bound`; the answer if this
    /// committer was answered meanwhile (another took over closing its batch).
    async fn park(&mut self, bound: Duration) -> Option<FdbResult<Committed>> {
        let woke = {
            let sleep = self.engine.clock.sleep(bound);
            let wait = std::pin::pin!(self.wait());
            match future::select(sleep, wait).await {
                Either::Left(_) => None,
                Either::Right((woke, _)) => Some(woke),
            }
        };
        if self.engine.unpark(&self.mailbox) {
            // Waited long enough: close the batch with whoever came back.
            return None;
        }
        self.close = false;
        match woke {
            Some(Some(result)) => Some(result),
            // Handed another batch to close.
            Some(None) => {
                self.close = true;
                None
            }
            None => None,
        }
    }
}

impl Drop for Committer<'_> {
    fn drop(&mut self) {
        self.mailbox.lock().gone = true;
        let mut fill = self.engine.fill();
        if fill
            .open
            .as_ref()
            .is_some_and(|b| b.closed_by(&self.mailbox))
        {
            pass_close(&mut fill);
        }
    }
}

/// Hands closing the open batch to a committer still waiting in it (or, failing that,
/// for the next one), or leaves it to the next committer to arrive.
fn pass_close(fill: &mut Fill) {
    let Some(open) = fill.open.as_mut() else {
        return;
    };
    open.parked = false;
    open.closer = open
        .replies
        .iter()
        .map(|(r, _)| r)
        .chain(fill.waiting.iter().map(|q| &q.reply))
        .find(|r| r.mailbox().offer_close())
        .map(|r| r.mailbox().clone());
}

impl Engine {
    fn fill(&self) -> MutexGuard<'_, Fill> {
        self.pipeline.fill.lock().expect("commit pipeline")
    }

    fn answers(&self) -> MutexGuard<'_, Answers> {
        self.pipeline.answers.lock().expect("commit answers")
    }

    /// Submits a commit and waits for its batch to be durable (or rejected).
    pub(crate) async fn submit_commit(&self, request: CommitRequest) -> FdbResult<Committed> {
        let mut me = Committer {
            engine: self,
            mailbox: Arc::default(),
            close: false,
        };
        self.arrive(&mut me, request);
        loop {
            if me.close && !self.commits_alone() {
                // The closer neither yields nor waits for returning committers: while
                // the log thread syncs, later arrivals fill the next batch, which the
                // log thread closes when the sync is done.
                me.close = false;
                if !self.hand_close_to_log_thread(&me.mailbox) {
                    self.close_batch(&me.mailbox, false);
                    self.answer_logged();
                }
            }
            if me.close {
                batching_window().await;
                if let Some(bound) = self.close_batch(&me.mailbox, true) {
                    if let Some(result) = me.park(bound).await {
                        return result;
                    }
                    if me.close {
                        self.close_batch(&me.mailbox, false);
                    }
                }
                me.close = false;
                self.answer_logged();
            }
            match me.wait().await {
                Some(result) => return result,
                None => me.close = true,
            }
        }
    }

    /// Adds a request to the open batch, or queues it if that is full.
    fn arrive(&self, me: &mut Committer<'_>, request: CommitRequest) {
        let reply = Reply(Some(me.mailbox.clone()));
        let mut fill = self.fill();
        let full = fill
            .open
            .as_ref()
            .is_some_and(|b| b.replies.len() >= MAX_BATCH);
        if full || !fill.waiting.is_empty() {
            fill.waiting.push_back(Queued { request, reply });
            // A batch all of whose committers left has no closer: this one closes it,
            // or it and everything queued behind it would wait forever.
            if let Some(open) = fill.open.as_mut().filter(|b| b.closer.is_none()) {
                open.parked = false;
                open.closer = Some(me.mailbox.clone());
                me.close = true;
            }
        } else {
            me.close = self.add(&mut fill, request, reply);
        }
        fill.returning = fill.returning.saturating_sub(1);
        if fill.returning == 0 {
            if let Some(open) = fill.open.as_mut().filter(|b| b.parked) {
                // The last one back closes the batch, rather than waking its closer.
                open.parked = false;
                open.closer = Some(me.mailbox.clone());
                me.close = true;
            }
        }
        drop(fill);
        self.apply_pending();
    }

    /// Applies the open batch's queued requests unless another committer is applying
    /// (it, or the batch's closer, applies them then).
    fn apply_pending(&self) {
        let Some(mut applier) = self.applier(false) else {
            return;
        };
        loop {
            let (version, pending) = {
                let mut fill = self.fill();
                match fill.open.as_mut().filter(|b| !b.pending.is_empty()) {
                    Some(open) => (open.version, std::mem::take(&mut open.pending)),
                    None => return,
                }
            };
            self.apply(&mut applier, version, pending);
        }
    }

    /// The applier, waiting for it if `wait` (else `None` while another committer holds
    /// it). One that a panicking committer left is broken for good.
    fn applier(&self, wait: bool) -> Option<MutexGuard<'_, Applier>> {
        let lock = &self.pipeline.applier;
        let locked = if wait {
            lock.lock().map_err(std::sync::TryLockError::Poisoned)
        } else {
            lock.try_lock()
        };
        match locked {
            Ok(applier) => Some(applier),
            Err(std::sync::TryLockError::Poisoned(p)) => {
                let mut applier = p.into_inner();
                applier.broken = true;
                applier.storage = None;
                Some(applier)
            }
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    /// Resolves a request and queues it in the open batch (opening one if needed);
    /// whether its committer is to close the batch.
    fn add(&self, fill: &mut Fill, request: CommitRequest, reply: Reply) -> bool {
        let now = self.clock.now();
        let Fill {
            resolver,
            last_version,
            open,
            ..
        } = fill;
        resolver.prune(now, self.lifetime);
        let batch = open.get_or_insert_with(|| OpenBatch {
            version: *last_version + 1,
            pending: Vec::new(),
            writes: IntervalSet::new(),
            replies: Vec::new(),
            accepted: 0,
            closer: None,
            parked: false,
        });
        let r = &request;
        // Resolved in arrival order; later requests in the batch see earlier ones' writes.
        let rejected = match r.fault {
            CommitFault::SpuriousNotCommitted => Some(code::NOT_COMMITTED),
            CommitFault::TooOld => Some(code::TRANSACTION_TOO_OLD),
            // FoundationDB's client, finding by the idempotency id that the commit did
            // not happen, reports `transaction_too_old`: it can no longer happen later.
            CommitFault::UnknownNotCommitted if r.idempotent => Some(code::TRANSACTION_TOO_OLD),
            CommitFault::UnknownNotCommitted => Some(code::COMMIT_UNKNOWN_RESULT),
            CommitFault::None | CommitFault::UnknownCommitted => match r.read_version {
                Some(rv) if resolver.is_too_old(rv) => Some(code::TRANSACTION_TOO_OLD),
                Some(rv) if resolver.conflicts(rv, &r.read_conflicts) => Some(code::NOT_COMMITTED),
                Some(_) if batch.writes.intersects_set(&r.read_conflicts) => {
                    Some(code::NOT_COMMITTED)
                }
                _ => None,
            },
        };
        let outcome = match rejected {
            Some(c) => Outcome::Rejected(FdbError::from_code(c)),
            None => {
                let report_unknown = r.fault == CommitFault::UnknownCommitted && !r.idempotent;
                Outcome::Accepted {
                    stamp: accept(batch, request),
                    report_unknown,
                }
            }
        };
        let closes = batch.closer.is_none();
        if closes {
            batch.closer = Some(reply.mailbox().clone());
        }
        batch.replies.push((reply, outcome));
        closes
    }

    /// Applies queued requests of the batch with `version` to its storage write, in
    /// order. After an error nothing more of the batch is applied: it fails whole.
    fn apply(&self, applier: &mut Applier, version: u64, pending: Vec<Pending>) {
        if applier.version != version {
            // The previous batch's closer took its storage write with it.
            debug_assert!(applier.storage.is_none(), "an earlier batch left unclosed");
            *applier = Applier {
                version,
                storage: None,
                failed: None,
                broken: applier.broken,
            };
        }
        if pending.is_empty() || applier.failed.is_some() || applier.broken {
            return;
        }
        let applied = match &mut applier.storage {
            Some(storage) => Ok(storage),
            None => self
                .storage
                .begin_batch(version)
                .map(|s| applier.storage.insert(s)),
        }
        .and_then(|storage| {
            // All of them in one storage write (the table is opened once).
            storage.apply(|w| {
                pending.iter().try_for_each(|p| {
                    p.mutations
                        .iter()
                        .try_for_each(|m| apply_mutation(w, m, &p.stamp))
                })
            })
        });
        if let Err(e) = applied {
            // Part of a request may be applied: none of the batch may commit.
            applier.failed = Some(e);
            applier.storage = None;
        }
    }

    /// Once the log is free, takes the open batch, commits it to storage and queues it
    /// to be answered once durable: synced here if commits come one at a time (see
    /// [`Engine::commits_alone`]), else by the log thread.
    ///
    /// With `may_wait`, if committers answered by the last round are still on their way
    /// back, takes nothing and returns how long to wait for them instead: in a closed
    /// loop they commit again in about the time it takes to answer them and run their
    /// transactions, and one sync for all is cheaper than a sync for the first and
    /// another for the rest (each sync and each storage commit costs CPU as well as
    /// disk time). The wait ends when the last of them arrives, and lasts at most as
    /// long again as the last round took.
    fn close_batch(&self, mailbox: &Arc<Mailbox>, may_wait: bool) -> Option<Duration> {
        let log = self.pipeline.log.lock().unwrap_or_else(|p| p.into_inner());
        let started = self.clock.now();
        let mut applier = self.applier(true).expect("waited for");
        let mut fill = self.fill();
        let (returning, until) = (fill.returning, fill.returning_until);
        let may_park = self.commits_alone_in(&fill);
        if let Some(open) = fill.open.as_mut().filter(|b| {
            may_wait
                && self.storage.syncs()
                && may_park
                && returning > 0
                && started < until
                && b.closed_by(mailbox)
                && b.replies.len() < MAX_BATCH
        }) {
            open.parked = true;
            #[cfg(test)]
            self.pipeline.parks.fetch_add(1, Relaxed);
            return Some(until - started);
        }
        let Some(mut batch) = self.take_open_batch(&mut fill) else {
            drop(fill);
            drop(applier);
            drop(log);
            self.admit_waiting();
            return None;
        };
        let alone_now = batch.replies.len() == 1 && fill.waiting.is_empty();
        let alone = std::mem::replace(&mut fill.alone, alone_now) && alone_now;
        drop(fill);
        // What no committer got to applying.
        let pending = std::mem::take(&mut batch.pending);
        self.apply(&mut applier, batch.version, pending);
        let (storage, failed) = if applier.version == batch.version {
            (applier.storage.take(), applier.failed.take())
        } else {
            (None, None)
        };
        let broken = applier.broken;
        drop(applier);
        let internal = || FdbError::from_code(code::INTERNAL_ERROR);
        let result = match (storage, failed) {
            _ if broken => Err(internal()),
            (_, Some(e)) => Err(e),
            // Every accepted request begins the storage write: none means it was lost.
            (None, None) if batch.accepted > 0 => Err(internal()),
            (None, None) => Ok(None),
            (Some(storage), None) => self.storage.commit_batch(storage).map(Some),
        };
        let unsynced = matches!(&result, Ok(Some(c)) if c.durability == BatchDurability::Unsynced);
        let inline = unsynced && (self.pipeline.log_thread.is_none() || alone && self.log_idle());
        // Synced under the log: the next batch fills meanwhile. The sync covers every
        // batch written before, which the log thread may not have synced yet.
        let result = match result {
            Ok(Some(mut committed)) if inline => match self.sync_log() {
                Ok(()) => {
                    committed.durability = BatchDurability::Durable;
                    Ok(Some(committed))
                }
                Err(e) => {
                    // Batches written before and not synced yet fail with it too.
                    self.answers().synced(batch.version, Err(e));
                    Err(e)
                }
            },
            other => other,
        };
        let accepted = batch
            .replies
            .iter()
            .filter(|(_, o)| matches!(o, Outcome::Accepted { .. }))
            .count();
        // Before the batch can be answered: its committers may be back at once.
        self.after_round(if result.is_ok() { accepted } else { 0 }, started);
        // Queued before the log is released, so answers follow the log's order.
        {
            let mut answers = self.answers();
            match &result {
                Ok(Some(c)) if c.durability == BatchDurability::Unsynced => {
                    answers.written = batch.version;
                }
                Ok(Some(c)) if c.durability == BatchDurability::Durable => {
                    answers.written = batch.version;
                    answers.durable = answers.durable.max(batch.version);
                }
                _ => {}
            }
            answers.queue.push_back(Logged {
                version: batch.version,
                replies: batch.replies,
                result,
            });
        }
        drop(log);
        let handed = unsynced
            && !inline
            && self
                .pipeline
                .log_thread
                .as_ref()
                .is_some_and(LogThread::request);
        if unsynced && !inline && !handed {
            // The log thread could not start: sync here after all.
            self.sync_written();
        }
        self.admit_waiting();
        None
    }

    /// While a batch is waiting for a sync, leaves closing `mailbox`'s batch to the log
    /// thread, which closes it once the sync is done; whether it did.
    fn hand_close_to_log_thread(&self, mailbox: &Arc<Mailbox>) -> bool {
        let Some(log_thread) = &self.pipeline.log_thread else {
            return false;
        };
        {
            let answers = self.answers();
            if answers.written <= answers.durable || answers.sync_failed.is_some() {
                return false;
            }
        }
        {
            let mut fill = self.fill();
            let Some(open) = fill.open.as_mut().filter(|b| b.closed_by(mailbox)) else {
                // Closed meanwhile (by the log thread).
                return true;
            };
            open.parked = false;
            open.closer = Some(log_thread.closer.clone());
        }
        // Wakes the thread if it finished its sync before it could see the batch.
        if log_thread.request() {
            return true;
        }
        // The thread cannot run: close here after all.
        let mut fill = self.fill();
        if let Some(open) = fill
            .open
            .as_mut()
            .filter(|b| b.closed_by(&log_thread.closer))
        {
            open.closer = Some(mailbox.clone());
        }
        false
    }

    /// The log thread closes the open batch if it was left to it; whether it did.
    fn close_for_log_thread(&self) -> bool {
        let Some(log_thread) = &self.pipeline.log_thread else {
            return false;
        };
        let left_to_it = self
            .fill()
            .open
            .as_ref()
            .is_some_and(|b| b.closed_by(&log_thread.closer));
        if left_to_it {
            self.close_batch(&log_thread.closer, false);
        }
        left_to_it
    }

    /// Whether commits come one at a time, so that a closer had best sync the log
    /// itself: always without a log thread (in memory, or under a manual clock);
    /// with one, while the last batch held a single request, nothing else is in the
    /// pipeline and no batch waits for a sync. Handing a lone commit's sync to the log
    /// thread and back costs more (two thread wake-ups) than its thread would gain.
    fn commits_alone(&self) -> bool {
        self.commits_alone_in(&self.fill())
    }

    /// [`Engine::commits_alone`] with the fill lock held.
    fn commits_alone_in(&self, fill: &Fill) -> bool {
        if self.pipeline.log_thread.is_none() {
            return true;
        }
        fill.alone
            && fill.waiting.is_empty()
            && fill.open.as_ref().is_none_or(|b| b.replies.len() <= 1)
            && self.log_idle()
    }

    /// No batch is written and waiting for a sync.
    fn log_idle(&self) -> bool {
        let answers = self.answers();
        answers.written <= answers.durable
    }

    /// One log sync, on this thread.
    fn sync_log(&self) -> FdbResult<()> {
        #[cfg(test)]
        {
            let name = std::thread::current().name().map(str::to_owned);
            if name.as_deref() == Some("fdb-records-log")
                && self.pipeline.panic_on_log_thread.swap(false, Relaxed)
            {
                panic!("injected log thread panic");
            }
            self.pipeline.syncs_on.lock().unwrap().push(name);
        }
        self.storage.sync_log()
    }

    /// The log thread panicked (in a waker it called, say) and is gone: committers sync
    /// on their own threads from now on. What it was syncing may or may not be durable,
    /// so batches written and not known durable are answered `commit_unknown_result`,
    /// and storage fails for good, as after a failed sync; a batch left to it goes
    /// back to a committer waiting in it.
    fn log_thread_failed(&self) {
        if let Some(log_thread) = &self.pipeline.log_thread {
            log_thread.shared.lock().stopped = true;
        }
        self.storage.fail();
        self.answers()
            .sync_failed
            .get_or_insert(FdbError::from_code(code::COMMIT_UNKNOWN_RESULT));
        {
            let mut fill = self.fill();
            let left = self
                .pipeline
                .log_thread
                .as_ref()
                .is_some_and(|l| fill.open.as_ref().is_some_and(|b| b.closed_by(&l.closer)));
            if left {
                pass_close(&mut fill);
            }
        }
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.answer_logged()));
    }

    /// Syncs the log if a batch is written but not durable yet; whether it did. On
    /// whichever thread calls it, without any lock a committer needs.
    fn sync_written(&self) -> bool {
        let target = {
            let answers = self.answers();
            if answers.written <= answers.durable || answers.sync_failed.is_some() {
                return false;
            }
            answers.written
        };
        let synced = self.sync_log();
        self.answers().synced(target, synced);
        true
    }

    /// After a logging round that started at `started`: expects its `accepted`
    /// committers back for about as long as the round took.
    fn after_round(&self, accepted: usize, started: Duration) {
        let ended = self.clock.now();
        let mut fill = self.fill();
        fill.returning = accepted;
        fill.returning_until = ended + ended.saturating_sub(started);
    }

    /// Whether `mailbox`'s committer, having waited for returning committers, still
    /// closes the open batch; nobody waits for them any more.
    fn unpark(&self, mailbox: &Arc<Mailbox>) -> bool {
        let mut fill = self.fill();
        fill.returning = 0;
        match fill.open.as_mut() {
            Some(open) if open.parked && open.closed_by(mailbox) => {
                open.parked = false;
                true
            }
            _ => false,
        }
    }

    /// The open batch, its writes recorded for resolving the next one (before it is
    /// applied to the end: a batch that then fails only adds conflicts that did not
    /// need to be, and leaves its version unused).
    fn take_open_batch(&self, fill: &mut Fill) -> Option<OpenBatch> {
        let mut batch = fill.open.take()?;
        if batch.accepted > 0 {
            fill.last_version = batch.version;
            let writes = std::mem::take(&mut batch.writes);
            fill.resolver
                .record(batch.version, self.clock.now(), writes);
        }
        Some(batch)
    }

    /// Moves requests that found a batch full into the next one.
    fn admit_waiting(&self) {
        let mut fill = self.fill();
        if fill.open.is_some() || fill.waiting.is_empty() {
            return;
        }
        let n = fill.waiting.len().min(MAX_BATCH);
        let admitted: Vec<Queued> = fill.waiting.drain(..n).collect();
        for q in admitted {
            self.add(&mut fill, q.request, q.reply);
        }
        pass_close(&mut fill);
        drop(fill);
        self.apply_pending();
    }

    /// Answers logged batches in version order as far as they are durable, unless
    /// another committer (or the log thread) is at it: it answers these too before it
    /// stops.
    fn answer_logged(&self) {
        if std::mem::replace(&mut self.answers().answering, true) {
            return;
        }
        /// Lets others answer again if answering panics (in a waker it calls).
        struct Answering<'e>(&'e Engine);
        impl Drop for Answering<'_> {
            fn drop(&mut self) {
                if std::thread::panicking() {
                    self.0.answers().answering = false;
                }
            }
        }
        let _answering = Answering(self);
        loop {
            let mut ready: Vec<Logged> = Vec::new();
            {
                let mut answers = self.answers();
                while answers.front_answerable() {
                    let mut batch = answers.queue.pop_front().expect("a front batch");
                    if batch.version > answers.durable {
                        if let (Ok(Some(c)), Some(e)) = (&batch.result, answers.sync_failed) {
                            if c.durability == BatchDurability::Unsynced {
                                batch.result = Err(e);
                            }
                        }
                    }
                    ready.push(batch);
                }
                if ready.is_empty() {
                    answers.answering = false;
                    return;
                }
            }
            for batch in ready {
                self.answer(batch);
            }
        }
    }

    /// Publishes the snapshot of a logged batch and answers its requests.
    fn answer(&self, batch: Logged) {
        let Logged {
            version,
            replies,
            result,
        } = batch;
        let result = match result {
            Ok(Some(committed)) => {
                self.stats.batches.fetch_add(1, Relaxed);
                *self.current.write().expect("snapshot cache") = Arc::new(committed.snapshot);
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        };
        let stats = &self.stats;
        for (reply, outcome) in replies {
            let answer = match (outcome, result) {
                (Outcome::Rejected(e), _) => {
                    stats.rejected.fetch_add(1, Relaxed);
                    Err(e)
                }
                (Outcome::Accepted { .. }, Err(e)) => Err(e),
                (
                    Outcome::Accepted {
                        stamp,
                        report_unknown,
                    },
                    Ok(()),
                ) => {
                    stats.committed.fetch_add(1, Relaxed);
                    #[cfg(test)]
                    self.pipeline.acknowledged.lock().unwrap().push(version);
                    if report_unknown {
                        // Applied and durable, but the client is told the outcome is unknown.
                        Err(FdbError::from_code(code::COMMIT_UNKNOWN_RESULT))
                    } else {
                        Ok(Committed {
                            version: version as i64,
                            versionstamp: Some(stamp),
                        })
                    }
                }
            };
            reply.send(answer);
        }
    }
}

/// Yields once before a closer takes its batch, so that commits from tasks that are
/// ready on the same executor thread join this batch instead of each paying for its
/// own sync (FoundationDB's commit proxies wait a short batching interval likewise).
/// A single yield keeps runs deterministic under a single-threaded executor.
async fn batching_window() {
    super::clock::yield_once().await
}

/// Accepts a request into `batch`: its versionstamp, its writes recorded for resolving
/// the batch's later requests, and its mutations queued to be applied.
fn accept(batch: &mut OpenBatch, request: CommitRequest) -> [u8; 10] {
    let mut stamp = [0u8; 10];
    stamp[..8].copy_from_slice(&batch.version.to_be_bytes());
    stamp[8..].copy_from_slice(&batch.accepted.to_be_bytes());
    batch.accepted += 1;
    batch.writes.absorb(request.write_conflicts);
    // A versionstamped key conflicts as the one key it became, as FoundationDB's
    // commit proxy adds it once the stamp is known.
    for m in &request.mutations {
        if let Mutation::Atomic(MutationType::SetVersionstampedKey, template, _) = m {
            if let Ok(key) = atomic::fill_versionstamp(template, &stamp) {
                batch.writes.insert_key(&key);
            }
        }
    }
    batch.pending.push(Pending {
        mutations: request.mutations,
        stamp,
    });
    stamp
}

fn apply_mutation(
    w: &mut storage::BatchWriter<'_, '_>,
    m: &Mutation,
    stamp: &[u8; 10],
) -> FdbResult<()> {
    match m {
        Mutation::Set(k, v) => w.apply(StorageWrite::Set(k, v)),
        Mutation::Clear(k) => w.apply(StorageWrite::Clear(k)),
        Mutation::ClearRange(b, e) => w.apply(StorageWrite::ClearRange(b, e)),
        Mutation::Atomic(MutationType::SetVersionstampedKey, k, v) => {
            let key = atomic::fill_versionstamp(k, stamp)?;
            w.apply(StorageWrite::Set(&key, v))
        }
        Mutation::Atomic(MutationType::SetVersionstampedValue, k, v) => {
            let value = atomic::fill_versionstamp(v, stamp)?;
            w.apply(StorageWrite::Set(k, &value))
        }
        Mutation::Atomic(op, k, param) => {
            let current = w.get(k)?;
            match atomic::apply(*op, current.as_deref(), param) {
                Some(v) => w.apply(StorageWrite::Set(k, &v)),
                None => w.apply(StorageWrite::Clear(k)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::backend::embedded::{Clock, EmbeddedDatabase, EmbeddedTransaction, ManualClock};
    use crate::kv::{Database, FdbError, MutationType, Transaction};
    use futures::executor::block_on;
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::atomic::Ordering::Relaxed;
    use std::task::Context;

    const WRITERS: usize = 8;
    const COMMITS: usize = 40;

    /// `WRITERS` threads, each committing `COMMITS` blind writes plus an atomic add;
    /// checks that each commit is visible when it returns.
    fn commit_from_threads(db: &EmbeddedDatabase) {
        std::thread::scope(|s| {
            for t in 0..WRITERS {
                s.spawn(move || {
                    for i in 0..COMMITS {
                        let tx = db.create_transaction().unwrap();
                        tx.set(format!("k/{t}/{i}").as_bytes(), b"v");
                        tx.atomic_op(b"count", &1i64.to_le_bytes(), MutationType::Add);
                        let version = block_on(tx.commit()).unwrap().version;
                        assert!(
                            db.committed_version() >= version,
                            "visible when acknowledged"
                        );
                    }
                });
            }
        });
        let count = block_on(db.run(|tx, _| async move { tx.get(b"count", false).await }));
        let expected = (WRITERS * COMMITS) as i64;
        assert_eq!(count.unwrap(), Some(expected.to_le_bytes().to_vec()));
    }

    const LOG_THREAD: &str = "fdb-records-log";

    /// The threads that synced the log so far: on the log thread, and on others.
    fn syncs(db: &EmbeddedDatabase) -> (usize, usize) {
        let on = db.engine.pipeline.syncs_on.lock().unwrap().clone();
        let log = on
            .iter()
            .filter(|n| n.as_deref() == Some(LOG_THREAD))
            .count();
        (log, on.len() - log)
    }

    fn log_thread_started(db: &EmbeddedDatabase) -> bool {
        let log_thread = db.engine.pipeline.log_thread.as_ref();
        log_thread.is_some_and(|l| l.shared.lock().started)
    }

    #[test]
    fn writers_on_threads_share_batches_and_are_answered_in_version_order() {
        for log_thread in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let db = EmbeddedDatabase::builder()
                .log_thread(log_thread)
                .open(dir.path().join("db.redb"))
                .unwrap();
            commit_from_threads(&db);
            let stats = db.stats();
            assert_eq!(stats.committed, (WRITERS * COMMITS) as u64);
            // Closed-loop writers come back together: batches hold several of them
            // (with the log thread, those answered by one sync fill the next batch).
            assert!(
                stats.committed as f64 / stats.batches as f64 >= 2.0,
                "{WRITERS} writers should share batches (log thread: {log_thread}): {stats:?}"
            );
            let acknowledged = db.engine.pipeline.acknowledged.lock().unwrap().clone();
            assert_eq!(acknowledged.len(), WRITERS * COMMITS);
            assert!(
                acknowledged.windows(2).all(|w| w[0] <= w[1]),
                "answered out of version order (log thread: {log_thread})"
            );
            let (on_log_thread, _) = syncs(&db);
            if log_thread {
                assert!(
                    on_log_thread > 0,
                    "overlapping commits sync on the log thread"
                );
            } else {
                assert_eq!(on_log_thread, 0);
                assert!(db.engine.pipeline.log_thread.is_none());
            }
        }
    }

    #[test]
    fn commits_one_at_a_time_sync_on_the_committing_thread() {
        let dir = tempfile::tempdir().unwrap();
        let db = EmbeddedDatabase::open(dir.path().join("db.redb")).unwrap();
        for i in 0..20u32 {
            let tx = db.create_transaction().unwrap();
            tx.set(&i.to_be_bytes(), b"v");
            block_on(tx.commit()).unwrap();
        }
        assert_eq!(syncs(&db), (0, 20), "each commit synced where it was made");
        assert!(!log_thread_started(&db));
    }

    #[test]
    fn tasks_on_one_executor_thread_leave_their_syncs_to_the_log_thread() {
        // While one task's batch syncs, the other tasks on the same thread run their
        // transactions: the thread that runs them never waits for the disk.
        let dir = tempfile::tempdir().unwrap();
        let db = EmbeddedDatabase::open(dir.path().join("db.redb")).unwrap();
        let executor = std::thread::current().name().map(str::to_owned);
        block_on(futures::future::join_all((0..8u32).map(|task| {
            let db = db.clone();
            async move {
                for i in 0..25u32 {
                    let tx = db.create_transaction().unwrap();
                    tx.set(&[task.to_be_bytes(), i.to_be_bytes()].concat(), b"v");
                    tx.atomic_op(b"count", &1i64.to_le_bytes(), MutationType::Add);
                    tx.commit().await.unwrap();
                }
            }
        })));
        let on = db.engine.pipeline.syncs_on.lock().unwrap().clone();
        let on_executor = on.iter().filter(|n| **n == executor).count();
        assert!(
            on_executor <= 1,
            "at most the very first commit, alone, syncs on the executor's thread: {on:?}"
        );
        assert!(on
            .iter()
            .all(|n| *n == executor || n.as_deref() == Some(LOG_THREAD)));
        let count = block_on(db.run(|tx, _| async move { tx.get(b"count", false).await }));
        assert_eq!(count.unwrap(), Some(200i64.to_le_bytes().to_vec()));
    }

    /// Commits from `writers` threads while the log's syncs are held back, so that
    /// they overlap: the first syncs on its own thread, the others fill the next batch,
    /// which goes to the log thread. Returns each writer's outcome, in order.
    fn overlapping_commits(
        db: &EmbeddedDatabase,
        writers: u32,
        key: impl Fn(u32) -> Vec<u8>,
    ) -> Vec<crate::kv::FdbResult<i64>> {
        let gate = &db.engine.storage.hold_syncs;
        gate.close();
        let outcomes = std::thread::scope(|s| {
            let threads: Vec<_> = (0..writers)
                .map(|t| {
                    let key = key(t);
                    s.spawn(move || {
                        let tx = db.create_transaction().unwrap();
                        tx.set(&key, b"v");
                        tx.atomic_op(b"count", &1i64.to_le_bytes(), MutationType::Add);
                        block_on(tx.commit()).map(|c| c.version)
                    })
                })
                .collect();
            std::thread::sleep(std::time::Duration::from_millis(100));
            gate.open();
            threads.into_iter().map(|t| t.join().unwrap()).collect()
        });
        outcomes
    }

    #[test]
    fn an_answer_waits_for_the_sync_that_covers_it() {
        let dir = tempfile::tempdir().unwrap();
        for log_thread in [true, false] {
            let db = open(&dir, true, log_thread);
            let before = db.committed_version();
            let gate = &db.engine.storage.hold_syncs;
            gate.close();
            let (sender, receiver) = std::sync::mpsc::channel();
            let writers: Vec<_> = (0..4u32)
                .map(|t| {
                    let (db, sender) = (db.clone(), sender.clone());
                    std::thread::spawn(move || {
                        let tx = db.create_transaction().unwrap();
                        tx.set(&t.to_be_bytes(), b"v");
                        let _ = sender.send(block_on(tx.commit()).map(|c| c.version));
                    })
                })
                .collect();
            assert!(
                receiver
                    .recv_timeout(std::time::Duration::from_millis(200))
                    .is_err(),
                "answered before its sync (log thread: {log_thread})"
            );
            assert_eq!(db.committed_version(), before, "visible before its sync");
            gate.open();
            for _ in 0..4 {
                let version = receiver
                    .recv_timeout(std::time::Duration::from_secs(30))
                    .unwrap()
                    .unwrap();
                assert!(db.committed_version() >= version);
            }
            writers.into_iter().for_each(|w| w.join().unwrap());
            assert_eq!(log_thread_started(&db), log_thread);
        }
    }

    #[test]
    fn the_last_handle_to_go_closes_the_database_at_once() {
        // The log thread still holds the engine after it answers; the database must
        // close (and free its file) when the last handle is dropped all the same.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.redb");
        for round in 0..3u32 {
            let db = EmbeddedDatabase::open(&path).expect("the file is free again");
            db.engine
                .pipeline
                .linger_after_answering
                .store(true, Relaxed);
            let outcomes =
                overlapping_commits(&db, 4, |t| [round, t].map(u32::to_be_bytes).concat());
            assert!(outcomes.iter().all(Result::is_ok));
            assert!(log_thread_started(&db), "round {round} used the log thread");
        }
        let db = EmbeddedDatabase::open(&path).unwrap();
        let count = block_on(db.run(|tx, _| async move { tx.get(b"count", false).await }));
        assert_eq!(count.unwrap(), Some(12i64.to_le_bytes().to_vec()));
    }

    #[test]
    fn a_panic_on_the_log_thread_answers_every_commit_and_fails_storage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.redb");
        let db = EmbeddedDatabase::open(&path).unwrap();
        db.engine.pipeline.panic_on_log_thread.store(true, Relaxed);
        let outcomes = overlapping_commits(&db, 4, |t| t.to_be_bytes().to_vec());
        // The first synced on its own thread; the batch the log thread was to sync
        // may or may not be on disk.
        assert!(outcomes[1..].iter().any(|o| o
            .as_ref()
            .is_err_and(|e| e.code() == crate::kv::code::COMMIT_UNKNOWN_RESULT)));
        for (t, outcome) in outcomes.iter().enumerate() {
            if let Err(e) = outcome {
                assert!(
                    [
                        crate::kv::code::COMMIT_UNKNOWN_RESULT,
                        crate::kv::code::IO_ERROR
                    ]
                    .contains(&e.code()),
                    "writer {t}: {e:?}"
                );
            }
        }
        // Later commits are refused (storage failed), on the committer's thread.
        let tx = db.create_transaction().unwrap();
        tx.set(b"later", b"v");
        assert_eq!(
            block_on(tx.commit()).unwrap_err().code(),
            crate::kv::code::IO_ERROR
        );
        drop((tx, db));
        assert!(EmbeddedDatabase::open(&path).is_ok());
    }

    #[test]
    fn a_failed_log_sync_fails_what_it_covers_and_every_later_commit() {
        let dir = tempfile::tempdir().unwrap();
        for log_thread in [true, false] {
            let path = dir.path().join(format!("{log_thread}.redb"));
            let db = EmbeddedDatabase::builder()
                .log_thread(log_thread)
                .open(&path)
                .unwrap();
            commit_from_threads(&db);
            db.engine.storage.fail_next_sync.store(true, Relaxed);
            let outcomes =
                overlapping_commits(&db, WRITERS as u32, |t| format!("after/{t}").into_bytes());
            for outcome in &outcomes {
                let code = outcome
                    .as_ref()
                    .expect_err("nothing commits once a sync failed")
                    .code();
                assert!(
                    [
                        crate::kv::code::COMMIT_UNKNOWN_RESULT,
                        crate::kv::code::IO_ERROR
                    ]
                    .contains(&code),
                    "log thread {log_thread}: {code}"
                );
            }
            let tx = db.create_transaction().unwrap();
            tx.set(b"later", b"v");
            assert_eq!(
                block_on(tx.commit()).unwrap_err().code(),
                crate::kv::code::IO_ERROR,
                "storage stays failed until reopened"
            );
            drop((tx, db));
            // Reopened, it holds everything acknowledged before the failure, and
            // nothing whose commit was reported not to have happened.
            let db = EmbeddedDatabase::open(&path).unwrap();
            let count = block_on(db.run(|tx, _| async move { tx.get(b"count", false).await }));
            let count = i64::from_le_bytes(count.unwrap().unwrap().try_into().unwrap());
            assert!(count >= (WRITERS * COMMITS) as i64);
            for (t, outcome) in outcomes.iter().enumerate() {
                if outcome
                    .as_ref()
                    .is_err_and(|e| e.code() == crate::kv::code::IO_ERROR)
                {
                    let key = format!("after/{t}");
                    let found = block_on(db.run(|tx, _| {
                        let key = key.clone();
                        async move { tx.get(key.as_bytes(), false).await }
                    }));
                    assert_eq!(found.unwrap(), None, "{key} was reported io_error");
                }
            }
        }
    }

    fn parks(db: &EmbeddedDatabase) -> u64 {
        db.engine.pipeline.parks.load(Relaxed)
    }

    #[test]
    fn a_lone_writer_waits_for_nobody() {
        let dir = tempfile::tempdir().unwrap();
        let db = EmbeddedDatabase::open(dir.path().join("db.redb")).unwrap();
        // Another transaction is open (and has written) but does not commit.
        let idle = db.create_transaction().unwrap();
        idle.set(b"idle", b"v");
        for i in 0..20u32 {
            let tx = db.create_transaction().unwrap();
            tx.set(&i.to_be_bytes(), b"v");
            block_on(tx.commit()).unwrap();
        }
        assert_eq!(db.stats().batches, 20, "one batch per commit");
        assert_eq!(parks(&db), 0, "its own return is the one expected");
    }

    #[test]
    fn the_engine_clock_bounds_the_wait() {
        // Rounds take no time on a manual clock, so nobody is ever waited for: runs
        // under a single-threaded executor batch exactly as they would without waits.
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new();
        let db = EmbeddedDatabase::builder()
            .clock(clock.clone())
            .open(dir.path().join("db.redb"))
            .unwrap();
        for round in 0..5u32 {
            block_on(futures::future::join_all((0..8u32).map(|i| {
                let tx = db.create_transaction().unwrap();
                async move {
                    tx.set(&[round.to_be_bytes(), i.to_be_bytes()].concat(), b"v");
                    tx.commit().await.unwrap()
                }
            })));
        }
        assert_eq!(db.stats().batches, 5);
        assert_eq!(parks(&db), 0);
        assert_eq!(clock.now(), std::time::Duration::ZERO);
        // Deterministic: every sync on the executor's thread, no log thread.
        assert_eq!(syncs(&db), (0, 5));
        assert!(db.engine.pipeline.log_thread.is_none());
    }

    #[test]
    fn a_lone_writer_after_a_burst_waits_at_most_one_round() {
        // Without the log thread: with it, a closer never waits (see the next test).
        let dir = tempfile::tempdir().unwrap();
        let db = open(&dir, true, false);
        // A burst of 32 commits from one thread: one batch, then only one comes back.
        block_on(futures::future::join_all((0..32).map(|i: u32| {
            let tx = db.create_transaction().unwrap();
            async move {
                tx.set(&i.to_be_bytes(), b"v");
                tx.commit().await.unwrap()
            }
        })));
        // 31 of them are expected back; the one that comes waits a round at most.
        let tx = db.create_transaction().unwrap();
        tx.set(b"alone", b"v");
        block_on(tx.commit()).unwrap();
        assert!(parks(&db) <= 1);
        // Then nobody is waited for any more.
        for i in 0..5u32 {
            let tx = db.create_transaction().unwrap();
            tx.set(&i.to_le_bytes(), b"v");
            block_on(tx.commit()).unwrap();
        }
        assert!(parks(&db) <= 1);
        assert_eq!(db.stats().committed, 38);
    }

    type Commit<'t> =
        Pin<Box<dyn Future<Output = crate::kv::FdbResult<crate::kv::Committed>> + 't>>;

    /// Starts `a`'s and `b`'s commits in one batch: `a`'s is to close it and has yielded
    /// first, `b`'s has joined it.
    fn start_in_one_batch<'t>(
        a: &'t EmbeddedTransaction,
        b: &'t EmbeddedTransaction,
    ) -> (Commit<'t>, Commit<'t>) {
        let mut cx = Context::from_waker(futures::task::noop_waker_ref());
        let (mut first, mut second): (Commit<'t>, Commit<'t>) =
            (Box::pin(a.commit()), Box::pin(b.commit()));
        assert!(first.as_mut().poll(&mut cx).is_pending());
        assert!(second.as_mut().poll(&mut cx).is_pending());
        (first, second)
    }

    #[test]
    fn a_dropped_closer_hands_its_batch_on() {
        let db = EmbeddedDatabase::in_memory().unwrap();
        let (a, b) = (
            db.create_transaction().unwrap(),
            db.create_transaction().unwrap(),
        );
        a.set(b"a", b"1");
        b.set(b"b", b"2");
        let (first, second) = start_in_one_batch(&a, &b);
        drop(first);
        let version = block_on(second).unwrap().version;
        // The dropped commit was in the batch, so it committed too (an unknown outcome).
        let read = block_on(db.run(|tx, _| async move {
            Ok::<_, FdbError>((tx.get(b"a", false).await?, tx.get(b"b", false).await?))
        }))
        .unwrap();
        assert_eq!(read, (Some(b"1".to_vec()), Some(b"2".to_vec())));
        assert_eq!(db.committed_version(), version);
    }

    #[test]
    fn requests_a_busy_applier_leaves_are_applied_by_the_closer_in_arrival_order() {
        let db = EmbeddedDatabase::in_memory().unwrap();
        let (a, b) = (
            db.create_transaction().unwrap(),
            db.create_transaction().unwrap(),
        );
        a.set(b"k", b"first");
        b.set(b"k", b"second");
        for tx in [&a, &b] {
            tx.atomic_op(b"n", &1i64.to_le_bytes(), MutationType::Add);
        }
        // Another committer is applying: arrivals only queue their requests.
        let busy = db.engine.pipeline.applier.lock().unwrap();
        let (first, second) = start_in_one_batch(&a, &b);
        {
            let fill = db.engine.fill();
            let open = fill.open.as_ref().expect("a batch is filling");
            assert_eq!(open.pending.len(), 2, "applied while the applier was busy");
        }
        assert!(busy.storage.is_none());
        drop(busy);
        let (x, y) = (block_on(first).unwrap(), block_on(second).unwrap());
        assert_eq!(x.version, y.version, "one batch");
        assert!(
            x.versionstamp < y.versionstamp,
            "positions in arrival order"
        );
        let read = block_on(db.run(|tx, _| async move {
            Ok::<_, FdbError>((tx.get(b"k", false).await?, tx.get(b"n", false).await?))
        }))
        .unwrap();
        // Applied in arrival order: the later write wins, and both adds count.
        assert_eq!(
            read,
            (Some(b"second".to_vec()), Some(2i64.to_le_bytes().to_vec()))
        );
    }

    #[test]
    fn nothing_commits_after_a_committer_panicked_while_applying() {
        let db = EmbeddedDatabase::in_memory().unwrap();
        let engine = db.engine.clone();
        // As if a committer panicked with the applier held, mid-request.
        let _ = std::thread::spawn(move || {
            let _held = engine.pipeline.applier.lock().unwrap();
            panic!("applying");
        })
        .join();
        for _ in 0..2 {
            let tx = db.create_transaction().unwrap();
            tx.set(b"k", b"v");
            let err = block_on(tx.commit()).unwrap_err();
            assert_eq!(err.code(), crate::kv::code::INTERNAL_ERROR);
        }
        let read = block_on(db.run(|tx, _| async move { tx.get(b"k", false).await }));
        assert_eq!(
            read.unwrap(),
            None,
            "never reported committed, never written"
        );
    }

    #[test]
    fn a_full_batch_whose_committers_all_left_is_closed_by_the_next_arrival() {
        let dir = tempfile::tempdir().unwrap();
        for on_disk in [false, true] {
            full_batch_abandoned(&open(&dir, on_disk, on_disk));
        }
    }

    /// In memory, or on disk (with the log thread, if `log_thread`).
    fn open(dir: &tempfile::TempDir, on_disk: bool, log_thread: bool) -> EmbeddedDatabase {
        let builder = EmbeddedDatabase::builder().log_thread(log_thread);
        if on_disk {
            let path = dir.path().join(format!("{}.redb", fastrand_name()));
            builder.open(path).unwrap()
        } else {
            builder.in_memory().unwrap()
        }
    }

    /// A fresh file name in a test's directory.
    fn fastrand_name() -> String {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        format!("db{}", NEXT.fetch_add(1, Relaxed))
    }

    fn full_batch_abandoned(db: &EmbeddedDatabase) {
        let mut cx = Context::from_waker(futures::task::noop_waker_ref());
        // A full batch, then every one of its committers drops its future (as a
        // timeout would): the batch has nobody left to close it.
        let mut pending: Vec<Pin<Box<dyn Future<Output = _>>>> = (0..super::MAX_BATCH)
            .map(|i| {
                let tx = db.create_transaction().unwrap();
                tx.set(format!("gone/{i}").as_bytes(), b"v");
                Box::pin(async move { tx.commit().await }) as Pin<Box<dyn Future<Output = _>>>
            })
            .collect();
        for commit in &mut pending {
            assert!(commit.as_mut().poll(&mut cx).is_pending());
        }
        drop(pending);
        // The next commit finds the batch full, waits behind it, and must close it.
        let (sender, receiver) = std::sync::mpsc::channel();
        let late = db.clone();
        std::thread::spawn(move || {
            let tx = late.create_transaction().unwrap();
            tx.set(b"late", b"v");
            let _ = sender.send(block_on(tx.commit()).map(|c| c.version));
        });
        let version = receiver
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("the commit behind an abandoned full batch finishes")
            .unwrap();
        assert_eq!(db.committed_version(), version);
        assert_eq!(
            db.stats().batches,
            2,
            "the abandoned batch, then the late one"
        );
    }

    #[test]
    fn requests_beyond_a_full_batch_fill_the_next() {
        let dir = tempfile::tempdir().unwrap();
        for on_disk in [false, true] {
            beyond_a_full_batch(&open(&dir, on_disk, on_disk));
        }
    }

    fn beyond_a_full_batch(db: &EmbeddedDatabase) {
        let n = super::MAX_BATCH + 100;
        let stamps = block_on(futures::future::join_all((0..n).map(|i| {
            let tx = db.create_transaction().unwrap();
            async move {
                tx.set(format!("k{i}").as_bytes(), b"v");
                tx.commit().await.unwrap().versionstamp.unwrap()
            }
        })));
        let mut distinct = stamps.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), n, "versionstamps are unique");
        assert!(stamps.windows(2).all(|w| w[0] < w[1]), "in commit order");
        assert_eq!(db.stats().batches, 2);
    }
}
