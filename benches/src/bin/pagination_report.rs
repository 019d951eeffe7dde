//! Page-k cost against page 1 with continuations, next to offset pagination (skip N),
//! at one million records on the embedded engine (in memory).
//!
//! ```text
//! cargo run --release -p benches --bin pagination-report [-- --records N --page-size P --out FILE]
//! ```
//!
//! Loads the records in large transactions, pages once through everything with
//! continuations (one transaction per page, keeping the tokens of selected pages),
//! then times fetching page k from its token and fetching page k by skipping
//! (k-1)·P records from the start, each in a fresh transaction. Writes a Markdown
//! report (default `benches/PAGINATION_REPORT.md`).

use fdb_records::backend::embedded::EmbeddedDatabase;
use fdb_records::cursor::{Continuation, ExecuteOptions, NoNextReason, RecordScan, ScanLimits};
use fdb_records::key_expression::field;
use fdb_records::kv::{Database, Transaction};
use fdb_records::metadata::{example_pool, RecordMetaData, RecordTypeDef};
use fdb_records::store::{RecordRange, RecordStore};
use foundationdb_tuple::Subspace;
use futures::executor::block_on;
use futures::StreamExt;
use prost_reflect::{DynamicMessage, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

const USER: &str = "examples.users.User";

struct Args {
    records: usize,
    page_size: usize,
    out: String,
}

fn args() -> Args {
    let mut a = Args {
        records: 1_000_000,
        page_size: 100,
        out: concat!(env!("CARGO_MANIFEST_DIR"), "/PAGINATION_REPORT.md").to_string(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().expect("flag needs a value");
        match flag.as_str() {
            "--records" => a.records = value().parse().expect("number"),
            "--page-size" => a.page_size = value().parse().expect("number"),
            "--out" => a.out = value(),
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn micros(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1e6)
}

fn main() {
    let args = args();
    let metadata = Arc::new(
        RecordMetaData::builder(example_pool())
            .record_type(RecordTypeDef::new(USER).primary_key(field("id")))
            .build()
            .unwrap(),
    );
    // Offset pagination at deep pages reads most of the store in one transaction: give
    // transactions a long lifetime so that it can be measured at all (FoundationDB
    // would end it with transaction_too_old after 5 s).
    let db = EmbeddedDatabase::builder()
        .max_transaction_lifetime(Duration::from_secs(600))
        .in_memory()
        .unwrap();
    let subspace = Subspace::from("bench");
    let descriptor = example_pool().get_message_by_name(USER).unwrap();

    // Load.
    let started = Instant::now();
    let per_tx = 5_000;
    block_on(async {
        for chunk_start in (0..args.records).step_by(per_tx) {
            let tx = db.create_transaction().unwrap();
            let store = RecordStore::open(&tx, subspace.clone(), metadata.clone())
                .await
                .unwrap();
            for id in chunk_start..(chunk_start + per_tx).min(args.records) {
                let mut user = DynamicMessage::new(descriptor.clone());
                user.set_field_by_name("id", Value::I64(id as i64));
                user.set_field_by_name("name", Value::String(format!("user {id}")));
                store.save_dynamic(&user, Default::default()).await.unwrap();
            }
            drop(store);
            tx.commit().await.unwrap();
        }
    });
    let load = started.elapsed();
    eprintln!("loaded {} records in {load:.1?}", args.records);

    let pages_total = args.records.div_ceil(args.page_size);
    let mut selected: Vec<usize> = [1usize, 10, 100, 1_000, 5_000, 10_000]
        .into_iter()
        .filter(|k| *k <= pages_total)
        .collect();
    if !selected.contains(&pages_total) && pages_total > 1 {
        selected.push(pages_total);
    }

    let page_from = |continuation: Option<Continuation>| {
        let (db, metadata, subspace) = (&db, &metadata, &subspace);
        async move {
            let tx = db.create_transaction().unwrap();
            let store = RecordStore::open(&tx, subspace.clone(), metadata.clone())
                .await
                .unwrap();
            let options = ExecuteOptions::new()
                .continuation(continuation)
                .return_limit(args.page_size);
            let page = store
                .execute(&RecordScan::new(RecordRange::all()), &options)
                .unwrap()
                .collect_page()
                .await
                .unwrap();
            tx.commit().await.unwrap();
            page
        }
    };

    // One pass through everything with continuations, keeping selected tokens.
    let started = Instant::now();
    let mut tokens: BTreeMap<usize, Option<Continuation>> = BTreeMap::new();
    let mut token: Option<Continuation> = None;
    let mut seen = 0usize;
    let mut k = 1;
    block_on(async {
        loop {
            if selected.contains(&k) {
                tokens.insert(k, token.clone());
            }
            let page = page_from(token.clone()).await;
            seen += page.items.len();
            if page.reason == NoNextReason::SourceExhausted {
                break;
            }
            token = Some(page.continuation);
            k += 1;
        }
    });
    let full_pass = started.elapsed();
    assert_eq!(seen, args.records, "every record once");
    eprintln!("paged through {seen} records in {k} pages in {full_pass:.1?}");

    // Page k from its token: every selected k in turn, round after round, before any
    // offset read (an offset read of a deep page churns the heap, which would slow
    // whatever is measured after it).
    let reps = 31;
    let mut continuation_times: BTreeMap<usize, Vec<Duration>> = BTreeMap::new();
    let mut first_ids = BTreeMap::new();
    block_on(async {
        for _ in 0..reps {
            for &k in &selected {
                let token = tokens[&k].clone();
                let t = Instant::now();
                let page = page_from(token).await;
                continuation_times.entry(k).or_default().push(t.elapsed());
                first_ids.insert(k, page.items.first().map(|r| r.primary_key.clone()));
            }
        }
    });
    // Then page k by skipping.
    let mut rows = Vec::new();
    for &k in &selected {
        let continuation = median(continuation_times.remove(&k).unwrap_or_default());
        let first_id = first_ids.remove(&k).flatten();
        let skip = (k - 1) * args.page_size;
        let offset_reps = if skip > 100_000 { 3 } else { 9 };
        let mut times = Vec::new();
        block_on(async {
            for _ in 0..offset_reps {
                let t = Instant::now();
                let tx = db.create_transaction().unwrap();
                let store = RecordStore::open(&tx, subspace.clone(), metadata.clone())
                    .await
                    .unwrap();
                let options = ExecuteOptions::new().limits(ScanLimits::unlimited());
                let items: Vec<_> = store
                    .execute(&RecordScan::new(RecordRange::all()), &options)
                    .unwrap()
                    .skip(skip)
                    .take(args.page_size)
                    .collect()
                    .await;
                times.push(t.elapsed());
                let first = items.into_iter().next().map(|r| r.unwrap().primary_key);
                assert_eq!(first, first_id, "both styles return the same page");
            }
        });
        let offset = median(times);
        eprintln!(
            "page {k}: continuation {} µs, offset {} µs",
            micros(continuation),
            micros(offset)
        );
        rows.push((k, skip, continuation, offset));
    }

    let base_c = rows[0].2;
    let base_o = rows[0].3;
    let mut table = String::from(
        "| page k | records before it | continuation: page k (median µs) | vs page 1 | offset (skip N): page k (median µs) | vs page 1 |\n|---:|---:|---:|---:|---:|---:|\n",
    );
    for (k, skip, c, o) in &rows {
        table.push_str(&format!(
            "| {k} | {skip} | {} | {:.2}× | {} | {:.1}× |\n",
            micros(*c),
            c.as_secs_f64() / base_c.as_secs_f64(),
            micros(*o),
            o.as_secs_f64() / base_o.as_secs_f64(),
        ));
    }
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let report = format!(
        "# Pagination: continuations vs offset\n\n\
         Generated by `cargo run --release -p benches --bin pagination-report` \
         ({records} records, pages of {page}, embedded engine in memory; {cpu}, {cores} cores available).\n\n\
         * Load: {records} records in transactions of {per_tx}: {load:.1?}.\n\
         * Full scan with continuations, one transaction per page ({pages} pages): {full:.1?} \
         ({per_page:.0} µs per page on average).\n\
         * Each page-k time is the median of {reps} runs (offset: 3–9 runs), each in a fresh \
         transaction that opens the store; continuation pages are timed in rounds over every \
         k, all before the offset reads.\n\n\
         {table}\n\
         A continuation seeks to the last primary key returned, so page k reads the same keys \
         as page 1. Offset pagination reads and discards (k−1)·{page} records first: its cost \
         grows linearly, and at deep pages one request would exceed FoundationDB's 5-second \
         transaction limit (this benchmark lifts the embedded engine's limit to measure it).\n",
        records = args.records,
        page = args.page_size,
        per_tx = per_tx,
        load = load,
        pages = k,
        full = full_pass,
        per_page = full_pass.as_secs_f64() * 1e6 / k as f64,
        reps = reps,
        table = table,
        cpu = cpu,
        cores = cores,
    );
    std::fs::write(&args.out, &report).expect("write report");
    println!("{report}");
}
