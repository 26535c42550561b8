//! Retention in the background: one task that removes what has outlived its retention.
//!
//! Every interval (60 seconds unless `--sweep-interval` says otherwise) the sweeper removes log
//! batches whose newest event is past their group's `retentionInDays`, Kinesis records past
//! their stream's retention period, CloudTrail Lake events whose eventTime is past their event
//! data store's `RetentionPeriod`, AppFabric client tokens past their 24 hours, and dead
//! letters past 14 days. Each service owns its rule (an `expire` function); reads already hide
//! what is past retention, so the sweeper only reclaims space. Work is bounded: each kind
//! removes at most [`MAX_PER_SWEEP`] items per sweep, in transactions of at most a thousand,
//! so a large backlog of expired data never holds writers up; the rest goes next time.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::store::{Record, RecordKey, Store, StoreError};

/// The default time between sweeps.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
/// The most items of one kind a sweep removes.
pub const MAX_PER_SWEEP: usize = 50_000;

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

/// What one sweep removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    /// Stored PutLogEvents batches.
    pub log_batches: usize,
    /// Kinesis records.
    pub kinesis_records: usize,
    /// CloudTrail Lake event rows.
    pub cloudtrail_events: usize,
    /// AppFabric client tokens.
    pub client_tokens: usize,
    /// Dead letters.
    pub dead_letters: usize,
}

/// The sweeper task.
pub struct Sweeper {
    store: Arc<dyn Store>,
    interval: Duration,
}

impl Sweeper {
    /// A sweeper over a store, sweeping every `interval`.
    pub fn new(store: Arc<dyn Store>, interval: Duration) -> Self {
        Self { store, interval }
    }

    /// Sweeps forever; safe to abort at any point (every removal is its own transaction).
    pub async fn run(self) {
        // The first sweep comes one interval after start, not at once: start-up stays quick.
        let start = tokio::time::Instant::now() + self.interval;
        let mut ticks = tokio::time::interval_at(start, self.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
            let now = i64::try_from(now).unwrap_or(i64::MAX);
            match sweep(&*self.store, now).await {
                Ok(swept) if swept != Swept::default() => {
                    tracing::info!(?swept, "Removed data past its retention.");
                }
                Ok(_) => {}
                Err(err) => {
                    tracing::error!(error = %err, "Retention sweep failed; retrying at the next interval.");
                }
            }
        }
    }
}

/// One sweep at `now` (epoch milliseconds). A kind that fails does not stop the others; the
/// first failure is returned after all were tried.
pub async fn sweep(store: &dyn Store, now: i64) -> Result<Swept, StoreError> {
    use crate::services::{appfabric, cloudtrail, kinesis, logs};
    let mut first_error = None;
    let mut count = |result: Result<usize, StoreError>| match result {
        Ok(removed) => removed,
        Err(err) => {
            first_error.get_or_insert(err);
            0
        }
    };
    let swept = Swept {
        log_batches: count(logs::expire(store, now, MAX_PER_SWEEP).await),
        kinesis_records: count(kinesis::expire(store, now, MAX_PER_SWEEP).await),
        cloudtrail_events: count(cloudtrail::expire(store, now, MAX_PER_SWEEP).await),
        client_tokens: count(appfabric::expire_client_tokens(store, now, MAX_PER_SWEEP).await),
        dead_letters: count(crate::pipeline::expire_dead_letters(store, now, MAX_PER_SWEEP).await),
    };
    match first_error {
        Some(err) => Err(err),
        None => Ok(swept),
    }
}
