//! The data plane's one delivery mechanism, shared by every service that moves data.
//!
//! A service that accepts data (PutLogEvents today; AppFabric ingestion next) writes, in the
//! *same* atomic store batch as the data itself, one queue entry per delivery: where it goes
//! ([`Delivery`]) and the bytes to send ([`enqueue`]). Every target has its own ordered queue
//! (a store log named by [`Target::queue`]), so a missing, slow or failing target never holds
//! up another. The [`Pipeline`] runs one worker per queue (`queue.rs`): it encodes each entry
//! (gzip for CloudWatch Logs), hands it to the target's [`Sink`] (`sink.rs`: one
//! implementation per kind of target), and only then advances that queue's cursor. A crash
//! anywhere in between loses nothing: the worker resumes from its cursor, so delivery is at
//! least once. Entries that keep failing go to the dead letters (`dead_letters.rs`) with the
//! reason, never silently away; counters per target are in [`DeliveryMetrics`].

mod backoff;
mod dead_letters;
mod metrics;
mod queue;
mod sink;

use serde::{Deserialize, Serialize};

use crate::store::{Expect, NewEntry, RecordKey, StoreError, Write};

pub use backoff::Backoff;
pub use dead_letters::{
    dead_letters_dropped, expire_dead_letters, list_dead_letters, DeadLetter,
    DEAD_LETTER_LIFETIME_MILLIS, MAX_DEAD_LETTERS,
};
pub use metrics::DeliveryMetrics;
pub use queue::{Enqueued, Pipeline, Signal};
pub use sink::{Item, Sink, Sinks};

/// Log kind of the per-target queues (one log per [`Target::queue`]).
const QUEUE: &str = "pipeline/queue";
/// Record kind naming every queue that was ever written, so that workers are found again
/// after a restart (logs themselves cannot be listed).
const QUEUES: &str = "pipeline/queues";
/// Record kind of each queue's cursor: the last entry delivered or dead-lettered.
const CURSOR: &str = "pipeline/cursor";
/// Before per-target queues, one outbox for all targets. Entries left in it by an older
/// version are moved to their queues at start-up.
const LEGACY_OUTBOX: &str = "pipeline/outbox";
/// The legacy outbox's log and cursor name.
const LEGACY_NAME: &str = "outbox";

/// The most deliveries that may wait in all queues together. Beyond it, writes that would
/// queue more are refused with the service's "unavailable, retry" error: the queues never
/// grow without end when a target is down or slow, and nothing acknowledged is dropped.
pub const MAX_PENDING_DELIVERIES: i64 = 100_000;

/// A stream target: Sluice's own Kinesis or Firehose stream.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StreamTarget {
    /// The stream owner's account.
    pub account: String,
    /// The stream's region.
    pub region: String,
    /// The stream name.
    pub stream: String,
}

/// An object target: one object in a bucket, through the object-storage interface.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ObjectTarget {
    /// The bucket name.
    pub bucket: String,
    /// The object key.
    pub key: String,
    /// The object's `Content-Type`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
}

/// Where a delivery goes. The JSON form is stored in queue entries, so variants only grow.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Target {
    /// A stream of Sluice's own Kinesis Data Streams.
    KinesisStream(StreamTarget),
    /// A delivery stream of Sluice's own Amazon Data Firehose.
    FirehoseStream(StreamTarget),
    /// An object in a bucket (Sluice's own, or an external one configured for writers).
    S3Object(ObjectTarget),
}

impl Target {
    /// The name of the target's queue. Deliveries to one queue are made in order; queues
    /// are independent. Objects queue per bucket.
    pub fn queue(&self) -> String {
        match self {
            Target::KinesisStream(t) => format!("kinesis:{}:{}:{}", t.account, t.region, t.stream),
            Target::FirehoseStream(t) => {
                format!("firehose:{}:{}:{}", t.account, t.region, t.stream)
            }
            Target::S3Object(t) => format!("s3:{}", t.bucket),
        }
    }

    /// The kind of target, as metrics label it.
    pub fn kind(&self) -> &'static str {
        match self {
            Target::KinesisStream(_) => "kinesis",
            Target::FirehoseStream(_) => "firehose",
            Target::S3Object(_) => "s3",
        }
    }
}

/// How the bytes are encoded on the way out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Encoding {
    /// As they are.
    Identity,
    /// gzip, as CloudWatch Logs subscriptions send their records.
    Gzip,
}

/// One unit of delivery work, stored in its queue beside the bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// Where it goes.
    pub target: Target,
    /// The record's partition key at the target (streams only).
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
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Sender {
    /// The account that configured the delivery: a destination's or a subscription filter's.
    pub account: String,
    /// The IAM role the delivery assumes (`roleArn`), when one was given.
    pub role_arn: Option<String>,
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

/// The queue writes for a delivery: the entry, and the record that names its queue.
/// Writers use [`Enqueued`], which names each queue once per batch.
fn enqueue(delivery: &Delivery, body: Vec<u8>, at_millis: i64) -> Result<[Write; 2], StoreError> {
    let meta =
        serde_json::to_string(delivery).map_err(|err| StoreError::Unavailable(err.to_string()))?;
    let queue = delivery.target.queue();
    let named = serde_json::to_value(QueueRecord {
        target: delivery.target.clone(),
    })
    .map_err(|err| StoreError::Unavailable(err.to_string()))?;
    Ok([
        Write::Append {
            log: queue_log(&queue),
            entry: NewEntry {
                at_millis,
                meta,
                data: body,
                span: None,
            },
        },
        Write::Put {
            key: queue_record(&queue),
            body: named,
            expect: Expect::Any,
        },
    ])
}

/// The record that names a queue.
#[derive(Debug, Serialize, Deserialize)]
struct QueueRecord {
    target: Target,
}

fn queue_log(queue: &str) -> RecordKey {
    RecordKey::new(QUEUE, "", "", queue)
}

fn queue_record(queue: &str) -> RecordKey {
    RecordKey::new(QUEUES, "", "", queue)
}

fn cursor_key(queue: &str) -> RecordKey {
    RecordKey::new(CURSOR, "", "", queue)
}

fn delivered(body: &serde_json::Value) -> i64 {
    body.get("delivered")
        .and_then(serde_json::Value::as_i64)
        .unwrap_or(0)
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
    use super::*;

    #[test]
    fn stored_kinesis_targets_keep_their_json_form() {
        // Entries written by earlier versions (struct variant, no sender) still decode.
        let old = r#"{"target":{"KinesisStream":{"account":"1","region":"r","stream":"s"}},"partition_key":"k","encoding":"Gzip"}"#;
        let delivery: Delivery = serde_json::from_str(old).expect("old entry decodes");
        assert_eq!(delivery.sender, None);
        assert_eq!(
            delivery.target,
            Target::KinesisStream(StreamTarget {
                account: "1".into(),
                region: "r".into(),
                stream: "s".into()
            })
        );
        let again: serde_json::Value =
            serde_json::from_str(&serde_json::to_string(&delivery).expect("encode")).expect("json");
        let old: serde_json::Value = serde_json::from_str(old).expect("json");
        assert_eq!(again, old);
    }

    #[test]
    fn queues_are_per_stream_and_per_bucket() {
        let stream = |name: &str| {
            Target::KinesisStream(StreamTarget {
                account: "1".into(),
                region: "r".into(),
                stream: name.into(),
            })
        };
        let object = |key: &str| {
            Target::S3Object(ObjectTarget {
                bucket: "b".into(),
                key: key.into(),
                content_type: None,
            })
        };
        assert_ne!(stream("a").queue(), stream("b").queue());
        assert_eq!(object("x").queue(), object("y").queue());
    }
}
