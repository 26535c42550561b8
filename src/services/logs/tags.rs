//! TagResource, UntagResource and ListTagsForResource on CloudWatch Logs resources.
//!
//! Tags live inside the tagged resource's record, so a tag change is one conditional write
//! and tags disappear with their resource.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::destinations::{check_tag_keys, DestinationRecord};
use super::{load, put, LogsError, DESTINATION};
use crate::arn::Arn;
use crate::protocol::RequestContext;
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

/// Finds the record a resource ARN names, in the caller's own account and region only.
fn resolve(ctx: &RequestContext, resource_arn: &str) -> Result<RecordKey, LogsError> {
    let parsed = Arn::parse(resource_arn)
        .filter(|arn| arn.service == "logs")
        .ok_or_else(|| {
            LogsError::InvalidParameter(format!("Invalid resourceArn: {resource_arn}"))
        })?;
    let not_found =
        || LogsError::ResourceNotFound("The specified resource does not exist.".to_owned());
    if parsed.account != ctx.account_id || parsed.region != ctx.region {
        return Err(not_found());
    }
    match parsed.resource.split_once(':') {
        Some(("destination", name)) if !name.is_empty() => Ok(RecordKey::new(
            DESTINATION,
            &ctx.account_id,
            &ctx.region,
            name,
        )),
        Some(("log-group", _)) => Err(not_found()),
        _ => Err(LogsError::InvalidParameter(format!(
            "Invalid resourceArn: {resource_arn}"
        ))),
    }
}

fn not_found() -> LogsError {
    LogsError::ResourceNotFound("The specified resource does not exist.".to_owned())
}

/// Adds or overwrites tags, refusing to go past 50.
pub async fn tag_resource(
    deps: &Deps,
    ctx: &RequestContext,
    input: TagResourceInput,
) -> Result<(), LogsError> {
    check_tag_keys(input.tags.keys())?;
    let key = resolve(ctx, &input.resource_arn)?;
    let (mut record, version) = load::<DestinationRecord>(deps, &key)
        .await?
        .ok_or_else(not_found)?;
    record.tags.extend(input.tags);
    if record.tags.len() > MAX_TAGS {
        return Err(LogsError::TooManyTags {
            message: format!("A resource can have no more than {MAX_TAGS} tags."),
            resource_name: input.resource_arn,
        });
    }
    deps.store
        .write(vec![put(key, &record, Expect::Version(version))?])
        .await?;
    Ok(())
}

/// Removes tags; keys that are not there are ignored.
pub async fn untag_resource(
    deps: &Deps,
    ctx: &RequestContext,
    input: UntagResourceInput,
) -> Result<(), LogsError> {
    let key = resolve(ctx, &input.resource_arn)?;
    let (mut record, version) = load::<DestinationRecord>(deps, &key)
        .await?
        .ok_or_else(not_found)?;
    for tag_key in &input.tag_keys {
        record.tags.remove(tag_key);
    }
    deps.store
        .write(vec![put(key, &record, Expect::Version(version))?])
        .await?;
    Ok(())
}

/// Lists a resource's tags.
pub async fn list_tags_for_resource(
    deps: &Deps,
    ctx: &RequestContext,
    input: ListTagsForResourceInput,
) -> Result<ListTagsForResourceOutput, LogsError> {
    let key = resolve(ctx, &input.resource_arn)?;
    let (record, _) = load::<DestinationRecord>(deps, &key)
        .await?
        .ok_or_else(not_found)?;
    Ok(ListTagsForResourceOutput { tags: record.tags })
}
