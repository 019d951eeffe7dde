//! The workloads inside fdbserver's simulator (feature `fdb`, FDB 7.4 C API,
//! `useCAPI = true`). Each simulated client runs the same workloads as the in-process
//! runner, on its own store subspace (so its reference model is exact), through the
//! SDK's FoundationDB adapter; FoundationDB's own fault workloads (RandomClogging,
//! Attrition, Rollback, ChangeConfig) supply the faults and restarts.
//!
//! Workload names (`workloadName` in the test file) pick the emphasis:
//! `IndexIntegrity`, `ExactlyOnce`, `Continuations`, `OnlineBuild`, `VersionSync`;
//! every one runs the full validation in `check`.

use crate::schema;
use crate::workload::{self, Ctx, PhaseConfig, WriterConfig};
use crate::Shared;
use fdb_records::backend::fdb::FdbDatabase;
use foundationdb_simulation::{
    details, register_factory, Metric, Metrics, RustWorkload, RustWorkloadFactory, Severity,
    SimDatabase, WorkloadContext, WrappedWorkload,
};
use foundationdb_tuple::Subspace;
use std::sync::{Arc, Mutex};

/// One simulated client of one workload.
pub struct RecordLayerWorkload {
    name: String,
    context: WorkloadContext,
    client: i64,
    seed: u64,
    ops: usize,
    shared: Arc<Mutex<Shared>>,
    violations: usize,
}

impl RecordLayerWorkload {
    fn ctx(&self, db: &SimDatabase, v2: bool) -> Ctx<FdbDatabase> {
        Ctx {
            db: FdbDatabase::from_arc(db.clone()),
            store: Subspace::from(("sim", self.name.as_str(), self.client, "store")),
            log: Subspace::from(("sim", self.name.as_str(), self.client, "oplog")),
            markers: Subspace::from(("sim", self.name.as_str(), self.client, "markers")),
            md: if v2 {
                schema::metadata_v2()
            } else {
                schema::metadata_v1()
            },
            pool: schema::pool(),
            shared: self.shared.clone(),
        }
    }

    fn phase(&self, build: Option<Option<u32>>) -> PhaseConfig {
        let (writers, pagers) = match self.name.as_str() {
            "Continuations" => (2, 3),
            "ExactlyOnce" | "IndexIntegrity" => (4, 1),
            _ => (3, 1),
        };
        PhaseConfig {
            writers,
            pagers,
            writer: WriterConfig {
                ops: self.ops,
                near_limit: self.name == "IndexIntegrity",
            },
            scans: 3,
            polls: self.ops / 2,
            build,
            long_scan: None,
            crash_after: None,
        }
    }

    fn report(&mut self, phase: &str, result: Result<String, crate::Violation>) {
        match result {
            Ok(summary) => self.context.trace(
                Severity::Info,
                "RecordLayerPhaseDone",
                details!["Workload" => self.name, "Phase" => phase, "Summary" => summary],
            ),
            Err(v) => {
                self.violations += 1;
                self.context.trace(
                    Severity::Error,
                    "RecordLayerInvariantViolated",
                    details![
                        "Workload" => self.name,
                        "Phase" => phase,
                        "Invariant" => v.invariant,
                        "Detail" => v.detail,
                        "Seed" => self.seed,
                    ],
                );
            }
        }
    }
}

impl RustWorkload for RecordLayerWorkload {
    async fn setup(&mut self, db: SimDatabase) {
        let ctx = self.ctx(&db, false);
        drop(db);
        let pc = PhaseConfig {
            build: None,
            ..self.phase(None)
        };
        let r = workload::run_clients(&ctx, self.seed, 0, pc)
            .await
            .map(|_| String::new());
        // The simulator checks that no handle outlives the phase.
        drop(ctx);
        self.report("setup", r);
    }
    async fn start(&mut self, db: SimDatabase) {
        let ctx = self.ctx(&db, true);
        drop(db);
        let build = (self.name == "OnlineBuild" || self.name == "IndexIntegrity").then_some(None);
        let r = workload::run_clients(&ctx, self.seed, 1, self.phase(build))
            .await
            .map(|_| String::new());
        // The simulator checks that no handle outlives the phase.
        drop(ctx);
        self.report("start", r);
    }
    async fn check(&mut self, db: SimDatabase) {
        let ctx = self.ctx(&db, true);
        drop(db);
        let r = async {
            workload::builder(&ctx, None, workload::client_rng(self.seed, 9, 300)).await?;
            workload::validate(&ctx).await
        }
        .await;
        // The simulator checks that no handle outlives the phase.
        drop(ctx);
        self.report("check", r);
    }
    fn get_metrics(&self, mut out: Metrics) {
        let sh = self.shared.lock().unwrap();
        out.extend([
            Metric::val("trace_lines", sh.trace_lines() as f64),
            Metric::val("hot_increments", sh.hot_done as f64),
            Metric::val("violations", self.violations as f64),
        ]);
    }
    fn get_check_timeout(&self) -> f64 {
        3000.0
    }
}

/// Creates a workload instance per simulated client.
pub struct Factory;

impl RustWorkloadFactory for Factory {
    fn create(name: String, context: WorkloadContext) -> WrappedWorkload {
        let client = i64::from(context.client_id());
        let seed =
            context.shared_random_number() as u64 ^ (client as u64).wrapping_mul(0x9E37_79B9);
        let ops = context.get_option::<usize>("opsPerClient").unwrap_or(30);
        RecordLayerWorkload {
            name,
            context,
            client,
            seed,
            ops,
            shared: Arc::new(Mutex::new(Shared::default())),
            violations: 0,
        }
        .wrap()
    }
}

register_factory!(Factory);
