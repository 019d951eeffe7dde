//! Record metadata of the examples: `User` records keyed by `id`, with two value
//! indexes and a count index.

use crate::schema::examples::users::{Address, Tier, User};
use crate::schema::DESCRIPTOR_POOL;
use fdb_records::key_expression::{empty, field};
use fdb_records::metadata::{Index, IndexType, MetaDataError, RecordMetaData, RecordTypeDef};
use std::sync::Arc;

/// Fully-qualified name of the `User` record type.
pub const USER: &str = "examples.users.User";
/// Value index on `address.city`.
pub const BY_CITY: &str = "user_by_city";
/// Value index on `tier`.
pub const BY_TIER: &str = "user_by_tier";
/// Count index grouped by `tier`.
pub const COUNT_PER_TIER: &str = "users_per_tier";
/// Value index on `name`, added by metadata version 2 (`schema-evolution`).
pub const BY_NAME: &str = "user_by_name";

fn v1_builder() -> fdb_records::metadata::RecordMetaDataBuilder {
    RecordMetaData::builder(DESCRIPTOR_POOL.clone())
        .version(1)
        .record_type(RecordTypeDef::new(USER).primary_key(field("id")))
        .index(
            Index::new(
                BY_CITY,
                IndexType::Value,
                field("address").nest(field("city")),
            )
            .on(USER),
        )
        .index(Index::new(BY_TIER, IndexType::Value, field("tier")).on(USER))
        .index(
            Index::new(
                COUNT_PER_TIER,
                IndexType::Count,
                empty().group_by(field("tier")),
            )
            .on(USER),
        )
}

/// Metadata version 1: users, indexed by city and tier, counted per tier.
pub fn metadata_v1() -> Result<Arc<RecordMetaData>, MetaDataError> {
    Ok(Arc::new(v1_builder().build()?))
}

/// Metadata version 2: version 1 plus a value index on `name`.
pub fn metadata_v2() -> Result<Arc<RecordMetaData>, MetaDataError> {
    Ok(Arc::new(
        v1_builder()
            .version(2)
            .index(Index::new(BY_NAME, IndexType::Value, field("name")).on(USER))
            .build()?,
    ))
}

/// Cities the sample users live in.
pub const CITIES: [&str; 4] = ["Paris", "London", "Lisbon", "Oslo"];

/// A deterministic sample user.
pub fn sample_user(id: i64) -> User {
    let tier = match id % 3 {
        0 => Tier::Free,
        1 => Tier::Pro,
        _ => Tier::Enterprise,
    };
    User {
        id,
        email: format!("user{id}@example.com"),
        name: format!("User {id:04}"),
        age: Some(20 + (id % 50) as i32),
        tier: tier as i32,
        address: Some(Address {
            city: CITIES[(id as usize) % CITIES.len()].to_string(),
            zip: None,
        }),
        active: true,
        ..User::default()
    }
}
