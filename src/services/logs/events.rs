//! Log events: PutLogEvents, GetLogEvents and FilterLogEvents.
//!
//! Accepted events are appended to their stream's log in the store, and in the *same* batch
//! the subscription filters' deliveries go into the pipeline's outbox: once PutLogEvents
//! answers, both the events and their delivery are durable.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::groups::{
    events_log, group_name, load_group, stream_key, stream_not_found, LogStreamRecord,
};
use super::pattern::FilterPattern;
use super::subscriptions::{current_target, envelopes, EnvelopeEvent, FilterRecord};
use super::{load, load_all, put, LogsError, LOG_STREAM, SUBSCRIPTION_FILTER};
use crate::protocol::RequestContext;
use crate::services::Deps;
use crate::store::{Expect, LogEntry, NewEntry, StoreError, Write};

/// The most bytes of a batch, each event counting its UTF-8 size plus 26.
const MAX_BATCH_BYTES: usize = 1_048_576;
const EVENT_OVERHEAD_BYTES: usize = 26;
const HOUR_MILLIS: i64 = 60 * 60 * 1000;
const DAY_MILLIS: i64 = 24 * HOUR_MILLIS;
/// Events more than 14 days old, or more than 2 hours in the future, are refused.
const TOO_OLD_MILLIS: i64 = 14 * DAY_MILLIS;
const TOO_NEW_MILLIS: i64 = 2 * HOUR_MILLIS;
/// Attempts at a batch when concurrent writers to the same stream collide.
const CONFLICT_RETRIES: usize = 8;

/// One input event.
#[derive(Debug, Deserialize)]
pub struct InputLogEvent {
    timestamp: i64,
    message: String,
}

/// PutLogEvents input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutLogEventsInput {
    log_group_name: String,
    log_stream_name: String,
    log_events: Vec<InputLogEvent>,
}

/// The 56-digit id of an event: its timestamp, its stream, and its place in the stream's
/// batches, so ids are unique and sort by time within a stream, like AWS's. The leading `3`
/// keeps the number free of leading zeros, as AWS's ids are.
fn event_id(timestamp: i64, stream_hash: u64, batch: i64, index: usize) -> String {
    format!(
        "3{:019}{:018}{:012}{:06}",
        timestamp.max(0),
        stream_hash % 1_000_000_000_000_000_000,
        batch,
        index
    )
}

fn stream_hash(ctx: &RequestContext, group: &str, stream: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    (&ctx.account_id, &ctx.region, group, stream).hash(&mut hasher);
    hasher.finish()
}

/// Events of one PutLogEvents call are stored as ONE log entry: the messages concatenated as
/// the payload, and this header (each event's timestamp, id and message length) as metadata.
/// One row per batch instead of one per event is what keeps the write path cheap.
#[derive(Debug, Serialize, Deserialize)]
struct BatchHeader {
    /// `(timestamp, id, message length in bytes)` per event, in batch order.
    events: Vec<(i64, String, usize)>,
}

/// Positions within a stored batch: a batch holds at most 10,000 events, so
/// `entry sequence * 100_000 + index` orders events as they were accepted.
const EVENTS_PER_ENTRY: i64 = 100_000;

fn batch_entry(at_millis: i64, events: &[EnvelopeEvent]) -> Result<NewEntry, LogsError> {
    let header = BatchHeader {
        events: events
            .iter()
            .map(|e| (e.timestamp, e.id.clone(), e.message.len()))
            .collect(),
    };
    let meta =
        serde_json::to_string(&header).map_err(|err| StoreError::Unavailable(err.to_string()))?;
    let data = events
        .iter()
        .flat_map(|e| e.message.as_bytes())
        .copied()
        .collect();
    Ok(NewEntry {
        at_millis,
        meta,
        data,
    })
}

/// The events of one stored batch.
fn unpack(stream: &str, entry: &LogEntry) -> Result<Vec<StoredEvent>, LogsError> {
    let header: BatchHeader = serde_json::from_str(&entry.meta)
        .map_err(|err| StoreError::Unavailable(format!("corrupt log event batch: {err}")))?;
    let mut offset = 0;
    let mut events = Vec::with_capacity(header.events.len());
    for (index, (timestamp, id, length)) in header.events.into_iter().enumerate() {
        let bytes = entry.data.get(offset..offset + length).ok_or_else(|| {
            StoreError::Unavailable("corrupt log event batch: short payload".to_owned())
        })?;
        offset += length;
        events.push(StoredEvent {
            stream: stream.to_owned(),
            timestamp,
            ingestion_time: entry.at_millis,
            id,
            sequence: entry.sequence * EVENTS_PER_ENTRY + index as i64,
            message: String::from_utf8_lossy(bytes).into_owned(),
        });
    }
    Ok(events)
}

/// Accepts a batch of events, reports those it rejects, and queues their deliveries.
pub async fn put_log_events(
    deps: &Deps,
    ctx: &RequestContext,
    input: PutLogEventsInput,
) -> Result<Value, LogsError> {
    let (group, stream) = (&input.log_group_name, &input.log_stream_name);
    let (group_record, _) = load_group(deps, ctx, group).await?;
    let events = &input.log_events;
    if events
        .windows(2)
        .any(|pair| pair[1].timestamp < pair[0].timestamp)
    {
        return Err(LogsError::InvalidParameter(
            "Log events in a single PutLogEvents request must be in chronological order."
                .to_owned(),
        ));
    }
    let size: usize = events
        .iter()
        .map(|e| e.message.len() + EVENT_OVERHEAD_BYTES)
        .sum();
    if size > MAX_BATCH_BYTES {
        return Err(LogsError::InvalidParameter(format!(
            "Upload too large: {size} bytes exceeds limit of {MAX_BATCH_BYTES}"
        )));
    }
    if let (Some(first), Some(last)) = (events.first(), events.last()) {
        if last.timestamp - first.timestamp > DAY_MILLIS {
            return Err(LogsError::InvalidParameter(
                "The batch of log events in a single PutLogEvents request cannot span more than 24 hours.".to_owned(),
            ));
        }
    }
    let now = ctx.received_at_millis();
    let retention = group_record.retention_in_days.map(|days| days * DAY_MILLIS);
    let (mut too_old, mut expired, mut too_new) = (None, None, None);
    let mut accepted = Vec::new();
    for (index, event) in events.iter().enumerate() {
        if event.timestamp < now - TOO_OLD_MILLIS {
            too_old = Some(index);
        } else if retention.is_some_and(|retention| event.timestamp < now - retention) {
            expired = Some(index);
        } else if event.timestamp > now + TOO_NEW_MILLIS {
            too_new = too_new.or(Some(index));
        } else {
            accepted.push((index, event));
        }
    }
    let filters =
        load_all::<FilterRecord>(deps, ctx, SUBSCRIPTION_FILTER, &format!("{group}:")).await?;
    let mut matchers = Vec::with_capacity(filters.len());
    for filter in &filters {
        // Patterns were checked when the filter was put; a filter whose destination is gone
        // delivers nothing rather than failing the producer.
        let (Ok(pattern), Ok(target)) = (
            FilterPattern::parse(&filter.filter_pattern),
            current_target(deps, filter).await,
        ) else {
            tracing::warn!(filter = %filter.name, group = %group, "Subscription filter has no usable target; skipping it.");
            continue;
        };
        matchers.push((filter, pattern, target));
    }
    let hash = stream_hash(ctx, group, stream);
    let key = stream_key(ctx, group, stream);
    for _ in 0..CONFLICT_RETRIES {
        let (mut record, version) = load::<LogStreamRecord>(deps, &key)
            .await?
            .ok_or_else(stream_not_found)?;
        record.batches += 1;
        let batch_number = record.batches;
        let mut batch = Vec::with_capacity(accepted.len() + 2);
        let mut envelope_events = Vec::with_capacity(accepted.len());
        for (index, event) in &accepted {
            let id = event_id(event.timestamp, hash, batch_number, *index);
            envelope_events.push(EnvelopeEvent {
                id,
                timestamp: event.timestamp,
                message: event.message.clone(),
            });
        }
        if !envelope_events.is_empty() {
            batch.push(Write::Append {
                log: events_log(ctx, group, stream),
                entry: batch_entry(now, &envelope_events)?,
            });
        }
        if let (Some((_, first)), Some((_, last))) = (accepted.first(), accepted.last()) {
            record.first_event_timestamp = Some(
                record
                    .first_event_timestamp
                    .map_or(first.timestamp, |t| t.min(first.timestamp)),
            );
            record.last_event_timestamp = Some(
                record
                    .last_event_timestamp
                    .map_or(last.timestamp, |t| t.max(last.timestamp)),
            );
            record.last_ingestion_time = Some(now);
        }
        let mut queued = false;
        for (filter, pattern, target) in &matchers {
            let matching: Vec<EnvelopeEvent> = envelope_events
                .iter()
                .filter(|e| pattern.matches(&e.message))
                .cloned()
                .collect();
            if !matching.is_empty() {
                batch.extend(envelopes(
                    &ctx.account_id,
                    group,
                    stream,
                    filter,
                    target,
                    &matching,
                    now,
                )?);
                queued = true;
            }
        }
        batch.push(put(key.clone(), &record, Expect::Version(version))?);
        match deps.store.write(batch).await {
            Ok(_) => {
                if queued {
                    deps.delivery.notify_one();
                }
                let mut rejected = serde_json::Map::new();
                if let Some(index) = too_new {
                    rejected.insert("tooNewLogEventStartIndex".into(), json!(index));
                }
                if let Some(index) = too_old {
                    rejected.insert("tooOldLogEventEndIndex".into(), json!(index));
                }
                if let Some(index) = expired {
                    rejected.insert("expiredLogEventEndIndex".into(), json!(index));
                }
                let mut output = json!({ "nextSequenceToken": format!("49{batch_number:054}") });
                if !rejected.is_empty() {
                    output["rejectedLogEventsInfo"] = Value::Object(rejected);
                }
                return Ok(output);
            }
            Err(StoreError::Conflict(_)) => continue,
            Err(other) => return Err(other.into()),
        }
    }
    Err(LogsError::OperationAborted)
}

/// One event read back, with what the outputs need.
struct StoredEvent {
    stream: String,
    timestamp: i64,
    ingestion_time: i64,
    id: String,
    sequence: i64,
    message: String,
}

async fn read_stream(
    deps: &Deps,
    ctx: &RequestContext,
    group: &str,
    stream: &str,
) -> Result<Vec<StoredEvent>, LogsError> {
    let entries = deps
        .store
        .read_log(&events_log(ctx, group, stream), 1, usize::MAX)
        .await?;
    let mut events = Vec::new();
    for entry in &entries {
        events.extend(unpack(stream, entry)?);
    }
    Ok(events)
}

fn in_range(timestamp: i64, start: Option<i64>, end: Option<i64>) -> bool {
    start.is_none_or(|s| timestamp >= s) && end.is_none_or(|e| timestamp < e)
}

/// GetLogEvents input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetLogEventsInput {
    log_group_name: Option<String>,
    log_group_identifier: Option<String>,
    log_stream_name: String,
    start_time: Option<i64>,
    end_time: Option<i64>,
    next_token: Option<String>,
    limit: Option<usize>,
    start_from_head: Option<bool>,
}

/// A position between events: `(timestamp, sequence)` of the event before it.
fn position_token(direction: char, timestamp: i64, sequence: i64) -> String {
    format!("{direction}/{timestamp:020}/{sequence:020}")
}

fn parse_position(token: &str) -> Option<(char, (i64, i64))> {
    let mut parts = token.split('/');
    let direction = parts.next()?.chars().next()?;
    let timestamp = parts.next()?.parse().ok()?;
    let sequence = parts.next()?.parse().ok()?;
    (parts.next().is_none() && matches!(direction, 'f' | 'b'))
        .then_some((direction, (timestamp, sequence)))
}

/// Reads a stream's events in time order, a page at a time, forward or backward, with the
/// `f/...` and `b/...` tokens AWS uses. At the end, the forward token comes back unchanged.
pub async fn get_log_events(
    deps: &Deps,
    ctx: &RequestContext,
    input: GetLogEventsInput,
) -> Result<Value, LogsError> {
    let group = group_name(input.log_group_name, input.log_group_identifier)?;
    load_group(deps, ctx, &group).await?;
    load::<LogStreamRecord>(deps, &stream_key(ctx, &group, &input.log_stream_name))
        .await?
        .ok_or_else(stream_not_found)?;
    let mut events = read_stream(deps, ctx, &group, &input.log_stream_name).await?;
    events.retain(|e| in_range(e.timestamp, input.start_time, input.end_time));
    events.sort_by_key(|e| (e.timestamp, e.sequence));
    let limit = input.limit.unwrap_or(10_000);
    let key = |e: &StoredEvent| (e.timestamp, e.sequence);
    let window: &[StoredEvent] = match input.next_token.as_deref() {
        None if input.start_from_head.unwrap_or(false) => &events[..events.len().min(limit)],
        None => &events[events.len().saturating_sub(limit)..],
        Some(token) => {
            let (direction, position) = parse_position(token).ok_or_else(|| {
                LogsError::InvalidParameter(format!("The specified nextToken is invalid: {token}"))
            })?;
            if direction == 'f' {
                let start = events.partition_point(|e| key(e) <= position);
                &events[start..(start + limit).min(events.len())]
            } else {
                let end = events.partition_point(|e| key(e) < position);
                &events[end.saturating_sub(limit)..end]
            }
        }
    };
    let forward = match (window.last(), input.next_token.as_deref()) {
        (Some(last), _) => position_token('f', last.timestamp, last.sequence),
        (None, Some(token)) if token.starts_with('f') => token.to_owned(),
        (None, _) => position_token('f', i64::MAX, i64::MAX),
    };
    let backward = match window.first() {
        Some(first) => position_token('b', first.timestamp, first.sequence),
        None => position_token('b', 0, 0),
    };
    let output: Vec<Value> = window
        .iter()
        .map(|e| json!({ "timestamp": e.timestamp, "message": e.message, "ingestionTime": e.ingestion_time }))
        .collect();
    Ok(json!({ "events": output, "nextForwardToken": forward, "nextBackwardToken": backward }))
}

/// FilterLogEvents input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FilterLogEventsInput {
    log_group_name: Option<String>,
    log_group_identifier: Option<String>,
    log_stream_names: Option<Vec<String>>,
    log_stream_name_prefix: Option<String>,
    start_time: Option<i64>,
    end_time: Option<i64>,
    filter_pattern: Option<String>,
    next_token: Option<String>,
    limit: Option<usize>,
}

/// Searches a group's events with a filter pattern, across streams, in time order.
pub async fn filter_log_events(
    deps: &Deps,
    ctx: &RequestContext,
    input: FilterLogEventsInput,
) -> Result<Value, LogsError> {
    let group = group_name(input.log_group_name, input.log_group_identifier)?;
    load_group(deps, ctx, &group).await?;
    if input.log_stream_names.is_some() && input.log_stream_name_prefix.is_some() {
        return Err(LogsError::InvalidParameter(
            "logStreamNames and logStreamNamePrefix are mutually exclusive parameters.".to_owned(),
        ));
    }
    let pattern = FilterPattern::parse(input.filter_pattern.as_deref().unwrap_or(""))
        .map_err(|err| LogsError::InvalidParameter(err.to_string()))?;
    let prefix = input.log_stream_name_prefix.unwrap_or_default();
    let streams: Vec<LogStreamRecord> =
        load_all::<LogStreamRecord>(deps, ctx, LOG_STREAM, &format!("{group}:{prefix}"))
            .await?
            .into_iter()
            .filter(|s| {
                input
                    .log_stream_names
                    .as_ref()
                    .is_none_or(|names| names.contains(&s.name))
            })
            .collect();
    let mut events = Vec::new();
    for stream in &streams {
        events.extend(read_stream(deps, ctx, &group, &stream.name).await?);
    }
    events.retain(|e| {
        in_range(e.timestamp, input.start_time, input.end_time) && pattern.matches(&e.message)
    });
    events.sort_by(|a, b| {
        (a.timestamp, &a.stream, a.sequence).cmp(&(b.timestamp, &b.stream, b.sequence))
    });
    let scope = format!(
        "logs:FilterLogEvents:{}:{}:{group}",
        ctx.account_id, ctx.region
    );
    let skip: usize = super::groups::open_token(deps, ctx, &scope, input.next_token.as_deref())?
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let limit = input.limit.unwrap_or(10_000);
    let page: Vec<Value> = events
        .iter()
        .skip(skip)
        .take(limit)
        .map(|e| {
            json!({
                "logStreamName": e.stream,
                "timestamp": e.timestamp,
                "message": e.message,
                "ingestionTime": e.ingestion_time,
                "eventId": e.id,
            })
        })
        .collect();
    let next_token = (events.len() > skip + limit).then(|| {
        deps.tokens.issue(
            &scope,
            json!({ "after": (skip + limit).to_string() }),
            ctx.received_at_millis(),
        )
    });
    let searched: Vec<Value> = streams
        .iter()
        .map(|s| json!({ "logStreamName": s.name, "searchedCompletely": true }))
        .collect();
    Ok(json!({ "events": page, "searchedLogStreams": searched, "nextToken": next_token }))
}

/// TestMetricFilter input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TestMetricFilterInput {
    filter_pattern: String,
    log_event_messages: Vec<String>,
}

/// Shows which messages a pattern matches, with the same engine as the filters.
pub async fn test_metric_filter(input: TestMetricFilterInput) -> Result<Value, LogsError> {
    let pattern = FilterPattern::parse(&input.filter_pattern)
        .map_err(|err| LogsError::InvalidParameter(err.to_string()))?;
    let matches: Vec<Value> = input
        .log_event_messages
        .iter()
        .enumerate()
        .filter(|(_, message)| pattern.matches(message))
        .map(|(index, message)| json!({ "eventNumber": index + 1, "eventMessage": message, "extractedValues": {} }))
        .collect();
    Ok(json!({ "matches": matches }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_round_trips_through_one_entry() {
        let events = vec![
            EnvelopeEvent {
                id: "1".into(),
                timestamp: 10,
                message: "héllo 😀".into(),
            },
            EnvelopeEvent {
                id: "2".into(),
                timestamp: 11,
                message: "x".into(),
            },
        ];
        let entry = batch_entry(99, &events).expect("pack");
        let stored = LogEntry {
            sequence: 7,
            at_millis: entry.at_millis,
            meta: entry.meta,
            data: entry.data,
        };
        let unpacked = unpack("s", &stored).expect("unpack");
        let view: Vec<_> = unpacked
            .iter()
            .map(|e| (e.timestamp, e.id.as_str(), e.message.as_str(), e.sequence))
            .collect();
        assert_eq!(
            view,
            [(10, "1", "héllo 😀", 700_000), (11, "2", "x", 700_001)]
        );
        assert_eq!(unpacked[0].ingestion_time, 99);
        let truncated = LogEntry {
            data: stored.data[..3].to_vec(),
            ..stored
        };
        assert!(
            unpack("s", &truncated).is_err(),
            "a short payload is reported, not sliced out of range"
        );
    }
}
