//! Streams and their shards: CreateStream, DeleteStream, DescribeStream,
//! DescribeStreamSummary, ListStreams, ListShards, and the retention period
//! (IncreaseStreamRetentionPeriod, DecreaseStreamRetentionPeriod).
//!
//! Streams become ACTIVE as soon as CreateStream returns: there is no provisioning to wait
//! for, and SDK waiters (`stream_exists`) see ACTIVE on their first poll.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::KinesisError;
use crate::arn::{self, Arn};
use crate::policy::PolicyDocument;
use crate::protocol::model::EpochSeconds;
use crate::protocol::RequestContext;
use crate::services::kit::Pages;
use crate::services::Deps;
use crate::store::{Expect, RecordKey, Write};
use crate::token::TokenError;

/// Record kind of streams.
pub(super) const STREAM: &str = "kinesis/stream";
/// Log kind of shards; a shard's log is named `STREAM/SHARD_ID`.
pub(super) const SHARD: &str = "kinesis/shard";
/// Shards of an on-demand stream at creation (AWS starts on-demand streams with 4).
const ON_DEMAND_SHARDS: u32 = 4;
/// The default shard quota per account and region (AWS: 500 in most regions; here a data
/// constant so it can follow AWS's quota page).
const MAX_SHARDS_PER_ACCOUNT: u32 = 500;
/// Records stay readable this long unless the stream says otherwise (AWS's default, and the
/// shortest retention AWS allows).
pub(super) const RETENTION_HOURS: i64 = 24;
/// The longest retention AWS allows (365 days).
const MAX_RETENTION_HOURS: i64 = 8760;

fn default_retention() -> i64 {
    RETENTION_HOURS
}

/// A stream as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct StreamRecord {
    pub name: String,
    pub arn: String,
    /// Epoch seconds.
    pub created: f64,
    pub mode: String,
    pub shards: Vec<ShardRecord>,
    /// How long records stay readable (IncreaseStreamRetentionPeriod and
    /// DecreaseStreamRetentionPeriod); streams stored before it existed have AWS's default.
    #[serde(default = "default_retention")]
    pub retention_hours: i64,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// The resource policy (PutResourcePolicy), kept in the stream's own record so that it is
    /// changed conditionally with the stream and goes when the stream is deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<StreamPolicy>,
}

/// A stream's resource policy: the text as given, answered by GetResourcePolicy, and its
/// parsed form, evaluated for writers of other accounts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct StreamPolicy {
    pub text: String,
    pub document: PolicyDocument,
}

/// A shard's fixed hash-key range.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct ShardRecord {
    pub id: String,
    #[serde(with = "decimal_u128")]
    pub starting_hash_key: u128,
    #[serde(with = "decimal_u128")]
    pub ending_hash_key: u128,
}

/// 128-bit integers as decimal strings: JSON numbers (and `serde_json::Value`) stop at 64 bits.
mod decimal_u128 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &u128, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(value)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u128, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl StreamRecord {
    /// The store address of one shard's log.
    pub fn shard_log(&self, account: &str, region: &str, shard_id: &str) -> RecordKey {
        RecordKey::new(SHARD, account, region, &format!("{}/{shard_id}", self.name))
    }

    /// The earliest arrival time (epoch milliseconds) still readable at `now`.
    pub fn retained_from(&self, now: i64) -> i64 {
        now.saturating_sub(self.retention_hours.saturating_mul(60 * 60 * 1000))
    }

    /// The shard whose range holds a 128-bit hash key.
    pub fn shard_for(&self, hash_key: u128) -> Option<&ShardRecord> {
        self.shards
            .iter()
            .find(|shard| shard.starting_hash_key <= hash_key && hash_key <= shard.ending_hash_key)
    }
}

/// The first sequence number of every shard, as a 56-digit string like AWS's. Entry `n` of a
/// shard's log has sequence number `49` followed by `n` on 54 digits, so the strings sort and
/// compare as numbers do.
pub(super) fn sequence_number(sequence: i64) -> String {
    format!("49{sequence:054}")
}

/// The log position of a sequence number written by [`sequence_number`].
pub(super) fn parse_sequence_number(text: &str) -> Option<i64> {
    text.strip_prefix("49")
        .filter(|digits| digits.len() == 54)
        .and_then(|digits| digits.parse().ok())
}

/// Identifies a stream by `StreamName` or `StreamARN`, as every operation allows.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamRef {
    stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    stream_arn: Option<String>,
}

impl StreamRef {
    /// A reference by name.
    pub(super) fn named(name: &str) -> Self {
        Self {
            stream_name: Some(name.to_owned()),
            stream_arn: None,
        }
    }

    /// A reference by ARN.
    pub(super) fn by_arn(arn: &str) -> Self {
        Self {
            stream_name: None,
            stream_arn: Some(arn.to_owned()),
        }
    }
}

fn not_found(ctx: &RequestContext, name: &str) -> KinesisError {
    KinesisError::ResourceNotFound(format!(
        "Stream {name} under account {} not found.",
        ctx.account_id
    ))
}

pub(super) fn stream_key(ctx: &RequestContext, name: &str) -> RecordKey {
    RecordKey::new(STREAM, &ctx.account_id, &ctx.region, name)
}

/// Loads the stream a request names, in the caller's own account and region.
pub(super) async fn load(
    deps: &Deps,
    ctx: &RequestContext,
    stream: &StreamRef,
) -> Result<(StreamRecord, i64), KinesisError> {
    let name = match (&stream.stream_name, &stream.stream_arn) {
        (Some(name), _) => name.clone(),
        (None, Some(stream_arn)) => {
            let parsed = Arn::parse(stream_arn)
                .filter(|a| a.service == "kinesis")
                .ok_or_else(|| {
                    KinesisError::InvalidArgument(format!("Invalid StreamARN {stream_arn}"))
                })?;
            let name = parsed
                .resource
                .strip_prefix("stream/")
                .unwrap_or_default()
                .to_owned();
            if parsed.account != ctx.account_id || parsed.region != ctx.region {
                return Err(not_found(ctx, &name));
            }
            name
        }
        (None, None) => {
            return Err(KinesisError::Validation(
                "Either StreamName or StreamARN should be provided.".to_owned(),
            ))
        }
    };
    let record = deps
        .store
        .get(&stream_key(ctx, &name))
        .await?
        .ok_or_else(|| not_found(ctx, &name))?;
    let stream = serde_json::from_value(record.body).map_err(|_| KinesisError::InternalFailure)?;
    Ok((stream, record.version))
}

/// Splits the 128-bit hash-key space evenly over `count` shards.
fn even_shards(count: u32) -> Vec<ShardRecord> {
    let step = u128::MAX / u128::from(count);
    (0..count)
        .map(|index| {
            let start = step * u128::from(index);
            let end = if index + 1 == count {
                u128::MAX
            } else {
                step * u128::from(index + 1) - 1
            };
            ShardRecord {
                id: format!("shardId-{index:012}"),
                starting_hash_key: start,
                ending_hash_key: end,
            }
        })
        .collect()
}

/// CreateStream input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateStreamInput {
    stream_name: String,
    shard_count: Option<u32>,
    stream_mode_details: Option<StreamModeDetails>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

/// `StreamModeDetails`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamModeDetails {
    stream_mode: String,
}

/// Creates a stream, ACTIVE at once.
pub async fn create_stream(
    deps: &Deps,
    ctx: &RequestContext,
    input: CreateStreamInput,
) -> Result<(), KinesisError> {
    let mode = input
        .stream_mode_details
        .map_or_else(|| "PROVISIONED".to_owned(), |m| m.stream_mode);
    let shard_count = match (mode.as_str(), input.shard_count) {
        ("ON_DEMAND", None) => ON_DEMAND_SHARDS,
        ("ON_DEMAND", Some(_)) => {
            return Err(KinesisError::InvalidArgument(
                "ShardCount must not be set for an ON_DEMAND stream.".to_owned(),
            ))
        }
        (_, Some(count)) => count,
        (_, None) => {
            return Err(KinesisError::InvalidArgument(
                "ShardCount is required for a PROVISIONED stream.".to_owned(),
            ))
        }
    };
    let existing: u32 = deps
        .store
        .list(STREAM, &ctx.account_id, &ctx.region, "", None, usize::MAX)
        .await?
        .into_iter()
        .filter_map(|r| serde_json::from_value::<StreamRecord>(r.body).ok())
        .map(|s| s.shards.len() as u32)
        .sum();
    if existing + shard_count > MAX_SHARDS_PER_ACCOUNT {
        return Err(KinesisError::LimitExceeded(format!(
            "This request would exceed the shard limit for the account {} in {}. Current shard count for the account: {existing}. Limit: {MAX_SHARDS_PER_ACCOUNT}.",
            ctx.account_id, ctx.region
        )));
    }
    let stream = StreamRecord {
        arn: format!(
            "arn:{}:kinesis:{}:{}:stream/{}",
            arn::partition(&ctx.region),
            ctx.region,
            ctx.account_id,
            input.stream_name
        ),
        name: input.stream_name.clone(),
        created: ctx.received_at.unix_timestamp() as f64,
        mode,
        shards: even_shards(shard_count),
        retention_hours: RETENTION_HOURS,
        tags: input.tags,
        policy: None,
    };
    let body = serde_json::to_value(&stream).map_err(|_| KinesisError::InternalFailure)?;
    let write = Write::Put {
        key: stream_key(ctx, &input.stream_name),
        body,
        expect: Expect::Absent,
    };
    deps.store
        .write(vec![write])
        .await
        .map_err(|err| match err {
            crate::store::StoreError::Conflict(_) => KinesisError::ResourceInUse(format!(
                "Stream {} under account {} already exists.",
                input.stream_name, ctx.account_id
            )),
            other => other.into(),
        })?;
    Ok(())
}

/// DeleteStream input.
#[derive(Debug, Deserialize)]
pub struct DeleteStreamInput {
    #[serde(flatten)]
    stream: StreamRef,
}

/// Deletes a stream and every shard's records, in one batch.
pub async fn delete_stream(
    deps: &Deps,
    ctx: &RequestContext,
    input: DeleteStreamInput,
) -> Result<(), KinesisError> {
    let (stream, version) = load(deps, ctx, &input.stream).await?;
    let mut batch = vec![Write::Delete {
        key: stream_key(ctx, &stream.name),
        expect: Expect::Version(version),
    }];
    batch.extend(stream.shards.iter().map(|shard| Write::DeleteLog {
        log: stream.shard_log(&ctx.account_id, &ctx.region, &shard.id),
    }));
    deps.store.write(batch).await?;
    Ok(())
}

/// A shard on the wire.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Shard {
    shard_id: String,
    hash_key_range: HashKeyRange,
    sequence_number_range: SequenceNumberRange,
}

/// A shard's hash keys, as decimal text.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct HashKeyRange {
    starting_hash_key: String,
    ending_hash_key: String,
}

/// A shard's sequence numbers; open shards have no end.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SequenceNumberRange {
    starting_sequence_number: String,
}

impl From<&ShardRecord> for Shard {
    fn from(shard: &ShardRecord) -> Self {
        Shard {
            shard_id: shard.id.clone(),
            hash_key_range: HashKeyRange {
                starting_hash_key: shard.starting_hash_key.to_string(),
                ending_hash_key: shard.ending_hash_key.to_string(),
            },
            sequence_number_range: SequenceNumberRange {
                starting_sequence_number: sequence_number(0),
            },
        }
    }
}

/// `EnhancedMonitoring`: Sluice keeps no shard-level metrics.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EnhancedMetrics {
    shard_level_metrics: Vec<String>,
}

fn no_enhanced_monitoring() -> Vec<EnhancedMetrics> {
    vec![EnhancedMetrics {
        shard_level_metrics: Vec::new(),
    }]
}

/// DescribeStream output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeStreamOutput {
    stream_description: StreamDescription,
}

/// A stream with a page of its shards.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamDescription {
    stream_name: String,
    #[serde(rename = "StreamARN")]
    stream_arn: String,
    stream_status: &'static str,
    stream_mode_details: StreamModeDetails,
    shards: Vec<Shard>,
    has_more_shards: bool,
    retention_period_hours: i64,
    stream_creation_timestamp: EpochSeconds,
    enhanced_monitoring: Vec<EnhancedMetrics>,
    encryption_type: &'static str,
}

/// DescribeStreamSummary output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeStreamSummaryOutput {
    stream_description_summary: StreamDescriptionSummary,
}

/// A stream without its shards.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamDescriptionSummary {
    stream_name: String,
    #[serde(rename = "StreamARN")]
    stream_arn: String,
    stream_status: &'static str,
    stream_mode_details: StreamModeDetails,
    retention_period_hours: i64,
    stream_creation_timestamp: EpochSeconds,
    enhanced_monitoring: Vec<EnhancedMetrics>,
    encryption_type: &'static str,
    open_shard_count: usize,
    consumer_count: usize,
}

/// A stream as ListStreams summarises it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamSummary {
    stream_name: String,
    #[serde(rename = "StreamARN")]
    stream_arn: String,
    stream_status: &'static str,
    stream_mode_details: StreamModeDetails,
    stream_creation_timestamp: EpochSeconds,
}

/// ListStreams output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListStreamsOutput {
    stream_names: Vec<String>,
    stream_summaries: Vec<StreamSummary>,
    has_more_streams: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

/// ListShards output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListShardsOutput {
    shards: Vec<Shard>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

/// DescribeStream input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeStreamInput {
    #[serde(flatten)]
    stream: StreamRef,
    limit: Option<usize>,
    exclusive_start_shard_id: Option<String>,
}

/// Describes a stream with a page of its shards (100 by default, as AWS).
pub async fn describe_stream(
    deps: &Deps,
    ctx: &RequestContext,
    input: DescribeStreamInput,
) -> Result<DescribeStreamOutput, KinesisError> {
    let (stream, _) = load(deps, ctx, &input.stream).await?;
    let after = input.exclusive_start_shard_id.as_deref();
    let remaining: Vec<&ShardRecord> = stream
        .shards
        .iter()
        .filter(|s| after.is_none_or(|a| s.id.as_str() > a))
        .collect();
    let limit = input.limit.unwrap_or(100);
    let shards = remaining
        .iter()
        .take(limit)
        .map(|s| Shard::from(*s))
        .collect();
    let has_more_shards = remaining.len() > limit;
    Ok(DescribeStreamOutput {
        stream_description: StreamDescription {
            stream_name: stream.name,
            stream_arn: stream.arn,
            stream_status: "ACTIVE",
            stream_mode_details: StreamModeDetails {
                stream_mode: stream.mode,
            },
            shards,
            has_more_shards,
            retention_period_hours: stream.retention_hours,
            stream_creation_timestamp: EpochSeconds(stream.created),
            enhanced_monitoring: no_enhanced_monitoring(),
            encryption_type: "NONE",
        },
    })
}

/// DescribeStreamSummary input.
#[derive(Debug, Deserialize)]
pub struct DescribeStreamSummaryInput {
    #[serde(flatten)]
    stream: StreamRef,
}

/// Describes a stream without its shards.
pub async fn describe_stream_summary(
    deps: &Deps,
    ctx: &RequestContext,
    input: DescribeStreamSummaryInput,
) -> Result<DescribeStreamSummaryOutput, KinesisError> {
    let (stream, _) = load(deps, ctx, &input.stream).await?;
    Ok(DescribeStreamSummaryOutput {
        stream_description_summary: StreamDescriptionSummary {
            open_shard_count: stream.shards.len(),
            stream_name: stream.name,
            stream_arn: stream.arn,
            stream_status: "ACTIVE",
            stream_mode_details: StreamModeDetails {
                stream_mode: stream.mode,
            },
            retention_period_hours: stream.retention_hours,
            stream_creation_timestamp: EpochSeconds(stream.created),
            enhanced_monitoring: no_enhanced_monitoring(),
            encryption_type: "NONE",
            consumer_count: 0,
        },
    })
}

/// IncreaseStreamRetentionPeriod and DecreaseStreamRetentionPeriod input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RetentionInput {
    #[serde(flatten)]
    stream: StreamRef,
    retention_period_hours: i64,
}

/// Which way a retention change may go: each call only moves one way, as AWS's do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetentionChange {
    /// IncreaseStreamRetentionPeriod.
    Increase,
    /// DecreaseStreamRetentionPeriod.
    Decrease,
}

/// IncreaseStreamRetentionPeriod.
pub async fn increase_retention(
    deps: &Deps,
    ctx: &RequestContext,
    input: RetentionInput,
) -> Result<(), KinesisError> {
    change_retention(deps, ctx, input, RetentionChange::Increase).await
}

/// DecreaseStreamRetentionPeriod.
pub async fn decrease_retention(
    deps: &Deps,
    ctx: &RequestContext,
    input: RetentionInput,
) -> Result<(), KinesisError> {
    change_retention(deps, ctx, input, RetentionChange::Decrease).await
}

/// Changes a stream's retention period within AWS's 24 to 8,760 hours. Shortening it hides
/// older records from readers at once; lengthening it brings back nothing already past the
/// old period that the sweeper removed (as AWS: expired data stays inaccessible).
async fn change_retention(
    deps: &Deps,
    ctx: &RequestContext,
    input: RetentionInput,
    change: RetentionChange,
) -> Result<(), KinesisError> {
    let hours = input.retention_period_hours;
    if hours < RETENTION_HOURS {
        return Err(KinesisError::InvalidArgument(format!(
            "Minimum allowed retention period is {RETENTION_HOURS} hours. Requested retention period ({hours} hours) is too short."
        )));
    }
    if hours > MAX_RETENTION_HOURS {
        return Err(KinesisError::InvalidArgument(format!(
            "Maximum allowed retention period is {MAX_RETENTION_HOURS} hours. Requested retention period ({hours} hours) is too long."
        )));
    }
    let (mut stream, version) = load(deps, ctx, &input.stream).await?;
    let current = stream.retention_hours;
    match change {
        RetentionChange::Increase if hours < current => {
            return Err(KinesisError::InvalidArgument(format!(
                "Requested retention period ({hours} hours) for stream {} can not be shorter than existing retention period ({current} hours). Use DecreaseRetentionPeriod API.",
                stream.name
            )))
        }
        RetentionChange::Decrease if hours > current => {
            return Err(KinesisError::InvalidArgument(format!(
                "Requested retention period ({hours} hours) for stream {} can not be longer than existing retention period ({current} hours). Use IncreaseRetentionPeriod API.",
                stream.name
            )))
        }
        _ => {}
    }
    stream.retention_hours = hours;
    let body = serde_json::to_value(&stream).map_err(|_| KinesisError::InternalFailure)?;
    deps.store
        .write(vec![Write::Put {
            key: stream_key(ctx, &stream.name),
            body,
            expect: Expect::Version(version),
        }])
        .await?;
    Ok(())
}

/// ListStreams input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListStreamsInput {
    limit: Option<usize>,
    exclusive_start_stream_name: Option<String>,
    next_token: Option<String>,
}

/// Lists stream names in order, a page at a time (100 by default).
pub async fn list_streams(
    deps: &Deps,
    ctx: &RequestContext,
    input: ListStreamsInput,
) -> Result<ListStreamsOutput, KinesisError> {
    let pages = Pages::new(deps, ctx, "kinesis:ListStreams", "");
    let after = match &input.next_token {
        Some(_) => pages.after::<KinesisError>(input.next_token.as_deref())?,
        None => input.exclusive_start_stream_name,
    };
    let limit = input.limit.unwrap_or(100);
    let (streams, next_token) = pages
        .records_after::<StreamRecord, KinesisError>(STREAM, "", after.as_deref(), limit)
        .await?;
    Ok(ListStreamsOutput {
        stream_names: streams.iter().map(|s| s.name.clone()).collect(),
        stream_summaries: streams
            .into_iter()
            .map(|s| StreamSummary {
                stream_name: s.name,
                stream_arn: s.arn,
                stream_status: "ACTIVE",
                stream_mode_details: StreamModeDetails {
                    stream_mode: s.mode,
                },
                stream_creation_timestamp: EpochSeconds(s.created),
            })
            .collect(),
        has_more_streams: next_token.is_some(),
        next_token,
    })
}

/// ListShards input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListShardsInput {
    #[serde(flatten)]
    stream: StreamRef,
    max_results: Option<usize>,
    exclusive_start_shard_id: Option<String>,
    next_token: Option<String>,
}

/// Lists a stream's shards, a page at a time (1,000 by default, as AWS).
pub async fn list_shards(
    deps: &Deps,
    ctx: &RequestContext,
    input: ListShardsInput,
) -> Result<ListShardsOutput, KinesisError> {
    let (stream_ref, after) = match &input.next_token {
        Some(token) => {
            if input.stream.stream_name.is_some() || input.stream.stream_arn.is_some() {
                return Err(KinesisError::InvalidArgument(
                    "NextToken and StreamName or StreamARN cannot be provided together.".to_owned(),
                ));
            }
            let scope = format!("kinesis:ListShards:{}:{}", ctx.account_id, ctx.region);
            let state = deps
                .tokens
                .open(&scope, token, ctx.received_at_millis())
                .map_err(|err| match err {
                    TokenError::Invalid => {
                        KinesisError::InvalidArgument(format!("Invalid NextToken {token}"))
                    }
                    TokenError::Expired => {
                        KinesisError::ExpiredNextToken(format!("NextToken {token} has expired"))
                    }
                })?;
            let name = state
                .get("stream")
                .and_then(|v| v.as_str())
                .map(str::to_owned);
            let after = state
                .get("after")
                .and_then(|v| v.as_str())
                .map(str::to_owned);
            (
                StreamRef {
                    stream_name: name,
                    stream_arn: None,
                },
                after,
            )
        }
        None => (input.stream, input.exclusive_start_shard_id),
    };
    let (stream, _) = load(deps, ctx, &stream_ref).await?;
    let remaining: Vec<&ShardRecord> = stream
        .shards
        .iter()
        .filter(|s| after.as_deref().is_none_or(|a| s.id.as_str() > a))
        .collect();
    let limit = input.max_results.unwrap_or(1000);
    let page: Vec<&&ShardRecord> = remaining.iter().take(limit).collect();
    let next_token = match page.last() {
        Some(last) if remaining.len() > limit => {
            let scope = format!("kinesis:ListShards:{}:{}", ctx.account_id, ctx.region);
            Some(deps.tokens.issue(
                &scope,
                json!({ "stream": stream.name, "after": last.id }),
                ctx.received_at_millis(),
            ))
        }
        _ => None,
    };
    Ok(ListShardsOutput {
        shards: page.iter().map(|s| Shard::from(**s)).collect(),
        next_token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_the_hash_space_without_gaps() {
        for count in [1, 2, 3, 7] {
            let shards = even_shards(count);
            assert_eq!(shards[0].starting_hash_key, 0);
            assert_eq!(shards.last().map(|s| s.ending_hash_key), Some(u128::MAX));
            for pair in shards.windows(2) {
                assert_eq!(pair[0].ending_hash_key + 1, pair[1].starting_hash_key);
            }
        }
    }

    #[test]
    fn sequence_numbers_round_trip_and_sort() {
        assert_eq!(sequence_number(7).len(), 56);
        assert_eq!(parse_sequence_number(&sequence_number(123)), Some(123));
        assert!(sequence_number(9) < sequence_number(10));
        assert_eq!(parse_sequence_number("12"), None);
    }
}
