//! Conflict detection: which reads conflict with which concurrent writes.

use crate::harness::*;
use fdb_records::kv::code::*;
use fdb_records::kv::{
    key_after, run, strinc, ConflictRangeType, Database, FdbError, KeySelector, MutationType,
    RangeOption, StreamingMode, Transaction,
};
use futures::executor::block_on;
use futures::future::join_all;
use futures::StreamExt;

conformance!(
    point_read_conflicts_with_write_of_same_key,
    point_read_does_not_conflict_with_write_of_other_key,
    range_read_conflicts_with_phantom_insert,
    range_read_in_batches_conflicts_with_inserts_anywhere_in_the_range,
    range_read_more_flag_matches_its_conflict_range,
    range_read_does_not_conflict_with_insert_outside,
    limited_range_read_conflict_ends_after_last_key_forward,
    limited_range_read_conflict_starts_at_last_key_reverse,
    get_key_conflicts_cover_the_examined_keys,
    snapshot_reads_do_not_conflict,
    explicit_read_conflict_range_conflicts,
    explicit_write_conflict_range_makes_others_conflict,
    atomic_ops_on_same_key_both_commit,
    a_versionstamped_key_conflicts_only_as_the_key_it_becomes,
    reads_of_what_this_transaction_set_or_cleared_do_not_conflict,
    reading_an_atomically_modified_key_adds_a_read_conflict,
    blind_writes_never_conflict,
    read_only_transactions_never_fail,
    only_commits_after_the_read_version_conflict,
    concurrent_read_modify_write_is_serializable,
    concurrent_conflicting_commits_exactly_one_wins,
);

/// Commits a second transaction that applies `interfere`, then gives `t1` a write
/// (so it is not read-only) and commits it: `Ok(())` or the error code of `t1`.
async fn finish<D: Database>(
    db: &D,
    t1: &D::Transaction,
    marker: &[u8],
    interfere: impl FnOnce(&D::Transaction),
) -> Result<(), i32> {
    let t2 = tx(db);
    interfere(&t2);
    t2.commit()
        .await
        .expect("the interfering transaction commits");
    t1.set(marker, b"t1");
    t1.commit().await.map(|_| ()).map_err(|e| e.code())
}

pub fn a_versionstamped_key_conflicts_only_as_the_key_it_becomes<H: Harness>(h: &H) {
    let db = h.db();
    block_on(async {
        let prefix = h.k("log/");
        let template = || {
            let mut t = prefix.clone();
            t.extend_from_slice(&[0u8; 10]);
            t.extend_from_slice(&(prefix.len() as u32).to_le_bytes());
            t
        };
        // An entry no commit's stamp can name (version 0), and the whole log.
        let mut old_entry = prefix.clone();
        old_entry.extend_from_slice(&[0u8; 10]);
        let t1 = reader(&db).await;
        t1.get(&old_entry, false).await.unwrap();
        let r = finish(&db, &t1, &h.k("marker"), |t2| {
            t2.atomic_op(&template(), b"v", MutationType::SetVersionstampedKey)
        })
        .await;
        assert_eq!(r, Ok(()), "a point read of another entry does not conflict");

        let t1 = reader(&db).await;
        range(&t1, &prefix, &strinc(&prefix), None, false, false)
            .await
            .unwrap();
        let r = finish(&db, &t1, &h.k("marker"), |t2| {
            t2.atomic_op(&template(), b"v", MutationType::SetVersionstampedKey)
        })
        .await;
        assert_eq!(r, Err(NOT_COMMITTED), "a read of the whole log does");
    });
}

pub fn reads_of_what_this_transaction_set_or_cleared_do_not_conflict<H: Harness>(h: &H) {
    let db = h.db();
    block_on(async {
        let m = h.k("marker");
        let (begin, end) = (h.k("q/"), h.k("q0"));
        // A range read of a range this transaction cleared.
        let t1 = reader(&db).await;
        t1.clear_range(&begin, &end);
        range(&t1, &begin, &end, None, false, false).await.unwrap();
        let r = finish(&db, &t1, &m, |t2| t2.set(&h.k("q/x"), b"new")).await;
        assert_eq!(r, Ok(()), "cleared, then read: nothing came from storage");

        // A range read over a key this transaction set: only that key is exempt.
        for (other, expected, what) in [
            ("q/k", Ok(()), "the key it set"),
            ("q/j", Err(NOT_COMMITTED), "another key of the range"),
        ] {
            let t1 = reader(&db).await;
            t1.set(&h.k("q/k"), b"mine");
            range(&t1, &begin, &end, None, false, false).await.unwrap();
            let r = finish(&db, &t1, &m, |t2| t2.set(&h.k(other), b"theirs")).await;
            assert_eq!(r, expected, "range read, then a write of {what}");
        }

        // An explicit read-conflict range, and a single key, over what it set.
        let t1 = reader(&db).await;
        t1.set(&h.k("q/k"), b"mine");
        t1.add_conflict_range(&begin, &end, ConflictRangeType::Read)
            .unwrap();
        let r = finish(&db, &t1, &m, |t2| t2.set(&h.k("q/k"), b"theirs")).await;
        assert_eq!(r, Ok(()), "explicit range over the key it set");
        let t1 = reader(&db).await;
        t1.set(&h.k("q/k"), b"mine");
        t1.add_conflict_range(
            &h.k("q/k"),
            &key_after(&h.k("q/k")),
            ConflictRangeType::Read,
        )
        .unwrap();
        let r = finish(&db, &t1, &m, |t2| t2.set(&h.k("q/k"), b"theirs")).await;
        assert_eq!(r, Ok(()), "explicit single key it set");

        // A key under an atomic op still depends on what is stored.
        let t1 = reader(&db).await;
        t1.atomic_op(&h.k("q/n"), &le(1, 8), MutationType::Add);
        range(&t1, &begin, &end, None, false, false).await.unwrap();
        let r = finish(&db, &t1, &m, |t2| t2.set(&h.k("q/n"), &le(5, 8))).await;
        assert_eq!(
            r,
            Err(NOT_COMMITTED),
            "atomic op, then a range read over it"
        );
    });
}

pub fn point_read_conflicts_with_write_of_same_key<H: Harness>(h: &H) {
    let db = h.db();
    block_on(async {
        let (a, m) = (h.k("a"), h.k("marker"));
        put(&db, &a, b"1").await;

        let t1 = reader(&db).await;
        assert_eq!(t1.get(&a, false).await.unwrap(), Some(b"1".to_vec()));
        let r = finish(&db, &t1, &m, |t2| t2.set(&a, b"2")).await;
        assert_eq!(r, Err(NOT_COMMITTED), "read a, a overwritten");
        assert_eq!(get(&db, &m).await, None, "a failed commit applies nothing");
        assert_eq!(get(&db, &a).await, Some(b"2".to_vec()));

        // Reading a key that does not exist conflicts with its creation.
        let missing = h.k("missing");
        let t1 = reader(&db).await;
        assert_eq!(t1.get(&missing, false).await.unwrap(), None);
        let r = finish(&db, &t1, &m, |t2| t2.set(&missing, b"x")).await;
        assert_eq!(r, Err(NOT_COMMITTED), "read of a missing key, key created");

        // A clear is a write too.
        let t1 = reader(&db).await;
        t1.get(&a, false).await.unwrap();
        let r = finish(&db, &t1, &m, |t2| t2.clear(&a)).await;
        assert_eq!(r, Err(NOT_COMMITTED), "read a, a cleared");

        // So is a clear_range covering the key, and an atomic op on it.
        let t1 = reader(&db).await;
        t1.get(&a, false).await.unwrap();
        let r = finish(&db, &t1, &m, |t2| t2.clear_range(&h.k("0"), &h.k("b"))).await;
        assert_eq!(r, Err(NOT_COMMITTED), "read a, range around a cleared");

        let t1 = reader(&db).await;
        t1.get(&a, false).await.unwrap();
        let r = finish(&db, &t1, &m, |t2| {
            t2.atomic_op(&a, &le(1, 8), MutationType::Add)
        })
        .await;
        assert_eq!(r, Err(NOT_COMMITTED), "read a, atomic add on a");
        assert_eq!(get(&db, &m).await, None);
    });
}

pub fn point_read_does_not_conflict_with_write_of_other_key<H: Harness>(h: &H) {
    let db = h.db();
    block_on(async {
        let (a, b, m) = (h.k("a"), h.k("b"), h.k("marker"));
        put_all(&db, &[h.kv("a", b"1"), h.kv("b", b"1")]).await;
        let t1 = reader(&db).await;
        t1.get(&a, false).await.unwrap();
        let r = finish(&db, &t1, &m, |t2| {
            t2.set(&b, b"2");
            t2.set(&key_after(&a), b"2");
            t2.clear_range(&h.k("a\x01"), &h.k("c"));
        })
        .await;
        assert_eq!(r, Ok(()), "read a; b, a\\x00 and [a\\x01, c) written");
        assert_eq!(get(&db, &m).await, Some(b"t1".to_vec()));
        assert_eq!(get(&db, &a).await, Some(b"1".to_vec()));
    });
}

pub fn range_read_conflicts_with_phantom_insert<H: Harness>(h: &H) {
    let db = h.db();
    block_on(async {
        let m = h.k("marker");
        put_all(&db, &[h.kv("r/b", b"1"), h.kv("r/d", b"1")]).await;
        let (begin, end) = (h.k("r/a"), h.k("r/z"));

        for (new_key, what) in [
            ("r/c", "insert between existing keys"),
            ("r/a", "insert at the begin key"),
            ("r/yz", "insert just before the end key"),
        ] {
            let t1 = reader(&db).await;
            let got = range(&t1, &begin, &end, None, false, false).await.unwrap();
            assert_eq!(keys(&got), h.ks(&["r/b", "r/d"]));
            let r = finish(&db, &t1, &m, |t2| t2.set(&h.k(new_key), b"new")).await;
            assert_eq!(r, Err(NOT_COMMITTED), "{what}");
            let t2 = tx(&db);
            t2.clear(&h.k(new_key));
            t2.commit().await.unwrap();
        }

        // Clearing a key that never existed inside the range is a write there too.
        let t1 = reader(&db).await;
        range(&t1, &begin, &end, None, false, false).await.unwrap();
        let r = finish(&db, &t1, &m, |t2| t2.clear(&h.k("r/q"))).await;
        assert_eq!(
            r,
            Err(NOT_COMMITTED),
            "clear of a missing key inside the range"
        );

        // Same for a reverse read.
        let t1 = reader(&db).await;
        let got = range(&t1, &begin, &end, None, true, false).await.unwrap();
        assert_eq!(keys(&got), h.ks(&["r/d", "r/b"]));
        let r = finish(&db, &t1, &m, |t2| t2.set(&h.k("r/e"), b"new")).await;
        assert_eq!(r, Err(NOT_COMMITTED), "insert into a reverse-read range");
        let t2 = tx(&db);
        t2.clear(&h.k("r/e"));
        t2.commit().await.unwrap();

        assert_eq!(get(&db, &m).await, None);
    });
}

pub fn range_read_in_batches_conflicts_with_inserts_anywhere_in_the_range<H: Harness>(h: &H) {
    let db = h.db();
    block_on(async {
        let m = h.k("marker");
        put_all(&db, &[h.kv("r/b", b"1"), h.kv("r/d", b"1")]).await;
        let (begin, end) = (h.k("r/a"), h.k("r/z"));
        // A read consumed batch by batch (tiny batches, so every batch is cut by its
        // byte budget) must cover the gaps between batches and, once a batch reports
        // `more == false`, the rest of the range up to its end.
        for (new_key, reverse) in [("r/c", false), ("r/y", false), ("r/c", true), ("r/a", true)] {
            let t1 = reader(&db).await;
            let mut r = RangeOption::from_keys(&begin, &end).with_target_bytes(1);
            r.reverse = reverse;
            let mut batches = t1.get_ranges(r, false);
            let mut got = Vec::new();
            while let Some(batch) = batches.next().await {
                got.extend(batch.unwrap().key_values);
            }
            drop(batches);
            assert_eq!(got.len(), 2);
            let r = finish(&db, &t1, &m, |t2| t2.set(&h.k(new_key), b"new")).await;
            assert_eq!(
                r,
                Err(NOT_COMMITTED),
                "insert {new_key} into a range read in batches (reverse {reverse})"
            );
            let t2 = tx(&db);
            t2.clear(&h.k(new_key));
            t2.commit().await.unwrap();
        }
        assert_eq!(get(&db, &m).await, None);
    });
}

pub fn range_read_more_flag_matches_its_conflict_range<H: Harness>(h: &H) {
    // A batch returns the range's last row with its row limit exactly used up.
    // FoundationDB reports `more == true` (the limit is reached, whether or not a row
    // follows). Forward, with the usual end selector, the read then protects only up to
    // its last row, so an insert after it does not conflict; reverse, with the usual
    // begin selector, FoundationDB's RYW protects the whole range, so it does.
    let db = h.db();
    block_on(async {
        for (case, reverse) in [(0, false), (1, true)] {
            let p = format!("M{case}/");
            put_all(
                &db,
                &[h.kv(&format!("{p}a"), b"1"), h.kv(&format!("{p}b"), b"1")],
            )
            .await;
            let t1 = reader(&db).await;
            let mut r = RangeOption::from_keys(&h.k(&p), &strinc(&h.k(&p)))
                .with_limit(2)
                .with_mode(StreamingMode::Exact);
            r.reverse = reverse;
            let batch = t1.get_range(&r, 1, false).await.unwrap();
            assert_eq!(batch.key_values.len(), 2);
            // Inside the range, beyond the last returned row.
            let insert = h.k(&format!("{p}{}", if reverse { "0" } else { "c" }));
            assert!(batch.more, "reverse {reverse}: the limit was reached");
            let r = finish(&db, &t1, &h.k("marker"), |t2| t2.set(&insert, b"new")).await;
            let expected = if reverse { Err(NOT_COMMITTED) } else { Ok(()) };
            assert_eq!(r, expected, "reverse {reverse}");
        }
    });
}

pub fn range_read_does_not_conflict_with_insert_outside<H: Harness>(h: &H) {
    let db = h.db();
    block_on(async {
        let m = h.k("marker");
        put_all(&db, &[h.kv("r/b", b"1"), h.kv("r/d", b"1")]).await;
        let (begin, end) = (h.k("r/a"), h.k("r/z"));
        for (new_key, what) in [
            ("r/", "before the begin key"),
            ("r/Z", "before the begin key"),
            ("r/z", "at the (exclusive) end key"),
            ("r/zz", "after the end key"),
        ] {
            for reverse in [false, true] {
                let t1 = reader(&db).await;
                range(&t1, &begin, &end, None, reverse, false)
                    .await
                    .unwrap();
                let r = finish(&db, &t1, &m, |t2| t2.set(&h.k(new_key), b"new")).await;
                assert_eq!(r, Ok(()), "insert {what} (reverse read: {reverse})");
            }
        }
        assert_eq!(get(&db, &m).await, Some(b"t1".to_vec()));
    });
}

/// Seeds `case/a..e`, reads `case/` with limit 2 (forward or reverse), lets another
/// transaction write `case/<write>`, and returns the reader's commit outcome.
async fn limited_read_case<H: Harness>(
    h: &H,
    case: usize,
    reverse: bool,
    write: &str,
) -> Result<(), i32> {
    let db = h.db();
    let p = format!("L{case}/");
    let seed: Vec<_> = ["a", "b", "c", "d", "e"]
        .iter()
        .map(|s| h.kv(&format!("{p}{s}"), b"v"))
        .collect();
    put_all(&db, &seed).await;
    let t1 = reader(&db).await;
    let (begin, end) = (h.k(&p), strinc(&h.k(&p)));
    let got = range(&t1, &begin, &end, Some(2), reverse, false)
        .await
        .unwrap();
    let expected = if reverse { ["e", "d"] } else { ["a", "b"] };
    let expected: Vec<_> = expected.iter().map(|s| h.k(&format!("{p}{s}"))).collect();
    assert_eq!(keys(&got), expected, "limit 2, reverse {reverse}");
    finish(&db, &t1, &h.k("marker"), |t2| {
        t2.set(&h.k(&format!("{p}{write}")), b"w")
    })
    .await
}

pub fn limited_range_read_conflict_ends_after_last_key_forward<H: Harness>(h: &H) {
    block_on(async {
        // Returned a, b: the read covered [begin, b\x00).
        let cases = [
            ("c", Ok(()), "existing key after the last returned one"),
            (
                "b\x00",
                Ok(()),
                "first possible key after the last returned one",
            ),
            ("bb", Ok(()), "new key after the last returned one"),
            ("e", Ok(()), "last key of the range"),
            ("b", Err(NOT_COMMITTED), "the last returned key"),
            (
                "ab",
                Err(NOT_COMMITTED),
                "new key before the last returned one",
            ),
            ("a", Err(NOT_COMMITTED), "the first returned key"),
            ("", Err(NOT_COMMITTED), "new key at the range's begin"),
        ];
        for (i, (write, expected, what)) in cases.into_iter().enumerate() {
            let r = limited_read_case(h, i, false, write).await;
            assert_eq!(r, expected, "forward limit 2, write {what} ({write:?})");
        }
    });
}

pub fn limited_range_read_conflict_starts_at_last_key_reverse<H: Harness>(h: &H) {
    block_on(async {
        // With the usual begin selector ("first key >= begin") FoundationDB's RYW
        // protects the whole range of a limited reverse read: returned e, d, yet a write
        // anywhere in the range conflicts.
        for (i, write) in ["a", "c", "cz", "d", "dd", "e", "z"]
            .into_iter()
            .enumerate()
        {
            let r = limited_read_case(h, 100 + i, true, write).await;
            assert_eq!(r, Err(NOT_COMMITTED), "reverse limit 2, write {write:?}");
        }
        // With a begin selector of offset <= 0 ("last key < a\0", which is a) it
        // protects only [d, end).
        let db = h.db();
        let cases = [
            ("c", Ok(()), "existing key before the last returned one"),
            ("cz", Ok(()), "new key before the last returned one"),
            ("d", Err(NOT_COMMITTED), "the last returned key"),
            (
                "dd",
                Err(NOT_COMMITTED),
                "new key between the returned ones",
            ),
            ("e", Err(NOT_COMMITTED), "the first returned key"),
            ("z", Err(NOT_COMMITTED), "new key after every returned one"),
        ];
        for (i, (write, expected, what)) in cases.into_iter().enumerate() {
            let p = format!("L{}/", 200 + i);
            let seed: Vec<_> = ["a", "b", "c", "d", "e"]
                .iter()
                .map(|s| h.kv(&format!("{p}{s}"), b"v"))
                .collect();
            put_all(&db, &seed).await;
            let t1 = reader(&db).await;
            let mut r = RangeOption::from_keys(&h.k(&p), &strinc(&h.k(&p))).with_limit(2);
            r.begin = KeySelector::last_less_than(h.k(&format!("{p}a\x00")));
            r.reverse = true;
            let got = t1.get_range_all(r, false).await.unwrap();
            assert_eq!(keys(&got), h.ks(&[&format!("{p}e"), &format!("{p}d")]));
            let r = finish(&db, &t1, &h.k("marker"), |t2| {
                t2.set(&h.k(&format!("{p}{write}")), b"w")
            })
            .await;
            assert_eq!(
                r, expected,
                "reverse limit 2 from an offset-0 begin, write {what}"
            );
        }
    });
}

pub fn get_key_conflicts_cover_the_examined_keys<H: Harness>(h: &H) {
    let db = h.db();
    block_on(async {
        let m = h.k("marker");
        put_all(
            &db,
            &[h.kv("s/a", b"1"), h.kv("s/c", b"1"), h.kv("s/e", b"1")],
        )
        .await;
        // first_greater_or_equal(s/b) -> s/c examined [s/b, s/c].
        let cases = [
            (
                KeySelector::first_greater_or_equal(h.k("s/b")),
                "s/c",
                "s/bb",
                Err(NOT_COMMITTED),
            ),
            (
                KeySelector::first_greater_or_equal(h.k("s/b")),
                "s/c",
                "s/c",
                Err(NOT_COMMITTED),
            ),
            (
                KeySelector::first_greater_or_equal(h.k("s/b")),
                "s/c",
                "s/d",
                Ok(()),
            ),
            (
                KeySelector::first_greater_or_equal(h.k("s/b")),
                "s/c",
                "s/a",
                Ok(()),
            ),
            // last_less_than(s/d) -> s/c examined [s/c, s/d).
            (
                KeySelector::last_less_than(h.k("s/d")),
                "s/c",
                "s/cc",
                Err(NOT_COMMITTED),
            ),
            (
                KeySelector::last_less_than(h.k("s/d")),
                "s/c",
                "s/d",
                Ok(()),
            ),
            (
                KeySelector::last_less_than(h.k("s/d")),
                "s/c",
                "s/b",
                Ok(()),
            ),
        ];
        for (i, (sel, resolved, write, expected)) in cases.into_iter().enumerate() {
            let t1 = reader(&db).await;
            assert_eq!(
                t1.get_key(&sel, false).await.unwrap(),
                h.k(resolved),
                "{sel:?}"
            );
            let w = h.k(write);
            let r = finish(&db, &t1, &m, |t2| t2.set(&w, b"x")).await;
            assert_eq!(r, expected, "case {i}: {sel:?} then a write of {write}");
            // Undo the write so every case sees the same data.
            let t2 = tx(&db);
            if ["s/a", "s/c", "s/e"].contains(&write) {
                t2.set(&w, b"1");
            } else {
                t2.clear(&w);
            }
            t2.commit().await.unwrap();
        }
        // A snapshot get_key adds nothing.
        let t1 = reader(&db).await;
        let sel = KeySelector::first_greater_or_equal(h.k("s/b"));
        assert_eq!(t1.get_key(&sel, true).await.unwrap(), h.k("s/c"));
        let r = finish(&db, &t1, &m, |t2| t2.set(&h.k("s/bb"), b"x")).await;
        assert_eq!(r, Ok(()), "snapshot get_key");
    });
}

pub fn snapshot_reads_do_not_conflict<H: Harness>(h: &H) {
    let db = h.db();
    block_on(async {
        let (a, m) = (h.k("a"), h.k("marker"));
        put_all(&db, &[h.kv("a", b"1"), h.kv("r/b", b"1")]).await;
        let t1 = reader(&db).await;
        assert_eq!(t1.get(&a, true).await.unwrap(), Some(b"1".to_vec()));
        assert_eq!(t1.get(&h.k("missing"), true).await.unwrap(), None);
        let got = range(&t1, &h.k("r/"), &h.k("r0"), None, false, true)
            .await
            .unwrap();
        assert_eq!(keys(&got), h.ks(&["r/b"]));
        let got = range(&t1, &h.k("r/"), &h.k("r0"), Some(1), true, true)
            .await
            .unwrap();
        assert_eq!(keys(&got), h.ks(&["r/b"]));
        let r = finish(&db, &t1, &m, |t2| {
            t2.set(&a, b"2");
            t2.set(&h.k("missing"), b"2");
            t2.set(&h.k("r/c"), b"2");
            t2.clear(&h.k("r/b"));
        })
        .await;
        assert_eq!(r, Ok(()), "snapshot reads add no read conflicts");
        assert_eq!(get(&db, &m).await, Some(b"t1".to_vec()));
    });
}

pub fn explicit_read_conflict_range_conflicts<H: Harness>(h: &H) {
    let db = h.db();
    block_on(async {
        let m = h.k("marker");
        let (b, d) = (h.k("x/b"), h.k("x/d"));

        let t1 = reader(&db).await;
        t1.add_conflict_range(&b, &d, ConflictRangeType::Read)
            .unwrap();
        let r = finish(&db, &t1, &m, |t2| t2.set(&h.k("x/c"), b"1")).await;
        assert_eq!(r, Err(NOT_COMMITTED), "write inside [b, d)");

        let t1 = reader(&db).await;
        t1.add_conflict_range(&b, &d, ConflictRangeType::Read)
            .unwrap();
        let r = finish(&db, &t1, &m, |t2| t2.set(&b, b"1")).await;
        assert_eq!(r, Err(NOT_COMMITTED), "write at the range's begin");

        let t1 = reader(&db).await;
        t1.add_conflict_range(&b, &d, ConflictRangeType::Read)
            .unwrap();
        let r = finish(&db, &t1, &m, |t2| {
            t2.set(&d, b"1");
            t2.set(&h.k("x/a"), b"1");
        })
        .await;
        assert_eq!(r, Ok(()), "writes outside [b, d)");

        // A snapshot read plus an explicit conflict on one key: conflicts only there.
        put_all(&db, &[h.kv("o/1", b"p"), h.kv("o/2", b"p")]).await;
        let t1 = reader(&db).await;
        let all = range(&t1, &h.k("o/"), &h.k("o0"), None, false, true)
            .await
            .unwrap();
        assert_eq!(all.len(), 2);
        let one = h.k("o/1");
        t1.add_conflict_range(&one, &key_after(&one), ConflictRangeType::Read)
            .unwrap();
        let r = finish(&db, &t1, &m, |t2| t2.set(&h.k("o/3"), b"p")).await;
        assert_eq!(r, Ok(()), "insert next to the explicitly conflicted key");
        let t1 = reader(&db).await;
        t1.add_conflict_range(&one, &key_after(&one), ConflictRangeType::Read)
            .unwrap();
        let r = finish(&db, &t1, &m, |t2| t2.set(&one, b"q")).await;
        assert_eq!(
            r,
            Err(NOT_COMMITTED),
            "write of the explicitly conflicted key"
        );
    });
}

pub fn explicit_write_conflict_range_makes_others_conflict<H: Harness>(h: &H) {
    let db = h.db();
    block_on(async {
        let (a, m) = (h.k("a"), h.k("marker"));
        put(&db, &a, b"1").await;

        let t1 = reader(&db).await;
        t1.get(&a, false).await.unwrap();
        let r = finish(&db, &t1, &m, |t2| {
            t2.add_conflict_range(&a, &key_after(&a), ConflictRangeType::Write)
                .unwrap();
            t2.set(&h.k("unrelated"), b"1");
        })
        .await;
        assert_eq!(
            r,
            Err(NOT_COMMITTED),
            "a write-conflict range on a key read"
        );
        assert_eq!(
            get(&db, &a).await,
            Some(b"1".to_vec()),
            "no data written at a"
        );
        assert_eq!(get(&db, &h.k("unrelated")).await, Some(b"1".to_vec()));

        // A write-conflict range over a range someone read.
        let t1 = reader(&db).await;
        range(&t1, &h.k("w/"), &h.k("w0"), None, false, false)
            .await
            .unwrap();
        let r = finish(&db, &t1, &m, |t2| {
            t2.add_conflict_range(&h.k("w/m"), &h.k("w/n"), ConflictRangeType::Write)
                .unwrap();
            t2.set(&h.k("unrelated"), b"2");
        })
        .await;
        assert_eq!(
            r,
            Err(NOT_COMMITTED),
            "write-conflict range inside a range read"
        );
        assert_eq!(scan(&db, &h.k("w/"), &h.k("w0")).await, vec![]);
    });
}

pub fn atomic_ops_on_same_key_both_commit<H: Harness>(h: &H) {
    let db = h.db();
    block_on(async {
        let (c, f, x) = (h.k("counter"), h.k("flags"), h.k("max"));
        put(&db, &c, &le(100, 8)).await;
        let t1 = reader(&db).await;
        let t2 = reader(&db).await;
        t1.atomic_op(&c, &le(1, 8), MutationType::Add);
        t1.atomic_op(&f, &[0x01], MutationType::BitOr);
        t1.atomic_op(&x, &le(7, 8), MutationType::Max);
        t2.atomic_op(&c, &le(10, 8), MutationType::Add);
        t2.atomic_op(&f, &[0x02], MutationType::BitOr);
        t2.atomic_op(&x, &le(5, 8), MutationType::Max);
        let c1 = t1.commit().await.expect("first atomic transaction commits");
        let c2 = t2
            .commit()
            .await
            .expect("second atomic transaction commits too");
        assert!(c2.version > c1.version);
        assert_eq!(get(&db, &c).await, Some(le(111, 8)));
        assert_eq!(get(&db, &f).await, Some(vec![0x03]));
        assert_eq!(get(&db, &x).await, Some(le(7, 8)));
    });
}

pub fn reading_an_atomically_modified_key_adds_a_read_conflict<H: Harness>(h: &H) {
    let db = h.db();
    block_on(async {
        let (c, m) = (h.k("counter"), h.k("marker"));
        put(&db, &c, &le(5, 8)).await;

        let t1 = reader(&db).await;
        t1.atomic_op(&c, &le(1, 8), MutationType::Add);
        assert_eq!(t1.get(&c, false).await.unwrap(), Some(le(6, 8)));
        let r = finish(&db, &t1, &m, |t2| t2.set(&c, &le(100, 8))).await;
        assert_eq!(r, Err(NOT_COMMITTED), "read of a key modified atomically");
        assert_eq!(get(&db, &c).await, Some(le(100, 8)));

        // Without the read (or with a snapshot read) the atomic op does not conflict
        // and applies to the value current at commit.
        let t1 = reader(&db).await;
        t1.atomic_op(&c, &le(1, 8), MutationType::Add);
        assert_eq!(t1.get(&c, true).await.unwrap(), Some(le(101, 8)));
        let r = finish(&db, &t1, &m, |t2| t2.set(&c, &le(200, 8))).await;
        assert_eq!(r, Ok(()), "snapshot read of an atomically modified key");
        assert_eq!(get(&db, &c).await, Some(le(201, 8)));
    });
}

pub fn blind_writes_never_conflict<H: Harness>(h: &H) {
    let db = h.db();
    block_on(async {
        let (a, b) = (h.k("a"), h.k("b"));
        put_all(&db, &[h.kv("a", b"0"), h.kv("b", b"0")]).await;
        let t1 = reader(&db).await;
        let t2 = reader(&db).await;
        t1.set(&a, b"t1");
        t1.clear(&b);
        t1.clear_range(&h.k("r/"), &h.k("r0"));
        t2.set(&a, b"t2");
        t2.set(&b, b"t2");
        t2.set(&h.k("r/x"), b"t2");
        // t2 commits first; t1 (created first) commits last and wins.
        let c2 = t2.commit().await.expect("blind writes commit");
        let c1 = t1.commit().await.expect("blind writes never conflict");
        assert!(c1.version > c2.version);
        assert_eq!(get(&db, &a).await, Some(b"t1".to_vec()));
        assert_eq!(get(&db, &b).await, None);
        assert_eq!(get(&db, &h.k("r/x")).await, None);

        // And the other way round.
        let t1 = reader(&db).await;
        let t2 = reader(&db).await;
        t1.set(&a, b"one");
        t2.set(&a, b"two");
        t1.commit().await.expect("blind write commits");
        t2.commit().await.expect("blind write commits");
        assert_eq!(get(&db, &a).await, Some(b"two".to_vec()));
    });
}

pub fn read_only_transactions_never_fail<H: Harness>(h: &H) {
    let db = h.db();
    block_on(async {
        let a = h.k("a");
        put_all(&db, &[h.kv("a", b"1"), h.kv("r/b", b"1")]).await;
        let t1 = reader(&db).await;
        t1.get(&a, false).await.unwrap();
        range(&t1, &h.k("r/"), &h.k("r0"), None, false, false)
            .await
            .unwrap();
        t1.add_conflict_range(&h.k("x"), &h.k("y"), ConflictRangeType::Read)
            .unwrap();
        let t2 = tx(&db);
        t2.set(&a, b"2");
        t2.set(&h.k("r/c"), b"2");
        t2.set(&h.k("x1"), b"2");
        t2.commit().await.unwrap();
        let c = t1
            .commit()
            .await
            .expect("a read-only transaction always commits");
        assert_eq!(c.version, -1, "read-only commit reports version -1");
        assert_eq!(c.versionstamp, None, "read-only commit has no versionstamp");
    });
}

pub fn only_commits_after_the_read_version_conflict<H: Harness>(h: &H) {
    let db = h.db();
    block_on(async {
        let (a, m) = (h.k("a"), h.k("marker"));
        // A write committed before the reader's read version does not conflict.
        put(&db, &a, b"1").await;
        let t1 = reader(&db).await;
        assert_eq!(t1.get(&a, false).await.unwrap(), Some(b"1".to_vec()));
        t1.set(&m, b"1");
        t1.commit().await.expect("no write after the read version");

        // A write committed after the read version conflicts even though the read
        // happened after that commit: reads are at the read version.
        let t1 = reader(&db).await;
        put(&db, &a, b"2").await;
        assert_eq!(
            t1.get(&a, false).await.unwrap(),
            Some(b"1".to_vec()),
            "reads see the snapshot at the read version"
        );
        t1.set(&m, b"2");
        assert_eq!(code(t1.commit().await), NOT_COMMITTED);
        assert_eq!(get(&db, &m).await, Some(b"1".to_vec()));

        // The same transaction after reset gets a fresh read version and commits.
        t1.reset();
        assert_eq!(t1.get(&a, false).await.unwrap(), Some(b"2".to_vec()));
        t1.set(&m, b"3");
        t1.commit().await.expect("fresh read version after reset");
        assert_eq!(get(&db, &m).await, Some(b"3".to_vec()));
    });
}

pub fn concurrent_read_modify_write_is_serializable<H: Harness>(h: &H) {
    const THREADS: usize = 4;
    const PER_THREAD: usize = 6;
    let (counter, atomic) = (h.k("counter"), h.k("atomic"));
    let attempts: Vec<(u32, u32)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                let db = h.db();
                let (counter, atomic) = (&counter, &atomic);
                s.spawn(move || {
                    block_on(join_all((0..PER_THREAD).map(|_| {
                        let db = db.clone();
                        async move {
                            let rmw = run(&db, |t, _| async move {
                                let v = t.get(counter, false).await?.map_or(0, |v| le_i64(&v));
                                t.set(counter, &le(v + 1, 8));
                                Ok::<_, FdbError>(())
                            })
                            .await
                            .expect("read-modify-write commits eventually");
                            let add = run(&db, |t, _| async move {
                                t.atomic_op(atomic, &le(1, 8), MutationType::Add);
                                Ok::<_, FdbError>(())
                            })
                            .await
                            .expect("atomic add commits");
                            (rmw.attempts, add.attempts)
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
    let total = (THREADS * PER_THREAD) as i64;
    let db = h.db();
    block_on(async {
        assert_eq!(
            get(&db, &counter).await.map(|v| le_i64(&v)),
            Some(total),
            "every read-modify-write counted exactly once"
        );
        assert_eq!(get(&db, &atomic).await.map(|v| le_i64(&v)), Some(total));
    });
    assert!(
        attempts.iter().all(|&(_, add)| add == 1),
        "atomic-only transactions never conflict: {attempts:?}"
    );
}

pub fn concurrent_conflicting_commits_exactly_one_wins<H: Harness>(h: &H) {
    const THREADS: usize = 4;
    const PER_THREAD: usize = 4;
    let db = h.db();
    for round in 0..3 {
        let k = h.k(&format!("hot/{round}"));
        block_on(put(&db, &k, b"0"));
        // Every transaction reads the key before any of them commits, then all commit
        // at once (same thread via join_all, and across threads): exactly one wins.
        let barrier = std::sync::Barrier::new(THREADS);
        let outcomes: Vec<i32> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..THREADS)
                .map(|thread| {
                    let db = h.db();
                    let (k, barrier) = (&k, &barrier);
                    s.spawn(move || {
                        block_on(async {
                            let mut txs = Vec::new();
                            for i in 0..PER_THREAD {
                                let t = reader(&db).await;
                                assert_eq!(t.get(k, false).await.unwrap(), Some(b"0".to_vec()));
                                t.set(k, format!("{thread}/{i}").as_bytes());
                                txs.push(t);
                            }
                            barrier.wait();
                            let results = join_all(txs.iter().map(|t| t.commit())).await;
                            results.iter().map(outcome).collect::<Vec<_>>()
                        })
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("worker thread"))
                .collect()
        });
        let winners = outcomes.iter().filter(|&&c| c == 0).count();
        assert_eq!(winners, 1, "round {round}: outcomes {outcomes:?}");
        assert!(
            outcomes.iter().all(|&c| c == 0 || c == NOT_COMMITTED),
            "losers fail with not_committed: {outcomes:?}"
        );
        let value = block_on(get(&db, &k)).expect("written");
        assert_ne!(value, b"0".to_vec(), "the winner's write is visible");
    }
}
