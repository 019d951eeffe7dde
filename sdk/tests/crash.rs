//! Crash test: a writer process is killed with SIGKILL at random points; after each
//! kill the database is reopened and checked.
//!
//! The test re-executes its own binary as the writer (the child), selecting the
//! [`crash_child`] test with `--exact` and handing it the database path in
//! `FDB_RECORDS_CRASH_CHILD`; without that variable `crash_child` passes at once, so
//! ordinary test runs are unaffected.
//!
//! The child commits, from several threads so that group-commit batches form,
//! transactions that each write `k` keys `txn/<id>/<i>` (some values large), add 1 to
//! `counter` with an atomic mutation and write the marker `done/<id>` = `k`. It prints
//! `@@BEGIN <id>@@` before a transaction and `@@ACK <id> <version>@@` once its commit
//! returned. After every kill the parent opens a copy of the database file (so that the
//! next child recovers the crashed file itself, and may be killed while recovering) and
//! checks that
//!
//! 1. every acknowledged transaction (of this and every earlier run) is fully present;
//! 2. every transaction present is complete (marker and all its keys with the right
//!    values), no key exists without its marker, and committed-but-unacknowledged
//!    transactions were at least begun by the child;
//! 3. `counter` equals the number of markers (each atomic add applied exactly once);
//! 4. versions never go backwards across restarts: the child starts at the version the
//!    parent last saw, acknowledged versions lie between that and the recovered version.
//!
//! A fresh database is started every ten kills so that long runs stay linear in time.
//!
//! Environment: `FDB_RECORDS_CRASH_ITERATIONS` (default 20), `FDB_RECORDS_CRASH_SEED`
//! (the kill schedule; printed by every run). A seed replays the schedule, not the
//! timing: process timing varies between runs, and kills aimed at the child's open
//! are scaled by how long the previous open took.
//!
//! Run: `cargo test -p fdb-records --test crash -- --nocapture`.

use fdb_records::backend::embedded::EmbeddedDatabase;
use fdb_records::kv::{run as kv_run, Database, FdbError, MutationType, RangeOption, Transaction};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "FDB_RECORDS_CRASH_CHILD";
const ITERATIONS_ENV: &str = "FDB_RECORDS_CRASH_ITERATIONS";
const SEED_ENV: &str = "FDB_RECORDS_CRASH_SEED";

/// Writer threads in the child.
const WRITERS: usize = 4;
/// A fresh database is started after this many kills.
const KILLS_PER_DATABASE: usize = 10;
/// The child stops by itself after this long, in case its parent vanished.
const CHILD_MAX_LIFETIME: Duration = Duration::from_secs(120);

const GEN_KEY: &[u8] = b"meta/gen";
const COUNTER_KEY: &[u8] = b"counter";
const TXN_PREFIX: &str = "txn/";
const DONE_PREFIX: &str = "done/";

// ---------------------------------------------------------------------------
// Deterministic content: the parent recomputes what every transaction wrote.

fn mix(mut z: u64) -> u64 {
    // splitmix64 finalizer
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn id_hash(id: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in id.as_bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    mix(h)
}

/// Number of data keys transaction `id` writes (1..=8).
fn keys_in(id: &str) -> usize {
    1 + (id_hash(id) % 8) as usize
}

fn txn_key(id: &str, i: usize) -> Vec<u8> {
    format!("{TXN_PREFIX}{id}/{i}").into_bytes()
}

fn done_key(id: &str) -> Vec<u8> {
    format!("{DONE_PREFIX}{id}").into_bytes()
}

/// The value of key `i` of transaction `id`: one in sixteen is large (1–50 KB).
fn value_for(id: &str, i: usize) -> Vec<u8> {
    let h = mix(id_hash(id) ^ (i as u64 + 1).wrapping_mul(0x2545_f491_4f6c_dd1d));
    let len = if h.is_multiple_of(16) {
        1024 + ((h >> 8) % (49 * 1024)) as usize
    } else {
        1 + ((h >> 8) % 200) as usize
    };
    let mut v = Vec::with_capacity(len + 8);
    let mut s = h;
    while v.len() < len {
        s = mix(s);
        v.extend_from_slice(&s.to_le_bytes());
    }
    v.truncate(len);
    v
}

// ---------------------------------------------------------------------------
// The child: writes until it is killed.

/// Passes at once unless started by the crash test as its writer process.
#[test]
fn crash_child() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    child_main(PathBuf::from(path));
}

/// Writes one protocol line to stdout in a single write; exits if the parent is gone.
fn emit(msg: &str) {
    let line = format!("\n{msg}\n");
    let mut out = std::io::stdout().lock();
    if out
        .write_all(line.as_bytes())
        .and_then(|()| out.flush())
        .is_err()
    {
        std::process::exit(0);
    }
}

fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("crash child: {what}: {e}");
    std::process::exit(3);
}

fn child_main(path: PathBuf) {
    std::thread::spawn(|| {
        std::thread::sleep(CHILD_MAX_LIFETIME);
        std::process::exit(0);
    });
    emit("@@OPENING@@");
    let opening = Instant::now();
    // Frequent checkpoints, so that kills also land in and around them.
    let db = EmbeddedDatabase::builder()
        .checkpoint_every(16)
        .open(&path)
        .unwrap_or_else(|e| fail("open", e));
    let open_ms = opening.elapsed().as_millis();
    let start_version = db.committed_version();
    // A generation number per run keeps transaction ids unique across restarts.
    let gen = futures::executor::block_on(kv_run(&db, |tx, _| async move {
        let gen = tx.get(GEN_KEY, false).await?.map_or(0, |v| decode_u64(&v)) + 1;
        tx.set(GEN_KEY, &gen.to_le_bytes());
        Ok::<_, FdbError>(gen)
    }))
    .unwrap_or_else(|e| fail("generation transaction", e))
    .value;
    emit(&format!("@@READY {gen} {start_version} {open_ms}@@"));

    let writers: Vec<_> = (0..WRITERS)
        .map(|thread| {
            let db = db.clone();
            std::thread::spawn(move || futures::executor::block_on(writer(db, gen, thread)))
        })
        .collect();
    for w in writers {
        let _ = w.join();
    }
    fail("writers", "a writer thread stopped");
}

async fn writer(db: EmbeddedDatabase, gen: u64, thread: usize) {
    for seq in 0u64.. {
        let id = format!("{gen:06}.{thread}.{seq:09}");
        let k = keys_in(&id);
        let writes: Arc<Vec<(Vec<u8>, Vec<u8>)>> = Arc::new(
            (0..k)
                .map(|i| (txn_key(&id, i), value_for(&id, i)))
                .collect(),
        );
        let marker = Arc::new(done_key(&id));
        emit(&format!("@@BEGIN {id}@@"));
        let outcome = kv_run(&db, |tx, maybe_committed| {
            let writes = writes.clone();
            let marker = marker.clone();
            async move {
                // Only reachable after commit_unknown_result: do not apply twice.
                if maybe_committed.is_maybe_committed() && tx.get(&marker, false).await?.is_some() {
                    return Ok(());
                }
                for (key, value) in writes.iter() {
                    tx.set(key, value);
                }
                tx.atomic_op(COUNTER_KEY, &1i64.to_le_bytes(), MutationType::Add);
                tx.set(&marker, &[k as u8]);
                Ok::<_, FdbError>(())
            }
        })
        .await
        .unwrap_or_else(|e| fail(&format!("transaction {id}"), e));
        emit(&format!("@@ACK {id} {}@@", outcome.committed.version));
    }
}

fn decode_u64(v: &[u8]) -> u64 {
    u64::from_le_bytes(
        v.try_into()
            .unwrap_or_else(|_| panic!("bad u64 value {v:?}")),
    )
}

// ---------------------------------------------------------------------------
// The parent: spawns, kills, verifies.

enum Event {
    Opening,
    Ready {
        gen: u64,
        start_version: i64,
        open_ms: u64,
    },
    Begin(String),
    Ack(String, i64),
}

fn parse_event(line: &str) -> Option<Event> {
    let start = line.find("@@")?;
    let body = line[start + 2..].strip_suffix("@@")?;
    let mut parts = body.split(' ');
    let event = match parts.next()? {
        "READY" => Event::Ready {
            gen: parts.next()?.parse().ok()?,
            start_version: parts.next()?.parse().ok()?,
            open_ms: parts.next()?.parse().ok()?,
        },
        "OPENING" => Event::Opening,
        "BEGIN" => Event::Begin(parts.next()?.to_string()),
        "ACK" => Event::Ack(parts.next()?.to_string(), parts.next()?.parse().ok()?),
        _ => return None,
    };
    parts.next().is_none().then_some(event)
}

/// Kills the child if the parent bails out early.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What the parent knows across iterations.
#[derive(Default)]
struct Model {
    /// Every acknowledged transaction so far, with its commit version.
    acked: BTreeMap<String, i64>,
    /// Markers present at the last verification.
    markers: BTreeSet<String>,
    /// Committed version at the last verification.
    version: i64,
    /// Generation at the last verification.
    gen: u64,
}

/// What one child run reported.
#[derive(Default)]
struct Report {
    opening: bool,
    ready: Option<(u64, i64)>,
    /// How long the child took to open (and recover) the database.
    open_ms: Option<u64>,
    begun: BTreeSet<String>,
    acks: BTreeMap<String, i64>,
}

impl Report {
    fn add(&mut self, event: Event) {
        match event {
            Event::Opening => self.opening = true,
            Event::Ready {
                gen,
                start_version,
                open_ms,
            } => {
                self.ready = Some((gen, start_version));
                self.open_ms = Some(open_ms);
            }
            Event::Begin(id) => {
                self.begun.insert(id);
            }
            Event::Ack(id, version) => {
                self.acks.insert(id, version);
            }
        }
    }
}

struct IterationStats {
    acks: usize,
    in_flight: usize,
    committed_unacked: usize,
    markers: usize,
    version: i64,
}

#[derive(Default)]
struct Totals {
    acks: usize,
    kills_after_ready: usize,
    kills_before_ready: usize,
    kills_with_in_flight: usize,
    committed_unacked: usize,
    rolled_back: usize,
}

#[test]
fn sigkill_never_loses_acknowledged_commits() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let iterations: usize = env_number(ITERATIONS_ENV).unwrap_or(20);
    let seed = env_number(SEED_ENV).unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    });
    println!("crash test: seed {seed} ({SEED_ENV}={seed} replays the kill schedule), {iterations} iterations");

    let dir = tempfile::Builder::new()
        .prefix("fdb-records-crash-")
        .tempdir()
        .expect("temp dir");
    let started = Instant::now();
    match run_iterations(dir.path(), seed, iterations) {
        Ok(totals) => {
            println!(
                "crash test: {iterations} kills in {:.1?}: {} acknowledged commits; {} kills before READY \
                 (during open and recovery, or before the generation commit was reported); {} of {} kills after READY landed with commits in flight \
                 ({} of those commits had reached disk, {} rolled back)",
                started.elapsed(),
                totals.acks,
                totals.kills_before_ready,
                totals.kills_with_in_flight,
                totals.kills_after_ready,
                totals.committed_unacked,
                totals.rolled_back,
            );
            assert!(
                totals.acks >= 20,
                "only {} acknowledged commits: the test proves nothing",
                totals.acks
            );
            // Writers are almost always inside a transaction, so nearly every kill after
            // startup interrupts at least one commit; half is a safe floor.
            assert!(
                totals.kills_with_in_flight * 2 >= totals.kills_after_ready
                    && totals.kills_with_in_flight > 0,
                "too few kills interrupted a commit: {} of {}",
                totals.kills_with_in_flight,
                totals.kills_after_ready
            );
        }
        Err(message) => {
            let kept = dir.keep();
            panic!(
                "crash test failed (seed {seed}; databases kept in {}): {message}",
                kept.display()
            );
        }
    }
}

fn env_number<T: std::str::FromStr>(name: &str) -> Option<T> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value:?} is not a number")),
    )
}

fn run_iterations(dir: &Path, seed: u64, iterations: usize) -> Result<Totals, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut model = Model::default();
    let mut totals = Totals::default();
    let mut path = PathBuf::new();
    let mut last_open_ms = 20;
    for iteration in 0..iterations {
        // Recovery and verification cost grows with the database, so long runs start
        // a fresh one now and then to stay linear.
        if iteration.is_multiple_of(KILLS_PER_DATABASE) {
            if iteration > 0 {
                std::fs::remove_file(&path)
                    .map_err(|e| format!("removing {}: {e}", path.display()))?;
            }
            path = dir.join(format!("crash-{}.redb", iteration / KILLS_PER_DATABASE));
            model = Model::default();
        }
        let path = path.as_path();
        // One kill in four aims at the child's open, which recovers the file the last
        // kill left behind (aimed by how long the last open took); the rest land a
        // random time after the child started writing.
        let early = rng.random_ratio(1, 4);
        let delay = Duration::from_millis(if early {
            rng.random_range(0..=last_open_ms.max(1) * 3 / 2)
        } else {
            rng.random_range(20..300)
        });
        let (report, status) = run_child(&exe, path, early, delay)
            .map_err(|e| format!("iteration {iteration}: {e}"))?;
        last_open_ms = report.open_ms.unwrap_or(last_open_ms);
        // Verify a copy, so that the next child opens the crashed file itself and has to
        // recover it (and may be killed while it does).
        let verify_started = Instant::now();
        // A database is its file plus the write-ahead log beside it (`<file>.wal`).
        let copy = dir.join("verify.redb");
        let with_log = |p: &Path| {
            let mut name = p.as_os_str().to_os_string();
            name.push(".wal");
            PathBuf::from(name)
        };
        for (from, to) in [
            (path.to_path_buf(), copy.clone()),
            (with_log(path), with_log(&copy)),
        ] {
            if from.exists() {
                std::fs::copy(&from, &to)
                    .map_err(|e| format!("copying {}: {e}", from.display()))?;
            }
        }
        let stats = verify(&copy, &mut model, &report)
            .map_err(|e| format!("iteration {iteration}: {e}"))?;
        for p in [copy.clone(), with_log(&copy)] {
            if p.exists() {
                std::fs::remove_file(&p).map_err(|e| format!("removing {}: {e}", p.display()))?;
            }
        }
        println!(
            "iteration {iteration:2}: killed {} +{:3}ms{} ({status}); acks {:4}, in flight at kill {} \
             (committed {}), markers {:5}, version {:5}, child opened in {}, verified in {:.0?}",
            if early { "at OPENING" } else { "at READY  " },
            delay.as_millis(),
            if report.ready.is_none() { " before READY" } else { "" },
            stats.acks,
            stats.in_flight,
            stats.committed_unacked,
            stats.markers,
            stats.version,
            report.open_ms.map_or("-".to_string(), |ms| format!("{ms}ms")),
            verify_started.elapsed(),
        );
        totals.acks += stats.acks;
        totals.committed_unacked += stats.committed_unacked;
        totals.rolled_back += stats.in_flight - stats.committed_unacked;
        if report.ready.is_none() {
            totals.kills_before_ready += 1;
        }
        if report.ready.is_some() && !early {
            totals.kills_after_ready += 1;
            if stats.in_flight > 0 {
                totals.kills_with_in_flight += 1;
            }
        }
    }
    Ok(totals)
}

/// Starts the child, kills it `delay` after its OPENING line (`early`) or its READY line,
/// and returns everything it printed.
fn run_child(
    exe: &Path,
    path: &Path,
    early: bool,
    delay: Duration,
) -> Result<(Report, String), String> {
    let mut child = ChildGuard(
        Command::new(exe)
            .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("spawning the child: {e}"))?,
    );
    let stdout = child.0.stdout.take().expect("piped stdout");
    let (events_tx, events) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(event) = parse_event(&line) {
                if events_tx.send(event).is_err() {
                    break;
                }
            }
        }
    });

    let mut report = Report::default();
    let (what, deadline) = (
        if early { "OPENING" } else { "READY" },
        Instant::now() + Duration::from_secs(60),
    );
    while !(if early {
        report.opening
    } else {
        report.ready.is_some()
    }) {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(event) => report.add(event),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                return Err(format!("child not {what} after 60 s"))
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = child.0.wait().map_err(|e| e.to_string())?;
                return Err(format!("child exited before {what}: {status}"));
            }
        }
    }
    std::thread::sleep(delay);
    if let Some(status) = child.0.try_wait().map_err(|e| e.to_string())? {
        return Err(format!("child exited by itself before the kill: {status}"));
    }
    child.0.kill().map_err(|e| format!("kill: {e}"))?;
    let status = child.0.wait().map_err(|e| format!("wait: {e}"))?;
    reader
        .join()
        .map_err(|_| "stdout reader panicked".to_string())?;
    report.add_all(events);
    Ok((report, status.to_string()))
}

impl Report {
    fn add_all(&mut self, events: mpsc::Receiver<Event>) {
        for event in events.try_iter() {
            self.add(event);
        }
    }
}

/// Everything the database holds, read in one transaction.
struct Contents {
    gen: u64,
    counter: Option<i64>,
    markers: BTreeMap<String, Vec<u8>>,
    data: BTreeMap<String, Vec<(usize, Vec<u8>)>>,
    stray: Vec<String>,
}

fn read_all(db: &EmbeddedDatabase) -> Result<Contents, FdbError> {
    let everything = futures::executor::block_on(db.run(|tx, _| async move {
        tx.get_range_all(RangeOption::from_keys(b"", b"\xff"), false)
            .await
    }))?;
    let mut contents = Contents {
        gen: 0,
        counter: None,
        markers: BTreeMap::new(),
        data: BTreeMap::new(),
        stray: Vec::new(),
    };
    for kv in everything {
        let key = String::from_utf8_lossy(&kv.key).into_owned();
        if kv.key == GEN_KEY {
            contents.gen = decode_u64(&kv.value);
        } else if kv.key == COUNTER_KEY {
            let bytes = kv.value[..].try_into().expect("8-byte counter");
            contents.counter = Some(i64::from_le_bytes(bytes));
        } else if let Some(id) = key.strip_prefix(DONE_PREFIX) {
            contents.markers.insert(id.to_string(), kv.value.to_vec());
        } else if let Some((id, i)) = key
            .strip_prefix(TXN_PREFIX)
            .and_then(|rest| rest.rsplit_once('/'))
            .and_then(|(id, i)| Some((id, i.parse::<usize>().ok()?)))
        {
            contents
                .data
                .entry(id.to_string())
                .or_default()
                .push((i, kv.value.to_vec()));
        } else {
            contents.stray.push(fdb_records::kv::printable(&kv.key));
        }
    }
    Ok(contents)
}

fn verify(path: &Path, model: &mut Model, report: &Report) -> Result<IterationStats, String> {
    let db = EmbeddedDatabase::open(path).map_err(|e| format!("reopening after the kill: {e}"))?;
    let version = db.committed_version();
    let contents = read_all(&db).map_err(|e| format!("reading back: {e}"))?;
    drop(db);

    // (4) Versions and generations move forward only.
    if version < model.version {
        return Err(format!(
            "committed version went backwards: {} before, {version} after",
            model.version
        ));
    }
    if let Some((gen, start_version)) = report.ready {
        if start_version != model.version {
            return Err(format!(
                "child opened at version {start_version}, parent last saw {}",
                model.version
            ));
        }
        if gen != model.gen + 1 {
            return Err(format!(
                "child took generation {gen} after generation {}",
                model.gen
            ));
        }
        if contents.gen < gen {
            return Err(format!(
                "acknowledged generation {gen} lost: database has {}",
                contents.gen
            ));
        }
    }
    if contents.gen < model.gen {
        return Err(format!(
            "generation went backwards: {} before, {} after",
            model.gen, contents.gen
        ));
    }
    for (id, &v) in &report.acks {
        // -1: a retry found its earlier attempt committed and committed nothing itself
        // (only after commit_unknown_result, which needs fault injection).
        if v != -1 && (v <= model.version || v > version) {
            return Err(format!(
                "transaction {id} acknowledged at version {v}, outside ({}, {version}]",
                model.version
            ));
        }
    }

    if !contents.stray.is_empty() {
        return Err(format!("unexpected keys: {:?}", contents.stray));
    }

    // (2) Every transaction present is complete and correct; no data without a marker.
    for (id, marker) in &contents.markers {
        let k = keys_in(id);
        if marker.as_slice() != [k as u8] {
            return Err(format!("marker of {id} is {marker:?}, expected [{k}]"));
        }
        let keys = contents.data.get(id).map_or(&[][..], |v| v.as_slice());
        let present: Vec<usize> = keys.iter().map(|(i, _)| *i).collect();
        if present != (0..k).collect::<Vec<_>>() {
            return Err(format!(
                "transaction {id} partially visible: marker present, keys {present:?} of 0..{k} present"
            ));
        }
        for (i, value) in keys {
            if *value != value_for(id, *i) {
                return Err(format!(
                    "transaction {id}: key {i} has a wrong value ({} bytes)",
                    value.len()
                ));
            }
        }
    }
    for (id, keys) in &contents.data {
        if !contents.markers.contains_key(id) {
            let present: Vec<usize> = keys.iter().map(|(i, _)| *i).collect();
            return Err(format!(
                "transaction {id} partially visible: keys {present:?} present without its marker"
            ));
        }
    }

    // (1) No acknowledged commit is lost, from this run or any earlier one.
    model
        .acked
        .extend(report.acks.iter().map(|(id, v)| (id.clone(), *v)));
    let lost: Vec<&String> = model
        .acked
        .keys()
        .filter(|id| !contents.markers.contains_key(*id))
        .collect();
    if !lost.is_empty() {
        return Err(format!(
            "{} acknowledged transactions lost, e.g. {:?}",
            lost.len(),
            &lost[..lost.len().min(5)]
        ));
    }
    // Committed transactions of earlier runs neither vanish nor appear.
    let markers: BTreeSet<String> = contents.markers.keys().cloned().collect();
    if let Some(gone) = model.markers.difference(&markers).next() {
        return Err(format!(
            "transaction {gone}, present after the previous kill, is gone"
        ));
    }
    let current_gen = report.ready.map(|(gen, _)| gen);
    let mut committed_unacked = 0;
    for id in markers.difference(&model.markers) {
        let gen: u64 = id
            .split('.')
            .next()
            .and_then(|g| g.parse().ok())
            .unwrap_or(0);
        if Some(gen) != current_gen || !report.begun.contains(id) {
            return Err(format!(
                "transaction {id} appeared although this run never began it"
            ));
        }
        if !report.acks.contains_key(id) {
            committed_unacked += 1;
        }
    }

    // (3) Atomic adds applied exactly once per committed transaction.
    let counter = contents.counter.unwrap_or(0);
    if counter != markers.len() as i64 {
        return Err(format!(
            "counter is {counter} but {} transactions are present",
            markers.len()
        ));
    }

    let in_flight = report
        .begun
        .iter()
        .filter(|id| !report.acks.contains_key(*id))
        .count();
    model.version = version;
    model.gen = contents.gen;
    model.markers = markers;
    Ok(IterationStats {
        acks: report.acks.len(),
        in_flight,
        committed_unacked,
        markers: model.markers.len(),
        version,
    })
}
