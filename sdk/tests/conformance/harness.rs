//! The backends under test and the helpers every test shares.

use fdb_records::backend::embedded::{Clock, EmbeddedDatabase, FaultConfig, ManualClock};
use fdb_records::kv::{
    Committed, Database, FdbError, FdbResult, KeyValue, RangeOption, RetryableError, Transaction,
};
use std::fmt::Debug;
use std::sync::Mutex;
use std::time::Duration;

/// One backend, as the suite sees it: a fresh empty keyspace per test plus the
/// capabilities that only some backends have.
pub trait Harness: Sized + Send + Sync + 'static {
    type Db: Database;
    /// Backend name printed in skip messages.
    const NAME: &'static str;

    /// A fresh, empty keyspace for the test `test`; `None` when the backend is not
    /// available in this environment (a skip message has then been printed).
    fn create(test: &str) -> Option<Self>;

    /// The test this harness was created for.
    fn test_name(&self) -> &str;

    /// A handle on the database (cheap clone).
    fn db(&self) -> Self::Db;

    /// Every key a test uses starts with this prefix.
    fn prefix(&self) -> &[u8];

    /// Whether the whole keyspace belongs to this test (so "before the first key" and
    /// "after the last key" are observable).
    fn isolated(&self) -> bool;

    /// Lets `by` of the backend's time pass (manual clock, or a real sleep).
    fn pass_time(&self, by: Duration);

    /// Fault injection, when the backend supports it.
    fn faults(&self) -> Option<&dyn FaultControl> {
        None
    }

    /// Whether [`Harness::reopen`] is supported.
    fn can_reopen(&self) -> bool {
        false
    }

    /// Closes the database and opens it again from its durable state. Every handle the
    /// test obtained from [`Harness::db`] must have been dropped before.
    fn reopen(&self) {
        panic!("{} cannot reopen its database", Self::NAME);
    }

    /// The key `prefix + suffix`.
    fn k(&self, suffix: &str) -> Vec<u8> {
        self.kb(suffix.as_bytes())
    }

    /// The key `prefix + suffix` for a binary suffix.
    fn kb(&self, suffix: &[u8]) -> Vec<u8> {
        let mut key = self.prefix().to_vec();
        key.extend_from_slice(suffix);
        key
    }

    /// The keys `prefix + s` for each suffix.
    fn ks(&self, suffixes: &[&str]) -> Vec<Vec<u8>> {
        suffixes.iter().map(|s| self.k(s)).collect()
    }

    /// A key-value pair under the prefix.
    fn kv(&self, suffix: &str, value: &[u8]) -> KeyValue {
        KeyValue::new(self.k(suffix), value.to_vec())
    }

    /// Reports that (part of) the current test is skipped on this backend.
    fn skip(&self, why: &str) {
        println!("SKIPPED [{}] {}: {why}", Self::NAME, self.test_name());
    }
}

/// Runtime control over the embedded engine's fault injection and clock.
pub trait FaultControl: Sync {
    /// Switches fault injection; `None` turns it off.
    fn set_faults(&self, config: Option<FaultConfig>);
    /// The engine's current time.
    fn now(&self) -> Duration;
}

/// Entry point used by `conformance!`: builds the harness and runs the test body.
pub fn run<H: Harness>(module: &str, test: &str, body: fn(&H)) {
    let module = module.strip_prefix("conformance::").unwrap_or(module);
    let name = format!("{module}::{test}");
    match H::create(&name) {
        Some(h) => body(&h),
        None => println!("SKIPPED [{}] {name}: backend not available", H::NAME),
    }
}

// ---------------------------------------------------------------------------------
// Embedded engine

/// The embedded engine on a [`ManualClock`]; on disk in a temporary directory when
/// `DURABLE`, in memory otherwise.
pub struct Embedded<const DURABLE: bool> {
    // Declared before `dir` so the database is closed before its directory goes.
    db: Mutex<Option<EmbeddedDatabase>>,
    name: String,
    clock: ManualClock,
    dir: Option<tempfile::TempDir>,
}

pub type EmbeddedMemory = Embedded<false>;
pub type EmbeddedDisk = Embedded<true>;

impl<const DURABLE: bool> Embedded<DURABLE> {
    fn open(clock: &ManualClock, dir: Option<&tempfile::TempDir>) -> EmbeddedDatabase {
        let builder = EmbeddedDatabase::builder().clock(clock.clone());
        let opened = match dir {
            Some(dir) => builder.open(dir.path().join("conformance.redb")),
            None => builder.in_memory(),
        };
        opened.unwrap_or_else(|e| panic!("opening the embedded engine failed: {e:?}"))
    }

    fn current(&self) -> EmbeddedDatabase {
        self.db
            .lock()
            .expect("harness lock")
            .clone()
            .expect("database is open")
    }
}

impl<const DURABLE: bool> Harness for Embedded<DURABLE> {
    type Db = EmbeddedDatabase;
    const NAME: &'static str = if DURABLE {
        "embedded-disk"
    } else {
        "embedded-memory"
    };

    fn create(test: &str) -> Option<Self> {
        let clock = ManualClock::new();
        let dir = DURABLE.then(|| tempfile::tempdir().expect("temporary directory"));
        let db = Self::open(&clock, dir.as_ref());
        Some(Embedded {
            name: test.to_string(),
            clock,
            dir,
            db: Mutex::new(Some(db)),
        })
    }

    fn test_name(&self) -> &str {
        &self.name
    }

    fn db(&self) -> EmbeddedDatabase {
        self.current()
    }

    fn prefix(&self) -> &[u8] {
        b"t/"
    }

    fn isolated(&self) -> bool {
        true
    }

    fn pass_time(&self, by: Duration) {
        self.clock.advance(by);
    }

    fn faults(&self) -> Option<&dyn FaultControl> {
        Some(self)
    }

    fn can_reopen(&self) -> bool {
        DURABLE
    }

    fn reopen(&self) {
        assert!(DURABLE, "an in-memory database cannot be reopened");
        let mut slot = self.db.lock().expect("harness lock");
        drop(slot.take());
        *slot = Some(Self::open(&self.clock, self.dir.as_ref()));
    }
}

impl<const DURABLE: bool> FaultControl for Embedded<DURABLE> {
    fn set_faults(&self, config: Option<FaultConfig>) {
        self.current().set_faults(config);
    }
    fn now(&self) -> Duration {
        self.clock.now()
    }
}

// ---------------------------------------------------------------------------------
// FoundationDB

#[cfg(any(feature = "fdb", feature = "fdb-7_4"))]
pub use fdb_cluster::FdbCluster;

#[cfg(any(feature = "fdb", feature = "fdb-7_4"))]
mod fdb_cluster {
    use super::*;
    use fdb_records::backend::fdb::FdbDatabase;
    use fdb_records::kv::strinc;

    static BOOT: std::sync::Once = std::sync::Once::new();

    /// FoundationDB through `FDB_CLUSTER_FILE`; each test owns the keys under
    /// `fdb-records-conformance/<test>/`, cleared when the harness is created.
    pub struct FdbCluster {
        name: String,
        cluster_file: String,
        prefix: Vec<u8>,
        db: Mutex<FdbDatabase>,
    }

    fn connect(cluster_file: &str) -> FdbDatabase {
        FdbDatabase::from_cluster_file(Some(cluster_file))
            .unwrap_or_else(|e| panic!("connecting to FoundationDB ({cluster_file}) failed: {e:?}"))
    }

    impl Harness for FdbCluster {
        type Db = FdbDatabase;
        const NAME: &'static str = "foundationdb";

        fn create(test: &str) -> Option<Self> {
            let Ok(cluster_file) = std::env::var("FDB_CLUSTER_FILE") else {
                println!("SKIPPED [foundationdb] {test}: FDB_CLUSTER_FILE is not set");
                return None;
            };
            BOOT.call_once(|| {
                // SAFETY: booted once per process; the network runs until the process exits.
                let network = unsafe { foundationdb::boot() };
                std::mem::forget(network);
            });
            let db = connect(&cluster_file);
            let prefix = format!("fdb-records-conformance/{test}/").into_bytes();
            let end = strinc(&prefix);
            futures::executor::block_on(db.run(|tx, _| {
                let (prefix, end) = (prefix.clone(), end.clone());
                async move {
                    tx.clear_range(&prefix, &end);
                    Ok::<_, FdbError>(())
                }
            }))
            .expect("clearing the test's key prefix");
            Some(FdbCluster {
                name: test.to_string(),
                cluster_file,
                prefix,
                db: Mutex::new(db),
            })
        }

        fn test_name(&self) -> &str {
            &self.name
        }

        fn db(&self) -> FdbDatabase {
            self.db.lock().expect("harness lock").clone()
        }

        fn prefix(&self) -> &[u8] {
            &self.prefix
        }

        fn isolated(&self) -> bool {
            false
        }

        fn pass_time(&self, by: Duration) {
            std::thread::sleep(by);
        }

        fn can_reopen(&self) -> bool {
            true
        }

        fn reopen(&self) {
            *self.db.lock().expect("harness lock") = connect(&self.cluster_file);
        }
    }
}

// ---------------------------------------------------------------------------------
// Helpers

/// A new transaction.
pub fn tx<D: Database>(db: &D) -> D::Transaction {
    db.create_transaction().expect("create_transaction")
}

/// A new transaction whose read version is already fixed.
pub async fn reader<D: Database>(db: &D) -> D::Transaction {
    let t = tx(db);
    t.get_read_version().await.expect("get_read_version");
    t
}

/// Reads one key in a fresh transaction.
pub async fn get<D: Database>(db: &D, key: &[u8]) -> Option<Vec<u8>> {
    tx(db).get(key, false).await.expect("get")
}

/// Sets one key in its own transaction.
pub async fn put<D: Database>(db: &D, key: &[u8], value: &[u8]) -> Committed {
    let t = tx(db);
    t.set(key, value);
    t.commit().await.expect("commit of a blind write")
}

/// Sets several keys in one transaction.
pub async fn put_all<D: Database>(db: &D, pairs: &[KeyValue]) -> Committed {
    let t = tx(db);
    for kv in pairs {
        t.set(&kv.key, &kv.value);
    }
    t.commit().await.expect("commit of blind writes")
}

/// Reads `[begin, end)` in a fresh transaction.
pub async fn scan<D: Database>(db: &D, begin: &[u8], end: &[u8]) -> Vec<KeyValue> {
    tx(db)
        .get_range_all(RangeOption::from_keys(begin, end), false)
        .await
        .expect("get_range_all")
}

/// Reads every key under `prefix` in a fresh transaction.
pub async fn scan_prefix<D: Database>(db: &D, prefix: &[u8]) -> Vec<KeyValue> {
    tx(db)
        .get_range_all(RangeOption::from_prefix(prefix), false)
        .await
        .expect("get_range_all")
}

/// Reads `[begin, end)` inside `t`.
pub async fn range<T: Transaction>(
    t: &T,
    begin: &[u8],
    end: &[u8],
    limit: Option<usize>,
    reverse: bool,
    snapshot: bool,
) -> FdbResult<Vec<KeyValue>> {
    let mut r = RangeOption::from_keys(begin, end);
    r.limit = limit;
    r.reverse = reverse;
    t.get_range_all(r, snapshot).await
}

/// The error code of a result that must have failed.
#[track_caller]
pub fn code<T: Debug>(result: FdbResult<T>) -> i32 {
    match result {
        Ok(v) => panic!("expected an error, got Ok({v:?})"),
        Err(e) => e.code(),
    }
}

/// `0` for success, the error code otherwise.
pub fn outcome<T>(result: &FdbResult<T>) -> i32 {
    match result {
        Ok(_) => 0,
        Err(e) => e.code(),
    }
}

/// The keys of a range result.
pub fn keys(kvs: &[KeyValue]) -> Vec<Vec<u8>> {
    kvs.iter().map(|kv| kv.key.to_vec()).collect()
}

/// `n` as a `len`-byte little-endian two's complement integer.
pub fn le(n: i64, len: usize) -> Vec<u8> {
    n.to_le_bytes()[..len].to_vec()
}

/// Decodes an 8-byte little-endian integer.
pub fn le_i64(bytes: &[u8]) -> i64 {
    i64::from_le_bytes(bytes.try_into().expect("8-byte little-endian integer"))
}

/// The commit version encoded in a versionstamp.
pub fn stamp_version(stamp: &[u8; 10]) -> i64 {
    i64::from_be_bytes(stamp[..8].try_into().expect("8 bytes"))
}

/// An application error that may carry a FoundationDB error, for retry-loop tests.
#[derive(Debug, PartialEq)]
pub enum AppError {
    Fdb(FdbError),
    App(&'static str),
}

impl From<FdbError> for AppError {
    fn from(e: FdbError) -> Self {
        AppError::Fdb(e)
    }
}

impl RetryableError for AppError {
    fn fdb_error(&self) -> Option<FdbError> {
        match self {
            AppError::Fdb(e) => Some(*e),
            AppError::App(_) => None,
        }
    }
}
