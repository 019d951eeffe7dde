//! Group commit: concurrent commits are resolved and made durable as one batch.
//!
//! There is no background thread. The first committer to find the pipeline idle
//! becomes the *leader*: it takes every queued request as one batch, resolves
//! conflicts in queue order, writes the accepted transactions' mutations and the
//! batch's version in one durable storage transaction (one sync for the batch, as
//! FoundationDB's commit proxies batch commits), and answers each request. If more
//! requests queued meanwhile, leadership passes to the oldest waiter. Under a
//! single-threaded executor this is deterministic, which the simulation relies on.
//!
//! Each accepted transaction in a batch gets the batch's commit version and its
//! position in the batch: its versionstamp is `version (8 bytes BE) ‖ position (2 bytes BE)`.

use super::engine::Engine;
use super::faults::CommitFault;
use super::intervals::IntervalSet;
use super::storage::StorageWrite;
use super::write_buffer::Mutation;
use super::{atomic, storage};
use crate::kv::{code, Committed, FdbError, FdbResult, MutationType};
use futures::channel::oneshot;
use futures::future::{self, Either};
use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;

/// Largest batch; keeps a batch's position within the versionstamp's 2 bytes.
const MAX_BATCH: usize = 4096;

pub(crate) struct CommitRequest {
    /// `None` when the transaction read nothing (blind writes never conflict).
    pub(crate) read_version: Option<u64>,
    pub(crate) read_conflicts: IntervalSet,
    pub(crate) write_conflicts: IntervalSet,
    pub(crate) mutations: Vec<Mutation>,
    pub(crate) fault: CommitFault,
    /// Automatic idempotency: resolve unknown results instead of reporting them.
    pub(crate) idempotent: bool,
}

struct Queued {
    request: CommitRequest,
    done: oneshot::Sender<FdbResult<Committed>>,
    lead: Option<oneshot::Sender<()>>,
}

#[derive(Default)]
pub(crate) struct Pipeline {
    queue: VecDeque<Queued>,
    leader_active: bool,
}

impl Engine {
    /// Submits a commit and waits for its batch to be durable (or rejected).
    pub(crate) async fn submit_commit(&self, request: CommitRequest) -> FdbResult<Committed> {
        let (done_tx, done_rx) = oneshot::channel();
        let (lead_tx, lead_rx) = oneshot::channel();
        let lead_now = {
            let mut pipeline = self.pipeline.lock().expect("commit pipeline");
            pipeline.queue.push_back(Queued {
                request,
                done: done_tx,
                lead: Some(lead_tx),
            });
            !std::mem::replace(&mut pipeline.leader_active, true)
        };
        if lead_now {
            batching_window().await;
            self.lead();
            return done_rx
                .await
                .unwrap_or(Err(FdbError::from_code(code::INTERNAL_ERROR)));
        }
        match future::select(done_rx, lead_rx).await {
            Either::Left((result, _)) => {
                result.unwrap_or(Err(FdbError::from_code(code::INTERNAL_ERROR)))
            }
            Either::Right((lead, done_rx)) => {
                if lead.is_ok() {
                    batching_window().await;
                    self.lead();
                }
                done_rx
                    .await
                    .unwrap_or(Err(FdbError::from_code(code::INTERNAL_ERROR)))
            }
        }
    }

    /// Processes batches while holding leadership; hands it to a waiter when one exists.
    fn lead(&self) {
        loop {
            let batch: Vec<Queued> = {
                let mut pipeline = self.pipeline.lock().expect("commit pipeline");
                let n = pipeline.queue.len().min(MAX_BATCH);
                pipeline.queue.drain(..n).collect()
            };
            self.process_batch(batch);
            let mut pipeline = self.pipeline.lock().expect("commit pipeline");
            let Some(next) = pipeline.queue.front_mut() else {
                pipeline.leader_active = false;
                return;
            };
            // The oldest waiter takes over and this task returns to its caller; if that
            // waiter was dropped, keep leading.
            if next.lead.take().is_some_and(|lead| lead.send(()).is_ok()) {
                return;
            }
        }
    }

    fn process_batch(&self, batch: Vec<Queued>) {
        if batch.is_empty() {
            return;
        }
        let mut state = self.commit_state.lock().expect("commit state");
        let now = self.clock.now();
        state.resolver.prune(now, self.lifetime);

        // Resolve in queue order; later transactions in the batch see earlier ones' writes.
        let mut batch_writes = IntervalSet::new();
        let mut outcomes: Vec<Option<FdbError>> = Vec::with_capacity(batch.len());
        for q in &batch {
            let r = &q.request;
            let rejected = match r.fault {
                CommitFault::SpuriousNotCommitted => Some(code::NOT_COMMITTED),
                CommitFault::TooOld => Some(code::TRANSACTION_TOO_OLD),
                CommitFault::UnknownNotCommitted if r.idempotent => Some(code::NOT_COMMITTED),
                CommitFault::UnknownNotCommitted => Some(code::COMMIT_UNKNOWN_RESULT),
                CommitFault::None | CommitFault::UnknownCommitted => match r.read_version {
                    Some(rv) if state.resolver.is_too_old(rv) => Some(code::TRANSACTION_TOO_OLD),
                    Some(rv) if state.resolver.conflicts(rv, &r.read_conflicts) => {
                        Some(code::NOT_COMMITTED)
                    }
                    Some(_) if batch_writes.intersects_set(&r.read_conflicts) => {
                        Some(code::NOT_COMMITTED)
                    }
                    _ => None,
                },
            };
            if rejected.is_none() {
                batch_writes.extend(&r.write_conflicts);
            }
            outcomes.push(rejected.map(FdbError::from_code));
        }

        let version = state.last_version + 1;
        let accepted: Vec<usize> = (0..batch.len())
            .filter(|&i| outcomes[i].is_none())
            .collect();
        let mut stamps = vec![None; batch.len()];
        for (order, &i) in accepted.iter().enumerate() {
            let mut stamp = [0u8; 10];
            stamp[..8].copy_from_slice(&version.to_be_bytes());
            stamp[8..].copy_from_slice(&(order as u16).to_be_bytes());
            stamps[i] = Some(stamp);
        }

        let written = if accepted.is_empty() {
            Ok(())
        } else {
            self.storage.write_batch(version, |w| {
                for &i in &accepted {
                    let stamp = stamps[i].as_ref().expect("accepted has a stamp");
                    for m in &batch[i].request.mutations {
                        apply_mutation(w, m, stamp)?;
                    }
                }
                Ok(())
            })
        };

        let stats = &self.stats;
        stats
            .rejected
            .fetch_add((batch.len() - accepted.len()) as u64, Relaxed);
        match written {
            Ok(()) if !accepted.is_empty() => {
                stats.batches.fetch_add(1, Relaxed);
                stats.committed.fetch_add(accepted.len() as u64, Relaxed);
                state.last_version = version;
                state.resolver.record(version, now, batch_writes);
                match self.storage.snapshot() {
                    Ok(snapshot) => {
                        *self.current.write().expect("snapshot cache") =
                            std::sync::Arc::new(snapshot)
                    }
                    Err(e) => {
                        // Reads keep the previous snapshot; they will conflict rather than be wrong.
                        eprintln!("fdb-records: refreshing the read snapshot failed: {e}");
                    }
                }
            }
            Ok(()) => {}
            Err(e) => {
                for &i in &accepted {
                    outcomes[i] = Some(e);
                }
            }
        }
        drop(state);

        for (i, q) in batch.into_iter().enumerate() {
            let result = match (outcomes[i], stamps[i]) {
                (Some(e), _) => Err(e),
                // Applied and durable, but the client is told the outcome is unknown.
                (None, Some(_))
                    if q.request.fault == CommitFault::UnknownCommitted
                        && !q.request.idempotent =>
                {
                    Err(FdbError::from_code(code::COMMIT_UNKNOWN_RESULT))
                }
                (None, stamp) => Ok(Committed {
                    version: version as i64,
                    versionstamp: stamp,
                }),
            };
            let _ = q.done.send(result);
        }
    }
}

/// Yields once before a leader drains the queue, so that commits from tasks that are
/// ready on the same executor thread join this batch instead of each paying for its
/// own sync (FoundationDB's commit proxies wait a short batching interval likewise).
/// A single yield keeps runs deterministic under a single-threaded executor.
async fn batching_window() {
    super::clock::yield_once().await
}

fn apply_mutation(
    w: &mut storage::BatchWriter<'_, '_>,
    m: &Mutation,
    stamp: &[u8; 10],
) -> FdbResult<()> {
    match m {
        Mutation::Set(k, v) => w.apply(StorageWrite::Set(k, v)),
        Mutation::Clear(k) => w.apply(StorageWrite::Clear(k)),
        Mutation::ClearRange(b, e) => w.apply(StorageWrite::ClearRange(b, e)),
        Mutation::Atomic(MutationType::SetVersionstampedKey, k, v) => {
            let key = atomic::fill_versionstamp(k, stamp)?;
            w.apply(StorageWrite::Set(&key, v))
        }
        Mutation::Atomic(MutationType::SetVersionstampedValue, k, v) => {
            let value = atomic::fill_versionstamp(v, stamp)?;
            w.apply(StorageWrite::Set(k, &value))
        }
        Mutation::Atomic(op, k, param) => {
            let current = w.get(k)?;
            match atomic::apply(*op, current.as_deref(), param) {
                Some(v) => w.apply(StorageWrite::Set(k, &v)),
                None => w.apply(StorageWrite::Clear(k)),
            }
        }
    }
}
