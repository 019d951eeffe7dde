//! Time as the engine sees it: real, or manual for deterministic tests and simulation.

use futures::future::BoxFuture;
use futures::FutureExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The engine's source of time: transaction age (`transaction_too_old`), timeouts,
/// retry backoff and injected latency all go through it.
pub trait Clock: Send + Sync + 'static {
    /// Time elapsed since an arbitrary fixed origin.
    fn now(&self) -> Duration;
    /// Waits for `duration` of this clock's time.
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()>;
    /// Whether time moves only when the program moves it, as in a simulation. The
    /// engine then does all its work on its callers' threads (no log thread), so that
    /// a run under a single-threaded executor repeats exactly.
    fn is_manual(&self) -> bool {
        false
    }
}

/// Wall-clock time; sleeps with a runtime-agnostic timer.
#[derive(Debug)]
pub struct SystemClock {
    origin: Instant,
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock {
            origin: Instant::now(),
        }
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        if duration.is_zero() {
            return futures::future::ready(()).boxed();
        }
        futures_timer::Delay::new(duration).boxed()
    }
}

/// Virtual time that moves only when told to, or when something sleeps on it:
/// a sleep advances the clock and returns at once, so backoff and injected latency
/// cost no real time and runs stay deterministic.
///
/// ```
/// use fdb_records::backend::embedded::{Clock, ManualClock};
/// use std::time::Duration;
/// let clock = ManualClock::new();
/// clock.advance(Duration::from_secs(6));
/// assert_eq!(clock.now(), Duration::from_secs(6));
/// ```
#[derive(Clone, Debug, Default)]
pub struct ManualClock {
    nanos: Arc<AtomicU64>,
}

impl ManualClock {
    pub fn new() -> Self {
        Self::default()
    }
    /// Moves time forward (saturating at about 584 years).
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        // `fetch_update` never fails with a closure that always returns `Some`.
        let _ = self
            .nanos
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                Some(n.saturating_add(by))
            });
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::SeqCst))
    }
    fn is_manual(&self) -> bool {
        true
    }
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        self.advance(duration);
        // Still yield once so other tasks get to run, as a real sleep would allow.
        yield_once().boxed()
    }
}

/// Returns `Pending` once (waking itself), letting every other ready task on the
/// executor run before this one continues. Deterministic under a single-threaded executor.
pub(crate) async fn yield_once() {
    let mut yielded = false;
    futures::future::poll_fn(move |cx| {
        if yielded {
            std::task::Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await
}
