//! Simulation workloads for fdb-records: workloads that try to break the SDK and
//! invariants that prove it survived, written once against the SDK's public API
//! (generic over [`fdb_records::kv::Database`]) and run two ways:
//!
//! * in-process on the embedded engine with seeded fault injection ([`sim`], the
//!   `simulate` binary);
//! * inside fdbserver's simulator (feature `fdb`, module `fdb_sim`).
//!
//! See `README.md` for the workloads, invariants and how to run and replay them.

pub mod schema;
pub mod sim;
pub mod workload;

#[cfg(feature = "fdb")]
pub mod fdb_sim;

use fdb_records::store::RecordVersion;
use prost_reflect::DynamicMessage;
use std::collections::{BTreeMap, BTreeSet};

/// A violated invariant: which one, and what was seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub invariant: &'static str,
    pub detail: String,
}

impl Violation {
    pub fn new(invariant: &'static str, detail: String) -> Self {
        Violation { invariant, detail }
    }
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "invariant `{}` violated: {}",
            self.invariant, self.detail
        )
    }
}

impl std::error::Error for Violation {}

/// The reference model's view of one primary key.
#[derive(Clone, Debug, Default)]
pub struct Entry {
    /// The last acknowledged save (`None`: deleted or never saved).
    pub rec: Option<DynamicMessage>,
    /// Bumped when an operation on the key starts and when it ends.
    pub stamp: u64,
    /// Operations on the key in flight.
    pub in_flight: u32,
}

/// State shared by the clients of one run (kept across engine restarts).
#[derive(Debug, Default)]
pub struct Shared {
    pub model: BTreeMap<i64, Entry>,
    /// Keys whose last operation ended in an error: resolved by reading at validation.
    pub uncertain: BTreeSet<i64>,
    /// Acknowledged increments of the hot record.
    pub hot_done: i64,
    /// Markers of increments whose outcome is unknown.
    pub hot_uncertain: Vec<Vec<u8>>,
    /// Markers of increments in flight (unknown if the engine crashes under them).
    pub hot_pending: BTreeSet<Vec<u8>>,
    /// Change feed: watermark and every (primary key, version) it returned.
    pub watermark: Option<RecordVersion>,
    pub seen_versions: BTreeSet<(i64, RecordVersion)>,
    /// A scan paged across engine restarts (its continuation kept as bytes).
    pub long_scan: Option<LongScan>,
    clock: u64,
    trace_hash: u64,
    trace_lines: u64,
    /// Keep the trace lines (for debugging a replay).
    pub keep_trace: bool,
    pub trace: Vec<String>,
}

/// A scan in progress across phases: kind, token, what it returned, model before.
#[derive(Clone, Debug)]
pub struct LongScan {
    pub kind: usize,
    pub token: Option<Vec<u8>>,
    pub got: Vec<i64>,
    pub before: BTreeMap<i64, (u64, Option<DynamicMessage>)>,
    pub pages: usize,
}

impl Shared {
    fn bump(&mut self, pks: &[i64], delta: i32) {
        for p in pks {
            self.clock += 1;
            let e = self.model.entry(*p).or_default();
            e.stamp = self.clock;
            e.in_flight = e.in_flight.saturating_add_signed(delta);
        }
    }
    /// An operation on `pks` starts.
    pub fn begin(&mut self, pks: &[i64]) {
        self.bump(pks, 1);
    }
    /// It ended.
    pub fn end(&mut self, pks: &[i64]) {
        self.bump(pks, -1);
    }
    /// The engine crashed under the clients: every operation in flight has an unknown
    /// outcome, resolved by reading at the next validation.
    pub fn crash(&mut self) {
        let in_flight: Vec<i64> = self
            .model
            .iter()
            .filter(|(_, e)| e.in_flight > 0)
            .map(|(p, _)| *p)
            .collect();
        for p in in_flight {
            self.clock += 1;
            let e = self.model.entry(p).or_default();
            e.in_flight = 0;
            e.stamp = self.clock;
            self.uncertain.insert(p);
        }
        let pending = std::mem::take(&mut self.hot_pending);
        self.hot_uncertain.extend(pending);
        self.long_scan = None;
    }
    /// Records an acknowledged outcome.
    pub fn set(&mut self, pk: i64, rec: Option<DynamicMessage>) {
        self.clock += 1;
        let e = self.model.entry(pk).or_default();
        e.rec = rec;
        e.stamp = self.clock;
    }
    /// Keys with no operation in flight and a known outcome: stamp and record.
    pub fn stable_snapshot(&self) -> BTreeMap<i64, (u64, Option<DynamicMessage>)> {
        self.model
            .iter()
            .filter(|(p, e)| e.in_flight == 0 && !self.uncertain.contains(p))
            .map(|(p, e)| (*p, (e.stamp, e.rec.clone())))
            .collect()
    }
    /// Adds a line to the operation trace.
    pub fn trace(&mut self, line: &str) {
        // FNV-1a over the lines, each terminated by a newline.
        let mut h = if self.trace_lines == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.trace_hash
        };
        for b in line.bytes().chain(std::iter::once(b'\n')) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.trace_hash = h;
        self.trace_lines += 1;
        if self.keep_trace {
            self.trace.push(line.to_string());
        }
    }
    pub fn trace_hash(&self) -> u64 {
        self.trace_hash
    }
    pub fn trace_lines(&self) -> u64 {
        self.trace_lines
    }
}
