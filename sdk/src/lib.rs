pub mod backend;
#[cfg(feature = "build")]
pub mod build;
pub mod key_expression;
pub mod metadata;
pub mod kv;
pub mod layout;
pub mod proto;
pub mod store;

/// Includes the code [`build::compile_record_protos`](crate::build) generated in your
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

/// The example schema (`schemas/examples/users.proto`), compiled for the SDK's tests.
#[cfg(test)]
pub(crate) mod test_schema {
    include!(concat!(env!("OUT_DIR"), "/example_protos.rs"));
}
