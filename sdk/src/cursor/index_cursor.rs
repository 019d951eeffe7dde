//! Index entry scans with continuations.

use super::continuation::{BindingHasher, ContinuationError, Position};
use super::record_cursor::KvReader;
use super::{check_in_range, exhausted, CursorError, Limiter, NoNextReason, ScanPlan, Step, Steps};
use crate::index::value::entry_primary_key;
use crate::kv::Transaction;
use crate::metadata::IndexType;
use crate::store::{IndexEntry, RecordStore, RecordVersion, TupleRange};
use foundationdb_tuple::Element;
use futures::stream::{self, StreamExt};

/// A scan of a readable VALUE or VERSION index: a [`ScanPlan`] returning
/// [`IndexEntry`]s in index order. An equality scan (every indexed column fixed by a
/// [`TupleRange::prefix`]) returns entries in primary-key order, which makes it a
/// child for [`Union`](super::Union) and [`Intersection`](super::Intersection).
///
/// ```
/// use fdb_records::cursor::IndexScan;
/// use fdb_records::store::TupleRange;
/// use foundationdb_tuple::Element;
/// let pro_users = IndexScan::new("by_tier", TupleRange::prefix(vec![Element::Int(1)]));
/// # let _ = pro_users;
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct IndexScan {
    pub index: String,
    pub range: TupleRange,
    pub reverse: bool,
}

impl IndexScan {
    /// Entries of `index` in `range`, ascending.
    pub fn new(index: impl Into<String>, range: TupleRange) -> Self {
        IndexScan {
            index: index.into(),
            range,
            reverse: false,
        }
    }
    /// Sets the direction.
    pub fn reverse(mut self, reverse: bool) -> Self {
        self.reverse = reverse;
        self
    }
}

fn relative_range<T: Transaction>(
    store: &RecordStore<T>,
    scan: &IndexScan,
) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let sub = store.layout().index(&scan.index);
    let prefix = sub.bytes().to_vec();
    let (begin, end) = scan.range.to_keys(&sub);
    let strip = |k: Vec<u8>| {
        k.get(prefix.len()..)
            .map(<[u8]>::to_vec)
            .unwrap_or_default()
    };
    (prefix.clone(), strip(begin), strip(end))
}

impl<T: Transaction> ScanPlan<T> for IndexScan {
    type Item = IndexEntry;

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
        // Bounds as packed tuples: the same bytes whatever the store.
        let sub = foundationdb_tuple::Subspace::all();
        let (low, high) = self.range.to_keys(&sub);
        h.bytes(b"index");
        h.bytes(self.index.as_bytes());
        h.bytes(&low);
        h.bytes(&high);
        h.u64(u64::from(self.reverse));
    }

    fn open(
        &self,
        store: &RecordStore<T>,
        position: Position,
        limiter: &Limiter,
    ) -> Result<Steps<IndexEntry>, CursorError> {
        store.readable_index(
            &self.index,
            &[IndexType::Value, IndexType::Version],
            "a VALUE or VERSION index",
        )?;
        let (prefix, mut low, mut high) = relative_range(store, self);
        match &position {
            Position::Start => {}
            Position::End => return Ok(exhausted()),
            Position::After(key) => {
                check_in_range(key, &low, &high)?;
                if self.reverse {
                    high = key.to_vec();
                } else {
                    low = crate::kv::key_after(key);
                }
            }
            Position::Children { .. } => {
                return Err(ContinuationError::InvalidPosition(
                    "a union or intersection position for an index scan".into(),
                )
                .into())
            }
        }
        let reader = KvReader::new(
            store.transaction().clone(),
            [prefix.as_slice(), &low].concat(),
            [prefix.as_slice(), &high].concat(),
            self.reverse,
            1,
            limiter.clone(),
        );
        let state = IndexScanState {
            store: store.clone(),
            index: self.index.clone(),
            prefix_len: prefix.len(),
            reader,
            limiter: limiter.clone(),
            position,
            consumed_any: false,
            done: false,
        };
        // Boxed, as a record scan's state (see there).
        Ok(stream::unfold(Box::new(state), |mut st| async move {
            if st.done {
                return None;
            }
            let step = st.next_step().await;
            if !matches!(step, Ok(Step::Item(..))) {
                st.done = true;
            }
            Some((step, st))
        })
        .boxed())
    }
}

struct IndexScanState<T: Transaction> {
    store: RecordStore<T>,
    index: String,
    prefix_len: usize,
    reader: KvReader<T>,
    limiter: Limiter,
    position: Position,
    consumed_any: bool,
    done: bool,
}

impl<T: Transaction> IndexScanState<T> {
    async fn next_step(&mut self) -> Result<Step<IndexEntry>, CursorError> {
        if self.consumed_any {
            if let Some(reason) = self.limiter.exceeded() {
                return Ok(Step::End(reason, self.position.clone()));
            }
        }
        if !self.reader.fill().await? {
            return Ok(Step::End(NoNextReason::SourceExhausted, Position::End));
        }
        let row = self.reader.row().expect("filled");
        self.consumed_any = true;
        let key = row.key();
        let (values, primary_key) = entry_primary_key(self.store.layout(), &self.index, key)?;
        self.position = Position::After(
            self.reader
                .batch()
                .key_bytes(&row, self.prefix_len..key.len()),
        );
        self.reader.advance();
        let version = values.iter().find_map(|e| match e {
            Element::Versionstamp(v) => Some(RecordVersion::from_versionstamp(v)),
            _ => None,
        });
        Ok(Step::Item(
            IndexEntry {
                values,
                primary_key,
                version,
            },
            self.position.clone(),
        ))
    }
}
