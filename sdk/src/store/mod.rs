//! The record store: [`RecordStore`] (records and their indexes, changed together),
//! index scans and aggregate reads, the [online index builder](builder), the
//! [consistency checker](checker), and the persistent scaffolding underneath — the
//! [header] (open, create, upgrade) and the [metadata store](metadata_store) (record
//! metadata saved in the database by version). See the
//! [record store guide](crate::record_store_guide).

pub mod builder;
pub mod checker;
mod envelope;
mod error;
pub mod header;
mod index_scan;
pub mod metadata_store;
mod record_store;
pub mod split;
pub mod state_cache;
mod version;

pub use builder::{BuildConfig, BuildReport, OnlineIndexBuilder};
pub use checker::{check_store, CheckReport, Problem, StoreChecker};
pub use error::{RecordStoreError, RecordStoreResult};
pub use header::{
    open_store, IndexState, OpenOptions, OpenOutcome, OpenedStore, RecordStoreHeader,
    StateCacheChoice, StoreExistence,
};
pub use index_scan::{IndexEntry, TupleRange};
pub use metadata_store::MetaDataStore;
pub use record_store::{
    RecordExistence, RecordRange, RecordStore, SavedRecord, ScanOptions, StoredRecord,
};
pub use state_cache::{
    invalidate_store_state_caches, StateCacheStats, StoreState, StoreStateCache,
};
pub use version::RecordVersion;

pub(crate) use record_store::{check_bounds, check_tuple, LastRecordType, RawRecord};

use crate::kv::{FdbError, RetryableError};
use crate::metadata::evolution::EvolutionError;
use crate::metadata::MetaDataError;

/// Why opening a store or loading/saving metadata failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A FoundationDB error (retryable ones are retried by [`crate::kv::Database::run`]).
    #[error(transparent)]
    Fdb(#[from] FdbError),
    /// The store was last opened with newer metadata: this process's schema is stale.
    #[error("metadata version {given} is older than the store's metadata version {store}")]
    MetadataTooOld { store: u32, given: u32 },
    /// The given user version is older than the store's.
    #[error("user version {given} is older than the store's user version {store}")]
    UserVersionTooOld { store: u32, given: u32 },
    /// The store was written by a newer SDK.
    #[error("store format version {store} is newer than this SDK's {supported}")]
    FormatTooNew { store: u32, supported: u32 },
    /// Same metadata version, different index set: two different metadata share a version.
    #[error("metadata version {version} does not match the store: indexes missing from metadata {missing:?}, unknown to the store {unexpected:?}")]
    IndexSetMismatch {
        version: u32,
        missing: Vec<String>,
        unexpected: Vec<String>,
    },
    /// The header or an index state could not be decoded.
    #[error("corrupt store header or index state: {0}")]
    Corrupt(String),
    /// The store holds data but has no header (it was not created by this SDK, or the header was cleared).
    #[error("the store's subspace holds data but no header")]
    DataWithoutHeader,
    #[error("the record store does not exist")]
    StoreDoesNotExist,
    #[error("the record store already exists")]
    StoreAlreadyExists,
    /// Persisted metadata is invalid.
    #[error(transparent)]
    MetaData(#[from] MetaDataError),
    /// A different metadata was already saved under this version.
    #[error("a different metadata is already saved as version {version}")]
    MetaDataVersionTaken { version: u32 },
    /// The metadata is not a safe evolution of the latest saved one.
    #[error("unsafe metadata evolution: {0:?}")]
    Evolution(Vec<EvolutionError>),
}

impl RetryableError for StoreError {
    fn fdb_error(&self) -> Option<FdbError> {
        match self {
            StoreError::Fdb(e) => Some(*e),
            _ => None,
        }
    }
}
