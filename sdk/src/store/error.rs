//! [`RecordStoreError`]: everything a record store operation can fail with.

use super::{IndexState, StoreError};
use crate::key_expression::{ExpressionError, KeyTuple};
use crate::kv::{FdbError, RetryableError};
use crate::layout::DisplayTuple;
use crate::metadata::{IndexType, MetaDataError, RecordError};
use crate::record::RecordTypeMismatch;

fn t(tuple: &KeyTuple) -> String {
    DisplayTuple(tuple).to_string()
}

/// Why a record store operation failed. FoundationDB errors stay visible to the retry
/// loop ([`RetryableError`]); every other variant names what is at fault, and an
/// operation that fails with one of them has written nothing.
#[derive(Debug, thiserror::Error)]
pub enum RecordStoreError {
    /// A FoundationDB error (retryable ones are retried by [`crate::kv::Database::run`]).
    #[error(transparent)]
    Fdb(#[from] FdbError),
    /// Opening the store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    MetaData(#[from] MetaDataError),
    #[error(transparent)]
    Expression(#[from] ExpressionError),
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error(transparent)]
    TypeMismatch(#[from] RecordTypeMismatch),
    /// `save` with [`RecordExistence::MustNotExist`](super::RecordExistence) found a record.
    #[error("record {} already exists", t(.primary_key))]
    RecordAlreadyExists { primary_key: KeyTuple },
    /// `save` with [`RecordExistence::MustExist`](super::RecordExistence) found none.
    #[error("record {} does not exist", t(.primary_key))]
    RecordDoesNotExist { primary_key: KeyTuple },
    /// The record and its index updates cannot fit in one transaction.
    #[error("record {} needs about {size} bytes in the transaction; the limit is {limit}", t(.primary_key))]
    RecordTooLarge {
        primary_key: KeyTuple,
        size: usize,
        limit: usize,
    },
    /// A key (record or index entry) would exceed FoundationDB's key size limit.
    #[error("{what} key of record {} is {size} bytes; the limit is {limit}", t(.primary_key))]
    KeyTooLarge {
        what: String,
        primary_key: KeyTuple,
        size: usize,
        limit: usize,
    },
    /// A split record misses chunks: it is never returned as data.
    #[error("record {} is torn: {detail}", t(.primary_key))]
    TornRecord {
        primary_key: KeyTuple,
        detail: String,
    },
    /// A record's stored bytes cannot be decoded or do not fit together.
    #[error("record {} is corrupt: {detail}", t(.primary_key))]
    CorruptRecord {
        primary_key: KeyTuple,
        detail: String,
    },
    /// A save would give a unique index two records with the same values.
    #[error("unique index `{index}`: values {} already belong to record {}", t(.values), t(.existing_primary_key))]
    UniquenessViolation {
        index: String,
        values: KeyTuple,
        existing_primary_key: KeyTuple,
    },
    /// The index exists but cannot be read in its current state.
    #[error("index `{index}` is not readable (state {state:?})")]
    IndexNotReadable { index: String, state: IndexState },
    /// The metadata has no such index.
    #[error("no index named `{index}`")]
    UnknownIndex { index: String },
    /// The operation needs another type of index.
    #[error("index `{index}` is a {actual} index; this operation needs {expected}")]
    WrongIndexType {
        index: String,
        actual: IndexType,
        expected: String,
    },
    /// An aggregated value does not fit a signed 64-bit integer.
    #[error("index `{index}`: value {value} of record {} does not fit in an i64", t(.primary_key))]
    AggregateValueOutOfRange {
        index: String,
        primary_key: KeyTuple,
        value: String,
    },
    /// More than 65,536 versioned saves in one transaction (the order is 2 bytes).
    #[error("more than 65536 record saves in one transaction")]
    TooManySavesInTransaction,
    /// An index expression produced a tuple with more than one record version.
    #[error("index `{index}` uses the record version more than once in one entry")]
    MultipleVersionsInEntry { index: String },
    /// A key in the store's records space is not a record key `(1, (pk...), suffix)`.
    /// `key` is the key's bytes after the records prefix.
    #[error("unreadable record key {}", crate::kv::printable(.key))]
    CorruptRecordKey { key: Vec<u8> },
    /// A caller's tuple (primary key, range bound, aggregate group) cannot be packed
    /// into a key: an integer of more than 255 bytes, or tuples nested more than
    /// [`MAX_TUPLE_NESTING`](crate::layout::MAX_TUPLE_NESTING) − 2 levels (keys add up
    /// to two; see [`check_packable`](crate::layout::check_packable)).
    #[error("invalid tuple: {detail}")]
    InvalidTuple { detail: String },
    /// Stored index or bookkeeping data could not be decoded.
    #[error("corrupt data in index `{index}`: {detail}")]
    CorruptIndex { index: String, detail: String },
}

impl RetryableError for RecordStoreError {
    fn fdb_error(&self) -> Option<FdbError> {
        match self {
            RecordStoreError::Fdb(e) => Some(*e),
            RecordStoreError::Store(StoreError::Fdb(e)) => Some(*e),
            _ => None,
        }
    }
}

/// Result of a record store operation.
pub type RecordStoreResult<T> = Result<T, RecordStoreError>;
