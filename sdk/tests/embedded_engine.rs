//! Behaviour of the embedded engine beyond the backend-neutral conformance suite:
//! group commit and its determinism.

use fdb_records::backend::embedded::{EmbeddedDatabase, ManualClock};
use fdb_records::kv::{Database, MutationType, Transaction};
use futures::executor::block_on;
use futures::future::join_all;
use std::collections::BTreeSet;

fn commit_concurrently(db: &EmbeddedDatabase, n: usize) -> Vec<i64> {
    block_on(join_all((0..n).map(|i| {
        let tx = db.create_transaction().unwrap();
        async move {
            tx.set(format!("k{i:04}").as_bytes(), b"v");
            tx.atomic_op(b"count", &1i64.to_le_bytes(), MutationType::Add);
            tx.commit().await.unwrap().version
        }
    })))
}

#[test]
fn concurrent_commits_on_one_thread_share_a_batch() {
    let dir = tempfile::tempdir().unwrap();
    let db = EmbeddedDatabase::open(dir.path().join("db.redb")).unwrap();
    let versions = commit_concurrently(&db, 64);
    let distinct: BTreeSet<i64> = versions.iter().copied().collect();
    let stats = db.stats();
    assert_eq!(stats.committed, 64);
    assert_eq!(stats.batches, distinct.len() as u64);
    assert!(
        stats.batches <= 2,
        "64 ready commits should share one durable write, got {} batches",
        stats.batches
    );
    let count = block_on(db.run(|tx, _| async move { tx.get(b"count", false).await })).unwrap();
    assert_eq!(count, Some(64i64.to_le_bytes().to_vec()));
}

#[test]
fn batching_is_deterministic_on_a_single_thread() {
    let run = || {
        let db = EmbeddedDatabase::builder()
            .clock(ManualClock::new())
            .in_memory()
            .unwrap();
        let mut all = Vec::new();
        for _ in 0..5 {
            all.extend(commit_concurrently(&db, 10));
        }
        (all, db.stats())
    };
    assert_eq!(run(), run());
}

#[test]
fn conflicting_commits_in_one_batch_are_resolved_in_queue_order() {
    // Both read `k` and write it; in one batch the second sees the first's write.
    let db = EmbeddedDatabase::in_memory().unwrap();
    block_on(db.run(|tx, _| async move {
        tx.set(b"k", b"0");
        Ok::<_, fdb_records::kv::FdbError>(())
    }))
    .unwrap();
    let results = block_on(join_all((0..2).map(|i| {
        let tx = db.create_transaction().unwrap();
        async move {
            tx.get(b"k", false).await.unwrap();
            tx.set(b"k", format!("{i}").as_bytes());
            tx.commit().await.map(|c| c.version).map_err(|e| e.code())
        }
    })));
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    assert_eq!(
        results.iter().filter(|r| **r == Err(1020)).count(),
        1,
        "{results:?}"
    );
    assert_eq!(db.stats().rejected, 1);
}
