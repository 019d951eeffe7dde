//! The record layer's report: one table of ratios, measured in one run.
//!
//! ```text
//! cargo run --release -p benches --bin report            # 1M records for paging
//! cargo run --release -p benches --bin report -- --quick # 100k records, shorter slices
//! cargo run --release -p benches --bin report -- --only sqlite # one section
//! ```
//!
//! Rows:
//! - save (2 value indexes + 1 count index) vs the raw key-value operations a save
//!   performs (the store open's metadata-version read and conflict ranges, record read,
//!   clear, set, version, 2 index entries, 2 atomic adds), on the same engine, in memory
//!   and durable on disk;
//! - load (store open + 10 loads, decoded) vs the raw gets they perform, same keys;
//! - page k vs page 1 with continuations, next to offset pagination;
//! - 8 concurrent writers on one count-index group vs a read-modify-write counter, and
//!   next to it the machine's ceiling for that ratio (group commit with no engine, see
//!   [`benches::ceiling`]);
//! - the same record workload on SQLite (bundled, WAL, `synchronous=FULL`);
//! - peak RSS while paging every record (VmHWM, reset first through `clear_refs`).
//!
//! Ratios are medians over rounds in which the contestants alternate, so load from
//! elsewhere on the machine hits both alike.

use fdb_records::backend::embedded::EmbeddedDatabase;
use fdb_records::cursor::{Continuation, ExecuteOptions, NoNextReason, RecordScan, ScanLimits};
use fdb_records::kv::{Database, Transaction};
use fdb_records::layout::StoreLayout;
use fdb_records::store::{RecordRange, RecordStore, RecordStoreError};
use foundationdb_tuple::{Element, Subspace};
use futures::executor::block_on;
use futures::StreamExt;
use prost::Message;
use prost_reflect::DynamicMessage;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use benches::records::{
    bulk_load, metadata, metadata_storing_versions, raw_save_one, save_one, User, Users,
};

struct Cfg {
    quick: bool,
    /// `--only <section>`: run one section (save, load, count, sqlite, paging).
    only: Option<String>,
    page_records: usize,
    slice: Duration,
    rounds: usize,
}

/// How a load's bytes become a message.
#[derive(Clone, Copy, Debug)]
enum Decode {
    /// Into a `DynamicMessage` (the dynamic API).
    Dynamic,
    /// Into the generated `User` (the typed API).
    Typed,
}

/// The sections `--only` selects, in the order they run.
const SECTIONS: [&str; 5] = ["save", "load", "count", "sqlite", "paging"];

const USAGE: &str = "usage: report [--quick] [--only save|load|count|sqlite|paging]";

/// Parses the command line; a wrong argument ends the process with the usage, before
/// anything is measured.
fn cfg() -> Cfg {
    let (mut quick, mut only) = (false, None);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => quick = true,
            "--only" => match args.next() {
                Some(section) if SECTIONS.contains(&section.as_str()) => only = Some(section),
                other => exit_with_usage(&format!(
                    "--only needs one of {}, not {:?}",
                    SECTIONS.join(", "),
                    other.unwrap_or_default()
                )),
            },
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => exit_with_usage(&format!("unknown argument {other:?}")),
        }
    }
    Cfg {
        quick,
        only,
        page_records: if quick { 100_000 } else { 1_000_000 },
        slice: Duration::from_millis(if quick { 400 } else { 1_500 }),
        rounds: if quick { 3 } else { 5 },
    }
}

fn exit_with_usage(problem: &str) -> ! {
    eprintln!("report: {problem}\n{USAGE}");
    std::process::exit(2);
}

impl Cfg {
    /// Whether section `name` runs (all do without `--only`).
    fn runs(&self, name: &str) -> bool {
        self.only.as_deref().is_none_or(|o| o == name)
    }
}

/// Runs `f` (one call = `f()` operations) for `slice`; operations per second.
fn rate(slice: Duration, mut f: impl FnMut() -> u64) -> f64 {
    let start = Instant::now();
    let mut ops = 0;
    while start.elapsed() < slice {
        ops += f();
    }
    ops as f64 / start.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Alternating rounds of `ours` and `theirs`: (median ours/s, median theirs/s,
/// median of per-round time ratios ours÷theirs).
fn compare(
    cfg: &Cfg,
    mut ours: impl FnMut() -> u64,
    mut theirs: impl FnMut() -> u64,
) -> (f64, f64, f64) {
    let (mut a, mut b, mut r) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..cfg.rounds {
        let (x, y) = if round.is_multiple_of(2) {
            let x = rate(cfg.slice, &mut ours);
            (x, rate(cfg.slice, &mut theirs))
        } else {
            let y = rate(cfg.slice, &mut theirs);
            (rate(cfg.slice, &mut ours), y)
        };
        a.push(x);
        b.push(y);
        r.push(y / x);
    }
    (median(a), median(b), median(r))
}

fn open_disk(dir: &std::path::Path, name: &str) -> EmbeddedDatabase {
    EmbeddedDatabase::open(dir.join(name)).unwrap()
}

struct Row {
    what: String,
    ours: String,
    baseline: String,
    ratio: String,
    target: String,
    met: String,
}

fn row(
    what: &str,
    ours: String,
    baseline: String,
    ratio: String,
    target: &str,
    met: Option<bool>,
) -> Row {
    Row {
        what: what.into(),
        ours,
        baseline,
        ratio,
        target: target.into(),
        met: match met {
            Some(true) => "yes".into(),
            Some(false) => "**no**".into(),
            None => "—".into(),
        },
    }
}

fn per_s(x: f64) -> String {
    let n = x.round() as u64;
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    format!("{out}/s")
}

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn main() {
    let cfg = cfg();
    let users = Users::new();
    let dir = tempfile::Builder::new()
        .prefix("fdb-records-report")
        .tempdir_in(
            std::env::var("BENCH_DIR")
                .unwrap_or_else(|_| std::env::temp_dir().display().to_string()),
        )
        .unwrap();
    let md3 = metadata(true, true);
    let md2 = metadata(true, false);
    let mut rows = Vec::new();

    // 1. Save vs raw key-value operations, in memory and on disk.
    for (label, db) in [
        ("in memory", EmbeddedDatabase::in_memory().unwrap()),
        ("durable, on disk", open_disk(dir.path(), "save.redb")),
    ]
    .into_iter()
    .filter(|_| cfg.runs("save"))
    {
        let ours_ss = Subspace::from("ours");
        let raw_layout = StoreLayout::new(Subspace::from("raw"));
        let (mut a, mut b) = (0i64, 0i64);
        let (o, r, ratio) = compare(
            &cfg,
            || {
                a += 1;
                save_one(&db, &ours_ss, &md3, &users.user(a));
                1
            },
            || {
                b += 1;
                raw_save_one(&db, &raw_layout, &users, b);
                1
            },
        );
        eprintln!("save {label}: ours {o:.0}/s raw {r:.0}/s ratio {ratio:.2}");
        rows.push(row(
            &format!("save, 2 value + 1 count index, 1 record/tx, {label}: vs its raw kv ops"),
            per_s(o),
            per_s(r),
            format!("{ratio:.2}×"),
            "≤ 1.3×",
            Some(ratio <= 1.3),
        ));
    }

    // 2. Load vs the raw gets it performs (10 per transaction), in memory: the same
    // keys of the same store read with `Transaction::get`, the stored bytes decoded as
    // a hand-written reader would (the envelope with its generated type, then the
    // record). A reference row compares with an application that keeps only the
    // record's protobuf bytes under its own key: no version beside it, no index
    // entries in the same key space.
    if cfg.runs("load") {
        let db = EmbeddedDatabase::in_memory().unwrap();
        let ss = Subspace::from("load");
        let layout = StoreLayout::new(ss.clone());
        let plain_ss = Subspace::from("plain");
        let n = 20_000i64;
        bulk_load(&db, &ss, &md3, &users, 0..n);
        block_on(async {
            for chunk in (0..n).collect::<Vec<_>>().chunks(5_000) {
                let tx = db.create_transaction().unwrap();
                for id in chunk {
                    tx.set(&plain_ss.pack(id), &users.user(*id).encode_to_vec());
                }
                tx.commit().await.unwrap();
            }
        });
        let desc = users.user.clone();
        let mut seed = 1u64;
        let mut next = move || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 33) % n as u64) as i64
        };
        let mut next2 = next;
        let mut load = |per_tx: u64, decode: Decode| {
            block_on(async {
                let tx = db.create_transaction().unwrap();
                let store = RecordStore::open(&tx, ss.clone(), md3.clone())
                    .await
                    .unwrap();
                for _ in 0..per_tx {
                    let pk = [Element::Int(next())];
                    let found = match decode {
                        Decode::Typed => store.load_record::<User>(&pk).await.unwrap().is_some(),
                        _ => store.load_dynamic(&pk).await.unwrap().is_some(),
                    };
                    assert!(found);
                }
            });
            per_tx
        };
        // What a load reads, by hand: the record's data key (and, for a dynamic load,
        // its version key, read together), the envelope and the record decoded.
        let mut raw = |per_tx: u64, decode: Decode, plain: bool| {
            block_on(async {
                let tx = db.create_transaction().unwrap();
                for _ in 0..per_tx {
                    let id = next2();
                    let bytes = if plain {
                        tx.get(&plain_ss.pack(&id), false)
                            .await
                            .unwrap()
                            .expect("present")
                    } else {
                        let pk = [Element::Int(id)];
                        let data = layout.record_key(&pk, 0);
                        let stored = if matches!(decode, Decode::Dynamic) {
                            let version = layout.record_version_key(&pk);
                            let (d, v) =
                                futures::join!(tx.get(&data, false), tx.get(&version, false));
                            assert!(v.unwrap().is_some());
                            d
                        } else {
                            tx.get(&data, false).await
                        };
                        let stored = stored.unwrap().expect("present");
                        fdb_records::proto::StoredRecord::decode(stored.as_slice())
                            .unwrap()
                            .message
                    };
                    match decode {
                        Decode::Dynamic => {
                            DynamicMessage::decode(desc.clone(), bytes.as_slice()).unwrap();
                        }
                        Decode::Typed => {
                            User::decode(bytes.as_slice()).unwrap();
                        }
                    }
                }
            });
            per_tx
        };
        for (per_tx, decode, plain, label, target) in [
            (
                10,
                Decode::Typed,
                false,
                "load, typed (`load_record::<User>`; store open + 10/tx) vs the raw get it performs + decode",
                true,
            ),
            (
                10,
                Decode::Dynamic,
                false,
                "load, dynamic, record + version (store open + 10/tx) vs the 2 raw gets it performs + decode",
                true,
            ),
            (
                10,
                Decode::Typed,
                true,
                "↳ reference: typed load vs raw get + decode of plain protobuf bytes under their own key",
                false,
            ),
            (
                1_000,
                Decode::Dynamic,
                false,
                "↳ reference: 1,000 dynamic loads/tx (store open amortized) vs their raw gets + decode",
                false,
            ),
        ] {
            let (o, r, ratio) = compare(&cfg, || load(per_tx, decode), || raw(per_tx, decode, plain));
            eprintln!("load x{per_tx} {decode:?} plain={plain}: ours {o:.0}/s raw {r:.0}/s ratio {ratio:.2}");
            rows.push(row(
                label,
                per_s(o),
                per_s(r),
                format!("{ratio:.2}×"),
                if target { "≤ 1.2×" } else { "—" },
                target.then_some(ratio <= 1.2),
            ));
        }
    }

    // 3. Count index with 8 concurrent writers on one group vs a read-modify-write counter.
    if cfg.runs("count") {
        let db = open_disk(dir.path(), "count.redb");
        let duration = if cfg.quick {
            Duration::from_secs(2)
        } else {
            Duration::from_secs(5)
        };
        // (saves committed inside the window, conflicts = attempts that did not commit,
        // the window in seconds). Saves that finish after the window (a writer may be
        // in a long backoff when it closes) count as neither, so both sides are
        // measured over the same time.
        let contend = |use_count_index: bool, ss: &str| -> (u64, u64, f64) {
            let committed = Arc::new(AtomicU64::new(0));
            let late = Arc::new(AtomicU64::new(0));
            let attempts = Arc::new(AtomicU64::new(0));
            let md = if use_count_index {
                md3.clone()
            } else {
                md2.clone()
            };
            // Create the store first: concurrent creations of one header would conflict.
            block_on(async {
                let tx = db.create_transaction().unwrap();
                drop(
                    RecordStore::open(&tx, Subspace::from(ss), md.clone())
                        .await
                        .unwrap(),
                );
                tx.commit().await.unwrap();
            });
            let deadline = Instant::now() + duration;
            let threads: Vec<_> = (0..8i64)
                .map(|t| {
                    let (db, md, committed, late, attempts) = (
                        db.clone(),
                        md.clone(),
                        committed.clone(),
                        late.clone(),
                        attempts.clone(),
                    );
                    let ss = Subspace::from(ss);
                    let users = Users::new();
                    std::thread::spawn(move || {
                        let counter = ss.pack(&("counter",));
                        let mut n = 0i64;
                        while Instant::now() < deadline {
                            let id = t * 1_000_000_000 + n;
                            let msg = users.make(id, 1);
                            // Through the run loop, as an application would: a
                            // conflict is retried after FoundationDB's backoff.
                            block_on(db.run(|tx, _| {
                                let (ss, md, msg, counter) =
                                    (ss.clone(), md.clone(), msg.clone(), counter.clone());
                                let attempts = &attempts;
                                async move {
                                    attempts.fetch_add(1, Ordering::Relaxed);
                                    let store = RecordStore::open(&tx, ss, md).await?;
                                    store.save_dynamic(&msg, Default::default()).await?;
                                    drop(store);
                                    if !use_count_index {
                                        let old = tx.get(&counter, false).await?;
                                        let v = old
                                            .map(|b| i64::from_le_bytes(b[..8].try_into().unwrap()))
                                            .unwrap_or(0);
                                        tx.set(&counter, &(v + 1).to_le_bytes());
                                    }
                                    Ok::<_, RecordStoreError>(())
                                }
                            }))
                            .unwrap();
                            if Instant::now() <= deadline {
                                committed.fetch_add(1, Ordering::Relaxed);
                            } else {
                                late.fetch_add(1, Ordering::Relaxed);
                            }
                            n += 1;
                        }
                    })
                })
                .collect();
            for t in threads {
                t.join().unwrap();
            }
            let committed = committed.load(Ordering::Relaxed);
            let all = committed + late.load(Ordering::Relaxed);
            (
                committed,
                attempts.load(Ordering::Relaxed) - all,
                duration.as_secs_f64(),
            )
        };
        let batches = |f: &mut dyn FnMut() -> (u64, u64, f64)| {
            let before = db.stats();
            let out = f();
            let after = db.stats();
            let per_batch = (after.committed - before.committed) as f64
                / (after.batches - before.batches).max(1) as f64;
            (out, per_batch)
        };
        let ((c_ok, c_conf, c_secs), c_batch) = batches(&mut || contend(true, "count"));
        let ((r_ok, r_conf, r_secs), r_batch) = batches(&mut || contend(false, "rmw"));
        eprintln!("count: {c_batch:.1} commits per batch; rmw: {r_batch:.1}");
        let (c, r) = (c_ok as f64 / c_secs, r_ok as f64 / r_secs);
        eprintln!(
            "count: {c_ok} committed {c_conf} conflicts; rmw: {r_ok} committed {r_conf} conflicts"
        );
        rows.push(row(
            "count index, 8 writers on one group: conflicts",
            c_conf.to_string(),
            format!("{r_conf} (rmw counter)"),
            "—".into(),
            "0",
            Some(c_conf == 0),
        ));
        rows.push(row(
            "count index, 8 writers on one group: committed saves vs read-modify-write counter",
            per_s(c),
            per_s(r),
            format!("{:.1}× faster", c / r.max(1e-9)),
            "≥ 5×",
            Some(c >= 5.0 * r),
        ));
        // What the machine allows: group commit with no engine (see `benches::ceiling`),
        // each writer spinning for what a save costs here in memory, between commits.
        let work = {
            let db = EmbeddedDatabase::in_memory().unwrap();
            let ss = Subspace::from("work");
            let mut id = 0i64;
            let saves = rate(duration / 5, || {
                save_one(&db, &ss, &md3, &users.user(id));
                id += 1;
                1
            });
            Duration::from_secs_f64(1.0 / saves)
        };
        let ceiling = benches::ceiling::group_commit(dir.path(), 8, work, 512, duration);
        eprintln!(
            "ceiling: {:.1} commits per batch; the count index reaches {:.0}% of its ratio",
            ceiling.per_batch,
            100.0 * (c / r.max(1e-9)) / ceiling.ratio()
        );
        rows.push(row(
            &format!(
                "↳ ceiling on this machine: group commit with no engine (8 threads spinning \
                 {:.0} µs, a save's cost in memory, then one log thread's write and \
                 fdatasync) vs its lone writer",
                work.as_secs_f64() * 1e6
            ),
            per_s(ceiling.group_per_s),
            per_s(ceiling.lone_per_s),
            format!("{:.1}× faster", ceiling.ratio()),
            "—",
            None,
        ));
    }

    // 4. SQLite: the same records, 2 secondary indexes, WAL, synchronous=FULL. SQLite's
    // table holds no record versions, so the rows with targets use a store that keeps
    // none either; each is followed by the same operation on a store that keeps them
    // (the default: a second key per record), for reference.
    if cfg.runs("sqlite") {
        let db = open_disk(dir.path(), "vs-sqlite.redb");
        // (label suffix, subspace, metadata, whether the row has the target)
        let stores = [
            (
                "",
                Subspace::from("users"),
                metadata_storing_versions(true, false, false),
                true,
            ),
            (
                "↳ reference: the store keeping record versions (a second key per record)",
                Subspace::from("users-versions"),
                md2.clone(),
                false,
            ),
        ];
        let sqlite = rusqlite::Connection::open(dir.path().join("users.sqlite")).unwrap();
        sqlite
            .execute_batch(
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
                 CREATE TABLE users (id INTEGER PRIMARY KEY, city TEXT NOT NULL, tier INTEGER NOT NULL, data BLOB NOT NULL);
                 CREATE INDEX users_by_city ON users (city, id);
                 CREATE INDEX users_by_tier ON users (tier, id);",
            )
            .unwrap();
        let preload = 20_000i64;
        for (_, ss, md, _) in &stores {
            bulk_load(&db, ss, md, &users, 0..preload);
        }
        {
            let tx = sqlite.unchecked_transaction().unwrap();
            {
                let mut ins = tx
                    .prepare("INSERT INTO users VALUES (?1, ?2, ?3, ?4)")
                    .unwrap();
                for id in 0..preload {
                    ins.execute(rusqlite::params![
                        id,
                        Users::city(id),
                        Users::tier(id),
                        users.user(id).encode_to_vec()
                    ])
                    .unwrap();
                }
            }
            tx.commit().unwrap();
        }
        // The row for `what` on one of `stores`: a target row, or a reference row.
        let sqlite_row =
            |what: &str, store: &(&str, Subspace, Arc<_>, bool), o: f64, s: f64, ratio: f64| {
                let (reference, _, _, target) = store;
                row(
                    if *target { what } else { reference },
                    per_s(o),
                    per_s(s),
                    format!("{ratio:.2}×"),
                    if *target { "≤ 1.5×" } else { "—" },
                    target.then_some(ratio <= 1.5),
                )
            };
        let (mut a, mut b) = (preload, 1_000_000_000i64);
        for store in &stores {
            let (_, ss, md, _) = store;
            let (o, s, ratio) = compare(
                &cfg,
                || {
                    a += 1;
                    save_one(&db, ss, md, &users.user(a));
                    1
                },
                || {
                    b += 1;
                    let msg = users.user(b);
                    sqlite
                        .prepare_cached("INSERT INTO users VALUES (?1, ?2, ?3, ?4)")
                        .unwrap()
                        .execute(rusqlite::params![
                            b,
                            Users::city(b),
                            Users::tier(b),
                            msg.encode_to_vec()
                        ])
                        .unwrap();
                    1
                },
            );
            eprintln!("sqlite insert: ours {o:.0}/s sqlite {s:.0}/s ratio {ratio:.2}");
            rows.push(sqlite_row(
                "vs SQLite: insert, 2 secondary indexes, 1 record/durable tx",
                store,
                o,
                s,
                ratio,
            ));
        }

        let mut seed = 7u64;
        let mut rnd = move || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 33) % preload as u64) as i64
        };
        let mut rnd2 = rnd;
        let desc = users.user.clone();
        // A typed load reads no version, so it runs on the first store only.
        for (decode, store, what) in [
            (
                Decode::Dynamic,
                &stores[0],
                "vs SQLite: point load (10 per read tx, dynamic decode)",
            ),
            (Decode::Dynamic, &stores[1], ""),
            (
                Decode::Typed,
                &stores[0],
                "vs SQLite: point load, typed (`load_record::<User>` vs `User::decode`)",
            ),
        ] {
            let (_, ss, md, _) = store;
            let (o, s, ratio) = compare(
                &cfg,
                || {
                    block_on(async {
                        let tx = db.create_transaction().unwrap();
                        let store = RecordStore::open(&tx, ss.clone(), md.clone())
                            .await
                            .unwrap();
                        for _ in 0..10 {
                            let pk = [Element::Int(rnd())];
                            let found = match decode {
                                Decode::Typed => {
                                    store.load_record::<User>(&pk).await.unwrap().is_some()
                                }
                                _ => store.load_dynamic(&pk).await.unwrap().is_some(),
                            };
                            assert!(found);
                        }
                    });
                    10
                },
                || {
                    let tx = sqlite.unchecked_transaction().unwrap();
                    {
                        let mut q = tx
                            .prepare_cached("SELECT data FROM users WHERE id = ?1")
                            .unwrap();
                        for _ in 0..10 {
                            let data: Vec<u8> = q.query_row([rnd2()], |r| r.get(0)).unwrap();
                            match decode {
                                Decode::Typed => drop(User::decode(data.as_slice()).unwrap()),
                                _ => drop(
                                    DynamicMessage::decode(desc.clone(), data.as_slice()).unwrap(),
                                ),
                            }
                        }
                    }
                    tx.commit().unwrap();
                    10
                },
            );
            eprintln!("sqlite load {decode:?}: ours {o:.0}/s sqlite {s:.0}/s ratio {ratio:.2}");
            rows.push(sqlite_row(what, store, o, s, ratio));
        }

        for store in &stores {
            let (_, ss, md, _) = store;
            let (o, s, ratio) = compare(
                &cfg,
                || {
                    let after = rnd();
                    let page = benches::records::page(&db, ss, md, after, 100);
                    assert!(!page.items.is_empty());
                    1
                },
                || {
                    let after = rnd2();
                    let tx = sqlite.unchecked_transaction().unwrap();
                    {
                        let mut q = tx
                            .prepare_cached(
                                "SELECT id, data FROM users WHERE id > ?1 ORDER BY id LIMIT 100",
                            )
                            .unwrap();
                        // The page an application serves: every record of it decoded and
                        // kept, with its primary key (as a record-layer page holds them).
                        let mut rows = q.query([after]).unwrap();
                        let mut page = Vec::with_capacity(100);
                        while let Some(r) = rows.next().unwrap() {
                            let id: i64 = r.get(0).unwrap();
                            let data: Vec<u8> = r.get(1).unwrap();
                            page.push((
                                id,
                                DynamicMessage::decode(desc.clone(), data.as_slice()).unwrap(),
                            ));
                        }
                        assert!(!page.is_empty());
                    }
                    tx.commit().unwrap();
                    1
                },
            );
            eprintln!("sqlite page: ours {o:.0}/s sqlite {s:.0}/s ratio {ratio:.2}");
            rows.push(sqlite_row(
                "vs SQLite: keyset-paged scan, pages of 100 (decoded)",
                store,
                o,
                s,
                ratio,
            ));
        }
    }

    // 5. Page k vs page 1 at N records, offset next to it; peak RSS while paging.
    if cfg.runs("paging") {
        let n = cfg.page_records;
        let page_size = 100;
        let md = metadata(false, false);
        let db = EmbeddedDatabase::builder()
            .max_transaction_lifetime(Duration::from_secs(600))
            .in_memory()
            .unwrap();
        let ss = Subspace::from("paging");
        let t = Instant::now();
        bulk_load(&db, &ss, &md, &users, 0..n as i64);
        eprintln!("loaded {n} records in {:.1?}", t.elapsed());
        let page_from = |c: Option<Continuation>| {
            block_on(async {
                let tx = db.create_transaction().unwrap();
                let store = RecordStore::open(&tx, ss.clone(), md.clone())
                    .await
                    .unwrap();
                let options = ExecuteOptions::new()
                    .continuation(c)
                    .return_limit(page_size);
                store
                    .execute(&RecordScan::new(RecordRange::all()), &options)
                    .unwrap()
                    .collect_page()
                    .await
                    .unwrap()
            })
        };
        // Full pass with continuations, measuring peak RSS from here on.
        let rss_before = status_kib("VmRSS:");
        let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
        let pages = n.div_ceil(page_size);
        let deep = pages - 1;
        let mut token = None;
        let mut deep_token = None;
        let mut seen = 0;
        let mut k = 1;
        loop {
            if k == deep {
                deep_token = token.clone();
            }
            let page = page_from(token.clone());
            seen += page.items.len();
            if page.reason == NoNextReason::SourceExhausted {
                break;
            }
            token = Some(page.continuation);
            k += 1;
        }
        assert_eq!(seen, n);
        let hwm = status_kib("VmHWM:");
        let time_page = |c: &Option<Continuation>| {
            let mut v = Vec::new();
            for _ in 0..31 {
                let t = Instant::now();
                let p = page_from(c.clone());
                v.push(t.elapsed().as_secs_f64());
                assert_eq!(p.items.len(), page_size);
            }
            median(v)
        };
        let (mut p1, mut pk) = (Vec::new(), Vec::new());
        for _ in 0..cfg.rounds {
            p1.push(time_page(&None));
            pk.push(time_page(&deep_token));
        }
        let (p1, pk) = (median(p1), median(pk));
        let skip = (deep - 1) * page_size;
        let offset = {
            let t = Instant::now();
            let items: Vec<_> = block_on(async {
                let tx = db.create_transaction().unwrap();
                let store = RecordStore::open(&tx, ss.clone(), md.clone())
                    .await
                    .unwrap();
                let options = ExecuteOptions::new().limits(ScanLimits::unlimited());
                store
                    .execute(&RecordScan::new(RecordRange::all()), &options)
                    .unwrap()
                    .skip(skip)
                    .take(page_size)
                    .collect()
                    .await
            });
            assert_eq!(items.len(), page_size);
            t.elapsed().as_secs_f64()
        };
        eprintln!("paging: page 1 {p1:.6}s page {deep} {pk:.6}s offset {offset:.3}s");
        rows.push(row(
            &format!(
                "page k={deep} vs page 1 with continuations ({n} records, pages of {page_size})"
            ),
            format!("{:.0} µs", pk * 1e6),
            format!("{:.0} µs (page 1)", p1 * 1e6),
            format!("{:.2}×", pk / p1),
            "≤ 1.2×",
            Some(pk / p1 <= 1.2),
        ));
        rows.push(row(
            &format!("↳ offset pagination (skip {skip}) for the same page"),
            format!("{:.0} µs", offset * 1e6),
            format!("{:.0} µs (page 1)", p1 * 1e6),
            format!("{:.0}×", offset / p1),
            "—",
            None,
        ));
        rows.push(row(
            &format!("peak RSS while paging all {n} records (in-memory engine holding them)"),
            format!("{:.0} MiB peak", hwm as f64 / 1024.0),
            format!("{:.0} MiB before", rss_before as f64 / 1024.0),
            format!(
                "+{:.0} MiB",
                (hwm as f64 - rss_before as f64).max(0.0) / 1024.0
            ),
            "flat",
            if reset {
                Some(hwm <= rss_before + 64 * 1024)
            } else {
                None
            },
        ));
    }

    let mut table = String::from("| measurement | fdb-records | baseline | ratio | target | met? |\n|---|---:|---:|---:|---|---|\n");
    for r in &rows {
        table.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            r.what, r.ours, r.baseline, r.ratio, r.target, r.met
        ));
    }
    let command = format!(
        "cargo run --release -p benches --bin report{}",
        if cfg.quick { " -- --quick" } else { "" }
    );
    println!(
        "Command: `{command}`\n\nMachine: {}\n\n{table}",
        benches::machine::describe()
    );
}
