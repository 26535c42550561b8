//! TagResource, UntagResource and ListTagsForResource on CloudWatch Logs destinations and log
//! groups, and the older log-group calls (TagLogGroup, UntagLogGroup, ListTagsLogGroup) that
//! tooling still uses: both kinds of call read and write the same tags.
//!
//! Tags live inside the tagged resource's record, so a tag change is one conditional write
//! and tags disappear with their resource.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::destinations::{check_tag_keys, DestinationRecord};
use super::groups::{group_key, group_not_found, LogGroupRecord};
use super::{LogsError, DESTINATION};
use crate::arn::Arn;
use crate::protocol::RequestContext;
use crate::services::kit::{load, put};
use crate::services::Deps;
use crate::store::{Expect, RecordKey};

/// The most tags a CloudWatch Logs resource can carry.
const MAX_TAGS: usize = 50;

/// TagResource input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TagResourceInput {
    resource_arn: String,
    tags: BTreeMap<String, String>,
}

/// UntagResource input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UntagResourceInput {
    resource_arn: String,
    tag_keys: Vec<String>,
}

/// ListTagsForResource input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTagsForResourceInput {
    resource_arn: String,
}

/// ListTagsForResource output.
#[derive(Debug, Serialize)]
pub struct ListTagsForResourceOutput {
    tags: BTreeMap<String, String>,
}

/// A stored record that carries its own tags.
pub(super) trait Tagged: Serialize + DeserializeOwned {
    fn tags_mut(&mut self) -> &mut BTreeMap<String, String>;
}

impl Tagged for DestinationRecord {
    fn tags_mut(&mut self) -> &mut BTreeMap<String, String> {
        &mut self.tags
    }
}

impl Tagged for LogGroupRecord {
    fn tags_mut(&mut self) -> &mut BTreeMap<String, String> {
        &mut self.tags
    }
}

/// A taggable resource of the caller.
enum Resource {
    Destination(RecordKey),
    LogGroup(RecordKey),
}

/// Finds the record a resource ARN names, in the caller's own account and region only. (The
/// model's pattern already refuses the `:*` form of a log group ARN, as AWS does.)
fn resolve(ctx: &RequestContext, resource_arn: &str) -> Result<Resource, LogsError> {
    let parsed = Arn::parse(resource_arn)
        .filter(|arn| arn.service == "logs")
        .ok_or_else(|| {
            LogsError::InvalidParameter(format!("Invalid resourceArn: {resource_arn}"))
        })?;
    if parsed.account != ctx.account_id || parsed.region != ctx.region {
        return Err(not_found());
    }
    match parsed.resource.split_once(':') {
        Some(("destination", name)) if !name.is_empty() => Ok(Resource::Destination(
            RecordKey::new(DESTINATION, &ctx.account_id, &ctx.region, name),
        )),
        Some(("log-group", name)) => {
            if name.is_empty() {
                return Err(LogsError::InvalidParameter(format!(
                    "Invalid resourceArn: {resource_arn}"
                )));
            }
            Ok(Resource::LogGroup(group_key(ctx, name)))
        }
        _ => Err(LogsError::InvalidParameter(format!(
            "Invalid resourceArn: {resource_arn}"
        ))),
    }
}

fn not_found() -> LogsError {
    LogsError::ResourceNotFound("The specified resource does not exist.".to_owned())
}

/// Changes a record's tags in one conditional write.
async fn change<T: Tagged>(
    deps: &Deps,
    key: RecordKey,
    missing: fn() -> LogsError,
    edit: impl FnOnce(&mut BTreeMap<String, String>) -> Result<(), LogsError>,
) -> Result<(), LogsError> {
    let (mut record, version) = load::<T>(deps, &key).await?.ok_or_else(missing)?;
    edit(record.tags_mut())?;
    deps.store
        .write(vec![put(key, &record, Expect::Version(version))?])
        .await?;
    Ok(())
}

/// Reads a record's tags.
async fn read<T: Tagged>(
    deps: &Deps,
    key: &RecordKey,
    missing: fn() -> LogsError,
) -> Result<BTreeMap<String, String>, LogsError> {
    let (mut record, _) = load::<T>(deps, key).await?.ok_or_else(missing)?;
    Ok(std::mem::take(record.tags_mut()))
}

/// Adds tags, or refuses with `too_many` when the resource would carry more than 50.
fn add_tags(
    tags: &mut BTreeMap<String, String>,
    new: BTreeMap<String, String>,
    too_many: impl FnOnce(String) -> LogsError,
) -> Result<(), LogsError> {
    tags.extend(new);
    if tags.len() > MAX_TAGS {
        return Err(too_many(format!(
            "A resource can have no more than {MAX_TAGS} tags."
        )));
    }
    Ok(())
}

/// Adds or overwrites tags, refusing to go past 50.
pub async fn tag_resource(
    deps: &Deps,
    ctx: &RequestContext,
    input: TagResourceInput,
) -> Result<(), LogsError> {
    check_tag_keys(input.tags.keys())?;
    let arn = input.resource_arn;
    let edit = |tags: &mut BTreeMap<String, String>| {
        add_tags(tags, input.tags, |message| LogsError::TooManyTags {
            message,
            resource_name: arn.clone(),
        })
    };
    match resolve(ctx, &arn)? {
        Resource::Destination(key) => change::<DestinationRecord>(deps, key, not_found, edit).await,
        Resource::LogGroup(key) => change::<LogGroupRecord>(deps, key, not_found, edit).await,
    }
}

/// Removes tags; keys that are not there are ignored.
pub async fn untag_resource(
    deps: &Deps,
    ctx: &RequestContext,
    input: UntagResourceInput,
) -> Result<(), LogsError> {
    let edit = |tags: &mut BTreeMap<String, String>| {
        for tag_key in &input.tag_keys {
            tags.remove(tag_key);
        }
        Ok(())
    };
    match resolve(ctx, &input.resource_arn)? {
        Resource::Destination(key) => change::<DestinationRecord>(deps, key, not_found, edit).await,
        Resource::LogGroup(key) => change::<LogGroupRecord>(deps, key, not_found, edit).await,
    }
}

/// Lists a resource's tags.
pub async fn list_tags_for_resource(
    deps: &Deps,
    ctx: &RequestContext,
    input: ListTagsForResourceInput,
) -> Result<ListTagsForResourceOutput, LogsError> {
    let tags = match resolve(ctx, &input.resource_arn)? {
        Resource::Destination(key) => read::<DestinationRecord>(deps, &key, not_found).await?,
        Resource::LogGroup(key) => read::<LogGroupRecord>(deps, &key, not_found).await?,
    };
    Ok(ListTagsForResourceOutput { tags })
}

/// TagLogGroup input (the older, log-group-name form of TagResource).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TagLogGroupInput {
    log_group_name: String,
    tags: BTreeMap<String, String>,
}

/// UntagLogGroup input: `tags` holds the keys to remove.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UntagLogGroupInput {
    log_group_name: String,
    tags: Vec<String>,
}

/// ListTagsLogGroup input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTagsLogGroupInput {
    log_group_name: String,
}

/// TagLogGroup: the same tags as TagResource on the group's ARN. Its model knows no
/// TooManyTagsException, so going past 50 is an InvalidParameterException here.
pub async fn tag_log_group(
    deps: &Deps,
    ctx: &RequestContext,
    input: TagLogGroupInput,
) -> Result<(), LogsError> {
    check_tag_keys(input.tags.keys())?;
    change::<LogGroupRecord>(
        deps,
        group_key(ctx, &input.log_group_name),
        group_not_found,
        |tags| add_tags(tags, input.tags, LogsError::InvalidParameter),
    )
    .await
}

/// UntagLogGroup: removes the named keys; keys that are not there are ignored.
pub async fn untag_log_group(
    deps: &Deps,
    ctx: &RequestContext,
    input: UntagLogGroupInput,
) -> Result<(), LogsError> {
    change::<LogGroupRecord>(
        deps,
        group_key(ctx, &input.log_group_name),
        group_not_found,
        |tags| {
            for tag_key in &input.tags {
                tags.remove(tag_key);
            }
            Ok(())
        },
    )
    .await
}

/// ListTagsLogGroup: the group's tags.
pub async fn list_tags_log_group(
    deps: &Deps,
    ctx: &RequestContext,
    input: ListTagsLogGroupInput,
) -> Result<ListTagsForResourceOutput, LogsError> {
    let tags = read::<LogGroupRecord>(
        deps,
        &group_key(ctx, &input.log_group_name),
        group_not_found,
    )
    .await?;
    Ok(ListTagsForResourceOutput { tags })
}
