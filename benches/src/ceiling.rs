//! What group commit can give on this machine at best, with no engine at all: the
//! reference the report puts next to the count index's "8 writers vs a lone counter".
//!
//! A count index lets 8 writers commit together where a read-modify-write counter lets
//! one through at a time; how much that buys depends on the machine as much as on the
//! engine. Each writer, between commits, spends some CPU on its transaction (`work`);
//! a commit then costs one `fdatasync`, shared by every commit of its batch. With few
//! cores and a fast disk, the writers' CPU, the kernel's work per sync and the
//! wake-ups between threads bound the batches.
//!
//! The model keeps only that: each writer spins for `work`, queues one record of
//! `record_bytes` under a mutex and waits on a condition variable; one log thread
//! takes every queued record, writes them at the end of a preallocated file and
//! `fdatasync`s it (as the embedded engine's log does), then wakes the writers it made
//! durable. Batches pipeline: the next one fills during a sync. The lone writer spins,
//! writes and syncs on its own thread. Nothing here resolves conflicts, applies writes
//! or publishes snapshots, all of which an engine must also do between syncs. Variants
//! of the model (waiting for fuller batches, two syncs in flight, the writers as tasks
//! on a two-thread executor) measured no better here; see `benches/README.md`.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Commits per second, measured over the same time.
#[derive(Clone, Copy, Debug)]
pub struct Ceiling {
    /// One writer alone, syncing each of its commits.
    pub lone_per_s: f64,
    /// `writers` writers sharing a log thread.
    pub group_per_s: f64,
    /// Commits per sync with `writers` writers.
    pub per_batch: f64,
}

impl Ceiling {
    /// The group's throughput over the lone writer's.
    pub fn ratio(&self) -> f64 {
        self.group_per_s / self.lone_per_s.max(1e-9)
    }
}

/// Log records wrap around in a file of this size, written with zeros first: a sync
/// then writes data blocks only, as for the embedded engine's preallocated log.
const LOG_BYTES: u64 = 16 << 20;

/// Runs the lone writer, then `writers` writers, each for `duration`, on a log file in
/// `dir`.
pub fn group_commit(
    dir: &Path,
    writers: usize,
    work: Duration,
    record_bytes: usize,
    duration: Duration,
) -> Ceiling {
    let path = dir.join("ceiling.log");
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)
        .expect("create the model's log");
    let zeros = vec![0u8; 1 << 20];
    for step in 0..LOG_BYTES / zeros.len() as u64 {
        file.write_all_at(&zeros, step * zeros.len() as u64)
            .expect("preallocate the model's log");
    }
    file.sync_all().expect("sync the model's log");
    let lone_per_s = lone(&file, work, record_bytes, duration);
    let (group_per_s, per_batch) = group(file, writers, work, record_bytes, duration);
    drop(std::fs::remove_file(&path));
    Ceiling {
        lone_per_s,
        group_per_s,
        per_batch,
    }
}

/// Busy for `work` of CPU time, give or take the clock's resolution.
fn spin(work: Duration) {
    let started = Instant::now();
    while started.elapsed() < work {
        std::hint::spin_loop();
    }
}

/// Appends `bytes` at `*offset` (wrapping around the file) and advances it.
fn append(file: &File, offset: &mut u64, bytes: &[u8]) {
    if *offset + bytes.len() as u64 > LOG_BYTES {
        *offset = 0;
    }
    file.write_all_at(bytes, *offset)
        .expect("write the model's log");
    *offset += bytes.len() as u64;
}

fn lone(file: &File, work: Duration, record_bytes: usize, duration: Duration) -> f64 {
    let record = vec![7u8; record_bytes];
    let (mut offset, mut commits) = (0u64, 0u64);
    let started = Instant::now();
    while started.elapsed() < duration {
        spin(work);
        append(file, &mut offset, &record);
        file.sync_data().expect("sync the model's log");
        commits += 1;
    }
    commits as f64 / started.elapsed().as_secs_f64()
}

#[derive(Default)]
struct Log {
    /// Records queued for the next batch.
    queued: usize,
    /// The batch now filling; `durable` batches before it (and it, once synced) are done.
    filling: u64,
    durable: u64,
    batches: u64,
    commits: u64,
    closed: bool,
}

fn group(
    file: File,
    writers: usize,
    work: Duration,
    record_bytes: usize,
    duration: Duration,
) -> (f64, f64) {
    let shared = Arc::new((
        Mutex::new(Log {
            filling: 1,
            ..Log::default()
        }),
        Condvar::new(),
        Condvar::new(),
    ));
    let log_thread = {
        let shared = shared.clone();
        std::thread::spawn(move || {
            let (log, queued, durable) = &*shared;
            let mut offset = 0u64;
            loop {
                let (batch, records) = {
                    let mut g = log.lock().unwrap();
                    while g.queued == 0 && !g.closed {
                        g = queued.wait(g).unwrap();
                    }
                    if g.queued == 0 {
                        return;
                    }
                    let taken = (g.filling, std::mem::take(&mut g.queued));
                    g.filling += 1;
                    taken
                };
                append(&file, &mut offset, &vec![7u8; record_bytes * records]);
                file.sync_data().expect("sync the model's log");
                let mut g = log.lock().unwrap();
                g.durable = batch;
                g.batches += 1;
                g.commits += records as u64;
                drop(g);
                durable.notify_all();
            }
        })
    };
    let started = Instant::now();
    let deadline = started + duration;
    let threads: Vec<_> = (0..writers)
        .map(|_| {
            let shared = shared.clone();
            std::thread::spawn(move || {
                let (log, queued, durable) = &*shared;
                while Instant::now() < deadline {
                    spin(work);
                    let mut g = log.lock().unwrap();
                    g.queued += 1;
                    let mine = g.filling;
                    queued.notify_one();
                    while g.durable < mine {
                        g = durable.wait(g).unwrap();
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("writer thread");
    }
    let elapsed = started.elapsed().as_secs_f64();
    let (log, queued, _) = &*shared;
    let (commits, batches) = {
        let mut g = log.lock().unwrap();
        g.closed = true;
        (g.commits, g.batches)
    };
    queued.notify_one();
    log_thread.join().expect("log thread");
    (
        commits as f64 / elapsed,
        commits as f64 / batches.max(1) as f64,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_commit_is_counted_once_and_batches_form() {
        let dir = tempfile::tempdir().unwrap();
        let c = group_commit(
            dir.path(),
            4,
            Duration::from_micros(20),
            256,
            Duration::from_millis(200),
        );
        assert!(c.lone_per_s > 0.0 && c.group_per_s > 0.0);
        assert!(c.per_batch >= 1.0 && c.per_batch <= 4.0, "{c:?}");
    }
}
