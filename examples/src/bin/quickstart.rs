//! Quick start: a record schema, a record store on the embedded engine, saving and
//! loading records, an index query, a count index, and paging with continuation
//! tokens — each step numbered and checked. Exits non-zero if any check fails.
//!
//! Run with `cargo run -p examples --bin quickstart`
//! (on FoundationDB: `cargo run -p examples --features fdb --bin quickstart`).

use examples::backend::{reset, Backend};
use examples::schema::examples::users::{Tier, User};
use examples::users::{metadata_v1, sample_user, BY_CITY, COUNT_PER_TIER, USER};
use fdb_records::cursor::{
    ContinuationCodec, CursorError, ExecuteOptions, NoNextReason, RecordScan,
};
use fdb_records::kv::Database;
use fdb_records::store::{RecordRange, RecordStore, RecordStoreError, ScanOptions, TupleRange};
use foundationdb_tuple::{Element, Subspace};

const USERS: i64 = 25;
const PAGE_SIZE: usize = 10;

/// Collects failed checks; `main` exits with status 1 if there are any.
#[derive(Default)]
struct Checks {
    failed: Vec<String>,
}

impl Checks {
    fn check(&mut self, ok: bool, what: &str) {
        if ok {
            println!("   ✓ {what}");
        } else {
            println!("   ✗ FAILED: {what}");
            self.failed.push(what.to_string());
        }
    }
}

fn main() {
    match futures::executor::block_on(run()) {
        Ok(checks) if checks.failed.is_empty() => println!("\nAll checks passed."),
        Ok(checks) => {
            eprintln!(
                "\n{} check(s) failed: {:?}",
                checks.failed.len(),
                checks.failed
            );
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("\nquickstart failed: {e}");
            std::process::exit(1);
        }
    }
}

async fn run() -> Result<Checks, Box<dyn std::error::Error + Send + Sync>> {
    let mut checks = Checks::default();

    println!("1. Define the schema");
    // `User` is generated from schemas/examples/users.proto by examples/build.rs
    // (no protoc needed); the metadata says how records are keyed and indexed.
    let metadata = metadata_v1()?;
    println!("   record type {USER}, primary key: id");
    for index in metadata.indexes().values() {
        println!("   index {:<16} {:?}", index.name, index.index_type);
    }

    println!("2. Open a record store");
    let backend = Backend::open("quickstart")?;
    let db = backend.db.clone();
    let subspace = Subspace::from(("quickstart",));
    reset(&db, &subspace).await?;
    println!("   database: {}", backend.location);
    println!("   store subspace: (\"quickstart\",)");

    println!("3. Save {USERS} users in one transaction");
    db.run(|tx, _| {
        let (metadata, subspace) = (metadata.clone(), subspace.clone());
        async move {
            let store = RecordStore::open(&tx, subspace, metadata).await?;
            for id in 1..=USERS {
                store.save_record(&sample_user(id)).await?;
            }
            Ok::<_, RecordStoreError>(())
        }
    })
    .await?;
    let count = db
        .run(|tx, _| {
            let (metadata, subspace) = (metadata.clone(), subspace.clone());
            async move {
                RecordStore::open(&tx, subspace, metadata)
                    .await?
                    .record_count()
                    .await
            }
        })
        .await?;
    println!("   committed; the store counts {count} records");
    checks.check(count == USERS, &format!("record count is {USERS}"));

    println!("4. Load user 7 by primary key");
    let loaded: Option<User> = db
        .run(|tx, _| {
            let (metadata, subspace) = (metadata.clone(), subspace.clone());
            async move {
                let store = RecordStore::open(&tx, subspace, metadata).await?;
                store.load_record::<User>(&[Element::Int(7)]).await
            }
        })
        .await?;
    match &loaded {
        Some(user) => println!(
            "   id={} name={:?} email={:?} city={:?}",
            user.id,
            user.name,
            user.email,
            user.address.as_ref().map(|a| a.city.as_str()).unwrap_or("")
        ),
        None => println!("   not found"),
    }
    checks.check(
        loaded == Some(sample_user(7)),
        "user 7 loads back exactly as saved",
    );

    println!("5. Query the index {BY_CITY}: users in Paris");
    let paris = db
        .run(|tx, _| {
            let (metadata, subspace) = (metadata.clone(), subspace.clone());
            async move {
                let store = RecordStore::open(&tx, subspace, metadata).await?;
                let range = TupleRange::prefix(vec![Element::String("Paris".into())]);
                store
                    .scan_index_records(BY_CITY, &range, ScanOptions::forward())
                    .await
            }
        })
        .await?;
    let paris_ids: Vec<i64> = paris
        .iter()
        .map(|(_, record)| record.to_record::<User>().map(|u| u.id))
        .collect::<Result<_, _>>()?;
    println!("   ids: {paris_ids:?}");
    let expected: Vec<i64> = (1..=USERS)
        .filter(|id| sample_user(*id).address.unwrap().city == "Paris")
        .collect();
    checks.check(
        paris_ids == expected,
        "the index returns exactly the users in Paris",
    );

    println!("6. Read the count index {COUNT_PER_TIER}");
    let counts = db
        .run(|tx, _| {
            let (metadata, subspace) = (metadata.clone(), subspace.clone());
            async move {
                let store = RecordStore::open(&tx, subspace, metadata).await?;
                let mut counts = Vec::new();
                for tier in [Tier::Free, Tier::Pro, Tier::Enterprise] {
                    let n = store
                        .count(COUNT_PER_TIER, &[Element::Int(tier as i64)])
                        .await?;
                    counts.push((tier, n));
                }
                Ok::<_, RecordStoreError>(counts)
            }
        })
        .await?;
    for (tier, n) in &counts {
        let expected = (1..=USERS)
            .filter(|id| sample_user(*id).tier == *tier as i32)
            .count() as i64;
        println!("   {:<16} {n}", tier.as_str_name());
        checks.check(
            *n == expected,
            &format!("{} count is {expected}", tier.as_str_name()),
        );
    }

    println!("7. Read two pages of users, {PAGE_SIZE} per page, with a signed continuation token");
    // A token is an opaque string a client hands back; signing it means a client
    // cannot forge or alter one. Each page runs in its own transaction.
    let codec = ContinuationCodec::signed(b"quickstart demo key");
    let plan = RecordScan::new(RecordRange::all()).record_type(USER);
    let mut token: Option<String> = None;
    let mut seen = Vec::new();
    for page_number in 1..=2 {
        let continuation = token.as_deref().map(|t| codec.decode_str(t)).transpose()?;
        let page = db
            .run(|tx, _| {
                let (metadata, subspace, plan) = (metadata.clone(), subspace.clone(), plan.clone());
                let continuation = continuation.clone();
                async move {
                    let store = RecordStore::open(&tx, subspace, metadata).await?;
                    let options = ExecuteOptions::new()
                        .continuation(continuation)
                        .return_limit(PAGE_SIZE);
                    store.execute(&plan, &options)?.collect_page().await
                }
            })
            .await
            .map_err(|e: CursorError| e)?;
        let ids: Vec<i64> = page
            .items
            .iter()
            .map(|r| r.to_record::<User>().map(|u| u.id))
            .collect::<Result<_, _>>()?;
        let next = codec.encode_string(&page.continuation);
        println!("   page {page_number}: ids {ids:?}");
        println!(
            "           next token {}… ({} chars)",
            &next[..next.len().min(24)],
            next.len()
        );
        checks.check(
            page.reason == NoNextReason::ReturnLimitReached,
            &format!("page {page_number} stopped at the page size, more to come"),
        );
        seen.extend(ids);
        token = Some(next);
    }
    checks.check(
        seen == (1..=2 * PAGE_SIZE as i64).collect::<Vec<_>>(),
        "the two pages hold ids 1..=20, in order, none twice",
    );
    // Change one character in the middle of the last token.
    let mut chars: Vec<char> = token.clone().unwrap_or_default().chars().collect();
    let middle = chars.len() / 2;
    if let Some(c) = chars.get_mut(middle) {
        *c = if *c == 'A' { 'B' } else { 'A' };
    }
    let tampered: String = chars.into_iter().collect();
    let refused = codec.decode_str(&tampered);
    println!(
        "   a tampered token: {}",
        match &refused {
            Err(e) => e.to_string(),
            Ok(_) => "accepted".to_string(),
        }
    );
    checks.check(refused.is_err(), "a tampered token is refused");

    drop(db);
    drop(backend);
    println!("8. Done: the temporary database was removed");
    Ok(checks)
}
