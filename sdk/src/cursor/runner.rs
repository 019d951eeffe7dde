//! Scans across as many transactions as they need. The guarantees are on
//! [`ScanRunner`].

use super::{Continuation, Cursor, CursorError, NoNextReason, Page};
use crate::kv::{Database, MaybeCommitted, RetryableError, Transaction};
use futures::stream::{self, BoxStream, StreamExt};
use std::future::Future;

/// Drives a scan across transactions: one page per transaction, each within the
/// cursor's [`ScanLimits`](super::ScanLimits), resuming from the last continuation.
///
/// # Semantics
///
/// A multi-transaction scan is **not** one snapshot: each page reads at its own read
/// version. What is guaranteed:
///
/// * every record (index entry) that exists, unchanged, for the whole scan is
///   returned **exactly once**, in scan order;
/// * nothing is returned twice, and the order is strictly monotonic, even across
///   retried transactions;
/// * records inserted, updated or deleted while the scan runs may or may not be
///   seen (an update is seen in its old or new form, if at all, at most once).
///
/// After a retryable error (`not_committed` 1020, `transaction_too_old` 1007,
/// `commit_unknown_result` 1021, ...) the runner backs off through the transaction's
/// `on_error` and resumes from the continuation after the last item it delivered.
///
/// The `open` closure opens the store in the given transaction and executes the plan
/// from the given continuation (`None` at the start); it is called once per
/// transaction.
///
/// ```
/// use fdb_records::backend::embedded::EmbeddedDatabase;
/// use fdb_records::cursor::{CursorError, ExecuteOptions, RecordScan, ScanLimits, ScanRunner};
/// use fdb_records::key_expression::field;
/// use fdb_records::kv::Database;
/// use fdb_records::metadata::{RecordMetaData, RecordTypeDef};
/// use fdb_records::store::{RecordRange, RecordStore};
/// use foundationdb_tuple::Subspace;
/// use futures::StreamExt;
/// use std::sync::Arc;
/// # futures::executor::block_on(async {
/// # let pool = fdb_records::metadata::example_pool();
/// let metadata = Arc::new(RecordMetaData::builder(pool)
///     .record_type(RecordTypeDef::new("examples.users.User").primary_key(field("id")))
///     .build().unwrap());
/// let db = EmbeddedDatabase::in_memory().unwrap();
/// let runner = ScanRunner::new(db.clone());
/// let records: Vec<_> = runner
///     .stream(None, move |tx, continuation| {
///         let metadata = metadata.clone();
///         async move {
///             let store = RecordStore::open(&tx, Subspace::from("app"), metadata).await?;
///             let options = ExecuteOptions::new()
///                 .continuation(continuation)
///                 .limits(ScanLimits::default().with_scan_limit(100));
///             store.execute(&RecordScan::new(RecordRange::all()), &options)
///         }
///     })
///     .collect()
///     .await;
/// assert!(records.is_empty());
/// # });
/// ```
#[derive(Clone, Debug)]
pub struct ScanRunner<D: Database> {
    db: D,
    max_attempts_without_progress: u32,
}

/// What [`ScanRunner::for_each_page`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunSummary {
    /// Pages committed.
    pub pages: u64,
    /// Items in committed pages.
    pub items: u64,
    /// Transactions retried after a retryable error.
    pub retries: u64,
    /// The last continuation (the end, when the scan completed).
    pub continuation: Option<Continuation>,
}

impl<D: Database> ScanRunner<D> {
    pub fn new(db: D) -> Self {
        ScanRunner {
            db,
            max_attempts_without_progress: 100,
        }
    }

    /// Fails with [`CursorError::NoProgress`] after this many consecutive
    /// transactions that returned nothing and did not move the continuation
    /// (default 100).
    pub fn max_attempts_without_progress(mut self, attempts: u32) -> Self {
        self.max_attempts_without_progress = attempts.max(1);
        self
    }

    /// Every item of the scan, as one stream spanning as many read transactions as
    /// needed. Items are delivered as they are read, exactly once each (see
    /// [`ScanRunner`] for what concurrent writes do). A non-retryable error ends
    /// the stream.
    pub fn stream<I, F, Fut>(
        &self,
        start: Option<Continuation>,
        open: F,
    ) -> BoxStream<'static, Result<I, CursorError>>
    where
        I: Send + 'static,
        F: FnMut(D::Transaction, Option<Continuation>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Cursor<I>, CursorError>> + Send + 'static,
    {
        let state = StreamState {
            db: self.db.clone(),
            open,
            tx: None,
            cursor: None,
            continuation: start,
            stalled: 0,
            max_stalled: self.max_attempts_without_progress,
            done: false,
        };
        stream::unfold(state, |mut st| async move {
            let item = st.next().await?;
            Some((item, st))
        })
        .boxed()
    }

    /// Pages through the scan, one transaction per page: reads a page, hands it to
    /// `on_page` in the same transaction (which may write: an online job that
    /// processes records in batches), and commits. A failed attempt is retried from
    /// the same continuation, so a page's writes commit once per page; after
    /// `commit_unknown_result` the retry is told [`MaybeCommitted`], as with
    /// [`Database::run`], and `on_page` must then be idempotent.
    pub async fn for_each_page<I, F, Fut, P, PFut>(
        &self,
        start: Option<Continuation>,
        mut open: F,
        mut on_page: P,
    ) -> Result<RunSummary, CursorError>
    where
        I: Send + 'static,
        F: FnMut(D::Transaction, Option<Continuation>) -> Fut,
        Fut: Future<Output = Result<Cursor<I>, CursorError>>,
        P: FnMut(D::Transaction, Page<I>, MaybeCommitted) -> PFut,
        PFut: Future<Output = Result<(), CursorError>>,
    {
        let mut summary = RunSummary {
            continuation: start,
            ..RunSummary::default()
        };
        let mut stalled = 0u32;
        loop {
            let tx = self.db.create_transaction()?;
            let mut maybe_committed = MaybeCommitted(false);
            let (next, reason, count) = loop {
                let attempt = async {
                    let cursor = open(tx.clone(), summary.continuation.clone()).await?;
                    let page = cursor.collect_page().await?;
                    let (next, reason, count) =
                        (page.continuation.clone(), page.reason, page.items.len());
                    on_page(tx.clone(), page, maybe_committed).await?;
                    tx.commit().await?;
                    Ok::<_, CursorError>((next, reason, count))
                }
                .await;
                match attempt {
                    Ok(done) => break done,
                    Err(e) => {
                        let Some(fdb) = e.fdb_error() else {
                            return Err(e);
                        };
                        tx.on_error(fdb).await?;
                        summary.retries += 1;
                        maybe_committed =
                            MaybeCommitted(maybe_committed.0 || fdb.is_maybe_committed());
                    }
                }
            };
            let moved = summary.continuation.as_ref() != Some(&next);
            summary.pages += 1;
            summary.items += count as u64;
            summary.continuation = Some(next);
            if reason == NoNextReason::SourceExhausted {
                return Ok(summary);
            }
            stalled = if moved || count > 0 { 0 } else { stalled + 1 };
            if stalled >= self.max_attempts_without_progress {
                return Err(CursorError::NoProgress { attempts: stalled });
            }
        }
    }
}

struct StreamState<D: Database, I, F> {
    db: D,
    open: F,
    tx: Option<D::Transaction>,
    cursor: Option<Cursor<I>>,
    continuation: Option<Continuation>,
    stalled: u32,
    max_stalled: u32,
    done: bool,
}

impl<D, I, F, Fut> StreamState<D, I, F>
where
    D: Database,
    I: Send + 'static,
    F: FnMut(D::Transaction, Option<Continuation>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Cursor<I>, CursorError>> + Send + 'static,
{
    async fn next(&mut self) -> Option<Result<I, CursorError>> {
        loop {
            if self.done {
                return None;
            }
            if self.stalled >= self.max_stalled {
                self.done = true;
                return Some(Err(CursorError::NoProgress {
                    attempts: self.stalled,
                }));
            }
            if self.cursor.is_none() {
                let tx = match self.tx.take() {
                    Some(tx) => tx,
                    None => match self.db.create_transaction() {
                        Ok(tx) => tx,
                        Err(e) => return self.fail(e.into()),
                    },
                };
                match (self.open)(tx.clone(), self.continuation.clone()).await {
                    Ok(cursor) => {
                        self.cursor = Some(cursor);
                        self.tx = Some(tx);
                    }
                    Err(e) => {
                        self.tx = Some(tx);
                        if let Err(e) = self.recover(e).await {
                            return self.fail(e);
                        }
                        continue;
                    }
                }
            }
            let cursor = self.cursor.as_mut().expect("opened above");
            match cursor.next().await {
                Some(Ok(item)) => {
                    self.continuation = Some(cursor.continuation());
                    self.stalled = 0;
                    return Some(Ok(item));
                }
                Some(Err(e)) => {
                    self.cursor = None;
                    if let Err(e) = self.recover(e).await {
                        return self.fail(e);
                    }
                }
                None => {
                    let reason = cursor.no_next_reason();
                    let next = cursor.continuation();
                    let moved = self.continuation.as_ref() != Some(&next);
                    self.continuation = Some(next);
                    self.cursor = None;
                    // The page is over: the next one gets a new transaction (and a
                    // new read version).
                    self.tx = None;
                    if reason.is_none_or(|r| r == NoNextReason::SourceExhausted) {
                        self.done = true;
                        return None;
                    }
                    self.stalled = if moved { 0 } else { self.stalled + 1 };
                }
            }
        }
    }

    /// Backs off for a retryable error; the next attempt resumes from the last
    /// continuation delivered.
    async fn recover(&mut self, error: CursorError) -> Result<(), CursorError> {
        let Some(fdb) = error.fdb_error() else {
            return Err(error);
        };
        match &self.tx {
            Some(tx) => tx.on_error(fdb).await?,
            None => return Err(error),
        }
        self.stalled += 1;
        Ok(())
    }

    fn fail(&mut self, error: CursorError) -> Option<Result<I, CursorError>> {
        self.done = true;
        self.cursor = None;
        self.tx = None;
        Some(Err(error))
    }
}
