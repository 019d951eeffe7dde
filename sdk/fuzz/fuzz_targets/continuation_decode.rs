//! Fuzzes the continuation token decoder: any bytes or string must decode to a typed
//! error or to a continuation that re-encodes and decodes to itself — never a panic.
//!
//! Run: `cargo +nightly fuzz run continuation_decode` from `sdk/`.
#![no_main]

use fdb_records::cursor::{Continuation, ContinuationCodec};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let signed = ContinuationCodec::signed(b"fuzz key");
    let _ = signed.decode(data);
    if let Ok(c) = Continuation::from_bytes(data) {
        let again = Continuation::from_bytes(&c.to_bytes()).expect("re-encoded token decodes");
        assert_eq!(again, c);
        let sealed = signed.encode(&c);
        assert_eq!(signed.decode(&sealed).expect("signed round trip"), c);
        let text = signed.encode_string(&c);
        assert_eq!(signed.decode_str(&text).expect("string round trip"), c);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Continuation::from_token_string(text);
        let _ = signed.decode_str(text);
    }
});
