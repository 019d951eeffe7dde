//! Build-script helper: compile your record `.proto` files with pure-Rust tooling
//! (protox + prost-build, no `protoc`), with `prost_reflect::ReflectMessage` derived
//! for every message so the SDK can read any field at run time.
//!
//! Enable the `build` feature in your `[build-dependencies]`:
//!
//! ```toml
//! [dependencies]
//! fdb-records = "0.1"
//! prost = "0.14"
//! prost-reflect = { version = "0.16", features = ["derive"] }
//!
//! [build-dependencies]
//! fdb-records = { version = "0.1", features = ["build"] }
//! ```
//!
//! `build.rs`:
//!
//! ```no_run
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     fdb_records::build::compile_record_protos(&["protos/users.proto"], &["protos"])?;
//!     Ok(())
//! }
//! ```
//!
//! and anywhere in your crate:
//!
//! ```ignore
//! pub mod schema {
//!     fdb_records::include_record_protos!();
//! }
//! // schema::examples::users::User, schema::DESCRIPTOR_POOL, schema::FILE_DESCRIPTOR_SET
//! ```

mod codegen;

pub use codegen::CodegenError;

use std::path::{Path, PathBuf};

/// Name of the wrapper file [`compile_record_protos`] writes into `OUT_DIR`
/// (what [`include_record_protos!`](crate::include_record_protos) includes).
pub const SCHEMA_FILE: &str = "fdb_records_schema.rs";

/// Why [`compile_record_protos`] failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// `OUT_DIR` is not set: the helper must run inside a cargo build script.
    #[error("OUT_DIR is not set: call compile_record_protos from a build script")]
    NoOutDir,
    /// Parsing or generating failed.
    #[error(transparent)]
    Codegen(#[from] CodegenError),
}

/// Compiles `protos` (looked up in `includes`) into `$OUT_DIR`: prost structs with
/// `ReflectMessage` derives, one module per protobuf package, plus
/// `FILE_DESCRIPTOR_SET` and `DESCRIPTOR_POOL`. Tells cargo to rerun when the files change.
pub fn compile_record_protos(
    protos: &[impl AsRef<Path>],
    includes: &[impl AsRef<Path>],
) -> Result<PathBuf, BuildError> {
    let out_dir = std::env::var_os("OUT_DIR").ok_or(BuildError::NoOutDir)?;
    compile_record_protos_into(protos, includes, Path::new(&out_dir))
}

/// As [`compile_record_protos`], writing into `out_dir` (for tests and custom layouts).
pub fn compile_record_protos_into(
    protos: &[impl AsRef<Path>],
    includes: &[impl AsRef<Path>],
    out_dir: &Path,
) -> Result<PathBuf, BuildError> {
    let protos: Vec<PathBuf> = protos.iter().map(|p| p.as_ref().to_path_buf()).collect();
    let includes: Vec<PathBuf> = includes.iter().map(|p| p.as_ref().to_path_buf()).collect();
    for path in protos.iter().chain(&includes) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    let name = SCHEMA_FILE.trim_end_matches(".rs");
    Ok(codegen::generate(&protos, &includes, out_dir, name, true)?)
}
