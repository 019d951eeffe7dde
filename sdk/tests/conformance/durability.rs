//! Durability: committed data survives closing and reopening the database.

use crate::harness::*;
use fdb_records::kv::code::*;
use fdb_records::kv::{MutationType, Transaction};
use futures::executor::block_on;

conformance!(reopen_keeps_committed_data_and_versions_keep_increasing);

pub fn reopen_keeps_committed_data_and_versions_keep_increasing<H: Harness>(h: &H) {
    if !h.can_reopen() {
        h.skip("this backend has no durable state to reopen");
        return;
    }
    let big = vec![b'b'; 100_000];
    let stamp_template = {
        let mut t = h.k("vs/");
        let pos = t.len() as u32;
        t.extend([0u8; 10]);
        t.extend(pos.to_le_bytes());
        t
    };
    let (mut version_before, mut stamp_before) = {
        let db = h.db();
        block_on(async {
            put_all(
                &db,
                &[
                    h.kv("a", b"1"),
                    h.kv("b", b"2"),
                    h.kv("c", b"3"),
                    h.kv("big", &big),
                ],
            )
            .await;
            let t = tx(&db);
            t.clear(&h.k("b"));
            t.atomic_op(&h.k("n"), &le(41, 8), MutationType::Add);
            t.commit().await.unwrap();
            // A transaction that fails leaves nothing behind.
            let loser = reader(&db).await;
            loser.get(&h.k("a"), false).await.unwrap();
            put(&db, &h.k("a"), b"10").await;
            loser.set(&h.k("lost"), b"x");
            assert_eq!(code(loser.commit().await), NOT_COMMITTED);
            let t = tx(&db);
            t.atomic_op(
                &stamp_template,
                b"first",
                MutationType::SetVersionstampedKey,
            );
            let c = t.commit().await.unwrap();
            (c.version, c.versionstamp.unwrap())
        })
    }; // every handle dropped here

    let expected = vec![
        h.kv("a", b"10"),
        h.kv("big", &big),
        h.kv("c", b"3"),
        h.kv("n", &le(41, 8)),
    ];
    let first_stamp = stamp_before;
    for round in 0..2 {
        h.reopen();
        let db = h.db();
        (version_before, stamp_before) = block_on(async {
            let all = scan_prefix(&db, h.prefix()).await;
            let (plain, stamped): (Vec<_>, Vec<_>) = all
                .into_iter()
                .partition(|kv| !kv.key.starts_with(&h.k("vs/")));
            assert_eq!(plain, expected, "data after reopen #{}", round + 1);
            assert_eq!(
                stamped.len(),
                round + 1,
                "one versionstamped key per commit"
            );
            assert_eq!(
                stamped[0].key,
                [&h.k("vs/")[..], &first_stamp[..]].concat(),
                "versionstamped key after reopen"
            );

            let t = tx(&db);
            let rv = t.get_read_version().await.unwrap();
            assert!(
                rv >= version_before,
                "read version {rv} < last commit {version_before}"
            );
            t.atomic_op(
                &stamp_template,
                b"again",
                MutationType::SetVersionstampedKey,
            );
            t.atomic_op(&h.k("n"), &le(0, 8), MutationType::Add);
            let c = t.commit().await.unwrap();
            let stamp = c.versionstamp.unwrap();
            assert!(c.version > version_before, "commit version after reopen");
            assert!(
                stamp > stamp_before,
                "versionstamp after reopen must exceed the one before"
            );
            assert_eq!(stamp_version(&stamp), c.version);
            (c.version, stamp)
        });
    }
}
