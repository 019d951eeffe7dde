//! The backends behind the [transaction abstraction](crate::kv), side by side.
//!
//! | backend | feature | for |
//! |---|---|---|
//! | [`embedded`] | default | development, tests, simulation, single-node use |
//! | `fdb` | `fdb` | production on a FoundationDB cluster |

pub mod embedded;
#[cfg(feature = "fdb")]
pub mod fdb;
