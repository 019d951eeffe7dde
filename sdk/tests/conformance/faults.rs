//! Fault injection (embedded engine only; other backends print a skip).
//!
//! Every test here needs [`Harness::faults`]; on the embedded engine it always runs.

use crate::harness::*;
use fdb_records::backend::embedded::FaultConfig;
use fdb_records::kv::code::*;
use fdb_records::kv::{run, FdbError, MutationType, RangeOption, Transaction, TransactionOption};
use futures::executor::block_on;
use futures::future::join_all;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

conformance!(
    unknown_result_committed_applies_the_commit,
    unknown_result_not_committed_drops_the_commit,
    spurious_not_committed,
    injected_transaction_too_old,
    injected_delay_advances_the_clock,
    same_seed_same_outcomes,
    automatic_idempotency_never_reports_unknown_result,
    automatic_idempotency_counts_exactly_once,
    chaos_with_automatic_idempotency_counts_exactly_once,
);

fn only(f: impl FnOnce(&mut FaultConfig)) -> FaultConfig {
    let mut c = FaultConfig::none(17);
    f(&mut c);
    c
}

macro_rules! require_faults {
    ($h:expr) => {
        match $h.faults() {
            Some(f) => f,
            None => {
                $h.skip("fault injection is not available on this backend");
                return;
            }
        }
    };
}

pub fn unknown_result_committed_applies_the_commit<H: Harness>(h: &H) {
    let faults = require_faults!(h);
    let db = h.db();
    block_on(async {
        faults.set_faults(Some(only(|c| c.unknown_result_committed = 1.0)));
        let t = tx(&db);
        t.set(&h.k("k"), b"v");
        t.atomic_op(&h.k("n"), &le(1, 8), MutationType::Add);
        assert_eq!(code(t.commit().await), COMMIT_UNKNOWN_RESULT);
        faults.set_faults(None);
        assert_eq!(
            get(&db, &h.k("k")).await,
            Some(b"v".to_vec()),
            "applied despite 1021"
        );
        assert_eq!(get(&db, &h.k("n")).await, Some(le(1, 8)));
    });
}

pub fn unknown_result_not_committed_drops_the_commit<H: Harness>(h: &H) {
    let faults = require_faults!(h);
    let db = h.db();
    block_on(async {
        faults.set_faults(Some(only(|c| c.unknown_result_not_committed = 1.0)));
        let t = tx(&db);
        t.set(&h.k("k"), b"v");
        assert_eq!(code(t.commit().await), COMMIT_UNKNOWN_RESULT);
        faults.set_faults(None);
        assert_eq!(get(&db, &h.k("k")).await, None, "dropped");
        // The database keeps working.
        put(&db, &h.k("k"), b"w").await;
        assert_eq!(get(&db, &h.k("k")).await, Some(b"w".to_vec()));
    });
}

pub fn spurious_not_committed<H: Harness>(h: &H) {
    let faults = require_faults!(h);
    let db = h.db();
    block_on(async {
        faults.set_faults(Some(only(|c| c.spurious_not_committed = 1.0)));
        let t = tx(&db);
        t.set(&h.k("k"), b"v");
        assert_eq!(code(t.commit().await), NOT_COMMITTED);
        // Read-only commits are not sent anywhere, so they cannot fail.
        let r = tx(&db);
        r.get(&h.k("k"), false).await.unwrap();
        assert_eq!(r.commit().await.expect("read-only").version, -1);
        faults.set_faults(None);
        assert_eq!(get(&db, &h.k("k")).await, None);
    });
}

pub fn injected_transaction_too_old<H: Harness>(h: &H) {
    let faults = require_faults!(h);
    let db = h.db();
    block_on(async {
        put(&db, &h.k("k"), b"v").await;
        faults.set_faults(Some(only(|c| c.transaction_too_old = 1.0)));
        let t = tx(&db);
        assert_eq!(
            code(t.get(&h.k("k"), false).await),
            TRANSACTION_TOO_OLD,
            "get"
        );
        let t = tx(&db);
        assert_eq!(
            code(
                t.get_range_all(RangeOption::from_prefix(h.prefix()), false)
                    .await
            ),
            TRANSACTION_TOO_OLD,
            "get_range"
        );
        let t = tx(&db);
        t.set(&h.k("w"), b"v");
        assert_eq!(code(t.commit().await), TRANSACTION_TOO_OLD, "blind commit");
        faults.set_faults(None);
        assert_eq!(get(&db, &h.k("w")).await, None);
    });
}

pub fn injected_delay_advances_the_clock<H: Harness>(h: &H) {
    let faults = require_faults!(h);
    let db = h.db();
    block_on(async {
        put(&db, &h.k("k"), b"v").await;
        let max_delay = Duration::from_millis(50);
        faults.set_faults(Some(only(|c| {
            c.delay = 1.0;
            c.max_delay = max_delay;
        })));
        let start = faults.now();
        let t = tx(&db);
        for _ in 0..5 {
            assert_eq!(t.get(&h.k("k"), false).await.unwrap(), Some(b"v".to_vec()));
        }
        t.set(&h.k("k"), b"w");
        t.commit().await.expect("delays do not fail operations");
        let elapsed = faults.now() - start;
        faults.set_faults(None);
        assert!(
            elapsed > Duration::ZERO,
            "six delayed operations took no time"
        );
        assert!(
            elapsed <= max_delay * 6,
            "delays are bounded by max_delay: {elapsed:?}"
        );
        assert_eq!(get(&db, &h.k("k")).await, Some(b"w".to_vec()));
    });
}

/// A fixed sequence of operations under `config`; returns what happened.
fn fault_script<H: Harness>(h: &H, config: FaultConfig) -> Vec<(i32, i32, i32, Duration)> {
    let faults = h.faults().expect("fault injection");
    let db = h.db();
    block_on(async {
        faults.set_faults(Some(config));
        let mut outcomes = Vec::new();
        for i in 0..80 {
            let t = tx(&db);
            let read = outcome(&t.get(&h.k(&format!("k{}", i / 2)), false).await);
            let scan = outcome(
                &t.get_range_all(RangeOption::from_prefix(h.prefix()).with_limit(3), false)
                    .await,
            );
            t.set(&h.k(&format!("k{i}")), b"v");
            let commit = outcome(&t.commit().await);
            outcomes.push((read, scan, commit, faults.now()));
        }
        faults.set_faults(None);
        outcomes
    })
}

pub fn same_seed_same_outcomes<H: Harness>(h: &H) {
    if h.faults().is_none() {
        h.skip("fault injection is not available on this backend");
        return;
    }
    let config = |seed| FaultConfig {
        seed,
        unknown_result_committed: 0.1,
        unknown_result_not_committed: 0.1,
        spurious_not_committed: 0.1,
        transaction_too_old: 0.05,
        delay: 0.3,
        max_delay: Duration::from_millis(5),
    };
    let first = fault_script(h, config(42));
    let replay = H::create(&format!("{}-replay", h.test_name())).expect("second database");
    let second = fault_script(&replay, config(42));
    assert_eq!(first, second, "same seed, same operations: same outcomes");
    let codes: std::collections::BTreeSet<i32> =
        first.iter().flat_map(|&(a, b, c, _)| [a, b, c]).collect();
    assert!(
        codes.contains(&0)
            && codes.contains(&COMMIT_UNKNOWN_RESULT)
            && codes.contains(&NOT_COMMITTED)
            && codes.contains(&TRANSACTION_TOO_OLD),
        "the script exercised every fault: {codes:?}"
    );
    let db = (h.db(), replay.db());
    let states = block_on(async {
        (
            scan_prefix(&db.0, h.prefix()).await,
            scan_prefix(&db.1, replay.prefix()).await,
        )
    });
    assert_eq!(keys(&states.0), keys(&states.1), "same resulting data");
    let other = H::create(&format!("{}-other-seed", h.test_name())).expect("third database");
    assert_ne!(
        first,
        fault_script(&other, config(43)),
        "another seed gives other outcomes"
    );
}

pub fn automatic_idempotency_never_reports_unknown_result<H: Harness>(h: &H) {
    let faults = require_faults!(h);
    let db = h.db();
    block_on(async {
        faults.set_faults(Some(only(|c| c.unknown_result_committed = 1.0)));
        let t = tx(&db);
        t.set_option(TransactionOption::AutomaticIdempotency)
            .unwrap();
        t.set(&h.k("a"), b"v");
        let c = t
            .commit()
            .await
            .expect("a commit that happened reports success");
        assert!(c.version > 0);
        let stamp = c
            .versionstamp
            .expect("versionstamp of the commit that happened");
        assert_eq!(stamp_version(&stamp), c.version);

        faults.set_faults(Some(only(|c| c.unknown_result_not_committed = 1.0)));
        let t = tx(&db);
        t.set_option(TransactionOption::AutomaticIdempotency)
            .unwrap();
        t.set(&h.k("b"), b"v");
        assert_eq!(
            code(t.commit().await),
            TRANSACTION_TOO_OLD,
            "a commit that did not happen reports transaction_too_old, as FoundationDB's client"
        );
        // Without the option the same faults report 1021.
        let t = tx(&db);
        t.set(&h.k("c"), b"v");
        assert_eq!(code(t.commit().await), COMMIT_UNKNOWN_RESULT);
        faults.set_faults(None);
        assert_eq!(get(&db, &h.k("a")).await, Some(b"v".to_vec()));
        assert_eq!(get(&db, &h.k("b")).await, None);
        assert_eq!(get(&db, &h.k("c")).await, None);
    });
}

pub fn automatic_idempotency_counts_exactly_once<H: Harness>(h: &H) {
    let faults = require_faults!(h);
    let db = h.db();
    let counter = h.k("counter");
    let saw_maybe = AtomicBool::new(false);
    const RUNS: u32 = 20;

    // Every commit gets an unknown result, alternating "not applied" and "applied".
    let calls = AtomicU32::new(0);
    let (counter_ref, saw_ref, calls_ref) = (&counter, &saw_maybe, &calls);
    for _ in 0..RUNS {
        let outcome = block_on(run(&db, move |t, maybe| async move {
            saw_ref.fetch_or(maybe.is_maybe_committed(), Ordering::SeqCst);
            let n = calls_ref.fetch_add(1, Ordering::SeqCst);
            faults.set_faults(Some(if n % 2 == 0 {
                only(|c| c.unknown_result_not_committed = 1.0)
            } else {
                only(|c| c.unknown_result_committed = 1.0)
            }));
            t.set_option(TransactionOption::AutomaticIdempotency)?;
            t.atomic_op(counter_ref, &le(1, 8), MutationType::Add);
            Ok::<_, FdbError>(())
        }))
        .expect("idempotent increment");
        assert_eq!(outcome.attempts, 2, "not applied (retried), then applied");
    }
    faults.set_faults(None);
    assert_eq!(
        block_on(get(&db, &counter)).map(|v| le_i64(&v)),
        Some(RUNS as i64)
    );

    // Random mix, still 100% unknown results.
    faults.set_faults(Some(FaultConfig {
        unknown_result_committed: 0.5,
        unknown_result_not_committed: 1.0,
        ..FaultConfig::none(99)
    }));
    let mut attempts = 0;
    for _ in 0..RUNS {
        let outcome = block_on(run(&db, move |t, maybe| async move {
            saw_ref.fetch_or(maybe.is_maybe_committed(), Ordering::SeqCst);
            t.set_option(TransactionOption::AutomaticIdempotency)?;
            t.atomic_op(counter_ref, &le(1, 8), MutationType::Add);
            Ok::<_, FdbError>(())
        }))
        .expect("idempotent increment");
        attempts += outcome.attempts;
    }
    faults.set_faults(None);
    assert_eq!(
        block_on(get(&db, &counter)).map(|v| le_i64(&v)),
        Some(2 * RUNS as i64)
    );
    assert!(
        attempts > RUNS,
        "some attempts were not applied and retried"
    );
    assert!(!saw_maybe.load(Ordering::SeqCst), "1021 never surfaced");
}

pub fn chaos_with_automatic_idempotency_counts_exactly_once<H: Harness>(h: &H) {
    let faults = require_faults!(h);
    const THREADS: usize = 4;
    const PER_THREAD: usize = 10;
    let mut config = FaultConfig::chaos(2024);
    config.unknown_result_committed = 0.2;
    config.unknown_result_not_committed = 0.2;
    config.spurious_not_committed = 0.1;
    faults.set_faults(Some(config));
    let counter = h.k("counter");
    let saw_maybe = AtomicBool::new(false);
    std::thread::scope(|s| {
        for thread in 0..THREADS {
            let db = h.db();
            let (counter, saw_maybe) = (&counter, &saw_maybe);
            s.spawn(move || {
                block_on(join_all((0..PER_THREAD).map(|i| {
                    let db = db.clone();
                    async move {
                        let marker = h.k(&format!("done/{thread}/{i}"));
                        let marker = &marker;
                        run(&db, move |t, maybe| async move {
                            saw_maybe.fetch_or(maybe.is_maybe_committed(), Ordering::SeqCst);
                            t.set_option(TransactionOption::AutomaticIdempotency)?;
                            t.atomic_op(counter, &le(1, 8), MutationType::Add);
                            t.set(marker, b"1");
                            Ok::<_, FdbError>(())
                        })
                        .await
                        .expect("commits eventually");
                    }
                })))
            });
        }
    });
    faults.set_faults(None);
    let db = h.db();
    let total = (THREADS * PER_THREAD) as i64;
    assert_eq!(
        block_on(get(&db, &counter)).map(|v| le_i64(&v)),
        Some(total)
    );
    assert_eq!(
        block_on(scan_prefix(&db, &h.k("done/"))).len() as i64,
        total
    );
    assert!(!saw_maybe.load(Ordering::SeqCst), "1021 never surfaced");
}
