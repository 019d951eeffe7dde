//! Schema evolution: add an index to a populated store (metadata version 2) and build
//! it online, in batches across transactions, while another thread keeps writing.
//! The index is write-only (maintained, not queryable) until the build finishes, then
//! readable and answering queries — including for records written during the build.
//! Exits non-zero if a check fails.
//!
//! Run with `cargo run -p examples --bin schema-evolution`
//! (on FoundationDB: `cargo run -p examples --features fdb --bin schema-evolution`).

use examples::backend::{reset, Backend, Db};
use examples::schema::examples::users::User;
use examples::users::{metadata_v1, metadata_v2, sample_user, BY_NAME};
use fdb_records::kv::Database;
use fdb_records::metadata::RecordMetaData;
use fdb_records::store::{
    check_store, BuildConfig, IndexState, OnlineIndexBuilder, RecordStore, RecordStoreError,
    ScanOptions, TupleRange,
};
use foundationdb_tuple::{Element, Subspace};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

const USERS: i64 = 5_000;

fn main() {
    match futures::executor::block_on(run()) {
        Ok(failed) if failed.is_empty() => println!("\nAll checks passed."),
        Ok(failed) => {
            eprintln!("\n{} check(s) failed: {failed:?}", failed.len());
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("\nschema-evolution failed: {e}");
            std::process::exit(1);
        }
    }
}

fn check(failed: &mut Vec<String>, ok: bool, what: &str) {
    println!("   {} {what}", if ok { "✓" } else { "✗ FAILED:" });
    if !ok {
        failed.push(what.to_string());
    }
}

async fn state_of(
    db: &Db,
    subspace: &Subspace,
    metadata: &Arc<RecordMetaData>,
) -> Result<IndexState, RecordStoreError> {
    db.run(|tx, _| {
        let (subspace, metadata) = (subspace.clone(), metadata.clone());
        async move {
            RecordStore::open(&tx, subspace, metadata)
                .await?
                .index_state(BY_NAME)
        }
    })
    .await
}

async fn users_named(
    db: &Db,
    subspace: &Subspace,
    metadata: &Arc<RecordMetaData>,
    name: &str,
) -> Result<Vec<i64>, RecordStoreError> {
    db.run(|tx, _| {
        let (subspace, metadata) = (subspace.clone(), metadata.clone());
        let range = TupleRange::prefix(vec![Element::String(name.to_string().into())]);
        async move {
            let store = RecordStore::open(&tx, subspace, metadata).await?;
            let found = store
                .scan_index_records(BY_NAME, &range, ScanOptions::forward())
                .await?;
            found
                .iter()
                .map(|(_, r)| r.to_record::<User>().map(|u| u.id))
                .collect()
        }
    })
    .await
}

async fn run() -> Result<Vec<String>, Box<dyn std::error::Error + Send + Sync>> {
    let mut failed = Vec::new();
    let backend = Backend::open("schema-evolution")?;
    let db = backend.db.clone();
    let subspace = Subspace::from(("schema-evolution",));
    reset(&db, &subspace).await?;
    println!("database: {}", backend.location);

    println!("1. Populate a store with metadata version 1 ({USERS} users, no index on name)");
    let v1 = metadata_v1()?;
    for chunk in (1..=USERS).collect::<Vec<_>>().chunks(1_000) {
        db.run(|tx, _| {
            let (v1, subspace) = (v1.clone(), subspace.clone());
            async move {
                let store = RecordStore::open(&tx, subspace, v1).await?;
                for id in chunk {
                    store.save_record(&sample_user(*id)).await?;
                }
                Ok::<_, RecordStoreError>(())
            }
        })
        .await?;
    }

    println!("2. Open the store with metadata version 2, which adds the index {BY_NAME}");
    let v2 = metadata_v2()?;
    let state = state_of(&db, &subspace, &v2).await?;
    println!("   {BY_NAME} is {state:?}: writers maintain it, queries are refused");
    check(
        &mut failed,
        state == IndexState::WriteOnly,
        "the new index starts write-only",
    );
    let refused = users_named(&db, &subspace, &v2, "User 0042").await;
    println!(
        "   a query now: {}",
        match &refused {
            Err(e) => e.to_string(),
            Ok(ids) => format!("{ids:?}"),
        }
    );
    check(
        &mut failed,
        matches!(refused, Err(RecordStoreError::IndexNotReadable { .. })),
        "querying it fails with IndexNotReadable",
    );

    println!("3. Build it online while a writer renames users and adds new ones");
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let writer = {
        let (db, subspace, v2, stop, written) = (
            db.clone(),
            subspace.clone(),
            v2.clone(),
            stop.clone(),
            written.clone(),
        );
        std::thread::spawn(move || {
            futures::executor::block_on(async move {
                let mut n = 0i64;
                while !stop.load(Ordering::Relaxed) && n < 2_000 {
                    // Rename an existing user, and add a new one, in one transaction.
                    let renamed = 1 + (n * 37) % USERS;
                    let added = USERS + 1 + n;
                    db.run(|tx, _| {
                        let (subspace, v2) = (subspace.clone(), v2.clone());
                        async move {
                            let store = RecordStore::open(&tx, subspace, v2).await?;
                            let mut user = sample_user(renamed);
                            user.name = format!("Renamed {renamed}");
                            store.save_record(&user).await?;
                            let mut user = sample_user(added);
                            user.name = format!("Added {added}");
                            store.save_record(&user).await?;
                            Ok::<_, RecordStoreError>(())
                        }
                    })
                    .await?;
                    written.fetch_add(1, Ordering::Relaxed);
                    n += 1;
                }
                Ok::<i64, RecordStoreError>(n)
            })
        })
    };
    let builder = OnlineIndexBuilder::new(db.clone(), subspace.clone(), v2.clone(), BY_NAME)
        .config(BuildConfig {
            initial_batch: 200,
            max_batch: 500,
            max_transactions: Some(3),
            ..BuildConfig::default()
        });
    let mut indexed = 0;
    let mut transactions = 0;
    for round in 1..=10_000 {
        let report = builder.build().await?;
        indexed += report.records_indexed;
        transactions += report.transactions;
        println!(
            "   round {round:>2}: {indexed:>5} records indexed in {transactions:>3} transactions (batch {}), writer committed {} transactions{}",
            report.final_batch,
            written.load(Ordering::Relaxed),
            if report.readable { ", index READABLE" } else { "" }
        );
        if report.complete {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let renames = writer.join().map_err(|_| "writer panicked")??;

    println!("4. The index is readable and answers queries");
    let state = state_of(&db, &subspace, &v2).await?;
    println!("   {BY_NAME} is {state:?}");
    check(
        &mut failed,
        state == IndexState::Readable,
        "the index is readable",
    );
    let found = users_named(&db, &subspace, &v2, "User 0042").await?;
    println!("   name = \"User 0042\"      → ids {found:?}");
    let unchanged_42 = (0..renames).all(|n| 1 + (n * 37) % USERS != 42);
    check(
        &mut failed,
        found == if unchanged_42 { vec![42] } else { vec![] },
        "a record saved before the build is found",
    );
    if renames > 0 {
        let last = renames - 1;
        let renamed = 1 + (last * 37) % USERS;
        let found = users_named(&db, &subspace, &v2, &format!("Renamed {renamed}")).await?;
        println!("   name = \"Renamed {renamed}\" → ids {found:?}");
        check(
            &mut failed,
            found == vec![renamed],
            "a record renamed during the build is found under its new name",
        );
        let added = USERS + 1 + last;
        let found = users_named(&db, &subspace, &v2, &format!("Added {added}")).await?;
        println!("   name = \"Added {added}\"    → ids {found:?}");
        check(
            &mut failed,
            found == vec![added],
            "a record added during the build is found",
        );
    }

    println!("5. Check the whole store (every index against every record)");
    let report = db
        .run(|tx, _| {
            let (subspace, v2) = (subspace.clone(), v2.clone());
            async move { check_store(&RecordStore::open(&tx, subspace, v2).await?).await }
        })
        .await?;
    println!("   {} problem(s)", report.problems.len());
    check(&mut failed, report.is_ok(), "the store is consistent");
    drop(db);
    drop(backend);
    Ok(failed)
}
