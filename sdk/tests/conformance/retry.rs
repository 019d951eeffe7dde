//! The retry loop (`Database::run` / `kv::run`).

use crate::harness::*;
use fdb_records::backend::embedded::FaultConfig;
use fdb_records::kv::code::*;
use fdb_records::kv::{run, Database, FdbError, MutationType, Transaction, TransactionOption};
use futures::executor::block_on;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

conformance!(
    conflict_on_first_attempt_is_retried,
    transaction_too_old_is_retried,
    application_error_is_returned_without_retry,
    application_error_wrapping_a_retryable_error_is_retried,
    non_retryable_error_is_returned_without_retry,
    retry_limit_stops_retries,
    maybe_committed_is_passed_after_unknown_result,
);

pub fn conflict_on_first_attempt_is_retried<H: Harness>(h: &H) {
    let db = h.db();
    let k = h.k("counter");
    block_on(put(&db, &k, &le(0, 8)));
    let calls = AtomicU32::new(0);
    let (db_ref, k_ref, calls_ref) = (&db, &k, &calls);
    let outcome = block_on(run(&db, move |t, maybe| async move {
        let n = calls_ref.fetch_add(1, Ordering::SeqCst) + 1;
        assert!(!maybe.is_maybe_committed());
        let v = le_i64(&t.get(k_ref, false).await?.expect("counter"));
        if n == 1 {
            // Someone else changes what we read before we commit.
            put(db_ref, k_ref, &le(100, 8)).await;
        }
        t.set(k_ref, &le(v + 1, 8));
        Ok::<_, FdbError>(v)
    }))
    .expect("the retry succeeds");
    assert_eq!(outcome.attempts, 2);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(
        outcome.value, 100,
        "the second attempt read the other write"
    );
    assert!(outcome.committed.version > 0);
    assert_eq!(block_on(get(&db, &k)), Some(le(101, 8)));
}

pub fn transaction_too_old_is_retried<H: Harness>(h: &H) {
    let db = h.db();
    let k = h.k("k");
    let other = h.k("other");
    let calls = AtomicU32::new(0);
    let (k_ref, other_ref, h_ref, calls_ref) = (&k, &other, h, &calls);
    let outcome = block_on(run(&db, move |t, _| async move {
        let n = calls_ref.fetch_add(1, Ordering::SeqCst) + 1;
        t.get(k_ref, false).await?;
        t.set(k_ref, &[n as u8]);
        if n == 1 {
            // Let the read version expire: the next read from storage fails with 1007.
            // (A key this transaction wrote would be served from its own writes.)
            h_ref.pass_time(Duration::from_secs(6));
            t.get(other_ref, false).await?;
            panic!("a read 6 s after the read version succeeded");
        }
        Ok::<_, FdbError>(())
    }))
    .expect("retried after transaction_too_old");
    assert_eq!(outcome.attempts, 2);
    assert_eq!(
        block_on(get(&db, &k)),
        Some(vec![2]),
        "only the retry's write"
    );
}

pub fn application_error_is_returned_without_retry<H: Harness>(h: &H) {
    let db = h.db();
    let k = h.k("k");
    let calls = AtomicU32::new(0);
    let (k_ref, calls_ref) = (&k, &calls);
    let result: Result<(), AppError> = block_on(db.run(move |t, _| async move {
        calls_ref.fetch_add(1, Ordering::SeqCst);
        t.set(k_ref, b"x");
        Err(AppError::App("validation failed"))
    }));
    assert_eq!(result, Err(AppError::App("validation failed")));
    assert_eq!(calls.load(Ordering::SeqCst), 1, "no retry");
    assert_eq!(block_on(get(&db, &k)), None, "nothing committed");
}

pub fn application_error_wrapping_a_retryable_error_is_retried<H: Harness>(h: &H) {
    let db = h.db();
    let k = h.k("k");
    let calls = AtomicU32::new(0);
    let (k_ref, calls_ref) = (&k, &calls);
    let outcome = block_on(run(&db, move |t, _| async move {
        let n = calls_ref.fetch_add(1, Ordering::SeqCst) + 1;
        t.set(k_ref, &[n as u8]);
        if n < 3 {
            return Err(AppError::Fdb(FdbError::from_code(NOT_COMMITTED)));
        }
        Ok(n)
    }))
    .expect("succeeds on the third attempt");
    assert_eq!((outcome.value, outcome.attempts), (3, 3));
    assert_eq!(
        block_on(get(&db, &k)),
        Some(vec![3]),
        "only the last attempt's writes"
    );
}

pub fn non_retryable_error_is_returned_without_retry<H: Harness>(h: &H) {
    let db = h.db();
    let k = h.k("k");
    let calls = AtomicU32::new(0);
    let (k_ref, calls_ref) = (&k, &calls);
    let result = block_on(db.run(move |t, _| async move {
        calls_ref.fetch_add(1, Ordering::SeqCst);
        let too_large = vec![0u8; 100_001];
        t.set(k_ref, &too_large);
        Ok::<_, FdbError>(())
    }));
    assert_eq!(result.map_err(FdbError::code), Err(VALUE_TOO_LARGE));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(block_on(get(&db, &k)), None);
}

pub fn retry_limit_stops_retries<H: Harness>(h: &H) {
    let db = h.db();
    for limit in [0u32, 1, 3] {
        let calls = AtomicU32::new(0);
        let calls_ref = &calls;
        let result: Result<(), FdbError> = block_on(db.run(move |t, _| async move {
            calls_ref.fetch_add(1, Ordering::SeqCst);
            t.set_option(TransactionOption::RetryLimit(Some(limit)))?;
            Err(FdbError::from_code(NOT_COMMITTED))
        }));
        assert_eq!(
            result.map_err(FdbError::code),
            Err(NOT_COMMITTED),
            "the last error is returned (retry limit {limit})"
        );
        assert_eq!(
            calls.load(Ordering::SeqCst),
            limit + 1,
            "retry limit {limit}: one attempt plus {limit} retries"
        );
    }
    // The limit also stops a real conflict loop.
    let k = h.k("k");
    let calls = AtomicU32::new(0);
    let (db_ref, k_ref, calls_ref) = (&db, &k, &calls);
    let result = block_on(db.run(move |t, _| async move {
        calls_ref.fetch_add(1, Ordering::SeqCst);
        t.set_option(TransactionOption::RetryLimit(Some(2)))?;
        t.get(k_ref, false).await?;
        put(db_ref, k_ref, b"other").await;
        t.set(k_ref, b"mine");
        Ok::<_, FdbError>(())
    }));
    assert_eq!(result.map_err(FdbError::code), Err(NOT_COMMITTED));
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(block_on(get(&db, &k)), Some(b"other".to_vec()));
}

pub fn maybe_committed_is_passed_after_unknown_result<H: Harness>(h: &H) {
    let Some(faults) = h.faults() else {
        h.skip("needs fault injection to produce commit_unknown_result");
        return;
    };
    let db = h.db();
    for (applied, expected_count) in [(true, 2), (false, 1)] {
        let k = h.k(&format!("counter-{applied}"));
        let flags = Mutex::new(Vec::new());
        let (k_ref, flags_ref) = (&k, &flags);
        let outcome = block_on(run(&db, move |t, maybe| async move {
            let mut flags = flags_ref.lock().unwrap();
            flags.push(maybe.is_maybe_committed());
            let unknown = FaultConfig {
                unknown_result_committed: if applied { 1.0 } else { 0.0 },
                unknown_result_not_committed: if applied { 0.0 } else { 1.0 },
                ..FaultConfig::none(1)
            };
            faults.set_faults((flags.len() == 1).then_some(unknown));
            t.atomic_op(k_ref, &le(1, 8), MutationType::Add);
            Ok::<_, FdbError>(())
        }))
        .expect("the second attempt commits");
        faults.set_faults(None);
        assert_eq!(outcome.attempts, 2);
        assert_eq!(
            *flags.lock().unwrap(),
            vec![false, true],
            "MaybeCommitted(true) after commit_unknown_result (applied: {applied})"
        );
        assert_eq!(
            block_on(get(&db, &k)).map(|v| le_i64(&v)),
            Some(expected_count),
            "a non-idempotent retry after an applied unknown result counts twice"
        );
    }
    // A maybe-committed error from the closure itself also sets the flag.
    let flags = Mutex::new(Vec::new());
    let flags_ref = &flags;
    block_on(run(&db, move |_t, maybe| async move {
        let mut flags = flags_ref.lock().unwrap();
        flags.push(maybe.is_maybe_committed());
        if flags.len() == 1 {
            return Err(FdbError::from_code(COMMIT_UNKNOWN_RESULT));
        }
        Ok(())
    }))
    .expect("retried");
    assert_eq!(*flags.lock().unwrap(), vec![false, true]);
}
