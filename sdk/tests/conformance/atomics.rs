//! Every atomic mutation end to end through commit, with FoundationDB's length rules.

use crate::harness::*;
use fdb_records::kv::{limits, MutationType, Transaction};
use futures::executor::block_on;

conformance!(
    atomic_add,
    atomic_bit_and,
    atomic_bit_or,
    atomic_bit_xor,
    atomic_append_if_fits,
    atomic_max,
    atomic_min,
    atomic_byte_min,
    atomic_byte_max,
    atomic_compare_and_clear,
    atomic_ops_stack_within_and_across_transactions,
);

/// (stored value before, parameter, stored value after)
type Case = (Option<Vec<u8>>, Vec<u8>, Option<Vec<u8>>);

fn case(before: Option<&[u8]>, param: &[u8], after: Option<&[u8]>) -> Case {
    (
        before.map(<[u8]>::to_vec),
        param.to_vec(),
        after.map(<[u8]>::to_vec),
    )
}

/// Stores each case's initial value, applies `op` in a transaction that does not
/// read (so the mutation itself reaches storage), commits, and checks every result.
/// Also checks that read-your-writes computes the same results before commit.
fn check<H: Harness>(h: &H, op: MutationType, cases: &[Case]) {
    let db = h.db();
    let key = |i: usize| h.k(&format!("{op:?}/{i:03}"));
    block_on(async {
        let t = tx(&db);
        for (i, (before, _, _)) in cases.iter().enumerate() {
            if let Some(v) = before {
                t.set(&key(i), v);
            }
        }
        t.commit().await.unwrap();

        // Read-your-writes view (not committed).
        let t = tx(&db);
        for (i, (_, param, _)) in cases.iter().enumerate() {
            t.atomic_op(&key(i), param, op);
        }
        for (i, (before, param, after)) in cases.iter().enumerate() {
            assert_eq!(
                t.get(&key(i), false).await.unwrap().as_ref(),
                after.as_ref(),
                "{op:?} case {i} before commit: stored {:?}, param {:?}",
                before.as_ref().map(|v| short(v)),
                short(param)
            );
        }
        t.cancel();

        let t = tx(&db);
        for (i, (_, param, _)) in cases.iter().enumerate() {
            t.atomic_op(&key(i), param, op);
        }
        t.commit().await.unwrap();

        let t = tx(&db);
        for (i, (before, param, after)) in cases.iter().enumerate() {
            assert_eq!(
                t.get(&key(i), false).await.unwrap().as_ref(),
                after.as_ref(),
                "{op:?} case {i} after commit: stored {:?}, param {:?}",
                before.as_ref().map(|v| short(v)),
                short(param)
            );
        }
    });
}

/// Shortens large values in failure messages.
fn short(v: &[u8]) -> String {
    if v.len() > 16 {
        format!("<{} bytes>", v.len())
    } else {
        format!("{v:02x?}")
    }
}

pub fn atomic_add<H: Harness>(h: &H) {
    check(
        h,
        MutationType::Add,
        &[
            case(None, &le(5, 4), Some(&le(5, 4))),
            case(Some(&le(250, 4)), &le(10, 4), Some(&le(260, 4))),
            case(Some(&le(5, 8)), &le(-7, 8), Some(&le(-2, 8))),
            case(Some(&le(-1, 8)), &le(1, 8), Some(&le(0, 8))),
            case(Some(&le(i64::MAX, 8)), &le(1, 8), Some(&le(i64::MIN, 8))),
            // Param shorter than the stored value: the value is truncated.
            case(Some(&[0xff, 0x01, 0x07]), &[0x01], Some(&[0x00])),
            // Param longer: the value is zero-extended.
            case(Some(&[0xff]), &[0x01, 0x00], Some(&[0x00, 0x01])),
            // Empty param: the result is empty.
            case(Some(b"abc"), b"", Some(b"")),
            // Stored empty value.
            case(Some(b""), &[0x03], Some(&[0x03])),
        ],
    );
}

pub fn atomic_bit_and<H: Harness>(h: &H) {
    check(
        h,
        MutationType::BitAnd,
        &[
            case(None, &[0x0f], Some(&[0x0f])),
            case(Some(&[0x3c]), &[0x0f], Some(&[0x0c])),
            case(Some(&[0xff, 0xff]), &[0x0f], Some(&[0x0f])),
            case(Some(&[0xff]), &[0x0f, 0xf0], Some(&[0x0f, 0x00])),
            case(Some(&[0xff]), b"", Some(b"")),
        ],
    );
}

pub fn atomic_bit_or<H: Harness>(h: &H) {
    check(
        h,
        MutationType::BitOr,
        &[
            case(None, &[0x01], Some(&[0x01])),
            case(Some(&[0x10, 0x22]), &[0x01], Some(&[0x11])),
            case(Some(&[0x10]), &[0x01, 0x20], Some(&[0x11, 0x20])),
            case(Some(&[0x10]), b"", Some(b"")),
        ],
    );
}

pub fn atomic_bit_xor<H: Harness>(h: &H) {
    check(
        h,
        MutationType::BitXor,
        &[
            case(None, &[0xaa], Some(&[0xaa])),
            case(Some(&[0xff]), &[0x0f, 0x01], Some(&[0xf0, 0x01])),
            case(Some(&[0xaa, 0xbb]), &[0xaa], Some(&[0x00])),
            case(Some(&[0xaa]), b"", Some(b"")),
        ],
    );
}

pub fn atomic_append_if_fits<H: Harness>(h: &H) {
    let full = vec![b'x'; limits::MAX_VALUE_SIZE];
    let almost = vec![b'x'; limits::MAX_VALUE_SIZE - 1];
    let mut almost_plus = almost.clone();
    almost_plus.push(b'b');
    check(
        h,
        MutationType::AppendIfFits,
        &[
            case(None, b"a", Some(b"a")),
            case(Some(b"a"), b"b", Some(b"ab")),
            case(Some(b"a"), b"", Some(b"a")),
            case(Some(b""), b"b", Some(b"b")),
            // Exactly fits.
            case(Some(&almost), b"b", Some(&almost_plus)),
            // Does not fit: unchanged, and no error.
            case(Some(&full), b"b", Some(&full)),
            case(Some(&almost), b"bc", Some(&almost)),
        ],
    );
}

pub fn atomic_max<H: Harness>(h: &H) {
    check(
        h,
        MutationType::Max,
        &[
            case(None, &[0x05], Some(&[0x05])),
            case(Some(b""), &[0x05], Some(&[0x05])),
            // Little-endian: [0x00, 0x01] is 256, [0xff, 0x00] is 255.
            case(Some(&[0x00, 0x01]), &[0xff, 0x00], Some(&[0x00, 0x01])),
            case(Some(&[0xff, 0x00]), &[0x00, 0x01], Some(&[0x00, 0x01])),
            // Unsigned: -1 is the largest.
            case(Some(&le(1, 8)), &le(-1, 8), Some(&le(-1, 8))),
            // Stored shorter: zero-extended before comparing (and in the result).
            case(Some(&[0x01]), &[0x00, 0x00], Some(&[0x01, 0x00])),
            // Stored longer: truncated to the param's length.
            case(Some(&[0x05, 0x09]), &[0x06], Some(&[0x06])),
            case(Some(&[0x07, 0x09]), &[0x06], Some(&[0x07])),
        ],
    );
}

pub fn atomic_min<H: Harness>(h: &H) {
    check(
        h,
        MutationType::Min,
        &[
            // Missing: the param is stored (not compared against zero).
            case(None, &[0x05], Some(&[0x05])),
            case(Some(&[0x00, 0x01]), &[0xff, 0x00], Some(&[0xff, 0x00])),
            case(Some(&[0xff, 0x00]), &[0x00, 0x01], Some(&[0xff, 0x00])),
            case(Some(&le(1, 8)), &le(-1, 8), Some(&le(1, 8))),
            // Stored longer: truncated.
            case(Some(&[0x09, 0x09]), &[0x05], Some(&[0x05])),
            case(Some(&[0x03, 0x00, 0x07]), &[0x04], Some(&[0x03])),
            // Stored shorter: zero-extended.
            case(Some(&[0x03]), &[0x05, 0x00], Some(&[0x03, 0x00])),
            case(Some(&[0x03]), &[0x05, 0x01], Some(&[0x03, 0x00])),
            // Stored empty (present): it counts as zero.
            case(Some(b""), &[0x05], Some(&[0x00])),
        ],
    );
}

pub fn atomic_byte_min<H: Harness>(h: &H) {
    check(
        h,
        MutationType::ByteMin,
        &[
            case(None, b"z", Some(b"z")),
            case(Some(b"b"), b"ab", Some(b"ab")),
            case(Some(b"abc"), b"abd", Some(b"abc")),
            case(Some(b"ab"), b"abc", Some(b"ab")),
            case(Some(b"x"), b"", Some(b"")),
        ],
    );
}

pub fn atomic_byte_max<H: Harness>(h: &H) {
    check(
        h,
        MutationType::ByteMax,
        &[
            case(None, b"", Some(b"")),
            case(None, b"a", Some(b"a")),
            case(Some(b"b"), b"ab", Some(b"b")),
            case(Some(b"ab"), b"abc", Some(b"abc")),
            case(Some(b""), b"a", Some(b"a")),
        ],
    );
}

pub fn atomic_compare_and_clear<H: Harness>(h: &H) {
    check(
        h,
        MutationType::CompareAndClear,
        &[
            case(Some(b"x"), b"x", None),
            case(Some(b"x"), b"y", Some(b"x")),
            case(Some(b"x"), b"xx", Some(b"x")),
            case(None, b"y", None),
            case(Some(b""), b"", None),
        ],
    );
}

pub fn atomic_ops_stack_within_and_across_transactions<H: Harness>(h: &H) {
    let db = h.db();
    block_on(async {
        let (c, m) = (h.k("counter"), h.k("max"));
        let t = tx(&db);
        t.atomic_op(&c, &le(1, 8), MutationType::Add);
        t.atomic_op(&c, &le(2, 8), MutationType::Add);
        t.atomic_op(&m, &le(3, 8), MutationType::Max);
        t.atomic_op(&m, &le(2, 8), MutationType::Max);
        t.commit().await.unwrap();
        assert_eq!(get(&db, &c).await, Some(le(3, 8)));
        assert_eq!(get(&db, &m).await, Some(le(3, 8)));
        let t = tx(&db);
        t.atomic_op(&c, &le(-5, 8), MutationType::Add);
        t.atomic_op(&c, &[0x0f], MutationType::BitAnd);
        t.atomic_op(&m, &le(9, 8), MutationType::Min);
        t.set(&h.k("after-set"), &le(10, 8));
        t.atomic_op(&h.k("after-set"), &le(10, 8), MutationType::Add);
        t.clear(&h.k("after-set"));
        t.atomic_op(&h.k("after-set"), &le(1, 8), MutationType::Add);
        t.commit().await.unwrap();
        // 3 - 5 = -2 = 0xfe.., masked by a 1-byte AND: [0x0e].
        assert_eq!(get(&db, &c).await, Some(vec![0x0e]));
        assert_eq!(get(&db, &m).await, Some(le(3, 8)));
        assert_eq!(get(&db, &h.k("after-set")).await, Some(le(1, 8)));
    });
}
