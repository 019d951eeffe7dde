//! Read-your-writes and snapshot isolation.

use crate::harness::*;
use fdb_records::kv::{
    KeyValue, MutationType, RangeOption, StreamingMode, Transaction, TransactionOption,
};
use futures::executor::block_on;
use futures::StreamExt;

conformance!(
    reads_see_own_sets_and_clears,
    reads_see_own_atomic_ops,
    range_reads_merge_buffered_and_stored_keys,
    snapshot_reads_see_own_writes_unless_disabled,
    snapshot_ryw_options_are_counted,
    transaction_does_not_see_later_commits,
);

fn rev(mut kvs: Vec<KeyValue>) -> Vec<KeyValue> {
    kvs.reverse();
    kvs
}

pub fn reads_see_own_sets_and_clears<H: Harness>(h: &H) {
    let db = h.db();
    block_on(async {
        put_all(
            &db,
            &[
                h.kv("a", b"1"),
                h.kv("b", b"2"),
                h.kv("c", b"3"),
                h.kv("d", b"4"),
                h.kv("e", b"5"),
            ],
        )
        .await;
        let t = tx(&db);
        t.set(&h.k("a"), b"10");
        assert_eq!(t.get(&h.k("a"), false).await.unwrap(), Some(b"10".to_vec()));
        t.clear(&h.k("b"));
        assert_eq!(t.get(&h.k("b"), false).await.unwrap(), None);
        t.clear_range(&h.k("c"), &h.k("e"));
        assert_eq!(t.get(&h.k("c"), false).await.unwrap(), None);
        assert_eq!(t.get(&h.k("d"), false).await.unwrap(), None);
        assert_eq!(
            t.get(&h.k("e"), false).await.unwrap(),
            Some(b"5".to_vec()),
            "clear_range end is exclusive"
        );
        t.set(&h.k("d"), b"40");
        assert_eq!(
            t.get(&h.k("d"), false).await.unwrap(),
            Some(b"40".to_vec()),
            "set after clear_range"
        );
        assert_eq!(t.get(&h.k("c"), false).await.unwrap(), None);
        t.set(&h.k("f"), b"6");
        t.set(&h.k("f"), b"60");
        let expected = vec![
            h.kv("a", b"10"),
            h.kv("d", b"40"),
            h.kv("e", b"5"),
            h.kv("f", b"60"),
        ];
        let (begin, end) = (h.k(""), h.k("z"));
        assert_eq!(
            range(&t, &begin, &end, None, false, false).await.unwrap(),
            expected
        );
        assert_eq!(
            range(&t, &begin, &end, None, true, false).await.unwrap(),
            rev(expected.clone())
        );
        // A cleared key written again, then cleared by a range again.
        t.clear_range(&h.k("d"), &h.k("e"));
        assert_eq!(t.get(&h.k("d"), false).await.unwrap(), None);
        t.set(&h.k("d"), b"41");
        let expected = vec![
            h.kv("a", b"10"),
            h.kv("d", b"41"),
            h.kv("e", b"5"),
            h.kv("f", b"60"),
        ];
        t.commit().await.unwrap();
        assert_eq!(scan(&db, &begin, &end).await, expected, "as committed");
    });
}

pub fn reads_see_own_atomic_ops<H: Harness>(h: &H) {
    let db = h.db();
    block_on(async {
        put_all(
            &db,
            &[
                h.kv("existing", &le(5, 8)),
                h.kv("cleared", &le(9, 8)),
                h.kv("bytes", b"abc"),
                h.kv("cac", b"same"),
            ],
        )
        .await;
        let t = tx(&db);
        t.atomic_op(&h.k("missing"), &le(3, 8), MutationType::Add);
        assert_eq!(
            t.get(&h.k("missing"), false).await.unwrap(),
            Some(le(3, 8)),
            "add on a missing key"
        );
        t.atomic_op(&h.k("existing"), &le(2, 8), MutationType::Add);
        assert_eq!(
            t.get(&h.k("existing"), false).await.unwrap(),
            Some(le(7, 8)),
            "add on an existing key"
        );
        t.atomic_op(&h.k("existing"), &le(-10, 8), MutationType::Add);
        assert_eq!(
            t.get(&h.k("existing"), false).await.unwrap(),
            Some(le(-3, 8)),
            "two adds stack"
        );
        t.set(&h.k("set-then-add"), &le(1, 8));
        t.atomic_op(&h.k("set-then-add"), &le(1, 8), MutationType::Add);
        assert_eq!(
            t.get(&h.k("set-then-add"), false).await.unwrap(),
            Some(le(2, 8))
        );
        t.clear(&h.k("cleared"));
        t.atomic_op(&h.k("cleared"), &le(4, 8), MutationType::Add);
        assert_eq!(
            t.get(&h.k("cleared"), false).await.unwrap(),
            Some(le(4, 8)),
            "add after clear starts from nothing"
        );
        t.atomic_op(&h.k("bytes"), b"abd", MutationType::ByteMax);
        t.atomic_op(&h.k("cac"), b"same", MutationType::CompareAndClear);
        assert_eq!(t.get(&h.k("cac"), false).await.unwrap(), None);
        t.atomic_op(&h.k("min-missing"), &[7], MutationType::Min);
        let expected = vec![
            h.kv("bytes", b"abd"),
            h.kv("cleared", &le(4, 8)),
            h.kv("existing", &le(-3, 8)),
            h.kv("min-missing", &[7]),
            h.kv("missing", &le(3, 8)),
            h.kv("set-then-add", &le(2, 8)),
        ];
        let (begin, end) = (h.k(""), h.k("z"));
        assert_eq!(
            range(&t, &begin, &end, None, false, false).await.unwrap(),
            expected
        );
        assert_eq!(
            range(&t, &begin, &end, None, true, false).await.unwrap(),
            rev(expected.clone())
        );
        t.commit().await.unwrap();
        assert_eq!(scan(&db, &begin, &end).await, expected, "as committed");
    });
}

pub fn range_reads_merge_buffered_and_stored_keys<H: Harness>(h: &H) {
    let db = h.db();
    block_on(async {
        put_all(
            &db,
            &[
                h.kv("a", b"s"),
                h.kv("c", b"s"),
                h.kv("e", b"s"),
                h.kv("g", b"s"),
            ],
        )
        .await;
        let t = tx(&db);
        t.set(&h.k("b"), b"t");
        t.set(&h.k("f"), b"t");
        t.clear(&h.k("c"));
        t.set(&h.k("e"), b"t");
        let (begin, end) = (h.k(""), h.k("z"));
        let all = vec![
            h.kv("a", b"s"),
            h.kv("b", b"t"),
            h.kv("e", b"t"),
            h.kv("f", b"t"),
            h.kv("g", b"s"),
        ];
        let read =
            |limit: Option<usize>, reverse: bool| range(&t, &begin, &end, limit, reverse, false);
        assert_eq!(read(None, false).await.unwrap(), all);
        assert_eq!(read(None, true).await.unwrap(), rev(all.clone()));
        for limit in 1..=6 {
            let n = limit.min(all.len());
            assert_eq!(
                read(Some(limit), false).await.unwrap(),
                all[..n].to_vec(),
                "forward, limit {limit}"
            );
            assert_eq!(
                read(Some(limit), true).await.unwrap(),
                rev(all.clone())[..n].to_vec(),
                "reverse, limit {limit}"
            );
        }
        // A sub-range whose bounds fall on buffered and cleared keys.
        assert_eq!(
            range(&t, &h.k("b"), &h.k("f"), None, false, false)
                .await
                .unwrap(),
            vec![h.kv("b", b"t"), h.kv("e", b"t")]
        );
        assert_eq!(
            range(&t, &h.k("c"), &h.k("g"), None, true, false)
                .await
                .unwrap(),
            vec![h.kv("f", b"t"), h.kv("e", b"t")]
        );
        // Batch by batch, in every streaming mode, the result is the same.
        for mode in [
            StreamingMode::Iterator,
            StreamingMode::Small,
            StreamingMode::WantAll,
            StreamingMode::Serial,
        ] {
            for reverse in [false, true] {
                let mut r = RangeOption::from_keys(&begin, &end).with_mode(mode);
                r.reverse = reverse;
                let mut batches = t.get_ranges(r.with_target_bytes(1), false);
                let mut got = Vec::new();
                while let Some(batch) = batches.next().await {
                    got.extend(batch.unwrap().key_values);
                }
                let expected = if reverse {
                    rev(all.clone())
                } else {
                    all.clone()
                };
                assert_eq!(got, expected, "{mode:?}, reverse {reverse}");
            }
        }
        let exact = RangeOption::from_keys(&begin, &end)
            .with_limit(3)
            .with_mode(StreamingMode::Exact);
        let batch = t.get_range(&exact, 1, false).await.unwrap();
        assert_eq!(batch.key_values, all[..3].to_vec(), "exact mode, limit 3");

        // A clear_range over buffered and stored keys, then a new key inside it.
        t.clear_range(&h.k("e"), &h.k("g"));
        t.set(&h.k("ee"), b"t");
        let now = vec![
            h.kv("a", b"s"),
            h.kv("b", b"t"),
            h.kv("ee", b"t"),
            h.kv("g", b"s"),
        ];
        assert_eq!(read(None, false).await.unwrap(), now);
        assert_eq!(
            read(Some(2), true).await.unwrap(),
            vec![h.kv("g", b"s"), h.kv("ee", b"t")]
        );
        t.commit().await.unwrap();
        assert_eq!(scan(&db, &begin, &end).await, now, "as committed");
    });
}

pub fn snapshot_reads_see_own_writes_unless_disabled<H: Harness>(h: &H) {
    let db = h.db();
    block_on(async {
        let (k, n) = (h.k("r/k"), h.k("r/n"));
        put(&db, &k, b"old").await;
        let (begin, end) = (h.k("r/"), h.k("r0"));

        let t = tx(&db);
        t.set(&k, b"new");
        t.set(&n, b"added");
        assert_eq!(t.get(&k, true).await.unwrap(), Some(b"new".to_vec()));
        assert_eq!(
            range(&t, &begin, &end, None, false, true).await.unwrap(),
            vec![h.kv("r/k", b"new"), h.kv("r/n", b"added")],
            "snapshot range read sees own writes by default"
        );
        t.cancel();

        let t = tx(&db);
        t.set_option(TransactionOption::SnapshotRywDisable).unwrap();
        t.set(&k, b"new");
        t.set(&n, b"added");
        assert_eq!(
            t.get(&k, true).await.unwrap(),
            Some(b"old".to_vec()),
            "snapshot get ignores own writes with SnapshotRywDisable"
        );
        assert_eq!(t.get(&n, true).await.unwrap(), None);
        assert_eq!(
            range(&t, &begin, &end, None, false, true).await.unwrap(),
            vec![h.kv("r/k", b"old")],
            "snapshot range read ignores own writes with SnapshotRywDisable"
        );
        assert_eq!(
            t.get(&k, false).await.unwrap(),
            Some(b"new".to_vec()),
            "non-snapshot reads still see own writes"
        );
        assert_eq!(
            range(&t, &begin, &end, None, false, false).await.unwrap(),
            vec![h.kv("r/k", b"new"), h.kv("r/n", b"added")]
        );
        t.commit().await.unwrap();
        assert_eq!(get(&db, &k).await, Some(b"new".to_vec()));
    });
}

pub fn snapshot_ryw_options_are_counted<H: Harness>(h: &H) {
    let db = h.db();
    block_on(async {
        let k = h.k("c/k");
        put(&db, &k, b"old").await;
        let t = tx(&db);
        t.set(&k, b"new");
        let snapshot_get = || async { t.get(&k, true).await.unwrap() };
        t.set_option(TransactionOption::SnapshotRywDisable).unwrap();
        t.set_option(TransactionOption::SnapshotRywDisable).unwrap();
        t.set_option(TransactionOption::SnapshotRywEnable).unwrap();
        assert_eq!(
            snapshot_get().await,
            Some(b"old".to_vec()),
            "two disables need two enables"
        );
        t.set_option(TransactionOption::SnapshotRywEnable).unwrap();
        assert_eq!(snapshot_get().await, Some(b"new".to_vec()));
    });
}

pub fn transaction_does_not_see_later_commits<H: Harness>(h: &H) {
    let db = h.db();
    block_on(async {
        put_all(&db, &[h.kv("k", b"old"), h.kv("gone", b"here")]).await;
        let t1 = tx(&db);
        let rv = t1.get_read_version().await.unwrap();
        assert!(rv >= 0);
        assert_eq!(
            t1.get(&h.k("k"), false).await.unwrap(),
            Some(b"old".to_vec())
        );

        let t2 = tx(&db);
        t2.set(&h.k("k"), b"new");
        t2.set(&h.k("added"), b"x");
        t2.clear(&h.k("gone"));
        let c2 = t2.commit().await.unwrap();
        assert!(c2.version > rv);

        assert_eq!(
            t1.get(&h.k("k"), false).await.unwrap(),
            Some(b"old".to_vec())
        );
        assert_eq!(t1.get(&h.k("added"), true).await.unwrap(), None);
        assert_eq!(
            t1.get(&h.k("gone"), false).await.unwrap(),
            Some(b"here".to_vec())
        );
        assert_eq!(
            range(&t1, &h.k(""), &h.k("z"), None, false, false)
                .await
                .unwrap(),
            vec![h.kv("gone", b"here"), h.kv("k", b"old")]
        );
        assert_eq!(
            t1.get_read_version().await.unwrap(),
            rv,
            "read version is stable"
        );
        t1.commit().await.expect("read-only");

        let t3 = tx(&db);
        let rv3 = t3.get_read_version().await.unwrap();
        assert!(
            rv3 >= c2.version,
            "a new transaction sees the earlier commit"
        );
        assert_eq!(
            t3.get(&h.k("k"), false).await.unwrap(),
            Some(b"new".to_vec())
        );
        assert_eq!(t3.get(&h.k("gone"), false).await.unwrap(), None);
    });
}
