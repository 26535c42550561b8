//! CloudTrail errors, and their one mapping to the wire.
//!
//! The botocore model gives none of these shapes an HTTP status; CloudTrail answers client
//! errors with 400, so every variant but the internal failure is a 400 (see `From` below).

use crate::protocol::model::Violation;
use crate::protocol::ApiError;
use crate::services::kit::ServiceError;
use crate::store::StoreError;
use crate::token::TokenError;

/// Every error a CloudTrail operation of Sluice can return. Each variant is named after the
/// error shape of the model it becomes on the wire.
#[derive(Debug, thiserror::Error)]
pub enum CloudTrailError {
    /// A parameter is missing, malformed or out of range (model violations included).
    #[error("{0}")]
    InvalidParameter(String),
    /// A channel of that name exists, or a store of the name exists.
    #[error("{0}")]
    ChannelAlreadyExists(String),
    /// The channel quota, or a second channel for a partner source.
    #[error("{0}")]
    ChannelMaxLimitExceeded(String),
    /// A channel argument that is neither a channel ARN nor a channel ID.
    #[error("{0}")]
    ChannelArnInvalid(String),
    /// No such channel in the caller's account and region.
    #[error("{0}")]
    ChannelNotFound(String),
    /// The store is still a destination of a channel.
    #[error("{0}")]
    ChannelExistsForEds(String),
    /// A source that is neither `Custom` nor a known partner source.
    #[error("{0}")]
    InvalidSource(String),
    /// An event data store of that name exists.
    #[error("{0}")]
    EventDataStoreAlreadyExists(String),
    /// The event data store quota.
    #[error("{0}")]
    EventDataStoreMaxLimitExceeded(String),
    /// An event data store argument that is neither a store ARN nor a store ID.
    #[error("{0}")]
    EventDataStoreArnInvalid(String),
    /// No such event data store in the caller's account and region.
    #[error("{0}")]
    EventDataStoreNotFound(String),
    /// Termination protection refuses the deletion.
    #[error("{0}")]
    EventDataStoreTerminationProtected(String),
    /// The store is pending deletion.
    #[error("{0}")]
    InactiveEventDataStore(String),
    /// The operation does not fit the store's status.
    #[error("{0}")]
    InvalidEventDataStoreStatus(String),
    /// The store's event category does not fit the operation.
    #[error("{0}")]
    InvalidEventDataStoreCategory(String),
    /// Advanced event selectors that CloudTrail would refuse.
    #[error("{0}")]
    InvalidEventSelectors(String),
    /// A bad tag key or value, or a repeated key.
    #[error("{0}")]
    InvalidTagParameter(String),
    /// More than 50 tags on a resource.
    #[error("{0}")]
    TagsLimitExceeded(String),
    /// A resource ID that is not a CloudTrail ARN.
    #[error("{0}")]
    CloudTrailArnInvalid(String),
    /// A tagged resource of a kind that does not exist here.
    #[error("{0}")]
    ResourceTypeNotSupported(String),
    /// A tagged resource that does not exist.
    #[error("{0}")]
    ResourceNotFound(String),
    /// A resource policy's ARN that is not a CloudTrail ARN.
    #[error("{0}")]
    ResourceArnNotValid(String),
    /// A resource policy that breaks IAM's grammar or CloudTrail's channel rules.
    #[error("{0}")]
    ResourcePolicyNotValid(String),
    /// The channel has no resource policy.
    #[error("{0}")]
    ResourcePolicyNotFound(String),
    /// A pagination token this server did not issue, or an expired one.
    #[error("{0}")]
    InvalidNextToken(String),
    /// A ListTags token this server did not issue.
    #[error("{0}")]
    InvalidToken(String),
    /// An action Sluice does not allow, such as a destination in another account.
    #[error("{0}")]
    OperationNotPermitted(String),
    /// An action CloudTrail does not support, such as creating a service-linked channel.
    #[error("{0}")]
    UnsupportedOperation(String),
    /// Organization stores need AWS Organizations, which Sluice does not serve.
    #[error("{0}")]
    OrganizationsNotInUse(String),
    /// A statement Sluice refuses: not SQL, more than one statement, not read-only, or
    /// naming what the schema lacks.
    #[error("{0}")]
    InvalidQueryStatement(String),
    /// No query of the caller has this ID (or it is older than seven days).
    #[error("{0}")]
    QueryIdNotFound(String),
    /// The query has ended and cannot be cancelled.
    #[error("{0}")]
    InactiveQuery(String),
    /// The account already runs as many queries as AWS allows at once.
    #[error("{0}")]
    MaxConcurrentQueries(String),
    /// StartTime after EndTime.
    #[error("{0}")]
    InvalidDateRange(String),
    /// A fault inside Sluice (stored results unreadable); logged, answered 500.
    #[error("An internal error occurred.")]
    Internal(String),
    /// Two writers changed the same resource at once; the later one is refused.
    #[error("You are trying to update a resource when another request is in progress. Allow sufficient wait time for the previous request to complete, then retry your request.")]
    Conflict,
    /// `ServiceUnavailableException` (503): the store cannot take the request durably now
    /// (see `/_sluice/health`); the SDKs retry it.
    #[error("The service is unavailable. Back off and retry the operation.")]
    ServiceUnavailable,
}

impl CloudTrailError {
    /// Wraps model violations. CloudTrail has no `ValidationException` shape; it answers
    /// `InvalidParameterException`, except that a bad tag is `InvalidTagParameterException`
    /// and too long a tag list is `TagsLimitExceededException`, as for the checks the model
    /// cannot express.
    pub fn from_violations(violations: &[Violation]) -> Self {
        let summary = Violation::summary(violations);
        let on_tags = |v: &Violation| {
            let first = v.path.split('.').next().unwrap_or_default();
            first.eq_ignore_ascii_case("TagsList") || first.eq_ignore_ascii_case("Tags")
        };
        if !violations.is_empty() && violations.iter().all(on_tags) {
            if violations.iter().all(|v| !v.path.contains('.')) {
                return CloudTrailError::TagsLimitExceeded(summary);
            }
            return CloudTrailError::InvalidTagParameter(summary);
        }
        CloudTrailError::InvalidParameter(summary)
    }
}

impl From<StoreError> for CloudTrailError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict(_) => CloudTrailError::Conflict,
            StoreError::Unavailable(cause) => {
                // The store logs its own faults and refusals, rate-limited.
                tracing::debug!(error = %cause, "Store unavailable in CloudTrail.");
                CloudTrailError::ServiceUnavailable
            }
        }
    }
}

impl ServiceError for CloudTrailError {
    fn from_violations(violations: &[Violation]) -> Self {
        CloudTrailError::from_violations(violations)
    }

    fn invalid_input(message: String) -> Self {
        CloudTrailError::InvalidParameter(message)
    }

    fn invalid_token(error: TokenError, _token: &str) -> Self {
        CloudTrailError::InvalidNextToken(format!("Invalid NextToken: {error}."))
    }

    fn is_conflict(&self) -> bool {
        matches!(self, CloudTrailError::Conflict)
    }
}

impl From<CloudTrailError> for ApiError {
    fn from(err: CloudTrailError) -> Self {
        use CloudTrailError as E;
        let message = err.to_string();
        let code = match err {
            E::InvalidParameter(_) => "InvalidParameterException",
            E::ChannelAlreadyExists(_) => "ChannelAlreadyExistsException",
            E::ChannelMaxLimitExceeded(_) => "ChannelMaxLimitExceededException",
            E::ChannelArnInvalid(_) => "ChannelARNInvalidException",
            E::ChannelNotFound(_) => "ChannelNotFoundException",
            E::ChannelExistsForEds(_) => "ChannelExistsForEDSException",
            E::InvalidSource(_) => "InvalidSourceException",
            E::EventDataStoreAlreadyExists(_) => "EventDataStoreAlreadyExistsException",
            E::EventDataStoreMaxLimitExceeded(_) => "EventDataStoreMaxLimitExceededException",
            E::EventDataStoreArnInvalid(_) => "EventDataStoreARNInvalidException",
            E::EventDataStoreNotFound(_) => "EventDataStoreNotFoundException",
            E::EventDataStoreTerminationProtected(_) => {
                "EventDataStoreTerminationProtectedException"
            }
            E::InactiveEventDataStore(_) => "InactiveEventDataStoreException",
            E::InvalidEventDataStoreStatus(_) => "InvalidEventDataStoreStatusException",
            E::InvalidEventDataStoreCategory(_) => "InvalidEventDataStoreCategoryException",
            E::InvalidEventSelectors(_) => "InvalidEventSelectorsException",
            E::InvalidTagParameter(_) => "InvalidTagParameterException",
            E::TagsLimitExceeded(_) => "TagsLimitExceededException",
            E::CloudTrailArnInvalid(_) => "CloudTrailARNInvalidException",
            E::ResourceTypeNotSupported(_) => "ResourceTypeNotSupportedException",
            E::ResourceNotFound(_) => "ResourceNotFoundException",
            E::ResourceArnNotValid(_) => "ResourceARNNotValidException",
            E::ResourcePolicyNotValid(_) => "ResourcePolicyNotValidException",
            E::ResourcePolicyNotFound(_) => "ResourcePolicyNotFoundException",
            E::InvalidNextToken(_) => "InvalidNextTokenException",
            E::InvalidToken(_) => "InvalidTokenException",
            E::OperationNotPermitted(_) => "OperationNotPermittedException",
            E::UnsupportedOperation(_) => "UnsupportedOperationException",
            E::OrganizationsNotInUse(_) => "OrganizationsNotInUseException",
            E::InvalidQueryStatement(_) => "InvalidQueryStatementException",
            E::QueryIdNotFound(_) => "QueryIdNotFoundException",
            E::InactiveQuery(_) => "InactiveQueryException",
            E::MaxConcurrentQueries(_) => "MaxConcurrentQueriesException",
            E::InvalidDateRange(_) => "InvalidDateRangeException",
            E::Internal(cause) => {
                tracing::error!(error = %cause, "CloudTrail Lake internal error.");
                return cloudtrail_error("InternalFailure", message);
            }
            E::Conflict => "ConflictException",
            E::ServiceUnavailable => "ServiceUnavailableException",
        };
        // Statuses come from the model (`ServiceModel::error_status`, through the kit).
        cloudtrail_error(code, message)
    }
}

/// CloudTrail's error shapes carry their text in `Message` (the Smithy model's member name).
fn cloudtrail_error(code: &str, message: String) -> ApiError {
    ApiError {
        message_member: "Message",
        ..ApiError::new(code, message)
    }
}

#[cfg(test)]
mod tests {
    use super::CloudTrailError;
    use crate::services::kit::wire_error;

    #[test]
    fn statuses_and_message_member_follow_the_smithy_model() {
        let model = crate::services::kit::embedded_model("cloudtrail");
        let conflict = wire_error(model, CloudTrailError::Conflict);
        assert_eq!(
            (
                conflict.code.as_str(),
                conflict.status,
                conflict.message_member
            ),
            ("ConflictException", 409, "Message")
        );
        let not_found = wire_error(model, CloudTrailError::ChannelNotFound("gone".into()));
        assert_eq!(
            (not_found.status, not_found.message_member),
            (400, "Message")
        );
    }
}
