//! SUM: the sum of one integer column per group, kept with atomic adds.
//!
//! The value is a signed 64-bit integer stored little-endian in two's complement, which
//! is exactly what FoundationDB's ADD mutation adds, so negative values and negative
//! deltas work (the sum wraps on overflow, as i64 arithmetic does). Unset (null) values
//! add nothing; unsigned values above `i64::MAX` fail with
//! [`RecordStoreError::AggregateValueOutOfRange`]. An update writes the difference
//! `new − old` per group, and nothing when it is zero.

use super::UpdateMode;
use super::{contributions, encode_i64, group_deltas, IndexMaintainer, IndexRecord, IndexWrite};
use crate::kv::{MutationType, Transaction};
use crate::layout::StoreLayout;
use crate::metadata::Index;
use crate::store::RecordStoreError;
use std::future::Future;

/// Maintains a SUM index.
#[derive(Clone, Debug)]
pub struct SumMaintainer {
    index: Index,
}

impl SumMaintainer {
    pub fn new(index: Index) -> Self {
        SumMaintainer { index }
    }
}

impl IndexMaintainer for SumMaintainer {
    fn index(&self) -> &Index {
        &self.index
    }

    fn plan_update<'a, T: Transaction>(
        &'a self,
        _tx: &'a T,
        layout: &'a StoreLayout,
        old: Option<IndexRecord<'a>>,
        new: Option<IndexRecord<'a>>,
        _mode: UpdateMode,
    ) -> impl Future<Output = Result<Vec<IndexWrite>, RecordStoreError>> + Send + 'a {
        async move {
            let old = contributions(&self.index, old.as_ref())?;
            let new = contributions(&self.index, new.as_ref())?;
            let deltas = group_deltas(&old, &new, |v| i128::from(v.unwrap_or(0)));
            Ok(deltas
                .into_values()
                .map(|(group, delta)| IndexWrite::Atomic {
                    key: layout.index_group_key(&self.index.name, &group),
                    // Wrapping: the stored sum is i64 arithmetic modulo 2^64.
                    param: encode_i64(delta as i64).to_vec(),
                    op: MutationType::Add,
                })
                .collect())
        }
    }
}
