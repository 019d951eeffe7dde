//! Criterion benchmarks of the record layer next to the key-value operations it performs.
//!
//! ```text
//! cargo bench -p benches --bench record_layer
//! ```
//!
//! Each group has a `record_store` member and a `raw_kv` member doing the same
//! key-value operations by hand on the same in-memory engine: a save with two value
//! indexes and a count index, ten typed loads in one transaction, and a page of 100
//! records (the raw side reads the same 201 keys with one range read and decodes the
//! records). The `report` bin runs the same workloads interleaved, and against SQLite.

mod common;

use benches::records::{
    bulk_load, load_typed, metadata, page, raw_load_typed, raw_save_one, save_one, Users,
};
use benches::Rng;
use criterion::{BenchmarkGroup, Criterion, Throughput};
use fdb_records::backend::embedded::EmbeddedDatabase;
use fdb_records::kv::{Database, RangeOption, Transaction};
use fdb_records::layout::StoreLayout;
use foundationdb_tuple::{Element, Subspace};
use futures::executor::block_on;
use prost::Message;
use prost_reflect::DynamicMessage;
use std::hint::black_box;

type Group<'a> = BenchmarkGroup<'a, criterion::measurement::WallTime>;

const RECORDS: i64 = 20_000;
const PAGE: usize = 100;

fn group<'a>(c: &'a mut Criterion, name: &str, elements: u64) -> Group<'a> {
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(elements));
    group
}

fn main() {
    let mut c = common::criterion();
    let users = Users::new();
    let md = metadata(true, true);

    // Saves: new ids on both sides, each in its own transaction.
    let db = EmbeddedDatabase::in_memory().unwrap();
    let (ours, raw) = (
        Subspace::from("ours"),
        StoreLayout::new(Subspace::from("raw")),
    );
    let mut g = group(&mut c, "save_2_value_1_count_index", 1);
    let mut id = 0;
    g.bench_function("record_store", |b| {
        b.iter(|| {
            id += 1;
            save_one(&db, &ours, &md, &users.user(id));
        })
    });
    let mut id = 0;
    g.bench_function("raw_kv", |b| {
        b.iter(|| {
            id += 1;
            raw_save_one(&db, &raw, &users, id);
        })
    });
    g.finish();

    // Loads and pages read one populated store.
    let db = EmbeddedDatabase::in_memory().unwrap();
    let ss = Subspace::from("users");
    let layout = StoreLayout::new(ss.clone());
    bulk_load(&db, &ss, &md, &users, 0..RECORDS);
    let ids =
        |rng: &mut Rng| -> Vec<i64> { (0..10).map(|_| rng.below(RECORDS as u64) as i64).collect() };

    let mut g = group(&mut c, "load_typed_10_per_tx", 10);
    let mut rng = Rng::new(1);
    g.bench_function("record_store", |b| {
        b.iter(|| load_typed(&db, &ss, &md, ids(&mut rng)))
    });
    let mut rng = Rng::new(1);
    g.bench_function("raw_kv", |b| {
        b.iter(|| raw_load_typed(&db, &layout, ids(&mut rng)))
    });
    g.finish();

    let mut g = group(&mut c, "page_of_100", PAGE as u64);
    let mut rng = Rng::new(2);
    g.bench_function("record_store", |b| {
        b.iter(|| {
            let after = rng.below((RECORDS - PAGE as i64) as u64) as i64;
            black_box(page(&db, &ss, &md, after, PAGE).items.len())
        })
    });
    let desc = users.user.clone();
    let mut rng = Rng::new(2);
    g.bench_function("raw_kv", |b| {
        b.iter(|| {
            let after = rng.below((RECORDS - PAGE as i64) as u64) as i64;
            // The same keys: the 100 records after `after`, each with its version.
            let after = fdb_records::layout::primary_key_bytes_after(&[Element::Int(after)]);
            let begin = [layout.records().bytes(), &after].concat();
            let end = layout.records().range().1;
            let range = RangeOption::from_keys(&begin, &end).with_limit(2 * PAGE);
            block_on(async {
                let tx = db.create_transaction().unwrap();
                let batch = tx.get_range(&range, 1, false).await.unwrap();
                let records: Vec<DynamicMessage> = batch
                    .key_values
                    .iter()
                    .filter(|kv| {
                        layout
                            .parse_record_key(&kv.key)
                            .map(|(_, _, suffix)| suffix)
                            == Some(0)
                    })
                    .map(|kv| {
                        let envelope =
                            fdb_records::proto::StoredRecord::decode(&kv.value[..]).unwrap();
                        DynamicMessage::decode(desc.clone(), envelope.message.as_slice()).unwrap()
                    })
                    .collect();
                black_box(records.len())
            })
        })
    });
    g.finish();

    c.final_summary();
}
