//! Record versions: the commit's versionstamp plus the record's order in its transaction.

use foundationdb_tuple::Versionstamp;
use std::fmt;

/// A record's version: the 10-byte versionstamp of the commit that saved it, then the
/// 2-byte order of the save within that transaction. Versions compare in commit order,
/// and two saves in one transaction compare in the order they were made.
///
/// Before commit a version is *incomplete* (the versionstamp is not known yet); after
/// commit, complete it with the transaction's versionstamp:
///
/// ```
/// use fdb_records::store::RecordVersion;
/// let pending = RecordVersion::incomplete(3);
/// assert!(!pending.is_complete());
/// let stamp = [0, 0, 0, 0, 0, 0, 0, 9, 0, 1]; // what commit reported
/// let version = pending.complete_with(stamp);
/// assert_eq!(version, RecordVersion::complete(stamp, 3));
/// assert_eq!(version.commit_version(), Some(9));
/// assert!(RecordVersion::complete(stamp, 2) < version);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordVersion {
    bytes: [u8; 12],
}

const INCOMPLETE: [u8; 10] = [0xff; 10];

impl RecordVersion {
    /// A committed version.
    pub fn complete(global: [u8; 10], order: u16) -> Self {
        let mut bytes = [0u8; 12];
        bytes[..10].copy_from_slice(&global);
        bytes[10..].copy_from_slice(&order.to_be_bytes());
        RecordVersion { bytes }
    }
    /// A version of a save not committed yet.
    pub fn incomplete(order: u16) -> Self {
        Self::complete(INCOMPLETE, order)
    }
    /// Whether the commit's versionstamp is known.
    pub fn is_complete(&self) -> bool {
        self.bytes[..10] != INCOMPLETE
    }
    /// The order of the save within its transaction.
    pub fn order(&self) -> u16 {
        u16::from_be_bytes([self.bytes[10], self.bytes[11]])
    }
    /// The commit's 10-byte versionstamp, if known.
    pub fn global(&self) -> Option<[u8; 10]> {
        self.is_complete()
            .then(|| self.bytes[..10].try_into().expect("10 bytes"))
    }
    /// The commit version (first 8 bytes of the versionstamp, big-endian), if known.
    pub fn commit_version(&self) -> Option<i64> {
        self.is_complete()
            .then(|| i64::from_be_bytes(self.bytes[..8].try_into().expect("8 bytes")))
    }
    /// This version with its transaction's versionstamp filled in.
    pub fn complete_with(&self, global: [u8; 10]) -> Self {
        Self::complete(global, self.order())
    }
    /// The 12 bytes: versionstamp then order.
    pub fn to_bytes(&self) -> [u8; 12] {
        self.bytes
    }
    /// As a tuple-layer versionstamp (the form stored in keys and values).
    pub fn to_versionstamp(&self) -> Versionstamp {
        Versionstamp::from(self.bytes)
    }
    /// From a tuple-layer versionstamp.
    pub fn from_versionstamp(stamp: &Versionstamp) -> Self {
        RecordVersion {
            bytes: *stamp.as_bytes(),
        }
    }
}

impl From<&Versionstamp> for RecordVersion {
    fn from(stamp: &Versionstamp) -> Self {
        Self::from_versionstamp(stamp)
    }
}

impl fmt::Debug for RecordVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.commit_version() {
            Some(v) => write!(
                f,
                "RecordVersion({v}.{}:{})",
                u16::from_be_bytes([self.bytes[8], self.bytes[9]]),
                self.order()
            ),
            None => write!(f, "RecordVersion(incomplete:{})", self.order()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_round_trip_and_order() {
        let a = RecordVersion::complete([0, 0, 0, 0, 0, 0, 0, 5, 0, 0], 1);
        let b = RecordVersion::complete([0, 0, 0, 0, 0, 0, 0, 5, 0, 0], 2);
        let c = RecordVersion::complete([0, 0, 0, 0, 0, 0, 0, 6, 0, 0], 0);
        assert!(a < b && b < c);
        assert_eq!(RecordVersion::from_versionstamp(&a.to_versionstamp()), a);
        assert_eq!(a.to_versionstamp().user_version(), 1);
        assert!(a.to_versionstamp().is_complete());
        let i = RecordVersion::incomplete(7);
        assert!(!i.to_versionstamp().is_complete() && i.global().is_none());
        assert_eq!(format!("{a:?}"), "RecordVersion(5.0:1)");
    }
}
