//! Records larger than one value: split across consecutive keys, reassembled on load.
//!
//! A record of at most [`CHUNK_SIZE`] bytes is one value at suffix `0`. A larger one is
//! stored as chunks at suffixes `1..=n`; chunk 1 starts with `n` as a 4-byte
//! little-endian header, so that a missing *last* chunk is detected too (without it a
//! torn record whose tail is lost would look whole).

use crate::kv::{limits, Bytes};
use crate::layout::suffix;
use std::collections::BTreeMap;

/// Largest value written for one chunk: FoundationDB's value size limit.
pub const CHUNK_SIZE: usize = limits::MAX_VALUE_SIZE;
const HEADER: usize = 4;
/// Most chunks a record can have: all of it is written in one transaction.
const MAX_CHUNKS: i64 = (limits::MAX_TRANSACTION_SIZE / CHUNK_SIZE) as i64 + 1;

/// The `(suffix, value)` pairs that store `data`.
pub(crate) fn split(data: &[u8]) -> Vec<(i64, Vec<u8>)> {
    if data.len() <= CHUNK_SIZE {
        return vec![(suffix::UNSPLIT, data.to_vec())];
    }
    let first = CHUNK_SIZE - HEADER;
    let rest = data.len() - first;
    let n = 1 + rest.div_ceil(CHUNK_SIZE);
    let mut chunks = Vec::with_capacity(n);
    let mut head = (n as u32).to_le_bytes().to_vec();
    head.extend_from_slice(&data[..first]);
    chunks.push((suffix::FIRST_CHUNK, head));
    for (i, chunk) in data[first..].chunks(CHUNK_SIZE).enumerate() {
        chunks.push((suffix::FIRST_CHUNK + 1 + i as i64, chunk.to_vec()));
    }
    chunks
}

/// Why stored parts do not form a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum SplitError {
    /// Chunks are missing.
    Torn(String),
    /// Parts that cannot belong together (unsplit and chunks, chunks beyond the count).
    Corrupt(String),
}

/// Reassembles a record from its data parts (suffix → value; the version suffix must
/// already be removed). `Ok(None)`: no data at all. Returns the data and the number of
/// values it was stored in.
pub(crate) fn assemble(parts: Vec<(i64, Bytes)>) -> Result<Option<(Bytes, usize)>, SplitError> {
    // The common case, without building a map.
    if let [(suffix::UNSPLIT, _)] = parts.as_slice() {
        let (_, unsplit) = parts.into_iter().next().expect("one part");
        return Ok(Some((unsplit, 1)));
    }
    let mut parts: BTreeMap<i64, Bytes> = parts.into_iter().collect();
    if parts.is_empty() {
        return Ok(None);
    }
    if let Some(unsplit) = parts.remove(&suffix::UNSPLIT) {
        if !parts.is_empty() {
            return Err(SplitError::Corrupt(format!(
                "unsplit value next to chunks {:?}",
                parts.keys().collect::<Vec<_>>()
            )));
        }
        return Ok(Some((unsplit, 1)));
    }
    let Some(first) = parts.get(&suffix::FIRST_CHUNK) else {
        return Err(SplitError::Torn(format!(
            "chunk 1 is missing (found chunks {:?})",
            parts.keys().collect::<Vec<_>>()
        )));
    };
    if first.len() < HEADER {
        return Err(SplitError::Corrupt("chunk 1 has no header".into()));
    }
    let n = u32::from_le_bytes(first[..HEADER].try_into().expect("4 bytes")) as i64;
    // Read from the database: bounded before anything is sized by it.
    if n > MAX_CHUNKS {
        return Err(SplitError::Corrupt(format!(
            "chunk 1 counts {n} chunks; a record has at most {MAX_CHUNKS}"
        )));
    }
    if let Some(extra) = parts.keys().find(|&&k| k < suffix::FIRST_CHUNK || k > n) {
        return Err(SplitError::Corrupt(format!(
            "chunk {extra} is beyond the record's {n} chunks"
        )));
    }
    let missing: Vec<i64> = (suffix::FIRST_CHUNK..=n)
        .filter(|k| !parts.contains_key(k))
        .collect();
    if !missing.is_empty() {
        return Err(SplitError::Torn(format!(
            "chunks {missing:?} of {n} are missing"
        )));
    }
    let mut data = Vec::with_capacity(parts.values().map(Bytes::len).sum());
    for (k, v) in parts {
        data.extend_from_slice(if k == suffix::FIRST_CHUNK {
            &v[HEADER..]
        } else {
            &v
        });
    }
    Ok(Some((data.into(), n as usize)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(chunks: Vec<(i64, Vec<u8>)>) -> Vec<(i64, Bytes)> {
        chunks.into_iter().map(|(k, v)| (k, v.into())).collect()
    }

    fn assembled(found: Option<(Bytes, usize)>) -> Option<(Vec<u8>, usize)> {
        found.map(|(b, n)| (b.to_vec(), n))
    }

    #[test]
    fn small_records_are_one_value() {
        let data = vec![7u8; CHUNK_SIZE];
        let chunks = split(&data);
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].0, suffix::UNSPLIT);
        assert_eq!(assembled(assemble(parts(chunks)).unwrap()), Some((data, 1)));
    }

    #[test]
    fn large_records_round_trip_and_respect_the_value_limit() {
        let data: Vec<u8> = (0..250_001u32).map(|i| i as u8).collect();
        let chunks = split(&data);
        assert_eq!(chunks.len(), 3);
        assert!(chunks.iter().all(|(_, v)| v.len() <= CHUNK_SIZE));
        assert_eq!(
            chunks.iter().map(|c| c.0).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        assert_eq!(assembled(assemble(parts(chunks)).unwrap()), Some((data, 3)));
    }

    #[test]
    fn missing_or_extra_chunks_are_detected() {
        let data = vec![1u8; 350_000];
        for missing in 1..=4 {
            let mut p = parts(split(&data));
            p.retain(|(k, _)| *k != missing);
            assert!(
                matches!(assemble(p), Err(SplitError::Torn(_))),
                "chunk {missing}"
            );
        }
        let mut p = parts(split(&data));
        p.push((5, vec![0].into()));
        assert!(matches!(assemble(p), Err(SplitError::Corrupt(_))));
        let mut p = parts(split(&data));
        p.push((0, vec![0].into()));
        assert!(matches!(assemble(p), Err(SplitError::Corrupt(_))));
        assert_eq!(assemble(Vec::new()).unwrap(), None);
        // An unsplit value alone is the record; next to a chunk it is corruption.
        assert_eq!(
            assembled(assemble(parts(vec![(0, vec![9])])).unwrap()),
            Some((vec![9], 1))
        );
        assert!(matches!(
            assemble(parts(vec![(1, vec![0; 8]), (0, vec![9])])),
            Err(SplitError::Corrupt(_))
        ));
    }
}
