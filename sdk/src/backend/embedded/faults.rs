//! Seeded, deterministic fault injection (off by default).
//!
//! Every decision comes from one ChaCha stream seeded by [`FaultConfig::seed`], so a
//! run that issues the same operations in the same order sees the same faults:
//! a failing seed can be replayed.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::sync::Mutex;
use std::time::Duration;

/// Probabilities (0.0..=1.0) of each injected fault.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultConfig {
    pub seed: u64,
    /// The commit is applied, then reported as `commit_unknown_result` (1021).
    pub unknown_result_committed: f64,
    /// The commit is dropped and reported as `commit_unknown_result` (1021).
    pub unknown_result_not_committed: f64,
    /// The commit fails with `not_committed` (1020) although nothing conflicted.
    pub spurious_not_committed: f64,
    /// A read or a commit fails with `transaction_too_old` (1007).
    pub transaction_too_old: f64,
    /// A read or commit is delayed by up to `max_delay` (through the engine's clock).
    pub delay: f64,
    pub max_delay: Duration,
}

impl FaultConfig {
    /// No faults; a starting point for setting individual probabilities.
    pub fn none(seed: u64) -> Self {
        FaultConfig {
            seed,
            unknown_result_committed: 0.0,
            unknown_result_not_committed: 0.0,
            spurious_not_committed: 0.0,
            transaction_too_old: 0.0,
            delay: 0.0,
            max_delay: Duration::from_millis(5),
        }
    }

    /// A mix of every fault at rates that keep workloads progressing.
    pub fn chaos(seed: u64) -> Self {
        FaultConfig {
            seed,
            unknown_result_committed: 0.03,
            unknown_result_not_committed: 0.03,
            spurious_not_committed: 0.03,
            transaction_too_old: 0.01,
            delay: 0.05,
            max_delay: Duration::from_millis(5),
        }
    }
}

/// What happens to one commit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CommitFault {
    None,
    UnknownCommitted,
    UnknownNotCommitted,
    SpuriousNotCommitted,
    TooOld,
}

pub(crate) struct FaultInjector {
    config: FaultConfig,
    rng: Mutex<ChaCha8Rng>,
}

impl FaultInjector {
    pub(crate) fn new(config: FaultConfig) -> Self {
        let rng = Mutex::new(ChaCha8Rng::seed_from_u64(config.seed));
        FaultInjector { config, rng }
    }

    fn roll(&self, p: f64) -> bool {
        p > 0.0 && self.rng.lock().expect("fault rng").random_bool(p.min(1.0))
    }

    pub(crate) fn commit_fault(&self) -> CommitFault {
        let c = &self.config;
        if self.roll(c.unknown_result_committed) {
            CommitFault::UnknownCommitted
        } else if self.roll(c.unknown_result_not_committed) {
            CommitFault::UnknownNotCommitted
        } else if self.roll(c.spurious_not_committed) {
            CommitFault::SpuriousNotCommitted
        } else if self.roll(c.transaction_too_old) {
            CommitFault::TooOld
        } else {
            CommitFault::None
        }
    }

    pub(crate) fn read_too_old(&self) -> bool {
        self.roll(self.config.transaction_too_old)
    }

    pub(crate) fn delay(&self) -> Option<Duration> {
        if !self.roll(self.config.delay) {
            return None;
        }
        let max = self.config.max_delay.as_micros().max(1) as u64;
        let micros = self.rng.lock().expect("fault rng").random_range(0..=max);
        Some(Duration::from_micros(micros))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_decisions() {
        let a = FaultInjector::new(FaultConfig::chaos(7));
        let b = FaultInjector::new(FaultConfig::chaos(7));
        let run = |f: &FaultInjector| {
            (0..500)
                .map(|_| (f.commit_fault(), f.delay()))
                .collect::<Vec<_>>()
        };
        let (ra, rb) = (run(&a), run(&b));
        assert_eq!(ra, rb);
        assert!(ra.iter().any(|(f, _)| *f == CommitFault::UnknownCommitted));
        assert!(ra.iter().any(|(f, _)| *f == CommitFault::None));
        let none = FaultInjector::new(FaultConfig::none(7));
        assert!(
            (0..100).all(|_| none.commit_fault() == CommitFault::None && none.delay().is_none())
        );
    }
}
