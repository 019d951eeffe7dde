//! Shared code of the example programs: the schema, the record metadata the examples
//! use, backend selection (embedded engine by default, FoundationDB with `--features
//! fdb`) and the `paginated-api` HTTP service.

pub mod api;
pub mod backend;
pub mod schema;
pub mod users;
