//! Cursors and continuations: limits and their reasons, progress on pathological data,
//! split records, seeking resumes, union/intersection resumes, untrusted tokens
//! (tampering, cross-scan reuse, out-of-range, truncation, garbage) and the runner.

mod cursor_common;

use cursor_common::schema::examples::users::Order;
use cursor_common::*;
use fdb_records::backend::embedded::{EmbeddedDatabase, FaultConfig, ManualClock};
use fdb_records::cursor::{
    Continuation, ContinuationCodec, ContinuationError, CursorError, ExecuteOptions, IndexScan,
    Intersection, NoNextReason, RecordScan, ScanLimits, ScanRunner, TimeSource, Union,
};
use fdb_records::key_expression::field;
use fdb_records::kv::{Database, Transaction};
use fdb_records::layout::StoreLayout;
use fdb_records::metadata::RecordTypeDef;
use fdb_records::proto;
use fdb_records::store::{IndexEntry, RecordRange, RecordStore, StoredRecord, TupleRange};
use foundationdb_tuple::{Element, Subspace, Versionstamp};
use futures::executor::block_on;
use futures::StreamExt;
use prost::Message;
use prost_reflect::ReflectMessage;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn ids(records: &[StoredRecord]) -> Vec<i64> {
    records.iter().map(|r| pk_int(&r.primary_key)).collect()
}
/// `ids` as a scan in that direction returns them.
fn in_scan_order(ids: std::ops::Range<i64>, reverse: bool) -> Vec<i64> {
    let mut ids: Vec<i64> = ids.collect();
    if reverse {
        ids.reverse();
    }
    ids
}
fn entry_ids(entries: &[IndexEntry]) -> Vec<i64> {
    entries.iter().map(|e| pk_int(&e.primary_key)).collect()
}

async fn setup(n: i64) -> (EmbeddedDatabase, Arc<fdb_records::metadata::RecordMetaData>) {
    let db = EmbeddedDatabase::in_memory().unwrap();
    let md = metadata();
    let users: Vec<_> = (0..n)
        .map(|i| user(i, (i % 3) as i32, &[TAGS[(i % 4) as usize]]))
        .collect();
    save(&db, &md, &users).await;
    (db, md)
}

#[test]
fn pages_forward_and_reverse_with_return_limits() {
    block_on(async {
        let (db, md) = setup(50).await;
        let all: Vec<i64> = (0..50).collect();
        for limit in [1, 7, 50, 100] {
            let plan = RecordScan::new(RecordRange::all());
            let (items, pages) = page_all(
                &db,
                &md,
                &plan,
                ExecuteOptions::new().return_limit(limit),
                200,
            )
            .await;
            assert_eq!(ids(&items), all, "limit {limit}");
            assert_eq!(pages, 50 / limit + 1, "limit {limit}");
            let plan = RecordScan::new(RecordRange::all()).reverse(true);
            let (items, _) = page_all(
                &db,
                &md,
                &plan,
                ExecuteOptions::new().return_limit(limit),
                200,
            )
            .await;
            let mut rev = all.clone();
            rev.reverse();
            assert_eq!(ids(&items), rev, "reverse limit {limit}");
        }
        // A bounded range, both directions.
        let range = RecordRange::between(vec![Element::Int(10)], vec![Element::Int(20)]);
        for reverse in [false, true] {
            let plan = RecordScan::new(range.clone()).reverse(reverse);
            let (items, _) =
                page_all(&db, &md, &plan, ExecuteOptions::new().return_limit(3), 50).await;
            assert_eq!(ids(&items), in_scan_order(10..20, reverse));
        }
    });
}

#[test]
fn each_limit_reports_its_reason() {
    block_on(async {
        let (db, md) = setup(30).await;
        let plan = RecordScan::new(RecordRange::all());
        let run = |limits: ScanLimits| {
            let (db, md, plan) = (&db, &md, &plan);
            async move {
                page(db, md, plan, &ExecuteOptions::new().limits(limits))
                    .await
                    .unwrap()
            }
        };
        // Each user is 2 keys (version + data).
        let p = run(ScanLimits::unlimited().with_scan_limit(6)).await;
        assert_eq!(p.reason, NoNextReason::ScanLimitReached);
        assert_eq!(p.items.len(), 3);
        let p = run(ScanLimits::unlimited().with_byte_limit(1)).await;
        assert_eq!(p.reason, NoNextReason::ByteLimitReached);
        assert_eq!(p.items.len(), 1, "at least one record per page");
        // Time: a source that advances 1 ms per reading.
        let ticks = Arc::new(AtomicU64::new(0));
        let t = ticks.clone();
        let source =
            TimeSource::new(move || Duration::from_millis(t.fetch_add(1, Ordering::SeqCst)));
        let p =
            run(ScanLimits::unlimited().with_time_limit(Duration::from_millis(5), source)).await;
        assert_eq!(p.reason, NoNextReason::TimeLimitReached);
        assert!(!p.items.is_empty() && p.items.len() < 30);
        // A manual clock that never moves never stops the scan.
        let clock = ManualClock::new();
        let p = run(ScanLimits::default().with_time_source(TimeSource::from_clock(clock))).await;
        assert_eq!(p.reason, NoNextReason::SourceExhausted);
        assert_eq!(p.items.len(), 30);
        let p = page(&db, &md, &plan, &ExecuteOptions::new().return_limit(4))
            .await
            .unwrap();
        assert_eq!(p.reason, NoNextReason::ReturnLimitReached);
        assert_eq!(ids(&p.items), vec![0, 1, 2, 3]);
    });
}

#[test]
fn a_return_limit_counts_items_before_a_later_filter_and_after_an_earlier_one() {
    block_on(async {
        let (db, md) = setup(10).await;
        let plan = RecordScan::new(RecordRange::all());
        let tx = db.create_transaction().unwrap();
        let store = RecordStore::open(&tx, subspace(), md.clone())
            .await
            .unwrap();
        let even = |r: &StoredRecord| pk_int(&r.primary_key) % 2 == 0;
        // Limit, then filter: four records read, the even ones among them returned.
        let page = store
            .execute(&plan, &ExecuteOptions::new().return_limit(4))
            .unwrap()
            .filter(even)
            .collect_page()
            .await
            .unwrap();
        assert_eq!(ids(&page.items), vec![0, 2]);
        assert_eq!(page.reason, NoNextReason::ReturnLimitReached);
        let rest = store
            .execute(
                &plan,
                &ExecuteOptions::new().continuation(Some(page.continuation)),
            )
            .unwrap()
            .collect_page()
            .await
            .unwrap();
        assert_eq!(
            ids(&rest.items),
            vec![4, 5, 6, 7, 8, 9],
            "resumes after the 4th"
        );
        // Filter, then limit (twice: the smaller wins): four even records.
        let page = store
            .execute(&plan, &ExecuteOptions::new())
            .unwrap()
            .filter(even)
            .limit(6)
            .limit(4)
            .collect_page()
            .await
            .unwrap();
        assert_eq!(ids(&page.items), vec![0, 2, 4, 6]);
        assert_eq!(page.reason, NoNextReason::ReturnLimitReached);
        // A limit of zero reads nothing and resumes where it started.
        let none = store
            .execute(&plan, &ExecuteOptions::new().return_limit(0))
            .unwrap()
            .collect_page()
            .await
            .unwrap();
        assert!(none.items.is_empty());
        assert_eq!(none.reason, NoNextReason::ReturnLimitReached);
        assert!(!none.continuation.is_end());
    });
}

#[test]
fn a_filter_that_rejects_everything_still_makes_progress() {
    block_on(async {
        let (db, md) = setup(20).await;
        let plan = RecordScan::new(RecordRange::all());
        let mut continuation: Option<Continuation> = None;
        let mut pages = 0;
        loop {
            pages += 1;
            assert!(pages <= 21, "livelock");
            let tx = db.create_transaction().unwrap();
            let store = RecordStore::open(&tx, subspace(), md.clone())
                .await
                .unwrap();
            let options = ExecuteOptions::new()
                .continuation(continuation.clone())
                .limits(ScanLimits::unlimited().with_scan_limit(1));
            let page = store
                .execute(&plan, &options)
                .unwrap()
                .filter(|_| false)
                .collect_page()
                .await
                .unwrap();
            assert!(page.items.is_empty());
            if page.reason == NoNextReason::SourceExhausted {
                break;
            }
            assert_eq!(page.reason, NoNextReason::ScanLimitReached);
            assert_ne!(Some(&page.continuation), continuation.as_ref(), "moved");
            continuation = Some(page.continuation);
        }
        assert_eq!(pages, 21, "one record per page, then the end");
        // Same with index scans and a record-type filter that matches nothing.
        let plan = IndexScan::new("by_tier", TupleRange::all());
        let options = ExecuteOptions::new().limits(ScanLimits::unlimited().with_scan_limit(1));
        let p = page(&db, &md, &plan, &options).await.unwrap();
        assert_eq!(p.items.len(), 1);
        let plan = RecordScan::new(RecordRange::all()).record_type(ORDER);
        let p = page(&db, &md, &plan, &options).await.unwrap();
        assert!(p.items.is_empty());
        assert!(
            !p.continuation.is_start(),
            "skipped records move the continuation"
        );
    });
}

#[test]
fn a_scan_over_records_of_several_types_decodes_each_as_its_own_type() {
    // Runs of one type, single records between them, and the type changing at every
    // record: a scan matches each stored type name against the type before it. Orders
    // are stored by name, then by an explicit type key among users stored by name; one
    // user is split across keys.
    let with_order_type_key = || {
        Arc::new(
            fdb_records::metadata::RecordMetaData::builder(
                cursor_common::schema::DESCRIPTOR_POOL.clone(),
            )
            .record_type(RecordTypeDef::new(USER).primary_key(field("id")))
            .record_type(
                RecordTypeDef::new(ORDER)
                    .primary_key(field("order_id"))
                    .type_key(7),
            )
            .build()
            .unwrap(),
        )
    };
    for md in [metadata(), with_order_type_key()] {
        mixed_types_scan(md);
    }
}

fn mixed_types_scan(md: Arc<fdb_records::metadata::RecordMetaData>) {
    block_on(async {
        let db = EmbeddedDatabase::in_memory().unwrap();
        let order_ids = [3i64, 4, 5, 9, 11, 12];
        let users: Vec<_> = (0..14)
            .filter(|i| !order_ids.contains(i))
            .map(|i| {
                if i == 10 {
                    big_user(i, 0, &["a"])
                } else {
                    user(i, 0, &["a"])
                }
            })
            .collect();
        save(&db, &md, &users).await;
        db.run(|tx, _| {
            let md = md.clone();
            async move {
                let store = RecordStore::open(&tx, subspace(), md).await?;
                for id in order_ids {
                    store
                        .save_record(&Order {
                            order_id: id,
                            user_id: id * 10,
                            ..Order::default()
                        })
                        .await?;
                }
                Ok::<_, fdb_records::store::RecordStoreError>(())
            }
        })
        .await
        .unwrap();
        for reverse in [false, true] {
            let plan = RecordScan::new(RecordRange::all()).reverse(reverse);
            let (records, _) =
                page_all(&db, &md, &plan, ExecuteOptions::new().return_limit(4), 10).await;
            assert_eq!(ids(&records), in_scan_order(0..14, reverse));
            for r in &records {
                let id = pk_int(&r.primary_key);
                let is_order = order_ids.contains(&id);
                assert_eq!(&*r.record_type, if is_order { ORDER } else { USER });
                assert_eq!(r.message.descriptor().full_name(), &*r.record_type);
                if is_order {
                    assert_eq!(r.to_record::<Order>().unwrap().user_id, id * 10);
                } else {
                    assert_eq!(r.to_record::<User>().unwrap().id, id);
                }
            }
        }
    });
}

#[test]
fn split_records_are_never_cut() {
    block_on(async {
        let db = EmbeddedDatabase::in_memory().unwrap();
        let md = metadata();
        let users: Vec<_> = (0..8)
            .map(|i| {
                if i % 2 == 0 {
                    big_user(i, 0, &["a"])
                } else {
                    user(i, 0, &["a"])
                }
            })
            .collect();
        save(&db, &md, &users).await;
        for reverse in [false, true] {
            for scan_limit in [1, 2, 3, 5] {
                let plan = RecordScan::new(RecordRange::all()).reverse(reverse);
                let limits = ScanLimits::unlimited().with_scan_limit(scan_limit);
                let (items, pages) =
                    page_all(&db, &md, &plan, ExecuteOptions::new().limits(limits), 100).await;
                let mut want: Vec<i64> = (0..8).collect();
                if reverse {
                    want.reverse();
                }
                assert_eq!(ids(&items), want);
                assert!(pages > 1);
                for r in &items {
                    let u: User = r.to_record().unwrap();
                    assert_eq!(u, users[u.id as usize], "whole record");
                    assert!(r.version.is_some());
                }
            }
        }
    });
}

#[test]
fn record_scans_without_stored_versions_read_one_key_a_record_and_pass_over_old_versions() {
    block_on(async {
        // Users 0..10 and a split user 10 saved with versions; then, without versions,
        // users 0..5 saved again (one key each) and a lone old version at 20.
        let (db, with_versions) = setup(10).await;
        save(&db, &with_versions, &[big_user(10, 0, &["a"])]).await;
        let md = Arc::new(
            metadata_builder(2)
                .store_record_versions(false)
                .build()
                .unwrap(),
        );
        let resaved: Vec<_> = (0..5).map(|i| user(i, 0, &["a"])).collect();
        save(&db, &md, &resaved).await;
        let lone = StoreLayout::new(subspace()).record_version_key(&[Element::Int(20)]);
        let old_version = foundationdb_tuple::pack(&(Versionstamp::complete([1; 10], 0),));
        db.run(|tx, _| {
            let (lone, old_version) = (&lone, &old_version);
            async move {
                tx.set(lone, old_version);
                Ok::<_, fdb_records::kv::FdbError>(())
            }
        })
        .await
        .unwrap();
        for reverse in [false, true] {
            for limit in [1, 3, 100] {
                let plan = RecordScan::new(RecordRange::all()).reverse(reverse);
                let options = ExecuteOptions::new().return_limit(limit);
                let (items, _) = page_all(&db, &md, &plan, options, 50).await;
                assert_eq!(ids(&items), in_scan_order(0..11, reverse), "limit {limit}");
                assert!(items.iter().all(|r| r.version.is_none()));
                let split: User = items
                    .iter()
                    .find(|r| r.values > 1)
                    .unwrap()
                    .to_record()
                    .unwrap();
                assert_eq!(split.id, 10);
            }
        }
        // The key budget counts keys read: one per record saved without a version.
        let plan = RecordScan::new(RecordRange::between(
            vec![Element::Int(0)],
            vec![Element::Int(5)],
        ));
        let limits = ScanLimits::unlimited().with_scan_limit(4);
        let p = page(&db, &md, &plan, &ExecuteOptions::new().limits(limits))
            .await
            .unwrap();
        assert_eq!(p.reason, NoNextReason::ScanLimitReached);
        assert_eq!(ids(&p.items), vec![0, 1, 2, 3]);
    });
}

#[test]
fn page_n_seeks_instead_of_rereading() {
    // The cost of a page does not depend on how far into the scan it starts: count the
    // keys a resumed page reads through a tiny scan budget.
    block_on(async {
        let (db, md) = setup(300).await;
        let plan = RecordScan::new(RecordRange::all());
        let (_, pages) = page_all(
            &db,
            &md,
            &plan,
            ExecuteOptions::new().limits(ScanLimits::unlimited().with_scan_limit(20)),
            100,
        )
        .await;
        assert_eq!(
            pages, 31,
            "10 records (20 keys) per page, from any position"
        );
    });
}

#[test]
fn union_and_intersection_resume_every_child() {
    block_on(async {
        let db = EmbeddedDatabase::in_memory().unwrap();
        let md = metadata();
        let users: Vec<_> = (0..60)
            .map(|i| {
                let tags: Vec<&str> = TAGS
                    .iter()
                    .enumerate()
                    .filter(|(k, _)| i % (*k as i64 + 2) == 0)
                    .map(|(_, t)| *t)
                    .collect();
                user(i, (i % 3) as i32, &tags)
            })
            .collect();
        save(&db, &md, &users).await;
        let in_tier = |u: &User| u.tier == 1;
        let tagged = |u: &User, t: &str| u.tags.iter().any(|x| x == t);
        for reverse in [false, true] {
            for limit in [1, 2, 5, 100] {
                let union: Union<_, IndexEntry> = Union::new()
                    .child(tier_scan(1).reverse(reverse))
                    .child(tag_scan("a").reverse(reverse))
                    .child(tag_scan("b").reverse(reverse));
                let (items, _) = page_all(
                    &db,
                    &md,
                    &union,
                    ExecuteOptions::new().return_limit(limit),
                    200,
                )
                .await;
                let mut want: Vec<i64> = users
                    .iter()
                    .filter(|u| in_tier(u) || tagged(u, "a") || tagged(u, "b"))
                    .map(|u| u.id)
                    .collect();
                if reverse {
                    want.reverse();
                }
                assert_eq!(
                    entry_ids(&items),
                    want,
                    "union reverse={reverse} limit={limit}"
                );

                let inter: Intersection<_, IndexEntry> = Intersection::new()
                    .child(tier_scan(1).reverse(reverse))
                    .child(tag_scan("a").reverse(reverse));
                let limits = ScanLimits::unlimited().with_scan_limit(limit);
                let (items, _) =
                    page_all(&db, &md, &inter, ExecuteOptions::new().limits(limits), 200).await;
                let mut want: Vec<i64> = users
                    .iter()
                    .filter(|u| in_tier(u) && tagged(u, "a"))
                    .map(|u| u.id)
                    .collect();
                if reverse {
                    want.reverse();
                }
                assert_eq!(
                    entry_ids(&items),
                    want,
                    "intersection reverse={reverse} limit={limit}"
                );
            }
        }
        // Index entries to records, keeping continuations.
        let tx = db.create_transaction().unwrap();
        let store = RecordStore::open(&tx, subspace(), md.clone())
            .await
            .unwrap();
        let loader = store.clone();
        let page = store
            .execute(&tag_scan("d"), &ExecuteOptions::new().return_limit(3))
            .unwrap()
            .and_then(move |entry| {
                let loader = loader.clone();
                async move {
                    Ok(loader
                        .load_dynamic(&entry.primary_key)
                        .await?
                        .expect("record exists"))
                }
            })
            .collect_page()
            .await
            .unwrap();
        assert_eq!(ids(&page.items), vec![0, 5, 10]);
    });
}

#[test]
fn combinators_reject_bad_plans_and_unordered_children() {
    block_on(async {
        let (db, md) = setup(10).await;
        let empty: Union<_, IndexEntry> = Union::new();
        assert!(matches!(
            page(&db, &md, &empty, &ExecuteOptions::new()).await,
            Err(CursorError::InvalidPlan(_))
        ));
        let mixed: Union<_, IndexEntry> = Union::new()
            .child(tier_scan(1))
            .child(tag_scan("a").reverse(true));
        assert!(matches!(
            page(&db, &md, &mixed, &ExecuteOptions::new()).await,
            Err(CursorError::InvalidPlan(_))
        ));
        // A range scan over several tiers is not in primary-key order.
        let unordered: Union<_, IndexEntry> = Union::new()
            .child(IndexScan::new("by_tier", TupleRange::all()))
            .child(tag_scan("a"));
        assert!(matches!(
            page(&db, &md, &unordered, &ExecuteOptions::new()).await,
            Err(CursorError::OutOfOrder { child: 0, .. })
        ));
    });
}

fn mismatch<T>(r: Result<T, CursorError>) -> bool {
    matches!(
        r,
        Err(CursorError::Continuation(ContinuationError::Mismatch))
    )
}

/// Hand-built token bytes with a given binding and position (what an attacker without
/// the signing key can produce).
fn forge(binding: &[u8], position: proto::ContinuationPosition) -> Vec<u8> {
    let body = proto::ContinuationBody {
        scan_binding: binding.to_vec(),
        position: Some(position),
    }
    .encode_to_vec();
    proto::ContinuationEnvelope {
        format_version: 1,
        body,
        mac: Vec::new(),
    }
    .encode_to_vec()
}

fn after_key(key: Vec<u8>) -> proto::ContinuationPosition {
    proto::ContinuationPosition {
        kind: proto::continuation_position::Kind::AfterKey as i32,
        key,
        children: Vec::new(),
    }
}

#[test]
fn tokens_are_bound_to_their_scan() {
    block_on(async {
        let (db, md) = setup(40).await;
        let all = RecordRange::all();
        let some = RecordRange::between(vec![Element::Int(5)], vec![Element::Int(30)]);
        let first = page(
            &db,
            &md,
            &RecordScan::new(some.clone()),
            &ExecuteOptions::new().return_limit(3),
        )
        .await
        .unwrap();
        let token = first.continuation.clone();
        let resume = |label: &'static str| {
            ExecuteOptions::new()
                .continuation(Some(token.clone()))
                .label(label)
        };
        // Same scan: fine.
        assert!(page(&db, &md, &RecordScan::new(some.clone()), &resume(""))
            .await
            .is_ok());
        // Other range, direction, record type, label, plan kind.
        assert!(mismatch(
            page(&db, &md, &RecordScan::new(all.clone()), &resume("")).await
        ));
        assert!(mismatch(
            page(
                &db,
                &md,
                &RecordScan::new(some.clone()).reverse(true),
                &resume("")
            )
            .await
        ));
        assert!(mismatch(
            page(
                &db,
                &md,
                &RecordScan::new(some.clone()).record_type(USER),
                &resume("")
            )
            .await
        ));
        assert!(mismatch(
            page(&db, &md, &RecordScan::new(some.clone()), &resume("other")).await
        ));
        assert!(mismatch(page(&db, &md, &tier_scan(1), &resume("")).await));
        assert!(mismatch(page(&db, &md, &tier_scan(2), &resume("")).await));
        let union: Union<_, IndexEntry> = Union::new().child(tier_scan(1));
        assert!(mismatch(page(&db, &md, &union, &resume("")).await));
        // Other store, other metadata version.
        let tx = db.create_transaction().unwrap();
        let other = RecordStore::open(&tx, Subspace::from("elsewhere"), md.clone())
            .await
            .unwrap();
        assert!(matches!(
            other.execute(&RecordScan::new(some.clone()), &resume("")),
            Err(CursorError::Continuation(ContinuationError::Mismatch))
        ));
        let v2 = metadata_version(2);
        assert!(mismatch(
            page(&db, &v2, &RecordScan::new(some.clone()), &resume("")).await
        ));
        // Index tokens: other value, other index.
        let p = page(
            &db,
            &md,
            &tier_scan(1),
            &ExecuteOptions::new().return_limit(2),
        )
        .await
        .unwrap();
        let opts = ExecuteOptions::new().continuation(Some(p.continuation));
        assert!(page(&db, &md, &tier_scan(1), &opts).await.is_ok());
        assert!(mismatch(page(&db, &md, &tier_scan(0), &opts).await));
        assert!(mismatch(page(&db, &md, &tag_scan("a"), &opts).await));
    });
}

#[test]
fn a_forged_unsigned_token_cannot_leave_the_range() {
    block_on(async {
        let (db, md) = setup(40).await;
        let range = RecordRange::between(vec![Element::Int(10)], vec![Element::Int(20)]);
        for reverse in [false, true] {
            let plan = RecordScan::new(range.clone()).reverse(reverse);
            let tx = db.create_transaction().unwrap();
            let store = RecordStore::open(&tx, subspace(), md.clone())
                .await
                .unwrap();
            let binding = store.scan_binding(&plan, b"");
            let pk = |i: i64| fdb_records::layout::primary_key_bytes(&[Element::Int(i)]);
            for (outside, ok) in [
                (pk(5), false),
                (pk(20), false),
                (pk(35), false),
                (vec![0x00], false),
                (vec![0xff, 0xff], false),
                (pk(10), true),
                (pk(15), true),
                (pk(19), true),
            ] {
                let token = Continuation::from_bytes(&forge(&binding, after_key(outside))).unwrap();
                let result = store.execute(&plan, &ExecuteOptions::new().continuation(Some(token)));
                match result {
                    Err(CursorError::Continuation(ContinuationError::OutOfRange)) => assert!(!ok),
                    Ok(cursor) => {
                        assert!(ok);
                        let page = cursor.collect_page().await.unwrap();
                        assert!(ids(&page.items).iter().all(|i| (10..20).contains(i)));
                    }
                    Err(e) => panic!("{e}"),
                }
            }
            // A union position for a plain scan, children count mismatch.
            let children = proto::ContinuationPosition {
                kind: proto::continuation_position::Kind::Children as i32,
                key: Vec::new(),
                children: vec![after_key(pk(12))],
            };
            let token = Continuation::from_bytes(&forge(&binding, children.clone())).unwrap();
            assert!(matches!(
                store.execute(&plan, &ExecuteOptions::new().continuation(Some(token))),
                Err(CursorError::Continuation(
                    ContinuationError::InvalidPosition(_)
                ))
            ));
            let union: Union<_, IndexEntry> = Union::new().child(tier_scan(1)).child(tier_scan(2));
            let binding = store.scan_binding(&union, b"");
            let token = Continuation::from_bytes(&forge(&binding, children)).unwrap();
            assert!(matches!(
                store.execute(&union, &ExecuteOptions::new().continuation(Some(token))),
                Err(CursorError::Continuation(
                    ContinuationError::InvalidPosition(_)
                ))
            ));
        }
    });
}

#[test]
fn tampered_truncated_and_garbage_tokens_are_typed_errors() {
    block_on(async {
        let (db, md) = setup(20).await;
        let plan = RecordScan::new(RecordRange::all());
        let p = page(&db, &md, &plan, &ExecuteOptions::new().return_limit(5))
            .await
            .unwrap();
        let signer = ContinuationCodec::signed(b"k1");
        let bytes = signer.encode(&p.continuation);
        assert_eq!(signer.decode(&bytes).unwrap(), p.continuation);
        // Every single-bit flip is rejected.
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut t = bytes.clone();
                t[i] ^= 1 << bit;
                assert!(signer.decode(&t).is_err(), "byte {i} bit {bit}");
            }
        }
        // Every truncation is rejected.
        for n in 0..bytes.len() {
            assert!(signer.decode(&bytes[..n]).is_err(), "prefix {n}");
            // Unsigned decoding ignores the MAC: only the prefix that drops the whole
            // MAC field decodes, and to the same continuation.
            if let Ok(c) = Continuation::from_bytes(&bytes[..n]) {
                assert_eq!(c, p.continuation);
            }
        }
        let unsigned = p.continuation.to_bytes();
        for n in 0..unsigned.len() {
            assert!(
                Continuation::from_bytes(&unsigned[..n]).is_err(),
                "unsigned prefix {n}"
            );
        }
        // Re-signing with another key, or stripping the MAC.
        assert_eq!(
            ContinuationCodec::signed(b"k2").decode(&bytes),
            Err(ContinuationError::Tampered)
        );
        assert_eq!(signer.decode(&unsigned), Err(ContinuationError::Tampered));
        // Changing the position in an unsigned token and re-signing is impossible;
        // an unsigned reader still accepts a signed token.
        assert_eq!(Continuation::from_bytes(&bytes).unwrap(), p.continuation);
        // Strings: bad alphabet, padding, truncation.
        let text = signer.encode_string(&p.continuation);
        assert!(text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        for bad in [
            format!("{text}="),
            format!("{text}!"),
            text[..text.len() - 1].to_string(),
            String::new(),
            "💥".to_string(),
        ] {
            assert!(signer.decode_str(&bad).is_err(), "{bad}");
        }
        for garbage in [
            &b"\x00"[..],
            b"\xff\xff\xff",
            b"\x08\x01",
            b"\x08\x02\x12\x00",
        ] {
            assert!(signer.decode(garbage).is_err());
            assert!(Continuation::from_bytes(garbage).is_err());
        }
        assert!(matches!(
            Continuation::from_token_string(&"A".repeat(200_000)),
            Err(ContinuationError::TooLarge { .. })
        ));
    });
}

#[test]
fn runner_streams_everything_exactly_once_under_faults() {
    block_on(async {
        let clock = ManualClock::new();
        let db = EmbeddedDatabase::builder()
            .clock(clock.clone())
            .in_memory()
            .unwrap();
        let md = metadata();
        let users: Vec<_> = (0..300)
            .map(|i| user(i, (i % 3) as i32, &[TAGS[(i % 4) as usize]]))
            .collect();
        save(&db, &md, &users).await;
        let mut faults = FaultConfig::none(7);
        faults.transaction_too_old = 0.05;
        db.set_faults(Some(faults));
        for reverse in [false, true] {
            let runner = ScanRunner::new(db.clone());
            let md2 = md.clone();
            let got: Vec<i64> = runner
                .stream(None, move |tx, continuation| {
                    let md = md2.clone();
                    async move {
                        let store = RecordStore::open(&tx, subspace(), md).await?;
                        let options = ExecuteOptions::new()
                            .continuation(continuation)
                            .limits(ScanLimits::default().with_scan_limit(17));
                        store.execute(
                            &RecordScan::new(RecordRange::all()).reverse(reverse),
                            &options,
                        )
                    }
                })
                .map(|r| pk_int(&r.unwrap().primary_key))
                .collect()
                .await;
            let mut want: Vec<i64> = (0..300).collect();
            if reverse {
                want.reverse();
            }
            assert_eq!(got, want);
        }
        // Pages committed one transaction each, with commit faults (1020, 1021 both
        // ways, 1007): every page's items are counted once per committed page.
        db.set_faults(Some(FaultConfig::chaos(11)));
        let runner = ScanRunner::new(db.clone());
        let mut seen = Vec::new();
        let md2 = md.clone();
        let summary = runner
            .for_each_page(
                None,
                move |tx, continuation| {
                    let md = md2.clone();
                    async move {
                        let store = RecordStore::open(&tx, subspace(), md).await?;
                        let options = ExecuteOptions::new()
                            .continuation(continuation)
                            .return_limit(25);
                        store.execute(&tier_scan(1), &options)
                    }
                },
                |tx, page, _maybe_committed| {
                    // A write makes the commit real, so commit faults can hit it.
                    tx.set(b"\x01progress", &(page.items.len() as u64).to_le_bytes());
                    seen.push(entry_ids(&page.items));
                    async move { Ok(()) }
                },
            )
            .await
            .unwrap();
        let want: Vec<i64> = (0..300).filter(|i| i % 3 == 1).collect();
        // Attempts that failed delivered pages that were re-read: the committed ones
        // are the last delivery of each continuation; their union is exactly `want`.
        let delivered: Vec<i64> = seen.iter().flatten().copied().collect();
        assert!(delivered.len() >= want.len());
        assert_eq!(summary.items as usize, want.len());
        assert!(summary.continuation.unwrap().is_end());
        let mut dedup = delivered.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(dedup, want);
    });
}

#[test]
fn runner_stops_on_non_retryable_errors() {
    block_on(async {
        let (db, md) = setup(10).await;
        let p = page(
            &db,
            &md,
            &tier_scan(1),
            &ExecuteOptions::new().return_limit(1),
        )
        .await
        .unwrap();
        let runner = ScanRunner::new(db.clone());
        let results: Vec<_> = runner
            .stream(Some(p.continuation), move |tx, continuation| {
                let md = md.clone();
                async move {
                    let store = RecordStore::open(&tx, subspace(), md).await?;
                    store.execute(
                        &tier_scan(2),
                        &ExecuteOptions::new().continuation(continuation),
                    )
                }
            })
            .collect()
            .await;
        assert_eq!(results.len(), 1);
        assert!(matches!(
            results[0],
            Err(CursorError::Continuation(ContinuationError::Mismatch))
        ));
    });
}

#[test]
fn a_record_moving_behind_a_union_child_is_not_returned_twice() {
    block_on(async {
        let db = EmbeddedDatabase::in_memory().unwrap();
        let md = metadata();
        save(&db, &md, &[user(5, 1, &[]), user(8, 0, &["a"])]).await;
        for reverse in [false, true] {
            let union = || -> Union<_, IndexEntry> {
                Union::new()
                    .child(tier_scan(1).reverse(reverse))
                    .child(tag_scan("a").reverse(reverse))
            };
            save(&db, &md, &[user(5, 1, &[]), user(8, 0, &["a"])]).await;
            let first = page(&db, &md, &union(), &ExecuteOptions::new().return_limit(1))
                .await
                .unwrap();
            let first_id = entry_ids(&first.items)[0];
            // The returned record joins the other child, behind that child's position.
            let (moved, tier) = if reverse { (8, 1) } else { (5, 1) };
            assert_eq!(first_id, moved);
            save(&db, &md, &[user(moved, tier, &["a"])]).await;
            let rest = page(
                &db,
                &md,
                &union(),
                &ExecuteOptions::new().continuation(Some(first.continuation)),
            )
            .await
            .unwrap();
            let other = if reverse { 5 } else { 8 };
            assert_eq!(entry_ids(&rest.items), vec![other], "reverse={reverse}");
        }
    });
}

#[test]
fn runner_with_a_writer_thread_returns_stable_records_exactly_once_in_order() {
    let db = EmbeddedDatabase::in_memory().unwrap();
    let md = metadata();
    let users: Vec<_> = (0..400).map(|i| user(i, (i % 3) as i32, &["a"])).collect();
    block_on(save(&db, &md, &users));
    for reverse in [false, true] {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        // Writes committed so far: each page waits for a new one, so that writes
        // interleave with the scan however fast either side runs.
        let written = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let writer = {
            let (db, md, stop, written) = (db.clone(), md.clone(), stop.clone(), written.clone());
            std::thread::spawn(move || {
                // Touches only ids that are not multiples of 4 (and new ids above 400).
                let mut i = 0i64;
                while !stop.load(Ordering::SeqCst) {
                    i += 1;
                    let id = (i * 7919) % 400;
                    if id % 4 == 0 {
                        continue;
                    }
                    block_on(async {
                        if i % 3 == 0 {
                            delete(&db, &md, &[id]).await;
                        } else {
                            save(
                                &db,
                                &md,
                                &[user(id, (i % 3) as i32, &["a", "b"]), user(400 + i, 0, &[])],
                            )
                            .await;
                        }
                    });
                    written.fetch_add(1, Ordering::SeqCst);
                }
                i
            })
        };
        let runner = ScanRunner::new(db.clone());
        let md2 = md.clone();
        let got: Vec<i64> = block_on(
            runner
                .stream(None, move |tx, continuation| {
                    let md = md2.clone();
                    let seen = written.load(Ordering::SeqCst);
                    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
                    while written.load(Ordering::SeqCst) == seen
                        && std::time::Instant::now() < deadline
                    {
                        std::thread::yield_now();
                    }
                    async move {
                        let store = RecordStore::open(&tx, subspace(), md).await?;
                        let options = ExecuteOptions::new()
                            .continuation(continuation)
                            .limits(ScanLimits::default().with_scan_limit(13));
                        let range =
                            RecordRange::between(vec![Element::Int(0)], vec![Element::Int(400)]);
                        store.execute(&RecordScan::new(range).reverse(reverse), &options)
                    }
                })
                .map(|r| pk_int(&r.unwrap().primary_key))
                .collect(),
        );
        stop.store(true, Ordering::SeqCst);
        let writes = writer.join().unwrap();
        assert!(writes > 0);
        for w in got.windows(2) {
            assert!(if reverse { w[0] > w[1] } else { w[0] < w[1] }, "{w:?}");
        }
        let stable: Vec<i64> = (0..400).filter(|i| i % 4 == 0).collect();
        let got_stable: Vec<i64> = got.iter().copied().filter(|i| i % 4 == 0).collect();
        let mut want = stable.clone();
        if reverse {
            want.reverse();
        }
        assert_eq!(got_stable, want, "reverse={reverse}");
    }
}
