//! Continuation tokens: a versioned protobuf envelope
//! (`schemas/fdb_records/continuation.proto`), bound to its scan by a SHA-256 and
//! optionally authenticated with HMAC-SHA256.
//!
//! Tokens are untrusted input. Decoding never panics: anything that is not exactly a
//! token this SDK wrote is a typed [`ContinuationError`] — too large, malformed, of an
//! unsupported version, or (with a signing key) [`ContinuationError::Tampered`].
//! Resuming then checks the binding (another scan's token is
//! [`ContinuationError::Mismatch`]) and that the position lies inside the scan's range
//! ([`ContinuationError::OutOfRange`]) before reading anything, so even an unsigned,
//! hand-crafted token cannot make a scan read outside its range.
//!
//! ```
//! use fdb_records::cursor::{ContinuationCodec, ContinuationError};
//! let codec = ContinuationCodec::signed(b"key");
//! assert!(matches!(codec.decode(b"garbage"), Err(ContinuationError::Malformed(_))));
//! assert!(matches!(codec.decode_str("%%%"), Err(ContinuationError::Malformed(_))));
//! ```

use crate::kv::{limits, Bytes};
use crate::proto;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use prost::Message;
use sha2::{Digest, Sha256};
use std::fmt;

/// The token format version this SDK writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Largest token accepted, in bytes (a token holds at most a few keys).
pub const MAX_TOKEN_BYTES: usize = 64 * 1024;
/// Deepest nesting of unions and intersections a token may describe.
pub const MAX_DEPTH: usize = 8;
/// Most children one union or intersection may have in a token.
pub const MAX_CHILDREN: usize = 64;

const MAC_DOMAIN: &[u8] = b"fdb-records continuation";
const BINDING_DOMAIN: &[u8] = b"fdb-records scan binding v1";
const BINDING_LEN: usize = 32;
const MAC_LEN: usize = 32;

/// Why a continuation token was refused. Nothing is read when resuming fails.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ContinuationError {
    /// Not a continuation token (garbage, truncated, or not in canonical form).
    #[error("malformed continuation token: {0}")]
    Malformed(String),
    /// Larger than [`MAX_TOKEN_BYTES`].
    #[error("continuation token is {size} bytes; at most {limit} are accepted")]
    TooLarge { size: usize, limit: usize },
    /// Written by a newer (or unknown) token format.
    #[error("continuation token format version {0} is not supported (this SDK reads version {FORMAT_VERSION})")]
    UnsupportedVersion(u32),
    /// The signature is missing or does not match: the token was altered, or signed
    /// with another key.
    #[error(
        "continuation token failed authentication: it was altered or not signed with this key"
    )]
    Tampered,
    /// The token belongs to another scan (store, record type or index, range,
    /// direction, metadata version or label differ).
    #[error("continuation token belongs to a different scan")]
    Mismatch,
    /// The token's position lies outside the scan's range.
    #[error("continuation token points outside the scan's range")]
    OutOfRange,
    /// The token's position does not fit the scan's shape (for example a union
    /// position for a plain scan, or the wrong number of children).
    #[error("continuation token does not fit the scan: {0}")]
    InvalidPosition(String),
}

/// Where a scan stopped (plan internals; opaque to applications).
#[doc(hidden)]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Position {
    /// Nothing consumed yet.
    Start,
    /// After this key (relative to the scanned subspace) in the scan's direction. A
    /// slice of the key read (cursors hand one out per item), never a copy.
    After(Bytes),
    /// A union or intersection: the primary key (bytes) of the last item it returned,
    /// and one position per child.
    Children {
        last: Option<Vec<u8>>,
        children: Vec<Position>,
    },
    /// Everything consumed.
    End,
}

impl Position {
    /// The same position owning its key, rather than sharing the buffer of the batch it
    /// was read from (a kept continuation would otherwise keep the whole batch alive).
    fn detached(self) -> Position {
        match self {
            Position::After(key) => Position::After(Bytes::copy_from_slice(&key)),
            Position::Children { last, children } => Position::Children {
                last,
                children: children.into_iter().map(Position::detached).collect(),
            },
            other => other,
        }
    }
}

/// Where to resume a scan: a position bound to the scan it came from.
///
/// Get one from [`Cursor::continuation`](super::Cursor::continuation) or a
/// [`Page`](super::Page); turn it into bytes or a URL-safe string with a
/// [`ContinuationCodec`] (or [`to_bytes`](Self::to_bytes) /
/// [`to_token_string`](Self::to_token_string), unsigned). The start and the end of a
/// scan are distinct, non-empty tokens.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Continuation {
    binding: [u8; BINDING_LEN],
    position: Position,
}

impl fmt::Debug for Continuation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Continuation")
            .field("position", &self.position)
            .finish_non_exhaustive()
    }
}

impl Continuation {
    pub(crate) fn new(binding: [u8; BINDING_LEN], position: Position) -> Self {
        Continuation {
            binding,
            position: position.detached(),
        }
    }
    /// The scan has not returned anything yet.
    pub fn is_start(&self) -> bool {
        self.position == Position::Start
    }
    /// The scan is complete: resuming returns nothing.
    pub fn is_end(&self) -> bool {
        self.position == Position::End
    }
    /// The binding hash of the scan this continuation belongs to.
    pub fn binding(&self) -> &[u8; BINDING_LEN] {
        &self.binding
    }
    #[doc(hidden)]
    pub fn position(&self) -> &Position {
        &self.position
    }
    /// The unsigned token bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        ContinuationCodec::unsigned().encode(self)
    }
    /// The unsigned token as base64url without padding.
    pub fn to_token_string(&self) -> String {
        ContinuationCodec::unsigned().encode_string(self)
    }
    /// Decodes unsigned token bytes (a signature, if present, is not checked).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ContinuationError> {
        ContinuationCodec::unsigned().decode(bytes)
    }
    /// Decodes an unsigned token string.
    pub fn from_token_string(token: &str) -> Result<Self, ContinuationError> {
        ContinuationCodec::unsigned().decode_str(token)
    }
}

/// Encodes and decodes continuation tokens, signing and verifying them when built
/// with a key.
///
/// With a key, every token is authenticated with HMAC-SHA256 and a token without a
/// valid MAC is [`ContinuationError::Tampered`]. Without one, tokens are not
/// authenticated but still cannot resume another scan, nor read outside the range of
/// the scan they are bound to.
///
/// ```
/// use fdb_records::cursor::{ContinuationCodec, ContinuationError};
/// # use fdb_records::cursor::Continuation;
/// # fn token() -> Continuation { unimplemented!() }
/// let signer = ContinuationCodec::signed(b"a secret from the application's config");
/// let other = ContinuationCodec::signed(b"another key");
/// # if false {
/// let text = signer.encode_string(&token());
/// assert!(signer.decode_str(&text).is_ok());
/// assert_eq!(other.decode_str(&text), Err(ContinuationError::Tampered));
/// # }
/// ```
#[derive(Clone)]
pub struct ContinuationCodec {
    key: Option<Hmac<Sha256>>,
}

impl fmt::Debug for ContinuationCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContinuationCodec")
            .field("signed", &self.key.is_some())
            .finish()
    }
}

impl ContinuationCodec {
    /// Tokens without a MAC.
    pub fn unsigned() -> Self {
        ContinuationCodec { key: None }
    }
    /// Tokens authenticated with HMAC-SHA256 under `key`.
    pub fn signed(key: &[u8]) -> Self {
        let mac =
            <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length");
        ContinuationCodec { key: Some(mac) }
    }
    /// Whether tokens are signed and verified.
    pub fn is_signed(&self) -> bool {
        self.key.is_some()
    }

    fn mac(key: &Hmac<Sha256>, version: u32, body: &[u8]) -> Hmac<Sha256> {
        let mut mac = key.clone();
        mac.update(MAC_DOMAIN);
        mac.update(&version.to_be_bytes());
        mac.update(body);
        mac
    }

    /// The token's bytes.
    pub fn encode(&self, continuation: &Continuation) -> Vec<u8> {
        let body = proto::ContinuationBody {
            scan_binding: continuation.binding.to_vec(),
            position: Some(position_to_proto(&continuation.position)),
        }
        .encode_to_vec();
        let mac = match &self.key {
            Some(key) => Self::mac(key, FORMAT_VERSION, &body)
                .finalize()
                .into_bytes()
                .to_vec(),
            None => Vec::new(),
        };
        proto::ContinuationEnvelope {
            format_version: FORMAT_VERSION,
            body,
            mac,
        }
        .encode_to_vec()
    }

    /// The token as a URL-safe string (base64url, no padding).
    pub fn encode_string(&self, continuation: &Continuation) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.encode(continuation))
    }

    /// Decodes and (with a key) authenticates token bytes.
    pub fn decode(&self, bytes: &[u8]) -> Result<Continuation, ContinuationError> {
        if bytes.len() > MAX_TOKEN_BYTES {
            return Err(ContinuationError::TooLarge {
                size: bytes.len(),
                limit: MAX_TOKEN_BYTES,
            });
        }
        let malformed = |what: &str| ContinuationError::Malformed(what.to_string());
        let envelope = proto::ContinuationEnvelope::decode(bytes)
            .map_err(|e| ContinuationError::Malformed(format!("not a token envelope: {e}")))?;
        if envelope.encode_to_vec() != bytes {
            return Err(malformed("envelope is not in canonical form"));
        }
        match envelope.format_version {
            0 => return Err(malformed("missing format version")),
            FORMAT_VERSION => {}
            other => return Err(ContinuationError::UnsupportedVersion(other)),
        }
        match &self.key {
            Some(key) => {
                if envelope.mac.is_empty() {
                    return Err(ContinuationError::Tampered);
                }
                Self::mac(key, envelope.format_version, &envelope.body)
                    .verify_slice(&envelope.mac)
                    .map_err(|_| ContinuationError::Tampered)?;
            }
            None => {
                if !envelope.mac.is_empty() && envelope.mac.len() != MAC_LEN {
                    return Err(malformed("MAC has the wrong length"));
                }
            }
        }
        let body = proto::ContinuationBody::decode(envelope.body.as_slice())
            .map_err(|e| ContinuationError::Malformed(format!("not a token body: {e}")))?;
        if body.encode_to_vec() != envelope.body {
            return Err(malformed("body is not in canonical form"));
        }
        let binding: [u8; BINDING_LEN] = body
            .scan_binding
            .as_slice()
            .try_into()
            .map_err(|_| malformed("scan binding must be 32 bytes"))?;
        let position = body
            .position
            .as_ref()
            .ok_or_else(|| malformed("missing position"))?;
        Ok(Continuation {
            binding,
            position: position_from_proto(position, 0)?,
        })
    }

    /// Decodes and (with a key) authenticates a token string.
    pub fn decode_str(&self, token: &str) -> Result<Continuation, ContinuationError> {
        let max = MAX_TOKEN_BYTES.div_ceil(3) * 4;
        if token.len() > max {
            return Err(ContinuationError::TooLarge {
                size: token.len(),
                limit: max,
            });
        }
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|e| ContinuationError::Malformed(format!("not base64url: {e}")))?;
        self.decode(&bytes)
    }
}

fn position_to_proto(position: &Position) -> proto::ContinuationPosition {
    use proto::continuation_position::Kind;
    let (kind, key, children) = match position {
        Position::Start => (Kind::Start, Vec::new(), Vec::new()),
        Position::After(key) => (Kind::AfterKey, key.to_vec(), Vec::new()),
        Position::Children { last, children } => (
            Kind::Children,
            last.clone().unwrap_or_default(),
            children.iter().map(position_to_proto).collect(),
        ),
        Position::End => (Kind::End, Vec::new(), Vec::new()),
    };
    proto::ContinuationPosition {
        kind: kind as i32,
        key,
        children,
    }
}

fn position_from_proto(
    p: &proto::ContinuationPosition,
    depth: usize,
) -> Result<Position, ContinuationError> {
    use proto::continuation_position::Kind;
    let malformed = |what: &str| Err(ContinuationError::Malformed(what.to_string()));
    if depth > MAX_DEPTH {
        return malformed("positions nested too deeply");
    }
    let kind = Kind::try_from(p.kind)
        .map_err(|_| ContinuationError::Malformed(format!("unknown position kind {}", p.kind)))?;
    let plain = p.key.is_empty() && p.children.is_empty();
    match kind {
        Kind::Unspecified => malformed("position kind is not set"),
        Kind::Start if plain => Ok(Position::Start),
        Kind::End if plain => Ok(Position::End),
        Kind::AfterKey if p.children.is_empty() => {
            if p.key.is_empty() {
                return malformed("empty position key");
            }
            if p.key.len() > limits::MAX_KEY_SIZE {
                return malformed("position key longer than any key");
            }
            Ok(Position::After(Bytes::copy_from_slice(&p.key)))
        }
        Kind::Children => {
            if p.children.is_empty() || p.children.len() > MAX_CHILDREN {
                return malformed("wrong number of child positions");
            }
            if p.key.len() > limits::MAX_KEY_SIZE {
                return malformed("position key longer than any key");
            }
            let children = p
                .children
                .iter()
                .map(|c| position_from_proto(c, depth + 1))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Position::Children {
                last: (!p.key.is_empty()).then(|| p.key.clone()),
                children,
            })
        }
        _ => malformed("position has fields its kind does not allow"),
    }
}

/// Builds a scan binding: SHA-256 over length-prefixed fields (plan internals).
#[doc(hidden)]
pub struct BindingHasher(Sha256);

impl Default for BindingHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl BindingHasher {
    pub fn new() -> Self {
        let mut h = Sha256::new();
        h.update(BINDING_DOMAIN);
        BindingHasher(h)
    }
    /// Adds a length-prefixed byte string.
    pub fn bytes(&mut self, bytes: &[u8]) {
        self.0.update((bytes.len() as u64).to_be_bytes());
        self.0.update(bytes);
    }
    /// Adds a number.
    pub fn u64(&mut self, n: u64) {
        self.0.update(n.to_be_bytes());
    }
    /// The binding.
    pub fn finish(self) -> [u8; BINDING_LEN] {
        self.0.finalize().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Continuation {
        Continuation::new(
            [7; 32],
            Position::Children {
                last: Some(b"\x05\x15\x02\x00".to_vec()),
                children: vec![
                    Position::After(Bytes::from_static(b"\x05\x15\x01\x00")),
                    Position::End,
                    Position::Start,
                ],
            },
        )
    }

    #[test]
    fn round_trips_signed_and_unsigned() {
        for codec in [
            ContinuationCodec::unsigned(),
            ContinuationCodec::signed(b"k"),
        ] {
            let c = sample();
            assert_eq!(codec.decode(&codec.encode(&c)).unwrap(), c);
            assert_eq!(codec.decode_str(&codec.encode_string(&c)).unwrap(), c);
        }
    }

    #[test]
    fn start_and_end_are_distinct_and_non_empty() {
        let start = Continuation::new([1; 32], Position::Start).to_bytes();
        let end = Continuation::new([1; 32], Position::End).to_bytes();
        assert!(!start.is_empty() && !end.is_empty());
        assert_ne!(start, end);
        assert!(Continuation::from_bytes(&start).unwrap().is_start());
        assert!(Continuation::from_bytes(&end).unwrap().is_end());
        assert!(matches!(
            Continuation::from_bytes(b""),
            Err(ContinuationError::Malformed(_))
        ));
    }

    #[test]
    fn signatures_are_checked() {
        let signed = ContinuationCodec::signed(b"k");
        let bytes = ContinuationCodec::unsigned().encode(&sample());
        assert_eq!(signed.decode(&bytes), Err(ContinuationError::Tampered));
        let bytes = signed.encode(&sample());
        assert_eq!(
            ContinuationCodec::signed(b"j").decode(&bytes),
            Err(ContinuationError::Tampered)
        );
        for i in 0..bytes.len() {
            let mut altered = bytes.clone();
            altered[i] ^= 0x01;
            assert!(signed.decode(&altered).is_err(), "byte {i}");
        }
    }

    #[test]
    fn versions_and_shapes_are_checked() {
        let body = proto::ContinuationBody {
            scan_binding: vec![0; 32],
            position: Some(position_to_proto(&Position::Start)),
        }
        .encode_to_vec();
        let env = |v: u32| {
            proto::ContinuationEnvelope {
                format_version: v,
                body: body.clone(),
                mac: Vec::new(),
            }
            .encode_to_vec()
        };
        let codec = ContinuationCodec::unsigned();
        assert!(codec.decode(&env(1)).is_ok());
        assert_eq!(
            codec.decode(&env(2)),
            Err(ContinuationError::UnsupportedVersion(2))
        );
        assert!(matches!(
            codec.decode(&env(0)),
            Err(ContinuationError::Malformed(_))
        ));
        let bad = proto::ContinuationPosition {
            kind: 1,
            key: b"x".to_vec(),
            children: Vec::new(),
        };
        assert!(position_from_proto(&bad, 0).is_err());
        let mut deep = position_to_proto(&Position::Start);
        for _ in 0..=MAX_DEPTH + 1 {
            deep = proto::ContinuationPosition {
                kind: 3,
                key: Vec::new(),
                children: vec![deep],
            };
        }
        assert!(position_from_proto(&deep, 0).is_err());
        assert!(matches!(
            codec.decode(&vec![0u8; MAX_TOKEN_BYTES + 1]),
            Err(ContinuationError::TooLarge { .. })
        ));
    }
}
