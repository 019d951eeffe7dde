//! Which database the examples run on: the embedded engine (default, on disk in a
//! temporary directory) or FoundationDB (`--features fdb`, the default cluster file or
//! `FDB_CLUSTER_FILE`). Everything else in the examples is written against
//! `fdb_records::kv::Database` and does not change.

use fdb_records::kv::{Database, FdbError, Transaction};
use foundationdb_tuple::Subspace;
use std::path::PathBuf;

/// The database type the examples use.
#[cfg(not(feature = "fdb"))]
pub type Db = fdb_records::backend::embedded::EmbeddedDatabase;
/// The database type the examples use.
#[cfg(feature = "fdb")]
pub type Db = fdb_records::backend::fdb::FdbDatabase;

/// An open database plus what must outlive it: the temporary directory of the
/// embedded engine (removed on drop) or FoundationDB's client network.
pub struct Backend {
    pub db: Db,
    /// A human-readable description of where the data lives.
    pub location: String,
    dir: Option<PathBuf>,
    #[cfg(feature = "fdb")]
    _network: foundationdb::api::NetworkAutoStop,
}

impl Backend {
    /// Opens the backend for the example `name`.
    #[cfg(not(feature = "fdb"))]
    pub fn open(name: &str) -> Result<Backend, Box<dyn std::error::Error + Send + Sync>> {
        let dir = std::env::temp_dir().join(format!(
            "fdb-records-{name}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("data.redb");
        let db = fdb_records::backend::embedded::EmbeddedDatabase::open(&path)?;
        Ok(Backend {
            db,
            location: format!("embedded engine at {}", path.display()),
            dir: Some(dir),
        })
    }

    /// Opens the backend for the example `name`.
    #[cfg(feature = "fdb")]
    pub fn open(_name: &str) -> Result<Backend, Box<dyn std::error::Error + Send + Sync>> {
        // SAFETY: booted once per process, and the guard is dropped with the backend,
        // after the database.
        let network = unsafe { foundationdb::boot() };
        let db = fdb_records::backend::fdb::FdbDatabase::from_cluster_file(None)?;
        Ok(Backend {
            db,
            location: "FoundationDB (default cluster file or FDB_CLUSTER_FILE)".into(),
            dir: None,
            _network: network,
        })
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Clears everything under `subspace`, so that an example starts from an empty store
/// on a shared cluster too.
pub async fn reset(db: &Db, subspace: &Subspace) -> Result<(), FdbError> {
    let (begin, end) = subspace.range();
    db.run(|tx, _| {
        let (begin, end) = (begin.clone(), end.clone());
        async move {
            tx.clear_range(&begin, &end);
            Ok::<_, FdbError>(())
        }
    })
    .await
}
