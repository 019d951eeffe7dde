//! fdb-records: a record layer on FoundationDB — protobuf records, exact secondary
//! indexes and continuation-paged scans — with an embedded engine that reproduces
//! FoundationDB's transaction semantics.
//!
//! | module | what |
//! |---|---|
//! | [`kv`] | the transaction abstraction every part is written against |
//! | [`backend`] | the embedded engine and FoundationDB |
//! | [`key_expression`] | which values of a record form its primary key and index entries |
//! | [`metadata`] | record types, indexes, validation, persistence, [evolution](metadata::evolution) |
//! | [`layout`] | THE key layout of a record store, and the explain-key helper |
//! | [`store`] | the [record store](store::RecordStore); store header: open, create, upgrade; metadata saved in the database |
//! | [`index`] | index maintainers: value, unique, count, sum, min/max, version |
//! | [`cursor`] | cursors with limits, continuation tokens (signed, bound to their scan), union/intersection, the multi-transaction runner |
//! | `build` (feature `build`) | compile `.proto` files from your build script, no `protoc` |
//! | [`record`] | the typed (generated types) and dynamic (`DynamicMessage`) record APIs |
//! | [`proto`] | the SDK's own protobuf messages (`schemas/fdb_records`) |
//!
//! Start with the [schema guide](schema_guide), then the [record store guide](record_store_guide).

pub mod backend;
#[cfg(feature = "build")]
pub mod build;
pub mod cursor;
pub mod index;
pub mod key_expression;
pub mod kv;
pub mod layout;
pub mod metadata;
pub mod proto;
pub mod record;
pub mod store;

/// Includes the code `build::compile_record_protos` (feature `build`) generated in your
/// build script. Use it inside a module:
///
/// ```ignore
/// pub mod schema {
///     fdb_records::include_record_protos!();
/// }
/// ```
#[macro_export]
macro_rules! include_record_protos {
    () => {
        include!(concat!(env!("OUT_DIR"), "/fdb_records_schema.rs"));
    };
}

#[doc = include_str!("../../docs/schema.md")]
pub mod schema_guide {}

#[doc = include_str!("../../docs/record_store.md")]
pub mod record_store_guide {}

/// The example schema (`schemas/examples/users.proto`), compiled for the SDK's tests.
#[cfg(test)]
pub(crate) mod test_schema {
    include!(concat!(env!("OUT_DIR"), "/example_protos.rs"));
}
