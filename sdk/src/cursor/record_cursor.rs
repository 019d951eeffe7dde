//! Record scans with continuations, and the batched key reader shared with index scans.

use super::continuation::{BindingHasher, Position};
use super::{check_in_range, exhausted, CursorError, Limiter, NoNextReason, ScanPlan, Step, Steps};
use crate::kv::{key_after, BatchRow, Bytes, FdbResult, RangeBatch, RangeOption, Transaction};
use crate::store::{LastRecordType, RawRecord, RecordRange, RecordStore, StoredRecord};
use futures::stream::{self, StreamExt};

/// Reads a key range in growing batches, seeking from the last key read, within the
/// cursor's key budget (plus one key of look-ahead).
pub(crate) struct KvReader<T: Transaction> {
    tx: T,
    begin: Vec<u8>,
    end: Vec<u8>,
    reverse: bool,
    /// Keys one item usually spans (a record: its data, and its version if stored), to
    /// size the first read from the cursor's return limit.
    keys_per_item: usize,
    iteration: usize,
    /// The rest of the last batch read, read in place.
    batch: RangeBatch,
    exhausted: bool,
    limiter: Limiter,
}

impl<T: Transaction> KvReader<T> {
    pub(crate) fn new(
        tx: T,
        begin: Vec<u8>,
        end: Vec<u8>,
        reverse: bool,
        keys_per_item: usize,
        limiter: Limiter,
    ) -> Self {
        let exhausted = begin >= end;
        KvReader {
            tx,
            begin,
            end,
            reverse,
            keys_per_item,
            iteration: 1,
            batch: RangeBatch::default(),
            exhausted,
            limiter,
        }
    }

    async fn fetch(&mut self) -> FdbResult<()> {
        if self.begin >= self.end {
            self.exhausted = true;
            return Ok(());
        }
        let mut range = RangeOption::from_keys(&self.begin, &self.end);
        if self.reverse {
            range = range.reversed();
        }
        // Read no further than the budget allows, plus one key to see where the
        // current record ends; the first read, no further than the return limit needs
        // (later reads grow with the streaming mode if items span more keys).
        let budget = self.limiter.remaining_keys().map(|r| r.max(1) + 1);
        let expected = match self.iteration {
            1 => self.limiter.expected_items().map(|n| {
                n.max(1)
                    .saturating_mul(self.keys_per_item)
                    .saturating_add(1)
            }),
            _ => None,
        };
        let batch_limit = match (budget, expected) {
            (Some(b), Some(e)) => Some(b.min(e)),
            (b, e) => b.or(e),
        };
        if let Some(limit) = batch_limit {
            range = range.with_limit(limit);
        }
        let batch = self
            .tx
            .get_range_batch(&range, self.iteration, false)
            .await?;
        self.iteration += 1;
        if let Some(last) = batch.last_key() {
            if self.reverse {
                self.end = last.to_vec();
            } else {
                self.begin = key_after(last);
            }
        }
        self.exhausted =
            batch.is_empty() || (!batch.more && batch_limit.is_none_or(|l| batch.len() < l));
        self.batch = batch;
        Ok(())
    }

    /// Makes the next row available to [`row`](Self::row), reading a batch if needed;
    /// `false` at the end of the range.
    pub(crate) async fn fill(&mut self) -> FdbResult<bool> {
        if self.batch.is_empty() && !self.exhausted {
            self.fetch().await?;
        }
        Ok(!self.batch.is_empty())
    }

    /// The next row, without consuming it (after [`fill`](Self::fill)).
    pub(crate) fn row(&self) -> Option<BatchRow<'_>> {
        self.batch.peek()
    }

    /// The batch the rows come from, to keep a value or part of a key without copying.
    pub(crate) fn batch(&self) -> &RangeBatch {
        &self.batch
    }

    /// Consumes the next row, counting it as read.
    pub(crate) fn advance(&mut self) {
        if let Some(bytes) = self.batch.pass() {
            self.limiter.record(bytes);
        }
    }
}

/// Keys of a typical record: its unsplit data, and its version if the metadata stores
/// versions.
fn record_keys<T: Transaction>(store: &RecordStore<T>) -> usize {
    if store.metadata().stores_record_versions() {
        2
    } else {
        1
    }
}

/// A scan of records by primary key: a [`ScanPlan`] returning [`StoredRecord`]s.
///
/// A record split across several keys is always returned whole and never cut by a
/// limit; the continuation is the primary key of the last record read.
///
/// ```
/// use fdb_records::cursor::RecordScan;
/// use fdb_records::store::RecordRange;
/// let newest_first = RecordScan::new(RecordRange::all()).reverse(true);
/// let users_only = RecordScan::new(RecordRange::all()).record_type("examples.users.User");
/// # let _ = (newest_first, users_only);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct RecordScan {
    pub range: RecordRange,
    pub reverse: bool,
    /// Only records of this type are returned (records of other types are read and
    /// skipped, moving the continuation).
    pub record_type: Option<String>,
}

impl RecordScan {
    /// Records in `range`, ascending.
    pub fn new(range: RecordRange) -> Self {
        RecordScan {
            range,
            reverse: false,
            record_type: None,
        }
    }
    /// Sets the direction.
    pub fn reverse(mut self, reverse: bool) -> Self {
        self.reverse = reverse;
        self
    }
    /// Returns only records of `record_type` (fully-qualified name).
    pub fn record_type(mut self, record_type: impl Into<String>) -> Self {
        self.record_type = Some(record_type.into());
        self
    }
}

impl<T: Transaction> ScanPlan<T> for RecordScan {
    type Item = StoredRecord;

    fn is_reverse(&self) -> bool {
        self.reverse
    }

    fn check(&self) -> Result<(), CursorError> {
        Ok(crate::store::check_bounds(
            &self.range.low,
            &self.range.high,
        )?)
    }

    fn bind(&self, h: &mut BindingHasher) {
        let (low, high) = self.range.to_bytes();
        h.bytes(b"records");
        h.bytes(&low);
        h.bytes(&high);
        h.u64(u64::from(self.reverse));
        match &self.record_type {
            Some(t) => {
                h.u64(1);
                h.bytes(t.as_bytes());
            }
            None => h.u64(0),
        }
    }

    fn open(
        &self,
        store: &RecordStore<T>,
        position: Position,
        limiter: &Limiter,
    ) -> Result<Steps<StoredRecord>, CursorError> {
        let (mut low, mut high) = self.range.to_bytes();
        match &position {
            Position::Start => {}
            Position::End => return Ok(exhausted()),
            Position::After(pk) => {
                check_in_range(pk, &low, &high)?;
                if self.reverse {
                    // Ends before every key of record `pk`.
                    high = pk.to_vec();
                } else {
                    // Starts after every key of record `pk` (data, chunks, version).
                    low = pk.to_vec();
                    low.push(0xff);
                }
            }
            Position::Children { .. } => {
                return Err(super::ContinuationError::InvalidPosition(
                    "a union or intersection position for a record scan".into(),
                )
                .into())
            }
        }
        let prefix = store.layout().records().bytes().to_vec();
        let reader = KvReader::new(
            store.transaction().clone(),
            [prefix.as_slice(), &low].concat(),
            [prefix.as_slice(), &high].concat(),
            self.reverse,
            record_keys(store),
            limiter.clone(),
        );
        let state = RecordScanState {
            store: store.clone(),
            reader,
            record_type: self.record_type.clone(),
            limiter: limiter.clone(),
            position,
            consumed_any: false,
            done: false,
            last_type: LastRecordType::default(),
        };
        // Boxed: the state moves in and out of every step's future, so a pointer moves
        // instead of the reader, its batch and the store.
        Ok(stream::unfold(Box::new(state), |mut st| async move {
            let step = st.next_step().await?;
            Some((step, st))
        })
        .boxed())
    }
}

struct RecordScanState<T: Transaction> {
    store: RecordStore<T>,
    reader: KvReader<T>,
    record_type: Option<String>,
    limiter: Limiter,
    /// After the last record read.
    position: Position,
    consumed_any: bool,
    done: bool,
    last_type: LastRecordType,
}

impl<T: Transaction> RecordScanState<T> {
    async fn next_step(&mut self) -> Option<Result<Step<StoredRecord>, CursorError>> {
        if self.done {
            return None;
        }
        let step = self.next_step_inner().await;
        if !matches!(step, Ok(Step::Item(..))) {
            self.done = true;
        }
        Some(step)
    }

    async fn next_step_inner(&mut self) -> Result<Step<StoredRecord>, CursorError> {
        loop {
            // At a record boundary: the only place limits are checked.
            if self.consumed_any {
                if let Some(reason) = self.limiter.exceeded() {
                    return Ok(Step::End(reason, self.position.clone()));
                }
            }
            let Some((pk_bytes, raw)) = self.read_record().await? else {
                return Ok(Step::End(NoNextReason::SourceExhausted, Position::End));
            };
            self.consumed_any = true;
            self.position = Position::After(pk_bytes);
            let record = self.store.decode_scanned(raw, &mut self.last_type)?;
            if self
                .record_type
                .as_ref()
                .is_some_and(|t| **t != *record.record_type)
            {
                continue;
            }
            return Ok(Step::Item(record, self.position.clone()));
        }
    }

    /// Reads every key of the next record (one key of the record after it stays
    /// buffered as look-ahead).
    async fn read_record(&mut self) -> Result<Option<(Bytes, RawRecord)>, CursorError> {
        let mut current: Option<(Bytes, RawRecord)> = None;
        while self.reader.fill().await? {
            let row = self.reader.row().expect("filled");
            match current.as_mut() {
                // Later keys of the current record: only the suffix is unpacked.
                Some((pk_bytes, raw)) => {
                    let Some(part) = self.store.suffix_within(row.key(), pk_bytes) else {
                        break;
                    };
                    if !self.store.ignores_part(part) {
                        raw.add_row(part, self.reader.batch(), &row)?;
                    }
                }
                None => {
                    let (pk, pk_range, part) = self.store.parse_record_key(row.key())?;
                    // A key passed over starts no record (a lone one makes none).
                    if !self.store.ignores_part(part) {
                        let pk_bytes = self.reader.batch().key_bytes(&row, pk_range);
                        let mut raw = RawRecord::new(pk);
                        raw.add_row(part, self.reader.batch(), &row)?;
                        current = Some((pk_bytes, raw));
                    }
                }
            }
            self.reader.advance();
        }
        if let Some((pk_bytes, raw)) = current.as_mut() {
            if let Some(v) = self.store.local_version(pk_bytes) {
                raw.version = Some(v);
            }
        }
        Ok(current)
    }
}
