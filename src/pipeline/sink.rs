//! The one interface deliveries leave through, with one implementation per kind of target:
//! Kinesis streams (`services::kinesis::LocalStreams`), Firehose delivery streams
//! (`services::firehose::LocalDeliveryStreams`) and objects in buckets
//! (`services::s3::ObjectSink`, over the object-storage interface, so a bucket may be local or
//! external). The queue workers know only [`Sinks`].

use std::sync::Arc;

use async_trait::async_trait;

use super::{DeliveryError, ObjectTarget, Sender, StreamTarget, Target};

/// One queue entry on its way out, already encoded.
#[derive(Debug)]
pub struct Item<'a> {
    /// The record's partition key (streams only).
    pub partition_key: &'a str,
    /// The bytes to write.
    pub data: Vec<u8>,
    /// When the data was accepted, epoch milliseconds.
    pub at_millis: i64,
    /// Who writes (`None`: the target's own account).
    pub sender: Option<&'a Sender>,
}

/// Writes deliveries into one kind of target.
#[async_trait]
pub trait Sink: Send + Sync + 'static {
    /// The address of one target of this kind.
    type Target: Send + Sync;

    /// Writes `item` into `target`; returns once it is durable there.
    /// [`DeliveryError::NotFound`] and [`DeliveryError::Denied`] are final (the entry is
    /// dead-lettered at once, as waiting will not change them); `Failed` is retried.
    async fn deliver(&self, target: &Self::Target, item: Item<'_>) -> Result<(), DeliveryError>;

    /// Whether `sender` could write into `target` now, without writing: the target exists,
    /// is ready, and lets the sender in (its own account, or its resource policy). What a
    /// producer asks when a delivery is configured (CloudWatch Logs' test message), so that it
    /// never reads another service's records. `Err` only when the sink cannot tell (its
    /// store is unavailable).
    async fn writable(&self, target: &Self::Target, sender: &Sender)
        -> Result<bool, DeliveryError>;
}

/// The sink of every kind of target.
#[derive(Clone)]
pub struct Sinks {
    /// Kinesis streams.
    pub kinesis: Arc<dyn Sink<Target = StreamTarget>>,
    /// Firehose delivery streams.
    pub firehose: Arc<dyn Sink<Target = StreamTarget>>,
    /// Objects in buckets.
    pub objects: Arc<dyn Sink<Target = ObjectTarget>>,
}

impl Sinks {
    /// Sends `item` to `target` through the sink of its kind.
    pub async fn deliver(&self, target: &Target, item: Item<'_>) -> Result<(), DeliveryError> {
        match target {
            Target::KinesisStream(stream) => self.kinesis.deliver(stream, item).await,
            Target::FirehoseStream(stream) => self.firehose.deliver(stream, item).await,
            Target::S3Object(object) => self.objects.deliver(object, item).await,
        }
    }

    /// Asks the sink of `target`'s kind whether `sender` could write there now.
    pub async fn writable(&self, target: &Target, sender: &Sender) -> Result<bool, DeliveryError> {
        match target {
            Target::KinesisStream(stream) => self.kinesis.writable(stream, sender).await,
            Target::FirehoseStream(stream) => self.firehose.writable(stream, sender).await,
            Target::S3Object(object) => self.objects.writable(object, sender).await,
        }
    }
}
