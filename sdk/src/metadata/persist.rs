//! The persisted form of [`RecordMetaData`] (`schemas/fdb_records/metadata.proto`):
//! descriptors included, re-validated on load.

use super::{
    FormerIndex, Index, IndexOptions, IndexType, MetaDataError, RecordMetaData, RecordType,
};
use crate::key_expression::{FanType, KeyExpression};
use crate::proto;
use prost::Message;
use prost_reflect::DescriptorPool;
use std::collections::BTreeMap;

impl RecordMetaData {
    /// The metadata as its protobuf message.
    pub fn to_proto(&self) -> proto::MetaData {
        proto::MetaData {
            version: self.version,
            file_descriptor_set: Some(prost_types::FileDescriptorSet {
                file: self.pool.file_descriptor_protos().cloned().collect(),
            }),
            record_types: self
                .record_types
                .values()
                .map(|t| proto::RecordType {
                    name: t.name.clone(),
                    primary_key: Some(expression_to_proto(&t.primary_key)),
                    record_type_key: t.explicit_type_key,
                })
                .collect(),
            indexes: self
                .indexes
                .values()
                .map(|i| proto::Index {
                    name: i.name.clone(),
                    r#type: index_type_to_proto(i.index_type) as i32,
                    expression: Some(expression_to_proto(&i.expression)),
                    record_types: i.record_types.clone(),
                    unique: i.options.unique,
                    options: i.options.other.clone().into_iter().collect(),
                })
                .collect(),
            former_indexes: self
                .former_indexes
                .values()
                .map(|f| proto::FormerIndex {
                    name: f.name.clone(),
                    removed_version: f.removed_version,
                })
                .collect(),
            // Only `false` is written: see the field's comment in the schema.
            store_record_versions: (!self.store_record_versions).then_some(false),
        }
    }

    /// The metadata encoded as protobuf bytes (descriptors included).
    ///
    /// ```
    /// # use fdb_records::key_expression::field;
    /// # use fdb_records::metadata::{RecordMetaData, RecordTypeDef};
    /// # let pool = fdb_records::metadata::example_pool();
    /// let metadata = RecordMetaData::builder(pool)
    ///     .version(3)
    ///     .record_type(RecordTypeDef::new("examples.users.User").primary_key(field("id")))
    ///     .build().unwrap();
    /// let loaded = RecordMetaData::from_bytes(&metadata.to_bytes()).unwrap();
    /// assert_eq!(loaded.version(), 3);
    /// assert!(loaded.record_type("examples.users.User").is_some());
    /// ```
    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_proto().encode_to_vec()
    }

    /// Decodes and re-validates persisted metadata.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MetaDataError> {
        let message = proto::MetaData::decode(bytes)
            .map_err(|e| MetaDataError::InvalidPersistedMetaData(e.to_string()))?;
        Self::from_proto(message)
    }

    /// Builds metadata from its protobuf message, validating it like the builder does.
    pub fn from_proto(message: proto::MetaData) -> Result<Self, MetaDataError> {
        let invalid = |what: String| MetaDataError::InvalidPersistedMetaData(what);
        let fds = message.file_descriptor_set.unwrap_or_default();
        let pool = DescriptorPool::from_file_descriptor_set(fds)
            .map_err(|e| MetaDataError::InvalidDescriptors(e.to_string()))?;
        let mut record_types = BTreeMap::new();
        for t in message.record_types {
            let descriptor = pool.get_message_by_name(&t.name).ok_or_else(|| {
                MetaDataError::UnknownRecordType {
                    name: t.name.clone(),
                }
            })?;
            let primary_key = t
                .primary_key
                .map(expression_from_proto)
                .transpose()
                .map_err(|e| invalid(format!("record type `{}`: {e}", t.name)))?
                .ok_or_else(|| MetaDataError::PrimaryKeyMissing {
                    record_type: t.name.clone(),
                })?;
            let record_type =
                RecordType::new(t.name.clone(), descriptor, primary_key, t.record_type_key);
            if record_types.insert(t.name.clone(), record_type).is_some() {
                return Err(MetaDataError::DuplicateRecordType { name: t.name });
            }
        }
        let mut indexes = BTreeMap::new();
        for i in message.indexes {
            let index_type = proto::IndexType::try_from(i.r#type)
                .map(index_type_from_proto)
                .map_err(|_| {
                    invalid(format!(
                        "index `{}`: unknown index type {}",
                        i.name, i.r#type
                    ))
                })?;
            let expression = i
                .expression
                .map(expression_from_proto)
                .transpose()
                .map_err(|e| invalid(format!("index `{}`: {e}", i.name)))?
                .ok_or_else(|| invalid(format!("index `{}` has no expression", i.name)))?;
            let mut record_types = i.record_types;
            record_types.sort();
            let index = Index {
                name: i.name.clone(),
                index_type,
                expression,
                record_types,
                options: IndexOptions {
                    unique: i.unique,
                    other: i.options.into_iter().collect(),
                },
            };
            if indexes.insert(i.name.clone(), index).is_some() {
                return Err(MetaDataError::DuplicateIndex { name: i.name });
            }
        }
        let former_indexes = message
            .former_indexes
            .into_iter()
            .map(|f| {
                (
                    f.name.clone(),
                    FormerIndex {
                        name: f.name,
                        removed_version: f.removed_version,
                    },
                )
            })
            .collect();
        RecordMetaData {
            version: message.version,
            pool,
            record_types,
            indexes,
            former_indexes,
            store_record_versions: message.store_record_versions.unwrap_or(true),
            maintainers: Default::default(),
        }
        .revalidate()
    }
}

fn index_type_to_proto(t: IndexType) -> proto::IndexType {
    match t {
        IndexType::Value => proto::IndexType::Value,
        IndexType::Count => proto::IndexType::Count,
        IndexType::Sum => proto::IndexType::Sum,
        IndexType::MinEver => proto::IndexType::MinEver,
        IndexType::MaxEver => proto::IndexType::MaxEver,
        IndexType::Version => proto::IndexType::Version,
        IndexType::CountNotNull => proto::IndexType::CountNotNull,
    }
}

fn index_type_from_proto(t: proto::IndexType) -> IndexType {
    match t {
        proto::IndexType::Value => IndexType::Value,
        proto::IndexType::Count => IndexType::Count,
        proto::IndexType::Sum => IndexType::Sum,
        proto::IndexType::MinEver => IndexType::MinEver,
        proto::IndexType::MaxEver => IndexType::MaxEver,
        proto::IndexType::Version => IndexType::Version,
        proto::IndexType::CountNotNull => IndexType::CountNotNull,
    }
}

fn fan_to_proto(fan: FanType) -> i32 {
    (match fan {
        FanType::Scalar => proto::FanType::Scalar,
        FanType::FanOut => proto::FanType::FanOut,
        FanType::Concatenate => proto::FanType::Concatenate,
    }) as i32
}

fn fan_from_proto(fan: i32) -> Result<FanType, String> {
    match proto::FanType::try_from(fan) {
        Ok(proto::FanType::Scalar) => Ok(FanType::Scalar),
        Ok(proto::FanType::FanOut) => Ok(FanType::FanOut),
        Ok(proto::FanType::Concatenate) => Ok(FanType::Concatenate),
        Err(_) => Err(format!("unknown fan type {fan}")),
    }
}

/// A key expression as its protobuf message.
pub(crate) fn expression_to_proto(expr: &KeyExpression) -> proto::KeyExpression {
    use proto::key_expression::Expression as E;
    let expression = match expr {
        KeyExpression::Field { name, fan_type } => E::Field(proto::Field {
            name: name.clone(),
            fan_type: fan_to_proto(*fan_type),
        }),
        KeyExpression::Nest {
            parent,
            fan_type,
            child,
        } => E::Nest(Box::new(proto::Nest {
            parent: Some(proto::Field {
                name: parent.clone(),
                fan_type: fan_to_proto(*fan_type),
            }),
            child: Some(Box::new(expression_to_proto(child))),
        })),
        KeyExpression::Then(children) => E::Then(proto::Then {
            children: children.iter().map(expression_to_proto).collect(),
        }),
        KeyExpression::Empty => E::Empty(proto::Empty {}),
        KeyExpression::RecordTypeKey => E::RecordTypeKey(proto::RecordTypeKey {}),
        KeyExpression::Grouping {
            whole,
            grouped_count,
        } => E::Grouping(Box::new(proto::Grouping {
            whole: Some(Box::new(expression_to_proto(whole))),
            grouped_count: *grouped_count as u32,
        })),
        KeyExpression::Version => E::Version(proto::Version {}),
    };
    proto::KeyExpression {
        expression: Some(expression),
    }
}

/// A key expression from its protobuf message.
pub(crate) fn expression_from_proto(
    message: proto::KeyExpression,
) -> Result<KeyExpression, String> {
    use proto::key_expression::Expression as E;
    Ok(match message.expression.ok_or("empty key expression")? {
        E::Field(f) => KeyExpression::Field {
            name: f.name,
            fan_type: fan_from_proto(f.fan_type)?,
        },
        E::Nest(n) => {
            let parent = n.parent.ok_or("nest without parent")?;
            let child = n.child.ok_or("nest without child")?;
            KeyExpression::Nest {
                parent: parent.name,
                fan_type: fan_from_proto(parent.fan_type)?,
                child: Box::new(expression_from_proto(*child)?),
            }
        }
        E::Then(t) => KeyExpression::Then(
            t.children
                .into_iter()
                .map(expression_from_proto)
                .collect::<Result<_, _>>()?,
        ),
        E::Empty(_) => KeyExpression::Empty,
        E::RecordTypeKey(_) => KeyExpression::RecordTypeKey,
        E::Grouping(g) => KeyExpression::Grouping {
            whole: Box::new(expression_from_proto(
                *g.whole.ok_or("grouping without expression")?,
            )?),
            grouped_count: g.grouped_count as usize,
        },
        E::Version(_) => KeyExpression::Version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key_expression::field;
    use crate::metadata::RecordTypeDef;

    fn users(store_record_versions: bool) -> RecordMetaData {
        RecordMetaData::builder(crate::metadata::example_pool())
            .record_type(RecordTypeDef::new("examples.users.User").primary_key(field("id")))
            .store_record_versions(store_record_versions)
            .build()
            .unwrap()
    }

    /// The default is left out of the encoding, so that metadata saved before the
    /// option existed is still recognised by the metadata store as the same bytes.
    #[test]
    fn only_metadata_without_versions_encodes_the_flag() {
        assert_eq!(users(true).to_proto().store_record_versions, None);
        let (on, off) = (users(true).to_bytes(), users(false).to_bytes());
        // Field 6 comes last: its tag (varint) and `false`, after the same bytes.
        assert_eq!(off, [on, vec![0x30, 0x00]].concat());
    }

    #[test]
    fn the_flag_round_trips_and_reads_as_stored_when_absent() {
        for store in [true, false] {
            let loaded = RecordMetaData::from_bytes(&users(store).to_bytes()).unwrap();
            assert_eq!(loaded.stores_record_versions(), store);
        }
        let mut explicit = users(true).to_proto();
        explicit.store_record_versions = Some(true);
        let loaded = RecordMetaData::from_proto(explicit).unwrap();
        assert!(loaded.stores_record_versions());
        assert_eq!(loaded.to_proto().store_record_versions, None);
    }
}
