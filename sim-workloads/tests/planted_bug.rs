//! The checks can fail: with the SDK's test-only planted bug on (the COUNT maintainer
//! forgets the record it replaces, so updates and retries after
//! `commit_unknown_result` count a record twice), the simulation must fail and name
//! the violated invariant. Its own test binary: the switch is process-wide.

use fdb_records::index::count::set_planted_double_count_bug;
use sim_workloads::sim::{run_seed, SimConfig};

#[test]
fn planted_double_count_is_caught() {
    set_planted_double_count_bug(true);
    let result = run_seed(1, &SimConfig::small());
    set_planted_double_count_bug(false);
    let failure = match result {
        Ok(r) => panic!(
            "the planted bug went unnoticed (trace {:016x})",
            r.trace_hash
        ),
        Err(f) => f,
    };
    println!("{failure}");
    assert!(
        matches!(
            failure.violation.invariant,
            "index-consistency" | "exactly-once"
        ),
        "{failure}"
    );
    let message = failure.to_string();
    assert!(
        message.contains("seed 1") && message.contains("per_tier"),
        "{message}"
    );
    // And with the switch off the same seed passes.
    run_seed(1, &SimConfig::small()).unwrap_or_else(|f| panic!("{f}"));
}

#[test]
fn simulate_binary_reports_the_seed_and_invariant_and_exits_non_zero() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_simulate"))
        .args(["--small", "--plant-bug", "--seed", "3"])
        .output()
        .expect("run simulate");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stdout.contains("seed 3 FAILED") && stdout.contains("invariant `exactly-once` violated"),
        "{stdout}"
    );
    assert!(stdout.contains("replay with --seed 3"), "{stdout}");
}
