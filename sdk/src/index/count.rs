//! COUNT and COUNT_NOT_NULL: the number of records per group, kept with atomic adds.
//!
//! COUNT's expression is `empty().group_by(group)` (or `empty().ungrouped()` for a
//! store-wide count); each tuple a record produces adds 1 to its group. COUNT_NOT_NULL's
//! is `field(x).group_by(group)` and counts only the tuples whose `x` is set. An update
//! that moves a record to another group writes −1 to the old group and +1 to the new;
//! an update that leaves the group alone writes nothing.

use super::UpdateMode;
use super::{encode_i64, group_deltas, split_group, IndexMaintainer, IndexRecord, IndexWrite};
use crate::key_expression::KeyTuple;
use crate::kv::{MutationType, Transaction};
use crate::layout::StoreLayout;
use crate::metadata::{Index, IndexType};
use crate::store::RecordStoreError;
use foundationdb_tuple::Element;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};

/// TEST-ONLY planted bug, off by default: when on, the COUNT maintainer ignores the
/// record it replaces, so an update (or a retry after `commit_unknown_result` that did
/// commit) counts the record again. It exists only so that `sim-workloads` can show
/// that its checks fail; never turn it on outside such a test. Off, it costs one
/// relaxed atomic load per COUNT update.
static PLANTED_DOUBLE_COUNT: AtomicBool = AtomicBool::new(false);

/// TEST-ONLY: turns the planted COUNT bug on or off (see `sim-workloads/tests/planted_bug.rs`).
#[doc(hidden)]
pub fn set_planted_double_count_bug(on: bool) {
    PLANTED_DOUBLE_COUNT.store(on, Ordering::Relaxed);
}

/// Maintains a COUNT or COUNT_NOT_NULL index.
#[derive(Clone, Debug)]
pub struct CountMaintainer {
    index: Index,
}

impl CountMaintainer {
    pub fn new(index: Index) -> Self {
        CountMaintainer { index }
    }

    /// `(group, counted?)` per tuple of `record`.
    fn counted(
        &self,
        record: Option<&IndexRecord<'_>>,
    ) -> Result<Vec<(KeyTuple, Option<i64>)>, RecordStoreError> {
        let Some(record) = record else {
            return Ok(Vec::new());
        };
        let not_null = self.index.index_type == IndexType::CountNotNull;
        let mut out = Vec::new();
        for tuple in record.evaluate(&self.index)? {
            let (group, value) = split_group(&self.index, tuple);
            let null = not_null && value.first().is_none_or(|v| *v == Element::Nil);
            out.push((group, (!null).then_some(1)));
        }
        Ok(out)
    }
}

impl IndexMaintainer for CountMaintainer {
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
            let old = if PLANTED_DOUBLE_COUNT.load(Ordering::Relaxed) {
                Vec::new() // planted bug (test-only): forget the replaced record
            } else {
                self.counted(old.as_ref())?
            };
            let new = self.counted(new.as_ref())?;
            let deltas = group_deltas(&old, &new, |v| i128::from(v.unwrap_or(0)));
            Ok(deltas
                .into_values()
                .map(|(group, delta)| IndexWrite::Atomic {
                    key: layout.index_group_key(&self.index.name, &group),
                    param: encode_i64(delta as i64).to_vec(),
                    op: MutationType::Add,
                })
                .collect())
        }
    }
}
