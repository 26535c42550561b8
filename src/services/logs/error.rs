//! CloudWatch Logs errors, and their one mapping to the wire.

use crate::protocol::model::Violation;
use crate::protocol::ApiError;
use crate::services::kit::ServiceError;
use crate::store::StoreError;
use crate::token::TokenError;

/// Every error a CloudWatch Logs operation of Sluice can return.
#[derive(Debug, thiserror::Error)]
pub enum LogsError {
    /// A parameter is missing, malformed or out of range (model violations included).
    #[error("{0}")]
    InvalidParameter(String),
    /// A pagination token this service did not issue, or issued for another request (AWS's
    /// sentence, which does not repeat the token).
    #[error("The specified nextToken is invalid.")]
    InvalidNextToken,
    /// `ValidationException`: a request that is well-formed but not allowed in this state.
    #[error("{0}")]
    Validation(String),
    /// The caller is not allowed, for example by a destination's access policy.
    #[error("{0}")]
    AccessDenied(String),
    /// A quota would be exceeded.
    #[error("{0}")]
    LimitExceeded(String),
    /// The named resource does not exist in the caller's account and region.
    #[error("{0}")]
    ResourceNotFound(String),
    /// The resource already exists.
    #[error("{0}")]
    ResourceAlreadyExists(String),
    /// Two writers changed the same resource at once; the later one is refused.
    #[error("Multiple concurrent requests to update the same resource were in conflict.")]
    OperationAborted,
    /// The store failed; the client may retry.
    #[error("The service cannot complete the request.")]
    ServiceUnavailable,
    /// Deliveries to subscription targets are too far behind to queue more; retry later.
    #[error("The service cannot accept more events for subscription delivery now: {pending} deliveries are waiting. Retry later.")]
    DeliveryBacklog {
        /// Deliveries waiting in the outbox.
        pending: i64,
    },
    /// Adding the tags would exceed 50 on the resource.
    #[error("{message}")]
    TooManyTags {
        /// AWS's sentence.
        message: String,
        /// The resource's ARN.
        resource_name: String,
    },
}

impl LogsError {
    /// Wraps model violations as CloudWatch Logs does: `InvalidParameterException` with the
    /// "N validation error(s) detected" sentence.
    pub fn from_violations(violations: &[Violation]) -> Self {
        LogsError::InvalidParameter(Violation::summary(violations))
    }
}

impl From<StoreError> for LogsError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict(_) => LogsError::OperationAborted,
            StoreError::Unavailable(cause) => {
                // The store logs its own faults and refusals, rate-limited.
                tracing::debug!(error = %cause, "Store unavailable in CloudWatch Logs.");
                LogsError::ServiceUnavailable
            }
        }
    }
}

impl ServiceError for LogsError {
    fn from_violations(violations: &[Violation]) -> Self {
        LogsError::from_violations(violations)
    }

    fn invalid_input(message: String) -> Self {
        LogsError::InvalidParameter(message)
    }

    fn invalid_token(error: TokenError, _token: &str) -> Self {
        match error {
            TokenError::Invalid => LogsError::InvalidNextToken,
            TokenError::Expired => {
                LogsError::InvalidParameter("The specified nextToken has expired.".to_owned())
            }
        }
    }

    fn is_conflict(&self) -> bool {
        matches!(self, LogsError::OperationAborted)
    }
}

impl From<LogsError> for ApiError {
    fn from(err: LogsError) -> Self {
        let message = err.to_string();
        match err {
            LogsError::InvalidParameter(_) | LogsError::InvalidNextToken => {
                ApiError::new("InvalidParameterException", message)
            }
            LogsError::ResourceNotFound(_) => ApiError::new("ResourceNotFoundException", message),
            LogsError::Validation(_) => ApiError::new("ValidationException", message),
            LogsError::AccessDenied(_) => ApiError::new("AccessDeniedException", message),
            LogsError::LimitExceeded(_) => ApiError::new("LimitExceededException", message),
            LogsError::ResourceAlreadyExists(_) => {
                ApiError::new("ResourceAlreadyExistsException", message)
            }
            LogsError::OperationAborted => ApiError::new("OperationAbortedException", message),
            LogsError::ServiceUnavailable | LogsError::DeliveryBacklog { .. } => {
                ApiError::new("ServiceUnavailableException", message)
            }
            LogsError::TooManyTags { resource_name, .. } => {
                ApiError::new("TooManyTagsException", message).field("resourceName", resource_name)
            }
        }
    }
}
