//! Amazon Data Firehose (`firehose`, JSON 1.1, `Firehose_20150804`): delivery streams that
//! buffer records and write them as objects into Sluice's own S3 buckets.
//!
//! A stream is a record (`streams.rs`); PutRecord(Batch) appends to the stream's buffer log
//! in one store batch before answering (`records.rs`); a flusher per stream writes one object
//! per flush through `Deps::storage` and only then moves its cursor (`delivery.rs`); key
//! prefixes and their expressions are `prefix.rs`. KinesisStreamAsSource streams copy their
//! Kinesis stream's records into the same buffer. Start at the operation table below.

mod delivery;
mod error;
mod prefix;
mod records;
mod streams;

use std::sync::Arc;

use async_trait::async_trait;

pub use delivery::{Deliveries, FirehoseMetrics, Wakers};
pub use error::FirehoseError;

use crate::pipeline::{DeliveryError, Item, Sink, StreamTarget};
use crate::services::{kit, Deps};
use crate::store::{Store, StoreError};

/// The Firehose service.
pub struct FirehoseService {
    deps: Deps,
}

impl FirehoseService {
    /// Builds the service over shared dependencies.
    pub fn new(deps: Deps) -> Self {
        Self { deps }
    }
}

/// Whether the delivery stream `name` of `account` in `region` exists and is ACTIVE: what
/// CloudWatch Logs checks before it delivers to a stream (AWS's test message).
pub async fn is_active(
    store: &dyn Store,
    account: &str,
    region: &str,
    name: &str,
) -> Result<bool, StoreError> {
    let key = streams::stream_key(account, region, name);
    let Some((stream, _)) = crate::store::load::<streams::StreamRecord>(store, &key).await? else {
        return Ok(false);
    };
    let now = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
    Ok(stream.status(now) == "ACTIVE")
}

/// Appends records to the DirectPut stream `name` in one durable batch and wakes its
/// flusher: PutRecordBatch for Sluice's own writers (AppFabric's Firehose destinations).
pub async fn put_records(
    store: &dyn Store,
    wakers: &Wakers,
    (account, region, name): (&str, &str, &str),
    batch: Vec<Vec<u8>>,
    at_millis: i64,
) -> Result<(), FirehoseError> {
    records::append(store, account, region, name, batch, at_millis).await?;
    wakers.wake(account, region, name);
    Ok(())
}

/// Sluice's own delivery streams as a target of the pipeline: a put is exactly a PutRecord.
pub struct LocalDeliveryStreams {
    store: Arc<dyn Store>,
    wake: Arc<Wakers>,
}

impl LocalDeliveryStreams {
    /// A sink over the store that holds the streams; `wake` reaches their flushers.
    pub fn new(store: Arc<dyn Store>, wake: Arc<Wakers>) -> Self {
        Self { store, wake }
    }
}

#[async_trait]
impl Sink for LocalDeliveryStreams {
    type Target = StreamTarget;

    /// Appends one record to a DirectPut stream, durably, and wakes its flusher. Firehose
    /// streams have no resource policy: only the stream's own account writes (CloudWatch
    /// Logs checks this when a subscription or destination is put).
    async fn deliver(&self, target: &StreamTarget, item: Item<'_>) -> Result<(), DeliveryError> {
        let StreamTarget {
            account,
            region,
            stream,
        } = target;
        if let Some(sender) = item.sender.filter(|sender| sender.account != *account) {
            return Err(DeliveryError::Denied(format!(
                "account {} may not write into Firehose stream {stream} of account {account}",
                sender.account
            )));
        }
        match records::append(
            self.store.as_ref(),
            account,
            region,
            stream,
            vec![item.data],
            item.at_millis,
        )
        .await
        {
            Ok(_) => {
                self.wake.wake(account, region, stream);
                Ok(())
            }
            Err(FirehoseError::ResourceNotFound(message)) => Err(DeliveryError::NotFound(message)),
            Err(FirehoseError::InvalidArgument(message)) => Err(DeliveryError::Denied(message)),
            Err(err) => Err(DeliveryError::Failed(err.to_string())),
        }
    }
}

kit::operations! {
    FirehoseService { model: "firehose", error: FirehoseError, state: deps }
    CreateDeliveryStream => streams::create_delivery_stream,
    DescribeDeliveryStream => streams::describe_delivery_stream,
    ListDeliveryStreams => streams::list_delivery_streams,
    UpdateDestination => streams::update_destination,
    DeleteDeliveryStream => streams::delete_delivery_stream,
    TagDeliveryStream => streams::tag_delivery_stream,
    UntagDeliveryStream => streams::untag_delivery_stream,
    ListTagsForDeliveryStream => streams::list_tags_for_delivery_stream,
    PutRecord => records::put_record,
    PutRecordBatch => records::put_record_batch,
}

#[cfg(test)]
mod tests {
    #[test]
    fn embedded_model_parses() {
        let model = crate::services::kit::embedded_model("firehose");
        assert_eq!(
            model.metadata.target_prefix.as_deref(),
            Some("Firehose_20150804")
        );
    }
}
