//! Bounded expiry over the store: the helpers each service's `expire` rule walks its records
//! and removes in small transactions with, so the sweeper (which calls the rules) and the
//! services (which own them) do not depend on each other.

use std::future::Future;

use super::{Record, RecordKey, Store, StoreError};

/// Records read per page when a rule walks every account's records of a kind.
const SCAN_PAGE: usize = 256;
/// The most items one removal transaction takes.
const EXPIRE_CHUNK: usize = 1_000;

/// Every account's records of one kind, a page at a time: what each service's `expire` rule
/// walks to find what has a retention.
pub struct RecordScan<'s> {
    store: &'s dyn Store,
    kind: &'static str,
    after: Option<RecordKey>,
    finished: bool,
}

impl<'s> RecordScan<'s> {
    /// A scan of `kind` from the start.
    pub fn new(store: &'s dyn Store, kind: &'static str) -> Self {
        Self {
            store,
            kind,
            after: None,
            finished: false,
        }
    }

    /// The next page of records, or `None` after the last.
    pub async fn next_page(&mut self) -> Result<Option<Vec<Record>>, StoreError> {
        if self.finished {
            return Ok(None);
        }
        let page = self
            .store
            .scan(self.kind, self.after.as_ref(), SCAN_PAGE)
            .await?;
        self.finished = page.len() < SCAN_PAGE;
        self.after = page.last().map(|record| record.key.clone());
        Ok((!page.is_empty()).then_some(page))
    }
}

/// How much one kind may still remove in this sweep, shared by every removal of its rule.
#[derive(Debug)]
pub struct Budget {
    limit: usize,
    removed: usize,
}

impl Budget {
    /// A budget of `limit` items.
    pub fn new(limit: usize) -> Self {
        Self { limit, removed: 0 }
    }

    /// How many items were removed so far.
    pub fn removed(&self) -> usize {
        self.removed
    }

    /// How many more may go.
    pub fn remaining(&self) -> usize {
        self.limit.saturating_sub(self.removed)
    }

    /// Counts `count` removed items.
    pub fn spend(&mut self, count: usize) {
        self.removed += count;
    }

    /// Removes in bounded transactions: calls `expire_chunk(n)`, which removes at most `n`
    /// items and says how many it did, until it removes fewer than asked or the budget is
    /// spent, letting other tasks (writers) go between transactions.
    pub async fn drain<F, Fut>(&mut self, mut expire_chunk: F) -> Result<(), StoreError>
    where
        F: FnMut(usize) -> Fut,
        Fut: Future<Output = Result<usize, StoreError>>,
    {
        while self.remaining() > 0 {
            let chunk = EXPIRE_CHUNK.min(self.remaining());
            let done = expire_chunk(chunk).await?;
            self.spend(done);
            if done < chunk {
                break;
            }
            tokio::task::yield_now().await;
        }
        Ok(())
    }
}
