//! Quick start: open the embedded engine (FoundationDB's semantics, in-process and
//! durable on disk), write in a transaction, read it back, and watch a conflict
//! being retried by the run loop.
//!
//! Run with `cargo run -p examples --bin quickstart`.

use fdb_records::backend::embedded::EmbeddedDatabase;
use fdb_records::kv::{Database, FdbError, MutationType, RangeOption, Transaction};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    futures::executor::block_on(run())
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("fdb-records-quickstart-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("quickstart.redb");
    println!("Opening an embedded database at {}", path.display());
    let db = EmbeddedDatabase::open(&path)?;

    // One transaction: plain writes plus an atomic counter that never conflicts.
    db.run(|tx, _maybe_committed| async move {
        for (id, name) in [(1u8, "Ada"), (2, "Grace"), (3, "Barbara")] {
            tx.set(&[b"user/".as_slice(), &[id]].concat(), name.as_bytes());
            tx.atomic_op(b"stats/user_count", &1i64.to_le_bytes(), MutationType::Add);
        }
        Ok::<_, FdbError>(())
    })
    .await?;
    println!("Committed 3 users at version {}", db.committed_version());

    // Read them back: a range read, and the counter.
    let (users, count) = db
        .run(|tx, _| async move {
            let users = tx
                .get_range_all(RangeOption::from_prefix(b"user/"), false)
                .await?;
            let count = tx.get(b"stats/user_count", false).await?;
            Ok::<_, FdbError>((users, count))
        })
        .await?;
    for kv in &users {
        println!(
            "  user {} = {}",
            kv.key[5],
            String::from_utf8_lossy(&kv.value)
        );
    }
    let count = i64::from_le_bytes(count.unwrap_or_default().try_into().unwrap_or([0; 8]));
    println!("user_count = {count}");
    assert_eq!(users.len(), 3);
    assert_eq!(count, 3);

    // Optimistic concurrency: a transaction whose read was overwritten fails to commit
    // with not_committed (1020) and the run loop retries it.
    let attempts = std::sync::atomic::AtomicU32::new(0);
    let outcome = fdb_records::kv::run(&db, |tx, _| {
        let db = db.clone();
        let attempts = &attempts;
        async move {
            let name = tx.get(b"user/\x01", false).await?;
            if attempts.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                // A concurrent writer changes what we just read.
                db.run(|other, _| async move {
                    other.set(b"user/\x01", b"Ada Lovelace");
                    Ok::<_, FdbError>(())
                })
                .await?;
            }
            tx.set(b"last_seen", &name.unwrap_or_default());
            Ok::<_, FdbError>(())
        }
    })
    .await?;
    println!(
        "A conflicting transaction committed after {} attempts (versionstamp {:02x?})",
        outcome.attempts,
        outcome.committed.versionstamp.unwrap_or_default()
    );
    assert_eq!(outcome.attempts, 2);

    drop(db);
    std::fs::remove_dir_all(&dir)?;
    println!("Done.");
    Ok(())
}
