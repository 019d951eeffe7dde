//! The record types and metadata versions the workloads run against.

use fdb_records::key_expression::{empty, field, version};
use fdb_records::metadata::{
    Index, IndexType, RecordMetaData, RecordMetaDataBuilder, RecordTypeDef,
};
use prost_reflect::{DescriptorPool, DynamicMessage, ReflectMessage, Value};
use std::sync::Arc;

pub const USER: &str = "examples.users.User";
pub const ORDER: &str = "examples.users.Order";

/// Indexes built online in metadata version 2, each a copy of a version-1 index so the
/// build can be compared with an index maintained from scratch: `(late, original)`.
pub const LATE_INDEXES: [(&str, &str); 3] = [
    ("late_count", "per_tier"),
    ("late_tag", "by_tag"),
    ("late_sum", "delta_sum"),
];

pub fn pool() -> DescriptorPool {
    fdb_records::metadata::example_pool()
}

fn v1_builder(meta_version: u32) -> RecordMetaDataBuilder {
    RecordMetaData::builder(pool())
        .version(meta_version)
        .record_type(RecordTypeDef::new(USER).primary_key(field("id")))
        .record_type(RecordTypeDef::new(ORDER).primary_key(field("order_id")))
        .index(
            Index::new("by_email", IndexType::Value, field("email"))
                .on(USER)
                .unique(),
        )
        .index(Index::new("by_tier", IndexType::Value, field("tier")).on(USER))
        .index(Index::new("by_tag", IndexType::Value, field("tags").fan_out()).on(USER))
        .index(
            Index::new(
                "per_tier",
                IndexType::Count,
                empty().group_by(field("tier")),
            )
            .on(USER),
        )
        .index(Index::new("users", IndexType::Count, empty().ungrouped()).on(USER))
        .index(
            Index::new(
                "with_age",
                IndexType::CountNotNull,
                field("age").group_by(field("tier")),
            )
            .on(USER),
        )
        .index(
            Index::new(
                "delta_sum",
                IndexType::Sum,
                field("delta").group_by(field("user_id")),
            )
            .on(ORDER),
        )
        .index(
            Index::new(
                "delta_min",
                IndexType::MinEver,
                field("delta").group_by(field("user_id")),
            )
            .on(ORDER),
        )
        .index(
            Index::new(
                "delta_max",
                IndexType::MaxEver,
                field("delta").group_by(field("user_id")),
            )
            .on(ORDER),
        )
        .index(
            Index::new("changes", IndexType::Version, version())
                .on(USER)
                .on(ORDER),
        )
}

/// Version 1: every index type over two record types.
pub fn metadata_v1() -> Arc<RecordMetaData> {
    Arc::new(v1_builder(1).build().expect("valid metadata v1"))
}

/// Version 2: version 1 plus [`LATE_INDEXES`], which start write-only and are built online.
pub fn metadata_v2() -> Arc<RecordMetaData> {
    Arc::new(
        v1_builder(2)
            .index(
                Index::new(
                    "late_count",
                    IndexType::Count,
                    empty().group_by(field("tier")),
                )
                .on(USER),
            )
            .index(Index::new("late_tag", IndexType::Value, field("tags").fan_out()).on(USER))
            .index(
                Index::new(
                    "late_sum",
                    IndexType::Sum,
                    field("delta").group_by(field("user_id")),
                )
                .on(ORDER),
            )
            .build()
            .expect("valid metadata v2"),
    )
}

/// A user record.
pub fn user(
    pool: &DescriptorPool,
    id: i64,
    email: &str,
    tier: i32,
    tags: &[String],
    age: Option<i32>,
    name: String,
) -> DynamicMessage {
    let mut m = DynamicMessage::new(pool.get_message_by_name(USER).expect("User in schema"));
    m.set_field_by_name("id", Value::I64(id));
    m.set_field_by_name("email", Value::String(email.to_string()));
    m.set_field_by_name("tier", Value::EnumNumber(tier));
    m.set_field_by_name(
        "tags",
        Value::List(tags.iter().map(|t| Value::String(t.clone())).collect()),
    );
    if let Some(age) = age {
        m.set_field_by_name("age", Value::I32(age));
    }
    m.set_field_by_name("name", Value::String(name));
    m
}

/// An order record.
pub fn order(pool: &DescriptorPool, order_id: i64, user_id: i64, delta: i64) -> DynamicMessage {
    let mut m = DynamicMessage::new(pool.get_message_by_name(ORDER).expect("Order in schema"));
    m.set_field_by_name("order_id", Value::I64(order_id));
    m.set_field_by_name("user_id", Value::I64(user_id));
    m.set_field_by_name("delta", Value::I64(delta));
    m
}

pub fn is_user(m: &DynamicMessage) -> bool {
    m.descriptor().full_name() == USER
}

pub fn get_i64(m: &DynamicMessage, name: &str) -> i64 {
    m.get_field_by_name(name)
        .and_then(|v| v.as_i64())
        .unwrap_or(0)
}

pub fn get_i32(m: &DynamicMessage, name: &str) -> Option<i32> {
    if !m.has_field_by_name(name) {
        return None;
    }
    m.get_field_by_name(name)
        .and_then(|v| v.as_i32().or_else(|| v.as_enum_number()))
}

pub fn tier(m: &DynamicMessage) -> i64 {
    i64::from(get_i32(m, "tier").unwrap_or(0))
}

pub fn tags(m: &DynamicMessage) -> Vec<String> {
    m.get_field_by_name("tags")
        .and_then(|v| {
            v.as_list().map(|l| {
                l.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
        })
        .unwrap_or_default()
}
