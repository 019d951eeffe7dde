//! Bad input, from callers or from the database, gets a typed error: never a panic,
//! a stack overflow or an allocation sized by corrupt bytes.

mod common;

use common::store::*;
use fdb_records::backend::embedded::{EmbeddedDatabase, ManualClock};
use fdb_records::cursor::{ExecuteOptions, IndexScan, RecordScan};
use fdb_records::key_expression::{concat, empty, field, ExpressionError, MAX_EVALUATED_TUPLES};
use fdb_records::kv::{
    code, Database, FdbError, KeySelector, RangeOption, Transaction, TransactionOption,
};
use fdb_records::layout::{unpack_stored, StoreLayout, MAX_TUPLE_NESTING};
use fdb_records::metadata::{Index, IndexType};
use fdb_records::store::{
    Problem, RecordRange, RecordStore, RecordStoreError, ScanOptions, StoreChecker, TupleRange,
};
use foundationdb_tuple::{Element, Subspace};
use futures::executor::block_on;
use futures::StreamExt;
use proptest::prelude::*;
use std::ops::Bound;
use std::time::Duration;

/// Runs `f` on a thread with a 2 MiB stack (tokio's worker default), so that a deep
/// recursion fails the test by overflowing instead of passing on a large main stack.
fn on_small_stack<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}

/// A tuple of `depth` nested empty tuples, packed: `05 05 ... 00 00`.
fn nested_bytes(depth: usize) -> Vec<u8> {
    let mut bytes = vec![0x05; depth];
    bytes.extend(std::iter::repeat_n(0x00, depth));
    bytes
}

async fn assert_scan_finds_a_corrupt_record_key(db: &EmbeddedDatabase) {
    let scan = with_store(db, &metadata(), |s| async move {
        s.scan_records(&RecordRange::all(), ScanOptions::forward())
            .await
    })
    .await;
    assert!(
        matches!(scan, Err(RecordStoreError::CorruptRecordKey { .. })),
        "{scan:?}"
    );
}

#[test]
fn a_deeply_nested_stored_key_is_corrupt_data_not_a_stack_overflow() {
    on_small_stack(|| {
        block_on(async {
            let db = EmbeddedDatabase::in_memory().unwrap();
            let md = metadata();
            with_store(&db, &md, |s| async move {
                s.save_record(&user(1, "a@x", 0, &["t"])).await
            })
            .await
            .unwrap();
            let layout = StoreLayout::new(subspace());
            // 4,900 levels: 9,808 bytes with the prefix, under the 10,000-byte key limit.
            let mut key = layout.records().bytes().to_vec();
            key.extend(nested_bytes(4_900));
            key.push(0x14);
            assert!(key.len() < 10_000);
            raw_set(&db, key, b"x".to_vec()).await;
            let mut index_key = layout.index("by_tag").bytes().to_vec();
            index_key.extend(nested_bytes(4_900));
            raw_set(&db, index_key, Vec::new()).await;

            assert_scan_finds_a_corrupt_record_key(&db).await;
            let cursor = with_store(&db, &md, |s| async move {
                let mut cursor = s
                    .execute(&RecordScan::new(RecordRange::all()), &ExecuteOptions::new())
                    .unwrap();
                let mut errors = 0;
                while let Some(item) = cursor.next().await {
                    errors += usize::from(item.is_err());
                }
                Ok(errors)
            })
            .await
            .unwrap();
            assert_eq!(cursor, 1);
            let entries = with_store(&db, &md, |s| async move {
                s.scan_index("by_tag", &TupleRange::all(), ScanOptions::forward())
                    .await
            })
            .await;
            assert!(
                matches!(entries, Err(RecordStoreError::CorruptIndex { .. })),
                "{entries:?}"
            );
        })
    });
}

#[test]
fn stored_tuples_unpack_up_to_the_nesting_limit() {
    // Byte strings full of 0x05 first, so that the nesting is walked, not counted.
    let at = |depth: usize| {
        let mut bytes = foundationdb_tuple::pack(&(vec![0x05u8; 80],));
        bytes.extend(nested_bytes(depth));
        bytes
    };
    let limit = at(MAX_TUPLE_NESTING);
    let unpacked: Vec<Element<'_>> = unpack_stored(&limit).unwrap();
    assert_eq!(unpacked.len(), 2);
    assert!(unpack_stored::<Vec<Element<'_>>>(&at(MAX_TUPLE_NESTING + 1)).is_err());
    assert!(unpack_stored::<Vec<Element<'_>>>(&nested_bytes(MAX_TUPLE_NESTING + 1)).is_err());
    // Nesting bytes inside byte strings and integers are data, not levels.
    let noisy = foundationdb_tuple::pack(&(
        vec![0x05u8; 500],
        "\u{5}".repeat(300),
        0x0505_0505_0505_0505i64,
        (Element::Nil, (vec![0x05u8, 0x00, 0xff], Element::Nil)),
    ));
    let expected: Vec<Element<'_>> = foundationdb_tuple::unpack(&noisy).unwrap();
    assert_eq!(unpack_stored::<Vec<Element<'_>>>(&noisy).unwrap(), expected);
}

/// Any tuple nested within the limit: bytes that look like structure included.
fn element(depth: u32) -> BoxedStrategy<Element<'static>> {
    let leaf = prop_oneof![
        Just(Element::Nil),
        any::<i64>().prop_map(Element::Int),
        any::<bool>().prop_map(Element::Bool),
        proptest::collection::vec(
            prop_oneof![Just(0u8), Just(5), Just(0xff), any::<u8>()],
            0..8
        )
        .prop_map(|b| Element::Bytes(b.into())),
        "[\u{0}\u{5}a-z]{0,6}".prop_map(|s| Element::String(s.into())),
        any::<f64>().prop_map(Element::Double),
    ];
    if depth == 0 {
        return leaf.boxed();
    }
    prop_oneof![
        3 => leaf,
        1 => proptest::collection::vec(element(depth - 1), 0..4).prop_map(Element::Tuple),
    ]
    .boxed()
}

proptest! {
    #[test]
    fn unpack_stored_agrees_with_unpack(tuple in proptest::collection::vec(element(6), 0..6)) {
        // Led by 0x05 bytes, so that every case is walked rather than counted.
        let mut tuple = tuple;
        tuple.insert(0, Element::Bytes(vec![0x05u8; 80].into()));
        let packed = foundationdb_tuple::pack(&tuple);
        let expected: Vec<Element<'_>> = foundationdb_tuple::unpack(&packed).unwrap();
        let got: Vec<Element<'_>> = unpack_stored(&packed).unwrap();
        // Compared as packed bytes: NaN doubles are not equal to themselves.
        prop_assert_eq!(foundationdb_tuple::pack(&got), foundationdb_tuple::pack(&expected));
    }
}

fn huge() -> Element<'static> {
    Element::BigInt(num_bigint::BigInt::from(1) << 3000)
}

fn invalid(result: Result<impl std::fmt::Debug, RecordStoreError>) {
    assert!(
        matches!(result, Err(RecordStoreError::InvalidTuple { .. })),
        "{result:?}"
    );
}

#[test]
fn unpackable_caller_tuples_are_invalid_tuples_and_the_store_stays_usable() {
    block_on(async {
        let db = EmbeddedDatabase::in_memory().unwrap();
        let md = metadata();
        let too_deep = {
            let mut e = Element::Int(1);
            for _ in 0..MAX_TUPLE_NESTING {
                e = Element::Tuple(vec![e]);
            }
            e
        };
        let out = with_store(&db, &md, |s| {
            let too_deep = too_deep.clone();
            async move {
                s.save_record(&user(1, "a@x", 2, &["t"])).await?;
                invalid(s.load_dynamic(&[huge()]).await);
                invalid(s.load_record::<common::User>(&[huge()]).await);
                // Used to panic while holding the store's lock, then again in its
                // `Drop`: an abort.
                invalid(s.load_record_version(&[huge()]).await);
                invalid(s.exists(std::slice::from_ref(&too_deep)).await);
                invalid(s.delete_record(&[huge()]).await);
                let range = RecordRange::between(vec![Element::Int(0)], vec![huge()]);
                invalid(s.scan_records(&range, ScanOptions::forward()).await);
                invalid(
                    s.execute(&RecordScan::new(range), &ExecuteOptions::new())
                        .map_err(|e| match e {
                            fdb_records::cursor::CursorError::Store(e) => e,
                            other => panic!("{other}"),
                        }),
                );
                let tuples = TupleRange::new(Bound::Included(vec![too_deep]), Bound::Unbounded);
                invalid(
                    s.scan_index("by_tag", &tuples, ScanOptions::forward())
                        .await,
                );
                assert!(s
                    .execute(&IndexScan::new("by_tag", tuples), &ExecuteOptions::new())
                    .is_err());
                invalid(s.count("per_tier", &[huge()]).await);
                invalid(s.changes_since("changes", &[huge()], None, None).await);
                // The store and its transaction carry on.
                Ok((
                    s.load_record::<common::User>(&[Element::Int(1)]).await?,
                    s.count("per_tier", &[Element::Int(2)]).await?,
                ))
            }
        })
        .await
        .unwrap();
        assert_eq!(out.0.unwrap().email, "a@x");
        assert_eq!(out.1, 1);
    });
}

#[test]
fn a_selector_past_the_last_user_key_resolves_to_it() {
    block_on(async {
        let db = EmbeddedDatabase::in_memory().unwrap();
        let tx = db.create_transaction().unwrap();
        tx.set(b"a", b"1");
        let key = tx
            .get_key(&KeySelector::first_greater_than(b"\xff".to_vec()), false)
            .await
            .unwrap();
        assert_eq!(key, b"\xff");
        let rows = tx
            .get_range(
                &RangeOption::from_selectors(
                    KeySelector::new(b"\xff".to_vec(), true, 2),
                    KeySelector::first_greater_or_equal(b"\xff".to_vec()),
                ),
                1,
                false,
            )
            .await
            .unwrap();
        assert!(rows.key_values.is_empty());
    });
}

#[test]
fn a_corrupt_chunk_count_is_reported_without_sizing_anything_by_it() {
    block_on(async {
        let db = EmbeddedDatabase::in_memory().unwrap();
        let md = metadata();
        with_store(&db, &md, |s| async move {
            s.save_record(&user(1, "a@x", 0, &[])).await
        })
        .await
        .unwrap();
        let layout = StoreLayout::new(subspace());
        let mut value = 4_000_000_000u32.to_le_bytes().to_vec();
        value.extend_from_slice(b"data");
        raw_set(&db, layout.record_key(&[Element::Int(7)], 1), value).await;
        let loaded = with_store(&db, &md, |s| async move {
            s.load_dynamic(&[Element::Int(7)]).await
        })
        .await;
        match loaded {
            Err(RecordStoreError::CorruptRecord { detail, .. }) => {
                assert!(detail.len() < 200, "{detail}");
            }
            other => panic!("{other:?}"),
        }
    });
}

#[test]
fn an_oversize_aggregate_group_key_fails_the_save_with_key_too_large() {
    block_on(async {
        let db = EmbeddedDatabase::in_memory().unwrap();
        let md = std::sync::Arc::new(
            base(1)
                .index(
                    Index::new(
                        "per_name",
                        IndexType::Count,
                        empty().group_by(field("name")),
                    )
                    .on(USER),
                )
                .build()
                .unwrap(),
        );
        let mut long = user(1, "a@x", 3, &[]);
        long.name = "n".repeat(20_000);
        let saved = with_store(&db, &md, |s| {
            let long = long.clone();
            async move { s.save_record(&long).await }
        })
        .await;
        assert!(
            matches!(saved, Err(RecordStoreError::KeyTooLarge { ref what, .. }) if what.contains("per_name")),
            "{saved:?}"
        );
        // Nothing was committed; an ordinary save still works.
        with_store(&db, &md, |s| async move {
            s.save_record(&user(2, "b@x", 3, &[])).await
        })
        .await
        .unwrap();
    });
}

#[test]
fn the_size_check_counts_write_conflict_ranges() {
    block_on(async {
        let db = EmbeddedDatabase::in_memory().unwrap();
        let md = metadata();
        // 80,000 tag entries: about 6 MB of mutations, about 14 MB with their write
        // conflicts. FoundationDB would refuse the commit (2101, not retryable).
        let tags: Vec<String> = (0..80_000).map(|i| format!("tag-{i:015}")).collect();
        let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
        let big = user(1, "a@x", 0, &tags);
        let saved = with_store(&db, &md, |s| {
            let big = big.clone();
            async move { s.save_record(&big).await }
        })
        .await;
        assert!(
            matches!(saved, Err(RecordStoreError::RecordTooLarge { .. })),
            "{:?}",
            saved.map(|s| s.size)
        );
    });
}

#[test]
fn a_cross_product_of_fan_outs_is_bounded() {
    let tags: Vec<String> = (0..1_001).map(|i| format!("t{i}")).collect();
    let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
    let u = user(1, "a@x", 0, &tags);
    let product = concat([field("tags").fan_out(), field("tags").fan_out()]);
    match product.evaluate_record(&u) {
        Err(ExpressionError::TooManyTuples { count, limit }) => {
            assert_eq!(count, 1_001 * 1_001);
            assert_eq!(limit, MAX_EVALUATED_TUPLES);
        }
        other => panic!("{:?}", other.map(|t| t.len())),
    }
}

#[test]
fn an_unbounded_retry_delay_saturates_instead_of_overflowing() {
    block_on(async {
        let db = EmbeddedDatabase::builder()
            .clock(ManualClock::new())
            .in_memory()
            .unwrap();
        let tx = db.create_transaction().unwrap();
        tx.set_option(TransactionOption::MaxRetryDelay(Duration::MAX))
            .unwrap();
        for _ in 0..100 {
            tx.on_error(FdbError::from_code(code::NOT_COMMITTED))
                .await
                .unwrap();
        }
    });
}

#[test]
fn a_scan_limit_of_zero_returns_nothing() {
    block_on(async {
        let db = EmbeddedDatabase::in_memory().unwrap();
        let md = metadata();
        let found = with_store(&db, &md, |s| async move {
            s.save_record(&user(1, "a@x", 0, &[])).await?;
            s.scan_records(&RecordRange::all(), ScanOptions::forward().with_limit(0))
                .await
        })
        .await
        .unwrap();
        assert!(found.is_empty());
    });
}

#[test]
fn selector_offsets_saturate() {
    let s = KeySelector::first_greater_or_equal(b"k".to_vec()).offset_by(i32::MAX);
    assert_eq!(s.offset, i32::MAX);
}

#[test]
fn stores_under_other_subspaces_are_untouched_by_the_checks() {
    // A subspace prefix that is not a tuple is never walked: only what follows it.
    let sub = Subspace::from_bytes(vec![0x05; 100]);
    let layout = StoreLayout::new(sub);
    let key = layout.record_key(&[Element::Int(3)], 0);
    let (pk, _, suffix) = layout.parse_record_key(&key).unwrap();
    assert_eq!((pk, suffix), (vec![Element::Int(3)], 0));
}

#[test]
fn the_checker_reports_a_key_that_is_no_record_key_and_checks_the_rest() {
    block_on(async {
        let db = EmbeddedDatabase::in_memory().unwrap();
        let md = metadata();
        with_store(&db, &md, |s| async move {
            for id in [1, 2, 3] {
                s.save_record(&user(id, &format!("{id}@x"), 0, &[])).await?;
            }
            Ok(())
        })
        .await
        .unwrap();
        // Byte strings where the nested primary key belongs: before every record, and
        // after every record.
        let layout = StoreLayout::new(subspace());
        let bad = layout.records().pack(&(b"junk".to_vec(),));
        raw_set(&db, bad, b"x".to_vec()).await;
        let bad = layout.records().pack(&(2i64, "junk"));
        raw_set(&db, bad, b"x".to_vec()).await;
        // And one among record 2's own keys, between its version and its data.
        let mut inside = layout.record_version_key(&[Element::Int(2)]);
        inside.push(0x00);
        raw_set(&db, inside, b"x".to_vec()).await;
        assert_scan_finds_a_corrupt_record_key(&db).await;
        // Pages of every size: a bad key read again by the next page is reported once.
        for page_size in 1..=4 {
            let report = with_store(&db, &md, |s| async move {
                let mut checker = StoreChecker::new().page_size(page_size);
                while !checker.is_done() {
                    checker = checker.step(&s).await?;
                }
                Ok(checker.into_report())
            })
            .await
            .unwrap();
            assert_eq!(report.records_checked, 3, "{report:?}");
            assert_eq!(
                report.problems.len(),
                3,
                "page size {page_size}: {report:?}"
            );
            assert!(
                report
                    .problems
                    .iter()
                    .all(|p| matches!(p, Problem::CorruptRecordKey { .. })),
                "{report:?}"
            );
        }
    });
}

#[test]
fn a_store_handle_that_outlives_the_commit_still_commits_versions() {
    block_on(async {
        let db = EmbeddedDatabase::in_memory().unwrap();
        let md = metadata();
        // The handle is returned from the retried closure: `run` commits while it is
        // still alive, so its drop comes too late to write the buffered versions.
        let store = db
            .run(|tx, _| {
                let md = md.clone();
                async move {
                    let s = RecordStore::open(&tx, subspace(), md).await?;
                    s.save_record(&user(1, "a@x", 0, &[])).await?;
                    Ok::<_, RecordStoreError>(s)
                }
            })
            .await
            .unwrap();
        drop(store);
        let (version, changes) = with_store(&db, &md, |s| async move {
            Ok((
                s.load_record_version(&[Element::Int(1)]).await?,
                s.changes_since("changes", &[], None, None).await?,
            ))
        })
        .await
        .unwrap();
        assert!(version.is_some_and(|v| v.is_complete()), "{version:?}");
        assert_eq!(changes.len(), 1);
    });
}
