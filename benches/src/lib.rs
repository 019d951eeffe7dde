//! Engine benchmarks: the embedded engine next to redb used directly.
//!
//! Every workload is written once, generic over [`Backend`], and run against
//! [`EngineBackend`] (the embedded engine, `EmbeddedDatabase::open`) and
//! [`RedbBackend`] (redb with the engine's table layout — one table
//! `data: &[u8] -> &[u8]` — and `Durability::Immediate` commits). Both start from the
//! same data set, loaded in bulk: [`KEYS`] keys of [`KEY_LEN`] bytes shaped like tuple
//! encodings, each holding a [`VALUE_LEN`]-byte value.
//!
//! The workloads:
//! - [`point_reads`]: transactions of [`READS_PER_TX`] random non-snapshot point gets;
//! - [`scans`]: transactions reading [`SCAN_ROWS`] consecutive keys from a random start;
//! - [`commits`]: durable commits of one [`VALUE_LEN`]-byte write each, one client,
//!   at random existing keys ([`WriteKeys::Update`]) or new keys in order
//!   ([`WriteKeys::Append`]);
//! - [`concurrent_commits`]: the same from many OS threads at once.
//!
//! Reads return owned bytes on both sides: the engine's API hands out `Vec<u8>`s, and
//! the raw baseline copies each value (and, for scans, key) out of redb's guards, as an
//! application keeping data past its read transaction must. [`RedbBackend`] also offers
//! zero-copy variants, reported as a reference floor.
//!
//! `benches/engine.rs` runs them under criterion; the `engine-report` binary runs them
//! interleaved in one process and prints the comparison table. The record layer's
//! workloads live in [`records`] (`benches/record_layer.rs`, the `report` bin), and
//! [`ceiling`] models the best group commit can do on the machine, for the report's
//! count-index row.

mod backends;
pub mod ceiling;
pub mod machine;
pub mod records;

pub use backends::{EngineBackend, RedbBackend};

use std::hint::black_box;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

/// Keys in the data set.
pub const KEYS: u64 = 100_000;
/// Key length: `\x02bench\x00` (a tuple string) then `\x1c` and a big-endian u64.
pub const KEY_LEN: usize = 16;
/// Value length, for the loaded data and for every committed write.
pub const VALUE_LEN: usize = 100;
/// Point gets per read transaction.
pub const READS_PER_TX: usize = 10;
/// Rows per range-scan transaction.
pub const SCAN_ROWS: usize = 100;
/// Concurrent clients in the group-commit workload.
pub const CLIENTS: usize = 16;

/// Keys of the data set share this prefix (a tuple-encoded string `"bench"`).
pub const PREFIX: &[u8] = b"\x02bench\x00";

/// A data-set key.
pub type Key = [u8; KEY_LEN];

/// The `i`-th key of the data set; keys sort in `i` order.
pub fn key(i: u64) -> Key {
    let mut k = [0u8; KEY_LEN];
    k[..PREFIX.len()].copy_from_slice(PREFIX);
    k[PREFIX.len()] = 0x1c; // tuple code of an 8-byte positive integer
    k[PREFIX.len() + 1..].copy_from_slice(&i.to_be_bytes());
    k
}

/// A [`VALUE_LEN`]-byte value derived from `seed`.
pub fn value(seed: u64) -> [u8; VALUE_LEN] {
    let mut v = [0u8; VALUE_LEN];
    let mut rng = Rng::new(seed);
    for chunk in v.chunks_mut(8) {
        let bytes = rng.next_u64().to_le_bytes();
        chunk.copy_from_slice(&bytes[..chunk.len()]);
    }
    v
}

/// SplitMix64: small, fast and good enough to pick keys.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
}

/// One way to store the data set. Each method is one transaction.
pub trait Backend: Send + Sync + Sized + 'static {
    /// Short name used in reports.
    const NAME: &'static str;

    /// Opens (creating) a database file at `path`.
    fn open(path: &Path) -> Self;

    /// Writes keys `range` with their [`value`]s, durably, in as few transactions as
    /// the backend allows.
    fn load(&self, range: std::ops::Range<u64>);

    /// One transaction of point reads (non-snapshot); returns the bytes found.
    fn point_reads(&self, keys: &[Key]) -> usize;

    /// One transaction reading `rows` consecutive rows from `start`; returns rows read.
    fn scan(&self, start: &Key, rows: usize) -> usize;

    /// One durable commit writing `value` at `key`.
    fn commit(&self, key: &Key, value: &[u8]);

    /// Durable storage transactions so far, when the backend batches commits
    /// (the engine: its commit version counts batches).
    fn storage_commits(&self) -> Option<u64> {
        None
    }
}

/// A backend on a fresh file in its own temporary directory, loaded with the data set.
///
/// The directory is under `$BENCH_DIR` when set, else the system temporary directory
/// (make sure it is a real disk, not tmpfs, or durable commits cost nothing).
pub struct Fixture<B> {
    pub backend: B,
    pub load_time: Duration,
    /// The next never-written key, for [`WriteKeys::Append`].
    next_key: AtomicU64,
    dir: tempfile::TempDir,
}

impl<B: Backend> Fixture<B> {
    /// Opens a fresh database and loads keys `0..keys`.
    pub fn new(keys: u64) -> Self {
        let mut builder = tempfile::Builder::new();
        builder.prefix("fdb-records-bench-");
        let dir = match std::env::var_os("BENCH_DIR") {
            Some(parent) => builder.tempdir_in(parent),
            None => builder.tempdir(),
        }
        .expect("create a temporary directory");
        let backend = B::open(&dir.path().join(format!("{}.redb", B::NAME)));
        let started = Instant::now();
        backend.load(0..keys);
        Fixture {
            backend,
            load_time: started.elapsed(),
            next_key: AtomicU64::new(keys),
            dir,
        }
    }

    /// The directory holding the database file.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// Runs `txs` point-read transactions of [`READS_PER_TX`] random keys each.
pub fn point_reads<B: Backend>(backend: &B, rng: &mut Rng, txs: u64) {
    point_reads_with(rng, txs, |keys| backend.point_reads(keys));
}

/// [`point_reads`] with any one-transaction read function.
pub fn point_reads_with(rng: &mut Rng, txs: u64, mut read: impl FnMut(&[Key]) -> usize) {
    let mut keys = [[0u8; KEY_LEN]; READS_PER_TX];
    for _ in 0..txs {
        for k in keys.iter_mut() {
            *k = key(rng.below(KEYS));
        }
        let found = read(&keys);
        debug_assert_eq!(found, READS_PER_TX * VALUE_LEN);
        black_box(found);
    }
}

/// Runs `txs` range-scan transactions of [`SCAN_ROWS`] rows from random starts.
pub fn scans<B: Backend>(backend: &B, rng: &mut Rng, txs: u64) {
    scans_with(rng, txs, |start, rows| backend.scan(start, rows));
}

/// [`scans`] with any one-transaction scan function.
pub fn scans_with(rng: &mut Rng, txs: u64, mut scan: impl FnMut(&Key, usize) -> usize) {
    for _ in 0..txs {
        let start = key(rng.below(KEYS - SCAN_ROWS as u64));
        let rows = scan(&start, SCAN_ROWS);
        debug_assert_eq!(rows, SCAN_ROWS);
        black_box(rows);
    }
}

/// Which key each durable commit writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteKeys {
    /// A random key of the loaded data set (an update; commits touch scattered pages).
    Update,
    /// A new key after every key written so far (an insert in key order, as with
    /// increasing primary keys; commits touch the same few pages).
    Append,
}

/// Runs `n` durable commits, each writing one [`VALUE_LEN`]-byte value.
pub fn commits<B: Backend>(fixture: &Fixture<B>, rng: &mut Rng, n: u64, keys: WriteKeys) {
    for _ in 0..n {
        let i = match keys {
            WriteKeys::Update => rng.below(KEYS),
            WriteKeys::Append => fixture.next_key.fetch_add(1, Ordering::Relaxed),
        };
        fixture.backend.commit(&key(i), &value(rng.next_u64()));
    }
}

/// How long a concurrent run goes on.
#[derive(Clone, Copy, Debug)]
pub enum Stop {
    /// Until this much time has passed since all clients started.
    After(Duration),
    /// Until every client has made this many commits.
    Commits(u64),
}

/// `clients` OS threads committing at once (each as [`commits`] does). Returns the
/// total number of commits and the wall time from the common start to the last one.
pub fn concurrent_commits<B: Backend>(
    fixture: &Fixture<B>,
    clients: usize,
    stop: Stop,
    keys: WriteKeys,
    seed: u64,
) -> (u64, Duration) {
    let barrier = Barrier::new(clients + 1);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                let barrier = &barrier;
                s.spawn(move || {
                    let mut rng =
                        Rng::new(seed ^ (c as u64 + 1).wrapping_mul(0x1234_5678_9abc_def1));
                    barrier.wait();
                    let started = Instant::now();
                    let mut done = 0u64;
                    loop {
                        match stop {
                            Stop::After(d) if started.elapsed() >= d => break,
                            Stop::Commits(n) if done >= n => break,
                            _ => {}
                        }
                        commits(fixture, &mut rng, 1, keys);
                        done += 1;
                    }
                    done
                })
            })
            .collect();
        barrier.wait();
        let started = Instant::now();
        let total = handles
            .into_iter()
            .map(|h| h.join().expect("client thread"))
            .sum();
        (total, started.elapsed())
    })
}

/// Runs `batch` repeatedly (each call doing `per_call` operations) until `duration`
/// has passed; returns the operations done and the time taken.
pub fn run_for(duration: Duration, per_call: u64, mut batch: impl FnMut(u64)) -> (u64, Duration) {
    let started = Instant::now();
    let mut ops = 0u64;
    while started.elapsed() < duration {
        batch(per_call);
        ops += per_call;
    }
    (ops, started.elapsed())
}

/// [`run_for`], as operations per second.
pub fn rate(duration: Duration, per_call: u64, batch: impl FnMut(u64)) -> f64 {
    let (ops, elapsed) = run_for(duration, per_call, batch);
    ops as f64 / elapsed.as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_in_index_order_and_values_are_deterministic() {
        assert!(key(1) < key(2) && key(255) < key(256) && key(KEYS - 1) < key(KEYS));
        assert!(key(0).starts_with(PREFIX));
        assert_eq!(value(7), value(7));
        assert_ne!(value(7), value(8));
        let mut rng = Rng::new(3);
        assert!((0..1000).all(|_| rng.below(10) < 10));
    }
}
