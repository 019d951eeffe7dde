//! The store-state cache: each store's header and index states, kept between
//! transactions, so that opening a store whose state has not changed costs one read of
//! FoundationDB's [metadata version key](crate::kv::METADATA_VERSION_KEY) instead of
//! reading and decoding its header and index states (Apple's record layer calls this
//! the meta-data-version-stamp store-state cache).
//!
//! # Why it is exact
//!
//! Every write of a store's header or index states made by this SDK (store creation,
//! upgrades, index-state changes of the [online builder](super::builder)) bumps the
//! metadata version key in the same transaction, and only stores at
//! [`FORMAT_VERSION`](crate::layout::FORMAT_VERSION) 2 or later, whose every writer
//! does so, are cached. An entry remembers the key's value read in the transaction
//! that read the state; an open that reads the same value knows that no bump, hence
//! no state change, committed in between, and uses the entry. It still adds the read
//! conflicts an uncached open takes (the header key and the index-state range), so a
//! concurrent state change makes it conflict exactly as before. A transaction that
//! changed the state itself is marked ([`Transaction::mark_store_state_changed`]): its
//! opens read the state directly and cache nothing (it could not tell its own changes
//! from committed ones: FoundationDB makes its own bump unreadable, or, with snapshot
//! read-your-writes off, shows the old value). The key is read as a snapshot: bumps
//! never conflict with opens.
//!
//! Tools that write a store's header or index-state keys directly must call
//! [`invalidate_store_state_caches`] in that transaction before writing them or opening
//! the store, or caches keep serving the old state.
//!
//! Each database handle owns one cache ([`Transaction::store_state_cache`]); all its
//! transactions share it. [`OpenOptions::state_cache`](super::OpenOptions) turns it
//! off for one open or substitutes another cache (one cache must only ever serve one
//! database: entries are keyed by subspace, and two databases may show the same
//! metadata version).

use super::header::{IndexState, RecordStoreHeader};
use crate::kv::{MutationType, Transaction, METADATA_VERSION_KEY, METADATA_VERSION_REQUIRED_VALUE};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// Default number of stores a cache remembers.
pub const DEFAULT_CAPACITY: usize = 10_000;

/// A store's state as read when it was opened: shared, never copied, by every handle
/// opened from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreState {
    pub header: RecordStoreHeader,
    /// State of every index the store maintains.
    pub index_states: BTreeMap<String, IndexState>,
}

struct Entry {
    /// The metadata version key's value when `state` was read.
    stamp: Vec<u8>,
    state: Arc<StoreState>,
}

/// Record-store states by store subspace, valid as long as the metadata version key
/// is unchanged. See the [module docs](self).
///
/// ```
/// use fdb_records::backend::embedded::EmbeddedDatabase;
/// use fdb_records::key_expression::field;
/// use fdb_records::kv::{Database, Transaction};
/// use fdb_records::metadata::{RecordMetaData, RecordTypeDef};
/// use fdb_records::store::{RecordStore, RecordStoreError};
/// use foundationdb_tuple::Subspace;
/// use std::sync::Arc;
/// # futures::executor::block_on(async {
/// # let pool = fdb_records::metadata::example_pool();
/// let metadata = Arc::new(RecordMetaData::builder(pool)
///     .record_type(RecordTypeDef::new("examples.users.User").primary_key(field("id")))
///     .build().unwrap());
/// let db = EmbeddedDatabase::in_memory().unwrap();
/// for _ in 0..3 {
///     db.run(|tx, _| {
///         let metadata = metadata.clone();
///         async move {
///             RecordStore::open(&tx, Subspace::from("app"), metadata).await?;
///             Ok::<_, RecordStoreError>(())
///         }
///     }).await.unwrap();
/// }
/// let cache = db.create_transaction().unwrap().store_state_cache().unwrap().stats();
/// // The first open created the store; the second read its state; the third used it.
/// assert_eq!((cache.hits, cache.misses), (1, 2));
/// # });
/// ```
pub struct StoreStateCache {
    entries: RwLock<BTreeMap<Vec<u8>, Entry>>,
    capacity: usize,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// How often a cache answered an open.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StateCacheStats {
    /// Opens served from the cache.
    pub hits: u64,
    /// Opens that read the store's state (no entry, a stale one, or none allowed).
    pub misses: u64,
    /// Stores currently remembered.
    pub entries: usize,
}

impl Default for StoreStateCache {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }
}

impl fmt::Debug for StoreStateCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreStateCache")
            .field("stats", &self.stats())
            .finish()
    }
}

impl StoreStateCache {
    /// An empty cache remembering up to [`DEFAULT_CAPACITY`] stores.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty cache remembering up to `capacity` stores (at least one); when full,
    /// the store with the smallest subspace is forgotten first.
    pub fn with_capacity(capacity: usize) -> Self {
        StoreStateCache {
            entries: RwLock::new(BTreeMap::new()),
            capacity: capacity.max(1),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// Hit and miss counts since the cache was created.
    pub fn stats(&self) -> StateCacheStats {
        StateCacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries: self.read().len(),
        }
    }

    /// Forgets every store.
    pub fn clear(&self) {
        self.write().clear();
    }

    /// The state cached for the store at `subspace`, if it was read when the metadata
    /// version key held `stamp`.
    pub(crate) fn get(&self, subspace: &[u8], stamp: &[u8]) -> Option<Arc<StoreState>> {
        let found = self
            .read()
            .get(subspace)
            .filter(|e| e.stamp == stamp)
            .map(|e| e.state.clone());
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Counts an open that could not use the cache at all.
    pub(crate) fn miss(&self) {
        self.misses.fetch_add(1, Ordering::Relaxed);
    }

    /// Remembers `state`, read while the metadata version key held `stamp`.
    pub(crate) fn insert(&self, subspace: &[u8], stamp: Vec<u8>, state: Arc<StoreState>) {
        let mut entries = self.write();
        if entries.len() >= self.capacity && !entries.contains_key(subspace) {
            entries.pop_first();
        }
        entries.insert(subspace.to_vec(), Entry { stamp, state });
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<Vec<u8>, Entry>> {
        // Entries are replaced whole, so a panic elsewhere cannot leave one half-written.
        self.entries.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<Vec<u8>, Entry>> {
        self.entries.write().unwrap_or_else(|p| p.into_inner())
    }
}

/// Bumps the metadata version key, so that every store-state cache (in this process
/// and in every other client of the database) reads store states afresh, and marks
/// the transaction so that its own opens read the state and cache nothing. The SDK
/// does it whenever it writes a header or an index state; a tool writing such keys by
/// other means must call it in the same transaction *before* writing them or opening
/// a store (an open before it could cache the tool's uncommitted writes).
pub fn invalidate_store_state_caches<T: Transaction>(tx: &T) {
    tx.mark_store_state_changed();
    tx.atomic_op(
        METADATA_VERSION_KEY,
        &METADATA_VERSION_REQUIRED_VALUE,
        MutationType::SetVersionstampedValue,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(version: u32) -> Arc<StoreState> {
        Arc::new(StoreState {
            header: RecordStoreHeader {
                metadata_version: version,
                ..RecordStoreHeader::default()
            },
            index_states: BTreeMap::new(),
        })
    }

    #[test]
    fn an_entry_serves_only_its_stamp() {
        let cache = StoreStateCache::new();
        cache.insert(b"a", b"1".to_vec(), state(1));
        assert_eq!(cache.get(b"a", b"1"), Some(state(1)));
        assert_eq!(cache.get(b"a", b"2"), None, "stale");
        assert_eq!(cache.get(b"b", b"1"), None, "another store");
        cache.insert(b"a", b"2".to_vec(), state(2));
        assert_eq!(cache.get(b"a", b"2"), Some(state(2)));
        let stats = cache.stats();
        assert_eq!((stats.hits, stats.misses, stats.entries), (2, 2, 1));
        cache.clear();
        assert_eq!(cache.get(b"a", b"2"), None);
    }

    #[test]
    fn a_full_cache_forgets_the_smallest_subspace_first() {
        let cache = StoreStateCache::with_capacity(2);
        cache.insert(b"b", b"1".to_vec(), state(1));
        cache.insert(b"a", b"1".to_vec(), state(1));
        cache.insert(b"b", b"2".to_vec(), state(2));
        assert_eq!(cache.stats().entries, 2, "replacing is not growing");
        cache.insert(b"c", b"1".to_vec(), state(1));
        assert_eq!(cache.get(b"a", b"1"), None);
        assert!(cache.get(b"b", b"2").is_some() && cache.get(b"c", b"1").is_some());
    }
}
