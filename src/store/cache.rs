//! The read cache: control-plane records served from memory, the store kept as the durable log.
//!
//! [`CachedStore`] wraps any [`Store`]. Records of the kinds it is given (log groups,
//! destinations, channels, ...: small, few, and read on nearly every request) are kept in
//! memory per *partition* (one kind in one account and Region), loaded from the store the first
//! time a partition is read. `get` and `list` of a loaded partition are answered from memory,
//! with no thread hand-off to the store's worker and no query. Everything else (logs, tables,
//! settings, records of other kinds, cross-account `scan`s) goes to the store unchanged.
//!
//! **Invariant:** a loaded partition equals what the store has committed for it, except while a
//! batch touching it is between its commit and the end of its `write` call (readers may then
//! see the state before the batch; the batch is not acknowledged yet).
//!
//! How it holds:
//! - Batches that touch cached kinds, partition loads and resets run one at a time behind one
//!   gate (a queue, not a lock held by readers), so a load never reads a snapshot that a
//!   concurrent commit then overtakes. SQLite has one writer anyway, so the gate costs nothing.
//! - A batch changes memory only after the store acknowledged it as committed, and before
//!   `write` returns, so a caller always reads its own writes. Versions follow the store's rule
//!   (1 on create, +1 on every put), so conditional writes compare against what the store has.
//! - A conflict wrote nothing; memory stays (and the conflicting key's partition is reloaded on
//!   its next read, which matters only when other nodes write, see below). Any other failure
//!   is *unproven*: the batch may or may not have committed, so every partition it touched is
//!   dropped and reloaded from the store on its next read. Memory is never ahead of the store
//!   (nothing is applied before the commit) nor behind it (nothing acknowledged is skipped).
//! - A batch runs in a task of its own, so a caller that goes away (a cancelled request) can
//!   never leave a committed batch unapplied; a panic drops the touched partitions.
//! - [`Store::reset`] empties memory together with the store.
//!
//! Several nodes sharing one store (PostgreSQL, later): a node still reads its own writes by
//! the rules above, but another node's commits bypass its memory. The store then offers a
//! [`ChangeFeed`]: a store-wide, monotonic change position, and the partitions changed after a
//! given position (PostgreSQL: a `record_changes (position bigserial, kind, account, region)`
//! row written in every batch that touches records, in the same transaction). A cache built
//! with [`CachedStore::shared`] asks it at most once per `staleness` interval, before serving a
//! read, and drops the partitions it names; the check runs behind the gate, so a load cannot
//! slip between the snapshot and the feed. Another node's commit is therefore visible to every
//! read that starts more than `staleness` (plus one feed query) after it; a conditional write
//! prepared from a stale read fails as a conflict in the store, and the conflict drops that
//! partition, so the retry reads fresh.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{
    Derived, EntrySpan, Lent, LogEntry, Record, RecordKey, RowAt, Store, StoreError, StoreHealth,
    TimeOrder, Write,
};

/// One kind of record in one account and Region: what is loaded, kept and dropped as a unit.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Partition {
    /// The record kind.
    pub kind: &'static str,
    /// The account.
    pub account: String,
    /// The Region.
    pub region: String,
}

impl Partition {
    fn of(key: &RecordKey) -> Self {
        Self {
            kind: key.kind,
            account: key.account.clone(),
            region: key.region.clone(),
        }
    }
}

/// What other nodes sharing the store changed: the multi-node half of the cache's contract.
#[async_trait]
pub trait ChangeFeed: Send + Sync + 'static {
    /// The partitions whose records any node changed after position `after` (0: from the
    /// beginning), and the position to ask from next time. Positions only grow.
    async fn changed_since(&self, after: u64) -> Result<(u64, Vec<Partition>), StoreError>;
}

/// A cached record: what a read returns, without the key it is filed under, and the values
/// readers derived from it ([`crate::store::Lent::derived`]).
#[derive(Clone)]
struct Cached {
    version: i64,
    body: serde_json::Value,
    derived: Derived,
}

/// A loaded partition's records by name, in byte order (as the stores list them).
type Records = BTreeMap<String, Cached>;

/// Loaded partitions, nested so a read looks one up by `&str`s without allocating.
type Loaded = HashMap<&'static str, HashMap<String, HashMap<String, Records>>>;

/// The part a write task shares with the cache.
struct Shared {
    inner: Arc<dyn Store>,
    kinds: HashSet<&'static str>,
    loaded: RwLock<Loaded>,
    /// Serialises batches touching cached kinds, loads, resets and change checks.
    gate: tokio::sync::Mutex<()>,
    /// Other nodes write to the store too.
    peers: bool,
}

/// Checking other nodes' changes, when the store is shared.
struct Peers {
    feed: Arc<dyn ChangeFeed>,
    staleness: Duration,
    started: Instant,
    /// Milliseconds since `started` at the last completed check.
    checked_at: AtomicU64,
    /// The feed position memory reflects.
    position: tokio::sync::Mutex<u64>,
}

impl Peers {
    /// Whether the last check of other nodes' changes is `staleness` old.
    fn due(&self) -> bool {
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let since = now.saturating_sub(self.checked_at.load(Ordering::Acquire));
        Duration::from_millis(since) >= self.staleness
    }
}

/// A [`Store`] whose control-plane records are read from memory (see the module docs).
pub struct CachedStore {
    shared: Arc<Shared>,
    peers: Option<Peers>,
}

impl CachedStore {
    /// Caches records of `kinds` in front of `inner`, for a store only this process writes.
    pub fn new(inner: Arc<dyn Store>, kinds: &[&'static str]) -> Self {
        Self {
            shared: Arc::new(Shared {
                inner,
                kinds: kinds.iter().copied().collect(),
                loaded: RwLock::new(HashMap::new()),
                gate: tokio::sync::Mutex::new(()),
                peers: false,
            }),
            peers: None,
        }
    }

    /// Caches records of `kinds` in front of a store other nodes write too: other nodes'
    /// changes, read from `feed`, reach this node's reads within `staleness`.
    pub fn shared(
        inner: Arc<dyn Store>,
        kinds: &[&'static str],
        feed: Arc<dyn ChangeFeed>,
        staleness: Duration,
    ) -> Self {
        let mut cache = Self::new(inner, kinds);
        if let Some(shared) = Arc::get_mut(&mut cache.shared) {
            shared.peers = true;
        }
        cache.peers = Some(Peers {
            feed,
            staleness,
            started: Instant::now(),
            checked_at: AtomicU64::new(0),
            position: tokio::sync::Mutex::new(0),
        });
        cache
    }

    fn caches(&self, kind: &str) -> bool {
        self.shared.kinds.contains(kind)
    }

    /// Runs `read` on a loaded partition; `None` when it is not loaded.
    fn read<T>(
        &self,
        kind: &'static str,
        account: &str,
        region: &str,
        read: impl FnOnce(&Records) -> T,
    ) -> Option<T> {
        let loaded = self
            .shared
            .loaded
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        loaded
            .get(kind)
            .and_then(|accounts| accounts.get(account))
            .and_then(|regions| regions.get(region))
            .map(read)
    }

    /// Loads a partition from the store unless it is loaded already.
    async fn load(
        &self,
        kind: &'static str,
        account: &str,
        region: &str,
    ) -> Result<(), StoreError> {
        let _gate = self.shared.gate.lock().await;
        if self.read(kind, account, region, |_| ()).is_some() {
            return Ok(());
        }
        let records = self
            .shared
            .inner
            .list(kind, account, region, "", None, usize::MAX)
            .await?
            .into_iter()
            .map(|record| {
                let cached = Cached {
                    version: record.version,
                    body: record.body,
                    derived: Derived::default(),
                };
                (record.key.name, cached)
            })
            .collect();
        self.shared
            .write_loaded()
            .entry(kind)
            .or_default()
            .entry(account.to_owned())
            .or_default()
            .insert(region.to_owned(), records);
        Ok(())
    }

    /// Reads a loaded partition, loading it first when needed. `None` only if the partition
    /// was dropped again between its load and the read, twice in a row: the caller then asks
    /// the store.
    async fn read_loaded<T>(
        &self,
        kind: &'static str,
        account: &str,
        region: &str,
        read: impl Fn(&Records) -> T,
    ) -> Result<Option<T>, StoreError> {
        self.catch_up().await?;
        for _ in 0..2 {
            if let Some(found) = self.read(kind, account, region, &read) {
                return Ok(Some(found));
            }
            self.load(kind, account, region).await?;
        }
        Ok(None)
    }

    /// When other nodes write too and the last check is older than `staleness`: drops the
    /// partitions they changed since.
    async fn catch_up(&self) -> Result<(), StoreError> {
        let Some(peers) = &self.peers else {
            return Ok(());
        };
        if !peers.due() {
            return Ok(());
        }
        let mut position = peers.position.lock().await;
        if !peers.due() {
            return Ok(()); // another reader checked while this one waited
        }
        let checked = peers.started.elapsed();
        let _gate = self.shared.gate.lock().await;
        let (next, changed) = peers.feed.changed_since(*position).await?;
        self.shared.drop_partitions(changed.iter());
        *position = next;
        peers.checked_at.store(
            u64::try_from(checked.as_millis()).unwrap_or(u64::MAX),
            Ordering::Release,
        );
        Ok(())
    }
}

impl Shared {
    fn write_loaded(&self) -> std::sync::RwLockWriteGuard<'_, Loaded> {
        self.loaded
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn drop_partitions<'a>(&self, partitions: impl Iterator<Item = &'a Partition>) {
        let mut loaded = self.write_loaded();
        for partition in partitions {
            if let Some(regions) = loaded
                .get_mut(partition.kind)
                .and_then(|accounts| accounts.get_mut(&partition.account))
            {
                regions.remove(&partition.region);
            }
        }
    }

    /// Applies a committed batch's record changes to the loaded partitions it touches.
    fn apply(&self, changes: Vec<Change>) {
        let mut loaded = self.write_loaded();
        for change in changes {
            let key = change.key();
            let Some(records) = loaded
                .get_mut(key.kind)
                .and_then(|accounts| accounts.get_mut(&key.account))
                .and_then(|regions| regions.get_mut(&key.region))
            else {
                continue; // not loaded: its first read loads the committed state
            };
            match change {
                Change::Put { key, body } => {
                    let version = records.get(&key.name).map_or(0, |c| c.version) + 1;
                    let derived = Derived::default();
                    records.insert(
                        key.name,
                        Cached {
                            version,
                            body,
                            derived,
                        },
                    );
                }
                Change::Delete { key } => {
                    records.remove(&key.name);
                }
            }
        }
    }
}

/// The records whose names start with `prefix` and sort after `after`, in name order.
fn in_range<'r>(
    records: &'r Records,
    prefix: &'r str,
    after: Option<&'r str>,
) -> impl Iterator<Item = (&'r String, &'r Cached)> {
    // Names with the prefix are one contiguous range in byte order. An empty prefix (most
    // lists) is compared with nothing: an empty `str` points at no memory, and glibc's
    // memcmp, even for zero bytes, makes a masked vector load from it, which AMD's EPYC
    // answers with a microcode assist of about 150 ns. Once per listed record, that was an
    // eighth of DescribeDestinations' time.
    let unbounded = prefix.is_empty();
    let from = match after {
        Some(after) if unbounded || after >= prefix => Bound::Excluded(after),
        _ if unbounded => Bound::Unbounded,
        _ => Bound::Included(prefix),
    };
    records
        .range::<str, _>((from, Bound::Unbounded))
        .take_while(move |(name, _)| unbounded || name.starts_with(prefix))
}

/// A record change of a batch, kept to be applied once the batch commits.
enum Change {
    Put {
        key: RecordKey,
        body: serde_json::Value,
    },
    Delete {
        key: RecordKey,
    },
}

impl Change {
    fn key(&self) -> &RecordKey {
        match self {
            Change::Put { key, .. } | Change::Delete { key } => key,
        }
    }
}

/// Drops the partitions a batch touched unless disarmed: what happens when the batch's outcome
/// is unknown, including a panic on the way.
struct Unproven<'a> {
    shared: &'a Shared,
    touched: Vec<Partition>,
}

impl Drop for Unproven<'_> {
    fn drop(&mut self) {
        self.shared.drop_partitions(self.touched.iter());
    }
}

#[async_trait]
impl Store for CachedStore {
    fn lend(
        &self,
        kind: &'static str,
        account: &str,
        region: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
        each: &mut dyn FnMut(Lent<'_>) -> Result<(), StoreError>,
    ) -> Option<Result<(), StoreError>> {
        if !self.caches(kind) || self.peers.as_ref().is_some_and(Peers::due) {
            return None; // not here, or other nodes' changes are to be read first
        }
        // The read lock is held while `each` runs: it decodes, it never waits.
        self.read(kind, account, region, |records| {
            in_range(records, prefix, after)
                .take(limit)
                .try_for_each(|(name, cached)| {
                    each(Lent {
                        name,
                        version: cached.version,
                        body: &cached.body,
                        derived: &cached.derived,
                    })
                })
        })
    }

    async fn get(&self, key: &RecordKey) -> Result<Option<Record>, StoreError> {
        if !self.caches(key.kind) {
            return self.shared.inner.get(key).await;
        }
        let found = self
            .read_loaded(key.kind, &key.account, &key.region, |records| {
                records.get(&key.name).map(|cached| Record {
                    key: key.clone(),
                    version: cached.version,
                    body: cached.body.clone(),
                })
            })
            .await?;
        match found {
            Some(record) => Ok(record),
            None => self.shared.inner.get(key).await,
        }
    }

    async fn list(
        &self,
        kind: &'static str,
        account: &str,
        region: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        if !self.caches(kind) {
            return self
                .shared
                .inner
                .list(kind, account, region, prefix, after, limit)
                .await;
        }
        let found = self
            .read_loaded(kind, account, region, |records| {
                in_range(records, prefix, after)
                    .take(limit)
                    .map(|(name, cached)| Record {
                        key: RecordKey {
                            kind,
                            account: account.to_owned(),
                            region: region.to_owned(),
                            name: name.clone(),
                        },
                        version: cached.version,
                        body: cached.body.clone(),
                    })
                    .collect::<Vec<_>>()
            })
            .await?;
        match found {
            Some(records) => Ok(records),
            None => {
                self.shared
                    .inner
                    .list(kind, account, region, prefix, after, limit)
                    .await
            }
        }
    }

    async fn write(&self, batch: Vec<Write>) -> Result<Vec<i64>, StoreError> {
        let changes: Vec<Change> = batch
            .iter()
            .filter_map(|write| match write {
                Write::Put { key, body, .. } if self.caches(key.kind) => Some(Change::Put {
                    key: key.clone(),
                    body: body.clone(),
                }),
                Write::Delete { key, .. } if self.caches(key.kind) => {
                    Some(Change::Delete { key: key.clone() })
                }
                _ => None,
            })
            .collect();
        if changes.is_empty() {
            return self.shared.inner.write(batch).await;
        }
        let shared = self.shared.clone();
        crate::store::detached(async move {
            let _gate = shared.gate.lock().await;
            let mut touched: Vec<Partition> = Vec::new();
            for change in &changes {
                let partition = Partition::of(change.key());
                if !touched.contains(&partition) {
                    touched.push(partition);
                }
            }
            let mut unproven = Unproven {
                shared: &shared,
                touched,
            };
            let result = shared.inner.write(batch).await;
            match &result {
                Ok(_) => {
                    shared.apply(changes);
                    unproven.touched.clear();
                }
                Err(StoreError::Conflict(key)) => {
                    // Nothing was written. Alone, memory is exact; beside other nodes the
                    // conflict may come from a change not seen yet, so read that one afresh.
                    unproven.touched = if shared.peers {
                        vec![Partition::of(key)]
                    } else {
                        Vec::new()
                    };
                }
                Err(StoreError::Unavailable(_)) => {} // outcome unknown: drop all touched
            }
            drop(unproven);
            result
        })
        .await
    }

    async fn read_log(
        &self,
        log: &RecordKey,
        from: i64,
        limit: usize,
    ) -> Result<Vec<LogEntry>, StoreError> {
        self.shared.inner.read_log(log, from, limit).await
    }

    async fn seek_log(&self, log: &RecordKey, at_millis: i64) -> Result<Option<i64>, StoreError> {
        self.shared.inner.seek_log(log, at_millis).await
    }

    async fn select_rows(
        &self,
        table: &'static str,
        column: &'static str,
        value: &str,
    ) -> Result<Vec<serde_json::Map<String, serde_json::Value>>, StoreError> {
        self.shared.inner.select_rows(table, column, value).await
    }

    async fn read_log_spans(
        &self,
        log: &RecordKey,
        order: TimeOrder,
        from: (i64, i64),
        window: (i64, i64),
        limit: usize,
    ) -> Result<Vec<EntrySpan>, StoreError> {
        self.shared
            .inner
            .read_log_spans(log, order, from, window, limit)
            .await
    }

    async fn expire_log(
        &self,
        log: &RecordKey,
        before: i64,
        accepted_from: i64,
        limit: usize,
    ) -> Result<usize, StoreError> {
        self.shared
            .inner
            .expire_log(log, before, accepted_from, limit)
            .await
    }

    async fn expire_rows(
        &self,
        table: &'static str,
        scope: &[(&'static str, &str)],
        time_column: &'static str,
        before: i64,
        limit: usize,
    ) -> Result<usize, StoreError> {
        self.shared
            .inner
            .expire_rows(table, scope, time_column, before, limit)
            .await
    }

    async fn scan_rows(
        &self,
        table: &'static str,
        scope: &[(&'static str, &str)],
        time_column: &'static str,
        from: (i64, i64),
        until: i64,
        limit: usize,
    ) -> Result<Vec<RowAt>, StoreError> {
        self.shared
            .inner
            .scan_rows(table, scope, time_column, from, until, limit)
            .await
    }

    async fn scan(
        &self,
        kind: &'static str,
        after: Option<&RecordKey>,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        // Background work, across every account: the store answers, never older than memory.
        self.shared.inner.scan(kind, after, limit).await
    }

    async fn log_tail(&self, log: &RecordKey) -> Result<i64, StoreError> {
        self.shared.inner.log_tail(log).await
    }

    async fn get_setting(&self, name: &str) -> Result<Option<String>, StoreError> {
        self.shared.inner.get_setting(name).await
    }

    async fn init_settings(&self, settings: &[(&str, &str)]) -> Result<Vec<String>, StoreError> {
        self.shared.inner.init_settings(settings).await
    }

    async fn reset(&self) -> Result<(), StoreError> {
        let _gate = self.shared.gate.lock().await;
        let result = self.shared.inner.reset().await;
        // Even a failed reset may have removed some records: reload everything from the store.
        self.shared.write_loaded().clear();
        result
    }

    fn health(&self) -> StoreHealth {
        self.shared.inner.health()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::sync::Mutex;

    use serde_json::json;

    use super::*;
    use crate::store::memory::MemoryStore;
    use crate::store::{Expect, NewEntry};

    /// The kinds the conformance scenario writes records of.
    const KINDS: &[&str] = &["test/thing", "test/scanned", "test/other"];

    #[tokio::test]
    async fn passes_the_conformance_scenario_over_memory() {
        let cache = CachedStore::new(Arc::new(MemoryStore::default()), KINDS);
        crate::store::conformance::run(&cache).await;
    }

    #[tokio::test]
    async fn passes_the_conformance_scenario_over_sqlite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sqlite = crate::store::sqlite::SqliteStore::open(dir.path())
            .await
            .expect("open");
        let cache = CachedStore::new(Arc::new(sqlite), KINDS);
        crate::store::conformance::run(&cache).await;
    }

    /// What the next write of a [`Probe`] does.
    #[derive(Clone)]
    enum Mode {
        Normal,
        /// Commits, then reports a failure (a lost acknowledgement).
        CommitThenFail,
        /// Fails without committing.
        FailWithoutCommit,
        /// Waits for the signal, then commits.
        WaitFor(Arc<tokio::sync::Notify>),
    }

    /// A memory store that counts record reads, fails writes on demand, and keeps a change
    /// feed of committed batches (as a shared PostgreSQL store would).
    struct Probe {
        inner: MemoryStore,
        record_reads: AtomicUsize,
        mode: Mutex<Mode>,
        journal: Mutex<Vec<Partition>>,
    }

    impl Probe {
        fn new() -> Arc<Self> {
            Arc::new(Self {
                inner: MemoryStore::default(),
                record_reads: AtomicUsize::new(0),
                mode: Mutex::new(Mode::Normal),
                journal: Mutex::new(Vec::new()),
            })
        }

        fn set(&self, mode: Mode) {
            *self.mode.lock().expect("mode") = mode;
        }

        fn reads(&self) -> usize {
            self.record_reads.load(Ordering::SeqCst)
        }
    }

    #[async_trait]
    impl ChangeFeed for Probe {
        async fn changed_since(&self, after: u64) -> Result<(u64, Vec<Partition>), StoreError> {
            let journal = self.journal.lock().expect("journal");
            let from = usize::try_from(after).expect("position");
            Ok((journal.len() as u64, journal[from..].to_vec()))
        }
    }

    #[async_trait]
    impl Store for Probe {
        async fn get(&self, key: &RecordKey) -> Result<Option<Record>, StoreError> {
            self.record_reads.fetch_add(1, Ordering::SeqCst);
            self.inner.get(key).await
        }
        async fn list(
            &self,
            kind: &'static str,
            account: &str,
            region: &str,
            prefix: &str,
            after: Option<&str>,
            limit: usize,
        ) -> Result<Vec<Record>, StoreError> {
            self.record_reads.fetch_add(1, Ordering::SeqCst);
            self.inner
                .list(kind, account, region, prefix, after, limit)
                .await
        }
        async fn write(&self, batch: Vec<Write>) -> Result<Vec<i64>, StoreError> {
            let mode = std::mem::replace(&mut *self.mode.lock().expect("mode"), Mode::Normal);
            let touched: Vec<Partition> = batch
                .iter()
                .filter_map(|write| match write {
                    Write::Put { key, .. } | Write::Delete { key, .. } => Some(Partition::of(key)),
                    _ => None,
                })
                .collect();
            match mode {
                Mode::FailWithoutCommit => {
                    return Err(StoreError::Unavailable("disk I/O error".into()))
                }
                Mode::WaitFor(ref signal) => signal.notified().await,
                Mode::Normal | Mode::CommitThenFail => {}
            }
            let result = self.inner.write(batch).await;
            if result.is_ok() {
                self.journal.lock().expect("journal").extend(touched);
            }
            match (mode, result) {
                (Mode::CommitThenFail, Ok(_)) => {
                    Err(StoreError::Unavailable("COMMIT outcome unknown".into()))
                }
                (_, result) => result,
            }
        }
        async fn read_log(
            &self,
            log: &RecordKey,
            from: i64,
            limit: usize,
        ) -> Result<Vec<LogEntry>, StoreError> {
            self.inner.read_log(log, from, limit).await
        }
        async fn seek_log(&self, log: &RecordKey, at: i64) -> Result<Option<i64>, StoreError> {
            self.inner.seek_log(log, at).await
        }
        async fn select_rows(
            &self,
            table: &'static str,
            column: &'static str,
            value: &str,
        ) -> Result<Vec<serde_json::Map<String, serde_json::Value>>, StoreError> {
            self.inner.select_rows(table, column, value).await
        }
        async fn read_log_spans(
            &self,
            log: &RecordKey,
            order: TimeOrder,
            from: (i64, i64),
            window: (i64, i64),
            limit: usize,
        ) -> Result<Vec<EntrySpan>, StoreError> {
            self.inner
                .read_log_spans(log, order, from, window, limit)
                .await
        }
        async fn expire_log(
            &self,
            log: &RecordKey,
            before: i64,
            accepted_from: i64,
            limit: usize,
        ) -> Result<usize, StoreError> {
            self.inner
                .expire_log(log, before, accepted_from, limit)
                .await
        }
        async fn expire_rows(
            &self,
            table: &'static str,
            scope: &[(&'static str, &str)],
            time_column: &'static str,
            before: i64,
            limit: usize,
        ) -> Result<usize, StoreError> {
            self.inner
                .expire_rows(table, scope, time_column, before, limit)
                .await
        }
        async fn scan_rows(
            &self,
            table: &'static str,
            scope: &[(&'static str, &str)],
            time_column: &'static str,
            from: (i64, i64),
            until: i64,
            limit: usize,
        ) -> Result<Vec<RowAt>, StoreError> {
            self.inner
                .scan_rows(table, scope, time_column, from, until, limit)
                .await
        }
        async fn scan(
            &self,
            kind: &'static str,
            after: Option<&RecordKey>,
            limit: usize,
        ) -> Result<Vec<Record>, StoreError> {
            self.inner.scan(kind, after, limit).await
        }
        async fn log_tail(&self, log: &RecordKey) -> Result<i64, StoreError> {
            self.inner.log_tail(log).await
        }
        async fn get_setting(&self, name: &str) -> Result<Option<String>, StoreError> {
            self.inner.get_setting(name).await
        }
        async fn init_settings(
            &self,
            settings: &[(&str, &str)],
        ) -> Result<Vec<String>, StoreError> {
            self.inner.init_settings(settings).await
        }
        async fn reset(&self) -> Result<(), StoreError> {
            self.inner.reset().await
        }
        fn health(&self) -> StoreHealth {
            self.inner.health()
        }
    }

    fn key(name: &str) -> RecordKey {
        RecordKey::new("test/thing", "111111111111", "us-east-1", name)
    }

    fn put(name: &str, n: i64, expect: Expect) -> Write {
        Write::Put {
            key: key(name),
            body: json!({ "n": n }),
            expect,
        }
    }

    /// The cached record's body and version, and the store's.
    async fn both(cache: &CachedStore, probe: &Probe, name: &str) -> [Option<(i64, i64)>; 2] {
        let seen = |record: Option<Record>| {
            record.map(|r| (r.body["n"].as_i64().unwrap_or(-1), r.version))
        };
        [
            seen(cache.get(&key(name)).await.expect("cache get")),
            seen(probe.inner.get(&key(name)).await.expect("store get")),
        ]
    }

    /// Each version is derived once per type (two types kept), and a write starts afresh.
    #[tokio::test]
    async fn derived_values_are_kept_per_version_and_type() {
        use std::sync::atomic::AtomicUsize;
        let cache = CachedStore::new(Probe::new(), KINDS);
        cache
            .write(vec![put("a", 1, Expect::Absent)])
            .await
            .expect("create");
        cache
            .get(&key("a"))
            .await
            .expect("get: loads the partition");
        let calls = AtomicUsize::new(0);
        let range = crate::store::Range {
            kind: "test/thing",
            account: "111111111111",
            region: "us-east-1",
            prefix: "",
            after: None,
            limit: 10,
        };
        // Three derived types: `n` as i64, as a String, and as a u8 (one type too many to keep).
        async fn derive<V: Clone + Send + Sync + 'static>(
            cache: &CachedStore,
            range: crate::store::Range<'_>,
            calls: &AtomicUsize,
            of: fn(i64) -> V,
        ) -> Vec<V> {
            crate::store::load_range_as(cache, range, |body| {
                calls.fetch_add(1, Ordering::Relaxed);
                Ok(of(body["n"].as_i64().unwrap_or(-1)))
            })
            .await
            .expect("load")
            .into_iter()
            .map(|(_, value, _)| value)
            .collect()
        }
        let as_text = |n: i64| n.to_string();
        for _ in 0..3 {
            assert_eq!(derive(&cache, range, &calls, |n| n).await, [1]);
            assert_eq!(derive(&cache, range, &calls, as_text).await, ["1"]);
        }
        assert_eq!(calls.load(Ordering::Relaxed), 2, "each type derived once");
        assert_eq!(derive(&cache, range, &calls, |n| n as u8).await, [1]);
        assert_eq!(derive(&cache, range, &calls, |n| n as u8).await, [1]);
        assert_eq!(calls.load(Ordering::Relaxed), 4, "a third type, every time");
        cache
            .write(vec![put("a", 2, Expect::Version(1))])
            .await
            .expect("update");
        assert_eq!(derive(&cache, range, &calls, as_text).await, ["2"]);
        assert_eq!(derive(&cache, range, &calls, as_text).await, ["2"]);
        assert_eq!(calls.load(Ordering::Relaxed), 5, "the new version, once");
    }

    #[tokio::test]
    async fn loaded_partitions_are_read_from_memory_and_follow_writes() {
        let probe = Probe::new();
        let cache = CachedStore::new(probe.clone(), KINDS);
        cache
            .write(vec![put("a", 1, Expect::Absent)])
            .await
            .expect("create");
        assert_eq!(
            cache.get(&key("a")).await.expect("get").map(|r| r.version),
            Some(1)
        );
        let loads = probe.reads();
        cache
            .write(vec![
                put("a", 2, Expect::Version(1)),
                put("b", 1, Expect::Any),
            ])
            .await
            .expect("update");
        let listed = cache
            .list("test/thing", "111111111111", "us-east-1", "", None, 10)
            .await
            .expect("list");
        assert_eq!(
            listed
                .iter()
                .map(|r| (r.key.name.as_str(), r.version, r.body["n"].as_i64()))
                .collect::<Vec<_>>(),
            [("a", 2, Some(2)), ("b", 1, Some(1))]
        );
        assert!(cache.get(&key("none")).await.expect("get").is_none());
        let decoded: Vec<(RecordKey, serde_json::Value, i64)> =
            crate::store::load_all(&cache, "test/thing", "111111111111", "us-east-1", "b")
                .await
                .expect("load_all");
        assert_eq!(
            decoded,
            [(key("b"), json!({ "n": 1 }), 1)],
            "lent from memory"
        );
        let page: Vec<(RecordKey, serde_json::Value, i64)> = crate::store::load_range(
            &cache,
            "test/thing",
            "111111111111",
            "us-east-1",
            "",
            Some("a"),
            1,
        )
        .await
        .expect("load_range");
        assert_eq!(
            page,
            [(key("b"), json!({ "n": 1 }), 1)],
            "a page after a name"
        );
        assert_eq!(
            probe.reads(),
            loads,
            "no read reached the store once loaded"
        );
        cache
            .write(vec![Write::Delete {
                key: key("a"),
                expect: Expect::Version(2),
            }])
            .await
            .expect("delete");
        assert_eq!(both(&cache, &probe, "a").await, [None, None]);
        // Logs and other kinds pass through.
        let log = Write::Append {
            log: key("log"),
            entry: NewEntry {
                at_millis: 1,
                meta: String::new(),
                data: vec![],
                span: None,
            },
        };
        assert_eq!(cache.write(vec![log]).await.expect("append"), [1]);
        let other = RecordKey::new("test/uncached", "1", "r", "x");
        cache
            .write(vec![Write::Put {
                key: other.clone(),
                body: json!({}),
                expect: Expect::Absent,
            }])
            .await
            .expect("put");
        assert!(cache.get(&other).await.expect("get").is_some());
        assert_eq!(probe.reads(), loads + 1);
    }

    #[tokio::test]
    async fn a_conflicting_batch_changes_nothing() {
        let probe = Probe::new();
        let cache = CachedStore::new(probe.clone(), KINDS);
        cache
            .write(vec![put("a", 1, Expect::Absent)])
            .await
            .expect("create");
        assert_eq!(both(&cache, &probe, "a").await, [Some((1, 1)); 2]);
        let refused = cache
            .write(vec![
                put("b", 1, Expect::Absent),
                put("a", 2, Expect::Version(7)),
            ])
            .await;
        assert!(matches!(refused, Err(StoreError::Conflict(k)) if k == key("a")));
        assert_eq!(both(&cache, &probe, "a").await, [Some((1, 1)); 2]);
        assert_eq!(both(&cache, &probe, "b").await, [None, None]);
    }

    #[tokio::test]
    async fn an_unproven_batch_is_read_again_from_the_store() {
        let probe = Probe::new();
        let cache = CachedStore::new(probe.clone(), KINDS);
        cache
            .write(vec![put("a", 1, Expect::Absent)])
            .await
            .expect("create");
        assert_eq!(both(&cache, &probe, "a").await, [Some((1, 1)); 2]);

        // Failed before committing: memory must not run ahead of the store.
        probe.set(Mode::FailWithoutCommit);
        let failed = cache.write(vec![put("a", 2, Expect::Version(1))]).await;
        assert!(matches!(failed, Err(StoreError::Unavailable(_))));
        assert_eq!(both(&cache, &probe, "a").await, [Some((1, 1)); 2]);

        // Committed, but the acknowledgement was lost: memory must not fall behind.
        probe.set(Mode::CommitThenFail);
        let failed = cache.write(vec![put("a", 3, Expect::Version(1))]).await;
        assert!(matches!(failed, Err(StoreError::Unavailable(_))));
        assert_eq!(both(&cache, &probe, "a").await, [Some((3, 2)); 2]);
        cache
            .write(vec![put("a", 4, Expect::Version(2))])
            .await
            .expect("conditional on the store's version");
    }

    #[tokio::test]
    async fn a_write_whose_caller_went_away_still_reaches_memory() {
        let probe = Probe::new();
        let cache = CachedStore::new(probe.clone(), KINDS);
        cache
            .write(vec![put("a", 1, Expect::Absent)])
            .await
            .expect("create");
        assert_eq!(both(&cache, &probe, "a").await, [Some((1, 1)); 2]);
        let signal = Arc::new(tokio::sync::Notify::new());
        probe.set(Mode::WaitFor(signal.clone()));
        let write = cache.write(vec![put("a", 2, Expect::Version(1))]);
        assert!(
            tokio::time::timeout(Duration::from_millis(20), write)
                .await
                .is_err(),
            "still waiting"
        );
        signal.notify_one();
        let deadline = Instant::now() + Duration::from_secs(10);
        while both(&cache, &probe, "a").await != [Some((2, 2)); 2] {
            assert!(
                Instant::now() < deadline,
                "the committed batch never reached memory"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn reset_empties_memory() {
        let probe = Probe::new();
        let cache = CachedStore::new(probe.clone(), KINDS);
        cache
            .write(vec![put("a", 1, Expect::Absent)])
            .await
            .expect("create");
        assert_eq!(both(&cache, &probe, "a").await, [Some((1, 1)); 2]);
        cache.reset().await.expect("reset");
        assert_eq!(both(&cache, &probe, "a").await, [None, None]);
        cache
            .write(vec![put("a", 5, Expect::Absent)])
            .await
            .expect("create again");
        assert_eq!(both(&cache, &probe, "a").await, [Some((5, 1)); 2]);
    }

    #[tokio::test]
    async fn another_nodes_writes_become_visible_within_the_staleness_bound() {
        let probe = Probe::new();
        let staleness = Duration::from_millis(50);
        let node = |probe: &Arc<Probe>| {
            CachedStore::shared(probe.clone(), KINDS, probe.clone(), staleness)
        };
        let (one, two) = (node(&probe), node(&probe));
        one.write(vec![put("a", 1, Expect::Absent)])
            .await
            .expect("create");
        assert_eq!(
            both(&two, &probe, "a").await,
            [Some((1, 1)); 2],
            "loaded on first read"
        );

        one.write(vec![put("a", 2, Expect::Version(1))])
            .await
            .expect("update");
        assert_eq!(
            both(&one, &probe, "a").await,
            [Some((2, 2)); 2],
            "a node reads its own writes"
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while both(&two, &probe, "a").await[0] != Some((2, 2)) {
            assert!(
                Instant::now() < deadline,
                "node two never saw node one's write"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }

        // A write prepared from a stale read conflicts, and the retry reads afresh.
        one.write(vec![put("a", 3, Expect::Version(2))])
            .await
            .expect("update");
        let stale = two.write(vec![put("a", 9, Expect::Version(2))]).await;
        assert!(matches!(stale, Err(StoreError::Conflict(_))));
        assert_eq!(both(&two, &probe, "a").await, [Some((3, 3)); 2]);
    }
}
