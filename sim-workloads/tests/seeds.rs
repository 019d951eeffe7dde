//! CI: a fixed set of seeds plus one fresh random seed, in a size that suits debug
//! builds, and the determinism check (same seed twice, same trace hash).

use sim_workloads::sim::{run_seed, SimConfig};

const FIXED: [u64; 3] = [1, 42, 0xDEAD_BEEF];

#[test]
fn fixed_seeds_pass() {
    for seed in FIXED {
        match run_seed(seed, &SimConfig::small()) {
            Ok(r) => println!(
                "seed {seed} ok trace {:016x} ({} ops)",
                r.trace_hash, r.trace_lines
            ),
            Err(f) => panic!("{f}"),
        }
    }
}

#[test]
fn a_fresh_random_seed_passes() {
    let seed = rand::random::<u64>();
    println!("fresh seed {seed}");
    if let Err(f) = run_seed(seed, &SimConfig::small()) {
        panic!("{f}");
    }
}

#[test]
fn same_seed_same_trace() {
    let a = run_seed(7, &SimConfig::small()).unwrap_or_else(|f| panic!("{f}"));
    let b = run_seed(7, &SimConfig::small()).unwrap_or_else(|f| panic!("{f}"));
    assert_eq!(a.trace_hash, b.trace_hash, "seed 7 is not deterministic");
    assert_eq!(a.trace_lines, b.trace_lines);
    let c = run_seed(8, &SimConfig::small()).unwrap_or_else(|f| panic!("{f}"));
    assert_ne!(a.trace_hash, c.trace_hash, "different seeds should differ");
}
