//! Amazon Kinesis Data Streams (`kinesis`, JSON 1.1, `Kinesis_20131202`): Sluice's own
//! streams, where subscription filters deliver and from which consumers read.
//!
//! A stream is a record (`streams.rs`); each shard is an append-only log in the store
//! (`records.rs`), so a record is durable once PutRecord answers and reads come back in
//! sequence order. A stream's resource policy lives in its record (`policies.rs`) and is
//! the only way another account's delivery may write into it ([`may_write`], and
//! [`LocalStreams`] at every delivery). Start at the operation table below.

mod error;
mod policies;
mod records;
mod streams;

use std::sync::Arc;

use async_trait::async_trait;

pub use error::KinesisError;

use crate::pipeline::{DeliveryError, Item, Sender, Sink, StreamTarget};
use crate::services::{kit, Deps};
use crate::store::{RecordKey, Store, StoreError};

/// The Kinesis Data Streams service.
pub struct KinesisService {
    deps: Deps,
}

impl KinesisService {
    /// Builds the service over shared dependencies.
    pub fn new(deps: Deps) -> Self {
        Self { deps }
    }
}

/// Record kind of streams, for services that check a stream exists.
pub const STREAM_KIND: &str = streams::STREAM;

/// Whether `sender` may write into the stream `name` of `account` in `region`: false when the
/// stream does not exist, or belongs to another account whose resource policy does not allow
/// the sender (see `policies.rs`). For services that configure deliveries into streams.
pub async fn may_write(
    store: &dyn Store,
    account: &str,
    region: &str,
    name: &str,
    sender: &Sender,
) -> Result<bool, StoreError> {
    let key = RecordKey::new(streams::STREAM, account, region, name);
    let Some(record) = store.get(&key).await? else {
        return Ok(false);
    };
    let stream: streams::StreamRecord = serde_json::from_value(record.body)
        .map_err(|err| StoreError::Unavailable(format!("corrupt stream record: {err}")))?;
    Ok(policies::may_write(&stream, account, sender))
}

/// The shards of the stream `name` and the store address of each shard's log, in shard
/// order; `None` when there is no such stream. For readers in other services (Firehose's
/// KinesisStreamAsSource), which read the logs from their own positions.
pub async fn shard_logs(
    store: &dyn Store,
    account: &str,
    region: &str,
    name: &str,
) -> Result<Option<Vec<(String, RecordKey)>>, StoreError> {
    let key = RecordKey::new(streams::STREAM, account, region, name);
    let Some((stream, _)) = crate::store::load::<streams::StreamRecord>(store, &key).await? else {
        return Ok(None);
    };
    Ok(Some(
        stream
            .shards
            .iter()
            .map(|shard| {
                (
                    shard.id.clone(),
                    stream.shard_log(account, region, &shard.id),
                )
            })
            .collect(),
    ))
}

/// Sluice's own streams as a delivery target of the pipeline.
pub struct LocalStreams {
    store: Arc<dyn Store>,
}

impl LocalStreams {
    /// A sink over the store that holds the streams.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }
}

#[async_trait]
impl Sink for LocalStreams {
    type Target = StreamTarget;

    async fn deliver(&self, target: &StreamTarget, item: Item<'_>) -> Result<(), DeliveryError> {
        let StreamTarget {
            account,
            region,
            stream,
        } = target;
        let Item {
            partition_key,
            data,
            at_millis,
            sender,
        } = item;
        let key = RecordKey::new(streams::STREAM, account, region, stream);
        let record = self
            .store
            .get(&key)
            .await
            .map_err(|err| DeliveryError::Failed(err.to_string()))?
            .ok_or_else(|| {
                DeliveryError::NotFound(format!("Kinesis stream {stream} in {account}/{region}"))
            })?;
        let stream: streams::StreamRecord = serde_json::from_value(record.body)
            .map_err(|err| DeliveryError::Failed(err.to_string()))?;
        // The grant is checked at every delivery: the owner may have removed it since the
        // delivery was configured.
        if let Some(sender) = sender {
            if !policies::may_write(&stream, account, sender) {
                return Err(DeliveryError::Denied(policies::refusal(&stream, sender)));
            }
        }
        let (_, write) = records::append(
            account,
            region,
            &stream,
            partition_key.to_owned(),
            None,
            data,
            at_millis,
        )
        .map_err(|err| DeliveryError::Failed(err.to_string()))?;
        self.store
            .write(vec![write])
            .await
            .map_err(|err| DeliveryError::Failed(err.to_string()))?;
        Ok(())
    }
}

/// Removes records older than their own stream's retention period, at most about `limit`, a
/// bounded transaction at a time. Each shard keeps its last record, so sequence numbers carry on from it; readers no longer
/// see it once it is past retention. Returns how many records went.
pub async fn expire(store: &dyn Store, now: i64, limit: usize) -> Result<usize, StoreError> {
    let mut budget = crate::sweeper::Budget::new(limit);
    let mut scan = crate::sweeper::RecordScan::new(store, streams::STREAM);
    while let Some(page) = scan.next_page().await? {
        for record in &page {
            let Ok(stream) = serde_json::from_value::<streams::StreamRecord>(record.body.clone())
            else {
                tracing::warn!(stream = %record.key.name, "Unreadable stream record; not expiring its records.");
                continue;
            };
            let before = stream.retained_from(now);
            for shard in &stream.shards {
                let log = stream.shard_log(&record.key.account, &record.key.region, &shard.id);
                budget
                    .drain(|chunk| store.expire_log(&log, before, i64::MIN, chunk))
                    .await?;
                if budget.remaining() == 0 {
                    return Ok(budget.removed());
                }
            }
        }
    }
    Ok(budget.removed())
}

kit::operations! {
    KinesisService { model: "kinesis", error: KinesisError, state: deps }
    CreateStream => streams::create_stream,
    DeleteStream => streams::delete_stream,
    DescribeStream => streams::describe_stream,
    DescribeStreamSummary => streams::describe_stream_summary,
    ListStreams => streams::list_streams,
    IncreaseStreamRetentionPeriod => streams::increase_retention,
    DecreaseStreamRetentionPeriod => streams::decrease_retention,
    ListShards => streams::list_shards,
    PutRecord => records::put_record,
    PutRecords => records::put_records,
    GetShardIterator => records::get_shard_iterator,
    GetRecords => records::get_records,
    PutResourcePolicy => policies::put_resource_policy,
    GetResourcePolicy => policies::get_resource_policy,
    DeleteResourcePolicy => policies::delete_resource_policy,
}

#[cfg(test)]
mod tests {
    #[test]
    fn embedded_model_parses() {
        let model = crate::services::kit::embedded_model("kinesis");
        assert_eq!(
            model.metadata.target_prefix.as_deref(),
            Some("Kinesis_20131202")
        );
    }
}
