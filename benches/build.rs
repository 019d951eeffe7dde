//! Generated types for the example schema, so that the report can measure the typed API
//! (`load_record::<User>`) next to the dynamic one. No `protoc` needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    fdb_records::build::compile_record_protos(
        &["../schemas/examples/users.proto"],
        &["../schemas"],
    )?;
    Ok(())
}
