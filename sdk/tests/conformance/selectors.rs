//! Key selectors: `get_key` and selector-bounded range reads.

use crate::harness::*;
use fdb_records::kv::{KeySelector, KeyValue, RangeBatch, RangeOption, Transaction};
use futures::executor::block_on;

conformance!(
    get_key_resolves_every_selector_form,
    get_range_with_selector_bounds,
    selectors_clamp_to_the_keyspace_boundaries,
    range_batches_hold_the_rows_of_get_range,
);

type Sel = KeySelector;

async fn seed<H: Harness>(h: &H, db: &H::Db) {
    let pairs: Vec<_> = ["a", "b", "c", "d", "e"]
        .iter()
        .map(|s| h.kv(&format!("s/{s}"), s.as_bytes()))
        .collect();
    put_all(db, &pairs).await;
}

pub fn get_key_resolves_every_selector_form<H: Harness>(h: &H) {
    let db = h.db();
    block_on(async {
        seed(h, &db).await;
        let k = |s: &str| h.k(&format!("s/{s}"));
        let cases: Vec<(Sel, &str)> = vec![
            (Sel::first_greater_or_equal(k("b")), "b"),
            (Sel::first_greater_or_equal(k("bb")), "c"),
            (Sel::first_greater_than(k("b")), "c"),
            (Sel::first_greater_than(k("bb")), "c"),
            (Sel::last_less_than(k("b")), "a"),
            (Sel::last_less_than(k("bb")), "b"),
            (Sel::last_less_or_equal(k("b")), "b"),
            (Sel::last_less_or_equal(k("bb")), "b"),
            // Offsets greater than one and below zero.
            (Sel::first_greater_or_equal(k("a")).offset_by(2), "c"),
            (Sel::first_greater_than(k("a")).offset_by(2), "d"),
            (Sel::last_less_or_equal(k("a")).offset_by(3), "d"),
            (Sel::last_less_or_equal(k("e")).offset_by(-2), "c"),
            (Sel::last_less_than(k("e")).offset_by(-1), "c"),
            (Sel::new(k("c"), false, -1), "a"),
            (Sel::new(k("cc"), true, -2), "a"),
            (Sel::new(k("c"), true, 2), "e"),
        ];
        let t = tx(&db);
        for snapshot in [false, true] {
            for (sel, expected) in &cases {
                assert_eq!(
                    t.get_key(sel, snapshot).await.unwrap(),
                    k(expected),
                    "{sel:?} (snapshot {snapshot})"
                );
            }
        }
        // Selectors see the transaction's own writes.
        t.set(&k("bb"), b"new");
        t.clear(&k("c"));
        let ryw: Vec<(Sel, &str)> = vec![
            (Sel::first_greater_than(k("b")), "bb"),
            (Sel::first_greater_than(k("bb")), "d"),
            (Sel::first_greater_or_equal(k("c")), "d"),
            (Sel::last_less_than(k("d")), "bb"),
            (Sel::last_less_or_equal(k("c")), "bb"),
            (Sel::first_greater_or_equal(k("a")).offset_by(3), "d"),
            (Sel::last_less_or_equal(k("e")).offset_by(-2), "bb"),
        ];
        for (sel, expected) in &ryw {
            assert_eq!(
                t.get_key(sel, false).await.unwrap(),
                k(expected),
                "{sel:?} after own writes"
            );
        }
    });
}

pub fn get_range_with_selector_bounds<H: Harness>(h: &H) {
    let db = h.db();
    block_on(async {
        seed(h, &db).await;
        let k = |s: &str| h.k(&format!("s/{s}"));
        let ks = |v: &[&str]| v.iter().map(|s| k(s)).collect::<Vec<_>>();
        let t = tx(&db);
        let read = |r: RangeOption| t.get_range_all(r, false);
        let r = RangeOption::from_selectors(
            Sel::first_greater_than(k("a")),
            Sel::last_less_or_equal(k("d")),
        );
        assert_eq!(keys(&read(r).await.unwrap()), ks(&["b", "c"]));
        let r = RangeOption::from_selectors(
            Sel::last_less_than(k("c")),
            Sel::first_greater_than(k("d")),
        );
        assert_eq!(keys(&read(r.clone()).await.unwrap()), ks(&["b", "c", "d"]));
        assert_eq!(
            keys(&read(r.clone().reversed()).await.unwrap()),
            ks(&["d", "c", "b"])
        );
        assert_eq!(
            keys(&read(r.reversed().with_limit(1)).await.unwrap()),
            ks(&["d"])
        );
        let r = RangeOption::from_selectors(
            Sel::first_greater_or_equal(k("a")).offset_by(1),
            Sel::first_greater_or_equal(k("a")).offset_by(3),
        );
        assert_eq!(keys(&read(r).await.unwrap()), ks(&["b", "c"]));
        let r = RangeOption::from_selectors(
            Sel::first_greater_or_equal(k("aa")),
            Sel::first_greater_or_equal(k("cc")),
        );
        assert_eq!(keys(&read(r).await.unwrap()), ks(&["b", "c"]));
        // Begin resolving at or after end: empty, not an error.
        let r = RangeOption::from_selectors(
            Sel::first_greater_or_equal(k("d")),
            Sel::first_greater_or_equal(k("b")),
        );
        assert_eq!(read(r).await.unwrap(), vec![]);
        let r = RangeOption::from_selectors(
            Sel::first_greater_than(k("b")),
            Sel::last_less_or_equal(k("c")),
        );
        assert_eq!(read(r).await.unwrap(), vec![], "both resolve to c");
        // Bounds resolved through own writes.
        t.set(&k("bb"), b"new");
        t.clear(&k("d"));
        let r = RangeOption::from_selectors(
            Sel::first_greater_than(k("b")),
            Sel::first_greater_than(k("c")),
        );
        assert_eq!(keys(&read(r).await.unwrap()), ks(&["bb", "c"]));
    });
}

pub fn selectors_clamp_to_the_keyspace_boundaries<H: Harness>(h: &H) {
    let db = h.db();
    block_on(async {
        seed(h, &db).await;
        let k = |s: &str| h.k(&format!("s/{s}"));
        let t = tx(&db);
        // These hold whatever else the database holds.
        assert_eq!(
            t.get_key(&Sel::last_less_than(b"".to_vec()), false)
                .await
                .unwrap(),
            b"".to_vec()
        );
        assert_eq!(
            t.get_key(&Sel::first_greater_or_equal(b"\xff".to_vec()), false)
                .await
                .unwrap(),
            b"\xff".to_vec()
        );
        if !h.isolated() {
            h.skip(
                "the database holds other data: the first/last key boundaries are not observable",
            );
            return;
        }
        let (first, last) = (b"".to_vec(), b"\xff".to_vec());
        let cases: Vec<(Sel, Vec<u8>)> = vec![
            (Sel::last_less_than(k("a")), first.clone()),
            (Sel::last_less_or_equal(k("a")).offset_by(-1), first.clone()),
            (Sel::new(k("c"), false, -5), first.clone()),
            (
                Sel::first_greater_or_equal(first.clone()).offset_by(-3),
                first.clone(),
            ),
            (Sel::first_greater_than(k("e")), last.clone()),
            (
                Sel::first_greater_or_equal(k("a")).offset_by(10),
                last.clone(),
            ),
            (Sel::last_less_or_equal(k("e")).offset_by(1), last.clone()),
            (Sel::first_greater_or_equal(first.clone()), k("a")),
            (Sel::last_less_than(last.clone()), k("e")),
        ];
        for (sel, expected) in &cases {
            assert_eq!(t.get_key(sel, false).await.unwrap(), *expected, "{sel:?}");
        }
        let ks = |v: &[&str]| v.iter().map(|s| k(s)).collect::<Vec<_>>();
        let r = RangeOption::from_selectors(
            Sel::last_less_than(k("a")),
            Sel::first_greater_or_equal(k("c")),
        );
        assert_eq!(
            keys(&t.get_range_all(r, false).await.unwrap()),
            ks(&["a", "b"])
        );
        let r = RangeOption::from_selectors(
            Sel::first_greater_or_equal(k("c")),
            Sel::first_greater_than(k("e")).offset_by(3),
        );
        assert_eq!(
            keys(&t.get_range_all(r.reversed(), false).await.unwrap()),
            ks(&["e", "d", "c"])
        );
    });
}

/// Every row of a batch, in order, as owned pairs.
fn rows(mut batch: RangeBatch) -> Vec<KeyValue> {
    let mut out = Vec::new();
    while let Some(row) = batch.peek() {
        out.push(KeyValue::new(row.key().to_vec(), batch.value_bytes(&row)));
        batch.advance();
    }
    out
}

pub fn range_batches_hold_the_rows_of_get_range<H: Harness>(h: &H) {
    let db = h.db();
    block_on(async {
        seed(h, &db).await;
        let k = |s: &str| h.k(&format!("s/{s}"));
        let t = tx(&db);
        // Including the transaction's own writes and clears.
        t.set(&k("bb"), b"new");
        t.clear(&k("d"));
        for reverse in [false, true] {
            for limit in [None, Some(1), Some(2), Some(10)] {
                for snapshot in [false, true] {
                    let mut r = RangeOption::from_keys(&k("a"), &k("z"));
                    r.limit = limit;
                    r.reverse = reverse;
                    let what = format!("reverse {reverse} limit {limit:?} snapshot {snapshot}");
                    let result = t.get_range(&r, 1, snapshot).await.unwrap();
                    let batch = t.get_range_batch(&r, 1, snapshot).await.unwrap();
                    assert_eq!(batch.more, result.more, "{what}");
                    assert_eq!(batch.len(), result.key_values.len(), "{what}");
                    assert_eq!(
                        batch.last_key(),
                        result.key_values.last().map(|kv| &kv.key[..]),
                        "{what}"
                    );
                    assert_eq!(batch.clone().into_key_values(), result.key_values, "{what}");
                    assert_eq!(rows(batch), result.key_values, "{what}");
                }
            }
        }
        let empty = t
            .get_range_batch(&RangeOption::from_keys(&k("x"), &k("y")), 1, false)
            .await
            .unwrap();
        assert!(empty.is_empty() && empty.peek().is_none() && empty.last_key().is_none());
    });
}
