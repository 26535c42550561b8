//! AWS CloudTrail Lake control plane (`cloudtrail`, JSON 1.1,
//! `com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101`): event data stores
//! (`event_data_stores.rs`), channels for events from outside AWS (`channels.rs`), tags on
//! both (`tags.rs`) and channels' resource policies (`policies.rs`). Partner sources and
//! quotas are data (`limits.rs`). Start at the operation table below.
//!
//! Stores and channels are records named by their UUID; a second record per name (and per
//! partner source) is written in the same conditional batch, so two concurrent creations of
//! one name cannot both succeed.

mod channels;
mod error;
mod event_data_stores;
mod lake;
mod limits;
mod policies;
pub(crate) mod records;
mod tags;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use error::CloudTrailError;
pub use lake::LakeFiles;
pub use records::EVENTS_TABLE;
use records::{
    Reservation, Tags, CHANNEL, CHANNEL_INGESTION, CHANNEL_NAME, CHANNEL_SET, CHANNEL_SOURCE,
    EVENT_DATA_STORE, EVENT_DATA_STORE_NAME, EVENT_DATA_STORE_SET,
};

use crate::arn::Arn;
use crate::protocol::RequestContext;
use crate::services::kit::{self, load, put, retry, Pages};
use crate::services::Deps;
use crate::store::{self, Expect, RecordKey, Write};

/// Removes events older than their event data store's retention period, at most about
/// `limit`, a bounded transaction at a time; returns how many went. CloudTrail Lake decides by
/// eventTime: "CloudTrail will remove events when the eventTime is older than" the retention
/// period (`RetentionPeriod` in CreateEventDataStore's reference).
pub async fn expire(
    store: &dyn store::Store,
    now: i64,
    limit: usize,
) -> Result<usize, store::StoreError> {
    const DAY_MILLIS: i64 = 24 * 60 * 60 * 1000;
    let mut budget = crate::store::expiry::Budget::new(limit);
    let mut scan = crate::store::expiry::RecordScan::new(store, EVENT_DATA_STORE);
    while let Some(page) = scan.next_page().await? {
        for record in &page {
            let Some(days) = record.body.get("retention_period").and_then(Value::as_i64) else {
                continue;
            };
            let (account, region) = (&record.key.account, &record.key.region);
            let arn = format!(
                "arn:{}:cloudtrail:{region}:{account}:eventdatastore/{}",
                crate::arn::partition(region),
                record.key.name
            );
            let scope = [
                ("account", account.as_str()),
                ("region", region.as_str()),
                ("event_data_store", arn.as_str()),
            ];
            let before = now.saturating_sub(days.saturating_mul(DAY_MILLIS));
            budget
                .drain(|chunk| {
                    store.expire_rows(EVENTS_TABLE, &scope, "event_time_millis", before, chunk)
                })
                .await?;
            if budget.remaining() == 0 {
                return Ok(budget.removed());
            }
        }
    }
    let queries = lake::queries::expire(store, now, budget.remaining()).await?;
    budget.spend(queries);
    Ok(budget.removed())
}

/// A set's guard as read: rewrite it (`claim`) in the batch that relies on the set.
struct Guard {
    key: RecordKey,
    guard: records::SetGuard,
    expect: Expect,
}

impl Guard {
    /// Reads the guard of the caller's set of `kind`. Read it before the set itself, so that
    /// the set read is no older than the version the batch expects.
    async fn read(
        deps: &Deps,
        ctx: &RequestContext,
        kind: &'static str,
    ) -> Result<Self, CloudTrailError> {
        let key = key(ctx, kind, records::SET_GUARD);
        Ok(match load::<records::SetGuard>(deps, &key).await? {
            Some((guard, version)) => Guard {
                key,
                guard,
                expect: Expect::Version(version),
            },
            None => Guard {
                key,
                guard: records::SetGuard::default(),
                expect: Expect::Absent,
            },
        })
    }

    /// The write that commits only if no other batch claimed the set since it was read.
    fn claim(self) -> Result<Write, CloudTrailError> {
        let next = records::SetGuard {
            generation: self.guard.generation.wrapping_add(1),
        };
        Ok(put(self.key, &next, self.expect)?)
    }
}

/// A key in the caller's account and region.
fn key(ctx: &RequestContext, kind: &'static str, name: &str) -> RecordKey {
    RecordKey::new(kind, &ctx.account_id, &ctx.region, name)
}

/// Which kind of CloudTrail resource an ARN or ID names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResourceType {
    /// `eventdatastore/ID`.
    EventDataStore,
    /// `channel/ID`.
    Channel,
}

impl ResourceType {
    /// The resource type in the ARN (`eventdatastore/ID`, `channel/ID`).
    fn arn_prefix(self) -> &'static str {
        match self {
            ResourceType::EventDataStore => "eventdatastore",
            ResourceType::Channel => "channel",
        }
    }
}

/// The ARN of a store or channel of the caller.
fn resource_arn(ctx: &RequestContext, kind: ResourceType, id: &str) -> String {
    format!(
        "arn:{}:cloudtrail:{}:{}:{}/{}",
        crate::arn::partition(&ctx.region),
        ctx.region,
        ctx.account_id,
        kind.arn_prefix(),
        id
    )
}

/// How an argument that names a store or channel resolves.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Reference {
    /// An ID of the caller's account and region.
    Own(String),
    /// A well-formed ARN of another account or region.
    Foreign,
    /// Neither an ARN of this type nor an ID.
    Invalid,
}

/// Resolves "the ARN or the ID suffix of the ARN", as CloudTrail accepts both. IDs are UUIDs.
pub(crate) fn resolve(ctx: &RequestContext, kind: ResourceType, text: &str) -> Reference {
    let is_id = |id: &str| uuid::Uuid::try_parse(id).is_ok();
    if !text.contains(':') {
        return if is_id(text) {
            Reference::Own(text.to_ascii_lowercase())
        } else {
            Reference::Invalid
        };
    }
    let Some(arn) = Arn::parse(text) else {
        return Reference::Invalid;
    };
    let id = match arn.resource.split_once('/') {
        Some((prefix, id)) if prefix == kind.arn_prefix() && is_id(id) => id,
        _ => return Reference::Invalid,
    };
    if arn.service != "cloudtrail" {
        return Reference::Invalid;
    }
    if arn.account != ctx.account_id || arn.region != ctx.region {
        return Reference::Foreign;
    }
    Reference::Own(id.to_ascii_lowercase())
}

/// One tag on the wire.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagInput {
    key: String,
    #[serde(default)]
    value: Option<String>,
}

/// Checks tags of a request and merges them into `tags`, refusing more than 50 in all.
fn merge_tags(tags: &mut Tags, input: &[TagInput]) -> Result<(), CloudTrailError> {
    let mut seen = std::collections::BTreeSet::new();
    for tag in input {
        limits::check_tag(&tag.key, tag.value.as_deref())?;
        if !seen.insert(tag.key.as_str()) {
            return Err(CloudTrailError::InvalidTagParameter(format!(
                "The tag key {} appears more than once in the request.",
                tag.key
            )));
        }
    }
    for tag in input {
        tags.insert(tag.key.clone(), tag.value.clone().unwrap_or_default());
    }
    if tags.len() > limits::MAX_TAGS_PER_RESOURCE {
        return Err(CloudTrailError::TagsLimitExceeded(format!(
            "The number of tags on the resource exceeds the limit of {}.",
            limits::MAX_TAGS_PER_RESOURCE
        )));
    }
    Ok(())
}

/// One tag on the wire, in an output.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Tag {
    key: String,
    value: String,
}

/// Tags as the wire lists them.
fn tags_output(tags: &Tags) -> Vec<Tag> {
    tags.iter()
        .map(|(key, value)| Tag {
            key: key.clone(),
            value: value.clone(),
        })
        .collect()
}

/// Every record of a kind in the caller's account and region (stores and channels are few).
async fn load_all<T: store::Stored>(
    deps: &Deps,
    ctx: &RequestContext,
    kind: &'static str,
) -> Result<Vec<T>, store::StoreError> {
    kit::load_all(deps, ctx, kind, "").await
}

/// Opens a pagination token of one list operation; the state is the last ID returned.
fn open_token(
    deps: &Deps,
    ctx: &RequestContext,
    operation: &str,
    token: Option<&str>,
) -> Result<Option<String>, CloudTrailError> {
    Pages::new(deps, ctx, &format!("cloudtrail:{operation}"), "").after(token)
}

/// Issues the token that continues a list after `after`.
fn issue_token(deps: &Deps, ctx: &RequestContext, operation: &str, after: &str) -> String {
    Pages::new(deps, ctx, &format!("cloudtrail:{operation}"), "").token_after(after)
}

/// The CloudTrail service (CloudTrail Lake control plane).
pub struct CloudTrailService {
    deps: Deps,
    /// The Lake queries of this process.
    lake: lake::Lake,
}

impl CloudTrailService {
    /// Builds the service over shared dependencies.
    pub fn new(deps: Deps) -> Self {
        Self {
            lake: lake::Lake::new(deps.clone()),
            deps,
        }
    }
}

kit::operations! {
    CloudTrailService { model: "cloudtrail", error: CloudTrailError, state: deps }
    CreateEventDataStore => event_data_stores::create,
    GetEventDataStore => event_data_stores::get,
    ListEventDataStores => event_data_stores::list,
    UpdateEventDataStore => event_data_stores::update,
    DeleteEventDataStore => event_data_stores::delete,
    RestoreEventDataStore => event_data_stores::restore,
    StartEventDataStoreIngestion => event_data_stores::start_ingestion,
    StopEventDataStoreIngestion => event_data_stores::stop_ingestion,
    CreateChannel => channels::create,
    GetChannel => channels::get,
    ListChannels => channels::list,
    UpdateChannel => channels::update,
    DeleteChannel => channels::delete,
    AddTags => tags::add_tags,
    RemoveTags => tags::remove_tags,
    ListTags => tags::list_tags,
    PutResourcePolicy => policies::put_resource_policy,
    GetResourcePolicy => policies::get_resource_policy,
    DeleteResourcePolicy => policies::delete_resource_policy,
    StartQuery => lake::queries::start [lake],
    DescribeQuery => lake::queries::describe [lake],
    GetQueryResults => lake::queries::results [lake],
    ListQueries => lake::queries::list [lake],
    CancelQuery => lake::queries::cancel [lake],
    ListPublicKeys => lake::delivery::list_public_keys [lake],
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> RequestContext {
        RequestContext {
            account_id: "111122223333".to_owned(),
            region: "us-east-1".to_owned(),
            access_key_id: "AKID".to_owned(),
            request_id: "r".to_owned(),
            received_at: time::OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn embedded_model_parses_and_every_pattern_compiles() {
        let model = crate::services::kit::embedded_model("cloudtrail");
        assert_eq!(
            model.metadata.target_prefix.as_deref(),
            Some("com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101")
        );
        assert_eq!(model.signing_name(), "cloudtrail");
        for (name, shape) in model.shapes.iter() {
            // Java surrogate ranges Rust's regex cannot express; these shapes only appear in
            // GetEventDataStore's output, so no input is checked against them.
            if name == "PartitionKeyType" || name == "PartitionKeyName" {
                continue;
            }
            if let Some(pattern) = &shape.pattern {
                assert!(
                    crate::protocol::model::compile_pattern(pattern).is_ok(),
                    "{name}: {pattern}"
                );
            }
        }
    }

    #[test]
    fn references_accept_arn_or_id() {
        let id = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
        let ctx = ctx();
        let kind = ResourceType::EventDataStore;
        assert_eq!(resolve(&ctx, kind, id), Reference::Own(id.to_owned()));
        let arn = resource_arn(&ctx, kind, id);
        assert_eq!(
            arn,
            format!("arn:aws:cloudtrail:us-east-1:111122223333:eventdatastore/{id}")
        );
        assert_eq!(resolve(&ctx, kind, &arn), Reference::Own(id.to_owned()));
        assert_eq!(
            resolve(&ctx, ResourceType::Channel, &arn),
            Reference::Invalid
        );
        assert_eq!(resolve(&ctx, kind, "not-an-id"), Reference::Invalid);
        let foreign = arn.replace("111122223333", "444455556666");
        assert_eq!(resolve(&ctx, kind, &foreign), Reference::Foreign);
    }

    #[test]
    fn tags_are_checked_and_capped() {
        let mut tags = Tags::new();
        let tag = |k: &str| TagInput {
            key: k.to_owned(),
            value: Some("v".to_owned()),
        };
        assert!(merge_tags(&mut tags, &[tag("a"), tag("b")]).is_ok());
        assert!(matches!(
            merge_tags(&mut tags, &[tag("aws:x")]),
            Err(CloudTrailError::InvalidTagParameter(_))
        ));
        assert!(matches!(
            merge_tags(&mut tags, &[tag("c"), tag("c")]),
            Err(CloudTrailError::InvalidTagParameter(_))
        ));
        let many: Vec<TagInput> = (0..49).map(|i| tag(&format!("k{i}"))).collect();
        assert!(matches!(
            merge_tags(&mut tags, &many),
            Err(CloudTrailError::TagsLimitExceeded(_))
        ));
    }
}
