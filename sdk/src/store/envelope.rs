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
    pub(crate) fn parse(mut bytes: &'a [u8]) -> Result<Self, String> {
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
                    let name = std::str::from_utf8(delimited(&mut bytes)?)
                        .map_err(|_| "record type name is not UTF-8".to_string())?;
                    envelope.record_type = Some(TypeRef::Name(name));
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

    fn borrowed(bytes: &[u8]) -> Option<(Option<TypeRef<'_>>, Vec<u8>)> {
        let e = EnvelopeRef::parse(bytes).ok()?;
        Some((e.record_type, e.message.to_vec()))
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
            prop_assert_eq!(borrowed(&bytes), via_prost(&bytes));
        }

        #[test]
        fn never_panics_and_never_accepts_what_prost_refuses(
            bytes in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            if let Some(ours) = borrowed(&bytes) {
                prop_assert_eq!(Some(ours), via_prost(&bytes));
            }
        }
    }
}
