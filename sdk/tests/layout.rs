//! The store key layout, pinned byte for byte, and the explain-key helper.

mod common;

use fdb_records::key_expression::{empty, field};
use fdb_records::layout::{KeyInfo, RecordPart, StoreLayout, FORMAT_VERSION};
use fdb_records::metadata::{Index, IndexType, RecordMetaData, RecordTypeDef};
use foundationdb_tuple::{Element, Subspace};

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The store subspace ("acme", 7) packs to `02 61 63 6d 65 00 15 07`.
fn layout() -> StoreLayout {
    StoreLayout::new(Subspace::from(("acme", 7)))
}

const P: &str = "02 61 63 6d 65 00 15 07";

fn s(v: &str) -> Element<'static> {
    Element::String(v.to_string().into())
}

#[test]
fn golden_bytes() {
    let l = layout();
    // Version 2 changed no key (its writers also bump the metadata version key).
    assert_eq!(FORMAT_VERSION, 2);
    let golden = |key: Vec<u8>, rest: &str| assert_eq!(hex(&key), format!("{P} {rest}"));
    golden(l.header_key(), "14");
    // Records: (1, (pk...), suffix) with the pk as a nested tuple (05 ... 00).
    golden(l.record_key(&[Element::Int(42)], 0), "15 01 05 15 2a 00 14");
    for pk in [
        vec![Element::Int(42)],
        vec![s("a"), Element::Int(-7)],
        vec![],
    ] {
        assert_eq!(
            l.record_data_and_version_keys(&pk),
            (l.record_key(&pk, 0), l.record_version_key(&pk))
        );
    }
    golden(
        l.record_key(&[Element::Int(42)], 2),
        "15 01 05 15 2a 00 15 02",
    );
    golden(
        l.record_version_key(&[Element::Int(42)]),
        "15 01 05 15 2a 00 13 fe",
    );
    golden(
        l.record_key(&[s("alice"), Element::Int(1)], 0),
        "15 01 05 02 61 6c 69 63 65 00 15 01 00 14",
    );
    golden(l.record_key(&[Element::Nil], 0), "15 01 05 00 ff 00 14");
    // Index entries: (2, name, values..., (pk...)).
    golden(
        l.index_entry_key("by_email", &[s("a@x")], &[Element::Int(42)]),
        "15 02 02 62 79 5f 65 6d 61 69 6c 00 02 61 40 78 00 05 15 2a 00",
    );
    golden(
        l.index_group_key("cnt", &[Element::Int(7)]),
        "15 02 02 63 6e 74 00 15 07",
    );
    golden(l.index_secondary("i").pack(&(1,)), "15 03 02 69 00 15 01");
    golden(l.record_count_key(), "15 04");
    golden(l.index_state_key("i"), "15 05 02 69 00");
    golden(l.index_range("i").pack(&(1,)), "15 06 02 69 00 15 01");
    golden(
        l.index_uniqueness_violations("i")
            .pack(&(s("v"), Element::Tuple(vec![Element::Int(1)]))),
        "15 07 02 69 00 02 76 00 05 15 01 00",
    );
    golden(l.index_build("i").pack(&(1,)), "15 09 02 69 00 15 01");
}

#[test]
fn a_record_prefix_never_contains_another_record() {
    let l = layout();
    // Apple's trap: pk (1) vs pk (1, 1). With nested pks, record (1)'s range holds only its own keys.
    let one = l.record(&[Element::Int(1)]);
    let one_one_keys =
        [0, 1, 2, -1].map(|suffix| l.record_key(&[Element::Int(1), Element::Int(1)], suffix));
    for key in &one_one_keys {
        assert!(
            !one.is_start_of(key),
            "record (1)'s range must not contain record (1, 1)'s key"
        );
    }
    for chunk in 1..5 {
        assert!(!one_one_keys.contains(&l.record_key(&[Element::Int(1)], chunk)));
    }
    // Primary-key order is kept across all of a record's keys.
    let pks: Vec<Vec<Element>> = vec![
        // Tuple type order: null < string < integer.
        vec![Element::Nil],
        vec![s("a")],
        vec![s("a"), s("b")],
        vec![s("b")],
        vec![Element::Int(-5)],
        vec![Element::Int(1)],
        vec![Element::Int(1), Element::Nil],
        vec![Element::Int(1), Element::Int(1)],
        vec![Element::Int(2)],
    ];
    let mut last_of_previous: Option<Vec<u8>> = None;
    for pk in &pks {
        let keys: Vec<Vec<u8>> = [-1, 0, 1, 2, 300]
            .iter()
            .map(|sfx| l.record_key(pk, *sfx))
            .collect();
        assert!(
            keys.windows(2).all(|w| w[0] < w[1]),
            "suffixes ordered within {pk:?}"
        );
        if let Some(prev) = &last_of_previous {
            assert!(
                prev < &keys[0],
                "{pk:?} sorts after the previous primary key"
            );
        }
        let (begin, end) = l.record(pk).range();
        assert!(keys.iter().all(|k| &begin < k && k < &end));
        last_of_previous = keys.last().cloned();
    }
}

#[test]
fn explain_key_names_every_subspace() {
    let l = layout();
    let pk = vec![Element::Int(42)];
    assert_eq!(l.explain_key(&l.header_key(), None), KeyInfo::Header);
    assert_eq!(
        l.explain_key(&l.record_key(&pk, 0), None),
        KeyInfo::Record {
            primary_key: pk.clone(),
            part: RecordPart::Unsplit
        }
    );
    assert_eq!(
        l.explain_key(&l.record_key(&pk, 3), None),
        KeyInfo::Record {
            primary_key: pk.clone(),
            part: RecordPart::Chunk(3)
        }
    );
    let version = l.explain_key(&l.record_version_key(&pk), None);
    assert_eq!(
        version,
        KeyInfo::Record {
            primary_key: pk.clone(),
            part: RecordPart::Version
        }
    );
    assert_eq!(version.to_string(), "record (42) [version]");
    let entry = l.explain_key(&l.index_entry_key("by_email", &[s("a@x")], &pk), None);
    assert_eq!(
        entry,
        KeyInfo::IndexEntry {
            index: "by_email".into(),
            values: vec![s("a@x")],
            primary_key: pk.clone(),
            known: false,
            is_version_index: false
        }
    );
    assert_eq!(
        entry.to_string(),
        "index `by_email` entry (\"a@x\") -> record (42) (index not in metadata)"
    );
    assert_eq!(
        l.explain_key(&l.index_group_key("cnt", &[Element::Int(7)]), None),
        KeyInfo::IndexAggregate {
            index: "cnt".into(),
            group: vec![Element::Int(7)]
        }
    );
    assert_eq!(
        l.explain_key(&l.index_secondary("i").pack(&(1,)), None),
        KeyInfo::IndexSecondary {
            index: "i".into(),
            rest: vec![Element::Int(1)]
        }
    );
    assert_eq!(
        l.explain_key(&l.record_count_key(), None),
        KeyInfo::RecordCount { group: vec![] }
    );
    let state = l.explain_key(&l.index_state_key("i"), None);
    assert_eq!(state, KeyInfo::IndexState { index: "i".into() });
    assert_eq!(state.to_string(), "index `i` state");
    assert_eq!(
        l.explain_key(&l.index_range("i").pack(&(1,)), None),
        KeyInfo::IndexBuiltRange {
            index: "i".into(),
            rest: vec![Element::Int(1)]
        }
    );
    let violation = l
        .index_uniqueness_violations("i")
        .pack(&(s("v"), Element::Tuple(pk.clone())));
    assert_eq!(
        l.explain_key(&violation, None),
        KeyInfo::UniquenessViolation {
            index: "i".into(),
            values: vec![s("v")],
            primary_key: pk.clone()
        }
    );
    assert_eq!(
        l.explain_key(&l.index_build("i").pack(&(1,)), None),
        KeyInfo::IndexBuild {
            index: "i".into(),
            rest: vec![Element::Int(1)]
        }
    );
    let outside = StoreLayout::new(Subspace::from(("other",))).header_key();
    assert_eq!(l.explain_key(&outside, None), KeyInfo::NotInStore);
    assert_eq!(
        l.explain_key(&outside, None).to_string(),
        "not in this record store"
    );
    let mut garbage = l.store().bytes().to_vec();
    garbage.extend_from_slice(b"\x15\x08\x99");
    assert_eq!(
        l.explain_key(&garbage, None),
        KeyInfo::Unknown {
            raw: b"\x15\x08\x99".to_vec()
        }
    );
    let mut reserved = l.store().bytes().to_vec();
    reserved.extend_from_slice(b"\x15\x08");
    assert!(matches!(
        l.explain_key(&reserved, None),
        KeyInfo::Unknown { .. }
    ));
}

#[test]
fn explain_key_uses_metadata_to_tell_entries_from_aggregates() {
    let metadata = RecordMetaData::builder(common::example_pool())
        .record_type(RecordTypeDef::new("examples.users.User").primary_key(field("id")))
        .index(
            Index::new(
                "by_tags",
                IndexType::Count,
                empty().group_by(field("tags").concatenate()),
            )
            .on("examples.users.User"),
        )
        .index(Index::new("by_email", IndexType::Value, field("email")).on("examples.users.User"))
        .build()
        .unwrap();
    let l = layout();
    // A count grouped by a concatenated field ends in a nested tuple, like an entry's pk.
    let key = l.index_group_key("by_tags", &[Element::Tuple(vec![s("a"), s("b")])]);
    assert!(
        matches!(l.explain_key(&key, None), KeyInfo::IndexEntry { .. }),
        "without metadata: a guess"
    );
    assert_eq!(
        l.explain_key(&key, Some(&metadata)),
        KeyInfo::IndexAggregate {
            index: "by_tags".into(),
            group: vec![Element::Tuple(vec![s("a"), s("b")])]
        }
    );
    let entry = l.explain_key(
        &l.index_entry_key("by_email", &[s("a@x")], &[Element::Int(1)]),
        Some(&metadata),
    );
    assert!(matches!(entry, KeyInfo::IndexEntry { known: true, .. }));
    assert_eq!(
        entry.to_string(),
        "index `by_email` entry (\"a@x\") -> record (1)"
    );
}

#[test]
fn record_keys_are_the_records_prefix_then_the_primary_key_bytes_then_the_suffix() {
    // Scans group a record's keys by this prefix; it must hold for every kind of key.
    let l = layout();
    let pks: Vec<Vec<Element<'static>>> = vec![
        vec![Element::Int(0)],
        vec![Element::Int(-1), Element::Int(i64::MAX)],
        vec![Element::Nil],
        vec![s(""), s("a\0b"), s("ünï")],
        vec![Element::Bytes(vec![0, 0xff, 0].into())],
        vec![Element::Tuple(vec![Element::Nil, Element::Int(3)])],
        vec![Element::Bool(true), Element::Double(-0.5)],
    ];
    for pk in &pks {
        for suffix in [-1i64, 0, 1, 7] {
            let expected = [
                l.records().bytes(),
                &fdb_records::layout::primary_key_bytes(pk),
                &foundationdb_tuple::pack(&suffix),
            ]
            .concat();
            assert_eq!(l.record_key(pk, suffix), expected, "{pk:?} {suffix}");
            assert_eq!(l.record(pk).pack(&suffix), expected, "{pk:?} {suffix}");
        }
    }
}
