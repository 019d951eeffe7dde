//! FoundationDB's limits: key, value and transaction sizes, the legal key range,
//! the transaction lifetime and the timeout option.

use crate::harness::*;
use fdb_records::kv::code::*;
use fdb_records::kv::{
    limits, Database, FdbError, KeySelector, MutationType, RangeOption, StreamingMode, Transaction,
    TransactionOption,
};
use futures::executor::block_on;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

conformance!(
    key_size_limit,
    a_get_of_an_oversized_key_is_none_and_conflicts_with_nothing,
    clear_of_oversized_key_is_a_no_op,
    value_size_limit,
    versionstamp_templates_count_their_offset_toward_the_limits,
    transaction_size_limit,
    size_limit_option,
    keys_outside_legal_range,
    selector_beyond_legal_range_is_rejected,
    transaction_too_old_after_lifetime,
    timeout_option,
    every_use_after_timeout_reports_timed_out,
    timeout_option_through_retry_loop,
    huge_row_limits_are_just_limits,
);

/// A key under the prefix exactly `len` bytes long.
fn key_of_len<H: Harness>(h: &H, tag: &str, len: usize) -> Vec<u8> {
    let mut k = h.k(tag);
    assert!(k.len() < len);
    k.resize(len, b'k');
    k
}

pub fn key_size_limit<H: Harness>(h: &H) {
    let db = h.db();
    block_on(async {
        let max = key_of_len(h, "a", limits::MAX_KEY_SIZE);
        let over = key_of_len(h, "b", limits::MAX_KEY_SIZE + 1);
        let t = tx(&db);
        t.set(&max, b"v");
        t.commit().await.expect("a 10,000-byte key is legal");
        assert_eq!(get(&db, &max).await, Some(b"v".to_vec()));

        let t = tx(&db);
        t.set(&over, b"v");
        assert_eq!(
            code(t.commit().await),
            KEY_TOO_LARGE,
            "10,001-byte key at commit"
        );

        // Deferred: the write call returns nothing, the next read fails.
        let t = tx(&db);
        t.set(&over, b"v");
        assert_eq!(
            code(t.get(&h.k("other"), false).await),
            KEY_TOO_LARGE,
            "next read"
        );

        for (what, write) in [("atomic op", 0), ("versionstamped value", 1)] {
            let t = tx(&db);
            match write {
                0 => t.atomic_op(&over, &le(1, 8), MutationType::Add),
                _ => t.atomic_op(
                    &over,
                    &[vec![0u8; 10], 0u32.to_le_bytes().to_vec()].concat(),
                    MutationType::SetVersionstampedValue,
                ),
            }
            assert_eq!(
                code(t.commit().await),
                KEY_TOO_LARGE,
                "{what} of a 10,001-byte key"
            );
        }
        assert_eq!(get(&db, &over).await, None);
    });
}

pub fn a_get_of_an_oversized_key_is_none_and_conflicts_with_nothing<H: Harness>(h: &H) {
    let db = h.db();
    block_on(async {
        let mut key = h.k("big/");
        key.resize(limits::MAX_KEY_SIZE + 1, b'k');
        let t1 = reader(&db).await;
        assert_eq!(t1.get(&key, false).await.unwrap(), None);
        // Nothing can be written there; its read adds no conflict even with a write
        // that covers it.
        let t2 = tx(&db);
        t2.clear_range(&h.k("big/"), &h.k("big0"));
        t2.commit().await.unwrap();
        t1.set(&h.k("marker"), b"t1");
        t1.commit()
            .await
            .expect("no conflict from the oversized read");
    });
}

pub fn clear_of_oversized_key_is_a_no_op<H: Harness>(h: &H) {
    let db = h.db();
    block_on(async {
        // No key over 10,000 bytes can exist, so FoundationDB's client drops such a
        // clear (ReadYourWritesTransaction::clear returns early) instead of failing.
        let over = key_of_len(h, "b", limits::MAX_KEY_SIZE + 1);
        let t = tx(&db);
        t.clear(&over);
        t.set(&h.k("after-clear"), b"v");
        t.commit()
            .await
            .expect("clear of an oversized key is ignored");
        assert_eq!(get(&db, &h.k("after-clear")).await, Some(b"v".to_vec()));
    });
}

pub fn value_size_limit<H: Harness>(h: &H) {
    let db = h.db();
    block_on(async {
        let max = vec![b'v'; limits::MAX_VALUE_SIZE];
        let over = vec![b'v'; limits::MAX_VALUE_SIZE + 1];
        put(&db, &h.k("max"), &max).await;
        assert_eq!(get(&db, &h.k("max")).await, Some(max.clone()));

        let t = tx(&db);
        t.set(&h.k("over"), &over);
        assert_eq!(
            code(t.commit().await),
            VALUE_TOO_LARGE,
            "100,001-byte value at commit"
        );

        let t = tx(&db);
        t.set(&h.k("over"), &over);
        assert_eq!(
            code(t.get(&h.k("max"), false).await),
            VALUE_TOO_LARGE,
            "next read"
        );
        assert_eq!(code(t.commit().await), VALUE_TOO_LARGE, "and the commit");

        let t = tx(&db);
        t.atomic_op(&h.k("over"), &over, MutationType::ByteMax);
        assert_eq!(
            code(t.commit().await),
            VALUE_TOO_LARGE,
            "atomic op parameter"
        );
        assert_eq!(get(&db, &h.k("over")).await, None);
    });
}

pub fn versionstamp_templates_count_their_offset_toward_the_limits<H: Harness>(h: &H) {
    let db = h.db();
    block_on(async {
        // A value template: 10-byte placeholder at 0, then the 4-byte offset. Its value
        // would fit (100,000 bytes); the template (100,004) does not.
        let mut value = vec![0u8; limits::MAX_VALUE_SIZE];
        value.extend_from_slice(&0u32.to_le_bytes());
        let t = tx(&db);
        t.atomic_op(&h.k("vs"), &value, MutationType::SetVersionstampedValue);
        assert_eq!(code(t.commit().await), VALUE_TOO_LARGE, "value template");

        // A key template whose key would be 10,000 bytes, 10,004 with its offset.
        let prefix = h.k("vs/");
        let mut key = prefix.clone();
        key.resize(limits::MAX_KEY_SIZE, b'k');
        key.extend_from_slice(&(prefix.len() as u32).to_le_bytes());
        let t = tx(&db);
        t.atomic_op(&key, b"v", MutationType::SetVersionstampedKey);
        assert_eq!(code(t.commit().await), KEY_TOO_LARGE, "key template");

        // Within the limits, offset included: accepted.
        let mut key = prefix.clone();
        key.resize(limits::MAX_KEY_SIZE - 4, b'k');
        key.extend_from_slice(&(prefix.len() as u32).to_le_bytes());
        let t = tx(&db);
        t.atomic_op(&key, b"v", MutationType::SetVersionstampedKey);
        t.commit().await.expect("a 10,000-byte template");
    });
}

pub fn transaction_size_limit<H: Harness>(h: &H) {
    let db = h.db();
    block_on(async {
        let value = vec![b'v'; limits::MAX_VALUE_SIZE];
        let t = tx(&db);
        let mut last = 0;
        for i in 0..110 {
            t.set(&h.k(&format!("big/{i:03}")), &value);
            if i % 20 == 0 {
                let size = t.get_approximate_size().await.unwrap();
                assert!(size > last, "approximate size grows: {size} after {last}");
                last = size;
            }
        }
        assert!(t.get_approximate_size().await.unwrap() > limits::MAX_TRANSACTION_SIZE as i64);
        assert_eq!(
            code(t.commit().await),
            TRANSACTION_TOO_LARGE,
            "11 MB transaction"
        );
        assert_eq!(scan_prefix(&db, &h.k("big/")).await, vec![]);
    });
}

pub fn size_limit_option<H: Harness>(h: &H) {
    let db = h.db();
    block_on(async {
        let t = tx(&db);
        t.set_option(TransactionOption::SizeLimit(1000)).unwrap();
        let empty = t.get_approximate_size().await.unwrap();
        t.set(&h.k("small"), &[b's'; 500]);
        let size = t.get_approximate_size().await.unwrap();
        assert!(
            size >= empty + 500,
            "approximate size counts the write: {size}"
        );
        t.commit().await.expect("under the size limit");
        assert_eq!(get(&db, &h.k("small")).await, Some(vec![b's'; 500]));

        let t = tx(&db);
        t.set_option(TransactionOption::SizeLimit(1000)).unwrap();
        t.set(&h.k("large"), &[b'l'; 2000]);
        assert_eq!(
            code(t.commit().await),
            TRANSACTION_TOO_LARGE,
            "over the size limit"
        );
        assert_eq!(get(&db, &h.k("large")).await, None);

        // Many small writes add up too.
        let t = tx(&db);
        t.set_option(TransactionOption::SizeLimit(1000)).unwrap();
        for i in 0..20 {
            t.set(&h.k(&format!("many/{i:02}")), &[b'm'; 100]);
        }
        assert_eq!(
            code(t.commit().await),
            TRANSACTION_TOO_LARGE,
            "20 x 100-byte values"
        );
    });
}

pub fn keys_outside_legal_range<H: Harness>(h: &H) {
    let db = h.db();
    block_on(async {
        let t = tx(&db);
        // (\xff\xff... is FoundationDB's special-key space, deliberately not probed.)
        for key in [&b"\xff"[..], b"\xff\x00", b"\xff\x01"] {
            assert_eq!(
                code(t.get(key, false).await),
                KEY_OUTSIDE_LEGAL_RANGE,
                "get {key:?}"
            );
            assert_eq!(
                code(t.get(key, true).await),
                KEY_OUTSIDE_LEGAL_RANGE,
                "snapshot get {key:?}"
            );
        }
        assert_eq!(
            code(
                t.get_range_all(RangeOption::from_keys(b"\xff", b"\xff\x01"), false)
                    .await
            ),
            KEY_OUTSIDE_LEGAL_RANGE,
            "range in the system keyspace"
        );
        // A range ending exactly at \xff is legal.
        put(&db, &h.k("a"), b"1").await;
        let t = tx(&db);
        let r = RangeOption::from_keys(h.prefix(), b"\xff");
        assert_eq!(
            t.get_range_all(r.with_limit(1), false).await.unwrap().len(),
            1
        );

        for (what, write) in [
            ("set", 0),
            ("clear", 1),
            ("atomic op", 2),
            ("clear_range", 3),
        ] {
            let t = tx(&db);
            t.set(&h.k("side-effect"), b"x");
            match write {
                0 => t.set(b"\xff\x01", b"x"),
                1 => t.clear(b"\xff"),
                2 => t.atomic_op(b"\xff\x02", &le(1, 8), MutationType::Add),
                _ => t.clear_range(b"\xff\x00", b"\xff\x01"),
            }
            assert_eq!(
                code(t.commit().await),
                KEY_OUTSIDE_LEGAL_RANGE,
                "{what} of a system key"
            );
        }
        assert_eq!(get(&db, &h.k("side-effect")).await, None);
    });
}

pub fn selector_beyond_legal_range_is_rejected<H: Harness>(h: &H) {
    let db = h.db();
    block_on(async {
        put(&db, &h.k("a"), b"1").await;
        let t = tx(&db);
        // A selector whose key is \xff itself is legal and resolves to \xff...
        let at_end = KeySelector::first_greater_or_equal(b"\xff".to_vec());
        assert_eq!(t.get_key(&at_end, false).await.unwrap(), b"\xff".to_vec());
        // ...one beyond it is rejected (ReadYourWritesTransaction::getKey).
        let beyond = KeySelector::first_greater_or_equal(b"\xff\x01".to_vec());
        let get_key = outcome(&t.get_key(&beyond, false).await);
        let r = RangeOption::from_selectors(KeySelector::first_greater_or_equal(h.k("")), beyond);
        let get_range = outcome(&t.get_range_all(r, false).await);
        assert_eq!(
            (get_key, get_range),
            (KEY_OUTSIDE_LEGAL_RANGE, KEY_OUTSIDE_LEGAL_RANGE),
            "(get_key, get_range) with a selector beyond \\xff (0 = succeeded)"
        );
    });
}

pub fn transaction_too_old_after_lifetime<H: Harness>(h: &H) {
    let db = h.db();
    block_on(async {
        let k = h.k("k");
        put(&db, &k, b"1").await;

        // Within the lifetime everything works.
        let t = tx(&db);
        t.get(&k, false).await.unwrap();
        h.pass_time(Duration::from_secs(3));
        assert_eq!(t.get(&k, false).await.unwrap(), Some(b"1".to_vec()));
        t.set(&k, b"2");
        t.commit().await.expect("3 s after the read version");

        // A read after the lifetime.
        let t = tx(&db);
        t.get(&k, false).await.unwrap();
        h.pass_time(Duration::from_secs(6));
        assert_eq!(
            code(t.get(&k, false).await),
            TRANSACTION_TOO_OLD,
            "read 6 s later"
        );

        // A commit after the lifetime.
        let t = tx(&db);
        t.get(&k, false).await.unwrap();
        t.set(&k, b"3");
        h.pass_time(Duration::from_secs(6));
        assert_eq!(
            code(t.commit().await),
            TRANSACTION_TOO_OLD,
            "commit 6 s later"
        );
        assert_eq!(get(&db, &k).await, Some(b"2".to_vec()));

        // on_error resets it: the retry gets a fresh read version.
        t.on_error(FdbError::from_code(TRANSACTION_TOO_OLD))
            .await
            .expect("transaction_too_old is retryable");
        t.set(&k, b"4");
        t.commit().await.expect("after on_error");
        assert_eq!(get(&db, &k).await, Some(b"4".to_vec()));
    });
}

pub fn timeout_option<H: Harness>(h: &H) {
    let db = h.db();
    block_on(async {
        let k = h.k("k");
        put(&db, &k, b"1").await;

        // A commit after the timeout.
        let t = tx(&db);
        t.set_option(TransactionOption::Timeout(Duration::from_millis(200)))
            .unwrap();
        assert_eq!(t.get(&k, false).await.unwrap(), Some(b"1".to_vec()));
        t.set(&k, b"2");
        h.pass_time(Duration::from_millis(100));
        assert_eq!(
            t.get(&k, false).await.unwrap(),
            Some(b"2".to_vec()),
            "before the timeout"
        );
        h.pass_time(Duration::from_millis(300));
        assert_eq!(
            code(t.commit().await),
            TRANSACTION_TIMED_OUT,
            "commit after the timeout"
        );
        assert_eq!(get(&db, &k).await, Some(b"1".to_vec()));
        assert_eq!(
            code(t.on_error(FdbError::from_code(TRANSACTION_TIMED_OUT)).await),
            TRANSACTION_TIMED_OUT,
            "transaction_timed_out is not retryable"
        );

        // A read after the timeout.
        let t = tx(&db);
        t.set_option(TransactionOption::Timeout(Duration::from_millis(200)))
            .unwrap();
        h.pass_time(Duration::from_millis(400));
        assert_eq!(
            code(t.get(&k, false).await),
            TRANSACTION_TIMED_OUT,
            "read after the timeout"
        );

        // Zero disables the timeout.
        let t = tx(&db);
        t.set_option(TransactionOption::Timeout(Duration::ZERO))
            .unwrap();
        h.pass_time(Duration::from_millis(400));
        t.set(&k, b"3");
        t.commit().await.expect("no timeout");
        assert_eq!(get(&db, &k).await, Some(b"3".to_vec()));
    });
}

pub fn every_use_after_timeout_reports_timed_out<H: Harness>(h: &H) {
    let db = h.db();
    block_on(async {
        let k = h.k("k");
        let t = tx(&db);
        t.set_option(TransactionOption::Timeout(Duration::from_millis(200)))
            .unwrap();
        t.set(&k, b"x");
        h.pass_time(Duration::from_millis(400));
        // FoundationDB keeps answering transaction_timed_out (the error stored in the
        // transaction's reset promise) until reset, not transaction_cancelled.
        assert_eq!(
            code(t.get(&k, false).await),
            TRANSACTION_TIMED_OUT,
            "first read"
        );
        assert_eq!(
            code(t.get(&k, false).await),
            TRANSACTION_TIMED_OUT,
            "second read"
        );
        assert_eq!(code(t.commit().await), TRANSACTION_TIMED_OUT, "commit");
        assert_eq!(get(&db, &k).await, None);
    });
}

pub fn timeout_option_through_retry_loop<H: Harness>(h: &H) {
    let db = h.db();
    let attempts = AtomicU32::new(0);
    let attempts_ref = &attempts;
    let k = h.k("k");
    let k_ref = &k;
    let result: Result<(), AppError> = block_on(db.run(move |t, _| async move {
        let n = attempts_ref.fetch_add(1, Ordering::SeqCst) + 1;
        if n == 1 {
            t.set_option(TransactionOption::Timeout(Duration::from_millis(100)))?;
        }
        if n > 10_000 {
            return Err(AppError::App("the timeout never fired"));
        }
        t.set(k_ref, b"x");
        // Always fails with a retryable error: only the timeout ends the loop.
        Err(AppError::Fdb(FdbError::from_code(NOT_COMMITTED)))
    }));
    assert_eq!(
        result,
        Err(AppError::Fdb(FdbError::from_code(TRANSACTION_TIMED_OUT)))
    );
    assert!(
        attempts.load(Ordering::SeqCst) >= 2,
        "it retried before timing out"
    );
    assert_eq!(block_on(get(&db, &k)), None);
}

/// A limit is an upper bound, not a size: a range read asked for up to `usize::MAX`
/// rows (in any streaming mode) reads what there is.
pub fn huge_row_limits_are_just_limits<H: Harness>(h: &H) {
    let db = h.db();
    block_on(async {
        put_all(&db, &[h.kv("huge/a", b"1"), h.kv("huge/b", b"2")]).await;
        let t = tx(&db);
        for mode in [
            StreamingMode::WantAll,
            StreamingMode::Exact,
            StreamingMode::Iterator,
        ] {
            let range = RangeOption::from_keys(&h.k("huge/"), &h.k("huge0"))
                .with_limit(usize::MAX)
                .with_mode(mode);
            let rows = t.get_range(&range, 1, false).await.unwrap();
            assert_eq!(rows.key_values.len(), 2, "{mode:?}");
            let batch = t.get_range_batch(&range, 1, false).await.unwrap();
            assert_eq!(batch.len(), 2, "{mode:?}");
        }
    });
}
