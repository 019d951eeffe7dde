//! The record store: save/load/delete/scan, existence options, record counts, split
//! records, record versions and metadata that stores none.

mod common;

use common::counting::{CountingTransaction, Read};
use common::store::*;
use common::User;
use fdb_records::backend::embedded::EmbeddedDatabase;
use fdb_records::key_expression::{empty, field};
use fdb_records::kv::{Database, FdbError, RangeOption, Transaction};
use fdb_records::layout::{KeyInfo, RecordPart};
use fdb_records::metadata::{Index, IndexType, RecordMetaData};
use fdb_records::store::{
    check_store, Problem, RecordExistence, RecordRange, RecordStore, RecordStoreError,
    RecordVersion, ScanOptions, StoredRecord,
};
use foundationdb_tuple::{Element, Versionstamp};
use futures::executor::block_on;
use std::collections::BTreeSet;
use std::sync::Arc;

fn pk(id: i64) -> Vec<Element<'static>> {
    vec![Element::Int(id)]
}

/// Every record part stored for `id`, straight from the database.
async fn parts(db: &EmbeddedDatabase, id: i64) -> Vec<RecordPart> {
    let layout = fdb_records::layout::StoreLayout::new(subspace());
    let record = layout.record(&pk(id));
    let (b, e) = record.range();
    let kvs = db
        .run(|tx, _| {
            let (b, e) = (b.clone(), e.clone());
            async move {
                tx.get_range_all(RangeOption::from_keys(&b, &e), false)
                    .await
            }
        })
        .await
        .unwrap();
    kvs.iter()
        .map(|kv| match layout.explain_key(&kv.key, None) {
            KeyInfo::Record { part, .. } => part,
            other => panic!("unexpected key {other}"),
        })
        .collect()
}

#[test]
fn save_load_exists_delete_and_count() {
    block_on(async {
        let db = EmbeddedDatabase::in_memory().unwrap();
        let md = metadata();
        let alice = user(1, "alice@x", 0, &["a"]);
        let saved = with_store(&db, &md, |s| {
            let alice = alice.clone();
            async move { s.save_record(&alice).await }
        })
        .await
        .unwrap();
        assert!(saved.created);
        assert_eq!(saved.primary_key, pk(1));
        assert_eq!(saved.values, 1);

        let (loaded, dynamic, exists, missing, count) = with_store(&db, &md, |s| async move {
            Ok((
                s.load_record::<User>(&pk(1)).await?,
                s.load_dynamic(&pk(1)).await?,
                s.exists(&pk(1)).await?,
                s.exists(&pk(2)).await?,
                s.record_count().await?,
            ))
        })
        .await
        .unwrap();
        assert_eq!(loaded, Some(alice.clone()));
        let dynamic = dynamic.unwrap();
        assert_eq!(&*dynamic.record_type, USER);
        assert!(dynamic.version.unwrap().is_complete());
        assert!(exists && !missing);
        assert_eq!(count, 1);

        // Loading as the wrong type is a typed error.
        let err = with_store(&db, &md, |s| async move {
            s.load_record::<common::Order>(&pk(1)).await
        })
        .await
        .unwrap_err();
        assert!(matches!(err, RecordStoreError::TypeMismatch(_)), "{err}");

        // Update: not created, count unchanged.
        let updated = with_store(&db, &md, |s| async move {
            s.save_record(&user(1, "alice@y", 1, &[])).await
        })
        .await
        .unwrap();
        assert!(!updated.created);

        let (deleted, again, count, gone) = with_store(&db, &md, |s| async move {
            Ok((
                s.delete_record(&pk(1)).await?,
                s.delete_record(&pk(1)).await?,
                s.record_count().await?,
                s.load_record::<User>(&pk(1)).await?,
            ))
        })
        .await
        .unwrap();
        assert!(deleted && !again, "deleting an absent record is a no-op");
        assert_eq!(count, 0);
        assert_eq!(gone, None);
        assert!(
            parts(&db, 1).await.is_empty(),
            "no key of the record is left"
        );
    });
}

#[test]
fn existence_options_fail_with_typed_errors_and_write_nothing() {
    block_on(async {
        let db = EmbeddedDatabase::in_memory().unwrap();
        let md = metadata();
        let err = with_store(&db, &md, |s| async move {
            s.save_record_with(&user(1, "a", 0, &[]), RecordExistence::MustExist)
                .await
        })
        .await
        .unwrap_err();
        assert!(
            matches!(&err, RecordStoreError::RecordDoesNotExist { primary_key } if *primary_key == pk(1)),
            "{err}"
        );
        assert!(parts(&db, 1).await.is_empty());

        with_store(&db, &md, |s| async move {
            s.save_record_with(&user(1, "a", 0, &[]), RecordExistence::MustNotExist)
                .await
        })
        .await
        .unwrap();
        let err = with_store(&db, &md, |s| async move {
            s.save_record_with(&user(1, "b", 0, &[]), RecordExistence::MustNotExist)
                .await
        })
        .await
        .unwrap_err();
        assert!(
            matches!(err, RecordStoreError::RecordAlreadyExists { .. }),
            "{err}"
        );
        assert_eq!(err.to_string(), "record (1) already exists");
        let (email, count) = with_store(&db, &md, |s| async move {
            let u = s.load_record::<User>(&pk(1)).await?.unwrap();
            Ok((u.email, s.record_count().await?))
        })
        .await
        .unwrap();
        assert_eq!(
            (email.as_str(), count),
            ("a", 1),
            "the failed save changed nothing"
        );
        with_store(&db, &md, |s| async move {
            s.save_record_with(&user(1, "c", 0, &[]), RecordExistence::MustExist)
                .await
        })
        .await
        .unwrap();
    });
}

#[test]
fn scans_in_primary_key_order_both_ways_with_limits_and_ranges() {
    block_on(async {
        let db = EmbeddedDatabase::in_memory().unwrap();
        let md = metadata();
        with_store(&db, &md, |s| async move {
            for id in [5, -3, 12, 0, 7, 100] {
                s.save_record(&user(id, &format!("u{id}"), 0, &[])).await?;
            }
            Ok(())
        })
        .await
        .unwrap();
        let ids = |records: Vec<fdb_records::store::StoredRecord>| {
            records
                .iter()
                .map(|r| r.to_record::<User>().unwrap().id)
                .collect::<Vec<_>>()
        };
        let (all, rev, limited, ranged, rev_ranged) = with_store(&db, &md, |s| async move {
            Ok((
                s.scan_records(&RecordRange::all(), ScanOptions::forward())
                    .await?,
                s.scan_records(&RecordRange::all(), ScanOptions::reverse())
                    .await?,
                s.scan_records(&RecordRange::all(), ScanOptions::forward().with_limit(2))
                    .await?,
                s.scan_records(&RecordRange::between(pk(0), pk(12)), ScanOptions::forward())
                    .await?,
                s.scan_records(
                    &RecordRange::between(pk(0), pk(12)),
                    ScanOptions::reverse().with_limit(2),
                )
                .await?,
            ))
        })
        .await
        .unwrap();
        assert_eq!(ids(all), vec![-3, 0, 5, 7, 12, 100]);
        assert_eq!(ids(rev), vec![100, 12, 7, 5, 0, -3]);
        assert_eq!(ids(limited), vec![-3, 0]);
        assert_eq!(ids(ranged), vec![0, 5, 7]);
        assert_eq!(ids(rev_ranged), vec![7, 5]);
    });
}

#[test]
fn delete_all_records_clears_records_indexes_and_counts() {
    block_on(async {
        let db = EmbeddedDatabase::in_memory().unwrap();
        let md = metadata();
        with_store(&db, &md, |s| async move {
            for id in 0..10 {
                s.save_record(&user(id, &format!("u{id}"), 1, &["t"]))
                    .await?;
                s.save_record(&order(id, 1, id)).await?;
            }
            Ok(())
        })
        .await
        .unwrap();
        with_store(&db, &md, |s| async move { s.delete_all_records().await })
            .await
            .unwrap();
        let layout = fdb_records::layout::StoreLayout::new(subspace());
        let kvs = db
            .run(|tx, _| async move {
                tx.get_range_all(RangeOption::from_prefix(subspace().bytes()), false)
                    .await
            })
            .await
            .unwrap();
        let left: Vec<String> = kvs
            .iter()
            .map(|kv| layout.explain_key(&kv.key, None).to_string())
            .collect();
        assert_eq!(left, vec!["store header".to_string()]);
        let (count, users) = with_store(&db, &md, |s| async move {
            Ok((s.record_count().await?, s.count("users", &[]).await?))
        })
        .await
        .unwrap();
        assert_eq!((count, users), (0, 0));
    });
}

fn big_user(id: i64, len: usize) -> User {
    User {
        id,
        email: format!("big{id}"),
        avatar_hash: (0..len).map(|i| (i * 7 % 251) as u8).collect(),
        ..User::default()
    }
}

#[test]
fn large_records_are_split_and_reassembled_without_orphans() {
    block_on(async {
        let db = EmbeddedDatabase::in_memory().unwrap();
        let md = metadata();
        let big = big_user(1, 250_000);
        let saved = with_store(&db, &md, |s| {
            let big = big.clone();
            async move { s.save_record(&big).await }
        })
        .await
        .unwrap();
        assert_eq!(saved.values, 3);
        assert_eq!(
            parts(&db, 1).await,
            vec![
                RecordPart::Version,
                RecordPart::Chunk(1),
                RecordPart::Chunk(2),
                RecordPart::Chunk(3)
            ]
        );
        let loaded = with_store(&db, &md, |s| async move { s.load_dynamic(&pk(1)).await })
            .await
            .unwrap()
            .unwrap();
        assert_eq!(loaded.to_record::<User>().unwrap(), big);
        assert_eq!(loaded.values, 3);

        // Bigger, then smaller: only the new record's keys remain.
        let bigger = big_user(1, 450_000);
        with_store(&db, &md, |s| {
            let bigger = bigger.clone();
            async move { s.save_record(&bigger).await }
        })
        .await
        .unwrap();
        assert_eq!(parts(&db, 1).await.len(), 6);
        with_store(&db, &md, |s| async move {
            s.save_record(&big_user(1, 10)).await
        })
        .await
        .unwrap();
        assert_eq!(
            parts(&db, 1).await,
            vec![RecordPart::Version, RecordPart::Unsplit]
        );
        // A split record among others scans correctly both ways.
        with_store(&db, &md, |s| async move {
            s.save_record(&big_user(2, 300_000)).await?;
            s.save_record(&big_user(3, 5)).await
        })
        .await
        .unwrap();
        let sizes = with_store(&db, &md, |s| async move {
            let f = s
                .scan_records(&RecordRange::all(), ScanOptions::forward())
                .await?;
            let r = s
                .scan_records(&RecordRange::all(), ScanOptions::reverse())
                .await?;
            Ok((
                f.iter().map(|r| r.values).collect::<Vec<_>>(),
                r.iter().map(|r| r.values).collect::<Vec<_>>(),
            ))
        })
        .await
        .unwrap();
        assert_eq!(sizes, (vec![1, 4, 1], vec![1, 4, 1]));
    });
}

#[test]
fn torn_and_corrupt_split_records_are_typed_errors_never_data() {
    block_on(async {
        let db = EmbeddedDatabase::in_memory().unwrap();
        let md = metadata();
        with_store(&db, &md, |s| async move {
            s.save_record(&big_user(1, 350_000)).await?;
            s.save_record(&big_user(2, 350_000)).await
        })
        .await
        .unwrap();
        let layout = fdb_records::layout::StoreLayout::new(subspace());
        let (missing, extra) = (layout.record_key(&pk(1), 4), layout.record_key(&pk(2), 9));
        db.run(|tx, _| {
            let (missing, extra) = (missing.clone(), extra.clone());
            async move {
                tx.clear(&missing);
                tx.set(&extra, b"stray");
                Ok::<_, FdbError>(())
            }
        })
        .await
        .unwrap();
        let (torn, corrupt, scan) = with_store(&db, &md, |s| async move {
            Ok((
                s.load_dynamic(&pk(1)).await.err(),
                s.load_dynamic(&pk(2)).await.err(),
                s.scan_records(&RecordRange::all(), ScanOptions::forward())
                    .await
                    .err(),
            ))
        })
        .await
        .unwrap();
        let torn = torn.expect("torn record is an error");
        assert!(
            matches!(&torn, RecordStoreError::TornRecord { primary_key, .. } if *primary_key == pk(1)),
            "{torn}"
        );
        assert!(
            torn.to_string().contains("chunks [4] of 4 are missing"),
            "{torn}"
        );
        assert!(
            matches!(corrupt, Some(RecordStoreError::CorruptRecord { .. })),
            "{corrupt:?}"
        );
        assert!(matches!(scan, Some(RecordStoreError::TornRecord { .. })));
    });
}

#[test]
fn a_record_too_large_for_a_transaction_fails_before_writing() {
    block_on(async {
        let db = EmbeddedDatabase::in_memory().unwrap();
        let md = metadata();
        let err = with_store(&db, &md, |s| async move {
            s.save_record(&big_user(1, 10_500_000)).await
        })
        .await
        .unwrap_err();
        match &err {
            RecordStoreError::RecordTooLarge {
                primary_key,
                size,
                limit,
            } => {
                assert_eq!(primary_key, &pk(1));
                assert!(size > limit && *limit == 10_000_000);
            }
            other => panic!("{other}"),
        }
        assert!(parts(&db, 1).await.is_empty());
        // Nine megabytes fit.
        let saved = with_store(&db, &md, |s| async move {
            s.save_record(&big_user(1, 9_000_000)).await
        })
        .await
        .unwrap();
        assert_eq!(saved.values, 91);
    });
}

#[test]
fn versions_follow_commit_order_and_in_transaction_order() {
    block_on(async {
        let db = EmbeddedDatabase::in_memory().unwrap();
        let md = metadata();
        let outcome = fdb_records::kv::run(&db, |tx, _| {
            let md = md.clone();
            async move {
                let s = RecordStore::open(&tx, subspace(), md).await?;
                let a = s.save_record(&user(1, "a", 0, &[])).await?;
                let b = s.save_record(&user(2, "b", 0, &[])).await?;
                // Same transaction: the version is known only as incomplete.
                let seen = s.load_record_version(&pk(2)).await?;
                let loaded = s.load_dynamic(&pk(1)).await?.unwrap().version;
                Ok::<_, RecordStoreError>((a.version.unwrap(), b.version.unwrap(), seen, loaded))
            }
        })
        .await
        .unwrap();
        let (a, b, seen, loaded) = outcome.value;
        assert!(!a.is_complete() && a < b);
        assert_eq!(seen, Some(b));
        assert_eq!(loaded, Some(a));
        let stamp = outcome.committed.versionstamp.unwrap();
        let (va, vb) = (a.complete_with(stamp), b.complete_with(stamp));
        assert!(va < vb, "distinct, ordered versions in one transaction");

        let later = with_store(&db, &md, |s| async move {
            s.save_record(&user(3, "c", 0, &[])).await?;
            Ok(())
        });
        later.await.unwrap();
        let versions = with_store(&db, &md, |s| async move {
            let mut out = Vec::new();
            for id in 1..=3 {
                out.push(s.load_record_version(&pk(id)).await?.unwrap());
            }
            Ok(out)
        })
        .await
        .unwrap();
        assert_eq!(versions[0], va);
        assert_eq!(versions[1], vb);
        assert!(versions[2] > vb, "a later commit has a higher version");
        assert_eq!(
            versions[0].commit_version(),
            Some(outcome.committed.version)
        );

        // Saving one record twice in a transaction keeps the last version only.
        let twice = fdb_records::kv::run(&db, |tx, _| {
            let md = md.clone();
            async move {
                let s = RecordStore::open(&tx, subspace(), md).await?;
                s.save_record(&user(1, "a2", 0, &[])).await?;
                let second = s.save_record(&user(1, "a3", 0, &[])).await?;
                Ok::<_, RecordStoreError>(second.version.unwrap())
            }
        })
        .await
        .unwrap();
        let stored = with_store(
            &db,
            &md,
            |s| async move { s.load_record_version(&pk(1)).await },
        )
        .await
        .unwrap();
        assert_eq!(
            stored,
            Some(
                twice
                    .value
                    .complete_with(twice.committed.versionstamp.unwrap())
            )
        );
        let _ = RecordVersion::incomplete(0);
        let _: BTreeSet<i64> = BTreeSet::new();
    });
}

#[test]
fn bad_input_is_a_typed_error_and_writes_nothing() {
    block_on(async {
        let db = EmbeddedDatabase::in_memory().unwrap();
        // Metadata with users only: an order is not a record type of this store.
        let md = std::sync::Arc::new(
            base(1)
                .index(
                    fdb_records::metadata::Index::new(
                        "by_email",
                        fdb_records::metadata::IndexType::Value,
                        fdb_records::key_expression::field("email"),
                    )
                    .on(USER),
                )
                .build()
                .unwrap(),
        );
        let users_only = std::sync::Arc::new(
            fdb_records::metadata::RecordMetaData::builder(common::example_pool())
                .record_type(
                    fdb_records::metadata::RecordTypeDef::new(USER)
                        .primary_key(fdb_records::key_expression::field("id")),
                )
                .build()
                .unwrap(),
        );
        let err = with_store(&db, &users_only, |s| async move {
            s.save_record(&order(1, 1, 1)).await
        })
        .await
        .unwrap_err();
        assert!(
            err.to_string().contains("examples.users.Order"),
            "names the unknown type: {err}"
        );
        // An index entry beyond FoundationDB's key size limit.
        let huge = "x".repeat(20_000);
        let err = with_store(&db, &md, |s| {
            let huge = huge.clone();
            async move { s.save_record(&user(1, &huge, 0, &[])).await }
        })
        .await
        .unwrap_err();
        match &err {
            RecordStoreError::KeyTooLarge {
                what, size, limit, ..
            } => {
                assert_eq!(what, "index `by_email` entry");
                assert!(size > limit);
            }
            other => panic!("{other}"),
        }
        assert!(parts(&db, 1).await.is_empty(), "nothing written");
        let count = with_store(&db, &md, |s| async move { s.record_count().await })
            .await
            .unwrap();
        assert_eq!(count, 0);
    });
}

#[test]
fn prepare_commit_writes_versions_when_the_handle_outlives_the_commit() {
    block_on(async {
        let db = EmbeddedDatabase::in_memory().unwrap();
        let md = metadata();
        with_store(&db, &md, |_| async move { Ok(()) })
            .await
            .unwrap();
        let tx = db.create_transaction().unwrap();
        let store = RecordStore::open(&tx, subspace(), md.clone())
            .await
            .unwrap();
        let saved = store.save_record(&user(1, "a", 0, &[])).await.unwrap();
        store.prepare_commit();
        let committed = tx.commit().await.unwrap();
        let expected = saved
            .version
            .unwrap()
            .complete_with(committed.versionstamp.unwrap());
        let (version, feed) = with_store(&db, &md, |s| async move {
            Ok((
                s.load_record_version(&pk(1)).await?,
                s.changes_since("changes", &[], None, None).await?,
            ))
        })
        .await
        .unwrap();
        assert_eq!(version, Some(expected));
        assert_eq!(feed.len(), 1);
        assert_eq!(feed[0].version, Some(expected));
        drop(store);
    });
}

#[test]
fn a_limited_scan_conflicts_only_with_writes_to_what_it_returned() {
    block_on(async {
        let db = EmbeddedDatabase::in_memory().unwrap();
        let md = metadata();
        with_store(&db, &md, |s| async move {
            for id in 0..10 {
                s.save_record(&user(id, &format!("u{id}"), 0, &[])).await?;
            }
            Ok(())
        })
        .await
        .unwrap();
        // (write after the scan, the scanned transaction's outcome)
        for (written, conflicts) in [(8, false), (2, true)] {
            let reader = db.create_transaction().unwrap();
            let store = RecordStore::open(&reader, subspace(), md.clone())
                .await
                .unwrap();
            let got = store
                .scan_records(&RecordRange::all(), ScanOptions::forward().with_limit(3))
                .await
                .unwrap();
            assert_eq!(got.len(), 3);
            with_store(&db, &md, |s| async move {
                s.save_record(&user(written, &format!("changed{written}"), 1, &[]))
                    .await
            })
            .await
            .unwrap();
            reader.set(b"marker", b"x"); // make the reader a writing transaction
            drop(store);
            let result = reader.commit().await;
            assert_eq!(
                result.is_err(),
                conflicts,
                "write to record {written}: {result:?}"
            );
        }
    });
}

#[test]
fn a_load_conflicts_with_every_change_to_that_record_and_no_other() {
    // A load reads an unsplit record with two point reads, and falls back to a range
    // read for a split or absent one: every change to the loaded record, whatever its
    // shape before and after, must still fail the loading transaction's commit.
    block_on(async {
        let db = EmbeddedDatabase::in_memory().unwrap();
        let md = metadata();
        type Change = fn(i64) -> Option<User>;
        let small: Change = |id| Some(user(id, "changed", 1, &[]));
        let large: Change = |id| Some(big_user(id, 250_000));
        let delete: Change = |_| None;
        // (stored before: none / small / large, change, record changed, conflicts)
        let cases: Vec<(Option<usize>, Change, i64, bool)> = vec![
            (Some(10), small, 1, true),
            (Some(10), large, 1, true),
            (Some(10), delete, 1, true),
            (Some(250_000), small, 1, true),
            (Some(250_000), delete, 1, true),
            (None, small, 1, true),
            (None, large, 1, true),
            (Some(10), small, 2, false),
            (None, small, 2, false),
        ];
        // `load_record` (typed) reads no version; `load_dynamic` reads it too.
        let runs = cases
            .into_iter()
            .flat_map(|case| [(case, false), (case, true)]);
        for (i, ((before, change, changed, conflicts), typed)) in runs.enumerate() {
            with_store(&db, &md, |s| async move {
                s.delete_all_records().await?;
                if let Some(len) = before {
                    s.save_record(&big_user(1, len)).await?;
                }
                s.save_record(&user(2, "other", 0, &[])).await?;
                Ok(())
            })
            .await
            .unwrap();
            let reader = db.create_transaction().unwrap();
            let store = RecordStore::open(&reader, subspace(), md.clone())
                .await
                .unwrap();
            let loaded: Option<User> = if typed {
                store.load_record::<User>(&pk(1)).await.unwrap()
            } else {
                let stored = store.load_dynamic(&pk(1)).await.unwrap();
                if let Some(stored) = &stored {
                    assert!(stored.version.is_some(), "case {i}: a version");
                }
                stored.map(|s| s.to_record().unwrap())
            };
            assert_eq!(loaded.is_some(), before.is_some(), "case {i}");
            if let Some(len) = before {
                assert_eq!(loaded.unwrap().avatar_hash.len(), len, "case {i}");
            }
            with_store(&db, &md, |s| async move {
                match change(changed) {
                    Some(u) => s.save_record(&u).await.map(drop),
                    None => s.delete_record(&pk(changed)).await.map(drop),
                }
            })
            .await
            .unwrap();
            reader.set(b"marker", b"x");
            drop(store);
            let result = reader.commit().await;
            assert_eq!(
                result.is_err(),
                conflicts,
                "case {i} (typed {typed}): stored {before:?}, record {changed} changed: {result:?}"
            );
        }
    });
}

/// Users with a unique value index and a count (a VERSION index needs versions),
/// storing record versions or not.
fn versions_metadata(version: u32, store_versions: bool) -> Arc<RecordMetaData> {
    Arc::new(
        base(version)
            .store_record_versions(store_versions)
            .index(
                Index::new("by_email", IndexType::Value, field("email"))
                    .on(USER)
                    .unique(),
            )
            .index(Index::new("users", IndexType::Count, empty().ungrouped()).on(USER))
            .build()
            .unwrap(),
    )
}

/// A stored version value, as a save with versions writes it once committed.
fn stored_version(order: u16) -> Vec<u8> {
    foundationdb_tuple::pack(&(Versionstamp::complete([7; 10], order),))
}

/// Every record's primary key and version, scanned forward and backward.
async fn scanned_versions(
    db: &EmbeddedDatabase,
    md: &Arc<RecordMetaData>,
) -> Vec<(i64, Option<RecordVersion>)> {
    with_store(db, md, |s| async move {
        let forward = s
            .scan_records(&RecordRange::all(), ScanOptions::forward())
            .await?;
        let mut backward = s
            .scan_records(&RecordRange::all(), ScanOptions::reverse())
            .await?;
        backward.reverse();
        let ids = |records: Vec<StoredRecord>| {
            records
                .into_iter()
                .map(|r| match r.primary_key.as_slice() {
                    [Element::Int(id)] => (*id, r.version),
                    other => panic!("unexpected key {other:?}"),
                })
                .collect::<Vec<_>>()
        };
        let (forward, backward) = (ids(forward), ids(backward));
        assert_eq!(forward, backward, "both directions return the same records");
        Ok(forward)
    })
    .await
    .unwrap()
}

#[test]
fn without_stored_versions_a_save_writes_one_key_and_a_load_reads_one() {
    block_on(async {
        let db = EmbeddedDatabase::in_memory().unwrap();
        let off = versions_metadata(1, false);
        let alice = user(1, "a@x", 0, &[]);
        let (saved, in_transaction) = with_store(&db, &off, |s| {
            let alice = alice.clone();
            async move {
                let saved = s.save_record(&alice).await?;
                let loaded = s.load_dynamic(&pk(1)).await?.unwrap().version;
                Ok((saved, (loaded, s.load_record_version(&pk(1)).await?)))
            }
        })
        .await
        .unwrap();
        assert_eq!(saved.version, None, "a save without versions returns none");
        assert!(saved.created);
        assert_eq!(in_transaction, (None, None), "not even in its transaction");
        assert_eq!(
            parts(&db, 1).await,
            vec![RecordPart::Unsplit],
            "no key at suffix -1"
        );

        let tx = CountingTransaction::new(db.create_transaction().unwrap());
        let store = RecordStore::open(&tx, subspace(), off.clone())
            .await
            .unwrap();
        let data_key = store.layout().record_key(&pk(1), 0);
        tx.take_reads();
        let loaded = store.load_dynamic(&pk(1)).await.unwrap().unwrap();
        assert_eq!(tx.take_reads(), vec![Read::Get(data_key.clone())]);
        assert_eq!(loaded.version, None);
        assert_eq!(loaded.to_record::<User>().unwrap(), alice);
        assert_eq!(store.load_record_version(&pk(1)).await.unwrap(), None);
        assert_eq!(tx.take_reads(), vec![], "no read for a version not stored");
        let scanned = store
            .scan_records(&RecordRange::all(), ScanOptions::forward())
            .await
            .unwrap();
        assert_eq!(scanned.len(), 1);
        assert_eq!(scanned[0].version, None);
        drop(store);

        // The same load, with metadata that stores versions, reads the version too.
        let on = versions_metadata(2, true);
        let tx = CountingTransaction::new(db.create_transaction().unwrap());
        let store = RecordStore::open(&tx, subspace(), on).await.unwrap();
        tx.take_reads();
        store.load_dynamic(&pk(1)).await.unwrap().unwrap();
        let (data, version) = store.layout().record_data_and_version_keys(&pk(1));
        assert_eq!(tx.take_reads(), vec![Read::Get(data), Read::Get(version)]);
    });
}

#[test]
fn turning_versions_off_ignores_stored_versions_until_a_save_or_delete_clears_them() {
    block_on(async {
        let db = EmbeddedDatabase::in_memory().unwrap();
        let layout = fdb_records::layout::StoreLayout::new(subspace());
        let on = versions_metadata(1, true);
        with_store(&db, &on, |s| async move {
            for id in 1..=3 {
                s.save_record(&user(id, &format!("{id}@x"), 0, &[])).await?;
            }
            s.save_record(&big_user(4, 250_000)).await?;
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(
            parts(&db, 1).await,
            vec![RecordPart::Version, RecordPart::Unsplit]
        );
        // A lone version (no save leaves one) is corrupt while versions are stored...
        raw_set(&db, layout.record_version_key(&pk(9)), stored_version(0)).await;
        let err = with_store(&db, &on, |s| async move { s.load_dynamic(&pk(9)).await })
            .await
            .unwrap_err();
        assert!(
            matches!(err, RecordStoreError::CorruptRecord { .. }),
            "{err}"
        );

        // ... and no key at all once they are not. Stale versions are not even read:
        // an undecodable one next to a record's data changes nothing.
        let off = versions_metadata(2, false);
        with_store(&db, &off, |_| async move { Ok(()) })
            .await
            .unwrap();
        raw_set(&db, layout.record_version_key(&pk(3)), b"garbage".to_vec()).await;
        let tx = CountingTransaction::new(db.create_transaction().unwrap());
        let store = RecordStore::open(&tx, subspace(), off.clone())
            .await
            .unwrap();
        tx.take_reads();
        let one = store.load_dynamic(&pk(1)).await.unwrap().unwrap();
        assert_eq!(
            tx.take_reads(),
            vec![Read::Get(layout.record_key(&pk(1), 0))]
        );
        assert_eq!(one.version, None);
        let three = store.load_dynamic(&pk(3)).await.unwrap().unwrap();
        assert_eq!(
            (
                three.version,
                three.to_record::<User>().unwrap().email.as_str()
            ),
            (None, "3@x")
        );
        let split = store.load_dynamic(&pk(4)).await.unwrap().unwrap();
        assert!(split.values > 1 && split.version.is_none());
        assert_eq!(
            split.to_record::<User>().unwrap().avatar_hash.len(),
            250_000
        );
        assert_eq!(store.load_record_version(&pk(1)).await.unwrap(), None);
        assert!(store.load_dynamic(&pk(9)).await.unwrap().is_none());
        assert!(store.load_record::<User>(&pk(9)).await.unwrap().is_none());
        assert!(!store.exists(&pk(9)).await.unwrap());
        drop(store);
        assert_eq!(
            scanned_versions(&db, &off).await,
            vec![(1, None), (2, None), (3, None), (4, None)]
        );
        let report = with_store(&db, &off, |s| async move { check_store(&s).await })
            .await
            .unwrap();
        assert!(report.is_ok(), "{:?}", report.problems);
        assert_eq!(report.records_checked, 4);

        // A save or delete clears the record's whole range, stale version included.
        let (updated, deleted, inserted, count) = with_store(&db, &off, |s| async move {
            Ok((
                s.save_record(&user(1, "1@y", 0, &[])).await?,
                s.delete_record(&pk(2)).await?,
                s.save_record(&user(9, "9@x", 0, &[])).await?,
                s.record_count().await?,
            ))
        })
        .await
        .unwrap();
        assert!(!updated.created && updated.version.is_none());
        assert!(deleted);
        assert!(inserted.created, "a lone version is no record");
        assert_eq!(count, 4);
        assert_eq!(parts(&db, 1).await, vec![RecordPart::Unsplit]);
        assert_eq!(parts(&db, 2).await, vec![]);
        assert_eq!(
            parts(&db, 3).await,
            vec![RecordPart::Version, RecordPart::Unsplit],
            "a record not saved since keeps its stale version"
        );
        assert_eq!(parts(&db, 9).await, vec![RecordPart::Unsplit]);
        let report = with_store(&db, &off, |s| async move { check_store(&s).await })
            .await
            .unwrap();
        assert!(report.is_ok(), "{:?}", report.problems);
    });
}

#[test]
fn records_saved_without_versions_have_none_after_versions_are_turned_on() {
    block_on(async {
        let db = EmbeddedDatabase::in_memory().unwrap();
        let off = versions_metadata(1, false);
        with_store(&db, &off, |s| async move {
            s.save_record(&user(1, "1@x", 0, &[])).await?;
            s.save_record(&user(2, "2@x", 0, &[])).await?;
            Ok(())
        })
        .await
        .unwrap();
        let on = versions_metadata(2, true);
        let (loaded, version, saved) = with_store(&db, &on, |s| async move {
            Ok((
                s.load_dynamic(&pk(1)).await?.unwrap().version,
                s.load_record_version(&pk(1)).await?,
                s.save_record(&user(2, "2@y", 0, &[])).await?.version,
            ))
        })
        .await
        .unwrap();
        assert_eq!((loaded, version), (None, None));
        assert!(saved.is_some(), "a save stores a version again");
        let scanned = scanned_versions(&db, &on).await;
        assert_eq!(scanned[0], (1, None));
        assert!(scanned[1].1.is_some_and(|v| v.is_complete()));
        assert_eq!(
            parts(&db, 2).await,
            vec![RecordPart::Version, RecordPart::Unsplit]
        );
        // The checker says which records have no version yet.
        let report = with_store(&db, &on, |s| async move { check_store(&s).await })
            .await
            .unwrap();
        assert_eq!(
            report.problems,
            vec![Problem::MissingRecordVersion { primary_key: pk(1) }]
        );
    });
}

/// A transaction orders its versioned saves in the versionstamp's 2-byte user version:
/// the 65,537th save in one transaction is a typed error that writes nothing, and a
/// store keeping no versions has no such limit.
#[test]
fn versioned_saves_stop_at_65536_per_transaction_and_unversioned_ones_do_not() {
    const ORDERS: usize = 1 << 16;
    block_on(async {
        // Tens of thousands of saves take longer than FoundationDB's 5 s in a debug build.
        let db = EmbeddedDatabase::builder()
            .max_transaction_lifetime(std::time::Duration::from_secs(3600))
            .in_memory()
            .unwrap();
        // Saves of one record: each takes an order, the transaction stays small.
        let base_md = Arc::new(base(1).build().unwrap());
        let unversioned = Arc::new(base(1).store_record_versions(false).build().unwrap());
        let saves = |md: Arc<RecordMetaData>, count: usize| {
            let db = db.clone();
            async move {
                let tx = db.create_transaction().unwrap();
                let s = RecordStore::open(&tx, subspace(), md).await.unwrap();
                for i in 0..count {
                    s.save_record(&user(1, &format!("{i}"), 0, &[])).await?;
                }
                let last = s.save_record(&user(1, "last", 0, &[])).await;
                let loaded = s.load_record::<User>(&pk(1)).await.unwrap().unwrap();
                drop(s);
                tx.cancel();
                Ok::<_, RecordStoreError>((last, loaded.email))
            }
        };

        let (last, email) = saves(base_md, ORDERS).await.unwrap();
        assert!(
            matches!(last, Err(RecordStoreError::TooManySavesInTransaction)),
            "{last:?}"
        );
        assert_eq!(
            email,
            format!("{}", ORDERS - 1),
            "the failed save wrote nothing"
        );

        let (last, email) = saves(unversioned, ORDERS).await.unwrap();
        let saved = last.unwrap();
        assert_eq!(saved.version, None);
        assert_eq!(email, "last");
    });
}
