//! Index maintainers through insert, update (group moves), delete and retries after
//! `commit_unknown_result`; uniqueness; index scans and aggregate reads; VERSION index
//! change feeds across restarts; index states.

mod common;

use common::store::*;
use common::{Order, User};
use fdb_records::backend::embedded::{EmbeddedDatabase, FaultConfig};
use fdb_records::key_expression::field;
use fdb_records::kv::{Database, FdbError, RangeOption, Transaction};
use fdb_records::metadata::{Index, IndexType};
use fdb_records::store::{
    IndexState, RecordStore, RecordStoreError, RecordVersion, ScanOptions, TupleRange,
};
use foundationdb_tuple::Element;
use futures::executor::block_on;
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

fn int(i: i64) -> Element<'static> {
    Element::Int(i)
}
fn s(v: &str) -> Element<'static> {
    Element::String(v.to_string().into())
}

async fn entries(
    db: &EmbeddedDatabase,
    md: &Arc<fdb_records::metadata::RecordMetaData>,
    index: &'static str,
    range: TupleRange,
    options: ScanOptions,
) -> Vec<(Vec<Element<'static>>, i64)> {
    with_store(db, md, |st| {
        let range = range.clone();
        async move { st.scan_index(index, &range, options).await }
    })
    .await
    .unwrap()
    .into_iter()
    .map(|e| match e.primary_key.as_slice() {
        [Element::Int(pk)] => (e.values, *pk),
        other => panic!("{other:?}"),
    })
    .collect()
}

#[test]
fn value_index_follows_inserts_updates_and_deletes_with_fan_out() {
    block_on(async {
        let db = EmbeddedDatabase::in_memory().unwrap();
        let md = metadata();
        with_store(&db, &md, |st| async move {
            st.save_record(&user(1, "a", 0, &["x", "y"])).await?;
            st.save_record(&user(2, "b", 0, &["y"])).await?;
            st.save_record(&user(3, "c", 0, &[])).await?;
            Ok(())
        })
        .await
        .unwrap();
        let all = entries(
            &db,
            &md,
            "by_tag",
            TupleRange::all(),
            ScanOptions::forward(),
        )
        .await;
        assert_eq!(
            all,
            vec![(vec![s("x")], 1), (vec![s("y")], 1), (vec![s("y")], 2)],
            "one entry per element; none for an empty list"
        );
        // Update: 1 drops x, gains z; delete 2.
        with_store(&db, &md, |st| async move {
            st.save_record(&user(1, "a", 0, &["y", "z"])).await?;
            st.delete_record(&[int(2)]).await?;
            Ok(())
        })
        .await
        .unwrap();
        let all = entries(
            &db,
            &md,
            "by_tag",
            TupleRange::all(),
            ScanOptions::forward(),
        )
        .await;
        assert_eq!(all, vec![(vec![s("y")], 1), (vec![s("z")], 1)]);
    });
}

#[test]
fn index_scans_by_value_range_prefix_and_direction_returning_entries_or_records() {
    block_on(async {
        let db = EmbeddedDatabase::in_memory().unwrap();
        let md = metadata();
        with_store(&db, &md, |st| async move {
            for (id, email) in [(1, "d"), (2, "a"), (3, "c"), (4, "e"), (5, "b")] {
                st.save_record(&user(id, email, 0, &[])).await?;
            }
            Ok(())
        })
        .await
        .unwrap();
        let pks =
            |v: Vec<(Vec<Element<'static>>, i64)>| v.into_iter().map(|e| e.1).collect::<Vec<_>>();
        let f = ScanOptions::forward();
        assert_eq!(
            pks(entries(&db, &md, "by_email", TupleRange::all(), f).await),
            vec![2, 5, 3, 1, 4]
        );
        assert_eq!(
            pks(entries(
                &db,
                &md,
                "by_email",
                TupleRange::all(),
                ScanOptions::reverse()
            )
            .await),
            vec![4, 1, 3, 5, 2]
        );
        assert_eq!(
            pks(entries(&db, &md, "by_email", TupleRange::prefix(vec![s("c")]), f).await),
            vec![3]
        );
        assert_eq!(
            pks(entries(
                &db,
                &md,
                "by_email",
                TupleRange::between_inclusive(vec![s("b")], vec![s("d")]),
                f
            )
            .await),
            vec![5, 3, 1]
        );
        let excl = TupleRange::new(Bound::Excluded(vec![s("b")]), Bound::Excluded(vec![s("d")]));
        assert_eq!(
            pks(entries(&db, &md, "by_email", excl.clone(), f).await),
            vec![3]
        );
        assert_eq!(
            pks(entries(
                &db,
                &md,
                "by_email",
                TupleRange::new(Bound::Included(vec![s("b")]), Bound::Unbounded),
                ScanOptions::reverse().with_limit(2)
            )
            .await),
            vec![4, 1]
        );
        let records = with_store(&db, &md, |st| async move {
            st.scan_index_records(
                "by_email",
                &TupleRange::between_inclusive(vec![s("a")], vec![s("b")]),
                ScanOptions::forward(),
            )
            .await
        })
        .await
        .unwrap();
        let users: Vec<User> = records
            .iter()
            .map(|(_, r)| r.to_record().unwrap())
            .collect();
        assert_eq!(users, vec![user(2, "a", 0, &[]), user(5, "b", 0, &[])]);
        // Wrong kind of read on an index: typed errors.
        let err = with_store(
            &db,
            &md,
            |st| async move { st.count("by_email", &[]).await },
        )
        .await
        .unwrap_err();
        assert!(
            matches!(err, RecordStoreError::WrongIndexType { .. }),
            "{err}"
        );
        let err = with_store(&db, &md, |st| async move {
            st.scan_index("nope", &TupleRange::all(), ScanOptions::forward())
                .await
        })
        .await
        .unwrap_err();
        assert!(
            matches!(err, RecordStoreError::UnknownIndex { .. }),
            "{err}"
        );
    });
}

#[test]
fn unique_index_rejects_duplicates_naming_index_and_holder_and_writes_nothing() {
    block_on(async {
        let db = EmbeddedDatabase::in_memory().unwrap();
        let md = metadata();
        with_store(&db, &md, |st| async move {
            st.save_record(&user(1, "same@x", 0, &["t"])).await
        })
        .await
        .unwrap();
        let err = with_store(&db, &md, |st| async move {
            st.save_record(&user(2, "same@x", 1, &["u"])).await
        })
        .await
        .unwrap_err();
        match &err {
            RecordStoreError::UniquenessViolation {
                index,
                values,
                existing_primary_key,
            } => {
                assert_eq!(index, "by_email");
                assert_eq!(values, &vec![s("same@x")]);
                assert_eq!(existing_primary_key, &vec![int(1)]);
            }
            other => panic!("{other}"),
        }
        assert_eq!(
            err.to_string(),
            "unique index `by_email`: values (\"same@x\") already belong to record (1)"
        );
        let (exists, users, tags, tier1) = with_store(&db, &md, |st| async move {
            Ok((
                st.exists(&[int(2)]).await?,
                st.count("users", &[]).await?,
                st.scan_index("by_tag", &TupleRange::all(), ScanOptions::forward())
                    .await?
                    .len(),
                st.count("per_tier", &[int(1)]).await?,
            ))
        })
        .await
        .unwrap();
        assert_eq!(
            (exists, users, tags, tier1),
            (false, 1, 1, 0),
            "nothing of the failed save was written"
        );
        // Re-saving the holder with its own value is fine; once it moves away the value is free.
        with_store(&db, &md, |st| async move {
            st.save_record(&user(1, "same@x", 2, &[])).await?;
            st.save_record(&user(1, "other@x", 2, &[])).await?;
            st.save_record(&user(2, "same@x", 2, &[])).await
        })
        .await
        .unwrap();
    });
}

#[test]
fn count_indexes_move_groups_and_count_set_fields() {
    block_on(async {
        let db = EmbeddedDatabase::in_memory().unwrap();
        let md = metadata();
        let aged = |id, tier, age| User {
            age,
            ..user(id, &format!("u{id}"), tier, &[])
        };
        with_store(&db, &md, |st| async move {
            st.save_record(&aged(1, 0, Some(30))).await?;
            st.save_record(&aged(2, 0, None)).await?;
            st.save_record(&aged(3, 1, Some(0))).await?;
            Ok(())
        })
        .await
        .unwrap();
        let read = || {
            with_store(&db, &md, |st| async move {
                Ok([
                    st.count("per_tier", &[int(0)]).await?,
                    st.count("per_tier", &[int(1)]).await?,
                    st.count("users", &[]).await?,
                    st.count("with_age", &[int(0)]).await?,
                    st.count("with_age", &[int(1)]).await?,
                ])
            })
        };
        assert_eq!(read().await.unwrap(), [2, 1, 3, 1, 1]);
        // Move 1 to tier 1 and drop its age; give 2 an age.
        with_store(&db, &md, |st| async move {
            st.save_record(&aged(1, 1, None)).await?;
            st.save_record(&aged(2, 0, Some(5))).await?;
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(read().await.unwrap(), [1, 2, 3, 1, 1]);
        with_store(
            &db,
            &md,
            |st| async move { st.delete_record(&[int(3)]).await },
        )
        .await
        .unwrap();
        assert_eq!(read().await.unwrap(), [1, 1, 2, 1, 0]);
        let groups = with_store(&db, &md, |st| async move {
            st.scan_aggregates("per_tier").await
        })
        .await
        .unwrap();
        assert_eq!(groups, vec![(vec![int(0)], 1), (vec![int(1)], 1)]);
    });
}

#[test]
fn sum_min_and_max_handle_negatives_and_extremes() {
    block_on(async {
        let db = EmbeddedDatabase::in_memory().unwrap();
        let md = metadata();
        with_store(&db, &md, |st| async move {
            for (id, user_id, delta) in [
                (1, 7, -5),
                (2, 7, 3),
                (3, 7, 0),
                (4, 8, i64::MAX),
                (5, 9, i64::MIN),
                (6, 9, -1),
            ] {
                st.save_record(&order(id, user_id, delta)).await?;
            }
            Ok(())
        })
        .await
        .unwrap();
        let read = |g: i64| {
            with_store(&db, &md, move |st| async move {
                Ok((
                    st.sum("delta_sum", &[int(g)]).await?,
                    st.min_max_ever("delta_min", &[int(g)]).await?,
                    st.min_max_ever("delta_max", &[int(g)]).await?,
                ))
            })
        };
        assert_eq!(read(7).await.unwrap(), (-2, Some(-5), Some(3)));
        assert_eq!(
            read(8).await.unwrap(),
            (i64::MAX, Some(i64::MAX), Some(i64::MAX))
        );
        // i64::MIN + -1: the sum wraps like i64 arithmetic (documented).
        assert_eq!(read(9).await.unwrap(), (i64::MAX, Some(i64::MIN), Some(-1)));
        assert_eq!(read(10).await.unwrap(), (0, None, None));
        // Update moves an order to another user and changes its amount; delete another.
        with_store(&db, &md, |st| async move {
            st.save_record(&order(1, 8, -100)).await?;
            st.delete_record(&[int(2)]).await?;
            Ok(())
        })
        .await
        .unwrap();
        // Sums follow exactly; min/max are "ever": 7 keeps -5 and 3.
        assert_eq!(read(7).await.unwrap(), (0, Some(-5), Some(3)));
        assert_eq!(
            read(8).await.unwrap(),
            (i64::MAX - 100, Some(-100), Some(i64::MAX))
        );
    });
}

#[test]
fn version_index_returns_changes_since_a_version_in_commit_order_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.redb");
    let md = metadata();
    let mut commits = Vec::new();
    {
        let db = EmbeddedDatabase::open(&path).unwrap();
        block_on(async {
            for (id, email) in [(1, "a"), (2, "b"), (3, "c")] {
                let outcome = fdb_records::kv::run(&db, |tx, _| {
                    let md = md.clone();
                    async move {
                        let st = RecordStore::open(&tx, subspace(), md).await?;
                        Ok::<_, RecordStoreError>(
                            st.save_record(&user(id, email, 0, &[]))
                                .await?
                                .version
                                .expect("the metadata stores versions"),
                        )
                    }
                })
                .await
                .unwrap();
                commits.push(
                    outcome
                        .value
                        .complete_with(outcome.committed.versionstamp.unwrap()),
                );
            }
        });
    }
    // Restart: reopen the file; update 1 (moves it to the end), save an order.
    let db = EmbeddedDatabase::open(&path).unwrap();
    block_on(async {
        let changes = |after: Option<RecordVersion>| {
            with_store(&db, &md, move |st| async move {
                st.changes_since("changes", &[], after, None).await
            })
        };
        let all = changes(None).await.unwrap();
        assert_eq!(
            all.iter()
                .map(|e| e.primary_key.clone())
                .collect::<Vec<_>>(),
            vec![vec![int(1)], vec![int(2)], vec![int(3)]]
        );
        assert_eq!(
            all.iter().map(|e| e.version.unwrap()).collect::<Vec<_>>(),
            commits
        );
        let since_first = changes(Some(commits[0])).await.unwrap();
        assert_eq!(since_first.len(), 2);
        with_store(&db, &md, |st| async move {
            st.save_record(&user(1, "a2", 0, &[])).await?;
            st.save_record(&order(10, 1, 5)).await?;
            Ok(())
        })
        .await
        .unwrap();
        let since = changes(Some(commits[2])).await.unwrap();
        assert_eq!(
            since
                .iter()
                .map(|e| e.primary_key.clone())
                .collect::<Vec<_>>(),
            vec![vec![int(1)], vec![int(10)]]
        );
        assert!(since[0].version < since[1].version, "in-transaction order");
        let all = changes(None).await.unwrap();
        assert_eq!(
            all.len(),
            4,
            "one entry per record: the update removed 1's old entry"
        );
        // Deleting removes the entry.
        with_store(
            &db,
            &md,
            |st| async move { st.delete_record(&[int(2)]).await },
        )
        .await
        .unwrap();
        assert_eq!(changes(None).await.unwrap().len(), 3);
        // Saved then deleted / saved twice in one transaction: the pending entry is cancelled.
        with_store(&db, &md, |st| async move {
            st.save_record(&user(20, "t", 0, &[])).await?;
            st.delete_record(&[int(20)]).await?;
            st.save_record(&user(21, "u", 0, &[])).await?;
            st.save_record(&user(21, "v", 0, &[])).await?;
            Ok(())
        })
        .await
        .unwrap();
        let all = changes(None).await.unwrap();
        assert_eq!(all.len(), 4);
        assert_eq!(all.last().unwrap().primary_key, vec![int(21)]);
    });
}

#[test]
fn concurrent_writers_never_conflict_on_aggregates_or_version_entries() {
    block_on(async {
        let db = EmbeddedDatabase::in_memory().unwrap();
        let md = metadata();
        // The store exists (creating it writes the header, which would conflict).
        with_store(&db, &md, |_| async move { Ok(()) })
            .await
            .unwrap();
        // Two transactions with overlapping lifetimes add to the same groups.
        let t1 = db.create_transaction().unwrap();
        let t2 = db.create_transaction().unwrap();
        let s1 = RecordStore::open(&t1, subspace(), md.clone())
            .await
            .unwrap();
        let s2 = RecordStore::open(&t2, subspace(), md.clone())
            .await
            .unwrap();
        s1.save_record(&order(1, 7, 10)).await.unwrap();
        s2.save_record(&order(2, 7, 20)).await.unwrap();
        s1.save_record(&user(101, "a", 0, &[])).await.unwrap();
        s2.save_record(&user(102, "b", 0, &[])).await.unwrap();
        drop((s1, s2));
        t1.commit().await.unwrap();
        t2.commit()
            .await
            .expect("no conflict: aggregates are atomic, versions versionstamped");
        let (sum, users) = with_store(&db, &md, |st| async move {
            Ok((
                st.sum("delta_sum", &[int(7)]).await?,
                st.count("users", &[]).await?,
            ))
        })
        .await
        .unwrap();
        assert_eq!((sum, users), (30, 2));
    });
}

/// The model of the store: what the indexes must say.
#[derive(Default)]
struct Model {
    users: BTreeMap<i64, User>,
    orders: BTreeMap<i64, Order>,
}

#[test]
fn retries_after_commit_unknown_result_never_double_count() {
    let md = metadata();
    for seed in 0..3u64 {
        let db = EmbeddedDatabase::builder()
            .faults(FaultConfig {
                unknown_result_committed: 0.25,
                unknown_result_not_committed: 0.25,
                ..FaultConfig::none(seed)
            })
            .in_memory()
            .unwrap();
        let mut model = Model::default();
        let mut rng = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mut next = |n: u64| {
            rng = rng
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (rng >> 33) % n
        };
        block_on(async {
            for _ in 0..150 {
                let id = next(12) as i64;
                match next(5) {
                    0 | 1 => {
                        let o = order(id, next(3) as i64, next(2000) as i64 - 1000);
                        with_store(&db, &md, |st| {
                            let o = o.clone();
                            async move { st.save_record(&o).await }
                        })
                        .await
                        .unwrap();
                        model.orders.insert(id, o);
                        model.users.remove(&id);
                    }
                    2 => {
                        let u = User {
                            age: (next(2) == 0).then_some(id as i32),
                            ..user(id, &format!("u{id}@{}", next(3)), next(3) as i32, &["t"])
                        };
                        let saved = with_store(&db, &md, |st| {
                            let u = u.clone();
                            async move { st.save_record(&u).await }
                        })
                        .await;
                        match saved {
                            Ok(_) => {
                                model.users.insert(id, u);
                                model.orders.remove(&id);
                            }
                            Err(RecordStoreError::UniquenessViolation { .. }) => {
                                assert!(model
                                    .users
                                    .values()
                                    .any(|o| o.email == u.email && o.id != id));
                            }
                            Err(e) => panic!("{e}"),
                        }
                    }
                    3 => {
                        // Delete twice in one transaction: the second is a no-op.
                        with_store(&db, &md, |st| async move {
                            st.delete_record(&[int(id)]).await?;
                            st.delete_record(&[int(id)]).await
                        })
                        .await
                        .unwrap();
                        model.users.remove(&id);
                        model.orders.remove(&id);
                    }
                    _ => {
                        with_store(
                            &db,
                            &md,
                            |st| async move { st.delete_record(&[int(id)]).await },
                        )
                        .await
                        .unwrap();
                        model.orders.remove(&id);
                        model.users.remove(&id);
                    }
                }
            }
            db.set_faults(None);
            // Users and orders share primary keys (both keyed by an int): the model keeps
            // whichever was saved last under an id.
            let check = with_store(&db, &md, |st| async move {
                let mut sums = BTreeMap::new();
                for g in 0..3 {
                    sums.insert(g, st.sum("delta_sum", &[int(g)]).await?);
                }
                let mut tiers = BTreeMap::new();
                for g in 0..3 {
                    tiers.insert(g, st.count("per_tier", &[int(g)]).await?);
                }
                Ok((
                    sums,
                    tiers,
                    st.count("users", &[]).await?,
                    st.record_count().await?,
                    st.changes_since("changes", &[], None, None).await?.len(),
                ))
            })
            .await
            .unwrap();
            let stored = with_store(&db, &md, |st| async move {
                st.scan_records(
                    &fdb_records::store::RecordRange::all(),
                    ScanOptions::forward(),
                )
                .await
            })
            .await
            .unwrap();
            let mut exp_sums: BTreeMap<i64, i64> = (0..3).map(|g| (g, 0)).collect();
            let mut exp_tiers: BTreeMap<i64, i64> = (0..3).map(|g| (g, 0)).collect();
            let mut users = 0;
            for r in &stored {
                if &*r.record_type == ORDER {
                    let o: Order = r.to_record().unwrap();
                    *exp_sums.get_mut(&o.user_id).unwrap() += o.delta;
                } else {
                    let u: User = r.to_record().unwrap();
                    *exp_tiers.get_mut(&(u.tier as i64)).unwrap() += 1;
                    users += 1;
                }
            }
            assert_eq!(check.0, exp_sums, "seed {seed}: sums");
            assert_eq!(check.1, exp_tiers, "seed {seed}: counts");
            assert_eq!(check.2, users, "seed {seed}: ungrouped count");
            assert_eq!(check.3, stored.len() as i64, "seed {seed}: record count");
            assert_eq!(
                check.4,
                stored.len(),
                "seed {seed}: one version entry per record"
            );
            // Every other index (value, unique, not-null count, min/max, version) agrees
            // with the records too.
            let report = with_store(&db, &md, |st| async move {
                fdb_records::store::check_store(&st).await
            })
            .await
            .unwrap();
            assert!(report.is_ok(), "seed {seed}: {:#?}", report.problems);
            assert_eq!(report.records_checked, stored.len() as u64);
            // And the store holds exactly what the model says.
            assert_eq!(
                stored.len(),
                model.users.len() + model.orders.len(),
                "seed {seed}"
            );
            for r in &stored {
                if &*r.record_type == ORDER {
                    let o: Order = r.to_record().unwrap();
                    assert_eq!(model.orders.get(&o.order_id), Some(&o), "seed {seed}");
                } else {
                    let u: User = r.to_record().unwrap();
                    assert_eq!(model.users.get(&u.id), Some(&u), "seed {seed}");
                }
            }
        });
        let stats = db.stats();
        assert!(stats.rejected > 10, "faults fired: {stats:?}");
    }
}

#[test]
fn reading_a_write_only_index_is_a_typed_error_and_writers_skip_unbuilt_ranges() {
    block_on(async {
        let db = EmbeddedDatabase::in_memory().unwrap();
        let v1 = Arc::new(base(1).build().unwrap());
        with_store(&db, &v1, |st| async move {
            st.save_record(&order(1, 7, 5)).await
        })
        .await
        .unwrap();
        // Version 2 adds a SUM index to a non-empty store: it starts write-only.
        let v2 = Arc::new(
            base(2)
                .index(
                    Index::new(
                        "late_sum",
                        IndexType::Sum,
                        field("delta").group_by(field("user_id")),
                    )
                    .on(ORDER),
                )
                .build()
                .unwrap(),
        );
        let (state, err) = with_store(&db, &v2, |st| async move {
            st.save_record(&order(2, 7, 6)).await?;
            Ok((
                st.index_state("late_sum")?,
                st.sum("late_sum", &[int(7)]).await.err(),
            ))
        })
        .await
        .unwrap();
        assert_eq!(state, IndexState::WriteOnly);
        match err {
            Some(RecordStoreError::IndexNotReadable { index, state }) => {
                assert_eq!((index.as_str(), state), ("late_sum", IndexState::WriteOnly));
            }
            other => panic!("{other:?}"),
        }
        // Nothing was built yet, so the writer left the aggregate to the builder.
        let layout = fdb_records::layout::StoreLayout::new(subspace());
        let kvs = db
            .run(|tx, _| {
                let sub = layout.index("late_sum");
                async move {
                    tx.get_range_all(RangeOption::from_prefix(sub.bytes()), false)
                        .await
                }
            })
            .await
            .unwrap();
        assert!(kvs.is_empty(), "{kvs:?}");
        let _ = FdbError::from_code(1020);
    });
}

#[test]
fn grouped_version_index_feeds_changes_per_group() {
    block_on(async {
        let db = EmbeddedDatabase::in_memory().unwrap();
        let md = Arc::new(
            base(1)
                .index(
                    Index::new(
                        "changes_per_user",
                        IndexType::Version,
                        fdb_records::key_expression::concat([
                            field("user_id"),
                            fdb_records::key_expression::version(),
                        ]),
                    )
                    .on(ORDER),
                )
                .build()
                .unwrap(),
        );
        for (id, user_id) in [(1, 7), (2, 8), (3, 7), (4, 7)] {
            with_store(&db, &md, |st| async move {
                st.save_record(&order(id, user_id, 0)).await
            })
            .await
            .unwrap();
        }
        let feed = |after: Option<RecordVersion>| {
            with_store(&db, &md, move |st| async move {
                st.changes_since("changes_per_user", &[int(7)], after, None)
                    .await
            })
        };
        let all = feed(None).await.unwrap();
        let pks: Vec<_> = all.iter().map(|e| e.primary_key.clone()).collect();
        assert_eq!(pks, vec![vec![int(1)], vec![int(3)], vec![int(4)]]);
        let after_first = feed(all[0].version).await.unwrap();
        assert_eq!(after_first.len(), 2);
        assert_eq!(after_first[0].primary_key, vec![int(3)]);
        // Moving order 3 to user 8 removes it from user 7's feed.
        with_store(&db, &md, |st| async move {
            st.save_record(&order(3, 8, 0)).await
        })
        .await
        .unwrap();
        assert_eq!(feed(None).await.unwrap().len(), 2);
    });
}
