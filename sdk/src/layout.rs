//! THE key layout of a record store: every key the SDK writes under a store's
//! [`Subspace`] is built here, and nowhere else. All keys are FoundationDB tuples.
//! The layout is part of the on-disk format ([`FORMAT_VERSION`]); golden-byte tests
//! pin it, so any change is deliberate.
//!
//! | key (under the store subspace) | value | what |
//! |---|---|---|
//! | `(0,)` | `StoreHeader` protobuf | [store header](crate::store): format/metadata/user versions, index set, former indexes |
//! | `(1, (pk...), 0)` | `StoredRecord` protobuf (record type + message) | an unsplit record |
//! | `(1, (pk...), n)` for `n >= 1` | chunk `n` | a record split across keys (values > 100 kB); chunk 1 starts with the chunk count (4 bytes LE) |
//! | `(1, (pk...), -1)` | tuple `(versionstamp,)` | the record's version (commit versionstamp + order in the transaction), next to its data; only when the metadata [stores record versions](crate::metadata::RecordMetaDataBuilder::store_record_versions), the default |
//! | `(2, index, values..., (pk...))` | empty | a VALUE (or VERSION) index entry |
//! | `(2, index, group...)` | aggregate | a COUNT/SUM/MIN_EVER/MAX_EVER index's value for one group |
//! | `(3, index, ...)` | maintainer-defined | an index's secondary space (private to its maintainer) |
//! | `(4,)` and `(4, ...)` | little-endian `i64` | record counts (atomic adds) |
//! | `(5, index)` | state byte | state of a *non-readable* index (absent = readable) |
//! | `(6, index, begin)` | `end` | a built range `[begin, end)` of primary-key bytes ([`primary_key_bytes`]) of an index being built online |
//! | `(7, index, values..., (pk...))` | empty | a uniqueness violation found by an online build |
//! | `(8, ...)` | — | reserved (Apple's legacy record-version space; versions live at suffix `-1`) |
//! | `(9, index, ...)` | builder-defined | online index build bookkeeping (scanned counts, builder lease) |
//!
//! Numbering follows Apple's FDB Record Layer. Two deliberate differences:
//!
//! * **The primary key is a nested tuple** in record keys: `(1, (pk...), suffix)`, not
//!   Apple's `(1, pk..., suffix)`. Flattened, record `(1)`'s chunk 1 is `(1, 1, 1)`,
//!   a prefix of record `(1, 1)`'s unsplit key `(1, 1, 1, 0)`, and a prefix scan of
//!   record `(1)` (everything under `(1, 1)`) also returns every record `(1, x, ...)`.
//!   Nested, the primary key is closed by its terminator byte, so one record's range
//!   `(1, (pk...))` holds exactly its own keys; nested tuples sort like their elements,
//!   so scans still come out in primary-key order.
//! * **Index entries also end with the nested primary key**, `(2, index, values...,
//!   (pk...))`: the split between indexed values and primary key is visible in the
//!   bytes, without the index definition (the explain helper, the consistency checker
//!   and tools can parse entries of an index whose definition they do not know), a
//!   uniqueness check is one range read of `(2, index, values...)` whose entries each
//!   end in exactly one pk element, and a prefix scan over leading values still works.
//!   The cost is two bytes per entry.
//!
//! Record versions sit at suffix `-1` inside the record's own range, so one range read
//! loads a record with its version and one range clear deletes both. Every save clears
//! the range first, so a version key that is left belongs to the record's current
//! data; metadata that stores no versions writes none, and reads pass over those left
//! by saves made while it did.

use crate::key_expression::KeyTuple;
use crate::metadata::{IndexType, RecordMetaData};
use foundationdb_tuple::{Element, Subspace};
use std::fmt;

/// Version of the on-disk format described by this module.
///
/// | version | change |
/// |---|---|
/// | 1 | the layout above |
/// | 2 | every write of the header or an index state also bumps FoundationDB's metadata version key, so that the state can be cached ([`crate::store::StoreStateCache`]); opening a version-1 store rewrites its header as version 2 |
pub const FORMAT_VERSION: u32 = 2;

/// First element of each of the store's sub-spaces.
pub mod space {
    pub const HEADER: i64 = 0;
    pub const RECORDS: i64 = 1;
    pub const INDEX: i64 = 2;
    pub const INDEX_SECONDARY: i64 = 3;
    pub const RECORD_COUNT: i64 = 4;
    pub const INDEX_STATE: i64 = 5;
    pub const INDEX_RANGE: i64 = 6;
    pub const INDEX_UNIQUENESS_VIOLATIONS: i64 = 7;
    /// Reserved: never written.
    pub const RESERVED_RECORD_VERSIONS: i64 = 8;
    pub const INDEX_BUILD: i64 = 9;
}

/// Record-key suffixes (the last element of `(1, (pk...), suffix)`).
pub mod suffix {
    /// The record's version (versionstamp).
    pub const VERSION: i64 = -1;
    /// A record stored in one value.
    pub const UNSPLIT: i64 = 0;
    /// First chunk of a split record; chunks are numbered `1..=n`.
    pub const FIRST_CHUNK: i64 = 1;
}

/// The keys of one record store, under its subspace.
///
/// Its key builders pack as `foundationdb_tuple::pack` does, which panics on a tuple
/// that cannot be packed: the store checks callers' tuples first
/// ([`check_packable`]); a tool calling these directly with outside input should too.
///
/// ```
/// use fdb_records::layout::StoreLayout;
/// use foundationdb_tuple::{Element, Subspace};
/// let layout = StoreLayout::new(Subspace::from_bytes(b"S".to_vec()));
/// // record ("alice") unsplit: S, 1, ("alice"), 0
/// assert_eq!(layout.record_key(&[Element::String("alice".into())], 0), b"S\x15\x01\x05\x02alice\x00\x00\x14");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreLayout {
    store: Subspace,
    /// `(1,)`, which scans and loads use for every key they read.
    records: Subspace,
}

fn owned(pk: &[Element<'_>]) -> Element<'static> {
    Element::Tuple(pk.iter().cloned().map(Element::into_owned).collect())
}

fn index_name(name: &str) -> Element<'_> {
    Element::String(name.into())
}

impl StoreLayout {
    /// The layout of a store living under `store`.
    pub fn new(store: Subspace) -> Self {
        let records = store.subspace(&(space::RECORDS,));
        StoreLayout { store, records }
    }
    /// The store's subspace.
    pub fn store(&self) -> &Subspace {
        &self.store
    }
    /// `(0,)`: the store header.
    pub fn header_key(&self) -> Vec<u8> {
        self.store.pack(&(space::HEADER,))
    }
    /// `(1,)`: all records.
    pub fn records(&self) -> &Subspace {
        &self.records
    }
    /// Splits a record key `(1, (pk...), suffix)` into its primary key, the length of
    /// the primary key's bytes (they start right after [`records`](Self::records)'
    /// prefix: see [`primary_key_bytes`]) and its suffix, in one pass.
    pub fn parse_record_key(&self, key: &[u8]) -> Option<(KeyTuple, usize, i64)> {
        let tail = key.strip_prefix(self.records.bytes())?;
        let parsed: RecordKeyTail = unpack_stored(tail).ok()?;
        // Unwrapped in place: the vector's allocation is the key's.
        let primary_key = parsed.primary_key.into_iter().map(|e| e.0).collect();
        Some((primary_key, parsed.primary_key_len, parsed.suffix))
    }
    /// `(1, (pk...))`: every key of one record (data, chunks, version).
    pub fn record(&self, pk: &[Element<'_>]) -> Subspace {
        self.records().subspace(&(owned(pk),))
    }
    /// `(1, (pk...), suffix)`: see [`suffix`].
    pub fn record_key(&self, pk: &[Element<'_>], suffix: i64) -> Vec<u8> {
        // Packed in one pass, into one buffer: loads build two of these per record.
        let prefix = self.store.bytes();
        let mut key = Vec::with_capacity(prefix.len() + 32);
        key.extend_from_slice(prefix);
        foundationdb_tuple::pack_into(&(space::RECORDS, pk, suffix), &mut key);
        key
    }
    /// `(1, (pk...), -1)`: the record's version.
    pub fn record_version_key(&self, pk: &[Element<'_>]) -> Vec<u8> {
        self.record_key(pk, suffix::VERSION)
    }
    /// `(1, (pk...), 0)` and `(1, (pk...), -1)`: the keys a load reads, packed once.
    pub fn record_data_and_version_keys(&self, pk: &[Element<'_>]) -> (Vec<u8>, Vec<u8>) {
        // The two keys share everything up to the suffix, the tuple's last element, and
        // a tuple's elements pack one after another.
        let prefix = self.store.bytes();
        let mut data = Vec::with_capacity(prefix.len() + 32);
        data.extend_from_slice(prefix);
        foundationdb_tuple::pack_into(&(space::RECORDS, pk), &mut data);
        let mut version = Vec::with_capacity(data.len() + 2);
        version.extend_from_slice(&data);
        foundationdb_tuple::pack_into(&suffix::UNSPLIT, &mut data);
        foundationdb_tuple::pack_into(&suffix::VERSION, &mut version);
        (data, version)
    }
    /// `(2, index)`: all entries of one index.
    pub fn index(&self, index: &str) -> Subspace {
        self.store.subspace(&(space::INDEX, index_name(index)))
    }
    /// `(2, index)` packed into a buffer with room for what follows: saves build an
    /// entry key per index, and packing in place spares a subspace and a tuple each.
    fn index_key_buffer(&self, index: &str) -> Vec<u8> {
        let prefix = self.store.bytes();
        let mut key = Vec::with_capacity(prefix.len() + index.len() + 64);
        key.extend_from_slice(prefix);
        foundationdb_tuple::pack_into(&(space::INDEX, index_name(index)), &mut key);
        key
    }
    /// `(2, index, values..., (pk...))`: one VALUE/VERSION index entry.
    pub fn index_entry_key(
        &self,
        index: &str,
        values: &[Element<'_>],
        pk: &[Element<'_>],
    ) -> Vec<u8> {
        // A tuple's elements pack one after another: the values, then the primary key
        // as one nested tuple.
        let mut key = self.index_key_buffer(index);
        foundationdb_tuple::pack_into(&values, &mut key);
        foundationdb_tuple::pack_into(&(pk,), &mut key);
        key
    }
    /// `(2, index, values..., (pk...))` where one element is an incomplete versionstamp:
    /// a `set_versionstamped_key` template (the key, then the placeholder's 4-byte
    /// offset). The caller checks that exactly one incomplete versionstamp is present.
    pub fn index_entry_key_template(
        &self,
        index: &str,
        values: &[Element<'_>],
        pk: &[Element<'_>],
    ) -> Vec<u8> {
        let mut tuple: Vec<Element<'static>> =
            values.iter().cloned().map(Element::into_owned).collect();
        tuple.push(owned(pk));
        self.index(index).pack_with_versionstamp(&tuple)
    }
    /// `(2, index, values...)`: every entry of `index` with these leading values.
    pub fn index_values(&self, index: &str, values: &[Element<'_>]) -> Subspace {
        self.index(index).subspace(
            &values
                .iter()
                .cloned()
                .map(Element::into_owned)
                .collect::<Vec<_>>(),
        )
    }
    /// `(2, index, group...)`: one aggregate index value.
    pub fn index_group_key(&self, index: &str, group: &[Element<'_>]) -> Vec<u8> {
        let mut key = self.index_key_buffer(index);
        foundationdb_tuple::pack_into(&group, &mut key);
        key
    }
    /// `(3, index)`: an index maintainer's private space.
    pub fn index_secondary(&self, index: &str) -> Subspace {
        self.store
            .subspace(&(space::INDEX_SECONDARY, index_name(index)))
    }
    /// `(4,)`: the store-wide record count.
    pub fn record_count_key(&self) -> Vec<u8> {
        self.store.pack(&(space::RECORD_COUNT,))
    }
    /// `(4,)` as a subspace (for grouped counts).
    pub fn record_counts(&self) -> Subspace {
        self.store.subspace(&(space::RECORD_COUNT,))
    }
    /// `(5,)`: all index states.
    pub fn index_states(&self) -> Subspace {
        self.store.subspace(&(space::INDEX_STATE,))
    }
    /// `(5, index)`: one index's state (absent = readable).
    pub fn index_state_key(&self, index: &str) -> Vec<u8> {
        self.index_states().pack(&index_name(index))
    }
    /// `(6, index)`: built ranges of an online index build.
    pub fn index_range(&self, index: &str) -> Subspace {
        self.store
            .subspace(&(space::INDEX_RANGE, index_name(index)))
    }
    /// `(7, index)`: uniqueness violations of one index.
    pub fn index_uniqueness_violations(&self, index: &str) -> Subspace {
        self.store
            .subspace(&(space::INDEX_UNIQUENESS_VIOLATIONS, index_name(index)))
    }
    /// `(7, index, values..., (pk...))`: one recorded uniqueness violation.
    pub fn uniqueness_violation_key(
        &self,
        index: &str,
        values: &[Element<'_>],
        pk: &[Element<'_>],
    ) -> Vec<u8> {
        let mut tuple: Vec<Element<'static>> =
            values.iter().cloned().map(Element::into_owned).collect();
        tuple.push(owned(pk));
        self.index_uniqueness_violations(index).pack(&tuple)
    }
    /// `(6, index, begin)`: one built range `[begin, end)` of an online build; the value
    /// is `end`. Bounds are [`primary_key_bytes`] (`b""` and `b"\xff"` for the ends of
    /// the key space), so they sort like the records.
    pub fn built_range_key(&self, index: &str, begin: &[u8]) -> Vec<u8> {
        self.index_range(index)
            .pack(&Element::Bytes(begin.to_vec().into()))
    }
    /// `(9, index)`: online build bookkeeping of one index.
    pub fn index_build(&self, index: &str) -> Subspace {
        self.store
            .subspace(&(space::INDEX_BUILD, index_name(index)))
    }
    /// Every subspace holding data of `index` (what removing the index clears).
    pub fn index_data_subspaces(&self, index: &str) -> Vec<Subspace> {
        vec![
            self.index(index),
            self.index_secondary(index),
            self.index_range(index),
            self.index_uniqueness_violations(index),
            self.index_build(index),
        ]
    }

    /// Says where a raw key belongs: see [`KeyInfo`]. With `metadata`, index entries
    /// are decoded according to the index's type (aggregate vs entry).
    ///
    /// ```
    /// use fdb_records::layout::{KeyInfo, RecordPart, StoreLayout};
    /// use foundationdb_tuple::{Element, Subspace};
    /// let layout = StoreLayout::new(Subspace::from(("app", 7)));
    /// let key = layout.record_key(&[Element::Int(42)], 0);
    /// let info = layout.explain_key(&key, None);
    /// assert_eq!(info, KeyInfo::Record { primary_key: vec![Element::Int(42)], part: RecordPart::Unsplit });
    /// assert_eq!(info.to_string(), "record (42) [unsplit data]");
    /// ```
    pub fn explain_key(&self, key: &[u8], metadata: Option<&RecordMetaData>) -> KeyInfo {
        if !self.store.is_start_of(key) {
            return KeyInfo::NotInStore;
        }
        let rest = &key[self.store.bytes().len()..];
        let Ok(elements) = unpack_stored::<Vec<Element<'_>>>(rest) else {
            return KeyInfo::Unknown { raw: rest.to_vec() };
        };
        let elements: Vec<Element<'static>> =
            elements.into_iter().map(Element::into_owned).collect();
        let unknown = || KeyInfo::Unknown { raw: rest.to_vec() };
        let string = |e: Option<&Element<'_>>| e.and_then(Element::as_str).map(str::to_string);
        let Some(space) = elements.first().and_then(Element::as_i64) else {
            return unknown();
        };
        let tail = |n: usize| {
            elements
                .get(n..)
                .map(<[Element<'static>]>::to_vec)
                .unwrap_or_default()
        };
        match space {
            space::HEADER if elements.len() == 1 => KeyInfo::Header,
            space::RECORDS => match (
                elements.get(1),
                elements.get(2).and_then(Element::as_i64),
                elements.len(),
            ) {
                (Some(Element::Tuple(pk)), Some(s), 3) => {
                    let part = match s {
                        suffix::VERSION => RecordPart::Version,
                        suffix::UNSPLIT => RecordPart::Unsplit,
                        n if n >= suffix::FIRST_CHUNK => RecordPart::Chunk(n as u64),
                        _ => return unknown(),
                    };
                    KeyInfo::Record {
                        primary_key: pk.clone(),
                        part,
                    }
                }
                _ => unknown(),
            },
            space::INDEX => {
                let Some(index) = string(elements.get(1)) else {
                    return unknown();
                };
                let index_type = metadata.and_then(|m| m.index(&index)).map(|i| i.index_type);
                let mut rest = tail(2);
                let aggregate = match index_type {
                    Some(t) => t.is_aggregate(),
                    None => !matches!(rest.last(), Some(Element::Tuple(_))),
                };
                if aggregate {
                    return KeyInfo::IndexAggregate { index, group: rest };
                }
                match rest.pop() {
                    Some(Element::Tuple(pk)) => KeyInfo::IndexEntry {
                        known: index_type.is_some(),
                        is_version_index: index_type == Some(IndexType::Version),
                        index,
                        values: rest,
                        primary_key: pk,
                    },
                    _ => unknown(),
                }
            }
            space::INDEX_SECONDARY => match string(elements.get(1)) {
                Some(index) => KeyInfo::IndexSecondary {
                    index,
                    rest: tail(2),
                },
                None => unknown(),
            },
            space::RECORD_COUNT => KeyInfo::RecordCount { group: tail(1) },
            space::INDEX_STATE => match (string(elements.get(1)), elements.len()) {
                (Some(index), 2) => KeyInfo::IndexState { index },
                _ => unknown(),
            },
            space::INDEX_RANGE => match string(elements.get(1)) {
                Some(index) => KeyInfo::IndexBuiltRange {
                    index,
                    rest: tail(2),
                },
                None => unknown(),
            },
            space::INDEX_UNIQUENESS_VIOLATIONS => match string(elements.get(1)) {
                Some(index) => {
                    let mut rest = tail(2);
                    match rest.pop() {
                        Some(Element::Tuple(pk)) => KeyInfo::UniquenessViolation {
                            index,
                            values: rest,
                            primary_key: pk,
                        },
                        _ => unknown(),
                    }
                }
                None => unknown(),
            },
            space::INDEX_BUILD => match string(elements.get(1)) {
                Some(index) => KeyInfo::IndexBuild {
                    index,
                    rest: tail(2),
                },
                None => unknown(),
            },
            _ => unknown(),
        }
    }
}

/// Deepest tuple nesting a key may have. The SDK nests two levels (the primary key
/// in a record key, `concatenate` in an index entry); a few more leave room for
/// applications' own nested tuples.
pub const MAX_TUPLE_NESTING: usize = 64;

/// Why `elements` cannot be packed into a key, if they cannot: `foundationdb_tuple`
/// panics on an integer of more than 255 bytes, and unpacking recurses once per
/// nesting level (see [`MAX_TUPLE_NESTING`]).
///
/// ```
/// use fdb_records::layout::check_packable;
/// use foundationdb_tuple::Element;
/// assert!(check_packable(&[Element::Int(1)]).is_ok());
/// let huge = Element::BigInt(num_bigint::BigInt::from(1) << 3000);
/// assert!(check_packable(&[huge]).is_err());
/// ```
pub fn check_packable(elements: &[Element<'_>]) -> Result<(), String> {
    // Iterative, so that the check itself cannot overflow the stack; allocates only for
    // nested tuples.
    let mut pending: Vec<(&[Element<'_>], usize)> = Vec::new();
    let mut next = Some((elements, 1));
    while let Some((elements, level)) = next.take().or_else(|| pending.pop()) {
        for element in elements {
            match element {
                Element::BigInt(v) if v.magnitude().bits() > 255 * 8 => {
                    return Err(format!(
                        "an integer of {} bits; keys hold at most 255 bytes",
                        v.magnitude().bits()
                    ));
                }
                // Keys nest a caller's tuple up to two levels deeper (a primary key
                // inside a record key or an index entry), and must stay readable.
                Element::Tuple(_) if level > MAX_TUPLE_NESTING - 2 => {
                    return Err(format!(
                        "tuples nested deeper than {} levels",
                        MAX_TUPLE_NESTING - 2
                    ));
                }
                Element::Tuple(nested) => pending.push((nested, level + 1)),
                _ => {}
            }
        }
    }
    Ok(())
}

/// `foundationdb_tuple::unpack` for bytes read from the database: a key nested deeper
/// than [`MAX_TUPLE_NESTING`] is an error, not a stack overflow.
pub fn unpack_stored<'de, T: foundationdb_tuple::TupleUnpack<'de>>(
    bytes: &'de [u8],
) -> foundationdb_tuple::PackResult<T> {
    if !nesting_within_limit(bytes) {
        return Err(foundationdb_tuple::PackError::Message(
            format!("tuple nested deeper than {MAX_TUPLE_NESTING} levels").into(),
        ));
    }
    foundationdb_tuple::unpack(bytes)
}

/// [`Subspace::unpack`] for keys read from the database (see [`unpack_stored`]).
pub fn unpack_stored_in<'de, T: foundationdb_tuple::TupleUnpack<'de>>(
    subspace: &Subspace,
    key: &'de [u8],
) -> foundationdb_tuple::PackResult<T> {
    match key.strip_prefix(subspace.bytes()) {
        Some(rest) => unpack_stored(rest),
        None => Err(foundationdb_tuple::PackError::BadPrefix),
    }
}

/// Whether the tuple bytes `bytes` nest no deeper than [`MAX_TUPLE_NESTING`].
///
/// `foundationdb_tuple::unpack` recurses once per level with no bound, so a stored key
/// of nested tuples (up to 5,000 levels fit in FoundationDB's 10,000 bytes) would
/// overflow the stack of whoever reads it. This walks the same grammar without
/// recursion: it follows nested tuples' open and close bytes itself and lets the crate
/// skip every other element. It stops at the first element the crate cannot parse: the
/// unpack that follows fails there, no deeper than this walk went.
fn nesting_within_limit(bytes: &[u8]) -> bool {
    // Each level takes a 0x05 byte: keys with few of them (every key the SDK writes)
    // need no walk, and short keys not even the count.
    if bytes.len() <= MAX_TUPLE_NESTING
        || bytes.iter().filter(|&&b| b == 0x05).count() <= MAX_TUPLE_NESTING
    {
        return true;
    }
    struct Walk(bool);
    impl<'de> foundationdb_tuple::TupleUnpack<'de> for Walk {
        fn unpack(
            mut input: &'de [u8],
            depth: foundationdb_tuple::TupleDepth,
        ) -> foundationdb_tuple::PackResult<(&'de [u8], Self)> {
            const NESTED: u8 = 0x05;
            const NIL: u8 = 0x00;
            const ESCAPE: u8 = 0xff;
            // One level below the root: the crate unpacks exactly one element there.
            let element_depth = depth.increment();
            let mut level = 0usize;
            while let Some(&code) = input.first() {
                match code {
                    NESTED => {
                        level += 1;
                        if level > MAX_TUPLE_NESTING {
                            return Ok((&[], Walk(false)));
                        }
                        input = &input[1..];
                    }
                    // Inside a nested tuple a nil is escaped; a lone 0x00 closes it.
                    NIL if level > 0 && input.get(1) != Some(&ESCAPE) => {
                        level -= 1;
                        input = &input[1..];
                    }
                    NIL => input = &input[if level > 0 { 2 } else { 1 }..],
                    _ => match <Element<'de> as foundationdb_tuple::TupleUnpack>::unpack(
                        input,
                        element_depth,
                    ) {
                        Ok((rest, _)) => input = rest,
                        Err(_) => break,
                    },
                }
            }
            Ok((&[], Walk(true)))
        }
    }
    // `unpack` hands the walk the root depth, which only the crate can make.
    foundationdb_tuple::unpack::<Walk>(bytes).is_ok_and(|Walk(ok)| ok)
}

/// The part of a record key after the records prefix: `((pk...), suffix)`.
struct RecordKeyTail {
    primary_key: Vec<OwnedElement>,
    /// Bytes of the nested primary key.
    primary_key_len: usize,
    suffix: i64,
}

/// An element owned as soon as it is unpacked: a record's primary key outlives the
/// key bytes it was read from, and owning each element where it is made saves a
/// second pass over the key (scans parse one key per record).
#[repr(transparent)]
struct OwnedElement(Element<'static>);

impl<'de> foundationdb_tuple::TupleUnpack<'de> for OwnedElement {
    fn unpack(
        input: &'de [u8],
        depth: foundationdb_tuple::TupleDepth,
    ) -> foundationdb_tuple::PackResult<(&'de [u8], Self)> {
        let (rest, element) = Element::unpack(input, depth)?;
        Ok((rest, OwnedElement(element.into_owned())))
    }
}

impl<'de> foundationdb_tuple::TupleUnpack<'de> for RecordKeyTail {
    fn unpack(
        input: &'de [u8],
        depth: foundationdb_tuple::TupleDepth,
    ) -> foundationdb_tuple::PackResult<(&'de [u8], Self)> {
        // As a two-element tuple unpacks its elements: one level deeper.
        let (rest, primary_key) = Vec::<OwnedElement>::unpack(input, depth.increment())?;
        let primary_key_len = input.len() - rest.len();
        let (rest, suffix) = i64::unpack(rest, depth.increment())?;
        Ok((
            rest,
            RecordKeyTail {
                primary_key,
                primary_key_len,
                suffix,
            },
        ))
    }
}

/// A primary key as it appears in record keys, after the records prefix: the bytes of
/// the nested tuple `((pk...),)`. These bytes sort like the records, and the records of
/// primary keys in `[a, b)` (as bytes) are the keys in
/// `[records prefix + a, records prefix + b)`.
pub fn primary_key_bytes(pk: &[Element<'_>]) -> Vec<u8> {
    foundationdb_tuple::pack(&(pk,))
}

/// The smallest primary-key bound above `pk` and every key of its record.
pub fn primary_key_bytes_after(pk: &[Element<'_>]) -> Vec<u8> {
    let mut bytes = primary_key_bytes(pk);
    bytes.push(0xff);
    bytes
}

/// Which part of a record a record key holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordPart {
    /// The whole record, in one value.
    Unsplit,
    /// Chunk `n` (1-based) of a split record.
    Chunk(u64),
    /// The record's version.
    Version,
}

/// What a raw key is, as told by [`StoreLayout::explain_key`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyInfo {
    /// Not under the store's subspace.
    NotInStore,
    /// The store header.
    Header,
    /// Part of a record.
    Record {
        primary_key: KeyTuple,
        part: RecordPart,
    },
    /// An entry of a VALUE/VERSION index (`known`: the metadata defines the index).
    IndexEntry {
        index: String,
        values: KeyTuple,
        primary_key: KeyTuple,
        known: bool,
        is_version_index: bool,
    },
    /// The aggregate of one group of a COUNT/SUM/MIN_EVER/MAX_EVER index.
    IndexAggregate { index: String, group: KeyTuple },
    /// A key in an index maintainer's private space.
    IndexSecondary { index: String, rest: KeyTuple },
    /// A record count.
    RecordCount { group: KeyTuple },
    /// The state of a non-readable index.
    IndexState { index: String },
    /// Online-build progress of an index.
    IndexBuiltRange { index: String, rest: KeyTuple },
    /// A recorded uniqueness violation.
    UniquenessViolation {
        index: String,
        values: KeyTuple,
        primary_key: KeyTuple,
    },
    /// Online-build bookkeeping.
    IndexBuild { index: String, rest: KeyTuple },
    /// Under the store's subspace but matching no layout entry (bytes after the prefix).
    Unknown { raw: Vec<u8> },
}

/// Renders a tuple as `(a, "b", 3)`.
pub struct DisplayTuple<'a>(pub &'a [Element<'a>]);

impl fmt::Display for DisplayTuple<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(")?;
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            match e {
                Element::Nil => f.write_str("null")?,
                Element::String(s) => write!(f, "{s:?}")?,
                Element::Bytes(b) => write!(f, "b\"{}\"", crate::kv::printable(b))?,
                Element::Int(i) => write!(f, "{i}")?,
                Element::BigInt(i) => write!(f, "{i}")?,
                Element::Float(x) => write!(f, "{x}")?,
                Element::Double(x) => write!(f, "{x}")?,
                Element::Bool(b) => write!(f, "{b}")?,
                Element::Tuple(t) => write!(f, "{}", DisplayTuple(t))?,
                Element::Uuid(u) => write!(f, "{u}")?,
                Element::Versionstamp(v) => {
                    write!(f, "versionstamp({})", crate::kv::printable(v.as_bytes()))?
                }
            }
        }
        f.write_str(")")
    }
}

impl fmt::Display for KeyInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyInfo::NotInStore => f.write_str("not in this record store"),
            KeyInfo::Header => f.write_str("store header"),
            KeyInfo::Record { primary_key, part } => {
                write!(f, "record {} ", DisplayTuple(primary_key))?;
                match part {
                    RecordPart::Unsplit => f.write_str("[unsplit data]"),
                    RecordPart::Chunk(n) => write!(f, "[chunk {n}]"),
                    RecordPart::Version => f.write_str("[version]"),
                }
            }
            KeyInfo::IndexEntry {
                index,
                values,
                primary_key,
                known,
                ..
            } => {
                write!(
                    f,
                    "index `{index}` entry {} -> record {}",
                    DisplayTuple(values),
                    DisplayTuple(primary_key)
                )?;
                if !known {
                    f.write_str(" (index not in metadata)")?;
                }
                Ok(())
            }
            KeyInfo::IndexAggregate { index, group } => write!(
                f,
                "index `{index}` aggregate of group {}",
                DisplayTuple(group)
            ),
            KeyInfo::IndexSecondary { index, rest } => {
                write!(f, "index `{index}` secondary space {}", DisplayTuple(rest))
            }
            KeyInfo::RecordCount { group } => write!(f, "record count {}", DisplayTuple(group)),
            KeyInfo::IndexState { index } => write!(f, "index `{index}` state"),
            KeyInfo::IndexBuiltRange { index, rest } => {
                write!(f, "index `{index}` built range {}", DisplayTuple(rest))
            }
            KeyInfo::UniquenessViolation {
                index,
                values,
                primary_key,
            } => write!(
                f,
                "index `{index}` uniqueness violation {} by record {}",
                DisplayTuple(values),
                DisplayTuple(primary_key)
            ),
            KeyInfo::IndexBuild { index, rest } => write!(
                f,
                "index `{index}` build bookkeeping {}",
                DisplayTuple(rest)
            ),
            KeyInfo::Unknown { raw } => {
                write!(f, "unknown key in store: {}", crate::kv::printable(raw))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn element() -> impl Strategy<Value = Element<'static>> {
        let leaf = prop_oneof![
            Just(Element::Nil),
            any::<i64>().prop_map(Element::Int),
            prop::collection::vec(any::<u8>(), 0..6).prop_map(|b| Element::Bytes(b.into())),
            "[a-z\\x00]{0,5}".prop_map(|s| Element::String(s.into())),
            any::<bool>().prop_map(Element::Bool),
        ];
        leaf.prop_recursive(2, 8, 3, |inner| {
            prop::collection::vec(inner, 0..3).prop_map(Element::Tuple)
        })
    }

    proptest! {
        /// Packed in place, entry and group keys are the keys their subspaces pack.
        #[test]
        fn index_keys_pack_as_their_subspace_does(
            values in prop::collection::vec(element(), 0..4),
            pk in prop::collection::vec(element(), 1..3),
            name in "[a-z_\\x00]{1,8}",
        ) {
            let layout = StoreLayout::new(Subspace::from_bytes(b"S\x00".to_vec()));
            let mut tuple = values.clone();
            tuple.push(Element::Tuple(pk.clone()));
            prop_assert_eq!(
                layout.index_entry_key(&name, &values, &pk),
                layout.index(&name).pack(&tuple)
            );
            prop_assert_eq!(
                layout.index_group_key(&name, &values),
                layout.index(&name).pack(&values)
            );
        }
    }
}
