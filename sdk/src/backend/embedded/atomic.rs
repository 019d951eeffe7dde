//! FoundationDB's byte-level semantics of atomic mutations and versionstamp placeholders,
//! as specified in `fdb.options` (API version 520 and later).

use crate::kv::{code, limits, FdbError, MutationType};

/// Applies `op` with `param` to the stored value `existing`; `None` means the key is
/// (or becomes) absent. Versionstamp mutations are not handled here.
pub(crate) fn apply(op: MutationType, existing: Option<&[u8]>, param: &[u8]) -> Option<Vec<u8>> {
    match op {
        MutationType::Add => Some(add(existing.unwrap_or(&[]), param)),
        MutationType::BitAnd => Some(match existing {
            None => param.to_vec(),
            Some(v) => bitwise(v, param, |a, b| a & b),
        }),
        MutationType::BitOr => Some(bitwise(existing.unwrap_or(&[]), param, |a, b| a | b)),
        MutationType::BitXor => Some(bitwise(existing.unwrap_or(&[]), param, |a, b| a ^ b)),
        MutationType::AppendIfFits => Some(match existing {
            None => param.to_vec(),
            Some(v) if v.len() + param.len() <= limits::MAX_VALUE_SIZE => [v, param].concat(),
            Some(v) => v.to_vec(),
        }),
        MutationType::Max => {
            let v = fit(existing.unwrap_or(&[]), param.len());
            Some(if le_cmp(&v, param).is_ge() {
                v
            } else {
                param.to_vec()
            })
        }
        MutationType::Min => Some(match existing {
            None => param.to_vec(),
            Some(v) => {
                let v = fit(v, param.len());
                if le_cmp(&v, param).is_le() {
                    v
                } else {
                    param.to_vec()
                }
            }
        }),
        MutationType::ByteMin => Some(match existing {
            Some(v) if v <= param => v.to_vec(),
            _ => param.to_vec(),
        }),
        MutationType::ByteMax => Some(match existing {
            Some(v) if v >= param => v.to_vec(),
            _ => param.to_vec(),
        }),
        MutationType::CompareAndClear => match existing {
            Some(v) if v == param => None,
            other => other.map(<[u8]>::to_vec),
        },
        MutationType::SetVersionstampedKey | MutationType::SetVersionstampedValue => {
            unreachable!("versionstamp mutations are transformed before they are applied")
        }
    }
}

/// `existing` truncated or zero-extended to `len` bytes.
fn fit(existing: &[u8], len: usize) -> Vec<u8> {
    let mut v = existing[..existing.len().min(len)].to_vec();
    v.resize(len, 0);
    v
}

fn add(existing: &[u8], param: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(param.len());
    let mut carry = 0u16;
    for (i, &p) in param.iter().enumerate() {
        let sum = p as u16 + existing.get(i).copied().unwrap_or(0) as u16 + carry;
        out.push(sum as u8);
        carry = sum >> 8;
    }
    out
}

fn bitwise(existing: &[u8], param: &[u8], f: impl Fn(u8, u8) -> u8) -> Vec<u8> {
    param
        .iter()
        .enumerate()
        .map(|(i, &p)| f(existing.get(i).copied().unwrap_or(0), p))
        .collect()
}

/// Compares equal-length byte strings as unsigned little-endian integers.
fn le_cmp(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    a.iter().rev().cmp(b.iter().rev())
}

/// Checks a versionstamp template (bytes ending in a 4-byte little-endian offset)
/// and returns the offset of the 10-byte placeholder.
pub(crate) fn versionstamp_offset(template: &[u8]) -> Result<usize, FdbError> {
    let invalid = FdbError::from_code(code::CLIENT_INVALID_OPERATION);
    let body_len = template.len().checked_sub(4).ok_or(invalid)?;
    let pos = u32::from_le_bytes(template[body_len..].try_into().expect("4 bytes")) as usize;
    if pos.checked_add(10).is_none_or(|end| end > body_len) {
        return Err(invalid);
    }
    Ok(pos)
}

/// The template with its offset suffix removed and `stamp` written at the placeholder.
pub(crate) fn fill_versionstamp(template: &[u8], stamp: &[u8; 10]) -> Result<Vec<u8>, FdbError> {
    let pos = versionstamp_offset(template)?;
    let mut out = template[..template.len() - 4].to_vec();
    out[pos..pos + 10].copy_from_slice(stamp);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use MutationType::*;

    fn le(n: i64, len: usize) -> Vec<u8> {
        n.to_le_bytes()[..len].to_vec()
    }

    #[test]
    fn add_is_little_endian_with_param_length() {
        assert_eq!(apply(Add, None, &le(5, 8)), Some(le(5, 8)));
        assert_eq!(apply(Add, Some(&le(250, 8)), &le(10, 8)), Some(le(260, 8)));
        assert_eq!(apply(Add, Some(&le(5, 8)), &le(-7, 8)), Some(le(-2, 8)));
        // Existing longer than param: truncated to the param's length.
        assert_eq!(
            apply(Add, Some(&[0xff, 0x01, 0x07]), &[0x01]),
            Some(vec![0x00])
        );
        // Existing shorter: zero-extended.
        assert_eq!(
            apply(Add, Some(&[0xff]), &[0x01, 0x00]),
            Some(vec![0x00, 0x01])
        );
        assert_eq!(apply(Add, Some(b"abc"), &[]), Some(vec![]));
    }

    #[test]
    fn bitwise_ops_and_missing_values() {
        assert_eq!(apply(BitAnd, None, &[0x0f]), Some(vec![0x0f]));
        assert_eq!(
            apply(BitAnd, Some(&[0xff, 0xff]), &[0x0f]),
            Some(vec![0x0f])
        );
        assert_eq!(
            apply(BitAnd, Some(&[0xff]), &[0x0f, 0xf0]),
            Some(vec![0x0f, 0x00])
        );
        assert_eq!(apply(BitOr, None, &[0x01]), Some(vec![0x01]));
        assert_eq!(apply(BitOr, Some(&[0x10, 0x22]), &[0x01]), Some(vec![0x11]));
        assert_eq!(
            apply(BitXor, Some(&[0xff]), &[0x0f, 0x01]),
            Some(vec![0xf0, 0x01])
        );
    }

    #[test]
    fn min_max_compare_unsigned_little_endian() {
        // 0x0100 (256) vs 0x00ff (255) in little-endian: [0x00,0x01] > [0xff,0x00].
        assert_eq!(
            apply(Max, Some(&[0x00, 0x01]), &[0xff, 0x00]),
            Some(vec![0x00, 0x01])
        );
        assert_eq!(
            apply(Min, Some(&[0x00, 0x01]), &[0xff, 0x00]),
            Some(vec![0xff, 0x00])
        );
        // Missing: max compares against zero, min stores the param.
        assert_eq!(apply(Max, None, &[0x05]), Some(vec![0x05]));
        assert_eq!(apply(Min, None, &[0x05]), Some(vec![0x05]));
        // Negative numbers are large unsigned values.
        assert_eq!(apply(Max, Some(&le(1, 8)), &le(-1, 8)), Some(le(-1, 8)));
        // Length adjustment happens before comparing.
        assert_eq!(apply(Min, Some(&[0x09, 0x09]), &[0x05]), Some(vec![0x05]));
        assert_eq!(
            apply(Max, Some(&[0x01]), &[0x00, 0x00]),
            Some(vec![0x01, 0x00])
        );
    }

    #[test]
    fn byte_min_max_and_compare_and_clear() {
        assert_eq!(apply(ByteMin, Some(b"b"), b"ab"), Some(b"ab".to_vec()));
        assert_eq!(apply(ByteMax, Some(b"b"), b"ab"), Some(b"b".to_vec()));
        assert_eq!(apply(ByteMin, None, b"z"), Some(b"z".to_vec()));
        assert_eq!(apply(ByteMax, None, b""), Some(b"".to_vec()));
        assert_eq!(apply(CompareAndClear, Some(b"x"), b"x"), None);
        assert_eq!(
            apply(CompareAndClear, Some(b"x"), b"y"),
            Some(b"x".to_vec())
        );
        assert_eq!(apply(CompareAndClear, None, b"y"), None);
    }

    #[test]
    fn append_if_fits_respects_value_limit() {
        assert_eq!(apply(AppendIfFits, None, b"a"), Some(b"a".to_vec()));
        assert_eq!(apply(AppendIfFits, Some(b"a"), b"b"), Some(b"ab".to_vec()));
        let full = vec![1u8; limits::MAX_VALUE_SIZE];
        assert_eq!(apply(AppendIfFits, Some(&full), b"b"), Some(full.clone()));
        let almost = vec![1u8; limits::MAX_VALUE_SIZE - 1];
        assert_eq!(
            apply(AppendIfFits, Some(&almost), b"b").unwrap().len(),
            limits::MAX_VALUE_SIZE
        );
    }

    #[test]
    fn versionstamp_templates() {
        let mut t = b"ab".to_vec();
        t.extend([0u8; 10]);
        t.extend(b"c");
        t.extend(2u32.to_le_bytes());
        let stamp = [9u8; 10];
        let filled = fill_versionstamp(&t, &stamp).unwrap();
        assert_eq!(&filled[..2], b"ab");
        assert_eq!(&filled[2..12], &stamp);
        assert_eq!(&filled[12..], b"c");
        assert!(versionstamp_offset(&[0, 0, 0]).is_err());
        let mut bad = vec![0u8; 10];
        bad.extend(1u32.to_le_bytes());
        assert!(versionstamp_offset(&bad).is_err());
        let mut exact = vec![0u8; 10];
        exact.extend(0u32.to_le_bytes());
        assert_eq!(versionstamp_offset(&exact), Ok(0));
    }
}
