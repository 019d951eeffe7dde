//! The transaction abstraction every part of the SDK is written against.
//!
//! It mirrors FoundationDB's client API — [`Database`] creates [`Transaction`]s,
//! [`Database::run`] is the retry loop — so that the same record-layer code runs on
//! FoundationDB (feature `fdb`), inside fdbserver's simulator, and on the
//! [embedded engine](crate::backend::embedded).
//!
//! Semantics follow FoundationDB exactly: reads see a snapshot at the read version
//! plus the transaction's own writes; non-snapshot reads add read-conflict ranges
//! (a range read covers the whole range it examined, including keys that do not
//! exist); writes, clears and atomic mutations add write-conflict ranges; a commit
//! fails with `not_committed` (1020) when something it read was written by a
//! transaction that committed after its read version. Writes are buffered: errors
//! such as `key_too_large` surface at the next read or at commit, as in the C client.
//!
//! ```
//! use fdb_records::backend::embedded::EmbeddedDatabase;
//! use fdb_records::kv::{Database, FdbError, Transaction};
//! # futures::executor::block_on(async {
//! let db = EmbeddedDatabase::in_memory().unwrap();
//! db.run(|tx, _maybe_committed| async move {
//!     tx.set(b"hello", b"world");
//!     Ok::<_, FdbError>(())
//! }).await.unwrap();
//! let value = db.run(|tx, _| async move { tx.get(b"hello", false).await }).await.unwrap();
//! assert_eq!(value.as_deref(), Some(&b"world"[..]));
//! # });
//! ```

mod error;
mod run;
pub(crate) mod types;

pub use error::{code, FdbError, FdbResult, RetryableError};
pub use run::{run, RunOutcome};
pub use types::{
    limits, BatchRow, Bytes, Committed, ConflictRangeType, KeySelector, KeyValue, MaybeCommitted,
    MutationType, RangeBatch, RangeOption, RangeResult, StreamingMode, TransactionOption,
};

use futures::stream::{self, BoxStream, StreamExt};
use std::future::Future;

/// A database: a factory of transactions and the home of the retry loop.
pub trait Database: Clone + Send + Sync + 'static {
    type Transaction: Transaction;

    /// Starts a new transaction. Its read version is taken at its first read.
    fn create_transaction(&self) -> FdbResult<Self::Transaction>;

    /// Runs `f` in a transaction and commits it, retrying with FoundationDB's rules.
    ///
    /// Retryable errors (from `f` or from the commit) reset the transaction, back off
    /// and call `f` again; [`MaybeCommitted`] tells the next attempt that the previous
    /// one may have committed. Non-retryable errors, errors past the retry limit or the
    /// timeout, and application errors that carry no [`FdbError`] are returned.
    fn run<F, Fut, T, E>(&self, f: F) -> impl Future<Output = Result<T, E>> + Send
    where
        F: FnMut(Self::Transaction, MaybeCommitted) -> Fut + Send,
        Fut: Future<Output = Result<T, E>> + Send,
        T: Send,
        E: RetryableError + Send,
    {
        async move { run(self, f).await.map(|outcome| outcome.value) }
    }
}

/// A FoundationDB transaction. Handles are cheap clones of one shared transaction.
pub trait Transaction: Clone + Send + Sync + 'static {
    /// Sets a transaction option.
    fn set_option(&self, option: TransactionOption) -> FdbResult<()>;

    /// The version this transaction reads at (acquired on first use).
    fn get_read_version(&self) -> impl Future<Output = FdbResult<i64>> + Send;

    /// Reads one key. A non-snapshot read adds a read-conflict on the key.
    fn get(
        &self,
        key: &[u8],
        snapshot: bool,
    ) -> impl Future<Output = FdbResult<Option<Vec<u8>>>> + Send;

    /// Resolves a key selector to a key.
    fn get_key(
        &self,
        selector: &KeySelector,
        snapshot: bool,
    ) -> impl Future<Output = FdbResult<Vec<u8>>> + Send;

    /// Reads one batch of a range; `iteration` (starting at 1) sizes batches in
    /// [`StreamingMode::Iterator`]. Use [`RangeOption::next_batch`] to continue.
    fn get_range(
        &self,
        range: &RangeOption,
        iteration: usize,
        snapshot: bool,
    ) -> impl Future<Output = FdbResult<RangeResult>> + Send;

    /// The same read as [`get_range`](Self::get_range), returned as one buffer read
    /// in place ([`RangeBatch`]) instead of a pair per row: what scans use. Backends
    /// that can should build it directly; the default copies `get_range`'s pairs.
    fn get_range_batch(
        &self,
        range: &RangeOption,
        iteration: usize,
        snapshot: bool,
    ) -> impl Future<Output = FdbResult<RangeBatch>> + Send {
        let read = self.get_range(range, iteration, snapshot);
        async move {
            let result = read.await?;
            Ok(RangeBatch::from_key_values(&result.key_values, result.more))
        }
    }

    /// Streams a whole range read batch by batch.
    fn get_ranges(
        &self,
        range: RangeOption,
        snapshot: bool,
    ) -> BoxStream<'static, FdbResult<RangeResult>> {
        let tx = self.clone();
        stream::unfold(Some((range, 1usize)), move |state| {
            let tx = tx.clone();
            async move {
                let (range, iteration) = state?;
                match tx.get_range(&range, iteration, snapshot).await {
                    Ok(batch) => {
                        let next = range.next_batch(&batch).map(|r| (r, iteration + 1));
                        Some((Ok(batch), next))
                    }
                    Err(e) => Some((Err(e), None)),
                }
            }
        })
        .boxed()
    }

    /// Reads a whole range (up to its limit) into memory.
    fn get_range_all(
        &self,
        range: RangeOption,
        snapshot: bool,
    ) -> impl Future<Output = FdbResult<Vec<KeyValue>>> + Send {
        let mut batches = self.get_ranges(range.with_mode(StreamingMode::WantAll), snapshot);
        async move {
            let mut out = Vec::new();
            while let Some(batch) = batches.next().await {
                out.extend(batch?.key_values);
            }
            Ok(out)
        }
    }

    /// Sets a key to a value.
    fn set(&self, key: &[u8], value: &[u8]);

    /// Clears one key.
    fn clear(&self, key: &[u8]);

    /// Clears every key `k` with `begin <= k < end`.
    fn clear_range(&self, begin: &[u8], end: &[u8]);

    /// Applies an atomic mutation; adds a write conflict only.
    fn atomic_op(&self, key: &[u8], param: &[u8], op: MutationType);

    /// Adds an explicit read- or write-conflict range `[begin, end)`.
    fn add_conflict_range(
        &self,
        begin: &[u8],
        end: &[u8],
        kind: ConflictRangeType,
    ) -> FdbResult<()>;

    /// Approximate size of the commit request so far, as counted against the size limit.
    fn get_approximate_size(&self) -> impl Future<Output = FdbResult<i64>> + Send;

    /// Commits. On success reports the commit version and versionstamp.
    fn commit(&self) -> impl Future<Output = FdbResult<Committed>> + Send;

    /// The versionstamp of this transaction's last successful commit (`None` after a
    /// read-only commit), kept until the next commit.
    fn committed_versionstamp(&self) -> Option<[u8; 10]>;

    /// FoundationDB's `on_error`: for a retryable error, backs off and resets the
    /// transaction for another attempt; otherwise (or past the retry limit or timeout)
    /// returns the error.
    fn on_error(&self, error: FdbError) -> impl Future<Output = FdbResult<()>> + Send;

    /// Drops all reads, writes and options and starts afresh, as if newly created
    /// (FoundationDB's `reset`; `on_error`, unlike this, keeps the persistent options).
    fn reset(&self);

    /// Cancels the transaction: further use fails with `transaction_cancelled`.
    fn cancel(&self);

    /// The [store-state cache](crate::store::StoreStateCache) of this transaction's
    /// database, shared by all its transactions; `None` (the default for backends
    /// outside this crate) opens every store from its stored state.
    fn store_state_cache(&self) -> Option<&crate::store::StoreStateCache> {
        None
    }

    /// Marks this attempt as having changed record-store state (a header, an index
    /// state, or the metadata version key), until `reset` or `on_error`: its opens then
    /// read the state, never a cached one, and cache nothing. A transaction cannot see
    /// its own bump of the metadata version key (and with snapshot read-your-writes
    /// off it sees the old value), so the mark, not the key, says the state may be this
    /// transaction's own. Backends without a mark ignore it, and say every attempt may
    /// be marked (which only turns the cache off).
    fn mark_store_state_changed(&self) {}

    /// Whether [`mark_store_state_changed`](Self::mark_store_state_changed) was called
    /// in this attempt.
    fn store_state_changed(&self) -> bool {
        true
    }

    /// Runs `hook` when this attempt commits, before its writes go out. The record
    /// store buffers versionstamped writes that a later change in the same transaction
    /// may cancel, and hands them over here, so that they are committed even when a
    /// handle on the store outlives the commit. Hooks belong to the attempt: `reset`
    /// and a successful `on_error` drop them. Returns whether the backend runs hooks;
    /// backends outside this crate don't, and the store then writes its buffer when
    /// its last handle is dropped.
    fn on_commit(&self, hook: CommitHook) -> bool {
        drop(hook);
        false
    }
}

/// Work a layer hands to [`Transaction::on_commit`].
pub type CommitHook = Box<dyn FnOnce() + Send>;

/// FoundationDB's metadata version key. Its value is the versionstamp of the last
/// transaction that bumped it (absent until the first bump); layers bump it whenever
/// they change metadata that clients cache, so a client that reads the same value as
/// when it filled its cache knows the cache is current. Any transaction may read it
/// (no system-key option needed; a snapshot read adds no conflict); the only write
/// allowed is [`MutationType::SetVersionstampedValue`] with
/// [`METADATA_VERSION_REQUIRED_VALUE`] (anything else: `client_invalid_operation`,
/// 2000), and once a transaction bumped it, reading it again in that transaction fails
/// with `accessed_unreadable` (1036).
///
/// ```
/// use fdb_records::backend::embedded::EmbeddedDatabase;
/// use fdb_records::kv::{Database, FdbError, MutationType, Transaction};
/// use fdb_records::kv::{METADATA_VERSION_KEY, METADATA_VERSION_REQUIRED_VALUE};
/// # futures::executor::block_on(async {
/// let db = EmbeddedDatabase::in_memory().unwrap();
/// let bump = |tx: <EmbeddedDatabase as Database>::Transaction| async move {
///     tx.atomic_op(
///         METADATA_VERSION_KEY,
///         &METADATA_VERSION_REQUIRED_VALUE,
///         MutationType::SetVersionstampedValue,
///     );
///     Ok::<_, FdbError>(())
/// };
/// db.run(|tx, _| bump(tx)).await.unwrap();
/// let read = |tx: <EmbeddedDatabase as Database>::Transaction| async move {
///     tx.get(METADATA_VERSION_KEY, true).await
/// };
/// let first = db.run(|tx, _| read(tx)).await.unwrap().expect("bumped");
/// assert_eq!(first.len(), 10);
/// db.run(|tx, _| bump(tx)).await.unwrap();
/// let second = db.run(|tx, _| read(tx)).await.unwrap().unwrap();
/// assert!(second > first);
/// # });
/// ```
pub const METADATA_VERSION_KEY: &[u8] = b"\xff/metadataVersion";

/// The end of the metadata version key's single-key range (`key_after` of it).
pub const METADATA_VERSION_KEY_END: &[u8] = b"\xff/metadataVersion\x00";

/// The one parameter FoundationDB accepts for a write to [`METADATA_VERSION_KEY`]: a
/// 10-byte versionstamp placeholder at offset 0 (the 4-byte offset suffix is zero too).
pub const METADATA_VERSION_REQUIRED_VALUE: [u8; 14] = [0; 14];

/// The first key that sorts after every key starting with `prefix`
/// (FoundationDB's `strinc`). An all-`0xff` or empty prefix yields `[0xff]`.
pub fn strinc(prefix: &[u8]) -> Vec<u8> {
    let mut key = prefix.to_vec();
    while let Some(&last) = key.last() {
        if last == 0xff {
            key.pop();
        } else {
            *key.last_mut().expect("non-empty") += 1;
            return key;
        }
    }
    vec![0xff]
}

/// The first key after `key` (`key + "\x00"`).
pub fn key_after(key: &[u8]) -> Vec<u8> {
    let mut next = Vec::with_capacity(key.len() + 1);
    next.extend_from_slice(key);
    next.push(0);
    next
}

/// Renders bytes the way FoundationDB's `printable` does: ASCII as is, others `\xNN`.
pub fn printable(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len());
    for &b in bytes {
        if (32..127).contains(&b) && b != b'\\' {
            s.push(b as char);
        } else {
            s.push_str(&format!("\\x{b:02x}"));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strinc_and_key_after() {
        assert_eq!(strinc(b"ab"), b"ac");
        assert_eq!(strinc(b"a\xff"), b"b");
        assert_eq!(strinc(b"\xff\xff"), b"\xff");
        assert_eq!(key_after(b"a"), b"a\x00");
        assert_eq!(printable(b"a\x00\\"), "a\\x00\\x5c");
    }
}
