//! Records as the SDK sees them: any generated protobuf type (the typed API) or a
//! [`DynamicMessage`] (the dynamic API, for tools and services without the schema
//! compiled in). Both go through `prost-reflect`, so key expressions read the same
//! fields either way.

use prost_reflect::{DynamicMessage, MessageDescriptor, ReflectMessage};

/// A generated record type: what the typed API (`save(&user)`, `load::<User>(pk)`)
/// accepts. Implemented for every prost message that derives `ReflectMessage`, which
/// `build::compile_record_protos` (feature `build`) arranges.
pub trait Record: prost::Message + ReflectMessage + Default + Sized {
    /// The record as a dynamic message (a copy).
    fn to_dynamic(&self) -> DynamicMessage {
        self.transcode_to_dynamic()
    }

    /// The typed record from a dynamic message of the same type.
    fn from_dynamic(message: &DynamicMessage) -> Result<Self, RecordTypeMismatch> {
        let expected = Self::default().descriptor();
        if message.descriptor() != expected {
            return Err(RecordTypeMismatch {
                expected: expected.full_name().to_string(),
                found: message.descriptor().full_name().to_string(),
            });
        }
        message.transcode_to().map_err(|e| RecordTypeMismatch {
            expected: expected.full_name().to_string(),
            found: format!("undecodable message ({e})"),
        })
    }

    /// The record's message descriptor.
    fn record_descriptor() -> MessageDescriptor {
        Self::default().descriptor()
    }
}

impl<T: prost::Message + ReflectMessage + Default> Record for T {}

/// A dynamic message was not of the requested record type.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("expected a `{expected}` record, found `{found}`")]
pub struct RecordTypeMismatch {
    pub expected: String,
    pub found: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_schema::examples::users::{Order, User};

    #[test]
    fn typed_records_round_trip_through_dynamic_messages() {
        let user = User {
            id: 3,
            email: "x@y".into(),
            ..User::default()
        };
        let dynamic = user.to_dynamic();
        assert_eq!(dynamic.descriptor().full_name(), "examples.users.User");
        assert_eq!(User::from_dynamic(&dynamic).unwrap(), user);
        assert_eq!(
            Order::from_dynamic(&dynamic).unwrap_err(),
            RecordTypeMismatch {
                expected: "examples.users.Order".into(),
                found: "examples.users.User".into()
            }
        );
        assert_eq!(User::record_descriptor().full_name(), "examples.users.User");
    }
}
