//! Amazon CloudWatch Logs (`logs`, JSON 1.1, `Logs_20140328`).
//!
//! Destinations (`destinations.rs`), log groups and streams (`groups.rs`), events
//! (`events.rs`, `reader.rs`), subscription filters (`subscriptions.rs`), tags on destinations
//! and log groups in both the new and the older log-group calls (`tags.rs`), and account-level
//! resource policies (`policies.rs`). Start at [`LogsService::call`], the operation table.

mod destinations;
mod error;
mod events;
mod groups;
pub mod pattern;
mod policies;
mod reader;
mod subscriptions;
mod tags;

use std::sync::OnceLock;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

pub use error::LogsError;
pub use groups::expire;

use crate::protocol::model::{ServiceModel, Violation};
use crate::protocol::{ApiError, RequestContext, Service};
use crate::services::Deps;
use crate::store::{self, Expect, RecordKey, Write};

/// Record kind of destinations in the store.
const DESTINATION: &str = "logs/destination";
/// Record kind of log groups, named by the group name.
const LOG_GROUP: &str = "logs/log-group";
/// Record kind of log streams, named `GROUP:STREAM` (`:` cannot occur in a group name), so a
/// group's streams list together in name order.
const LOG_STREAM: &str = "logs/log-stream";
/// Log kind of the events of a log stream, named like the stream's record.
const LOG_EVENTS: &str = "logs/events";
/// Record kind of subscription filters, named `GROUP:FILTER`.
const SUBSCRIPTION_FILTER: &str = "logs/subscription-filter";
/// Record kind of account-level resource policies, named by policy name.
const RESOURCE_POLICY: &str = "logs/resource-policy";

/// Reads a record of this service into its stored type, with its version.
async fn load<T: DeserializeOwned>(
    deps: &Deps,
    key: &RecordKey,
) -> Result<Option<(T, i64)>, LogsError> {
    Ok(store::load(&*deps.store, key).await?)
}

/// Reads every record of a kind in the caller's account and region whose name has a prefix.
async fn load_all<T: DeserializeOwned>(
    deps: &Deps,
    ctx: &RequestContext,
    kind: &'static str,
    prefix: &str,
) -> Result<Vec<T>, LogsError> {
    let records = store::load_all(&*deps.store, kind, &ctx.account_id, &ctx.region, prefix).await?;
    Ok(records.into_iter().map(|(_, value, _)| value).collect())
}

/// A conditional put of a stored value.
fn put<T: Serialize>(key: RecordKey, value: &T, expect: Expect) -> Result<Write, LogsError> {
    Ok(store::put(key, value, expect)?)
}

fn model() -> &'static ServiceModel {
    static MODEL: OnceLock<ServiceModel> = OnceLock::new();
    ServiceModel::embedded(&MODEL, "logs", include_str!("../../../models/logs.json"))
}

/// The CloudWatch Logs service.
pub struct LogsService {
    deps: Deps,
}

impl LogsService {
    /// Builds the service over shared dependencies.
    pub fn new(deps: Deps) -> Self {
        Self { deps }
    }
}

/// Reads a validated input into its typed form.
fn input<T: DeserializeOwned>(value: Value) -> Result<T, LogsError> {
    serde_json::from_value(value).map_err(|err| LogsError::InvalidParameter(err.to_string()))
}

fn output<T: serde::Serialize>(value: T) -> Result<Value, LogsError> {
    serde_json::to_value(value).map_err(|err| LogsError::InvalidParameter(err.to_string()))
}

#[async_trait]
impl Service for LogsService {
    fn model(&self) -> &ServiceModel {
        model()
    }

    fn validation_error(&self, violations: &[Violation]) -> ApiError {
        LogsError::from_violations(violations).into()
    }

    async fn call(
        &self,
        ctx: &RequestContext,
        operation: &str,
        input_value: Value,
    ) -> Result<Value, ApiError> {
        let deps = &self.deps;
        let result = match operation {
            "PutDestination" => destinations::put_destination(deps, ctx, input(input_value)?)
                .await
                .and_then(output),
            "DescribeDestinations" => {
                destinations::describe_destinations(deps, ctx, input(input_value)?)
                    .await
                    .and_then(output)
            }
            "DeleteDestination" => destinations::delete_destination(deps, ctx, input(input_value)?)
                .await
                .and_then(output),
            "PutDestinationPolicy" => {
                destinations::put_destination_policy(deps, ctx, input(input_value)?)
                    .await
                    .and_then(output)
            }
            "CreateLogGroup" => groups::create_log_group(deps, ctx, input(input_value)?)
                .await
                .and_then(output),
            "DeleteLogGroup" => groups::delete_log_group(deps, ctx, input(input_value)?)
                .await
                .and_then(output),
            "DescribeLogGroups" => {
                groups::describe_log_groups(deps, ctx, input(input_value)?).await
            }
            "PutRetentionPolicy" => groups::put_retention_policy(deps, ctx, input(input_value)?)
                .await
                .and_then(output),
            "DeleteRetentionPolicy" => {
                groups::delete_retention_policy(deps, ctx, input(input_value)?)
                    .await
                    .and_then(output)
            }
            "CreateLogStream" => groups::create_log_stream(deps, ctx, input(input_value)?)
                .await
                .and_then(output),
            "DeleteLogStream" => groups::delete_log_stream(deps, ctx, input(input_value)?)
                .await
                .and_then(output),
            "DescribeLogStreams" => {
                groups::describe_log_streams(deps, ctx, input(input_value)?).await
            }
            "PutLogEvents" => events::put_log_events(deps, ctx, input(input_value)?).await,
            "GetLogEvents" => events::get_log_events(deps, ctx, input(input_value)?).await,
            "FilterLogEvents" => events::filter_log_events(deps, ctx, input(input_value)?).await,
            "TestMetricFilter" => events::test_metric_filter(input(input_value)?).await,
            "PutSubscriptionFilter" => {
                subscriptions::put_subscription_filter(deps, ctx, input(input_value)?)
                    .await
                    .and_then(output)
            }
            "DescribeSubscriptionFilters" => {
                subscriptions::describe_subscription_filters(deps, ctx, input(input_value)?).await
            }
            "DeleteSubscriptionFilter" => {
                subscriptions::delete_subscription_filter(deps, ctx, input(input_value)?)
                    .await
                    .and_then(output)
            }
            "TagResource" => tags::tag_resource(deps, ctx, input(input_value)?)
                .await
                .and_then(output),
            "UntagResource" => tags::untag_resource(deps, ctx, input(input_value)?)
                .await
                .and_then(output),
            "ListTagsForResource" => tags::list_tags_for_resource(deps, ctx, input(input_value)?)
                .await
                .and_then(output),
            "TagLogGroup" => tags::tag_log_group(deps, ctx, input(input_value)?)
                .await
                .and_then(output),
            "UntagLogGroup" => tags::untag_log_group(deps, ctx, input(input_value)?)
                .await
                .and_then(output),
            "ListTagsLogGroup" => tags::list_tags_log_group(deps, ctx, input(input_value)?)
                .await
                .and_then(output),
            "PutResourcePolicy" => policies::put_resource_policy(deps, ctx, input(input_value)?)
                .await
                .and_then(output),
            "DescribeResourcePolicies" => {
                policies::describe_resource_policies(deps, ctx, input(input_value)?)
                    .await
                    .and_then(output)
            }
            "DeleteResourcePolicy" => {
                policies::delete_resource_policy(deps, ctx, input(input_value)?)
                    .await
                    .and_then(output)
            }
            other => return Err(ApiError::not_implemented("logs", other)),
        };
        result.map_err(ApiError::from)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn embedded_model_parses() {
        let model = super::model();
        assert_eq!(
            model.metadata.target_prefix.as_deref(),
            Some("Logs_20140328")
        );
        assert!(model.operations.contains_key("PutDestination"));
    }
}
