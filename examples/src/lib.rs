//! Shared code of the example programs.

pub mod schema;
