//! Channels: how events from outside AWS reach event data stores. A channel names a source
//! (`Custom` or a partner, fixed at creation) and the `ActivityAuditLog` stores it delivers
//! to.

use serde::{Deserialize, Serialize};

use super::data::IngestionStatus;
use super::event_data_stores::{self, Family};
use super::limits::{self, MAX_CHANNELS};
use super::{
    key, load, load_all, merge_tags, put, resolve, resource_arn, tags_output, CloudTrailError,
    Reference, Reservation, ResourceType, Tag, TagInput, Tags, CHANNEL, CHANNEL_INGESTION,
    CHANNEL_NAME, CHANNEL_SOURCE, EVENT_DATA_STORE,
};
use crate::protocol::model::EpochSeconds;
use crate::protocol::RequestContext;
use crate::services::kit::Pages;
use crate::services::Deps;
use crate::store::{Expect, Write};

/// A channel as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChannelRecord {
    /// The UUID in the ARN.
    pub id: String,
    name: String,
    source: String,
    /// IDs of the destination event data stores, in request order.
    destinations: Vec<String>,
    created: i64,
    /// Tags, kept inside the record so they go with the channel.
    pub tags: Tags,
    /// The resource policy, as put: which other accounts may put events.
    #[serde(default)]
    pub policy: Option<String>,
}

impl ChannelRecord {
    /// Whether the channel delivers to the store with this ID.
    pub fn targets(&self, store_id: &str) -> bool {
        self.destinations.iter().any(|d| d == store_id)
    }

    /// The IDs of the destination event data stores.
    pub fn destination_ids(&self) -> impl Iterator<Item = &str> {
        self.destinations.iter().map(String::as_str)
    }

    /// The channel's name.
    pub fn name(&self) -> &str {
        &self.name
    }

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
/// account and Region that collect `ActivityAuditLog` events and are enabled.
async fn check_destinations(
    deps: &Deps,
    ctx: &RequestContext,
    destinations: &[DestinationInput],
) -> Result<Vec<String>, CloudTrailError> {
    let mut ids: Vec<String> = Vec::new();
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
        let Some((store, _)) =
            load::<event_data_stores::EventDataStoreRecord>(deps, &key(ctx, EVENT_DATA_STORE, &id))
                .await?
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
        ids.push(id);
    }
    Ok(ids)
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
    let name_key = key(ctx, CHANNEL_NAME, &input.name);
    if load::<Reservation>(deps, &name_key).await?.is_some() {
        return Err(already_exists(&input.name));
    }
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
    let destinations = check_destinations(deps, ctx, &input.destinations).await?;
    let record = ChannelRecord {
        id: uuid::Uuid::new_v4().to_string(),
        name: input.name,
        source: input.source,
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
    ];
    if partner {
        writes.push(put(
            key(ctx, CHANNEL_SOURCE, &record.source),
            &reservation,
            Expect::Absent,
        )?);
    }
    deps.store.write(writes).await?;
    Ok(ChannelOutput {
        tags: Some(tags_output(&record.tags)),
        ..record.to_output(ctx)
    })
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
    let (mut record, version) = load_channel(deps, ctx, &input.channel).await?;
    let mut writes = Vec::new();
    if let Some(name) = input.name.filter(|name| *name != record.name) {
        let new_key = key(ctx, CHANNEL_NAME, &name);
        if load::<Reservation>(deps, &new_key).await?.is_some() {
            return Err(already_exists(&name));
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
        record.name = name;
    }
    if let Some(destinations) = &input.destinations {
        record.destinations = check_destinations(deps, ctx, destinations).await?;
    }
    writes.push(put(
        key(ctx, CHANNEL, &record.id),
        &record,
        Expect::Version(version),
    )?);
    deps.store.write(writes).await?;
    Ok(record.to_output(ctx))
}

/// Deletes a channel and frees its name and, for a partner, its source.
pub async fn delete(
    deps: &Deps,
    ctx: &RequestContext,
    input: ChannelInput,
) -> Result<(), CloudTrailError> {
    let (record, version) = load_channel(deps, ctx, &input.channel).await?;
    let mut writes = vec![
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
