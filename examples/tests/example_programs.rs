//! The example programs run to completion and their own checks pass (they exit
//! non-zero otherwise).

use std::process::Command;

fn run(exe: &str) {
    let out = Command::new(exe).output().expect("run example");
    assert!(
        out.status.success(),
        "{exe} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("All checks passed."));
}

#[test]
fn quickstart_passes_its_checks() {
    run(env!("CARGO_BIN_EXE_quickstart"));
}

#[test]
fn schema_evolution_passes_its_checks() {
    run(env!("CARGO_BIN_EXE_schema-evolution"));
}
