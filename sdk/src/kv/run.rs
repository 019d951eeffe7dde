//! The retry loop shared by every backend (FoundationDB's `Database::run`).

use super::{Committed, Database, MaybeCommitted, RetryableError, Transaction};
use std::future::Future;

/// What [`run`] returns: the closure's value, the commit and how many attempts it took.
#[derive(Debug)]
pub struct RunOutcome<T> {
    pub value: T,
    pub committed: Committed,
    /// Number of times the closure ran (1 when nothing was retried).
    pub attempts: u32,
}

/// Runs `f` in a transaction, commits, and retries with FoundationDB's rules.
///
/// `f` receives [`MaybeCommitted`]`(true)` on every attempt after one that ended in a
/// maybe-committed error (`commit_unknown_result`): unlike a flag that only reflects
/// the last error, it stays set, because that earlier attempt may have committed.
///
/// Every retry decision goes through the backend's `on_error`, which owns backoff,
/// the retry limit and the timeout, exactly as FoundationDB's client does; this loop
/// only decides *what* to hand it. An application error without an [`super::FdbError`]
/// inside ends the loop at once.
pub async fn run<D, F, Fut, T, E>(db: &D, mut f: F) -> Result<RunOutcome<T>, E>
where
    D: Database,
    F: FnMut(D::Transaction, MaybeCommitted) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: RetryableError,
{
    let tx = db.create_transaction()?;
    let mut maybe_committed = MaybeCommitted(false);
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let error = match f(tx.clone(), maybe_committed).await {
            Ok(value) => match tx.commit().await {
                Ok(committed) => {
                    return Ok(RunOutcome {
                        value,
                        committed,
                        attempts,
                    })
                }
                Err(e) => E::from(e),
            },
            Err(e) => e,
        };
        let Some(fdb_error) = error.fdb_error() else {
            tx.cancel();
            return Err(error);
        };
        if let Err(final_error) = tx.on_error(fdb_error).await {
            // Keep the application's error when on_error gave up on it; report a new
            // one (such as `transaction_timed_out`) when on_error raised it.
            return Err(if final_error == fdb_error {
                error
            } else {
                E::from(final_error)
            });
        }
        // Sticky: once an attempt may have committed, every later attempt must know,
        // even if the attempt in between failed with a plain conflict.
        maybe_committed = MaybeCommitted(maybe_committed.0 || fdb_error.is_maybe_committed());
    }
}
