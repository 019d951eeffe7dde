//! `simulate --seeds N` runs N fresh random seeds; `simulate --seed S` replays one.
//! Prints each seed with its trace hash; a failure prints the seed and the violated
//! invariant and exits non-zero.

use sim_workloads::sim::{run_seed, SimConfig};
use std::process::ExitCode;
use std::time::Instant;

fn usage() -> ExitCode {
    eprintln!(
        "usage: simulate [--seeds N | --seed S]... [--small] [--no-faults] [--trace] [--plant-bug]"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut seeds: Vec<u64> = Vec::new();
    let mut cfg = SimConfig::standard();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--seeds" => {
                let Some(n) = args.next().and_then(|n| n.parse::<u64>().ok()) else {
                    return usage();
                };
                // Fresh seeds: the only place that uses OS randomness.
                seeds.extend((0..n).map(|_| rand::random::<u64>()));
            }
            "--seed" => {
                let Some(s) = args.next().and_then(|s| s.parse::<u64>().ok()) else {
                    return usage();
                };
                seeds.push(s);
            }
            "--small" => {
                cfg = SimConfig {
                    faults: cfg.faults,
                    ..SimConfig::small()
                }
            }
            "--no-faults" => cfg.faults = false,
            "--trace" => cfg.keep_trace = true,
            // Test-only: turns on the SDK's planted COUNT bug, to show a failing run.
            "--plant-bug" => fdb_records::index::count::set_planted_double_count_bug(true),
            _ => return usage(),
        }
    }
    if seeds.is_empty() {
        return usage();
    }
    let mut failed = 0;
    for seed in seeds {
        let start = Instant::now();
        match run_seed(seed, &cfg) {
            Ok(r) => {
                for line in &r.trace {
                    println!("  {line}");
                }
                println!(
                    "seed {seed} ok trace {:016x} ({} ops, {} restarts, {:.1?}) {}",
                    r.trace_hash,
                    r.trace_lines,
                    r.restarts,
                    start.elapsed(),
                    r.summary
                )
            }
            Err(f) => {
                println!("{f}");
                failed += 1;
            }
        }
    }
    if failed > 0 {
        eprintln!("{failed} seed(s) failed");
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
