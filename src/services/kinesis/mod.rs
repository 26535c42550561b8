//! Amazon Kinesis Data Streams (`kinesis`, JSON 1.1, `Kinesis_20131202`): Sluice's own
//! streams, where subscription filters deliver and from which consumers read.
//!
//! A stream is a record (`streams.rs`); each shard is an append-only log in the store
//! (`records.rs`), so a record is durable once PutRecord answers and reads come back in
//! sequence order. A stream's resource policy lives in its record (`policies.rs`) and is
//! the only way another account's delivery may write into it ([`LocalStreams`] checks it
//! when a producer asks `writable` and at every delivery). Start at [`KinesisService::call`].

mod error;
mod policies;
mod records;
mod streams;

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use error::KinesisError;

use crate::pipeline::{DeliveryError, Item, Sender, Sink, StreamTarget};
use crate::protocol::model::{ServiceModel, Violation};
use crate::protocol::{ApiError, RequestContext, Service};
use crate::services::Deps;
use crate::store::{RecordKey, Store, StoreError};

fn model() -> &'static ServiceModel {
    static MODEL: OnceLock<ServiceModel> = OnceLock::new();
    ServiceModel::embedded(
        &MODEL,
        "kinesis",
        include_str!("../../../models/kinesis.json"),
    )
}

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

    /// The stream exists, and its account is the sender's or its resource policy allows the
    /// sender (`policies.rs`). Sluice's streams are ACTIVE from creation.
    async fn writable(
        &self,
        target: &StreamTarget,
        sender: &Sender,
    ) -> Result<bool, DeliveryError> {
        let key = RecordKey::new(
            streams::STREAM,
            &target.account,
            &target.region,
            &target.stream,
        );
        let stream = crate::store::load::<streams::StreamRecord>(self.store.as_ref(), &key)
            .await
            .map_err(|err| DeliveryError::Failed(err.to_string()))?;
        Ok(stream.is_some_and(|(stream, _)| policies::may_write(&stream, &target.account, sender)))
    }
}

/// Removes records older than their own stream's retention period, at most about `limit`, a
/// bounded transaction at a time. Each shard keeps its last record, so sequence numbers carry on from it; readers no longer
/// see it once it is past retention. Returns how many records went.
pub async fn expire(store: &dyn Store, now: i64, limit: usize) -> Result<usize, StoreError> {
    let mut budget = crate::store::expiry::Budget::new(limit);
    let mut scan = crate::store::expiry::RecordScan::new(store, streams::STREAM);
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

fn input<T: DeserializeOwned>(value: Value) -> Result<T, KinesisError> {
    serde_json::from_value(value).map_err(|err| KinesisError::InvalidArgument(err.to_string()))
}

fn output<T: serde::Serialize>(value: T) -> Result<Value, KinesisError> {
    serde_json::to_value(value).map_err(|err| KinesisError::InternalFailure(err.to_string()))
}

#[async_trait]
impl Service for KinesisService {
    fn model(&self) -> &ServiceModel {
        model()
    }

    fn validation_error(&self, violations: &[Violation]) -> ApiError {
        KinesisError::from_violations(violations).into()
    }

    async fn call(
        &self,
        ctx: &RequestContext,
        operation: &str,
        value: Value,
    ) -> Result<Value, ApiError> {
        let deps = &self.deps;
        let result = match operation {
            "CreateStream" => streams::create_stream(deps, ctx, input(value)?)
                .await
                .and_then(output),
            "DeleteStream" => streams::delete_stream(deps, ctx, input(value)?)
                .await
                .and_then(output),
            "DescribeStream" => streams::describe_stream(deps, ctx, input(value)?)
                .await
                .and_then(output),
            "DescribeStreamSummary" => streams::describe_stream_summary(deps, ctx, input(value)?)
                .await
                .and_then(output),
            "ListStreams" => streams::list_streams(deps, ctx, input(value)?)
                .await
                .and_then(output),
            "IncreaseStreamRetentionPeriod" => streams::change_retention(
                deps,
                ctx,
                input(value)?,
                streams::RetentionChange::Increase,
            )
            .await
            .and_then(output),
            "DecreaseStreamRetentionPeriod" => streams::change_retention(
                deps,
                ctx,
                input(value)?,
                streams::RetentionChange::Decrease,
            )
            .await
            .and_then(output),
            "ListShards" => streams::list_shards(deps, ctx, input(value)?)
                .await
                .and_then(output),
            "PutRecord" => records::put_record(deps, ctx, input(value)?)
                .await
                .and_then(output),
            "PutRecords" => records::put_records(deps, ctx, input(value)?)
                .await
                .and_then(output),
            "GetShardIterator" => records::get_shard_iterator(deps, ctx, input(value)?)
                .await
                .and_then(output),
            "GetRecords" => records::get_records(deps, ctx, input(value)?)
                .await
                .and_then(output),
            "PutResourcePolicy" => policies::put_resource_policy(deps, ctx, input(value)?)
                .await
                .and_then(output),
            "GetResourcePolicy" => policies::get_resource_policy(deps, ctx, input(value)?)
                .await
                .and_then(output),
            "DeleteResourcePolicy" => policies::delete_resource_policy(deps, ctx, input(value)?)
                .await
                .and_then(output),
            other => return Err(ApiError::not_implemented("kinesis", other)),
        };
        result.map_err(ApiError::from)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn embedded_model_parses() {
        let model = super::model();
        assert_eq!(
            model.metadata.target_prefix.as_deref(),
            Some("Kinesis_20131202")
        );
    }
}
