//! Criterion benchmarks of the embedded engine next to raw redb.
//!
//! ```text
//! cargo bench -p benches --bench engine
//! ```
//!
//! Each group has an `engine` and a `redb` member; throughput is in transactions
//! (reads) or durable commits. Sample sizes are small so the whole run stays within a
//! few minutes on a 2-core machine; `engine-report` gives the interleaved comparison.

mod common;

use benches::{
    commits, concurrent_commits, point_reads, point_reads_with, scans, scans_with, Backend,
    EngineBackend, Fixture, RedbBackend, Rng, Stop, WriteKeys, CLIENTS, KEYS,
};
use criterion::{BenchmarkGroup, Criterion, Throughput};
use std::hint::black_box;

type Group<'a> = BenchmarkGroup<'a, criterion::measurement::WallTime>;

fn group<'a>(c: &'a mut Criterion, name: &str) -> Group<'a> {
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(1));
    group
}

fn point_read_bench<B: Backend>(group: &mut Group<'_>, backend: &B) {
    let mut rng = Rng::new(1);
    group.bench_function(B::NAME, |b| b.iter(|| point_reads(backend, &mut rng, 1)));
}

fn scan_bench<B: Backend>(group: &mut Group<'_>, backend: &B) {
    let mut rng = Rng::new(2);
    group.bench_function(B::NAME, |b| b.iter(|| scans(backend, &mut rng, 1)));
}

fn commit_bench<B: Backend>(group: &mut Group<'_>, fixture: &Fixture<B>, keys: WriteKeys) {
    let mut rng = Rng::new(3);
    group.bench_function(B::NAME, |b| b.iter(|| commits(fixture, &mut rng, 1, keys)));
}

fn concurrent_commit_bench<B: Backend>(
    group: &mut Group<'_>,
    fixture: &Fixture<B>,
    keys: WriteKeys,
) {
    let mut seed = 4;
    group.bench_function(B::NAME, |b| {
        b.iter_custom(|iters| {
            seed += 1;
            // About `iters` commits in all, spread over the clients.
            let per_client = iters.div_ceil(CLIENTS as u64).max(1);
            let (n, elapsed) =
                concurrent_commits(fixture, CLIENTS, Stop::Commits(per_client), keys, seed);
            black_box(n);
            // Scale to exactly `iters` commits' worth of time.
            elapsed.mul_f64(iters as f64 / n as f64)
        })
    });
}

fn main() {
    let mut c = common::criterion();

    let engine = Fixture::<EngineBackend>::new(KEYS);
    let raw = Fixture::<RedbBackend>::new(KEYS);

    let mut g = group(&mut c, "point_reads_10_per_tx");
    point_read_bench(&mut g, &engine.backend);
    point_read_bench(&mut g, &raw.backend);
    let mut rng = Rng::new(1);
    g.bench_function("redb_zero_copy", |b| {
        b.iter(|| point_reads_with(&mut rng, 1, |keys| raw.backend.point_reads_borrowed(keys)))
    });
    g.finish();

    let mut g = group(&mut c, "range_scan_100_rows");
    scan_bench(&mut g, &engine.backend);
    scan_bench(&mut g, &raw.backend);
    let mut rng = Rng::new(2);
    g.bench_function("redb_zero_copy", |b| {
        b.iter(|| {
            scans_with(&mut rng, 1, |start, rows| {
                raw.backend.scan_borrowed(start, rows)
            })
        })
    });
    g.finish();

    for (name, keys) in [("update", WriteKeys::Update), ("append", WriteKeys::Append)] {
        let mut g = group(&mut c, &format!("durable_commit_1_client_{name}"));
        commit_bench(&mut g, &engine, keys);
        commit_bench(&mut g, &raw, keys);
        g.finish();

        let mut g = group(&mut c, &format!("durable_commit_{CLIENTS}_clients_{name}"));
        concurrent_commit_bench(&mut g, &engine, keys);
        concurrent_commit_bench(&mut g, &raw, keys);
        g.finish();
    }

    c.final_summary();
}
