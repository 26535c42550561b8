//! Log events: PutLogEvents, GetLogEvents and FilterLogEvents.
//!
//! Accepted events are appended to their stream's log in the store, and in the *same* batch
//! the subscription filters' deliveries go into the pipeline's outbox: once PutLogEvents
//! answers, both the events and their delivery are durable.

use std::collections::hash_map::DefaultHasher;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::groups::{
    events_log, group_name, load_group, stream_key, stream_not_found, Expiry, LogStreamRecord,
};
use super::pattern::FilterPattern;
use super::reader::{BatchHeader, Merger, Query, Source, StoredEvent, MAX_BATCH_SPAN_MILLIS};
use super::subscriptions::{current_target, envelopes, EnvelopeEvent, FilterRecord};
use super::{LogsError, LOG_STREAM, SUBSCRIPTION_FILTER};
use crate::pipeline::Enqueued;
use crate::protocol::RequestContext;
use crate::services::kit::{self, load, load_all, put, Pages};
use crate::services::Deps;
use crate::store::{Expect, NewEntry, StoreError, TimeOrder, Write};

/// The most bytes of a batch, each event counting its UTF-8 size plus 26.
const MAX_BATCH_BYTES: usize = 1_048_576;
const EVENT_OVERHEAD_BYTES: usize = 26;
const HOUR_MILLIS: i64 = 60 * 60 * 1000;
const DAY_MILLIS: i64 = 24 * HOUR_MILLIS;
/// Events more than 14 days old, or more than 2 hours in the future, are refused.
const TOO_OLD_MILLIS: i64 = 14 * DAY_MILLIS;
const TOO_NEW_MILLIS: i64 = 2 * HOUR_MILLIS;

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
    // The batch's event-time span, which the store indexes for reads by time and retention.
    let first = events.iter().map(|e| e.timestamp).min();
    let last = events.iter().map(|e| e.timestamp).max();
    Ok(NewEntry {
        at_millis,
        meta,
        data,
        span: first.zip(last),
    })
}

/// Accepts a batch of events, reports those it rejects, and queues their deliveries.
pub async fn put_log_events(
    deps: &Deps,
    ctx: &RequestContext,
    input: PutLogEventsInput,
) -> Result<PutLogEventsOutput, LogsError> {
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
        // The reader relies on this bound (see `MAX_BATCH_SPAN_MILLIS`).
        if last.timestamp - first.timestamp > MAX_BATCH_SPAN_MILLIS {
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
    let (accepted, matchers, key) = (&accepted, &matchers, &key);
    let _turn = kit::one_writer(key).await;
    let put = kit::retry(move || async move {
        let (mut record, version) = load::<LogStreamRecord>(deps, key)
            .await?
            .ok_or_else(stream_not_found)?;
        record.batches += 1;
        let batch_number = record.batches;
        let mut batch = Vec::with_capacity(accepted.len() + 2);
        let mut envelope_events = Vec::with_capacity(accepted.len());
        for (index, event) in accepted {
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
        let mut enqueued = Enqueued::default();
        for (filter, pattern, target) in matchers {
            let matching: Vec<EnvelopeEvent> = envelope_events
                .iter()
                .filter(|e| pattern.matches(&e.message))
                .cloned()
                .collect();
            if !matching.is_empty() {
                envelopes(
                    &ctx.account_id,
                    group,
                    stream,
                    filter,
                    target,
                    &matching,
                    now,
                    &mut enqueued,
                )?;
            }
        }
        batch.push(put(key.clone(), &record, Expect::Version(version))?);
        // Refused rather than queued without end when delivery is far behind; the events of
        // a refused batch are not stored either, so nothing acknowledged is ever dropped.
        if !enqueued.is_empty() {
            let pending = deps.delivery.pending();
            if pending >= crate::pipeline::MAX_PENDING_DELIVERIES {
                tracing::warn!(
                    pending,
                    group = %group,
                    "Delivery is behind; refusing PutLogEvents that would queue more."
                );
                return Err(LogsError::DeliveryBacklog { pending });
            }
        }
        batch.extend(enqueued.take_writes());
        deps.store.write(batch).await?;
        deps.delivery.queued(&enqueued);
        let rejected = RejectedLogEventsInfo {
            too_new_log_event_start_index: too_new,
            too_old_log_event_end_index: too_old,
            expired_log_event_end_index: expired,
        };
        let any_rejected = too_new.is_some() || too_old.is_some() || expired.is_some();
        Ok(PutLogEventsOutput {
            next_sequence_token: format!("49{batch_number:054}"),
            rejected_log_events_info: any_rejected.then_some(rejected),
        })
    })
    .await;
    // Still losing to other nodes after every retry: PutLogEvents has no
    // OperationAbortedException in its model; ServiceUnavailableException is what SDKs retry.
    put.map_err(|err| match err {
        LogsError::OperationAborted => LogsError::ServiceUnavailable,
        other => other,
    })
}

/// PutLogEvents output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PutLogEventsOutput {
    next_sequence_token: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    rejected_log_events_info: Option<RejectedLogEventsInfo>,
}

/// Which events of a PutLogEvents batch were not stored, by index.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RejectedLogEventsInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    too_new_log_event_start_index: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    too_old_log_event_end_index: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expired_log_event_end_index: Option<usize>,
}

/// The event timestamps a read keeps, both ends inclusive: `startTime` is inclusive and
/// `endTime` exclusive, and a group's retention raises the start when it hides every older
/// event.
fn read_window(start: Option<i64>, end: Option<i64>, expiry: Option<Expiry>) -> (i64, i64) {
    let mut low = start.unwrap_or(i64::MIN);
    if let Some(expiry) = expiry.filter(|e| e.spared_before.is_none()) {
        low = low.max(expiry.cutoff);
    }
    (low, end.map_or(i64::MAX, |end| end.saturating_sub(1)))
}

/// Whether retention hides an event from reads, before the sweeper has removed it.
fn expired(expiry: Option<Expiry>, event: &StoredEvent) -> bool {
    expiry.is_some_and(|e| e.hides(event.timestamp, event.ingestion_time))
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
    let direction = match parts.next()? {
        "f" => 'f',
        "b" => 'b',
        _ => return None,
    };
    let timestamp = parts.next()?.parse().ok()?;
    let sequence = parts.next()?.parse().ok()?;
    parts
        .next()
        .is_none()
        .then_some((direction, (timestamp, sequence)))
}

/// Reads a stream's events in time order, a page at a time, forward or backward, with the
/// `f/...` and `b/...` tokens AWS uses. At the end, the forward token comes back unchanged.
pub async fn get_log_events(
    deps: &Deps,
    ctx: &RequestContext,
    input: GetLogEventsInput,
) -> Result<GetLogEventsOutput, LogsError> {
    let group = group_name(input.log_group_name, input.log_group_identifier)?;
    let (group_record, _) = load_group(deps, ctx, &group).await?;
    load::<LogStreamRecord>(deps, &stream_key(ctx, &group, &input.log_stream_name))
        .await?
        .ok_or_else(stream_not_found)?;
    let limit = input.limit.unwrap_or(10_000);
    let position = match input.next_token.as_deref() {
        None => None,
        Some(token) => Some(parse_position(token).ok_or(LogsError::InvalidNextToken)?),
    };
    // A forward token or startFromHead reads on from a point; anything else reads back from
    // one (the newest events when there is no token).
    let order = match position {
        Some(('f', _)) => TimeOrder::Forward,
        Some(_) => TimeOrder::Backward,
        None if input.start_from_head.unwrap_or(false) => TimeOrder::Forward,
        None => TimeOrder::Backward,
    };
    let expiry = Expiry::of(&group_record, ctx.received_at_millis());
    let keep = move |e: &StoredEvent| !expired(expiry, e);
    let source = Source {
        log: events_log(ctx, &group, &input.log_stream_name),
        stream: Arc::from(input.log_stream_name.as_str()),
        past: position.map(|(_, past)| past),
    };
    let query = Query {
        order,
        window: read_window(input.start_time, input.end_time, expiry),
        keep: &keep,
        cap: limit,
    };
    let mut merger = Merger::new(&*deps.store, vec![source], query);
    let mut window = Vec::new();
    while window.len() < limit {
        match merger.next().await? {
            Some(event) => window.push(event),
            None => break,
        }
    }
    if order == TimeOrder::Backward {
        window.reverse();
    }
    let forward = match (window.last(), input.next_token.as_deref()) {
        (Some(last), _) => position_token('f', last.timestamp, last.sequence),
        (None, Some(token)) if token.starts_with('f') => token.to_owned(),
        (None, _) => position_token('f', i64::MAX, i64::MAX),
    };
    let backward = match window.first() {
        Some(first) => position_token('b', first.timestamp, first.sequence),
        None => position_token('b', 0, 0),
    };
    let events = window
        .into_iter()
        .map(|e| OutputLogEvent {
            timestamp: e.timestamp,
            message: e.message,
            ingestion_time: e.ingestion_time,
        })
        .collect();
    Ok(GetLogEventsOutput {
        events,
        next_forward_token: forward,
        next_backward_token: backward,
    })
}

/// An event as GetLogEvents gives it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutputLogEvent {
    timestamp: i64,
    message: String,
    ingestion_time: i64,
}

/// GetLogEvents output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GetLogEventsOutput {
    events: Vec<OutputLogEvent>,
    next_forward_token: String,
    next_backward_token: String,
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

/// Where a FilterLogEvents page ends: the last event given, `(timestamp, stream, sequence)`,
/// kept in the signed token as `TIMESTAMP/SEQUENCE/STREAM`.
fn filter_position(after: &str) -> Option<(i64, i64, &str)> {
    let mut parts = after.splitn(3, '/');
    let timestamp = parts.next()?.parse().ok()?;
    let sequence = parts.next()?.parse().ok()?;
    Some((timestamp, sequence, parts.next()?))
}

/// Searches a group's events with a filter pattern, across streams, in time order (ties by
/// stream name, then by arrival), merging the streams' batches through the time index.
pub async fn filter_log_events(
    deps: &Deps,
    ctx: &RequestContext,
    input: FilterLogEventsInput,
) -> Result<FilterLogEventsOutput, LogsError> {
    let group = group_name(input.log_group_name, input.log_group_identifier)?;
    let (group_record, _) = load_group(deps, ctx, &group).await?;
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
    let pages = Pages::new(deps, ctx, "logs:FilterLogEvents", &group);
    let after = pages.after::<LogsError>(input.next_token.as_deref())?;
    // Tokens name the last event given; a bare number (tokens of earlier versions) counts the
    // events to skip.
    let position = after.as_deref().and_then(filter_position);
    let mut skip: usize = after
        .as_deref()
        .filter(|_| position.is_none())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let limit = input.limit.unwrap_or(10_000);
    let expiry = Expiry::of(&group_record, ctx.received_at_millis());
    let keep = move |e: &StoredEvent| !expired(expiry, e) && pattern.matches(&e.message);
    // Streams are in name order (they list by name), which is how ties on a timestamp go.
    let sources = streams
        .iter()
        .map(|stream| Source {
            log: events_log(ctx, &group, &stream.name),
            stream: Arc::from(stream.name.as_str()),
            past: position.map(|(timestamp, sequence, name)| {
                match stream.name.as_str().cmp(name) {
                    std::cmp::Ordering::Less => (timestamp, i64::MAX),
                    std::cmp::Ordering::Equal => (timestamp, sequence),
                    std::cmp::Ordering::Greater => (timestamp, i64::MIN),
                }
            }),
        })
        .collect();
    let query = Query {
        order: TimeOrder::Forward,
        window: read_window(input.start_time, input.end_time, expiry),
        keep: &keep,
        cap: limit.saturating_add(skip).saturating_add(1),
    };
    let mut merger = Merger::new(&*deps.store, sources, query);
    let mut page = Vec::new();
    let mut more = false;
    while let Some(event) = merger.next().await? {
        if skip > 0 {
            skip -= 1;
        } else if page.len() < limit {
            page.push(event);
        } else {
            more = true;
            break;
        }
    }
    let next_token = page.last().filter(|_| more).map(|last| {
        pages.token_after(&format!(
            "{}/{}/{}",
            last.timestamp, last.sequence, last.stream
        ))
    });
    let events = page
        .into_iter()
        .map(|e| FilteredLogEvent {
            log_stream_name: e.stream.to_string(),
            timestamp: e.timestamp,
            message: e.message,
            ingestion_time: e.ingestion_time,
            event_id: e.id,
        })
        .collect();
    let searched_log_streams = streams
        .into_iter()
        .map(|s| SearchedLogStream {
            log_stream_name: s.name,
            searched_completely: true,
        })
        .collect();
    Ok(FilterLogEventsOutput {
        events,
        searched_log_streams,
        next_token,
    })
}

/// An event as FilterLogEvents gives it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FilteredLogEvent {
    log_stream_name: String,
    timestamp: i64,
    message: String,
    ingestion_time: i64,
    event_id: String,
}

/// A stream FilterLogEvents searched.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchedLogStream {
    log_stream_name: String,
    searched_completely: bool,
}

/// FilterLogEvents output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FilterLogEventsOutput {
    events: Vec<FilteredLogEvent>,
    searched_log_streams: Vec<SearchedLogStream>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

/// TestMetricFilter input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TestMetricFilterInput {
    filter_pattern: String,
    log_event_messages: Vec<String>,
}

/// Shows which messages a pattern matches, with the same engine as the filters.
pub async fn test_metric_filter(
    _deps: &Deps,
    _ctx: &RequestContext,
    input: TestMetricFilterInput,
) -> Result<TestMetricFilterOutput, LogsError> {
    let pattern = FilterPattern::parse(&input.filter_pattern)
        .map_err(|err| LogsError::InvalidParameter(err.to_string()))?;
    let matches = input
        .log_event_messages
        .into_iter()
        .enumerate()
        .filter(|(_, message)| pattern.matches(message))
        .map(|(index, message)| MetricFilterMatch {
            event_number: index + 1,
            event_message: message,
            extracted_values: BTreeMap::new(),
        })
        .collect();
    Ok(TestMetricFilterOutput { matches })
}

/// A message TestMetricFilter matched.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricFilterMatch {
    event_number: usize,
    event_message: String,
    extracted_values: BTreeMap<String, String>,
}

/// TestMetricFilter output.
#[derive(Debug, Serialize)]
pub struct TestMetricFilterOutput {
    matches: Vec<MetricFilterMatch>,
}

#[cfg(test)]
mod tests {
    use super::super::reader::unpack;
    use super::*;
    use crate::store::LogEntry;

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
        assert_eq!(entry.span, Some((10, 11)), "the span the store indexes");
        let stored = LogEntry {
            sequence: 7,
            at_millis: entry.at_millis,
            meta: entry.meta,
            data: entry.data,
            span: (10, 11),
        };
        let stream: Arc<str> = Arc::from("s");
        let unpacked = unpack(&stream, &stored).expect("unpack");
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
            unpack(&stream, &truncated).is_err(),
            "a short payload is reported, not sliced out of range"
        );
    }
}
