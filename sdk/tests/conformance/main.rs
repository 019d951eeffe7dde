//! Conformance suite: one set of behaviour tests for the transaction abstraction
//! (`fdb_records::kv`), run against every backend.
//!
//! Each test is a function generic over [`harness::Harness`]; the `conformance!`
//! macro instantiates it once per backend, so a test shows up as
//! `<area>::<backend>::<test>`, for example
//! `conflicts::embedded_memory::point_read_conflicts_with_write_of_same_key`.
//!
//! Backends:
//! * `embedded_memory`: the embedded engine in memory, on a manual clock;
//! * `embedded_disk`: the embedded engine on disk in a temporary directory;
//! * `fdb_cluster` (feature `fdb`, and only when `FDB_CLUSTER_FILE` is set):
//!   FoundationDB itself, every test working under its own key prefix.
//!
//! Capabilities a backend lacks (fault injection, reopening) make the test print
//! `SKIPPED [...]` and return; every fault test runs for real on the embedded engine.
//!
//! Run: `cargo test -p fdb-records --test conformance` (add `-- --nocapture` to see skips).

/// Instantiates the listed generic tests (`fn name<H: Harness>(h: &H)` in the
/// invoking module) for every backend.
macro_rules! conformance {
    ($($test:ident),+ $(,)?) => {
        mod embedded_memory {
            $(
                #[test]
                fn $test() {
                    crate::harness::run::<crate::harness::EmbeddedMemory>(
                        module_path!(),
                        stringify!($test),
                        super::$test::<crate::harness::EmbeddedMemory>,
                    );
                }
            )+
        }
        mod embedded_disk {
            $(
                #[test]
                fn $test() {
                    crate::harness::run::<crate::harness::EmbeddedDisk>(
                        module_path!(),
                        stringify!($test),
                        super::$test::<crate::harness::EmbeddedDisk>,
                    );
                }
            )+
        }
        #[cfg(any(feature = "fdb", feature = "fdb-7_4"))]
        mod fdb_cluster {
            $(
                #[test]
                fn $test() {
                    crate::harness::run::<crate::harness::FdbCluster>(
                        module_path!(),
                        stringify!($test),
                        super::$test::<crate::harness::FdbCluster>,
                    );
                }
            )+
        }
    };
}

mod harness;

mod atomics;
mod conflicts;
mod durability;
mod faults;
mod lifecycle;
mod limits;
mod retry;
mod ryw;
mod selectors;
mod versionstamps;
