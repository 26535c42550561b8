//! Reading log events back by time: a k-way merge over stored batches, through the store's
//! time index.
//!
//! Events are stored one log entry per PutLogEvents batch. Inside a batch they are in time
//! order, but batches overlap in time (a producer may send an old batch after a newer one). The
//! [`Merger`] walks each stream's entries in the order of their event-time span (first time
//! going forward, last time going backward), keeps the events of the entries loaded so far in a
//! heap, and gives out the heap's top only once no entry still unread can hold an event that
//! comes before it. It reads only entries overlapping the requested window and stops as soon as
//! the caller has what it needs, so the memory of a request follows its limit, not the stream.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::LogsError;
use crate::store::{EntrySpan, LogEntry, RecordKey, Store, StoreError, TimeOrder};

/// PutLogEvents refuses a batch whose events span more than this, so an entry holding an event
/// at time `t` starts no earlier than `t - MAX_BATCH_SPAN_MILLIS`: the bound that keeps a
/// forward walk from starting at the beginning of the stream.
pub(super) const MAX_BATCH_SPAN_MILLIS: i64 = 24 * 60 * 60 * 1000;

/// Positions within a stored batch: a batch holds at most 10,000 events, so
/// `entry sequence * 100_000 + index` orders events as they were accepted.
pub(super) const EVENTS_PER_ENTRY: i64 = 100_000;

/// Entry spans read from the time index at a time, shared by all the streams of one read.
/// Spans are a few integers each; an entry's payload is fetched only when the merge needs it.
const SPANS_PER_READ: usize = 64;

/// Events of one PutLogEvents call are stored as ONE log entry: the messages concatenated as
/// the payload, and this header (each event's timestamp, id and message length) as metadata.
/// One row per batch instead of one per event is what keeps the write path cheap.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct BatchHeader {
    /// `(timestamp, id, message length in bytes)` per event, in batch order.
    pub events: Vec<(i64, String, usize)>,
}

/// One event read back, with what the outputs need.
#[derive(Debug, Clone)]
pub(super) struct StoredEvent {
    pub stream: Arc<str>,
    pub timestamp: i64,
    pub ingestion_time: i64,
    pub id: String,
    /// `entry sequence * EVENTS_PER_ENTRY + index`: orders events of one timestamp.
    pub sequence: i64,
    pub message: String,
}

/// The events of one stored batch.
pub(super) fn unpack(stream: &Arc<str>, entry: &LogEntry) -> Result<Vec<StoredEvent>, LogsError> {
    let header: BatchHeader = serde_json::from_str(&entry.meta)
        .map_err(|err| StoreError::Unavailable(format!("corrupt log event batch: {err}")))?;
    let mut offset = 0;
    let mut events = Vec::with_capacity(header.events.len());
    for (index, (timestamp, id, length)) in header.events.into_iter().enumerate() {
        let bytes = entry.data.get(offset..offset + length).ok_or_else(|| {
            StoreError::Unavailable("corrupt log event batch: short payload".to_owned())
        })?;
        offset += length;
        events.push(StoredEvent {
            stream: stream.clone(),
            timestamp,
            ingestion_time: entry.at_millis,
            id,
            sequence: entry.sequence * EVENTS_PER_ENTRY + index as i64,
            message: String::from_utf8_lossy(bytes).into_owned(),
        });
    }
    Ok(events)
}

/// One stream to read.
pub(super) struct Source {
    /// The stream's events log.
    pub log: RecordKey,
    /// Its name, given to every event read from it.
    pub stream: Arc<str>,
    /// Only events strictly past this `(timestamp, sequence)` in the walk's direction (a
    /// paging position); `None` for all.
    pub past: Option<(i64, i64)>,
}

/// What a read asks for.
pub(super) struct Query<'a> {
    /// Forward (oldest first) or backward (newest first).
    pub order: TimeOrder,
    /// Event timestamps kept, both ends inclusive.
    pub window: (i64, i64),
    /// Further events to leave out (a filter pattern, retention); they cost no memory.
    pub keep: &'a (dyn Fn(&StoredEvent) -> bool + Sync),
    /// The most events the caller may take: no loaded batch keeps more than this.
    pub cap: usize,
}

/// Where an event goes in the walk: `(timestamp, stream rank, sequence)`, negated going
/// backward so that "smaller" always means "earlier in the walk".
type WalkKey = (i64, i64, i64);

fn walk_key(order: TimeOrder, timestamp: i64, rank: usize, sequence: i64) -> WalkKey {
    let key = (timestamp, rank as i64, sequence);
    match order {
        TimeOrder::Forward => key,
        TimeOrder::Backward => (
            timestamp.saturating_neg(),
            -key.1,
            sequence.saturating_neg(),
        ),
    }
}

/// The loaded, not yet given out events of one entry, in walk order (next at the end).
struct Loaded {
    key: WalkKey,
    events: Vec<StoredEvent>,
    rank: usize,
}

impl PartialEq for Loaded {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}
impl Eq for Loaded {}
impl PartialOrd for Loaded {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Loaded {
    // BinaryHeap is a max-heap: the smallest walk key must come out first.
    fn cmp(&self, other: &Self) -> Ordering {
        other.key.cmp(&self.key)
    }
}

struct StreamState {
    source: Source,
    /// The store position of the next read.
    from: (i64, i64),
    /// Spans of the entries read from the index, not yet loaded into the heap.
    ahead: VecDeque<EntrySpan>,
    done: bool,
}

/// The merge over one or more streams; see the module documentation.
pub(super) struct Merger<'a> {
    store: &'a dyn Store,
    query: Query<'a>,
    streams: Vec<StreamState>,
    heap: BinaryHeap<Loaded>,
}

impl<'a> Merger<'a> {
    /// A read of `sources` (in stream-name order, which breaks ties of timestamp).
    pub fn new(store: &'a dyn Store, sources: Vec<Source>, query: Query<'a>) -> Self {
        let streams = sources
            .into_iter()
            .map(|source| {
                // Start where an entry holding the first wanted event can start at the
                // earliest (forward), or end at the latest (backward).
                let from = match query.order {
                    TimeOrder::Forward => {
                        let low = source
                            .past
                            .map_or(query.window.0, |p| p.0.max(query.window.0));
                        (low.saturating_sub(MAX_BATCH_SPAN_MILLIS), i64::MIN)
                    }
                    TimeOrder::Backward => {
                        let high = source
                            .past
                            .map_or(query.window.1, |p| p.0.min(query.window.1));
                        (high.saturating_add(MAX_BATCH_SPAN_MILLIS), i64::MAX)
                    }
                };
                StreamState {
                    source,
                    from,
                    ahead: VecDeque::new(),
                    done: false,
                }
            })
            .collect();
        Self {
            store,
            query,
            streams,
            heap: BinaryHeap::new(),
        }
    }

    /// The next event in the walk, or `None` at the end.
    pub async fn next(&mut self) -> Result<Option<StoredEvent>, LogsError> {
        loop {
            // The earliest walk key any unloaded entry could hold, and whose entry it is.
            let mut frontier: Option<(WalkKey, usize)> = None;
            for rank in 0..self.streams.len() {
                if let Some(key) = self.peek(rank).await? {
                    if frontier.is_none_or(|(f, _)| key < f) {
                        frontier = Some((key, rank));
                    }
                }
            }
            let top_first = match (self.heap.peek(), frontier) {
                (Some(top), Some((bound, _))) => top.key < bound,
                (Some(_), None) => true,
                (None, _) => false,
            };
            if top_first {
                let Some(mut loaded) = self.heap.pop() else {
                    continue;
                };
                let Some(event) = loaded.events.pop() else {
                    continue;
                };
                if let Some(next) = loaded.events.last() {
                    loaded.key =
                        walk_key(self.query.order, next.timestamp, loaded.rank, next.sequence);
                    self.heap.push(loaded);
                }
                return Ok(Some(event));
            }
            match frontier {
                Some((_, rank)) => self.load(rank).await?,
                None => return Ok(None),
            }
        }
    }

    /// The walk key bounding the events of a stream's next unloaded entry, reading ahead from
    /// the store when needed.
    async fn peek(&mut self, rank: usize) -> Result<Option<WalkKey>, LogsError> {
        let order = self.query.order;
        let per_read = (SPANS_PER_READ / self.streams.len().max(1)).max(4);
        let state = &mut self.streams[rank];
        if state.ahead.is_empty() && !state.done {
            let entries = self
                .store
                .read_log_spans(
                    &state.source.log,
                    order,
                    state.from,
                    self.query.window,
                    per_read,
                )
                .await?;
            if let Some(last) = entries.last() {
                state.from = match order {
                    TimeOrder::Forward => (last.span.0, last.sequence + 1),
                    TimeOrder::Backward => (last.span.1, last.sequence - 1),
                };
            }
            state.done = entries.len() < per_read;
            state.ahead.extend(entries);
        }
        Ok(state.ahead.front().map(|entry| match order {
            // No event of the entry comes before its first time and its first position.
            TimeOrder::Forward => {
                walk_key(order, entry.span.0, rank, entry.sequence * EVENTS_PER_ENTRY)
            }
            TimeOrder::Backward => walk_key(
                order,
                entry.span.1,
                rank,
                entry.sequence * EVENTS_PER_ENTRY + EVENTS_PER_ENTRY - 1,
            ),
        }))
    }

    /// Moves a stream's next entry into the heap, keeping only the events the query wants.
    async fn load(&mut self, rank: usize) -> Result<(), LogsError> {
        let Some(next) = self.streams[rank].ahead.pop_front() else {
            return Ok(());
        };
        let log = &self.streams[rank].source.log;
        let Some(entry) = self
            .store
            .read_log(log, next.sequence, 1)
            .await?
            .into_iter()
            .next()
            .filter(|entry| entry.sequence == next.sequence)
        else {
            // Removed since its span was read (retention): nothing of it to give.
            return Ok(());
        };
        let order = self.query.order;
        let (low, high) = self.query.window;
        let past = self.streams[rank].source.past;
        let wanted = |e: &StoredEvent| {
            let in_window = e.timestamp >= low && e.timestamp <= high;
            let beyond = past.is_none_or(|p| match order {
                TimeOrder::Forward => (e.timestamp, e.sequence) > p,
                TimeOrder::Backward => (e.timestamp, e.sequence) < p,
            });
            in_window && beyond && (self.query.keep)(e)
        };
        let mut events: Vec<StoredEvent> = unpack(&self.streams[rank].source.stream, &entry)?
            .into_iter()
            .filter(wanted)
            .collect();
        // Events of a batch are in time order; a batch never gives out more than the cap, so
        // keep only the cap's worth nearest the walk's start.
        match order {
            TimeOrder::Forward => {
                events.truncate(self.query.cap);
                events.reverse();
            }
            TimeOrder::Backward => {
                let skip = events.len().saturating_sub(self.query.cap);
                events.drain(..skip);
            }
        }
        if let Some(next) = events.last() {
            let key = walk_key(order, next.timestamp, rank, next.sequence);
            self.heap.push(Loaded { key, events, rank });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;
    use crate::store::{NewEntry, Write};

    fn log(name: &str) -> RecordKey {
        RecordKey::new("logs/events", "1", "r", name)
    }

    /// Appends one batch of `(timestamp, message)` events, as PutLogEvents stores them.
    async fn batch(store: &MemoryStore, stream: &str, events: &[(i64, &str)]) {
        let header = BatchHeader {
            events: events
                .iter()
                .map(|(t, m)| (*t, format!("id-{m}"), m.len()))
                .collect(),
        };
        let data = events.iter().flat_map(|(_, m)| m.bytes()).collect();
        let span = (events[0].0, events[events.len() - 1].0);
        store
            .write(vec![Write::Append {
                log: log(stream),
                entry: NewEntry {
                    at_millis: 0,
                    meta: serde_json::to_string(&header).expect("header"),
                    data,
                    span: Some(span),
                },
            }])
            .await
            .expect("append");
    }

    fn keep_all(_: &StoredEvent) -> bool {
        true
    }

    async fn read(
        store: &MemoryStore,
        streams: &[&str],
        order: TimeOrder,
        window: (i64, i64),
        past: Option<(i64, i64)>,
        take: usize,
    ) -> Vec<String> {
        let sources = streams
            .iter()
            .map(|s| Source {
                log: log(s),
                stream: Arc::from(*s),
                past,
            })
            .collect();
        let query = Query {
            order,
            window,
            keep: &keep_all,
            cap: take,
        };
        let mut merger = Merger::new(store, sources, query);
        let mut out = Vec::new();
        while out.len() < take {
            match merger.next().await.expect("next") {
                Some(event) => out.push(event.message),
                None => break,
            }
        }
        out
    }

    /// Everything the merge reads, compared with reading and sorting whole streams.
    async fn sorted(
        store: &MemoryStore,
        streams: &[&str],
        window: (i64, i64),
    ) -> Vec<(i64, String, i64, String)> {
        let mut all = Vec::new();
        for s in streams {
            for entry in store.read_log(&log(s), 1, usize::MAX).await.expect("read") {
                for e in unpack(&Arc::from(*s), &entry).expect("unpack") {
                    if e.timestamp >= window.0 && e.timestamp <= window.1 {
                        all.push((e.timestamp, e.stream.to_string(), e.sequence, e.message));
                    }
                }
            }
        }
        all.sort();
        all
    }

    const ALL: (i64, i64) = (i64::MIN, i64::MAX);

    #[tokio::test]
    async fn overlapping_batches_come_out_in_time_order_both_ways() {
        let store = MemoryStore::default();
        batch(&store, "s", &[(10, "a10"), (40, "a40"), (70, "a70")]).await;
        batch(&store, "s", &[(5, "b5"), (40, "b40"), (90, "b90")]).await;
        batch(&store, "s", &[(50, "c50")]).await;
        batch(&store, "s", &[(1, "d1"), (2, "d2")]).await;
        let forward = read(&store, &["s"], TimeOrder::Forward, ALL, None, 100).await;
        assert_eq!(
            forward,
            ["d1", "d2", "b5", "a10", "a40", "b40", "c50", "a70", "b90"],
            "ties on a timestamp go by batch order"
        );
        let mut backward = read(&store, &["s"], TimeOrder::Backward, ALL, None, 100).await;
        backward.reverse();
        assert_eq!(backward, forward);
        let expected: Vec<String> = sorted(&store, &["s"], ALL)
            .await
            .into_iter()
            .map(|e| e.3)
            .collect();
        assert_eq!(forward, expected);
    }

    #[tokio::test]
    async fn windows_positions_and_limits() {
        let store = MemoryStore::default();
        batch(&store, "s", &[(10, "a10"), (40, "a40"), (70, "a70")]).await;
        batch(&store, "s", &[(5, "b5"), (40, "b40"), (90, "b90")]).await;
        assert_eq!(
            read(&store, &["s"], TimeOrder::Forward, (10, 69), None, 100).await,
            ["a10", "a40", "b40"]
        );
        assert_eq!(
            read(&store, &["s"], TimeOrder::Forward, ALL, None, 2).await,
            ["b5", "a10"]
        );
        assert_eq!(
            read(&store, &["s"], TimeOrder::Backward, ALL, None, 2).await,
            ["b90", "a70"]
        );
        // Past a position: a40 is (40, 100_001), b40 is (40, 200_001).
        assert_eq!(
            read(
                &store,
                &["s"],
                TimeOrder::Forward,
                ALL,
                Some((40, 100_001)),
                100
            )
            .await,
            ["b40", "a70", "b90"]
        );
        assert_eq!(
            read(
                &store,
                &["s"],
                TimeOrder::Backward,
                ALL,
                Some((40, 200_001)),
                100
            )
            .await,
            ["a40", "a10", "b5"]
        );
    }

    #[tokio::test]
    async fn streams_merge_with_ties_broken_by_stream_name() {
        let store = MemoryStore::default();
        batch(&store, "a", &[(10, "a10"), (30, "a30")]).await;
        batch(&store, "b", &[(10, "b10"), (20, "b20")]).await;
        batch(&store, "a", &[(20, "a20")]).await;
        assert_eq!(
            read(&store, &["a", "b"], TimeOrder::Forward, ALL, None, 100).await,
            ["a10", "b10", "a20", "b20", "a30"]
        );
    }

    #[tokio::test]
    async fn matches_a_full_sort_on_many_random_batches() {
        // A fixed linear congruential sequence: overlapping batches of varied spans.
        let store = MemoryStore::default();
        let mut state: u64 = 42;
        let mut next = |bound: u64| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            (state >> 33) % bound
        };
        for n in 0..200 {
            let stream = ["x", "y", "z"][next(3) as usize];
            let start = next(1_000) as i64;
            let count = 1 + next(6) as usize;
            let mut events = Vec::new();
            let mut t = start;
            for i in 0..count {
                t += next(50) as i64;
                events.push((t, i));
            }
            let owned: Vec<(i64, String)> = events
                .iter()
                .map(|(t, i)| (*t, format!("{n}-{i}")))
                .collect();
            let borrowed: Vec<(i64, &str)> = owned.iter().map(|(t, m)| (*t, m.as_str())).collect();
            batch(&store, stream, &borrowed).await;
        }
        for window in [ALL, (300, 700), (0, 0)] {
            let expected: Vec<String> = sorted(&store, &["x", "y", "z"], window)
                .await
                .into_iter()
                .map(|e| e.3)
                .collect();
            let forward = read(
                &store,
                &["x", "y", "z"],
                TimeOrder::Forward,
                window,
                None,
                5_000,
            )
            .await;
            assert_eq!(forward, expected);
            for stream in ["x", "y", "z"] {
                let expected: Vec<String> = sorted(&store, &[stream], window)
                    .await
                    .into_iter()
                    .map(|e| e.3)
                    .collect();
                let mut backward =
                    read(&store, &[stream], TimeOrder::Backward, window, None, 5_000).await;
                backward.reverse();
                assert_eq!(backward, expected);
            }
        }
    }
}
