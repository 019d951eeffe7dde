//! Metadata evolution: each rejected change is reported (all of them), each safe change accepted.

mod common;

use fdb_records::key_expression::{concat, field, version};
use fdb_records::metadata::evolution::{
    validate_evolution, validate_evolution_with, EvolutionError, EvolutionOptions,
};
use fdb_records::metadata::{
    Index, IndexType, RecordMetaData, RecordMetaDataBuilder, RecordTypeDef,
};

const V1: &str = r#"
syntax = "proto3";
package t;
enum Color { RED = 0; GREEN = 1; }
message Item { string sku = 1; }
message Rec {
  int64 id = 1;
  int32 count = 2;
  string name = 3;
  optional int32 opt = 4;
  repeated string tags = 5;
  Item item = 6;
  uint32 u = 7;
  Color color = 8;
  sint32 z = 9;
  int64 wide = 10;
}
message Other { int64 id = 1; }
"#;

fn builder(source: &str, version: u32) -> RecordMetaDataBuilder {
    RecordMetaData::builder(common::pool_from(source))
        .version(version)
        .record_type(RecordTypeDef::new("t.Rec").primary_key(field("id")))
        .record_type(RecordTypeDef::new("t.Other").primary_key(field("id")))
        .index(Index::new("by_name", IndexType::Value, field("name")).on("t.Rec"))
}

fn v1() -> RecordMetaData {
    builder(V1, 1).build().unwrap()
}

/// V1 with `from` replaced by `to`, as version 2.
fn v2_with(from: &str, to: &str) -> RecordMetaData {
    assert!(V1.contains(from), "{from}");
    builder(&V1.replace(from, to), 2).build().unwrap()
}

fn s(v: &str) -> String {
    v.to_string()
}

#[test]
fn safe_changes_are_accepted() {
    let old = v1();
    let accepted = [
        (
            "int64 wide = 10;",
            "int64 wide = 10; optional string nickname = 11; repeated int64 more = 12;",
        ),
        (
            "message Other",
            "message Brand { int64 id = 1; } message Other",
        ),
        ("int32 count = 2;", "int64 count = 2;"),
        ("uint32 u = 7;", "uint64 u = 7;"),
        ("sint32 z = 9;", "sint64 z = 9;"),
        ("Color color = 8;", "int32 color = 8;"),
        ("Color color = 8;", "reserved 8;"),
        ("Color color = 8;", "reserved \"color\";"),
        (
            "message Item { string sku = 1; }",
            "message Item { string sku = 1; int32 qty = 2; }",
        ),
    ];
    for (from, to) in accepted {
        assert_eq!(
            validate_evolution(&old, &v2_with(from, to)),
            Ok(()),
            "{from} -> {to}"
        );
    }
    // New record types and new indexes.
    let new = builder(
        &V1.replace(
            "message Other",
            "message New { int64 id = 1; } message Other",
        ),
        2,
    )
    .record_type(RecordTypeDef::new("t.New").primary_key(field("id")))
    .index(Index::new("by_count", IndexType::Value, field("count")).on("t.Rec"))
    .build()
    .unwrap();
    assert_eq!(validate_evolution(&old, &new), Ok(()));
    // A removed index with its former-index entry.
    let without_index = RecordMetaData::builder(common::pool_from(V1))
        .version(2)
        .record_type(RecordTypeDef::new("t.Rec").primary_key(field("id")))
        .record_type(RecordTypeDef::new("t.Other").primary_key(field("id")))
        .former_index("by_name", 2)
        .build()
        .unwrap();
    assert_eq!(validate_evolution(&old, &without_index), Ok(()));
}

#[test]
fn renames_need_permission() {
    let old = v1();
    // Field rename (same number): the index on it follows the number, not the name.
    let renamed_source = V1.replace("string name = 3;", "string title = 3;");
    let renamed = RecordMetaData::builder(common::pool_from(&renamed_source))
        .version(2)
        .record_type(RecordTypeDef::new("t.Rec").primary_key(field("id")))
        .record_type(RecordTypeDef::new("t.Other").primary_key(field("id")))
        .index(Index::new("by_name", IndexType::Value, field("title")).on("t.Rec"))
        .build()
        .unwrap();
    assert_eq!(
        validate_evolution(&old, &renamed),
        Err(vec![EvolutionError::FieldRenamed {
            message: s("t.Rec"),
            number: 3,
            old: s("name"),
            new: s("title")
        }])
    );
    let allow = EvolutionOptions {
        allow_field_renames: true,
        ..EvolutionOptions::default()
    };
    assert_eq!(validate_evolution_with(&old, &renamed, &allow), Ok(()));

    // Record type rename: removal unless mapped. Explicit type keys keep keys stable.
    let keyed = |source: &str, name: &str, version| {
        RecordMetaData::builder(common::pool_from(source))
            .version(version)
            .record_type(
                RecordTypeDef::new(name)
                    .primary_key(field("id"))
                    .type_key(1),
            )
            .build()
            .unwrap()
    };
    let old = keyed(V1, "t.Other", 1);
    let new = keyed(
        &V1.replace("message Other", "message Another"),
        "t.Another",
        2,
    );
    assert_eq!(
        validate_evolution(&old, &new),
        Err(vec![EvolutionError::RecordTypeRemoved {
            record_type: s("t.Other")
        }])
    );
    let mut renames = EvolutionOptions::default();
    renames
        .record_type_renames
        .insert(s("t.Other"), s("t.Another"));
    assert_eq!(validate_evolution_with(&old, &new, &renames), Ok(()));
}

#[test]
fn field_changes_that_alter_encodings_are_rejected() {
    let old = v1();
    let type_changed = |field: &str, old_type: &str, new_type: &str| {
        Err(vec![EvolutionError::FieldTypeChanged {
            message: s("t.Rec"),
            field: s(field),
            old: s(old_type),
            new: s(new_type),
        }])
    };
    assert_eq!(
        validate_evolution(&old, &v2_with("int32 count = 2;", "string count = 2;")),
        type_changed("count", "int32", "string")
    );
    assert_eq!(
        validate_evolution(&old, &v2_with("int64 wide = 10;", "int32 wide = 10;")),
        type_changed("wide", "int64", "int32")
    );
    assert_eq!(
        validate_evolution(&old, &v2_with("string name = 3;", "bytes name = 3;")),
        type_changed("name", "string", "bytes")
    );
    assert_eq!(
        validate_evolution(&old, &v2_with("int32 count = 2;", "uint32 count = 2;")),
        type_changed("count", "int32", "uint32")
    );
    assert_eq!(
        validate_evolution(&old, &v2_with("sint32 z = 9;", "int32 z = 9;")),
        type_changed("z", "sint32", "int32")
    );
    assert_eq!(
        validate_evolution(&old, &v2_with("Item item = 6;", "Other item = 6;")),
        type_changed("item", "t.Item", "t.Other")
    );
    assert_eq!(
        validate_evolution(
            &old,
            &v2_with(
                "message Item { string sku = 1; }",
                "message Item { int64 sku = 1; }"
            )
        ),
        Err(vec![EvolutionError::FieldTypeChanged {
            message: s("t.Item"),
            field: s("sku"),
            old: s("string"),
            new: s("int64")
        }]),
        "nested message types are checked too"
    );
    assert_eq!(
        validate_evolution(
            &old,
            &v2_with("repeated string tags = 5;", "string tags = 5;")
        ),
        Err(vec![EvolutionError::FieldCardinalityChanged {
            message: s("t.Rec"),
            field: s("tags")
        }])
    );
    assert_eq!(
        validate_evolution(&old, &v2_with("optional int32 opt = 4;", "int32 opt = 4;")),
        Err(vec![EvolutionError::FieldPresenceChanged {
            message: s("t.Rec"),
            field: s("opt")
        }])
    );
    assert_eq!(
        validate_evolution(&old, &v2_with("uint32 u = 7;", "")),
        Err(vec![EvolutionError::FieldRemoved {
            message: s("t.Rec"),
            field: s("u"),
            number: 7
        }])
    );
}

#[test]
fn record_type_and_index_changes_are_rejected_and_all_reported() {
    let old = v1();
    let pool = || common::pool_from(V1);
    // Everything wrong at once: version, removed type, changed pk, changed index, removed index.
    let old_with_two = builder(V1, 3)
        .index(Index::new("by_count", IndexType::Value, field("count")).on("t.Rec"))
        .build()
        .unwrap();
    let new = RecordMetaData::builder(pool())
        .version(3)
        .record_type(RecordTypeDef::new("t.Rec").primary_key(concat([field("id"), field("name")])))
        .index(
            Index::new("by_name", IndexType::Value, field("name"))
                .on("t.Rec")
                .unique(),
        )
        .build()
        .unwrap();
    let errors = validate_evolution(&old_with_two, &new).unwrap_err();
    assert_eq!(
        errors,
        vec![
            EvolutionError::VersionNotIncreased { old: 3, new: 3 },
            EvolutionError::RecordTypeRemoved { record_type: s("t.Other") },
            EvolutionError::PrimaryKeyChanged { record_type: s("t.Rec"), old: s("id"), new: s("concat(id, name)") },
            EvolutionError::IndexRemovedWithoutFormerIndex { index: s("by_count") },
            EvolutionError::IndexChanged {
                index: s("by_name"),
                change: s("options IndexOptions { unique: false, other: {} } → IndexOptions { unique: true, other: {} }")
            },
        ]
    );
    let changed_index = |index: Index| {
        let new = RecordMetaData::builder(pool())
            .version(2)
            .record_type(RecordTypeDef::new("t.Rec").primary_key(field("id")))
            .record_type(RecordTypeDef::new("t.Other").primary_key(field("id")))
            .index(index)
            .build()
            .unwrap();
        match validate_evolution(&old, &new) {
            Err(errors) => match errors.as_slice() {
                [EvolutionError::IndexChanged { index, change }] if index == "by_name" => {
                    change.clone()
                }
                other => panic!("unexpected {other:?}"),
            },
            Ok(()) => panic!("accepted"),
        }
    };
    assert!(
        changed_index(Index::new("by_name", IndexType::Value, field("count")).on("t.Rec"))
            .starts_with("expression")
    );
    // Record types covered: same name, same expression, one more type.
    let by_id = |types: &[&str], version| {
        let mut index = Index::new("by_id", IndexType::Value, field("id"));
        for t in types {
            index = index.on(*t);
        }
        builder(V1, version).index(index).build().unwrap()
    };
    assert_eq!(
        validate_evolution(&by_id(&["t.Rec"], 1), &by_id(&["t.Rec", "t.Other"], 2)),
        Err(vec![EvolutionError::IndexChanged {
            index: s("by_id"),
            change: s(r#"record types ["t.Rec"] → ["t.Other", "t.Rec"]"#)
        }])
    );
    assert!(changed_index(
        Index::new("by_name", IndexType::Value, field("name"))
            .on("t.Rec")
            .option("x", "y")
    )
    .starts_with("options"));
    assert!(changed_index(
        Index::new(
            "by_name",
            IndexType::Count,
            fdb_records::key_expression::empty().group_by(field("name"))
        )
        .on("t.Rec")
    )
    .starts_with("type VALUE → COUNT"));
    // Record type key change.
    let new = RecordMetaData::builder(pool())
        .version(2)
        .record_type(
            RecordTypeDef::new("t.Rec")
                .primary_key(field("id"))
                .type_key(9),
        )
        .record_type(RecordTypeDef::new("t.Other").primary_key(field("id")))
        .index(Index::new("by_name", IndexType::Value, field("name")).on("t.Rec"))
        .build()
        .unwrap();
    assert_eq!(
        validate_evolution(&old, &new),
        Err(vec![EvolutionError::RecordTypeKeyChanged {
            record_type: s("t.Rec")
        }])
    );
}

#[test]
fn storing_record_versions_may_change_both_ways() {
    let on = v1();
    let off = builder(V1, 2).store_record_versions(false).build().unwrap();
    let on_again = builder(V1, 3).build().unwrap();
    assert_eq!(validate_evolution(&on, &off), Ok(()));
    assert_eq!(validate_evolution(&off, &on_again), Ok(()));
    // Turning versions off means giving up VERSION indexes: removed with a
    // former-index entry, like any other removed index.
    let with_feed = builder(V1, 1)
        .index(Index::new("changes", IndexType::Version, version()).on("t.Rec"))
        .build()
        .unwrap();
    let without_feed = builder(V1, 2)
        .store_record_versions(false)
        .former_index("changes", 2)
        .build()
        .unwrap();
    assert_eq!(validate_evolution(&with_feed, &without_feed), Ok(()));
    let dropped_silently = builder(V1, 2).store_record_versions(false).build().unwrap();
    assert_eq!(
        validate_evolution(&with_feed, &dropped_silently),
        Err(vec![EvolutionError::IndexRemovedWithoutFormerIndex {
            index: s("changes")
        }])
    );
}
