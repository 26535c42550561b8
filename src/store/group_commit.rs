//! Group commit: the batches of concurrent callers are committed together, in one store
//! transaction (one fsync), and each caller returns once the transaction that holds its batch
//! has committed. Writes stay committed-before-answer; the disk's flush is shared. Used by
//! PutAuditEvents, whose calls are many and small.
//!
//! Only batches that cannot conflict belong here (inserts of new rows, puts with
//! `Expect::Any`): a batch that fails fails every call merged with it, with the same error.

use std::sync::Mutex;

use tokio::sync::oneshot;

use super::{Store, StoreError, Write};

/// Calls whose batches wait for the next commit.
type Waiting = Vec<(Vec<Write>, oneshot::Sender<Result<(), String>>)>;

/// Most writes merged into one transaction (bounds its length and memory).
const MAX_WRITES: usize = 2_000;

/// Merges the batches of concurrent callers into shared commits.
#[derive(Default)]
pub struct GroupCommit {
    waiting: Mutex<Waiting>,
    /// Held by the caller that commits for everyone waiting.
    leader: tokio::sync::Mutex<()>,
}

impl GroupCommit {
    /// Commits `batch`, merged with whatever other callers are waiting; returns once it is
    /// committed.
    pub async fn write(&self, store: &dyn Store, batch: Vec<Write>) -> Result<(), StoreError> {
        let (done, mut outcome) = oneshot::channel();
        self.lock().push((batch, done));
        loop {
            // Someone else may have committed our batch while we waited for the lead.
            if let Ok(result) = outcome.try_recv() {
                return result.map_err(StoreError::Unavailable);
            }
            let _leader = self.leader.lock().await;
            if let Ok(result) = outcome.try_recv() {
                return result.map_err(StoreError::Unavailable);
            }
            let (writes, callers) = self.take();
            if callers.is_empty() {
                continue;
            }
            let result = store.write(writes).await.map(|_| ());
            let shared = result.as_ref().map(|_| ()).map_err(ToString::to_string);
            for caller in callers {
                let _ = caller.send(shared.clone());
            }
            if let Err(err) = result {
                // Ours was among them (it was queued before we led): report the cause as it is.
                if let Ok(Err(_)) = outcome.try_recv() {
                    return Err(err);
                }
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Waiting> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The waiting batches, up to [`MAX_WRITES`] writes (always at least one batch), merged.
    fn take(&self) -> (Vec<Write>, Vec<oneshot::Sender<Result<(), String>>>) {
        let mut waiting = self.lock();
        let mut writes = Vec::new();
        let mut callers = Vec::new();
        while let Some((batch, _)) = waiting.first() {
            if !callers.is_empty() && writes.len() + batch.len() > MAX_WRITES {
                break;
            }
            let (batch, caller) = waiting.remove(0);
            writes.extend(batch);
            callers.push(caller);
        }
        (writes, callers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;
    use crate::store::{Expect, RecordKey};
    use std::sync::Arc;

    #[tokio::test]
    async fn concurrent_batches_all_commit() {
        let store = Arc::new(MemoryStore::default());
        let commits = Arc::new(GroupCommit::default());
        let mut tasks = Vec::new();
        for i in 0..20 {
            let store = store.clone();
            let commits = commits.clone();
            tasks.push(tokio::spawn(async move {
                let key = RecordKey::new("test/x", "111122223333", "us-east-1", &i.to_string());
                let write = crate::store::put(key, &i, Expect::Any).expect("put");
                commits.write(&*store, vec![write]).await
            }));
        }
        for task in tasks {
            task.await.expect("task").expect("committed");
        }
        for i in 0..20 {
            let key = RecordKey::new("test/x", "111122223333", "us-east-1", &i.to_string());
            assert!(store.get(&key).await.expect("get").is_some());
        }
    }
}
