//! Cursors and continuations: scans that stop inside a transaction's limits and resume
//! exactly where they stopped, in a later transaction, from an untrusted token.
//!
//! A [`Cursor`] is a [`futures::Stream`] of items. When it ends it says why
//! ([`NoNextReason`]: the source is exhausted, or a return / scan / byte / time limit
//! was reached) and hands out a [`Continuation`]: resuming the same scan from it
//! returns exactly the items after the last one returned. Continuations seek (the
//! next read starts at the stored position), so page *N* costs what page 1 costs.
//!
//! | piece | what |
//! |---|---|
//! | [`ScanPlan`] | what to scan: [`RecordScan`], [`IndexScan`], [`Union`], [`Intersection`] |
//! | [`RecordStore::execute`](crate::store::RecordStore::execute) | opens a plan as a [`Cursor`], from the start or from a continuation |
//! | [`ScanLimits`] | keys read, bytes read, time: shared by every scan of one cursor |
//! | [`Continuation`], [`ContinuationCodec`] | the token: bytes or URL-safe string, optionally HMAC-signed |
//! | [`Cursor::filter`], [`Cursor::map`], [`Cursor::and_then`], [`Cursor::limit`] | combinators that keep continuations exact |
//! | [`ScanRunner`] | pages a whole scan through as many transactions as it needs |
//!
//! # Limits and progress
//!
//! Limits are checked *between* records (a record split over several keys is never
//! cut), and every scan reads at least one record before it checks them, so a page
//! always makes progress — even one whose filter rejected everything it read: the
//! continuation then points after the last record *read*, not the last returned.
//! The defaults ([`ScanLimits::default`]) stop a scan after 10,000 keys, 2 MB, or 2 s
//! (the time limit needs a caller-supplied [`TimeSource`]; the SDK reads no clock).
//!
//! ```
//! use fdb_records::backend::embedded::EmbeddedDatabase;
//! use fdb_records::cursor::{ContinuationCodec, ExecuteOptions, NoNextReason, RecordScan};
//! use fdb_records::key_expression::field;
//! use fdb_records::kv::{Database, Transaction};
//! use fdb_records::metadata::{RecordMetaData, RecordTypeDef};
//! use fdb_records::store::{RecordRange, RecordStore};
//! use foundationdb_tuple::Subspace;
//! use prost_reflect::{DynamicMessage, Value};
//! use std::sync::Arc;
//! # futures::executor::block_on(async {
//! # let pool = fdb_records::metadata::example_pool();
//! const USER: &str = "examples.users.User";
//! let metadata = Arc::new(RecordMetaData::builder(pool.clone())
//!     .record_type(RecordTypeDef::new(USER).primary_key(field("id")))
//!     .build().unwrap());
//! let db = EmbeddedDatabase::in_memory().unwrap();
//! let tx = db.create_transaction().unwrap();
//! let store = RecordStore::open(&tx, Subspace::from("app"), metadata.clone()).await.unwrap();
//! for id in 0..5 {
//!     let mut user = DynamicMessage::new(pool.get_message_by_name(USER).unwrap());
//!     user.set_field_by_name("id", Value::I64(id));
//!     store.save_dynamic(&user, Default::default()).await.unwrap();
//! }
//! drop(store);
//! tx.commit().await.unwrap();
//!
//! // Page through in pages of 2, handing the token around as a string.
//! let codec = ContinuationCodec::signed(b"server secret");
//! let plan = RecordScan::new(RecordRange::all());
//! let (mut token, mut seen) = (None::<String>, Vec::new());
//! loop {
//!     let tx = db.create_transaction().unwrap();
//!     let store = RecordStore::open(&tx, Subspace::from("app"), metadata.clone()).await.unwrap();
//!     let continuation = match &token {
//!         Some(t) => Some(codec.decode_str(t).unwrap()),
//!         None => None,
//!     };
//!     let options = ExecuteOptions::new().continuation(continuation).return_limit(2);
//!     let page = store.execute(&plan, &options).unwrap().collect_page().await.unwrap();
//!     seen.extend(page.items.iter().map(|r| r.primary_key.clone()));
//!     if page.reason == NoNextReason::SourceExhausted {
//!         assert!(page.continuation.is_end());
//!         break;
//!     }
//!     token = Some(codec.encode_string(&page.continuation));
//! }
//! assert_eq!(seen.len(), 5);
//! # });
//! ```

mod combinators;
pub mod continuation;
mod index_cursor;
mod record_cursor;
mod runner;

pub use combinators::{Intersection, PrimaryKeyed, Union};
pub use continuation::{Continuation, ContinuationCodec, ContinuationError};
pub use index_cursor::IndexScan;
pub use record_cursor::RecordScan;
pub use runner::{RunSummary, ScanRunner};

use crate::kv::{FdbError, RetryableError, Transaction};
use crate::store::{RecordStore, RecordStoreError};
use continuation::{BindingHasher, Position};
use futures::future::{self, BoxFuture};
use futures::stream::{self, BoxStream};
use futures::{FutureExt, Stream, StreamExt};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// Why a cursor returned no more items.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NoNextReason {
    /// Everything in the scan's range was returned: the continuation is the end.
    SourceExhausted,
    /// The cursor returned as many items as it was asked for.
    ReturnLimitReached,
    /// The scan read its budget of keys ([`ScanLimits::scanned_keys`]).
    ScanLimitReached,
    /// The scan read its budget of bytes ([`ScanLimits::bytes`]).
    ByteLimitReached,
    /// The scan ran for its time budget ([`ScanLimits::time`]).
    TimeLimitReached,
}

impl NoNextReason {
    /// `true` unless the source is exhausted: resuming from the continuation may
    /// return more.
    pub fn has_more(self) -> bool {
        self != NoNextReason::SourceExhausted
    }
}

/// A caller-supplied source of elapsed time for time limits (the SDK never reads a
/// clock itself, so simulations stay deterministic).
///
/// ```
/// use fdb_records::backend::embedded::{Clock, ManualClock};
/// use fdb_records::cursor::TimeSource;
/// use std::time::Duration;
/// let clock = ManualClock::new();
/// let time = TimeSource::from_clock(clock.clone());
/// clock.advance(Duration::from_secs(1));
/// assert_eq!(time.now(), Duration::from_secs(1));
/// let wall = std::time::Instant::now();
/// let _real = TimeSource::new(move || wall.elapsed());
/// ```
#[derive(Clone)]
pub struct TimeSource(Arc<dyn Fn() -> Duration + Send + Sync>);

impl TimeSource {
    /// Time from a function returning the time elapsed since any fixed origin.
    pub fn new(now: impl Fn() -> Duration + Send + Sync + 'static) -> Self {
        TimeSource(Arc::new(now))
    }
    /// Time from an engine [`Clock`](crate::backend::embedded::Clock) (for example a
    /// [`ManualClock`](crate::backend::embedded::ManualClock) in simulations).
    pub fn from_clock(clock: impl crate::backend::embedded::Clock) -> Self {
        TimeSource(Arc::new(move || clock.now()))
    }
    /// The current time.
    pub fn now(&self) -> Duration {
        (self.0)()
    }
}

impl fmt::Debug for TimeSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TimeSource")
    }
}

/// How much one cursor may read before it stops with a continuation. One budget is
/// shared by every scan under the cursor (the children of a union count together).
///
/// Limits are checked between records, after at least one record was read: a page
/// can exceed a limit by one record, and always makes progress.
///
/// ```
/// use fdb_records::cursor::ScanLimits;
/// let defaults = ScanLimits::default();
/// assert_eq!(defaults.scanned_keys, Some(10_000));
/// let tiny = ScanLimits::unlimited().with_scan_limit(1);
/// assert_eq!(tiny.bytes, None);
/// ```
#[derive(Clone, Debug)]
pub struct ScanLimits {
    /// Keys read (each chunk, version and index entry is a key). Default 10,000.
    pub scanned_keys: Option<usize>,
    /// Bytes read (keys and values). Default 2,000,000 (FoundationDB's transaction
    /// limit is 10 MB).
    pub bytes: Option<usize>,
    /// Time since the cursor was opened, measured by `time_source`. Default 2 s
    /// (FoundationDB's transactions live 5 s). Not enforced without a time source.
    pub time: Option<Duration>,
    /// Where time comes from; `None` disables the time limit.
    pub time_source: Option<TimeSource>,
}

/// Default keys read per cursor.
pub const DEFAULT_SCAN_LIMIT: usize = 10_000;
/// Default bytes read per cursor.
pub const DEFAULT_BYTE_LIMIT: usize = 2_000_000;
/// Default time per cursor.
pub const DEFAULT_TIME_LIMIT: Duration = Duration::from_secs(2);

impl Default for ScanLimits {
    fn default() -> Self {
        ScanLimits {
            scanned_keys: Some(DEFAULT_SCAN_LIMIT),
            bytes: Some(DEFAULT_BYTE_LIMIT),
            time: Some(DEFAULT_TIME_LIMIT),
            time_source: None,
        }
    }
}

impl ScanLimits {
    /// No limits at all (the transaction's own limits still apply).
    pub fn unlimited() -> Self {
        ScanLimits {
            scanned_keys: None,
            bytes: None,
            time: None,
            time_source: None,
        }
    }
    /// At most `keys` keys read.
    pub fn with_scan_limit(mut self, keys: usize) -> Self {
        self.scanned_keys = Some(keys);
        self
    }
    /// At most `bytes` bytes read.
    pub fn with_byte_limit(mut self, bytes: usize) -> Self {
        self.bytes = Some(bytes);
        self
    }
    /// At most `time` as measured by `source`.
    pub fn with_time_limit(mut self, time: Duration, source: TimeSource) -> Self {
        self.time = Some(time);
        self.time_source = Some(source);
        self
    }
    /// Sets only the time source, keeping the time limit.
    pub fn with_time_source(mut self, source: TimeSource) -> Self {
        self.time_source = Some(source);
        self
    }
}

/// The running budget of one cursor, shared by its scans (plan internals).
#[doc(hidden)]
#[derive(Clone, Debug)]
pub struct Limiter {
    inner: Arc<LimiterInner>,
}

#[derive(Debug)]
struct LimiterInner {
    limits: ScanLimits,
    /// How many items the cursor will return at most (its return limit), so that a
    /// scan's first read asks for no more keys than that needs.
    expected_items: Option<usize>,
    started: Option<Duration>,
    keys: AtomicUsize,
    bytes: AtomicUsize,
}

impl Limiter {
    pub(crate) fn new(limits: &ScanLimits, expected_items: Option<usize>) -> Self {
        let started = match (&limits.time, &limits.time_source) {
            (Some(_), Some(source)) => Some(source.now()),
            _ => None,
        };
        Limiter {
            inner: Arc::new(LimiterInner {
                limits: limits.clone(),
                expected_items,
                started,
                keys: AtomicUsize::new(0),
                bytes: AtomicUsize::new(0),
            }),
        }
    }
    /// Counts one key-value read of `bytes` bytes (key and value).
    pub(crate) fn record(&self, bytes: usize) {
        // Plain loads and stores, not read-modify-writes: the scans sharing a limiter
        // belong to one cursor, which one task polls at a time, and this runs per key.
        let inner = &self.inner;
        inner
            .keys
            .store(inner.keys.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        inner.bytes.store(
            inner.bytes.load(Ordering::Relaxed) + bytes,
            Ordering::Relaxed,
        );
    }
    /// The cursor's return limit, if it has one.
    pub(crate) fn expected_items(&self) -> Option<usize> {
        self.inner.expected_items
    }
    /// Keys still allowed before the scan limit (`None`: unlimited).
    pub(crate) fn remaining_keys(&self) -> Option<usize> {
        self.inner
            .limits
            .scanned_keys
            .map(|l| l.saturating_sub(self.inner.keys.load(Ordering::Relaxed)))
    }
    /// The limit that is used up, if any.
    pub(crate) fn exceeded(&self) -> Option<NoNextReason> {
        let l = &self.inner.limits;
        if l.scanned_keys
            .is_some_and(|max| self.inner.keys.load(Ordering::Relaxed) >= max)
        {
            return Some(NoNextReason::ScanLimitReached);
        }
        if l.bytes
            .is_some_and(|max| self.inner.bytes.load(Ordering::Relaxed) >= max)
        {
            return Some(NoNextReason::ByteLimitReached);
        }
        if let (Some(max), Some(source), Some(started)) =
            (l.time, &l.time_source, self.inner.started)
        {
            if source.now().saturating_sub(started) >= max {
                return Some(NoNextReason::TimeLimitReached);
            }
        }
        None
    }
}

/// Why a cursor failed.
#[derive(Debug, thiserror::Error)]
pub enum CursorError {
    /// A FoundationDB error; retryable ones are retried by [`ScanRunner`] from the
    /// last continuation.
    #[error(transparent)]
    Fdb(#[from] FdbError),
    /// The store failed (corrupt or torn record, unreadable index, ...).
    #[error(transparent)]
    Store(#[from] RecordStoreError),
    /// The continuation cannot resume this scan: nothing was read.
    #[error(transparent)]
    Continuation(#[from] ContinuationError),
    /// A child of a union or intersection returned items out of primary-key order
    /// (it is not an equality scan on an index).
    #[error("child {child} of a {combinator} returned primary keys out of order")]
    OutOfOrder {
        combinator: &'static str,
        child: usize,
    },
    /// A union or intersection needs at least one child, with the same direction.
    #[error("invalid scan plan: {0}")]
    InvalidPlan(String),
    /// The runner stopped: pages kept ending without moving the continuation.
    #[error("scan made no progress in {attempts} consecutive transactions")]
    NoProgress { attempts: u32 },
}

impl RetryableError for CursorError {
    fn fdb_error(&self) -> Option<FdbError> {
        match self {
            CursorError::Fdb(e) => Some(*e),
            CursorError::Store(e) => e.fdb_error(),
            _ => None,
        }
    }
}

impl From<crate::store::StoreError> for CursorError {
    fn from(e: crate::store::StoreError) -> Self {
        CursorError::Store(RecordStoreError::Store(e))
    }
}

/// One step of a cursor: an item with the position after it, or the end (plan internals).
#[doc(hidden)]
pub enum Step<T> {
    Item(T, Position),
    End(NoNextReason, Position),
}

#[doc(hidden)]
pub type Steps<T> = BoxStream<'static, Result<Step<T>, CursorError>>;

/// A stream of steps that ends at once (a scan resumed from its end).
pub(crate) fn exhausted<T: Send + 'static>() -> Steps<T> {
    stream::iter([Ok(Step::End(NoNextReason::SourceExhausted, Position::End))]).boxed()
}

/// A stream of items that knows where it is: after each item,
/// [`continuation`](Self::continuation) resumes right after that item; once the
/// stream has ended, [`no_next_reason`](Self::no_next_reason) says why and
/// `continuation` resumes after everything the scan read.
///
/// Errors end the stream (a FoundationDB error leaves the continuation at the last
/// item returned, so the scan can be resumed in a new transaction).
pub struct Cursor<T> {
    steps: Steps<T>,
    binding: [u8; 32],
    position: Position,
    end: Option<NoNextReason>,
    finished: bool,
    /// At most this many items will come (a return limit): pages are sized for it.
    at_most: Option<usize>,
    /// Items a return limit applied last still allows: counted here rather than by a
    /// wrapping stream (see [`Cursor::limit`]).
    remaining: Option<usize>,
}

impl<T> fmt::Debug for Cursor<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cursor")
            .field("position", &self.position)
            .field("end", &self.end)
            .finish()
    }
}

/// One page of a cursor: its items, why it ended, and where to resume.
#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub reason: NoNextReason,
    /// Resumes after the page ([`Continuation::is_end`] when the scan is complete).
    pub continuation: Continuation,
}

impl<T: Send + 'static> Cursor<T> {
    pub(crate) fn from_steps(steps: Steps<T>, binding: [u8; 32], start: Position) -> Self {
        Cursor {
            steps,
            binding,
            position: start,
            end: None,
            finished: false,
            at_most: None,
            remaining: None,
        }
    }

    /// Where to resume: after the last item returned, or (once ended) after
    /// everything the scan read.
    pub fn continuation(&self) -> Continuation {
        Continuation::new(self.binding, self.position.clone())
    }

    /// Why the cursor ended; `None` while it may return more (or after an error).
    pub fn no_next_reason(&self) -> Option<NoNextReason> {
        self.end
    }

    /// Reads the cursor to its end.
    pub async fn collect_page(mut self) -> Result<Page<T>, CursorError> {
        // Sized once when a return limit says how many items can come.
        let mut items = Vec::with_capacity(self.at_most.unwrap_or(0).min(MAX_PRESIZED_PAGE));
        while let Some(item) = self.next().await {
            items.push(item?);
        }
        Ok(Page {
            items,
            reason: self.end.unwrap_or(NoNextReason::SourceExhausted),
            continuation: self.continuation(),
        })
    }

    /// Keeps the items for which `predicate` holds. Rejected items still move the
    /// continuation forward, so a filter that rejects everything still makes progress.
    pub fn filter(self, mut predicate: impl FnMut(&T) -> bool + Send + 'static) -> Cursor<T> {
        self.rewrap(move |steps| {
            steps
                .filter(move |step| {
                    future::ready(!matches!(step, Ok(Step::Item(item, _)) if !predicate(item)))
                })
                .boxed()
        })
    }

    /// Transforms each item.
    pub fn map<U: Send + 'static>(self, mut f: impl FnMut(T) -> U + Send + 'static) -> Cursor<U> {
        self.rewrap(move |steps| {
            steps
                .map(move |step| {
                    step.map(|s| match s {
                        Step::Item(item, p) => Step::Item(f(item), p),
                        Step::End(r, p) => Step::End(r, p),
                    })
                })
                .boxed()
        })
    }

    /// Transforms each item with a fallible, asynchronous function (for example,
    /// loading the record behind an index entry). An error ends the cursor.
    pub fn and_then<U, F, Fut>(self, mut f: F) -> Cursor<U>
    where
        U: Send + 'static,
        F: FnMut(T) -> Fut + Send + 'static,
        Fut: Future<Output = Result<U, CursorError>> + Send + 'static,
    {
        self.rewrap(move |steps| {
            steps
                .then(
                    move |step| -> BoxFuture<'static, Result<Step<U>, CursorError>> {
                        match step {
                            Ok(Step::Item(item, p)) => {
                                let fut = f(item);
                                async move { fut.await.map(|u| Step::Item(u, p)) }.boxed()
                            }
                            Ok(Step::End(r, p)) => future::ready(Ok(Step::End(r, p))).boxed(),
                            Err(e) => future::ready(Err(e)).boxed(),
                        }
                    },
                )
                .boxed()
        })
    }

    /// Keeps the items `f` maps to `Some`, transformed (rejected items still move
    /// the continuation forward).
    pub fn filter_map<U: Send + 'static>(
        self,
        mut f: impl FnMut(T) -> Option<U> + Send + 'static,
    ) -> Cursor<U> {
        self.rewrap(move |steps| {
            steps
                .filter_map(move |step| {
                    future::ready(match step {
                        Ok(Step::Item(item, p)) => f(item).map(|u| Ok(Step::Item(u, p))),
                        Ok(Step::End(r, p)) => Some(Ok(Step::End(r, p))),
                        Err(e) => Some(Err(e)),
                    })
                })
                .boxed()
        })
    }

    /// Returns at most `n` items, then ends with
    /// [`NoNextReason::ReturnLimitReached`] without reading further.
    pub fn limit(mut self, n: usize) -> Cursor<T> {
        let n = self.remaining.map_or(n, |r| r.min(n));
        self.remaining = Some(n);
        self.at_most = Some(self.at_most.map_or(n, |m| m.min(n)));
        self
    }

    fn rewrap<U: Send + 'static>(self, f: impl FnOnce(Steps<T>) -> Steps<U>) -> Cursor<U> {
        // A limit counted by the cursor applies before the new combinator.
        let steps = match self.remaining {
            Some(n) => limit_steps(self.steps, n, self.position.clone()),
            None => self.steps,
        };
        Cursor {
            steps: f(steps),
            binding: self.binding,
            position: self.position,
            end: self.end,
            finished: self.finished,
            at_most: self.at_most,
            remaining: None,
        }
    }
}

/// Largest page [`Cursor::collect_page`] makes room for up front.
const MAX_PRESIZED_PAGE: usize = 1024;

fn limit_steps<T: Send + 'static>(steps: Steps<T>, n: usize, start: Position) -> Steps<T> {
    stream::unfold(
        (steps, 0usize, start, false),
        move |(mut steps, returned, last, done)| async move {
            if done {
                return None;
            }
            if returned >= n {
                let end = Step::End(NoNextReason::ReturnLimitReached, last.clone());
                return Some((Ok(end), (steps, returned, last, true)));
            }
            match steps.next().await {
                Some(Ok(Step::Item(item, p))) => Some((
                    Ok(Step::Item(item, p.clone())),
                    (steps, returned + 1, p, false),
                )),
                Some(Ok(Step::End(r, p))) => {
                    Some((Ok(Step::End(r, p.clone())), (steps, returned, p, true)))
                }
                Some(Err(e)) => Some((Err(e), (steps, returned, last, true))),
                None => None,
            }
        },
    )
    .boxed()
}

impl<T: Send + 'static> Stream for Cursor<T> {
    type Item = Result<T, CursorError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.finished {
            return Poll::Ready(None);
        }
        if self.remaining == Some(0) {
            // Ends after the last item returned, without reading further.
            self.end = Some(NoNextReason::ReturnLimitReached);
            self.finished = true;
            return Poll::Ready(None);
        }
        match self.steps.poll_next_unpin(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(Step::Item(item, p)))) => {
                self.position = p;
                if let Some(n) = self.remaining.as_mut() {
                    *n -= 1;
                }
                Poll::Ready(Some(Ok(item)))
            }
            Poll::Ready(Some(Ok(Step::End(reason, p)))) => {
                self.position = p;
                self.end = Some(reason);
                self.finished = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                self.finished = true;
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(None) => {
                // Every step stream ends with an `End`; a bare end means exhausted.
                self.position = Position::End;
                self.end = Some(NoNextReason::SourceExhausted);
                self.finished = true;
                Poll::Ready(None)
            }
        }
    }
}

/// Something a store can scan with continuations: a record range, an index range,
/// or a union / intersection of such scans.
pub trait ScanPlan<T: Transaction>: Send + Sync {
    /// What the scan returns.
    type Item: Send + 'static;
    /// Whether the scan runs in descending order.
    fn is_reverse(&self) -> bool;
    /// Feeds the scan's description into the binding hash (store and metadata version
    /// are added by [`RecordStore::execute`]).
    #[doc(hidden)]
    fn bind(&self, hasher: &mut BindingHasher);
    /// Checks the caller's tuples in the plan before anything packs them.
    #[doc(hidden)]
    fn check(&self) -> Result<(), CursorError> {
        Ok(())
    }
    /// Opens the scan at a position (already checked to belong to this plan's
    /// binding; the plan checks that it lies inside its range).
    #[doc(hidden)]
    fn open(
        &self,
        store: &RecordStore<T>,
        position: Position,
        limiter: &Limiter,
    ) -> Result<Steps<Self::Item>, CursorError>;
}

/// How to run a plan: where to resume, limits, and an optional label bound into the
/// continuation.
#[derive(Clone, Debug, Default)]
pub struct ExecuteOptions {
    /// Resume from here; `None` starts at the beginning.
    pub continuation: Option<Continuation>,
    /// Read budget; see [`ScanLimits`].
    pub limits: ScanLimits,
    /// At most this many items (see [`Cursor::limit`]).
    pub return_limit: Option<usize>,
    /// Application bytes mixed into the scan binding (for example an endpoint name
    /// and its filter parameters), so that a token from one endpoint or query is
    /// refused by another that happens to scan the same range.
    pub label: Vec<u8>,
}

impl ExecuteOptions {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn continuation(mut self, continuation: Option<Continuation>) -> Self {
        self.continuation = continuation;
        self
    }
    pub fn limits(mut self, limits: ScanLimits) -> Self {
        self.limits = limits;
        self
    }
    pub fn return_limit(mut self, n: usize) -> Self {
        self.return_limit = Some(n);
        self
    }
    pub fn label(mut self, label: impl Into<Vec<u8>>) -> Self {
        self.label = label.into();
        self
    }
}

impl<T: Transaction> RecordStore<T> {
    /// The binding a continuation of `plan` on this store carries: a SHA-256 of the
    /// store's subspace, the metadata version, the plan (kind, record type or index,
    /// range, direction, children) and `label`. A plan whose tuples cannot be packed
    /// (see [`ScanPlan::check`]) binds to a value no packable plan has, and
    /// [`execute`](Self::execute) refuses it.
    pub fn scan_binding<P: ScanPlan<T> + ?Sized>(&self, plan: &P, label: &[u8]) -> [u8; 32] {
        let mut h = BindingHasher::new();
        h.bytes(self.layout().store().bytes());
        h.u64(u64::from(self.metadata().version()));
        h.bytes(label);
        match plan.check() {
            Ok(()) => plan.bind(&mut h),
            Err(_) => h.bytes(b"unpackable plan"),
        }
        h.finish()
    }

    /// Opens `plan` as a cursor, from the start or from `options.continuation`.
    ///
    /// A continuation from another scan (other store, record type, index, range,
    /// direction, metadata version or label) fails with
    /// [`ContinuationError::Mismatch`], and one whose position lies outside the scan's
    /// range with [`ContinuationError::OutOfRange`], before anything is read.
    pub fn execute<P: ScanPlan<T> + ?Sized>(
        &self,
        plan: &P,
        options: &ExecuteOptions,
    ) -> Result<Cursor<P::Item>, CursorError> {
        plan.check()?;
        let binding = self.scan_binding(plan, &options.label);
        let position = match &options.continuation {
            None => Position::Start,
            Some(c) => {
                if c.binding() != &binding {
                    return Err(ContinuationError::Mismatch.into());
                }
                c.position().clone()
            }
        };
        let steps = match position {
            Position::End => exhausted(),
            _ => plan.open(
                self,
                position.clone(),
                &Limiter::new(&options.limits, options.return_limit),
            )?,
        };
        let cursor = Cursor::from_steps(steps, binding, position);
        Ok(match options.return_limit {
            Some(n) => cursor.limit(n),
            None => cursor,
        })
    }
}

/// Checks that a resume key lies in `[low, high)` (relative bytes).
pub(crate) fn check_in_range(key: &[u8], low: &[u8], high: &[u8]) -> Result<(), CursorError> {
    if key < low || key >= high {
        return Err(ContinuationError::OutOfRange.into());
    }
    Ok(())
}
