//! Channels: how events from outside AWS reach event data stores. A channel names a source
//! (`Custom` or a partner, fixed at creation) and the `ActivityAuditLog` stores it delivers
//! to.

use serde::{Deserialize, Serialize};

use super::event_data_stores::{self, Family};
use super::limits::{self, MAX_CHANNELS};
pub use super::records::ChannelRecord;
use super::records::IngestionStatus;
use super::{
    key, load, load_all, merge_tags, put, resolve, resource_arn, tags_output, CloudTrailError,
    Guard, Reference, Reservation, ResourceType, Tag, TagInput, Tags, CHANNEL, CHANNEL_INGESTION,
    CHANNEL_NAME, CHANNEL_SET, CHANNEL_SOURCE, EVENT_DATA_STORE,
};
use crate::protocol::model::EpochSeconds;
use crate::protocol::RequestContext;
use crate::services::kit::Pages;
use crate::services::Deps;
use crate::store::{Expect, Write};

impl ChannelRecord {
    fn destinations_output(&self, ctx: &RequestContext) -> Vec<Destination> {
        self.destinations
            .iter()
            .map(|id| Destination {
                kind: "EVENT_DATA_STORE",
                location: resource_arn(ctx, ResourceType::EventDataStore, id),
            })
            .collect()
    }
}

/// One destination of a channel, in an output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Destination {
    #[serde(rename = "Type")]
    kind: &'static str,
    location: String,
}

/// A channel as its operations answer it; each names the members it has.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ChannelOutput {
    channel_arn: String,
    name: String,
    source: String,
    destinations: Vec<Destination>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tags: Option<Vec<Tag>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ingestion_status: Option<IngestionStatusOutput>,
}

/// GetChannel's `IngestionStatus`.
#[derive(Debug, Serialize)]
pub struct IngestionStatusOutput {
    #[serde(
        rename = "LatestIngestionSuccessTime",
        skip_serializing_if = "Option::is_none"
    )]
    success_time: Option<EpochSeconds>,
    #[serde(
        rename = "LatestIngestionSuccessEventID",
        skip_serializing_if = "Option::is_none"
    )]
    success_event_id: Option<String>,
    #[serde(
        rename = "LatestIngestionErrorCode",
        skip_serializing_if = "Option::is_none"
    )]
    error_code: Option<String>,
    #[serde(
        rename = "LatestIngestionAttemptTime",
        skip_serializing_if = "Option::is_none"
    )]
    attempt_time: Option<EpochSeconds>,
    #[serde(
        rename = "LatestIngestionAttemptEventID",
        skip_serializing_if = "Option::is_none"
    )]
    attempt_event_id: Option<String>,
}

impl ChannelRecord {
    fn to_output(&self, ctx: &RequestContext) -> ChannelOutput {
        ChannelOutput {
            channel_arn: resource_arn(ctx, ResourceType::Channel, &self.id),
            name: self.name.clone(),
            source: self.source.clone(),
            destinations: self.destinations_output(ctx),
            tags: None,
            ingestion_status: None,
        }
    }
}

/// One destination on the wire.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DestinationInput {
    #[serde(rename = "Type")]
    kind: String,
    location: String,
}

/// Checks destinations and returns the store IDs they name: stores of the caller's own
/// account and Region that collect `ActivityAuditLog` events and are enabled. With them come
/// rewrites of those stores at the versions read, for the channel's batch: it commits only
/// while every destination is still as checked (not deleted meanwhile).
async fn check_destinations(
    deps: &Deps,
    ctx: &RequestContext,
    destinations: &[DestinationInput],
) -> Result<(Vec<String>, Vec<Write>), CloudTrailError> {
    let mut ids: Vec<String> = Vec::new();
    let mut unchanged = Vec::new();
    for destination in destinations {
        if destination.kind != "EVENT_DATA_STORE" {
            return Err(CloudTrailError::UnsupportedOperation(
                "Service-linked channels (destination type AWS_SERVICE) are created by AWS services, not by CreateChannel or UpdateChannel.".to_owned(),
            ));
        }
        let location = &destination.location;
        let id = match resolve(ctx, ResourceType::EventDataStore, location) {
            Reference::Own(id) => id,
            Reference::Invalid => {
                return Err(CloudTrailError::EventDataStoreArnInvalid(format!(
                    "The specified event data store ARN {location} is not valid."
                )))
            }
            Reference::Foreign => {
                return Err(CloudTrailError::OperationNotPermitted(format!(
                    "A channel can deliver only to event data stores of its own account and Region; {location} is not one."
                )))
            }
        };
        let store_key = key(ctx, EVENT_DATA_STORE, &id);
        let Some((store, version)) =
            load::<event_data_stores::EventDataStoreRecord>(deps, &store_key).await?
        else {
            return Err(event_data_stores::not_found(location));
        };
        if store.family()? != Family::ActivityAuditLog {
            return Err(CloudTrailError::InvalidEventDataStoreCategory(format!(
                "Event data store {location} does not collect ActivityAuditLog events, so a channel cannot deliver to it."
            )));
        }
        if !store.is_active() {
            return Err(CloudTrailError::InactiveEventDataStore(format!(
                "Event data store {location} is {}.",
                store.status
            )));
        }
        if ids.contains(&id) {
            return Err(CloudTrailError::InvalidParameter(format!(
                "The event data store {location} is listed more than once in Destinations."
            )));
        }
        unchanged.push(put(store_key, &store, Expect::Version(version))?);
        ids.push(id);
    }
    Ok((ids, unchanged))
}

fn already_exists(name: &str) -> CloudTrailError {
    CloudTrailError::ChannelAlreadyExists(format!("A channel with the name {name} already exists."))
}

/// CreateChannel input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateInput {
    name: String,
    source: String,
    destinations: Vec<DestinationInput>,
    #[serde(default)]
    tags: Vec<TagInput>,
}

/// Creates a channel. The order of checks follows what a caller can fix first: the source,
/// the name, the quota, the tags, then each destination.
pub async fn create(
    deps: &Deps,
    ctx: &RequestContext,
    input: CreateInput,
) -> Result<ChannelOutput, CloudTrailError> {
    if !limits::is_known_source(&input.source) {
        return Err(CloudTrailError::InvalidSource(format!(
            "The source {} is neither Custom nor the source name of a CloudTrail Lake integration partner.",
            input.source
        )));
    }
    // The quota and the destinations' state are checked against what the batch commits on:
    // it claims the channel set's guard and expects each destination store as read.
    let record = super::retry(|| create_once(deps, ctx, &input)).await?;
    Ok(ChannelOutput {
        tags: Some(tags_output(&record.tags)),
        ..record.to_output(ctx)
    })
}

/// One attempt of CreateChannel's checks and batch.
async fn create_once(
    deps: &Deps,
    ctx: &RequestContext,
    input: &CreateInput,
) -> Result<ChannelRecord, CloudTrailError> {
    let name_key = key(ctx, CHANNEL_NAME, &input.name);
    if load::<Reservation>(deps, &name_key).await?.is_some() {
        return Err(already_exists(&input.name));
    }
    let guard = Guard::read(deps, ctx, CHANNEL_SET).await?;
    let existing: Vec<ChannelRecord> = load_all(deps, ctx, CHANNEL).await?;
    if existing.len() >= MAX_CHANNELS {
        return Err(CloudTrailError::ChannelMaxLimitExceeded(format!(
            "Your account has reached the maximum number of channels ({MAX_CHANNELS}) in this Region."
        )));
    }
    let partner = input.source != limits::CUSTOM_SOURCE;
    if partner && existing.iter().any(|c| c.source == input.source) {
        return Err(CloudTrailError::ChannelMaxLimitExceeded(format!(
            "A channel for the source {} already exists; a partner source can have only one channel.",
            input.source
        )));
    }
    let mut tags = Tags::new();
    merge_tags(&mut tags, &input.tags)?;
    let (destinations, unchanged) = check_destinations(deps, ctx, &input.destinations).await?;
    let record = ChannelRecord {
        id: uuid::Uuid::new_v4().to_string(),
        name: input.name.clone(),
        source: input.source.clone(),
        destinations,
        created: ctx.received_at.unix_timestamp(),
        tags,
        policy: None,
    };
    let reservation = Reservation {
        id: record.id.clone(),
    };
    let mut writes = vec![
        put(name_key, &reservation, Expect::Absent)?,
        put(key(ctx, CHANNEL, &record.id), &record, Expect::Absent)?,
        guard.claim()?,
    ];
    writes.extend(unchanged);
    if partner {
        writes.push(put(
            key(ctx, CHANNEL_SOURCE, &record.source),
            &reservation,
            Expect::Absent,
        )?);
    }
    deps.store.write(writes).await?;
    Ok(record)
}

/// Loads a channel named by ARN or ID.
pub async fn load_channel(
    deps: &Deps,
    ctx: &RequestContext,
    reference: &str,
) -> Result<(ChannelRecord, i64), CloudTrailError> {
    let id = match resolve(ctx, ResourceType::Channel, reference) {
        Reference::Own(id) => id,
        Reference::Invalid | Reference::Foreign => {
            return Err(CloudTrailError::ChannelArnInvalid(format!(
                "The specified channel ARN {reference} is not valid or does not map to a channel in your account."
            )))
        }
    };
    load(deps, &key(ctx, CHANNEL, &id))
        .await?
        .ok_or_else(|| not_found(reference))
}

/// `ChannelNotFoundException` for a reference.
pub fn not_found(reference: &str) -> CloudTrailError {
    CloudTrailError::ChannelNotFound(format!("The channel {reference} was not found."))
}

/// Input of the operations that name one channel.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ChannelInput {
    channel: String,
}

/// GetChannel, with the latest ingestion attempt and success of PutAuditEvents.
pub async fn get(
    deps: &Deps,
    ctx: &RequestContext,
    input: ChannelInput,
) -> Result<ChannelOutput, CloudTrailError> {
    let (record, _) = load_channel(deps, ctx, &input.channel).await?;
    let status: IngestionStatus = load(deps, &key(ctx, CHANNEL_INGESTION, &record.id))
        .await?
        .map(|(status, _)| status)
        .unwrap_or_default();
    Ok(ChannelOutput {
        ingestion_status: Some(IngestionStatusOutput {
            success_time: status.success_time.map(|t| EpochSeconds(t as f64)),
            success_event_id: status.success_event_id,
            error_code: status.error_code,
            attempt_time: status.attempt_time.map(|t| EpochSeconds(t as f64)),
            attempt_event_id: status.attempt_event_id,
        }),
        ..record.to_output(ctx)
    })
}

/// ListChannels input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListInput {
    #[serde(default)]
    max_results: Option<usize>,
    #[serde(default)]
    next_token: Option<String>,
}

/// Lists the caller's channels in ID order.
pub async fn list(
    deps: &Deps,
    ctx: &RequestContext,
    input: ListInput,
) -> Result<ListOutput, CloudTrailError> {
    let (channels, next_token) = Pages::new(deps, ctx, "cloudtrail:ListChannels", "")
        .records::<ChannelRecord, CloudTrailError>(
            CHANNEL,
            "",
            input.next_token.as_deref(),
            input.max_results.unwrap_or(1000),
        )
        .await?;
    let channels = channels
        .into_iter()
        .map(|c| ChannelSummary {
            channel_arn: resource_arn(ctx, ResourceType::Channel, &c.id),
            name: c.name,
        })
        .collect();
    Ok(ListOutput {
        channels,
        next_token,
    })
}

/// A channel as ListChannels names it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ChannelSummary {
    channel_arn: String,
    name: String,
}

/// ListChannels output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListOutput {
    channels: Vec<ChannelSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

/// UpdateChannel input. There is no `Source`: a channel's source never changes.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateInput {
    channel: String,
    #[serde(default)]
    destinations: Option<Vec<DestinationInput>>,
    #[serde(default)]
    name: Option<String>,
}

/// Renames a channel or replaces its destinations.
pub async fn update(
    deps: &Deps,
    ctx: &RequestContext,
    input: UpdateInput,
) -> Result<ChannelOutput, CloudTrailError> {
    let record = super::retry(|| update_once(deps, ctx, &input)).await?;
    Ok(record.to_output(ctx))
}

/// One attempt of UpdateChannel's checks and batch. New destinations claim the channel set
/// (a store being deleted checks that no channel feeds it) and expect each store as read.
async fn update_once(
    deps: &Deps,
    ctx: &RequestContext,
    input: &UpdateInput,
) -> Result<ChannelRecord, CloudTrailError> {
    let (mut record, version) = load_channel(deps, ctx, &input.channel).await?;
    let mut writes = Vec::new();
    if let Some(name) = input.name.as_ref().filter(|name| **name != record.name) {
        let new_key = key(ctx, CHANNEL_NAME, name);
        if load::<Reservation>(deps, &new_key).await?.is_some() {
            return Err(already_exists(name));
        }
        writes.push(Write::Delete {
            key: key(ctx, CHANNEL_NAME, &record.name),
            expect: Expect::Any,
        });
        writes.push(put(
            new_key,
            &Reservation {
                id: record.id.clone(),
            },
            Expect::Absent,
        )?);
        record.name.clone_from(name);
    }
    if let Some(destinations) = &input.destinations {
        let guard = Guard::read(deps, ctx, CHANNEL_SET).await?;
        let (ids, unchanged) = check_destinations(deps, ctx, destinations).await?;
        record.destinations = ids;
        writes.push(guard.claim()?);
        writes.extend(unchanged);
    }
    writes.push(put(
        key(ctx, CHANNEL, &record.id),
        &record,
        Expect::Version(version),
    )?);
    deps.store.write(writes).await?;
    Ok(record)
}

/// Deletes a channel and frees its name and, for a partner, its source.
pub async fn delete(
    deps: &Deps,
    ctx: &RequestContext,
    input: ChannelInput,
) -> Result<(), CloudTrailError> {
    super::retry(|| delete_once(deps, ctx, &input)).await
}

/// One attempt of DeleteChannel's batch, which claims the channel set it leaves.
async fn delete_once(
    deps: &Deps,
    ctx: &RequestContext,
    input: &ChannelInput,
) -> Result<(), CloudTrailError> {
    let guard = Guard::read(deps, ctx, CHANNEL_SET).await?;
    let (record, version) = load_channel(deps, ctx, &input.channel).await?;
    let mut writes = vec![
        guard.claim()?,
        Write::Delete {
            key: key(ctx, CHANNEL, &record.id),
            expect: Expect::Version(version),
        },
        Write::Delete {
            key: key(ctx, CHANNEL_NAME, &record.name),
            expect: Expect::Any,
        },
        Write::Delete {
            key: key(ctx, CHANNEL_INGESTION, &record.id),
            expect: Expect::Any,
        },
    ];
    if record.source != limits::CUSTOM_SOURCE {
        writes.push(Write::Delete {
            key: key(ctx, CHANNEL_SOURCE, &record.source),
            expect: Expect::Any,
        });
    }
    deps.store.write(writes).await?;
    Ok(())
}
