//! PutRecord and PutRecordBatch: the records of one call appended to the stream's buffer log
//! as ONE entry (their bytes concatenated, as they will be delivered), durable before the call
//! answers; the stream's flusher is woken to deliver them. One entry per call rather than per
//! record keeps a 500-record call to one row in the store, which is where the time went.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::streams::{load, CursorRecord, StreamRecord};
use super::FirehoseError;
use crate::protocol::RequestContext;
use crate::services::Deps;
use crate::store::{self, NewEntry, Store, Write};

/// The most bytes one PutRecordBatch call may carry (AWS: 4 MiB).
const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;
/// The most undelivered puts (buffer entries) a stream may hold; past it, puts are refused
/// with "Slow down." (AWS's throttling answer) until delivery catches up, so that a missing
/// bucket cannot make the buffer grow without end.
pub(super) const MAX_BUFFERED_PUTS: i64 = 100_000;

/// The `RecordId` of a record: the stream's generation, its buffer entry and its place in it.
fn record_id(stream: &StreamRecord, sequence: i64, index: usize) -> String {
    format!("{}{sequence:020}{index:03}", stream.generation)
}

/// Appends records to an ACTIVE DirectPut stream as one durable buffer entry; returns the
/// stream and the entry's position in its buffer.
pub(super) async fn append(
    store: &dyn Store,
    account: &str,
    region: &str,
    name: &str,
    records: Vec<Vec<u8>>,
    at_millis: i64,
) -> Result<(StreamRecord, i64), FirehoseError> {
    let (stream, _) = load(store, account, region, name).await?;
    if stream.status(at_millis) != "ACTIVE" {
        return Err(super::streams::not_found(account, name));
    }
    if stream.stream_type != "DirectPut" {
        return Err(FirehoseError::InvalidArgument(format!(
            "This operation is not permitted on {} delivery stream type.",
            stream.stream_type
        )));
    }
    let log = stream.buffer_log(account, region);
    let delivered = store::load::<CursorRecord>(store, &stream.cursor_key(account, region))
        .await?
        .map_or(0, |(cursor, _)| cursor.delivered);
    if store.log_tail(&log).await? - delivered >= MAX_BUFFERED_PUTS {
        return Err(FirehoseError::ServiceUnavailable("Slow down.".to_owned()));
    }
    let entry = NewEntry {
        at_millis,
        meta: records.len().to_string(),
        data: records.concat(),
        span: None,
    };
    let sequence = store
        .write(vec![Write::Append { log, entry }])
        .await?
        .first()
        .copied()
        .ok_or(FirehoseError::InternalFailure)?;
    Ok((stream, sequence))
}

/// One record as the wire has it (Data in base64, checked by the model).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RecordInput {
    data: String,
}

fn decode(record: &RecordInput) -> Result<Vec<u8>, FirehoseError> {
    BASE64
        .decode(record.data.as_bytes())
        .map_err(|_| FirehoseError::InvalidArgument("Data must be base64-encoded.".to_owned()))
}

/// PutRecord input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordInput {
    delivery_stream_name: String,
    record: RecordInput,
}

/// PutRecord.
pub async fn put_record(
    deps: &Deps,
    ctx: &RequestContext,
    input: PutRecordInput,
) -> Result<PutRecordOutput, FirehoseError> {
    let data = decode(&input.record)?;
    let (stream, sequence) = append(
        deps.store.as_ref(),
        &ctx.account_id,
        &ctx.region,
        &input.delivery_stream_name,
        vec![data],
        ctx.received_at_millis(),
    )
    .await?;
    deps.firehose
        .wake(&ctx.account_id, &ctx.region, &stream.name);
    Ok(PutRecordOutput {
        record_id: record_id(&stream, sequence, 0),
        encrypted: false,
    })
}

/// PutRecord output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordOutput {
    record_id: String,
    encrypted: bool,
}

/// One record of PutRecordBatch.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordBatchResponseEntry {
    record_id: String,
}

/// PutRecordBatch output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordBatchOutput {
    failed_put_count: usize,
    encrypted: bool,
    request_responses: Vec<PutRecordBatchResponseEntry>,
}

/// PutRecordBatch input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordBatchInput {
    delivery_stream_name: String,
    records: Vec<RecordInput>,
}

/// PutRecordBatch: all records in one atomic batch, so each gets a RecordId, or the call
/// fails as a whole and the SDK's retry puts them again.
pub async fn put_record_batch(
    deps: &Deps,
    ctx: &RequestContext,
    input: PutRecordBatchInput,
) -> Result<PutRecordBatchOutput, FirehoseError> {
    let records = input
        .records
        .iter()
        .map(decode)
        .collect::<Result<Vec<_>, _>>()?;
    let total: usize = records.iter().map(Vec::len).sum();
    if total > MAX_BATCH_BYTES {
        return Err(FirehoseError::InvalidArgument(format!(
            "Records size exceeds 4 MB limit: the request carries {total} bytes of data."
        )));
    }
    let count = records.len();
    let (stream, sequence) = append(
        deps.store.as_ref(),
        &ctx.account_id,
        &ctx.region,
        &input.delivery_stream_name,
        records,
        ctx.received_at_millis(),
    )
    .await?;
    deps.firehose
        .wake(&ctx.account_id, &ctx.region, &stream.name);
    let request_responses = (0..count)
        .map(|index| PutRecordBatchResponseEntry {
            record_id: record_id(&stream, sequence, index),
        })
        .collect();
    Ok(PutRecordBatchOutput {
        failed_put_count: 0,
        encrypted: false,
        request_responses,
    })
}
