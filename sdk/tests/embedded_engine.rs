//! Behaviour of the embedded engine beyond the backend-neutral conformance suite:
//! group commit and its determinism, and `on_error`'s backoff as FoundationDB's
//! client computes it.

use fdb_records::backend::embedded::{Clock, EmbeddedDatabase, ManualClock};
use fdb_records::kv::{
    code, limits, Database, FdbError, MutationType, Transaction, TransactionOption,
};
use futures::executor::block_on;
use futures::future::join_all;
use std::collections::BTreeSet;
use std::time::Duration;

fn commit_concurrently(db: &EmbeddedDatabase, n: usize) -> Vec<i64> {
    block_on(join_all((0..n).map(|i| {
        let tx = db.create_transaction().unwrap();
        async move {
            tx.set(format!("k{i:04}").as_bytes(), b"v");
            tx.atomic_op(b"count", &1i64.to_le_bytes(), MutationType::Add);
            tx.commit().await.unwrap().version
        }
    })))
}

#[test]
fn concurrent_commits_on_one_thread_share_a_batch() {
    let dir = tempfile::tempdir().unwrap();
    let db = EmbeddedDatabase::open(dir.path().join("db.redb")).unwrap();
    let versions = commit_concurrently(&db, 64);
    let distinct: BTreeSet<i64> = versions.iter().copied().collect();
    let stats = db.stats();
    assert_eq!(stats.committed, 64);
    assert_eq!(stats.batches, distinct.len() as u64);
    assert!(
        stats.batches <= 2,
        "64 ready commits should share one durable write, got {} batches",
        stats.batches
    );
    let count = block_on(db.run(|tx, _| async move { tx.get(b"count", false).await })).unwrap();
    assert_eq!(count, Some(64i64.to_le_bytes().to_vec()));
}

#[test]
fn batching_is_deterministic_on_a_single_thread() {
    let run = || {
        let db = EmbeddedDatabase::builder()
            .clock(ManualClock::new())
            .in_memory()
            .unwrap();
        let mut all = Vec::new();
        for _ in 0..5 {
            all.extend(commit_concurrently(&db, 10));
        }
        (all, db.stats())
    };
    assert_eq!(run(), run());
}

#[test]
fn conflicting_commits_in_one_batch_are_resolved_in_queue_order() {
    // Both read `k` and write it; in one batch the second sees the first's write.
    let db = EmbeddedDatabase::in_memory().unwrap();
    block_on(db.run(|tx, _| async move {
        tx.set(b"k", b"0");
        Ok::<_, fdb_records::kv::FdbError>(())
    }))
    .unwrap();
    let results = block_on(join_all((0..2).map(|i| {
        let tx = db.create_transaction().unwrap();
        async move {
            tx.get(b"k", false).await.unwrap();
            tx.set(b"k", format!("{i}").as_bytes());
            tx.commit().await.map(|c| c.version).map_err(|e| e.code())
        }
    })));
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    assert_eq!(
        results.iter().filter(|r| **r == Err(1020)).count(),
        1,
        "{results:?}"
    );
    assert_eq!(db.stats().rejected, 1);
}

/// The waits of `on_error` for `errors`, in order, on one transaction of a database
/// seeded with `seed` (read off a manual clock, which a sleep advances).
fn retry_waits(seed: u64, max_retry_delay: Option<Duration>, errors: &[i32]) -> Vec<Duration> {
    let clock = ManualClock::new();
    let db = EmbeddedDatabase::builder()
        .clock(clock.clone())
        .seed(seed)
        .in_memory()
        .unwrap();
    let tx = db.create_transaction().unwrap();
    if let Some(d) = max_retry_delay {
        tx.set_option(TransactionOption::MaxRetryDelay(d)).unwrap();
    }
    block_on(async {
        let mut waits = Vec::new();
        for &e in errors {
            let before = clock.now();
            tx.on_error(FdbError::from_code(e)).await.unwrap();
            waits.push(clock.now() - before);
        }
        waits
    })
}

#[test]
fn conflict_backoff_doubles_to_the_maximum_and_waits_a_random_part_of_it() {
    let errors = [code::NOT_COMMITTED; 12];
    let mut below_half = 0;
    let mut samples = 0;
    for seed in 0..200 {
        let waits = retry_waits(seed, None, &errors);
        for (i, wait) in waits.iter().enumerate() {
            // 10 ms, 20 ms, 40 ms ... up to the 1 s default maximum.
            let backoff =
                (limits::INITIAL_RETRY_DELAY * (1 << i)).min(limits::DEFAULT_MAX_RETRY_DELAY);
            assert!(
                *wait < backoff,
                "seed {seed} retry {i}: waited {wait:?}, backoff {backoff:?}"
            );
            below_half += usize::from(*wait < backoff / 2);
            samples += 1;
        }
    }
    // Uniform on [0, backoff): about half the waits fall below half the backoff.
    let share = below_half as f64 / samples as f64;
    assert!(
        (0.4..0.6).contains(&share),
        "{below_half} of {samples} below half"
    );
}

#[test]
fn backoff_jitter_is_replayed_by_its_seed() {
    let errors = [
        code::NOT_COMMITTED,
        code::COMMIT_UNKNOWN_RESULT,
        code::NOT_COMMITTED,
    ];
    assert_eq!(retry_waits(7, None, &errors), retry_waits(7, None, &errors));
    assert_ne!(retry_waits(7, None, &errors), retry_waits(8, None, &errors));
}

#[test]
fn transaction_too_old_waits_a_fixed_delay_and_does_not_grow_the_backoff() {
    let mut errors = vec![code::TRANSACTION_TOO_OLD; 6];
    errors.push(code::FUTURE_VERSION);
    errors.push(code::NOT_COMMITTED);
    let waits = retry_waits(3, None, &errors);
    for wait in &waits[..7] {
        assert_eq!(*wait, limits::FUTURE_VERSION_RETRY_DELAY);
    }
    // The first conflict after them still draws from the initial backoff.
    assert!(waits[7] < limits::INITIAL_RETRY_DELAY, "{:?}", waits[7]);
}

#[test]
fn max_retry_delay_caps_every_wait() {
    let cap = Duration::from_millis(3);
    let waits = retry_waits(
        11,
        Some(cap),
        &[
            code::TRANSACTION_TOO_OLD,
            code::NOT_COMMITTED,
            code::NOT_COMMITTED,
        ],
    );
    assert_eq!(waits[0], cap);
    assert!(waits[1..].iter().all(|w| *w < cap), "{waits:?}");
}

#[test]
fn a_timeout_cuts_the_backoff_short() {
    for seed in 0..20 {
        let clock = ManualClock::new();
        let db = EmbeddedDatabase::builder()
            .clock(clock.clone())
            .seed(seed)
            .in_memory()
            .unwrap();
        let tx = db.create_transaction().unwrap();
        let timeout = Duration::from_millis(15);
        tx.set_option(TransactionOption::Timeout(timeout)).unwrap();
        let ended = block_on(async {
            loop {
                if let Err(e) = tx.on_error(FdbError::from_code(code::NOT_COMMITTED)).await {
                    return e;
                }
            }
        });
        assert_eq!(ended.code(), code::TRANSACTION_TIMED_OUT, "seed {seed}");
        assert_eq!(
            clock.now(),
            timeout,
            "seed {seed}: ends at the deadline, not after"
        );
    }
}

#[test]
fn memory_limit_errors_grow_the_backoff_past_the_maximum_retry_delay() {
    let errors = [code::COMMIT_PROXY_MEMORY_LIMIT_EXCEEDED; 14];
    let longest = (0..50)
        .flat_map(|seed| retry_waits(seed, None, &errors))
        .max()
        .unwrap();
    // 10 ms doubling 13 times reaches 30 s (capped), far past the 1 s maximum.
    assert!(longest > limits::DEFAULT_MAX_RETRY_DELAY, "{longest:?}");
    assert!(
        longest < limits::RESOURCE_CONSTRAINED_MAX_BACKOFF,
        "{longest:?}"
    );
    // Other retryable errors stay under the maximum retry delay.
    let conflicts = (0..50)
        .flat_map(|seed| retry_waits(seed, None, &[code::NOT_COMMITTED; 14]))
        .max()
        .unwrap();
    assert!(conflicts < limits::DEFAULT_MAX_RETRY_DELAY, "{conflicts:?}");
    // Throttling is retried (`on_error` waits rather than failing) within the maximum.
    let throttles = [
        code::TAG_THROTTLED,
        code::PROXY_TAG_THROTTLED,
        code::TRANSACTION_THROTTLED_HOT_SHARD,
        code::BATCH_TRANSACTION_THROTTLED,
    ];
    let throttled = (0..50)
        .flat_map(|seed| retry_waits(seed, None, &throttles))
        .max()
        .unwrap();
    assert!(throttled < limits::DEFAULT_MAX_RETRY_DELAY, "{throttled:?}");
}

/// An in-memory database and a transaction that has written `k = value`.
fn writing(
    value: &[u8],
) -> (
    EmbeddedDatabase,
    fdb_records::backend::embedded::EmbeddedTransaction,
) {
    let db = EmbeddedDatabase::in_memory().unwrap();
    let tx = db.create_transaction().unwrap();
    tx.set(b"k", value);
    (db, tx)
}

/// Runs `meanwhile` while `tx`'s commit is in flight (the commit yields before its
/// batch is taken), on one thread.
fn during_commit<T: Transaction>(
    tx: &T,
    meanwhile: impl std::future::Future<Output = ()>,
) -> fdb_records::kv::FdbResult<i64> {
    block_on(async {
        let (committed, ()) = futures::join!(tx.commit(), meanwhile);
        committed.map(|c| c.version)
    })
}

#[test]
fn a_cancel_during_a_commit_answers_cancelled() {
    let (_db, tx) = writing(b"v");
    let r = during_commit(&tx, async { tx.cancel() });
    assert_eq!(r.unwrap_err().code(), code::TRANSACTION_CANCELLED);
}

#[test]
fn a_read_during_a_commit_fails_the_commit() {
    let (_db, tx) = writing(b"v");
    let r = during_commit(&tx, async {
        let read = tx.get(b"other", false).await;
        assert_eq!(read.unwrap_err().code(), code::USED_DURING_COMMIT);
    });
    assert_eq!(r.unwrap_err().code(), code::USED_DURING_COMMIT);
}

#[test]
fn a_reset_during_a_commit_leaves_the_new_transaction_usable() {
    let (db, tx) = writing(b"first");
    let _ = during_commit(&tx, async { tx.reset() });
    tx.set(b"k", b"second");
    block_on(tx.commit()).expect("the reset transaction commits");
    let got = block_on(db.run(|t, _| async move { t.get(b"k", false).await })).unwrap();
    assert_eq!(got, Some(b"second".to_vec()));
}
