//! The built ranges of an online index build (space 6): `(6, index, begin) → end`,
//! disjoint, merged when adjacent. Bounds are primary-key bytes
//! ([`crate::layout::primary_key_bytes`]); `[b"", b"\xff")` is every record.

use crate::kv::{key_after, RangeOption, Transaction};
use crate::layout::StoreLayout;
use crate::store::RecordStoreError;
use foundationdb_tuple::Element;

/// The end of the primary-key space (every primary key's bytes sort below it).
pub(crate) const END: &[u8] = b"\xff";

fn decode(
    layout: &StoreLayout,
    index: &str,
    key: &[u8],
    value: &[u8],
) -> Result<(Vec<u8>, Vec<u8>), RecordStoreError> {
    match crate::layout::unpack_stored_in::<Element<'_>>(&layout.index_range(index), key) {
        Ok(Element::Bytes(b)) => Ok((b.to_vec(), value.to_vec())),
        other => Err(RecordStoreError::CorruptIndex {
            index: index.to_string(),
            detail: format!("bad built-range key: {other:?}"),
        }),
    }
}

/// Whether `point` lies in a built range. A non-snapshot read of just the range-set
/// entry that could cover `point` (back to the previous entry): a builder that
/// changes it conflicts with this transaction.
pub(crate) async fn contains<T: Transaction>(
    tx: &T,
    layout: &StoreLayout,
    index: &str,
    point: &[u8],
) -> Result<bool, RecordStoreError> {
    let (begin, _) = layout.index_range(index).range();
    let probe = key_after(&layout.built_range_key(index, point));
    let found = tx
        .get_range(
            &RangeOption::from_keys(&begin, &probe)
                .reversed()
                .with_limit(1),
            1,
            false,
        )
        .await?;
    match found.key_values.first() {
        None => Ok(false),
        Some(kv) => {
            let (b, e) = decode(layout, index, &kv.key, &kv.value)?;
            Ok(b.as_slice() <= point && point < e.as_slice())
        }
    }
}

/// Every built range, in order.
pub(crate) async fn ranges<T: Transaction>(
    tx: &T,
    layout: &StoreLayout,
    index: &str,
    snapshot: bool,
) -> Result<Vec<(Vec<u8>, Vec<u8>)>, RecordStoreError> {
    let (begin, end) = layout.index_range(index).range();
    let kvs = tx
        .get_range_all(RangeOption::from_keys(&begin, &end), snapshot)
        .await?;
    kvs.iter()
        .map(|kv| decode(layout, index, &kv.key, &kv.value))
        .collect()
}

/// The first part of `[b"", END)` not built yet.
pub(crate) fn first_gap(ranges: &[(Vec<u8>, Vec<u8>)]) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut cursor: Vec<u8> = Vec::new();
    for (b, e) in ranges {
        if b.as_slice() > cursor.as_slice() {
            return Some((cursor, b.clone()));
        }
        if e.as_slice() > cursor.as_slice() {
            cursor = e.clone();
        }
    }
    (cursor.as_slice() < END).then(|| (cursor, END.to_vec()))
}

/// Adds `[begin, end)` to the built ranges, merging with overlapping/adjacent ones.
pub(crate) async fn insert<T: Transaction>(
    tx: &T,
    layout: &StoreLayout,
    index: &str,
    begin: &[u8],
    end: &[u8],
) -> Result<(), RecordStoreError> {
    if begin >= end {
        return Ok(());
    }
    let existing = ranges(tx, layout, index, false).await?;
    let (mut b, mut e) = (begin.to_vec(), end.to_vec());
    for (rb, re) in &existing {
        if rb.as_slice() <= e.as_slice() && re.as_slice() >= b.as_slice() {
            b = b.min(rb.clone());
            e = e.max(re.clone());
        }
    }
    for (rb, re) in &existing {
        let merged = rb.as_slice() >= b.as_slice() && re.as_slice() <= e.as_slice();
        if merged && (rb != &b || re != &e) {
            tx.clear(&layout.built_range_key(index, rb));
        }
    }
    if !existing.iter().any(|(rb, re)| rb == &b && re == &e) {
        tx.set(&layout.built_range_key(index, &b), &e);
    }
    Ok(())
}

/// Removes every built range (the build is complete or restarted).
pub(crate) fn clear<T: Transaction>(tx: &T, layout: &StoreLayout, index: &str) {
    let (begin, end) = layout.index_range(index).range();
    tx.clear_range(&begin, &end);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_gap_walks_the_key_space() {
        let r = |b: &[u8], e: &[u8]| (b.to_vec(), e.to_vec());
        assert_eq!(first_gap(&[]), Some(r(b"", END)));
        assert_eq!(first_gap(&[r(b"", b"m")]), Some(r(b"m", END)));
        assert_eq!(first_gap(&[r(b"c", b"m")]), Some(r(b"", b"c")));
        assert_eq!(
            first_gap(&[r(b"", b"c"), r(b"d", END)]),
            Some(r(b"c", b"d"))
        );
        assert_eq!(first_gap(&[r(b"", END)]), None);
    }
}
