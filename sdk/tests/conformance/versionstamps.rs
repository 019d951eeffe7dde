//! Versionstamped keys and values.

use crate::harness::*;
use fdb_records::kv::code::*;
use fdb_records::kv::Database;
use fdb_records::kv::{
    strinc, Committed, ConflictRangeType, KeySelector, MutationType, Transaction,
    METADATA_VERSION_KEY, METADATA_VERSION_KEY_END, METADATA_VERSION_REQUIRED_VALUE,
};
use foundationdb_tuple::{Subspace, Versionstamp};
use futures::executor::block_on;
use futures::future::join_all;
use std::collections::{BTreeMap, HashSet};

conformance!(
    versionstamped_key_and_value_store_the_commit_versionstamp,
    versionstamps_increase_across_sequential_commits,
    versionstamps_are_unique_across_concurrent_commits,
    versionstamped_writes_are_unreadable_in_their_transaction,
    reads_that_stop_before_a_versionstamped_write_succeed,
    keys_stamped_before_the_read_version_stay_readable,
    invalid_versionstamp_offset_fails_at_commit,
    versionstamped_key_conflicts_with_a_read_of_its_range,
    metadata_version_key_holds_the_last_bump_versionstamp,
    metadata_version_key_accepts_only_a_versionstamp_bump,
    metadata_version_key_conflicts_only_on_non_snapshot_reads,
);

/// `body` with a 10-byte placeholder at `pos`, then the 4-byte little-endian offset.
fn template(head: &[u8], tail: &[u8]) -> Vec<u8> {
    let mut t = head.to_vec();
    t.extend([0u8; 10]);
    t.extend_from_slice(tail);
    t.extend((head.len() as u32).to_le_bytes());
    t
}

fn filled(head: &[u8], stamp: &[u8; 10], tail: &[u8]) -> Vec<u8> {
    [head, &stamp[..], tail].concat()
}

pub fn versionstamped_key_and_value_store_the_commit_versionstamp<H: Harness>(h: &H) {
    let db = h.db();
    block_on(async {
        let sub = Subspace::from_bytes(h.k("tuple/"));
        let key_template = sub.pack_with_versionstamp(&("key", Versionstamp::incomplete(7)));
        let value_template =
            foundationdb_tuple::pack_with_versionstamp(&("value", Versionstamp::incomplete(9)));
        let raw_head = h.k("raw/");
        let t = tx(&db);
        t.atomic_op(&key_template, b"kv", MutationType::SetVersionstampedKey);
        t.atomic_op(
            &h.k("tuple-value"),
            &value_template,
            MutationType::SetVersionstampedValue,
        );
        t.atomic_op(
            &template(&raw_head, b"/tail"),
            b"raw",
            MutationType::SetVersionstampedKey,
        );
        t.atomic_op(
            &h.k("raw-value"),
            &template(b"head", b"tail"),
            MutationType::SetVersionstampedValue,
        );
        t.atomic_op(
            &h.k("stamp-only"),
            &template(b"", b""),
            MutationType::SetVersionstampedValue,
        );
        let committed = t.commit().await.expect("versionstamped writes commit");
        let stamp = committed
            .versionstamp
            .expect("a writing commit has a versionstamp");
        assert!(committed.version > 0);
        assert_eq!(
            stamp_version(&stamp),
            committed.version,
            "the first 8 bytes are the big-endian commit version"
        );
        assert_eq!(t.committed_versionstamp(), Some(stamp));

        // Tuple-encoded key: the placeholder replaced, the user version kept.
        let stored = scan_prefix(&db, sub.bytes()).await;
        assert_eq!(stored.len(), 1, "{stored:?}");
        let (name, vs): (String, Versionstamp) = sub.unpack(&stored[0].key).expect("tuple key");
        assert_eq!(name, "key");
        assert!(vs.is_complete());
        assert_eq!(vs.transaction_version(), &stamp[..]);
        assert_eq!(vs.user_version(), 7);
        assert_eq!(
            stored[0].key,
            sub.pack(&("key", Versionstamp::complete(stamp, 7)))
        );
        assert_eq!(stored[0].value, b"kv".to_vec());

        // Tuple-encoded value.
        let value = get(&db, &h.k("tuple-value"))
            .await
            .expect("versionstamped value");
        let (name, vs): (String, Versionstamp) =
            foundationdb_tuple::unpack(&value).expect("tuple value");
        assert_eq!(name, "value");
        assert_eq!(vs.transaction_version(), &stamp[..]);
        assert_eq!(vs.user_version(), 9);

        // Raw templates: offset suffix removed, surrounding bytes intact.
        assert_eq!(
            get(&db, &filled(&raw_head, &stamp, b"/tail")).await,
            Some(b"raw".to_vec())
        );
        assert_eq!(
            get(&db, &h.k("raw-value")).await,
            Some(filled(b"head", &stamp, b"tail"))
        );
        assert_eq!(get(&db, &h.k("stamp-only")).await, Some(stamp.to_vec()));
        assert_eq!(scan_prefix(&db, &raw_head).await.len(), 1);
    });
}

pub fn versionstamps_increase_across_sequential_commits<H: Harness>(h: &H) {
    let db = h.db();
    block_on(async {
        let mut previous: Option<Committed> = None;
        let mut stamps = Vec::new();
        for i in 0..10u8 {
            let t = tx(&db);
            t.atomic_op(
                &template(&h.k("seq/"), b""),
                &[i],
                MutationType::SetVersionstampedKey,
            );
            if i % 2 == 0 {
                // Mixed with ordinary writes.
                t.set(&h.k("plain"), &[i]);
            }
            let c = t.commit().await.unwrap();
            let stamp = c.versionstamp.expect("versionstamp");
            assert_eq!(stamp_version(&stamp), c.version);
            if let Some(p) = previous {
                assert!(c.version > p.version, "commit versions increase");
                assert!(
                    stamp > p.versionstamp.unwrap(),
                    "versionstamps increase: {stamp:02x?} after {:02x?}",
                    p.versionstamp
                );
            }
            previous = Some(c);
            stamps.push(stamp);
        }
        // Stored in commit order.
        let stored = scan_prefix(&db, &h.k("seq/")).await;
        let values: Vec<u8> = stored.iter().map(|kv| kv.value[0]).collect();
        assert_eq!(values, (0..10).collect::<Vec<u8>>());
        for (kv, stamp) in stored.iter().zip(&stamps) {
            assert_eq!(kv.key, filled(&h.k("seq/"), stamp, b""));
        }
        // A read-only commit has neither version nor versionstamp.
        let t = tx(&db);
        t.get(&h.k("plain"), false).await.unwrap();
        let c = t.commit().await.unwrap();
        assert_eq!(c.version, -1);
        assert_eq!(c.versionstamp, None);
        assert_eq!(t.committed_versionstamp(), None);
    });
}

pub fn versionstamps_are_unique_across_concurrent_commits<H: Harness>(h: &H) {
    const THREADS: usize = 4;
    const FUTURES: usize = 16;
    let db = h.db();
    let before = block_on(put(&db, &h.k("before"), b"x"));
    let key_head = h.k("c/");
    let results: Vec<(usize, Committed)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|thread| {
                let db = h.db();
                let key_head = &key_head;
                s.spawn(move || {
                    block_on(join_all((0..FUTURES).map(|i| {
                        let db = db.clone();
                        let id = thread * FUTURES + i;
                        async move {
                            let t = tx(&db);
                            let id_bytes = (id as u32).to_be_bytes();
                            t.atomic_op(
                                &template(key_head, b""),
                                &id_bytes,
                                MutationType::SetVersionstampedKey,
                            );
                            t.atomic_op(
                                &h.k(&format!("v/{id:03}")),
                                &template(b"", b""),
                                MutationType::SetVersionstampedValue,
                            );
                            t.atomic_op(&h.k("count"), &le(1, 8), MutationType::Add);
                            (id, t.commit().await.expect("versionstamped commit"))
                        }
                    })))
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("worker thread"))
            .collect()
    });
    let after = block_on(put(&db, &h.k("after"), b"x"));
    let total = THREADS * FUTURES;
    assert_eq!(results.len(), total);

    let mut by_stamp = BTreeMap::new();
    for (id, c) in &results {
        let stamp = c.versionstamp.expect("versionstamp");
        assert_eq!(stamp_version(&stamp), c.version);
        assert!(stamp > before.versionstamp.unwrap() && stamp < after.versionstamp.unwrap());
        assert!(
            by_stamp.insert(stamp, *id).is_none(),
            "duplicate versionstamp {stamp:02x?}"
        );
    }
    // Commits sharing a version (one batch) differ in the batch-order bytes.
    let versions: HashSet<i64> = results.iter().map(|(_, c)| c.version).collect();
    println!(
        "[{}] {total} concurrent commits in {} versions",
        H::NAME,
        versions.len()
    );

    block_on(async {
        assert_eq!(
            get(&db, &h.k("count")).await.map(|v| le_i64(&v)),
            Some(total as i64)
        );
        let stored = scan_prefix(&db, &key_head).await;
        assert_eq!(stored.len(), total, "one key per commit");
        for (kv, (stamp, id)) in stored.iter().zip(&by_stamp) {
            assert_eq!(kv.key, filled(&key_head, stamp, b""));
            assert_eq!(
                kv.value,
                (*id as u32).to_be_bytes().to_vec(),
                "key order = versionstamp order"
            );
        }
        for (stamp, id) in &by_stamp {
            assert_eq!(
                get(&db, &h.k(&format!("v/{id:03}"))).await,
                Some(stamp.to_vec())
            );
        }
    });
}

pub fn versionstamped_writes_are_unreadable_in_their_transaction<H: Harness>(h: &H) {
    let db = h.db();
    block_on(async {
        put_all(
            &db,
            &[h.kv("v", b"old"), h.kv("other", b"o"), h.kv("vk0", b"o")],
        )
        .await;
        let (v, vk) = (h.k("v"), h.k("vk/"));
        let t = tx(&db);
        t.atomic_op(
            &v,
            &template(b"", b""),
            MutationType::SetVersionstampedValue,
        );
        assert_eq!(
            code(t.get(&v, false).await),
            ACCESSED_UNREADABLE,
            "get of a versionstamped value"
        );
        assert_eq!(
            code(range(&t, &h.k("u"), &h.k("w"), None, false, false).await),
            ACCESSED_UNREADABLE,
            "range over a versionstamped value"
        );
        t.atomic_op(
            &template(&vk, b""),
            b"x",
            MutationType::SetVersionstampedKey,
        );
        assert_eq!(
            code(range(&t, &vk, &strinc(&vk), None, false, false).await),
            ACCESSED_UNREADABLE,
            "range that may hold the versionstamped key"
        );
        // Reads elsewhere are unaffected, and the transaction still commits.
        assert_eq!(
            t.get(&h.k("other"), false).await.unwrap(),
            Some(b"o".to_vec())
        );
        assert_eq!(
            keys(
                &range(&t, &h.k("vk0"), &h.k("vk1"), None, false, false)
                    .await
                    .unwrap()
            ),
            h.ks(&["vk0"])
        );
        let c = t.commit().await.expect("commit after unreadable reads");
        let stamp = c.versionstamp.unwrap();
        assert_eq!(get(&db, &v).await, Some(stamp.to_vec()));
        assert_eq!(
            keys(&scan_prefix(&db, &vk).await),
            vec![filled(&vk, &stamp, b"")]
        );
    });
}

pub fn reads_that_stop_before_a_versionstamped_write_succeed<H: Harness>(h: &H) {
    let db = h.db();
    block_on(async {
        put_all(
            &db,
            &[h.kv("s/a", b"1"), h.kv("s/b", b"2"), h.kv("y/a", b"3")],
        )
        .await;
        let (begin, end) = (h.k("s/"), h.k("z"));
        for stamped in ["value", "key"] {
            let t = tx(&db);
            if stamped == "value" {
                t.atomic_op(
                    &h.k("t/v"),
                    &template(b"", b""),
                    MutationType::SetVersionstampedValue,
                );
            } else {
                t.atomic_op(
                    &template(&h.k("t/"), b""),
                    b"x",
                    MutationType::SetVersionstampedKey,
                );
            }
            // FoundationDB fails a read only once it gets to the versionstamped write.
            let first = t
                .get_key(&KeySelector::first_greater_or_equal(begin.clone()), false)
                .await
                .unwrap();
            assert_eq!(first, h.k("s/a"), "{stamped}: get_key stops before it");
            assert_eq!(
                keys(
                    &range(&t, &begin, &end, Some(2), false, false)
                        .await
                        .unwrap()
                ),
                h.ks(&["s/a", "s/b"]),
                "{stamped}: a limit that stops before it"
            );
            assert_eq!(
                keys(&range(&t, &begin, &end, Some(1), true, false).await.unwrap()),
                h.ks(&["y/a"]),
                "{stamped}: a reverse limit that stops before it"
            );
            if stamped == "value" {
                // A selector that steps over the value, either way, reads through it.
                for sel in [
                    KeySelector::new(h.k("s/a"), false, 4),
                    KeySelector::new(h.k("y/a"), true, -3),
                ] {
                    assert_eq!(
                        code(t.get_key(&sel, false).await),
                        ACCESSED_UNREADABLE,
                        "a selector stepping over it: {sel:?}"
                    );
                }
            }
            for (limit, reverse) in [
                (None, false),
                (Some(3), false),
                (None, true),
                (Some(2), true),
            ] {
                assert_eq!(
                    code(range(&t, &begin, &end, limit, reverse, false).await),
                    ACCESSED_UNREADABLE,
                    "{stamped}: a read that gets there (limit {limit:?}, reverse {reverse})"
                );
            }
        }
    });
}

pub fn keys_stamped_before_the_read_version_stay_readable<H: Harness>(h: &H) {
    let db = h.db();
    block_on(async {
        let log = h.k("rlog/");
        let t = tx(&db);
        t.atomic_op(
            &template(&log, b""),
            b"old",
            MutationType::SetVersionstampedKey,
        );
        let stamp = t.commit().await.unwrap().versionstamp.unwrap();
        let old = filled(&log, &stamp, b"");
        // A later commit, so that the next read version is past the old entry's.
        put(&db, &h.k("other"), b"x").await;

        // With a read version first, the appended key can only become a stamp after
        // it: older entries stay readable.
        let t = tx(&db);
        t.get_read_version().await.unwrap();
        t.atomic_op(
            &template(&log, b""),
            b"new",
            MutationType::SetVersionstampedKey,
        );
        assert_eq!(t.get(&old, false).await.unwrap(), Some(b"old".to_vec()));
        assert_eq!(
            code(range(&t, &log, &strinc(&log), None, false, false).await),
            ACCESSED_UNREADABLE,
            "a scan that reaches past the read version"
        );

        // Without one, any stamp is possible.
        let t = tx(&db);
        t.atomic_op(
            &template(&log, b""),
            b"new",
            MutationType::SetVersionstampedKey,
        );
        assert_eq!(code(t.get(&old, false).await), ACCESSED_UNREADABLE);
    });
}

pub fn invalid_versionstamp_offset_fails_at_commit<H: Harness>(h: &H) {
    let db = h.db();
    block_on(async {
        let mut past_end = h.k("bad/");
        past_end.extend([0u8; 10]);
        let offset = (past_end.len() - 9) as u32;
        past_end.extend(offset.to_le_bytes());
        let cases: Vec<(Vec<u8>, Vec<u8>, MutationType, &str)> = vec![
            (
                past_end,
                b"x".to_vec(),
                MutationType::SetVersionstampedKey,
                "key placeholder past the end",
            ),
            (
                h.k("bad-value"),
                vec![0, 0, 0],
                MutationType::SetVersionstampedValue,
                "value shorter than 4 bytes",
            ),
            (
                h.k("bad-value"),
                [vec![0u8; 9], 0u32.to_le_bytes().to_vec()].concat(),
                MutationType::SetVersionstampedValue,
                "value placeholder longer than the value",
            ),
            (
                h.k("bad-value"),
                [vec![0u8; 12], 3u32.to_le_bytes().to_vec()].concat(),
                MutationType::SetVersionstampedValue,
                "value placeholder past the end",
            ),
        ];
        for (key, param, op, what) in cases {
            let t = tx(&db);
            t.set(&h.k("side-effect"), b"x");
            t.atomic_op(&key, &param, op);
            assert_eq!(code(t.commit().await), CLIENT_INVALID_OPERATION, "{what}");
        }
        assert_eq!(
            scan_prefix(&db, h.prefix()).await,
            vec![],
            "nothing committed"
        );
    });
}

pub fn versionstamped_key_conflicts_with_a_read_of_its_range<H: Harness>(h: &H) {
    let db = h.db();
    block_on(async {
        let head = h.k("log/");
        // A reader scans the (empty) log, a writer appends with a versionstamped key:
        // the appended key lands inside the scanned range, so the reader conflicts.
        let t1 = reader(&db).await;
        let seen = range(&t1, &head, &strinc(&head), None, false, false)
            .await
            .unwrap();
        assert!(seen.is_empty());
        let t2 = tx(&db);
        t2.atomic_op(
            &template(&head, b""),
            b"entry",
            MutationType::SetVersionstampedKey,
        );
        t2.commit().await.unwrap();
        t1.set(&h.k("marker"), b"x");
        assert_eq!(code(t1.commit().await), NOT_COMMITTED);
        // Two versionstamped appends never conflict with each other.
        let a = reader(&db).await;
        let b = reader(&db).await;
        a.atomic_op(
            &template(&head, b""),
            b"a",
            MutationType::SetVersionstampedKey,
        );
        b.atomic_op(
            &template(&head, b""),
            b"b",
            MutationType::SetVersionstampedKey,
        );
        a.commit().await.expect("append a");
        b.commit().await.expect("append b");
        let values: Vec<_> = scan_prefix(&db, &head)
            .await
            .into_iter()
            .map(|kv| kv.value)
            .collect();
        assert_eq!(
            values,
            vec![b"entry".to_vec(), b"a".to_vec(), b"b".to_vec()]
        );
    });
}

fn bump<T: Transaction>(t: &T) {
    t.atomic_op(
        METADATA_VERSION_KEY,
        &METADATA_VERSION_REQUIRED_VALUE,
        MutationType::SetVersionstampedValue,
    );
}

pub fn metadata_version_key_holds_the_last_bump_versionstamp<H: Harness>(h: &H) {
    let db = h.db();
    block_on(async {
        let t = tx(&db);
        bump(&t);
        assert_eq!(
            code(t.get(METADATA_VERSION_KEY, true).await),
            ACCESSED_UNREADABLE,
            "the bump is unreadable in its own transaction"
        );
        let first = t.commit().await.expect("a bump commits").versionstamp;
        let read = get(&db, METADATA_VERSION_KEY).await;
        assert_eq!(read.as_deref(), first.as_ref().map(|s| &s[..]));
        let t = tx(&db);
        bump(&t);
        t.set(&h.k("with-the-bump"), b"x");
        let second = t
            .commit()
            .await
            .expect("a second bump commits")
            .versionstamp;
        assert!(second > first, "bumps increase");
        assert_eq!(
            get(&db, METADATA_VERSION_KEY).await.as_deref(),
            second.as_ref().map(|s| &s[..])
        );
    });
}

pub fn metadata_version_key_accepts_only_a_versionstamp_bump<H: Harness>(h: &H) {
    let db = h.db();
    block_on(async {
        type Tx<H> = <<H as Harness>::Db as Database>::Transaction;
        type Attempt<'a, H> = (&'a str, Box<dyn Fn(&Tx<H>)>, i32);
        let attempts: Vec<Attempt<'_, H>> = vec![
            (
                "set",
                Box::new(|t| t.set(METADATA_VERSION_KEY, b"x")),
                CLIENT_INVALID_OPERATION,
            ),
            (
                "add",
                Box::new(|t| t.atomic_op(METADATA_VERSION_KEY, &[1], MutationType::Add)),
                CLIENT_INVALID_OPERATION,
            ),
            (
                "a versionstamped value with another parameter",
                Box::new(|t| {
                    t.atomic_op(
                        METADATA_VERSION_KEY,
                        &template(b"x", b""),
                        MutationType::SetVersionstampedValue,
                    )
                }),
                CLIENT_INVALID_OPERATION,
            ),
            (
                "clear",
                Box::new(|t| t.clear(METADATA_VERSION_KEY)),
                KEY_OUTSIDE_LEGAL_RANGE,
            ),
        ];
        for (what, write, expected) in attempts {
            let t = tx(&db);
            write(&t);
            t.set(&h.k("beside"), b"x");
            assert_eq!(code(t.commit().await), expected, "{what}");
        }
        assert_eq!(get(&db, &h.k("beside")).await, None, "nothing committed");
        // A versionstamped key whose template lies past `\xff` (the offset follows the
        // metadata version key) is outside the key space.
        let t = tx(&db);
        let mut template = METADATA_VERSION_KEY.to_vec();
        template.extend_from_slice(&5u32.to_le_bytes());
        t.atomic_op(&template, b"v", MutationType::SetVersionstampedKey);
        assert_eq!(code(t.commit().await), KEY_OUTSIDE_LEGAL_RANGE, "template");
        // Conflict ranges: only the key's own single-key range, and only to read. The
        // error waits for the commit, as FoundationDB's client defers it.
        for (begin, end, kind) in [
            (
                METADATA_VERSION_KEY,
                METADATA_VERSION_KEY_END,
                ConflictRangeType::Write,
            ),
            (
                METADATA_VERSION_KEY,
                METADATA_VERSION_KEY,
                ConflictRangeType::Read,
            ),
        ] {
            let t = tx(&db);
            t.add_conflict_range(begin, end, kind)
                .expect("reported later, not here");
            t.set(&h.k("beside"), b"x");
            assert_eq!(
                code(t.commit().await),
                KEY_OUTSIDE_LEGAL_RANGE,
                "{kind:?} [{begin:?}, {end:?})"
            );
        }
        assert_eq!(get(&db, &h.k("beside")).await, None, "nothing committed");
        // Its single-key range is a legal explicit read conflict range.
        let t = tx(&db);
        t.add_conflict_range(
            METADATA_VERSION_KEY,
            METADATA_VERSION_KEY_END,
            ConflictRangeType::Read,
        )
        .expect("the metadata version key's range");
        t.set(&h.k("beside"), b"x");
        t.commit().await.expect("commits");
    });
}

pub fn metadata_version_key_conflicts_only_on_non_snapshot_reads<H: Harness>(h: &H) {
    let db = h.db();
    block_on(async {
        for snapshot in [true, false] {
            let reader = tx(&db);
            let _ = reader.get(METADATA_VERSION_KEY, snapshot).await.unwrap();
            reader.set(&h.k("reader"), b"x");
            let bumper = tx(&db);
            bump(&bumper);
            bumper.commit().await.expect("the bump commits");
            let result = reader.commit().await;
            if snapshot {
                result.expect("a snapshot read of the key adds no conflict");
            } else {
                assert_eq!(code(result), NOT_COMMITTED, "a serializable read conflicts");
            }
        }
    });
}
