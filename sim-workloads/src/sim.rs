//! The in-process runner: one seed = one on-disk embedded database with a
//! [`ManualClock`], seeded faults, several concurrent clients joined on one thread,
//! engine restarts between phases, and validation after each phase.

use crate::schema;
use crate::workload::{self, Ctx, PhaseConfig, WriterConfig};
use crate::{Shared, Violation};
use fdb_records::backend::embedded::{EmbeddedDatabase, FaultConfig, ManualClock};
use foundationdb_tuple::Subspace;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Size of a run.
#[derive(Clone, Copy, Debug)]
pub struct SimConfig {
    pub writers: usize,
    pub pagers: usize,
    pub ops_per_phase: usize,
    pub scans_per_phase: usize,
    /// Include the ~10 MB transaction.
    pub near_limit: bool,
    /// Fault injection on.
    pub faults: bool,
    /// Keep the operation trace in the report (for `--trace`).
    pub keep_trace: bool,
    /// Crash the engine under running clients in phases 1–2 (half the seeds).
    pub crashes: bool,
}

impl SimConfig {
    /// The `simulate` binary's default.
    pub fn standard() -> Self {
        SimConfig {
            writers: 4,
            pagers: 2,
            ops_per_phase: 40,
            scans_per_phase: 5,
            near_limit: true,
            faults: true,
            keep_trace: false,
            crashes: true,
        }
    }
    /// Small enough for `cargo test` in debug builds.
    pub fn small() -> Self {
        SimConfig {
            writers: 3,
            pagers: 1,
            ops_per_phase: 15,
            scans_per_phase: 2,
            near_limit: false,
            faults: true,
            keep_trace: false,
            crashes: true,
        }
    }
}

/// What a passing run reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimReport {
    pub seed: u64,
    pub trace_hash: u64,
    pub trace_lines: u64,
    pub restarts: u32,
    pub summary: String,
    /// The operation trace, when [`SimConfig::keep_trace`] is set.
    pub trace: Vec<String>,
}

/// A failing run: the seed, the phase and the violated invariant.
#[derive(Clone, Debug)]
pub struct SimFailure {
    pub seed: u64,
    pub phase: u32,
    pub violation: Violation,
    pub trace_hash: u64,
}

impl std::fmt::Display for SimFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "seed {} FAILED in phase {}: {} (trace hash {:016x}; replay with --seed {})",
            self.seed, self.phase, self.violation, self.trace_hash, self.seed
        )
    }
}

/// Phases, with an engine restart (drop every handle, reopen from disk) between each:
/// 0 on metadata v1; 1 upgrades to v2 and starts the online build, crashing mid-build;
/// 2 resumes the build under load; 3 keeps writing on the built indexes.
pub const PHASES: u32 = 4;

fn faults(seed: u64, phase: u32) -> FaultConfig {
    let mut rng = ChaCha8Rng::seed_from_u64(
        seed.wrapping_mul(0xD1B5_4A32_D192_ED03) ^ (0xFA17 + u64::from(phase)),
    );
    FaultConfig {
        seed: rng.random(),
        unknown_result_committed: rng.random_range(0.0..0.06),
        unknown_result_not_committed: rng.random_range(0.0..0.06),
        spurious_not_committed: rng.random_range(0.0..0.06),
        transaction_too_old: rng.random_range(0.0..0.02),
        delay: rng.random_range(0.0..0.1),
        max_delay: Duration::from_millis(rng.random_range(1..20)),
    }
}

/// Runs one seed.
pub fn run_seed(seed: u64, cfg: &SimConfig) -> Result<SimReport, SimFailure> {
    let shared = Arc::new(Mutex::new(Shared {
        keep_trace: cfg.keep_trace,
        ..Shared::default()
    }));
    let fail = |phase: u32, violation: Violation, shared: &Arc<Mutex<Shared>>| SimFailure {
        seed,
        phase,
        violation,
        trace_hash: shared.lock().map(|s| s.trace_hash()).unwrap_or(0),
    };
    let dir = tempfile::tempdir().map_err(|e| {
        fail(
            0,
            Violation::new("setup", format!("temp dir: {e}")),
            &shared,
        )
    })?;
    let path = dir.path().join("sim.redb");
    let clock = ManualClock::new();
    let mut summary = String::new();
    for phase in 0..PHASES {
        let mut builder = EmbeddedDatabase::builder()
            .clock(clock.clone())
            .seed(seed.wrapping_add(u64::from(phase)));
        if cfg.faults {
            builder = builder.faults(faults(seed, phase));
        }
        let db = builder.open(&path).map_err(|e| {
            fail(
                phase,
                Violation::new("restart", format!("reopening the engine: {e}")),
                &shared,
            )
        })?;
        let ctx = Ctx {
            db,
            store: Subspace::from(("sim", "store")),
            log: Subspace::from(("sim", "oplog")),
            markers: Subspace::from(("sim", "markers")),
            md: if phase == 0 {
                schema::metadata_v1()
            } else {
                schema::metadata_v2()
            },
            pool: schema::pool(),
            shared: shared.clone(),
        };
        let pc = PhaseConfig {
            writers: cfg.writers,
            pagers: cfg.pagers,
            writer: WriterConfig {
                ops: cfg.ops_per_phase,
                near_limit: cfg.near_limit,
            },
            scans: cfg.scans_per_phase,
            polls: cfg.ops_per_phase / 2,
            // Pages of one scan in phases 1, 2 and 3 (same metadata), across restarts.
            long_scan: match phase {
                0 => None,
                1 | 2 => Some(false),
                _ => Some(true),
            },
            // Phases 1 and 2 may end in a crash: clients dropped mid-flight.
            crash_after: {
                let mut r = ChaCha8Rng::seed_from_u64(
                    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (0xC4A5 + u64::from(phase)),
                );
                (cfg.crashes && (phase == 1 || phase == 2) && r.random_bool(0.5))
                    .then(|| r.random_range(10..120))
            },
            build: match phase {
                0 => None,
                1 => Some(Some(2)),
                _ => Some(None),
            },
        };
        futures::executor::block_on(async {
            workload::run_clients(&ctx, seed, phase, pc).await?;
            let s = workload::validate(&ctx).await?;
            ctx.shared
                .lock()
                .unwrap()
                .trace(&format!("validate {phase} {s}"));
            summary = s;
            Ok::<_, Violation>(())
        })
        .map_err(|v| fail(phase, v, &shared))?;
        // Restart: every handle of this engine is dropped here.
        drop(ctx);
    }
    let sh = shared.lock().unwrap();
    Ok(SimReport {
        seed,
        trace_hash: sh.trace_hash(),
        trace_lines: sh.trace_lines(),
        restarts: PHASES - 1,
        summary,
        trace: sh.trace.clone(),
    })
}
