//! The SDK's own protobuf messages (`schemas/fdb_records/*.proto`): the store header
//! and the persisted form of record metadata. Generated at build time by protox +
//! prost-build; applications normally use the typed wrappers
//! ([`crate::store::RecordStoreHeader`], [`crate::metadata::RecordMetaData`]).

include!(concat!(env!("OUT_DIR"), "/sdk_protos.rs"));
pub use self::fdb_records::*;
