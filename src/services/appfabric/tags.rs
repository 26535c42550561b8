//! TagResource, UntagResource and ListTagsForResource on app bundles, app authorizations,
//! ingestions and ingestion destinations.
//!
//! The ARN arrives percent-encoded as one path label (`/tags/{resourceArn}`); the router
//! decodes it exactly once, so `%2F` becomes the `/` of `appbundle/...` and nothing more.
//! Tags live inside the tagged resource's record, so a change is one conditional write and
//! tags disappear with their resource.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{key, tags_to_list, AppFabricError, Kind, Tag, Tags};
use crate::arn::Arn;
use crate::protocol::RequestContext;
use crate::services::kit::retry;
use crate::services::Deps;
use crate::store::{Expect, RecordKey, StoreError, Write};

/// The most tags a resource can carry (the model's `TagList` maximum).
const MAX_TAGS: usize = 50;

/// TagResource input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TagInput {
    resource_arn: String,
    tags: Vec<Tag>,
}

/// UntagResource input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UntagInput {
    resource_arn: String,
    tag_keys: Vec<String>,
}

/// ListTagsForResource input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListInput {
    resource_arn: String,
}

#[derive(Debug, Serialize)]
pub struct ListOutput {
    tags: Vec<Tag>,
}

/// Keys the model allows but AWS refuses: the `aws:` prefix is reserved.
pub(super) fn check_keys<'a>(
    keys: impl IntoIterator<Item = &'a String>,
) -> Result<(), AppFabricError> {
    for key in keys {
        if key.to_ascii_lowercase().starts_with("aws:") {
            return Err(AppFabricError::field(
                "tags",
                format!("Tag key '{key}' is invalid: the 'aws:' prefix is reserved for AWS use"),
            ));
        }
    }
    Ok(())
}

/// The record a resource ARN names, in the caller's own account and Region only.
fn locate(ctx: &RequestContext, resource_arn: &str) -> Result<(RecordKey, Kind), AppFabricError> {
    let not_appfabric = || {
        AppFabricError::field(
            "resourceArn",
            format!(
                "Value '{resource_arn}' at 'resourceArn' is not the ARN of an AppFabric resource"
            ),
        )
    };
    let parsed = Arn::parse(resource_arn)
        .filter(|arn| arn.service == "appfabric")
        .ok_or_else(not_appfabric)?;
    let kinds = [
        Kind::AppBundle,
        Kind::AppAuthorization,
        Kind::Ingestion,
        Kind::IngestionDestination,
    ];
    let kind = kinds
        .into_iter()
        .find(|kind| {
            let labels = kind.labels();
            let parts: Vec<&str> = parsed.resource.split('/').collect();
            parts.len() == labels.len() * 2
                && parts
                    .chunks(2)
                    .zip(labels)
                    .all(|(pair, label)| pair[0] == *label && !pair[1].is_empty())
        })
        .ok_or_else(not_appfabric)?;
    let ids = super::arn_ids(ctx, resource_arn, kind)
        .ok_or_else(|| AppFabricError::not_found(kind.resource_type(), resource_arn))?;
    Ok((key(ctx, kind.record_kind(), &ids.join("/")), kind))
}

async fn load_tagged(
    deps: &Deps,
    ctx: &RequestContext,
    resource_arn: &str,
) -> Result<(RecordKey, Value, Tags, i64), AppFabricError> {
    let (key, kind) = locate(ctx, resource_arn)?;
    let record = deps
        .store
        .get(&key)
        .await?
        .ok_or_else(|| AppFabricError::not_found(kind.resource_type(), resource_arn))?;
    let tags: Tags = match record.body.get("tags") {
        Some(value) => serde_json::from_value(value.clone())
            .map_err(|err| StoreError::Unavailable(format!("corrupt tags: {err}")))?,
        None => Tags::new(),
    };
    Ok((key, record.body, tags, record.version))
}

async fn store_tags(
    deps: &Deps,
    key: RecordKey,
    mut body: Value,
    tags: &Tags,
    version: i64,
) -> Result<(), AppFabricError> {
    if let Value::Object(object) = &mut body {
        object.insert("tags".to_owned(), json!(tags));
    }
    deps.store
        .write(vec![Write::Put {
            key,
            body,
            expect: Expect::Version(version),
        }])
        .await?;
    Ok(())
}

/// TagResource: adds or overwrites tags, refusing to go past 50.
pub async fn tag_resource(
    deps: &Deps,
    ctx: &RequestContext,
    input: TagInput,
) -> Result<(), AppFabricError> {
    let new_tags: Tags = input
        .tags
        .iter()
        .map(|t| (t.key.clone(), t.value.clone()))
        .collect();
    check_keys(new_tags.keys())?;
    let (input, new_tags) = (&input, &new_tags);
    retry(move || async move {
        let (key, body, mut tags, version) = load_tagged(deps, ctx, &input.resource_arn).await?;
        tags.extend(new_tags.clone());
        if tags.len() > MAX_TAGS {
            return Err(AppFabricError::field(
                "tags",
                format!(
                    "A resource can have at most {MAX_TAGS} tags; this request would give it {}",
                    tags.len()
                ),
            ));
        }
        store_tags(deps, key, body, &tags, version).await?;
        Ok(())
    })
    .await
}

/// UntagResource: keys that are not there are ignored.
pub async fn untag_resource(
    deps: &Deps,
    ctx: &RequestContext,
    input: UntagInput,
) -> Result<(), AppFabricError> {
    let input = &input;
    retry(move || async move {
        let (key, body, mut tags, version) = load_tagged(deps, ctx, &input.resource_arn).await?;
        for tag_key in &input.tag_keys {
            tags.remove(tag_key);
        }
        store_tags(deps, key, body, &tags, version).await?;
        Ok(())
    })
    .await
}

/// ListTagsForResource.
pub async fn list_tags(
    deps: &Deps,
    ctx: &RequestContext,
    input: ListInput,
) -> Result<ListOutput, AppFabricError> {
    let (_, _, tags, _) = load_tagged(deps, ctx, &input.resource_arn).await?;
    Ok(ListOutput {
        tags: tags_to_list(&tags),
    })
}
