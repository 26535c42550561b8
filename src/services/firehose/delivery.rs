//! Delivery: one flusher task per stream, each with its own buffer and retries, so that a
//! stream whose bucket is missing never holds up another stream.
//!
//! A flusher reads its stream's buffer log after the cursor, and writes ONE object per flush
//! (when the buffered bytes reach `SizeInMBs`, or the oldest record is `IntervalInSeconds`
//! old) through the object-storage interface. Only once the object is durable does the
//! cursor move, in one store batch with the trim of the delivered entries. A crash between
//! the two delivers the same records again, under the same key: the key derives from the
//! stream, its version and the position and arrival time of its first buffered put, and a flush that
//! starts at the same record holds the same records (and maybe more), so the object is
//! overwritten, not duplicated.
//!
//! For a KinesisStreamAsSource stream, the flusher first copies new records from the
//! Kinesis shard logs into the buffer log, moving the per-shard positions in the same batch.
//!
//! A flusher works only while its node holds the stream's lease (`firehose/<account>/<region>/
//! <name>`, see [`crate::lease`]): with several nodes on one store, one node flushes a stream,
//! and another takes over from the cursor once that node is gone.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use md5::{Digest, Md5};
use time::OffsetDateTime;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::prefix;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use super::streams::{CursorRecord, StreamRecord, STREAM};
use crate::lease::Leases;
use crate::pipeline::Backoff;
use crate::services::s3::storage::{NewObject, ObjectStorage, StorageError};
use crate::store::{self, Expect, LogEntry, NewEntry, RecordKey, Store, StoreError, Write};

/// How often an idle flusher looks at its stream (deletion, a Kinesis source's new records)
/// and the supervisor at the set of streams, when nobody wakes them.
const POLL: Duration = Duration::from_secs(1);
/// Buffer entries read at a time. An entry is one put (at most 4 MiB) and reading stops once
/// the buffer size is reached, so the buffer holds at most the size plus 256 MiB.
const READ_BATCH: usize = 64;
/// Kinesis records copied into the buffer per shard at a time (records of up to 1 MiB).
const PUMP_BATCH: usize = 100;

/// The retry schedule of a failed object write or store read: 1 s doubling to at most 60 s,
/// for as long as it takes. AWS retries an S3 destination for up to 24 hours and then drops
/// the data; Sluice keeps the records (durably, in the buffer log) and keeps retrying, so an
/// acknowledged record is never dropped, and puts are refused once the buffer is full.
fn retries() -> Backoff {
    Backoff::new(Duration::from_secs(1), Duration::from_secs(60), u32::MAX)
}

/// How long delivery may fail before the flusher logs at ERROR (AWS's retry duration for S3).
const FAILING_TOO_LONG: Duration = Duration::from_secs(24 * 60 * 60);

/// The labels of Firehose's metrics: the delivery stream as `ACCOUNT:REGION:NAME`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
struct StreamLabels {
    stream: String,
}

/// Objects written per delivery stream, and failed writes, for `/_sluice/metrics`.
#[derive(Debug, Clone, Default)]
pub struct FirehoseMetrics {
    objects: Family<StreamLabels, Counter>,
    bytes: Family<StreamLabels, Counter>,
    failures: Family<StreamLabels, Counter>,
}

impl FirehoseMetrics {
    /// Adds the metrics to `registry` under `sluice_firehose_*`.
    pub fn register(&self, registry: &mut prometheus_client::registry::Registry) {
        let firehose = registry.sub_registry_with_prefix("sluice_firehose");
        firehose.register(
            "objects",
            "Objects written by delivery streams",
            self.objects.clone(),
        );
        firehose.register(
            "object_bytes",
            "Bytes of the objects written by delivery streams, after compression",
            self.bytes.clone(),
        );
        firehose.register(
            "write_failures",
            "Object writes that failed and are retried",
            self.failures.clone(),
        );
    }
}

/// Wakes flushers: one `Notify` per stream (a put wakes only its stream's flusher) and one
/// for the supervisor (a stream was created or deleted).
#[derive(Default)]
pub struct Wakers {
    streams: Mutex<HashMap<String, Arc<Notify>>>,
    manager: Notify,
}

fn waker_name(account: &str, region: &str, name: &str) -> String {
    format!("{account}/{region}/{name}")
}

impl Wakers {
    /// Wakes the flusher of one stream (or has it flush at once when it next looks).
    pub fn wake(&self, account: &str, region: &str, name: &str) {
        if let Some(notify) = self.get(account, region, name) {
            notify.notify_one();
        }
    }

    /// Wakes the supervisor, which starts and stops flushers.
    pub fn wake_manager(&self) {
        self.manager.notify_one();
    }

    fn get(&self, account: &str, region: &str, name: &str) -> Option<Arc<Notify>> {
        let streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        streams.get(&waker_name(account, region, name)).cloned()
    }

    /// Forgets the wakers of streams that are gone.
    fn retain(&self, keep: impl Fn(&str) -> bool) {
        let mut streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        streams.retain(|name, _| keep(name));
    }

    fn register(&self, account: &str, region: &str, name: &str) -> Arc<Notify> {
        let mut streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        streams
            .entry(waker_name(account, region, name))
            .or_default()
            .clone()
    }
}

/// The supervisor of the flushers: starts one per stream (each generation), forgets those
/// whose stream is gone.
pub struct Deliveries {
    store: Arc<dyn Store>,
    storage: Arc<dyn ObjectStorage>,
    wakers: Arc<Wakers>,
    metrics: FirehoseMetrics,
    leases: Arc<Leases>,
}

impl Deliveries {
    /// A supervisor over the store, the object storage and the wakers puts notify.
    pub fn new(
        store: Arc<dyn Store>,
        storage: Arc<dyn ObjectStorage>,
        wakers: Arc<Wakers>,
        metrics: FirehoseMetrics,
        leases: Arc<Leases>,
    ) -> Self {
        Self {
            store,
            storage,
            wakers,
            metrics,
            leases,
        }
    }

    /// Supervises forever. Safe to abort: flushers resume from their cursors after a restart.
    pub async fn run(self) {
        let mut running: HashMap<(RecordKey, String), JoinHandle<()>> = HashMap::new();
        loop {
            let notified = self.wakers.manager.notified();
            match self.streams().await {
                Ok(streams) => {
                    let current: HashSet<(RecordKey, String)> = streams
                        .iter()
                        .map(|(key, stream)| (key.clone(), stream.generation.clone()))
                        .collect();
                    let mut stopped = Vec::new();
                    running.retain(|id, handle| {
                        let keep = current.contains(id) && !handle.is_finished();
                        if !keep {
                            handle.abort();
                            stopped.push(lease_unit(&id.0));
                        }
                        keep
                    });
                    for unit in stopped {
                        self.leases.release(&unit).await;
                    }
                    let names: HashSet<String> = streams
                        .iter()
                        .map(|(key, _)| waker_name(&key.account, &key.region, &key.name))
                        .collect();
                    self.wakers.retain(|name| names.contains(name));
                    for (key, stream) in streams {
                        let id = (key.clone(), stream.generation.clone());
                        if running.contains_key(&id) {
                            continue;
                        }
                        let wake = self.wakers.register(&key.account, &key.region, &key.name);
                        let labels = StreamLabels {
                            stream: format!("{}:{}:{}", key.account, key.region, key.name),
                        };
                        let flusher = Flusher {
                            leases: self.leases.clone(),
                            unit: lease_unit(&key),
                            store: self.store.clone(),
                            storage: self.storage.clone(),
                            metrics: self.metrics.clone(),
                            labels,
                            wake,
                            key,
                            generation: stream.generation,
                        };
                        running.insert(id, tokio::spawn(flusher.run()));
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, "Firehose cannot list delivery streams; retrying.");
                }
            }
            let _ = tokio::time::timeout(POLL * 5, notified).await;
        }
    }

    async fn streams(&self) -> Result<Vec<(RecordKey, StreamRecord)>, StoreError> {
        let mut out = Vec::new();
        let mut after: Option<RecordKey> = None;
        loop {
            let page = self.store.scan(STREAM, after.as_ref(), 256).await?;
            let Some(last) = page.last() else {
                return Ok(out);
            };
            after = Some(last.key.clone());
            for record in page {
                match serde_json::from_value::<StreamRecord>(record.body) {
                    Ok(stream) => out.push((record.key, stream)),
                    Err(err) => {
                        tracing::warn!(stream = %record.key.name, error = %err, "Unreadable delivery stream record; not delivering it.")
                    }
                }
            }
        }
    }
}

/// The lease a stream's flusher holds while it works.
fn lease_unit(stream: &RecordKey) -> String {
    crate::lease::unit_of("firehose", stream)
}

/// Why a flusher stops.
enum Stop {
    /// The stream was deleted (or replaced by a new generation).
    Gone,
}

/// One stream's delivery task.
struct Flusher {
    leases: Arc<Leases>,
    /// The stream's lease.
    unit: String,
    store: Arc<dyn Store>,
    storage: Arc<dyn ObjectStorage>,
    metrics: FirehoseMetrics,
    labels: StreamLabels,
    wake: Arc<Notify>,
    key: RecordKey,
    generation: String,
}

/// What a flusher holds between rounds: the entries read but not delivered.
struct Buffer {
    entries: std::collections::VecDeque<LogEntry>,
    bytes: usize,
    next_read: i64,
    cursor: CursorRecord,
    cursor_version: i64,
}

impl Flusher {
    async fn run(self) {
        let mut buffer = None;
        let mut backoff = retries();
        loop {
            let notified = self.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self.round(&mut buffer).await {
                Ok(Some(wait)) => {
                    backoff = retries();
                    let _ = tokio::time::timeout(wait, notified).await;
                }
                Ok(None) => backoff = retries(),
                Err(Round::Stop(Stop::Gone)) => {
                    self.leases.release(&self.unit).await;
                    return;
                }
                Err(Round::Store(err)) => {
                    tracing::warn!(stream = %self.key.name, error = %err, "Firehose delivery cannot use the store; retrying.");
                    // Re-read everything from the cursor: what was in memory may be stale.
                    buffer = None;
                    backoff.retry().await;
                }
            }
        }
    }

    async fn stream(&self) -> Result<StreamRecord, Round> {
        match store::load::<StreamRecord>(self.store.as_ref(), &self.key).await? {
            Some((stream, _)) if stream.generation == self.generation => Ok(stream),
            _ => Err(Round::Stop(Stop::Gone)),
        }
    }

    /// One round: pump a Kinesis source, read the buffer, flush if due. Returns how long to
    /// wait before the next round (`None`: go on at once).
    async fn round(&self, buffer: &mut Option<Buffer>) -> Result<Option<Duration>, Round> {
        if !self.leases.hold(&self.unit).await {
            // Another node flushes the stream. What this one read may be stale once it takes
            // over: it reads again from the cursor then.
            *buffer = None;
            return Ok(Some(POLL));
        }
        let stream = self.stream().await?;
        let (account, region) = (&self.key.account, &self.key.region);
        let log = stream.buffer_log(account, region);
        let state = match buffer {
            Some(state) => state,
            None => {
                let (cursor, version) = store::load::<CursorRecord>(
                    self.store.as_ref(),
                    &stream.cursor_key(account, region),
                )
                .await?
                .ok_or(Round::Stop(Stop::Gone))?;
                buffer.insert(Buffer {
                    entries: Default::default(),
                    bytes: 0,
                    next_read: cursor.delivered + 1,
                    cursor,
                    cursor_version: version,
                })
            }
        };
        if stream.source.is_some() {
            self.pump(&stream, state).await?;
        }
        let size = stream.destination.size_bytes();
        while state.bytes < size {
            let entries = self
                .store
                .read_log(&log, state.next_read, READ_BATCH)
                .await?;
            let Some(last) = entries.last() else { break };
            state.next_read = last.sequence + 1;
            for entry in entries {
                state.bytes += entry.data.len();
                state.entries.push_back(entry);
            }
        }
        let Some(first) = state.entries.front() else {
            return Ok(Some(POLL));
        };
        let interval_millis = i64::from(stream.destination.interval_seconds) * 1000;
        let due_at = first.at_millis + interval_millis;
        let now = now_millis();
        if state.bytes < size && now < due_at {
            let wait = Duration::from_millis((due_at - now) as u64).min(POLL);
            return Ok(Some(wait));
        }
        self.flush(state).await?;
        Ok(None)
    }

    /// Writes the first object's worth of buffered records, retrying until it is stored, then
    /// moves the cursor.
    async fn flush(&self, state: &mut Buffer) -> Result<(), Round> {
        // Entries (one per put) up to and including the one that reaches the size, so an
        // object holds at most SizeInMBs plus one put (4 MiB); a flush that starts at the same
        // entry always cuts at the same place or later.
        let mut stream = self.stream().await?;
        let size = stream.destination.size_bytes();
        let mut count = 0;
        let mut bytes = 0;
        for entry in &state.entries {
            count += 1;
            bytes += entry.data.len();
            if bytes >= size {
                break;
            }
        }
        let mut body = Vec::with_capacity(bytes);
        for entry in state.entries.iter().take(count) {
            body.extend_from_slice(&entry.data);
        }
        let (first_sequence, first_at) = match state.entries.front() {
            Some(first) => (first.sequence, first.at_millis),
            None => return Ok(()),
        };
        let last_sequence = state.entries[count - 1].sequence;
        let mut backoff = retries();
        let mut failing_since = None;
        loop {
            let key = object_key(&stream, first_sequence, first_at)?;
            let object = encode(&stream.destination.compression, &body).await;
            let result = match object {
                Ok(object) => self
                    .storage
                    .put_object(
                        stream.bucket(),
                        &key,
                        NewObject::default(),
                        &mut object.as_slice(),
                    )
                    .await
                    .map(|info| info.size),
                Err(err) => Err(StorageError::Io(err)),
            };
            match result {
                Ok(size) => {
                    self.metrics.objects.get_or_create(&self.labels).inc();
                    self.metrics.bytes.get_or_create(&self.labels).inc_by(size);
                    break;
                }
                Err(err) => {
                    self.metrics.failures.get_or_create(&self.labels).inc();
                    let attempt = backoff.attempts() + 1;
                    let since = *failing_since.get_or_insert_with(std::time::Instant::now);
                    if since.elapsed() >= FAILING_TOO_LONG {
                        tracing::error!(stream = %stream.name, bucket = stream.bucket(), error = %err, attempt, "Firehose delivery has failed for over 24 hours; its records are kept and retried.");
                    } else {
                        tracing::warn!(stream = %stream.name, bucket = stream.bucket(), error = %err, attempt, "Firehose delivery to S3 failed; retrying.");
                    }
                    backoff.retry().await;
                    // The stream may have been deleted or pointed at another bucket meanwhile.
                    stream = self.stream().await?;
                }
            }
        }
        let mut cursor = state.cursor.clone();
        cursor.delivered = last_sequence;
        let (account, region) = (&self.key.account, &self.key.region);
        let result = self
            .store
            .write(vec![
                store::put(
                    stream.cursor_key(account, region),
                    &cursor,
                    Expect::Version(state.cursor_version),
                )?,
                // The last delivered entry stays, so the log's numbering carries on from it.
                Write::TrimLog {
                    log: stream.buffer_log(account, region),
                    before: last_sequence,
                },
            ])
            .await;
        match result {
            Ok(_) => {}
            Err(StoreError::Conflict(_)) => return Err(Round::Stop(Stop::Gone)),
            Err(err) => return Err(err.into()),
        }
        state.cursor = cursor;
        state.cursor_version += 1;
        for _ in 0..count {
            if let Some(entry) = state.entries.pop_front() {
                state.bytes -= entry.data.len();
            }
        }
        tracing::debug!(stream = %stream.name, records = count, bytes, "Firehose delivered an object.");
        Ok(())
    }

    /// Copies new records of the Kinesis source into the buffer, moving the shard positions
    /// in the same batch.
    async fn pump(&self, stream: &StreamRecord, state: &mut Buffer) -> Result<(), Round> {
        let Some(source) = &stream.source else {
            return Ok(());
        };
        let Some(shards) = crate::services::kinesis::shard_logs(
            self.store.as_ref(),
            &source.account,
            &source.region,
            &source.stream,
        )
        .await?
        else {
            return Ok(());
        };
        let (account, region) = (&self.key.account, &self.key.region);
        let log = stream.buffer_log(account, region);
        let mut cursor = state.cursor.clone();
        let mut batch = Vec::new();
        for (shard_id, shard_log) in shards {
            let from = cursor.shards.get(&shard_id).copied().unwrap_or(0) + 1;
            let entries = self.store.read_log(&shard_log, from, PUMP_BATCH).await?;
            let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
                continue;
            };
            cursor.shards.insert(shard_id, last.sequence);
            // One buffer entry per shard read, as PutRecordBatch writes one per call.
            let at_millis = first.at_millis;
            let count = entries.len();
            let data: Vec<u8> = entries.into_iter().flat_map(|entry| entry.data).collect();
            batch.push(Write::Append {
                log: log.clone(),
                entry: NewEntry {
                    at_millis,
                    meta: count.to_string(),
                    data,
                    span: None,
                },
            });
        }
        if batch.is_empty() {
            return Ok(());
        }
        batch.push(store::put(
            stream.cursor_key(account, region),
            &cursor,
            Expect::Version(state.cursor_version),
        )?);
        match self.store.write(batch).await {
            Ok(_) => {}
            Err(StoreError::Conflict(_)) => return Err(Round::Stop(Stop::Gone)),
            Err(err) => return Err(err.into()),
        }
        state.cursor = cursor;
        state.cursor_version += 1;
        Ok(())
    }
}

/// How a round ends early.
enum Round {
    Stop(Stop),
    Store(StoreError),
}

impl From<StoreError> for Round {
    fn from(err: StoreError) -> Self {
        Round::Store(err)
    }
}

fn now_millis() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// The object's bytes: the records concatenated, gzipped when the stream says so.
async fn encode(compression: &str, body: &[u8]) -> std::io::Result<Vec<u8>> {
    if compression != "GZIP" {
        return Ok(body.to_vec());
    }
    let body = body.to_vec();
    tokio::task::spawn_blocking(move || {
        use std::io::Write as _;
        let mut encoder = flate2::write::GzEncoder::new(
            Vec::with_capacity(body.len() / 4),
            flate2::Compression::default(),
        );
        encoder.write_all(&body)?;
        encoder.finish()
    })
    .await
    .map_err(std::io::Error::other)?
}

/// AWS's default object name, `<prefix><name>-<version>-YYYY-MM-DD-HH-MM-SS-<id>[.gz]`,
/// with the time of the first put (UTC) and an id derived from the stream and the first
/// put's position, so that delivering the same records again overwrites the same object.
fn object_key(stream: &StreamRecord, first_sequence: i64, first_at: i64) -> Result<String, Round> {
    let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(first_at) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let seed = format!("{}/{}/{first_sequence}", stream.arn, stream.generation);
    let digest: [u8; 16] = Md5::digest(seed.as_bytes()).into();
    let id = uuid::Uuid::from_bytes(digest).hyphenated().to_string();
    let prefixes = stream.destination.prefixes().map_err(|err| {
        Round::Store(StoreError::Unavailable(format!(
            "stored prefix no longer valid: {err}"
        )))
    })?;
    let extension = match (
        &stream.destination.file_extension,
        stream.destination.compression.as_str(),
    ) {
        (Some(extension), _) => extension.as_str(),
        (None, "GZIP") => ".gz",
        (None, _) => "",
    };
    Ok(format!(
        "{}{}-{}-{}-{id}{extension}",
        prefixes.evaluate(at, seed.as_bytes()),
        stream.name,
        stream.version,
        prefix::key_time(at),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream() -> StreamRecord {
        serde_json::from_value(serde_json::json!({
            "name": "s", "arn": "arn:aws:firehose:us-east-1:111111111111:deliverystream/s",
            "stream_type": "DirectPut", "generation": "g1", "version": 3,
            "created_millis": 0, "updated_millis": 0,
            "destination": {
                "role_arn": "r", "bucket_arn": "arn:aws:s3:::b", "prefix": null,
                "error_output_prefix": null, "size_mbs": 5, "interval_seconds": 300,
                "compression": "GZIP", "file_extension": null, "cloudwatch_logging": null
            }
        }))
        .expect("stream record")
    }

    fn key(stream: &StreamRecord, sequence: i64, at: i64) -> String {
        match object_key(stream, sequence, at) {
            Ok(key) => key,
            Err(_) => panic!("no key"),
        }
    }

    #[test]
    fn keys_derive_from_the_stream_and_the_first_record() {
        let stream = stream();
        // 2021-01-02 03:04:05.678 UTC
        let at = 1_609_556_645_678;
        let first = key(&stream, 7, at);
        assert!(
            first.starts_with("2021/01/02/03/s-3-2021-01-02-03-04-05-"),
            "{first}"
        );
        assert!(first.ends_with(".gz"), "{first}");
        // A redelivery after a crash starts at the same record: the same key.
        assert_eq!(first, key(&stream, 7, at));
        assert_ne!(first, key(&stream, 8, at));
        let mut recreated = stream.clone();
        recreated.generation = "g2".to_owned();
        assert_ne!(first, key(&recreated, 7, at));
    }

    #[tokio::test(start_paused = true)]
    async fn retries_back_off_to_a_minute_without_end() {
        let mut backoff = retries();
        let started = tokio::time::Instant::now();
        for _ in 0..100 {
            assert!(backoff.retry().await, "never gives up");
        }
        // 1 + 2 + 4 + 8 + 16 + 32 seconds, then a minute each.
        assert_eq!(started.elapsed(), Duration::from_secs(63 + 94 * 60));
    }
}
