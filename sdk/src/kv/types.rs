//! Plain data types shared by every backend: key selectors, range options,
//! mutation types, options and commit results, spelled as FoundationDB spells them.

pub use bytes::Bytes;
use std::time::Duration;

/// A key-value pair returned by a range read.
///
/// The pairs of one batch share one buffer, as FoundationDB's client returns a batch
/// in one block: a range read costs one allocation, not two per row, and cloning or
/// slicing a key or value copies nothing.
///
/// ```
/// use fdb_records::kv::KeyValue;
/// let kv = KeyValue::new(b"k".to_vec(), &b"v"[..]);
/// assert_eq!(kv.key, b"k"[..]);
/// assert_eq!(&kv.value[..], b"v");
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyValue {
    pub key: Bytes,
    pub value: Bytes,
}

impl KeyValue {
    /// A pair from anything that converts into [`Bytes`] (`Vec<u8>`, `&'static [u8]`, ...).
    pub fn new(key: impl Into<Bytes>, value: impl Into<Bytes>) -> Self {
        KeyValue {
            key: key.into(),
            value: value.into(),
        }
    }
}

impl std::fmt::Debug for KeyValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:?} => {:?}",
            crate::kv::printable(&self.key),
            crate::kv::printable(&self.value)
        )
    }
}

/// Builds one range-read batch: rows copied end to end into one buffer that the
/// returned keys and values share. Each row is preceded by its key and value lengths,
/// so that no separate table of offsets is needed: every large allocation costs the
/// allocator a sweep of its free lists, and a batch makes two (the buffer, the rows).
pub(crate) struct BatchBuilder {
    bytes: Vec<u8>,
    /// What `bytes` is sized to at the first row: a read that finds nothing (as a
    /// save's read of a new record does) allocates nothing.
    capacity: usize,
    rows: usize,
    /// Where the last row's key starts, and its length.
    last_key: (usize, usize),
}

/// Bytes a batch's buffer makes room for per expected row (doubling when rows are
/// larger): growing a large buffer copies it, so it is better sized once.
const BYTES_PER_ROW: usize = 128;
/// Per-row header: key length and value length, `u32` each.
const ROW_HEADER: usize = 8;

impl BatchBuilder {
    /// A batch expected to hold about `rows` rows and at most `max_bytes` bytes.
    pub(crate) fn new(rows: usize, max_bytes: usize) -> Self {
        Self::with_capacity(rows.saturating_mul(BYTES_PER_ROW).min(max_bytes))
    }
    /// A batch whose rows take exactly `bytes` bytes of keys and values in `rows` rows.
    pub(crate) fn exact(rows: usize, bytes: usize) -> Self {
        Self::with_capacity(bytes + rows * ROW_HEADER)
    }
    fn with_capacity(capacity: usize) -> Self {
        BatchBuilder {
            bytes: Vec::new(),
            capacity,
            rows: 0,
            last_key: (0, 0),
        }
    }
    pub(crate) fn push(&mut self, key: &[u8], value: &[u8]) {
        if self.rows == 0 {
            self.bytes
                .reserve(self.capacity.max(ROW_HEADER + key.len() + value.len()));
        }
        // Keys (10 kB) and values (100 kB) are far below `u32::MAX`.
        self.bytes
            .extend_from_slice(&(key.len() as u32).to_le_bytes());
        self.bytes
            .extend_from_slice(&(value.len() as u32).to_le_bytes());
        self.last_key = (self.bytes.len(), key.len());
        self.bytes.extend_from_slice(key);
        self.bytes.extend_from_slice(value);
        self.rows += 1;
    }
    pub(crate) fn rows(&self) -> usize {
        self.rows
    }
    /// Bytes of keys and values so far (FoundationDB's batch byte accounting).
    pub(crate) fn bytes(&self) -> usize {
        self.bytes.len() - self.rows * ROW_HEADER
    }
    /// The batch, read in place.
    pub(crate) fn finish_batch(self, more: bool) -> RangeBatch {
        RangeBatch {
            bytes: Bytes::from(self.bytes),
            at: 0,
            rows: self.rows,
            last_key: (self.rows > 0).then_some(self.last_key),
            more,
        }
    }
}

/// One batch of a range read, read in place: the same rows as a [`RangeResult`],
/// without a [`KeyValue`] per row. Scans read millions of rows this way, keeping (as
/// [`Bytes`] slices) only the values they return.
///
/// ```
/// use fdb_records::backend::embedded::EmbeddedDatabase;
/// use fdb_records::kv::{Database, FdbError, RangeOption, Transaction};
/// # futures::executor::block_on(async {
/// let db = EmbeddedDatabase::in_memory().unwrap();
/// db.run(|tx, _| async move {
///     tx.set(b"a", b"1");
///     tx.set(b"b", b"2");
///     Ok::<_, FdbError>(())
/// }).await.unwrap();
/// let tx = db.create_transaction().unwrap();
/// let mut batch = tx.get_range_batch(&RangeOption::from_keys(b"a", b"c"), 1, false).await.unwrap();
/// let mut keys = Vec::new();
/// while let Some(row) = batch.peek() {
///     keys.push(row.key().to_vec());
///     batch.advance();
/// }
/// assert_eq!(keys, [b"a".to_vec(), b"b".to_vec()]);
/// # });
/// ```
#[derive(Clone, Debug, Default)]
pub struct RangeBatch {
    /// Rows end to end, each as key length and value length (`u32` LE), key, value.
    bytes: Bytes,
    /// Where the next row starts.
    at: usize,
    /// Rows from `at` on.
    rows: usize,
    /// Where the batch's last key starts, and its length.
    last_key: Option<(usize, usize)>,
    /// More rows may exist in the range beyond this batch (and within the limit).
    pub more: bool,
}

/// One row of a [`RangeBatch`], borrowed from it.
#[derive(Clone, Copy, Debug)]
pub struct BatchRow<'b> {
    key: &'b [u8],
    value: &'b [u8],
    /// Where the value starts in the batch's buffer.
    value_at: usize,
}

impl<'b> BatchRow<'b> {
    pub fn key(&self) -> &'b [u8] {
        self.key
    }
    pub fn value(&self) -> &'b [u8] {
        self.value
    }
}

impl RangeBatch {
    /// A batch holding `key_values` (copied into one buffer).
    pub fn from_key_values(key_values: &[KeyValue], more: bool) -> Self {
        let bytes = key_values
            .iter()
            .map(|kv| kv.key.len() + kv.value.len())
            .sum();
        let mut builder = BatchBuilder::exact(key_values.len(), bytes);
        for kv in key_values {
            builder.push(&kv.key, &kv.value);
        }
        builder.finish_batch(more)
    }
    /// Rows not yet passed.
    pub fn len(&self) -> usize {
        self.rows
    }
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }
    /// The next row, if any.
    pub fn peek(&self) -> Option<BatchRow<'_>> {
        if self.rows == 0 {
            return None;
        }
        let b = &self.bytes[self.at..];
        let key_len = u32::from_le_bytes(b[..4].try_into().expect("4 bytes")) as usize;
        let value_len = u32::from_le_bytes(b[4..8].try_into().expect("4 bytes")) as usize;
        let key = &b[ROW_HEADER..ROW_HEADER + key_len];
        let value = &b[ROW_HEADER + key_len..ROW_HEADER + key_len + value_len];
        Some(BatchRow {
            key,
            value,
            value_at: self.at + ROW_HEADER + key_len,
        })
    }
    /// Passes the next row.
    pub fn advance(&mut self) {
        self.pass();
    }
    /// Passes the next row, returning how many bytes of key and value it held, without
    /// slicing it out again (a scan has already looked at it with [`peek`](Self::peek)).
    pub(crate) fn pass(&mut self) -> Option<usize> {
        if self.rows == 0 {
            return None;
        }
        let header = &self.bytes[self.at..self.at + ROW_HEADER];
        let key_len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
        let value_len = u32::from_le_bytes(header[4..].try_into().expect("4 bytes")) as usize;
        self.at += ROW_HEADER + key_len + value_len;
        self.rows -= 1;
        Some(key_len + value_len)
    }
    /// A row's value as an owned slice of the batch (no copy).
    pub fn value_bytes(&self, row: &BatchRow<'_>) -> Bytes {
        self.bytes
            .slice(row.value_at..row.value_at + row.value.len())
    }
    /// A part of a row's key as an owned slice of the batch (no copy).
    ///
    /// Panics if `range` is not within the key, as slicing the key would.
    pub fn key_bytes(&self, row: &BatchRow<'_>, range: std::ops::Range<usize>) -> Bytes {
        assert!(
            range.start <= range.end && range.end <= row.key.len(),
            "range {range:?} outside a key of {} bytes",
            row.key.len()
        );
        let key_at = row.value_at - row.key.len();
        self.bytes.slice(key_at + range.start..key_at + range.end)
    }
    /// The key of the batch's last row (passed or not), for resuming after it.
    pub fn last_key(&self) -> Option<&[u8]> {
        self.last_key.map(|(at, len)| &self.bytes[at..at + len])
    }
    /// The rows not yet passed as owned pairs (slices of the one buffer).
    pub fn into_key_values(mut self) -> Vec<KeyValue> {
        let mut key_values = Vec::with_capacity(self.rows);
        while let Some(row) = self.peek() {
            let key_at = row.value_at - row.key.len();
            key_values.push(KeyValue {
                key: self.bytes.slice(key_at..row.value_at),
                value: self
                    .bytes
                    .slice(row.value_at..row.value_at + row.value.len()),
            });
            self.advance();
        }
        key_values
    }
    /// As a [`RangeResult`].
    pub fn into_result(self) -> RangeResult {
        let more = self.more;
        RangeResult {
            key_values: self.into_key_values(),
            more,
        }
    }
}

#[cfg(test)]
mod batch_tests {
    use super::*;

    #[test]
    fn a_batch_returns_its_rows_in_order_sharing_one_buffer() {
        let mut batch = BatchBuilder::new(2, 1 << 20);
        batch.push(b"a", b"");
        batch.push(b"", b"value");
        batch.push(b"key", b"v");
        assert_eq!((batch.rows(), batch.bytes()), (3, 10));
        let rows = batch.finish_batch(false).into_key_values();
        let pairs: Vec<(&[u8], &[u8])> =
            rows.iter().map(|kv| (&kv.key[..], &kv.value[..])).collect();
        assert_eq!(
            pairs,
            [(&b"a"[..], &b""[..]), (b"", b"value"), (b"key", b"v")]
        );
        assert!(BatchBuilder::exact(0, 0).finish_batch(false).is_empty());
    }
}

/// FoundationDB's key selector: "the key `offset` steps from the last key
/// less than (or equal to, with `or_equal`) `key`".
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KeySelector {
    pub key: Vec<u8>,
    pub or_equal: bool,
    pub offset: i32,
}

impl KeySelector {
    /// Builds a selector from its three components.
    pub fn new(key: impl Into<Vec<u8>>, or_equal: bool, offset: i32) -> Self {
        KeySelector {
            key: key.into(),
            or_equal,
            offset,
        }
    }
    /// The first key greater than or equal to `key`.
    pub fn first_greater_or_equal(key: impl Into<Vec<u8>>) -> Self {
        Self::new(key, false, 1)
    }
    /// The first key strictly greater than `key`.
    pub fn first_greater_than(key: impl Into<Vec<u8>>) -> Self {
        Self::new(key, true, 1)
    }
    /// The last key strictly less than `key`.
    pub fn last_less_than(key: impl Into<Vec<u8>>) -> Self {
        Self::new(key, false, 0)
    }
    /// The last key less than or equal to `key`.
    pub fn last_less_or_equal(key: impl Into<Vec<u8>>) -> Self {
        Self::new(key, true, 0)
    }
    /// The same selector moved by `delta` keys.
    pub fn offset_by(mut self, delta: i32) -> Self {
        self.offset = self.offset.saturating_add(delta);
        self
    }
}

/// How eagerly a range read fetches rows: FoundationDB's streaming modes.
///
/// Backends choose batch sizes from the mode; results never depend on it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum StreamingMode {
    /// Everything up to the limit in as few batches as possible.
    WantAll,
    /// Batches that grow with each iteration: the default for scans consumed incrementally.
    #[default]
    Iterator,
    /// Exactly `limit` rows in one batch; `limit` must be set.
    Exact,
    Small,
    Medium,
    Large,
    /// As `WantAll`, favouring throughput over latency.
    Serial,
}

/// A range read: begin and end selectors, limits, direction and streaming mode.
///
/// ```
/// use fdb_records::kv::RangeOption;
/// let r = RangeOption::from_keys(b"a", b"b").with_limit(10).reversed();
/// assert!(r.reverse && r.limit == Some(10));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangeOption {
    pub begin: KeySelector,
    pub end: KeySelector,
    /// Maximum number of rows to return over the whole read; `None` means no limit.
    pub limit: Option<usize>,
    /// Soft cap on bytes per batch; `None` lets the streaming mode decide.
    pub target_bytes: Option<usize>,
    pub mode: StreamingMode,
    pub reverse: bool,
}

impl RangeOption {
    /// All keys `k` with `begin <= k < end`.
    pub fn from_keys(begin: &[u8], end: &[u8]) -> Self {
        Self::from_selectors(
            KeySelector::first_greater_or_equal(begin),
            KeySelector::first_greater_or_equal(end),
        )
    }
    /// All keys starting with `prefix`.
    pub fn from_prefix(prefix: &[u8]) -> Self {
        let end = crate::kv::strinc(prefix);
        Self::from_keys(prefix, &end)
    }
    /// The keys between two selectors.
    pub fn from_selectors(begin: KeySelector, end: KeySelector) -> Self {
        RangeOption {
            begin,
            end,
            limit: None,
            target_bytes: None,
            mode: StreamingMode::Iterator,
            reverse: false,
        }
    }
    pub fn with_limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }
    pub fn with_mode(mut self, mode: StreamingMode) -> Self {
        self.mode = mode;
        self
    }
    pub fn with_target_bytes(mut self, bytes: usize) -> Self {
        self.target_bytes = Some(bytes);
        self
    }
    pub fn reversed(mut self) -> Self {
        self.reverse = true;
        self
    }

    /// The option for the batch after `batch`, or `None` when the read is complete.
    ///
    /// Mirrors FoundationDB's `RangeOption::next_range`: the limit shrinks by the rows
    /// returned and the side the read advances from moves past the last key.
    pub fn next_batch(&self, batch: &RangeResult) -> Option<RangeOption> {
        if !batch.more {
            return None;
        }
        let last = batch.key_values.last()?;
        let mut next = self.clone();
        if let Some(limit) = next.limit.as_mut() {
            *limit = limit.checked_sub(batch.key_values.len())?;
            if *limit == 0 {
                return None;
            }
        }
        if self.reverse {
            next.end = KeySelector::first_greater_or_equal(last.key.clone());
        } else {
            next.begin = KeySelector::first_greater_than(last.key.clone());
        }
        Some(next)
    }
}

/// One batch of a range read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RangeResult {
    pub key_values: Vec<KeyValue>,
    /// More rows may exist in the range beyond this batch (and within the limit).
    pub more: bool,
}

/// FoundationDB's atomic mutation types (`MutationType` in `fdb.options`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MutationType {
    /// Little-endian addition; the result has the parameter's length.
    Add,
    BitAnd,
    BitOr,
    BitXor,
    /// Appends the parameter if the result stays within the value size limit.
    AppendIfFits,
    /// Unsigned little-endian maximum.
    Max,
    /// Unsigned little-endian minimum.
    Min,
    /// Sets the key with a 10-byte versionstamp spliced into it at the offset in its last 4 bytes.
    SetVersionstampedKey,
    /// Sets the value with a 10-byte versionstamp spliced in at the offset in its last 4 bytes.
    SetVersionstampedValue,
    /// Lexicographic minimum.
    ByteMin,
    /// Lexicographic maximum.
    ByteMax,
    /// Clears the key if its value equals the parameter.
    CompareAndClear,
}

impl MutationType {
    /// FoundationDB's numeric code for this mutation.
    pub fn code(self) -> i32 {
        match self {
            MutationType::Add => 2,
            MutationType::BitAnd => 6,
            MutationType::BitOr => 7,
            MutationType::BitXor => 8,
            MutationType::AppendIfFits => 9,
            MutationType::Max => 12,
            MutationType::Min => 13,
            MutationType::SetVersionstampedKey => 14,
            MutationType::SetVersionstampedValue => 15,
            MutationType::ByteMin => 16,
            MutationType::ByteMax => 17,
            MutationType::CompareAndClear => 20,
        }
    }
}

/// Which side of conflict detection an explicit conflict range joins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConflictRangeType {
    Read,
    Write,
}

/// Transaction options (the subset of `TransactionOption` this SDK relies on).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransactionOption {
    /// Cancels the transaction (and its retries) after this long with `transaction_timed_out`.
    /// Zero disables the timeout. Persists across `on_error`.
    Timeout(Duration),
    /// Maximum number of retries `on_error` allows; `None` removes the limit. Persists across `on_error`.
    RetryLimit(Option<u32>),
    /// Upper bound on the backoff delay of `on_error`. Persists across `on_error`.
    MaxRetryDelay(Duration),
    /// Transaction size limit in bytes (32..=10,000,000).
    SizeLimit(usize),
    /// Resolve `commit_unknown_result` inside the client: the commit then either succeeds
    /// or, having certainly not happened, fails with `transaction_too_old` (retryable).
    /// Not persistent: `on_error` clears it, so set it in every attempt.
    AutomaticIdempotency,
    /// Snapshot reads ignore this transaction's own writes.
    /// FoundationDB counts these: after two disables it takes two enables.
    SnapshotRywDisable,
    /// Snapshot reads see this transaction's own writes (the default); undoes one
    /// `SnapshotRywDisable`.
    SnapshotRywEnable,
}

/// Tells a retried closure whether an earlier attempt may already have committed.
///
/// Set on every attempt after one that ended in a maybe-committed error such as
/// `commit_unknown_result`: the closure must then be written so that running
/// again is harmless (for example by checking a marker the first attempt wrote).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MaybeCommitted(pub bool);

impl MaybeCommitted {
    pub fn is_maybe_committed(self) -> bool {
        self.0
    }
}

/// What a successful commit reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Committed {
    /// The commit version, or `-1` for a read-only transaction (as FoundationDB reports).
    pub version: i64,
    /// The transaction's 10-byte versionstamp; `None` for a read-only transaction.
    pub versionstamp: Option<[u8; 10]>,
}

/// FoundationDB's documented limits, used by the embedded engine and by the SDK's
/// own size checks.
pub mod limits {
    use std::time::Duration;
    /// Largest key FoundationDB accepts.
    pub const MAX_KEY_SIZE: usize = 10_000;
    /// Largest value FoundationDB accepts.
    pub const MAX_VALUE_SIZE: usize = 100_000;
    /// Default and largest transaction size.
    pub const MAX_TRANSACTION_SIZE: usize = 10_000_000;
    /// Smallest size limit the `size_limit` option accepts.
    pub const MIN_TRANSACTION_SIZE_LIMIT: usize = 32;
    /// How long a read version stays valid (`transaction_too_old` after this).
    pub const MAX_TRANSACTION_LIFETIME: Duration = Duration::from_secs(5);
    /// Default upper bound of the retry backoff.
    pub const DEFAULT_MAX_RETRY_DELAY: Duration = Duration::from_millis(1000);
    /// First retry backoff delay; each retryable error doubles it (up to the maximum
    /// retry delay) and `on_error` waits a uniformly random part of it.
    pub const INITIAL_RETRY_DELAY: Duration = Duration::from_millis(10);
    /// The fixed wait of `on_error` after `transaction_too_old` or `future_version`
    /// (FoundationDB's `FUTURE_VERSION_RETRY_DELAY`): no jitter, and the backoff of
    /// later conflicts does not grow.
    pub const FUTURE_VERSION_RETRY_DELAY: Duration = Duration::from_millis(10);
    /// How far the backoff grows after `proxy_memory_limit_exceeded` or
    /// `grv_proxy_memory_limit_exceeded`, past the maximum retry delay (FoundationDB's
    /// `RESOURCE_CONSTRAINED_MAX_BACKOFF`).
    pub const RESOURCE_CONSTRAINED_MAX_BACKOFF: Duration = Duration::from_secs(30);
}
