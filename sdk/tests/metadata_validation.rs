//! Metadata builder validation: each MetaDataError, the accepted shapes, persistence.

mod common;

use common::{example_pool, User};
use fdb_records::key_expression::{
    concat, empty, field, record_type_key, version, ExpressionError,
};
use fdb_records::metadata::{
    Index, IndexType, MetaDataError, RecordMetaData, RecordMetaDataBuilder, RecordTypeDef,
};
use foundationdb_tuple::Element;

const USER: &str = "examples.users.User";
const ORDER: &str = "examples.users.Order";

fn base() -> RecordMetaDataBuilder {
    RecordMetaData::builder(example_pool())
        .version(1)
        .record_type(RecordTypeDef::new(USER).primary_key(field("id")))
        .record_type(
            RecordTypeDef::new(ORDER).primary_key(concat([field("user_id"), field("order_id")])),
        )
}

fn err(builder: RecordMetaDataBuilder) -> MetaDataError {
    builder.build().unwrap_err()
}

fn s(v: &str) -> String {
    v.to_string()
}

#[test]
fn a_complete_schema_builds_with_every_index_type() {
    let metadata = base()
        .index(
            Index::new("user_by_email", IndexType::Value, field("email"))
                .on(USER)
                .unique(),
        )
        .index(Index::new("user_by_tag", IndexType::Value, field("tags").fan_out()).on(USER))
        .index(
            Index::new(
                "order_by_sku",
                IndexType::Value,
                field("items").fan_out().nest(field("sku")),
            )
            .on(ORDER),
        )
        .index(
            Index::new(
                "orders_per_user",
                IndexType::Count,
                empty().group_by(field("user_id")),
            )
            .on(ORDER),
        )
        .index(
            Index::new("records", IndexType::Count, empty().ungrouped())
                .on(USER)
                .on(ORDER),
        )
        .index(
            Index::new(
                "spent",
                IndexType::Sum,
                field("items")
                    .fan_out()
                    .nest(field("price_cents"))
                    .group_by(field("user_id")),
            )
            .on(ORDER),
        )
        .index(
            Index::new(
                "first_order",
                IndexType::MinEver,
                field("created_at").ungrouped(),
            )
            .on(ORDER),
        )
        .index(
            Index::new(
                "last_order",
                IndexType::MaxEver,
                field("order_id").group_by(field("user_id")),
            )
            .on(ORDER),
        )
        .index(
            Index::new("changes", IndexType::Version, version())
                .on(USER)
                .on(ORDER)
                .option("retention", "30d"),
        )
        .build()
        .unwrap();
    assert_eq!(metadata.indexes().len(), 9);
    assert_eq!(metadata.indexes_for(USER).count(), 4);
    assert_eq!(
        metadata.index("records").unwrap().record_types,
        vec![ORDER, USER]
    );
    assert_eq!(
        metadata.index("changes").unwrap().options.other["retention"],
        "30d"
    );
    let user = User {
        id: 5,
        ..User::default()
    };
    assert_eq!(metadata.primary_key(&user).unwrap(), vec![Element::Int(5)]);
    assert_eq!(
        metadata.record_type(USER).unwrap().record_type_key(),
        Element::String(USER.into())
    );
}

#[test]
fn persisted_metadata_round_trips_without_the_compiled_schema() {
    let metadata = base()
        .version(7)
        .record_type(
            RecordTypeDef::new("examples.users.Address")
                .primary_key(field("city"))
                .type_key(3),
        )
        .index(
            Index::new("user_by_email", IndexType::Value, field("email"))
                .on(USER)
                .unique()
                .option("k", "v"),
        )
        .index(
            Index::new(
                "spent",
                IndexType::Sum,
                field("items")
                    .fan_out()
                    .nest(field("price_cents"))
                    .group_by(field("user_id")),
            )
            .on(ORDER),
        )
        .index(
            Index::new(
                "changes",
                IndexType::Version,
                concat([record_type_key(), version()]),
            )
            .on(USER),
        )
        .index(
            Index::new(
                "aged_per_tier",
                IndexType::CountNotNull,
                field("age").group_by(field("tier")),
            )
            .on(USER),
        )
        .former_index("old_index", 5)
        .build()
        .unwrap();
    let bytes = metadata.to_bytes();
    let loaded = RecordMetaData::from_bytes(&bytes).unwrap();
    assert_eq!(loaded.version(), 7);
    assert_eq!(loaded.indexes(), metadata.indexes());
    assert_eq!(loaded.former_indexes(), metadata.former_indexes());
    assert_eq!(
        loaded
            .record_type("examples.users.Address")
            .unwrap()
            .record_type_key(),
        Element::Int(3)
    );
    assert_eq!(loaded.to_proto(), metadata.to_proto());
    assert_eq!(loaded.to_bytes(), bytes, "encoding is deterministic");
    // The loaded metadata carries its own descriptors: records can be read dynamically.
    let descriptor = loaded.descriptor_pool().get_message_by_name(USER).unwrap();
    assert_eq!(descriptor.get_field_by_name("email").unwrap().number(), 2);
}

#[test]
fn record_type_errors() {
    assert_eq!(
        err(base().record_type(RecordTypeDef::new("examples.users.Nope").primary_key(field("id")))),
        MetaDataError::UnknownRecordType {
            name: s("examples.users.Nope")
        }
    );
    assert_eq!(
        err(base().record_type(RecordTypeDef::new(USER).primary_key(field("id")))),
        MetaDataError::DuplicateRecordType { name: s(USER) }
    );
    let pool = example_pool;
    assert_eq!(
        err(RecordMetaData::builder(pool()).record_type(RecordTypeDef::new(USER))),
        MetaDataError::PrimaryKeyMissing {
            record_type: s(USER)
        }
    );
    assert_eq!(
        err(RecordMetaData::builder(pool())
            .record_type(RecordTypeDef::new(USER).primary_key(field("uid")))),
        MetaDataError::InvalidPrimaryKey {
            record_type: s(USER),
            source: ExpressionError::UnknownField {
                message: s(USER),
                field: s("uid")
            }
        }
    );
    assert_eq!(
        err(RecordMetaData::builder(pool())
            .record_type(RecordTypeDef::new(USER).primary_key(field("address")))),
        MetaDataError::InvalidPrimaryKey {
            record_type: s(USER),
            source: ExpressionError::MessageFieldAsScalar {
                message: s(USER),
                field: s("address")
            }
        }
    );
    for repeated in [field("tags").fan_out(), field("tags").concatenate()] {
        assert_eq!(
            err(RecordMetaData::builder(pool())
                .record_type(RecordTypeDef::new(USER).primary_key(repeated))),
            MetaDataError::RepeatedFieldInPrimaryKey {
                record_type: s(USER),
                field: s("tags")
            }
        );
    }
    assert_eq!(
        err(RecordMetaData::builder(pool()).record_type(
            RecordTypeDef::new(ORDER).primary_key(field("items").fan_out().nest(field("sku")))
        )),
        MetaDataError::RepeatedFieldInPrimaryKey {
            record_type: s(ORDER),
            field: s("items.sku")
        }
    );
    assert_eq!(
        err(RecordMetaData::builder(pool())
            .record_type(RecordTypeDef::new(USER).primary_key(concat([field("id"), version()])))),
        MetaDataError::VersionInPrimaryKey {
            record_type: s(USER)
        }
    );
    assert_eq!(
        err(RecordMetaData::builder(pool())
            .record_type(RecordTypeDef::new(USER).primary_key(empty()))),
        MetaDataError::EmptyPrimaryKey {
            record_type: s(USER)
        }
    );
    assert_eq!(
        err(RecordMetaData::builder(pool())
            .record_type(
                RecordTypeDef::new(USER)
                    .primary_key(field("id"))
                    .type_key(1)
            )
            .record_type(
                RecordTypeDef::new(ORDER)
                    .primary_key(field("order_id"))
                    .type_key(1)
            )),
        MetaDataError::DuplicateRecordTypeKey {
            key: s("Int(1)"),
            first: s(USER),
            second: s(ORDER)
        }
    );
}

#[test]
fn index_errors() {
    let value = |name: &str, expr| Index::new(name, IndexType::Value, expr);
    assert_eq!(
        err(base().index(value("", field("email")).on(USER))),
        MetaDataError::EmptyIndexName
    );
    assert_eq!(
        err(base()
            .index(value("i", field("email")).on(USER))
            .index(value("i", field("name")).on(USER))),
        MetaDataError::DuplicateIndex { name: s("i") }
    );
    assert_eq!(
        err(base()
            .former_index("i", 1)
            .index(value("i", field("email")).on(USER))),
        MetaDataError::FormerIndexNameReused { name: s("i") }
    );
    assert_eq!(
        err(base().index(value("i", field("email")))),
        MetaDataError::IndexWithoutRecordTypes { index: s("i") }
    );
    assert_eq!(
        err(base().index(value("i", field("email")).on("examples.users.Ghost"))),
        MetaDataError::IndexOnUnknownRecordType {
            index: s("i"),
            record_type: s("examples.users.Ghost")
        }
    );
    // Applies to User, not to Order: the error names the record type it does not fit.
    assert_eq!(
        err(base().index(value("i", field("email")).on(USER).on(ORDER))),
        MetaDataError::IndexNotApplicable {
            index: s("i"),
            record_type: s(ORDER),
            source: ExpressionError::UnknownField {
                message: s(ORDER),
                field: s("email")
            }
        }
    );
    assert_eq!(
        err(base().index(value("i", field("address")).on(USER))),
        MetaDataError::IndexNotApplicable {
            index: s("i"),
            record_type: s(USER),
            source: ExpressionError::MessageFieldAsScalar {
                message: s(USER),
                field: s("address")
            }
        }
    );
    assert_eq!(
        err(base().index(value("i", field("tags")).on(USER))),
        MetaDataError::IndexNotApplicable {
            index: s("i"),
            record_type: s(USER),
            source: ExpressionError::RepeatedFieldWithoutFanType {
                message: s(USER),
                field: s("tags")
            }
        }
    );
    assert_eq!(
        err(base().index(Index::new("c", IndexType::Count, field("user_id")).on(ORDER))),
        MetaDataError::AggregateWithoutGrouping {
            index: s("c"),
            index_type: IndexType::Count
        }
    );
    assert_eq!(
        err(base()
            .index(Index::new("s", IndexType::Sum, empty().group_by(field("user_id"))).on(ORDER))),
        MetaDataError::WrongGroupedColumnCount {
            index: s("s"),
            index_type: IndexType::Sum,
            expected: 1,
            found: 0
        }
    );
    assert_eq!(
        err(base().index(
            Index::new(
                "c",
                IndexType::Count,
                field("order_id").group_by(field("user_id"))
            )
            .on(ORDER)
        )),
        MetaDataError::WrongGroupedColumnCount {
            index: s("c"),
            index_type: IndexType::Count,
            expected: 0,
            found: 1
        }
    );
    assert_eq!(
        err(base().index(
            Index::new(
                "m",
                IndexType::MaxEver,
                field("total").group_by(field("user_id"))
            )
            .on(ORDER)
        )),
        MetaDataError::AggregateValueNotNumeric {
            index: s("m"),
            index_type: IndexType::MaxEver,
            record_type: s(ORDER),
            field: s("total")
        }
    );
    assert_eq!(
        err(base().index(
            Index::new("c", IndexType::Count, empty().ungrouped())
                .on(USER)
                .unique()
        )),
        MetaDataError::UniqueOnNonValueIndex {
            index: s("c"),
            index_type: IndexType::Count
        }
    );
    assert_eq!(
        err(base().index(Index::new("v", IndexType::Version, field("id")).on(USER))),
        MetaDataError::VersionIndexWithoutVersion { index: s("v") }
    );
    assert_eq!(
        err(base().index(value("v", concat([field("id"), version()])).on(USER))),
        MetaDataError::VersionInNonVersionIndex {
            index: s("v"),
            index_type: IndexType::Value
        }
    );
}

#[test]
fn undecodable_input_is_a_typed_error() {
    assert!(matches!(
        RecordMetaData::builder_from_file_descriptor_set(b"\xff\xffgarbage"),
        Err(MetaDataError::InvalidDescriptors(_))
    ));
    assert!(matches!(
        RecordMetaData::from_bytes(b"\xff\xffgarbage"),
        Err(MetaDataError::InvalidPersistedMetaData(_))
    ));
    // Persisted metadata is re-validated: a tampered index expression is caught.
    let mut proto = base()
        .index(Index::new("i", IndexType::Value, field("email")).on(USER))
        .build()
        .unwrap()
        .to_proto();
    proto.indexes[0].record_types.push(s(ORDER));
    assert!(matches!(
        RecordMetaData::from_proto(proto),
        Err(MetaDataError::IndexNotApplicable { .. })
    ));
    let fds = common::schema::FILE_DESCRIPTOR_SET;
    let built = RecordMetaData::builder_from_file_descriptor_set(fds)
        .unwrap()
        .record_type(RecordTypeDef::new(USER).primary_key(field("id")))
        .build();
    assert!(built.is_ok());
}

#[test]
fn count_not_null_needs_exactly_one_grouped_column() {
    use fdb_records::key_expression::empty;
    let err = RecordMetaData::builder(common::example_pool())
        .record_type(RecordTypeDef::new(USER).primary_key(field("id")))
        .index(
            Index::new(
                "bad",
                IndexType::CountNotNull,
                empty().group_by(field("tier")),
            )
            .on(USER),
        )
        .build()
        .unwrap_err();
    assert_eq!(
        err,
        MetaDataError::WrongGroupedColumnCount {
            index: "bad".into(),
            index_type: IndexType::CountNotNull,
            expected: 1,
            found: 0
        }
    );
    assert_eq!(IndexType::CountNotNull.to_string(), "COUNT_NOT_NULL");
    assert!(IndexType::CountNotNull.is_aggregate());
}

#[test]
fn storing_record_versions_is_on_by_default_and_persists() {
    let default = base().build().unwrap();
    assert!(default.stores_record_versions());
    let off = base().store_record_versions(false).build().unwrap();
    assert!(!off.stores_record_versions());
    let loaded = RecordMetaData::from_bytes(&off.to_bytes()).unwrap();
    assert!(!loaded.stores_record_versions());
    assert_eq!(loaded.to_bytes(), off.to_bytes());
    assert!(RecordMetaData::from_bytes(&default.to_bytes())
        .unwrap()
        .stores_record_versions());
    // Metadata persisted before the option existed has no such field: it stored versions.
    let mut old = off.to_proto();
    old.store_record_versions = None;
    assert!(RecordMetaData::from_proto(old)
        .unwrap()
        .stores_record_versions());
}

#[test]
fn a_version_index_needs_stored_versions() {
    let with_feed = || base().index(Index::new("changes", IndexType::Version, version()).on(USER));
    assert!(with_feed().build().unwrap().stores_record_versions());
    assert_eq!(
        err(with_feed().store_record_versions(false)),
        MetaDataError::VersionIndexWithoutStoredVersions {
            index: s("changes")
        }
    );
    // Other index types are fine without versions.
    let without = base()
        .store_record_versions(false)
        .index(Index::new("by_email", IndexType::Value, field("email")).on(USER))
        .index(Index::new("users", IndexType::Count, empty().ungrouped()).on(USER))
        .build();
    assert!(without.is_ok(), "{without:?}");
    // Persisted metadata is re-validated: versions turned off under a VERSION index.
    let mut proto = with_feed().build().unwrap().to_proto();
    proto.store_record_versions = Some(false);
    assert_eq!(
        RecordMetaData::from_proto(proto).unwrap_err(),
        MetaDataError::VersionIndexWithoutStoredVersions {
            index: s("changes")
        }
    );
}
