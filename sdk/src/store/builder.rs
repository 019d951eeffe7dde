//! [`OnlineIndexBuilder`]: builds a write-only index over existing records while other
//! transactions keep writing, across as many transactions as needed.
//!
//! # How it stays correct
//!
//! * The builder walks the records in primary-key order, a batch per transaction, and
//!   records each finished range in the store (space 6). It takes a read conflict on
//!   exactly the range it indexes, so a concurrent save or delete of a record in it
//!   conflicts and one of the two retries.
//! * Writers maintain a write-only index only for records whose primary key lies in a
//!   finished range (they read the range-set entry covering the key, non-snapshot). A
//!   record outside those ranges is left to the builder. So each record is indexed
//!   exactly once — by the builder or by its writers — and aggregates never double.
//! * Because each batch reads the built ranges in its own transaction, a batch retried
//!   after `commit_unknown_result` that had committed finds its range built and moves
//!   on: nothing is indexed twice. A crashed build resumes with a fresh builder from
//!   the ranges recorded in the store, without redoing them.
//! * Batch size adapts: halved when a batch fails with `transaction_too_large`,
//!   `transaction_too_old`, a timeout or has to be retried; grown by a quarter after a
//!   batch that committed at once.
//! * Uniqueness violations found while building are recorded (space 7) and reported;
//!   the index then stays write-only. Otherwise, once every range is built, the index
//!   is marked readable.

use super::{IndexState, RecordStore, RecordStoreError};
use crate::index::{range_set, IndexMaintainer, IndexRecord, UpdateMode};
use crate::key_expression::KeyTuple;
use crate::kv::{
    self, code, ConflictRangeType, Database, RangeOption, Transaction, TransactionOption,
};
use crate::layout;
use crate::metadata::RecordMetaData;
use foundationdb_tuple::{Element, Subspace};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;

type Result<T, E = RecordStoreError> = std::result::Result<T, E>;

/// Tuning of an [`OnlineIndexBuilder`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildConfig {
    /// Records in the first batch.
    pub initial_batch: usize,
    pub min_batch: usize,
    pub max_batch: usize,
    /// Stop after this many batch transactions (the build can be resumed later).
    pub max_transactions: Option<u64>,
    /// Transaction size limit set on each batch (default: FoundationDB's 10 MB).
    pub transaction_size_limit: Option<usize>,
}

impl Default for BuildConfig {
    fn default() -> Self {
        BuildConfig {
            initial_batch: 100,
            min_batch: 1,
            max_batch: 10_000,
            max_transactions: None,
            transaction_size_limit: None,
        }
    }
}

/// What a build did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BuildReport {
    /// Records the builder indexed (records indexed by writers are not counted).
    pub records_indexed: u64,
    /// Batch transactions committed.
    pub transactions: u64,
    /// Times the batch size was halved.
    pub shrinks: u64,
    /// Batch size at the end.
    pub final_batch: usize,
    /// Every range is built.
    pub complete: bool,
    /// The index is now readable.
    pub readable: bool,
    /// Uniqueness violations: indexed values and the primary key of each record involved.
    pub uniqueness_violations: Vec<(KeyTuple, KeyTuple)>,
}

enum Step {
    Indexed(u64),
    Finished(Vec<(KeyTuple, KeyTuple)>, bool),
}

/// Builds one index online. See the [module docs](self).
///
/// ```
/// use fdb_records::backend::embedded::EmbeddedDatabase;
/// use fdb_records::key_expression::field;
/// use fdb_records::kv::Database;
/// use fdb_records::metadata::{Index, IndexType, RecordMetaData, RecordTypeDef};
/// use fdb_records::store::{OnlineIndexBuilder, RecordStore, RecordStoreError};
/// use foundationdb_tuple::Subspace;
/// use std::sync::Arc;
/// # futures::executor::block_on(async {
/// # let pool = fdb_records::metadata::example_pool();
/// const USER: &str = "examples.users.User";
/// let v1 = RecordMetaData::builder(pool.clone()).version(1)
///     .record_type(RecordTypeDef::new(USER).primary_key(field("id")));
/// let v2 = v1.clone().version(2)
///     .index(Index::new("by_name", IndexType::Value, field("name")).on(USER));
/// let (v1, v2) = (Arc::new(v1.build().unwrap()), Arc::new(v2.build().unwrap()));
/// let db = EmbeddedDatabase::in_memory().unwrap();
/// # let mut user = prost_reflect::DynamicMessage::new(pool.get_message_by_name(USER).unwrap());
/// db.run(|tx, _| { let (v1, user) = (v1.clone(), user.clone()); async move {
///     RecordStore::open(&tx, Subspace::from("app"), v1).await?.save_dynamic(&user, Default::default()).await?;
///     Ok::<_, RecordStoreError>(())
/// }}).await.unwrap();
/// // v2 adds an index to a non-empty store: it starts write-only; build it.
/// let report = OnlineIndexBuilder::new(db.clone(), Subspace::from("app"), v2, "by_name")
///     .build().await.unwrap();
/// assert!(report.readable && report.records_indexed == 1);
/// # });
/// ```
pub struct OnlineIndexBuilder<D: Database> {
    db: D,
    subspace: Subspace,
    metadata: Arc<RecordMetaData>,
    index: String,
    config: BuildConfig,
}

impl<D: Database> OnlineIndexBuilder<D> {
    pub fn new(
        db: D,
        subspace: Subspace,
        metadata: Arc<RecordMetaData>,
        index: impl Into<String>,
    ) -> Self {
        OnlineIndexBuilder {
            db,
            subspace,
            metadata,
            index: index.into(),
            config: BuildConfig::default(),
        }
    }

    pub fn config(mut self, config: BuildConfig) -> Self {
        self.config = config;
        self
    }

    /// Builds until the index is complete (or `max_transactions` batches ran).
    pub async fn build(&self) -> Result<BuildReport> {
        self.prepare().await?;
        let mut report = BuildReport::default();
        let batch = AtomicUsize::new(self.config.initial_batch.max(self.config.min_batch));
        let shrinks = AtomicU32::new(0);
        let shrink = || {
            let now = batch.load(Ordering::SeqCst);
            let smaller = (now / 2).max(self.config.min_batch);
            batch.store(smaller, Ordering::SeqCst);
            shrinks.fetch_add(1, Ordering::SeqCst);
            now > smaller
        };
        loop {
            if self
                .config
                .max_transactions
                .is_some_and(|m| report.transactions >= m)
            {
                break;
            }
            let calls = AtomicU32::new(0);
            let outcome = kv::run(&self.db, |tx, _| {
                // A retry means the last attempt failed (conflict, too old, ...): smaller.
                if calls.fetch_add(1, Ordering::SeqCst) > 0 {
                    shrink();
                }
                let limit = batch.load(Ordering::SeqCst);
                async move { self.step(&tx, limit).await }
            })
            .await;
            match outcome {
                Ok(outcome) => {
                    report.transactions += 1;
                    if outcome.attempts == 1 {
                        let now = batch.load(Ordering::SeqCst);
                        batch.store(
                            (now + (now / 4).max(1)).min(self.config.max_batch),
                            Ordering::SeqCst,
                        );
                    }
                    match outcome.value {
                        Step::Indexed(n) => report.records_indexed += n,
                        Step::Finished(violations, readable) => {
                            report.complete = true;
                            report.readable = readable;
                            report.uniqueness_violations = violations;
                            break;
                        }
                    }
                }
                Err(e) => {
                    let adaptable = e.fdb_error_code().is_some_and(|c| {
                        matches!(
                            c,
                            code::TRANSACTION_TOO_LARGE
                                | code::TRANSACTION_TOO_OLD
                                | code::TIMED_OUT
                                | code::TRANSACTION_TIMED_OUT
                        )
                    });
                    // Give up when even the smallest batch fails.
                    if !adaptable || !shrink() {
                        return Err(e);
                    }
                }
            }
        }
        report.shrinks = u64::from(shrinks.load(Ordering::SeqCst));
        report.final_batch = batch.load(Ordering::SeqCst);
        Ok(report)
    }

    /// Makes a disabled index write-only (with no progress), so writers start
    /// maintaining it; a readable index is left alone.
    async fn prepare(&self) -> Result<()> {
        self.db
            .run(|tx, _| async move {
                let store = self.open(&tx).await?;
                if store.index_state(&self.index)? == IndexState::Disabled {
                    for sub in store.layout().index_data_subspaces(&self.index) {
                        let (b, e) = sub.range();
                        tx.clear_range(&b, &e);
                        tx.clear(sub.bytes());
                    }
                    super::header::write_index_state(
                        &tx,
                        store.layout(),
                        &self.index,
                        IndexState::WriteOnly,
                    );
                }
                Ok(())
            })
            .await
    }

    async fn open(&self, tx: &D::Transaction) -> Result<RecordStore<D::Transaction>> {
        if let Some(limit) = self.config.transaction_size_limit {
            tx.set_option(TransactionOption::SizeLimit(limit))?;
        }
        RecordStore::open(tx, self.subspace.clone(), self.metadata.clone()).await
    }

    /// One batch: index up to `limit` records of the first unbuilt range.
    async fn step(&self, tx: &D::Transaction, limit: usize) -> Result<Step> {
        let store = self.open(tx).await?;
        let name = &self.index;
        let layout = store.layout().clone();
        if store.index_state(name)? == IndexState::Readable {
            return Ok(Step::Finished(Vec::new(), true));
        }
        let ranges = range_set::ranges(tx, &layout, name, false).await?;
        let Some((begin, end)) = range_set::first_gap(&ranges) else {
            return self.finish(&store).await;
        };
        // A snapshot read plus an explicit read conflict on exactly the range built
        // below: a concurrent change of a record in it conflicts, while the keys the
        // scan read past the limit do not.
        let scan = store
            // At least one record, or a batch would mark its gap built unread.
            .scan_raw(&begin, &end, false, Some(limit.max(1)), true, false)
            .await?;
        let maintainer = store.maintainer(name)?;
        let index = maintainer.index();
        let mut indexed = 0;
        let mut last = None;
        for raw in scan.records {
            let record = store.decode(raw)?;
            last = Some(record.primary_key.clone());
            if !index.covers(&record.record_type) {
                continue;
            }
            let record_type = store
                .metadata()
                .record_type(&record.record_type)
                .expect("decoded type");
            let view = IndexRecord {
                primary_key: &record.primary_key,
                record_type,
                message: &record.message,
                version: record.version,
            };
            let writes = maintainer
                .plan_update(tx, &layout, None, Some(view), UpdateMode::Build)
                .await?;
            // Applied at once: the next record's uniqueness check sees these entries.
            store.apply(writes);
            indexed += 1;
        }
        let built_end = match (scan.more, last) {
            (true, Some(pk)) => layout::primary_key_bytes_after(&pk),
            _ => end,
        };
        let records = layout.records();
        tx.add_conflict_range(
            &[records.bytes(), &begin].concat(),
            &[records.bytes(), &built_end].concat(),
            ConflictRangeType::Read,
        )?;
        range_set::insert(tx, &layout, name, &begin, &built_end).await?;
        Ok(Step::Indexed(indexed))
    }

    /// Every range is built: report violations, or mark the index readable.
    async fn finish(&self, store: &RecordStore<D::Transaction>) -> Result<Step> {
        let tx = store.transaction();
        let layout = store.layout();
        let sub = layout.index_uniqueness_violations(&self.index);
        let kvs = tx
            .get_range_all(RangeOption::from_prefix(sub.bytes()), false)
            .await?;
        let mut violations = Vec::new();
        for kv in kvs {
            let mut elements: Vec<Element<'_>> = crate::layout::unpack_stored_in(&sub, &kv.key)
                .map_err(|e| RecordStoreError::CorruptIndex {
                    index: self.index.clone(),
                    detail: format!("bad uniqueness violation key: {e:?}"),
                })?;
            let pk = match elements.pop() {
                Some(Element::Tuple(pk)) => pk.into_iter().map(Element::into_owned).collect(),
                _ => Vec::new(),
            };
            violations.push((elements.into_iter().map(Element::into_owned).collect(), pk));
        }
        let readable = violations.is_empty();
        if readable {
            super::header::write_index_state(tx, layout, &self.index, IndexState::Readable);
            range_set::clear(tx, layout, &self.index);
        }
        Ok(Step::Finished(violations, readable))
    }
}

trait FdbCode {
    fn fdb_error_code(&self) -> Option<i32>;
}

impl FdbCode for RecordStoreError {
    fn fdb_error_code(&self) -> Option<i32> {
        kv::RetryableError::fdb_error(self).map(|e| e.code())
    }
}
