//! Amazon CloudWatch Logs (`logs`, JSON 1.1, `Logs_20140328`).
//!
//! Served so far: destinations (`destinations.rs`) and tags on them (`tags.rs`). Start at
//! [`LogsService::call`], the operation table.

mod destinations;
mod error;
mod tags;

use std::sync::OnceLock;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use error::LogsError;

use crate::protocol::model::{ServiceModel, Violation};
use crate::protocol::{ApiError, RequestContext, Service};
use crate::services::Deps;

/// Record kind of destinations in the store.
const DESTINATION: &str = "logs/destination";

fn model() -> &'static ServiceModel {
    static MODEL: OnceLock<ServiceModel> = OnceLock::new();
    MODEL.get_or_init(
        || match ServiceModel::parse(include_str!("../../../models/logs.json")) {
            Ok(model) => model,
            // The model is compiled in and covered by tests; failing here is a build defect.
            Err(err) => panic!("embedded logs model is invalid: {err}"),
        },
    )
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
            "TagResource" => tags::tag_resource(deps, ctx, input(input_value)?)
                .await
                .and_then(output),
            "UntagResource" => tags::untag_resource(deps, ctx, input(input_value)?)
                .await
                .and_then(output),
            "ListTagsForResource" => tags::list_tags_for_resource(deps, ctx, input(input_value)?)
                .await
                .and_then(output),
            other => return Err(ApiError::not_implemented("logs", other)),
        };
        result.map_err(ApiError::from)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn embedded_model_parses_and_every_pattern_compiles() {
        let model = super::model();
        assert_eq!(
            model.metadata.target_prefix.as_deref(),
            Some("Logs_20140328")
        );
        assert!(model.operations.contains_key("PutDestination"));
        for (name, shape) in &model.shapes {
            if let Some(pattern) = &shape.pattern {
                assert!(
                    crate::protocol::model::compile_pattern(pattern).is_ok(),
                    "{name}: {pattern}"
                );
            }
        }
    }
}
