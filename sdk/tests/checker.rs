//! The consistency checker: passes on good stores (in one transaction and paged over
//! many), and reports every deliberately planted corruption.

mod common;

use common::store::*;
use common::User;
use fdb_records::backend::embedded::EmbeddedDatabase;
use fdb_records::index::min_max::encode_ordered;
use fdb_records::kv::{Database, FdbError, MutationType, Transaction};
use fdb_records::layout::StoreLayout;
use fdb_records::metadata::RecordMetaData;
use fdb_records::store::{check_store, CheckReport, Problem, RecordStore, StoreChecker};
use foundationdb_tuple::Element;
use futures::executor::block_on;
use std::sync::Arc;

fn int(i: i64) -> Element<'static> {
    Element::Int(i)
}
fn s(v: &str) -> Element<'static> {
    Element::String(v.to_string().into())
}

async fn populate(db: &EmbeddedDatabase, md: &Arc<RecordMetaData>) {
    with_store(db, md, |st| async move {
        for id in 1..=12 {
            st.save_record(&User {
                age: (id % 2 == 0).then_some(id as i32),
                ..user(id, &format!("u{id}@x"), (id % 3) as i32, &["a", "b"])
            })
            .await?;
            st.save_record(&order(100 + id, id % 4, id * 10 - 50))
                .await?;
        }
        st.save_record(&User {
            avatar_hash: vec![9; 260_000],
            ..user(50, "big@x", 0, &[])
        })
        .await?;
        Ok(())
    })
    .await
    .unwrap();
}

async fn check_one_tx(db: &EmbeddedDatabase, md: &Arc<RecordMetaData>) -> CheckReport {
    with_store(db, md, |st| async move { check_store(&st).await })
        .await
        .unwrap()
}

async fn check_paged(
    db: &EmbeddedDatabase,
    md: &Arc<RecordMetaData>,
    page: usize,
) -> (CheckReport, usize) {
    let mut checker = StoreChecker::new().page_size(page);
    let mut transactions = 0;
    while !checker.is_done() {
        transactions += 1;
        checker = db
            .run(|tx, _| {
                let (md, checker) = (md.clone(), &checker);
                async move {
                    let st = RecordStore::open(&tx, subspace(), md).await?;
                    checker.step(&st).await
                }
            })
            .await
            .unwrap();
    }
    (checker.into_report(), transactions)
}

#[test]
fn a_good_store_passes_in_one_transaction_and_in_pages() {
    block_on(async {
        let db = EmbeddedDatabase::in_memory().unwrap();
        let md = metadata();
        populate(&db, &md).await;
        // Some churn: updates with group moves and deletes.
        with_store(&db, &md, |st| async move {
            st.save_record(&user(3, "moved@x", 2, &["c"])).await?;
            st.delete_record(&[int(4)]).await?;
            st.delete_record(&[int(104)]).await?;
            Ok(())
        })
        .await
        .unwrap();
        let report = check_one_tx(&db, &md).await;
        assert!(report.is_ok(), "{:?}", report.problems);
        assert_eq!(report.records_checked, 23);
        assert!(report.entries_checked > 40, "{}", report.entries_checked);
        let (paged, transactions) = check_paged(&db, &md, 3).await;
        assert!(paged.is_ok(), "{:?}", paged.problems);
        assert_eq!(paged.records_checked, 23);
        assert_eq!(paged.entries_checked, report.entries_checked);
        assert!(transactions > 10, "paged over {transactions} transactions");
    });
}

#[test]
fn every_planted_corruption_is_reported() {
    block_on(async {
        let db = EmbeddedDatabase::in_memory().unwrap();
        let md = metadata();
        populate(&db, &md).await;
        let layout = StoreLayout::new(subspace());
        let version_of_7 = with_store(&db, &md, |st| async move {
            st.load_record_version(&[int(7)]).await
        })
        .await
        .unwrap()
        .unwrap();
        let l = &layout;
        db.run(|tx, _| async move {
            // VALUE entry missing for record 1.
            tx.clear(&l.index_entry_key("by_email", &[s("u1@x")], &[int(1)]));
            // Dangling entry: no record 999.
            tx.set(&l.index_entry_key("by_tag", &[s("a")], &[int(999)]), b"");
            // Stale entry: record 2 does not have tag "zzz".
            tx.set(&l.index_entry_key("by_tag", &[s("zzz")], &[int(2)]), b"");
            // Uniqueness broken: a second entry for u3@x, pointing at record 5.
            tx.set(&l.index_entry_key("by_email", &[s("u3@x")], &[int(5)]), b"");
            // Aggregates off: count, sum, max.
            tx.atomic_op(
                &l.index_group_key("per_tier", &[int(1)]),
                &2i64.to_le_bytes(),
                MutationType::Add,
            );
            tx.atomic_op(
                &l.index_group_key("delta_sum", &[int(2)]),
                &(-7i64).to_le_bytes(),
                MutationType::Add,
            );
            tx.set(
                &l.index_group_key("delta_max", &[int(3)]),
                &encode_ordered(-1000),
            );
            // Record count off.
            tx.atomic_op(
                &l.record_count_key(),
                &5i64.to_le_bytes(),
                MutationType::Add,
            );
            // Torn split record: chunk 2 of record 50 gone.
            tx.clear(&l.record_key(&[int(50)], 2));
            // VERSION entry of record 7 gone.
            tx.clear(&l.index_entry_key(
                "changes",
                &[Element::Versionstamp(version_of_7.to_versionstamp())],
                &[int(7)],
            ));
            Ok::<_, FdbError>(())
        })
        .await
        .unwrap();

        let expected = [
            "index `by_email` lacks entry (\"u1@x\") for record (1)",
            "index `by_tag` entry (\"a\") points to missing record (999)",
            "index `by_tag` entry (\"zzz\") does not match record (2)",
            "unique index `by_email`: values (\"u3@x\") belong to records (3) and (5)",
            "index `by_email` entry (\"u3@x\") does not match record (5)",
            "index `per_tier` group (1): stored Some(6), records say Some(4)",
            "index `delta_sum` group (2): stored Some(23), records say Some(30)",
            "index `delta_max` group (3): stored Some(-1000), records say Some(60)",
            "record count is 30, the store holds 25 records",
            "record (50) is torn: chunks [2] of 3 are missing",
            // The torn record cannot be recounted, so the counts it is part of differ too.
            "index `per_tier` group (0): stored Some(5), records say Some(4)",
            "index `users` group (): stored Some(13), records say Some(12)",
            "index `changes` lacks entry",
        ];
        let one = check_one_tx(&db, &md).await;
        let (paged, _) = check_paged(&db, &md, 4).await;
        for report in [&one, &paged] {
            let messages: Vec<String> = report.problems.iter().map(|p| p.to_string()).collect();
            for e in expected {
                assert!(
                    messages.iter().any(|m| m.starts_with(e)),
                    "missing `{e}` in {messages:#?}"
                );
            }
            assert_eq!(messages.len(), expected.len(), "{messages:#?}");
            assert!(report
                .problems
                .iter()
                .any(|p| matches!(p, Problem::TornRecord { .. })));
        }
    });
}
