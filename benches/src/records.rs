//! Record-layer workloads, written once for the `report` bin and the `record_layer`
//! criterion bench: the example `User` schema with two value indexes and a count index,
//! each operation through the record store and, next to it, the same key-value
//! operations written by hand on the same engine.

use fdb_records::backend::embedded::EmbeddedDatabase;
use fdb_records::cursor::{ExecuteOptions, Page, RecordScan};
use fdb_records::key_expression::{empty, field, KeyTuple};
use fdb_records::kv::{
    key_after, strinc, ConflictRangeType, Database, MutationType, RangeOption, Transaction,
    METADATA_VERSION_KEY,
};
use fdb_records::layout::StoreLayout;
use fdb_records::metadata::{Index, IndexType, RecordMetaData, RecordTypeDef};
use fdb_records::store::{RecordRange, RecordStore, StoredRecord};
use foundationdb_tuple::{Element, Subspace, Versionstamp};
use futures::executor::block_on;
use prost::Message;
use prost_reflect::{DynamicMessage, MessageDescriptor, Value};
use std::ops::Bound;
use std::sync::Arc;

/// The example schema's generated types (`build.rs`). Metadata is built from the same
/// pool, so typed and dynamic loads see one record type.
pub mod schema {
    fdb_records::include_record_protos!();
}
pub use schema::examples::users::User;
use schema::DESCRIPTOR_POOL;

pub const USER: &str = "examples.users.User";
const CITIES: [&str; 4] = ["Paris", "London", "Lisbon", "Oslo"];

/// `User` records, with a value index on the city and one on the tier (when
/// `value_indexes`) and a count index per tier (when `count_index`); each record's
/// version is stored (the default).
pub fn metadata(value_indexes: bool, count_index: bool) -> Arc<RecordMetaData> {
    metadata_storing_versions(value_indexes, count_index, true)
}

/// [`metadata`], storing record versions or not (as a plain table, which has none).
pub fn metadata_storing_versions(
    value_indexes: bool,
    count_index: bool,
    versions: bool,
) -> Arc<RecordMetaData> {
    let mut b = RecordMetaData::builder(DESCRIPTOR_POOL.clone())
        .store_record_versions(versions)
        .record_type(RecordTypeDef::new(USER).primary_key(field("id")));
    if value_indexes {
        b = b
            .index(
                Index::new(
                    "by_city",
                    IndexType::Value,
                    field("address").nest(field("city")),
                )
                .on(USER),
            )
            .index(Index::new("by_tier", IndexType::Value, field("tier")).on(USER));
    }
    if count_index {
        b = b.index(
            Index::new(
                "per_tier",
                IndexType::Count,
                empty().group_by(field("tier")),
            )
            .on(USER),
        );
    }
    Arc::new(b.build().expect("valid metadata"))
}

/// Makes the benchmark's users: id, email, name, tier (`id % 3`) and a city.
pub struct Users {
    pub user: MessageDescriptor,
    address: MessageDescriptor,
}

impl Default for Users {
    fn default() -> Self {
        Self::new()
    }
}

impl Users {
    pub fn new() -> Self {
        let pool = DESCRIPTOR_POOL.clone();
        Users {
            user: pool.get_message_by_name(USER).expect("User"),
            address: pool
                .get_message_by_name("examples.users.Address")
                .expect("Address"),
        }
    }
    pub fn tier(id: i64) -> i32 {
        (id % 3) as i32
    }
    pub fn city(id: i64) -> &'static str {
        CITIES[(id as usize) % CITIES.len()]
    }
    /// User `id` in `tier`.
    pub fn make(&self, id: i64, tier: i32) -> DynamicMessage {
        let mut m = DynamicMessage::new(self.user.clone());
        m.set_field_by_name("id", Value::I64(id));
        m.set_field_by_name("email", Value::String(format!("user{id}@example.com")));
        m.set_field_by_name("name", Value::String(format!("User {id}")));
        m.set_field_by_name("tier", Value::EnumNumber(tier));
        let mut a = DynamicMessage::new(self.address.clone());
        a.set_field_by_name("city", Value::String(Self::city(id).into()));
        m.set_field_by_name("address", Value::Message(a));
        m
    }
    /// User `id` in its usual tier.
    pub fn user(&self, id: i64) -> DynamicMessage {
        self.make(id, Self::tier(id))
    }
}

/// Saves users `ids` through the store, 5,000 per transaction.
pub fn bulk_load(
    db: &EmbeddedDatabase,
    subspace: &Subspace,
    md: &Arc<RecordMetaData>,
    users: &Users,
    ids: std::ops::Range<i64>,
) {
    block_on(async {
        let ids: Vec<i64> = ids.collect();
        for chunk in ids.chunks(5_000) {
            let tx = db.create_transaction().unwrap();
            let store = RecordStore::open(&tx, subspace.clone(), md.clone())
                .await
                .unwrap();
            for id in chunk {
                store
                    .save_dynamic(&users.user(*id), Default::default())
                    .await
                    .unwrap();
            }
            drop(store);
            tx.commit().await.unwrap();
        }
    });
}

/// One record saved through the store, in its own transaction.
pub fn save_one(
    db: &EmbeddedDatabase,
    subspace: &Subspace,
    md: &Arc<RecordMetaData>,
    msg: &DynamicMessage,
) {
    block_on(async {
        let tx = db.create_transaction().unwrap();
        let store = RecordStore::open(&tx, subspace.clone(), md.clone())
            .await
            .unwrap();
        store.save_dynamic(msg, Default::default()).await.unwrap();
        drop(store);
        tx.commit().await.unwrap();
    })
}

/// The key-value operations of [`save_one`] with `metadata(true, true)` for user `id`,
/// written by hand, in its own transaction.
pub fn raw_save_one(db: &EmbeddedDatabase, layout: &StoreLayout, users: &Users, id: i64) {
    let (msg, tier) = (users.user(id), Users::tier(id));
    block_on(async {
        let tx = db.create_transaction().unwrap();
        // What opening a cached store does: a snapshot read of the metadata version
        // key and read conflicts on the header key and the index states.
        let _ = tx.get(METADATA_VERSION_KEY, true).await.unwrap();
        let header = layout.header_key();
        tx.add_conflict_range(&header, &key_after(&header), ConflictRangeType::Read)
            .unwrap();
        let states = layout.index_states();
        tx.add_conflict_range(
            states.bytes(),
            &strinc(states.bytes()),
            ConflictRangeType::Read,
        )
        .unwrap();
        // The old record, then the new one, its version, entries and counts.
        let pk = [Element::Int(id)];
        let (b, e) = layout.record(&pk).range();
        let _ = tx
            .get_range(&RangeOption::from_keys(&b, &e), 1, false)
            .await
            .unwrap();
        tx.clear_range(&b, &e);
        tx.set(&layout.record_key(&pk, 0), &msg.encode_to_vec());
        let version = foundationdb_tuple::pack_with_versionstamp(&(Versionstamp::incomplete(0),));
        tx.atomic_op(
            &layout.record_version_key(&pk),
            &version,
            MutationType::SetVersionstampedValue,
        );
        let city = Element::String(Users::city(id).into());
        tx.set(&layout.index_entry_key("by_city", &[city], &pk), b"");
        tx.set(
            &layout.index_entry_key("by_tier", &[Element::Int(tier.into())], &pk),
            b"",
        );
        tx.atomic_op(
            &layout.index_group_key("per_tier", &[Element::Int(tier.into())]),
            &1i64.to_le_bytes(),
            MutationType::Add,
        );
        tx.atomic_op(
            &layout.record_count_key(),
            &1i64.to_le_bytes(),
            MutationType::Add,
        );
        tx.commit().await.unwrap();
    })
}

/// Opens the store and loads `ids` typed (`load_record::<User>`), in one transaction.
pub fn load_typed(
    db: &EmbeddedDatabase,
    subspace: &Subspace,
    md: &Arc<RecordMetaData>,
    ids: impl IntoIterator<Item = i64>,
) {
    block_on(async {
        let tx = db.create_transaction().unwrap();
        let store = RecordStore::open(&tx, subspace.clone(), md.clone())
            .await
            .unwrap();
        for id in ids {
            let user = store
                .load_record::<User>(&[Element::Int(id)])
                .await
                .unwrap();
            assert!(user.is_some());
        }
    })
}

/// What [`load_typed`] reads, by hand: each record's data key, its envelope and the
/// record decoded with the generated types.
pub fn raw_load_typed(
    db: &EmbeddedDatabase,
    layout: &StoreLayout,
    ids: impl IntoIterator<Item = i64>,
) {
    block_on(async {
        let tx = db.create_transaction().unwrap();
        for id in ids {
            let stored = tx
                .get(&layout.record_key(&[Element::Int(id)], 0), false)
                .await
                .unwrap()
                .expect("present");
            let envelope = fdb_records::proto::StoredRecord::decode(stored.as_slice()).unwrap();
            User::decode(envelope.message.as_slice()).unwrap();
        }
    })
}

/// Opens the store and reads the page of (at most) `limit` records after `after`.
pub fn page(
    db: &EmbeddedDatabase,
    subspace: &Subspace,
    md: &Arc<RecordMetaData>,
    after: i64,
    limit: usize,
) -> Page<StoredRecord> {
    block_on(async {
        let tx = db.create_transaction().unwrap();
        let store = RecordStore::open(&tx, subspace.clone(), md.clone())
            .await
            .unwrap();
        let range = RecordRange {
            low: Bound::Excluded(vec![Element::Int(after)] as KeyTuple),
            high: Bound::Unbounded,
        };
        store
            .execute(
                &RecordScan::new(range),
                &ExecuteOptions::new().return_limit(limit),
            )
            .unwrap()
            .collect_page()
            .await
            .unwrap()
    })
}
