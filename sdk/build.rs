//! Compiles the SDK's own protobuf schemas (`schemas/fdb_records`) and, for the SDK's
//! tests, the example schema (`schemas/examples`) with pure-Rust tooling: no `protoc`.

#[path = "src/build/codegen.rs"]
mod codegen;

use std::path::PathBuf;

fn main() {
    let schemas = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schemas");
    println!("cargo:rerun-if-changed={}", schemas.display());
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let run = |protos: &[&str], name: &str, reflect: bool| {
        let protos: Vec<PathBuf> = protos.iter().map(|p| schemas.join(p)).collect();
        if let Err(e) = codegen::generate(
            &protos,
            std::slice::from_ref(&schemas),
            &out_dir,
            name,
            reflect,
        ) {
            panic!("{e}");
        }
    };
    run(
        &[
            "fdb_records/store_header.proto",
            "fdb_records/metadata.proto",
            "fdb_records/record.proto",
            "fdb_records/continuation.proto",
        ],
        "sdk_protos",
        false,
    );
    run(&["examples/users.proto"], "example_protos", true);
}
