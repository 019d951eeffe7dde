//! The stored form of a record (`schemas/fdb_records/record.proto`, `StoredRecord`):
//! an envelope naming the record's type, around the record's own protobuf bytes.
//!
//! Writing goes through the generated prost type. Reading borrows instead: a load or
//! scan only needs to know the type and where the message bytes are, so
//! [`EnvelopeRef::parse`] walks the three fields in place and the message is decoded
//! straight from the bytes read, never copied into an intermediate buffer. It accepts
//! exactly what prost's decoder of `StoredRecord` accepts for proto3 (unknown fields
//! are skipped; of repeated fields, the last wins), which a property test checks.

use crate::metadata::RecordType;
use crate::proto;
use prost::Message;
use prost_reflect::DynamicMessage;

/// The stored bytes of `message`, of type `record_type`.
pub(crate) fn encode(record_type: &RecordType, message: &DynamicMessage) -> Vec<u8> {
    use proto::stored_record::RecordType as Type;
    proto::StoredRecord {
        record_type: Some(match record_type.explicit_type_key {
            Some(key) => Type::TypeKey(key),
            None => Type::TypeName(record_type.name.clone()),
        }),
        message: message.encode_to_vec(),
    }
    .encode_to_vec()
}

/// Which record type an envelope names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TypeRef<'a> {
    /// Field 1: the fully-qualified name.
    Name(&'a str),
    /// Field 2: the metadata's explicit type key.
    Key(i64),
    /// Field 1, holding exactly the name the reader expected (see
    /// [`EnvelopeRef::parse_expecting`]).
    Expected,
}

/// An envelope read in place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct EnvelopeRef<'a> {
    pub(crate) record_type: Option<TypeRef<'a>>,
    /// The record's protobuf bytes (field 3).
    pub(crate) message: &'a [u8],
}

const TYPE_NAME: u64 = 1;
const TYPE_KEY: u64 = 2;
const MESSAGE: u64 = 3;

const VARINT: u64 = 0;
const FIXED64: u64 = 1;
const LENGTH_DELIMITED: u64 = 2;
const FIXED32: u64 = 5;

impl<'a> EnvelopeRef<'a> {
    /// Reads an envelope; the error says what is wrong with the bytes.
    pub(crate) fn parse(bytes: &'a [u8]) -> Result<Self, String> {
        Self::parse_expecting(bytes, None)
    }

    /// [`parse`](Self::parse) by a reader that expects the type `expected` (a scan,
    /// whose records are mostly of the type of the record before): a name equal to it
    /// comes back as [`TypeRef::Expected`], matched as bytes with no UTF-8 check (they
    /// are the bytes of a valid name), and any other name as `parse` returns it.
    pub(crate) fn parse_expecting(
        mut bytes: &'a [u8],
        expected: Option<&str>,
    ) -> Result<Self, String> {
        let mut envelope = EnvelopeRef {
            record_type: None,
            message: &[],
        };
        while !bytes.is_empty() {
            let key = varint(&mut bytes)?;
            let (field, wire) = (key >> 3, key & 7);
            if field == 0 || key > u64::from(u32::MAX) {
                return Err(format!("invalid field key {key}"));
            }
            match (field, wire) {
                (TYPE_NAME, LENGTH_DELIMITED) => {
                    let name = delimited(&mut bytes)?;
                    envelope.record_type =
                        Some(if expected.is_some_and(|e| e.as_bytes() == name) {
                            TypeRef::Expected
                        } else {
                            TypeRef::Name(
                                std::str::from_utf8(name)
                                    .map_err(|_| "record type name is not UTF-8".to_string())?,
                            )
                        });
                }
                (TYPE_KEY, VARINT) => {
                    let zigzag = varint(&mut bytes)?;
                    let key = (zigzag >> 1) as i64 ^ -((zigzag & 1) as i64);
                    envelope.record_type = Some(TypeRef::Key(key));
                }
                (MESSAGE, LENGTH_DELIMITED) => envelope.message = delimited(&mut bytes)?,
                (TYPE_NAME | TYPE_KEY | MESSAGE, _) => {
                    return Err(format!("field {field} has wire type {wire}"))
                }
                (_, VARINT) => {
                    varint(&mut bytes)?;
                }
                (_, FIXED64) => {
                    take(&mut bytes, 8)?;
                }
                (_, LENGTH_DELIMITED) => {
                    delimited(&mut bytes)?;
                }
                (_, FIXED32) => {
                    take(&mut bytes, 4)?;
                }
                _ => return Err(format!("unsupported wire type {wire}")),
            }
        }
        Ok(envelope)
    }
}

/// A base-128 varint of at most 10 bytes, as protobuf encodes them.
fn varint(bytes: &mut &[u8]) -> Result<u64, String> {
    let mut value = 0u64;
    for (i, &b) in bytes.iter().enumerate().take(10) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            if i == 9 && b > 1 {
                break;
            }
            *bytes = &bytes[i + 1..];
            return Ok(value);
        }
    }
    Err("invalid varint".into())
}

fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Result<&'a [u8], String> {
    if bytes.len() < n {
        return Err("truncated envelope".into());
    }
    let (head, tail) = bytes.split_at(n);
    *bytes = tail;
    Ok(head)
}

fn delimited<'a>(bytes: &mut &'a [u8]) -> Result<&'a [u8], String> {
    let len = varint(bytes)?;
    take(
        bytes,
        usize::try_from(len).map_err(|_| "length too large".to_string())?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use proto::stored_record::RecordType as Type;

    /// What prost's own decoder makes of the bytes, in the borrowed form.
    fn via_prost(bytes: &[u8]) -> Option<(Option<TypeRef<'static>>, Vec<u8>)> {
        let decoded = proto::StoredRecord::decode(bytes).ok()?;
        let record_type = decoded.record_type.map(|t| match t {
            Type::TypeName(n) => TypeRef::Name(Box::leak(n.into_boxed_str())),
            Type::TypeKey(k) => TypeRef::Key(k),
        });
        Some((record_type, decoded.message))
    }

    /// What `parse_expecting(bytes, expected)` makes of them, an expected name
    /// written out as the name it stands for.
    fn borrowed<'a>(
        bytes: &'a [u8],
        expected: Option<&'a str>,
    ) -> Option<(Option<TypeRef<'a>>, Vec<u8>)> {
        let e = EnvelopeRef::parse_expecting(bytes, expected).ok()?;
        let record_type = match e.record_type {
            Some(TypeRef::Expected) => Some(TypeRef::Name(expected.expect("expected a name"))),
            Some(TypeRef::Name(n)) => {
                assert_ne!(Some(n), expected, "the expected name comes back as such");
                Some(TypeRef::Name(n))
            }
            other => other,
        };
        Some((record_type, e.message.to_vec()))
    }

    /// `borrowed` with no expected name and with each of `names` expected.
    fn agree_with_prost(bytes: &[u8], names: &[&str]) -> Result<(), TestCaseError> {
        let prost = via_prost(bytes);
        prop_assert_eq!(borrowed(bytes, None), prost.clone());
        for name in names {
            prop_assert_eq!(borrowed(bytes, Some(name)), prost.clone());
        }
        Ok(())
    }

    #[test]
    fn reads_what_the_encoder_writes() {
        for record_type in [Type::TypeName("a.B".into()), Type::TypeKey(-3)] {
            let bytes = proto::StoredRecord {
                record_type: Some(record_type.clone()),
                message: vec![8, 1],
            }
            .encode_to_vec();
            let e = EnvelopeRef::parse(&bytes).unwrap();
            assert_eq!(e.message, [8, 1]);
            assert_eq!(
                e.record_type,
                Some(match &record_type {
                    Type::TypeName(n) => TypeRef::Name(n),
                    Type::TypeKey(k) => TypeRef::Key(*k),
                })
            );
        }
        assert_eq!(EnvelopeRef::parse(&[]).unwrap().record_type, None);
        assert!(EnvelopeRef::parse(&[0x1a, 5, 1]).is_err(), "truncated");
        assert!(EnvelopeRef::parse(&[0x0a, 1, 0xff]).is_err(), "not UTF-8");
        let named = |name: &str| {
            proto::StoredRecord {
                record_type: Some(Type::TypeName(name.into())),
                message: vec![],
            }
            .encode_to_vec()
        };
        fn parsed<'a>(bytes: &'a [u8], expected: Option<&str>) -> Option<TypeRef<'a>> {
            EnvelopeRef::parse_expecting(bytes, expected)
                .unwrap()
                .record_type
        }
        let bytes = named("a.B");
        assert_eq!(parsed(&bytes, Some("a.B")), Some(TypeRef::Expected));
        assert_eq!(parsed(&bytes, Some("a.C")), Some(TypeRef::Name("a.B")));
        assert_eq!(parsed(&bytes, Some("a.B2")), Some(TypeRef::Name("a.B")));
        assert_eq!(parsed(&bytes, None), Some(TypeRef::Name("a.B")));
        // An expected name does not excuse a later field from its checks, and the last
        // field still wins.
        let mut twice = named("a.B");
        twice.extend_from_slice(&[0x0a, 1, 0xff]);
        assert!(EnvelopeRef::parse_expecting(&twice, Some("a.B")).is_err());
        let mut renamed = named("a.B");
        renamed.extend(named("c.D"));
        assert_eq!(parsed(&renamed, Some("a.B")), Some(TypeRef::Name("c.D")));
        assert!(
            EnvelopeRef::parse(&[0x0b]).is_err(),
            "groups are not proto3"
        );
    }

    proptest! {
        #[test]
        fn agrees_with_prost_on_valid_envelopes(
            name in proptest::option::of("[a-z.]{0,12}"),
            key in any::<i64>(),
            use_key in any::<bool>(),
            message in proptest::collection::vec(any::<u8>(), 0..40),
            unknown in proptest::collection::vec((4u32..100, any::<u64>()), 0..3),
        ) {
            let name_seen = name.clone();
            let record_type = match (use_key, name) {
                (true, _) => Some(Type::TypeKey(key)),
                (false, Some(n)) => Some(Type::TypeName(n)),
                (false, None) => None,
            };
            let mut bytes = proto::StoredRecord { record_type, message }.encode_to_vec();
            // Unknown varint fields, as a newer writer might add.
            for (field, value) in unknown {
                prost::encoding::encode_key(field, prost::encoding::WireType::Varint, &mut bytes);
                prost::encoding::encode_varint(value, &mut bytes);
            }
            let names = name_seen.as_deref().into_iter().chain(["a.b"]).collect::<Vec<_>>();
            agree_with_prost(&bytes, &names)?;
        }

        #[test]
        fn never_panics_and_never_accepts_what_prost_refuses(
            bytes in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            // Each name an envelope of these bytes could hold, expected.
            let names: Vec<&str> = (0..bytes.len())
                .flat_map(|i| (i..=bytes.len()).map(move |j| (i, j)))
                .filter_map(|(i, j)| std::str::from_utf8(&bytes[i..j]).ok())
                .take(200)
                .collect();
            for expected in std::iter::once(None).chain(names.into_iter().map(Some)) {
                if let Some(ours) = borrowed(&bytes, expected) {
                    prop_assert_eq!(Some(ours), via_prost(&bytes));
                }
            }
        }
    }
}
