//! Runs every workload on the embedded engine and on raw redb, interleaved in one
//! process, and prints a markdown comparison table.
//!
//! ```text
//! cargo run --release -p benches --bin engine-report [-- --quick]
//! ```
//!
//! Each workload runs 5 rounds (3 with `--quick`). Within a round the contestants (engine, raw
//! redb, and for reads a zero-copy raw redb reference) take turns in short slices,
//! rotating which goes first, until each has run for the round's length: bursts of
//! load from elsewhere on a noisy machine then hit every contestant alike. The table
//! shows each contestant's median over rounds and the median of the per-round ratios.

use benches::{
    commits, concurrent_commits, key, machine, point_reads, point_reads_with, run_for, scans,
    scans_with, Backend, EngineBackend, Fixture, RedbBackend, Rng, Stop, WriteKeys, CLIENTS, KEYS,
    KEY_LEN, READS_PER_TX, SCAN_ROWS, VALUE_LEN,
};
use std::time::{Duration, Instant};

/// Reads and single-client durable commits must reach this fraction of raw redb.
const MIN_RATIO: f64 = 0.8;
/// Durable commits per second wanted from the engine with [`CLIENTS`] clients.
const GROUP_COMMIT_TARGET: f64 = 20_000.0;
/// "Well above" raw redb's single-client commit rate: at least this multiple.
const GROUP_COMMIT_MULTIPLE: f64 = 2.0;

/// One slice of a round: operations done, time taken and, for a batching backend,
/// durable storage transactions used.
#[derive(Clone, Copy, Default)]
struct Slice {
    ops: u64,
    elapsed: Duration,
    batches: Option<u64>,
}

impl std::ops::AddAssign for Slice {
    fn add_assign(&mut self, other: Slice) {
        self.ops += other.ops;
        self.elapsed += other.elapsed;
        self.batches = match (self.batches, other.batches) {
            (None, b) | (b, None) => b,
            (Some(a), Some(b)) => Some(a + b),
        };
    }
}

/// One round's result for one contestant: operations per second, and for a batching
/// backend the mean number of commits per durable storage transaction.
#[derive(Clone, Copy)]
struct Sample {
    rate: f64,
    per_batch: Option<f64>,
}

impl From<Slice> for Sample {
    fn from(s: Slice) -> Self {
        Sample {
            rate: s.ops as f64 / s.elapsed.as_secs_f64(),
            per_batch: s.batches.map(|b| s.ops as f64 / b.max(1) as f64),
        }
    }
}

/// Runs one contestant for about the given time with the given seed.
type Measure<'a> = Box<dyn Fn(Duration, u64) -> Slice + 'a>;

enum Target {
    /// Engine / raw ≥ [`MIN_RATIO`].
    Ratio,
    /// Engine ≥ [`GROUP_COMMIT_TARGET`] and ≥ [`GROUP_COMMIT_MULTIPLE`] × the raw
    /// single-client rate measured in row `single_row`.
    GroupCommit { single_row: usize },
}

struct Row<'a> {
    label: String,
    target: Target,
    /// Length of one contestant's turn.
    slice: Duration,
    /// Engine, raw redb, then optionally a reference (zero-copy raw redb).
    contestants: Vec<Measure<'a>>,
    samples: Vec<Vec<Sample>>,
}

fn timed(d: Duration, per_call: u64, batch: impl FnMut(u64)) -> Slice {
    let (ops, elapsed) = run_for(d, per_call, batch);
    Slice {
        ops,
        elapsed,
        batches: None,
    }
}

fn reads<'a, B: Backend>(backend: &'a B) -> Measure<'a> {
    Box::new(move |d, seed| {
        let mut rng = Rng::new(seed);
        timed(d, 10, |n| point_reads(backend, &mut rng, n))
    })
}

fn range_scans<'a, B: Backend>(backend: &'a B) -> Measure<'a> {
    Box::new(move |d, seed| {
        let mut rng = Rng::new(seed);
        timed(d, 5, |n| scans(backend, &mut rng, n))
    })
}

fn durable_commits<'a, B: Backend>(
    fixture: &'a Fixture<B>,
    clients: usize,
    keys: WriteKeys,
) -> Measure<'a> {
    Box::new(move |d, seed| {
        let before = fixture.backend.storage_commits();
        let (ops, elapsed) = if clients == 1 {
            let mut rng = Rng::new(seed);
            run_for(d, 1, |k| commits(fixture, &mut rng, k, keys))
        } else {
            concurrent_commits(fixture, clients, Stop::After(d), keys, seed)
        };
        let after = fixture.backend.storage_commits();
        Slice {
            ops,
            elapsed,
            batches: before.zip(after).map(|(b, a)| a - b),
        }
    })
}

fn median(xs: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = xs.collect();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn fmt_rate(x: f64) -> String {
    let s = (x.round() as u64).to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Checks, untimed, that a backend holds the data set.
fn verify<B: Backend>(backend: &B) {
    let keys: Vec<_> = (0..READS_PER_TX as u64)
        .map(|i| key(i * 7919 % KEYS))
        .collect();
    assert_eq!(
        backend.point_reads(&keys),
        READS_PER_TX * VALUE_LEN,
        "{}: point reads",
        B::NAME
    );
    assert_eq!(
        backend.scan(&key(KEYS - SCAN_ROWS as u64), SCAN_ROWS),
        SCAN_ROWS,
        "{}: scan",
        B::NAME
    );
}

/// Median over rounds of engine / raw within each round.
fn paired_ratio(engine: &[Sample], other: &[Sample]) -> f64 {
    median(engine.iter().zip(other).map(|(e, o)| e.rate / o.rate))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    if let Some(bad) = args.iter().find(|a| *a != "--quick") {
        eprintln!("unknown argument {bad}; usage: engine-report [--quick]");
        std::process::exit(2);
    }
    // Rounds, time each contestant runs per round, and its warm-up before the first.
    let (rounds, per_round, warm_up) = if quick {
        (3, Duration::from_millis(600), Duration::from_millis(150))
    } else {
        (5, Duration::from_secs(2), Duration::from_millis(500))
    };
    let started = Instant::now();
    let load_before = machine::load_average();
    let io_before = machine::io_pressure();

    eprintln!("loading {KEYS} keys into each backend…");
    let engine = Fixture::<EngineBackend>::new(KEYS);
    let raw = Fixture::<RedbBackend>::new(KEYS);
    verify(&engine.backend);
    verify(&raw.backend);
    let raw_db = &raw.backend;

    let read_slice = Duration::from_millis(100);
    let mut rows = vec![
        Row {
            label: format!("point reads (tx of {READS_PER_TX} gets)"),
            target: Target::Ratio,
            slice: read_slice,
            contestants: vec![
                reads(&engine.backend),
                reads(&raw.backend),
                Box::new(move |d, seed| {
                    let mut rng = Rng::new(seed);
                    timed(d, 10, |n| {
                        point_reads_with(&mut rng, n, |keys| raw_db.point_reads_borrowed(keys))
                    })
                }),
            ],
            samples: Vec::new(),
        },
        Row {
            label: format!("range scans (tx of {SCAN_ROWS} rows)"),
            target: Target::Ratio,
            slice: read_slice,
            contestants: vec![
                range_scans(&engine.backend),
                range_scans(&raw.backend),
                Box::new(move |d, seed| {
                    let mut rng = Rng::new(seed);
                    timed(d, 5, |n| {
                        scans_with(&mut rng, n, |start, rows| raw_db.scan_borrowed(start, rows))
                    })
                }),
            ],
            samples: Vec::new(),
        },
    ];
    for (clients, keys) in [
        (1, WriteKeys::Update),
        (1, WriteKeys::Append),
        (CLIENTS, WriteKeys::Update),
        (CLIENTS, WriteKeys::Append),
    ] {
        let what = match keys {
            WriteKeys::Update => "random existing key",
            WriteKeys::Append => "new key, ascending",
        };
        let client_s = if clients == 1 { "client" } else { "clients" };
        rows.push(Row {
            label: format!("durable commits, {clients} {client_s} ({what})"),
            target: if clients == 1 {
                Target::Ratio
            } else {
                Target::GroupCommit {
                    single_row: if keys == WriteKeys::Update { 2 } else { 3 },
                }
            },
            slice: Duration::from_millis(if clients == 1 { 150 } else { 300 }),
            contestants: vec![
                durable_commits(&engine, clients, keys),
                durable_commits(&raw, clients, keys),
            ],
            samples: Vec::new(),
        });
    }

    for (w, row) in rows.iter_mut().enumerate() {
        eprintln!("{}…", row.label);
        let n = row.contestants.len();
        row.samples = vec![Vec::new(); n];
        for c in &row.contestants {
            c(warm_up, 1);
        }
        for round in 0..rounds {
            let mut totals = vec![Slice::default(); n];
            let mut turn = 0;
            while totals.iter().any(|t| t.elapsed < per_round) {
                // Within a turn every contestant gets the same keys; who goes first rotates.
                let seed = 1_000_000 * (w as u64 + 1) + 1000 * round as u64 + turn as u64;
                for i in 0..n {
                    let c = (i + turn) % n;
                    totals[c] += row.contestants[c](row.slice, seed);
                }
                turn += 1;
            }
            for (samples, total) in row.samples.iter_mut().zip(totals) {
                samples.push(Sample::from(total));
            }
            let rates: Vec<String> = row
                .samples
                .iter()
                .map(|s| format!("{:.0}/s", s[round].rate))
                .collect();
            eprintln!("  round {}: {}", round + 1, rates.join(", "));
        }
    }

    let command = format!(
        "cargo run --release -p benches --bin engine-report{}",
        if quick { " -- --quick" } else { "" }
    );
    println!("# Engine benchmark: embedded engine vs raw redb\n");
    println!("- Command: `{command}`");
    println!("- Machine: {}", machine::describe());
    println!(
        "- Storage: database files under {}",
        machine::filesystem(engine.dir())
    );
    if let (Some(before), Some(after)) = (load_before, machine::load_average()) {
        println!(
            "- Load average (1 min) at start / end of the run: {before:.2} / {after:.2} \
             (other work on the machine adds noise, above all to durable commits)"
        );
    }
    if let (Some(before), Some(after)) = (io_before, machine::io_pressure()) {
        println!(
            "- I/O pressure (`/proc/pressure/io`, some avg60) at start / end: {before:.1}% / {after:.1}% \
             (the end value includes this run's own commits)"
        );
    }
    println!(
        "- Data set: {} keys of {KEY_LEN} B (tuple-like), {VALUE_LEN}-B values; bulk load took {:.2} s \
         (engine, 5,000 keys per transaction) and {:.2} s (redb, one transaction)",
        fmt_rate(KEYS as f64),
        engine.load_time.as_secs_f64(),
        raw.load_time.as_secs_f64()
    );
    println!(
        "- Method: {rounds} rounds per workload. In a round the contestants take turns in short slices \
         (100 ms for reads, 150 ms for 1-client and 300 ms for {CLIENTS}-client commits), rotating who goes \
         first, until each has run {:.1} s; each contestant had a {:.2} s warm-up. Rates are medians over \
         rounds; ratio is the median of the per-round engine / raw redb ratios. Reads are transactions/s \
         (non-snapshot reads; values returned as owned bytes on both sides); commits are durable commits/s \
         (`Durability::Immediate`), each writing one {VALUE_LEN}-B value.",
        per_round.as_secs_f64(),
        warm_up.as_secs_f64()
    );
    println!();
    println!("| operation | engine ops/s | raw redb ops/s | ratio | target | met? |");
    println!("|---|---:|---:|---:|---|---|");
    let medians: Vec<Vec<f64>> = rows
        .iter()
        .map(|r| {
            r.samples
                .iter()
                .map(|s| median(s.iter().map(|x| x.rate)))
                .collect()
        })
        .collect();
    for (row, m) in rows.iter().zip(&medians) {
        let (e, r) = (m[0], m[1]);
        let ratio = paired_ratio(&row.samples[0], &row.samples[1]);
        let (target, met) = match row.target {
            Target::Ratio => (format!("ratio ≥ {MIN_RATIO}"), ratio >= MIN_RATIO),
            Target::GroupCommit { single_row } => {
                let single = medians[single_row][1];
                (
                    format!(
                        "≥ {}/s and ≥ {GROUP_COMMIT_MULTIPLE}× raw 1-client ({}/s): {:.1}×",
                        fmt_rate(GROUP_COMMIT_TARGET),
                        fmt_rate(single),
                        e / single
                    ),
                    e >= GROUP_COMMIT_TARGET && e >= GROUP_COMMIT_MULTIPLE * single,
                )
            }
        };
        let met = if met { "yes" } else { "**no**" };
        println!(
            "| {} | {} | {} | {ratio:.2} | {target} | {met} |",
            row.label,
            fmt_rate(e),
            fmt_rate(r),
        );
        if let Some(&z) = m.get(2) {
            println!(
                "| ↳ reference: raw redb zero-copy (values only borrowed) | {} | {} | {:.2} | — | — |",
                fmt_rate(e),
                fmt_rate(z),
                paired_ratio(&row.samples[0], &row.samples[2])
            );
        }
    }
    println!(
        "\nPer-round ops/s (engine / raw redb [/ zero-copy]); for the engine's concurrent commits, \
         the mean batch size (commits per durable storage transaction) in brackets:\n"
    );
    for row in &rows {
        let per_round: Vec<String> = (0..rounds)
            .map(|i| {
                let parts: Vec<String> = row
                    .samples
                    .iter()
                    .map(|s| match s[i].per_batch {
                        Some(b) if b > 1.05 => format!("{} [{b:.1}]", fmt_rate(s[i].rate)),
                        _ => fmt_rate(s[i].rate),
                    })
                    .collect();
                parts.join(" / ")
            })
            .collect();
        println!("- {}: {}", row.label, per_round.join("; "));
    }
    println!(
        "\nTotal run time: {:.0} s.",
        started.elapsed().as_secs_f64()
    );
}
