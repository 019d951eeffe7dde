//! The backends behind the [transaction abstraction](crate::kv), side by side.
//!
//! | backend | feature | for |
//! |---|---|---|
//! | [`embedded`] | default | development, tests, simulation, single-node use |
//! | `fdb` | `fdb` (7.3 API) or `fdb-7_4` | production on a FoundationDB cluster |

pub mod embedded;
#[cfg(any(feature = "fdb", feature = "fdb-7_4"))]
pub mod fdb;
