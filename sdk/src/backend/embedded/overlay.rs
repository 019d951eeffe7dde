//! The write layer: batches published but not yet committed to redb, which readers
//! merge over redb's snapshot.
//!
//! A redb write transaction costs about as much to commit, and to copy its first
//! touched pages on write, whether it holds one small batch or sixty: measured in
//! redb alone, six save-shaped writes cost 36 µs in a transaction of their own and
//! 15 µs when 64 such saves share one. So batches share one redb write transaction
//! (see [`Storage`](super::storage)): a batch is applied to it as it fills, as before,
//! and also recorded here, and its snapshot is redb's last committed one with this
//! layer on top. Every few batches, or when the layer grows large, the transaction is
//! committed and the layer starts over empty.
//!
//! The layer is a persistent map, so that each published batch shares it with the
//! one before (an `O(1)` clone; an insert copies only the nodes on its path that an
//! older snapshot still holds). A clear of a key that exists, or of a range, is
//! recorded as `None` for each key it removed (read from the write transaction, which
//! holds everything), so the layer never needs range tombstones: a key absent from it
//! reads through to redb.

use std::sync::Arc;

/// Key → value (`None`: cleared) for every key written since redb's last commit.
#[derive(Clone, Default)]
pub(crate) struct Overlay {
    map: imbl::OrdMap<Arc<[u8]>, Option<Arc<[u8]>>>,
    /// One bit per key hash: a point read of a key the layer does not hold (nearly
    /// every read) costs a hash and a bit test instead of a descent of the map, about
    /// 475 instructions. Copied once per batch that writes (4 KiB); empty until then.
    filter: Arc<Vec<u64>>,
}

/// Bits in the filter: at [`FLUSH_ENTRIES`](super::storage::FLUSH_ENTRIES) keys, about
/// one read in eight descends the map for nothing; at a few hundred, one in a hundred.
const FILTER_BITS: usize = 1 << 15;

/// One entry of the layer taken out of it: a key and its value (`None`: cleared).
pub(crate) type Written = (Arc<[u8]>, Option<Arc<[u8]>>);

/// What one read of a key in the layer found.
pub(crate) enum Found<'a> {
    /// Written since redb's snapshot: the answer, whatever redb holds.
    Written(Option<&'a [u8]>),
    /// Not written since: redb answers.
    Unwritten,
}

impl Overlay {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Records `key` as set to `value`, or cleared (`None`).
    pub(crate) fn insert(&mut self, key: &[u8], value: Option<&[u8]>) {
        let bit = filter_bit(key);
        let filter = Arc::make_mut(&mut self.filter);
        if filter.is_empty() {
            filter.resize(FILTER_BITS / 64, 0);
        }
        filter[bit / 64] |= 1 << (bit % 64);
        self.map.insert(Arc::from(key), value.map(Arc::from));
    }

    pub(crate) fn find(&self, key: &[u8]) -> Found<'_> {
        let bit = filter_bit(key);
        let maybe = self
            .filter
            .get(bit / 64)
            .is_some_and(|word| word & (1 << (bit % 64)) != 0);
        match maybe.then(|| self.map.get(key)).flatten() {
            Some(v) => Found::Written(v.as_deref()),
            None => Found::Unwritten,
        }
    }

    /// Every entry, in key order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&[u8], Option<&[u8]>)> {
        self.map.iter().map(|(k, v)| (&k[..], v.as_deref()))
    }
}

/// The filter bit of `key`: FNV-1a over 8-byte words, then a final mix; fixed, so
/// that runs repeat.
fn filter_bit(key: &[u8]) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ key.len() as u64;
    for chunk in key.chunks(8) {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        h = (h ^ u64::from_le_bytes(word)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    (h as usize) % FILTER_BITS
}

/// The layer's entries in `[begin, end)`, one at a time in scan order. The scan holds
/// a clone of the layer (`O(1)`), so that it does not borrow the snapshot, and finds
/// each entry with one descent from where the last one was: a scan that stops after a
/// page costs what it yields, however much of the layer lies in its range.
pub(crate) struct LayerScan {
    layer: imbl::OrdMap<Arc<[u8]>, Option<Arc<[u8]>>>,
    begin: Box<[u8]>,
    end: Box<[u8]>,
    reverse: bool,
    /// The last entry's key: the scan resumes past it.
    last: Option<Arc<[u8]>>,
}

impl LayerScan {
    pub(crate) fn new(layer: &Overlay, begin: &[u8], end: &[u8], reverse: bool) -> Self {
        LayerScan {
            layer: layer.map.clone(),
            begin: begin.into(),
            end: end.into(),
            reverse,
            last: None,
        }
    }
}

impl Iterator for LayerScan {
    type Item = Written;

    fn next(&mut self) -> Option<Written> {
        use std::ops::Bound::{Excluded, Included};
        let last = self.last.as_deref();
        let (k, v) = if self.reverse {
            let upper = Excluded(last.unwrap_or(&self.end));
            self.layer
                .range::<_, [u8]>((Included(&self.begin[..]), upper))
                .next_back()?
        } else {
            let lower = last.map_or(Included(&self.begin[..]), Excluded);
            self.layer
                .range::<_, [u8]>((lower, Excluded(&self.end[..])))
                .next()?
        };
        let entry = (k.clone(), v.clone());
        self.last = Some(entry.0.clone());
        Some(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clone_keeps_its_contents_while_the_original_changes() {
        let mut layer = Overlay::new();
        assert!(matches!(layer.find(b"a"), Found::Unwritten));
        layer.insert(b"a", Some(b"1"));
        let published = layer.clone();
        layer.insert(b"a", None);
        layer.insert(b"b", Some(b"2"));
        assert!(matches!(published.find(b"a"), Found::Written(Some(b"1"))));
        assert!(matches!(published.find(b"b"), Found::Unwritten));
        assert!(matches!(layer.find(b"a"), Found::Written(None)));
        assert!(matches!(layer.find(b"b"), Found::Written(Some(b"2"))));
    }

    #[test]
    fn the_filter_never_hides_a_written_key() {
        let mut layer = Overlay::new();
        let keys: Vec<Vec<u8>> = (0..5000u32)
            .map(|i| format!("key/{i}").into_bytes())
            .collect();
        for k in &keys {
            layer.insert(k, Some(k));
        }
        for k in &keys {
            assert!(matches!(layer.find(k), Found::Written(Some(v)) if v == &k[..]));
        }
        let unwritten = (5000..15000u32)
            .filter(|i| {
                let k = format!("key/{i}").into_bytes();
                filter_bit(&k) != filter_bit(&keys[0]) && matches!(layer.find(&k), Found::Unwritten)
            })
            .count();
        assert!(unwritten > 9000, "{unwritten}");
    }

    #[test]
    fn a_scan_yields_the_range_in_order_and_ignores_later_writes() {
        let mut layer = Overlay::new();
        for k in ["a", "b", "c", "d"] {
            layer.insert(k.as_bytes(), Some(k.as_bytes()));
        }
        let keys = |scan: LayerScan| scan.map(|(k, _)| k.to_vec()).collect::<Vec<_>>();
        let forward = LayerScan::new(&layer, b"b", b"d", false);
        let reverse = LayerScan::new(&layer, b"b", b"d", true);
        layer.insert(b"bb", None);
        assert_eq!(keys(forward), vec![b"b".to_vec(), b"c".to_vec()]);
        assert_eq!(keys(reverse), vec![b"c".to_vec(), b"b".to_vec()]);
        assert!(keys(LayerScan::new(&layer, b"c", b"c", false)).is_empty());
    }
}
