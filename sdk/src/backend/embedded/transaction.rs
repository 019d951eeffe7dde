//! An embedded-engine transaction: snapshot reads at its read version merged with its
//! own buffered writes, conflict tracking, options, commit and `on_error`.

use super::commit::CommitRequest;
use super::engine::{Engine, EngineHandle};
use super::faults::CommitFault;
use super::intervals::IntervalSet;
use super::storage::{StorageSnapshot, StoredRow, StoredRows};
use super::write_buffer::{apply_pending, Entry, Lookup, WriteBuffer};
use crate::kv::types::BatchBuilder;
use crate::kv::{
    code, key_after, limits, Committed, ConflictRangeType, FdbError, FdbResult, KeySelector,
    MutationType, RangeBatch, RangeOption, RangeResult, StreamingMode, Transaction,
    TransactionOption, METADATA_VERSION_KEY, METADATA_VERSION_KEY_END,
    METADATA_VERSION_REQUIRED_VALUE,
};
use std::cmp::Ordering;
use std::collections::btree_map;
use std::iter::Peekable;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// End of the user key space: keys at or after `\xff` are FoundationDB's system keys.
const KEYSPACE_END: &[u8] = b"\xff";
/// FoundationDB's error for Exact streaming mode without a limit.
const EXACT_MODE_WITHOUT_LIMITS: i32 = 2210;
/// Per-batch byte cap when the streaming mode doesn't set a smaller one.
const BATCH_BYTES: usize = 1 << 20;
/// Rows a range read makes room for up front; more grow the result as they come.
const INITIAL_ROWS: usize = 16;
/// Most rows a range read makes room for up front, whatever its limit says.
const MAX_PRESIZED_ROWS: usize = 1024;

fn err(c: i32) -> FdbError {
    FdbError::from_code(c)
}

/// A transaction on an [`EmbeddedDatabase`](super::EmbeddedDatabase). Clones share it.
#[derive(Clone)]
pub struct EmbeddedTransaction {
    inner: Arc<TxInner>,
}

struct TxInner {
    engine: EngineHandle,
    state: Mutex<TxState>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Active,
    Committing,
    /// A commit ended, committed or not. As in FoundationDB (API ≥ 410), any use but
    /// `get_read_version` then fails with `used_during_commit` and poisons the
    /// transaction, until `on_error` or `reset`: a retry loop must call `on_error`
    /// before it touches the transaction again.
    CommitEnded,
    /// Used after its commit: everything, `on_error` included, answers
    /// `used_during_commit` until `reset`.
    Poisoned,
    /// The timeout elapsed: every use reports `transaction_timed_out` until `reset`.
    TimedOut,
    /// Cancelled, or given up on by `on_error`: every use reports
    /// `transaction_cancelled` until `reset`.
    Cancelled,
}

/// Options that survive `on_error` (FoundationDB API ≥ 610).
#[derive(Clone, Copy)]
struct PersistentOptions {
    timeout: Option<Duration>,
    retry_limit: Option<u32>,
    max_retry_delay: Duration,
}

impl Default for PersistentOptions {
    fn default() -> Self {
        PersistentOptions {
            timeout: None,
            retry_limit: None,
            max_retry_delay: limits::DEFAULT_MAX_RETRY_DELAY,
        }
    }
}

struct TxState {
    status: Status,
    snapshot: Option<Arc<StorageSnapshot>>,
    read_version_at: Duration,
    reads: IntervalSet,
    /// Keys of non-snapshot point reads, end to end (`read_point_ends` marks where each
    /// ends). Kept as a plain list and folded into `reads` only at commit: most point
    /// reads belong to transactions that never commit writes.
    read_points: Vec<u8>,
    read_point_ends: Vec<usize>,
    read_point_bytes: usize,
    writes: WriteBuffer,
    /// A write that failed validation; reported by the next read or the commit.
    deferred: Option<FdbError>,
    persistent: PersistentOptions,
    size_limit: usize,
    idempotent: bool,
    /// Snapshot reads see this transaction's writes while this is positive: each
    /// enable adds one and each disable takes one away, as FoundationDB counts them.
    snapshot_ryw: i32,
    /// This attempt changed record-store state (see `mark_store_state_changed`).
    store_state_changed: bool,
    /// Run when this attempt commits (see `on_commit`).
    commit_hooks: Vec<crate::kv::CommitHook>,
    created_at: Duration,
    /// Counts `on_error` and `reset` calls: a commit that ends after one of them
    /// leaves the new attempt alone.
    attempt: u64,
    retries: u32,
    backoff: Duration,
    committed: Option<Committed>,
}

impl TxState {
    fn new(now: Duration, persistent: PersistentOptions) -> Self {
        TxState {
            status: Status::Active,
            snapshot: None,
            read_version_at: Duration::ZERO,
            reads: IntervalSet::new(),
            read_points: Vec::new(),
            read_point_ends: Vec::new(),
            read_point_bytes: 0,
            writes: WriteBuffer::default(),
            deferred: None,
            persistent,
            size_limit: limits::MAX_TRANSACTION_SIZE,
            idempotent: false,
            snapshot_ryw: 1,
            store_state_changed: false,
            commit_hooks: Vec::new(),
            created_at: now,
            attempt: 0,
            retries: 0,
            backoff: limits::INITIAL_RETRY_DELAY,
            committed: None,
        }
    }

    /// Clears everything an attempt accumulated, keeping the persistent options and
    /// the retry bookkeeping. The other options go back to their defaults, as
    /// FoundationDB's `on_error` resets them: a retry loop sets them in each attempt.
    fn reset_attempt(&mut self) {
        self.attempt += 1;
        self.status = Status::Active;
        self.size_limit = limits::MAX_TRANSACTION_SIZE;
        self.idempotent = false;
        self.snapshot_ryw = 1;
        self.snapshot = None;
        self.reads = IntervalSet::new();
        self.read_points.clear();
        self.read_point_ends.clear();
        self.read_point_bytes = 0;
        self.writes = WriteBuffer::default();
        self.deferred = None;
        self.committed = None;
        self.store_state_changed = false;
        self.commit_hooks.clear();
    }

    fn timed_out(&self, now: Duration) -> bool {
        self.persistent
            .timeout
            .is_some_and(|t| now.saturating_sub(self.created_at) >= t)
    }

    /// Checks that an operation may run now.
    fn check_usable(&mut self, now: Duration) -> FdbResult<()> {
        self.check_usable_at(|| now)
    }

    /// As [`check_usable`](Self::check_usable), reading the clock only if a timeout is
    /// set: writes and conflict ranges need no time otherwise, and a clock read costs
    /// as much as buffering a small write.
    fn check_usable_at(&mut self, now: impl FnOnce() -> Duration) -> FdbResult<()> {
        match self.status {
            Status::Active => {}
            Status::Poisoned => return Err(err(code::USED_DURING_COMMIT)),
            // The commit in flight still answers for itself.
            Status::Committing | Status::CommitEnded => {
                self.status = Status::Poisoned;
                return Err(err(code::USED_DURING_COMMIT));
            }
            Status::TimedOut => return Err(err(code::TRANSACTION_TIMED_OUT)),
            Status::Cancelled => return Err(err(code::TRANSACTION_CANCELLED)),
        }
        if self.persistent.timeout.is_some() && self.timed_out(now()) {
            self.status = Status::TimedOut;
            return Err(err(code::TRANSACTION_TIMED_OUT));
        }
        Ok(())
    }

    fn check_readable(&mut self, now: Duration) -> FdbResult<()> {
        self.check_usable(now)?;
        match self.deferred {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Records a write's validation failure, keeping the first one.
    fn defer(&mut self, e: FdbError) {
        self.deferred.get_or_insert(e);
    }

    /// A commit ended (either way). A cancel or timeout that came meanwhile stays.
    fn end_commit(&mut self) {
        if matches!(self.status, Status::Active | Status::Committing) {
            self.status = Status::CommitEnded;
        }
    }

    /// The error that a cancelled, timed-out or poisoned transaction answers to
    /// everything, `on_error` included, until `reset`.
    fn sticky_error(&mut self, now: Duration) -> Option<FdbError> {
        match self.status {
            Status::Cancelled => Some(err(code::TRANSACTION_CANCELLED)),
            Status::Poisoned => Some(err(code::USED_DURING_COMMIT)),
            Status::TimedOut => Some(err(code::TRANSACTION_TIMED_OUT)),
            _ if self.timed_out(now) => {
                self.status = Status::TimedOut;
                Some(err(code::TRANSACTION_TIMED_OUT))
            }
            _ => None,
        }
    }

    /// Time left before the timeout, if one is set.
    fn time_left(&self, now: Duration) -> Option<Duration> {
        let timeout = self.persistent.timeout?;
        Some(timeout.saturating_sub(now.saturating_sub(self.created_at)))
    }

    fn size(&self) -> usize {
        self.writes.mutation_bytes
            + self.writes.write_conflicts.byte_size()
            + self.reads.byte_size()
            + self.read_point_bytes
    }

    fn has_reads(&self) -> bool {
        !self.reads.is_empty() || !self.read_point_ends.is_empty()
    }

    /// The full read-conflict set, point reads included.
    fn take_read_conflicts(&mut self) -> IntervalSet {
        let mut reads = std::mem::take(&mut self.reads);
        let mut begin = 0;
        for end in self.read_point_ends.drain(..) {
            reads.insert_key(&self.read_points[begin..end]);
            begin = end;
        }
        self.read_points.clear();
        self.read_point_bytes = 0;
        reads
    }

    /// Records a non-snapshot read of `[begin, end)`, less what this transaction set
    /// or cleared there (see [`WriteBuffer::storage_dependent`]).
    fn add_read_range(&mut self, begin: Vec<u8>, end: Vec<u8>) {
        if !self.writes.touches(&begin, &end) {
            self.reads.insert_owned(begin, end);
            return;
        }
        let TxState { writes, reads, .. } = self;
        writes.storage_dependent(&begin, &end, |b, e| reads.insert(b, e));
    }

    /// Records a non-snapshot point read of `key`.
    fn add_read_point(&mut self, key: &[u8]) {
        self.read_point_bytes += 2 * key.len() + 1;
        if self.read_point_ends.capacity() == 0 {
            // Sized once for a store open and a few loads, rather than doubled up to it.
            self.read_points.reserve(POINT_READ_BYTES);
            self.read_point_ends.reserve(POINT_READS);
        }
        self.read_points.extend_from_slice(key);
        self.read_point_ends.push(self.read_points.len());
    }
}

/// First allocation of a transaction's point-read log: keys, and reads.
const POINT_READ_BYTES: usize = 512;
const POINT_READS: usize = 24;

fn legal_key(key: &[u8]) -> FdbResult<()> {
    if key >= KEYSPACE_END && key != METADATA_VERSION_KEY {
        return Err(err(code::KEY_OUTSIDE_LEGAL_RANGE));
    }
    Ok(())
}

fn legal_range_end(key: &[u8]) -> FdbResult<()> {
    if key > KEYSPACE_END {
        return Err(err(code::KEY_OUTSIDE_LEGAL_RANGE));
    }
    Ok(())
}

fn check_write(key: &[u8], value_len: usize) -> FdbResult<()> {
    legal_key(key)?;
    if key.len() > limits::MAX_KEY_SIZE {
        return Err(err(code::KEY_TOO_LARGE));
    }
    if value_len > limits::MAX_VALUE_SIZE {
        return Err(err(code::VALUE_TOO_LARGE));
    }
    Ok(())
}

impl EmbeddedTransaction {
    pub(crate) fn new(engine: EngineHandle) -> Self {
        let now = engine.clock.now();
        EmbeddedTransaction {
            inner: Arc::new(TxInner {
                engine,
                state: Mutex::new(TxState::new(now, PersistentOptions::default())),
            }),
        }
    }

    fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    fn lock(&self) -> MutexGuard<'_, TxState> {
        // A panic while holding the lock cannot leave the state half-updated in a way
        // reads could observe as data, so poisoning is ignored.
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn now(&self) -> Duration {
        self.engine().clock.now()
    }

    /// Injected latency, if fault injection asks for it.
    async fn maybe_delay(&self) {
        if let Some(d) = self.engine().faults().and_then(|f| f.delay()) {
            self.engine().clock.sleep(d).await;
        }
    }

    /// The read snapshot, acquiring the read version on first use and enforcing its age.
    fn read_snapshot<'s>(
        &self,
        st: &'s mut TxState,
        now: Duration,
    ) -> FdbResult<&'s StorageSnapshot> {
        self.acquire_snapshot(st, now)?;
        Ok(st.snapshot.as_deref().expect("acquired"))
    }

    /// Acquires the read version on first use and enforces its age; afterwards
    /// `st.snapshot` is set. Borrowing it from there (rather than cloning the shared
    /// `Arc`) keeps reads off the reference count every transaction shares.
    fn acquire_snapshot(&self, st: &mut TxState, now: Duration) -> FdbResult<()> {
        if st.snapshot.is_none() {
            st.snapshot = Some(self.engine().read_snapshot());
            st.read_version_at = now;
        }
        if now.saturating_sub(st.read_version_at) > self.engine().lifetime
            || self.engine().faults().is_some_and(|f| f.read_too_old())
        {
            return Err(err(code::TRANSACTION_TOO_OLD));
        }
        Ok(())
    }

    fn get_sync(&self, key: &[u8], snapshot: bool) -> FdbResult<Option<Vec<u8>>> {
        let mut st = self.lock();
        let now = self.now();
        st.check_readable(now)?;
        legal_key(key)?;
        if key.len() > limits::MAX_KEY_SIZE {
            // No such key can exist: FoundationDB answers without reading, and adds no
            // read conflict.
            return Ok(None);
        }
        let use_writes = !snapshot || st.snapshot_ryw > 0;
        let ops = if use_writes {
            match st.writes.lookup(key) {
                Lookup::Unreadable => return Err(err(code::ACCESSED_UNREADABLE)),
                Lookup::Local(v) => return Ok(v.map(<[u8]>::to_vec)),
                Lookup::Stored(ops) => ops.to_vec(),
            }
        } else {
            Vec::new()
        };
        let snap = self.read_snapshot(&mut st, now)?;
        let stored = if key == METADATA_VERSION_KEY {
            snap.metadata_version().map(<[u8]>::to_vec)
        } else {
            snap.get(key)?
        };
        if !snapshot {
            st.add_read_point(key);
        }
        Ok(apply_pending(stored, &ops))
    }

    /// Resolves a selector against the merged view, adding the span it examined as a
    /// read conflict. Anchors past `\xff` are outside the user key space (2004).
    fn resolve(
        &self,
        st: &mut TxState,
        sel: &KeySelector,
        snapshot: bool,
        now: Duration,
    ) -> FdbResult<Vec<u8>> {
        legal_range_end(&sel.key)?;
        let anchor: &[u8] = &sel.key;
        self.acquire_snapshot(st, now)?;
        let snap = st.snapshot.as_deref().expect("acquired");
        let writes = (!snapshot || st.snapshot_ryw > 0).then_some(&st.writes);
        let (key, span) = if sel.offset >= 1 {
            let begin = if sel.or_equal {
                key_after(anchor)
            } else {
                anchor.to_vec()
            };
            // Past the last user key (`first_greater_than(b"\xff")`), FoundationDB
            // answers `\xff`: there is nothing to merge.
            let found = if begin.as_slice() < KEYSPACE_END {
                nth_row(
                    Merged::new(writes, snap, &begin, KEYSPACE_END, false)?,
                    sel.offset as usize - 1,
                )?
            } else {
                None
            };
            match found {
                Some(row) => {
                    let k = row.key().to_vec();
                    let end = key_after(&k);
                    (k, (begin, end))
                }
                None => (KEYSPACE_END.to_vec(), (begin, KEYSPACE_END.to_vec())),
            }
        } else {
            let end = if sel.or_equal {
                key_after(anchor)
            } else {
                anchor.to_vec()
            };
            let found = nth_row(
                Merged::new(writes, snap, b"", &end, true)?,
                sel.offset.unsigned_abs() as usize,
            )?;
            match found {
                Some(row) => {
                    let k = row.key().to_vec();
                    (k.clone(), (k, end))
                }
                None => (Vec::new(), (Vec::new(), end)),
            }
        };
        if !snapshot {
            st.add_read_range(span.0, span.1);
        }
        Ok(key)
    }

    /// A range bound: selectors of the form "first key ≥ k" or "first key > k" need no
    /// resolution (and add no conflict beyond the range itself).
    fn bound(
        &self,
        st: &mut TxState,
        sel: &KeySelector,
        snapshot: bool,
        now: Duration,
    ) -> FdbResult<Vec<u8>> {
        if sel.offset == 1 {
            legal_range_end(&sel.key)?;
            let k = if sel.or_equal {
                key_after(&sel.key)
            } else {
                sel.key.clone()
            };
            return Ok(if k.as_slice() > KEYSPACE_END {
                KEYSPACE_END.to_vec()
            } else {
                k
            });
        }
        self.resolve(st, sel, snapshot, now)
    }

    fn get_range_sync(
        &self,
        range: &RangeOption,
        iteration: usize,
        snapshot: bool,
    ) -> FdbResult<RangeBatch> {
        let mut st = self.lock();
        let now = self.now();
        st.check_readable(now)?;
        let (row_cap, byte_cap) = batch_size(range, iteration)?;
        let st = &mut *st;
        let begin = self.bound(st, &range.begin, snapshot, now)?;
        let end = self.bound(st, &range.end, snapshot, now)?;
        if begin >= end || row_cap == 0 {
            return Ok(RangeBatch::default());
        }
        self.acquire_snapshot(st, now)?;
        let snap = st.snapshot.as_deref().expect("acquired");
        // Storage alone answers when this transaction wrote nothing in the range.
        let writes = (!snapshot || st.snapshot_ryw > 0)
            .then_some(&st.writes)
            .filter(|w| w.touches(&begin, &end));
        let mut rows = Merged::new(writes, snap, &begin, &end, range.reverse)?;
        // Every row is copied out of storage once, into one buffer for the batch.
        // Sized for the rows asked for, when a limit says how many (a cursor's first
        // read does); otherwise grown as rows come.
        let expected_rows = match range.limit {
            Some(limit) => row_cap.min(limit).min(MAX_PRESIZED_ROWS),
            None => row_cap.min(INITIAL_ROWS),
        };
        let mut batch = BatchBuilder::new(expected_rows, byte_cap);
        let mut truncated = false;
        while let Some(pushed) = rows.next_into(|row| batch.push(row.key(), row.value())) {
            pushed?;
            if batch.rows() >= row_cap || batch.bytes() >= byte_cap {
                truncated = true;
                break;
            }
        }
        // As FoundationDB's client: a batch that used up its limits reports more to
        // come, whether or not a row follows. Its read-conflict range then stops at the
        // last row returned only where FoundationDB's RYW stops it: a forward read
        // whose end selector has a positive offset (the usual "first key ≥ end"), a
        // reverse read whose begin selector has an offset ≤ 0; otherwise, and whenever
        // the rows ran out, it covers the whole range, so that a phantom insert past
        // the last row is noticed.
        let more = truncated;
        drop(rows);
        let batch = batch.finish_batch(more);
        if !snapshot {
            match (more, batch.last_key()) {
                (true, Some(last)) if range.reverse && range.begin.offset <= 0 => {
                    st.add_read_range(last.to_vec(), end)
                }
                (true, Some(last)) if !range.reverse && range.end.offset > 0 => {
                    st.add_read_range(begin, key_after(last))
                }
                _ => st.add_read_range(begin, end),
            }
        }
        Ok(batch)
    }

    fn write(&self, f: impl FnOnce(&mut TxState) -> FdbResult<()>) {
        let mut st = self.lock();
        if let Err(e) = st.check_usable_at(|| self.now()).and_then(|()| f(&mut st)) {
            st.defer(e);
        }
    }

    /// Builds the commit request, or finishes a read-only commit on the spot.
    fn prepare_commit(&self) -> FdbResult<Result<CommitRequest, Committed>> {
        let mut st = self.lock();
        let now = self.now();
        st.check_readable(now)?;
        if st.writes.is_empty() {
            let committed = Committed {
                version: -1,
                versionstamp: None,
            };
            st.end_commit();
            st.committed = Some(committed);
            return Ok(Err(committed));
        }
        if st.size() > st.size_limit {
            return Err(err(code::TRANSACTION_TOO_LARGE));
        }
        if st.has_reads() && st.snapshot.is_none() {
            // Explicit read conflicts without a read: read at the current version.
            self.acquire_snapshot(&mut st, now)?;
        }
        let read_version = match &st.snapshot {
            Some(s) if st.has_reads() => {
                if now.saturating_sub(st.read_version_at) > self.engine().lifetime {
                    return Err(err(code::TRANSACTION_TOO_OLD));
                }
                Some(s.version())
            }
            _ => None,
        };
        st.status = Status::Committing;
        let writes = std::mem::take(&mut st.writes);
        Ok(Ok(CommitRequest {
            read_version,
            read_conflicts: st.take_read_conflicts(),
            write_conflicts: writes.write_conflicts,
            mutations: writes.mutations,
            fault: self
                .engine()
                .faults()
                .map_or(CommitFault::None, |f| f.commit_fault()),
            idempotent: st.idempotent,
        }))
    }
}

/// The `n`th row (from 0), failing on the first error among the rows stepped over:
/// `Iterator::nth` would drop it, and a selector would step past a versionstamped value
/// it must not read through.
fn nth_row(mut rows: Merged<'_>, n: usize) -> FdbResult<Option<Row>> {
    for _ in 0..n {
        if rows.next().transpose()?.is_none() {
            return Ok(None);
        }
    }
    rows.next().transpose()
}

/// Rows and bytes for one batch of a range read.
fn batch_size(range: &RangeOption, iteration: usize) -> FdbResult<(usize, usize)> {
    let limit = range.limit.unwrap_or(usize::MAX);
    let byte_cap = range.target_bytes.unwrap_or(BATCH_BYTES).max(1);
    let rows = match range.mode {
        StreamingMode::Exact => range.limit.ok_or(err(EXACT_MODE_WITHOUT_LIMITS))?,
        StreamingMode::WantAll | StreamingMode::Serial => usize::MAX,
        StreamingMode::Iterator => 256usize << iteration.clamp(1, 6).saturating_sub(1),
        StreamingMode::Small => 64,
        StreamingMode::Medium => 512,
        StreamingMode::Large => 4096,
    };
    Ok((rows.min(limit), byte_cap))
}

/// Storage rows merged with the transaction's own writes, in key order.
struct Merged<'a> {
    /// `None`: storage alone answers, row by row.
    writes: Option<&'a WriteBuffer>,
    stored: StoredRows,
    /// The next stored row, once looked at (only when merging with `writes`).
    stored_next: Option<Option<StoredResult>>,
    /// The buffered entries in the range, when `writes` is set.
    buffered: Option<Peekable<BufferedRows<'a>>>,
    reverse: bool,
    /// Where the scan reaches keys a versionstamped key of this transaction may
    /// become (forward: the first such key; reverse: the end of the last span):
    /// reaching it, or the end of the range past it, fails with `accessed_unreadable`,
    /// as FoundationDB's RYW iterator fails only once it gets there.
    unreadable_from: Option<Vec<u8>>,
}

type BufferedRows<'a> = Directed<btree_map::Range<'a, Vec<u8>, Entry>>;

/// A double-ended iterator run forwards or backwards.
struct Directed<I> {
    iter: I,
    reverse: bool,
}

impl<I: DoubleEndedIterator> Iterator for Directed<I> {
    type Item = I::Item;

    fn next(&mut self) -> Option<I::Item> {
        if self.reverse {
            self.iter.next_back()
        } else {
            self.iter.next()
        }
    }
}

type StoredResult = FdbResult<StoredRow>;

/// One row of a merged read: still on its storage page, or made by this
/// transaction's own writes.
enum Row {
    Stored(StoredRow),
    Local(Vec<u8>, Vec<u8>),
}

impl Row {
    fn key(&self) -> &[u8] {
        match self {
            Row::Stored(r) => r.key(),
            Row::Local(k, _) => k,
        }
    }
    fn value(&self) -> &[u8] {
        match self {
            Row::Stored(r) => r.value(),
            Row::Local(_, v) => v,
        }
    }
}

impl<'a> Merged<'a> {
    fn new(
        writes: Option<&'a WriteBuffer>,
        snap: &StorageSnapshot,
        begin: &[u8],
        end: &[u8],
        reverse: bool,
    ) -> FdbResult<Self> {
        let buffered = writes.map(|w| {
            let iter = w.entries_in(begin, end);
            Directed { iter, reverse }.peekable()
        });
        let unreadable_from = writes.and_then(|w| {
            let mut spans = w.unreadable_spans(begin, end);
            if reverse {
                spans.last().map(|(_, e)| e.to_vec())
            } else {
                spans.next().map(|(b, _)| b.to_vec())
            }
        });
        Ok(Merged {
            writes,
            stored: snap.range(begin, end, reverse)?,
            stored_next: None,
            buffered,
            reverse,
            unreadable_from,
        })
    }

    /// Whether the scan, about to yield `row` (`None`: about to end), has reached the
    /// keys a versionstamped key may become.
    fn reaches_unreadable(&self, row: Option<&FdbResult<Row>>) -> bool {
        let Some(from) = self.unreadable_from.as_deref() else {
            return false;
        };
        match row {
            None => true,
            Some(Ok(r)) if self.reverse => r.key() < from,
            Some(Ok(r)) => r.key() >= from,
            Some(Err(_)) => false,
        }
    }

    fn next_stored(&mut self) -> Option<StoredResult> {
        match self.stored_next.take() {
            Some(row) => row,
            None => self.stored.next(),
        }
    }

    /// Which source holds the next key in scan order.
    fn next_source(&mut self) -> Option<Ordering> {
        let rows = &mut self.stored;
        let stored = match self.stored_next.get_or_insert_with(|| rows.next()) {
            Some(Ok(row)) => Some(row.key()),
            Some(Err(_)) => return Some(Ordering::Less),
            None => None,
        };
        let buffered = self
            .buffered
            .as_mut()
            .and_then(|b| b.peek())
            .map(|(k, _)| k.as_slice());
        match (stored, buffered) {
            (None, None) => None,
            (Some(_), None) => Some(Ordering::Less),
            (None, Some(_)) => Some(Ordering::Greater),
            (Some(s), Some(b)) => Some(if self.reverse { b.cmp(s) } else { s.cmp(b) }),
        }
    }
}

impl Merged<'_> {
    /// The next row, handed to `f` (see [`StoredRows::next_into`]).
    fn next_into<R>(&mut self, f: impl FnOnce(Row) -> R) -> Option<FdbResult<R>> {
        // Storage alone (the common case): nothing of this transaction to merge or
        // to stop at.
        let Some(writes) = self.writes else {
            return self.stored.next_into(|row| f(Row::Stored(row)));
        };
        let row = self.next_merged(writes);
        if self.reaches_unreadable(row.as_ref()) {
            return Some(Err(err(code::ACCESSED_UNREADABLE)));
        }
        row.map(|row| row.map(f))
    }
}

impl Iterator for Merged<'_> {
    type Item = FdbResult<Row>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_into(|row| row)
    }
}

impl Merged<'_> {
    /// The next row of storage merged with `writes`.
    fn next_merged(&mut self, writes: &WriteBuffer) -> Option<FdbResult<Row>> {
        loop {
            let (key, base, entry) = match self.next_source()? {
                Ordering::Less => match self.next_stored()? {
                    Err(e) => return Some(Err(e)),
                    Ok(row) => {
                        if writes.is_cleared(row.key()) {
                            continue;
                        }
                        return Some(Ok(Row::Stored(row)));
                    }
                },
                Ordering::Equal => {
                    let row = match self.next_stored()? {
                        Ok(row) => row,
                        Err(e) => return Some(Err(e)),
                    };
                    let (_, entry) = self.buffered.as_mut()?.next()?;
                    (row.key().to_vec(), Some(row.value().to_vec()), entry)
                }
                Ordering::Greater => {
                    let (k, entry) = self.buffered.as_mut()?.next()?;
                    (k.clone(), None, entry)
                }
            };
            let value = match entry {
                Entry::Known(v) => v.clone(),
                Entry::Pending(ops) => apply_pending(base, ops),
                Entry::Unreadable => return Some(Err(err(code::ACCESSED_UNREADABLE))),
            };
            if let Some(value) = value {
                return Some(Ok(Row::Local(key, value)));
            }
        }
    }
}

impl Transaction for EmbeddedTransaction {
    fn set_option(&self, option: TransactionOption) -> FdbResult<()> {
        let mut st = self.lock();
        match option {
            TransactionOption::Timeout(d) => st.persistent.timeout = (!d.is_zero()).then_some(d),
            TransactionOption::RetryLimit(n) => st.persistent.retry_limit = n,
            TransactionOption::MaxRetryDelay(d) => {
                st.persistent.max_retry_delay = d;
                st.backoff = st.backoff.min(d);
            }
            TransactionOption::SizeLimit(n) => {
                if !(limits::MIN_TRANSACTION_SIZE_LIMIT..=limits::MAX_TRANSACTION_SIZE).contains(&n)
                {
                    return Err(err(code::INVALID_OPTION_VALUE));
                }
                st.size_limit = n;
            }
            TransactionOption::AutomaticIdempotency => st.idempotent = true,
            TransactionOption::SnapshotRywDisable => st.snapshot_ryw -= 1,
            TransactionOption::SnapshotRywEnable => st.snapshot_ryw += 1,
        }
        Ok(())
    }

    async fn get_read_version(&self) -> FdbResult<i64> {
        let mut st = self.lock();
        let now = self.now();
        // The one call FoundationDB still answers after a commit.
        if let Some(sticky) = st.sticky_error(now) {
            return Err(sticky);
        }
        Ok(self.read_snapshot(&mut st, now)?.version() as i64)
    }

    async fn get(&self, key: &[u8], snapshot: bool) -> FdbResult<Option<Vec<u8>>> {
        self.maybe_delay().await;
        self.get_sync(key, snapshot)
    }

    async fn get_key(&self, selector: &KeySelector, snapshot: bool) -> FdbResult<Vec<u8>> {
        self.maybe_delay().await;
        let mut st = self.lock();
        let now = self.now();
        st.check_readable(now)?;
        self.resolve(&mut st, selector, snapshot, now)
    }

    async fn get_range(
        &self,
        range: &RangeOption,
        iteration: usize,
        snapshot: bool,
    ) -> FdbResult<RangeResult> {
        self.maybe_delay().await;
        Ok(self
            .get_range_sync(range, iteration, snapshot)?
            .into_result())
    }

    async fn get_range_batch(
        &self,
        range: &RangeOption,
        iteration: usize,
        snapshot: bool,
    ) -> FdbResult<RangeBatch> {
        self.maybe_delay().await;
        self.get_range_sync(range, iteration, snapshot)
    }

    fn set(&self, key: &[u8], value: &[u8]) {
        self.write(|st| {
            if key == METADATA_VERSION_KEY {
                // Only a versionstamp may be written there (FoundationDB's rule).
                return Err(err(code::CLIENT_INVALID_OPERATION));
            }
            check_write(key, value.len())?;
            st.writes.set(key, value);
            Ok(())
        })
    }

    fn clear(&self, key: &[u8]) {
        self.write(|st| {
            if key == METADATA_VERSION_KEY {
                return Err(err(code::KEY_OUTSIDE_LEGAL_RANGE));
            }
            legal_key(key)?;
            // No key that long can exist, so FoundationDB ignores the clear.
            if key.len() <= limits::MAX_KEY_SIZE {
                st.writes.clear(key);
            }
            Ok(())
        })
    }

    fn clear_range(&self, begin: &[u8], end: &[u8]) {
        self.write(|st| {
            if begin > end {
                return Err(err(code::INVERTED_RANGE));
            }
            legal_range_end(end)?;
            st.writes.clear_range(begin, end);
            Ok(())
        })
    }

    fn atomic_op(&self, key: &[u8], param: &[u8], op: MutationType) {
        self.write(|st| {
            if key == METADATA_VERSION_KEY
                && (op != MutationType::SetVersionstampedValue
                    || param != METADATA_VERSION_REQUIRED_VALUE)
            {
                return Err(err(code::CLIENT_INVALID_OPERATION));
            }
            // FoundationDB checks a versionstamp template whole, its 4-byte offset
            // included, against the key space and the size limits: a key template at
            // the metadata version key is outside the key space, and one of 10,001
            // bytes is too large although its key would not be.
            let template = match op {
                MutationType::SetVersionstampedKey => key,
                MutationType::SetVersionstampedValue => param,
                _ => &[0; 4][..],
            };
            if template.len() < 4 {
                return Err(err(code::CLIENT_INVALID_OPERATION));
            }
            check_write(key, param.len())?;
            let read_version = st.snapshot.as_ref().map(|s| s.version());
            st.writes.atomic(key, param, op, read_version)
        })
    }

    fn add_conflict_range(
        &self,
        begin: &[u8],
        end: &[u8],
        kind: ConflictRangeType,
    ) -> FdbResult<()> {
        // Only an inverted range fails at once; every other error waits for the next
        // read or the commit, as in FoundationDB's client, which also ignores a
        // cancel or timeout here.
        if begin > end {
            return Err(err(code::INVERTED_RANGE));
        }
        let mut st = self.lock();
        if matches!(
            st.status,
            Status::Committing | Status::CommitEnded | Status::Poisoned
        ) {
            st.status = Status::Poisoned;
            st.defer(err(code::USED_DURING_COMMIT));
            return Ok(());
        }
        // The metadata version key's own range, read, is the one legal range past `\xff`.
        let metadata_version = kind == ConflictRangeType::Read
            && begin == METADATA_VERSION_KEY
            && end == METADATA_VERSION_KEY_END;
        if !metadata_version {
            if let Err(e) = legal_range_end(end) {
                st.defer(e);
                return Ok(());
            }
        }
        match kind {
            // A single key (`key`, `key\0`) goes with the point reads, which are
            // cheaper to collect.
            ConflictRangeType::Read
                if end.len() == begin.len() + 1
                    && end.starts_with(begin)
                    && end.last() == Some(&0) =>
            {
                // A key this transaction set or cleared depends on nothing stored.
                if !matches!(st.writes.lookup(begin), Lookup::Local(_)) {
                    st.add_read_point(begin)
                }
            }
            ConflictRangeType::Read => st.add_read_range(begin.to_vec(), end.to_vec()),
            ConflictRangeType::Write => st.writes.write_conflicts.insert(begin, end),
        }
        Ok(())
    }

    async fn get_approximate_size(&self) -> FdbResult<i64> {
        Ok(self.lock().size() as i64)
    }

    async fn commit(&self) -> FdbResult<Committed> {
        // Outside the lock: hooks write into this transaction.
        let hooks = std::mem::take(&mut self.lock().commit_hooks);
        hooks.into_iter().for_each(|hook| hook());
        self.maybe_delay().await;
        let attempt = {
            let mut st = self.lock();
            // A deferred write error, a cancel or a timeout is reported before the
            // commit starts (FoundationDB checks them first): the transaction stays
            // as it was.
            st.check_readable(self.now())?;
            st.attempt
        };
        let request = match self.prepare_commit() {
            Ok(Ok(request)) => request,
            Ok(Err(read_only)) => return Ok(read_only),
            Err(e) => {
                // Failed before it was sent (size, age): the commit still ended, as
                // FoundationDB counts it.
                self.lock().end_commit();
                return Err(e);
            }
        };
        let result = self.engine().submit_commit(request).await;
        let mut st = self.lock();
        if st.attempt != attempt {
            // Reset (or retried) meanwhile: the new attempt is not this commit's.
            return result;
        }
        if let Ok(committed) = result {
            st.committed = Some(committed);
        }
        // Cancelled or timed out meanwhile: FoundationDB's commit answers that, and
        // the commit may have happened (as after `commit_unknown_result`).
        if let Some(sticky) = st.sticky_error(self.now()) {
            return Err(sticky);
        }
        st.end_commit();
        result
    }

    fn committed_versionstamp(&self) -> Option<[u8; 10]> {
        self.lock().committed.and_then(|c| c.versionstamp)
    }

    async fn on_error(&self, error: FdbError) -> FdbResult<()> {
        let (delay, time_left) = {
            let mut st = self.lock();
            let now = self.now();
            // In FoundationDB's order: a cancelled, timed-out or poisoned transaction
            // first, then the retry limit, then whether the error is retryable.
            if let Some(sticky) = st.sticky_error(now) {
                return Err(sticky);
            }
            let limit_hit = st
                .persistent
                .retry_limit
                .is_some_and(|limit| st.retries >= limit);
            if limit_hit || !error.is_retryable() {
                // Given up on: FoundationDB cancels the transaction (API ≥ 610), so a
                // loop that carries on regardless hears about it.
                st.status = Status::Cancelled;
                return Err(if error.code() == 0 {
                    // `success` is no error to retry.
                    err(code::CLIENT_INVALID_OPERATION)
                } else {
                    error
                });
            }
            st.retries += 1;
            let max = st.persistent.max_retry_delay;
            let delay = if matches!(
                error.code(),
                code::TRANSACTION_TOO_OLD | code::FUTURE_VERSION
            ) {
                // FoundationDB waits a short fixed time: a fresh read version is all
                // the retry needs, and nothing conflicted.
                limits::FUTURE_VERSION_RETRY_DELAY.min(max)
            } else {
                // A cluster short of memory is given longer: FoundationDB grows the
                // backoff up to 30 s then, whatever the maximum retry delay.
                let cap = if matches!(
                    error.code(),
                    code::COMMIT_PROXY_MEMORY_LIMIT_EXCEEDED
                        | code::GRV_PROXY_MEMORY_LIMIT_EXCEEDED
                ) {
                    limits::RESOURCE_CONSTRAINED_MAX_BACKOFF
                } else {
                    max
                };
                let backoff = st.backoff;
                st.backoff = st.backoff.saturating_mul(2).min(cap);
                self.engine().jittered(backoff)
            };
            st.reset_attempt();
            (delay, st.time_left(now))
        };
        match time_left {
            // The timeout cuts the wait short, as FoundationDB's timer does.
            Some(left) if left <= delay => {
                self.engine().clock.sleep(left).await;
                let mut st = self.lock();
                if st.status == Status::Active {
                    st.status = Status::TimedOut;
                }
                Err(err(code::TRANSACTION_TIMED_OUT))
            }
            _ => {
                self.engine().clock.sleep(delay).await;
                Ok(())
            }
        }
    }

    fn reset(&self) {
        let now = self.now();
        let mut st = self.lock();
        let attempt = st.attempt + 1;
        *st = TxState::new(now, PersistentOptions::default());
        st.attempt = attempt;
    }

    fn cancel(&self) {
        let mut st = self.lock();
        // A timed-out or poisoned transaction keeps its answer.
        if !matches!(st.status, Status::TimedOut | Status::Poisoned) {
            st.status = Status::Cancelled;
        }
    }

    fn store_state_cache(&self) -> Option<&crate::store::StoreStateCache> {
        Some(&self.inner.engine.store_states)
    }

    fn mark_store_state_changed(&self) {
        self.lock().store_state_changed = true;
    }

    fn store_state_changed(&self) -> bool {
        self.lock().store_state_changed
    }

    fn on_commit(&self, hook: crate::kv::CommitHook) -> bool {
        self.lock().commit_hooks.push(hook);
        true
    }
}
