//! Subscription filters: which events of a log group are delivered where.
//!
//! A filter's target is a Kinesis stream of the caller, or a CloudWatch Logs destination of any
//! account whose access policy allows the caller (evaluated with [`crate::policy`]). The
//! records AWS sends (gzip JSON envelopes, `DATA_MESSAGE` and the `CONTROL_MESSAGE` sent when a
//! filter is created) are built here and handed to the shared pipeline's outbox, each with its
//! sender (the destination's owner and role, or the filter's): a stream of another account
//! accepts them only while its resource policy allows that role (`services::kinesis`).

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::destinations::{check_role_arn, grants_organization, DestinationRecord};
use super::groups::load_group;
use super::pattern::FilterPattern;
use super::{LogsError, DESTINATION, SUBSCRIPTION_FILTER};
use crate::arn::Arn;
use crate::pipeline::{Delivery, Encoding, Enqueued, Sender, StreamTarget, Target};
use crate::policy::{Decision, Request};
use crate::protocol::RequestContext;
use crate::services::kit::{load, load_all, put, Pages};
use crate::services::{firehose, kinesis, Deps};
use crate::store::{Expect, RecordKey, Write};

/// Subscription filters per log group (AWS's quota, not adjustable).
const MAX_FILTERS_PER_GROUP: usize = 2;
/// Largest uncompressed envelope per record, so that a record never exceeds the 1 MiB that a
/// Kinesis record may hold.
const MAX_ENVELOPE_BYTES: usize = 1_000_000;

/// A subscription filter as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct FilterRecord {
    pub group: String,
    pub name: String,
    pub filter_pattern: String,
    pub destination_arn: String,
    pub role_arn: Option<String>,
    pub distribution: String,
    pub creation_time: i64,
    /// The filter's account, the sender of its direct deliveries (absent in records written
    /// before it was kept: those are the target stream's account, the only one allowed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

/// An event as it travels in an envelope.
#[derive(Debug, Clone, Serialize)]
pub(super) struct EnvelopeEvent {
    pub id: String,
    pub timestamp: i64,
    pub message: String,
}

/// Where a filter's events go and who writes them there: the destination's owner and role, or
/// the filter's own account and role for a stream of its own. The sink checks the sender
/// against the target's resource policy when the target is another account's.
#[derive(Debug, Clone)]
pub(super) struct Route {
    pub target: Target,
    pub sender: Sender,
}

fn filter_key(ctx: &RequestContext, group: &str, name: &str) -> RecordKey {
    RecordKey::new(
        SUBSCRIPTION_FILTER,
        &ctx.account_id,
        &ctx.region,
        &format!("{group}:{name}"),
    )
}

/// The Kinesis stream a filter's destination ARN delivers into, checking the caller may use it.
async fn resolve_target(
    deps: &Deps,
    ctx: &RequestContext,
    destination_arn: &str,
    role_arn: Option<&str>,
) -> Result<Route, LogsError> {
    let invalid = |why: &str| {
        LogsError::InvalidParameter(format!("Invalid destinationArn '{destination_arn}': {why}"))
    };
    let parsed = Arn::parse(destination_arn).ok_or_else(|| invalid("not a valid ARN"))?;
    match (parsed.service, parsed.resource.split_once(['/', ':'])) {
        ("kinesis", Some(("stream", stream))) => {
            if parsed.account != ctx.account_id || parsed.region != ctx.region {
                return Err(invalid("a Kinesis stream target must be in the caller's account and region; use a destination for other accounts"));
            }
            let key = RecordKey::new(crate::services::kinesis::STREAM_KIND, parsed.account, parsed.region, stream);
            if deps.store.get(&key).await?.is_none() {
                return Err(LogsError::InvalidParameter(
                    "Could not deliver test message to specified Kinesis stream. Check if the given kinesis stream is in ACTIVE state.".to_owned(),
                ));
            }
            Ok(Route {
                target: Target::KinesisStream(StreamTarget { account: parsed.account.to_owned(), region: parsed.region.to_owned(), stream: stream.to_owned() }),
                sender: Sender { account: ctx.account_id.clone(), role_arn: role_arn.map(str::to_owned) },
            })
        }
        ("firehose", Some(("deliverystream", stream))) => {
            if parsed.account != ctx.account_id || parsed.region != ctx.region {
                return Err(invalid("a Firehose stream target must be in the caller's account and region; use a destination for other accounts"));
            }
            if !firehose::is_active(deps.store.as_ref(), parsed.account, parsed.region, stream).await? {
                return Err(LogsError::InvalidParameter(
                    "Could not deliver test message to specified Firehose stream. Check if the given Firehose stream is in ACTIVE state.".to_owned(),
                ));
            }
            Ok(Route {
                target: Target::FirehoseStream(StreamTarget { account: parsed.account.to_owned(), region: parsed.region.to_owned(), stream: stream.to_owned() }),
                sender: Sender { account: ctx.account_id.clone(), role_arn: role_arn.map(str::to_owned) },
            })
        }
        ("lambda", _) => Err(invalid("Lambda functions are not a target Sluice can deliver to")),
        ("logs", Some(("destination", name))) => {
            let key = RecordKey::new(DESTINATION, parsed.account, parsed.region, name);
            let (destination, _) = load::<DestinationRecord>(deps, &key)
                .await?
                .ok_or_else(|| LogsError::ResourceNotFound("The specified destination does not exist.".to_owned()))?;
            // A destination writes with its own role; the subscriber's role is for its own
            // Kinesis and Firehose streams only. AWS takes one from the subscriber only where
            // the destination grants an organization (aws:PrincipalOrgID).
            if role_arn.is_some() && !destination.policy.as_ref().is_some_and(grants_organization) {
                return Err(LogsError::InvalidParameter(
                    "destinationArn for vendor logs cannot be used with roleArn".to_owned(),
                ));
            }
            if parsed.account != ctx.account_id {
                let decision = destination.policy.as_ref().map_or(Decision::ImplicitDeny, |policy| {
                    policy.evaluate(&Request {
                        principal_account: &ctx.account_id,
                        principal_arn: None,
                        action: "logs:PutSubscriptionFilter",
                        resource: destination_arn,
                    })
                });
                if decision != Decision::Allow {
                    return Err(LogsError::AccessDenied(format!(
                        "User with accountId: {} is not authorized to perform: logs:PutSubscriptionFilter on resource: {destination_arn}",
                        ctx.account_id
                    )));
                }
            }
            let route = destination_route(&destination, parsed.account)?;
            // AWS sends a test message through the destination; where its stream belongs to
            // yet another account, that account's policy must still let the role write.
            let writable = match &route.target {
                Target::KinesisStream(t) => {
                    t.account == route.sender.account
                        || kinesis::may_write(deps.store.as_ref(), &t.account, &t.region, &t.stream, &route.sender).await?
                }
                // A Firehose stream has no resource policy: only its own account writes.
                Target::FirehoseStream(t) => t.account == route.sender.account,
                Target::S3Object(_) => false,
            };
            if !writable {
                return Err(LogsError::InvalidParameter(
                    "Could not deliver test message to specified destination. Check if the destination is valid.".to_owned(),
                ));
            }
            Ok(route)
        }
        _ => Err(invalid("the destination must be a Kinesis stream, a Firehose stream or a CloudWatch Logs destination")),
    }
}

/// Where a destination delivers now (its target may have changed since a filter was made),
/// written by the destination's owner with the destination's role.
fn destination_route(destination: &DestinationRecord, owner: &str) -> Result<Route, LogsError> {
    Ok(Route {
        target: destination_target(destination)?,
        sender: Sender {
            account: owner.to_owned(),
            role_arn: Some(destination.role_arn.clone()),
        },
    })
}

fn destination_target(destination: &DestinationRecord) -> Result<Target, LogsError> {
    let parsed = Arn::parse(&destination.target_arn).ok_or_else(|| {
        LogsError::InvalidParameter(format!(
            "Destination target {} is not an ARN",
            destination.target_arn
        ))
    })?;
    stream_target(&parsed).ok_or_else(|| {
        LogsError::InvalidParameter(format!(
            "Destination target {} is not a Kinesis or Firehose stream",
            destination.target_arn
        ))
    })
}

/// The Kinesis or Firehose stream an ARN names.
fn stream_target(parsed: &Arn) -> Option<Target> {
    let target = |stream: &str| StreamTarget {
        account: parsed.account.to_owned(),
        region: parsed.region.to_owned(),
        stream: stream.to_owned(),
    };
    match (parsed.service, parsed.resource.split_once('/')) {
        ("kinesis", Some(("stream", stream))) => Some(Target::KinesisStream(target(stream))),
        ("firehose", Some(("deliverystream", stream))) => {
            Some(Target::FirehoseStream(target(stream)))
        }
        _ => None,
    }
}

/// The target of a stored filter at delivery time.
pub(super) async fn current_target(deps: &Deps, filter: &FilterRecord) -> Result<Route, LogsError> {
    let parsed = Arn::parse(&filter.destination_arn).ok_or(LogsError::ServiceUnavailable)?;
    match parsed.service {
        "logs" => {
            let name = parsed
                .resource
                .strip_prefix("destination:")
                .unwrap_or_default();
            let key = RecordKey::new(DESTINATION, parsed.account, parsed.region, name);
            let (destination, _) =
                load::<DestinationRecord>(deps, &key)
                    .await?
                    .ok_or_else(|| {
                        LogsError::ResourceNotFound(
                            "The specified destination does not exist.".to_owned(),
                        )
                    })?;
            destination_route(&destination, parsed.account)
        }
        _ => Ok(Route {
            target: stream_target(&parsed).ok_or(LogsError::ServiceUnavailable)?,
            sender: Sender {
                account: filter
                    .owner
                    .clone()
                    .unwrap_or_else(|| parsed.account.to_owned()),
                role_arn: filter.role_arn.clone(),
            },
        }),
    }
}

/// Queues `events` of one stream for a filter's target, split into envelopes that each fit
/// a Kinesis record.
#[allow(clippy::too_many_arguments)]
pub(super) fn envelopes(
    owner: &str,
    group: &str,
    stream: &str,
    filter: &FilterRecord,
    route: &Route,
    events: &[EnvelopeEvent],
    at_millis: i64,
    enqueued: &mut Enqueued,
) -> Result<(), LogsError> {
    let partition_key = if filter.distribution == "Random" {
        uuid::Uuid::new_v4().to_string()
    } else {
        stream.to_owned()
    };
    let delivery = Delivery {
        target: route.target.clone(),
        partition_key,
        encoding: Encoding::Gzip,
        sender: Some(route.sender.clone()),
    };
    let mut chunk: Vec<&EnvelopeEvent> = Vec::new();
    let mut size = 0;
    let mut flush = |chunk: &mut Vec<&EnvelopeEvent>| -> Result<(), LogsError> {
        if chunk.is_empty() {
            return Ok(());
        }
        let envelope = json!({
            "messageType": "DATA_MESSAGE",
            "owner": owner,
            "logGroup": group,
            "logStream": stream,
            "subscriptionFilters": [filter.name],
            "logEvents": chunk,
        });
        enqueued.push(&delivery, envelope.to_string().into_bytes(), at_millis)?;
        chunk.clear();
        Ok(())
    };
    for event in events {
        let event_size = event.message.len() + event.id.len() + 64;
        if size + event_size > MAX_ENVELOPE_BYTES {
            flush(&mut chunk)?;
            size = 0;
        }
        size += event_size;
        chunk.push(event);
    }
    flush(&mut chunk)?;
    Ok(())
}

/// PutSubscriptionFilter input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutSubscriptionFilterInput {
    log_group_name: String,
    filter_name: String,
    filter_pattern: String,
    destination_arn: String,
    role_arn: Option<String>,
    distribution: Option<String>,
}

/// Creates a filter or updates it in place, and sends the target AWS's control message.
pub async fn put_subscription_filter(
    deps: &Deps,
    ctx: &RequestContext,
    input: PutSubscriptionFilterInput,
) -> Result<(), LogsError> {
    let group = &input.log_group_name;
    load_group(deps, ctx, group).await?;
    FilterPattern::parse(&input.filter_pattern)
        .map_err(|err| LogsError::InvalidParameter(err.to_string()))?;
    if let Some(role_arn) = &input.role_arn {
        check_role_arn(role_arn)?;
    }
    let route =
        resolve_target(deps, ctx, &input.destination_arn, input.role_arn.as_deref()).await?;
    // resolve_target accepted the ARN.
    let vendor = Arn::parse(&input.destination_arn).map_or("logs", |arn| arn.service);
    if vendor != "logs" && input.role_arn.is_none() {
        return Err(LogsError::InvalidParameter(format!(
            "destinationArn for vendor {vendor} cannot be used without roleArn"
        )));
    }
    let key = filter_key(ctx, group, &input.filter_name);
    let existing = load::<FilterRecord>(deps, &key).await?;
    let expect = match &existing {
        Some((_, version)) => Expect::Version(*version),
        None => {
            let count =
                load_all::<FilterRecord>(deps, ctx, SUBSCRIPTION_FILTER, &format!("{group}:"))
                    .await?
                    .len();
            if count >= MAX_FILTERS_PER_GROUP {
                return Err(LogsError::LimitExceeded(
                    "Resource limit exceeded.".to_owned(),
                ));
            }
            Expect::Absent
        }
    };
    let record = FilterRecord {
        group: group.clone(),
        name: input.filter_name.clone(),
        filter_pattern: input.filter_pattern,
        destination_arn: input.destination_arn,
        role_arn: input.role_arn,
        distribution: input
            .distribution
            .unwrap_or_else(|| "ByLogStream".to_owned()),
        creation_time: existing.map_or(ctx.received_at_millis(), |(old, _)| old.creation_time),
        owner: Some(ctx.account_id.clone()),
    };
    let control = json!({
        "messageType": "CONTROL_MESSAGE",
        "owner": "CloudwatchLogs",
        "logGroup": "",
        "logStream": "",
        "subscriptionFilters": [],
        "logEvents": [{
            "id": "",
            "timestamp": ctx.received_at_millis(),
            "message": match route.target {
                Target::FirehoseStream(_) => "CWL CONTROL MESSAGE: Checking health of destination Firehose.",
                _ => "CWL CONTROL MESSAGE: Checking health of destination Kinesis stream.",
            },
        }],
    });
    let delivery = Delivery {
        target: route.target,
        partition_key: uuid::Uuid::new_v4().to_string(),
        encoding: Encoding::Gzip,
        sender: Some(route.sender),
    };
    let mut enqueued = Enqueued::default();
    enqueued.push(
        &delivery,
        control.to_string().into_bytes(),
        ctx.received_at_millis(),
    )?;
    let mut batch = vec![put(key, &record, expect)?];
    batch.extend(enqueued.take_writes());
    deps.store.write(batch).await?;
    deps.delivery.queued(&enqueued);
    Ok(())
}

/// DescribeSubscriptionFilters input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeSubscriptionFiltersInput {
    log_group_name: String,
    filter_name_prefix: Option<String>,
    next_token: Option<String>,
    limit: Option<usize>,
}

/// Lists a group's filters in name order.
pub async fn describe_subscription_filters(
    deps: &Deps,
    ctx: &RequestContext,
    input: DescribeSubscriptionFiltersInput,
) -> Result<DescribeSubscriptionFiltersOutput, LogsError> {
    let group = &input.log_group_name;
    load_group(deps, ctx, group).await?;
    let prefix = input.filter_name_prefix.unwrap_or_default();
    let pages = Pages::new(
        deps,
        ctx,
        "logs:DescribeSubscriptionFilters",
        &format!("{group}:{prefix}"),
    );
    let after = pages.after::<LogsError>(input.next_token.as_deref())?;
    let filters: Vec<FilterRecord> =
        load_all::<FilterRecord>(deps, ctx, SUBSCRIPTION_FILTER, &format!("{group}:{prefix}"))
            .await?
            .into_iter()
            .filter(|f| after.as_deref().is_none_or(|a| f.name.as_str() > a))
            .collect();
    let (page, next_token) = pages.slice(filters, input.limit.unwrap_or(50), |f| &f.name);
    let subscription_filters = page
        .into_iter()
        .map(|f| SubscriptionFilter {
            filter_name: f.name,
            log_group_name: f.group,
            filter_pattern: f.filter_pattern,
            destination_arn: f.destination_arn,
            role_arn: f.role_arn,
            distribution: f.distribution,
            apply_on_transformed_logs: false,
            creation_time: f.creation_time,
        })
        .collect();
    Ok(DescribeSubscriptionFiltersOutput {
        subscription_filters,
        next_token,
    })
}

/// A subscription filter on the wire.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionFilter {
    filter_name: String,
    log_group_name: String,
    filter_pattern: String,
    destination_arn: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    role_arn: Option<String>,
    distribution: String,
    apply_on_transformed_logs: bool,
    creation_time: i64,
}

/// DescribeSubscriptionFilters output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeSubscriptionFiltersOutput {
    subscription_filters: Vec<SubscriptionFilter>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

/// DeleteSubscriptionFilter input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteSubscriptionFilterInput {
    log_group_name: String,
    filter_name: String,
}

/// Deletes a filter.
pub async fn delete_subscription_filter(
    deps: &Deps,
    ctx: &RequestContext,
    input: DeleteSubscriptionFilterInput,
) -> Result<(), LogsError> {
    load_group(deps, ctx, &input.log_group_name).await?;
    let key = filter_key(ctx, &input.log_group_name, &input.filter_name);
    let (_, version) = load::<FilterRecord>(deps, &key).await?.ok_or_else(|| {
        LogsError::ResourceNotFound("The specified subscription filter does not exist.".to_owned())
    })?;
    deps.store
        .write(vec![Write::Delete {
            key,
            expect: Expect::Version(version),
        }])
        .await?;
    Ok(())
}
