//! AddTags, RemoveTags and ListTags on event data stores and channels.
//!
//! Tags live inside the tagged resource's record, so a tag change is one conditional write
//! and tags disappear with their resource.

use serde::{Deserialize, Serialize};

use super::channels::{self, ChannelRecord};
use super::event_data_stores::{self, EventDataStoreRecord, PENDING_DELETION};
use super::{
    key, merge_tags, put, resolve, tags_output, CloudTrailError, Reference, ResourceType, Tag,
    TagInput, Tags, CHANNEL, EVENT_DATA_STORE,
};
use crate::arn::Arn;
use crate::protocol::RequestContext;
use crate::services::Deps;
use crate::store::Expect;

/// A tagged resource, loaded with its version.
enum Tagged {
    Store(EventDataStoreRecord, i64),
    Channel(ChannelRecord, i64),
}

impl Tagged {
    fn tags_mut(&mut self) -> &mut Tags {
        match self {
            Tagged::Store(record, _) => &mut record.tags,
            Tagged::Channel(record, _) => &mut record.tags,
        }
    }

    fn tags(&self) -> &Tags {
        match self {
            Tagged::Store(record, _) => &record.tags,
            Tagged::Channel(record, _) => &record.tags,
        }
    }

    async fn save(&self, deps: &Deps, ctx: &RequestContext) -> Result<(), CloudTrailError> {
        let write = match self {
            Tagged::Store(record, version) => put(
                key(ctx, EVENT_DATA_STORE, &record.id),
                record,
                Expect::Version(*version),
            )?,
            Tagged::Channel(record, version) => put(
                key(ctx, CHANNEL, &record.id),
                record,
                Expect::Version(*version),
            )?,
        };
        deps.store.write(vec![write]).await?;
        Ok(())
    }
}

/// Finds the store or channel a resource ARN names. Trails are not served, so a trail ARN
/// names nothing; other CloudTrail resource types cannot be tagged here.
async fn load_tagged(
    deps: &Deps,
    ctx: &RequestContext,
    resource_id: &str,
) -> Result<Tagged, CloudTrailError> {
    let arn = Arn::parse(resource_id)
        .filter(|arn| arn.service == "cloudtrail")
        .ok_or_else(|| {
            CloudTrailError::CloudTrailArnInvalid(format!(
                "{resource_id} is not a valid CloudTrail ARN. The format is arn:aws:cloudtrail:REGION:ACCOUNT:TYPE/ID."
            ))
        })?;
    let foreign = || {
        CloudTrailError::ResourceNotFound(format!(
            "The resource {resource_id} was not found in your account and Region."
        ))
    };
    match arn.resource.split_once('/').map(|(prefix, _)| prefix) {
        Some("eventdatastore") => {
            match resolve(ctx, ResourceType::EventDataStore, resource_id) {
                Reference::Foreign => return Err(foreign()),
                Reference::Invalid => {
                    return Err(CloudTrailError::EventDataStoreArnInvalid(format!(
                        "The specified event data store ARN {resource_id} is not valid."
                    )))
                }
                Reference::Own(_) => {}
            }
            let (record, version) = event_data_stores::load_store(deps, ctx, resource_id).await?;
            if record.status == PENDING_DELETION {
                return Err(CloudTrailError::InactiveEventDataStore(format!(
                    "The event data store {resource_id} is inactive (pending deletion)."
                )));
            }
            Ok(Tagged::Store(record, version))
        }
        Some("channel") => {
            match resolve(ctx, ResourceType::Channel, resource_id) {
                Reference::Foreign => return Err(foreign()),
                Reference::Invalid => {
                    return Err(CloudTrailError::ChannelArnInvalid(format!(
                        "The specified channel ARN {resource_id} is not valid."
                    )))
                }
                Reference::Own(_) => {}
            }
            let (record, version) = channels::load_channel(deps, ctx, resource_id).await?;
            Ok(Tagged::Channel(record, version))
        }
        Some("trail") => Err(foreign()),
        _ => Err(CloudTrailError::ResourceTypeNotSupported(format!(
            "Tags are supported on trails, event data stores and channels; {resource_id} is none of them."
        ))),
    }
}

/// AddTags and RemoveTags input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagsInput {
    resource_id: String,
    tags_list: Vec<TagInput>,
}

/// Adds or overwrites tags, refusing to go past 50.
pub async fn add_tags(
    deps: &Deps,
    ctx: &RequestContext,
    input: TagsInput,
) -> Result<(), CloudTrailError> {
    let mut tagged = load_tagged(deps, ctx, &input.resource_id).await?;
    merge_tags(tagged.tags_mut(), &input.tags_list)?;
    tagged.save(deps, ctx).await?;
    Ok(())
}

/// Removes tags by key; keys that are not there are ignored.
pub async fn remove_tags(
    deps: &Deps,
    ctx: &RequestContext,
    input: TagsInput,
) -> Result<(), CloudTrailError> {
    let mut tagged = load_tagged(deps, ctx, &input.resource_id).await?;
    for tag in &input.tags_list {
        tagged.tags_mut().remove(&tag.key);
    }
    tagged.save(deps, ctx).await?;
    Ok(())
}

/// ListTags input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListTagsInput {
    resource_id_list: Vec<String>,
    #[serde(default)]
    next_token: Option<String>,
}

/// Lists the tags of each resource, in request order, in one page.
pub async fn list_tags(
    deps: &Deps,
    ctx: &RequestContext,
    input: ListTagsInput,
) -> Result<ListTagsOutput, CloudTrailError> {
    if input.next_token.is_some() {
        // Every answer fits one page, so no token is ever issued and none can be valid.
        return Err(CloudTrailError::InvalidToken(
            "The NextToken is not valid.".to_owned(),
        ));
    }
    let mut out = Vec::new();
    for resource_id in &input.resource_id_list {
        let tagged = load_tagged(deps, ctx, resource_id).await?;
        out.push(ResourceTag {
            resource_id: resource_id.clone(),
            tags_list: tags_output(tagged.tags()),
        });
    }
    Ok(ListTagsOutput {
        resource_tag_list: out,
    })
}

/// One resource's tags in ListTags.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ResourceTag {
    resource_id: String,
    tags_list: Vec<Tag>,
}

/// ListTags output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListTagsOutput {
    resource_tag_list: Vec<ResourceTag>,
}
