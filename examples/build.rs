//! A user's build script: three lines compile the record schema, no protoc needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    fdb_records::build::compile_record_protos(
        &["../schemas/examples/users.proto"],
        &["../schemas"],
    )?;
    Ok(())
}
