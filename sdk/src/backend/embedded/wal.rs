//! The write-ahead log that makes commit batches durable with one small sequential
//! append and one `fdatasync`.
//!
//! Without it, each batch is a durable redb commit, whose cost grows with the number of
//! B-tree pages the batch dirties: scattered keys made 16 concurrent clients top out
//! near 10,000 commits/s here. With it, a batch's resolved writes are committed to redb
//! without a sync, and its record is appended to the log and synced (about 0.1–0.2 ms
//! for a few KiB); redb is made durable at checkpoints, after which the log starts
//! over (see [`Wal::rewind`]). The file is grown ahead of the records in zero-filled
//! steps (see [`PREALLOCATE`]), so that a sync flushes data only.
//!
//! Record format (all integers little-endian):
//!
//! | bytes | field |
//! |---|---|
//! | 4 | payload length `n` |
//! | 4 | CRC-32 of the payload |
//! | `n` | payload: `version: u64`, then ops |
//!
//! An op is a tag byte (`1` set, `2` clear, `3` clear range) followed by its byte
//! strings, each as `u32` length + bytes. Replay stops at the first record that is
//! short or fails its checksum: that is a batch whose sync never completed, so it was
//! never acknowledged.

use crate::kv::FdbError;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::storage::storage_error;

/// How far the file is grown, with zeros, when a record would pass its end. A record
/// written inside the file's size needs no metadata update, so its `fdatasync` writes
/// the data blocks alone, where an append that grows the file must also write the
/// inode (about 40 µs more per sync here, ext4); the size is then committed once per
/// step. Replay stops at the zeros: a zero length with a zero checksum is an empty
/// payload, which is no record.
const PREALLOCATE: u64 = 1 << 20;

/// A write resolved to its final form (atomic mutations and versionstamps applied).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum WalOp {
    Set(Vec<u8>, Vec<u8>),
    Clear(Vec<u8>),
    ClearRange(Vec<u8>, Vec<u8>),
}

/// One logged batch.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct WalRecord {
    pub(crate) version: u64,
    pub(crate) ops: Vec<WalOp>,
}

pub(crate) struct Wal {
    file: File,
    /// Bytes appended since the last checkpoint; also where the next record goes.
    len: u64,
    /// The file's size: records up to here overwrite blocks that already exist.
    allocated: u64,
}

/// The log that belongs to the database file at `db_path`.
pub(crate) fn wal_path(db_path: &Path) -> PathBuf {
    let mut name = db_path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".wal");
    db_path.with_file_name(name)
}

impl Wal {
    /// Opens (or creates) the log and returns it with the complete records it holds.
    pub(crate) fn open(path: &Path) -> Result<(Wal, Vec<WalRecord>), FdbError> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(storage_error)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(storage_error)?;
        let (records, valid_len) = decode_records(&bytes);
        // Drop a torn tail so that new records follow the last complete one.
        file.set_len(valid_len as u64).map_err(storage_error)?;
        file.seek(SeekFrom::End(0)).map_err(storage_error)?;
        let wal = Wal {
            file,
            len: valid_len as u64,
            allocated: valid_len as u64,
        };
        Ok((wal, records))
    }

    /// Appends one batch and waits until it is on disk.
    #[cfg(test)]
    pub(crate) fn append(&mut self, version: u64, ops: &[WalOp]) -> Result<(), FdbError> {
        self.write(&encode_record(version, ops))?;
        self.sync()
    }

    /// Writes an encoded record (from [`RecordEncoder`]) after the previous one; durable
    /// only once a sync of the file (see [`Wal::sync_handle`]) that started after it
    /// returns.
    pub(crate) fn write(&mut self, record: &[u8]) -> Result<(), FdbError> {
        let end = self.len + record.len() as u64;
        if end > self.allocated {
            // Zeros past the end of the file, in one step; the next sync commits them
            // and the new size together with the record.
            let grown = end.max(self.allocated + PREALLOCATE);
            let zeros = vec![0u8; (grown - self.allocated) as usize];
            self.file
                .write_all_at(&zeros, self.allocated)
                .map_err(storage_error)?;
            self.allocated = grown;
        }
        self.file.write_all(record).map_err(storage_error)?;
        self.len = end;
        Ok(())
    }

    /// Waits until every record written so far is on disk.
    #[cfg(test)]
    pub(crate) fn sync(&mut self) -> Result<(), FdbError> {
        self.file.sync_data().map_err(storage_error)
    }

    /// Another handle on the log's file, whose `sync_data` makes everything written
    /// through this one durable, without borrowing the log.
    pub(crate) fn sync_handle(&self) -> Result<File, FdbError> {
        self.file.try_clone().map_err(storage_error)
    }

    /// Bytes logged since the last checkpoint.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Starts the log over from its beginning once everything in it is durable
    /// elsewhere, keeping the file's blocks: overwriting allocated blocks lets each
    /// `fdatasync` flush data only, where an append must also commit the file's new
    /// size (as SQLite's WAL, which is reused the same way). Records of earlier rounds
    /// may remain past the new ones; replay cannot mistake them for new ones: the first
    /// new record that is torn or overwrites the middle of an old one fails its
    /// checksum, and a whole old record that follows holds a version that redb already
    /// made durable, which replay skips.
    pub(crate) fn rewind(&mut self) -> Result<(), FdbError> {
        self.file.seek(SeekFrom::Start(0)).map_err(storage_error)?;
        self.len = 0;
        Ok(())
    }

    /// Empties the log once everything in it is durable elsewhere.
    pub(crate) fn truncate(&mut self) -> Result<(), FdbError> {
        self.file.set_len(0).map_err(storage_error)?;
        self.file.seek(SeekFrom::Start(0)).map_err(storage_error)?;
        self.file.sync_all().map_err(storage_error)?;
        self.len = 0;
        self.allocated = 0;
        Ok(())
    }
}

/// Builds one batch's record as its writes are applied, straight into the bytes that
/// go to the log (no intermediate copy of each key and value).
pub(crate) struct RecordEncoder {
    /// Length and checksum (filled in by [`RecordEncoder::finish`]), then the payload.
    buf: Vec<u8>,
}

impl RecordEncoder {
    pub(crate) fn new(version: u64) -> Self {
        let mut buf = Vec::with_capacity(4096);
        buf.extend_from_slice(&[0u8; 8]);
        buf.extend_from_slice(&version.to_le_bytes());
        RecordEncoder { buf }
    }

    fn put_bytes(&mut self, bytes: &[u8]) {
        self.buf
            .extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(bytes);
    }

    pub(crate) fn set(&mut self, key: &[u8], value: &[u8]) {
        self.buf.push(1);
        self.put_bytes(key);
        self.put_bytes(value);
    }

    pub(crate) fn clear(&mut self, key: &[u8]) {
        self.buf.push(2);
        self.put_bytes(key);
    }

    pub(crate) fn clear_range(&mut self, begin: &[u8], end: &[u8]) {
        self.buf.push(3);
        self.put_bytes(begin);
        self.put_bytes(end);
    }

    /// The complete record.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        let payload_len = (self.buf.len() - 8) as u32;
        let crc = crc32fast::hash(&self.buf[8..]);
        self.buf[..4].copy_from_slice(&payload_len.to_le_bytes());
        self.buf[4..8].copy_from_slice(&crc.to_le_bytes());
        self.buf
    }
}

#[cfg(test)]
fn encode_record(version: u64, ops: &[WalOp]) -> Vec<u8> {
    let mut record = RecordEncoder::new(version);
    for op in ops {
        match op {
            WalOp::Set(k, v) => record.set(k, v),
            WalOp::Clear(k) => record.clear(k),
            WalOp::ClearRange(b, e) => record.clear_range(b, e),
        }
    }
    record.finish()
}

/// A cursor over a payload that fails (returns `None`) instead of panicking.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn bytes(&mut self) -> Option<Vec<u8>> {
        let n = self.u32()? as usize;
        Some(self.take(n)?.to_vec())
    }
}

fn decode_payload(payload: &[u8]) -> Option<WalRecord> {
    let mut r = Reader(payload);
    let version = u64::from_le_bytes(r.take(8)?.try_into().ok()?);
    let mut ops = Vec::new();
    while let Some(tag) = r.take(1) {
        ops.push(match tag[0] {
            1 => WalOp::Set(r.bytes()?, r.bytes()?),
            2 => WalOp::Clear(r.bytes()?),
            3 => WalOp::ClearRange(r.bytes()?, r.bytes()?),
            _ => return None,
        });
    }
    Some(WalRecord { version, ops })
}

/// Complete records from the start of `bytes`, and how many bytes they span.
fn decode_records(bytes: &[u8]) -> (Vec<WalRecord>, usize) {
    let mut records = Vec::new();
    let mut r = Reader(bytes);
    let mut valid = 0;
    while let Some(len) = r.u32() {
        let Some(crc) = r.u32() else { break };
        let Some(payload) = r.take(len as usize) else {
            break;
        };
        if crc32fast::hash(payload) != crc {
            break;
        }
        let Some(record) = decode_payload(payload) else {
            break;
        };
        // Versions only grow within a round: an older one is an earlier round's,
        // after a rewind. Stopping there matters when a record in between was never
        // written (records written between two syncs reach the disk in any order, and
        // a crash can keep a later one without an earlier one): its space then holds
        // an old round's record, and replaying what follows would apply a batch
        // without the one before it.
        if records
            .last()
            .is_some_and(|last: &WalRecord| record.version <= last.version)
        {
            break;
        }
        records.push(record);
        valid = bytes.len() - r.0.len();
    }
    (records, valid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<WalOp> {
        vec![
            WalOp::Set(b"k".to_vec(), b"v".to_vec()),
            WalOp::Clear(b"c".to_vec()),
            WalOp::ClearRange(b"a".to_vec(), b"b".to_vec()),
            WalOp::Set(Vec::new(), Vec::new()),
        ]
    }

    #[test]
    fn a_record_lost_between_two_syncs_stops_replay_before_the_next() {
        // Round one's records 1, 2, 3, then a rewind and round two's 4, 5, 6 written
        // between two syncs; a crash kept 4 and 6 on disk but not 5, whose space still
        // holds old record 2. Replay must not apply 6 without 5.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.wal");
        let op = vec![WalOp::Set(b"k".to_vec(), vec![7; 10])];
        let size = encode_record(1, &op).len() as u64;
        {
            let (mut wal, _) = Wal::open(&path).unwrap();
            for v in 1..=3 {
                wal.append(v, &op).unwrap();
            }
            wal.rewind().unwrap();
            wal.append(4, &op).unwrap();
            // Record 6 where it would follow 5, which never reached the disk.
            wal.file
                .write_all_at(&encode_record(6, &op), 2 * size)
                .unwrap();
        }
        let (_, records) = Wal::open(&path).unwrap();
        assert_eq!(
            records.iter().map(|r| r.version).collect::<Vec<_>>(),
            vec![4]
        );
    }

    #[test]
    fn after_a_rewind_old_records_are_never_read_as_new() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.wal");
        let op = |n: usize| vec![WalOp::Set(b"k".to_vec(), vec![7; n])];
        {
            let (mut wal, _) = Wal::open(&path).unwrap();
            for v in 1..=3 {
                wal.append(v, &op(10)).unwrap();
            }
            // A checkpoint made 1..=3 durable in redb: the next round overwrites them.
            wal.rewind().unwrap();
            assert_eq!(wal.len(), 0);
            // Same shape: the old records 2 and 3 follow, whole and valid.
            wal.append(4, &op(10)).unwrap();
        }
        let (_, records) = Wal::open(&path).unwrap();
        let versions: Vec<u64> = records.iter().map(|r| r.version).collect();
        assert_eq!(
            versions,
            vec![4],
            "replay stops at the old records, older than the one before"
        );
        {
            let (mut wal, _) = Wal::open(&path).unwrap();
            wal.truncate().unwrap();
            for v in 1..=3 {
                wal.append(v, &op(40)).unwrap();
            }
            wal.rewind().unwrap();
            // A shorter record lands in the middle of old record 1: what follows it
            // fails its checksum, so replay stops there.
            wal.append(4, &op(5)).unwrap();
        }
        let (_, records) = Wal::open(&path).unwrap();
        assert_eq!(
            records.iter().map(|r| r.version).collect::<Vec<_>>(),
            vec![4]
        );
    }

    #[test]
    fn records_round_trip_and_torn_tails_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.wal");
        {
            let (mut wal, records) = Wal::open(&path).unwrap();
            assert!(records.is_empty());
            wal.append(7, &sample()).unwrap();
            wal.append(8, &[]).unwrap();
        }
        // A torn third record: its length says more bytes than exist.
        let full_len = (encode_record(7, &sample()).len() + encode_record(8, &[]).len()) as u64;
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all_at(&[200, 0, 0, 0, 1, 2, 3, 4, 5], full_len)
            .unwrap();
        drop(f);
        let (mut wal, records) = Wal::open(&path).unwrap();
        assert_eq!(
            records,
            vec![
                WalRecord {
                    version: 7,
                    ops: sample()
                },
                WalRecord {
                    version: 8,
                    ops: vec![]
                }
            ]
        );
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            full_len,
            "torn tail cut off"
        );
        wal.append(9, &[]).unwrap();
        drop(wal);
        let (_, records) = Wal::open(&path).unwrap();
        assert_eq!(
            records.iter().map(|r| r.version).collect::<Vec<_>>(),
            vec![7, 8, 9]
        );
    }

    #[test]
    fn records_go_into_preallocated_zeros_and_replay_stops_there() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.wal");
        let (mut wal, _) = Wal::open(&path).unwrap();
        wal.append(1, &sample()).unwrap();
        let size = std::fs::metadata(&path).unwrap().len();
        assert_eq!(size, PREALLOCATE, "grown in one step");
        let big = vec![WalOp::Set(b"k".to_vec(), vec![9; 2 * PREALLOCATE as usize])];
        for v in 2..=20 {
            wal.append(v, &sample()).unwrap();
        }
        assert_eq!(std::fs::metadata(&path).unwrap().len(), size);
        // A record larger than a step grows the file past it.
        wal.append(21, &big).unwrap();
        assert!(std::fs::metadata(&path).unwrap().len() > 2 * PREALLOCATE);
        let len = wal.len();
        drop(wal);
        let (wal, records) = Wal::open(&path).unwrap();
        assert_eq!(
            records.iter().map(|r| r.version).collect::<Vec<_>>(),
            (1..=21).collect::<Vec<_>>()
        );
        assert_eq!(wal.len(), len);
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            len,
            "zeros cut off"
        );
    }

    #[test]
    fn corrupted_records_stop_replay() {
        let mut bytes = encode_record(1, &sample());
        let second = encode_record(2, &sample());
        bytes.extend_from_slice(&second);
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        let (records, valid) = decode_records(&bytes);
        assert_eq!(records.len(), 1);
        assert_eq!(valid, bytes.len() - second.len());
        // Garbage never panics.
        for n in 0..64u8 {
            let junk: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37) ^ n).collect();
            let _ = decode_records(&junk);
        }
    }
}
