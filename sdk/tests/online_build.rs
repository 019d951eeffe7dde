//! Online index builds: complete builds, resume after an interruption without redoing
//! work, batch-size adaptation, uniqueness violations, and builds under concurrent
//! writers (and injected `commit_unknown_result`), checked against a recount.

mod common;

use common::store::*;
use common::{Order, User};
use fdb_records::backend::embedded::{EmbeddedDatabase, FaultConfig};
use fdb_records::key_expression::{empty, field, version};
use fdb_records::metadata::{Index, IndexType, RecordMetaData};
use fdb_records::store::{
    check_store, BuildConfig, IndexState, OnlineIndexBuilder, Problem, RecordRange,
    RecordStoreError, ScanOptions, TupleRange,
};
use foundationdb_tuple::Element;
use futures::executor::block_on;
use std::collections::BTreeMap;
use std::sync::Arc;

fn int(i: i64) -> Element<'static> {
    Element::Int(i)
}

const LATE: [&str; 5] = [
    "late_sum",
    "late_count",
    "late_email",
    "late_changes",
    "late_tag",
];

fn v1() -> Arc<RecordMetaData> {
    Arc::new(base(1).build().unwrap())
}

fn v2() -> Arc<RecordMetaData> {
    Arc::new(
        base(2)
            .index(
                Index::new(
                    "late_sum",
                    IndexType::Sum,
                    field("delta").group_by(field("user_id")),
                )
                .on(ORDER),
            )
            .index(
                Index::new(
                    "late_count",
                    IndexType::Count,
                    empty().group_by(field("tier")),
                )
                .on(USER),
            )
            .index(
                Index::new("late_email", IndexType::Value, field("email"))
                    .on(USER)
                    .unique(),
            )
            .index(
                Index::new("late_changes", IndexType::Version, version())
                    .on(USER)
                    .on(ORDER),
            )
            .index(Index::new("late_tag", IndexType::Value, field("tags").fan_out()).on(USER))
            .build()
            .unwrap(),
    )
}

fn record_user(id: i64, generation: i64) -> User {
    User {
        name: format!("{id}-{generation}"),
        ..user(
            id,
            &format!("u{id}@x"),
            ((id + generation) % 3) as i32,
            &["t", if generation % 2 == 0 { "even" } else { "odd" }],
        )
    }
}

/// Users 0..n and orders 100_000.. for each.
async fn populate(db: &EmbeddedDatabase, md: &Arc<RecordMetaData>, n: i64) {
    for chunk in (0..n).collect::<Vec<_>>().chunks(100) {
        let chunk = chunk.to_vec();
        with_store(db, md, |st| {
            let chunk = chunk.clone();
            async move {
                for id in chunk {
                    st.save_record(&record_user(id, 0)).await?;
                    st.save_record(&order(100_000 + id, id % 5, id * 3 - 200))
                        .await?;
                }
                Ok(())
            }
        })
        .await
        .unwrap();
    }
}

/// Expected sums and counts, recomputed from the records.
async fn recount(
    db: &EmbeddedDatabase,
    md: &Arc<RecordMetaData>,
) -> (BTreeMap<i64, i64>, BTreeMap<i64, i64>, usize) {
    let records = with_store(db, md, |st| async move {
        st.scan_records(&RecordRange::all(), ScanOptions::forward())
            .await
    })
    .await
    .unwrap();
    let (mut sums, mut counts) = (BTreeMap::new(), BTreeMap::new());
    for r in &records {
        if &*r.record_type == ORDER {
            let o: Order = r.to_record().unwrap();
            *sums.entry(o.user_id).or_insert(0) += o.delta;
        } else {
            let u: User = r.to_record().unwrap();
            *counts.entry(u.tier as i64).or_insert(0) += 1;
        }
    }
    (sums, counts, records.len())
}

async fn assert_indexes_match_records(db: &EmbeddedDatabase, md: &Arc<RecordMetaData>) {
    let report = with_store(db, md, |st| async move { check_store(&st).await })
        .await
        .unwrap();
    assert!(report.is_ok(), "{:#?}", report.problems);
    assert!(
        report.skipped_indexes.is_empty(),
        "{:?}",
        report.skipped_indexes
    );
    let (sums, counts, n) = recount(db, md).await;
    let (stored_sums, stored_counts, versions) = with_store(db, md, |st| async move {
        Ok((
            st.scan_aggregates("late_sum").await?,
            st.scan_aggregates("late_count").await?,
            st.changes_since("late_changes", &[], None, None)
                .await?
                .len(),
        ))
    })
    .await
    .unwrap();
    let as_map = |v: Vec<(Vec<Element<'static>>, i64)>| {
        v.into_iter()
            .filter(|(_, x)| *x != 0)
            .map(|(g, x)| match g.as_slice() {
                [Element::Int(k)] => (*k, x),
                other => panic!("{other:?}"),
            })
            .collect::<BTreeMap<_, _>>()
    };
    let nonzero = |m: BTreeMap<i64, i64>| {
        m.into_iter()
            .filter(|(_, v)| *v != 0)
            .collect::<BTreeMap<_, _>>()
    };
    assert_eq!(as_map(stored_sums), nonzero(sums));
    assert_eq!(as_map(stored_counts), nonzero(counts));
    assert_eq!(versions, n, "one version entry per record");
}

async fn build_all(db: &EmbeddedDatabase, md: &Arc<RecordMetaData>, config: BuildConfig) -> u64 {
    let mut indexed = 0;
    for name in LATE {
        // Interrupted after a few batches ("crash"), then resumed by a fresh builder.
        if config.max_transactions.is_none() {
            let first = OnlineIndexBuilder::new(db.clone(), subspace(), md.clone(), name)
                .config(BuildConfig {
                    max_transactions: Some(4),
                    ..config.clone()
                })
                .build()
                .await
                .unwrap();
            indexed += first.records_indexed;
        }
        let report = OnlineIndexBuilder::new(db.clone(), subspace(), md.clone(), name)
            .config(config.clone())
            .build()
            .await
            .unwrap();
        assert!(report.complete && report.readable, "{name}: {report:?}");
        indexed += report.records_indexed;
    }
    indexed
}

#[test]
fn builds_new_indexes_over_existing_records_and_marks_them_readable() {
    block_on(async {
        let db = EmbeddedDatabase::in_memory().unwrap();
        populate(&db, &v1(), 300).await;
        let md = v2();
        let states = with_store(&db, &md, |st| async move {
            Ok(LATE
                .iter()
                .map(|n| st.index_state(n).unwrap())
                .collect::<Vec<_>>())
        })
        .await
        .unwrap();
        assert!(states.iter().all(|s| *s == IndexState::WriteOnly));
        let indexed = build_all(
            &db,
            &md,
            BuildConfig {
                initial_batch: 50,
                ..BuildConfig::default()
            },
        )
        .await;
        // Users are in 4 of the indexes, orders in 2: 300*4 + 300*2.
        assert_eq!(indexed, 1800);
        assert_indexes_match_records(&db, &md).await;
        let tags = with_store(&db, &md, |st| async move {
            st.scan_index(
                "late_tag",
                &TupleRange::prefix(vec![Element::String("even".into())]),
                ScanOptions::forward(),
            )
            .await
        })
        .await
        .unwrap();
        assert_eq!(tags.len(), 300);
    });
}

#[test]
fn an_interrupted_build_resumes_without_redoing_finished_ranges() {
    block_on(async {
        let db = EmbeddedDatabase::in_memory().unwrap();
        populate(&db, &v1(), 200).await;
        let md = v2();
        let config = BuildConfig {
            initial_batch: 20,
            max_batch: 20,
            max_transactions: Some(3),
            ..BuildConfig::default()
        };
        let first = OnlineIndexBuilder::new(db.clone(), subspace(), md.clone(), "late_count")
            .config(config)
            .build()
            .await
            .unwrap();
        assert!(!first.complete && !first.readable);
        assert_eq!(first.transactions, 3);
        assert_eq!(first.records_indexed, 60, "3 batches of 20 users");
        let err = with_store(&db, &md, |st| async move {
            st.count("late_count", &[int(0)]).await
        })
        .await
        .unwrap_err();
        assert!(
            matches!(err, RecordStoreError::IndexNotReadable { .. }),
            "{err}"
        );
        // Writers meanwhile: a user in the built range moves group (the writer maintains
        // the index), a new user beyond it is left to the builder.
        with_store(&db, &md, |st| async move {
            st.save_record(&record_user(5, 1)).await?;
            st.save_record(&record_user(999_999, 0)).await?;
            Ok(())
        })
        .await
        .unwrap();
        // A fresh builder (as after a crash) picks up where the first stopped.
        let second = OnlineIndexBuilder::new(db.clone(), subspace(), md.clone(), "late_count")
            .build()
            .await
            .unwrap();
        assert!(second.complete && second.readable);
        assert_eq!(
            first.records_indexed + second.records_indexed,
            201,
            "every user indexed once, by the builder or by its writer; finished ranges not redone"
        );
        for name in LATE.iter().filter(|n| **n != "late_count") {
            OnlineIndexBuilder::new(db.clone(), subspace(), md.clone(), *name)
                .build()
                .await
                .unwrap();
        }
        assert_indexes_match_records(&db, &md).await;
    });
}

#[test]
fn batch_size_shrinks_when_a_batch_is_too_large() {
    block_on(async {
        let db = EmbeddedDatabase::in_memory().unwrap();
        populate(&db, &v1(), 150).await;
        let md = v2();
        let report = OnlineIndexBuilder::new(db.clone(), subspace(), md.clone(), "late_email")
            .config(BuildConfig {
                initial_batch: 1000,
                transaction_size_limit: Some(4_000),
                ..BuildConfig::default()
            })
            .build()
            .await
            .unwrap();
        assert!(report.complete && report.readable, "{report:?}");
        assert!(report.shrinks >= 3, "{report:?}");
        assert!(report.final_batch < 1000, "{report:?}");
        assert!(report.transactions > 3, "{report:?}");
        assert_eq!(report.records_indexed, 150);
    });
}

#[test]
fn uniqueness_violations_are_reported_and_the_index_stays_write_only() {
    block_on(async {
        let db = EmbeddedDatabase::in_memory().unwrap();
        with_store(&db, &v1(), |st| async move {
            st.save_record(&user(1, "dup@x", 0, &[])).await?;
            st.save_record(&user(2, "ok@x", 0, &[])).await?;
            st.save_record(&user(3, "dup@x", 0, &[])).await?;
            Ok(())
        })
        .await
        .unwrap();
        let md = v2();
        let report = OnlineIndexBuilder::new(db.clone(), subspace(), md.clone(), "late_email")
            .config(BuildConfig {
                initial_batch: 1,
                max_batch: 1,
                ..BuildConfig::default()
            })
            .build()
            .await
            .unwrap();
        assert!(report.complete && !report.readable);
        let dup = vec![Element::String("dup@x".into())];
        assert_eq!(
            report.uniqueness_violations,
            vec![(dup.clone(), vec![int(1)]), (dup, vec![int(3)])]
        );
        let state = with_store(&db, &md, |st| async move { st.index_state("late_email") })
            .await
            .unwrap();
        assert_eq!(state, IndexState::WriteOnly);
    });
}

/// One writer's operations: updates (group moves), inserts and deletes.
async fn write_load(
    db: &EmbeddedDatabase,
    md: &Arc<RecordMetaData>,
    seed: u64,
    ops: usize,
    n: i64,
) {
    let mut rng = seed.wrapping_mul(0x9E3779B97F4A7C15) | 1;
    let mut next = |m: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % m
    };
    for i in 0..ops {
        let id = next(n as u64 + 50) as i64;
        let kind = next(4);
        let generation = (seed * 1000 + i as u64) as i64;
        with_store(db, md, |st| async move {
            match kind {
                0 => {
                    st.save_record(&record_user(id, generation)).await?;
                }
                1 => {
                    st.save_record(&order(100_000 + id, generation % 5, generation % 101 - 50))
                        .await?;
                }
                2 => {
                    st.delete_record(&[int(100_000 + id)]).await?;
                }
                _ => {
                    st.delete_record(&[int(id)]).await?;
                }
            }
            Ok(())
        })
        .await
        .unwrap();
    }
}

#[test]
fn builds_stay_exact_under_concurrent_writers_on_one_thread_and_on_threads() {
    let db = EmbeddedDatabase::in_memory().unwrap();
    block_on(populate(&db, &v1(), 400));
    let md = v2();
    block_on(with_store(&db, &md, |_| async move { Ok(()) })).unwrap(); // upgrade to v2
    let threads: Vec<_> = (0..2)
        .map(|t| {
            let (db, md) = (db.clone(), md.clone());
            std::thread::spawn(move || block_on(write_load(&db, &md, 100 + t, 120, 400)))
        })
        .collect();
    block_on(async {
        let config = BuildConfig {
            initial_batch: 16,
            max_batch: 64,
            ..BuildConfig::default()
        };
        futures::join!(
            build_all(&db, &md, config),
            write_load(&db, &md, 7, 150, 400)
        );
    });
    for t in threads {
        t.join().unwrap();
    }
    // The builder and the writers did contend (measured: 20-50 rejected commits).
    assert!(db.stats().rejected > 0, "{:?}", db.stats());
    block_on(assert_indexes_match_records(&db, &md));
    block_on(assert_equal_to_rebuilt(&db, &md));
}

/// Adds copies of two built indexes, builds them on the now quiet store, and compares.
async fn assert_equal_to_rebuilt(db: &EmbeddedDatabase, md: &Arc<RecordMetaData>) {
    let mut b = base(3);
    for index in md.indexes().values() {
        b = b.index(index.clone());
    }
    let mut copy_sum = md.index("late_sum").unwrap().clone();
    copy_sum.name = "copy_sum".into();
    let mut copy_tag = md.index("late_tag").unwrap().clone();
    copy_tag.name = "copy_tag".into();
    let v3 = Arc::new(b.index(copy_sum).index(copy_tag).build().unwrap());
    for name in ["copy_sum", "copy_tag"] {
        let report = OnlineIndexBuilder::new(db.clone(), subspace(), v3.clone(), name)
            .build()
            .await
            .unwrap();
        assert!(report.readable);
    }
    let (built, rebuilt, built_tags, rebuilt_tags) = with_store(db, &v3, |st| async move {
        let all = TupleRange::all();
        let f = ScanOptions::forward();
        Ok((
            st.scan_aggregates("late_sum").await?,
            st.scan_aggregates("copy_sum").await?,
            st.scan_index("late_tag", &all, f).await?,
            st.scan_index("copy_tag", &all, f).await?,
        ))
    })
    .await
    .unwrap();
    let nonzero = |v: Vec<(Vec<Element<'static>>, i64)>| {
        v.into_iter().filter(|(_, x)| *x != 0).collect::<Vec<_>>()
    };
    assert_eq!(
        nonzero(built),
        nonzero(rebuilt),
        "online-built SUM equals one rebuilt from scratch"
    );
    assert_eq!(
        built_tags, rebuilt_tags,
        "online-built VALUE index equals one rebuilt from scratch"
    );
    assert!(!built_tags.is_empty());
}

#[test]
fn builds_stay_exact_with_writers_and_commit_unknown_result() {
    let db = EmbeddedDatabase::in_memory().unwrap();
    block_on(populate(&db, &v1(), 200));
    let md = v2();
    block_on(with_store(&db, &md, |_| async move { Ok(()) })).unwrap();
    db.set_faults(Some(FaultConfig {
        unknown_result_committed: 0.1,
        unknown_result_not_committed: 0.1,
        spurious_not_committed: 0.05,
        ..FaultConfig::none(42)
    }));
    let writer = {
        let (db, md) = (db.clone(), md.clone());
        std::thread::spawn(move || block_on(write_load(&db, &md, 5, 100, 200)))
    };
    block_on(async {
        let config = BuildConfig {
            initial_batch: 10,
            max_batch: 40,
            ..BuildConfig::default()
        };
        futures::join!(
            build_all(&db, &md, config),
            write_load(&db, &md, 9, 100, 200)
        );
    });
    writer.join().unwrap();
    db.set_faults(None);
    assert!(db.stats().rejected > 20, "{:?}", db.stats());
    block_on(assert_indexes_match_records(&db, &md));
    block_on(assert_equal_to_rebuilt(&db, &md));
}

/// Saves users `ids` again, as their next generation.
async fn save_again(db: &EmbeddedDatabase, md: &Arc<RecordMetaData>, ids: std::ops::Range<i64>) {
    with_store(db, md, |st| {
        let ids = ids.clone();
        async move {
            for id in ids {
                st.save_record(&record_user(id, 1)).await?;
            }
            Ok(())
        }
    })
    .await
    .unwrap();
}

#[test]
fn builds_run_over_records_saved_with_and_without_versions() {
    block_on(async {
        let db = EmbeddedDatabase::in_memory().unwrap();
        let email = || {
            Index::new("late_email", IndexType::Value, field("email"))
                .on(USER)
                .unique()
        };
        let build = |md: Arc<RecordMetaData>, name: &'static str| {
            let db = db.clone();
            async move {
                let report = OnlineIndexBuilder::new(db, subspace(), md, name)
                    .build()
                    .await
                    .unwrap();
                assert!(report.readable, "{name}: {report:?}");
                report.records_indexed
            }
        };
        // Saved with versions; then versions off and a new index, built over records
        // that still hold their old versions.
        populate(&db, &v1(), 50).await;
        let off = Arc::new(
            base(2)
                .store_record_versions(false)
                .index(email())
                .build()
                .unwrap(),
        );
        assert_eq!(build(off.clone(), "late_email").await, 50);
        // Users 40..50 saved again: without a version from now on.
        save_again(&db, &off, 40..50).await;
        let report = with_store(&db, &off, |st| async move { check_store(&st).await })
            .await
            .unwrap();
        assert!(report.is_ok(), "{:?}", report.problems);

        // Versions on again with a VERSION index, and users 0..3 saved again. A version
        // key, where one is left, belongs to the record's current data (every save
        // clears the record's keys): users 3..40 are indexed at their first version,
        // users 0..3 at their new one, users 40..50 not at all.
        let on = Arc::new(
            base(3)
                .index(email())
                .index(Index::new("late_changes", IndexType::Version, version()).on(USER))
                .build()
                .unwrap(),
        );
        save_again(&db, &on, 0..3).await;
        build(on.clone(), "late_changes").await;
        let (changes, report) = with_store(&db, &on, |st| async move {
            Ok((
                st.changes_since("late_changes", &[], None, None).await?,
                check_store(&st).await?,
            ))
        })
        .await
        .unwrap();
        let changed: Vec<_> = changes.iter().map(|e| e.primary_key.clone()).collect();
        let in_commit_order: Vec<_> = (3..40).chain(0..3).map(|id| vec![int(id)]).collect();
        assert_eq!(changed, in_commit_order);
        // The checker lists the records that have no version yet, and nothing else.
        let missing: Vec<_> = (40..50)
            .map(|id| Problem::MissingRecordVersion {
                primary_key: vec![int(id)],
            })
            .collect();
        assert_eq!(report.problems, missing);
    });
}
