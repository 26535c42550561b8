//! Amazon CloudWatch Logs (`logs`, JSON 1.1, `Logs_20140328`).
//!
//! Destinations (`destinations.rs`), log groups and streams (`groups.rs`), events
//! (`events.rs`, `reader.rs`), subscription filters (`subscriptions.rs`), tags on destinations
//! and log groups in both the new and the older log-group calls (`tags.rs`), and account-level
//! resource policies (`policies.rs`). Start at the operation table below.

mod destinations;
mod error;
mod events;
mod groups;
pub mod pattern;
mod policies;
mod reader;
mod subscriptions;
mod tags;

pub use error::LogsError;
pub use groups::expire;

use crate::services::{kit, Deps};

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

kit::operations! {
    LogsService { model: "logs", error: LogsError, state: deps }
    PutDestination => destinations::put_destination,
    DescribeDestinations => destinations::describe_destinations,
    DeleteDestination => destinations::delete_destination,
    PutDestinationPolicy => destinations::put_destination_policy,
    CreateLogGroup => groups::create_log_group,
    DeleteLogGroup => groups::delete_log_group,
    DescribeLogGroups => groups::describe_log_groups,
    PutRetentionPolicy => groups::put_retention_policy,
    DeleteRetentionPolicy => groups::delete_retention_policy,
    CreateLogStream => groups::create_log_stream,
    DeleteLogStream => groups::delete_log_stream,
    DescribeLogStreams => groups::describe_log_streams,
    PutLogEvents => events::put_log_events,
    GetLogEvents => events::get_log_events,
    FilterLogEvents => events::filter_log_events,
    TestMetricFilter => events::test_metric_filter,
    PutSubscriptionFilter => subscriptions::put_subscription_filter,
    DescribeSubscriptionFilters => subscriptions::describe_subscription_filters,
    DeleteSubscriptionFilter => subscriptions::delete_subscription_filter,
    TagResource => tags::tag_resource,
    UntagResource => tags::untag_resource,
    ListTagsForResource => tags::list_tags_for_resource,
    TagLogGroup => tags::tag_log_group,
    UntagLogGroup => tags::untag_log_group,
    ListTagsLogGroup => tags::list_tags_log_group,
    PutResourcePolicy => policies::put_resource_policy,
    DescribeResourcePolicies => policies::describe_resource_policies,
    DeleteResourcePolicy => policies::delete_resource_policy,
}

#[cfg(test)]
mod tests {
    #[test]
    fn embedded_model_parses() {
        let model = crate::services::kit::embedded_model("logs");
        assert_eq!(
            model.metadata.target_prefix.as_deref(),
            Some("Logs_20140328")
        );
        assert!(model.operations.contains_key("PutDestination"));
    }
}
