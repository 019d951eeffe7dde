//! The store header and [`open_store`]: create on first open, read on later opens,
//! upgrade when the metadata version increases, refuse older metadata.
//!
//! # Conflicts
//!
//! The header must not become a hot key. An ordinary open *reads* it with a snapshot
//! read plus an explicit read-conflict on the header key alone, and never writes it,
//! so any number of concurrent opens and record writes commit without conflicting with
//! each other. Only a create or an upgrade writes the header, and then every
//! transaction that opened the store concurrently conflicts and retries — which is what
//! they must do, since they maintained the old index set. Index states (subspace 5) are
//! read with an ordinary range read: writers depend on them, and they change only when
//! an index changes state.
//!
//! # Caching
//!
//! Creates, upgrades and index-state changes also bump FoundationDB's metadata version
//! key, so an open of an unchanged store is answered by the
//! [store-state cache](super::state_cache) after one snapshot read of that key, with
//! the same two read conflicts (header key, index states) instead of the reads.
//!
//! ```
//! use fdb_records::backend::embedded::EmbeddedDatabase;
//! use fdb_records::key_expression::field;
//! use fdb_records::kv::Database;
//! use fdb_records::metadata::{RecordMetaData, RecordTypeDef};
//! use fdb_records::store::{open_store, OpenOptions, OpenOutcome, StoreError};
//! use foundationdb_tuple::Subspace;
//! # futures::executor::block_on(async {
//! # let pool = fdb_records::metadata::example_pool();
//! let metadata = RecordMetaData::builder(pool)
//!     .version(1)
//!     .record_type(RecordTypeDef::new("examples.users.User").primary_key(field("id")))
//!     .build().unwrap();
//! let db = EmbeddedDatabase::in_memory().unwrap();
//! let subspace = Subspace::from(("acme", "users"));
//! let opened = db.run(|tx, _| {
//!     let (subspace, metadata) = (subspace.clone(), &metadata);
//!     async move { open_store(&tx, subspace, metadata, &OpenOptions::default()).await }
//! }).await.unwrap();
//! assert_eq!(opened.outcome, OpenOutcome::Created);
//! assert_eq!(opened.header().metadata_version, 1);
//! # });
//! ```

use super::state_cache::{invalidate_store_state_caches, StoreState, StoreStateCache};
use super::StoreError;
use crate::kv::{
    code, key_after, strinc, ConflictRangeType, RangeOption, Transaction, METADATA_VERSION_KEY,
};
use crate::layout::{StoreLayout, FORMAT_VERSION};
use crate::metadata::RecordMetaData;
use crate::proto;
use foundationdb_tuple::Subspace;
use prost::Message;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The decoded store header (`schemas/fdb_records/store_header.proto`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecordStoreHeader {
    pub format_version: u32,
    pub metadata_version: u32,
    pub user_version: u32,
    /// Caller-supplied time of the last header change.
    pub last_update_time: u64,
    /// Caller-supplied description of the last header change.
    pub last_update_by: String,
    /// Indexes the store maintains → metadata version that added them.
    pub indexes: BTreeMap<String, u32>,
    /// Removed indexes → metadata version that removed them.
    pub former_indexes: BTreeMap<String, u32>,
}

impl RecordStoreHeader {
    /// Encodes as the header protobuf.
    pub fn to_bytes(&self) -> Vec<u8> {
        proto::StoreHeader {
            format_version: self.format_version,
            metadata_version: self.metadata_version,
            user_version: self.user_version,
            last_update_time: self.last_update_time,
            last_update_by: self.last_update_by.clone(),
            indexes: self
                .indexes
                .iter()
                .map(|(name, added)| proto::StoreIndex {
                    name: name.clone(),
                    added_version: *added,
                })
                .collect(),
            former_indexes: self
                .former_indexes
                .iter()
                .map(|(name, removed)| proto::FormerIndex {
                    name: name.clone(),
                    removed_version: *removed,
                })
                .collect(),
        }
        .encode_to_vec()
    }

    /// Decodes the header protobuf.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, StoreError> {
        let h =
            proto::StoreHeader::decode(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(RecordStoreHeader {
            format_version: h.format_version,
            metadata_version: h.metadata_version,
            user_version: h.user_version,
            last_update_time: h.last_update_time,
            last_update_by: h.last_update_by,
            indexes: h
                .indexes
                .into_iter()
                .map(|i| (i.name, i.added_version))
                .collect(),
            former_indexes: h
                .former_indexes
                .into_iter()
                .map(|i| (i.name, i.removed_version))
                .collect(),
        })
    }
}

/// An index's state. Only non-readable states are stored (`(5, index)` → byte).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IndexState {
    /// Maintained and queryable.
    Readable,
    /// Maintained on writes but not yet queryable (being built).
    WriteOnly,
    /// Neither maintained nor queryable.
    Disabled,
}

impl IndexState {
    /// The stored byte (`Readable` is never stored).
    pub fn code(self) -> u8 {
        match self {
            IndexState::Readable => 0,
            IndexState::WriteOnly => 1,
            IndexState::Disabled => 2,
        }
    }
    /// Decodes a stored byte.
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(IndexState::Readable),
            1 => Some(IndexState::WriteOnly),
            2 => Some(IndexState::Disabled),
            _ => None,
        }
    }
}

/// Whether the store must already exist.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StoreExistence {
    #[default]
    CreateOrOpen,
    MustExist,
    MustNotExist,
}

/// Which [store-state cache](super::state_cache) an open may use.
#[derive(Clone, Debug, Default)]
pub enum StateCacheChoice {
    /// The database's own ([`Transaction::store_state_cache`]).
    #[default]
    Database,
    /// None: read the header and index states.
    Off,
    /// This one (for example, one per simulated client in a test).
    Use(Arc<StoreStateCache>),
}

/// Options of [`open_store`]. No clock is read: pass the time to record yourself.
#[derive(Clone, Debug, Default)]
pub struct OpenOptions {
    pub existence: StoreExistence,
    /// The application's user version: `None` keeps the store's; greater upgrades it;
    /// smaller is refused.
    pub user_version: Option<u32>,
    /// Recorded as `last_update_time` when the header is written (e.g. ms since epoch).
    pub update_time: u64,
    /// Recorded as `last_update_by` when the header is written.
    pub update_by: String,
    /// Where an unchanged store's state may come from without reading it.
    pub state_cache: StateCacheChoice,
}

/// What [`open_store`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpenOutcome {
    /// The store did not exist and was created (every index readable).
    Created,
    /// The store was opened as is; nothing was written.
    Opened,
    /// The header was rewritten: new metadata and/or user version.
    Upgraded {
        from_metadata_version: u32,
        /// New indexes: write-only, or readable at once if the store had no records.
        added_indexes: Vec<String>,
        /// Removed indexes: their data was cleared; they are now former indexes.
        removed_indexes: Vec<String>,
    },
}

/// An opened record store.
#[derive(Clone, Debug)]
pub struct OpenedStore {
    pub layout: StoreLayout,
    pub outcome: OpenOutcome,
    /// Its header and index states (shared with the state cache).
    pub state: Arc<StoreState>,
}

impl OpenedStore {
    /// The store header.
    pub fn header(&self) -> &RecordStoreHeader {
        &self.state.header
    }
    /// State of every index the store maintains.
    pub fn index_states(&self) -> &BTreeMap<String, IndexState> {
        &self.state.index_states
    }
}

/// Opens (creating or upgrading as needed) the record store under `subspace` in the
/// caller's transaction. See the [module docs](self) for the conflict behaviour; an
/// unchanged store comes from the [store-state cache](super::state_cache) when one
/// is available, with the same conflicts.
pub async fn open_store<T: Transaction>(
    tx: &T,
    subspace: Subspace,
    metadata: &RecordMetaData,
    options: &OpenOptions,
) -> Result<OpenedStore, StoreError> {
    let layout = StoreLayout::new(subspace);
    let shared;
    let cache = match &options.state_cache {
        StateCacheChoice::Database => tx.store_state_cache(),
        StateCacheChoice::Off => None,
        StateCacheChoice::Use(cache) => {
            shared = cache.clone();
            Some(&*shared)
        }
    };
    // A transaction that changed store state reads its own: nothing cached fits it,
    // and what it reads may never commit.
    let cache = cache.filter(|_| !tx.store_state_changed());
    // The metadata version key as of this transaction's read version; `None` when it
    // cannot vouch for a cached state (no cache, or never bumped).
    let stamp = match cache {
        Some(_) => match tx.get(METADATA_VERSION_KEY, true).await {
            Ok(stamp) => stamp,
            Err(e) if e.code() == code::ACCESSED_UNREADABLE => None,
            Err(e) => return Err(e.into()),
        },
        None => None,
    };
    if let (Some(cache), Some(stamp)) = (cache, &stamp) {
        if let Some(state) = cache.get(layout.store().bytes(), stamp) {
            if let Some(opened) = open_cached(tx, &layout, state, metadata, options)? {
                return Ok(opened);
            }
        }
    } else if let Some(cache) = cache {
        cache.miss();
    }
    let opened = open_uncached(tx, layout, metadata, options).await?;
    if let (Some(cache), Some(stamp)) = (cache, stamp) {
        if opened.outcome == OpenOutcome::Opened
            && opened.header().format_version >= CACHEABLE_FORMAT_VERSION
        {
            cache.insert(opened.layout.store().bytes(), stamp, opened.state.clone());
        }
    }
    Ok(opened)
}

/// The first format whose every header and index-state write bumps the metadata
/// version key: older stores may have been changed by an SDK that does not, so their
/// state is never cached.
const CACHEABLE_FORMAT_VERSION: u32 = 2;

/// An open answered by a cached state, or `None` when the metadata asks for an upgrade
/// (which must read and write the stored state).
fn open_cached<T: Transaction>(
    tx: &T,
    layout: &StoreLayout,
    state: Arc<StoreState>,
    metadata: &RecordMetaData,
    options: &OpenOptions,
) -> Result<Option<OpenedStore>, StoreError> {
    // The conflicts an uncached open takes, whatever it then decides: the header key and
    // the index states.
    let header_key = layout.header_key();
    tx.add_conflict_range(
        &header_key,
        &key_after(&header_key),
        ConflictRangeType::Read,
    )?;
    let states = layout.index_states();
    tx.add_conflict_range(
        states.bytes(),
        &strinc(states.bytes()),
        ConflictRangeType::Read,
    )?;
    if options.existence == StoreExistence::MustNotExist {
        return Err(StoreError::StoreAlreadyExists);
    }
    if check_existing(&state.header, metadata, options)? != OpenPlan::AsIs {
        return Ok(None);
    }
    Ok(Some(OpenedStore {
        layout: layout.clone(),
        outcome: OpenOutcome::Opened,
        state,
    }))
}

async fn open_uncached<T: Transaction>(
    tx: &T,
    layout: StoreLayout,
    metadata: &RecordMetaData,
    options: &OpenOptions,
) -> Result<OpenedStore, StoreError> {
    let header_key = layout.header_key();
    let existing = tx.get(&header_key, true).await?;
    tx.add_conflict_range(
        &header_key,
        &key_after(&header_key),
        ConflictRangeType::Read,
    )?;

    let (header, outcome) = match existing {
        None => {
            if options.existence == StoreExistence::MustExist {
                return Err(StoreError::StoreDoesNotExist);
            }
            let (begin, end) = layout.store().range();
            let any = tx
                .get_range(
                    &RangeOption::from_keys(&begin, &end).with_limit(1),
                    1,
                    false,
                )
                .await?;
            if !any.key_values.is_empty() {
                return Err(StoreError::DataWithoutHeader);
            }
            let header = RecordStoreHeader {
                format_version: FORMAT_VERSION,
                metadata_version: metadata.version(),
                user_version: options.user_version.unwrap_or(0),
                last_update_time: options.update_time,
                last_update_by: options.update_by.clone(),
                indexes: metadata
                    .indexes()
                    .keys()
                    .map(|name| (name.clone(), metadata.version()))
                    .collect(),
                former_indexes: BTreeMap::new(),
            };
            write_header(tx, &layout, &header);
            (header, OpenOutcome::Created)
        }
        Some(bytes) => {
            if options.existence == StoreExistence::MustNotExist {
                return Err(StoreError::StoreAlreadyExists);
            }
            let stored = RecordStoreHeader::from_bytes(&bytes)?;
            open_existing(tx, &layout, stored, metadata, options).await?
        }
    };

    let states = tx
        .get_range_all(
            RangeOption::from_prefix(layout.index_states().bytes()),
            false,
        )
        .await?;
    let mut stored_states = BTreeMap::new();
    for kv in states {
        let name: String = layout
            .index_states()
            .unpack(&kv.key)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let state = kv
            .value
            .first()
            .and_then(|c| IndexState::from_code(*c))
            .ok_or_else(|| StoreError::Corrupt(format!("state of index `{name}`")))?;
        stored_states.insert(name, state);
    }
    let index_states = header
        .indexes
        .keys()
        .map(|name| {
            (
                name.clone(),
                stored_states
                    .get(name)
                    .copied()
                    .unwrap_or(IndexState::Readable),
            )
        })
        .collect();
    Ok(OpenedStore {
        layout,
        outcome,
        state: Arc::new(StoreState {
            header,
            index_states,
        }),
    })
}

/// What opening an existing store with `metadata` requires.
#[derive(Debug, PartialEq, Eq)]
enum OpenPlan {
    AsIs,
    Upgrade {
        added: Vec<String>,
        removed: Vec<String>,
        user_version: u32,
    },
}

/// Checks a stored header against the metadata and options, without reading or writing.
fn check_existing(
    stored: &RecordStoreHeader,
    metadata: &RecordMetaData,
    options: &OpenOptions,
) -> Result<OpenPlan, StoreError> {
    if stored.format_version > FORMAT_VERSION {
        return Err(StoreError::FormatTooNew {
            store: stored.format_version,
            supported: FORMAT_VERSION,
        });
    }
    if metadata.version() < stored.metadata_version {
        return Err(StoreError::MetadataTooOld {
            store: stored.metadata_version,
            given: metadata.version(),
        });
    }
    let user_version = options.user_version.unwrap_or(stored.user_version);
    if user_version < stored.user_version {
        return Err(StoreError::UserVersionTooOld {
            store: stored.user_version,
            given: user_version,
        });
    }
    let added: Vec<String> = metadata
        .indexes()
        .keys()
        .filter(|n| !stored.indexes.contains_key(*n))
        .cloned()
        .collect();
    let removed: Vec<String> = stored
        .indexes
        .keys()
        .filter(|n| metadata.index(n).is_none())
        .cloned()
        .collect();
    if metadata.version() == stored.metadata_version {
        if !added.is_empty() || !removed.is_empty() {
            return Err(StoreError::IndexSetMismatch {
                version: stored.metadata_version,
                missing: removed,
                unexpected: added,
            });
        }
        if user_version == stored.user_version && stored.format_version == FORMAT_VERSION {
            return Ok(OpenPlan::AsIs);
        }
    }
    Ok(OpenPlan::Upgrade {
        added,
        removed,
        user_version,
    })
}

/// Writes the header and bumps the metadata version key, so that every store-state
/// cache reads the new state.
fn write_header<T: Transaction>(tx: &T, layout: &StoreLayout, header: &RecordStoreHeader) {
    tx.set(&layout.header_key(), &header.to_bytes());
    invalidate_store_state_caches(tx);
}

/// Sets an index's state (`Readable` is stored as no key) and bumps the metadata
/// version key, so that every store-state cache reads the new state.
pub(crate) fn write_index_state<T: Transaction>(
    tx: &T,
    layout: &StoreLayout,
    index: &str,
    state: IndexState,
) {
    let key = layout.index_state_key(index);
    match state {
        IndexState::Readable => tx.clear(&key),
        other => tx.set(&key, &[other.code()]),
    }
    invalidate_store_state_caches(tx);
}

async fn open_existing<T: Transaction>(
    tx: &T,
    layout: &StoreLayout,
    stored: RecordStoreHeader,
    metadata: &RecordMetaData,
    options: &OpenOptions,
) -> Result<(RecordStoreHeader, OpenOutcome), StoreError> {
    let (added, removed, user_version) = match check_existing(&stored, metadata, options)? {
        OpenPlan::AsIs => return Ok((stored, OpenOutcome::Opened)),
        OpenPlan::Upgrade {
            added,
            removed,
            user_version,
        } => (added, removed, user_version),
    };

    // Upgrade: the only path (with create) that writes the header.
    let mut header = stored.clone();
    if !added.is_empty() {
        // Not a snapshot read: if a concurrent writer inserts the first record, one of
        // the two transactions must retry, or a new index could be marked readable
        // while missing that record.
        let records = layout.records();
        let (begin, end) = records.range();
        let first = tx
            .get_range(
                &RangeOption::from_keys(&begin, &end).with_limit(1),
                1,
                false,
            )
            .await?;
        let empty = first.key_values.is_empty();
        for name in &added {
            let state = if empty {
                IndexState::Readable
            } else {
                IndexState::WriteOnly
            };
            write_index_state(tx, layout, name, state);
            header.indexes.insert(name.clone(), metadata.version());
        }
    }
    for name in &removed {
        for subspace in layout.index_data_subspaces(name) {
            let (begin, end) = subspace.range();
            tx.clear_range(&begin, &end);
            tx.clear(subspace.bytes());
        }
        tx.clear(&layout.index_state_key(name));
        header.indexes.remove(name);
        header
            .former_indexes
            .insert(name.clone(), metadata.version());
    }
    header.format_version = FORMAT_VERSION;
    header.metadata_version = metadata.version();
    header.user_version = user_version;
    header.last_update_time = options.update_time;
    header.last_update_by = options.update_by.clone();
    write_header(tx, layout, &header);
    Ok((
        header,
        OpenOutcome::Upgraded {
            from_metadata_version: stored.metadata_version,
            added_indexes: added,
            removed_indexes: removed,
        },
    ))
}
