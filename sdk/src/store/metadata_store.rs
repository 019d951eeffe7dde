//! Record metadata saved in the database by version, so that services can open a
//! store without compiling the schema in.
//!
//! Layout under the metadata store's own subspace: `(version, chunk)` → bytes of the
//! persisted metadata (`schemas/fdb_records/metadata.proto`), split into chunks below
//! FoundationDB's value size limit.

use super::StoreError;
use crate::kv::{RangeOption, Transaction};
use crate::metadata::evolution::validate_evolution;
use crate::metadata::RecordMetaData;
use foundationdb_tuple::Subspace;

/// Largest chunk written (FoundationDB's value limit is 100,000 bytes).
const CHUNK_SIZE: usize = 90_000;

/// Saves and loads [`RecordMetaData`] by version under a subspace.
///
/// ```
/// use fdb_records::backend::embedded::EmbeddedDatabase;
/// use fdb_records::key_expression::field;
/// use fdb_records::kv::Database;
/// use fdb_records::metadata::{RecordMetaData, RecordTypeDef};
/// use fdb_records::store::{MetaDataStore, StoreError};
/// use foundationdb_tuple::Subspace;
/// # futures::executor::block_on(async {
/// # let pool = fdb_records::metadata::example_pool();
/// let metadata = RecordMetaData::builder(pool).version(4)
///     .record_type(RecordTypeDef::new("examples.users.User").primary_key(field("id")))
///     .build().unwrap();
/// let db = EmbeddedDatabase::in_memory().unwrap();
/// let store = MetaDataStore::new(Subspace::from(("acme", "metadata")));
/// db.run(|tx, _| { let (store, m) = (&store, &metadata); async move { store.save(&tx, m).await } }).await.unwrap();
/// let latest = db.run(|tx, _| { let store = &store; async move { store.load_latest(&tx).await } }).await.unwrap();
/// assert_eq!(latest.unwrap().version(), 4);
/// # });
/// ```
#[derive(Clone, Debug)]
pub struct MetaDataStore {
    subspace: Subspace,
}

impl MetaDataStore {
    /// A metadata store under `subspace`.
    pub fn new(subspace: Subspace) -> Self {
        MetaDataStore { subspace }
    }

    /// Saves `metadata` under its version. Saving the same metadata again is a no-op;
    /// a different metadata under an existing version is refused.
    pub async fn save<T: Transaction>(
        &self,
        tx: &T,
        metadata: &RecordMetaData,
    ) -> Result<(), StoreError> {
        let bytes = metadata.to_bytes();
        match self.load_bytes(tx, metadata.version()).await? {
            Some(existing) if existing == bytes => return Ok(()),
            Some(_) => {
                return Err(StoreError::MetaDataVersionTaken {
                    version: metadata.version(),
                })
            }
            None => {}
        }
        for (i, chunk) in bytes.chunks(CHUNK_SIZE).enumerate() {
            tx.set(
                &self
                    .subspace
                    .pack(&(i64::from(metadata.version()), i as i64)),
                chunk,
            );
        }
        if bytes.is_empty() {
            tx.set(
                &self.subspace.pack(&(i64::from(metadata.version()), 0i64)),
                &[],
            );
        }
        Ok(())
    }

    /// Saves `metadata` after checking it is a safe evolution of the latest saved one.
    pub async fn save_checked<T: Transaction>(
        &self,
        tx: &T,
        metadata: &RecordMetaData,
    ) -> Result<(), StoreError> {
        if let Some(latest) = self.load_latest(tx).await? {
            if latest.version() != metadata.version() {
                validate_evolution(&latest, metadata).map_err(StoreError::Evolution)?;
            }
        }
        self.save(tx, metadata).await
    }

    /// Loads one version, if saved.
    pub async fn load<T: Transaction>(
        &self,
        tx: &T,
        version: u32,
    ) -> Result<Option<RecordMetaData>, StoreError> {
        match self.load_bytes(tx, version).await? {
            Some(bytes) => Ok(Some(RecordMetaData::from_bytes(&bytes)?)),
            None => Ok(None),
        }
    }

    /// Loads the highest saved version, if any.
    pub async fn load_latest<T: Transaction>(
        &self,
        tx: &T,
    ) -> Result<Option<RecordMetaData>, StoreError> {
        let (begin, end) = self.subspace.range();
        let last = tx
            .get_range(
                &RangeOption::from_keys(&begin, &end)
                    .with_limit(1)
                    .reversed(),
                1,
                false,
            )
            .await?;
        let Some(kv) = last.key_values.first() else {
            return Ok(None);
        };
        let (version, _chunk): (i64, i64) = self
            .subspace
            .unpack(&kv.key)
            .map_err(|e| StoreError::Corrupt(format!("metadata store key: {e}")))?;
        let version = u32::try_from(version)
            .map_err(|_| StoreError::Corrupt(format!("metadata version {version}")))?;
        self.load(tx, version).await
    }

    async fn load_bytes<T: Transaction>(
        &self,
        tx: &T,
        version: u32,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let prefix = self.subspace.subspace(&(i64::from(version),));
        let chunks = tx
            .get_range_all(RangeOption::from_prefix(prefix.bytes()), false)
            .await?;
        if chunks.is_empty() {
            return Ok(None);
        }
        let mut bytes = Vec::new();
        for (expected, kv) in chunks.iter().enumerate() {
            let chunk: i64 = prefix
                .unpack(&kv.key)
                .map_err(|e| StoreError::Corrupt(format!("metadata chunk key: {e}")))?;
            if chunk != expected as i64 {
                return Err(StoreError::Corrupt(format!(
                    "metadata version {version}: chunk {expected} missing"
                )));
            }
            bytes.extend_from_slice(&kv.value);
        }
        Ok(Some(bytes))
    }
}
