//! Opening a record store: create, open, upgrade, refusals, conflicts; the metadata store.

mod common;

use fdb_records::backend::embedded::EmbeddedDatabase;
use fdb_records::key_expression::field;
use fdb_records::kv::{
    self, code, Database, FdbError, KeyValue, RangeOption, Transaction, TransactionOption,
};
use fdb_records::layout::StoreLayout;
use fdb_records::metadata::{
    Index, IndexType, RecordMetaData, RecordMetaDataBuilder, RecordTypeDef,
};
use fdb_records::store::{
    invalidate_store_state_caches, open_store, IndexState, MetaDataStore, OpenOptions, OpenOutcome,
    OpenedStore, RecordStoreHeader, StateCacheChoice, StoreError, StoreExistence, StoreStateCache,
};
use foundationdb_tuple::{Element, Subspace};
use futures::executor::block_on;
use std::sync::Arc;

const USER: &str = "examples.users.User";

fn builder(version: u32) -> RecordMetaDataBuilder {
    RecordMetaData::builder(common::example_pool())
        .version(version)
        .record_type(RecordTypeDef::new(USER).primary_key(field("id")))
}

fn index(name: &str) -> Index {
    Index::new(name, IndexType::Value, field("email")).on(USER)
}

fn subspace() -> Subspace {
    Subspace::from(("app", "users"))
}

fn options() -> OpenOptions {
    OpenOptions {
        update_time: 1_700_000_000_000,
        update_by: "test".into(),
        ..OpenOptions::default()
    }
}

async fn open(
    db: &EmbeddedDatabase,
    metadata: &RecordMetaData,
    options: &OpenOptions,
) -> Result<OpenedStore, StoreError> {
    db.run(|tx, _| async move { open_store(&tx, subspace(), metadata, options).await })
        .await
}

async fn dump(db: &EmbeddedDatabase) -> Vec<KeyValue> {
    db.run(|tx, _| async move {
        tx.get_range_all(RangeOption::from_keys(b"", b"\xff"), false)
            .await
    })
    .await
    .unwrap()
}

async fn put_record(db: &EmbeddedDatabase, id: i64) {
    let key = StoreLayout::new(subspace()).record_key(&[Element::Int(id)], 0);
    db.run(|tx, _| {
        let key = key.clone();
        async move {
            tx.set(&key, b"record");
            Ok::<_, FdbError>(())
        }
    })
    .await
    .unwrap();
}

#[test]
fn create_then_open_writes_the_header_once() {
    block_on(async {
        let db = EmbeddedDatabase::in_memory().unwrap();
        let v1 = builder(1).index(index("by_email")).build().unwrap();
        let created = open(&db, &v1, &options()).await.unwrap();
        assert_eq!(created.outcome, OpenOutcome::Created);
        assert_eq!(
            created.header().format_version,
            fdb_records::layout::FORMAT_VERSION
        );
        assert_eq!(created.header().metadata_version, 1);
        assert_eq!(created.header().last_update_time, 1_700_000_000_000);
        assert_eq!(created.header().last_update_by, "test");
        assert_eq!(created.index_states()["by_email"], IndexState::Readable);
        let stored = dump(&db).await;
        assert_eq!(stored.len(), 1, "only the header");
        assert_eq!(
            RecordStoreHeader::from_bytes(&stored[0].value).unwrap(),
            *created.header()
        );

        // A second open reads the header and writes nothing: its transaction is read-only.
        let outcome = kv::run(&db, |tx, _| {
            let v1 = &v1;
            async move { open_store(&tx, subspace(), v1, &options()).await }
        })
        .await
        .unwrap();
        assert_eq!(outcome.value.outcome, OpenOutcome::Opened);
        assert_eq!(outcome.value.header(), created.header());
        assert_eq!(
            outcome.committed.version, -1,
            "a plain open commits no writes"
        );
    });
}

#[test]
fn upgrade_on_an_empty_store_makes_new_indexes_readable_at_once() {
    block_on(async {
        let db = EmbeddedDatabase::in_memory().unwrap();
        open(&db, &builder(1).build().unwrap(), &options())
            .await
            .unwrap();
        let v2 = builder(2).index(index("by_email")).build().unwrap();
        let upgraded = open(&db, &v2, &options()).await.unwrap();
        assert_eq!(
            upgraded.outcome,
            OpenOutcome::Upgraded {
                from_metadata_version: 1,
                added_indexes: vec!["by_email".into()],
                removed_indexes: vec![]
            }
        );
        assert_eq!(upgraded.index_states()["by_email"], IndexState::Readable);
        assert_eq!(upgraded.header().indexes["by_email"], 2);
    });
}

#[test]
fn upgrade_with_records_makes_new_indexes_write_only() {
    block_on(async {
        let db = EmbeddedDatabase::in_memory().unwrap();
        open(&db, &builder(1).build().unwrap(), &options())
            .await
            .unwrap();
        put_record(&db, 1).await;
        let v2 = builder(2).index(index("by_email")).build().unwrap();
        let upgraded = open(&db, &v2, &options()).await.unwrap();
        assert_eq!(upgraded.index_states()["by_email"], IndexState::WriteOnly);
        // The state is persisted under (5, "by_email").
        let reopened = open(&db, &v2, &options()).await.unwrap();
        assert_eq!(reopened.outcome, OpenOutcome::Opened);
        assert_eq!(reopened.index_states()["by_email"], IndexState::WriteOnly);
        let layout = StoreLayout::new(subspace());
        let state_key = layout.index_state_key("by_email");
        assert!(dump(&db)
            .await
            .iter()
            .any(|kv| kv.key == state_key && kv.value[..] == [1]));
    });
}

#[test]
fn upgrade_clears_removed_indexes_and_remembers_them() {
    block_on(async {
        let db = EmbeddedDatabase::in_memory().unwrap();
        let v1 = builder(1)
            .index(index("old"))
            .index(index("kept"))
            .build()
            .unwrap();
        open(&db, &v1, &options()).await.unwrap();
        let layout = StoreLayout::new(subspace());
        let pk = [Element::Int(1)];
        let old_keys = vec![
            layout.index_entry_key("old", &[Element::String("a".into())], &pk),
            layout.index_secondary("old").pack(&(1,)),
            layout.index_state_key("old"),
            layout.index_range("old").pack(&(1,)),
            layout.index_uniqueness_violations("old").pack(&(1,)),
            layout.index_build("old").pack(&(1,)),
        ];
        let kept_key = layout.index_entry_key("kept", &[Element::String("a".into())], &pk);
        let record_key = layout.record_key(&pk, 0);
        let all: Vec<Vec<u8>> = old_keys
            .iter()
            .cloned()
            .chain([kept_key.clone(), record_key.clone()])
            .collect();
        db.run(|tx, _| {
            let all = all.clone();
            async move {
                for key in &all {
                    tx.set(key, b"\x01");
                }
                Ok::<_, FdbError>(())
            }
        })
        .await
        .unwrap();

        let v2 = builder(2)
            .index(index("kept"))
            .former_index("old", 2)
            .build()
            .unwrap();
        let upgraded = open(&db, &v2, &options()).await.unwrap();
        assert_eq!(
            upgraded.outcome,
            OpenOutcome::Upgraded {
                from_metadata_version: 1,
                added_indexes: vec![],
                removed_indexes: vec!["old".into()]
            }
        );
        assert_eq!(upgraded.header().former_indexes["old"], 2);
        assert!(!upgraded.index_states().contains_key("old"));
        let remaining: Vec<Vec<u8>> = dump(&db)
            .await
            .into_iter()
            .map(|kv| kv.key.to_vec())
            .collect();
        for key in &old_keys {
            assert!(
                !remaining.contains(key),
                "{} should be cleared",
                layout.explain_key(key, None)
            );
        }
        assert!(remaining.contains(&kept_key) && remaining.contains(&record_key));
    });
}

#[test]
fn older_metadata_is_refused_and_writes_nothing() {
    block_on(async {
        let db = EmbeddedDatabase::in_memory().unwrap();
        open(&db, &builder(5).build().unwrap(), &options())
            .await
            .unwrap();
        let before = dump(&db).await;
        let v4 = builder(4).index(index("by_email")).build().unwrap();
        let tx = db.create_transaction().unwrap();
        let err = open_store(&tx, subspace(), &v4, &options())
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::MetadataTooOld { store: 5, given: 4 }),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "metadata version 4 is older than the store's metadata version 5"
        );
        // Even committing the failed transaction changes nothing.
        assert_eq!(tx.commit().await.unwrap().version, -1);
        assert_eq!(dump(&db).await, before);
    });
}

#[test]
fn user_versions_and_existence_checks() {
    block_on(async {
        let db = EmbeddedDatabase::in_memory().unwrap();
        let v1 = builder(1).build().unwrap();
        let must_exist = OpenOptions {
            existence: StoreExistence::MustExist,
            ..options()
        };
        assert!(matches!(
            open(&db, &v1, &must_exist).await,
            Err(StoreError::StoreDoesNotExist)
        ));
        let with_user = |v| OpenOptions {
            user_version: Some(v),
            ..options()
        };
        assert_eq!(
            open(&db, &v1, &with_user(3))
                .await
                .unwrap()
                .header()
                .user_version,
            3
        );
        let must_not = OpenOptions {
            existence: StoreExistence::MustNotExist,
            ..options()
        };
        assert!(matches!(
            open(&db, &v1, &must_not).await,
            Err(StoreError::StoreAlreadyExists)
        ));
        assert!(matches!(
            open(&db, &v1, &with_user(2)).await,
            Err(StoreError::UserVersionTooOld { store: 3, given: 2 })
        ));
        let bumped = open(&db, &v1, &with_user(4)).await.unwrap();
        assert!(matches!(
            bumped.outcome,
            OpenOutcome::Upgraded {
                from_metadata_version: 1,
                ..
            }
        ));
        assert_eq!(bumped.header().user_version, 4);
        // None keeps the stored user version.
        assert_eq!(
            open(&db, &v1, &options())
                .await
                .unwrap()
                .header()
                .user_version,
            4
        );
    });
}

#[test]
fn inconsistent_or_foreign_stores_are_refused() {
    block_on(async {
        let db = EmbeddedDatabase::in_memory().unwrap();
        // Data but no header.
        put_record(&db, 1).await;
        let v1 = builder(1).build().unwrap();
        assert!(matches!(
            open(&db, &v1, &options()).await,
            Err(StoreError::DataWithoutHeader)
        ));

        let db = EmbeddedDatabase::in_memory().unwrap();
        open(&db, &v1, &options()).await.unwrap();
        // Same version, different index set: two metadata claim version 1.
        let other_v1 = builder(1).index(index("by_email")).build().unwrap();
        assert!(matches!(
            open(&db, &other_v1, &options()).await,
            Err(StoreError::IndexSetMismatch { version: 1, .. })
        ));
        // A header from a newer format.
        let header_key = StoreLayout::new(subspace()).header_key();
        let future = RecordStoreHeader {
            format_version: 99,
            metadata_version: 1,
            ..RecordStoreHeader::default()
        };
        db.run(|tx, _| {
            let (key, bytes) = (header_key.clone(), future.to_bytes());
            async move {
                // Written behind the SDK's back: caches must be told.
                tx.set(&key, &bytes);
                invalidate_store_state_caches(&tx);
                Ok::<_, FdbError>(())
            }
        })
        .await
        .unwrap();
        assert!(matches!(
            open(&db, &v1, &options()).await,
            Err(StoreError::FormatTooNew {
                store: 99,
                supported: 2
            })
        ));
        // Garbage header bytes.
        db.run(|tx, _| {
            let key = header_key.clone();
            async move {
                tx.set(&key, b"\xff\xff\xff");
                invalidate_store_state_caches(&tx);
                Ok::<_, FdbError>(())
            }
        })
        .await
        .unwrap();
        assert!(matches!(
            open(&db, &v1, &options()).await,
            Err(StoreError::Corrupt(_))
        ));
    });
}

#[test]
fn concurrent_opens_and_saves_do_not_conflict() {
    block_on(async {
        let db = EmbeddedDatabase::in_memory().unwrap();
        let v1 = builder(1).index(index("by_email")).build().unwrap();
        open(&db, &v1, &options()).await.unwrap();
        let layout = StoreLayout::new(subspace());
        let (t1, t2) = (
            db.create_transaction().unwrap(),
            db.create_transaction().unwrap(),
        );
        for (tx, id) in [(&t1, 1), (&t2, 2)] {
            let opened = open_store(tx, subspace(), &v1, &options()).await.unwrap();
            assert_eq!(opened.outcome, OpenOutcome::Opened);
            tx.set(&layout.record_key(&[Element::Int(id)], 0), b"r");
        }
        t1.commit().await.unwrap();
        t2.commit()
            .await
            .expect("the header is not a hot key: two open+save transactions both commit");
    });
}

#[test]
fn an_upgrade_conflicts_with_concurrent_writers_of_the_old_metadata() {
    block_on(async {
        let db = EmbeddedDatabase::in_memory().unwrap();
        let v1 = builder(1).build().unwrap();
        open(&db, &v1, &options()).await.unwrap();
        let layout = StoreLayout::new(subspace());
        let writer = db.create_transaction().unwrap();
        open_store(&writer, subspace(), &v1, &options())
            .await
            .unwrap();
        writer.set(&layout.record_key(&[Element::Int(1)], 0), b"r");

        let v2 = builder(2).index(index("by_email")).build().unwrap();
        let upgraded = open(&db, &v2, &options()).await.unwrap();
        assert_eq!(
            upgraded.index_states()["by_email"],
            IndexState::Readable,
            "store was empty"
        );
        // The writer did not maintain by_email: it must retry under the new metadata.
        let err = writer.commit().await.unwrap_err();
        assert_eq!(err.code(), code::NOT_COMMITTED);
    });
}

#[test]
fn metadata_store_saves_and_loads_by_version() {
    block_on(async {
        let db = EmbeddedDatabase::in_memory().unwrap();
        let store = MetaDataStore::new(Subspace::from(("app", "metadata")));
        let v1 = builder(1).index(index("by_email")).build().unwrap();
        let v2 = builder(2)
            .index(index("by_email"))
            .index(index("by_email_2"))
            .build()
            .unwrap();
        let save = |m: RecordMetaData, checked: bool| {
            let store = store.clone();
            let db = db.clone();
            async move {
                db.run(|tx, _| {
                    let (store, m) = (&store, &m);
                    async move {
                        if checked {
                            store.save_checked(&tx, m).await
                        } else {
                            store.save(&tx, m).await
                        }
                    }
                })
                .await
            }
        };
        let latest = || {
            let store = store.clone();
            let db = db.clone();
            async move {
                db.run(|tx, _| {
                    let store = &store;
                    async move { store.load_latest(&tx).await }
                })
                .await
            }
        };
        assert!(latest().await.unwrap().is_none());
        save(v1.clone(), true).await.unwrap();
        save(v1.clone(), true)
            .await
            .expect("saving the same metadata again is a no-op");
        save(v2.clone(), true).await.unwrap();
        assert_eq!(latest().await.unwrap().unwrap().indexes(), v2.indexes());
        let loaded_v1 = db
            .run(|tx, _| {
                let store = &store;
                async move { store.load(&tx, 1).await }
            })
            .await
            .unwrap()
            .unwrap();
        assert_eq!(loaded_v1.indexes(), v1.indexes());
        // A different metadata under a taken version is refused.
        let other_v2 = builder(2).build().unwrap();
        assert!(matches!(
            save(other_v2, false).await,
            Err(StoreError::MetaDataVersionTaken { version: 2 })
        ));
        // An unsafe evolution is refused by save_checked, with every problem listed.
        let v3_unsafe = builder(3).build().unwrap();
        match save(v3_unsafe, true).await {
            Err(StoreError::Evolution(errors)) => assert_eq!(errors.len(), 2, "{errors:?}"),
            other => panic!("{other:?}"),
        }
        // A store can be opened with metadata loaded from the database.
        let loaded = latest().await.unwrap().unwrap();
        assert_eq!(
            open(&db, &loaded, &options())
                .await
                .unwrap()
                .header()
                .metadata_version,
            2
        );
    });
}

/// Options that open through `cache` (one simulated client each).
fn through(cache: &Arc<StoreStateCache>) -> OpenOptions {
    OpenOptions {
        state_cache: StateCacheChoice::Use(cache.clone()),
        ..options()
    }
}

fn hits(cache: &StoreStateCache) -> (u64, u64) {
    let stats = cache.stats();
    (stats.hits, stats.misses)
}

#[test]
fn an_unchanged_store_opens_from_the_state_cache_with_the_same_conflicts() {
    block_on(async {
        let db = EmbeddedDatabase::in_memory().unwrap();
        let cache = Arc::new(StoreStateCache::new());
        let v1 = builder(1).index(index("by_email")).build().unwrap();
        let created = open(&db, &v1, &through(&cache)).await.unwrap();
        assert_eq!(created.outcome, OpenOutcome::Created);
        let read = open(&db, &v1, &through(&cache)).await.unwrap();
        assert_eq!(hits(&cache), (0, 2), "created, then read and remembered");
        let cached = open(&db, &v1, &through(&cache)).await.unwrap();
        assert_eq!(hits(&cache), (1, 2));
        assert_eq!(cached.outcome, OpenOutcome::Opened);
        assert_eq!(cached.state, read.state);
        assert!(
            Arc::ptr_eq(&cached.state, &read.state),
            "shared, not copied"
        );

        // A cached open still conflicts with a concurrent change of the state: here
        // an upgrade that adds an index another writer would have to maintain.
        let layout = StoreLayout::new(subspace());
        let t1 = db.create_transaction().unwrap();
        open_store(&t1, subspace(), &v1, &through(&cache))
            .await
            .unwrap();
        assert_eq!(hits(&cache), (2, 2));
        t1.set(&layout.record_key(&[Element::Int(1)], 0), b"record");
        let v2 = builder(2)
            .index(index("by_email"))
            .index(index("by_name"))
            .build()
            .unwrap();
        open(&db, &v2, &options()).await.unwrap();
        assert_eq!(code(t1.commit().await), code::NOT_COMMITTED);
    });
}

fn code<T>(r: Result<T, FdbError>) -> i32 {
    r.err().map(|e| e.code()).unwrap_or(0)
}

#[test]
fn a_state_change_by_one_client_reaches_every_other_clients_cache() {
    block_on(async {
        let db = EmbeddedDatabase::in_memory().unwrap();
        let (a, b) = (
            Arc::new(StoreStateCache::new()),
            Arc::new(StoreStateCache::new()),
        );
        let v1 = builder(1).index(index("by_email")).build().unwrap();
        open(&db, &v1, &through(&a)).await.unwrap();
        put_record(&db, 1).await;
        open(&db, &v1, &through(&a)).await.unwrap();
        open(&db, &v1, &through(&a)).await.unwrap();
        assert_eq!(hits(&a), (1, 2), "client a caches version 1");
        // Client b upgrades: a new index, write-only since the store has a record.
        let v2 = builder(2)
            .index(index("by_email"))
            .index(index("by_name"))
            .build()
            .unwrap();
        assert!(matches!(
            open(&db, &v2, &through(&b)).await.unwrap().outcome,
            OpenOutcome::Upgraded { .. }
        ));
        // Client a, still on version 1, is refused instead of writing without the index.
        assert!(matches!(
            open(&db, &v1, &through(&a)).await,
            Err(StoreError::MetadataTooOld { store: 2, given: 1 })
        ));
        let seen = open(&db, &v2, &through(&a)).await.unwrap();
        assert_eq!(seen.index_states()["by_name"], IndexState::WriteOnly);
        assert_eq!(
            hits(&a),
            (1, 4),
            "both opens after the upgrade read the state"
        );
    });
}

#[test]
fn a_transaction_that_changed_the_state_reads_it_again() {
    block_on(async {
        let db = EmbeddedDatabase::in_memory().unwrap();
        let cache = Arc::new(StoreStateCache::new());
        let v1 = builder(1).build().unwrap();
        open(&db, &v1, &through(&cache)).await.unwrap();
        open(&db, &v1, &through(&cache)).await.unwrap();
        let v2 = builder(2).index(index("by_email")).build().unwrap();
        let tx = db.create_transaction().unwrap();
        let upgraded = open_store(&tx, subspace(), &v2, &through(&cache))
            .await
            .unwrap();
        assert!(matches!(upgraded.outcome, OpenOutcome::Upgraded { .. }));
        // The bump is unreadable here, so the state is read (with this transaction's
        // own upgrade), never taken from the cache nor remembered.
        let again = open_store(&tx, subspace(), &v2, &through(&cache))
            .await
            .unwrap();
        assert_eq!(again.outcome, OpenOutcome::Opened);
        assert_eq!(again.header().metadata_version, 2);
        assert_eq!(cache.stats().entries, 1);
        tx.commit().await.unwrap();
        let after = open(&db, &v2, &through(&cache)).await.unwrap();
        assert_eq!(after.header().metadata_version, 2);
    });
}

#[test]
fn a_format_1_store_is_rewritten_as_format_2_then_cached() {
    block_on(async {
        let db = EmbeddedDatabase::in_memory().unwrap();
        let cache = Arc::new(StoreStateCache::new());
        let v1 = builder(1).index(index("by_email")).build().unwrap();
        // A header as the previous format wrote it, with no bump.
        let old = RecordStoreHeader {
            format_version: 1,
            metadata_version: 1,
            indexes: [("by_email".to_string(), 1)].into(),
            ..RecordStoreHeader::default()
        };
        let header_key = StoreLayout::new(subspace()).header_key();
        common::store::raw_set(&db, header_key, old.to_bytes()).await;
        let upgraded = open(&db, &v1, &through(&cache)).await.unwrap();
        assert_eq!(
            upgraded.outcome,
            OpenOutcome::Upgraded {
                from_metadata_version: 1,
                added_indexes: vec![],
                removed_indexes: vec![]
            }
        );
        assert_eq!(upgraded.header().format_version, 2);
        open(&db, &v1, &through(&cache)).await.unwrap();
        open(&db, &v1, &through(&cache)).await.unwrap();
        assert_eq!(hits(&cache), (1, 2));
    });
}

#[test]
fn a_cache_can_be_turned_off() {
    block_on(async {
        let db = EmbeddedDatabase::in_memory().unwrap();
        let v1 = builder(1).build().unwrap();
        let off = OpenOptions {
            state_cache: StateCacheChoice::Off,
            ..options()
        };
        for _ in 0..3 {
            open(&db, &v1, &off).await.unwrap();
        }
        let tx = db.create_transaction().unwrap();
        let stats = tx.store_state_cache().unwrap().stats();
        assert_eq!((stats.hits, stats.misses, stats.entries), (0, 0, 0));
    });
}

#[test]
fn a_transaction_that_changed_the_state_never_caches_it_even_with_snapshot_ryw_off() {
    block_on(async {
        let db = EmbeddedDatabase::in_memory().unwrap();
        let cache = Arc::new(StoreStateCache::new());
        let v1 = builder(1).index(index("by_email")).build().unwrap();
        open(&db, &v1, &through(&cache)).await.unwrap();
        open(&db, &v1, &through(&cache)).await.unwrap();
        let layout = StoreLayout::new(subspace());
        // A tool disables the index as documented (caches told first), in a
        // transaction whose snapshot reads do not see its own writes, and opens the
        // store there; the transaction never commits.
        let tool = db.create_transaction().unwrap();
        tool.set_option(TransactionOption::SnapshotRywDisable)
            .unwrap();
        invalidate_store_state_caches(&tool);
        tool.set(
            &layout.index_state_key("by_email"),
            &[IndexState::Disabled.code()],
        );
        let inside = open_store(&tool, subspace(), &v1, &through(&cache))
            .await
            .unwrap();
        assert_eq!(inside.index_states()["by_email"], IndexState::Disabled);
        tool.cancel();
        // Nothing of it reached the cache: the next open sees the committed state.
        let after = open(&db, &v1, &through(&cache)).await.unwrap();
        assert_eq!(after.index_states()["by_email"], IndexState::Readable);
        // The same for an SDK change: an upgrade, then an open, in one transaction.
        let v2 = builder(2)
            .index(index("by_email"))
            .index(index("by_name"))
            .build()
            .unwrap();
        let upgrader = db.create_transaction().unwrap();
        upgrader
            .set_option(TransactionOption::SnapshotRywDisable)
            .unwrap();
        open_store(&upgrader, subspace(), &v2, &through(&cache))
            .await
            .unwrap();
        let again = open_store(&upgrader, subspace(), &v2, &through(&cache))
            .await
            .unwrap();
        assert_eq!(again.header().metadata_version, 2, "its own upgrade");
        upgrader.cancel();
        let committed = open(&db, &v1, &through(&cache)).await.unwrap();
        assert_eq!(
            committed.header().metadata_version,
            1,
            "the upgrade never committed"
        );
    });
}
