//! MIN_EVER and MAX_EVER: the smallest / largest value ever saved per group.
//!
//! FoundationDB's MIN and MAX mutations compare values as **unsigned** little-endian
//! integers, so a plain two's-complement `-1` would be the largest value of all. Values
//! are therefore stored with the sign bit flipped — `(v as u64) ^ (1 << 63)`, 8 bytes
//! little-endian — which maps `i64::MIN..=i64::MAX` onto `0..=u64::MAX` in order: the
//! unsigned comparison of the stored bytes is the signed comparison of the values.
//! [`decode_ordered`] flips it back.
//!
//! "Ever" means deletes and updates never lower a maximum (or raise a minimum): the
//! mutations cannot be undone without reading every record of the group. Updates write
//! only values the old record did not already contribute; null values are ignored.
//!
//! ```
//! use fdb_records::index::min_max::{decode_ordered, encode_ordered};
//! let values = [i64::MIN, -1, 0, 1, i64::MAX];
//! let encoded: Vec<u64> = values.iter().map(|v| u64::from_le_bytes(encode_ordered(*v))).collect();
//! assert!(encoded.windows(2).all(|w| w[0] < w[1]), "unsigned order = signed order");
//! assert!(values.iter().all(|v| decode_ordered(&encode_ordered(*v)) == Some(*v)));
//! ```

use super::{contributions, IndexMaintainer, IndexRecord, IndexWrite, UpdateMode};
use crate::kv::{MutationType, Transaction};
use crate::layout::StoreLayout;
use crate::metadata::{Index, IndexType};
use crate::store::RecordStoreError;
use std::collections::BTreeSet;
use std::future::Future;

const SIGN: u64 = 1 << 63;

/// `v` as stored: sign bit flipped, 8 bytes little-endian.
pub fn encode_ordered(v: i64) -> [u8; 8] {
    ((v as u64) ^ SIGN).to_le_bytes()
}

/// A stored value back to `i64`; `None` if it is not 8 bytes.
pub fn decode_ordered(bytes: &[u8]) -> Option<i64> {
    let b: [u8; 8] = bytes.try_into().ok()?;
    Some((u64::from_le_bytes(b) ^ SIGN) as i64)
}

/// Maintains a MIN_EVER or MAX_EVER index.
#[derive(Clone, Debug)]
pub struct MinMaxMaintainer {
    index: Index,
}

impl MinMaxMaintainer {
    pub fn new(index: Index) -> Self {
        MinMaxMaintainer { index }
    }
    fn op(&self) -> MutationType {
        match self.index.index_type {
            IndexType::MinEver => MutationType::Min,
            _ => MutationType::Max,
        }
    }
}

impl IndexMaintainer for MinMaxMaintainer {
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
            let pack = |(g, v): &(crate::key_expression::KeyTuple, Option<i64>)| {
                v.map(|v| (foundationdb_tuple::pack(g), g.clone(), v))
            };
            let old: BTreeSet<(Vec<u8>, i64)> = contributions(&self.index, old.as_ref())?
                .iter()
                .filter_map(pack)
                .map(|(p, _, v)| (p, v))
                .collect();
            let mut seen = BTreeSet::new();
            let mut writes = Vec::new();
            for (packed, group, v) in contributions(&self.index, new.as_ref())?
                .iter()
                .filter_map(pack)
            {
                // Already contributed by the old record (a retry, or an unchanged value):
                // the aggregate already accounts for it.
                if old.contains(&(packed.clone(), v)) || !seen.insert((packed, v)) {
                    continue;
                }
                writes.push(IndexWrite::Atomic {
                    key: layout.index_group_key(&self.index.name, &group),
                    param: encode_ordered(v).to_vec(),
                    op: self.op(),
                });
            }
            Ok(writes)
        }
    }
}
