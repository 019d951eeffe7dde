//! Schema tour: generated types, record metadata, key expressions, the store's key
//! layout and opening a store — end to end on the embedded engine.
//!
//! Run with `cargo run -p examples --bin schema_tour`.

use examples::schema::examples::users::{Address, User};
use examples::schema::DESCRIPTOR_POOL;
use fdb_records::backend::embedded::EmbeddedDatabase;
use fdb_records::key_expression::field;
use fdb_records::kv::Database;
use fdb_records::metadata::{Index, IndexType, RecordMetaData, RecordTypeDef};
use fdb_records::store::{open_store, OpenOptions};
use foundationdb_tuple::Subspace;
use prost_reflect::ReflectMessage;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let metadata = RecordMetaData::builder(DESCRIPTOR_POOL.clone())
        .version(1)
        .record_type(RecordTypeDef::new("examples.users.User").primary_key(field("id")))
        .index(
            Index::new(
                "user_by_city",
                IndexType::Value,
                field("address").nest(field("city")),
            )
            .on("examples.users.User"),
        )
        .build()?;

    let ada = User {
        id: 1,
        email: "ada@example.com".into(),
        address: Some(Address {
            city: "London".into(),
            zip: None,
        }),
        ..User::default()
    };
    println!("message type: {}", ada.descriptor().full_name());
    let pk = metadata.primary_key(&ada)?;
    let index = metadata.index("user_by_city").expect("defined above");
    let entries = index.expression.evaluate_record(&ada)?;

    let db = EmbeddedDatabase::in_memory()?;
    let opened = futures::executor::block_on(db.run(|tx, _| {
        let metadata = &metadata;
        async move {
            open_store(
                &tx,
                Subspace::from(("tour",)),
                metadata,
                &OpenOptions::default(),
            )
            .await
        }
    }))?;
    let record_key = opened.layout.record_key(&pk, 0);
    let entry_key = opened.layout.index_entry_key(&index.name, &entries[0], &pk);
    println!(
        "record key  {} = {}",
        fdb_records::kv::printable(&record_key),
        opened.layout.explain_key(&record_key, Some(&metadata))
    );
    println!(
        "index entry {} = {}",
        fdb_records::kv::printable(&entry_key),
        opened.layout.explain_key(&entry_key, Some(&metadata))
    );
    Ok(())
}
