pub mod backend;
pub mod kv;
