//! A transaction's life across commit, `on_error`, `cancel` and `reset`, as
//! FoundationDB's client (API ≥ 610) runs it: what each option survives, what a use
//! after a commit answers, and when `on_error` gives up for good.

use crate::harness::*;
use fdb_records::kv::code::*;
use fdb_records::kv::{ConflictRangeType, FdbError, Transaction, TransactionOption};
use futures::executor::block_on;
use std::time::Duration;

conformance!(
    on_error_resets_the_options_that_are_not_persistent,
    on_error_keeps_the_persistent_options,
    a_use_after_a_failed_commit_is_used_during_commit_and_poisons,
    on_error_right_after_a_failed_commit_retries,
    a_use_after_a_successful_commit_poisons_too,
    get_read_version_still_answers_after_a_commit,
    on_error_that_gives_up_cancels_the_transaction,
    on_error_does_not_undo_a_cancel,
    on_error_of_success_is_an_invalid_operation,
    conflict_ranges_report_errors_later_except_an_inverted_range,
    a_deferred_write_error_at_commit_does_not_start_the_commit,
);

fn err(code: i32) -> FdbError {
    FdbError::from_code(code)
}

pub fn on_error_resets_the_options_that_are_not_persistent<H: Harness>(h: &H) {
    let db = h.db();
    block_on(async {
        // Size limit: 32 bytes, then cleared by on_error.
        let t = tx(&db);
        t.set_option(TransactionOption::SizeLimit(32)).unwrap();
        t.on_error(err(NOT_COMMITTED)).await.unwrap();
        t.set(&h.k("sized"), &[7u8; 50]);
        t.commit()
            .await
            .expect("the size limit was not carried over");

        // Snapshot read-your-writes: disabled, then back to the default.
        let t = tx(&db);
        t.set_option(TransactionOption::SnapshotRywDisable).unwrap();
        t.on_error(err(NOT_COMMITTED)).await.unwrap();
        t.set(&h.k("ryw"), b"mine");
        assert_eq!(
            t.get(&h.k("ryw"), true).await.unwrap(),
            Some(b"mine".to_vec()),
            "snapshot reads see own writes again"
        );
    });
}

pub fn on_error_keeps_the_persistent_options<H: Harness>(h: &H) {
    let db = h.db();
    block_on(async {
        let t = tx(&db);
        t.set_option(TransactionOption::RetryLimit(Some(1)))
            .unwrap();
        t.on_error(err(NOT_COMMITTED)).await.expect("first retry");
        // The limit survived the first on_error: the second gives up.
        assert_eq!(code(t.on_error(err(NOT_COMMITTED)).await), NOT_COMMITTED);

        let t = tx(&db);
        t.set_option(TransactionOption::Timeout(Duration::from_millis(50)))
            .unwrap();
        t.on_error(err(NOT_COMMITTED)).await.expect("within time");
        h.pass_time(Duration::from_millis(60));
        assert_eq!(code(t.get(&h.k("k"), false).await), TRANSACTION_TIMED_OUT);
    });
}

pub fn a_use_after_a_failed_commit_is_used_during_commit_and_poisons<H: Harness>(h: &H) {
    let db = h.db();
    block_on(async {
        // A commit that fails before it is sent (too large) still ended the attempt.
        let t = tx(&db);
        t.set_option(TransactionOption::SizeLimit(32)).unwrap();
        t.set(&h.k("big"), &[1u8; 64]);
        assert_eq!(code(t.commit().await), TRANSACTION_TOO_LARGE);
        assert_eq!(code(t.get(&h.k("big"), false).await), USED_DURING_COMMIT);
        // The use poisoned it: on_error no longer retries, whatever the error.
        assert_eq!(
            code(t.on_error(err(NOT_COMMITTED)).await),
            USED_DURING_COMMIT
        );
        assert_eq!(code(t.get(&h.k("big"), false).await), USED_DURING_COMMIT);
        // Until reset.
        t.reset();
        assert_eq!(t.get(&h.k("big"), false).await.unwrap(), None);

        // The same after a conflict.
        let k = h.k("contended");
        let t = reader(&db).await;
        t.get(&k, false).await.unwrap();
        put(&db, &k, b"theirs").await;
        t.set(&k, b"mine");
        assert_eq!(code(t.commit().await), NOT_COMMITTED);
        t.set(&h.k("after"), b"x");
        assert_eq!(
            code(t.on_error(err(NOT_COMMITTED)).await),
            USED_DURING_COMMIT
        );
        assert_eq!(get(&db, &k).await, Some(b"theirs".to_vec()));
    });
}

pub fn on_error_right_after_a_failed_commit_retries<H: Harness>(h: &H) {
    let db = h.db();
    let k = h.k("contended");
    block_on(async {
        let t = reader(&db).await;
        t.get(&k, false).await.unwrap();
        put(&db, &k, b"theirs").await;
        t.set(&k, b"mine");
        let e = t.commit().await.expect_err("conflict");
        t.on_error(e).await.expect("retryable");
        assert_eq!(t.get(&k, false).await.unwrap(), Some(b"theirs".to_vec()));
        t.set(&k, b"mine");
        t.commit().await.expect("the retry commits");
        assert_eq!(get(&db, &k).await, Some(b"mine".to_vec()));
    });
}

pub fn a_use_after_a_successful_commit_poisons_too<H: Harness>(h: &H) {
    let db = h.db();
    block_on(async {
        let t = tx(&db);
        t.set(&h.k("k"), b"v");
        t.commit().await.unwrap();
        assert_eq!(code(t.commit().await), USED_DURING_COMMIT);
        assert_eq!(
            code(t.on_error(err(NOT_COMMITTED)).await),
            USED_DURING_COMMIT
        );
        t.reset();
        t.set(&h.k("k"), b"w");
        t.commit().await.expect("a reset transaction is new");
        assert_eq!(get(&db, &h.k("k")).await, Some(b"w".to_vec()));
    });
}

pub fn get_read_version_still_answers_after_a_commit<H: Harness>(h: &H) {
    let db = h.db();
    block_on(async {
        let t = tx(&db);
        let read = t.get_read_version().await.unwrap();
        t.get(&h.k("k"), false).await.unwrap();
        t.set(&h.k("k"), b"v");
        let committed = t.commit().await.unwrap();
        assert_eq!(t.get_read_version().await.unwrap(), read);
        assert!(committed.version > read);
        // A read-only commit too.
        let t = tx(&db);
        let read = t.get_read_version().await.unwrap();
        t.commit().await.unwrap();
        assert_eq!(t.get_read_version().await.unwrap(), read);
    });
}

pub fn on_error_that_gives_up_cancels_the_transaction<H: Harness>(h: &H) {
    let db = h.db();
    block_on(async {
        // A non-retryable error.
        let t = tx(&db);
        assert_eq!(code(t.on_error(err(KEY_TOO_LARGE)).await), KEY_TOO_LARGE);
        assert_eq!(code(t.get(&h.k("k"), false).await), TRANSACTION_CANCELLED);
        t.set(&h.k("k"), b"v");
        assert_eq!(code(t.commit().await), TRANSACTION_CANCELLED);
        t.reset();
        t.get(&h.k("k"), false).await.expect("reset revives it");

        // The retry limit.
        let t = tx(&db);
        t.set_option(TransactionOption::RetryLimit(Some(0)))
            .unwrap();
        assert_eq!(code(t.on_error(err(NOT_COMMITTED)).await), NOT_COMMITTED);
        assert_eq!(code(t.get(&h.k("k"), false).await), TRANSACTION_CANCELLED);
        assert_eq!(
            code(t.on_error(err(NOT_COMMITTED)).await),
            TRANSACTION_CANCELLED
        );
    });
}

pub fn on_error_does_not_undo_a_cancel<H: Harness>(h: &H) {
    let db = h.db();
    block_on(async {
        let t = tx(&db);
        t.cancel();
        assert_eq!(
            code(t.on_error(err(NOT_COMMITTED)).await),
            TRANSACTION_CANCELLED
        );
        assert_eq!(code(t.get(&h.k("k"), false).await), TRANSACTION_CANCELLED);
        t.reset();
        t.get(&h.k("k"), false).await.expect("reset revives it");
    });
}

pub fn on_error_of_success_is_an_invalid_operation<H: Harness>(h: &H) {
    let db = h.db();
    block_on(async {
        let t = tx(&db);
        assert_eq!(code(t.on_error(err(0)).await), CLIENT_INVALID_OPERATION);
        assert_eq!(code(t.get(&h.k("k"), false).await), TRANSACTION_CANCELLED);
    });
}

pub fn conflict_ranges_report_errors_later_except_an_inverted_range<H: Harness>(h: &H) {
    let db = h.db();
    block_on(async {
        let t = tx(&db);
        assert_eq!(
            code(t.add_conflict_range(&h.k("b"), &h.k("a"), ConflictRangeType::Read)),
            INVERTED_RANGE
        );
        // Past the key space: accepted here, reported by the next read.
        t.add_conflict_range(b"\xff\x01", b"\xff\x02", ConflictRangeType::Write)
            .expect("deferred");
        assert_eq!(code(t.get(&h.k("k"), false).await), KEY_OUTSIDE_LEGAL_RANGE);

        // After a commit: accepted, and the transaction is poisoned.
        let t = tx(&db);
        t.set(&h.k("k"), b"v");
        t.commit().await.unwrap();
        t.add_conflict_range(&h.k("a"), &h.k("b"), ConflictRangeType::Read)
            .expect("deferred");
        assert_eq!(
            code(t.on_error(err(NOT_COMMITTED)).await),
            USED_DURING_COMMIT
        );

        // A cancelled transaction ignores them.
        let t = tx(&db);
        t.cancel();
        t.add_conflict_range(&h.k("a"), &h.k("b"), ConflictRangeType::Read)
            .expect("no error for a cancelled transaction");
    });
}

pub fn a_deferred_write_error_at_commit_does_not_start_the_commit<H: Harness>(h: &H) {
    let db = h.db();
    block_on(async {
        let t = tx(&db);
        t.set(&h.k("k"), &vec![0u8; 100_001]);
        assert_eq!(code(t.commit().await), VALUE_TOO_LARGE);
        // The commit never started: the deferred error, not used_during_commit.
        assert_eq!(code(t.get(&h.k("k"), false).await), VALUE_TOO_LARGE);
    });
}
