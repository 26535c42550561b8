//! Records: PutRecord, PutRecords, GetShardIterator and GetRecords.
//!
//! A record goes to the shard whose hash-key range holds the MD5 of its partition key (or its
//! explicit hash key), and is appended to that shard's log in the store before the call
//! answers. Shard iterators are signed tokens naming the next log position to read; like AWS's
//! they expire after five minutes.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::streams::{load, parse_sequence_number, sequence_number, StreamRecord, StreamRef};
use super::KinesisError;
use crate::protocol::model::EpochSeconds;
use crate::protocol::RequestContext;
use crate::services::Deps;
use crate::store::{NewEntry, Write};
use crate::token::TokenError;

/// How long a shard iterator stays valid.
const ITERATOR_LIFETIME_MILLIS: i64 = 5 * 60 * 1000;
/// The most records and bytes one GetRecords call returns (AWS: 10,000 records, 10 MiB).
const MAX_RECORDS_PER_READ: usize = 10_000;
const MAX_BYTES_PER_READ: usize = 10 * 1024 * 1024;

/// The 128-bit hash key of a partition key: MD5, read as a big-endian integer.
fn hash_key(partition_key: &str) -> u128 {
    u128::from_be_bytes(Md5::digest(partition_key.as_bytes()).into())
}

/// One record to put.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RecordInput {
    data: String,
    partition_key: String,
    explicit_hash_key: Option<String>,
}

/// Picks the shard and builds the append for one record.
fn route(
    ctx: &RequestContext,
    stream: &StreamRecord,
    record: RecordInput,
) -> Result<(String, Write), KinesisError> {
    // The model has already checked that Data is valid base64.
    let data = BASE64
        .decode(record.data.as_bytes())
        .map_err(|_| KinesisError::InvalidArgument("Data must be base64".to_owned()))?;
    let explicit = record.explicit_hash_key.as_deref();
    append(
        &ctx.account_id,
        &ctx.region,
        stream,
        record.partition_key,
        explicit,
        data,
        ctx.received_at_millis(),
    )
}

/// The append of one record to the shard its hash key falls in, and that shard's id.
pub(super) fn append(
    account: &str,
    region: &str,
    stream: &StreamRecord,
    partition_key: String,
    explicit_hash_key: Option<&str>,
    data: Vec<u8>,
    at_millis: i64,
) -> Result<(String, Write), KinesisError> {
    let hash = match explicit_hash_key {
        Some(explicit) => explicit.parse::<u128>().map_err(|_| {
            KinesisError::InvalidArgument(format!(
                "Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. Specified value was {explicit}"
            ))
        })?,
        None => hash_key(&partition_key),
    };
    let shard = stream
        .shard_for(hash)
        .ok_or(KinesisError::InternalFailure)?;
    let entry = NewEntry {
        at_millis,
        meta: partition_key,
        data,
        span: None,
    };
    Ok((
        shard.id.clone(),
        Write::Append {
            log: stream.shard_log(account, region, &shard.id),
            entry,
        },
    ))
}

/// PutRecord input.
#[derive(Debug, Deserialize)]
pub struct PutRecordInput {
    #[serde(flatten)]
    stream: StreamRef,
    #[serde(flatten)]
    record: RecordInput,
}

/// Appends one record.
pub async fn put_record(
    deps: &Deps,
    ctx: &RequestContext,
    input: PutRecordInput,
) -> Result<PutRecordOutput, KinesisError> {
    let (stream, _) = load(deps, ctx, &input.stream).await?;
    let (shard_id, write) = route(ctx, &stream, input.record)?;
    let sequences = deps.store.write(vec![write]).await?;
    let sequence = sequences
        .first()
        .copied()
        .ok_or(KinesisError::InternalFailure)?;
    Ok(PutRecordOutput {
        shard_id,
        sequence_number: sequence_number(sequence),
        encryption_type: "NONE",
    })
}

/// PutRecord output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordOutput {
    shard_id: String,
    sequence_number: String,
    encryption_type: &'static str,
}

/// Where one record of PutRecords went.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordsResultEntry {
    shard_id: String,
    sequence_number: String,
}

/// PutRecords output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordsOutput {
    failed_record_count: usize,
    records: Vec<PutRecordsResultEntry>,
    encryption_type: &'static str,
}

/// GetShardIterator output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetShardIteratorOutput {
    shard_iterator: String,
}

/// A record as GetRecords gives it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Record {
    sequence_number: String,
    approximate_arrival_timestamp: EpochSeconds,
    data: String,
    partition_key: String,
    encryption_type: &'static str,
}

/// GetRecords output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetRecordsOutput {
    records: Vec<Record>,
    next_shard_iterator: String,
    millis_behind_latest: i64,
}

/// PutRecords input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordsInput {
    #[serde(flatten)]
    stream: StreamRef,
    records: Vec<RecordInput>,
}

/// Appends up to 500 records in one atomic, durable batch; results keep the request's order.
pub async fn put_records(
    deps: &Deps,
    ctx: &RequestContext,
    input: PutRecordsInput,
) -> Result<PutRecordsOutput, KinesisError> {
    let (stream, _) = load(deps, ctx, &input.stream).await?;
    let mut shard_ids = Vec::with_capacity(input.records.len());
    let mut batch = Vec::with_capacity(input.records.len());
    for record in input.records {
        let (shard_id, write) = route(ctx, &stream, record)?;
        shard_ids.push(shard_id);
        batch.push(write);
    }
    let sequences = deps.store.write(batch).await?;
    let records = shard_ids
        .into_iter()
        .zip(sequences)
        .map(|(shard_id, sequence)| PutRecordsResultEntry {
            shard_id,
            sequence_number: sequence_number(sequence),
        })
        .collect();
    Ok(PutRecordsOutput {
        failed_record_count: 0,
        records,
        encryption_type: "NONE",
    })
}

/// GetShardIterator input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetShardIteratorInput {
    #[serde(flatten)]
    stream: StreamRef,
    shard_id: String,
    shard_iterator_type: String,
    starting_sequence_number: Option<String>,
    /// Epoch seconds (the protocol layer converts every timestamp to them).
    timestamp: Option<f64>,
}

fn iterator_scope(ctx: &RequestContext) -> String {
    format!("kinesis:iterator:{}:{}", ctx.account_id, ctx.region)
}

fn issue_iterator(
    deps: &Deps,
    ctx: &RequestContext,
    stream: &str,
    shard: &str,
    next: i64,
) -> String {
    deps.tokens.issue(
        &iterator_scope(ctx),
        json!({ "s": stream, "h": shard, "n": next }),
        ctx.received_at_millis(),
    )
}

/// Returns an iterator for a position in a shard.
pub async fn get_shard_iterator(
    deps: &Deps,
    ctx: &RequestContext,
    input: GetShardIteratorInput,
) -> Result<GetShardIteratorOutput, KinesisError> {
    let (stream, _) = load(deps, ctx, &input.stream).await?;
    if !stream.shards.iter().any(|s| s.id == input.shard_id) {
        return Err(KinesisError::ResourceNotFound(format!(
            "Shard {} in stream {} under account {} does not exist",
            input.shard_id, stream.name, ctx.account_id
        )));
    }
    let log = stream.shard_log(&ctx.account_id, &ctx.region, &input.shard_id);
    let sequence_argument = |kind: &str| -> Result<i64, KinesisError> {
        let text = input.starting_sequence_number.as_deref().ok_or_else(|| {
            KinesisError::InvalidArgument(format!(
                "StartingSequenceNumber is required for ShardIteratorType {kind}"
            ))
        })?;
        parse_sequence_number(text).ok_or_else(|| {
            KinesisError::InvalidArgument(format!("StartingSequenceNumber {text} used in GetShardIterator on shard {} in stream {} under account {} is invalid.", input.shard_id, stream.name, ctx.account_id))
        })
    };
    let next = match input.shard_iterator_type.as_str() {
        "TRIM_HORIZON" => 1,
        "LATEST" => deps.store.log_tail(&log).await? + 1,
        "AT_SEQUENCE_NUMBER" => sequence_argument("AT_SEQUENCE_NUMBER")?.max(1),
        "AFTER_SEQUENCE_NUMBER" => sequence_argument("AFTER_SEQUENCE_NUMBER")? + 1,
        "AT_TIMESTAMP" => {
            let seconds = input.timestamp.ok_or_else(|| {
                KinesisError::InvalidArgument(
                    "Timestamp is required for ShardIteratorType AT_TIMESTAMP".to_owned(),
                )
            })?;
            let millis = (seconds * 1000.0).ceil() as i64;
            match deps.store.seek_log(&log, millis).await? {
                Some(sequence) => sequence,
                None => deps.store.log_tail(&log).await? + 1,
            }
        }
        other => {
            return Err(KinesisError::InvalidArgument(format!(
                "Invalid ShardIteratorType {other}"
            )))
        }
    };
    Ok(GetShardIteratorOutput {
        shard_iterator: issue_iterator(deps, ctx, &stream.name, &input.shard_id, next),
    })
}

/// GetRecords input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetRecordsInput {
    shard_iterator: String,
    limit: Option<usize>,
}

/// Reads records from an iterator's position and returns the iterator for what follows.
pub async fn get_records(
    deps: &Deps,
    ctx: &RequestContext,
    input: GetRecordsInput,
) -> Result<GetRecordsOutput, KinesisError> {
    let now = ctx.received_at_millis();
    let invalid = || {
        KinesisError::InvalidArgument(format!("Invalid ShardIterator: {}", input.shard_iterator))
    };
    // Opened with the token's own 24-hour lifetime; the five-minute iterator rule is below.
    let state = match deps
        .tokens
        .open(&iterator_scope(ctx), &input.shard_iterator, now)
    {
        Ok(state) => state,
        Err(TokenError::Invalid) => return Err(invalid()),
        Err(TokenError::Expired) => {
            return Err(KinesisError::ExpiredIterator(
                "Iterator expired.".to_owned(),
            ))
        }
    };
    let (Some(stream_name), Some(shard_id), Some(next)) = (
        state.get("s").and_then(Value::as_str),
        state.get("h").and_then(Value::as_str),
        state.get("n").and_then(Value::as_i64),
    ) else {
        return Err(invalid());
    };
    let issued = deps
        .tokens
        .issued_at(&input.shard_iterator)
        .ok_or_else(invalid)?;
    if now - issued > ITERATOR_LIFETIME_MILLIS {
        return Err(KinesisError::ExpiredIterator(format!(
            "Iterator expired. The iterator was created at time {issued} while right now it is {now} which is further in the future than the tolerated delay of {ITERATOR_LIFETIME_MILLIS} milliseconds."
        )));
    }
    let stream_ref = StreamRef::named(stream_name);
    let (stream, _) = load(deps, ctx, &stream_ref).await?;
    let log = stream.shard_log(&ctx.account_id, &ctx.region, shard_id);
    let limit = input.limit.unwrap_or(MAX_RECORDS_PER_READ);
    let entries = deps.store.read_log(&log, next, limit).await?;
    // Records past the retention period are gone for readers at once, whether or not the
    // sweeper has removed them yet; the iterator still moves past them.
    let retained_from = stream.retained_from(now);
    let mut bytes = 0;
    let mut records = Vec::with_capacity(entries.len());
    let mut following = next;
    for entry in &entries {
        if entry.at_millis < retained_from {
            following = entry.sequence + 1;
            continue;
        }
        bytes += entry.data.len() + entry.meta.len();
        if bytes > MAX_BYTES_PER_READ && !records.is_empty() {
            break;
        }
        records.push(Record {
            sequence_number: sequence_number(entry.sequence),
            approximate_arrival_timestamp: EpochSeconds::from_millis(entry.at_millis),
            data: BASE64.encode(&entry.data),
            partition_key: entry.meta.clone(),
            encryption_type: "NONE",
        });
        following = entry.sequence + 1;
    }
    let tail = deps.store.log_tail(&log).await?;
    let behind = if following > tail {
        0
    } else {
        // The oldest record not yet read tells how far behind the tip this reader is.
        deps.store
            .read_log(&log, following, 1)
            .await?
            .first()
            .map_or(0, |e| (now - e.at_millis).max(0))
    };
    Ok(GetRecordsOutput {
        records,
        next_shard_iterator: issue_iterator(deps, ctx, &stream.name, shard_id, following),
        millis_behind_latest: behind,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn partition_keys_hash_with_md5_as_aws_does() {
        // MD5("a") = 0cc175b9c0f1b6a831c399e269772661
        assert_eq!(super::hash_key("a"), 0x0cc175b9c0f1b6a831c399e269772661);
    }
}
