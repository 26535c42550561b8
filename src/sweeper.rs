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

use std::sync::Arc;
use std::time::Duration;

use crate::lease::Leases;
use crate::store::{Store, StoreError};

/// The default time between sweeps.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
/// The most items of one kind a sweep removes.
pub const MAX_PER_SWEEP: usize = 50_000;

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
    /// One node of a shared store sweeps at a time: the holder of [`SWEEPER`].
    leases: Arc<Leases>,
}

/// The sweeper's lease.
const SWEEPER: &str = "sweeper";

impl Sweeper {
    /// A sweeper over a store, sweeping every `interval` while this node holds its lease.
    pub fn new(store: Arc<dyn Store>, interval: Duration, leases: Arc<Leases>) -> Self {
        Self {
            store,
            interval,
            leases,
        }
    }

    /// Sweeps forever; safe to abort at any point (every removal is its own transaction).
    pub async fn run(self) {
        // The first sweep comes one interval after start, not at once: start-up stays quick.
        let start = tokio::time::Instant::now() + self.interval;
        let mut ticks = tokio::time::interval_at(start, self.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if !self.leases.hold(SWEEPER).await {
                continue;
            }
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
