//! The data plane's one delivery mechanism, shared by every service that moves data.
//!
//! A service that accepts data (PutLogEvents today; PutAuditEvents and AppFabric ingestion
//! next) writes, in the *same* atomic store batch as the data itself, one outbox entry per
//! delivery: where it goes ([`Delivery`]) and the bytes to send. The [`Pipeline`] worker reads
//! the outbox in order, encodes each entry (gzip for CloudWatch Logs), hands it to the target
//! through a [`StreamSink`], and only then advances its cursor. A crash anywhere in between
//! loses nothing: on restart the worker resumes from the cursor, so delivery is at least once.
//! Entries that keep failing go to a dead-letter log with the reason, never silently away.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::store::{Expect, NewEntry, RecordKey, Store, StoreError, Write};

/// Log kind of the outbox.
const OUTBOX: &str = "pipeline/outbox";
/// Record kind of the worker's cursor.
const CURSOR: &str = "pipeline/cursor";
/// Log kind of deliveries given up on.
const DEAD_LETTERS: &str = "pipeline/dead-letters";
/// Attempts before a failing entry is moved to the dead letters (backoff doubles from 100 ms,
/// so about 50 seconds in all). A missing target is dead-lettered at once.
const MAX_ATTEMPTS: u32 = 10;
/// Entries read from the outbox at a time.
const BATCH: usize = 256;
/// The most deliveries that may wait in the outbox. Beyond it, writes that would queue more
/// are refused with the service's "unavailable, retry" error: the outbox never grows without
/// end when a target is down or slow, and nothing already acknowledged is dropped.
pub const MAX_PENDING_DELIVERIES: i64 = 100_000;
/// Dead letters kept: the newest 10,000, none older than 14 days. Older ones are dropped,
/// counted in the `pipeline/dead-letters-dropped` record and logged at ERROR.
pub const MAX_DEAD_LETTERS: i64 = 10_000;
/// How long a dead letter is kept, milliseconds.
pub const DEAD_LETTER_LIFETIME_MILLIS: i64 = 14 * 24 * 60 * 60 * 1000;
/// Record kind of the count of dead letters dropped.
const DEAD_LETTERS_DROPPED: &str = "pipeline/dead-letters-dropped";
/// How often the worker looks at the outbox when nobody wakes it.
const POLL: Duration = Duration::from_secs(1);

/// Where a delivery goes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Target {
    /// A stream of Sluice's own Kinesis Data Streams.
    KinesisStream {
        /// The stream owner's account.
        account: String,
        /// The stream's region.
        region: String,
        /// The stream name.
        stream: String,
    },
}

/// How the bytes are encoded on the way out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Encoding {
    /// As they are.
    Identity,
    /// gzip, as CloudWatch Logs subscriptions send their records.
    Gzip,
}

/// One unit of delivery work, stored in the outbox beside the bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// Where it goes.
    pub target: Target,
    /// The record's partition key at the target.
    pub partition_key: String,
    /// The encoding applied before sending.
    pub encoding: Encoding,
    /// Who writes. Entries written before this member existed have none and are treated as
    /// written by the target's own account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<Sender>,
}

/// The principal a delivery writes as. A sink whose target belongs to another account checks
/// the target's resource policy for it at every delivery, since the policy can change after
/// the delivery was configured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sender {
    /// The account that configured the delivery: a destination's or a subscription filter's.
    pub account: String,
    /// The IAM role the delivery assumes (`roleArn`), when one was given.
    pub role_arn: Option<String>,
}

/// The outbox entry for a delivery, to be written in the batch that accepts the data. Wake
/// the worker (`Deps::delivery`) once the batch has committed.
pub fn enqueue(delivery: &Delivery, body: Vec<u8>, at_millis: i64) -> Result<Write, StoreError> {
    let meta =
        serde_json::to_string(delivery).map_err(|err| StoreError::Unavailable(err.to_string()))?;
    Ok(Write::Append {
        log: outbox(),
        entry: NewEntry {
            at_millis,
            meta,
            data: body,
            span: None,
        },
    })
}

fn outbox() -> RecordKey {
    RecordKey::new(OUTBOX, "", "", "outbox")
}

fn cursor_key() -> RecordKey {
    RecordKey::new(CURSOR, "", "", "outbox")
}

fn dead_letters() -> RecordKey {
    RecordKey::new(DEAD_LETTERS, "", "", "dead-letters")
}

fn dropped_key() -> RecordKey {
    RecordKey::new(DEAD_LETTERS_DROPPED, "", "", "dead-letters")
}

/// How many deliveries wait in the outbox: accepted, not yet delivered or dead-lettered.
/// Writers compare it with [`MAX_PENDING_DELIVERIES`] before a batch that would enqueue.
pub async fn pending(store: &dyn Store) -> Result<i64, StoreError> {
    let cursor = match store.get(&cursor_key()).await? {
        Some(record) => delivered(&record.body),
        None => 0,
    };
    Ok((store.log_tail(&outbox()).await? - cursor).max(0))
}

/// How many dead letters were dropped to keep their log bounded, since the store was made.
pub async fn dead_letters_dropped(store: &dyn Store) -> Result<i64, StoreError> {
    Ok(store
        .get(&dropped_key())
        .await?
        .and_then(|record| {
            record
                .body
                .get("dropped")
                .and_then(serde_json::Value::as_i64)
        })
        .unwrap_or(0))
}

/// Drops dead letters older than their lifetime, at most `limit`; returns how many went.
pub async fn expire_dead_letters(
    store: &dyn Store,
    now: i64,
    limit: usize,
) -> Result<usize, StoreError> {
    let removed = store
        .expire_log(
            &dead_letters(),
            now - DEAD_LETTER_LIFETIME_MILLIS,
            i64::MIN,
            limit,
        )
        .await?;
    if removed > 0 {
        let dropped = dead_letters_dropped(store).await? + removed as i64;
        store
            .write(vec![Write::Put {
                key: dropped_key(),
                body: serde_json::json!({ "dropped": dropped }),
                expect: Expect::Any,
            }])
            .await?;
        tracing::error!(
            removed,
            dropped_in_all = dropped,
            "Dead letters older than 14 days were dropped."
        );
    }
    Ok(removed)
}

fn delivered(body: &serde_json::Value) -> i64 {
    body.get("delivered")
        .and_then(serde_json::Value::as_i64)
        .unwrap_or(0)
}

/// Why a delivery failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DeliveryError {
    /// The target does not exist: dead-lettered at once.
    #[error("target not found: {0}")]
    NotFound(String),
    /// The target's owner does not allow the sender to write: dead-lettered at once.
    #[error("delivery refused: {0}")]
    Denied(String),
    /// The store or the target failed; retried.
    #[error("delivery failed: {0}")]
    Failed(String),
}

/// Writes records into streams. Implemented over Sluice's own Kinesis store
/// (`services::kinesis::LocalStreams`); a real Kinesis endpoint is the other implementation
/// this interface is for.
#[async_trait]
pub trait StreamSink: Send + Sync + 'static {
    /// Puts one record as `sender` (`None`: the stream's own account); returns once it is
    /// durable at the target, or [`DeliveryError::Denied`] when the stream is another
    /// account's and its resource policy does not let the sender write.
    #[allow(clippy::too_many_arguments)]
    async fn put_record(
        &self,
        account: &str,
        region: &str,
        stream: &str,
        partition_key: &str,
        data: Vec<u8>,
        at_millis: i64,
        sender: Option<&Sender>,
    ) -> Result<(), DeliveryError>;
}

/// The delivery worker.
pub struct Pipeline {
    store: Arc<dyn Store>,
    sink: Arc<dyn StreamSink>,
    wake: Arc<Notify>,
}

impl Pipeline {
    /// A worker over a store and a sink; `wake` is notified by writers after they commit.
    pub fn new(store: Arc<dyn Store>, sink: Arc<dyn StreamSink>, wake: Arc<Notify>) -> Self {
        Self { store, sink, wake }
    }

    /// Delivers forever. Safe to abort at any point: what was not yet recorded as delivered is
    /// delivered again after a restart.
    pub async fn run(self) {
        loop {
            match self.drain().await {
                Ok(0) => {
                    let _ = tokio::time::timeout(POLL, self.wake.notified()).await;
                }
                Ok(_) => {}
                Err(err) => {
                    tracing::error!(error = %err, "Delivery worker cannot read the outbox; retrying.");
                    tokio::time::sleep(POLL).await;
                }
            }
        }
    }

    /// Delivers what is in the outbox now; returns how many entries were handled.
    pub async fn drain(&self) -> Result<usize, StoreError> {
        let cursor = match self.store.get(&cursor_key()).await? {
            Some(record) => delivered(&record.body),
            None => 0,
        };
        let entries = self.store.read_log(&outbox(), cursor + 1, BATCH).await?;
        for entry in &entries {
            self.deliver_with_retries(entry).await?;
            // The cursor moves and delivered entries go in one batch; the last delivered entry
            // stays, so the outbox's numbering carries on from it.
            let body = serde_json::json!({ "delivered": entry.sequence });
            self.store
                .write(vec![
                    Write::Put {
                        key: cursor_key(),
                        body,
                        expect: Expect::Any,
                    },
                    Write::TrimLog {
                        log: outbox(),
                        before: entry.sequence,
                    },
                ])
                .await?;
        }
        Ok(entries.len())
    }

    async fn deliver_with_retries(&self, entry: &crate::store::LogEntry) -> Result<(), StoreError> {
        let delivery: Delivery = match serde_json::from_str(&entry.meta) {
            Ok(delivery) => delivery,
            Err(err) => {
                return self
                    .dead_letter(entry, &format!("unreadable delivery: {err}"))
                    .await
            }
        };
        let data = match encode(delivery.encoding, &entry.data) {
            Ok(data) => data,
            Err(err) => {
                return self
                    .dead_letter(entry, &format!("encoding failed: {err}"))
                    .await
            }
        };
        let mut backoff = Duration::from_millis(100);
        for attempt in 1..=MAX_ATTEMPTS {
            let result = match &delivery.target {
                Target::KinesisStream {
                    account,
                    region,
                    stream,
                } => {
                    self.sink
                        .put_record(
                            account,
                            region,
                            stream,
                            &delivery.partition_key,
                            data.clone(),
                            entry.at_millis,
                            delivery.sender.as_ref(),
                        )
                        .await
                }
            };
            match result {
                Ok(()) => return Ok(()),
                // A target that does not exist will not appear by waiting, nor will a refusal
                // turn into a grant, and retrying would hold up every delivery queued behind.
                Err(err @ (DeliveryError::NotFound(_) | DeliveryError::Denied(_))) => {
                    return self.dead_letter(entry, &err.to_string()).await
                }
                Err(err) if attempt == MAX_ATTEMPTS => {
                    return self.dead_letter(entry, &err.to_string()).await
                }
                Err(err) => {
                    tracing::warn!(error = %err, attempt, target = ?delivery.target, "Delivery failed; retrying.");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
        Ok(())
    }

    async fn dead_letter(
        &self,
        entry: &crate::store::LogEntry,
        reason: &str,
    ) -> Result<(), StoreError> {
        tracing::error!(
            reason,
            sequence = entry.sequence,
            "Delivery abandoned; the entry is kept in the dead letters."
        );
        let meta = serde_json::json!({ "delivery": entry.meta, "reason": reason }).to_string();
        let log = dead_letters();
        let entry = NewEntry {
            at_millis: entry.at_millis,
            meta,
            data: entry.data.clone(),
            span: None,
        };
        // Only this worker writes dead letters, so reading the bounds first is safe.
        let tail = self.store.log_tail(&log).await?;
        let first = self
            .store
            .read_log(&log, 1, 1)
            .await?
            .first()
            .map_or(tail + 1, |e| e.sequence);
        let mut batch = vec![Write::Append { log, entry }];
        // The oldest to keep once this one is in, so that at most MAX_DEAD_LETTERS remain.
        let keep_from = tail + 2 - MAX_DEAD_LETTERS;
        if keep_from > first {
            let dropped = dead_letters_dropped(&*self.store).await? + (keep_from - first);
            tracing::error!(
                dropped_now = keep_from - first,
                dropped_in_all = dropped,
                max = MAX_DEAD_LETTERS,
                "Dead letters are full; the oldest were dropped."
            );
            batch.push(Write::TrimLog {
                log: dead_letters(),
                before: keep_from,
            });
            batch.push(Write::Put {
                key: dropped_key(),
                body: serde_json::json!({ "dropped": dropped }),
                expect: Expect::Any,
            });
        }
        self.store.write(batch).await?;
        Ok(())
    }
}

fn encode(encoding: Encoding, data: &[u8]) -> std::io::Result<Vec<u8>> {
    match encoding {
        Encoding::Identity => Ok(data.to_vec()),
        Encoding::Gzip => {
            use std::io::Write as _;
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            encoder.write_all(data)?;
            encoder.finish()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::store::memory::MemoryStore;

    #[derive(Default)]
    struct Recorder {
        fail_first: Mutex<u32>,
        records: Mutex<Vec<(String, Vec<u8>)>>,
    }

    #[async_trait]
    impl StreamSink for Recorder {
        async fn put_record(
            &self,
            _: &str,
            _: &str,
            stream: &str,
            _: &str,
            data: Vec<u8>,
            _: i64,
            _: Option<&Sender>,
        ) -> Result<(), DeliveryError> {
            let mut failures = self.fail_first.lock().unwrap_or_else(|p| p.into_inner());
            if *failures > 0 {
                *failures -= 1;
                return Err(DeliveryError::Failed("not yet".to_owned()));
            }
            self.records
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((stream.to_owned(), data));
            Ok(())
        }
    }

    fn delivery(stream: &str, encoding: Encoding) -> Delivery {
        Delivery {
            target: Target::KinesisStream {
                account: "1".into(),
                region: "r".into(),
                stream: stream.into(),
            },
            partition_key: "k".into(),
            encoding,
            sender: None,
        }
    }

    #[derive(Default)]
    struct Missing {
        calls: Mutex<u32>,
    }

    #[async_trait]
    impl StreamSink for Missing {
        async fn put_record(
            &self,
            _: &str,
            _: &str,
            stream: &str,
            _: &str,
            _: Vec<u8>,
            _: i64,
            _: Option<&Sender>,
        ) -> Result<(), DeliveryError> {
            *self.calls.lock().unwrap_or_else(|p| p.into_inner()) += 1;
            Err(DeliveryError::NotFound(stream.to_owned()))
        }
    }

    #[tokio::test]
    async fn a_missing_target_is_dead_lettered_without_blocking_the_rest() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::default());
        let sink = Arc::new(Missing::default());
        let pipeline = Pipeline::new(store.clone(), sink.clone(), Arc::new(Notify::new()));
        store
            .write(vec![
                enqueue(&delivery("gone", Encoding::Identity), b"one".to_vec(), 1)
                    .expect("enqueue"),
                enqueue(&delivery("gone", Encoding::Identity), b"two".to_vec(), 2)
                    .expect("enqueue"),
            ])
            .await
            .expect("write");
        let started = std::time::Instant::now();
        assert_eq!(pipeline.drain().await.expect("drain"), 2);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "no retry loop for a missing target"
        );
        let dead = store
            .read_log(&dead_letters(), 1, 10)
            .await
            .expect("dead letters");
        assert_eq!(
            dead.iter().map(|e| e.data.clone()).collect::<Vec<_>>(),
            [b"one".to_vec(), b"two".to_vec()]
        );
        assert!(dead[0].meta.contains("target not found"));
    }

    #[test]
    fn outbox_entries_without_a_sender_still_decode() {
        let old = r#"{"target":{"KinesisStream":{"account":"1","region":"r","stream":"s"}},"partition_key":"k","encoding":"Gzip"}"#;
        let delivery: Delivery = serde_json::from_str(old).expect("old entry decodes");
        assert_eq!(delivery.sender, None);
        assert_eq!(
            delivery,
            Delivery {
                sender: None,
                ..super::tests::delivery("s", Encoding::Gzip)
            }
        );
    }

    struct Refusing;

    #[async_trait]
    impl StreamSink for Refusing {
        async fn put_record(
            &self,
            _: &str,
            _: &str,
            _: &str,
            _: &str,
            _: Vec<u8>,
            _: i64,
            sender: Option<&Sender>,
        ) -> Result<(), DeliveryError> {
            Err(DeliveryError::Denied(format!("{sender:?} may not write")))
        }
    }

    #[tokio::test]
    async fn a_refused_delivery_is_dead_lettered_at_once() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::default());
        let pipeline = Pipeline::new(store.clone(), Arc::new(Refusing), Arc::new(Notify::new()));
        let mut refused = delivery("theirs", Encoding::Identity);
        refused.sender = Some(Sender {
            account: "2".into(),
            role_arn: Some("arn:aws:iam::2:role/r".into()),
        });
        store
            .write(vec![enqueue(&refused, b"one".to_vec(), 1).expect("enqueue")])
            .await
            .expect("write");
        let started = std::time::Instant::now();
        assert_eq!(pipeline.drain().await.expect("drain"), 1);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "no retry loop for a refusal"
        );
        let dead = store
            .read_log(&RecordKey::new(DEAD_LETTERS, "", "", "dead-letters"), 1, 10)
            .await
            .expect("dead letters");
        assert_eq!(dead.len(), 1);
        assert!(
            dead[0].meta.contains("delivery refused"),
            "{}",
            dead[0].meta
        );
        assert!(
            dead[0].meta.contains("arn:aws:iam::2:role/r"),
            "{}",
            dead[0].meta
        );
    }

    #[tokio::test]
    async fn the_backlog_is_measured() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::default());
        let batch = (0..3)
            .map(|n| enqueue(&delivery("a", Encoding::Identity), vec![n], 1).expect("enqueue"))
            .collect();
        store.write(batch).await.expect("write");
        assert_eq!(pending(&*store).await.expect("pending"), 3);
        let pipeline = Pipeline::new(
            store.clone(),
            Arc::new(Recorder::default()),
            Arc::new(Notify::new()),
        );
        pipeline.drain().await.expect("drain");
        assert_eq!(pending(&*store).await.expect("pending"), 0);
    }

    #[tokio::test]
    async fn dead_letters_keep_the_newest_and_count_the_dropped() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::default());
        let total = MAX_DEAD_LETTERS + 2;
        let batch = (0..total)
            .map(|n| {
                enqueue(
                    &delivery("gone", Encoding::Identity),
                    n.to_string().into_bytes(),
                    n,
                )
                .expect("enqueue")
            })
            .collect();
        store.write(batch).await.expect("write");
        let pipeline = Pipeline::new(
            store.clone(),
            Arc::new(Missing::default()),
            Arc::new(Notify::new()),
        );
        while pipeline.drain().await.expect("drain") > 0 {}
        let kept = store
            .read_log(&dead_letters(), 1, usize::MAX)
            .await
            .expect("dead letters");
        assert_eq!(kept.len() as i64, MAX_DEAD_LETTERS);
        assert_eq!(kept[0].data, b"2", "the oldest went first");
        assert_eq!(dead_letters_dropped(&*store).await.expect("dropped"), 2);

        // By age: everything older than 14 days goes, but the last entry keeps the numbering.
        let removed = expire_dead_letters(&*store, DEAD_LETTER_LIFETIME_MILLIS + total, 100_000)
            .await
            .expect("expire");
        assert_eq!(removed as i64, MAX_DEAD_LETTERS - 1);
        assert_eq!(
            dead_letters_dropped(&*store).await.expect("dropped"),
            MAX_DEAD_LETTERS + 1
        );
    }

    #[tokio::test]
    async fn delivers_in_order_once_and_retries_failures() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::default());
        let sink = Arc::new(Recorder {
            fail_first: Mutex::new(2),
            ..Recorder::default()
        });
        let pipeline = Pipeline::new(store.clone(), sink.clone(), Arc::new(Notify::new()));
        store
            .write(vec![
                enqueue(&delivery("a", Encoding::Identity), b"one".to_vec(), 1).expect("enqueue"),
                enqueue(&delivery("b", Encoding::Gzip), b"two".to_vec(), 2).expect("enqueue"),
            ])
            .await
            .expect("write");
        assert_eq!(pipeline.drain().await.expect("drain"), 2);
        assert_eq!(
            pipeline.drain().await.expect("drain again"),
            0,
            "the cursor moved past delivered entries"
        );
        let records = sink.records.lock().expect("lock").clone();
        assert_eq!(records[0], ("a".to_owned(), b"one".to_vec()));
        let mut unzipped = String::new();
        std::io::Read::read_to_string(
            &mut flate2::read::GzDecoder::new(records[1].1.as_slice()),
            &mut unzipped,
        )
        .expect("gzip");
        assert_eq!((records[1].0.as_str(), unzipped.as_str()), ("b", "two"));
    }
}
