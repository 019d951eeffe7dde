//! The conflict resolver: recent commits' write sets, checked against a committing
//! transaction's read set, as FoundationDB's resolvers do.
//!
//! History covers the MVCC window (the transaction lifetime, 5 s by default). A read
//! version older than the oldest commit dropped from history can no longer be checked,
//! so its transaction fails with `transaction_too_old`, exactly FoundationDB's rule.

use super::intervals::IntervalSet;
use std::collections::VecDeque;
use std::time::Duration;

struct CommitRecord {
    version: u64,
    committed_at: Duration,
    writes: IntervalSet,
}

#[derive(Default)]
pub(crate) struct Resolver {
    history: VecDeque<CommitRecord>,
    /// Highest version whose write set was dropped from history.
    max_dropped_version: u64,
}

impl Resolver {
    /// Drops commits older than `window` before `now`.
    pub(crate) fn prune(&mut self, now: Duration, window: Duration) {
        while let Some(oldest) = self.history.front() {
            if now.saturating_sub(oldest.committed_at) <= window {
                break;
            }
            self.max_dropped_version = oldest.version;
            self.history.pop_front();
        }
    }

    /// A transaction reading at `read_version` can no longer be checked.
    pub(crate) fn is_too_old(&self, read_version: u64) -> bool {
        read_version < self.max_dropped_version
    }

    /// Whether a commit after `read_version` wrote anything in `reads`.
    pub(crate) fn conflicts(&self, read_version: u64, reads: &IntervalSet) -> bool {
        if reads.is_empty() {
            return false;
        }
        self.history
            .iter()
            .rev()
            .take_while(|c| c.version > read_version)
            .any(|c| c.writes.intersects_set(reads))
    }

    pub(crate) fn record(&mut self, version: u64, committed_at: Duration, writes: IntervalSet) {
        if !writes.is_empty() {
            self.history.push_back(CommitRecord {
                version,
                committed_at,
                writes,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(b: &[u8], e: &[u8]) -> IntervalSet {
        let mut s = IntervalSet::new();
        s.insert(b, e);
        s
    }

    #[test]
    fn conflicts_only_with_later_commits() {
        let mut r = Resolver::default();
        r.record(5, Duration::ZERO, set(b"a", b"b"));
        assert!(r.conflicts(4, &set(b"a", b"a\0")));
        assert!(!r.conflicts(5, &set(b"a", b"a\0")));
        assert!(!r.conflicts(4, &set(b"b", b"c")));
    }

    #[test]
    fn pruned_history_makes_old_reads_too_old() {
        let mut r = Resolver::default();
        r.record(5, Duration::from_secs(0), set(b"a", b"b"));
        r.record(6, Duration::from_secs(4), set(b"x", b"y"));
        r.prune(Duration::from_secs(6), Duration::from_secs(5));
        assert!(r.is_too_old(4));
        assert!(
            !r.is_too_old(5),
            "a read at the dropped version itself saw its writes"
        );
        assert!(r.conflicts(5, &set(b"x", b"z")));
    }
}
