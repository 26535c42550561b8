//! Log groups and log streams: create, delete, describe, and retention policies.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{LogsError, LOG_EVENTS, LOG_GROUP, LOG_STREAM, SUBSCRIPTION_FILTER};
use crate::arn;
use crate::protocol::RequestContext;
use crate::services::kit::{load, load_all, put, Encoded, Pages};
use crate::services::Deps;
use crate::store::{Expect, RecordKey, Store, StoreError, Write};

/// The retention periods AWS accepts, in days.
pub const RETENTION_DAYS: [i64; 22] = [
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

/// A log group as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct LogGroupRecord {
    pub name: String,
    /// Epoch milliseconds.
    pub creation_time: i64,
    pub retention_in_days: Option<i64>,
    /// When the retention policy in force was set, epoch milliseconds (absent on groups
    /// stored before this was kept: their policy counts as set long ago).
    #[serde(default)]
    pub retention_set_at: Option<i64>,
    pub kms_key_id: Option<String>,
    pub log_group_class: String,
    pub deletion_protection_enabled: bool,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// A log stream as stored; the event statistics move with every PutLogEvents.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct LogStreamRecord {
    pub group: String,
    pub name: String,
    pub creation_time: i64,
    pub first_event_timestamp: Option<i64>,
    pub last_event_timestamp: Option<i64>,
    pub last_ingestion_time: Option<i64>,
    /// Counts batches, so that `nextSequenceToken` moves as AWS's does.
    pub batches: i64,
}

/// How long events stored before a retention policy was set stay readable after it: AWS
/// deletes expired events "typically up to 72 hours" after they expire, and its documentation
/// tells operators to keep a shortened policy that long before the old events are gone.
/// Events stored under the policy disappear as soon as they expire.
pub(super) const RETENTION_CHANGE_GRACE_MILLIS: i64 = 72 * 60 * 60 * 1000;
const DAY_MILLIS: i64 = 24 * 60 * 60 * 1000;

/// What a group's retention policy hides at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Expiry {
    /// Events with a timestamp below this are expired.
    pub cutoff: i64,
    /// While the grace after a policy change runs: expired events ingested before this (the
    /// moment the policy was set) are still shown.
    pub spared_before: Option<i64>,
}

impl Expiry {
    /// The expiry of a group at `now`, or `None` when it keeps events forever.
    pub fn of(group: &LogGroupRecord, now: i64) -> Option<Expiry> {
        let days = group.retention_in_days?;
        let spared_before = group
            .retention_set_at
            .filter(|set_at| now < set_at.saturating_add(RETENTION_CHANGE_GRACE_MILLIS));
        Some(Expiry {
            cutoff: now.saturating_sub(days.saturating_mul(DAY_MILLIS)),
            spared_before,
        })
    }

    /// Whether an event with this timestamp and ingestion time is hidden.
    pub fn hides(&self, timestamp: i64, ingestion_time: i64) -> bool {
        timestamp < self.cutoff
            && self
                .spared_before
                .is_none_or(|set_at| ingestion_time >= set_at)
    }
}

/// Removes stored batches whose newest event is past their group's retention, at most about
/// `limit`, a bounded transaction at a time; returns how many went. While the grace after a
/// policy change runs, batches stored before the change are left alone, as reads show them.
/// Each stream keeps its last batch, so numbering carries on.
pub async fn expire(store: &dyn Store, now: i64, limit: usize) -> Result<usize, StoreError> {
    let mut budget = crate::store::expiry::Budget::new(limit);
    let mut scan = crate::store::expiry::RecordScan::new(store, LOG_GROUP);
    while let Some(page) = scan.next_page().await? {
        for record in &page {
            let Ok(group) = serde_json::from_value::<LogGroupRecord>(record.body.clone()) else {
                tracing::warn!(group = %record.key.name, "Unreadable log group record; not expiring its events.");
                continue;
            };
            let Some(expiry) = Expiry::of(&group, now) else {
                continue;
            };
            // During the grace after a policy change, only what was stored under the policy.
            let accepted_from = expiry.spared_before.unwrap_or(i64::MIN);
            let (account, region) = (&record.key.account, &record.key.region);
            let streams = crate::store::load_all::<LogStreamRecord>(
                store,
                LOG_STREAM,
                account,
                region,
                &format!("{}:", group.name),
            )
            .await?;
            for (_, stream, _) in streams {
                let log = RecordKey::new(
                    LOG_EVENTS,
                    account,
                    region,
                    &format!("{}:{}", group.name, stream.name),
                );
                budget
                    .drain(|chunk| store.expire_log(&log, expiry.cutoff, accepted_from, chunk))
                    .await?;
                if budget.remaining() == 0 {
                    return Ok(budget.removed());
                }
            }
        }
    }
    Ok(budget.removed())
}

/// The key of a log group's record.
pub(super) fn group_key(ctx: &RequestContext, group: &str) -> RecordKey {
    RecordKey::new(LOG_GROUP, &ctx.account_id, &ctx.region, group)
}

/// The key of a log stream's record, and of its events' log.
pub(super) fn stream_key(ctx: &RequestContext, group: &str, stream: &str) -> RecordKey {
    RecordKey::new(
        LOG_STREAM,
        &ctx.account_id,
        &ctx.region,
        &format!("{group}:{stream}"),
    )
}

/// The log holding a stream's events.
pub(super) fn events_log(ctx: &RequestContext, group: &str, stream: &str) -> RecordKey {
    RecordKey::new(
        LOG_EVENTS,
        &ctx.account_id,
        &ctx.region,
        &format!("{group}:{stream}"),
    )
}

/// `arn:...:log-group:NAME` (DescribeLogGroups also shows it with a trailing `:*`).
pub(super) fn group_arn(ctx: &RequestContext, group: &str) -> String {
    format!(
        "arn:{}:logs:{}:{}:log-group:{group}",
        arn::partition(&ctx.region),
        ctx.region,
        ctx.account_id
    )
}

pub(super) fn group_not_found() -> LogsError {
    LogsError::ResourceNotFound("The specified log group does not exist.".to_owned())
}

pub(super) fn stream_not_found() -> LogsError {
    LogsError::ResourceNotFound("The specified log stream does not exist.".to_owned())
}

/// Loads a log group of the caller.
pub(super) async fn load_group(
    deps: &Deps,
    ctx: &RequestContext,
    group: &str,
) -> Result<(LogGroupRecord, i64), LogsError> {
    load(deps, &group_key(ctx, group))
        .await?
        .ok_or_else(group_not_found)
}

fn check_retention(days: i64) -> Result<(), LogsError> {
    if RETENTION_DAYS.contains(&days) {
        Ok(())
    } else {
        Err(LogsError::InvalidParameter(format!(
            "1 validation error detected: Value '{days}' at 'retentionInDays' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
            RETENTION_DAYS.map(|d| d.to_string()).join(", ")
        )))
    }
}

fn already_exists(what: &str) -> impl Fn(StoreError) -> LogsError + '_ {
    move |err| match err {
        StoreError::Conflict(_) => {
            LogsError::ResourceAlreadyExists(format!("The specified {what} already exists"))
        }
        other => other.into(),
    }
}

/// CreateLogGroup input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateLogGroupInput {
    log_group_name: String,
    kms_key_id: Option<String>,
    log_group_class: Option<String>,
    deletion_protection_enabled: Option<bool>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

/// Creates a log group.
pub async fn create_log_group(
    deps: &Deps,
    ctx: &RequestContext,
    input: CreateLogGroupInput,
) -> Result<(), LogsError> {
    super::destinations::check_tag_keys(input.tags.keys())?;
    let record = LogGroupRecord {
        name: input.log_group_name.clone(),
        creation_time: ctx.received_at_millis(),
        retention_in_days: None,
        retention_set_at: None,
        kms_key_id: input.kms_key_id,
        log_group_class: input
            .log_group_class
            .unwrap_or_else(|| "STANDARD".to_owned()),
        deletion_protection_enabled: input.deletion_protection_enabled.unwrap_or(false),
        tags: input.tags,
    };
    let write = put(
        group_key(ctx, &input.log_group_name),
        &record,
        Expect::Absent,
    )?;
    deps.store
        .write(vec![write])
        .await
        .map_err(already_exists("log group"))?;
    Ok(())
}

/// DeleteLogGroup input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteLogGroupInput {
    log_group_name: String,
}

/// Deletes a log group with its streams, their events and its subscription filters, at once.
pub async fn delete_log_group(
    deps: &Deps,
    ctx: &RequestContext,
    input: DeleteLogGroupInput,
) -> Result<(), LogsError> {
    let group = &input.log_group_name;
    let (record, version) = load_group(deps, ctx, group).await?;
    if record.deletion_protection_enabled {
        return Err(LogsError::Validation(format!(
            "Log group {group} has deletion protection enabled; disable it before deleting the log group."
        )));
    }
    let prefix = format!("{group}:");
    let mut batch = vec![Write::Delete {
        key: group_key(ctx, group),
        expect: Expect::Version(version),
    }];
    for stream in load_all::<LogStreamRecord>(deps, ctx, LOG_STREAM, &prefix).await? {
        batch.push(Write::Delete {
            key: stream_key(ctx, group, &stream.name),
            expect: Expect::Any,
        });
        batch.push(Write::DeleteLog {
            log: events_log(ctx, group, &stream.name),
        });
    }
    for filter in deps
        .store
        .list(
            SUBSCRIPTION_FILTER,
            &ctx.account_id,
            &ctx.region,
            &prefix,
            None,
            usize::MAX,
        )
        .await?
    {
        batch.push(Write::Delete {
            key: filter.key,
            expect: Expect::Any,
        });
    }
    deps.store.write(batch).await?;
    Ok(())
}

/// DescribeLogGroups input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeLogGroupsInput {
    log_group_name_prefix: Option<String>,
    log_group_name_pattern: Option<String>,
    log_group_class: Option<String>,
    next_token: Option<String>,
    limit: Option<usize>,
}

/// Lists log groups in name order by prefix or by case-insensitive substring.
pub async fn describe_log_groups(
    deps: &Deps,
    ctx: &RequestContext,
    input: DescribeLogGroupsInput,
) -> Result<DescribeLogGroupsOutput, LogsError> {
    if input.log_group_name_prefix.is_some() && input.log_group_name_pattern.is_some() {
        return Err(LogsError::InvalidParameter(
            "LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters."
                .to_owned(),
        ));
    }
    let prefix = input.log_group_name_prefix.unwrap_or_default();
    let pattern = input.log_group_name_pattern.map(|p| p.to_lowercase());
    let filter = format!("{prefix}:{}", pattern.as_deref().unwrap_or(""));
    let pages = Pages::new(deps, ctx, "logs:DescribeLogGroups", &filter);
    let after = pages.after::<LogsError>(input.next_token.as_deref())?;
    let limit = input.limit.unwrap_or(50);
    let wire = |g: LogGroupRecord| {
        let log_group_arn = group_arn(ctx, &g.name);
        LogGroup {
            arn: format!("{log_group_arn}:*"),
            log_group_arn,
            log_group_name: g.name,
            creation_time: g.creation_time,
            retention_in_days: g.retention_in_days,
            metric_filter_count: 0,
            stored_bytes: 0,
            kms_key_id: g.kms_key_id,
            log_group_class: g.log_group_class,
            deletion_protection_enabled: g.deletion_protection_enabled,
        }
    };
    let (log_groups, next_token) = if pattern.is_none() && input.log_group_class.is_none() {
        // Only the page is read, each group decoded and encoded once per version.
        pages
            .encoded_after::<LogGroupRecord, _, LogsError>(
                LOG_GROUP,
                &prefix,
                after.as_deref(),
                limit,
                wire,
            )
            .await?
    } else {
        let groups: Vec<LogGroupRecord> = load_all::<LogGroupRecord>(deps, ctx, LOG_GROUP, &prefix)
            .await?
            .into_iter()
            .filter(|g| after.as_deref().is_none_or(|a| g.name.as_str() > a))
            .filter(|g| {
                pattern
                    .as_deref()
                    .is_none_or(|p| g.name.to_lowercase().contains(p))
            })
            .filter(|g| {
                input
                    .log_group_class
                    .as_deref()
                    .is_none_or(|c| g.log_group_class == c)
            })
            .collect();
        let (page, next_token) = pages.slice(groups, limit, |g| &g.name);
        let page = page
            .into_iter()
            .map(|g| Encoded::new(&wire(g)))
            .collect::<Result<_, _>>()?;
        (page, next_token)
    };
    Ok(DescribeLogGroupsOutput {
        log_groups,
        next_token,
    })
}

/// A log group on the wire.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogGroup {
    log_group_name: String,
    creation_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    retention_in_days: Option<i64>,
    metric_filter_count: i64,
    arn: String,
    log_group_arn: String,
    stored_bytes: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    kms_key_id: Option<String>,
    log_group_class: String,
    deletion_protection_enabled: bool,
}

/// DescribeLogGroups output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeLogGroupsOutput {
    log_groups: Vec<Encoded<LogGroup>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

/// PutRetentionPolicy input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutRetentionPolicyInput {
    log_group_name: String,
    retention_in_days: i64,
}

/// Sets how long a group keeps events.
pub async fn put_retention_policy(
    deps: &Deps,
    ctx: &RequestContext,
    input: PutRetentionPolicyInput,
) -> Result<(), LogsError> {
    check_retention(input.retention_in_days)?;
    let (mut record, version) = load_group(deps, ctx, &input.log_group_name).await?;
    record.retention_in_days = Some(input.retention_in_days);
    record.retention_set_at = Some(ctx.received_at_millis());
    deps.store
        .write(vec![put(
            group_key(ctx, &record.name),
            &record,
            Expect::Version(version),
        )?])
        .await?;
    Ok(())
}

/// DeleteRetentionPolicy input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteRetentionPolicyInput {
    log_group_name: String,
}

/// Keeps a group's events forever again.
pub async fn delete_retention_policy(
    deps: &Deps,
    ctx: &RequestContext,
    input: DeleteRetentionPolicyInput,
) -> Result<(), LogsError> {
    let (mut record, version) = load_group(deps, ctx, &input.log_group_name).await?;
    record.retention_in_days = None;
    record.retention_set_at = None;
    deps.store
        .write(vec![put(
            group_key(ctx, &record.name),
            &record,
            Expect::Version(version),
        )?])
        .await?;
    Ok(())
}

/// CreateLogStream input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateLogStreamInput {
    log_group_name: String,
    log_stream_name: String,
}

/// Creates a log stream in an existing group.
pub async fn create_log_stream(
    deps: &Deps,
    ctx: &RequestContext,
    input: CreateLogStreamInput,
) -> Result<(), LogsError> {
    load_group(deps, ctx, &input.log_group_name).await?;
    let record = LogStreamRecord {
        group: input.log_group_name.clone(),
        name: input.log_stream_name.clone(),
        creation_time: ctx.received_at_millis(),
        first_event_timestamp: None,
        last_event_timestamp: None,
        last_ingestion_time: None,
        batches: 0,
    };
    let write = put(
        stream_key(ctx, &input.log_group_name, &input.log_stream_name),
        &record,
        Expect::Absent,
    )?;
    deps.store
        .write(vec![write])
        .await
        .map_err(already_exists("log stream"))?;
    Ok(())
}

/// DeleteLogStream input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteLogStreamInput {
    log_group_name: String,
    log_stream_name: String,
}

/// Deletes a log stream and its events.
pub async fn delete_log_stream(
    deps: &Deps,
    ctx: &RequestContext,
    input: DeleteLogStreamInput,
) -> Result<(), LogsError> {
    load_group(deps, ctx, &input.log_group_name).await?;
    let key = stream_key(ctx, &input.log_group_name, &input.log_stream_name);
    let (_, version) = load::<LogStreamRecord>(deps, &key)
        .await?
        .ok_or_else(stream_not_found)?;
    deps.store
        .write(vec![
            Write::Delete {
                key,
                expect: Expect::Version(version),
            },
            Write::DeleteLog {
                log: events_log(ctx, &input.log_group_name, &input.log_stream_name),
            },
        ])
        .await?;
    Ok(())
}

/// DescribeLogStreams input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeLogStreamsInput {
    log_group_name: Option<String>,
    log_group_identifier: Option<String>,
    log_stream_name_prefix: Option<String>,
    order_by: Option<String>,
    #[serde(default)]
    descending: bool,
    next_token: Option<String>,
    limit: Option<usize>,
}

/// The group a `logGroupName` or `logGroupIdentifier` (name or ARN) names.
pub(super) fn group_name(
    name: Option<String>,
    identifier: Option<String>,
) -> Result<String, LogsError> {
    match (name, identifier) {
        (Some(_), Some(_)) => Err(LogsError::InvalidParameter(
            "LogGroup name and LogGroup identifier are mutually exclusive parameters.".to_owned(),
        )),
        (Some(name), None) => Ok(name),
        (None, Some(identifier)) => Ok(identifier
            .strip_suffix(":*")
            .unwrap_or(&identifier)
            .rsplit_once(":log-group:")
            .map_or(identifier.as_str(), |(_, name)| name)
            .to_owned()),
        (None, None) => Err(LogsError::InvalidParameter(
            "Either logGroupName or logGroupIdentifier must be provided.".to_owned(),
        )),
    }
}

/// Lists a group's streams by name or by last event time, a page at a time.
pub async fn describe_log_streams(
    deps: &Deps,
    ctx: &RequestContext,
    input: DescribeLogStreamsInput,
) -> Result<DescribeLogStreamsOutput, LogsError> {
    let group = group_name(input.log_group_name, input.log_group_identifier)?;
    load_group(deps, ctx, &group).await?;
    let by_time = input.order_by.as_deref() == Some("LastEventTime");
    if by_time && input.log_stream_name_prefix.is_some() {
        return Err(LogsError::InvalidParameter(
            "Cannot order by LastEventTime with a logStreamNamePrefix.".to_owned(),
        ));
    }
    let prefix = input.log_stream_name_prefix.unwrap_or_default();
    let mut streams =
        load_all::<LogStreamRecord>(deps, ctx, LOG_STREAM, &format!("{group}:{prefix}")).await?;
    if by_time {
        streams.sort_by(|a, b| {
            (a.last_event_timestamp, &a.name).cmp(&(b.last_event_timestamp, &b.name))
        });
    }
    if input.descending {
        streams.reverse();
    }
    let filter = format!("{group}:{prefix}:{by_time}:{}", input.descending);
    let pages = Pages::new(deps, ctx, "logs:DescribeLogStreams", &filter);
    // The position is an offset: streams ordered by event time have no name order to resume.
    let skip: usize = pages
        .after::<LogsError>(input.next_token.as_deref())?
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let limit = input.limit.unwrap_or(50);
    let next_token =
        (streams.len() > skip + limit).then(|| pages.token_after(&(skip + limit).to_string()));
    let group_arn = group_arn(ctx, &group);
    let log_streams = streams
        .into_iter()
        .skip(skip)
        .take(limit)
        .map(|s| LogStream {
            arn: format!("{group_arn}:log-stream:{}", s.name),
            log_stream_name: s.name,
            creation_time: s.creation_time,
            first_event_timestamp: s.first_event_timestamp,
            last_event_timestamp: s.last_event_timestamp,
            last_ingestion_time: s.last_ingestion_time,
            stored_bytes: 0,
        })
        .collect();
    Ok(DescribeLogStreamsOutput {
        log_streams,
        next_token,
    })
}

/// A log stream on the wire.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogStream {
    log_stream_name: String,
    creation_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_event_timestamp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_event_timestamp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_ingestion_time: Option<i64>,
    arn: String,
    stored_bytes: i64,
}

/// DescribeLogStreams output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeLogStreamsOutput {
    log_streams: Vec<LogStream>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}
